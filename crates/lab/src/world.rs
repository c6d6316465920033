//! A complete host against a local partner sandbox, in one process: what the tests, the demo
//! and the benchmarks run on. Everything is real — the sandbox is an HTTP server on loopback, the
//! plugin is the built-in component of that partner, the store is a SQLite file (or a scratch
//! PostgreSQL database) — only the partner is a stand-in.
//!
//! Three partners can be stood in for, each a [`Partner`]: [`Pinterest`] (the
//! [`PinterestSandbox`] and `audience_plugin_artifacts::PINTEREST`), [`Meta`] (the
//! [`MetaSandbox`] and `audience_plugin_artifacts::META`) and [`Google`] (the
//! [`GoogleSandbox`] and `audience_plugin_artifacts::GOOGLE`).
//!
//! - [`World<P>`] is one partner's sandbox and plugin, a store and a started engine. `World`
//!   alone is `World<Pinterest>`, started with [`World::start`]; any partner's world starts
//!   with [`World::launch`], e.g. `World::launch(dir, WorldOptions::<Meta>::default())`.
//! - [`SideBySide`] is Pinterest, Meta and Google delivered by one engine, each a [`Side`].
//! - [`Lab<P>`] is a world with a workspace, a connection made through the partner's OAuth
//!   flow and the first ad account: what the demo and the benchmarks deliver to.
//!
//! [`DestinationKind`] names the partners at run time (the demo's `--destination`).

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use audience_sandbox::{
    GoogleConfig, GoogleHandle, GoogleSandbox, MetaConfig, MetaHandle, MetaSandbox, PinterestSandbox, SandboxConfig,
    SandboxHandle,
};
use audience_store::{CredentialKey, NewConnection, PostgresStore, SqliteStore, Store, SyncAction, SyncRecord};

use audience_engine::{
    Destination, Destinations, Engine, EngineConfig, LimitOverrides, SyncRequest, encode_credentials,
};
use audience_runtime::types::{Account, AuthCode, Credentials, Grant, PluginConfig};
use audience_runtime::{HttpLimits, HttpPolicy, Plugin, PluginOptions, PluginRuntime, RuntimeConfig};

/// The partners a world can stand in for, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, clap::ValueEnum)]
pub enum DestinationKind {
    /// Pinterest (customer lists and audiences, API v5).
    Pinterest,
    /// Meta (Custom Audiences from customer lists, the Marketing API).
    Meta,
    /// Google Customer Match (the Data Manager API; asynchronous outcomes).
    Google,
}

impl DestinationKind {
    /// The destination's name, as its plugin's manifest and the connections say it.
    pub fn name(self) -> &'static str {
        match self {
            DestinationKind::Pinterest => "pinterest",
            DestinationKind::Meta => "meta",
            DestinationKind::Google => "google",
        }
    }

    /// The partner's name for people.
    pub fn display_name(self) -> &'static str {
        match self {
            DestinationKind::Pinterest => "Pinterest",
            DestinationKind::Meta => "Meta",
            DestinationKind::Google => "Google",
        }
    }
}

impl fmt::Display for DestinationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A partner a world stands in for: its sandbox, how its built-in plugin is pointed at the
/// sandbox, and how a test gets credentials and reads the partner's side of things.
/// Implemented by [`Pinterest`], [`Meta`] and [`Google`].
pub trait Partner: Send + Sync + 'static {
    /// The running sandbox.
    type Sandbox: Send + Sync + 'static;
    /// The sandbox's side door (tokens, faults, exact membership, the request log).
    type Handle: Clone + Send + Sync + 'static;
    /// The sandbox's settings.
    type Config: Clone + Default + fmt::Debug + Send + Sync + 'static;

    /// Which partner this is.
    const KIND: DestinationKind;
    /// The permissions of a connection made from sandbox-issued tokens.
    const SCOPES: &'static [&'static str];
    /// The match fields of [`World::sync`], in priority order.
    const MATCH_FIELDS: &'static [&'static str];

    /// Start the sandbox on loopback.
    fn start_sandbox(config: Self::Config) -> impl Future<Output = anyhow::Result<Self::Sandbox>> + Send;
    /// The sandbox's handle.
    fn handle(sandbox: &Self::Sandbox) -> Self::Handle;
    /// The sandbox's base URL.
    fn base_url(sandbox: &Self::Sandbox) -> String;
    /// The built-in plugin loaded to talk to `sandbox` only, and the settings its calls need.
    fn load_plugin(
        runtime: &PluginRuntime,
        sandbox: &Self::Sandbox,
        http: HttpLimits,
    ) -> impl Future<Output = anyhow::Result<(Plugin, PluginConfig)>> + Send;
    /// Credentials the sandbox issues without an OAuth round trip, holding `scopes`, as the
    /// plugin's `authorize` would return them.
    fn issue_credentials(sandbox: &Self::Sandbox, config: &Self::Config, scopes: &[&str]) -> Credentials;
    /// The page the OAuth flow opens instead of the manifest's authorize URL (`None`: the
    /// manifest's, which the plugin already points at the sandbox).
    fn authorize_page(sandbox: &Self::Sandbox) -> Option<String>;
    /// The ids of the sandbox's ad accounts, in its order.
    fn ad_account_ids(handle: &Self::Handle) -> Vec<String>;
    /// The sandbox's count of the members of the audience named `audience` in `account`
    /// (0 when there is none).
    fn member_count(handle: &Self::Handle, account: &str, audience: &str) -> usize;
    /// Stop the sandbox.
    fn shutdown(sandbox: Self::Sandbox) -> impl Future<Output = ()> + Send;
}

/// Pinterest: the [`PinterestSandbox`] and the built-in Pinterest plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pinterest;

impl Partner for Pinterest {
    type Sandbox = PinterestSandbox;
    type Handle = SandboxHandle;
    type Config = SandboxConfig;

    const KIND: DestinationKind = DestinationKind::Pinterest;
    const SCOPES: &'static [&'static str] = &["ads:read", "ads:write"];
    const MATCH_FIELDS: &'static [&'static str] = &["email"];

    async fn start_sandbox(config: SandboxConfig) -> anyhow::Result<PinterestSandbox> {
        PinterestSandbox::start(config).await.context("cannot start the Pinterest sandbox")
    }

    fn handle(sandbox: &PinterestSandbox) -> SandboxHandle {
        sandbox.handle()
    }

    fn base_url(sandbox: &PinterestSandbox) -> String {
        sandbox.base_url()
    }

    async fn load_plugin(
        runtime: &PluginRuntime,
        sandbox: &PinterestSandbox,
        http: HttpLimits,
    ) -> anyhow::Result<(Plugin, PluginConfig)> {
        pinterest_plugin(runtime, sandbox, http).await
    }

    fn issue_credentials(sandbox: &PinterestSandbox, _config: &SandboxConfig, scopes: &[&str]) -> Credentials {
        let pair = sandbox.handle().issue_tokens(scopes);
        Credentials {
            access_token: pair.access_token,
            refresh_token: Some(pair.refresh_token),
            expires_at: None,
            renewable_until: None,
            scopes: scopes.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    fn authorize_page(sandbox: &PinterestSandbox) -> Option<String> {
        Some(sandbox.authorize_url())
    }

    fn ad_account_ids(handle: &SandboxHandle) -> Vec<String> {
        handle.ad_account_ids()
    }

    fn member_count(handle: &SandboxHandle, account: &str, audience: &str) -> usize {
        handle.find_customer_list(account, audience).map_or(0, |list| handle.members(&list).len())
    }

    async fn shutdown(sandbox: PinterestSandbox) {
        sandbox.shutdown().await;
    }
}

/// Meta: the [`MetaSandbox`] and the built-in Meta plugin.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meta;

/// Seconds since the Unix epoch on the Meta sandbox's clock (which may run ahead).
fn meta_now_unix(handle: &MetaHandle) -> u64 {
    let real = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    real.saturating_add(handle.clock_offset().as_secs())
}

impl Partner for Meta {
    type Sandbox = MetaSandbox;
    type Handle = MetaHandle;
    type Config = MetaConfig;

    const KIND: DestinationKind = DestinationKind::Meta;
    const SCOPES: &'static [&'static str] = &["ads_management", "ads_read", "business_management"];
    const MATCH_FIELDS: &'static [&'static str] = &["email", "phone", "first-name", "last-name", "country"];

    async fn start_sandbox(config: MetaConfig) -> anyhow::Result<MetaSandbox> {
        MetaSandbox::start(config).await.context("cannot start the Meta sandbox")
    }

    fn handle(sandbox: &MetaSandbox) -> MetaHandle {
        sandbox.handle()
    }

    fn base_url(sandbox: &MetaSandbox) -> String {
        sandbox.base_url()
    }

    async fn load_plugin(
        runtime: &PluginRuntime,
        sandbox: &MetaSandbox,
        http: HttpLimits,
    ) -> anyhow::Result<(Plugin, PluginConfig)> {
        meta_plugin(runtime, sandbox, http).await
    }

    /// A long-lived user token (no refresh token: Meta issues none), expiring and renewable
    /// until the sandbox's long-lived lifetime from now, as the plugin's code flow returns it.
    fn issue_credentials(sandbox: &MetaSandbox, config: &MetaConfig, scopes: &[&str]) -> Credentials {
        let handle = sandbox.handle();
        let access_token = handle.issue_token(scopes);
        let expires_at = meta_now_unix(&handle).saturating_add(config.long_lived_token_ttl.as_secs());
        Credentials {
            access_token,
            refresh_token: None,
            expires_at: Some(expires_at),
            renewable_until: Some(expires_at),
            scopes: scopes.iter().map(|s| (*s).to_string()).collect(),
        }
    }

    fn authorize_page(_sandbox: &MetaSandbox) -> Option<String> {
        None
    }

    fn ad_account_ids(handle: &MetaHandle) -> Vec<String> {
        handle.ad_account_ids()
    }

    fn member_count(handle: &MetaHandle, account: &str, audience: &str) -> usize {
        // Names are not unique on Meta; the plugin picks the oldest, and so does this.
        handle.find_audiences(account, audience).first().map_or(0, |id| handle.members(id).len())
    }

    async fn shutdown(sandbox: MetaSandbox) {
        sandbox.shutdown().await;
    }
}

/// Google Customer Match: the [`GoogleSandbox`] and the built-in Google plugin, asking about
/// submitted requests soon after sending them (the sandbox finishes them after its
/// `processing_delay`, not Google's 30 minutes).
#[derive(Debug, Clone, Copy, Default)]
pub struct Google;

/// Milliseconds the Google plugin lets pass before the host first asks about a request, in a
/// world (`status-check-after-ms`).
pub const GOOGLE_STATUS_CHECK_AFTER_MS: &str = "500";

impl Partner for Google {
    type Sandbox = GoogleSandbox;
    type Handle = GoogleHandle;
    type Config = GoogleConfig;

    const KIND: DestinationKind = DestinationKind::Google;
    const SCOPES: &'static [&'static str] = &[GoogleHandle::DATAMANAGER_SCOPE, GoogleHandle::ADWORDS_SCOPE];
    const MATCH_FIELDS: &'static [&'static str] = &["email", "phone"];

    async fn start_sandbox(config: GoogleConfig) -> anyhow::Result<GoogleSandbox> {
        GoogleSandbox::start(config).await.context("cannot start the Google sandbox")
    }

    fn handle(sandbox: &GoogleSandbox) -> GoogleHandle {
        sandbox.handle()
    }

    fn base_url(sandbox: &GoogleSandbox) -> String {
        sandbox.base_url()
    }

    async fn load_plugin(
        runtime: &PluginRuntime,
        sandbox: &GoogleSandbox,
        http: HttpLimits,
    ) -> anyhow::Result<(Plugin, PluginConfig)> {
        google_plugin(runtime, sandbox, http).await
    }

    /// An access token (about an hour) and a refresh token of the sandbox's default client.
    fn issue_credentials(sandbox: &GoogleSandbox, _config: &GoogleConfig, scopes: &[&str]) -> Credentials {
        let tokens = sandbox.handle().issue_tokens(scopes);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let clock = now.saturating_add(sandbox.handle().clock_offset().as_secs());
        Credentials {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            expires_at: Some(clock.saturating_add(tokens.expires_in)),
            renewable_until: None,
            scopes: tokens.scope.split(' ').filter(|s| !s.is_empty()).map(String::from).collect(),
        }
    }

    fn authorize_page(_sandbox: &GoogleSandbox) -> Option<String> {
        None
    }

    /// The customers the user holds directly, then the clients reached through each manager
    /// (`<client>@<manager>`, as the plugin lists them).
    fn ad_account_ids(handle: &GoogleHandle) -> Vec<String> {
        let managers = handle.manager_ids();
        let mut ids: Vec<String> =
            handle.accessible_customer_ids().into_iter().filter(|id| !managers.contains(id)).collect();
        for manager in &managers {
            ids.extend(handle.client_ids(manager).into_iter().map(|client| format!("{client}@{manager}")));
        }
        ids
    }

    fn member_count(handle: &GoogleHandle, account: &str, audience: &str) -> usize {
        let customer = account.split('@').next().unwrap_or(account);
        handle.find_user_list(customer, audience).map_or(0, |list| handle.member_count(&list))
    }

    async fn shutdown(sandbox: GoogleSandbox) {
        sandbox.shutdown().await;
    }
}

/// How to set a world up. `WorldOptions` alone is `WorldOptions<Pinterest>`.
#[derive(Debug, Clone)]
pub struct WorldOptions<P: Partner = Pinterest> {
    /// The sandbox's limits and faults.
    pub sandbox: P::Config,
    /// The engine's settings.
    pub engine: EngineConfig,
    /// Overrides of the plugin's limits.
    pub limits: LimitOverrides,
    /// The HTTP limits of the plugin's requests (default: the runtime's).
    pub http: HttpLimits,
    /// A PostgreSQL database URL to use as the store instead of a SQLite file in the world's
    /// directory (lanes are then leased, as on a host with a PostgreSQL store).
    pub postgres_url: Option<String>,
}

impl<P: Partner> Default for WorldOptions<P> {
    fn default() -> Self {
        Self {
            sandbox: P::Config::default(),
            engine: EngineConfig::default(),
            limits: LimitOverrides::default(),
            http: HttpLimits::default(),
            postgres_url: None,
        }
    }
}

fn plugin_runtime() -> anyhow::Result<PluginRuntime> {
    Ok(PluginRuntime::new(RuntimeConfig { max_instances: 32, ..RuntimeConfig::default() })?)
}

/// Open the store (the PostgreSQL database, else a SQLite file in `dir`) and start an engine
/// delivering to `destinations`.
async fn start_engine(
    dir: &Path,
    mut engine_config: EngineConfig,
    postgres_url: Option<&str>,
    destinations: Destinations,
) -> anyhow::Result<(Engine, Arc<dyn Store>)> {
    let store: Arc<dyn Store> = match postgres_url {
        Some(url) => {
            engine_config.lease.enabled = true;
            Arc::new(PostgresStore::connect(url, CredentialKey::generate()).await?)
        }
        None => Arc::new(SqliteStore::open(dir.join("host.db"), CredentialKey::generate())?),
    };
    let engine = Engine::new(store.clone(), destinations, engine_config);
    engine.start().await?;
    Ok((engine, store))
}

/// Store a connection to `P` in `workspace` holding `credentials`; its id.
async fn connect_as<P: Partner>(
    store: &dyn Store,
    workspace: &str,
    credentials: &Credentials,
) -> anyhow::Result<String> {
    let connection = store
        .create_connection(NewConnection {
            workspace_id: workspace.to_string(),
            destination: P::KIND.name().into(),
            name: format!("{} sandbox", P::KIND.display_name()),
            credentials: encode_credentials(credentials),
        })
        .await?;
    Ok(connection.id)
}

/// The request for an add-sync into a new audience called `audience` (created if missing) in
/// `account`, on `connection`, matching on `P::MATCH_FIELDS`.
pub fn add_sync_request<P: Partner>(workspace: &str, connection: &str, account: &str, audience: &str) -> SyncRequest {
    SyncRequest {
        workspace_id: workspace.to_string(),
        connection_id: connection.to_string(),
        account_id: account.to_string(),
        audience_name: audience.into(),
        audience_id: None,
        description: Some("created by audience-host".into()),
        create_if_missing: true,
        action: SyncAction::Add,
        match_fields: P::MATCH_FIELDS.iter().map(|f| (*f).to_string()).collect(),
        reentry: Default::default(),
    }
}

/// The first ad account the plugin lists for `credentials`.
async fn first_account(plugin: &Plugin, config: &PluginConfig, credentials: &Credentials) -> anyhow::Result<Account> {
    let accounts = plugin.list_accounts(config, credentials, None).await.context("listing ad accounts failed")?;
    let Some(account) = accounts.accounts.into_iter().next() else { bail!("the sandbox offered no ad account") };
    Ok(account)
}

/// A partner's sandbox on loopback, its built-in plugin pointed at it, a store and a started
/// engine delivering through that plugin: the one way tests, the demo and the benchmarks build
/// a host against a partner stand-in. `World` alone is `World<Pinterest>`.
pub struct World<P: Partner = Pinterest> {
    /// The sandbox.
    pub sandbox: P::Sandbox,
    /// The engine (started).
    pub engine: Engine,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The plugin, as loaded.
    pub plugin: Plugin,
    /// The settings every call of the plugin gets (pointing at the sandbox).
    pub plugin_config: PluginConfig,
    /// The sandbox's settings, as started.
    sandbox_config: P::Config,
}

impl World<Pinterest> {
    /// Start a Pinterest sandbox, load the Pinterest plugin against it, open a store in `dir`
    /// (or the PostgreSQL database of the options) and start the engine.
    pub async fn start(dir: &Path, options: WorldOptions) -> anyhow::Result<World> {
        Self::launch(dir, options).await
    }
}

impl<P: Partner> World<P> {
    /// Start `P`'s sandbox, load its plugin against it, open a store in `dir` (or the
    /// PostgreSQL database of the options) and start the engine.
    pub async fn launch(dir: &Path, options: WorldOptions<P>) -> anyhow::Result<World<P>> {
        let sandbox_config = options.sandbox.clone();
        let sandbox = P::start_sandbox(options.sandbox).await?;
        let runtime = plugin_runtime()?;
        let (plugin, plugin_config) = P::load_plugin(&runtime, &sandbox, options.http).await?;
        let mut destinations = Destinations::new();
        destinations.insert(Destination::new(
            plugin.clone(),
            plugin_config.clone(),
            &options.limits,
            &options.engine.caps,
        ));
        let (engine, store) = start_engine(dir, options.engine, options.postgres_url.as_deref(), destinations).await?;
        Ok(World { sandbox, engine, store, plugin, plugin_config, sandbox_config })
    }

    /// The sandbox's handle.
    pub fn handle(&self) -> P::Handle {
        P::handle(&self.sandbox)
    }

    /// Credentials the sandbox issued with `P::SCOPES` (no OAuth round trip, no connection).
    pub fn issue_credentials(&self) -> Credentials {
        P::issue_credentials(&self.sandbox, &self.sandbox_config, P::SCOPES)
    }

    /// A connection in `workspace` holding fresh credentials the sandbox issued (no OAuth
    /// round trip): the connection's id and its credentials.
    pub async fn connect_with_token(&self, workspace: &str) -> anyhow::Result<(String, Credentials)> {
        self.connect_with_scopes(workspace, P::SCOPES).await
    }

    /// As [`connect_with_token`](Self::connect_with_token), with exactly `scopes` granted.
    pub async fn connect_with_scopes(&self, workspace: &str, scopes: &[&str]) -> anyhow::Result<(String, Credentials)> {
        let credentials = P::issue_credentials(&self.sandbox, &self.sandbox_config, scopes);
        Ok((self.connect(workspace, &credentials).await?, credentials))
    }

    /// A connection in `workspace` through the OAuth code flow, as a person would make it.
    pub async fn connect_with_oauth(&self, workspace: &str) -> anyhow::Result<(String, Credentials)> {
        let page = P::authorize_page(&self.sandbox);
        let credentials = oauth_code_flow(&self.plugin, &self.plugin_config, page.as_deref()).await?;
        Ok((self.connect(workspace, &credentials).await?, credentials))
    }

    /// A connection in `workspace` holding `credentials`; its id.
    pub async fn connect(&self, workspace: &str, credentials: &Credentials) -> anyhow::Result<String> {
        connect_as::<P>(self.store.as_ref(), workspace, credentials).await
    }

    /// An add-sync into a new audience called `audience`, on `connection` and the sandbox's
    /// first ad account, matching on `P::MATCH_FIELDS` (Pinterest: email; Meta: email, phone,
    /// first and last name, country).
    pub async fn sync(&self, workspace: &str, connection: &str, audience: &str) -> anyhow::Result<SyncRecord> {
        let account = P::ad_account_ids(&self.handle()).first().cloned().context("the sandbox has no ad account")?;
        Ok(self.engine.create_sync(add_sync_request::<P>(workspace, connection, &account, audience)).await?)
    }

    /// Stop the engine and the sandbox.
    pub async fn stop(self) {
        self.engine.shutdown().await;
        P::shutdown(self.sandbox).await;
    }
}

/// One partner of a [`SideBySide`]: its sandbox, and its plugin pointed at it.
pub struct Side<P: Partner> {
    /// The sandbox.
    pub sandbox: P::Sandbox,
    /// The plugin, as loaded.
    pub plugin: Plugin,
    /// The settings every call of the plugin gets (pointing at the sandbox).
    pub plugin_config: PluginConfig,
    sandbox_config: P::Config,
}

impl<P: Partner> Side<P> {
    /// Start `P`'s sandbox with `config` and load its plugin on `runtime`.
    pub async fn start(runtime: &PluginRuntime, config: P::Config, http: HttpLimits) -> anyhow::Result<Self> {
        let sandbox = P::start_sandbox(config.clone()).await?;
        let (plugin, plugin_config) = P::load_plugin(runtime, &sandbox, http).await?;
        Ok(Side { sandbox, plugin, plugin_config, sandbox_config: config })
    }

    /// The sandbox's handle.
    pub fn handle(&self) -> P::Handle {
        P::handle(&self.sandbox)
    }

    /// The sandbox's base URL.
    pub fn base_url(&self) -> String {
        P::base_url(&self.sandbox)
    }

    /// Credentials the sandbox issued with `P::SCOPES` (no OAuth round trip).
    pub fn issue_credentials(&self) -> Credentials {
        P::issue_credentials(&self.sandbox, &self.sandbox_config, P::SCOPES)
    }

    /// Credentials through the partner's OAuth code flow, as a person would get them.
    pub async fn oauth(&self) -> anyhow::Result<Credentials> {
        let page = P::authorize_page(&self.sandbox);
        oauth_code_flow(&self.plugin, &self.plugin_config, page.as_deref()).await
    }

    /// The first ad account the plugin lists for `credentials`.
    pub async fn first_account(&self, credentials: &Credentials) -> anyhow::Result<Account> {
        first_account(&self.plugin, &self.plugin_config, credentials).await
    }
}

/// How to set up a [`SideBySide`].
#[derive(Debug, Clone, Default)]
pub struct SideBySideOptions {
    /// The Pinterest sandbox's limits and faults.
    pub pinterest: SandboxConfig,
    /// The Meta sandbox's limits and faults.
    pub meta: MetaConfig,
    /// The Google sandbox's limits, processing delay and faults.
    pub google: GoogleConfig,
    /// The engine's settings.
    pub engine: EngineConfig,
    /// Overrides of the Pinterest plugin's limits.
    pub pinterest_limits: LimitOverrides,
    /// Overrides of the Meta plugin's limits.
    pub meta_limits: LimitOverrides,
    /// Overrides of the Google plugin's limits.
    pub google_limits: LimitOverrides,
    /// The HTTP limits of every plugin's requests.
    pub http: HttpLimits,
    /// A PostgreSQL database URL to use as the store instead of a SQLite file.
    pub postgres_url: Option<String>,
}

/// Pinterest, Meta and Google side by side: three sandboxes, three plugins, one store and one
/// engine delivering to all of them at once (a synchronous partner never waits behind
/// Google's asynchronous requests, nor the other way round).
pub struct SideBySide {
    /// The engine (started), with the three destinations.
    pub engine: Engine,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The Pinterest side.
    pub pinterest: Side<Pinterest>,
    /// The Meta side.
    pub meta: Side<Meta>,
    /// The Google side.
    pub google: Side<Google>,
}

impl SideBySide {
    /// Start the three sandboxes, load each plugin against its sandbox, open a store in `dir`
    /// (or the PostgreSQL database of the options) and start the engine.
    pub async fn start(dir: &Path, options: SideBySideOptions) -> anyhow::Result<SideBySide> {
        let runtime = plugin_runtime()?;
        let pinterest = Side::<Pinterest>::start(&runtime, options.pinterest, options.http.clone()).await?;
        let meta = Side::<Meta>::start(&runtime, options.meta, options.http.clone()).await?;
        let google = Side::<Google>::start(&runtime, options.google, options.http).await?;
        let mut destinations = Destinations::new();
        for (plugin, config, limits) in [
            (&pinterest.plugin, &pinterest.plugin_config, &options.pinterest_limits),
            (&meta.plugin, &meta.plugin_config, &options.meta_limits),
            (&google.plugin, &google.plugin_config, &options.google_limits),
        ] {
            destinations.insert(Destination::new(plugin.clone(), config.clone(), limits, &options.engine.caps));
        }
        let (engine, store) = start_engine(dir, options.engine, options.postgres_url.as_deref(), destinations).await?;
        Ok(SideBySide { engine, store, pinterest, meta, google })
    }

    /// A connection to `P` (one of the three sides) in `workspace` holding `credentials`.
    pub async fn connect<P: Partner>(&self, workspace: &str, credentials: &Credentials) -> anyhow::Result<String> {
        connect_as::<P>(self.store.as_ref(), workspace, credentials).await
    }

    /// Stop the engine and the three sandboxes.
    pub async fn stop(self) {
        self.engine.shutdown().await;
        Pinterest::shutdown(self.pinterest.sandbox).await;
        Meta::shutdown(self.meta.sandbox).await;
        Google::shutdown(self.google.sandbox).await;
    }
}

/// The built-in Pinterest plugin loaded to talk to `sandbox` (plain http to its port only),
/// and the settings its calls need.
pub async fn pinterest_plugin(
    runtime: &PluginRuntime,
    sandbox: &PinterestSandbox,
    http: HttpLimits,
) -> anyhow::Result<(Plugin, PluginConfig)> {
    let config = PluginConfig {
        base_url: Some(sandbox.base_url()),
        client_id: Some(SandboxHandle::DEFAULT_CLIENT_ID.into()),
        client_secret: Some(SandboxHandle::DEFAULT_CLIENT_SECRET.into()),
        settings: vec![],
    };
    load_builtin(runtime, audience_plugin_artifacts::PINTEREST, config, http)
        .await
        .context("cannot load the Pinterest plugin")
}

/// The built-in Meta plugin loaded to talk to `sandbox` (plain http to its port only), and
/// the settings its calls need: the sandbox's base URL standing in for both of Meta's hosts
/// (Graph and the login dialog) and the sandbox's app. The API version is the plugin's
/// default, which the sandbox serves.
pub async fn meta_plugin(
    runtime: &PluginRuntime,
    sandbox: &MetaSandbox,
    http: HttpLimits,
) -> anyhow::Result<(Plugin, PluginConfig)> {
    let config = PluginConfig {
        base_url: Some(sandbox.base_url()),
        client_id: Some(MetaHandle::DEFAULT_APP_ID.into()),
        client_secret: Some(MetaHandle::DEFAULT_APP_SECRET.into()),
        settings: vec![],
    };
    load_builtin(runtime, audience_plugin_artifacts::META, config, http).await.context("cannot load the Meta plugin")
}

/// The built-in Google plugin pointed at `sandbox` (every Google host under its base URL), with
/// the sandbox's default OAuth client.
pub async fn google_plugin(
    runtime: &PluginRuntime,
    sandbox: &GoogleSandbox,
    http: HttpLimits,
) -> anyhow::Result<(Plugin, PluginConfig)> {
    let config = PluginConfig {
        base_url: Some(sandbox.base_url()),
        client_id: Some(GoogleHandle::DEFAULT_CLIENT_ID.into()),
        client_secret: Some(GoogleHandle::DEFAULT_CLIENT_SECRET.into()),
        settings: vec![("status-check-after-ms".into(), GOOGLE_STATUS_CHECK_AFTER_MS.into())],
    };
    load_builtin(runtime, audience_plugin_artifacts::GOOGLE, config, http)
        .await
        .context("cannot load the Google plugin")
}

/// Load a built-in component allowed plain http to the host and port of `config.base_url`.
async fn load_builtin(
    runtime: &PluginRuntime,
    component: &[u8],
    config: PluginConfig,
    http: HttpLimits,
) -> anyhow::Result<(Plugin, PluginConfig)> {
    let base = config.base_url.clone().unwrap_or_default();
    let host_port = base.trim_start_matches("http://").trim_end_matches('/').to_string();
    let options = PluginOptions {
        http: Some(HttpPolicy { plain_http_hosts: vec![host_port], limits: http, ..HttpPolicy::default() }),
        config: config.clone(),
        ..PluginOptions::default()
    };
    let plugin = runtime.load(component, options).await?;
    Ok((plugin, config))
}

/// A [`World`] with one workspace and one connection made through OAuth, and the ad account
/// the demo and the benchmarks deliver to. `Lab` alone is `Lab<Pinterest>`.
pub struct Lab<P: Partner = Pinterest> {
    /// The world.
    pub world: World<P>,
    /// The workspace everything lives in.
    pub workspace: String,
    /// The connection's id.
    pub connection: String,
    /// Its credentials.
    pub credentials: Credentials,
    /// The chosen ad account.
    pub account: Account,
}

impl<P: Partner> std::ops::Deref for Lab<P> {
    type Target = World<P>;

    fn deref(&self) -> &World<P> {
        &self.world
    }
}

impl Lab<Pinterest> {
    /// A Pinterest world with a workspace, a connection through OAuth and the first ad account.
    pub async fn start(dir: &Path, options: WorldOptions) -> anyhow::Result<Lab> {
        Self::launch(dir, options).await
    }
}

impl<P: Partner> Lab<P> {
    /// `P`'s world with a workspace, a connection through OAuth and the first ad account.
    pub async fn launch(dir: &Path, options: WorldOptions<P>) -> anyhow::Result<Lab<P>> {
        let world = World::launch(dir, options).await?;
        let workspace = world.store.create_workspace("lab").await?.id;
        let (connection, credentials) = world.connect_with_oauth(&workspace).await?;
        let account = first_account(&world.plugin, &world.plugin_config, &credentials).await?;
        Ok(Lab { world, workspace, connection, credentials, account })
    }

    /// Create an add-sync into a new audience called `audience` in the chosen ad account,
    /// matching on `P::MATCH_FIELDS` (see [`World::sync`]).
    pub async fn sync(&self, audience: &str) -> anyhow::Result<SyncRecord> {
        let request = add_sync_request::<P>(&self.workspace, &self.connection, &self.account.id, audience);
        Ok(self.world.engine.create_sync(request).await?)
    }

    /// The sandbox's members of the audience called `audience` (0 when it does not exist).
    pub fn members(&self, audience: &str) -> usize {
        P::member_count(&self.handle(), &self.account.id, audience)
    }

    /// Stop the engine and the sandbox.
    pub async fn stop(self) {
        self.world.stop().await;
    }
}

/// The OAuth code flow against the Pinterest sandbox, as a browser would do it: open the
/// authorize URL, follow the redirect to the callback with `code` and `state`, exchange the
/// code.
pub async fn connect_with_oauth(
    plugin: &Plugin,
    config: &PluginConfig,
    sandbox: &PinterestSandbox,
) -> anyhow::Result<Credentials> {
    oauth_code_flow(plugin, config, Some(&sandbox.authorize_url())).await
}

/// The OAuth code flow as a browser would do it: open the plugin's authorize URL (on `page`
/// instead of the manifest's page when given), follow the redirect to the callback with
/// `code` and `state`, and let the plugin exchange the code.
pub async fn oauth_code_flow(
    plugin: &Plugin,
    config: &PluginConfig,
    page: Option<&str>,
) -> anyhow::Result<Credentials> {
    let Some(app) = plugin.manifest().oauth.clone() else { bail!("the plugin declares no OAuth app") };
    let redirect_uri = "http://127.0.0.1/lab/oauth/callback";
    let state = hex::encode(rand::random::<[u8; 16]>());
    let client_id = config.client_id.clone().unwrap_or_default();
    let url = audience_engine::oauth::authorize_url(&app, page, &client_id, redirect_uri, &state);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()?;
    let response = client.get(&url).send().await.context("the sandbox's authorize page did not answer")?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .with_context(|| format!("the authorize page did not redirect back (HTTP {})", response.status()))?;
    let callback = reqwest::Url::parse(location)?;
    let param = |name: &str| callback.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    anyhow::ensure!(param("state").as_deref() == Some(state.as_str()), "the OAuth state came back changed");
    let code = param("code").context("the redirect carried no code")?;
    let grant = Grant::AuthorizationCode(AuthCode { code, redirect_uri: redirect_uri.into() });
    plugin.authorize(config, grant).await.context("exchanging the authorization code failed")
}

/// A database of its own on a PostgreSQL server, for a test or a benchmark run: created by
/// [`ScratchDatabase::create`], dropped (with any connections still open) when this value is.
#[derive(Debug)]
pub struct ScratchDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl ScratchDatabase {
    /// Create `audience_<label>_<random>` on the server that `server_url` (any database on
    /// it, e.g. `postgres://postgres@127.0.0.1:5432/postgres`) reaches.
    pub async fn create(server_url: &str, label: &str) -> anyhow::Result<Self> {
        let (client, connection) = tokio_postgres::connect(server_url, tokio_postgres::NoTls)
            .await
            .context("cannot reach the PostgreSQL server: is it running, and is the URL right?")?;
        tokio::spawn(connection);
        let name = format!("audience_{label}_{:016x}", rand::random::<u64>());
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.context("cannot create a scratch database")?;
        let (base, query) = match server_url.split_once('?') {
            Some((base, query)) => (base, Some(query)),
            None => (server_url, None),
        };
        let scheme_end = base.find("://").map_or(0, |i| i + 3);
        let root = match base[scheme_end..].find('/') {
            Some(slash) => &base[..scheme_end + slash],
            None => base,
        };
        let url = match query {
            Some(query) => format!("{root}/{name}?{query}"),
            None => format!("{root}/{name}"),
        };
        Ok(Self { admin_url: server_url.to_string(), name, url })
    }

    /// The scratch database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        // Drop may run inside a runtime that cannot block: use a thread with its own.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls).await.ok()?;
                tokio::spawn(connection);
                client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            tracing::warn!(database = %self.name, "could not drop a scratch database; drop it by hand");
        }
    }
}
