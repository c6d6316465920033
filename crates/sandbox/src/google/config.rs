//! Start-up settings and injectable faults of the Google stand-in.
//!
//! Every number a Google Customer Match destination's behaviour depends on (token lifetimes,
//! page sizes, the processing delay of ingestion requests, the per-project quotas) is a field
//! here, so a test can put a plugin under exactly the conditions it wants to prove something
//! about. Defaults follow Google's documentation as collected in `spec/google-notes.md`, except
//! the processing delay, which is seconds instead of Google's half hour so a test can reach it
//! with one [`GoogleHandle::advance_clock`](crate::GoogleHandle::advance_clock).

use std::time::Duration;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// How the Google stand-in behaves. `GoogleConfig::default()` is a well-behaved Google.
#[derive(Debug, Clone, PartialEq)]
pub struct GoogleConfig {
    /// TCP port on 127.0.0.1; 0 picks a free port.
    pub port: u16,
    /// Oldest Google Ads API version served (`/googleads/v{N}/...`); 22.
    pub min_ads_version: u32,
    /// Newest Google Ads API version served; 26 (the current one when the notes were taken).
    pub max_ads_version: u32,
    /// Plain (non-manager) Google Ads accounts the sandbox user holds directly at start (2).
    pub customers: usize,
    /// Client accounts under the one manager account the user holds at start (3); 0 means no
    /// manager. One more manager (a sub-manager with one client of its own) sits under it when
    /// this is at least 1, so the hierarchy has a level 2 that `level <= 1` leaves out.
    pub manager_clients: usize,
    /// Lifetime of an access token (`expires_in`): Google's is 3599 s.
    pub access_token_ttl: Duration,
    /// How long an authorization code stays exchangeable (10 minutes).
    pub authorization_code_ttl: Duration,
    /// Lifetime of a refresh token; `None` (default) is a published app's, which never expires
    /// by age. An app in "Testing" status with an External consent screen gets 7 days.
    pub refresh_token_ttl: Option<Duration>,
    /// A refresh token unused this long dies (Google: six months).
    pub refresh_token_idle_limit: Duration,
    /// Live refresh tokens one user may hold per OAuth client; issuing one more kills the
    /// oldest (Google: 100).
    pub max_refresh_tokens_per_client: usize,
    /// Rows per `googleAds:search` page (Google: a fixed 10,000). Tests lower it to walk pages.
    pub ads_page_size: usize,
    /// How long a `googleAds:search` page token stays usable (Google: about 2 hours).
    pub ads_page_token_ttl: Duration,
    /// How long an accepted ingest, remove or removeAll request stays `PROCESSING` on the
    /// sandbox clock before its changes apply (default 5 s; Google: wait 30 minutes, up to 48 h).
    pub processing_delay: Duration,
    /// How long after a request finished processing a list's `sizeInfo` and
    /// `matchRatePercentage` follow the new membership (default 5 s; Google: hours).
    pub size_delay: Duration,
    /// The share of accepted contact members the sandbox pretends to match (0..=100, default
    /// 70): it sets `uploadMatchRateRange`, `matchRatePercentage` and the sizes.
    pub match_rate_percent: u8,
    /// The per-Cloud-project Data Manager quotas.
    pub quotas: QuotaLimits,
    /// Whether a 429 carries a `google.rpc.RetryInfo` detail besides the `ErrorInfo` (default
    /// true; Google's documents do not say, see the module docs).
    pub retry_info_on_429: bool,
    /// Faults active from the start; change them later with
    /// [`GoogleHandle::set_faults`](crate::GoogleHandle::set_faults).
    pub faults: GoogleFaults,
}

impl Default for GoogleConfig {
    fn default() -> Self {
        Self {
            port: 0,
            min_ads_version: 22,
            max_ads_version: 26,
            customers: 2,
            manager_clients: 3,
            access_token_ttl: Duration::from_secs(3599),
            authorization_code_ttl: Duration::from_secs(10 * MINUTE),
            refresh_token_ttl: None,
            refresh_token_idle_limit: Duration::from_secs(183 * DAY),
            max_refresh_tokens_per_client: 100,
            ads_page_size: 10_000,
            ads_page_token_ttl: Duration::from_secs(2 * HOUR),
            processing_delay: Duration::from_secs(5),
            size_delay: Duration::from_secs(5),
            match_rate_percent: 70,
            quotas: QuotaLimits::default(),
            retry_info_on_429: true,
            faults: GoogleFaults::default(),
        }
    }
}

/// One quota: requests per minute and per day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests in any 60 s (sliding window).
    pub per_minute: u64,
    /// Requests per Pacific-time day.
    pub per_day: u64,
}

/// The Data Manager API's quotas per Google Cloud project (that is, per OAuth client, across
/// every token it issued). Defaults are Google's published limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaLimits {
    /// IngestionService mutate: ingest, remove, removeAll (300/min, 100,000/day).
    pub ingestion_mutate: Quota,
    /// IngestionService read: requestStatus (300/min, 100,000/day).
    pub ingestion_read: Quota,
    /// Every other service's writes: user list create, update, delete (300/min, 50,000/day).
    pub management_mutate: Quota,
    /// Every other service's reads: user list get and list (300/min, 50,000/day).
    pub management_read: Quota,
}

impl QuotaLimits {
    /// The same limits for every bucket, for tests.
    pub fn uniform(per_minute: u64, per_day: u64) -> Self {
        let quota = Quota { per_minute, per_day };
        Self { ingestion_mutate: quota, ingestion_read: quota, management_mutate: quota, management_read: quota }
    }
}

impl Default for QuotaLimits {
    fn default() -> Self {
        let ingestion = Quota { per_minute: 300, per_day: 100_000 };
        let management = Quota { per_minute: 300, per_day: 50_000 };
        Self {
            ingestion_mutate: ingestion,
            ingestion_read: ingestion,
            management_mutate: management,
            management_read: management,
        }
    }
}

/// Failures injected into Google Ads API and Data Manager API calls (never into the OAuth
/// endpoints or the control API). `GoogleFaults::default()` injects none. Injected failures
/// happen before the call is processed or counted: nothing changes, so a retry is safe.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GoogleFaults {
    /// Probability (0.0..=1.0) that a call is answered 503 UNAVAILABLE.
    pub error_rate: f64,
    /// Added to every call before it is answered.
    pub latency: Duration,
    /// Answer the next calls with a chosen error.
    pub forced: Option<ForcedGoogleErrors>,
}

/// "The next `remaining` calls fail with `fault`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForcedGoogleErrors {
    /// How many more calls fail; counts down to zero, then the fault clears.
    pub remaining: u32,
    /// What they fail with.
    pub fault: GoogleFault,
}

/// An error the sandbox can force, as Google would answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoogleFault {
    /// HTTP 500 INTERNAL.
    Internal,
    /// HTTP 503 UNAVAILABLE.
    Unavailable,
    /// HTTP 504 DEADLINE_EXCEEDED.
    DeadlineExceeded,
    /// HTTP 401 UNAUTHENTICATED, as for an expired access token. The token itself stays
    /// valid; use [`GoogleHandle::expire_access_token`](crate::GoogleHandle::expire_access_token)
    /// to expire it for good.
    TokenExpired,
    /// HTTP 429 RESOURCE_EXHAUSTED on the call's per-minute quota, whatever the counters say
    /// (on the Google Ads API: `quotaError: RESOURCE_TEMPORARILY_EXHAUSTED`).
    QuotaExhausted,
    /// Any other `google.rpc.Status`.
    Custom {
        /// HTTP status.
        http_status: u16,
        /// The canonical code name, e.g. `ABORTED`.
        status: String,
        /// `ErrorInfo.reason`.
        reason: String,
        /// The message.
        message: String,
    },
}
