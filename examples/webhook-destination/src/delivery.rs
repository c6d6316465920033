//! `add-users` and `remove-users` over HTTP.
//!
//! A batch is one `POST {base-url}{path}` with the JSON body of [`BatchBody`], signed (see
//! [`crate::signature`]) and carrying the host's batch id and attempt number as headers, so the
//! receiver can drop a retried duplicate. A 2xx answer may list users the receiver refused
//! individually (`{"rejected": [{"key": "...", "reason": "..."}]}`) and rows it dropped
//! without naming them (`{"unattributed": [{"count": 2, "reason": "...", "samples": [...]}]}`);
//! an empty body or `{}` means all were taken. Any other answer is mapped with the SDK's
//! defaults, which is what the host's retry policy expects: 401/403 `unauthorized`, 404
//! `not-found`, 429 `rate-limited` (with `Retry-After`), 408/5xx and timeouts `transient`, any
//! other 4xx `invalid-request`. Every answer's `x-budget-used-percent` header (and
//! `x-budget-regain-ms`), when present, is reported to the host's `pacing` import.
//!
//! Log lines name the operation, batch size, status and batch id; never a token, the secret or
//! a user's values.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::build;
use audience_plugin_sdk::http::{RequestBuilder, Response, default_status_error, http_failure};
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::pacing::Budget;
use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::{
    AudienceTarget, Batch, BatchOutcome, Credentials, DestinationError, PluginConfig, PreparedUser, RejectedUser,
    WriteOutcome,
};
use serde::{Deserialize, Serialize};

use crate::audiences::upsert_audience;
use crate::config::{batch_url, signing_secret};
use crate::manifest::MAX_BATCH_SIZE;
use crate::signature::{ATTEMPT_HEADER, BATCH_ID_HEADER, SIGNATURE_HEADER, batch_id, sign};

/// The response header carrying the share of the receiver's rate budget used, in percent.
pub const BUDGET_USED_HEADER: &str = "x-budget-used-percent";

/// The response header saying when an exhausted budget returns, in milliseconds.
pub const BUDGET_REGAIN_HEADER: &str = "x-budget-regain-ms";

/// Whether a batch adds or removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Add the users.
    Add,
    /// Remove the users.
    Remove,
}

/// One identifier on the wire.
#[derive(Debug, Serialize, PartialEq)]
pub struct WireIdentifier<'a> {
    /// `email`, `mobile-ad-id`, `idfa` or `external-id`.
    pub kind: &'a str,
    /// The prepared (hashed, for e-mails and device ids) value.
    pub value: &'a str,
}

/// One user on the wire.
#[derive(Debug, Serialize, PartialEq)]
pub struct WireUser<'a> {
    /// The caller's key, so the receiver can name users it refuses.
    pub key: &'a str,
    /// The user's prepared identifiers.
    pub identifiers: Vec<WireIdentifier<'a>>,
}

/// The body of a batch request.
#[derive(Debug, Serialize, PartialEq)]
pub struct BatchBody<'a> {
    /// `add` or `remove`.
    pub operation: Operation,
    /// The account id the sync was configured with.
    pub account: &'a str,
    /// The audience id (from `upsert-audience`).
    pub audience: &'a str,
    /// The users.
    pub users: Vec<WireUser<'a>>,
}

/// What a receiver may answer to a batch.
#[derive(Debug, Default, Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    rejected: Vec<WireRejected>,
    #[serde(default)]
    unattributed: Vec<WireUnattributed>,
}

#[derive(Debug, Deserialize)]
struct WireRejected {
    key: String,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize)]
struct WireUnattributed {
    count: u32,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    samples: Vec<String>,
}

/// The JSON body of a batch.
pub fn batch_body(
    operation: Operation,
    account: &str,
    audience: &str,
    users: &[PreparedUser],
) -> Result<Vec<u8>, DestinationError> {
    let users = users
        .iter()
        .map(|u| WireUser {
            key: &u.key,
            identifiers: u.identifiers.iter().map(|i| WireIdentifier { kind: &i.kind, value: &i.value }).collect(),
        })
        .collect();
    serde_json::to_vec(&BatchBody { operation, account, audience, users })
        .map_err(|e| DestinationError::InvalidRequest(format!("could not encode the batch: {e}")))
}

/// The partner's message in an error answer: `message` or `error` of a JSON body, else the text.
fn partner_message(response: &Response) -> String {
    let json: Option<serde_json::Value> = response.json().ok();
    let field = json.as_ref().and_then(|v| v.get("message").or_else(|| v.get("error"))).and_then(|m| m.as_str());
    excerpt(field.map_or_else(|| response.text().into_owned(), str::to_string).trim(), 200)
}

/// Report the receiver's budget reading, when the answer carries one.
fn report_budget(host: &dyn Host, response: &Response) {
    let used = response.header(BUDGET_USED_HEADER).and_then(|v| v.trim().parse::<f32>().ok());
    if let Some(used_percent) = used.filter(|u| u.is_finite()) {
        let regain_after_ms = response.header(BUDGET_REGAIN_HEADER).and_then(|v| v.trim().parse().ok());
        host.report_budget(Budget { used_percent: used_percent.clamp(0.0, 100.0), regain_after_ms });
    }
}

/// `request` with the connection's token as a bearer token, when it has one.
pub(crate) fn authorized(request: RequestBuilder, creds: &Credentials) -> RequestBuilder {
    if creds.access_token.trim().is_empty() { request } else { request.bearer_auth(&creds.access_token) }
}

/// Send `request`; a failure or a non-2xx answer becomes the error the host's retries expect.
pub(crate) fn execute(host: &dyn Host, what: &str, request: RequestBuilder) -> Result<Response, DestinationError> {
    let response = request.send_via(host).map_err(|e| {
        let err = http_failure(&e);
        host.log(Level::Warn, &format!("webhook: could not {what}: {err}"));
        err
    })?;
    report_budget(host, &response);
    if response.is_success() {
        return Ok(response);
    }
    host.log(Level::Warn, &format!("webhook: could not {what}: HTTP {}", response.status));
    Err(default_status_error(&response, &format!("could not {what}: {}", partner_message(&response))))
}

/// Whether a 2xx body says nothing (empty or whitespace): "all fine, nothing to report".
pub(crate) fn is_blank(response: &Response) -> bool {
    response.body.iter().all(u8::is_ascii_whitespace)
}

/// Add or remove one batch.
pub fn write_users(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account: &str,
    target: &AudienceTarget,
    operation: Operation,
    batch: &Batch,
) -> Result<WriteOutcome, DestinationError> {
    let users = &batch.users;
    if users.len() > MAX_BATCH_SIZE as usize {
        return Err(DestinationError::InvalidRequest(format!(
            "a batch of {} users exceeds the receiver's limit of {MAX_BATCH_SIZE}",
            users.len()
        )));
    }
    let (audience, created) = match target {
        AudienceTarget::Existing(id) => (id.clone(), None),
        AudienceTarget::Create(spec) => {
            let audience = upsert_audience(host, config, creds, account, spec)?;
            (audience.id.clone(), Some(audience))
        }
    };
    let body = batch_body(operation, account, &audience, users)?;
    // The host's id is the same on every retry of these users; fall back to the body's hash.
    let id = if batch.id.trim().is_empty() { batch_id(&body) } else { batch.id.clone() };
    let request = RequestBuilder::post(batch_url(config)?)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, &sign(signing_secret(config)?, &body))
        .header(BATCH_ID_HEADER, &id)
        .header(ATTEMPT_HEADER, &batch.attempt.to_string());
    let response = execute(host, "deliver the batch", authorized(request, creds).body(body))?;
    let answer: BatchAnswer = if is_blank(&response) {
        BatchAnswer::default()
    } else {
        response.json().map_err(|e| {
            DestinationError::Transient(format!("the receiver's answer to batch {id} is not the expected JSON: {e}"))
        })?
    };
    host.log(
        Level::Debug,
        &format!(
            "webhook: batch {id} attempt {}: {} users {}, HTTP {}, {} rejected, {} unattributed",
            batch.attempt,
            users.len(),
            if operation == Operation::Add { "added" } else { "removed" },
            response.status,
            answer.rejected.len(),
            answer.unattributed.iter().map(|u| u64::from(u.count)).sum::<u64>(),
        ),
    );
    let rejected = answer.rejected.into_iter().map(|r| RejectedUser { key: r.key, reason: r.reason }).collect();
    let unattributed = answer
        .unattributed
        .into_iter()
        .filter(|u| u.count > 0)
        .map(|u| build::unattributed(u.count, u.reason, u.samples))
        .collect();
    Ok(WriteOutcome::Done(BatchOutcome { rejected, unattributed, created }))
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::http_client::HttpError;
    use audience_plugin_sdk::kinds;
    use audience_plugin_sdk::types::AudienceSpec;

    use super::*;
    use crate::testing::{FakeHost, config, creds, users};

    fn batch(n: usize) -> Batch {
        Batch { id: "b-1".into(), attempt: 2, users: users(n) }
    }

    fn add(host: &FakeHost, batch: &Batch) -> Result<BatchOutcome, DestinationError> {
        let target = AudienceTarget::Existing("vips".into());
        match write_users(host, &config(), &creds(), "default", &target, Operation::Add, batch)? {
            WriteOutcome::Done(outcome) => Ok(outcome),
            WriteOutcome::Submitted(s) => panic!("submitted {s:?}"),
        }
    }

    #[test]
    fn body_shape() {
        let body = batch_body(Operation::Remove, "acct", "vips", &users(1)).map(|b| String::from_utf8(b).ok());
        assert_eq!(
            body,
            Ok(Some(
                r#"{"operation":"remove","account":"acct","audience":"vips","users":[{"key":"k0","identifiers":[{"kind":"external-id","value":"crm-0"}]}]}"#
                    .into()
            ))
        );
    }

    #[test]
    fn a_batch_is_posted_signed_and_rejections_reported() {
        let answer = Response::new(200).with_body(
            r#"{"rejected":[{"key":"k1","reason":"unknown id"}],"unattributed":[{"count":2,"reason":"bad rows","samples":["x"]},{"count":0}]}"#,
        );
        let host = FakeHost::new(vec![Ok(answer)]);
        let outcome = add(&host, &batch(2));
        let Ok(outcome) = outcome else { panic!("{outcome:?}") };
        assert_eq!(outcome.rejected, vec![RejectedUser { key: "k1".into(), reason: "unknown id".into() }]);
        assert_eq!(outcome.unattributed, vec![build::unattributed(2, "bad rows", vec!["x".into()])]);
        let request = host.requests.borrow()[0].clone();
        assert_eq!((request.method.as_str(), request.url.as_str()), ("POST", "http://receiver.test/audience-batches"));
        assert_eq!(host.header(0, SIGNATURE_HEADER), Some(sign("shh-secret", &request.body)));
        assert_eq!(host.header(0, "authorization").as_deref(), Some("Bearer tok-123"));
        assert_eq!(host.header(0, BATCH_ID_HEADER).as_deref(), Some("b-1"));
        assert_eq!(host.header(0, ATTEMPT_HEADER).as_deref(), Some("2"));
        assert!(host.logs.borrow().iter().all(|l| !l.contains("tok-123") && !l.contains("shh-secret")));
    }

    #[test]
    fn a_missing_batch_id_falls_back_to_the_body_hash() {
        let host = FakeHost::new(vec![Ok(Response::new(204))]);
        let mut b = batch(1);
        b.id = String::new();
        add(&host, &b).unwrap();
        let body = host.requests.borrow()[0].body.clone();
        assert_eq!(host.header(0, BATCH_ID_HEADER), Some(batch_id(&body)));
    }

    #[test]
    fn budget_headers_are_reported_to_the_host() {
        let answer =
            Response::new(204).with_header(BUDGET_USED_HEADER, "91.5").with_header(BUDGET_REGAIN_HEADER, "4000");
        let host = FakeHost::new(vec![Ok(answer), Ok(Response::new(429).with_header(BUDGET_USED_HEADER, "100"))]);
        add(&host, &batch(1)).unwrap();
        assert!(matches!(add(&host, &batch(1)), Err(DestinationError::RateLimited(None))));
        let budgets = host.budgets.borrow();
        assert_eq!(budgets.len(), 2);
        assert_eq!((budgets[0].used_percent, budgets[0].regain_after_ms), (91.5, Some(4000)));
        assert_eq!((budgets[1].used_percent, budgets[1].regain_after_ms), (100.0, None));
    }

    #[test]
    fn errors_follow_the_sdk_mapping() {
        let cases: Vec<(Result<Response, HttpError>, &str)> = vec![
            (Ok(Response::new(401)), "unauthorized"),
            (Ok(Response::new(404).with_body(r#"{"message":"no such audience"}"#)), "not-found"),
            (Ok(Response::new(429).with_header("retry-after", "7")), "rate-limited-7000"),
            (Ok(Response::new(503)), "transient"),
            (Ok(Response::new(422)), "invalid-request"),
            (Err(HttpError::Timeout), "transient"),
            (Ok(Response::new(200).with_body("<html>")), "transient"),
        ];
        for (answer, expected) in cases {
            let host = FakeHost::new(vec![answer]);
            let got = match add(&host, &batch(1)) {
                Err(DestinationError::Unauthorized(_)) => "unauthorized",
                Err(DestinationError::NotFound(m)) => {
                    assert!(m.contains("no such audience"), "{m}");
                    "not-found"
                }
                Err(DestinationError::RateLimited(Some(7000))) => "rate-limited-7000",
                Err(DestinationError::Transient(_)) => "transient",
                Err(DestinationError::InvalidRequest(_)) => "invalid-request",
                other => panic!("{other:?}"),
            };
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn oversized_batches_are_refused_without_a_request() {
        let host = FakeHost::new(vec![]);
        let result = add(&host, &batch(MAX_BATCH_SIZE as usize + 1));
        assert!(matches!(result, Err(DestinationError::InvalidRequest(m)) if m.contains("exceeds")));
        assert!(host.requests.borrow().is_empty());
    }

    #[test]
    fn create_target_upserts_then_delivers() {
        let host = FakeHost::new(vec![
            Ok(Response::new(201).with_body(r#"{"id":"aud-7","created":true}"#)),
            Ok(Response::new(204)),
        ]);
        let spec = AudienceSpec {
            id: None,
            name: "VIPs".into(),
            identifiers: kinds::list(&[kinds::EMAIL]),
            description: None,
            create_if_missing: true,
        };
        let target = AudienceTarget::Create(spec);
        let outcome = write_users(&host, &config(), &creds(), "default", &target, Operation::Add, &batch(1));
        let Ok(WriteOutcome::Done(BatchOutcome { created: Some(audience), .. })) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!((audience.id.as_str(), audience.name.as_str(), audience.created), ("aud-7", "VIPs", true));
        assert_eq!(host.requests.borrow()[0].url, "http://receiver.test/audiences");
        assert!(String::from_utf8_lossy(&host.requests.borrow()[1].body).contains(r#""audience":"aud-7""#));
    }
}
