//! The operator's settings, read from `plugin-config`, and the ids the plugin accepts.
//!
//! | where                        | default | meaning |
//! |------------------------------|---------|---------|
//! | `base-url`                   | none    | a sandbox `B` standing in for every Google host, each real host a path prefix: `accounts.google.com` → `B/accounts`, `oauth2.googleapis.com` → `B/oauth2`, `googleads.googleapis.com` → `B/googleads`, `datamanager.googleapis.com` → `B/datamanager`. None: the real hosts |
//! | `client-id`, `client-secret` | none    | the OAuth client of the Google Cloud project (code exchange and refresh) |
//! | setting `ads-api-version`    | `v25`   | the Google Ads API version used for account discovery (`vNN`; the newest in the researched proto snapshot) |
//! | setting `status-check-after-ms` | `1800000` | how long after an ingest or remove the host first asks `check-submission` (Google advises waiting 30 minutes before reading a request's status) |
//! | setting `membership-days`    | `540`   | how long a member stays in a list the plugin creates, in whole days (1 to 540, Google's maximum) |
//! | setting `android-app-id`     | none    | the Android app (package name) of mobile-id lists the plugin creates for `mobile-ad-id` syncs; without it such a list must be created in Google Ads and picked |
//! | setting `ios-app-id`         | none    | the iOS app (App Store id) of mobile-id lists the plugin creates for `idfa` syncs; likewise |
//!
//! **Account ids.** `list-accounts` returns a customer the user holds directly as its 10-digit
//! id (`"1234567890"`) and a client reached through a manager as `"<client>@<manager>"`
//! (`"1112223334@9998887776"`): the manager is the login account (`login-customer-id` on the
//! Ads API, `loginAccount` / the `login-account` header on the Data Manager API). Hyphens
//! (`123-456-7890`, as Google Ads shows ids) are accepted and dropped; anything but digits is
//! refused before a request is made, so nothing else can reach a URL path.
//!
//! **Audience ids** are the Data Manager user list's numeric id.

use audience_plugin_sdk::config::{setting, url_host};
use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::{DestinationError, PluginConfig};

/// Google's OAuth consent page host.
pub const ACCOUNTS_HOST: &str = "accounts.google.com";
/// Google's OAuth token host.
pub const OAUTH2_HOST: &str = "oauth2.googleapis.com";
/// The Google Ads API host (account discovery only).
pub const GOOGLEADS_HOST: &str = "googleads.googleapis.com";
/// The Data Manager API host (user lists, members, request status).
pub const DATAMANAGER_HOST: &str = "datamanager.googleapis.com";

/// The setting naming the Ads API version.
pub const ADS_API_VERSION: &str = "ads-api-version";
/// The Ads API version used unless the setting says otherwise.
pub const DEFAULT_ADS_API_VERSION: &str = "v25";
/// The setting for the first status check's delay.
pub const STATUS_CHECK_AFTER_MS: &str = "status-check-after-ms";
/// Google advises waiting 30 minutes before reading a request's status.
pub const DEFAULT_STATUS_CHECK_AFTER_MS: u32 = 1_800_000;
/// The setting for the membership duration of created lists.
pub const MEMBERSHIP_DAYS: &str = "membership-days";
/// Google's maximum (and the plugin's default) membership duration, in days.
pub const MAX_MEMBERSHIP_DAYS: u32 = 540;
/// The setting naming the Android app of created mobile-id lists.
pub const ANDROID_APP_ID: &str = "android-app-id";
/// The setting naming the iOS app of created mobile-id lists.
pub const IOS_APP_ID: &str = "ios-app-id";

/// The base URLs of the four Google hosts, real or under a sandbox's `base-url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hosts {
    /// `https://accounts.google.com` or `B/accounts`.
    pub accounts: String,
    /// `https://oauth2.googleapis.com` or `B/oauth2`.
    pub oauth2: String,
    /// `https://googleads.googleapis.com` or `B/googleads`.
    pub googleads: String,
    /// `https://datamanager.googleapis.com` or `B/datamanager`.
    pub datamanager: String,
}

fn base_url(config: &PluginConfig) -> Option<&str> {
    config.base_url.as_deref().map(str::trim).filter(|b| !b.is_empty()).map(|b| b.trim_end_matches('/'))
}

impl Hosts {
    /// The hosts for `config`.
    pub fn of(config: &PluginConfig) -> Self {
        match base_url(config) {
            Some(base) => Self {
                accounts: format!("{base}/accounts"),
                oauth2: format!("{base}/oauth2"),
                googleads: format!("{base}/googleads"),
                datamanager: format!("{base}/datamanager"),
            },
            None => Self {
                accounts: format!("https://{ACCOUNTS_HOST}"),
                oauth2: format!("https://{OAUTH2_HOST}"),
                googleads: format!("https://{GOOGLEADS_HOST}"),
                datamanager: format!("https://{DATAMANAGER_HOST}"),
            },
        }
    }
}

/// The hosts the plugin reaches: the base URL's host, or Google's four.
pub fn default_hosts(config: &PluginConfig) -> Vec<String> {
    match base_url(config) {
        Some(base) => url_host(base).map(|h| vec![h.to_ascii_lowercase()]).unwrap_or_default(),
        None => [ACCOUNTS_HOST, OAUTH2_HOST, GOOGLEADS_HOST, DATAMANAGER_HOST].map(str::to_string).to_vec(),
    }
}

/// The Ads API version (`vNN`): the setting, else [`DEFAULT_ADS_API_VERSION`]. A malformed
/// setting is `invalid-request` naming it.
pub fn ads_api_version(config: &PluginConfig) -> Result<String, DestinationError> {
    let Some(raw) = setting(config, ADS_API_VERSION) else { return Ok(DEFAULT_ADS_API_VERSION.to_string()) };
    let number = raw.strip_prefix(['v', 'V']).unwrap_or(raw);
    if !number.is_empty() && number.len() <= 3 && number.bytes().all(|b| b.is_ascii_digit()) {
        Ok(format!("v{number}"))
    } else {
        Err(DestinationError::InvalidRequest(format!(
            "the plugin setting `{ADS_API_VERSION}` is '{}', not a Google Ads API version like {DEFAULT_ADS_API_VERSION}",
            excerpt(raw, 20)
        )))
    }
}

/// The first status check's delay: the setting when it is a number of milliseconds, else
/// [`DEFAULT_STATUS_CHECK_AFTER_MS`].
pub fn status_check_after_ms(config: &PluginConfig) -> u32 {
    setting(config, STATUS_CHECK_AFTER_MS).and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_STATUS_CHECK_AFTER_MS)
}

/// The membership duration of created lists, in days: the setting when it is within 1..=540,
/// else 540.
pub fn membership_days(config: &PluginConfig) -> u32 {
    setting(config, MEMBERSHIP_DAYS)
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|d| (1..=MAX_MEMBERSHIP_DAYS).contains(d))
        .unwrap_or(MAX_MEMBERSHIP_DAYS)
}

/// The OAuth client id and secret; a missing or blank one is `invalid-request` naming the
/// setting to configure (never its value).
pub fn app_credentials(config: &PluginConfig) -> Result<(&str, &str), DestinationError> {
    fn required<'a>(value: &'a Option<String>, name: &str) -> Result<&'a str, DestinationError> {
        value.as_deref().map(str::trim).filter(|v| !v.is_empty()).ok_or_else(|| {
            DestinationError::InvalidRequest(format!(
                "the Google OAuth client is not configured: set `{name}` in the plugin configuration"
            ))
        })
    }
    Ok((required(&config.client_id, "client-id")?, required(&config.client_secret, "client-secret")?))
}

/// A Google Ads customer id: digits only (hyphens dropped), at most 20.
pub fn customer_id(raw: &str) -> Result<String, DestinationError> {
    let id: String = raw.trim().chars().filter(|c| *c != '-').collect();
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(DestinationError::InvalidRequest(format!(
            "'{}' is not a Google Ads customer id (10 digits, like 1234567890)",
            excerpt(raw, 40)
        )))
    }
}

/// The account a call works in: the customer that owns the lists (the operating account) and,
/// for a client reached through a manager, that manager (the login account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    /// The customer whose lists are read and written.
    pub operating: String,
    /// The manager the user reaches it through, if any.
    pub login: Option<String>,
}

impl AccountRef {
    /// Parse an account id as `list-accounts` returns it: `<customer>` or `<client>@<manager>`.
    pub fn parse(raw: &str) -> Result<Self, DestinationError> {
        match raw.trim().split_once('@') {
            Some((client, manager)) => {
                let operating = customer_id(client)?;
                let login = customer_id(manager)?;
                Ok(Self { login: (login != operating).then_some(login), operating })
            }
            None => Ok(Self { operating: customer_id(raw)?, login: None }),
        }
    }

    /// The id as `list-accounts` shows it.
    pub fn id(&self) -> String {
        match &self.login {
            Some(manager) => format!("{}@{manager}", self.operating),
            None => self.operating.clone(),
        }
    }

    /// The value of the `login-account` header of user-list calls, when a manager is used.
    pub fn login_account_header(&self) -> Option<String> {
        self.login.as_ref().map(|m| format!("accountTypes/GOOGLE_ADS/accounts/{m}"))
    }

    /// Words for messages: "account 1112223334 (through manager 9998887776)".
    pub fn describe(&self) -> String {
        match &self.login {
            Some(manager) => format!("Google Ads account {} (through manager {manager})", self.operating),
            None => format!("Google Ads account {}", self.operating),
        }
    }
}

/// A user list id: digits only.
pub fn list_id(raw: &str) -> Result<&str, DestinationError> {
    let id = raw.trim();
    if !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(id)
    } else {
        Err(DestinationError::InvalidRequest(format!(
            "'{}' is not a Google user list id (digits, as search-audiences returns it)",
            excerpt(raw, 40)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base: Option<&str>, settings: &[(&str, &str)]) -> PluginConfig {
        PluginConfig {
            base_url: base.map(str::to_string),
            client_id: Some("id".into()),
            client_secret: Some("secret".into()),
            settings: settings.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
        }
    }

    #[test]
    fn hosts_follow_the_base_url() {
        let real = Hosts::of(&config(None, &[]));
        assert_eq!(real.accounts, "https://accounts.google.com");
        assert_eq!(real.datamanager, "https://datamanager.googleapis.com");
        assert_eq!(default_hosts(&config(None, &[])).len(), 4);
        let sandbox = Hosts::of(&config(Some("http://127.0.0.1:9000/"), &[]));
        assert_eq!(sandbox.oauth2, "http://127.0.0.1:9000/oauth2");
        assert_eq!(sandbox.googleads, "http://127.0.0.1:9000/googleads");
        assert_eq!(default_hosts(&config(Some("http://127.0.0.1:9000"), &[])), vec!["127.0.0.1".to_string()]);
    }

    #[test]
    fn settings() {
        assert_eq!(ads_api_version(&config(None, &[])).as_deref(), Ok("v25"));
        assert_eq!(ads_api_version(&config(None, &[("ads-api-version", "24")])).as_deref(), Ok("v24"));
        assert!(
            matches!(ads_api_version(&config(None, &[("ads-api-version", "latest")])), Err(DestinationError::InvalidRequest(m)) if m.contains("ads-api-version"))
        );
        assert_eq!(status_check_after_ms(&config(None, &[])), 1_800_000);
        assert_eq!(status_check_after_ms(&config(None, &[("status-check-after-ms", "50")])), 50);
        assert_eq!(membership_days(&config(None, &[("membership-days", "30")])), 30);
        assert_eq!(membership_days(&config(None, &[("membership-days", "541")])), 540);
        let mut c = config(None, &[]);
        c.client_secret = None;
        assert!(matches!(app_credentials(&c), Err(DestinationError::InvalidRequest(m)) if m.contains("client-secret")));
    }

    #[test]
    fn account_ids() {
        assert_eq!(AccountRef::parse("1234567890"), Ok(AccountRef { operating: "1234567890".into(), login: None }));
        let via = AccountRef::parse("111-222-3334@9998887776").unwrap();
        assert_eq!(via, AccountRef { operating: "1112223334".into(), login: Some("9998887776".into()) });
        assert_eq!(via.id(), "1112223334@9998887776");
        assert_eq!(via.login_account_header().as_deref(), Some("accountTypes/GOOGLE_ADS/accounts/9998887776"));
        assert_eq!(AccountRef::parse("5@5").unwrap().login, None);
        for bad in ["", "abc", "1/../2", "1@", "@1", "12345678901234567890123"] {
            assert!(AccountRef::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(list_id(" 42 "), Ok("42"));
        assert!(list_id("conformance-audience").is_err());
    }
}
