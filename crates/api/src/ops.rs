//! Operational endpoints: liveness, readiness, Prometheus metrics, and the JSON answers for
//! routes and methods that do not exist.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::extract::Operator;

/// A status answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    /// `ok` or `ready`.
    status: &'static str,
}

/// The process is up and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process answers", body = Status)))]
pub(crate) async fn healthz() -> Json<Status> {
    Json(Status { status: "ok" })
}

/// The store answers: the host can take requests.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "The store does not answer", body = ErrorBody)
    ))]
pub(crate) async fn readyz(State(state): State<Arc<ApiState>>) -> Result<Json<Status>, ApiError> {
    // A primary-key read of a workspace that cannot exist: cheap, and it exercises the store.
    match state.engine.store().workspace("ws_readiness_probe").await {
        Ok(_) | Err(audience_store::StoreError::NotFound { .. }) => Ok(Json(Status { status: "ready" })),
        Err(err) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!("the store does not answer: {err}"),
        )),
    }
}

/// Every metric in Prometheus text format: per destination and sync (entered, proceeded,
/// synced, not synced, pending, errored...), partner requests, retries, plugin call times.
/// Needs the operator key, since it names every workspace's syncs.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
        (status = 401, description = "Missing or unknown key", body = ErrorBody),
        (status = 403, description = "Not the operator key", body = ErrorBody)
    ))]
pub(crate) async fn metrics(_: Operator, State(state): State<Arc<ApiState>>) -> Result<impl IntoResponse, ApiError> {
    let text = state.engine.render_metrics().await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text))
}

/// No route has this path.
pub(crate) async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {method} {}; the routes are listed in /openapi.json", uri.path()),
    )
}

/// The path exists, but not with this method.
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} does not accept {method}; the routes and their methods are listed in /openapi.json", uri.path()),
    )
}
