//! A connection's delivery lane: one task per connection (one partner token) that takes
//! batches from the connection's syncs in turn and sends them within the connection's limits.
//!
//! Why per connection: partners count requests per token, so the rate limiter, the concurrency
//! cap and a 429's pause belong to the connection. Syncs sharing a token share its budget fairly
//! (least recently served first, see below), and a pause on one connection never stalls another.
//!
//! The lane holds no users: it claims a batch from the store only when a request slot is
//! free and no other claimed batch is waiting for the connection's pacing, so a batch is
//! formed as late as possible and is as full as the queue allows.
//!
//! Why event-driven: a platform runs thousands of connections, most of them idle. An idle
//! lane costs memory only: it sleeps until something tells it (intake, a person's change, a
//! lease pass) or until the one time it knows something becomes due (the earliest user due,
//! a failing sync's next probe, a renewal ahead of expiry), on the runtime's timer wheel.
//! It never polls the store on a period of its own.
//!
//! Fairness between the syncs of one connection: the least recently served sync with work
//! goes first, so a sync whose users just became due waits at most one request slot behind
//! another's backlog. A sync whose whole requests fail (its audience cannot be found, the
//! partner errs) is probed once per backoff interval rather than at the connection's rate,
//! and its retried users come back together as full batches.
//!
//! With several hosts on one database, a lane runs only on the host holding its lease (see
//! [`super::leases`]): every claim is fenced by that lease in the store, and the lane stops
//! claiming once its lease is too close to expiring for a batch to finish within it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use audience_store::{Connection, Health, QueuedUser, SyncRecord};
use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::app_pacing::AppPacer;
use super::clock::Clock;
use super::decide;
use super::destinations::{Destination, DestinationCalls, LaneDestination};
use super::hooks::LaneHooks;
use super::limiter::RateLimiter;
use super::send_gate::DeliveryHooks;
use super::{Shared, decode_credentials};
use audience_runtime::RequestHooks;
use audience_runtime::types::Credentials;

/// How long the lane waits before reading the store again after the store failed.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// The lane of one connection.
pub(crate) struct Lane {
    pub(super) shared: Arc<Shared>,
    pub(super) connection_id: String,
    /// The destination's name, settings and limits.
    pub(super) destination: LaneDestination,
    /// The destination's calls, paced and measured by this lane's hooks.
    pub(super) calls: Arc<dyn DestinationCalls>,
    /// The hooks that pace and fence this connection's requests: calls made for the API on
    /// this connection's behalf (checking a sync's target) go through them too.
    pub(super) hooks: Arc<dyn RequestHooks>,
    /// Where the lane reads the time it writes to the store.
    pub(super) clock: Clock,
    pub(super) limiter: Arc<RateLimiter>,
    /// The destination's application-wide pacing, when its limits declare one.
    pub(super) app: Option<Arc<AppPacer>>,
    pub(super) concurrency: Arc<Semaphore>,
    /// One permit: the claimed batch waiting for the connection's pacing (see
    /// [`super::send_gate`]).
    staging: Arc<Semaphore>,
    wake: Notify,
    /// Wakes [`Lane::run_checks`] when a submission is planned.
    pub(super) check_wake: Notify,
    pub(super) state: Mutex<LaneState>,
    /// Held while refreshing credentials, so concurrent 401s refresh once.
    pub(super) refresh: tokio::sync::Mutex<()>,
    /// Stops this lane alone (lease lost or handed over); a child of the engine's.
    pub(super) stop: CancellationToken,
    /// The lane's loop and its deliveries, so a handover waits for them before releasing.
    pub(super) tasks: TaskTracker,
    /// Until when this host holds the lane's lease; `None` without leases (one host).
    lease_until: Arc<Mutex<Option<Instant>>>,
}

/// What the lane knows about its connection and syncs (reloaded from the store regularly).
pub(crate) struct LaneState {
    /// Set when something changed: the next turn of the loop reads the store again.
    stale: bool,
    pub(super) creds: Option<Credentials>,
    pub(super) creds_version: i64,
    pub(super) health: Health,
    /// The credentials version a 401 made us refresh to; a 401 on it parks the lane.
    pub(super) refreshed_to: Option<i64>,
    /// After a failed renewal ahead of expiry: not before this time (seconds) again.
    pub(super) renew_retry_at: Option<u64>,
    /// When the credentials of this version are renewed (seconds; `None`: never), decided
    /// when the lane first saw them.
    pub(super) renew_at: Option<(i64, Option<u64>)>,
    /// Whether the credentials lapse soon, as last reported to the metrics.
    pub(super) lapsing: bool,
    pub(super) syncs: Vec<SyncRecord>,
    /// When each sync last got a batch (a serial number): the least recently served goes
    /// first.
    served: HashMap<String, u64>,
    serial: u64,
    /// Syncs whose whole requests failed, with their next probe (see [`decide::probe_hold`]).
    pub(super) probes: HashMap<String, decide::Probe>,
    /// Syncs whose audience is not known yet: one batch at a time, so it is created once.
    pub(super) resolving: HashSet<String>,
    /// Syncs whose audience the plugin creates with the first batch.
    pub(super) create_with_first_batch: HashSet<String>,
    /// Calls of the plugin that failed in a row, per sync (see [`super::degrade`]).
    pub(super) plugin_failures: HashMap<String, u32>,
    /// Submissions to ask the partner about, by (when, sync, request id): see [`super::checks`].
    pub(super) checks: BTreeMap<(i64, String, String), super::checks::PendingCheck>,
    /// Per sync, batches in flight plus submissions not finished, for
    /// `limits.max-submissions-per-audience`.
    pub(super) outstanding: HashMap<String, u32>,
}

impl Lane {
    pub(crate) fn new(shared: Arc<Shared>, connection: Connection, destination: Arc<Destination>) -> Arc<Self> {
        let mut lane_destination = destination.for_lane();
        lane_destination.deliveries =
            Some(shared.delivery_slots_for(destination.name(), destination.plugin.instance_share()));
        Self::with_destination(shared, connection, lane_destination, Clock::System)
    }

    /// A lane delivering through `destination`'s calls, reading the time from `clock`.
    pub(crate) fn with_destination(
        shared: Arc<Shared>,
        connection: Connection,
        destination: LaneDestination,
        clock: Clock,
    ) -> Arc<Self> {
        let limits = destination.limits;
        let limiter = shared.limiter_for(&connection.id, limits.requests_per_second);
        limiter.hold_for(Duration::from_secs(1));
        let lease_until = Arc::new(Mutex::new(None));
        let app = shared.app_pacer_for(&destination.name, &limits);
        let hooks = Arc::new(LaneHooks {
            limiter: limiter.clone(),
            api_share: Some(shared.api_share_for(&connection.id, limits.requests_per_second)),
            deliveries: Mutex::default(),
            app: app.clone(),
            lease_until: lease_until.clone(),
            metrics: shared.metrics.clone(),
            destination: destination.name.clone(),
            connection: connection.id.clone(),
            default_pause: shared.config.rate.default_pause,
        });
        let calls = destination.calls.with_hooks(hooks.clone(), shared.quota_for(&connection.id));
        let state = LaneState {
            creds: decode_credentials(&connection.credentials).ok(),
            creds_version: connection.credentials_version,
            health: connection.health,
            refreshed_to: None,
            renew_retry_at: None,
            renew_at: None,
            lapsing: false,
            syncs: Vec::new(),
            served: HashMap::new(),
            serial: 0,
            probes: HashMap::new(),
            resolving: HashSet::new(),
            create_with_first_batch: HashSet::new(),
            plugin_failures: HashMap::new(),
            checks: BTreeMap::new(),
            outstanding: HashMap::new(),
            stale: true,
        };
        Arc::new(Self {
            connection_id: connection.id,
            concurrency: Arc::new(Semaphore::new(limits.max_concurrent_requests as usize)),
            staging: Arc::new(Semaphore::new(1)),
            wake: Notify::new(),
            check_wake: Notify::new(),
            state: Mutex::new(state),
            refresh: tokio::sync::Mutex::new(()),
            stop: shared.cancel.child_token(),
            tasks: TaskTracker::new(),
            lease_until,
            shared,
            destination,
            calls,
            hooks,
            clock,
            limiter,
            app,
        })
    }

    /// Something changed: look at the store again now.
    pub(crate) fn wake(&self) {
        self.state.lock().stale = true;
        self.wake.notify_one();
    }

    /// Look for work again without reading the store's record of the connection: the lane's
    /// own record is up to date (a delivery finished, say).
    pub(crate) fn look_again(&self) {
        self.wake.notify_one();
    }

    /// New users for a sync the lane knows: look for a batch, without reading the
    /// connection again.
    pub(crate) fn nudge(&self, sync_id: &str) {
        let known = self.with_state(|s| s.syncs.iter().any(|x| x.id == sync_id));
        if known { self.wake.notify_one() } else { self.wake() }
    }

    /// A person paused, resumed or deleted a sync (`None`): the lane's record changes before
    /// the API answers, so no request of the sync leaves from then on (see
    /// [`super::send_gate`]).
    pub(crate) fn set_sync_status(&self, sync_id: &str, status: Option<audience_store::SyncStatus>) {
        self.with_state(|s| match status {
            Some(status) => {
                if let Some(sync) = s.syncs.iter_mut().find(|x| x.id == sync_id) {
                    sync.status = status;
                }
            }
            None => s.syncs.retain(|x| x.id != sync_id),
        });
        self.wake();
    }

    /// The hooks and calls of one delivery for `sync_id`, holding `staged` until its first
    /// request has a slot.
    pub(super) fn delivery_calls(
        self: &Arc<Self>,
        sync_id: &str,
        staged: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> (Arc<dyn DestinationCalls>, Arc<DeliveryHooks>) {
        let store = self.shared.config.lease.enabled.then(|| self.shared.store.clone());
        let hooks = Arc::new(DeliveryHooks::new(self.hooks.clone(), sync_id, self.clone(), store, staged));
        let calls = self.destination.calls.with_hooks(hooks.clone(), self.shared.quota_for(&self.connection_id));
        (calls, hooks)
    }

    /// One more batch of `sync` in flight or submitted.
    pub(super) fn hold(&self, sync_id: &str) {
        self.with_state(|s| *s.outstanding.entry(sync_id.to_string()).or_default() += 1);
    }

    /// One batch of `sync` finished (delivered, or its submission settled).
    pub(super) fn release(&self, sync_id: &str) {
        self.with_state(|s| {
            if let Some(n) = s.outstanding.get_mut(sync_id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    s.outstanding.remove(sync_id);
                }
            }
        });
    }

    /// The syncs the lane may not claim from now: those whose audience is being resolved,
    /// those at their limit of outstanding submissions, and failing syncs before their next
    /// probe.
    fn held(&self, s: &LaneState, now_ms: i64) -> HashSet<String> {
        let limit = self.destination.limits.max_submissions_per_audience;
        let mut held = s.resolving.clone();
        held.extend(s.probes.iter().filter(|(_, p)| p.holds_at(now_ms)).map(|(id, _)| id.clone()));
        held.extend(
            s.outstanding.iter().filter(|(_, n)| decide::at_submission_limit(**n, limit)).map(|(id, _)| id.clone()),
        );
        held
    }

    /// Record until when the lease is held (after an acquisition or a renewal).
    pub(crate) fn set_lease_until(&self, until: Instant) {
        *self.lease_until.lock() = Some(until);
    }

    /// Whether the lease leaves too little time for another batch to finish within it.
    fn lease_too_short(&self) -> bool {
        let Some(until) = *self.lease_until.lock() else {
            return false;
        };
        until.saturating_duration_since(Instant::now()) < self.shared.config.lease.ttl / 2
    }

    pub(super) fn with_state<R>(&self, f: impl FnOnce(&mut LaneState) -> R) -> R {
        f(&mut self.state.lock())
    }

    /// The lane's loop, until the engine shuts down.
    pub(crate) async fn run(self: Arc<Self>) {
        let cancel = self.stop.clone();
        while !cancel.is_cancelled() {
            if let Err(err) = self.reload_if_stale().await {
                tracing::warn!(connection = %self.connection_id, error = %err, "could not read the connection's state; retrying");
                self.with_state(|s| s.stale = true);
                self.idle(Some(STORE_RETRY)).await;
                continue;
            }
            // Before the parked check: a connection with no active sync is kept alive too.
            self.renew_if_due().await;
            if self.parked() {
                // Until a person acts (reconnects, resumes) or a renewal is due.
                let wait = self.until_ms(self.next_renewal_ms());
                self.idle(wait).await;
                continue;
            }
            if self.lease_too_short() {
                // The host's lane steward renews the lease or stops this lane.
                self.idle(Some(self.shared.config.lease.renew_every)).await;
                continue;
            }
            // Only a pause (a 429's Retry-After) holds the claim back. The spacing between
            // requests is applied where each request leaves (the http hook), so a batch is
            // claimed, decoded and its instance set up while it waits for its slot: waiting for
            // the slot first would add that set-up time to every interval and lose ~13% of the
            // partner's rate. One batch at most waits like this (the staging permit).
            tokio::select! {
                _ = self.limiter.wait_while_paused() => {}
                _ = cancel.cancelled() => break,
            }
            let permit = tokio::select! {
                permit = self.concurrency.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                _ = cancel.cancelled() => break,
            };
            let staged = tokio::select! {
                permit = self.staging.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                _ = cancel.cancelled() => break,
            };
            // A slot among the deliveries of every lane of the destination: thousands of
            // connections delivering at once must leave plugin instances to intake and to the
            // API (see `Shared::delivery_slots_for`). Taken in turn (first come, first served),
            // so connections share them fairly.
            let host_slot = match &self.destination.deliveries {
                Some(slots) => tokio::select! {
                    permit = slots.clone().acquire_owned() => match permit { Ok(p) => Some(p), Err(_) => break },
                    _ = cancel.cancelled() => break,
                },
                None => None,
            };
            // Waiting for the permits may have taken a whole request's time, in which a 401 may
            // have parked the connection or a person paused a sync: look again before claiming.
            if self.reload_if_stale().await.is_err() || self.parked() {
                continue;
            }
            match self.claim_next().await {
                Ok(Some((sync, batch))) => {
                    let lane = self.clone();
                    self.shared.tasks.spawn(self.tasks.track_future(async move {
                        lane.deliver(sync, batch, staged).await;
                        drop((permit, host_slot));
                    }));
                }
                Ok(None) => {
                    drop((permit, staged, host_slot));
                    let wait = self.time_to_next_due().await;
                    self.idle(wait).await;
                }
                Err(audience_store::StoreError::LeaseLost { .. }) => {
                    tracing::warn!(connection = %self.connection_id, "this host lost the lane's lease; stopping the lane");
                    self.shared.metrics.lane_event("lost");
                    self.stop.cancel();
                }
                Err(err) => {
                    drop((permit, staged, host_slot));
                    tracing::warn!(connection = %self.connection_id, error = %err, "could not claim a batch; retrying");
                    self.idle(Some(STORE_RETRY)).await;
                }
            }
        }
    }

    /// Sleep until woken, or for `wait` when given: an idle lane with nothing due holds no
    /// timer at all.
    async fn idle(&self, wait: Option<Duration>) {
        let sleep = async {
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = self.wake.notified() => {}
            _ = self.stop.cancelled() => {}
        }
    }

    /// The wait from now until `at_ms`, if any (at least 10 ms).
    fn until_ms(&self, at_ms: Option<i64>) -> Option<Duration> {
        decide::next_wake(at_ms, self.clock.now_ms())
    }

    /// Whether the lane must not send: credentials need a person, or nothing is active.
    fn parked(&self) -> bool {
        self.with_state(|s| decide::parked(s.health, s.creds.is_some(), &s.syncs))
    }

    pub(super) async fn reload_if_stale(&self) -> Result<(), audience_store::StoreError> {
        let stale = self.with_state(|s| std::mem::take(&mut s.stale));
        if !stale {
            return Ok(());
        }
        let store = &self.shared.store;
        let (connection, syncs) = match store.connection(&self.connection_id).await {
            Ok(connection) => {
                let syncs = store.syncs_of_connection(&self.connection_id).await?;
                (Some(connection), syncs)
            }
            Err(audience_store::StoreError::NotFound { .. }) => (None, Vec::new()),
            Err(err) => return Err(err),
        };
        self.with_state(|s| {
            match connection {
                Some(connection) => {
                    if connection.credentials_version != s.creds_version || s.creds.is_none() {
                        s.creds = decode_credentials(&connection.credentials).ok();
                        s.creds_version = connection.credentials_version;
                    }
                    s.health = connection.health;
                }
                None => s.creds = None,
            }
            let ids: HashSet<&str> = syncs.iter().map(|x| x.id.as_str()).collect();
            s.served.retain(|id, _| ids.contains(id.as_str()));
            s.probes.retain(|id, _| ids.contains(id.as_str()));
            s.syncs = syncs;
        });
        Ok(())
    }

    /// Claim the next ready batch, visiting the syncs least recently served first.
    async fn claim_next(&self) -> Result<Option<(SyncRecord, Vec<QueuedUser>)>, audience_store::StoreError> {
        let now = self.clock.now_ms();
        let order = self.with_state(|s| decide::claim_order(&s.syncs, &self.held(s, now), &s.served));
        let retry = &self.shared.config.retry;
        for sync in order {
            let lane_owner = self.shared.config.lease.enabled.then(|| self.shared.host_id.clone());
            let claim = decide::claim(self.clock.now_ms(), self.destination.limits.max_batch_size, retry, lane_owner);
            let batch = self.shared.store.claim_batch(&sync.id, claim).await?;
            if !batch.is_empty() {
                self.with_state(|s| {
                    s.serial += 1;
                    s.served.insert(sync.id.clone(), s.serial);
                    if sync.audience_id.is_none() {
                        s.resolving.insert(sync.id.clone());
                    }
                });
                self.hold(&sync.id);
                return Ok(Some((sync, batch)));
            }
        }
        Ok(None)
    }

    /// How long until something may become claimable without anyone saying so: the earliest
    /// user due among the syncs that may claim, the end of a failing sync's probe hold, or a
    /// renewal ahead of expiry. `None`: nothing is due; only a wake starts the lane again.
    async fn time_to_next_due(&self) -> Option<Duration> {
        let now = self.clock.now_ms();
        let (ids, probe_at) = self.with_state(|s| {
            let held = self.held(s, now);
            let ids: Vec<String> =
                s.syncs.iter().filter(|sync| decide::claimable(sync, &held)).map(|sync| sync.id.clone()).collect();
            (ids, decide::next_probe(&s.syncs, &s.probes, now))
        });
        let next_due = if ids.is_empty() {
            None
        } else {
            match self.shared.store.next_due(&ids).await {
                Ok(due) => due,
                Err(err) => {
                    tracing::warn!(connection = %self.connection_id, error = %err, "could not read when the next user is due; looking again shortly");
                    Some(now + STORE_RETRY.as_millis() as i64)
                }
            }
        };
        let soonest = [next_due, probe_at, self.next_renewal_ms()].into_iter().flatten().min();
        self.until_ms(soonest)
    }
}

impl super::send_gate::SyncSendable for Lane {
    fn sendable(&self, sync_id: &str) -> bool {
        self.with_state(|s| s.syncs.iter().any(|x| x.id == sync_id && x.status != audience_store::SyncStatus::Paused))
    }
}

#[cfg(test)]
mod tests;
