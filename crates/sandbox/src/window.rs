//! Sliding windows of timed, weighted events per key: the shape of every partner rate limit.
//!
//! Pinterest counts requests per token in any 1,000 ms; Meta counts calls per ad account in a
//! rolling hour and scores reads and writes differently over a few minutes. Both are "sum of
//! the weights of the events younger than the window", kept here once. An event leaves the
//! window exactly `window` after it happened.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Events per key within the last `window`.
#[derive(Debug)]
pub(crate) struct SlidingWindow<K> {
    window: Duration,
    events: HashMap<K, VecDeque<(Instant, u64)>>,
}

impl<K: Eq + Hash> SlidingWindow<K> {
    pub fn new(window: Duration) -> Self {
        Self { window, events: HashMap::new() }
    }

    /// Drops the events of `key` that left the window by `now`.
    fn prune(&mut self, key: &K, now: Instant) -> Option<&VecDeque<(Instant, u64)>> {
        let window = self.window;
        let events = self.events.get_mut(key)?;
        while events.front().is_some_and(|(t, _)| now.saturating_duration_since(*t) >= window) {
            events.pop_front();
        }
        Some(events)
    }

    /// Sum of the weights of `key`'s events still in the window at `now`.
    pub fn total(&mut self, key: &K, now: Instant) -> u64 {
        self.prune(key, now).map_or(0, |events| events.iter().map(|(_, w)| w).sum())
    }

    /// Records an event of `weight` for `key` at `now` (which must not precede earlier events).
    pub fn record(&mut self, key: K, now: Instant, weight: u64) {
        self.events.entry(key).or_default().push_back((now, weight));
    }

    /// How long from `now` until `key`'s total drops below `limit` (zero when it already is).
    pub fn time_until_below(&mut self, key: &K, now: Instant, limit: u64) -> Duration {
        let window = self.window;
        let Some(events) = self.prune(key, now) else {
            return Duration::ZERO;
        };
        let mut total: u64 = events.iter().map(|(_, w)| w).sum();
        for (at, weight) in events {
            if total < limit {
                break;
            }
            total -= weight;
            if total < limit {
                return (*at + window).saturating_duration_since(now);
            }
        }
        Duration::ZERO
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_follow_the_window_and_weights() {
        let start = Instant::now();
        let mut window = SlidingWindow::new(Duration::from_secs(10));
        window.record("a", start, 1);
        window.record("a", start + Duration::from_secs(4), 3);
        window.record("b", start, 5);
        assert_eq!(window.total(&"a", start + Duration::from_secs(5)), 4);
        assert_eq!(window.total(&"a", start + Duration::from_secs(10)), 3);
        assert_eq!(window.total(&"a", start + Duration::from_secs(14)), 0);
        assert_eq!(window.total(&"b", start + Duration::from_secs(9)), 5);
        assert_eq!(window.total(&"nobody", start), 0);
    }

    #[test]
    fn time_until_below_names_when_enough_events_leave() {
        let start = Instant::now();
        let mut window = SlidingWindow::new(Duration::from_secs(60));
        for i in 0..4 {
            window.record(1_u64, start + Duration::from_secs(i * 10), 1);
        }
        let now = start + Duration::from_secs(35);
        // Four events; below 4 once the first leaves (at 60 s), below 3 once the second does.
        assert_eq!(window.time_until_below(&1, now, 4), Duration::from_secs(25));
        assert_eq!(window.time_until_below(&1, now, 3), Duration::from_secs(35));
        assert_eq!(window.time_until_below(&1, now, 1), Duration::from_secs(55));
        assert_eq!(window.time_until_below(&1, now, 5), Duration::ZERO);
        assert_eq!(window.time_until_below(&2, now, 1), Duration::ZERO);
    }
}
