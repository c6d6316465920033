//! `audience-host bench hosts --postgres URL`: delivered users/s with 1, 2, ... host
//! processes sharing one PostgreSQL database.
//!
//! Each run gets a scratch database and a sandbox with its rate limit off (so the hosts, not
//! the partner, are the limit). One host creates 20 connections with one sync each, pauses
//! them and enters the users through the HTTP API; then the other hosts start, the lanes
//! spread over all of them (each takes its share through the leases), the syncs resume, and
//! the clock runs until every user is synced. The hosts are real `audience-host serve`
//! processes (this binary), so the figure includes the API, the leases and PostgreSQL.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use audience_sandbox::{PinterestSandbox, SandboxConfig, SandboxHandle};
use serde_json::{Value, json};

use crate::host_process::{HostProcess, call, free_port, metric, pinterest_section, wait_ready};
use crate::lab::ScratchDatabase;

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

fn write_config(dir: &Path, index: usize, port: u16, store: &str, sandbox: &str) -> anyhow::Result<std::path::PathBuf> {
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
store = "{store}"
credentials_key = {{ env = "BENCH_CREDENTIALS_KEY" }}
operator_key = {{ env = "BENCH_OPERATOR_KEY" }}

[engine.batch]
flush_interval = "200ms"

[engine.lease]
ttl = "6s"
renew_every = "1s"

[runtime]
cache_dir = "{cache}"
{plugin}
[plugins.pinterest.limits]
requests_per_second = 100000.0
max_concurrent_requests = 4
"#,
        cache = dir.join("cache").display(),
        plugin = pinterest_section(sandbox, "BENCH_PINTEREST_SECRET"),
    );
    let path = dir.join(format!("host-{index}.toml"));
    std::fs::write(&path, config)?;
    Ok(path)
}

fn spawn_host(config: &Path) -> anyhow::Result<HostProcess> {
    let exe = std::env::current_exe().context("cannot find this program to start hosts")?;
    let env = [
        ("BENCH_CREDENTIALS_KEY", "22".repeat(32)),
        ("BENCH_OPERATOR_KEY", OPERATOR_KEY.to_string()),
        ("BENCH_PINTEREST_SECRET", SandboxHandle::DEFAULT_CLIENT_SECRET.to_string()),
    ];
    HostProcess::spawn(&exe, config, &env)
}

async fn lanes_owned(client: &reqwest::Client, base: &str) -> anyhow::Result<usize> {
    let text = client.get(format!("{base}/metrics")).bearer_auth(OPERATOR_KEY).send().await?.text().await?;
    Ok(metric(&text, "audience_lanes_owned") as usize)
}

async fn run_with(server: &str, hosts: usize, users: usize) -> anyhow::Result<Value> {
    let database = ScratchDatabase::create(server, "bench_hosts").await?;
    let sandbox = PinterestSandbox::start(SandboxConfig { rate_limit_per_second: None, ..SandboxConfig::default() })
        .await
        .context("cannot start the Pinterest sandbox")?;
    let handle = sandbox.handle();
    let dir = tempfile::tempdir()?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?;
    let mut bases = Vec::new();
    let mut configs = Vec::new();
    for index in 0..hosts {
        let port = free_port()?;
        configs.push(write_config(dir.path(), index, port, database.url(), &sandbox.base_url())?);
        bases.push(format!("http://127.0.0.1:{port}"));
    }

    // The first host sets everything up and takes the users in, paused.
    let mut processes = vec![spawn_host(&configs[0])?];
    wait_ready(&client, &bases[0]).await?;
    let base = &bases[0];
    let created = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/v1/workspaces"),
        OPERATOR_KEY,
        Some(json!({"name": "bench"})),
    )
    .await?;
    let key = created["api_key"]["key"].as_str().context("no workspace key")?.to_string();
    let account = handle.ad_account_ids().first().cloned().context("the sandbox has no ad account")?;
    let mut syncs = Vec::new();
    for c in 0..CONNECTIONS {
        let pair = handle.issue_tokens(&["ads:read", "ads:write"]);
        let connection = call(
            &client,
            reqwest::Method::POST,
            format!("{base}/v1/connections"),
            &key,
            Some(json!({"destination": "pinterest", "name": format!("token {c}"),
                            "credentials": {"access_token": pair.access_token, "refresh_token": pair.refresh_token}})),
        )
        .await?;
        let sync = call(
            &client,
            reqwest::Method::POST,
            format!("{base}/v1/syncs"),
            &key,
            Some(json!({"connection_id": connection["id"], "account_id": account,
                            "audience_name": format!("bench-{c}"), "action": "add", "match_fields": ["email"]})),
        )
        .await?;
        let id = sync["id"].as_str().context("no sync id")?.to_string();
        call(&client, reqwest::Method::POST, format!("{base}/v1/syncs/{id}/pause"), &key, None).await?;
        syncs.push(id);
    }
    let per_sync = users / CONNECTIONS;
    for (c, sync) in syncs.iter().enumerate() {
        let mut first = 0;
        while first < per_sync {
            let last = (first + USERS_PER_CALL).min(per_sync);
            let batch: Vec<Value> = (first..last)
                .map(|i| {
                    let email = format!("b{c}-{i}@example.com");
                    json!({"key": email, "identifiers": [{"kind": "email", "value": email}]})
                })
                .collect();
            call(
                &client,
                reqwest::Method::POST,
                format!("{base}/v1/syncs/{sync}/users"),
                &key,
                Some(json!({"users": batch})),
            )
            .await?;
            first = last;
        }
    }

    // The other hosts join; wait until every host holds its share of the lanes.
    for config in &configs[1..] {
        processes.push(spawn_host(config)?);
    }
    for base in &bases[1..] {
        wait_ready(&client, base).await?;
    }
    let share = CONNECTIONS.div_ceil(hosts);
    let started = Instant::now();
    loop {
        let mut owned = Vec::new();
        for base in &bases {
            owned.push(lanes_owned(&client, base).await?);
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
        call(&client, reqwest::Method::POST, format!("{base}/v1/syncs/{sync}/resume"), &key, None).await?;
    }
    loop {
        let mut synced = 0;
        for sync in &syncs {
            let view = call(&client, reqwest::Method::GET, format!("{base}/v1/syncs/{sync}"), &key, None).await?;
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
