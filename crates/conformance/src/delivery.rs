//! Checks on the calls that reach the partner: which audience id the plugin accepts, batch
//! sizes, the mapping of partner answers to `destination-error`, removal, the other calls'
//! handling of a 5xx, and the accounting of rejected users.
//!
//! The stand-in answers every request with the current script, so each check scripts one
//! answer, makes one call and looks at the requests that call produced. Writes go through
//! [`writes::write`](super::writes::write): batch ids as the host makes them, and a write that
//! answers `submitted` followed to its end (the check sees the end result).

use std::collections::HashSet;
use std::time::Duration;

use super::counting::UserCounter;
use super::report::CheckResult;
use super::standin::{RecordedRequest, Script};
use super::suite::{Suite, variant_name};
use super::writes::{Op, Written, write};
use audience_runtime::CallError;
use audience_runtime::types::{AudienceTarget, BatchOutcome, DestinationError, Features, Grant, PreparedUser};

/// The audience ids tried, in order, when none is given: an opaque name, a numeric partner id,
/// and the `<number>:<number>:<KIND>` composite of plugins that pack several partner ids into
/// one (the Pinterest plugin). The first for which `add-users` sends a request is used.
pub const AUDIENCE_ID_CANDIDATES: &[&str] = &["conformance-audience", "1000000001", "1000000001:1000000002:EMAIL"];

/// Users in each error-mapping call.
const SMALL_BATCH: usize = 3;

/// The checks that need an audience id and well-formed users; reported failed when those are
/// missing, so a report always lists the whole suite.
const NEEDS_AUDIENCE: &[&str] = &[
    "batch.at-limit",
    "batch.over-limit",
    "errors.401",
    "errors.403",
    "errors.404",
    "errors.429-retry-after",
    "errors.429",
    "errors.500",
    "errors.502",
    "errors.503",
    "errors.timeout",
    "errors.400",
    "remove.contract",
];

/// Run the delivery checks with the users `prepare.rs` made ready; returns those users for
/// the checks that follow (`None` when there were none). The audience id found is kept in
/// `suite.audience_id`.
pub async fn run(suite: &mut Suite, users: Result<Vec<PreparedUser>, String>) -> Option<Vec<PreparedUser>> {
    let users = match users {
        Err(why) => {
            suite.push(CheckResult::fail("setup.audience-id", format!("not run: {why}")));
            fail_needing_audience(suite, &format!("not run: {why}"));
            return None;
        }
        Ok(users) => users,
    };
    match find_audience(suite, &users).await {
        Ok(audience) => {
            suite.audience_id = Some(audience.clone());
            batches(suite, &audience, &users).await;
            errors(suite, &audience, &users[..SMALL_BATCH.min(users.len())]).await;
            remove(suite, &audience, &users[..SMALL_BATCH.min(users.len())]).await;
        }
        Err(why) => fail_needing_audience(suite, &why),
    }
    Some(users)
}

fn fail_needing_audience(suite: &mut Suite, why: &str) {
    for name in NEEDS_AUDIENCE {
        suite.push(CheckResult::fail(name, why));
    }
}

/// A write of `users` to the existing audience `audience` (see [`super::writes::write`]).
async fn write_to(
    suite: &mut Suite,
    during: &str,
    op: Op,
    audience: &str,
    users: &[PreparedUser],
    script: Script,
) -> (Result<BatchOutcome, CallError>, Vec<RecordedRequest>, String) {
    let target = AudienceTarget::Existing(audience.to_string());
    let Written { result, requests, outcome } = write(suite, during, op, &target, users, script).await;
    (result, requests, outcome)
}

/// Find the audience id to use: the configured one, else the first candidate the plugin sends
/// a request for.
async fn find_audience(suite: &mut Suite, users: &[PreparedUser]) -> Result<String, String> {
    let sample = &users[..SMALL_BATCH.min(users.len())];
    let candidates: Vec<String> = match &suite.options.audience_id {
        Some(id) => vec![id.clone()],
        None => AUDIENCE_ID_CANDIDATES.iter().map(|s| s.to_string()).collect(),
    };
    let mut answers = Vec::new();
    for candidate in &candidates {
        let (_, requests, outcome) =
            write_to(suite, "setup.audience-id", Op::Add, candidate, sample, Script::ok()).await;
        if !requests.is_empty() {
            let how = if suite.options.audience_id.is_some() {
                "as configured"
            } else {
                "the first candidate it sent a request for"
            };
            suite.push(CheckResult::pass("setup.audience-id", format!("using audience id {candidate:?} ({how})")));
            return Ok(candidate.clone());
        }
        answers.push(format!("{candidate:?} → {outcome} without a request"));
    }
    let why = format!(
        "add-users sent no request for any audience id tried ({}); pass one in the plugin's own format with \
         --audience-id",
        answers.join("; ")
    );
    suite.push(CheckResult::fail("setup.audience-id", why));
    Err("not run: no audience id the plugin sends requests for (see setup.audience-id)".into())
}

/// Problems with the requests sent for `users`: any request over `max` users, users neither
/// sent nor reported rejected (when `outcome` is given), nothing countable.
fn batch_problems(
    users: &[PreparedUser],
    requests: &[RecordedRequest],
    max: usize,
    outcome: Option<&BatchOutcome>,
) -> Vec<String> {
    let counter = UserCounter::new(users);
    let mut problems = Vec::new();
    let mut seen: HashSet<usize> = HashSet::new();
    for (i, request) in requests.iter().enumerate() {
        let found = counter.users_in(request);
        if found.len() > max {
            problems.push(format!(
                "request {} ({} {}) carried {} users, more than the declared max-batch-size of {max}",
                i + 1,
                request.method,
                request.path,
                found.len()
            ));
        }
        seen.extend(found);
    }
    if !requests.is_empty() && seen.is_empty() {
        problems.push(format!(
            "no user's prepared identifier value was found in the {} request(s) sent; the suite counts users by \
             their prepared values, which must appear verbatim in the body or URL",
            requests.len()
        ));
    } else if let Some(outcome) = outcome {
        let rejected: HashSet<&str> = outcome.rejected.iter().map(|r| r.key.as_str()).collect();
        let missing =
            users.iter().enumerate().filter(|(i, u)| !seen.contains(i) && !rejected.contains(u.key.as_str())).count();
        if missing > 0 {
            problems.push(format!(
                "{missing} of {} users were neither sent nor reported in batch-outcome.rejected",
                users.len()
            ));
        }
    }
    problems
}

async fn batches(suite: &mut Suite, audience: &str, users: &[PreparedUser]) {
    let max = suite.manifest.limits.max_batch_size as usize;
    let at_limit = &users[..max.min(users.len())];
    let (result, requests, outcome) =
        write_to(suite, "batch.at-limit", Op::Add, audience, at_limit, Script::ok()).await;
    let check = match &result {
        Ok(ok) => CheckResult::from_problems(
            "batch.at-limit",
            &batch_problems(at_limit, &requests, max, Some(ok)),
            format!("{max} users sent in {} request(s) of at most {max} users, none lost", requests.len()),
        ),
        Err(_) => CheckResult::fail(
            "batch.at-limit",
            format!("a batch of exactly max-batch-size ({max}) users answered 200 {{}} failed with {outcome}"),
        ),
    };
    suite.push(check);

    let (result, requests, outcome) = write_to(suite, "batch.over-limit", Op::Add, audience, users, Script::ok()).await;
    let over = users.len();
    let check = match &result {
        Ok(ok) => CheckResult::from_problems(
            "batch.over-limit",
            &batch_problems(users, &requests, max, Some(ok)),
            format!("{over} users (twice the limit) were split into {} request(s) of at most {max}", requests.len()),
        ),
        Err(CallError::Destination(DestinationError::InvalidRequest(_))) => CheckResult::from_problems(
            "batch.over-limit",
            &batch_problems(users, &requests, max, None),
            format!("{over} users (twice the limit) were refused with invalid-request"),
        ),
        Err(_) => CheckResult::fail(
            "batch.over-limit",
            format!(
                "{over} users (twice max-batch-size {max}) gave {outcome}; split the batch or refuse it with \
                 invalid-request"
            ),
        ),
    };
    suite.push(check);
}

/// What a scripted answer must map to.
#[derive(Debug, Clone, Copy)]
enum Expected {
    Unauthorized,
    NotFound,
    RateLimited(Option<u32>),
    Transient,
    InvalidRequest,
}

impl Expected {
    fn matches(self, err: &DestinationError) -> bool {
        match (self, err) {
            (Self::Unauthorized, DestinationError::Unauthorized(_))
            | (Self::NotFound, DestinationError::NotFound(_))
            | (Self::Transient, DestinationError::Transient(_))
            | (Self::InvalidRequest, DestinationError::InvalidRequest(_)) => true,
            (Self::RateLimited(want), DestinationError::RateLimited(got)) => want == *got,
            _ => false,
        }
    }

    fn name(self) -> String {
        match self {
            Self::Unauthorized => "unauthorized".into(),
            Self::NotFound => "not-found".into(),
            Self::RateLimited(ms) => variant_name(&DestinationError::RateLimited(ms)),
            Self::Transient => "transient".into(),
            Self::InvalidRequest => "invalid-request".into(),
        }
    }
}

async fn errors(suite: &mut Suite, audience: &str, users: &[PreparedUser]) {
    let slow = suite.options.http_timeout + Duration::from_secs(2);
    let cases: [(&str, &str, Script, Expected); 10] = [
        ("errors.401", "HTTP 401", Script::status(401), Expected::Unauthorized),
        ("errors.403", "HTTP 403", Script::status(403), Expected::Unauthorized),
        ("errors.404", "HTTP 404", Script::status(404), Expected::NotFound),
        (
            "errors.429-retry-after",
            "HTTP 429 with Retry-After: 7",
            Script::status(429).with_header("retry-after", "7"),
            Expected::RateLimited(Some(7000)),
        ),
        ("errors.429", "HTTP 429 without Retry-After", Script::status(429), Expected::RateLimited(None)),
        ("errors.500", "HTTP 500", Script::status(500), Expected::Transient),
        ("errors.502", "HTTP 502", Script::status(502), Expected::Transient),
        ("errors.503", "HTTP 503", Script::status(503), Expected::Transient),
        ("errors.timeout", "no answer within the HTTP timeout", Script::ok().delayed(slow), Expected::Transient),
        ("errors.400", "HTTP 400", Script::status(400), Expected::InvalidRequest),
    ];
    for (name, what, script, expected) in cases {
        let (result, requests, outcome) = write_to(suite, name, Op::Add, audience, users, script).await;
        let check = if requests.is_empty() {
            CheckResult::fail(
                name,
                format!("add-users sent no request (it answered {outcome}), so {what} was never seen"),
            )
        } else {
            match &result {
                Err(CallError::Destination(err)) if expected.matches(err) => {
                    CheckResult::pass(name, format!("{what} → {}", expected.name()))
                }
                _ => CheckResult::fail(
                    name,
                    format!("{what} must map to {}, but add-users answered {outcome}", expected.name()),
                ),
            }
        };
        suite.push(check);
    }
}

async fn remove(suite: &mut Suite, audience: &str, users: &[PreparedUser]) {
    let max = suite.manifest.limits.max_batch_size as usize;
    let (result, requests, outcome) =
        write_to(suite, "remove.contract", Op::Remove, audience, users, Script::ok()).await;
    let check = if suite.declares(Features::REMOVAL) {
        match &result {
            Ok(ok) => CheckResult::from_problems(
                "remove.contract",
                &batch_problems(users, &requests, max, Some(ok)),
                format!("remove-users sent {} request(s) and succeeded", requests.len()),
            ),
            Err(_) => CheckResult::fail(
                "remove.contract",
                format!("the manifest declares removal, but remove-users answered 200 {{}} gave {outcome}"),
            ),
        }
    } else {
        match &result {
            Err(CallError::Destination(DestinationError::InvalidRequest(_))) if requests.is_empty() => {
                CheckResult::pass("remove.contract", "removal unsupported: invalid-request without a request")
            }
            _ => CheckResult::fail(
                "remove.contract",
                format!(
                    "the manifest does not declare removal, so remove-users must answer invalid-request without a \
                     request; \
                     it answered {outcome} after {} request(s)",
                    requests.len()
                ),
            ),
        }
    };
    suite.push(check);
}

/// `errors.other-calls`: the calls other than the writes, answered 503, either answer locally
/// or map it to `transient`; none crashes. Since 0.2.0 that includes `search-audiences`,
/// `read-audience` (of the audience `setup.audience-id` found) and `check-target`.
pub async fn other_calls(suite: &mut Suite) {
    let mut calls = vec!["authorize", "list-accounts", "upsert-audience"];
    if !suite.is_v0_1_0() {
        calls.extend(["search-audiences", "read-audience", "check-target"]);
    }
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let audience = suite.audience_id.clone().unwrap_or_else(|| super::AUDIENCE_ID_CANDIDATES[0].to_string());
    for call in calls {
        suite.stand_in.script(Script::status(503));
        let mark = suite.stand_in.request_count();
        let log_mark = suite.logs().len();
        let (config, creds, account) = (&suite.config, &suite.creds, suite.options.account_id.as_str());
        let plugin = &suite.plugin;
        let result: Result<(), CallError> = match call {
            "authorize" => plugin.authorize(config, Grant::Refresh(creds.clone())).await.map(drop),
            "list-accounts" => plugin.list_accounts(config, creds, None).await.map(drop),
            "search-audiences" => plugin.search_audiences(config, creds, account, "", None).await.map(drop),
            "read-audience" => plugin.read_audience(config, creds, account, &audience).await.map(drop),
            "check-target" => plugin.check_target(config, creds, account, &suite.spec()).await.map(drop),
            _ => plugin.upsert_audience(config, creds, account, &suite.spec()).await.map(drop),
        };
        let sent = suite.stand_in.requests_since(mark).len();
        let outcome = suite.outcome(&result, log_mark);
        match &result {
            Err(CallError::Plugin(_)) => problems.push(format!("{call}: {outcome}")),
            Err(CallError::Destination(DestinationError::Transient(_))) if sent > 0 => {
                notes.push(format!("{call} → transient"))
            }
            _ if sent > 0 => {
                problems.push(format!("{call}: HTTP 503 must map to transient, but it answered {outcome}"))
            }
            _ => notes.push(format!("{call} answered locally")),
        }
    }
    suite.stand_in.script(Script::ok());
    suite.push(CheckResult::from_problems("errors.other-calls", &problems, format!("HTTP 503: {}", notes.join(", "))));
}

/// `batch.rejections`, over every outcome of the run: a rejected user is a user of its batch,
/// rejected once; rejected users and `unattributed` rows together never exceed the batch.
pub fn rejections(suite: &mut Suite) {
    let problems = suite.rejection_problems.clone();
    let seen = suite.outcomes_seen;
    suite.push(CheckResult::from_problems(
        "batch.rejections",
        &problems,
        format!(
            "{seen} batch outcome(s): every rejected user was in its batch, once, and rejected users plus \
             unattributed rows never exceeded the batch"
        ),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use audience_runtime::types::{Identifier, RejectedUser};

    fn users(n: usize) -> Vec<PreparedUser> {
        (0..n)
            .map(|i| PreparedUser {
                key: format!("k{i}"),
                identifiers: vec![Identifier { kind: "external-id".into(), value: format!("value-{i:05}") }],
                consent: None,
            })
            .collect()
    }

    fn request(values: &[usize]) -> RecordedRequest {
        let body: Vec<String> = values.iter().map(|i| format!("value-{i:05}")).collect();
        RecordedRequest { method: "POST".into(), path: "/b".into(), headers: vec![], body: body.join(",").into_bytes() }
    }

    #[test]
    fn oversized_requests_and_lost_users_are_reported() {
        let users = users(4);
        let ok = BatchOutcome { rejected: vec![], unattributed: vec![], created: None };
        assert!(batch_problems(&users, &[request(&[0, 1]), request(&[2, 3])], 2, Some(&ok)).is_empty());
        let big = batch_problems(&users, &[request(&[0, 1, 2, 3])], 2, Some(&ok));
        assert!(big[0].contains("carried 4 users"), "{big:?}");
        let lost = batch_problems(&users, &[request(&[0, 1])], 2, Some(&ok));
        assert!(lost[0].contains("2 of 4 users"), "{lost:?}");
        let rejected = BatchOutcome {
            rejected: ["k2", "k3"].iter().map(|k| RejectedUser { key: (*k).into(), reason: "no".into() }).collect(),
            unattributed: vec![],
            created: None,
        };
        assert!(batch_problems(&users, &[request(&[0, 1])], 2, Some(&rejected)).is_empty());
        let opaque = RecordedRequest { method: "POST".into(), path: "/".into(), headers: vec![], body: b"gz".to_vec() };
        assert!(batch_problems(&users, &[opaque], 2, Some(&ok))[0].contains("verbatim"));
    }

    #[test]
    fn expectations() {
        assert!(Expected::RateLimited(Some(7000)).matches(&DestinationError::RateLimited(Some(7000))));
        assert!(!Expected::RateLimited(None).matches(&DestinationError::RateLimited(Some(1000))));
        assert!(!Expected::NotFound.matches(&DestinationError::Transient("x".into())));
        assert_eq!(Expected::RateLimited(Some(7000)).name(), "rate-limited(7000 ms)");
    }
}
