//! The sync engine: what happens between "these users entered this sync" and "the partner has
//! them".
//!
//! The path of a user: [`Engine::enter`] validates the call, asks the destination plugin to
//! prepare the users (normalise, hash, decide who cannot be matched) and commits them durably
//! before answering. Each connection (one partner token) has a *lane*: a task that claims
//! batches from its syncs in turn, paces the partner requests with the connection's rate
//! limiter, and hands each batch to the plugin. What the partner answers decides each user's
//! fate — synced, errored, or back in the queue for a retry — and that fate and the counters
//! it moves are written in one transaction.
//!
//! Nothing here keeps users in memory beyond the batches in flight: the queue lives in the
//! store, so a backlog of millions costs disk, not RAM, and a crash loses nothing (users that
//! were in flight are pending again at the next start).
//!
//! What it must not know: HTTP routes, status codes or the CLI (the API crate maps
//! [`EngineError`] to answers), or how a plugin is sandboxed (the runtime crate's job). Every
//! state change a person makes (pause, delete, reconnect, disconnect) goes through [`Engine`],
//! so the lane concerned hears of it at once.

mod app_pacing;
mod audience_status;
mod checks;
mod clock;
mod config;
mod credentials;
mod decide;
mod degrade;
mod deliver;
mod destinations;
mod error;
mod hooks;
mod intake;
mod lane;
mod leases;
mod limiter;
mod metrics;
pub mod oauth;
pub mod payload;
mod purge;
mod renew;
mod send_gate;
mod syncs;
#[cfg(test)]
mod testing;
mod unauthorized;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use audience_store::{Counts, Redriven, Removals, Store, SyncRecord};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use audience_status::{AudienceStatus, REFRESH_AFTER};
pub use config::{BatchConfig, EngineConfig, IntakeConfig, LeaseConfig, LedgerConfig, RateConfig, RetryPolicy};
pub use destinations::{Destination, Destinations, LimitOverrides, ManifestCaps, effective_limits};
pub use error::{EngineError, Problem, retry_after_secs};
pub use hooks::PacedPlugin;
pub use intake::{IdentifierInput, IntakeReport, MAX_PROBLEMS, NotSyncedUser, UserInput, check_users};
pub use limiter::RateLimiter;
pub use metrics::{
    ExportedMetric, MAX_LOGGED_TEXT_BYTES, Metrics, MetricsConfig, MetricsDetail, PLUGIN_FAILURE_KINDS,
    PLUGIN_FAILURE_LOG_EVERY, plugin_failure_kind,
};
pub use purge::{PURGE_CHUNK_ROWS, PURGE_CHUNK_TARGET};
pub use syncs::SyncRequest;

use audience_runtime::types::{Credentials, Limits};
use lane::Lane;

pub(crate) use audience_model::now_ms;

pub use credentials::{decode_credentials, encode_credentials};
pub use decide::lapses_at;

/// The contract's audience spec of a sync's settings: what `check-target` and
/// `upsert-audience` are asked about. `picked_id` is an existing audience the user chose.
pub fn audience_spec(
    audience: &audience_store::AudienceConfig,
    match_fields: &[audience_store::IdentifierKind],
    picked_id: Option<&str>,
) -> audience_runtime::types::AudienceSpec {
    audience_runtime::types::AudienceSpec {
        id: picked_id.map(String::from),
        name: audience.name.clone(),
        identifiers: match_fields.iter().map(|kind| kind.name().to_string()).collect(),
        description: audience.description.clone(),
        create_if_missing: audience.create_if_missing,
    }
}

/// The sync engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) destinations: Destinations,
    pub(crate) config: EngineConfig,
    pub(crate) metrics: Metrics,
    lanes: Mutex<HashMap<String, Arc<Lane>>>,
    /// This run of the host, as the lane leases know it.
    pub(crate) host_id: String,
    /// Asks the lane steward for a pass now (new work for a connection with no local lane).
    steward: tokio::sync::Notify,
    /// The connections the steward saw at its last pass (each has a lane on some host, or
    /// gets one at the next pass): intake for them needs no extra pass.
    known_lanes: Mutex<std::collections::HashSet<String>>,
    pub(crate) cancel: CancellationToken,
    pub(crate) tasks: TaskTracker,
    /// The partners' last readings of the syncs' audiences.
    pub(crate) audience_status: audience_status::AudienceStatusCache,
    /// Each connection's request pacing, shared by its lane and by the calls made for the API
    /// on its behalf (checking a sync's target, listing accounts, searching audiences): the
    /// partner counts requests per token, whoever sends them.
    pub(crate) limiters: Mutex<HashMap<String, Arc<RateLimiter>>>,
    /// Each connection's share of the plugin instances, shared by its lane, its intake and the
    /// calls made for the API on its behalf (see `engine.caps.instances_per_connection`).
    quotas: Mutex<HashMap<String, audience_runtime::InstanceQuota>>,
    /// Each destination's application-wide pacing, when its limits declare one (see
    /// [`app_pacing`]).
    app_pacers: Mutex<HashMap<String, Arc<app_pacing::AppPacer>>>,
    /// Removes deleted syncs' rows in the background (see [`purge`]).
    purger: Arc<purge::Purger>,
    /// Each destination's slots for deliveries on this host (see [`Self::delivery_slots_for`]).
    delivery_slots: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

impl Shared {
    /// The pacing of `connection_id`'s requests at `rps`.
    pub(crate) fn limiter_for(&self, connection_id: &str, rps: f64) -> Arc<RateLimiter> {
        self.limiters
            .lock()
            .entry(connection_id.to_string())
            .or_insert_with(|| Arc::new(RateLimiter::new(rps, self.config.rate.guard)))
            .clone()
    }

    /// The deliveries `destination`'s lanes on this host may have under way at once, for a
    /// plugin that may hold `share` instances: three quarters of them (all of a share below 4).
    ///
    /// Why: each delivery holds an instance while its request waits for its connection's turn
    /// and for the partner. With thousands of connections delivering at once they would hold
    /// every instance of the plugin's share, and intake (which prepares users in the plugin)
    /// and the API's calls would queue behind them until they time out (`host_busy`). The
    /// quarter left over is theirs.
    pub(crate) fn delivery_slots_for(&self, destination: &str, share: usize) -> Arc<tokio::sync::Semaphore> {
        self.delivery_slots
            .lock()
            .entry(destination.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(decide::delivery_slots(share))))
            .clone()
    }

    /// The pacing of the calls made for the API on `connection_id`'s behalf: the connection's
    /// rate `rps` times `engine.rate.api_share` (see [`RateConfig::api_share`]).
    pub(crate) fn api_share_for(&self, connection_id: &str, rps: f64) -> Arc<RateLimiter> {
        let share = self.config.rate.api_share;
        self.limiters
            .lock()
            .entry(format!("api-share:{connection_id}"))
            .or_insert_with(|| Arc::new(RateLimiter::new(rps * share, self.config.rate.guard)))
            .clone()
    }

    /// The application-wide pacing of `destination`'s requests, when `limits` declare one.
    pub(crate) fn app_pacer_for(&self, destination: &str, limits: &Limits) -> Option<Arc<app_pacing::AppPacer>> {
        let rps = limits.app_requests_per_second?;
        let shared = self.config.lease.enabled.then(|| self.store.clone());
        Some(
            self.app_pacers
                .lock()
                .entry(destination.to_string())
                .or_insert_with(|| {
                    Arc::new(app_pacing::AppPacer::new(destination, rps, self.config.rate.guard, shared))
                })
                .clone(),
        )
    }

    /// The instances `connection_id`'s calls may hold at once.
    pub(crate) fn quota_for(&self, connection_id: &str) -> audience_runtime::InstanceQuota {
        self.quotas
            .lock()
            .entry(connection_id.to_string())
            .or_insert_with(|| audience_runtime::InstanceQuota::new(self.config.caps.instances_per_connection as usize))
            .clone()
    }
}

impl Engine {
    /// An engine over `store`, delivering through `destinations`. Call [`Engine::start`] to
    /// begin delivering.
    pub fn new(store: Arc<dyn Store>, destinations: Destinations, config: EngineConfig) -> Self {
        let detail = config.metrics.detail;
        let shared = Shared {
            store,
            destinations,
            config,
            metrics: Metrics::with_detail(detail),
            lanes: Mutex::new(HashMap::new()),
            host_id: leases::new_host_id(),
            steward: tokio::sync::Notify::new(),
            known_lanes: Mutex::new(std::collections::HashSet::new()),
            cancel: CancellationToken::new(),
            tasks: TaskTracker::new(),
            audience_status: audience_status::AudienceStatusCache::default(),
            limiters: Mutex::new(HashMap::new()),
            quotas: Mutex::new(HashMap::new()),
            app_pacers: Mutex::new(HashMap::new()),
            purger: Arc::default(),
            delivery_slots: Mutex::new(HashMap::new()),
        };
        Self { shared: Arc::new(shared) }
    }

    /// `destination`'s plugin with its requests paced as `connection_id`'s (through the
    /// connection's lane when this host runs it, else by the connection's limiter alone), for
    /// one call made on a person's behalf: it shares the token's rate with delivery, and a
    /// request whose turn is more than `engine.rate.api_max_wait` away is not sent (see
    /// [`PacedPlugin::paced_out`]). A call that reads (accounts, audiences) is also held to the
    /// API's share of a delivering connection's rate (`engine.rate.api_share`); see
    /// [`Self::paced_plugin_for_change`] for a person's change.
    pub fn paced_plugin(&self, connection_id: &str, destination: &Destination) -> PacedPlugin {
        self.paced_plugin_with(connection_id, destination, true)
    }

    /// As [`Self::paced_plugin`], for a call a person's change needs (a new sync's check, an
    /// OAuth exchange that re-authorizes): rare, so not held to the API's share, where people
    /// reading in a loop could hold it for as long as they keep reading. It still shares the
    /// connection's turns with delivery and waits at most `engine.rate.api_max_wait`.
    pub fn paced_plugin_for_change(&self, connection_id: &str, destination: &Destination) -> PacedPlugin {
        self.paced_plugin_with(connection_id, destination, false)
    }

    fn paced_plugin_with(&self, connection_id: &str, destination: &Destination, within_share: bool) -> PacedPlugin {
        let call = hooks::ApiCall::new(self.shared.config.rate.api_max_wait, within_share);
        let hooks = hooks::api_hooks(&self.shared, connection_id, destination.name(), destination.limits, call.clone());
        PacedPlugin::new(destination.plugin.with_hooks(hooks).with_quota(self.shared.quota_for(connection_id)), call)
    }

    /// `destination`'s plugin for exchanging an OAuth code: paced as the connection it
    /// re-authorizes, or — for a connection not made yet — by the destination's exchanges
    /// (see `hooks::oauth_hooks`), with the same bound on the wait as [`Self::paced_plugin`].
    pub fn oauth_plugin(&self, destination: &Destination, connection_id: Option<&str>) -> PacedPlugin {
        if let Some(connection_id) = connection_id {
            return self.paced_plugin_for_change(connection_id, destination);
        }
        let call = hooks::ApiCall::new(self.shared.config.rate.api_max_wait, false);
        let hooks = hooks::oauth_hooks(&self.shared, destination.name(), destination.limits, call.clone());
        PacedPlugin::new(destination.plugin.with_hooks(hooks), call)
    }

    /// Recover from a previous run (users that were in flight are pending again) and start a
    /// lane for every connection that has syncs.
    ///
    /// With leases on (several hosts on one database), nothing is recovered globally: another
    /// live host may have those users in flight. Instead the lane steward takes this host's
    /// share of the lanes, and each lane taken over recovers its own connection's users.
    pub async fn start(&self) -> Result<(), EngineError> {
        let (purger, store, cancel) =
            (self.shared.purger.clone(), self.shared.store.clone(), self.shared.cancel.clone());
        let rate = self.shared.config.rate.problems();
        if !rate.is_empty() {
            return Err(EngineError::Invalid(rate.into_iter().map(|p| Problem::new("engine.rate", p)).collect()));
        }
        let retention = self.shared.config.ledger.errored_retention;
        self.shared.tasks.spawn(async move { purger.run(store, retention, cancel).await });
        let lease = &self.shared.config.lease;
        if lease.enabled {
            let problems = lease.problems();
            if !problems.is_empty() {
                return Err(EngineError::Invalid(
                    problems.into_iter().map(|p| Problem::new("engine.lease", p)).collect(),
                ));
            }
            self.listen_to_other_hosts();
            leases::Steward::new(self.clone()).start().await?;
            return Ok(());
        }
        let recovered = self.shared.store.recover_in_flight(now_ms()).await?;
        if recovered > 0 {
            tracing::info!(users = recovered, "users that were in flight at the last stop are pending again");
        }
        let mut connections: Vec<String> =
            self.shared.store.all_syncs().await?.into_iter().map(|s| s.connection_id).collect();
        connections.sort();
        connections.dedup();
        for connection in connections {
            match self.ensure_lane(&connection).await {
                Ok(_) => {}
                // Its plugin is not loaded here (left out at start, or not configured): the
                // connection's users stay queued until a host that has it runs its lane.
                Err(EngineError::UnknownDestination(destination)) => {
                    tracing::warn!(connection = %connection, destination = %destination, "no plugin for this connection's destination; its users wait");
                }
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    /// Several hosts: wake the local lane of every connection another host announces news
    /// for (intake, a person's change), and every local lane when announcements were missed.
    fn listen_to_other_hosts(&self) {
        let Some(mut announcements) = self.shared.store.announcements() else { return };
        let shared = self.shared.clone();
        self.shared.tasks.spawn(async move {
            loop {
                let announcement = tokio::select! {
                    a = announcements.recv() => match a { Some(a) => a, None => break },
                    _ = shared.cancel.cancelled() => break,
                };
                match announcement {
                    audience_store::Announcement::Connection(id) => {
                        let lane = shared.lanes.lock().get(&id).cloned();
                        match lane {
                            Some(lane) => lane.wake(),
                            None if !shared.known_lanes.lock().contains(&id) => shared.steward.notify_one(),
                            None => {}
                        }
                    }
                    audience_store::Announcement::Missed => {
                        let lanes: Vec<Arc<Lane>> = shared.lanes.lock().values().cloned().collect();
                        lanes.iter().for_each(|lane| lane.wake());
                    }
                }
            }
        });
    }

    /// Several hosts: tell the host running `connection_id`'s lane (when not this one).
    async fn announce(&self, connection_id: &str) {
        if !self.shared.config.lease.enabled || self.shared.lanes.lock().contains_key(connection_id) {
            return;
        }
        if let Err(err) = self.shared.store.announce(connection_id).await {
            // The lane hears of it at the latest when its host's listener reconnects, or
            // from the lease steward's next takeover; the change itself is stored.
            tracing::warn!(connection = %connection_id, error = %err, "could not announce news to the host running the connection's lane");
        }
    }

    /// Stop the lanes and wait for the batches in flight to be recorded.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }

    /// The store this engine works on.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The destinations this engine delivers to.
    pub fn destinations(&self) -> &Destinations {
        &self.shared.destinations
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.shared.config
    }

    /// The in-process metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// A sync's counters.
    pub async fn counts(&self, sync_id: &str) -> Result<Counts, EngineError> {
        Ok(self.shared.store.counts(sync_id).await?)
    }

    /// Every metric in Prometheus text format: the store's durable figures, summed per
    /// destination (see [`MetricsDetail`]), and this process's request figures. One store read
    /// whatever the number of syncs (two at [`MetricsDetail::Sync`]).
    pub async fn render_metrics(&self) -> Result<String, EngineError> {
        let detail = self.shared.config.metrics.detail;
        let mut text = metrics::render_store_figures(self.shared.store.as_ref(), detail, now_ms()).await?;
        let dropped: Vec<(String, u64)> = self
            .shared
            .destinations
            .names()
            .into_iter()
            .filter_map(|name| self.shared.destinations.get(&name).map(|d| (name, d.plugin.log_lines_dropped())))
            .collect();
        text.push_str(&metrics::render_plugin_figures(&dropped));
        text.push_str(&self.shared.metrics.render());
        Ok(text)
    }

    /// Replace a connection's credentials after a person connected again; its lane resumes.
    pub async fn reconnect(&self, connection_id: &str, creds: &Credentials) -> Result<(), EngineError> {
        self.shared.store.update_credentials(connection_id, &encode_credentials(creds)).await?;
        self.wake(connection_id).await;
        self.announce(connection_id).await;
        Ok(())
    }

    /// Pause or resume a sync. A paused sync accepts users but sends nothing.
    pub async fn set_paused(&self, sync_id: &str, paused: bool) -> Result<SyncRecord, EngineError> {
        let store = &self.shared.store;
        let sync = store.sync(sync_id).await?;
        let status = if paused { audience_store::SyncStatus::Paused } else { audience_store::SyncStatus::Active };
        let reason = paused.then_some("paused by a person");
        store.set_sync_status(sync_id, status, reason).await?;
        // Before answering: from now on no request of a paused sync leaves (see `send_gate`).
        if let Some(lane) = self.shared.lanes.lock().get(&sync.connection_id) {
            lane.set_sync_status(sync_id, Some(status));
        }
        self.announce(&sync.connection_id).await;
        Ok(store.sync(sync_id).await?)
    }

    /// Delete a sync and its queue: the sync is gone when this returns, whatever its backlog;
    /// its rows are removed in the background, a chunk at a time (see [`purge`]).
    pub async fn delete_sync(&self, sync_id: &str) -> Result<(), EngineError> {
        let sync = self.shared.store.sync(sync_id).await?;
        // The lane stops sending for it first, then the store forgets it.
        if let Some(lane) = self.shared.lanes.lock().get(&sync.connection_id) {
            lane.set_sync_status(sync_id, None);
        }
        self.shared.store.delete_sync(sync_id).await?;
        self.shared.purger.wake();
        self.wake(&sync.connection_id).await;
        self.announce(&sync.connection_id).await;
        Ok(())
    }

    /// Re-drive users of a sync (after a partner incident or a fixed token): synced or errored
    /// users (all errored ones, or those of `keys`) are pending again with a fresh retry window
    /// and due now, and the sync's lane is woken. All errored users are re-driven a chunk of
    /// [`audience_store::EXPIRE_CHUNK`] per store transaction, so other writers get the store
    /// in between; at most as many chunks as the sync had errored users when it started.
    pub async fn redrive(&self, sync: &SyncRecord, which: audience_store::Redrive) -> Result<Redriven, EngineError> {
        let store = &self.shared.store;
        let mut total = Redriven::default();
        let mut chunks_left = store.counts(&sync.id).await?.errored / u64::from(audience_store::EXPIRE_CHUNK) + 1;
        loop {
            let done = store.redrive(&sync.id, which.clone(), now_ms(), audience_store::EXPIRE_CHUNK).await?;
            (total.users, total.skipped) = (total.users + done.users, total.skipped + done.skipped);
            chunks_left = chunks_left.saturating_sub(1);
            if !done.more || chunks_left == 0 {
                total.more = done.more;
                break;
            }
            tokio::task::yield_now().await;
        }
        if total.users > 0 {
            tracing::info!(sync = %sync.id, users = total.users, "users re-driven");
            self.work_arrived(&sync.connection_id, &sync.id).await?;
        }
        Ok(total)
    }

    /// Remove users of a sync that adds users from its audience, by key: the host sends the
    /// partner's remove call with what it sent when it added them (nothing else is needed), in
    /// batches of their own that go before the sync's adds, paced like every request. A user
    /// still being added is removed right after that delivery. Keys the ledger cannot remove
    /// come back with the reason. `Invalid` for a sync that removes users (enter the users
    /// into it instead), no keys, or more than the intake's limit of a call.
    pub async fn remove_users(&self, sync: &SyncRecord, keys: Vec<String>) -> Result<Removals, EngineError> {
        let max = self.shared.config.intake.max_users_per_call;
        let problem = |field: &str, message: String| EngineError::Invalid(vec![Problem::new(field, message)]);
        if sync.action == audience_store::SyncAction::Remove {
            return Err(problem(
                "sync",
                "this sync removes users already: enter the users into it (POST /v1/syncs/{id}/users)".into(),
            ));
        }
        let removes = self
            .shared
            .destinations
            .get(&sync.destination)
            .is_some_and(|d| d.plugin.manifest().features.contains(audience_runtime::types::Features::REMOVAL));
        if !removes {
            return Err(problem("sync", format!("{} does not support removing users", sync.destination)));
        }
        if keys.is_empty() || keys.len() > max {
            return Err(problem("keys", format!("give 1 to {max} keys of users of this sync; got {}", keys.len())));
        }
        if let Some(i) = keys.iter().position(|k| k.trim().is_empty()) {
            return Err(problem(&format!("keys[{i}]"), "blank; give the key the user entered with".into()));
        }
        let flush_ms = self.shared.config.batch.flush_interval.as_millis() as i64;
        let done = self.shared.store.remove_members(&sync.id, &keys, now_ms(), flush_ms).await?;
        if done.removing > 0 {
            tracing::info!(sync = %sync.id, users = done.removing, "users' removal asked");
            self.work_arrived(&sync.connection_id, &sync.id).await?;
        }
        Ok(done)
    }

    /// Disconnect: delete the connection (the store refuses while syncs still use it) and stop
    /// its lane on this host at once.
    pub async fn delete_connection(&self, connection_id: &str) -> Result<(), EngineError> {
        // Its deleted syncs' rows first (the store keeps them from going before), a chunk at a time.
        purge::purge_all(self.shared.store.as_ref(), Some(connection_id), &self.shared.cancel).await?;
        self.shared.store.delete_connection(connection_id).await?;
        let lane = {
            let mut lanes = self.shared.lanes.lock();
            let lane = lanes.remove(connection_id);
            self.shared.metrics.set_lanes_owned(lanes.len());
            lane
        };
        if let Some(lane) = lane {
            lane.stop.cancel();
        }
        self.shared.known_lanes.lock().remove(connection_id);
        Ok(())
    }

    /// Tell a connection's lane that something changed (new users, settings, credentials).
    pub(crate) async fn wake(&self, connection_id: &str) {
        if let Some(lane) = self.shared.lanes.lock().get(connection_id) {
            lane.wake();
        }
    }

    /// New users for `sync_id` of a connection: wake its lane here, or make sure one runs
    /// somewhere. With one host that means starting it; with leases, the host that owns the
    /// lane hears of it through the store's announcements, and the steward looks for unowned
    /// lanes now.
    pub(crate) async fn work_arrived(&self, connection_id: &str, sync_id: &str) -> Result<(), EngineError> {
        if self.shared.config.lease.enabled {
            let local = self.shared.lanes.lock().get(connection_id).cloned();
            let known = || self.shared.known_lanes.lock().contains(connection_id);
            match local {
                Some(lane) => lane.nudge(sync_id),
                // Owned elsewhere (or about to be): tell that host.
                None if known() => self.announce(connection_id).await,
                None => self.shared.steward.notify_one(),
            }
            return Ok(());
        }
        self.ensure_lane(connection_id).await?.nudge(sync_id);
        Ok(())
    }

    /// This run's id in the lane leases (`<hostname>-<random>`).
    pub fn host_id(&self) -> &str {
        &self.shared.host_id
    }

    /// The lane of a connection, started on first use.
    pub(crate) async fn ensure_lane(&self, connection_id: &str) -> Result<Arc<Lane>, EngineError> {
        if let Some(lane) = self.shared.lanes.lock().get(connection_id) {
            return Ok(lane.clone());
        }
        let connection = self.shared.store.connection(connection_id).await?;
        let destination = self
            .shared
            .destinations
            .get(&connection.destination)
            .ok_or_else(|| EngineError::UnknownDestination(connection.destination.clone()))?;
        let lane = {
            let mut lanes = self.shared.lanes.lock();
            if let Some(lane) = lanes.get(connection_id) {
                return Ok(lane.clone());
            }
            let lane = Lane::new(self.shared.clone(), connection, destination);
            lanes.insert(connection_id.to_string(), lane.clone());
            self.shared.metrics.set_lanes_owned(lanes.len());
            lane
        };
        let runner = lane.clone();
        self.shared.tasks.spawn(lane.tasks.track_future(async move { runner.run().await }));
        let checker = lane.clone();
        self.shared.tasks.spawn(lane.tasks.track_future(async move { checker.run_checks().await }));
        Ok(lane)
    }
}
