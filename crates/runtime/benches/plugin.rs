//! Plugin runtime benchmarks: what loading a destination costs, and what one call costs.
//!
//! | group                       | what it measures                                               | target  |
//! |-----------------------------|----------------------------------------------------------------|---------|
//! | `load/cold`                 | compile the Pinterest component (no cache) + link + `describe` | -       |
//! | `load/warm_cache`           | a later start: read + check + deserialize the cached artifact, link, `describe` | ≤ 20 ms |
//! | `load/warm_cache_new_runtime` | the same plus a new engine and pooling allocator, as in a new process | -  |
//! | `call/prepare_users_0`      | the smallest export: fresh instance + call + return            | ≤ 100 µs |
//! | `call/add_users_local`      | 0 vs 1,900 prepared users across the boundary, no I/O          | ≤ 1 ms  |
//! | `call/add_users_http`       | the same, plus one request to a local server answering 200     | -       |
//! | `call/pinterest_add_users`  | Pinterest: 1 vs 1,900 users, one PATCH to the sandbox          | -       |
//! | `versions/add_users_local`  | one 1,900-user add through Pinterest 0.1.0 (the compiled fixture, adapted) vs 0.2.0, one PATCH to a local server answering `{}` | - |
//! | `versions/add_users_sandbox`| the same against the Pinterest sandbox (which checks and stores the records) | - |
//! | `adapter/down_prepared_users` | just the 0.2.0 → 0.1.0 conversion of 1,900 prepared users   | -       |
//! | `neighbour/add_users_local` | a good plugin's 0-user add: `alone`, beside a plugin spinning in 8 concurrent calls with the CPU shared (`spinner_cpu_share_1`, one of its calls runs at a time) and without (`spinner_cpu_share_8`) | - |
//!
//! The cost of crossing the boundary with 1,900 users is the difference between the 1,900-user
//! and the 0-user call of the same group. Whether the 0.1.0 adapter costs anything per batch:
//! compare `versions/*/0.1.0` with `versions/*/0.2.0` (which also differ in the plugin's own
//! code), and `adapter/*` for the conversion alone. Run with
//! `cargo bench -p audience-runtime --bench plugin -- <filter>` (e.g. `-- versions`). What a
//! spinning neighbour costs a good plugin's calls: `-- neighbour`, and compare the three.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a benchmark: a step that fails is a failed run")]
#![allow(missing_docs, reason = "criterion_group! generates an undocumented function")]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use audience_plugin_artifacts as artifacts;
use audience_runtime::types::*;
use audience_runtime::{HttpPolicy, Plugin, PluginOptions, PluginRuntime, RuntimeConfig, since_v0_1_0};
use audience_sandbox::{ListType, PinterestSandbox, SandboxConfig, SandboxHandle};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use sha2::{Digest, Sha256};

const BATCH: usize = 1_900;

/// The Pinterest component as it shipped on contract 0.1.0.
const PINTEREST_0_1_0: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/pinterest-0.1.0.wasm"));

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime")
}

fn cached_runtime(dir: &std::path::Path) -> PluginRuntime {
    PluginRuntime::new(RuntimeConfig { cache_dir: Some(dir.to_path_buf()), ..RuntimeConfig::default() })
        .expect("plugin runtime")
}

fn plain_http(host_port: String) -> PluginOptions {
    PluginOptions {
        http: Some(HttpPolicy { plain_http_hosts: vec![host_port], ..HttpPolicy::default() }),
        ..PluginOptions::default()
    }
}

fn empty_config() -> PluginConfig {
    PluginConfig { base_url: None, client_id: None, client_secret: None, settings: vec![] }
}

fn credentials(access_token: &str, refresh_token: Option<String>) -> Credentials {
    Credentials {
        access_token: access_token.into(),
        refresh_token,
        expires_at: None,
        renewable_until: None,
        scopes: vec![],
    }
}

/// `n` prepared users with one SHA-256 email each, as the host stores them.
fn prepared(n: usize) -> Vec<PreparedUser> {
    (0..n)
        .map(|i| PreparedUser {
            key: format!("user-{i:06}"),
            identifiers: vec![Identifier {
                kind: "email".into(),
                value: hex::encode(Sha256::digest(format!("user{i}@example.com"))),
            }],
            consent: None,
        })
        .collect()
}

/// `users` as a first-attempt batch.
fn batch(users: Vec<PreparedUser>) -> Batch {
    Batch { id: "bench-batch".into(), attempt: 1, users }
}

/// A local server answering 200 to everything.
async fn ok_server() -> SocketAddr {
    let app = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    addr
}

fn load(c: &mut Criterion) {
    let rt = tokio();
    let mut group = c.benchmark_group("load");
    group.sample_size(10).measurement_time(Duration::from_secs(20));

    let uncached = PluginRuntime::new(RuntimeConfig::default()).expect("plugin runtime");
    group.bench_function("cold/pinterest", |b| {
        b.to_async(&rt).iter(|| async {
            black_box(uncached.load(artifacts::PINTEREST, PluginOptions::default()).await.expect("loads"))
        })
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let cached = cached_runtime(dir.path());
    rt.block_on(cached.load(artifacts::PINTEREST, PluginOptions::default())).expect("fills the cache");
    group.sample_size(50).measurement_time(Duration::from_secs(10));
    group.bench_function("warm_cache/pinterest", |b| {
        b.to_async(&rt).iter(|| async {
            let plugin = cached.load(artifacts::PINTEREST, PluginOptions::default()).await.expect("loads");
            assert_eq!(plugin.cache_outcome(), audience_runtime::CacheOutcome::Hit);
            black_box(plugin)
        })
    });
    group.bench_function("warm_cache_new_runtime/pinterest", |b| {
        b.to_async(&rt).iter(|| async {
            let runtime = cached_runtime(dir.path());
            black_box(runtime.load(artifacts::PINTEREST, PluginOptions::default()).await.expect("loads"))
        })
    });
    group.finish();
}

fn calls(c: &mut Criterion) {
    let rt = tokio();
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = cached_runtime(dir.path());
    let server = rt.block_on(ok_server());
    let test_plugin: Plugin =
        rt.block_on(runtime.load(artifacts::TEST_DESTINATION, plain_http(server.to_string()))).expect("loads");

    let mut group = c.benchmark_group("call");
    group.measurement_time(Duration::from_secs(8));

    group.bench_function("prepare_users_0/test", |b| {
        b.to_async(&rt).iter(|| async { black_box(test_plugin.prepare_users(&[], vec![]).await.expect("call")) })
    });

    let local = empty_config();
    let with_url = PluginConfig { settings: vec![("url".into(), format!("http://{server}/batch"))], ..empty_config() };
    let creds = credentials("t", None);
    let target = AudienceTarget::Existing("audience".into());
    for (name, config) in [("add_users_local", &local), ("add_users_http", &with_url)] {
        for n in [0, BATCH] {
            let users = prepared(n);
            group.bench_with_input(BenchmarkId::new(format!("{name}/test"), n), &users, |b, users| {
                b.to_async(&rt).iter_batched(
                    || batch(users.clone()),
                    |batch| async {
                        let outcome = test_plugin.add_users(config, &creds, "acct", &target, batch).await;
                        black_box(outcome.expect("call"))
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }

    // Pinterest against the sandbox, rate limit off: one PATCH of 1 or 1,900 records.
    let sandbox = rt
        .block_on(PinterestSandbox::start(SandboxConfig { rate_limit_per_second: None, ..SandboxConfig::default() }))
        .expect("sandbox");
    let handle = sandbox.handle();
    let host_port = sandbox.base_url().trim_start_matches("http://").to_string();
    let pinterest = rt.block_on(runtime.load(artifacts::PINTEREST, plain_http(host_port))).expect("loads");
    group.bench_function("prepare_users_0/pinterest", |b| {
        b.to_async(&rt).iter(|| async { black_box(pinterest.prepare_users(&[], vec![]).await.expect("call")) })
    });
    let tokens = handle.issue_tokens(&["ads:read", "ads:write"]);
    let creds = credentials(&tokens.access_token, Some(tokens.refresh_token));
    let config = PluginConfig {
        base_url: Some(sandbox.base_url()),
        client_id: Some(SandboxHandle::DEFAULT_CLIENT_ID.into()),
        client_secret: Some(SandboxHandle::DEFAULT_CLIENT_SECRET.into()),
        settings: vec![],
    };
    let account = handle.ad_account_ids()[0].clone();
    let list = handle.create_customer_list(&account, "Bench", ListType::Email, &[]);
    let audience = handle.create_audience(&account, "Bench", &list);
    let target = AudienceTarget::Existing(format!("{list}:{audience}:EMAIL"));
    for n in [1, BATCH] {
        let users = prepared(n);
        group.bench_with_input(BenchmarkId::new("pinterest_add_users/sandbox", n), &users, |b, users| {
            b.to_async(&rt).iter_batched(
                || batch(users.clone()),
                |batch| async {
                    let outcome = pinterest.add_users(&config, &creds, &account, &target, batch).await;
                    black_box(outcome.expect("call"))
                },
                BatchSize::SmallInput,
            )
        });
    }
    // Whichever of these ran (criterion may filter them), the sandbox accepted every request.
    assert_eq!(handle.count_status(400), 0);
    assert!(handle.spec_violations().is_empty());
    group.finish();
    drop(sandbox);
}

/// A local stand-in for Pinterest answering `{}` (what a customer-list PATCH needs) to everything.
async fn empty_json_server() -> SocketAddr {
    // The body is read whole: a server that answers before reading it makes hyper close the
    // connection, and the next request on it fails.
    let app = axum::Router::new().fallback(|body: axum::body::Bytes| async move {
        black_box(body);
        ([("content-type", "application/json")], "{}")
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.ok() });
    addr
}

/// One 1,900-user add through the 0.1.0 Pinterest fixture (every call converted by the
/// runtime's adapter) and through the current Pinterest plugin, to the same server.
fn versions(c: &mut Criterion) {
    let rt = tokio();
    let dir = tempfile::tempdir().expect("temp dir");
    let runtime = cached_runtime(dir.path());
    let mut group = c.benchmark_group("versions");
    group.measurement_time(Duration::from_secs(8));

    let users = prepared(BATCH);
    let stand_in = rt.block_on(empty_json_server());
    let sandbox = rt
        .block_on(PinterestSandbox::start(SandboxConfig { rate_limit_per_second: None, ..SandboxConfig::default() }))
        .expect("sandbox");
    let handle = sandbox.handle();
    let tokens = handle.issue_tokens(&["ads:read", "ads:write"]);
    let creds = credentials(&tokens.access_token, Some(tokens.refresh_token));
    let account = handle.ad_account_ids()[0].clone();
    let list = handle.create_customer_list(&account, "Versions", ListType::Email, &[]);
    let audience = handle.create_audience(&account, "Versions", &list);
    // Both versions address an audience as `<list>:<audience>:<TYPE>`.
    let target = AudienceTarget::Existing(format!("{list}:{audience}:EMAIL"));

    for (server, base_url) in [("local", format!("http://{stand_in}")), ("sandbox", sandbox.base_url())] {
        let config = PluginConfig {
            base_url: Some(base_url.clone()),
            client_id: Some(SandboxHandle::DEFAULT_CLIENT_ID.into()),
            client_secret: Some(SandboxHandle::DEFAULT_CLIENT_SECRET.into()),
            settings: vec![],
        };
        let options =
            PluginOptions { config: config.clone(), ..plain_http(base_url.trim_start_matches("http://").into()) };
        for (version, bytes) in [("0.1.0", PINTEREST_0_1_0), ("0.2.0", artifacts::PINTEREST)] {
            let plugin = rt.block_on(runtime.load(bytes, options.clone())).expect("loads");
            assert_eq!(plugin.contract_version(), version);
            group.bench_with_input(BenchmarkId::new(format!("add_users_{server}"), version), &users, |b, users| {
                b.to_async(&rt).iter_batched(
                    || batch(users.clone()),
                    |batch| async {
                        let outcome = plugin.add_users(&config, &creds, &account, &target, batch).await;
                        let WriteOutcome::Done(outcome) = outcome.expect("call") else { panic!("not done") };
                        assert!(outcome.rejected.is_empty());
                        black_box(outcome)
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    assert_eq!(handle.count_status(400), 0);
    assert!(handle.spec_violations().is_empty());
    group.finish();
    drop(sandbox);
}

/// The adapter alone: what converting one batch down to 0.1.0 costs.
fn adapter(c: &mut Criterion) {
    let mut group = c.benchmark_group("adapter");
    let users = prepared(BATCH);
    group.bench_with_input(BenchmarkId::new("down_prepared_users", BATCH), &users, |b, users| {
        b.iter_batched(
            || users.clone(),
            |users| black_box(since_v0_1_0::down_prepared_users(users)),
            criterion::BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// A good plugin's call latency alone, and beside a plugin that spins in 8 concurrent calls:
/// with that plugin held to one running call (`max_running_per_plugin` = 1), and with it let
/// run 8 at once (as before the CPU was shared).
fn neighbour(c: &mut Criterion) {
    let rt = tokio();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("neighbour");
    group.measurement_time(Duration::from_secs(8));
    let creds = credentials("t", None);
    let target = AudienceTarget::Existing("audience".into());
    let spin = PluginConfig { settings: vec![("behaviour".into(), "loop".into())], ..empty_config() };
    for (case, spinners, cpu_share) in [("alone", 0, 1), ("spinner_cpu_share_1", 8, 1), ("spinner_cpu_share_8", 8, 8)] {
        let runtime = PluginRuntime::new(RuntimeConfig {
            cache_dir: Some(dir.path().to_path_buf()),
            max_running_per_plugin: Some(cpu_share),
            ..RuntimeConfig::default()
        })
        .expect("plugin runtime");
        let good = rt.block_on(runtime.load(artifacts::TEST_DESTINATION, PluginOptions::default())).expect("loads");
        let limits = audience_runtime::SandboxLimits {
            call_timeout: Duration::from_secs(3600),
            max_call_duration: Duration::from_secs(3600),
            ..audience_runtime::SandboxLimits::default()
        };
        let options = PluginOptions { limits: Some(limits), ..PluginOptions::default() };
        let spinner = rt.block_on(runtime.load(artifacts::TEST_DESTINATION, options)).expect("loads");
        let tasks: Vec<_> = (0..spinners)
            .map(|_| {
                let (spinner, spin, creds, target) = (spinner.clone(), spin.clone(), creds.clone(), target.clone());
                rt.spawn(async move { spinner.add_users(&spin, &creds, "acct", &target, batch(vec![])).await })
            })
            .collect();
        group.bench_function(BenchmarkId::new("add_users_local", case), |b| {
            b.to_async(&rt).iter(|| async {
                let outcome = good.add_users(&empty_config(), &creds, "acct", &target, batch(vec![])).await;
                black_box(outcome.expect("call"))
            })
        });
        assert!(spinner.running_peak() <= cpu_share as usize);
        // Aborted at their next tick, when they yield.
        tasks.iter().for_each(tokio::task::JoinHandle::abort);
        rt.block_on(async {
            for task in tasks {
                let _ = task.await;
            }
        });
    }
    group.finish();
}

criterion_group!(benches, load, calls, versions, adapter, neighbour);
criterion_main!(benches);
