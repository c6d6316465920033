//! The exports, and requests through `wasi:http/outgoing-handler` (wasm only: the bindings'
//! imports exist only in a component).

use audience_plugin_sdk::config::setting;
use audience_plugin_sdk::types::*;
use audience_plugin_sdk::{Guest, build, kinds};
use wasip2::http::outgoing_handler;
use wasip2::http::types::{ErrorCode, Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;

use super::{MAX_REDIRECTS, redirect_target, split_url};

struct WasiHttpDestination;

/// A partner's answer, as far as the tests need it.
struct Answer {
    status: u16,
    location: Option<String>,
}

/// The failure `test-destination` reports for the same failure of `http-client`.
fn failure(code: ErrorCode) -> DestinationError {
    match code {
        ErrorCode::HttpRequestDenied | ErrorCode::HttpRequestBodySize(_) | ErrorCode::DestinationIpProhibited => {
            DestinationError::InvalidRequest(format!("denied: {code:?}"))
        }
        ErrorCode::HttpResponseBodySize(_) => DestinationError::Transient("too-large".into()),
        ErrorCode::HttpResponseTimeout | ErrorCode::ConnectionTimeout | ErrorCode::ConnectionReadTimeout => {
            DestinationError::Transient("timeout".into())
        }
        other => DestinationError::Transient(format!("connection: {other:?}")),
    }
}

/// One request, its body written as the host reads it, its answer read whole.
fn send(method: Method, url: &str, body: &[u8]) -> Result<Answer, ErrorCode> {
    let (scheme, authority, path) = split_url(url).ok_or(ErrorCode::HttpRequestUriInvalid)?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    // As `fetch` does for a body of known size: the host can refuse an oversize one at once.
    let headers = if body.is_empty() {
        Fields::new()
    } else {
        Fields::from_list(&[("content-length".to_string(), body.len().to_string().into_bytes())])
            .map_err(|err| ErrorCode::InternalError(Some(format!("{err:?}"))))?
    };
    let request = OutgoingRequest::new(headers);
    let invalid = |_| ErrorCode::HttpRequestUriInvalid;
    request.set_method(&method).map_err(|()| ErrorCode::HttpRequestMethodInvalid)?;
    request.set_scheme(Some(&scheme)).map_err(invalid)?;
    request.set_authority(Some(authority)).map_err(invalid)?;
    request.set_path_with_query(Some(path)).map_err(invalid)?;
    let outgoing = request.body().map_err(|()| ErrorCode::InternalError(Some("no request body".into())))?;
    let future = outgoing_handler::handle(request, None)?;
    if let Ok(stream) = outgoing.write() {
        // A host that refused the request stops reading: the rest is not written.
        for chunk in body.chunks(4096) {
            if stream.blocking_write_and_flush(chunk).is_err() {
                break;
            }
        }
    }
    // Its own error, if any, is the response's too.
    let _ = OutgoingBody::finish(outgoing, None);
    let response = loop {
        match future.get() {
            Some(answer) => break answer,
            None => future.subscribe().block(),
        }
    };
    let response = response.map_err(|()| ErrorCode::InternalError(Some("the response was already taken".into())))??;
    let location = response.headers().get("location").first().map(|v| String::from_utf8_lossy(v).into_owned());
    let status = response.status();
    let incoming = response.consume().map_err(|()| ErrorCode::InternalError(Some("no response body".into())))?;
    if let Ok(stream) = incoming.stream() {
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(_) => {}
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(err)) => {
                    return Err(ErrorCode::InternalError(Some(err.to_debug_string())));
                }
            }
        }
    }
    drop(IncomingBody::finish(incoming));
    Ok(Answer { status, location })
}

/// GET `url`, following redirects as a `wasi:http` client does: each one a new request.
fn fetch(url: &str) -> Result<u16, DestinationError> {
    let mut url = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let answer = send(Method::Get, &url, &[]).map_err(failure)?;
        match redirect_target(&url, answer.status, answer.location.as_deref()) {
            Some(next) => url = next,
            None => return Ok(answer.status),
        }
    }
    Err(DestinationError::Transient(format!("more than {MAX_REDIRECTS} redirects")))
}

fn write(config: &PluginConfig, batch: &Batch) -> Result<WriteOutcome, DestinationError> {
    match (setting(config, "behaviour"), setting(config, "url")) {
        (Some("fetch"), url) => {
            let status = fetch(url.unwrap_or("https://example.invalid/"))?;
            if status >= 500 {
                return Err(DestinationError::Transient(format!("status {status}")));
            }
        }
        (_, Some(url)) => {
            let status = send(Method::Post, url, batch.users.len().to_string().as_bytes()).map_err(failure)?.status;
            if status >= 300 {
                return Err(DestinationError::Transient(format!("status {status}")));
            }
        }
        (_, None) => {}
    }
    Ok(build::done(Vec::new()))
}

impl Guest for WasiHttpDestination {
    fn describe(config: PluginConfig) -> Manifest {
        Manifest {
            name: setting(&config, "name").unwrap_or("wasi-http").into(),
            version: "0.1.0".into(),
            display_name: "wasi:http test destination".into(),
            identifiers: kinds::list(&[kinds::EMAIL]),
            audience_keys: AudienceKeys::MultiKey,
            features: Features::REMOVAL,
            limits: build::limits(100, 50.0, 4),
            oauth: None,
            default_hosts: vec!["127.0.0.1".into()],
        }
    }

    fn prepare_users(fields: Vec<IdentifierKind>, users: Vec<RawUser>) -> Vec<Preparation> {
        users
            .into_iter()
            .map(|user| {
                let identifiers: Vec<Identifier> = user
                    .identifiers
                    .into_iter()
                    .filter(|id| fields.contains(&id.kind) && !id.value.trim().is_empty())
                    .map(|id| Identifier { kind: id.kind, value: id.value.trim().to_lowercase() })
                    .collect();
                if identifiers.is_empty() {
                    Preparation::NotSynced("no selected identifier present".into())
                } else {
                    Preparation::Ready(PreparedUser { key: user.key, identifiers, consent: user.consent })
                }
            })
            .collect()
    }

    fn authorize(_config: PluginConfig, _grant: Grant) -> Result<Credentials, DestinationError> {
        Ok(build::access_token("test-access"))
    }

    fn list_accounts(
        _config: PluginConfig,
        _creds: Credentials,
        _cursor: Option<String>,
    ) -> Result<AccountPage, DestinationError> {
        let account = Account { id: "acct".into(), name: "Account".into(), permissions: vec!["OWNER".into()] };
        Ok(AccountPage { accounts: vec![account], next_cursor: None })
    }

    fn search_audiences(
        _config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        _query: String,
        _cursor: Option<String>,
    ) -> Result<AudiencePage, DestinationError> {
        Ok(AudiencePage { audiences: Vec::new(), next_cursor: None })
    }

    fn read_audience(
        _config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        audience_id: String,
    ) -> Result<Audience, DestinationError> {
        Ok(build::audience(audience_id.clone(), audience_id))
    }

    fn check_target(
        _config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        _spec: AudienceSpec,
    ) -> Result<Vec<TargetProblem>, DestinationError> {
        Ok(Vec::new())
    }

    fn upsert_audience(
        _config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        spec: AudienceSpec,
    ) -> Result<UpsertOutcome, DestinationError> {
        let id = spec.id.unwrap_or_else(|| spec.name.clone());
        Ok(UpsertOutcome::Ready(build::audience(id, spec.name)))
    }

    fn add_users(
        config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        _target: AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, DestinationError> {
        write(&config, &batch)
    }

    fn remove_users(
        config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        _target: AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, DestinationError> {
        write(&config, &batch)
    }

    fn check_submission(
        _config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        _target: AudienceTarget,
        _submission_id: String,
    ) -> Result<SubmissionStatus, DestinationError> {
        Ok(SubmissionStatus::Finished(build::batch_outcome(Vec::new())))
    }
}

audience_plugin_sdk::export!(WasiHttpDestination);
