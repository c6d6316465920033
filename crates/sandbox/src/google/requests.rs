//! Accepted ingestion requests, their asynchronous processing, and
//! `GET /v1/requestStatus:retrieve?requestId=`.
//!
//! An accepted ingest, remove or removeAll request is `PROCESSING` for
//! [`GoogleConfig::processing_delay`](crate::google::GoogleConfig::processing_delay) on the
//! sandbox clock; then, in the order the requests were accepted, its changes apply to each
//! destination's list and its status becomes final per destination: `SUCCESS` when every
//! record was accepted, `PARTIAL_SUCCESS` when some were, `FAILED` when none were. Records fail
//! processing for two reasons: denied consent (`adUserData` or `adPersonalization`
//! `CONSENT_DENIED`, request default or member override) gives
//! `PROCESSING_ERROR_REASON_DENIED_CONSENT`, and a member carrying an identifier a test marked
//! with [`GoogleHandle::fail_processing_of`](crate::GoogleHandle::fail_processing_of) gets the
//! reason given there (e.g. `PROCESSING_ERROR_REASON_INVALID_FORMAT`). Failed records are
//! counted in `errorInfo.errorCounts` and not applied; `recordCount` counts every record. As at
//! Google, there are no per-member indices, no error or warning info while `PROCESSING`, and a
//! list's sizes follow only `size_delay` after the request finished.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::google::config::GoogleConfig;
use crate::google::errors::GoogleError;
use crate::google::state::GoogleState;

/// What an ingestion request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Ingest,
    Remove,
    RemoveAll,
}

/// The kind of data a request carries (one per request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataKind {
    /// `userData`, bare or inside `compositeData` (`composite`).
    User {
        composite: bool,
    },
    Mobile,
    UserId,
}

/// Identifier counts of one member, by type (email, phone, address).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TypeCounts {
    pub email: u64,
    pub phone: u64,
    pub address: u64,
}

/// One member of an accepted request.
#[derive(Debug, Clone)]
pub(crate) struct PlannedMember {
    /// Identifier keys (see [`members`](crate::google::members)).
    pub identifiers: Vec<String>,
    pub counts: TypeCounts,
    /// Denied consent (ingest only).
    pub denied: bool,
    /// The destination references it is limited to, if any.
    pub references: Option<Vec<String>>,
}

/// One destination of an accepted request.
#[derive(Debug, Clone)]
pub(crate) struct PlannedDestination {
    /// The destination as sent, echoed in the status.
    pub echo: Value,
    pub list: u64,
    pub reference: Option<String>,
}

/// The final status of one destination.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub status: &'static str,
    pub records: u64,
    pub identifiers: u64,
    pub counts: TypeCounts,
    pub errors: BTreeMap<String, u64>,
    pub match_range: &'static str,
}

/// An accepted (not validate-only) ingestion request.
#[derive(Debug, Clone)]
pub(crate) struct IngestionRequest {
    pub operation: Operation,
    pub kind: Option<DataKind>,
    /// When it arrived, on the sandbox clock.
    pub received: Instant,
    pub due: Instant,
    pub destinations: Vec<PlannedDestination>,
    pub members: Vec<PlannedMember>,
    /// `removeAsOfTime` of a removeAll.
    pub remove_before: Option<Instant>,
    /// Per destination, once processed.
    pub outcomes: Option<Vec<Outcome>>,
}

/// The match-rate range of a percentage.
pub(crate) fn match_range(percent: u64) -> &'static str {
    match percent {
        0..20 => "MATCH_RATE_RANGE_LESS_THAN_20",
        20..31 => "MATCH_RATE_RANGE_20_TO_30",
        31..41 => "MATCH_RATE_RANGE_31_TO_40",
        41..51 => "MATCH_RATE_RANGE_41_TO_50",
        51..61 => "MATCH_RATE_RANGE_51_TO_60",
        61..71 => "MATCH_RATE_RANGE_61_TO_70",
        71..81 => "MATCH_RATE_RANGE_71_TO_80",
        81..91 => "MATCH_RATE_RANGE_81_TO_90",
        _ => "MATCH_RATE_RANGE_91_TO_100",
    }
}

/// Applies every request that finished processing by now, in acceptance order, and brings
/// list sizes that are due up to date.
pub(crate) fn settle(world: &mut GoogleState, config: &GoogleConfig) {
    let now = world.clock.now();
    let due: Vec<String> = world
        .request_order
        .iter()
        .filter(|id| world.requests.get(*id).is_some_and(|r| r.outcomes.is_none() && r.due <= now))
        .cloned()
        .collect();
    for id in due {
        let Some(request) = world.requests.get(&id).cloned() else {
            continue;
        };
        let outcomes = process(world, config, &request);
        if let Some(stored) = world.requests.get_mut(&id) {
            stored.outcomes = Some(outcomes);
        }
    }
    let percent = u64::from(config.match_rate_percent.min(100));
    for list in world.user_lists.values_mut() {
        if list.size_due.is_some_and(|at| at <= now) {
            let members = list.members.len() as u64;
            list.reported_size = members * percent / 100;
            list.reported_match_rate = if members > 0 { percent } else { 0 };
            list.size_due = None;
        }
    }
}

fn process(world: &mut GoogleState, config: &GoogleConfig, request: &IngestionRequest) -> Vec<Outcome> {
    let percent = u64::from(config.match_rate_percent.min(100));
    let size_due = request.due + config.size_delay;
    let mut outcomes = Vec::new();
    for destination in &request.destinations {
        let mine: Vec<&PlannedMember> = request
            .members
            .iter()
            .filter(|m| match (&m.references, &destination.reference) {
                (None, _) => true,
                (Some(refs), Some(reference)) => refs.contains(reference),
                (Some(_), None) => false,
            })
            .collect();
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        let mut counts = TypeCounts::default();
        let mut identifiers = 0_u64;
        let mut accepted = 0_u64;
        let failures = world.processing_failures.clone();
        let list = world.user_lists.get_mut(&destination.list);
        let Some(list) = list else {
            // The list was deleted while the request was processing: every record fails.
            let records = mine.len() as u64;
            if records > 0 {
                errors.insert("PROCESSING_ERROR_REASON_INTERNAL_ERROR".to_owned(), records);
            }
            outcomes.push(Outcome {
                status: if records > 0 || request.operation == Operation::RemoveAll { "FAILED" } else { "SUCCESS" },
                records,
                identifiers: 0,
                counts,
                errors,
                match_range: "MATCH_RATE_RANGE_NOT_ELIGIBLE",
            });
            continue;
        };
        if request.operation == Operation::RemoveAll {
            list.members.remove_added_before(request.remove_before.unwrap_or(request.received));
        }
        for member in &mine {
            identifiers += member.identifiers.len() as u64;
            counts.email += member.counts.email;
            counts.phone += member.counts.phone;
            counts.address += member.counts.address;
            let injected = member.identifiers.iter().find_map(|i| failures.get(i)).cloned();
            if request.operation == Operation::Ingest && member.denied {
                *errors.entry("PROCESSING_ERROR_REASON_DENIED_CONSENT".to_owned()).or_default() += 1;
                continue;
            }
            if let Some(reason) = injected {
                *errors.entry(reason).or_default() += 1;
                continue;
            }
            accepted += 1;
            match request.operation {
                Operation::Ingest => list.members.ingest(&member.identifiers, request.received),
                Operation::Remove => {
                    list.members.remove(&member.identifiers);
                }
                Operation::RemoveAll => {}
            }
        }
        list.size_due = Some(list.size_due.map_or(size_due, |at| at.min(size_due)));
        let records = mine.len() as u64;
        let failed: u64 = errors.values().sum();
        let status = if failed == 0 {
            "SUCCESS"
        } else if accepted > 0 {
            "PARTIAL_SUCCESS"
        } else {
            "FAILED"
        };
        let match_range = if accepted > 0 && list.key_type == crate::google::state::UploadKeyType::ContactId {
            match_range(percent)
        } else {
            "MATCH_RATE_RANGE_NOT_ELIGIBLE"
        };
        outcomes.push(Outcome { status, records, identifiers, counts, errors, match_range });
    }
    outcomes
}

fn destination_status(request: &IngestionRequest, index: usize, outcome: Option<&Outcome>) -> Value {
    let mut entry = Map::new();
    let echo = request.destinations.get(index).map(|d| d.echo.clone()).unwrap_or(Value::Null);
    entry.insert("destination".to_owned(), echo);
    let Some(outcome) = outcome else {
        entry.insert("requestStatus".to_owned(), json!("PROCESSING"));
        return Value::Object(entry);
    };
    entry.insert("requestStatus".to_owned(), json!(outcome.status));
    if !outcome.errors.is_empty() {
        let counts: Vec<Value> =
            outcome.errors.iter().map(|(reason, n)| json!({"recordCount": n.to_string(), "reason": reason})).collect();
        entry.insert("errorInfo".to_owned(), json!({ "errorCounts": counts }));
    }
    let records = outcome.records.to_string();
    let identifiers = outcome.identifiers.to_string();
    match (request.operation, request.kind) {
        (Operation::RemoveAll, _) | (_, None) => {
            entry.insert("removeAllAudienceMembersStatus".to_owned(), json!({}));
        }
        (Operation::Ingest, Some(DataKind::User { composite: false })) => {
            entry.insert(
                "audienceMembersIngestionStatus".to_owned(),
                json!({"userDataIngestionStatus": {
                    "recordCount": records,
                    "userIdentifierCount": identifiers,
                    "uploadMatchRateRange": outcome.match_range,
                }}),
            );
        }
        (Operation::Ingest, Some(DataKind::User { composite: true })) => {
            let mut types = Vec::new();
            for (name, count) in [
                ("EMAIL", outcome.counts.email),
                ("PHONE_NUMBER", outcome.counts.phone),
                ("ADDRESS", outcome.counts.address),
            ] {
                if count > 0 {
                    types.push(json!({"type": name, "count": count.to_string()}));
                }
            }
            entry.insert(
                "audienceMembersIngestionStatus".to_owned(),
                json!({"compositeDataIngestionStatus": {
                    "recordCount": records,
                    "dataTypeCounts": types,
                    "uploadMatchRateRange": outcome.match_range,
                }}),
            );
        }
        (Operation::Ingest, Some(DataKind::Mobile)) => {
            entry.insert(
                "audienceMembersIngestionStatus".to_owned(),
                json!({"mobileDataIngestionStatus": {"recordCount": records, "mobileIdCount": identifiers}}),
            );
        }
        (Operation::Ingest, Some(DataKind::UserId)) => {
            entry.insert(
                "audienceMembersIngestionStatus".to_owned(),
                json!({"userIdDataIngestionStatus": {"recordCount": records, "userIdCount": identifiers}}),
            );
        }
        (Operation::Remove, Some(DataKind::User { .. })) => {
            entry.insert(
                "audienceMembersRemovalStatus".to_owned(),
                json!({"userDataRemovalStatus": {"recordCount": records, "userIdentifierCount": identifiers}}),
            );
        }
        (Operation::Remove, Some(DataKind::Mobile)) => {
            entry.insert(
                "audienceMembersRemovalStatus".to_owned(),
                json!({"mobileDataRemovalStatus": {"recordCount": records, "mobileIdCount": identifiers}}),
            );
        }
        (Operation::Remove, Some(DataKind::UserId)) => {
            entry.insert(
                "audienceMembersRemovalStatus".to_owned(),
                json!({"userIdDataRemovalStatus": {"recordCount": records, "userIdCount": identifiers}}),
            );
        }
    }
    Value::Object(entry)
}

/// `GET /v1/requestStatus:retrieve?requestId=`.
pub(crate) fn retrieve(world: &GoogleState, request_id: Option<&str>) -> Result<Value, GoogleError> {
    let Some(id) = request_id.filter(|id| !id.is_empty()) else {
        return Err(GoogleError::invalid_field("request_id", "REQUIRED_FIELD_MISSING", "requestId is required."));
    };
    let request = world.requests.get(id).ok_or_else(|| GoogleError::invalid_request_id(id))?;
    let statuses: Vec<Value> = (0..request.destinations.len())
        .map(|i| destination_status(request, i, request.outcomes.as_ref().and_then(|o| o.get(i))))
        .collect();
    Ok(json!({ "requestStatusPerDestination": statuses }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn match_ranges_follow_the_proto_intervals() {
        assert_eq!(match_range(0), "MATCH_RATE_RANGE_LESS_THAN_20");
        assert_eq!(match_range(20), "MATCH_RATE_RANGE_20_TO_30");
        assert_eq!(match_range(30), "MATCH_RATE_RANGE_20_TO_30");
        assert_eq!(match_range(31), "MATCH_RATE_RANGE_31_TO_40");
        assert_eq!(match_range(70), "MATCH_RATE_RANGE_61_TO_70");
        assert_eq!(match_range(100), "MATCH_RATE_RANGE_91_TO_100");
    }
}
