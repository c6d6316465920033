//! `audience-host bench containment`: what each hostile plugin costs Pinterest beside it.
//!
//! One run per configuration, each a fresh `serve` process of this binary with its own SQLite
//! store and a Pinterest sandbox enforcing Pinterest's limit (7 requests/s per token, 1,900
//! users per request): first Pinterest alone (the baseline), then Pinterest beside each attack
//! of [`audience_lab::hostile::ATTACKS`], whose sync has users to deliver throughout. In each
//! run the users enter in calls of 1,000 while Pinterest delivers; the figures are Pinterest's
//! delivered users/s from the first entry to the last user synced, the intake calls' p50 and
//! p99, the host's peak resident memory and the bytes it logged (at `info`). The report gives
//! each attack's rate as a fraction of the baseline.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use audience_host::config::{HostConfig, PluginSettings, SecretSource};
use audience_host::service::BUILTIN_PINTEREST;
use audience_lab::hostile::{ATTACKS, Attack, tokens};
use audience_lab::process::{ApiClient, ServeProcess, free_port};
use audience_sandbox::{PinterestSandbox, SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

const OPERATOR_KEY: &str = "bench-containment-operator-key";
const USERS_PER_CALL: usize = 1_000;
/// Users entered into the hostile sync of a run.
const HOSTILE_USERS: usize = 2_000;

/// The baseline, then each attack; `users` Pinterest users per run.
pub async fn run(users: usize) -> anyhow::Result<Value> {
    let baseline = run_with(None, users).await.context("the baseline run failed")?;
    eprintln!("{baseline}");
    let base_rate = baseline["delivered_users_per_second"].as_f64().unwrap_or(0.0);
    let mut rows = vec![baseline];
    for attack in ATTACKS {
        let mut row =
            run_with(Some(attack), users).await.with_context(|| format!("the run beside {} failed", attack.name))?;
        let rate = row["delivered_users_per_second"].as_f64().unwrap_or(0.0);
        row["rate_vs_baseline"] =
            json!(if base_rate > 0.0 { (rate / base_rate * 1000.0).round() / 1000.0 } else { 0.0 });
        eprintln!("{row}");
        rows.push(row);
    }
    Ok(json!({ "scenario": "containment", "pinterest_users": users, "results": rows }))
}

/// A host on a SQLite file in `dir`, listening on `port`, with the Pinterest plugin pointed at
/// the sandbox at `sandbox`, its limits as the plugin declares them; everything else as a new
/// operator leaves it. The secrets come from `BENCH_*` environment variables.
pub(super) fn pinterest_host(dir: &Path, port: u16, sandbox: &str) -> HostConfig {
    let mut config = HostConfig {
        listen: format!("127.0.0.1:{port}"),
        public_url: format!("http://127.0.0.1:{port}"),
        store: dir.join("host.db").display().to_string(),
        credentials_key: SecretSource::env("BENCH_CREDENTIALS_KEY"),
        operator_key: SecretSource::env("BENCH_OPERATOR_KEY"),
        ..HostConfig::default()
    };
    config.runtime.cache_dir = Some(dir.join("cache"));
    let secret = SecretSource::env("BENCH_PINTEREST_SECRET");
    config.plugins.insert(
        "pinterest".into(),
        PluginSettings::pointed_at(BUILTIN_PINTEREST, sandbox, SandboxHandle::DEFAULT_CLIENT_ID, secret),
    );
    config
}

fn write_config(dir: &Path, port: u16, sandbox: &str, attack: Option<Attack>) -> anyhow::Result<std::path::PathBuf> {
    let mut config = pinterest_host(dir, port, sandbox);
    if let Some(attack) = attack {
        let component = dir.join("test-destination.wasm");
        std::fs::write(&component, audience_plugin_artifacts::TEST_DESTINATION)?;
        let mut plugin = PluginSettings {
            component: component.display().to_string(),
            allowed_hosts: Some(vec![]),
            client_secret: SecretSource::env("BENCH_HOSTILE_SECRET"),
            ..PluginSettings::default()
        };
        plugin.settings.insert("name".into(), attack.name.into());
        for (key, value) in attack.settings {
            plugin.settings.insert((*key).into(), (*value).into());
        }
        config.plugins.insert(attack.name.into(), plugin);
    }
    let path = dir.join("host.toml");
    config.write(&path)?;
    Ok(path)
}

async fn run_with(attack: Option<Attack>, users: usize) -> anyhow::Result<Value> {
    let sandbox =
        PinterestSandbox::start(SandboxConfig::default()).await.context("cannot start the Pinterest sandbox")?;
    let handle = sandbox.handle();
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let config = write_config(dir.path(), port, &sandbox.base_url(), attack)?;
    let log_path = dir.path().join("host.log");
    let env = [
        ("BENCH_CREDENTIALS_KEY", "33".repeat(32)),
        ("BENCH_OPERATOR_KEY", OPERATOR_KEY.to_string()),
        ("BENCH_PINTEREST_SECRET", SandboxHandle::DEFAULT_CLIENT_SECRET.to_string()),
        ("BENCH_HOSTILE_SECRET", "bench-hostile-app-secret-0123".to_string()),
    ];
    let exe = std::env::current_exe().context("cannot find this program to start a host")?;
    let host = ServeProcess::spawn_logging(&exe, &config, &env, "info", std::fs::File::create(&log_path)?)?;
    let api = ApiClient::new(format!("http://127.0.0.1:{port}"), Duration::from_secs(60))?;
    api.wait_ready().await?;
    let key = api.create_workspace(OPERATOR_KEY, "bench").await?;

    if let Some(attack) = attack {
        let (access, refresh) = tokens(attack.name);
        let (_, sync) =
            api.connect_with_tokens_and_sync(&key, attack.name, (&access, &refresh), "acct-1", "hostile").await?;
        let sync = sync.as_str();
        for first in (0..HOSTILE_USERS).step_by(USERS_PER_CALL) {
            let emails: Vec<String> = (first..first + USERS_PER_CALL).map(|i| format!("h{i}@example.com")).collect();
            api.enter_emails(&key, sync, &emails).await?;
        }
        // Let the attack start before Pinterest's users arrive.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    let account = handle.ad_account_ids().first().cloned().context("the sandbox has no ad account")?;
    let (_, sync) = api.connect_and_sync(&key, &handle, &account, "bench").await?;
    let started = Instant::now();
    let mut latencies = Vec::new();
    for first in (0..users).step_by(USERS_PER_CALL) {
        let last = (first + USERS_PER_CALL).min(users);
        let emails: Vec<String> = (first..last).map(|i| format!("u{i}@example.com")).collect();
        let sent = Instant::now();
        api.enter_emails(&key, &sync, &emails).await?;
        latencies.push(sent.elapsed());
    }
    loop {
        let view = api.sync(&key, &sync).await?;
        if view["counts"]["synced"].as_u64().unwrap_or(0) >= users as u64 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("Pinterest's users were not delivered within 10 minutes: {}", view["counts"]);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();
    let peak_rss = host.peak_rss().unwrap_or(0);
    drop(host);
    sandbox.shutdown().await;
    let log_bytes = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
    latencies.sort();
    let percentile = |p: f64| {
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len().max(1)) - 1;
        latencies.get(index).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(json!({
        "beside": attack.map_or("nothing (baseline)", |a| a.name),
        "attack": attack.map(|a| a.what),
        "delivered_users_per_second": (users as f64 / elapsed.as_secs_f64()).round(),
        "intake_p50_ms": (percentile(0.5) * 10.0).round() / 10.0,
        "intake_p99_ms": (percentile(0.99) * 10.0).round() / 10.0,
        "peak_rss_mib": peak_rss >> 20,
        "log_bytes": log_bytes,
    }))
}
