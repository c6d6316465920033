//! Ids of workspaces, connections and syncs: a kind prefix (`ws_`, `conn_`, `sync_`) and 20
//! random lowercase alphanumerics (about 103 bits).
//!
//! Random rather than sequential so ids reveal nothing about how many tenants or syncs exist,
//! cannot be guessed from one another, and two hosts sharing a database (the PostgreSQL
//! backend) never need to coordinate to mint them. The prefix makes an id's kind obvious in
//! logs and API errors.

use chacha20poly1305::aead::OsRng;
use chacha20poly1305::aead::rand_core::RngCore;

use crate::{StoreError, StoreResult};

const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const RANDOM_CHARS: usize = 20;

/// A new id: `prefix` followed by 20 random lowercase alphanumerics.
pub(crate) fn new_id(prefix: &str) -> StoreResult<String> {
    let mut id = String::with_capacity(prefix.len() + RANDOM_CHARS);
    id.push_str(prefix);
    let mut buf = [0u8; 32];
    while id.len() < prefix.len() + RANDOM_CHARS {
        OsRng
            .try_fill_bytes(&mut buf)
            .map_err(|e| StoreError::Database(format!("the operating system's random source failed: {e}")))?;
        // 252 = 7 * 36: rejecting bytes at or above it keeps every character equally likely.
        for b in buf.iter().filter(|b| **b < 252) {
            if id.len() == prefix.len() + RANDOM_CHARS {
                break;
            }
            id.push(char::from(ALPHABET[usize::from(*b % 36)]));
        }
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_their_prefix_and_twenty_lowercase_alphanumerics() {
        let id = new_id("sync_").unwrap();
        assert!(id.starts_with("sync_"));
        let rest = &id["sync_".len()..];
        assert_eq!(rest.len(), 20);
        assert!(rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
    }

    #[test]
    fn ids_do_not_repeat() {
        let ids: std::collections::HashSet<_> = (0..1000).map(|_| new_id("ws_").unwrap()).collect();
        assert_eq!(ids.len(), 1000);
    }
}
