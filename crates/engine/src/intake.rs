//! Intake: users enter a sync.
//!
//! The call is checked whole before anything is stored (a bad call changes nothing), the
//! plugin decides at entry who cannot be matched (`prepare-users`, pure and local), and the
//! answer comes only after the store has committed the users durably. The caller's journey can
//! move on at once: delivery is asynchronous.

use std::time::Instant;

use audience_store::{EnterOutcome, Entry, IdentifierKind, ReadyUser, SyncRecord};
use serde::Serialize;

use super::error::{EngineError, Problem};
use super::{Engine, IntakeConfig, now_ms, payload};
use audience_runtime::types::{Consent, Identifier, Preparation, PreparedUser, RawUser};

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
    /// Already synced, and not sent again: the sync's re-entry policy is `skip`.
    pub already_in_audience: u64,
    /// Users with no usable match field.
    pub not_synced: u64,
    /// Who was not synced and why.
    pub not_synced_users: Vec<NotSyncedUser>,
}

/// A user as a caller sends it: not yet checked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserInput {
    /// The caller's stable id for the user.
    pub key: String,
    /// The identifiers, as the caller has them.
    pub identifiers: Vec<IdentifierInput>,
    /// The user's consent signals, when the caller recorded any (passed to partners that take
    /// them, such as Google for EEA users).
    pub consent: Option<Consent>,
}

impl UserInput {
    /// A user with no identifiers yet.
    pub fn new(key: impl Into<String>) -> Self {
        Self { key: key.into(), identifiers: Vec::new(), consent: None }
    }

    /// This user with consent signals.
    pub fn with_consent(mut self, consent: Consent) -> Self {
        self.consent = Some(consent);
        self
    }

    /// This user with one more identifier, its kind by name (`email`, `phone`, ...).
    pub fn with(mut self, kind: impl Into<String>, value: impl Into<String>) -> Self {
        self.identifiers.push(IdentifierInput { kind: kind.into(), value: value.into() });
        self
    }
}

/// One identifier as a caller sends it: a kind by name and a value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentifierInput {
    /// A kind's name: `email`, `phone`, `mobile-ad-id`, ... (see
    /// [`audience_store::IdentifierKind`]).
    pub kind: String,
    /// The value (the plugin normalises and hashes it).
    pub value: String,
}

/// Most problems listed for one intake call; past this the caller fixes these first.
pub const MAX_PROBLEMS: usize = 100;

impl Engine {
    /// Users enter `sync`: checked whole, prepared by the plugin, committed durably. The
    /// caller has already read the sync (and checked that it may use it).
    pub async fn enter(&self, sync: &SyncRecord, users: Vec<UserInput>) -> Result<IntakeReport, EngineError> {
        let users = check_users(users, &self.shared.config.intake).map_err(EngineError::Invalid)?;
        let destination = self
            .shared
            .destinations
            .get(&sync.destination)
            .ok_or_else(|| EngineError::UnknownDestination(sync.destination.clone()))?;
        let fields: Vec<String> = sync.match_fields.iter().map(|kind| kind.name().to_string()).collect();

        let keys: Vec<String> = users.iter().map(|u| u.key.clone()).collect();
        let started = Instant::now();
        let plugin = destination.plugin.with_quota(self.shared.quota_for(&sync.connection_id));
        let prepared = plugin.prepare_users(&fields, users).await;
        self.shared.metrics.plugin_call(&sync.destination, "prepare-users", started.elapsed());
        let prepared = prepared.map_err(|source| {
            self.shared.metrics.plugin_failed(&sync.destination, "prepare-users", &source);
            EngineError::Plugin { destination: sync.destination.clone(), source }
        })?;

        let mut entry = Entry {
            now_ms: now_ms(),
            flush_ms: self.shared.config.batch.flush_interval.as_millis() as i64,
            skip_synced: sync.reentry == audience_store::Reentry::Skip,
            ..Entry::default()
        };
        let mut not_synced_users = Vec::new();
        for (key, preparation) in keys.into_iter().zip(prepared) {
            match preparation {
                Preparation::Ready(user) => {
                    // The plugin must keep the caller's key; the store keys the queue by it.
                    let payload = payload::encode(&PreparedUser { key: key.clone(), ..user });
                    entry.ready.push(ReadyUser { key, payload });
                }
                Preparation::NotSynced(reason) => {
                    entry.not_synced.push((key.clone(), reason.clone()));
                    not_synced_users.push(NotSyncedUser { key, reason });
                }
            }
        }
        let EnterOutcome { queued, deduplicated, not_synced, already_in_audience } =
            self.shared.store.enter(&sync.id, entry).await?;
        if queued > 0 {
            self.work_arrived(&sync.connection_id, &sync.id).await?;
        }
        Ok(IntakeReport {
            accepted: queued + deduplicated + already_in_audience,
            queued,
            deduplicated,
            already_in_audience,
            not_synced,
            not_synced_users,
        })
    }
}

/// The users as the plugin takes them, or every problem with the call (up to
/// [`MAX_PROBLEMS`]) so the caller fixes them all at once: no users or too many, a blank or
/// too long key, no identifiers, an unknown kind, a blank or too long value.
pub fn check_users(users: Vec<UserInput>, limits: &IntakeConfig) -> Result<Vec<RawUser>, Vec<Problem>> {
    let max = limits.max_users_per_call;
    if users.is_empty() {
        return Err(vec![Problem::new("users", format!("no users given; send between 1 and {max} per call"))]);
    }
    if users.len() > max {
        return Err(vec![Problem::new(
            "users",
            format!("{} users in one call; the limit is {max}: split the call", users.len()),
        )]);
    }
    let mut problems = Vec::new();
    let mut raw = Vec::with_capacity(users.len());
    for (i, user) in users.into_iter().enumerate() {
        if problems.len() >= MAX_PROBLEMS {
            problems.push(Problem::new("users", "more problems not listed; fix these first"));
            break;
        }
        if user.key.trim().is_empty() {
            problems.push(Problem::new(format!("users[{i}].key"), "empty; give each user the caller's stable id"));
        } else if user.key.len() > limits.max_key_bytes {
            problems
                .push(Problem::new(format!("users[{i}].key"), format!("longer than {} bytes", limits.max_key_bytes)));
        }
        if user.identifiers.is_empty() {
            problems.push(Problem::new(
                format!("users[{i}].identifiers"),
                "empty; give at least one identifier, e.g. {\"kind\": \"email\", \"value\": \"ann@example.com\"}",
            ));
        }
        let mut identifiers = Vec::with_capacity(user.identifiers.len());
        for (j, identifier) in user.identifiers.into_iter().enumerate() {
            let field = |part: &str| format!("users[{i}].identifiers[{j}].{part}");
            match identifier.kind.parse::<IdentifierKind>() {
                Err(unknown) => problems.push(Problem::new(field("kind"), unknown.to_string())),
                Ok(_) if identifier.value.trim().is_empty() => {
                    problems.push(Problem::new(field("value"), "empty; give the value or leave the identifier out"))
                }
                Ok(_) if identifier.value.len() > limits.max_value_bytes => {
                    problems.push(Problem::new(field("value"), format!("longer than {} bytes", limits.max_value_bytes)))
                }
                Ok(kind) => identifiers.push(Identifier { kind: kind.name().to_string(), value: identifier.value }),
            }
        }
        raw.push(RawUser { key: user.key, identifiers, consent: user.consent });
    }
    if problems.is_empty() { Ok(raw) } else { Err(problems) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(key: &str, ids: &[(&str, &str)]) -> UserInput {
        UserInput {
            key: key.into(),
            identifiers: ids
                .iter()
                .map(|(kind, value)| IdentifierInput { kind: (*kind).into(), value: (*value).into() })
                .collect(),
            consent: None,
        }
    }

    #[test]
    fn a_good_call_comes_back_typed_in_order() {
        let users = vec![user("a", &[("email", "a@example.com")]), user("b", &[("idfa", "X"), ("phone", "+1 555")])];
        let raw = check_users(users, &IntakeConfig::default()).unwrap();
        assert_eq!(raw.len(), 2);
        assert_eq!(raw[1].identifiers[0].kind, "idfa");
    }

    #[test]
    fn every_problem_of_a_call_is_listed_with_its_field() {
        let limits = IntakeConfig { max_key_bytes: 4, max_value_bytes: 8, ..IntakeConfig::default() };
        let users = vec![
            user(" ", &[("email", "a@example.com")]),
            user("toolong", &[]),
            user("ok", &[("fax", "1"), ("email", " "), ("phone", "123456789")]),
        ];
        let problems = check_users(users, &limits).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "users[0].key",
                "users[0].identifiers[0].value",
                "users[1].key",
                "users[1].identifiers",
                "users[2].identifiers[0].kind",
                "users[2].identifiers[1].value",
                "users[2].identifiers[2].value",
            ]
        );
        assert!(problems[4].message.contains("known: email, phone"));
    }

    #[test]
    fn empty_and_oversized_calls_are_refused_whole() {
        let limits = IntakeConfig { max_users_per_call: 2, ..IntakeConfig::default() };
        assert_eq!(check_users(vec![], &limits).unwrap_err()[0].field, "users");
        let three = vec![user("a", &[("email", "a@x.io")]); 3];
        let problems = check_users(three, &limits).unwrap_err();
        assert!(problems[0].message.contains("the limit is 2"), "{problems:?}");
    }

    #[test]
    fn the_problem_list_is_capped() {
        let users = (0..300).map(|i| user(&format!("k{i}"), &[])).collect();
        let problems = check_users(users, &IntakeConfig::default()).unwrap_err();
        assert_eq!(problems.len(), MAX_PROBLEMS + 1);
        assert_eq!(problems[MAX_PROBLEMS].message, "more problems not listed; fix these first");
    }
}
