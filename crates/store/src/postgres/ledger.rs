//! The ledger's own reads and writes, as SQLite's (`sqlite/ledger.rs`): one user's lookup,
//! listings by state, re-drives and the pruning of old history. Chunks of rows are taken with
//! `FOR UPDATE SKIP LOCKED`, so hosts pruning or re-driving at once take different rows.

use tokio_postgres::{GenericClient, Row};

use super::catalog::{get, not_found};
use super::queue::{Delta, sync_no};
use super::{Ctx, Fail};
use crate::{
    MEMBER_ERRORS, Member, MemberCursor, MemberDetail, MemberState, Pruned, Redrive, Redriven, StoreError, UserError,
};

type Res<T> = Result<T, Fail>;

/// The columns of a [`Member`], in [`member_of`]'s order.
const COLUMNS: &str = "user_key, state, id, coalesce(first_at, entered_at), entered_at, entries, attempts, \
     tried_at, done_at, last_error, submission";
/// A user queued again with a fresh retry window, due now (`$2`).
const REDRIVE_SET: &str = "state = 0, first_at = coalesce(q.first_at, q.entered_at), entered_at = $2, \
     not_before = 0, due_at = $2, attempts = 0, entries = q.entries + 1, tried_at = NULL, done_at = NULL, \
     last_error = NULL, submission = NULL";

fn member_of(row: &Row) -> Res<Member> {
    let code: i64 = get(row, 1)?;
    let state = MemberState::from_code(code)
        .ok_or_else(|| Fail::from(StoreError::Database(format!("unknown user state {code} in the database"))))?;
    let count = |i: usize| get::<i64>(row, i).map(|v| u32::try_from(v.max(0)).unwrap_or(u32::MAX));
    Ok(Member {
        key: get(row, 0)?,
        state,
        seq: get(row, 2)?,
        first_entered_at: get(row, 3)?,
        entered_at: get(row, 4)?,
        entries: count(5)?,
        attempts: count(6)?,
        last_attempt_at: get(row, 7)?,
        done_at: get(row, 8)?,
        last_error: get(row, 9)?,
        submission: get(row, 10)?,
    })
}

pub(crate) async fn member<C: GenericClient + Sync>(c: &C, sync_id: &str, key: &str) -> Res<MemberDetail> {
    let no = sync_no(c, sync_id).await?;
    let row = c
        .query_opt(&format!("SELECT {COLUMNS}, payload FROM queue WHERE sync_no = $1 AND user_key = $2"), &[&no, &key])
        .await
        .ctx("looking up a user")?
        .ok_or_else(|| not_found("user", key))?;
    let member = member_of(&row)?;
    let payload: Vec<u8> = get(&row, 11)?;
    let limit = MEMBER_ERRORS as i64;
    let errors = c
        .query(
            "SELECT user_key, reason, at FROM errors WHERE sync_no = $1 AND user_key = $2 ORDER BY id DESC LIMIT $3",
            &[&no, &key, &limit],
        )
        .await
        .ctx("reading a user's errors")?
        .iter()
        .map(|row| Ok(UserError { key: get(row, 0)?, reason: get(row, 1)?, at: get(row, 2)? }))
        .collect::<Res<Vec<_>>>()?;
    Ok(MemberDetail { member, payload, errors })
}

pub(crate) async fn members<C: GenericClient + Sync>(
    c: &C,
    sync_id: &str,
    state: MemberState,
    after: Option<MemberCursor>,
    limit: u32,
) -> Res<Vec<Member>> {
    let no = sync_no(c, sync_id).await?;
    let (at, seq) = after.map_or((i64::MIN, i64::MIN), |c| (c.entered_at, c.seq));
    let limit = i64::from(limit);
    c.query(
        &format!(
            "SELECT {COLUMNS} FROM queue WHERE sync_no = $1 AND state = $2 AND (entered_at, id) > ($3, $4) \
             ORDER BY entered_at, id LIMIT $5"
        ),
        &[&no, &state.code(), &at, &seq, &limit],
    )
    .await
    .ctx("listing a sync's users")?
    .iter()
    .map(member_of)
    .collect()
}

pub(crate) async fn redrive<C: GenericClient + Sync>(
    c: &C,
    sync_id: &str,
    which: &Redrive,
    now: i64,
    max: u32,
) -> Res<Redriven> {
    let no = sync_no(c, sync_id).await?;
    let mut done = Redriven::default();
    match which {
        Redrive::Errored => {
            let max = i64::from(max.max(1));
            let n = c
                .execute(
                    &format!(
                        "UPDATE queue q SET {REDRIVE_SET} WHERE q.id = ANY(ARRAY(SELECT id FROM queue \
                         WHERE sync_no = $1 AND state = 4 ORDER BY entered_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)) \
                         AND q.state = 4"
                    ),
                    &[&no, &now, &max],
                )
                .await
                .ctx("re-driving errored users")?;
            done.users = n;
            done.more = n as i64 >= max;
        }
        Redrive::Keys(keys) => {
            let mut seen = std::collections::HashSet::with_capacity(keys.len());
            let keys: Vec<&str> = keys.iter().map(String::as_str).filter(|k| seen.insert(*k)).collect();
            let n = c
                .execute(
                    &format!(
                        "UPDATE queue q SET {REDRIVE_SET} WHERE q.sync_no = $1 AND q.user_key = ANY($3) \
                         AND q.state IN (3, 4)"
                    ),
                    &[&no, &now, &keys],
                )
                .await
                .ctx("re-driving users")?;
            done.users = n;
            done.skipped = keys.len() as u64 - n;
        }
    }
    let n = done.users as i64;
    Delta { entered: n, pending: n, ..Delta::default() }.apply(c, no).await?;
    Ok(done)
}

pub(crate) async fn prune<C: GenericClient + Sync>(c: &C, before: i64, max_rows: u32) -> Res<Pruned> {
    let mut budget = i64::from(max_rows.max(1));
    let mut pruned = Pruned::default();
    for no in super::queue::live_sync_nos(c).await? {
        let removed = c
            .execute(
                "DELETE FROM queue WHERE id = ANY(ARRAY(SELECT id FROM queue WHERE sync_no = $1 AND state = 4 \
                 AND entered_at < $2 ORDER BY entered_at, id LIMIT $3 FOR UPDATE SKIP LOCKED))",
                &[&no, &before, &budget],
            )
            .await
            .ctx("pruning errored users")? as i64;
        if removed > 0 {
            Delta { users: -removed, ..Delta::default() }.apply(c, no).await?;
        }
        pruned.rows += removed as u64;
        budget -= removed;
        if budget == 0 {
            pruned.more = true;
            return Ok(pruned);
        }
    }
    // The oldest errors by id (which follows time), those old enough.
    let removed = c
        .execute(
            "DELETE FROM errors WHERE id = ANY(ARRAY(SELECT id FROM errors ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)) \
             AND at < $2",
            &[&budget, &before],
        )
        .await
        .ctx("pruning old errors")? as i64;
    pruned.rows += removed as u64;
    pruned.more = removed == budget;
    Ok(pruned)
}
