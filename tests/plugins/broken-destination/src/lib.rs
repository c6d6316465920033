//! A deliberately broken destination, for the conformance suite's own tests.
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

#![allow(unsafe_code, reason = "the component ABI glue that wit-bindgen's export! generates is unsafe by construction")]

use audience_plugin_sdk::Guest;
use audience_plugin_sdk::http::{RequestBuilder, default_status_error, http_failure};
use audience_plugin_sdk::identity::hashed_email;
use audience_plugin_sdk::types::*;

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
    users: &[PreparedUser],
) -> Result<BatchOutcome, DestinationError> {
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
    Ok(BatchOutcome { rejected: vec![], created: None })
}

impl Guest for BrokenDestination {
    fn describe() -> Manifest {
        Manifest {
            name: "broken".into(),
            version: "0.1.0".into(),
            display_name: "Broken destination".into(),
            identifiers: vec![IdentifierKind::Email],
            supports_removal: true,
            limits: Limits { max_batch_size: DECLARED_MAX_BATCH, requests_per_second: 5.0, max_concurrent_requests: 1 },
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
                    .filter(|i| i.kind == IdentifierKind::Email && fields.contains(&i.kind))
                    .filter_map(|i| hashed_email(&i.value).ok().map(|value| Identifier { kind: i.kind, value }))
                    .collect();
                if identifiers.is_empty() {
                    Preparation::NotSynced("no usable email".into())
                } else {
                    Preparation::Ready(PreparedUser { key: user.key, identifiers })
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

    fn upsert_audience(
        _config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        spec: AudienceSpec,
    ) -> Result<UpsertOutcome, DestinationError> {
        Ok(UpsertOutcome::Ready(Audience { id: spec.name.clone(), name: spec.name, created: false, details: vec![] }))
    }

    fn add_users(
        config: PluginConfig,
        creds: Credentials,
        _account_id: String,
        _target: AudienceTarget,
        users: Vec<PreparedUser>,
    ) -> Result<BatchOutcome, DestinationError> {
        send_batch(&config, &creds, &users)
    }

    fn remove_users(
        config: PluginConfig,
        creds: Credentials,
        _account_id: String,
        _target: AudienceTarget,
        users: Vec<PreparedUser>,
    ) -> Result<BatchOutcome, DestinationError> {
        send_batch(&config, &creds, &users)
    }
}

// Exported names contain `:`, which only a wasm target can link.
#[cfg(target_arch = "wasm32")]
audience_plugin_sdk::export!(BrokenDestination);
