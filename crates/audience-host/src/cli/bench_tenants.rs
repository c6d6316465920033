//! `audience-host bench tenants --connections N`: what N tenants cost one host, idle and busy.
//!
//! A platform runs one connection per customer and partner, so a host holds thousands of
//! connections, most of them idle. This measures, for each N, a fresh `serve` process of this
//! binary (SQLite store, the Pinterest sandbox at Pinterest's limit of 7 requests/s per token)
//! set up the way an operator would, through the HTTP API only:
//!
//! 1. N connections, each created from its own sandbox token (`POST /v1/connections` with
//!    credentials) with one add-sync (`POST /v1/syncs`) into an audience of its own, in an ad
//!    account of its own (the sandbox offers N), spread over `--workspaces` workspaces. Sync
//!    creation asks the partner to check the target with that connection's token, so the setup
//!    costs each token a few requests, never one token many. The first connection is made
//!    alone, and the host's resident memory then is the baseline of the memory per connection.
//! 2. Idle: after a pause for the set-up to settle (5 s), the host's CPU over 10 s
//!    (`--seconds`) with nothing to do (from `/proc/PID/stat`), and its resident memory.
//! 3. The operator's reads, idle: `/metrics` (time, size, series) and `GET /v1/syncs?limit=100`
//!    (time and size; a host without paging ignores `limit` and answers every sync of the
//!    workspace), each the median of 3.
//! 4. Intake: `--users-per-sync` users per call, at least one call per sync and at least
//!    1,000 calls (N = 1 gets 1,000 calls into its one sync), from 8 concurrent clients; each
//!    call's latency.
//! 5. Settle: until the partner holds every user (read from the sandbox, which costs the host
//!    nothing), then until the host's counts say so (`audience_users_synced_total` on
//!    `/metrics`, read only then, every 250 ms, so the scrapes do not load the delivery).
//!    The host's CPU from the first intake call to the last user at the partner, per user,
//!    is the CPU per delivered user: intake and delivery together.
//! 6. Idle again for 10 s (`--seconds`) after the delivery.
//!
//! The sandbox and the clients run in this process, on the same machine: on a small machine
//! they take CPU the host would otherwise have, which the figures do not hide.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use audience_lab::process::{ApiClient, ServeProcess, family_total, free_port, series_count};
use audience_sandbox::{PinterestSandbox, SandboxConfig, SandboxHandle};
use reqwest::Method;
use serde_json::{Value, json};

const OPERATOR_KEY: &str = "bench-tenants-operator-key";
/// Connections and syncs created at once during the set-up.
const SETUP_CONCURRENCY: usize = 16;
/// Concurrent intake clients.
const INTAKE_CLIENTS: usize = 8;
/// Fewest intake calls in a run, so that small N still gives percentiles worth reading.
const MIN_INTAKE_CALLS: usize = 1_000;
/// How long the users may take to be synced before the run reports what it has.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(600);
/// Repetitions of each read (`/metrics`, a page of syncs); the median is reported.
const READS: usize = 3;

/// The settings of a run.
#[derive(Debug, Clone, Copy)]
pub struct TenantsArgs {
    /// Users per intake call.
    pub users_per_sync: usize,
    /// Workspaces the connections are spread over.
    pub workspaces: usize,
    /// Each idle window; the set-up gets half as long to settle before the first.
    pub idle_window: Duration,
}

/// One run per value of `connections`, one after the other.
pub async fn run(connections: &[usize], args: TenantsArgs) -> anyhow::Result<Value> {
    if connections.is_empty() || connections.contains(&0) {
        bail!("--connections takes counts of at least 1, e.g. --connections 1,1000");
    }
    if args.users_per_sync == 0 || args.workspaces == 0 || args.idle_window.is_zero() {
        bail!("--users-per-sync, --workspaces and --seconds must be at least 1");
    }
    let mut rows = Vec::new();
    for &n in connections {
        let row = run_with(n, args).await.with_context(|| format!("the run with {n} connections failed"))?;
        eprintln!("{row}");
        rows.push(row);
    }
    Ok(json!({
        "scenario": "tenants",
        "users_per_call": args.users_per_sync,
        "workspaces": args.workspaces,
        "idle_window_seconds": args.idle_window.as_secs_f64(),
        "results": rows,
    }))
}

/// The containment bench's host (SQLite, the Pinterest plugin pointed at the sandbox), written
/// to `dir`.
fn write_config(dir: &Path, port: u16, sandbox: &str) -> anyhow::Result<PathBuf> {
    let config = super::bench_containment::pinterest_host(dir, port, sandbox);
    let path = dir.join("host.toml");
    config.write(&path)?;
    Ok(path)
}

/// One tenant: a workspace's key, and its connection's sync.
#[derive(Debug, Clone)]
struct Tenant {
    key: String,
    sync: String,
}

/// A connection from a fresh sandbox token and one add-sync by email into audience
/// `tenant-{index}` of ad account `account`.
async fn create_tenant(
    api: &ApiClient,
    handle: &SandboxHandle,
    key: &str,
    account: &str,
    index: usize,
) -> anyhow::Result<Tenant> {
    let pair = handle.issue_tokens(&["ads:read", "ads:write"]);
    let (_, sync) = api
        .connect_with_tokens_and_sync(
            key,
            "pinterest",
            (&pair.access_token, &pair.refresh_token),
            account,
            &format!("tenant-{index}"),
        )
        .await?;
    Ok(Tenant { key: key.to_string(), sync })
}

/// The host's CPU use over `window` with nothing asked of it, in cores.
async fn idle_cores(host: &ServeProcess, window: Duration) -> anyhow::Result<f64> {
    let before = host.cpu_time().context("cannot read the host's CPU time")?;
    let started = Instant::now();
    tokio::time::sleep(window).await;
    let used = host.cpu_time().context("cannot read the host's CPU time")?.saturating_sub(before);
    Ok(round3(used.as_secs_f64() / started.elapsed().as_secs_f64()))
}

/// Median of `READS` timed reads of `path`: seconds, and the last answer's status, size and body.
async fn timed_reads(api: &ApiClient, path: &str, key: &str) -> anyhow::Result<(f64, u16, String)> {
    let mut times = Vec::new();
    let mut last = (0, String::new());
    for _ in 0..READS {
        let started = Instant::now();
        let response = api.send(Method::GET, path, key, None).await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        times.push(started.elapsed().as_secs_f64());
        last = (status, body);
    }
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], last.0, last.1))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The `q` quantile (nearest rank) of sorted `values`; 0 when empty.
fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values[((values.len() as f64 - 1.0) * q).round() as usize]
}

async fn run_with(n: usize, args: TenantsArgs) -> anyhow::Result<Value> {
    let sandbox = PinterestSandbox::start(SandboxConfig { ad_accounts: n, ..SandboxConfig::default() })
        .await
        .context("cannot start the Pinterest sandbox")?;
    let handle = sandbox.handle();
    let accounts = handle.ad_account_ids();
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let config = write_config(dir.path(), port, &sandbox.base_url())?;
    let exe = std::env::current_exe().context("cannot find this program to start the host")?;
    let env = [
        ("BENCH_CREDENTIALS_KEY", "33".repeat(32)),
        ("BENCH_OPERATOR_KEY", OPERATOR_KEY.to_string()),
        ("BENCH_PINTEREST_SECRET", SandboxHandle::DEFAULT_CLIENT_SECRET.to_string()),
    ];
    let host = ServeProcess::spawn(&exe, &config, &env)?;
    let api = ApiClient::new(format!("http://127.0.0.1:{port}"), Duration::from_secs(300))?;
    api.wait_ready().await?;

    // Set-up, through the API. The first tenant alone gives the memory baseline.
    let setup_started = Instant::now();
    let workspaces = args.workspaces.min(n);
    let mut keys = Vec::new();
    for w in 0..workspaces {
        keys.push(api.create_workspace(OPERATOR_KEY, &format!("tenants-{w}")).await?);
    }
    let first = create_tenant(&api, &handle, &keys[0], &accounts[0], 0).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_one = host.rss().context("cannot read the host's memory")?;
    let next = Arc::new(AtomicUsize::new(1));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..SETUP_CONCURRENCY {
        let (api, handle, keys, accounts, next) =
            (api.clone(), handle.clone(), keys.clone(), accounts.clone(), Arc::clone(&next));
        workers.spawn(async move {
            let mut made = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(made);
                }
                made.push((i, create_tenant(&api, &handle, &keys[i % keys.len()], &accounts[i], i).await?));
                if i % 1_000 == 0 {
                    eprintln!("tenants: {i} of {n} connections after {:.0?}", setup_started.elapsed());
                }
            }
        });
    }
    let mut tenants = vec![first];
    let mut rest = Vec::new();
    while let Some(made) = workers.join_next().await {
        rest.extend(made??);
    }
    rest.sort_by_key(|(i, _)| *i);
    tenants.extend(rest.into_iter().map(|(_, t)| t));
    let setup_seconds = setup_started.elapsed().as_secs_f64();

    // Idle.
    tokio::time::sleep(args.idle_window / 2).await;
    let idle = idle_cores(&host, args.idle_window).await?;
    let rss_idle = host.rss().context("cannot read the host's memory")?;
    // Each phase's figures as they come, so that a run stopped half way still says something.
    eprintln!(
        "tenants {n}: set up in {setup_seconds:.1} s; idle {idle} cores, {} MiB resident ({} MiB with one connection)",
        rss_idle >> 20,
        rss_one >> 20
    );

    // The operator's reads, idle.
    let (metrics_seconds, metrics_status, metrics) = timed_reads(&api, "/metrics", OPERATOR_KEY).await?;
    anyhow::ensure!(metrics_status == 200, "/metrics answered {metrics_status}");
    let (list_seconds, list_status, list) = timed_reads(&api, "/v1/syncs?limit=100", &keys[0]).await?;
    anyhow::ensure!(list_status == 200, "GET /v1/syncs?limit=100 answered {list_status}: {list}");
    let page: Value = serde_json::from_str(&list).unwrap_or(Value::Null);
    let listed = page["syncs"].as_array().map_or(0, Vec::len);
    let paged = page.get("next_cursor").is_some();
    eprintln!(
        "tenants {n}: /metrics {:.1} ms ({} series); GET /v1/syncs?limit=100 {:.1} ms ({listed} syncs, {} bytes)",
        metrics_seconds * 1000.0,
        series_count(&metrics),
        list_seconds * 1000.0,
        list.len()
    );

    // Intake from several clients, while the host delivers.
    let rounds = MIN_INTAKE_CALLS.div_ceil(n);
    let calls = n * rounds;
    let total_users = calls * args.users_per_sync;
    let tenants = Arc::new(tenants);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_before = host.cpu_time().context("cannot read the host's CPU time")?;
    let intake_started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..INTAKE_CLIENTS {
        let (api, tenants, next) = (api.clone(), Arc::clone(&tenants), Arc::clone(&next));
        let per_call = args.users_per_sync;
        clients.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let call = next.fetch_add(1, Ordering::Relaxed);
                if call >= calls {
                    return anyhow::Ok(latencies);
                }
                let (round, t) = (call / n, call % n);
                let emails: Vec<String> = (0..per_call).map(|u| format!("t{t}-r{round}-{u}@example.com")).collect();
                let started = Instant::now();
                api.enter_emails(&tenants[t].key, &tenants[t].sync, &emails).await?;
                latencies.push(started.elapsed().as_secs_f64());
                if (call + 1) % 1_000 == 0 {
                    eprintln!("tenants {n}: {} of {calls} intake calls", call + 1);
                }
            }
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = clients.join_next().await {
        latencies.extend(done??);
    }
    let intake_seconds = intake_started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);

    // Settle: the partner first (free for the host), then the host's own counts.
    let intake_done = Instant::now();
    let mut at_partner = None;
    let mut last_progress = (0, Instant::now());
    let mut synced = 0.0;
    let mut errored = 0.0;
    let mut reported = Instant::now();
    let settled = loop {
        let members = handle.total_members();
        if reported.elapsed() > Duration::from_secs(30) {
            eprintln!("tenants {n}: {members} of {total_users} users at the partner");
            reported = Instant::now();
        }
        if members != last_progress.0 {
            last_progress = (members, Instant::now());
        }
        if at_partner.is_none() && members >= total_users {
            at_partner = Some((intake_done.elapsed(), host.cpu_time().context("cannot read the host's CPU time")?));
        }
        // The host's counts once the partner has everything, or when the partner stalls.
        if at_partner.is_some() || last_progress.1.elapsed() > Duration::from_secs(10) {
            let text = api.metrics(OPERATOR_KEY).await?;
            synced = family_total(&text, "audience_users_synced_total");
            errored = family_total(&text, "audience_users_errored_total");
            if synced + errored >= total_users as f64 {
                break true;
            }
            if at_partner.is_none() {
                last_progress.1 = Instant::now();
            }
        }
        if intake_done.elapsed() > SETTLE_TIMEOUT {
            break false;
        }
        let pause = if at_partner.is_some() { 250 } else { 50 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    };
    let settle_seconds = intake_done.elapsed().as_secs_f64();
    let (partner_seconds, cpu_after) = match at_partner {
        Some((elapsed, cpu)) => (Some(elapsed.as_secs_f64()), cpu),
        None => (None, host.cpu_time().context("cannot read the host's CPU time")?),
    };
    let delivered = handle.total_members().min(total_users);
    let cpu_per_user_us = cpu_after.saturating_sub(cpu_before).as_secs_f64() * 1e6 / delivered.max(1) as f64;
    let idle_after = idle_cores(&host, args.idle_window).await?;
    let responses_429 = handle.count_status(429);
    let violations = handle.rate_limit_violations();
    drop(host);
    sandbox.shutdown().await;

    let bytes_per_connection = (n > 1).then(|| (rss_idle.saturating_sub(rss_one) as f64 / (n - 1) as f64).round());
    Ok(json!({
        "connections": n,
        "workspaces": workspaces,
        "setup_seconds": round3(setup_seconds),
        "idle_cpu_cores": idle,
        "idle_cpu_cores_after_delivery": idle_after,
        "rss_mib_one_connection": rss_one >> 20,
        "rss_mib_idle": rss_idle >> 20,
        "bytes_per_idle_connection": bytes_per_connection,
        "metrics_ms": round3(metrics_seconds * 1000.0),
        "metrics_bytes": metrics.len(),
        "metrics_series": series_count(&metrics),
        "list_syncs_limit_100_ms": round3(list_seconds * 1000.0),
        "list_syncs_bytes": list.len(),
        "list_syncs_returned": listed,
        "list_syncs_paged": paged,
        "intake_calls": calls,
        "users_per_call": args.users_per_sync,
        "users": total_users,
        "intake_seconds": round3(intake_seconds),
        "intake_p50_ms": round3(quantile(&latencies, 0.5) * 1000.0),
        "intake_p99_ms": round3(quantile(&latencies, 0.99) * 1000.0),
        "settled": settled,
        "partner_seconds_after_intake": partner_seconds.map(round3),
        "settle_seconds_after_intake": round3(settle_seconds),
        "users_synced": synced,
        "users_errored": errored,
        "cpu_us_per_delivered_user": cpu_per_user_us.round(),
        "responses_429": responses_429,
        "rate_limit_violations": violations,
    }))
}
