//! The partner's own view of a sync's audience (size and state), cached so that showing a
//! sync asks the partner at a modest rate: at most once per [`REFRESH_AFTER`] per sync, only
//! when someone looks (a sync nobody shows costs no request), and at the connection's pace.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use audience_runtime::CallError;
use audience_runtime::types::Audience;
use audience_store::SyncRecord;
use parking_lot::Mutex;

use super::{Engine, decode_credentials};

/// How long a reading is shown before the partner is asked again.
pub const REFRESH_AFTER: Duration = Duration::from_secs(10 * 60);
/// How long one reading may take before the sync is shown without a fresh one.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the partner last said about a sync's audience.
#[derive(Debug, Clone, PartialEq)]
pub struct AudienceStatus {
    /// The audience as the partner reported it (size, state, its words).
    pub audience: Audience,
    /// When it was read (ms since the epoch).
    pub read_at_ms: i64,
}

/// The readings, by sync id.
#[derive(Default)]
pub(crate) struct AudienceStatusCache {
    by_sync: Mutex<HashMap<String, (AudienceStatus, Instant)>>,
}

impl Engine {
    /// The partner's size and state of `sync`'s audience: the cached reading, refreshed when
    /// older than [`REFRESH_AFTER`]. `None` when the audience is not known yet, the plugin
    /// (contract 0.1.0) cannot read audiences, or the partner could not be asked and nothing
    /// was read before.
    pub async fn audience_status(&self, sync: &SyncRecord) -> Option<AudienceStatus> {
        let audience_id = sync.audience_id.as_deref()?;
        let cache = &self.shared.audience_status;
        if let Some((status, at)) = cache.by_sync.lock().get(&sync.id)
            && at.elapsed() < REFRESH_AFTER
        {
            return Some(status.clone());
        }
        let destination = self.shared.destinations.get(&sync.destination)?;
        let connection = self.shared.store.connection(&sync.connection_id).await.ok()?;
        let creds = decode_credentials(&connection.credentials).ok()?;
        let plugin = self.paced_plugin(&sync.connection_id, &destination);
        let read = plugin.read_audience(&destination.config, &creds, &sync.account_id, audience_id);
        match tokio::time::timeout(READ_TIMEOUT, read).await {
            Ok(Ok(audience)) => {
                let status = AudienceStatus { audience, read_at_ms: super::now_ms() };
                cache.by_sync.lock().insert(sync.id.clone(), (status.clone(), Instant::now()));
                Some(status)
            }
            Ok(Err(CallError::Unsupported { .. })) => None,
            Ok(Err(err)) => {
                tracing::debug!(sync = %sync.id, error = %err, "could not read the audience's size and state");
                let mut cache = cache.by_sync.lock();
                // Keep showing the last reading, and wait as long before asking again.
                let entry = cache.get_mut(&sync.id)?;
                entry.1 = Instant::now();
                Some(entry.0.clone())
            }
            Err(_) => cache.by_sync.lock().get(&sync.id).map(|(status, _)| status.clone()),
        }
    }
}
