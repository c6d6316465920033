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
    AudienceSpec, AudienceTarget, Batch, BatchOutcome, Credentials, Grant, Limits, PluginConfig, UpsertOutcome,
    WriteOutcome,
};
use audience_runtime::{CallError, Plugin, PluginError, RequestHooks};

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
    /// A destination from a plugin, its settings and the operator's overrides.
    pub fn new(plugin: Plugin, config: PluginConfig, overrides: &LimitOverrides) -> Self {
        let declared = plugin.manifest().limits;
        let limits = Limits {
            max_batch_size: overrides.max_batch_size.unwrap_or(declared.max_batch_size).max(1),
            requests_per_second: overrides.requests_per_second.unwrap_or(declared.requests_per_second),
            max_concurrent_requests: overrides
                .max_concurrent_requests
                .unwrap_or(declared.max_concurrent_requests)
                .max(1),
            ..declared
        };
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
        }
    }
}

/// The calls a lane makes to its destination. Each may send requests to the partner; the
/// hooks attached with [`DestinationCalls::with_hooks`] are called around every one of them.
pub(crate) trait DestinationCalls: Send + Sync {
    /// The same destination with `hooks` called around each outbound request of its calls.
    fn with_hooks(&self, hooks: Arc<dyn RequestHooks>) -> Arc<dyn DestinationCalls>;

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
    ) -> BoxFuture<'a, Result<BatchOutcome, CallError>>;
}

impl DestinationCalls for Plugin {
    fn with_hooks(&self, hooks: Arc<dyn RequestHooks>) -> Arc<dyn DestinationCalls> {
        Arc::new(Plugin::with_hooks(self, hooks))
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
    ) -> BoxFuture<'a, Result<BatchOutcome, CallError>> {
        Box::pin(async move {
            match Plugin::write_users(self, action, config, creds, account_id, target, batch).await? {
                WriteOutcome::Done(outcome) => Ok(outcome),
                // Until the engine runs asynchronous outcomes, a `submitted` answer cannot be
                // followed up: the users retry rather than being counted synced unseen.
                WriteOutcome::Submitted(_) => Err(CallError::Plugin(PluginError::Contract(
                    "the plugin answered `submitted`, but this host does not run asynchronous outcomes yet".into(),
                ))),
            }
        })
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
