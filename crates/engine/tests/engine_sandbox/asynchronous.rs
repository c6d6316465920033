//! Asynchronous outcomes through a real plugin (the test destination, whose writes answer
//! `submitted` and whose `check-submission` answers `processing` until its processing time has
//! passed): what an operator would notice — users counted `submitted` while the partner works,
//! every one settled in the end, nothing sent again after a restart, a failed request sent
//! again, one submission at a time where the partner asks for it, and a request refused
//! because of named users resent at once without them.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audience_engine::{Destination, Destinations, EngineConfig, LimitOverrides, SyncRequest, UserInput};
use audience_runtime::types::{Credentials, PluginConfig};
use audience_runtime::{PluginOptions, PluginRuntime, RuntimeConfig};
use audience_store::{Counts, CredentialKey, NewConnection, SqliteStore, Store, SyncAction};

/// One host: a SQLite store in `dir`, the test destination with `settings`, a connection and a
/// sync on it.
struct Host {
    engine: audience_engine::Engine,
    store: Arc<dyn Store>,
    sync: String,
}

fn fast_config() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.batch.flush_interval = Duration::from_millis(100);
    config.retry.initial_backoff = Duration::from_millis(50);
    config.retry.max_backoff = Duration::from_millis(200);
    config
}

async fn destinations(settings: &[(&str, &str)]) -> Destinations {
    let runtime = PluginRuntime::new(RuntimeConfig::default()).expect("runtime");
    let config = PluginConfig {
        base_url: None,
        client_id: None,
        client_secret: None,
        settings: settings.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
    };
    let plugin = runtime
        .load(
            audience_plugin_artifacts::TEST_DESTINATION,
            PluginOptions { config: config.clone(), ..PluginOptions::default() },
        )
        .await
        .expect("the test destination loads");
    let mut destinations = Destinations::new();
    destinations.insert(Destination::new(plugin, config, &LimitOverrides::default(), &Default::default()));
    destinations
}

async fn open(dir: &Path, key: &CredentialKey, settings: &[(&str, &str)]) -> (audience_engine::Engine, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.join("host.db"), key.clone()).expect("store"));
    let engine = audience_engine::Engine::new(store.clone(), destinations(settings).await, fast_config());
    engine.start().await.expect("engine starts");
    (engine, store)
}

async fn host(dir: &Path, key: &CredentialKey, settings: &[(&str, &str)]) -> Host {
    let (engine, store) = open(dir, key, settings).await;
    let workspace = store.create_workspace("async").await.expect("workspace").id;
    let credentials = Credentials {
        access_token: "token".into(),
        refresh_token: None,
        expires_at: None,
        renewable_until: None,
        scopes: Vec::new(),
    };
    let connection = store
        .create_connection(NewConnection {
            workspace_id: workspace.clone(),
            destination: "test".into(),
            name: "test".into(),
            credentials: audience_engine::encode_credentials(&credentials),
        })
        .await
        .expect("connection")
        .id;
    let sync = engine
        .create_sync(SyncRequest {
            workspace_id: workspace,
            connection_id: connection,
            account_id: "acct".into(),
            audience_name: "VIP".into(),
            audience_id: None,
            description: None,
            create_if_missing: true,
            action: SyncAction::Add,
            match_fields: vec!["email".into()],
            reentry: Default::default(),
        })
        .await
        .expect("sync")
        .id;
    Host { engine, store, sync }
}

impl Host {
    async fn enter(&self, keys: impl IntoIterator<Item = String>) {
        let users: Vec<UserInput> =
            keys.into_iter().map(|k| UserInput::new(k.clone()).with("email", format!("{k}@example.com"))).collect();
        let sync = self.store.sync(&self.sync).await.expect("sync");
        self.engine.enter(&sync, users).await.expect("intake");
    }

    /// Poll the counts (checking conservation at each look) until `done` holds.
    async fn until(&self, what: &str, limit: Duration, done: impl Fn(&Counts) -> bool) -> Counts {
        let started = Instant::now();
        loop {
            let counts = self.engine.counts(&self.sync).await.expect("counts");
            assert!(counts.conserved(), "counts conserved at every instant: {counts:?}");
            if done(&counts) {
                return counts;
            }
            assert!(started.elapsed() < limit, "{what}: not within {limit:?}: {counts:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// How many calls of `function` this engine made (its metrics).
    async fn calls(&self, function: &str) -> u64 {
        let text = self.engine.render_metrics().await.expect("metrics");
        let prefix =
            format!("audience_plugin_call_duration_seconds_count{{destination=\"test\",function=\"{function}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&prefix)).map_or(0, |n| n.trim().parse().expect("a count"))
    }
}

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

const ASYNC: [(&str, &str); 3] = [("write", "submitted"), ("check-after-ms", "50"), ("max-batch-size", "100")];

#[tokio::test]
async fn submitted_users_are_counted_apart_until_the_partner_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let key = CredentialKey::generate();
    let mut settings = ASYNC.to_vec();
    settings.push(("processing-ms", "1500"));
    let host = host(dir.path(), &key, &settings).await;
    let mut users = keys("u", 248);
    users.extend(["reject-a".to_string(), "reject-b".to_string()]);
    host.enter(users).await;
    let seen = host.until("users submitted", Duration::from_secs(20), |c| c.submitted > 0).await;
    assert_eq!(seen.synced, 0, "nobody is synced before the partner finished: {seen:?}");
    let done = host.until("every user settled", Duration::from_secs(30), |c| c.synced + c.errored == 250).await;
    assert_eq!((done.synced, done.errored, done.submitted, done.pending, done.in_flight), (248, 2, 0, 0, 0));
    assert!(host.store.submissions(std::slice::from_ref(&host.sync)).await.unwrap().is_empty());
    assert_eq!(host.calls("add-users").await, 3, "three batches of at most 100, each sent once");
    assert!(host.calls("check-submission").await >= 3);
    host.engine.shutdown().await;
}

#[tokio::test]
async fn a_restart_asks_about_the_same_requests_and_sends_nobody_again() {
    let dir = tempfile::tempdir().unwrap();
    let key = CredentialKey::generate();
    let mut settings = ASYNC.to_vec();
    settings.push(("processing-ms", "3000"));
    let first = host(dir.path(), &key, &settings).await;
    first.enter(keys("u", 300)).await;
    first.until("every user submitted", Duration::from_secs(20), |c| c.submitted == 300).await;
    assert_eq!(first.calls("add-users").await, 3);
    let sync = first.sync.clone();
    first.engine.shutdown().await;
    drop(first);

    // The next process: the same database, nothing else.
    let (engine, store) = open(dir.path(), &key, &settings).await;
    let second = Host { engine, store, sync };
    let done = second.until("every user synced", Duration::from_secs(30), |c| c.synced == 300).await;
    assert_eq!((done.submitted, done.pending, done.in_flight, done.errored), (0, 0, 0, 0));
    assert_eq!(second.calls("add-users").await, 0, "no user was sent again after the restart");
    assert!(second.calls("check-submission").await >= 3, "the same requests were asked about");
    second.engine.shutdown().await;
}

#[tokio::test]
async fn a_request_the_partner_failed_is_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let key = CredentialKey::generate();
    let mut settings = ASYNC.to_vec();
    settings.extend([("fail-attempts", "1"), ("fail-with", "transient")]);
    let host = host(dir.path(), &key, &settings).await;
    host.enter(keys("u", 50)).await;
    let done = host.until("every user synced", Duration::from_secs(30), |c| c.synced == 50).await;
    assert_eq!((done.errored, done.submitted), (0, 0));
    assert!(done.retries >= 50, "the failed request's users were retried: {done:?}");
    // Each retried user has its own jitter, so the resend may come in several batches.
    assert!(host.calls("add-users").await >= 2, "the failed request, then its resend");
    assert!(host.calls("check-submission").await >= 2);
    host.engine.shutdown().await;
}

#[tokio::test]
async fn one_submission_at_a_time_when_the_partner_runs_one_job_per_audience() {
    let dir = tempfile::tempdir().unwrap();
    let key = CredentialKey::generate();
    let mut settings = ASYNC.to_vec();
    settings.extend([
        ("processing-ms", "300"),
        ("max-submissions-per-audience", "1"),
        ("max-concurrent-requests", "4"),
    ]);
    let host = host(dir.path(), &key, &settings).await;
    host.enter(keys("u", 400)).await;
    let started = Instant::now();
    loop {
        let counts = host.engine.counts(&host.sync).await.unwrap();
        assert!(counts.in_flight + counts.submitted <= 100, "more than one batch outstanding: {counts:?}");
        let open = host.store.submissions(std::slice::from_ref(&host.sync)).await.unwrap();
        assert!(open.len() <= 1, "{open:?}");
        if counts.synced == 400 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "not synced: {counts:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(host.calls("add-users").await, 4);
    host.engine.shutdown().await;
}

#[tokio::test]
async fn users_named_in_a_refused_request_are_errored_and_the_rest_resent_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let key = CredentialKey::generate();
    let host = host(dir.path(), &key, &[("max-batch-size", "100")]).await;
    let mut users = keys("u", 98);
    users.extend(["refuse-1".to_string(), "refuse-2".to_string()]);
    host.enter(users).await;
    let done = host.until("every user settled", Duration::from_secs(20), |c| c.synced + c.errored == 100).await;
    assert_eq!((done.synced, done.errored, done.retries), (98, 2, 0), "no backoff, no retry counted");
    assert_eq!(host.calls("add-users").await, 2, "the refused request, then the rest once: no bisection");
    let errors = host.store.recent_errors(&host.sync, 10).await.unwrap();
    assert!(
        errors.iter().any(|e| e.key == "refuse-1" && e.reason.contains("test-destination refuses refuse-1")),
        "{errors:?}"
    );
    host.engine.shutdown().await;
}
