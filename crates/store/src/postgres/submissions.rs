//! Asynchronous outcomes: requests the partner accepted and finishes later.
//!
//! Same model as SQLite's (`sqlite/submissions.rs`): a submission is a row of `submissions`
//! and its users are queue rows in state 2 carrying its id; every function moves the counters
//! in the transaction that moves the rows. Only the host holding the connection's lane touches
//! a sync's submissions, so no row locks beyond the statements' own are needed.

use tokio_postgres::GenericClient;

use super::catalog::get;
use super::queue::{Delta, Held, SUBMITTED, record_outcomes, sync_no};
use super::{Ctx, Fail};
use crate::{NewSubmission, QueuedUser, StoreError, Submission, UserResult};

type Res<T> = Result<T, Fail>;

/// A submission's users (a submitted removal's, state 8, with when its removal was asked).
const USERS: &str = "SELECT user_key, payload, CASE state WHEN 8 THEN asked_at ELSE entered_at END, attempts, \
     state = 8 FROM queue WHERE sync_no = $1 AND state IN (2, 8) AND submission = $2 ORDER BY id";

pub(crate) async fn submit<C: GenericClient + Sync>(c: &C, sync_id: &str, new: &NewSubmission) -> Res<()> {
    let no = sync_no(c, sync_id).await?;
    let exists = c
        .query_opt("SELECT 1 FROM submissions WHERE sync_no = $1 AND id = $2", &[&no, &new.id])
        .await
        .ctx("looking up a submission")?;
    if exists.is_some() {
        return Err(Fail::from(StoreError::Conflict(format!("sync {sync_id} already has a submission {:?}", new.id))));
    }
    // In flight (1) becomes submitted (2); a removal in flight (7), a submitted removal (8).
    let rows = c
        .query(
            "UPDATE queue SET state = state + 1, submission = $3 WHERE sync_no = $1 AND user_key = ANY($2) \
             AND state IN (1, 7) RETURNING state",
            &[&no, &new.keys, &new.id],
        )
        .await
        .ctx("submitting users")?;
    let n = rows.len() as i64;
    let mut adds = 0i64;
    for row in &rows {
        adds += i64::from(get::<i64>(row, 0)? == SUBMITTED);
    }
    if n < new.keys.len() as i64 {
        tracing::warn!(sync_id, ignored = new.keys.len() as i64 - n, "users not in flight were not submitted");
    }
    c.execute(
        "INSERT INTO submissions (sync_no, id, users, attempt, submitted_at, check_at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&no, &new.id, &n, &i64::from(new.attempt), &new.now_ms, &new.check_at_ms],
    )
    .await
    .ctx("recording a submission")?;
    Delta { in_flight: -adds, submitted: adds, ..Delta::default() }.apply(c, no).await
}

pub(crate) async fn submissions<C: GenericClient + Sync>(c: &C, sync_ids: &[String]) -> Res<Vec<Submission>> {
    let rows = c
        .query(
            "SELECT s.id, sub.id, sub.users, sub.attempt, sub.submitted_at, sub.check_at \
             FROM submissions sub JOIN syncs s ON s.no = sub.sync_no WHERE s.id = ANY($1) AND s.deleted_at IS NULL \
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
                removal: get(row, 4)?,
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
    let mut delta = Delta::default();
    delta.submitted = -record_outcomes(c, no, results, now, Held::Submitted(submission_id), &mut delta).await?.adds;
    // Users the outcome did not mention are not lost: they are sent again.
    let rest = c
        .execute(
            "UPDATE queue SET state = 0, submission = NULL, not_before = $3, due_at = $3 \
             WHERE sync_no = $1 AND state = 2 AND submission = $2",
            &[&no, &submission_id, &now],
        )
        .await
        .ctx("returning a submission's other users")? as i64;
    let rest_removals = c
        .execute(
            "UPDATE queue SET state = CASE then_op WHEN 2 THEN 0 ELSE 6 END, then_op = 0, submission = NULL, \
             not_before = 0, due_at = $3 WHERE sync_no = $1 AND state = 8 AND submission = $2",
            &[&no, &submission_id, &now],
        )
        .await
        .ctx("returning a submission's other removals")?;
    if rest > 0 || rest_removals > 0 {
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
    c.execute(
        "UPDATE queue SET state = 7, submission = NULL WHERE sync_no = $1 AND state = 8 AND submission = $2",
        &[&no, &submission_id],
    )
    .await
    .ctx("reopening a submission's removals")?;
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
