//! The service's configuration: a TOML file, with any value overridable from the environment.
//!
//! Environment overrides use the prefix `AUDIENCE_HOST_` and `__` between levels, e.g.
//! `AUDIENCE_HOST_LISTEN=0.0.0.0:8080` or `AUDIENCE_HOST_ENGINE__RETRY__WINDOW=2h`. Secrets are
//! never written in the file itself: the file names the environment variable or file that holds
//! them, and a missing secret stops the start with a message saying which one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use audience_api::HttpSettings;
use audience_engine::{EngineConfig, LimitOverrides};
use audience_runtime::{HttpLimits, MAX_MEMORY_LIMIT, RuntimeConfig, SandboxLimits};

/// The whole configuration of `audience-host serve`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Address the HTTP API listens on. Default `127.0.0.1:8080`.
    pub listen: String,
    /// The HTTP edge: header-read and idle timeouts, the cap on open connections (`[http]`).
    pub http: HttpSettings,
    /// The URL people and partners reach this host at (OAuth redirects come back to
    /// `{public_url}/v1/oauth/callback`). Default `http://127.0.0.1:8080`.
    pub public_url: String,
    /// Where the store lives: a SQLite file path (`data/audience-host.db`, or
    /// `sqlite://data/audience-host.db`) for one host, or a PostgreSQL URL
    /// (`postgres://user@db.internal:5432/audience`) that several hosts share. Default
    /// `data/audience-host.db`.
    pub store: String,
    /// Where the key that encrypts stored credentials comes from (64 hex characters).
    pub credentials_key: SecretSource,
    /// Where the operator's API key comes from (manages workspaces).
    pub operator_key: SecretSource,
    /// The sync engine: batching, retries, rate limiting, intake limits.
    pub engine: EngineConfig,
    /// The plugin runtime: compile cache, instance pool, sandbox limits.
    pub runtime: RuntimeConfig,
    /// Destination plugins by name.
    pub plugins: BTreeMap<String, PluginSettings>,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            http: HttpSettings::default(),
            public_url: "http://127.0.0.1:8080".into(),
            store: "data/audience-host.db".into(),
            credentials_key: SecretSource::env("AUDIENCE_HOST_CREDENTIALS_KEY"),
            operator_key: SecretSource::env("AUDIENCE_HOST_OPERATOR_KEY"),
            engine: EngineConfig::default(),
            runtime: RuntimeConfig { cache_dir: Some(PathBuf::from("data/compile-cache")), ..RuntimeConfig::default() },
            plugins: BTreeMap::new(),
        }
    }
}

/// Where a secret is read from: an environment variable or a file (e.g. a mounted secret).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretSource {
    /// Name of the environment variable holding it.
    pub env: Option<String>,
    /// Path of a file holding it (surrounding whitespace is ignored).
    pub file: Option<PathBuf>,
}

impl SecretSource {
    /// A secret in the environment variable `name`.
    pub fn env(name: &str) -> Self {
        Self { env: Some(name.into()), file: None }
    }

    /// Whether no source is configured.
    pub fn is_unset(&self) -> bool {
        self.env.is_none() && self.file.is_none()
    }

    /// Read the secret. `what` names it in the error ("the credentials encryption key").
    pub fn read(&self, what: &str) -> Result<String, ConfigError> {
        if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path).map_err(|err| ConfigError::Secret {
                what: what.into(),
                how: format!("cannot read the file {}: {err}", path.display()),
            })?;
            return Ok(text.trim().to_string());
        }
        if let Some(name) = &self.env {
            return match std::env::var(name) {
                Ok(value) if !value.trim().is_empty() => Ok(value.trim().to_string()),
                _ => {
                    Err(ConfigError::Secret { what: what.into(), how: format!("set the environment variable {name}") })
                }
            };
        }
        Err(ConfigError::Secret { what: what.into(), how: "configure `env` or `file` for it".into() })
    }
}

/// The operator's settings for one destination plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginSettings {
    /// The component file, or `builtin:pinterest` / `builtin:meta` / `builtin:google` for the
    /// plugins built into this binary.
    pub component: String,
    /// The partner's API base URL (to point at a sandbox); unset = the partner's real API.
    pub base_url: Option<String>,
    /// Override of the OAuth authorize page (a sandbox's `/oauth/`); unset = the plugin's.
    pub authorize_url: Option<String>,
    /// The OAuth client (app) id.
    pub client_id: Option<String>,
    /// Where the OAuth client secret comes from.
    pub client_secret: SecretSource,
    /// Hosts reachable over https; unset = the plugin's own `default-hosts`. An empty list
    /// denies all network access.
    pub allowed_hosts: Option<Vec<String>>,
    /// Hosts reachable over plain http (local sandboxes only).
    pub plain_http_hosts: Vec<String>,
    /// Private or loopback addresses (IPs or CIDR blocks) the allowed host names may resolve
    /// to; by default a name resolving to one is refused. An address written in the
    /// allow-lists themselves needs no entry here.
    pub allowed_private_addresses: Vec<String>,
    /// Most plugin instances this plugin may hold at once; unset = an equal share of
    /// `runtime.max_instances` among the loaded plugins.
    pub max_instances: Option<u32>,
    /// This plugin's memory cap per instance, in bytes; unset = `runtime.limits.memory_limit`.
    pub memory_limit: Option<usize>,
    /// This plugin's own code time per call; unset = `runtime.limits.call_timeout`.
    #[serde(default, with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub call_timeout: Option<Duration>,
    /// This plugin's whole-call backstop, waits included; unset =
    /// `runtime.limits.max_call_duration`.
    #[serde(default, with = "humantime_serde::option", skip_serializing_if = "Option::is_none")]
    pub max_call_duration: Option<Duration>,
    /// Limits on each outbound request.
    pub http: HttpLimits,
    /// Overrides of the plugin's declared limits (batch size, requests/s, concurrency).
    pub limits: LimitOverrides,
    /// Plugin-specific settings, passed to every call.
    pub settings: BTreeMap<String, String>,
}

/// The smallest memory cap a plugin may be given: below it no component instantiates.
pub const MIN_MEMORY_LIMIT: usize = 1 << 20;

impl PluginSettings {
    /// The sandbox limits of the plugin `[plugins.NAME]`: `defaults` (`[runtime.limits]`) with
    /// this section's `memory_limit`, `call_timeout` and `max_call_duration`, or `None` when it
    /// sets none of them. A value the runtime could not honour is an error naming the key.
    pub fn sandbox_limits(&self, name: &str, defaults: &SandboxLimits) -> Result<Option<SandboxLimits>, ConfigError> {
        if self.memory_limit.is_none() && self.call_timeout.is_none() && self.max_call_duration.is_none() {
            return Ok(None);
        }
        let limits = SandboxLimits {
            memory_limit: self.memory_limit.unwrap_or(defaults.memory_limit),
            call_timeout: self.call_timeout.unwrap_or(defaults.call_timeout),
            max_call_duration: self.max_call_duration.unwrap_or(defaults.max_call_duration),
            ..defaults.clone()
        };
        let invalid = |why: String| Err(ConfigError::Invalid(format!("[plugins.{name}] {why}")));
        if !(MIN_MEMORY_LIMIT..=MAX_MEMORY_LIMIT).contains(&limits.memory_limit) {
            return invalid(format!(
                "memory_limit = {} is outside {MIN_MEMORY_LIMIT}..={MAX_MEMORY_LIMIT} bytes (1 MiB to 1 GiB)",
                limits.memory_limit
            ));
        }
        if limits.call_timeout.is_zero() {
            return invalid("call_timeout is 0: give the plugin's code some time, e.g. \"10s\"".into());
        }
        if limits.max_call_duration < limits.call_timeout {
            return invalid(format!(
                "max_call_duration ({}) is shorter than call_timeout ({}): a call could never use its own time; \
                 raise max_call_duration (it counts waits too) or lower call_timeout",
                humantime::format_duration(limits.max_call_duration),
                humantime::format_duration(limits.call_timeout)
            ));
        }
        Ok(Some(limits))
    }

    /// The settings of `component` with the partner's API at `base_url` (a sandbox, say):
    /// requests go there, and over plain http when the URL says `http://`. The OAuth client is
    /// `client_id` with its secret from `client_secret`.
    pub fn pointed_at(component: &str, base_url: &str, client_id: &str, client_secret: SecretSource) -> Self {
        let plain_http_hosts = match base_url.strip_prefix("http://") {
            Some(rest) => vec![rest.split('/').next().unwrap_or(rest).to_string()],
            None => Vec::new(),
        };
        Self {
            component: component.to_string(),
            base_url: Some(base_url.to_string()),
            client_id: Some(client_id.to_string()),
            client_secret,
            plain_http_hosts,
            ..Self::default()
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or an override does not parse.
    #[error("invalid configuration: {0}")]
    Invalid(String),
    /// A secret is missing.
    #[error("{what} is missing: {how}")]
    Secret {
        /// Which secret.
        what: String,
        /// How to provide it.
        how: String,
    },
}

impl HostConfig {
    /// Read `path` (when given), then apply `AUDIENCE_HOST_*` environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(HostConfig::default()));
        if let Some(path) = path {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!("the configuration file {} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        let figment = figment.merge(
            Env::prefixed("AUDIENCE_HOST_")
                .split("__")
                // These two names hold the secrets themselves (see `SecretSource`), not settings.
                .ignore(&["credentials_key", "operator_key"]),
        );
        figment.extract().map_err(|err| ConfigError::Invalid(err.to_string()))
    }

    /// This configuration as a TOML file `load` reads back to the same value (secrets stay
    /// references to where they are kept, never their values). What tests and benchmarks
    /// write for the `serve` processes they start: the struct is the one source of the format.
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string(self).map_err(|err| ConfigError::Invalid(format!("cannot write the configuration: {err}")))
    }

    /// Write [`HostConfig::to_toml`] to `path`.
    pub fn write(&self, path: &Path) -> Result<(), ConfigError> {
        std::fs::write(path, self.to_toml()?)
            .map_err(|err| ConfigError::Invalid(format!("cannot write {}: {err}", path.display())))
    }

    /// Which store `store` names.
    pub fn store_location(&self) -> Result<StoreLocation, ConfigError> {
        let raw = self.store.trim();
        if raw.is_empty() {
            return Err(ConfigError::Invalid("store is empty: give a SQLite file path or a postgres:// URL".into()));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(StoreLocation::Postgres(raw.to_string()));
        }
        if let Some((scheme, _)) = raw.split_once("://")
            && scheme != "sqlite"
        {
            return Err(ConfigError::Invalid(format!(
                "store: unknown scheme {scheme}://; use a SQLite file path, sqlite://PATH or postgres://..."
            )));
        }
        Ok(StoreLocation::Sqlite(PathBuf::from(raw.strip_prefix("sqlite://").unwrap_or(raw))))
    }
}

/// Where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// An embedded SQLite file: one host.
    Sqlite(PathBuf),
    /// A PostgreSQL database, by URL: one or several hosts. (Shown without its password.)
    Postgres(String),
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(path) => write!(f, "SQLite file {}", path.display()),
            Self::Postgres(url) => write!(f, "PostgreSQL {}", redact_password(url)),
        }
    }
}

/// `postgres://user:secret@host/db` as `postgres://user:***@host/db`, for logs and errors.
fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((credentials, location)) = rest.split_once('@') else { return url.to_string() };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{location}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/host.toml");
        let config = HostConfig::load(Some(&path)).expect("examples/host.toml is valid");
        assert!(config.plugins.contains_key("pinterest"));
        assert_eq!(config.engine.batch.flush_interval, std::time::Duration::from_secs(5));
    }

    #[test]
    fn a_missing_secret_says_which_variable_to_set() {
        let source = SecretSource::env("AUDIENCE_HOST_TEST_SURELY_UNSET");
        let err = source.read("the credentials encryption key").unwrap_err();
        assert_eq!(
            err.to_string(),
            "the credentials encryption key is missing: set the environment variable AUDIENCE_HOST_TEST_SURELY_UNSET"
        );
    }

    #[test]
    fn the_store_is_chosen_by_its_url_and_passwords_are_never_shown() {
        let mut config = HostConfig::default();
        assert_eq!(config.store_location().unwrap(), StoreLocation::Sqlite("data/audience-host.db".into()));
        config.store = "sqlite://x/y.db".into();
        assert_eq!(config.store_location().unwrap(), StoreLocation::Sqlite("x/y.db".into()));
        config.store = "postgres://app:hunter2@db.internal:5432/audience".into();
        let location = config.store_location().unwrap();
        assert!(matches!(location, StoreLocation::Postgres(ref url) if url.contains("hunter2")));
        assert_eq!(location.to_string(), "PostgreSQL postgres://app:***@db.internal:5432/audience");
        config.store = "mysql://db/audience".into();
        assert!(config.store_location().unwrap_err().to_string().contains("mysql://"));
    }

    #[test]
    fn a_written_configuration_reads_back_the_same() {
        let mut config =
            HostConfig::load(Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/host.toml")))
                .expect("examples/host.toml is valid");
        config.engine.batch.flush_interval = std::time::Duration::from_millis(300);
        let dir = tempfile::tempdir().unwrap();
        config.runtime.cache_dir = Some(dir.path().join("cache"));
        let path = dir.path().join("written.toml");
        config.write(&path).unwrap();
        assert_eq!(HostConfig::load(Some(&path)).unwrap(), config);
    }

    #[test]
    fn a_plugin_pointed_at_a_local_sandbox_may_use_plain_http_to_it_only() {
        let local =
            PluginSettings::pointed_at("builtin:pinterest", "http://127.0.0.1:9000/v5", "id", SecretSource::env("S"));
        assert_eq!(local.plain_http_hosts, ["127.0.0.1:9000"]);
        assert_eq!(local.base_url.as_deref(), Some("http://127.0.0.1:9000/v5"));
        let remote =
            PluginSettings::pointed_at("builtin:pinterest", "https://api.example", "id", SecretSource::env("S"));
        assert!(remote.plain_http_hosts.is_empty());
    }

    #[test]
    fn the_http_edge_has_bounded_defaults_and_is_set_in_the_file() {
        let defaults = HostConfig::default().http;
        assert_eq!(defaults.header_read_timeout, std::time::Duration::from_secs(10));
        assert_eq!(defaults.idle_timeout, std::time::Duration::from_secs(75));
        assert_eq!(defaults.max_connections, 10_000);
        assert_eq!(defaults.body_read_timeout, std::time::Duration::from_secs(30));
        assert_eq!(defaults.listen_backlog, 4096);
        let example = HostConfig::load(Some(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/host.toml")))
            .expect("examples/host.toml is valid");
        assert_eq!(example.http, defaults, "the example shows the defaults");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.toml");
        std::fs::write(&path, "[http]\nheader_read_timeout = \"2s\"\nmax_connections = 500\n").unwrap();
        let config = HostConfig::load(Some(&path)).unwrap();
        assert_eq!(config.http.header_read_timeout, std::time::Duration::from_secs(2));
        assert_eq!((config.http.max_connections, config.http.idle_timeout), (500, defaults.idle_timeout));
        std::fs::write(&path, "[http]\nheader_timeout = \"2s\"\n").unwrap();
        assert!(HostConfig::load(Some(&path)).unwrap_err().to_string().contains("header_timeout"));
    }

    #[test]
    fn a_plugin_overrides_the_runtime_limits_it_names_and_keeps_the_rest() {
        let defaults = SandboxLimits::default();
        let secs = Duration::from_secs;
        // (memory_limit, call_timeout, max_call_duration) set in the section; Ok(None): no
        // override; Ok(Some(memory, call, whole)); Err(part of the message)
        type Expected = Result<Option<(usize, Duration, Duration)>, &'static str>;
        type Set = (Option<usize>, Option<Duration>, Option<Duration>);
        let table: [(Set, Expected); 8] = [
            ((None, None, None), Ok(None)),
            ((Some(256 << 20), None, None), Ok(Some((256 << 20, secs(10), secs(300))))),
            ((None, Some(secs(30)), None), Ok(Some((64 << 20, secs(30), secs(300))))),
            ((None, Some(secs(30)), Some(secs(600))), Ok(Some((64 << 20, secs(30), secs(600))))),
            ((Some(1 << 31), None, None), Err("memory_limit = 2147483648 is outside")),
            ((Some(1000), None, None), Err("memory_limit = 1000 is outside")),
            ((None, Some(Duration::ZERO), None), Err("call_timeout is 0")),
            ((None, None, Some(secs(5))), Err("max_call_duration (5s) is shorter than call_timeout (10s)")),
        ];
        for ((memory_limit, call_timeout, max_call_duration), expected) in table {
            let settings =
                PluginSettings { memory_limit, call_timeout, max_call_duration, ..PluginSettings::default() };
            let got = settings.sandbox_limits("meta", &defaults);
            match (got, expected) {
                (Ok(None), Ok(None)) => {}
                (Ok(Some(limits)), Ok(Some((memory, call, whole)))) => {
                    assert_eq!(
                        (limits.memory_limit, limits.call_timeout, limits.max_call_duration),
                        (memory, call, whole)
                    );
                    assert_eq!(limits.max_log_lines_per_call, defaults.max_log_lines_per_call, "the rest is kept");
                }
                (Err(err), Err(part)) => {
                    let message = err.to_string();
                    assert!(message.contains("[plugins.meta]") && message.contains(part), "{message}");
                }
                (got, expected) => panic!("{settings:?}: {got:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn per_plugin_limits_are_read_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.toml");
        std::fs::write(
            &path,
            "[plugins.meta]\ncomponent = \"builtin:meta\"\nmemory_limit = 134217728\ncall_timeout = \"20s\"\n",
        )
        .unwrap();
        let config = HostConfig::load(Some(&path)).unwrap();
        let meta = &config.plugins["meta"];
        assert_eq!((meta.memory_limit, meta.call_timeout), (Some(128 << 20), Some(Duration::from_secs(20))));
        assert_eq!(meta.max_call_duration, None);
        std::fs::write(&path, "[plugins.meta]\ncomponent = \"builtin:meta\"\ncall_timeout = \"soon\"\n").unwrap();
        assert!(HostConfig::load(Some(&path)).unwrap_err().to_string().contains("call_timeout"));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap();
        let err = HostConfig::load(Some(&path)).unwrap_err();
        assert!(err.to_string().contains("listen_port"), "{err}");
    }
}
