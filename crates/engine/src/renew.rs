//! Renewing credentials ahead of their expiry, so that a connection nobody used for weeks is
//! still alive when its users arrive (Pinterest's access tokens live 30 days and its refresh
//! tokens 60; Meta's long-lived tokens ~60 days with no refresh token at all: renewing is
//! exchanging the token while it is still valid).
//!
//! Each lane looks at its own credentials whenever it wakes: when the pure rule
//! ([`super::decide::renew_at`]) says they are due, it asks the plugin to renew them
//! (`authorize(refresh(credentials))`) and stores the result, as a refresh after a 401 does. A
//! failure does not stop delivery while the old token still works: it is recorded on the
//! connection (its `last_error` in the API) and tried again after [`RETRY_AFTER`].

use std::time::{Duration, Instant};

use audience_runtime::CallError;
use audience_runtime::types::Grant;

use super::decide;
use super::encode_credentials;
use super::lane::Lane;
use super::metrics::loggable;

/// How long before expiry credentials are renewed (at most half their remaining life).
pub(crate) const LEAD: Duration = Duration::from_secs(24 * 3600);
/// A connection lapsing sooner than this is counted in `audience_connections_lapsing` (the API
/// says `lapsing_soon` by the same rule).
pub(crate) const LAPSING_SOON: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long after a failed renewal the lane tries again.
pub(crate) const RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

impl Lane {
    /// When the lane must next look at its credentials without being told (ms): the renewal
    /// ahead of expiry (or its retry after a failure), or the moment they start lapsing soon
    /// (a metric). `None` when neither is ahead.
    pub(super) fn next_renewal_ms(&self) -> Option<i64> {
        self.with_state(|s| {
            let creds = s.creds.as_ref()?;
            let now_s = (self.clock.now_ms().max(0) / 1000) as u64;
            let renewal = match s.renew_at {
                Some((version, at)) if version == s.creds_version && s.health == audience_store::Health::Ok => {
                    at.map(|at| at.max(s.renew_retry_at.unwrap_or(0)))
                }
                _ => None,
            };
            let lapsing = decide::lapses_at(creds, now_s)
                .map(|at| at.saturating_sub(LAPSING_SOON.as_secs()))
                .filter(|at| *at > now_s && !s.lapsing);
            [renewal, lapsing]
                .into_iter()
                .flatten()
                .min()
                .map(|at| i64::try_from(at.saturating_mul(1000)).unwrap_or(i64::MAX))
        })
    }

    /// Renew the connection's credentials if they are due; see the module documentation.
    pub(super) async fn renew_if_due(&self) {
        let now_s = (self.clock.now_ms().max(0) / 1000) as u64;
        let lapsing = self.with_state(|s| {
            let lapsing = s
                .creds
                .as_ref()
                .and_then(|c| decide::lapses_at(c, now_s))
                .is_some_and(|at| at < now_s + LAPSING_SOON.as_secs());
            (lapsing != s.lapsing).then(|| {
                s.lapsing = lapsing;
                lapsing
            })
        });
        if let Some(lapsing) = lapsing {
            self.shared.metrics.set_lapsing(&self.destination.name, &self.connection_id, lapsing);
        }
        let due = self.with_state(|s| {
            if s.health != audience_store::Health::Ok {
                return None; // a person must connect again; nothing to renew
            }
            let creds = s.creds.as_ref()?;
            // Decided once per credentials version, when the lane first sees them: "half the
            // remaining life" measured at every look would never arrive.
            let at = match s.renew_at {
                Some((version, at)) if version == s.creds_version => at,
                _ => {
                    let at = decide::renew_at(creds, now_s, LEAD);
                    s.renew_at = Some((s.creds_version, at));
                    at
                }
            }?;
            let retry_ok = s.renew_retry_at.is_none_or(|t| t <= now_s);
            (at <= now_s && retry_ok).then(|| (creds.clone(), s.creds_version))
        });
        let Some((current, version)) = due else { return };
        let _guard = self.refresh.lock().await;
        if self.with_state(|s| s.creds_version) != version {
            return; // renewed meanwhile (after a 401)
        }
        let started = Instant::now();
        let outcome = self.calls.authorize(&self.destination.config, Grant::Refresh(current)).await;
        self.shared.metrics.plugin_call(&self.destination.name, "authorize", started.elapsed());
        if let Err(CallError::Plugin(err)) = &outcome {
            self.shared.metrics.plugin_failed(&self.destination.name, "authorize", err);
        }
        let problem = match outcome {
            Ok(creds) => {
                match self.shared.store.update_credentials(&self.connection_id, &encode_credentials(&creds)).await {
                    Ok(connection) => {
                        tracing::info!(connection = %self.connection_id, "renewed the credentials ahead of their expiry");
                        self.with_state(|s| {
                            s.creds = Some(creds);
                            s.creds_version = connection.credentials_version;
                            s.renew_retry_at = None;
                        });
                        return;
                    }
                    Err(err) => {
                        format!("renewing the credentials ahead of expiry worked, but storing them failed: {err}")
                    }
                }
            }
            Err(err) => format!(
                "renewing the credentials ahead of their expiry failed ({err}); delivery goes on until they expire, \
                 then the connection needs to be connected again"
            ),
        };
        tracing::warn!(connection = %self.connection_id, reason = %loggable(&problem), "could not renew credentials");
        self.with_state(|s| s.renew_retry_at = Some(now_s + RETRY_AFTER.as_secs()));
        let health = self.with_state(|s| s.health);
        if let Err(err) = self.shared.store.set_connection_health(&self.connection_id, health, Some(&problem)).await {
            tracing::error!(connection = %self.connection_id, error = %err, "could not record the renewal failure");
        }
    }
}
