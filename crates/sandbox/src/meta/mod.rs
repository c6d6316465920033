//! A local stand-in for Meta's Marketing API (Custom Audiences from customer files).
//!
//! [`MetaSandbox`] is a real HTTP server on `127.0.0.1` that behaves like the parts of Meta's
//! Graph / Marketing API a customer-list destination uses, as documented by Meta and collected
//! with sources in `spec/meta-notes.md` (served at `/_sandbox/notes.md`, embedded as
//! [`META_NOTES_MD`]):
//!
//! - Facebook Login: the login dialog (`/v{N}.0/dialog/oauth`, consents at once), the code
//!   exchange and the long-lived swap (`/v{N}.0/oauth/access_token`), `/debug_token`, and
//!   system-user tokens that never expire;
//! - `/me/adaccounts` and `/act_<n>/customaudiences` with `fields`, `limit`, `after`/`before`
//!   and Graph cursor paging (`next` absent on the last page, only `id` without `fields`);
//! - audience create (500 per account), read (size bounds, `operation_status`,
//!   `delivery_status`), update and delete; the Custom Audience terms gate per account;
//! - `/<audience_id>/users` (add and remove) and `/usersreplace` with Meta's payload schemas,
//!   per-value checks (bad rows are dropped and counted, with samples) and session rules;
//! - the per-ad-account `custom_audience` call budget with `X-Business-Use-Case-Usage` and
//!   `X-Ad-Account-Usage` headers and code 80003 once exhausted;
//! - Meta's error bodies (`{"error": {message, type, code, error_subcode, fbtrace_id, ..}}`).
//!
//! On top of that, [`MetaHandle`] (and the `/_sandbox/` control API) lets a test see exact
//! audience membership, inject faults, revoke or expire tokens, flag or delete audiences, flip
//! an account's terms, status or assignment, move the sandbox clock, and read the request log.
//!
//! Choices made where Meta's documentation is silent are listed in the crate README
//! ("Meta: decisions on unconfirmed points").
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), audience_sandbox::SandboxError> {
//! use audience_sandbox::{MetaConfig, MetaSandbox};
//!
//! let sandbox = MetaSandbox::start(MetaConfig::default()).await?;
//! let handle = sandbox.handle();
//! let token = handle.issue_token(&["ads_management", "ads_read"]);
//! let account = &handle.ad_account_ids()[0];
//! // ... point a client at sandbox.graph_url() with access_token=token ...
//! let audience = handle.create_audience(account, "Newsletter").unwrap_or_default();
//! assert!(handle.members(&audience).is_empty());
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

mod accounts;
mod audiences;
mod config;
mod control;
mod errors;
mod graph;
mod handle;
mod log;
mod members;
mod oauth;
mod paging;
mod params;
mod server;
mod sessions;
mod state;
mod summary;
mod usage;
mod users;

pub use config::{ForcedErrors, MetaConfig, MetaFault, MetaFaults, ScoreBudget, UsageBudget};
pub use handle::MetaHandle;
pub use log::{MetaFaultKind, MetaRequestRecord};
pub use members::MemberRow;
pub use oauth::{DEFAULT_APP_ID, DEFAULT_APP_SECRET};
pub use params::BodyFormat;
pub use server::{MetaSandbox, run_standalone_both, run_standalone_meta};
pub use sessions::SessionOperation;
pub use summary::{MetaAccountSummary, MetaAudienceSummary, MetaSummary, SessionSummary};
pub use usage::BucUsage;

/// The researched facts about Meta's Marketing API this stand-in follows (Markdown, with
/// sources), as shipped in `spec/meta-notes.md`.
pub const META_NOTES_MD: &str = include_str!("../../spec/meta-notes.md");
