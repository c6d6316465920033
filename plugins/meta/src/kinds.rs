//! Identifier kinds: the host's names, the plugin's own prepared kinds, and Meta's schema keys.
//!
//! `prepare-users` receives the host's well-known kinds and keeps them as the prepared kinds,
//! with three exceptions the plugin defines itself, because Meta splits or derives keys:
//!
//! | raw kind (host)      | prepared kind(s)                       | Meta key(s)            | hashed |
//! |----------------------|----------------------------------------|------------------------|--------|
//! | `external-id`        | `external-id`                          | `EXTERN_ID`            | no     |
//! | `email`              | `email`                                | `EMAIL`                | yes    |
//! | `phone`              | `phone`                                | `PHONE`                | yes    |
//! | `gender`             | `gender`                               | `GEN`                  | yes    |
//! | `date-of-birth`      | `dob-year`, `dob-month`, `dob-day`     | `DOBY`, `DOBM`, `DOBD` | yes    |
//! | `last-name`          | `last-name`                            | `LN`                   | yes    |
//! | `first-name`         | `first-name` and `first-initial`       | `FN`, `FI`             | yes    |
//! | `city`               | `city`                                 | `CT`                   | yes    |
//! | `region`             | `region`                               | `ST`                   | yes    |
//! | `postal-code`        | `postal-code`                          | `ZIP`                  | yes    |
//! | `mobile-ad-id`, `idfa` | the same kind                        | `MADID`                | no     |
//! | `country`            | `country`                              | `COUNTRY`              | yes    |
//!
//! The kinds are mapped to keys only when a batch is sent ([`Key::of_prepared`]), so the
//! prepared users the host stores say in the host's words what they hold. [`Key::ORDER`] is the
//! fixed order of keys in a request's multi-key schema (the order Meta's guide lists them).

/// The host's well-known kind names this plugin matches on: the SDK's, the one table of them.
pub mod host {
    pub use audience_plugin_sdk::kinds::{
        CITY, COUNTRY, DATE_OF_BIRTH, EMAIL, EXTERNAL_ID, FIRST_NAME, GENDER, IDFA, LAST_NAME, MOBILE_AD_ID, PHONE,
        POSTAL_CODE, REGION,
    };
}

/// Prepared kinds the plugin defines (not host kinds): the parts of a date of birth and the
/// first initial derived from a first name.
pub mod derived {
    /// `DOBY`: the four-digit year of birth.
    pub const DOB_YEAR: &str = "dob-year";
    /// `DOBM`: the two-digit month of birth.
    pub const DOB_MONTH: &str = "dob-month";
    /// `DOBD`: the two-digit day of birth.
    pub const DOB_DAY: &str = "dob-day";
    /// `FI`: the first letter of the first name.
    pub const FIRST_INITIAL: &str = "first-initial";
}

/// The kinds the manifest declares, in the order it lists them.
pub const SUPPORTED: [&str; 13] = [
    host::EMAIL,
    host::PHONE,
    host::FIRST_NAME,
    host::LAST_NAME,
    host::DATE_OF_BIRTH,
    host::GENDER,
    host::CITY,
    host::REGION,
    host::POSTAL_CODE,
    host::COUNTRY,
    host::MOBILE_AD_ID,
    host::IDFA,
    host::EXTERNAL_ID,
];

/// Whether `kind` is one the plugin matches on.
pub fn is_supported(kind: &str) -> bool {
    SUPPORTED.contains(&kind)
}

/// One key of Meta's multi-key schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// `EXTERN_ID`: the advertiser's id, sent as is.
    ExternId,
    /// `EMAIL`.
    Email,
    /// `PHONE`.
    Phone,
    /// `GEN`.
    Gen,
    /// `DOBY`.
    Doby,
    /// `DOBM`.
    Dobm,
    /// `DOBD`.
    Dobd,
    /// `LN`.
    Ln,
    /// `FN`.
    Fn,
    /// `FI`.
    Fi,
    /// `CT`.
    Ct,
    /// `ST`.
    St,
    /// `ZIP`.
    Zip,
    /// `MADID`: a mobile advertising id, sent as is (lowercase).
    Madid,
    /// `COUNTRY`.
    Country,
}

impl Key {
    /// The fixed order of keys in a schema (Meta's guide lists them so).
    pub const ORDER: [Key; 15] = [
        Key::ExternId,
        Key::Email,
        Key::Phone,
        Key::Gen,
        Key::Doby,
        Key::Dobm,
        Key::Dobd,
        Key::Ln,
        Key::Fn,
        Key::Fi,
        Key::Ct,
        Key::St,
        Key::Zip,
        Key::Madid,
        Key::Country,
    ];

    /// Meta's name for the key.
    pub fn name(self) -> &'static str {
        match self {
            Key::ExternId => "EXTERN_ID",
            Key::Email => "EMAIL",
            Key::Phone => "PHONE",
            Key::Gen => "GEN",
            Key::Doby => "DOBY",
            Key::Dobm => "DOBM",
            Key::Dobd => "DOBD",
            Key::Ln => "LN",
            Key::Fn => "FN",
            Key::Fi => "FI",
            Key::Ct => "CT",
            Key::St => "ST",
            Key::Zip => "ZIP",
            Key::Madid => "MADID",
            Key::Country => "COUNTRY",
        }
    }

    /// Whether Meta wants the value SHA-256 hashed (everything but `EXTERN_ID` and `MADID`).
    pub fn hashed(self) -> bool {
        !matches!(self, Key::ExternId | Key::Madid)
    }

    /// The key a prepared identifier of `kind` fills; `None` for a kind this plugin never
    /// prepares.
    pub fn of_prepared(kind: &str) -> Option<Key> {
        Some(match kind {
            host::EXTERNAL_ID => Key::ExternId,
            host::EMAIL => Key::Email,
            host::PHONE => Key::Phone,
            host::GENDER => Key::Gen,
            derived::DOB_YEAR => Key::Doby,
            derived::DOB_MONTH => Key::Dobm,
            derived::DOB_DAY => Key::Dobd,
            host::LAST_NAME => Key::Ln,
            host::FIRST_NAME => Key::Fn,
            derived::FIRST_INITIAL => Key::Fi,
            host::CITY => Key::Ct,
            host::REGION => Key::St,
            host::POSTAL_CODE => Key::Zip,
            host::MOBILE_AD_ID | host::IDFA => Key::Madid,
            host::COUNTRY => Key::Country,
            _ => return None,
        })
    }

    /// Whether a value of this key points at one person (as opposed to a trait many share,
    /// like a gender or a city): an invalid-entry sample equal to such a value is attributed
    /// to the users holding it (see [`crate::outcome`]).
    pub fn distinctive(self) -> bool {
        matches!(self, Key::ExternId | Key::Email | Key::Phone | Key::Madid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_supported_kind_but_date_of_birth_maps_to_a_key() {
        for kind in SUPPORTED {
            assert_eq!(Key::of_prepared(kind).is_none(), kind == host::DATE_OF_BIRTH, "{kind}");
        }
        for kind in [derived::DOB_YEAR, derived::DOB_MONTH, derived::DOB_DAY, derived::FIRST_INITIAL] {
            assert!(Key::of_prepared(kind).is_some(), "{kind}");
        }
        assert_eq!(Key::of_prepared("shoe-size"), None);
        assert_eq!(Key::of_prepared(host::IDFA), Some(Key::Madid));
    }

    #[test]
    fn order_is_complete_sorted_and_names_are_meta_s() {
        let mut sorted = Key::ORDER;
        sorted.sort();
        assert_eq!(sorted, Key::ORDER);
        let names: Vec<&str> = Key::ORDER.iter().map(|k| k.name()).collect();
        assert_eq!(names.join(" "), "EXTERN_ID EMAIL PHONE GEN DOBY DOBM DOBD LN FN FI CT ST ZIP MADID COUNTRY");
        assert!(!Key::Madid.hashed() && !Key::ExternId.hashed() && Key::Country.hashed());
    }
}
