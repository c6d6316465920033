//! What `/metrics` and the API's listings read, as SQLite's `figures.rs`: figures summed per
//! workspace and destination in a few `GROUP BY` statements, and the counters of a page of
//! syncs in one statement.

use tokio_postgres::{GenericClient, Row};

use super::catalog::get;
use super::{Ctx, Fail};
use crate::groups::Groups;
use crate::{Counts, GroupBy, GroupFigures};

type Res<T> = Result<T, Fail>;

/// The syncs' figures per workspace and destination (see SQLite's `GROUP_SYNCS` for what
/// counts deleted syncs). `LEAST` ignores the states with no user; the oldest entry is three
/// index lookups per live sync with users in the queue, none for the others.
const GROUP_SYNCS: &str = "SELECT {key}, s.destination, \
     COUNT(*) FILTER (WHERE s.deleted_at IS NULL), \
     COUNT(*) FILTER (WHERE s.deleted_at IS NULL AND s.status = 'broken'), \
     COUNT(*) FILTER (WHERE s.deleted_at IS NULL AND s.status = 'degraded'), \
     COUNT(*) FILTER (WHERE s.deleted_at IS NULL AND s.status = 'paused'), \
     SUM(c.entered)::BIGINT, SUM(c.proceeded)::BIGINT, SUM(c.not_synced)::BIGINT, SUM(c.synced)::BIGINT, \
     SUM(c.errored)::BIGINT, SUM(c.deduplicated)::BIGINT, SUM(c.retries)::BIGINT, \
     COALESCE(SUM(c.pending) FILTER (WHERE s.deleted_at IS NULL), 0)::BIGINT, \
     COALESCE(SUM(c.in_flight) FILTER (WHERE s.deleted_at IS NULL), 0)::BIGINT, \
     COALESCE(SUM(c.submitted) FILTER (WHERE s.deleted_at IS NULL), 0)::BIGINT, \
     MIN(CASE WHEN s.deleted_at IS NULL AND c.pending + c.in_flight + c.submitted > 0 THEN LEAST( \
       (SELECT entered_at FROM queue q WHERE q.sync_no = s.no AND q.state = 0 ORDER BY entered_at LIMIT 1), \
       (SELECT entered_at FROM queue q WHERE q.sync_no = s.no AND q.state = 1 ORDER BY entered_at LIMIT 1), \
       (SELECT entered_at FROM queue q WHERE q.sync_no = s.no AND q.state = 2 ORDER BY entered_at LIMIT 1) \
     ) END), \
     COALESCE(SUM(c.users) FILTER (WHERE s.deleted_at IS NULL), 0)::BIGINT \
     FROM syncs s JOIN counters c ON c.sync_no = s.no GROUP BY {group}";

/// The growing counters of the syncs deleted and purged.
const RETIRED: &str = "SELECT {key}, destination, SUM(entered)::BIGINT, SUM(proceeded)::BIGINT, \
     SUM(not_synced)::BIGINT, SUM(synced)::BIGINT, SUM(errored)::BIGINT, SUM(deduplicated)::BIGINT, \
     SUM(retries)::BIGINT FROM retired_counters GROUP BY {group}";

/// Connections per workspace and destination.
const GROUP_CONNECTIONS: &str = "SELECT {key}, destination, COUNT(*), \
     COUNT(*) FILTER (WHERE health = 'needs_reauthorization') FROM connections GROUP BY {group}";

/// `template` with its `{key}` (the groups' workspace, as text) and `{group}` (the `GROUP BY`
/// columns) for `by`, on a table aliased `prefix`.
fn grouped(template: &str, by: GroupBy, prefix: &str) -> String {
    let (key, group) = by.sql(prefix);
    template.replace("{key}", &format!("({key})::TEXT")).replace("{group}", &group)
}

fn n(row: &Row, i: usize) -> Res<u64> {
    Ok(get::<Option<i64>>(row, i)?.unwrap_or(0).max(0) as u64)
}

/// The growing counters in columns `from..from + 7` (entered, proceeded, not_synced, synced,
/// errored, deduplicated, retries).
fn growing(row: &Row, from: usize) -> Res<Counts> {
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

/// Three statements: the syncs', the deleted syncs' and the connections' figures.
pub(crate) async fn group_figures<C: GenericClient + Sync>(c: &C, by: GroupBy) -> Res<Vec<GroupFigures>> {
    let mut groups = Groups::default();
    for row in c.query(&grouped(GROUP_SYNCS, by, "s."), &[]).await.ctx("reading the syncs' figures")? {
        let mut counts = growing(&row, 6)?;
        (counts.pending, counts.in_flight, counts.submitted) = (n(&row, 13)?, n(&row, 14)?, n(&row, 15)?);
        counts.users = n(&row, 17)?;
        let e = groups.entry(get(&row, 0)?, get(&row, 1)?);
        (e.syncs, e.broken, e.degraded, e.paused) = (n(&row, 2)?, n(&row, 3)?, n(&row, 4)?, n(&row, 5)?);
        e.counts = counts;
        e.oldest_pending_at = get(&row, 16)?;
    }
    for row in c.query(&grouped(RETIRED, by, ""), &[]).await.ctx("reading deleted syncs' counters")? {
        let counts = growing(&row, 2)?;
        groups.add_retired(get(&row, 0)?, get(&row, 1)?, &counts);
    }
    for row in c.query(&grouped(GROUP_CONNECTIONS, by, ""), &[]).await.ctx("reading the connections' figures")? {
        let e = groups.entry(get(&row, 0)?, get(&row, 1)?);
        (e.connections, e.needs_reauthorization) = (n(&row, 2)?, n(&row, 3)?);
    }
    Ok(groups.into_vec())
}

/// The counters of these syncs, deleted and unknown ones left out.
pub(crate) async fn counts_of<C: GenericClient + Sync>(c: &C, sync_ids: &[String]) -> Res<Vec<(String, Counts)>> {
    let rows = c
        .query(
            "SELECT s.id, c.entered, c.proceeded, c.not_synced, c.pending, c.in_flight, c.synced, \
             c.errored, c.deduplicated, c.retries, c.submitted, c.users, c.in_audience, c.removing, c.removed, \
             c.removal_errored, c.already_in_audience FROM counters c \
             JOIN syncs s ON s.no = c.sync_no WHERE s.id = ANY($1) AND s.deleted_at IS NULL",
            &[&sync_ids],
        )
        .await
        .ctx("reading syncs' counters")?;
    rows.iter()
        .map(|row| {
            Ok((
                get(row, 0)?,
                Counts {
                    entered: n(row, 1)?,
                    proceeded: n(row, 2)?,
                    not_synced: n(row, 3)?,
                    pending: n(row, 4)?,
                    in_flight: n(row, 5)?,
                    synced: n(row, 6)?,
                    errored: n(row, 7)?,
                    deduplicated: n(row, 8)?,
                    retries: n(row, 9)?,
                    submitted: n(row, 10)?,
                    users: n(row, 11)?,
                    in_audience: n(row, 12)?,
                    removing: n(row, 13)?,
                    removed: n(row, 14)?,
                    removal_errored: n(row, 15)?,
                    already_in_audience: n(row, 16)?,
                },
            ))
        })
        .collect()
}
