//! When a request actually left: the engine paces requests by their departure, so the runtime
//! tells it, as close to the wire as it can see.
//!
//! Why not the moment the engine's hook let the request go: between that and the bytes on the
//! wire come the gate's client, the connection pool, maybe a fresh connection (DNS, TCP, TLS),
//! the HTTP connection's own task. Those take from microseconds to hundreds of milliseconds,
//! and a request that leaves late followed by one that leaves promptly lands two requests
//! closer than the engine spaced them.
//!
//! Where it is seen: hyper takes a request's body only once it writes the request onto a
//! connection. So the gate hands its client a body that notes the time ([`TimedBody`]): the
//! first time hyper asks it for data, or — for a request without a body, which hyper never
//! asks — when hyper lets go of it, which it does as it writes the request's head. A request
//! that failed before that (the connection could not be made) has no departure: nothing reached
//! the partner. (A request without a body dropped unsent — its connection failed, the overall
//! timeout fired while connecting — is counted as departed: counting a request that never left
//! costs a little pace, missing one that left could cost a 429.)
//!
//! The engine is told at that moment, from the HTTP connection's task, not when the answer
//! comes: a request occupies its place in the partner's window from its departure.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use parking_lot::Mutex;
use tokio::time::Instant;

/// What the engine's `before_send` hands back for a request it let go: told once when the
/// request left, or dropped when it never did.
pub struct Departure {
    settle: Option<Box<dyn FnOnce(Option<Instant>) + Send>>,
}

impl Departure {
    /// A departure nobody waits to hear of (hooks that pace nothing).
    pub fn untracked() -> Self {
        Self { settle: None }
    }

    /// A departure that calls `settle` once: with the time the request left, or with `None`
    /// when it never left (refused, failed to connect, abandoned).
    pub fn new(settle: impl FnOnce(Option<Instant>) + Send + 'static) -> Self {
        Self { settle: Some(Box::new(settle)) }
    }

    /// The request left at `at`.
    pub fn departed(mut self, at: Instant) {
        if let Some(settle) = self.settle.take() {
            settle(Some(at));
        }
    }

    /// The request left at `at`, or never (`None`).
    pub fn settle(self, at: Option<Instant>) {
        match at {
            Some(at) => self.departed(at),
            None => drop(self),
        }
    }
}

impl Drop for Departure {
    fn drop(&mut self) {
        if let Some(settle) = self.settle.take() {
            settle(None);
        }
    }
}

impl std::fmt::Debug for Departure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.settle.is_some() { "Departure(awaited)" } else { "Departure(untracked)" })
    }
}

/// The first time a request was seen leaving, shared by the body and the caller, and the
/// engine's [`Departure`] to tell at once: a request counts in the engine's window from the
/// moment it leaves, not from its answer (which can take a second).
#[derive(Debug, Clone, Default)]
pub(crate) struct DepartureClock(Arc<Mutex<Clock>>);

#[derive(Debug, Default)]
struct Clock {
    at: Option<Instant>,
    tell: Option<Departure>,
}

impl DepartureClock {
    /// A clock that tells `departure` when the request leaves.
    pub(crate) fn telling(departure: Option<Departure>) -> Self {
        Self(Arc::new(Mutex::new(Clock { at: None, tell: departure })))
    }

    /// Note now as the departure, unless one was noted already, and tell it.
    fn mark(&self) {
        let now = Instant::now();
        let tell = {
            let mut clock = self.0.lock();
            if clock.at.is_some() {
                return;
            }
            clock.at = Some(now);
            clock.tell.take()
        };
        if let Some(departure) = tell {
            departure.departed(now);
        }
    }

    /// When the request left, if it was seen leaving; a departure not told by now is told
    /// the request never left.
    pub(crate) fn finish(&self) -> Option<Instant> {
        let (at, untold) = {
            let mut clock = self.0.lock();
            (clock.at, clock.tell.take())
        };
        drop(untold);
        at
    }
}

/// A request body that notes on `clock` when the HTTP client takes it onto a connection.
pub(crate) struct TimedBody {
    inner: Full<Bytes>,
    empty: bool,
    clock: Option<DepartureClock>,
}

impl TimedBody {
    /// `bytes` as a body noting its departure on `clock` (`None`: a later hop of a redirect,
    /// whose departure is not the request's).
    pub(crate) fn new(bytes: Bytes, clock: Option<DepartureClock>) -> Self {
        Self { empty: bytes.is_empty(), inner: Full::new(bytes), clock }
    }
}

impl Body for TimedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(clock) = &self.clock {
            clock.mark();
        }
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TimedBody {
    fn drop(&mut self) {
        // hyper never asks an empty body for data: it drops it as it writes the head.
        if self.empty
            && let Some(clock) = &self.clock
        {
            clock.mark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;
    use parking_lot::Mutex;

    #[tokio::test(start_paused = true)]
    async fn a_body_notes_when_it_is_first_read_or_an_empty_one_when_let_go() {
        let told = Arc::new(Mutex::new(Vec::new()));
        let telling = || {
            let told = told.clone();
            DepartureClock::telling(Some(Departure::new(move |at| told.lock().push(at))))
        };
        let clock = telling();
        let mut body = TimedBody::new(Bytes::from_static(b"users"), Some(clock.clone()));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert!(told.lock().is_empty(), "not read yet");
        let read_at = Instant::now();
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), Bytes::from_static(b"users"));
        assert_eq!(*told.lock(), [Some(read_at)], "told as it leaves, before the answer");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        drop(body);
        assert_eq!(clock.finish(), Some(read_at), "the first read, not the drop");

        let clock = telling();
        let body = TimedBody::new(Bytes::new(), Some(clock.clone()));
        assert!(body.is_end_stream());
        let dropped_at = Instant::now();
        drop(body);
        assert_eq!(clock.finish(), Some(dropped_at));

        // A non-empty body dropped unread never left.
        let clock = telling();
        drop(TimedBody::new(Bytes::from_static(b"x"), Some(clock.clone())));
        assert_eq!(clock.finish(), None);
        assert_eq!(*told.lock(), [Some(read_at), Some(dropped_at), None]);
    }

    #[test]
    fn a_departure_is_settled_once_and_as_never_sent_when_dropped() {
        let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let record = |seen: &Arc<parking_lot::Mutex<Vec<Option<Instant>>>>| {
            let seen = seen.clone();
            Departure::new(move |at| seen.lock().push(at))
        };
        let at = Instant::now();
        record(&seen).departed(at);
        drop(record(&seen));
        record(&seen).settle(None);
        record(&seen).settle(Some(at));
        Departure::untracked().departed(at);
        assert_eq!(*seen.lock(), [Some(at), None, None, Some(at)]);
    }
}
