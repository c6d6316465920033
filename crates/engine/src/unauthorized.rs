//! What a call made for the API does when the partner refuses the connection's credentials.
//!
//! Why: an access token expires while people use the API (Pinterest's live 30 days; a
//! partner may also expire one early). The lane refreshes it at its next 401, but a person
//! listing accounts or creating a sync in between would be told to connect again although
//! nothing is wrong. So such a call refreshes the credentials the way the lane does — through
//! the lane, so a refresh happens once per credentials version whoever meets the 401 first,
//! and a refresh that does not help parks the connection as the lane's would — and is made once
//! more with the new ones.
//!
//! With several hosts (lane leases), only the host running the connection's lane refreshes its
//! credentials: another host's refresh could race with it, and some partners invalidate the
//! previous refresh token when they issue a new one. A host without the lane takes credentials
//! newer than the refused ones from the store when the lane's host has refreshed them already.

use std::future::Future;

use audience_runtime::CallError;
use audience_runtime::types::{Credentials, DestinationError};
use audience_store::Health;

use super::{Engine, decode_credentials};

impl Engine {
    /// Make `call` with `credentials` (version `version` of `connection_id`'s); when the
    /// partner refuses them as unauthorized, with fresh credentials once more, if the
    /// connection's can be refreshed (see the module documentation).
    pub async fn with_credentials<T, F, Fut>(
        &self,
        connection_id: &str,
        version: i64,
        credentials: Credentials,
        call: F,
    ) -> Result<T, CallError>
    where
        F: Fn(Credentials) -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        match call(credentials).await {
            Err(CallError::Destination(DestinationError::Unauthorized(why))) => {
                match self.credentials_after_unauthorized(connection_id, version, &why).await {
                    Some(fresh) => call(fresh).await,
                    None => Err(CallError::Destination(DestinationError::Unauthorized(why))),
                }
            }
            other => other,
        }
    }

    /// Credentials of `connection_id` newer than version `failed_version`, which the partner
    /// refused as unauthorized (`why`): refreshed through the connection's lane on this host,
    /// or read from the store. `None` when there are none (nothing to refresh with, the
    /// refresh failed and the connection needs a person, or another host has not refreshed
    /// them yet).
    async fn credentials_after_unauthorized(
        &self,
        connection_id: &str,
        failed_version: i64,
        why: &str,
    ) -> Option<Credentials> {
        let lane = if self.shared.config.lease.enabled {
            self.shared.lanes.lock().get(connection_id).cloned()
        } else {
            // One host runs every lane: a connection with no sync yet gets its (idle) lane.
            self.ensure_lane(connection_id).await.ok()
        };
        if let Some(lane) = lane {
            lane.refresh_after_api_unauthorized(failed_version, why).await;
            let (version, creds, health) = lane.with_state(|s| (s.creds_version, s.creds.clone(), s.health));
            if version != failed_version && health == Health::Ok {
                return creds;
            }
        }
        let connection = self.shared.store.connection(connection_id).await.ok()?;
        if connection.credentials_version == failed_version || connection.health != Health::Ok {
            return None;
        }
        decode_credentials(&connection.credentials).ok()
    }
}
