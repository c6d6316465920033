//! Asynchronous outcomes: requests the partner accepted and finishes later.
//!
//! A submission is one row of `submissions` (the partner's request id, when to ask first) and
//! its users are queue rows in state 2 (`queue::SUBMITTED`) carrying that id. Every function moves the
//! counters in the same transaction as the rows (`in_flight` → `submitted` → `synced` /
//! `errored` / `pending`), so conservation holds in every committed state, and a crash at any
//! point leaves either the submission with all its users or neither.

use rusqlite::{Connection, OptionalExtension, params};

use super::Ctx;
use super::queue::{Delta, Held, SUBMITTED, record_outcomes, sync_no};
use crate::{NewSubmission, QueuedUser, StoreError, StoreResult, Submission, UserResult};

/// A submission's users. Without statistics the planner would prefer `queue_entered` and
/// read every submitted user of the sync.
/// A submitted removal's user (state 8) comes with when its removal was asked.
const USERS: &str = "SELECT user_key, payload, CASE state WHEN 8 THEN asked_at ELSE entered_at END, attempts, \
     state = 8 FROM queue INDEXED BY queue_submission WHERE sync_no = ?1 AND state IN (2, 8) AND submission = ?2";

pub(crate) fn submit(conn: &Connection, sync_id: &str, new: &NewSubmission) -> StoreResult<()> {
    let no = sync_no(conn, sync_id)?;
    let exists: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM submissions WHERE sync_no = ?1 AND id = ?2")
        .and_then(|mut s| s.query_row(params![no, new.id], |row| row.get(0)).optional())
        .ctx("looking up a submission")?;
    if exists.is_some() {
        return Err(StoreError::Conflict(format!("sync {sync_id} already has a submission {:?}", new.id)));
    }
    // In flight (1) becomes submitted (2); a removal in flight (7), a submitted removal (8).
    let mut mark = conn
        .prepare_cached(
            "UPDATE queue SET state = state + 1, submission = ?3 \
             WHERE sync_no = ?1 AND user_key = ?2 AND state IN (1, 7) RETURNING state",
        )
        .ctx("preparing to submit users")?;
    let (mut n, mut adds) = (0i64, 0i64);
    for key in &new.keys {
        let reached: Option<i64> =
            mark.query_row(params![no, key, new.id], |row| row.get(0)).optional().ctx("submitting a user")?;
        n += i64::from(reached.is_some());
        adds += i64::from(reached == Some(SUBMITTED));
    }
    if n < new.keys.len() as i64 {
        tracing::warn!(sync_id, ignored = new.keys.len() as i64 - n, "users not in flight were not submitted");
    }
    conn.prepare_cached(
        "INSERT INTO submissions (sync_no, id, users, attempt, submitted_at, check_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| s.execute(params![no, new.id, n, new.attempt, new.now_ms, new.check_at_ms]))
    .ctx("recording a submission")?;
    Delta { in_flight: -adds, submitted: adds, ..Delta::default() }.apply(conn, no)
}

pub(crate) fn submissions(conn: &Connection, sync_ids: &[String]) -> StoreResult<Vec<Submission>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT s.id, sub.id, sub.users, sub.attempt, sub.submitted_at, sub.check_at \
             FROM submissions sub JOIN syncs s ON s.no = sub.sync_no WHERE s.id = ?1 AND s.deleted_at IS NULL",
        )
        .ctx("preparing to list submissions")?;
    let mut all = Vec::new();
    for id in sync_ids {
        let rows = stmt
            .query_map([id], |row| {
                Ok(Submission {
                    sync_id: row.get(0)?,
                    id: row.get(1)?,
                    users: row.get::<_, i64>(2)?.max(0) as u64,
                    attempt: u32::try_from(row.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                    submitted_at_ms: row.get(4)?,
                    check_at_ms: row.get(5)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .ctx("listing submissions")?;
        all.extend(rows);
    }
    all.sort_by(|a, b| (a.submitted_at_ms, &a.sync_id, &a.id).cmp(&(b.submitted_at_ms, &b.sync_id, &b.id)));
    Ok(all)
}

pub(crate) fn submission_users(conn: &Connection, sync_id: &str, submission_id: &str) -> StoreResult<Vec<QueuedUser>> {
    let Some(no) = known_sync(conn, sync_id)? else {
        return Ok(Vec::new());
    };
    conn.prepare_cached(USERS)
        .and_then(|mut s| {
            s.query_map(params![no, submission_id], |row| {
                Ok(QueuedUser {
                    key: row.get(0)?,
                    payload: row.get(1)?,
                    entered_at: row.get(2)?,
                    attempts: u32::try_from(row.get::<_, i64>(3)?).unwrap_or(u32::MAX),
                    removal: row.get(4)?,
                })
            })?
            .collect()
        })
        .ctx("reading a submission's users")
}

pub(crate) fn settle(
    conn: &Connection,
    sync_id: &str,
    submission_id: &str,
    results: &[UserResult],
    now: i64,
) -> StoreResult<()> {
    let no = sync_no(conn, sync_id)?;
    if !forget(conn, no, submission_id)? {
        return Ok(());
    }
    let mut delta = Delta::default();
    delta.submitted -= record_outcomes(conn, no, results, now, Held::Submitted(submission_id), &mut delta)?.adds;
    // Users the outcome did not mention are not lost: they are sent again.
    let rest = conn
        .prepare_cached(
            "UPDATE queue SET state = 0, submission = NULL, not_before = ?3, due_at = ?3 \
             WHERE sync_no = ?1 AND state = 2 AND submission = ?2",
        )
        .and_then(|mut s| s.execute(params![no, submission_id, now]))
        .ctx("returning a submission's other users")? as i64;
    let rest_removals = conn
        .prepare_cached(
            "UPDATE queue SET state = CASE then_op WHEN 2 THEN 0 ELSE 6 END, then_op = 0, submission = NULL, \
             not_before = 0, due_at = ?3 WHERE sync_no = ?1 AND state = 8 AND submission = ?2",
        )
        .and_then(|mut s| s.execute(params![no, submission_id, now]))
        .ctx("returning a submission's other removals")? as i64;
    if rest + rest_removals > 0 {
        tracing::warn!(
            sync_id,
            submission_id,
            rest,
            rest_removals,
            "a settled submission left users without an outcome; they are sent again"
        );
    }
    delta.submitted -= rest;
    delta.pending += rest;
    delta.apply(conn, no)
}

pub(crate) fn reopen(conn: &Connection, sync_id: &str, submission_id: &str) -> StoreResult<Vec<QueuedUser>> {
    let Some(no) = known_sync(conn, sync_id)? else {
        return Ok(Vec::new());
    };
    let users = submission_users(conn, sync_id, submission_id)?;
    if !forget(conn, no, submission_id)? {
        return Ok(Vec::new());
    }
    let n = conn
        .prepare_cached(
            "UPDATE queue SET state = 1, submission = NULL WHERE sync_no = ?1 AND state = 2 AND submission = ?2",
        )
        .and_then(|mut s| s.execute(params![no, submission_id]))
        .ctx("reopening a submission")? as i64;
    conn.prepare_cached(
        "UPDATE queue SET state = 7, submission = NULL WHERE sync_no = ?1 AND state = 8 AND submission = ?2",
    )
    .and_then(|mut s| s.execute(params![no, submission_id]))
    .ctx("reopening a submission's removals")?;
    Delta { submitted: -n, in_flight: n, ..Delta::default() }.apply(conn, no)?;
    Ok(users)
}

/// Deletes the submission row; whether there was one.
fn forget(conn: &Connection, no: i64, submission_id: &str) -> StoreResult<bool> {
    let deleted = conn
        .prepare_cached("DELETE FROM submissions WHERE sync_no = ?1 AND id = ?2")
        .and_then(|mut s| s.execute(params![no, submission_id]))
        .ctx("forgetting a submission")?;
    Ok(deleted == 1)
}

/// The sync's number, or `None` when it was deleted.
fn known_sync(conn: &Connection, sync_id: &str) -> StoreResult<Option<i64>> {
    match sync_no(conn, sync_id) {
        Ok(no) => Ok(Some(no)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_submissions_users_are_read_through_their_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {USERS}")).unwrap();
        let plan: Vec<String> =
            stmt.query_map(params![1, "x"], |row| row.get::<_, String>(3)).unwrap().map(Result::unwrap).collect();
        let plan = plan.join(" | ");
        assert!(plan.contains("queue_submission"), "{plan}");
        assert_eq!(super::super::queue::SUBMITTED, 2, "the queries here say 2");
    }
}
