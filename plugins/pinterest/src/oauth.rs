//! `authorize`: exchanging an authorization code or a refresh token at `POST /oauth/token`.
//!
//! Pinterest wants a form-encoded body and HTTP Basic auth with the app id and secret. The
//! answer's `expires_in` is relative, while the host stores an absolute `expires-at`, so the
//! plugin adds it to the WASI wall clock. A refresh that returns no new refresh token keeps the
//! old one (the WIT requires it; Pinterest's continuous refresh tokens may be re-issued or not).
//!
//! `renewable-until` is the refresh token's expiry as Pinterest reports it:
//! `refresh_token_expires_at` (Unix seconds) when present, else now + `refresh_token_expires_in`,
//! else none. The OpenAPI file (v5.23) requires both fields in a refresh answer and has them
//! optional in a code answer; an answer without either says nothing about the (possibly kept)
//! refresh token, and since Pinterest's continuous refresh extends it on use, the old value is
//! not carried over either: none means "unknown".

use std::time::{SystemTime, UNIX_EPOCH};

use audience_plugin_sdk::Host;
use audience_plugin_sdk::http::RequestBuilder;
use audience_plugin_sdk::types::{Credentials, DestinationError, Grant, PluginConfig};

use crate::client::Client;
use crate::config::{app_credentials, continuous_refresh};
use crate::errors::Call;
use crate::wire::TokenResponse;

/// The form fields for `grant`, in order. Renewing credentials without a refresh token is
/// `unauthorized`: Pinterest renews only with one, so the user must sign in again.
pub fn token_form(grant: &Grant, continuous_refresh: bool) -> Result<Vec<(&'static str, String)>, DestinationError> {
    match grant {
        Grant::AuthorizationCode(code) => Ok(vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.code.clone()),
            ("redirect_uri", code.redirect_uri.clone()),
        ]),
        Grant::Refresh(creds) => {
            let token = creds.refresh_token.as_deref().map(str::trim).filter(|t| !t.is_empty()).ok_or_else(|| {
                DestinationError::Unauthorized(
                    "the connection has no Pinterest refresh token to renew with: sign in to Pinterest again".into(),
                )
            })?;
            let mut form = vec![("grant_type", "refresh_token".into()), ("refresh_token", token.to_string())];
            if continuous_refresh {
                form.push(("continuous_refresh", "true".into()));
            }
            Ok(form)
        }
    }
}

/// The granted scopes from the token response's `scope` (comma- or space-separated).
pub fn parse_scopes(scope: Option<&str>) -> Vec<String> {
    scope
        .unwrap_or_default()
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Credentials from a token response received at `now` (Unix seconds, when the clock is
/// readable); `previous_refresh` is kept when the response carries no refresh token.
pub fn credentials_from(response: TokenResponse, now: Option<u64>, previous_refresh: Option<String>) -> Credentials {
    let refresh_token = response.refresh_token.filter(|t| !t.is_empty()).or(previous_refresh);
    let renewable_until = response
        .refresh_token_expires_at
        .or_else(|| now.zip(response.refresh_token_expires_in).map(|(now, secs)| now.saturating_add(secs)));
    Credentials {
        expires_at: now.zip(response.expires_in).map(|(now, secs)| now.saturating_add(secs)),
        renewable_until,
        scopes: parse_scopes(response.scope.as_deref()),
        access_token: response.access_token,
        refresh_token,
    }
}

/// Seconds since the Unix epoch from the WASI wall clock; `None` if it reads before 1970.
pub fn now_unix() -> Option<u64> {
    SystemTime::now().duration_since(UNIX_EPOCH).ok().map(|d| d.as_secs())
}

/// Exchange `grant` for credentials.
pub fn authorize(host: &dyn Host, config: &PluginConfig, grant: Grant) -> Result<Credentials, DestinationError> {
    let (app_id, app_secret) = app_credentials(config)?;
    let form = token_form(&grant, continuous_refresh(config))?;
    let client = Client::new(host, config);
    let request = RequestBuilder::post(client.url("/oauth/token")).basic_auth(app_id, app_secret).form(&form);
    let response: TokenResponse = client.json(Call::TOKEN, request)?;
    if response.access_token.is_empty() {
        return Err(DestinationError::Transient("Pinterest returned an empty access token".into()));
    }
    let previous_refresh = match grant {
        Grant::Refresh(creds) => creds.refresh_token,
        Grant::AuthorizationCode(_) => None,
    };
    Ok(credentials_from(response, now_unix(), previous_refresh))
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::types::AuthCode;
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, assert_no_secrets_logged, config, creds, fail, ok};

    fn code() -> Grant {
        Grant::AuthorizationCode(AuthCode { code: "abc".into(), redirect_uri: "https://host.test/cb".into() })
    }

    fn refresh(token: Option<&str>) -> Grant {
        let mut c = creds();
        c.refresh_token = token.map(str::to_string);
        c.renewable_until = Some(1_600_000_000);
        Grant::Refresh(c)
    }

    fn token_response(refresh_token: Option<&str>, expires_in: Option<u64>, expires_at: Option<u64>) -> TokenResponse {
        TokenResponse {
            access_token: "pina_new".into(),
            expires_in: Some(2_592_000),
            scope: Some("ads:read,ads:write".into()),
            refresh_token: refresh_token.map(str::to_string),
            refresh_token_expires_in: expires_in,
            refresh_token_expires_at: expires_at,
        }
    }

    #[test]
    fn forms() {
        assert_eq!(
            token_form(&code(), true),
            Ok(vec![
                ("grant_type", "authorization_code".to_string()),
                ("code", "abc".to_string()),
                ("redirect_uri", "https://host.test/cb".to_string()),
            ])
        );
        let renew = refresh(Some("pinr_x"));
        assert_eq!(
            token_form(&renew, false),
            Ok(vec![("grant_type", "refresh_token".to_string()), ("refresh_token", "pinr_x".to_string())])
        );
        assert_eq!(
            token_form(&renew, true).ok().and_then(|f| f.last().cloned()),
            Some(("continuous_refresh", "true".to_string()))
        );
        assert!(matches!(token_form(&refresh(None), false), Err(DestinationError::Unauthorized(_))));
        assert!(matches!(token_form(&refresh(Some(" ")), false), Err(DestinationError::Unauthorized(_))));
    }

    #[test]
    fn credentials_from_responses() {
        let creds = credentials_from(token_response(None, None, None), Some(1_700_000_000), Some("pinr_old".into()));
        assert_eq!(creds.access_token, "pina_new");
        assert_eq!(creds.refresh_token.as_deref(), Some("pinr_old"));
        assert_eq!(creds.expires_at, Some(1_702_592_000));
        assert_eq!(creds.renewable_until, None, "nothing said about the refresh token: unknown");
        assert_eq!(creds.scopes, vec!["ads:read".to_string(), "ads:write".to_string()]);
        assert_eq!(parse_scopes(Some("ads:read user_accounts:read")).len(), 2);
        assert!(parse_scopes(None).is_empty());
    }

    #[test]
    fn renewable_until_is_the_refresh_tokens_expiry() {
        let now = Some(1_700_000_000);
        let at = credentials_from(token_response(Some("pinr_n"), Some(5_184_000), Some(1_800_000_000)), now, None);
        assert_eq!(at.renewable_until, Some(1_800_000_000), "the absolute time wins");
        let within = credentials_from(token_response(Some("pinr_n"), Some(5_184_000), None), now, None);
        assert_eq!(within.renewable_until, Some(1_705_184_000));
        let no_clock = credentials_from(token_response(Some("pinr_n"), Some(5_184_000), None), None, None);
        assert_eq!((no_clock.renewable_until, no_clock.expires_at), (None, None));
    }

    #[test]
    fn code_exchange_request_and_result() {
        let host = FakeHost::new(vec![ok(json!({
            "access_token": "pina_new", "token_type": "bearer", "expires_in": 3600,
            "scope": "ads:read,ads:write", "refresh_token": "pinr_new",
            "refresh_token_expires_in": 5_184_000, "refresh_token_expires_at": 1_800_000_000u64
        }))]);
        let creds = match authorize(&host, &config(), code()) {
            Ok(c) => c,
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(creds.refresh_token.as_deref(), Some("pinr_new"));
        assert_eq!(creds.renewable_until, Some(1_800_000_000));
        assert!(creds.expires_at.is_some_and(|t| t > 3600));
        assert_eq!(host.call(0), ("POST".into(), "http://sandbox.test/v5/oauth/token".into()));
        // base64("app-id:app-secret-value")
        assert_eq!(host.header(0, "authorization").as_deref(), Some("Basic YXBwLWlkOmFwcC1zZWNyZXQtdmFsdWU="));
        assert_eq!(host.header(0, "content-type").as_deref(), Some("application/x-www-form-urlencoded"));
        assert_eq!(
            String::from_utf8_lossy(&host.sent.borrow()[0].body),
            "grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Fhost.test%2Fcb"
        );
    }

    #[test]
    fn refresh_keeps_the_old_refresh_token() {
        let host = FakeHost::new(vec![ok(json!({
            "access_token": "pina_new", "token_type": "bearer", "expires_in": 60, "scope": "ads:read"
        }))]);
        let mut cfg = config();
        cfg.settings.push(("continuous_refresh".into(), "true".into()));
        let creds = authorize(&host, &cfg, refresh(Some("pinr_old")));
        let Ok(creds) = creds else { panic!("{creds:?}") };
        assert_eq!(creds.refresh_token.as_deref(), Some("pinr_old"));
        assert_eq!(creds.access_token, "pina_new");
        assert_eq!(creds.renewable_until, None);
        assert_eq!(
            String::from_utf8_lossy(&host.sent.borrow()[0].body),
            "grant_type=refresh_token&refresh_token=pinr_old&continuous_refresh=true"
        );
    }

    #[test]
    fn refresh_takes_a_new_refresh_token_and_its_expiry() {
        let host = FakeHost::new(vec![ok(json!({
            "access_token": "pina_new", "token_type": "bearer", "expires_in": 60, "scope": "ads:read,ads:write",
            "response_type": "refresh_token", "refresh_token": "pinr_rotated",
            "refresh_token_expires_in": 5_184_000, "refresh_token_expires_at": 1_900_000_000u64
        }))]);
        let creds = authorize(&host, &config(), refresh(Some("pinr_old")));
        let Ok(creds) = creds else { panic!("{creds:?}") };
        assert_eq!(creds.refresh_token.as_deref(), Some("pinr_rotated"));
        assert_eq!(creds.renewable_until, Some(1_900_000_000));
    }

    #[test]
    fn renewing_without_a_refresh_token_sends_nothing() {
        let host = FakeHost::new(vec![]);
        assert!(matches!(authorize(&host, &config(), refresh(None)), Err(DestinationError::Unauthorized(_))));
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn missing_app_settings_send_nothing() {
        let host = FakeHost::new(vec![]);
        let mut cfg = config();
        cfg.client_secret = None;
        match authorize(&host, &cfg, code()) {
            Err(DestinationError::InvalidRequest(m)) => assert!(m.contains("client-secret"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn refused_grant_is_reported_without_secrets() {
        let host = FakeHost::new(vec![fail(401, 2, "Authentication failed.")]);
        let result = authorize(&host, &config(), refresh(Some("pinr_secret_refresh")));
        match result {
            Err(DestinationError::Unauthorized(m)) => assert!(!m.contains("pinr_secret_refresh"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(host.logs.borrow().len(), 1);
        assert!(host.logs.borrow()[0].1.contains("x-pinterest-rid rid-1"));
        assert_no_secrets_logged(&host);
    }
}
