//! Per-connection request pacing: a GCRA limiter (burst of one) with a pause switch.
//!
//! Why GCRA with a burst of one rather than a token bucket: a bucket lets a full second's
//! requests out at once after an idle spell, and a partner that counts "requests in any
//! one-second window" sees a burst next to the steady stream. Spacing every request `1/rps`
//! apart (plus a small guard) keeps every window under the limit with no state but one instant.

use parking_lot::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Paces requests for one connection.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The earliest time the next request may start.
    next: Instant,
    /// No request before this (the partner said to wait).
    paused_until: Option<Instant>,
    /// The spacing is multiplied by this while the partner reports its own budget running
    /// low (`pacing.report-budget`); 1 otherwise.
    slowdown: f64,
}

impl RateLimiter {
    /// A limiter allowing `rps` requests per second, spaced `(1 + guard) / rps` apart.
    pub fn new(rps: f64, guard: f64) -> Self {
        let rps = if rps.is_finite() && rps > 0.0 { rps } else { 1.0 };
        let interval = Duration::from_secs_f64((1.0 + guard.max(0.0)) / rps);
        Self { interval, state: Mutex::new(State { next: Instant::now(), paused_until: None, slowdown: 1.0 }) }
    }

    /// Send nothing for `window` from now. A lane starts with this: a process that just
    /// replaced a crashed one (or another host) cannot know what was sent with the token in
    /// the last second, and a fresh limiter would add a full burst on top of it.
    pub fn hold_for(&self, window: Duration) {
        self.pause_until(Instant::now() + window);
    }

    /// The spacing between requests.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// How long until a request could start, without taking the slot.
    pub fn wait_time(&self) -> Duration {
        let now = Instant::now();
        earliest(&self.state.lock()).saturating_duration_since(now)
    }

    /// Wait until a request could start, without taking the slot.
    pub async fn ready(&self) {
        loop {
            let wait = self.wait_time();
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Wait while the limiter is paused (after a 429), ignoring the spacing between requests.
    pub async fn wait_while_paused(&self) {
        loop {
            let now = Instant::now();
            let until = self.state.lock().paused_until.filter(|p| *p > now);
            match until {
                Some(until) => tokio::time::sleep_until(until).await,
                None => return,
            }
        }
    }

    /// Wait for a slot and take it.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut state = self.state.lock();
                let now = Instant::now();
                let start = earliest(&state);
                if start <= now {
                    state.next = now.max(state.next) + self.interval.mul_f64(state.slowdown);
                    return;
                }
                start - now
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Space requests `factor` times further apart than the interval (at least 1), until set
    /// again: the partner says its own budget is running low.
    pub fn set_slowdown(&self, factor: f64) {
        let factor = if factor.is_finite() { factor.clamp(1.0, 1_000.0) } else { 1.0 };
        self.state.lock().slowdown = factor;
    }

    /// Stop all requests until `until` (a 429's Retry-After). Never shortens a longer pause.
    pub fn pause_until(&self, until: Instant) {
        let mut state = self.state.lock();
        state.paused_until = Some(state.paused_until.map_or(until, |p| p.max(until)));
    }
}

fn earliest(state: &State) -> Instant {
    match state.paused_until {
        Some(p) => p.max(state.next),
        None => state.next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn requests_are_spaced_by_the_interval() {
        let limiter = RateLimiter::new(7.0, 0.0);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..15 {
            limiter.acquire().await;
            times.push(start.elapsed());
        }
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] >= limiter.interval() - Duration::from_micros(1));
        }
        // In any one-second window, at most 7 requests.
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().filter(|u| **u < *t + Duration::from_secs(1)).count();
            assert!(in_window <= 7, "{in_window} requests within a second of {t:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slowdown_widens_the_spacing_until_lifted() {
        let limiter = RateLimiter::new(10.0, 0.0);
        limiter.set_slowdown(4.0);
        let start = Instant::now();
        limiter.acquire().await;
        limiter.acquire().await;
        assert_eq!(Instant::now() - start, Duration::from_millis(400));
        limiter.set_slowdown(1.0);
        limiter.acquire().await;
        limiter.acquire().await;
        assert_eq!(Instant::now() - start, Duration::from_millis(900));
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_every_request_until_it_ends() {
        let limiter = RateLimiter::new(100.0, 0.0);
        let start = Instant::now();
        limiter.pause_until(start + Duration::from_secs(3));
        limiter.pause_until(start + Duration::from_secs(1)); // a shorter pause does not shorten it
        limiter.acquire().await;
        assert!(start.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn ready_does_not_take_the_slot() {
        let limiter = RateLimiter::new(1.0, 0.0);
        limiter.ready().await;
        limiter.ready().await;
        let start = Instant::now();
        limiter.acquire().await;
        assert_eq!(start.elapsed(), Duration::ZERO);
    }
}
