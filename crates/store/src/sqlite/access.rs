//! API keys and OAuth states: who may call the HTTP API, and the authorizations in progress.
//!
//! Both are stored as hashes chosen by the caller, never as the secrets themselves, so the
//! database file grants nothing. A state is consumed by setting `used_at` in the writer's
//! transaction: the single writer makes "read, check unused, mark used" atomic, and keeping
//! the row (until it is purged a day after expiry) lets a replay be told apart from an
//! unknown state.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Ctx;
use super::catalog::not_found;
use crate::ids::new_id;
use crate::{ApiKey, NewApiKey, OAUTH_STATE_RETENTION_MS, OauthState, StoreError, StoreResult};

// ---- API keys ----

const KEY_COLUMNS: &str = "id, workspace_id, name, key_hash, created_at";

pub(crate) fn create_api_key(conn: &Connection, new: NewApiKey, now: i64) -> StoreResult<ApiKey> {
    super::catalog::workspace(conn, &new.workspace_id)?;
    let taken = conn
        .prepare_cached("SELECT 1 FROM api_keys WHERE key_hash = ?1")
        .and_then(|mut s| s.exists([&new.key_hash]))
        .ctx("checking an API key")?;
    if taken {
        return Err(StoreError::Conflict("an API key with this hash exists already".into()));
    }
    let id = new_id("key_")?;
    conn.prepare_cached(
        "INSERT INTO api_keys (id, workspace_id, name, key_hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .and_then(|mut s| s.execute(params![id, new.workspace_id, new.name, new.key_hash, now]))
    .ctx("creating an API key")?;
    Ok(ApiKey { id, workspace_id: new.workspace_id, name: new.name, key_hash: new.key_hash, created_at: now })
}

pub(crate) fn api_key_by_hash(conn: &Connection, key_hash: &str) -> StoreResult<ApiKey> {
    let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row([key_hash], key_from_row).optional())
        .ctx("reading an API key")?
        // Never echo the hash: it is derived from a secret.
        .ok_or_else(|| not_found("api key", "(by hash)"))
}

pub(crate) fn api_keys(
    conn: &Connection,
    workspace_id: &str,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<ApiKey>> {
    super::catalog::workspace(conn, workspace_id)?;
    let sql = format!("SELECT {KEY_COLUMNS} {}", super::catalog::KEYS_PAGE);
    let mut stmt = conn.prepare_cached(&sql).ctx("listing API keys")?;
    let rows =
        stmt.query_map(params![workspace_id, after.unwrap_or(""), limit], key_from_row).ctx("listing API keys")?;
    rows.collect::<Result<_, _>>().ctx("listing API keys")
}

pub(crate) fn delete_api_key(conn: &Connection, id: &str) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("DELETE FROM api_keys WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .ctx("deleting an API key")?;
    if changed == 0 {
        return Err(not_found("api key", id));
    }
    Ok(())
}

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        name: row.get(2)?,
        key_hash: row.get(3)?,
        created_at: row.get(4)?,
    })
}

// ---- OAuth states ----

const STATE_COLUMNS: &str =
    "state_hash, workspace_id, destination, name, connection_id, redirect_uri, created_at, expires_at, used_at";

pub(crate) fn create_oauth_state(conn: &Connection, new: OauthState) -> StoreResult<()> {
    super::catalog::workspace(conn, &new.workspace_id)?;
    conn.prepare_cached("DELETE FROM oauth_states WHERE expires_at < ?1")
        .and_then(|mut s| s.execute([new.created_at.saturating_sub(OAUTH_STATE_RETENTION_MS)]))
        .ctx("purging old OAuth states")?;
    let taken = conn
        .prepare_cached("SELECT 1 FROM oauth_states WHERE state_hash = ?1")
        .and_then(|mut s| s.exists([&new.state_hash]))
        .ctx("checking an OAuth state")?;
    if taken {
        return Err(StoreError::Conflict("an OAuth state with this hash exists already".into()));
    }
    conn.prepare_cached(
        "INSERT INTO oauth_states (state_hash, workspace_id, destination, name, connection_id, \
         redirect_uri, created_at, expires_at, used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL)",
    )
    .and_then(|mut s| {
        s.execute(params![
            new.state_hash,
            new.workspace_id,
            new.destination,
            new.name,
            new.connection_id,
            new.redirect_uri,
            new.created_at,
            new.expires_at
        ])
    })
    .ctx("recording an OAuth state")?;
    Ok(())
}

pub(crate) fn take_oauth_state(conn: &Connection, state_hash: &str, now: i64) -> StoreResult<OauthState> {
    let sql = format!("SELECT {STATE_COLUMNS} FROM oauth_states WHERE state_hash = ?1");
    let (state, used_at) = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row([state_hash], state_from_row).optional())
        .ctx("reading an OAuth state")?
        .ok_or_else(|| not_found("oauth state", "(by hash)"))?;
    if used_at.is_some() {
        return Err(StoreError::Conflict("this OAuth state was already used".into()));
    }
    conn.prepare_cached("UPDATE oauth_states SET used_at = ?2 WHERE state_hash = ?1")
        .and_then(|mut s| s.execute(params![state_hash, now]))
        .ctx("consuming an OAuth state")?;
    Ok(state)
}

fn state_from_row(row: &Row<'_>) -> rusqlite::Result<(OauthState, Option<i64>)> {
    Ok((
        OauthState {
            state_hash: row.get(0)?,
            workspace_id: row.get(1)?,
            destination: row.get(2)?,
            name: row.get(3)?,
            connection_id: row.get(4)?,
            redirect_uri: row.get(5)?,
            created_at: row.get(6)?,
            expires_at: row.get(7)?,
        },
        row.get(8)?,
    ))
}
