//! Behaviours of asynchronous outcomes: users the partner accepted in a request it finishes
//! later are `submitted` until the host learns how the request went.

use std::collections::BTreeSet;

use super::{T0, another_sync, claim, conserved, entry, keys, setup, users};
use crate::{NewSubmission, Store, StoreError, UserOutcome, UserResult};

/// A retry time after every other time of these tests.
const FAR: i64 = i64::MAX / 4;

fn submission(id: &str, keys: &[String]) -> NewSubmission {
    NewSubmission { id: id.to_owned(), keys: keys.to_vec(), attempt: 1, now_ms: T0, check_at_ms: T0 + 1_000 }
}

fn set(keys: &[String]) -> BTreeSet<String> {
    keys.iter().cloned().collect()
}

/// Submitting moves in-flight users to `submitted` (others named are ignored), records the
/// request, keeps the counts conserved, and refuses a second submission with the same id.
pub async fn a_submission_moves_in_flight_users_to_submitted(store: &dyn Store) {
    let (ws, conn, sync) = setup(store).await;
    let other = another_sync(store, &ws, &conn).await;
    store.enter(&sync.id, entry(users("u", 5), T0)).await.expect("enter");
    let flying = keys(&store.claim_batch(&sync.id, claim(T0, 3)).await.expect("claim"));
    let mut named = flying.clone();
    named.push("u9".into()); // never entered
    store.submit(&sync.id, submission("req-1", &named)).await.expect("submit");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.in_flight, counts.submitted), (2, 0, 3));
    let found = store.submissions(&[sync.id.clone(), other.id.clone(), "sync_gone".into()]).await.expect("list");
    assert_eq!(found.len(), 1);
    let s = &found[0];
    assert_eq!((s.sync_id.as_str(), s.id.as_str(), s.users, s.attempt), (sync.id.as_str(), "req-1", 3, 1));
    assert_eq!((s.submitted_at_ms, s.check_at_ms), (T0, T0 + 1_000));
    let carried = keys(&store.submission_users(&sync.id, "req-1").await.expect("users"));
    assert_eq!(set(&carried), set(&flying));
    assert!(store.submission_users(&sync.id, "req-2").await.expect("users").is_empty());
    assert!(store.submission_users("sync_gone", "req-1").await.expect("users").is_empty());
    let again = store.submit(&sync.id, submission("req-1", &[])).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    let unknown = store.submit("sync_gone", submission("req-9", &[])).await;
    assert!(matches!(unknown, Err(StoreError::NotFound { .. })), "{unknown:?}");
    assert_eq!(conserved(store, &sync.id).await.submitted, 3);
}

/// Submitted users are neither claimed, nor due, nor recovered by a restart: the partner has
/// them, and whoever runs the lane next asks about the same request.
pub async fn submitted_users_survive_a_restart_untouched(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 4), T0)).await.expect("enter");
    let flying = keys(&store.claim_batch(&sync.id, claim(T0, 4)).await.expect("claim"));
    store.submit(&sync.id, submission("req-1", &flying[..2])).await.expect("submit");
    assert_eq!(store.recover_in_flight(T0 + 10).await.expect("recover"), 2, "only the in-flight two");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.in_flight, counts.submitted), (2, 0, 2));
    let again = keys(&store.claim_batch(&sync.id, claim(T0 + 10, 10)).await.expect("claim"));
    assert_eq!(set(&again), set(&flying[2..]), "submitted users are not claimed again");
    assert_eq!(store.next_due(std::slice::from_ref(&sync.id)).await.expect("next_due"), None);
    assert_eq!(
        store.oldest_pending(&sync.id).await.expect("oldest"),
        Some(T0),
        "submitted users are not delivered yet"
    );
    assert_eq!(store.submissions(std::slice::from_ref(&sync.id)).await.expect("list").len(), 1);
}

/// Settling records each user's outcome as `complete` does, sends users the outcome did not
/// mention again, forgets the request, and a second settle changes nothing.
pub async fn settling_a_submission_records_its_outcomes_once(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 6), T0)).await.expect("enter");
    let flying = keys(&store.claim_batch(&sync.id, claim(T0, 6)).await.expect("claim"));
    store.submit(&sync.id, submission("req-a", &flying[..5])).await.expect("submit");
    let results = vec![
        UserResult { key: flying[0].clone(), outcome: UserOutcome::Synced },
        UserResult { key: flying[1].clone(), outcome: UserOutcome::Synced },
        UserResult { key: flying[2].clone(), outcome: UserOutcome::Errored("denied consent".into()) },
        UserResult {
            key: flying[3].clone(),
            outcome: UserOutcome::Retry { not_before_ms: FAR, error: "processing failed".into() },
        },
        // In flight, not of this submission: ignored.
        UserResult { key: flying[5].clone(), outcome: UserOutcome::Synced },
    ];
    store.settle_submission(&sync.id, "req-a", results.clone()).await.expect("settle");
    let counts = conserved(store, &sync.id).await;
    assert_eq!(
        (counts.synced, counts.errored, counts.pending, counts.in_flight, counts.submitted, counts.retries),
        (2, 1, 2, 1, 0, 1),
        "flying[4] had no outcome and is pending again; flying[5] is still in flight"
    );
    assert!(store.submissions(std::slice::from_ref(&sync.id)).await.expect("list").is_empty());
    let errors = store.recent_errors(&sync.id, 10).await.expect("errors");
    assert!(errors.iter().any(|e| e.key == flying[2] && e.reason == "denied consent"), "{errors:?}");
    store.settle_submission(&sync.id, "req-a", results).await.expect("settle twice");
    assert_eq!(conserved(store, &sync.id).await, counts, "a second settle changes nothing");
    // The user without an outcome is due now (the store's clock); the retried one waits.
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let due = keys(&store.claim_batch(&sync.id, claim(wall + 60_000, 10)).await.expect("claim"));
    assert_eq!(due, vec![flying[4].clone()]);
}

/// Reopening gives the users back in flight (for a resend now) and forgets the request; they
/// are then completed like any claimed batch.
pub async fn a_reopened_submission_is_in_flight_again(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 3), T0)).await.expect("enter");
    let flying = keys(&store.claim_batch(&sync.id, claim(T0, 3)).await.expect("claim"));
    store.submit(&sync.id, submission("req-1", &flying)).await.expect("submit");
    let back = store.reopen_submission(&sync.id, "req-1").await.expect("reopen");
    assert_eq!(set(&keys(&back)), set(&flying));
    assert!(back.iter().all(|u| u.entered_at == T0 && u.attempts == 0 && !u.payload.is_empty()));
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.in_flight, counts.submitted), (3, 0));
    assert!(store.reopen_submission(&sync.id, "req-1").await.expect("reopen twice").is_empty());
    assert!(store.reopen_submission("sync_gone", "req-1").await.expect("unknown sync").is_empty());
    let done = flying.iter().map(|k| UserResult { key: k.clone(), outcome: UserOutcome::Synced }).collect();
    store.complete(&sync.id, done).await.expect("complete");
    assert_eq!(conserved(store, &sync.id).await.synced, 3);
}

/// Deleting a sync removes its submissions with its queue.
pub async fn deleting_a_sync_removes_its_submissions(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 2), T0)).await.expect("enter");
    let flying = keys(&store.claim_batch(&sync.id, claim(T0, 2)).await.expect("claim"));
    store.submit(&sync.id, submission("req-1", &flying)).await.expect("submit");
    store.delete_sync(&sync.id).await.expect("delete");
    assert!(store.submissions(std::slice::from_ref(&sync.id)).await.expect("list").is_empty(), "gone at once");
    super::purge_everything(store).await;
    assert!(store.submissions(std::slice::from_ref(&sync.id)).await.expect("list").is_empty());
    assert!(store.submission_users(&sync.id, "req-1").await.expect("users").is_empty());
}
