//! Intake: users enter a sync.
//!
//! The call is checked whole before anything is stored (a bad call changes nothing), the
//! plugin decides at entry who cannot be matched (`prepare-users`, pure and local), and the
//! answer comes only after the store has committed the users durably. The caller's journey can
//! move on at once: delivery is asynchronous.

use std::time::Instant;

use audience_store::{EnterOutcome, Entry, ReadyUser};
use serde::Serialize;

use super::destinations::parse_kind;
use super::error::{EngineError, Problem};
use super::{Engine, now_ms};
use crate::plugin::types::{Preparation, RawUser};

/// A user the plugin could not match, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotSyncedUser {
    /// The caller's key.
    pub key: String,
    /// Why (e.g. "no usable email: 'bob@' has no domain").
    pub reason: String,
}

/// What an intake call did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IntakeReport {
    /// Users accepted (queued, or already pending and not queued twice). The caller's journey
    /// moves on for these.
    pub accepted: u64,
    /// Newly queued.
    pub queued: u64,
    /// Already pending in this sync; not queued twice.
    pub deduplicated: u64,
    /// Users with no usable match field.
    pub not_synced: u64,
    /// Who was not synced and why.
    pub not_synced_users: Vec<NotSyncedUser>,
}

impl Engine {
    /// Users enter a sync: validated, prepared by the plugin, committed durably.
    pub async fn enter(&self, sync_id: &str, users: Vec<RawUser>) -> Result<IntakeReport, EngineError> {
        let limits = &self.shared.config.intake;
        let problems = check_users(&users, limits);
        if !problems.is_empty() {
            return Err(EngineError::Invalid(problems));
        }
        let sync = self.shared.store.sync(sync_id).await?;
        let destination = self
            .shared
            .destinations
            .get(&sync.destination)
            .ok_or_else(|| EngineError::UnknownDestination(sync.destination.clone()))?;
        let fields: Vec<_> = sync.match_fields.iter().filter_map(|f| parse_kind(f)).collect();

        let keys: Vec<String> = users.iter().map(|u| u.key.clone()).collect();
        let started = Instant::now();
        let prepared = destination
            .plugin
            .prepare_users(&fields, users)
            .await
            .map_err(|source| EngineError::Plugin { destination: sync.destination.clone(), source })?;
        self.shared.metrics.plugin_call(&sync.destination, "prepare-users", started.elapsed());

        let mut entry = Entry {
            now_ms: now_ms(),
            flush_ms: self.shared.config.batch.flush_interval.as_millis() as i64,
            ..Entry::default()
        };
        let mut not_synced_users = Vec::new();
        for (key, preparation) in keys.into_iter().zip(prepared) {
            match preparation {
                Preparation::Ready(user) => {
                    // The plugin must keep the caller's key; the store keys the queue by it.
                    let payload = serde_json::to_vec(&crate::plugin::types::PreparedUser { key: key.clone(), ..user })
                        .map_err(|err| EngineError::Invalid(vec![Problem::new("users", err.to_string())]))?;
                    entry.ready.push(ReadyUser { key, payload });
                }
                Preparation::NotSynced(reason) => {
                    entry.not_synced.push((key.clone(), reason.clone()));
                    not_synced_users.push(NotSyncedUser { key, reason });
                }
            }
        }
        let EnterOutcome { queued, deduplicated, not_synced } = self.shared.store.enter(sync_id, entry).await?;
        if queued > 0 {
            self.work_arrived(&sync.connection_id).await?;
        }
        Ok(IntakeReport { accepted: queued + deduplicated, queued, deduplicated, not_synced, not_synced_users })
    }
}

/// Every problem with an intake call, so the caller fixes them all at once.
fn check_users(users: &[RawUser], limits: &super::IntakeConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    if users.is_empty() {
        problems.push(Problem::new("users", "no users given; send between 1 and the limit per call"));
    }
    if users.len() > limits.max_users_per_call {
        problems.push(Problem::new(
            "users",
            format!("{} users in one call; the limit is {}: split the call", users.len(), limits.max_users_per_call),
        ));
        return problems;
    }
    for (i, user) in users.iter().enumerate() {
        if user.key.trim().is_empty() {
            problems.push(Problem::new(format!("users[{i}].key"), "empty key; give each user the caller's stable id"));
        } else if user.key.len() > limits.max_key_bytes {
            problems
                .push(Problem::new(format!("users[{i}].key"), format!("longer than {} bytes", limits.max_key_bytes)));
        }
        for (j, id) in user.identifiers.iter().enumerate() {
            if id.value.len() > limits.max_value_bytes {
                problems.push(Problem::new(
                    format!("users[{i}].identifiers[{j}].value"),
                    format!("longer than {} bytes", limits.max_value_bytes),
                ));
            }
        }
        if problems.len() >= 100 {
            problems.push(Problem::new("users", "more problems not listed; fix these first"));
            break;
        }
    }
    problems
}
