//! The identifier kinds the plugin matches on, and the three kinds of Google list they go to.
//!
//! A Customer Match list has exactly one upload key type, fixed when it is created:
//!
//! | key type (DM `uploadKeyTypes`) | host kinds | a member is |
//! |---|---|---|
//! | `CONTACT_ID` | `email`, `phone`, and `first-name` + `last-name` + `country` + `postal-code` (an address) | `userData.userIdentifiers`: up to 10 identifiers, emails and phones repeatable, one address |
//! | `MOBILE_ID`  | `mobile-ad-id` (Android, key space `ANDROID`), `idfa` (iOS, key space `IOS`) | `mobileData.mobileIds`: up to 10 ids |
//! | `USER_ID`    | `external-id` | `userIdData.userId`: one id |
//!
//! One sync writes one list, so one key type: the type of the sync's **first** selected field
//! the plugin supports ([`KeyType::for_fields`]). Selected fields of another type are not
//! sent (check-target reports the mix); a user without a value of the list's type is
//! not-synced.

use audience_plugin_sdk::kinds;
use audience_plugin_sdk::types::IdentifierKind;

/// The kinds a contact-info list holds.
pub const CONTACT: [&str; 6] =
    [kinds::EMAIL, kinds::PHONE, kinds::FIRST_NAME, kinds::LAST_NAME, kinds::COUNTRY, kinds::POSTAL_CODE];
/// The kinds a mobile-id list holds.
pub const MOBILE: [&str; 2] = [kinds::MOBILE_AD_ID, kinds::IDFA];
/// The kinds a user-id list holds.
pub const USER: [&str; 1] = [kinds::EXTERNAL_ID];

/// The kinds the plugin matches on, in the manifest's order.
pub const SUPPORTED: [&str; 9] =
    [CONTACT[0], CONTACT[1], CONTACT[2], CONTACT[3], CONTACT[4], CONTACT[5], MOBILE[0], MOBILE[1], USER[0]];

/// The four kinds that together make one address identifier.
pub const ADDRESS: [&str; 4] = [kinds::FIRST_NAME, kinds::LAST_NAME, kinds::COUNTRY, kinds::POSTAL_CODE];

/// Whether the plugin matches on `kind`.
pub fn is_supported(kind: &str) -> bool {
    SUPPORTED.contains(&kind)
}

/// A list's upload key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// Contact information: emails, phones, addresses.
    ContactId,
    /// Mobile advertising ids.
    MobileId,
    /// The advertiser's own user ids.
    UserId,
}

impl KeyType {
    /// The type whose members hold `kind`, if the plugin supports it.
    pub fn of_kind(kind: &str) -> Option<Self> {
        match kind {
            kinds::EMAIL
            | kinds::PHONE
            | kinds::FIRST_NAME
            | kinds::LAST_NAME
            | kinds::COUNTRY
            | kinds::POSTAL_CODE => Some(Self::ContactId),
            kinds::MOBILE_AD_ID | kinds::IDFA => Some(Self::MobileId),
            kinds::EXTERNAL_ID => Some(Self::UserId),
            _ => None,
        }
    }

    /// The type of the first of `fields` the plugin supports: the type of the sync's list.
    pub fn for_fields(fields: &[IdentifierKind]) -> Option<Self> {
        fields.iter().find_map(|f| Self::of_kind(f))
    }

    /// The Data Manager name (`CONTACT_ID`, ...).
    pub fn dm_name(self) -> &'static str {
        match self {
            Self::ContactId => "CONTACT_ID",
            Self::MobileId => "MOBILE_ID",
            Self::UserId => "USER_ID",
        }
    }

    /// The type a Data Manager name stands for.
    pub fn from_dm_name(name: &str) -> Option<Self> {
        match name {
            "CONTACT_ID" => Some(Self::ContactId),
            "MOBILE_ID" => Some(Self::MobileId),
            "USER_ID" => Some(Self::UserId),
            _ => None,
        }
    }

    /// Words for people: "contact info (email, phone, address)".
    pub fn words(self) -> &'static str {
        match self {
            Self::ContactId => "contact info (email, phone, address)",
            Self::MobileId => "mobile advertising ids (mobile-ad-id, idfa)",
            Self::UserId => "your own user ids (external-id)",
        }
    }

    /// The host kinds members of this type hold.
    pub fn kinds(self) -> &'static [&'static str] {
        match self {
            Self::ContactId => &CONTACT,
            Self::MobileId => &MOBILE,
            Self::UserId => &USER,
        }
    }
}

/// The distinct key types of the supported kinds among `fields`, in order of first appearance.
pub fn key_types(fields: &[IdentifierKind]) -> Vec<KeyType> {
    let mut types = Vec::new();
    for t in fields.iter().filter_map(|f| KeyType::of_kind(f)) {
        if !types.contains(&t) {
            types.push(t);
        }
    }
    types
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(names: &[&str]) -> Vec<IdentifierKind> {
        kinds::list(names)
    }

    #[test]
    fn the_first_supported_field_decides() {
        assert_eq!(KeyType::for_fields(&fields(&["gender", "phone", "idfa"])), Some(KeyType::ContactId));
        assert_eq!(KeyType::for_fields(&fields(&["idfa", "email"])), Some(KeyType::MobileId));
        assert_eq!(KeyType::for_fields(&fields(&["external-id"])), Some(KeyType::UserId));
        assert_eq!(KeyType::for_fields(&fields(&["city"])), None);
        assert_eq!(key_types(&fields(&["email", "idfa", "phone"])), vec![KeyType::ContactId, KeyType::MobileId]);
        for t in [KeyType::ContactId, KeyType::MobileId, KeyType::UserId] {
            assert_eq!(KeyType::from_dm_name(t.dm_name()), Some(t));
            assert!(t.kinds().iter().all(|k| KeyType::of_kind(k) == Some(t)));
        }
        assert_eq!(KeyType::ContactId.kinds().len() + KeyType::MobileId.kinds().len() + 1, SUPPORTED.len());
    }
}
