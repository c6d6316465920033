//! `prepare-users`: normalise, validate and hash identifiers, locally and deterministically.
//!
//! E-mail addresses and device ids are trimmed, lowercased, checked and SHA-256 hashed with the
//! SDK's [`identity`](audience_plugin_sdk::identity) helpers (a value that already is a SHA-256
//! hex digest passes through). External ids are ids both sides agreed on: trimmed and sent as
//! they are. Only identifiers of the selected `fields` are kept; a user left with none is
//! `not-synced`, with the reason.

use audience_plugin_sdk::identity::{hashed_device_id, hashed_email};
use audience_plugin_sdk::kinds;
use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::{Identifier, IdentifierKind, Preparation, PreparedUser, RawUser};

use crate::manifest::supports;

/// The longest external id accepted, in characters.
pub const MAX_EXTERNAL_ID: usize = 256;

/// Prepare every user: exactly one [`Preparation`] per user, in order.
pub fn prepare_users(fields: &[IdentifierKind], users: Vec<RawUser>) -> Vec<Preparation> {
    users.into_iter().map(|user| prepare_user(fields, user)).collect()
}

/// The value sent for an identifier of `kind`, or why there is none.
pub fn prepare_value(kind: &str, raw: &str) -> Result<String, String> {
    match kind {
        kinds::EMAIL => hashed_email(raw).map_err(|e| e.to_string()),
        kinds::MOBILE_AD_ID | kinds::IDFA => hashed_device_id(raw).map_err(|e| e.to_string()),
        kinds::EXTERNAL_ID => {
            let id = raw.trim();
            if id.is_empty() {
                Err("the value is empty".into())
            } else if id.chars().count() > MAX_EXTERNAL_ID {
                Err(format!("'{}' is longer than {MAX_EXTERNAL_ID} characters", excerpt(id, 40)))
            } else if id.chars().any(char::is_control) {
                Err(format!("'{}' contains a control character", excerpt(id, 40).escape_debug()))
            } else {
                Ok(id.to_string())
            }
        }
        other => Err(format!("{other} is not supported")),
    }
}

fn prepare_user(fields: &[IdentifierKind], user: RawUser) -> Preparation {
    let mut usable: Vec<Identifier> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for id in &user.identifiers {
        if !kinds::contains(fields, &id.kind) || !supports(&id.kind) {
            continue;
        }
        match prepare_value(&id.kind, &id.value) {
            Ok(value) if !usable.iter().any(|u| u.kind == id.kind && u.value == value) => {
                usable.push(Identifier { kind: id.kind.clone(), value });
            }
            Ok(_) => {}
            Err(why) => problems.push(format!("no usable {}: {why}", id.kind)),
        }
    }
    if !usable.is_empty() {
        return Preparation::Ready(PreparedUser { key: user.key, identifiers: usable, consent: user.consent });
    }
    let reason = match problems.len() {
        0 => "none of the selected identifiers is present".to_string(),
        1..=3 => problems.join("; "),
        n => format!("{}; and {} more", problems[..3].join("; "), n - 3),
    };
    Preparation::NotSynced(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use audience_plugin_sdk::kinds::{EMAIL, EXTERNAL_ID, PHONE};

    // hashlib.sha256(b"alice@example.com").hexdigest()
    const ALICE: &str = "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976";

    fn user(ids: &[(&str, &str)]) -> RawUser {
        RawUser {
            key: "u".into(),
            identifiers: ids
                .iter()
                .map(|(kind, value)| Identifier { kind: (*kind).into(), value: (*value).into() })
                .collect(),
            consent: None,
        }
    }

    fn fields(names: &[&str]) -> Vec<IdentifierKind> {
        kinds::list(names)
    }

    #[test]
    fn hashes_emails_and_keeps_external_ids() {
        let out = prepare_users(
            &fields(&[EMAIL, EXTERNAL_ID]),
            vec![user(&[(EMAIL, " Alice@Example.COM "), (EXTERNAL_ID, " crm-42 ")])],
        );
        let expected = Preparation::Ready(PreparedUser {
            key: "u".into(),
            identifiers: vec![
                Identifier { kind: EMAIL.into(), value: ALICE.into() },
                Identifier { kind: EXTERNAL_ID.into(), value: "crm-42".into() },
            ],
            consent: None,
        });
        assert_eq!(out, vec![expected]);
    }

    #[test]
    fn only_selected_fields_and_reasons() {
        let out = prepare_users(&fields(&[EMAIL]), vec![user(&[(EXTERNAL_ID, "crm-42")]), user(&[(EMAIL, "bob@")])]);
        assert_eq!(out[0], Preparation::NotSynced("none of the selected identifiers is present".into()));
        assert_eq!(out[1], Preparation::NotSynced("no usable email: 'bob@' has no domain".into()));
        let out = prepare_users(&fields(&[PHONE]), vec![user(&[(PHONE, "+15550000001")])]);
        assert!(matches!(&out[0], Preparation::NotSynced(_)));
    }

    #[test]
    fn already_hashed_and_odd_values() {
        let out = prepare_users(&fields(&[EMAIL]), vec![user(&[(EMAIL, &ALICE.to_uppercase())])]);
        assert!(matches!(&out[0], Preparation::Ready(p) if p.identifiers[0].value == ALICE));
        for odd in ["", " ", "a\u{0}b", &"x".repeat(300)] {
            let out = prepare_users(&fields(&[EXTERNAL_ID]), vec![user(&[(EXTERNAL_ID, odd)])]);
            assert!(matches!(&out[0], Preparation::NotSynced(_)), "{odd:?}");
        }
    }
}
