//! A deliberately broken destination, for the conformance suite's own tests (contract
//! `audience:destination@0.2.0`).
//!
//! It looks plausible (it builds on the SDK, hashes e-mails, talks JSON) but breaks four
//! promises of the contract, each one a mistake a real plugin could make:
//!
//! | fault                          | what it does                                                    | check that must fail     |
//! |--------------------------------|-----------------------------------------------------------------|--------------------------|
//! | wrong error mapping            | maps HTTP 404 to `transient` instead of `not-found`            | `errors.404`             |
//! | oversized batches              | declares `max-batch-size` 10 but sends whatever it is given in one request | `batch.over-limit` |
//! | network call in prepare-users  | reports each prepare call to a telemetry host                  | `prepare.no-network`, `network.allow-list` |
//! | token in the logs              | logs the access token it sends                                  | `credentials.not-logged` |
//!
//! The exports 0.2.0 added are done right (so each failure still points at one fault): no
//! `audience-search` or `asynchronous` feature is declared, so `search-audiences` and
//! `check-submission` answer `invalid-request`; `check-target` reports only an identifier
//! problem when `email` is not among the sync's kinds.

#![allow(unsafe_code, reason = "the component ABI glue that wit-bindgen's export! generates is unsafe by construction")]

use audience_plugin_sdk::http::{RequestBuilder, default_status_error, http_failure};
use audience_plugin_sdk::identity::hashed_email;
use audience_plugin_sdk::types::*;
use audience_plugin_sdk::{Guest, build, kinds};

/// The broken destination.
pub struct BrokenDestination;

/// The batch limit it declares (and does not keep).
pub const DECLARED_MAX_BATCH: u32 = 10;

/// The map from status to error, with the fault: 404 is `transient`.
pub fn map_status(status: u16, response: &audience_plugin_sdk::http::Response) -> DestinationError {
    match status {
        404 => DestinationError::Transient("HTTP 404: the partner is probably just slow".into()),
        _ => default_status_error(response, "broken destination call failed"),
    }
}

fn send_batch(
    config: &PluginConfig,
    creds: &Credentials,
    target: &AudienceTarget,
    users: &[PreparedUser],
) -> Result<WriteOutcome, DestinationError> {
    let base = config.base_url.clone().unwrap_or_else(|| "https://api.broken.example".into());
    // Fault: the token in the log.
    audience_plugin_sdk::info!("broken: sending {} users with token {}", users.len(), creds.access_token);
    // Fault: no check against the declared limit; everything goes in one request.
    let values: Vec<&str> = users.iter().flat_map(|u| u.identifiers.iter().map(|i| i.value.as_str())).collect();
    let request = RequestBuilder::post(format!("{}/batch", base.trim_end_matches('/')))
        .bearer_auth(&creds.access_token)
        .json(&serde_json::json!({ "values": values }))?;
    let response = request.send().map_err(|e| http_failure(&e))?;
    if !response.is_success() {
        return Err(map_status(response.status, &response));
    }
    let mut outcome = build::batch_outcome(vec![]);
    if let AudienceTarget::Create(spec) = target {
        let mut audience = build::audience(spec.name.clone(), spec.name.clone());
        audience.created = true;
        outcome.created = Some(audience);
    }
    Ok(WriteOutcome::Done(outcome))
}

impl Guest for BrokenDestination {
    fn describe(_config: PluginConfig) -> Manifest {
        Manifest {
            name: "broken".into(),
            version: "0.1.0".into(),
            display_name: "Broken destination".into(),
            identifiers: kinds::list(&[kinds::EMAIL]),
            audience_keys: AudienceKeys::OneKind,
            features: Features::REMOVAL,
            limits: build::limits(DECLARED_MAX_BATCH, 5.0, 1),
            oauth: None,
            default_hosts: vec!["api.broken.example".into()],
        }
    }

    fn prepare_users(fields: Vec<IdentifierKind>, users: Vec<RawUser>) -> Vec<Preparation> {
        // Fault: a network call in prepare-users.
        let _ = RequestBuilder::post("https://telemetry.broken.example/prepared")
            .body(users.len().to_string().into_bytes())
            .send();
        users
            .into_iter()
            .map(|user| {
                let identifiers: Vec<Identifier> = user
                    .identifiers
                    .iter()
                    .filter(|i| i.kind == kinds::EMAIL && kinds::contains(&fields, &i.kind))
                    .filter_map(|i| hashed_email(&i.value).ok().map(|value| Identifier { kind: i.kind.clone(), value }))
                    .collect();
                if identifiers.is_empty() {
                    Preparation::NotSynced("no usable email".into())
                } else {
                    Preparation::Ready(PreparedUser { key: user.key, identifiers, consent: user.consent })
                }
            })
            .collect()
    }

    fn authorize(_config: PluginConfig, _grant: Grant) -> Result<Credentials, DestinationError> {
        Err(DestinationError::InvalidRequest("no OAuth".into()))
    }

    fn list_accounts(
        _config: PluginConfig,
        _creds: Credentials,
        _cursor: Option<String>,
    ) -> Result<AccountPage, DestinationError> {
        Ok(AccountPage { accounts: vec![], next_cursor: None })
    }

    fn search_audiences(
        _config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        _query: String,
        _cursor: Option<String>,
    ) -> Result<AudiencePage, DestinationError> {
        Err(DestinationError::InvalidRequest("the broken destination cannot search audiences".into()))
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
        spec: AudienceSpec,
    ) -> Result<Vec<TargetProblem>, DestinationError> {
        if kinds::contains(&spec.identifiers, kinds::EMAIL) {
            return Ok(vec![]);
        }
        Ok(vec![TargetProblem {
            part: TargetPart::Identifiers,
            message: "the broken destination matches on email only".into(),
        }])
    }

    fn upsert_audience(
        _config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        spec: AudienceSpec,
    ) -> Result<UpsertOutcome, DestinationError> {
        let id = spec.id.clone().unwrap_or_else(|| spec.name.clone());
        Ok(UpsertOutcome::Ready(build::audience(id, spec.name)))
    }

    fn add_users(
        config: PluginConfig,
        creds: Credentials,
        _account_id: String,
        target: AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, DestinationError> {
        send_batch(&config, &creds, &target, &batch.users)
    }

    fn remove_users(
        config: PluginConfig,
        creds: Credentials,
        _account_id: String,
        target: AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, DestinationError> {
        send_batch(&config, &creds, &target, &batch.users)
    }

    fn check_submission(
        _config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        _target: AudienceTarget,
        _submission_id: String,
    ) -> Result<SubmissionStatus, DestinationError> {
        Err(DestinationError::InvalidRequest("the broken destination never submits asynchronously".into()))
    }
}

// Exported names contain `:`, which only a wasm target can link.
#[cfg(target_arch = "wasm32")]
audience_plugin_sdk::export!(BrokenDestination);
