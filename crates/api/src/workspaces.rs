//! Workspaces and their API keys. The operator creates a workspace and gets its first key in
//! the same answer (the only time the key is shown); more keys can be made and revoked, so a
//! key can be rotated without downtime.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use audience_store::{ApiKey, NewApiKey, Workspace};

use super::ApiState;
use super::error::{ApiError, ErrorBody};
use super::extract::{Json, Operator, Path, Query, Tenant};
use super::paging::PageQuery;
use super::secrets::{API_KEY_PREFIX, hash_secret, new_secret};

/// Longest name of a workspace, key or connection, in characters.
pub(crate) const MAX_NAME_CHARS: usize = 200;

/// A workspace.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkspaceView {
    /// Id, `ws_...`.
    id: String,
    /// Name.
    name: String,
    /// Creation time (ms since the Unix epoch).
    created_at: i64,
}

impl From<Workspace> for WorkspaceView {
    fn from(w: Workspace) -> Self {
        Self { id: w.id, name: w.name, created_at: w.created_at }
    }
}

/// A page of workspaces.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkspaceList {
    /// By id.
    workspaces: Vec<WorkspaceView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// A workspace to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateWorkspace {
    /// Name shown to people: 1 to 200 characters, not blank, no control characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// A new API key, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NewKeyView {
    /// Id, `key_...` (not a secret: it names the key for listing and revocation).
    id: String,
    /// The workspace the key acts for.
    workspace_id: String,
    /// Name.
    name: String,
    /// The key: send it as `Authorization: Bearer <key>`. Shown only now; only its hash is kept.
    key: String,
    /// Creation time (ms).
    created_at: i64,
}

/// A workspace just created, with its first key.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedWorkspace {
    /// The workspace.
    workspace: WorkspaceView,
    /// Its first API key, shown once.
    api_key: NewKeyView,
}

/// An API key as listed (never the key itself).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyView {
    /// Id, `key_...`.
    id: String,
    /// Name.
    name: String,
    /// Creation time (ms).
    created_at: i64,
}

impl From<ApiKey> for KeyView {
    fn from(k: ApiKey) -> Self {
        Self { id: k.id, name: k.name, created_at: k.created_at }
    }
}

/// A page of the API keys of a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyList {
    /// By id.
    keys: Vec<KeyView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// A key to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    /// Name shown in listings ("journey engine", "CI"): 1 to 200 characters, not blank, no
    /// control characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// A name must be non-blank and at most [`MAX_NAME_CHARS`].
pub(crate) fn check_name(field: &str, name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(ApiError::field(field, "empty; give a name people will recognise"));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::field(field, format!("longer than {MAX_NAME_CHARS} characters")));
    }
    Ok(name.to_string())
}

async fn make_key(state: &ApiState, workspace_id: &str, name: String) -> Result<NewKeyView, ApiError> {
    let key = new_secret(API_KEY_PREFIX).map_err(|e| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "internal", format!("no random source to make a key: {e}"))
    })?;
    let stored = state
        .engine
        .store()
        .create_api_key(NewApiKey { workspace_id: workspace_id.to_string(), name, key_hash: hash_secret(&key) })
        .await?;
    Ok(NewKeyView {
        id: stored.id,
        workspace_id: stored.workspace_id,
        name: stored.name,
        key,
        created_at: stored.created_at,
    })
}

/// Create a workspace and its first API key (operator).
#[utoipa::path(post, path = "/v1/workspaces", tag = "workspaces", security(("bearer" = [])),
    request_body = CreateWorkspace,
    responses(
        (status = 201, description = "Created; the key is shown only now", body = CreatedWorkspace),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)
    ))]
pub(crate) async fn create_workspace(
    _: Operator,
    State(state): State<Arc<ApiState>>,
    Json(body): Json<CreateWorkspace>,
) -> Result<(StatusCode, axum::Json<CreatedWorkspace>), ApiError> {
    let name = check_name("name", &body.name)?;
    let workspace = state.engine.store().create_workspace(&name).await?;
    let api_key = make_key(&state, &workspace.id, "default".into()).await?;
    tracing::info!(workspace = %workspace.id, key = %api_key.id, "workspace created");
    Ok((StatusCode::CREATED, axum::Json(CreatedWorkspace { workspace: workspace.into(), api_key })))
}

/// A page of the workspaces (operator), by id.
#[utoipa::path(get, path = "/v1/workspaces", tag = "workspaces", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = WorkspaceList),
        (status = 400, description = "`invalid_request`: `limit` out of 1 to 1000; `invalid_cursor`: not a cursor this listing gave out", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn list_workspaces(
    _: Operator,
    State(state): State<Arc<ApiState>>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<WorkspaceList>, ApiError> {
    let page = query.page("ws_")?;
    let found = state.engine.store().workspaces(page.after.as_deref(), page.fetch()).await?;
    let (workspaces, next_cursor) = page.cut(found, |w| w.id.as_str());
    Ok(axum::Json(WorkspaceList { workspaces: workspaces.into_iter().map(Into::into).collect(), next_cursor }))
}

/// One workspace (operator).
#[utoipa::path(get, path = "/v1/workspaces/{id}", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path, description = "Workspace id")),
    responses((status = 200, body = WorkspaceView), (status = 404, body = ErrorBody),
        (status = 422, description = "The id holds a control character", body = ErrorBody)))]
pub(crate) async fn get_workspace(
    _: Operator,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<axum::Json<WorkspaceView>, ApiError> {
    Ok(axum::Json(state.engine.store().workspace(&id).await?.into()))
}

/// Make another API key for a workspace (operator), e.g. to rotate keys.
#[utoipa::path(post, path = "/v1/workspaces/{id}/keys", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path, description = "Workspace id")),
    request_body = CreateKey,
    responses((status = 201, description = "Created; the key is shown only now", body = NewKeyView),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_key(
    _: Operator,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Json(body): Json<CreateKey>,
) -> Result<(StatusCode, axum::Json<NewKeyView>), ApiError> {
    let name = check_name("name", &body.name)?;
    let key = make_key(&state, &id, name).await?;
    tracing::info!(workspace = %id, key = %key.id, "API key created");
    Ok((StatusCode::CREATED, axum::Json(key)))
}

/// A page of the API keys of a workspace (operator), by id; never the keys themselves.
#[utoipa::path(get, path = "/v1/workspaces/{id}/keys", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path, description = "Workspace id"), PageQuery),
    responses((status = 200, body = KeyList),
        (status = 400, description = "`invalid_request`: `limit` out of 1 to 1000, or a path id not UTF-8; `invalid_cursor`: not a cursor this listing gave out", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "The id holds a control character", body = ErrorBody)))]
pub(crate) async fn list_keys(
    _: Operator,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<KeyList>, ApiError> {
    let page = query.page("key_")?;
    let found = state.engine.store().api_keys(&id, page.after.as_deref(), page.fetch()).await?;
    let (keys, next_cursor) = page.cut(found, |k| k.id.as_str());
    Ok(axum::Json(KeyList { keys: keys.into_iter().map(Into::into).collect(), next_cursor }))
}

/// Revoke an API key (operator): it stops working at once.
#[utoipa::path(delete, path = "/v1/workspaces/{id}/keys/{key_id}", tag = "workspaces", security(("bearer" = [])),
    params(("id" = String, Path, description = "Workspace id"), ("key_id" = String, Path, description = "Key id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody),
        (status = 422, description = "An id holds a control character", body = ErrorBody)))]
pub(crate) async fn delete_key(
    _: Operator,
    State(state): State<Arc<ApiState>>,
    Path((id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let store = state.engine.store();
    if !workspace_has_key(store.as_ref(), &id, &key_id).await? {
        return Err(ApiError::not_found("api key", &key_id));
    }
    store.delete_api_key(&key_id).await?;
    tracing::info!(workspace = %id, key = %key_id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Whether `key_id` is one of the workspace's keys (a workspace has few: a page or two).
async fn workspace_has_key(
    store: &dyn audience_store::Store,
    workspace_id: &str,
    key_id: &str,
) -> Result<bool, ApiError> {
    let mut after: Option<String> = None;
    loop {
        let keys = store.api_keys(workspace_id, after.as_deref(), audience_store::MAX_PAGE).await?;
        if keys.iter().any(|k| k.id == key_id) {
            return Ok(true);
        }
        match keys.last() {
            Some(last) if keys.len() == audience_store::MAX_PAGE as usize => after = Some(last.id.clone()),
            _ => return Ok(false),
        }
    }
}

/// The workspace of the calling key.
#[utoipa::path(get, path = "/v1/workspace", tag = "workspaces", security(("bearer" = [])),
    responses((status = 200, body = WorkspaceView), (status = 401, body = ErrorBody)))]
pub(crate) async fn current_workspace(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
) -> Result<axum::Json<WorkspaceView>, ApiError> {
    Ok(axum::Json(state.engine.store().workspace(&tenant.workspace_id).await?.into()))
}
