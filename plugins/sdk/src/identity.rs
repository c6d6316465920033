//! Normalising and hashing the identifiers users are matched on.
//!
//! Partners match hashed identifiers, so two spellings of one address must hash alike: the
//! industry convention (and what ad partners document) is trim, lowercase, then SHA-256,
//! hex-encoded. Validating before hashing matters too: a hash hides garbage, so a malformed
//! address would be uploaded, never match, and never be reported. The checks here are
//! deliberately about plausibility, not RFC 5322: they catch typos and wrong fields, and the
//! error says what was wrong in words an operator can act on, quoting at most
//! [`MAX_QUOTED_CHARS`] characters of the value.
//!
//! ```
//! use audience_plugin_sdk::identity::{hashed_email, normalize_email};
//! assert_eq!(normalize_email(" Alice@Example.COM ").as_deref(), Ok("alice@example.com"));
//! assert_eq!(
//!     hashed_email(" Alice@Example.COM ").as_deref(),
//!     Ok("ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976")
//! );
//! assert_eq!(normalize_email("bob@").unwrap_err().to_string(), "'bob@' has no domain");
//! ```

use std::fmt;

use sha2::{Digest, Sha256};

use crate::text::excerpt;

/// How much of a rejected value an error message quotes.
pub const MAX_QUOTED_CHARS: usize = 40;

/// The longest e-mail address accepted (RFC 5321's limit on a forward path).
pub const MAX_EMAIL_LEN: usize = 254;

/// Why a value is not a usable identifier. `Display` gives a short reason, quoting the value
/// (cut to [`MAX_QUOTED_CHARS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityError {
    /// Nothing but whitespace.
    Empty,
    /// An e-mail address longer than [`MAX_EMAIL_LEN`].
    TooLong(String),
    /// Whitespace or a control character inside the value.
    Whitespace(String),
    /// No `@`.
    MissingAt(String),
    /// More than one `@`.
    SeveralAts(String),
    /// Nothing before the `@`.
    EmptyLocalPart(String),
    /// Nothing after the `@`.
    MissingDomain(String),
    /// A domain without a dot (`bob@localhost`).
    DomainWithoutDot(String),
    /// A domain with an empty label (`bob@.com`, `bob@a..com`, `bob@a.com.`).
    EmptyDomainLabel(String),
    /// A top-level domain shorter than two characters.
    ShortTopLevelDomain(String),
    /// A device id that is not shaped like a UUID (8-4-4-4-12 hex digits).
    NotUuid(String),
    /// The all-zero device id, which devices report when the user limited ad tracking.
    ZeroDeviceId,
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "the value is empty"),
            Self::TooLong(v) => write!(f, "'{v}' is longer than {MAX_EMAIL_LEN} characters"),
            Self::Whitespace(v) => write!(f, "'{v}' contains whitespace"),
            Self::MissingAt(v) => write!(f, "'{v}' has no '@'"),
            Self::SeveralAts(v) => write!(f, "'{v}' has more than one '@'"),
            Self::EmptyLocalPart(v) => write!(f, "'{v}' has nothing before the '@'"),
            Self::MissingDomain(v) => write!(f, "'{v}' has no domain"),
            Self::DomainWithoutDot(v) => write!(f, "'{v}' has no dot in its domain"),
            Self::EmptyDomainLabel(v) => write!(f, "'{v}' has an empty part in its domain"),
            Self::ShortTopLevelDomain(v) => write!(f, "'{v}' has a one-letter top-level domain"),
            Self::NotUuid(v) => write!(f, "'{v}' is not a device id (8-4-4-4-12 hex digits)"),
            Self::ZeroDeviceId => {
                write!(f, "the all-zero device id means the user limited ad tracking")
            }
        }
    }
}

impl std::error::Error for IdentityError {}

fn quoted(value: &str) -> String {
    excerpt(value, MAX_QUOTED_CHARS)
}

/// Trim and lowercase an e-mail address and check it looks like `local@domain.tld`.
pub fn normalize_email(raw: &str) -> Result<String, IdentityError> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(IdentityError::Empty);
    }
    let q = || quoted(&email);
    if email.chars().count() > MAX_EMAIL_LEN {
        return Err(IdentityError::TooLong(q()));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(IdentityError::Whitespace(q()));
    }
    let (local, domain) = email.split_once('@').ok_or_else(|| IdentityError::MissingAt(q()))?;
    if domain.contains('@') {
        return Err(IdentityError::SeveralAts(q()));
    }
    if local.is_empty() {
        return Err(IdentityError::EmptyLocalPart(q()));
    }
    if domain.is_empty() {
        return Err(IdentityError::MissingDomain(q()));
    }
    if !domain.contains('.') {
        return Err(IdentityError::DomainWithoutDot(q()));
    }
    if domain.split('.').any(str::is_empty) {
        return Err(IdentityError::EmptyDomainLabel(q()));
    }
    let tld = domain.rsplit('.').next().unwrap_or_default();
    if tld.chars().count() < 2 {
        return Err(IdentityError::ShortTopLevelDomain(q()));
    }
    Ok(email)
}

/// Trim and lowercase a mobile advertising id (Android MAID or Apple IDFA) and check it has
/// the UUID shape `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. The all-zero id is refused: devices
/// report it when the user limited ad tracking, so it matches nobody (or everybody).
pub fn normalize_device_id(raw: &str) -> Result<String, IdentityError> {
    let id = raw.trim().to_ascii_lowercase();
    if id.is_empty() {
        return Err(IdentityError::Empty);
    }
    let shaped = id.len() == 36
        && id.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if !shaped {
        return Err(IdentityError::NotUuid(quoted(&id)));
    }
    if id.bytes().all(|b| b == b'0' || b == b'-') {
        return Err(IdentityError::ZeroDeviceId);
    }
    Ok(id)
}

/// SHA-256 of `value`'s UTF-8 bytes, as 64 lowercase hex digits.
///
/// ```
/// use audience_plugin_sdk::identity::sha256_hex;
/// assert_eq!(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
/// ```
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// Whether `value` is exactly 64 hex digits (either case): an already-hashed identifier.
pub fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The SHA-256 hex of a normalised e-mail address; a value that already is a SHA-256 hex
/// digest (after trimming) passes through, lowercased.
pub fn hashed_email(raw: &str) -> Result<String, IdentityError> {
    hashed_with(raw, normalize_email)
}

/// The SHA-256 hex of a normalised device id (MAID or IDFA); a value that already is a SHA-256
/// hex digest (after trimming) passes through, lowercased.
pub fn hashed_device_id(raw: &str) -> Result<String, IdentityError> {
    hashed_with(raw, normalize_device_id)
}

fn hashed_with(raw: &str, normalize: fn(&str) -> Result<String, IdentityError>) -> Result<String, IdentityError> {
    let trimmed = raw.trim();
    if is_sha256_hex(trimmed) {
        return Ok(trimmed.to_ascii_lowercase());
    }
    normalize(trimmed).map(|value| sha256_hex(&value))
}

/// An identifier kind's name as the contract spells it (`email`, `mobile-ad-id`, ...): the one
/// table of names on the guest side, for messages and wire formats.
pub fn kind_name(kind: crate::types::IdentifierKind) -> &'static str {
    use crate::types::IdentifierKind;
    match kind {
        IdentifierKind::Email => "email",
        IdentifierKind::Phone => "phone",
        IdentifierKind::MobileAdId => "mobile-ad-id",
        IdentifierKind::Idfa => "idfa",
        IdentifierKind::ExternalId => "external-id",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected digests computed with Python: hashlib.sha256(b"...").hexdigest().
    const ALICE: &str = "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976";
    const MAID: &str = "d4181bb455a74b3bc8b37c75ac9b2c702eb6b9930bd040b861403b31ca85634d";

    #[test]
    fn email_vectors() {
        assert_eq!(sha256_hex("alice@example.com"), ALICE);
        assert_eq!(hashed_email(" Alice@Example.COM ").as_deref(), Ok(ALICE));
        assert_eq!(hashed_email("ALICE@EXAMPLE.COM\t").as_deref(), Ok(ALICE));
    }

    #[test]
    fn device_id_vectors() {
        let raw = " 38400000-8CF0-11BD-B23E-10B96E40000D ";
        assert_eq!(normalize_device_id(raw).as_deref(), Ok("38400000-8cf0-11bd-b23e-10b96e40000d"));
        assert_eq!(hashed_device_id(raw).as_deref(), Ok(MAID));
    }

    #[test]
    fn already_hashed_values_pass_through_lowercased() {
        let upper = ALICE.to_ascii_uppercase();
        assert!(is_sha256_hex(&upper));
        assert_eq!(hashed_email(&format!(" {upper} ")).as_deref(), Ok(ALICE));
        assert_eq!(hashed_device_id(MAID).as_deref(), Ok(MAID));
        assert!(!is_sha256_hex(&ALICE[1..]));
        assert!(!is_sha256_hex(&format!("{}g", &ALICE[1..])));
    }

    #[test]
    fn email_reasons() {
        let reason = |raw: &str| normalize_email(raw).map_err(|e| e.to_string());
        assert_eq!(reason("bob@"), Err("'bob@' has no domain".into()));
        assert_eq!(reason("   "), Err("the value is empty".into()));
        assert_eq!(reason("bob"), Err("'bob' has no '@'".into()));
        assert_eq!(reason("a@b@c.com"), Err("'a@b@c.com' has more than one '@'".into()));
        assert_eq!(reason("@x.com"), Err("'@x.com' has nothing before the '@'".into()));
        assert_eq!(reason("bob@localhost"), Err("'bob@localhost' has no dot in its domain".into()));
        assert_eq!(reason("bob@.com"), Err("'bob@.com' has an empty part in its domain".into()));
        assert_eq!(reason("bob@a..com"), Err("'bob@a..com' has an empty part in its domain".into()));
        assert_eq!(reason("bob@a.c"), Err("'bob@a.c' has a one-letter top-level domain".into()));
        assert_eq!(reason("bo b@a.com"), Err("'bo b@a.com' contains whitespace".into()));
        assert!(matches!(normalize_email(&"a".repeat(300)), Err(IdentityError::TooLong(_))));
    }

    #[test]
    fn long_values_are_cut_in_reasons() {
        let raw = format!("{}@", "x".repeat(100));
        let reason = normalize_email(&raw).map_err(|e| e.to_string());
        assert_eq!(reason, Err(format!("'{}…' has no domain", "x".repeat(MAX_QUOTED_CHARS))));
    }

    #[test]
    fn device_id_reasons() {
        assert!(matches!(normalize_device_id("not-a-uuid"), Err(IdentityError::NotUuid(_))));
        assert!(matches!(normalize_device_id("38400000-8cf0-11bd-b23e-10b96e40000"), Err(IdentityError::NotUuid(_))));
        assert!(matches!(normalize_device_id("38400000x8cf0-11bd-b23e-10b96e40000d"), Err(IdentityError::NotUuid(_))));
        assert!(matches!(normalize_device_id("3840000g-8cf0-11bd-b23e-10b96e40000d"), Err(IdentityError::NotUuid(_))));
        assert_eq!(normalize_device_id("00000000-0000-0000-0000-000000000000"), Err(IdentityError::ZeroDeviceId));
        assert_eq!(normalize_device_id(""), Err(IdentityError::Empty));
    }

    #[test]
    fn plausible_emails_pass() {
        for ok in ["a@b.co", "first.last+tag@sub.example.org", "x@xn--p1ai.xn--p1ai", "Ü@ü.de"] {
            assert!(normalize_email(ok).is_ok(), "{ok}");
        }
    }
}
