//! API keys, the operator key and OAuth states: how they are made, hashed and compared.
//!
//! Secrets are 256 random bits from the operating system, shown once and stored only as
//! SHA-256 hashes (a fast hash is right here: the secrets are random, not passwords, so there
//! is nothing to brute-force). Workspace keys are found by their hash through the store's
//! unique index; the operator key is compared hash to hash in constant time.

use rand::TryRng;
use sha2::{Digest, Sha256};

/// The prefix of workspace API keys, so a leaked one is recognisable (secret scanners).
pub const API_KEY_PREFIX: &str = "ahk_";

/// The SHA-256 of a secret, lowercase hex.
pub(crate) fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new secret: `prefix` followed by 256 random bits in hex.
pub(crate) fn new_secret(prefix: &str) -> Result<String, rand::rngs::SysError> {
    let mut bytes = [0u8; 32];
    rand::rngs::SysRng.try_fill_bytes(&mut bytes)?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// Why an operator key was refused.
#[derive(Debug, thiserror::Error)]
pub enum OperatorKeyError {
    /// Too short to be a secret.
    #[error("the operator key must be at least {min} characters long; generate one with `openssl rand -hex 32`")]
    TooShort {
        /// The minimum length.
        min: usize,
    },
    /// Not a SHA-256 in hex.
    #[error("the operator key hash must be 64 hexadecimal characters (a SHA-256)")]
    BadHash,
}

/// The operator's key: it manages workspaces and their keys, and reads `/metrics`. Only its
/// SHA-256 is kept in memory; `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorKey {
    hash: [u8; 32],
}

impl OperatorKey {
    /// Shortest accepted key.
    pub const MIN_LEN: usize = 16;

    /// The operator key from its secret (e.g. read from the configuration or an environment
    /// variable). At least [`OperatorKey::MIN_LEN`] characters.
    pub fn new(secret: &str) -> Result<Self, OperatorKeyError> {
        if secret.trim().chars().count() < Self::MIN_LEN {
            return Err(OperatorKeyError::TooShort { min: Self::MIN_LEN });
        }
        Ok(Self { hash: Sha256::digest(secret.trim().as_bytes()).into() })
    }

    /// The operator key from the SHA-256 (hex) of its secret, for configurations that keep
    /// only the hash.
    pub fn from_sha256_hex(hash: &str) -> Result<Self, OperatorKeyError> {
        let bytes = hex::decode(hash.trim()).map_err(|_| OperatorKeyError::BadHash)?;
        let hash: [u8; 32] = bytes.try_into().map_err(|_| OperatorKeyError::BadHash)?;
        Ok(Self { hash })
    }

    /// Whether `candidate` is the operator key, in time independent of where they differ.
    pub fn matches(&self, candidate: &str) -> bool {
        let other: [u8; 32] = Sha256::digest(candidate.trim().as_bytes()).into();
        self.hash.iter().zip(other.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

impl std::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_key_matches_itself_only_and_is_never_shown() {
        let key = OperatorKey::new("correct horse battery staple").unwrap();
        assert!(key.matches("correct horse battery staple"));
        assert!(!key.matches("correct horse battery stapler"));
        assert!(!key.matches(""));
        assert_eq!(format!("{key:?}"), "OperatorKey(<redacted>)");
        let hashed = OperatorKey::from_sha256_hex(&hash_secret("correct horse battery staple")).unwrap();
        assert_eq!(hashed, key);
        assert!(matches!(OperatorKey::new("short"), Err(OperatorKeyError::TooShort { .. })));
        assert!(matches!(OperatorKey::from_sha256_hex("abc"), Err(OperatorKeyError::BadHash)));
    }

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let a = new_secret(API_KEY_PREFIX).unwrap();
        let b = new_secret(API_KEY_PREFIX).unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("ahk_") && a.len() == 4 + 64, "{a}");
        assert_eq!(hash_secret(&a).len(), 64);
    }
}
