//! Behaviours particular to the SQLite backend: the file, its schema, and that the counters
//! equal the rows actually in the queue.

use crate::common::SqliteHarness;
use audience_store::suite::{FLUSH, T0, claim, conserved, entry, setup, users};
use audience_store::{CredentialKey, SqliteStore, Store, StoreError, UserOutcome, UserResult};
use rusqlite::Connection;

fn raw(harness: &SqliteHarness) -> Connection {
    Connection::open(harness.path()).expect("open the file directly")
}

#[tokio::test]
async fn opening_creates_the_file_in_wal_mode_and_reopening_keeps_it() {
    let harness = SqliteHarness::new();
    let key = CredentialKey::generate();
    let store = SqliteStore::open(harness.path(), key.clone()).expect("open");
    assert_eq!(store.path(), harness.path());
    let ws = store.create_workspace("Acme").await.expect("create");
    drop(store);

    let conn = raw(&harness);
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 7);
    drop(conn);

    // Migrations are not run again (they would fail on existing tables) and data stays.
    let store = SqliteStore::open(harness.path(), key).expect("reopen");
    assert_eq!(store.workspace(&ws.id).await.expect("read"), ws);
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let harness = SqliteHarness::new();
    drop(SqliteStore::open(harness.path(), CredentialKey::generate()).expect("open"));
    raw(&harness).pragma_update(None, "user_version", 99).unwrap();
    match SqliteStore::open(harness.path(), CredentialKey::generate()) {
        Err(StoreError::Database(message)) => {
            assert!(message.contains("schema version 99"), "{message}");
            assert!(message.contains("newer audience-host"), "{message}");
        }
        other => panic!("expected a Database error, got {other:?}"),
    }
}

#[test]
fn a_path_that_cannot_be_a_database_says_where() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the file should be.
    match SqliteStore::open(dir.path(), CredentialKey::generate()) {
        Err(StoreError::Database(message)) => {
            assert!(message.contains(&dir.path().display().to_string()), "{message}")
        }
        other => panic!("expected a Database error, got {other:?}"),
    }
}

#[tokio::test]
async fn counters_equal_the_rows_in_the_queue_and_errors_tables() {
    let harness = SqliteHarness::new();
    let store = SqliteStore::open(harness.path(), CredentialKey::generate()).expect("open");
    let (_, _, sync) = setup(&store).await;
    store.enter(&sync.id, entry(users("u", 100), T0)).await.unwrap();
    let batch = store.claim_batch(&sync.id, claim(T0 + FLUSH, 40)).await.unwrap();
    let results = batch
        .iter()
        .enumerate()
        .map(|(i, u)| UserResult {
            key: u.key.clone(),
            outcome: match i % 3 {
                0 => UserOutcome::Synced,
                1 => UserOutcome::Errored("refused".into()),
                _ => UserOutcome::Retry { not_before_ms: T0 + 60_000, error: "503".into() },
            },
        })
        .collect();
    store.complete(&sync.id, results).await.unwrap();
    store.claim_batch(&sync.id, claim(T0 + FLUSH, 25)).await.unwrap();
    let counts = conserved(&store, &sync.id).await;

    let conn = raw(&harness);
    let rows = |sql: &str| -> u64 { conn.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap() as u64 };
    assert_eq!(counts.pending, rows("SELECT COUNT(*) FROM queue WHERE state = 0"));
    assert_eq!(counts.in_flight, rows("SELECT COUNT(*) FROM queue WHERE state = 1"));
    assert_eq!(counts.errored, rows("SELECT COUNT(*) FROM errors"));
    assert_eq!(counts.errored, rows("SELECT COUNT(*) FROM queue WHERE state = 4"));
    assert_eq!(counts.synced, rows("SELECT COUNT(*) FROM queue WHERE state = 3"));
    assert_eq!(counts.users, rows("SELECT COUNT(*) FROM queue"), "the ledger: one row per user");
    assert_eq!((counts.pending, counts.in_flight, counts.errored, counts.synced), (48, 25, 13, 14));
}

#[tokio::test]
async fn deleting_a_sync_leaves_no_rows_behind() {
    let harness = SqliteHarness::new();
    let store = SqliteStore::open(harness.path(), CredentialKey::generate()).expect("open");
    let (_, _, sync) = setup(&store).await;
    store.enter(&sync.id, entry(users("u", 10), T0)).await.unwrap();
    let batch = store.claim_batch(&sync.id, claim(T0, 5)).await.unwrap();
    let errored = UserResult { key: batch[0].key.clone(), outcome: UserOutcome::Errored("refused".into()) };
    store.complete(&sync.id, vec![errored]).await.unwrap();
    store.delete_sync(&sync.id).await.unwrap();
    while store.purge_deleted(3, None).await.unwrap().more {}
    let conn = raw(&harness);
    for table in ["queue", "errors", "submissions", "counters", "syncs"] {
        let n: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "{table} still has rows");
    }
}

#[tokio::test]
async fn reads_work_without_a_tokio_runtime_too() {
    let harness = SqliteHarness::new();
    let store = SqliteStore::open(harness.path(), CredentialKey::generate()).expect("open");
    let ws = store.create_workspace("Acme").await.unwrap();
    // A plain executor thread: reads then run inline instead of on Tokio's blocking pool.
    let read = std::thread::spawn(move || {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fut = std::pin::pin!(store.workspaces(None, 10));
        loop {
            if let std::task::Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::yield_now();
        }
    })
    .join()
    .unwrap();
    assert_eq!(read.unwrap(), vec![ws]);
}

/// What the ledger costs on disk: bytes per user of a sync, pending, then synced (the rows
/// stay), and how long a look-up of one user takes among them. Run by hand (it writes
/// `LEDGER_USERS` users, 1,000,000 by default):
/// `cargo test --workspace --test store -- --ignored --nocapture ledger_bytes_per_member`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement: run by hand"]
async fn ledger_bytes_per_member() {
    let n: usize = std::env::var("LEDGER_USERS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let harness = SqliteHarness::new();
    let store = SqliteStore::open(harness.path(), CredentialKey::generate()).expect("open");
    let (_, _, sync) = setup(&store).await;
    // A realistic payload: the queue's format v1 with one SHA-256 email, about 110 bytes.
    let payload = |i: usize| {
        format!(r#"{{"v":1,"key":"crm-{i:08}","ids":[["email","{:064x}"]]}}"#, i as u128 * 0x9e37_79b9_7f4a_7c15)
            .into_bytes()
    };
    for start in (0..n).step_by(10_000) {
        let ready = (start..(start + 10_000).min(n))
            .map(|i| audience_store::ReadyUser { key: format!("crm-{i:08}"), payload: payload(i) })
            .collect();
        let entry =
            audience_store::Entry { ready, not_synced: Vec::new(), now_ms: T0, flush_ms: 0, skip_synced: false };
        store.enter(&sync.id, entry).await.unwrap();
    }
    let size = |label: &str| {
        let conn = raw(&harness);
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        let bytes = std::fs::metadata(harness.path()).unwrap().len();
        eprintln!("{label}: {bytes} bytes, {:.1} bytes per user", bytes as f64 / n as f64);
    };
    size("pending");
    let mut done = 0;
    while done < n {
        let batch = store.claim_batch(&sync.id, claim(T0 + 1, 5_000)).await.unwrap();
        done += batch.len();
        let results = batch.into_iter().map(|u| UserResult { key: u.key, outcome: UserOutcome::Synced }).collect();
        store.complete(&sync.id, results).await.unwrap();
    }
    let counts = conserved(&store, &sync.id).await;
    assert_eq!((counts.synced, counts.users), (n as u64, n as u64));
    size("synced");
    let started = std::time::Instant::now();
    for i in 0..1_000 {
        let key = format!("crm-{:08}", (i * 7_919) % n);
        assert_eq!(store.member(&sync.id, &key).await.unwrap().member.key, key);
    }
    eprintln!("look-up of one user among {n}: {:?} on average", started.elapsed() / 1_000);
}
