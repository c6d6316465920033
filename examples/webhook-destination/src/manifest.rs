//! `describe`: who the plugin is and what it can do. Pure: the same answer every time.

use audience_plugin_sdk::types::{IdentifierKind, Limits, Manifest};

/// The most users in one batch request. The host never sends more; the plugin refuses more
/// anyway, since an operator may override the limit upwards.
pub const MAX_BATCH_SIZE: u32 = 1000;

/// The identifier kinds the receiver matches on.
pub const IDENTIFIERS: [IdentifierKind; 4] =
    [IdentifierKind::Email, IdentifierKind::MobileAdId, IdentifierKind::Idfa, IdentifierKind::ExternalId];

/// The manifest.
pub fn manifest() -> Manifest {
    Manifest {
        name: "webhook".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        display_name: "Webhook audience".into(),
        identifiers: IDENTIFIERS.to_vec(),
        supports_removal: true,
        limits: Limits { max_batch_size: MAX_BATCH_SIZE, requests_per_second: 10.0, max_concurrent_requests: 4 },
        // No OAuth: the receiver's token is configured directly on the connection.
        oauth: None,
        // No default host: the operator allows the receiver's host in the host's configuration.
        default_hosts: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pure_and_sane() {
        let m = manifest();
        assert_eq!(m, manifest());
        assert_eq!(m.name, "webhook");
        assert!(m.limits.max_batch_size > 0 && m.oauth.is_none());
    }
}
