//! Deleting a sync with a large backlog on the SQLite store, and what it does to everyone else.
//!
//! ```text
//! cargo bench --workspace --bench delete
//! ```
//!
//! Fills one sync with `DELETE_USERS` pending users (default 1,000,000), then deletes it while
//! another workspace's sync takes intake calls of 100 users back to back: `delete_sync` (which
//! only marks the sync deleted), then `purge_deleted` in chunks of `DELETE_CHUNK` rows (default
//! 2,000, the engine's first `PURGE_CHUNK_ROWS`) until nothing is left, as the engine's purge task
//! does. Reports how long the delete took to answer and to purge, the longest purge call (a
//! chunk's hold on the writer, plus the wait for the intake's group ahead of it), and the
//! latency of the intake calls meanwhile (p50, p99, max): the longest an intake call waited is
//! the longest the store's single writer was held by someone else.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a bench: a step that fails is a failed run")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use audience_store::suite::{FLUSH, T0, new_connection, new_sync, setup};
use audience_store::{CredentialKey, Entry, ReadyUser, SqliteStore, Store};

const PAYLOAD: usize = 96; // about a prepared user: hashed identifiers and a little JSON

fn user(prefix: &str, i: usize) -> ReadyUser {
    let key = format!("{prefix}-{i:09}");
    let mut payload = format!("{{\"em\":\"{key}\",\"h\":\"").into_bytes();
    payload.resize(PAYLOAD, b'f');
    ReadyUser { key, payload }
}

fn entry(ready: Vec<ReadyUser>) -> Entry {
    Entry { ready, not_synced: Vec::new(), now_ms: T0, flush_ms: FLUSH, skip_synced: false }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let users: usize = std::env::var("DELETE_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    runtime.block_on(async {
        let store = Arc::new(SqliteStore::open(dir.path().join("delete.db"), CredentialKey::generate()).expect("open"));
        let (_, _, doomed) = setup(&*store).await;
        let started = Instant::now();
        for call in 0..users.div_ceil(10_000) {
            let ready = (call * 10_000..((call + 1) * 10_000).min(users)).map(|i| user("doomed", i)).collect();
            store.enter(&doomed.id, entry(ready)).await.expect("enter");
        }
        println!("filled: {users} pending users in {:.1} s", started.elapsed().as_secs_f64());

        let other_ws = store.create_workspace("Other").await.expect("workspace");
        let other_conn = store.create_connection(new_connection(&other_ws.id, b"t")).await.expect("connection");
        let other = store.create_sync(new_sync(&other_ws.id, &other_conn.id)).await.expect("sync");

        // Another tenant's intake, back to back, while the delete runs.
        let stop = Arc::new(AtomicBool::new(false));
        let intake = {
            let (store, stop, sync) = (store.clone(), stop.clone(), other.id.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut call = 0;
                while !stop.load(Ordering::Relaxed) {
                    let ready = (call * 100..(call + 1) * 100).map(|i| user("other", i)).collect();
                    let t = Instant::now();
                    store.enter(&sync, entry(ready)).await.expect("intake");
                    latencies.push(t.elapsed());
                    call += 1;
                }
                latencies
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;

        let started = Instant::now();
        store.delete_sync(&doomed.id).await.expect("delete");
        let answered = started.elapsed();
        let chunk: u32 = std::env::var("DELETE_CHUNK").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000);
        let purged = purge_all(&*store, chunk).await;
        let done = started.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        stop.store(true, Ordering::Relaxed);
        let mut latencies = intake.await.expect("intake task");
        latencies.sort();

        println!("delete_sync answered in {:.1} ms; the sync's rows were gone after {:.1} ms", ms(answered), ms(done));
        let (chunks, mut calls) = purged;
        calls.sort();
        println!(
            "purge: {chunks} chunks of {chunk} rows, a call p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(percentile(&calls, 0.5)),
            ms(percentile(&calls, 0.99)),
            ms(calls.last().copied().unwrap_or_default()),
        );
        println!(
            "another workspace's intake meanwhile: {} calls of 100 users, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            latencies.len(),
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
            ms(latencies.last().copied().unwrap_or_default()),
        );
    });
}

/// Purges every deleted sync, `chunk` rows per call: how many calls, and each one's time.
async fn purge_all(store: &dyn Store, chunk: u32) -> (usize, Vec<Duration>) {
    let mut calls = Vec::new();
    loop {
        let t = Instant::now();
        let purged = store.purge_deleted(chunk, None).await.expect("purge");
        calls.push(t.elapsed());
        if !purged.more {
            return (calls.len(), calls);
        }
    }
}
