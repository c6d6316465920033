//! Containment: a hostile plugin hurts only itself. A plugin whose calls hang or spin holds at
//! most its share of the instance pool and of the CPU; a caller's quota bounds one connection;
//! waiting for an instance has a deadline; the network is reached by address only where the
//! operator allowed it; a refused request costs the rate limiter nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::{TestServer, creds, settings};
use audience_plugin_artifacts as artifacts;
use audience_runtime::http_types::HttpError;
use audience_runtime::types::*;
use audience_runtime::{
    CallError, HttpPolicy, InstanceLimit, InstanceQuota, LoadError, Plugin, PluginError, PluginOptions, PluginRuntime,
    RequestHooks, RuntimeConfig, SandboxLimits,
};
use futures::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc};

fn runtime(max_instances: u32) -> PluginRuntime {
    PluginRuntime::new(RuntimeConfig { max_instances, ..RuntimeConfig::default() }).expect("runtime")
}

async fn add(plugin: &Plugin, config: &PluginConfig) -> Result<WriteOutcome, CallError> {
    let users = (0..3)
        .map(|i| PreparedUser {
            key: format!("user-{i}"),
            identifiers: vec![Identifier { kind: "email".into(), value: format!("u{i}@example.com") }],
            consent: None,
        })
        .collect();
    let batch = Batch { id: "batch-1".into(), attempt: 1, users };
    plugin.add_users(config, &creds(), "acct", &AudienceTarget::Existing("aud".into()), batch).await
}

/// A write that GETs `url` (and so waits in the host's `http-client` import).
fn fetch(url: &str) -> PluginConfig {
    settings(&[("behaviour", "fetch"), ("url", url)])
}

async fn load(runtime: &PluginRuntime, options: PluginOptions) -> Plugin {
    runtime.load(artifacts::TEST_DESTINATION, options).await.expect("test destination loads")
}

fn plain(host: &str) -> PluginOptions {
    PluginOptions {
        http: Some(HttpPolicy { plain_http_hosts: vec![host.to_string()], ..HttpPolicy::default() }),
        ..PluginOptions::default()
    }
}

fn short_timeout(options: PluginOptions) -> PluginOptions {
    let limits = SandboxLimits { call_timeout: Duration::from_millis(300), ..SandboxLimits::default() };
    PluginOptions { limits: Some(limits), ..options }
}

/// Holds every request in `before_send` until released: a call held there keeps its instance
/// (as a call waiting for a slow partner does) for as long as the test wants.
struct Hold {
    entered: Semaphore,
    gate: Semaphore,
}

impl Hold {
    fn new() -> Arc<Self> {
        Arc::new(Self { entered: Semaphore::new(0), gate: Semaphore::new(0) })
    }

    /// Wait until `n` more requests are held.
    async fn entered(&self, n: u32) {
        self.entered.acquire_many(n).await.unwrap().forget();
    }

    /// Let `n` held requests go.
    fn release(&self, n: usize) {
        self.gate.add_permits(n);
    }
}

impl RequestHooks for Hold {
    fn before_send(&self) -> BoxFuture<'_, Result<audience_runtime::Departure, String>> {
        Box::pin(async move {
            self.entered.add_permits(1);
            self.gate.acquire().await.unwrap().forget();
            Ok(audience_runtime::Departure::untracked())
        })
    }

    fn after_send(&self, _outcome: Result<u16, &HttpError>, _elapsed: Duration) {}
}

/// Spawn `n` calls of `plugin` with `config`; their results arrive on the receiver.
fn spawn_calls(
    plugin: &Plugin,
    config: PluginConfig,
    n: usize,
) -> mpsc::UnboundedReceiver<Result<WriteOutcome, CallError>> {
    let (tx, rx) = mpsc::unbounded_channel();
    for _ in 0..n {
        let (plugin, config, tx) = (plugin.clone(), config.clone(), tx.clone());
        tokio::spawn(async move { tx.send(add(&plugin, &config).await).ok() });
    }
    rx
}

fn busy_limit(result: Result<WriteOutcome, CallError>) -> InstanceLimit {
    match result {
        Err(CallError::Plugin(PluginError::Busy { limit, .. })) => limit,
        other => panic!("expected a busy call, got {other:?}"),
    }
}

#[tokio::test]
async fn a_plugin_holds_at_most_its_share_of_the_pool_and_its_neighbour_is_served() {
    let server = TestServer::start().await;
    let runtime = runtime(4);
    let greedy = load(&runtime, short_timeout(plain(&server.host_port()))).await;
    let good = load(&runtime, PluginOptions::default()).await;
    assert_eq!((greedy.instance_share(), good.instance_share()), (2, 2), "4 instances, 2 plugins");

    let hold = Hold::new();
    let mut results = spawn_calls(&greedy.with_hooks(hold.clone()), fetch(&server.url("/ok")), 4);
    hold.entered(2).await;
    // Two calls hold the plugin's share; the other two wait for it, then give up as busy.
    for _ in 0..2 {
        let limit = busy_limit(results.recv().await.unwrap());
        assert_eq!(limit, InstanceLimit::Plugin { share: 2, configured: false });
    }
    assert_eq!(greedy.instances_in_use(), 2);
    // The neighbour finds its share free, however many calls the greedy plugin has.
    let none = settings(&[]);
    let answers = futures::future::join_all((0..2).map(|_| add(&good, &none))).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");

    hold.release(2);
    for _ in 0..2 {
        results.recv().await.unwrap().expect("a held call completes once released");
    }
    assert_eq!(greedy.instances_in_use(), 0);
}

#[tokio::test]
async fn the_busy_error_tells_the_operator_what_to_change() {
    let err = PluginError::Busy {
        plugin: "pinterest".into(),
        limit: InstanceLimit::Plugin { share: 64, configured: false },
        waited: Duration::from_secs(10),
    };
    let message = err.to_string();
    for part in ["pinterest", "10s", "share of 64", "runtime.max_instances", "max_concurrent_requests"] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    let message = InstanceLimit::Connection { limit: 3 }.to_string();
    assert!(message.contains("connection's quota of 3"), "{message}");
    let message = InstanceLimit::Runtime { max_instances: 128 }.to_string();
    assert!(message.contains("all 128 instances") && message.contains("raise runtime.max_instances"), "{message}");
}

#[tokio::test]
async fn the_operator_s_max_instances_replaces_the_equal_share() {
    let server = TestServer::start().await;
    let runtime = runtime(4);
    let options = PluginOptions { max_instances: Some(3), ..short_timeout(plain(&server.host_port())) };
    let wide = load(&runtime, options).await;
    let other = load(&runtime, PluginOptions::default()).await;
    assert_eq!((wide.instance_share(), other.instance_share()), (3, 2));

    let hold = Hold::new();
    let mut results = spawn_calls(&wide.with_hooks(hold.clone()), fetch(&server.url("/ok")), 4);
    hold.entered(3).await;
    assert_eq!(busy_limit(results.recv().await.unwrap()), InstanceLimit::Plugin { share: 3, configured: true });
    hold.release(3);
    for _ in 0..3 {
        results.recv().await.unwrap().expect("completes once released");
    }
}

#[tokio::test]
async fn waiting_for_the_pool_itself_has_a_deadline() {
    let server = TestServer::start().await;
    let runtime = runtime(2);
    // Both plugins are allowed the whole pool: together they can fill it.
    let options = PluginOptions { max_instances: Some(2), ..short_timeout(plain(&server.host_port())) };
    let first = load(&runtime, options.clone()).await;
    let second = load(&runtime, options).await;
    let hold = Hold::new();
    let mut held = spawn_calls(&first.with_hooks(hold.clone()), fetch(&server.url("/ok")), 2);
    hold.entered(2).await;
    let limit = busy_limit(add(&second, &settings(&[])).await);
    assert_eq!(limit, InstanceLimit::Runtime { max_instances: 2 });
    hold.release(2);
    for _ in 0..2 {
        held.recv().await.unwrap().expect("completes once released");
    }
    add(&second, &settings(&[])).await.expect("the pool has room again");
}

#[tokio::test]
async fn a_connection_quota_bounds_its_calls_and_keeps_the_hooks() {
    let server = TestServer::start().await;
    let runtime = runtime(16);
    let plugin = load(&runtime, short_timeout(plain(&server.host_port()))).await;
    let hold = Hold::new();
    let quota = InstanceQuota::new(1);
    // The quota set first, the hooks after: both apply.
    let connection = plugin.with_quota(quota.clone()).with_hooks(hold.clone());
    let mut first = spawn_calls(&connection, fetch(&server.url("/ok")), 1);
    hold.entered(1).await;
    assert_eq!(quota.in_use(), 1);
    assert_eq!(busy_limit(add(&connection, &settings(&[])).await), InstanceLimit::Connection { limit: 1 });
    // Another connection (another quota) is not held up.
    add(&plugin.with_quota(InstanceQuota::new(1)), &settings(&[])).await.expect("another connection is served");
    // The hooks set first, the quota after: both apply (the call is held by the hooks).
    let other = plugin.with_hooks(hold.clone()).with_quota(InstanceQuota::new(1));
    let mut second = spawn_calls(&other, fetch(&server.url("/ok")), 1);
    hold.entered(1).await;
    hold.release(2);
    first.recv().await.unwrap().expect("completes once released");
    second.recv().await.unwrap().expect("completes once released");
    assert_eq!(quota.in_use(), 0);
}

#[tokio::test]
async fn spinning_calls_of_one_plugin_run_one_at_a_time_and_a_neighbour_keeps_answering() {
    let config = RuntimeConfig { max_instances: 16, max_running_per_plugin: Some(1), ..RuntimeConfig::default() };
    assert_eq!(config.cpu_share(), 1);
    let runtime = PluginRuntime::new(config).expect("runtime");
    let spinner = load(&runtime, short_timeout(PluginOptions::default())).await;
    let good = load(&runtime, PluginOptions::default()).await;

    let mut spinning = spawn_calls(&spinner, settings(&[("behaviour", "loop")]), 4);
    while spinner.instances_in_use() < 4 {
        tokio::task::yield_now().await;
    }
    let mut answered = 0;
    let mut finished = Vec::new();
    while finished.len() < 4 {
        add(&good, &settings(&[])).await.expect("the neighbour answers");
        answered += 1;
        assert!(spinner.running_now() <= 1, "{} spinning calls ran at once", spinner.running_now());
        while let Ok(result) = spinning.try_recv() {
            finished.push(result);
        }
    }
    for result in finished {
        assert_eq!(result.unwrap_err(), CallError::Plugin(PluginError::Timeout(Duration::from_millis(300))));
    }
    assert_eq!(spinner.running_peak(), 1, "never more than the plugin's CPU share ran guest code");
    assert_eq!(spinner.running_now(), 0);
    assert!(good.running_peak() >= 1);
    assert!(answered > 0);
}

#[tokio::test]
async fn a_call_waiting_for_the_partner_lets_its_plugin_s_other_calls_run() {
    let server = TestServer::start().await;
    let config = RuntimeConfig { max_instances: 16, max_running_per_plugin: Some(1), ..RuntimeConfig::default() };
    let runtime = PluginRuntime::new(config).expect("runtime");
    let plugin = load(&runtime, plain(&server.host_port())).await;
    let hold = Hold::new();
    let mut held = spawn_calls(&plugin.with_hooks(hold.clone()), fetch(&server.url("/ok")), 1);
    hold.entered(1).await;
    assert_eq!(plugin.running_now(), 0, "waiting in the host holds no running permit");
    // With one running permit, this call could not run if the held call kept it.
    add(&plugin, &settings(&[])).await.expect("runs while the other waits");
    hold.release(1);
    held.recv().await.unwrap().expect("the held call resumes and completes");
}

/// Counts the requests that reached the hooks.
#[derive(Default)]
struct Counting {
    before: AtomicUsize,
    after: AtomicUsize,
}

impl RequestHooks for Counting {
    fn before_send(&self) -> BoxFuture<'_, Result<audience_runtime::Departure, String>> {
        self.before.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(audience_runtime::Departure::untracked()) })
    }

    fn after_send(&self, _outcome: Result<u16, &HttpError>, _elapsed: Duration) {
        self.after.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_refused_request_takes_no_slot_of_the_rate_limiter() {
    let server = TestServer::start().await;
    let runtime = runtime(16);
    let hooks = Arc::new(Counting::default());
    let refusing = load(&runtime, plain("127.0.0.1:1")).await.with_hooks(hooks.clone());
    let err = add(&refusing, &fetch(&server.url("/ok"))).await.expect_err("refused");
    assert!(matches!(err, CallError::HostRefused(ref why) if why.contains("allow-list")), "{err:?}");
    assert_eq!(hooks.before.load(Ordering::SeqCst), 0, "the refusal never reached before_send");
    assert_eq!(hooks.after.load(Ordering::SeqCst), 1, "it is still counted, as denied");

    let allowed = load(&runtime, plain(&server.host_port())).await.with_hooks(hooks.clone());
    add(&allowed, &fetch(&server.url("/ok"))).await.expect("sent");
    assert_eq!(hooks.before.load(Ordering::SeqCst), 1);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn an_allowed_name_resolving_to_loopback_is_refused_unless_the_address_is_allowed() {
    let server = TestServer::start().await;
    let runtime = runtime(16);
    let by_name = format!("localhost:{}", server.port());
    let url = format!("http://{by_name}/ok");

    let plugin = load(&runtime, plain(&by_name)).await;
    let err = add(&plugin, &fetch(&url)).await.expect_err("refused");
    let CallError::HostRefused(why) = err else { panic!("{err:?}") };
    assert!(why.contains("localhost resolves to"), "names the host and the address: {why}");
    assert!(why.contains("loopback") && why.contains("allowed_private_addresses"), "and the setting: {why}");
    assert_eq!(server.hits(), 0, "nothing was sent");

    // The same address written as a literal on the allow-list is the operator's explicit choice.
    let literal = load(&runtime, plain(&server.host_port())).await;
    add(&literal, &fetch(&server.url("/ok"))).await.expect("the literal is allowed");
    assert_eq!(server.hits(), 1);

    let policy = HttpPolicy {
        plain_http_hosts: vec![by_name.clone()],
        allowed_private_addresses: vec!["127.0.0.0/8".into(), "::1".into()],
        ..HttpPolicy::default()
    };
    let allowed = load(&runtime, PluginOptions { http: Some(policy), ..PluginOptions::default() }).await;
    add(&allowed, &fetch(&url)).await.expect("the operator allowed loopback for names");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_bad_allowed_private_address_is_a_load_error_naming_it() {
    let policy = HttpPolicy {
        plain_http_hosts: vec!["sandbox.internal:9000".into()],
        allowed_private_addresses: vec!["10.0.0.0/8".into(), "10.0.0.300".into()],
        ..HttpPolicy::default()
    };
    let options = PluginOptions { http: Some(policy), ..PluginOptions::default() };
    let err = runtime(4).load(artifacts::TEST_DESTINATION, options).await.err().expect("refused");
    assert!(matches!(err, LoadError::HttpPolicy(_)), "{err:?}");
    assert!(err.to_string().contains("\"10.0.0.300\""), "{err}");
}
