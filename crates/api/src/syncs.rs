//! Syncs and user intake.
//!
//! A sync's answer carries its live counts by name (entered, proceeded, synced, not synced,
//! pending, errored), so a caller sees where every user it sent is. Intake checks the whole
//! call before anything is stored — a refused call changes nothing — and answers only after
//! the accepted users are durable, with who was not synced and why.

use audience_runtime::types::{Consent, ConsentStatus};
use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use audience_store::{Counts, IdentifierKind, Reentry, SyncAction, SyncRecord, SyncStatus, UserError};

use super::ApiState;
use super::connections::RATE_LIMITED;
use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Path, Query, Tenant};
use super::paging::PageQuery;
use audience_engine::{IdentifierInput, IntakeReport, SyncRequest, UserInput};

/// How many recent errors a sync's answer shows.
const RECENT_ERRORS: usize = 10;

/// A sync's state.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusView {
    /// Delivering.
    Active,
    /// Paused by a person: users are accepted and queued, nothing is sent.
    Paused,
    /// The partner says the account or audience is gone (see `status_reason`); deliveries
    /// keep retrying until their window ends.
    Broken,
    /// The destination's plugin failed several calls in a row (see `status_reason` and
    /// `recent_errors`); deliveries keep retrying with backoff, and the first call that works
    /// makes the sync active again.
    Degraded,
}

impl From<SyncStatus> for StatusView {
    fn from(s: SyncStatus) -> Self {
        match s {
            SyncStatus::Active => StatusView::Active,
            SyncStatus::Paused => StatusView::Paused,
            SyncStatus::Broken => StatusView::Broken,
            SyncStatus::Degraded => StatusView::Degraded,
        }
    }
}

/// Where a sync's users are. `entered = not_synced + pending + submitted + synced + errored`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CountsView {
    /// Entries (queued or not synced): a user entering again after being synced, errored or
    /// not synced, or re-driven, is a new entry. Distinct users are `users`.
    entered: u64,
    /// Distinct users in the sync's ledger (`GET /v1/syncs/{id}/users`); errored users leave
    /// it once pruned (`engine.ledger.errored_retention`).
    users: u64,
    /// Users the intake accepted (the caller's journey moved on), including re-entries.
    proceeded: u64,
    /// Accepted by the partner.
    synced: u64,
    /// No usable match field (decided at entry).
    not_synced: u64,
    /// Waiting for delivery, including the users in a request right now (`in_flight`).
    pending: u64,
    /// In a request to the partner right now (part of `pending`).
    in_flight: u64,
    /// Sent in a request an asynchronous partner (Google) accepted but has not finished: the
    /// host asks how it went and then counts each user synced or errored. Neither pending nor
    /// synced; always 0 for partners that answer at once.
    submitted: u64,
    /// Refused by the partner for good, or not delivered within the retry window.
    errored: u64,
    /// Re-entries of a user already pending, not queued twice.
    deduplicated: u64,
    /// Delivery attempts that will be retried.
    retries: u64,
    /// Distinct users the host knows to be in the audience now: synced by their last delivery
    /// and not removed since (a user entering again is pending until sent again). Beside it,
    /// on a single sync's answer, `partner_audience.size` is what the partner reports (often
    /// rounded, or a range, and it may count users the host did not add). `null` for a sync
    /// that removes users.
    in_audience: Option<u64>,
    /// Distinct users whose removal was asked (`POST /v1/syncs/{id}/users/remove`) and is not
    /// finished: waiting, in a request, or following the add they are in.
    removing: u64,
    /// Distinct users the host removed (until they enter again, or are pruned after
    /// `engine.ledger.errored_retention`).
    removed: u64,
    /// Distinct users whose removal the partner refused, or that did not finish within the
    /// retry window (ask again to retry).
    removal_errored: u64,
    /// Re-entries of users already synced that were not sent again (re-entry policy `skip`);
    /// like `deduplicated`, not entries.
    already_in_audience: u64,
}

impl From<Counts> for CountsView {
    fn from(c: Counts) -> Self {
        Self {
            entered: c.entered,
            users: c.users,
            proceeded: c.proceeded,
            synced: c.synced,
            not_synced: c.not_synced,
            pending: c.pending + c.in_flight,
            in_flight: c.in_flight,
            submitted: c.submitted,
            errored: c.errored,
            deduplicated: c.deduplicated,
            retries: c.retries,
            in_audience: Some(c.in_audience),
            removing: c.removing,
            removed: c.removed,
            removal_errored: c.removal_errored,
            already_in_audience: c.already_in_audience,
        }
    }
}

/// An errored user and why.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserErrorView {
    /// The caller's key; absent for an error of a whole call (the plugin failed for a batch:
    /// its users are retried, not errored).
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// Why.
    reason: String,
    /// When (ms).
    at: i64,
}

impl From<UserError> for UserErrorView {
    fn from(e: UserError) -> Self {
        Self { key: Some(e.key).filter(|key| !key.is_empty()), reason: e.reason, at: e.at }
    }
}

/// A sync: its settings, state and live counts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SyncView {
    /// Id, `sync_...`.
    id: String,
    /// The connection it delivers with.
    connection_id: String,
    /// Destination name.
    destination: String,
    /// The partner ad account.
    account_id: String,
    /// The audience's name.
    audience_name: String,
    /// Description set when the audience is created.
    audience_description: Option<String>,
    /// Whether the audience is created when missing.
    create_if_missing: bool,
    /// The partner's audience handle, once known.
    audience_id: Option<String>,
    /// Add or remove.
    action: SyncAction,
    /// Identifier kinds matched on, in priority order.
    match_fields: Vec<IdentifierKind>,
    /// What a user entering again while synced becomes: `resend` or `skip`.
    reentry: Reentry,
    /// Active, paused or broken.
    status: StatusView,
    /// Why it is paused or broken.
    status_reason: Option<String>,
    /// Whether its connection's credentials work: `ok` or `needs_reauthorization` (users
    /// stay pending until the connection is authorized again).
    connection_health: Option<super::connections::HealthView>,
    /// Where its users are.
    counts: CountsView,
    /// The most recent errored users (on a single sync's answer only).
    #[serde(skip_serializing_if = "Option::is_none")]
    recent_errors: Option<Vec<UserErrorView>>,
    /// The audience as the partner reports it: size and state (on a single sync's answer
    /// only, once the audience is known; read at most every 10 minutes).
    #[serde(skip_serializing_if = "Option::is_none")]
    partner_audience: Option<PartnerAudienceView>,
    /// Creation time (ms).
    created_at: i64,
}

/// What the partner last reported about a sync's audience.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PartnerAudienceView {
    /// The audience, with the partner's size and state.
    #[serde(flatten)]
    audience: super::audiences::AudienceView,
    /// When the partner was asked (ms).
    read_at: i64,
}

/// A page of syncs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SyncList {
    /// By id.
    syncs: Vec<SyncView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

fn yes() -> bool {
    true
}

/// A sync to create. Every problem is reported at once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateSync {
    /// The connection to deliver with (`GET /v1/connections`).
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    connection_id: String,
    /// The partner ad account (`GET /v1/connections/{id}/accounts`).
    #[serde(default)]
    #[schema(required = true, min_length = 1)]
    account_id: String,
    /// The audience, by name: found, or created when `create_if_missing`.
    #[serde(default)]
    audience_name: String,
    /// The partner's handle of an existing audience, when one was picked.
    #[serde(default)]
    audience_id: Option<String>,
    /// Description for a created audience. It may hold line breaks and tabs (no other
    /// control characters; every other string field holds none).
    #[serde(default)]
    description: Option<String>,
    /// Create the audience when none has that name. Default true.
    #[serde(default = "yes")]
    create_if_missing: bool,
    /// `add` (default) or `remove`.
    #[serde(default)]
    action: SyncAction,
    /// What a user entering again while the host knows them to be in the audience becomes:
    /// `resend` (default: sent again; partners' adds are idempotent) or `skip` (not sent, counted
    /// in `counts.already_in_audience`). `skip` is for syncs that add users.
    #[serde(default)]
    reentry: Reentry,
    /// Identifier kinds to match on, in priority order, each once; the destination lists the
    /// ones it supports in `identifiers` (`GET /v1/destinations`).
    #[serde(default)]
    #[schema(required = true, value_type = Vec<IdentifierKind>, min_items = 1)]
    match_fields: Vec<String>,
}

/// One identifier of a user.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdentifierIn {
    /// A kind's name: "email", "phone", "mobile-ad-id", "idfa", "external-id", "first-name",
    /// "last-name", "date-of-birth" (YYYY-MM-DD), "gender", "city", "region", "postal-code" or
    /// "country"; the destination lists the ones it matches on.
    #[schema(value_type = IdentifierKind)]
    kind: String,
    /// The value, as the caller has it (the plugin normalises and hashes it): not blank, at
    /// most 1,024 bytes of UTF-8 (`engine.intake.max_value_bytes`), no control characters.
    #[schema(min_length = 1, max_length = 1024)]
    value: String,
}

/// A user entering a sync.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserIn {
    /// The caller's stable id for the user: not blank, at most 256 bytes of UTF-8
    /// (`engine.intake.max_key_bytes`), no control characters.
    #[schema(min_length = 1, max_length = 256)]
    key: String,
    /// At least one identifier.
    #[schema(min_items = 1)]
    identifiers: Vec<IdentifierIn>,
    /// Consent signals, for partners that take them (Google, for users in the EEA).
    #[serde(default)]
    consent: Option<ConsentIn>,
}

/// A user's consent signals; each absent or `unspecified` when not recorded.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConsentIn {
    /// Consent to send the user's data for advertising.
    #[serde(default)]
    ad_user_data: ConsentValue,
    /// Consent to personalised advertising.
    #[serde(default)]
    ad_personalization: ConsentValue,
}

/// One consent signal.
#[derive(Debug, Default, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ConsentValue {
    /// Not recorded.
    #[default]
    Unspecified,
    /// Granted.
    Granted,
    /// Denied.
    Denied,
}

impl From<ConsentValue> for ConsentStatus {
    fn from(value: ConsentValue) -> Self {
        match value {
            ConsentValue::Unspecified => ConsentStatus::Unspecified,
            ConsentValue::Granted => ConsentStatus::Granted,
            ConsentValue::Denied => ConsentStatus::Denied,
        }
    }
}

impl From<UserIn> for UserInput {
    fn from(user: UserIn) -> Self {
        let identifiers =
            user.identifiers.into_iter().map(|id| IdentifierInput { kind: id.kind, value: id.value }).collect();
        let consent = user
            .consent
            .map(|c| Consent { ad_user_data: c.ad_user_data.into(), ad_personalization: c.ad_personalization.into() });
        UserInput { key: user.key, identifiers, consent }
    }
}

/// Users entering a sync: 1 to 10,000 per call.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnterUsers {
    /// The users: 1 to 10,000 (`engine.intake.max_users_per_call`).
    #[schema(min_items = 1, max_items = 10000)]
    users: Vec<UserIn>,
}

/// A user that was not synced, and why.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NotSyncedView {
    /// The caller's key.
    key: String,
    /// Why (e.g. "no usable email").
    reason: String,
}

/// What an intake call did. The accepted users are durably queued.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IntakeView {
    /// Users accepted: newly queued, already pending and not queued twice, or already in the
    /// audience and not sent again.
    accepted: u64,
    /// Newly queued.
    queued: u64,
    /// Already pending in this sync; not queued twice.
    deduplicated: u64,
    /// Already synced and not sent again: the sync's `reentry` is `skip`.
    already_in_audience: u64,
    /// Users with no usable match field: counted, not sent.
    not_synced: u64,
    /// Who was not synced, and why.
    not_synced_users: Vec<NotSyncedView>,
}

impl From<IntakeReport> for IntakeView {
    fn from(r: IntakeReport) -> Self {
        Self {
            accepted: r.accepted,
            queued: r.queued,
            deduplicated: r.deduplicated,
            already_in_audience: r.already_in_audience,
            not_synced: r.not_synced,
            not_synced_users: r
                .not_synced_users
                .into_iter()
                .map(|u| NotSyncedView { key: u.key, reason: u.reason })
                .collect(),
        }
    }
}

/// A sync of the caller's workspace, or 404 (also for another workspace's).
pub(crate) async fn owned_sync(state: &ApiState, tenant: &Tenant, id: &str) -> Result<SyncRecord, ApiError> {
    match state.engine.store().sync(id).await {
        Ok(s) if s.workspace_id == tenant.workspace_id => Ok(s),
        Ok(_) | Err(audience_store::StoreError::NotFound { .. }) => Err(ApiError::not_found("sync", id)),
        Err(other) => Err(other.into()),
    }
}

/// The health of a connection, `None` once it is gone.
async fn connection_health(
    state: &ApiState,
    connection_id: &str,
) -> Result<Option<super::connections::HealthView>, ApiError> {
    match state.engine.store().connection(connection_id).await {
        Ok(c) => Ok(Some(c.health.into())),
        Err(audience_store::StoreError::NotFound { .. }) => Ok(None),
        Err(other) => Err(other.into()),
    }
}

async fn view(state: &ApiState, sync: SyncRecord, with_errors: bool) -> Result<SyncView, ApiError> {
    let store = state.engine.store();
    let counts = store.counts(&sync.id).await?;
    let connection_health = connection_health(state, &sync.connection_id).await?;
    let recent_errors = if with_errors {
        Some(store.recent_errors(&sync.id, RECENT_ERRORS).await?.into_iter().map(Into::into).collect())
    } else {
        None
    };
    let partner_audience = if with_errors {
        state
            .engine
            .audience_status(&sync)
            .await
            .map(|s| PartnerAudienceView { audience: s.audience.into(), read_at: s.read_at_ms })
    } else {
        None
    };
    Ok(listed(sync, counts, connection_health, recent_errors, partner_audience))
}

/// A sync's answer from what was read about it.
fn listed(
    sync: SyncRecord,
    counts: Counts,
    connection_health: Option<super::connections::HealthView>,
    recent_errors: Option<Vec<UserErrorView>>,
    partner_audience: Option<PartnerAudienceView>,
) -> SyncView {
    SyncView {
        id: sync.id,
        connection_id: sync.connection_id,
        destination: sync.destination,
        account_id: sync.account_id,
        audience_name: sync.audience.name,
        audience_description: sync.audience.description,
        create_if_missing: sync.audience.create_if_missing,
        audience_id: sync.audience_id,
        action: sync.action,
        match_fields: sync.match_fields,
        reentry: sync.reentry,
        status: sync.status.into(),
        status_reason: sync.status_reason,
        connection_health,
        counts: CountsView {
            in_audience: (sync.action == SyncAction::Add).then_some(counts.in_audience),
            ..CountsView::from(counts)
        },
        recent_errors,
        partner_audience,
        created_at: sync.created_at,
    }
}

/// Create a sync. Every setting is checked first, and every problem is listed at once.
#[utoipa::path(post, path = "/v1/syncs", tag = "syncs", security(("bearer" = [])),
    request_body = CreateSync,
    responses((status = 201, body = SyncView), (status = 401, body = ErrorBody),
        (status = 422, description = "Every problem, by field (control characters are refused everywhere but in `description`), \
            including what the destination found checking the account, audience and match fields (`check-target`)", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the connection's turn, rounded up"))),
        (status = 502, description = "The destination could not be asked to check the target; nothing was created, try again", body = ErrorBody)))]
pub(crate) async fn create_sync(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Json(body): Json<CreateSync>,
) -> Result<(StatusCode, axum::Json<SyncView>), ApiError> {
    let missing_connection = body.connection_id.trim().is_empty();
    let request = SyncRequest {
        workspace_id: tenant.workspace_id.clone(),
        connection_id: body.connection_id.trim().to_string(),
        account_id: body.account_id,
        audience_name: body.audience_name,
        audience_id: body.audience_id.filter(|a| !a.trim().is_empty()),
        description: body.description,
        create_if_missing: body.create_if_missing,
        action: body.action,
        match_fields: body.match_fields,
        reentry: body.reentry,
    };
    let sync = state.engine.create_sync(request).await.map_err(|err| match err {
        audience_engine::EngineError::Invalid(mut problems) => {
            if missing_connection {
                for p in problems.iter_mut().filter(|p| p.field == "connection_id") {
                    p.message = "missing; give the id of a connection of this workspace (GET /v1/connections)".into();
                }
            }
            ApiError::invalid(problems)
        }
        other => other.into(),
    })?;
    tracing::info!(workspace = %tenant.workspace_id, sync = %sync.id, "sync created");
    Ok((StatusCode::CREATED, axum::Json(view(&state, sync, false).await?)))
}

/// A page of the workspace's syncs, by id, with their counts: three store reads a page (the
/// syncs, their counts, their connections' health), whatever the page's size.
#[utoipa::path(get, path = "/v1/syncs", tag = "syncs", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = SyncList),
        (status = 400, description = "`invalid_request`: `limit` out of 1 to 1000; `invalid_cursor`: not a cursor this listing gave out", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn list_syncs(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<SyncList>, ApiError> {
    let page = query.page("sync_")?;
    let store = state.engine.store();
    let found = store.syncs(&tenant.workspace_id, page.after.as_deref(), page.fetch()).await?;
    let (syncs, next_cursor) = page.cut(found, |s| s.id.as_str());
    let ids: Vec<String> = syncs.iter().map(|s| s.id.clone()).collect();
    let mut counts: HashMap<String, Counts> = store.counts_of(&ids).await?.into_iter().collect();
    let mut connection_ids: Vec<String> = syncs.iter().map(|s| s.connection_id.clone()).collect();
    connection_ids.sort_unstable();
    connection_ids.dedup();
    let health: HashMap<String, Option<super::connections::HealthView>> =
        store.connections_by_id(&connection_ids).await?.into_iter().map(|c| (c.id, Some(c.health.into()))).collect();
    let views = syncs
        .into_iter()
        // A sync deleted between the two reads has no counts: left out, as it would be a moment later.
        .filter_map(|sync| {
            let counts = counts.remove(&sync.id)?;
            let health = health.get(&sync.connection_id).cloned().flatten();
            Some(listed(sync, counts, health, None, None))
        })
        .collect();
    Ok(axum::Json(SyncList { syncs: views, next_cursor }))
}

/// A sync: settings, status, live counts and its most recent errors.
#[utoipa::path(get, path = "/v1/syncs/{id}", tag = "syncs", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sync id")),
    responses((status = 200, body = SyncView), (status = 404, body = ErrorBody),
        (status = 422, description = "The id holds a control character", body = ErrorBody)))]
pub(crate) async fn get_sync(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<axum::Json<SyncView>, ApiError> {
    let sync = owned_sync(&state, &tenant, &id).await?;
    Ok(axum::Json(view(&state, sync, true).await?))
}

/// Pause a sync: users are still accepted and queued, nothing is sent.
#[utoipa::path(post, path = "/v1/syncs/{id}/pause", tag = "syncs", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sync id")),
    responses((status = 200, body = SyncView), (status = 404, body = ErrorBody),
        (status = 422, description = "The id holds a control character", body = ErrorBody)))]
pub(crate) async fn pause_sync(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<axum::Json<SyncView>, ApiError> {
    set_paused(&state, &tenant, &id, true).await
}

/// Resume a paused (or broken) sync.
#[utoipa::path(post, path = "/v1/syncs/{id}/resume", tag = "syncs", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sync id")),
    responses((status = 200, body = SyncView), (status = 404, body = ErrorBody),
        (status = 422, description = "The id holds a control character", body = ErrorBody)))]
pub(crate) async fn resume_sync(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<axum::Json<SyncView>, ApiError> {
    set_paused(&state, &tenant, &id, false).await
}

async fn set_paused(
    state: &ApiState,
    tenant: &Tenant,
    id: &str,
    paused: bool,
) -> Result<axum::Json<SyncView>, ApiError> {
    let sync = owned_sync(state, tenant, id).await?;
    let sync = state.engine.set_paused(&sync.id, paused).await?;
    tracing::info!(workspace = %tenant.workspace_id, sync = %sync.id, paused, "sync paused or resumed");
    Ok(axum::Json(view(state, sync, false).await?))
}

/// Delete a sync, its queue and its counts. Users still pending are dropped. It answers at once
/// whatever the backlog: the sync is gone and sends nothing from then on, and its users are
/// removed from the store in the background.
#[utoipa::path(delete, path = "/v1/syncs/{id}", tag = "syncs", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sync id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 422, description = "The id holds a control character", body = ErrorBody)))]
pub(crate) async fn delete_sync(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let sync = owned_sync(&state, &tenant, &id).await?;
    state.engine.delete_sync(&sync.id).await?;
    tracing::info!(workspace = %tenant.workspace_id, sync = %sync.id, "sync deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Users enter a sync (1 to 10,000 per call). The whole call is checked first: a refused call
/// stores nothing. The answer comes after the accepted users are durable, and says who was
/// not synced and why.
#[utoipa::path(post, path = "/v1/syncs/{id}/users", tag = "syncs", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sync id")),
    request_body = EnterUsers,
    responses(
        (status = 200, description = "Accepted users are durably queued", body = IntakeView),
        (status = 400, description = "Malformed JSON or not UTF-8", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Not JSON", body = ErrorBody),
        (status = 422, description = "Every problem with the users, by field (control characters in a key or value, or in the id)", body = ErrorBody)
    ))]
pub(crate) async fn enter_users(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Json(body): Json<EnterUsers>,
) -> Result<axum::Json<IntakeView>, ApiError> {
    let sync = owned_sync(&state, &tenant, &id).await?;
    let users = body.users.into_iter().map(UserInput::from).collect();
    let report = state.engine.enter(&sync, users).await?;
    Ok(axum::Json(report.into()))
}
