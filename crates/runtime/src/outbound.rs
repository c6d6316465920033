//! One outbound request of a call, whichever import it came through.
//!
//! A plugin reaches the network through the contract's `http-client` import (see
//! [`super::imports`]) or through the standard `wasi:http/outgoing-handler` (see
//! [`super::wasi_http`]). Both hand their request to [`Outbound`], so that what the host
//! decides and records cannot differ between them: the gate's check
//! ([`HttpGate::check`]), then the engine's `before_send` (the connection's rate limiter and
//! lease check), the gate's client (allow-list by address, redirects, timeout, response read
//! with a running cap), the request's departure as the client saw it (for the limiter, see
//! [`crate::departure`]), then `after_send` (the engine's metrics). A request the gate refuses
//! never reaches `before_send`, so it takes no limiter slot; `after_send` still hears of it,
//! and the refusal is logged (scrubbed of the call's secrets by the call log) and remembered
//! for the call, so that the failure the plugin then reports is the host's, not the partner's.
//!
//! What stays with each import: giving back the call's running permit while it waits, which
//! depends on how the guest waits (inside `send` for `http-client`; in `wasi:io/poll` for
//! `wasi:http`, see [`super::waiting`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use parking_lot::Mutex;

use super::bindings::latest::audience::destination::http_client::{HttpError, Request};
use super::bindings::latest::audience::destination::log::Level;
use super::departure::DepartureClock;
use super::http::{Answer, Checked, HttpGate, Redirects};
use super::logging::{CallLog, LogSource};
use super::runtime::RequestHooks;

/// The network side of one call: its plugin's gate, its caller's hooks, its log, and the first
/// refusal of the host's gate during the call. Cheap to clone (requests of `wasi:http` run in
/// their own tasks).
#[derive(Clone)]
pub(crate) struct Outbound {
    gate: Arc<HttpGate>,
    hooks: Option<Arc<dyn RequestHooks>>,
    log: CallLog,
    refused: Arc<Mutex<Option<String>>>,
}

impl Outbound {
    /// The network side of a call of a plugin behind `gate`, paced by `hooks`, logging to `log`.
    pub(crate) fn new(gate: Arc<HttpGate>, hooks: Option<Arc<dyn RequestHooks>>, log: CallLog) -> Self {
        Self { gate, hooks, log, refused: Arc::new(Mutex::new(None)) }
    }

    /// The plugin's gate.
    pub(crate) fn gate(&self) -> &HttpGate {
        &self.gate
    }

    /// The caller's hooks, if any.
    pub(crate) fn hooks(&self) -> Option<&Arc<dyn RequestHooks>> {
        self.hooks.as_ref()
    }

    /// Check `req` at the gate; a refusal is recorded (see [`Self::refuse`]) and returned.
    pub(crate) fn check(&self, req: Request) -> Result<Checked, HttpError> {
        self.gate.check(req).map_err(|refused| self.refuse(refused))
    }

    /// Record a request the gate refused before sending it: `after_send` hears of it (the
    /// engine counts it), the call's log says why, and the call remembers the first reason.
    pub(crate) fn refuse(&self, refused: HttpError) -> HttpError {
        if let Some(hooks) = &self.hooks {
            hooks.after_send(Err(&refused), Duration::ZERO);
        }
        self.note_refusal(&refused);
        refused
    }

    /// `before_send`, the request, `after_send`; a refusal met on the way (a name resolving to
    /// a refused address, a redirect to a host off the list) is recorded as the gate's. The
    /// hooks hear when the request left as it leaves (see [`crate::departure`]), and how it went
    /// once the answer is read.
    pub(crate) async fn send(&self, checked: Checked, redirects: Redirects) -> Result<Answer, HttpError> {
        let departure = match &self.hooks {
            Some(hooks) => match hooks.before_send().await {
                Ok(departure) => Some(departure),
                Err(why) => return Err(HttpError::Connection(why)),
            },
            None => None,
        };
        let handed = Instant::now();
        let clock = DepartureClock::telling(departure);
        let result = self.gate.send_checked(checked, redirects, &clock).await;
        let departed = clock.finish();
        if let Some(hooks) = &self.hooks {
            let elapsed = departed.map_or_else(|| handed.elapsed(), |at| at.elapsed());
            hooks.after_send(result.as_ref().map(|answer| answer.status), elapsed);
        }
        if let Err(err) = &result {
            self.note_refusal(err);
        }
        result
    }

    /// The first refusal of the gate during this call, if any (taken: asked once per call).
    pub(crate) fn take_refusal(&self) -> Option<String> {
        self.refused.lock().take()
    }

    /// Log and remember the host's refusal, if `err` is one.
    fn note_refusal(&self, err: &HttpError) {
        if let HttpError::Denied(why) = err {
            self.log.write(LogSource::Log, Level::Warn, &format!("host refused an outbound request: {why}"));
            self.refused.lock().get_or_insert_with(|| why.clone());
        }
    }
}
