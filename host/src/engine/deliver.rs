//! Delivering one batch and deciding each user's fate from the partner's answer.
//!
//! | answer             | what happens                                                        |
//! |--------------------|---------------------------------------------------------------------|
//! | success            | synced, except users the partner refused individually (errored)    |
//! | `rate-limited`     | the connection pauses until retry-after; users retry after it      |
//! | `unauthorized`     | one refresh through `authorize`; if that fails, the connection needs re-authorization and its users wait, pending |
//! | `not-found`        | the sync is marked broken (visible); users retry with backoff      |
//! | `invalid-request`  | the batch is split in halves until the users at fault are isolated; they are errored, the rest go through |
//! | `transient`, plugin failure | retry with backoff and jitter                              |
//!
//! A retry that would fall after the user's retry window (default 13 h from entry) errors the
//! user instead, with the last failure as the reason.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use audience_store::{Health, QueuedUser, SyncAction, SyncRecord, SyncStatus, UserOutcome, UserResult};

use super::destinations::parse_kind;
use super::lane::Lane;
use super::{encode_credentials, now_ms};
use crate::plugin::types::{
    AudienceSpec, AudienceTarget, BatchOutcome, DestinationError, Grant, PreparedUser, UpsertOutcome,
};
use crate::plugin::{Action, CallError};

/// What became of one user in this delivery.
enum Verdict {
    Synced,
    Rejected(String),
    /// Try again: at the given time (ms), or after the backoff when `None`.
    Failed {
        error: String,
        retry_at: Option<i64>,
    },
}

/// Why one write failed, as far as the batch is concerned.
enum Failure {
    /// The partner refused the request as sent: split to find the users at fault.
    Invalid(String),
    /// Try again later.
    Retry { error: String, retry_at: Option<i64> },
}

impl Lane {
    /// Deliver a claimed batch and record every user's outcome.
    pub(super) async fn deliver(&self, sync: SyncRecord, batch: Vec<QueuedUser>) {
        let results = self.deliver_batch(&sync, &batch).await;
        let label = batch_label(&results);
        self.shared.metrics.batch(&sync.destination, &sync.id, label);
        let mut wait = Duration::from_millis(100);
        for attempt in 1..=6 {
            match self.shared.store.complete(&sync.id, results.clone()).await {
                Ok(()) => break,
                Err(err) if attempt < 6 => {
                    tracing::warn!(sync = %sync.id, error = %err, "could not record a batch's outcome; retrying");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                Err(err) => {
                    // The users stay in flight; the next start makes them pending again.
                    tracing::error!(sync = %sync.id, error = %err, "giving up recording a batch's outcome until restart");
                }
            }
        }
        self.with_state(|s| s.resolving.remove(&sync.id));
        self.wake();
    }

    async fn deliver_batch(&self, sync: &SyncRecord, batch: &[QueuedUser]) -> Vec<UserResult> {
        let mut results = Vec::with_capacity(batch.len());
        let mut users = Vec::with_capacity(batch.len());
        for queued in batch {
            match serde_json::from_slice::<PreparedUser>(&queued.payload) {
                Ok(user) => users.push(user),
                Err(err) => results.push(UserResult {
                    key: queued.key.clone(),
                    outcome: UserOutcome::Errored(format!("unreadable queue entry: {err}")),
                }),
            }
        }
        let verdicts = self.write_isolating(sync, users).await;
        let by_key: HashMap<&str, &QueuedUser> = batch.iter().map(|q| (q.key.as_str(), q)).collect();
        let retry = &self.shared.config.retry;
        let now = now_ms();
        for (key, verdict) in verdicts {
            let outcome = match verdict {
                Verdict::Synced => UserOutcome::Synced,
                Verdict::Rejected(reason) => UserOutcome::Errored(reason),
                Verdict::Failed { error, retry_at } => {
                    let (entered_at, attempts) =
                        by_key.get(key.as_str()).map_or((now, 0), |q| (q.entered_at, q.attempts));
                    let not_before = retry_at
                        .unwrap_or_else(|| now + retry.backoff(attempts + 1, rand::random::<f64>()).as_millis() as i64);
                    if not_before > entered_at + retry.window.as_millis() as i64 {
                        UserOutcome::Errored(format!(
                            "not delivered within the retry window of {}; last error: {error}",
                            humantime::format_duration(retry.window)
                        ))
                    } else {
                        UserOutcome::Retry { not_before_ms: not_before, error }
                    }
                }
            };
            results.push(UserResult { key, outcome });
        }
        results
    }

    /// Write users; on `invalid-request`, split in halves until the users at fault are alone.
    async fn write_isolating(&self, sync: &SyncRecord, users: Vec<PreparedUser>) -> Vec<(String, Verdict)> {
        let mut verdicts = Vec::with_capacity(users.len());
        let mut groups = vec![users];
        while let Some(group) = groups.pop() {
            if group.is_empty() {
                continue;
            }
            let keys: Vec<String> = group.iter().map(|u| u.key.clone()).collect();
            match self.write_once(sync, group.clone()).await {
                Ok(outcome) => {
                    let rejected: HashMap<String, String> =
                        outcome.rejected.into_iter().map(|r| (r.key, r.reason)).collect();
                    for key in keys {
                        let verdict = match rejected.get(&key) {
                            Some(reason) => Verdict::Rejected(format!("refused by the partner: {reason}")),
                            None => Verdict::Synced,
                        };
                        verdicts.push((key, verdict));
                    }
                }
                Err(Failure::Invalid(why)) if group.len() > 1 => {
                    let mut first = group;
                    let second = first.split_off(first.len() / 2);
                    tracing::debug!(sync = %sync.id, reason = %why, "splitting a refused batch to isolate the users at fault");
                    groups.push(second);
                    groups.push(first);
                }
                Err(Failure::Invalid(why)) => {
                    verdicts.extend(
                        keys.into_iter().map(|k| (k, Verdict::Rejected(format!("refused by the partner: {why}")))),
                    );
                }
                Err(Failure::Retry { error, retry_at }) => {
                    verdicts.extend(keys.into_iter().map(|k| (k, Verdict::Failed { error: error.clone(), retry_at })));
                }
            }
        }
        verdicts
    }

    /// One add or remove call, with the audience resolved first when it is not known yet.
    async fn write_once(&self, sync: &SyncRecord, users: Vec<PreparedUser>) -> Result<BatchOutcome, Failure> {
        let Some((creds, version)) = self.with_state(|s| s.creds.clone().map(|c| (c, s.creds_version))).flatten()
        else {
            return Err(Failure::Retry { error: "the connection has no usable credentials".into(), retry_at: None });
        };
        let target = match self.target(sync, &creds).await {
            Ok(target) => target,
            Err(err) => return Err(self.on_error(sync, version, err).await),
        };
        let action = match sync.action {
            SyncAction::Add => Action::Add,
            SyncAction::Remove => Action::Remove,
        };
        let started = Instant::now();
        let config = &self.destination.config;
        let result = self.plugin.write_users(action, config, &creds, &sync.account_id, &target, users).await;
        let function = if action == Action::Add { "add-users" } else { "remove-users" };
        self.shared.metrics.plugin_call(&sync.destination, function, started.elapsed());
        match result {
            Ok(outcome) => {
                if let Some(created) = &outcome.created {
                    self.remember_audience(sync, &created.id).await;
                }
                self.on_success(sync).await;
                Ok(outcome)
            }
            Err(err) => Err(self.on_error(sync, version, err).await),
        }
    }

    /// The audience to write to: known, to be created with this batch, or found now.
    async fn target(
        &self,
        sync: &SyncRecord,
        creds: &crate::plugin::types::Credentials,
    ) -> Result<AudienceTarget, CallError> {
        let (known, create) = self
            .with_state(|s| {
                let known = s.syncs.iter().find(|x| x.id == sync.id).and_then(|x| x.audience_id.clone());
                (known.or_else(|| sync.audience_id.clone()), s.create_with_first_batch.contains(&sync.id))
            })
            .unwrap_or((sync.audience_id.clone(), false));
        if let Some(id) = known {
            return Ok(AudienceTarget::Existing(id));
        }
        let spec = audience_spec(sync);
        if create {
            return Ok(AudienceTarget::Create(spec));
        }
        let started = Instant::now();
        let config = &self.destination.config;
        let outcome = self.plugin.upsert_audience(config, creds, &sync.account_id, &spec).await;
        self.shared.metrics.plugin_call(&sync.destination, "upsert-audience", started.elapsed());
        match outcome? {
            UpsertOutcome::Ready(audience) => {
                self.remember_audience(sync, &audience.id).await;
                Ok(AudienceTarget::Existing(audience.id))
            }
            UpsertOutcome::CreateWithFirstBatch(why) => {
                tracing::info!(sync = %sync.id, "{why}");
                self.with_state(|s| s.create_with_first_batch.insert(sync.id.clone()));
                Ok(AudienceTarget::Create(spec))
            }
        }
    }

    async fn remember_audience(&self, sync: &SyncRecord, audience_id: &str) {
        if let Err(err) = self.shared.store.set_audience_id(&sync.id, audience_id).await {
            tracing::error!(sync = %sync.id, error = %err, "could not record the audience id");
        }
        self.with_state(|s| {
            s.create_with_first_batch.remove(&sync.id);
            if let Some(local) = s.syncs.iter_mut().find(|x| x.id == sync.id) {
                local.audience_id = Some(audience_id.to_string());
            }
        });
    }

    async fn on_success(&self, sync: &SyncRecord) {
        let was_broken = self
            .with_state(|s| {
                s.refreshed_to = None;
                let local = s.syncs.iter_mut().find(|x| x.id == sync.id);
                match local {
                    Some(local) if local.status == SyncStatus::Broken => {
                        local.status = SyncStatus::Active;
                        true
                    }
                    _ => false,
                }
            })
            .unwrap_or(false);
        if was_broken && let Err(err) = self.shared.store.set_sync_status(&sync.id, SyncStatus::Active, None).await {
            tracing::warn!(sync = %sync.id, error = %err, "could not clear the sync's broken status");
        }
    }

    /// Apply what an error means for the connection or sync, and say when to retry.
    async fn on_error(&self, sync: &SyncRecord, version: i64, err: CallError) -> Failure {
        let error = err.to_string();
        match err {
            CallError::Destination(DestinationError::RateLimited(ms)) => {
                let pause = ms.map_or(self.shared.config.rate.default_pause, |ms| Duration::from_millis(ms.into()));
                self.limiter.pause_until(tokio::time::Instant::now() + pause);
                tracing::info!(connection = %self.connection_id, pause_ms = pause.as_millis() as u64, "partner asked to slow down; pausing the connection");
                Failure::Retry { error, retry_at: Some(now_ms() + pause.as_millis() as i64) }
            }
            CallError::Destination(DestinationError::Unauthorized(why)) => {
                self.refresh_or_park(version, &why).await;
                Failure::Retry { error, retry_at: Some(now_ms()) }
            }
            CallError::Destination(DestinationError::NotFound(why)) => {
                let reason = format!("the partner says the account or audience is gone: {why}");
                tracing::warn!(sync = %sync.id, "{reason}");
                if let Err(err) = self.shared.store.set_sync_status(&sync.id, SyncStatus::Broken, Some(&reason)).await {
                    tracing::error!(sync = %sync.id, error = %err, "could not mark the sync broken");
                }
                self.with_state(|s| {
                    if let Some(local) = s.syncs.iter_mut().find(|x| x.id == sync.id) {
                        local.status = SyncStatus::Broken;
                    }
                });
                Failure::Retry { error, retry_at: None }
            }
            CallError::Destination(DestinationError::InvalidRequest(why)) => Failure::Invalid(why),
            CallError::Destination(DestinationError::Transient(_)) | CallError::Plugin(_) => {
                Failure::Retry { error, retry_at: None }
            }
        }
    }

    /// After a 401: refresh the token once; if that is not possible or does not help, the
    /// connection needs a person to connect again (its users stay pending).
    async fn refresh_or_park(&self, failed_version: i64, why: &str) {
        let _guard = self.refresh.lock().await;
        let Some((current, refreshed_to, refresh_token)) = self
            .with_state(|s| (s.creds_version, s.refreshed_to, s.creds.as_ref().and_then(|c| c.refresh_token.clone())))
        else {
            return;
        };
        if current != failed_version {
            return; // someone refreshed (or reconnected) meanwhile
        }
        let reason = match (refreshed_to == Some(failed_version), refresh_token) {
            (true, _) => format!("{why} (even right after a token refresh)"),
            (false, None) => format!("{why} (no refresh token to retry with)"),
            (false, Some(token)) => {
                let outcome = self.plugin.authorize(&self.destination.config, Grant::Refresh(token)).await;
                match outcome {
                    Ok(creds) => match self
                        .shared
                        .store
                        .update_credentials(&self.connection_id, &encode_credentials(&creds))
                        .await
                    {
                        Ok(connection) => {
                            tracing::info!(connection = %self.connection_id, "refreshed the access token after a 401");
                            self.with_state(|s| {
                                s.creds = Some(creds);
                                s.creds_version = connection.credentials_version;
                                s.refreshed_to = Some(connection.credentials_version);
                                s.health = Health::Ok;
                            });
                            return;
                        }
                        Err(err) => format!("{why}; the refreshed token could not be stored: {err}"),
                    },
                    Err(err) => format!("{why}; refreshing the token failed: {err}"),
                }
            }
        };
        tracing::warn!(connection = %self.connection_id, reason = %reason, "connection needs re-authorization; its users stay pending");
        if let Err(err) = self
            .shared
            .store
            .set_connection_health(&self.connection_id, Health::NeedsReauthorization, Some(&reason))
            .await
        {
            tracing::error!(connection = %self.connection_id, error = %err, "could not record the connection's health");
        }
        self.with_state(|s| s.health = Health::NeedsReauthorization);
    }
}

fn audience_spec(sync: &SyncRecord) -> AudienceSpec {
    AudienceSpec {
        name: sync.audience.name.clone(),
        identifiers: sync.match_fields.iter().filter_map(|f| parse_kind(f)).collect(),
        description: sync.audience.description.clone(),
        create_if_missing: sync.audience.create_if_missing,
    }
}

fn batch_label(results: &[UserResult]) -> &'static str {
    let synced = results.iter().filter(|r| r.outcome == UserOutcome::Synced).count();
    let retry = results.iter().filter(|r| matches!(r.outcome, UserOutcome::Retry { .. })).count();
    if synced == results.len() {
        "synced"
    } else if retry == results.len() {
        "retry"
    } else if synced > 0 {
        "partial"
    } else {
        "errored"
    }
}
