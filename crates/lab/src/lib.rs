//! Development support for audience-host: what the demo, the benchmarks and the tests share,
//! kept out of the production crates.
//!
//! - [`world`]: a complete host against a local partner sandbox in one process (the built-in
//!   Pinterest plugin, a real store, a started engine), and scratch PostgreSQL databases;
//! - [`process`]: `audience-host serve` as a child process, and talking to it;
//! - [`demo`] and [`bench`]: the `demo` and in-process `bench` commands of the binary;
//!   [`kits`]: the `bench kits` measurements of destination components, kit by kit;
//!   [`ledger`]: `bench ledger`, a sync's ledger with millions of users (intake, bytes on
//!   disk, look-ups, listings).
//!
//! What it must not be: a dependency of the runtime, engine, API or store crates. Those are
//! what an operator runs; this crate pulls in the sandboxes, progress bars and a bare SQLite
//! for comparisons. The `audience-host` binary includes it through its default `lab` feature.

pub mod bench;
pub mod demo;
pub mod hostile;
pub mod kits;
pub mod ledger;
pub mod process;
pub mod world;
