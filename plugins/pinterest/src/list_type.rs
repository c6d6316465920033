//! Which identifier a customer list holds, and how a sync picks it.
//!
//! A Pinterest customer list has one `list_type` (EMAIL, MAID, IDFA, ...), fixed when it is
//! created, so this plugin declares `audience-keys: one-kind`. The rule, used alike by
//! `prepare-users`, `upsert-audience`, `check-target` and the create path of `add-users`:
//! **the list keeps the first of the sync's match fields (in the sync's order) that Pinterest
//! supports**. A sync matching on `[mobile-ad-id, email]` makes a MAID list; one matching on
//! `[phone, email]` an EMAIL list (phone is not supported and is skipped). A user lacking a
//! valid value of that one kind is `not-synced` at entry; the user's other identifiers are not
//! used.
//!
//! Pinterest's CustomerList object does not report its list type back, so the type is recorded
//! in the opaque audience id when the plugin knows it (see [`crate::audience_ref`]).

use std::fmt;

use audience_plugin_sdk::kinds;
use audience_plugin_sdk::types::{DestinationError, IdentifierKind};
use serde::Serialize;

/// The `UserListType` values this plugin uses (the spec also has LR_ID, DLX_ID and
/// HASHED_PINNER_ID, which no `identifier-kind` maps to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ListType {
    /// Hashed e-mail addresses.
    #[serde(rename = "EMAIL")]
    Email,
    /// Hashed Android advertising ids.
    #[serde(rename = "MAID")]
    Maid,
    /// Hashed Apple identifiers for advertisers.
    #[serde(rename = "IDFA")]
    Idfa,
}

/// The identifier kinds Pinterest can match on (the manifest's `identifiers`).
pub const SUPPORTED_KINDS: [&str; 3] = [kinds::EMAIL, kinds::MOBILE_AD_ID, kinds::IDFA];

/// The supported kinds in words, for messages.
pub const SUPPORTED_IN_WORDS: &str = "email, mobile-ad-id and idfa";

impl ListType {
    /// Every type this plugin uses.
    pub const ALL: [ListType; 3] = [ListType::Email, ListType::Maid, ListType::Idfa];

    /// The spec's name for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Maid => "MAID",
            Self::Idfa => "IDFA",
        }
    }

    /// Parse the spec's name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The list type holding identifiers of `kind`, if Pinterest supports that kind.
    pub fn for_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.kind() == kind)
    }

    /// The identifier kind this list holds.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Email => kinds::EMAIL,
            Self::Maid => kinds::MOBILE_AD_ID,
            Self::Idfa => kinds::IDFA,
        }
    }

    /// What the list holds, in words ("e-mail addresses").
    pub fn holds(self) -> &'static str {
        match self {
            Self::Email => "e-mail addresses",
            Self::Maid => "Android mobile ad ids (MAID)",
            Self::Idfa => "Apple IDFAs",
        }
    }

    /// The list type for match fields `fields`: the first of them, in order, that Pinterest
    /// supports; `None` when there is none.
    pub fn first_supported(fields: &[IdentifierKind]) -> Option<Self> {
        fields.iter().find_map(|kind| Self::for_kind(kind))
    }

    /// [`first_supported`](Self::first_supported), or `invalid-request` naming what the sync
    /// selected.
    pub fn for_sync(fields: &[IdentifierKind]) -> Result<Self, DestinationError> {
        Self::first_supported(fields).ok_or_else(|| DestinationError::InvalidRequest(no_supported_kind(fields)))
    }
}

/// Why `fields` cannot make a Pinterest list, in words for people.
pub fn no_supported_kind(fields: &[IdentifierKind]) -> String {
    let asked = if fields.is_empty() { "none".to_string() } else { fields.join(", ") };
    format!("none of the sync's match fields ({asked}) is one Pinterest can match on; it accepts {SUPPORTED_IN_WORDS}")
}

impl fmt::Display for ListType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::kinds::{EMAIL, EXTERNAL_ID, IDFA, MOBILE_AD_ID, PHONE, list};

    use super::*;

    #[test]
    fn the_first_supported_field_in_the_syncs_order_wins() {
        assert_eq!(ListType::for_sync(&list(&[IDFA, MOBILE_AD_ID, EMAIL])), Ok(ListType::Idfa));
        assert_eq!(ListType::for_sync(&list(&[MOBILE_AD_ID, EMAIL])), Ok(ListType::Maid));
        assert_eq!(ListType::for_sync(&list(&[PHONE, EMAIL, IDFA])), Ok(ListType::Email));
        assert_eq!(ListType::for_sync(&list(&["shoe-size", IDFA])), Ok(ListType::Idfa));
        assert_eq!(
            ListType::for_sync(&list(&[PHONE, EXTERNAL_ID])),
            Err(DestinationError::InvalidRequest(
                "none of the sync's match fields (phone, external-id) is one Pinterest can match on; \
                 it accepts email, mobile-ad-id and idfa"
                    .into()
            ))
        );
        assert!(matches!(ListType::for_sync(&[]), Err(DestinationError::InvalidRequest(m)) if m.contains("(none)")));
    }

    #[test]
    fn names_round_trip_and_serialize_as_the_spec_enum() {
        for t in ListType::ALL {
            assert_eq!(ListType::parse(t.as_str()), Some(t));
            assert_eq!(ListType::for_kind(t.kind()), Some(t));
            assert_eq!(serde_json::to_value(t).ok(), Some(serde_json::json!(t.as_str())));
        }
        assert_eq!(ListType::parse("email"), None);
        assert_eq!(SUPPORTED_KINDS.map(ListType::for_kind), ListType::ALL.map(Some));
    }
}
