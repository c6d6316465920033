//! The serving loop (`audience_api::serve`) against slow, idle and oversized clients, on a
//! listener of its own with a small router, so nothing but the edge is under test. Timing
//! assertions only go the safe way: a connection is never closed *before* its timeout (the
//! server cannot be early), and what must happen happens within a generous bound.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use audience_api::{HYPER_MAX_HEAD_BYTES, HttpSettings, MAX_REQUEST_HEAD_BYTES, MAX_REQUEST_HEADERS};
use axum::Router;
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// How many idle connections the exhaustion test opens (fewer when the open-files limit
/// cannot hold both ends of that many).
const IDLE_CONNECTIONS: usize = 5_000;

/// A running `serve`: its address, the switch that stops it, and its task.
struct Edge {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Edge {
    async fn start(settings: HttpSettings, app: Router) -> Edge {
        let listener = audience_api::bind("127.0.0.1:0", settings.listen_backlog).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(audience_api::serve(listener, app, settings, async {
            let _ = stopped.await;
        }));
        Edge { addr, stop: Some(stop), task }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }
}

fn healthz() -> Router {
    Router::new().route("/healthz", get(|| async { "ok" }))
}

fn settings(header_read_timeout: Duration, idle_timeout: Duration, max_connections: usize) -> HttpSettings {
    HttpSettings { header_read_timeout, idle_timeout, max_connections, ..HttpSettings::default() }
}

/// An answer read off the wire: status, headers (lowercase names) and body.
#[derive(Debug)]
struct Wire {
    status: u16,
    head: String,
    body: String,
}

impl Wire {
    fn parse(bytes: &[u8]) -> Wire {
        let text = String::from_utf8_lossy(bytes).to_string();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer in {text:?}"));
        let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{head:?}"));
        Wire { status, head: head.to_lowercase(), body: body.to_string() }
    }

    fn json(&self) -> Value {
        assert!(self.head.contains("content-type: application/json"), "{self:?}");
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }
}

/// Reads until the server closes the connection (a reset counts as closed), within `bound`.
async fn read_to_close(stream: &mut TcpStream, bound: Duration) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    tokio::time::timeout(bound, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the server did not close the connection within {bound:?}"));
    bytes
}

/// Sends one request on a kept-alive connection and reads its whole answer.
async fn round_trip(stream: &mut TcpStream, path: &str) -> Wire {
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "closed before answering: {:?}", String::from_utf8_lossy(&bytes));
        bytes.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&bytes).to_lowercase();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|l| l.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length {
                return Wire::parse(&bytes);
            }
        }
    }
}

/// Raises this process's soft open-files limit towards `wanted` and answers what it is.
fn open_files(wanted: u64) -> u64 {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        let current = limit.current.unwrap_or(u64::MAX);
        if current >= wanted {
            return current;
        }
        let target = limit.maximum.map_or(wanted, |max| max.min(wanted));
        if setrlimit(Resource::Nofile, Rlimit { current: Some(target), maximum: limit.maximum }).is_ok() {
            return target;
        }
        current
    }
    #[cfg(not(unix))]
    wanted
}

/// ~20,000 connections that never finished their headers used to stay open until the process
/// ran out of file descriptors. Now: thousands of idle connections (one in ten sent part of a
/// request) do not stop `/healthz` from answering, and each is closed by the server after the
/// header-read timeout, never before; the ones that sent something get a JSON 408.
///
/// The connections are opened in chunks, and each chunk ends with a `/healthz` round trip on
/// a fresh connection: the kernel hands connections to `accept` in the order their handshakes
/// completed, so that answer proves the server accepted every connection of the chunk. The
/// accept queue therefore never holds more than one chunk. Without that (5,000 connects in a
/// row, under load) the queue overflowed, Linux dropped handshakes whose client side believed
/// it was connected, and those connections, unknown to the server, were never closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_after_the_header_timeout_and_health_still_answers() {
    // Both ends of every connection live in this process, plus the other tests' files.
    let reserve = 2_000;
    let limit = open_files(2 * IDLE_CONNECTIONS as u64 + reserve);
    let count = IDLE_CONNECTIONS.min(usize::try_from(limit.saturating_sub(reserve) / 2).unwrap_or(usize::MAX));
    if count < IDLE_CONNECTIONS {
        eprintln!("open-files limit {limit}: opening {count} idle connections instead of {IDLE_CONNECTIONS}");
    }
    let timeout = Duration::from_secs(2);
    let edge = Edge::start(settings(timeout, Duration::from_secs(600), 100_000), healthz()).await;
    assert!(250 < HttpSettings::default().listen_backlog as usize, "a chunk fits in the accept queue");

    let mut idle = Vec::with_capacity(count);
    for chunk in (0..count).collect::<Vec<_>>().chunks(250) {
        let connects = chunk.iter().map(|&i| {
            let addr = edge.addr;
            async move {
                // Before the connect: the server's timer cannot start earlier than this.
                let opened = Instant::now();
                let mut stream = TcpStream::connect(addr).await.unwrap();
                let partial = i % 10 == 0;
                if partial {
                    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ").await.unwrap();
                }
                (stream, opened, partial)
            }
        });
        idle.extend(futures::future::join_all(connects).await);
        let mut probe = edge.connect().await;
        assert_eq!(round_trip(&mut probe, "/healthz").await.status, 200, "after {} idle connections", idle.len());
    }

    let started = Instant::now();
    let health = reqwest::Client::new()
        .get(edge.url("/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("/healthz answers while thousands of connections sit idle");
    assert_eq!(health.status(), StatusCode::OK);
    eprintln!("/healthz answered in {:?} beside {count} idle connections", started.elapsed());

    let closes = idle.into_iter().map(|(mut stream, opened, partial)| {
        tokio::spawn(async move {
            let bytes = read_to_close(&mut stream, timeout + Duration::from_secs(60)).await;
            (opened.elapsed(), partial, bytes)
        })
    });
    for close in futures::future::join_all(closes).await {
        let (lived, partial, bytes) = close.unwrap();
        assert!(lived >= timeout, "closed after {lived:?}, before the header-read timeout");
        if partial {
            let answer = Wire::parse(&bytes);
            assert_eq!(answer.status, 408, "{answer:?}");
            assert_eq!(answer.json()["error"]["code"], "request_timeout", "{answer:?}");
        } else {
            assert!(bytes.is_empty(), "a connection that sent nothing is closed silently: {bytes:?}");
        }
    }
    assert_eq!(reqwest::get(edge.url("/healthz")).await.unwrap().status(), StatusCode::OK);
}

/// The idle timeout of a kept-alive connection is its own, longer than the header timeout
/// (a load balancer reusing the connection must not find it closed); a partial request head
/// still gets the header timeout, counted from its first byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_outlives_the_header_timeout_until_the_idle_timeout() {
    let (header, idle) = (Duration::from_secs(1), Duration::from_secs(4));
    let edge = Edge::start(settings(header, idle, 100), healthz()).await;

    let mut stream = edge.connect().await;
    assert_eq!(round_trip(&mut stream, "/healthz").await.status, 200);
    tokio::time::sleep(header * 2).await;
    let sent = Instant::now();
    let again = round_trip(&mut stream, "/healthz").await;
    assert_eq!((again.status, again.body.as_str()), (200, "ok"), "kept alive past the header timeout");
    let bytes = read_to_close(&mut stream, idle + Duration::from_secs(30)).await;
    assert!(bytes.is_empty(), "{bytes:?}");
    assert!(sent.elapsed() >= idle, "closed {:?} after the last request, before the idle timeout", sent.elapsed());

    // On a kept-alive connection, a request that starts but never ends its head: 408.
    let mut stream = edge.connect().await;
    assert_eq!(round_trip(&mut stream, "/healthz").await.status, 200);
    tokio::time::sleep(header * 2).await;
    let started = Instant::now();
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: te").await.unwrap();
    let answer = Wire::parse(&read_to_close(&mut stream, header + Duration::from_secs(30)).await);
    assert!(started.elapsed() >= header, "{:?}", started.elapsed());
    assert_eq!(answer.status, 408);
    assert!(answer.head.contains("connection: close"), "{answer:?}");
    let body = answer.json();
    assert_eq!(body["error"]["code"], "request_timeout");
    assert!(body["error"]["message"].as_str().unwrap().contains("did not arrive within 1s"), "{body}");
}

/// At `max_connections` the loop stops accepting: a further connection waits (it is not
/// served while the cap is held) and is served as soon as one closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_further_connections_until_one_closes() {
    let edge = Edge::start(settings(Duration::from_secs(120), Duration::from_secs(120), 2), healthz()).await;
    let mut first = edge.connect().await;
    assert_eq!(round_trip(&mut first, "/healthz").await.status, 200);
    let mut second = edge.connect().await;
    assert_eq!(round_trip(&mut second, "/healthz").await.status, 200);

    let mut third = edge.connect().await;
    third.write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n").await.unwrap();
    let mut chunk = [0u8; 256];
    let waited = tokio::time::timeout(Duration::from_millis(700), third.read(&mut chunk)).await;
    assert!(waited.is_err(), "a third connection was served at max_connections = 2: {waited:?}");

    drop(first);
    let n = tokio::time::timeout(Duration::from_secs(10), third.read(&mut chunk))
        .await
        .expect("served once a connection closed")
        .unwrap();
    assert!(String::from_utf8_lossy(&chunk[..n]).starts_with("HTTP/1.1 200"), "{:?}", &chunk[..n]);
    assert_eq!(round_trip(&mut second, "/healthz").await.status, 200, "the held connection still works");
}

/// Stopping (SIGTERM in `serve`): the listener closes, idle connections close, the request in
/// flight is answered, and only then does `serve` return.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_refuses_new_connections_and_waits_for_the_request_in_flight() {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let app = {
        let (entered, release) = (Arc::clone(&entered), Arc::clone(&release));
        healthz().route(
            "/slow",
            get(move || async move {
                entered.notify_one();
                release.notified().await;
                "done"
            }),
        )
    };
    let mut edge = Edge::start(settings(Duration::from_secs(60), Duration::from_secs(600), 100), app).await;
    let mut idle = edge.connect().await;
    assert_eq!(round_trip(&mut idle, "/healthz").await.status, 200);
    let slow = tokio::spawn(reqwest::get(edge.url("/slow")));
    entered.notified().await;

    edge.stop.take().unwrap().send(()).unwrap();
    assert!(read_to_close(&mut idle, Duration::from_secs(10)).await.is_empty(), "the idle connection closes");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(edge.addr).await.is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections after the stop");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!edge.task.is_finished(), "serve returned with a request in flight");

    release.notify_one();
    let answer = slow.await.unwrap().expect("the request in flight is answered");
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(answer.text().await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(10), &mut edge.task).await.expect("serve returns").unwrap();
}

/// Oversized heads get the API's JSON 431 from the loop; what hyper refuses before any code
/// of ours runs (a head over its own limit, a malformed request line or header, a huge URI)
/// gets the same JSON error shape with hyper's status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_or_malformed_heads_get_json_errors_even_when_hyper_refuses_them_itself() {
    let edge = Edge::start(HttpSettings::default(), healthz()).await;
    let send = |request: Vec<u8>| {
        let addr = edge.addr;
        async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(&request).await.unwrap();
            Wire::parse(&read_to_close(&mut stream, Duration::from_secs(30)).await)
        }
    };
    let request = |headers: &str| {
        format!("GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n").into_bytes()
    };

    let big = send(request(&format!("X-Big: {}\r\n", "b".repeat(MAX_REQUEST_HEAD_BYTES)))).await;
    assert_eq!(big.status, 431, "{big:?}");
    let body = big.json();
    assert_eq!(body["error"]["code"], "headers_too_large");
    assert!(body["error"]["message"].as_str().unwrap().contains("32768"), "{body}");

    let many: String = (0..=MAX_REQUEST_HEADERS).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = send(request(&many)).await;
    assert_eq!((many.status, many.json()["error"]["code"].as_str()), (431, Some("headers_too_large")));

    // Beyond hyper's own limit and for heads it cannot parse, hyper refuses; the answer still
    // has the API's shape.
    let huge = send(request(&format!("X-Huge: {}\r\n", "h".repeat(HYPER_MAX_HEAD_BYTES)))).await;
    assert_eq!((huge.status, huge.json()["error"]["code"].as_str()), (431, Some("headers_too_large")), "{huge:?}");
    for garbage in [
        &b"NOT AN HTTP REQUEST\r\n\r\n"[..],
        b"GET /healthz HTTP/1.1\r\nHost: test\r\nBad Header\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHo st: test\r\n\r\n",
    ] {
        let malformed = send(garbage.to_vec()).await;
        assert_eq!(
            (malformed.status, malformed.json()["error"]["code"].as_str()),
            (400, Some("malformed_request")),
            "{malformed:?}"
        );
    }
    let long_uri =
        send(format!("GET /{} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", "u".repeat(70_000)).into_bytes())
            .await;
    assert!(matches!(long_uri.status, 414 | 431), "{long_uri:?}");
    assert!(long_uri.json()["error"]["code"].is_string(), "{long_uri:?}");

    // Ordinary requests are untouched.
    assert_eq!(send(request("")).await.body, "ok");
}

/// A route that reads its whole body and answers its length.
fn echo() -> Router {
    healthz().route("/echo", axum::routing::post(|body: String| async move { body.len().to_string() }))
}

/// A request head for `/echo` announcing `length` bytes of body.
fn echo_head(length: usize) -> String {
    format!("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Type: text/plain\r\nContent-Length: {length}\r\n\r\n")
}

/// A client that sends its headers and then stops sending its body, or trickles it, holds the
/// connection and the handler only until `http.body_read_timeout` (counted from the end of the
/// head, never less): then it gets a JSON 408 and the connection closes. A body sent in time
/// is read, and the connection stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_or_trickled_body_gets_a_json_408_after_the_body_timeout_and_the_connection_closes() {
    let timeout = Duration::from_secs(1);
    let body_settings = HttpSettings {
        body_read_timeout: timeout,
        header_read_timeout: Duration::from_secs(60),
        ..HttpSettings::default()
    };
    let edge = Edge::start(body_settings, echo()).await;

    // Part of the body, then nothing.
    let mut stream = edge.connect().await;
    stream.write_all(format!("{}0123456789", echo_head(100)).as_bytes()).await.unwrap();
    let sent = Instant::now();
    let answer = Wire::parse(&read_to_close(&mut stream, timeout + Duration::from_secs(30)).await);
    assert!(sent.elapsed() >= timeout, "answered {:?} after the head, before the body timeout", sent.elapsed());
    assert_eq!(answer.status, 408, "{answer:?}");
    assert!(answer.head.contains("connection: close"), "{answer:?}");
    let body = answer.json();
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("body did not arrive within 1s"), "{body}");

    // A body trickled a byte at a time (each byte well within any per-read timeout) is cut at
    // the same deadline: the timeout bounds the whole body, not the gaps between bytes.
    let stream = edge.connect().await;
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(echo_head(10_000).as_bytes()).await.unwrap();
    let sent = Instant::now();
    let trickle = tokio::spawn(async move {
        let mut written = 0;
        while written < 10_000 && writer.write_all(b"x").await.is_ok() {
            written += 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        written
    });
    let mut bytes = Vec::new();
    tokio::time::timeout(timeout + Duration::from_secs(30), async {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = reader.read(&mut chunk).await {
            bytes.extend_from_slice(&chunk[..n]);
        }
    })
    .await
    .expect("the server closes the trickling connection");
    assert!(sent.elapsed() >= timeout, "answered {:?} after the head, before the body timeout", sent.elapsed());
    let answer = Wire::parse(&bytes);
    assert_eq!((answer.status, answer.json()["error"]["code"].as_str()), (408, Some("request_timeout")), "{answer:?}");
    let written = trickle.await.unwrap();
    assert!(written < 10_000, "the whole trickled body was taken ({written} bytes)");

    // A body that arrives with its head is read, and the connection is kept alive.
    let mut stream = edge.connect().await;
    stream.write_all(format!("{}hello", echo_head(5)).as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&bytes).ends_with("\r\n\r\n5") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&bytes));
        bytes.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(Wire::parse(&bytes).status, 200);
    assert_eq!(round_trip(&mut stream, "/healthz").await.status, 200, "the connection is still usable");
}
