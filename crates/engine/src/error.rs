//! Errors the engine reports to its callers (the API, the CLI), worded for the person who
//! has to act on them.

use std::time::Duration;

use serde::Serialize;

use audience_store::StoreError;

use audience_runtime::PluginError;

/// One thing wrong with a request, tied to the field it concerns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The field, e.g. `match_fields` or `users[3].key`.
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

fn list(problems: &[Problem]) -> String {
    problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect::<Vec<_>>().join("; ")
}

/// Why the engine refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The request is invalid; every problem is listed.
    #[error("invalid request: {}", list(.0))]
    Invalid(Vec<Problem>),
    /// The sync, connection or workspace does not exist.
    #[error("{kind} {id} not found")]
    NotFound {
        /// What was looked up.
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// No plugin is loaded for the destination.
    #[error("destination {0:?} is not configured on this host; add its plugin to the configuration")]
    UnknownDestination(String),
    /// The plugin failed; nothing was accepted.
    #[error("the {destination} plugin failed, nothing was accepted: {source}")]
    Plugin {
        /// Destination name.
        destination: String,
        /// What failed.
        source: PluginError,
    },
    /// The store failed; nothing was accepted.
    #[error("storage failure, nothing was accepted: {0}")]
    Store(StoreError),
    /// The partner could not be asked (down, throttling); nothing was stored. Try again.
    #[error("{0}")]
    Unavailable(String),
    /// The connection's partner budget is in use (by deliveries, or by other calls made for
    /// the API: they may use `engine.rate.api_share` of it) further ahead than
    /// `engine.rate.api_max_wait`: nothing was sent to the partner and nothing stored. Try
    /// again after `retry_after`.
    #[error(
        "{destination}'s request budget for this connection is in use (by deliveries or other API calls) for the \
         next {} ms; nothing was sent or stored, try again in {} s",
        retry_after.as_millis(),
        retry_after_secs(*retry_after)
    )]
    RateLimited {
        /// Destination name.
        destination: String,
        /// When the connection's turn comes.
        retry_after: Duration,
    },
}

/// `wait` in whole seconds, rounded up (at least 1): a `Retry-After` value.
pub fn retry_after_secs(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

impl From<StoreError> for EngineError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { kind, id } => EngineError::NotFound { kind, id },
            other => EngineError::Store(other),
        }
    }
}
