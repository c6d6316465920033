//! What `/metrics` and the listings cost the SQLite store with many tenants.
//!
//! ```text
//! cargo bench --workspace --bench tenants
//! ```
//!
//! Creates `TENANTS` workspaces (default 10,000), each with one connection and one sync holding
//! a few pending users, then times (median of 20) what a scrape reads — the sums per workspace
//! and destination (`group_figures`, the default) against every sync's figures
//! (`sync_figures`, the opt-in per-sync detail) — and what a page of a listing reads: 100 syncs
//! of a workspace that has 10,000 (`syncs` with a cursor, and their `counts_of`).
//! `TENANTS_DB=path` keeps the database there (for a look with `sqlite3`).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a bench: a step that fails is a failed run")]

use std::future::Future;
use std::time::{Duration, Instant};

use audience_store::suite::{FLUSH, T0, new_connection, new_sync, users};
use audience_store::{CredentialKey, Entry, GroupBy, SqliteStore, Store};

async fn median<T, F, Fut>(mut f: F) -> (Duration, T)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..20 {
        let t = Instant::now();
        last = Some(f().await);
        times.push(t.elapsed());
    }
    times.sort();
    (times[times.len() / 2], last.expect("ran"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let tenants: usize = std::env::var("TENANTS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    runtime.block_on(async {
        let path =
            std::env::var("TENANTS_DB").map(std::path::PathBuf::from).unwrap_or_else(|_| dir.path().join("tenants.db"));
        let store = SqliteStore::open(path, CredentialKey::generate()).expect("open");
        let started = Instant::now();
        for i in 0..tenants {
            let ws = store.create_workspace(&format!("tenant {i}")).await.expect("workspace");
            let conn = store.create_connection(new_connection(&ws.id, b"t")).await.expect("connection");
            let sync = store.create_sync(new_sync(&ws.id, &conn.id)).await.expect("sync");
            let entry =
                Entry { ready: users("u", 3), not_synced: Vec::new(), now_ms: T0, flush_ms: FLUSH, skip_synced: false };
            store.enter(&sync.id, entry).await.expect("enter");
        }
        // One big workspace for the listing.
        let big = store.create_workspace("big").await.expect("workspace");
        let conn = store.create_connection(new_connection(&big.id, b"t")).await.expect("connection");
        for _ in 0..tenants {
            store.create_sync(new_sync(&big.id, &conn.id)).await.expect("sync");
        }
        println!(
            "{tenants} tenants with a sync each, and a workspace of {tenants} syncs, made in {:.0} s",
            started.elapsed().as_secs_f64()
        );

        let (t, groups) = median(|| store.group_figures(GroupBy::Destination)).await;
        println!(
            "group_figures per destination (the default scrape): {:.1} ms, {} groups",
            ms(t),
            groups.expect("figures").len()
        );
        let (t, groups) = median(|| store.group_figures(GroupBy::Workspace)).await;
        println!(
            "group_figures per workspace (detail = \"workspace\"): {:.1} ms, {} groups",
            ms(t),
            groups.expect("figures").len()
        );
        let (t, syncs) = median(|| store.sync_figures()).await;
        println!("sync_figures (detail = \"sync\"): {:.1} ms, {} syncs", ms(t), syncs.expect("figures").len());

        let first = store.syncs(&big.id, None, 101).await.expect("page");
        let after = first[99].id.clone();
        let (t, page) = median(|| store.syncs(&big.id, Some(&after), 101)).await;
        let ids: Vec<String> = page.expect("page").iter().take(100).map(|s| s.id.clone()).collect();
        println!("a page of 100 syncs after a cursor, of {tenants}: {:.2} ms", ms(t));
        let (t, counts) = median(|| store.counts_of(&ids)).await;
        println!("their counts (counts_of): {:.2} ms for {}", ms(t), counts.expect("counts").len());
    });
}
