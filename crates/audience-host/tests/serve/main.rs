//! The `audience-host` binary as operators run it: `serve` processes killed, stopped and run
//! side by side, and the `demo` and `plugin inspect` commands. One test binary, so the
//! binary's dependencies are linked once for all of them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a step that fails is a failed test")]

mod bench_tenants;
mod containment;
mod crash;
mod demo;
mod multi_host;
mod plugin_tools;
mod support;
