//! Meta's own reading of the rate budget, from the usage headers of every response.
//!
//! | header                       | JSON                                                                 |
//! |------------------------------|----------------------------------------------------------------------|
//! | `X-Business-Use-Case-Usage`  | `{"<business or account id>": [{"type", "call_count", "total_cputime", "total_time", "estimated_time_to_regain_access" (minutes), ...}]}` |
//! | `X-Ad-Account-Usage`         | `{"acc_id_util_pct", "reset_time_duration" (seconds), ...}`          |
//! | `X-App-Usage`                | `{"call_count", "total_cputime", "total_time"}`                      |
//!
//! Every number except the two times is a percentage of a budget, and Meta throttles when any
//! of them reaches 100. The reading reported to the host ([`Usage`], then `pacing.budget`) is:
//! `used-percent` = the largest percentage of any header and entry (clamped to 0..=100), and
//! `regain-after-ms` = the longest wait (minutes × 60,000, seconds × 1,000) named by a budget
//! that is spent (a percentage at 100, or a positive regain time), so a spent budget is
//! waited out by its own clock; when none is spent, the longest positive wait named at all
//! (the host only acts on it once the budget is spent). None when no such wait is named. A
//! header that is not the JSON described is ignored; numbers may also come as strings.

use audience_plugin_sdk::http::Response;
use serde_json::Value;

/// `X-Business-Use-Case-Usage`.
pub const BUSINESS_USE_CASE: &str = "x-business-use-case-usage";
/// `X-Ad-Account-Usage`.
pub const AD_ACCOUNT: &str = "x-ad-account-usage";
/// `X-App-Usage`.
pub const APP: &str = "x-app-usage";

/// What one response's headers say about the budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// The largest share used, in percent (0 to 100).
    pub used_percent: f32,
    /// The longest wait Meta names until access returns, in milliseconds (business use case
    /// regain time, else the ad account's reset time).
    pub regain_after_ms: Option<u64>,
    /// The business use case regain time alone, in milliseconds (when positive): what a
    /// throttle error waits.
    pub buc_regain_ms: Option<u64>,
    /// The ad account's reset time alone, in milliseconds (when positive).
    pub account_reset_ms: Option<u64>,
}

impl Usage {
    /// How long a throttled call should wait: the business use case regain time when Meta named
    /// one, else the ad account's reset time; none when neither is positive.
    pub fn throttle_wait_ms(&self) -> Option<u32> {
        self.buc_regain_ms.or(self.account_reset_ms).map(|ms| u32::try_from(ms).unwrap_or(u32::MAX))
    }
}

fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

const PERCENT_FIELDS: [&str; 4] = ["call_count", "total_cputime", "total_time", "acc_id_util_pct"];

fn percentages(object: &serde_json::Map<String, Value>) -> Option<f64> {
    PERCENT_FIELDS.iter().filter_map(|f| object.get(*f).and_then(number)).reduce(f64::max)
}

fn ms(amount: f64, unit_ms: f64) -> Option<u64> {
    (amount > 0.0).then(|| (amount * unit_ms).min(u64::MAX as f64) as u64)
}

#[derive(Default)]
struct Reading {
    percent: Option<f64>,
    spent: bool,
    spent_wait_ms: Option<u64>,
    any_wait_ms: Option<u64>,
    buc_regain_ms: Option<u64>,
    account_reset_ms: Option<u64>,
}

impl Reading {
    /// One budget's reading: its largest percentage and the wait it names.
    fn budget(&mut self, percent: Option<f64>, wait_ms: Option<u64>) {
        if let Some(p) = percent {
            self.percent = Some(self.percent.map_or(p, |q| q.max(p)));
        }
        self.any_wait_ms = max_opt(self.any_wait_ms, wait_ms);
        if percent.is_some_and(|p| p >= 100.0) {
            self.spent = true;
            self.spent_wait_ms = max_opt(self.spent_wait_ms, wait_ms);
        }
    }
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Read the usage headers of `response`; `None` when it carries none that parse.
pub fn parse(response: &Response) -> Option<Usage> {
    let json = |name: &str| response.header(name).and_then(|v| serde_json::from_str::<Value>(v).ok());
    let mut reading = Reading::default();
    let mut seen = false;
    if let Some(Value::Object(ids)) = json(BUSINESS_USE_CASE) {
        seen = true;
        for entries in ids.values() {
            let list: Vec<&Value> = match entries {
                Value::Array(list) => list.iter().collect(),
                other => vec![other],
            };
            for entry in list.into_iter().filter_map(Value::as_object) {
                let regain =
                    entry.get("estimated_time_to_regain_access").and_then(number).and_then(|m| ms(m, 60_000.0));
                // A positive regain time means Meta throttles this use case now.
                let percent = percentages(entry).map(|p| if regain.is_some() { p.max(100.0) } else { p });
                reading.budget(percent.or(regain.map(|_| 100.0)), regain);
                reading.buc_regain_ms = max_opt(reading.buc_regain_ms, regain);
            }
        }
    }
    if let Some(Value::Object(account)) = json(AD_ACCOUNT) {
        seen = true;
        let reset = account.get("reset_time_duration").and_then(number).and_then(|s| ms(s, 1_000.0));
        reading.budget(percentages(&account), reset);
        reading.account_reset_ms = max_opt(reading.account_reset_ms, reset);
    }
    if let Some(Value::Object(app)) = json(APP) {
        seen = true;
        reading.budget(percentages(&app), None);
    }
    if !seen {
        return None;
    }
    Some(Usage {
        used_percent: reading.percent.unwrap_or(0.0).clamp(0.0, 100.0) as f32,
        regain_after_ms: if reading.spent { reading.spent_wait_ms } else { reading.any_wait_ms },
        buc_regain_ms: reading.buc_regain_ms,
        account_reset_ms: reading.account_reset_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(headers: &[(&str, &str)]) -> Option<Usage> {
        let response = headers.iter().fold(Response::new(200), |r, (n, v)| r.with_header(n, v));
        parse(&response)
    }

    #[test]
    fn business_use_case_usage() {
        let usage = with(&[(
            "x-business-use-case-usage",
            r#"{"123": [{"type": "custom_audience", "call_count": 28, "total_cputime": 25, "total_time": 25,
                         "estimated_time_to_regain_access": 0, "ads_api_access_tier": "standard_access"}],
                "456": [{"type": "ads_management", "call_count": "12", "total_cputime": 61, "total_time": 3,
                         "estimated_time_to_regain_access": 0}]}"#,
        )]);
        assert_eq!(
            usage,
            Some(Usage { used_percent: 61.0, regain_after_ms: None, buc_regain_ms: None, account_reset_ms: None })
        );
    }

    #[test]
    fn exhausted_budget_names_the_wait_in_minutes() {
        let usage = with(&[(
            "X-Business-Use-Case-Usage",
            r#"{"123": [{"type": "custom_audience", "call_count": 104, "total_cputime": 10, "total_time": 10,
                         "estimated_time_to_regain_access": 7}]}"#,
        )])
        .unwrap();
        assert_eq!(usage.used_percent, 100.0);
        assert_eq!(usage.regain_after_ms, Some(420_000));
        assert_eq!(usage.throttle_wait_ms(), Some(420_000));
    }

    #[test]
    fn ad_account_and_app_usage() {
        let usage = with(&[
            (
                "x-ad-account-usage",
                r#"{"acc_id_util_pct": 80.5, "reset_time_duration": 30, "ads_api_access_tier": "x"}"#,
            ),
            ("x-app-usage", r#"{"call_count": 90, "total_cputime": 1, "total_time": 2}"#),
        ])
        .unwrap();
        assert_eq!(usage.used_percent, 90.0);
        assert_eq!(usage.regain_after_ms, Some(30_000));
        assert_eq!(usage.throttle_wait_ms(), Some(30_000));
        let both = with(&[
            ("x-ad-account-usage", r#"{"acc_id_util_pct": 5, "reset_time_duration": 300}"#),
            ("x-business-use-case-usage", r#"{"1": [{"call_count": 100, "estimated_time_to_regain_access": 2}]}"#),
        ])
        .unwrap();
        assert_eq!(both.regain_after_ms, Some(120_000), "the spent budget's own wait, not the longest");
        assert_eq!(both.throttle_wait_ms(), Some(120_000), "the business use case time wins");
        let spent_without_wait = with(&[
            ("x-ad-account-usage", r#"{"acc_id_util_pct": 5, "reset_time_duration": 300}"#),
            ("x-app-usage", r#"{"call_count": 100}"#),
        ])
        .unwrap();
        assert_eq!((spent_without_wait.used_percent, spent_without_wait.regain_after_ms), (100.0, None));
        let regain_only =
            with(&[("x-business-use-case-usage", r#"{"1": [{"estimated_time_to_regain_access": 1}]}"#)]).unwrap();
        assert_eq!((regain_only.used_percent, regain_only.regain_after_ms), (100.0, Some(60_000)));
    }

    #[test]
    fn absent_or_garbled_headers() {
        assert_eq!(with(&[]), None);
        assert_eq!(with(&[("x-business-use-case-usage", "not json")]), None);
        assert_eq!(with(&[("x-ad-account-usage", "[1, 2]")]), None);
        let empty = with(&[("x-business-use-case-usage", "{}")]).unwrap();
        assert_eq!((empty.used_percent, empty.regain_after_ms), (0.0, None));
        let negative = with(&[("x-app-usage", r#"{"call_count": -5}"#)]).unwrap();
        assert_eq!(negative.used_percent, 0.0);
    }
}
