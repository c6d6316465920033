//! Hostile plugins beside Pinterest in one real `serve` process: each attack hurts only its own
//! syncs. The family ([`audience_lab::hostile::ATTACKS`]) is the test component loaded once
//! per attack under its own name: one spins in every write and declares a thousand concurrent
//! requests, one blows its memory, one crashes, one answers a 4 MiB error, one a 4 MiB
//! `not-found`, one floods the log, one echoes its secrets.
//!
//! What is asserted is what an operator would see, not timings: Pinterest delivers every user,
//! the host's peak memory and its log stay under bounds derived from its settings, no secret a
//! plugin was handed appears in the log or the API, and each attack shows on its own sync
//! (degraded or broken, with recent errors) and in the metrics. How much throughput and intake
//! latency the attacks cost is measured by `audience-host bench containment`.

use std::time::{Duration, Instant};

use audience_host::config::{HostConfig, PluginSettings, SecretSource};
use audience_lab::hostile::{ATTACKS, tokens};
use audience_lab::process::ServeProcess;
use audience_sandbox::{PinterestSandbox, SandboxConfig, SandboxHandle};

use crate::support::{ApiClient, OPERATOR_KEY, config, free_port};

/// Pinterest users entered while the attacks run.
const PINTEREST_USERS: usize = 6_000;
/// Users entered into each hostile sync.
const HOSTILE_USERS: usize = 300;
/// The client secret of the leaking plugin, handed to it like any app secret.
const LEAK_CLIENT_SECRET: &str = "hostile-app-secret-0123456789";
/// The host's peak resident memory may not exceed this. Before the boundary cut, one 4 MiB
/// error for a batch of 1,900 users took the host to 5 GB.
const MAX_PEAK_RSS: u64 = 1 << 30;

fn host_config(dir: &std::path::Path, port: u16, sandbox: &str, component: &std::path::Path) -> HostConfig {
    let mut config = config(port, &dir.join("host.db").display().to_string(), &dir.join("cache"), sandbox);
    // A spinning call is interrupted after 1 s of its own time (10 s by default), so the
    // attacks show within seconds.
    config.runtime.limits.call_timeout = Duration::from_secs(1);
    for attack in ATTACKS {
        let name = attack.name;
        let mut plugin = PluginSettings {
            component: component.display().to_string(),
            allowed_hosts: Some(vec![]),
            ..PluginSettings::default()
        };
        plugin.settings.insert("name".into(), name.into());
        for (key, value) in attack.settings {
            plugin.settings.insert((*key).into(), (*value).into());
        }
        if name == "hostile-leak" {
            plugin.client_secret = SecretSource::env("TEST_LEAK_SECRET");
        }
        config.plugins.insert(name.into(), plugin);
    }
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plugins_beside_pinterest_hurt_only_their_own_syncs() -> anyhow::Result<()> {
    let sandbox = PinterestSandbox::start(SandboxConfig::default()).await?;
    let handle = sandbox.handle();
    let dir = tempfile::tempdir()?;
    let component = dir.path().join("test-destination.wasm");
    std::fs::write(&component, audience_plugin_artifacts::TEST_DESTINATION)?;
    let port = free_port()?;
    let config_path = dir.path().join("host.toml");
    let config = host_config(dir.path(), port, &sandbox.base_url(), &component);
    let limits = config.runtime.limits.clone();
    config.write(&config_path)?;

    let log_path = dir.path().join("host.log");
    let env = [
        ("TEST_CREDENTIALS_KEY", "11".repeat(32)),
        ("TEST_OPERATOR_KEY", OPERATOR_KEY.to_string()),
        ("TEST_PINTEREST_SECRET", SandboxHandle::DEFAULT_CLIENT_SECRET.to_string()),
        ("TEST_LEAK_SECRET", LEAK_CLIENT_SECRET.to_string()),
    ];
    let started = Instant::now();
    let host = ServeProcess::spawn_logging(
        std::path::Path::new(env!("CARGO_BIN_EXE_audience-host")),
        &config_path,
        &env,
        "info",
        std::fs::File::create(&log_path)?,
    )?;
    let api = ApiClient::new(format!("http://127.0.0.1:{port}"), Duration::from_secs(30))?;
    api.wait_ready().await?;
    let key = api.create_workspace(OPERATOR_KEY, "containment").await?;

    // Every attack gets a connection and a sync, and users to deliver.
    let mut hostile = Vec::new();
    for attack in ATTACKS {
        let name = attack.name;
        let (access, refresh) = tokens(name);
        let (connection, sync_id) = api
            .connect_with_tokens_and_sync(&key, name, (&access, &refresh), "acct-1", &format!("{name} audience"))
            .await?;
        let emails: Vec<String> = (0..HOSTILE_USERS).map(|i| format!("{name}-{i}@example.com")).collect();
        api.enter_emails(&key, &sync_id, &emails).await?;
        hostile.push((name, connection, sync_id));
    }

    // Pinterest's users enter while the attacks run.
    let account = handle.ad_account_ids()[0].clone();
    let (_, pinterest_sync) = api.connect_and_sync(&key, &handle, &account, "under attack").await?;
    for chunk in (0..PINTEREST_USERS).collect::<Vec<_>>().chunks(1_000) {
        let emails: Vec<String> = chunk.iter().map(|i| format!("user{i}@example.com")).collect();
        let sent = Instant::now();
        api.enter_emails(&key, &pinterest_sync, &emails).await?;
        eprintln!("an intake call of {} users took {:?} beside the attacks", emails.len(), sent.elapsed());
    }

    // Pinterest delivers everyone, and each attack shows on its sync.
    let expected_status =
        |name: &str| ATTACKS.iter().find(|attack| attack.name == name).and_then(|attack| attack.shows_as);
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let view = api.sync(&key, &pinterest_sync).await?;
        let synced = view["counts"]["synced"].as_u64().unwrap_or(0);
        let mut waiting = Vec::new();
        if synced < PINTEREST_USERS as u64 {
            waiting.push(format!("pinterest synced {synced}"));
        }
        for (name, _, sync) in &hostile {
            let view = api.sync(&key, sync).await?;
            if let Some(status) = expected_status(name)
                && view["status"] != status
            {
                waiting.push(format!("{name} is {}", view["status"]));
            }
        }
        if waiting.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still waiting after 240 s: {waiting:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let list = handle.find_customer_list(&account, "under attack").expect("Pinterest's list exists");
    assert_eq!(handle.members(&list).len(), PINTEREST_USERS, "every Pinterest user reached the partner");

    // Each attack is visible to the operator: on its sync...
    for (name, _, sync) in &hostile {
        let view = api.sync(&key, sync).await?;
        let text = view.to_string();
        assert!(text.len() < 64 << 10, "{name}: the sync's answer is {} bytes", text.len());
        if let Some(reason) = view["status_reason"].as_str() {
            assert!(reason.len() <= 2 << 10, "{name}: a status reason of {} bytes", reason.len());
        }
        if expected_status(name) == Some("degraded") {
            let errors = view["recent_errors"].as_array().expect("recent errors");
            assert!(
                errors
                    .iter()
                    .any(|e| e.get("key").is_none() && e["reason"].as_str().unwrap_or("").contains("add-users")),
                "{name}: the failed calls are among the recent errors: {errors:?}"
            );
        }
    }
    // ...and in the metrics, by plugin and kind of failure.
    let metrics = api.metrics(OPERATOR_KEY).await?;
    for (name, kind) in [("hostile-spin", "timeout"), ("hostile-memory", "memory_limit"), ("hostile-crash", "trap")] {
        let failures = failures_of(&metrics, name, kind);
        assert!(failures > 0.0, "audience_plugin_failures_total of {name} ({kind}) is {failures}");
        assert_eq!(destination_gauge(&metrics, "audience_syncs_degraded", name), 1.0, "{name} degraded in the metrics");
    }

    let dropped =
        crate::support::metric(&metrics, "audience_plugin_log_lines_dropped_total{destination=\"hostile-logs\"}");
    assert!(dropped > 0.0, "the flood beyond the log budget is counted: {dropped}");

    // No secret a plugin was handed is in the API's answers (nor, below, in the log).
    let (access, refresh) = tokens("hostile-leak");
    let (_, leak_connection, leak_sync) = hostile.iter().find(|(n, _, _)| *n == "hostile-leak").expect("leak");
    let answers = [
        api.sync(&key, leak_sync).await?.to_string(),
        api.call(reqwest::Method::GET, &format!("/v1/connections/{leak_connection}"), &key, None).await?.to_string(),
    ];
    let secrets = [access.as_str(), refresh.as_str(), LEAK_CLIENT_SECRET];
    for secret in secrets {
        for answer in &answers {
            assert!(!answer.contains(secret), "{secret} is in an API answer: {answer}");
        }
    }

    // The host's memory stayed bounded.
    let peak = host.peak_rss().expect("the host's peak memory is readable on Linux");
    eprintln!("peak RSS of the host beside the attacks: {} MiB", peak >> 20);
    assert!(peak < MAX_PEAK_RSS, "the host peaked at {} MiB", peak >> 20);
    drop(host);

    // Its log stayed within what the per-plugin budget allows (each flooding plugin: a burst
    // of one call's lines, then its rate), plus the host's own lines.
    let seconds = started.elapsed().as_secs_f64();
    let budget_lines = limits.max_log_lines_per_call as f64 + limits.max_log_lines_per_second * seconds;
    let bound = (budget_lines * 4_400.0) as u64 + (4 << 20);
    let log = std::fs::read_to_string(&log_path)?;
    eprintln!("log: {} bytes in {seconds:.0} s (bound {bound})", log.len());
    assert!((log.len() as u64) < bound, "{} bytes of log in {seconds:.0} s; the budget allows {bound}", log.len());

    for secret in secrets {
        assert!(!log.contains(secret), "{secret} is in the host's log");
    }
    assert!(log.contains("[redacted access token]"), "the leak was scrubbed, not absent");
    Ok(())
}

/// `audience_plugin_failures_total` of `destination` and `kind`, summed over functions.
fn failures_of(metrics: &str, destination: &str, kind: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("audience_plugin_failures_total{"))
        .filter(|l| l.contains(&format!("destination=\"{destination}\"")) && l.contains(&format!("kind=\"{kind}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A gauge of `destination`, summed over its series.
fn destination_gauge(metrics: &str, name: &str, destination: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{destination=\"{destination}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
