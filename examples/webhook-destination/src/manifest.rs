//! `describe`: who the plugin is and what it can do. Pure: the same answer for the same
//! configuration.

use audience_plugin_sdk::config::url_host;
use audience_plugin_sdk::types::{AudienceKeys, Features, IdentifierKind, Manifest, PluginConfig};
use audience_plugin_sdk::{build, kinds};

/// The most users in one batch request. The host never sends more; the plugin refuses more
/// anyway, since an operator may override the limit upwards.
pub const MAX_BATCH_SIZE: u32 = 1000;

/// The identifier kinds the receiver matches on.
pub const IDENTIFIERS: [&str; 4] = [kinds::EMAIL, kinds::MOBILE_AD_ID, kinds::IDFA, kinds::EXTERNAL_ID];

/// Whether the receiver matches on `kind`.
pub fn supports(kind: &str) -> bool {
    IDENTIFIERS.contains(&kind)
}

/// The manifest for `config`.
pub fn manifest(config: &PluginConfig) -> Manifest {
    Manifest {
        name: "webhook".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        display_name: "Webhook audience".into(),
        identifiers: kinds::list(&IDENTIFIERS),
        // Each user is sent with every selected identifier it has.
        audience_keys: AudienceKeys::MultiKey,
        // Removal and `GET /audiences` search; every batch finishes in its request.
        features: Features::REMOVAL | Features::AUDIENCE_SEARCH,
        limits: build::limits(MAX_BATCH_SIZE, 10.0, 4),
        // No OAuth: the receiver's token is configured directly on the connection.
        oauth: None,
        // The receiver's host, when the operator configured its URL (else none: the operator
        // allows it in the host's HTTP policy).
        default_hosts: config.base_url.as_deref().and_then(url_host).map(|h| vec![h.to_string()]).unwrap_or_default(),
    }
}

/// The manifest's identifiers as kinds (for messages).
pub fn identifier_kinds() -> Vec<IdentifierKind> {
    kinds::list(&IDENTIFIERS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: Option<&str>) -> PluginConfig {
        PluginConfig { base_url: base.map(String::from), client_id: None, client_secret: None, settings: vec![] }
    }

    #[test]
    fn pure_and_sane() {
        let m = manifest(&config(None));
        assert_eq!(m, manifest(&config(None)));
        assert_eq!(m.name, "webhook");
        assert!(m.limits.max_batch_size > 0 && m.oauth.is_none() && m.default_hosts.is_empty());
        assert!(m.identifiers.iter().all(|k| kinds::is_valid_name(k)));
    }

    #[test]
    fn the_base_url_names_the_default_host() {
        let m = manifest(&config(Some("https://hooks.example.com:8443/in")));
        assert_eq!(m.default_hosts, vec!["hooks.example.com".to_string()]);
    }
}
