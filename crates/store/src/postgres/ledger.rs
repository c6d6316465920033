//! The ledger's own reads and writes, as SQLite's (`sqlite/ledger.rs`): one user's lookup,
//! listings by state, re-drives and the pruning of old history. Chunks of rows are taken with
//! `FOR UPDATE SKIP LOCKED`, so hosts pruning or re-driving at once take different rows.

use tokio_postgres::{GenericClient, Row};

use super::catalog::{get, not_found};
use super::queue::{Delta, sync_no};
use super::{Ctx, Fail};
use crate::removal::{Step, removal_step};
use crate::{
    MEMBER_ERRORS, Member, MemberCursor, MemberDetail, MemberState, Pruned, Redrive, Redriven, RemovalSkip, Removals,
    StoreError, SyncAction, UserError,
};

type Res<T> = Result<T, Fail>;

/// The columns of a [`Member`], in [`member_of`]'s order.
const COLUMNS: &str = "user_key, state, id, coalesce(first_at, entered_at), entered_at, entries, attempts, \
     tried_at, done_at, last_error, submission, asked_at, then_op";
/// A user queued again with a fresh retry window, due now (`$2`).
const REDRIVE_SET: &str = "state = 0, first_at = coalesce(q.first_at, q.entered_at), entered_at = $2, \
     not_before = 0, due_at = $2, attempts = 0, entries = q.entries + 1, tried_at = NULL, done_at = NULL, \
     last_error = NULL, submission = NULL, asked_at = NULL, then_op = 0";

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
        removal_asked_at: get(row, 11)?,
        then: match get::<i64>(row, 12)? {
            1 => Some(SyncAction::Remove),
            2 => Some(SyncAction::Add),
            _ => None,
        },
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
    let payload: Vec<u8> = get(&row, 13)?;
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
    let mut in_audience = 0i64;
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
            // Each row's state before, to know how many left `synced` (`in_audience`).
            let rows = c
                .query(
                    &format!(
                        "WITH before AS (SELECT id, state FROM queue WHERE sync_no = $1 AND user_key = ANY($3) \
                         AND state IN (3, 4) FOR UPDATE) \
                         UPDATE queue q SET {REDRIVE_SET} FROM before b WHERE q.id = b.id RETURNING b.state"
                    ),
                    &[&no, &now, &keys],
                )
                .await
                .ctx("re-driving users")?;
            for row in &rows {
                in_audience -= i64::from(get::<i64>(row, 0)? == 3);
            }
            done.users = rows.len() as u64;
            done.skipped = keys.len() as u64 - done.users;
        }
    }
    let n = done.users as i64;
    Delta { entered: n, pending: n, in_audience, ..Delta::default() }.apply(c, no).await?;
    Ok(done)
}

/// Queues the removal of these users, as SQLite's `ledger::remove` (the same decision per
/// state, `removal_step`): the rows are read and locked first, then moved by kind.
pub(crate) async fn remove<C: GenericClient + Sync>(
    c: &C,
    sync_id: &str,
    keys: &[String],
    now: i64,
    flush: i64,
) -> Res<Removals> {
    let no = sync_no(c, sync_id).await?;
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    let keys: Vec<&str> = keys.iter().map(String::as_str).filter(|k| seen.insert(*k)).collect();
    let rows = c
        .query(
            "SELECT user_key, id, state, then_op FROM queue WHERE sync_no = $1 AND user_key = ANY($2) ORDER BY id \
             FOR UPDATE",
            &[&no, &keys],
        )
        .await
        .ctx("finding users to remove")?;
    let mut found = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        found.insert(get::<String>(row, 0)?, (get::<i64>(row, 1)?, get::<i64>(row, 2)?, get::<i64>(row, 3)?));
    }
    let (mut now_ids, mut after_ids) = (Vec::new(), Vec::new());
    let mut done = Removals::default();
    let mut delta = Delta::default();
    for key in keys {
        let Some(&(id, state, then_op)) = found.get(key) else {
            done.skipped.push((key.to_owned(), RemovalSkip::Unknown));
            continue;
        };
        match removal_step(state, then_op) {
            Step::Remove => {
                match state {
                    3 => delta.in_audience -= 1,
                    10 => delta.removal_errored -= 1,
                    _ => {}
                }
                now_ids.push(id);
            }
            Step::RemoveAfter => after_ids.push(id),
            Step::Skip(why) => done.skipped.push((key.to_owned(), why)),
        }
    }
    if !now_ids.is_empty() {
        c.execute(
            "UPDATE queue SET state = 6, asked_at = $2, due_at = $3, not_before = 0, attempts = 0, tried_at = NULL, \
             done_at = NULL, last_error = NULL, then_op = 0 WHERE id = ANY($1)",
            &[&now_ids, &now, &now.saturating_add(flush)],
        )
        .await
        .ctx("removing users")?;
    }
    if !after_ids.is_empty() {
        c.execute("UPDATE queue SET then_op = 1, asked_at = $2 WHERE id = ANY($1)", &[&after_ids, &now])
            .await
            .ctx("removing users after their delivery")?;
    }
    let n = (now_ids.len() + after_ids.len()) as i64;
    done.removing = n as u64;
    delta.removing += n;
    delta.apply(c, no).await?;
    Ok(done)
}

pub(crate) async fn prune<C: GenericClient + Sync>(c: &C, before: i64, max_rows: u32) -> Res<Pruned> {
    let mut budget = i64::from(max_rows.max(1));
    let mut pruned = Pruned::default();
    for no in super::queue::live_sync_nos(c).await? {
        // Errored users, users removed, users whose removal was refused.
        for state in [4i64, 9, 10] {
            let gone = c
                .execute(
                    "DELETE FROM queue WHERE id = ANY(ARRAY(SELECT id FROM queue WHERE sync_no = $1 AND state = $4 \
                     AND entered_at < $2 AND coalesce(done_at, 0) < $2 ORDER BY entered_at, id LIMIT $3 \
                     FOR UPDATE SKIP LOCKED))",
                    &[&no, &before, &budget, &state],
                )
                .await
                .ctx("pruning errored and removed users")? as i64;
            if gone > 0 {
                let mut delta = Delta { users: -gone, ..Delta::default() };
                match state {
                    9 => delta.removed = -gone,
                    10 => delta.removal_errored = -gone,
                    _ => {}
                }
                delta.apply(c, no).await?;
            }
            pruned.rows += gone as u64;
            budget -= gone;
            if budget == 0 {
                pruned.more = true;
                return Ok(pruned);
            }
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
