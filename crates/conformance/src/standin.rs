//! The scripted partner stand-in: a local HTTP server that answers every request with one
//! scripted response and records what it was sent.
//!
//! Why one answer for every request: the suite must work on any destination, and it cannot
//! know a partner's API. Answering every path the same way ("everything is 404 now") lets the
//! suite observe how the plugin maps each status without knowing which endpoint it calls, and
//! recording every request lets it count what a plugin sent where.

use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;
use tokio::task::JoinHandle;

/// What the stand-in answers, to every request, until told otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    /// The status code.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// The response body.
    pub body: String,
    /// How long to wait before answering (longer than the suite's HTTP timeout = a timeout).
    pub delay: Duration,
}

impl Script {
    /// `status` with a JSON body of the usual error shape (`code` and `message`).
    pub fn status(status: u16) -> Self {
        let body = if (200..300).contains(&status) {
            "{}".to_string()
        } else {
            format!(
                r#"{{"code":{status},"message":"scripted HTTP {status} from the audience-host conformance suite"}}"#
            )
        };
        Self { status, headers: vec![("content-type".into(), "application/json".into())], body, delay: Duration::ZERO }
    }

    /// `200 OK` with the body `{}`: what every success looks like to the suite.
    pub fn ok() -> Self {
        Self::status(200)
    }

    /// This script with a header added.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// This script, answered only after `delay`.
    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request the stand-in received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

#[derive(Debug)]
struct Shared {
    script: Script,
    requests: Vec<RecordedRequest>,
}

/// A running stand-in on `127.0.0.1` with a random port. Stops when dropped.
#[derive(Debug)]
pub struct StandIn {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    server: JoinHandle<()>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock()
}

impl StandIn {
    /// Start a stand-in answering `200 {}` until scripted otherwise.
    pub async fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Mutex::new(Shared { script: Script::ok(), requests: Vec::new() }));
        let app = Router::new().fallback(answer).with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::warn!(error = %err, "the conformance stand-in stopped");
            }
        });
        Ok(Self { addr, shared, server })
    }

    /// `127.0.0.1:PORT`, as the plugin's allow-list names it.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`, the `base-url` the plugin is given.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer every request from now on with `script`.
    pub fn script(&self, script: Script) {
        lock(&self.shared).script = script;
    }

    /// How many requests were received so far (an index for [`requests_since`](Self::requests_since)).
    pub fn request_count(&self) -> usize {
        lock(&self.shared).requests.len()
    }

    /// The requests received since the count was `mark`.
    pub fn requests_since(&self, mark: usize) -> Vec<RecordedRequest> {
        lock(&self.shared).requests.get(mark..).map(<[_]>::to_vec).unwrap_or_default()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn answer(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let script = {
        let mut shared = lock(&shared);
        let path = uri.path_and_query().map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string());
        let headers = headers
            .iter()
            .map(|(n, v)| (n.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        shared.requests.push(RecordedRequest { method: method.to_string(), path, headers, body: body.to_vec() });
        shared.script.clone()
    };
    if !script.delay.is_zero() {
        tokio::time::sleep(script.delay).await;
    }
    let mut response = Response::new(Body::from(script.body));
    *response.status_mut() = StatusCode::from_u16(script.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in &script.headers {
        if let (Ok(name), Ok(value)) =
            (axum::http::HeaderName::from_bytes(name.as_bytes()), axum::http::HeaderValue::from_str(value))
        {
            response.headers_mut().append(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_with_the_script_and_records_requests() {
        let stand_in = StandIn::start().await.unwrap();
        stand_in.script(Script::status(429).with_header("retry-after", "7"));
        let client = reqwest::Client::new();
        let response = client.post(format!("{}/v5/x?a=1", stand_in.base_url())).body("hello").send().await.unwrap();
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
        let seen = stand_in.requests_since(0);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].path, "/v5/x?a=1");
        assert_eq!(seen[0].body, b"hello");
        assert_eq!(stand_in.requests_since(1), vec![]);
        assert_eq!(stand_in.requests_since(5), vec![]);
    }
}
