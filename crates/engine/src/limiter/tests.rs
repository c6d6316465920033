//! The limiter's rules as tables, and its behaviour under tokio's paused time: departures with
//! varying send delays, bounded waits, the backoff after an unexpected 429.

use super::*;

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);

/// The departures `at` (since the start) never put more than `rps` in a `span` window, counted
/// from each departure: `[t, t + span)`.
fn most_in_any(at: &[Duration], span: Duration) -> usize {
    let mut sorted = at.to_vec();
    sorted.sort();
    (0..sorted.len()).map(|i| sorted[i..].iter().take_while(|u| **u < sorted[i] + span).count()).max().unwrap_or(0)
}

/// A send delay for request `i`: the path from the limiter to the wire, varying as a seeded
/// sequence (a linear congruential generator, so every run is the same).
struct Delays {
    state: u64,
}

impl Delays {
    fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A fraction in [0, 1).
    fn unit(&mut self) -> f64 {
        self.state = self.state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.state >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Run `senders` tasks sending through `limiter` for `run` of virtual time, each request
/// leaving `delay(unit)` after the limiter let it go; answers the departures since the start.
async fn send_for(
    limiter: Arc<RateLimiter>,
    senders: usize,
    run: Duration,
    seed: u64,
    delay: fn(f64, f64) -> Duration,
) -> Vec<Duration> {
    let start = Instant::now();
    let departures = Arc::new(Mutex::new(Vec::new()));
    let delays = Arc::new(Mutex::new(Delays::new(seed)));
    let mut tasks = Vec::new();
    for _ in 0..senders {
        let (limiter, departures, delays) = (limiter.clone(), departures.clone(), delays.clone());
        tasks.push(tokio::spawn(async move {
            while start.elapsed() < run {
                let slot = limiter.take_slot().await;
                let wait = {
                    let mut delays = delays.lock();
                    let (a, b) = (delays.unit(), delays.unit());
                    delay(a, b)
                };
                tokio::time::sleep(wait).await;
                let now = Instant::now();
                slot.departed(now);
                departures.lock().push(now - start);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut at = departures.lock().clone();
    at.retain(|t| *t < run);
    at
}

#[test]
fn a_rates_window_holds_its_whole_requests_in_as_many_intervals() {
    // (rps, floor, count, span)
    let table = [
        (7.0, 0.0, 7, SECOND),
        (7.0, 0.01, 7, Duration::from_millis(1010)),
        (7.5, 0.0, 7, Duration::from_secs_f64(7.0 / 7.5)),
        (100.0 / 60.0, 0.0, 1, Duration::from_millis(600)),
        (0.5, 0.0, 1, Duration::from_secs(2)),
        (5.6, 0.0, 5, Duration::from_secs_f64(5.0 / 5.6)),
    ];
    for (rps, floor, count, span) in table {
        let w = window(rps, floor);
        assert_eq!(w.count, count, "{rps}/s");
        assert!(w.span.abs_diff(span) < Duration::from_micros(1), "{rps}/s: {:?}, expected {span:?}", w.span);
    }
}

#[test]
fn the_spacing_adds_the_measured_variation_to_the_floor_within_its_bound() {
    // (rps, floor, spread of the send delay, spacing)
    let table = [
        (7.0, 0.0, Duration::ZERO, Duration::from_nanos(142_857_143)),
        (10.0, 0.01, Duration::ZERO, Duration::from_millis(101)),
        (10.0, 0.01, 5 * MS, Duration::from_micros(101_500)),
        // A fresh connection's 300 ms counts at most MAX_MEASURED_GUARD (0.1).
        (10.0, 0.01, 300 * MS, Duration::from_millis(111)),
        // At 0.5/s the window is 2 s: 20 ms of spread is 1% of it.
        (0.5, 0.0, 20 * MS, Duration::from_millis(2020)),
    ];
    for (rps, floor, spread, expected) in table {
        let got = spacing(rps, floor, spread);
        assert!(got.abs_diff(expected) <= Duration::from_nanos(2), "{rps}/s {floor} {spread:?}: {got:?}");
        // A window of spacings is never shorter than the window.
        let w = window(rps, floor);
        assert!(got * w.count as u32 >= w.span, "{rps}/s {floor}: {got:?} × {} < {:?}", w.count, w.span);
    }
}

#[test]
fn the_window_opens_when_the_oldest_departure_that_must_leave_has_left() {
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let w = Window { count: 3, span: SECOND };
    // (departures in ms, on their way, now in ms, opens in ms or None)
    let table: [(&[u64], usize, u64, Option<u64>); 8] = [
        (&[], 0, 0, Some(0)),
        (&[100, 200], 0, 300, Some(300)),
        // Full: the oldest leaves the window one span after it departed.
        (&[100, 200, 300], 0, 400, Some(1100)),
        (&[100, 200, 300], 0, 1200, Some(1200)),
        // One on its way takes a place: the two oldest must have left.
        (&[100, 200, 300], 1, 400, Some(1200)),
        (&[200, 300], 1, 400, Some(1200)),
        // As many on their way as the window holds: wait for one to leave.
        (&[], 3, 400, None),
        // Only the last `count` departures matter.
        (&[0, 10, 20, 900, 950, 990], 0, 1000, Some(1900)),
    ];
    for (departed, on_their_way, now, opens) in table {
        let departed: VecDeque<Instant> = departed.iter().map(|ms| at(*ms)).collect();
        let got = window_opens(&departed, on_their_way, w, at(now));
        assert_eq!(got, opens.map(at), "{departed:?} + {on_their_way} at {now}");
    }
}

#[test]
fn an_unexpected_429_lowers_the_rate_which_then_comes_back_step_by_step() {
    let t0 = Instant::now();
    let s = |secs: u64| t0 + Duration::from_secs(secs);
    let backed = |share: f64, since: u64| Some(Backoff { share, since: s(since) });
    // (backoff, the refused request left at, now, the backoff after: None = unchanged)
    let table = [
        (None, s(10), s(10), backed(0.8, 10)),
        (backed(0.8, 10), s(11), s(11), backed(0.64, 11)),
        // Sent before the last decrease: that decrease already answered it.
        (backed(0.8, 10), s(9), s(11), None),
        // The share in force (0.8 + 2 steps) is what decreases.
        (backed(0.8, 10), s(20), s(20), backed(0.72, 20)),
        // Never below the floor.
        (backed(0.3, 10), s(10), s(10), backed(BACKOFF_FLOOR, 10)),
        // Back at the full rate: a 429 starts again from 1.
        (backed(0.8, 0), s(100), s(100), backed(0.8, 100)),
    ];
    for (backoff, departed, now, expected) in table {
        let got = after_refusal(backoff, departed, now);
        match (got, expected) {
            (None, None) => {}
            (Some(got), Some(expected)) => {
                assert!((got.share - expected.share).abs() < 1e-9, "{backoff:?}: {got:?}, expected {expected:?}");
                assert_eq!(got.since, expected.since);
            }
            _ => panic!("{backoff:?} at {departed:?}: {got:?}, expected {expected:?}"),
        }
    }
    // (backoff, now, share in force)
    let table = [
        (None, s(0), 1.0),
        (backed(0.8, 10), s(10), 0.8),
        (backed(0.8, 10), s(14), 0.8),
        (backed(0.8, 10), s(15), 0.85),
        (backed(0.8, 10), s(29), 0.95),
        (backed(0.8, 10), s(30), 1.0),
        (backed(0.25, 0), s(3600), 1.0),
    ];
    for (backoff, now, share) in table {
        let got = rate_share(backoff, now);
        assert!((got - share).abs() < 1e-9, "{backoff:?} at {now:?}: {got}, expected {share}");
    }
    // Back in full when the steps add up: 4 steps from 0.8, 8 from 0.64, 15 from the floor.
    for (share, full) in [(0.8, 30), (0.64, 50), (BACKOFF_FLOOR, 85), (1.0, 10)] {
        let at = full_rate_at(Backoff { share, since: s(10) });
        assert_eq!(at, s(full), "{share}");
        assert!((rate_share(Some(Backoff { share, since: s(10) }), at) - 1.0).abs() < 1e-9);
    }
}

#[tokio::test(start_paused = true)]
async fn requests_are_spaced_by_the_interval() {
    let limiter = RateLimiter::new(7.0, 0.0);
    let start = Instant::now();
    let mut times = Vec::new();
    for _ in 0..15 {
        limiter.acquire().await;
        times.push(start.elapsed());
    }
    // Slots are planned 1/7 s apart and the timer fires on whole milliseconds: a request let go
    // up to 1 ms after its slot may be followed by one let go on time, never closer.
    for pair in times.windows(2) {
        assert!(pair[1] - pair[0] >= limiter.interval() - MS, "{pair:?}");
    }
    assert!(most_in_any(&times, SECOND) <= 7);
    assert!(
        times[14] <= Duration::from_secs(2) + MS,
        "no drift: the 15th slot is 14/7 s after the first: {:?}",
        times[14]
    );
}

#[tokio::test(start_paused = true)]
async fn departures_with_varying_send_delays_keep_every_second_within_the_rate() {
    // Three requests waiting at once, each leaving 0–40 ms after the limiter let it go: a late
    // one followed by a prompt one would land two requests closer than the spacing, and the
    // 0.01 floor alone could not absorb 40 ms. The window on the departures holds anyway.
    let limiter = Arc::new(RateLimiter::new(7.0, 0.01));
    let at = send_for(limiter.clone(), 3, Duration::from_secs(60), 7, |a, _| MS.mul_f64(40.0 * a)).await;
    assert!(most_in_any(&at, SECOND) <= 7, "{} departures in one second", most_in_any(&at, SECOND));
    // The guard measured the variation (bounded), on top of the floor.
    let guard = limiter.guard();
    assert!(guard > 0.03 && guard <= 0.01 + MAX_MEASURED_GUARD, "{guard}");
    assert!(at.len() >= 7 * 60 * 9 / 10, "{} departures in 60 s", at.len());
}

#[tokio::test(start_paused = true)]
async fn with_a_usual_send_path_the_rate_is_used_to_within_three_percent() {
    // The usual path: up to 2 ms, and one request in 30 on a fresh connection (30–60 ms).
    let limiter = Arc::new(RateLimiter::new(7.0, 0.01));
    let delay = |a: f64, b: f64| if b < 1.0 / 30.0 { MS.mul_f64(30.0 + 30.0 * a) } else { MS.mul_f64(2.0 * a) };
    let run = Duration::from_secs(300);
    let at = send_for(limiter, 3, run, 11, delay).await;
    assert!(most_in_any(&at, SECOND) <= 7, "{} departures in one second", most_in_any(&at, SECOND));
    let used = at.len() as f64 / (7.0 * run.as_secs_f64());
    assert!(used >= 0.97, "{used:.3} of the cap");
}

#[tokio::test(start_paused = true)]
async fn a_request_let_go_counts_in_the_window_until_it_departs_or_is_abandoned() {
    let limiter = Arc::new(RateLimiter::new(1.0, 0.0));
    let start = Instant::now();
    let first = limiter.take_slot().await;
    // The first is still on its way (a slow connect): the second waits for it, past its slot.
    let second = tokio::spawn({
        let limiter = limiter.clone();
        async move {
            let slot = limiter.take_slot().await;
            (Instant::now() - start, slot)
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!second.is_finished(), "let go while the first was on its way");
    first.departed(Instant::now());
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!second.is_finished(), "let go within a second of the first's departure");
    let (at, slot) = second.await.unwrap();
    assert_eq!(at, Duration::from_millis(2500), "a second after the first left");
    // Abandoned (never sent): it counts in no window, so the next may go at once (its slot of
    // the schedule, 2 s, is past).
    drop(slot);
    let third_from = Instant::now();
    limiter.acquire().await;
    assert_eq!(Instant::now() - third_from, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn a_slot_beyond_the_bound_is_not_taken_and_the_wait_is_answered() {
    let limiter = Arc::new(RateLimiter::new(2.0, 0.0));
    // Deliveries took the next three slots: 0, 0.5 and 1 s.
    let start = Instant::now();
    for _ in 0..3 {
        limiter.take_slot().await.departed(Instant::now());
    }
    assert_eq!(start.elapsed(), SECOND);
    // The next is at 1.5 s; a call that may wait 200 ms gets the wait instead.
    let wait = limiter.take_slot_within(Duration::from_millis(200)).await.unwrap_err();
    assert_eq!(wait, Duration::from_millis(500));
    assert_eq!(start.elapsed(), SECOND, "it did not wait");
    // It took nothing: the next request still goes at 1.5 s.
    limiter.take_slot().await.departed(Instant::now());
    assert_eq!(start.elapsed(), Duration::from_millis(1500));
    // Within the bound, the slot is taken and waited for.
    let slot = limiter.take_slot_within(SECOND).await.unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    slot.departed(Instant::now());
    // A pause set after the slot was taken pushes it past the bound: given up, wait answered.
    let late = tokio::spawn({
        let limiter = limiter.clone();
        async move { limiter.take_slot_within(Duration::from_millis(600)).await.map(|_| ()) }
    });
    tokio::task::yield_now().await;
    limiter.pause_until(Instant::now() + Duration::from_secs(5));
    assert!(late.await.unwrap().is_err());
}

#[tokio::test(start_paused = true)]
async fn an_unexpected_429_widens_the_spacing_until_the_rate_probes_back() {
    let limiter = Arc::new(RateLimiter::new(10.0, 0.0));
    assert_eq!(limiter.interval(), Duration::from_millis(100));
    let slot = limiter.take_slot().await;
    let departed = Instant::now();
    slot.departed(departed);
    let change = limiter.refused(departed).expect("the rate drops");
    assert!((change.share - 0.8).abs() < 1e-9);
    assert_eq!(change.full_rate_at, departed + Duration::from_secs(20));
    assert_eq!(limiter.interval(), Duration::from_millis(125));
    // A 429 to a request sent before the drop changes nothing.
    assert_eq!(limiter.refused(departed - MS), None);
    // Requests go 125 ms apart meanwhile.
    let start = Instant::now();
    limiter.acquire().await;
    limiter.acquire().await;
    assert_eq!(start.elapsed(), Duration::from_millis(225), "100 ms (the slot taken before), then 125 ms");
    // Back step by step: 0.85 after 5 s, 1 after 20 s.
    tokio::time::sleep_until(departed + Duration::from_secs(5)).await;
    assert!((limiter.rate_share() - 0.85).abs() < 1e-9);
    tokio::time::sleep_until(departed + Duration::from_secs(20)).await;
    assert!((limiter.rate_share() - 1.0).abs() < 1e-9);
    assert_eq!(limiter.interval(), Duration::from_millis(100));
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
    limiter.pause_until(start + SECOND); // a shorter pause does not shorten it
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
