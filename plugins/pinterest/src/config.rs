//! The operator's settings, read from `plugin-config`.
//!
//! Settings this plugin understands:
//!
//! | where                        | meaning                                                    |
//! |------------------------------|------------------------------------------------------------|
//! | `base-url`                   | API root, default `https://api.pinterest.com`; requests go to `{base}/v5/...`. A trailing `/v5` is accepted too, since Pinterest documents the base URL with it. |
//! | `client-id`, `client-secret` | the Pinterest app id and secret, for `authorize`           |
//! | setting `continuous_refresh` | `true` adds `continuous_refresh=true` to refresh requests (apps created before 2025-09-25) |

use audience_plugin_sdk::types::{DestinationError, PluginConfig};

/// Pinterest's API root when the operator sets none.
pub const DEFAULT_BASE_URL: &str = "https://api.pinterest.com";

/// The `/v5` root of the API: `{base}/v5`, without a trailing slash.
pub fn api_root(config: &PluginConfig) -> String {
    let base = config.base_url.as_deref().map(str::trim).filter(|b| !b.is_empty());
    let base = base.unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/');
    let base = base.strip_suffix("/v5").unwrap_or(base);
    format!("{base}/v5")
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
