//! Sandbox settings: what a plugin may use (time, memory, network), with fail-closed defaults.
//!
//! Every setting is a small struct with documented defaults, so an operator can override one
//! number without restating the rest (the way Vector configures its sinks).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// CPU and memory limits applied to every call into a plugin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxLimits {
    /// Longest the plugin's own code may run in one call before it is interrupted. Time the
    /// call spends waiting in the host (for the connection's rate limiter, a partner's pause,
    /// or the partner's answer) is not counted: a slow partner is bounded by
    /// [`HttpLimits::timeout`] per request instead. Default 10 s.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// Longest one call may take in all, waits included: the backstop against a plugin that
    /// keeps making requests. Keep it above `HttpLimits::timeout` times the requests a call
    /// makes. Default 5 min.
    #[serde(with = "humantime_serde")]
    pub max_call_duration: Duration,
    /// Most linear memory one instance may grow to, in bytes. Default 64 MiB.
    pub memory_limit: usize,
    /// Most log lines (log import plus stdout/stderr) kept from one call; the rest are dropped
    /// with a warning, so a chatty plugin cannot flood the host's log. Default 1,000.
    pub max_log_lines_per_call: usize,
    /// Most log lines one plugin may write per second over time, across all its calls (a
    /// burst of `max_log_lines_per_call` is allowed); the rest are dropped and counted.
    /// Default 100.
    pub max_log_lines_per_second: f64,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(10),
            max_call_duration: Duration::from_secs(300),
            memory_limit: 64 << 20,
            max_log_lines_per_call: 1_000,
            max_log_lines_per_second: 100.0,
        }
    }
}

/// Where a plugin may send HTTP requests. Fail closed: an empty allow-list denies everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpPolicy {
    /// Hosts reachable over https: `api.pinterest.com` (any port) or `127.0.0.1:8443` (that
    /// port only); `*.example.com` allows every subdomain of example.com. Empty = deny all.
    pub allowed_hosts: Vec<String>,
    /// Hosts also reachable over plain http (local sandboxes). Same syntax; a host listed here
    /// need not be repeated in `allowed_hosts`.
    pub plain_http_hosts: Vec<String>,
    /// Private, loopback, link-local and other non-public addresses that names on the
    /// allow-lists may resolve to: IP addresses (`10.1.2.3`, `::1`) or CIDR blocks
    /// (`10.20.0.0/16`, `fd00::/8`). By default a name that resolves to such an address is
    /// refused (an allowed name must not become a way into the host's own network); an IP
    /// literal on the allow-lists (`127.0.0.1:9000`) is allowed as written and needs no entry
    /// here. Empty by default.
    pub allowed_private_addresses: Vec<String>,
    /// Limits on each request.
    pub limits: HttpLimits,
}

/// Size and time limits on each outbound request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLimits {
    /// Longest a request may take, from connecting to the last byte of the body: what bounds
    /// a slow partner (the plugin's `call_timeout` does not count this wait). Default 30 s.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Largest response body accepted, in bytes. Default 16 MiB.
    pub max_response_bytes: usize,
    /// Largest request body a plugin may send, in bytes. Default 8 MiB.
    pub max_request_bytes: usize,
    /// Most redirects followed (each to an allowed host). Default 5.
    pub max_redirects: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            max_response_bytes: 16 << 20,
            max_request_bytes: 8 << 20,
            max_redirects: 5,
        }
    }
}

/// Settings of the plugin runtime as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Directory of the compile cache; `None` compiles every load from scratch.
    pub cache_dir: Option<PathBuf>,
    /// Most plugin instances alive at once across all plugins (pooling allocator slots).
    /// Each plugin may hold at most its share of them: `max_instances` divided by the number
    /// of plugins loaded (at least 1), unless its own `max_instances` is set (see
    /// [`crate::PluginOptions::max_instances`]). A call waits for a slot for at most the
    /// plugin's `call_timeout`, then fails as busy. Default 128.
    pub max_instances: u32,
    /// Most calls of one plugin running guest code at once: the CPU one plugin may take from
    /// its neighbours, however many calls it has in flight. A call waiting for the partner
    /// does not hold one. `None` (the default): half the machine's cores, at least 1.
    pub max_running_per_plugin: Option<u32>,
    /// Default limits for plugins that do not set their own.
    pub limits: SandboxLimits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self { cache_dir: None, max_instances: 128, max_running_per_plugin: None, limits: SandboxLimits::default() }
    }
}

impl RuntimeConfig {
    /// How many calls of one plugin may run guest code at once: `max_running_per_plugin`, or
    /// half the machine's cores (at least 1) when unset.
    pub fn cpu_share(&self) -> usize {
        match self.max_running_per_plugin {
            Some(n) => (n as usize).max(1),
            None => std::thread::available_parallelism().map_or(1, |n| n.get() / 2).max(1),
        }
    }
}
