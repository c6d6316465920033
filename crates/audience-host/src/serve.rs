//! `audience-host serve`: the service as configured, until SIGTERM or Ctrl-C.
//!
//! On a signal it stops taking requests, lets the batches in flight finish and be recorded,
//! and exits; anything still queued waits durably for the next start.

use std::path::Path;

use anyhow::Context as _;

use crate::config::HostConfig;
use crate::service;
use audience_api::{ApiState, OauthOverride, OperatorKey};

/// Run the service from the configuration at `path` (plus environment overrides).
pub async fn run(path: Option<&Path>) -> anyhow::Result<()> {
    let config = HostConfig::load(path)?;
    let operator_key = config.operator_key.read("the operator API key")?;
    let operator_key = OperatorKey::new(&operator_key).context("the operator API key is not usable")?;
    let service = service::assemble(config).await?;
    service.engine.start().await.context("the engine could not start")?;
    let listener = tokio::net::TcpListener::bind(&service.config.listen)
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
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("the HTTP server failed")?;
    tracing::info!("shutting down: waiting for the batches in flight");
    service.engine.shutdown().await;
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
