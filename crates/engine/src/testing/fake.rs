//! A fake partner behind [`DestinationCalls`]: no WebAssembly, no network, answers chosen by
//! the test. Every call is one simulated request, with the lane's hooks called around it as
//! the runtime does around a plugin's real requests, so pacing goes through the real limiter.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use tokio::time::Instant;

use audience_model::SyncAction;
use audience_runtime::types::{
    Audience, AudienceSize, AudienceSpec, AudienceState, AudienceTarget, Batch, BatchOutcome, Credentials,
    DestinationError, Grant, PluginConfig, SubmissionStatus, UpsertOutcome, WriteOutcome,
};
use audience_runtime::{CallError, RequestHooks};

use crate::destinations::DestinationCalls;

/// Which call a request was made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// `authorize` (a token refresh).
    Authorize,
    /// `upsert-audience`.
    UpsertAudience,
    /// `add-users` or `remove-users`.
    Write,
}

/// One request the partner received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// When it left (after the hooks let it), since the partner was made.
    pub(crate) at: Duration,
    /// For which call.
    pub(crate) call: Call,
    /// The access token it carried (for `authorize`: the refresh token).
    pub(crate) token: String,
    /// The existing audience written to; `None` when the write creates it.
    pub(crate) audience: Option<String>,
    /// The users' keys, for writes.
    pub(crate) keys: Vec<String>,
    /// The audience's name, for `upsert-audience`.
    pub(crate) name: Option<String>,
}

type Answer<T> = Box<dyn FnMut(&Request) -> Result<T, CallError> + Send>;

struct Inner {
    start: Instant,
    requests: Mutex<Vec<Request>>,
    writes: Mutex<Answer<BatchOutcome>>,
    authorize: Mutex<Answer<Credentials>>,
    upsert: Mutex<Answer<UpsertOutcome>>,
}

/// The fake partner. Clones share their answers and their log of requests.
#[derive(Clone)]
pub(crate) struct FakePartner {
    inner: Arc<Inner>,
    hooks: Option<Arc<dyn RequestHooks>>,
}

impl FakePartner {
    /// A partner that takes every write, finds audience `aud-found`, and refreshes to
    /// `token-2`.
    pub(crate) fn new() -> Self {
        let inner = Inner {
            start: Instant::now(),
            requests: Mutex::new(Vec::new()),
            writes: Mutex::new(Box::new(|_| {
                Ok(BatchOutcome { rejected: Vec::new(), unattributed: Vec::new(), created: None })
            })),
            authorize: Mutex::new(Box::new(|_| Ok(credentials("token-2", Some("refresh-2"))))),
            upsert: Mutex::new(Box::new(|_| Ok(UpsertOutcome::Ready(audience("aud-found"))))),
        };
        Self { inner: Arc::new(inner), hooks: None }
    }

    /// How the partner answers writes from now on.
    pub(crate) fn on_write(&self, answer: impl FnMut(&Request) -> Result<BatchOutcome, CallError> + Send + 'static) {
        *self.inner.writes.lock() = Box::new(answer);
    }

    /// How the partner answers token refreshes from now on.
    pub(crate) fn on_authorize(&self, answer: impl FnMut(&Request) -> Result<Credentials, CallError> + Send + 'static) {
        *self.inner.authorize.lock() = Box::new(answer);
    }

    /// How the partner answers audience look-ups from now on.
    pub(crate) fn on_upsert(&self, answer: impl FnMut(&Request) -> Result<UpsertOutcome, CallError> + Send + 'static) {
        *self.inner.upsert.lock() = Box::new(answer);
    }

    /// Every request so far, in the order they left.
    pub(crate) fn requests(&self) -> Vec<Request> {
        self.inner.requests.lock().clone()
    }

    /// The write requests so far.
    pub(crate) fn writes(&self) -> Vec<Request> {
        self.requests().into_iter().filter(|r| r.call == Call::Write).collect()
    }

    /// The requests of one kind so far.
    pub(crate) fn count(&self, call: Call) -> usize {
        self.inner.requests.lock().iter().filter(|r| r.call == call).count()
    }

    /// One simulated request: the hooks first (they may hold it for the rate limiter, or
    /// refuse it, which a plugin reports as a transient failure), then the test's answer.
    async fn request<T>(
        &self,
        mut request: Request,
        answer: &Mutex<Answer<T>>,
        status: fn(&Result<T, CallError>) -> u16,
    ) -> Result<T, CallError> {
        let departure = match &self.hooks {
            Some(hooks) => match hooks.before_send().await {
                Ok(departure) => Some(departure),
                Err(why) => {
                    return Err(CallError::Destination(DestinationError::Transient(format!(
                        "connection failed: {why}"
                    ))));
                }
            },
            None => None,
        };
        // It leaves the moment the hooks let it (a real send path adds its delay here).
        let started = Instant::now();
        if let Some(departure) = departure {
            departure.departed(started);
        }
        request.at = started.duration_since(self.inner.start);
        let result = (answer.lock())(&request);
        self.inner.requests.lock().push(request);
        if let Some(hooks) = &self.hooks {
            hooks.after_send(Ok(status(&result)), started.elapsed());
        }
        result
    }
}

/// Credentials with this access token.
pub(crate) fn credentials(access_token: &str, refresh_token: Option<&str>) -> Credentials {
    Credentials {
        access_token: access_token.to_string(),
        refresh_token: refresh_token.map(str::to_string),
        expires_at: None,
        renewable_until: None,
        scopes: Vec::new(),
    }
}

/// An audience with this id.
pub(crate) fn audience(id: &str) -> Audience {
    Audience {
        id: id.to_string(),
        name: id.to_string(),
        created: false,
        identifiers: Vec::new(),
        size: AudienceSize { lower: None, upper: None },
        state: AudienceState::Unknown,
        status_detail: None,
        details: Vec::new(),
    }
}

/// A partner error as the call returns it.
pub(crate) fn refusal(err: DestinationError) -> CallError {
    CallError::Destination(err)
}

fn status_of<T>(result: &Result<T, CallError>) -> u16 {
    match result {
        Ok(_) => 200,
        Err(CallError::Destination(DestinationError::RateLimited(_))) => 429,
        Err(CallError::Destination(DestinationError::Unauthorized(_))) => 401,
        Err(CallError::Destination(DestinationError::NotFound(_))) => 404,
        Err(CallError::Destination(DestinationError::InvalidRequest(_) | DestinationError::RejectedUsers(_))) => 400,
        Err(CallError::Destination(DestinationError::ActionRequired(_))) => 403,
        Err(CallError::Destination(DestinationError::Transient(_))) => 503,
        Err(CallError::Plugin(_) | CallError::HostRefused(_) | CallError::Unsupported { .. }) => 200,
    }
}

fn request(call: Call, token: &str) -> Request {
    Request { at: Duration::ZERO, call, token: token.to_string(), audience: None, keys: Vec::new(), name: None }
}

impl DestinationCalls for FakePartner {
    fn with_hooks(
        &self,
        hooks: Arc<dyn RequestHooks>,
        _quota: audience_runtime::InstanceQuota,
    ) -> Arc<dyn DestinationCalls> {
        Arc::new(Self { inner: self.inner.clone(), hooks: Some(hooks) })
    }

    fn authorize<'a>(
        &'a self,
        _config: &'a PluginConfig,
        grant: Grant,
    ) -> BoxFuture<'a, Result<Credentials, CallError>> {
        let token = match &grant {
            Grant::Refresh(creds) => creds.refresh_token.clone().unwrap_or_else(|| creds.access_token.clone()),
            Grant::AuthorizationCode(code) => code.code.clone(),
        };
        Box::pin(self.request(request(Call::Authorize, &token), &self.inner.authorize, status_of))
    }

    fn upsert_audience<'a>(
        &'a self,
        _config: &'a PluginConfig,
        creds: &'a Credentials,
        _account_id: &'a str,
        spec: &'a AudienceSpec,
    ) -> BoxFuture<'a, Result<UpsertOutcome, CallError>> {
        let mut request = request(Call::UpsertAudience, &creds.access_token);
        request.name = Some(spec.name.clone());
        Box::pin(self.request(request, &self.inner.upsert, status_of))
    }

    fn write_users<'a>(
        &'a self,
        _action: SyncAction,
        _config: &'a PluginConfig,
        creds: &'a Credentials,
        _account_id: &'a str,
        target: &'a AudienceTarget,
        batch: Batch,
    ) -> BoxFuture<'a, Result<WriteOutcome, CallError>> {
        let mut request = request(Call::Write, &creds.access_token);
        request.audience = match target {
            AudienceTarget::Existing(id) => Some(id.clone()),
            AudienceTarget::Create(_) => None,
        };
        request.keys = batch.users.into_iter().map(|u| u.key).collect();
        Box::pin(async move { self.request(request, &self.inner.writes, status_of).await.map(WriteOutcome::Done) })
    }

    fn check_submission<'a>(
        &'a self,
        _config: &'a PluginConfig,
        _creds: &'a Credentials,
        _account_id: &'a str,
        _target: &'a AudienceTarget,
        _submission_id: &'a str,
        _sent: usize,
    ) -> BoxFuture<'a, Result<SubmissionStatus, CallError>> {
        // The fake partner answers every write at once: it never has a submission to check.
        Box::pin(std::future::ready(Err(CallError::Unsupported { function: "check-submission", version: "fake" })))
    }
}
