//! `authorize`: Google's OAuth 2.0 code exchange and refresh (one client and flow for the Ads
//! and Data Manager APIs; `crates/sandbox/spec/google-notes.md`, "OAuth 2.0 and headers").
//!
//! - Code: `POST {oauth2}/token` (form) `grant_type=authorization_code&code&redirect_uri&
//!   client_id&client_secret` → `{access_token, expires_in, refresh_token, scope}`.
//! - Refresh: `POST {oauth2}/token` `grant_type=refresh_token&refresh_token&client_id&
//!   client_secret` → a new `access_token`, usually without a `refresh_token`: the old one is
//!   kept. Credentials without a refresh token cannot be renewed: `unauthorized`.
//! - `expires-at` = now + `expires_in` (none when Google gives no lifetime);
//!   `renewable-until` is none: a refresh token has no fixed expiry (it dies when unused for six
//!   months, revoked, or after 7 days for an app in "Testing" status, none of which the plugin
//!   can see coming). Without a refresh token (Google gives one with `access_type=offline`,
//!   every time with `prompt=consent`) it is `expires-at`, and a warning is logged.
//! - `scopes` = Google's `scope` answer split on spaces (kept from the old credentials when a
//!   refresh answer has none). Both scopes are needed (`datamanager` for every list and member
//!   call, `adwords` for account discovery): Google's consent screen lets a person untick one,
//!   so a grant missing either is `unauthorized`, naming what to allow.
//!
//! Errors: `invalid_grant` (a used or expired code, a dead refresh token) → `unauthorized`, so
//! the host asks the user to sign in again; `invalid_client`, `unauthorized_client`,
//! `redirect_uri_mismatch` and other 4xx → `invalid-request` (the operator's OAuth client or
//! redirect URI is wrong; signing in again does not help); 429 → `rate-limited`; 5xx →
//! `transient`. No token, code or secret ever reaches a message or log line.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::http::{RequestBuilder, retry_after_ms};
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::{Credentials, DestinationError, Grant, PluginConfig};

use crate::client::Client;
use crate::config::app_credentials;
use crate::errors::{Api, Call};
use crate::manifest::{ADWORDS_SCOPE, DATAMANAGER_SCOPE};
use crate::wire::{OAuthError, TokenResponse};

/// Seconds since the Unix epoch from the WASI wall clock.
pub fn now_unix() -> Option<u64> {
    crate::client::now_ms().map(|ms| ms / 1000)
}

fn oauth_error(call: &Call, status: u16, body: &[u8], retry_after: Option<u32>) -> DestinationError {
    let parsed: OAuthError = serde_json::from_slice(body).unwrap_or_default();
    let code = parsed.error.as_deref().unwrap_or("");
    let detail = match (&parsed.error, &parsed.error_description) {
        (Some(e), Some(d)) => format!(" (Google: {e}: {})", excerpt(d, 200)),
        (Some(e), None) => format!(" (Google: {e})"),
        _ => format!(" (HTTP {status})"),
    };
    let what = &call.what;
    match (status, code) {
        (_, "invalid_grant") => DestinationError::Unauthorized(format!(
            "Google refused to {what}: the grant is no longer valid (revoked, expired or already used); the user must \
             sign in again{detail}"
        )),
        (_, "invalid_client" | "unauthorized_client" | "redirect_uri_mismatch") => {
            DestinationError::InvalidRequest(format!(
                "Google refused the OAuth client when asked to {what}: check the plugin's client-id, client-secret \
                 and the redirect URI registered in the Google Cloud project{detail}"
            ))
        }
        (429, _) => DestinationError::RateLimited(retry_after),
        (408 | 500..=599, _) => DestinationError::Transient(format!("Google failed to {what}{detail}")),
        _ => DestinationError::InvalidRequest(format!("Google refused to {what}{detail}")),
    }
}

fn token(client: &Client<'_>, call: &Call, fields: &[(&str, &str)]) -> Result<TokenResponse, DestinationError> {
    let url = format!("{}/token", client.hosts().oauth2);
    let response = client.send(call, RequestBuilder::post(url).form(fields))?;
    if !response.is_success() {
        let retry_after = response.header("retry-after").and_then(retry_after_ms);
        let error = client.redacted(oauth_error(call, response.status, &response.body, retry_after));
        client.log(Level::Warn, &format!("Google: could not {}: HTTP {}", call.what, response.status));
        return Err(error);
    }
    client.decode(call, &response)
}

fn scopes_of(answer: &TokenResponse) -> Option<Vec<String>> {
    answer.scope.as_deref().map(|s| s.split_whitespace().map(str::to_string).collect())
}

/// The scope among the plugin's that `scopes` lacks, if any (an empty list is "not reported").
pub fn missing_scope(scopes: &[String]) -> Option<&'static str> {
    if scopes.is_empty() {
        return None;
    }
    [DATAMANAGER_SCOPE, ADWORDS_SCOPE].into_iter().find(|needed| !scopes.iter().any(|s| s == needed))
}

/// Exchange `grant` for credentials; `now` is the current Unix time.
pub fn authorize(
    host: &dyn Host,
    config: &PluginConfig,
    grant: Grant,
    now: Option<u64>,
) -> Result<Credentials, DestinationError> {
    let (client_id, client_secret) = app_credentials(config)?;
    let mut client = Client::new(host, config);
    let (answer, previous) = match &grant {
        Grant::AuthorizationCode(code) => {
            client.add_secret(&code.code);
            let call = Call::new(Api::OAuth, "exchange the authorization code for tokens");
            let fields = [
                ("grant_type", "authorization_code"),
                ("code", code.code.as_str()),
                ("redirect_uri", code.redirect_uri.as_str()),
                ("client_id", client_id),
                ("client_secret", client_secret),
            ];
            (token(&client, &call, &fields)?, None)
        }
        Grant::Refresh(creds) => {
            client.add_secret(&creds.access_token);
            let Some(refresh) = creds.refresh_token.as_deref().map(str::trim).filter(|r| !r.is_empty()) else {
                return Err(DestinationError::Unauthorized(
                    "the connection has no Google refresh token, so it cannot be renewed: the user must sign in again"
                        .into(),
                ));
            };
            client.add_secret(refresh);
            let call = Call::new(Api::OAuth, "renew the access token");
            let fields = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh),
                ("client_id", client_id),
                ("client_secret", client_secret),
            ];
            (token(&client, &call, &fields)?, Some(creds))
        }
    };
    let access_token = answer.access_token.clone().map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    let Some(access_token) = access_token else {
        return Err(DestinationError::Transient("Google answered no access token".into()));
    };
    let scopes = scopes_of(&answer).or_else(|| previous.map(|p| p.scopes.clone())).unwrap_or_default();
    if let Some(missing) = missing_scope(&scopes) {
        return Err(DestinationError::Unauthorized(format!(
            "Google granted the connection without the scope {missing}: sign in again and allow access to both Google \
             Ads and the Data Manager API"
        )));
    }
    let refresh_token = answer
        .refresh_token
        .clone()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .or_else(|| previous.and_then(|p| p.refresh_token.clone()));
    let expires_at = answer.expires_in.filter(|s| *s > 0).and_then(|secs| now.map(|n| n.saturating_add(secs)));
    // Without a refresh token nothing renews the access token: the connection lapses with it.
    let renewable_until = if refresh_token.is_none() {
        client.log(
            Level::Warn,
            "Google: no refresh token was granted, so the connection lapses when the access token expires (the \
             consent URL must ask for access_type=offline and prompt=consent)",
        );
        expires_at
    } else {
        None
    };
    Ok(Credentials { access_token, refresh_token, expires_at, renewable_until, scopes })
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::http::Response;
    use audience_plugin_sdk::types::AuthCode;
    use serde_json::json;

    use super::*;
    use crate::client::message_of;
    use crate::testing::{
        FakeHost, REFRESH, SECRET, TOKEN, assert_no_secrets, assert_no_secrets_logged, config, creds, ok,
    };

    const NOW: u64 = 1_800_000_000;
    const BOTH: &str = "https://www.googleapis.com/auth/datamanager https://www.googleapis.com/auth/adwords";

    fn code() -> Grant {
        Grant::AuthorizationCode(AuthCode { code: "4/the-code".into(), redirect_uri: "https://host.test/cb".into() })
    }

    fn form(host: &FakeHost, i: usize) -> Vec<(String, String)> {
        host.body(i)
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.replace("%2F", "/").replace("%3A", ":").replace('+', " ")))
            .collect()
    }

    #[test]
    fn the_code_exchange() {
        let host = FakeHost::new(vec![ok(json!({"access_token": "ya29.new", "expires_in": 3599,
            "refresh_token": "1//new-refresh", "scope": BOTH, "token_type": "Bearer"}))]);
        let creds = authorize(&host, &config(), code(), Some(NOW)).unwrap();
        assert_eq!(creds.access_token, "ya29.new");
        assert_eq!(creds.refresh_token.as_deref(), Some("1//new-refresh"));
        assert_eq!((creds.expires_at, creds.renewable_until), (Some(NOW + 3599), None));
        assert_eq!(creds.scopes.len(), 2);
        assert_eq!(host.call(0), ("POST".into(), "http://sandbox.test/oauth2/token".into()));
        let form = form(&host, 0);
        for (name, value) in [
            ("grant_type", "authorization_code"),
            ("code", "4/the-code"),
            ("redirect_uri", "https://host.test/cb"),
            ("client_id", "client-id.apps.googleusercontent.com"),
            ("client_secret", SECRET),
        ] {
            assert!(form.contains(&(name.to_string(), value.to_string())), "{name} in {form:?}");
        }
    }

    #[test]
    fn a_refresh_keeps_the_refresh_token_and_scopes() {
        let host = FakeHost::new(vec![ok(json!({"access_token": "ya29.renewed", "expires_in": 3599}))]);
        let renewed = authorize(&host, &config(), Grant::Refresh(creds()), Some(NOW)).unwrap();
        assert_eq!(renewed.access_token, "ya29.renewed");
        assert_eq!(renewed.refresh_token.as_deref(), Some(REFRESH));
        assert_eq!(renewed.scopes, creds().scopes);
        let form = form(&host, 0);
        assert!(form.contains(&("grant_type".into(), "refresh_token".into())));
        assert!(form.contains(&("refresh_token".into(), REFRESH.into())));
    }

    #[test]
    fn refusals() {
        let dead = Ok(Response::new(400)
            .with_body(r#"{"error": "invalid_grant", "error_description": "Token has been expired or revoked."}"#));
        let host = FakeHost::new(vec![dead]);
        let err = authorize(&host, &config(), Grant::Refresh(creds()), Some(NOW)).unwrap_err();
        assert!(matches!(&err, DestinationError::Unauthorized(m) if m.contains("sign in again")), "{err:?}");
        let client = Ok(Response::new(401).with_body(r#"{"error": "invalid_client"}"#));
        let host = FakeHost::new(vec![client]);
        let err = authorize(&host, &config(), code(), Some(NOW)).unwrap_err();
        assert!(matches!(&err, DestinationError::InvalidRequest(m) if m.contains("client-secret")), "{err:?}");
        for (status, expected) in [(503, "transient"), (429, "rate-limited")] {
            let host = FakeHost::new(vec![Ok(Response::new(status))]);
            let err = authorize(&host, &config(), code(), Some(NOW)).unwrap_err();
            let got = match err {
                DestinationError::Transient(_) => "transient",
                DestinationError::RateLimited(_) => "rate-limited",
                _ => "other",
            };
            assert_eq!(got, expected);
        }
        let only_ads = ok(json!({"access_token": "ya29.x", "expires_in": 3599, "scope": ADWORDS_SCOPE}));
        let host = FakeHost::new(vec![only_ads]);
        let err = authorize(&host, &config(), code(), Some(NOW)).unwrap_err();
        assert!(matches!(&err, DestinationError::Unauthorized(m) if m.contains("datamanager")), "{err:?}");
        let host = FakeHost::new(vec![ok(json!({"access_token": "ya29.x", "expires_in": 3599, "scope": BOTH}))]);
        let lapsing = authorize(&host, &config(), code(), Some(NOW)).unwrap();
        assert_eq!((lapsing.refresh_token, lapsing.renewable_until), (None, Some(NOW + 3599)));
        assert!(host.logs.borrow()[0].1.contains("no refresh token"));
        let mut no_refresh = creds();
        no_refresh.refresh_token = None;
        let host = FakeHost::new(vec![]);
        assert!(matches!(
            authorize(&host, &config(), Grant::Refresh(no_refresh), Some(NOW)),
            Err(DestinationError::Unauthorized(_))
        ));
        assert_eq!(host.count(), 0);
        let mut unconfigured = config();
        unconfigured.client_id = None;
        assert!(matches!(authorize(&host, &unconfigured, code(), Some(NOW)), Err(DestinationError::InvalidRequest(_))));
    }

    #[test]
    fn no_secret_reaches_messages_or_logs() {
        let echo = format!(r#"{{"error": "invalid_request", "error_description": "bad {TOKEN} {REFRESH} {SECRET}"}}"#);
        let host = FakeHost::new(vec![Ok(Response::new(400).with_body(echo))]);
        let err = authorize(&host, &config(), Grant::Refresh(creds()), Some(NOW)).unwrap_err();
        assert_no_secrets(&message_of(&err));
        assert_no_secrets_logged(&host);
    }
}
