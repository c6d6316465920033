//! The user queue and the counters: the hot, large part of the store.
//!
//! Same model as SQLite's (`sqlite/queue.rs`): the queue is each sync's ledger, a row per user
//! (pending 0, in flight 1, submitted 2, synced 3, errored 4, not synced 5), a new user has
//! `not_before = 0` and is due at
//! `entered + flush`, a retried one has `not_before = due_at =` its retry time, and every
//! function moves the counters in the transaction that moves the rows, so conservation holds
//! in every committed state. The counters row is updated last in each transaction: it is the
//! one row every writer of a sync touches, so holding its lock only until commit keeps
//! writers of one sync from waiting on each other for longer than a commit.
//!
//! Several hosts claim from one sync at once. `claim_batch` selects its rows with
//! `FOR UPDATE SKIP LOCKED`: rows another claimer has selected are locked by it until it
//! commits, so they are skipped rather than waited for (no convoy behind the slowest claimer)
//! and never claimed twice; a row that another claimer committed as in flight no longer
//! matches `state = 0` when PostgreSQL re-checks it. The expiry `DELETE` likewise re-checks
//! rows it waited for, so a user is never both claimed and expired.

use tokio_postgres::GenericClient;

use super::catalog::{get, not_found};
use super::{Ctx, Fail};
use crate::{Claim, Counts, EXPIRE_CHUNK, EnterOutcome, Entry, QueuedUser, UserError, UserOutcome, UserResult};

type Res<T> = Result<T, Fail>;

const PENDING: i64 = 0;
const IN_FLIGHT: i64 = 1;
/// Sent in a request the partner finishes later (see `submissions.rs`).
pub(crate) const SUBMITTED: i64 = 2;
/// A removal's states are an add's plus this (waiting 6, in flight 7, submitted 8); then
/// removed (9) and refused (10), as SQLite's.
const REMOVAL: i64 = 6;
const REMOVING: i64 = 6;
const REMOVED: i64 = 9;
const REMOVAL_ERRORED: i64 = 10;
/// `then_op`: remove the user once the add they are in finished.
const THEN_REMOVE: i64 = 1;

/// Queues an entry's users in entry order (their `id`, hence their claim order among equal
/// due times, is that order); keys the ledger holds as errored or not synced are queued again
/// (a fresh entry, first entry kept). Returns each written row's key and `entries` (1: new to
/// the ledger); the keys it did not write are looked at by [`enter_again`]. The keys must be
/// distinct (an upsert cannot touch a row twice in one statement).
const ENTER: &str = "INSERT INTO queue (sync_no, user_key, state, payload, entered_at, not_before, due_at) \
     SELECT $1, u.k, 0, u.p, $4, 0, $5 FROM unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS u(k, p, n) \
     ORDER BY u.n ON CONFLICT (sync_no, user_key) DO UPDATE SET state = 0, payload = excluded.payload, \
     first_at = coalesce(queue.first_at, queue.entered_at), entered_at = excluded.entered_at, not_before = 0, \
     due_at = excluded.due_at, attempts = 0, entries = queue.entries + 1, tried_at = NULL, done_at = NULL, \
     last_error = NULL, submission = NULL WHERE queue.state IN (4, 5) RETURNING user_key, entries";
/// Where the other keys of an entry are (not locked: most are deduplicated and written by
/// nobody; each update below re-checks the state it expects).
const ENTER_FIND: &str = "SELECT user_key, state, then_op FROM queue WHERE sync_no = $1 AND user_key = ANY($2)";
/// Queues again users synced, removing (waiting), removed or whose removal was refused;
/// returns each one's state before, for the counters.
const ENTER_AGAIN: &str = "WITH before AS (SELECT id, state FROM queue WHERE sync_no = $1 AND user_key = ANY($2) \
     AND state IN (3, 6, 9, 10) ORDER BY id FOR UPDATE) \
     UPDATE queue q SET state = 0, payload = u.p, first_at = coalesce(q.first_at, q.entered_at), \
     entered_at = $4, not_before = 0, due_at = $5, attempts = 0, entries = q.entries + 1, tried_at = NULL, \
     done_at = NULL, last_error = NULL, submission = NULL, asked_at = NULL, then_op = 0 \
     FROM before b, unnest($2::text[], $3::bytea[]) AS u(k, p) \
     WHERE q.id = b.id AND q.user_key = u.k RETURNING b.state";
/// Users entering again while their removal is in a request: added again once it finished.
const ENTER_AFTER_REMOVAL: &str = "UPDATE queue q SET then_op = 2, payload = u.p, \
     first_at = coalesce(q.first_at, q.entered_at), entered_at = $4, entries = q.entries + 1 \
     FROM unnest($2::text[], $3::bytea[]) AS u(k, p) \
     WHERE q.sync_no = $1 AND q.user_key = u.k AND q.state IN (7, 8) AND q.then_op = 0 RETURNING q.id";
/// Users entering again while still being added, whose removal was asked meanwhile.
const KEEP_ADDING: &str = "UPDATE queue SET then_op = 0, asked_at = NULL \
     WHERE sync_no = $1 AND user_key = ANY($2) AND state IN (0, 1, 2) AND then_op = 1";
/// Not-synced users new to the ledger (a key it holds keeps its row).
const ENTER_NOT_SYNCED: &str = "INSERT INTO queue \
     (sync_no, user_key, state, payload, entered_at, not_before, due_at, done_at, last_error) \
     SELECT $1, u.k, 5, ''::bytea, $4, 0, 0, $4, u.r FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS u(k, r, n) \
     ORDER BY u.n ON CONFLICT (sync_no, user_key) DO NOTHING";
/// Pending users already due, in due order, that no other claimer holds.
const CLAIM_DUE: &str = "SELECT id, user_key, payload, entered_at, attempts FROM queue \
     WHERE sync_no = $1 AND state = 0 AND due_at <= $2 ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED";
/// Pending users with no wait that are not due yet, in due order (the `queue_fresh` index).
const CLAIM_FILL: &str = "SELECT id, user_key, payload, entered_at, attempts FROM queue \
     WHERE sync_no = $1 AND state = 0 AND not_before = 0 AND due_at > $2 ORDER BY due_at, id LIMIT $3 \
     FOR UPDATE SKIP LOCKED";
/// Errors pending users past the retry window (they stay in the ledger) and records them in
/// `errors`, oldest first, at most `$5` (one chunk); rows another claimer holds are skipped, and
/// the `UPDATE` re-checks that each row is still pending.
const EXPIRE: &str = "WITH doomed AS (SELECT id FROM queue WHERE sync_no = $1 AND state = 0 AND entered_at < $2 \
     ORDER BY entered_at, id LIMIT $5 FOR UPDATE SKIP LOCKED), \
     gone AS (UPDATE queue q SET state = 4, last_error = $3, done_at = $4 FROM doomed d \
     WHERE q.id = d.id AND q.state = 0 RETURNING q.id, q.user_key, q.entered_at) \
     INSERT INTO errors (sync_no, user_key, reason, at) SELECT $1, user_key, $3, $4 FROM gone \
     ORDER BY entered_at, id";
/// Removals waiting, in due order, that no other claimer holds (`due_at` last).
const CLAIM_REMOVALS: &str = "SELECT id, user_key, payload, asked_at, attempts, due_at FROM queue \
     WHERE sync_no = $1 AND state = 6 AND (due_at <= $3 OR not_before = 0) ORDER BY due_at, id LIMIT $2 \
     FOR UPDATE SKIP LOCKED";
/// Removals waiting that were asked before `$2` become `removal_errored` (recorded in
/// `errors`), at most `$5`.
const EXPIRE_REMOVALS: &str = "WITH doomed AS (SELECT id FROM queue WHERE sync_no = $1 AND state = 6 \
     AND asked_at < $2 ORDER BY due_at, id LIMIT $5 FOR UPDATE SKIP LOCKED), \
     gone AS (UPDATE queue q SET state = 10, last_error = $3, done_at = $4 FROM doomed d \
     WHERE q.id = d.id AND q.state = 6 RETURNING q.id, q.user_key) \
     INSERT INTO errors (sync_no, user_key, reason, at) SELECT $1, user_key, $3, $4 FROM gone ORDER BY id";
/// The earliest due time of a sync's users waiting in state `$2`.
const NEXT_DUE: &str = "SELECT q.due_at FROM queue q WHERE q.state = $2 \
     AND q.sync_no = (SELECT no FROM syncs WHERE id = $1 AND deleted_at IS NULL) ORDER BY q.due_at LIMIT 1";
/// The earliest entry time of a sync's users in one state.
const OLDEST: &str = "SELECT entered_at FROM queue WHERE sync_no = $1 AND state = $2 ORDER BY entered_at LIMIT 1";
/// In-flight users of a sync back to pending, due now.
const RECOVER: &str = "UPDATE queue SET state = 0, not_before = $2, due_at = $2 WHERE sync_no = $1 AND state = 1";
/// Removals in flight back to waiting, due now (or to pending, for a user who entered again).
const RECOVER_REMOVALS: &str = "UPDATE queue SET state = CASE then_op WHEN 2 THEN 0 ELSE 6 END, then_op = 0, \
     not_before = 0, due_at = $2 WHERE sync_no = $1 AND state = 7";
/// A sync's newest errors.
const RECENT_ERRORS: &str = "SELECT user_key, reason, at FROM errors WHERE sync_no = $1 ORDER BY id DESC LIMIT $2";

/// The internal number of a sync, or `NotFound` (also once it is deleted).
pub(crate) async fn sync_no<C: GenericClient + Sync>(c: &C, sync_id: &str) -> Res<i64> {
    let row = c
        .query_opt("SELECT no FROM syncs WHERE id = $1 AND deleted_at IS NULL", &[&sync_id])
        .await
        .ctx("looking up a sync")?
        .ok_or_else(|| not_found("sync", sync_id))?;
    get(&row, 0)
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
    pub(crate) async fn apply<C: GenericClient + Sync>(&self, c: &C, no: i64) -> Res<()> {
        c.execute(
            "UPDATE counters SET entered = entered + $2, proceeded = proceeded + $3, \
             not_synced = not_synced + $4, pending = pending + $5, in_flight = in_flight + $6, \
             synced = synced + $7, errored = errored + $8, deduplicated = deduplicated + $9, \
             retries = retries + $10, submitted = submitted + $11, users = users + $12, \
             in_audience = in_audience + $13, removing = removing + $14, removed = removed + $15, \
             removal_errored = removal_errored + $16, already_in_audience = already_in_audience + $17 \
             WHERE sync_no = $1",
            &[
                &no,
                &self.entered,
                &self.proceeded,
                &self.not_synced,
                &self.pending,
                &self.in_flight,
                &self.synced,
                &self.errored,
                &self.deduplicated,
                &self.retries,
                &self.submitted,
                &self.users,
                &self.in_audience,
                &self.removing,
                &self.removed,
                &self.removal_errored,
                &self.already_in_audience,
            ],
        )
        .await
        .ctx("updating a sync's counters")?;
        Ok(())
    }
}

pub(crate) async fn enter<C: GenericClient + Sync>(c: &C, sync_id: &str, entry: &Entry) -> Res<EnterOutcome> {
    let no = sync_no(c, sync_id).await?;
    let due = entry.now_ms.saturating_add(entry.flush_ms);
    let mut delta = Delta::default();
    let mut outcome = EnterOutcome::default();
    if !entry.ready.is_empty() {
        // A key twice in one entry is queued once (the first), the others deduplicated.
        let mut seen = std::collections::HashSet::with_capacity(entry.ready.len());
        let (keys, payloads): (Vec<&str>, Vec<&[u8]>) = entry
            .ready
            .iter()
            .filter(|u| seen.insert(u.key.as_str()))
            .map(|u| (u.key.as_str(), u.payload.as_slice()))
            .unzip();
        let rows = c.query(ENTER, &[&no, &keys, &payloads, &entry.now_ms, &due]).await.ctx("queueing users")?;
        outcome.queued = rows.len() as u64;
        let mut written = std::collections::HashSet::with_capacity(rows.len());
        for row in &rows {
            written.insert(get::<String>(row, 0)?);
            delta.users += i64::from(get::<i64>(row, 1)? == 1);
        }
        if written.len() < keys.len() {
            let (others, payloads): (Vec<&str>, Vec<&[u8]>) =
                keys.iter().zip(&payloads).filter(|(k, _)| !written.contains(**k)).map(|(k, p)| (*k, *p)).unzip();
            let again = enter_again(c, no, &others, &payloads, entry, due, &mut delta).await?;
            outcome.queued += again.queued;
            outcome.already_in_audience += again.already_in_audience;
        }
    }
    if !entry.not_synced.is_empty() {
        let (keys, reasons): (Vec<&str>, Vec<&str>) =
            entry.not_synced.iter().map(|(k, r)| (k.as_str(), truncate_reason(r))).unzip();
        delta.users += c
            .execute(ENTER_NOT_SYNCED, &[&no, &keys, &reasons, &entry.now_ms])
            .await
            .ctx("recording users not synced")? as i64;
    }
    outcome.not_synced = entry.not_synced.len() as u64;
    outcome.deduplicated = entry.ready.len() as u64 - outcome.queued - outcome.already_in_audience;
    delta.proceeded += (entry.ready.len() + entry.not_synced.len()) as i64;
    delta.entered += (outcome.queued + outcome.not_synced) as i64;
    delta.pending += outcome.queued as i64;
    delta.not_synced += outcome.not_synced as i64;
    delta.deduplicated += outcome.deduplicated as i64;
    delta.already_in_audience += outcome.already_in_audience as i64;
    delta.apply(c, no).await?;
    Ok(outcome)
}

/// Users already in the ledger that the upsert did not queue again (the rare path: one read,
/// then an update per kind): synced users (unless the sync skips them), removals waiting,
/// removed or refused are queued again; users whose removal is in a request are added again
/// after it; users still being added stay deduplicated (a removal asked meanwhile is
/// forgotten). Moves the counters of the rows in `delta`; returns the users queued and those
/// counted as already in the audience.
async fn enter_again<C: GenericClient + Sync>(
    c: &C,
    no: i64,
    keys: &[&str],
    payloads: &[&[u8]],
    entry: &Entry,
    due: i64,
    delta: &mut Delta,
) -> Res<EnterOutcome> {
    let payload_of: std::collections::HashMap<&str, &[u8]> =
        keys.iter().copied().zip(payloads.iter().copied()).collect();
    let rows = c.query(ENTER_FIND, &[&no, &keys]).await.ctx("finding users entering again")?;
    let (mut again, mut after, mut keep): (Vec<&str>, Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new(), Vec::new());
    let mut outcome = EnterOutcome::default();
    for row in &rows {
        let key: String = get(row, 0)?;
        let Some((&key, _)) = payload_of.get_key_value(key.as_str()) else { continue };
        let (state, then_op): (i64, i64) = (get(row, 1)?, get(row, 2)?);
        match state {
            0..=2 if then_op == THEN_REMOVE => keep.push(key),
            3 if entry.skip_synced => outcome.already_in_audience += 1,
            3 | 6 | 9 | 10 => again.push(key),
            7 | 8 if then_op == 0 => after.push(key),
            _ => {}
        }
    }
    let payloads_of = |keys: &[&str]| -> Vec<&[u8]> { keys.iter().map(|k| payload_of[k]).collect() };
    if !again.is_empty() {
        let moved = c
            .query(ENTER_AGAIN, &[&no, &again, &payloads_of(&again), &entry.now_ms, &due])
            .await
            .ctx("queueing users again")?;
        for row in &moved {
            match get::<i64>(row, 0)? {
                3 => delta.in_audience -= 1,
                6 => delta.removing -= 1,
                9 => delta.removed -= 1,
                _ => delta.removal_errored -= 1,
            }
        }
        outcome.queued += moved.len() as u64;
    }
    if !after.is_empty() {
        let n = c
            .query(ENTER_AFTER_REMOVAL, &[&no, &after, &payloads_of(&after), &entry.now_ms])
            .await
            .ctx("queueing users again after their removal")?
            .len();
        outcome.queued += n as u64;
        delta.removing -= n as i64;
    }
    if !keep.is_empty() {
        delta.removing -= c.execute(KEEP_ADDING, &[&no, &keep]).await.ctx("keeping users entering again")? as i64;
    }
    Ok(outcome)
}

pub(crate) async fn claim_batch<C: GenericClient + Sync>(c: &C, sync_id: &str, claim: &Claim) -> Res<Vec<QueuedUser>> {
    let no = sync_no(c, sync_id).await?;
    if let Some(owner) = &claim.lane_owner {
        // First, so that a lost lane changes nothing; the lease row stays share-locked until
        // this transaction ends, which orders the claim with a takeover (see `lanes.rs`).
        super::lanes::check_lane(c, no, owner).await?;
    }
    if expire(c, no, claim).await? || expire_removals(c, no, claim).await? || claim.max == 0 {
        // A full chunk of users expired: more may be past their window, for the next claim.
        return Ok(Vec::new());
    }
    let max = i64::try_from(claim.max).unwrap_or(i64::MAX);
    // Removals first, a batch of their own, when the first is due or the batch is full (a
    // retried removal only once due).
    let removals = c.query(CLAIM_REMOVALS, &[&no, &max, &claim.now_ms]).await.ctx("reading removals to claim")?;
    let first_due: Option<i64> = removals.first().map(|row| get(row, 5)).transpose()?;
    if first_due.is_some_and(|due| due <= claim.now_ms) || (!removals.is_empty() && removals.len() >= claim.max) {
        let ids: Vec<i64> = removals.iter().map(|row| get(row, 0)).collect::<Res<_>>()?;
        c.execute("UPDATE queue SET state = 7, tried_at = $2 WHERE id = ANY($1)", &[&ids, &claim.now_ms])
            .await
            .ctx("claiming removals")?;
        return removals
            .iter()
            .map(|row| {
                Ok(QueuedUser {
                    key: get(row, 1)?,
                    payload: get(row, 2)?,
                    entered_at: get(row, 3)?,
                    attempts: u32::try_from(get::<i64>(row, 4)?).unwrap_or(u32::MAX),
                    removal: true,
                })
            })
            .collect();
    }
    // Already due, in due order (all claimable: a pending user's wait never exceeds its due).
    let mut rows = select_claimable(c, CLAIM_DUE, no, claim.now_ms, max).await?;
    if rows.len() < claim.max {
        // Then users not yet due but with no wait, to fill the batch; all due later than the
        // rows above, so the order by due time holds across both.
        let more = select_claimable(c, CLAIM_FILL, no, claim.now_ms, max - rows.len() as i64).await?;
        let first_is_due = !rows.is_empty();
        rows.extend(more);
        if !first_is_due && rows.len() < claim.max {
            // A partial batch whose first user is not due yet: wait for its flush time. The
            // row locks end with the transaction.
            return Ok(Vec::new());
        }
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
    let marked = c
        .execute("UPDATE queue SET state = 1, tried_at = $2 WHERE id = ANY($1)", &[&ids, &claim.now_ms])
        .await
        .ctx("claiming users")? as i64;
    let batch: Vec<QueuedUser> = rows.into_iter().map(|(_, user)| user).collect();
    Delta { pending: -marked, in_flight: marked, ..Delta::default() }.apply(c, no).await?;
    Ok(batch)
}

/// Pending users whose retry window is over become errored with the claim's reason, at most
/// [`EXPIRE_CHUNK`] of them, oldest first. Returns whether the chunk was full.
async fn expire<C: GenericClient + Sync>(c: &C, no: i64, claim: &Claim) -> Res<bool> {
    let reason = truncate_reason(&claim.expired_reason);
    let chunk = i64::from(EXPIRE_CHUNK);
    let expired = c
        .execute(EXPIRE, &[&no, &claim.expire_before_ms, &reason, &claim.now_ms, &chunk])
        .await
        .ctx("erroring users past the retry window")? as i64;
    if expired > 0 {
        tracing::info!(sync_no = no, expired, "users errored: retry window over");
        Delta { pending: -expired, errored: expired, ..Delta::default() }.apply(c, no).await?;
    }
    Ok(expired >= chunk)
}

/// Removals asked before the retry window become `removal_errored`, at most [`EXPIRE_CHUNK`].
/// Returns whether the chunk was full.
async fn expire_removals<C: GenericClient + Sync>(c: &C, no: i64, claim: &Claim) -> Res<bool> {
    let reason = crate::removal::failed_removal_reason(&claim.expired_reason);
    let reason = reason.as_str();
    let chunk = i64::from(EXPIRE_CHUNK);
    let expired = c
        .execute(EXPIRE_REMOVALS, &[&no, &claim.expire_before_ms, &reason, &claim.now_ms, &chunk])
        .await
        .ctx("erroring removals past the retry window")? as i64;
    if expired > 0 {
        tracing::info!(sync_no = no, expired, "removals errored: retry window over");
        Delta { removing: -expired, removal_errored: expired, ..Delta::default() }.apply(c, no).await?;
    }
    Ok(expired >= chunk)
}

async fn select_claimable<C: GenericClient + Sync>(
    c: &C,
    sql: &str,
    no: i64,
    now: i64,
    limit: i64,
) -> Res<Vec<(i64, QueuedUser)>> {
    let rows = c.query(sql, &[&no, &now, &limit]).await.ctx("reading users to claim")?;
    rows.iter()
        .map(|row| {
            let attempts: i64 = get(row, 4)?;
            Ok((
                get(row, 0)?,
                QueuedUser {
                    key: get(row, 1)?,
                    payload: get(row, 2)?,
                    entered_at: get(row, 3)?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                    removal: false,
                },
            ))
        })
        .collect()
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

/// Records what happened to users of sync `no` held as `held` (others are left alone), as
/// SQLite's `record_outcomes`: an added user is synced or errored and stays in the ledger, or
/// is retried; one whose removal was asked meanwhile (`then_op = 1`) becomes a waiting
/// removal, due now, whatever its outcome. Users not held as adds are looked for as removals.
/// The new states' counters move in `delta`.
pub(crate) async fn record_outcomes<C: GenericClient + Sync>(
    c: &C,
    no: i64,
    results: &[UserResult],
    now: i64,
    held: Held<'_>,
    delta: &mut Delta,
) -> Res<Left> {
    let (state, submission) = match held {
        Held::InFlight => (IN_FLIGHT, None),
        Held::Submitted(id) => (SUBMITTED, Some(id)),
    };
    // One statement per kind of outcome, each over arrays: a batch of 1,900 is four round
    // trips, not 1,900.
    let mut synced: Vec<&str> = Vec::new();
    let (mut errored, mut reasons): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let (mut retried, mut not_before, mut errors): (Vec<&str>, Vec<i64>, Vec<&str>) =
        (Vec::new(), Vec::new(), Vec::new());
    // A key reported twice keeps its first outcome, as if the outcomes were applied in order
    // (the later ones would find the user no longer held).
    let mut unsent: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::with_capacity(results.len());
    let firsts: Vec<&UserResult> = results.iter().filter(|r| seen.insert(r.key.as_str())).collect();
    for result in &firsts {
        match &result.outcome {
            UserOutcome::Synced => synced.push(&result.key),
            UserOutcome::Errored(reason) => {
                errored.push(&result.key);
                reasons.push(truncate_reason(reason));
            }
            UserOutcome::Retry { not_before_ms, error } => {
                retried.push(&result.key);
                not_before.push(*not_before_ms);
                errors.push(truncate_reason(error));
            }
            UserOutcome::Unsent => unsent.push(&result.key),
        }
    }
    let mut done: std::collections::HashSet<String> = std::collections::HashSet::with_capacity(firsts.len());
    if !synced.is_empty() {
        let rows = c
            .query(
                "UPDATE queue SET state = CASE then_op WHEN 1 THEN 6 ELSE 3 END, \
                 attempts = CASE then_op WHEN 1 THEN 0 ELSE attempts + 1 END, done_at = $5, \
                 due_at = CASE then_op WHEN 1 THEN $5::bigint ELSE due_at END, \
                 not_before = CASE then_op WHEN 1 THEN 0 ELSE not_before END, then_op = 0 \
                 WHERE sync_no = $1 AND user_key = ANY($2) AND state = $3 \
                 AND submission IS NOT DISTINCT FROM $4::text RETURNING user_key, state",
                &[&no, &synced, &state, &submission, &now],
            )
            .await
            .ctx("completing users")?;
        for row in &rows {
            done.insert(get(row, 0)?);
            delta.synced += 1;
            delta.in_audience += i64::from(get::<i64>(row, 1)? == 3);
        }
    }
    if !errored.is_empty() {
        let rows = c
            .query(
                "WITH outcome AS (SELECT * FROM unnest($2::text[], $3::text[]) AS o(k, reason)), \
                 finished AS (UPDATE queue q SET state = CASE q.then_op WHEN 1 THEN 6 ELSE 4 END, \
                   attempts = CASE q.then_op WHEN 1 THEN 0 ELSE q.attempts + 1 END, done_at = $4, \
                   due_at = CASE q.then_op WHEN 1 THEN $4::bigint ELSE q.due_at END, \
                   not_before = CASE q.then_op WHEN 1 THEN 0 ELSE q.not_before END, then_op = 0, \
                   last_error = o.reason FROM outcome o \
                   WHERE q.sync_no = $1 AND q.user_key = o.k AND q.state = $5 \
                   AND q.submission IS NOT DISTINCT FROM $6::text RETURNING q.user_key), \
                 recorded AS (INSERT INTO errors (sync_no, user_key, reason, at) \
                   SELECT $1, o.k, o.reason, $4 FROM outcome o JOIN finished f ON f.user_key = o.k) \
                 SELECT user_key FROM finished",
                &[&no, &errored, &reasons, &now, &state, &submission],
            )
            .await
            .ctx("recording users' errors")?;
        for row in &rows {
            done.insert(get(row, 0)?);
            delta.errored += 1;
        }
    }
    if !retried.is_empty() {
        let rows = c
            .query(
                "UPDATE queue q SET state = 0, submission = NULL, attempts = q.attempts + 1, not_before = r.nb, \
                 due_at = r.nb, last_error = r.err FROM unnest($2::text[], $3::bigint[], $4::text[]) AS r(k, nb, err) \
                 WHERE q.sync_no = $1 AND q.user_key = r.k AND q.state = $5 \
                 AND q.submission IS NOT DISTINCT FROM $6::text RETURNING q.user_key",
                &[&no, &retried, &not_before, &errors, &state, &submission],
            )
            .await
            .ctx("scheduling retries")?;
        for row in &rows {
            done.insert(get(row, 0)?);
            delta.pending += 1;
            delta.retries += 1;
        }
    }
    if !unsent.is_empty() {
        let rows = c
            .query(
                "UPDATE queue SET state = 0, submission = NULL \
                 WHERE sync_no = $1 AND user_key = ANY($2) AND state = $3 \
                 AND submission IS NOT DISTINCT FROM $4::text RETURNING user_key",
                &[&no, &unsent, &state, &submission],
            )
            .await
            .ctx("returning users unsent")?;
        for row in &rows {
            done.insert(get(row, 0)?);
            delta.pending += 1;
        }
    }
    let mut left = Left { adds: done.len() as i64, removals: 0 };
    let removals: Vec<&UserResult> = firsts.into_iter().filter(|r| !done.contains(&r.key)).collect();
    if !removals.is_empty() {
        left.removals = record_removals(c, no, &removals, now, state + REMOVAL, submission, delta).await?;
    }
    Ok(left)
}

/// [`record_outcomes`] for the users held as removals (in state `state`, 7 or 8), one
/// statement per user (removals are few): a user who entered again meanwhile (`then_op = 2`)
/// is pending again, due now, whatever the outcome.
async fn record_removals<C: GenericClient + Sync>(
    c: &C,
    no: i64,
    results: &[&UserResult],
    now: i64,
    state: i64,
    submission: Option<&str>,
    delta: &mut Delta,
) -> Res<i64> {
    const FINISH: &str = "UPDATE queue SET state = CASE then_op WHEN 2 THEN 0 ELSE $5::bigint END, \
         attempts = CASE then_op WHEN 2 THEN 0 ELSE attempts + 1 END, \
         done_at = CASE then_op WHEN 2 THEN NULL ELSE $6::bigint END, \
         last_error = CASE then_op WHEN 2 THEN NULL ELSE coalesce($7::text, last_error) END, \
         due_at = CASE then_op WHEN 2 THEN $6::bigint ELSE due_at END, not_before = 0, \
         submission = CASE then_op WHEN 2 THEN NULL ELSE submission END, then_op = 0 \
         WHERE sync_no = $1 AND user_key = $2 AND state = $3 AND submission IS NOT DISTINCT FROM $4::text \
         RETURNING state";
    const RETRY: &str = "UPDATE queue SET state = CASE then_op WHEN 2 THEN 0 ELSE 6 END, submission = NULL, \
         attempts = CASE then_op WHEN 2 THEN 0 ELSE attempts + 1 END, \
         not_before = CASE then_op WHEN 2 THEN 0 ELSE $5::bigint END, \
         due_at = CASE then_op WHEN 2 THEN $7::bigint ELSE $5::bigint END, \
         last_error = CASE then_op WHEN 2 THEN NULL ELSE $6::text END, then_op = 0 \
         WHERE sync_no = $1 AND user_key = $2 AND state = $3 AND submission IS NOT DISTINCT FROM $4::text";
    const UNSEND: &str = "UPDATE queue SET state = CASE then_op WHEN 2 THEN 0 ELSE 6 END, submission = NULL, \
         then_op = 0 WHERE sync_no = $1 AND user_key = $2 AND state = $3 AND submission IS NOT DISTINCT FROM $4::text";
    let mut left = 0;
    for result in results {
        let key = result.key.as_str();
        let done = match &result.outcome {
            UserOutcome::Synced => {
                let row = c
                    .query_opt(FINISH, &[&no, &key, &state, &submission, &REMOVED, &now, &None::<&str>])
                    .await
                    .ctx("completing a removal")?;
                let reached: Option<i64> = row.map(|r| get(&r, 0)).transpose()?;
                if reached == Some(REMOVED) {
                    delta.removing -= 1;
                    delta.removed += 1;
                }
                reached.is_some()
            }
            UserOutcome::Errored(reason) => {
                let reason = crate::removal::failed_removal_reason(reason);
                let reason = reason.as_str();
                let row = c
                    .query_opt(FINISH, &[&no, &key, &state, &submission, &REMOVAL_ERRORED, &now, &Some(reason)])
                    .await
                    .ctx("completing a removal")?;
                let reached: Option<i64> = row.map(|r| get(&r, 0)).transpose()?;
                if reached == Some(REMOVAL_ERRORED) {
                    c.execute(
                        "INSERT INTO errors (sync_no, user_key, reason, at) VALUES ($1, $2, $3, $4)",
                        &[&no, &key, &reason, &now],
                    )
                    .await
                    .ctx("recording a removal's error")?;
                    delta.removing -= 1;
                    delta.removal_errored += 1;
                }
                reached.is_some()
            }
            UserOutcome::Retry { not_before_ms, error } => {
                let error = truncate_reason(error);
                c.execute(RETRY, &[&no, &key, &state, &submission, not_before_ms, &error, &now])
                    .await
                    .ctx("scheduling a removal's retry")?
                    == 1
            }
            UserOutcome::Unsent => {
                c.execute(UNSEND, &[&no, &key, &state, &submission]).await.ctx("returning a removal unsent")? == 1
            }
        };
        left += i64::from(done);
    }
    Ok(left)
}

pub(crate) async fn complete<C: GenericClient + Sync>(
    c: &C,
    sync_id: &str,
    results: &[UserResult],
    now: i64,
) -> Res<()> {
    let no = sync_no(c, sync_id).await?;
    let mut delta = Delta::default();
    let left = record_outcomes(c, no, results, now, Held::InFlight, &mut delta).await?;
    delta.in_flight = -left.adds;
    let not_in_flight = results.len() as i64 - left.adds - left.removals;
    if not_in_flight > 0 {
        // Counting them would break conservation; the engine reported a user twice or after
        // a recovery. Their current state stands.
        tracing::warn!(sync_id, not_in_flight, "outcomes for users not in flight were ignored");
    }
    delta.apply(c, no).await
}

pub(crate) async fn recover_in_flight<C: GenericClient + Sync>(c: &C, now: i64) -> Res<u64> {
    recover_syncs(c, &live_sync_nos(c).await?, now).await
}

/// The numbers of the syncs not deleted, in order.
pub(crate) async fn live_sync_nos<C: GenericClient + Sync>(c: &C) -> Res<Vec<i64>> {
    c.query("SELECT no FROM syncs WHERE deleted_at IS NULL ORDER BY no", &[])
        .await
        .ctx("listing syncs")?
        .iter()
        .map(|row| get(row, 0))
        .collect()
}

/// In-flight users of these syncs back to pending, due `now`, with their counters. Returns
/// how many.
pub(crate) async fn recover_syncs<C: GenericClient + Sync>(c: &C, nos: &[i64], now: i64) -> Res<u64> {
    let mut total = 0u64;
    for &no in nos {
        let n = c.execute(RECOVER, &[&no, &now]).await.ctx("recovering in-flight users")? as i64;
        if n > 0 {
            Delta { pending: n, in_flight: -n, ..Delta::default() }.apply(c, no).await?;
            total += n as u64;
        }
        // Their counters (`removing`, or `pending` for a user who entered again) stand.
        total += c.execute(RECOVER_REMOVALS, &[&no, &now]).await.ctx("recovering in-flight removals")?;
    }
    Ok(total)
}

pub(crate) async fn next_due<C: GenericClient + Sync>(c: &C, sync_ids: &[String]) -> Res<Option<i64>> {
    let mut earliest: Option<i64> = None;
    for id in sync_ids {
        // A sync deleted meanwhile simply has nothing due.
        for state in [PENDING, REMOVING] {
            let due: Option<i64> = match c.query_opt(NEXT_DUE, &[id, &state]).await.ctx("finding the next due time")? {
                Some(row) => Some(get(&row, 0)?),
                None => None,
            };
            earliest = match (earliest, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    Ok(earliest)
}

pub(crate) async fn counts<C: GenericClient + Sync>(c: &C, sync_id: &str) -> Res<Counts> {
    let row = c
        .query_opt(
            "SELECT c.entered, c.proceeded, c.not_synced, c.pending, c.in_flight, c.synced, \
             c.errored, c.deduplicated, c.retries, c.submitted, c.users, c.in_audience, c.removing, c.removed, \
             c.removal_errored, c.already_in_audience FROM counters c \
             JOIN syncs s ON s.no = c.sync_no WHERE s.id = $1 AND s.deleted_at IS NULL",
            &[&sync_id],
        )
        .await
        .ctx("reading a sync's counters")?
        .ok_or_else(|| not_found("sync", sync_id))?;
    let n = |i: usize| get::<i64>(&row, i).map(|v| v.max(0) as u64);
    Ok(Counts {
        entered: n(0)?,
        proceeded: n(1)?,
        not_synced: n(2)?,
        pending: n(3)?,
        in_flight: n(4)?,
        synced: n(5)?,
        errored: n(6)?,
        deduplicated: n(7)?,
        retries: n(8)?,
        submitted: n(9)?,
        users: n(10)?,
        in_audience: n(11)?,
        removing: n(12)?,
        removed: n(13)?,
        removal_errored: n(14)?,
        already_in_audience: n(15)?,
    })
}

pub(crate) async fn oldest_pending<C: GenericClient + Sync>(c: &C, sync_id: &str) -> Res<Option<i64>> {
    let no = sync_no(c, sync_id).await?;
    let mut oldest: Option<i64> = None;
    for state in [PENDING, IN_FLIGHT, SUBMITTED] {
        let at: Option<i64> = match c.query_opt(OLDEST, &[&no, &state]).await.ctx("finding the oldest pending user")? {
            Some(row) => Some(get(&row, 0)?),
            None => None,
        };
        oldest = match (oldest, at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(oldest)
}

pub(crate) async fn record_sync_error<C: GenericClient + Sync>(
    c: &C,
    sync_id: &str,
    reason: &str,
    now: i64,
) -> Res<()> {
    let no = sync_no(c, sync_id).await?;
    c.execute(
        "INSERT INTO errors (sync_no, user_key, reason, at) VALUES ($1, '', $2, $3)",
        &[&no, &truncate_reason(reason), &now],
    )
    .await
    .ctx("recording a sync's error")?;
    Ok(())
}

pub(crate) async fn recent_errors<C: GenericClient + Sync>(c: &C, sync_id: &str, limit: usize) -> Res<Vec<UserError>> {
    let no = sync_no(c, sync_id).await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    c.query(RECENT_ERRORS, &[&no, &limit])
        .await
        .ctx("reading a sync's errors")?
        .iter()
        .map(|row| Ok(UserError { key: get(row, 0)?, reason: get(row, 1)?, at: get(row, 2)? }))
        .collect()
}

/// At most [`MAX_REASON_CHARS`](crate::sqlite::MAX_REASON_CHARS) characters of `reason`, cut on a character boundary.
pub(crate) fn truncate_reason(reason: &str) -> &str {
    crate::sqlite::truncate_reason(reason)
}
