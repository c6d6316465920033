//! Assembling a running host from its configuration: the store, the plugin runtime, one
//! destination per configured plugin, and the engine. `serve` and the crash tests use this.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use audience_store::{CredentialKey, PostgresStore, SqliteStore, Store};

use crate::config::{HostConfig, PluginSettings, StoreLocation};
use audience_engine::{Destination, Destinations, Engine};
use audience_runtime::types::PluginConfig;
use audience_runtime::{HttpPolicy, Plugin, PluginOptions, PluginRuntime};

/// The component of the Pinterest plugin built into this binary.
pub const BUILTIN_PINTEREST: &str = "builtin:pinterest";

/// A service's parts, ready to serve.
pub struct Service {
    /// The engine (and through it the store and destinations).
    pub engine: Engine,
    /// The plugin runtime.
    pub runtime: PluginRuntime,
    /// The configuration it was built from.
    pub config: HostConfig,
}

/// Open the store, load every plugin and build the engine (not started).
pub async fn assemble(config: HostConfig) -> anyhow::Result<Service> {
    let key_hex = config.credentials_key.read("the credentials encryption key (64 hex characters)")?;
    let key = CredentialKey::from_hex(&key_hex).context("the credentials encryption key is not valid")?;
    let location = config.store_location()?;
    let mut config = config;
    let store: Arc<dyn Store> = match &location {
        StoreLocation::Sqlite(path) => Arc::new(
            SqliteStore::open(path, key).with_context(|| format!("cannot open the store at {}", path.display()))?,
        ),
        StoreLocation::Postgres(url) => {
            // Several hosts may share this database: lanes are leased.
            config.engine.lease.enabled = true;
            Arc::new(PostgresStore::connect(url, key).await.with_context(|| {
                format!("cannot open the store at {location}: is the server up and the database created?")
            })?)
        }
    };
    tracing::info!(store = %location, "store opened");
    let runtime = PluginRuntime::new(config.runtime.clone())?;
    let mut destinations = Destinations::new();
    for (name, settings) in &config.plugins {
        let (plugin, plugin_config) = load_plugin(&runtime, name, settings).await?;
        destinations.insert(Destination::new(plugin, plugin_config, &settings.limits));
    }
    if destinations.names().is_empty() {
        tracing::warn!("no plugins are configured: add a [plugins.NAME] section to deliver anywhere");
    }
    let engine = Engine::new(store, destinations, config.engine.clone());
    Ok(Service { engine, runtime, config })
}

/// Load one configured plugin and check its name matches its section.
pub async fn load_plugin(
    runtime: &PluginRuntime,
    name: &str,
    settings: &PluginSettings,
) -> anyhow::Result<(Plugin, PluginConfig)> {
    let http = HttpPolicy {
        allowed_hosts: settings.allowed_hosts.clone().unwrap_or_default(),
        plain_http_hosts: settings.plain_http_hosts.clone(),
        limits: settings.http.clone(),
    };
    // Unset allowed_hosts and no plain hosts: the plugin's own default hosts.
    let http = (settings.allowed_hosts.is_some() || !settings.plain_http_hosts.is_empty()).then_some(http);
    let options = PluginOptions { http, ..PluginOptions::default() };
    let plugin = if settings.component == BUILTIN_PINTEREST {
        runtime.load(audience_plugin_artifacts::PINTEREST, options).await
    } else {
        runtime.load_file(Path::new(&settings.component), options).await
    }
    .with_context(|| format!("cannot load the plugin [plugins.{name}] from {}", settings.component))?;
    anyhow::ensure!(
        plugin.name() == name,
        "the component of [plugins.{name}] calls itself {:?}; name the section [plugins.{}]",
        plugin.name(),
        plugin.name()
    );
    let client_secret = if settings.client_secret.is_unset() {
        None
    } else {
        Some(settings.client_secret.read(&format!("the client secret of [plugins.{name}]"))?)
    };
    let config = PluginConfig {
        base_url: settings.base_url.clone(),
        client_id: settings.client_id.clone(),
        client_secret,
        settings: settings.settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    Ok((plugin, config))
}
