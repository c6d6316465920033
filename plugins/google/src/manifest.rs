//! `describe`: who the plugin is, what it matches on, Google's limits and consent page.
//!
//! | field | value | why |
//! |---|---|---|
//! | `name`, `display-name` | `google`, "Google Customer Match" | |
//! | `identifiers` | `email`, `phone`, `first-name`, `last-name`, `country`, `postal-code`, `mobile-ad-id`, `idfa`, `external-id` | what Customer Match lists hold ([`crate::kinds`]) |
//! | `audience-keys` | `multi-key` | a contact-info member is a row of several identifiers (emails, phones, an address), so every selected contact field a user has is sent; the list's key type is still one, decided by the first supported field (see [`crate::kinds`]) |
//! | `features` | removal, asynchronous, consent, audience-search | `audienceMembers:remove`; writes answer `submitted` with the DM `requestId` and `check-submission` reads `requestStatus:retrieve`; per-member consent; user lists are listed by name |
//! | `max-batch-size` | 10,000 | DM's most audience members per request |
//! | `requests-per-second` | 4 | per connection; Google counts per Cloud project, see below |
//! | `max-concurrent-requests` | 10 | Google allows up to 10 concurrent ingestion requests, even to one destination |
//! | `max-submissions-per-audience` | 0 | DM has no job lock per list (no `CONCURRENT_MODIFICATION`) |
//! | `app-requests-per-second` | 4 | DM quotas are per Cloud project (the OAuth client's): 300 requests a minute per bucket (ingestion mutate, ingestion read, management mutate, management read); 4/s for all the app's connections together stays below each bucket |
//!
//! OAuth: `{accounts}/o/oauth2/v2/auth?client_id=..&redirect_uri=..&response_type=code&scope=..
//! &access_type=offline&prompt=consent&state=..` (`access_type=offline` gives a refresh token,
//! `prompt=consent` makes Google give one every time), with the scopes `datamanager` (every
//! Data Manager call) and `adwords` (account discovery), joined by a space.

use audience_plugin_sdk::types::{AudienceKeys, Features, Limits, Manifest, OauthApp, PluginConfig};

use crate::config::{Hosts, default_hosts};
use crate::kinds::SUPPORTED;

/// The most members one ingest or remove request carries.
pub const MAX_BATCH_SIZE: u32 = 10_000;

/// The Data Manager API scope.
pub const DATAMANAGER_SCOPE: &str = "https://www.googleapis.com/auth/datamanager";
/// The Google Ads API scope (account discovery).
pub const ADWORDS_SCOPE: &str = "https://www.googleapis.com/auth/adwords";
/// The scopes the plugin asks for.
pub const SCOPES: [&str; 2] = [DATAMANAGER_SCOPE, ADWORDS_SCOPE];

/// The authorize-URL template for `config`.
pub fn authorize_url(config: &PluginConfig) -> String {
    format!(
        "{}/o/oauth2/v2/auth?client_id={{client-id}}&redirect_uri={{redirect-uri}}&response_type=code&scope={{scopes}}\
         &access_type=offline&prompt=consent&state={{state}}",
        Hosts::of(config).accounts
    )
}

/// The plugin's default limits.
pub fn limits() -> Limits {
    Limits {
        max_batch_size: MAX_BATCH_SIZE,
        requests_per_second: 4.0,
        max_concurrent_requests: 10,
        max_submissions_per_audience: 0,
        app_requests_per_second: Some(4.0),
    }
}

/// The manifest for `config`. Pure: the same answer for the same config.
pub fn manifest(config: &PluginConfig) -> Manifest {
    Manifest {
        name: "google".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        display_name: "Google Customer Match".into(),
        identifiers: SUPPORTED.map(str::to_string).to_vec(),
        audience_keys: AudienceKeys::MultiKey,
        features: Features::REMOVAL | Features::ASYNCHRONOUS | Features::CONSENT | Features::AUDIENCE_SEARCH,
        limits: limits(),
        oauth: Some(OauthApp {
            authorize_url: authorize_url(config),
            scopes: SCOPES.map(str::to_string).to_vec(),
            scope_separator: " ".into(),
        }),
        default_hosts: default_hosts(config),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: Option<&str>) -> PluginConfig {
        PluginConfig { base_url: base.map(str::to_string), client_id: None, client_secret: None, settings: vec![] }
    }

    #[test]
    fn manifest_values() {
        let m = manifest(&config(None));
        assert_eq!((m.name.as_str(), m.display_name.as_str()), ("google", "Google Customer Match"));
        assert_eq!(
            m.identifiers.join(","),
            "email,phone,first-name,last-name,country,postal-code,mobile-ad-id,idfa,external-id"
        );
        assert_eq!(m.audience_keys, AudienceKeys::MultiKey);
        assert!(m.features.contains(Features::ASYNCHRONOUS | Features::CONSENT | Features::REMOVAL));
        assert_eq!(m.limits, limits());
        assert_eq!(
            m.default_hosts,
            vec![
                "accounts.google.com",
                "oauth2.googleapis.com",
                "googleads.googleapis.com",
                "datamanager.googleapis.com"
            ]
        );
        let oauth = m.oauth.unwrap();
        assert_eq!(
            oauth.authorize_url,
            "https://accounts.google.com/o/oauth2/v2/auth?client_id={client-id}&redirect_uri={redirect-uri}\
             &response_type=code&scope={scopes}&access_type=offline&prompt=consent&state={state}"
        );
        assert_eq!(
            oauth.scopes.join(&oauth.scope_separator),
            "https://www.googleapis.com/auth/datamanager https://www.googleapis.com/auth/adwords"
        );
        assert_eq!(manifest(&config(None)), manifest(&config(None)));
    }

    #[test]
    fn a_base_url_moves_the_consent_page_and_the_hosts() {
        let m = manifest(&config(Some("http://127.0.0.1:4010/")));
        assert_eq!(m.default_hosts, vec!["127.0.0.1".to_string()]);
        assert!(m.oauth.unwrap().authorize_url.starts_with("http://127.0.0.1:4010/accounts/o/oauth2/v2/auth?"));
    }
}
