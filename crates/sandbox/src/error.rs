//! Errors: the ones the sandbox returns to its own caller, and the Pinterest-shaped ones it
//! answers over HTTP.
//!
//! Pinterest answers every failure with `{"code": int, "message": string}` and reuses codes
//! across statuses (code 2 is both "Authentication failed." and "AdAccount not found."), so a
//! client has to branch on the HTTP status first. The constructors below pin each situation the
//! sandbox models to one status/code pair, taken from the spec's examples where it has one.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::log::FaultKind;

/// Why the sandbox could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The listening socket could not be bound.
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The requested port (0 = any).
        port: u16,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The HTTP server stopped with an I/O error.
    #[error("sandbox server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// Waiting for Ctrl-C failed.
    #[error("cannot wait for Ctrl-C: {0}")]
    Signal(#[source] std::io::Error),
}

/// The spec's message for code 3 (401, insufficient scopes).
const INSUFFICIENT_SCOPE: &str = "Your token does not have sufficient permissions to perform this operation. Please ensure your token is authorized with the correct set of scopes.";
/// The spec's message for code 8 (429, rate limit).
const RATE_LIMITED: &str = "This request exceeded a rate limit. This can happen if the client exceeds one\nof the published rate limits within a short time window.";

/// A Pinterest-style error answer: status plus `{code, message}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: i64,
    pub message: String,
    pub retry_after: Option<Duration>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: i64,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: i64, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    /// 401 code 2: missing, unknown or revoked credentials.
    pub fn authentication_failed() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 2, "Authentication failed.")
    }

    /// 401 code 1104: the access token has expired.
    pub fn token_expired() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 1104, "Authentication failed: the access token has expired.")
    }

    /// 401 code 3: the token lacks the scope the endpoint requires.
    pub fn insufficient_scope() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, 3, INSUFFICIENT_SCOPE)
    }

    /// 403 code 29: not permitted.
    pub fn not_permitted() -> Self {
        Self::new(StatusCode::FORBIDDEN, 29, "You are not permitted to access that resource.")
    }

    /// 429 code 8: rate limited.
    pub fn rate_limited(retry_after: Option<Duration>) -> Self {
        Self { retry_after, ..Self::new(StatusCode::TOO_MANY_REQUESTS, 8, RATE_LIMITED) }
    }

    /// 400 code 1: invalid parameters or body.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, 1, message)
    }

    /// 400 code 400: the ad account id is not a valid id.
    pub fn invalid_ad_account_id() -> Self {
        Self::new(StatusCode::BAD_REQUEST, 400, "Invalid ad account id")
    }

    /// 404 code 2: no such ad account for this user.
    pub fn ad_account_not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, 2, "AdAccount not found.")
    }

    /// 404 code 404 with a message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, 404, message)
    }

    /// An injected 500 or 503.
    pub fn injected_server_error(status: StatusCode) -> Self {
        Self::new(status, i64::from(status.as_u16()), "Internal error (injected by the sandbox).")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { code: self.code, message: &self.message };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(after) = self.retry_after {
            let secs = after.as_secs() + u64::from(after.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// What a handler learned about a request that the request log should keep. Travels from the
/// handler to the logging middleware as a response extension.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogExtras {
    /// Records in a customer-list body.
    pub records: Option<usize>,
    /// Ways the request broke the OpenAPI description.
    pub violations: Vec<String>,
    /// The fault the sandbox injected, if any.
    pub fault: Option<FaultKind>,
}

/// Turns a handler's outcome into a response carrying `extras` for the request log.
pub(crate) fn finish<T: Serialize>(result: Result<T, ApiError>, extras: LogExtras) -> Response {
    let mut response = match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => error.into_response(),
    };
    response.extensions_mut().insert(extras);
    response
}
