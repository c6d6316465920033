//! Random sequences of enter / claim / complete / recover / time passing, checked against a
//! model of the queue after every step.
//!
//! The model holds exactly which users are pending or in flight, with their due times, so
//! after each operation every counter must equal the model's, conservation must hold, and
//! `next_due` / `oldest_pending` must agree. Claims are checked against the trait's rule
//! (when a batch is due, how many, in which order) rather than replayed, so a backend may
//! break ties between equal due times as it likes. At the end the queue is drained: the
//! users that come out are exactly the model's, which shows the counters match the rows.

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::{FLUSH, Harness, T0, setup, user};
use crate::{Claim, Counts, CredentialKey, Entry, Store, UserOutcome, UserResult};

/// One random step.
#[derive(Debug, Clone)]
pub enum Op {
    /// Users `k{n}` enter (repeats allowed), with some not-synced users.
    Enter {
        /// Key numbers.
        keys: Vec<u8>,
        /// How many not-synced users come along.
        not_synced: u8,
    },
    /// A claim of at most `max`, expiring users older than `expire_after` ms if set.
    Claim {
        /// Batch limit.
        max: u8,
        /// Retry window, in ms.
        expire_after: Option<u16>,
    },
    /// Outcomes for some in-flight users: (which, outcome 0 synced / 1 errored / 2 retry,
    /// retry delay in ms).
    Complete {
        /// The picks.
        picks: Vec<(u8, u8, u16)>,
    },
    /// A restart's recovery.
    Recover,
    /// Time passes (ms).
    Advance(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (vec(0u8..24, 0..8), 0u8..3)
            .prop_map(|(keys, not_synced)| Op::Enter { keys, not_synced }),
        3 => (1u8..6, proptest::option::weighted(0.25, 0u16..20_000))
            .prop_map(|(max, expire_after)| Op::Claim { max, expire_after }),
        3 => vec((any::<u8>(), 0u8..4, 0u16..10_000), 0..5)
            .prop_map(|picks| Op::Complete { picks }),
        1 => Just(Op::Recover),
        2 => (0u16..8_000).prop_map(Op::Advance),
    ]
}

/// Random sequences of operations.
pub fn ops() -> impl Strategy<Value = Vec<Op>> {
    vec(op(), 1..40)
}

#[derive(Debug, Clone)]
struct ModelUser {
    in_flight: bool,
    entered: i64,
    due: i64,
    not_before: i64,
    attempts: u32,
}

#[derive(Debug, Default)]
struct Model {
    now: i64,
    users: BTreeMap<String, ModelUser>,
    /// Every key that entered (the ledger's rows: `counts.users`).
    ledger: std::collections::BTreeSet<String>,
    /// Keys synced by their last delivery and not entered again since (`counts.in_audience`).
    in_audience: std::collections::BTreeSet<String>,
    counts: Counts,
}

/// Runs random operation sequences (`PROPTEST_CASES`, default 48) on fresh stores from
/// `make`, checking the counters against a model after every step.
pub fn random_operations_keep_the_books<H: Harness>(make: impl Fn() -> H) {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let outcome = runner.run(&ops(), |ops| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a Tokio runtime");
        runtime.block_on(async {
            let harness = make();
            let store = harness.open(CredentialKey::generate()).await;
            check_sequence(&*store, &ops).await;
        });
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// Applies `ops` to a fresh sync of `store` and to the model, comparing after each.
pub async fn check_sequence(store: &dyn Store, ops: &[Op]) {
    let (_, _, sync) = setup(store).await;
    let id = sync.id.as_str();
    let mut model = Model { now: T0, ..Model::default() };
    for (step, op) in ops.iter().enumerate() {
        apply(store, id, &mut model, op).await;
        compare(store, id, &model, step, op).await;
    }
    // Drain: every user the model holds, and no other, is still in the queue.
    let recovered = store.recover_in_flight(model.now).await.expect("recover");
    assert_eq!(recovered, model.counts.in_flight, "recovered users");
    let everything = store.claim_batch(id, super::claim(i64::MAX / 4, 1_000_000)).await.expect("claim");
    let mut found: Vec<String> = everything.into_iter().map(|u| u.key).collect();
    found.sort();
    let wanted: Vec<String> = model.users.keys().cloned().collect();
    assert_eq!(found, wanted, "queued users differ from the counters' model");
}

async fn apply(store: &dyn Store, id: &str, model: &mut Model, op: &Op) {
    let now = model.now;
    match op {
        Op::Enter { keys, not_synced } => {
            let ready: Vec<_> = keys.iter().map(|k| user(&format!("k{k}"))).collect();
            let not_synced: Vec<_> =
                (0..*not_synced).map(|i| (format!("ns{i}"), "no usable match field".to_string())).collect();
            let (mut queued, mut dedup) = (0, 0);
            for u in &ready {
                if model.users.contains_key(&u.key) {
                    dedup += 1;
                } else {
                    queued += 1;
                    if model.in_audience.remove(&u.key) {
                        model.counts.in_audience -= 1;
                    }
                    model.users.insert(
                        u.key.clone(),
                        ModelUser { in_flight: false, entered: now, due: now + FLUSH, not_before: now, attempts: 0 },
                    );
                }
            }
            model.ledger.extend(ready.iter().map(|u| u.key.clone()));
            model.ledger.extend(not_synced.iter().map(|(k, _)| k.clone()));
            let c = &mut model.counts;
            c.users = model.ledger.len() as u64;
            c.proceeded += (ready.len() + not_synced.len()) as u64;
            c.entered += queued + not_synced.len() as u64;
            c.pending += queued;
            c.not_synced += not_synced.len() as u64;
            c.deduplicated += dedup;
            let entry = Entry { ready, not_synced, now_ms: now, flush_ms: FLUSH, skip_synced: false };
            let outcome = store.enter(id, entry).await.expect("enter");
            assert_eq!((outcome.queued, outcome.deduplicated), (queued, dedup));
        }
        Op::Claim { max, expire_after } => {
            let max = usize::from(*max);
            let expire_before = expire_after.map_or(i64::MIN, |a| now - i64::from(a));
            let expired: Vec<String> = model
                .users
                .iter()
                .filter(|(_, u)| !u.in_flight && u.entered < expire_before)
                .map(|(k, _)| k.clone())
                .collect();
            for k in &expired {
                model.users.remove(k);
            }
            model.counts.pending -= expired.len() as u64;
            model.counts.errored += expired.len() as u64;
            let mut eligible: Vec<(&String, &ModelUser)> =
                model.users.iter().filter(|(_, u)| !u.in_flight && u.not_before <= now).collect();
            eligible.sort_by_key(|(_, u)| u.due);
            let ready = eligible.len() >= max || eligible.first().is_some_and(|(_, u)| u.due <= now);
            let wanted = if ready { max.min(eligible.len()) } else { 0 };
            let wanted_dues: Vec<i64> = eligible.iter().take(wanted).map(|(_, u)| u.due).collect();
            let claim = Claim {
                now_ms: now,
                max,
                expire_before_ms: expire_before,
                expired_reason: "expired".into(),
                lane_owner: None,
            };
            let claimed = store.claim_batch(id, claim).await.expect("claim");
            assert_eq!(claimed.len(), wanted, "claim size at {now}, max {max}");
            let mut dues = Vec::new();
            for got in &claimed {
                let u = model.users.get_mut(&got.key).expect("claimed user is in the model");
                assert!(!u.in_flight && u.not_before <= now, "{} was not claimable", got.key);
                assert_eq!((got.entered_at, got.attempts), (u.entered, u.attempts));
                assert_eq!(got.payload, user(&got.key).payload);
                dues.push(u.due);
                u.in_flight = true;
            }
            assert_eq!(dues, wanted_dues, "claimed users are the earliest due, in due order");
            model.counts.pending -= claimed.len() as u64;
            model.counts.in_flight += claimed.len() as u64;
        }
        Op::Complete { picks } => {
            let flying: Vec<String> = model.users.iter().filter(|(_, u)| u.in_flight).map(|(k, _)| k.clone()).collect();
            let mut results = Vec::new();
            for (which, kind, delay) in picks {
                let key = if flying.is_empty() {
                    "k-ghost".to_string()
                } else {
                    flying[usize::from(*which) % flying.len()].clone()
                };
                let outcome = match kind {
                    0 => UserOutcome::Synced,
                    1 => UserOutcome::Errored("refused".into()),
                    2 => UserOutcome::Unsent,
                    _ => UserOutcome::Retry { not_before_ms: now + i64::from(*delay), error: "transient".into() },
                };
                let in_flight = model.users.get(&key).is_some_and(|u| u.in_flight);
                if in_flight {
                    let c = &mut model.counts;
                    c.in_flight -= 1;
                    match &outcome {
                        UserOutcome::Synced => {
                            c.synced += 1;
                            c.in_audience += 1;
                            model.in_audience.insert(key.clone());
                            model.users.remove(&key);
                        }
                        UserOutcome::Errored(_) => {
                            c.errored += 1;
                            model.users.remove(&key);
                        }
                        UserOutcome::Unsent => {
                            c.pending += 1;
                            if let Some(u) = model.users.get_mut(&key) {
                                u.in_flight = false;
                            }
                        }
                        UserOutcome::Retry { not_before_ms, .. } => {
                            c.pending += 1;
                            c.retries += 1;
                            if let Some(u) = model.users.get_mut(&key) {
                                u.in_flight = false;
                                u.attempts += 1;
                                u.not_before = *not_before_ms;
                                u.due = *not_before_ms;
                            }
                        }
                    }
                }
                results.push(UserResult { key, outcome });
            }
            store.complete(id, results).await.expect("complete");
        }
        Op::Recover => {
            let mut n = 0;
            for u in model.users.values_mut().filter(|u| u.in_flight) {
                u.in_flight = false;
                u.due = now;
                u.not_before = now;
                n += 1;
            }
            model.counts.in_flight -= n;
            model.counts.pending += n;
            assert_eq!(store.recover_in_flight(now).await.expect("recover"), n);
        }
        Op::Advance(ms) => model.now += i64::from(*ms),
    }
}

async fn compare(store: &dyn Store, id: &str, model: &Model, step: usize, op: &Op) {
    let counts = store.counts(id).await.expect("counts");
    assert!(counts.conserved(), "step {step} ({op:?}): not conserved: {counts:?}");
    assert_eq!(counts, model.counts, "step {step} ({op:?}): counters differ from the model");
    let pending_dues = model.users.values().filter(|u| !u.in_flight).map(|u| u.due);
    assert_eq!(
        store.next_due(&[id.to_string()]).await.expect("next_due"),
        pending_dues.min(),
        "step {step} ({op:?}): next_due"
    );
    assert_eq!(
        store.oldest_pending(id).await.expect("oldest"),
        model.users.values().map(|u| u.entered).min(),
        "step {step} ({op:?}): oldest_pending"
    );
}
