//! The users the suite feeds a plugin: well-formed ones it can count in request bodies, and
//! odd ones that must not make it trap.
//!
//! Well-formed values are numbered with a fixed width, so no value is a substring of another
//! and the suite can tell users apart by finding their prepared values in a request body.

use audience_runtime::types::{Identifier, IdentifierKind, RawUser};

pub use audience_runtime::kind_name;

/// A well-formed value of `kind` for user number `n` (distinct for every `n` below 10^7).
pub fn plain_value(kind: IdentifierKind, n: usize) -> String {
    match kind {
        IdentifierKind::Email => format!("conformance.user.{n:07}@example.com"),
        IdentifierKind::Phone => format!("+1555{n:07}"),
        IdentifierKind::MobileAdId => format!("c0ffee00-0000-4000-8000-{n:012x}"),
        IdentifierKind::Idfa => format!("1dfa0000-0000-4000-8000-{n:012x}"),
        IdentifierKind::ExternalId => format!("conformance-ext-{n:07}"),
    }
}

/// The key of user number `n`.
pub fn key(n: usize) -> String {
    format!("conformance-{n:07}")
}

/// Users `from..from + count`, each with one well-formed value of every kind in `kinds`.
pub fn plain_users(kinds: &[IdentifierKind], from: usize, count: usize) -> Vec<RawUser> {
    (from..from + count)
        .map(|n| RawUser {
            key: key(n),
            identifiers: kinds.iter().map(|&kind| Identifier { kind, value: plain_value(kind, n) }).collect(),
        })
        .collect()
}

/// Values that are legal to send but easy to get wrong, for every kind: unicode, surrounding
/// and inner whitespace, uppercase, already-hashed values, empty and very long values, control
/// characters.
pub fn odd_values(kind: IdentifierKind) -> Vec<String> {
    let hashed = "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976";
    let mut values = vec![
        String::new(),
        " ".into(),
        "\t\n".into(),
        "\u{a0}\u{2003}".into(),
        hashed.into(),
        hashed.to_ascii_uppercase(),
        format!("  {hashed}  "),
        "x".repeat(10_000),
        "null\0byte".into(),
        "\u{1b}[31mred\u{1b}[0m".into(),
        "😀🎉".into(),
        "\u{202e}gnp.exe".into(),
        "ＦＵＬＬＷＩＤＴＨ".into(),
        "'; DROP TABLE users; --".into(),
        "%s%n{}".into(),
    ];
    let specific: &[&str] = match kind {
        IdentifierKind::Email => &[
            "  Conformance.Odd@Example.COM  ",
            "CONFORMANCE.ODD@EXAMPLE.COM",
            "ünïcødé@exämple.de",
            "用户@例子.广告",
            "bob@",
            "@example.com",
            "a@b@c.com",
            "spaced out@example.com",
            "trailing.dot@example.com.",
        ],
        IdentifierKind::Phone => &["+1 (555) 000-0001", "  +15550000001 ", "555-0001", "+٤٤٧٩٠٠٠٠٠٠٠٠", "phone"],
        IdentifierKind::MobileAdId | IdentifierKind::Idfa => &[
            "C0FFEE00-0000-4000-8000-0000000000AA",
            "  c0ffee00-0000-4000-8000-0000000000aa ",
            "00000000-0000-0000-0000-000000000000",
            "c0ffee00000040008000000000000aa",
            "not-a-device-id",
        ],
        IdentifierKind::ExternalId => &["  Ext-ODD-1  ", "ext with spaces", "ünïcødé-id", "ext/../../etc"],
    };
    values.extend(specific.iter().map(|s| s.to_string()));
    values
}

/// One user per odd value of every kind in `kinds`, plus a user with no identifiers and one
/// with every odd value at once.
pub fn odd_users(kinds: &[IdentifierKind]) -> Vec<RawUser> {
    let mut users = Vec::new();
    let mut everything = Vec::new();
    for &kind in kinds {
        for (i, value) in odd_values(kind).into_iter().enumerate() {
            let identifier = Identifier { kind, value };
            everything.push(identifier.clone());
            users.push(RawUser { key: format!("odd-{}-{i}", kind_name(kind)), identifiers: vec![identifier] });
        }
    }
    users.push(RawUser { key: "odd-no-identifiers".into(), identifiers: vec![] });
    users.push(RawUser { key: "odd-everything".into(), identifiers: everything });
    users.push(RawUser { key: "ödd kéy with spaces 😀".into(), identifiers: vec![] });
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_distinct_and_not_substrings_of_each_other() {
        for kind in [
            IdentifierKind::Email,
            IdentifierKind::Phone,
            IdentifierKind::MobileAdId,
            IdentifierKind::Idfa,
            IdentifierKind::ExternalId,
        ] {
            let values: Vec<String> = [0, 1, 10, 11, 100, 9_999_999].iter().map(|&n| plain_value(kind, n)).collect();
            for (i, a) in values.iter().enumerate() {
                for (j, b) in values.iter().enumerate() {
                    assert!(i == j || !a.contains(b.as_str()), "{a} contains {b}");
                }
            }
        }
    }

    #[test]
    fn users_carry_every_kind() {
        let users = plain_users(&[IdentifierKind::Email, IdentifierKind::Idfa], 5, 2);
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].key, "conformance-0000005");
        assert_eq!(users[1].identifiers[1].value, "1dfa0000-0000-4000-8000-000000000006");
        let odd = odd_users(&[IdentifierKind::Email]);
        assert!(odd.len() > 20);
    }
}
