//! Behaviours of the ledger: every user keeps a row with its state after delivery, lookups,
//! listings by state, re-drives and pruning, with the counters conserved throughout.

use std::collections::BTreeSet;

use super::{FLUSH, T0, claim, conserved, entry, keys, setup, user, users};
use crate::{
    Claim, Entry, Member, MemberCursor, MemberState, NewSubmission, Redrive, Store, StoreError, UserOutcome, UserResult,
};

fn result(key: &str, outcome: UserOutcome) -> UserResult {
    UserResult { key: key.to_owned(), outcome }
}

async fn state_of(store: &dyn Store, sync_id: &str, key: &str) -> MemberState {
    store.member(sync_id, key).await.expect("member").member.state
}

/// Every member of a state, `limit` at a time: the keys in listing order.
pub async fn all_members(store: &dyn Store, sync_id: &str, state: MemberState, limit: u32) -> Vec<Member> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store.members(sync_id, state, after, limit).await.expect("members");
        assert!(page.len() <= limit as usize);
        let full = page.len() == limit as usize;
        after = page.last().map(|m| MemberCursor { entered_at: m.entered_at, seq: m.seq });
        all.extend(page);
        if !full {
            return all;
        }
    }
}

/// Synced, errored and not-synced users keep a row with their state, attempts, times and
/// last error; the payload kept is the one sent; `users` counts the distinct users.
pub async fn the_ledger_keeps_every_user_with_its_state(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    let now = T0 + FLUSH;
    store
        .enter(
            &sync.id,
            Entry {
                ready: users("u", 5),
                not_synced: vec![("x".into(), "no usable email".into())],
                now_ms: T0,
                flush_ms: FLUSH,
                skip_synced: false,
            },
        )
        .await
        .expect("enter");
    let claimed = store.claim_batch(&sync.id, claim(now, 4)).await.expect("claim");
    assert_eq!(claimed.len(), 4);
    store
        .complete(
            &sync.id,
            vec![
                result("u0", UserOutcome::Synced),
                result("u1", UserOutcome::Errored("invalid email".into())),
                result("u2", UserOutcome::Retry { not_before_ms: now + 60_000, error: "HTTP 503".into() }),
            ],
        )
        .await
        .expect("complete");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.users, counts.entered, counts.synced, counts.errored), (6, 6, 1, 1));
    assert_eq!((counts.pending, counts.in_flight, counts.not_synced), (2, 1, 1));

    let u0 = store.member(&sync.id, "u0").await.expect("u0");
    assert_eq!(u0.member.state, MemberState::Synced);
    assert_eq!((u0.member.attempts, u0.member.entries), (1, 1));
    assert_eq!((u0.member.first_entered_at, u0.member.entered_at, u0.member.last_attempt_at), (T0, T0, Some(now)));
    assert!(u0.member.done_at.is_some());
    assert_eq!(u0.payload, user("u0").payload, "what was sent is kept");
    assert!(u0.errors.is_empty());

    let u1 = store.member(&sync.id, "u1").await.expect("u1");
    assert_eq!((u1.member.state, u1.member.attempts), (MemberState::Errored, 1));
    assert_eq!(u1.member.last_error.as_deref(), Some("invalid email"));
    assert_eq!(u1.errors.len(), 1);
    assert_eq!((u1.errors[0].key.as_str(), u1.errors[0].reason.as_str()), ("u1", "invalid email"));

    let u2 = store.member(&sync.id, "u2").await.expect("u2");
    assert_eq!((u2.member.state, u2.member.attempts), (MemberState::Pending, 1));
    assert_eq!(u2.member.last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(state_of(store, &sync.id, "u3").await, MemberState::InFlight);
    let u4 = store.member(&sync.id, "u4").await.expect("u4");
    assert_eq!((u4.member.state, u4.member.attempts, u4.member.last_attempt_at), (MemberState::Pending, 0, None));

    let x = store.member(&sync.id, "x").await.expect("x");
    assert_eq!(x.member.state, MemberState::NotSynced);
    assert_eq!(x.member.last_error.as_deref(), Some("no usable email"));
    assert!(x.payload.is_empty(), "nothing is kept for a user never sent");

    match store.member(&sync.id, "nobody").await {
        Err(StoreError::NotFound { kind: "user", .. }) => {}
        other => panic!("an unknown key is not found: {other:?}"),
    }
    assert!(matches!(store.member("sync_nope", "u0").await, Err(StoreError::NotFound { kind: "sync", .. })));

    // A submitted user keeps the partner's request id once synced.
    store
        .submit(
            &sync.id,
            NewSubmission { id: "req-1".into(), keys: vec!["u3".into()], attempt: 1, now_ms: now, check_at_ms: now },
        )
        .await
        .expect("submit");
    assert_eq!(state_of(store, &sync.id, "u3").await, MemberState::Submitted);
    store.settle_submission(&sync.id, "req-1", vec![result("u3", UserOutcome::Synced)]).await.expect("settle");
    let u3 = store.member(&sync.id, "u3").await.expect("u3");
    assert_eq!((u3.member.state, u3.member.submission.as_deref()), (MemberState::Synced, Some("req-1")));
    assert_eq!(conserved(store, &sync.id).await.synced, 2);
}

/// A user synced, errored or not synced who enters again is queued again, as one user with
/// one more entry (first entry kept); a re-entry while still being delivered is deduplicated;
/// a not-synced re-entry leaves a known user's row alone.
pub async fn a_reentry_is_a_new_entry_of_the_same_user(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store
        .enter(
            &sync.id,
            Entry {
                ready: users("u", 2),
                not_synced: vec![("x".into(), "no usable email".into())],
                now_ms: T0,
                flush_ms: FLUSH,
                skip_synced: false,
            },
        )
        .await
        .expect("enter");
    store.claim_batch(&sync.id, claim(T0 + FLUSH, 10)).await.expect("claim");
    store
        .complete(&sync.id, vec![result("u0", UserOutcome::Synced), result("u1", UserOutcome::Errored("no".into()))])
        .await
        .expect("complete");
    let later = T0 + 100_000;
    let mut again =
        vec![crate::ReadyUser { key: "u0".into(), payload: b"new payload".to_vec() }, user("u1"), user("x")];
    again.push(user("u0"));
    let outcome = store
        .enter(
            &sync.id,
            Entry {
                ready: again,
                not_synced: vec![("u9".into(), "no email".into())],
                now_ms: later,
                flush_ms: FLUSH,
                skip_synced: false,
            },
        )
        .await
        .expect("enter");
    assert_eq!((outcome.queued, outcome.deduplicated, outcome.not_synced), (3, 1, 1));
    let u0 = store.member(&sync.id, "u0").await.expect("u0");
    assert_eq!(u0.member.state, MemberState::Pending);
    assert_eq!((u0.member.first_entered_at, u0.member.entered_at, u0.member.entries), (T0, later, 2));
    assert_eq!((u0.member.attempts, u0.member.done_at, u0.member.last_attempt_at), (0, None, None));
    assert_eq!(u0.payload, b"new payload", "the new entry's payload is the one sent next");
    assert_eq!(state_of(store, &sync.id, "x").await, MemberState::Pending, "not synced, then usable");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.users, counts.entered, counts.proceeded), (4, 7, 8));
    assert_eq!((counts.pending, counts.synced, counts.errored, counts.not_synced), (3, 1, 1, 2));

    // Synced again, then a not-synced re-entry: the user stays synced.
    let claimed = store.claim_batch(&sync.id, claim(later + FLUSH, 10)).await.expect("claim");
    assert_eq!(claimed.len(), 3);
    assert_eq!(claimed.iter().find(|u| u.key == "u0").expect("u0").payload, b"new payload");
    store.complete(&sync.id, vec![result("u0", UserOutcome::Synced)]).await.expect("complete");
    let outcome = store
        .enter(
            &sync.id,
            Entry {
                ready: vec![],
                not_synced: vec![("u0".into(), "no email".into())],
                now_ms: later,
                flush_ms: FLUSH,
                skip_synced: false,
            },
        )
        .await
        .expect("enter");
    assert_eq!(outcome.not_synced, 1);
    assert_eq!(state_of(store, &sync.id, "u0").await, MemberState::Synced);
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.users, counts.not_synced, counts.synced), (4, 3, 2));
}

/// Listings by state page through every user of that state once, in entry order, and only
/// that sync's; claims, `next_due`, `oldest_pending` and recovery ignore users done with.
pub async fn members_are_listed_by_state_and_claims_see_only_pending_users(store: &dyn Store) {
    let (ws, conn, sync) = setup(store).await;
    let other = super::another_sync(store, &ws, &conn).await;
    store.enter(&other.id, entry(users("o", 3), T0)).await.expect("enter");
    for i in 0..3 {
        store.enter(&sync.id, entry(users(&format!("b{i}-"), 10), T0 + i)).await.expect("enter");
    }
    let claimed = store.claim_batch(&sync.id, claim(T0 + FLUSH, 20)).await.expect("claim");
    assert_eq!(claimed.len(), 20);
    let results: Vec<UserResult> = claimed.iter().map(|u| result(&u.key, UserOutcome::Synced)).collect();
    store.complete(&sync.id, results).await.expect("complete");
    let synced_keys: BTreeSet<String> = keys(&claimed).into_iter().collect();
    for limit in [1, 3, 7, 100] {
        let synced = all_members(store, &sync.id, MemberState::Synced, limit).await;
        assert_eq!(synced.iter().map(|m| m.key.clone()).collect::<BTreeSet<_>>(), synced_keys, "limit {limit}");
        assert_eq!(synced.len(), 20, "each once");
        assert!(synced.windows(2).all(|w| (w[0].entered_at, w[0].seq) < (w[1].entered_at, w[1].seq)));
        let pending = all_members(store, &sync.id, MemberState::Pending, limit).await;
        assert_eq!(pending.len(), 10);
        assert!(pending.iter().all(|m| m.state == MemberState::Pending && m.key.starts_with("b2-")));
    }
    assert!(store.members(&sync.id, MemberState::Errored, None, 10).await.expect("members").is_empty());
    assert!(matches!(
        store.members("sync_nope", MemberState::Pending, None, 10).await,
        Err(StoreError::NotFound { kind: "sync", .. })
    ));
    // The backlog is what the claims see; done users are not in it.
    assert_eq!(store.oldest_pending(&sync.id).await.expect("oldest"), Some(T0 + 2));
    assert_eq!(store.next_due(std::slice::from_ref(&sync.id)).await.expect("next due"), Some(T0 + 2 + FLUSH));
    let flying = store.claim_batch(&sync.id, claim(T0 + 2 + FLUSH, 100)).await.expect("claim");
    assert_eq!(flying.len(), 10);
    assert!(flying.iter().all(|u| u.key.starts_with("b2-")));
    assert_eq!(store.recover_in_flight(T0 + 50_000).await.expect("recover"), 10, "only in-flight users recover");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.synced, counts.users), (10, 20, 30));
    assert_eq!(state_of(store, &sync.id, "b0-0").await, MemberState::Synced, "recovery leaves synced users alone");
}

/// Re-driving errored users (in chunks) or listed keys makes them pending again with a fresh
/// retry window: the next claim sends them instead of expiring them again; each counts as a
/// new entry, so the counters only grow and stay conserved.
pub async fn redriven_users_are_sent_again_with_a_fresh_window(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store
        .enter(
            &sync.id,
            Entry {
                ready: users("u", 6),
                not_synced: vec![("x".into(), "no email".into())],
                now_ms: T0,
                flush_ms: FLUSH,
                skip_synced: false,
            },
        )
        .await
        .expect("enter");
    let claimed = store.claim_batch(&sync.id, claim(T0 + FLUSH, 2)).await.expect("claim");
    let (first, second) = (claimed[0].key.clone(), claimed[1].key.clone());
    store
        .complete(&sync.id, vec![result(&first, UserOutcome::Synced), result(&second, UserOutcome::Synced)])
        .await
        .expect("complete");
    // The four others expire: the 13 h window is over.
    let late = T0 + 13 * 3_600_000;
    let expiry = |now: i64| Claim {
        now_ms: now,
        max: 10,
        expire_before_ms: now - 13 * 3_600_000 + 1,
        expired_reason: "retry window over".into(),
        lane_owner: None,
    };
    assert!(store.claim_batch(&sync.id, expiry(late)).await.expect("claim").is_empty());
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.errored, counts.synced, counts.entered), (4, 2, 7));

    let redriven = store.redrive(&sync.id, Redrive::Errored, late, 3).await.expect("redrive");
    assert_eq!((redriven.users, redriven.more), (3, true));
    let redriven = store.redrive(&sync.id, Redrive::Errored, late, 3).await.expect("redrive");
    assert_eq!((redriven.users, redriven.more), (1, false));
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.errored, counts.entered, counts.users), (4, 4, 11, 7));
    let one = store.members(&sync.id, MemberState::Pending, None, 1).await.expect("members").remove(0);
    assert_eq!((one.entered_at, one.attempts, one.entries), (late, 0, 2));
    // Due at once, and not expired again by the same window.
    let sent = store.claim_batch(&sync.id, expiry(late)).await.expect("claim");
    assert_eq!(sent.len(), 4, "re-driven users are sent, not expired");
    assert!(sent.iter().all(|u| u.entered_at == late && u.attempts == 0));

    // By keys: synced users are sent again; users being delivered, not synced or unknown are
    // skipped; a key twice counts once.
    let keys_given = vec![first.clone(), first.clone(), sent[0].key.clone(), "x".into(), "nobody".into()];
    let redriven = store.redrive(&sync.id, Redrive::Keys(keys_given), late + 1, 0).await.expect("redrive");
    assert_eq!((redriven.users, redriven.skipped, redriven.more), (1, 3, false));
    assert_eq!(state_of(store, &sync.id, &first).await, MemberState::Pending);
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.in_flight, counts.synced, counts.entered), (1, 4, 2, 12));
    assert!(matches!(
        store.redrive("sync_nope", Redrive::Errored, late, 10).await,
        Err(StoreError::NotFound { kind: "sync", .. })
    ));
}

/// Errored users whose last entry is older than the retention, and old errors, are pruned in
/// chunks; synced users and recent history stay; `users` follows.
pub async fn old_errored_history_is_pruned_in_chunks(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("old", 5), T0)).await.expect("enter");
    store.enter(&sync.id, entry(users("new", 2), T0 + 10 * 86_400_000)).await.expect("enter");
    let synced = store.claim_batch(&sync.id, claim(T0 + FLUSH, 1)).await.expect("claim");
    store.complete(&sync.id, vec![result(&synced[0].key, UserOutcome::Synced)]).await.expect("complete");
    // The other old users expire (their errors recorded at the claim's time), the new ones
    // are refused (recorded at the store's time, now).
    let day = T0 + 86_400_000;
    let claimed = store
        .claim_batch(
            &sync.id,
            Claim {
                now_ms: day,
                max: 0,
                expire_before_ms: T0 + 1,
                expired_reason: "retry window over".into(),
                lane_owner: None,
            },
        )
        .await
        .expect("claim");
    assert!(claimed.is_empty());
    let refused = store.claim_batch(&sync.id, claim(T0 + 10 * 86_400_000 + FLUSH, 10)).await.expect("claim");
    assert_eq!(refused.len(), 2);
    let results = refused.iter().map(|u| result(&u.key, UserOutcome::Errored("refused".into()))).collect();
    store.complete(&sync.id, results).await.expect("complete");
    assert_eq!(conserved(store, &sync.id).await.errored, 6);
    assert_eq!(store.recent_errors(&sync.id, 100).await.expect("errors").len(), 6);

    let before = T0 + 5 * 86_400_000;
    let mut rows = 0;
    let mut calls = 0;
    loop {
        let pruned = store.prune_ledger(before, 3).await.expect("prune");
        assert!(pruned.rows <= 3);
        rows += pruned.rows;
        calls += 1;
        if !pruned.more {
            break;
        }
        assert!(calls < 20, "pruning never ends");
    }
    assert_eq!(rows, 4 + 4, "four old errored users and their four errors");
    assert!(calls >= 3, "in chunks of 3");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.users, counts.errored, counts.synced), (3, 6, 1), "errored stays counted: an entry's outcome");
    assert!(matches!(store.member(&sync.id, "old1").await, Err(StoreError::NotFound { kind: "user", .. })));
    assert_eq!(state_of(store, &sync.id, &synced[0].key).await, MemberState::Synced, "members are kept");
    assert_eq!(state_of(store, &sync.id, "new0").await, MemberState::Errored, "recent history is kept");
    let errors = store.recent_errors(&sync.id, 100).await.expect("errors");
    assert_eq!(errors.len(), 2);
    assert!(errors.iter().all(|e| e.key.starts_with("new")));
    let pruned = store.prune_ledger(before, 100).await.expect("prune");
    assert_eq!((pruned.rows, pruned.more), (0, false));
    // A pruned user who enters again is a new user.
    store.enter(&sync.id, entry(vec![user("old1")], T0 + 20 * 86_400_000)).await.expect("enter");
    let old1 = store.member(&sync.id, "old1").await.expect("old1");
    assert_eq!((old1.member.entries, old1.member.first_entered_at), (1, T0 + 20 * 86_400_000));
    assert_eq!(conserved(store, &sync.id).await.users, 4);
}

/// A page of a large ledger is one index range: 100,000 users of which a quarter synced, read
/// 1,000 at a time, each once.
pub async fn a_large_ledger_is_paged_without_gaps_or_repeats(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    const N: usize = 100_000;
    for chunk in 0..N / 10_000 {
        let ready = (0..10_000)
            .map(|i| crate::ReadyUser { key: format!("k{:06}", chunk * 10_000 + i), payload: vec![1; 40] })
            .collect();
        store
            .enter(
                &sync.id,
                Entry { ready, not_synced: Vec::new(), now_ms: T0 + chunk as i64, flush_ms: 0, skip_synced: false },
            )
            .await
            .expect("enter");
    }
    let mut synced = 0;
    while synced < N / 4 {
        let batch = store.claim_batch(&sync.id, claim(T0 + 100, 5_000)).await.expect("claim");
        synced += batch.len();
        let results = batch.iter().map(|u| result(&u.key, UserOutcome::Synced)).collect();
        store.complete(&sync.id, results).await.expect("complete");
    }
    let started = std::time::Instant::now();
    let pending = all_members(store, &sync.id, MemberState::Pending, 1_000).await;
    let took = started.elapsed();
    assert_eq!(pending.len(), N - N / 4);
    let distinct: BTreeSet<&str> = pending.iter().map(|m| m.key.as_str()).collect();
    assert_eq!(distinct.len(), pending.len(), "no user twice");
    assert_eq!(all_members(store, &sync.id, MemberState::Synced, 1_000).await.len(), N / 4);
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.users, counts.synced), (N as u64, (N / 4) as u64));
    eprintln!("75 pages of 1,000 pending users among {N}: {took:?}");
}
