//! The audiences of an ad account, as the partner reports them: searched by name and paged, so
//! a person can pick an existing audience for a sync (`audience_id`) on an account holding
//! thousands, with the partner's own size and state beside each.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::connections::{RATE_LIMITED, destination_of, owned_connection, stored_credentials};
use super::error::{ApiError, ErrorBody, plugin_call_failed};
use super::extract::{Path, Query, Tenant};
use audience_runtime::CallError;
use audience_runtime::types::{Audience, AudienceState, DestinationError};

/// Query of an audience search.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AudiencesQuery {
    /// Part of the name, case-insensitive; empty or absent for every audience.
    #[serde(default)]
    query: String,
    /// `next_cursor` of the previous page; none for the first page.
    cursor: Option<String>,
}

/// An audience at the partner.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AudienceView {
    /// The partner's handle: a sync's `audience_id`.
    pub(crate) id: String,
    /// Its name.
    pub(crate) name: String,
    /// The identifier kinds it holds, when the partner says.
    pub(crate) identifiers: Vec<String>,
    /// The partner's size: `lower`..`upper` (equal when exact); both none until reported.
    pub(crate) size: SizeView,
    /// `ready`, `populating`, `too-small`, `unusable` or `unknown`.
    pub(crate) state: String,
    /// The partner's own words for the state.
    pub(crate) status_detail: Option<String>,
}

/// An audience's size as the partner reports it (ranges or rounded counts, for privacy).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SizeView {
    /// The least it may be.
    lower: Option<u64>,
    /// The most it may be.
    upper: Option<u64>,
}

impl From<Audience> for AudienceView {
    fn from(a: Audience) -> Self {
        AudienceView {
            id: a.id,
            name: a.name,
            identifiers: a.identifiers,
            size: SizeView { lower: a.size.lower, upper: a.size.upper },
            state: state_name(a.state).to_string(),
            status_detail: a.status_detail,
        }
    }
}

/// An audience state's API name.
pub(crate) fn state_name(state: AudienceState) -> &'static str {
    match state {
        AudienceState::Ready => "ready",
        AudienceState::Populating => "populating",
        AudienceState::TooSmall => "too-small",
        AudienceState::Unusable => "unusable",
        AudienceState::Unknown => "unknown",
    }
}

/// One page of audiences.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AudiencePageView {
    /// The audiences whose names match, on this page (a page may be short, even empty, while
    /// `next_cursor` is set: keep paging).
    audiences: Vec<AudienceView>,
    /// Pass as `cursor` for the next page; none on the last page.
    next_cursor: Option<String>,
}

/// One page of the account's audiences whose name contains `query`, with the partner's size
/// and state. Pick one for a sync with its `id` as `audience_id`. The partner is asked at the
/// connection's pace, shared with delivery: when deliveries hold the budget for more than
/// `engine.rate.api_max_wait`, the answer is 429 with `Retry-After` instead of a long wait.
#[utoipa::path(get, path = "/v1/connections/{id}/accounts/{account}/audiences", tag = "connections",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Connection id"),
        ("account" = String, Path, description = "Ad account id, from the accounts list"), AudiencesQuery),
    responses((status = 200, body = AudiencePageView),
        (status = 400, description = "`invalid_cursor`: not a cursor this host gave out", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The partner refused the credentials", body = ErrorBody),
        (status = 422, description = "An id holds a control character, or the partner refused the account id", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the connection's turn, rounded up"))),
        (status = 501, description = "The plugin (contract 0.1.0) cannot search audiences", body = ErrorBody),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn search_audiences(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path((id, account)): Path<(String, String)>,
    Query(query): Query<AudiencesQuery>,
) -> Result<axum::Json<AudiencePageView>, ApiError> {
    let connection = owned_connection(&state, &tenant, &id).await?;
    let destination = destination_of(&state, &connection)?;
    let credentials = stored_credentials(&connection)?;
    let cursor = query.cursor.filter(|c| !c.is_empty());
    let with_cursor = cursor.is_some();
    let plugin = state.engine.paced_plugin(&connection.id, &destination);
    let page = state
        .engine
        .with_credentials(&connection.id, connection.credentials_version, credentials, |creds| {
            let (plugin, destination, account, cursor) = (&plugin, &destination, &account, cursor.clone());
            let text = query.query.trim();
            async move { plugin.search_audiences(&destination.config, &creds, account, text, cursor).await }
        })
        .await
        .map_err(|err| match err {
            // Not asked at all: deliveries or other API calls have the connection's budget for now.
            _ if plugin.paced_out().is_some() => {
                ApiError::paced_out(&connection.destination, &connection.id, plugin.paced_out().unwrap_or_default())
            }
            CallError::Destination(DestinationError::InvalidRequest(why)) if with_cursor => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_cursor",
                format!(
                    "cursor: not one this host gave out ({} refused it: {why}); pass the `next_cursor` of the \
                     previous page unchanged, with the same query",
                    connection.destination
                ),
            ),
            // Without a cursor, the account (a path id) is the caller's part of the request:
            // a partner refusing it (Pinterest: "not a Pinterest ad account id") is the
            // caller's to fix, not a partner failure.
            CallError::Destination(DestinationError::InvalidRequest(why)) => ApiError::field(
                "account",
                format!(
                    "{} refused ad account {account:?}: {why}; use an id from the accounts list",
                    connection.destination
                ),
            ),
            CallError::Destination(DestinationError::NotFound(why)) => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("{} does not know ad account {account:?} for this connection: {why}", connection.destination),
            ),
            other => plugin_call_failed(&connection.destination, other),
        })?;
    Ok(axum::Json(AudiencePageView {
        audiences: page.audiences.into_iter().map(Into::into).collect(),
        next_cursor: page.next_cursor,
    }))
}
