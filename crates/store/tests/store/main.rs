//! The store's tests on both backends, in one test binary.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a step that fails is a failed test")]

mod common;
mod crash;
mod sqlite;
mod suite_postgres;
mod suite_sqlite;
