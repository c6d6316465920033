//! `authorize`: the code exchange, the long-lived token, and renewing it.
//!
//! Meta issues no refresh tokens. The code flow gives a token that lives hours, so it is
//! exchanged at once for a long-lived one (`grant_type=fb_exchange_token`, about 60 days):
//!
//! 1. `GET /oauth/access_token?client_id&redirect_uri&client_secret&code` → short-lived token;
//! 2. when it expires (`expires_in` > 0): `GET /oauth/access_token?grant_type=fb_exchange_token
//!    &client_id&client_secret&fb_exchange_token=<short>` → long-lived token. A token without
//!    `expires_in` (or 0) is a Login for Business system-user token that never expires: it is
//!    kept as it is. Should the exchange fail with `transient` or `rate-limited`, the
//!    short-lived token is returned (logged as a warning): the code is spent, and the host
//!    renews the token (which exchanges it) ahead of its expiry;
//! 3. `GET /debug_token?input_token=<token>&access_token=<app_id>|<app_secret>` reads the
//!    granted scopes (the token answers carry none). Best effort: if it fails, the scopes are
//!    left empty, which `check-target` reads as "unknown" and checks live.
//!
//! `expires-at` = now + `expires_in` (else `debug_token`'s `expires_at` when positive, else
//! none: never expires). `renewable-until` = `expires-at`: an expired token cannot be
//! exchanged, so the user must log in again by then.
//!
//! `refresh(creds)`: a token past its `expires-at` is `unauthorized` (the user must log in
//! again); a token that never expires is checked with `debug_token` and kept (`unauthorized`
//! when Meta says it is no longer valid), never exchanged (which could give it an expiry);
//! otherwise the current token is exchanged for a new long-lived one. The refresh token, if
//! the host holds one, is kept.

use std::time::{SystemTime, UNIX_EPOCH};

use audience_plugin_sdk::Host;
use audience_plugin_sdk::http::RequestBuilder;
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::types::{Credentials, DestinationError, Grant, PluginConfig};

use crate::client::{Client, message_of};
use crate::config::app_credentials;
use crate::errors::Call;
use crate::wire::{DebugToken, DebugTokenData, TokenResponse};

/// Seconds since the Unix epoch from the WASI wall clock; `None` if it reads before 1970.
pub fn now_unix() -> Option<u64> {
    SystemTime::now().duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

struct App<'a> {
    client: Client<'a>,
    id: &'a str,
    secret: &'a str,
}

impl App<'_> {
    fn token(&mut self, call: Call, params: &[(&str, &str)]) -> Result<TokenResponse, DestinationError> {
        let mut request = RequestBuilder::get(self.client.url("/oauth/access_token"));
        for (name, value) in params {
            request = request.query(name, value);
        }
        let request = request.query("client_id", self.id).query("client_secret", self.secret);
        let response: TokenResponse = self.client.json(call, request, None)?;
        if response.access_token.trim().is_empty() {
            return Err(DestinationError::Transient(format!(
                "Meta answered no access token when asked to {}",
                call.what
            )));
        }
        self.client.add_secret(&response.access_token);
        Ok(response)
    }

    fn exchange(&mut self, token: &str) -> Result<TokenResponse, DestinationError> {
        self.token(Call::LONG_LIVED, &[("grant_type", "fb_exchange_token"), ("fb_exchange_token", token)])
    }

    fn debug(&mut self, token: &str) -> Result<DebugTokenData, DestinationError> {
        let app_token = format!("{}|{}", self.id, self.secret);
        self.client.add_secret(&app_token);
        let request = RequestBuilder::get(self.client.url("/debug_token"))
            .query("input_token", token)
            .query("access_token", &app_token);
        let answer: DebugToken = self.client.json(Call::DEBUG_TOKEN, request, None)?;
        Ok(answer.data)
    }

    /// `debug_token`, logging (not failing) when it cannot be read.
    fn debug_best_effort(&mut self, token: &str) -> Option<DebugTokenData> {
        match self.debug(token) {
            Ok(data) => Some(data),
            Err(err) => {
                self.client.log(
                    Level::Warn,
                    &format!("Meta: could not read the token's scopes; they are left unknown: {}", message_of(&err)),
                );
                None
            }
        }
    }
}

fn positive(n: Option<i64>) -> Option<u64> {
    n.filter(|n| *n > 0).and_then(|n| u64::try_from(n).ok())
}

/// When a token from `response` (read at `now`) expires.
fn expiry(response: &TokenResponse, debug: Option<&DebugTokenData>, now: Option<u64>) -> Option<u64> {
    let relative = positive(response.expires_in).and_then(|secs| now.map(|now| now.saturating_add(secs)));
    relative.or_else(|| debug.and_then(|d| positive(d.expires_at)))
}

/// Exchange `grant` for credentials; `now` is the current Unix time.
pub fn authorize(
    host: &dyn Host,
    config: &PluginConfig,
    grant: Grant,
    now: Option<u64>,
) -> Result<Credentials, DestinationError> {
    let (id, secret) = app_credentials(config)?;
    let mut app = App { client: Client::new(host, config)?, id, secret };
    match grant {
        Grant::AuthorizationCode(code) => {
            let short =
                app.token(Call::CODE_EXCHANGE, &[("redirect_uri", &code.redirect_uri), ("code", &code.code)])?;
            let token = if positive(short.expires_in).is_some() {
                match app.exchange(&short.access_token) {
                    Ok(long) => long,
                    Err(err @ (DestinationError::Transient(_) | DestinationError::RateLimited(_))) => {
                        app.client.log(
                            Level::Warn,
                            &format!(
                                "Meta: keeping the short-lived token; the host renews it before it expires: {}",
                                message_of(&err)
                            ),
                        );
                        short
                    }
                    Err(err) => return Err(err),
                }
            } else {
                short
            };
            let debug = app.debug_best_effort(&token.access_token);
            let expires_at = expiry(&token, debug.as_ref(), now);
            Ok(Credentials {
                scopes: debug.map(|d| d.scopes).unwrap_or_default(),
                access_token: token.access_token,
                refresh_token: None,
                expires_at,
                renewable_until: expires_at,
            })
        }
        Grant::Refresh(creds) => refresh(&mut app, creds, now),
    }
}

fn refresh(app: &mut App<'_>, creds: Credentials, now: Option<u64>) -> Result<Credentials, DestinationError> {
    if let (Some(expires_at), Some(now)) = (creds.expires_at, now)
        && now >= expires_at
    {
        return Err(DestinationError::Unauthorized(
            "the Meta access token has expired, and Meta cannot renew an expired token (it issues no refresh \
             tokens): the user must log in again"
                .into(),
        ));
    }
    if creds.access_token.trim().is_empty() {
        return Err(DestinationError::Unauthorized("no access token: the user must log in again".into()));
    }
    app.client.add_secret(&creds.access_token);
    if creds.expires_at.is_none() {
        // A token that never expires (a system-user token): check it, keep it.
        let debug = app.debug(&creds.access_token)?;
        if debug.is_valid == Some(false) {
            return Err(DestinationError::Unauthorized(
                "Meta says the access token is no longer valid (the app may have been removed from the business): \
                 the user must log in again"
                    .into(),
            ));
        }
        let scopes = if debug.scopes.is_empty() { creds.scopes } else { debug.scopes };
        return Ok(Credentials { scopes, ..creds });
    }
    let token = app.exchange(&creds.access_token)?;
    let debug = app.debug_best_effort(&token.access_token);
    let expires_at = expiry(&token, debug.as_ref(), now);
    let scopes = debug.map(|d| d.scopes).filter(|s| !s.is_empty()).unwrap_or(creds.scopes);
    Ok(Credentials {
        access_token: token.access_token,
        refresh_token: creds.refresh_token,
        expires_at,
        renewable_until: expires_at,
        scopes,
    })
}

/// The scopes Meta reports for `token` now, through `debug_token`; `None` when the app is not
/// configured or the call fails (logged).
pub fn live_scopes(host: &dyn Host, config: &PluginConfig, token: &str) -> Option<Vec<String>> {
    let (id, secret) = app_credentials(config).ok()?;
    let mut app = App { client: Client::new(host, config).ok()?, id, secret };
    app.client.add_secret(token);
    app.debug_best_effort(token).map(|d| d.scopes).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::types::AuthCode;
    use serde_json::json;

    use super::*;
    use crate::testing::{
        FakeHost, SECRET, TOKEN, assert_no_secrets, assert_no_secrets_logged, config, creds, fail, ok,
    };

    const NOW: u64 = 1_800_000_000;

    fn code() -> Grant {
        Grant::AuthorizationCode(AuthCode { code: "the-code".into(), redirect_uri: "https://host.test/cb".into() })
    }

    fn debug(scopes: &[&str], expires_at: i64) -> serde_json::Value {
        json!({"data": {"is_valid": true, "expires_at": expires_at, "scopes": scopes, "type": "USER"}})
    }

    #[test]
    fn code_then_long_lived_token_then_scopes() {
        let host = FakeHost::new(vec![
            ok(json!({"access_token": "short-token", "token_type": "bearer", "expires_in": 7200})),
            ok(json!({"access_token": "long-token", "token_type": "bearer", "expires_in": 5_184_000})),
            ok(debug(&["ads_management", "ads_read"], 0)),
        ]);
        let creds = authorize(&host, &config(), code(), Some(NOW)).unwrap();
        assert_eq!(creds.access_token, "long-token");
        assert_eq!(creds.expires_at, Some(NOW + 5_184_000));
        assert_eq!(creds.renewable_until, creds.expires_at);
        assert_eq!(creds.refresh_token, None);
        assert_eq!(creds.scopes, vec!["ads_management".to_string(), "ads_read".to_string()]);

        assert_eq!(host.url(0).split('?').next(), Some("http://sandbox.test/v25.0/oauth/access_token"));
        for (name, value) in [
            ("code", "the-code"),
            ("redirect_uri", "https://host.test/cb"),
            ("client_id", "app-id"),
            ("client_secret", SECRET),
        ] {
            assert_eq!(host.param(0, name).as_deref(), Some(value), "{name}");
        }
        assert_eq!(host.param(1, "grant_type").as_deref(), Some("fb_exchange_token"));
        assert_eq!(host.param(1, "fb_exchange_token").as_deref(), Some("short-token"));
        assert_eq!(host.url(2).split('?').next(), Some("http://sandbox.test/v25.0/debug_token"));
        assert_eq!(host.param(2, "input_token").as_deref(), Some("long-token"));
        assert_eq!(host.param(2, "access_token"), Some(format!("app-id|{SECRET}")));
    }

    #[test]
    fn a_system_user_token_is_kept_and_never_expires() {
        let host = FakeHost::new(vec![ok(json!({"access_token": "system-token"})), ok(debug(&["ads_management"], 0))]);
        let creds = authorize(&host, &config(), code(), Some(NOW)).unwrap();
        assert_eq!(
            (creds.access_token.as_str(), creds.expires_at, creds.renewable_until),
            ("system-token", None, None)
        );
        assert_eq!(host.count(), 2, "no exchange");
    }

    #[test]
    fn a_failed_exchange_keeps_the_short_token_and_failed_debug_leaves_scopes_unknown() {
        let host = FakeHost::new(vec![
            ok(json!({"access_token": "short-token", "expires_in": 7200})),
            fail(500, 2, None, "Service temporarily unavailable"),
            fail(500, 1, None, "An unknown error occurred"),
        ]);
        let creds = authorize(&host, &config(), code(), Some(NOW)).unwrap();
        assert_eq!((creds.access_token.as_str(), creds.expires_at), ("short-token", Some(NOW + 7200)));
        assert!(creds.scopes.is_empty());
        assert_eq!(host.logs.borrow().iter().filter(|(l, _)| *l == Level::Warn).count(), 4);
        assert_no_secrets_logged(&host);
    }

    #[test]
    fn a_refused_code_is_unauthorized_and_secret_free() {
        let host = FakeHost::new(vec![fail(400, 100, Some(36009), "This authorization code has been used.")]);
        let err = authorize(&host, &config(), code(), Some(NOW)).unwrap_err();
        assert!(matches!(&err, DestinationError::Unauthorized(m) if m.contains("code 100/36009")), "{err:?}");
        assert_no_secrets(&message_of(&err));
        let mut unconfigured = config();
        unconfigured.client_secret = None;
        let host = FakeHost::new(vec![]);
        assert!(
            matches!(authorize(&host, &unconfigured, code(), Some(NOW)), Err(DestinationError::InvalidRequest(m)) if m.contains("client-secret"))
        );
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn refresh_re_exchanges_a_valid_token() {
        let host = FakeHost::new(vec![
            ok(json!({"access_token": "renewed-token", "expires_in": 5_184_000})),
            ok(debug(&["ads_management", "ads_read", "business_management"], 0)),
        ]);
        let mut current = creds();
        current.refresh_token = Some("kept".into());
        current.expires_at = Some(NOW + 100);
        let renewed = authorize(&host, &config(), Grant::Refresh(current), Some(NOW)).unwrap();
        assert_eq!(renewed.access_token, "renewed-token");
        assert_eq!((renewed.expires_at, renewed.renewable_until), (Some(NOW + 5_184_000), Some(NOW + 5_184_000)));
        assert_eq!(renewed.refresh_token.as_deref(), Some("kept"));
        assert_eq!(host.param(0, "fb_exchange_token").as_deref(), Some(TOKEN));
        assert_no_secrets_logged(&host);
    }

    #[test]
    fn refresh_of_an_expired_token_asks_for_a_new_login() {
        let host = FakeHost::new(vec![]);
        let mut expired = creds();
        expired.expires_at = Some(NOW - 1);
        let err = authorize(&host, &config(), Grant::Refresh(expired), Some(NOW)).unwrap_err();
        assert!(matches!(&err, DestinationError::Unauthorized(m) if m.contains("must log in again")), "{err:?}");
        assert_eq!(host.count(), 0);
        let host = FakeHost::new(vec![fail(400, 190, Some(463), "Session has expired")]);
        let mut current = creds();
        current.expires_at = Some(NOW + 10);
        assert!(matches!(
            authorize(&host, &config(), Grant::Refresh(current), Some(NOW)),
            Err(DestinationError::Unauthorized(_))
        ));
    }

    #[test]
    fn refresh_of_a_token_that_never_expires_checks_it() {
        let mut system = creds();
        system.expires_at = None;
        system.renewable_until = None;
        let host = FakeHost::new(vec![ok(debug(&["ads_management"], 0))]);
        let kept = authorize(&host, &config(), Grant::Refresh(system.clone()), Some(NOW)).unwrap();
        assert_eq!((kept.access_token.as_str(), kept.expires_at), (TOKEN, None));
        assert_eq!(kept.scopes, vec!["ads_management".to_string()]);
        let host = FakeHost::new(vec![ok(json!({"data": {"is_valid": false, "scopes": []}}))]);
        assert!(matches!(
            authorize(&host, &config(), Grant::Refresh(system), Some(NOW)),
            Err(DestinationError::Unauthorized(_))
        ));
    }
}
