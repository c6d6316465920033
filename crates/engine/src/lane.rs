//! A connection's delivery lane: one task per connection (one partner token) that takes
//! batches from the connection's syncs in turn and sends them within the connection's limits.
//!
//! Why per connection: partners count requests per token, so the rate limiter, the concurrency
//! cap and a 429's pause belong to the connection. Syncs sharing a token share its budget fairly
//! (round-robin), and a pause on one connection never stalls another.
//!
//! The lane holds no users: it claims a batch from the store only when a request slot is
//! free, so a batch is formed as late as possible and is as full as the queue allows.
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
use super::{Shared, decode_credentials};
use audience_runtime::RequestHooks;
use audience_runtime::types::Credentials;

/// Longest the lane sleeps without looking at the store again (new syncs, expired users).
const IDLE_POLL: Duration = Duration::from_secs(1);

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
    rr: usize,
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
    loaded_at: Option<Instant>,
}

impl Lane {
    pub(crate) fn new(shared: Arc<Shared>, connection: Connection, destination: Arc<Destination>) -> Arc<Self> {
        Self::with_destination(shared, connection, destination.for_lane(), Clock::System)
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
            rr: 0,
            resolving: HashSet::new(),
            create_with_first_batch: HashSet::new(),
            plugin_failures: HashMap::new(),
            checks: BTreeMap::new(),
            outstanding: HashMap::new(),
            loaded_at: None,
        };
        Arc::new(Self {
            connection_id: connection.id,
            concurrency: Arc::new(Semaphore::new(limits.max_concurrent_requests as usize)),
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

    /// Something changed: look at the store again soon.
    pub(crate) fn wake(&self) {
        self.state.lock().loaded_at = None;
        self.wake.notify_one();
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

    /// The syncs the lane may not claim from now: those whose audience is being resolved, and
    /// those at their limit of outstanding submissions.
    fn held(&self, s: &LaneState) -> HashSet<String> {
        let limit = self.destination.limits.max_submissions_per_audience;
        let mut held = s.resolving.clone();
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
                self.idle(IDLE_POLL).await;
                continue;
            }
            // Before the parked check: a connection with no active sync is kept alive too.
            self.renew_if_due().await;
            if self.parked() {
                self.idle(IDLE_POLL).await;
                continue;
            }
            if self.lease_too_short() {
                // The host's lane steward renews the lease or stops this lane.
                self.idle(self.shared.config.lease.renew_every.min(IDLE_POLL)).await;
                continue;
            }
            // Only a pause (a 429's Retry-After) holds the claim back. The spacing between
            // requests is applied where each request leaves (the http hook), so a batch is
            // claimed, decoded and its instance set up while it waits for its slot: waiting for
            // the slot first would add that set-up time to every interval and lose ~13% of the
            // partner's rate. At most `max-concurrent-requests` batches wait like this.
            tokio::select! {
                _ = self.limiter.wait_while_paused() => {}
                _ = cancel.cancelled() => break,
            }
            let permit = tokio::select! {
                permit = self.concurrency.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                _ = cancel.cancelled() => break,
            };
            // Waiting for the permit may have taken a whole request's time, in which a 401 may
            // have parked the connection or a person paused a sync: look again before claiming.
            if self.reload_if_stale().await.is_err() || self.parked() {
                drop(permit);
                continue;
            }
            match self.claim_next().await {
                Ok(Some((sync, batch))) => {
                    let lane = self.clone();
                    self.shared.tasks.spawn(self.tasks.track_future(async move {
                        lane.deliver(sync, batch).await;
                        drop(permit);
                    }));
                }
                Ok(None) => {
                    drop(permit);
                    let wait = self.time_to_next_due().await;
                    self.idle(wait).await;
                }
                Err(audience_store::StoreError::LeaseLost { .. }) => {
                    drop(permit);
                    tracing::warn!(connection = %self.connection_id, "this host lost the lane's lease; stopping the lane");
                    self.shared.metrics.lane_event("lost");
                    self.stop.cancel();
                }
                Err(err) => {
                    drop(permit);
                    tracing::warn!(connection = %self.connection_id, error = %err, "could not claim a batch; retrying");
                    self.idle(IDLE_POLL).await;
                }
            }
        }
    }

    async fn idle(&self, wait: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = self.wake.notified() => {}
            _ = self.stop.cancelled() => {}
        }
    }

    /// Whether the lane must not send: credentials need a person, or nothing is active.
    fn parked(&self) -> bool {
        self.with_state(|s| decide::parked(s.health, s.creds.is_some(), &s.syncs))
    }

    async fn reload_if_stale(&self) -> Result<(), audience_store::StoreError> {
        let stale = self.with_state(|s| s.loaded_at.is_none_or(|t| t.elapsed() >= IDLE_POLL));
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
            s.syncs = syncs;
            s.loaded_at = Some(Instant::now());
        });
        Ok(())
    }

    /// Claim the next ready batch, visiting the syncs round-robin.
    async fn claim_next(&self) -> Result<Option<(SyncRecord, Vec<QueuedUser>)>, audience_store::StoreError> {
        let order = self.with_state(|s| decide::claim_order(&s.syncs, &self.held(s), s.rr));
        let retry = &self.shared.config.retry;
        for (sync, next_rr) in order {
            let lane_owner = self.shared.config.lease.enabled.then(|| self.shared.host_id.clone());
            let claim = decide::claim(self.clock.now_ms(), self.destination.limits.max_batch_size, retry, lane_owner);
            let batch = self.shared.store.claim_batch(&sync.id, claim).await?;
            if !batch.is_empty() {
                self.with_state(|s| {
                    s.rr = next_rr;
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

    async fn time_to_next_due(&self) -> Duration {
        let ids: Vec<String> = self.with_state(|s| {
            let held = self.held(s);
            s.syncs.iter().filter(|sync| decide::claimable(sync, &held)).map(|sync| sync.id.clone()).collect()
        });
        let next_due = self.shared.store.next_due(&ids).await.ok().flatten();
        decide::idle_wait(next_due, self.clock.now_ms(), IDLE_POLL)
    }
}

#[cfg(test)]
mod tests;
