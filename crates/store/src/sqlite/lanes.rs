//! Hosts and lane leases: which host delivers each connection's lane, and until when.
//!
//! Why leases, and why here: with several hosts on one database, two hosts delivering the
//! same connection would double its rate against the partner's limit and send each user
//! twice. So each lane is held by one host at a time through a row with an expiry; a live
//! host renews it, a dead host's lease expires and another host takes the lane over. At a
//! takeover the users the previous holder had in flight for that connection go back to
//! pending in the same transaction as the lease changes hands: the previous holder may have
//! sent them or not, so they are sent again (at least once, never lost).
//!
//! SQLite has one writer (this process's writer thread, and the file lock between processes),
//! so "read the lease, decide, write" is atomic as written: no two acquirers can both find a
//! lane free. Times are the system clock (`now`, ms), read when the writer runs the operation.

use rusqlite::{Connection, OptionalExtension, params};

use super::Ctx;
use super::catalog::not_found;
use crate::{HOST_RETENTION_MS, LaneLease, LeaseOutcome, StoreError, StoreResult};

pub(crate) fn heartbeat(conn: &Connection, host_id: &str, ttl_ms: i64, now: i64) -> StoreResult<u64> {
    conn.prepare_cached(
        "INSERT INTO hosts (host_id, alive_until) VALUES (?1, ?2) \
         ON CONFLICT (host_id) DO UPDATE SET alive_until = excluded.alive_until",
    )
    .and_then(|mut s| s.execute(params![host_id, now.saturating_add(ttl_ms)]))
    .ctx("recording a host's heartbeat")?;
    conn.prepare_cached("DELETE FROM hosts WHERE alive_until < ?1")
        .and_then(|mut s| s.execute([now.saturating_sub(HOST_RETENTION_MS)]))
        .ctx("forgetting hosts gone for an hour")?;
    let alive: i64 = conn
        .prepare_cached("SELECT COUNT(*) FROM hosts WHERE alive_until > ?1")
        .and_then(|mut s| s.query_row([now], |row| row.get(0)))
        .ctx("counting live hosts")?;
    Ok(alive.max(0) as u64)
}

pub(crate) fn acquire_lane(
    conn: &Connection,
    connection_id: &str,
    host_id: &str,
    ttl_ms: i64,
    now: i64,
) -> StoreResult<LeaseOutcome> {
    let exists = conn
        .prepare_cached("SELECT 1 FROM connections WHERE id = ?1")
        .and_then(|mut s| s.exists([connection_id]))
        .ctx("reading a connection")?;
    if !exists {
        return Err(not_found("connection", connection_id));
    }
    let current = lease(conn, connection_id)?;
    let expires_at = now.saturating_add(ttl_ms);
    let taken_over_from = match current {
        // Still ours: only extended, our in-flight users stay in flight.
        Some(l) if l.owner == host_id && l.expires_at > now => {
            set_lease(conn, connection_id, host_id, expires_at)?;
            return Ok(LeaseOutcome::Acquired { expires_at, taken_over_from: None, recovered: 0 });
        }
        Some(l) if l.expires_at > now => return Ok(LeaseOutcome::Held(l)),
        Some(l) => Some(l.owner),
        None => None,
    };
    set_lease(conn, connection_id, host_id, expires_at)?;
    let nos: Vec<i64> = conn
        .prepare_cached("SELECT no FROM syncs WHERE connection_id = ?1 AND deleted_at IS NULL ORDER BY no")
        .and_then(|mut s| s.query_map([connection_id], |row| row.get(0))?.collect())
        .ctx("listing a connection's syncs")?;
    let recovered = super::queue::recover_syncs(conn, &nos, now)?;
    if recovered > 0 || taken_over_from.is_some() {
        tracing::info!(connection_id, host_id, ?taken_over_from, recovered, "lane acquired");
    }
    Ok(LeaseOutcome::Acquired { expires_at, taken_over_from, recovered })
}

pub(crate) fn renew_lanes(conn: &Connection, host_id: &str, ttl_ms: i64, now: i64) -> StoreResult<Vec<String>> {
    let mut held: Vec<String> = conn
        .prepare_cached(
            "UPDATE lane_leases SET expires_at = ?3 WHERE owner = ?1 AND expires_at > ?2 RETURNING connection_id",
        )
        .and_then(|mut s| s.query_map(params![host_id, now, now.saturating_add(ttl_ms)], |row| row.get(0))?.collect())
        .ctx("renewing lane leases")?;
    held.sort();
    Ok(held)
}

pub(crate) fn release_lane(conn: &Connection, connection_id: &str, host_id: &str, now: i64) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE lane_leases SET expires_at = ?3 WHERE connection_id = ?1 AND owner = ?2 AND expires_at > ?3",
    )
    .and_then(|mut s| s.execute(params![connection_id, host_id, now]))
    .ctx("releasing a lane lease")?;
    Ok(())
}

pub(crate) fn lane_leases(conn: &Connection) -> StoreResult<Vec<LaneLease>> {
    conn.prepare_cached("SELECT connection_id, owner, expires_at FROM lane_leases ORDER BY connection_id")
        .and_then(|mut s| {
            s.query_map([], |row| {
                Ok(LaneLease { connection_id: row.get(0)?, owner: row.get(1)?, expires_at: row.get(2)? })
            })?
            .collect()
        })
        .ctx("listing lane leases")
}

/// `LeaseLost` unless `owner` holds an unexpired lease on the lane of sync `no`'s connection.
pub(crate) fn check_lane(conn: &Connection, no: i64, owner: &str, now: i64) -> StoreResult<()> {
    let connection_id: String = conn
        .prepare_cached("SELECT connection_id FROM syncs WHERE no = ?1")
        .and_then(|mut s| s.query_row([no], |row| row.get(0)))
        .ctx("reading a sync's connection")?;
    match lease(conn, &connection_id)? {
        Some(l) if l.owner == owner && l.expires_at > now => Ok(()),
        _ => Err(StoreError::LeaseLost { connection_id }),
    }
}

fn lease(conn: &Connection, connection_id: &str) -> StoreResult<Option<LaneLease>> {
    conn.prepare_cached("SELECT owner, expires_at FROM lane_leases WHERE connection_id = ?1")
        .and_then(|mut s| {
            s.query_row([connection_id], |row| {
                Ok(LaneLease { connection_id: connection_id.to_owned(), owner: row.get(0)?, expires_at: row.get(1)? })
            })
            .optional()
        })
        .ctx("reading a lane lease")
}

fn set_lease(conn: &Connection, connection_id: &str, owner: &str, expires_at: i64) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO lane_leases (connection_id, owner, expires_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT (connection_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
    )
    .and_then(|mut s| s.execute(params![connection_id, owner, expires_at]))
    .ctx("recording a lane lease")?;
    Ok(())
}

/// Reserves the app's next request slot (see [`crate::Store::take_app_slot`]) at `now` (ms).
pub(crate) fn take_app_slot(conn: &Connection, app: &str, interval_ms: i64, now: i64) -> StoreResult<i64> {
    let next_at: i64 = conn
        .prepare_cached(
            "INSERT INTO app_pacing (app, next_at) VALUES (?1, ?2 + ?3) \
             ON CONFLICT (app) DO UPDATE SET next_at = MAX(next_at, ?2) + ?3 RETURNING next_at",
        )
        .and_then(|mut s| s.query_row(rusqlite::params![app, now, interval_ms], |row| row.get(0)))
        .ctx("reserving an app-wide request slot")?;
    Ok((next_at - interval_ms - now).max(0))
}
