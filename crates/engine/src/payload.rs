//! The queue's own format for a prepared user.
//!
//! Why the host defines it: a queued user may wait hours (retries) or survive an upgrade of
//! the host, so the bytes in the store must not depend on the serde form of a generated WIT
//! binding: a later contract version that renames a type or a variant would otherwise make
//! every pending user unreadable. The format here is the host's promise: versioned (`"v"`),
//! with identifier kinds by their API names ([`audience_model::IdentifierKind`]), converted to
//! the contract's types only when a batch is handed to a plugin.
//!
//! | version | bytes |
//! |---|---|
//! | 1 | `{"v":1,"key":"crm-1","ids":[["email","<sha256>"],...]}`, and since contract 0.2.0 optionally `"consent":["granted","denied"]` (ad user data, ad personalization); kinds are the names the plugin prepared (`email`, or a plugin's own such as `dob-year`) |
//! | (none) | what hosts before the format wrote: the 0.1.0 binding's serde form, `{"key":..,"identifiers":[{"kind":"Email","value":..}]}`; still read, never written |

use audience_model::IdentifierKind;
use audience_runtime::types::{Consent, ConsentStatus, Identifier, PreparedUser};
use serde::{Deserialize, Serialize};

/// The version [`encode`] writes.
pub const CURRENT: u32 = 1;

/// A queue entry that cannot be read: its user is errored with this reason, never dropped.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON of any known version.
    #[error("unreadable queue entry: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Written by a newer host than this one.
    #[error("queue entry of format version {0}, newer than this host reads ({CURRENT}); upgrade the host")]
    TooNew(u32),
}

/// Version 1 as read (its `v` was checked by [`Version`] first).
#[derive(Deserialize)]
struct V1 {
    key: String,
    ids: Vec<(String, String)>,
    #[serde(default)]
    consent: Option<(StoredConsent, StoredConsent)>,
}

/// A consent signal as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StoredConsent {
    Unspecified,
    Granted,
    Denied,
}

impl From<ConsentStatus> for StoredConsent {
    fn from(status: ConsentStatus) -> Self {
        match status {
            ConsentStatus::Unspecified => StoredConsent::Unspecified,
            ConsentStatus::Granted => StoredConsent::Granted,
            ConsentStatus::Denied => StoredConsent::Denied,
        }
    }
}

impl From<StoredConsent> for ConsentStatus {
    fn from(status: StoredConsent) -> Self {
        match status {
            StoredConsent::Unspecified => ConsentStatus::Unspecified,
            StoredConsent::Granted => ConsentStatus::Granted,
            StoredConsent::Denied => ConsentStatus::Denied,
        }
    }
}

/// [`V1`] as written: borrowed, so encoding copies nothing before serialising.
#[derive(Serialize)]
struct V1Ref<'a> {
    v: u32,
    key: &'a str,
    ids: Vec<(&'a str, &'a str)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consent: Option<(StoredConsent, StoredConsent)>,
}

/// The form written before the format was versioned.
#[derive(Deserialize)]
struct Unversioned {
    key: String,
    identifiers: Vec<UnversionedIdentifier>,
}

#[derive(Deserialize)]
struct UnversionedIdentifier {
    kind: UnversionedKind,
    value: String,
}

/// The 0.1.0 binding's variant names, as serde wrote them.
#[derive(Deserialize)]
enum UnversionedKind {
    Email,
    Phone,
    MobileAdId,
    Idfa,
    ExternalId,
}

impl From<UnversionedKind> for IdentifierKind {
    fn from(kind: UnversionedKind) -> Self {
        match kind {
            UnversionedKind::Email => IdentifierKind::Email,
            UnversionedKind::Phone => IdentifierKind::Phone,
            UnversionedKind::MobileAdId => IdentifierKind::MobileAdId,
            UnversionedKind::Idfa => IdentifierKind::Idfa,
            UnversionedKind::ExternalId => IdentifierKind::ExternalId,
        }
    }
}

/// Only the version, read first so a newer entry is named as such.
#[derive(Deserialize)]
struct Version {
    v: Option<u32>,
}

/// The bytes the queue stores for `user`, in the [`CURRENT`] format.
pub fn encode(user: &PreparedUser) -> Vec<u8> {
    let v1 = V1Ref {
        v: CURRENT,
        key: &user.key,
        ids: user.identifiers.iter().map(|id| (id.kind.as_str(), id.value.as_str())).collect(),
        consent: user.consent.map(|c| (c.ad_user_data.into(), c.ad_personalization.into())),
    };
    // Serialising strings and unit enum variants to a Vec cannot fail.
    serde_json::to_vec(&v1).unwrap_or_default()
}

/// A queued user read back, in the current contract's types.
pub fn decode(bytes: &[u8]) -> Result<PreparedUser, PayloadError> {
    let (key, ids, consent) = match serde_json::from_slice::<Version>(bytes)?.v {
        Some(CURRENT) => {
            let v1: V1 = serde_json::from_slice(bytes)?;
            (v1.key, v1.ids, v1.consent)
        }
        Some(newer) => return Err(PayloadError::TooNew(newer)),
        None => {
            let old: Unversioned = serde_json::from_slice(bytes)?;
            let ids =
                old.identifiers.into_iter().map(|id| (IdentifierKind::from(id.kind).name().to_string(), id.value));
            (old.key, ids.collect(), None)
        }
    };
    let identifiers = ids.into_iter().map(|(kind, value)| Identifier { kind, value }).collect();
    let consent = consent.map(|(data, personalization)| Consent {
        ad_user_data: data.into(),
        ad_personalization: personalization.into(),
    });
    Ok(PreparedUser { key, identifiers, consent })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> PreparedUser {
        PreparedUser {
            key: "crm-1".into(),
            identifiers: vec![
                Identifier { kind: "email".into(), value: "ab12".into() },
                Identifier { kind: "mobile-ad-id".into(), value: "cd34".into() },
            ],
            consent: None,
        }
    }

    /// These bytes are what this host writes today. They are frozen here: a later contract
    /// version (new types, renamed variants) must still read them, or pending users are lost.
    const WRITTEN_TODAY: &str = r#"{"v":1,"key":"crm-1","ids":[["email","ab12"],["mobile-ad-id","cd34"]]}"#;

    #[test]
    fn the_current_format_is_the_frozen_one() {
        assert_eq!(String::from_utf8(encode(&user())).unwrap(), WRITTEN_TODAY);
    }

    #[test]
    fn a_payload_written_today_reads_back() {
        assert_eq!(decode(WRITTEN_TODAY.as_bytes()).unwrap(), user());
    }

    #[test]
    fn entries_queued_before_the_format_was_versioned_still_read() {
        let old =
            r#"{"key":"crm-1","identifiers":[{"kind":"Email","value":"ab12"},{"kind":"MobileAdId","value":"cd34"}]}"#;
        assert_eq!(decode(old.as_bytes()).unwrap(), user());
    }

    #[test]
    fn consent_is_kept_beside_the_identifiers() {
        let with = PreparedUser {
            consent: Some(Consent { ad_user_data: ConsentStatus::Granted, ad_personalization: ConsentStatus::Denied }),
            ..user()
        };
        let bytes = encode(&with);
        assert!(String::from_utf8_lossy(&bytes).ends_with(r#","consent":["granted","denied"]}"#));
        assert_eq!(decode(&bytes).unwrap(), with);
    }

    #[test]
    fn newer_and_broken_entries_say_what_they_are() {
        let newer = decode(br#"{"v":7,"key":"x"}"#).unwrap_err();
        assert!(newer.to_string().contains("version 7"), "{newer}");
        assert!(matches!(decode(b"not json"), Err(PayloadError::Malformed(_))));
    }
}
