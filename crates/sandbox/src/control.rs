//! The HTTP control API under `/_sandbox/`.
//!
//! [`SandboxHandle`](crate::SandboxHandle) serves Rust tests; people trying the demo and plugin
//! authors in other languages only have HTTP. This module exposes the same controls and views
//! as plain JSON routes. They are outside `/v5`, so they are never faulted, rate-limited,
//! authenticated or logged: inspecting the sandbox does not disturb what is being measured.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::config::{Faults, Forced429};
use crate::customer_lists::ListType;
use crate::handle::SandboxHandle;
use crate::oauth::TokenKind;
use crate::paging::parse_query;
use crate::spec::PINTEREST_OPENAPI_JSON;
use crate::state::{Shared, parse_id};

/// What the sandbox holds, for people and dashboards.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Base URL of the sandbox.
    pub base_url: String,
    /// Every ad account with its lists and audiences.
    pub ad_accounts: Vec<AccountSummary>,
    /// Access tokens neither revoked nor expired.
    pub active_access_tokens: usize,
    /// Requests in the log.
    pub requests_logged: usize,
}

/// One ad account in a [`Summary`].
#[derive(Debug, Clone, Serialize)]
pub struct AccountSummary {
    /// Ad account id.
    pub id: String,
    /// Ad account name.
    pub name: String,
    /// Its customer lists, oldest first.
    pub customer_lists: Vec<ListSummary>,
    /// Its audiences, oldest first.
    pub audiences: Vec<AudienceSummary>,
}

/// One customer list in a [`Summary`].
#[derive(Debug, Clone, Serialize)]
pub struct ListSummary {
    /// Customer list id.
    pub id: String,
    /// Customer list name.
    pub name: String,
    /// What kind of records it holds.
    pub list_type: ListType,
    /// How many distinct records it holds now.
    pub members: usize,
}

/// One audience in a [`Summary`].
#[derive(Debug, Clone, Serialize)]
pub struct AudienceSummary {
    /// Audience id.
    pub id: String,
    /// Audience name.
    pub name: String,
    /// The customer list it is built on.
    pub customer_list_id: String,
}

pub(crate) fn summary(shared: &Shared) -> Summary {
    let world = shared.lock();
    let now = Instant::now();
    let ad_accounts = world
        .accounts
        .iter()
        .map(|account| AccountSummary {
            id: account.id.clone(),
            name: account.name.clone(),
            customer_lists: world
                .lists
                .values()
                .filter(|l| l.ad_account_id == account.id)
                .map(|l| ListSummary {
                    id: l.id.to_string(),
                    name: l.name.clone(),
                    list_type: l.list_type,
                    members: l.members.len(),
                })
                .collect(),
            audiences: world
                .audiences
                .values()
                .filter(|a| a.ad_account_id == account.id)
                .map(|a| AudienceSummary {
                    id: a.id.to_string(),
                    name: a.name.clone(),
                    customer_list_id: a.customer_list_id.to_string(),
                })
                .collect(),
        })
        .collect();
    let active_access_tokens =
        world.oauth.tokens.values().filter(|t| t.kind == TokenKind::Access && !t.revoked && now < t.expires_at).count();
    Summary { base_url: shared.base_url(), ad_accounts, active_access_tokens, requests_logged: world.log.len() }
}

/// Faults as JSON: `{"error_rate", "latency_ms", "drop_rate", "forced_429", "retry_after_secs"}`.
/// Omitted fields mean "no such fault".
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FaultsBody {
    error_rate: f64,
    latency_ms: u64,
    drop_rate: f64,
    forced_429: u32,
    retry_after_secs: Option<u64>,
}

impl From<FaultsBody> for Faults {
    fn from(body: FaultsBody) -> Self {
        Faults {
            error_rate: body.error_rate,
            latency: Duration::from_millis(body.latency_ms),
            drop_rate: body.drop_rate,
            forced_429: (body.forced_429 > 0).then(|| Forced429 {
                remaining: body.forced_429,
                retry_after: body.retry_after_secs.map(Duration::from_secs),
            }),
        }
    }
}

impl From<Faults> for FaultsBody {
    fn from(faults: Faults) -> Self {
        FaultsBody {
            error_rate: faults.error_rate,
            latency_ms: u64::try_from(faults.latency.as_millis()).unwrap_or(u64::MAX),
            drop_rate: faults.drop_rate,
            forced_429: faults.forced_429.as_ref().map_or(0, |f| f.remaining),
            retry_after_secs: faults.forced_429.and_then(|f| f.retry_after).map(|d| d.as_secs()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TokenBody {
    token: Option<String>,
    all: bool,
    scopes: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct AppBody {
    client_id: String,
    client_secret: String,
}

/// A control-API failure: `{"error": message}` (shared with the Meta control API).
pub(crate) struct ControlError(pub StatusCode, pub String);

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

/// Parses an optional JSON body (empty means all defaults).
pub(crate) fn body<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ControlError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes).map_err(|e| ControlError(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}")))
}

type Ctx = State<Arc<Shared>>;

fn handle(shared: &Arc<Shared>) -> SandboxHandle {
    SandboxHandle::new(Arc::clone(shared))
}

/// The `/_sandbox` routes.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_sandbox", get(index))
        .route("/_sandbox/", get(index))
        .route("/_sandbox/summary", get(summary_route))
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route("/_sandbox/spec_violations", get(violations))
        .route("/_sandbox/rate_limit", get(rate_limit))
        .route("/_sandbox/customer_lists/{id}/members", get(members))
        .route("/_sandbox/faults", get(faults).post(set_faults))
        .route("/_sandbox/tokens", post(issue_tokens))
        .route("/_sandbox/tokens/revoke", post(revoke))
        .route("/_sandbox/tokens/expire", post(expire))
        .route("/_sandbox/apps", post(register_app))
        .route("/_sandbox/ad_accounts/{account}/customer_lists/{id}/delete", post(delete_list))
        .route("/_sandbox/ad_accounts/{account}/audiences/{id}/delete", post(delete_audience))
        .route("/_sandbox/openapi.json", get(openapi))
}

/// The route list, so `curl /_sandbox/` is self-explaining.
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("GET /_sandbox/summary", "accounts, lists with member counts, audiences"),
    ("GET /_sandbox/requests[?access_token=T]", "the request log"),
    ("DELETE /_sandbox/requests", "empty the request log"),
    ("GET /_sandbox/spec_violations", "every request body that broke the OpenAPI spec"),
    (
        "GET /_sandbox/rate_limit[?access_token=T]",
        "the limit and its violations: requests that arrived while the token already had the limit's worth \
         within the preceding second, refused ones included",
    ),
    ("GET /_sandbox/customer_lists/{id}/members", "exactly who is in a customer list"),
    ("GET /_sandbox/faults", "active faults"),
    (
        "POST /_sandbox/faults",
        r#"set faults: {"error_rate":0.1,"latency_ms":50,"drop_rate":0.05,"forced_429":3,"retry_after_secs":2}"#,
    ),
    ("POST /_sandbox/tokens", r#"issue a token pair for the default app: {"scopes":["ads:read","ads:write"]}"#),
    ("POST /_sandbox/tokens/revoke", r#"{"token":"pina_..."} or {"all":true}"#),
    ("POST /_sandbox/tokens/expire", r#"{"token":"pina_..."}: the token gets 401 code 1104"#),
    ("POST /_sandbox/apps", r#"register an app: {"client_id":"..","client_secret":".."}"#),
    ("POST /_sandbox/ad_accounts/{account}/customer_lists/{id}/delete", "delete a list and its audiences"),
    ("POST /_sandbox/ad_accounts/{account}/audiences/{id}/delete", "delete an audience"),
    ("GET /_sandbox/openapi.json", "Pinterest's OpenAPI description the sandbox checks against"),
];

async fn index() -> Json<serde_json::Value> {
    let routes: serde_json::Map<String, serde_json::Value> =
        ROUTES.iter().map(|(route, what)| ((*route).to_owned(), json!(what))).collect();
    Json(json!({ "routes": routes }))
}

async fn summary_route(State(shared): Ctx) -> Json<Summary> {
    Json(summary(&shared))
}

async fn requests(State(shared): Ctx, RawQuery(query): RawQuery) -> Response {
    let query: HashMap<String, String> = parse_query(query.as_deref()).unwrap_or_default();
    let log = handle(&shared).request_log();
    let log: Vec<_> = match query.get("access_token") {
        Some(token) => log.into_iter().filter(|r| r.access_token.as_deref() == Some(token)).collect(),
        None => log,
    };
    Json(log).into_response()
}

async fn clear_requests(State(shared): Ctx) -> StatusCode {
    handle(&shared).clear_request_log();
    StatusCode::NO_CONTENT
}

async fn violations(State(shared): Ctx) -> Json<Vec<String>> {
    Json(handle(&shared).spec_violations())
}

async fn rate_limit(State(shared): Ctx, RawQuery(query): RawQuery) -> Json<serde_json::Value> {
    let query: HashMap<String, String> = parse_query(query.as_deref()).unwrap_or_default();
    let handle = handle(&shared);
    let violations = match query.get("access_token") {
        Some(token) => handle.rate_limit_violations_of(token),
        None => handle.rate_limit_violations(),
    };
    Json(json!({
        "requests_per_second": shared.config.rate_limit_per_second,
        "window_ms": crate::gate::WINDOW.as_millis() as u64,
        "violations": violations,
    }))
}

async fn members(State(shared): Ctx, Path(id): Path<String>) -> Response {
    let exists = parse_id(&id).is_some_and(|n| shared.lock().lists.contains_key(&n));
    if !exists {
        return ControlError(StatusCode::NOT_FOUND, format!("no customer list {id}")).into_response();
    }
    let mut members: Vec<String> = handle(&shared).members(&id).into_iter().collect();
    members.sort_unstable();
    Json(json!({ "customer_list_id": id, "count": members.len(), "members": members })).into_response()
}

async fn faults(State(shared): Ctx) -> Json<FaultsBody> {
    Json(handle(&shared).faults().into())
}

async fn set_faults(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<FaultsBody>(&bytes) {
        Ok(faults) => {
            handle(&shared).set_faults(faults.into());
            Json(FaultsBody::from(handle(&shared).faults())).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn issue_tokens(State(shared): Ctx, bytes: Bytes) -> Response {
    let request = match body::<TokenBody>(&bytes) {
        Ok(request) => request,
        Err(e) => return e.into_response(),
    };
    let scopes = request.scopes.unwrap_or_else(|| shared.config.default_scopes.clone());
    let scope_refs: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let pair = handle(&shared).issue_tokens(&scope_refs);
    Json(json!({
        "access_token": pair.access_token,
        "refresh_token": pair.refresh_token,
        "token_type": "bearer",
        "scope": scopes.join(","),
        "expires_in": shared.config.access_token_ttl.as_secs(),
    }))
    .into_response()
}

async fn revoke(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<TokenBody>(&bytes) {
        Ok(TokenBody { all: true, .. }) => handle(&shared).revoke_all_tokens(),
        Ok(TokenBody { token: Some(token), .. }) => handle(&shared).revoke_token(&token),
        Ok(_) => {
            return ControlError(StatusCode::BAD_REQUEST, "give `token` or `all: true`".into()).into_response();
        }
        Err(e) => return e.into_response(),
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn expire(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<TokenBody>(&bytes) {
        Ok(TokenBody { token: Some(token), .. }) => {
            handle(&shared).expire_access_token(&token);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => ControlError(StatusCode::BAD_REQUEST, "give `token`".into()).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn register_app(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<AppBody>(&bytes) {
        Ok(app) if !app.client_id.is_empty() => {
            handle(&shared).register_app(&app.client_id, &app.client_secret);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => ControlError(StatusCode::BAD_REQUEST, "give `client_id`".into()).into_response(),
        Err(e) => e.into_response(),
    }
}

fn deleted(found: bool, what: &str) -> Response {
    if found {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ControlError(StatusCode::NOT_FOUND, format!("no such {what}")).into_response()
    }
}

async fn delete_list(State(shared): Ctx, Path((account, id)): Path<(String, String)>) -> Response {
    deleted(handle(&shared).delete_customer_list(&account, &id), "customer list")
}

async fn delete_audience(State(shared): Ctx, Path((account, id)): Path<(String, String)>) -> Response {
    deleted(handle(&shared).delete_audience(&account, &id), "audience")
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], PINTEREST_OPENAPI_JSON).into_response()
}
