//! The Meta stand-in's HTTP control API under `/_sandbox/`, mirroring the Pinterest one.
//!
//! The same controls and views as [`MetaHandle`], as plain JSON routes for people and plugin
//! authors who do not write Rust. They are outside the Graph paths, so they are never faulted,
//! budgeted, authenticated or logged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::control::{ControlError, body};
use crate::meta::config::{ForcedErrors, MetaFault, MetaFaults};
use crate::meta::handle::MetaHandle;
use crate::meta::state::MetaShared;
use crate::meta::{META_NOTES_MD, summary};
use crate::paging::parse_query;

type Ctx = State<Arc<MetaShared>>;

fn handle(shared: &Arc<MetaShared>) -> MetaHandle {
    MetaHandle::new(Arc::clone(shared))
}

fn bad(message: &str) -> Response {
    ControlError(StatusCode::BAD_REQUEST, message.to_owned()).into_response()
}

fn done(found: bool, what: &str) -> Response {
    if found {
        StatusCode::NO_CONTENT.into_response()
    } else {
        ControlError(StatusCode::NOT_FOUND, format!("no such {what}")).into_response()
    }
}

/// Faults as JSON. `fault` is one of `unknown` (code 1), `service` (2), `temporarily_blocked`
/// (368), `http_status` (with `http_status`), `token_revoked` (190/460),
/// `custom_audience_throttle` (80003), `ads_management_throttle` (80004), `user_throttle` (17),
/// `app_throttle` (4), or `custom` (with `code`, optional `subcode`, `http_status`, `message`).
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FaultsBody {
    error_rate: f64,
    latency_ms: u64,
    drop_rate: f64,
    fail_next: u32,
    fault: Option<String>,
    http_status: Option<u16>,
    code: Option<i64>,
    subcode: Option<i64>,
    message: Option<String>,
}

fn fault_from(body: &FaultsBody) -> Result<MetaFault, String> {
    Ok(match body.fault.as_deref() {
        Some("unknown") => MetaFault::Unknown,
        None | Some("service") if body.code.is_none() && body.http_status.is_none() => MetaFault::Service,
        Some("service") => MetaFault::Service,
        Some("temporarily_blocked") => MetaFault::TemporarilyBlocked,
        Some("token_revoked") => MetaFault::TokenRevoked,
        Some("custom_audience_throttle") => MetaFault::CustomAudienceThrottle,
        Some("ads_management_throttle") => MetaFault::AdsManagementThrottle,
        Some("user_throttle") => MetaFault::UserThrottle,
        Some("app_throttle") => MetaFault::AppThrottle,
        None | Some("http_status") if body.code.is_none() => MetaFault::HttpStatus(body.http_status.unwrap_or(503)),
        None | Some("custom") => MetaFault::Custom {
            status: body.http_status.unwrap_or(400),
            code: body.code.ok_or("`custom` needs `code`")?,
            subcode: body.subcode,
            message: body.message.clone().unwrap_or_else(|| "Error injected by the sandbox".to_owned()),
        },
        Some(other) => return Err(format!("unknown fault `{other}`")),
    })
}

fn faults_body(faults: MetaFaults) -> FaultsBody {
    let mut out = FaultsBody {
        error_rate: faults.error_rate,
        latency_ms: u64::try_from(faults.latency.as_millis()).unwrap_or(u64::MAX),
        drop_rate: faults.drop_rate,
        ..FaultsBody::default()
    };
    if let Some(forced) = faults.forced {
        out.fail_next = forced.remaining;
        let name = match forced.fault {
            MetaFault::Unknown => "unknown",
            MetaFault::Service => "service",
            MetaFault::TemporarilyBlocked => "temporarily_blocked",
            MetaFault::TokenRevoked => "token_revoked",
            MetaFault::CustomAudienceThrottle => "custom_audience_throttle",
            MetaFault::AdsManagementThrottle => "ads_management_throttle",
            MetaFault::UserThrottle => "user_throttle",
            MetaFault::AppThrottle => "app_throttle",
            MetaFault::HttpStatus(status) => {
                out.http_status = Some(status);
                "http_status"
            }
            MetaFault::Custom { status, code, subcode, message } => {
                (out.http_status, out.code, out.subcode, out.message) =
                    (Some(status), Some(code), subcode, Some(message));
                "custom"
            }
        };
        out.fault = Some(name.to_owned());
    }
    out
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TokenBody {
    token: Option<String>,
    all: bool,
    scopes: Option<Vec<String>>,
    /// `long_lived` (default), `short_lived` or `system_user`.
    kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    client_id: String,
    client_secret: String,
    name: String,
    ad_account_id: String,
    account_status: Option<u32>,
    accepted: Option<bool>,
    assigned: Option<bool>,
    flagged: Option<bool>,
    seconds: u64,
}

/// The `/_sandbox` routes.
pub(crate) fn routes() -> Router<Arc<MetaShared>> {
    Router::new()
        .route("/_sandbox", get(index))
        .route("/_sandbox/", get(index))
        .route("/_sandbox/summary", get(summary_route))
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route("/_sandbox/faults", get(faults).post(set_faults))
        .route("/_sandbox/tokens", post(issue_token))
        .route("/_sandbox/tokens/revoke", post(revoke))
        .route("/_sandbox/tokens/expire", post(expire))
        .route("/_sandbox/apps", post(register_app))
        .route("/_sandbox/clock", get(clock))
        .route("/_sandbox/clock/advance", post(advance_clock))
        .route("/_sandbox/ad_accounts", post(add_account))
        .route("/_sandbox/ad_accounts/{account}/status", post(account_status))
        .route("/_sandbox/ad_accounts/{account}/tos", post(account_tos))
        .route("/_sandbox/ad_accounts/{account}/assigned", post(account_assigned))
        .route("/_sandbox/ad_accounts/{account}/usage", get(account_usage))
        .route("/_sandbox/audiences", post(seed_audience))
        .route("/_sandbox/audiences/{id}/members", get(members))
        .route("/_sandbox/audiences/{id}/sessions", get(sessions))
        .route("/_sandbox/audiences/{id}/delete", post(delete_audience))
        .route("/_sandbox/audiences/{id}/flag", post(flag_audience))
        .route("/_sandbox/notes.md", get(notes))
}

/// The route list, so `curl /_sandbox/` is self-explaining.
pub(crate) const ROUTES: &[(&str, &str)] = &[
    ("GET /_sandbox/summary", "accounts, audiences with member counts, usage, versions used"),
    ("GET /_sandbox/requests[?access_token=T][&ad_account_id=act_N]", "the request log"),
    ("DELETE /_sandbox/requests", "empty the request log"),
    ("GET /_sandbox/faults", "active faults"),
    (
        "POST /_sandbox/faults",
        r#"set faults: {"error_rate":0.1,"latency_ms":50,"drop_rate":0.05,"fail_next":3,"fault":"service|unknown|temporarily_blocked|http_status|token_revoked|custom_audience_throttle|ads_management_throttle|user_throttle|app_throttle|custom","http_status":503,"code":..,"subcode":..}"#,
    ),
    (
        "POST /_sandbox/tokens",
        r#"issue a token: {"scopes":["ads_management","ads_read"],"kind":"long_lived|short_lived|system_user"}"#,
    ),
    ("POST /_sandbox/tokens/revoke", r#"{"token":"EAA..."} or {"all":true}: 190/460 from then on"#),
    ("POST /_sandbox/tokens/expire", r#"{"token":"EAA..."}: 190/463 from then on"#),
    ("POST /_sandbox/apps", r#"register an app: {"client_id":"..","client_secret":".."}"#),
    ("GET /_sandbox/clock", "how far the sandbox clock runs ahead"),
    ("POST /_sandbox/clock/advance", r#"{"seconds":3600}: tokens, sessions, budgets and delays see the time pass"#),
    ("POST /_sandbox/ad_accounts", r#"add an ad account: {"name":".."}"#),
    ("POST /_sandbox/ad_accounts/{act_N}/status", r#"{"account_status":2}"#),
    ("POST /_sandbox/ad_accounts/{act_N}/tos", r#"{"accepted":false}: Custom Audience terms signed or not"#),
    ("POST /_sandbox/ad_accounts/{act_N}/assigned", r#"{"assigned":false}: the user loses access (100/33)"#),
    ("GET /_sandbox/ad_accounts/{act_N}/usage", "the account's custom_audience budget usage now"),
    ("POST /_sandbox/audiences", r#"seed an audience: {"ad_account_id":"act_N","name":".."}"#),
    ("GET /_sandbox/audiences/{id}/members", "exactly who is in an audience (rows of schema key -> value)"),
    ("GET /_sandbox/audiences/{id}/sessions", "the audience's upload sessions"),
    ("POST /_sandbox/audiences/{id}/delete", "delete an audience behind the client's back"),
    ("POST /_sandbox/audiences/{id}/flag", r#"{"flagged":true}: operation_status 471, member edits get 100/1713230"#),
    ("GET /_sandbox/notes.md", "the researched facts about Meta's API this stand-in follows"),
];

async fn index() -> Json<Value> {
    let routes: serde_json::Map<String, Value> =
        ROUTES.iter().map(|(route, what)| ((*route).to_owned(), json!(what))).collect();
    Json(json!({ "routes": routes }))
}

async fn summary_route(State(shared): Ctx) -> Json<summary::MetaSummary> {
    Json(summary::summary(&shared))
}

async fn requests(State(shared): Ctx, RawQuery(query): RawQuery) -> Response {
    let query: HashMap<String, String> = parse_query(query.as_deref()).unwrap_or_default();
    let log: Vec<_> = handle(&shared)
        .request_log()
        .into_iter()
        .filter(|r| query.get("access_token").is_none_or(|t| r.access_token.as_ref() == Some(t)))
        .filter(|r| query.get("ad_account_id").is_none_or(|a| r.ad_account_id.as_ref() == Some(a)))
        .collect();
    Json(log).into_response()
}

async fn clear_requests(State(shared): Ctx) -> StatusCode {
    handle(&shared).clear_request_log();
    StatusCode::NO_CONTENT
}

async fn faults(State(shared): Ctx) -> Json<FaultsBody> {
    Json(faults_body(handle(&shared).faults()))
}

async fn set_faults(State(shared): Ctx, bytes: Bytes) -> Response {
    let request = match body::<FaultsBody>(&bytes) {
        Ok(request) => request,
        Err(e) => return e.into_response(),
    };
    let forced = match fault_from(&request) {
        Ok(fault) => (request.fail_next > 0).then_some(ForcedErrors { remaining: request.fail_next, fault }),
        Err(message) => return bad(&message),
    };
    handle(&shared).set_faults(MetaFaults {
        error_rate: request.error_rate,
        latency: Duration::from_millis(request.latency_ms),
        drop_rate: request.drop_rate,
        forced,
    });
    Json(faults_body(handle(&shared).faults())).into_response()
}

async fn issue_token(State(shared): Ctx, bytes: Bytes) -> Response {
    let request = match body::<TokenBody>(&bytes) {
        Ok(request) => request,
        Err(e) => return e.into_response(),
    };
    let config = &shared.config;
    let scopes = request.scopes.unwrap_or_else(|| config.default_scopes.clone());
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let handle = handle(&shared);
    let (token, ttl) = match request.kind.as_deref() {
        None | Some("long_lived") => (handle.issue_token(&scopes), Some(config.long_lived_token_ttl)),
        Some("short_lived") => (handle.issue_short_lived_token(&scopes), Some(config.short_lived_token_ttl)),
        Some("system_user") => (handle.issue_system_user_token(&scopes), config.system_user_token_ttl),
        Some(other) => return bad(&format!("unknown token kind `{other}`")),
    };
    let mut answer = json!({"access_token": token, "token_type": "bearer", "scopes": scopes});
    if let Some(ttl) = ttl {
        answer["expires_in"] = json!(ttl.as_secs());
    }
    Json(answer).into_response()
}

async fn revoke(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<TokenBody>(&bytes) {
        Ok(TokenBody { all: true, .. }) => {
            handle(&shared).revoke_all_tokens();
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(TokenBody { token: Some(token), .. }) => done(handle(&shared).revoke_token(&token), "token"),
        Ok(_) => bad("give `token` or `all: true`"),
        Err(e) => e.into_response(),
    }
}

async fn expire(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<TokenBody>(&bytes) {
        Ok(TokenBody { token: Some(token), .. }) => done(handle(&shared).expire_token(&token), "token"),
        Ok(_) => bad("give `token`"),
        Err(e) => e.into_response(),
    }
}

async fn register_app(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<Settings>(&bytes) {
        Ok(app) if !app.client_id.is_empty() => {
            handle(&shared).register_app(&app.client_id, &app.client_secret);
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(_) => bad("give `client_id`"),
        Err(e) => e.into_response(),
    }
}

async fn clock(State(shared): Ctx) -> Json<Value> {
    Json(json!({ "offset_secs": handle(&shared).clock_offset().as_secs() }))
}

async fn advance_clock(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<Settings>(&bytes) {
        Ok(settings) => {
            handle(&shared).advance_clock(Duration::from_secs(settings.seconds));
            clock(State(shared)).await.into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn add_account(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<Settings>(&bytes) {
        Ok(settings) => {
            let name = if settings.name.is_empty() { "Sandbox Ad Account".to_owned() } else { settings.name };
            Json(json!({ "id": handle(&shared).add_ad_account(&name) })).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Reads one optional setting from the body and applies it to the account.
fn account_setting<T>(
    shared: &Arc<MetaShared>,
    account: &str,
    bytes: &[u8],
    pick: impl FnOnce(Settings) -> Option<T>,
    apply: impl FnOnce(&MetaHandle, &str, T) -> bool,
) -> Response {
    match body::<Settings>(bytes) {
        Ok(settings) => match pick(settings) {
            Some(value) => done(apply(&handle(shared), account, value), "ad account"),
            None => bad("missing setting in the body"),
        },
        Err(e) => e.into_response(),
    }
}

async fn account_status(State(shared): Ctx, Path(account): Path<String>, bytes: Bytes) -> Response {
    account_setting(&shared, &account, &bytes, |s| s.account_status, MetaHandle::set_account_status)
}

async fn account_tos(State(shared): Ctx, Path(account): Path<String>, bytes: Bytes) -> Response {
    account_setting(&shared, &account, &bytes, |s| s.accepted, MetaHandle::set_tos_accepted)
}

async fn account_assigned(State(shared): Ctx, Path(account): Path<String>, bytes: Bytes) -> Response {
    account_setting(&shared, &account, &bytes, |s| s.assigned, MetaHandle::set_account_assigned)
}

async fn account_usage(State(shared): Ctx, Path(account): Path<String>) -> Response {
    match handle(&shared).usage(&account) {
        Some(usage) => Json(usage).into_response(),
        None => done(false, "ad account"),
    }
}

async fn seed_audience(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<Settings>(&bytes) {
        Ok(settings) => match handle(&shared).create_audience(&settings.ad_account_id, &settings.name) {
            Some(id) => Json(json!({ "id": id })).into_response(),
            None => done(false, "ad account"),
        },
        Err(e) => e.into_response(),
    }
}

async fn members(State(shared): Ctx, Path(id): Path<String>) -> Response {
    if handle(&shared).audience(&id).is_none() {
        return done(false, "audience");
    }
    let members = handle(&shared).members(&id);
    Json(json!({ "audience_id": id, "count": members.len(), "members": members })).into_response()
}

async fn sessions(State(shared): Ctx, Path(id): Path<String>) -> Response {
    Json(handle(&shared).sessions(&id)).into_response()
}

async fn delete_audience(State(shared): Ctx, Path(id): Path<String>) -> Response {
    done(handle(&shared).delete_audience(&id), "audience")
}

async fn flag_audience(State(shared): Ctx, Path(id): Path<String>, bytes: Bytes) -> Response {
    match body::<Settings>(&bytes) {
        Ok(settings) => done(handle(&shared).set_audience_flagged(&id, settings.flagged.unwrap_or(true)), "audience"),
        Err(e) => e.into_response(),
    }
}

async fn notes() -> Response {
    ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], META_NOTES_MD).into_response()
}
