//! The destinations this host can deliver to: a loaded plugin, the operator's settings for it,
//! and the limits in force (the plugin's defaults, overridden by the operator where set).

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::plugin::Plugin;
use crate::plugin::types::{IdentifierKind, Limits, PluginConfig};

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
        };
        Self { plugin, config, limits }
    }

    /// The destination's name (the plugin's).
    pub fn name(&self) -> &str {
        self.plugin.name()
    }
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

/// The contract's name of an identifier kind, as used in sync settings and the API.
pub fn kind_name(kind: IdentifierKind) -> &'static str {
    match kind {
        IdentifierKind::Email => "email",
        IdentifierKind::Phone => "phone",
        IdentifierKind::MobileAdId => "mobile-ad-id",
        IdentifierKind::Idfa => "idfa",
        IdentifierKind::ExternalId => "external-id",
    }
}

/// Parse an identifier kind by its contract name.
pub fn parse_kind(name: &str) -> Option<IdentifierKind> {
    Some(match name {
        "email" => IdentifierKind::Email,
        "phone" => IdentifierKind::Phone,
        "mobile-ad-id" => IdentifierKind::MobileAdId,
        "idfa" => IdentifierKind::Idfa,
        "external-id" => IdentifierKind::ExternalId,
        _ => return None,
    })
}
