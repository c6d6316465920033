//! Errors the engine reports to its callers (the API, the CLI), worded for the person who
//! has to act on them.

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
}

impl From<StoreError> for EngineError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { kind, id } => EngineError::NotFound { kind, id },
            other => EngineError::Store(other),
        }
    }
}
