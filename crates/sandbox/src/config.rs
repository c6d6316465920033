//! Start-up settings and injectable faults.
//!
//! Every number the audience-sync behaviour depends on (rate limit, records per request, token
//! lifetimes) is a field here rather than a constant, because the point of the sandbox is to
//! let a test put a plugin under exactly the conditions it wants to prove something about.
//! Defaults mirror Pinterest's documented behaviour and the project's reference figures
//! (7 requests per second per token, 1,900 records per request).

use std::time::Duration;

/// How the sandbox behaves. `SandboxConfig::default()` is a well-behaved Pinterest.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    /// TCP port on 127.0.0.1; 0 picks a free port.
    pub port: u16,
    /// Requests one access token may have admitted in any 1,000 ms window; the next one gets
    /// 429 (`code` 8). Refused requests do not use up the allowance. `None` disables the limit.
    pub rate_limit_per_second: Option<u32>,
    /// Most records one customer-list create or update may carry; more is refused with 400.
    pub max_records_per_request: usize,
    /// How many ad accounts the sandbox user has access to.
    pub ad_accounts: usize,
    /// Lifetime of an access token (`expires_in`).
    pub access_token_ttl: Duration,
    /// Lifetime of a refresh token (`refresh_token_expires_in`); Pinterest uses 60 days.
    pub refresh_token_ttl: Duration,
    /// How long an authorization code stays exchangeable.
    pub authorization_code_ttl: Duration,
    /// When true, a refresh answers with a new refresh token and invalidates the old one.
    /// When false (default), a refresh answers without `refresh_token`, so a client must keep
    /// the one it has.
    pub rotate_refresh_tokens: bool,
    /// Scopes granted when the authorize request does not name any.
    pub default_scopes: Vec<String>,
    /// Faults active from the start; change them later with
    /// [`SandboxHandle::set_faults`](crate::SandboxHandle::set_faults).
    pub faults: Faults,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        const DAY: u64 = 24 * 60 * 60;
        Self {
            port: 0,
            rate_limit_per_second: Some(7),
            max_records_per_request: 1_900,
            ad_accounts: 3,
            access_token_ttl: Duration::from_secs(30 * DAY),
            refresh_token_ttl: Duration::from_secs(60 * DAY),
            authorization_code_ttl: Duration::from_secs(10 * 60),
            rotate_refresh_tokens: false,
            default_scopes: vec!["ads:read".to_owned(), "ads:write".to_owned()],
            faults: Faults::default(),
        }
    }
}

/// Failures the sandbox injects into `/v5` calls. `Faults::default()` injects none.
///
/// Injected failures happen before the request is processed: a 5xx or dropped request has no
/// effect on lists or audiences, so a retry is always safe to count on.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Faults {
    /// Probability (0.0..=1.0) that a request is answered 500 or 503.
    pub error_rate: f64,
    /// Added to every request before it is answered.
    pub latency: Duration,
    /// Probability (0.0..=1.0) that the connection is dropped without a response.
    pub drop_rate: f64,
    /// Answer the next requests with 429 regardless of the rate limit.
    pub forced_429: Option<Forced429>,
}

/// "The next `remaining` requests get 429", optionally with a `Retry-After` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forced429 {
    /// How many more requests are refused; counts down to zero, then the fault clears.
    pub remaining: u32,
    /// Sent as `Retry-After` (whole seconds, rounded up) when set. Pinterest documents none.
    pub retry_after: Option<Duration>,
}
