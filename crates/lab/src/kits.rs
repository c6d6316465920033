//! `audience-host bench kits`: what a destination written with each kit (Rust, Python,
//! JavaScript) costs the host, measured on the component itself.
//!
//! Why: a partner choosing a language, and an operator sizing a host, need the price of that
//! choice in the host's own terms: how big the component is, how long it takes to load, how
//! many users per second `prepare-users` (intake) and `add-users` (delivery) get through, the
//! CPU each user costs, and how much linear memory an instance needs. Each kit's figures come
//! from the same runs on the same machine, so they can be read side by side.
//!
//! What each figure is (every call goes through the host's real runtime, [`PluginRuntime`],
//! with its default limits; a fresh instance per call, as in production):
//!
//! | figure | how |
//! |---|---|
//! | component | the `.wasm` file's size |
//! | load, compile | `load` with an empty compile cache: compile, cache, instantiate, `describe` |
//! | load, cached | `load` again from that cache, in a new runtime (what every restart pays) |
//! | intake users/s, CPU/user | `prepare-users` of `users` users (one e-mail each) in calls of 1,000, one after the other; CPU is the whole process's (wasm, the host's imports, instance set-up) |
//! | delivery users/s, CPU/user | `add-users` of the prepared users in batches of the plugin's `max-batch-size`, one after the other, against a local receiver answering `200 {}`; the receiver runs on its own thread and its CPU is taken out |
//! | memory | the smallest per-instance memory limit, in MiB, at which the plugin loads, prepares 10,000 users in one call (the API's largest) and delivers one full batch |
//!
//! The components: the Rust webhook template as built by the workspace (`rust`), and any
//! given with `--component NAME=PATH` (the Python kit's, the JavaScript kit's). Build the host
//! in release for figures worth publishing; every kit's component is built as it ships.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use audience_runtime::types::{
    AudienceTarget, Batch, Credentials, Identifier, PluginConfig, Preparation, PreparedUser, RawUser, WriteOutcome,
};
use audience_runtime::{CacheOutcome, HttpPolicy, Plugin, PluginOptions, PluginRuntime, RuntimeConfig, SandboxLimits};
use serde::Serialize;
use serde_json::{Value, json};

use crate::bench::per_second;

/// Users per `prepare-users` call in the intake run.
pub const INTAKE_CALL: usize = 1_000;
/// Users in the one `prepare-users` call of the memory check: the most one API call enters.
pub const MEMORY_CALL: usize = 10_000;
/// The highest memory limit tried, in MiB: the host's default per-instance limit.
pub const MEMORY_CEILING_MIB: u32 = 64;
/// The name of the row of the workspace's own Rust template.
pub const TEMPLATE: &str = "rust";

/// One component to measure: a name for its row and its bytes.
#[derive(Debug, Clone)]
pub struct KitComponent {
    /// The row's name (`rust`, `python`, `js`, ...).
    pub name: String,
    /// The component.
    pub bytes: Vec<u8>,
}

/// Parses `NAME=PATH` (a `--component` argument).
pub fn parse_component(text: &str) -> Result<(String, PathBuf), String> {
    let (name, path) = text.split_once('=').ok_or_else(|| format!("expected NAME=PATH, got {text:?}"))?;
    let name = name.trim();
    if name.is_empty() || path.trim().is_empty() {
        return Err(format!("expected NAME=PATH, got {text:?}"));
    }
    Ok((name.to_string(), PathBuf::from(path.trim())))
}

/// The components to measure: the workspace's Rust template first (unless a `--component`
/// named [`TEMPLATE`] replaces it), then each given one, in order.
pub fn components(given: &[(String, PathBuf)]) -> anyhow::Result<Vec<KitComponent>> {
    let mut out = Vec::new();
    if !given.iter().any(|(name, _)| name == TEMPLATE) {
        out.push(KitComponent { name: TEMPLATE.into(), bytes: audience_plugin_artifacts::WEBHOOK.to_vec() });
    }
    for (name, path) in given {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read the {name} component {}", path.display()))?;
        out.push(KitComponent { name: name.clone(), bytes });
    }
    Ok(out)
}

/// One kit's figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KitFigures {
    /// The row's name.
    pub kit: String,
    /// The plugin's manifest name and version.
    pub plugin: String,
    /// The component's size in bytes.
    pub component_bytes: u64,
    /// Load with an empty compile cache, in milliseconds.
    pub load_compile_ms: f64,
    /// Load from the compile cache, in milliseconds.
    pub load_cached_ms: f64,
    /// `prepare-users`: users per second, calls of [`INTAKE_CALL`] one after the other.
    pub intake_users_per_second: f64,
    /// `prepare-users`: the process's CPU time per user, in microseconds (`None` where the
    /// system has no CPU clock).
    pub intake_cpu_us_per_user: Option<f64>,
    /// `add-users`: users per second, full batches one after the other.
    pub delivery_users_per_second: f64,
    /// `add-users`: the process's CPU time per user without the receiver's, in microseconds.
    pub delivery_cpu_us_per_user: Option<f64>,
    /// The batch size used (the plugin's `max-batch-size`).
    pub delivery_batch: usize,
    /// The smallest per-instance memory limit that works, in MiB; `None` when even
    /// [`MEMORY_CEILING_MIB`] does not.
    pub memory_mib: Option<u32>,
}

/// Measures every component with `users` users and returns the report (a JSON object with
/// the rows and their text table).
pub async fn run(given: &[(String, PathBuf)], users: usize) -> anyhow::Result<Value> {
    let users = users.max(INTAKE_CALL);
    let mut rows = Vec::new();
    for component in components(given)? {
        eprintln!("measuring {} ({} bytes) with {users} users ...", component.name, component.bytes.len());
        let row =
            measure(&component, users).await.with_context(|| format!("measuring the {} kit failed", component.name))?;
        eprintln!("{}", serde_json::to_string(&row)?);
        rows.push(row);
    }
    Ok(json!({
        "scenario": "kits",
        "users": users,
        "intake_call": INTAKE_CALL,
        "memory_call": MEMORY_CALL,
        "host_build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "results": rows,
        "table": render_table(&rows),
    }))
}

async fn measure(component: &KitComponent, users: usize) -> anyhow::Result<KitFigures> {
    let receiver = Receiver::start().context("cannot start the local receiver")?;
    let cache = tempfile::tempdir()?;
    let options = plugin_options(&receiver, None);

    let started = Instant::now();
    let plugin = runtime(&cache)?.load(&component.bytes, options.clone()).await.context("cannot load the component")?;
    let load_compile = started.elapsed();
    anyhow::ensure!(plugin.cache_outcome() == CacheOutcome::Miss, "the first load did not compile");
    let started = Instant::now();
    let plugin = runtime(&cache)?.load(&component.bytes, options).await.context("cannot load the component")?;
    let load_cached = started.elapsed();
    anyhow::ensure!(plugin.cache_outcome() == CacheOutcome::Hit, "the second load did not use the compile cache");

    // One warm-up call of each kind, not counted.
    let warm = prepare_all(&plugin, 0, INTAKE_CALL).await?;
    let batch_size = (plugin.manifest().limits.max_batch_size as usize).clamp(1, users);
    deliver(&plugin, &receiver, &warm[..batch_size.min(warm.len())], batch_size).await?;

    let cpu = process_cpu();
    let started = Instant::now();
    let prepared = prepare_all(&plugin, INTAKE_CALL, INTAKE_CALL + users).await?;
    let intake = started.elapsed();
    let intake_cpu = cpu.and_then(|before| Some(process_cpu()? - before));

    let cpu = process_cpu();
    let receiver_cpu = receiver.cpu();
    let requests = receiver.requests();
    let started = Instant::now();
    deliver(&plugin, &receiver, &prepared, batch_size).await?;
    let delivery = started.elapsed();
    let delivery_cpu =
        cpu.and_then(|before| Some((process_cpu()? - before).saturating_sub(receiver.cpu() - receiver_cpu)));
    let batches = prepared.len().div_ceil(batch_size) as u64;
    anyhow::ensure!(
        receiver.requests() - requests >= batches,
        "the receiver got {} requests for {batches} batches",
        receiver.requests() - requests
    );

    let memory_mib = smallest_passing(1, MEMORY_CEILING_MIB, |mib| {
        let (cache, receiver, component) = (&cache, &receiver, component);
        async move { fits_in(component, cache, receiver, mib).await }
    })
    .await;

    let manifest = plugin.manifest();
    Ok(KitFigures {
        kit: component.name.clone(),
        plugin: format!("{} {}", manifest.name, manifest.version),
        component_bytes: component.bytes.len() as u64,
        load_compile_ms: millis(load_compile),
        load_cached_ms: millis(load_cached),
        intake_users_per_second: per_second(prepared.len(), intake),
        intake_cpu_us_per_user: intake_cpu.map(|cpu| micros_per(cpu, prepared.len())),
        delivery_users_per_second: per_second(prepared.len(), delivery),
        delivery_cpu_us_per_user: delivery_cpu.map(|cpu| micros_per(cpu, prepared.len())),
        delivery_batch: batch_size,
        memory_mib,
    })
}

fn runtime(cache: &tempfile::TempDir) -> anyhow::Result<PluginRuntime> {
    Ok(PluginRuntime::new(RuntimeConfig { cache_dir: Some(cache.path().to_path_buf()), ..RuntimeConfig::default() })?)
}

/// Options pointing the plugin at the receiver (plain http to it only), with `memory_mib` as
/// its per-instance memory limit when given.
fn plugin_options(receiver: &Receiver, memory_mib: Option<u32>) -> PluginOptions {
    PluginOptions {
        http: Some(HttpPolicy { plain_http_hosts: vec![receiver.host_port()], ..HttpPolicy::default() }),
        limits: memory_mib.map(|mib| SandboxLimits { memory_limit: (mib as usize) << 20, ..SandboxLimits::default() }),
        config: config(receiver),
        ..PluginOptions::default()
    }
}

fn config(receiver: &Receiver) -> PluginConfig {
    PluginConfig {
        base_url: Some(receiver.url()),
        client_id: Some("bench-client".into()),
        client_secret: Some("bench-signing-secret".into()),
        settings: Vec::new(),
    }
}

fn credentials() -> Credentials {
    Credentials {
        access_token: "bench-access-token".into(),
        refresh_token: None,
        expires_at: None,
        renewable_until: None,
        scopes: Vec::new(),
    }
}

fn raw_user(i: usize) -> RawUser {
    RawUser {
        key: format!("u{i}"),
        identifiers: vec![Identifier { kind: "email".into(), value: format!("user{i}@example.com") }],
        consent: None,
    }
}

/// `prepare-users` of users `first..last`, in calls of [`INTAKE_CALL`]; every user must be
/// ready.
async fn prepare_all(plugin: &Plugin, first: usize, last: usize) -> anyhow::Result<Vec<PreparedUser>> {
    let fields = vec!["email".to_string()];
    let mut out = Vec::with_capacity(last - first);
    let mut start = first;
    while start < last {
        let end = (start + INTAKE_CALL).min(last);
        let preparations = plugin.prepare_users(&fields, (start..end).map(raw_user).collect()).await?;
        for preparation in preparations {
            match preparation {
                Preparation::Ready(user) => out.push(user),
                Preparation::NotSynced(why) => anyhow::bail!("a well-formed user was not prepared: {why}"),
            }
        }
        start = end;
    }
    Ok(out)
}

/// `add-users` of `users` in batches of `batch_size`, one after the other; each must be
/// taken whole.
async fn deliver(
    plugin: &Plugin,
    receiver: &Receiver,
    users: &[PreparedUser],
    batch_size: usize,
) -> anyhow::Result<()> {
    let (config, creds) = (config(receiver), credentials());
    let target = AudienceTarget::Existing("bench-audience".into());
    for (n, chunk) in users.chunks(batch_size).enumerate() {
        let batch = Batch { id: format!("bench-batch-{n}"), attempt: 1, users: chunk.to_vec() };
        match plugin.add_users(&config, &creds, "bench-account", &target, batch).await? {
            WriteOutcome::Done(outcome) if outcome.rejected.is_empty() && outcome.unattributed.is_empty() => {}
            other => anyhow::bail!("a batch was not taken whole: {other:?}"),
        }
    }
    Ok(())
}

/// Whether the component loads, prepares [`MEMORY_CALL`] users in one call and delivers one
/// full batch with a per-instance memory limit of `mib` MiB.
async fn fits_in(component: &KitComponent, cache: &tempfile::TempDir, receiver: &Receiver, mib: u32) -> bool {
    let attempt = async {
        let plugin = runtime(cache)?.load(&component.bytes, plugin_options(receiver, Some(mib))).await?;
        let fields = vec!["email".to_string()];
        let prepared: Vec<PreparedUser> = plugin
            .prepare_users(&fields, (0..MEMORY_CALL).map(raw_user).collect())
            .await?
            .into_iter()
            .filter_map(|p| match p {
                Preparation::Ready(user) => Some(user),
                Preparation::NotSynced(_) => None,
            })
            .collect();
        anyhow::ensure!(prepared.len() == MEMORY_CALL, "not every user was prepared");
        let batch = (plugin.manifest().limits.max_batch_size as usize).clamp(1, MEMORY_CALL);
        deliver(&plugin, receiver, &prepared[..batch], batch).await
    };
    attempt.await.is_ok()
}

/// The smallest `n` in `low..=high` for which `passes(n)` holds, assuming it holds for every
/// value above one that does (a binary search); `None` when `passes(high)` does not hold.
pub async fn smallest_passing<F, Fut>(low: u32, high: u32, mut passes: F) -> Option<u32>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    if low > high || !passes(high).await {
        return None;
    }
    // `high` passes; every value below `low` is taken to fail.
    let (mut low, mut high) = (low, high);
    while low < high {
        let mid = low + (high - low) / 2;
        if passes(mid).await {
            high = mid;
        } else {
            low = mid + 1;
        }
    }
    Some(high)
}

fn millis(elapsed: Duration) -> f64 {
    (elapsed.as_secs_f64() * 10_000.0).round() / 10.0
}

fn micros_per(cpu: Duration, n: usize) -> f64 {
    (cpu.as_secs_f64() * 1e6 / n.max(1) as f64 * 100.0).round() / 100.0
}

/// The CPU time this process has used so far (every thread), where the system says.
fn process_cpu() -> Option<Duration> {
    cpu_clock(CpuClock::Process)
}

#[derive(Debug, Clone, Copy)]
enum CpuClock {
    Process,
    Thread,
}

#[cfg(unix)]
fn cpu_clock(clock: CpuClock) -> Option<Duration> {
    use rustix::time::{ClockId, clock_gettime};
    let id = match clock {
        CpuClock::Process => ClockId::ProcessCPUTime,
        CpuClock::Thread => ClockId::ThreadCPUTime,
    };
    let t = clock_gettime(id);
    Some(Duration::new(u64::try_from(t.tv_sec).ok()?, u32::try_from(t.tv_nsec).ok()?))
}

#[cfg(not(unix))]
fn cpu_clock(_clock: CpuClock) -> Option<Duration> {
    None
}

/// A local receiver answering every request `200 {}`, on a thread of its own (a
/// single-threaded runtime), so its CPU time can be told apart from the host's: after each
/// request it records its thread's CPU clock.
struct Receiver {
    port: u16,
    stats: Arc<ReceiverStats>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct ReceiverStats {
    requests: AtomicU64,
    cpu_nanos: AtomicU64,
}

impl Receiver {
    fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let stats = Arc::new(ReceiverStats::default());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let shared = stats.clone();
        let thread = std::thread::Builder::new().name("bench-receiver".into()).spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else { return };
                let app = axum::Router::new().fallback(answer).with_state(shared);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        })?;
        Ok(Self { port, stats, stop: Some(stop), thread: Some(thread) })
    }

    fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("http://{}", self.host_port())
    }

    fn requests(&self) -> u64 {
        self.stats.requests.load(Ordering::SeqCst)
    }

    /// The receiver thread's CPU time as of its last request.
    fn cpu(&self) -> Duration {
        Duration::from_nanos(self.stats.cpu_nanos.load(Ordering::SeqCst))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn answer(
    axum::extract::State(stats): axum::extract::State<Arc<ReceiverStats>>,
    _body: axum::body::Bytes,
) -> ([(&'static str, &'static str); 1], &'static str) {
    stats.requests.fetch_add(1, Ordering::SeqCst);
    if let Some(cpu) = cpu_clock(CpuClock::Thread) {
        stats.cpu_nanos.store(u64::try_from(cpu.as_nanos()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }
    ([("content-type", "application/json")], "{}")
}

/// The figures as a Markdown table, one row per kit; CPU per user also as a multiple of the
/// first row's (the Rust template's).
pub fn render_table(rows: &[KitFigures]) -> String {
    let base = rows.first();
    let times = |value: Option<f64>, base: Option<f64>| match (value, base) {
        (Some(v), Some(b)) if b > 0.0 => format!("{} µs ({}×)", round_to(v, 2), round_to(v / b, 1)),
        (Some(v), _) => format!("{} µs", round_to(v, 2)),
        (None, _) => "—".into(),
    };
    let mut out = String::from(
        "| kit | plugin | component | load (compile) | load (cached) | intake users/s | intake CPU/user | delivery users/s | delivery CPU/user | memory |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let memory = row.memory_mib.map_or_else(|| format!("> {MEMORY_CEILING_MIB} MiB"), |m| format!("{m} MiB"));
        out.push_str(&format!(
            "| {} | {} | {} | {} ms | {} ms | {} | {} | {} | {} | {} |\n",
            row.kit,
            row.plugin,
            mebibytes(row.component_bytes),
            thousands(row.load_compile_ms.round() as u64),
            thousands(row.load_cached_ms.round() as u64),
            thousands(row.intake_users_per_second as u64),
            times(row.intake_cpu_us_per_user, base.and_then(|b| b.intake_cpu_us_per_user)),
            thousands(row.delivery_users_per_second as u64),
            times(row.delivery_cpu_us_per_user, base.and_then(|b| b.delivery_cpu_us_per_user)),
            memory,
        ));
    }
    out
}

fn round_to(value: f64, places: i32) -> f64 {
    let factor = 10f64.powi(places);
    (value * factor).round() / factor
}

fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// `12345` as `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_arguments() {
        // (argument, (name, path) or None for a refusal)
        let table = [
            ("python=target/kits/python/p.wasm", Some(("python", "target/kits/python/p.wasm"))),
            (" js = a=b.wasm", Some(("js", "a=b.wasm"))),
            ("p.wasm", None),
            ("=p.wasm", None),
            ("python=", None),
        ];
        for (text, expected) in table {
            let parsed = parse_component(text);
            match expected {
                Some((name, path)) => assert_eq!(parsed, Ok((name.to_string(), PathBuf::from(path))), "{text}"),
                None => assert!(parsed.is_err(), "{text}"),
            }
        }
    }

    #[test]
    fn the_template_comes_first_unless_replaced() {
        let names = |given: &[(String, PathBuf)]| -> Vec<String> {
            components(given).unwrap().into_iter().map(|c| c.name).collect()
        };
        assert_eq!(names(&[]), vec!["rust"]);
        let wasm = PathBuf::from(audience_plugin_artifacts::TEST_DESTINATION_PATH);
        assert_eq!(names(&[("python".into(), wasm.clone())]), vec!["rust", "python"]);
        assert_eq!(names(&[("rust".into(), wasm.clone())]), vec!["rust"]);
        let missing = components(&[("js".into(), PathBuf::from("/nonexistent/js.wasm"))]).unwrap_err();
        assert!(format!("{missing:#}").contains("cannot read the js component /nonexistent/js.wasm"), "{missing:#}");
    }

    #[tokio::test]
    async fn smallest_passing_finds_the_threshold() {
        // (low, high, threshold: passes(n) iff n >= threshold) -> expected
        let table: &[(u32, u32, u32, Option<u32>)] = &[
            (1, 64, 1, Some(1)),
            (1, 64, 2, Some(2)),
            (1, 64, 37, Some(37)),
            (1, 64, 64, Some(64)),
            (1, 64, 65, None),
            (0, 10, 0, Some(0)),
            (5, 5, 5, Some(5)),
            (6, 5, 1, None),
        ];
        for &(low, high, threshold, expected) in table {
            let mut tried = Vec::new();
            let found = smallest_passing(low, high, |n| {
                tried.push(n);
                async move { n >= threshold }
            })
            .await;
            assert_eq!(found, expected, "low {low} high {high} threshold {threshold}");
            assert!(tried.len() <= 8, "{tried:?}");
        }
    }

    #[test]
    fn the_table_compares_cpu_with_the_first_row() {
        let row = |kit: &str, intake: f64, delivery: f64| KitFigures {
            kit: kit.into(),
            plugin: format!("{kit}-plugin 0.2.0"),
            component_bytes: 3 << 20,
            load_compile_ms: 1234.4,
            load_cached_ms: 12.0,
            intake_users_per_second: 115_000.0,
            intake_cpu_us_per_user: Some(intake),
            delivery_users_per_second: 9_500.0,
            delivery_cpu_us_per_user: Some(delivery),
            delivery_batch: 1000,
            memory_mib: if kit == "rust" { Some(2) } else { None },
        };
        let table = render_table(&[row("rust", 8.7, 20.0), row("js", 116.0, 70.0)]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert_eq!(
            lines[2],
            "| rust | rust-plugin 0.2.0 | 3.0 MiB | 1,234 ms | 12 ms | 115,000 | 8.7 µs (1×) | 9,500 | 20 µs (1×) | 2 MiB |"
        );
        assert!(lines[3].contains("116 µs (13.3×)") && lines[3].contains("70 µs (3.5×)"), "{}", lines[3]);
        assert!(lines[3].ends_with("| > 64 MiB |"), "{}", lines[3]);
    }

    #[test]
    fn number_formats() {
        for (n, text) in [(0, "0"), (999, "999"), (1000, "1,000"), (115_000, "115,000"), (1_234_567, "1,234,567")] {
            assert_eq!(thousands(n), text);
        }
        assert_eq!(mebibytes(19_090_849), "18.2 MiB");
        assert_eq!(micros_per(Duration::from_millis(87), 10_000), 8.7);
    }

    /// The whole measurement on the workspace's template, small: every figure is there and
    /// the delivery reached the receiver (no figure is compared with a number).
    #[tokio::test(flavor = "multi_thread")]
    async fn the_template_is_measured() {
        let component = components(&[]).unwrap().remove(0);
        let row = measure(&component, 2_000).await.unwrap();
        assert_eq!(row.kit, "rust");
        assert!(row.plugin.starts_with("webhook "), "{}", row.plugin);
        assert_eq!(row.component_bytes, audience_plugin_artifacts::WEBHOOK.len() as u64);
        assert!(row.load_compile_ms > 0.0 && row.load_cached_ms > 0.0);
        assert!(row.intake_users_per_second > 0.0 && row.delivery_users_per_second > 0.0);
        assert_eq!(row.delivery_batch, 1000);
        let memory = row.memory_mib.expect("the template fits in the default memory limit");
        assert!((1..=MEMORY_CEILING_MIB).contains(&memory));
        if cfg!(unix) {
            assert!(row.intake_cpu_us_per_user.is_some_and(|us| us > 0.0));
            assert!(row.delivery_cpu_us_per_user.is_some_and(|us| us > 0.0));
        }
    }
}
