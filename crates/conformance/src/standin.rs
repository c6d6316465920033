//! The scripted partner stand-in: a local HTTP server that answers every request with one
//! scripted response and records what it was sent.
//!
//! Why one answer for every request: the suite must work on any destination, and it cannot
//! know a partner's API. Answering every path the same way ("everything is 404 now") lets the
//! suite observe how the plugin maps each status without knowing which endpoint it calls, and
//! recording every request lets it count what a plugin sent where.
//!
//! Partner-shaped answers ([`Route`]): the checks that read what the partner holds (the
//! `audiences.*` checks: search pages, an audience's size and state) learn little from `{}`.
//! A plugin author who knows their partner's API can give the stand-in [`Route`]s (from Rust,
//! `ConformanceOptions::answers`; from the command line, `--answers FILE`): while routes are
//! installed, a request whose method and path-and-query match a route gets that route's answer
//! (the first match wins), every other request the current script. The suite installs them
//! only around the `audiences.*` checks, so every other check sees the scripted answer alone.

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

/// A partner-shaped answer for the requests it matches (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The method it answers (case-insensitive); `None` answers every method.
    pub method: Option<String>,
    /// Substrings the request's path and query must all contain (`"/audiences"`,
    /// `"bookmark=p2"`); empty matches every path.
    pub path_contains: Vec<String>,
    /// What it answers.
    pub script: Script,
}

impl Route {
    /// A route answering `method` requests whose path and query contain every one of `parts`
    /// with `200` and the JSON `body`.
    pub fn json(method: &str, parts: &[&str], body: &serde_json::Value) -> Self {
        let mut script = Script::ok();
        script.body = body.to_string();
        Self { method: Some(method.to_string()), path_contains: parts.iter().map(|p| p.to_string()).collect(), script }
    }

    /// Whether this route answers `method` `path` (path and query).
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path_contains.iter().all(|part| path.contains(part.as_str()))
    }
}

/// A [`Route`] as written in an `--answers` file: a JSON array of these objects.
///
/// ```json
/// [{"method": "GET", "path_contains": ["/audiences", "bookmark=p2"], "body": {"items": []}},
///  {"path_contains": ["/audiences/"], "status": 404}]
/// ```
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    /// The method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// The substrings the path and query must contain.
    #[serde(default)]
    pub path_contains: Vec<String>,
    /// The status; default 200.
    #[serde(default = "default_status")]
    pub status: u16,
    /// Extra response headers as `[name, value]` pairs (`content-type: application/json` is
    /// always sent unless given here).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body: a JSON string is sent as it is, any other JSON value as JSON; default `{}`.
    #[serde(default)]
    pub body: Option<serde_json::Value>,
}

fn default_status() -> u16 {
    200
}

impl From<RouteFile> for Route {
    fn from(file: RouteFile) -> Self {
        let mut script = Script::status(file.status);
        if file.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
            script.headers.clear();
        }
        script.headers.extend(file.headers);
        match file.body {
            None => {}
            Some(serde_json::Value::String(text)) => script.body = text,
            Some(value) => script.body = value.to_string(),
        }
        Self { method: file.method, path_contains: file.path_contains, script }
    }
}

/// Parse an `--answers` file's text (a JSON array of [`RouteFile`]s).
pub fn parse_routes(text: &str) -> Result<Vec<Route>, serde_json::Error> {
    let files: Vec<RouteFile> = serde_json::from_str(text)?;
    Ok(files.into_iter().map(Route::from).collect())
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
    routes: Vec<Route>,
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
        let shared = Arc::new(Mutex::new(Shared { script: Script::ok(), routes: Vec::new(), requests: Vec::new() }));
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

    /// The host (`127.0.0.1`) and the port, apart.
    pub fn host_and_port(&self) -> (String, u16) {
        (self.addr.ip().to_string(), self.addr.port())
    }

    /// `http://127.0.0.1:PORT`, the `base-url` the plugin is given.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answer every request from now on with `script`.
    pub fn script(&self, script: Script) {
        lock(&self.shared).script = script;
    }

    /// Answer the requests `routes` match with their answers from now on (see [`Route`]);
    /// an empty list removes them.
    pub fn routes(&self, routes: Vec<Route>) {
        lock(&self.shared).routes = routes;
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
        let script = match shared.routes.iter().find(|r| r.matches(method.as_str(), &path)) {
            Some(route) => route.script.clone(),
            None => shared.script.clone(),
        };
        shared.requests.push(RecordedRequest { method: method.to_string(), path, headers, body: body.to_vec() });
        script
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

    #[tokio::test]
    async fn routes_answer_what_they_match_and_the_script_the_rest() {
        let stand_in = StandIn::start().await.unwrap();
        stand_in.script(Script::status(503));
        let routes = parse_routes(
            r#"[{"method": "get", "path_contains": ["/audiences", "bookmark=2"], "body": {"page": 2}},
                {"path_contains": ["/audiences"], "body": "plain", "headers": [["content-type", "text/plain"]]}]"#,
        )
        .unwrap();
        stand_in.routes(routes);
        let client = reqwest::Client::new();
        let get = |path: &str| client.get(format!("{}{path}", stand_in.base_url())).send();
        let second = get("/v1/audiences?bookmark=2").await.unwrap();
        assert_eq!(second.text().await.unwrap(), r#"{"page":2}"#);
        let first = get("/v1/audiences").await.unwrap();
        assert_eq!(first.headers()["content-type"], "text/plain");
        assert_eq!(first.text().await.unwrap(), "plain");
        assert_eq!(get("/v1/other").await.unwrap().status().as_u16(), 503);
        stand_in.routes(vec![]);
        assert_eq!(get("/v1/audiences").await.unwrap().status().as_u16(), 503);
        assert_eq!(stand_in.request_count(), 4);
        assert!(parse_routes(r#"[{"pathh": []}]"#).is_err());
    }
}
