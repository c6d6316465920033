//! The HMAC-SHA256 signature a receiver checks before trusting a batch.
//!
//! `x-audience-signature: sha256=<hex(HMAC-SHA256(client-secret, body))>`. The receiver
//! recomputes it over the raw body it received and compares in constant time. (To protect
//! against replays as well, sign a timestamp together with the body and reject old ones.)

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-audience-signature";

/// The header carrying a batch id that stays the same when the host retries the same batch, so
/// the receiver can drop duplicates: the host's `batch.id`.
pub const BATCH_ID_HEADER: &str = "x-audience-batch-id";

/// The header carrying the attempt number (1 on the first try, then 2, 3, ...).
pub const ATTEMPT_HEADER: &str = "x-audience-attempt";

/// `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so creating it cannot fail; fall back to an unkeyed
    // digest only to keep this function total.
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => format!("sha256={}", hex::encode(Sha256::digest(body))),
    }
}

/// A batch id derived from the body (the first 32 hex digits of its SHA-256), for a host that
/// sends no `batch.id`.
pub fn batch_id(body: &[u8]) -> String {
    hex::encode(&Sha256::digest(body)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4231_test_case_2() {
        // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_signature_depends_on_secret_and_body() {
        assert_ne!(sign("a", b"body"), sign("b", b"body"));
        assert_ne!(sign("a", b"body"), sign("a", b"body2"));
        assert_eq!(batch_id(b"x").len(), 32);
        assert_eq!(batch_id(b"x"), batch_id(b"x"));
    }
}
