//! Local stand-ins for ad partner APIs: Pinterest API v5 and Meta's Marketing API.
//!
//! # Why this exists
//!
//! Destination plugins talk to partner APIs that cannot be used in tests: they need real ad
//! accounts and real people, they rate-limit, and they never tell you who actually ended up in
//! an audience. [`PinterestSandbox`] is a real HTTP server on `127.0.0.1` that behaves like the
//! parts of Pinterest's API a destination uses (OAuth, ad accounts, customer lists, audiences)
//! and additionally lets a test:
//!
//! - see exact list membership ([`SandboxHandle::members`]);
//! - inject faults: 5xx, latency, dropped connections, forced 429s ([`Faults`]);
//! - revoke or expire tokens and delete lists or audiences behind the client's back;
//! - read a request log and prove limits were respected
//!   ([`SandboxHandle::max_requests_in_window`], [`SandboxHandle::max_records_per_request`],
//!   and [`SandboxHandle::rate_limit_violations`]: requests sent too early, refused or not);
//! - prove request bodies match Pinterest's published OpenAPI description
//!   ([`SandboxHandle::spec_violations`]); the description ships in `spec/`.
//!
//! The same controls are served over HTTP under `/_sandbox/` for people and plugin authors who
//! do not write Rust; [`run_standalone`] prints how to use them.
//!
//! [`MetaSandbox`] does the same for Meta's Marketing API (Graph `/v{N}.0/...`: Facebook Login,
//! ad accounts, custom audiences, `/users` sessions, the `custom_audience` call budget), with
//! [`MetaHandle`] as its side door; see the [`meta`] module and `spec/meta-notes.md` for the
//! facts it follows. [`run_standalone_meta`] and [`run_standalone_both`] serve it for people.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), audience_sandbox::SandboxError> {
//! use audience_sandbox::{PinterestSandbox, SandboxConfig};
//!
//! let sandbox = PinterestSandbox::start(SandboxConfig::default()).await?;
//! let handle = sandbox.handle();
//! let tokens = handle.issue_tokens(&["ads:read", "ads:write"]);
//! // ... point a client at sandbox.base_url() + "/v5" with tokens.access_token ...
//! assert!(handle.spec_violations().is_empty());
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Answers
//!
//! Errors are Pinterest's `{"code", "message"}`: 401 code 2 (bad, unknown or revoked
//! credentials), 401 code 1104 (expired access token), 401 code 3 (missing scope), 401 code 283
//! (bad authorization code or refresh token), 429 code 8 (rate limit), 400 code 1 (invalid
//! parameters, body or records), 400 code 400 (invalid ad account id), 404 code 2 (unknown ad
//! account), 404 code 404 (unknown list or audience).

mod accounts;
mod audiences;
mod config;
mod control;
mod customer_lists;
mod error;
mod faults;
mod gate;
pub mod google;
mod handle;
mod log;
pub mod meta;
mod oauth;
mod paging;
mod server;
mod spec;
mod state;
mod window;

pub use config::{Faults, Forced429, SandboxConfig};
pub use control::{AccountSummary, AudienceSummary, ListSummary, Summary};
pub use customer_lists::{ListType, UnknownListType};
pub use error::SandboxError;
pub use google::{GoogleConfig, GoogleHandle, GoogleSandbox, run_standalone_google, start_google};
pub use handle::SandboxHandle;
pub use log::{FaultKind, RequestRecord};
pub use meta::{MetaConfig, MetaHandle, MetaSandbox, run_standalone_both, run_standalone_meta};
pub use oauth::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, TokenPair};
pub use server::{PinterestSandbox, run_standalone};
pub use spec::PINTEREST_OPENAPI_JSON;
