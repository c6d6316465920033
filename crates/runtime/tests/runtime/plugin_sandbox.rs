//! The plugin runtime's promises, checked against real components: loading refuses what is not
//! a destination with a message that says why, and a hostile plugin only ever fails its own
//! call while a well-behaved one keeps working beside it.

use std::time::{Duration, Instant};

use crate::support::{TestServer, creds, settings};
use audience_plugin_artifacts as artifacts;
use audience_runtime::types::*;
use audience_runtime::{
    CacheOutcome, CallError, HttpLimits, HttpPolicy, LoadError, LogSource, MAX_TEXT_BYTES, Plugin, PluginError,
    PluginOptions, PluginRuntime, RequestHooks, RuntimeConfig, SandboxLimits,
};

fn runtime() -> PluginRuntime {
    PluginRuntime::new(RuntimeConfig { max_instances: 16, ..RuntimeConfig::default() }).expect("runtime")
}

fn users(n: usize) -> Vec<PreparedUser> {
    (0..n)
        .map(|i| PreparedUser {
            key: format!("user-{i}"),
            identifiers: vec![Identifier { kind: "email".into(), value: format!("u{i}@example.com") }],
            consent: None,
        })
        .collect()
}

fn batch(users: Vec<PreparedUser>) -> Batch {
    Batch { id: "batch-1".into(), attempt: 1, users }
}

/// The per-user results of a write that finished in its call (the test destination's default).
fn done(outcome: WriteOutcome) -> BatchOutcome {
    match outcome {
        WriteOutcome::Done(outcome) => outcome,
        WriteOutcome::Submitted(submission) => panic!("expected a finished write, got {submission:?}"),
    }
}

async fn add(plugin: &Plugin, config: &PluginConfig) -> Result<BatchOutcome, CallError> {
    plugin.add_users(config, &creds(), "acct", &AudienceTarget::Existing("aud".into()), batch(users(3))).await.map(done)
}

async fn load_test_plugin(runtime: &PluginRuntime, options: PluginOptions) -> Plugin {
    runtime.load(artifacts::TEST_DESTINATION, options).await.expect("test destination loads")
}

fn allow_plain(server: &TestServer, limits: HttpLimits) -> PluginOptions {
    PluginOptions {
        http: Some(HttpPolicy { plain_http_hosts: vec![server.host_port()], limits, ..HttpPolicy::default() }),
        ..PluginOptions::default()
    }
}

#[tokio::test]
async fn core_module_is_refused_with_a_clear_message() {
    let core = wat::parse_str("(module (func (export \"run\")))").unwrap();
    let err = runtime().load(&core, PluginOptions::default()).await.err().expect("refused");
    assert!(matches!(err, LoadError::CoreModule), "{err:?}");
    assert!(err.to_string().contains("wasm32-wasip2"), "message tells what to do: {err}");
}

#[tokio::test]
async fn a_file_that_is_not_wasm_is_refused() {
    let err = runtime().load(b"#!/bin/sh\necho hi\n", PluginOptions::default()).await.err().expect("refused");
    assert!(matches!(err, LoadError::NotWasm), "{err:?}");
}

#[tokio::test]
async fn component_without_the_destination_export_is_refused() {
    let err = runtime().load(artifacts::NO_DESTINATION, PluginOptions::default()).await.err().expect("refused");
    let LoadError::MissingExport { found } = &err else { panic!("{err:?}") };
    assert!(found.contains("greet"), "names what it found: {err}");
    assert!(err.to_string().contains("audience:destination/plugin"), "{err}");
}

#[tokio::test]
async fn well_behaved_plugin_describes_itself_and_answers_calls() {
    let runtime = runtime();
    let plugin = load_test_plugin(&runtime, PluginOptions::default()).await;
    assert_eq!(plugin.name(), "test");
    assert_eq!(plugin.manifest().limits.max_batch_size, 100);

    let raw = vec![
        RawUser {
            key: "a".into(),
            identifiers: vec![Identifier { kind: "email".into(), value: " A@X.COM ".into() }],
            consent: None,
        },
        RawUser {
            key: "b".into(),
            identifiers: vec![Identifier { kind: "phone".into(), value: "123".into() }],
            consent: None,
        },
    ];
    let prepared = plugin.prepare_users(&["email".into()], raw).await.unwrap();
    assert!(matches!(&prepared[0], Preparation::Ready(u) if u.identifiers[0].value == "a@x.com"));
    assert!(matches!(&prepared[1], Preparation::NotSynced(_)));

    let mut outcome_users = users(2);
    outcome_users[1].key = "reject-me".into();
    let outcome = plugin
        .add_users(&settings(&[]), &creds(), "acct", &AudienceTarget::Existing("x".into()), batch(outcome_users))
        .await
        .map(done)
        .unwrap();
    assert_eq!(outcome.rejected.len(), 1);
    assert_eq!(outcome.rejected[0].key, "reject-me");
}

#[tokio::test]
async fn infinite_loop_is_interrupted_and_a_good_plugin_keeps_working_meanwhile() {
    let runtime = runtime();
    let limits = SandboxLimits { call_timeout: Duration::from_millis(1500), ..SandboxLimits::default() };
    let hostile = load_test_plugin(&runtime, PluginOptions { limits: Some(limits), ..Default::default() }).await;
    let good = load_test_plugin(&runtime, PluginOptions::default()).await;

    let started = Instant::now();
    let looping = tokio::spawn(async move { add(&hostile, &settings(&[("behaviour", "loop")])).await });
    // While the loop spins, the good plugin answers many calls (the loop yields at every tick).
    let mut answered = 0;
    while !looping.is_finished() {
        add(&good, &settings(&[])).await.expect("good plugin answers");
        answered += 1;
    }
    let err = looping.await.unwrap().expect_err("the loop is interrupted");
    assert_eq!(err, CallError::Plugin(PluginError::Timeout(Duration::from_millis(1500))));
    assert!(started.elapsed() < Duration::from_secs(5), "interrupted near its limit");
    assert!(answered > 10, "the good plugin kept answering while the loop ran ({answered} calls)");
}

#[tokio::test]
async fn memory_bomb_is_refused_at_the_limit() {
    let runtime = runtime();
    let limits = SandboxLimits { memory_limit: 16 << 20, ..SandboxLimits::default() };
    let plugin = load_test_plugin(&runtime, PluginOptions { limits: Some(limits), ..Default::default() }).await;
    let err = add(&plugin, &settings(&[("behaviour", "memory-bomb")])).await.expect_err("refused");
    assert_eq!(err, CallError::Plugin(PluginError::MemoryLimit { limit: 16 << 20 }));
    // The same plugin's next call gets a fresh instance and works.
    add(&plugin, &settings(&[])).await.expect("next call works");
}

#[tokio::test]
async fn a_trap_does_not_poison_the_next_call() {
    let runtime = runtime();
    let plugin = load_test_plugin(&runtime, PluginOptions { capture_logs: true, ..Default::default() }).await;
    let err = add(&plugin, &settings(&[("behaviour", "panic")])).await.expect_err("panics");
    assert!(matches!(err, CallError::Plugin(PluginError::Trap(_))), "{err:?}");
    let logs = plugin.captured_logs();
    assert!(
        logs.iter().any(|l| l.source == LogSource::Stderr && l.message.contains("asked to panic")),
        "the panic message reaches the log: {logs:?}"
    );
    for _ in 0..3 {
        add(&plugin, &settings(&[])).await.expect("calls after a trap work");
    }
}

#[tokio::test]
async fn concurrent_calls_from_many_tasks_all_succeed() {
    let runtime = runtime();
    let plugin = load_test_plugin(&runtime, PluginOptions::default()).await;
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let plugin = plugin.clone();
            tokio::spawn(async move { add(&plugin, &settings(&[])).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().expect("call succeeds");
    }
}

#[tokio::test]
async fn wasi_grants_no_files_environment_arguments_or_stdin() {
    let runtime = runtime();
    let plugin = load_test_plugin(&runtime, PluginOptions::default()).await;
    let err = add(&plugin, &settings(&[("behaviour", "probe")])).await.expect_err("probe reports");
    let CallError::Destination(DestinationError::InvalidRequest(report)) = err else { panic!("{err:?}") };
    eprintln!("probe: {report}");
    assert!(report.contains("root=Err("), "no filesystem root: {report}");
    assert!(report.contains("passwd=Err("), "cannot read host files: {report}");
    assert!(report.contains("env=0 args=0"), "no environment or arguments: {report}");
    assert!(report.contains("stdin=Ok(0)"), "stdin is empty: {report}");
}

#[tokio::test]
async fn a_disallowed_host_is_refused_before_anything_is_sent() {
    let server = TestServer::start().await;
    let runtime = runtime();
    // Only some other port is allowed: the server's own address is not.
    let options = PluginOptions {
        http: Some(HttpPolicy { plain_http_hosts: vec!["127.0.0.1:1".into()], ..HttpPolicy::default() }),
        capture_logs: true,
        ..Default::default()
    };
    let plugin = load_test_plugin(&runtime, options).await;
    let url = server.url("/ok");
    let err = add(&plugin, &settings(&[("behaviour", "fetch"), ("url", &url)])).await.expect_err("denied");
    // The plugin reports the refusal as the partner's invalid request; the host knows better.
    let CallError::HostRefused(why) = err else { panic!("{err:?}") };
    assert!(why.contains("allow-list"), "{why}");
    assert_eq!(server.hits(), 0, "nothing reached the server");
    assert!(plugin.captured_logs().iter().any(|l| l.message.contains("host refused")), "the refusal is logged");
}

#[tokio::test]
async fn an_empty_allow_list_denies_all_network_access() {
    let server = TestServer::start().await;
    let runtime = runtime();
    let plugin =
        load_test_plugin(&runtime, PluginOptions { http: Some(HttpPolicy::default()), ..Default::default() }).await;
    let url = server.url("/ok");
    let err = add(&plugin, &settings(&[("url", &url)])).await.expect_err("denied");
    assert!(matches!(err, CallError::HostRefused(ref why) if why.contains("allow-list")), "{err:?}");
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn plain_http_needs_explicit_permission() {
    let server = TestServer::start().await;
    let runtime = runtime();
    let https_only = PluginOptions {
        http: Some(HttpPolicy { allowed_hosts: vec![server.host_port()], ..HttpPolicy::default() }),
        ..Default::default()
    };
    let plugin = load_test_plugin(&runtime, https_only).await;
    let url = server.url("/ok");
    let err = add(&plugin, &settings(&[("url", &url)])).await.expect_err("plain http refused");
    assert!(matches!(err, CallError::HostRefused(ref why) if why.contains("plain http")), "{err:?}");

    let plugin = load_test_plugin(&runtime, allow_plain(&server, HttpLimits::default())).await;
    add(&plugin, &settings(&[("url", &url)])).await.expect("allowed over plain http");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_redirect_to_a_host_off_the_list_is_refused() {
    let allowed = TestServer::start().await;
    let other = TestServer::start().await;
    allowed.redirect_to(&other.url("/ok"));
    let runtime = runtime();
    let plugin = load_test_plugin(&runtime, allow_plain(&allowed, HttpLimits::default())).await;
    let url = allowed.url("/redirect");
    let err = add(&plugin, &settings(&[("behaviour", "fetch"), ("url", &url)])).await.expect_err("refused");
    assert!(matches!(err, CallError::HostRefused(ref why) if why.contains("allow-list")), "{err:?}");
    assert_eq!(other.hits(), 0, "the redirect target was never contacted");
}

#[tokio::test]
async fn a_huge_response_is_cut_off_at_the_cap() {
    let server = TestServer::start().await;
    let runtime = runtime();
    let limits = HttpLimits { max_response_bytes: 1 << 20, ..HttpLimits::default() };
    let plugin = load_test_plugin(&runtime, allow_plain(&server, limits)).await;
    for path in ["/huge", "/huge-chunked"] {
        let url = server.url(path);
        let err = add(&plugin, &settings(&[("behaviour", "fetch"), ("url", &url)])).await.expect_err("too large");
        assert_eq!(err, CallError::Destination(DestinationError::Transient("too-large".into())), "{path}");
    }
}

#[tokio::test]
async fn a_slow_partner_times_out_without_holding_the_call() {
    let server = TestServer::start().await;
    let runtime = runtime();
    let limits = HttpLimits { timeout: Duration::from_millis(300), ..HttpLimits::default() };
    let plugin = load_test_plugin(&runtime, allow_plain(&server, limits)).await;
    let url = server.url("/slow");
    let started = Instant::now();
    let err = add(&plugin, &settings(&[("behaviour", "fetch"), ("url", &url)])).await.expect_err("times out");
    assert_eq!(err, CallError::Destination(DestinationError::Transient("timeout".into())));
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// Paces each request by making it wait, as the engine's rate limiter does.
struct WaitBeforeEachRequest(Duration);

impl RequestHooks for WaitBeforeEachRequest {
    fn before_send(&self) -> futures::future::BoxFuture<'_, Result<audience_runtime::Departure, String>> {
        Box::pin(async move {
            tokio::time::sleep(self.0).await;
            Ok(audience_runtime::Departure::untracked())
        })
    }

    fn after_send(&self, _outcome: Result<u16, &audience_runtime::http_types::HttpError>, _elapsed: Duration) {}
}

#[tokio::test]
async fn waits_for_the_partner_and_the_rate_limiter_are_not_charged_to_the_plugin_deadline() {
    let server = TestServer::start().await;
    let runtime = runtime();
    // The plugin may run its own code for 300 ms; the partner answers after 800 ms and the
    // limiter holds the request for 700 ms more. The call takes 1.5 s and succeeds.
    let limits = SandboxLimits { call_timeout: Duration::from_millis(300), ..SandboxLimits::default() };
    let options = PluginOptions { limits: Some(limits), ..allow_plain(&server, HttpLimits::default()) };
    let plugin = load_test_plugin(&runtime, options)
        .await
        .with_hooks(std::sync::Arc::new(WaitBeforeEachRequest(Duration::from_millis(700))));
    let url = server.url("/late-ok");
    let started = Instant::now();
    add(&plugin, &settings(&[("behaviour", "fetch"), ("url", &url)])).await.expect("the call succeeds");
    assert!(started.elapsed() >= Duration::from_millis(1500), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_call_waiting_past_its_whole_budget_is_abandoned() {
    let server = TestServer::start().await;
    let runtime = runtime();
    let limits = SandboxLimits { max_call_duration: Duration::from_millis(500), ..SandboxLimits::default() };
    let options = PluginOptions { limits: Some(limits), ..allow_plain(&server, HttpLimits::default()) };
    let plugin = load_test_plugin(&runtime, options).await;
    let url = server.url("/slow");
    let err = add(&plugin, &settings(&[("behaviour", "fetch"), ("url", &url)])).await.expect_err("abandoned");
    assert_eq!(err, CallError::Plugin(PluginError::TooLong(Duration::from_millis(500))));
}

#[tokio::test]
async fn stdout_stderr_and_the_log_import_reach_the_log_tagged_by_source() {
    let runtime = runtime();
    let plugin = load_test_plugin(&runtime, PluginOptions { capture_logs: true, ..Default::default() }).await;
    add(&plugin, &settings(&[("behaviour", "print")])).await.unwrap();
    let logs = plugin.captured_logs();
    let has = |source, text: &str| logs.iter().any(|l| l.source == source && l.message == text);
    assert!(has(LogSource::Stdout, "a line on stdout"), "{logs:?}");
    assert!(has(LogSource::Stderr, "a line on stderr"), "{logs:?}");
    assert!(has(LogSource::Log, "a line through the log import"), "{logs:?}");
}

#[tokio::test]
async fn the_compile_cache_is_reused_and_a_corrupt_entry_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let config = RuntimeConfig { cache_dir: Some(dir.path().to_path_buf()), max_instances: 4, ..Default::default() };
    let runtime = PluginRuntime::new(config.clone()).unwrap();
    let load = |runtime: PluginRuntime| async move {
        runtime.load(artifacts::TEST_DESTINATION, PluginOptions::default()).await.expect("loads").cache_outcome()
    };
    assert_eq!(load(runtime.clone()).await, CacheOutcome::Miss);
    // A second start (a new runtime, same directory) reuses the artifact.
    assert_eq!(load(PluginRuntime::new(config.clone()).unwrap()).await, CacheOutcome::Hit);

    let entry = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
    let good = std::fs::read(&entry).unwrap();
    // Truncated.
    std::fs::write(&entry, &good[..good.len() / 2]).unwrap();
    assert_eq!(load(runtime.clone()).await, CacheOutcome::Rebuilt);
    assert_eq!(std::fs::read(&entry).unwrap(), good, "rewritten whole");
    // One flipped byte in the middle of the machine code.
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    std::fs::write(&entry, &flipped).unwrap();
    assert_eq!(load(runtime.clone()).await, CacheOutcome::Rebuilt);
    // Garbage of the right length.
    std::fs::write(&entry, vec![0u8; good.len()]).unwrap();
    assert_eq!(load(runtime.clone()).await, CacheOutcome::Rebuilt);
    assert_eq!(load(runtime).await, CacheOutcome::Hit);
    let plugin =
        PluginRuntime::new(config).unwrap().load(artifacts::TEST_DESTINATION, PluginOptions::default()).await.unwrap();
    add(&plugin, &settings(&[])).await.expect("a rebuilt plugin works");
}

#[tokio::test]
async fn every_string_a_plugin_returns_is_cut_at_the_boundary() {
    let runtime = runtime();
    let plugin = load_test_plugin(&runtime, PluginOptions::default()).await;
    let err = add(&plugin, &settings(&[("behaviour", "huge-error")])).await.expect_err("an error");
    let CallError::Destination(DestinationError::Transient(reason)) = &err else { panic!("{err:?}") };
    assert!(reason.len() < MAX_TEXT_BYTES + 64, "a 4 MiB reason kept {} bytes", reason.len());
    assert!(reason.ends_with("bytes cut]"), "the cut is marked");

    let outcome = add(&plugin, &settings(&[("behaviour", "huge-rejections")])).await.expect("an outcome");
    assert_eq!(outcome.rejected.len(), 3);
    assert!(outcome.rejected.iter().all(|r| r.reason.len() < MAX_TEXT_BYTES + 64));
}

#[tokio::test]
async fn rejections_of_users_never_sent_break_the_contract() {
    let runtime = runtime();
    let plugin = load_test_plugin(&runtime, PluginOptions::default()).await;
    let err = add(&plugin, &settings(&[("behaviour", "huge-rejections"), ("extra", "1")])).await.expect_err("refused");
    assert!(
        matches!(err, CallError::Plugin(PluginError::Contract(ref why)) if why.contains("4 users reported rejected in a batch of 3")),
        "{err:?}"
    );
}

#[tokio::test]
async fn credentials_that_would_inject_a_header_are_refused_as_the_plugin_returns_them() {
    let runtime = runtime();
    let plugin = load_test_plugin(&runtime, PluginOptions::default()).await;
    let grant = Grant::Refresh(Credentials { refresh_token: Some("refresh-1".into()), ..creds() });
    let err = plugin.authorize(&settings(&[("behaviour", "crlf-token")]), grant).await.expect_err("refused");
    assert!(
        matches!(err, CallError::Plugin(PluginError::Contract(ref why)) if why.contains("control characters")),
        "{err:?}"
    );
}

#[tokio::test]
async fn many_small_calls_cannot_add_up_to_a_flood_of_log_lines() {
    let runtime = runtime();
    // Each call writes 3 lines; the plugin may write 5 at once and then 1 a second.
    let limits = SandboxLimits { max_log_lines_per_call: 5, max_log_lines_per_second: 1.0, ..SandboxLimits::default() };
    let options = PluginOptions { limits: Some(limits), capture_logs: true, ..PluginOptions::default() };
    let plugin = load_test_plugin(&runtime, options).await;
    let started = Instant::now();
    for _ in 0..20 {
        add(&plugin, &settings(&[("behaviour", "print")])).await.unwrap();
    }
    let allowed = 5 + started.elapsed().as_secs() as usize + 1;
    let kept = plugin.captured_logs().len();
    assert!(kept <= allowed, "{kept} of 60 lines kept, at most {allowed} allowed");
    assert_eq!(plugin.log_lines_dropped() as usize, 60 - kept, "every line not kept is counted");
}

#[tokio::test]
async fn secrets_a_plugin_echoes_are_scrubbed_from_its_logs_errors_and_refusals() {
    let runtime = runtime();
    let options = PluginOptions { capture_logs: true, ..PluginOptions::default() };
    let plugin = load_test_plugin(&runtime, options).await;
    let config =
        PluginConfig { client_secret: Some("app-secret-0123456789".into()), ..settings(&[("behaviour", "leak")]) };
    let creds = Credentials { refresh_token: Some("refresh-secret-0123456789".into()), ..creds() };
    let err = plugin
        .add_users(&config, &creds, "acct", &AudienceTarget::Existing("aud".into()), batch(users(3)))
        .await
        .expect_err("the leak behaviour fails");
    let secrets = ["secret-token", "refresh-secret-0123456789", "app-secret-0123456789"];
    // The plugin's request with the token in a header name was refused by the host: that
    // refusal is the call's error, and it quoted the header name.
    let CallError::HostRefused(why) = &err else { panic!("{err:?}") };
    assert!(why.contains("[redacted access token]"), "{why}");
    let logs = plugin.captured_logs();
    assert!(logs.len() >= 3, "{logs:?}");
    for text in std::iter::once(err.to_string()).chain(logs.iter().map(|l| l.message.clone())) {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} in {text:?}");
        }
    }
    let all = logs.iter().map(|l| l.message.as_str()).collect::<Vec<_>>().join("\n");
    assert!(all.contains("[redacted access token]") && all.contains("[redacted refresh token]"), "{all}");

    // Without a refused request, the plugin's own error reason is scrubbed the same way.
    let err = plugin
        .add_users(
            &PluginConfig { client_secret: config.client_secret.clone(), ..settings(&[("behaviour", "huge-error")]) },
            &Credentials { access_token: "E".repeat(64), ..creds.clone() },
            "acct",
            &AudienceTarget::Existing("aud".into()),
            batch(users(1)),
        )
        .await
        .expect_err("fails");
    let CallError::Destination(DestinationError::Transient(reason)) = &err else { panic!("{err:?}") };
    assert!(reason.starts_with("[redacted access token]"), "scrubbed before it is cut: {}", &reason[..80]);
}
