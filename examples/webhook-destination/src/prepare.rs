//! `prepare-users`: normalise, validate and hash identifiers, locally and deterministically.
//!
//! E-mail addresses and device ids are trimmed, lowercased, checked and SHA-256 hashed with the
//! SDK's [`identity`](audience_plugin_sdk::identity) helpers (a value that already is a SHA-256
//! hex digest passes through). External ids are ids both sides agreed on: trimmed and sent as
//! they are. Only identifiers of the selected `fields` are kept; a user left with none is
//! `not-synced`, with the reason.

use audience_plugin_sdk::identity::{hashed_device_id, hashed_email, kind_name};
use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::{Identifier, IdentifierKind, Preparation, PreparedUser, RawUser};

use crate::manifest::IDENTIFIERS;

/// The longest external id accepted, in characters.
pub const MAX_EXTERNAL_ID: usize = 256;

/// Prepare every user: exactly one [`Preparation`] per user, in order.
pub fn prepare_users(fields: &[IdentifierKind], users: Vec<RawUser>) -> Vec<Preparation> {
    users.into_iter().map(|user| prepare_user(fields, user)).collect()
}

/// The value sent for an identifier of `kind`, or why there is none.
pub fn prepare_value(kind: IdentifierKind, raw: &str) -> Result<String, String> {
    match kind {
        IdentifierKind::Email => hashed_email(raw).map_err(|e| e.to_string()),
        IdentifierKind::MobileAdId | IdentifierKind::Idfa => hashed_device_id(raw).map_err(|e| e.to_string()),
        IdentifierKind::ExternalId => {
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
        IdentifierKind::Phone => Err("phone numbers are not supported".into()),
    }
}

fn prepare_user(fields: &[IdentifierKind], user: RawUser) -> Preparation {
    let mut usable: Vec<Identifier> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    for id in &user.identifiers {
        if !fields.contains(&id.kind) || !IDENTIFIERS.contains(&id.kind) {
            continue;
        }
        match prepare_value(id.kind, &id.value) {
            Ok(value) if !usable.iter().any(|u| u.kind == id.kind && u.value == value) => {
                usable.push(Identifier { kind: id.kind, value });
            }
            Ok(_) => {}
            Err(why) => problems.push(format!("no usable {}: {why}", kind_name(id.kind))),
        }
    }
    if !usable.is_empty() {
        return Preparation::Ready(PreparedUser { key: user.key, identifiers: usable });
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
    use IdentifierKind::*;

    // hashlib.sha256(b"alice@example.com").hexdigest()
    const ALICE: &str = "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976";

    fn user(ids: &[(IdentifierKind, &str)]) -> RawUser {
        RawUser {
            key: "u".into(),
            identifiers: ids.iter().map(|(kind, value)| Identifier { kind: *kind, value: (*value).into() }).collect(),
        }
    }

    #[test]
    fn hashes_emails_and_keeps_external_ids() {
        let out = prepare_users(
            &[Email, ExternalId],
            vec![user(&[(Email, " Alice@Example.COM "), (ExternalId, " crm-42 ")])],
        );
        let expected = Preparation::Ready(PreparedUser {
            key: "u".into(),
            identifiers: vec![
                Identifier { kind: Email, value: ALICE.into() },
                Identifier { kind: ExternalId, value: "crm-42".into() },
            ],
        });
        assert_eq!(out, vec![expected]);
    }

    #[test]
    fn only_selected_fields_and_reasons() {
        let out = prepare_users(&[Email], vec![user(&[(ExternalId, "crm-42")]), user(&[(Email, "bob@")])]);
        assert_eq!(out[0], Preparation::NotSynced("none of the selected identifiers is present".into()));
        assert_eq!(out[1], Preparation::NotSynced("no usable email: 'bob@' has no domain".into()));
        let out = prepare_users(&[Phone], vec![user(&[(Phone, "+15550000001")])]);
        assert!(matches!(&out[0], Preparation::NotSynced(_)));
    }

    #[test]
    fn already_hashed_and_odd_values() {
        let out = prepare_users(&[Email], vec![user(&[(Email, &ALICE.to_uppercase())])]);
        assert!(matches!(&out[0], Preparation::Ready(p) if p.identifiers[0].value == ALICE));
        for odd in ["", " ", "a\u{0}b", &"x".repeat(300)] {
            let out = prepare_users(&[ExternalId], vec![user(&[(ExternalId, odd)])]);
            assert!(matches!(&out[0], Preparation::NotSynced(_)), "{odd:?}");
        }
    }
}
