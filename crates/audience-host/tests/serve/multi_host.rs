//! Several hosts on one PostgreSQL database and one partner: three `audience-host serve`
//! processes share 20 connections' lanes through leases; one is killed with SIGKILL while
//! users pour in and batches are in flight. Every user reaches its audience, the counts are
//! conserved, and no token ever goes over its rate, across the takeover.
//!
//! Needs PostgreSQL at `AUDIENCE_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); the test creates a scratch database there
//! and drops it afterwards. CI's `.ci/run` starts the server.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use audience_lab::process::ServeProcess;
use audience_lab::world::ScratchDatabase;
use audience_sandbox::{Faults, PinterestSandbox, SandboxConfig};
use sha2::{Digest, Sha256};

use crate::support::{ApiClient, OPERATOR_KEY, config, free_port, metric, spawn_host};

const HOSTS: usize = 3;
const CONNECTIONS: usize = 20;
const USERS: usize = 100_000;
const USERS_PER_CALL: usize = 1_000;
/// The host killed mid-run.
const VICTIM: usize = 1;

/// Host `index` on the database, with lanes leased for `ttl` (renewed every second) and a 1 s
/// HTTP timeout for the plugin.
fn write_config(
    dir: &Path,
    index: usize,
    port: u16,
    store_url: &str,
    sandbox: &PinterestSandbox,
    ttl: Duration,
    with_plugin: bool,
) -> anyhow::Result<std::path::PathBuf> {
    let mut config = config(port, store_url, &dir.join(format!("cache-{index}")), &sandbox.base_url());
    config.engine.lease.ttl = ttl;
    config.engine.lease.renew_every = Duration::from_secs(1);
    match config.plugins.get_mut("pinterest") {
        Some(pinterest) if with_plugin => pinterest.http.timeout = Duration::from_secs(1),
        _ => config.plugins.clear(),
    }
    let path = dir.join(format!("host-{index}.toml"));
    config.write(&path)?;
    Ok(path)
}

async fn scratch_database() -> anyhow::Result<ScratchDatabase> {
    let server = std::env::var("AUDIENCE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    ScratchDatabase::create(&server, "multi_host")
        .await
        .map_err(|e| e.context(format!("this test needs PostgreSQL at {server} (start it)")))
}

async fn lanes_owned(api: &ApiClient) -> anyhow::Result<usize> {
    Ok(metric(&api.metrics(OPERATOR_KEY).await?, "audience_lanes_owned") as usize)
}

fn email(connection: usize, i: usize) -> String {
    format!("mh{connection}-{i}@example.com")
}

fn emails(connection: usize, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| email(connection, i)).collect()
}

/// `n` hosts on the database, each with a lease of `ttl`, ready; their base URLs. The hosts
/// listed in `without_plugins` are configured with no plugin at all.
async fn start_hosts(
    n: usize,
    dir: &Path,
    database: &ScratchDatabase,
    sandbox: &PinterestSandbox,
    ttl: Duration,
    without_plugins: &[usize],
) -> anyhow::Result<(Vec<ServeProcess>, Vec<ApiClient>)> {
    let mut hosts = Vec::new();
    let mut apis = Vec::new();
    for index in 0..n {
        let port = free_port()?;
        let with_plugin = !without_plugins.contains(&index);
        let config = write_config(dir, index, port, database.url(), sandbox, ttl, with_plugin)?;
        hosts.push(spawn_host(&config)?);
        apis.push(ApiClient::new(format!("http://127.0.0.1:{port}"), Duration::from_secs(30))?);
    }
    for api in &apis {
        api.wait_ready().await?;
    }
    Ok((hosts, apis))
}

/// Wait until a sync has `n` users synced; fail with `what` once `until` has passed.
async fn wait_synced(api: &ApiClient, key: &str, sync: &str, n: u64, until: Instant, what: &str) -> anyhow::Result<()> {
    loop {
        let view = api.sync(key, sync).await?;
        if view["counts"]["synced"].as_u64() == Some(n) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < until, "{what}: {view}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hosts_share_the_lanes_and_survive_one_being_killed() -> anyhow::Result<()> {
    let database = scratch_database().await?;
    let sandbox = PinterestSandbox::start(SandboxConfig::default()).await?;
    let handle = sandbox.handle();
    // Slow answers, so the victim certainly has batches in flight when it dies.
    handle.set_faults(Faults { latency: Duration::from_millis(150), ..Faults::default() });
    let dir = tempfile::tempdir()?;

    let (hosts, apis) = start_hosts(HOSTS, dir.path(), &database, &sandbox, Duration::from_secs(10), &[]).await?;
    let mut hosts: Vec<Option<ServeProcess>> = hosts.into_iter().map(Some).collect();

    // One workspace, 20 connections (20 partner tokens), one sync each, made through any host.
    let key = apis[0].create_workspace(OPERATOR_KEY, "multi-host").await?;
    let account = handle.ad_account_ids()[0].clone();
    let mut tokens = Vec::new();
    let mut syncs = Vec::new();
    for c in 0..CONNECTIONS {
        let (token, sync) =
            apis[c % HOSTS].connect_and_sync(&key, &handle, &account, &format!("multi-host-{c}")).await?;
        tokens.push(token);
        syncs.push(sync);
    }

    // The lanes spread over the three hosts (each takes its share of ceil(20 / 3) at most).
    let started = Instant::now();
    let owned = loop {
        let mut owned = Vec::new();
        for api in &apis {
            owned.push(lanes_owned(api).await?);
        }
        if owned.iter().sum::<usize>() == CONNECTIONS && owned.iter().all(|&n| n >= 1) {
            break owned;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the lanes never spread over the hosts: {owned:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(owned.iter().all(|&n| n <= CONNECTIONS.div_ceil(HOSTS)), "{owned:?}");
    eprintln!("lanes per host before the kill: {owned:?}");

    // 100,000 users in calls of 1,000, spread over the live hosts; the victim dies halfway.
    let per_connection = USERS / CONNECTIONS;
    let calls = USERS / USERS_PER_CALL;
    for k in 0..calls {
        if k == calls / 2 {
            hosts[VICTIM].take().expect("the victim runs").kill_now()?;
            eprintln!("killed host {VICTIM} after {} users entered", k * USERS_PER_CALL);
        }
        let live: Vec<usize> = (0..HOSTS).filter(|&h| hosts[h].is_some()).collect();
        let api = &apis[live[k % live.len()]];
        let c = k % CONNECTIONS;
        let first = (k / CONNECTIONS) * USERS_PER_CALL;
        api.enter_emails(&key, &syncs[c], &emails(c, first..first + USERS_PER_CALL)).await?;
    }
    assert_eq!(calls / CONNECTIONS * USERS_PER_CALL, per_connection);

    // The survivors take the victim's lanes over (after its 10 s leases expire) and deliver all.
    let survivor = &apis[0];
    let started = Instant::now();
    let mut all_counts = Vec::new();
    for sync in &syncs {
        loop {
            let view = survivor.sync(&key, sync).await?;
            let c = view["counts"].clone();
            let n = |k: &str| c[k].as_u64().unwrap();
            // The API's `pending` includes the users in flight.
            assert_eq!(n("entered"), n("not_synced") + n("pending") + n("synced") + n("errored"), "conserved: {c}");
            if n("pending") == 0 {
                all_counts.push(c);
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(180), "sync {sync} not delivered in time: {c}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    for (c, counts) in all_counts.iter().enumerate() {
        let list = handle.find_customer_list(&account, &format!("multi-host-{c}")).expect("the audience exists");
        let members = handle.members(&list);
        let expected: HashSet<String> =
            (0..per_connection).map(|i| hex::encode(Sha256::digest(email(c, i).as_bytes()))).collect();
        assert_eq!(members.len(), expected.len(), "connection {c}: {counts}");
        assert!(members == expected, "connection {c}: the audience holds other users than those entered");
        assert_eq!(counts["entered"].as_u64(), Some(per_connection as u64), "connection {c}");
        assert_eq!(counts["synced"].as_u64(), Some(per_connection as u64), "connection {c}: {counts}");
        assert_eq!(counts["errored"].as_u64(), Some(0), "connection {c}: {counts}");
    }
    for (c, token) in tokens.iter().enumerate() {
        let worst = handle.max_requests_in_window(token, Duration::from_secs(1));
        assert!(worst <= 7, "token {c}: {worst} requests in one second");
    }
    assert_eq!(handle.count_status(429), 0, "no token was ever over its rate");

    // The survivors really took lanes over from the dead host.
    let mut taken_over = 0.0;
    for h in (0..HOSTS).filter(|&h| h != VICTIM) {
        let text = apis[h].metrics(OPERATOR_KEY).await?;
        taken_over += metric(&text, r#"audience_lane_takeovers_total{event="taken_over"}"#);
    }
    assert!(taken_over >= owned[VICTIM] as f64, "{taken_over} lane events for {} lanes of the victim", owned[VICTIM]);
    drop(hosts);
    Ok(())
}

/// A host stopped with SIGTERM releases its leases as it exits: the other host takes its lanes
/// at its next renewal, not after the 30 s lease time, and delivers their users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_stopping_gracefully_hands_its_lanes_over_at_once() -> anyhow::Result<()> {
    const LANES: usize = 4;
    let database = scratch_database().await?;
    let sandbox = PinterestSandbox::start(SandboxConfig::default()).await?;
    let handle = sandbox.handle();
    let dir = tempfile::tempdir()?;
    let (mut hosts, apis) = start_hosts(2, dir.path(), &database, &sandbox, Duration::from_secs(30), &[]).await?;
    let key = apis[0].create_workspace(OPERATOR_KEY, "handover").await?;
    let account = handle.ad_account_ids()[0].clone();
    let mut syncs = Vec::new();
    for c in 0..LANES {
        syncs.push(apis[0].connect_and_sync(&key, &handle, &account, &format!("handover-{c}")).await?.1);
    }
    let started = Instant::now();
    while lanes_owned(&apis[0]).await? != LANES / 2 || lanes_owned(&apis[1]).await? != LANES / 2 {
        assert!(started.elapsed() < Duration::from_secs(20), "the lanes never split two and two");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    hosts[1].terminate()?;
    let stopped = Instant::now();
    while lanes_owned(&apis[0]).await? != LANES {
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "the remaining host did not take the lanes over well before the 30 s lease time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // And it delivers for all of them.
    for (c, sync) in syncs.iter().enumerate() {
        apis[0].enter_emails(&key, sync, &emails(c, 0..50)).await?;
    }
    for sync in &syncs {
        let until = stopped + Duration::from_secs(25);
        wait_synced(&apis[0], &key, sync, 50, until, "not delivered after the handover").await?;
    }
    Ok(())
}

/// A host without the plugin a connection needs (say, mid rolling deploy) takes none of its
/// lanes; the host that has it takes them all, beyond its fair share, and delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_only_one_host_can_deliver_for_are_all_taken_by_it() -> anyhow::Result<()> {
    const LANES: usize = 4;
    let database = scratch_database().await?;
    let sandbox = PinterestSandbox::start(SandboxConfig::default()).await?;
    let handle = sandbox.handle();
    let dir = tempfile::tempdir()?;
    // The second host has no plugins at all.
    let (_hosts, apis) = start_hosts(2, dir.path(), &database, &sandbox, Duration::from_secs(10), &[1]).await?;
    let api = &apis[0];
    let key = api.create_workspace(OPERATOR_KEY, "mixed").await?;
    let account = handle.ad_account_ids()[0].clone();
    let mut syncs = Vec::new();
    for c in 0..LANES {
        let (_, sync) = api.connect_and_sync(&key, &handle, &account, &format!("mixed-{c}")).await?;
        api.enter_emails(&key, &sync, &emails(c, 0..50)).await?;
        syncs.push(sync);
    }
    let started = Instant::now();
    for sync in &syncs {
        let until = started + Duration::from_secs(30);
        wait_synced(api, &key, sync, 50, until, "a lane only this host can serve was left alone").await?;
    }
    assert_eq!(lanes_owned(&apis[0]).await?, LANES);
    assert_eq!(lanes_owned(&apis[1]).await?, 0);
    Ok(())
}
