//! `check-submission`: how a submitted ingest or remove did, from
//! `GET {dm}/v1/requestStatus:retrieve?requestId=<id>` for each request id of the submission
//! (see [`crate::sync`]). Only GETs: asking twice, or after the host restarted, is harmless.
//!
//! Per request (one destination each, so every status entry is this batch's):
//!
//! | `requestStatus` | answer |
//! |---|---|
//! | `PROCESSING`, `REQUEST_STATUS_UNKNOWN` | `processing(none)`: the host backs off (Google: poll with exponential backoff; processing may take up to 48 hours) |
//! | `SUCCESS` | finished, nothing rejected (warnings are logged) |
//! | `PARTIAL_SUCCESS`, `FAILED` | finished, with one `unattributed` rejection per `errorCounts` reason: Google counts the dropped records but never names them. `FAILED` without counts drops the whole request (its `recordCount`) |
//! | any with `PROCESSING_ERROR_REASON_INTERNAL_ERROR` | `failed(transient)`: Google's failure, not the members'; the host sends the batch again (re-adding or re-removing is harmless) |
//! | no status entries at all (`{}`) | finished, nothing rejected: nothing is left to wait for |
//!
//! A submission of several requests is processing while any is, failed when any failed
//! transiently, else finished with the rejections of all of them added up.
//!
//! **An unknown request id** (`400 INVALID_REQUEST_ID`, or 404): Google does not say how long
//! a request id stays retrievable. A request id exists only because Google accepted the request
//! (it passed validation, and Google's own clients treat that as delivered), so such a
//! submission is **finished with nothing rejected**, and a warning is logged: the members
//! count as synced, and only Google's per-reason diagnostics for them are lost. Sending the
//! batch again instead could loop for as long as ids expire before the host asks.
//!
//! Other failures of the call map as everywhere ([`crate::errors`]): 401 → `unauthorized`,
//! 429 → `rate-limited`, 5xx → `transient`, ...

use audience_plugin_sdk::Host;
use audience_plugin_sdk::build;
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::{
    AudienceTarget, BatchOutcome, Credentials, DestinationError, PluginConfig, SubmissionStatus, UnattributedRejection,
};

use crate::client::Google;
use crate::errors::GoogleError;
use crate::sync::SUBMISSION_SEPARATOR;
use crate::wire::{DestinationStatus, RetrieveResponse};

/// Where one request is.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestState {
    /// Still processing.
    Processing,
    /// Done, with these dropped records.
    Finished(Vec<UnattributedRejection>),
    /// Google failed it on its side; sending it again may work.
    Retry(String),
}

/// Words for a processing error reason.
pub fn reason_words(reason: &str) -> String {
    let short = reason
        .strip_prefix("PROCESSING_ERROR_REASON_")
        .or_else(|| reason.strip_prefix("PROCESSING_ERROR_"))
        .unwrap_or(reason);
    let words = match short {
        "DENIED_CONSENT" => "consent denied: the user or the account's default denied ad user data",
        "NO_CONSENT" => "no consent: the advertiser has not given consent for Google's Ads core platform services",
        "UNKNOWN_CONSENT" => "consent unknown: Google could not determine the user's consent",
        "INVALID_FORMAT" => "a value had an invalid format",
        "INVALID_MOBILE_ID_FORMAT" => "a mobile id had an invalid format",
        "UNSPECIFIED" => "no reason given",
        _ => "",
    };
    if words.is_empty() { format!("Google dropped the record ({reason})") } else { format!("{words} ({reason})") }
}

fn saturating(count: u64) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// The record count of an ingestion or removal status (`{"userDataIngestionStatus": {"recordCount": ..}}`).
fn record_count(entry: &DestinationStatus) -> Option<u64> {
    let status = entry.audience_members_ingestion_status.as_ref().or(entry.audience_members_removal_status.as_ref())?;
    status.as_object()?.values().find_map(|inner| {
        let count = inner.get("recordCount")?;
        count.as_u64().or_else(|| count.as_str()?.parse().ok())
    })
}

/// The match rate range of an ingestion status, when Google reported one.
fn match_rate(entry: &DestinationStatus) -> Option<String> {
    let status = entry.audience_members_ingestion_status.as_ref()?.as_object()?;
    status.values().find_map(|inner| inner.get("uploadMatchRateRange")?.as_str().map(str::to_string))
}

/// The state of one request from its `retrieve` answer.
pub fn request_state(answer: &RetrieveResponse) -> RequestState {
    let mut dropped: Vec<UnattributedRejection> = Vec::new();
    for entry in &answer.request_status_per_destination {
        let status = entry.request_status.as_deref().unwrap_or("REQUEST_STATUS_UNKNOWN");
        match status {
            "SUCCESS" => continue,
            "PARTIAL_SUCCESS" | "FAILED" => {}
            _ => return RequestState::Processing,
        }
        let counts = entry.error_info.as_ref().map(|e| e.error_counts.as_slice()).unwrap_or_default();
        if let Some(internal) =
            counts.iter().find(|c| c.reason.as_deref().is_some_and(|r| r.ends_with("INTERNAL_ERROR")))
        {
            return RequestState::Retry(format!(
                "Google failed {} record(s) of the request with an internal error; sending them again may work",
                internal.record_count.unwrap_or(0)
            ));
        }
        let mut counted = false;
        for count in counts {
            let Some(records) = count.record_count.filter(|n| *n > 0) else { continue };
            counted = true;
            let reason = reason_words(count.reason.as_deref().unwrap_or("PROCESSING_ERROR_REASON_UNSPECIFIED"));
            match dropped.iter_mut().find(|d| d.reason == reason) {
                Some(existing) => existing.count = existing.count.saturating_add(saturating(records)),
                None => dropped.push(build::unattributed(saturating(records), reason, vec![])),
            }
        }
        if status == "FAILED" && !counted {
            match record_count(entry) {
                Some(records) if records > 0 => dropped.push(build::unattributed(
                    saturating(records),
                    "Google failed the whole request without saying why (FAILED)",
                    vec![],
                )),
                _ => return RequestState::Retry("Google failed the request without saying why or how many".into()),
            }
        }
    }
    RequestState::Finished(dropped)
}

/// `check-submission`.
pub fn check_submission(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    target: &AudienceTarget,
    submission_id: &str,
) -> Result<SubmissionStatus, DestinationError> {
    let ids: Vec<&str> = submission_id.split(SUBMISSION_SEPARATOR).map(str::trim).filter(|i| !i.is_empty()).collect();
    if ids.is_empty() {
        return Err(DestinationError::InvalidRequest(format!(
            "'{}' is not a submission id of the Google plugin",
            excerpt(submission_id, 60)
        )));
    }
    let google = Google::new(host, config, creds)?;
    let list = match target {
        AudienceTarget::Existing(id) => excerpt(id, 30),
        AudienceTarget::Create(spec) => excerpt(&spec.name, 60),
    };
    let mut processing = false;
    let mut unattributed: Vec<UnattributedRejection> = Vec::new();
    for id in ids {
        let (call, response) = google.retrieve(id)?;
        if !response.is_success() {
            let google_error = GoogleError::parse(&response.body);
            let unknown = response.status == 404
                || (response.status == 400 && google_error.as_ref().is_some_and(|g| g.has("INVALID_REQUEST_ID")));
            if unknown {
                google.client().log(
                    Level::Warn,
                    &format!(
                        "Google: request {id} (user list {list}) is unknown to requestStatus:retrieve (expired?); it \
                         was accepted when sent, so its members count as delivered without Google's diagnostics"
                    ),
                );
                continue;
            }
            return Err(google.client().failure(&call, &response, None));
        }
        let answer: RetrieveResponse = google.client().decode(&call, &response)?;
        match request_state(&answer) {
            RequestState::Processing => processing = true,
            RequestState::Retry(why) => return Ok(SubmissionStatus::Failed(DestinationError::Transient(why))),
            RequestState::Finished(dropped) => {
                let rate = answer.request_status_per_destination.iter().find_map(match_rate);
                google.client().log(
                    Level::Info,
                    &format!(
                        "Google: request {id} (user list {list}) finished: {} record(s) dropped; match rate {}",
                        dropped.iter().map(|d| u64::from(d.count)).sum::<u64>(),
                        rate.as_deref().unwrap_or("not reported")
                    ),
                );
                for d in dropped {
                    match unattributed.iter_mut().find(|u| u.reason == d.reason) {
                        Some(existing) => existing.count = existing.count.saturating_add(d.count),
                        None => unattributed.push(d),
                    }
                }
            }
        }
    }
    if processing {
        return Ok(SubmissionStatus::Processing(None));
    }
    Ok(SubmissionStatus::Finished(BatchOutcome { rejected: vec![], unattributed, created: None }))
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::testing::{FakeHost, assert_no_secrets_logged, config, creds, fail, ok};

    fn status(status: &str, errors: Value) -> Value {
        json!({"requestStatusPerDestination": [{"destination": {"productDestinationId": "42"},
            "requestStatus": status, "errorInfo": {"errorCounts": errors},
            "audienceMembersIngestionStatus": {"userDataIngestionStatus": {"recordCount": "3",
                "userIdentifierCount": "5", "uploadMatchRateRange": "MATCH_RATE_RANGE_51_TO_60"}}}]})
    }

    fn check(host: &FakeHost, id: &str) -> Result<SubmissionStatus, DestinationError> {
        check_submission(host, &config(), &creds(), &AudienceTarget::Existing("42".into()), id)
    }

    #[test]
    fn statuses() {
        let host = FakeHost::new(vec![
            ok(status("PROCESSING", json!([]))),
            ok(status("SUCCESS", json!([]))),
            ok(status(
                "PARTIAL_SUCCESS",
                json!([
                {"recordCount": "2", "reason": "PROCESSING_ERROR_REASON_DENIED_CONSENT"},
                {"recordCount": 1, "reason": "PROCESSING_ERROR_REASON_INVALID_FORMAT"}]),
            )),
            ok(status("FAILED", json!([{"recordCount": "3", "reason": "PROCESSING_ERROR_REASON_INTERNAL_ERROR"}]))),
            ok(status("FAILED", json!([]))),
            ok(json!({})),
        ]);
        assert_eq!(check(&host, "r1").unwrap(), SubmissionStatus::Processing(None));
        assert!(host.call(0).1.ends_with("/datamanager/v1/requestStatus:retrieve?requestId=r1"));
        assert_eq!(check(&host, "r1").unwrap(), SubmissionStatus::Finished(build::batch_outcome(vec![])));
        match check(&host, "r1").unwrap() {
            SubmissionStatus::Finished(outcome) => {
                assert_eq!(outcome.unattributed.len(), 2);
                assert_eq!(outcome.unattributed[0].count, 2);
                assert!(outcome.unattributed[0].reason.starts_with("consent denied"));
                assert!(outcome.rejected.is_empty());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(check(&host, "r1").unwrap(), SubmissionStatus::Failed(DestinationError::Transient(_))));
        match check(&host, "r1").unwrap() {
            SubmissionStatus::Finished(outcome) => assert_eq!(outcome.unattributed[0].count, 3),
            other => panic!("{other:?}"),
        }
        assert_eq!(check(&host, "r1").unwrap(), SubmissionStatus::Finished(build::batch_outcome(vec![])));
    }

    #[test]
    fn several_requests_add_up() {
        let dropped = |n: u32| json!([{"recordCount": n.to_string(), "reason": "PROCESSING_ERROR_REASON_NO_CONSENT"}]);
        let host =
            FakeHost::new(vec![ok(status("PARTIAL_SUCCESS", dropped(2))), ok(status("PARTIAL_SUCCESS", dropped(5)))]);
        match check(&host, "a,b").unwrap() {
            SubmissionStatus::Finished(outcome) => assert_eq!(outcome.unattributed[0].count, 7),
            other => panic!("{other:?}"),
        }
        let host = FakeHost::new(vec![ok(status("SUCCESS", json!([]))), ok(status("PROCESSING", json!([])))]);
        assert_eq!(check(&host, "a,b").unwrap(), SubmissionStatus::Processing(None));
    }

    #[test]
    fn unknown_ids_and_failures() {
        let host = FakeHost::new(vec![
            fail(400, "INVALID_ARGUMENT", Some("INVALID_REQUEST_ID"), vec![]),
            fail(503, "UNAVAILABLE", None, vec![]),
            fail(401, "UNAUTHENTICATED", None, vec![]),
        ]);
        assert_eq!(check(&host, "gone").unwrap(), SubmissionStatus::Finished(build::batch_outcome(vec![])));
        assert!(matches!(check(&host, "x"), Err(DestinationError::Transient(_))));
        assert!(matches!(check(&host, "x"), Err(DestinationError::Unauthorized(_))));
        assert!(matches!(check(&host, " , "), Err(DestinationError::InvalidRequest(_))));
        assert_no_secrets_logged(&host);
    }
}
