//! What the engine's tests run lanes with: an in-memory store and a fake partner, so a lane's
//! behaviour is tested under tokio's paused time — deterministic, no WebAssembly, no sleeps
//! in real time.

pub(crate) mod fake;
pub(crate) mod memory_store;

use std::sync::Arc;
use std::time::Duration;

use audience_runtime::types::{Identifier, Limits, PluginConfig, PreparedUser};
use audience_store::{
    AudienceConfig, Connection, Counts, Entry, NewConnection, NewSync, ReadyUser, Store, SyncAction, SyncRecord,
};

use crate::clock::Clock;
use crate::destinations::{Destinations, LaneDestination};
use crate::lane::Lane;
use crate::{Engine, EngineConfig, encode_credentials};
use fake::FakePartner;
use memory_store::MemoryStore;

/// The time the tests' clock starts at (ms since the epoch).
pub(crate) const T0: i64 = 1_700_000_000_000;

/// One connection of a fake destination, its engine and store, and the partner behind it.
pub(crate) struct World {
    pub(crate) engine: Engine,
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) partner: FakePartner,
    pub(crate) connection: Connection,
    pub(crate) limits: Limits,
    pub(crate) clock: Clock,
}

impl World {
    /// A connection with credentials `token-1` (refresh token `refresh-1`), no syncs yet and no
    /// lane yet. Call from a test running under paused time.
    pub(crate) async fn new(config: EngineConfig, limits: Limits) -> Self {
        Self::with_credentials(config, limits, fake::credentials("token-1", Some("refresh-1"))).await
    }

    /// [`World::new`] with these credentials.
    pub(crate) async fn with_credentials(
        config: EngineConfig,
        limits: Limits,
        credentials: audience_runtime::types::Credentials,
    ) -> Self {
        let clock = Clock::tokio(T0);
        let store = Arc::new(MemoryStore::new(clock.clone()));
        let engine = Engine::new(store.clone(), Destinations::new(), config);
        let workspace = store.create_workspace("test").await.expect("workspace");
        let connection = store
            .create_connection(NewConnection {
                workspace_id: workspace.id,
                destination: "fake".into(),
                name: "fake account".into(),
                credentials: encode_credentials(&credentials),
            })
            .await
            .expect("connection");
        Self { engine, store, partner: FakePartner::new(), connection, limits, clock }
    }

    /// A sync adding users to `audience_id` (`None`: to be found by the lane).
    pub(crate) async fn sync(&self, audience_id: Option<&str>) -> SyncRecord {
        self.sync_named(audience_id, "Churn risk").await
    }

    /// A sync adding users to `audience_id`, or to the audience called `name` the lane finds.
    pub(crate) async fn sync_named(&self, audience_id: Option<&str>, name: &str) -> SyncRecord {
        self.store
            .create_sync(NewSync {
                workspace_id: self.connection.workspace_id.clone(),
                connection_id: self.connection.id.clone(),
                destination: "fake".into(),
                account_id: "acct-1".into(),
                audience: AudienceConfig { name: name.into(), description: None, create_if_missing: true },
                audience_id: audience_id.map(str::to_string),
                action: SyncAction::Add,
                match_fields: vec![audience_model::IdentifierKind::Email],
                reentry: Default::default(),
            })
            .await
            .expect("sync")
    }

    /// Start the connection's lane, as the engine does, delivering to the fake partner.
    pub(crate) fn start(&self) -> Arc<Lane> {
        let shared = self.engine.shared.clone();
        let destination = LaneDestination {
            name: "fake".into(),
            config: PluginConfig { base_url: None, client_id: None, client_secret: None, settings: Vec::new() },
            limits: self.limits,
            calls: Arc::new(self.partner.clone()),
            deliveries: None,
        };
        let lane = Lane::with_destination(shared.clone(), self.connection.clone(), destination, self.clock.clone());
        shared.lanes.lock().insert(self.connection.id.clone(), lane.clone());
        let runner = lane.clone();
        shared.tasks.spawn(lane.tasks.track_future(async move { runner.run().await }));
        lane
    }

    /// Users `<prefix>0..<prefix>n` enter `sync` now, and the lane is told.
    pub(crate) async fn enter(&self, sync: &SyncRecord, prefix: &str, n: usize) {
        let ready = (0..n)
            .map(|i| {
                let key = format!("{prefix}{i}");
                let user = PreparedUser {
                    key: key.clone(),
                    identifiers: vec![Identifier { kind: "email".into(), value: format!("hash-of-{key}") }],
                    consent: None,
                };
                ReadyUser { key, payload: crate::payload::encode(&user) }
            })
            .collect();
        let flush_ms = self.engine.config().batch.flush_interval.as_millis() as i64;
        let entry = Entry { ready, not_synced: Vec::new(), now_ms: self.clock.now_ms(), flush_ms, skip_synced: false };
        self.store.enter(&sync.id, entry).await.expect("enter");
        self.engine.wake(&self.connection.id).await;
    }

    /// A sync's counters, checked for conservation.
    pub(crate) async fn counts(&self, sync: &SyncRecord) -> Counts {
        let counts = self.store.counts(&sync.id).await.expect("counts");
        assert!(counts.conserved(), "counts not conserved: {counts:?}");
        counts
    }

    /// Wait (in paused time) until `done` holds, checking every 10 ms; panics after `limit`.
    pub(crate) async fn until(&self, limit: Duration, what: &str, mut done: impl AsyncFnMut(&Self) -> bool) {
        let started = tokio::time::Instant::now();
        while !done(self).await {
            assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Wait until `sync` has no user pending or in flight.
    pub(crate) async fn until_delivered(&self, sync: &SyncRecord, limit: Duration) {
        let id = sync.id.clone();
        self.until(limit, "every user delivered", async move |world: &Self| {
            let counts = world.store.counts(&id).await.expect("counts");
            counts.pending == 0 && counts.in_flight == 0
        })
        .await;
    }

    /// Let `d` of paused time pass.
    pub(crate) async fn run_for(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }

    /// Stop the lane and wait for its batches to be recorded.
    pub(crate) async fn stop(self) {
        self.engine.shutdown().await;
    }
}
