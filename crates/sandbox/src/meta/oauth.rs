//! Facebook Login and tokens: the login dialog (`/v{N}.0/dialog/oauth`), the code exchange and
//! long-lived swap (`/v{N}.0/oauth/access_token`), `debug_token`, and the token check every
//! other Graph call goes through.
//!
//! Meta has no refresh tokens. A code-flow user token lives hours; it can be swapped once, while
//! still valid, for a long-lived one (about 60 days); after that the user must log in again.
//! Business-integration system-user tokens never expire. Each of those is a real state here:
//! codes are single-use and expire, tokens expire on the sandbox clock, and they can be revoked
//! (190/460) or expired (190/463) on demand. Like the Pinterest sandbox's authorize page, the
//! dialog consents at once and redirects back with `code` and `state`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};
use serde_json::{Map, Value, json};

use crate::meta::errors::GraphError;
use crate::meta::params::Params;
use crate::meta::state::{Clock, MetaShared, MetaState};

/// App id of the app every Meta sandbox knows (same as the Pinterest sandbox's client id).
pub const DEFAULT_APP_ID: &str = "sandbox-app";
/// App secret of the default app.
pub const DEFAULT_APP_SECRET: &str = "sandbox-secret";

/// The id of the person who logs in through the dialog.
pub(crate) const USER_ID: &str = "122100000000000001";
/// The id of the business's system user.
pub(crate) const SYSTEM_USER_ID: &str = "61550000000000001";

/// Permission names the dialog accepts.
const KNOWN_PERMISSIONS: &[&str] = &[
    "ads_management",
    "ads_read",
    "business_management",
    "public_profile",
    "email",
    "read_insights",
    "pages_show_list",
    "pages_read_engagement",
    "pages_manage_ads",
    "catalog_management",
];

/// Who a token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    User,
    SystemUser,
}

/// An issued access token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub app_id: String,
    pub scopes: Vec<String>,
    pub issued_at_unix: u64,
    /// `None`: never expires.
    pub expires_at: Option<Instant>,
    /// Unix seconds; 0 when it never expires (as `debug_token` says).
    pub expires_at_unix: u64,
    pub revoked: bool,
}

impl Token {
    pub fn user_id(&self) -> &'static str {
        match self.kind {
            TokenKind::User => USER_ID,
            TokenKind::SystemUser => SYSTEM_USER_ID,
        }
    }

    fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

/// Who is calling, once the token checked out.
#[derive(Debug, Clone)]
pub(crate) enum Caller {
    /// A user or system-user token.
    Token(Token),
    /// `<app_id>|<app_secret>`.
    App,
}

impl Caller {
    pub fn has(&self, scope: &str) -> bool {
        matches!(self, Caller::Token(t) if t.scopes.iter().any(|s| s == scope))
    }
}

#[derive(Debug, Clone)]
struct PendingCode {
    app_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    system_user: bool,
    expires_at: Instant,
    used: bool,
}

/// Apps, outstanding authorization codes and issued tokens.
#[derive(Debug)]
pub(crate) struct TokenStore {
    apps: HashMap<String, String>,
    codes: HashMap<String, PendingCode>,
    pub tokens: HashMap<String, Token>,
}

fn random(prefix: &str, len: usize) -> String {
    format!("{prefix}{}", Alphanumeric.sample_string(&mut rand::rng(), len))
}

/// Splits a `scope` value (comma or space separated).
pub(crate) fn parse_scopes(raw: &str) -> Vec<String> {
    raw.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl TokenStore {
    pub fn new() -> Self {
        let mut apps = HashMap::new();
        apps.insert(DEFAULT_APP_ID.to_owned(), DEFAULT_APP_SECRET.to_owned());
        Self { apps, codes: HashMap::new(), tokens: HashMap::new() }
    }

    pub fn register_app(&mut self, app_id: &str, secret: &str) {
        self.apps.insert(app_id.to_owned(), secret.to_owned());
    }

    /// Checks an app id and secret.
    pub fn check_app(&self, app_id: &str, secret: &str) -> Result<(), GraphError> {
        match self.apps.get(app_id) {
            None => Err(GraphError::unknown_app()),
            Some(known) if known != secret => Err(GraphError::bad_client_secret()),
            Some(_) => Ok(()),
        }
    }

    fn is_app_token(&self, token: &str) -> bool {
        token.split_once('|').is_some_and(|(id, secret)| self.apps.get(id).is_some_and(|s| s == secret))
    }

    pub fn issue_code(
        &mut self,
        clock: &Clock,
        app_id: &str,
        redirect_uri: &str,
        scopes: Vec<String>,
        system_user: bool,
        ttl: Duration,
    ) -> String {
        let code = random("AQ", 160);
        let pending = PendingCode {
            app_id: app_id.to_owned(),
            redirect_uri: redirect_uri.to_owned(),
            scopes,
            system_user,
            expires_at: clock.now() + ttl,
            used: false,
        };
        self.codes.insert(code.clone(), pending);
        code
    }

    /// Issues a token living `ttl` (`None`: forever).
    pub fn issue(
        &mut self,
        clock: &Clock,
        kind: TokenKind,
        app_id: &str,
        scopes: &[String],
        ttl: Option<Duration>,
    ) -> String {
        let token = random("EAA", 160);
        let expires_at = ttl.map(|ttl| clock.now() + ttl);
        let record = Token {
            kind,
            app_id: app_id.to_owned(),
            scopes: scopes.to_vec(),
            issued_at_unix: clock.unix(),
            expires_at,
            expires_at_unix: expires_at.map_or(0, |at| clock.unix_at(at)),
            revoked: false,
        };
        self.tokens.insert(token.clone(), record);
        token
    }

    /// Checks the token of a Graph call.
    pub fn check(&self, clock: &Clock, token: Option<&str>) -> Result<Caller, GraphError> {
        let token = token.filter(|t| !t.is_empty()).ok_or_else(GraphError::token_missing)?;
        if self.is_app_token(token) {
            return Ok(Caller::App);
        }
        let record = self.tokens.get(token).ok_or_else(GraphError::token_invalid)?;
        if record.revoked {
            return Err(GraphError::token_revoked());
        }
        if record.expired(clock.now()) {
            return Err(GraphError::token_expired(record.expires_at_unix, clock.unix()));
        }
        Ok(Caller::Token(record.clone()))
    }

    /// Marks a token revoked; false when it was unknown.
    pub fn revoke(&mut self, token: &str) -> bool {
        self.tokens.get_mut(token).map(|t| t.revoked = true).is_some()
    }

    pub fn revoke_all(&mut self) {
        self.tokens.values_mut().for_each(|t| t.revoked = true);
    }

    /// Makes a token expire now; false when it was unknown.
    pub fn expire(&mut self, clock: &Clock, token: &str) -> bool {
        let Some(record) = self.tokens.get_mut(token) else {
            return false;
        };
        record.expires_at = Some(clock.now());
        record.expires_at_unix = clock.unix();
        true
    }

    /// Access tokens neither revoked nor expired.
    pub fn active(&self, clock: &Clock) -> usize {
        let now = clock.now();
        self.tokens.values().filter(|t| !t.revoked && !t.expired(now)).count()
    }
}

fn required(params: &Params, name: &str) -> Result<String, GraphError> {
    params
        .text(name)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| GraphError::invalid_param(format!("Missing {name} parameter.")))
}

/// `GET /v{N}.0/dialog/oauth`: consents at once and answers the redirect's `Location`.
pub(crate) fn dialog(shared: &MetaShared, world: &mut MetaState, params: &Params) -> Result<String, GraphError> {
    let app_id = required(params, "client_id")?;
    if !world.oauth.apps.contains_key(&app_id) {
        return Err(GraphError::unknown_app());
    }
    let redirect_uri = required(params, "redirect_uri")?;
    match params.text("response_type").as_deref() {
        None | Some("code") => {}
        Some(other) => {
            return Err(GraphError::invalid_param(format!("The sandbox supports response_type=code, not {other}")));
        }
    }
    // Facebook Login for Business: a configuration instead of scopes; with
    // override_default_response_type=true the code yields a system-user token.
    let system_user =
        params.text("config_id").is_some() && params.text("override_default_response_type").as_deref() == Some("true");
    let scopes = match params.text("scope") {
        Some(raw) if params.text("config_id").is_none() => parse_scopes(&raw),
        _ => shared.config.default_scopes.clone(),
    };
    let unknown: Vec<&String> = scopes.iter().filter(|s| !KNOWN_PERMISSIONS.contains(&s.as_str())).collect();
    if !unknown.is_empty() {
        return Err(GraphError::invalid_param(format!("Invalid Scopes: {unknown:?}")));
    }
    let ttl = shared.config.authorization_code_ttl;
    let code = world.oauth.issue_code(&world.clock, &app_id, &redirect_uri, scopes, system_user, ttl);
    let mut pairs = vec![("code", code)];
    if let Some(state) = params.text("state") {
        pairs.push(("state", state));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    // Meta appends `#_=_` to the redirect; browsers drop it, servers never see it.
    Ok(format!("{redirect_uri}{separator}{query}#_=_"))
}

fn token_answer(token: String, expires_in: Option<Duration>) -> Value {
    let mut answer = Map::new();
    answer.insert("access_token".to_owned(), json!(token));
    answer.insert("token_type".to_owned(), json!("bearer"));
    if let Some(ttl) = expires_in {
        answer.insert("expires_in".to_owned(), json!(ttl.as_secs()));
    }
    Value::Object(answer)
}

/// `GET|POST /v{N}.0/oauth/access_token`: code exchange, `fb_exchange_token`, client
/// credentials.
pub(crate) fn access_token(shared: &MetaShared, world: &mut MetaState, params: &Params) -> Result<Value, GraphError> {
    let config = &shared.config;
    let app_id = required(params, "client_id")?;
    let secret = required(params, "client_secret")?;
    world.oauth.check_app(&app_id, &secret)?;
    match params.text("grant_type").as_deref() {
        Some("fb_exchange_token") => {
            let old = required(params, "fb_exchange_token")?;
            let record = match world.oauth.check(&world.clock, Some(&old))? {
                Caller::Token(record) if record.app_id == app_id => record,
                _ => return Err(GraphError::token_invalid()),
            };
            let ttl = match record.kind {
                TokenKind::User => Some(config.long_lived_token_ttl),
                TokenKind::SystemUser => config.system_user_token_ttl,
            };
            let token = world.oauth.issue(&world.clock, record.kind, &app_id, &record.scopes, ttl);
            Ok(token_answer(token, ttl))
        }
        Some("client_credentials") => Ok(json!({"access_token": format!("{app_id}|{secret}"), "token_type": "bearer"})),
        Some(other) => Err(GraphError::invalid_param(format!("Unsupported grant_type {other}"))),
        None => {
            let code = required(params, "code")?;
            let redirect_uri = required(params, "redirect_uri")?;
            let now = world.clock.now();
            let pending = world
                .oauth
                .codes
                .get_mut(&code)
                .filter(|p| p.app_id == app_id)
                .ok_or_else(|| GraphError::invalid_param("Invalid verification code format."))?;
            if pending.used {
                return Err(GraphError::invalid_param("This authorization code has been used."));
            }
            if now >= pending.expires_at {
                return Err(GraphError::invalid_param("This authorization code has expired."));
            }
            if pending.redirect_uri != redirect_uri {
                return Err(GraphError::invalid_param(
                    "Error validating verification code. Please make sure your redirect_uri is identical to the one \
                     you used in the OAuth dialog request",
                ));
            }
            pending.used = true;
            let (kind, ttl) = if pending.system_user {
                (TokenKind::SystemUser, config.system_user_token_ttl)
            } else {
                (TokenKind::User, Some(config.short_lived_token_ttl))
            };
            let scopes = pending.scopes.clone();
            let token = world.oauth.issue(&world.clock, kind, &app_id, &scopes, ttl);
            Ok(token_answer(token, ttl))
        }
    }
}

/// `GET /debug_token?input_token=..&access_token=<app_id>|<app_secret>`.
pub(crate) fn debug_token(world: &MetaState, params: &Params, token: Option<&str>) -> Result<Value, GraphError> {
    let inspector = token.ok_or_else(GraphError::token_missing)?;
    let allowed = world.oauth.is_app_token(inspector) || world.oauth.check(&world.clock, Some(inspector)).is_ok();
    if !allowed {
        return Err(GraphError::token_invalid());
    }
    let input = required(params, "input_token")?;
    let Some(record) = world.oauth.tokens.get(&input) else {
        return Ok(json!({"data": {
            "is_valid": false,
            "error": {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token", "subcode": 467},
        }}));
    };
    let mut data = Map::new();
    data.insert("app_id".to_owned(), json!(record.app_id));
    data.insert("type".to_owned(), json!(if record.kind == TokenKind::User { "USER" } else { "SYSTEM_USER" }));
    data.insert("application".to_owned(), json!("Sandbox App"));
    let data_access = if record.kind == TokenKind::User { record.issued_at_unix + 90 * 24 * 3600 } else { 0 };
    data.insert("data_access_expires_at".to_owned(), json!(data_access));
    data.insert("expires_at".to_owned(), json!(record.expires_at_unix));
    data.insert("issued_at".to_owned(), json!(record.issued_at_unix));
    data.insert("scopes".to_owned(), json!(record.scopes));
    data.insert("user_id".to_owned(), json!(record.user_id()));
    let problem = if record.revoked {
        Some(GraphError::token_revoked())
    } else if record.expired(world.clock.now()) {
        Some(GraphError::token_expired(record.expires_at_unix, world.clock.unix()))
    } else {
        None
    };
    data.insert("is_valid".to_owned(), json!(problem.is_none()));
    if let Some(problem) = problem {
        data.insert(
            "error".to_owned(),
            json!({"code": problem.code, "message": problem.message, "subcode": problem.subcode}),
        );
    }
    Ok(json!({ "data": data }))
}
