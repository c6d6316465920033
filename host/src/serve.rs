//! `audience-host serve`: the service as configured, until SIGTERM or Ctrl-C.
//!
//! On a signal it stops taking requests, lets the batches in flight finish and be recorded,
//! and exits; anything still queued waits durably for the next start.

use std::path::Path;

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;

use crate::config::HostConfig;
use crate::engine::Engine;
use crate::service;

/// Run the service from the configuration at `path` (plus environment overrides).
pub async fn run(path: Option<&Path>) -> anyhow::Result<()> {
    let config = HostConfig::load(path)?;
    let host = service::assemble(config).await?;
    host.engine.start().await.context("the engine could not start")?;
    let listener = tokio::net::TcpListener::bind(&host.config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", host.config.listen))?;
    tracing::info!(listen = %host.config.listen, destinations = ?host.engine.destinations().names(), "audience-host is serving");
    let app = router(host.engine.clone());
    axum::serve(listener, app).with_graceful_shutdown(shutdown_signal()).await.context("the HTTP server failed")?;
    tracing::info!("shutting down: waiting for the batches in flight");
    host.engine.shutdown().await;
    Ok(())
}

fn router(engine: Engine) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(engine)
}

async fn ready(State(engine): State<Engine>) -> (StatusCode, &'static str) {
    match engine.store().workspaces().await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the store does not answer"),
    }
}

async fn metrics(State(engine): State<Engine>) -> (StatusCode, String) {
    match engine.render_metrics().await {
        Ok(text) => (StatusCode::OK, text),
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, format!("metrics unavailable: {err}")),
    }
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
