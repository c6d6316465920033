//! The operator's settings, read from `plugin-config`.
//!
//! | where                        | meaning                                                                  |
//! |------------------------------|--------------------------------------------------------------------------|
//! | `base-url`                   | a sandbox standing in for both Meta hosts: Graph calls go to `{base}/{version}/...` and the login dialog is `{base}/{version}/dialog/oauth`; a trailing `/vNN.N` is accepted (and used as the version unless `api_version` is set). None: `https://graph.facebook.com` and `https://www.facebook.com` |
//! | `client-id`, `client-secret` | the Meta app id and app secret (code exchange, token exchange, `debug_token`, `appsecret_proof`) |
//! | setting `api_version`        | the Graph API version, `vNN.N` (`NN.N` and `vNN` are accepted too); default [`DEFAULT_API_VERSION`] |
//! | setting `config_id`          | a Facebook Login for Business configuration id: the dialog then asks for that configuration (`config_id`, `response_type=code`, `override_default_response_type=true`) instead of `scope` |
//! | setting `appsecret_proof`    | `on` / `off` (also `true`/`false`, `1`/`0`, `yes`/`no`): send `appsecret_proof` (HMAC-SHA256 of the access token keyed by the app secret) with every call. Default: on when a client-secret is configured, since Meta then accepts it whether or not the app requires it |
//!
//! [`DEFAULT_API_VERSION`] is v27.0, the newest version in the notes: v25.0 (released
//! 2026-02-18, expires 2027-02-23), v26.0 (2026-07-29) and v27.0 (2026-11-04) are all current,
//! and the newest one stays current the longest. Meta keeps a superseded version working at
//! least 90 days; after that calls fail with code 2635, whose error names this setting.

use audience_plugin_sdk::config::{setting, url_host};
use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::{DestinationError, PluginConfig};

/// The Graph API version used when the operator sets none.
pub const DEFAULT_API_VERSION: &str = "v27.0";

/// Meta's Graph API host.
pub const GRAPH_BASE: &str = "https://graph.facebook.com";

/// Meta's host for the login dialog.
pub const DIALOG_BASE: &str = "https://www.facebook.com";

/// The setting naming the API version.
pub const API_VERSION: &str = "api_version";

/// The setting naming a Login for Business configuration.
pub const CONFIG_ID: &str = "config_id";

/// The setting switching `appsecret_proof`.
pub const APPSECRET_PROOF: &str = "appsecret_proof";

/// `vNN.N` for a version written `vNN.N`, `NN.N`, `vNN` or `NN`; `None` otherwise.
pub fn parse_version(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let number = raw.strip_prefix(['v', 'V']).unwrap_or(raw);
    let (major, minor) = number.split_once('.').unwrap_or((number, "0"));
    let digits = |s: &str| !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit());
    (digits(major) && digits(minor)).then(|| format!("v{major}.{minor}"))
}

/// The configured `base-url` without a trailing slash or version, and the version it ended
/// with, if any; `None` when no base URL is set.
fn base_url(config: &PluginConfig) -> Option<(String, Option<String>)> {
    let base = config.base_url.as_deref().map(str::trim).filter(|b| !b.is_empty())?;
    let base = base.trim_end_matches('/');
    if let Some((head, last)) = base.rsplit_once('/')
        && !head.ends_with('/')
        && let Some(version) = parse_version(last).filter(|_| last.starts_with(['v', 'V']))
    {
        return Some((head.to_string(), Some(version)));
    }
    Some((base.to_string(), None))
}

/// The API version to call: the `api_version` setting, else a version ending `base-url`, else
/// [`DEFAULT_API_VERSION`]. A malformed setting is `invalid-request` naming it.
pub fn api_version(config: &PluginConfig) -> Result<String, DestinationError> {
    if let Some(raw) = setting(config, API_VERSION) {
        return parse_version(raw).ok_or_else(|| {
            DestinationError::InvalidRequest(format!(
                "the plugin setting `{API_VERSION}` is '{}', not a Graph API version like {DEFAULT_API_VERSION}",
                excerpt(raw, 20)
            ))
        });
    }
    Ok(base_url(config).and_then(|(_, v)| v).unwrap_or_else(|| DEFAULT_API_VERSION.to_string()))
}

/// [`api_version`], falling back to the default when the setting is malformed (for
/// `describe`, which cannot fail; every call then reports the bad setting).
pub fn api_version_or_default(config: &PluginConfig) -> String {
    api_version(config).unwrap_or_else(|_| DEFAULT_API_VERSION.to_string())
}

/// The versioned Graph root, `{graph}/{version}`, without a trailing slash.
pub fn graph_root(config: &PluginConfig) -> Result<String, DestinationError> {
    let version = api_version(config)?;
    let base = base_url(config).map_or_else(|| GRAPH_BASE.to_string(), |(b, _)| b);
    Ok(format!("{base}/{version}"))
}

/// The login dialog's URL, `{dialog}/{version}/dialog/oauth`.
pub fn dialog_url(config: &PluginConfig) -> String {
    let version = api_version_or_default(config);
    let base = base_url(config).map_or_else(|| DIALOG_BASE.to_string(), |(b, _)| b);
    format!("{base}/{version}/dialog/oauth")
}

/// The hosts the plugin reaches: Meta's two, or the base URL's host.
pub fn default_hosts(config: &PluginConfig) -> Vec<String> {
    match base_url(config) {
        Some((base, _)) => url_host(&base).map(|h| vec![h.to_ascii_lowercase()]).unwrap_or_default(),
        None => vec!["graph.facebook.com".into(), "www.facebook.com".into()],
    }
}

/// The Login for Business configuration id, when set and made of URL-safe characters.
pub fn config_id(config: &PluginConfig) -> Option<&str> {
    setting(config, CONFIG_ID).filter(|id| id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// Whether calls carry `appsecret_proof`.
pub fn appsecret_proof(config: &PluginConfig) -> bool {
    let has_secret = config.client_secret.as_deref().is_some_and(|s| !s.trim().is_empty());
    match setting(config, APPSECRET_PROOF).map(str::to_ascii_lowercase).as_deref() {
        Some("on" | "true" | "1" | "yes") => has_secret,
        Some("off" | "false" | "0" | "no") => false,
        _ => has_secret,
    }
}

/// The app id and secret; a missing or blank one is `invalid-request` naming the setting to
/// configure (never its value).
pub fn app_credentials(config: &PluginConfig) -> Result<(&str, &str), DestinationError> {
    fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, DestinationError> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| {
            DestinationError::InvalidRequest(format!(
                "the Meta app is not configured: set `{name}` in the plugin configuration"
            ))
        })
    }
    Ok((required(&config.client_id, "client-id")?, required(&config.client_secret, "client-secret")?))
}

fn digits_id<'a>(id: &'a str, what: &str) -> Result<&'a str, DestinationError> {
    let ok = !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(id)
    } else {
        Err(DestinationError::InvalidRequest(format!("'{}' is not a Meta {what} (expected digits)", excerpt(id, 40))))
    }
}

/// The bare number of an ad account given as `<n>` or `act_<n>`, checked to be digits only
/// so nothing else can reach a URL path.
pub fn account_number(id: &str) -> Result<&str, DestinationError> {
    let id = id.trim();
    digits_id(id.strip_prefix("act_").unwrap_or(id), "ad account id")
}

/// An audience id, checked to be digits only.
pub fn audience_id(id: &str) -> Result<&str, DestinationError> {
    digits_id(id.trim(), "custom audience id")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: Option<&str>, settings: &[(&str, &str)]) -> PluginConfig {
        PluginConfig {
            base_url: base.map(str::to_string),
            client_id: Some("app".into()),
            client_secret: Some("secret".into()),
            settings: settings.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("v25.0").as_deref(), Some("v25.0"));
        assert_eq!(parse_version(" 26.0 ").as_deref(), Some("v26.0"));
        assert_eq!(parse_version("v27").as_deref(), Some("v27.0"));
        for bad in ["", "v", "latest", "v25.0.1", "v-1", "25."] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
        assert_eq!(api_version(&config(None, &[])).as_deref(), Ok(DEFAULT_API_VERSION));
        assert_eq!(api_version(&config(None, &[("api_version", "25.0")])).as_deref(), Ok("v25.0"));
        assert!(
            matches!(api_version(&config(None, &[("api_version", "new")])), Err(DestinationError::InvalidRequest(m)) if m.contains("`api_version`"))
        );
        assert_eq!(api_version_or_default(&config(None, &[("api_version", "new")])), DEFAULT_API_VERSION);
    }

    #[test]
    fn roots_follow_the_base_url() {
        let meta = config(None, &[]);
        assert_eq!(graph_root(&meta).as_deref(), Ok("https://graph.facebook.com/v27.0"));
        assert_eq!(dialog_url(&meta), "https://www.facebook.com/v27.0/dialog/oauth");
        assert_eq!(default_hosts(&meta), vec!["graph.facebook.com".to_string(), "www.facebook.com".to_string()]);

        let sandbox = config(Some("http://127.0.0.1:8080/"), &[]);
        assert_eq!(graph_root(&sandbox).as_deref(), Ok("http://127.0.0.1:8080/v27.0"));
        assert_eq!(dialog_url(&sandbox), "http://127.0.0.1:8080/v27.0/dialog/oauth");
        assert_eq!(default_hosts(&sandbox), vec!["127.0.0.1".to_string()]);

        let versioned = config(Some("https://Meta.Sandbox.test/graph/v24.0/"), &[]);
        assert_eq!(graph_root(&versioned).as_deref(), Ok("https://Meta.Sandbox.test/graph/v24.0"));
        assert_eq!(default_hosts(&versioned), vec!["meta.sandbox.test".to_string()]);
        let overridden = config(Some("https://sandbox.test/v24.0"), &[("api_version", "v26.0")]);
        assert_eq!(graph_root(&overridden).as_deref(), Ok("https://sandbox.test/v26.0"));
        assert_eq!(graph_root(&config(Some("https://v1.example"), &[])).as_deref(), Ok("https://v1.example/v27.0"));
    }

    #[test]
    fn switches() {
        assert!(appsecret_proof(&config(None, &[])));
        assert!(!appsecret_proof(&config(None, &[("appsecret_proof", "off")])));
        assert!(appsecret_proof(&config(None, &[("appsecret_proof", "ON")])));
        let mut no_secret = config(None, &[("appsecret_proof", "on")]);
        no_secret.client_secret = None;
        assert!(!appsecret_proof(&no_secret));
        assert_eq!(config_id(&config(None, &[("config_id", " 123456 ")])), Some("123456"));
        assert_eq!(config_id(&config(None, &[("config_id", "1&x=2")])), None);
    }

    #[test]
    fn ids_and_credentials() {
        assert_eq!(account_number("act_1234"), Ok("1234"));
        assert_eq!(account_number(" 1234 "), Ok("1234"));
        for bad in ["", "act_", "act_12/../3", "abc", "123456789012345678901"] {
            assert!(account_number(bad).is_err(), "{bad}");
        }
        assert_eq!(audience_id("6000000001"), Ok("6000000001"));
        assert!(audience_id("6000000001/users").is_err());
        let mut c = config(None, &[]);
        assert_eq!(app_credentials(&c), Ok(("app", "secret")));
        c.client_id = Some(" ".into());
        assert!(matches!(app_credentials(&c), Err(DestinationError::InvalidRequest(m)) if m.contains("`client-id`")));
    }
}
