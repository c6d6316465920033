//! The users the suite feeds a plugin: well-formed ones it can count in request bodies, and
//! odd ones that must not make it trap.
//!
//! Well-formed values are numbered with a fixed width, so no value is a substring of another
//! and the suite can tell users apart by finding their prepared values in a request body.
//! Kinds whose values cannot be told apart (a gender, a country) get realistic shared values;
//! the counter ignores values that more than one user carries (see `counting.rs`).
//!
//! Identifier kinds are names since contract 0.2.0; the suite knows the contract's well-known
//! names ([`WELL_KNOWN_KINDS`]) and gives any other declared name a numbered value.

use audience_runtime::types::{Consent, ConsentStatus, Identifier, IdentifierKind, RawUser};

/// The contract's well-known identifier kinds (`wit/v0.2.0/destination.wit`, `identifier-kind`).
pub const WELL_KNOWN_KINDS: &[&str] = &[
    "email",
    "phone",
    "mobile-ad-id",
    "idfa",
    "external-id",
    "first-name",
    "last-name",
    "date-of-birth",
    "gender",
    "city",
    "region",
    "postal-code",
    "country",
];

/// `n` written with the letters `a`-`z` only, `width` letters (for kinds that keep letters only).
fn letters(mut n: usize, width: usize) -> String {
    let mut out = vec![b'a'; width];
    for slot in out.iter_mut().rev() {
        *slot = b'a' + (n % 26) as u8;
        n /= 26;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A well-formed value of `kind` for user number `n` (distinct for every `n` below 10^7 for the
/// kinds that can be told apart).
pub fn plain_value(kind: &str, n: usize) -> String {
    match kind {
        "email" => format!("conformance.user.{n:07}@example.com"),
        "phone" => format!("+1555{n:07}"),
        "mobile-ad-id" => format!("c0ffee00-0000-4000-8000-{n:012x}"),
        "idfa" => format!("1dfa0000-0000-4000-8000-{n:012x}"),
        "external-id" => format!("conformance-ext-{n:07}"),
        "first-name" => format!("Conformance{}", letters(n, 6)),
        "last-name" => format!("User{}", letters(n, 6)),
        "date-of-birth" => {
            let (year, month, day) = (1900 + (n / 336) % 100, (n / 28) % 12 + 1, n % 28 + 1);
            format!("{year:04}-{month:02}-{day:02}")
        }
        "gender" => if n.is_multiple_of(2) { "f" } else { "m" }.to_string(),
        "city" => format!("Conformance City {}", letters(n, 6)),
        "region" => "ca".to_string(),
        "postal-code" => format!("{:05}", 10_000 + n % 90_000),
        "country" => "us".to_string(),
        other => format!("conformance-{other}-{n:07}"),
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
            identifiers: kinds
                .iter()
                .map(|kind| Identifier { kind: kind.clone(), value: plain_value(kind, n) })
                .collect(),
            consent: None,
        })
        .collect()
}

/// A user with a key and the given identifiers, no consent.
pub fn user(key: &str, identifiers: Vec<Identifier>) -> RawUser {
    RawUser { key: key.into(), identifiers, consent: None }
}

/// Every combination of consent signals, and none.
pub fn consents() -> Vec<Option<Consent>> {
    let statuses = [ConsentStatus::Unspecified, ConsentStatus::Granted, ConsentStatus::Denied];
    let mut all = vec![None];
    for ad_user_data in statuses {
        for ad_personalization in statuses {
            all.push(Some(Consent { ad_user_data, ad_personalization }));
        }
    }
    all
}

/// Values that are legal to send but easy to get wrong, for every kind: unicode, surrounding
/// and inner whitespace, uppercase, already-hashed values, empty and very long values, control
/// characters.
pub fn odd_values(kind: &str) -> Vec<String> {
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
        "email" => &[
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
        "phone" => &["+1 (555) 000-0001", "  +15550000001 ", "555-0001", "+٤٤٧٩٠٠٠٠٠٠٠٠", "phone"],
        "mobile-ad-id" | "idfa" => &[
            "C0FFEE00-0000-4000-8000-0000000000AA",
            "  c0ffee00-0000-4000-8000-0000000000aa ",
            "00000000-0000-0000-0000-000000000000",
            "c0ffee00000040008000000000000aa",
            "not-a-device-id",
        ],
        "external-id" => &["  Ext-ODD-1  ", "ext with spaces", "ünïcødé-id", "ext/../../etc"],
        "first-name" | "last-name" => &["  José  ", "O'Brien", "Zoë-Ann", "名前", "X Æ A-12"],
        "date-of-birth" => &["1990-02-30", "19900101", "01/02/1990", "2999-01-01", "1990-1-1"],
        "gender" => &["F", " male ", "Female", "x", "unknown"],
        "city" | "region" => &["San Francisco", "  NEW YORK  ", "São Paulo", "CA", "Île-de-France"],
        "postal-code" => &["94103-1234", " SW1A 1AA ", "00000", "1234567890123"],
        "country" => &["US", "usa", "  gb ", "ZZ", "Deutschland"],
        _ => &[],
    };
    values.extend(specific.iter().map(|s| s.to_string()));
    values
}

/// One user per odd value of every kind in `kinds`, plus a user with no identifiers and one
/// with every odd value at once.
pub fn odd_users(kinds: &[IdentifierKind]) -> Vec<RawUser> {
    let mut users = Vec::new();
    let mut everything = Vec::new();
    for kind in kinds {
        for (i, value) in odd_values(kind).into_iter().enumerate() {
            let identifier = Identifier { kind: kind.clone(), value };
            everything.push(identifier.clone());
            users.push(user(&format!("odd-{kind}-{i}"), vec![identifier]));
        }
    }
    users.push(user("odd-no-identifiers", vec![]));
    users.push(user("odd-everything", everything));
    users.push(user("ödd kéy with spaces 😀", vec![]));
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_distinct_and_not_substrings_of_each_other() {
        for kind in ["email", "phone", "mobile-ad-id", "idfa", "external-id", "first-name", "last-name", "shoe-size"] {
            let values: Vec<String> = [0, 1, 10, 11, 100, 9_999_999].iter().map(|&n| plain_value(kind, n)).collect();
            for (i, a) in values.iter().enumerate() {
                for (j, b) in values.iter().enumerate() {
                    assert!(i == j || !a.contains(b.as_str()), "{a} contains {b}");
                }
            }
        }
        assert_eq!(plain_value("date-of-birth", 0), "1900-01-01");
        assert_eq!(plain_value("date-of-birth", 29), "1900-02-02");
        assert_eq!(plain_value("first-name", 27), "Conformanceaaaabb");
    }

    #[test]
    fn users_carry_every_kind() {
        let users = plain_users(&["email".into(), "idfa".into()], 5, 2);
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].key, "conformance-0000005");
        assert_eq!(users[1].identifiers[1].value, "1dfa0000-0000-4000-8000-000000000006");
        let odd = odd_users(&["email".into()]);
        assert!(odd.len() > 20);
        assert_eq!(consents().len(), 10);
        for kind in WELL_KNOWN_KINDS {
            assert!(!odd_values(kind).is_empty());
        }
    }
}
