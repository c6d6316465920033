//! The HTTP edge: accepting connections and keeping what a slow, idle or hostile client can
//! hold bounded. [`serve`] is what `audience-host serve` runs (and what the tests run, on a
//! listener of their own).
//!
//! Why it is not `axum::serve`: that keeps every connection for as long as the client keeps
//! it, so clients that open connections and never finish their headers pile up until the
//! process runs out of file descriptors and answers nobody, `/healthz` included. Here:
//!
//! - **A cap on open connections** ([`HttpSettings::max_connections`]). At the cap the loop
//!   stops accepting; further connections wait in the kernel's listen backlog and are taken
//!   as others close. File descriptors and per-connection memory stay bounded.
//! - **A header-read timeout** ([`HttpSettings::header_read_timeout`]): a request's line and
//!   headers must arrive within it, counted from the connection's accept for its first
//!   request and from the request's first byte on a kept-alive connection. A client that sent
//!   part of a request gets a JSON `408 request_timeout` and the connection is closed; one
//!   that sent nothing is closed silently.
//! - **An idle timeout** ([`HttpSettings::idle_timeout`]): a kept-alive connection with no
//!   request is closed after it. It is separate from (and longer than) the header timeout so
//!   that a load balancer in front, which reuses idle connections, closes them first: a
//!   backend that closes a connection the balancer is about to reuse shows up as sporadic
//!   502s.
//! - **Request heads** of more than [`MAX_REQUEST_HEAD_BYTES`] or [`MAX_REQUEST_HEADERS`]
//!   headers get a JSON `431 headers_too_large` from this loop. Beyond hyper's own backstop
//!   ([`HYPER_MAX_HEAD_BYTES`], [`HYPER_MAX_HEADERS`]) the head is never parsed, and hyper
//!   answers 431 itself, as it does 400 for a malformed request line or header and 414 for a
//!   URI of about 64 KiB. No handler runs for those; hyper's bare answer is recognised on its
//!   way to the socket and written in the JSON error shape instead ([`refusal`]).
//!
//! - **A body-read timeout** ([`HttpSettings::body_read_timeout`]): a request's body must
//!   arrive within it, from the end of the head to the body's last byte. A client that sends
//!   its headers and then trickles or stops its body gets a JSON `408 request_timeout` and the
//!   connection is closed; the handler reading the body sees the read fail and returns.
//! - **The listen backlog** ([`HttpSettings::listen_backlog`], [`bind`]): longer than tokio's
//!   1,024, so that connections waiting at the cap (or a burst of connects) do not overflow
//!   the kernel's accept queue, where Linux drops handshakes and leaves clients holding
//!   connections the server never sees.
//!
//! Once its body is read, a request being answered has no deadline here: handlers bound
//! their own work (the engine's intake, the runtime's plugin call limits).
//!
//! Graceful shutdown: when the `shutdown` future completes the listener is closed (new
//! connections are refused), idle connections are closed, and each request in flight is
//! answered before its connection closes; `serve` returns once every connection is gone.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::response::IntoResponse;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::error::ApiError;

mod refusal;

/// Largest request line plus headers this loop answers; larger ones get a JSON 431. Real
/// callers send well under 1 KiB (a bearer key, a content type); 32 KiB leaves room for
/// browsers' cookies on the OAuth callback.
pub const MAX_REQUEST_HEAD_BYTES: usize = 32 * 1024;
/// Most headers a request may have; more get a JSON 431.
pub const MAX_REQUEST_HEADERS: usize = 100;
/// hyper's own limit on a request head: beyond it hyper answers 431 with an empty body before
/// any code of ours runs. Also what one connection may make the host buffer for a head.
pub const HYPER_MAX_HEAD_BYTES: usize = 64 * 1024;
/// hyper's own limit on the number of headers (same as above).
pub const HYPER_MAX_HEADERS: usize = 200;

/// How the HTTP edge treats connections: the `[http]` section of the host's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// A request's line and headers must arrive within this, counted from the accept (first
    /// request) or from the request's first byte (later requests on a kept-alive
    /// connection); otherwise the connection is closed, with a JSON 408 when part of a
    /// request arrived. Default 10 s: a real client sends its headers in one packet.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request in progress is closed after this. Default
    /// 75 s: above the 60 s idle timeout of common load balancers, so that they close idle
    /// connections first (set it above your balancer's).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Most connections open at once; further ones wait in the listen backlog until one
    /// closes. Default 10,000: far more than callers with connection pools or a load balancer
    /// need, and within what the host can hold (each connection costs a file descriptor and
    /// up to 64 KiB of header buffer while its headers arrive). The process's open-files
    /// limit must exceed it (`serve` raises the soft limit when it can, and warns otherwise).
    pub max_connections: usize,
    /// A request's body must arrive within this, counted from the end of its head to its last
    /// byte; otherwise the request is answered with a JSON 408 and the connection is closed.
    /// Default 30 s: 16 MiB (the largest body) at about 4.5 Mbit/s. A client that sends its
    /// headers and then trickles (or stops sending) its body holds a connection and a handler
    /// only this long.
    #[serde(with = "humantime_serde")]
    pub body_read_timeout: Duration,
    /// Length of the kernel's queue of connections not yet accepted (`listen(2)`'s backlog).
    /// Connections beyond `max_connections` wait there. Default 4,096. Linux silently caps it
    /// at `net.core.somaxconn` (4,096 since Linux 5.4, 128 before): raise that sysctl to use a
    /// larger value. When the queue overflows, new clients' SYNs and handshakes are dropped
    /// (they retry, and slow down).
    pub listen_backlog: u32,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 10_000,
            body_read_timeout: Duration::from_secs(30),
            listen_backlog: DEFAULT_LISTEN_BACKLOG,
        }
    }
}

/// Default length of the listen backlog ([`HttpSettings::listen_backlog`]): Linux's default
/// `net.core.somaxconn` since 5.4, four times tokio's own default.
pub const DEFAULT_LISTEN_BACKLOG: u32 = 4096;

/// Binds a listener on `addr` (`host:port`; each address it resolves to is tried in turn, as
/// [`TcpListener::bind`] does) with a listen backlog of `backlog` connections.
///
/// Why not [`TcpListener::bind`]: its backlog is 1,024. When the kernel's accept queue is
/// full, Linux drops the client's final handshake ACK (or, with SYN cookies, forgets the
/// handshake): the client believes it is connected while the server never learns of the
/// connection, so a client waiting for the server to speak first waits forever, and the
/// header-read timeout cannot close what the server does not know.
pub async fn bind(addr: &str, backlog: u32) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(addr).await? {
        let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(backlog)) {
            Ok(listener) => return Ok(listener),
            Err(err) => last = Some(err),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the address resolves to nothing")))
}

impl HttpSettings {
    /// Largest accepted `max_connections`.
    pub const MAX_CONNECTIONS: usize = 1_000_000;
    /// Largest accepted `listen_backlog` (the kernel caps it lower anyway).
    pub const MAX_LISTEN_BACKLOG: u32 = 1 << 20;

    /// Whether the settings can be served; the error names the setting to fix.
    pub fn check(&self) -> Result<(), String> {
        if self.header_read_timeout.is_zero() {
            return Err("http.header_read_timeout must be more than zero (e.g. \"10s\")".into());
        }
        if self.idle_timeout.is_zero() {
            return Err("http.idle_timeout must be more than zero (e.g. \"75s\")".into());
        }
        if self.max_connections == 0 || self.max_connections > Self::MAX_CONNECTIONS {
            return Err(format!("http.max_connections must be from 1 to {}", Self::MAX_CONNECTIONS));
        }
        if self.body_read_timeout.is_zero() {
            return Err("http.body_read_timeout must be more than zero (e.g. \"30s\")".into());
        }
        if self.listen_backlog == 0 || self.listen_backlog > Self::MAX_LISTEN_BACKLOG {
            return Err(format!("http.listen_backlog must be from 1 to {}", Self::MAX_LISTEN_BACKLOG));
        }
        Ok(())
    }
}

/// Serve `app` on `listener` until `shutdown` completes, then finish the requests in flight
/// and return. See the module docs for what is bounded and how.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    settings: HttpSettings,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    let slots = Arc::new(Semaphore::new(settings.max_connections.clamp(1, HttpSettings::MAX_CONNECTIONS)));
    let connections = TaskTracker::new();
    let stop = CancellationToken::new();
    let mut full_warned: Option<Instant> = None;
    let mut error_warned: Option<Instant> = None;
    loop {
        if slots.available_permits() == 0 && full_warned.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
            full_warned = Some(Instant::now());
            tracing::warn!(
                max_connections = settings.max_connections,
                "http.max_connections reached: new connections wait in the listen backlog until one closes"
            );
        }
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        match accepted {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                connections.spawn(connection(stream, app.clone(), settings.clone(), stop.clone(), slot));
            }
            Err(err) if per_connection(&err) => {}
            Err(err) => {
                // Out of file descriptors (EMFILE/ENFILE) or memory: wait a little, so a
                // connection can close, rather than spin.
                if error_warned.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                    error_warned = Some(Instant::now());
                    tracing::warn!(error = %err, "cannot accept connections; is the open-files limit below http.max_connections?");
                }
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    () = &mut shutdown => break,
                }
            }
        }
    }
    drop(listener);
    stop.cancel();
    connections.close();
    connections.wait().await;
}

/// An accept error about one connection (the client gave up before it was accepted).
fn per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// One connection: hyper drives HTTP/1.1 on it; this task closes it at its deadlines.
async fn connection(
    stream: TcpStream,
    app: Router,
    settings: HttpSettings,
    stop: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::new());
    let io = TokioIo::new(Watched { stream, activity: Arc::clone(&activity), refusal: Refusal::Watching });
    let service = Edge { app, activity: Arc::clone(&activity), body_read_timeout: settings.body_read_timeout };
    let mut builder = http1::Builder::new();
    builder
        // Our own header timer (below) replaces hyper's, which also cuts kept-alive
        // connections at the header timeout.
        .header_read_timeout(None)
        .max_header_size(HYPER_MAX_HEAD_BYTES)
        .max_headers(HYPER_MAX_HEADERS);
    let mut conn = builder.serve_connection(io, service);
    let mut draining = false;
    loop {
        // Made before reading the state, so a change in between still wakes this loop.
        let changed = activity.changed.notified();
        let deadline = activity.deadline(&settings);
        tokio::select! {
            result = &mut conn => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
                return;
            }
            () = changed => {}
            () = sleep_until(deadline) => match activity.expired(Instant::now(), &settings) {
                Some(Expired::Head) => {
                    let stream = conn.into_parts().io.into_inner().stream;
                    request_timeout(stream, settings.header_read_timeout).await;
                    return;
                }
                Some(Expired::Idle) => {
                    tracing::debug!("closing a connection that sent no request in time");
                    return;
                }
                None => {}
            },
            () = stop.cancelled(), if !draining => {
                draining = true;
                Pin::new(&mut conn).graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Part of a request arrived but not its whole head in time: answer 408 in the API's error
/// shape, close, and read what the client still sends for a moment so the close does not
/// reset the connection before the answer is read.
async fn request_timeout(mut stream: TcpStream, timeout: Duration) {
    tracing::debug!("closing a connection whose request headers did not arrive in time");
    let error = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "the request line and headers did not arrive within {}; the connection is closed. Send the \
             whole request head at once",
            humantime::format_duration(timeout)
        ),
    );
    let answer = refusal::raw_answer(&error);
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(&answer).await?;
        stream.shutdown().await
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_millis(500), async {
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Where a connection is in its life, for its deadlines.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No byte of a request yet: since the accept (`first`) or since the last answer ended.
    Waiting { since: Instant, first: bool },
    /// Part of a request head arrived; the head is due `header_read_timeout` after `since`.
    Head { since: Instant },
    /// Requests being answered (no deadline).
    Busy { requests: usize },
}

/// Which deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expired {
    /// Nothing of a request arrived in time.
    Idle,
    /// A request head started but did not finish in time.
    Head,
}

/// A connection's phase, shared by its reads, its requests and its watching task.
struct Activity {
    phase: Mutex<Phase>,
    changed: Notify,
}

impl Activity {
    fn new() -> Self {
        Self { phase: Mutex::new(Phase::Waiting { since: Instant::now(), first: true }), changed: Notify::new() }
    }

    fn set(&self, phase: Phase) {
        *self.phase.lock() = phase;
        self.changed.notify_one();
    }

    /// Bytes were read from the client.
    fn bytes_arrived(&self) {
        let phase = *self.phase.lock();
        if let Phase::Waiting { since, first } = phase {
            // A first request's head is due from the accept; a later one's from its first byte.
            self.set(Phase::Head { since: if first { since } else { Instant::now() } });
        }
    }

    /// hyper parsed a request head: the request is being answered until the guard drops.
    fn request_began(self: &Arc<Self>) -> InFlight {
        let requests = match *self.phase.lock() {
            Phase::Busy { requests } => requests + 1,
            _ => 1,
        };
        self.set(Phase::Busy { requests });
        InFlight(Arc::clone(self))
    }

    /// Whether a request of this connection is being answered.
    fn answering(&self) -> bool {
        matches!(*self.phase.lock(), Phase::Busy { .. })
    }

    fn request_ended(&self) {
        let phase = *self.phase.lock();
        match phase {
            Phase::Busy { requests } if requests > 1 => self.set(Phase::Busy { requests: requests - 1 }),
            Phase::Busy { .. } => self.set(Phase::Waiting { since: Instant::now(), first: false }),
            _ => {}
        }
    }

    fn deadline(&self, settings: &HttpSettings) -> Option<Instant> {
        match *self.phase.lock() {
            Phase::Waiting { since, first: true } | Phase::Head { since } => Some(since + settings.header_read_timeout),
            Phase::Waiting { since, first: false } => Some(since + settings.idle_timeout),
            Phase::Busy { .. } => None,
        }
    }

    fn expired(&self, now: Instant, settings: &HttpSettings) -> Option<Expired> {
        let deadline = self.deadline(settings)?;
        if now < deadline {
            return None;
        }
        match *self.phase.lock() {
            Phase::Head { .. } => Some(Expired::Head),
            _ => Some(Expired::Idle),
        }
    }
}

/// Marks a request as being answered until its response body is done (or dropped).
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

/// The connection's socket, noting when bytes arrive and giving hyper's own refusals the JSON
/// shape on their way out.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
    refusal: Refusal,
}

/// Where a connection is with hyper's own refusal ([`refusal::json_refusal`]).
enum Refusal {
    /// Nothing recognised yet.
    Watching,
    /// hyper wrote a bare refusal of `replaces` bytes; `answer` goes to the socket instead.
    Writing { answer: Vec<u8>, written: usize, replaces: usize },
    /// The JSON answer was written; hyper closes the connection next.
    Written,
}

impl Watched {
    /// Whether `bufs`, about to be written while no request is being answered, are hyper's
    /// own refusal of a head it could not parse; if so the JSON answer is written from now on.
    fn recognise(&mut self, bufs: &[io::IoSlice<'_>]) -> bool {
        if !matches!(self.refusal, Refusal::Watching) || self.activity.answering() {
            return false;
        }
        // hyper's refusals are one short head; anything else is passed on unread.
        let first = bufs.iter().find(|b| !b.is_empty());
        if !first.is_some_and(|b| b.starts_with(b"HTTP/1.1 4") || b.starts_with(b"HTTP/1.1 5")) {
            return false;
        }
        let written: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        match refusal::json_refusal(&written) {
            Some(answer) => {
                tracing::debug!("answering a request hyper could not parse in the JSON error shape");
                self.refusal = Refusal::Writing { answer, written: 0, replaces: written.len() };
                true
            }
            None => false,
        }
    }

    /// Writes the JSON answer in place of hyper's refusal; ready with the length hyper wrote.
    fn poll_refusal(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let Refusal::Writing { answer, written, replaces } = &mut self.refusal else {
            return Poll::Ready(Ok(0));
        };
        while *written < answer.len() {
            match Pin::new(&mut self.stream).poll_write(cx, &answer[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let replaces = *replaces;
        self.refusal = Refusal::Written;
        Poll::Ready(Ok(replaces))
    }
}

impl AsyncRead for Watched {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.bytes_arrived();
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if matches!(this.refusal, Refusal::Writing { .. }) || this.recognise(&[io::IoSlice::new(buf)]) {
            return this.poll_refusal(cx);
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if matches!(this.refusal, Refusal::Writing { .. }) || this.recognise(bufs) {
            return this.poll_refusal(cx);
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The router behind the edge: marks requests in flight, refuses oversized heads and puts a
/// deadline on request bodies.
#[derive(Clone)]
struct Edge {
    app: Router,
    activity: Arc<Activity>,
    body_read_timeout: Duration,
}

impl hyper::service::Service<Request<Incoming>> for Edge {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let guard = self.activity.request_began();
        let mut app = self.app.clone();
        let timeout = self.body_read_timeout;
        // hyper calls this once the head is parsed: the body is due from now.
        let expired = Arc::new(AtomicBool::new(false));
        let request =
            request.map(|body| Body::new(Deadlined::new(body, Instant::now() + timeout, Arc::clone(&expired))));
        Box::pin(async move {
            let response = match head_too_large(&request) {
                Some(refusal) => refusal.into_response(),
                None => match tower_service::Service::call(&mut app, request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
            };
            // Whatever the handler made of the failed read, the answer is the 408, and the
            // connection closes: the rest of the body may still be on its way.
            let response = if expired.load(Ordering::Acquire) { body_timeout(timeout) } else { response };
            Ok(response.map(|body| Tracked { body, _guard: guard }))
        })
    }
}

/// A request head over [`MAX_REQUEST_HEADERS`] or [`MAX_REQUEST_HEAD_BYTES`]: 431.
fn head_too_large<B>(request: &Request<B>) -> Option<ApiError> {
    let headers = request.headers();
    let refuse = |what: String| {
        Some(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!("{what}; send fewer or shorter headers (this API needs only Authorization and Content-Type)"),
        ))
    };
    if headers.len() > MAX_REQUEST_HEADERS {
        return refuse(format!(
            "the request has {} headers; this host accepts at most {MAX_REQUEST_HEADERS}",
            headers.len()
        ));
    }
    let uri = request.uri();
    let line = request.method().as_str().len()
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.path_and_query().map_or(0, |p| p.as_str().len())
        + 11;
    let size = line + headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>();
    if size > MAX_REQUEST_HEAD_BYTES {
        return refuse(format!(
            "the request line and headers are {size} bytes; this host accepts at most {MAX_REQUEST_HEAD_BYTES}"
        ));
    }
    None
}

/// The answer to a request whose body did not arrive within `timeout`: a JSON 408 that closes
/// the connection.
fn body_timeout(timeout: Duration) -> Response<Body> {
    tracing::debug!("answering 408 to a request whose body did not arrive in time");
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "the request body did not arrive within {} of the headers; the connection is closed. Send the \
             whole body right after the headers",
            humantime::format_duration(timeout)
        ),
    )
    .into_response();
    response.headers_mut().insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    response
}

/// The body deadline passed before the body's last byte arrived.
#[derive(Debug)]
struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// A request body that fails with [`BodyTimedOut`] when its last byte has not arrived by
/// `deadline`, and says so in `expired`. The timer starts at the first read that has to wait.
struct Deadlined {
    body: Incoming,
    deadline: Instant,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    expired: Arc<AtomicBool>,
}

impl Deadlined {
    fn new(body: Incoming, deadline: Instant, expired: Arc<AtomicBool>) -> Self {
        Self { body, deadline, timer: None, expired }
    }
}

impl http_body::Body for Deadlined {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if this.expired.load(Ordering::Acquire) {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|frame| frame.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.expired.store(true, Ordering::Release);
                        Poll::Ready(Some(Err(Box::new(BodyTimedOut))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body that keeps its request marked in flight until it is done.
struct Tracked {
    body: Body,
    _guard: InFlight,
}

impl http_body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        assert_eq!(HttpSettings::default().check(), Ok(()));
        let zero = HttpSettings { header_read_timeout: Duration::ZERO, ..HttpSettings::default() };
        assert!(zero.check().unwrap_err().contains("header_read_timeout"));
        let none = HttpSettings { max_connections: 0, ..HttpSettings::default() };
        assert!(none.check().unwrap_err().contains("max_connections"));
    }

    #[test]
    fn heads_are_measured_with_their_request_line() {
        let mut request = Request::builder().uri("/v1/syncs").body(()).unwrap();
        assert!(head_too_large(&request).is_none());
        request.headers_mut().insert("x-big", "x".repeat(MAX_REQUEST_HEAD_BYTES).parse().unwrap());
        let refused = head_too_large(&request).unwrap();
        assert_eq!((refused.status.as_u16(), refused.code), (431, "headers_too_large"));
    }
}
