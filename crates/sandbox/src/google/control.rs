//! The Google stand-in's HTTP control API under `/_sandbox/`, mirroring the other partners'.
//!
//! The main controls and views of [`GoogleHandle`] as plain JSON routes for people and plugin
//! authors who do not write Rust. They are outside Google's paths, so they are never faulted,
//! counted against quotas, authenticated or logged.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::control::{ControlError, body};
use crate::google::GOOGLE_NOTES_MD;
use crate::google::config::{ForcedGoogleErrors, GoogleFault, GoogleFaults};
use crate::google::handle::{GoogleHandle, GoogleService};
use crate::google::state::GoogleShared;

type Ctx = State<Arc<GoogleShared>>;

fn handle(shared: &Arc<GoogleShared>) -> GoogleHandle {
    GoogleHandle::new(Arc::clone(shared))
}

fn bad(message: &str) -> Response {
    ControlError(StatusCode::BAD_REQUEST, message.to_owned()).into_response()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TokenBody {
    token: Option<String>,
    all: bool,
    scopes: Option<Vec<String>>,
    client_id: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Settings {
    client_id: String,
    client_secret: String,
    seconds: u64,
    service: String,
    enabled: Option<bool>,
}

/// Faults as JSON; `fault` is `internal`, `unavailable`, `deadline_exceeded`, `token_expired`
/// or `quota_exhausted`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FaultsBody {
    error_rate: f64,
    latency_ms: u64,
    fail_next: u32,
    fault: Option<String>,
}

/// The `/_sandbox` routes.
pub(crate) fn routes() -> Router<Arc<GoogleShared>> {
    Router::new()
        .route("/_sandbox", get(index))
        .route("/_sandbox/", get(index))
        .route("/_sandbox/summary", get(summary))
        .route("/_sandbox/requests", get(requests).delete(clear_requests))
        .route("/_sandbox/faults", get(faults).post(set_faults))
        .route("/_sandbox/tokens", post(issue_tokens))
        .route("/_sandbox/tokens/revoke", post(revoke))
        .route("/_sandbox/tokens/expire", post(expire))
        .route("/_sandbox/clients", post(register_client))
        .route("/_sandbox/clock/advance", post(advance_clock))
        .route("/_sandbox/services", post(services))
        .route("/_sandbox/user_lists/{id}/members", get(members))
        .route("/_sandbox/notes.md", get(notes))
}

/// The route list, so `curl /_sandbox/` is self-explaining.
const ROUTES: &[(&str, &str)] = &[
    ("GET /_sandbox/summary", "accounts, user lists with member counts, quota counters, clock"),
    ("GET /_sandbox/requests", "the request log"),
    ("DELETE /_sandbox/requests", "empty the request log"),
    ("GET /_sandbox/faults", "active faults"),
    (
        "POST /_sandbox/faults",
        r#"{"error_rate":0.1,"latency_ms":50,"fail_next":3,"fault":"internal|unavailable|deadline_exceeded|token_expired|quota_exhausted"}"#,
    ),
    (
        "POST /_sandbox/tokens",
        r#"issue tokens: {"scopes":[..],"client_id":".."} (default: both scopes, default client)"#,
    ),
    ("POST /_sandbox/tokens/revoke", r#"{"token":".."}: revokes its grant"#),
    ("POST /_sandbox/tokens/expire", r#"{"token":".."} or {"all":true}: access tokens expire now"#),
    (
        "POST /_sandbox/clients",
        r#"register an OAuth client (a Cloud project): {"client_id":"..","client_secret":".."}"#,
    ),
    ("POST /_sandbox/clock/advance", r#"{"seconds":1800}: processing, tokens, quotas see the time pass"#),
    ("POST /_sandbox/services", r#"{"service":"datamanager|googleads","enabled":false}: SERVICE_DISABLED"#),
    ("GET /_sandbox/user_lists/{id}/members", "exactly who is in a user list now"),
    ("GET /_sandbox/notes.md", "the researched facts about Google's APIs this stand-in follows"),
];

async fn index() -> Json<Value> {
    let routes: serde_json::Map<String, Value> =
        ROUTES.iter().map(|(route, what)| ((*route).to_owned(), json!(what))).collect();
    Json(json!({ "routes": routes }))
}

async fn summary(State(shared): Ctx) -> Response {
    Json(handle(&shared).summary()).into_response()
}

async fn requests(State(shared): Ctx) -> Response {
    Json(handle(&shared).request_log()).into_response()
}

async fn clear_requests(State(shared): Ctx) -> StatusCode {
    handle(&shared).clear_request_log();
    StatusCode::NO_CONTENT
}

fn fault_name(fault: &GoogleFault) -> &'static str {
    match fault {
        GoogleFault::Internal => "internal",
        GoogleFault::Unavailable => "unavailable",
        GoogleFault::DeadlineExceeded => "deadline_exceeded",
        GoogleFault::TokenExpired => "token_expired",
        GoogleFault::QuotaExhausted => "quota_exhausted",
        GoogleFault::Custom { .. } => "custom",
    }
}

fn faults_json(faults: &GoogleFaults) -> Value {
    json!({
        "error_rate": faults.error_rate,
        "latency_ms": u64::try_from(faults.latency.as_millis()).unwrap_or(u64::MAX),
        "fail_next": faults.forced.as_ref().map_or(0, |f| f.remaining),
        "fault": faults.forced.as_ref().map(|f| fault_name(&f.fault)),
    })
}

async fn faults(State(shared): Ctx) -> Json<Value> {
    Json(faults_json(&handle(&shared).faults()))
}

async fn set_faults(State(shared): Ctx, bytes: Bytes) -> Response {
    let request = match body::<FaultsBody>(&bytes) {
        Ok(request) => request,
        Err(e) => return e.into_response(),
    };
    let fault = match request.fault.as_deref() {
        None | Some("unavailable") => GoogleFault::Unavailable,
        Some("internal") => GoogleFault::Internal,
        Some("deadline_exceeded") => GoogleFault::DeadlineExceeded,
        Some("token_expired") => GoogleFault::TokenExpired,
        Some("quota_exhausted") => GoogleFault::QuotaExhausted,
        Some(other) => return bad(&format!("unknown fault `{other}`")),
    };
    let faults = GoogleFaults {
        error_rate: request.error_rate,
        latency: Duration::from_millis(request.latency_ms),
        forced: (request.fail_next > 0).then_some(ForcedGoogleErrors { remaining: request.fail_next, fault }),
    };
    handle(&shared).set_faults(faults.clone());
    Json(faults_json(&faults)).into_response()
}

async fn issue_tokens(State(shared): Ctx, bytes: Bytes) -> Response {
    let request = match body::<TokenBody>(&bytes) {
        Ok(request) => request,
        Err(e) => return e.into_response(),
    };
    let scopes = request
        .scopes
        .unwrap_or_else(|| vec![GoogleHandle::ADWORDS_SCOPE.to_owned(), GoogleHandle::DATAMANAGER_SCOPE.to_owned()]);
    let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
    let client = request.client_id.unwrap_or_else(|| GoogleHandle::DEFAULT_CLIENT_ID.to_owned());
    match handle(&shared).issue_tokens_for(&client, &scopes) {
        Some(tokens) => Json(json!({
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_in": tokens.expires_in,
            "scope": tokens.scope,
            "token_type": "Bearer",
        }))
        .into_response(),
        None => ControlError(StatusCode::NOT_FOUND, format!("no OAuth client `{client}`")).into_response(),
    }
}

async fn revoke(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<TokenBody>(&bytes) {
        Ok(TokenBody { token: Some(token), .. }) if handle(&shared).revoke_token(&token) => {
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(TokenBody { token: Some(_), .. }) => {
            ControlError(StatusCode::NOT_FOUND, "no such token".to_owned()).into_response()
        }
        Ok(_) => bad("give `token`"),
        Err(e) => e.into_response(),
    }
}

async fn expire(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<TokenBody>(&bytes) {
        Ok(TokenBody { all: true, .. }) => {
            handle(&shared).expire_all_access_tokens();
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(TokenBody { token: Some(token), .. }) if handle(&shared).expire_access_token(&token) => {
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(TokenBody { token: Some(_), .. }) => {
            ControlError(StatusCode::NOT_FOUND, "no such token".to_owned()).into_response()
        }
        Ok(_) => bad("give `token` or `all: true`"),
        Err(e) => e.into_response(),
    }
}

async fn register_client(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<Settings>(&bytes) {
        Ok(s) if !s.client_id.is_empty() => {
            Json(json!({"project": handle(&shared).register_client(&s.client_id, &s.client_secret)})).into_response()
        }
        Ok(_) => bad("give `client_id`"),
        Err(e) => e.into_response(),
    }
}

async fn advance_clock(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<Settings>(&bytes) {
        Ok(settings) => {
            let handle = handle(&shared);
            handle.advance_clock(Duration::from_secs(settings.seconds));
            Json(json!({"offset_secs": handle.clock_offset().as_secs()})).into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn services(State(shared): Ctx, bytes: Bytes) -> Response {
    match body::<Settings>(&bytes) {
        Ok(settings) => {
            let service = match settings.service.as_str() {
                "datamanager" | "datamanager.googleapis.com" => GoogleService::DataManager,
                "googleads" | "googleads.googleapis.com" => GoogleService::GoogleAds,
                other => return bad(&format!("unknown service `{other}`")),
            };
            handle(&shared).set_service_enabled(service, settings.enabled.unwrap_or(true));
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => e.into_response(),
    }
}

async fn members(State(shared): Ctx, Path(id): Path<String>) -> Response {
    Json(handle(&shared).members(&id)).into_response()
}

async fn notes() -> Response {
    ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], GOOGLE_NOTES_MD).into_response()
}
