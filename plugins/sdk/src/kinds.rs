//! The well-known identifier-kind names.
//!
//! Since contract 0.2.0 an `identifier-kind` is a name (a `String`), so that a partner's new
//! key needs no contract bump. The names below are the ones the host's API accepts and the
//! conformance suite exercises (the table in `wit/v0.2.0/destination.wit`); use them rather
//! than string literals, so a typo is a compile error:
//!
//! ```
//! use audience_plugin_sdk::kinds;
//! use audience_plugin_sdk::types::Identifier;
//! let id = Identifier { kind: kinds::EMAIL.into(), value: "alice@example.com".into() };
//! assert!(id.kind == kinds::EMAIL);
//! assert_eq!(kinds::list(&[kinds::EMAIL, kinds::PHONE]), vec!["email".to_string(), "phone".to_string()]);
//! assert!(kinds::is_well_known("mobile-ad-id") && !kinds::is_well_known("shoe-size"));
//! assert!(kinds::is_valid_name("shoe-size") && !kinds::is_valid_name("Shoe Size"));
//! ```

use crate::types::IdentifierKind;

/// An e-mail address.
pub const EMAIL: &str = "email";
/// A phone number, ideally E.164 (`+15559876543`).
pub const PHONE: &str = "phone";
/// An Android advertising id (AAID / MAID).
pub const MOBILE_AD_ID: &str = "mobile-ad-id";
/// Apple's identifier for advertisers.
pub const IDFA: &str = "idfa";
/// The caller's own id for the user, agreed with the partner.
pub const EXTERNAL_ID: &str = "external-id";
/// A first name, as typed.
pub const FIRST_NAME: &str = "first-name";
/// A last name, as typed.
pub const LAST_NAME: &str = "last-name";
/// A date of birth, `YYYY-MM-DD`.
pub const DATE_OF_BIRTH: &str = "date-of-birth";
/// A gender: `f`, `m` (or `female`, `male`).
pub const GENDER: &str = "gender";
/// A city, as typed.
pub const CITY: &str = "city";
/// A state or province, as typed.
pub const REGION: &str = "region";
/// A postal code, as typed.
pub const POSTAL_CODE: &str = "postal-code";
/// A country, ISO 3166-1 alpha-2 (`us`).
pub const COUNTRY: &str = "country";

/// Every well-known name, in the contract's order.
pub const WELL_KNOWN: [&str; 13] = [
    EMAIL,
    PHONE,
    MOBILE_AD_ID,
    IDFA,
    EXTERNAL_ID,
    FIRST_NAME,
    LAST_NAME,
    DATE_OF_BIRTH,
    GENDER,
    CITY,
    REGION,
    POSTAL_CODE,
    COUNTRY,
];

/// Whether `kind` is one of the [`WELL_KNOWN`] names.
pub fn is_well_known(kind: &str) -> bool {
    WELL_KNOWN.contains(&kind)
}

/// Whether `kind` is spelled as the contract requires: non-empty, lowercase ASCII letters,
/// digits and '-'.
pub fn is_valid_name(kind: &str) -> bool {
    !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `names` as the `list<identifier-kind>` of a manifest or an audience.
pub fn list(names: &[&str]) -> Vec<IdentifierKind> {
    names.iter().map(|name| (*name).to_string()).collect()
}

/// Whether `fields` (a sync's selected match fields) contains `kind`.
pub fn contains(fields: &[IdentifierKind], kind: &str) -> bool {
    fields.iter().any(|field| field == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_names_are_valid_and_distinct() {
        for (i, name) in WELL_KNOWN.iter().enumerate() {
            assert!(is_valid_name(name), "{name}");
            assert!(!WELL_KNOWN[..i].contains(name), "{name} twice");
        }
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("e_mail"));
        assert!(!is_valid_name("EMAIL"));
    }

    #[test]
    fn contains_compares_names() {
        let fields = list(&[EMAIL, EXTERNAL_ID]);
        assert!(contains(&fields, EMAIL));
        assert!(!contains(&fields, PHONE));
    }
}
