//! `prepare-users`: normalise, validate and hash identifiers, locally and deterministically.
//!
//! For each user, only identifiers whose kind is both selected (`fields`) and supported by
//! Pinterest (email, mobile-ad-id, idfa) are considered. Each is trimmed and lowercased, checked
//! (a plausible `local@domain.tld` for emails, the UUID shape for device ids) and SHA-256
//! hashed; a value that already is a 64-hex SHA-256 passes through lowercased. A prepared user
//! keeps every usable identifier, in the caller's order, duplicates dropped: which one is sent
//! depends on the list type, decided per audience (see [`crate::list_type`]). A user left with
//! none is `not-synced`, with a reason naming what was wrong ("no usable email: 'bob@' has no
//! domain"), quoting values only in shortened form.

use audience_plugin_sdk::identity::{IdentityError, hashed_device_id, hashed_email};
use audience_plugin_sdk::types::{Identifier, IdentifierKind, Preparation, PreparedUser, RawUser};

use crate::list_type::{SUPPORTED_KINDS, kind_name};

/// How many problems a not-synced reason lists before summarising the rest.
const MAX_REASONS: usize = 3;

/// Prepare every user: exactly one [`Preparation`] per user, in order.
pub fn prepare_users(fields: &[IdentifierKind], users: Vec<RawUser>) -> Vec<Preparation> {
    let selected: Vec<IdentifierKind> = SUPPORTED_KINDS.into_iter().filter(|kind| fields.contains(kind)).collect();
    users.into_iter().map(|user| prepare_user(fields, &selected, user)).collect()
}

/// The normalised, hashed form of `value` for identifier `kind` (a supported kind).
pub fn hash_identifier(kind: IdentifierKind, value: &str) -> Result<String, IdentityError> {
    match kind {
        IdentifierKind::Email => hashed_email(value),
        _ => hashed_device_id(value),
    }
}

fn prepare_user(fields: &[IdentifierKind], selected: &[IdentifierKind], user: RawUser) -> Preparation {
    let mut usable: Vec<Identifier> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for id in &user.identifiers {
        if !selected.contains(&id.kind) {
            continue;
        }
        match hash_identifier(id.kind, &id.value) {
            Ok(value) => {
                if !usable.iter().any(|u| u.kind == id.kind && u.value == value) {
                    usable.push(Identifier { kind: id.kind, value });
                }
            }
            Err(why) => problems.push(format!("no usable {}: {why}", kind_name(id.kind))),
        }
    }
    if !usable.is_empty() {
        return Preparation::Ready(PreparedUser { key: user.key, identifiers: usable });
    }
    Preparation::NotSynced(not_synced_reason(fields, selected, &problems))
}

fn not_synced_reason(fields: &[IdentifierKind], selected: &[IdentifierKind], problems: &[String]) -> String {
    if selected.is_empty() {
        let asked: Vec<&str> = fields.iter().map(|k| kind_name(*k)).collect();
        let asked = if asked.is_empty() { "none".to_string() } else { asked.join(", ") };
        return format!(
            "none of the selected fields ({asked}) can be matched on Pinterest, \
             which accepts email, mobile-ad-id and idfa"
        );
    }
    if problems.is_empty() {
        let names: Vec<&str> = selected.iter().map(|k| kind_name(*k)).collect();
        return format!("no {} present", names.join(" or "));
    }
    let mut reason = problems.iter().take(MAX_REASONS).cloned().collect::<Vec<_>>().join("; ");
    if problems.len() > MAX_REASONS {
        reason.push_str(&format!("; and {} more", problems.len() - MAX_REASONS));
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdentifierKind::*;

    // hashlib.sha256(b"alice@example.com").hexdigest()
    const ALICE: &str = "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976";
    // hashlib.sha256(b"38400000-8cf0-11bd-b23e-10b96e40000d").hexdigest()
    const MAID: &str = "d4181bb455a74b3bc8b37c75ac9b2c702eb6b9930bd040b861403b31ca85634d";

    fn user(key: &str, ids: &[(IdentifierKind, &str)]) -> RawUser {
        RawUser {
            key: key.into(),
            identifiers: ids.iter().map(|(kind, value)| Identifier { kind: *kind, value: (*value).into() }).collect(),
        }
    }

    fn ready(kind_values: &[(IdentifierKind, &str)], key: &str) -> Preparation {
        Preparation::Ready(PreparedUser {
            key: key.into(),
            identifiers: kind_values.iter().map(|(k, v)| Identifier { kind: *k, value: (*v).into() }).collect(),
        })
    }

    #[test]
    fn hashes_selected_supported_identifiers_in_order() {
        let out = prepare_users(
            &[Email, MobileAdId, Phone],
            vec![user(
                "u1",
                &[
                    (Phone, "+15551234567"),
                    (MobileAdId, "38400000-8CF0-11BD-B23E-10B96E40000D"),
                    (Email, " Alice@Example.COM "),
                    (Email, "alice@example.com"),
                    (Idfa, "38400000-8cf0-11bd-b23e-10b96e40000d"),
                ],
            )],
        );
        assert_eq!(out, vec![ready(&[(MobileAdId, MAID), (Email, ALICE)], "u1")]);
    }

    #[test]
    fn already_hashed_values_pass_through() {
        let upper = ALICE.to_ascii_uppercase();
        let out = prepare_users(&[Email], vec![user("u", &[(Email, &upper)])]);
        assert_eq!(out, vec![ready(&[(Email, ALICE)], "u")]);
    }

    #[test]
    fn one_preparation_per_user_in_order() {
        let out = prepare_users(
            &[Email],
            vec![user("a", &[(Email, "bob@")]), user("b", &[(Email, "alice@example.com")]), user("c", &[])],
        );
        assert_eq!(
            out,
            vec![
                Preparation::NotSynced("no usable email: 'bob@' has no domain".into()),
                ready(&[(Email, ALICE)], "b"),
                Preparation::NotSynced("no email present".into()),
            ]
        );
    }

    #[test]
    fn invalid_identifiers_are_explained_and_a_valid_one_still_wins() {
        let out = prepare_users(
            &[Email, Idfa],
            vec![
                user("bad", &[(Email, "bob@localhost"), (Idfa, "not-an-idfa")]),
                user("mixed", &[(Email, "nope"), (Idfa, "38400000-8cf0-11bd-b23e-10b96e40000d")]),
            ],
        );
        assert_eq!(
            out[0],
            Preparation::NotSynced(
                "no usable email: 'bob@localhost' has no dot in its domain; \
                 no usable idfa: 'not-an-idfa' is not a device id (8-4-4-4-12 hex digits)"
                    .into()
            )
        );
        assert_eq!(out[1], ready(&[(Idfa, MAID)], "mixed"));
    }

    #[test]
    fn long_values_are_not_echoed_in_full() {
        let long = format!("{}@", "x".repeat(5000));
        let out = prepare_users(&[Email], vec![user("u", &[(Email, &long)])]);
        match &out[0] {
            Preparation::NotSynced(reason) => assert!(reason.len() < 120, "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn many_problems_are_summarised() {
        let bad = [(Email, "a"), (Email, "b"), (Email, "c"), (Email, "d"), (Email, "e")];
        let out = prepare_users(&[Email], vec![user("u", &bad)]);
        match &out[0] {
            Preparation::NotSynced(reason) => assert!(reason.ends_with("; and 2 more"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unsupported_fields_only() {
        let out = prepare_users(&[Phone, ExternalId], vec![user("u", &[(Phone, "+1555")])]);
        assert_eq!(
            out,
            vec![Preparation::NotSynced(
                "none of the selected fields (phone, external-id) can be matched on Pinterest, \
                 which accepts email, mobile-ad-id and idfa"
                    .into()
            )]
        );
    }

    #[test]
    fn deterministic() {
        let users = vec![user("u", &[(Email, "Alice@example.com"), (MobileAdId, "x")])];
        assert_eq!(prepare_users(&[Email, MobileAdId], users.clone()), prepare_users(&[Email, MobileAdId], users));
    }
}
