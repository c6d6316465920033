//! A sync's users, from its ledger: one user by key, the users in one state page by page, and
//! re-driving errored (or chosen) users.
//!
//! Why: "did user X reach the audience, and if not, why?" is the question operators ask most,
//! and after a partner incident or a fixed token errored users must be sent again without the
//! caller sending them again. The host keeps one ledger row per user of a sync (see the
//! store's `Store::member`), so these answers cost one index lookup or range, whatever the
//! number of users. Tenancy is as for every sync route: another workspace's sync is a 404.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use audience_store::{DEFAULT_PAGE, MAX_PAGE, Member, MemberCursor, MemberDetail, MemberState, Redrive};

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Path, Query, Tenant};
use super::syncs::owned_sync;

/// The most keys one re-drive call takes.
const MAX_KEYS: usize = 1_000;
/// The longest user key, in bytes (as intake's default `engine.intake.max_key_bytes`).
const MAX_KEY_BYTES: usize = 256;
/// The most events a user's answer shows.
const MAX_EVENTS: usize = 10;

/// Where a user of a sync is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum UserStateView {
    /// Entered with no usable match field: nothing was sent.
    NotSynced,
    /// Waiting for a batch or a retry.
    Pending,
    /// In a request to the partner right now.
    InFlight,
    /// In a request an asynchronous partner accepted and has not finished.
    Submitted,
    /// Accepted by the partner: in the audience as far as the host knows.
    Synced,
    /// Refused for good, or not delivered within the retry window (`last_error` says which).
    Errored,
    /// Their removal was asked: waiting for a removal request or a retry.
    Removing,
    /// In a removal request to the partner right now.
    RemovalInFlight,
    /// In a removal request an asynchronous partner accepted and has not finished.
    RemovalSubmitted,
    /// Removed from the audience by the host.
    Removed,
    /// The partner refused the removal for good, or it did not finish within the retry window
    /// (`last_error` says which); ask again with `POST /v1/syncs/{id}/users/remove`.
    RemovalErrored,
}

impl From<MemberState> for UserStateView {
    fn from(s: MemberState) -> Self {
        match s {
            MemberState::NotSynced => UserStateView::NotSynced,
            MemberState::Pending => UserStateView::Pending,
            MemberState::InFlight => UserStateView::InFlight,
            MemberState::Submitted => UserStateView::Submitted,
            MemberState::Synced => UserStateView::Synced,
            MemberState::Errored => UserStateView::Errored,
            MemberState::Removing => UserStateView::Removing,
            MemberState::RemovalInFlight => UserStateView::RemovalInFlight,
            MemberState::RemovalSubmitted => UserStateView::RemovalSubmitted,
            MemberState::Removed => UserStateView::Removed,
            MemberState::RemovalErrored => UserStateView::RemovalErrored,
        }
    }
}

/// A user of a sync, as its ledger says.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    /// The caller's key.
    key: String,
    /// Where the user is.
    state: UserStateView,
    /// When the user first entered the sync (ms).
    first_entered_at: i64,
    /// When the user last entered, or was last re-driven (ms); the retry window runs from here.
    entered_at: i64,
    /// Entries of this user (re-entries after being synced, errored or not synced, and
    /// re-drives, included).
    entries: u32,
    /// Delivery attempts of the current entry.
    attempts: u32,
    /// When the user was last put in a request to the partner (ms).
    last_attempt_at: Option<i64>,
    /// When the user became synced, errored or not synced (ms).
    done_at: Option<i64>,
    /// The last failure: why a retry was needed, why the user errored, or why they were not
    /// synced.
    last_error: Option<String>,
    /// The asynchronous partner's request that carries (or carried) the user.
    request_id: Option<String>,
    /// When the user's removal was last asked (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    removal_asked_at: Option<i64>,
    /// What follows the request the user is in: `remove` (their removal was asked while they
    /// were being added) or `add` (they entered again while being removed).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "remove")]
    then: Option<audience_store::SyncAction>,
}

impl From<Member> for UserView {
    fn from(m: Member) -> Self {
        Self {
            key: m.key,
            state: m.state.into(),
            first_entered_at: m.first_entered_at,
            entered_at: m.entered_at,
            entries: m.entries,
            attempts: m.attempts,
            last_attempt_at: m.last_attempt_at,
            done_at: m.done_at,
            last_error: m.last_error,
            request_id: m.submission,
            removal_asked_at: m.removal_asked_at,
            then: m.then,
        }
    }
}

/// Something that happened to a user.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserEventView {
    /// When (ms).
    at: i64,
    /// `entered` (first entry), `entered_again`, `sent` (put in a request), `submitted` (an
    /// asynchronous partner accepted the request), `synced`, `errored`, `not_synced`,
    /// `removal_asked`, `removed`, `removal_errored`, or `error` (a failure recorded for the
    /// user, from the sync's errors).
    kind: String,
    /// The reason of an `errored`, `not_synced` or `error` event; the request id of `submitted`.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

/// A user of a sync with what the host sends for them and what happened to them.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserDetailView {
    /// The user.
    #[serde(flatten)]
    user: UserView,
    /// What the host sends for the user: the prepared identifiers in the partner's format
    /// (hashed wherever the partner takes hashes), as the destination's plugin made them at
    /// entry; never the identifiers the caller sent. Absent for a user not synced.
    #[schema(value_type = Option<Object>)]
    sent: Option<serde_json::Value>,
    /// The last events, newest first (at most 10): from the user's ledger row and their last
    /// five recorded errors.
    events: Vec<UserEventView>,
}

fn detail_view(d: MemberDetail) -> UserDetailView {
    let m = &d.member;
    // (time, place in a user's life, event): sorted newest first, and in life order (reversed)
    // between events of the same millisecond.
    let event = |at: i64, rank: u8, kind: &str, detail: Option<String>| {
        (at, rank, UserEventView { at, kind: kind.into(), detail })
    };
    let mut events = vec![event(m.first_entered_at, 0, "entered", None)];
    if m.entries > 1 {
        events.push(event(m.entered_at, 1, "entered_again", None));
    }
    if let Some(at) = m.last_attempt_at {
        events.push(event(at, 2, "sent", None));
    }
    if let Some(request) = m.submission.clone() {
        let at = m.last_attempt_at.unwrap_or(m.entered_at);
        events.push(event(at, 3, "submitted", Some(request)));
    }
    if let Some(at) = m.removal_asked_at {
        events.push(event(at, 6, "removal_asked", None));
    }
    let finished = match m.state {
        MemberState::Synced => Some("synced"),
        MemberState::Errored => Some("errored"),
        MemberState::NotSynced => Some("not_synced"),
        MemberState::Removed => Some("removed"),
        MemberState::RemovalErrored => Some("removal_errored"),
        _ => None,
    };
    if let (Some(at), Some(kind)) = (m.done_at, finished) {
        let ok = matches!(m.state, MemberState::Synced | MemberState::Removed);
        let detail = (!ok).then(|| m.last_error.clone()).flatten();
        let rank = if m.removal_asked_at.is_some() { 7 } else { 5 };
        events.push(event(at, rank, kind, detail));
    }
    for e in &d.errors {
        // The error recorded with the user's `errored` outcome is that event already.
        let same = matches!(m.state, MemberState::Errored | MemberState::RemovalErrored)
            && m.done_at == Some(e.at)
            && m.last_error.as_ref() == Some(&e.reason);
        if !same {
            events.push(event(e.at, 4, "error", Some(e.reason.clone())));
        }
    }
    events.sort_by_key(|e| std::cmp::Reverse((e.0, e.1)));
    events.truncate(MAX_EVENTS);
    let sent = if d.payload.is_empty() { None } else { serde_json::from_slice(&d.payload).ok() };
    UserDetailView { user: d.member.into(), sent, events: events.into_iter().map(|(_, _, e)| e).collect() }
}

/// Which users of a sync to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserListQuery {
    /// The state listed: `not_synced`, `pending`, `in_flight`, `submitted`, `synced`,
    /// `errored`, `removing`, `removal_in_flight`, `removal_submitted`, `removed` or
    /// `removal_errored`.
    #[param(required = true, value_type = UserStateView)]
    state: Option<String>,
    /// Most users on the page: 1 to 1,000; 100 when left out.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page, unchanged; left out for the first page.
    cursor: Option<String>,
}

/// A page of a sync's users in one state.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserList {
    /// Oldest entry first.
    users: Vec<UserView>,
    /// Pass as `cursor` (with the same `state`) for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// Users to send again. Exactly one of `state` and `keys`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetryUsers {
    /// `errored`: every errored user of the sync.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "errored")]
    state: Option<String>,
    /// These users (1 to 1,000 keys), if synced or errored; others are skipped.
    #[serde(default)]
    #[schema(min_items = 1, max_items = 1000)]
    keys: Option<Vec<String>>,
}

/// What a re-drive did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RetryView {
    /// Users pending again, due now, with a fresh retry window (attempts 0); each counts as a
    /// new entry of the sync.
    retried: u64,
    /// Keys given that were not re-driven: unknown, not synced (nothing to send), or still
    /// being delivered.
    skipped: u64,
    /// Whether errored users are left (more errored users than one call re-drives: call again).
    more: bool,
}

fn state_named(name: &str) -> Option<MemberState> {
    MemberState::ALL.into_iter().find(|s| s.as_str() == name)
}

const STATES: &str = "not_synced, pending, in_flight, submitted, synced, errored, removing, removal_in_flight, \
     removal_submitted, removed or removal_errored";

/// The cursor of the page after `last`, in a listing of `state`.
fn encode_cursor(state: MemberState, last: &Member) -> String {
    hex::encode(format!("{}.{}.{}", state.as_str(), last.entered_at, last.seq))
}

fn decode_cursor(state: MemberState, cursor: &str) -> Option<MemberCursor> {
    let text = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    let mut parts = text.split('.');
    let (name, at, seq) = (parts.next()?, parts.next()?, parts.next()?);
    if name != state.as_str() || parts.next().is_some() {
        return None;
    }
    Some(MemberCursor { entered_at: at.parse().ok()?, seq: seq.parse().ok()? })
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
}

/// One user of a sync: state, times, attempts, last error, what is sent for them and their
/// last events.
#[utoipa::path(get, path = "/v1/syncs/{id}/users/{key}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sync id"),
        ("key" = String, Path, description = "The user's key, as sent at intake (URL-encoded)")),
    responses((status = 200, body = UserDetailView),
        (status = 404, description = "`not_found`: no such sync in the caller's workspace, or no user with that key in it \
            (never entered, or errored and pruned after `engine.ledger.errored_retention`)", body = ErrorBody)))]
pub(crate) async fn get_user(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path((id, key)): Path<(String, String)>,
) -> Result<axum::Json<UserDetailView>, ApiError> {
    let sync = owned_sync(&state, &tenant, &id).await?;
    let found = state.engine.store().member(&sync.id, &key).await?;
    Ok(axum::Json(detail_view(found)))
}

/// A page of a sync's users in one state, oldest entry first, with their last error. Each
/// page is one index range of the sync's ledger, whatever its size.
#[utoipa::path(get, path = "/v1/syncs/{id}/users", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sync id"), UserListQuery),
    responses((status = 200, body = UserList),
        (status = 400, description = "`invalid_request`: `state` missing or unknown, `limit` out of 1 to 1000, or a path id \
            not UTF-8; `invalid_cursor`: not a cursor this listing gave out for this state", body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn list_users(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(query): Query<UserListQuery>,
) -> Result<axum::Json<UserList>, ApiError> {
    let wanted = match query.state.as_deref() {
        None | Some("") => return Err(bad_request(format!("state: missing; list the users in one state: {STATES}"))),
        Some(name) => state_named(name)
            .ok_or_else(|| bad_request(format!("state: {name:?} is not a state; give one of {STATES}")))?,
    };
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(bad_request(format!(
            "limit: {limit} is out of bounds; ask for 1 to {MAX_PAGE} items (default {DEFAULT_PAGE})"
        )));
    }
    let after = match query.cursor.filter(|c| !c.is_empty()) {
        None => None,
        Some(cursor) => Some(decode_cursor(wanted, &cursor).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_cursor",
                "cursor: not one this listing gave out for this state; start again without `cursor` for the first \
                 page, then pass each answer's `next_cursor` unchanged with the same `state`",
            )
        })?),
    };
    let sync = owned_sync(&state, &tenant, &id).await?;
    let mut found = state.engine.store().members(&sync.id, wanted, after, limit + 1).await?;
    let next_cursor = if found.len() > limit as usize {
        found.truncate(limit as usize);
        found.last().map(|last| encode_cursor(wanted, last))
    } else {
        None
    };
    Ok(axum::Json(UserList { users: found.into_iter().map(Into::into).collect(), next_cursor }))
}

/// Send users again with a fresh retry window (after a partner incident, or once a
/// connection's token is fixed): every errored user (`{"state": "errored"}`), or the users of
/// `keys` that are synced or errored. They are pending at once, due now, with attempts reset;
/// the host sends what it prepared at their entry. Each counts as a new entry in the sync's
/// counts (`entered`, `pending`), so the counts stay conserved and never go down.
#[utoipa::path(post, path = "/v1/syncs/{id}/users/retry", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sync id")),
    request_body = RetryUsers,
    responses((status = 200, body = RetryView),
        (status = 404, body = ErrorBody),
        (status = 422, description = "`invalid_request`: neither or both of `state` and `keys`, a `state` other than \
            `errored`, no keys or more than 1,000, or a key blank, over 256 bytes or holding a control character", body = ErrorBody)))]
pub(crate) async fn retry_users(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Json(body): Json<RetryUsers>,
) -> Result<axum::Json<RetryView>, ApiError> {
    let which = match (body.state, body.keys) {
        (Some(s), None) if s == "errored" => Redrive::Errored,
        (Some(s), None) => {
            return Err(ApiError::field(
                "state",
                format!("{s:?}: only `errored` users are re-driven by state; give `keys` to re-drive synced users"),
            ));
        }
        (None, Some(keys)) => {
            if keys.is_empty() || keys.len() > MAX_KEYS {
                return Err(ApiError::field("keys", format!("{} keys; give 1 to {MAX_KEYS}", keys.len())));
            }
            if let Some((i, _)) = keys.iter().enumerate().find(|(_, k)| k.trim().is_empty() || k.len() > MAX_KEY_BYTES)
            {
                return Err(ApiError::field(
                    format!("keys[{i}]"),
                    format!("blank or over {MAX_KEY_BYTES} bytes; give the user's key as sent at intake"),
                ));
            }
            Redrive::Keys(keys)
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::field("state", "give either `state` or `keys`, not both"));
        }
        (None, None) => {
            return Err(ApiError::field(
                "state",
                "missing; give `{\"state\": \"errored\"}` to re-drive every errored user, or `{\"keys\": [...]}`",
            ));
        }
    };
    let sync = owned_sync(&state, &tenant, &id).await?;
    let done = state.engine.redrive(&sync, which).await?;
    tracing::info!(workspace = %tenant.workspace_id, sync = %sync.id, retried = done.users, "users re-driven");
    Ok(axum::Json(RetryView { retried: done.users, skipped: done.skipped, more: done.more }))
}

/// Users whose removal is asked, by key only.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RemoveUsers {
    /// The users' keys, as sent at intake (1 to 10,000).
    #[schema(min_items = 1, max_items = 10000)]
    keys: Vec<String>,
}

/// A key whose removal was not queued, and why.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SkippedUserView {
    /// The key.
    key: String,
    /// `unknown` (not in the sync's ledger: never entered, or pruned), `not_synced` (nothing
    /// was sent for them), `already_removing`, `already_removed`, or `busy` (they entered again
    /// while their removal is in a request: ask again once it finished).
    reason: String,
}

/// What a removal call did.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RemoveView {
    /// Users whose removal is now queued: sent in the sync's next removal batch, or right
    /// after the add they are in (follow them with `GET /v1/syncs/{id}/users/{key}`).
    removing: u64,
    /// The keys not queued, each once, in the order given.
    skipped: Vec<SkippedUserView>,
}

/// Remove users from the sync's audience by key alone (a journey's "exit" step): the host
/// sends the partner's remove call with the identifiers it sent when it added them, as the
/// plugin prepared them (hashed where the partner takes hashes). Synced and errored users (and
/// users whose removal failed) are queued for removal, due after the flush interval, sent in
/// batches of their own before the sync's adds and paced like every request; a user still
/// being added is removed right after that request. Progress shows in the sync's counts
/// (`removing`, `removed`, `removal_errored`, `in_audience`) and in each user's state. A user
/// who enters the sync again afterwards is added again.
#[utoipa::path(post, path = "/v1/syncs/{id}/users/remove", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "Sync id")),
    request_body = RemoveUsers,
    responses((status = 202, body = RemoveView),
        (status = 404, body = ErrorBody),
        (status = 422, description = "`invalid_request`: no keys or more than 10,000, a key blank, over 256 bytes or \
            holding a control character, or a sync that removes users (enter users into it instead)", body = ErrorBody)))]
pub(crate) async fn remove_users(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Json(body): Json<RemoveUsers>,
) -> Result<(StatusCode, axum::Json<RemoveView>), ApiError> {
    if let Some((i, _)) = body
        .keys
        .iter()
        .enumerate()
        .find(|(_, k)| k.trim().is_empty() || k.len() > MAX_KEY_BYTES || k.chars().any(char::is_control))
    {
        return Err(ApiError::field(
            format!("keys[{i}]"),
            format!(
                "blank, over {MAX_KEY_BYTES} bytes or holding a control character; give the user's key as sent at intake"
            ),
        ));
    }
    let sync = owned_sync(&state, &tenant, &id).await?;
    let done = state.engine.remove_users(&sync, body.keys).await?;
    tracing::info!(workspace = %tenant.workspace_id, sync = %sync.id, removing = done.removing, "users' removal asked");
    let skipped =
        done.skipped.into_iter().map(|(key, why)| SkippedUserView { key, reason: why.as_str().into() }).collect();
    Ok((StatusCode::ACCEPTED, axum::Json(RemoveView { removing: done.removing, skipped })))
}

/// `path` as logged: a user's key (`/v1/syncs/{id}/users/{key}`) is the caller's id for a
/// person, so it is replaced by `{key}`.
pub(crate) fn logged_path(path: &str) -> std::borrow::Cow<'_, str> {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["", "v1", "syncs", id, "users", key, ..] if !matches!(*key, "retry" | "remove" | "") => {
            format!("/v1/syncs/{id}/users/{{key}}").into()
        }
        _ => path.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_users_key_is_not_logged() {
        assert_eq!(logged_path("/v1/syncs/sync_1/users/crm%2F42"), "/v1/syncs/sync_1/users/{key}");
        assert_eq!(logged_path("/v1/syncs/sync_1/users/a/b"), "/v1/syncs/sync_1/users/{key}");
        for kept in [
            "/v1/syncs/sync_1/users",
            "/v1/syncs/sync_1/users/retry",
            "/v1/syncs/sync_1/users/remove",
            "/v1/syncs/sync_1",
            "/healthz",
        ] {
            assert_eq!(logged_path(kept), kept);
        }
    }

    #[test]
    fn a_cursor_is_bound_to_its_state() {
        let last = Member {
            key: "k".into(),
            state: MemberState::Synced,
            seq: 42,
            first_entered_at: 1,
            entered_at: 1_700_000_000_000,
            entries: 1,
            attempts: 1,
            last_attempt_at: None,
            done_at: None,
            last_error: None,
            submission: None,
            removal_asked_at: None,
            then: None,
        };
        let cursor = encode_cursor(MemberState::Synced, &last);
        assert_eq!(
            decode_cursor(MemberState::Synced, &cursor),
            Some(MemberCursor { entered_at: 1_700_000_000_000, seq: 42 })
        );
        assert_eq!(decode_cursor(MemberState::Errored, &cursor), None, "another state's cursor");
        for bad in ["zz", "", &hex::encode("synced.1"), &hex::encode("synced.a.b"), &hex::encode("synced.1.2.3")] {
            assert_eq!(decode_cursor(MemberState::Synced, bad), None, "{bad}");
        }
    }
}
