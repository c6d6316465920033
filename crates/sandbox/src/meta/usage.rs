//! Rate limits: the per-ad-account `custom_audience` Business Use Case budget and the usage
//! headers.
//!
//! Every call addressed to an ad account (`/act_<n>/...`) or to one of its audiences counts
//! against that account's budget ([`UsageBudget`]: calls per rolling window) and is answered
//! with `X-Business-Use-Case-Usage`, whose `call_count` is the percentage of the budget used.
//! Once it reaches 100 the next calls get code 80003 subcode 2446079 (HTTP 400, as Meta sends
//! throttles) with `estimated_time_to_regain_access` > 0 (minutes, rounded up) until enough
//! calls leave the window. Refused calls do not count. `total_cputime` and `total_time` are
//! reported equal to `call_count` (the sandbox models no CPU or wall-time budget).
//!
//! `X-Ad-Account-Usage` reports the account score (reads 1, writes 3, [`ScoreBudget`]) as
//! `acc_id_util_pct` with `reset_time_duration` in seconds; it is never enforced.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use serde_json::json;

use crate::meta::config::{MetaConfig, ScoreBudget, UsageBudget};
use crate::window::SlidingWindow;

/// Meta's tier name in the usage headers.
const ACCESS_TIER: &str = "standard_access";
const BUC_HEADER: HeaderName = HeaderName::from_static("x-business-use-case-usage");
const ACCOUNT_HEADER: HeaderName = HeaderName::from_static("x-ad-account-usage");

/// One account's `custom_audience` usage, as the header reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BucUsage {
    /// Percentage of the call budget used in the window (`call_count`).
    pub call_count: u64,
    /// Reported equal to `call_count`.
    pub total_cputime: u64,
    /// Reported equal to `call_count`.
    pub total_time: u64,
    /// Minutes until calls are admitted again; 0 while they are.
    pub estimated_time_to_regain_access: u64,
    /// Calls counted in the current window.
    pub calls_in_window: u64,
    /// The account's budget per window.
    pub budget: u64,
}

/// Budget book-keeping for every account.
#[derive(Debug)]
pub(crate) struct Usage {
    budget: UsageBudget,
    score_budget: ScoreBudget,
    calls: SlidingWindow<u64>,
    score: SlidingWindow<u64>,
    /// The highest `call_count` reported per account.
    pub max_seen: HashMap<u64, u64>,
    /// Calls refused with 80003 by the budget.
    pub throttled: usize,
}

fn minutes_rounded_up(d: Duration) -> u64 {
    d.as_secs().div_ceil(60).max(u64::from(!d.is_zero()))
}

impl Usage {
    pub fn new(config: &MetaConfig) -> Self {
        Self {
            budget: config.usage,
            score_budget: config.account_score,
            calls: SlidingWindow::new(config.usage.window),
            score: SlidingWindow::new(config.account_score.window),
            max_seen: HashMap::new(),
            throttled: 0,
        }
    }

    /// Counts a call to `account` (holding `audiences` audiences) unless its budget is
    /// exhausted; false when the call must be refused.
    pub fn admit(&mut self, account: u64, audiences: usize, now: Instant, write: bool) -> bool {
        let budget = self.budget.calls_for(audiences);
        if self.calls.total(&account, now) >= budget {
            self.throttled += 1;
            return false;
        }
        self.calls.record(account, now, 1);
        self.score.record(account, now, if write { 3 } else { 1 });
        true
    }

    /// The account's usage now.
    pub fn reading(&mut self, account: u64, audiences: usize, now: Instant) -> BucUsage {
        let budget = self.budget.calls_for(audiences);
        let calls = self.calls.total(&account, now);
        let pct = calls.saturating_mul(100) / budget;
        let regain = if calls >= budget { self.calls.time_until_below(&account, now, budget) } else { Duration::ZERO };
        BucUsage {
            call_count: pct,
            total_cputime: pct,
            total_time: pct,
            estimated_time_to_regain_access: minutes_rounded_up(regain),
            calls_in_window: calls,
            budget,
        }
    }

    /// Adds both usage headers for `account` to `headers`, remembering the highest call count,
    /// and returns the `call_count` reported. `forced_throttle` reports an exhausted budget
    /// whatever the count (an injected throttle).
    pub fn add_headers(
        &mut self,
        headers: &mut HeaderMap,
        account: u64,
        audiences: usize,
        now: Instant,
        forced_throttle: bool,
    ) -> u64 {
        let mut usage = self.reading(account, audiences, now);
        if forced_throttle {
            usage.call_count = usage.call_count.max(100);
            usage.estimated_time_to_regain_access = usage.estimated_time_to_regain_access.max(1);
        }
        let seen = self.max_seen.entry(account).or_default();
        *seen = (*seen).max(usage.call_count);
        let buc = json!({ account.to_string(): [{
            "type": "custom_audience",
            "call_count": usage.call_count,
            "total_cputime": usage.total_cputime,
            "total_time": usage.total_time,
            "estimated_time_to_regain_access": usage.estimated_time_to_regain_access,
            "ads_api_access_tier": ACCESS_TIER,
        }]});
        let score = self.score.total(&account, now);
        let pct = (score as f64 * 100.0 / self.score_budget.max_score.max(1) as f64 * 100.0).round() / 100.0;
        let reset = self.score.time_until_below(&account, now, 1).as_secs();
        let ad_account = json!({
            "acc_id_util_pct": pct,
            "reset_time_duration": reset,
            "ads_api_access_tier": ACCESS_TIER,
        });
        for (name, value) in [(BUC_HEADER, buc), (ACCOUNT_HEADER, ad_account)] {
            if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
                headers.insert(name, value);
            }
        }
        usage.call_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(calls: u64, window: Duration) -> Usage {
        Usage::new(&MetaConfig { usage: UsageBudget::fixed(calls, window), ..MetaConfig::default() })
    }

    #[test]
    fn call_count_rises_to_100_then_calls_are_refused_until_the_window_frees() {
        let start = Instant::now();
        let mut usage = usage(4, Duration::from_secs(600));
        for i in 0..4 {
            assert!(usage.admit(1, 0, start + Duration::from_secs(i), false));
            assert_eq!(usage.reading(1, 0, start + Duration::from_secs(i)).call_count, (i + 1) * 25);
        }
        let now = start + Duration::from_secs(5);
        assert!(!usage.admit(1, 0, now, false));
        assert_eq!(usage.throttled, 1);
        // The first call leaves the window at 600 s: 595 s from now, 10 minutes rounded up.
        assert_eq!(usage.reading(1, 0, now).estimated_time_to_regain_access, 10);
        assert!(usage.admit(2, 0, now, true), "another account has its own budget");
        assert!(usage.admit(1, 0, start + Duration::from_secs(600), false));
    }

    #[test]
    fn headers_carry_account_keyed_json() {
        let start = Instant::now();
        let mut usage = usage(10, Duration::from_secs(60));
        usage.admit(7, 0, start, true);
        let mut headers = HeaderMap::new();
        usage.add_headers(&mut headers, 7, 0, start, false);
        let buc: serde_json::Value =
            serde_json::from_str(headers[&BUC_HEADER].to_str().unwrap_or("")).unwrap_or_default();
        assert_eq!(buc["7"][0]["call_count"], 10);
        assert_eq!(buc["7"][0]["type"], "custom_audience");
        let account: serde_json::Value =
            serde_json::from_str(headers[&ACCOUNT_HEADER].to_str().unwrap_or("")).unwrap_or_default();
        assert_eq!(account["reset_time_duration"], 300);
        assert_eq!(usage.max_seen.get(&7), Some(&10));
    }

    #[test]
    fn default_budget_grows_with_audiences_and_is_capped() {
        let budget = UsageBudget::default();
        assert_eq!(budget.calls_for(0), 5_000);
        assert_eq!(budget.calls_for(10), 5_400);
        assert_eq!(budget.calls_for(1_000_000), 700_000);
    }
}
