//! The standard `wasi:http/outgoing-handler` import, through the same gate as `http-client`.
//!
//! Why: plugins written in other languages reach the network through their language's own
//! HTTP client compiled for WASI (JavaScript's `fetch` in a `componentize-js` build, Python's
//! and Rust's WASI HTTP clients), and those speak `wasi:http`. A component importing it must
//! load, and its requests must meet exactly the policy of the contract's `http-client`.
//!
//! The seam is wasmtime-wasi-http's [`WasiHttpHooks::send_request`]: every request a guest
//! hands to `outgoing-handler.handle` arrives there, and this crate links no other client
//! (wasmtime-wasi-http's default sender is compiled out). [`send`] turns it into the
//! contract's request and gives it to [`Outbound`], the path `http-client` takes too: the same
//! gate decision, the same engine hooks (rate limiter slot, lease check, metrics) and the same
//! log line for a refusal. The guest sees the matching `wasi:http` error code (see
//! [`error_code`]).
//!
//! Differences that follow from `wasi:http` itself, not from policy:
//! - **Redirects are handed back.** A `wasi:http` client follows redirects itself (or not, as
//!   its caller asked), so the gate returns the 3xx answer; a request for its `Location` is a
//!   new request that passes the gate again, and is refused when that host is not allowed.
//! - **The request body is streamed in** with a running cap (and refused at once when its
//!   `content-length` is over it); the URL is checked before any of it is read.
//! - **The response is read within the cap before the guest sees it**, as for `http-client`:
//!   an answer over `max_response_bytes` fails the request with `HTTP-response-body-size`.
//! - **Timeouts are the host's.** The guest's `request-options` (connect, first-byte and
//!   between-bytes timeouts) are ignored: [`crate::HttpLimits::timeout`] bounds every request.

use std::future::Future;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use wasmtime_wasi_http::{Error as WasiError, RequestOptions, WasiBody, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

use super::bindings::latest::audience::destination::http_client::{HttpError, Request};
use super::http::{Redirects, header_pairs};
use super::outbound::Outbound;
use super::runtime::InstanceState;

/// What `send_request` hands back once the response is there: nothing more happens on the
/// connection after the body was read, so its I/O future is already done.
type IoDone = Box<dyn Future<Output = Result<(), WasiError>> + Send>;

/// The hooks wasmtime-wasi-http calls for each `wasi:http` request of one call.
pub(crate) struct WasiGate {
    outbound: Outbound,
}

impl WasiGate {
    /// The hooks of a call whose network side is `outbound`.
    pub(crate) fn new(outbound: Outbound) -> Self {
        Self { outbound }
    }
}

impl WasiHttpHooks for WasiGate {
    /// The gate's client sets `host` from the URL; a second one from the guest's authority
    /// could only disagree.
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), WasiError>> + Send>,
    ) -> Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoDone), WasiError>> + Send> {
        let outbound = self.outbound.clone();
        Box::new(async move {
            let response = send(&outbound, request).await?;
            Ok((response, Box::new(async { Ok(()) }) as IoDone))
        })
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView { ctx: &mut self.wasi_http, table: &mut self.table, hooks: &mut self.wasi_gate }
    }
}

/// One `wasi:http` request, through the gate: the URL first, then the body within its cap,
/// then the whole request as `http-client` would send it.
async fn send(outbound: &Outbound, request: http::Request<WasiBody>) -> Result<http::Response<WasiBody>, WasiError> {
    let (parts, body) = request.into_parts();
    let gate = outbound.gate();
    let url = parts.uri.to_string();
    if let Err(refused) = gate.check_url(&url) {
        return Err(error_code(&outbound.refuse(refused)));
    }
    let declared = parts.headers.get(http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if let Some(refused) = declared.and_then(|len| gate.body_refusal(len, true)) {
        outbound.refuse(refused);
        return Err(WasiError::HttpRequestBodySize(declared.map(|len| len as u64)));
    }
    let body = match read_capped(body, gate.limits().max_request_bytes).await {
        Ok(body) => body,
        Err(BodyRead::TooLarge(seen)) => {
            if let Some(refused) = gate.body_refusal(seen, false) {
                outbound.refuse(refused);
            }
            return Err(WasiError::HttpRequestBodySize(Some(seen as u64)));
        }
        // The guest's own body failed (aborted, or shorter or longer than its
        // `content-length`): nothing was sent, and the guest hears what it did.
        Err(BodyRead::Failed(err)) => return Err(err),
    };
    let headers = header_pairs(&parts.headers);
    let req = Request { method: parts.method.as_str().to_string(), url, headers, body };
    let checked = outbound.check(req).map_err(|refused| error_code(&refused))?;
    let answer = outbound.send(checked, Redirects::Return).await.map_err(|err| error_code(&err))?;
    let body =
        Full::new(Bytes::from(answer.body)).map_err(|never: std::convert::Infallible| -> WasiError { match never {} });
    let mut response = http::Response::new(body.boxed_unsync());
    *response.status_mut() = http::StatusCode::from_u16(answer.status).map_err(|_| WasiError::HttpProtocolError)?;
    *response.headers_mut() = answer.headers;
    Ok(response)
}

/// Why a request body could not be read whole.
#[derive(Debug)]
enum BodyRead {
    /// Over the cap after this many bytes.
    TooLarge(usize),
    /// The guest's body stream failed.
    Failed(WasiError),
}

/// The body, read frame by frame, refused as soon as it passes `cap` bytes.
async fn read_capped(mut body: WasiBody, cap: usize) -> Result<Vec<u8>, BodyRead> {
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(BodyRead::Failed)?;
        if let Ok(data) = frame.into_data() {
            let seen = bytes.len() + data.len();
            if seen > cap {
                return Err(BodyRead::TooLarge(seen));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

/// The `wasi:http` error a guest sees for the host's answer `err` to its request. The reason
/// of a refusal is not in it (`HTTP-request-denied` carries none): it is in the call's log.
fn error_code(err: &HttpError) -> WasiError {
    match err {
        HttpError::Denied(_) => WasiError::HttpRequestDenied,
        HttpError::TooLarge => WasiError::HttpResponseBodySize(None),
        HttpError::Timeout => WasiError::HttpResponseTimeout,
        HttpError::Connection(why) => WasiError::InternalError(Some(why.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_host_answer_has_its_wasi_http_error_code() {
        // (the host's answer, the error code the guest sees)
        let table = [
            (HttpError::Denied("not on the allow-list".into()), "HttpRequestDenied"),
            (HttpError::TooLarge, "HttpResponseBodySize(None)"),
            (HttpError::Timeout, "HttpResponseTimeout"),
            (HttpError::Connection("connection refused".into()), "InternalError(Some(\"connection refused\"))"),
        ];
        for (answer, code) in table {
            assert_eq!(format!("{:?}", error_code(&answer)), code, "{answer:?}");
        }
    }

    fn body(chunks: &[&'static [u8]]) -> WasiBody {
        let frames: Vec<Result<http_body::Frame<Bytes>, WasiError>> =
            chunks.iter().map(|c| Ok(http_body::Frame::data(Bytes::from_static(c)))).collect();
        http_body_util::StreamBody::new(futures::stream::iter(frames)).boxed_unsync()
    }

    #[tokio::test]
    async fn a_request_body_is_read_whole_within_its_cap_and_refused_past_it() {
        // (chunks, cap, Ok(body) or Err(bytes seen when refused))
        type Case = (&'static [&'static [u8]], usize, Result<&'static [u8], usize>);
        let table: [Case; 4] = [
            (&[b"abc", b"de"], 5, Ok(b"abcde")),
            (&[], 0, Ok(b"")),
            (&[b"abc", b"def"], 5, Err(6)),
            (&[b"abcdef", b"never read"], 5, Err(6)),
        ];
        for (chunks, cap, expected) in table {
            match (read_capped(body(chunks), cap).await, expected) {
                (Ok(read), Ok(want)) => assert_eq!(read, want),
                (Err(BodyRead::TooLarge(seen)), Err(want)) => assert_eq!(seen, want),
                (got, want) => panic!("{chunks:?} under {cap}: {got:?}, expected {want:?}"),
            }
        }
    }
}
