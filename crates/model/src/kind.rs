//! Identifier kinds: what a user can be matched on, and the one table of their names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A kind of identifier a user can carry and a sync can match on. The names (`email`,
/// `mobile-ad-id`, ...) are the API's and the store's; the plugin runtime converts to and from
/// each contract version's own type at its boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum IdentifierKind {
    /// An email address.
    Email,
    /// A phone number.
    Phone,
    /// A mobile advertising id (Android's AAID or a generic MAID).
    MobileAdId,
    /// Apple's identifier for advertisers.
    Idfa,
    /// The partner's or the caller's own id for the user.
    ExternalId,
    /// A first (given) name.
    FirstName,
    /// A last (family) name.
    LastName,
    /// A date of birth, `YYYY-MM-DD`.
    DateOfBirth,
    /// A gender, `f` or `m`.
    Gender,
    /// A city.
    City,
    /// A state, province or region.
    Region,
    /// A postal (ZIP) code.
    PostalCode,
    /// A country, ISO 3166-1 alpha-2.
    Country,
}

/// A name that is not an identifier kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown identifier kind {name:?}; known: {}", IdentifierKind::known())]
pub struct UnknownKind {
    /// The name given.
    pub name: String,
}

impl IdentifierKind {
    /// Every kind, in the order the API documents them.
    /// Every kind, in the order the API documents them. The names are the contract's
    /// well-known `identifier-kind` names (`wit/v0.2.0/destination.wit`); a plugin may only be
    /// given kinds its manifest lists.
    pub const ALL: [IdentifierKind; 13] = [
        IdentifierKind::Email,
        IdentifierKind::Phone,
        IdentifierKind::MobileAdId,
        IdentifierKind::Idfa,
        IdentifierKind::ExternalId,
        IdentifierKind::FirstName,
        IdentifierKind::LastName,
        IdentifierKind::DateOfBirth,
        IdentifierKind::Gender,
        IdentifierKind::City,
        IdentifierKind::Region,
        IdentifierKind::PostalCode,
        IdentifierKind::Country,
    ];

    /// The kind's name: `email`, `phone`, `mobile-ad-id`, `idfa`, `external-id`, `first-name`,
    /// `last-name`, `date-of-birth`, `gender`, `city`, `region`, `postal-code`, `country`.
    pub fn name(self) -> &'static str {
        match self {
            IdentifierKind::Email => "email",
            IdentifierKind::Phone => "phone",
            IdentifierKind::MobileAdId => "mobile-ad-id",
            IdentifierKind::Idfa => "idfa",
            IdentifierKind::ExternalId => "external-id",
            IdentifierKind::FirstName => "first-name",
            IdentifierKind::LastName => "last-name",
            IdentifierKind::DateOfBirth => "date-of-birth",
            IdentifierKind::Gender => "gender",
            IdentifierKind::City => "city",
            IdentifierKind::Region => "region",
            IdentifierKind::PostalCode => "postal-code",
            IdentifierKind::Country => "country",
        }
    }

    /// Every kind's name, comma-separated, for messages that list what is accepted.
    pub fn known() -> String {
        Self::ALL.map(Self::name).join(", ")
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IdentifierKind {
    type Err = UnknownKind;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|kind| kind.name() == name).ok_or_else(|| UnknownKind { name: name.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_match_the_serde_form() {
        for kind in IdentifierKind::ALL {
            assert_eq!(kind.name().parse::<IdentifierKind>(), Ok(kind));
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{}\"", kind.name()));
        }
    }

    #[test]
    fn an_unknown_name_is_refused_with_the_known_ones() {
        let err = "fax".parse::<IdentifierKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown identifier kind \"fax\"; known: email, phone, mobile-ad-id, idfa, external-id, first-name, \
             last-name, date-of-birth, gender, city, region, postal-code, country"
        );
    }
}
