//! `describe`: who the plugin is, what it matches on, and Pinterest's limits.

use audience_plugin_sdk::types::{Limits, Manifest, OauthApp};

use crate::list_type::SUPPORTED_KINDS;
use crate::records::MAX_RECORDS;

/// Pinterest's authorization page; the host fills in the placeholders (URL-encoded). The
/// operator can override it host-side, to point at a sandbox.
pub const AUTHORIZE_URL: &str = "https://www.pinterest.com/oauth/?client_id={client-id}\
     &redirect_uri={redirect-uri}&response_type=code&scope={scopes}&state={state}";

/// The manifest. Pure: the same answer every time.
pub fn manifest() -> Manifest {
    Manifest {
        name: "pinterest".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        display_name: "Pinterest".into(),
        identifiers: SUPPORTED_KINDS.to_vec(),
        supports_removal: true,
        limits: Limits {
            // Pinterest takes at most 1,900 records per customer-list request.
            max_batch_size: MAX_RECORDS as u32,
            // The reference audience-sync behaviour: at most 7 requests per second per token.
            requests_per_second: 7.0,
            // Three in flight: a 1,900-record PATCH takes a few hundred milliseconds, so three
            // concurrent requests are enough to use the 7/s budget, while keeping few parallel
            // writes to the same customer list (which Pinterest applies one batch at a time).
            max_concurrent_requests: 3,
        },
        oauth: Some(OauthApp {
            authorize_url: AUTHORIZE_URL.into(),
            scopes: vec!["ads:read".into(), "ads:write".into()],
            scope_separator: ",".into(),
        }),
        default_hosts: vec!["api.pinterest.com".into()],
    }
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::types::IdentifierKind;

    use super::*;

    #[test]
    fn manifest_values() {
        let m = manifest();
        assert_eq!(m.name, "pinterest");
        assert_eq!(m.display_name, "Pinterest");
        assert_eq!(m.identifiers, vec![IdentifierKind::Email, IdentifierKind::MobileAdId, IdentifierKind::Idfa]);
        assert!(m.supports_removal);
        assert_eq!(m.limits.max_batch_size, 1900);
        assert_eq!(m.limits.requests_per_second, 7.0);
        assert_eq!(m.default_hosts, vec!["api.pinterest.com".to_string()]);
        let Some(oauth) = m.oauth else { panic!("no oauth") };
        assert_eq!(
            oauth.authorize_url,
            "https://www.pinterest.com/oauth/?client_id={client-id}&redirect_uri={redirect-uri}\
             &response_type=code&scope={scopes}&state={state}"
        );
        assert_eq!(oauth.scopes, vec!["ads:read".to_string(), "ads:write".to_string()]);
        assert_eq!(oauth.scope_separator, ",");
        assert_eq!(manifest(), manifest());
    }
}
