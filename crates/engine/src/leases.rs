//! Sharing the lanes between several hosts on one database: the lane steward.
//!
//! Why leases: a partner counts requests per token, and only one process can pace a token's
//! requests exactly. So each connection's lane runs on one host at a time, the holder of its
//! lease row in the store. Any host still accepts intake for any sync; the host that took it
//! announces it through the store (PostgreSQL `NOTIFY`), and the lane's holder wakes the lane.
//!
//! Every `renew_every`, the steward of each host:
//! 1. sends its heartbeat (how many hosts are alive decides each host's fair share),
//! 2. renews its leases; a lane whose lease could not be renewed (it expired: this host was
//!    frozen or cut off) is stopped at once, its users being someone else's now,
//! 3. hands over lanes above its share of `ceil(connections / live hosts)`, after their
//!    batches in flight are recorded, so a host that joins gets work without anyone dying,
//! 4. takes free or expired lanes while below its share, and, even above it, any lane nobody
//!    has held for a lease time and a renewal (every live host below its share had a pass in
//!    that time and did not take it: a lane whose plugin only some hosts have must not be left
//!    alone). Taking over a dead host's lane puts the users that host had in
//!    flight back to pending (they may reach the partner twice: at-least-once), and a new lane
//!    waits one second before its first request, so the token's rate holds across the
//!    handover.
//!
//! A lane stopped here (handed over or lost) is not taken again until its batches are
//! recorded, so one connection never has two lanes on one host. A host that dies keeps its
//! lanes until their leases expire (`ttl`); then the survivors, now below their share, take
//! them. A host that stops on SIGTERM releases its leases and signs off, so the others take
//! its lanes at their next pass.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use audience_store::{LeaseOutcome, StoreError};
use tokio::time::Instant;

use super::lane::Lane;
use super::{Engine, EngineError};

/// A new id for this run of the host: `<hostname>-<random>`. A restarted host is a new host:
/// it must not mistake the leases of its previous life (whose users may still be in flight
/// at a partner) for its own.
pub(super) fn new_host_id() -> String {
    let name = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "host".to_string());
    format!("{name}-{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// The lane steward of one host.
pub(super) struct Steward {
    engine: Engine,
    /// Lanes stopped here whose batches are still being recorded (handed over or lost): not
    /// taken again until they are done, or one connection would have two lanes.
    draining: Arc<Mutex<HashSet<String>>>,
    /// Lanes taken because nobody else did (e.g. only this host has their plugin): kept out
    /// of the fair-share count, so they are not handed over just to be left unowned again.
    adopted: Mutex<HashSet<String>>,
    /// Connections with no live lease, and since when (without a break).
    unowned_since: Mutex<HashMap<String, Instant>>,
}

fn contains(set: &Mutex<HashSet<String>>, key: &str) -> bool {
    set.lock().contains(key)
}

impl Steward {
    pub(super) fn new(engine: Engine) -> Self {
        Self { engine, draining: Arc::default(), adopted: Mutex::default(), unowned_since: Mutex::default() }
    }

    /// First pass now (so a single host starts delivering at once), then one every
    /// `renew_every` or when nudged, until the engine stops; then the lanes are handed over.
    pub(super) async fn start(self) -> Result<(), EngineError> {
        self.pass().await?;
        let shared = self.engine.shared.clone();
        shared.tasks.clone().spawn(async move {
            let every = shared.config.lease.renew_every;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shared.steward.notified() => {
                        // Several intake calls nudge at once: one pass for all of them.
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    }
                    _ = shared.cancel.cancelled() => break,
                }
                if let Err(err) = self.pass().await {
                    tracing::warn!(error = %err, "the lane steward could not reach the store; trying again");
                }
            }
            self.release_all().await;
        });
        Ok(())
    }

    fn local_lanes(&self) -> Vec<Arc<Lane>> {
        self.engine.shared.lanes.lock().values().cloned().collect()
    }

    fn forget(&self, connection_id: &str) -> Option<Arc<Lane>> {
        self.adopted.lock().remove(connection_id);
        let mut lanes = self.engine.shared.lanes.lock();
        let lane = lanes.remove(connection_id);
        self.engine.shared.metrics.set_lanes_owned(lanes.len());
        lane
    }

    /// One round of heartbeat, renewal, handover and takeover.
    async fn pass(&self) -> Result<(), EngineError> {
        let shared = &self.engine.shared;
        let store = &shared.store;
        let host = shared.host_id.as_str();
        let ttl = shared.config.lease.ttl;
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);

        let live = store.heartbeat(host, ttl_ms).await?.max(1);
        // Taken before the store extends the leases, so the local deadline never runs past
        // the store's.
        let renewed_at = Instant::now();
        let held: HashSet<String> = store.renew_lanes(host, ttl_ms).await?.into_iter().collect();
        if shared.cancel.is_cancelled() {
            // Shutting down: `release_all` hands every lane over.
            return Ok(());
        }
        for lane in self.local_lanes() {
            if held.contains(&lane.connection_id) {
                lane.set_lease_until(renewed_at + ttl);
            } else {
                tracing::warn!(connection = %lane.connection_id, "the lane's lease was lost; stopping it here");
                shared.metrics.lane_event("lost");
                self.forget(&lane.connection_id);
                self.drain(lane, false);
            }
        }

        // The connections that need a lane and that this host can deliver for.
        let mut wanted: Vec<String> = store
            .all_syncs()
            .await?
            .into_iter()
            .filter(|s| shared.destinations.get(&s.destination).is_some())
            .map(|s| s.connection_id)
            .collect();
        wanted.sort();
        wanted.dedup();
        *shared.known_lanes.lock() = wanted.iter().cloned().collect();
        let share = wanted.len().div_ceil(live as usize);
        let adopted: HashSet<String> = self.adopted.lock().clone();
        let mut mine: Vec<String> =
            self.local_lanes().into_iter().map(|l| l.connection_id.clone()).filter(|c| !adopted.contains(c)).collect();
        mine.sort();

        // Above the share: hand the surplus over once its batches are recorded.
        while mine.len() > share {
            let Some(connection_id) = mine.pop() else { break };
            if let Some(lane) = self.forget(&connection_id) {
                tracing::info!(connection = %connection_id, "handing a lane over to a host with fewer");
                shared.metrics.lane_event("released");
                self.drain(lane, true);
            }
        }

        // Lanes nobody has held for a lease time and a renewal: taken even above the share, so
        // a lane only some hosts can deliver for is never left alone. (Any live host below its
        // share would have taken it in that time; taking it sooner would unbalance the hosts
        // for good, as adopted lanes are never handed over.)
        let patience = ttl + shared.config.lease.renew_every;
        let now = super::now_ms();
        let live_leases: HashSet<String> =
            store.lane_leases().await?.into_iter().filter(|l| l.expires_at > now).map(|l| l.connection_id).collect();
        let abandoned: HashSet<String> = {
            let mut since = self.unowned_since.lock();
            let checked_at = Instant::now();
            let mut next = HashMap::new();
            for c in wanted.iter().filter(|c| !live_leases.contains(*c)) {
                next.insert(c.clone(), since.get(c).copied().unwrap_or(checked_at));
            }
            *since = next;
            since.iter().filter(|(_, t)| checked_at.duration_since(**t) >= patience).map(|(c, _)| c.clone()).collect()
        };

        // Below the share (or abandoned lanes): take free or expired lanes, starting at a
        // place of our own so that hosts do not all race for the same lane.
        if wanted.is_empty() {
            return Ok(());
        }
        let offset = host.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize)) % wanted.len();
        for i in 0..wanted.len() {
            if shared.cancel.is_cancelled() {
                break;
            }
            let connection_id = &wanted[(offset + i) % wanted.len()];
            let below_share = mine.len() < share;
            if !below_share && !abandoned.contains(connection_id) {
                continue;
            }
            if mine.contains(connection_id)
                || adopted.contains(connection_id)
                || contains(&self.draining, connection_id)
                || shared.lanes.lock().contains_key(connection_id)
            {
                continue;
            }
            let asked_at = Instant::now();
            match store.acquire_lane(connection_id, host, ttl_ms).await {
                Ok(LeaseOutcome::Acquired { taken_over_from, recovered, .. }) => {
                    if let Some(previous) = &taken_over_from {
                        tracing::info!(connection = %connection_id, from = %previous, recovered, "took over a lane");
                        shared.metrics.lane_event("taken_over");
                    }
                    match self.engine.ensure_lane(connection_id).await {
                        Ok(lane) => {
                            lane.set_lease_until(asked_at + ttl);
                            if below_share {
                                mine.push(connection_id.clone());
                            } else {
                                tracing::info!(connection = %connection_id, "took a lane no other host took");
                                self.adopted.lock().insert(connection_id.clone());
                            }
                        }
                        Err(err) => {
                            tracing::warn!(connection = %connection_id, error = %err, "could not start a lane; giving its lease back");
                            store.release_lane(connection_id, host).await?;
                        }
                    }
                }
                Ok(LeaseOutcome::Held(_)) => {}
                Err(StoreError::NotFound { .. }) => {}
                Err(err) => return Err(err.into()),
            }
        }
        Ok(())
    }

    /// Stop a lane and wait, in the background, for its batches to be recorded; then give its
    /// lease back when `release` (a handover), and let the connection be taken again.
    fn drain(&self, lane: Arc<Lane>, release: bool) {
        let shared = self.engine.shared.clone();
        let draining = self.draining.clone();
        draining.lock().insert(lane.connection_id.clone());
        lane.stop.cancel();
        lane.tasks.close();
        shared.tasks.clone().spawn(async move {
            lane.tasks.wait().await;
            if release && let Err(err) = shared.store.release_lane(&lane.connection_id, &shared.host_id).await {
                tracing::warn!(connection = %lane.connection_id, error = %err, "could not release a lane; it frees itself when the lease expires");
            }
            draining.lock().remove(&lane.connection_id);
        });
    }

    /// At shutdown: wait for every lane's batches (each lane on its own, so one waiting out a
    /// long pause does not hold the others), release the leases and sign off, so other hosts
    /// take the lanes at once instead of after `ttl`.
    async fn release_all(&self) {
        let shared = &self.engine.shared;
        let lanes = self.local_lanes();
        futures::future::join_all(lanes.iter().map(|lane| async move {
            lane.stop.cancel();
            lane.tasks.close();
            lane.tasks.wait().await;
            if let Err(err) = shared.store.release_lane(&lane.connection_id, &shared.host_id).await {
                tracing::warn!(connection = %lane.connection_id, error = %err, "could not release a lane at shutdown; it frees itself when the lease expires");
            }
        }))
        .await;
        for lane in &lanes {
            self.forget(&lane.connection_id);
        }
        // Not alive any more: the others' fair share grows now, so they take the lanes at
        // their next pass instead of when this heartbeat would have expired.
        if let Err(err) = shared.store.heartbeat(&shared.host_id, 0).await {
            tracing::warn!(error = %err, "could not sign off; the other hosts see this host gone when its heartbeat expires");
        }
    }
}
