//! Default translation of HTTP outcomes into `destination-error`.
//!
//! The host's retry policy is driven by the error variant, so choosing it well matters more
//! than the words: `transient` and `rate-limited` are retried, `unauthorized` triggers a token
//! refresh, `not-found` breaks the sync, `invalid-request` makes the host split a batch to find
//! the users at fault. These defaults follow HTTP's own meaning of each status; a plugin
//! matches its partner's special cases first and falls back to [`default_status_error`].

use super::Response;
use crate::http_client::HttpError;
use crate::text::excerpt;
use crate::types::DestinationError;

/// The longest partner message carried into an error, in characters.
const MAX_MESSAGE_CHARS: usize = 300;

/// The error for a request that got no response.
///
/// Timeouts, broken connections and over-large responses are `transient`; a request the host
/// refused to send (host not allowed, plain http, ...) is `invalid-request`, since sending it
/// again will be refused again.
pub fn http_failure(err: &HttpError) -> DestinationError {
    match err {
        HttpError::Timeout => DestinationError::Transient("no response within the host's request timeout".into()),
        HttpError::Connection(why) => DestinationError::Transient(format!("connection failed: {}", excerpt(why, 200))),
        HttpError::TooLarge => DestinationError::Transient("the response was larger than the host allows".into()),
        HttpError::Denied(why) => {
            DestinationError::InvalidRequest(format!("the host refused the request: {}", excerpt(why, 200)))
        }
    }
}

/// The default error for a non-2xx `response`; `message` says what failed, in words for
/// people (the partner's error message, or "could not list accounts").
///
/// | status               | error                                              |
/// |----------------------|----------------------------------------------------|
/// | 429                  | `rate-limited(Retry-After in ms, if any)`          |
/// | 401, 403             | `unauthorized`                                     |
/// | 404                  | `not-found`                                        |
/// | 408, 5xx             | `transient`                                        |
/// | 400, 409, 422, other | `invalid-request`                                  |
///
/// ```
/// use audience_plugin_sdk::http::{Response, default_status_error};
/// use audience_plugin_sdk::types::DestinationError;
/// let throttled = Response::new(429).with_header("retry-after", "3");
/// assert_eq!(default_status_error(&throttled, "slow down"), DestinationError::RateLimited(Some(3000)));
/// ```
pub fn default_status_error(response: &Response, message: &str) -> DestinationError {
    let status = response.status;
    let detail = format!("HTTP {status}: {}", excerpt(message, MAX_MESSAGE_CHARS));
    match status {
        429 => DestinationError::RateLimited(response.header("retry-after").and_then(retry_after_ms)),
        401 | 403 => DestinationError::Unauthorized(detail),
        404 => DestinationError::NotFound(detail),
        408 | 500..=599 => DestinationError::Transient(detail),
        _ => DestinationError::InvalidRequest(detail),
    }
}

/// A `Retry-After` value in delta-seconds, as milliseconds; `None` when it is not a
/// non-negative integer (an HTTP-date is not interpreted). Saturates at `u32::MAX`.
///
/// ```
/// use audience_plugin_sdk::http::retry_after_ms;
/// assert_eq!(retry_after_ms("2"), Some(2000));
/// assert_eq!(retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"), None);
/// ```
pub fn retry_after_ms(value: &str) -> Option<u32> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: the only parse failure left is overflow, which saturates.
    let seconds: u64 = value.parse().unwrap_or(u64::MAX);
    Some(u32::try_from(seconds.saturating_mul(1000)).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> DestinationError {
        default_status_error(&Response::new(code), "boom")
    }

    #[test]
    fn http_failures() {
        assert!(matches!(http_failure(&HttpError::Timeout), DestinationError::Transient(_)));
        assert!(matches!(http_failure(&HttpError::TooLarge), DestinationError::Transient(_)));
        assert_eq!(
            http_failure(&HttpError::Connection("reset by peer".into())),
            DestinationError::Transient("connection failed: reset by peer".into())
        );
        assert_eq!(
            http_failure(&HttpError::Denied("host not allowed: evil.example".into())),
            DestinationError::InvalidRequest("the host refused the request: host not allowed: evil.example".into())
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(status(429), DestinationError::RateLimited(None));
        assert_eq!(status(401), DestinationError::Unauthorized("HTTP 401: boom".into()));
        assert!(matches!(status(403), DestinationError::Unauthorized(_)));
        assert_eq!(status(404), DestinationError::NotFound("HTTP 404: boom".into()));
        for code in [400, 409, 422, 405, 302] {
            assert!(matches!(status(code), DestinationError::InvalidRequest(_)), "{code}");
        }
        for code in [408, 500, 502, 503, 599] {
            assert!(matches!(status(code), DestinationError::Transient(_)), "{code}");
        }
    }

    #[test]
    fn rate_limit_uses_retry_after() {
        let r = Response::new(429).with_header("Retry-After", " 7 ");
        assert_eq!(default_status_error(&r, ""), DestinationError::RateLimited(Some(7000)));
        let r = Response::new(429).with_header("retry-after", "soon");
        assert_eq!(default_status_error(&r, ""), DestinationError::RateLimited(None));
    }

    #[test]
    fn retry_after_parsing() {
        assert_eq!(retry_after_ms("0"), Some(0));
        assert_eq!(retry_after_ms("120"), Some(120_000));
        assert_eq!(retry_after_ms(""), None);
        assert_eq!(retry_after_ms("-1"), None);
        assert_eq!(retry_after_ms("1.5"), None);
        assert_eq!(retry_after_ms("99999999999999999999999"), Some(u32::MAX));
        assert_eq!(retry_after_ms("5000000"), Some(u32::MAX));
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "x".repeat(1000);
        match default_status_error(&Response::new(400), &long) {
            DestinationError::InvalidRequest(m) => assert!(m.chars().count() < 320, "{}", m.len()),
            other => panic!("{other:?}"),
        }
    }
}
