//! audience-host: a runtime that syncs users into ad-platform audiences through destination
//! plugins compiled to WebAssembly components.
//!
//! The host owns queueing, batching, rate limiting, retries and metrics; plugins implement the
//! `audience:destination` WIT contract and reach the network only through the host.
#![deny(missing_docs)]

pub mod api;
pub mod cli;
pub mod config;
pub mod conformance;
pub mod engine;
pub mod host_process;
pub mod lab;
pub mod oauth;
pub mod plugin;
pub mod serve;
pub mod service;
