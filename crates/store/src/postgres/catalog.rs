//! Workspaces, connections, syncs, API keys and OAuth states: the small, rarely written part
//! of the store. Each function does one operation of the [`Store`] trait on a client or inside
//! the caller's transaction.
//!
//! [`Store`]: crate::Store

use tokio_postgres::types::FromSql;
use tokio_postgres::{GenericClient, Row};

use super::{Ctx, Fail};
use crate::crypto::CredentialKey;
use crate::ids::new_id;
use crate::{
    ApiKey, AudienceConfig, Connection as ConnectionRecord, ConnectionHealth, Counts, Health, NewApiKey, NewConnection,
    NewSync, OAUTH_STATE_RETENTION_MS, OauthState, Reentry, StoreError, SyncAction, SyncFigures, SyncRecord,
    SyncStatus, Workspace,
};

type Res<T> = Result<T, Fail>;

/// Column `i` of `row`, or a database error naming it.
pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Res<T> {
    row.try_get(i).ctx(&format!("decoding column {i}"))
}

/// A stored value that does not decode (edited by hand, or written by a newer build).
fn unknown(what: &str, value: &str) -> Fail {
    StoreError::Database(format!("unknown {what} {value:?} in the database")).into()
}

pub(crate) fn not_found(kind: &'static str, id: &str) -> Fail {
    StoreError::NotFound { kind, id: id.to_owned() }.into()
}

// ---- workspaces ----

pub(crate) async fn create_workspace<C: GenericClient + Sync>(c: &C, name: &str, now: i64) -> Res<Workspace> {
    let id = new_id("ws_")?;
    c.execute("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)", &[&id, &name, &now])
        .await
        .ctx("creating a workspace")?;
    Ok(Workspace { id, name: name.to_owned(), created_at: now })
}

pub(crate) async fn workspace<C: GenericClient + Sync>(c: &C, id: &str) -> Res<Workspace> {
    let row = c
        .query_opt("SELECT id, name, created_at FROM workspaces WHERE id = $1", &[&id])
        .await
        .ctx("reading a workspace")?
        .ok_or_else(|| not_found("workspace", id))?;
    workspace_from_row(&row)
}

pub(crate) async fn workspaces<C: GenericClient + Sync>(c: &C, after: Option<&str>, limit: u32) -> Res<Vec<Workspace>> {
    c.query(
        "SELECT id, name, created_at FROM workspaces WHERE id > $1 ORDER BY id LIMIT $2",
        &[&after.unwrap_or(""), &i64::from(limit)],
    )
    .await
    .ctx("listing workspaces")?
    .iter()
    .map(workspace_from_row)
    .collect()
}

fn workspace_from_row(row: &Row) -> Res<Workspace> {
    Ok(Workspace { id: get(row, 0)?, name: get(row, 1)?, created_at: get(row, 2)? })
}

// ---- connections ----

const CONNECTION_COLUMNS: &str = "id, workspace_id, destination, name, credentials, \
     credentials_version, health, last_error, created_at, updated_at";

pub(crate) async fn create_connection<C: GenericClient + Sync>(
    c: &C,
    key: &CredentialKey,
    new: NewConnection,
    now: i64,
) -> Res<ConnectionRecord> {
    workspace(c, &new.workspace_id).await?;
    let id = new_id("conn_")?;
    let sealed = key.seal(&id, &new.credentials)?;
    c.execute(
        "INSERT INTO connections (id, workspace_id, destination, name, credentials, \
         credentials_version, health, last_error, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, 1, 'ok', NULL, $6, $6)",
        &[&id, &new.workspace_id, &new.destination, &new.name, &sealed, &now],
    )
    .await
    .ctx("creating a connection")?;
    Ok(ConnectionRecord {
        id,
        workspace_id: new.workspace_id,
        destination: new.destination,
        name: new.name,
        credentials: new.credentials,
        credentials_version: 1,
        health: Health::Ok,
        last_error: None,
        created_at: now,
        updated_at: now,
    })
}

pub(crate) async fn connection<C: GenericClient + Sync>(c: &C, key: &CredentialKey, id: &str) -> Res<ConnectionRecord> {
    let sql = format!("SELECT {CONNECTION_COLUMNS} FROM connections WHERE id = $1");
    let row =
        c.query_opt(&sql, &[&id]).await.ctx("reading a connection")?.ok_or_else(|| not_found("connection", id))?;
    connection_from_row(&row, key)
}

pub(crate) async fn connections<C: GenericClient + Sync>(
    c: &C,
    key: &CredentialKey,
    workspace_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Res<Vec<ConnectionRecord>> {
    workspace(c, workspace_id).await?;
    let sql = format!(
        "SELECT {CONNECTION_COLUMNS} FROM connections WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    );
    c.query(&sql, &[&workspace_id, &after.unwrap_or(""), &i64::from(limit)])
        .await
        .ctx("listing connections")?
        .iter()
        .map(|row| connection_from_row(row, key))
        .collect()
}

pub(crate) async fn update_credentials<C: GenericClient + Sync>(
    c: &C,
    key: &CredentialKey,
    id: &str,
    credentials: &[u8],
    now: i64,
) -> Res<ConnectionRecord> {
    let sealed = key.seal(id, credentials)?;
    let changed = c
        .execute(
            "UPDATE connections SET credentials = $2, credentials_version = credentials_version + 1, \
             health = 'ok', last_error = NULL, updated_at = $3 WHERE id = $1",
            &[&id, &sealed, &now],
        )
        .await
        .ctx("updating credentials")?;
    if changed == 0 {
        return Err(not_found("connection", id));
    }
    connection(c, key, id).await
}

pub(crate) async fn set_connection_health<C: GenericClient + Sync>(
    c: &C,
    id: &str,
    health: Health,
    last_error: Option<&str>,
    now: i64,
) -> Res<()> {
    let changed = c
        .execute(
            "UPDATE connections SET health = $2, last_error = $3, updated_at = $4 WHERE id = $1",
            &[&id, &health_text(health), &last_error, &now],
        )
        .await
        .ctx("setting a connection's health")?;
    if changed == 0 {
        return Err(not_found("connection", id));
    }
    Ok(())
}

pub(crate) async fn delete_connection<C: GenericClient + Sync>(c: &C, id: &str) -> Res<()> {
    // Live syncs first: they are the ones a person must delete.
    let users: Vec<(String, bool)> = c
        .query(
            "SELECT id, deleted_at IS NOT NULL FROM syncs WHERE connection_id = $1 \
             ORDER BY deleted_at IS NOT NULL, no LIMIT 6",
            &[&id],
        )
        .await
        .ctx("checking which syncs use a connection")?
        .iter()
        .map(|row| Ok((get(row, 0)?, get(row, 1)?)))
        .collect::<Res<_>>()?;
    if let Some(conflict) = crate::deletion::in_use_conflict(id, &users) {
        return Err(conflict.into());
    }
    let changed = c.execute("DELETE FROM connections WHERE id = $1", &[&id]).await.ctx("deleting a connection")?;
    if changed == 0 {
        return Err(not_found("connection", id));
    }
    Ok(())
}

fn connection_from_row(row: &Row, key: &CredentialKey) -> Res<ConnectionRecord> {
    let id: String = get(row, 0)?;
    let sealed: Vec<u8> = get(row, 4)?;
    let health: String = get(row, 6)?;
    Ok(ConnectionRecord {
        credentials: key.open(&id, &sealed)?,
        id,
        workspace_id: get(row, 1)?,
        destination: get(row, 2)?,
        name: get(row, 3)?,
        credentials_version: get(row, 5)?,
        health: match health.as_str() {
            "ok" => Health::Ok,
            "needs_reauthorization" => Health::NeedsReauthorization,
            other => return Err(unknown("connection health", other)),
        },
        last_error: get(row, 7)?,
        created_at: get(row, 8)?,
        updated_at: get(row, 9)?,
    })
}

fn health_text(health: Health) -> &'static str {
    match health {
        Health::Ok => "ok",
        Health::NeedsReauthorization => "needs_reauthorization",
    }
}

// ---- syncs ----

const SYNC_COLUMNS: &str = "id, workspace_id, connection_id, destination, account_id, \
     audience_name, audience_description, create_if_missing, audience_id, action, \
     match_fields, status, status_reason, created_at, reentry";

pub(crate) async fn create_sync<C: GenericClient + Sync>(c: &C, new: NewSync, now: i64) -> Res<SyncRecord> {
    workspace(c, &new.workspace_id).await?;
    let row = c
        .query_opt("SELECT workspace_id, destination FROM connections WHERE id = $1", &[&new.connection_id])
        .await
        .ctx("reading the sync's connection")?
        .ok_or_else(|| not_found("connection", &new.connection_id))?;
    let (owner, destination): (String, String) = (get(&row, 0)?, get(&row, 1)?);
    if owner != new.workspace_id {
        // Another tenant's connection is not visible from this workspace.
        return Err(not_found("connection", &new.connection_id));
    }
    if destination != new.destination {
        return Err(StoreError::Conflict(format!(
            "connection {} is for destination {destination:?}, not {:?}: choose a connection \
             of that destination",
            new.connection_id, new.destination
        ))
        .into());
    }
    let id = new_id("sync_")?;
    let match_fields = serde_json::to_string(&new.match_fields)
        .map_err(|e| StoreError::Database(format!("encoding match fields: {e}")))?;
    let row = c
        .query_one(
            "INSERT INTO syncs (id, workspace_id, connection_id, destination, account_id, \
             audience_name, audience_description, create_if_missing, audience_id, action, \
             match_fields, status, status_reason, created_at, reentry) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', NULL, $12, $13) RETURNING no",
            &[
                &id,
                &new.workspace_id,
                &new.connection_id,
                &new.destination,
                &new.account_id,
                &new.audience.name,
                &new.audience.description,
                &new.audience.create_if_missing,
                &new.audience_id,
                &action_text(new.action),
                &match_fields,
                &now,
                &new.reentry.as_str(),
            ],
        )
        .await
        .ctx("creating a sync")?;
    let no: i64 = get(&row, 0)?;
    c.execute("INSERT INTO counters (sync_no) VALUES ($1)", &[&no]).await.ctx("creating a sync's counters")?;
    Ok(SyncRecord {
        id,
        workspace_id: new.workspace_id,
        connection_id: new.connection_id,
        destination: new.destination,
        account_id: new.account_id,
        audience: new.audience,
        audience_id: new.audience_id,
        action: new.action,
        match_fields: new.match_fields,
        reentry: new.reentry,
        status: SyncStatus::Active,
        status_reason: None,
        created_at: now,
    })
}

pub(crate) async fn sync<C: GenericClient + Sync>(c: &C, id: &str) -> Res<SyncRecord> {
    let sql = format!("SELECT {SYNC_COLUMNS} FROM syncs WHERE id = $1 AND deleted_at IS NULL");
    let row = c.query_opt(&sql, &[&id]).await.ctx("reading a sync")?.ok_or_else(|| not_found("sync", id))?;
    sync_from_row(&row)
}

/// Syncs whose `column` is `value`, or all; deleted ones left out.
async fn list_syncs<C: GenericClient + Sync>(c: &C, filter: Option<(&str, &str)>) -> Res<Vec<SyncRecord>> {
    let rows = match filter {
        Some((column, value)) => {
            let sql =
                format!("SELECT {SYNC_COLUMNS} FROM syncs WHERE {column} = $1 AND deleted_at IS NULL ORDER BY no");
            c.query(&sql, &[&value]).await
        }
        None => c.query(&format!("SELECT {SYNC_COLUMNS} FROM syncs WHERE deleted_at IS NULL ORDER BY no"), &[]).await,
    }
    .ctx("listing syncs")?;
    rows.iter().map(sync_from_row).collect()
}

pub(crate) async fn syncs<C: GenericClient + Sync>(
    c: &C,
    workspace_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Res<Vec<SyncRecord>> {
    workspace(c, workspace_id).await?;
    let sql = format!(
        "SELECT {SYNC_COLUMNS} FROM syncs WHERE workspace_id = $1 AND id > $2 AND deleted_at IS NULL \
         ORDER BY id LIMIT $3"
    );
    c.query(&sql, &[&workspace_id, &after.unwrap_or(""), &i64::from(limit)])
        .await
        .ctx("listing syncs")?
        .iter()
        .map(sync_from_row)
        .collect()
}

pub(crate) async fn syncs_of_connection<C: GenericClient + Sync>(c: &C, connection_id: &str) -> Res<Vec<SyncRecord>> {
    let exists = c
        .query_opt("SELECT 1 FROM connections WHERE id = $1", &[&connection_id])
        .await
        .ctx("reading a connection")?
        .is_some();
    if !exists {
        return Err(not_found("connection", connection_id));
    }
    list_syncs(c, Some(("connection_id", connection_id))).await
}

pub(crate) async fn all_syncs<C: GenericClient + Sync>(c: &C) -> Res<Vec<SyncRecord>> {
    list_syncs(c, None).await
}

pub(crate) async fn set_sync_status<C: GenericClient + Sync>(
    c: &C,
    id: &str,
    status: SyncStatus,
    reason: Option<&str>,
) -> Res<()> {
    let changed = c
        .execute(
            "UPDATE syncs SET status = $2, status_reason = $3 WHERE id = $1 AND deleted_at IS NULL",
            &[&id, &status_text(status), &reason],
        )
        .await
        .ctx("setting a sync's status")?;
    if changed == 0 {
        return Err(not_found("sync", id));
    }
    Ok(())
}

pub(crate) async fn set_audience_id<C: GenericClient + Sync>(c: &C, id: &str, audience_id: &str) -> Res<()> {
    let changed = c
        .execute("UPDATE syncs SET audience_id = $2 WHERE id = $1 AND deleted_at IS NULL", &[&id, &audience_id])
        .await
        .ctx("recording a sync's audience id")?;
    if changed == 0 {
        return Err(not_found("sync", id));
    }
    Ok(())
}

pub(crate) async fn sync_figures<C: GenericClient + Sync>(c: &C) -> Res<Vec<SyncFigures>> {
    let columns = SYNC_COLUMNS.split(", ").map(|c| format!("s.{}", c.trim())).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {columns}, c.entered, c.proceeded, c.not_synced, c.pending, c.in_flight, c.synced, c.errored, \
         c.deduplicated, c.retries, \
         (SELECT entered_at FROM queue q WHERE q.sync_no = s.no AND q.state = 0 ORDER BY entered_at LIMIT 1), \
         (SELECT entered_at FROM queue q WHERE q.sync_no = s.no AND q.state = 1 ORDER BY entered_at LIMIT 1), \
         c.submitted, \
         (SELECT entered_at FROM queue q WHERE q.sync_no = s.no AND q.state = 2 ORDER BY entered_at LIMIT 1), \
         c.users, c.in_audience, c.removing, c.removed, c.removal_errored, c.already_in_audience \
         FROM syncs s JOIN counters c ON c.sync_no = s.no WHERE s.deleted_at IS NULL ORDER BY s.no"
    );
    let rows = c.query(&sql, &[]).await.ctx("reading every sync's figures")?;
    rows.iter()
        .map(|row| {
            let n = |i: usize| get::<i64>(row, i).map(|v| v.max(0) as u64);
            let oldest = [get::<Option<i64>>(row, 24)?, get::<Option<i64>>(row, 25)?, get::<Option<i64>>(row, 27)?]
                .into_iter()
                .flatten()
                .min();
            Ok(SyncFigures {
                sync: sync_from_row(row)?,
                counts: Counts {
                    entered: n(15)?,
                    proceeded: n(16)?,
                    not_synced: n(17)?,
                    pending: n(18)?,
                    in_flight: n(19)?,
                    synced: n(20)?,
                    errored: n(21)?,
                    deduplicated: n(22)?,
                    retries: n(23)?,
                    submitted: n(26)?,
                    users: n(28)?,
                    in_audience: n(29)?,
                    removing: n(30)?,
                    removed: n(31)?,
                    removal_errored: n(32)?,
                    already_in_audience: n(33)?,
                },
                oldest_pending_at: oldest,
            })
        })
        .collect()
}

pub(crate) async fn connection_health<C: GenericClient + Sync>(c: &C) -> Res<Vec<ConnectionHealth>> {
    let rows = c
        .query("SELECT id, destination, health FROM connections ORDER BY created_at, id", &[])
        .await
        .ctx("reading every connection's health")?;
    rows.iter()
        .map(|row| {
            let health: String = get(row, 2)?;
            Ok(ConnectionHealth {
                connection_id: get(row, 0)?,
                destination: get(row, 1)?,
                health: match health.as_str() {
                    "ok" => Health::Ok,
                    "needs_reauthorization" => Health::NeedsReauthorization,
                    other => return Err(unknown("connection health", other)),
                },
            })
        })
        .collect()
}

pub(crate) fn sync_from_row(row: &Row) -> Res<SyncRecord> {
    let action: String = get(row, 9)?;
    let match_fields: String = get(row, 10)?;
    let status: String = get(row, 11)?;
    Ok(SyncRecord {
        id: get(row, 0)?,
        workspace_id: get(row, 1)?,
        connection_id: get(row, 2)?,
        destination: get(row, 3)?,
        account_id: get(row, 4)?,
        audience: AudienceConfig { name: get(row, 5)?, description: get(row, 6)?, create_if_missing: get(row, 7)? },
        audience_id: get(row, 8)?,
        action: match action.as_str() {
            "add" => SyncAction::Add,
            "remove" => SyncAction::Remove,
            other => return Err(unknown("sync action", other)),
        },
        match_fields: serde_json::from_str(&match_fields).map_err(|_| unknown("match fields", &match_fields))?,
        status: match status.as_str() {
            "active" => SyncStatus::Active,
            "paused" => SyncStatus::Paused,
            "broken" => SyncStatus::Broken,
            "degraded" => SyncStatus::Degraded,
            other => return Err(unknown("sync status", other)),
        },
        status_reason: get(row, 12)?,
        created_at: get(row, 13)?,
        reentry: {
            let reentry: String = get(row, 14)?;
            Reentry::parse(&reentry).ok_or_else(|| unknown("re-entry policy", &reentry))?
        },
    })
}

fn action_text(action: SyncAction) -> &'static str {
    match action {
        SyncAction::Add => "add",
        SyncAction::Remove => "remove",
    }
}

fn status_text(status: SyncStatus) -> &'static str {
    match status {
        SyncStatus::Active => "active",
        SyncStatus::Paused => "paused",
        SyncStatus::Broken => "broken",
        SyncStatus::Degraded => "degraded",
    }
}

// ---- API keys ----

const KEY_COLUMNS: &str = "id, workspace_id, name, key_hash, created_at";

fn key_taken() -> StoreError {
    StoreError::Conflict("an API key with this hash exists already".into())
}

pub(crate) async fn create_api_key<C: GenericClient + Sync>(c: &C, new: NewApiKey, now: i64) -> Res<ApiKey> {
    workspace(c, &new.workspace_id).await?;
    let id = new_id("key_")?;
    // ON CONFLICT: a key created concurrently with the same hash is a conflict, not an error.
    let inserted = c
        .execute(
            "INSERT INTO api_keys (id, workspace_id, name, key_hash, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (key_hash) DO NOTHING",
            &[&id, &new.workspace_id, &new.name, &new.key_hash, &now],
        )
        .await
        .ctx("creating an API key")?;
    if inserted == 0 {
        return Err(key_taken().into());
    }
    Ok(ApiKey { id, workspace_id: new.workspace_id, name: new.name, key_hash: new.key_hash, created_at: now })
}

pub(crate) async fn api_key_by_hash<C: GenericClient + Sync>(c: &C, key_hash: &str) -> Res<ApiKey> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1");
    let row = c
        .query_opt(&sql, &[&key_hash])
        .await
        .ctx("reading an API key")?
        // Never echo the hash: it is derived from a secret.
        .ok_or_else(|| not_found("api key", "(by hash)"))?;
    key_from_row(&row)
}

pub(crate) async fn api_keys<C: GenericClient + Sync>(
    c: &C,
    workspace_id: &str,
    after: Option<&str>,
    limit: u32,
) -> Res<Vec<ApiKey>> {
    workspace(c, workspace_id).await?;
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE workspace_id = $1 AND id > $2 ORDER BY id LIMIT $3");
    c.query(&sql, &[&workspace_id, &after.unwrap_or(""), &i64::from(limit)])
        .await
        .ctx("listing API keys")?
        .iter()
        .map(key_from_row)
        .collect()
}

pub(crate) async fn delete_api_key<C: GenericClient + Sync>(c: &C, id: &str) -> Res<()> {
    let changed = c.execute("DELETE FROM api_keys WHERE id = $1", &[&id]).await.ctx("deleting an API key")?;
    if changed == 0 {
        return Err(not_found("api key", id));
    }
    Ok(())
}

fn key_from_row(row: &Row) -> Res<ApiKey> {
    Ok(ApiKey {
        id: get(row, 0)?,
        workspace_id: get(row, 1)?,
        name: get(row, 2)?,
        key_hash: get(row, 3)?,
        created_at: get(row, 4)?,
    })
}

// ---- OAuth states ----

const STATE_COLUMNS: &str =
    "state_hash, workspace_id, destination, name, connection_id, redirect_uri, created_at, expires_at";

pub(crate) async fn create_oauth_state<C: GenericClient + Sync>(c: &C, new: OauthState) -> Res<()> {
    workspace(c, &new.workspace_id).await?;
    c.execute(
        "DELETE FROM oauth_states WHERE expires_at < $1",
        &[&new.created_at.saturating_sub(OAUTH_STATE_RETENTION_MS)],
    )
    .await
    .ctx("purging old OAuth states")?;
    let inserted = c
        .execute(
            "INSERT INTO oauth_states (state_hash, workspace_id, destination, name, connection_id, \
             redirect_uri, created_at, expires_at, used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL) \
             ON CONFLICT (state_hash) DO NOTHING",
            &[
                &new.state_hash,
                &new.workspace_id,
                &new.destination,
                &new.name,
                &new.connection_id,
                &new.redirect_uri,
                &new.created_at,
                &new.expires_at,
            ],
        )
        .await
        .ctx("recording an OAuth state")?;
    if inserted == 0 {
        return Err(StoreError::Conflict("an OAuth state with this hash exists already".into()).into());
    }
    Ok(())
}

/// One conditional `UPDATE ... RETURNING`: of any number of concurrent callers, only the one
/// whose update finds `used_at` still empty gets the state; the others wait for its row lock,
/// re-check the condition, and find it used.
pub(crate) async fn take_oauth_state<C: GenericClient + Sync>(c: &C, state_hash: &str, now: i64) -> Res<OauthState> {
    let sql = format!(
        "UPDATE oauth_states SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL RETURNING {STATE_COLUMNS}"
    );
    if let Some(row) = c.query_opt(&sql, &[&state_hash, &now]).await.ctx("consuming an OAuth state")? {
        return state_from_row(&row);
    }
    let exists = c
        .query_opt("SELECT 1 FROM oauth_states WHERE state_hash = $1", &[&state_hash])
        .await
        .ctx("reading an OAuth state")?
        .is_some();
    if exists {
        Err(StoreError::Conflict("this OAuth state was already used".into()).into())
    } else {
        Err(not_found("oauth state", "(by hash)"))
    }
}

fn state_from_row(row: &Row) -> Res<OauthState> {
    Ok(OauthState {
        state_hash: get(row, 0)?,
        workspace_id: get(row, 1)?,
        destination: get(row, 2)?,
        name: get(row, 3)?,
        connection_id: get(row, 4)?,
        redirect_uri: get(row, 5)?,
        created_at: get(row, 6)?,
        expires_at: get(row, 7)?,
    })
}
