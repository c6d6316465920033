//! Asynchronous outcomes: following up batches the partner accepted and finishes later.
//!
//! Why this shape: some partners (Google's Data Manager) answer a write with a request id and
//! say only later what became of its users. Those users are neither synced nor pending but
//! **submitted**, and the submission is written to the store *before* the lane does anything
//! else with the answer, so a restart (or another host taking the lane over) asks about the
//! same request again instead of sending the users twice. The users are sent again only when
//! the partner says the request failed.
//!
//! Each lane keeps the submissions of its connection in one timer map (when to ask next) and a
//! task, [`Lane::run_checks`], that sleeps until the earliest is due. Every question goes
//! through the plugin's `check-submission`, so it is paced by the connection's rate limiter and
//! fenced by its lease like any other request. An answer decides as a write's answer would
//! (the table in [`super::decide`]): `finished` → each user synced or refused; `failed` →
//! retry, split, resend without named users, or mark the sync broken; `processing` → ask again
//! after the partner's wait or the lane's backoff (doubling, at most [`MAX_CHECK_INTERVAL`]).
//! A question that itself fails is asked again with the same backoff; a submission the partner
//! has not finished within the retry window errors its users, saying so.
//!
//! `limits.max-submissions-per-audience` (one job at a time per list, as the Google Ads API's
//! offline user data jobs require) holds a sync's next claim while it has that many batches
//! submitted or in flight.

use std::sync::Arc;
use std::time::Duration;

use audience_runtime::CallError;
use audience_runtime::types::{AudienceTarget, SubmissionStatus};
use audience_store::{NewSubmission, QueuedUser, StoreError, SyncRecord, UserOutcome, UserResult};

use super::decide::{self, ConnectionEffect, Decision, Fate, SyncEffect};
use super::lane::Lane;
use super::metrics::loggable;

/// The longest wait between two questions about one submission.
pub(crate) const MAX_CHECK_INTERVAL: Duration = Duration::from_secs(600);
/// The shortest wait between two questions about one submission.
const MIN_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// A submission the lane will ask about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingCheck {
    /// The sync it belongs to.
    pub(crate) sync_id: String,
    /// The partner's id for the request.
    pub(crate) id: String,
    /// How many users it carries.
    pub(crate) users: u64,
    /// When it was submitted (ms).
    pub(crate) submitted_at_ms: i64,
    /// The wait before the last question (ms): the next backoff doubles it.
    pub(crate) interval_ms: i64,
}

/// When to ask again after a question at `now_ms` that did not settle the submission: at the
/// partner's `hint_ms` when it gave one, else after twice the last interval; never sooner than
/// [`MIN_CHECK_INTERVAL`] nor later than [`MAX_CHECK_INTERVAL`] (a partner's hint above it is
/// honoured). Returns (when, the interval to remember).
pub(crate) fn next_check(now_ms: i64, last_interval_ms: i64, hint_ms: Option<i64>) -> (i64, i64) {
    let min = MIN_CHECK_INTERVAL.as_millis() as i64;
    let max = MAX_CHECK_INTERVAL.as_millis() as i64;
    let interval = match hint_ms {
        Some(hint) => hint.max(min),
        None => last_interval_ms.saturating_mul(2).clamp(min, max),
    };
    (now_ms.saturating_add(interval), interval)
}

/// Whether a submission made at `submitted_at_ms` has outlived the retry window at `now_ms`.
pub(crate) fn given_up(now_ms: i64, submitted_at_ms: i64, window: Duration) -> bool {
    now_ms.saturating_sub(submitted_at_ms) > i64::try_from(window.as_millis()).unwrap_or(i64::MAX)
}

impl Lane {
    /// The partner accepted `keys` of `sync` as request `submission.id`: record it (before
    /// anything else) and plan the first question.
    pub(super) async fn record_submission(
        &self,
        sync: &SyncRecord,
        keys: Vec<String>,
        attempt: u32,
        submission: &audience_runtime::types::Submission,
    ) {
        let now = self.clock.now_ms();
        let check_after = i64::from(submission.check_after_ms);
        let new = NewSubmission {
            id: submission.id.clone(),
            keys,
            attempt,
            now_ms: now,
            check_at_ms: now.saturating_add(check_after),
        };
        let users = new.keys.len() as u64;
        let mut wait = Duration::from_millis(100);
        for try_no in 1..=6 {
            match self.shared.store.submit(&sync.id, new.clone()).await {
                Ok(()) => {
                    self.hold(&sync.id);
                    self.schedule(
                        new.check_at_ms,
                        PendingCheck {
                            sync_id: sync.id.clone(),
                            id: new.id.clone(),
                            users,
                            submitted_at_ms: now,
                            interval_ms: check_after,
                        },
                    );
                    return;
                }
                Err(StoreError::NotFound { .. }) => {
                    tracing::info!(sync = %sync.id, "the sync was deleted while a batch was in flight; its submission is not recorded");
                    return;
                }
                Err(err) if try_no < 6 && !matches!(err, StoreError::Conflict(_)) => {
                    tracing::warn!(sync = %sync.id, error = %err, "could not record a submission; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(err) => {
                    // The users stay in flight: the next start makes them pending again and
                    // sends them again (at least once, never lost).
                    tracing::error!(sync = %sync.id, error = %err, "giving up recording a submission; its users are sent again after a restart");
                    return;
                }
            }
        }
    }

    /// Plan a question about `check` at `at_ms`, and wake the checker.
    fn schedule(&self, at_ms: i64, check: PendingCheck) {
        self.with_state(|s| s.checks.insert((at_ms, check.sync_id.clone(), check.id.clone()), check));
        self.check_wake.notify_one();
    }

    /// Asks the partner about this lane's submissions when each is due, until the lane stops.
    pub(crate) async fn run_checks(self: Arc<Self>) {
        let cancel = self.stop.clone();
        let mut loaded = false;
        while !cancel.is_cancelled() {
            if !loaded {
                match self.load_submissions().await {
                    Ok(()) => loaded = true,
                    Err(err) => {
                        tracing::warn!(connection = %self.connection_id, error = %err, "could not read the connection's submissions; retrying");
                        self.sleep_checks(Some(MIN_CHECK_INTERVAL)).await;
                        continue;
                    }
                }
            }
            let now = self.clock.now_ms();
            let next = self.with_state(|s| {
                let first = s.checks.keys().next().cloned()?;
                if first.0 <= now { s.checks.remove(&first).map(Ok) } else { Some(Err(first.0)) }
            });
            match next {
                // Nothing submitted: sleep until a submission is planned (no timer held).
                None => self.sleep_checks(None).await,
                Some(Err(at)) => self.sleep_checks(Some(Duration::from_millis((at - now).max(1) as u64))).await,
                Some(Ok(check)) => {
                    let permit = tokio::select! {
                        permit = self.concurrency.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => break },
                        _ = cancel.cancelled() => break,
                    };
                    let lane = self.clone();
                    self.shared.tasks.spawn(self.tasks.track_future(async move {
                        lane.check(check).await;
                        drop(permit);
                    }));
                }
            }
        }
    }

    async fn sleep_checks(&self, wait: Option<Duration>) {
        let sleep = async {
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            _ = self.check_wake.notified() => {}
            _ = self.stop.cancelled() => {}
        }
    }

    /// Plan a question about every submission of the connection's syncs the store knows.
    async fn load_submissions(&self) -> Result<(), StoreError> {
        let syncs = self.shared.store.syncs_of_connection(&self.connection_id).await?;
        let ids: Vec<String> = syncs.iter().map(|s| s.id.clone()).collect();
        let found = self.shared.store.submissions(&ids).await?;
        if !found.is_empty() {
            tracing::info!(connection = %self.connection_id, submissions = found.len(), "resuming questions about submitted batches");
        }
        for submission in found {
            self.hold(&submission.sync_id);
            let interval = (submission.check_at_ms - submission.submitted_at_ms).max(0);
            self.schedule(
                submission.check_at_ms,
                PendingCheck {
                    sync_id: submission.sync_id,
                    id: submission.id,
                    users: submission.users,
                    submitted_at_ms: submission.submitted_at_ms,
                    interval_ms: interval,
                },
            );
        }
        Ok(())
    }

    /// Ask about one submission and act on the answer.
    async fn check(self: Arc<Self>, check: PendingCheck) {
        let sync = match self.sync_of(&check.sync_id).await {
            Some(sync) => sync,
            None => {
                // Deleted: its submissions went with it.
                self.release(&check.sync_id);
                return;
            }
        };
        let now = self.clock.now_ms();
        let Some((creds, version)) = self.with_state(|s| s.creds.clone().map(|c| (c, s.creds_version))) else {
            self.ask_later(check, now, None, "the connection has no usable credentials");
            return;
        };
        let target = match self.known_audience(&sync) {
            Some(id) => AudienceTarget::Existing(id),
            None => AudienceTarget::Create(super::deliver::audience_spec(&sync)),
        };
        let started = std::time::Instant::now();
        let users = usize::try_from(check.users).unwrap_or(usize::MAX);
        let answer = self
            .calls
            .check_submission(&self.destination.config, &creds, &sync.account_id, &target, &check.id, users)
            .await;
        self.shared.metrics.plugin_call(&sync.destination, "check-submission", started.elapsed());
        self.note_plugin_health(&sync, "check-submission", 0, super::deliver::plugin_failure(&answer)).await;
        let destination = sync.destination.clone();
        match answer {
            Ok(SubmissionStatus::Processing(hint)) => {
                self.shared.metrics.submission_check(&destination, "processing");
                if given_up(now, check.submitted_at_ms, self.shared.config.retry.window) {
                    self.give_up(&sync, check, "the partner was still processing it").await;
                } else {
                    let hint = hint.map(i64::from);
                    let (at, interval) = next_check(now, check.interval_ms, hint);
                    self.schedule(at, PendingCheck { interval_ms: interval, ..check });
                }
            }
            Ok(SubmissionStatus::Finished(outcome)) => {
                self.shared.metrics.submission_check(&destination, "finished");
                if let Some(created) = &outcome.created {
                    self.remember_audience(&sync, &created.id).await;
                }
                let users = self.users_of(&sync, &check).await;
                let default_pause = self.shared.config.rate.default_pause;
                let decision = decide::classify(Ok(&outcome), users.len(), now, default_pause);
                self.carry_out(&sync, version, &decision).await;
                self.settle(&sync, &check, &users, decision.users).await;
            }
            Ok(SubmissionStatus::Failed(err)) => {
                self.shared.metrics.submission_check(&destination, "failed");
                let err = CallError::Destination(err);
                tracing::info!(sync = %sync.id, submission = %loggable(&check.id), error = %err, "the partner failed a submitted batch");
                let users = self.users_of(&sync, &check).await;
                let default_pause = self.shared.config.rate.default_pause;
                let decision = decide::classify(Err(&err), users.len(), now, default_pause);
                self.carry_out(&sync, version, &decision).await;
                match decision.users {
                    fate @ (Fate::Split { .. } | Fate::Resend { .. }) => self.resend(&sync, &check, fate).await,
                    fate => self.settle(&sync, &check, &users, fate).await,
                }
            }
            Err(err) => {
                self.shared.metrics.submission_check(&destination, "error");
                // The question failed, not the batch: a 429 pauses the connection and a 401
                // renews the credentials as for any call; the sync's state is not the answer's.
                let default_pause = self.shared.config.rate.default_pause;
                let decision = decide::classify(Err(&err), users, now, default_pause);
                let pause = match &decision.connection {
                    ConnectionEffect::Pause(pause) => Some(i64::try_from(pause.as_millis()).unwrap_or(i64::MAX)),
                    _ => None,
                };
                let effects =
                    Decision { users: Fate::Submitted, connection: decision.connection, sync: SyncEffect::None };
                self.carry_out(&sync, version, &effects).await;
                if given_up(now, check.submitted_at_ms, self.shared.config.retry.window) {
                    let why = format!("asking the partner about it kept failing: {err}");
                    self.give_up(&sync, check, &why).await;
                } else {
                    self.ask_later(check, now, pause, &err.to_string());
                }
            }
        }
    }

    /// Ask again later, after the backoff (or `at_least_ms`).
    fn ask_later(&self, check: PendingCheck, now: i64, at_least_ms: Option<i64>, why: &str) {
        tracing::debug!(sync = %check.sync_id, reason = %loggable(why), "asking about a submission again later");
        let (at, interval) = next_check(now, check.interval_ms, None);
        let at = at_least_ms.map_or(at, |ms| at.max(now.saturating_add(ms)));
        self.schedule(at, PendingCheck { interval_ms: interval, ..check });
    }

    /// The sync a submission belongs to, from the lane's state or the store; `None` when it
    /// was deleted.
    async fn sync_of(&self, sync_id: &str) -> Option<SyncRecord> {
        if let Some(sync) = self.with_state(|s| s.syncs.iter().find(|x| x.id == sync_id).cloned()) {
            return Some(sync);
        }
        match self.shared.store.sync(sync_id).await {
            Ok(sync) => Some(sync),
            Err(StoreError::NotFound { .. }) => None,
            Err(err) => {
                tracing::warn!(sync = %sync_id, error = %err, "could not read a sync to ask about its submission");
                // Keep the submission: the store is only unavailable for now.
                None
            }
        }
    }

    /// The users of a submission, as queued.
    async fn users_of(&self, sync: &SyncRecord, check: &PendingCheck) -> Vec<QueuedUser> {
        match self.shared.store.submission_users(&sync.id, &check.id).await {
            Ok(users) => users,
            Err(err) => {
                tracing::warn!(sync = %sync.id, error = %err, "could not read a submission's users");
                Vec::new()
            }
        }
    }

    /// Record the partner's final word on a submission (`fate` for its users) and forget it.
    async fn settle(&self, sync: &SyncRecord, check: &PendingCheck, users: &[QueuedUser], fate: Fate) {
        let keys: Vec<String> = users.iter().map(|u| u.key.clone()).collect();
        let history = |key: &str| users.iter().find(|u| u.key == key).map(|u| (u.entered_at, u.attempts));
        let results = self.outcomes(decide::verdicts(keys, fate), history);
        self.settle_results(sync, check, results).await;
    }

    async fn settle_results(&self, sync: &SyncRecord, check: &PendingCheck, results: Vec<UserResult>) {
        if !results.is_empty() {
            self.shared.metrics.batch(&sync.destination, &sync.id, decide::batch_label(&results));
        }
        let mut wait = Duration::from_millis(100);
        for try_no in 1..=6 {
            match self.shared.store.settle_submission(&sync.id, &check.id, results.clone()).await {
                Ok(()) | Err(StoreError::NotFound { .. }) => {
                    self.release(&sync.id);
                    self.wake();
                    return;
                }
                Err(err) if try_no < 6 => {
                    tracing::warn!(sync = %sync.id, error = %err, "could not record a submission's outcome; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(err) => {
                    // Still submitted in the store: ask again later (asking twice is harmless).
                    tracing::error!(sync = %sync.id, error = %err, "could not record a submission's outcome; asking again later");
                    self.ask_later(check.clone(), self.clock.now_ms(), None, "the store failed");
                }
            }
        }
    }

    /// The partner failed a submission in a way that sends its users again now: split, or
    /// without the users it named. They go back in flight and are delivered as a batch.
    async fn resend(self: &Arc<Self>, sync: &SyncRecord, check: &PendingCheck, fate: Fate) {
        match self.shared.store.reopen_submission(&sync.id, &check.id).await {
            Ok(users) if !users.is_empty() => {
                let results = self.deliver_batch(sync, &users, Some(fate), None).await;
                self.record_delivery(sync, results).await;
            }
            Ok(_) => {}
            Err(err) => {
                tracing::warn!(sync = %sync.id, error = %err, "could not reopen a failed submission; asking again later");
                self.ask_later(check.clone(), self.clock.now_ms(), None, "the store failed");
                return;
            }
        }
        self.release(&sync.id);
        self.wake();
    }

    /// The partner did not finish a submission within the retry window: its users are
    /// errored, saying so.
    async fn give_up(&self, sync: &SyncRecord, check: PendingCheck, why: &str) {
        self.shared.metrics.submission_check(&sync.destination, "given_up");
        let window = humantime::format_duration(self.shared.config.retry.window);
        let reason: Arc<str> = Arc::from(format!(
            "the partner did not finish the request it accepted ({}) within the retry window of {window}: {why}",
            check.id
        ));
        tracing::warn!(sync = %sync.id, reason = %loggable(&reason), "giving up on a submitted batch");
        let users = self.users_of(sync, &check).await;
        let results = users
            .iter()
            .map(|u| UserResult { key: u.key.clone(), outcome: UserOutcome::Errored(Arc::clone(&reason)) })
            .collect();
        self.settle_results(sync, &check, results).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_back_off_within_bounds_and_honour_the_partners_wait() {
        // (last interval, partner's hint, expected interval)
        let cases: Vec<(i64, Option<i64>, i64)> = vec![
            (0, None, 1_000),
            (400, None, 1_000),
            (1_000, None, 2_000),
            (250_000, None, 500_000),
            (400_000, None, 600_000),
            (600_000, None, 600_000),
            (i64::MAX, None, 600_000),
            (1_000, Some(30), 1_000),
            (1_000, Some(5_000), 5_000),
            (1_000, Some(1_800_000), 1_800_000),
        ];
        for (last, hint, expected) in cases {
            assert_eq!(next_check(10_000, last, hint), (10_000 + expected, expected), "{last} {hint:?}");
        }
    }

    #[test]
    fn a_submission_is_given_up_only_after_the_retry_window() {
        let window = Duration::from_secs(13 * 3600);
        let w = 13 * 3_600_000;
        assert!(!given_up(w, 0, window));
        assert!(given_up(w + 1, 0, window));
        assert!(!given_up(5, 10, window), "a clock that went back is not a timeout");
    }
}
