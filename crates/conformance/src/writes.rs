//! Writing batches the way the host does, for every check that calls `add-users` or
//! `remove-users`.
//!
//! - **Batch ids.** A batch's id is derived from its operation and its users' keys, so the same
//!   users sent again are the same batch with the next `attempt` (1, 2, 3, ...), and different
//!   users are a different batch: what the contract promises a plugin that derives an
//!   idempotency key or a session from `batch.id`.
//! - **Asynchronous outcomes** (contract 0.2.0). A write that answers `submitted` is followed
//!   with `check-submission` until it answers `finished` or `failed`: the suite waits the
//!   plugin's `check-after-ms` (then each `processing` hint), at most [`MAX_POLL_WAIT`] each
//!   time, and gives up after [`MAX_POLLS`] calls. A `transient` or `rate-limited` answer to
//!   `check-submission` counts as a poll and the suite asks again; any other error ends the
//!   batch with that error. The check that made the write sees the end result: `finished`'s
//!   outcome, or `failed`'s error, exactly as if the write had answered it at once.
//! - **One job at a time.** The suite never has more batches submitted (sent, not finished) at
//!   one audience than `limits.max-submissions-per-audience` allows: [`write`] follows every
//!   submission to its end before it returns, so the checks that write one batch after another
//!   never have two outstanding. Only `async.submission-limit` sends a second batch before the
//!   first finished, and only when the limit is 0 (no limit) or at least 2.
//! - **Outcome accounting.** Every outcome is checked for `batch.rejections`: a rejected user
//!   is a user of the batch, rejected once, and rejected users plus `unattributed` rows never
//!   exceed the batch.

use std::collections::HashSet;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::standin::{RecordedRequest, Script};
use super::suite::{SubmissionRecord, Suite};
use audience_runtime::types::{
    AudienceTarget, Batch, BatchOutcome, DestinationError, PreparedUser, Submission, SubmissionStatus, WriteOutcome,
};
use audience_runtime::{CallError, PluginError};

/// The most `check-submission` calls the suite makes for one submitted batch.
pub const MAX_POLLS: u32 = 20;
/// The longest the suite waits before one `check-submission` call, whatever the plugin asked.
pub const MAX_POLL_WAIT: Duration = Duration::from_millis(250);
/// The wait when the plugin gave none (`processing(none)`).
const DEFAULT_POLL_WAIT: Duration = Duration::from_millis(50);
/// The most problems `batch.rejections` keeps.
const MAX_REJECTION_PROBLEMS: usize = 5;

/// Which write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `add-users`.
    Add,
    /// `remove-users`.
    Remove,
}

impl Op {
    /// The export's name.
    pub fn name(self) -> &'static str {
        match self {
            Op::Add => "add-users",
            Op::Remove => "remove-users",
        }
    }
}

/// What one write came to, after following a submission.
#[derive(Debug)]
pub struct Written {
    /// The end result: the outcome (at once or `finished`), or the error (at once, `failed`,
    /// or what following the submission ran into).
    pub result: Result<BatchOutcome, CallError>,
    /// Every request the write and its `check-submission` calls made.
    pub requests: Vec<RecordedRequest>,
    /// The result in the WIT's words.
    pub outcome: String,
}

impl Suite {
    /// The batch the host would send for `users`: its id derived from the operation and the
    /// users' keys, its attempt one more than the last time the same batch was sent.
    pub fn batch(&mut self, op: Op, users: &[PreparedUser]) -> Batch {
        let mut hasher = Sha256::new();
        hasher.update(op.name().as_bytes());
        for user in users {
            hasher.update([0]);
            hasher.update(user.key.as_bytes());
        }
        let id = format!("conformance-{}", &hex::encode(hasher.finalize())[..24]);
        let attempt = self.attempts.entry(id.clone()).or_insert(0);
        *attempt += 1;
        Batch { id, attempt: *attempt, users: users.to_vec() }
    }
}

/// Send one write, without following a submission.
pub async fn send(suite: &Suite, op: Op, target: &AudienceTarget, batch: Batch) -> Result<WriteOutcome, CallError> {
    let (config, creds, account) = (&suite.config, &suite.creds, suite.options.account_id.as_str());
    match op {
        Op::Add => suite.plugin.add_users(config, creds, account, target, batch).await,
        Op::Remove => suite.plugin.remove_users(config, creds, account, target, batch).await,
    }
}

/// Follow `submission` (of a batch of `sent` users to `target`) with `check-submission` to its
/// end, within [`MAX_POLLS`], and record how it went (`during` names the check).
pub async fn follow(
    suite: &mut Suite,
    during: &str,
    target: &AudienceTarget,
    submission: &Submission,
    sent: usize,
) -> Result<BatchOutcome, CallError> {
    let mut wait = Duration::from_millis(u64::from(submission.check_after_ms));
    let mut polls = 0;
    let end = loop {
        if polls >= MAX_POLLS {
            break Err(CallError::Plugin(PluginError::Contract(format!(
                "submission {:?} was still not finished after {MAX_POLLS} check-submission calls",
                submission.id
            ))));
        }
        tokio::time::sleep(wait.min(MAX_POLL_WAIT)).await;
        polls += 1;
        let (config, creds, account) = (&suite.config, &suite.creds, suite.options.account_id.as_str());
        match suite.plugin.check_submission(config, creds, account, target, &submission.id, sent).await {
            Ok(SubmissionStatus::Processing(next)) => {
                wait = next.map_or(DEFAULT_POLL_WAIT, |ms| Duration::from_millis(u64::from(ms)));
            }
            Ok(SubmissionStatus::Finished(outcome)) => break Ok(outcome),
            Ok(SubmissionStatus::Failed(err)) => break Err(CallError::Destination(err)),
            Err(CallError::Destination(DestinationError::Transient(_) | DestinationError::RateLimited(_))) => {
                wait = DEFAULT_POLL_WAIT;
            }
            Err(err) => break Err(err),
        }
    };
    let mut problem = match &end {
        Ok(_) | Err(CallError::Destination(_)) => None,
        Err(err) => Some(err.to_string()),
    };
    if let Ok(first) = &end {
        // The host asks again after a restart or a lost answer: a second question about a
        // finished request must give the same answer, never an error or `processing`.
        let (config, creds, account) = (&suite.config, &suite.creds, suite.options.account_id.as_str());
        let again = suite.plugin.check_submission(config, creds, account, target, &submission.id, sent).await;
        polls += 1;
        let keys = |o: &BatchOutcome| {
            let mut keys: Vec<String> = o.rejected.iter().map(|r| r.key.clone()).collect();
            keys.sort();
            keys
        };
        problem = problem.or(match again {
            Ok(SubmissionStatus::Finished(second)) if keys(&second) == keys(first) => None,
            Ok(SubmissionStatus::Finished(_)) => {
                Some("asked again after it finished, it named other rejected users".to_string())
            }
            Ok(other) => Some(format!("asked again after it finished, it answered {other:?} instead of finished")),
            Err(err) => Some(format!("asked again after it finished, the question failed: {err}")),
        });
    }
    suite.submissions.push(SubmissionRecord { during: during.to_string(), id: submission.id.clone(), polls, problem });
    end
}

/// One write of `users` to `target` with the stand-in answering `script`, followed to its end;
/// the stand-in answers `200 {}` again afterwards. `during` names the check.
pub async fn write(
    suite: &mut Suite,
    during: &str,
    op: Op,
    target: &AudienceTarget,
    users: &[PreparedUser],
    script: Script,
) -> Written {
    suite.stand_in.script(script);
    let mark = suite.stand_in.request_count();
    let log_mark = suite.logs().len();
    let batch = suite.batch(op, users);
    let result = match send(suite, op, target, batch).await {
        Ok(WriteOutcome::Done(outcome)) => Ok(outcome),
        Ok(WriteOutcome::Submitted(submission)) => follow(suite, during, target, &submission, users.len()).await,
        Err(err) => Err(err),
    };
    let requests = suite.stand_in.requests_since(mark);
    suite.stand_in.script(Script::ok());
    observe(suite, users, &result);
    let outcome = suite.outcome(&result, log_mark);
    Written { result, requests, outcome }
}

/// Check one write's end result for `batch.rejections`.
pub fn observe(suite: &mut Suite, users: &[PreparedUser], result: &Result<BatchOutcome, CallError>) {
    let problems = match result {
        Ok(outcome) => {
            suite.outcomes_seen += 1;
            rejection_problems(users, outcome)
        }
        // The runtime refuses an outcome rejecting more users than the batch held.
        Err(CallError::Plugin(PluginError::Contract(why))) if why.contains("rejected in a batch") => {
            vec![why.clone()]
        }
        Err(_) => Vec::new(),
    };
    for problem in problems {
        if suite.rejection_problems.len() < MAX_REJECTION_PROBLEMS && !suite.rejection_problems.contains(&problem) {
            suite.rejection_problems.push(problem);
        }
    }
}

/// What is wrong with `outcome` as the answer for `users`.
pub fn rejection_problems(users: &[PreparedUser], outcome: &BatchOutcome) -> Vec<String> {
    let mut problems = Vec::new();
    let keys: HashSet<&str> = users.iter().map(|u| u.key.as_str()).collect();
    let mut seen: HashSet<&str> = HashSet::new();
    for rejected in &outcome.rejected {
        if !keys.contains(rejected.key.as_str()) {
            problems.push(format!(
                "a batch of {} users reported rejected a user not in it ({:?})",
                users.len(),
                super::suite::excerpt(&rejected.key, 40)
            ));
            break;
        }
        if !seen.insert(rejected.key.as_str()) {
            problems.push(format!("user {:?} was reported rejected twice", super::suite::excerpt(&rejected.key, 40)));
            break;
        }
    }
    let unattributed: u64 = outcome.unattributed.iter().map(|u| u64::from(u.count)).sum();
    let named = outcome.rejected.len() as u64;
    if named + unattributed > users.len() as u64 {
        problems.push(format!(
            "a batch of {} users reported {named} rejected and {unattributed} unattributed rows: more than the batch",
            users.len()
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use audience_runtime::types::{RejectedUser, UnattributedRejection};

    fn users(n: usize) -> Vec<PreparedUser> {
        (0..n).map(|i| PreparedUser { key: format!("k{i}"), identifiers: vec![], consent: None }).collect()
    }

    fn rejected(keys: &[&str], unattributed: u32) -> BatchOutcome {
        BatchOutcome {
            rejected: keys.iter().map(|k| RejectedUser { key: (*k).into(), reason: "no".into() }).collect(),
            unattributed: vec![UnattributedRejection {
                count: unattributed,
                reason: "bad rows".into(),
                samples: vec![],
            }],
            created: None,
        }
    }

    #[test]
    fn rejections_are_accounted_for() {
        assert!(rejection_problems(&users(3), &rejected(&["k0"], 2)).is_empty());
        assert!(rejection_problems(&users(3), &rejected(&["k0"], 3))[0].contains("more than the batch"));
        assert!(rejection_problems(&users(3), &rejected(&["nobody"], 0))[0].contains("not in it"));
        assert!(rejection_problems(&users(3), &rejected(&["k1", "k1"], 0))[0].contains("twice"));
    }
}
