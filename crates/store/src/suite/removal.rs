//! Behaviours of removal by key and of the re-entry policy: a user is removed with the payload
//! they were added with, a user still being added is removed right after that request, a user
//! entering again during their removal is added again after it, and the counters of the
//! audience (`in_audience`, `removing`, `removed`, `removal_errored`) follow the ledger while
//! the entry counters stay conserved.

use super::{FLUSH, T0, claim, conserved, entry, keys, setup, user, users};
use crate::{
    Claim, Entry, MemberState, NewSubmission, Reentry, RemovalSkip, Store, SyncAction, UserOutcome, UserResult,
};

/// A time after the store's own clock (outcomes are recorded at the store's time, so a user
/// they put back to waiting is due then).
const LATER: i64 = i64::MAX / 4;

fn result(key: &str, outcome: UserOutcome) -> UserResult {
    UserResult { key: key.to_owned(), outcome }
}

fn keys_of(list: &[&str]) -> Vec<String> {
    list.iter().map(|k| (*k).to_owned()).collect()
}

async fn state_of(store: &dyn Store, sync_id: &str, key: &str) -> MemberState {
    store.member(sync_id, key).await.expect("member").member.state
}

/// Users entered at `T0` and synced at `T0 + FLUSH`.
async fn synced(store: &dyn Store, sync_id: &str, prefix: &str, n: usize) {
    store.enter(sync_id, entry(users(prefix, n), T0)).await.expect("enter");
    let claimed = store.claim_batch(sync_id, claim(T0 + FLUSH, n)).await.expect("claim");
    assert_eq!(claimed.len(), n);
    let results = claimed.iter().map(|u| result(&u.key, UserOutcome::Synced)).collect();
    store.complete(sync_id, results).await.expect("complete");
}

/// Synced and errored users are queued for removal and sent in a batch of their own, before
/// the adds, with the payload they were added with; a user still pending is removed right
/// after their add; unknown and not-synced keys are skipped with the reason.
pub async fn users_are_removed_by_key_with_what_was_sent(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    synced(store, &sync.id, "s", 2).await;
    let at = T0 + FLUSH;
    store
        .enter(
            &sync.id,
            Entry {
                ready: vec![user("e"), user("p")],
                not_synced: vec![("x".into(), "no email".into())],
                now_ms: at,
                flush_ms: FLUSH,
                skip_synced: false,
            },
        )
        .await
        .expect("enter");
    let claimed = store.claim_batch(&sync.id, claim(at + FLUSH, 1)).await.expect("claim");
    assert_eq!(keys(&claimed), ["e"]);
    store.complete(&sync.id, vec![result("e", UserOutcome::Errored("refused".into()))]).await.expect("complete");
    assert_eq!(conserved(store, &sync.id).await.in_audience, 2);

    let asked = at + FLUSH;
    let done = store.remove_members(&sync.id, &keys_of(&["s0", "e", "p", "nobody", "x", "s0"]), asked, FLUSH).await;
    let done = done.expect("remove");
    assert_eq!(done.removing, 3);
    assert_eq!(
        done.skipped,
        [("nobody".to_owned(), RemovalSkip::Unknown), ("x".to_owned(), RemovalSkip::NotSynced)],
        "each key once, in the order given"
    );
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.in_audience, counts.removing, counts.removed), (1, 3, 0));
    assert_eq!(state_of(store, &sync.id, "s0").await, MemberState::Removing);
    let p = store.member(&sync.id, "p").await.expect("p").member;
    assert_eq!((p.state, p.then, p.removal_asked_at), (MemberState::Pending, Some(SyncAction::Remove), Some(asked)));
    let again = store.remove_members(&sync.id, &keys_of(&["s0", "p"]), asked, FLUSH).await.expect("remove");
    assert_eq!(again.removing, 0);
    assert!(again.skipped.iter().all(|(_, why)| *why == RemovalSkip::AlreadyRemoving));

    // Not due before the flush interval: the pending add goes first.
    let claimed = store.claim_batch(&sync.id, claim(asked + 1, 10)).await.expect("claim");
    assert_eq!(keys(&claimed), ["p"]);
    assert!(!claimed[0].removal);
    store.complete(&sync.id, vec![result("p", UserOutcome::Synced)]).await.expect("complete");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.synced, counts.in_audience, counts.removing), (3, 1, 3), "p's add counted, p not in audience");
    assert_eq!(state_of(store, &sync.id, "p").await, MemberState::Removing);

    let claimed = store.claim_batch(&sync.id, claim(asked + FLUSH, 10)).await.expect("claim");
    let mut removed = keys(&claimed);
    removed.sort();
    assert_eq!(removed, ["e", "p", "s0"]);
    assert!(claimed.iter().all(|u| u.removal), "a batch of removals");
    let s0 = claimed.iter().find(|u| u.key == "s0").expect("s0");
    assert_eq!((s0.payload.clone(), s0.entered_at), (user("s0").payload, asked), "what was sent, window from the ask");
    assert_eq!(state_of(store, &sync.id, "s0").await, MemberState::RemovalInFlight);
    store
        .complete(
            &sync.id,
            vec![
                result("s0", UserOutcome::Synced),
                result("p", UserOutcome::Synced),
                result("e", UserOutcome::Errored("unknown list member".into())),
            ],
        )
        .await
        .expect("complete");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.in_audience, counts.removing, counts.removed, counts.removal_errored), (1, 0, 2, 1));
    assert_eq!((counts.users, counts.synced, counts.errored), (5, 3, 1), "the entry counters stand");
    let e = store.member(&sync.id, "e").await.expect("e");
    assert_eq!(e.member.state, MemberState::RemovalErrored);
    assert_eq!(e.member.last_error.as_deref(), Some("removal: unknown list member"));
    let removed_list = store.members(&sync.id, MemberState::Removed, None, 10).await.expect("members");
    assert_eq!(removed_list.len(), 2);

    // A removed user who enters again is added again; a refused removal can be asked again.
    store.enter(&sync.id, entry(vec![user("s0")], asked + FLUSH)).await.expect("enter");
    let again = store.remove_members(&sync.id, &keys_of(&["e"]), asked + FLUSH, FLUSH).await.expect("remove");
    assert_eq!(again.removing, 1);
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.removed, counts.removal_errored, counts.removing, counts.pending), (1, 0, 1, 1));
    assert_eq!(state_of(store, &sync.id, "s0").await, MemberState::Pending);
}

/// A user entering again while their removal is in a request is counted as a new entry at
/// once and added again when the removal finished, whatever its outcome; a restart puts
/// removals in flight back to waiting.
pub async fn a_user_entering_during_their_removal_is_added_after_it(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    synced(store, &sync.id, "u", 3).await;
    let asked = T0 + FLUSH;
    store.remove_members(&sync.id, &keys_of(&["u0", "u1", "u2"]), asked, 0).await.expect("remove");
    let claimed = store.claim_batch(&sync.id, claim(asked, 10)).await.expect("claim");
    assert_eq!(claimed.len(), 3);
    let later = asked + 1;
    let back = crate::ReadyUser { key: "u0".into(), payload: b"new payload".to_vec() };
    let outcome = store.enter(&sync.id, entry(vec![back], later)).await.expect("enter");
    assert_eq!(outcome.queued, 1);
    let again = store.remove_members(&sync.id, &keys_of(&["u0"]), later, 0).await.expect("remove");
    assert_eq!(again.skipped, [("u0".to_owned(), RemovalSkip::Busy)]);
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.removing, counts.entered), (1, 2, 4));
    let u0 = store.member(&sync.id, "u0").await.expect("u0").member;
    assert_eq!((u0.state, u0.then, u0.entries), (MemberState::RemovalInFlight, Some(SyncAction::Add), 2));

    store
        .complete(
            &sync.id,
            vec![
                result("u0", UserOutcome::Synced),
                result("u1", UserOutcome::Retry { not_before_ms: later + 60_000, error: "HTTP 503".into() }),
            ],
        )
        .await
        .expect("complete");
    assert_eq!(state_of(store, &sync.id, "u0").await, MemberState::Pending);
    assert_eq!(state_of(store, &sync.id, "u1").await, MemberState::Removing);
    // A restart: the removal still in flight waits again.
    assert_eq!(store.recover_in_flight(later).await.expect("recover"), 1);
    assert_eq!(state_of(store, &sync.id, "u2").await, MemberState::Removing);
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.removing, counts.removed, counts.in_audience), (1, 2, 0, 0));

    // u2 is due now, u1 at its retry: a batch of u2's removal, then u0's add with its new payload.
    let claimed = store.claim_batch(&sync.id, claim(later, 10)).await.expect("claim");
    assert_eq!(keys(&claimed), ["u2"]);
    store.complete(&sync.id, vec![result("u2", UserOutcome::Unsent)]).await.expect("complete");
    assert_eq!(state_of(store, &sync.id, "u2").await, MemberState::Removing);
    let next = store.claim_batch(&sync.id, claim(later, 10)).await.expect("claim");
    assert_eq!(keys(&next), ["u2"]);
    store.complete(&sync.id, vec![result("u2", UserOutcome::Synced)]).await.expect("complete");
    // Later, u1's retried removal goes first, then u0's add.
    let retried = store.claim_batch(&sync.id, claim(LATER, 10)).await.expect("claim");
    assert_eq!((keys(&retried), retried[0].removal), (vec!["u1".to_owned()], true));
    store.complete(&sync.id, vec![result("u1", UserOutcome::Synced)]).await.expect("complete");
    let add = store.claim_batch(&sync.id, claim(LATER, 10)).await.expect("claim");
    assert_eq!(keys(&add), ["u0"]);
    assert_eq!((add[0].removal, add[0].payload.clone()), (false, b"new payload".to_vec()));
    conserved(store, &sync.id).await;
}

/// A removal asked while the user is in an asynchronous partner's request is sent once that
/// request settles; a submitted removal settles as removed.
pub async fn submitted_adds_and_removals_settle_in_order(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 2), T0)).await.expect("enter");
    let claimed = store.claim_batch(&sync.id, claim(T0 + FLUSH, 2)).await.expect("claim");
    let submission = |id: &str, keys: Vec<String>| NewSubmission {
        id: id.into(),
        keys,
        attempt: 1,
        now_ms: T0 + FLUSH,
        check_at_ms: T0 + FLUSH + 60_000,
    };
    store.submit(&sync.id, submission("add-1", super::keys(&claimed))).await.expect("submit");
    store.remove_members(&sync.id, &keys_of(&["u0"]), T0 + FLUSH, 0).await.expect("remove");
    let results = vec![result("u0", UserOutcome::Synced), result("u1", UserOutcome::Synced)];
    store.settle_submission(&sync.id, "add-1", results).await.expect("settle");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.synced, counts.in_audience, counts.removing), (2, 1, 1));

    let removal = store.claim_batch(&sync.id, claim(LATER, 10)).await.expect("claim");
    assert_eq!((keys(&removal), removal[0].removal), (vec!["u0".to_owned()], true));
    store.submit(&sync.id, submission("remove-1", vec!["u0".into()])).await.expect("submit");
    assert_eq!(state_of(store, &sync.id, "u0").await, MemberState::RemovalSubmitted);
    let carried = store.submission_users(&sync.id, "remove-1").await.expect("users");
    assert!(carried.iter().all(|u| u.removal));
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.submitted, counts.in_flight), (0, 0), "a removal is not an entry");
    store.settle_submission(&sync.id, "remove-1", vec![result("u0", UserOutcome::Synced)]).await.expect("settle");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.removing, counts.removed, counts.in_audience), (0, 1, 1));
}

/// Removals not sent within the retry window (the sync broken or paused all along) become
/// `removal_errored`.
pub async fn removals_expire_after_the_retry_window(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    synced(store, &sync.id, "u", 2).await;
    store.remove_members(&sync.id, &keys_of(&["u0", "u1"]), T0 + FLUSH, FLUSH).await.expect("remove");
    let late = T0 + 14 * 3_600_000;
    let expiry = Claim {
        now_ms: late,
        max: 10,
        expire_before_ms: late - 13 * 3_600_000,
        expired_reason: "retry window over".into(),
        lane_owner: None,
    };
    assert!(store.claim_batch(&sync.id, expiry).await.expect("claim").is_empty());
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.removing, counts.removal_errored), (0, 2));
    let u0 = store.member(&sync.id, "u0").await.expect("u0");
    assert_eq!(u0.member.last_error.as_deref(), Some("removal: retry window over"));
}

/// With the re-entry policy `skip`, a synced user entering again stays synced and is counted
/// as already in the audience; users not synced enter as usual.
pub async fn a_sync_that_skips_reentries_leaves_synced_users_alone(store: &dyn Store) {
    let (ws, conn, _) = setup(store).await;
    let sync = store
        .create_sync(crate::NewSync { reentry: Reentry::Skip, ..super::new_sync(&ws.id, &conn.id) })
        .await
        .expect("sync");
    assert_eq!(store.sync(&sync.id).await.expect("sync").reentry, Reentry::Skip);
    synced(store, &sync.id, "u", 1).await;
    let again = Entry { skip_synced: true, ..entry(vec![user("u0"), user("n0")], T0 + FLUSH) };
    let outcome = store.enter(&sync.id, again).await.expect("enter");
    assert_eq!((outcome.queued, outcome.already_in_audience, outcome.deduplicated), (1, 1, 0));
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.already_in_audience, counts.in_audience, counts.entered, counts.proceeded), (1, 1, 2, 3));
    assert_eq!(state_of(store, &sync.id, "u0").await, MemberState::Synced);
    // Resent (the default): a new entry, pending until sent again.
    let outcome = store.enter(&sync.id, entry(vec![user("u0")], T0 + FLUSH)).await.expect("enter");
    assert_eq!(outcome.queued, 1);
    assert_eq!(conserved(store, &sync.id).await.in_audience, 0);
}

/// Users removed long ago are pruned like errored ones; recent ones stay.
pub async fn old_removed_users_are_pruned(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    synced(store, &sync.id, "u", 2).await;
    store.remove_members(&sync.id, &keys_of(&["u0", "u1"]), T0 + FLUSH, 0).await.expect("remove");
    let claimed = store.claim_batch(&sync.id, claim(T0 + FLUSH, 10)).await.expect("claim");
    assert_eq!(claimed.len(), 2);
    let results = claimed.iter().map(|u| result(&u.key, UserOutcome::Synced)).collect();
    store.complete(&sync.id, results).await.expect("complete");
    assert_eq!(store.prune_ledger(T0, 100).await.expect("prune").rows, 0, "too recent");
    let pruned = store.prune_ledger(i64::MAX, 100).await.expect("prune");
    assert!(pruned.rows >= 2);
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.users, counts.removed), (0, 0));
}
