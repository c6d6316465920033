//! `prepare-users`: normalise, validate and hash identifiers, locally and deterministically.
//!
//! Match fields mean what they say, in their order: the sync's customer list keeps ONE kind,
//! the first of `fields` Pinterest supports (see [`crate::list_type`]). For each user only the
//! identifiers of that kind are considered. Each is trimmed and lowercased, checked (a plausible
//! `local@domain.tld` for emails, the UUID shape for device ids) and SHA-256 hashed; a value
//! that already is a 64-hex SHA-256 passes through lowercased. The first valid one is the
//! user's single prepared identifier (one record per user, so a batch of 1,900 users fits
//! Pinterest's 1,900 records per request). A user with none is `not-synced`, with a reason
//! naming the kind the list keeps and what was wrong ("no valid email: 'bob@' has no domain"),
//! quoting values only in shortened form. Identifiers of the user's other kinds are never
//! used, even when valid: the list cannot hold them.
//!
//! Hashing is native Rust (SHA-256 in WebAssembly is fast for Rust), so this stays pure and
//! needs no host call.

use audience_plugin_sdk::identity::{IdentityError, hashed_device_id, hashed_email};
use audience_plugin_sdk::types::{Identifier, IdentifierKind, Preparation, PreparedUser, RawUser};

use crate::list_type::{ListType, no_supported_kind};

/// How many problems a not-synced reason lists before summarising the rest.
const MAX_REASONS: usize = 3;

/// Prepare every user: exactly one [`Preparation`] per user, in order.
pub fn prepare_users(fields: &[IdentifierKind], users: Vec<RawUser>) -> Vec<Preparation> {
    let Some(list_type) = ListType::first_supported(fields) else {
        let reason = no_supported_kind(fields);
        return users.iter().map(|_| Preparation::NotSynced(reason.clone())).collect();
    };
    users.into_iter().map(|user| prepare_user(fields, list_type, user)).collect()
}

/// The normalised, hashed form of `value` for a list of `list_type`.
pub fn hash_identifier(list_type: ListType, value: &str) -> Result<String, IdentityError> {
    match list_type {
        ListType::Email => hashed_email(value),
        ListType::Maid | ListType::Idfa => hashed_device_id(value),
    }
}

fn prepare_user(fields: &[IdentifierKind], list_type: ListType, user: RawUser) -> Preparation {
    let kind = list_type.kind();
    let mut problems: Vec<String> = Vec::new();
    for id in user.identifiers.iter().filter(|id| id.kind == kind) {
        match hash_identifier(list_type, &id.value) {
            Ok(value) => {
                return Preparation::Ready(PreparedUser {
                    key: user.key,
                    identifiers: vec![Identifier { kind: kind.to_string(), value }],
                    consent: user.consent,
                });
            }
            Err(why) => problems.push(why.to_string()),
        }
    }
    Preparation::NotSynced(not_synced_reason(fields, list_type, &user, &problems))
}

fn not_synced_reason(fields: &[IdentifierKind], list_type: ListType, user: &RawUser, problems: &[String]) -> String {
    let kind = list_type.kind();
    if problems.is_empty() {
        let mut reason = format!("no {kind} present");
        // Say why a user's other match fields do not help, when it has some.
        let others: Vec<&str> = fields
            .iter()
            .map(String::as_str)
            .filter(|f| *f != kind && user.identifiers.iter().any(|id| id.kind == *f))
            .collect();
        if !others.is_empty() {
            reason.push_str(&format!(
                " (the sync's Pinterest customer list keeps {kind}, the first of its match fields Pinterest \
                 supports; this user's {} cannot be used)",
                others.join(", ")
            ));
        }
        return reason;
    }
    let mut reason =
        format!("no valid {kind}: {}", problems.iter().take(MAX_REASONS).cloned().collect::<Vec<_>>().join("; "));
    if problems.len() > MAX_REASONS {
        reason.push_str(&format!("; and {} more", problems.len() - MAX_REASONS));
    }
    reason
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::kinds::{EMAIL, EXTERNAL_ID, IDFA, MOBILE_AD_ID, PHONE, list};
    use audience_plugin_sdk::types::{Consent, ConsentStatus};

    use super::*;

    // hashlib.sha256(b"alice@example.com").hexdigest()
    const ALICE: &str = "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976";
    // hashlib.sha256(b"38400000-8cf0-11bd-b23e-10b96e40000d").hexdigest()
    const MAID: &str = "d4181bb455a74b3bc8b37c75ac9b2c702eb6b9930bd040b861403b31ca85634d";
    const DEVICE: &str = "38400000-8CF0-11BD-B23E-10B96E40000D";

    fn user(key: &str, ids: &[(&str, &str)]) -> RawUser {
        RawUser {
            key: key.into(),
            identifiers: ids
                .iter()
                .map(|(kind, value)| Identifier { kind: (*kind).into(), value: (*value).into() })
                .collect(),
            consent: None,
        }
    }

    fn ready(kind: &str, value: &str, key: &str) -> Preparation {
        Preparation::Ready(PreparedUser {
            key: key.into(),
            identifiers: vec![Identifier { kind: kind.into(), value: value.into() }],
            consent: None,
        })
    }

    fn everything(key: &str) -> RawUser {
        user(key, &[(PHONE, "+15551234567"), (MOBILE_AD_ID, DEVICE), (EMAIL, " Alice@Example.COM "), (IDFA, DEVICE)])
    }

    #[test]
    fn the_first_supported_field_decides_the_one_kind_kept() {
        assert_eq!(prepare_users(&list(&[EMAIL, MOBILE_AD_ID]), vec![everything("u")]), vec![ready(EMAIL, ALICE, "u")]);
        assert_eq!(
            prepare_users(&list(&[MOBILE_AD_ID, EMAIL]), vec![everything("u")]),
            vec![ready(MOBILE_AD_ID, MAID, "u")]
        );
        assert_eq!(prepare_users(&list(&[PHONE, IDFA, EMAIL]), vec![everything("u")]), vec![ready(IDFA, MAID, "u")]);
    }

    #[test]
    fn a_user_lacking_the_lists_kind_is_not_synced_even_with_other_fields() {
        let out = prepare_users(
            &list(&[MOBILE_AD_ID, EMAIL]),
            vec![user("e", &[(EMAIL, "alice@example.com")]), user("none", &[]), user("m", &[(MOBILE_AD_ID, DEVICE)])],
        );
        assert_eq!(
            out,
            vec![
                Preparation::NotSynced(
                    "no mobile-ad-id present (the sync's Pinterest customer list keeps mobile-ad-id, the first of \
                     its match fields Pinterest supports; this user's email cannot be used)"
                        .into()
                ),
                Preparation::NotSynced("no mobile-ad-id present".into()),
                ready(MOBILE_AD_ID, MAID, "m"),
            ]
        );
    }

    #[test]
    fn an_invalid_value_of_the_kind_is_explained_and_others_are_not_a_fallback() {
        let out = prepare_users(
            &list(&[EMAIL, IDFA]),
            vec![
                user("bad", &[(EMAIL, "bob@localhost"), (IDFA, DEVICE)]),
                user("second", &[(EMAIL, "nope"), (EMAIL, "alice@example.com")]),
            ],
        );
        assert_eq!(
            out,
            vec![
                Preparation::NotSynced("no valid email: 'bob@localhost' has no dot in its domain".into()),
                ready(EMAIL, ALICE, "second"),
            ]
        );
    }

    #[test]
    fn already_hashed_values_pass_through_and_consent_is_copied() {
        let mut u = user("u", &[(EMAIL, &ALICE.to_ascii_uppercase())]);
        let consent = Consent { ad_user_data: ConsentStatus::Granted, ad_personalization: ConsentStatus::Denied };
        u.consent = Some(consent);
        let out = prepare_users(&list(&[EMAIL]), vec![u]);
        let Preparation::Ready(p) = &out[0] else { panic!("{out:?}") };
        assert_eq!(p.identifiers, vec![Identifier { kind: EMAIL.into(), value: ALICE.into() }]);
        assert_eq!(p.consent, Some(consent));
    }

    #[test]
    fn one_preparation_per_user_in_order() {
        let out = prepare_users(
            &list(&[EMAIL]),
            vec![user("a", &[(EMAIL, "bob@")]), user("b", &[(EMAIL, "alice@example.com")]), user("c", &[])],
        );
        assert_eq!(
            out,
            vec![
                Preparation::NotSynced("no valid email: 'bob@' has no domain".into()),
                ready(EMAIL, ALICE, "b"),
                Preparation::NotSynced("no email present".into()),
            ]
        );
    }

    #[test]
    fn long_values_are_not_echoed_in_full() {
        let long = format!("{}@", "x".repeat(5000));
        let out = prepare_users(&list(&[EMAIL]), vec![user("u", &[(EMAIL, &long)])]);
        match &out[0] {
            Preparation::NotSynced(reason) => assert!(reason.len() < 120, "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn many_problems_are_summarised() {
        let bad = [(EMAIL, "a"), (EMAIL, "b"), (EMAIL, "c"), (EMAIL, "d"), (EMAIL, "e")];
        let out = prepare_users(&list(&[EMAIL]), vec![user("u", &bad)]);
        match &out[0] {
            Preparation::NotSynced(reason) => assert!(reason.ends_with("; and 2 more"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unsupported_fields_only() {
        let out = prepare_users(&list(&[PHONE, EXTERNAL_ID]), vec![user("u", &[(PHONE, "+1555")]), user("v", &[])]);
        let reason = "none of the sync's match fields (phone, external-id) is one Pinterest can match on; \
                      it accepts email, mobile-ad-id and idfa";
        assert_eq!(out, vec![Preparation::NotSynced(reason.into()), Preparation::NotSynced(reason.into())]);
    }

    #[test]
    fn deterministic() {
        let users = vec![user("u", &[(EMAIL, "Alice@example.com"), (MOBILE_AD_ID, "x")])];
        let fields = list(&[EMAIL, MOBILE_AD_ID]);
        assert_eq!(prepare_users(&fields, users.clone()), prepare_users(&fields, users));
    }
}
