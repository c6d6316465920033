//! The engine's knobs, each a small struct with documented defaults (the reference product's
//! figures), so an operator overrides one number without restating the rest.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of the sync engine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Batching.
    pub batch: BatchConfig,
    /// Retries.
    pub retry: RetryPolicy,
    /// Rate limiting.
    pub rate: RateConfig,
    /// Intake.
    pub intake: IntakeConfig,
    /// Lane leases between hosts sharing one database.
    pub lease: LeaseConfig,
    /// The most a plugin's manifest may declare (the operator's per-plugin overrides are not
    /// capped).
    pub caps: crate::ManifestCaps,
    /// What `/metrics` shows.
    pub metrics: crate::MetricsConfig,
    /// How long the syncs' ledgers keep history.
    pub ledger: LedgerConfig,
}

/// How long each sync's ledger keeps history. Users who are members (synced, pending, not
/// synced) are kept as long as the sync exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LedgerConfig {
    /// Errored users whose last entry is older than this leave the ledger, and the sync errors
    /// recorded before it are removed, a chunk at a time. Default 30 days.
    #[serde(with = "humantime_serde")]
    pub errored_retention: Duration,
}

impl Default for LedgerConfig {
    fn default() -> Self {
        Self { errored_retention: Duration::from_secs(30 * 86_400) }
    }
}

/// When a batch is sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// A partial batch is sent once its oldest user has waited this long. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { flush_interval: Duration::from_secs(5) }
    }
}

/// How failed deliveries are retried.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// First backoff. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Backoff doubles up to this. Default 10 min.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// A user not delivered this long after entering is errored. Default 13 h.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// A sync the partner says is gone (its audience or ad account deleted: the sync shows
    /// `broken`) is tried again no sooner than this after each failure, whatever the backoff:
    /// such a sync heals when a person acts, not within seconds, and each try spends the
    /// token's requests (a look-up by name pages through the account's audiences) that the
    /// connection's other syncs could use. Default 1 min.
    #[serde(with = "humantime_serde")]
    pub broken_probe_every: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            window: Duration::from_secs(13 * 3600),
            broken_probe_every: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (`attempt` failures so far, at least 1):
    /// exponential with "equal jitter" — half fixed, half random — so retries of many
    /// batches spread out instead of arriving together.
    pub fn backoff(&self, attempt: u32, random_unit: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self.initial_backoff.saturating_mul(1u32 << exp).min(self.max_backoff);
        let half = base / 2;
        half + half.mul_f64(random_unit.clamp(0.0, 1.0))
    }
}

/// How requests are paced per connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateConfig {
    /// The floor of the guard: extra spacing between requests and extra length of the window
    /// departures are counted in, as a fraction of the nominal interval, for what the host
    /// cannot measure (the way from its socket to the partner's counter: the network, the
    /// partner's own front end). The host adds the variation it measures on its own send path
    /// (at most 0.1 more); see `limiter`. Default 0.02: 20 ms a second at any rate.
    pub guard: f64,
    /// Backoff after a 429 that did not say how long to wait. Default 1 s.
    #[serde(with = "humantime_serde")]
    pub default_pause: Duration,
    /// The longest a call made for the API (listing accounts, searching audiences, checking a
    /// new sync's target, exchanging an OAuth code) waits for its turn in the connection's
    /// budget. Beyond it the request is not sent, takes no slot, and the API answers 429 with
    /// `Retry-After`. Default 2 s.
    #[serde(with = "humantime_serde")]
    pub api_max_wait: Duration,
    /// The most of a connection's rate the calls made for the API that read (listing accounts,
    /// searching audiences) may use while the connection delivers, from 0 (exclusive) to 1; a
    /// person's change (a new sync's check, a re-authorization) is not held to it. The reads
    /// are then paced by a second limiter at this share
    /// of the rate as well as by the connection's, so that people listing accounts or searching
    /// audiences (say from a UI that many people use at once) never leave the deliveries less
    /// than the rest. An idle connection's whole rate is the API's. A call whose turn under
    /// either is beyond `api_max_wait` answers 429. Default 0.25: at Pinterest's 7
    /// requests/s, 1.75 for the API and at least 5.25 for delivery.
    pub api_share: f64,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            guard: 0.02,
            default_pause: Duration::from_secs(1),
            api_max_wait: Duration::from_secs(2),
            api_share: 0.25,
        }
    }
}

impl RateConfig {
    /// What is wrong with these settings, if anything.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(self.api_share > 0.0 && self.api_share <= 1.0) {
            problems.push(format!(
                "api_share = {}: give a share of the connection's rate above 0 and at most 1 (0.25 by default)",
                self.api_share
            ));
        }
        if !(self.guard.is_finite() && (0.0..1.0).contains(&self.guard)) {
            problems.push(format!("guard = {}: give a share from 0 to below 1 (0.02 by default)", self.guard));
        }
        problems
    }
}

/// Limits on each intake call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    /// Most users in one call. Default 10,000.
    pub max_users_per_call: usize,
    /// Longest user key, in bytes. Default 256.
    pub max_key_bytes: usize,
    /// Longest identifier value, in bytes. Default 1,024.
    pub max_value_bytes: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self { max_users_per_call: 10_000, max_key_bytes: 256, max_value_bytes: 1024 }
    }
}

/// How hosts sharing one database (PostgreSQL) divide the connections' lanes between them.
///
/// Each connection's lane (the task that sends its batches) is owned by one host at a time
/// through a lease row in the database. The owner renews its leases every `renew_every`; a
/// host that stops renewing (killed, frozen, cut off from the database) loses them `ttl`
/// after its last renewal, and the other hosts take its lanes over, putting back to pending
/// the users it had in flight. A lane stops claiming new batches once less than half of `ttl`
/// is left on its lease, so a batch it sends has that half-`ttl` to finish before anyone else
/// may take the lane: keep `ttl` above twice the plugins' HTTP timeout (30 s by default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaseConfig {
    /// Whether lanes are leased. The host turns this on when the store is PostgreSQL (several
    /// hosts may share it) and off for SQLite (one host owns the file). Default off.
    pub enabled: bool,
    /// How long a lease lasts without renewal: the longest a dead host's lanes stay idle.
    /// Default 60 s.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// How often a host renews its leases, sends its heartbeat and rebalances lanes with the
    /// other live hosts. Default 5 s.
    #[serde(with = "humantime_serde")]
    pub renew_every: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        Self { enabled: false, ttl: Duration::from_secs(60), renew_every: Duration::from_secs(5) }
    }
}

impl LeaseConfig {
    /// Every problem with these settings, in words an operator can act on.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.ttl < Duration::from_millis(500) {
            problems.push(format!("engine.lease.ttl is {:?}; give it at least 500ms (60s is the default)", self.ttl));
        }
        if self.renew_every.is_zero() || self.renew_every * 3 > self.ttl {
            problems.push(format!(
                "engine.lease.renew_every ({:?}) must be above zero and at most a third of engine.lease.ttl ({:?}), \
                 so one missed renewal does not lose the lanes",
                self.renew_every, self.ttl
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
        assert_eq!(p.backoff(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff(2, 1.0), Duration::from_secs(2));
        assert_eq!(p.backoff(4, 0.0), Duration::from_secs(4));
        assert_eq!(p.backoff(20, 1.0), Duration::from_secs(600));
        assert_eq!(p.backoff(u32::MAX, 1.0), Duration::from_secs(600));
    }

    #[test]
    fn lease_settings_that_would_lose_lanes_are_refused() {
        assert!(LeaseConfig::default().problems().is_empty());
        let slow_renewal = LeaseConfig { renew_every: Duration::from_secs(30), ..LeaseConfig::default() };
        assert_eq!(slow_renewal.problems().len(), 1);
        let tiny = LeaseConfig { ttl: Duration::from_millis(100), renew_every: Duration::ZERO, enabled: true };
        assert_eq!(tiny.problems().len(), 2);
    }
}
