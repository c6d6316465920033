//! The request log: one entry per request the sandbox answered (or dropped).
//!
//! Tests prove a plugin's behaviour from the outside: that it never exceeded the per-token
//! rate, never sent more than the per-request record cap, and sent only bodies that match the
//! spec. Refused requests are logged too, because "how hard did the client push" counts every
//! attempt, not just the ones that got through.

use std::time::Duration;

use serde::{Serialize, Serializer};

/// A failure the sandbox injected on purpose (as opposed to one the client caused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A 429 forced by [`Faults::forced_429`](crate::Faults::forced_429).
    Forced429,
    /// A 500 or 503 drawn from [`Faults::error_rate`](crate::Faults::error_rate).
    ServerError,
    /// The connection was dropped without a response ([`Faults::drop_rate`](crate::Faults::drop_rate)).
    Dropped,
}

/// One request as the sandbox saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RequestRecord {
    /// When the request arrived, measured from sandbox start (JSON: `at_ms`).
    #[serde(rename = "at_ms", serialize_with = "as_millis")]
    pub at: Duration,
    /// The bearer token it carried, if any.
    pub access_token: Option<String>,
    /// HTTP method, e.g. `PATCH`.
    pub method: String,
    /// Request path without the query, e.g. `/v5/ad_accounts/1/customer_lists/2`.
    pub path: String,
    /// Status answered; 0 when the connection was dropped without a response.
    pub status: u16,
    /// Records in the body of a customer-list create or update (when the body was read).
    pub records: Option<usize>,
    /// Ways the request broke Pinterest's OpenAPI description; empty when it conformed.
    pub spec_violations: Vec<String>,
    /// The injected fault that decided the answer, if any.
    pub fault: Option<FaultKind>,
}

fn as_millis<S: Serializer>(at: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(at.as_millis()).unwrap_or(u64::MAX))
}

/// The most requests `token` made within any window of length `window`.
pub(crate) fn max_requests_in_window(log: &[RequestRecord], token: &str, window: Duration) -> usize {
    max_in_window(log.iter().filter(|r| r.access_token.as_deref() == Some(token)).map(|r| r.at).collect(), window)
}

/// The most of `times` (any order) that fall within any window of length `window`.
pub(crate) fn max_in_window(mut times: Vec<Duration>, window: Duration) -> usize {
    times.sort_unstable();
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while start <= end && times[end] - times[start] >= window {
            start += 1;
        }
        best = best.max(end + 1 - start);
    }
    best
}

/// The most records any single logged request carried.
pub(crate) fn max_records_per_request(log: &[RequestRecord]) -> usize {
    log.iter().filter_map(|r| r.records).max().unwrap_or(0)
}

/// How many logged requests were answered with `status`.
pub(crate) fn count_status(log: &[RequestRecord], status: u16) -> usize {
    log.iter().filter(|r| r.status == status).count()
}

/// Every violation in the log, each prefixed with the request's method and path.
pub(crate) fn spec_violations(log: &[RequestRecord]) -> Vec<String> {
    log.iter().flat_map(|r| r.spec_violations.iter().map(move |v| format!("{} {}: {v}", r.method, r.path))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(token: &str, ms: u64, status: u16, records: Option<usize>) -> RequestRecord {
        RequestRecord {
            at: Duration::from_millis(ms),
            access_token: Some(token.to_owned()),
            method: "GET".to_owned(),
            path: "/v5/ad_accounts".to_owned(),
            status,
            records,
            spec_violations: Vec::new(),
            fault: None,
        }
    }

    #[test]
    fn window_counts_only_requests_closer_than_the_window() {
        let log: Vec<_> = [0, 100, 200, 999, 1000, 1001, 1500]
            .into_iter()
            .map(|ms| record("a", ms, 200, None))
            .chain([record("b", 10, 200, None)])
            .collect();
        // [100, 1100) holds 100, 200, 999, 1000, 1001; with 900 ms, [200, 1100) holds four.
        assert_eq!(max_requests_in_window(&log, "a", Duration::from_secs(1)), 5);
        assert_eq!(max_requests_in_window(&log, "a", Duration::from_millis(900)), 4);
        assert_eq!(max_requests_in_window(&log, "b", Duration::from_secs(1)), 1);
        assert_eq!(max_requests_in_window(&log, "nobody", Duration::from_secs(1)), 0);
        assert_eq!(max_requests_in_window(&log, "a", Duration::from_secs(10)), 7);
    }

    #[test]
    fn helpers_summarise_records_and_statuses() {
        let log = vec![
            record("a", 0, 200, Some(1900)),
            record("a", 1, 429, None),
            record("a", 2, 400, Some(2000)),
            record("a", 3, 429, None),
        ];
        assert_eq!(max_records_per_request(&log), 2000);
        assert_eq!(count_status(&log, 429), 2);
        assert_eq!(count_status(&log, 500), 0);
    }
}
