//! What one delivery checks right before each of its requests leaves.
//!
//! A batch is claimed before its request has a place in the connection's pacing, so a person
//! can pause or delete its sync in between. Pausing must stop sending from the moment the API
//! answers: the lane's record of its syncs is updated before [`crate::Engine::set_paused`]
//! returns, and every request of a delivery asks it again, before waiting for the
//! connection's slot and once more at departure. With several hosts on one database the
//! person may have used another host, so each request also asks the store (one primary-key
//! read per request, a few per second per connection).
//!
//! The gate also hands back the lane's *staging* permit once the delivery's first request has
//! its slot: a lane keeps at most one claimed batch waiting for the connection's pacing, so a
//! batch is formed as late as possible, and another sync's fresh users wait at most one
//! request slot behind a backlog.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use audience_runtime::http_types::HttpError;
use audience_runtime::{Departure, RequestHooks};
use audience_store::{Store, SyncStatus};
use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::sync::OwnedSemaphorePermit;

/// Whether a sync may still send, as the lane knows it.
pub(crate) trait SyncSendable: Send + Sync {
    /// `false` once the sync is paused or deleted.
    fn sendable(&self, sync_id: &str) -> bool;
}

/// The reason a request of a paused or deleted sync was not sent.
pub(crate) const STOPPED: &str = "not sent: the sync was paused or deleted after its batch was claimed";

/// The hooks of one delivery: the sync's gate around the connection's hooks.
pub(crate) struct DeliveryHooks {
    inner: Arc<dyn RequestHooks>,
    sync_id: String,
    lane: Arc<dyn SyncSendable>,
    /// Asked too when several hosts share the database (see the module docs).
    store: Option<Arc<dyn Store>>,
    staged: Mutex<Option<OwnedSemaphorePermit>>,
    stopped: AtomicBool,
}

impl DeliveryHooks {
    /// The hooks of a delivery for `sync_id`, around the connection's `inner` hooks, holding
    /// the lane's staging permit until its first request has a slot.
    pub(crate) fn new(
        inner: Arc<dyn RequestHooks>,
        sync_id: &str,
        lane: Arc<dyn SyncSendable>,
        store: Option<Arc<dyn Store>>,
        staged: Option<OwnedSemaphorePermit>,
    ) -> Self {
        Self {
            inner,
            sync_id: sync_id.to_string(),
            lane,
            store,
            staged: Mutex::new(staged),
            stopped: AtomicBool::new(false),
        }
    }

    /// Whether a request was held back because the sync stopped: the call's users were not
    /// sent and go back to pending as they were.
    pub(crate) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Whether the sync may still send; remembers when it may not.
    pub(crate) async fn may_send(&self) -> bool {
        let mut sendable = self.lane.sendable(&self.sync_id);
        if sendable && let Some(store) = &self.store {
            sendable = match store.sync(&self.sync_id).await {
                Ok(sync) => sync.status != SyncStatus::Paused,
                Err(audience_store::StoreError::NotFound { .. }) => false,
                // The store cannot say: the lease fence decides as it always did.
                Err(_) => true,
            };
        }
        if !sendable {
            self.stopped.store(true, Ordering::Release);
        }
        sendable
    }

    fn release_staging(&self) {
        self.staged.lock().take();
    }
}

impl RequestHooks for DeliveryHooks {
    fn before_send(&self) -> BoxFuture<'_, Result<Departure, String>> {
        Box::pin(async move {
            if !self.may_send().await {
                self.release_staging();
                return Err(STOPPED.to_string());
            }
            let paced = self.inner.before_send().await;
            self.release_staging();
            let departure = paced?;
            // The slot may have taken a while: ask again as the request leaves (dropping the
            // departure tells the pacing the request never left).
            if !self.may_send().await {
                drop(departure);
                return Err(STOPPED.to_string());
            }
            Ok(departure)
        })
    }

    fn after_send(&self, outcome: Result<u16, &HttpError>, elapsed: Duration) {
        self.inner.after_send(outcome, elapsed);
    }

    fn report_budget(&self, used_percent: f32, regain_after: Option<Duration>) {
        self.inner.report_budget(used_percent, regain_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use tokio::sync::Semaphore;

    struct Syncs(Mutex<HashSet<String>>);

    impl SyncSendable for Syncs {
        fn sendable(&self, sync_id: &str) -> bool {
            self.0.lock().contains(sync_id)
        }
    }

    /// Pacing that holds every request until told, counting the slots it gave.
    struct Pacing {
        open: tokio::sync::Notify,
        given: Mutex<u32>,
    }

    impl RequestHooks for Pacing {
        fn before_send(&self) -> BoxFuture<'_, Result<Departure, String>> {
            Box::pin(async move {
                self.open.notified().await;
                *self.given.lock() += 1;
                Ok(Departure::untracked())
            })
        }
        fn after_send(&self, _: Result<u16, &HttpError>, _: Duration) {}
    }

    fn world() -> (Arc<Syncs>, Arc<Pacing>, Arc<Semaphore>) {
        let syncs = Arc::new(Syncs(Mutex::new(["s1".to_string()].into_iter().collect())));
        let pacing = Arc::new(Pacing { open: tokio::sync::Notify::new(), given: Mutex::new(0) });
        (syncs, pacing, Arc::new(Semaphore::new(1)))
    }

    #[tokio::test]
    async fn a_sync_paused_while_its_request_waits_for_a_slot_sends_nothing() {
        let (syncs, pacing, staging) = world();
        let permit = staging.clone().try_acquire_owned().expect("permit");
        let hooks = Arc::new(DeliveryHooks::new(pacing.clone(), "s1", syncs.clone(), None, Some(permit)));
        let waiting = tokio::spawn({
            let hooks = hooks.clone();
            async move { hooks.before_send().await }
        });
        tokio::task::yield_now().await;
        assert_eq!(staging.available_permits(), 0, "the batch is staged while it waits for its slot");
        syncs.0.lock().clear(); // paused while waiting
        pacing.open.notify_one();
        assert_eq!(waiting.await.expect("task").err(), Some(STOPPED.to_string()));
        assert!(hooks.stopped());
        assert_eq!(staging.available_permits(), 1, "the next batch may be claimed");
    }

    #[tokio::test]
    async fn a_paused_sync_takes_no_slot_and_an_active_one_leaves() {
        let (syncs, pacing, staging) = world();
        let paused = DeliveryHooks::new(pacing.clone(), "s2", syncs.clone(), None, None);
        assert_eq!(paused.before_send().await.err(), Some(STOPPED.to_string()));
        assert_eq!(*pacing.given.lock(), 0, "no slot spent on a paused sync");

        let permit = staging.clone().try_acquire_owned().expect("permit");
        let active = DeliveryHooks::new(pacing.clone(), "s1", syncs.clone(), None, Some(permit));
        pacing.open.notify_one();
        assert!(active.before_send().await.is_ok());
        assert!(!active.stopped());
        assert_eq!(staging.available_permits(), 1);
    }
}
