//! Reading the operator's `plugin-config`.
//!
//! Plugin-specific settings arrive as `plugin-config.settings`, a list of name/value pairs.
//!
//! ```
//! use audience_plugin_sdk::config::{setting, setting_or};
//! use audience_plugin_sdk::types::PluginConfig;
//! let config = PluginConfig {
//!     base_url: None,
//!     client_id: None,
//!     client_secret: None,
//!     settings: vec![("path".into(), "/in".into()), ("empty".into(), " ".into())],
//! };
//! assert_eq!(setting(&config, "path"), Some("/in"));
//! assert_eq!(setting(&config, "empty"), None);
//! assert_eq!(setting_or(&config, "absent", "x"), "x");
//! ```

use crate::types::PluginConfig;

/// The value of setting `key`, trimmed; `None` when it is absent or blank. When a key repeats,
/// the first occurrence wins.
pub fn setting<'a>(config: &'a PluginConfig, key: &str) -> Option<&'a str> {
    config.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.trim()).filter(|v| !v.is_empty())
}

/// The value of setting `key`, or `default` when it is absent or blank.
pub fn setting_or<'a>(config: &'a PluginConfig, key: &str, default: &'a str) -> &'a str {
    setting(config, key).unwrap_or(default)
}

/// Setting `key` parsed as `T`; `None` when absent, blank or unparsable.
pub fn setting_parsed<T: std::str::FromStr>(config: &PluginConfig, key: &str) -> Option<T> {
    setting(config, key).and_then(|v| v.parse().ok())
}

/// The configured `base-url` without a trailing slash, or `default` when none (or blank) is set.
pub fn base_url_or<'a>(config: &'a PluginConfig, default: &'a str) -> &'a str {
    config.base_url.as_deref().map(str::trim).filter(|b| !b.is_empty()).unwrap_or(default).trim_end_matches('/')
}

/// The host of `url` (no scheme, port, path or user info), for `manifest.default-hosts`;
/// `None` when `url` has no host.
///
/// ```
/// use audience_plugin_sdk::config::url_host;
/// assert_eq!(url_host("https://api.example.com:8443/v5/"), Some("api.example.com"));
/// assert_eq!(url_host("http://127.0.0.1:9"), Some("127.0.0.1"));
/// assert_eq!(url_host("http://[::1]:9/x"), Some("[::1]"));
/// assert_eq!(url_host("not a url"), None);
/// ```
pub fn url_host(url: &str) -> Option<&str> {
    let (_, rest) = url.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split_once(']').map(|(h, _)| &host_port[..=h.len()])?
    } else {
        host_port.split(':').next().unwrap_or_default()
    };
    (!host.is_empty() && !host.contains(char::is_whitespace)).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(settings: &[(&str, &str)], base: Option<&str>) -> PluginConfig {
        PluginConfig {
            base_url: base.map(str::to_string),
            client_id: None,
            client_secret: None,
            settings: settings.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
        }
    }

    #[test]
    fn settings_and_base_url() {
        let c = config(&[("n", " 7 "), ("n", "8"), ("bad", "x")], Some("https://h.example/"));
        assert_eq!(setting_parsed::<u32>(&c, "n"), Some(7));
        assert_eq!(setting_parsed::<u32>(&c, "bad"), None);
        assert_eq!(base_url_or(&c, "https://default.example"), "https://h.example");
        assert_eq!(base_url_or(&config(&[], Some(" ")), "https://d.example/"), "https://d.example");
        assert_eq!(url_host("https://user:pw@h.example/x"), Some("h.example"));
    }
}
