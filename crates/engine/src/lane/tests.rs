//! A lane's behaviour against a fake partner and the in-memory store, under tokio's paused
//! time: every timing is exact and every run the same, with no WebAssembly and no real waits.

use std::collections::HashSet;
use std::time::Duration;

use audience_runtime::types::{BatchOutcome, DestinationError, Limits, RejectedUser, UpsertOutcome};
use audience_store::{Health, Store, SyncStatus};

use crate::EngineConfig;
use crate::decode_credentials;
use crate::testing::fake::{self, Call, Request};
use crate::testing::{T0, World};

const MINUTE: Duration = Duration::from_secs(60);

fn limits(max_batch_size: u32, requests_per_second: f64, max_concurrent_requests: u32) -> Limits {
    Limits {
        max_batch_size,
        requests_per_second,
        max_concurrent_requests,
        max_submissions_per_audience: 0,
        app_requests_per_second: None,
    }
}

fn ok() -> Result<BatchOutcome, audience_runtime::CallError> {
    Ok(BatchOutcome { rejected: Vec::new(), unattributed: Vec::new(), created: None })
}

/// The spacing the limiter keeps at `rps` with the default guard (the fake partner's requests
/// leave with no send delay, so nothing is measured on top of it).
fn interval(rps: f64) -> Duration {
    Duration::from_secs_f64((1.0 + EngineConfig::default().rate.guard) / rps)
}

fn times(requests: &[Request]) -> Vec<Duration> {
    requests.iter().map(|r| r.at).collect()
}

/// Requests leave at least `interval` apart, and never more than `rps` start in one second.
fn assert_paced(at: &[Duration], interval: Duration, rps: usize) {
    for pair in at.windows(2) {
        assert!(pair[1] - pair[0] >= interval, "requests {:?} and {:?} closer than {interval:?}", pair[0], pair[1]);
    }
    for (i, t) in at.iter().enumerate() {
        let in_window = at[i..].iter().filter(|u| **u < *t + Duration::from_secs(1)).count();
        assert!(in_window <= rps, "{in_window} requests within a second of {t:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn requests_are_paced_by_the_limiter_interval() {
    let world = World::new(EngineConfig::default(), limits(10, 5.0, 3)).await;
    let sync = world.sync(Some("aud-1")).await;
    world.enter(&sync, "u", 100).await;
    world.start();
    world.until_delivered(&sync, MINUTE).await;
    let writes = world.partner.writes();
    assert_eq!(writes.len(), 10, "100 users in full batches of 10");
    let at = times(&writes);
    // A new lane holds its first request for a second (the token's last second is unknown).
    assert_eq!(at[0], Duration::from_secs(1));
    assert_paced(&at, interval(5.0), 5);
    // With batches waiting, each request leaves as soon as its slot comes: the limiter, not
    // the lane, sets the pace.
    for pair in at.windows(2) {
        assert!(pair[1] - pair[0] <= interval(5.0) + Duration::from_millis(2), "{:?}", pair);
    }
    let counts = world.counts(&sync).await;
    assert_eq!((counts.synced, counts.retries), (100, 0));
    world.stop().await;
}

/// A 429 on the second request pauses every request of the connection (both syncs') for the
/// pause; the refused batch is retried after it, and everyone is delivered.
async fn a_429_pauses_the_connection(retry_after_ms: Option<u32>, expected_pause: Duration) {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 2)).await;
    let a = world.sync(Some("aud-a")).await;
    let b = world.sync(Some("aud-b")).await;
    world.enter(&a, "a", 30).await;
    world.enter(&b, "b", 30).await;
    let mut n = 0;
    world.partner.on_write(move |_| {
        n += 1;
        if n == 2 { Err(fake::refusal(DestinationError::RateLimited(retry_after_ms))) } else { ok() }
    });
    world.start();
    world.until_delivered(&a, MINUTE).await;
    world.until_delivered(&b, MINUTE).await;
    let writes = world.partner.writes();
    assert_eq!(writes.len(), 7, "6 batches, one of them sent twice");
    let refused_at = writes[1].at;
    for later in &writes[2..] {
        assert!(later.at >= refused_at + expected_pause, "a request at {:?}, during the pause", later.at);
    }
    assert!(writes[2].at <= refused_at + expected_pause + interval(10.0), "the lane resumes after the pause");
    let retried: Vec<&Request> = writes[2..].iter().filter(|w| w.keys == writes[1].keys).collect();
    assert_eq!(retried.len(), 1, "the refused batch is sent again once");
    let (ca, cb) = (world.counts(&a).await, world.counts(&b).await);
    assert_eq!((ca.synced + cb.synced, ca.retries + cb.retries, ca.errored + cb.errored), (60, 10, 0));
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_429_with_retry_after_pauses_the_whole_connection() {
    a_429_pauses_the_connection(Some(5_000), Duration::from_secs(5)).await;
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_pauses_for_the_default() {
    a_429_pauses_the_connection(None, EngineConfig::default().rate.default_pause).await;
}

#[tokio::test(start_paused = true)]
async fn invalid_requests_are_split_down_to_the_users_at_fault() {
    let world = World::new(EngineConfig::default(), limits(16, 10.0, 1)).await;
    let sync = world.sync(Some("aud-1")).await;
    world.enter(&sync, "u", 16).await;
    let bad: HashSet<String> = ["u3".to_string(), "u11".to_string()].into();
    let at_fault = bad.clone();
    world.partner.on_write(move |request| {
        if request.keys.iter().any(|k| at_fault.contains(k)) {
            Err(fake::refusal(DestinationError::InvalidRequest("malformed identifier".into())))
        } else {
            ok()
        }
    });
    world.start();
    world.until_delivered(&sync, MINUTE).await;
    let writes = world.partner.writes();
    // 16 → 8 + 8 → 4 + 4 (twice) → 2 + 2 (twice) → 1 + 1 (twice): 15 requests.
    assert_eq!(writes.len(), 15);
    assert_eq!(writes[0].keys.len(), 16);
    assert_paced(&times(&writes), interval(10.0), 10);
    let counts = world.counts(&sync).await;
    assert_eq!((counts.synced, counts.errored, counts.retries), (14, 2, 0));
    let errors = world.store.recent_errors(&sync.id, 10).await.expect("errors");
    let errored: HashSet<String> = errors.iter().map(|e| e.key.clone()).collect();
    assert_eq!(errored, bad);
    for e in &errors {
        assert_eq!(e.reason, "refused by the partner: malformed identifier");
    }
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn users_refused_one_by_one_are_errored_and_the_others_synced() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 1)).await;
    let sync = world.sync(Some("aud-1")).await;
    world.enter(&sync, "u", 10).await;
    world.partner.on_write(|_| {
        Ok(BatchOutcome {
            rejected: vec![RejectedUser { key: "u4".into(), reason: "not a hash".into() }],
            unattributed: Vec::new(),
            created: None,
        })
    });
    world.start();
    world.until_delivered(&sync, MINUTE).await;
    assert_eq!(world.partner.writes().len(), 1);
    let counts = world.counts(&sync).await;
    assert_eq!((counts.synced, counts.errored), (9, 1));
    let errors = world.store.recent_errors(&sync.id, 10).await.expect("errors");
    assert_eq!((errors[0].key.as_str(), errors[0].reason.as_str()), ("u4", "refused by the partner: not a hash"));
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn two_syncs_of_one_connection_take_turns() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 1)).await;
    let a = world.sync(Some("aud-a")).await;
    let b = world.sync(Some("aud-b")).await;
    world.enter(&a, "a", 30).await;
    world.enter(&b, "b", 30).await;
    world.start();
    world.until_delivered(&a, MINUTE).await;
    world.until_delivered(&b, MINUTE).await;
    let order: Vec<String> = world.partner.writes().iter().filter_map(|w| w.audience.clone()).collect();
    assert_eq!(order, ["aud-a", "aud-b", "aud-a", "aud-b", "aud-a", "aud-b"]);
    assert_paced(&times(&world.partner.writes()), interval(10.0), 10);
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_unknown_audience_is_found_once() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 3)).await;
    let sync = world.sync(None).await;
    world.enter(&sync, "u", 30).await;
    world.start();
    world.until_delivered(&sync, MINUTE).await;
    assert_eq!(world.partner.count(Call::UpsertAudience), 1, "one batch at a time until the audience is known");
    let writes = world.partner.writes();
    assert_eq!(writes.len(), 3);
    assert!(writes.iter().all(|w| w.audience.as_deref() == Some("aud-found")));
    let stored = world.store.sync(&sync.id).await.expect("sync");
    assert_eq!(stored.audience_id.as_deref(), Some("aud-found"));
    assert_eq!(world.counts(&sync).await.synced, 30);
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_401_refreshes_the_token_once_and_the_users_go_through() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 2)).await;
    let sync = world.sync(Some("aud-1")).await;
    world.enter(&sync, "u", 40).await;
    world.partner.on_write(|request| {
        if request.token == "token-1" {
            Err(fake::refusal(DestinationError::Unauthorized("token expired".into())))
        } else {
            ok()
        }
    });
    world.start();
    world.until_delivered(&sync, MINUTE).await;
    assert_eq!(world.partner.count(Call::Authorize), 1, "concurrent 401s refresh once");
    let requests = world.partner.requests();
    let refresh = requests.iter().position(|r| r.call == Call::Authorize).expect("a refresh");
    assert_eq!(requests[refresh].token, "refresh-1");
    // Only writes prepared before the refresh (at most one per concurrent request) carry the
    // old token; all later ones the new.
    let old = world.partner.writes().iter().filter(|w| w.token == "token-1").count();
    assert!((1..=2).contains(&old), "{old} writes with the old token");
    let last_old = requests.iter().rposition(|r| r.token == "token-1").unwrap_or(0);
    assert!(requests[last_old + 1..].iter().all(|r| r.token == "token-2"), "after the refresh, the new token");
    let connection = world.store.connection(&world.connection.id).await.expect("connection");
    assert_eq!(connection.health, Health::Ok);
    assert_eq!(connection.credentials_version, 2);
    let stored = decode_credentials(&connection.credentials).expect("credentials");
    assert_eq!(stored.access_token, "token-2");
    let counts = world.counts(&sync).await;
    assert_eq!((counts.synced, counts.errored), (40, 0));
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_401_on_the_fresh_token_parks_the_connection_until_a_person_reconnects() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 2)).await;
    let sync = world.sync(Some("aud-1")).await;
    world.enter(&sync, "u", 20).await;
    world.partner.on_write(|request| {
        if request.token == "token-3" {
            ok()
        } else {
            Err(fake::refusal(DestinationError::Unauthorized("token revoked".into())))
        }
    });
    world.start();
    let id = world.connection.id.clone();
    world
        .until(MINUTE, "the connection needs re-authorization", async |world: &World| {
            world.store.connection(&id).await.expect("connection").health == Health::NeedsReauthorization
        })
        .await;
    let connection = world.store.connection(&id).await.expect("connection");
    let reason = connection.last_error.unwrap_or_default();
    assert!(reason.contains("token revoked (even right after a token refresh)"), "{reason}");
    assert_eq!(world.partner.count(Call::Authorize), 1, "one refresh, not one per 401");
    // Parked: once the requests already under way are answered, nothing is sent, and the
    // users wait, pending.
    world.run_for(Duration::from_secs(1)).await;
    let sent = world.partner.writes().len();
    world.run_for(10 * MINUTE).await;
    assert_eq!(world.partner.writes().len(), sent, "a parked connection sends nothing");
    assert_eq!(world.partner.count(Call::Authorize), 1);
    let counts = world.counts(&sync).await;
    assert_eq!((counts.pending, counts.in_flight, counts.synced, counts.errored), (20, 0, 0, 0));
    // A person connects again: the lane resumes with the new token.
    world.engine.reconnect(&id, &fake::credentials("token-3", None)).await.expect("reconnect");
    world.until_delivered(&sync, MINUTE).await;
    assert_eq!(world.counts(&sync).await.synced, 20);
    assert!(world.partner.writes()[sent..].iter().all(|w| w.token == "token-3"));
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_paused_sync_sends_nothing() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 2)).await;
    let a = world.sync(Some("aud-a")).await;
    let b = world.sync(Some("aud-b")).await;
    world.engine.set_paused(&a.id, true).await.expect("pause");
    world.start();
    world.enter(&a, "a", 25).await;
    world.enter(&b, "b", 25).await;
    world.until_delivered(&b, MINUTE).await;
    world.run_for(10 * MINUTE).await; // well past every flush time and retry
    assert!(world.partner.writes().iter().all(|w| w.audience.as_deref() == Some("aud-b")));
    let counts = world.counts(&a).await;
    assert_eq!((counts.pending, counts.in_flight, counts.synced), (25, 0, 0));
    // With only the paused sync left with users, still nothing; resumed, it delivers.
    let sent = world.partner.writes().len();
    world.engine.set_paused(&b.id, true).await.expect("pause");
    world.run_for(MINUTE).await;
    assert_eq!(world.partner.writes().len(), sent);
    world.engine.set_paused(&a.id, false).await.expect("resume");
    world.until_delivered(&a, MINUTE).await;
    assert_eq!(world.counts(&a).await.synced, 25);
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_partial_batch_waits_for_its_flush_time() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 1)).await;
    let sync = world.sync(Some("aud-1")).await;
    world.start();
    world.run_for(Duration::from_secs(3)).await;
    world.enter(&sync, "u", 4).await;
    world.until_delivered(&sync, MINUTE).await;
    let writes = world.partner.writes();
    assert_eq!(writes.len(), 1);
    // Entered at 3 s, due 5 s later (the flush interval); the lane looks when it is due.
    assert_eq!(writes[0].at, Duration::from_secs(8));
    assert_eq!(writes[0].keys.len(), 4);
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_is_retried_after_a_backoff() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 1)).await;
    let sync = world.sync(Some("aud-1")).await;
    world.enter(&sync, "u", 10).await;
    let mut n = 0;
    world.partner.on_write(move |_| {
        n += 1;
        if n == 1 { Err(fake::refusal(DestinationError::Transient("503".into()))) } else { ok() }
    });
    world.start();
    world.until_delivered(&sync, MINUTE).await;
    let writes = world.partner.writes();
    // The first backoff is 0.5–1 s (1 s, half of it random), drawn once for the request: its
    // users come back together, as one batch, not as fragments.
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes[1].keys.len(), 10);
    let gap = writes[1].at - writes[0].at;
    assert!(
        gap >= Duration::from_millis(500) && gap <= Duration::from_secs(1) + interval(10.0),
        "retried {gap:?} after the failure"
    );
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_not_found_marks_the_sync_broken_until_a_delivery_succeeds() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 1)).await;
    let sync = world.sync(Some("aud-1")).await;
    world.enter(&sync, "u", 10).await;
    let mut n = 0;
    world.partner.on_write(move |_| {
        n += 1;
        if n == 1 { Err(fake::refusal(DestinationError::NotFound("audience aud-1".into()))) } else { ok() }
    });
    world.start();
    let id = sync.id.clone();
    world
        .until(MINUTE, "the sync is marked broken", async |world: &World| {
            world.store.sync(&id).await.expect("sync").status == SyncStatus::Broken
        })
        .await;
    let broken = world.store.sync(&sync.id).await.expect("sync");
    assert_eq!(
        broken.status_reason.as_deref(),
        Some("the partner says the account or audience is gone: audience aud-1")
    );
    world.until_delivered(&sync, MINUTE).await;
    let healed = world.store.sync(&sync.id).await.expect("sync");
    assert_eq!((healed.status, healed.status_reason), (SyncStatus::Active, None));
    assert_eq!(world.counts(&sync).await.synced, 10);
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_parks_the_connection() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 1)).await;
    let sync = world.sync(Some("aud-1")).await;
    world.enter(&sync, "u", 10).await;
    world.partner.on_write(|_| Err(fake::refusal(DestinationError::Unauthorized("token expired".into()))));
    world.partner.on_authorize(|_| Err(fake::refusal(DestinationError::InvalidRequest("invalid_grant".into()))));
    world.start();
    let id = world.connection.id.clone();
    world
        .until(MINUTE, "the connection needs re-authorization", async |world: &World| {
            world.store.connection(&id).await.expect("connection").health == Health::NeedsReauthorization
        })
        .await;
    let reason = world.store.connection(&id).await.expect("connection").last_error.unwrap_or_default();
    assert_eq!(reason, "token expired; refreshing the token failed: invalid request: invalid_grant");
    // The lane looks again after waiting for its request slot: once parked, nothing more is
    // sent and no second refresh is tried.
    world.run_for(10 * MINUTE).await;
    assert_eq!((world.partner.writes().len(), world.partner.count(Call::Authorize)), (1, 1));
    assert_eq!(world.counts(&sync).await.pending, 10);
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn an_audience_created_with_the_first_batch_is_remembered() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 2)).await;
    let sync = world.sync(None).await;
    world.enter(&sync, "u", 30).await;
    world.partner.on_upsert(|_| Ok(UpsertOutcome::CreateWithFirstBatch("created with the first batch".into())));
    world.partner.on_write(|request| {
        let created = request.audience.is_none().then(|| fake::audience("aud-new"));
        Ok(BatchOutcome { rejected: Vec::new(), unattributed: Vec::new(), created })
    });
    world.start();
    world.until_delivered(&sync, MINUTE).await;
    let writes = world.partner.writes();
    assert_eq!(writes.len(), 3);
    assert_eq!(writes[0].audience, None, "the first batch creates the audience");
    assert!(writes[1..].iter().all(|w| w.audience.as_deref() == Some("aud-new")), "the others write to it");
    assert_eq!(world.partner.count(Call::UpsertAudience), 1);
    assert_eq!(world.store.sync(&sync.id).await.expect("sync").audience_id.as_deref(), Some("aud-new"));
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn credentials_are_renewed_a_day_ahead_of_expiry_even_on_an_idle_connection() {
    let t0_s = (T0 / 1000) as u64;
    let mut creds = fake::credentials("token-1", Some("refresh-1"));
    creds.expires_at = Some(t0_s + 2 * 86_400);
    let world = World::with_credentials(EngineConfig::default(), limits(10, 10.0, 1), creds).await;
    world.partner.on_authorize(move |_| {
        let mut fresh = fake::credentials("token-2", Some("refresh-1"));
        fresh.expires_at = Some(t0_s + 32 * 86_400);
        Ok(fresh)
    });
    world.start();
    world.run_for(Duration::from_secs(3_600)).await;
    assert_eq!(world.partner.count(Call::Authorize), 0, "not yet: more than a day before expiry");
    world.run_for(Duration::from_secs(86_400)).await;
    assert_eq!(world.partner.count(Call::Authorize), 1, "renewed once, a day ahead");
    let stored = world.store.connection(&world.connection.id).await.unwrap();
    let stored = decode_credentials(&stored.credentials).unwrap();
    assert_eq!(stored.access_token, "token-2");
    world.run_for(Duration::from_secs(86_400)).await;
    assert_eq!(world.partner.count(Call::Authorize), 1, "the fresh token is not renewed again at once");
}

#[tokio::test(start_paused = true)]
async fn a_failed_renewal_is_shown_on_the_connection_and_retried_later_not_in_a_loop() {
    let t0_s = (T0 / 1000) as u64;
    let mut creds = fake::credentials("token-1", Some("refresh-1"));
    creds.expires_at = Some(t0_s + 3_600);
    let world = World::with_credentials(EngineConfig::default(), limits(10, 10.0, 1), creds).await;
    world.partner.on_authorize(|_| Err(fake::refusal(DestinationError::Transient("503".into()))));
    world.start();
    world.run_for(Duration::from_secs(1_800 + 60)).await;
    assert_eq!(world.partner.count(Call::Authorize), 1, "tried half way to expiry");
    let connection = world.store.connection(&world.connection.id).await.unwrap();
    assert_eq!(connection.health, audience_store::Health::Ok, "the old token still works");
    assert!(connection.last_error.unwrap_or_default().contains("renewing the credentials"), "shown on the connection");
    world.run_for(Duration::from_secs(10 * 60)).await;
    assert_eq!(world.partner.count(Call::Authorize), 1, "not retried before 15 minutes");
    world.run_for(Duration::from_secs(6 * 60)).await;
    assert_eq!(world.partner.count(Call::Authorize), 2, "retried after 15 minutes");
}

#[tokio::test(start_paused = true)]
async fn an_idle_lane_reads_nothing_until_told() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 1)).await;
    let sync = world.sync(Some("aud-1")).await;
    world.start();
    world.run_for(Duration::from_secs(2)).await;
    let settled = world.store.lane_reads();
    world.run_for(Duration::from_secs(3_600)).await;
    assert_eq!(world.store.lane_reads(), settled, "an idle connection costs memory only, no store reads");
    // Intake wakes it at once; the partial batch leaves at its flush time.
    world.enter(&sync, "u", 3).await;
    world.until_delivered(&sync, MINUTE).await;
    assert_eq!(world.partner.writes().len(), 1);
    let after = world.store.lane_reads();
    world.run_for(Duration::from_secs(3_600)).await;
    assert_eq!(world.store.lane_reads(), after);
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_sync_paused_while_its_batch_waits_for_a_slot_sends_nothing_from_that_moment() {
    // One request a second: b's batch is claimed and staged while a's request has the slot.
    let world = World::new(EngineConfig::default(), limits(10, 1.0, 2)).await;
    let a = world.sync(Some("aud-a")).await;
    let b = world.sync(Some("aud-b")).await;
    world.enter(&a, "a", 10).await;
    world.enter(&b, "b", 10).await;
    world.start();
    world.until(MINUTE, "a's batch sent", async |w: &World| w.partner.writes().len() == 1).await;
    let in_flight = world.counts(&b).await.in_flight;
    assert_eq!(in_flight, 10, "b's batch is claimed and waits for its slot");
    world.engine.set_paused(&b.id, true).await.expect("pause");
    world.run_for(10 * MINUTE).await;
    assert!(world.partner.writes().iter().all(|w| w.audience.as_deref() == Some("aud-a")));
    let counts = world.counts(&b).await;
    assert_eq!((counts.pending, counts.in_flight, counts.retries), (10, 0, 0), "back to pending, no retry counted");
    world.engine.set_paused(&b.id, false).await.expect("resume");
    world.until_delivered(&b, MINUTE).await;
    assert_eq!(world.counts(&b).await.synced, 10);
    world.stop().await;
}

#[tokio::test(start_paused = true)]
async fn broken_syncs_are_probed_once_per_backoff_and_leave_the_budget_to_a_healthy_one() {
    let world = World::new(EngineConfig::default(), limits(10, 10.0, 4)).await;
    let mut broken = Vec::new();
    for i in 0..6 {
        let sync = world.sync_named(None, &format!("broken-{i}")).await;
        world.enter(&sync, &format!("b{i}-"), 1_000).await;
        broken.push(sync);
    }
    let healthy = world.sync(Some("aud-ok")).await;
    world.enter(&healthy, "h", 4_000).await;
    world.partner.on_upsert(|_| Err(fake::refusal(DestinationError::Transient("lookup failed".into()))));
    world.start();
    world.until_delivered(&healthy, 10 * MINUTE).await;
    let requests = world.partner.requests();
    let healthy_writes = requests.iter().filter(|r| r.audience.as_deref() == Some("aud-ok")).count();
    assert_eq!(healthy_writes, 400);
    // At 10 requests a second, 400 batches take 40 s when the healthy sync has the token to
    // itself; the broken ones probe after 1, 2, 4, 8, 16, 32 s backoffs: 7 times each at most.
    let last = requests.iter().filter(|r| r.audience.as_deref() == Some("aud-ok")).map(|r| r.at).max().expect("writes");
    let lookups = requests.iter().filter(|r| r.call == Call::UpsertAudience).count();
    assert!(lookups <= 6 * 7, "{lookups} look-ups in {last:?}");
    assert!(
        healthy_writes * 100 / (healthy_writes + lookups) >= 85,
        "{healthy_writes} of {} requests",
        healthy_writes + lookups
    );
    // Without probing, each broken sync's backlog would be looked up batch after batch, at the
    // connection's rate: 600 look-ups beside the healthy sync's 400 writes.
    for sync in &broken {
        let counts = world.counts(sync).await;
        assert_eq!((counts.synced, counts.errored), (0, 0));
    }
    world.stop().await;
}
