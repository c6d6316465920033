//! Budgets a partner counts per application, not per token (`limits.app-requests-per-second`).
//!
//! Why a second limiter: Google counts Data Manager requests per Google Cloud project, that is
//! per OAuth client, so every connection made through one plugin configuration shares one
//! budget, however many tokens there are. Each request therefore waits for its connection's
//! slot (the per-token limiter, [`super::limiter`]) and then for the application's.
//!
//! How exact it is:
//! - **One host** (no lane leases): one GCRA limiter per destination in the process, shared by
//!   every lane and API call of that destination: requests leave at least `1 / rate` apart,
//!   exactly as the per-token limiter spaces a connection's.
//! - **Several hosts on one PostgreSQL** (`lease.enabled`): each request reserves its departure
//!   in the database ([`audience_store::Store::take_app_slot`]): one row per application, whose
//!   next free time moves by one interval per request under the row's lock, on the database's
//!   clock. Departures are then exactly one interval apart on that clock; a host sends at most
//!   the database round trip late, never early. The cost is one single-row update per request
//!   (Google's budget is 5 requests a second). When the database cannot be asked, the request
//!   is not sent (the call fails as refused by the host and is retried), rather than risking
//!   the application's quota for every tenant.
//!
//! The application is the destination's name (one plugin configuration, one OAuth client):
//! hosts sharing a database share their configuration.
//!
//! A partner that counts per application says "slow down" for the application: a 429 with its
//! wait holds every connection of the destination ([`AppPacer::hold`]), not only the one that
//! got it, so the others do not each spend a request to learn the same thing. On one host the
//! limiter pauses; across hosts the application's next free time in the store moves past the
//! wait.

use std::sync::Arc;
use std::time::Duration;

use audience_store::Store;

use super::limiter::RateLimiter;

/// The pacing of one application's requests.
pub(crate) enum AppPacer {
    /// One host: a limiter in this process.
    Local(Box<RateLimiter>),
    /// Several hosts: slots reserved in the shared store.
    Shared {
        /// Where the slots are reserved.
        store: Arc<dyn Store>,
        /// The application's name (the destination's).
        app: String,
        /// One request per this many ms.
        interval_ms: i64,
    },
}

impl AppPacer {
    /// Pacing for `rps` requests a second (spaced `(1 + guard) / rps` apart), in this process
    /// or, with `shared`, through the store.
    pub(crate) fn new(app: &str, rps: f64, guard: f64, shared: Option<Arc<dyn Store>>) -> Self {
        match shared {
            None => AppPacer::Local(Box::new(RateLimiter::new(rps, guard))),
            Some(store) => {
                let interval = RateLimiter::new(rps, guard).interval();
                let interval_ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX).max(1);
                AppPacer::Shared { store, app: app.to_string(), interval_ms }
            }
        }
    }

    /// Hold every request of the application for `pause` from now (the partner said its budget
    /// is spent). Across hosts the store's next free time moves at least `pause` ahead; when the
    /// store cannot be asked, the connection that got the answer still pauses on its own.
    pub(crate) async fn hold(&self, pause: Duration) {
        match self {
            AppPacer::Local(limiter) => limiter.pause_until(tokio::time::Instant::now() + pause),
            AppPacer::Shared { store, app, .. } => {
                let pause_ms = i64::try_from(pause.as_millis()).unwrap_or(i64::MAX).max(1);
                if let Err(err) = store.take_app_slot(app, pause_ms).await {
                    tracing::warn!(app = %app, error = %err, "could not hold the application's requests in the store");
                }
            }
        }
    }

    /// How long a request would wait for the application's next slot, as far as this host can
    /// tell without taking it: across hosts the slots are in the store, and zero is answered.
    pub(crate) fn wait_hint(&self) -> Duration {
        match self {
            AppPacer::Local(limiter) => limiter.wait_time(),
            AppPacer::Shared { .. } => Duration::ZERO,
        }
    }

    /// Wait for the application's next slot. An error says why the request must not be sent.
    pub(crate) async fn acquire(&self) -> Result<(), String> {
        match self {
            AppPacer::Local(limiter) => {
                limiter.acquire().await;
                Ok(())
            }
            AppPacer::Shared { store, app, interval_ms } => match store.take_app_slot(app, *interval_ms).await {
                Ok(wait_ms) => {
                    tokio::time::sleep(Duration::from_millis(wait_ms.max(0) as u64)).await;
                    Ok(())
                }
                Err(err) => Err(format!(
                    "not sent: the application-wide request budget of {app} could not be reserved in the store ({err}); \
                     the call is retried"
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_hosts_connections_share_the_apps_spacing() {
        let pacer = Arc::new(AppPacer::new("google", 4.0, 0.0, None));
        let start = tokio::time::Instant::now();
        let mut departures = Vec::new();
        for _ in 0..8 {
            pacer.acquire().await.unwrap();
            departures.push(start.elapsed());
        }
        let gaps: Vec<Duration> = departures.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|g| *g >= Duration::from_millis(250)), "{gaps:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_keeps_every_connection_of_the_app_waiting() {
        let pacer = AppPacer::new("google", 4.0, 0.0, None);
        pacer.acquire().await.unwrap();
        let start = tokio::time::Instant::now();
        pacer.hold(Duration::from_secs(30)).await;
        pacer.acquire().await.unwrap();
        assert!(start.elapsed() >= Duration::from_secs(30), "{:?}", start.elapsed());
    }
}
