//! The one error type of the API and how every failure becomes a JSON answer.
//!
//! Why one type: callers (people reading a terminal, scripts branching on a code) get the same
//! shape from every route — `{"error": {"code", "message", "problems"?}}` — and every failure
//! inside the host (engine, store, plugin, the request's own shape) is mapped here, once, to a
//! status that says whose move it is: 4xx when the caller must change the request, 5xx only
//! when the host, its store or the partner failed. Messages say what to fix.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use audience_store::StoreError;

use std::time::Duration;

use audience_engine::{EngineError, Problem, retry_after_secs};
use audience_runtime::types::DestinationError;
use audience_runtime::{CallError, PluginError, describe_destination_error};

/// Why a request failed, as answered to the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code (`invalid_json`, `not_found`, ...).
    pub code: &'static str,
    /// What went wrong and what to do, for a person.
    pub message: String,
    /// Every problem with the request, each tied to a field, when there are several.
    pub problems: Vec<Problem>,
    /// Seconds to wait before trying again, answered as `Retry-After` (`host_busy`,
    /// `rate_limited`).
    pub retry_after: Option<u64>,
}

/// The JSON body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The error inside [`ErrorBody`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code: `invalid_json`, `invalid_request`, `unauthorized`, `forbidden`,
    /// `not_found`, `method_not_allowed`, `conflict`, `payload_too_large`,
    /// `unsupported_media_type`, `invalid_state`, `invalid_cursor`, `oauth_failed`,
    /// `oauth_not_configured`, `destination_not_configured`, `partner_unauthorized`,
    /// `plugin_failed`, `host_busy` (503, with `Retry-After`), `rate_limited` (429, with
    /// `Retry-After`: the connection's partner budget is in use by deliveries), `store_failed`,
    /// `not_ready`, `internal`; and from the HTTP edge,
    /// `request_timeout` (408) and `headers_too_large` (431).
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
    /// The problems, one per field, when the request had several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<ProblemView>,
}

/// One problem with a request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemView {
    /// The field, e.g. `match_fields` or `users[3].identifiers`.
    pub field: String,
    /// What is wrong with it and what to do.
    pub message: String,
}

impl ApiError {
    /// An error with a status, a code and a message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), problems: Vec::new(), retry_after: None }
    }

    /// 422 `invalid_request` listing `problems`.
    pub fn invalid(problems: Vec<Problem>) -> Self {
        let message = match problems.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            many => format!(
                "the request has {} problems: {}",
                many.len(),
                many.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; ")
            ),
        };
        Self { status: StatusCode::UNPROCESSABLE_ENTITY, code: "invalid_request", message, problems, retry_after: None }
    }

    /// 422 `invalid_request` about one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(vec![Problem::new(field, message)])
    }

    /// 400 `invalid_json`.
    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404 `not_found` for a thing of `kind` with `id`: the same answer whether it does not
    /// exist or belongs to another workspace.
    pub fn not_found(kind: &str, id: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{kind} {id:?} not found"))
    }

    /// 400 `invalid_state` (OAuth callback).
    pub fn invalid_state(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_state", message)
    }

    /// The error as its JSON body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                problems: self
                    .problems
                    .iter()
                    .map(|p| ProblemView { field: p.field.clone(), message: p.message.clone() })
                    .collect(),
            },
        }
    }
}

impl ApiError {
    /// The host had no plugin instance free for the call in time (a connection's or a plugin's
    /// share was full): 503 `host_busy`, answered with `Retry-After`.
    fn busy(why: String) -> Self {
        let message = format!("{why}; nothing was accepted, try again in {BUSY_RETRY_AFTER_SECONDS} s");
        Self {
            retry_after: Some(BUSY_RETRY_AFTER_SECONDS),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "host_busy", message)
        }
    }

    /// 429 `rate_limited`, answered with `Retry-After: <wait in seconds, rounded up>`: the
    /// connection's partner budget is in use (by deliveries, or by other calls made for the
    /// API up to `engine.rate.api_share` of it) further ahead than `engine.rate.api_max_wait`,
    /// and the call was not made.
    pub fn rate_limited(message: impl Into<String>, wait: Duration) -> Self {
        let retry_after = Some(retry_after_secs(wait));
        Self { retry_after, ..Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", message) }
    }

    /// A call made for this request on connection `connection` of `destination` was not made
    /// because the connection's turn was `wait` away (see [`Self::rate_limited`]).
    pub(crate) fn paced_out(destination: &str, connection: &str, wait: Duration) -> Self {
        Self::rate_limited(
            format!(
                "{destination}'s request budget for connection {connection} is in use (by deliveries or other API calls) \
                 for the next {} ms; {destination} was not asked and nothing was changed, try again in {} s",
                wait.as_millis(),
                retry_after_secs(wait)
            ),
            wait,
        )
    }
}

/// What a `host_busy` answer's `Retry-After` says, in seconds.
const BUSY_RETRY_AFTER_SECONDS: u64 = 1;

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status.as_u16(), self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = self.status.as_u16(), code = self.code, message = %self.message, "request failed");
        } else {
            tracing::debug!(status = self.status.as_u16(), code = self.code, "request refused");
        }
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let retry_after = self.retry_after;
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if unauthorized {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { kind, id } => Self::not_found(kind, &id),
            StoreError::Conflict(message) => Self::new(StatusCode::CONFLICT, "conflict", message),
            StoreError::Decrypt => Self::new(StatusCode::INTERNAL_SERVER_ERROR, "store_failed", err.to_string()),
            other => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store_failed",
                format!("{other}; nothing was changed, try again later"),
            ),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        match err {
            EngineError::Invalid(problems) => Self::invalid(problems),
            EngineError::NotFound { kind, id } => Self::not_found(kind, &id),
            EngineError::UnknownDestination(_) => {
                Self::new(StatusCode::CONFLICT, "destination_not_configured", err.to_string())
            }
            EngineError::Plugin { source: PluginError::Busy { .. }, .. } => Self::busy(err.to_string()),
            EngineError::Plugin { .. } => Self::new(StatusCode::BAD_GATEWAY, "plugin_failed", err.to_string()),
            EngineError::Unavailable(_) => Self::new(StatusCode::BAD_GATEWAY, "partner_unavailable", err.to_string()),
            EngineError::RateLimited { retry_after, .. } => Self::rate_limited(err.to_string(), retry_after),
            EngineError::Store(store) => store.into(),
        }
    }
}

/// A plugin call made for a request (list accounts, exchange an OAuth code) failed.
pub(crate) fn plugin_call_failed(destination: &str, err: CallError) -> ApiError {
    match err {
        CallError::Destination(DestinationError::Unauthorized(why)) => ApiError::new(
            StatusCode::CONFLICT,
            "partner_unauthorized",
            format!(
                "{destination} refused this connection's credentials ({why}); if it persists, connect the \
                 account again with POST /v1/connections/{{id}}/oauth/start"
            ),
        ),
        CallError::Destination(e @ (DestinationError::RateLimited(_) | DestinationError::Transient(_))) => {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "plugin_failed",
                format!("{destination} is unavailable right now ({}); try again later", describe_destination_error(&e)),
            )
        }
        CallError::Destination(e) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "plugin_failed",
            format!("{destination} refused the request: {}", describe_destination_error(&e)),
        ),
        CallError::Plugin(e @ PluginError::Busy { .. }) => ApiError::busy(format!("the {destination} plugin: {e}")),
        CallError::Plugin(e) => {
            ApiError::new(StatusCode::BAD_GATEWAY, "plugin_failed", format!("the {destination} plugin failed: {e}"))
        }
        CallError::HostRefused(why) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "host_refused",
            format!(
                "this host refused the {destination} plugin's request ({why}); {destination} was not asked. \
                 Check the plugin's allowed_hosts / plain_http_hosts in the host configuration"
            ),
        ),
        CallError::Unsupported { .. } => {
            ApiError::new(StatusCode::NOT_IMPLEMENTED, "not_supported", format!("the {destination} plugin: {err}"))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test")]
    use std::time::Duration;

    use audience_runtime::InstanceLimit;

    use super::*;

    #[test]
    fn a_busy_host_answers_503_and_a_paced_out_call_429_with_retry_after_and_other_plugin_failures_502() {
        let busy = PluginError::Busy {
            plugin: "pinterest".into(),
            limit: InstanceLimit::Connection { limit: 20 },
            waited: Duration::from_secs(10),
        };
        let cases = [
            (EngineError::Plugin { destination: "pinterest".into(), source: busy.clone() }.into(), 503, Some("1")),
            (plugin_call_failed("pinterest", CallError::Plugin(busy)), 503, Some("1")),
            (plugin_call_failed("pinterest", CallError::Plugin(PluginError::Trap("boom".into()))), 502, None),
        ];
        let limited =
            |ms| EngineError::RateLimited { destination: "pinterest".into(), retry_after: Duration::from_millis(ms) };
        let cases = cases.into_iter().chain([
            (limited(1_200).into(), 429, Some("2")),
            (limited(3_000).into(), 429, Some("3")),
            (limited(0).into(), 429, Some("1")),
            (ApiError::paced_out("pinterest", "conn_1", Duration::from_millis(4_001)), 429, Some("5")),
        ]);
        for (error, status, retry_after) in cases {
            let error: ApiError = error;
            let message = error.message.clone();
            let response = error.into_response();
            assert_eq!(response.status().as_u16(), status, "{message}");
            let header = response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_string());
            assert_eq!(header.as_deref(), retry_after, "{message}");
        }
    }
}
