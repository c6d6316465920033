//! Credentials encryption at rest.
//!
//! Credentials (OAuth tokens and the like) are the only secrets the store holds, so they are
//! the only thing it encrypts: XChaCha20-Poly1305 with a fresh random 24-byte nonce per write.
//! The extended nonce is why XChaCha rather than ChaCha: random nonces of that size never
//! collide in practice, so no nonce counter has to be kept durable. The nonce is stored in
//! front of the ciphertext (`nonce || ciphertext || tag`), and the connection id is bound as
//! associated data, so a ciphertext copied onto another connection's row fails to decrypt
//! instead of handing one tenant another tenant's credentials.

use std::fmt;

use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroize;

use crate::{StoreError, StoreResult};

/// Length of the XChaCha20 nonce stored in front of each ciphertext.
const NONCE_LEN: usize = 24;

/// The 32-byte key that encrypts connection credentials at rest.
///
/// Keep it outside the database (environment, secret manager): whoever has both the database
/// file and the key has the credentials. `Debug` never shows it, and its bytes are wiped when
/// it is dropped.
#[derive(Clone)]
pub struct CredentialKey([u8; 32]);

/// A credentials key given as text could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not 64 characters long.
    #[error(
        "the credentials encryption key must be 64 hexadecimal characters (32 bytes), got {0} characters; generate one with `openssl rand -hex 32`"
    )]
    Length(usize),
    /// Contains a character that is not hexadecimal.
    #[error("the credentials encryption key must be 64 hexadecimal characters (0-9, a-f); it contains something else")]
    NotHex,
}

impl CredentialKey {
    /// A key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key from 64 hexadecimal characters (upper or lower case; surrounding whitespace, such
    /// as the newline of a key file, is ignored).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        if text.len() != 64 {
            return Err(KeyError::Length(text.chars().count()));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| KeyError::NotHex)?;
        Ok(Self(bytes))
    }

    /// A new random key from the operating system's random source.
    ///
    /// # Panics
    ///
    /// Only if the operating system cannot provide random bytes, where no key could be safe.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The key as 64 lowercase hexadecimal characters, to be saved by whoever generated it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    /// Encrypts `plaintext` bound to `context` (the connection id): `nonce || ciphertext`.
    pub(crate) fn seal(&self, context: &str, plaintext: &[u8]) -> StoreResult<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| StoreError::Database(format!("the operating system's random source failed: {e}")))?;
        let sealed = self
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plaintext, aad: context.as_bytes() })
            .map_err(|_| StoreError::Database("credentials could not be encrypted".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts what [`CredentialKey::seal`] produced for the same `context`; any mismatch
    /// (other key, other connection, altered bytes) is [`StoreError::Decrypt`].
    pub(crate) fn open(&self, context: &str, sealed: &[u8]) -> StoreResult<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(StoreError::Decrypt);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: context.as_bytes() })
            .map_err(|_| StoreError::Decrypt)
    }
}

impl fmt::Debug for CredentialKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CredentialKey(<redacted>)")
    }
}

impl Drop for CredentialKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_credentials_open_with_the_same_key_and_context() {
        let key = CredentialKey::generate();
        let sealed = key.seal("conn_a", b"secret token").unwrap();
        assert_eq!(key.open("conn_a", &sealed).unwrap(), b"secret token");
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let key = CredentialKey::generate();
        assert_ne!(key.seal("c", b"x").unwrap(), key.seal("c", b"x").unwrap());
    }

    #[test]
    fn another_key_or_another_connection_cannot_open() {
        let key = CredentialKey::generate();
        let sealed = key.seal("conn_a", b"secret").unwrap();
        assert!(matches!(CredentialKey::generate().open("conn_a", &sealed), Err(StoreError::Decrypt)));
        assert!(matches!(key.open("conn_b", &sealed), Err(StoreError::Decrypt)));
        assert!(matches!(key.open("conn_a", &sealed[..10]), Err(StoreError::Decrypt)));
    }

    #[test]
    fn hex_keys_round_trip_and_bad_ones_say_why() {
        let key = CredentialKey::generate();
        let again = CredentialKey::from_hex(&format!(" {}\n", key.to_hex().to_uppercase())).unwrap();
        assert_eq!(again.to_hex(), key.to_hex());
        assert_eq!(CredentialKey::from_hex("abc").unwrap_err(), KeyError::Length(3));
        assert_eq!(CredentialKey::from_hex(&"g".repeat(64)).unwrap_err(), KeyError::NotHex);
        assert!(KeyError::Length(3).to_string().contains("64 hexadecimal"));
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = CredentialKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert!(!shown.contains("ab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
    }
}
