//! Deleting a sync in two steps (see the crate's `deletion` module for why): [`mark_deleted`]
//! at once, [`purge`] a chunk of rows per writer transaction afterwards.

use rusqlite::{Connection, params};

use super::Ctx;
use super::catalog::not_found;
use crate::deletion::{GROWING_COUNTERS, SYNC_ROW_TABLES};
use crate::{Purged, StoreResult};

/// Deleted syncs looked at by one purge call, oldest deletion first.
const DOOMED: &str = "SELECT no, workspace_id, destination FROM syncs \
     WHERE deleted_at IS NOT NULL AND (?1 IS NULL OR connection_id = ?1) ORDER BY deleted_at, no LIMIT 16";

/// Marks a sync deleted: from this transaction on, every operation on it answers `NotFound`
/// and listings leave it out; its rows stay until [`purge`] removes them.
pub(crate) fn mark_deleted(conn: &Connection, id: &str, now: i64) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("UPDATE syncs SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL")
        .and_then(|mut s| s.execute(params![id, now]))
        .ctx("deleting a sync")?;
    if changed == 0 {
        return Err(not_found("sync", id));
    }
    Ok(())
}

/// Removes at most `max_rows` rows of deleted syncs (of `connection_id`'s only, when given),
/// and forgets each deleted sync left without rows, its growing counters added to
/// `retired_counters`.
pub(crate) fn purge(conn: &Connection, max_rows: u32, connection_id: Option<&str>) -> StoreResult<Purged> {
    let mut budget = i64::from(max_rows.max(1));
    let mut purged = Purged::default();
    let doomed: Vec<(i64, String, String)> = conn
        .prepare_cached(DOOMED)
        .and_then(|mut s| s.query_map([connection_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?.collect())
        .ctx("finding deleted syncs")?;
    for (no, workspace_id, destination) in doomed {
        for table in SYNC_ROW_TABLES {
            let removed = conn
                .prepare_cached(&format!(
                    "DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE sync_no = ?1 LIMIT ?2)"
                ))
                .and_then(|mut s| s.execute(params![no, budget]))
                .ctx(&format!("purging a deleted sync's {table}"))? as i64;
            purged.rows += removed as u64;
            if removed == budget {
                // The chunk is full: the table may hold more, for the next call.
                purged.more = true;
                return Ok(purged);
            }
            budget -= removed;
        }
        retire(conn, no, &workspace_id, &destination)?;
        purged.syncs += 1;
    }
    purged.more = conn
        .prepare_cached("SELECT 1 FROM syncs WHERE deleted_at IS NOT NULL AND (?1 IS NULL OR connection_id = ?1)")
        .and_then(|mut s| s.exists([connection_id]))
        .ctx("finding deleted syncs")?;
    Ok(purged)
}

/// Forgets a deleted sync without rows: its growing counters join its workspace's and
/// destination's retired ones, then its counters and its row go.
fn retire(conn: &Connection, no: i64, workspace_id: &str, destination: &str) -> StoreResult<()> {
    let columns = GROWING_COUNTERS.join(", ");
    let sums = GROWING_COUNTERS.iter().map(|c| format!("{c} = {c} + excluded.{c}")).collect::<Vec<_>>().join(", ");
    conn.prepare_cached(&format!(
        "INSERT INTO retired_counters (workspace_id, destination, {columns}) \
         SELECT ?2, ?3, {columns} FROM counters WHERE sync_no = ?1 \
         ON CONFLICT (workspace_id, destination) DO UPDATE SET {sums}"
    ))
    .and_then(|mut s| s.execute(params![no, workspace_id, destination]))
    .ctx("keeping a deleted sync's counters")?;
    for (table, column) in [("counters", "sync_no"), ("syncs", "no")] {
        conn.prepare_cached(&format!("DELETE FROM {table} WHERE {column} = ?1"))
            .and_then(|mut s| s.execute([no]))
            .ctx(&format!("forgetting a deleted sync's {table}"))?;
    }
    Ok(())
}
