//! The operator's settings, read from `plugin-config`.
//!
//! Settings this plugin understands:
//!
//! | where                        | meaning                                                    |
//! |------------------------------|------------------------------------------------------------|
//! | `base-url`                   | API root, default `https://api.pinterest.com`; requests go to `{base}/v5/...`. A trailing `/v5` is accepted too, since Pinterest documents the base URL with it. A base URL outside pinterest.com (a sandbox) also moves the OAuth authorize page to `{base}/oauth/` and the default allowed host to its host, so `base-url` alone is enough to use one. |
//! | `client-id`, `client-secret` | the Pinterest app id and secret, for `authorize`           |
//! | setting `continuous_refresh` | `true` adds `continuous_refresh=true` to refresh requests (apps created before 2025-09-25) |

use audience_plugin_sdk::config::{base_url_or, url_host};
use audience_plugin_sdk::types::{DestinationError, PluginConfig};

/// Pinterest's API root when the operator sets none.
pub const DEFAULT_BASE_URL: &str = "https://api.pinterest.com";

/// Pinterest's API host, the default allowed host.
pub const DEFAULT_API_HOST: &str = "api.pinterest.com";

/// Pinterest's authorization page (for the real API, sandbox hosts under pinterest.com too).
pub const PINTEREST_AUTHORIZE_PAGE: &str = "https://www.pinterest.com/oauth/";

/// The query of the authorization page; the host fills in the placeholders (URL-encoded).
pub const AUTHORIZE_QUERY: &str =
    "client_id={client-id}&redirect_uri={redirect-uri}&response_type=code&scope={scopes}&state={state}";

/// The configured base URL without a trailing slash or `/v5` (default: Pinterest's).
pub fn base_root(config: &PluginConfig) -> &str {
    let base = base_url_or(config, DEFAULT_BASE_URL);
    base.strip_suffix("/v5").unwrap_or(base).trim_end_matches('/')
}

/// The `/v5` root of the API: `{base}/v5`, without a trailing slash.
pub fn api_root(config: &PluginConfig) -> String {
    format!("{}/v5", base_root(config))
}

/// Whether `host` is Pinterest's own (pinterest.com or a subdomain, such as its API sandbox).
fn is_pinterest_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    host == "pinterest.com" || host.ends_with(".pinterest.com")
}

/// The hosts requests go to with this configuration: the base URL's host (none when the base
/// URL has no readable host: every request would be refused anyway).
pub fn api_hosts(config: &PluginConfig) -> Vec<String> {
    url_host(base_root(config)).map(|h| vec![h.to_ascii_lowercase()]).unwrap_or_default()
}

/// The authorization page template: Pinterest's for its own hosts, `{base}/oauth/` for any
/// other base URL (the sandbox in `crates/sandbox` serves its consent stand-in there).
pub fn authorize_url(config: &PluginConfig) -> String {
    let root = base_root(config);
    let page = match url_host(root) {
        Some(host) if !is_pinterest_host(host) => format!("{root}/oauth/"),
        _ => PINTEREST_AUTHORIZE_PAGE.to_string(),
    };
    format!("{page}?{AUTHORIZE_QUERY}")
}

/// The value of plugin setting `key`, if set.
pub fn setting<'a>(config: &'a PluginConfig, key: &str) -> Option<&'a str> {
    config.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Whether refresh requests carry `continuous_refresh=true`.
pub fn continuous_refresh(config: &PluginConfig) -> bool {
    setting(config, "continuous_refresh").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// The app id and secret for Basic auth at the token endpoint; a missing or blank one is
/// `invalid-request` naming the setting to configure (never its value).
pub fn app_credentials(config: &PluginConfig) -> Result<(&str, &str), DestinationError> {
    fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, DestinationError> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| {
            DestinationError::InvalidRequest(format!(
                "the Pinterest app is not configured: set `{name}` in the plugin configuration"
            ))
        })
    }
    Ok((required(&config.client_id, "client-id")?, required(&config.client_secret, "client-secret")?))
}

/// Check that an id used in a URL path is what the spec allows (`^\d+$`, at most 18 digits),
/// so nothing else can reach the path.
pub fn path_id<'a>(id: &'a str, what: &str) -> Result<&'a str, DestinationError> {
    let ok = !id.is_empty() && id.len() <= 18 && id.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(id)
    } else {
        Err(DestinationError::InvalidRequest(format!(
            "'{}' is not a Pinterest {what} (expected up to 18 digits)",
            audience_plugin_sdk::text::excerpt(id, 40)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: Option<&str>) -> PluginConfig {
        PluginConfig { base_url: base.map(str::to_string), client_id: None, client_secret: None, settings: vec![] }
    }

    #[test]
    fn api_root_variants() {
        assert_eq!(api_root(&config(None)), "https://api.pinterest.com/v5");
        assert_eq!(api_root(&config(Some(" "))), "https://api.pinterest.com/v5");
        assert_eq!(api_root(&config(Some("http://127.0.0.1:8080/"))), "http://127.0.0.1:8080/v5");
        assert_eq!(api_root(&config(Some("https://api.pinterest.com/v5/"))), "https://api.pinterest.com/v5");
        assert_eq!(api_root(&config(Some("http://sandbox.test/v5"))), "http://sandbox.test/v5");
    }

    #[test]
    fn hosts_and_authorize_page_follow_the_base_url() {
        assert_eq!(api_hosts(&config(None)), vec!["api.pinterest.com".to_string()]);
        assert_eq!(api_hosts(&config(Some("http://127.0.0.1:8080/v5/"))), vec!["127.0.0.1".to_string()]);
        assert_eq!(api_hosts(&config(Some("Sandbox.Example:9"))), Vec::<String>::new());
        let query =
            "?client_id={client-id}&redirect_uri={redirect-uri}&response_type=code&scope={scopes}&state={state}";
        assert_eq!(authorize_url(&config(None)), format!("https://www.pinterest.com/oauth/{query}"));
        assert_eq!(
            authorize_url(&config(Some("https://api-sandbox.pinterest.com/v5"))),
            format!("https://www.pinterest.com/oauth/{query}")
        );
        assert_eq!(
            authorize_url(&config(Some("http://127.0.0.1:8080/v5/"))),
            format!("http://127.0.0.1:8080/oauth/{query}")
        );
    }

    #[test]
    fn missing_app_credentials_name_the_setting() {
        let mut c = config(None);
        assert_eq!(
            app_credentials(&c),
            Err(DestinationError::InvalidRequest(
                "the Pinterest app is not configured: set `client-id` in the plugin configuration".into()
            ))
        );
        c.client_id = Some("123".into());
        c.client_secret = Some("  ".into());
        let err = format!("{:?}", app_credentials(&c));
        assert!(err.contains("`client-secret`"), "{err}");
        c.client_secret = Some("s3cret".into());
        assert_eq!(app_credentials(&c), Ok(("123", "s3cret")));
    }

    #[test]
    fn continuous_refresh_setting() {
        let mut c = config(None);
        assert!(!continuous_refresh(&c));
        c.settings.push(("continuous_refresh".into(), "TRUE".into()));
        assert!(continuous_refresh(&c));
    }

    #[test]
    fn path_ids_must_be_digits() {
        assert_eq!(path_id("549755885175", "ad account id"), Ok("549755885175"));
        for bad in ["", "12/../34", "abc", "1234567890123456789"] {
            assert!(matches!(path_id(bad, "ad account id"), Err(DestinationError::InvalidRequest(_))), "{bad}");
        }
    }
}
