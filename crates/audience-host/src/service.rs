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
/// The `component` value that selects the built-in Meta plugin.
pub const BUILTIN_META: &str = "builtin:meta";
/// The `component` value that selects the built-in Google Customer Match plugin.
pub const BUILTIN_GOOGLE: &str = "builtin:google";

/// A service's parts, ready to serve.
pub struct Service {
    /// The engine (and through it the store and destinations).
    pub engine: Engine,
    /// The plugin runtime.
    pub runtime: PluginRuntime,
    /// The configuration it was built from.
    pub config: HostConfig,
    /// The configured plugins that could not be loaded, and why.
    pub unavailable: Vec<UnavailablePlugin>,
}

/// A configured plugin the service runs without.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnavailablePlugin {
    /// Its section name, `[plugins.NAME]`.
    pub name: String,
    /// Why it could not be loaded.
    pub reason: String,
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
    let mut unavailable = Vec::new();
    for (name, settings) in &config.plugins {
        // One broken plugin (a bad file, a `describe` that traps) must not keep the others
        // from serving: it is reported and left out; its connections wait, their users queued.
        match load_plugin(&runtime, name, settings).await {
            Ok((plugin, plugin_config)) => {
                destinations.insert(Destination::new(plugin, plugin_config, &settings.limits, &config.engine.caps))
            }
            Err(err) => {
                tracing::error!(plugin = %name, error = %format!("{err:#}"), "this plugin is left out: fix it and restart; its syncs keep their users queued meanwhile");
                unavailable.push(UnavailablePlugin { name: name.clone(), reason: format!("{err:#}") });
            }
        }
    }
    if destinations.names().is_empty() && unavailable.is_empty() {
        tracing::warn!("no plugins are configured: add a [plugins.NAME] section to deliver anywhere");
    }
    let engine = Engine::new(store, destinations, config.engine.clone());
    Ok(Service { engine, runtime, config, unavailable })
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
        allowed_private_addresses: settings.allowed_private_addresses.clone(),
        limits: settings.http.clone(),
    };
    // Unset allowed_hosts and no plain hosts: the plugin's own default hosts.
    let http = (settings.allowed_hosts.is_some() || !settings.plain_http_hosts.is_empty()).then_some(http);
    anyhow::ensure!(
        http.is_some() || settings.allowed_private_addresses.is_empty(),
        "[plugins.{name}] allowed_private_addresses is set without allowed_hosts or plain_http_hosts: it only \
         widens where those hosts may resolve to, so list the hosts too (allowed_hosts = [...])"
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
    check_base_url(name, settings)?;
    let options = PluginOptions {
        http,
        config: config.clone(),
        max_instances: settings.max_instances,
        // `[plugins.NAME]`'s memory_limit / call_timeout / max_call_duration over `[runtime.limits]`.
        limits: settings.sandbox_limits(name, runtime.default_limits())?,
        ..PluginOptions::default()
    };
    let plugin = if settings.component == BUILTIN_PINTEREST {
        runtime.load(audience_plugin_artifacts::PINTEREST, options).await
    } else if settings.component == BUILTIN_META {
        runtime.load(audience_plugin_artifacts::META, options).await
    } else if settings.component == BUILTIN_GOOGLE {
        runtime.load(audience_plugin_artifacts::GOOGLE, options).await
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
    Ok((plugin, config))
}

/// A `base_url` the plugin could not reach is refused at start-up, naming the key to set,
/// rather than failing every call later: plain http needs the host in `plain_http_hosts`, and
/// an explicit `allowed_hosts` must hold the base URL's host. (Without either, the plugin's
/// manifest, which a 0.2.0 plugin derives from `base_url`, is the allow-list.)
fn check_base_url(name: &str, settings: &PluginSettings) -> anyhow::Result<()> {
    let Some(base) = &settings.base_url else { return Ok(()) };
    let url = reqwest::Url::parse(base).with_context(|| {
        format!("[plugins.{name}] base_url = {base:?} is not a URL (e.g. \"http://127.0.0.1:9000\")")
    })?;
    let host = url.host_str().unwrap_or_default().to_string();
    let host_port = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    };
    match url.scheme() {
        "http" => anyhow::ensure!(
            settings.plain_http_hosts.iter().any(|h| h == &host_port || h == &host),
            "[plugins.{name}] base_url = {base:?} is plain http: add {host_port:?} to [plugins.{name}] \
             plain_http_hosts to allow it (only ever for a local sandbox)"
        ),
        "https" => {
            if let Some(allowed) = &settings.allowed_hosts {
                anyhow::ensure!(
                    allowed.iter().any(|h| h == &host || h == &host_port),
                    "[plugins.{name}] base_url = {base:?} is not in [plugins.{name}] allowed_hosts: add {host:?}, \
                     or leave allowed_hosts out to allow the hosts the plugin names for this base_url"
                );
            }
        }
        other => anyhow::bail!(
            "[plugins.{name}] base_url = {base:?} has scheme {other:?}; use https (or http for a local sandbox)"
        ),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SecretSource;

    #[test]
    fn a_base_url_the_plugin_could_not_reach_is_refused_naming_the_key_to_set() {
        let with = |base: &str, plain: &[&str], allowed: Option<&[&str]>| PluginSettings {
            component: BUILTIN_PINTEREST.into(),
            base_url: Some(base.into()),
            plain_http_hosts: plain.iter().map(|h| h.to_string()).collect(),
            allowed_hosts: allowed.map(|a| a.iter().map(|h| h.to_string()).collect()),
            ..PluginSettings::default()
        };
        // (what, settings, the key the refusal names; None = accepted)
        let cases = [
            ("plain http without plain_http_hosts", with("http://127.0.0.1:9000", &[], None), Some("plain_http_hosts")),
            ("plain http allowed", with("http://127.0.0.1:9000", &["127.0.0.1:9000"], None), None),
            ("https, no allow-list: the plugin's hosts", with("https://api-sandbox.example", &[], None), None),
            (
                "https outside the allow-list",
                with("https://api-sandbox.example", &[], Some(&["api.example"])),
                Some("allowed_hosts"),
            ),
            ("https on the allow-list", with("https://api-sandbox.example", &[], Some(&["api-sandbox.example"])), None),
            ("not a URL", with("127.0.0.1:9000", &[], None), Some("base_url")),
        ];
        for (what, settings, key) in cases {
            match (check_base_url("pinterest", &settings), key) {
                (Ok(()), None) => {}
                (Err(err), Some(key)) => {
                    let text = format!("{err:#}");
                    assert!(text.contains(key) && text.contains("[plugins.pinterest]"), "{what}: {text}");
                }
                (got, _) => panic!("{what}: {got:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_plugin_that_cannot_load_is_left_out_and_the_others_serve() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key");
        std::fs::write(&key_file, "ab".repeat(32)).unwrap();
        let mut config = HostConfig {
            store: dir.path().join("host.db").display().to_string(),
            credentials_key: SecretSource { env: None, file: Some(key_file) },
            ..HostConfig::default()
        };
        config.runtime.cache_dir = None;
        let broken = PluginSettings {
            component: dir.path().join("missing.wasm").display().to_string(),
            ..PluginSettings::default()
        };
        config.plugins.insert("broken".into(), broken);
        config.plugins.insert(
            "pinterest".into(),
            PluginSettings { component: BUILTIN_PINTEREST.into(), ..PluginSettings::default() },
        );

        let service = assemble(config).await.expect("the service assembles without the broken plugin");
        assert_eq!(service.engine.destinations().names(), ["pinterest"]);
        assert_eq!(service.unavailable.len(), 1);
        assert_eq!(service.unavailable[0].name, "broken");
        assert!(service.unavailable[0].reason.contains("missing.wasm"), "{:?}", service.unavailable[0]);
        service.engine.start().await.expect("the engine starts");
        service.engine.shutdown().await;
    }
}
