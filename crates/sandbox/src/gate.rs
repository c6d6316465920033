//! The gate every request passes: injected faults, bearer auth, the per-token rate limit, added
//! latency, and the request log.
//!
//! Doing this in one middleware rather than in each handler keeps the order of checks the same
//! for every endpoint (faults, then auth, then rate limit, as a real edge would), and makes it
//! impossible for a request to escape the log. The decision is taken under the state lock in
//! one step at arrival, so the rate limiter and the log agree on when each request happened.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::RngExt;

use crate::error::{ApiError, LogExtras};
use crate::faults::{self, Injected};
use crate::log::{FaultKind, RequestRecord};
use crate::state::Shared;
use crate::window::SlidingWindow;

/// Pinterest's request-id response header.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-pinterest-rid");

/// The sliding window of the per-token rate limit.
pub(crate) const WINDOW: Duration = Duration::from_millis(1000);

/// Arrival times of the requests each token got admitted, within the last window; and of
/// every request each token sent, admitted or not, to count violations of the limit.
///
/// A *violation* is a request that arrives while its token already had `limit` requests
/// arrive (refused ones included) within the preceding second: a client pacing itself
/// correctly never causes one, whatever the sandbox answered. The 429s only show the requests
/// the sandbox refused, and a refused request does not use up the allowance, so a client
/// that sends too early but gets lucky with the window stays invisible in them; the violation
/// count does not. Pinterest documents its limit per second; the strict reading (any
/// 1,000 ms window, every arrival) is what a client must respect to never be refused.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    windows: SlidingWindow<String>,
    arrivals: SlidingWindow<String>,
    violations: HashMap<String, u64>,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self { windows: SlidingWindow::new(WINDOW), arrivals: SlidingWindow::new(WINDOW), violations: HashMap::new() }
    }
}

impl RateLimiter {
    /// Records that a request by `token` arrived at `now`, whatever it is answered; true (and
    /// counted) when it is a violation: `limit` requests of the token had already arrived
    /// within the preceding second.
    pub fn arrive(&mut self, token: &str, now: Instant, limit: u32) -> bool {
        let token = token.to_owned();
        let violation = self.arrivals.total(&token, now) >= u64::from(limit);
        if violation {
            *self.violations.entry(token.clone()).or_default() += 1;
        }
        self.arrivals.record(token, now, 1);
        violation
    }

    /// Violations so far, over every token.
    pub fn violations(&self) -> u64 {
        self.violations.values().sum()
    }

    /// Violations so far by `token`.
    pub fn violations_of(&self, token: &str) -> u64 {
        self.violations.get(token).copied().unwrap_or(0)
    }

    /// Admits a request by `token` at `now` unless the token already had `limit` admitted
    /// requests in the preceding second. Refused requests do not count against the token.
    pub fn admit(&mut self, token: &str, now: Instant, limit: u32) -> bool {
        let token = token.to_owned();
        if self.windows.total(&token, now) >= u64::from(limit) {
            return false;
        }
        self.windows.record(token, now, 1);
        true
    }
}

/// What kind of endpoint a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// `/v5/...` with bearer auth, needing this scope.
    Api(&'static str),
    /// `/v5/oauth/token[/revoke]`: Basic auth, no bearer.
    Token,
    /// The authorize page: logged, never faulted.
    Authorize,
    /// `/_sandbox/...`: the control plane, neither faulted nor logged.
    Control,
    /// Anything else: logged, answered by the fallback.
    Other,
}

fn classify(method: &Method, path: &str) -> Class {
    if path == "/_sandbox" || path.starts_with("/_sandbox/") {
        Class::Control
    } else if path == "/oauth" || path == "/oauth/" {
        Class::Authorize
    } else if path == "/v5/oauth/token" || path == "/v5/oauth/token/revoke" {
        Class::Token
    } else if path.starts_with("/v5/") {
        if method == Method::GET || method == Method::HEAD { Class::Api("ads:read") } else { Class::Api("ads:write") }
    } else {
        Class::Other
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
}

/// What the gate decided before the handler runs.
enum Decision {
    Proceed,
    Refuse(ApiError, Option<FaultKind>),
    Drop,
}

fn decide(shared: &Shared, class: Class, token: Option<&str>) -> (Duration, Decision, Duration) {
    let mut world = shared.lock();
    let now = Instant::now();
    let at = now.saturating_duration_since(shared.started);
    if !matches!(class, Class::Api(_) | Class::Token) {
        return (at, Decision::Proceed, Duration::ZERO);
    }
    if let (Class::Api(_), Some(limit), Some(token)) = (class, shared.config.rate_limit_per_second, token) {
        world.limiter.arrive(token, now, limit);
    }
    let latency = world.faults.latency;
    let decision = match faults::draw(&mut world.faults) {
        Some(Injected::Drop) => Decision::Drop,
        Some(Injected::Answer(error, kind)) => Decision::Refuse(error, Some(kind)),
        None => match class {
            Class::Api(scope) => match world.oauth.check_bearer(token, scope) {
                Err(error) => Decision::Refuse(error, None),
                Ok(()) => {
                    let admitted = match (shared.config.rate_limit_per_second, token) {
                        (Some(limit), Some(token)) => world.limiter.admit(token, now, limit),
                        _ => true,
                    };
                    if admitted { Decision::Proceed } else { Decision::Refuse(ApiError::rate_limited(None), None) }
                }
            },
            _ => Decision::Proceed,
        },
    };
    (at, decision, latency)
}

/// The middleware wrapped around every route.
pub(crate) async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let class = classify(request.method(), &path);
    if class == Class::Control {
        return next.run(request).await;
    }
    let method = request.method().to_string();
    let token = bearer(request.headers());
    let (at, decision, latency) = decide(&shared, class, token.as_deref());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (mut response, dropped) = match decision {
        Decision::Proceed => (next.run(request).await, false),
        Decision::Refuse(error, fault) => {
            let mut response = error.into_response();
            response.extensions_mut().insert(LogExtras { fault, ..LogExtras::default() });
            (response, false)
        }
        Decision::Drop => (faults::dropped_response(), true),
    };
    let extras = response.extensions_mut().remove::<LogExtras>().unwrap_or_default();
    let record = RequestRecord {
        at,
        access_token: token,
        method,
        path,
        status: if dropped { 0 } else { response.status().as_u16() },
        records: extras.records,
        fault: if dropped { Some(FaultKind::Dropped) } else { extras.fault },
        spec_violations: extras.violations,
    };
    tracing::debug!(
        method = %record.method,
        path = %record.path,
        status = record.status,
        records = ?record.records,
        fault = ?record.fault,
        "sandbox request"
    );
    for violation in &record.spec_violations {
        tracing::warn!(method = %record.method, path = %record.path, "spec violation: {violation}");
    }
    shared.lock().log.push(record);
    // Pinterest tags every answer with a request id that its support asks for; clients log it.
    let rid = format!("{:016x}", rand::rng().random::<u64>());
    if let Ok(value) = HeaderValue::from_str(&rid) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_refuses_the_eighth_request_within_a_second() {
        let mut limiter = RateLimiter::default();
        let start = Instant::now();
        for i in 0..7 {
            assert!(limiter.admit("a", start + Duration::from_millis(i * 10), 7));
        }
        assert!(!limiter.admit("a", start + Duration::from_millis(100), 7));
        assert!(limiter.admit("b", start + Duration::from_millis(100), 7));
        // The first request leaves the window exactly 1,000 ms later.
        assert!(limiter.admit("a", start + Duration::from_millis(1000), 7));
        assert!(!limiter.admit("a", start + Duration::from_millis(1001), 7));
    }

    #[test]
    fn arrivals_beyond_the_limit_within_a_second_are_violations_refused_or_not() {
        let mut limiter = RateLimiter::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        // Seven requests in 600 ms: within the limit.
        for i in 0..7 {
            assert!(!limiter.arrive("a", at(i * 100), 7));
        }
        // The eighth within the same second is a violation, and so is the ninth: a refused
        // request still arrived.
        assert!(limiter.arrive("a", at(700), 7));
        assert!(limiter.arrive("a", at(800), 7));
        assert_eq!(limiter.violations_of("a"), 2);
        // Another token has its own window.
        assert!(!limiter.arrive("b", at(800), 7));
        assert_eq!(limiter.violations_of("b"), 0);
        // At 1,000 ms the arrival at 0 has left, but the 8 at 100..=800 are still within the
        // second; at 1,300 ms those up to 300 have left too and there is room again.
        assert!(limiter.arrive("a", at(1000), 7));
        assert!(!limiter.arrive("a", at(1300), 7));
        assert_eq!(limiter.violations(), 3);
    }

    #[test]
    fn a_request_the_window_admits_still_violates_when_refused_ones_arrived_before_it() {
        let mut limiter = RateLimiter::default();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut send = |ms: u64| (limiter.admit("a", at(ms), 3), limiter.arrive("a", at(ms), 3));
        for ms in [0, 10, 20] {
            assert_eq!(send(ms), (true, false));
        }
        // Too early: refused, and violations.
        assert_eq!(send(500), (false, true));
        assert_eq!(send(600), (false, true));
        // The admitted three have left: the window admits this one, and only the two refused
        // ones arrived within the second before it, so it is no violation.
        assert_eq!(send(1020), (true, false));
        // The next is admitted too (one admitted in the window), yet three arrived within the
        // second before it: a violation the 429s never show.
        assert_eq!(send(1030), (true, true));
        assert_eq!(limiter.violations(), 3);
    }

    #[test]
    fn requests_spaced_exactly_at_the_limit_never_violate() {
        let mut limiter = RateLimiter::default();
        let start = Instant::now();
        // 7 per second, each 1000/7 ms after the previous (rounded up): never 8 in a window.
        for i in 0..70_u64 {
            let at = start + Duration::from_micros(i * 142_858);
            assert!(!limiter.arrive("a", at, 7), "request {i} counted as a violation");
            assert!(limiter.admit("a", at, 7), "request {i} refused");
        }
        assert_eq!(limiter.violations(), 0);
    }

    #[test]
    fn scope_follows_the_method() {
        assert_eq!(classify(&Method::GET, "/v5/ad_accounts"), Class::Api("ads:read"));
        assert_eq!(classify(&Method::PATCH, "/v5/ad_accounts/1/customer_lists/2"), Class::Api("ads:write"));
        assert_eq!(classify(&Method::POST, "/v5/oauth/token"), Class::Token);
        assert_eq!(classify(&Method::GET, "/_sandbox/requests"), Class::Control);
        assert_eq!(classify(&Method::GET, "/oauth/"), Class::Authorize);
    }
}
