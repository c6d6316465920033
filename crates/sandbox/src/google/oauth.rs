//! Google OAuth 2.0: the authorize page (`/accounts/o/oauth2/v2/auth`), the token endpoint
//! (`/oauth2/token`: authorization-code and refresh-token grants), revocation
//! (`/oauth2/revoke`) and the access-token check every API call goes through.
//!
//! One OAuth client is one Google Cloud project: quotas and the enabled services belong to
//! it, so every token remembers the client that obtained it. Codes are single-use and expire
//! after ten minutes; access tokens live 3599 s; refresh tokens are issued only with
//! `access_type=offline` and do not rotate (the refresh answer has no `refresh_token`: keep the
//! old one). A refresh token dies when revoked, when unused for six months, after
//! [`GoogleConfig::refresh_token_ttl`](crate::google::GoogleConfig::refresh_token_ttl) (7 days
//! for an app in "Testing"), and when the user holds more than 100 for one client (the oldest
//! goes); a dead one gets HTTP 400 `invalid_grant`. Revoking either token of a grant revokes the
//! grant: the refresh token and every access token minted from it. Like the other sandboxes'
//! authorize pages, the page consents at once and redirects back with `code`, `state` and
//! `scope`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Value, json};

use crate::google::config::GoogleConfig;
use crate::google::errors::{OAuthError, TokenProblem};
use crate::google::state::{Clock, GoogleState};

/// Client id of the OAuth client every Google sandbox knows.
pub const DEFAULT_CLIENT_ID: &str = "sandbox-client.apps.googleusercontent.com";
/// Client secret of the default client.
pub const DEFAULT_CLIENT_SECRET: &str = "sandbox-secret";
/// Cloud project number of the default client.
pub const DEFAULT_PROJECT: u64 = 424_242_424_242;
/// The Google Ads API scope.
pub const ADWORDS_SCOPE: &str = "https://www.googleapis.com/auth/adwords";
/// The Data Manager API scope.
pub const DATAMANAGER_SCOPE: &str = "https://www.googleapis.com/auth/datamanager";

/// Scopes the authorize page accepts.
const KNOWN_SCOPES: &[&str] = &[
    ADWORDS_SCOPE,
    DATAMANAGER_SCOPE,
    "https://www.googleapis.com/auth/datamanager.partnerlink",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
    "openid",
    "email",
    "profile",
];

#[derive(Debug, Clone)]
struct Client {
    secret: String,
    project: u64,
}

#[derive(Debug, Clone)]
struct PendingCode {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    offline: bool,
    expires_at: Instant,
    used: bool,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub client_id: String,
    pub project: u64,
    pub scopes: Vec<String>,
    pub expires_at: Instant,
    pub revoked: bool,
    /// The refresh token of its grant, if any.
    refresh: Option<String>,
}

impl AccessToken {
    pub fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Debug, Clone)]
struct RefreshToken {
    client_id: String,
    scopes: Vec<String>,
    issued: Instant,
    last_used: Instant,
    revoked: bool,
    seq: u64,
}

/// A token pair as the token endpoint answers it (and the handle hands out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoogleTokens {
    /// The bearer token for API calls.
    pub access_token: String,
    /// The refresh token, when one was issued (`access_type=offline`).
    pub refresh_token: Option<String>,
    /// Seconds the access token lives (3599 by default).
    pub expires_in: u64,
    /// The granted scopes, space-separated.
    pub scope: String,
}

impl GoogleTokens {
    fn answer(&self) -> Value {
        let mut answer = json!({
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            "scope": self.scope,
            "token_type": "Bearer",
        });
        if let Some(refresh) = &self.refresh_token {
            answer["refresh_token"] = json!(refresh);
        }
        answer
    }
}

/// Clients, outstanding codes and issued tokens.
#[derive(Debug)]
pub(crate) struct TokenStore {
    clients: HashMap<String, Client>,
    codes: HashMap<String, PendingCode>,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshToken>,
    next_seq: u64,
    next_project: u64,
}

fn random(prefix: &str, len: usize) -> String {
    format!("{prefix}{}", Alphanumeric.sample_string(&mut rand::rng(), len))
}

/// Splits a `scope` value (space separated; commas tolerated).
pub(crate) fn parse_scopes(raw: &str) -> Vec<String> {
    let mut scopes: Vec<String> = raw.split([' ', ',']).filter(|s| !s.is_empty()).map(str::to_owned).collect();
    scopes.dedup();
    scopes
}

impl TokenStore {
    pub fn new() -> Self {
        let mut clients = HashMap::new();
        clients.insert(
            DEFAULT_CLIENT_ID.to_owned(),
            Client { secret: DEFAULT_CLIENT_SECRET.to_owned(), project: DEFAULT_PROJECT },
        );
        Self {
            clients,
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            next_seq: 0,
            next_project: DEFAULT_PROJECT + 1,
        }
    }

    /// Registers (or re-keys) a client; returns its Cloud project number.
    pub fn register_client(&mut self, client_id: &str, secret: &str) -> u64 {
        if let Some(client) = self.clients.get_mut(client_id) {
            client.secret = secret.to_owned();
            return client.project;
        }
        let project = self.next_project;
        self.next_project += 1;
        self.clients.insert(client_id.to_owned(), Client { secret: secret.to_owned(), project });
        project
    }

    /// The Cloud project of a client.
    pub fn project_of(&self, client_id: &str) -> Option<u64> {
        self.clients.get(client_id).map(|c| c.project)
    }

    fn check_client(&self, client_id: &str, secret: &str) -> Result<(), OAuthError> {
        match self.clients.get(client_id) {
            Some(client) if client.secret == secret => Ok(()),
            Some(_) => Err(OAuthError::invalid_client("Unauthorized")),
            None => Err(OAuthError::invalid_client("The OAuth client was not found.")),
        }
    }

    pub fn issue_code(
        &mut self,
        clock: &Clock,
        client_id: &str,
        redirect_uri: &str,
        scopes: Vec<String>,
        offline: bool,
        ttl: Duration,
    ) -> String {
        let code = random("4/0A", 60);
        let pending = PendingCode {
            client_id: client_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            offline,
            expires_at: clock.now() + ttl,
            used: false,
        };
        self.codes.insert(code.clone(), pending);
        code
    }

    fn mint_access(
        &mut self,
        clock: &Clock,
        config: &GoogleConfig,
        client_id: &str,
        scopes: &[String],
        refresh: Option<String>,
    ) -> String {
        let token = random("ya29.", 120);
        let project = self.project_of(client_id).unwrap_or(DEFAULT_PROJECT);
        let record = AccessToken {
            client_id: client_id.to_owned(),
            project,
            scopes: scopes.to_vec(),
            expires_at: clock.now() + config.access_token_ttl,
            revoked: false,
            refresh,
        };
        self.access.insert(token.clone(), record);
        token
    }

    fn refresh_alive(&self, record: &RefreshToken, now: Instant, config: &GoogleConfig) -> bool {
        !record.revoked
            && config.refresh_token_ttl.is_none_or(|ttl| now < record.issued + ttl)
            && now < record.last_used + config.refresh_token_idle_limit
    }

    /// Issues a grant: an access token and, when `offline`, a refresh token.
    pub fn issue(
        &mut self,
        clock: &Clock,
        config: &GoogleConfig,
        client_id: &str,
        scopes: &[String],
        offline: bool,
    ) -> GoogleTokens {
        let now = clock.now();
        let refresh = offline.then(|| {
            let live: Vec<(u64, String)> = self
                .refresh
                .iter()
                .filter(|(_, r)| r.client_id == client_id && self.refresh_alive(r, now, config))
                .map(|(t, r)| (r.seq, t.clone()))
                .collect();
            if live.len() >= config.max_refresh_tokens_per_client.max(1)
                && let Some((_, oldest)) = live.iter().min()
            {
                let oldest = oldest.clone();
                self.revoke_grant(&oldest);
            }
            let token = random("1//0", 100);
            let seq = self.next_seq;
            self.next_seq += 1;
            let record = RefreshToken {
                client_id: client_id.to_owned(),
                scopes: scopes.to_vec(),
                issued: now,
                last_used: now,
                revoked: false,
                seq,
            };
            self.refresh.insert(token.clone(), record);
            token
        });
        let access_token = self.mint_access(clock, config, client_id, scopes, refresh.clone());
        GoogleTokens {
            access_token,
            refresh_token: refresh,
            expires_in: config.access_token_ttl.as_secs(),
            scope: scopes.join(" "),
        }
    }

    /// Checks the bearer token of an API call.
    pub fn check(&self, clock: &Clock, token: Option<&str>) -> Result<AccessToken, TokenProblem> {
        let token = token.filter(|t| !t.is_empty()).ok_or(TokenProblem::Missing)?;
        let record = self.access.get(token).ok_or(TokenProblem::Unknown)?;
        if record.revoked {
            return Err(TokenProblem::Revoked);
        }
        if clock.now() >= record.expires_at {
            return Err(TokenProblem::Expired);
        }
        Ok(record.clone())
    }

    /// Revokes the grant a refresh token belongs to.
    fn revoke_grant(&mut self, refresh: &str) {
        if let Some(record) = self.refresh.get_mut(refresh) {
            record.revoked = true;
        }
        for access in self.access.values_mut().filter(|a| a.refresh.as_deref() == Some(refresh)) {
            access.revoked = true;
        }
    }

    /// Revokes a token (access or refresh) and the rest of its grant; false when unknown.
    pub fn revoke(&mut self, token: &str) -> bool {
        if self.refresh.contains_key(token) {
            self.revoke_grant(token);
            return true;
        }
        let Some(access) = self.access.get_mut(token) else {
            return false;
        };
        access.revoked = true;
        if let Some(refresh) = access.refresh.clone() {
            self.revoke_grant(&refresh);
        }
        true
    }

    /// Makes an access token expire now; false when unknown.
    pub fn expire(&mut self, clock: &Clock, token: &str) -> bool {
        self.access.get_mut(token).map(|a| a.expires_at = clock.now()).is_some()
    }

    /// Makes every access token expire now (refresh tokens stay alive).
    pub fn expire_all(&mut self, clock: &Clock) {
        let now = clock.now();
        self.access.values_mut().for_each(|a| a.expires_at = a.expires_at.min(now));
    }

    /// Access tokens neither revoked nor expired.
    pub fn active(&self, clock: &Clock) -> usize {
        let now = clock.now();
        self.access.values().filter(|a| !a.revoked && now < a.expires_at).count()
    }
}

fn required<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str, OAuthError> {
    params
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| OAuthError::invalid_request(format!("Missing required parameter: {name}")))
}

/// `GET /accounts/o/oauth2/v2/auth`: consents at once and answers the redirect's `Location`,
/// or the error page's status and text.
pub(crate) fn authorize(
    config: &GoogleConfig,
    world: &mut GoogleState,
    params: &HashMap<String, String>,
) -> Result<String, (StatusCode, String)> {
    let page = |status: StatusCode, text: &str| (status, text.to_owned());
    let client_id = params.get("client_id").map(String::as_str).unwrap_or_default();
    if !world.oauth.clients.contains_key(client_id) {
        return Err(page(StatusCode::UNAUTHORIZED, "Error 401: invalid_client. The OAuth client was not found."));
    }
    let Some(redirect_uri) = params.get("redirect_uri").filter(|r| !r.is_empty()) else {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "Error 400: invalid_request. Missing required parameter: redirect_uri",
        ));
    };
    if params.get("response_type").map(String::as_str) != Some("code") {
        return Err(page(
            StatusCode::BAD_REQUEST,
            "Error 400: invalid_request. The sandbox supports response_type=code only.",
        ));
    }
    let scopes = params.get("scope").map(|s| parse_scopes(s)).unwrap_or_default();
    if scopes.is_empty() {
        return Err(page(StatusCode::BAD_REQUEST, "Error 400: invalid_request. Missing required parameter: scope"));
    }
    if let Some(unknown) = scopes.iter().find(|s| !KNOWN_SCOPES.contains(&s.as_str())) {
        return Err(page(
            StatusCode::BAD_REQUEST,
            &format!("Error 400: invalid_scope. Some requested scopes were invalid: {unknown}"),
        ));
    }
    let offline = params.get("access_type").map(String::as_str) == Some("offline");
    let code = world.oauth.issue_code(
        &world.clock,
        client_id,
        redirect_uri,
        scopes.clone(),
        offline,
        config.authorization_code_ttl,
    );
    let mut pairs = Vec::new();
    if let Some(state) = params.get("state") {
        pairs.push(("state", state.clone()));
    }
    pairs.push(("code", code));
    pairs.push(("scope", scopes.join(" ")));
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    Ok(format!("{redirect_uri}{separator}{query}"))
}

/// `POST /oauth2/token` (form-encoded; client credentials in the form or HTTP Basic).
pub(crate) fn token(
    config: &GoogleConfig,
    world: &mut GoogleState,
    params: &HashMap<String, String>,
    basic: Option<(String, String)>,
) -> Result<Value, OAuthError> {
    let (client_id, secret) = match basic {
        Some(pair) => pair,
        None => (required(params, "client_id")?.to_owned(), required(params, "client_secret")?.to_owned()),
    };
    world.oauth.check_client(&client_id, &secret)?;
    let now = world.clock.now();
    match required(params, "grant_type")? {
        "authorization_code" => {
            let code = required(params, "code")?;
            let redirect_uri = required(params, "redirect_uri")?;
            let pending = world
                .oauth
                .codes
                .get_mut(code)
                .filter(|p| p.client_id == client_id && !p.used && now < p.expires_at)
                .ok_or_else(|| OAuthError::invalid_grant("Malformed auth code."))?;
            if pending.redirect_uri != redirect_uri {
                return Err(OAuthError::new(StatusCode::BAD_REQUEST, "redirect_uri_mismatch", "Bad Request"));
            }
            pending.used = true;
            let (scopes, offline) = (pending.scopes.clone(), pending.offline);
            let tokens = world.oauth.issue(&world.clock, config, &client_id, &scopes, offline);
            Ok(tokens.answer())
        }
        "refresh_token" => {
            let refresh = required(params, "refresh_token")?.to_owned();
            let store = &world.oauth;
            let alive = store
                .refresh
                .get(&refresh)
                .filter(|r| r.client_id == client_id && store.refresh_alive(r, now, config))
                .cloned();
            let Some(record) = alive else {
                return Err(OAuthError::invalid_grant("Token has been expired or revoked."));
            };
            let scopes = match params.get("scope").map(|s| parse_scopes(s)) {
                Some(asked) if !asked.is_empty() => {
                    if asked.iter().any(|s| !record.scopes.contains(s)) {
                        return Err(OAuthError::new(
                            StatusCode::BAD_REQUEST,
                            "invalid_scope",
                            "Bad Request: a refresh can only narrow the granted scopes.",
                        ));
                    }
                    asked
                }
                _ => record.scopes.clone(),
            };
            if let Some(r) = world.oauth.refresh.get_mut(&refresh) {
                r.last_used = now;
            }
            let access_token = world.oauth.mint_access(&world.clock, config, &client_id, &scopes, Some(refresh));
            let tokens = GoogleTokens {
                access_token,
                refresh_token: None,
                expires_in: config.access_token_ttl.as_secs(),
                scope: scopes.join(" "),
            };
            Ok(tokens.answer())
        }
        other => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("Invalid grant_type: {other}"),
        )),
    }
}

/// `POST /oauth2/revoke?token=..` (or `token` in the form).
pub(crate) fn revoke(world: &mut GoogleState, params: &HashMap<String, String>) -> Result<Value, OAuthError> {
    let token = required(params, "token")?;
    if world.oauth.revoke(token) {
        Ok(json!({}))
    } else {
        Err(OAuthError::new(StatusCode::BAD_REQUEST, "invalid_token", "Token expired or revoked"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_refresh_token_dies_past_the_per_client_limit() {
        let clock = Clock::new();
        let config = GoogleConfig { max_refresh_tokens_per_client: 2, ..GoogleConfig::default() };
        let mut store = TokenStore::new();
        let scopes = vec![DATAMANAGER_SCOPE.to_owned()];
        let first = store.issue(&clock, &config, DEFAULT_CLIENT_ID, &scopes, true);
        let _second = store.issue(&clock, &config, DEFAULT_CLIENT_ID, &scopes, true);
        let _third = store.issue(&clock, &config, DEFAULT_CLIENT_ID, &scopes, true);
        let refresh = first.refresh_token.unwrap_or_default();
        let record = store.refresh.get(&refresh).cloned();
        assert!(record.is_some_and(|r| !store.refresh_alive(&r, clock.now(), &config)));
        assert_eq!(store.check(&clock, Some(&first.access_token)).err(), Some(TokenProblem::Revoked));
    }

    #[test]
    fn revoking_an_access_token_revokes_its_grant() {
        let clock = Clock::new();
        let config = GoogleConfig::default();
        let mut store = TokenStore::new();
        let tokens = store.issue(&clock, &config, DEFAULT_CLIENT_ID, &[ADWORDS_SCOPE.to_owned()], true);
        assert!(store.revoke(&tokens.access_token));
        let refresh = tokens.refresh_token.unwrap_or_default();
        assert!(store.refresh.get(&refresh).is_some_and(|r| r.revoked));
        assert!(!store.revoke("nope"));
        assert_eq!(parse_scopes("a  b,c a"), vec!["a", "b", "c", "a"]);
    }
}
