//! Deleting a sync in two steps (see the crate's `deletion` module for why): [`mark_deleted`]
//! at once, [`purge`] a chunk of rows per transaction afterwards.
//!
//! Several hosts may purge at once: each chunk locks the rows it removes with `FOR UPDATE SKIP
//! LOCKED`, so two purgers take different rows instead of waiting on each other, and the
//! sync's `counters` row is removed with `RETURNING`, so only the purger that removed it adds
//! it to `retired_counters`.

use tokio_postgres::GenericClient;

use super::catalog::{get, not_found};
use super::{Ctx, Fail};
use crate::Purged;
use crate::deletion::{GROWING_COUNTERS, SYNC_ROW_TABLES};

type Res<T> = Result<T, Fail>;

/// Deleted syncs looked at by one purge call, oldest deletion first.
const DOOMED: &str = "SELECT no, workspace_id, destination FROM syncs \
     WHERE deleted_at IS NOT NULL AND ($1::text IS NULL OR connection_id = $1) ORDER BY deleted_at, no LIMIT 16";

/// Marks a sync deleted: from this transaction on, every operation on it answers `NotFound`
/// and listings leave it out; its rows stay until [`purge`] removes them.
pub(crate) async fn mark_deleted<C: GenericClient + Sync>(c: &C, id: &str, now: i64) -> Res<()> {
    let changed = c
        .execute("UPDATE syncs SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL", &[&id, &now])
        .await
        .ctx("deleting a sync")?;
    if changed == 0 {
        return Err(not_found("sync", id));
    }
    Ok(())
}

/// Removes at most `max_rows` rows of deleted syncs (of `connection_id`'s only, when given),
/// and forgets each deleted sync left without rows, its growing counters added to
/// `retired_counters`.
pub(crate) async fn purge<C: GenericClient + Sync>(c: &C, max_rows: u32, connection_id: Option<&str>) -> Res<Purged> {
    let mut budget = i64::from(max_rows.max(1));
    let mut purged = Purged::default();
    let doomed = c.query(DOOMED, &[&connection_id]).await.ctx("finding deleted syncs")?;
    for row in &doomed {
        let (no, workspace_id, destination): (i64, String, String) = (get(row, 0)?, get(row, 1)?, get(row, 2)?);
        for table in SYNC_ROW_TABLES {
            let removed = c
                .execute(
                    &format!(
                        "DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE sync_no = $1 \
                         LIMIT $2 FOR UPDATE SKIP LOCKED))"
                    ),
                    &[&no, &budget],
                )
                .await
                .ctx(&format!("purging a deleted sync's {table}"))? as i64;
            purged.rows += removed as u64;
            if removed == budget {
                // The chunk is full: the table may hold more, for the next call.
                purged.more = true;
                return Ok(purged);
            }
            budget -= removed;
        }
        if retire(c, no, &workspace_id, &destination).await? {
            purged.syncs += 1;
        }
    }
    purged.more = c
        .query_opt(
            "SELECT 1 FROM syncs WHERE deleted_at IS NOT NULL AND ($1::text IS NULL OR connection_id = $1) LIMIT 1",
            &[&connection_id],
        )
        .await
        .ctx("finding deleted syncs")?
        .is_some();
    Ok(purged)
}

/// Forgets a deleted sync without rows: its growing counters join its workspace's and
/// destination's retired ones, then its counters and its row go. False when another purger
/// did it first.
async fn retire<C: GenericClient + Sync>(c: &C, no: i64, workspace_id: &str, destination: &str) -> Res<bool> {
    let columns = GROWING_COUNTERS.join(", ");
    let sums = GROWING_COUNTERS.iter().map(|c| format!("{c} = r.{c} + excluded.{c}")).collect::<Vec<_>>().join(", ");
    let retired = c
        .execute(
            &format!(
                "WITH gone AS (DELETE FROM counters WHERE sync_no = $1 RETURNING {columns}) \
                 INSERT INTO retired_counters AS r (workspace_id, destination, {columns}) \
                 SELECT $2, $3, {columns} FROM gone \
                 ON CONFLICT (workspace_id, destination) DO UPDATE SET {sums}"
            ),
            &[&no, &workspace_id, &destination],
        )
        .await
        .ctx("keeping a deleted sync's counters")?;
    c.execute("DELETE FROM syncs WHERE no = $1", &[&no]).await.ctx("forgetting a deleted sync")?;
    Ok(retired > 0)
}
