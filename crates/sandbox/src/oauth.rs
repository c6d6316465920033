//! OAuth 2.0 as Pinterest runs it: the authorize page (`GET /oauth/`), the token endpoint
//! (`POST /v5/oauth/token`), revocation (`POST /v5/oauth/token/revoke`) and the bearer check
//! every other `/v5` call goes through.
//!
//! Token handling is where destinations break in production (a refresh that drops the refresh
//! token, a token revoked by the advertiser, an expiry nobody planned for), so each of those is
//! a real state here: codes are single-use and expire, tokens can be revoked or expired on
//! demand, and whether a refresh rotates the refresh token is a setting. Failures follow what
//! Pinterest answers: 401 code 2 for bad client or bearer credentials, 401 code 1104 for an
//! expired access token, 401 code 3 for a missing scope, and 401 code 283 ("The authorization
//! grant is invalid") for a bad code or refresh token.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::distr::{Alphanumeric, SampleString};
use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, LogExtras, finish};
use crate::paging::parse_query;
use crate::spec::{self, Operation};
use crate::state::{Shared, unix_now};

/// Client id of the app every sandbox knows.
pub const DEFAULT_CLIENT_ID: &str = "sandbox-app";
/// Client secret of the default app.
pub const DEFAULT_CLIENT_SECRET: &str = "sandbox-secret";

/// An access token and the refresh token that renews it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenPair {
    /// Bearer token for `/v5` calls (`pina_…`).
    pub access_token: String,
    /// Token for `grant_type=refresh_token` (`pinr_…`).
    pub refresh_token: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Access,
    Refresh,
}

#[derive(Debug, Clone)]
pub(crate) struct TokenRecord {
    pub kind: TokenKind,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: Instant,
    pub expires_at_unix: u64,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
struct PendingCode {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    expires_at: Instant,
}

/// Apps, outstanding authorization codes and issued tokens.
#[derive(Debug)]
pub(crate) struct OAuthStore {
    apps: HashMap<String, String>,
    codes: HashMap<String, PendingCode>,
    pub tokens: HashMap<String, TokenRecord>,
}

fn random(prefix: &str, len: usize) -> String {
    format!("{prefix}{}", Alphanumeric.sample_string(&mut rand::rng(), len))
}

fn invalid_grant() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, 283, "The authorization grant is invalid")
}

/// Splits a scope parameter (Pinterest separates with commas; spaces are accepted too).
fn parse_scopes(raw: &str) -> Vec<String> {
    raw.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl OAuthStore {
    pub fn new() -> Self {
        let mut apps = HashMap::new();
        apps.insert(DEFAULT_CLIENT_ID.to_owned(), DEFAULT_CLIENT_SECRET.to_owned());
        Self { apps, codes: HashMap::new(), tokens: HashMap::new() }
    }

    pub fn register_app(&mut self, client_id: &str, secret: &str) {
        self.apps.insert(client_id.to_owned(), secret.to_owned());
    }

    pub fn has_app(&self, client_id: &str) -> bool {
        self.apps.contains_key(client_id)
    }

    pub fn issue_code(&mut self, client_id: &str, redirect_uri: &str, scopes: Vec<String>, ttl: Duration) -> String {
        let code = random("", 40);
        self.codes.insert(
            code.clone(),
            PendingCode {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                scopes,
                expires_at: Instant::now() + ttl,
            },
        );
        code
    }

    /// Issues one token of `kind` living `ttl`.
    pub fn issue(&mut self, kind: TokenKind, client_id: &str, scopes: &[String], ttl: Duration) -> String {
        let token = match kind {
            TokenKind::Access => random("pina_", 48),
            TokenKind::Refresh => random("pinr_", 48),
        };
        self.tokens.insert(
            token.clone(),
            TokenRecord {
                kind,
                client_id: client_id.to_owned(),
                scopes: scopes.to_vec(),
                expires_at: Instant::now() + ttl,
                expires_at_unix: unix_now() + ttl.as_secs(),
                revoked: false,
            },
        );
        token
    }

    /// Checks a bearer token for a call that needs `scope`.
    pub fn check_bearer(&self, token: Option<&str>, scope: &str) -> Result<(), ApiError> {
        let record = token
            .and_then(|t| self.tokens.get(t))
            .filter(|r| r.kind == TokenKind::Access && !r.revoked)
            .ok_or_else(ApiError::authentication_failed)?;
        if Instant::now() >= record.expires_at {
            return Err(ApiError::token_expired());
        }
        if !record.scopes.iter().any(|s| s == scope) {
            return Err(ApiError::insufficient_scope());
        }
        Ok(())
    }

    /// Marks a token (access or refresh) revoked; false when it was unknown.
    pub fn revoke(&mut self, token: &str) -> bool {
        match self.tokens.get_mut(token) {
            Some(record) => {
                record.revoked = true;
                true
            }
            None => false,
        }
    }

    pub fn revoke_all(&mut self) {
        self.tokens.values_mut().for_each(|r| r.revoked = true);
    }

    /// Makes a token expire now; false when it was unknown.
    pub fn expire(&mut self, token: &str) -> bool {
        match self.tokens.get_mut(token) {
            Some(record) => {
                record.expires_at = Instant::now();
                record.expires_at_unix = unix_now();
                true
            }
            None => false,
        }
    }

    /// Consumes a code issued to `client_id` for `redirect_uri`.
    fn take_code(&mut self, client_id: &str, code: &str, redirect_uri: &str) -> Result<PendingCode, ApiError> {
        let pending = self.codes.get(code).ok_or_else(invalid_grant)?;
        if pending.client_id != client_id || pending.redirect_uri != redirect_uri {
            return Err(invalid_grant());
        }
        let pending = self.codes.remove(code).ok_or_else(invalid_grant)?;
        if Instant::now() >= pending.expires_at {
            return Err(invalid_grant());
        }
        Ok(pending)
    }
}

/// The spec's `OauthAccessTokenResponse` (with the refresh-token fields when present).
#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    scope: String,
    response_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token_expires_in: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token_expires_at: Option<u64>,
}

/// Reads `Authorization: Basic base64(client_id:secret)` and checks it against the apps.
fn client_from_basic(shared: &Shared, headers: &HeaderMap) -> Result<String, ApiError> {
    let encoded = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(ApiError::authentication_failed)?;
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(ApiError::authentication_failed)?;
    let (id, secret) = decoded.split_once(':').ok_or_else(ApiError::authentication_failed)?;
    match shared.lock().oauth.apps.get(id) {
        Some(known) if known == secret => Ok(id.to_owned()),
        _ => Err(ApiError::authentication_failed()),
    }
}

fn form_field<'a>(form: &'a Value, name: &str) -> Option<&'a str> {
    form.get(name).and_then(Value::as_str)
}

/// Issues an access token (and a refresh token when `refresh` says so) as a token response.
fn token_response(
    shared: &Shared,
    client_id: &str,
    scopes: &[String],
    response_type: &'static str,
    refresh: Option<String>,
) -> TokenResponse {
    let config = &shared.config;
    let mut world = shared.lock();
    let oauth = &mut world.oauth;
    let access_token = oauth.issue(TokenKind::Access, client_id, scopes, config.access_token_ttl);
    let refresh_fields = refresh.map(|token| {
        let expires_at = oauth.tokens.get(&token).map_or(0, |r| r.expires_at_unix);
        (token, expires_at)
    });
    TokenResponse {
        access_token,
        token_type: "bearer",
        expires_in: config.access_token_ttl.as_secs(),
        scope: scopes.join(","),
        response_type,
        refresh_token_expires_in: refresh_fields.as_ref().map(|(_, at)| at.saturating_sub(unix_now())),
        refresh_token_expires_at: refresh_fields.as_ref().map(|(_, at)| *at),
        refresh_token: refresh_fields.map(|(token, _)| token),
    }
}

fn exchange_code(shared: &Shared, client: &str, form: &Value) -> Result<TokenResponse, ApiError> {
    let code = form_field(form, "code").unwrap_or("");
    let redirect_uri = form_field(form, "redirect_uri").unwrap_or("");
    let pending = shared.lock().oauth.take_code(client, code, redirect_uri)?;
    let ttl = shared.config.refresh_token_ttl;
    let refresh = shared.lock().oauth.issue(TokenKind::Refresh, client, &pending.scopes, ttl);
    Ok(token_response(shared, client, &pending.scopes, "authorization_code", Some(refresh)))
}

fn refresh(shared: &Shared, client: &str, form: &Value) -> Result<TokenResponse, ApiError> {
    let token = form_field(form, "refresh_token").unwrap_or("");
    let config = &shared.config;
    let (scopes, rotated) = {
        let mut world = shared.lock();
        let record = world
            .oauth
            .tokens
            .get_mut(token)
            .filter(|r| r.kind == TokenKind::Refresh && !r.revoked && r.client_id == client)
            .filter(|r| Instant::now() < r.expires_at)
            .ok_or_else(invalid_grant)?;
        let mut scopes = record.scopes.clone();
        if let Some(asked) = form_field(form, "scope") {
            let asked = parse_scopes(asked);
            if asked.iter().any(|s| !scopes.contains(s)) {
                return Err(invalid_grant());
            }
            scopes = asked;
        }
        let rotated = if config.rotate_refresh_tokens {
            record.revoked = true;
            let scopes = record.scopes.clone();
            Some(world.oauth.issue(TokenKind::Refresh, client, &scopes, config.refresh_token_ttl))
        } else {
            // Continuous refresh tokens: each use extends the 60-day window.
            record.expires_at = Instant::now() + config.refresh_token_ttl;
            record.expires_at_unix = unix_now() + config.refresh_token_ttl.as_secs();
            None
        };
        (scopes, rotated)
    };
    Ok(token_response(shared, client, &scopes, "refresh_token", rotated))
}

/// `POST /v5/oauth/token`.
pub(crate) async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let checked = spec::check_request(Operation::OauthToken, &headers, &body);
    let extras = LogExtras { violations: checked.violations.clone(), ..LogExtras::default() };
    let result = (|| {
        let client = client_from_basic(&shared, &headers)?;
        if !checked.violations.is_empty() {
            return Err(spec::violations_error(&checked.violations));
        }
        let form = checked.value.unwrap_or_default();
        match form_field(&form, "grant_type") {
            Some("authorization_code") => exchange_code(&shared, &client, &form),
            Some("refresh_token") => refresh(&shared, &client, &form),
            _ => Err(ApiError::invalid("The sandbox supports grant_type authorization_code and refresh_token.")),
        }
    })();
    finish(result, extras)
}

/// `POST /v5/oauth/token/revoke`: revokes an access or refresh token of the calling app.
pub(crate) async fn revoke(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let checked = spec::check_request(Operation::OauthRevoke, &headers, &body);
    let extras = LogExtras { violations: checked.violations.clone(), ..LogExtras::default() };
    let result = (|| {
        let client = client_from_basic(&shared, &headers)?;
        if !checked.violations.is_empty() {
            return Err(spec::violations_error(&checked.violations));
        }
        let form = checked.value.unwrap_or_default();
        let token = form_field(&form, "token").unwrap_or("");
        let mut world = shared.lock();
        match world.oauth.tokens.get(token) {
            Some(record) if record.client_id != client => Err(ApiError::not_permitted()),
            // Like RFC 7009: unknown tokens are "revoked" too.
            _ => {
                world.oauth.revoke(token);
                Ok(())
            }
        }
    })();
    let mut response = match result {
        Ok(()) => StatusCode::OK.into_response(),
        Err(error) => error.into_response(),
    };
    response.extensions_mut().insert(extras);
    response
}

/// `GET /oauth/`: the consent page stand-in. It consents at once and redirects back.
pub(crate) async fn authorize(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let result = (|| {
        let query = parse_query(query.as_deref())?;
        let field = |name: &str| query.get(name).map(String::as_str).unwrap_or("");
        if !shared.lock().oauth.has_app(field("client_id")) {
            return Err(ApiError::invalid("Unknown client_id."));
        }
        if field("response_type") != "code" {
            return Err(ApiError::invalid("response_type must be `code`."));
        }
        let redirect_uri = field("redirect_uri");
        if redirect_uri.is_empty() {
            return Err(ApiError::invalid("redirect_uri is required."));
        }
        let scopes = match query.get("scope") {
            Some(raw) => parse_scopes(raw),
            None => shared.config.default_scopes.clone(),
        };
        if let Some(known) = spec::known_scopes() {
            let unknown: HashSet<&String> = scopes.iter().filter(|s| !known.contains(*s)).collect();
            if !unknown.is_empty() {
                return Err(ApiError::invalid(format!("Unknown scopes: {unknown:?}")));
            }
        }
        let code = shared.lock().oauth.issue_code(
            field("client_id"),
            redirect_uri,
            scopes,
            shared.config.authorization_code_ttl,
        );
        let mut params = vec![("code", code.as_str())];
        if let Some(state) = query.get("state") {
            params.push(("state", state));
        }
        let encoded = serde_urlencoded::to_string(&params)
            .map_err(|e| ApiError::invalid(format!("cannot encode redirect: {e}")))?;
        let separator = if redirect_uri.contains('?') { '&' } else { '?' };
        Ok(format!("{redirect_uri}{separator}{encoded}"))
    })();
    match result {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(error) => error.into_response(),
    }
}
