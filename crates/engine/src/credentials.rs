//! The bytes a connection's credentials are stored as (the store encrypts them).
//!
//! Like the queue's payload ([`crate::payload`]), the format is the host's own, not the serde
//! form of a generated binding: a connection made today must still be usable after the
//! contract's types change. It is the JSON object hosts have always written, so connections
//! stored before the format was named read unchanged.

use audience_runtime::types::Credentials;
use serde::{Deserialize, Serialize};

/// The stored form.
#[derive(Serialize, Deserialize)]
struct Stored {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    /// Seconds since the Unix epoch, as the contract's `credentials.expires-at`.
    #[serde(default)]
    expires_at: Option<u64>,
    /// Seconds since the Unix epoch, as the contract's `credentials.renewable-until` (0.2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    renewable_until: Option<u64>,
    #[serde(default)]
    scopes: Vec<String>,
}

/// Credentials as the store keeps them.
pub fn encode_credentials(creds: &Credentials) -> Vec<u8> {
    let stored = Stored {
        access_token: creds.access_token.clone(),
        refresh_token: creds.refresh_token.clone(),
        expires_at: creds.expires_at,
        renewable_until: creds.renewable_until,
        scopes: creds.scopes.clone(),
    };
    // Strings, numbers and a list of strings: serialising them cannot fail.
    serde_json::to_vec(&stored).unwrap_or_default()
}

/// Credentials read back from the store.
pub fn decode_credentials(bytes: &[u8]) -> Result<Credentials, serde_json::Error> {
    let stored: Stored = serde_json::from_slice(bytes)?;
    Ok(Credentials {
        access_token: stored.access_token,
        refresh_token: stored.refresh_token,
        expires_at: stored.expires_at,
        renewable_until: stored.renewable_until,
        scopes: stored.scopes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What hosts have written since the first release; frozen here so a contract change
    /// cannot strand stored connections.
    const STORED: &str =
        r#"{"access_token":"pina_a","refresh_token":"pinr_r","expires_at":1700000000,"scopes":["ads:read"]}"#;

    #[test]
    fn stored_credentials_read_back_and_are_written_the_same() {
        let creds = decode_credentials(STORED.as_bytes()).unwrap();
        assert_eq!(creds.access_token, "pina_a");
        assert_eq!(creds.refresh_token.as_deref(), Some("pinr_r"));
        assert_eq!(creds.expires_at, Some(1_700_000_000));
        assert_eq!(String::from_utf8(encode_credentials(&creds)).unwrap(), STORED);
    }

    #[test]
    fn credentials_given_without_optional_fields_read() {
        let creds = decode_credentials(br#"{"access_token":"t"}"#).unwrap();
        assert_eq!((creds.refresh_token, creds.expires_at, creds.scopes.len()), (None, None, 0));
    }
}
