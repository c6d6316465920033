//! `add-users`, `remove-users` and `upsert-audience` over HTTP.
//!
//! A batch is one `POST {base-url}{path}` with the JSON body of [`BatchBody`], signed (see
//! [`crate::signature`]). A 2xx answer may list users the receiver refused individually
//! (`{"rejected": [{"key": "...", "reason": "..."}]}`); an empty body or `{}` means all were
//! taken. Any other answer is mapped with the SDK's defaults, which is what the host's retry
//! policy expects: 401/403 `unauthorized`, 404 `not-found`, 429 `rate-limited` (with
//! `Retry-After`), 408/5xx and timeouts `transient`, any other 4xx `invalid-request`.
//!
//! Log lines name the operation, batch size, status and batch id; never a token, the secret or
//! a user's values.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::http::{RequestBuilder, Response, default_status_error, http_failure};
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::{
    Audience, AudienceSpec, AudienceTarget, BatchOutcome, Credentials, DestinationError, PluginConfig, PreparedUser,
    RejectedUser,
};
use serde::{Deserialize, Serialize};

use crate::config::{audiences_url, batch_url, signing_secret};
use crate::manifest::MAX_BATCH_SIZE;
use crate::signature::{BATCH_ID_HEADER, SIGNATURE_HEADER, batch_id, sign};

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
    pub kind: &'static str,
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
}

#[derive(Debug, Deserialize)]
struct WireRejected {
    key: String,
    #[serde(default)]
    reason: String,
}

/// What a receiver answers to `POST /audiences`.
#[derive(Debug, Deserialize)]
struct AudienceAnswer {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    created: bool,
}

pub use audience_plugin_sdk::identity::kind_name;

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
            identifiers: u
                .identifiers
                .iter()
                .map(|i| WireIdentifier { kind: kind_name(i.kind), value: &i.value })
                .collect(),
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

/// Send `request`; a failure or a non-2xx answer becomes the error the host's retries expect.
fn execute(host: &dyn Host, what: &str, request: RequestBuilder) -> Result<Response, DestinationError> {
    let response = request.send_via(host).map_err(|e| {
        let err = http_failure(&e);
        host.log(Level::Warn, &format!("webhook: could not {what}: {err}"));
        err
    })?;
    if response.is_success() {
        return Ok(response);
    }
    host.log(Level::Warn, &format!("webhook: could not {what}: HTTP {}", response.status));
    Err(default_status_error(&response, &format!("could not {what}: {}", partner_message(&response))))
}

/// Add or remove one batch.
pub fn write_users(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account: &str,
    target: &AudienceTarget,
    operation: Operation,
    users: &[PreparedUser],
) -> Result<BatchOutcome, DestinationError> {
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
    let id = batch_id(&body);
    let mut request = RequestBuilder::post(batch_url(config)?)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, &sign(signing_secret(config)?, &body))
        .header(BATCH_ID_HEADER, &id);
    if !creds.access_token.trim().is_empty() {
        request = request.bearer_auth(&creds.access_token);
    }
    let response = execute(host, "deliver the batch", request.body(body))?;
    let answer: BatchAnswer = if response.body.iter().all(u8::is_ascii_whitespace) {
        BatchAnswer::default()
    } else {
        response.json().map_err(|e| {
            DestinationError::Transient(format!("the receiver's answer to batch {id} is not the expected JSON: {e}"))
        })?
    };
    host.log(
        Level::Debug,
        &format!(
            "webhook: batch {id}: {} users {}, HTTP {}, {} rejected",
            users.len(),
            if operation == Operation::Add { "added" } else { "removed" },
            response.status,
            answer.rejected.len()
        ),
    );
    let rejected = answer.rejected.into_iter().map(|r| RejectedUser { key: r.key, reason: r.reason }).collect();
    Ok(BatchOutcome { rejected, created })
}

/// Find or create the audience named in `spec`: `POST {base-url}/audiences`.
pub fn upsert_audience(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account: &str,
    spec: &AudienceSpec,
) -> Result<Audience, DestinationError> {
    let identifiers: Vec<&str> = spec.identifiers.iter().map(|k| kind_name(*k)).collect();
    let body = serde_json::json!({
        "account": account,
        "name": spec.name,
        "description": spec.description,
        "identifiers": identifiers,
        "create_if_missing": spec.create_if_missing,
    });
    let mut request = RequestBuilder::post(audiences_url(config)?).json(&body)?;
    if !creds.access_token.trim().is_empty() {
        request = request.bearer_auth(&creds.access_token);
    }
    let response = execute(host, "find or create the audience", request)?;
    let answer: AudienceAnswer = response.json().map_err(|e| {
        DestinationError::Transient(format!(
            "the receiver's answer about audience '{}' is not the expected JSON: {e}",
            spec.name
        ))
    })?;
    Ok(Audience {
        name: answer.name.unwrap_or_else(|| spec.name.clone()),
        details: vec![("receiver id".into(), answer.id.clone())],
        id: answer.id,
        created: answer.created,
    })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use audience_plugin_sdk::http_client::{HttpError, Request};
    use audience_plugin_sdk::types::Identifier;
    use audience_plugin_sdk::types::IdentifierKind;

    use super::*;

    /// A host that answers from a script and remembers requests and log lines.
    struct FakeHost {
        answers: RefCell<Vec<Result<Response, HttpError>>>,
        requests: RefCell<Vec<Request>>,
        logs: RefCell<Vec<String>>,
    }

    impl FakeHost {
        fn new(answers: Vec<Result<Response, HttpError>>) -> Self {
            Self { answers: RefCell::new(answers), requests: RefCell::default(), logs: RefCell::default() }
        }

        fn header(&self, i: usize, name: &str) -> Option<String> {
            self.requests.borrow()[i].headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
        }
    }

    impl Host for FakeHost {
        fn send(&self, request: &Request) -> Result<Response, HttpError> {
            self.requests.borrow_mut().push(request.clone());
            let mut answers = self.answers.borrow_mut();
            if answers.is_empty() { Err(HttpError::Connection("no scripted answer".into())) } else { answers.remove(0) }
        }

        fn log(&self, _level: Level, message: &str) {
            self.logs.borrow_mut().push(message.to_string());
        }
    }

    fn config() -> PluginConfig {
        PluginConfig {
            base_url: Some("http://receiver.test/".into()),
            client_id: None,
            client_secret: Some("shh-secret".into()),
            settings: vec![],
        }
    }

    fn creds() -> Credentials {
        Credentials { access_token: "tok-123".into(), refresh_token: None, expires_at: None, scopes: vec![] }
    }

    fn users(n: usize) -> Vec<PreparedUser> {
        (0..n)
            .map(|i| PreparedUser {
                key: format!("k{i}"),
                identifiers: vec![Identifier { kind: IdentifierKind::ExternalId, value: format!("crm-{i}") }],
            })
            .collect()
    }

    fn add(host: &FakeHost, users: &[PreparedUser]) -> Result<BatchOutcome, DestinationError> {
        let target = AudienceTarget::Existing("vips".into());
        write_users(host, &config(), &creds(), "default", &target, Operation::Add, users)
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
        let answer = Response::new(200).with_body(r#"{"rejected":[{"key":"k1","reason":"unknown id"}]}"#);
        let host = FakeHost::new(vec![Ok(answer)]);
        let outcome = add(&host, &users(2));
        let Ok(outcome) = outcome else { panic!("{outcome:?}") };
        assert_eq!(outcome.rejected, vec![RejectedUser { key: "k1".into(), reason: "unknown id".into() }]);
        let request = host.requests.borrow()[0].clone();
        assert_eq!((request.method.as_str(), request.url.as_str()), ("POST", "http://receiver.test/audience-batches"));
        assert_eq!(host.header(0, SIGNATURE_HEADER), Some(sign("shh-secret", &request.body)));
        assert_eq!(host.header(0, "authorization").as_deref(), Some("Bearer tok-123"));
        assert_eq!(host.header(0, BATCH_ID_HEADER), Some(batch_id(&request.body)));
        assert!(host.logs.borrow().iter().all(|l| !l.contains("tok-123") && !l.contains("shh-secret")));
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
            let got = match add(&host, &users(1)) {
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
        let result = add(&host, &users(MAX_BATCH_SIZE as usize + 1));
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
            name: "VIPs".into(),
            identifiers: vec![IdentifierKind::Email],
            description: None,
            create_if_missing: true,
        };
        let target = AudienceTarget::Create(spec);
        let outcome = write_users(&host, &config(), &creds(), "default", &target, Operation::Add, &users(1));
        let Ok(BatchOutcome { created: Some(audience), .. }) = outcome else { panic!("{outcome:?}") };
        assert_eq!((audience.id.as_str(), audience.name.as_str(), audience.created), ("aud-7", "VIPs", true));
        assert_eq!(host.requests.borrow()[0].url, "http://receiver.test/audiences");
        assert!(String::from_utf8_lossy(&host.requests.borrow()[1].body).contains(r#""audience":"aud-7""#));
    }
}
