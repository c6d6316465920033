//! The hooks every partner request of a connection goes through: pacing by the connection's
//! limiter (and the destination's application-wide pacer), the lease fence, and the request
//! metrics. Deliveries, token refreshes, audience look-ups and the calls made for the API on
//! the connection's behalf share them, since the partner counts requests per token whoever
//! sends them.
//!
//! A call made for the API does not wait long for its turn: when the connection's next free
//! slot is more than `engine.rate.api_max_wait` away (deliveries have the budget), the request
//! is not sent and takes no slot, and the caller hears when to try again ([`ApiCall`]). The
//! bound travels with the call (a task-local value set by [`ApiHooks`]) rather than in the
//! connection's hooks, so that it reaches the limiter through whatever hooks wrap the
//! connection's.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::Shared;
use super::app_pacing::AppPacer;
use super::decide;
use super::limiter::{RateLimiter, Slot};
use super::metrics::Metrics;
use audience_runtime::http_types::HttpError;
use audience_runtime::types::Limits;
use audience_runtime::{Departure, RequestHooks};

tokio::task_local! {
    /// The API call whose request is being paced, if it is one (see [`ApiHooks`]).
    static API_CALL: Arc<ApiCall>;
}

/// Paces every partner request of this connection, refuses those that would leave after the
/// lane's lease ran out, and measures them.
pub(crate) struct LaneHooks {
    pub(crate) limiter: Arc<RateLimiter>,
    /// The share of the connection's rate the calls made for the API may use
    /// (`engine.rate.api_share`); `None` where only such calls use the limiter (an OAuth
    /// exchange for a connection not made yet). It applies while the connection delivers.
    pub(crate) api_share: Option<Arc<RateLimiter>>,
    /// The deliveries going through these hooks (whether the connection is delivering).
    pub(crate) deliveries: Mutex<Deliveries>,
    /// The destination's application-wide pacing, when its limits declare one.
    pub(crate) app: Option<Arc<AppPacer>>,
    pub(crate) lease_until: Arc<Mutex<Option<Instant>>>,
    pub(crate) metrics: Metrics,
    pub(crate) destination: String,
    pub(crate) connection: String,
    /// The pause when the partner says its budget is spent without saying for how long.
    pub(crate) default_pause: Duration,
}

impl LaneHooks {
    /// The connection's slot for this request: waited for, or — for a call made for the API —
    /// only when it comes within the call's bound, under the connection's limiter and under
    /// the API's share of it (else the call hears when to try again). Answers the slot, and
    /// the API share's slot for a call made for the API.
    async fn slot(&self) -> Result<(Slot, Option<Slot>), String> {
        let Ok(call) = API_CALL.try_with(Arc::clone) else {
            self.deliveries.lock().waiting += 1;
            let slot = self.limiter.take_slot().await;
            let mut deliveries = self.deliveries.lock();
            deliveries.waiting -= 1;
            deliveries.last = Some(Instant::now());
            return Ok((slot, None));
        };
        let refuse = |wait: Duration, whose: &str| {
            call.refuse(wait);
            self.metrics.api_paced_out(&self.destination);
            format!("not sent: {whose} is in use for the next {} ms", wait.as_millis())
        };
        // Every turn is looked at first, without taking it: a call that would wait for one
        // takes nothing of the others. (Across hosts the application's slots are in the store
        // and cannot be looked at; they are waited for.)
        let app_wait = self.app.as_ref().map_or(Duration::ZERO, |app| app.wait_hint());
        if app_wait > call.max_wait {
            return Err(refuse(app_wait, "the application's partner budget"));
        }
        // The API's share applies while the connection delivers: an idle connection's rate is
        // all the API's (a partner at one request a second would otherwise take four seconds
        // per call).
        let api_share = self.api_share.as_ref().filter(|_| call.within_share && self.delivering());
        let share_wait = api_share.map_or(Duration::ZERO, |share| share.wait_time());
        if share_wait > call.max_wait {
            return Err(refuse(share_wait, API_SHARE_IN_USE));
        }
        let started = Instant::now();
        let share = match api_share {
            Some(share) => {
                Some(share.take_slot_within(call.max_wait).await.map_err(|wait| refuse(wait, API_SHARE_IN_USE))?)
            }
            None => None,
        };
        let left = call.max_wait.saturating_sub(started.elapsed());
        let slot = self.limiter.take_slot_within(left).await.map_err(|wait| refuse(wait, DELIVERIES_IN_USE))?;
        Ok((slot, share))
    }

    /// Whether the connection is delivering: a delivery waits for its slot, or one took a
    /// slot within the last [`DELIVERING_FOR`] (a lane keeps one batch waiting at most, so
    /// between two requests of a backlog none may be waiting for a moment).
    fn delivering(&self) -> bool {
        let deliveries = self.deliveries.lock();
        deliveries.waiting > 0
            || deliveries.last.is_some_and(|last| last.elapsed() < DELIVERING_FOR.max(self.limiter.interval() * 2))
    }
}

/// How long after a delivery took its slot the connection counts as delivering (at least two
/// intervals of its rate).
const DELIVERING_FOR: Duration = Duration::from_secs(1);

/// The deliveries going through a connection's hooks, for [`LaneHooks::delivering`].
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    /// Delivery requests waiting for their slot.
    waiting: usize,
    /// When the last one took its slot.
    last: Option<Instant>,
}

/// Why a call made for the API was not sent: deliveries hold the connection's next turns.
const DELIVERIES_IN_USE: &str = "the connection's partner budget (deliveries)";
/// Why a call made for the API was not sent: other calls made for the API hold its share.
const API_SHARE_IN_USE: &str = "the API calls' share of the connection's partner budget (engine.rate.api_share)";

impl RequestHooks for LaneHooks {
    fn before_send(&self) -> BoxFuture<'_, Result<Departure, String>> {
        Box::pin(async move {
            let (slot, share) = self.slot().await?;
            if let Some(app) = &self.app {
                app.acquire().await?;
            }
            // After the lease ran out another host may hold the lane: sending now could put
            // two hosts on one token. (The local deadline is taken before the store renewed,
            // so it never runs past the store's.)
            let expired = self.lease_until.lock().is_some_and(|until| Instant::now() >= until);
            if expired {
                return Err("not sent: this host's lease on the connection's lane ran out".to_string());
            }
            let (metrics, destination) = (self.metrics.clone(), self.destination.clone());
            Ok(Departure::new(move |departed| {
                if let Some(at) = departed {
                    metrics.send_delay(&destination, slot.departed(at));
                    if let Some(share) = share {
                        share.departed(at);
                    }
                }
            }))
        })
    }

    fn after_send(&self, outcome: Result<u16, &HttpError>, elapsed: Duration) {
        self.metrics.partner_request(&self.destination, &self.connection, outcome, elapsed);
        if outcome == Ok(429) {
            // Remembered until the plugin says whether it was about the rate (see
            // [`partner_refused`]).
            let now = Instant::now();
            self.limiter.answered_429(now.checked_sub(elapsed).unwrap_or(now));
        }
    }

    fn report_budget(&self, used_percent: f32, regain_after: Option<Duration>) {
        match decide::budget_slowdown(used_percent) {
            Some(factor) => self.limiter.set_slowdown(factor),
            None => {
                let pause = regain_after.unwrap_or(self.default_pause);
                self.limiter.pause_until(tokio::time::Instant::now() + pause);
                tracing::info!(connection = %self.connection, pause_ms = pause.as_millis() as u64, "the partner's own budget is spent; pausing the connection");
            }
        }
    }
}

/// The plugin said the partner refused `connection`'s rate (`rate-limited`): pause the
/// connection for `pause` (the partner's `Retry-After`, else the default), and when that was a
/// 429 to a request the limiter had paced at the current rate, lower the rate for a while: the
/// partner's budget is smaller than the one configured, for now.
pub(crate) fn partner_refused(
    limiter: &RateLimiter,
    metrics: &Metrics,
    destination: &str,
    connection: &str,
    pause: Duration,
) {
    let now = Instant::now();
    limiter.pause_until(now + pause);
    if let Some(change) = limiter.confirm_refusal() {
        metrics.rate_backoff(destination, connection, change.full_rate_at);
        tracing::info!(
            connection = %connection,
            share = change.share,
            full_rate_in_s = change.full_rate_at.saturating_duration_since(now).as_secs(),
            "the partner refused a request sent at the paced rate (429); the connection runs slower for a while"
        );
    }
}

/// One call made for the API: how long its requests may wait for their slot, and how long the
/// wait would have been when one did not.
#[derive(Debug)]
pub(crate) struct ApiCall {
    max_wait: Duration,
    /// Whether it is held to the API's share of a delivering connection's rate (a read), or
    /// not (a person's change: see [`crate::Engine::paced_plugin_for_change`]).
    within_share: bool,
    paced_out: Mutex<Option<Duration>>,
}

impl ApiCall {
    pub(crate) fn new(max_wait: Duration, within_share: bool) -> Arc<Self> {
        Arc::new(Self { max_wait, within_share, paced_out: Mutex::new(None) })
    }

    /// A request was not sent: its slot was `wait` away.
    fn refuse(&self, wait: Duration) {
        self.paced_out.lock().get_or_insert(wait);
    }

    /// How long the first request not sent would have waited, if one was not.
    pub(crate) fn paced_out(&self) -> Option<Duration> {
        *self.paced_out.lock()
    }
}

/// A destination's plugin paced for one call made on a person's behalf (see
/// [`crate::Engine::paced_plugin`]): its requests share the connection's budget with
/// deliveries, and one whose turn is more than `engine.rate.api_max_wait` away is not sent.
pub struct PacedPlugin {
    plugin: audience_runtime::Plugin,
    call: Arc<ApiCall>,
}

impl PacedPlugin {
    pub(crate) fn new(plugin: audience_runtime::Plugin, call: Arc<ApiCall>) -> Self {
        Self { plugin, call }
    }

    /// When a request of the call was not sent because the budget is in use by deliveries
    /// further ahead than `engine.rate.api_max_wait`: how long until its turn would have come.
    /// Ask when the call failed (the plugin saw that request fail, and failed the call).
    pub fn paced_out(&self) -> Option<Duration> {
        self.call.paced_out()
    }
}

impl std::ops::Deref for PacedPlugin {
    type Target = audience_runtime::Plugin;

    fn deref(&self) -> &Self::Target {
        &self.plugin
    }
}

/// The hooks of one API call: the connection's, with the call's bound on the wait.
struct ApiHooks {
    inner: Arc<dyn RequestHooks>,
    call: Arc<ApiCall>,
}

impl RequestHooks for ApiHooks {
    fn before_send(&self) -> BoxFuture<'_, Result<Departure, String>> {
        Box::pin(API_CALL.scope(self.call.clone(), self.inner.before_send()))
    }

    fn after_send(&self, outcome: Result<u16, &HttpError>, elapsed: Duration) {
        self.inner.after_send(outcome, elapsed);
    }

    fn report_budget(&self, used_percent: f32, regain_after: Option<Duration>) {
        self.inner.report_budget(used_percent, regain_after);
    }
}

/// The hooks for a call made for the API on `connection_id`'s behalf: the lane's when this
/// host runs it (paced and fenced by its lease), else pacing by the connection's limiter; each
/// request waits at most `call`'s bound for its slot.
pub(crate) fn api_hooks(
    shared: &Arc<Shared>,
    connection_id: &str,
    destination: &str,
    limits: Limits,
    call: Arc<ApiCall>,
) -> Arc<dyn RequestHooks> {
    let lane = shared.lanes.lock().get(connection_id).map(|lane| lane.hooks.clone());
    let inner = lane.unwrap_or_else(|| {
        Arc::new(LaneHooks {
            limiter: shared.limiter_for(connection_id, limits.requests_per_second),
            api_share: Some(shared.api_share_for(connection_id, limits.requests_per_second)),
            deliveries: Mutex::default(),
            app: shared.app_pacer_for(destination, &limits),
            lease_until: Arc::new(Mutex::new(None)),
            metrics: shared.metrics.clone(),
            destination: destination.to_string(),
            connection: connection_id.to_string(),
            default_pause: shared.config.rate.default_pause,
        })
    });
    Arc::new(ApiHooks { inner, call })
}

/// The hooks for exchanging an OAuth code for a connection not made yet: paced by one limiter
/// per destination at its per-token rate. The new token has sent nothing, so no token's budget
/// is at stake; what every such exchange shares is the application's OAuth client at the
/// partner's token endpoint, which a burst of callbacks must not flood.
pub(crate) fn oauth_hooks(
    shared: &Arc<Shared>,
    destination: &str,
    limits: Limits,
    call: Arc<ApiCall>,
) -> Arc<dyn RequestHooks> {
    let key = format!("oauth-exchange:{destination}");
    let inner = Arc::new(LaneHooks {
        limiter: shared.limiter_for(&key, limits.requests_per_second),
        api_share: None,
        deliveries: Mutex::default(),
        app: None,
        lease_until: Arc::new(Mutex::new(None)),
        metrics: shared.metrics.clone(),
        destination: destination.to_string(),
        connection: key,
        default_pause: shared.config.rate.default_pause,
    });
    Arc::new(ApiHooks { inner, call })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hooks pacing at `rps` through a fresh limiter, as a connection without a local lane.
    fn hooks(rps: f64) -> (Arc<RateLimiter>, LaneHooks) {
        let limiter = Arc::new(RateLimiter::new(rps, 0.0));
        let hooks = LaneHooks {
            limiter: limiter.clone(),
            api_share: None,
            deliveries: Mutex::default(),
            app: None,
            lease_until: Arc::new(Mutex::new(None)),
            metrics: Metrics::new(),
            destination: "pinterest".into(),
            connection: "conn_1".into(),
            default_pause: Duration::from_secs(1),
        };
        (limiter, hooks)
    }

    #[tokio::test(start_paused = true)]
    async fn an_api_call_beyond_the_bound_is_refused_at_once_and_takes_no_slot() {
        let (limiter, hooks) = hooks(2.0);
        let metrics = hooks.metrics.clone();
        let inner: Arc<dyn RequestHooks> = Arc::new(hooks);
        let start = Instant::now();
        // Deliveries hold the next 1.5 s of the budget.
        for _ in 0..4 {
            inner.before_send().await.unwrap().departed(Instant::now());
        }
        assert_eq!(start.elapsed(), Duration::from_millis(1500));
        let call = ApiCall::new(Duration::from_millis(200), true);
        let api = ApiHooks { inner: inner.clone(), call: call.clone() };
        let why = api.before_send().await.unwrap_err();
        assert!(why.contains("budget (deliveries) is in use for the next 500 ms"), "{why}");
        assert_eq!(call.paced_out(), Some(Duration::from_millis(500)));
        assert_eq!(start.elapsed(), Duration::from_millis(1500), "answered at once");
        // No slot taken: the next delivery goes at 2 s, as it would have.
        inner.before_send().await.unwrap().departed(Instant::now());
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert!(limiter.interval() == Duration::from_millis(500));
        // Within its bound an API call waits its turn like any request.
        let call = ApiCall::new(Duration::from_secs(1), true);
        let api = ApiHooks { inner, call: call.clone() };
        api.before_send().await.unwrap().departed(Instant::now());
        assert_eq!((start.elapsed(), call.paced_out()), (Duration::from_millis(2500), None));
        let text = metrics.render();
        assert!(text.contains("audience_api_paced_out_total{destination=\"pinterest\"} 1"), "{text}");
    }

    #[tokio::test(start_paused = true)]
    async fn calls_made_for_the_api_use_at_most_their_share_and_deliveries_get_the_rest() {
        let (_, mut hooks) = hooks(4.0);
        hooks.api_share = Some(Arc::new(RateLimiter::new(1.0, 0.0)));
        let inner: Arc<dyn RequestHooks> = Arc::new(hooks);
        let end = Instant::now() + Duration::from_secs(30);
        // Eight people listing accounts as fast as the API lets them, honouring its waits.
        let mut people = Vec::new();
        for _ in 0..8 {
            let inner = inner.clone();
            people.push(tokio::spawn(async move {
                let mut sent = 0;
                while Instant::now() < end {
                    let call = ApiCall::new(Duration::from_secs(2), true);
                    let api = ApiHooks { inner: inner.clone(), call: call.clone() };
                    match api.before_send().await {
                        Ok(departure) => {
                            departure.departed(Instant::now());
                            sent += 1;
                        }
                        Err(_) => tokio::time::sleep(call.paced_out().unwrap_or_default()).await,
                    }
                }
                sent
            }));
        }
        // A lane delivering a backlog meanwhile.
        let mut delivered = 0;
        while Instant::now() < end {
            inner.before_send().await.unwrap().departed(Instant::now());
            delivered += 1;
        }
        let mut api = 0;
        for person in people {
            api += person.await.unwrap();
        }
        // 4 requests a second over 30 s while delivering: at most a quarter (1/s) for the API,
        // the rest delivered,
        // and the token's budget used.
        assert!((10..=31).contains(&api), "API calls sent: {api}");
        assert!(delivered >= 85, "deliveries: {delivered} (API: {api})");
        assert!((110..=123).contains(&(api + delivered)), "{api} + {delivered} over 30 s at 4/s");
        // Once the connection is idle, its whole rate is the API's: 4 calls in a second.
        // (A person's change is never held to the share: see the next test.)
        tokio::time::sleep(Duration::from_secs(2)).await;
        let start = Instant::now();
        for _ in 0..4 {
            let api = ApiHooks { inner: inner.clone(), call: ApiCall::new(Duration::from_secs(2), true) };
            api.before_send().await.unwrap().departed(Instant::now());
        }
        assert!(start.elapsed() < Duration::from_secs(1), "{:?}", start.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_persons_change_is_not_held_to_the_share_that_readers_keep_full() {
        let (_, mut hooks) = hooks(4.0);
        hooks.api_share = Some(Arc::new(RateLimiter::new(1.0, 0.0)));
        let inner: Arc<dyn RequestHooks> = Arc::new(hooks);
        let end = Instant::now() + Duration::from_secs(12);
        let delivering = {
            let inner = inner.clone();
            tokio::spawn(async move {
                while Instant::now() < end {
                    inner.before_send().await.unwrap().departed(Instant::now());
                }
            })
        };
        // Eight readers keep the API's share full, each waiting the 2 s it may.
        let mut readers = Vec::new();
        for _ in 0..8 {
            let inner = inner.clone();
            readers.push(tokio::spawn(async move {
                let mut refused = 0;
                while Instant::now() < end {
                    let api = ApiHooks { inner: inner.clone(), call: ApiCall::new(Duration::from_secs(2), true) };
                    match api.before_send().await {
                        Ok(departure) => departure.departed(Instant::now()),
                        Err(_) => {
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                refused
            }));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        for _ in 0..3 {
            let change = ApiHooks { inner: inner.clone(), call: ApiCall::new(Duration::from_secs(2), false) };
            change.before_send().await.expect("a change goes within the wait").departed(Instant::now());
        }
        delivering.await.unwrap();
        let mut refused = 0;
        for reader in readers {
            refused += reader.await.unwrap();
        }
        assert!(refused > 0, "the readers kept the API's share full");
    }

    #[tokio::test(start_paused = true)]
    async fn a_429_the_plugin_calls_a_rate_limit_lowers_the_connections_rate_once_per_drop() {
        let (limiter, hooks) = hooks(10.0);
        let refused = |pause_ms| {
            partner_refused(&limiter, &hooks.metrics, "pinterest", "conn_1", Duration::from_millis(pause_ms))
        };
        hooks.before_send().await.unwrap().departed(Instant::now());
        tokio::time::sleep(Duration::from_millis(40)).await;
        // A 429 the plugin says is not about the rate (Pinterest's spam verdicts): nothing.
        hooks.after_send(Ok(429), Duration::from_millis(40));
        assert!((limiter.rate_share() - 1.0).abs() < 1e-9);
        // One it says is: the connection pauses, and its rate drops.
        hooks.after_send(Ok(429), Duration::from_millis(40));
        refused(2_000);
        assert!((limiter.rate_share() - 0.8).abs() < 1e-9);
        assert!(limiter.wait_time() >= Duration::from_millis(1_900), "paused: {:?}", limiter.wait_time());
        // Another 429 to a request sent before the drop: the pause, nothing more.
        hooks.after_send(Ok(429), Duration::from_millis(60));
        refused(1_000);
        assert!((limiter.rate_share() - 0.8).abs() < 1e-9);
        // A rate-limited verdict with no 429 behind it (a partner saying so in a 200): the pause.
        refused(1_000);
        assert!((limiter.rate_share() - 0.8).abs() < 1e-9);
        let text = hooks.metrics.render();
        assert!(text.contains("audience_rate_backoffs_total{destination=\"pinterest\"} 1"), "{text}");
        assert!(text.contains("audience_connections_below_rate{destination=\"pinterest\"} 1"), "{text}");
        tokio::time::sleep(Duration::from_secs(20)).await;
        let text = hooks.metrics.render();
        assert!(text.contains("audience_connections_below_rate{destination=\"pinterest\"} 0"), "{text}");
    }
}
