//! The user queue and the counters: the hot, large part of the store.
//!
//! Every function runs inside one transaction (the writer's group, or a reader's snapshot)
//! and moves the counters in that same transaction as the queue rows, so conservation
//! (`entered = not_synced + pending + in_flight + submitted + synced + errored`) holds in every
//! committed state. The queue is the sync's ledger: a user has one row, pending (`state = 0`),
//! in flight (1), submitted (2), synced (3), errored (4) or not synced (5), from their first
//! entry until the sync is deleted (an errored user: until pruned, see `ledger.rs`). Delivery
//! writes no more than when rows left the queue: one insert at entry, then updates of that row
//! (a state change that deleted the row updates it instead). Claims, expiry, `next_due` and
//! recovery read only rows of their own state through indexes led by `(sync_no, state)`.
//!
//! Due times: a new user has `not_before = 0` (no wait) and is due at `entered + flush`; a
//! retried user has `not_before = due_at = ` the retry time. So a pending user is claimable
//! when `due_at <= now`, or when it has no wait (`not_before = 0`). `claim_batch` reads those
//! two sets through two indexes, each a range scan of at most `max` entries, whatever the
//! number of users waiting for retries.

use rusqlite::{Connection, OptionalExtension, params};

use super::Ctx;
use super::catalog::not_found;
use crate::{
    Claim, Counts, EXPIRE_CHUNK, EnterOutcome, Entry, QueuedUser, StoreResult, UserError, UserOutcome, UserResult,
};

/// Longest error reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 500;

const PENDING: i64 = 0;
const IN_FLIGHT: i64 = 1;
/// Sent in a request the partner finishes later (see `submissions.rs`).
pub(crate) const SUBMITTED: i64 = 2;
/// Accepted by the partner (kept in the ledger).
pub(crate) const SYNCED: i64 = 3;
/// Refused for good or out of the retry window (kept in the ledger until pruned).
pub(crate) const ERRORED: i64 = 4;
/// A removal's states: waiting, in a request, submitted (an add's plus [`REMOVAL`]), then
/// removed and refused.
const REMOVAL: i64 = 6;
const REMOVING: i64 = 6;
const REMOVAL_IN_FLIGHT: i64 = 7;
const REMOVAL_SUBMITTED: i64 = 8;
pub(crate) const REMOVED: i64 = 9;
pub(crate) const REMOVAL_ERRORED: i64 = 10;
/// `then_op`: remove the user once the add they are in finished.
const THEN_REMOVE: i64 = 1;
/// `then_op`: add the user again once the removal they are in finished.
const THEN_ADD: i64 = 2;

// The queries that must stay index lookups with millions of rows (see the plan test below).

/// Pending users already due, in due order.
const CLAIM_DUE: &str = "SELECT rowid, user_key, payload, entered_at, attempts FROM queue \
     WHERE sync_no = ?1 AND state = 0 AND due_at <= ?2 ORDER BY due_at, rowid LIMIT ?3";
/// Pending users with no wait that are not due yet, in due order. Without statistics the
/// planner would prefer `queue_due` and skip over every user waiting for a retry.
const CLAIM_FILL: &str = "SELECT rowid, user_key, payload, entered_at, attempts FROM queue \
     INDEXED BY queue_fresh WHERE sync_no = ?1 AND state = 0 AND not_before = 0 AND due_at > ?2 \
     ORDER BY due_at, rowid LIMIT ?3";
/// Pending users past the retry window, oldest first, at most `?3` (one chunk).
const EXPIRE_SELECT: &str = "SELECT rowid, user_key FROM queue \
     WHERE sync_no = ?1 AND state = 0 AND entered_at < ?2 ORDER BY entered_at, rowid LIMIT ?3";
/// Removals waiting that are due at `?3` or have no retry wait, in due order (`due_at` last).
const CLAIM_REMOVALS: &str = "SELECT rowid, user_key, payload, asked_at, attempts, due_at FROM queue \
     WHERE sync_no = ?1 AND state = 6 AND (due_at <= ?3 OR not_before = 0) ORDER BY due_at, rowid LIMIT ?2";
/// Removals waiting that were asked before `?2`, at most `?3` (one chunk). Reads the sync's
/// waiting removals (the `queue_due` range of state 6), few next to its users.
const EXPIRE_REMOVALS: &str = "SELECT rowid, user_key FROM queue \
     WHERE sync_no = ?1 AND state = 6 AND asked_at < ?2 ORDER BY due_at, rowid LIMIT ?3";
/// The earliest due time of a sync's pending users.
const NEXT_DUE: &str = "SELECT q.due_at FROM queue q WHERE q.state = ?2 \
     AND q.sync_no = (SELECT no FROM syncs WHERE id = ?1 AND deleted_at IS NULL) ORDER BY q.due_at LIMIT 1";
/// The earliest entry time of a sync's users in one state.
const OLDEST: &str = "SELECT entered_at FROM queue WHERE sync_no = ?1 AND state = ?2 \
     ORDER BY entered_at LIMIT 1";
/// In-flight users of a sync back to pending, due now.
const RECOVER: &str = "UPDATE queue SET state = 0, not_before = ?2, due_at = ?2 WHERE sync_no = ?1 AND state = 1";
/// Removals in flight back to waiting, due now (or to pending, for a user who entered again).
const RECOVER_REMOVALS: &str = "UPDATE queue SET state = CASE then_op WHEN 2 THEN 0 ELSE 6 END, then_op = 0, \
     not_before = 0, due_at = ?2 WHERE sync_no = ?1 AND state = 7";
/// A sync's newest errors.
const RECENT_ERRORS: &str = "SELECT user_key, reason, at FROM errors WHERE sync_no = ?1 ORDER BY id DESC LIMIT ?2";

/// The internal number of a sync, or `NotFound` (also once it is deleted).
pub(crate) fn sync_no(conn: &Connection, sync_id: &str) -> StoreResult<i64> {
    conn.prepare_cached("SELECT no FROM syncs WHERE id = ?1 AND deleted_at IS NULL")
        .and_then(|mut s| s.query_row([sync_id], |row| row.get(0)).optional())
        .ctx("looking up a sync")?
        .ok_or_else(|| not_found("sync", sync_id))
}

/// Adds to a sync's counters.
#[derive(Default)]
pub(crate) struct Delta {
    pub(crate) entered: i64,
    pub(crate) proceeded: i64,
    pub(crate) not_synced: i64,
    pub(crate) pending: i64,
    pub(crate) in_flight: i64,
    pub(crate) submitted: i64,
    pub(crate) synced: i64,
    pub(crate) errored: i64,
    pub(crate) deduplicated: i64,
    pub(crate) retries: i64,
    pub(crate) users: i64,
    pub(crate) in_audience: i64,
    pub(crate) removing: i64,
    pub(crate) removed: i64,
    pub(crate) removal_errored: i64,
    pub(crate) already_in_audience: i64,
}

impl Delta {
    pub(crate) fn apply(&self, conn: &Connection, no: i64) -> StoreResult<()> {
        conn.prepare_cached(
            "UPDATE counters SET entered = entered + ?2, proceeded = proceeded + ?3, \
             not_synced = not_synced + ?4, pending = pending + ?5, in_flight = in_flight + ?6, \
             synced = synced + ?7, errored = errored + ?8, deduplicated = deduplicated + ?9, \
             retries = retries + ?10, submitted = submitted + ?11, users = users + ?12, \
             in_audience = in_audience + ?13, removing = removing + ?14, removed = removed + ?15, \
             removal_errored = removal_errored + ?16, already_in_audience = already_in_audience + ?17 \
             WHERE sync_no = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                no,
                self.entered,
                self.proceeded,
                self.not_synced,
                self.pending,
                self.in_flight,
                self.synced,
                self.errored,
                self.deduplicated,
                self.retries,
                self.submitted,
                self.users,
                self.in_audience,
                self.removing,
                self.removed,
                self.removal_errored,
                self.already_in_audience
            ])
        })
        .ctx("updating a sync's counters")?;
        Ok(())
    }
}

/// Queues a user new to the ledger (the hot path: one insert, as before the ledger).
const ENTER: &str = "INSERT INTO queue (sync_no, user_key, state, payload, entered_at, not_before, due_at) \
     VALUES (?1, ?2, 0, ?3, ?4, 0, ?5) ON CONFLICT (sync_no, user_key) DO NOTHING";
/// Where a user the ledger holds is, when they enter again.
const ENTER_FIND: &str = "SELECT state, then_op FROM queue WHERE sync_no = ?1 AND user_key = ?2";
/// Queues again a user the ledger holds in state `?6` (synced, errored, not synced, removing,
/// removed, removal errored): a fresh entry with the new payload, attempts reset, first entry
/// kept, any removal forgotten.
const ENTER_AGAIN: &str = "UPDATE queue SET state = 0, payload = ?3, first_at = coalesce(first_at, entered_at), \
     entered_at = ?4, not_before = 0, due_at = ?5, attempts = 0, entries = entries + 1, tried_at = NULL, \
     done_at = NULL, last_error = NULL, submission = NULL, asked_at = NULL, then_op = 0 \
     WHERE sync_no = ?1 AND user_key = ?2 AND state = ?6";
/// A user entering again while their removal is in a request: added again once it finished.
const ENTER_AFTER_REMOVAL: &str = "UPDATE queue SET then_op = 2, payload = ?3, \
     first_at = coalesce(first_at, entered_at), entered_at = ?4, entries = entries + 1 \
     WHERE sync_no = ?1 AND user_key = ?2 AND state IN (7, 8) AND then_op = 0";
/// A user entering again while still being added, whose removal was asked meanwhile: the
/// removal is forgotten.
const KEEP_ADDING: &str = "UPDATE queue SET then_op = 0, asked_at = NULL \
     WHERE sync_no = ?1 AND user_key = ?2 AND state IN (0, 1, 2) AND then_op = 1";
/// A not-synced user new to the ledger (a key it holds keeps its row).
const ENTER_NOT_SYNCED: &str = "INSERT INTO queue \
     (sync_no, user_key, state, payload, entered_at, not_before, due_at, done_at, last_error) \
     VALUES (?1, ?2, 5, x'', ?3, 0, 0, ?3, ?4) ON CONFLICT (sync_no, user_key) DO NOTHING";

pub(crate) fn enter(conn: &Connection, sync_id: &str, entry: &Entry) -> StoreResult<EnterOutcome> {
    let no = sync_no(conn, sync_id)?;
    let due = entry.now_ms.saturating_add(entry.flush_ms);
    let mut insert = conn.prepare_cached(ENTER).ctx("preparing to queue users")?;
    let mut delta = Delta::default();
    let mut outcome = EnterOutcome::default();
    for user in &entry.ready {
        if insert.execute(params![no, user.key, user.payload, entry.now_ms, due]).ctx("queueing a user")? == 1 {
            outcome.queued += 1;
            delta.users += 1;
            continue;
        }
        match enter_again(conn, no, user, entry, due, &mut delta)? {
            Again::Queued => outcome.queued += 1,
            Again::Deduplicated => outcome.deduplicated += 1,
            Again::InAudience => outcome.already_in_audience += 1,
        }
    }
    if !entry.not_synced.is_empty() {
        let mut record = conn.prepare_cached(ENTER_NOT_SYNCED).ctx("preparing to record users not synced")?;
        for (key, reason) in &entry.not_synced {
            delta.users += record
                .execute(params![no, key, entry.now_ms, truncate_reason(reason)])
                .ctx("recording a user not synced")? as i64;
        }
    }
    outcome.not_synced = entry.not_synced.len() as u64;
    delta.proceeded += (entry.ready.len() + entry.not_synced.len()) as i64;
    delta.entered += (outcome.queued + outcome.not_synced) as i64;
    delta.pending += outcome.queued as i64;
    delta.not_synced += outcome.not_synced as i64;
    delta.deduplicated += outcome.deduplicated as i64;
    delta.already_in_audience += outcome.already_in_audience as i64;
    delta.apply(conn, no)?;
    Ok(outcome)
}

/// What a user the ledger holds becomes when they enter again.
enum Again {
    Queued,
    Deduplicated,
    InAudience,
}

/// A user already in the ledger enters again (the rare path: a read, then an update). Moves
/// the counters of the rows (`in_audience`, `removing`, ...) in `delta`; the entry's own are
/// moved by the caller from the answer.
fn enter_again(
    conn: &Connection,
    no: i64,
    user: &crate::ReadyUser,
    entry: &Entry,
    due: i64,
    delta: &mut Delta,
) -> StoreResult<Again> {
    let found: Option<(i64, i64)> = conn
        .prepare_cached(ENTER_FIND)
        .and_then(|mut s| s.query_row(params![no, user.key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .ctx("finding a user entering again")?;
    // The row was inserted by this very call (a key twice in one entry): the first stands.
    let Some((state, then_op)) = found else { return Ok(Again::Deduplicated) };
    let again = |delta: &mut Delta| -> StoreResult<Again> {
        let n = conn
            .prepare_cached(ENTER_AGAIN)
            .and_then(|mut s| s.execute(params![no, user.key, user.payload, entry.now_ms, due, state]))
            .ctx("queueing a user again")?;
        match state {
            SYNCED => delta.in_audience -= n as i64,
            REMOVING => delta.removing -= n as i64,
            REMOVED => delta.removed -= n as i64,
            REMOVAL_ERRORED => delta.removal_errored -= n as i64,
            _ => {}
        }
        Ok(if n == 1 { Again::Queued } else { Again::Deduplicated })
    };
    match state {
        PENDING | IN_FLIGHT | SUBMITTED => {
            if then_op == THEN_REMOVE {
                let n = conn
                    .prepare_cached(KEEP_ADDING)
                    .and_then(|mut s| s.execute(params![no, user.key]))
                    .ctx("keeping a user entering again")?;
                delta.removing -= n as i64;
            }
            Ok(Again::Deduplicated)
        }
        SYNCED if entry.skip_synced => Ok(Again::InAudience),
        REMOVAL_IN_FLIGHT | REMOVAL_SUBMITTED => {
            if then_op == THEN_ADD {
                return Ok(Again::Deduplicated);
            }
            let n = conn
                .prepare_cached(ENTER_AFTER_REMOVAL)
                .and_then(|mut s| s.execute(params![no, user.key, user.payload, entry.now_ms]))
                .ctx("queueing a user again after their removal")?;
            delta.removing -= n as i64;
            Ok(if n == 1 { Again::Queued } else { Again::Deduplicated })
        }
        _ => again(delta),
    }
}

/// `store_now` is the store's clock (ms), for the lane fence; `claim.now_ms` is the caller's.
pub(crate) fn claim_batch(
    conn: &Connection,
    sync_id: &str,
    claim: &Claim,
    store_now: i64,
) -> StoreResult<Vec<QueuedUser>> {
    let no = sync_no(conn, sync_id)?;
    if let Some(owner) = &claim.lane_owner {
        super::lanes::check_lane(conn, no, owner, store_now)?;
    }
    if expire(conn, no, claim)? || expire_removals(conn, no, claim)? || claim.max == 0 {
        // A full chunk of users expired: more may be past their window, for the next claim.
        return Ok(Vec::new());
    }
    let removals = claim_removals(conn, no, claim)?;
    if !removals.is_empty() {
        return Ok(removals);
    }
    let max = i64::try_from(claim.max).unwrap_or(i64::MAX);
    // Already due, in due order (all claimable: a pending user's wait never exceeds its due).
    let mut rows = select_claimable(conn, CLAIM_DUE, no, claim.now_ms, max)?;
    if rows.len() < claim.max {
        // Then users not yet due but with no wait, to fill the batch; all due later than the
        // rows above, so the order by due time holds across both.
        let more = select_claimable(conn, CLAIM_FILL, no, claim.now_ms, max - rows.len() as i64)?;
        let first_is_due = !rows.is_empty();
        rows.extend(more);
        if !first_is_due && rows.len() < claim.max {
            // A partial batch whose first user is not due yet: wait for its flush time.
            return Ok(Vec::new());
        }
    }
    let mut mark = conn
        .prepare_cached("UPDATE queue SET state = 1, tried_at = ?2 WHERE rowid = ?1")
        .ctx("preparing to claim users")?;
    let mut batch = Vec::with_capacity(rows.len());
    for (rowid, user) in rows {
        mark.execute([rowid, claim.now_ms]).ctx("claiming a user")?;
        batch.push(user);
    }
    let n = batch.len() as i64;
    Delta { pending: -n, in_flight: n, ..Delta::default() }.apply(conn, no)?;
    Ok(batch)
}

/// Pending users whose retry window is over become errored with the claim's reason, at most
/// [`EXPIRE_CHUNK`] of them, oldest first. Returns whether the chunk was full.
fn expire(conn: &Connection, no: i64, claim: &Claim) -> StoreResult<bool> {
    let reason = truncate_reason(&claim.expired_reason);
    let rows: Vec<(i64, String)> = conn
        .prepare_cached(EXPIRE_SELECT)
        .and_then(|mut s| {
            s.query_map(params![no, claim.expire_before_ms, EXPIRE_CHUNK], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .ctx("finding expired users")?;
    if rows.is_empty() {
        return Ok(false);
    }
    let mut record = conn
        .prepare_cached("INSERT INTO errors (sync_no, user_key, reason, at) VALUES (?1, ?2, ?3, ?4)")
        .ctx("recording expired users")?;
    let mut fail = conn
        .prepare_cached("UPDATE queue SET state = 4, last_error = ?2, done_at = ?3 WHERE rowid = ?1")
        .ctx("erroring expired users")?;
    for (rowid, key) in &rows {
        record.execute(params![no, key, reason, claim.now_ms]).ctx("recording an expired user")?;
        fail.execute(params![rowid, reason, claim.now_ms]).ctx("erroring an expired user")?;
    }
    let expired = rows.len() as i64;
    tracing::info!(sync_no = no, expired, "users errored: retry window over");
    Delta { pending: -expired, errored: expired, ..Delta::default() }.apply(conn, no)?;
    Ok(rows.len() >= EXPIRE_CHUNK as usize)
}

/// A batch of removals, claimed before any add: the oldest waiting, when the first is due or
/// the batch is full. Empty when there is none to send now.
fn claim_removals(conn: &Connection, no: i64, claim: &Claim) -> StoreResult<Vec<QueuedUser>> {
    let max = i64::try_from(claim.max).unwrap_or(i64::MAX);
    let rows: Vec<(i64, i64, QueuedUser)> = conn
        .prepare_cached(CLAIM_REMOVALS)
        .and_then(|mut s| {
            s.query_map(params![no, max, claim.now_ms], |row| {
                let attempts: i64 = row.get(4)?;
                Ok((
                    row.get(0)?,
                    row.get(5)?,
                    QueuedUser {
                        key: row.get(1)?,
                        payload: row.get(2)?,
                        entered_at: row.get(3)?,
                        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                        removal: true,
                    },
                ))
            })?
            .collect()
        })
        .ctx("reading removals to claim")?;
    let ready = rows.first().is_some_and(|(_, due, _)| *due <= claim.now_ms) || rows.len() >= claim.max;
    if !ready {
        return Ok(Vec::new());
    }
    let mut mark = conn
        .prepare_cached("UPDATE queue SET state = 7, tried_at = ?2 WHERE rowid = ?1")
        .ctx("preparing to claim removals")?;
    let mut batch = Vec::with_capacity(rows.len());
    for (rowid, _, user) in rows {
        mark.execute([rowid, claim.now_ms]).ctx("claiming a removal")?;
        batch.push(user);
    }
    Ok(batch)
}

/// Removals asked before the retry window become `removal_errored`, at most [`EXPIRE_CHUNK`].
/// Returns whether the chunk was full.
fn expire_removals(conn: &Connection, no: i64, claim: &Claim) -> StoreResult<bool> {
    let reason = crate::removal::failed_removal_reason(&claim.expired_reason);
    let reason = reason.as_str();
    let rows: Vec<(i64, String)> = conn
        .prepare_cached(EXPIRE_REMOVALS)
        .and_then(|mut s| {
            s.query_map(params![no, claim.expire_before_ms, EXPIRE_CHUNK], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect()
        })
        .ctx("finding expired removals")?;
    if rows.is_empty() {
        return Ok(false);
    }
    let mut record = conn
        .prepare_cached("INSERT INTO errors (sync_no, user_key, reason, at) VALUES (?1, ?2, ?3, ?4)")
        .ctx("recording expired removals")?;
    let mut fail = conn
        .prepare_cached("UPDATE queue SET state = 10, last_error = ?2, done_at = ?3 WHERE rowid = ?1")
        .ctx("erroring expired removals")?;
    for (rowid, key) in &rows {
        record.execute(params![no, key, reason, claim.now_ms]).ctx("recording an expired removal")?;
        fail.execute(params![rowid, reason, claim.now_ms]).ctx("erroring an expired removal")?;
    }
    let expired = rows.len() as i64;
    tracing::info!(sync_no = no, expired, "removals errored: retry window over");
    Delta { removing: -expired, removal_errored: expired, ..Delta::default() }.apply(conn, no)?;
    Ok(rows.len() >= EXPIRE_CHUNK as usize)
}

fn select_claimable(
    conn: &Connection,
    sql: &str,
    no: i64,
    now: i64,
    limit: i64,
) -> StoreResult<Vec<(i64, QueuedUser)>> {
    let mut stmt = conn.prepare_cached(sql).ctx("preparing to claim users")?;
    stmt.query_map(params![no, now, limit], |row| {
        let attempts: i64 = row.get(4)?;
        Ok((
            row.get(0)?,
            QueuedUser {
                key: row.get(1)?,
                payload: row.get(2)?,
                entered_at: row.get(3)?,
                attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                removal: false,
            },
        ))
    })
    .and_then(|rows| rows.collect())
    .ctx("reading users to claim")
}

/// Where the users whose outcomes are recorded are held: in flight (a claimed batch), or
/// submitted in one partner request.
#[derive(Clone, Copy)]
pub(crate) enum Held<'a> {
    /// Claimed, in a request right now.
    InFlight,
    /// In the partner's request with this id, not finished yet.
    Submitted(&'a str),
}

/// How many users a batch's outcomes moved out of where they were held.
#[derive(Default)]
pub(crate) struct Left {
    /// Users being added (their `in_flight` / `submitted` counters go down by as many).
    pub(crate) adds: i64,
    /// Users being removed (counted in `removing` throughout).
    pub(crate) removals: i64,
}

// What a batch's outcomes do to its users. An add's statements finish a user whose removal was
// asked meanwhile (`then_op = 1`) as a waiting removal, due now; a removal's put a user who
// entered meanwhile (`then_op = 2`) back to pending, due now, whatever the outcome. Each
// returns the state reached, so the caller moves the counters that state means.
const FINISH_ADD: &str = "UPDATE queue SET state = CASE then_op WHEN 1 THEN 6 ELSE ?5 END, \
     attempts = CASE then_op WHEN 1 THEN 0 ELSE attempts + 1 END, done_at = ?6, \
     last_error = coalesce(?7, last_error), due_at = CASE then_op WHEN 1 THEN ?6 ELSE due_at END, \
     not_before = CASE then_op WHEN 1 THEN 0 ELSE not_before END, then_op = 0 \
     WHERE sync_no = ?1 AND user_key = ?2 AND state = ?3 AND submission IS ?4 RETURNING state";
const RETRY_ADD: &str = "UPDATE queue SET state = 0, submission = NULL, attempts = attempts + 1, \
     not_before = ?5, due_at = ?5, last_error = ?6 \
     WHERE sync_no = ?1 AND user_key = ?2 AND state = ?3 AND submission IS ?4";
const UNSEND_ADD: &str = "UPDATE queue SET state = 0, submission = NULL \
     WHERE sync_no = ?1 AND user_key = ?2 AND state = ?3 AND submission IS ?4";
const FINISH_REMOVAL: &str = "UPDATE queue SET state = CASE then_op WHEN 2 THEN 0 ELSE ?5 END, \
     attempts = CASE then_op WHEN 2 THEN 0 ELSE attempts + 1 END, \
     done_at = CASE then_op WHEN 2 THEN NULL ELSE ?6 END, \
     last_error = CASE then_op WHEN 2 THEN NULL ELSE coalesce(?7, last_error) END, \
     due_at = CASE then_op WHEN 2 THEN ?6 ELSE due_at END, not_before = 0, \
     submission = CASE then_op WHEN 2 THEN NULL ELSE submission END, then_op = 0 \
     WHERE sync_no = ?1 AND user_key = ?2 AND state = ?3 AND submission IS ?4 RETURNING state";
const RETRY_REMOVAL: &str = "UPDATE queue SET state = CASE then_op WHEN 2 THEN 0 ELSE 6 END, submission = NULL, \
     attempts = CASE then_op WHEN 2 THEN 0 ELSE attempts + 1 END, \
     not_before = CASE then_op WHEN 2 THEN 0 ELSE ?5 END, due_at = CASE then_op WHEN 2 THEN ?7 ELSE ?5 END, \
     last_error = CASE then_op WHEN 2 THEN NULL ELSE ?6 END, then_op = 0 \
     WHERE sync_no = ?1 AND user_key = ?2 AND state = ?3 AND submission IS ?4";
const UNSEND_REMOVAL: &str = "UPDATE queue SET state = CASE then_op WHEN 2 THEN 0 ELSE 6 END, submission = NULL, \
     then_op = 0 WHERE sync_no = ?1 AND user_key = ?2 AND state = ?3 AND submission IS ?4";

/// Records what happened to users of sync `no` held as `held` (others are left alone): an
/// added user is synced or errored (the reason kept, also in `errors`) and stays in the
/// ledger, or is retried (pending again); a removed user is removed or `removal_errored`, or
/// retried (waiting again). Each result's user is looked for as an add, then as a removal.
/// The new states' counters move in `delta`.
pub(crate) fn record_outcomes(
    conn: &Connection,
    no: i64,
    results: &[UserResult],
    now: i64,
    held: Held<'_>,
    delta: &mut Delta,
) -> StoreResult<Left> {
    let (state, submission) = match held {
        Held::InFlight => (IN_FLIGHT, None),
        Held::Submitted(id) => (SUBMITTED, Some(id)),
    };
    let mut finish = conn.prepare_cached(FINISH_ADD).ctx("preparing to record outcomes")?;
    let mut retry = conn.prepare_cached(RETRY_ADD).ctx("preparing to record outcomes")?;
    let mut unsend = conn.prepare_cached(UNSEND_ADD).ctx("preparing to record outcomes")?;
    let mut record_error = conn
        .prepare_cached("INSERT INTO errors (sync_no, user_key, reason, at) VALUES (?1, ?2, ?3, ?4)")
        .ctx("preparing to record outcomes")?;
    let mut left = Left::default();
    let mut removals = Vec::new();
    for result in results {
        let done = match &result.outcome {
            UserOutcome::Synced => {
                let reached: Option<i64> = finish
                    .query_row(params![no, result.key, state, submission, SYNCED, now, None::<&str>], |r| r.get(0))
                    .optional()
                    .ctx("completing a user")?;
                if let Some(reached) = reached {
                    delta.synced += 1;
                    delta.in_audience += i64::from(reached == SYNCED);
                }
                reached.is_some()
            }
            UserOutcome::Errored(reason) => {
                let reason = truncate_reason(reason);
                let reached: Option<i64> = finish
                    .query_row(params![no, result.key, state, submission, ERRORED, now, reason], |r| r.get(0))
                    .optional()
                    .ctx("completing a user")?;
                if reached.is_some() {
                    record_error.execute(params![no, result.key, reason, now]).ctx("recording a user's error")?;
                    delta.errored += 1;
                }
                reached.is_some()
            }
            UserOutcome::Retry { not_before_ms, error } => {
                let done = retry
                    .execute(params![no, result.key, state, submission, not_before_ms, truncate_reason(error)])
                    .ctx("scheduling a retry")?
                    == 1;
                if done {
                    delta.pending += 1;
                    delta.retries += 1;
                }
                done
            }
            UserOutcome::Unsent => {
                let done =
                    unsend.execute(params![no, result.key, state, submission]).ctx("returning a user unsent")? == 1;
                delta.pending += i64::from(done);
                done
            }
        };
        if done {
            left.adds += 1;
        } else {
            removals.push(result);
        }
    }
    if !removals.is_empty() {
        left.removals = record_removals(conn, no, &removals, now, state + REMOVAL, submission, delta)?;
    }
    Ok(left)
}

/// [`record_outcomes`] for the users held as removals (in state `state`, 7 or 8).
fn record_removals(
    conn: &Connection,
    no: i64,
    results: &[&UserResult],
    now: i64,
    state: i64,
    submission: Option<&str>,
    delta: &mut Delta,
) -> StoreResult<i64> {
    let mut finish = conn.prepare_cached(FINISH_REMOVAL).ctx("preparing to record removals")?;
    let mut retry = conn.prepare_cached(RETRY_REMOVAL).ctx("preparing to record removals")?;
    let mut unsend = conn.prepare_cached(UNSEND_REMOVAL).ctx("preparing to record removals")?;
    let mut record_error = conn
        .prepare_cached("INSERT INTO errors (sync_no, user_key, reason, at) VALUES (?1, ?2, ?3, ?4)")
        .ctx("preparing to record removals")?;
    let mut left = 0;
    for result in results {
        let done = match &result.outcome {
            UserOutcome::Synced => {
                let reached: Option<i64> = finish
                    .query_row(params![no, result.key, state, submission, REMOVED, now, None::<&str>], |r| r.get(0))
                    .optional()
                    .ctx("completing a removal")?;
                if reached == Some(REMOVED) {
                    delta.removing -= 1;
                    delta.removed += 1;
                }
                reached.is_some()
            }
            UserOutcome::Errored(reason) => {
                let reason = crate::removal::failed_removal_reason(reason);
                let reason = reason.as_str();
                let reached: Option<i64> = finish
                    .query_row(params![no, result.key, state, submission, REMOVAL_ERRORED, now, reason], |r| r.get(0))
                    .optional()
                    .ctx("completing a removal")?;
                if reached == Some(REMOVAL_ERRORED) {
                    record_error.execute(params![no, result.key, reason, now]).ctx("recording a removal's error")?;
                    delta.removing -= 1;
                    delta.removal_errored += 1;
                }
                reached.is_some()
            }
            UserOutcome::Retry { not_before_ms, error } => {
                retry
                    .execute(params![no, result.key, state, submission, not_before_ms, truncate_reason(error), now])
                    .ctx("scheduling a removal's retry")?
                    == 1
            }
            UserOutcome::Unsent => {
                unsend.execute(params![no, result.key, state, submission]).ctx("returning a removal unsent")? == 1
            }
        };
        left += i64::from(done);
    }
    Ok(left)
}

pub(crate) fn complete(conn: &Connection, sync_id: &str, results: &[UserResult], now: i64) -> StoreResult<()> {
    let no = sync_no(conn, sync_id)?;
    let mut delta = Delta::default();
    let left = record_outcomes(conn, no, results, now, Held::InFlight, &mut delta)?;
    delta.in_flight -= left.adds;
    let not_in_flight = results.len() as i64 - left.adds - left.removals;
    if not_in_flight > 0 {
        // Counting them would break conservation; the engine reported a user twice or after
        // a recovery. Their current state stands.
        tracing::warn!(sync_id, not_in_flight, "outcomes for users not in flight were ignored");
    }
    delta.apply(conn, no)
}

pub(crate) fn recover_in_flight(conn: &Connection, now: i64) -> StoreResult<u64> {
    recover_syncs(conn, &live_sync_nos(conn)?, now)
}

/// The numbers of the syncs not deleted, in order.
pub(crate) fn live_sync_nos(conn: &Connection) -> StoreResult<Vec<i64>> {
    conn.prepare_cached("SELECT no FROM syncs WHERE deleted_at IS NULL ORDER BY no")
        .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
        .ctx("listing syncs")
}

/// In-flight users of these syncs back to pending, due `now`, with their counters. Returns
/// how many.
pub(crate) fn recover_syncs(conn: &Connection, nos: &[i64], now: i64) -> StoreResult<u64> {
    let mut recover = conn.prepare_cached(RECOVER).ctx("preparing to recover in-flight users")?;
    let mut removals = conn.prepare_cached(RECOVER_REMOVALS).ctx("preparing to recover in-flight removals")?;
    let mut total = 0u64;
    for &no in nos {
        let n = recover.execute(params![no, now]).ctx("recovering in-flight users")? as i64;
        if n > 0 {
            Delta { pending: n, in_flight: -n, ..Delta::default() }.apply(conn, no)?;
            total += n as u64;
        }
        // Their counters (`removing`, or `pending` for a user who entered again) stand.
        total += removals.execute(params![no, now]).ctx("recovering in-flight removals")? as u64;
    }
    Ok(total)
}

pub(crate) fn next_due(conn: &Connection, sync_ids: &[String]) -> StoreResult<Option<i64>> {
    let mut stmt = conn.prepare_cached(NEXT_DUE).ctx("preparing to find the next due time")?;
    let mut earliest: Option<i64> = None;
    for id in sync_ids {
        // A sync deleted meanwhile simply has nothing due.
        for state in [PENDING, REMOVING] {
            let due: Option<i64> =
                stmt.query_row(params![id, state], |row| row.get(0)).optional().ctx("finding the next due time")?;
            earliest = match (earliest, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    Ok(earliest)
}

pub(crate) fn counts(conn: &Connection, sync_id: &str) -> StoreResult<Counts> {
    conn.prepare_cached(
        "SELECT c.entered, c.proceeded, c.not_synced, c.pending, c.in_flight, c.synced, \
         c.errored, c.deduplicated, c.retries, c.submitted, c.users, c.in_audience, c.removing, c.removed, \
         c.removal_errored, c.already_in_audience FROM counters c JOIN syncs s ON s.no = c.sync_no \
         WHERE s.id = ?1 AND s.deleted_at IS NULL",
    )
    .and_then(|mut s| {
        s.query_row([sync_id], |row| {
            let get = |i: usize| row.get::<_, i64>(i).map(|v| v.max(0) as u64);
            Ok(Counts {
                entered: get(0)?,
                proceeded: get(1)?,
                not_synced: get(2)?,
                pending: get(3)?,
                in_flight: get(4)?,
                synced: get(5)?,
                errored: get(6)?,
                deduplicated: get(7)?,
                retries: get(8)?,
                submitted: get(9)?,
                users: get(10)?,
                in_audience: get(11)?,
                removing: get(12)?,
                removed: get(13)?,
                removal_errored: get(14)?,
                already_in_audience: get(15)?,
            })
        })
        .optional()
    })
    .ctx("reading a sync's counters")?
    .ok_or_else(|| not_found("sync", sync_id))
}

pub(crate) fn oldest_pending(conn: &Connection, sync_id: &str) -> StoreResult<Option<i64>> {
    let no = sync_no(conn, sync_id)?;
    let mut stmt = conn.prepare_cached(OLDEST).ctx("preparing to find the oldest pending user")?;
    let mut oldest: Option<i64> = None;
    for state in [PENDING, IN_FLIGHT, SUBMITTED] {
        let at: Option<i64> =
            stmt.query_row(params![no, state], |row| row.get(0)).optional().ctx("finding the oldest pending user")?;
        oldest = match (oldest, at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(oldest)
}

pub(crate) fn record_sync_error(conn: &Connection, sync_id: &str, reason: &str, now: i64) -> StoreResult<()> {
    let no = sync_no(conn, sync_id)?;
    conn.prepare_cached("INSERT INTO errors (sync_no, user_key, reason, at) VALUES (?1, '', ?2, ?3)")
        .and_then(|mut s| s.execute(params![no, truncate_reason(reason), now]))
        .ctx("recording a sync's error")?;
    Ok(())
}

pub(crate) fn recent_errors(conn: &Connection, sync_id: &str, limit: usize) -> StoreResult<Vec<UserError>> {
    let no = sync_no(conn, sync_id)?;
    conn.prepare_cached(RECENT_ERRORS)
        .and_then(|mut s| {
            s.query_map(params![no, i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                Ok(UserError { key: row.get(0)?, reason: row.get(1)?, at: row.get(2)? })
            })?
            .collect()
        })
        .ctx("reading a sync's errors")
}

/// At most [`MAX_REASON_CHARS`] characters of `reason`, cut on a character boundary.
pub(crate) fn truncate_reason(reason: &str) -> &str {
    match reason.char_indices().nth(MAX_REASON_CHARS) {
        Some((cut, _)) => &reason[..cut],
        None => reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let count = stmt.parameter_count();
        let params: Vec<i64> = vec![1; count];
        let rows = stmt.query_map(rusqlite::params_from_iter(params), |row| row.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join(" | ")
    }

    #[test]
    fn queue_queries_are_index_lookups_without_sorting() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        for (sql, index) in [
            (CLAIM_DUE, "queue_due"),
            (CLAIM_FILL, "queue_fresh"),
            (EXPIRE_SELECT, "queue_entered"),
            (NEXT_DUE, "queue_due"),
            (OLDEST, "queue_entered"),
            (RECOVER, "(sync_no=? AND state=?)"),
            (RECENT_ERRORS, "errors_sync"),
        ] {
            let plan = plan(&conn, sql);
            assert!(plan.contains(index), "{sql}\n  uses {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "{sql}\n  sorts: {plan}");
            assert!(!plan.split(" | ").any(|step| step == "SCAN queue"), "{sql}\n  scans the queue: {plan}");
        }
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_REASON_CHARS + 10);
        let cut = truncate_reason(&long);
        assert_eq!(cut.chars().count(), MAX_REASON_CHARS);
        assert_eq!(truncate_reason("short"), "short");
    }
}
