//! `audience-host serve`: the service as configured, until SIGTERM or Ctrl-C.
//!
//! On a signal it stops taking requests, lets the batches in flight finish and be recorded,
//! and exits; anything still queued waits durably for the next start.

use std::path::Path;

use anyhow::Context as _;

use crate::api::{ApiState, OauthOverride, OperatorKey};
use crate::config::HostConfig;
use crate::service;

/// Run the service from the configuration at `path` (plus environment overrides).
pub async fn run(path: Option<&Path>) -> anyhow::Result<()> {
    let config = HostConfig::load(path)?;
    let operator_key = config.operator_key.read("the operator API key")?;
    let operator_key = OperatorKey::new(&operator_key).context("the operator API key is not usable")?;
    let host = service::assemble(config).await?;
    host.engine.start().await.context("the engine could not start")?;
    let listener = tokio::net::TcpListener::bind(&host.config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", host.config.listen))?;
    tracing::info!(listen = %host.config.listen, destinations = ?host.engine.destinations().names(), "audience-host is serving");
    let mut state = ApiState::new(host.engine.clone(), operator_key, host.config.public_url.clone());
    for (name, settings) in &host.config.plugins {
        if let Some(url) = &settings.authorize_url {
            state.oauth.insert(name.clone(), OauthOverride { authorize_url: Some(url.clone()) });
        }
    }
    let app = crate::api::router(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("the HTTP server failed")?;
    tracing::info!("shutting down: waiting for the batches in flight");
    host.engine.shutdown().await;
    Ok(())
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
