//! How plugin calls share the runtime: instance slots, and the CPU.
//!
//! A call needs, in this order, and within one deadline (the plugin's `call_timeout`):
//! 1. a slot of its caller's [`InstanceQuota`], when the caller gave one (the engine gives one
//!    per connection);
//! 2. a slot of its plugin's **share** of the pool: `max_instances` divided by the number of
//!    plugins loaded (at least 1), or the plugin's own `max_instances` when the operator set
//!    one. So a plugin whose calls spin or hang holds at most its share, and a plugin below its
//!    share always finds a free slot of the pool;
//! 3. a slot of the runtime's pool (`max_instances`, the pooling allocator's size).
//!
//! When the deadline passes first, the call fails as [`PluginError::Busy`] naming the limit
//! that was full: the plugin never ran.
//!
//! Then, to run guest code, a call holds one of its plugin's **running** permits (at most
//! `cpu_share` of them, see [`crate::RuntimeConfig::max_running_per_plugin`]). It lets go of
//! the permit while it waits in the host for the partner, and at every epoch tick, queuing
//! again behind the plugin's other calls (FIFO). A plugin with a hundred spinning calls so
//! costs its neighbours at most `cpu_share` cores. Time spent queuing for the permit is not
//! charged to the plugin's `call_timeout` (it is not the plugin's own time), but the whole
//! call stays under `max_call_duration`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use super::error::{InstanceLimit, PluginError};

/// A bound on how many instances one caller (the engine: one connection) may hold at once,
/// across every plugin it is given to (see [`crate::Plugin::with_quota`]). Cheap to clone:
/// clones share the bound.
#[derive(Debug, Clone)]
pub struct InstanceQuota {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl InstanceQuota {
    /// A quota of `limit` instances at once (at least 1).
    pub fn new(limit: usize) -> Self {
        let limit = limit.clamp(1, Semaphore::MAX_PERMITS);
        Self { permits: Arc::new(Semaphore::new(limit)), limit }
    }

    /// The most instances calls under this quota may hold at once.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Instances held under this quota right now.
    pub fn in_use(&self) -> usize {
        self.limit - self.permits.available_permits()
    }
}

/// How many instances a plugin may hold: its own setting when it has one (never more than the
/// pool), else an equal share of the pool among the `loaded` plugins, at least 1.
pub(crate) fn share(max_instances: u32, loaded: usize, configured: Option<u32>) -> usize {
    let pool = max_instances.max(1) as usize;
    match configured {
        Some(own) => (own as usize).clamp(1, pool),
        None => (pool / loaded.max(1)).max(1),
    }
}

/// The runtime's instance pool and the count of loaded plugins its shares are computed from.
pub(crate) struct Pool {
    slots: Arc<Semaphore>,
    max_instances: u32,
    loaded: Arc<AtomicUsize>,
}

impl Pool {
    pub(crate) fn new(max_instances: u32) -> Self {
        let max_instances = max_instances.max(1);
        Self {
            slots: Arc::new(Semaphore::new(max_instances as usize)),
            max_instances,
            loaded: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Count one more loaded plugin until the returned guard is dropped.
    pub(crate) fn register(&self) -> Registration {
        self.loaded.fetch_add(1, Ordering::SeqCst);
        Registration { loaded: self.loaded.clone() }
    }

    /// The share of a plugin with `configured` as its own setting, as things stand.
    pub(crate) fn share(&self, configured: Option<u32>) -> usize {
        share(self.max_instances, self.loaded.load(Ordering::SeqCst), configured)
    }

    /// Take the slots a call needs, in order (the caller's quota, the plugin's share, the
    /// pool), all before `deadline`; on time out, which limit was full.
    pub(crate) async fn admit(
        &self,
        plugin: &str,
        quota: Option<&InstanceQuota>,
        share: &Arc<Share>,
        started: Instant,
        budget: Duration,
    ) -> Result<Admission, PluginError> {
        let deadline = tokio::time::Instant::from_std(started) + budget;
        let busy = |limit| PluginError::Busy { plugin: plugin.to_string(), limit, waited: started.elapsed() };
        let quota_permit = match quota {
            Some(quota) => {
                let permit = tokio::time::timeout_at(deadline, quota.permits.clone().acquire_owned()).await;
                match permit {
                    Ok(Ok(permit)) => Some(permit),
                    Ok(Err(_)) => return Err(shutting_down()),
                    Err(_) => return Err(busy(InstanceLimit::Connection { limit: quota.limit })),
                }
            }
            None => None,
        };
        let share_permit = match tokio::time::timeout_at(deadline, share.acquire(self)).await {
            Ok(permit) => permit,
            Err(_) => {
                let limit = InstanceLimit::Plugin {
                    share: self.share(share.configured),
                    configured: share.configured.is_some(),
                };
                return Err(busy(limit));
            }
        };
        let slot = match tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(shutting_down()),
            Err(_) => return Err(busy(InstanceLimit::Runtime { max_instances: self.max_instances })),
        };
        Ok(Admission { _slot: slot, _share: share_permit, _quota: quota_permit })
    }
}

fn shutting_down() -> PluginError {
    PluginError::Instantiate("the plugin runtime is shutting down".into())
}

/// One loaded plugin, counted in the shares until dropped.
pub(crate) struct Registration {
    loaded: Arc<AtomicUsize>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.loaded.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The slots one call holds while its instance lives.
pub(crate) struct Admission {
    _slot: OwnedSemaphorePermit,
    _share: SharePermit,
    _quota: Option<OwnedSemaphorePermit>,
}

/// The instances one plugin holds, against a cap that changes as plugins load.
pub(crate) struct Share {
    configured: Option<u32>,
    in_use: Mutex<usize>,
    freed: Notify,
}

impl Share {
    pub(crate) fn new(configured: Option<u32>) -> Arc<Self> {
        Arc::new(Self { configured, in_use: Mutex::new(0), freed: Notify::new() })
    }

    /// The operator's setting for this plugin, if any.
    pub(crate) fn configured(&self) -> Option<u32> {
        self.configured
    }

    /// Instances of this plugin alive right now.
    pub(crate) fn in_use(&self) -> usize {
        *self.in_use.lock()
    }

    /// Wait until the plugin holds fewer instances than its share, and take one.
    async fn acquire(self: &Arc<Self>, pool: &Pool) -> SharePermit {
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            // Registered before looking, so a slot freed in between wakes this waiter.
            freed.as_mut().enable();
            {
                let mut in_use = self.in_use.lock();
                if *in_use < pool.share(self.configured) {
                    *in_use += 1;
                    return SharePermit { share: self.clone() };
                }
            }
            freed.await;
        }
    }
}

/// One instance of a plugin's share, given back when dropped.
pub(crate) struct SharePermit {
    share: Arc<Share>,
}

impl Drop for SharePermit {
    fn drop(&mut self) {
        *self.share.in_use.lock() -= 1;
        self.share.freed.notify_one();
    }
}

/// The calls of one plugin that may run guest code at once.
pub(crate) struct Running {
    permits: Arc<Semaphore>,
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Running {
    pub(crate) fn new(cpu_share: usize) -> Arc<Self> {
        Arc::new(Self {
            permits: Arc::new(Semaphore::new(cpu_share.clamp(1, Semaphore::MAX_PERMITS))),
            now: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    /// Calls of the plugin running guest code right now.
    pub(crate) fn now(&self) -> usize {
        self.now.load(Ordering::SeqCst)
    }

    /// The most calls of the plugin that ever ran guest code at once.
    pub(crate) fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }
}

/// A call's hold on its plugin's running permit, shared between the call's store (the
/// `http-client` import lets go of it while waiting for the partner) and the epoch callback
/// (which lets go at every tick and queues again).
pub(crate) struct RunSlot {
    running: Arc<Running>,
    held: Mutex<Option<RunPermit>>,
    /// Nanoseconds spent queuing for the permit: not the plugin's own time.
    queued_nanos: AtomicU64,
}

struct RunPermit {
    _permit: OwnedSemaphorePermit,
    running: Arc<Running>,
}

impl Drop for RunPermit {
    fn drop(&mut self) {
        self.running.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RunSlot {
    pub(crate) fn new(running: Arc<Running>) -> Arc<Self> {
        Arc::new(Self { running, held: Mutex::new(None), queued_nanos: AtomicU64::new(0) })
    }

    /// Queue for a running permit (FIFO among the plugin's calls) and hold it. The time spent
    /// queuing is added to [`Self::queued`].
    pub(crate) async fn acquire(&self) {
        if self.held.lock().is_some() {
            return;
        }
        let entered = Instant::now();
        // The semaphore is never closed; should it be, the call runs unthrottled rather than
        // failing.
        let permit = self.running.permits.clone().acquire_owned().await.ok();
        let queued = u64::try_from(entered.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.queued_nanos.fetch_add(queued, Ordering::SeqCst);
        if let Some(permit) = permit {
            let now = self.running.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.running.peak.fetch_max(now, Ordering::SeqCst);
            *self.held.lock() = Some(RunPermit { _permit: permit, running: self.running.clone() });
        }
    }

    /// Let go of the running permit, if held: the call is about to wait, not to run.
    pub(crate) fn release(&self) {
        drop(self.held.lock().take());
    }

    /// Time spent queuing for the running permit so far.
    pub(crate) fn queued(&self) -> Duration {
        Duration::from_nanos(self.queued_nanos.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plugin_s_share_of_the_pool() {
        // (max_instances, plugins loaded, the plugin's own setting, its share)
        let table: [(u32, usize, Option<u32>, usize); 10] = [
            (128, 1, None, 128),
            (128, 2, None, 64),
            (128, 3, None, 42),
            (128, 200, None, 1),
            (4, 0, None, 4),
            (0, 1, None, 1),
            (128, 4, Some(100), 100),
            (128, 4, Some(1_000), 128),
            (128, 4, Some(0), 1),
            (16, 1, Some(2), 2),
        ];
        for (max_instances, loaded, configured, expected) in table {
            assert_eq!(
                share(max_instances, loaded, configured),
                expected,
                "max_instances {max_instances}, {loaded} plugins, own setting {configured:?}"
            );
        }
    }

    #[test]
    fn a_quota_is_at_least_one_and_clones_share_it() {
        let quota = InstanceQuota::new(0);
        assert_eq!(quota.limit(), 1);
        let clone = quota.clone();
        let _held = clone.permits.clone().try_acquire_owned().unwrap();
        assert_eq!(quota.in_use(), 1);
    }

    #[tokio::test]
    async fn the_share_shrinks_as_plugins_load_and_a_freed_slot_wakes_a_waiter() {
        let pool = Pool::new(4);
        let first = pool.register();
        let share = Share::new(None);
        let held: Vec<SharePermit> = futures::future::join_all((0..4).map(|_| share.acquire(&pool))).await;
        assert_eq!(share.in_use(), 4, "alone, the plugin may take the whole pool");
        let _second = pool.register();
        assert_eq!(pool.share(None), 2);
        let mut held = held;
        held.truncate(2);
        assert_eq!(share.in_use(), 2);
        let waiting = share.acquire(&pool);
        tokio::pin!(waiting);
        assert!(futures::poll!(waiting.as_mut()).is_pending(), "at its share of 2, a third call waits");
        held.pop();
        let _third = waiting.await;
        assert_eq!(share.in_use(), 2);
        drop(first);
        assert_eq!(pool.share(None), 4, "a plugin dropped gives its share back");
    }

    #[tokio::test]
    async fn a_run_slot_counts_who_runs_and_for_how_long_it_queued() {
        let running = Running::new(1);
        let a = RunSlot::new(running.clone());
        let b = RunSlot::new(running.clone());
        a.acquire().await;
        a.acquire().await; // held already: a no-op
        assert_eq!(running.now(), 1);
        let queued = b.acquire();
        tokio::pin!(queued);
        assert!(futures::poll!(queued.as_mut()).is_pending(), "one running permit: b queues");
        a.release();
        queued.await;
        assert_eq!((running.now(), running.peak()), (1, 1));
        b.release();
        b.release();
        assert_eq!(running.now(), 0);
    }
}
