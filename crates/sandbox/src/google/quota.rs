//! The Data Manager API's per-project quotas.
//!
//! Google counts requests per Google Cloud project, that is per OAuth client, whatever token
//! or connection they came from, in four buckets (IngestionService mutate and read, every other
//! service's mutate and read), each with a per-minute and a per-day limit. A request over a
//! limit gets HTTP 429 RESOURCE_EXHAUSTED naming the limit in `ErrorInfo.metadata.quota_limit`
//! and is not counted. Google Ads API calls are not counted here: they have quotas of their
//! own, which account discovery never comes near.
//!
//! "Per minute" is counted over a sliding 60 s window (the strictest reading: a client that
//! stays under it stays under any fixed-minute count, and the retry delay is exactly when the
//! oldest counted request leaves the window). "Per day" is a fixed day that starts at midnight
//! Pacific time (UTC-8, daylight saving ignored), as Google Cloud's daily quotas do; the retry
//! delay of a daily refusal is the time to the next reset.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::google::config::{Quota, QuotaLimits};

const MINUTE: Duration = Duration::from_secs(60);
const DAY_SECS: u64 = 24 * 60 * 60;
/// Pacific standard time's offset from UTC, in seconds.
const PACIFIC_OFFSET_SECS: u64 = 8 * 60 * 60;

/// A Data Manager quota bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaBucket {
    /// `audienceMembers:ingest`, `:remove`, `:removeAll`.
    IngestionMutate,
    /// `requestStatus:retrieve`.
    IngestionRead,
    /// User list create, update, delete.
    ManagementMutate,
    /// User list get and list.
    ManagementRead,
}

impl QuotaBucket {
    /// Every bucket.
    pub const ALL: [QuotaBucket; 4] = [
        QuotaBucket::IngestionMutate,
        QuotaBucket::IngestionRead,
        QuotaBucket::ManagementMutate,
        QuotaBucket::ManagementRead,
    ];

    /// The quota limit name of the per-minute limit, as `metadata.quota_limit` names it.
    pub fn minute_limit_name(self) -> &'static str {
        match self {
            QuotaBucket::IngestionMutate => "IngestionMutateRequestsPerMinutePerProject",
            QuotaBucket::IngestionRead => "IngestionReadRequestsPerMinutePerProject",
            QuotaBucket::ManagementMutate => "ManagementMutateRequestsPerMinutePerProject",
            QuotaBucket::ManagementRead => "ManagementReadRequestsPerMinutePerProject",
        }
    }

    /// The quota limit name of the per-day limit.
    pub fn day_limit_name(self) -> &'static str {
        match self {
            QuotaBucket::IngestionMutate => "IngestionMutateRequestsPerDayPerProject",
            QuotaBucket::IngestionRead => "IngestionReadRequestsPerDayPerProject",
            QuotaBucket::ManagementMutate => "ManagementMutateRequestsPerDayPerProject",
            QuotaBucket::ManagementRead => "ManagementReadRequestsPerDayPerProject",
        }
    }

    /// This bucket's limits.
    pub fn quota(self, limits: &QuotaLimits) -> Quota {
        match self {
            QuotaBucket::IngestionMutate => limits.ingestion_mutate,
            QuotaBucket::IngestionRead => limits.ingestion_read,
            QuotaBucket::ManagementMutate => limits.management_mutate,
            QuotaBucket::ManagementRead => limits.management_read,
        }
    }
}

/// A refusal: which limit, its value, and when to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub limit_name: &'static str,
    pub limit_value: u64,
    pub retry_after: Duration,
}

#[derive(Debug, Default)]
struct Counter {
    minute: VecDeque<Instant>,
    day: u64,
    day_count: u64,
}

/// What one bucket saw, for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BucketStats {
    /// Requests counted against the quota (all projects).
    pub counted: u64,
    /// Requests refused with 429 (all projects).
    pub refused: u64,
    /// The most requests one project had counted in any 60 s.
    pub max_per_minute: u64,
}

/// Counters per (project, bucket).
#[derive(Debug, Default)]
pub(crate) struct QuotaBook {
    counters: HashMap<(u64, QuotaBucket), Counter>,
    pub stats: HashMap<QuotaBucket, BucketStats>,
}

fn pacific_day(unix: Duration) -> u64 {
    unix.as_secs().saturating_sub(PACIFIC_OFFSET_SECS) / DAY_SECS
}

fn until_next_day(unix: Duration) -> Duration {
    let day = pacific_day(unix);
    let next = Duration::from_secs((day + 1) * DAY_SECS + PACIFIC_OFFSET_SECS);
    next.saturating_sub(unix)
}

impl QuotaBook {
    /// Counts a request of `project` in `bucket` at `now` (Unix time `unix`), or refuses it.
    pub fn admit(
        &mut self,
        project: u64,
        bucket: QuotaBucket,
        limits: &QuotaLimits,
        now: Instant,
        unix: Duration,
    ) -> Result<(), Refusal> {
        let quota = bucket.quota(limits);
        let counter = self.counters.entry((project, bucket)).or_default();
        while counter.minute.front().is_some_and(|t| now.saturating_duration_since(*t) >= MINUTE) {
            counter.minute.pop_front();
        }
        let day = pacific_day(unix);
        if counter.day != day {
            counter.day = day;
            counter.day_count = 0;
        }
        let refusal = if counter.day_count >= quota.per_day {
            Some(Refusal {
                limit_name: bucket.day_limit_name(),
                limit_value: quota.per_day,
                retry_after: until_next_day(unix),
            })
        } else if counter.minute.len() as u64 >= quota.per_minute {
            let oldest = counter.minute.front().copied().unwrap_or(now);
            let retry_after = (oldest + MINUTE).saturating_duration_since(now);
            Some(Refusal { limit_name: bucket.minute_limit_name(), limit_value: quota.per_minute, retry_after })
        } else {
            None
        };
        let stats = self.stats.entry(bucket).or_default();
        if let Some(refusal) = refusal {
            stats.refused += 1;
            return Err(refusal);
        }
        counter.minute.push_back(now);
        counter.day_count += 1;
        stats.counted += 1;
        stats.max_per_minute = stats.max_per_minute.max(counter.minute.len() as u64);
        Ok(())
    }

    /// Records a forced 429 (an injected fault) in the bucket's refusals.
    pub fn note_forced_refusal(&mut self, bucket: QuotaBucket) {
        self.stats.entry(bucket).or_default().refused += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minute_limit_slides_and_names_itself() {
        let limits = QuotaLimits::uniform(3, 1_000);
        let mut book = QuotaBook::default();
        let start = Instant::now();
        let unix = Duration::from_secs(1_800_000_000);
        for i in 0..3 {
            let at = start + Duration::from_secs(i * 10);
            assert!(book.admit(1, QuotaBucket::IngestionMutate, &limits, at, unix).is_ok());
        }
        let now = start + Duration::from_secs(43);
        let refusal = book.admit(1, QuotaBucket::IngestionMutate, &limits, now, unix).err();
        assert_eq!(
            refusal,
            Some(Refusal {
                limit_name: "IngestionMutateRequestsPerMinutePerProject",
                limit_value: 3,
                retry_after: Duration::from_secs(17),
            })
        );
        assert!(book.admit(2, QuotaBucket::IngestionMutate, &limits, now, unix).is_ok(), "per project");
        assert!(book.admit(1, QuotaBucket::IngestionRead, &limits, now, unix).is_ok(), "per bucket");
        assert!(book.admit(1, QuotaBucket::IngestionMutate, &limits, start + Duration::from_secs(60), unix).is_ok());
        let stats = book.stats[&QuotaBucket::IngestionMutate];
        assert_eq!((stats.counted, stats.refused, stats.max_per_minute), (5, 1, 3));
    }

    #[test]
    fn the_day_limit_resets_at_pacific_midnight() {
        let limits = QuotaLimits::uniform(100, 2);
        let mut book = QuotaBook::default();
        let now = Instant::now();
        // 2027-01-15 07:00 UTC is 23:00 the day before in Pacific time: one hour to the reset.
        let unix = Duration::from_secs(1_799_996_400 + 7 * 3600 - 1_799_996_400 % 86_400);
        for _ in 0..2 {
            assert!(book.admit(9, QuotaBucket::ManagementRead, &limits, now, unix).is_ok());
        }
        let refusal = book.admit(9, QuotaBucket::ManagementRead, &limits, now, unix).err();
        assert_eq!(refusal.as_ref().map(|r| r.limit_name), Some("ManagementReadRequestsPerDayPerProject"));
        assert_eq!(refusal.map(|r| r.retry_after), Some(Duration::from_secs(3600)));
        let tomorrow = unix + Duration::from_secs(3600);
        assert!(book.admit(9, QuotaBucket::ManagementRead, &limits, now, tomorrow).is_ok());
    }
}
