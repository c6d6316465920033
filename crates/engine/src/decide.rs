//! The engine's decisions, as pure functions: what a partner's answer means for the users sent
//! and for the connection and the sync, when a failed user is tried again (or given up on),
//! how a refused batch is split, and which sync a lane claims from next.
//!
//! Nothing here waits, reads the clock or touches the store: the lane gathers the facts (the
//! answer, the time, the user's history), asks for a decision, and carries out its effects
//! (store writes, limiter pauses, token refreshes). So every rule is tested by a table.
//!
//! What each answer to a write (or to the audience look-up before it) decides:
//!
//! | answer | what happens |
//! |---|---|
//! | success | every user synced; a sync marked broken is active again |
//! | success, some users refused | the users the partner refused individually are errored, the others synced |
//! | success, rows dropped without names | as many users as the partner dropped (of those it did not name, last first) are errored with its reason and samples, never synced; the others synced |
//! | `rate-limited` with a wait | the connection pauses for that wait; the users retry after it |
//! | `rate-limited` without a wait | the connection pauses for `rate.default_pause`; the users retry after it |
//! | `unauthorized` | one refresh through `authorize`; if that fails, or the fresh token is refused too, the connection needs re-authorization and its users wait, pending |
//! | `not-found` | the sync is marked broken (visible); the users retry with backoff |
//! | `action-required` | the sync is marked broken with the partner's words (a person must act: accept terms, appeal a flag); the users retry with backoff |
//! | `invalid-request`, several users | the batch is split in halves, each sent on its own, until the users at fault are isolated |
//! | `invalid-request`, one user | the user is errored: refused by the partner |
//! | `rejected-users` (the request refused whole because of the users it names) | the named users are errored with the partner's reasons; the others are sent again at once, unsplit and without waiting (named users not in the request are ignored; when it names none of the request's users it counts as `invalid-request`) |
//! | `transient` | the users retry with backoff and jitter |
//! | plugin failure (trap, timeout, too long, memory limit, contract, instantiate) | the users retry with backoff and jitter |
//! | the runtime had no free instance in time (`busy`: a quota, the plugin's share or the pool was full) | the users retry with backoff and jitter; the connection is not paused and the partner is not blamed: the host's capacity, not a partner's answer |
//! | the host's gate refused a request of the call | the users retry with backoff; the error names the host's refusal (an operator setting), never the partner |
//! | an export the plugin's contract version lacks | the users retry with backoff |
//! | `invalid-request` to the audience look-up | the sync is marked broken (the partner refused its audience settings, not its users); the users retry with backoff, unsplit |
//!
//! A retry that would fall after the user's retry window (default 13 h from entry) errors the
//! user instead, with the last failure as the reason.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use audience_runtime::types::{BatchOutcome, DestinationError};
use audience_runtime::{CallError, PluginError};
use audience_store::{Claim, Health, SyncRecord, SyncStatus, UserOutcome, UserResult};

use super::config::RetryPolicy;

/// What one answer decides: for the users of the request, for the connection, for the sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// What becomes of the users sent.
    pub(crate) users: Fate,
    /// What the lane does to the connection.
    pub(crate) connection: ConnectionEffect,
    /// What the lane does to the sync.
    pub(crate) sync: SyncEffect,
}

/// What becomes of the users of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fate {
    /// The partner took the request: every user is synced except those it refused one by one,
    /// errored with the reason given here (key, reason).
    Delivered {
        /// The users refused individually, with the reason recorded for each.
        refused: Vec<(String, Arc<str>)>,
        /// One reason per row the partner dropped without naming its user (the rows of one
        /// report share one copy).
        dropped: Vec<Arc<str>>,
    },
    /// The partner refused the request as sent: send each half of it on its own.
    Split {
        /// The partner's reason.
        why: String,
    },
    /// The partner refused the request whole because of these users (key, reason): they are
    /// errored, the others are sent again at once ([`resend`] tells them apart).
    Resend {
        /// The users the partner named, with the reason recorded for each.
        refused: Vec<(String, Arc<str>)>,
    },
    /// The partner accepted the request and finishes it later: the users are `submitted` (the
    /// lane recorded the submission) and get their verdict when the partner says.
    Submitted,
    /// Nothing was sent: the sync was paused or deleted before the request left (see
    /// [`super::send_gate`]). The users are pending again as if never claimed.
    Unsent,
    /// Every user is errored with this reason.
    Errored {
        /// The reason recorded for each (one copy, shared).
        reason: Arc<str>,
    },
    /// Every user is tried again: at `at` (ms), or after the backoff when `None`.
    Retry {
        /// The failure, recorded with the retry (and in the reason if the window runs out); one
        /// copy, shared by the users.
        error: Arc<str>,
        /// When to try again; `None`: after the backoff for the user's attempts.
        at: Option<i64>,
    },
}

/// What the lane does to the connection after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnectionEffect {
    /// Nothing.
    None,
    /// The credentials work: a later 401 may refresh them again.
    CredentialsWork,
    /// Send nothing with the connection's token for this long.
    Pause(Duration),
    /// Refresh the credentials once, or park the connection (see [`after_unauthorized`]).
    RefreshOrPark {
        /// The partner's reason.
        why: String,
    },
}

/// What the lane does to the sync after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SyncEffect {
    /// Nothing.
    None,
    /// The sync works: if it was marked broken, it is active again.
    Works,
    /// Mark the sync broken, with this reason shown to people.
    Broken {
        /// The reason.
        reason: String,
    },
}

/// What the partner answered to one write of `group_len` users (or to the audience look-up
/// before it), at `now_ms`. `default_pause` is the pause after a 429 that gave no wait.
pub(crate) fn classify(
    answer: Result<&BatchOutcome, &CallError>,
    group_len: usize,
    now_ms: i64,
    default_pause: Duration,
) -> Decision {
    let err = match answer {
        Ok(outcome) => {
            let refused = outcome
                .rejected
                .iter()
                .map(|r| (r.key.clone(), Arc::from(format!("refused by the partner: {}", r.reason))))
                .collect();
            let dropped = outcome
                .unattributed
                .iter()
                .flat_map(|d| {
                    let samples = if d.samples.is_empty() {
                        String::new()
                    } else {
                        format!(" (examples: {})", d.samples.join(", "))
                    };
                    let reason: Arc<str> = Arc::from(format!(
                        "dropped by the partner without naming the user, {} of this batch's rows: {}{samples}",
                        d.count, d.reason
                    ));
                    std::iter::repeat_n(reason, d.count as usize)
                })
                .take(group_len)
                .collect();
            return Decision {
                users: Fate::Delivered { refused, dropped },
                connection: ConnectionEffect::CredentialsWork,
                sync: SyncEffect::Works,
            };
        }
        Err(err) => err,
    };
    let error: Arc<str> = Arc::from(err.to_string());
    let retry = |at| Fate::Retry { error: Arc::clone(&error), at };
    let (users, connection, sync) = match err {
        CallError::Destination(DestinationError::RateLimited(ms)) => {
            let pause = ms.map_or(default_pause, |ms| Duration::from_millis(ms.into()));
            (retry(Some(now_ms.saturating_add(millis(pause)))), ConnectionEffect::Pause(pause), SyncEffect::None)
        }
        CallError::Destination(DestinationError::Unauthorized(why)) => {
            (retry(Some(now_ms)), ConnectionEffect::RefreshOrPark { why: why.clone() }, SyncEffect::None)
        }
        CallError::Destination(DestinationError::NotFound(why)) => {
            let reason = format!("the partner says the account or audience is gone: {why}");
            (retry(None), ConnectionEffect::None, SyncEffect::Broken { reason })
        }
        CallError::Destination(DestinationError::ActionRequired(why)) => {
            let reason = format!("the partner needs someone to act: {why}");
            (retry(None), ConnectionEffect::None, SyncEffect::Broken { reason })
        }
        CallError::Destination(DestinationError::RejectedUsers(users)) => {
            let refused = users
                .iter()
                .map(|r| (r.key.clone(), Arc::from(format!("refused by the partner: {}", r.reason))))
                .collect();
            (Fate::Resend { refused }, ConnectionEffect::None, SyncEffect::None)
        }
        CallError::Destination(DestinationError::InvalidRequest(why)) if group_len > 1 => {
            (Fate::Split { why: why.clone() }, ConnectionEffect::None, SyncEffect::None)
        }
        CallError::Destination(DestinationError::InvalidRequest(why)) => (
            Fate::Errored { reason: Arc::from(format!("refused by the partner: {why}")) },
            ConnectionEffect::None,
            SyncEffect::None,
        ),
        // The host's own capacity was full: nothing was sent, nobody is to blame but the load.
        CallError::Plugin(PluginError::Busy { .. }) => (retry(None), ConnectionEffect::None, SyncEffect::None),
        CallError::Destination(DestinationError::Transient(_))
        | CallError::Plugin(_)
        | CallError::HostRefused(_)
        | CallError::Unsupported { .. } => (retry(None), ConnectionEffect::None, SyncEffect::None),
    };
    Decision { users, connection, sync }
}

/// What a failed audience look-up (`upsert-audience`, before any user was sent) decides: as a
/// failed write, except that `invalid-request` refuses the sync's audience settings, not the
/// users, so splitting the batch would only repeat the look-up once per user. The sync is
/// marked broken instead and the users wait out the backoff together.
pub(crate) fn classify_lookup(err: &CallError, now_ms: i64, default_pause: Duration) -> Decision {
    match err {
        CallError::Destination(DestinationError::InvalidRequest(_) | DestinationError::RejectedUsers(_)) => Decision {
            users: Fate::Retry { error: Arc::from(err.to_string()), at: None },
            connection: ConnectionEffect::None,
            sync: SyncEffect::Broken {
                reason: format!("the partner refused the sync's audience settings: {}", audience_refusal(err)),
            },
        },
        other => classify(Err(other), 1, now_ms, default_pause),
    }
}

/// The partner's words when it refused an audience look-up.
fn audience_refusal(err: &CallError) -> String {
    match err {
        CallError::Destination(DestinationError::InvalidRequest(why)) => why.clone(),
        other => other.to_string(),
    }
}

/// The users of a request refused whole because of some of them: the named users' verdicts,
/// and the others (sent again).
pub(crate) type Resend<T> = (Vec<(String, Verdict)>, Vec<T>);

/// A request of `group` (each user's key given by `key`) the partner refused whole because of
/// the users it named (`refused`): the verdicts of the named users (errored), and the others,
/// to be sent again. When it named none of the group, the group comes back as `Err`: nothing
/// would change by sending it again, so the answer counts as `invalid-request`
/// ([`named_none`]).
pub(crate) fn resend<T>(
    group: Vec<T>,
    key: impl Fn(&T) -> &str,
    refused: Vec<(String, Arc<str>)>,
) -> Result<Resend<T>, Vec<T>> {
    let refused: HashMap<String, Arc<str>> = refused.into_iter().collect();
    let mut named = Vec::new();
    let mut rest = Vec::new();
    for user in group {
        match refused.get(key(&user)) {
            Some(reason) => named.push((key(&user).to_string(), Verdict::Rejected(Arc::clone(reason)))),
            None => rest.push(user),
        }
    }
    if named.is_empty() { Err(rest) } else { Ok((named, rest)) }
}

/// The fate of a request of `group_len` users refused whole with `rejected-users` naming none of
/// them: as `invalid-request` (split, or errored when alone).
pub(crate) fn named_none(group_len: usize) -> Fate {
    let why = "the partner refused the request because of users it named, but none of them was in the request";
    if group_len > 1 {
        Fate::Split { why: why.to_string() }
    } else {
        Fate::Errored { reason: Arc::from(format!("refused by the partner: {why}")) }
    }
}

/// The partner accepted a write and finishes it later: the users are submitted, and the answer
/// shows the credentials and the sync work.
pub(crate) fn submitted() -> Decision {
    Decision { users: Fate::Submitted, connection: ConnectionEffect::CredentialsWork, sync: SyncEffect::Works }
}

/// Whether a sync with `outstanding` batches (in flight or submitted) may not send another
/// under `limit` (`limits.max-submissions-per-audience`; 0: no limit).
pub(crate) fn at_submission_limit(outstanding: u32, limit: u32) -> bool {
    limit > 0 && outstanding >= limit
}

/// The connection has no credentials the lane can read: nothing is sent, the users retry.
pub(crate) fn without_credentials() -> Decision {
    Decision {
        users: Fate::Retry { error: "the connection has no usable credentials".into(), at: None },
        connection: ConnectionEffect::None,
        sync: SyncEffect::None,
    }
}

/// What became of one user in a delivery, before the retry arithmetic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The partner has it.
    Synced,
    /// Refused for good, with this reason (shared with the batch's other users).
    Rejected(Arc<str>),
    /// Try again: at the given time (ms), or after the backoff when `None`.
    Failed {
        /// The failure (shared with the batch's other users).
        error: Arc<str>,
        /// When the partner asked to try again.
        retry_at: Option<i64>,
    },
    /// Not sent: the sync was paused or deleted before the request left. Pending again, as
    /// if never claimed.
    Unsent,
}

/// Each user's verdict from the fate of the request that carried them. `Split` gives none: the
/// users are sent again, in halves; nor does `Submitted`: the partner has not finished.
pub(crate) fn verdicts(keys: Vec<String>, fate: Fate) -> Vec<(String, Verdict)> {
    match fate {
        Fate::Delivered { refused, mut dropped } => {
            let refused: HashMap<String, Arc<str>> = refused.into_iter().collect();
            let mut verdicts: Vec<(String, Verdict)> = keys
                .into_iter()
                .map(|key| {
                    let verdict = match refused.get(&key) {
                        Some(reason) => Verdict::Rejected(Arc::clone(reason)),
                        None => Verdict::Synced,
                    };
                    (key, verdict)
                })
                .collect();
            // The partner did not say which rows it dropped: count them against the users it
            // did not name, from the end, so that the sync's counts are right and none of them
            // reads as synced on the partner's word alone.
            for (_, verdict) in verdicts.iter_mut().rev() {
                if *verdict != Verdict::Synced {
                    continue;
                }
                match dropped.pop() {
                    Some(reason) => *verdict = Verdict::Rejected(reason),
                    None => break,
                }
            }
            verdicts
        }
        Fate::Split { .. } | Fate::Submitted => Vec::new(),
        Fate::Unsent => keys.into_iter().map(|k| (k, Verdict::Unsent)).collect(),
        // Only the named users have a verdict yet; the lane sends the others again.
        Fate::Resend { refused } => resend(keys, String::as_str, refused).map(|(named, _)| named).unwrap_or_default(),
        // One reason for the whole request: every user holds the same copy.
        Fate::Errored { reason } => keys.into_iter().map(|k| (k, Verdict::Rejected(Arc::clone(&reason)))).collect(),
        Fate::Retry { error, at } => {
            keys.into_iter().map(|k| (k, Verdict::Failed { error: Arc::clone(&error), retry_at: at })).collect()
        }
    }
}

/// A failed user's next step, at `now_ms`: tried again at the partner's time (`retry_at`) or
/// after the backoff for its `attempts` so far (with `random_unit` in `[0, 1]` as the jitter);
/// or errored, when that time falls after the user's retry window (counted from
/// `entered_at`), with the last failure in the reason.
pub(crate) fn retry_or_give_up(
    now_ms: i64,
    entered_at: i64,
    attempts: u32,
    retry_at: Option<i64>,
    error: Arc<str>,
    policy: &RetryPolicy,
    random_unit: f64,
) -> UserOutcome {
    let not_before = retry_at
        .unwrap_or_else(|| now_ms.saturating_add(millis(policy.backoff(attempts.saturating_add(1), random_unit))));
    if not_before > entered_at.saturating_add(millis(policy.window)) {
        UserOutcome::Errored(Arc::from(format!("{}; last error: {error}", out_of_window(policy))))
    } else {
        UserOutcome::Retry { not_before_ms: not_before, error }
    }
}

/// The reason recorded for a user whose retry window ran out.
pub(crate) fn out_of_window(policy: &RetryPolicy) -> String {
    format!("not delivered within the retry window of {}", humantime::format_duration(policy.window))
}

/// The claim of a batch of at most `max` users at `now_ms`: users past their retry window
/// are errored first. `lane_owner` fences the claim by this host's lease (several hosts).
pub(crate) fn claim(now_ms: i64, max: u32, policy: &RetryPolicy, lane_owner: Option<String>) -> Claim {
    Claim {
        now_ms,
        max: max as usize,
        expire_before_ms: now_ms.saturating_sub(millis(policy.window)),
        expired_reason: out_of_window(policy),
        lane_owner,
    }
}

/// The groups of a batch still to send, while `invalid-request` answers split it: each split
/// puts the group's two halves first, the first half before the second, so the users at fault
/// end up alone in a group (and are errored) while the others are delivered.
#[derive(Debug)]
pub(crate) struct Isolation<T> {
    groups: Vec<Vec<T>>,
}

impl<T> Isolation<T> {
    /// Start with the whole batch as one group.
    pub(crate) fn new(users: Vec<T>) -> Self {
        Self { groups: vec![users] }
    }

    /// The next group to send (never empty), or `None` when every user has a verdict.
    pub(crate) fn next_group(&mut self) -> Option<Vec<T>> {
        while let Some(group) = self.groups.pop() {
            if !group.is_empty() {
                return Some(group);
            }
        }
        None
    }

    /// Send `group` next, before the groups still waiting.
    pub(crate) fn push(&mut self, group: Vec<T>) {
        self.groups.push(group);
    }

    /// The partner refused `group` as sent: its halves are sent next.
    pub(crate) fn split(&mut self, group: Vec<T>) {
        let (first, second) = halves(group);
        self.groups.push(second);
        self.groups.push(first);
    }
}

/// A group cut in two: the first `len / 2` users, and the rest.
pub(crate) fn halves<T>(mut group: Vec<T>) -> (Vec<T>, Vec<T>) {
    let second = group.split_off(group.len() / 2);
    (group, second)
}

/// Whether the lane may claim from `sync`: it is not paused, and its audience is not being
/// resolved by a batch in flight (one batch at a time until the audience is known, so it is
/// created once).
pub(crate) fn claimable(sync: &SyncRecord, resolving: &HashSet<String>) -> bool {
    sync.status != SyncStatus::Paused && !resolving.contains(&sync.id)
}

/// The syncs to try claiming from, in order: the claimable ones, least recently served first
/// (`served`: each sync's serial number at its last batch; never served goes first), ties in
/// the lane's order. A sync with a backlog then gets every other turn at most while another
/// has work, and a sync whose users just became due goes next, one request slot behind.
pub(crate) fn claim_order(
    syncs: &[SyncRecord],
    held: &HashSet<String>,
    served: &std::collections::HashMap<String, u64>,
) -> Vec<SyncRecord> {
    let mut candidates: Vec<(u64, usize, &SyncRecord)> = syncs
        .iter()
        .enumerate()
        .filter(|(_, sync)| claimable(sync, held))
        .map(|(i, sync)| (served.get(&sync.id).copied().unwrap_or(0), i, sync))
        .collect();
    candidates.sort_by_key(|(serial, i, _)| (*serial, *i));
    candidates.into_iter().map(|(_, _, sync)| sync.clone()).collect()
}

/// A failing sync's probe schedule: after `failures` deliveries in a row whose every request
/// failed, the sync is not claimed again before `next_at` (ms). One probe per backoff
/// interval, instead of one request per slot of the connection's rate for as long as its
/// backlog lasts (each repeating the audience look-up), which starved the healthy syncs on
/// the same token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Probe {
    /// Deliveries in a row whose requests all failed.
    pub(crate) failures: u32,
    /// Not claimed before this time (ms).
    pub(crate) next_at: i64,
}

impl Probe {
    /// Whether the sync is still held at `now_ms`.
    pub(crate) fn holds_at(&self, now_ms: i64) -> bool {
        now_ms < self.next_at
    }
}

/// What a delivery says about its sync's health: `Some(true)` when every user came back for a
/// retry (no request of it worked), `Some(false)` when the partner took or judged any of them,
/// `None` when nothing was sent (all unsent, or all submitted and still to be judged: a
/// submission is an accepted request, so it counts as working).
pub(crate) fn delivery_failed(outcomes: &[UserOutcome], submitted: usize) -> Option<bool> {
    if submitted > 0 {
        return Some(false);
    }
    let sent: Vec<&UserOutcome> = outcomes.iter().filter(|o| !matches!(o, UserOutcome::Unsent)).collect();
    if sent.is_empty() {
        return None;
    }
    Some(sent.iter().all(|o| matches!(o, UserOutcome::Retry { .. })))
}

/// The sync's probe schedule after a delivery at `now_ms` (`failed` from
/// [`delivery_failed`]): cleared by one that worked, pushed back by the backoff for one more
/// failure in a row (with `random_unit` as the jitter) by one that failed, and by at least
/// `policy.broken_probe_every` for a sync the partner says is gone (`broken`).
pub(crate) fn probe_after(
    before: Option<Probe>,
    failed: Option<bool>,
    now_ms: i64,
    policy: &RetryPolicy,
    random_unit: f64,
    broken: bool,
) -> Option<Probe> {
    match failed {
        None => before,
        Some(false) => None,
        Some(true) => {
            let failures = before.map_or(0, |p| p.failures).saturating_add(1);
            let mut wait = policy.backoff(failures, random_unit);
            if broken {
                wait = wait.max(policy.broken_probe_every);
            }
            Some(Probe { failures, next_at: now_ms.saturating_add(millis(wait)) })
        }
    }
}

/// The earliest end of a probe hold among `syncs` after `now_ms`, if any.
pub(crate) fn next_probe(
    syncs: &[SyncRecord],
    probes: &std::collections::HashMap<String, Probe>,
    now_ms: i64,
) -> Option<i64> {
    syncs
        .iter()
        .filter(|sync| sync.status != SyncStatus::Paused)
        .filter_map(|sync| probes.get(&sync.id))
        .filter(|p| p.holds_at(now_ms))
        .map(|p| p.next_at)
        .min()
}

/// The deliveries a destination's lanes may have under way at once on a host, for a plugin
/// that may hold `share` instances: three quarters of them, so that intake and the API's calls
/// always find one (see `Shared::delivery_slots_for`); all of a share below 4, at least 1.
pub(crate) fn delivery_slots(share: usize) -> usize {
    (share - share / 4).max(1)
}

/// Whether the lane must not send: the credentials need a person (or are missing), or no
/// sync is active.
pub(crate) fn parked(health: Health, has_credentials: bool, syncs: &[SyncRecord]) -> bool {
    health != Health::Ok || !has_credentials || !syncs.iter().any(|sync| sync.status != SyncStatus::Paused)
}

/// How long an idle lane sleeps at `now_ms` until `at_ms`, the soonest time it knows
/// something becomes due (at least 10 ms); `None` when nothing is: it sleeps until woken.
pub(crate) fn next_wake(at_ms: Option<i64>, now_ms: i64) -> Option<Duration> {
    at_ms.map(|at| Duration::from_millis(at.saturating_sub(now_ms).max(10) as u64))
}

/// The next step after a 401 on credentials version `failed_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AfterUnauthorized {
    /// The credentials changed since (another call refreshed them, or a person connected
    /// again): nothing to do, the users retry with the new ones.
    AlreadyChanged,
    /// Renew the credentials through `authorize(refresh(..))`.
    Refresh,
    /// A person must connect again, for this reason; the users wait, pending.
    Park(String),
}

/// After a 401 on `failed_version`, knowing the lane's `current_version`, the version the last
/// refresh gave (`refreshed_to`, cleared by any success) and whether the credentials can be
/// renewed at all ([`renewable`]): refresh once; a 401 right after a refresh, or with nothing
/// to renew with, parks the connection.
pub(crate) fn after_unauthorized(
    failed_version: i64,
    current_version: i64,
    refreshed_to: Option<i64>,
    renewable: bool,
    why: &str,
) -> AfterUnauthorized {
    if current_version != failed_version {
        return AfterUnauthorized::AlreadyChanged;
    }
    match (refreshed_to == Some(failed_version), renewable) {
        (true, _) => AfterUnauthorized::Park(format!("{why} (even right after a token refresh)")),
        (false, false) => AfterUnauthorized::Park(format!("{why} (nothing to renew the credentials with)")),
        (false, true) => AfterUnauthorized::Refresh,
    }
}

/// Whether credentials can be renewed without a person at `now_s` (seconds): with a refresh
/// token, or (partners without refresh tokens, such as Meta) while the plugin says renewal
/// still works (`renewable-until`).
pub(crate) fn renewable(creds: &audience_runtime::types::Credentials, now_s: u64) -> bool {
    creds.refresh_token.is_some() || creds.renewable_until.is_some_and(|until| until > now_s)
}

/// Below this share of the partner's own budget (percent), requests keep their spacing.
pub(crate) const BUDGET_SLOW_FROM: f32 = 75.0;

/// How much further apart requests are spaced when the partner reports `used_percent` of its
/// own budget spent (`pacing.report-budget`): 1 below [`BUDGET_SLOW_FROM`], rising to 10 just
/// under 100, so a connection slows before the partner refuses; `None` at 100, where the
/// partner refuses and the connection pauses instead.
pub(crate) fn budget_slowdown(used_percent: f32) -> Option<f64> {
    if used_percent >= 100.0 {
        return None;
    }
    if used_percent < BUDGET_SLOW_FROM {
        return Some(1.0);
    }
    let over = f64::from((used_percent - BUDGET_SLOW_FROM) / (100.0 - BUDGET_SLOW_FROM));
    Some(1.0 / (1.0 - 0.9 * over))
}

/// When the connection stops working unless a person connects again, in seconds since the
/// epoch: the end of renewal (`renewable-until`) where the credentials can be renewed, else the
/// access token's expiry; `None` when neither is known (a token that never expires).
pub fn lapses_at(creds: &audience_runtime::types::Credentials, now_s: u64) -> Option<u64> {
    if creds.refresh_token.is_some() {
        return creds.renewable_until;
    }
    match creds.renewable_until {
        Some(until) if until > now_s => Some(until),
        _ => creds.expires_at,
    }
}

/// When to renew credentials first seen at `now_s`, in seconds since the epoch: `lead` before
/// the access token expires, or half its remaining life when that is shorter (a 1-hour token is
/// renewed after 30 minutes, never in a loop); `None` when it does not expire or cannot be
/// renewed. Decide it once per credentials, not at every look.
pub(crate) fn renew_at(creds: &audience_runtime::types::Credentials, now_s: u64, lead: Duration) -> Option<u64> {
    let expires = creds.expires_at?;
    if !renewable(creds, now_s) {
        return None;
    }
    let remaining = expires.saturating_sub(now_s);
    Some(expires.saturating_sub(lead.as_secs().min(remaining / 2)))
}

/// The label of a delivered batch in the metrics: `synced` (all), `retry` (all), `partial`
/// (some synced) or `errored` (none synced, not all retried).
pub(crate) fn batch_label(results: &[UserResult]) -> &'static str {
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

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
