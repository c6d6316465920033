//! What the process tests share: a host configuration written from the configuration struct,
//! starting `audience-host serve` on it, and the secrets those configurations name.

use std::path::Path;
use std::time::Duration;

use audience_host::config::{HostConfig, PluginSettings, SecretSource};
use audience_host::service::BUILTIN_PINTEREST;
use audience_lab::process::ServeProcess;
use audience_sandbox::SandboxHandle;

pub use audience_lab::process::{ApiClient, free_port, metric};

/// The operator key every test host is started with.
pub const OPERATOR_KEY: &str = "process-test-operator-key";

/// Start `audience-host serve --config CONFIG` with the secrets [`config`] names in its
/// environment.
pub fn spawn_host(config: &Path) -> anyhow::Result<ServeProcess> {
    let env = [
        ("TEST_CREDENTIALS_KEY", "11".repeat(32)),
        ("TEST_OPERATOR_KEY", OPERATOR_KEY.to_string()),
        ("TEST_PINTEREST_SECRET", SandboxHandle::DEFAULT_CLIENT_SECRET.to_string()),
        ("TEST_GOOGLE_SECRET", audience_sandbox::GoogleHandle::DEFAULT_CLIENT_SECRET.to_string()),
    ];
    ServeProcess::spawn(Path::new(env!("CARGO_BIN_EXE_audience-host")), config, &env)
}

/// A host on `port` with its store at `store` (a file or a `postgres://` URL), its compile
/// cache in `cache`, quick batches and retries, and the built-in Pinterest plugin pointed at
/// the sandbox at `sandbox_base_url`.
pub fn config(port: u16, store: &str, cache: &Path, sandbox_base_url: &str) -> HostConfig {
    let mut config = HostConfig {
        listen: format!("127.0.0.1:{port}"),
        public_url: format!("http://127.0.0.1:{port}"),
        store: store.to_string(),
        credentials_key: SecretSource::env("TEST_CREDENTIALS_KEY"),
        operator_key: SecretSource::env("TEST_OPERATOR_KEY"),
        ..HostConfig::default()
    };
    config.engine.batch.flush_interval = Duration::from_millis(300);
    config.engine.retry.initial_backoff = Duration::from_millis(100);
    config.engine.retry.max_backoff = Duration::from_secs(1);
    config.runtime.cache_dir = Some(cache.to_path_buf());
    let secret = SecretSource::env("TEST_PINTEREST_SECRET");
    let pinterest =
        PluginSettings::pointed_at(BUILTIN_PINTEREST, sandbox_base_url, SandboxHandle::DEFAULT_CLIENT_ID, secret);
    config.plugins.insert("pinterest".into(), pinterest);
    config
}
