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
//!
//! Hashing many values: [`hash_all`], [`hashed_emails`], [`hashed_device_ids`] and
//! [`HashQueue`] hash through a [`Host`]'s `hashing` import, which the real host does in native
//! code (a test fake's default hashes natively, identically). The single-value functions
//! ([`sha256_hex`], [`hashed_email`], ...) hash in WebAssembly, which for Rust is fast too.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::hashing::Normalization;
use crate::host::Host;
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

/// An identifier kind's name as the contract spells it. Since contract 0.2.0 a kind *is* its
/// name, so this returns `kind` unchanged; it is kept so that 0.1.0 code (which matched on an
/// enum) ports by writing `kind_name(&kind)`. New code uses the kind directly and the
/// constants of [`kinds`](crate::kinds).
pub fn kind_name(kind: &str) -> &str {
    kind
}

/// `value` normalised as the host's `hashing` import normalises it, natively:
///
/// | normalization       | what is kept                                              |
/// |---------------------|-----------------------------------------------------------|
/// | `none`              | the value as given                                        |
/// | `trim-lowercase`    | the value trimmed of surrounding whitespace, lowercased   |
/// | `digits-only`       | ASCII digits only                                         |
/// | `letters-lowercase` | letters only (any script), lowercased                     |
///
/// ```
/// use audience_plugin_sdk::hashing::Normalization;
/// use audience_plugin_sdk::identity::normalize;
/// assert_eq!(normalize(Normalization::DigitsOnly, "+1 (555) 987-6543"), "15559876543");
/// assert_eq!(normalize(Normalization::LettersLowercase, "O'Brien-Smith"), "obriensmith");
/// ```
pub fn normalize(normalization: Normalization, value: &str) -> String {
    match normalization {
        Normalization::None => value.to_string(),
        Normalization::TrimLowercase => value.trim().to_lowercase(),
        Normalization::DigitsOnly => value.chars().filter(char::is_ascii_digit).collect(),
        Normalization::LettersLowercase => {
            value.chars().filter(|c| c.is_alphabetic()).flat_map(char::to_lowercase).collect()
        }
    }
}

/// The SHA-256 hex of `value` after `normalization`: natively, the same answer as one value of
/// the host's `hashing.sha256-hex`.
pub fn sha256_hex_normalized(normalization: Normalization, value: &str) -> String {
    sha256_hex(&normalize(normalization, value))
}

/// How many values [`hash_all`] sends to the host in one `hashing.sha256-hex` call (the host
/// accepts far more; this keeps each call's memory modest).
pub const HOST_HASH_CHUNK: usize = 10_000;

/// The SHA-256 hex of each of `values` after `normalization`, in order, computed by `host` in
/// calls of at most [`HOST_HASH_CHUNK`] values. Should a host ever answer a call with the wrong
/// number of digests, that chunk is hashed natively instead, so the result always has one
/// digest per value.
pub fn hash_all(host: &dyn Host, normalization: Normalization, values: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(values.len());
    for chunk in values.chunks(HOST_HASH_CHUNK) {
        let hashed = host.sha256_hex(normalization, chunk);
        if hashed.len() == chunk.len() {
            out.extend(hashed);
        } else {
            out.extend(chunk.iter().map(|value| sha256_hex_normalized(normalization, value)));
        }
    }
    out
}

/// [`hashed_email`] for many addresses, hashing in bulk through `host`: each address is
/// validated and normalised natively (cheap), already-hashed values pass through, and the rest
/// are hashed by the host in as few calls as [`hash_all`] needs. One result per address, in
/// order.
///
/// ```
/// use audience_plugin_sdk::identity::{hashed_email, hashed_emails};
/// # use audience_plugin_sdk::{Host, http::Response, http_client::{HttpError, Request}, log::Level};
/// # struct Fake;
/// # impl Host for Fake {
/// #     fn send(&self, _: &Request) -> Result<Response, HttpError> { Err(HttpError::Timeout) }
/// #     fn log(&self, _: Level, _: &str) {}
/// # }
/// let host = Fake; // in the component: audience_plugin_sdk::WasmHost
/// let out = hashed_emails(&host, &[" Alice@Example.COM ", "bob@"]);
/// assert_eq!(out[0], hashed_email("alice@example.com"));
/// assert_eq!(out[1].as_ref().unwrap_err().to_string(), "'bob@' has no domain");
/// ```
pub fn hashed_emails<S: AsRef<str>>(host: &dyn Host, raws: &[S]) -> Vec<Result<String, IdentityError>> {
    hashed_many_with(host, raws, normalize_email)
}

/// [`hashed_device_id`] for many ids, hashing in bulk through `host` (see [`hashed_emails`]).
pub fn hashed_device_ids<S: AsRef<str>>(host: &dyn Host, raws: &[S]) -> Vec<Result<String, IdentityError>> {
    hashed_many_with(host, raws, normalize_device_id)
}

/// Validate and normalise each of `raws` with `normalize` natively, then hash the normalised
/// values through `host` in bulk; a value that already is a SHA-256 hex digest (after
/// trimming) passes through, lowercased. One result per value, in order.
pub fn hashed_many_with<S: AsRef<str>>(
    host: &dyn Host,
    raws: &[S],
    normalize: impl Fn(&str) -> Result<String, IdentityError>,
) -> Vec<Result<String, IdentityError>> {
    let mut queue = HashQueue::new();
    let tickets: Vec<Result<HashTicket, IdentityError>> = raws
        .iter()
        .map(|raw| {
            let trimmed = raw.as_ref().trim();
            if is_sha256_hex(trimmed) {
                Ok(queue.push_hashed(trimmed))
            } else {
                normalize(trimmed).map(|value| queue.push(Normalization::None, value))
            }
        })
        .collect();
    let mut hashed = queue.hash(host);
    tickets.into_iter().map(|ticket| ticket.map(|t| hashed.take(t))).collect()
}

/// A value's place in a [`HashQueue`]; redeem it in the [`HashedValues`] the queue produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashTicket(usize);

#[derive(Debug, Clone)]
enum Queued {
    Hash(Normalization, String),
    Ready(String),
}

/// Values to hash, collected while preparing users, then hashed all at once through the host.
///
/// `prepare-users` handles thousands of users with several identifiers each; hashing them one
/// by one in WebAssembly is slow in some languages and costs the call budget. Queue each value
/// as it is validated, [`hash`](Self::hash) the queue (one host call per normalization used,
/// chunked by [`hash_all`]), then redeem each [`HashTicket`]:
///
/// ```
/// use audience_plugin_sdk::hashing::Normalization;
/// use audience_plugin_sdk::identity::{HashQueue, sha256_hex};
/// # use audience_plugin_sdk::{Host, http::Response, http_client::{HttpError, Request}, log::Level};
/// # struct Fake;
/// # impl Host for Fake {
/// #     fn send(&self, _: &Request) -> Result<Response, HttpError> { Err(HttpError::Timeout) }
/// #     fn log(&self, _: Level, _: &str) {}
/// # }
/// let mut queue = HashQueue::new();
/// let email = queue.push(Normalization::TrimLowercase, " Alice@Example.COM ");
/// let phone = queue.push(Normalization::DigitsOnly, "+1 (555) 987-6543");
/// let mut hashed = queue.hash(&Fake);
/// assert_eq!(hashed.get(email), sha256_hex("alice@example.com"));
/// assert_eq!(hashed.take(phone), sha256_hex("15559876543"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct HashQueue {
    entries: Vec<Queued>,
}

impl HashQueue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queue `value` to be hashed after `normalization`.
    pub fn push(&mut self, normalization: Normalization, value: impl Into<String>) -> HashTicket {
        self.entries.push(Queued::Hash(normalization, value.into()));
        HashTicket(self.entries.len() - 1)
    }

    /// Queue a value that already is a digest: it comes back trimmed and lowercased, unhashed.
    pub fn push_hashed(&mut self, digest: &str) -> HashTicket {
        self.entries.push(Queued::Ready(digest.trim().to_ascii_lowercase()));
        HashTicket(self.entries.len() - 1)
    }

    /// [`push_hashed`](Self::push_hashed) when `value` (trimmed) already is a SHA-256 hex
    /// digest, else [`push`](Self::push).
    pub fn push_unless_hashed(&mut self, normalization: Normalization, value: &str) -> HashTicket {
        if is_sha256_hex(value.trim()) { self.push_hashed(value) } else { self.push(normalization, value) }
    }

    /// How many values are queued.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Hash every queued value through `host`: one [`hash_all`] per normalization used, none
    /// when nothing needs hashing.
    pub fn hash(self, host: &dyn Host) -> HashedValues {
        let mut out: Vec<String> = vec![String::new(); self.entries.len()];
        let mut groups: Vec<(Normalization, Vec<usize>, Vec<String>)> = Vec::new();
        for (i, entry) in self.entries.into_iter().enumerate() {
            match entry {
                Queued::Ready(digest) => out[i] = digest,
                Queued::Hash(normalization, value) => match groups.iter_mut().find(|(n, _, _)| *n == normalization) {
                    Some((_, slots, values)) => {
                        slots.push(i);
                        values.push(value);
                    }
                    None => groups.push((normalization, vec![i], vec![value])),
                },
            }
        }
        for (normalization, slots, values) in groups {
            for (slot, digest) in slots.into_iter().zip(hash_all(host, normalization, &values)) {
                out[slot] = digest;
            }
        }
        HashedValues { digests: out }
    }
}

/// The digests of a hashed [`HashQueue`], one per ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashedValues {
    digests: Vec<String>,
}

impl HashedValues {
    /// The digest for `ticket` (empty for a ticket of another queue beyond this one's length).
    pub fn get(&self, ticket: HashTicket) -> &str {
        self.digests.get(ticket.0).map_or("", String::as_str)
    }

    /// The digest for `ticket`, moved out (a second take of the same ticket gives "").
    pub fn take(&mut self, ticket: HashTicket) -> String {
        self.digests.get_mut(ticket.0).map(std::mem::take).unwrap_or_default()
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

    struct CountingHost {
        calls: std::cell::RefCell<Vec<(Normalization, usize)>>,
        short: bool,
    }

    impl CountingHost {
        fn new(short: bool) -> Self {
            Self { calls: std::cell::RefCell::new(vec![]), short }
        }
    }

    impl Host for CountingHost {
        fn send(
            &self,
            _: &crate::http_client::Request,
        ) -> Result<crate::http::Response, crate::http_client::HttpError> {
            Err(crate::http_client::HttpError::Timeout)
        }

        fn log(&self, _: crate::log::Level, _: &str) {}

        fn sha256_hex(&self, normalization: Normalization, values: &[String]) -> Vec<String> {
            self.calls.borrow_mut().push((normalization, values.len()));
            if self.short {
                return vec![];
            }
            values.iter().map(|v| sha256_hex_normalized(normalization, v)).collect()
        }
    }

    #[test]
    fn normalizations_match_the_host() {
        // The host's own vectors (crates/runtime/src/imports.rs).
        let mary = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79";
        assert_eq!(sha256_hex_normalized(Normalization::TrimLowercase, "  Mary@Example.com "), mary);
        assert_eq!(sha256_hex_normalized(Normalization::None, "mary@example.com"), mary);
        let phone = "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e";
        assert_eq!(sha256_hex_normalized(Normalization::DigitsOnly, "+1 (555) 987-6543"), phone);
        assert_eq!(normalize(Normalization::LettersLowercase, "Zoë"), "zoë");
        assert_eq!(normalize(Normalization::None, " A "), " A ");
    }

    #[test]
    fn bulk_hashing_uses_one_call_per_chunk_and_normalization() {
        let host = CountingHost::new(false);
        let values: Vec<String> = (0..HOST_HASH_CHUNK + 5).map(|i| format!("v{i}")).collect();
        let hashed = hash_all(&host, Normalization::None, &values);
        assert_eq!(hashed.len(), values.len());
        assert_eq!(hashed[HOST_HASH_CHUNK + 4], sha256_hex(&values[HOST_HASH_CHUNK + 4]));
        assert_eq!(*host.calls.borrow(), vec![(Normalization::None, HOST_HASH_CHUNK), (Normalization::None, 5)]);

        let host = CountingHost::new(false);
        let mut queue = HashQueue::new();
        let a = queue.push(Normalization::TrimLowercase, " A ");
        let b = queue.push(Normalization::DigitsOnly, "1-2");
        let c = queue.push_unless_hashed(Normalization::TrimLowercase, &ALICE.to_uppercase());
        let d = queue.push(Normalization::TrimLowercase, "B");
        assert_eq!(queue.len(), 4);
        let mut hashed = queue.hash(&host);
        assert_eq!(hashed.get(a), sha256_hex("a"));
        assert_eq!(hashed.get(b), sha256_hex("12"));
        assert_eq!(hashed.take(c), ALICE);
        assert_eq!(hashed.take(c), "");
        assert_eq!(hashed.get(d), sha256_hex("b"));
        assert_eq!(*host.calls.borrow(), vec![(Normalization::TrimLowercase, 2), (Normalization::DigitsOnly, 1)]);

        let host = CountingHost::new(false);
        assert!(HashQueue::new().hash(&host).digests.is_empty());
        assert!(host.calls.borrow().is_empty());
    }

    #[test]
    fn bulk_identity_helpers() {
        let host = CountingHost::new(false);
        let out = hashed_emails(&host, &[" Alice@Example.COM ", "bob@", ALICE]);
        assert_eq!(
            out,
            vec![Ok(ALICE.to_string()), Err(IdentityError::MissingDomain("bob@".into())), Ok(ALICE.into())]
        );
        assert_eq!(*host.calls.borrow(), vec![(Normalization::None, 1)]);
        let out = hashed_device_ids(&host, &[" 38400000-8CF0-11BD-B23E-10B96E40000D "]);
        assert_eq!(out, vec![Ok(MAID.to_string())]);
    }

    #[test]
    fn a_host_answering_short_is_backed_by_native_hashing() {
        let host = CountingHost::new(true);
        assert_eq!(hash_all(&host, Normalization::TrimLowercase, &[" Alice@Example.COM ".into()]), vec![ALICE]);
    }
}
