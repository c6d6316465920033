//! Checks on asynchronous outcomes (contract 0.2.0): a write may answer `submitted` when the
//! partner finishes the batch later, and `check-submission` then says how it is doing.
//!
//! - `async.submission-limit` writes two batches (different users) to the audience of
//!   `setup.audience-id` the way the host does under the plugin's
//!   `limits.max-submissions-per-audience`. With 1 (a partner that runs one job at a time per
//!   audience, like the Google Ads API's offline user data jobs), the suite **does not send the
//!   second batch before `check-submission` said the first finished**; with 0 (no limit) or
//!   more, it sends the second while the first is outstanding, and the two must get different
//!   submission ids. Both must finish (`finished`) within the polling bounds of `writes.rs`,
//!   and a second batch the limit allows must not be refused.
//! - `async.submissions` looks back over every write of the run: each that answered
//!   `submitted` reached `finished` or `failed` within the bounds, and a finished one asked
//!   about once more answers `finished` again with the same rejected users (the host asks
//!   twice after a restart, so asking twice must be harmless); a plugin without the
//!   `asynchronous` feature never answers `submitted`, and its `check-submission` answers
//!   `invalid-request`.
//!
//! The stand-in answers `200 {}` to the requests of `check-submission` too: an asynchronous
//! plugin must read that as its job having finished.

use super::report::CheckResult;
use super::standin::Script;
use super::suite::Suite;
use super::writes::{MAX_POLLS, Op, follow, observe, send, write};
use audience_runtime::CallError;
use audience_runtime::types::{AudienceTarget, BatchOutcome, DestinationError, Features, PreparedUser, WriteOutcome};

/// Users in each batch of `async.submission-limit`.
const BATCH: usize = 3;

/// `async.submission-limit` (see the module documentation); `users` are the delivery users.
pub async fn submission_limit(suite: &mut Suite, users: Option<&[PreparedUser]>) {
    const NAME: &str = "async.submission-limit";
    if suite.skip_for_v0_1_0(NAME) {
        return;
    }
    let limit = suite.manifest.limits.max_submissions_per_audience;
    if !suite.declares(Features::ASYNCHRONOUS) {
        let note =
            if limit > 0 { format!("; max-submissions-per-audience {limit} has no effect") } else { String::new() };
        suite.push(CheckResult::pass(NAME, format!("no asynchronous feature: every write answers done{note}")));
        return;
    }
    let (Some(audience), Some(users)) = (suite.audience_id.clone(), users) else {
        suite.push(CheckResult::fail(
            NAME,
            "not run: no audience id the plugin sends requests for (see setup.audience-id)",
        ));
        return;
    };
    let half = (users.len() / 2).clamp(1, BATCH);
    let (first, second) = (&users[..half], &users[half..(2 * half).min(users.len())]);
    let target = AudienceTarget::Existing(audience);
    let check = two_batches(suite, &target, first, second, limit).await;
    suite.push(check);
}

async fn two_batches(
    suite: &mut Suite,
    target: &AudienceTarget,
    first: &[PreparedUser],
    second: &[PreparedUser],
    limit: u32,
) -> CheckResult {
    const NAME: &str = "async.submission-limit";
    suite.stand_in.script(Script::ok());
    let log_mark = suite.logs().len();
    let batch = suite.batch(Op::Add, first);
    let sent = send(suite, Op::Add, target, batch).await;
    let submission = match sent {
        Err(err) => {
            let outcome = suite.outcome(&Err::<(), _>(err), log_mark);
            return CheckResult::fail(
                NAME,
                format!("a first batch of {} users, answered 200 {{}}, gave {outcome}", first.len()),
            );
        }
        Ok(WriteOutcome::Done(outcome)) => {
            observe(suite, first, &Ok(outcome));
            let next = write(suite, NAME, Op::Add, target, second, Script::ok()).await;
            return match next.result {
                Ok(_) => CheckResult::pass(
                    NAME,
                    "add-users answered done against the stand-in: no submission to hold the next batch for; a second \
                     batch was accepted too",
                ),
                Err(_) => CheckResult::fail(NAME, format!("a second batch, answered 200 {{}}, gave {}", next.outcome)),
            };
        }
        Ok(WriteOutcome::Submitted(submission)) => submission,
    };
    let mut problems = Vec::new();
    if limit == 1 {
        // One job at a time: hold the second batch until the first finished, as the host does.
        let result = follow(suite, NAME, target, &submission, first.len()).await;
        finish(suite, "first", result, first, &mut problems);
        let next = write(suite, NAME, Op::Add, target, second, Script::ok()).await;
        if next.result.is_err() {
            problems.push(format!("the second batch, sent after the first finished, did not finish: {}", next.outcome));
        }
        return CheckResult::from_problems(
            NAME,
            &problems,
            "max-submissions-per-audience 1 (one job at a time): the suite sent the second batch only after \
             check-submission said the first had finished, as the host does; both finished",
        );
    }
    let log_mark = suite.logs().len();
    let batch = suite.batch(Op::Add, second);
    let allowed = if limit == 0 { "no limit".to_string() } else { format!("a limit of {limit}") };
    match send(suite, Op::Add, target, batch).await {
        Ok(WriteOutcome::Submitted(other)) => {
            if other.id == submission.id {
                problems.push(format!(
                    "two batches outstanding at once got the same submission id {:?}: the host could not tell them \
                     apart",
                    other.id
                ));
            }
            let result = follow(suite, NAME, target, &submission, first.len()).await;
            finish(suite, "first", result, first, &mut problems);
            let result = follow(suite, NAME, target, &other, second.len()).await;
            finish(suite, "second", result, second, &mut problems);
        }
        Ok(WriteOutcome::Done(outcome)) => {
            observe(suite, second, &Ok(outcome));
            let result = follow(suite, NAME, target, &submission, first.len()).await;
            finish(suite, "first", result, first, &mut problems);
        }
        Err(err) => {
            let outcome = suite.outcome(&Err::<(), _>(err), log_mark);
            problems.push(format!(
                "a second batch sent while the first was outstanding (max-submissions-per-audience {limit}: \
                 {allowed}) gave {outcome}; a partner that runs one job at a time per audience must declare \
                 max-submissions-per-audience 1"
            ));
            let result = follow(suite, NAME, target, &submission, first.len()).await;
            finish(suite, "first", result, first, &mut problems);
        }
    }
    CheckResult::from_problems(
        NAME,
        &problems,
        format!(
            "max-submissions-per-audience {limit} ({allowed}): a second batch was sent while the first was outstanding, \
             and both finished"
        ),
    )
}

/// Account for one followed batch's end result.
fn finish(
    suite: &mut Suite,
    which: &str,
    result: Result<BatchOutcome, CallError>,
    users: &[PreparedUser],
    problems: &mut Vec<String>,
) {
    observe(suite, users, &result);
    if result.is_err() {
        let outcome = suite.outcome(&result, suite.logs().len());
        problems.push(format!("the {which} batch did not finish: {outcome}"));
    }
}

/// `async.submissions` (see the module documentation).
pub async fn submissions(suite: &mut Suite) {
    const NAME: &str = "async.submissions";
    if suite.skip_for_v0_1_0(NAME) {
        return;
    }
    let records = suite.submissions.clone();
    if !suite.declares(Features::ASYNCHRONOUS) {
        let mut problems = Vec::new();
        if let Some(first) = records.first() {
            problems.push(format!(
                "{} write(s) answered submitted (first during {}), but the plugin does not declare the asynchronous \
                 feature",
                records.len(),
                first.during
            ));
        }
        let target = AudienceTarget::Existing(
            suite.audience_id.clone().unwrap_or_else(|| super::AUDIENCE_ID_CANDIDATES[0].to_string()),
        );
        let log_mark = suite.logs().len();
        let (config, creds, account) = (&suite.config, &suite.creds, suite.options.account_id.as_str());
        let result = suite.plugin.check_submission(config, creds, account, &target, "conformance-submission", 1).await;
        let outcome = suite.outcome(&result, log_mark);
        if !matches!(result, Err(CallError::Destination(DestinationError::InvalidRequest(_)))) {
            problems.push(format!(
                "without the asynchronous feature check-submission must answer invalid-request; it answered {outcome}"
            ));
        }
        suite.push(CheckResult::from_problems(
            NAME,
            &problems,
            "no asynchronous feature: no write answered submitted, and check-submission answers invalid-request",
        ));
        return;
    }
    let problems: Vec<String> = records
        .iter()
        .filter_map(|r| r.problem.as_ref().map(|p| format!("submission {:?} (during {}): {p}", r.id, r.during)))
        .collect();
    let check = if records.is_empty() {
        CheckResult::pass(
            NAME,
            "the plugin may answer submitted, but answered done to every write against the stand-in: nothing to follow",
        )
    } else {
        let most = records.iter().map(|r| r.polls).max().unwrap_or_default();
        CheckResult::from_problems(
            NAME,
            &problems,
            format!(
                "{} write(s) answered submitted; each reached finished or failed within {most} check-submission \
                 call(s) (at most {MAX_POLLS} allowed)",
                records.len()
            ),
        )
    };
    suite.push(check);
}
