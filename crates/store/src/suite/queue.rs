//! Behaviours of the user queue: enter, claim, complete, recover, and the counters.

use std::collections::BTreeSet;

use super::{FLUSH, T0, another_sync, claim, conserved, entry, keys, setup, user, users};
use crate::{Claim, Entry, Store, StoreError, UserOutcome, UserResult};

fn result(key: &str, outcome: UserOutcome) -> UserResult {
    UserResult { key: key.to_owned(), outcome }
}

fn set(keys: &[String]) -> BTreeSet<String> {
    keys.iter().cloned().collect()
}

/// Ready users are queued as pending; not-synced users are counted, not queued.
pub async fn enter_queues_ready_users_and_counts_not_synced(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    let outcome = store
        .enter(
            &sync.id,
            Entry {
                ready: users("u", 3),
                not_synced: vec![("x1".into(), "no email".into()), ("x2".into(), "no email".into())],
                now_ms: T0,
                flush_ms: FLUSH,
                skip_synced: false,
            },
        )
        .await
        .expect("enter");
    assert_eq!((outcome.queued, outcome.deduplicated, outcome.not_synced), (3, 0, 2));
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.entered, counts.proceeded, counts.not_synced, counts.pending), (5, 5, 2, 3));
    assert_eq!((counts.in_flight, counts.synced, counts.errored), (0, 0, 0));
    let claimed = store.claim_batch(&sync.id, claim(T0 + FLUSH, 10)).await.expect("claim");
    assert_eq!(set(&keys(&claimed)), set(&["u0".into(), "u1".into(), "u2".into()]));
    let u1 = claimed.iter().find(|u| u.key == "u1").expect("u1 claimed");
    assert_eq!(u1.payload, user("u1").payload);
    assert_eq!((u1.entered_at, u1.attempts), (T0, 0));
}

/// A key already pending or in flight in the sync is not queued again, even twice in one
/// entry; it counts as deduplicated and proceeded, not entered.
pub async fn enter_deduplicates_users_pending_or_in_flight(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 5), T0)).await.expect("enter");
    let claimed = store.claim_batch(&sync.id, claim(T0, 2)).await.expect("claim");
    assert_eq!(claimed.len(), 2);
    let mut again = users("u", 6);
    again.push(user("u5"));
    let outcome = store.enter(&sync.id, entry(again, T0 + 1)).await.expect("enter");
    assert_eq!((outcome.queued, outcome.deduplicated), (1, 6));
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.entered, counts.proceeded, counts.deduplicated), (6, 12, 6));
    assert_eq!((counts.pending, counts.in_flight), (4, 2));
}

/// Once a user has left the queue (synced or errored), entering again queues it anew.
pub async fn a_synced_or_errored_user_can_enter_again(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 2), T0)).await.expect("enter");
    let claimed = store.claim_batch(&sync.id, claim(T0 + FLUSH, 10)).await.expect("claim");
    assert_eq!(claimed.len(), 2);
    store
        .complete(
            &sync.id,
            vec![result("u0", UserOutcome::Synced), result("u1", UserOutcome::Errored("invalid email".into()))],
        )
        .await
        .expect("complete");
    let outcome = store.enter(&sync.id, entry(users("u", 2), T0 + 10)).await.expect("enter");
    assert_eq!((outcome.queued, outcome.deduplicated), (2, 0));
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.entered, counts.pending, counts.synced, counts.errored), (4, 2, 1, 1));
}

/// Fewer users than a batch are claimed only once the first is due (`now + flush`).
pub async fn a_partial_batch_waits_for_its_flush_time(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 3), T0)).await.expect("enter");
    for now in [T0, T0 + FLUSH - 1] {
        let claimed = store.claim_batch(&sync.id, claim(now, 10)).await.expect("claim");
        assert!(claimed.is_empty(), "claimed {:?} at {now}", keys(&claimed));
    }
    assert_eq!(conserved(store, &sync.id).await.pending, 3);
    let claimed = store.claim_batch(&sync.id, claim(T0 + FLUSH, 10)).await.expect("claim");
    assert_eq!(claimed.len(), 3);
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.in_flight), (0, 3));
}

/// As soon as `max` users are available they are claimed, due or not; the rest wait.
pub async fn a_full_batch_is_claimed_at_once(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 25), T0)).await.expect("enter");
    for _ in 0..2 {
        let claimed = store.claim_batch(&sync.id, claim(T0, 10)).await.expect("claim");
        assert_eq!(claimed.len(), 10);
    }
    let claimed = store.claim_batch(&sync.id, claim(T0, 10)).await.expect("claim");
    assert!(claimed.is_empty(), "a partial batch of 5 was claimed before its flush time");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.in_flight), (5, 20));
    let claimed = store.claim_batch(&sync.id, claim(T0 + FLUSH, 10)).await.expect("claim");
    assert_eq!(claimed.len(), 5);
}

/// Claims return at most `max` users, earliest due first; once the first is due, the batch
/// is filled with users not yet due.
pub async fn claims_never_exceed_max_and_follow_due_order(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    for (i, prefix) in ["a", "b", "c"].iter().enumerate() {
        let at = T0 + 1_000 * i as i64;
        store.enter(&sync.id, entry(users(prefix, 3), at)).await.expect("enter");
    }
    let now = T0 + FLUSH; // only the "a" users are due
    let first = keys(&store.claim_batch(&sync.id, claim(now, 4)).await.expect("claim"));
    assert_eq!(first.len(), 4);
    assert_eq!(set(&first[..3]), set(&["a0".into(), "a1".into(), "a2".into()]));
    assert!(first[3].starts_with('b'), "{first:?}");
    let none = keys(&store.claim_batch(&sync.id, claim(now, 6)).await.expect("claim"));
    assert!(none.is_empty(), "5 available, none due, max 6: {none:?}");
    let later = T0 + FLUSH + 1_000;
    let second = keys(&store.claim_batch(&sync.id, claim(later, 4)).await.expect("claim"));
    assert_eq!(second.len(), 4);
    assert!(second[..2].iter().all(|k| k.starts_with('b')), "{second:?}");
    assert!(second[2..].iter().all(|k| k.starts_with('c')), "{second:?}");
    let third = store.claim_batch(&sync.id, claim(later, 4)).await.expect("claim");
    assert!(third.is_empty(), "c2 alone is not due yet");
    let third = store.claim_batch(&sync.id, claim(later + 1_000, 4)).await.expect("claim");
    assert_eq!(keys(&third), vec!["c2".to_string()]);
    assert!(store.claim_batch(&sync.id, claim(later, 0)).await.expect("claim").is_empty());
    assert_eq!(conserved(store, &sync.id).await.in_flight, 9);
}

/// Synced and errored users leave the queue; retried ones return to pending with one more
/// attempt. Each moves its counters.
pub async fn complete_moves_users_to_synced_errored_or_retry(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 3), T0)).await.expect("enter");
    store.claim_batch(&sync.id, claim(T0 + FLUSH, 3)).await.expect("claim");
    let retry_at = T0 + FLUSH + 60_000;
    store
        .complete(
            &sync.id,
            vec![
                result("u0", UserOutcome::Synced),
                result("u1", UserOutcome::Errored("invalid email".into())),
                result("u2", UserOutcome::Retry { not_before_ms: retry_at, error: "503 from partner".into() }),
            ],
        )
        .await
        .expect("complete");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.synced, counts.errored, counts.pending, counts.in_flight, counts.retries), (1, 1, 1, 0, 1));
    let errors = store.recent_errors(&sync.id, 10).await.expect("errors");
    assert_eq!(errors.len(), 1);
    assert_eq!((errors[0].key.as_str(), errors[0].reason.as_str()), ("u1", "invalid email"));
    let again = store.claim_batch(&sync.id, claim(retry_at, 10)).await.expect("claim");
    assert_eq!(keys(&again), vec!["u2".to_string()]);
    assert_eq!((again[0].attempts, again[0].entered_at), (1, T0));
}

/// A retried user is not claimed before its `not_before`, even to fill a batch, and its
/// retry time is its new due time.
pub async fn a_retried_user_waits_until_not_before(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(vec![user("r")], T0)).await.expect("enter");
    store.claim_batch(&sync.id, claim(T0 + FLUSH, 1)).await.expect("claim");
    let not_before = T0 + 120_000;
    store
        .complete(
            &sync.id,
            vec![result("r", UserOutcome::Retry { not_before_ms: not_before, error: "timeout".into() })],
        )
        .await
        .expect("complete");
    assert_eq!(store.next_due(std::slice::from_ref(&sync.id)).await.expect("next_due"), Some(not_before));
    let early = store.claim_batch(&sync.id, claim(not_before - 1, 10)).await.expect("claim");
    assert!(early.is_empty(), "claimed {:?} before not_before", keys(&early));
    let now = T0 + 60_000;
    store.enter(&sync.id, entry(users("w", 2), now)).await.expect("enter");
    let full = store.claim_batch(&sync.id, claim(now, 2)).await.expect("claim");
    assert_eq!(set(&keys(&full)), set(&["w0".into(), "w1".into()]));
    let due = store.claim_batch(&sync.id, claim(not_before, 10)).await.expect("claim");
    assert_eq!(keys(&due), vec!["r".to_string()]);
    assert_eq!(due[0].attempts, 1);
}

/// Pending users that entered before `expire_before_ms` become errored with the reason
/// before anything is claimed; in-flight users are left alone.
pub async fn claim_expires_users_past_the_retry_window(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("old", 3), T0)).await.expect("enter");
    let flying = store.claim_batch(&sync.id, claim(T0 + FLUSH, 1)).await.expect("claim");
    assert_eq!(flying.len(), 1);
    store.enter(&sync.id, entry(vec![user("new")], T0 + 10_000)).await.expect("enter");
    let now = T0 + 20_000;
    let claimed = store
        .claim_batch(
            &sync.id,
            Claim {
                now_ms: now,
                max: 10,
                expire_before_ms: T0 + 1,
                expired_reason: "not delivered within the 13 h retry window".into(),
                lane_owner: None,
            },
        )
        .await
        .expect("claim");
    assert_eq!(keys(&claimed), vec!["new".to_string()]);
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.errored, counts.in_flight, counts.pending), (2, 2, 0));
    let errors = store.recent_errors(&sync.id, 10).await.expect("errors");
    assert_eq!(errors.len(), 2);
    for e in &errors {
        assert!(e.key.starts_with("old") && e.key != flying[0].key, "{e:?}");
        assert_eq!(e.reason, "not delivered within the 13 h retry window");
        assert_eq!(e.at, now);
    }
}

/// After a restart, in-flight users of every sync are pending again and due now.
pub async fn recover_in_flight_returns_users_to_pending(store: &dyn Store) {
    let (ws, conn, sync) = setup(store).await;
    let other = another_sync(store, &ws, &conn).await;
    assert_eq!(store.recover_in_flight(T0).await.expect("recover"), 0);
    store.enter(&sync.id, entry(users("u", 5), T0)).await.expect("enter");
    store.enter(&other.id, entry(users("v", 2), T0)).await.expect("enter");
    let flying = keys(&store.claim_batch(&sync.id, claim(T0, 3)).await.expect("claim"));
    store.claim_batch(&other.id, claim(T0, 2)).await.expect("claim");
    let now = T0 + 1_000;
    assert_eq!(store.recover_in_flight(now).await.expect("recover"), 5);
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.in_flight), (5, 0));
    assert_eq!(conserved(store, &other.id).await.pending, 2);
    assert_eq!(store.next_due(std::slice::from_ref(&sync.id)).await.expect("next_due"), Some(now));
    let claimed = keys(&store.claim_batch(&sync.id, claim(now, 3)).await.expect("claim"));
    assert_eq!(set(&claimed), set(&flying), "recovered users are due first");
    let again = store.claim_batch(&sync.id, claim(now, 3)).await.expect("claim");
    assert!(again.is_empty(), "the others are not due yet");
}

/// `next_due` is the earliest due time among the pending users of the given syncs.
pub async fn next_due_is_the_earliest_due_of_the_given_syncs(store: &dyn Store) {
    let (ws, conn, a) = setup(store).await;
    let b = another_sync(store, &ws, &conn).await;
    let both = vec![a.id.clone(), b.id.clone()];
    assert_eq!(store.next_due(&both).await.expect("next_due"), None);
    assert_eq!(store.next_due(&[]).await.expect("next_due"), None);
    store.enter(&a.id, entry(users("u", 2), T0)).await.expect("enter");
    store.enter(&b.id, entry(users("v", 2), T0 - 1_000)).await.expect("enter");
    assert_eq!(store.next_due(std::slice::from_ref(&a.id)).await.expect("next_due"), Some(T0 + FLUSH));
    assert_eq!(store.next_due(&both).await.expect("next_due"), Some(T0 + FLUSH - 1_000));
    store.claim_batch(&b.id, claim(T0 + FLUSH, 10)).await.expect("claim");
    assert_eq!(store.next_due(&both).await.expect("next_due"), Some(T0 + FLUSH), "in-flight users are not due");
}

/// `oldest_pending` is the entry time of the oldest pending or in-flight user.
pub async fn oldest_pending_covers_pending_and_in_flight(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    assert_eq!(store.oldest_pending(&sync.id).await.expect("oldest"), None);
    store.enter(&sync.id, entry(vec![user("a")], T0)).await.expect("enter");
    store.enter(&sync.id, entry(vec![user("b")], T0 + 100)).await.expect("enter");
    let claimed = store.claim_batch(&sync.id, claim(T0 + FLUSH, 1)).await.expect("claim");
    assert_eq!(keys(&claimed), vec!["a".to_string()]);
    assert_eq!(store.oldest_pending(&sync.id).await.expect("oldest"), Some(T0));
    store.complete(&sync.id, vec![result("a", UserOutcome::Synced)]).await.expect("complete");
    assert_eq!(store.oldest_pending(&sync.id).await.expect("oldest"), Some(T0 + 100));
}

/// `recent_errors` lists the newest first, at most `limit`, with long reasons cut short.
pub async fn recent_errors_are_newest_first_limited_and_truncated(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("e", 3), T0)).await.expect("enter");
    store.claim_batch(&sync.id, claim(T0 + FLUSH, 3)).await.expect("claim");
    let long = "x".repeat(10_000);
    for (key, reason) in [("e0", "first"), ("e1", "second"), ("e2", long.as_str())] {
        store.complete(&sync.id, vec![result(key, UserOutcome::Errored(reason.into()))]).await.expect("complete");
    }
    let errors = store.recent_errors(&sync.id, 2).await.expect("errors");
    assert_eq!(errors.len(), 2);
    assert_eq!((errors[0].key.as_str(), errors[1].key.as_str()), ("e2", "e1"));
    assert!(errors[0].reason.len() < 1_000 && errors[0].reason.len() >= 100);
    assert!(errors[0].at > 0);
    assert!(store.recent_errors(&sync.id, 0).await.expect("errors").is_empty());
    assert_eq!(store.recent_errors(&sync.id, 10).await.expect("errors").len(), 3);
}

/// Outcomes for users that are not in flight (duplicates, pending, unknown) change nothing.
pub async fn outcomes_for_users_not_in_flight_are_ignored(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 2), T0)).await.expect("enter");
    let claimed = store.claim_batch(&sync.id, claim(T0, 1)).await.expect("claim");
    let flying = claimed[0].key.clone();
    let waiting = if flying == "u0" { "u1" } else { "u0" };
    store
        .complete(
            &sync.id,
            vec![
                result(&flying, UserOutcome::Synced),
                result(&flying, UserOutcome::Errored("twice".into())),
                result(waiting, UserOutcome::Synced),
                result("nobody", UserOutcome::Synced),
            ],
        )
        .await
        .expect("complete");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.synced, counts.errored, counts.pending, counts.in_flight), (1, 0, 1, 0));
}

/// The same key in two syncs is two users; claims and counters stay per sync.
pub async fn queues_of_syncs_are_separate(store: &dyn Store) {
    let (ws, conn, a) = setup(store).await;
    let b = another_sync(store, &ws, &conn).await;
    for s in [&a, &b] {
        let outcome = store.enter(&s.id, entry(users("u", 3), T0)).await.expect("enter");
        assert_eq!(outcome.queued, 3);
    }
    let claimed = store.claim_batch(&a.id, claim(T0 + FLUSH, 10)).await.expect("claim");
    assert_eq!(claimed.len(), 3);
    assert_eq!(conserved(store, &b.id).await.pending, 3);
    assert_eq!(conserved(store, &a.id).await.in_flight, 3);
}

/// Concurrent intake calls are each committed and counted exactly once.
pub async fn concurrent_enters_are_all_counted(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    let call = |i: usize| {
        let mut ready = users(&format!("c{i}-"), 100);
        ready.push(user("shared"));
        store.enter(&sync.id, entry(ready, T0))
    };
    let (r0, r1, r2, r3, r4, r5, r6, r7) =
        tokio::join!(call(0), call(1), call(2), call(3), call(4), call(5), call(6), call(7));
    let mut queued = 0;
    for r in [r0, r1, r2, r3, r4, r5, r6, r7] {
        queued += r.expect("enter").queued;
    }
    assert_eq!(queued, 801);
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.deduplicated, counts.proceeded), (801, 7, 808));
}

/// A write that fails does not fail other writes committed with it.
pub async fn a_failed_write_does_not_fail_concurrent_writes(store: &dyn Store) {
    let (ws, _, sync) = setup(store).await;
    let (good, missing, bad_sync, good_too) = tokio::join!(
        store.enter(&sync.id, entry(users("a", 10), T0)),
        store.enter("sync_missing", entry(users("b", 10), T0)),
        store.create_sync(super::new_sync(&ws.id, "conn_missing")),
        store.enter(&sync.id, entry(users("c", 10), T0)),
    );
    assert_eq!(good.expect("enter").queued, 10);
    assert!(matches!(missing, Err(StoreError::NotFound { kind: "sync", .. })));
    assert!(matches!(bad_sync, Err(StoreError::NotFound { kind: "connection", .. })));
    assert_eq!(good_too.expect("enter").queued, 10);
    assert_eq!(conserved(store, &sync.id).await.pending, 20);
}

/// `sync_figures` reads every sync's counters and oldest pending entry in one call, the same
/// as `counts` and `oldest_pending` one sync at a time; `connection_health` lists every
/// connection.
pub async fn figures_of_every_sync_match_the_per_sync_reads(store: &dyn Store) {
    let (ws, conn, sync) = setup(store).await;
    let other = another_sync(store, &ws, &conn).await;
    let idle = another_sync(store, &ws, &conn).await;
    store.enter(&sync.id, entry(users("u", 4), T0)).await.expect("enter");
    store.enter(&other.id, entry(users("v", 2), T0 + 7)).await.expect("enter");
    store.claim_batch(&sync.id, claim(T0 + FLUSH, 1)).await.expect("claim");
    let figures = store.sync_figures().await.expect("figures");
    let ids: Vec<&str> = figures.iter().map(|f| f.sync.id.as_str()).collect();
    assert_eq!(ids, [sync.id.as_str(), other.id.as_str(), idle.id.as_str()]);
    for figure in &figures {
        assert_eq!(figure.counts, store.counts(&figure.sync.id).await.expect("counts"));
        assert_eq!(figure.oldest_pending_at, store.oldest_pending(&figure.sync.id).await.expect("oldest"));
    }
    assert_eq!(figures[0].oldest_pending_at, Some(T0));
    assert_eq!(figures[1].oldest_pending_at, Some(T0 + 7));
    assert_eq!(figures[2].oldest_pending_at, None);
    let health = store.connection_health().await.expect("health");
    assert_eq!(health.len(), 1);
    assert_eq!((health[0].connection_id.as_str(), health[0].health), (conn.id.as_str(), crate::Health::Ok));
}
