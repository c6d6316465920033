//! Hosts and lane leases on PostgreSQL: which host delivers each connection's lane, and until
//! when (the model is SQLite's, see `sqlite/lanes.rs`).
//!
//! Time is the database's clock ([`NOW_MS`]), never a host's: hosts whose clocks disagree
//! still agree on whether a lease has expired.
//!
//! Concurrency, under READ COMMITTED:
//! - `acquire_lane` locks the lease row (`SELECT ... FOR UPDATE`) and decides on what it
//!   locked, reading the clock only once it holds the lock. A lane never asked for has no
//!   row: acquirers then `INSERT ... ON CONFLICT DO NOTHING`, and of several inserting at once
//!   one inserts; the others wait for it to commit, insert nothing, and go round again to lock
//!   the winner's row and find it held. The recovery of in-flight users commits with the
//!   lease change, and the connection row is key-share locked so a concurrent
//!   `delete_connection` waits instead of the lease insert failing.
//! - A fenced `claim_batch` share-locks the lease row it checks. A takeover needs that row's
//!   exclusive lock, so either the claim commits first and the takeover's recovery (a later
//!   statement, hence a later snapshot) sees and recovers the users it claimed, or the
//!   takeover commits first and the claim, re-checking the row, finds another owner and
//!   fails. Either way no user stays in flight on a lane whose holder does not know of it.
//! - `renew_lanes` and `release_lane` are single conditional `UPDATE`s on the lease rows, so
//!   they serialize with acquirers on the same row locks.

use tokio_postgres::{GenericClient, Row};

use super::catalog::{get, not_found};
use super::{Ctx, Fail};
use crate::{HOST_RETENTION_MS, LaneLease, LeaseOutcome, StoreError};

type Res<T> = Result<T, Fail>;

/// The database's clock, in ms since the epoch. `clock_timestamp()` rather than `now()`:
/// `now()` is the start of the transaction, which may be long before a lock was obtained.
const NOW_MS: &str = "FLOOR(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// How many times `acquire_lane` looks for the lease row after losing the race to insert it.
const INSERT_RACES: usize = 3;

/// The database's clock now (ms).
async fn db_now<C: GenericClient + Sync>(c: &C) -> Res<i64> {
    let row = c.query_one(&format!("SELECT {NOW_MS}"), &[]).await.ctx("reading the database clock")?;
    get(&row, 0)
}

pub(crate) async fn heartbeat<C: GenericClient + Sync>(c: &C, host_id: &str, ttl_ms: i64) -> Res<u64> {
    let now = db_now(c).await?;
    c.execute(
        "INSERT INTO hosts (host_id, alive_until) VALUES ($1, $2) \
         ON CONFLICT (host_id) DO UPDATE SET alive_until = EXCLUDED.alive_until",
        &[&host_id, &now.saturating_add(ttl_ms)],
    )
    .await
    .ctx("recording a host's heartbeat")?;
    c.execute("DELETE FROM hosts WHERE alive_until < $1", &[&now.saturating_sub(HOST_RETENTION_MS)])
        .await
        .ctx("forgetting hosts gone for an hour")?;
    let row =
        c.query_one("SELECT COUNT(*) FROM hosts WHERE alive_until > $1", &[&now]).await.ctx("counting live hosts")?;
    Ok(get::<i64>(&row, 0)?.max(0) as u64)
}

pub(crate) async fn acquire_lane<C: GenericClient + Sync>(
    c: &C,
    connection_id: &str,
    host_id: &str,
    ttl_ms: i64,
) -> Res<LeaseOutcome> {
    let exists = c
        .query_opt("SELECT 1 FROM connections WHERE id = $1 FOR KEY SHARE", &[&connection_id])
        .await
        .ctx("reading a connection")?
        .is_some();
    if !exists {
        return Err(not_found("connection", connection_id));
    }
    let mut previous = None;
    let mut inserted_at = None;
    for _ in 0..INSERT_RACES {
        let locked = c
            .query_opt(
                "SELECT owner, expires_at FROM lane_leases WHERE connection_id = $1 FOR UPDATE",
                &[&connection_id],
            )
            .await
            .ctx("locking a lane lease")?;
        if let Some(row) = locked {
            previous = Some(LaneLease {
                connection_id: connection_id.to_owned(),
                owner: get(&row, 0)?,
                expires_at: get(&row, 1)?,
            });
            break;
        }
        let now = db_now(c).await?;
        let n = c
            .execute(
                "INSERT INTO lane_leases (connection_id, owner, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (connection_id) DO NOTHING",
                &[&connection_id, &host_id, &now.saturating_add(ttl_ms)],
            )
            .await
            .ctx("recording a lane lease")?;
        if n == 1 {
            inserted_at = Some(now);
            break;
        }
        // Another host inserted it meanwhile (and has committed): lock its row.
    }
    let (now, taken_over_from) = match (previous, inserted_at) {
        // The lane was free: ours now.
        (None, Some(now)) => (now, None),
        (Some(lease), _) => {
            // Read only now that the row is locked: the wait for the lock may have been long.
            let now = db_now(c).await?;
            let expires_at = now.saturating_add(ttl_ms);
            if lease.expires_at > now && lease.owner != host_id {
                return Ok(LeaseOutcome::Held(lease));
            }
            c.execute(
                "UPDATE lane_leases SET owner = $2, expires_at = $3 WHERE connection_id = $1",
                &[&connection_id, &host_id, &expires_at],
            )
            .await
            .ctx("recording a lane lease")?;
            if lease.expires_at > now {
                // Still ours: only extended, our in-flight users stay in flight.
                return Ok(LeaseOutcome::Acquired { expires_at, taken_over_from: None, recovered: 0 });
            }
            (now, Some(lease.owner))
        }
        (None, None) => {
            return Err(StoreError::Database(format!(
                "the lease of connection {connection_id} was inserted and removed {INSERT_RACES} times while \
                 acquiring it; try again"
            ))
            .into());
        }
    };
    let nos: Vec<i64> = c
        .query("SELECT no FROM syncs WHERE connection_id = $1 AND deleted_at IS NULL ORDER BY no", &[&connection_id])
        .await
        .ctx("listing a connection's syncs")?
        .iter()
        .map(|row| get(row, 0))
        .collect::<Res<_>>()?;
    // Due at the time the lane changed hands.
    let recovered = super::queue::recover_syncs(c, &nos, now).await?;
    if recovered > 0 || taken_over_from.is_some() {
        tracing::info!(connection_id, host_id, ?taken_over_from, recovered, "lane acquired");
    }
    Ok(LeaseOutcome::Acquired { expires_at: now.saturating_add(ttl_ms), taken_over_from, recovered })
}

pub(crate) async fn renew_lanes<C: GenericClient + Sync>(c: &C, host_id: &str, ttl_ms: i64) -> Res<Vec<String>> {
    let expires_at = db_now(c).await?.saturating_add(ttl_ms);
    // Expiry is checked on the clock at the row (after any wait for its lock).
    let sql = format!(
        "UPDATE lane_leases SET expires_at = $2 WHERE owner = $1 AND expires_at > {NOW_MS} RETURNING connection_id"
    );
    let mut held: Vec<String> = c
        .query(&sql, &[&host_id, &expires_at])
        .await
        .ctx("renewing lane leases")?
        .iter()
        .map(|row| get(row, 0))
        .collect::<Res<_>>()?;
    held.sort();
    Ok(held)
}

pub(crate) async fn release_lane<C: GenericClient + Sync>(c: &C, connection_id: &str, host_id: &str) -> Res<()> {
    let sql = format!(
        "UPDATE lane_leases SET expires_at = {NOW_MS} WHERE connection_id = $1 AND owner = $2 AND expires_at > {NOW_MS}"
    );
    c.execute(&sql, &[&connection_id, &host_id]).await.ctx("releasing a lane lease")?;
    Ok(())
}

pub(crate) async fn lane_leases<C: GenericClient + Sync>(c: &C) -> Res<Vec<LaneLease>> {
    c.query("SELECT connection_id, owner, expires_at FROM lane_leases ORDER BY connection_id", &[])
        .await
        .ctx("listing lane leases")?
        .iter()
        .map(lease_from_row)
        .collect()
}

/// `LeaseLost` unless `owner` holds an unexpired lease on the lane of sync `no`'s connection.
/// The lease row stays share-locked until the caller's transaction ends.
pub(crate) async fn check_lane<C: GenericClient + Sync>(c: &C, no: i64, owner: &str) -> Res<()> {
    let row = c
        .query_one("SELECT connection_id FROM syncs WHERE no = $1", &[&no])
        .await
        .ctx("reading a sync's connection")?;
    let connection_id: String = get(&row, 0)?;
    let sql = format!(
        "SELECT 1 FROM lane_leases WHERE connection_id = $1 AND owner = $2 AND expires_at > {NOW_MS} FOR SHARE"
    );
    let held = c.query_opt(&sql, &[&connection_id, &owner]).await.ctx("checking the lane lease")?.is_some();
    if held { Ok(()) } else { Err(StoreError::LeaseLost { connection_id }.into()) }
}

fn lease_from_row(row: &Row) -> Res<LaneLease> {
    Ok(LaneLease { connection_id: get(row, 0)?, owner: get(row, 1)?, expires_at: get(row, 2)? })
}

/// Reserves the app's next request slot (see [`crate::Store::take_app_slot`]). The clock is
/// read where the row is locked and again as it is returned, so concurrent hosts queue on the
/// row and each gets the slot after the previous one, exactly `interval_ms` apart.
pub(crate) async fn take_app_slot<C: GenericClient + Sync>(c: &C, app: &str, interval_ms: i64) -> Res<i64> {
    let row = c
        .query_one(
            &format!(
                "INSERT INTO app_pacing (app, next_at) VALUES ($1, {NOW_MS} + $2) \
                 ON CONFLICT (app) DO UPDATE SET next_at = GREATEST(app_pacing.next_at, {NOW_MS}) + $2 \
                 RETURNING next_at, {NOW_MS}"
            ),
            &[&app, &interval_ms],
        )
        .await
        .ctx("reserving an app-wide request slot")?;
    let (next_at, now): (i64, i64) = (get(&row, 0)?, get(&row, 1)?);
    Ok((next_at - interval_ms - now).max(0))
}
