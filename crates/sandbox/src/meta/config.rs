//! Start-up settings and injectable faults of the Meta stand-in.
//!
//! Every number a Meta destination's behaviour depends on (token lifetimes, rows per request,
//! the audience cap, session lifetime, the `custom_audience` call budget) is a field here, so a
//! test can put a plugin under exactly the conditions it wants to prove something about.
//! Defaults follow Meta's documentation as collected in `spec/meta-notes.md`.

use std::time::Duration;

const HOUR: u64 = 60 * 60;
const DAY: u64 = 24 * HOUR;

/// How the Meta stand-in behaves. `MetaConfig::default()` is a well-behaved Marketing API.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaConfig {
    /// TCP port on 127.0.0.1; 0 picks a free port.
    pub port: u16,
    /// Oldest Graph API version served (`/v{N}.0/...`); older ones get code 2635.
    pub min_version: u32,
    /// Newest Graph API version served; newer ones get code 100.
    pub max_version: u32,
    /// Version assumed for unversioned calls and used in printed URLs.
    pub default_version: u32,
    /// How many ad accounts the sandbox user is assigned to at start.
    pub ad_accounts: usize,
    /// Lifetime of a token from the code exchange (`expires_in`); Meta's live "hours".
    pub short_lived_token_ttl: Duration,
    /// Lifetime of a token from `grant_type=fb_exchange_token`; Meta says about 60 days.
    pub long_lived_token_ttl: Duration,
    /// Lifetime of a system-user token; `None` (the default) means it never expires.
    pub system_user_token_ttl: Option<Duration>,
    /// How long an authorization code from the login dialog stays exchangeable.
    pub authorization_code_ttl: Duration,
    /// Permissions granted when the login dialog names none.
    pub default_scopes: Vec<String>,
    /// Most rows one `/users` call may carry (Meta documents 10,000); more is code 100.
    pub max_rows_per_request: usize,
    /// Most customer-file audiences one ad account may hold (Meta documents 500).
    pub max_customer_file_audiences: usize,
    /// When true (default), `/users` calls without a `session` get code 100 (Meta's guide
    /// calls it required; the reference marks it optional). When false, such a call is its own
    /// one-batch session.
    pub require_session: bool,
    /// A session without `last_batch_flag` closes this long after its first batch (90 min).
    pub session_ttl: Duration,
    /// Accepted `/users` changes reach the audience's membership this long after the call
    /// (sandbox clock). Zero (default) applies them at once; Meta takes up to 24 hours.
    pub membership_delay: Duration,
    /// The per-ad-account `custom_audience` Business Use Case budget.
    pub usage: UsageBudget,
    /// The per-ad-account score behind `X-Ad-Account-Usage` (reported, not enforced).
    pub account_score: ScoreBudget,
    /// When set, no page of `/me/adaccounts` or `/customaudiences` holds more than this many
    /// items, whatever `limit` asks: Meta's pages can be short with `next` present.
    pub page_cap: Option<usize>,
    /// When set to N (2 or more), every Nth paged request that has items left answers an
    /// empty page whose `next` repeats the position: Meta's pages can even be empty.
    pub empty_page_every: Option<u32>,
    /// Faults active from the start; change them later with
    /// [`MetaHandle::set_faults`](crate::MetaHandle::set_faults).
    pub faults: MetaFaults,
}

impl Default for MetaConfig {
    fn default() -> Self {
        Self {
            port: 0,
            min_version: 20,
            max_version: 30,
            default_version: 25,
            ad_accounts: 3,
            short_lived_token_ttl: Duration::from_secs(2 * HOUR),
            long_lived_token_ttl: Duration::from_secs(60 * DAY),
            system_user_token_ttl: None,
            authorization_code_ttl: Duration::from_secs(10 * 60),
            default_scopes: ["ads_management", "ads_read", "business_management"].map(str::to_owned).to_vec(),
            max_rows_per_request: 10_000,
            max_customer_file_audiences: 500,
            require_session: true,
            session_ttl: Duration::from_secs(90 * 60),
            membership_delay: Duration::ZERO,
            usage: UsageBudget::default(),
            account_score: ScoreBudget::default(),
            page_cap: None,
            empty_page_every: None,
            faults: MetaFaults::default(),
        }
    }
}

/// The `custom_audience` Business Use Case budget of one ad account: how many calls fit in a
/// rolling window. Meta's Standard tier is `5000 + 40 x active custom audiences` per hour,
/// capped at 700,000, which is the default (a demo never reaches it). Tests use
/// [`UsageBudget::fixed`] to reach it in a handful of calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageBudget {
    /// Calls allowed per window regardless of audiences.
    pub base_calls: u64,
    /// Calls added per audience the account holds.
    pub calls_per_audience: u64,
    /// The budget never exceeds this.
    pub max_calls: u64,
    /// The rolling window.
    pub window: Duration,
}

impl UsageBudget {
    /// Exactly `calls` per `window`, whatever the account holds.
    pub fn fixed(calls: u64, window: Duration) -> Self {
        Self { base_calls: calls, calls_per_audience: 0, max_calls: calls, window }
    }

    /// The budget of an account holding `audiences` audiences (at least one call).
    pub fn calls_for(&self, audiences: usize) -> u64 {
        let audiences = u64::try_from(audiences).unwrap_or(u64::MAX);
        self.base_calls.saturating_add(self.calls_per_audience.saturating_mul(audiences)).min(self.max_calls).max(1)
    }
}

impl Default for UsageBudget {
    fn default() -> Self {
        Self { base_calls: 5_000, calls_per_audience: 40, max_calls: 700_000, window: Duration::from_secs(HOUR) }
    }
}

/// The ad account score behind `X-Ad-Account-Usage`: reads score 1, writes 3, decaying over
/// `window`. The sandbox reports it and never throttles on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreBudget {
    /// The score that is 100 % (`acc_id_util_pct`).
    pub max_score: u64,
    /// How long a call's score counts.
    pub window: Duration,
}

impl Default for ScoreBudget {
    fn default() -> Self {
        Self { max_score: 9_000, window: Duration::from_secs(300) }
    }
}

/// Failures injected into Graph calls (not the login dialog). `MetaFaults::default()` injects
/// none. Injected failures happen before the call is processed: nothing changes, so a retry is
/// always safe.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MetaFaults {
    /// Probability (0.0..=1.0) that a call is answered HTTP 500, code 2 (`is_transient`).
    pub error_rate: f64,
    /// Added to every call before it is answered.
    pub latency: Duration,
    /// Probability (0.0..=1.0) that the connection is dropped without a response.
    pub drop_rate: f64,
    /// Answer the next calls with a chosen error.
    pub forced: Option<ForcedErrors>,
}

/// "The next `remaining` calls fail with `fault`".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForcedErrors {
    /// How many more calls fail; counts down to zero, then the fault clears.
    pub remaining: u32,
    /// What they fail with.
    pub fault: MetaFault,
}

/// An error the sandbox can force, as Meta would answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaFault {
    /// HTTP 500, code 1 "An unknown error occurred".
    Unknown,
    /// HTTP 500, code 2 "An unexpected error has occurred", `is_transient: true`.
    Service,
    /// HTTP 400, code 368: temporarily blocked for policy reasons.
    TemporarilyBlocked,
    /// The given HTTP status (e.g. 502, 503) with a code 2 body, `is_transient: true`.
    HttpStatus(u16),
    /// HTTP 400, code 190 subcode 460, as for a revoked session. The token itself stays valid;
    /// use [`MetaHandle::revoke_token`](crate::MetaHandle::revoke_token) to revoke it for good.
    TokenRevoked,
    /// HTTP 400, code 80003 subcode 2446079: the `custom_audience` budget is exhausted.
    CustomAudienceThrottle,
    /// HTTP 400, code 80004: the ads management budget is exhausted.
    AdsManagementThrottle,
    /// HTTP 400, code 17: user request limit reached.
    UserThrottle,
    /// HTTP 400, code 4: application request limit reached.
    AppThrottle,
    /// Any other error.
    Custom {
        /// HTTP status.
        status: u16,
        /// Graph error `code`.
        code: i64,
        /// Graph `error_subcode`, if any.
        subcode: Option<i64>,
        /// Graph error `message`.
        message: String,
    },
}
