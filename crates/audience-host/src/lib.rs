//! audience-host: a runtime that syncs users into ad-platform audiences through destination
//! plugins compiled to WebAssembly components.
//!
//! This crate is the service as an operator runs it: the configuration file
//! ([`config::HostConfig`], read from TOML with environment overrides), assembling a running
//! service from it ([`service::assemble`]: the store, the plugin runtime, one destination per
//! configured plugin, the engine) and [`serve::run`] (the HTTP API until SIGTERM). The
//! `audience-host` binary adds the command line on top.
//!
//! What it must not know: how a batch is delivered (`audience-engine`), how a plugin is
//! sandboxed (`audience-runtime`) or how a route answers (`audience-api`). It only wires them.

pub mod config;
pub mod serve;
pub mod service;
