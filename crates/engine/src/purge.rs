//! Removing deleted syncs' rows in the background, a chunk at a time.
//!
//! Why: deleting a sync with millions of queued users in one transaction held the store's
//! single writer for seconds (17 s for 9.7 M users), so every other workspace's intake
//! waited. [`Engine::delete_sync`] now only marks the sync deleted — it is gone from the API
//! and its lane claims nothing from that moment — and this task removes its rows with
//! [`Store::purge_deleted`], a chunk of rows per transaction sized to take about
//! [`PURGE_CHUNK_TARGET`], so other writers get the store between chunks. The mark is durable: the task also runs at start-up (a purge cut
//! short by a crash goes on), and every [`PURGE_SWEEP`] (with several hosts, a deletion made
//! on a host that died meanwhile is finished by another).
//!
//! The same task prunes the ledgers' old history ([`Store::prune_ledger`]): errored users and
//! errors older than `engine.ledger.errored_retention` (30 days), chunked the same way.
//!
//! [`Engine::delete_sync`]: crate::Engine::delete_sync
//! [`Store::prune_ledger`]: audience_store::Store::prune_ledger
//! [`Store::purge_deleted`]: audience_store::Store::purge_deleted

use std::sync::Arc;
use std::time::Duration;

use audience_store::{Store, StoreError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Rows (queued users, errors, submissions) removed by the first store transaction of a purge;
/// the next chunks are sized from how long the previous one took (see [`next_chunk`]). With
/// SQLite on a 2-core machine a chunk of 2,000 queued users takes about 12 ms beside other
/// writes (p99 31 ms; `cargo bench --workspace --bench delete`).
pub const PURGE_CHUNK_ROWS: u32 = 2_000;

/// How long one purge transaction should take, the wait for the store included: well under the
/// ~50 ms other writers (intake, claims) may wait behind it.
pub const PURGE_CHUNK_TARGET: Duration = Duration::from_millis(20);

/// The fewest and most rows a purge chunk holds.
const CHUNK_BOUNDS: (u32, u32) = (200, 20_000);

/// The rows of the next chunk, after one of `rows` took `took`: scaled toward
/// [`PURGE_CHUNK_TARGET`], at most doubling or halving at once, within [`CHUNK_BOUNDS`]. A
/// slow disk, a busy store or large rows shrink the chunks; an idle fast store grows them.
pub(crate) fn next_chunk(rows: u32, took: Duration) -> u32 {
    let rows = f64::from(rows.max(1));
    let scaled = if took.is_zero() { rows * 2.0 } else { rows * PURGE_CHUNK_TARGET.as_secs_f64() / took.as_secs_f64() };
    let (min, max) = CHUNK_BOUNDS;
    scaled.clamp(rows / 2.0, rows * 2.0).clamp(f64::from(min), f64::from(max)) as u32
}

/// How often the task looks for deleted syncs nobody is purging (a host that died mid-purge).
pub const PURGE_SWEEP: Duration = Duration::from_secs(600);

/// How long the task waits after the store failed before trying again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(10);

/// Wakes the purge task.
#[derive(Debug, Default)]
pub(crate) struct Purger {
    wake: Notify,
}

impl Purger {
    /// A sync was deleted: purge now.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// Purges until no deleted sync has rows left, and prunes the ledgers' errored history
    /// older than `errored_retention`, then waits to be woken (or for the next sweep); ends
    /// when `cancel` fires.
    pub(crate) async fn run(&self, store: Arc<dyn Store>, errored_retention: Duration, cancel: CancellationToken) {
        loop {
            let done = match purge_all(store.as_ref(), None, &cancel).await {
                Ok(()) => prune_all(store.as_ref(), errored_retention, &cancel).await,
                Err(err) => Err(err),
            };
            let wait = match done {
                Ok(()) => PURGE_SWEEP,
                Err(err) => {
                    tracing::warn!(error = %err, "purging deleted syncs failed; trying again in 10 s");
                    RETRY_AFTER_FAILURE
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

/// Purges deleted syncs (of `connection_id` only, when given) a chunk per transaction until
/// none has rows left, or `cancel` fires.
pub(crate) async fn purge_all(
    store: &dyn Store,
    connection_id: Option<&str>,
    cancel: &CancellationToken,
) -> Result<(), StoreError> {
    let (mut rows, mut syncs, mut chunk) = (0u64, 0u64, PURGE_CHUNK_ROWS);
    while !cancel.is_cancelled() {
        // The store's own time, not tokio's (which tests pause).
        let started = std::time::Instant::now();
        let purged = store.purge_deleted(chunk, connection_id).await?;
        chunk = next_chunk(chunk, started.elapsed());
        (rows, syncs) = (rows + purged.rows, syncs + purged.syncs);
        if !purged.more {
            break;
        }
        // Let the other tasks (and their writes) in between chunks.
        tokio::task::yield_now().await;
    }
    if rows > 0 || syncs > 0 {
        tracing::info!(rows, syncs, "deleted syncs purged");
    }
    Ok(())
}

/// Prunes the ledgers' errored users and errors older than `retention` (by the system clock) a
/// chunk per transaction, sized as purge chunks are, until none is left or `cancel` fires.
pub(crate) async fn prune_all(
    store: &dyn Store,
    retention: Duration,
    cancel: &CancellationToken,
) -> Result<(), StoreError> {
    let before = audience_model::now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let (mut rows, mut chunk) = (0u64, PURGE_CHUNK_ROWS);
    while !cancel.is_cancelled() {
        let started = std::time::Instant::now();
        let pruned = store.prune_ledger(before, chunk).await?;
        chunk = next_chunk(chunk, started.elapsed());
        rows += pruned.rows;
        if !pruned.more {
            break;
        }
        tokio::task::yield_now().await;
    }
    if rows > 0 {
        tracing::info!(rows, "old errored users and errors pruned");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

    use audience_store::Purged;
    use audience_store::suite::{FLUSH, entry, new_connection, new_sync, users};

    use super::*;
    use crate::clock::Clock;
    use crate::testing::memory_store::MemoryStore;

    /// A store with a deleted sync of `queued` users and a live one of 3, on two connections.
    async fn store_with_a_deleted_sync(queued: usize) -> (Arc<MemoryStore>, String, String) {
        let store = Arc::new(MemoryStore::new(Clock::System));
        let ws = store.create_workspace("Acme").await.unwrap();
        let doomed_conn = store.create_connection(new_connection(&ws.id, b"t")).await.unwrap();
        let kept_conn = store.create_connection(new_connection(&ws.id, b"t")).await.unwrap();
        let doomed = store.create_sync(new_sync(&ws.id, &doomed_conn.id)).await.unwrap();
        let kept = store.create_sync(new_sync(&ws.id, &kept_conn.id)).await.unwrap();
        for at in (0..queued).step_by(2_000) {
            let ready = users(&format!("u{at}-"), 2_000.min(queued - at));
            store.enter(&doomed.id, entry(ready, FLUSH)).await.unwrap();
        }
        store.enter(&kept.id, entry(users("k", 3), FLUSH)).await.unwrap();
        store.delete_sync(&doomed.id).await.unwrap();
        (store, doomed_conn.id, kept.id)
    }

    #[test]
    fn chunks_are_sized_toward_the_target_time_within_bounds() {
        let ms = Duration::from_millis;
        for (rows, took, next) in [
            (2_000, ms(20), 2_000),  // on target
            (2_000, ms(10), 4_000),  // twice as fast: twice as many
            (2_000, ms(5), 4_000),   // four times as fast: at most double
            (2_000, ms(40), 1_000),  // twice as slow: half
            (2_000, ms(400), 1_000), // far too slow: at most halve
            (2_000, ms(25), 1_600),  // a little slow
            (300, ms(100), 200),     // never below the floor
            (15_000, ms(1), 20_000), // never above the ceiling
            (2_000, Duration::ZERO, 4_000),
            (0, ms(20), 200),
        ] {
            assert_eq!(next_chunk(rows, took), next, "{rows} rows in {took:?}");
        }
    }

    #[tokio::test]
    async fn a_deleted_sync_is_purged_in_chunks_until_nothing_is_left() {
        let (store, _, kept) = store_with_a_deleted_sync(12_001).await;
        purge_all(store.as_ref(), None, &CancellationToken::new()).await.unwrap();
        assert_eq!(store.purge_deleted(PURGE_CHUNK_ROWS, None).await.unwrap(), Purged::default(), "all purged");
        assert_eq!(store.counts(&kept).await.unwrap().pending, 3, "the live sync kept its users");
    }

    #[tokio::test]
    async fn purging_a_connection_leaves_the_others_deleted_syncs() {
        let (store, doomed_conn, _) = store_with_a_deleted_sync(10).await;
        let ws = store.create_workspace("Globex").await.unwrap();
        let other = store.create_connection(new_connection(&ws.id, b"t")).await.unwrap();
        let elsewhere = store.create_sync(new_sync(&ws.id, &other.id)).await.unwrap();
        store.enter(&elsewhere.id, entry(users("e", 4), FLUSH)).await.unwrap();
        store.delete_sync(&elsewhere.id).await.unwrap();
        purge_all(store.as_ref(), Some(&doomed_conn), &CancellationToken::new()).await.unwrap();
        assert_eq!(store.purge_deleted(100, Some(&doomed_conn)).await.unwrap(), Purged::default());
        let rest = store.purge_deleted(100, None).await.unwrap();
        assert_eq!((rest.rows, rest.syncs), (4, 1), "the other connection's deleted sync waited");
    }

    #[tokio::test(start_paused = true)]
    async fn the_task_purges_at_start_and_when_woken() {
        let (store, _, kept) = store_with_a_deleted_sync(7_000).await;
        let purger = Arc::new(Purger::default());
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let (purger, store, cancel) = (purger.clone(), store.clone(), cancel.clone());
            async move { purger.run(store, Duration::from_secs(30 * 86_400), cancel).await }
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(!store.purge_deleted(1, None).await.unwrap().more, "purged at start");

        store.delete_sync(&kept).await.unwrap();
        purger.wake();
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(store.purge_deleted(1, None).await.unwrap(), Purged::default(), "purged once woken");
        cancel.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn errored_users_older_than_the_retention_are_pruned_and_members_kept() {
        let (store, _, kept) = store_with_a_deleted_sync(0).await;
        // Entered in 1970: far older than 30 days. One is synced, the others expire.
        let claim = |max| audience_store::Claim {
            now_ms: FLUSH * 2,
            max,
            expire_before_ms: i64::MAX,
            expired_reason: "retry window over".into(),
            lane_owner: None,
        };
        let synced =
            store.claim_batch(&kept, audience_store::Claim { expire_before_ms: i64::MIN, ..claim(1) }).await.unwrap();
        let result =
            audience_store::UserResult { key: synced[0].key.clone(), outcome: audience_store::UserOutcome::Synced };
        store.complete(&kept, vec![result]).await.unwrap();
        assert!(store.claim_batch(&kept, claim(10)).await.unwrap().is_empty());
        assert_eq!(store.counts(&kept).await.unwrap().errored, 2);
        prune_all(store.as_ref(), Duration::from_secs(30 * 86_400), &CancellationToken::new()).await.unwrap();
        let counts = store.counts(&kept).await.unwrap();
        assert_eq!((counts.users, counts.errored, counts.synced), (1, 2, 1), "the member stays, the errored go");
        assert!(store.recent_errors(&kept, 10).await.unwrap().is_empty(), "their errors too");
        assert!(store.member(&kept, &synced[0].key).await.is_ok());
    }
}
