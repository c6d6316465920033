//! What `/metrics` and the API's listings read: figures summed per workspace and destination
//! in a few `GROUP BY` statements, and the counters of a page of syncs in one read.

use rusqlite::{Connection, Row};

use super::Ctx;
use crate::groups::Groups;
use crate::{Counts, GroupBy, GroupFigures, StoreResult};

/// "No user": larger than any entry time, so `min()` of three lookups ignores the missing.
const NONE: i64 = i64::MAX;

/// The syncs' figures per group (`{key}`, `{group}`: see [`grouped`]). The growing counters count deleted
/// syncs still being purged (their totals must not drop before `retired_counters` takes them
/// over); gauges, statuses and ages count live syncs only. The oldest entry is three index
/// lookups per live sync with users in the queue, none for the others.
const GROUP_SYNCS: &str = "SELECT {key}, s.destination, \
     SUM(s.deleted_at IS NULL), \
     SUM(s.deleted_at IS NULL AND s.status = 'broken'), \
     SUM(s.deleted_at IS NULL AND s.status = 'degraded'), \
     SUM(s.deleted_at IS NULL AND s.status = 'paused'), \
     SUM(c.entered), SUM(c.proceeded), SUM(c.not_synced), SUM(c.synced), SUM(c.errored), \
     SUM(c.deduplicated), SUM(c.retries), \
     SUM(CASE WHEN s.deleted_at IS NULL THEN c.pending ELSE 0 END), \
     SUM(CASE WHEN s.deleted_at IS NULL THEN c.in_flight ELSE 0 END), \
     SUM(CASE WHEN s.deleted_at IS NULL THEN c.submitted ELSE 0 END), \
     MIN(CASE WHEN s.deleted_at IS NULL AND c.pending + c.in_flight + c.submitted > 0 THEN NULLIF(min( \
       coalesce((SELECT entered_at FROM queue q WHERE q.sync_no = s.no AND q.state = 0 ORDER BY entered_at LIMIT 1), ?1), \
       coalesce((SELECT entered_at FROM queue q WHERE q.sync_no = s.no AND q.state = 1 ORDER BY entered_at LIMIT 1), ?1), \
       coalesce((SELECT entered_at FROM queue q WHERE q.sync_no = s.no AND q.state = 2 ORDER BY entered_at LIMIT 1), ?1) \
     ), ?1) END), \
     SUM(CASE WHEN s.deleted_at IS NULL THEN c.users ELSE 0 END) \
     FROM syncs s JOIN counters c ON c.sync_no = s.no GROUP BY {group}";

/// The growing counters of the syncs deleted and purged.
const RETIRED: &str = "SELECT {key}, destination, SUM(entered), SUM(proceeded), SUM(not_synced), SUM(synced), \
     SUM(errored), SUM(deduplicated), SUM(retries) FROM retired_counters GROUP BY {group}";

/// Connections per workspace and destination.
const GROUP_CONNECTIONS: &str = "SELECT {key}, destination, COUNT(*), \
     SUM(health = 'needs_reauthorization') FROM connections GROUP BY {group}";

/// `template` with its `{key}` (the groups' workspace) and `{group}` (the `GROUP BY` columns)
/// for `by`, on a table aliased `prefix`.
fn grouped(template: &str, by: GroupBy, prefix: &str) -> String {
    let (key, group) = by.sql(prefix);
    template.replace("{key}", &key).replace("{group}", &group)
}

fn n(row: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(row.get::<_, Option<i64>>(i)?.unwrap_or(0).max(0) as u64)
}

/// The growing counters in columns `from..from + 7` (entered, proceeded, not_synced, synced,
/// errored, deduplicated, retries).
fn growing(row: &Row<'_>, from: usize) -> rusqlite::Result<Counts> {
    Ok(Counts {
        entered: n(row, from)?,
        proceeded: n(row, from + 1)?,
        not_synced: n(row, from + 2)?,
        synced: n(row, from + 3)?,
        errored: n(row, from + 4)?,
        deduplicated: n(row, from + 5)?,
        retries: n(row, from + 6)?,
        ..Counts::default()
    })
}

pub(crate) fn group_figures(conn: &Connection, by: GroupBy) -> StoreResult<Vec<GroupFigures>> {
    let mut groups = Groups::default();
    let mut stmt = conn.prepare_cached(&grouped(GROUP_SYNCS, by, "s.")).ctx("reading the syncs' figures")?;
    let rows = stmt
        .query_map([NONE], |row| {
            let mut counts = growing(row, 6)?;
            (counts.pending, counts.in_flight, counts.submitted) = (n(row, 13)?, n(row, 14)?, n(row, 15)?);
            counts.users = n(row, 17)?;
            let group = GroupFigures {
                workspace_id: row.get(0)?,
                destination: row.get(1)?,
                syncs: n(row, 2)?,
                broken: n(row, 3)?,
                degraded: n(row, 4)?,
                paused: n(row, 5)?,
                counts,
                oldest_pending_at: row.get(16)?,
                ..GroupFigures::default()
            };
            Ok(group)
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx("reading the syncs' figures")?;
    for group in rows {
        let e = groups.entry(group.workspace_id.clone(), group.destination.clone());
        *e = group;
    }
    let mut stmt = conn.prepare_cached(&grouped(RETIRED, by, "")).ctx("reading deleted syncs' counters")?;
    let retired = stmt
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, growing(row, 2)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx("reading deleted syncs' counters")?;
    for (workspace_id, destination, counts) in retired {
        groups.add_retired(workspace_id, destination, &counts);
    }
    let mut stmt = conn.prepare_cached(&grouped(GROUP_CONNECTIONS, by, "")).ctx("reading the connections' figures")?;
    let connections = stmt
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, n(row, 2)?, n(row, 3)?)))
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .ctx("reading the connections' figures")?;
    for (workspace_id, destination, total, needs) in connections {
        let e = groups.entry(workspace_id, destination);
        (e.connections, e.needs_reauthorization) = (total, needs);
    }
    Ok(groups.into_vec())
}

/// The counters of these syncs, deleted and unknown ones left out.
pub(crate) fn counts_of(conn: &Connection, sync_ids: &[String]) -> StoreResult<Vec<(String, Counts)>> {
    let mut out = Vec::with_capacity(sync_ids.len());
    for id in sync_ids {
        match super::queue::counts(conn, id) {
            Ok(counts) => out.push((id.clone(), counts)),
            Err(crate::StoreError::NotFound { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    Ok(out)
}
