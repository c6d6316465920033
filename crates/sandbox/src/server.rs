//! Binding, routing and lifetime of the sandbox server.
//!
//! The server only listens on loopback: it is a stand-in for tests, demos and plugin authors,
//! never a service, and has no business being reachable from elsewhere.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::SandboxConfig;
use crate::control;
use crate::error::{ApiError, SandboxError};
use crate::handle::SandboxHandle;
use crate::oauth::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use crate::state::Shared;
use crate::{accounts, audiences, customer_lists, gate, oauth};

/// Largest request body accepted; far above the record cap so over-cap bodies reach the
/// record check and get Pinterest's 400 rather than a transport error.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// How long [`PinterestSandbox::shutdown`] waits for open connections before cutting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running Pinterest API v5 stand-in on `127.0.0.1`.
///
/// Dropping it stops the server abruptly; [`shutdown`](Self::shutdown) stops it gracefully.
#[derive(Debug)]
pub struct PinterestSandbox {
    shared: Arc<Shared>,
    server: Serving,
}

/// The serving task of one sandbox (any partner): how it is started, stopped and awaited.
#[derive(Debug)]
pub(crate) struct Serving {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl Serving {
    /// Binds `127.0.0.1:port` (0 = any free port).
    pub async fn bind(port: u16) -> Result<(TcpListener, SocketAddr), SandboxError> {
        let bind_error = |source| SandboxError::Bind { port, source };
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await.map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        Ok((listener, addr))
    }

    /// Serves `app` on `listener` until [`shutdown`](Self::shutdown) or drop.
    pub fn spawn(listener: TcpListener, app: Router) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    // Either a stop request or the sender being dropped ends the server.
                    let _ = stopped.await;
                })
                .await
        });
        Self { stop: Some(stop), task: Some(task) }
    }

    /// Stops accepting requests, lets open ones finish (up to a few seconds), and returns.
    pub async fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!("sandbox server stopped with an error: {e}"),
                Ok(Err(e)) => tracing::warn!("sandbox server task failed: {e}"),
                Err(_) => task.abort(),
            }
        }
    }

    /// Resolves when the server stops by itself (it only does on an I/O error).
    pub async fn stopped(&mut self) -> Result<(), SandboxError> {
        let Some(task) = self.task.as_mut() else {
            return Ok(());
        };
        let joined = task.await;
        // A finished JoinHandle must not be awaited again (by `shutdown`).
        self.task = None;
        match joined {
            Ok(result) => result.map_err(SandboxError::Serve),
            Err(e) => Err(SandboxError::Serve(io::Error::other(e))),
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves until Ctrl-C or until one of `servers` stops by itself, then shuts them all down.
pub(crate) async fn serve_until_ctrl_c(servers: &mut [&mut Serving]) -> Result<(), SandboxError> {
    let any_stopped = async {
        let waits: Vec<_> = servers.iter_mut().map(|s| Box::pin(s.stopped())).collect();
        if waits.is_empty() {
            return std::future::pending().await;
        }
        futures_util::future::select_all(waits).await.0
    };
    let outcome = tokio::select! {
        signal = tokio::signal::ctrl_c() => signal.map_err(SandboxError::Signal),
        served = any_stopped => served,
    };
    for server in servers.iter_mut() {
        server.shutdown().await;
    }
    outcome
}

fn router(shared: Arc<Shared>) -> Router {
    const LISTS: &str = "/v5/ad_accounts/{ad_account_id}/customer_lists";
    const AUDIENCES: &str = "/v5/ad_accounts/{ad_account_id}/audiences";
    Router::new()
        .route("/oauth", get(oauth::authorize))
        .route("/oauth/", get(oauth::authorize))
        .route("/v5/oauth/token", post(oauth::token))
        .route("/v5/oauth/token/revoke", post(oauth::revoke))
        .route("/v5/ad_accounts", get(accounts::list))
        .route("/v5/ad_accounts/{ad_account_id}", get(accounts::get))
        .route(LISTS, get(customer_lists::list).post(customer_lists::create))
        .route(&format!("{LISTS}/{{customer_list_id}}"), get(customer_lists::get).patch(customer_lists::update))
        .route(AUDIENCES, get(audiences::list).post(audiences::create))
        .route(&format!("{AUDIENCES}/{{audience_id}}"), get(audiences::get).patch(audiences::update))
        .merge(control::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), gate::gate))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

async fn not_found() -> Response {
    ApiError::not_found("Not found.").into_response()
}

impl PinterestSandbox {
    /// Binds `127.0.0.1:config.port` (0 = any free port) and starts serving.
    pub async fn start(config: SandboxConfig) -> Result<Self, SandboxError> {
        let (listener, addr) = Serving::bind(config.port).await?;
        let shared = Arc::new(Shared::new(config, addr));
        let server = Serving::spawn(listener, router(Arc::clone(&shared)));
        tracing::info!("Pinterest sandbox listening on http://{addr}");
        Ok(Self { shared, server })
    }

    /// `http://127.0.0.1:PORT` (no `/v5`; clients append `/v5/...`).
    pub fn base_url(&self) -> String {
        self.shared.base_url()
    }

    /// The authorize page: `base_url() + "/oauth/"`.
    pub fn authorize_url(&self) -> String {
        format!("{}/oauth/", self.base_url())
    }

    /// A handle to control and inspect this sandbox.
    pub fn handle(&self) -> SandboxHandle {
        SandboxHandle::new(Arc::clone(&self.shared))
    }

    /// How to use this sandbox, for people: URLs, credentials, and a first `curl`.
    pub fn usage(&self) -> String {
        let base = self.base_url();
        let config = &self.shared.config;
        let rate = config
            .rate_limit_per_second
            .map_or_else(|| "no rate limit".to_owned(), |n| format!("{n} requests/s per token"));
        format!(
            "Pinterest API v5 sandbox listening on {base}\n\
             \x20 API base URL:      {base}/v5\n\
             \x20 Authorize URL:     {authorize}  (consents at once; redirects with ?code=..&state=..)\n\
             \x20 Token URL:         {base}/v5/oauth/token  (HTTP Basic client_id:client_secret)\n\
             \x20 Client id/secret:  {DEFAULT_CLIENT_ID} / {DEFAULT_CLIENT_SECRET}\n\
             \x20 Limits:            {rate}; at most {max} records per request; {accounts} ad accounts\n\
             Get a token without the OAuth dance:\n\
             \x20 curl -s -X POST {base}/_sandbox/tokens\n\
             Call the API with it:\n\
             \x20 curl -s -H 'Authorization: Bearer <access_token>' {base}/v5/ad_accounts\n\
             Inspect and control (summary, request log, members, faults, revocation):\n\
             \x20 curl -s {base}/_sandbox/",
            authorize = self.authorize_url(),
            max = config.max_records_per_request,
            accounts = config.ad_accounts,
        )
    }

    /// Stops accepting requests, lets open ones finish (up to a few seconds), and returns.
    pub async fn shutdown(mut self) {
        self.server.shutdown().await;
    }

    /// The serving task, for [`serve_until_ctrl_c`].
    pub(crate) fn serving(&mut self) -> &mut Serving {
        &mut self.server
    }
}

/// Runs a sandbox for people and non-Rust plugin authors: starts it, prints how to use it to
/// stdout, and serves until Ctrl-C.
pub async fn run_standalone(config: SandboxConfig) -> Result<(), SandboxError> {
    let mut sandbox = PinterestSandbox::start(config).await?;
    println!("{}\nPress Ctrl-C to stop.", sandbox.usage());
    serve_until_ctrl_c(&mut [sandbox.serving()]).await
}
