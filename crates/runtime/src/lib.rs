//! The plugin runtime: loads destination components and calls them inside a sandbox.
//!
//! A destination plugin is untrusted code. Everything here is built so that a plugin that
//! loops, exhausts memory, panics, or tries to reach a host it was not allowed can only fail
//! its own call: each call runs in a fresh instance with a deadline and a memory cap, WASI is
//! granted nothing (no files, environment, sockets or stdin), and the network is reachable
//! only through the host's HTTP gate, whichever import a request comes through (the
//! contract's `http-client`, or the standard `wasi:http/outgoing-handler`).
//!
//! Start with [`PluginRuntime::new`], then [`PluginRuntime::load`] or
//! [`PluginRuntime::load_file`]; call the returned [`Plugin`]'s typed async methods.
//!
//! What it must not know: the store, the API, or what a batch means to the engine. The engine
//! reaches into a call only through [`RequestHooks`] (called around every outbound request, to
//! pace and fence it) and the call's result.

mod bindings;
mod bound;
mod cache;
mod calls;
mod config;
pub mod departure;
mod error;
mod http;
mod imports;
mod kinds;
mod logging;
mod outbound;
mod pool;
pub mod redact;
mod runtime;
mod waiting;
mod wasi_http;

pub use bindings::SUPPORTED_VERSIONS;
/// The contract versions side by side: each version's bindings and its minimum host version.
pub use bindings::{latest, since_v0_1_0, since_v0_2_0};
pub use bound::{MAX_CREDENTIAL_BYTES, MAX_TEXT_BYTES};
pub use cache::{CacheOutcome, CompileCache};
pub use config::{HttpLimits, HttpPolicy, RuntimeConfig, SandboxLimits};
pub use departure::Departure;
pub use error::{CallError, InstanceLimit, LoadError, PluginError, describe_destination_error};
pub use kinds::{host_kind, kind_name};
pub use logging::{LogLine, LogSource};
pub use pool::InstanceQuota;
pub use runtime::{MAX_MEMORY_LIMIT, Plugin, PluginOptions, PluginRuntime, RequestHooks};

pub use imports::{MAX_HASH_VALUES, sha256_hex};

/// The contract's data types, as the host sees them: always the newest version's
/// (`audience:destination/types@0.2.0`); older components are adapted to them.
pub mod types {
    pub use super::bindings::latest::audience::destination::types::*;
}

/// The `http-client` import's types, for tests and tools that answer plugin requests.
pub mod http_types {
    pub use super::bindings::latest::audience::destination::http_client::{HttpError, Request, Response};
}

/// The `hashing` import's types.
pub mod hashing_types {
    pub use super::bindings::latest::audience::destination::hashing::Normalization;
}
