//! Drawing injected faults for one request.
//!
//! Destinations must survive a flaky partner API: 5xx answers, slow answers, connections that
//! die without an answer, and bursts of 429. These are drawn here per request, before the
//! request is processed, from the [`Faults`] currently set (tests change them while the
//! sandbox runs).

use std::io;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::response::Response;
use rand::RngExt;

use crate::config::Faults;
use crate::error::ApiError;
use crate::log::FaultKind;

/// A fault chosen for one request.
#[derive(Debug)]
pub(crate) enum Injected {
    /// Answer with this error (a forced 429 or a 500/503).
    Answer(ApiError, FaultKind),
    /// Close the connection without answering.
    Drop,
}

/// Draws the fault for one request, counting down a forced 429.
pub(crate) fn draw(faults: &mut Faults) -> Option<Injected> {
    if let Some(forced) = faults.forced_429.as_mut()
        && forced.remaining > 0
    {
        forced.remaining -= 1;
        let retry_after = forced.retry_after;
        if forced.remaining == 0 {
            faults.forced_429 = None;
        }
        return Some(Injected::Answer(ApiError::rate_limited(retry_after), FaultKind::Forced429));
    }
    let mut rng = rand::rng();
    if rng.random_bool(probability(faults.drop_rate)) {
        return Some(Injected::Drop);
    }
    if rng.random_bool(probability(faults.error_rate)) {
        let status =
            if rng.random_bool(0.5) { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::SERVICE_UNAVAILABLE };
        return Some(Injected::Answer(ApiError::injected_server_error(status), FaultKind::ServerError));
    }
    None
}

/// A rate as a probability `random_bool` accepts (NaN and out-of-range values are clamped).
pub(crate) fn probability(rate: f64) -> f64 {
    if rate.is_nan() { 0.0 } else { rate.clamp(0.0, 1.0) }
}

/// A response whose body fails before its first byte. The server then aborts the connection
/// before the status line is written, so the client sees a connection-level error (reset or
/// "connection closed before message completed"), exactly like a partner dropping the socket.
pub(crate) fn dropped_response() -> Response {
    let failure: Result<Bytes, io::Error> =
        Err(io::Error::new(io::ErrorKind::ConnectionAborted, "connection dropped by sandbox fault injection"));
    Response::new(Body::from_stream(futures_util::stream::iter([failure])))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Forced429;

    #[test]
    fn forced_429_counts_down_then_clears() {
        let mut faults = Faults {
            forced_429: Some(Forced429 { remaining: 2, retry_after: Some(Duration::from_secs(3)) }),
            ..Faults::default()
        };
        for _ in 0..2 {
            match draw(&mut faults) {
                Some(Injected::Answer(e, FaultKind::Forced429)) => {
                    assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
                    assert_eq!(e.retry_after, Some(Duration::from_secs(3)));
                }
                other => panic!("expected a forced 429, got {other:?}"),
            }
        }
        assert!(draw(&mut faults).is_none());
        assert_eq!(faults, Faults::default());
    }

    #[test]
    fn certain_faults_always_fire_and_bad_rates_are_clamped() {
        let mut always_drop = Faults { drop_rate: 7.0, ..Faults::default() };
        assert!(matches!(draw(&mut always_drop), Some(Injected::Drop)));
        let mut never = Faults { error_rate: f64::NAN, drop_rate: -1.0, ..Faults::default() };
        assert!(draw(&mut never).is_none());
    }
}
