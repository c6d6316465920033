//! Per-connection request pacing, measured at the wire: a GCRA schedule (burst of one), a
//! sliding-window check on the departures the runtime reports, a guard taken from the measured
//! send delay, a pause switch, and a rate that backs off after a 429 the host did not expect.
//!
//! Why GCRA with a burst of one rather than a token bucket: a bucket lets a full second's
//! requests out at once after an idle spell, and a partner that counts "requests in any
//! one-second window" sees a burst next to the steady stream. Spacing every request `1/rps`
//! apart keeps every window under the limit with no state but one instant.
//!
//! Why departures, not slots: the limiter lets a request go at its slot, but the request leaves
//! later — after the connection pool, maybe a fresh connection, the runtime's own scheduling.
//! Those delays vary, and a late request followed by a prompt one lands two requests closer
//! than the spacing at the partner. So the runtime reports when each request actually left
//! (see `audience_runtime::Departure`), and:
//! - **a request is let go only while the sliding window allows it**: with `n` the most
//!   requests the rate allows in its window (`n = max(1, ⌊rate⌋)` in `n / rate` seconds,
//!   widened by the guard floor), a request goes only when the departures recorded in the last
//!   window, plus the requests let go that have not left yet, number fewer than `n`. Counting
//!   the ones still on their way makes this exact whatever their delay: in any window, the
//!   request let go last saw every other one either departed or on its way (see
//!   [`window_opens`]). This is what guarantees at most `n` departures in any window;
//! - **the spacing's guard is measured**: how much the recent delays between the moment the
//!   limiter meant a request to go and its departure vary (their 90th percentile less their
//!   least: a delay every request has brings no two closer), as a share of the window
//!   ([`measured_guard`], at most [`MAX_MEASURED_GUARD`]), is added to the floor
//!   (`engine.rate.guard`, for what the host cannot measure: the network's own jitter). With
//!   the schedule that much wider, the window check above rarely has to hold anyone back, so
//!   the pace stays smooth.
//!
//! A request that is let go and then not sent (its lease ran out, its sync was paused, the
//! gate refused it, the connection could not be made) settles without a departure: it took its
//! slot of the schedule but counts in no window.
//!
//! Why a backoff: a 429 on a request the limiter paced correctly means the partner's budget is
//! smaller than the one configured (another client on the token, a partner counting
//! differently). (An HTTP 429 counts once the plugin confirms it is about the rate: Pinterest
//! also answers 429 for spam verdicts.) Pausing for its `Retry-After` alone would run into the same wall again, so
//! the connection's rate drops multiplicatively and comes back additively
//! ([`after_refusal`], [`rate_share`]); 429s answering requests that left before the last
//! drop change nothing, since they were sent at the old rate.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

/// The most the measured send delay adds to the guard, as a share of the window: one slow
/// outlier (a fresh TLS connection) can cost at most this much of the rate for a while.
pub const MAX_MEASURED_GUARD: f64 = 0.1;
/// How many recent departures the measured guard is taken from.
const DELAY_SAMPLES: usize = 32;
/// Which of them, in ascending order, is the guard's: the 90th percentile (a fresh connection
/// now and then does not widen every spacing; the window check covers it).
const DELAY_RANK: usize = DELAY_SAMPLES * 90 / 100;

/// After an unexpected 429 the connection's rate is multiplied by this...
pub const BACKOFF_DECREASE: f64 = 0.8;
/// ...down to at most this share of the configured rate...
pub const BACKOFF_FLOOR: f64 = 0.25;
/// ...and comes back by this share of the configured rate...
pub const BACKOFF_STEP: f64 = 0.05;
/// ...after every this long without another one.
pub const BACKOFF_PROBE_EVERY: Duration = Duration::from_secs(5);

/// Paces requests for one connection.
#[derive(Debug)]
pub struct RateLimiter {
    /// The configured rate (requests a second).
    rps: f64,
    /// The guard's floor (`engine.rate.guard`).
    floor: f64,
    state: Mutex<State>,
    /// Woken when a request let go departs or is abandoned (a full window may open).
    settled: Notify,
}

#[derive(Debug)]
struct State {
    /// The earliest time the next request may be scheduled.
    next: Instant,
    /// No request before this (the partner said to wait).
    paused_until: Option<Instant>,
    /// The spacing is multiplied by this while the partner reports its own budget running
    /// low (`pacing.report-budget`); 1 otherwise.
    slowdown: f64,
    /// The last departures, oldest first: as many as the configured rate's window holds.
    departed: VecDeque<Instant>,
    /// Requests let go that have neither departed nor been abandoned yet.
    on_their_way: usize,
    /// The recent delays from the time the limiter let a request go to its departure.
    delays: Delays,
    /// The rate's backoff after unexpected 429s; `None`: the configured rate.
    backoff: Option<Backoff>,
    /// When the latest request answered 429 left, until the plugin's verdict on it comes.
    answered_429: Option<Instant>,
}

/// The last [`DELAY_SAMPLES`] send delays, in microseconds, as a ring.
#[derive(Debug, Default)]
struct Delays {
    samples: [u32; DELAY_SAMPLES],
    len: usize,
    head: usize,
}

impl Delays {
    fn push(&mut self, delay: Duration) {
        self.samples[self.head] = u32::try_from(delay.as_micros()).unwrap_or(u32::MAX);
        self.head = (self.head + 1) % DELAY_SAMPLES;
        self.len = (self.len + 1).min(DELAY_SAMPLES);
    }

    /// How much the delays vary: their 90th percentile less their least (zero without any).
    /// A delay every request has does not bring two requests closer; only its variation does.
    fn spread(&self) -> Duration {
        let mut sorted = self.samples;
        let sorted = &mut sorted[..self.len];
        sorted.sort_unstable();
        let rank = (DELAY_RANK * self.len / DELAY_SAMPLES).min(self.len.saturating_sub(1));
        let high = sorted.get(rank).copied().unwrap_or(0);
        let low = sorted.first().copied().unwrap_or(0);
        Duration::from_micros(u64::from(high - low))
    }
}

/// A change of a connection's rate after an unexpected 429.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateChange {
    /// The share of the configured rate the connection runs at from now.
    pub share: f64,
    /// When it is back at the configured rate, if no other 429 comes.
    pub full_rate_at: Instant,
}

/// A request the limiter let go: tell it when the request left with [`Slot::departed`];
/// dropped without that, the request counts as never sent.
#[derive(Debug)]
pub struct Slot {
    limiter: Arc<RateLimiter>,
    /// When the limiter meant it to go.
    released: Instant,
    settled: bool,
}

impl Slot {
    /// The request left at `at`; answers how long after the limiter let it go.
    pub fn departed(mut self, at: Instant) -> Duration {
        self.settled = true;
        self.limiter.settle(self.released, Some(at)).unwrap_or_default()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.settled {
            self.limiter.settle(self.released, None);
        }
    }
}

impl RateLimiter {
    /// A limiter allowing `rps` requests per second, spaced at least `(1 + guard) / rps`
    /// apart (`guard` is the floor; the measured send delay adds to it).
    pub fn new(rps: f64, guard: f64) -> Self {
        let rps = if rps.is_finite() && rps > 0.0 { rps } else { 1.0 };
        let floor = if guard.is_finite() { guard.max(0.0) } else { 0.0 };
        let state = State {
            next: Instant::now(),
            paused_until: None,
            slowdown: 1.0,
            departed: VecDeque::new(),
            on_their_way: 0,
            delays: Delays::default(),
            backoff: None,
            answered_429: None,
        };
        Self { rps, floor, state: Mutex::new(state), settled: Notify::new() }
    }

    /// Send nothing for `window` from now. A lane starts with this: a process that just
    /// replaced a crashed one (or another host) cannot know what was sent with the token in
    /// the last second, and a fresh limiter would add a full burst on top of it.
    pub fn hold_for(&self, window: Duration) {
        self.pause_until(Instant::now() + window);
    }

    /// The spacing between requests now: the configured rate, its backoff and the guard
    /// (without a partner's slowdown, see [`Self::set_slowdown`]).
    pub fn interval(&self) -> Duration {
        let state = self.state.lock();
        let rps = self.rps * rate_share(state.backoff, Instant::now());
        spacing(rps, self.floor, state.delays.spread())
    }

    /// The guard in force now: the floor plus the measured variation of the send delay, as a
    /// share of the window.
    pub fn guard(&self) -> f64 {
        let state = self.state.lock();
        let rps = self.rps * rate_share(state.backoff, Instant::now()) / state.slowdown;
        self.floor + measured_guard(state.delays.spread(), window(rps, 0.0).span)
    }

    /// How long until a request could be let go, without taking a slot.
    pub fn wait_time(&self) -> Duration {
        let now = Instant::now();
        let state = self.state.lock();
        self.earliest(&state, now).saturating_duration_since(now)
    }

    /// Wait until a request could be let go, without taking a slot.
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

    /// Wait for a slot and take it, for a request that leaves as soon as this returns (its
    /// departure is recorded now). Prefer [`Self::take_slot`] where the departure is known.
    pub async fn acquire(&self) {
        if let Ok(released) = self.release(None).await {
            self.settle(released, Some(Instant::now()));
        }
    }

    /// Wait for a slot and take it; the request's departure is told through the [`Slot`].
    pub async fn take_slot(self: &Arc<Self>) -> Slot {
        // Without a bound the release never gives up.
        loop {
            if let Ok(released) = self.release(None).await {
                return Slot { limiter: self.clone(), released, settled: false };
            }
        }
    }

    /// Take a slot only if it comes within `bound`: otherwise take nothing and answer how long
    /// the wait would be. (A pause the partner asks for after the slot was taken can still
    /// push it past `bound`; then the slot is given up and the wait answered.)
    pub async fn take_slot_within(self: &Arc<Self>, bound: Duration) -> Result<Slot, Duration> {
        let released = self.release(Some(bound)).await?;
        Ok(Slot { limiter: self.clone(), released, settled: false })
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

    /// The partner answered HTTP 429 to a request that left at `departed`. Not yet a verdict:
    /// a partner may answer 429 for something else than its rate (Pinterest's spam verdicts),
    /// which only the plugin can tell; [`Self::confirm_refusal`] acts on it once the plugin
    /// said the connection is rate limited.
    pub fn answered_429(&self, departed: Instant) {
        let mut state = self.state.lock();
        state.answered_429 = Some(state.answered_429.map_or(departed, |d| d.max(departed)));
    }

    /// The plugin said the partner refused the connection's rate: lower the rate if that
    /// refusal was a 429 to a request sent at the current one (see [`Self::refused`]).
    pub fn confirm_refusal(&self) -> Option<RateChange> {
        let departed = self.state.lock().answered_429.take()?;
        self.refused(departed)
    }

    /// The partner refused a request that left at `departed` as over its rate: lower the rate,
    /// unless that request left before the last lowering (it was sent at the old rate).
    /// Answers the change, if any.
    pub fn refused(&self, departed: Instant) -> Option<RateChange> {
        let now = Instant::now();
        let mut state = self.state.lock();
        let backoff = after_refusal(state.backoff, departed, now)?;
        state.backoff = Some(backoff);
        Some(RateChange { share: backoff.share, full_rate_at: full_rate_at(backoff) })
    }

    /// The share of the configured rate the connection runs at now (1 unless backing off).
    pub fn rate_share(&self) -> f64 {
        rate_share(self.state.lock().backoff, Instant::now())
    }

    /// The rate in force now and its window: configured, backed off, slowed down.
    fn rate(&self, state: &State, now: Instant) -> f64 {
        self.rps * rate_share(state.backoff, now) / state.slowdown
    }

    /// The earliest a request could be let go: the schedule, a pause, the window.
    fn earliest(&self, state: &State, now: Instant) -> Instant {
        let window = window(self.rate(state, now), self.floor);
        let opens = window_opens(&state.departed, state.on_their_way, window, now).unwrap_or(now);
        let paused = state.paused_until.unwrap_or(now);
        state.next.max(paused).max(opens).max(now)
    }

    /// Take a slot (if it comes within `bound`), then wait until the schedule, the pause and
    /// the window all let the request go. Answers when the limiter meant it to go (the request
    /// is then on its way, until settled), or how long it would have had to wait.
    async fn release(&self, bound: Option<Duration>) -> Result<Instant, Duration> {
        let (slot, deadline) = {
            let mut state = self.state.lock();
            let now = Instant::now();
            let slot = self.earliest(&state, now);
            let wait = slot - now;
            if bound.is_some_and(|bound| wait > bound) {
                return Err(wait);
            }
            let rps = self.rate(&state, now);
            state.next = later(slot, spacing(rps, self.floor, state.delays.spread()));
            (slot, bound.map(|bound| now + bound))
        };
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            let go_at = {
                let mut state = self.state.lock();
                let now = Instant::now();
                let window = window(self.rate(&state, now), self.floor);
                match window_opens(&state.departed, state.on_their_way, window, now) {
                    Some(opens) => {
                        let go_at = slot.max(state.paused_until.unwrap_or(slot)).max(opens);
                        if go_at <= now {
                            state.on_their_way += 1;
                            return Ok(go_at);
                        }
                        Some(go_at)
                    }
                    // As many requests on their way as the window holds: wait for one.
                    None => None,
                }
            };
            let now = Instant::now();
            match (go_at, deadline) {
                (Some(go_at), Some(deadline)) if go_at > deadline => return Err(go_at - now),
                (None, Some(deadline)) if deadline <= now => return Err(self.interval()),
                _ => {}
            }
            // Until it may go, or the deadline (for one waiting on the requests on their way).
            match go_at.or(deadline) {
                Some(wake) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(wake) => {}
                        _ = &mut settled => {}
                    }
                }
                None => settled.await,
            }
        }
    }

    /// A request let go at `released` left at `departed` (`None`: it never left). Answers its
    /// send delay.
    fn settle(&self, released: Instant, departed: Option<Instant>) -> Option<Duration> {
        let delay = {
            let mut state = self.state.lock();
            state.on_their_way = state.on_their_way.saturating_sub(1);
            departed.map(|at| {
                let keep = window(self.rps, 0.0).count;
                let place = state.departed.partition_point(|d| *d <= at);
                state.departed.insert(place, at);
                while state.departed.len() > keep {
                    state.departed.pop_front();
                }
                let delay = at.saturating_duration_since(released);
                state.delays.push(delay);
                delay
            })
        };
        self.settled.notify_waiters();
        delay
    }
}

/// The sliding window a rate allows: at most `count` departures in any `span`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Most departures in the span.
    pub count: usize,
    /// The span.
    pub span: Duration,
}

/// The window of `rps` requests a second, widened by `floor`: `max(1, ⌊rps⌋)` requests in as
/// many intervals (a second for a whole rate; 100/min, 1.67/s, is one request per 0.6 s).
pub fn window(rps: f64, floor: f64) -> Window {
    let count = (rps + 1e-9).floor().max(1.0);
    let span = Duration::try_from_secs_f64(count / rps * (1.0 + floor)).unwrap_or(Duration::MAX);
    // `count` is a whole number of at least 1 (`as` saturates for an absurd rate).
    Window { count: count as usize, span }
}

/// The spacing of the schedule at `rps` with the guard's `floor` and the measured variation of
/// the send delay `spread`: `(1 + floor + measured) / rps`, rounded up so that a window's worth
/// of spacings is never shorter than the window.
pub fn spacing(rps: f64, floor: f64, spread: Duration) -> Duration {
    let measured = measured_guard(spread, window(rps, 0.0).span);
    let nanos = ((1.0 + floor + measured) / rps * 1e9).ceil();
    // `as` saturates: a rate so low that the spacing passes u64 nanoseconds waits 584 years.
    Duration::from_nanos(if nanos.is_finite() && nanos > 0.0 { nanos as u64 } else { 1 })
}

/// The guard a send delay varying by `spread` calls for in a window of `span`: a request that
/// leaves `spread` later than the one after it lands that much closer to it, so a window of
/// spacings must be `spread` longer. At most [`MAX_MEASURED_GUARD`].
pub fn measured_guard(spread: Duration, span: Duration) -> f64 {
    if span.is_zero() {
        return 0.0;
    }
    (spread.as_secs_f64() / span.as_secs_f64()).min(MAX_MEASURED_GUARD)
}

/// When a request may be let go as far as the window goes, at `now` or later: `departed` are
/// the last departures (oldest first), `on_their_way` the requests let go and not yet departed.
/// `None` while those alone fill the window (wait for one to leave).
///
/// Why it is exact: take any window and, among the requests departing in it, the one let go
/// last. When it was let go, each of the others had either departed (inside this window, so
/// inside the one it checked) or been let go and not departed (counted as on its way). So the
/// window holds at most what that check allowed: `count`.
pub fn window_opens(
    departed: &VecDeque<Instant>,
    on_their_way: usize,
    window: Window,
    now: Instant,
) -> Option<Instant> {
    // Departures that may stay in the window beside this request and those on their way.
    let room = window.count.checked_sub(on_their_way + 1)?;
    if departed.len() <= room {
        return Some(now);
    }
    // The newest departure that must have left the window first.
    let must_leave = departed[departed.len() - room - 1];
    Some(later(must_leave, window.span).max(now))
}

/// `at + span`, or far in the future when that is past what an instant can hold.
fn later(at: Instant, span: Duration) -> Instant {
    at.checked_add(span).unwrap_or_else(|| at + Duration::from_secs(86_400 * 365 * 30))
}

/// A backoff of the connection's rate: the share it dropped to `since`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// The share of the configured rate set at `since`.
    pub share: f64,
    /// When it was set (the last unexpected 429).
    pub since: Instant,
}

/// The share of the configured rate in force at `now`: the backoff's, plus
/// [`BACKOFF_STEP`] for every [`BACKOFF_PROBE_EVERY`] since, up to 1.
pub fn rate_share(backoff: Option<Backoff>, now: Instant) -> f64 {
    let Some(backoff) = backoff else { return 1.0 };
    let steps = now.saturating_duration_since(backoff.since).as_secs_f64() / BACKOFF_PROBE_EVERY.as_secs_f64();
    (backoff.share + BACKOFF_STEP * steps.floor()).min(1.0)
}

/// The backoff after a 429 at `now` to a request that left at `departed`: the share in force
/// times [`BACKOFF_DECREASE`] (at least [`BACKOFF_FLOOR`]); `None` when the request left before
/// the last decrease, which already answered the rate it was sent at.
pub fn after_refusal(backoff: Option<Backoff>, departed: Instant, now: Instant) -> Option<Backoff> {
    if backoff.is_some_and(|b| departed < b.since) {
        return None;
    }
    let share = (rate_share(backoff, now) * BACKOFF_DECREASE).max(BACKOFF_FLOOR);
    Some(Backoff { share, since: now })
}

/// When a backoff is back at the configured rate, if nothing lowers it again.
pub fn full_rate_at(backoff: Backoff) -> Instant {
    let steps = ((1.0 - backoff.share) / BACKOFF_STEP - 1e-9).ceil().clamp(0.0, 1e6);
    later(backoff.since, BACKOFF_PROBE_EVERY.mul_f64(steps))
}

#[cfg(test)]
mod tests;
