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
const SUBMITTED: i64 = 2;

/// Queues an entry's users in entry order (their `id`, hence their claim order among equal
/// due times, is that order); keys the ledger holds as synced, errored or not synced are
/// queued again (a fresh entry, first entry kept), keys still being delivered are skipped.
/// Returns each written row's `entries` (1: new to the ledger). The keys must be distinct
/// (an upsert cannot touch a row twice in one statement).
const ENTER: &str = "INSERT INTO queue (sync_no, user_key, state, payload, entered_at, not_before, due_at) \
     SELECT $1, u.k, 0, u.p, $4, 0, $5 FROM unnest($2::text[], $3::bytea[]) WITH ORDINALITY AS u(k, p, n) \
     ORDER BY u.n ON CONFLICT (sync_no, user_key) DO UPDATE SET state = 0, payload = excluded.payload, \
     first_at = coalesce(queue.first_at, queue.entered_at), entered_at = excluded.entered_at, not_before = 0, \
     due_at = excluded.due_at, attempts = 0, entries = queue.entries + 1, tried_at = NULL, done_at = NULL, \
     last_error = NULL, submission = NULL WHERE queue.state >= 3 RETURNING entries";
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
/// The earliest due time of a sync's pending users.
const NEXT_DUE: &str = "SELECT q.due_at FROM queue q WHERE q.state = 0 \
     AND q.sync_no = (SELECT no FROM syncs WHERE id = $1 AND deleted_at IS NULL) ORDER BY q.due_at LIMIT 1";
/// The earliest entry time of a sync's users in one state.
const OLDEST: &str = "SELECT entered_at FROM queue WHERE sync_no = $1 AND state = $2 ORDER BY entered_at LIMIT 1";
/// In-flight users of a sync back to pending, due now.
const RECOVER: &str = "UPDATE queue SET state = 0, not_before = $2, due_at = $2 WHERE sync_no = $1 AND state = 1";
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
}

impl Delta {
    pub(crate) async fn apply<C: GenericClient + Sync>(&self, c: &C, no: i64) -> Res<()> {
        c.execute(
            "UPDATE counters SET entered = entered + $2, proceeded = proceeded + $3, \
             not_synced = not_synced + $4, pending = pending + $5, in_flight = in_flight + $6, \
             synced = synced + $7, errored = errored + $8, deduplicated = deduplicated + $9, \
             retries = retries + $10, submitted = submitted + $11, users = users + $12 WHERE sync_no = $1",
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
    let (mut queued, mut new_users) = (0u64, 0i64);
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
        queued = rows.len() as u64;
        for row in &rows {
            new_users += i64::from(get::<i64>(row, 0)? == 1);
        }
    }
    if !entry.not_synced.is_empty() {
        let (keys, reasons): (Vec<&str>, Vec<&str>) =
            entry.not_synced.iter().map(|(k, r)| (k.as_str(), truncate_reason(r))).unzip();
        new_users += c
            .execute(ENTER_NOT_SYNCED, &[&no, &keys, &reasons, &entry.now_ms])
            .await
            .ctx("recording users not synced")? as i64;
    }
    let outcome = EnterOutcome {
        queued,
        deduplicated: entry.ready.len() as u64 - queued,
        not_synced: entry.not_synced.len() as u64,
    };
    Delta {
        proceeded: (entry.ready.len() + entry.not_synced.len()) as i64,
        entered: (outcome.queued + outcome.not_synced) as i64,
        pending: outcome.queued as i64,
        not_synced: outcome.not_synced as i64,
        deduplicated: outcome.deduplicated as i64,
        users: new_users,
        ..Delta::default()
    }
    .apply(c, no)
    .await?;
    Ok(outcome)
}

pub(crate) async fn claim_batch<C: GenericClient + Sync>(c: &C, sync_id: &str, claim: &Claim) -> Res<Vec<QueuedUser>> {
    let no = sync_no(c, sync_id).await?;
    if let Some(owner) = &claim.lane_owner {
        // First, so that a lost lane changes nothing; the lease row stays share-locked until
        // this transaction ends, which orders the claim with a takeover (see `lanes.rs`).
        super::lanes::check_lane(c, no, owner).await?;
    }
    if expire(c, no, claim).await? || claim.max == 0 {
        // A full chunk of users expired: more may be past their window, for the next claim.
        return Ok(Vec::new());
    }
    let max = i64::try_from(claim.max).unwrap_or(i64::MAX);
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

/// Records what happened to users of sync `no` held as `held` (others are left alone): synced
/// and errored users stay in the ledger in that state (errored with their reason kept, also in
/// `errors`), retried users go back to pending. The new states' counters move in `delta`; returns how many users left `held`.
pub(crate) async fn record_outcomes<C: GenericClient + Sync>(
    c: &C,
    no: i64,
    results: &[UserResult],
    now: i64,
    held: Held<'_>,
    delta: &mut Delta,
) -> Res<i64> {
    let (state, submission) = match held {
        Held::InFlight => (IN_FLIGHT, None),
        Held::Submitted(id) => (SUBMITTED, Some(id)),
    };
    // One statement per kind of outcome, each over arrays: a batch of 1,900 is three round
    // trips, not 1,900.
    let mut synced: Vec<&str> = Vec::new();
    let (mut errored, mut reasons): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let (mut retried, mut not_before, mut errors): (Vec<&str>, Vec<i64>, Vec<&str>) =
        (Vec::new(), Vec::new(), Vec::new());
    // A key reported twice keeps its first outcome, as if the outcomes were applied in order
    // (the later ones would find the user no longer held).
    let mut unsent: Vec<&str> = Vec::new();
    let mut seen = std::collections::HashSet::with_capacity(results.len());
    for result in results.iter().filter(|r| seen.insert(r.key.as_str())) {
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
    let (mut done_synced, mut done_errored, mut done_retried) = (0, 0, 0);
    if !synced.is_empty() {
        done_synced = c
            .execute(
                "UPDATE queue SET state = 3, attempts = attempts + 1, done_at = $5 \
                 WHERE sync_no = $1 AND user_key = ANY($2) AND state = $3 \
                 AND submission IS NOT DISTINCT FROM $4::text",
                &[&no, &synced, &state, &submission, &now],
            )
            .await
            .ctx("completing users")? as i64;
    }
    if !errored.is_empty() {
        done_errored = c
            .execute(
                "WITH outcome AS (SELECT * FROM unnest($2::text[], $3::text[]) AS o(k, reason)), \
                 removed AS (UPDATE queue q SET state = 4, attempts = q.attempts + 1, done_at = $4, \
                   last_error = o.reason FROM outcome o \
                   WHERE q.sync_no = $1 AND q.user_key = o.k AND q.state = $5 \
                   AND q.submission IS NOT DISTINCT FROM $6::text RETURNING q.user_key) \
                 INSERT INTO errors (sync_no, user_key, reason, at) \
                 SELECT $1, o.k, o.reason, $4 FROM outcome o JOIN removed r ON r.user_key = o.k",
                &[&no, &errored, &reasons, &now, &state, &submission],
            )
            .await
            .ctx("recording users' errors")? as i64;
    }
    if !retried.is_empty() {
        done_retried = c
            .execute(
                "UPDATE queue q SET state = 0, submission = NULL, attempts = q.attempts + 1, not_before = r.nb, \
                 due_at = r.nb, last_error = r.err FROM unnest($2::text[], $3::bigint[], $4::text[]) AS r(k, nb, err) \
                 WHERE q.sync_no = $1 AND q.user_key = r.k AND q.state = $5 \
                 AND q.submission IS NOT DISTINCT FROM $6::text",
                &[&no, &retried, &not_before, &errors, &state, &submission],
            )
            .await
            .ctx("scheduling retries")? as i64;
    }
    let mut done_unsent = 0;
    if !unsent.is_empty() {
        done_unsent = c
            .execute(
                "UPDATE queue SET state = 0, submission = NULL \
                 WHERE sync_no = $1 AND user_key = ANY($2) AND state = $3 \
                 AND submission IS NOT DISTINCT FROM $4::text",
                &[&no, &unsent, &state, &submission],
            )
            .await
            .ctx("returning users unsent")? as i64;
    }
    delta.synced += done_synced;
    delta.errored += done_errored;
    delta.pending += done_retried + done_unsent;
    delta.retries += done_retried;
    Ok(done_synced + done_errored + done_retried + done_unsent)
}

pub(crate) async fn complete<C: GenericClient + Sync>(
    c: &C,
    sync_id: &str,
    results: &[UserResult],
    now: i64,
) -> Res<()> {
    let no = sync_no(c, sync_id).await?;
    let mut delta = Delta::default();
    let done = record_outcomes(c, no, results, now, Held::InFlight, &mut delta).await?;
    delta.in_flight = -done;
    let not_in_flight = results.len() as i64 - done;
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
    }
    Ok(total)
}

pub(crate) async fn next_due<C: GenericClient + Sync>(c: &C, sync_ids: &[String]) -> Res<Option<i64>> {
    let mut earliest: Option<i64> = None;
    for id in sync_ids {
        // A sync deleted meanwhile simply has nothing due.
        let due: Option<i64> = match c.query_opt(NEXT_DUE, &[id]).await.ctx("finding the next due time")? {
            Some(row) => Some(get(&row, 0)?),
            None => None,
        };
        earliest = match (earliest, due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(earliest)
}

pub(crate) async fn counts<C: GenericClient + Sync>(c: &C, sync_id: &str) -> Res<Counts> {
    let row = c
        .query_opt(
            "SELECT c.entered, c.proceeded, c.not_synced, c.pending, c.in_flight, c.synced, \
             c.errored, c.deduplicated, c.retries, c.submitted, c.users FROM counters c \
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
