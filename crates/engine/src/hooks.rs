//! The hooks every partner request of a connection goes through: pacing by the connection's
//! limiter (and the destination's application-wide pacer), the lease fence, and the request
//! metrics. Deliveries and calls made for the API on the connection's behalf share them, since
//! the partner counts requests per token whoever sends them.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::Shared;
use super::app_pacing::AppPacer;
use super::decide;
use super::limiter::RateLimiter;
use super::metrics::Metrics;
use audience_runtime::RequestHooks;
use audience_runtime::http_types::HttpError;
use audience_runtime::types::Limits;

/// Paces every partner request of this connection, refuses those that would leave after the
/// lane's lease ran out, and measures them.
pub(crate) struct LaneHooks {
    pub(crate) limiter: Arc<RateLimiter>,
    /// The destination's application-wide pacing, when its limits declare one.
    pub(crate) app: Option<Arc<AppPacer>>,
    pub(crate) lease_until: Arc<Mutex<Option<Instant>>>,
    pub(crate) metrics: Metrics,
    pub(crate) destination: String,
    pub(crate) connection: String,
    /// The pause when the partner says its budget is spent without saying for how long.
    pub(crate) default_pause: Duration,
}

impl RequestHooks for LaneHooks {
    fn before_send(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.limiter.acquire().await;
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
            Ok(())
        })
    }

    fn after_send(&self, outcome: Result<u16, &HttpError>, elapsed: Duration) {
        self.metrics.partner_request(&self.destination, &self.connection, outcome, elapsed);
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

/// The hooks for a call made for the API on `connection_id`'s behalf: the lane's when this
/// host runs it (paced and fenced by its lease), else pacing by the connection's limiter.
pub(crate) fn api_hooks(
    shared: &Arc<Shared>,
    connection_id: &str,
    destination: &str,
    limits: Limits,
) -> Arc<dyn RequestHooks> {
    if let Some(lane) = shared.lanes.lock().get(connection_id) {
        return lane.hooks.clone();
    }
    Arc::new(LaneHooks {
        limiter: shared.limiter_for(connection_id, limits.requests_per_second),
        app: shared.app_pacer_for(destination, &limits),
        lease_until: Arc::new(Mutex::new(None)),
        metrics: shared.metrics.clone(),
        destination: destination.to_string(),
        connection: connection_id.to_string(),
        default_pause: shared.config.rate.default_pause,
    })
}
