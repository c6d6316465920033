//! Which identifier a customer list holds, and how a sync picks it.
//!
//! A Pinterest customer list has one `list_type` (EMAIL, MAID, IDFA, ...), while a user may
//! carry several identifier kinds. Policy: the sync's `audience-spec.identifiers` decides the
//! list type — the first kind it selects in the priority **email > mobile-ad-id > idfa** (emails
//! match best on Pinterest, and MAID before IDFA only to be deterministic). Each prepared user
//! keeps every usable identifier; `add-users` sends, per user, the first identifier of the
//! list's kind and reports users without one as rejected. The chosen type is recorded in the
//! opaque audience id (see [`crate::audience_ref`]), because Pinterest's CustomerList object
//! does not report its list type back.

use std::fmt;

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

/// The identifier kinds Pinterest can match on, in list-type priority order.
pub const SUPPORTED_KINDS: [IdentifierKind; 3] =
    [IdentifierKind::Email, IdentifierKind::MobileAdId, IdentifierKind::Idfa];

impl ListType {
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
        match name {
            "EMAIL" => Some(Self::Email),
            "MAID" => Some(Self::Maid),
            "IDFA" => Some(Self::Idfa),
            _ => None,
        }
    }

    /// The list type holding identifiers of `kind`, if Pinterest supports that kind.
    pub fn for_kind(kind: IdentifierKind) -> Option<Self> {
        match kind {
            IdentifierKind::Email => Some(Self::Email),
            IdentifierKind::MobileAdId => Some(Self::Maid),
            IdentifierKind::Idfa => Some(Self::Idfa),
            IdentifierKind::Phone | IdentifierKind::ExternalId => None,
        }
    }

    /// The identifier kind this list holds.
    pub fn kind(self) -> IdentifierKind {
        match self {
            Self::Email => IdentifierKind::Email,
            Self::Maid => IdentifierKind::MobileAdId,
            Self::Idfa => IdentifierKind::Idfa,
        }
    }

    /// The list type for a sync selecting `identifiers`: the first supported kind in priority
    /// order; `invalid-request` when the sync selects none Pinterest accepts.
    pub fn for_sync(identifiers: &[IdentifierKind]) -> Result<Self, DestinationError> {
        SUPPORTED_KINDS.into_iter().find(|kind| identifiers.contains(kind)).and_then(Self::for_kind).ok_or_else(|| {
            DestinationError::InvalidRequest(
                "the audience selects no identifier Pinterest can match on \
                     (it accepts email, mobile-ad-id and idfa)"
                    .into(),
            )
        })
    }
}

impl fmt::Display for ListType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

pub use audience_plugin_sdk::identity::kind_name;

#[cfg(test)]
mod tests {
    use super::*;
    use IdentifierKind::*;

    #[test]
    fn priority_is_email_then_maid_then_idfa() {
        assert_eq!(ListType::for_sync(&[Idfa, MobileAdId, Email]), Ok(ListType::Email));
        assert_eq!(ListType::for_sync(&[Phone, Idfa, MobileAdId]), Ok(ListType::Maid));
        assert_eq!(ListType::for_sync(&[Idfa]), Ok(ListType::Idfa));
        assert!(matches!(ListType::for_sync(&[Phone, ExternalId]), Err(DestinationError::InvalidRequest(_))));
        assert!(matches!(ListType::for_sync(&[]), Err(DestinationError::InvalidRequest(_))));
    }

    #[test]
    fn names_round_trip_and_serialize_as_the_spec_enum() {
        for t in [ListType::Email, ListType::Maid, ListType::Idfa] {
            assert_eq!(ListType::parse(t.as_str()), Some(t));
            assert_eq!(ListType::for_kind(t.kind()), Some(t));
            assert_eq!(serde_json::to_value(t).ok(), Some(serde_json::json!(t.as_str())));
        }
        assert_eq!(ListType::parse("email"), None);
    }
}
