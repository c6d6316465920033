//! A complete host against a local partner sandbox, in one process: what the tests, the demo
//! and the benchmarks run on. Everything is real — the sandbox is an HTTP server on loopback, the
//! plugin is the built-in Pinterest component, the store is a SQLite file (or a scratch
//! PostgreSQL database) — only the partner is a stand-in.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use audience_sandbox::{PinterestSandbox, SandboxConfig, SandboxHandle};
use audience_store::{CredentialKey, NewConnection, PostgresStore, SqliteStore, Store, SyncAction, SyncRecord};

use audience_engine::{
    Destination, Destinations, Engine, EngineConfig, LimitOverrides, SyncRequest, encode_credentials,
};
use audience_runtime::types::{Account, AuthCode, Credentials, Grant, PluginConfig};
use audience_runtime::{HttpLimits, HttpPolicy, Plugin, PluginOptions, PluginRuntime, RuntimeConfig};

/// How to set a world up.
#[derive(Debug, Clone, Default)]
pub struct WorldOptions {
    /// The sandbox's limits and faults.
    pub sandbox: SandboxConfig,
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

/// A Pinterest sandbox on loopback, the built-in Pinterest plugin pointed at it, a store and
/// a started engine delivering through that plugin: the one way tests, the demo and the
/// benchmarks build a host against a partner stand-in.
pub struct World {
    /// The sandbox.
    pub sandbox: PinterestSandbox,
    /// The engine (started).
    pub engine: Engine,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The plugin, as loaded.
    pub plugin: Plugin,
    /// The settings every call of the plugin gets (pointing at the sandbox).
    pub plugin_config: PluginConfig,
}

impl World {
    /// Start a sandbox, load the Pinterest plugin against it, open a store in `dir` (or the
    /// PostgreSQL database of the options) and start the engine.
    pub async fn start(dir: &Path, options: WorldOptions) -> anyhow::Result<World> {
        let sandbox = PinterestSandbox::start(options.sandbox).await.context("cannot start the Pinterest sandbox")?;
        let runtime = PluginRuntime::new(RuntimeConfig { max_instances: 32, ..RuntimeConfig::default() })?;
        let (plugin, plugin_config) = pinterest_plugin(&runtime, &sandbox, options.http).await?;
        let mut engine_config = options.engine;
        let store: Arc<dyn Store> = match &options.postgres_url {
            Some(url) => {
                engine_config.lease.enabled = true;
                Arc::new(PostgresStore::connect(url, CredentialKey::generate()).await?)
            }
            None => Arc::new(SqliteStore::open(dir.join("host.db"), CredentialKey::generate())?),
        };
        let mut destinations = Destinations::new();
        destinations.insert(Destination::new(plugin.clone(), plugin_config.clone(), &options.limits));
        let engine = Engine::new(store.clone(), destinations, engine_config);
        engine.start().await?;
        Ok(World { sandbox, engine, store, plugin, plugin_config })
    }

    /// The sandbox's handle.
    pub fn handle(&self) -> SandboxHandle {
        self.sandbox.handle()
    }

    /// A connection in `workspace` holding a fresh token pair the sandbox issued (no OAuth
    /// round trip): the connection's id and its credentials.
    pub async fn connect_with_token(&self, workspace: &str) -> anyhow::Result<(String, Credentials)> {
        let pair = self.handle().issue_tokens(&["ads:read", "ads:write"]);
        let credentials = Credentials {
            access_token: pair.access_token,
            refresh_token: Some(pair.refresh_token),
            expires_at: None,
            scopes: vec!["ads:read".into(), "ads:write".into()],
        };
        Ok((self.connect(workspace, &credentials).await?, credentials))
    }

    /// A connection in `workspace` through the OAuth code flow, as a person would make it.
    pub async fn connect_with_oauth(&self, workspace: &str) -> anyhow::Result<(String, Credentials)> {
        let credentials = connect_with_oauth(&self.plugin, &self.plugin_config, &self.sandbox).await?;
        Ok((self.connect(workspace, &credentials).await?, credentials))
    }

    async fn connect(&self, workspace: &str, credentials: &Credentials) -> anyhow::Result<String> {
        let connection = self
            .store
            .create_connection(NewConnection {
                workspace_id: workspace.to_string(),
                destination: "pinterest".into(),
                name: "Pinterest sandbox".into(),
                credentials: encode_credentials(credentials),
            })
            .await?;
        Ok(connection.id)
    }

    /// An add-sync by email into a new audience called `audience`, on `connection` and the
    /// sandbox's first ad account.
    pub async fn sync(&self, workspace: &str, connection: &str, audience: &str) -> anyhow::Result<SyncRecord> {
        let account = self.handle().ad_account_ids().first().cloned().context("the sandbox has no ad account")?;
        Ok(self
            .engine
            .create_sync(SyncRequest {
                workspace_id: workspace.to_string(),
                connection_id: connection.to_string(),
                account_id: account,
                audience_name: audience.into(),
                audience_id: None,
                description: Some("created by audience-host".into()),
                create_if_missing: true,
                action: SyncAction::Add,
                match_fields: vec!["email".into()],
            })
            .await?)
    }

    /// Stop the engine and the sandbox.
    pub async fn stop(self) {
        self.engine.shutdown().await;
        self.sandbox.shutdown().await;
    }
}

/// The built-in Pinterest plugin loaded to talk to `sandbox` (plain http to its port only),
/// and the settings its calls need.
pub async fn pinterest_plugin(
    runtime: &PluginRuntime,
    sandbox: &PinterestSandbox,
    http: HttpLimits,
) -> anyhow::Result<(Plugin, PluginConfig)> {
    let host_port = sandbox.base_url().trim_start_matches("http://").to_string();
    let options = PluginOptions {
        http: Some(HttpPolicy { plain_http_hosts: vec![host_port], limits: http, ..HttpPolicy::default() }),
        ..PluginOptions::default()
    };
    let plugin = runtime
        .load(audience_plugin_artifacts::PINTEREST, options)
        .await
        .context("cannot load the Pinterest plugin")?;
    let config = PluginConfig {
        base_url: Some(sandbox.base_url()),
        client_id: Some(SandboxHandle::DEFAULT_CLIENT_ID.into()),
        client_secret: Some(SandboxHandle::DEFAULT_CLIENT_SECRET.into()),
        settings: vec![],
    };
    Ok((plugin, config))
}

/// A [`World`] with one workspace and one connection made through OAuth, and the ad account
/// the demo and the benchmarks deliver to.
pub struct Lab {
    /// The world.
    pub world: World,
    /// The workspace everything lives in.
    pub workspace: String,
    /// The connection's id.
    pub connection: String,
    /// Its credentials.
    pub credentials: Credentials,
    /// The chosen ad account.
    pub account: Account,
}

impl std::ops::Deref for Lab {
    type Target = World;

    fn deref(&self) -> &World {
        &self.world
    }
}

impl Lab {
    /// A world with a workspace, a connection through OAuth and the first ad account.
    pub async fn start(dir: &Path, options: WorldOptions) -> anyhow::Result<Lab> {
        let world = World::start(dir, options).await?;
        let workspace = world.store.create_workspace("lab").await?.id;
        let (connection, credentials) = world.connect_with_oauth(&workspace).await?;
        let accounts = world
            .plugin
            .list_accounts(&world.plugin_config, &credentials, None)
            .await
            .context("listing ad accounts failed")?;
        let Some(account) = accounts.accounts.into_iter().next() else { bail!("the sandbox offered no ad account") };
        Ok(Lab { world, workspace, connection, credentials, account })
    }

    /// Create an add-sync by email into a new audience called `audience`.
    pub async fn sync(&self, audience: &str) -> anyhow::Result<SyncRecord> {
        self.world.sync(&self.workspace, &self.connection, audience).await
    }

    /// The sandbox's members of the audience called `audience` (0 when it does not exist).
    pub fn members(&self, audience: &str) -> usize {
        let handle = self.handle();
        handle.find_customer_list(&self.account.id, audience).map_or(0, |list| handle.members(&list).len())
    }

    /// Stop the engine and the sandbox.
    pub async fn stop(self) {
        self.world.stop().await;
    }
}

/// The OAuth code flow against the sandbox, as a browser would do it: open the authorize
/// URL, follow the redirect to the callback with `code` and `state`, exchange the code.
pub async fn connect_with_oauth(
    plugin: &Plugin,
    config: &PluginConfig,
    sandbox: &PinterestSandbox,
) -> anyhow::Result<Credentials> {
    let Some(app) = plugin.manifest().oauth.clone() else { bail!("the plugin declares no OAuth app") };
    let redirect_uri = "http://127.0.0.1/lab/oauth/callback";
    let state = hex::encode(rand::random::<[u8; 16]>());
    let client_id = config.client_id.clone().unwrap_or_default();
    let url =
        audience_engine::oauth::authorize_url(&app, Some(&sandbox.authorize_url()), &client_id, redirect_uri, &state);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()?;
    let response = client.get(&url).send().await.context("the sandbox's authorize page did not answer")?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .context("the authorize page did not redirect back")?;
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
