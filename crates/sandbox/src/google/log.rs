//! The Google request log: one entry per OAuth, Google Ads API or Data Manager API call the
//! stand-in answered. Control routes are not logged.
//!
//! Tests prove a plugin's behaviour from the outside: which quota bucket each call fell in
//! and how hard the plugin pushed it, how many members it put in each request, which errors it
//! was given (by `ErrorInfo` reason or Google Ads error code) and under which request id.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::google::quota::QuotaBucket;

/// Which of Google's hosts a call went to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GoogleApiKind {
    /// `accounts.google.com` and `oauth2.googleapis.com`.
    OAuth,
    /// `googleads.googleapis.com`.
    Ads,
    /// `datamanager.googleapis.com`.
    DataManager,
}

/// A failure the Google stand-in injected on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GoogleFaultKind {
    /// An error forced by [`GoogleFaults::forced`](crate::google::GoogleFaults::forced).
    Forced,
    /// A 503 drawn from [`GoogleFaults::error_rate`](crate::google::GoogleFaults::error_rate).
    ServerError,
}

/// One call as the stand-in saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GoogleRequestRecord {
    /// When the call arrived, from sandbox start on the sandbox clock (JSON: `at_ms`).
    #[serde(rename = "at_ms", serialize_with = "as_millis")]
    pub at: Duration,
    /// Which host.
    pub api: GoogleApiKind,
    /// HTTP method.
    pub method: String,
    /// Path without the query, as Google would see it (the sandbox prefix removed), e.g.
    /// `/v1/audienceMembers:ingest`.
    pub path: String,
    /// The bearer token it carried, if any.
    pub access_token: Option<String>,
    /// The OAuth client (Cloud project) of that token, when it was valid.
    pub client_id: Option<String>,
    /// The Data Manager quota bucket the call belongs to, if any.
    pub bucket: Option<QuotaBucket>,
    /// HTTP status answered.
    pub status: u16,
    /// `ErrorInfo.reason`, Google Ads error code or OAuth `error`, when the call failed.
    pub error_reason: Option<String>,
    /// The request id answered (success or failure), when there was one.
    pub request_id: Option<String>,
    /// Audience members in an ingest or remove body (when it could be read).
    pub members: Option<usize>,
    /// The injected fault that decided the answer, if any.
    pub fault: Option<GoogleFaultKind>,
}

fn as_millis<S: Serializer>(at: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(at.as_millis()).unwrap_or(u64::MAX))
}

/// The most calls of `bucket` (refused ones included) within any `window`.
pub(crate) fn max_requests_in_window(log: &[GoogleRequestRecord], bucket: QuotaBucket, window: Duration) -> usize {
    let times = log.iter().filter(|r| r.bucket == Some(bucket)).map(|r| r.at).collect();
    crate::log::max_in_window(times, window)
}

/// The most members any single logged call carried.
pub(crate) fn max_members_per_request(log: &[GoogleRequestRecord]) -> usize {
    log.iter().filter_map(|r| r.members).max().unwrap_or(0)
}

/// How many logged calls failed with `reason`.
pub(crate) fn count_reason(log: &[GoogleRequestRecord], reason: &str) -> usize {
    log.iter().filter(|r| r.error_reason.as_deref() == Some(reason)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        ms: u64,
        bucket: Option<QuotaBucket>,
        members: Option<usize>,
        reason: Option<&str>,
    ) -> GoogleRequestRecord {
        GoogleRequestRecord {
            at: Duration::from_millis(ms),
            api: GoogleApiKind::DataManager,
            method: "POST".to_owned(),
            path: "/v1/audienceMembers:ingest".to_owned(),
            access_token: None,
            client_id: None,
            bucket,
            status: if reason.is_some() { 429 } else { 200 },
            error_reason: reason.map(str::to_owned),
            request_id: None,
            members,
            fault: None,
        }
    }

    #[test]
    fn helpers_count_per_bucket_members_and_reasons() {
        let mutate = Some(QuotaBucket::IngestionMutate);
        let log = vec![
            record(0, mutate, Some(10), None),
            record(30_000, mutate, Some(10_000), None),
            record(59_000, mutate, None, Some("RATE_LIMIT_EXCEEDED")),
            record(61_000, Some(QuotaBucket::IngestionRead), None, None),
        ];
        assert_eq!(max_requests_in_window(&log, QuotaBucket::IngestionMutate, Duration::from_secs(60)), 3);
        assert_eq!(max_requests_in_window(&log, QuotaBucket::IngestionRead, Duration::from_secs(60)), 1);
        assert_eq!(max_members_per_request(&log), 10_000);
        assert_eq!(count_reason(&log, "RATE_LIMIT_EXCEEDED"), 1);
    }
}
