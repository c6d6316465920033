//! `audience-host bench hosts --postgres URL`: delivered users/s with 1, 2, ... host
//! processes sharing one PostgreSQL database.
//!
//! Each run gets a scratch database and a sandbox with its rate limit off (so the hosts, not
//! the partner, are the limit). One host creates 20 connections with one sync each, pauses
//! them and enters the users through the HTTP API; then the other hosts start, the lanes
//! spread over all of them (each takes its share through the leases), the syncs resume, and
//! the clock runs until every user is synced. The hosts are real `audience-host serve`
//! processes (this binary), so the figure includes the API, the leases and PostgreSQL.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use audience_host::config::{HostConfig, PluginSettings, SecretSource};
use audience_host::service::BUILTIN_PINTEREST;
use audience_lab::process::{ApiClient, ServeProcess, free_port, metric};
use audience_lab::world::ScratchDatabase;
use audience_sandbox::{PinterestSandbox, SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

const CONNECTIONS: usize = 20;
const USERS_PER_CALL: usize = 10_000;
const OPERATOR_KEY: &str = "bench-hosts-operator-key";

/// Run with 1..=`max_hosts` hosts, `users` users each time.
pub async fn run(server: &str, max_hosts: usize, users: usize) -> anyhow::Result<Value> {
    if max_hosts == 0 {
        bail!("--max-hosts must be at least 1");
    }
    let mut rows = Vec::new();
    for hosts in 1..=max_hosts {
        let row = run_with(server, hosts, users).await.with_context(|| format!("the run with {hosts} hosts failed"))?;
        eprintln!("{row}");
        rows.push(row);
    }
    Ok(json!({ "scenario": "hosts", "connections": CONNECTIONS, "results": rows }))
}

/// Host `index` on the shared database: short flushes and leases, and the Pinterest plugin
/// pointed at the sandbox with the partner's limits lifted.
fn write_config(dir: &Path, index: usize, port: u16, store: &str, sandbox: &str) -> anyhow::Result<PathBuf> {
    let mut config = HostConfig {
        listen: format!("127.0.0.1:{port}"),
        public_url: format!("http://127.0.0.1:{port}"),
        store: store.to_string(),
        credentials_key: SecretSource::env("BENCH_CREDENTIALS_KEY"),
        operator_key: SecretSource::env("BENCH_OPERATOR_KEY"),
        ..HostConfig::default()
    };
    config.engine.batch.flush_interval = Duration::from_millis(200);
    config.engine.lease.ttl = Duration::from_secs(6);
    config.engine.lease.renew_every = Duration::from_secs(1);
    config.runtime.cache_dir = Some(dir.join("cache"));
    let secret = SecretSource::env("BENCH_PINTEREST_SECRET");
    let mut pinterest =
        PluginSettings::pointed_at(BUILTIN_PINTEREST, sandbox, SandboxHandle::DEFAULT_CLIENT_ID, secret);
    pinterest.limits.requests_per_second = Some(100_000.0);
    pinterest.limits.max_concurrent_requests = Some(4);
    config.plugins.insert("pinterest".into(), pinterest);
    let path = dir.join(format!("host-{index}.toml"));
    config.write(&path)?;
    Ok(path)
}

fn spawn_host(config: &Path) -> anyhow::Result<ServeProcess> {
    let exe = std::env::current_exe().context("cannot find this program to start hosts")?;
    let env = [
        ("BENCH_CREDENTIALS_KEY", "22".repeat(32)),
        ("BENCH_OPERATOR_KEY", OPERATOR_KEY.to_string()),
        ("BENCH_PINTEREST_SECRET", SandboxHandle::DEFAULT_CLIENT_SECRET.to_string()),
    ];
    ServeProcess::spawn(&exe, config, &env)
}

async fn run_with(server: &str, hosts: usize, users: usize) -> anyhow::Result<Value> {
    let database = ScratchDatabase::create(server, "bench_hosts").await?;
    let sandbox = PinterestSandbox::start(SandboxConfig { rate_limit_per_second: None, ..SandboxConfig::default() })
        .await
        .context("cannot start the Pinterest sandbox")?;
    let handle = sandbox.handle();
    let dir = tempfile::tempdir()?;
    let mut apis = Vec::new();
    let mut configs = Vec::new();
    for index in 0..hosts {
        let port = free_port()?;
        configs.push(write_config(dir.path(), index, port, database.url(), &sandbox.base_url())?);
        apis.push(ApiClient::new(format!("http://127.0.0.1:{port}"), Duration::from_secs(60))?);
    }

    // The first host sets everything up and takes the users in, paused.
    let mut processes = vec![spawn_host(&configs[0])?];
    let api = &apis[0];
    api.wait_ready().await?;
    let key = api.create_workspace(OPERATOR_KEY, "bench").await?;
    let account = handle.ad_account_ids().first().cloned().context("the sandbox has no ad account")?;
    let mut syncs = Vec::new();
    for c in 0..CONNECTIONS {
        let (_, id) = api.connect_and_sync(&key, &handle, &account, &format!("bench-{c}")).await?;
        api.call(reqwest::Method::POST, &format!("/v1/syncs/{id}/pause"), &key, None).await?;
        syncs.push(id);
    }
    let per_sync = users / CONNECTIONS;
    for (c, sync) in syncs.iter().enumerate() {
        let mut first = 0;
        while first < per_sync {
            let last = (first + USERS_PER_CALL).min(per_sync);
            let emails: Vec<String> = (first..last).map(|i| format!("b{c}-{i}@example.com")).collect();
            api.enter_emails(&key, sync, &emails).await?;
            first = last;
        }
    }

    // The other hosts join; wait until every host holds its share of the lanes.
    for config in &configs[1..] {
        processes.push(spawn_host(config)?);
    }
    for api in &apis[1..] {
        api.wait_ready().await?;
    }
    let share = CONNECTIONS.div_ceil(hosts);
    let started = Instant::now();
    loop {
        let mut owned = Vec::new();
        for api in &apis {
            owned.push(metric(&api.metrics(OPERATOR_KEY).await?, "audience_lanes_owned") as usize);
        }
        if owned.iter().sum::<usize>() == CONNECTIONS && owned.iter().all(|&n| n >= 1 && n <= share) {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the lanes did not spread over the hosts within a minute: {owned:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Resume everything and time the delivery.
    let total = (per_sync * CONNECTIONS) as u64;
    let started = Instant::now();
    for sync in &syncs {
        api.call(reqwest::Method::POST, &format!("/v1/syncs/{sync}/resume"), &key, None).await?;
    }
    loop {
        let mut synced = 0;
        for sync in &syncs {
            let view = api.sync(&key, sync).await?;
            synced += view["counts"]["synced"].as_u64().unwrap_or(0);
        }
        if synced >= total {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("{synced} of {total} users delivered after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    drop(processes);
    sandbox.shutdown().await;
    drop(database);
    Ok(json!({
        "hosts": hosts,
        "users": total,
        "seconds": elapsed.as_secs_f64(),
        "delivered_users_per_second": (total as f64 / elapsed.as_secs_f64()).round(),
    }))
}
