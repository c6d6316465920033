//! The plugin runtime against real components, in one test binary (wasmtime is linked once).

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a step that fails is a failed test")]

mod containment;
mod google_plugin;
mod pinterest_plugin;
mod plugin_sandbox;
mod support;
mod versions;
mod wasi_http;
