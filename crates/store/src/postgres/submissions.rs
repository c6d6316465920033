//! Asynchronous outcomes: requests the partner accepted and finishes later.
//!
//! Same model as SQLite's (`sqlite/submissions.rs`): a submission is a row of `submissions`
//! and its users are queue rows in state 2 carrying its id; every function moves the counters
//! in the transaction that moves the rows. Only the host holding the connection's lane touches
//! a sync's submissions, so no row locks beyond the statements' own are needed.

use tokio_postgres::GenericClient;

use super::catalog::get;
use super::queue::{Delta, sync_no, truncate_reason};
use super::{Ctx, Fail};
use crate::{NewSubmission, QueuedUser, StoreError, Submission, UserOutcome, UserResult};

type Res<T> = Result<T, Fail>;

/// A submission's users.
const USERS: &str = "SELECT user_key, payload, entered_at, attempts FROM queue \
     WHERE sync_no = $1 AND state = 2 AND submission = $2 ORDER BY id";

pub(crate) async fn submit<C: GenericClient + Sync>(c: &C, sync_id: &str, new: &NewSubmission) -> Res<()> {
    let no = sync_no(c, sync_id).await?;
    let exists = c
        .query_opt("SELECT 1 FROM submissions WHERE sync_no = $1 AND id = $2", &[&no, &new.id])
        .await
        .ctx("looking up a submission")?;
    if exists.is_some() {
        return Err(Fail::from(StoreError::Conflict(format!("sync {sync_id} already has a submission {:?}", new.id))));
    }
    let n = c
        .execute(
            "UPDATE queue SET state = 2, submission = $3 WHERE sync_no = $1 AND user_key = ANY($2) AND state = 1",
            &[&no, &new.keys, &new.id],
        )
        .await
        .ctx("submitting users")? as i64;
    if n < new.keys.len() as i64 {
        tracing::warn!(sync_id, ignored = new.keys.len() as i64 - n, "users not in flight were not submitted");
    }
    c.execute(
        "INSERT INTO submissions (sync_no, id, users, attempt, submitted_at, check_at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&no, &new.id, &n, &i64::from(new.attempt), &new.now_ms, &new.check_at_ms],
    )
    .await
    .ctx("recording a submission")?;
    Delta { in_flight: -n, submitted: n, ..Delta::default() }.apply(c, no).await
}

pub(crate) async fn submissions<C: GenericClient + Sync>(c: &C, sync_ids: &[String]) -> Res<Vec<Submission>> {
    let rows = c
        .query(
            "SELECT s.id, sub.id, sub.users, sub.attempt, sub.submitted_at, sub.check_at \
             FROM submissions sub JOIN syncs s ON s.no = sub.sync_no WHERE s.id = ANY($1) \
             ORDER BY sub.submitted_at, s.id, sub.id",
            &[&sync_ids],
        )
        .await
        .ctx("listing submissions")?;
    rows.iter()
        .map(|row| {
            Ok(Submission {
                sync_id: get(row, 0)?,
                id: get(row, 1)?,
                users: get::<i64>(row, 2)?.max(0) as u64,
                attempt: u32::try_from(get::<i64>(row, 3)?).unwrap_or(u32::MAX),
                submitted_at_ms: get(row, 4)?,
                check_at_ms: get(row, 5)?,
            })
        })
        .collect()
}

pub(crate) async fn submission_users<C: GenericClient + Sync>(
    c: &C,
    sync_id: &str,
    submission_id: &str,
) -> Res<Vec<QueuedUser>> {
    let Some(no) = known_sync(c, sync_id).await? else {
        return Ok(Vec::new());
    };
    c.query(USERS, &[&no, &submission_id])
        .await
        .ctx("reading a submission's users")?
        .iter()
        .map(|row| {
            Ok(QueuedUser {
                key: get(row, 0)?,
                payload: get(row, 1)?,
                entered_at: get(row, 2)?,
                attempts: u32::try_from(get::<i64>(row, 3)?).unwrap_or(u32::MAX),
            })
        })
        .collect()
}

pub(crate) async fn settle<C: GenericClient + Sync>(
    c: &C,
    sync_id: &str,
    submission_id: &str,
    results: &[UserResult],
    now: i64,
) -> Res<()> {
    let no = sync_no(c, sync_id).await?;
    if !forget(c, no, submission_id).await? {
        return Ok(());
    }
    let (mut synced, mut errored, mut reasons, mut retried, mut not_before, mut errors) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut seen = std::collections::HashSet::new();
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
        }
    }
    let mut delta = Delta::default();
    if !synced.is_empty() {
        delta.synced = c
            .execute(
                "DELETE FROM queue WHERE sync_no = $1 AND user_key = ANY($2) AND state = 2 AND submission = $3",
                &[&no, &synced, &submission_id],
            )
            .await
            .ctx("settling users")? as i64;
    }
    if !errored.is_empty() {
        delta.errored = c
            .execute(
                "WITH outcome AS (SELECT * FROM unnest($2::text[], $3::text[]) AS o(k, reason)), \
                 removed AS (DELETE FROM queue q USING outcome o \
                   WHERE q.sync_no = $1 AND q.user_key = o.k AND q.state = 2 AND q.submission = $5 \
                   RETURNING q.user_key) \
                 INSERT INTO errors (sync_no, user_key, reason, at) \
                 SELECT $1, o.k, o.reason, $4 FROM outcome o JOIN removed r ON r.user_key = o.k",
                &[&no, &errored, &reasons, &now, &submission_id],
            )
            .await
            .ctx("recording users' errors")? as i64;
    }
    if !retried.is_empty() {
        let n = c
            .execute(
                "UPDATE queue q SET state = 0, submission = NULL, attempts = q.attempts + 1, not_before = r.nb, \
                 due_at = r.nb, last_error = r.err FROM unnest($2::text[], $3::bigint[], $4::text[]) AS r(k, nb, err) \
                 WHERE q.sync_no = $1 AND q.user_key = r.k AND q.state = 2 AND q.submission = $5",
                &[&no, &retried, &not_before, &errors, &submission_id],
            )
            .await
            .ctx("scheduling retries")? as i64;
        delta.pending = n;
        delta.retries = n;
    }
    // Users the outcome did not mention are not lost: they are sent again.
    let rest = c
        .execute(
            "UPDATE queue SET state = 0, submission = NULL, not_before = $3, due_at = $3 \
             WHERE sync_no = $1 AND state = 2 AND submission = $2",
            &[&no, &submission_id, &now],
        )
        .await
        .ctx("returning a submission's other users")? as i64;
    if rest > 0 {
        tracing::warn!(
            sync_id,
            submission_id,
            rest,
            "a settled submission left users without an outcome; they are pending again"
        );
    }
    delta.submitted = -(delta.synced + delta.errored + delta.pending + rest);
    delta.pending += rest;
    delta.apply(c, no).await
}

pub(crate) async fn reopen<C: GenericClient + Sync>(c: &C, sync_id: &str, submission_id: &str) -> Res<Vec<QueuedUser>> {
    let Some(no) = known_sync(c, sync_id).await? else {
        return Ok(Vec::new());
    };
    let users = submission_users(c, sync_id, submission_id).await?;
    if !forget(c, no, submission_id).await? {
        return Ok(Vec::new());
    }
    let n = c
        .execute(
            "UPDATE queue SET state = 1, submission = NULL WHERE sync_no = $1 AND state = 2 AND submission = $2",
            &[&no, &submission_id],
        )
        .await
        .ctx("reopening a submission")? as i64;
    Delta { submitted: -n, in_flight: n, ..Delta::default() }.apply(c, no).await?;
    Ok(users)
}

/// Deletes the submission row; whether there was one.
async fn forget<C: GenericClient + Sync>(c: &C, no: i64, submission_id: &str) -> Res<bool> {
    let deleted = c
        .execute("DELETE FROM submissions WHERE sync_no = $1 AND id = $2", &[&no, &submission_id])
        .await
        .ctx("forgetting a submission")?;
    Ok(deleted == 1)
}

/// The sync's number, or `None` when it was deleted.
async fn known_sync<C: GenericClient + Sync>(c: &C, sync_id: &str) -> Res<Option<i64>> {
    match sync_no(c, sync_id).await {
        Ok(no) => Ok(Some(no)),
        Err(fail) if matches!(fail.error, StoreError::NotFound { .. }) => Ok(None),
        Err(fail) => Err(fail),
    }
}
