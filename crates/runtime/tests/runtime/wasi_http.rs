//! One gate for both ways a plugin reaches the network: `wasi-http-destination` (only
//! `wasi:http/outgoing-handler`, no `http-client` at all) and `test-destination` (only the
//! contract's `http-client`) run side by side against a local server, and the host must refuse,
//! pace and record their requests alike: the same call errors, the same outcomes handed to the
//! engine's hooks (its metrics), the same refusal lines in the call log, no secret in any.
//!
//! The one difference is `wasi:http`'s own: the gate hands a redirect back to a `wasi:http`
//! client, which asks for its `Location` with a new request that passes the gate again; so
//! that path records the 3xx it received before the refusal.

use std::sync::Arc;
use std::time::Duration;

use crate::support::{TestServer, creds, settings};
use audience_plugin_artifacts as artifacts;
use audience_runtime::http_types::HttpError;
use audience_runtime::types::*;
use audience_runtime::{
    CallError, HttpLimits, HttpPolicy, Plugin, PluginOptions, PluginRuntime, RequestHooks, RuntimeConfig, SandboxLimits,
};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

/// The two plugins: (what it imports, its bytes).
const PATHS: [(&str, &[u8]); 2] = [("http-client", artifacts::TEST_DESTINATION), ("wasi:http", artifacts::WASI_HTTP)];

/// The access token of [`creds`], put in URLs to show it never reaches a log or an error.
const TOKEN: &str = "secret-token";

/// What the engine's hooks saw: each `before_send` (the limiter slot it was given) and each
/// `after_send` outcome, in order; `before_send` waits for a slot the test hands out.
struct Recorder {
    events: Mutex<Vec<String>>,
    /// Per request let go, in the order they settled: whether it was seen leaving.
    departures: Arc<Mutex<Vec<bool>>>,
    slots: Semaphore,
    waiting: Semaphore,
    finished: Semaphore,
}

impl Recorder {
    /// A recorder that hands out `slots` at once (more with [`Self::grant`]).
    fn new(slots: usize) -> Arc<Self> {
        Arc::new(Self {
            events: Mutex::new(Vec::new()),
            departures: Arc::new(Mutex::new(Vec::new())),
            slots: Semaphore::new(slots),
            waiting: Semaphore::new(0),
            finished: Semaphore::new(0),
        })
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().clone()
    }

    /// Hand out `n` more slots.
    fn grant(&self, n: usize) {
        self.slots.add_permits(n);
    }

    /// Wait until `n` more requests asked for a slot.
    async fn waiting(&self, n: u32) {
        self.waiting.acquire_many(n).await.unwrap().forget();
    }

    /// Wait until `n` more requests finished (reached `after_send`).
    async fn finished(&self, n: u32) {
        self.finished.acquire_many(n).await.unwrap().forget();
    }
}

impl RequestHooks for Recorder {
    fn before_send(&self) -> BoxFuture<'_, Result<audience_runtime::Departure, String>> {
        Box::pin(async move {
            self.waiting.add_permits(1);
            self.slots.acquire().await.unwrap().forget();
            let mut events = self.events.lock();
            let slot = events.iter().filter(|e| e.starts_with("slot")).count() + 1;
            events.push(format!("slot {slot}"));
            let departures = self.departures.clone();
            Ok(audience_runtime::Departure::new(move |at| departures.lock().push(at.is_some())))
        })
    }

    fn after_send(&self, outcome: Result<u16, &HttpError>, _elapsed: Duration) {
        let outcome = match outcome {
            Ok(status) => format!("status {status}"),
            Err(HttpError::Denied(why)) => format!("denied: {why}"),
            Err(other) => format!("{other:?}"),
        };
        self.events.lock().push(outcome);
        self.finished.add_permits(1);
    }
}

fn runtime() -> PluginRuntime {
    PluginRuntime::new(RuntimeConfig { max_instances: 16, ..RuntimeConfig::default() }).expect("runtime")
}

/// `bytes` loaded with plain http allowed to `server` only, within `limits`, logs captured.
async fn load(runtime: &PluginRuntime, bytes: &[u8], server: &TestServer, limits: HttpLimits) -> Plugin {
    let policy = HttpPolicy { plain_http_hosts: vec![server.host_port()], limits, ..HttpPolicy::default() };
    let options = PluginOptions { http: Some(policy), capture_logs: true, ..PluginOptions::default() };
    runtime.load(bytes, options).await.expect("the plugin loads")
}

/// `add-users` of `users` users.
async fn add(plugin: &Plugin, config: &PluginConfig, users: usize) -> Result<WriteOutcome, CallError> {
    let users = (0..users)
        .map(|i| PreparedUser {
            key: format!("user-{i}"),
            identifiers: vec![Identifier { kind: "email".into(), value: format!("u{i}@example.com") }],
            consent: None,
        })
        .collect();
    let batch = Batch { id: "batch-1".into(), attempt: 1, users };
    plugin.add_users(config, &creds(), "acct", &AudienceTarget::Existing("aud".into()), batch).await
}

/// The lines the host wrote about refusing the plugin's requests.
fn refusals(plugin: &Plugin) -> Vec<String> {
    plugin.captured_logs().into_iter().map(|l| l.message).filter(|m| m.contains("host refused")).collect()
}

/// What one scenario left behind on one path: the call's error, the hooks' record, the
/// refusal lines, the requests the server received.
#[derive(Debug, PartialEq)]
struct Seen {
    error: String,
    events: Vec<String>,
    refusals: Vec<String>,
    hits: usize,
}

/// Run `add-users` of `users` users with `config` on each path in turn, against one server.
async fn each_path(
    limits: HttpLimits,
    users: usize,
    config: impl Fn(&TestServer) -> PluginConfig,
) -> Vec<(&'static str, Seen)> {
    let runtime = runtime();
    let server = TestServer::start().await;
    let config = config(&server);
    let mut seen = Vec::new();
    for (path, bytes) in PATHS {
        let hooks = Recorder::new(100);
        let plugin = load(&runtime, bytes, &server, limits.clone()).await.with_hooks(hooks.clone());
        let before = server.hits();
        let error = match add(&plugin, &config, users).await {
            Ok(outcome) => format!("succeeded: {outcome:?}"),
            Err(err) => format!("{err:?}"),
        };
        let hits = server.hits() - before;
        seen.push((path, Seen { error, events: hooks.events(), refusals: refusals(&plugin), hits }));
    }
    for (path, seen) in &seen {
        let texts = std::iter::once(&seen.error).chain(&seen.events).chain(&seen.refusals);
        for text in texts {
            assert!(!text.contains(TOKEN), "{path}: a secret reached the host's records: {text}");
        }
    }
    seen
}

/// Another loopback address than the server's: not on the allow-list.
fn elsewhere(server: &TestServer) -> String {
    format!("http://127.0.0.2:{}/ok?access_token={TOKEN}", server.port())
}

#[tokio::test]
async fn a_component_that_imports_wasi_http_loads_without_the_contracts_http_client() {
    let plugin = runtime().load(artifacts::WASI_HTTP, PluginOptions::default()).await.expect("it loads");
    let imports = plugin.imports();
    assert!(imports.iter().any(|i| i.starts_with("wasi:http/outgoing-handler@")), "{imports:?}");
    assert!(!imports.iter().any(|i| i.contains("http-client")), "{imports:?}");
}

#[tokio::test]
async fn a_host_off_the_allow_list_is_refused_alike_before_any_slot_is_taken() {
    let seen =
        each_path(HttpLimits::default(), 3, |server| settings(&[("behaviour", "fetch"), ("url", &elsewhere(server))]))
            .await;
    let (_, custom) = &seen[0];
    assert!(custom.error.starts_with("HostRefused(") && custom.error.contains("allow-list"), "{custom:?}");
    assert_eq!(custom.events.len(), 1, "no slot, one denied outcome: {custom:?}");
    assert!(custom.events[0].starts_with("denied: ") && custom.events[0].contains("allow-list"), "{custom:?}");
    assert_eq!(custom.refusals.len(), 1, "{custom:?}");
    assert_eq!(custom.hits, 0);
    assert_eq!(seen[1].1, seen[0].1, "wasi:http is refused exactly as http-client");
}

#[tokio::test]
async fn a_redirect_to_a_host_off_the_allow_list_is_refused_on_both_paths() {
    let seen = each_path(HttpLimits::default(), 3, |server| {
        server.redirect_to(&elsewhere(server));
        settings(&[("behaviour", "fetch"), ("url", &server.url("/redirect"))])
    })
    .await;
    let [(_, custom), (_, wasi)] = &seen[..] else { panic!("two paths") };
    // http-client: the gate follows the redirect itself and refuses it: one request, denied.
    assert!(custom.error.starts_with("HostRefused(") && custom.error.contains("allow-list"), "{custom:?}");
    assert_eq!(custom.events.len(), 2, "{custom:?}");
    assert_eq!(custom.events[0], "slot 1");
    assert!(custom.events[1].starts_with("denied: ") && custom.events[1].contains("redirect refused"), "{custom:?}");
    // wasi:http: the 307 comes back; the request for its Location is refused before a slot.
    assert!(wasi.error.starts_with("HostRefused(") && wasi.error.contains("allow-list"), "{wasi:?}");
    assert_eq!(wasi.events[..2], ["slot 1", "status 307"], "{wasi:?}");
    assert_eq!(wasi.events.len(), 3, "{wasi:?}");
    assert!(wasi.events[2].starts_with("denied: ") && wasi.events[2].contains("allow-list"), "{wasi:?}");
    // The same rule refuses both, in the same words; one refusal line each.
    let rule =
        |events: &[String]| events.last().and_then(|e| e.split_once("127.0.0.2").map(|(_, rest)| rest.to_string()));
    assert_eq!(rule(&custom.events), rule(&wasi.events), "the same reason");
    assert_eq!((custom.refusals.len(), wasi.refusals.len()), (1, 1));
    assert_eq!((custom.hits, wasi.hits), (1, 1), "only the redirect reached the server");
}

#[tokio::test]
async fn a_request_body_over_the_cap_is_refused_alike() {
    // Ten users: the body is "10", over a 1-byte cap.
    let limits = HttpLimits { max_request_bytes: 1, ..HttpLimits::default() };
    let seen = each_path(limits, 10, |server| settings(&[("url", &server.url("/ok"))])).await;
    let (_, custom) = &seen[0];
    assert!(custom.error.contains("request body of 2 bytes exceeds the 1-byte cap"), "{custom:?}");
    assert_eq!(custom.events, ["denied: request body of 2 bytes exceeds the 1-byte cap"]);
    assert_eq!((custom.refusals.len(), custom.hits), (1, 0));
    assert_eq!(seen[1].1, seen[0].1, "wasi:http is refused exactly as http-client");
}

#[tokio::test]
async fn a_response_body_over_the_cap_fails_alike_whether_announced_or_streamed() {
    let limits = HttpLimits { max_response_bytes: 1 << 20, ..HttpLimits::default() };
    for route in ["/huge", "/huge-chunked"] {
        let seen =
            each_path(limits.clone(), 3, |server| settings(&[("behaviour", "fetch"), ("url", &server.url(route))]))
                .await;
        let (_, custom) = &seen[0];
        assert_eq!(custom.error, r#"Destination(DestinationError::Transient("too-large"))"#, "{route}: {custom:?}");
        assert_eq!(custom.events, ["slot 1", "HttpError::TooLarge"], "{route}");
        assert!(custom.refusals.is_empty(), "the partner's answer is not a refusal of the host: {custom:?}");
        assert_eq!(seen[1].1, seen[0].1, "{route}: wasi:http fails exactly as http-client");
    }
}

#[tokio::test]
async fn a_partner_slower_than_the_hosts_timeout_times_out_alike() {
    let limits = HttpLimits { timeout: Duration::from_millis(300), ..HttpLimits::default() };
    let seen = each_path(limits, 3, |server| settings(&[("behaviour", "fetch"), ("url", &server.url("/slow"))])).await;
    let (_, custom) = &seen[0];
    assert_eq!(custom.error, r#"Destination(DestinationError::Transient("timeout"))"#, "{custom:?}");
    assert_eq!(custom.events, ["slot 1", "HttpError::Timeout"]);
    assert!(custom.refusals.is_empty(), "{custom:?}");
    assert_eq!(seen[1].1, seen[0].1, "wasi:http times out exactly as http-client");
}

#[tokio::test]
async fn a_burst_over_the_rate_is_paced_by_the_limiter_alike() {
    const CALLS: u32 = 4;
    let runtime = runtime();
    let mut records = Vec::new();
    for (path, bytes) in PATHS {
        let server = TestServer::start().await;
        // No slot yet: every request of the burst waits for the limiter.
        let hooks = Recorder::new(0);
        let plugin = load(&runtime, bytes, &server, HttpLimits::default()).await.with_hooks(hooks.clone());
        let config = settings(&[("url", &server.url("/ok"))]);
        let calls: Vec<_> = (0..CALLS)
            .map(|_| {
                let (plugin, config) = (plugin.clone(), config.clone());
                tokio::spawn(async move { add(&plugin, &config, 3).await })
            })
            .collect();
        hooks.waiting(CALLS).await;
        assert_eq!(server.hits(), 0, "{path}: nothing leaves without a slot");
        hooks.grant(1);
        hooks.finished(1).await;
        assert_eq!(server.hits(), 1, "{path}: one slot, one request");
        hooks.grant(CALLS as usize - 1);
        for call in calls {
            call.await.unwrap().unwrap_or_else(|err| panic!("{path}: {err:?}"));
        }
        assert_eq!(server.hits(), CALLS as usize, "{path}");
        records.push(hooks.events());
    }
    let expected: Vec<String> =
        ["slot 1", "status 200", "slot 2", "status 200", "slot 3", "status 200", "slot 4", "status 200"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let mut custom = records[0].clone();
    // After the first, the other three run concurrently: compare their slots and outcomes as sets.
    custom[2..].sort();
    let mut wasi = records[1].clone();
    wasi[2..].sort();
    let mut sorted = expected.clone();
    sorted[2..].sort();
    assert_eq!(custom, sorted, "http-client: each request took its own slot, in turn");
    assert_eq!(wasi, custom, "wasi:http is paced exactly as http-client");
}

#[tokio::test]
async fn a_call_waiting_for_the_partner_is_not_charged_for_it_and_lets_its_plugins_other_calls_run() {
    // One call of a plugin may run code at a time, for 300 ms of its own; the request waits
    // in the limiter three times that long.
    let config = RuntimeConfig { max_instances: 16, max_running_per_plugin: Some(1), ..RuntimeConfig::default() };
    let runtime = PluginRuntime::new(config).expect("runtime");
    let server = TestServer::start().await;
    let limits = SandboxLimits { call_timeout: Duration::from_millis(300), ..SandboxLimits::default() };
    for (path, bytes) in PATHS {
        let hooks = Recorder::new(0);
        let policy = HttpPolicy { plain_http_hosts: vec![server.host_port()], ..HttpPolicy::default() };
        let options = PluginOptions { http: Some(policy), limits: Some(limits.clone()), ..PluginOptions::default() };
        let plugin = runtime.load(bytes, options).await.expect("loads").with_hooks(hooks.clone());
        let waiting = {
            let plugin = plugin.clone();
            let config = settings(&[("url", &server.url("/ok"))]);
            tokio::spawn(async move { add(&plugin, &config, 3).await })
        };
        hooks.waiting(1).await;
        // The waiting call gave back the plugin's only running permit: another call runs.
        let other = tokio::time::timeout(Duration::from_secs(30), add(&plugin, &settings(&[]), 3)).await;
        assert!(matches!(other, Ok(Ok(_))), "{path}: the other call ran meanwhile: {other:?}");
        tokio::time::sleep(limits.call_timeout * 3).await;
        hooks.grant(1);
        let result = waiting.await.unwrap();
        assert!(result.is_ok(), "{path}: the wait was not charged to call_timeout: {result:?}");
    }
}

#[tokio::test]
async fn each_request_reports_when_it_left_and_one_that_never_connected_does_not() {
    let runtime = runtime();
    let server = TestServer::start().await;
    // A port nothing listens on: the connection is refused before anything is sent.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    for (path, bytes) in PATHS {
        let hooks = Recorder::new(100);
        let policy =
            HttpPolicy { plain_http_hosts: vec![server.host_port(), closed.to_string()], ..HttpPolicy::default() };
        let options = PluginOptions { http: Some(policy), ..PluginOptions::default() };
        let plugin = runtime.load(bytes, options).await.expect("loads").with_hooks(hooks.clone());
        // With a body (add-users posts one) and without (a fetch).
        add(&plugin, &settings(&[("url", &server.url("/ok"))]), 3).await.unwrap_or_else(|e| panic!("{path}: {e:?}"));
        let fetch = settings(&[("behaviour", "fetch"), ("url", &server.url("/ok"))]);
        let _ = add(&plugin, &fetch, 3).await;
        assert_eq!(*hooks.departures.lock(), [true, true], "{path}: both left");
        let nowhere = settings(&[("url", &format!("http://{closed}/ok"))]);
        assert!(add(&plugin, &nowhere, 3).await.is_err(), "{path}");
        assert_eq!(*hooks.departures.lock(), [true, true, false], "{path}: refused before anything was sent");
    }
}

#[tokio::test]
async fn http_client_follows_a_307_with_the_same_body_and_the_request_left_once() {
    let runtime = runtime();
    let server = TestServer::start().await;
    server.redirect_to(&server.url("/ok"));
    let (_, bytes) = PATHS[0];
    let hooks = Recorder::new(100);
    let plugin = load(&runtime, bytes, &server, HttpLimits::default()).await.with_hooks(hooks.clone());
    add(&plugin, &settings(&[("url", &server.url("/redirect"))]), 3).await.expect("followed to /ok");
    assert_eq!(server.hits(), 2, "/redirect, then /ok");
    assert_eq!(hooks.events(), ["slot 1", "status 200"]);
    assert_eq!(*hooks.departures.lock(), [true]);
}
