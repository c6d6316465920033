//! The sync engine against the partner sandboxes, through the real plugins built into the
//! host: what a user of the host would notice — everyone delivered exactly where expected and
//! in the form the partner documents, the partner's limits never exceeded, failures retried or
//! parked, counts conserved, bad targets refused before anything runs.
//!
//! - [`pinterest`]: the Pinterest plugin against the Pinterest API v5 sandbox;
//! - [`meta`]: the Meta plugin against the Meta Marketing API sandbox;
//! - [`asynchronous`]: asynchronous outcomes through the test destination;
//! - [`google`]: the Google plugin against the Google (OAuth, Ads, Data Manager) sandbox.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a step that fails is a failed test")]

mod asynchronous;
mod google;
mod meta;
mod pinterest;
