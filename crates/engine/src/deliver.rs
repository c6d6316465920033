//! Delivering one batch: sending it (split where the partner refuses a request as sent),
//! carrying out what each answer decides for the connection and the sync, and recording every
//! user's fate.
//!
//! The decisions themselves — what an answer means, when a failed user is retried, how a batch
//! is split — are pure functions in [`super::decide`], whose documentation has the table of
//! answers and what happens after each. This module does the effects: store writes, limiter
//! pauses, token refreshes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audience_store::{Health, QueuedUser, SyncAction, SyncRecord, SyncStatus, UserOutcome, UserResult};

use super::decide::{self, AfterUnauthorized, ConnectionEffect, Decision, Fate, Isolation, SyncEffect, Verdict};
use super::degrade::{self, StatusChange};
use super::encode_credentials;
use super::lane::Lane;
use super::metrics::loggable;
use audience_runtime::CallError;
use audience_runtime::types::{AudienceSpec, AudienceTarget, Batch, Grant, PreparedUser, UpsertOutcome, WriteOutcome};
use sha2::{Digest as _, Sha256};

/// The contract's `batch.id` for these users of `sync`: the same for the same users (a retry),
/// different for different ones, and nothing a partner could read a user's key back from.
pub(crate) fn batch_id(sync_id: &str, action: audience_store::SyncAction, users: &[PreparedUser]) -> String {
    let mut keys: Vec<&str> = users.iter().map(|u| u.key.as_str()).collect();
    keys.sort_unstable();
    let mut hash = Sha256::new();
    hash.update(sync_id.as_bytes());
    hash.update([0, u8::from(action == audience_store::SyncAction::Remove)]);
    for key in keys {
        hash.update(key.as_bytes());
        hash.update([0]);
    }
    hex::encode(&hash.finalize()[..16])
}

/// The calls of one delivery, through its own gate (see [`super::send_gate`]).
struct Delivery {
    calls: Arc<dyn super::destinations::DestinationCalls>,
    gate: Arc<super::send_gate::DeliveryHooks>,
}

impl Lane {
    /// Deliver a claimed batch and record every user's outcome. `staged`: the lane's staging
    /// permit, given back once the first request has its slot.
    pub(super) async fn deliver(
        self: &Arc<Self>,
        sync: SyncRecord,
        batch: Vec<QueuedUser>,
        staged: tokio::sync::OwnedSemaphorePermit,
    ) {
        let submitted_before = batch.len();
        let results = self.deliver_batch(&sync, &batch, None, Some(staged)).await;
        let submitted = submitted_before.saturating_sub(results.len());
        let outcomes: Vec<UserOutcome> = results.iter().map(|r| r.outcome.clone()).collect();
        self.record_delivery(&sync, results).await;
        self.note_probe(&sync, decide::delivery_failed(&outcomes, submitted));
        self.with_state(|s| s.resolving.remove(&sync.id));
        self.release(&sync.id);
        // The lane's record already holds what the delivery changed (a status, an audience,
        // credentials): look for the next batch without reading the connection again.
        self.look_again();
    }

    /// Hold a sync whose every request failed until its next probe; free one that worked.
    fn note_probe(&self, sync: &SyncRecord, failed: Option<bool>) {
        let now = self.clock.now_ms();
        let retry = &self.shared.config.retry;
        let probe = self.with_state(|s| {
            let before = s.probes.get(&sync.id).copied();
            let broken = s.syncs.iter().any(|x| x.id == sync.id && x.status == SyncStatus::Broken);
            let after = decide::probe_after(before, failed, now, retry, rand::random::<f64>(), broken);
            match after {
                Some(probe) => s.probes.insert(sync.id.clone(), probe),
                None => s.probes.remove(&sync.id),
            };
            after.filter(|p| Some(*p) != before)
        });
        if let Some(probe) = probe {
            tracing::info!(sync = %sync.id, failures = probe.failures, probe_in_ms = probe.next_at - now, "every request of the sync failed; probing it once per backoff interval");
        }
    }

    /// Record what became of a delivery's users (those not submitted), retrying the store a
    /// few times.
    pub(super) async fn record_delivery(&self, sync: &SyncRecord, results: Vec<UserResult>) {
        if results.is_empty() {
            return;
        }
        let label = decide::batch_label(&results);
        self.shared.metrics.batch(&sync.destination, &sync.id, label);
        let mut wait = Duration::from_millis(100);
        for attempt in 1..=6 {
            match self.shared.store.complete(&sync.id, results.clone()).await {
                Ok(()) => break,
                Err(audience_store::StoreError::NotFound { .. }) => {
                    // Deleted while its batch was out: its users and counters went with it.
                    tracing::info!(sync = %sync.id, "the sync was deleted while a batch was in flight; that batch's outcome is not recorded");
                    break;
                }
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
    }

    /// Send a batch's users and give each its outcome (users the partner accepted for later are
    /// submitted, and have none yet). `after`: what the partner already answered to the whole
    /// batch (a submission it failed), acted on before anything is sent.
    pub(super) async fn deliver_batch(
        self: &Arc<Self>,
        sync: &SyncRecord,
        batch: &[QueuedUser],
        after: Option<Fate>,
        staged: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> Vec<UserResult> {
        let (calls, gate) = self.delivery_calls(&sync.id, staged);
        let delivery = Delivery { calls, gate };
        let mut results = Vec::with_capacity(batch.len());
        let mut users = Vec::with_capacity(batch.len());
        for queued in batch {
            match super::payload::decode(&queued.payload) {
                Ok(user) => users.push(user),
                Err(err) => results.push(UserResult {
                    key: queued.key.clone(),
                    outcome: UserOutcome::Errored(err.to_string().into()),
                }),
            }
        }
        let attempt = batch.iter().map(|q| q.attempts).max().unwrap_or(0).saturating_add(1);
        // A batch is all adds or all removals asked by key (the store claims them apart).
        let action = if batch.first().is_some_and(|q| q.removal) { SyncAction::Remove } else { sync.action };
        let verdicts = self.write_isolating(&delivery, sync, action, users, attempt, after).await;
        let by_key: HashMap<&str, &QueuedUser> = batch.iter().map(|q| (q.key.as_str(), q)).collect();
        results.extend(self.outcomes(verdicts, |key| by_key.get(key).map(|q| (q.entered_at, q.attempts))));
        results
    }

    /// Each verdict as the outcome the store records: a failed user is retried or, past its
    /// window, errored (`history` gives its entry time and attempts so far).
    pub(super) fn outcomes(
        &self,
        verdicts: Vec<(String, Verdict)>,
        history: impl Fn(&str) -> Option<(i64, u32)>,
    ) -> Vec<UserResult> {
        let retry = &self.shared.config.retry;
        let now = self.clock.now_ms();
        // One jitter for the whole request: its users come back together, as one batch, not
        // as fragments due a few milliseconds apart.
        let jitter = rand::random::<f64>();
        verdicts
            .into_iter()
            .map(|(key, verdict)| {
                let outcome = match verdict {
                    Verdict::Synced => UserOutcome::Synced,
                    Verdict::Rejected(reason) => UserOutcome::Errored(reason),
                    Verdict::Unsent => UserOutcome::Unsent,
                    Verdict::Failed { error, retry_at } => {
                        let (entered_at, attempts) = history(&key).unwrap_or((now, 0));
                        decide::retry_or_give_up(now, entered_at, attempts, retry_at, error, retry, jitter)
                    }
                };
                UserResult { key, outcome }
            })
            .collect()
    }

    /// Write users; on `invalid-request`, split in halves until the users at fault are alone; on
    /// `rejected-users`, error the users named and send the others again at once. `after` is
    /// what the partner already answered for all of them (see [`Lane::deliver_batch`]).
    async fn write_isolating(
        &self,
        delivery: &Delivery,
        sync: &SyncRecord,
        action: SyncAction,
        users: Vec<PreparedUser>,
        attempt: u32,
        mut after: Option<Fate>,
    ) -> Vec<(String, Verdict)> {
        let mut verdicts = Vec::with_capacity(users.len());
        let mut isolation = Isolation::new(users);
        while let Some(group) = isolation.next_group() {
            let keys: Vec<String> = group.iter().map(|u| u.key.clone()).collect();
            let fate = match after.take() {
                Some(fate) => fate,
                // Paused or deleted since the claim: what is left goes back unsent.
                None if !delivery.gate.may_send().await => Fate::Unsent,
                None => self.write_once(delivery, sync, action, group.clone(), attempt).await,
            };
            match fate {
                Fate::Split { why } => {
                    tracing::debug!(sync = %sync.id, reason = %loggable(&why), "splitting a refused batch to isolate the users at fault");
                    isolation.split(group);
                }
                Fate::Resend { refused } => match decide::resend(group, |u| u.key.as_str(), refused) {
                    Ok((named, rest)) => {
                        tracing::debug!(sync = %sync.id, refused = named.len(), "the partner refused a request because of named users; sending the others again");
                        verdicts.extend(named);
                        isolation.push(rest);
                    }
                    Err(group) => match decide::named_none(keys.len()) {
                        Fate::Split { .. } => isolation.split(group),
                        fate => verdicts.extend(decide::verdicts(keys, fate)),
                    },
                },
                fate => verdicts.extend(decide::verdicts(keys, fate)),
            }
        }
        verdicts
    }

    /// One add or remove call (`action`: the sync's, or a removal asked by key), with the audience resolved first when it is not known yet; the
    /// effects of the answer on the connection and the sync are carried out before returning
    /// what becomes of the users. A `submitted` answer is recorded here, before anything else.
    async fn write_once(
        &self,
        delivery: &Delivery,
        sync: &SyncRecord,
        action: SyncAction,
        users: Vec<PreparedUser>,
        attempt: u32,
    ) -> Fate {
        let Some((creds, version)) = self.with_state(|s| s.creds.clone().map(|c| (c, s.creds_version))) else {
            return decide::without_credentials().users;
        };
        let group_len = users.len();
        let default_pause = self.shared.config.rate.default_pause;
        let answer = match self.target(delivery, sync, &creds).await {
            // The gate held a request back: nothing the partner said, nothing to decide.
            Err(_) if delivery.gate.stopped() => return Fate::Unsent,
            Err(err) => {
                let decision = decide::classify_lookup(&err, self.clock.now_ms(), default_pause);
                self.carry_out(sync, version, &decision).await;
                return decision.users;
            }
            Ok(target) => {
                let started = Instant::now();
                let config = &self.destination.config;
                let keys: Vec<String> = users.iter().map(|u| u.key.clone()).collect();
                let batch = Batch { id: batch_id(&sync.id, action, &users), attempt, users };
                let result = delivery.calls.write_users(action, config, &creds, &sync.account_id, &target, batch).await;
                if delivery.gate.stopped() && result.is_err() {
                    return Fate::Unsent;
                }
                self.shared.metrics.plugin_call(&sync.destination, action.export_name(), started.elapsed());
                self.note_plugin_health(sync, action.export_name(), group_len, plugin_failure(&result)).await;
                match result {
                    Ok(WriteOutcome::Submitted(submission)) => {
                        self.record_submission(sync, keys, attempt, &submission).await;
                        let decision = decide::submitted();
                        self.carry_out(sync, version, &decision).await;
                        return decision.users;
                    }
                    Ok(WriteOutcome::Done(outcome)) => {
                        if let Some(created) = &outcome.created {
                            self.remember_audience(sync, &created.id).await;
                        }
                        Ok(outcome)
                    }
                    Err(err) => Err(err),
                }
            }
        };
        let decision = decide::classify(answer.as_ref(), group_len, self.clock.now_ms(), default_pause);
        self.carry_out(sync, version, &decision).await;
        decision.users
    }

    /// The effects of a decision on the connection and the sync (`version`: the credentials
    /// the call was made with).
    pub(super) async fn carry_out(&self, sync: &SyncRecord, version: i64, decision: &Decision) {
        match &decision.connection {
            ConnectionEffect::None => {}
            ConnectionEffect::CredentialsWork => self.with_state(|s| s.refreshed_to = None),
            ConnectionEffect::Pause(pause) => {
                super::hooks::partner_refused(
                    &self.limiter,
                    &self.shared.metrics,
                    &self.destination.name,
                    &self.connection_id,
                    *pause,
                );
                tracing::info!(connection = %self.connection_id, pause_ms = pause.as_millis() as u64, "partner asked to slow down; pausing the connection");
                // A partner counting per application (Google's project quota) means the
                // application's budget: every connection of it waits (see `app_pacing`).
                if let Some(app) = &self.app {
                    app.hold(*pause).await;
                }
            }
            ConnectionEffect::RefreshOrPark { why } => self.refresh_or_park(version, why).await,
        }
        match &decision.sync {
            SyncEffect::None => {}
            SyncEffect::Works => self.clear_broken(sync).await,
            SyncEffect::Broken { reason } => self.mark_broken(sync, reason).await,
        }
    }

    /// The audience to write to: known, to be created with this batch, or found now.
    async fn target(
        &self,
        delivery: &Delivery,
        sync: &SyncRecord,
        creds: &audience_runtime::types::Credentials,
    ) -> Result<AudienceTarget, CallError> {
        let known = self.known_audience(sync);
        let create = self.with_state(|s| s.create_with_first_batch.contains(&sync.id));
        if let Some(id) = known {
            return Ok(AudienceTarget::Existing(id));
        }
        let spec = audience_spec(sync);
        if create {
            return Ok(AudienceTarget::Create(spec));
        }
        let started = Instant::now();
        let config = &self.destination.config;
        let outcome = delivery.calls.upsert_audience(config, creds, &sync.account_id, &spec).await;
        self.shared.metrics.plugin_call(&sync.destination, "upsert-audience", started.elapsed());
        self.note_plugin_health(sync, "upsert-audience", 0, plugin_failure(&outcome)).await;
        match outcome? {
            UpsertOutcome::Ready(audience) => {
                self.remember_audience(sync, &audience.id).await;
                Ok(AudienceTarget::Existing(audience.id))
            }
            UpsertOutcome::CreateWithFirstBatch(why) => {
                tracing::info!(sync = %sync.id, "{}", loggable(&why));
                self.with_state(|s| s.create_with_first_batch.insert(sync.id.clone()));
                Ok(AudienceTarget::Create(spec))
            }
        }
    }

    /// The partner's id of the sync's audience, when known: from the lane's state (updated as
    /// soon as a batch created or found it), else from the record.
    pub(super) fn known_audience(&self, sync: &SyncRecord) -> Option<String> {
        let known = self.with_state(|s| s.syncs.iter().find(|x| x.id == sync.id).and_then(|x| x.audience_id.clone()));
        known.or_else(|| sync.audience_id.clone())
    }

    pub(super) async fn remember_audience(&self, sync: &SyncRecord, audience_id: &str) {
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

    /// After a call of the plugin for `sync` (`function`, for a batch of `users`): count the
    /// failure, record it among the sync's recent errors, and mark the sync degraded after
    /// failures in a row, or active again after a call that worked (see [`super::degrade`]).
    pub(super) async fn note_plugin_health(
        &self,
        sync: &SyncRecord,
        function: &str,
        users: usize,
        failure: Option<&audience_runtime::PluginError>,
    ) {
        if let Some(err) = failure {
            self.shared.metrics.plugin_failed(&sync.destination, function, err);
        }
        let (status_change, reason) = self.with_state(|s| {
            let status = s.syncs.iter().find(|x| x.id == sync.id).map_or(sync.status, |x| x.status);
            let before = s.plugin_failures.get(&sync.id).copied().unwrap_or(0);
            let (after, change) = degrade::after_call(before, status, failure.is_some());
            if after == 0 {
                s.plugin_failures.remove(&sync.id);
            } else {
                s.plugin_failures.insert(sync.id.clone(), after);
            }
            let reason = failure.map(|err| {
                let what = if users > 0 { format!("{function} for {users} users") } else { function.to_string() };
                format!("{what} failed ({after} in a row; retrying with backoff): {err}")
            });
            let status = match change {
                StatusChange::Keep => None,
                StatusChange::Degrade => Some(SyncStatus::Degraded),
                StatusChange::Recover => Some(SyncStatus::Active),
            };
            if let Some(status) = status
                && let Some(local) = s.syncs.iter_mut().find(|x| x.id == sync.id)
            {
                local.status = status;
            }
            (status, reason)
        });
        if let Some(reason) = &reason
            && let Err(err) = self.shared.store.record_sync_error(&sync.id, reason).await
        {
            tracing::warn!(sync = %sync.id, error = %err, "could not record the plugin's failure on the sync");
        }
        if let Some(status) = status_change {
            if status == SyncStatus::Degraded {
                tracing::warn!(sync = %sync.id, destination = %sync.destination, reason = %reason.as_deref().map(loggable).unwrap_or_default(), "the sync's plugin keeps failing; the sync is degraded");
            } else {
                tracing::info!(sync = %sync.id, "the sync's plugin works again; the sync is active");
            }
            if let Err(err) = self.shared.store.set_sync_status(&sync.id, status, reason.as_deref()).await {
                tracing::warn!(sync = %sync.id, error = %err, "could not record the sync's status");
            }
        }
    }

    /// A success: a sync marked broken is active again.
    async fn clear_broken(&self, sync: &SyncRecord) {
        let was_broken = self.with_state(|s| {
            let local = s.syncs.iter_mut().find(|x| x.id == sync.id);
            match local {
                Some(local) if local.status == SyncStatus::Broken => {
                    local.status = SyncStatus::Active;
                    true
                }
                _ => false,
            }
        });
        if was_broken && let Err(err) = self.shared.store.set_sync_status(&sync.id, SyncStatus::Active, None).await {
            tracing::warn!(sync = %sync.id, error = %err, "could not clear the sync's broken status");
        }
    }

    /// The partner says the account or audience is gone: the sync shows it.
    async fn mark_broken(&self, sync: &SyncRecord, reason: &str) {
        tracing::warn!(sync = %sync.id, "{}", loggable(reason));
        if let Err(err) = self.shared.store.set_sync_status(&sync.id, SyncStatus::Broken, Some(reason)).await {
            tracing::error!(sync = %sync.id, error = %err, "could not mark the sync broken");
        }
        self.with_state(|s| {
            if let Some(local) = s.syncs.iter_mut().find(|x| x.id == sync.id) {
                local.status = SyncStatus::Broken;
            }
        });
    }

    /// A call made for the API met a 401 on credentials version `failed_version`: refresh
    /// them as after a delivery's 401, first reading the connection again if the lane's
    /// record is older than the credentials the call used (see [`super::unauthorized`]).
    pub(super) async fn refresh_after_api_unauthorized(&self, failed_version: i64, why: &str) {
        if self.with_state(|s| s.creds_version) != failed_version {
            self.wake();
            if self.reload_if_stale().await.is_err() {
                return;
            }
        }
        self.refresh_or_park(failed_version, why).await;
    }

    /// After a 401: refresh the token once; if that is not possible or does not help, the
    /// connection needs a person to connect again (its users stay pending).
    async fn refresh_or_park(&self, failed_version: i64, why: &str) {
        let _guard = self.refresh.lock().await;
        let now_s = (self.clock.now_ms().max(0) / 1000) as u64;
        let step = self.with_state(|s| {
            let renewable = s.creds.as_ref().is_some_and(|c| decide::renewable(c, now_s));
            let step = decide::after_unauthorized(failed_version, s.creds_version, s.refreshed_to, renewable, why);
            (step, s.creds.clone())
        });
        let reason = match step {
            (AfterUnauthorized::AlreadyChanged, _) => return,
            (AfterUnauthorized::Park(reason), _) => reason,
            (AfterUnauthorized::Refresh, None) => format!("{why} (no credentials to renew)"),
            (AfterUnauthorized::Refresh, Some(current)) => {
                let started = Instant::now();
                let outcome = self.calls.authorize(&self.destination.config, Grant::Refresh(current)).await;
                self.shared.metrics.plugin_call(&self.destination.name, "authorize", started.elapsed());
                if let Err(CallError::Plugin(err)) = &outcome {
                    self.shared.metrics.plugin_failed(&self.destination.name, "authorize", err);
                }
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
        tracing::warn!(connection = %self.connection_id, reason = %loggable(&reason), "connection needs re-authorization; its users stay pending");
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

/// The plugin's own failure in a call's result, if it failed: not the partner's refusal, nor
/// the host having no free instance for it (`busy`, the host's limit, not the plugin's fault).
pub(super) fn plugin_failure<T>(result: &Result<T, CallError>) -> Option<&audience_runtime::PluginError> {
    match result {
        Err(CallError::Plugin(audience_runtime::PluginError::Busy { .. })) => None,
        Err(CallError::Plugin(err)) => Some(err),
        _ => None,
    }
}

pub(super) fn audience_spec(sync: &SyncRecord) -> AudienceSpec {
    super::audience_spec(&sync.audience, &sync.match_fields, None)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use audience_runtime::types::{BatchOutcome, DestinationError, Limits, UpsertOutcome};
    use audience_runtime::{CallError, PluginError};
    use audience_store::{Health, Store};

    use crate::EngineConfig;
    use crate::testing::World;
    use crate::testing::fake;

    const MINUTE: Duration = Duration::from_secs(60);

    fn limits() -> Limits {
        Limits {
            max_batch_size: 10,
            requests_per_second: 10.0,
            max_concurrent_requests: 1,
            max_submissions_per_audience: 0,
            app_requests_per_second: None,
        }
    }

    /// The value of `audience_plugin_failures_total` for the fake destination, or 0.
    fn failures(world: &World, function: &str, kind: &str) -> u64 {
        let series =
            format!("audience_plugin_failures_total{{destination=\"fake\",function=\"{function}\",kind=\"{kind}\"}} ");
        let text = world.engine.metrics().render();
        text.lines().find_map(|l| l.strip_prefix(&series)).map_or(0, |v| v.parse().expect("a count"))
    }

    #[tokio::test(start_paused = true)]
    async fn plugin_failures_are_counted_once_per_call_by_function_and_kind() {
        let world = World::new(EngineConfig::default(), limits()).await;
        let sync = world.sync(None).await;
        let mut lookups = 0;
        world.partner.on_upsert(move |_| {
            lookups += 1;
            if lookups <= 2 {
                Err(CallError::Plugin(PluginError::Timeout(Duration::from_secs(10))))
            } else {
                Ok(UpsertOutcome::Ready(fake::audience("aud-found")))
            }
        });
        let mut writes = 0;
        world.partner.on_write(move |_| {
            writes += 1;
            if writes == 1 {
                Err(CallError::Plugin(PluginError::Trap("unreachable executed".into())))
            } else if writes == 2 {
                Err(fake::refusal(DestinationError::Transient("503".into())))
            } else {
                Ok(BatchOutcome { rejected: Vec::new(), unattributed: Vec::new(), created: None })
            }
        });
        world.enter(&sync, "u", 30).await;
        world.start();
        world.until_delivered(&sync, 10 * MINUTE).await;
        assert_eq!(world.counts(&sync).await.synced, 30);
        assert_eq!(failures(&world, "upsert-audience", "timeout"), 2, "each failed look-up");
        assert_eq!(failures(&world, "add-users", "trap"), 1, "one failed call of 10 users counts once");
        assert_eq!(failures(&world, "add-users", "transient"), 0, "a partner's failure is not the plugin's");
        world.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_token_refresh_that_crashes_is_counted_and_the_connection_waits_for_a_person() {
        let world = World::new(EngineConfig::default(), limits()).await;
        let sync = world.sync(Some("aud-1")).await;
        world.partner.on_write(|_| Err(fake::refusal(DestinationError::Unauthorized("token revoked".into()))));
        world.partner.on_authorize(|_| Err(CallError::Plugin(PluginError::MemoryLimit { limit: 64 << 20 })));
        world.enter(&sync, "u", 5).await;
        world.start();
        let id = world.connection.id.clone();
        world
            .until(MINUTE, "connection parked", async move |world: &World| {
                world.store.connection(&id).await.expect("connection").health == Health::NeedsReauthorization
            })
            .await;
        assert_eq!(failures(&world, "authorize", "memory_limit"), 1);
        world.stop().await;
    }
}
