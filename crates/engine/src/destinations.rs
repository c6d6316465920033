//! The destinations this host can deliver to: a loaded plugin, the operator's settings for it,
//! and the limits in force (the plugin's defaults, overridden by the operator where set).
//!
//! A lane does not call the plugin directly but through [`DestinationCalls`]: the few calls
//! delivery makes, implemented by the loaded [`Plugin`] and, in the engine's tests, by a fake
//! partner (no WebAssembly, deterministic under tokio's paused time).

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use audience_model::SyncAction;
use audience_runtime::types::{
    AudienceSpec, AudienceTarget, Batch, Credentials, Grant, Limits, PluginConfig, SubmissionStatus, UpsertOutcome,
    WriteOutcome,
};
use audience_runtime::{CallError, InstanceQuota, Plugin, RequestHooks};

/// The operator's overrides of a plugin's declared limits. Unset fields keep the plugin's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitOverrides {
    /// Users per request.
    pub max_batch_size: Option<u32>,
    /// Requests per second per connection.
    pub requests_per_second: Option<f64>,
    /// Concurrent requests per connection.
    pub max_concurrent_requests: Option<u32>,
    /// Batches submitted (or in flight) at once per audience, for asynchronous partners; 0 =
    /// no limit.
    pub max_submissions_per_audience: Option<u32>,
    /// Requests per second across every connection of the plugin (an application-wide
    /// budget, Google's per Cloud project).
    pub app_requests_per_second: Option<f64>,
}

/// The most a plugin's manifest may declare for itself. A plugin is untrusted: one that
/// declares a thousand concurrent requests, or a million users per request, would otherwise
/// get them. Values above a cap are lowered to it (and said in the log at load); the
/// operator's [`LimitOverrides`] are not capped — the operator decides. The `[engine.caps]`
/// section of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ManifestCaps {
    /// Users per request. Default 10,000 (the largest any partner here accepts).
    pub max_batch_size: u32,
    /// Requests per second per connection. Default 100.
    pub requests_per_second: f64,
    /// Requests in flight at once per connection, i.e. plugin instances one connection's
    /// deliveries may hold. Default 16.
    pub max_concurrent_requests: u32,
    /// Plugin instances one connection's calls of every kind (deliveries, intake's
    /// `prepare-users`, the API's account and audience calls) may hold at once; a call beyond
    /// it waits, up to the plugin's `call_timeout`, then fails as busy (retried, or a 503 to an
    /// API caller). Not a manifest figure: the host's bound on one tenant. Default 20 (the
    /// concurrency cap plus room for intake and the API).
    pub instances_per_connection: u32,
}

impl Default for ManifestCaps {
    fn default() -> Self {
        Self {
            max_batch_size: 10_000,
            requests_per_second: 100.0,
            max_concurrent_requests: 16,
            instances_per_connection: 20,
        }
    }
}

/// The limits in force for a plugin that declared `declared`: the operator's overrides where
/// set, else the declaration within `caps`. The second value says, for each capped field,
/// what the plugin declared and what it got, for the log.
pub fn effective_limits(declared: Limits, overrides: &LimitOverrides, caps: &ManifestCaps) -> (Limits, Vec<String>) {
    let mut capped = Vec::new();
    let mut cap_u32 = |name: &str, declared: u32, cap: u32| {
        if declared > cap {
            capped.push(format!("{name}: declared {declared}, capped at {cap} (engine.caps.{name})"));
        }
        declared.min(cap)
    };
    let batch = cap_u32("max_batch_size", declared.max_batch_size, caps.max_batch_size);
    let concurrent = cap_u32("max_concurrent_requests", declared.max_concurrent_requests, caps.max_concurrent_requests);
    let declared_rps = if declared.requests_per_second.is_finite() { declared.requests_per_second } else { f64::MAX };
    if declared_rps > caps.requests_per_second {
        capped.push(format!(
            "requests_per_second: declared {}, capped at {} (engine.caps.requests_per_second)",
            declared.requests_per_second, caps.requests_per_second
        ));
    }
    let limits = Limits {
        max_batch_size: overrides.max_batch_size.unwrap_or(batch).max(1),
        requests_per_second: overrides.requests_per_second.unwrap_or(declared_rps.min(caps.requests_per_second)),
        max_concurrent_requests: overrides.max_concurrent_requests.unwrap_or(concurrent).max(1),
        max_submissions_per_audience: overrides
            .max_submissions_per_audience
            .unwrap_or(declared.max_submissions_per_audience),
        app_requests_per_second: overrides
            .app_requests_per_second
            .filter(|rps| rps.is_finite() && *rps > 0.0)
            .or(declared.app_requests_per_second),
    };
    (limits, capped)
}

/// One destination: plugin + settings + effective limits.
#[derive(Clone)]
pub struct Destination {
    /// The loaded plugin.
    pub plugin: Plugin,
    /// The operator's settings passed to every call.
    pub config: PluginConfig,
    /// The limits in force.
    pub limits: Limits,
}

impl Destination {
    /// A destination from a plugin, its settings, the operator's overrides and the caps on
    /// what its manifest may declare (see [`effective_limits`]).
    pub fn new(plugin: Plugin, config: PluginConfig, overrides: &LimitOverrides, caps: &ManifestCaps) -> Self {
        let (limits, capped) = effective_limits(plugin.manifest().limits, overrides, caps);
        for what in capped {
            tracing::warn!(plugin = %plugin.name(), "the plugin declares more than this host allows; {what}");
        }
        Self { plugin, config, limits }
    }

    /// The destination's name (the plugin's).
    pub fn name(&self) -> &str {
        self.plugin.name()
    }

    /// What a lane needs of this destination, calling the plugin.
    pub(crate) fn for_lane(&self) -> LaneDestination {
        LaneDestination {
            name: self.name().to_string(),
            config: self.config.clone(),
            limits: self.limits,
            calls: Arc::new(self.plugin.clone()),
            deliveries: None,
        }
    }
}

/// The calls a lane makes to its destination. Each may send requests to the partner; the
/// hooks attached with [`DestinationCalls::with_hooks`] are called around every one of them.
pub(crate) trait DestinationCalls: Send + Sync {
    /// The same destination with `hooks` called around each outbound request of its calls.
    fn with_hooks(&self, hooks: Arc<dyn RequestHooks>, quota: InstanceQuota) -> Arc<dyn DestinationCalls>;

    /// Exchange a grant (here: a refresh token) for credentials.
    fn authorize<'a>(&'a self, config: &'a PluginConfig, grant: Grant)
    -> BoxFuture<'a, Result<Credentials, CallError>>;

    /// Find or create the audience of `spec`.
    fn upsert_audience<'a>(
        &'a self,
        config: &'a PluginConfig,
        creds: &'a Credentials,
        account_id: &'a str,
        spec: &'a AudienceSpec,
    ) -> BoxFuture<'a, Result<UpsertOutcome, CallError>>;

    /// Add or remove one batch, as `action` says.
    fn write_users<'a>(
        &'a self,
        action: SyncAction,
        config: &'a PluginConfig,
        creds: &'a Credentials,
        account_id: &'a str,
        target: &'a AudienceTarget,
        batch: Batch,
    ) -> BoxFuture<'a, Result<WriteOutcome, CallError>>;

    /// How the batch the partner accepted as `submission_id` (of `sent` users) is doing.
    fn check_submission<'a>(
        &'a self,
        config: &'a PluginConfig,
        creds: &'a Credentials,
        account_id: &'a str,
        target: &'a AudienceTarget,
        submission_id: &'a str,
        sent: usize,
    ) -> BoxFuture<'a, Result<SubmissionStatus, CallError>>;
}

impl DestinationCalls for Plugin {
    fn with_hooks(&self, hooks: Arc<dyn RequestHooks>, quota: InstanceQuota) -> Arc<dyn DestinationCalls> {
        Arc::new(Plugin::with_hooks(self, hooks).with_quota(quota))
    }

    fn authorize<'a>(
        &'a self,
        config: &'a PluginConfig,
        grant: Grant,
    ) -> BoxFuture<'a, Result<Credentials, CallError>> {
        Box::pin(Plugin::authorize(self, config, grant))
    }

    fn upsert_audience<'a>(
        &'a self,
        config: &'a PluginConfig,
        creds: &'a Credentials,
        account_id: &'a str,
        spec: &'a AudienceSpec,
    ) -> BoxFuture<'a, Result<UpsertOutcome, CallError>> {
        Box::pin(Plugin::upsert_audience(self, config, creds, account_id, spec))
    }

    fn write_users<'a>(
        &'a self,
        action: SyncAction,
        config: &'a PluginConfig,
        creds: &'a Credentials,
        account_id: &'a str,
        target: &'a AudienceTarget,
        batch: Batch,
    ) -> BoxFuture<'a, Result<WriteOutcome, CallError>> {
        Box::pin(Plugin::write_users(self, action, config, creds, account_id, target, batch))
    }

    fn check_submission<'a>(
        &'a self,
        config: &'a PluginConfig,
        creds: &'a Credentials,
        account_id: &'a str,
        target: &'a AudienceTarget,
        submission_id: &'a str,
        sent: usize,
    ) -> BoxFuture<'a, Result<SubmissionStatus, CallError>> {
        Box::pin(Plugin::check_submission(self, config, creds, account_id, target, submission_id, sent))
    }
}

/// What a lane needs of its destination: its name, the operator's settings, the limits in
/// force, and the calls (the plugin's, or a fake's in tests).
#[derive(Clone)]
pub(crate) struct LaneDestination {
    /// The destination's name.
    pub(crate) name: String,
    /// The operator's settings passed to every call.
    pub(crate) config: PluginConfig,
    /// The limits in force.
    pub(crate) limits: Limits,
    /// The calls.
    pub(crate) calls: Arc<dyn DestinationCalls>,
    /// The deliveries of all of this destination's lanes on this host at once (see
    /// [`crate::Shared::delivery_slots_for`]); `None`: no bound but each lane's own.
    pub(crate) deliveries: Option<Arc<tokio::sync::Semaphore>>,
}

/// The destinations by name.
#[derive(Clone, Default)]
pub struct Destinations {
    by_name: HashMap<String, Arc<Destination>>,
}

impl Destinations {
    /// No destinations.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a destination under its plugin's name.
    pub fn insert(&mut self, destination: Destination) {
        self.by_name.insert(destination.name().to_string(), Arc::new(destination));
    }

    /// A destination by name.
    pub fn get(&self, name: &str) -> Option<Arc<Destination>> {
        self.by_name.get(name).cloned()
    }

    /// All destination names.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_name.keys().cloned().collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(batch: u32, rps: f64, concurrent: u32) -> Limits {
        Limits {
            max_batch_size: batch,
            requests_per_second: rps,
            max_concurrent_requests: concurrent,
            max_submissions_per_audience: 0,
            app_requests_per_second: None,
        }
    }

    fn key(l: &Limits) -> (u32, f64, u32) {
        (l.max_batch_size, l.requests_per_second, l.max_concurrent_requests)
    }

    #[test]
    fn a_manifest_gets_what_it_declares_within_the_caps_and_the_operator_decides_beyond() {
        let caps = ManifestCaps::default();
        let none = LimitOverrides::default();
        let operator = LimitOverrides {
            max_batch_size: Some(50_000),
            requests_per_second: Some(500.0),
            max_concurrent_requests: Some(64),
            ..LimitOverrides::default()
        };
        let cases = [
            // (declared, overrides) -> (limits, fields capped)
            ((limits(1_900, 7.0, 3), &none), ((1_900, 7.0, 3), 0)),
            ((limits(1_000_000, 7.0, 1_000), &none), ((10_000, 7.0, 16), 2)),
            ((limits(10, f64::INFINITY, 1), &none), ((10, 100.0, 1), 1)),
            ((limits(10, 1e9, 0), &none), ((10, 100.0, 1), 1)),
            ((limits(1_000_000, 1e9, 1_000), &operator), ((50_000, 500.0, 64), 3)),
            ((limits(0, 7.0, 3), &none), ((1, 7.0, 3), 0)),
        ];
        for ((declared, overrides), (expected, capped)) in cases {
            let (got, notes) = effective_limits(declared, overrides, &caps);
            assert_eq!((key(&got), notes.len()), (expected, capped), "{declared:?} {overrides:?}: {notes:?}");
        }
    }

    #[test]
    fn the_operator_sets_the_asynchronous_and_application_wide_limits() {
        let caps = ManifestCaps::default();
        let declared =
            Limits { max_submissions_per_audience: 1, app_requests_per_second: Some(4.0), ..limits(10, 7.0, 3) };
        // (overrides, expected (submissions per audience, app rate))
        let cases = [
            (LimitOverrides::default(), (1, Some(4.0))),
            (
                LimitOverrides {
                    max_submissions_per_audience: Some(0),
                    app_requests_per_second: Some(2.5),
                    ..LimitOverrides::default()
                },
                (0, Some(2.5)),
            ),
            // A rate that is not a positive number keeps the plugin's.
            (LimitOverrides { app_requests_per_second: Some(0.0), ..LimitOverrides::default() }, (1, Some(4.0))),
            (LimitOverrides { app_requests_per_second: Some(f64::NAN), ..LimitOverrides::default() }, (1, Some(4.0))),
        ];
        for (overrides, expected) in cases {
            let (got, _) = effective_limits(declared, &overrides, &caps);
            assert_eq!((got.max_submissions_per_audience, got.app_requests_per_second), expected, "{overrides:?}");
        }
    }
}
