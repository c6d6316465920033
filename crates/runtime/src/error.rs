//! Errors of the plugin runtime, split by when they happen: loading a component, or calling it.
//!
//! The split matters to callers: a [`LoadError`] is an operator problem (wrong file, wrong
//! contract version) shown once at startup, while a [`CallError`] happens per request and is
//! either the partner's answer ([`CallError::Destination`], which drives retries) or the
//! plugin misbehaving ([`PluginError`], after which the instance is thrown away).

use std::time::Duration;

use super::types::DestinationError;

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all.
    #[error("not a WebAssembly file (it does not start with the `\\0asm` header)")]
    NotWasm,
    /// A core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component: build the plugin for the \
         `wasm32-wasip2` target (or wrap the module with `wasm-tools component new`)"
    )]
    CoreModule,
    /// The component does not export the destination interface at all.
    #[error(
        "the component does not export `audience:destination/plugin` (it exports: {found}); \
         implement the `destination` world of wit/v0.2.0/destination.wit"
    )]
    MissingExport {
        /// What it does export, comma-separated.
        found: String,
    },
    /// The component implements a contract version this host does not know.
    #[error(
        "the component implements audience:destination@{found}, but this host speaks \
         {supported}; rebuild the plugin against one of them (wit/v<version>/destination.wit)"
    )]
    WrongVersion {
        /// The version the component exports.
        found: String,
        /// The versions this host supports, comma-separated.
        supported: String,
    },
    /// The component exports the interface but its functions or imports do not match.
    #[error("the component does not match the audience:destination contract: {0}")]
    Incompatible(String),
    /// Compilation failed (invalid or unsupported WebAssembly).
    #[error("the component failed to compile: {0}")]
    Compile(String),
    /// `describe` failed while loading.
    #[error("the plugin's `describe` failed: {0}")]
    Describe(#[source] PluginError),
    /// The engine could not be set up.
    #[error("the WebAssembly engine could not be configured: {0}")]
    Engine(String),
    /// The plugin's network settings are not valid (e.g. an entry of
    /// `allowed_private_addresses` that is not an address or a CIDR block).
    #[error("the plugin's network settings are not valid: {0}")]
    HttpPolicy(String),
}

/// The plugin itself failed during a call. The instance is discarded; the next call gets a
/// fresh one, so one failure never leaks into another call.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    /// The plugin's own code ran past `call_timeout` (time waiting for the partner, the rate
    /// limiter or a pause is not counted) and was interrupted.
    #[error(
        "the plugin ran its own code for longer than its {0:?} limit (waits for the partner are not counted) \
         and was interrupted; raise call_timeout if the plugin really needs it"
    )]
    Timeout(Duration),
    /// The call, waits included, ran past `max_call_duration` and was abandoned.
    #[error(
        "the plugin call took longer than {0:?} in all, waits for the partner included, and was abandoned \
         (a plugin that keeps making requests?)"
    )]
    TooLong(Duration),
    /// The plugin tried to grow its memory past the limit.
    #[error("the plugin exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// The limit in bytes.
        limit: usize,
    },
    /// The plugin trapped (a panic, an `unreachable`, an out-of-bounds access...).
    #[error("the plugin crashed: {0}")]
    Trap(String),
    /// A fresh instance could not be created.
    #[error("could not instantiate the plugin: {0}")]
    Instantiate(String),
    /// The plugin returned something the contract forbids (e.g. a wrong number of results).
    #[error("the plugin broke the contract: {0}")]
    Contract(String),
    /// No instance could be had within the plugin's `call_timeout`: the limit named was full.
    /// The plugin never ran; nothing was sent. A failure of the host's capacity, not of the
    /// plugin or the partner: retry later.
    #[error(
        "no instance of plugin {plugin} was free within {waited:?} (its call_timeout bounds the wait); the call \
         did not start: {limit}"
    )]
    Busy {
        /// The plugin's name.
        plugin: String,
        /// The limit that was full when the wait ran out.
        limit: InstanceLimit,
        /// How long the call waited.
        waited: Duration,
    },
}

/// The limit a call found full while waiting for an instance (see [`PluginError::Busy`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstanceLimit {
    /// The caller's own quota ([`crate::InstanceQuota`]: the engine's, per connection).
    #[error(
        "this connection's quota of {limit} instances was in use by its other calls; lower the plugin's \
         concurrency (plugins.NAME.limits.max_concurrent_requests) or raise the connection's quota \
         (engine.caps.instances_per_connection)"
    )]
    Connection {
        /// The quota.
        limit: usize,
    },
    /// The plugin's share of the runtime's instances.
    #[error(
        "the plugin's share of {share} instances ({}) was in use by its other calls; raise runtime.max_instances \
         or plugins.NAME.max_instances, or lower the plugin's concurrency (plugins.NAME.limits.max_concurrent_requests)",
        if *.configured { "its plugins.NAME.max_instances setting" } else { "runtime.max_instances divided among the loaded plugins" }
    )]
    Plugin {
        /// The share at the time.
        share: usize,
        /// Whether the share is the operator's setting for this plugin (else an equal share).
        configured: bool,
    },
    /// The runtime's pool as a whole.
    #[error(
        "all {max_instances} instances of the runtime were in use; raise runtime.max_instances, or lower the \
         plugins' own max_instances settings (their sum may be above runtime.max_instances) or their concurrency"
    )]
    Runtime {
        /// `runtime.max_instances`.
        max_instances: u32,
    },
}

/// Why a call did not produce a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CallError {
    /// The plugin ran and reported the partner's refusal or failure.
    #[error("{}", describe_destination_error(.0))]
    Destination(DestinationError),
    /// The plugin itself failed.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The host's own HTTP gate refused a request the plugin made during the call (a host
    /// not on the allow-list, plain http not allowed): an operator setting, not the partner.
    #[error("the host refused the plugin's request ({0}); the partner was not asked")]
    HostRefused(String),
    /// The component's contract version has no such export.
    #[error("{function} is not in contract {version}, which this plugin implements; rebuild it against 0.2.0")]
    Unsupported {
        /// The export.
        function: &'static str,
        /// The component's contract version.
        version: &'static str,
    },
}

impl From<DestinationError> for CallError {
    fn from(err: DestinationError) -> Self {
        CallError::Destination(err)
    }
}

/// A one-line description of a destination error, for logs and API answers.
pub fn describe_destination_error(err: &DestinationError) -> String {
    match err {
        DestinationError::RateLimited(Some(ms)) => format!("rate limited by the partner (retry after {ms} ms)"),
        DestinationError::RateLimited(None) => "rate limited by the partner".to_string(),
        DestinationError::Unauthorized(why) => format!("unauthorized: {why}"),
        DestinationError::NotFound(why) => format!("not found: {why}"),
        DestinationError::InvalidRequest(why) => format!("invalid request: {why}"),
        DestinationError::ActionRequired(why) => format!("action required: {why}"),
        DestinationError::Transient(why) => format!("transient failure: {why}"),
        DestinationError::RejectedUsers(users) => {
            format!("the partner refused the whole request because of {} user(s)", users.len())
        }
    }
}

impl PluginError {
    /// The same failure with `secrets` scrubbed from its texts (a guest's panic message or a
    /// trap's backtrace can quote what the plugin was handed).
    /// Cut to size like every other text from a plugin.
    pub(crate) fn scrubbed(self, secrets: &crate::redact::Secrets) -> Self {
        let clean = |why: String| {
            let mut why = secrets.scrubbed(&why).into_owned();
            crate::bound::cut(&mut why);
            why
        };
        match self {
            PluginError::Trap(why) => PluginError::Trap(clean(why)),
            PluginError::Instantiate(why) => PluginError::Instantiate(clean(why)),
            PluginError::Contract(why) => PluginError::Contract(clean(why)),
            other => other,
        }
    }
}
