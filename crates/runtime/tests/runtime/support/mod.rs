//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::any;

/// Plugin settings with these `settings` pairs and nothing else.
pub fn settings(pairs: &[(&str, &str)]) -> audience_runtime::types::PluginConfig {
    audience_runtime::types::PluginConfig {
        base_url: None,
        client_id: None,
        client_secret: None,
        settings: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

/// Credentials whose access token is `secret-token`.
pub fn creds() -> audience_runtime::types::Credentials {
    audience_runtime::types::Credentials {
        access_token: "secret-token".into(),
        refresh_token: None,
        expires_at: None,
        renewable_until: None,
        scopes: vec![],
    }
}

/// A local HTTP server with a few fixed behaviours, counting the requests it receives.
pub struct TestServer {
    addr: std::net::SocketAddr,
    state: Arc<ServerState>,
}

#[derive(Default)]
struct ServerState {
    hits: AtomicUsize,
    redirect: std::sync::Mutex<String>,
}

impl TestServer {
    /// Start on a random loopback port.
    pub async fn start() -> Self {
        let state = Arc::new(ServerState::default());
        let app = Router::new()
            .route("/ok", any(ok))
            .route("/huge", any(huge))
            .route("/huge-chunked", any(huge_chunked))
            .route("/slow", any(slow))
            .route("/late-ok", any(late_ok))
            .route("/redirect", any(redirect))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { addr, state }
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// An http URL on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Where `/redirect` sends clients.
    pub fn redirect_to(&self, url: &str) {
        *self.state.redirect.lock().unwrap() = url.to_string();
    }
}

async fn ok(State(s): State<Arc<ServerState>>) -> &'static str {
    s.hits.fetch_add(1, Ordering::SeqCst);
    "ok"
}

async fn huge(State(s): State<Arc<ServerState>>) -> Vec<u8> {
    s.hits.fetch_add(1, Ordering::SeqCst);
    vec![b'x'; 32 << 20]
}

async fn huge_chunked(State(s): State<Arc<ServerState>>) -> Response {
    s.hits.fetch_add(1, Ordering::SeqCst);
    // No Content-Length: the cap must be enforced while reading.
    let chunks = futures::stream::iter((0..512).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 64 << 10])));
    Body::from_stream(chunks).into_response()
}

async fn slow(State(s): State<Arc<ServerState>>) -> &'static str {
    s.hits.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(10)).await;
    "late"
}

/// Answers 200 after 800 ms: slower than a short call deadline, well within the HTTP timeout.
async fn late_ok(State(s): State<Arc<ServerState>>) -> &'static str {
    s.hits.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(800)).await;
    "ok"
}

async fn redirect(State(s): State<Arc<ServerState>>) -> Redirect {
    s.hits.fetch_add(1, Ordering::SeqCst);
    let target = s.redirect.lock().unwrap().clone();
    Redirect::temporary(&target)
}
