//! The plugin runtime: loads destination components and calls them inside a sandbox.
//!
//! A destination plugin is untrusted code. Everything here is built so that a plugin that
//! loops, exhausts memory, panics, or tries to reach a host it was not allowed can only fail
//! its own call: each call runs in a fresh instance with a deadline and a memory cap, WASI is
//! granted nothing (no files, environment, sockets or stdin), and the network is reachable
//! only through the host's checked `http-client` import.
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
mod error;
mod http;
mod kinds;
mod logging;
mod runtime;

pub use bindings::SUPPORTED_VERSIONS;
pub use bound::{MAX_CREDENTIAL_BYTES, MAX_TEXT_BYTES};
pub use cache::{CacheOutcome, CompileCache};
pub use config::{HttpLimits, HttpPolicy, RuntimeConfig, SandboxLimits};
pub use error::{CallError, LoadError, PluginError, describe_destination_error};
pub use kinds::kind_name;
pub use logging::{LogLine, LogSource};
pub use runtime::{Plugin, PluginOptions, PluginRuntime, RequestHooks};

/// The contract's data types (`audience:destination/types@0.1.0`), as the host sees them.
pub mod types {
    pub use super::bindings::v0_1_0::audience::destination::types::*;
}

/// The `http-client` import's types, for tests and tools that answer plugin requests.
pub mod http_types {
    pub use super::bindings::v0_1_0::audience::destination::http_client::{HttpError, Request, Response};
}
