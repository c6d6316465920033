//! The operator's settings, read from `plugin-config`.
//!
//! | where                   | meaning                                                         |
//! |-------------------------|-----------------------------------------------------------------|
//! | `base-url`              | the receiver's root URL (required), e.g. `https://hooks.example.com` |
//! | `client-secret`         | the shared secret the batches are signed with (required)        |
//! | setting `path`          | where batches are POSTed, default `/audience-batches`           |

use audience_plugin_sdk::types::{DestinationError, PluginConfig};

/// Where batches go when the setting `path` is not set.
pub const DEFAULT_PATH: &str = "/audience-batches";

/// The only account `list-accounts` offers.
pub const DEFAULT_ACCOUNT: &str = "default";

fn required<'a>(value: Option<&'a str>, name: &str) -> Result<&'a str, DestinationError> {
    value.map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| {
        DestinationError::InvalidRequest(format!(
            "the webhook destination is not configured: set `{name}` in the plugin configuration"
        ))
    })
}

/// The receiver's root URL, without a trailing slash.
pub fn base_url(config: &PluginConfig) -> Result<&str, DestinationError> {
    required(config.base_url.as_deref(), "base-url").map(|b| b.trim_end_matches('/'))
}

/// The secret batches are signed with. Never log it.
pub fn signing_secret(config: &PluginConfig) -> Result<&str, DestinationError> {
    required(config.client_secret.as_deref(), "client-secret")
}

/// The value of setting `key`, if set.
pub fn setting<'a>(config: &'a PluginConfig, key: &str) -> Option<&'a str> {
    config.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The URL batches are POSTed to: `{base-url}{path}`.
pub fn batch_url(config: &PluginConfig) -> Result<String, DestinationError> {
    let path = setting(config, "path").map(str::trim).filter(|p| !p.is_empty()).unwrap_or(DEFAULT_PATH);
    let separator = if path.starts_with('/') { "" } else { "/" };
    Ok(format!("{}{separator}{path}", base_url(config)?))
}

/// The URL audiences are found, created and searched at: `{base-url}/audiences`.
pub fn audiences_url(config: &PluginConfig) -> Result<String, DestinationError> {
    Ok(format!("{}/audiences", base_url(config)?))
}

/// The URL one audience is read at (with query `account` and `id`): `{base-url}/audience`.
pub fn audience_url(config: &PluginConfig) -> Result<String, DestinationError> {
    Ok(format!("{}/audience", base_url(config)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: Option<&str>, path: Option<&str>) -> PluginConfig {
        PluginConfig {
            base_url: base.map(str::to_string),
            client_id: None,
            client_secret: Some("s".into()),
            settings: path.map(|p| vec![("path".to_string(), p.to_string())]).unwrap_or_default(),
        }
    }

    #[test]
    fn urls() {
        assert_eq!(
            batch_url(&config(Some("https://h.example/"), None)),
            Ok("https://h.example/audience-batches".into())
        );
        assert_eq!(batch_url(&config(Some("https://h.example"), Some("in"))), Ok("https://h.example/in".into()));
        assert_eq!(
            audiences_url(&config(Some("http://127.0.0.1:9/"), None)),
            Ok("http://127.0.0.1:9/audiences".into())
        );
    }

    #[test]
    fn missing_settings_are_named() {
        let err = batch_url(&config(None, None));
        assert!(matches!(err, Err(DestinationError::InvalidRequest(m)) if m.contains("`base-url`")));
        let mut c = config(Some("https://h.example"), None);
        c.client_secret = Some(" ".into());
        assert!(
            matches!(signing_secret(&c), Err(DestinationError::InvalidRequest(m)) if m.contains("`client-secret`"))
        );
    }
}
