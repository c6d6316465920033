//! `describe`: who the plugin is, what it matches on, Meta's limits and login dialog.
//!
//! Limits (defaults; the operator can override each):
//!
//! | limit                          | value  | why                                                           |
//! |--------------------------------|--------|---------------------------------------------------------------|
//! | `max-batch-size`               | 10,000 | Meta's documented maximum rows per `/users` request           |
//! | `requests-per-second`          | 1.0    | a guess (the notes' "about 1 request/s per ad account"): Meta publishes no per-second rate, it budgets calls per hour per ad account and reports usage, which the plugin reports to the host's pacing |
//! | `max-concurrent-requests`      | 1      | writes to one audience are applied in order, and parallel calls only burn the hourly budget faster |
//! | `max-submissions-per-audience` | 0      | every batch finishes in its own call (no asynchronous outcome) |
//! | `app-requests-per-second`      | none   | Meta's budgets are per ad account and app, not a per-app rate |
//!
//! The login dialog is `{dialog}?client_id=..&redirect_uri=..&scope=..&state=..` with the
//! scopes `ads_management,ads_read,business_management`; with the `config_id` setting (Login
//! for Business) the configuration decides the permissions, so the template carries
//! `config_id`, `response_type=code` and `override_default_response_type=true` instead of
//! `scope`, and the scope list is empty.

use audience_plugin_sdk::build;
use audience_plugin_sdk::types::{AudienceKeys, Features, Manifest, OauthApp, PluginConfig};

use crate::config::{config_id, default_hosts, dialog_url};
use crate::kinds::SUPPORTED;

/// The most rows one `/users` request may carry.
pub const MAX_BATCH_SIZE: u32 = 10_000;

/// The permissions the plugin asks for.
pub const SCOPES: [&str; 3] = ["ads_management", "ads_read", "business_management"];

/// The permission audience writes need.
pub const ADS_MANAGEMENT: &str = "ads_management";

/// The authorize-URL template for `config`.
pub fn authorize_url(config: &PluginConfig) -> String {
    let dialog = dialog_url(config);
    match config_id(config) {
        Some(id) => format!(
            "{dialog}?client_id={{client-id}}&redirect_uri={{redirect-uri}}&config_id={id}\
             &response_type=code&override_default_response_type=true&state={{state}}"
        ),
        None => {
            format!("{dialog}?client_id={{client-id}}&redirect_uri={{redirect-uri}}&scope={{scopes}}&state={{state}}")
        }
    }
}

/// The manifest for `config`. Pure: the same answer for the same config.
pub fn manifest(config: &PluginConfig) -> Manifest {
    let scopes = if config_id(config).is_some() { vec![] } else { SCOPES.map(str::to_string).to_vec() };
    Manifest {
        name: "meta".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        display_name: "Meta".into(),
        identifiers: SUPPORTED.map(str::to_string).to_vec(),
        audience_keys: AudienceKeys::MultiKey,
        features: Features::REMOVAL | Features::AUDIENCE_SEARCH,
        limits: build::limits(MAX_BATCH_SIZE, 1.0, 1),
        oauth: Some(OauthApp { authorize_url: authorize_url(config), scopes, scope_separator: ",".into() }),
        default_hosts: default_hosts(config),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: Option<&str>, settings: &[(&str, &str)]) -> PluginConfig {
        PluginConfig {
            base_url: base.map(str::to_string),
            client_id: None,
            client_secret: None,
            settings: settings.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
        }
    }

    #[test]
    fn manifest_values() {
        let m = manifest(&config(None, &[]));
        assert_eq!((m.name.as_str(), m.display_name.as_str()), ("meta", "Meta"));
        assert_eq!(
            m.identifiers.join(","),
            "email,phone,first-name,last-name,date-of-birth,gender,city,region,postal-code,country,mobile-ad-id,\
             idfa,external-id"
        );
        assert_eq!(m.audience_keys, AudienceKeys::MultiKey);
        assert_eq!(m.features, Features::REMOVAL | Features::AUDIENCE_SEARCH);
        assert!(!m.features.contains(Features::ASYNCHRONOUS) && !m.features.contains(Features::CONSENT));
        assert_eq!(m.limits.max_batch_size, 10_000);
        assert_eq!(m.limits.requests_per_second, 1.0);
        assert_eq!(m.limits.max_concurrent_requests, 1);
        assert_eq!(m.limits.max_submissions_per_audience, 0);
        assert_eq!(m.limits.app_requests_per_second, None);
        assert_eq!(m.default_hosts, vec!["graph.facebook.com".to_string(), "www.facebook.com".to_string()]);
        let oauth = m.oauth.unwrap();
        assert_eq!(
            oauth.authorize_url,
            "https://www.facebook.com/v27.0/dialog/oauth?client_id={client-id}&redirect_uri={redirect-uri}\
             &scope={scopes}&state={state}"
        );
        assert_eq!(oauth.scopes.join(oauth.scope_separator.as_str()), "ads_management,ads_read,business_management");
        assert_eq!(manifest(&config(None, &[])), manifest(&config(None, &[])));
    }

    #[test]
    fn describe_with_a_base_url() {
        let m = manifest(&config(Some("http://127.0.0.1:4010"), &[("api_version", "v25.0")]));
        assert_eq!(m.default_hosts, vec!["127.0.0.1".to_string()]);
        assert_eq!(
            m.oauth.unwrap().authorize_url,
            "http://127.0.0.1:4010/v25.0/dialog/oauth?client_id={client-id}&redirect_uri={redirect-uri}\
             &scope={scopes}&state={state}"
        );
    }

    #[test]
    fn login_for_business() {
        let m = manifest(&config(None, &[("config_id", "987654")]));
        let oauth = m.oauth.unwrap();
        assert_eq!(
            oauth.authorize_url,
            "https://www.facebook.com/v27.0/dialog/oauth?client_id={client-id}&redirect_uri={redirect-uri}\
             &config_id=987654&response_type=code&override_default_response_type=true&state={state}"
        );
        assert!(oauth.scopes.is_empty());
    }
}
