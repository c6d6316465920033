//! Workspaces, connections and syncs: the small, rarely written part of the store.
//!
//! Each function takes a `&Connection` already inside a transaction (the writer's group
//! transaction, or a reader's snapshot) and does one operation of the [`Store`] trait.
//!
//! [`Store`]: crate::Store

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{Ctx, conversion_error};
use crate::crypto::CredentialKey;
use crate::ids::new_id;
use crate::{
    AudienceConfig, Connection as ConnectionRecord, ConnectionHealth, Counts, Health, NewConnection, NewSync, Reentry,
    StoreError, StoreResult, SyncAction, SyncFigures, SyncRecord, SyncStatus, Workspace,
};

// Pages of listings: index ranges of `(workspace_id, id)` (or the primary key), in id order
// (see the plan test below).

/// A page of workspaces, after `?1`, at most `?2`.
pub(crate) const WORKSPACES_PAGE: &str = "FROM workspaces WHERE id > ?1 ORDER BY id LIMIT ?2";
/// A page of a workspace's connections.
pub(crate) const CONNECTIONS_PAGE: &str = "FROM connections WHERE workspace_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";
/// A page of a workspace's syncs, deleted ones left out.
pub(crate) const SYNCS_PAGE: &str =
    "FROM syncs WHERE workspace_id = ?1 AND id > ?2 AND deleted_at IS NULL ORDER BY id LIMIT ?3";
/// A page of a workspace's API keys.
pub(crate) const KEYS_PAGE: &str = "FROM api_keys WHERE workspace_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";

// ---- workspaces ----

pub(crate) fn create_workspace(conn: &Connection, name: &str, now: i64) -> StoreResult<Workspace> {
    let id = new_id("ws_")?;
    conn.prepare_cached("INSERT INTO workspaces (id, name, created_at) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![id, name, now]))
        .ctx("creating a workspace")?;
    Ok(Workspace { id, name: name.to_owned(), created_at: now })
}

pub(crate) fn workspace(conn: &Connection, id: &str) -> StoreResult<Workspace> {
    conn.prepare_cached("SELECT id, name, created_at FROM workspaces WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], workspace_from_row).optional())
        .ctx("reading a workspace")?
        .ok_or_else(|| not_found("workspace", id))
}

pub(crate) fn workspaces(conn: &Connection, after: Option<&str>, limit: u32) -> StoreResult<Vec<Workspace>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT id, name, created_at {WORKSPACES_PAGE}")).ctx("listing workspaces")?;
    let rows = stmt.query_map(params![after.unwrap_or(""), limit], workspace_from_row).ctx("listing workspaces")?;
    rows.collect::<Result<_, _>>().ctx("listing workspaces")
}

fn workspace_from_row(row: &Row<'_>) -> rusqlite::Result<Workspace> {
    Ok(Workspace { id: row.get(0)?, name: row.get(1)?, created_at: row.get(2)? })
}

fn require_workspace(conn: &Connection, id: &str) -> StoreResult<()> {
    workspace(conn, id).map(|_| ())
}

// ---- connections ----

const CONNECTION_COLUMNS: &str = "id, workspace_id, destination, name, credentials, \
     credentials_version, health, last_error, created_at, updated_at";

pub(crate) fn create_connection(
    conn: &Connection,
    key: &CredentialKey,
    new: NewConnection,
    now: i64,
) -> StoreResult<ConnectionRecord> {
    require_workspace(conn, &new.workspace_id)?;
    let id = new_id("conn_")?;
    let sealed = key.seal(&id, &new.credentials)?;
    conn.prepare_cached(
        "INSERT INTO connections (id, workspace_id, destination, name, credentials, \
         credentials_version, health, last_error, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 1, 'ok', NULL, ?6, ?6)",
    )
    .and_then(|mut s| s.execute(params![id, new.workspace_id, new.destination, new.name, sealed, now]))
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

pub(crate) fn connection(conn: &Connection, key: &CredentialKey, id: &str) -> StoreResult<ConnectionRecord> {
    let sql = format!("SELECT {CONNECTION_COLUMNS} FROM connections WHERE id = ?1");
    let raw = conn
        .prepare_cached(&sql)
        .and_then(|mut s| s.query_row([id], RawConnection::from_row).optional())
        .ctx("reading a connection")?
        .ok_or_else(|| not_found("connection", id))?;
    raw.decrypt(key)
}

pub(crate) fn connections(
    conn: &Connection,
    key: &CredentialKey,
    workspace_id: &str,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<ConnectionRecord>> {
    require_workspace(conn, workspace_id)?;
    let sql = format!("SELECT {CONNECTION_COLUMNS} {CONNECTIONS_PAGE}");
    let mut stmt = conn.prepare_cached(&sql).ctx("listing connections")?;
    let raws = stmt
        .query_map(params![workspace_id, after.unwrap_or(""), limit], RawConnection::from_row)
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx("listing connections")?;
    raws.into_iter().map(|raw| raw.decrypt(key)).collect()
}

pub(crate) fn update_credentials(
    conn: &Connection,
    key: &CredentialKey,
    id: &str,
    credentials: &[u8],
    now: i64,
) -> StoreResult<ConnectionRecord> {
    let sealed = key.seal(id, credentials)?;
    let changed = conn
        .prepare_cached(
            "UPDATE connections SET credentials = ?2, credentials_version = credentials_version + 1, \
             health = 'ok', last_error = NULL, updated_at = ?3 WHERE id = ?1",
        )
        .and_then(|mut s| s.execute(params![id, sealed, now]))
        .ctx("updating credentials")?;
    if changed == 0 {
        return Err(not_found("connection", id));
    }
    connection(conn, key, id)
}

pub(crate) fn set_connection_health(
    conn: &Connection,
    id: &str,
    health: Health,
    last_error: Option<&str>,
    now: i64,
) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("UPDATE connections SET health = ?2, last_error = ?3, updated_at = ?4 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![id, health_text(health), last_error, now]))
        .ctx("setting a connection's health")?;
    if changed == 0 {
        return Err(not_found("connection", id));
    }
    Ok(())
}

pub(crate) fn delete_connection(conn: &Connection, id: &str) -> StoreResult<()> {
    // Live syncs first: they are the ones a person must delete.
    let users: Vec<(String, bool)> = conn
        .prepare_cached(
            "SELECT id, deleted_at IS NOT NULL FROM syncs WHERE connection_id = ?1 \
             ORDER BY deleted_at IS NOT NULL, no LIMIT 6",
        )
        .and_then(|mut s| {
            s.query_map([id], |row| Ok((row.get(0)?, row.get(1)?))).and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        })
        .ctx("checking which syncs use a connection")?;
    if let Some(conflict) = crate::deletion::in_use_conflict(id, &users) {
        return Err(conflict);
    }
    let changed = conn
        .prepare_cached("DELETE FROM connections WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .ctx("deleting a connection")?;
    if changed == 0 {
        return Err(not_found("connection", id));
    }
    Ok(())
}

/// A connection row before its credentials are decrypted.
struct RawConnection {
    id: String,
    workspace_id: String,
    destination: String,
    name: String,
    sealed: Vec<u8>,
    credentials_version: i64,
    health: Health,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl RawConnection {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        let health: String = row.get(6)?;
        Ok(Self {
            id: row.get(0)?,
            workspace_id: row.get(1)?,
            destination: row.get(2)?,
            name: row.get(3)?,
            sealed: row.get(4)?,
            credentials_version: row.get(5)?,
            health: match health.as_str() {
                "ok" => Health::Ok,
                "needs_reauthorization" => Health::NeedsReauthorization,
                other => return Err(conversion_error(6, "connection health", other)),
            },
            last_error: row.get(7)?,
            created_at: row.get(8)?,
            updated_at: row.get(9)?,
        })
    }

    fn decrypt(self, key: &CredentialKey) -> StoreResult<ConnectionRecord> {
        Ok(ConnectionRecord {
            credentials: key.open(&self.id, &self.sealed)?,
            id: self.id,
            workspace_id: self.workspace_id,
            destination: self.destination,
            name: self.name,
            credentials_version: self.credentials_version,
            health: self.health,
            last_error: self.last_error,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
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

pub(crate) fn create_sync(conn: &Connection, new: NewSync, now: i64) -> StoreResult<SyncRecord> {
    require_workspace(conn, &new.workspace_id)?;
    let (owner, destination): (String, String) = conn
        .prepare_cached("SELECT workspace_id, destination FROM connections WHERE id = ?1")
        .and_then(|mut s| s.query_row([&new.connection_id], |row| Ok((row.get(0)?, row.get(1)?))).optional())
        .ctx("reading the sync's connection")?
        .ok_or_else(|| not_found("connection", &new.connection_id))?;
    if owner != new.workspace_id {
        // Another tenant's connection is not visible from this workspace.
        return Err(not_found("connection", &new.connection_id));
    }
    if destination != new.destination {
        return Err(StoreError::Conflict(format!(
            "connection {} is for destination {destination:?}, not {:?}: choose a connection \
             of that destination",
            new.connection_id, new.destination
        )));
    }
    let id = new_id("sync_")?;
    let match_fields = serde_json::to_string(&new.match_fields)
        .map_err(|e| StoreError::Database(format!("encoding match fields: {e}")))?;
    conn.prepare_cached(
        "INSERT INTO syncs (id, workspace_id, connection_id, destination, account_id, \
         audience_name, audience_description, create_if_missing, audience_id, action, \
         match_fields, status, status_reason, created_at, reentry) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'active', NULL, ?12, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            id,
            new.workspace_id,
            new.connection_id,
            new.destination,
            new.account_id,
            new.audience.name,
            new.audience.description,
            new.audience.create_if_missing,
            new.audience_id,
            action_text(new.action),
            match_fields,
            now,
            new.reentry.as_str()
        ])
    })
    .ctx("creating a sync")?;
    let no = conn.last_insert_rowid();
    conn.prepare_cached("INSERT INTO counters (sync_no) VALUES (?1)")
        .and_then(|mut s| s.execute([no]))
        .ctx("creating a sync's counters")?;
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

pub(crate) fn sync(conn: &Connection, id: &str) -> StoreResult<SyncRecord> {
    let sql = format!("SELECT {SYNC_COLUMNS} FROM syncs WHERE id = ?1 AND deleted_at IS NULL");
    conn.prepare_cached(&sql)
        .and_then(|mut s| s.query_row([id], sync_from_row).optional())
        .ctx("reading a sync")?
        .ok_or_else(|| not_found("sync", id))
}

/// Syncs matching `filter` (a condition on one `?1` parameter, or none), deleted ones left out.
fn list_syncs(conn: &Connection, filter: Option<(&str, &str)>) -> StoreResult<Vec<SyncRecord>> {
    let (condition, value) = match filter {
        Some((column, value)) => (format!("AND {column} = ?1"), Some(value)),
        None => (String::new(), None),
    };
    let sql = format!("SELECT {SYNC_COLUMNS} FROM syncs WHERE deleted_at IS NULL {condition} ORDER BY no");
    let mut stmt = conn.prepare_cached(&sql).ctx("listing syncs")?;
    let rows = match value {
        Some(value) => stmt.query_map([value], sync_from_row),
        None => stmt.query_map([], sync_from_row),
    };
    rows.and_then(|rows| rows.collect::<Result<Vec<_>, _>>()).ctx("listing syncs")
}

pub(crate) fn syncs(
    conn: &Connection,
    workspace_id: &str,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<SyncRecord>> {
    require_workspace(conn, workspace_id)?;
    let sql = format!("SELECT {SYNC_COLUMNS} {SYNCS_PAGE}");
    let mut stmt = conn.prepare_cached(&sql).ctx("listing syncs")?;
    stmt.query_map(params![workspace_id, after.unwrap_or(""), limit], sync_from_row)
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx("listing syncs")
}

pub(crate) fn syncs_of_connection(conn: &Connection, connection_id: &str) -> StoreResult<Vec<SyncRecord>> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM connections WHERE id = ?1")
        .and_then(|mut s| s.exists([connection_id]))
        .ctx("reading a connection")?;
    if !exists {
        return Err(not_found("connection", connection_id));
    }
    list_syncs(conn, Some(("connection_id", connection_id)))
}

pub(crate) fn all_syncs(conn: &Connection) -> StoreResult<Vec<SyncRecord>> {
    list_syncs(conn, None)
}

pub(crate) fn set_sync_status(
    conn: &Connection,
    id: &str,
    status: SyncStatus,
    reason: Option<&str>,
) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("UPDATE syncs SET status = ?2, status_reason = ?3 WHERE id = ?1 AND deleted_at IS NULL")
        .and_then(|mut s| s.execute(params![id, status_text(status), reason]))
        .ctx("setting a sync's status")?;
    if changed == 0 {
        return Err(not_found("sync", id));
    }
    Ok(())
}

pub(crate) fn set_audience_id(conn: &Connection, id: &str, audience_id: &str) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("UPDATE syncs SET audience_id = ?2 WHERE id = ?1 AND deleted_at IS NULL")
        .and_then(|mut s| s.execute(params![id, audience_id]))
        .ctx("recording a sync's audience id")?;
    if changed == 0 {
        return Err(not_found("sync", id));
    }
    Ok(())
}

/// The columns of [`SYNC_FIGURES`] after the sync's own.
const FIGURES: &str = "c.entered, c.proceeded, c.not_synced, c.pending, c.in_flight, c.synced, c.errored, \
     c.deduplicated, c.retries, \
     (SELECT entered_at FROM queue q WHERE q.sync_no = s.no AND q.state = 0 ORDER BY entered_at LIMIT 1), \
     (SELECT entered_at FROM queue q WHERE q.sync_no = s.no AND q.state = 1 ORDER BY entered_at LIMIT 1), \
     c.submitted, \
     (SELECT entered_at FROM queue q WHERE q.sync_no = s.no AND q.state = 2 ORDER BY entered_at LIMIT 1), c.users, \
     c.in_audience, c.removing, c.removed, c.removal_errored, c.already_in_audience";

pub(crate) fn sync_figures(conn: &Connection) -> StoreResult<Vec<SyncFigures>> {
    let columns = SYNC_COLUMNS.split(", ").map(|c| format!("s.{}", c.trim())).collect::<Vec<_>>().join(", ");
    let sql = format!(
        "SELECT {columns}, {FIGURES} FROM syncs s JOIN counters c ON c.sync_no = s.no \
         WHERE s.deleted_at IS NULL ORDER BY s.no"
    );
    let mut stmt = conn.prepare_cached(&sql).ctx("reading every sync's figures")?;
    let rows = stmt.query_map([], |row| {
        let n = |i: usize| row.get::<_, i64>(i).map(|v| v.max(0) as u64);
        let oldest = [row.get::<_, Option<i64>>(24)?, row.get::<_, Option<i64>>(25)?, row.get::<_, Option<i64>>(27)?]
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
    });
    rows.and_then(|rows| rows.collect::<Result<Vec<_>, _>>()).ctx("reading every sync's figures")
}

pub(crate) fn connection_health(conn: &Connection) -> StoreResult<Vec<ConnectionHealth>> {
    let mut stmt =
        conn.prepare_cached("SELECT id, destination, health FROM connections ORDER BY rowid").ctx("reading health")?;
    let rows = stmt.query_map([], |row| {
        let health: String = row.get(2)?;
        Ok(ConnectionHealth {
            connection_id: row.get(0)?,
            destination: row.get(1)?,
            health: match health.as_str() {
                "ok" => Health::Ok,
                "needs_reauthorization" => Health::NeedsReauthorization,
                other => return Err(conversion_error(2, "connection health", other)),
            },
        })
    });
    rows.and_then(|rows| rows.collect::<Result<Vec<_>, _>>()).ctx("reading every connection's health")
}

pub(crate) fn sync_from_row(row: &Row<'_>) -> rusqlite::Result<SyncRecord> {
    let action: String = row.get(9)?;
    let match_fields: String = row.get(10)?;
    let status: String = row.get(11)?;
    Ok(SyncRecord {
        id: row.get(0)?,
        workspace_id: row.get(1)?,
        connection_id: row.get(2)?,
        destination: row.get(3)?,
        account_id: row.get(4)?,
        audience: AudienceConfig { name: row.get(5)?, description: row.get(6)?, create_if_missing: row.get(7)? },
        audience_id: row.get(8)?,
        action: match action.as_str() {
            "add" => SyncAction::Add,
            "remove" => SyncAction::Remove,
            other => return Err(conversion_error(9, "sync action", other)),
        },
        match_fields: serde_json::from_str(&match_fields)
            .map_err(|_| conversion_error(10, "match fields", &match_fields))?,
        status: match status.as_str() {
            "active" => SyncStatus::Active,
            "paused" => SyncStatus::Paused,
            "broken" => SyncStatus::Broken,
            "degraded" => SyncStatus::Degraded,
            other => return Err(conversion_error(11, "sync status", other)),
        },
        status_reason: row.get(12)?,
        created_at: row.get(13)?,
        reentry: {
            let reentry: String = row.get(14)?;
            Reentry::parse(&reentry).ok_or_else(|| conversion_error(14, "re-entry policy", &reentry))?
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

pub(crate) fn not_found(kind: &'static str, id: &str) -> StoreError {
    StoreError::NotFound { kind, id: id.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let params: Vec<i64> = vec![1; stmt.parameter_count()];
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |row| row.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join(" | ")
    }

    #[test]
    fn pages_are_index_ranges_in_id_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        for (sql, index) in [
            (format!("SELECT id, name, created_at {WORKSPACES_PAGE}"), "sqlite_autoindex_workspaces_1 (id>?)"),
            (
                format!("SELECT {CONNECTION_COLUMNS} {CONNECTIONS_PAGE}"),
                "connections_workspace_id (workspace_id=? AND id>?)",
            ),
            (format!("SELECT {SYNC_COLUMNS} {SYNCS_PAGE}"), "syncs_workspace_id (workspace_id=? AND id>?)"),
            (
                format!("SELECT id, workspace_id, name, key_hash, created_at {KEYS_PAGE}"),
                "api_keys_workspace_id (workspace_id=? AND id>?)",
            ),
        ] {
            let plan = plan(&conn, &sql);
            assert!(plan.contains(index), "{sql}\n  uses {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}\n  sorts: {plan}");
        }
    }
}
