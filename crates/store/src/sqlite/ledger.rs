//! The ledger's own reads and writes: one user's lookup, listings by state, re-drives and the
//! pruning of old history. The rows are the queue's (see `queue.rs`); every listing and
//! chunk here is one index range.

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::Ctx;
use super::catalog::not_found;
use super::queue::{Delta, sync_no};
use crate::removal::{Step, removal_step};
use crate::{
    MEMBER_ERRORS, Member, MemberCursor, MemberDetail, MemberState, Pruned, Redrive, Redriven, RemovalSkip, Removals,
    StoreResult, SyncAction, UserError,
};

/// The columns of a [`Member`], in [`member_of`]'s order.
const COLUMNS: &str = "user_key, state, rowid, coalesce(first_at, entered_at), entered_at, entries, attempts, \
     tried_at, done_at, last_error, submission, asked_at, then_op";

/// A page of a sync's users in one state, by (entry time, rowid): the `queue_entered` range.
const MEMBERS: &str = "SELECT user_key, state, rowid, coalesce(first_at, entered_at), entered_at, entries, \
     attempts, tried_at, done_at, last_error, submission, asked_at, then_op FROM queue \
     WHERE sync_no = ?1 AND state = ?2 AND (entered_at, rowid) > (?3, ?4) ORDER BY entered_at, rowid LIMIT ?5";
/// A user's newest errors.
const MEMBER_ERRORS_SQL: &str =
    "SELECT user_key, reason, at FROM errors WHERE sync_no = ?1 AND user_key = ?2 ORDER BY id DESC LIMIT ?3";
/// A chunk of a sync's errored users, oldest entry first.
const ERRORED_CHUNK: &str =
    "SELECT rowid FROM queue WHERE sync_no = ?1 AND state = 4 ORDER BY entered_at, rowid LIMIT ?2";
/// A user queued again with a fresh retry window, due now, if synced or errored.
const REDRIVE: &str = "UPDATE queue SET state = 0, first_at = coalesce(first_at, entered_at), entered_at = ?2, \
     not_before = 0, due_at = ?2, attempts = 0, entries = entries + 1, tried_at = NULL, done_at = NULL, \
     last_error = NULL, submission = NULL, asked_at = NULL, then_op = 0 WHERE rowid = ?1 AND state IN (3, 4)";
/// Users of a sync in state `?4` (errored, removed, removal errored) whose last entry and
/// last outcome are older than `?2`, at most `?3`.
const PRUNE_ERRORED: &str = "DELETE FROM queue WHERE rowid IN (SELECT rowid FROM queue \
     WHERE sync_no = ?1 AND state = ?4 AND entered_at < ?2 AND coalesce(done_at, 0) < ?2 \
     ORDER BY entered_at LIMIT ?3)";
/// Where a user is, for a removal or a re-drive.
const FIND: &str = "SELECT rowid, state, then_op FROM queue WHERE sync_no = ?1 AND user_key = ?2";
/// A synced or errored user (or one whose removal was refused) to be removed: waiting, due
/// at `?3`, with the payload they were added with.
const REMOVE: &str = "UPDATE queue SET state = 6, asked_at = ?2, due_at = ?3, not_before = 0, attempts = 0, \
     tried_at = NULL, done_at = NULL, last_error = NULL, then_op = 0 WHERE rowid = ?1 AND state IN (3, 4, 10)";
/// A user still being added, to be removed once that delivery finished.
const REMOVE_AFTER: &str =
    "UPDATE queue SET then_op = 1, asked_at = ?2 WHERE rowid = ?1 AND state IN (0, 1, 2) AND then_op = 0";
/// The oldest `?1` errors (by id, which follows time), those older than `?2`.
const PRUNE_ERRORS: &str = "DELETE FROM errors WHERE id IN (SELECT id FROM errors ORDER BY id LIMIT ?1) AND at < ?2";

fn member_of(row: &Row<'_>) -> rusqlite::Result<Member> {
    let code: i64 = row.get(1)?;
    let state =
        MemberState::from_code(code).ok_or_else(|| super::conversion_error(1, "user state", &code.to_string()))?;
    let count = |i: usize| row.get::<_, i64>(i).map(|v| u32::try_from(v.max(0)).unwrap_or(u32::MAX));
    let then: i64 = row.get(12)?;
    Ok(Member {
        key: row.get(0)?,
        state,
        seq: row.get(2)?,
        first_entered_at: row.get(3)?,
        entered_at: row.get(4)?,
        entries: count(5)?,
        attempts: count(6)?,
        last_attempt_at: row.get(7)?,
        done_at: row.get(8)?,
        last_error: row.get(9)?,
        submission: row.get(10)?,
        removal_asked_at: row.get(11)?,
        then: match then {
            1 => Some(SyncAction::Remove),
            2 => Some(SyncAction::Add),
            _ => None,
        },
    })
}

pub(crate) fn member(conn: &Connection, sync_id: &str, key: &str) -> StoreResult<MemberDetail> {
    let no = sync_no(conn, sync_id)?;
    let found = conn
        .prepare_cached(&format!("SELECT {COLUMNS}, payload FROM queue WHERE sync_no = ?1 AND user_key = ?2"))
        .and_then(|mut s| s.query_row(params![no, key], |row| Ok((member_of(row)?, row.get(13)?))).optional())
        .ctx("looking up a user")?;
    let Some((member, payload)) = found else {
        return Err(not_found("user", key));
    };
    let errors = conn
        .prepare_cached(MEMBER_ERRORS_SQL)
        .and_then(|mut s| {
            s.query_map(params![no, key, MEMBER_ERRORS as i64], |row| {
                Ok(UserError { key: row.get(0)?, reason: row.get(1)?, at: row.get(2)? })
            })?
            .collect()
        })
        .ctx("reading a user's errors")?;
    Ok(MemberDetail { member, payload, errors })
}

pub(crate) fn members(
    conn: &Connection,
    sync_id: &str,
    state: MemberState,
    after: Option<MemberCursor>,
    limit: u32,
) -> StoreResult<Vec<Member>> {
    let no = sync_no(conn, sync_id)?;
    let (at, seq) = after.map_or((i64::MIN, i64::MIN), |c| (c.entered_at, c.seq));
    conn.prepare_cached(MEMBERS)
        .and_then(|mut s| s.query_map(params![no, state.code(), at, seq, i64::from(limit)], member_of)?.collect())
        .ctx("listing a sync's users")
}

pub(crate) fn redrive(conn: &Connection, sync_id: &str, which: &Redrive, now: i64, max: u32) -> StoreResult<Redriven> {
    let no = sync_no(conn, sync_id)?;
    let mut update = conn.prepare_cached(REDRIVE).ctx("preparing to re-drive users")?;
    let mut done = Redriven::default();
    let mut in_audience = 0i64;
    match which {
        Redrive::Errored => {
            let max = max.max(1);
            let rows: Vec<i64> = conn
                .prepare_cached(ERRORED_CHUNK)
                .and_then(|mut s| s.query_map(params![no, i64::from(max)], |row| row.get(0))?.collect())
                .ctx("finding errored users")?;
            for rowid in &rows {
                done.users += update.execute(params![rowid, now]).ctx("re-driving a user")? as u64;
            }
            done.more = rows.len() >= max as usize;
        }
        Redrive::Keys(keys) => {
            let mut find = conn.prepare_cached(FIND).ctx("preparing to re-drive users")?;
            let mut seen = std::collections::HashSet::with_capacity(keys.len());
            for key in keys.iter().filter(|k| seen.insert(k.as_str())) {
                let found: Option<(i64, i64)> = find
                    .query_row(params![no, key], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()
                    .ctx("finding a user")?;
                let n = match found {
                    Some((rowid, state)) => {
                        let n = update.execute(params![rowid, now]).ctx("re-driving a user")? as u64;
                        if state == super::queue::SYNCED {
                            in_audience -= n as i64;
                        }
                        n
                    }
                    None => 0,
                };
                done.users += n;
                done.skipped += 1 - n;
            }
        }
    }
    let n = done.users as i64;
    Delta { entered: n, pending: n, in_audience, ..Delta::default() }.apply(conn, no)?;
    Ok(done)
}

pub(crate) fn remove(conn: &Connection, sync_id: &str, keys: &[String], now: i64, flush: i64) -> StoreResult<Removals> {
    let no = sync_no(conn, sync_id)?;
    let mut find = conn.prepare_cached(FIND).ctx("preparing to remove users")?;
    let mut remove = conn.prepare_cached(REMOVE).ctx("preparing to remove users")?;
    let mut after = conn.prepare_cached(REMOVE_AFTER).ctx("preparing to remove users")?;
    let mut done = Removals::default();
    let mut delta = Delta::default();
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    for key in keys.iter().filter(|k| seen.insert(k.as_str())) {
        let found: Option<(i64, i64, i64)> = find
            .query_row(params![no, key], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .optional()
            .ctx("finding a user to remove")?;
        let Some((rowid, state, then_op)) = found else {
            done.skipped.push((key.clone(), RemovalSkip::Unknown));
            continue;
        };
        match removal_step(state, then_op) {
            Step::Remove => {
                let n = remove.execute(params![rowid, now, now.saturating_add(flush)]).ctx("removing a user")? as i64;
                match state {
                    super::queue::SYNCED => delta.in_audience -= n,
                    super::queue::REMOVAL_ERRORED => delta.removal_errored -= n,
                    _ => {}
                }
                delta.removing += n;
                done.removing += n as u64;
            }
            Step::RemoveAfter => {
                let n = after.execute(params![rowid, now]).ctx("removing a user")? as i64;
                delta.removing += n;
                done.removing += n as u64;
            }
            Step::Skip(why) => done.skipped.push((key.clone(), why)),
        }
    }
    delta.apply(conn, no)?;
    Ok(done)
}

pub(crate) fn prune(conn: &Connection, before: i64, max_rows: u32) -> StoreResult<Pruned> {
    let mut budget = i64::from(max_rows.max(1));
    let mut pruned = Pruned::default();
    let nos = super::queue::live_sync_nos(conn)?;
    let mut users = conn.prepare_cached(PRUNE_ERRORED).ctx("preparing to prune errored users")?;
    for no in nos {
        for state in [super::queue::ERRORED, super::queue::REMOVED, super::queue::REMOVAL_ERRORED] {
            let gone = users.execute(params![no, before, budget, state]).ctx("pruning errored users")? as i64;
            if gone > 0 {
                let mut delta = Delta { users: -gone, ..Delta::default() };
                match state {
                    super::queue::REMOVED => delta.removed = -gone,
                    super::queue::REMOVAL_ERRORED => delta.removal_errored = -gone,
                    _ => {}
                }
                delta.apply(conn, no)?;
            }
            pruned.rows += gone as u64;
            budget -= gone;
            if budget == 0 {
                pruned.more = true;
                return Ok(pruned);
            }
        }
    }
    let removed = conn
        .prepare_cached(PRUNE_ERRORS)
        .and_then(|mut s| s.execute(params![budget, before]))
        .ctx("pruning old errors")? as i64;
    pruned.rows += removed as u64;
    pruned.more = removed == budget;
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ledger_queries_are_index_ranges_without_sorting() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        assert_eq!(super::super::queue::ERRORED, 4, "the queries here say 4");
        for (sql, index) in [
            (MEMBERS, "queue_entered"),
            (MEMBER_ERRORS_SQL, "errors_user"),
            (ERRORED_CHUNK, "queue_entered"),
            (PRUNE_ERRORED, "queue_entered"),
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let params: Vec<i64> = vec![1; stmt.parameter_count()];
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(params), |row| row.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let plan = plan.join(" | ");
            assert!(plan.contains(index), "{sql}\n  uses {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}\n  sorts: {plan}");
            assert!(!plan.split(" | ").any(|step| step == "SCAN queue"), "{sql}\n  scans the queue: {plan}");
        }
    }
}
