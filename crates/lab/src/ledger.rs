//! `audience-host bench ledger [--users N] [--postgres URL]`: what a sync's ledger costs with
//! millions of users in it (issue #15).
//!
//! On one store (a SQLite file, or a scratch PostgreSQL database with `--postgres`):
//!
//! 1. **Intake.** `N` users (default 10,000,000) enter one paused sync through the engine, in
//!    calls of 10,000: the API's intake path (the plugin prepares each user, the store commits
//!    the call durably before it returns). Reported as users/s over the whole run and over its
//!    last tenth (the ledger is largest then).
//! 2. **Bytes on disk per user, pending.** SQLite: the database file and its WAL after a
//!    `wal_checkpoint(TRUNCATE)`, over `N`. PostgreSQL: `pg_total_relation_size('queue')` (the
//!    ledger's table, its indexes and TOAST) over `N`, and beside it the growth of
//!    `pg_database_size` since before the intake.
//! 3. **Synced.** The engine is stopped; [`synced_share`] of the users (90%, at least 1,000,000
//!    or all of them when fewer) are claimed in batches of 5,000 and completed as synced through
//!    the store's API, as a lane records a delivery, so their rows have the shape of delivered
//!    users; the rest stay pending (a backlog). Bytes per user again, measured the same way
//!    (PostgreSQL: as is, dead row versions of the updates included, as autovacuum would find
//!    them).
//! 4. **Look-ups.** `Store::member(sync, key)` for 10,000 keys drawn at random among the `N`,
//!    one after the other, each timed: p50, p99, max, mean in µs.
//! 5. **Listings.** `Store::members(sync, synced)`: the first page of 100, and a page of 100
//!    after a user nine tenths deep into the synced users' listing (its cursor built from that
//!    user's entry time and row number, as the API's `next_cursor` carries them); the first
//!    call of each, then the median of 20 more.
//!
//! Everything runs in this process; the scratch SQLite directory or PostgreSQL database is
//! removed at the end (also when the run fails).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use audience_engine::UserInput;
use audience_store::{Claim, MemberCursor, MemberState, Store, SyncRecord, UserOutcome, UserResult};
use rand::RngExt as _;
use serde_json::{Value, json};

use crate::bench::per_second;
use crate::world::{Lab, ScratchDatabase, WorldOptions};

/// Users in each intake call.
const USERS_PER_CALL: usize = 10_000;
/// Users claimed and completed at a time when marking users synced.
const SYNC_BATCH: usize = 5_000;
/// Keys looked up.
const LOOKUPS: usize = 10_000;
/// Users on a page of a listing (the API's default).
const PAGE: u32 = audience_store::DEFAULT_PAGE;
/// Timed calls of each listing after its first.
const PAGE_REPEATS: usize = 20;
/// The prefix of the users' keys (`ledger-0`, `ledger-1`, ...).
const PREFIX: &str = "ledger-";

/// How many of `n` users are marked synced: nine in ten, and at least 1,000,000 (all of them
/// when there are fewer).
pub fn synced_share(n: usize) -> usize {
    (n / 10 * 9).max(n.min(1_000_000))
}

/// Run the scenario with `n` users on SQLite, or on a scratch database of the PostgreSQL
/// server at `postgres`.
pub async fn run(n: usize, postgres: Option<&str>) -> anyhow::Result<Value> {
    anyhow::ensure!(n >= 1, "--users must be at least 1");
    let dir = tempfile::tempdir()?;
    let database = match postgres {
        Some(server) => Some(ScratchDatabase::create(server, "bench_ledger").await?),
        None => None,
    };
    let disk = match &database {
        Some(database) => Disk::postgres(database.url()).await?,
        None => Disk::Sqlite(dir.path().join("host.db")),
    };
    let options =
        WorldOptions { postgres_url: database.as_ref().map(|d| d.url().to_string()), ..WorldOptions::default() };
    let lab = Lab::start(dir.path(), options).await?;
    let sync = lab.sync("ledger").await?;
    lab.engine.set_paused(&sync.id, true).await?;
    let before = disk.database_bytes().await?;

    // 1. Intake, through the engine as the API enters users.
    eprintln!("ledger: entering {n} users in calls of {USERS_PER_CALL}");
    let (intake, tail, tail_elapsed) = enter(&lab, &sync, n).await?;
    let counts = lab.engine.counts(&sync.id).await?;
    anyhow::ensure!(counts.pending == n as u64, "{} of {n} users pending after the intake", counts.pending);
    let store: Arc<dyn Store> = lab.store.clone();
    // The engine stops: nothing but this scenario touches the store from here.
    lab.stop().await;

    // 2. Bytes on disk, every user pending.
    let pending_bytes = disk.measure(before, n).await?;

    // 3. Mark most of them synced, as deliveries would.
    let synced = synced_share(n);
    eprintln!("ledger: marking {synced} users synced");
    let started = Instant::now();
    mark_synced(store.as_ref(), &sync.id, synced).await?;
    let synced_elapsed = started.elapsed();
    let counts = store.counts(&sync.id).await?;
    anyhow::ensure!(
        counts.synced == synced as u64 && counts.conserved(),
        "after marking {synced} users synced the counts are {counts:?}"
    );
    let synced_bytes = disk.measure(before, n).await?;

    // 4. One user among n, at random.
    eprintln!("ledger: {LOOKUPS} look-ups");
    let lookups = look_up(store.as_ref(), &sync.id, n).await?;

    // 5. Pages of the synced users: the first, and one nine tenths deep.
    let first = page(store.as_ref(), &sync.id, None).await?;
    let deep_user = format!("{PREFIX}{}", synced / 10 * 9);
    let found = store.member(&sync.id, &deep_user).await?.member;
    anyhow::ensure!(found.state == MemberState::Synced, "{deep_user} is {:?}, not synced", found.state);
    let deep =
        page(store.as_ref(), &sync.id, Some(MemberCursor { entered_at: found.entered_at, seq: found.seq })).await?;

    let store_name = disk.name();
    drop(disk);
    drop(store);
    drop(database);
    Ok(json!({
        "scenario": "ledger",
        "store": store_name,
        "users": n,
        "intake": {
            "users_per_call": USERS_PER_CALL,
            "seconds": round3(intake.as_secs_f64()),
            "users_per_second": per_second(n, intake),
            "last_tenth_users_per_second": per_second(tail, tail_elapsed),
        },
        "bytes_per_user_pending": pending_bytes,
        "marked_synced": {
            "users": synced,
            "pending_left": n - synced,
            "seconds": round3(synced_elapsed.as_secs_f64()),
            "users_per_second": per_second(synced, synced_elapsed),
            "batch": SYNC_BATCH,
        },
        "bytes_per_user_synced": synced_bytes,
        "member_lookup_us": lookups,
        "members_synced_page": {
            "limit": PAGE,
            "first_page": first,
            "deep_page": json!({ "after_user": synced / 10 * 9, "figures": deep }),
        },
    }))
}

/// `n` users `ledger-{i}` (by email) enter `sync` in calls of [`USERS_PER_CALL`]: how long
/// it took, and how many users the calls of the last tenth held and how long they took.
async fn enter(lab: &Lab, sync: &SyncRecord, n: usize) -> anyhow::Result<(Duration, usize, Duration)> {
    let started = Instant::now();
    let mut tail = None;
    let mut reported = 0;
    let mut i = 0;
    while i < n {
        if tail.is_none() && i >= n - n / 10 {
            tail = Some((n - i, Instant::now()));
        }
        let end = (i + USERS_PER_CALL).min(n);
        let users =
            (i..end).map(|j| UserInput::new(format!("{PREFIX}{j}")).with("email", format!("{PREFIX}{j}@example.com")));
        lab.engine.enter(sync, users.collect()).await?;
        i = end;
        if i * 10 / n > reported {
            reported = i * 10 / n;
            eprintln!("ledger:   {i} users in, {} users/s so far", per_second(i, started.elapsed()));
        }
    }
    let finished = Instant::now();
    let (tail_users, tail_started) = tail.unwrap_or((n, started));
    Ok((finished - started, tail_users, finished - tail_started))
}

/// Claims `n` users of the sync in batches of [`SYNC_BATCH`] and completes them as synced.
async fn mark_synced(store: &dyn Store, sync_id: &str, n: usize) -> anyhow::Result<()> {
    let mut done = 0;
    while done < n {
        let claim = Claim {
            // Everyone is due an hour from now; nobody is past a retry window.
            now_ms: now_ms() + 3_600_000,
            max: SYNC_BATCH.min(n - done),
            expire_before_ms: 0,
            expired_reason: String::new(),
            lane_owner: None,
        };
        let batch = store.claim_batch(sync_id, claim).await?;
        anyhow::ensure!(!batch.is_empty(), "nothing left to claim after {done} of {n} users");
        done += batch.len();
        let results = batch.into_iter().map(|u| UserResult { key: u.key, outcome: UserOutcome::Synced }).collect();
        store.complete(sync_id, results).await?;
    }
    Ok(())
}

/// [`LOOKUPS`] users drawn at random among `n`, looked up one after the other: µs figures.
async fn look_up(store: &dyn Store, sync_id: &str, n: usize) -> anyhow::Result<Value> {
    let mut rng = rand::rng();
    let mut times = Vec::with_capacity(LOOKUPS);
    let mut synced = 0;
    for _ in 0..LOOKUPS {
        let key = format!("{PREFIX}{}", rng.random_range(0..n));
        let started = Instant::now();
        let found = store.member(sync_id, &key).await?;
        times.push(started.elapsed());
        anyhow::ensure!(found.member.key == key, "asked for {key}, got {}", found.member.key);
        synced += usize::from(found.member.state == MemberState::Synced);
    }
    let mean = times.iter().sum::<Duration>() / LOOKUPS as u32;
    times.sort_unstable();
    Ok(json!({
        "lookups": LOOKUPS,
        "found_synced": synced,
        "p50": micros(quantile(&times, 0.5)),
        "p99": micros(quantile(&times, 0.99)),
        "max": micros(quantile(&times, 1.0)),
        "mean": micros(mean),
    }))
}

/// A page of the synced users after `after`: the first call's time and the median of
/// [`PAGE_REPEATS`] more, in ms, and how many users the page held.
async fn page(store: &dyn Store, sync_id: &str, after: Option<MemberCursor>) -> anyhow::Result<Value> {
    let mut times = Vec::with_capacity(PAGE_REPEATS + 1);
    let mut users = 0;
    for _ in 0..=PAGE_REPEATS {
        let started = Instant::now();
        let found = store.members(sync_id, MemberState::Synced, after, PAGE).await?;
        times.push(started.elapsed());
        anyhow::ensure!(found.iter().all(|m| m.state == MemberState::Synced), "a page of synced users held others");
        users = found.len();
    }
    let first = times[0];
    let mut rest = times[1..].to_vec();
    rest.sort_unstable();
    Ok(json!({ "users": users, "first_ms": millis(first), "median_ms": millis(quantile(&rest, 0.5)) }))
}

/// Where the store keeps its bytes, and how to count them.
enum Disk {
    /// The SQLite database file (its WAL beside it).
    Sqlite(std::path::PathBuf),
    /// A connection to the scratch PostgreSQL database.
    Postgres(tokio_postgres::Client),
}

impl Disk {
    async fn postgres(url: &str) -> anyhow::Result<Self> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .context("cannot reach the scratch PostgreSQL database")?;
        tokio::spawn(connection);
        Ok(Disk::Postgres(client))
    }

    fn name(&self) -> &'static str {
        match self {
            Disk::Sqlite(_) => "sqlite",
            Disk::Postgres(_) => "postgresql",
        }
    }

    /// PostgreSQL: the database's size now (the baseline of [`Disk::measure`]); SQLite: 0.
    async fn database_bytes(&self) -> anyhow::Result<i64> {
        match self {
            Disk::Sqlite(_) => Ok(0),
            Disk::Postgres(client) => {
                let row = client.query_one("SELECT pg_database_size(current_database())", &[]).await?;
                Ok(row.get(0))
            }
        }
    }

    /// The ledger's bytes on disk now, in all and per user of `n`.
    async fn measure(&self, baseline: i64, n: usize) -> anyhow::Result<Value> {
        let per_user = |bytes: i64| (bytes as f64 / n as f64 * 10.0).round() / 10.0;
        match self {
            Disk::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                let (busy, _, _): (i64, i64, i64) =
                    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                drop(conn);
                anyhow::ensure!(busy == 0, "the WAL checkpoint was blocked by a reader");
                let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len()) as i64;
                let database = size(path);
                let wal = size(&path.with_extension("db-wal"));
                Ok(json!({
                    "measured": "the SQLite database file and its WAL after wal_checkpoint(TRUNCATE), over the users",
                    "database_bytes": database,
                    "wal_bytes": wal,
                    "per_user": per_user(database + wal),
                }))
            }
            Disk::Postgres(client) => {
                let row = client
                    .query_one(
                        "SELECT pg_total_relation_size('queue'), pg_relation_size('queue'), \
                         pg_indexes_size('queue'), pg_database_size(current_database())",
                        &[],
                    )
                    .await?;
                let (total, table, indexes, database): (i64, i64, i64, i64) =
                    (row.get(0), row.get(1), row.get(2), row.get(3));
                Ok(json!({
                    "measured": "pg_total_relation_size('queue') (the ledger's table, its indexes and TOAST) over the users; \
                                 beside it the growth of pg_database_size since before the intake",
                    "queue_total_bytes": total,
                    "queue_table_bytes": table,
                    "queue_indexes_bytes": indexes,
                    "per_user": per_user(total),
                    "database_growth_bytes": database - baseline,
                    "database_growth_per_user": per_user(database - baseline),
                }))
            }
        }
    }
}

/// The element at quantile `q` of sorted `times`.
fn quantile(times: &[Duration], q: f64) -> Duration {
    let last = times.len().saturating_sub(1);
    times.get(((last as f64) * q).round() as usize).copied().unwrap_or_default()
}

fn micros(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}

fn millis(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nine_in_ten_are_synced_and_at_least_a_million() {
        assert_eq!(synced_share(10_000_000), 9_000_000);
        assert_eq!(synced_share(2_000_000), 1_800_000);
        assert_eq!(synced_share(1_000_000), 1_000_000);
        assert_eq!(synced_share(1_050_000), 1_000_000);
        assert_eq!(synced_share(20_000), 20_000);
    }

    #[test]
    fn quantiles_of_sorted_times() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        assert_eq!(quantile(&times, 0.5), Duration::from_micros(51));
        assert_eq!(quantile(&times, 0.99), Duration::from_micros(99));
        assert_eq!(quantile(&times, 1.0), Duration::from_micros(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
        assert_eq!(micros(Duration::from_nanos(12_345)), 12.3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_ledger_is_measured() {
        let result = run(12_000, None).await.unwrap();
        assert_eq!(result["users"], 12_000);
        assert_eq!(result["marked_synced"]["users"], 12_000);
        assert_eq!(result["member_lookup_us"]["lookups"], 10_000);
        assert_eq!(result["member_lookup_us"]["found_synced"], 10_000);
        assert_eq!(result["members_synced_page"]["first_page"]["users"], 100);
        assert_eq!(result["members_synced_page"]["deep_page"]["figures"]["users"], 100);
        assert!(result["bytes_per_user_pending"]["per_user"].as_f64().unwrap() > 100.0, "{result}");
        assert!(result["bytes_per_user_synced"]["per_user"].as_f64().unwrap() > 100.0, "{result}");
    }
}
