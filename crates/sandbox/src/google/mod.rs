//! A local stand-in for Google Customer Match: Google OAuth 2.0, the Google Ads API (account
//! discovery) and the Data Manager API (user lists, audience members, request status).
//!
//! [`GoogleSandbox`] is a real HTTP server on `127.0.0.1` that behaves like the parts of
//! Google's APIs a Customer Match destination uses, as Google documents them, collected with
//! sources in `spec/google-notes.md` (served at `/_sandbox/notes.md`, embedded as
//! [`GOOGLE_NOTES_MD`]). It follows Google's documented behaviour, not whatever would make a
//! plugin pass: a plugin that works here should work against Google.
//!
//! # URL layout
//!
//! One base URL `B` (`http://127.0.0.1:PORT`) stands in for every Google host; each host is a
//! path prefix, so a plugin configured with `B/<prefix>` instead of the real host needs no
//! other change:
//!
//! | Google host                          | Sandbox        | Calls served |
//! |--------------------------------------|----------------|--------------|
//! | `https://accounts.google.com`        | `B/accounts`   | `GET /o/oauth2/v2/auth?client_id&redirect_uri&response_type=code&scope&access_type=offline&prompt=consent&state` (consents at once, redirects to `redirect_uri?state=..&code=..&scope=..`) |
//! | `https://oauth2.googleapis.com`      | `B/oauth2`     | `POST /token` (form: `authorization_code`, `refresh_token` grants; client credentials in the form or HTTP Basic), `POST /revoke?token=` |
//! | `https://googleads.googleapis.com`   | `B/googleads`  | `GET /v{N}/customers:listAccessibleCustomers`, `POST /v{N}/customers/{cid}/googleAds:search` (N = 22..=26) |
//! | `https://datamanager.googleapis.com` | `B/datamanager`| `GET`, `POST /v1/accountTypes/GOOGLE_ADS/accounts/{cid}/userLists`; `GET`, `PATCH`, `DELETE .../userLists/{id}`, `POST /v1/audienceMembers:ingest`, `:remove`, `:removeAll`, `GET /v1/requestStatus:retrieve?requestId=` |
//!
//! The control API lives under `B/_sandbox/` (see `curl B/_sandbox/`).
//!
//! # What it does
//!
//! - OAuth ([`oauth`](self) module docs): codes, 3599 s access tokens, refresh tokens that do
//!   not rotate, `invalid_grant` for dead ones, revocation of a whole grant; one OAuth client is
//!   one Cloud project (quotas and enabled services belong to it). Scopes are enforced per API
//!   (`.../auth/adwords` for the Ads API, `.../auth/datamanager` for the Data Manager API; else
//!   403 `ACCESS_TOKEN_SCOPE_INSUFFICIENT`); an expired, revoked or unknown token is 401
//!   UNAUTHENTICATED; [`GoogleHandle::set_service_enabled`] switches on 403 `SERVICE_DISABLED`.
//! - Account discovery: `listAccessibleCustomers` (direct accounts only) and `customer_client`
//!   search with fixed pages, page tokens, `PAGE_SIZE_NOT_SUPPORTED`, `EXPIRED_PAGE_TOKEN`, and
//!   `login-customer-id` required to reach clients under a manager. The default world: two
//!   plain accounts and a manager with three clients and a sub-manager (with one client), all
//!   held by the one sandbox user.
//! - User lists with Google's create rules, AIP-160 filters and paging; `login-account`
//!   checked against the manager hierarchy.
//! - Ingest / remove / removeAll with every fast-fail check, all offending records named in one
//!   400; `validateOnly`; asynchronous processing with `requestStatus` per destination, record
//!   counts, match-rate ranges and error counts (denied consent, injected processing errors);
//!   sizes that lag behind the membership.
//! - Per-project quotas in four buckets with 429 `RESOURCE_EXHAUSTED` naming
//!   `metadata.quota_limit`; injectable 500 / 503 / 504, expired tokens and forced 429s.
//!
//! Every failure carries a request id (`ErrorInfo.metadata.requestId` and `RequestInfo` for the
//! Data Manager API, `GoogleAdsFailure.requestId` for the Ads API, and a `request-id` header).
//!
//! # Seeing what happened
//!
//! [`GoogleHandle`] answers what Google never shows:
//! [`members`](GoogleHandle::members) / [`member_count`](GoogleHandle::member_count) of a list
//! *now* (only requests that finished processing on the sandbox clock are applied; move it with
//! [`advance_clock`](GoogleHandle::advance_clock) or
//! [`finish_processing`](GoogleHandle::finish_processing)), how many times an identifier was
//! ingested ([`times_ingested`](GoogleHandle::times_ingested),
//! [`max_times_ingested`](GoogleHandle::max_times_ingested): a test proving nobody is sent twice
//! asserts it is at most 1), quota counters per bucket ([`quota_stats`](GoogleHandle::quota_stats):
//! counted requests, 429s given, most requests in any 60 s), and the request log.
//!
//! # Decisions where Google's documents are silent
//!
//! The notes list points as "not confirmed"; the stand-in chose:
//!
//! - **RetryInfo on 429s**: included (`google.rpc.RetryInfo.retryDelay`, e.g. `"17s"`: when
//!   the oldest counted request leaves the minute window, or the time to the daily reset).
//!   Google's error model (AIP-193) names RetryInfo as the detail that tells a client when to
//!   retry, and the Data Manager docs only promise `ErrorInfo.metadata.quota_limit`, so a client
//!   must work without it: [`GoogleConfig::retry_info_on_429`] turns it off to prove that.
//! - **Quota windows**: "per minute" is a sliding 60 s window (the strictest reading: a client
//!   under it is under any fixed-minute count); "per day" resets at midnight Pacific time
//!   (UTC-8), as Google Cloud's daily quotas do. Counted: every authenticated, enabled,
//!   in-scope Data Manager call (including ones that then fail validation); not counted:
//!   refused 429s, OAuth and Google Ads API calls (the Ads API has its own limits).
//! - **Missing `termsOfService`** on an ingest with user or mobile data: 400 INVALID_ARGUMENT,
//!   reason `TERMS_AND_CONDITIONS_NOT_SIGNED` (an `ErrorReason` value), field
//!   `terms_of_service.customer_match_terms_of_service_status`, reported with the other
//!   fast-fail violations.
//! - **Hex case**: either case is accepted (Google's Java library emits uppercase); hashes are
//!   compared lowercase.
//! - **requestId retention and access**: a request's status stays retrievable for the
//!   sandbox's life; any valid token with the datamanager scope may retrieve it.
//! - **Order of close requests**: changes apply in the order requests were accepted (all take
//!   the same processing delay), so an ingest then a remove of one member leaves it out.
//! - **Maximum membershipDuration**: 540 days; unset means 540.
//! - **userLists.list** returns only the Customer Match lists the sandbox holds.
//! - **Which ErrorInfo reason heads a multi-violation 400**: the first violation's.
//! - **Duplicate display names**: 400 INVALID_ARGUMENT `DISPLAY_NAME_ALREADY_USED` (names
//!   compared exactly); a missing or foreign user list in `userLists.get` is 403
//!   PERMISSION_DENIED, in an ingestion destination 400 `INVALID_USER_LIST_ID`.
//! - **Authentication reasons**: Data Manager 401s carry ErrorInfo `ACCESS_TOKEN_EXPIRED`
//!   (expired), `CREDENTIALS_MISSING` (none) or `ACCESS_TOKEN_TYPE_UNSUPPORTED` (unknown or
//!   revoked); Ads API 401s carry `authenticationError` `OAUTH_TOKEN_EXPIRED`,
//!   `OAUTH_TOKEN_REVOKED`, `OAUTH_TOKEN_INVALID` or `NOT_ADS_USER` (none).
//! - **Consent**: `CONSENT_DENIED` for `adUserData` or `adPersonalization` (member value, else
//!   the request default) fails the record at processing with
//!   `PROCESSING_ERROR_REASON_DENIED_CONSENT`; unspecified consent is accepted (the sandbox has
//!   no EEA users and no account defaults).
//! - **Matching**: the sandbox "matches" [`GoogleConfig::match_rate_percent`] of accepted
//!   contact members; it sets the upload's match-rate range, the list's
//!   `matchRatePercentage` and its sizes (`members x rate`).
//! - **removeAll** removes members whose last ingest request was *sent* before
//!   `removeAsOfTime` (default: when the removeAll was sent).
//! - **encryptionInfo** is refused (400, field `encryption_info`): the sandbox does not decrypt.
//! - **Occasional `fieldWarnings`** are never sent.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), audience_sandbox::SandboxError> {
//! use audience_sandbox::google::{GoogleConfig, GoogleSandbox, UploadKeyType};
//!
//! let sandbox = GoogleSandbox::start(GoogleConfig::default()).await?;
//! let handle = sandbox.handle();
//! let tokens = handle.issue_tokens(&[audience_sandbox::GoogleHandle::DATAMANAGER_SCOPE]);
//! let account = handle.accessible_customer_ids()[0].clone();
//! let list = handle.create_user_list(&account, "Newsletter", UploadKeyType::ContactId);
//! // ... point a client at handle.datamanager_url() with tokens.access_token ...
//! handle.finish_processing();
//! assert_eq!(handle.member_count(&list.unwrap_or_default()), 0);
//! sandbox.shutdown().await;
//! # Ok(()) }
//! ```

mod ads;
mod config;
mod control;
mod errors;
mod fields;
mod gaql;
mod handle;
mod ingest;
mod log;
mod members;
mod oauth;
mod quota;
mod requests;
mod server;
mod state;
mod summary;
mod user_lists;

pub use config::{ForcedGoogleErrors, GoogleConfig, GoogleFault, GoogleFaults, Quota, QuotaLimits};
pub use handle::{GoogleHandle, GoogleService};
pub use log::{GoogleApiKind, GoogleFaultKind, GoogleRequestRecord};
pub use members::GoogleMember;
pub use oauth::{
    ADWORDS_SCOPE, DATAMANAGER_SCOPE, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_PROJECT, GoogleTokens,
};
pub use quota::{BucketStats, QuotaBucket};
pub use server::{GoogleSandbox, run_standalone_google, start_google};
pub use state::UploadKeyType;
pub use summary::{CustomerSummary, GoogleSummary, UserListSummary};

/// The researched facts about Google's APIs this stand-in follows (Markdown, with sources),
/// as shipped in `spec/google-notes.md`.
pub const GOOGLE_NOTES_MD: &str = include_str!("../../spec/google-notes.md");
