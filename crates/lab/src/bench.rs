//! `audience-host bench <scenario>`: the engine's benchmarks, runnable on an operator's own
//! machine. Each scenario runs a complete host against the local Pinterest sandbox (see
//! [`crate::lab`]) and prints its figures (or one JSON object with `--json`).
//!
//! | scenario     | measures                                                                 |
//! |--------------|--------------------------------------------------------------------------|
//! | `intake`     | durable intake, users/s, in calls of 1,000 and of 10,000 users (SQLite, or PostgreSQL with `--postgres`) |
//! | `end-to-end` | entry-to-partner users/s with the partner's limits off, against a bare SQLite insert loop of the same rows |
//! | `rate-limit` | delivered users/s over a window at 7 req/s × 1,900, as a share of 13,300, 429s and the sandbox's violations of the sliding window; `--syncs K` shares one token between K syncs; `--strict` adds account listing through the API, a token refresh and an audience creation (run by the binary) |
//! | `fairness`   | one healthy sync beside 6 whose audience look-up fails, on one token: the healthy one's users/s as a share of 13,300, and its share of the requests |
//! | `latency`    | time from entry to arrival at the partner under low load (p50, p99)      |
//! | `memory`     | resident memory with millions of users pending                           |
//! | `hosts`      | delivered users/s with 1, 2, 3 host processes sharing one PostgreSQL database (`--postgres`) |
//! | `tenants`    | N connections with one sync each in a `serve` process (`--connections N`): idle CPU, memory per connection, intake latency, settle time, CPU per user, `/metrics` and list latency (run by the binary) |
//! | `ledger`     | a sync's ledger with `--users N` (10,000,000) users on SQLite, or PostgreSQL with `--postgres`: durable intake users/s, bytes on disk per user pending and once most are synced, `Store::member` look-up p50/p99/max, a first and a deep page of synced users (see [`crate::ledger`]) |
//! | `kits`       | per destination kit (the Rust template, and `--component NAME=PATH`): component size, load time, `prepare-users` and `add-users` users/s and CPU per user, memory (see [`crate::kits`]) |

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use audience_sandbox::SandboxConfig;
use audience_store::SyncRecord;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::world::{Lab, Pinterest, ScratchDatabase, WorldOptions, add_sync_request};
use audience_engine::{EngineConfig, LimitOverrides, SyncRequest, UserInput};

/// Which benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Durable intake throughput.
    Intake,
    /// Entry-to-partner throughput with the partner's limits off, vs. a bare SQLite loop.
    EndToEnd,
    /// Delivered users/s at the partner's rate limit.
    RateLimit,
    /// Entry-to-partner latency at low load.
    Latency,
    /// Resident memory with millions of users pending.
    Memory,
    /// Delivered users/s with several host processes on one PostgreSQL database.
    Hosts,
    /// Pinterest's delivered users/s, intake latency, the host's memory and log volume,
    /// alone and beside each hostile plugin, in `serve` processes.
    Containment,
    /// What a destination costs per kit: component size, load time, intake and delivery
    /// users/s and CPU per user, memory; the Rust template and each `--component`.
    Kits,
    /// What idle and busy tenants cost a `serve` process: N connections with one sync each.
    Tenants,
    /// A healthy sync's share of its token beside syncs whose audience look-up fails.
    Fairness,
    /// A sync's ledger with millions of users: intake, bytes on disk per user, look-up of one
    /// user, pages of a listing (see [`crate::ledger`]).
    Ledger,
}

/// Options of `bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// The scenario.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
    /// Users to use (each scenario has its own default).
    #[arg(long)]
    pub users: Option<usize>,
    /// Length of the measured window in seconds (rate-limit, latency, fairness; tenants: each
    /// idle window).
    #[arg(long)]
    pub seconds: Option<u64>,
    /// A PostgreSQL server (e.g. `postgres://postgres@127.0.0.1:5432/postgres`): `intake` and
    /// `ledger` then measure a PostgreSQL store, and `hosts` runs on it. Each run creates a
    /// scratch database there and drops it afterwards.
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    /// Most host processes for `hosts` (runs 1, 2, ... up to this many).
    #[arg(long, default_value_t = 3)]
    pub max_hosts: usize,
    /// A component for `kits`, `NAME=PATH` (repeatable), measured after the Rust template
    /// (`rust=PATH` replaces the template).
    #[arg(long = "component", value_name = "NAME=PATH", value_parser = crate::kits::parse_component)]
    pub components: Vec<(String, std::path::PathBuf)>,
    /// Syncs sharing the one token of `rate-limit`, each with its own backlog.
    #[arg(long, default_value_t = 1)]
    pub syncs: usize,
    /// `rate-limit`: while the syncs deliver, 8 clients list the connection's ad accounts
    /// through the HTTP API, the access token expires once (a refresh) and a new sync creates
    /// its audience; reports the API calls refused with 429 besides the partner's.
    #[arg(long)]
    pub strict: bool,
    /// `tenants`: connections (each with its own token, ad account and one sync); several
    /// comma-separated values run one after the other (`--connections 1,1000,3000`).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    pub connections: Vec<usize>,
    /// `tenants`: users in each intake call (each sync gets at least one call).
    #[arg(long, default_value_t = 20)]
    pub users_per_sync: usize,
    /// `tenants`: workspaces the connections are spread over (1: one workspace holds them all,
    /// the largest list of syncs).
    #[arg(long, default_value_t = 1)]
    pub workspaces: usize,
}

/// Run a scenario and print its figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<Value> {
    let result = match args.scenario {
        Scenario::Intake => intake(args.users.unwrap_or(200_000), args.postgres.as_deref()).await?,
        Scenario::EndToEnd => end_to_end(args.users.unwrap_or(200_000)).await?,
        Scenario::RateLimit if args.strict => {
            anyhow::bail!("bench rate-limit --strict serves the HTTP API: run it through the audience-host binary")
        }
        Scenario::RateLimit => rate_limit(args.seconds.unwrap_or(30), args.syncs).await?,
        Scenario::Fairness => fairness(args.seconds.unwrap_or(30)).await?,
        Scenario::Latency => latency(args.seconds.unwrap_or(20)).await?,
        Scenario::Memory => memory(args.users.unwrap_or(10_000_000)).await?,
        Scenario::Ledger => crate::ledger::run(args.users.unwrap_or(10_000_000), args.postgres.as_deref()).await?,
        Scenario::Kits => {
            let result = crate::kits::run(&args.components, args.users.unwrap_or(20_000)).await?;
            // The table reads better than indented JSON.
            if !args.json {
                print!("{}", result["table"].as_str().unwrap_or_default());
                return Ok(result);
            }
            result
        }
        Scenario::Hosts | Scenario::Containment | Scenario::Tenants => {
            anyhow::bail!(
                "bench hosts, containment and tenants run `serve` processes: run them through the audience-host binary"
            )
        }
    };
    print(&result, args.json)?;
    Ok(result)
}

/// Print a scenario's figures: one JSON object with `json`, else indented.
pub fn print(result: &Value, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{result}");
    } else {
        println!("{}", serde_json::to_string_pretty(result)?);
    }
    Ok(())
}

fn user(prefix: &str, i: usize) -> UserInput {
    UserInput::new(format!("{prefix}{i}")).with("email", format!("{prefix}{i}@example.com"))
}

/// Enter `n` users `{prefix}{i}` (by email) into `sync`, `call` per engine call; how long it took.
pub async fn enter_all(lab: &Lab, sync: &SyncRecord, prefix: &str, n: usize, call: usize) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let end = (i + call).min(n);
        let users = (i..end).map(|j| user(prefix, j)).collect();
        lab.engine.enter(sync, users).await?;
        i = end;
    }
    Ok(started.elapsed())
}

/// `n` in `elapsed`, per second, rounded.
pub(crate) fn per_second(n: usize, elapsed: Duration) -> f64 {
    (n as f64 / elapsed.as_secs_f64().max(1e-9)).round()
}

/// Durable intake: users validated, prepared by the plugin and committed, per second.
async fn intake(n: usize, postgres: Option<&str>) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let database = match postgres {
        Some(server) => Some(ScratchDatabase::create(server, "bench_intake").await?),
        None => None,
    };
    let options =
        WorldOptions { postgres_url: database.as_ref().map(|d| d.url().to_string()), ..WorldOptions::default() };
    let lab = Lab::start(dir.path(), options).await?;
    let sync = lab.sync("intake").await?;
    lab.engine.set_paused(&sync.id, true).await?;
    let mut rows = Vec::new();
    for call in [1_000, 10_000] {
        let elapsed = enter_all(&lab, &sync, &format!("c{call}-"), n, call).await?;
        rows.push(json!({ "users_per_call": call, "users": n, "seconds": elapsed.as_secs_f64(), "users_per_second": per_second(n, elapsed) }));
    }
    lab.stop().await;
    drop(database);
    let store = if postgres.is_some() { "postgresql" } else { "sqlite" };
    Ok(json!({ "scenario": "intake", "store": store, "results": rows }))
}

/// Entry to partner with the partner's limits off, against a bare insert loop of the same rows.
async fn end_to_end(n: usize) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let mut engine = EngineConfig::default();
    engine.batch.flush_interval = Duration::from_millis(200);
    let options = WorldOptions {
        sandbox: SandboxConfig { rate_limit_per_second: None, ..SandboxConfig::default() },
        engine,
        limits: LimitOverrides {
            requests_per_second: Some(100_000.0),
            max_concurrent_requests: Some(4),
            ..LimitOverrides::default()
        },
        ..WorldOptions::default()
    };
    let lab = Lab::start(dir.path(), options).await?;
    let sync = lab.sync("end-to-end").await?;
    let started = Instant::now();
    enter_all(&lab, &sync, "e2e-", n, 10_000).await?;
    loop {
        let c = lab.engine.counts(&sync.id).await?;
        if c.synced + c.errored >= n as u64 {
            anyhow::ensure!(c.errored == 0, "{} users errored", c.errored);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    let members = lab.members("end-to-end");
    lab.stop().await;
    anyhow::ensure!(members == n, "the sandbox holds {members} of {n} users");

    let bare = bare_sqlite_loop(&dir.path().join("bare.db"), n)?;
    let e2e = per_second(n, elapsed);
    let bare_rate = per_second(n, bare);
    Ok(json!({
        "scenario": "end-to-end",
        "users": n,
        "end_to_end_seconds": elapsed.as_secs_f64(),
        "end_to_end_users_per_second": e2e,
        "bare_sqlite_rows_per_second": bare_rate,
        "ratio": (e2e / bare_rate * 1000.0).round() / 1000.0,
        "target_ratio": 0.5,
    }))
}

/// The store's own limit: the same rows inserted by a bare loop in transactions of 10,000,
/// with the store's durability settings (WAL, synchronous=FULL) and primary key.
fn bare_sqlite_loop(path: &std::path::Path, n: usize) -> anyhow::Result<Duration> {
    let mut db = rusqlite::Connection::open(path)?;
    db.pragma_update(None, "journal_mode", "wal")?;
    db.pragma_update(None, "synchronous", "full")?;
    db.execute_batch("CREATE TABLE queue (sync_id TEXT NOT NULL, user_key TEXT NOT NULL, payload BLOB NOT NULL, PRIMARY KEY (sync_id, user_key))")?;
    let started = Instant::now();
    let mut i = 0;
    while i < n {
        let tx = db.transaction()?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO queue (sync_id, user_key, payload) VALUES (?1, ?2, ?3)")?;
            for j in i..(i + 10_000).min(n) {
                let hash = hex::encode(Sha256::digest(format!("e2e-{j}@example.com")));
                let payload = format!(r#"{{"key":"e2e-{j}","identifiers":[{{"kind":"email","value":"{hash}"}}]}}"#);
                insert.execute(rusqlite::params!["sync", format!("e2e-{j}"), payload.as_bytes()])?;
            }
        }
        tx.commit()?;
        i += 10_000;
    }
    Ok(started.elapsed())
}

/// Delivered users per second at the partner's limits (7 req/s × 1,900), by `syncs` syncs
/// sharing the one token: each gets a backlog that outlasts the window, the window starts once
/// every sync has delivered its first batch (which creates its audience).
async fn rate_limit(seconds: u64, syncs: usize) -> anyhow::Result<Value> {
    anyhow::ensure!(syncs >= 1, "--syncs must be at least 1");
    let dir = tempfile::tempdir()?;
    let lab = Lab::start(dir.path(), WorldOptions::default()).await?;
    let limits = lab.plugin.manifest().limits;
    let ceiling = limits.requests_per_second * f64::from(limits.max_batch_size);
    let backlog = (ceiling * (seconds as f64 + 15.0)) as usize;
    let records = backlogged_syncs(&lab, "rate-limit", syncs, backlog).await?;
    let ids: Vec<String> = records.iter().map(|s| s.id.clone()).collect();
    let (t0, s0) = all_delivering(&lab, &ids).await?;
    let handle = lab.handle();
    let violations0 = handle.rate_limit_violations();
    handle.clear_request_log();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let s1 = total_synced(&lab, &ids).await?;
    let elapsed = t0.elapsed();
    let rate = (s1 - s0) as f64 / elapsed.as_secs_f64();
    let result = json!({
        "scenario": "rate-limit",
        "syncs": syncs,
        "seconds": elapsed.as_secs_f64(),
        "delivered_users_per_second": rate.round(),
        "ceiling_users_per_second": ceiling,
        "efficiency": (rate / ceiling * 1000.0).round() / 1000.0,
        "target_efficiency": 0.97,
        "responses_429": handle.count_status(429),
        "rate_limit_violations": handle.rate_limit_violations() - violations0,
        "max_requests_in_one_second": max_requests_per_token(&handle),
        "max_records_per_request": handle.max_records_per_request(),
    });
    lab.stop().await;
    Ok(result)
}

/// `n` add-syncs named `{prefix}-{i}` on the lab's connection, each with `backlog / n` users
/// entered while paused, then all resumed at once.
pub async fn backlogged_syncs(lab: &Lab, prefix: &str, n: usize, backlog: usize) -> anyhow::Result<Vec<SyncRecord>> {
    let mut syncs = Vec::new();
    for i in 0..n {
        let sync = lab.sync(&format!("{prefix}-{i}")).await?;
        lab.engine.set_paused(&sync.id, true).await?;
        enter_all(lab, &sync, &format!("{prefix}{i}-"), backlog.div_ceil(n), 10_000).await?;
        syncs.push(sync);
    }
    for sync in &syncs {
        lab.engine.set_paused(&sync.id, false).await?;
    }
    Ok(syncs)
}

/// Users synced by these syncs together.
pub async fn total_synced(lab: &Lab, syncs: &[String]) -> anyhow::Result<u64> {
    let mut total = 0;
    for sync in syncs {
        total += lab.engine.counts(sync).await?.synced;
    }
    Ok(total)
}

/// Wait until every one of `syncs` has users synced (its audience exists and it delivers):
/// then, and what they have synced together.
pub async fn all_delivering(lab: &Lab, syncs: &[String]) -> anyhow::Result<(Instant, u64)> {
    let started = Instant::now();
    loop {
        let mut total = 0;
        let mut all = true;
        for sync in syncs {
            let synced = lab.engine.counts(sync).await?.synced;
            all &= synced > 0;
            total += synced;
        }
        if all {
            return Ok((Instant::now(), total));
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(120), "not every sync delivered within 2 minutes");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The most requests any one token made within any second of the request log.
pub fn max_requests_per_token(handle: &audience_sandbox::SandboxHandle) -> usize {
    let log = handle.request_log();
    let tokens: std::collections::BTreeSet<&str> = log.iter().filter_map(|r| r.access_token.as_deref()).collect();
    tokens.into_iter().map(|t| handle.max_requests_in_window(t, Duration::from_secs(1))).max().unwrap_or(0)
}

/// Customer lists besides the syncs' own in the fairness scenario's ad account, so that a
/// look-up by name pages (Pinterest pages of 250).
const FAIRNESS_OTHER_LISTS: usize = 600;
/// Syncs whose audience look-up fails in the fairness scenario.
const FAIRNESS_BROKEN: usize = 6;
/// Users waiting in each of them.
const FAIRNESS_BROKEN_USERS: usize = 20_000;

/// One healthy sync beside [`FAIRNESS_BROKEN`] syncs on the same token whose audience look-up
/// fails: each was created by name, without creating missing audiences, while its customer
/// list and audience existed; then the advertiser deleted them (as in Ads Manager). Every
/// delivery attempt of a broken sync looks its audience up by name, paging through the
/// account's customer lists ([`FAIRNESS_OTHER_LISTS`] besides the syncs' own), and is told
/// it is gone (404). Measured over `seconds` once the healthy sync delivers: its users/s as a
/// share of the token's ceiling, and its share of the token's requests.
async fn fairness(seconds: u64) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let lab = Lab::start(dir.path(), WorldOptions::default()).await?;
    let limits = lab.plugin.manifest().limits;
    let ceiling = limits.requests_per_second * f64::from(limits.max_batch_size);
    let handle = lab.handle();
    let account = lab.account.id.clone();
    let email = |s: &str| hex::encode(Sha256::digest(s));
    for i in 0..FAIRNESS_OTHER_LISTS {
        handle.create_customer_list(
            &account,
            &format!("other-{i}"),
            audience_sandbox::ListType::Email,
            &[email(&format!("o{i}"))],
        );
    }
    let mut broken = Vec::new();
    for i in 0..FAIRNESS_BROKEN {
        let name = format!("broken-{i}");
        let list = handle.create_customer_list(&account, &name, audience_sandbox::ListType::Email, &[email(&name)]);
        handle.create_audience(&account, &name, &list);
        let request = SyncRequest {
            create_if_missing: false,
            ..add_sync_request::<Pinterest>(&lab.workspace, &lab.connection, &account, &name)
        };
        let sync = lab.engine.create_sync(request).await?;
        lab.engine.set_paused(&sync.id, true).await?;
        anyhow::ensure!(handle.delete_customer_list(&account, &list), "the sandbox lost list {list}");
        enter_all(&lab, &sync, &format!("{name}-"), FAIRNESS_BROKEN_USERS, 10_000).await?;
        broken.push(sync);
    }
    let healthy = lab.sync("healthy").await?;
    lab.engine.set_paused(&healthy.id, true).await?;
    enter_all(&lab, &healthy, "healthy-", (ceiling * (seconds as f64 + 15.0)) as usize, 10_000).await?;
    for sync in broken.iter().chain([&healthy]) {
        lab.engine.set_paused(&sync.id, false).await?;
    }
    let (t0, s0) = all_delivering(&lab, std::slice::from_ref(&healthy.id)).await?;
    let list = handle.find_customer_list(&account, "healthy").context("the healthy sync's list was not created")?;
    let violations0 = handle.rate_limit_violations();
    handle.clear_request_log();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let s1 = lab.engine.counts(&healthy.id).await?.synced;
    let elapsed = t0.elapsed();
    let log = handle.request_log();
    let healthy_requests = log.iter().filter(|r| r.path.contains(&list)).count();
    let rate = (s1 - s0) as f64 / elapsed.as_secs_f64();
    let mut broken_figures = Vec::new();
    for sync in &broken {
        let counts = lab.engine.counts(&sync.id).await?;
        let status = lab.store.sync(&sync.id).await?.status;
        broken_figures.push(json!({ "status": format!("{status:?}").to_lowercase(), "retries": counts.retries, "errored": counts.errored }));
    }
    let result = json!({
        "scenario": "fairness",
        "broken_syncs": FAIRNESS_BROKEN,
        "other_customer_lists": FAIRNESS_OTHER_LISTS,
        "seconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "healthy_users_per_second": rate.round(),
        "ceiling_users_per_second": ceiling,
        "healthy_share_of_ceiling": (rate / ceiling * 1000.0).round() / 1000.0,
        "target_share": 0.85,
        "requests": log.len(),
        "healthy_requests": healthy_requests,
        "healthy_share_of_requests": (healthy_requests as f64 / log.len().max(1) as f64 * 1000.0).round() / 1000.0,
        "responses_429": handle.count_status(429),
        "rate_limit_violations": handle.rate_limit_violations() - violations0,
        "broken": broken_figures,
    });
    lab.stop().await;
    Ok(result)
}

/// Entry to arrival at the partner, one user at a time at low load.
async fn latency(seconds: u64) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let lab = Lab::start(dir.path(), WorldOptions::default()).await?;
    let flush = lab.engine.config().batch.flush_interval;
    let sync = lab.sync("latency").await?;
    // The first batch creates the audience; measure after it exists.
    lab.engine.enter(&sync, vec![user("warm-", 0)]).await?;
    let list = loop {
        if let Some(list) = lab.handle().find_customer_list(&lab.account.id, "latency") {
            break list;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let handle = lab.handle();
    let interval = Duration::from_millis(200);
    let n = (seconds * 1000 / interval.as_millis() as u64) as usize;
    let mut entered: HashMap<String, Instant> = HashMap::new();
    let mut arrived: HashMap<String, Instant> = HashMap::new();
    let started = Instant::now();
    let mut next_entry = started;
    let mut i = 0;
    while arrived.len() < n {
        let now = Instant::now();
        if i < n && now >= next_entry {
            lab.engine.enter(&sync, vec![user("lat-", i)]).await?;
            entered.insert(hex::encode(Sha256::digest(format!("lat-{i}@example.com"))), Instant::now());
            i += 1;
            next_entry += interval;
        }
        let members = handle.members(&list);
        let seen = Instant::now();
        for hash in entered.keys() {
            if members.contains(hash) {
                arrived.entry(hash.clone()).or_insert(seen);
            }
        }
        anyhow::ensure!(started.elapsed() < Duration::from_secs(seconds * 3 + 60), "users did not arrive in time");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut latencies: Vec<f64> =
        arrived.iter().filter_map(|(hash, at)| entered.get(hash).map(|e| (*at - *e).as_secs_f64())).collect();
    latencies.sort_by(f64::total_cmp);
    let pick = |q: f64| latencies[((latencies.len() as f64 - 1.0) * q).round() as usize];
    let result = json!({
        "scenario": "latency",
        "users": latencies.len(),
        "entry_interval_ms": interval.as_millis() as u64,
        "flush_interval_seconds": flush.as_secs_f64(),
        "p50_seconds": pick(0.5),
        "p99_seconds": pick(0.99),
        "max_seconds": pick(1.0),
        "target_p99_seconds": flush.as_secs_f64() + 1.0,
    });
    lab.stop().await;
    Ok(result)
}

/// Resident memory with `n` users pending (they live in the store, not in RAM).
async fn memory(n: usize) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let lab = Lab::start(dir.path(), WorldOptions::default()).await?;
    let sync = lab.sync("memory").await?;
    lab.engine.set_paused(&sync.id, true).await?;
    let elapsed = enter_all(&lab, &sync, "mem-", n, 10_000).await?;
    let pending = lab.engine.counts(&sync.id).await?.pending;
    let (rss, peak) = resident_memory().context("cannot read /proc/self/status")?;
    let store_bytes: u64 =
        std::fs::read_dir(dir.path())?.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum();
    lab.stop().await;
    Ok(json!({
        "scenario": "memory",
        "users_pending": pending,
        "intake_users_per_second": per_second(n, elapsed),
        "resident_mib": rss / 1024,
        "peak_resident_mib": peak / 1024,
        "target_resident_mib": 300,
        "store_on_disk_mib": store_bytes / (1 << 20),
    }))
}

/// Current and peak resident set size in KiB.
fn resident_memory() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
