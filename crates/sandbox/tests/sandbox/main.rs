//! The Pinterest and Meta sandboxes over HTTP, in one test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a step that fails is a failed test")]

mod common;
mod control_api;
mod data_path;
mod google;
mod limits_and_faults;
mod meta;
mod oauth;
