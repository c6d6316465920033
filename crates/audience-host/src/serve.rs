//! `audience-host serve`: the service as configured, until SIGTERM or Ctrl-C.
//!
//! On a signal it stops taking requests (the listener closes, requests in flight are
//! answered), lets the batches in flight finish and be recorded, and exits; anything still
//! queued waits durably for the next start.
//!
//! HTTP is served by [`audience_api::serve`], which bounds what slow and idle clients can
//! hold (the `[http]` settings). Each connection costs a file descriptor, so at start the
//! soft open-files limit is raised (up to the hard limit) to hold `http.max_connections`
//! plus [`RESERVED_FILES`], with a warning when it cannot be.

use std::path::Path;

use anyhow::Context as _;

use crate::config::HostConfig;
use crate::service;
use audience_api::{ApiState, OauthOverride, OperatorKey};

/// Run the service from the configuration at `path` (plus environment overrides).
pub async fn run(path: Option<&Path>) -> anyhow::Result<()> {
    let config = HostConfig::load(path)?;
    config.http.check().map_err(|why| anyhow::anyhow!("invalid configuration: {why}"))?;
    open_files_for(config.http.max_connections);
    let operator_key = config.operator_key.read("the operator API key")?;
    let operator_key = OperatorKey::new(&operator_key).context("the operator API key is not usable")?;
    let service = service::assemble(config).await?;
    service.engine.start().await.context("the engine could not start")?;
    let listener = audience_api::bind(&service.config.listen, service.config.http.listen_backlog)
        .await
        .with_context(|| format!("cannot listen on {}", service.config.listen))?;
    tracing::info!(listen = %service.config.listen, destinations = ?service.engine.destinations().names(), "audience-host is serving");
    let mut state = ApiState::new(service.engine.clone(), operator_key, service.config.public_url.clone());
    for (name, settings) in &service.config.plugins {
        if let Some(url) = &settings.authorize_url {
            state.oauth.insert(name.clone(), OauthOverride { authorize_url: Some(url.clone()) });
        }
    }
    let app = audience_api::router(state);
    audience_api::serve(listener, app, service.config.http.clone(), shutdown_signal()).await;
    tracing::info!("shutting down: waiting for the batches in flight");
    service.engine.shutdown().await;
    Ok(())
}

/// File descriptors kept for everything but client connections: the store (SQLite files or
/// PostgreSQL's pool), the listener, the compile cache, logs, the plugins' outbound requests.
pub const RESERVED_FILES: u64 = 1024;

/// Raise the soft open-files limit so `max_connections` client connections fit, and warn when
/// the hard limit does not allow it.
fn open_files_for(max_connections: usize) {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let wanted = u64::try_from(max_connections).unwrap_or(u64::MAX).saturating_add(RESERVED_FILES);
        let Some(raise_to) = soft_limit_to_set(limit.current, limit.maximum, wanted) else { return };
        let raised = setrlimit(Resource::Nofile, Rlimit { current: Some(raise_to), maximum: limit.maximum }).is_ok();
        let now = if raised { Some(raise_to) } else { limit.current };
        if raised {
            tracing::info!(from = ?limit.current, to = raise_to, "raised the open-files limit for http.max_connections");
        }
        if now.is_some_and(|n| n < wanted) {
            tracing::warn!(
                open_files = ?now,
                max_connections,
                "the open-files limit is below http.max_connections + {RESERVED_FILES}: at that many connections \
                 accepts fail; raise the limit (LimitNOFILE=, ulimit -n) or lower http.max_connections"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = max_connections;
}

/// The soft limit to set for `wanted` descriptors given the `current` soft and `maximum` hard
/// limits (`None` = unlimited), or `None` when nothing should change.
fn soft_limit_to_set(current: Option<u64>, maximum: Option<u64>, wanted: u64) -> Option<u64> {
    let current = current?;
    if current >= wanted {
        return None;
    }
    let target = maximum.map_or(wanted, |max| wanted.min(max));
    (target > current).then_some(target)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_only_as_far_as_needed_and_allowed() {
        assert_eq!(soft_limit_to_set(Some(1024), Some(524_288), 11_024), Some(11_024));
        assert_eq!(soft_limit_to_set(Some(1024), Some(4096), 11_024), Some(4096));
        assert_eq!(soft_limit_to_set(Some(1024), None, 11_024), Some(11_024));
        assert_eq!(soft_limit_to_set(Some(20_000), Some(20_000), 11_024), None);
        assert_eq!(soft_limit_to_set(Some(4096), Some(4096), 11_024), None);
        assert_eq!(soft_limit_to_set(None, None, 11_024), None);
    }
}
