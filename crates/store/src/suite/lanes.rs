//! Behaviours of host heartbeats and lane leases: one live holder per connection's lane,
//! takeover of a dead host's lanes with recovery of its in-flight users, and claims fenced by
//! the lease.
//!
//! Leases run on the store's clock, not on the suite's `T0`: leases that must expire get
//! [`SHORT_TTL`] and the test sleeps past it; leases that must hold get [`LONG_TTL`]. Users
//! recovered at a takeover are due at the store's "now", so they are claimed at [`later`].

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use super::{Harness, T0, another_sync, claim, conserved, entry, keys, new_connection, setup, users};
use crate::{Claim, CredentialKey, HOST_RETENTION_MS, LaneLease, LeaseOutcome, Store, StoreError};

/// A lease or heartbeat that outlives any test.
pub const LONG_TTL: i64 = 60_000;
/// A lease or heartbeat that expires during a test.
pub const SHORT_TTL: i64 = 100;
/// How far the store's clock may be from this process's (PostgreSQL's server clock).
const CLOCK_SLACK: i64 = 5_000;

/// This process's clock (ms since the epoch).
use audience_model::now_ms as wall_ms;

/// A time at which users recovered by a takeover are due, whatever the clock skew.
pub fn later() -> i64 {
    wall_ms() + CLOCK_SLACK
}

/// Waits until leases of [`SHORT_TTL`] taken before the call have expired.
async fn outlive_short_leases() {
    tokio::time::sleep(Duration::from_millis(SHORT_TTL as u64 * 3)).await;
}

/// A claim at `now` of at most `max` users, fenced by `host`'s lease.
pub fn fenced(now: i64, max: usize, host: &str) -> Claim {
    Claim { lane_owner: Some(host.to_owned()), ..claim(now, max) }
}

fn set(keys: &[String]) -> BTreeSet<String> {
    keys.iter().cloned().collect()
}

/// The `Acquired` fields, or a panic naming what came instead.
fn acquired(outcome: LeaseOutcome) -> (i64, Option<String>, u64) {
    match outcome {
        LeaseOutcome::Acquired { expires_at, taken_over_from, recovered } => (expires_at, taken_over_from, recovered),
        other => panic!("expected the lane to be acquired, got {other:?}"),
    }
}

/// The lease of one connection, as listed.
async fn lease_of(store: &dyn Store, connection_id: &str) -> Option<LaneLease> {
    store.lane_leases().await.expect("lane leases").into_iter().find(|l| l.connection_id == connection_id)
}

/// A free lane is acquired until now + ttl on the store's clock; another host asking is told
/// who holds it and until when.
pub async fn a_free_lane_is_acquired_and_another_host_is_told_who_holds_it(store: &dyn Store) {
    let (_, conn, _) = setup(store).await;
    assert!(store.lane_leases().await.expect("lane leases").is_empty());
    let before = wall_ms();
    let (expires_at, taken_over_from, recovered) =
        acquired(store.acquire_lane(&conn.id, "host-a", LONG_TTL).await.expect("acquire"));
    assert_eq!((taken_over_from, recovered), (None, 0));
    assert!(
        (before + LONG_TTL - CLOCK_SLACK..=wall_ms() + LONG_TTL + CLOCK_SLACK).contains(&expires_at),
        "expires_at {expires_at} is not now + ttl in ms since the epoch (now is about {before})"
    );
    let lease = LaneLease { connection_id: conn.id.clone(), owner: "host-a".into(), expires_at };
    assert_eq!(
        store.acquire_lane(&conn.id, "host-b", LONG_TTL).await.expect("acquire"),
        LeaseOutcome::Held(lease.clone())
    );
    assert_eq!(store.lane_leases().await.expect("lane leases"), vec![lease]);
}

/// When the holder's lease expires, another host takes the lane over: the users the dead
/// holder had in flight in every sync of that connection are pending again, due now, with
/// conserved counters. Lanes the dead host still holds on other connections are untouched.
pub async fn an_expired_lease_is_taken_over_and_its_in_flight_users_are_pending_again(store: &dyn Store) {
    let (ws, conn, sync) = setup(store).await;
    let sibling = another_sync(store, &ws, &conn).await;
    let other_conn = store.create_connection(new_connection(&ws.id, b"token-2")).await.expect("create connection");
    let elsewhere = another_sync(store, &ws, &other_conn).await;
    acquired(store.acquire_lane(&conn.id, "host-a", SHORT_TTL).await.expect("acquire"));
    acquired(store.acquire_lane(&other_conn.id, "host-a", LONG_TTL).await.expect("acquire"));
    store.enter(&sync.id, entry(users("u", 5), T0)).await.expect("enter");
    store.enter(&sibling.id, entry(users("s", 3), T0)).await.expect("enter");
    store.enter(&elsewhere.id, entry(users("e", 4), T0)).await.expect("enter");
    let flying = keys(&store.claim_batch(&sync.id, claim(T0, 5)).await.expect("claim"));
    assert_eq!(flying.len(), 5);
    assert_eq!(store.claim_batch(&sibling.id, claim(T0, 3)).await.expect("claim").len(), 3);
    assert_eq!(store.claim_batch(&elsewhere.id, claim(T0, 4)).await.expect("claim").len(), 4);
    outlive_short_leases().await;

    let before = wall_ms();
    let (expires_at, taken_over_from, recovered) =
        acquired(store.acquire_lane(&conn.id, "host-b", LONG_TTL).await.expect("acquire"));
    assert_eq!((taken_over_from.as_deref(), recovered), (Some("host-a"), 8));
    assert_eq!(
        lease_of(store, &conn.id).await,
        Some(LaneLease { connection_id: conn.id.clone(), owner: "host-b".into(), expires_at })
    );
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.entered, counts.pending, counts.in_flight), (5, 5, 0));
    let counts = conserved(store, &sibling.id).await;
    assert_eq!((counts.entered, counts.pending, counts.in_flight), (3, 3, 0));
    let counts = conserved(store, &elsewhere.id).await;
    assert_eq!((counts.pending, counts.in_flight), (0, 4), "host-a still holds that lane");
    match store.acquire_lane(&other_conn.id, "host-b", LONG_TTL).await.expect("acquire") {
        LeaseOutcome::Held(lease) => assert_eq!(lease.owner, "host-a"),
        other => panic!("a live host's lane was taken: {other:?}"),
    }

    let due = store.next_due(std::slice::from_ref(&sync.id)).await.expect("next_due").expect("users pending");
    assert!((before - CLOCK_SLACK..=later()).contains(&due), "recovered users are due now, not at {due}");
    let again = store.claim_batch(&sync.id, fenced(later(), 10, "host-b")).await.expect("claim");
    assert_eq!(set(&keys(&again)), set(&flying), "the recovered users can be claimed again");
}

/// A host asking again for a lane it holds only extends the lease: its own in-flight users
/// stay in flight.
pub async fn acquiring_a_lane_again_extends_it_without_recovering_its_users(store: &dyn Store) {
    let (_, conn, sync) = setup(store).await;
    let (first, _, _) = acquired(store.acquire_lane(&conn.id, "host-a", LONG_TTL).await.expect("acquire"));
    store.enter(&sync.id, entry(users("u", 5), T0)).await.expect("enter");
    assert_eq!(store.claim_batch(&sync.id, fenced(T0, 3, "host-a")).await.expect("claim").len(), 3);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (second, taken_over_from, recovered) =
        acquired(store.acquire_lane(&conn.id, "host-a", LONG_TTL).await.expect("acquire"));
    assert_eq!((taken_over_from, recovered), (None, 0));
    assert!(second > first, "the lease was not extended: {first} then {second}");
    assert_eq!(lease_of(store, &conn.id).await.map(|l| (l.owner, l.expires_at)), Some(("host-a".into(), second)));
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.in_flight), (2, 3));
}

/// `renew_lanes` extends the host's unexpired leases and lists them sorted; an expired lease is
/// neither renewed nor listed, and re-acquiring it counts as a takeover (from the host itself).
pub async fn renewing_keeps_unexpired_leases_and_drops_expired_ones(store: &dyn Store) {
    let (ws, c1, _) = setup(store).await;
    let mut others = Vec::new();
    for token in [b"t2", b"t3", b"t4"] {
        others.push(store.create_connection(new_connection(&ws.id, token)).await.expect("create connection").id);
    }
    let (c2, c3, c4) = (others[0].clone(), others[1].clone(), others[2].clone());
    acquired(store.acquire_lane(&c1.id, "host-a", LONG_TTL).await.expect("acquire"));
    acquired(store.acquire_lane(&c4, "host-a", LONG_TTL).await.expect("acquire"));
    acquired(store.acquire_lane(&c2, "host-a", SHORT_TTL).await.expect("acquire"));
    acquired(store.acquire_lane(&c3, "host-b", LONG_TTL).await.expect("acquire"));
    let c2_lease = lease_of(store, &c2).await.expect("c2 lease");
    let c1_before = lease_of(store, &c1.id).await.expect("c1 lease").expires_at;
    outlive_short_leases().await;

    let mut wanted = vec![c1.id.clone(), c4.clone()];
    wanted.sort();
    assert_eq!(store.renew_lanes("host-a", LONG_TTL).await.expect("renew"), wanted);
    assert!(lease_of(store, &c1.id).await.expect("c1 lease").expires_at > c1_before, "c1 was not extended");
    assert_eq!(lease_of(store, &c2).await, Some(c2_lease), "an expired lease was renewed");
    assert_eq!(store.renew_lanes("host-b", LONG_TTL).await.expect("renew"), vec![c3.clone()]);
    assert!(store.renew_lanes("host-c", LONG_TTL).await.expect("renew").is_empty());

    let (_, taken_over_from, _) = acquired(store.acquire_lane(&c2, "host-a", LONG_TTL).await.expect("acquire"));
    assert_eq!(taken_over_from.as_deref(), Some("host-a"));
    let mut wanted = vec![c1.id, c2, c4];
    wanted.sort();
    assert_eq!(store.renew_lanes("host-a", LONG_TTL).await.expect("renew"), wanted);
}

/// A released lane can be taken by another host at once (with the releaser's in-flight
/// users); releasing a lane one does not hold changes nothing.
pub async fn a_released_lane_can_be_acquired_at_once(store: &dyn Store) {
    let (_, conn, sync) = setup(store).await;
    acquired(store.acquire_lane(&conn.id, "host-a", LONG_TTL).await.expect("acquire"));
    store.enter(&sync.id, entry(users("u", 2), T0)).await.expect("enter");
    assert_eq!(store.claim_batch(&sync.id, fenced(T0, 2, "host-a")).await.expect("claim").len(), 2);

    store.release_lane(&conn.id, "host-b").await.expect("release a lane held by another host");
    store.release_lane("conn_nope", "host-a").await.expect("release an unknown lane");
    assert!(matches!(
        store.acquire_lane(&conn.id, "host-b", LONG_TTL).await.expect("acquire"),
        LeaseOutcome::Held(LaneLease { ref owner, .. }) if owner == "host-a"
    ));

    store.release_lane(&conn.id, "host-a").await.expect("release");
    let (_, taken_over_from, recovered) =
        acquired(store.acquire_lane(&conn.id, "host-b", LONG_TTL).await.expect("acquire"));
    assert_eq!((taken_over_from.as_deref(), recovered), (Some("host-a"), 2));
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.in_flight), (2, 0));
    store.release_lane(&conn.id, "host-a").await.expect("release a lane no longer held");
    assert_eq!(lease_of(store, &conn.id).await.map(|l| l.owner), Some("host-b".into()));
}

/// A claim fenced by a host without the lane (never acquired, expired, or taken over) fails
/// with `LeaseLost` naming the connection, and changes nothing: not even the expiry of users
/// past their retry window.
pub async fn a_claim_fenced_by_a_lost_lease_fails_and_changes_nothing(store: &dyn Store) {
    let (_, conn, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 5), T0)).await.expect("enter");
    let lost = |result: Result<Vec<crate::QueuedUser>, StoreError>| match result {
        Err(StoreError::LeaseLost { connection_id }) => assert_eq!(connection_id, conn.id),
        other => panic!("expected LeaseLost, got {other:?}"),
    };
    lost(store.claim_batch(&sync.id, fenced(T0, 2, "host-a")).await);

    acquired(store.acquire_lane(&conn.id, "host-a", SHORT_TTL).await.expect("acquire"));
    // Unfenced: a fenced claim might come after the short lease ran out on a loaded machine.
    assert_eq!(store.claim_batch(&sync.id, claim(T0, 2)).await.expect("claim").len(), 2);
    outlive_short_leases().await;
    let before = conserved(store, &sync.id).await;
    let expire_everything = Claim { expire_before_ms: i64::MAX, ..fenced(T0, 2, "host-a") };
    lost(store.claim_batch(&sync.id, expire_everything.clone()).await);

    acquired(store.acquire_lane(&conn.id, "host-b", LONG_TTL).await.expect("acquire"));
    let after_takeover = conserved(store, &sync.id).await;
    assert_eq!((after_takeover.pending, after_takeover.in_flight), (5, 0));
    match store.claim_batch(&sync.id, expire_everything).await {
        Err(e @ StoreError::LeaseLost { .. }) => {
            let message = e.to_string();
            assert!(message.contains(&conn.id) && message.contains("stop delivering"), "{message}");
        }
        other => panic!("expected LeaseLost, got {other:?}"),
    }
    assert_eq!(conserved(store, &sync.id).await, after_takeover);
    assert_eq!((before.errored, after_takeover.errored), (0, 0));
    assert!(store.recent_errors(&sync.id, 10).await.expect("errors").is_empty());
}

/// A claim fenced by the lane's holder claims as usual; an unfenced claim (a single host)
/// is not checked at all.
pub async fn a_claim_fenced_by_the_lane_holder_works(store: &dyn Store) {
    let (_, conn, sync) = setup(store).await;
    store.enter(&sync.id, entry(users("u", 6), T0)).await.expect("enter");
    acquired(store.acquire_lane(&conn.id, "host-b", LONG_TTL).await.expect("acquire"));
    assert_eq!(store.claim_batch(&sync.id, fenced(T0, 2, "host-b")).await.expect("claim").len(), 2);
    assert_eq!(store.claim_batch(&sync.id, claim(T0, 2)).await.expect("claim").len(), 2);
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.pending, counts.in_flight), (2, 4));
}

/// `heartbeat` returns how many hosts are alive, itself included; an expired host no longer
/// counts, and counts again once it beats again.
pub async fn heartbeat_counts_live_hosts_and_forgets_expired_ones(store: &dyn Store) {
    assert_eq!(store.heartbeat("host-a", LONG_TTL).await.expect("heartbeat"), 1);
    assert_eq!(store.heartbeat("host-b", LONG_TTL).await.expect("heartbeat"), 2);
    assert_eq!(store.heartbeat("host-a", LONG_TTL).await.expect("heartbeat"), 2, "a host is counted once");
    assert_eq!(store.heartbeat("host-c", SHORT_TTL).await.expect("heartbeat"), 3);
    outlive_short_leases().await;
    assert_eq!(store.heartbeat("host-a", LONG_TTL).await.expect("heartbeat"), 2);
    // Expired long before the retention period: forgotten at once, never counted.
    assert_eq!(store.heartbeat("host-gone", -2 * HOST_RETENTION_MS).await.expect("heartbeat"), 2);
    assert_eq!(store.heartbeat("host-c", LONG_TTL).await.expect("heartbeat"), 3);
}

/// A lease goes away with its connection (which can only be deleted once no sync uses it).
pub async fn deleting_a_connection_removes_its_lease(store: &dyn Store) {
    let (ws, conn, sync) = setup(store).await;
    let kept = store.create_connection(new_connection(&ws.id, b"token-2")).await.expect("create connection");
    acquired(store.acquire_lane(&conn.id, "host-a", LONG_TTL).await.expect("acquire"));
    acquired(store.acquire_lane(&kept.id, "host-a", LONG_TTL).await.expect("acquire"));
    assert!(matches!(store.delete_connection(&conn.id).await, Err(StoreError::Conflict(_))));
    assert!(lease_of(store, &conn.id).await.is_some(), "a refused delete removed the lease");
    store.delete_sync(&sync.id).await.expect("delete sync");
    super::purge_everything(store).await;
    store.delete_connection(&conn.id).await.expect("delete connection");
    let leases = store.lane_leases().await.expect("lane leases");
    assert_eq!(leases.iter().map(|l| l.connection_id.as_str()).collect::<Vec<_>>(), vec![kept.id.as_str()]);
    assert!(matches!(
        store.acquire_lane(&conn.id, "host-a", LONG_TTL).await,
        Err(StoreError::NotFound { kind: "connection", .. })
    ));
    assert_eq!(store.renew_lanes("host-a", LONG_TTL).await.expect("renew"), vec![kept.id]);
}

/// Hosts asking for the same lane at once, `n` tasks spread over `stores`: the outcomes.
async fn race_for_lane(stores: &[Arc<dyn Store>], connection_id: &str, n: usize) -> Vec<(String, LeaseOutcome)> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let store = Arc::clone(&stores[i % stores.len()]);
            let (id, host) = (connection_id.to_owned(), format!("host-{i}"));
            tokio::spawn(async move {
                let outcome = store.acquire_lane(&id, &host, LONG_TTL).await.expect("acquire");
                (host, outcome)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("an acquiring task"));
    }
    outcomes
}

/// The one host that acquired the lane in a race; every other was told it holds it.
fn single_winner(outcomes: &[(String, LeaseOutcome)]) -> (String, Option<String>, u64) {
    let winners: Vec<_> = outcomes
        .iter()
        .filter_map(|(host, outcome)| match outcome {
            LeaseOutcome::Acquired { taken_over_from, recovered, .. } => {
                Some((host.clone(), taken_over_from.clone(), *recovered))
            }
            LeaseOutcome::Held(_) => None,
        })
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let winner = winners.into_iter().next().expect("one winner");
    for (_, outcome) in outcomes {
        if let LeaseOutcome::Held(lease) = outcome {
            assert_eq!(lease.owner, winner.0, "{outcomes:?}");
        }
    }
    winner
}

/// Many hosts asking at once for a lane never asked for before: exactly one gets it (the
/// first insert of the lease row races), the others are told it is held by the winner.
pub async fn concurrent_acquires_of_a_free_lane_have_one_winner(harness: &dyn Harness) {
    let key = CredentialKey::generate();
    let stores = [harness.open(key.clone()).await, harness.open(key).await];
    let (_, conn, _) = setup(&*stores[0]).await;
    let outcomes = race_for_lane(&stores, &conn.id, 8).await;
    let (winner, taken_over_from, recovered) = single_winner(&outcomes);
    assert_eq!((taken_over_from, recovered), (None, 0));
    let leases = stores[1].lane_leases().await.expect("lane leases");
    assert_eq!(
        leases.iter().map(|l| (l.connection_id.as_str(), l.owner.as_str())).collect::<Vec<_>>(),
        vec![(conn.id.as_str(), winner.as_str())]
    );
}

/// Many hosts taking over an expired lane at once: exactly one wins, and the dead holder's
/// in-flight users are recovered once, counters conserved.
pub async fn concurrent_takeovers_of_an_expired_lane_recover_its_users_once(harness: &dyn Harness) {
    let key = CredentialKey::generate();
    let stores = [harness.open(key.clone()).await, harness.open(key).await];
    let (_, conn, sync) = setup(&*stores[0]).await;
    acquired(stores[0].acquire_lane(&conn.id, "host-dead", SHORT_TTL).await.expect("acquire"));
    stores[0].enter(&sync.id, entry(users("u", 10), T0)).await.expect("enter");
    assert_eq!(stores[0].claim_batch(&sync.id, claim(T0, 6)).await.expect("claim").len(), 6);
    outlive_short_leases().await;
    let outcomes = race_for_lane(&stores, &conn.id, 8).await;
    let (_, taken_over_from, recovered) = single_winner(&outcomes);
    assert_eq!((taken_over_from.as_deref(), recovered), (Some("host-dead"), 6));
    let counts = conserved(&*stores[1], &sync.id).await;
    assert_eq!((counts.entered, counts.pending, counts.in_flight), (10, 10, 0));
}

/// The holder claiming as fast as it can while another host waits for its lease to expire and
/// takes the lane over: every user the holder managed to claim is recovered by the takeover,
/// and no claim succeeds after it, so no user is left in flight on a lane whose new holder
/// does not know of it.
pub async fn a_takeover_racing_with_the_holders_claims_strands_no_user(harness: &dyn Harness) {
    const USERS: usize = 10_000;
    // Long enough for the holder to claim a few batches even on a loaded machine.
    const RACE_TTL: i64 = 300;
    let key = CredentialKey::generate();
    let (a, b) = (harness.open(key.clone()).await, harness.open(key).await);
    let (_, conn, sync) = setup(&*a).await;
    a.enter(&sync.id, entry(users("u", USERS), T0)).await.expect("enter");
    acquired(a.acquire_lane(&conn.id, "host-a", RACE_TTL).await.expect("acquire"));
    let holder = {
        let id = sync.id.clone();
        tokio::spawn(async move {
            let mut claimed = 0u64;
            loop {
                match a.claim_batch(&id, fenced(T0, 10, "host-a")).await {
                    // Once every user is in flight, empty claims go on until the lane is lost.
                    Ok(batch) => claimed += batch.len() as u64,
                    Err(StoreError::LeaseLost { .. }) => break claimed,
                    Err(e) => panic!("claim: {e}"),
                }
            }
        })
    };
    let taker = {
        let (b, id) = (Arc::clone(&b), conn.id.clone());
        tokio::spawn(async move {
            loop {
                match b.acquire_lane(&id, "host-b", LONG_TTL).await.expect("acquire") {
                    LeaseOutcome::Acquired { recovered, .. } => break recovered,
                    LeaseOutcome::Held(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                }
            }
        })
    };
    let (claimed, recovered) = (holder.await.expect("the holder"), taker.await.expect("the taker"));
    assert!(claimed > 0, "the holder claimed nothing before losing its lane");
    assert_eq!(recovered, claimed, "users claimed by the old holder were not all recovered");
    let counts = conserved(&*b, &sync.id).await;
    assert_eq!((counts.pending, counts.in_flight), (USERS as u64, 0));
}

/// App-wide slots are handed out exactly `interval` apart on the store's clock, one app's
/// independently of another's: a fresh app's first request leaves at once, and each wait
/// places a request one interval after the one before. (Bounds, not timings: the store reads
/// its clock somewhere within each call, so the host's times before and after a call bracket
/// it.)
pub async fn app_slots_are_spaced_by_the_interval(store: &dyn Store) {
    const INTERVAL: i64 = 200;
    let epoch = std::time::Instant::now();
    let ms = |t: std::time::Instant| t.duration_since(epoch).as_secs_f64() * 1000.0;
    let mut slots: Vec<(f64, f64)> = Vec::new();
    for k in 0..5 {
        let before = ms(std::time::Instant::now());
        let wait = store.take_app_slot("google", INTERVAL).await.expect("slot");
        let after = ms(std::time::Instant::now());
        if k == 0 {
            assert_eq!(wait, 0, "a fresh app's first request waits for nothing");
        }
        assert!((0..=INTERVAL * (k + 1)).contains(&wait), "wait {wait} ms for request {k}");
        // The slot lies within [before + wait, after + wait] on the host's clock.
        slots.push((before + wait as f64, after + wait as f64));
    }
    for pair in slots.windows(2) {
        let ((lo0, hi0), (lo1, hi1)) = (pair[0], pair[1]);
        // Rounding of the store's ms clock allows 1 ms either way.
        assert!(hi1 - lo0 >= INTERVAL as f64 - 1.0, "slots closer than the interval: {pair:?}");
        assert!(lo1 - hi0 <= INTERVAL as f64 + 1.0, "slots further apart than the interval: {pair:?}");
    }
    assert_eq!(store.take_app_slot("meta", INTERVAL).await.expect("slot"), 0, "another app has its own budget");
}
