//! The Meta request log: one entry per Graph call the stand-in answered (or dropped).
//!
//! Tests prove a plugin's behaviour from the outside: how hard it pushed each ad account (the
//! budget is per account, so the rate is too), how many rows it sent per call, which API
//! version and body encoding it used, and which errors it was given. Refused calls are logged
//! too. Control routes are not.

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::meta::params::BodyFormat;

/// A failure the Meta stand-in injected on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaFaultKind {
    /// An error forced by [`MetaFaults::forced`](crate::meta::MetaFaults::forced).
    Forced,
    /// An HTTP 500 drawn from [`MetaFaults::error_rate`](crate::meta::MetaFaults::error_rate).
    ServerError,
    /// The connection was dropped without a response.
    Dropped,
}

/// One Graph call as the stand-in saw it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetaRequestRecord {
    /// When the call arrived, from sandbox start on the sandbox clock (JSON: `at_ms`).
    #[serde(rename = "at_ms", serialize_with = "as_millis")]
    pub at: Duration,
    /// The access token it carried (parameter or header), if any.
    pub access_token: Option<String>,
    /// The method as Graph understood it (a `POST` with `method=DELETE` is `DELETE`).
    pub method: String,
    /// Request path without the query, e.g. `/v25.0/act_1/customaudiences`.
    pub path: String,
    /// The `N` of `/v{N}.0`; `None` for an unversioned call.
    pub api_version: Option<u32>,
    /// The ad account the call was addressed to (`act_<n>`), directly or through an audience.
    pub ad_account_id: Option<String>,
    /// HTTP status answered; 0 when the connection was dropped.
    pub status: u16,
    /// Graph error `code`, when the call failed.
    pub error_code: Option<i64>,
    /// Graph `error_subcode`, when the error had one.
    pub error_subcode: Option<i64>,
    /// Rows in the `payload` of a `/users` or `/usersreplace` call (when it could be read).
    pub rows: Option<usize>,
    /// How the body was encoded, when there was one.
    pub body_format: Option<BodyFormat>,
    /// The `call_count` reported in `X-Business-Use-Case-Usage`, when one was sent.
    pub call_count: Option<u64>,
    /// The injected fault that decided the answer, if any.
    pub fault: Option<MetaFaultKind>,
}

fn as_millis<S: Serializer>(at: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u64(u64::try_from(at.as_millis()).unwrap_or(u64::MAX))
}

/// The most calls addressed to `account` (`act_<n>`) within any window of length `window`.
pub(crate) fn max_requests_in_window(log: &[MetaRequestRecord], account: &str, window: Duration) -> usize {
    let times = log.iter().filter(|r| r.ad_account_id.as_deref() == Some(account)).map(|r| r.at).collect();
    crate::log::max_in_window(times, window)
}

/// The most rows any single logged call carried.
pub(crate) fn max_rows_per_request(log: &[MetaRequestRecord]) -> usize {
    log.iter().filter_map(|r| r.rows).max().unwrap_or(0)
}

/// How many logged calls failed with `code`.
pub(crate) fn count_error(log: &[MetaRequestRecord], code: i64) -> usize {
    log.iter().filter(|r| r.error_code == Some(code)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(account: &str, ms: u64, rows: Option<usize>, code: Option<i64>) -> MetaRequestRecord {
        MetaRequestRecord {
            at: Duration::from_millis(ms),
            access_token: None,
            method: "POST".to_owned(),
            path: "/v25.0/1/users".to_owned(),
            api_version: Some(25),
            ad_account_id: Some(account.to_owned()),
            status: if code.is_some() { 400 } else { 200 },
            error_code: code,
            error_subcode: None,
            rows,
            body_format: None,
            call_count: None,
            fault: None,
        }
    }

    #[test]
    fn helpers_count_per_account_rows_and_codes() {
        let log = vec![
            record("act_1", 0, Some(10), None),
            record("act_1", 500, Some(10_000), None),
            record("act_2", 600, None, Some(80_003)),
            record("act_1", 1_600, None, Some(80_003)),
        ];
        assert_eq!(max_requests_in_window(&log, "act_1", Duration::from_secs(1)), 2);
        assert_eq!(max_requests_in_window(&log, "act_1", Duration::from_secs(2)), 3);
        assert_eq!(max_requests_in_window(&log, "act_3", Duration::from_secs(2)), 0);
        assert_eq!(max_rows_per_request(&log), 10_000);
        assert_eq!(count_error(&log, 80_003), 2);
    }
}
