//! `describe`: who the plugin is, what it matches on, and Pinterest's limits.
//!
//! Pure: the same configuration always gives the same manifest. With a `base-url` outside
//! pinterest.com (a sandbox) the authorize page and the default allowed host follow it (see
//! [`crate::config`]), so pointing the plugin at a sandbox needs nothing else.

use audience_plugin_sdk::build;
use audience_plugin_sdk::types::{AudienceKeys, Features, Manifest, OauthApp, PluginConfig};

use crate::config::{api_hosts, authorize_url};
use crate::list_type::SUPPORTED_KINDS;
use crate::records::MAX_RECORDS;

/// The scope reads need (ad accounts, customer lists, audiences).
pub const ADS_READ: &str = "ads:read";
/// The scope writes need (creating and updating customer lists and audiences).
pub const ADS_WRITE: &str = "ads:write";

/// The manifest for `config`.
pub fn manifest(config: &PluginConfig) -> Manifest {
    Manifest {
        name: "pinterest".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        display_name: "Pinterest".into(),
        identifiers: audience_plugin_sdk::kinds::list(&SUPPORTED_KINDS),
        // A customer list keeps one list type, fixed at creation.
        audience_keys: AudienceKeys::OneKind,
        // Pinterest answers every customer-list update synchronously: no `asynchronous`; it
        // takes no per-user consent: no `consent`.
        features: Features::REMOVAL | Features::AUDIENCE_SEARCH,
        // Pinterest takes at most 1,900 records per customer-list request. The reference
        // audience-sync behaviour: at most 7 requests per second per token. Three in flight:
        // a 1,900-record PATCH takes a few hundred milliseconds, so three concurrent requests
        // are enough to use the 7/s budget, while keeping few parallel writes to the same
        // customer list (which Pinterest applies one batch at a time). Writes finish in their
        // own call (no submissions to cap) and Pinterest counts per user, not per app.
        limits: build::limits(MAX_RECORDS as u32, 7.0, 3),
        oauth: Some(OauthApp {
            authorize_url: authorize_url(config),
            scopes: vec![ADS_READ.into(), ADS_WRITE.into()],
            scope_separator: ",".into(),
        }),
        default_hosts: api_hosts(config),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::config;

    fn bare(base: Option<&str>) -> PluginConfig {
        PluginConfig { base_url: base.map(str::to_string), client_id: None, client_secret: None, settings: vec![] }
    }

    #[test]
    fn manifest_values() {
        let m = manifest(&bare(None));
        assert_eq!(m.name, "pinterest");
        assert_eq!(m.display_name, "Pinterest");
        assert_eq!(m.identifiers, vec!["email".to_string(), "mobile-ad-id".to_string(), "idfa".to_string()]);
        assert_eq!(m.audience_keys, AudienceKeys::OneKind);
        assert_eq!(m.features, Features::REMOVAL | Features::AUDIENCE_SEARCH);
        assert_eq!(m.limits.max_batch_size, 1900);
        assert_eq!(m.limits.requests_per_second, 7.0);
        assert_eq!(m.limits.max_concurrent_requests, 3);
        assert_eq!(m.limits.max_submissions_per_audience, 0);
        assert_eq!(m.limits.app_requests_per_second, None);
        assert_eq!(m.default_hosts, vec!["api.pinterest.com".to_string()]);
        let Some(oauth) = m.oauth else { panic!("no oauth") };
        assert_eq!(
            oauth.authorize_url,
            "https://www.pinterest.com/oauth/?client_id={client-id}&redirect_uri={redirect-uri}\
             &response_type=code&scope={scopes}&state={state}"
        );
        assert_eq!(oauth.scopes, vec!["ads:read".to_string(), "ads:write".to_string()]);
        assert_eq!(oauth.scope_separator, ",");
        assert_eq!(manifest(&bare(None)), manifest(&bare(None)));
    }

    #[test]
    fn a_base_url_alone_points_describe_at_a_sandbox() {
        let m = manifest(&bare(Some("http://127.0.0.1:38211/")));
        assert_eq!(m.default_hosts, vec!["127.0.0.1".to_string()]);
        let Some(oauth) = m.oauth else { panic!("no oauth") };
        assert_eq!(
            oauth.authorize_url,
            "http://127.0.0.1:38211/oauth/?client_id={client-id}&redirect_uri={redirect-uri}\
             &response_type=code&scope={scopes}&state={state}"
        );
        let m = manifest(&config());
        assert_eq!(m.default_hosts, vec!["sandbox.test".to_string()]);
        assert!(m.oauth.is_some_and(|o| o.authorize_url.starts_with("http://sandbox.test/oauth/?client_id=")));
        assert_eq!(manifest(&config()), manifest(&config()));
    }
}
