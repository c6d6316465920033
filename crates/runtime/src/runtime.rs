//! The wasmtime engine narrowed to what audience-host needs, and the plugins it loads.
//!
//! Design choices, and why:
//! - **A fresh instance per call.** Instances come from the pooling allocator and a
//!   pre-linked `InstancePre`, so creating one costs microseconds. In exchange, a trap, a
//!   timeout or a memory blow-up can never leave a half-broken instance behind for the next
//!   call (wasmtime poisons an instance after a trap), calls run concurrently without locks,
//!   and no state can leak from one connection's call into another's.
//! - **Epoch deadlines that yield.** A background thread bumps the engine's epoch every tick;
//!   at each tick a running guest yields back to tokio (so a spinning plugin cannot starve
//!   the host's other tasks) and is interrupted once its call deadline has passed.
//! - **Shares, not a free-for-all** (see [`super::pool`]). A call waits, within its
//!   `call_timeout`, for a slot of its caller's quota, of its plugin's share of the pool and
//!   of the pool; then runs guest code only while it holds one of its plugin's running
//!   permits, given back at every tick and while waiting for the partner. A plugin that
//!   spins in every call it is given holds its share of instances and `cpu_share` cores, and
//!   nothing more.
//! - **A memory guard** refuses growth past the plugin's limit and remembers that it did, so
//!   the resulting crash is reported as a memory-limit error, not as a mysterious trap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store, Trap,
    UpdateDeadline,
};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::WasiHttpCtx;

use super::bindings::latest::audience::destination::http_client;
use super::bindings::{EXPORT_PREFIX, SUPPORTED_VERSIONS, latest, since_v0_1_0};
use super::cache::{CacheOutcome, CompileCache};
use super::config::{HttpPolicy, RuntimeConfig, SandboxLimits};
use super::departure::Departure;
use super::error::{LoadError, PluginError};
use super::http::HttpGate;
use super::logging::{CallLog, LogBudget, LogLine, LogSource};
use super::outbound::Outbound;
use super::pool::{InstanceQuota, Pool, Registration, RunSlot, Running, Share};
use super::redact::Secrets;
use super::types::{Manifest, PluginConfig};
use super::wasi_http::WasiGate;

/// How often the epoch advances: the granularity of deadlines and of cooperative yields.
const TICK: Duration = Duration::from_millis(5);
/// Bytes of each pooled memory (and table) slot reset in place rather than returned to the
/// kernel when an instance is freed: at most this much stays resident per slot.
const KEEP_RESIDENT: usize = 1 << 20;
/// The largest memory any plugin may be configured to use (the pooling allocator's slot size).
pub const MAX_MEMORY_LIMIT: usize = 1 << 30;

/// Loads destination components and runs their calls in the sandbox. Cheap to clone.
#[derive(Clone)]
pub struct PluginRuntime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<InstanceState>,
    cache: CompileCache,
    config: RuntimeConfig,
    pool: Pool,
    _ticker: EpochTicker,
}

/// Bumps the engine's epoch every [`TICK`] until dropped.
struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    engine.increment_epoch();
                }
            })
            .map(|_| ())
            .unwrap_or_else(
                |err| tracing::error!(error = %err, "could not start the epoch thread; plugin deadlines will not fire"),
            );
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Settings for loading one plugin.
#[derive(Debug, Clone)]
pub struct PluginOptions {
    /// Where the plugin may send requests. `None` allows the hosts its manifest names
    /// (`default-hosts`, https only); `Some` allows exactly the policy's hosts, and an empty
    /// policy denies all network access.
    pub http: Option<HttpPolicy>,
    /// Limits for this plugin; `None` uses the runtime's defaults.
    pub limits: Option<SandboxLimits>,
    /// Keep every line the plugin logs, for [`Plugin::captured_logs`].
    pub capture_logs: bool,
    /// The operator's settings, passed to `describe` (0.2.0 plugins derive their default hosts
    /// and authorize page from `base-url`).
    pub config: PluginConfig,
    /// Most instances this plugin may hold at once (never more than the runtime's
    /// `max_instances`). `None` (the default): an equal share of the runtime's
    /// `max_instances` among the plugins loaded, at least 1.
    pub max_instances: Option<u32>,
}

impl Default for PluginOptions {
    fn default() -> Self {
        let config = PluginConfig { base_url: None, client_id: None, client_secret: None, settings: Vec::new() };
        Self { http: None, limits: None, capture_logs: false, config, max_instances: None }
    }
}

/// Called around every outbound request a plugin makes. The engine uses it to pace requests
/// per connection (the partner counts requests per token, not plugin calls) and to measure them.
pub trait RequestHooks: Send + Sync {
    /// Wait until the request may be sent; `Err(why)` refuses it (the plugin sees a
    /// connection failure, which it reports as transient, so the users are retried). The
    /// [`Departure`] handed back is told when the request actually left, as close to the wire
    /// as the runtime sees it (see [`crate::departure`]), or dropped when it never left. Hooks
    /// wrapping other hooks hand theirs back.
    fn before_send(&self) -> BoxFuture<'_, Result<Departure, String>>;
    /// The request finished with this status (or failed) `elapsed` after it left (after it was
    /// handed to the HTTP client when it never left).
    fn after_send(&self, outcome: Result<u16, &http_client::HttpError>, elapsed: Duration);
    /// The plugin read the partner's own rate budget from a response (the `pacing` import):
    /// `used_percent` of it is spent (100 = the partner refuses), and access returns after
    /// `regain_after` when the partner said. The engine slows the connection by it.
    fn report_budget(&self, used_percent: f32, regain_after: Option<Duration>) {
        let _ = (used_percent, regain_after);
    }
}

/// What a caller attaches to a plugin's calls: hooks around each outbound request, and a
/// quota on the instances its calls may hold (see [`Plugin::with_hooks`] and
/// [`Plugin::with_quota`]).
#[derive(Clone, Default)]
pub(crate) struct CallerHooks {
    hooks: Option<Arc<dyn RequestHooks>>,
    quota: Option<InstanceQuota>,
}

/// The state of one instance's store.
pub(crate) struct InstanceState {
    wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    guard: MemoryGuard,
    /// The call's network side, shared by `http-client` and `wasi:http`: the gate, the
    /// caller's hooks, and the gate's first refusal during the call (a failure the plugin then
    /// reports is the host's refusal, never the partner's).
    pub(crate) outbound: Outbound,
    /// `wasi:http`'s state, and its hooks into [`Self::outbound`].
    pub(crate) wasi_http: WasiHttpCtx,
    pub(crate) wasi_gate: WasiGate,
    pub(crate) log: CallLog,
    /// Time this call spent waiting in the host (rate limiter, pauses, the partner, `poll`):
    /// not charged to the plugin's `call_timeout`.
    pub(crate) waited: Duration,
    /// The call's hold on its plugin's running permit, given back while it waits.
    pub(crate) run: Arc<RunSlot>,
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// Refuses memory growth past the limit and remembers that it did.
struct MemoryGuard {
    limit: usize,
    exceeded: bool,
}

impl ResourceLimiter for MemoryGuard {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl PluginRuntime {
    /// A runtime with the given settings.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let slots = config.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots * 8)
            .total_memories(slots * 2)
            .total_tables(slots * 8)
            .max_memories_per_component(2)
            .max_memory_size(MAX_MEMORY_LIMIT);
        // Every call gets a fresh instance, so by default each call page-faults its stack and
        // heap back in, and freeing the instance hands them back to the kernel (`madvise`).
        // Where Linux can report which pages a call dirtied (`PAGEMAP_SCAN`, 6.7+), reset those
        // in place instead and keep them resident for the next instance in the slot; the
        // memory a plugin sees is pristine either way. Without the scan, wasmtime would
        // `memset` the whole budget on every call, which costs more than it saves.
        if PoolingAllocationConfig::is_pagemap_scan_available() {
            pool.pagemap_scan(Enabled::Yes)
                .linear_memory_keep_resident(KEEP_RESIDENT)
                .table_keep_resident(KEEP_RESIDENT);
        }
        let mut wasm = Config::new();
        wasm.epoch_interruption(true)
            .wasm_component_model(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&wasm).map_err(|err| LoadError::Engine(format!("{err:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|err| LoadError::Engine(format!("{err:#}")))?;
        // `wasi:http` for plugins whose HTTP client speaks it, through the same gate as
        // `http-client` (see `wasi_http`), and `poll` that waits as `http-client` does.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
            .map_err(|err| LoadError::Engine(format!("{err:#}")))?;
        super::waiting::shadow_poll(&mut linker).map_err(|err| LoadError::Engine(format!("{err:#}")))?;
        since_v0_1_0::Destination::add_to_linker::<_, HasSelf<InstanceState>>(&mut linker, |state| state)
            .map_err(|err| LoadError::Engine(format!("{err:#}")))?;
        latest::Destination::add_to_linker::<_, HasSelf<InstanceState>>(&mut linker, |state| state)
            .map_err(|err| LoadError::Engine(format!("{err:#}")))?;
        let cache = CompileCache::new(&engine, config.cache_dir.clone());
        let inner = RuntimeInner {
            _ticker: EpochTicker::start(engine.clone()),
            engine,
            linker,
            cache,
            pool: Pool::new(slots),
            config,
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The limits of plugins loaded without their own (`[runtime.limits]`).
    pub fn default_limits(&self) -> &SandboxLimits {
        &self.inner.config.limits
    }

    /// The underlying wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Load a component from a file.
    pub async fn load_file(
        &self,
        path: impl AsRef<std::path::Path>,
        options: PluginOptions,
    ) -> Result<Plugin, LoadError> {
        let path = path.as_ref();
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| LoadError::Read { path: path.display().to_string(), source })?;
        self.load(&bytes, options).await
    }

    /// Load a component from its bytes: check it, compile it (or take it from the cache),
    /// link it, and ask it to `describe` itself.
    pub async fn load(&self, bytes: &[u8], options: PluginOptions) -> Result<Plugin, LoadError> {
        check_header(bytes)?;
        let engine = self.inner.engine.clone();
        let cache = self.inner.cache.clone();
        let owned = bytes.to_vec();
        let (component, cache_outcome) = tokio::task::spawn_blocking(move || cache.load(&engine, &owned))
            .await
            .map_err(|err| LoadError::Compile(format!("compile task failed: {err}")))??;
        let contract = check_exports(&self.inner.engine, &component)?;
        let imports: Vec<String> =
            component.component_type().imports(&self.inner.engine).map(|(name, _)| name.to_string()).collect();
        let pre = self.inner.linker.instantiate_pre(&component);
        let pre = match contract.as_str() {
            since_v0_1_0::VERSION => pre.and_then(since_v0_1_0::DestinationPre::new).map(Pre::V0_1_0),
            _ => pre.and_then(latest::DestinationPre::new).map(Pre::Latest),
        }
        .map_err(|err| LoadError::Incompatible(format!("{err:#}")))?;
        let limits = options.limits.clone().unwrap_or_else(|| self.inner.config.limits.clone());
        let limits = SandboxLimits { memory_limit: limits.memory_limit.min(MAX_MEMORY_LIMIT), ..limits };
        let log_budget = Arc::new(LogBudget::new(limits.max_log_lines_per_second, limits.max_log_lines_per_call));
        let capture = options.capture_logs.then(|| Arc::new(Mutex::new(Vec::new())));
        let deny_all =
            Arc::new(HttpGate::new(&HttpPolicy::default()).map_err(|err| LoadError::HttpPolicy(err.to_string()))?);
        let mut inner = PluginInner {
            name: Arc::from("(loading)"),
            pre,
            _registration: self.inner.pool.register(),
            share: Share::new(options.max_instances),
            running: Running::new(self.inner.config.cpu_share()),
            runtime: self.inner.clone(),
            http: deny_all,
            limits,
            log_budget,
            capture,
            cache_outcome,
            secrets: Secrets::of_config(&options.config),
        };
        let config = options.config.clone();
        let describe_secrets = inner.secrets.clone();
        let mut manifest = inner
            .call(CallerHooks::default(), &describe_secrets, move |store, guest| {
                Box::pin(async move {
                    match guest {
                        Guest::V0_1_0(guest) => guest.call_describe(store).await.map(Manifest::from),
                        Guest::Latest(guest) => guest.call_describe(store, &config).await,
                    }
                })
            })
            .await
            .map_err(LoadError::Describe)?;
        crate::bound::Bound::bound(&mut manifest, &describe_secrets);
        let policy = options
            .http
            .unwrap_or_else(|| HttpPolicy { allowed_hosts: manifest.default_hosts.clone(), ..HttpPolicy::default() });
        inner.http = Arc::new(HttpGate::new(&policy).map_err(|err| LoadError::HttpPolicy(err.to_string()))?);
        inner.name = Arc::from(manifest.name.as_str());
        let about = Arc::new(About { contract_version: contract, imports });
        Ok(Plugin { inner: Arc::new(inner), manifest: Arc::new(manifest), about, hooks: CallerHooks::default() })
    }
}

/// Tell a core module or a random file from a component before handing it to the compiler,
/// whose own message ("expected a component") would not tell the user what to do.
fn check_header(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    // Bytes 4..8 are the version (core modules: 1) and layer (components: 1).
    match (bytes[4], bytes[6]) {
        (1, 0) => Err(LoadError::CoreModule),
        _ => Ok(()),
    }
}

/// Check that the component exports `audience:destination/plugin` at a version this host knows;
/// returns that version.
fn check_exports(engine: &Engine, component: &Component) -> Result<String, LoadError> {
    let names: Vec<String> = component.component_type().exports(engine).map(|(name, _)| name.to_string()).collect();
    let Some(export) = names.iter().find(|name| name.starts_with(EXPORT_PREFIX)) else {
        let found = if names.is_empty() { "nothing".to_string() } else { names.join(", ") };
        return Err(LoadError::MissingExport { found });
    };
    let version = &export[EXPORT_PREFIX.len()..];
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(LoadError::WrongVersion { found: version.to_string(), supported: SUPPORTED_VERSIONS.join(", ") });
    }
    Ok(version.to_string())
}

/// A loaded destination plugin. Cheap to clone; every call runs in a fresh instance, so calls
/// may run concurrently from any number of tasks.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<PluginInner>,
    manifest: Arc<Manifest>,
    about: Arc<About>,
    pub(crate) hooks: CallerHooks,
}

/// What the loader learned about the component itself.
struct About {
    contract_version: String,
    imports: Vec<String>,
}

pub(crate) struct PluginInner {
    name: Arc<str>,
    /// The plugin's log lines over time, shared by all its calls.
    log_budget: Arc<LogBudget>,
    pre: Pre,
    /// Counts this plugin in the runtime's shares while it is loaded.
    _registration: Registration,
    /// The instances this plugin holds, against its share.
    share: Arc<Share>,
    /// Its calls running guest code, against the runtime's `cpu_share`.
    running: Arc<Running>,
    runtime: Arc<RuntimeInner>,
    http: Arc<HttpGate>,
    limits: SandboxLimits,
    capture: Option<Arc<Mutex<Vec<LogLine>>>>,
    cache_outcome: CacheOutcome,
    /// The secrets every call of this plugin is handed (the operator's client secret).
    secrets: Secrets,
}

/// A linked component, ready to instantiate, of one of the versions this host speaks.
pub(crate) enum Pre {
    /// `audience:destination@0.1.0`, adapted at each call (see `bindings::since_v0_1_0`).
    V0_1_0(since_v0_1_0::DestinationPre<InstanceState>),
    /// The current version.
    Latest(latest::DestinationPre<InstanceState>),
}

/// The exports of a fresh instance, by contract version.
pub(crate) enum Guest<'a> {
    /// A 0.1.0 component.
    V0_1_0(&'a since_v0_1_0::exports::audience::destination::plugin::Guest),
    /// A component of the current version.
    Latest(&'a latest::exports::audience::destination::plugin::Guest),
}

impl PluginInner {
    /// The operator's `max_instances` for this plugin, if set.
    fn share_setting(&self) -> Option<u32> {
        self.share.configured()
    }

    /// The contract version of the component.
    pub(crate) fn version(&self) -> &'static str {
        match self.pre {
            Pre::V0_1_0(_) => since_v0_1_0::VERSION,
            Pre::Latest(_) => latest::VERSION,
        }
    }

    /// The secrets of a call that hands the plugin `extra` besides the client secret.
    pub(crate) fn secrets_with(&self, extra: Secrets) -> Secrets {
        extra.and(&self.secrets)
    }

    /// Run `f` against a fresh instance, within this plugin's limits. When the host's HTTP gate
    /// refused a request during the call, the refusal comes back beside the result, so that
    /// the caller never reports the plugin's resulting error as the partner's. `secrets` (what
    /// the call hands the plugin) are scrubbed from the call's log lines, its failure and the
    /// gate's refusal; the caller scrubs the result's texts (`Bound::bound`) with them.
    pub(crate) async fn call<R: Send>(
        &self,
        hooks: CallerHooks,
        secrets: &Secrets,
        f: impl for<'a> FnOnce(&'a mut Store<InstanceState>, Guest<'a>) -> BoxFuture<'a, wasmtime::Result<R>> + Send,
    ) -> Result<R, PluginError> {
        self.call_checked(hooks, secrets, f).await.map(|(value, _)| value)
    }

    /// [`Self::call`], with the host gate's refusal (if any) beside the result.
    pub(crate) async fn call_checked<R: Send>(
        &self,
        hooks: CallerHooks,
        secrets: &Secrets,
        f: impl for<'a> FnOnce(&'a mut Store<InstanceState>, Guest<'a>) -> BoxFuture<'a, wasmtime::Result<R>> + Send,
    ) -> Result<(R, Option<String>), PluginError> {
        let started = Instant::now();
        let backstop = self.limits.max_call_duration;
        let run = async {
            // Waiting for a slot is bounded by the plugin's `call_timeout`, so a full pool
            // fails the call as busy instead of holding its caller indefinitely.
            let _admitted = self
                .runtime
                .pool
                .admit(&self.name, hooks.quota.as_ref(), &self.share, started, self.limits.call_timeout)
                .await?;
            // The plugin's own clock starts here; the time it queues for a running permit (now
            // and at every tick) is taken off it, as waits in the host are.
            let own_clock = Instant::now();
            let run = RunSlot::new(self.running.clone());
            run.acquire().await;
            // Declared after the admission: the instance is freed before its slots are.
            let mut store = self.new_store(hooks.hooks, run, own_clock, Arc::new(secrets.clone()));
            let result = match &self.pre {
                Pre::V0_1_0(pre) => match pre.instantiate_async(&mut store).await {
                    Ok(instance) => f(&mut store, Guest::V0_1_0(instance.audience_destination_plugin())).await,
                    Err(err) => Err(err),
                },
                Pre::Latest(pre) => match pre.instantiate_async(&mut store).await {
                    Ok(instance) => f(&mut store, Guest::Latest(instance.audience_destination_plugin())).await,
                    Err(err) => Err(err),
                },
            };
            match result {
                Ok(value) => {
                    Ok((value, store.data().outbound.take_refusal().map(|why| secrets.scrubbed(&why).into_owned())))
                }
                Err(err) => Err(self.classify(&store, err).scrubbed(secrets)),
            }
        };
        // The plugin's own time is bounded by the epoch deadline (see `new_store`); this bounds
        // the call as a whole, waits included.
        tokio::time::timeout(backstop, run).await.unwrap_or(Err(PluginError::TooLong(backstop)))
    }

    fn new_store(
        &self,
        hooks: Option<Arc<dyn RequestHooks>>,
        run: Arc<RunSlot>,
        started: Instant,
        secrets: Arc<Secrets>,
    ) -> Store<InstanceState> {
        let log = CallLog::new(
            self.name.clone(),
            self.limits.max_log_lines_per_call,
            self.log_budget.clone(),
            self.capture.clone(),
            secrets,
        );
        let wasi = WasiCtxBuilder::new()
            .stdout(log.stream(LogSource::Stdout))
            .stderr(log.stream(LogSource::Stderr))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let outbound = Outbound::new(self.http.clone(), hooks, log.clone());
        let state = InstanceState {
            wasi,
            table: ResourceTable::new(),
            guard: MemoryGuard { limit: self.limits.memory_limit, exceeded: false },
            wasi_gate: WasiGate::new(outbound.clone()),
            wasi_http: WasiHttpCtx::new(),
            outbound,
            log,
            waited: Duration::ZERO,
            run,
        };
        let mut store = Store::new(&self.runtime.engine, state);
        store.limiter(|state| &mut state.guard);
        let budget = self.limits.call_timeout;
        store.set_epoch_deadline(1);
        // Checked at every epoch tick while guest code runs: the call's time so far, less what
        // it spent waiting in the host and queuing to run, is the plugin's own. Past its
        // budget it is interrupted; else it gives back its running permit, yields to tokio,
        // and queues behind the plugin's other calls for the next turn.
        store.epoch_deadline_callback(move |ctx| {
            let state = ctx.data();
            let own = started.elapsed().saturating_sub(state.waited).saturating_sub(state.run.queued());
            if own >= budget {
                return Ok(UpdateDeadline::Interrupt);
            }
            state.run.release();
            let run = state.run.clone();
            Ok(UpdateDeadline::YieldCustom(
                1,
                Box::pin(async move {
                    tokio::task::yield_now().await;
                    run.acquire().await;
                }),
            ))
        });
        store
    }

    fn classify(&self, store: &Store<InstanceState>, err: wasmtime::Error) -> PluginError {
        if store.data().guard.exceeded {
            return PluginError::MemoryLimit { limit: self.limits.memory_limit };
        }
        if matches!(err.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
            return PluginError::Timeout(self.limits.call_timeout);
        }
        if let Some(trap) = err.downcast_ref::<Trap>() {
            return PluginError::Trap(trap.to_string());
        }
        PluginError::Trap(format!("{err:#}"))
    }
}

impl Plugin {
    /// The plugin's name (from its manifest).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// What the plugin said about itself at load.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The contract version the component implements, e.g. `0.1.0`.
    pub fn contract_version(&self) -> &str {
        &self.about.contract_version
    }

    /// The interfaces the component imports (WASI and the contract's own).
    pub fn imports(&self) -> &[String] {
        &self.about.imports
    }

    /// The limits its calls run under.
    pub fn limits(&self) -> &SandboxLimits {
        &self.inner.limits
    }

    /// This plugin with `hooks` called around each outbound request of its calls (and the
    /// quota it had, if any).
    pub fn with_hooks(&self, hooks: Arc<dyn RequestHooks>) -> Plugin {
        Plugin {
            inner: self.inner.clone(),
            manifest: self.manifest.clone(),
            about: self.about.clone(),
            hooks: CallerHooks { hooks: Some(hooks), quota: self.hooks.quota.clone() },
        }
    }

    /// This plugin with its calls bounded by `quota` (and the hooks it had, if any): a call
    /// waits, within its `call_timeout`, until the quota has a free instance, then fails as
    /// [`PluginError::Busy`]. The engine gives each connection one, so that one connection's
    /// calls cannot take all of the plugin's share.
    pub fn with_quota(&self, quota: InstanceQuota) -> Plugin {
        Plugin {
            inner: self.inner.clone(),
            manifest: self.manifest.clone(),
            about: self.about.clone(),
            hooks: CallerHooks { hooks: self.hooks.hooks.clone(), quota: Some(quota) },
        }
    }

    /// Most instances this plugin may hold at once, as things stand: its own `max_instances`,
    /// or its equal share of the runtime's (which shrinks as plugins load).
    pub fn instance_share(&self) -> usize {
        self.inner.runtime.pool.share(self.inner.share_setting())
    }

    /// Instances of this plugin alive right now, across all its calls.
    pub fn instances_in_use(&self) -> usize {
        self.inner.share.in_use()
    }

    /// Calls of this plugin running guest code right now (at most the runtime's
    /// `cpu_share`); calls waiting for the partner or queuing for their turn are not counted.
    pub fn running_now(&self) -> usize {
        self.inner.running.now()
    }

    /// The most calls of this plugin that ever ran guest code at the same time.
    pub fn running_peak(&self) -> usize {
        self.inner.running.peak()
    }

    /// Whether the compile cache was used when this plugin was loaded.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.inner.cache_outcome
    }

    /// Log lines dropped because the plugin logged more than its budget over time.
    pub fn log_lines_dropped(&self) -> u64 {
        self.inner.log_budget.dropped()
    }

    /// Every line the plugin logged so far, when loaded with `capture_logs`.
    pub fn captured_logs(&self) -> Vec<LogLine> {
        self.inner.capture.as_ref().map(|c| c.lock().clone()).unwrap_or_default()
    }
}
