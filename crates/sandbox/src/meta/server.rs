//! Binding, routing and lifetime of the Meta stand-in (the serving task is the one the
//! Pinterest sandbox uses).

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::SandboxConfig;
use crate::error::SandboxError;
use crate::meta::config::MetaConfig;
use crate::meta::handle::MetaHandle;
use crate::meta::oauth::{DEFAULT_APP_ID, DEFAULT_APP_SECRET};
use crate::meta::state::MetaShared;
use crate::meta::{control, graph};
use crate::server::{PinterestSandbox, Serving, serve_until_ctrl_c};

/// Largest request body accepted; far above 10,000 rows so over-cap bodies reach the row
/// check and get Meta's code 100 rather than a transport error.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A running Meta Marketing API stand-in on `127.0.0.1`.
///
/// Graph paths are served under `/v{N}.0/...` for every `N` from `min_version` to
/// `max_version` (v20 to v30 by default); the login dialog is `/v{N}.0/dialog/oauth` on the
/// same host. Dropping it stops the server abruptly; [`shutdown`](Self::shutdown) stops it
/// gracefully.
#[derive(Debug)]
pub struct MetaSandbox {
    shared: Arc<MetaShared>,
    server: Serving,
}

fn router(shared: Arc<MetaShared>) -> Router {
    Router::new()
        .merge(control::routes())
        .fallback(graph::entry)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

impl MetaSandbox {
    /// Binds `127.0.0.1:config.port` (0 = any free port) and starts serving.
    pub async fn start(config: MetaConfig) -> Result<Self, SandboxError> {
        let (listener, addr) = Serving::bind(config.port).await?;
        let shared = Arc::new(MetaShared::new(config, addr));
        let server = Serving::spawn(listener, router(Arc::clone(&shared)));
        tracing::info!("Meta sandbox listening on http://{addr}");
        Ok(Self { shared, server })
    }

    /// `http://127.0.0.1:PORT` (no version; clients append `/v25.0/...`).
    pub fn base_url(&self) -> String {
        self.shared.base_url()
    }

    /// `base_url()` plus `/v{default_version}.0`, e.g. `http://127.0.0.1:PORT/v25.0`.
    pub fn graph_url(&self) -> String {
        self.handle().graph_url()
    }

    /// The login dialog: `graph_url() + "/dialog/oauth"`.
    pub fn dialog_url(&self) -> String {
        format!("{}/dialog/oauth", self.graph_url())
    }

    /// The token endpoint: `graph_url() + "/oauth/access_token"`.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/access_token", self.graph_url())
    }

    /// A handle to control and inspect this sandbox.
    pub fn handle(&self) -> MetaHandle {
        MetaHandle::new(Arc::clone(&self.shared))
    }

    /// How to use this sandbox, for people: URLs, credentials, and a first `curl`.
    pub fn usage(&self) -> String {
        let base = self.base_url();
        let graph = self.graph_url();
        let config = &self.shared.config;
        let budget = config.usage;
        format!(
            "Meta Marketing API sandbox listening on {base}\n\
             \x20 Graph base URL:    {graph}  (any v{min}.0 to v{max}.0)\n\
             \x20 Login dialog:      {dialog}  (consents at once; redirects with ?code=..&state=..)\n\
             \x20 Token URL:         {token}  (client_id, client_secret, redirect_uri, code)\n\
             \x20 App id/secret:     {DEFAULT_APP_ID} / {DEFAULT_APP_SECRET}\n\
             \x20 Limits:            custom_audience budget {calls} calls per {window} s per ad account \
             (+{per} per audience); at most {rows} rows per /users call; {accounts} ad accounts\n\
             Get a token without the login dance:\n\
             \x20 curl -s -X POST {base}/_sandbox/tokens\n\
             Call the API with it:\n\
             \x20 curl -s '{graph}/me/adaccounts?fields=id,name,account_status&access_token=<access_token>'\n\
             Inspect and control (summary, request log, members, faults, clock, terms):\n\
             \x20 curl -s {base}/_sandbox/",
            min = config.min_version,
            max = config.max_version,
            dialog = self.dialog_url(),
            token = self.token_url(),
            calls = budget.base_calls,
            window = budget.window.as_secs(),
            per = budget.calls_per_audience,
            rows = config.max_rows_per_request,
            accounts = config.ad_accounts,
        )
    }

    /// Stops accepting requests, lets open ones finish (up to a few seconds), and returns.
    pub async fn shutdown(mut self) {
        self.server.shutdown().await;
    }
}

/// Runs a Meta stand-in for people and non-Rust plugin authors: starts it, prints how to use
/// it to stdout, and serves until Ctrl-C.
pub async fn run_standalone_meta(config: MetaConfig) -> Result<(), SandboxError> {
    let mut sandbox = MetaSandbox::start(config).await?;
    println!("{}\nPress Ctrl-C to stop.", sandbox.usage());
    serve_until_ctrl_c(&mut [&mut sandbox.server]).await
}

/// Runs the Pinterest and the Meta stand-ins side by side (two ports) until Ctrl-C.
pub async fn run_standalone_both(pinterest: SandboxConfig, meta: MetaConfig) -> Result<(), SandboxError> {
    let mut first = PinterestSandbox::start(pinterest).await?;
    let mut second = MetaSandbox::start(meta).await?;
    println!("{}\n\n{}\nPress Ctrl-C to stop.", first.usage(), second.usage());
    serve_until_ctrl_c(&mut [first.serving(), &mut second.server]).await
}
