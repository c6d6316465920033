//! Checks on the calls that reach the partner: which audience id the plugin accepts, batch
//! sizes, the mapping of partner answers to `destination-error`, removal, and the other calls'
//! handling of a 5xx.
//!
//! The stand-in answers every request with the current script, so each check scripts one
//! answer, makes one call and looks at the requests that call produced.

use std::collections::HashSet;
use std::time::Duration;

use super::counting::UserCounter;
use super::report::CheckResult;
use super::standin::{RecordedRequest, Script};
use super::suite::{Suite, variant_name};
use audience_runtime::CallError;
use audience_runtime::types::{AudienceTarget, BatchOutcome, DestinationError, Grant, PreparedUser};

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

/// Run the delivery checks with the users `prepare.rs` made ready.
pub async fn run(suite: &mut Suite, users: Result<Vec<PreparedUser>, String>) {
    let audience = match users {
        Err(why) => {
            suite.push(CheckResult::fail("setup.audience-id", format!("not run: {why}")));
            Err(format!("not run: {why}"))
        }
        Ok(users) => find_audience(suite, &users).await.map(|id| (id, users)),
    };
    match audience {
        Ok((audience, users)) => {
            batches(suite, &audience, &users).await;
            errors(suite, &audience, &users[..SMALL_BATCH.min(users.len())]).await;
            remove(suite, &audience, &users[..SMALL_BATCH.min(users.len())]).await;
        }
        Err(why) => {
            for name in NEEDS_AUDIENCE {
                suite.push(CheckResult::fail(name, why.clone()));
            }
        }
    }
    other_calls(suite).await;
}

async fn write(
    suite: &mut Suite,
    remove: bool,
    audience: &str,
    users: &[PreparedUser],
    script: Script,
) -> (Result<BatchOutcome, CallError>, Vec<RecordedRequest>, String) {
    suite.stand_in.script(script);
    let mark = suite.stand_in.request_count();
    let log_mark = suite.logs().len();
    let target = AudienceTarget::Existing(audience.to_string());
    let (config, creds, account) = (&suite.config, &suite.creds, suite.options.account_id.as_str());
    let result = if remove {
        suite.plugin.remove_users(config, creds, account, &target, users.to_vec()).await
    } else {
        suite.plugin.add_users(config, creds, account, &target, users.to_vec()).await
    };
    let requests = suite.stand_in.requests_since(mark);
    suite.stand_in.script(Script::ok());
    let outcome = suite.outcome(&result, log_mark);
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
        let (_, requests, outcome) = write(suite, false, candidate, sample, Script::ok()).await;
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
    let (result, requests, outcome) = write(suite, false, audience, at_limit, Script::ok()).await;
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

    let (result, requests, outcome) = write(suite, false, audience, users, Script::ok()).await;
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
        let (result, requests, outcome) = write(suite, false, audience, users, script).await;
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
    let (result, requests, outcome) = write(suite, true, audience, users, Script::ok()).await;
    let check = if suite.manifest.supports_removal {
        match &result {
            Ok(ok) => CheckResult::from_problems(
                "remove.contract",
                &batch_problems(users, &requests, max, Some(ok)),
                format!("remove-users sent {} request(s) and succeeded", requests.len()),
            ),
            Err(_) => CheckResult::fail(
                "remove.contract",
                format!("the manifest says supports-removal, but remove-users answered 200 {{}} gave {outcome}"),
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
                    "the manifest says no removal, so remove-users must answer invalid-request without a request; \
                     it answered {outcome} after {} request(s)",
                    requests.len()
                ),
            ),
        }
    };
    suite.push(check);
}

async fn other_calls(suite: &mut Suite) {
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    for call in ["authorize", "list-accounts", "upsert-audience"] {
        suite.stand_in.script(Script::status(503));
        let mark = suite.stand_in.request_count();
        let log_mark = suite.logs().len();
        let result: Result<(), CallError> = match call {
            "authorize" => {
                let grant = Grant::Refresh(suite.secrets.refresh_token.clone());
                suite.plugin.authorize(&suite.config, grant).await.map(drop)
            }
            "list-accounts" => suite.plugin.list_accounts(&suite.config, &suite.creds, None).await.map(drop),
            _ => {
                let spec = suite.spec();
                let account = suite.options.account_id.clone();
                suite.plugin.upsert_audience(&suite.config, &suite.creds, &account, &spec).await.map(drop)
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use audience_runtime::types::{Identifier, IdentifierKind, RejectedUser};

    fn users(n: usize) -> Vec<PreparedUser> {
        (0..n)
            .map(|i| PreparedUser {
                key: format!("k{i}"),
                identifiers: vec![Identifier { kind: IdentifierKind::ExternalId, value: format!("value-{i:05}") }],
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
        let ok = BatchOutcome { rejected: vec![], created: None };
        assert!(batch_problems(&users, &[request(&[0, 1]), request(&[2, 3])], 2, Some(&ok)).is_empty());
        let big = batch_problems(&users, &[request(&[0, 1, 2, 3])], 2, Some(&ok));
        assert!(big[0].contains("carried 4 users"), "{big:?}");
        let lost = batch_problems(&users, &[request(&[0, 1])], 2, Some(&ok));
        assert!(lost[0].contains("2 of 4 users"), "{lost:?}");
        let rejected = BatchOutcome {
            rejected: ["k2", "k3"].iter().map(|k| RejectedUser { key: (*k).into(), reason: "no".into() }).collect(),
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
