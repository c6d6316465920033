//! Intake throughput of the SQLite store.
//!
//! ```text
//! cd /work/main && CARGO_TARGET_DIR=/work/target-store cargo bench -p audience-store --bench intake
//! ```
//!
//! Measures `enter` in calls of 1,000 and 10,000 users (one caller, then 8 concurrent callers
//! sharing group commits), and as a baseline the same rows inserted into the same table by a
//! bare rusqlite loop, one transaction per 1,000 / 10,000 rows, with the same durability
//! settings (WAL, `synchronous=FULL`). Then claim + complete of 1,000-user batches from the
//! resulting backlog. `INTAKE_USERS` sets the users per measurement (default 200,000).
//! Each measurement runs on a fresh database file.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a step that fails is a failed test")]

use std::sync::Arc;
use std::time::Instant;

use audience_store::suite::{FLUSH, T0, claim, setup};
use audience_store::{CredentialKey, Entry, ReadyUser, SqliteStore, Store, UserOutcome, UserResult};
use rusqlite::{Connection, params};

const PAYLOAD: usize = 96; // about a prepared user: hashed identifiers and a little JSON

fn user(i: usize) -> ReadyUser {
    let key = format!("user-{i:09}");
    let mut payload = format!("{{\"em\":\"{key}\",\"h\":\"").into_bytes();
    payload.resize(PAYLOAD, b'f');
    ReadyUser { key, payload }
}

fn report(what: &str, users: usize, started: Instant) -> f64 {
    let secs = started.elapsed().as_secs_f64();
    let rate = users as f64 / secs;
    println!("{what:<52} {users:>9} users {secs:>7.2} s {rate:>11.0} users/s");
    rate
}

async fn fresh_store(dir: &tempfile::TempDir, name: &str) -> (Arc<SqliteStore>, String) {
    let store = SqliteStore::open(dir.path().join(name), CredentialKey::generate()).expect("open");
    let sync = setup(&store).await.2.id;
    (Arc::new(store), sync)
}

async fn enter_calls(total: usize, per_call: usize, callers: usize, dir: &tempfile::TempDir) -> Arc<SqliteStore> {
    let (store, sync) = fresh_store(dir, &format!("enter-{per_call}-{callers}.db")).await;
    let calls = total / per_call;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for caller in 0..callers {
        let (store, sync) = (store.clone(), sync.clone());
        tasks.push(tokio::spawn(async move {
            for call in (caller..calls).step_by(callers) {
                let ready = (call * per_call..(call + 1) * per_call).map(user).collect();
                let entry = Entry { ready, not_synced: Vec::new(), now_ms: T0, flush_ms: FLUSH, skip_synced: false };
                store.enter(&sync, entry).await.expect("enter");
            }
        }));
    }
    for task in tasks {
        task.await.expect("caller");
    }
    report(&format!("enter, {per_call} users/call, {callers} caller(s)"), calls * per_call, started);
    let counts = store.counts(&sync).await.expect("counts");
    assert_eq!(counts.pending as usize, calls * per_call);
    store
}

async fn bare_rusqlite(total: usize, per_tx: usize, dir: &tempfile::TempDir) {
    let path = dir.path().join(format!("bare-{per_tx}.db"));
    let (store, sync) = fresh_store(dir, &format!("bare-{per_tx}.db")).await;
    drop(store);
    let mut conn = Connection::open(&path).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL").expect("wal");
    conn.pragma_update(None, "synchronous", "FULL").expect("sync");
    conn.pragma_update(None, "cache_size", -64 * 1024).expect("cache");
    let no: i64 = conn.query_row("SELECT no FROM syncs WHERE id = ?1", [&sync], |r| r.get(0)).expect("sync no");
    let started = Instant::now();
    for batch in 0..total / per_tx {
        let tx = conn.transaction().expect("begin");
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO queue (sync_no, user_key, state, payload, entered_at, not_before, due_at) \
                     VALUES (?1, ?2, 0, ?3, ?4, 0, ?5) ON CONFLICT (sync_no, user_key) DO NOTHING",
                )
                .expect("prepare");
            for i in batch * per_tx..(batch + 1) * per_tx {
                let u = user(i);
                insert.execute(params![no, u.key, u.payload, T0, T0 + FLUSH]).expect("insert");
            }
        }
        tx.commit().expect("commit");
    }
    report(&format!("bare rusqlite, {per_tx} rows/transaction (baseline)"), total / per_tx * per_tx, started);
}

async fn claim_and_complete(store: &SqliteStore, batch: usize) {
    let sync = store.all_syncs().await.expect("syncs")[0].id.clone();
    let pending = store.counts(&sync).await.expect("counts").pending as usize;
    let started = Instant::now();
    let mut delivered = 0;
    loop {
        let claimed = store.claim_batch(&sync, claim(T0 + FLUSH, batch)).await.expect("claim");
        if claimed.is_empty() {
            break;
        }
        delivered += claimed.len();
        let results = claimed.into_iter().map(|u| UserResult { key: u.key, outcome: UserOutcome::Synced }).collect();
        store.complete(&sync, results).await.expect("complete");
    }
    assert_eq!(delivered, pending);
    report(&format!("claim + complete, {batch} users/batch"), delivered, started);
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() {
    let total: usize = std::env::var("INTAKE_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    runtime.block_on(async {
        enter_calls(total, 1_000, 1, &dir).await;
        let store = enter_calls(total, 10_000, 1, &dir).await;
        enter_calls(total, 1_000, 8, &dir).await;
        bare_rusqlite(total, 1_000, &dir).await;
        bare_rusqlite(total, 10_000, &dir).await;
        claim_and_complete(&store, 1_000).await;
    });
    if let Some(mib) = peak_rss_mib() {
        println!("peak resident memory: {mib:.0} MiB");
    }
}
