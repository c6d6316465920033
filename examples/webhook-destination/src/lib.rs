//! A template destination for audience-host: the "webhook audience".
//!
//! Copy this crate to start a destination for your own API. It is small on purpose, but it is
//! complete: it passes `audience-host plugin test`, and each export shows the pattern a real
//! partner needs.
//!
//! What it does: every `add-users` / `remove-users` batch is POSTed as JSON to
//! `{base-url}{path}` (setting `path`, default `/audience-batches`), signed with HMAC-SHA256 of
//! the body under the `client-secret` (header `x-audience-signature: sha256=<hex>`), with the
//! connection's access token as a bearer token, and the host's batch id and attempt as headers.
//! Audiences are found or created with `POST {base-url}/audiences`, searched with
//! `GET {base-url}/audiences` and read with `GET {base-url}/audience`. See `README.md` for the
//! wire format. It implements contract `audience:destination@0.2.0`.
//!
//! | module        | what                                                               |
//! |---------------|--------------------------------------------------------------------|
//! | [`manifest`]  | `describe`: name, identifiers, features, limits, default host      |
//! | [`prepare`]   | `prepare-users`: normalise and hash, locally                       |
//! | [`config`]    | reading `plugin-config`                                            |
//! | [`signature`] | the HMAC-SHA256 signature                                          |
//! | [`delivery`]  | `add-users` / `remove-users` over HTTP                             |
//! | [`audiences`] | `search-audiences` / `read-audience` / `check-target` / `upsert-audience` |
//!
//! Every batch finishes in its request, so the plugin does not declare the `asynchronous`
//! feature and `check-submission` answers `invalid-request`; a partner whose API answers
//! "accepted, job 123" returns `write-outcome.submitted` instead and implements
//! `check-submission` by asking about the job.
//!
//! Everything that talks to the network goes through a [`Host`](audience_plugin_sdk::Host), so
//! it runs in native unit tests against a fake; the `Guest` impl below only wires the exports.

#![allow(unsafe_code, reason = "the component ABI glue that wit-bindgen's export! generates is unsafe by construction")]

pub mod audiences;
pub mod config;
pub mod delivery;
pub mod manifest;
pub mod prepare;
pub mod signature;

use audience_plugin_sdk::types::{
    Account, AccountPage, Audience, AudiencePage, AudienceSpec, AudienceTarget, Batch, Credentials, DestinationError,
    Grant, IdentifierKind, Manifest, PluginConfig, Preparation, RawUser, SubmissionStatus, TargetProblem,
    UpsertOutcome, WriteOutcome,
};
use audience_plugin_sdk::{Guest, WasmHost};

use crate::delivery::Operation;

/// The webhook destination component.
pub struct WebhookDestination;

impl Guest for WebhookDestination {
    fn describe(config: PluginConfig) -> Manifest {
        manifest::manifest(&config)
    }

    fn prepare_users(fields: Vec<IdentifierKind>, users: Vec<RawUser>) -> Vec<Preparation> {
        prepare::prepare_users(&fields, users)
    }

    fn authorize(_config: PluginConfig, grant: Grant) -> Result<Credentials, DestinationError> {
        // A webhook receiver hands out static tokens: there is no OAuth flow and nothing to
        // renew. `unauthorized` on renewal makes the host mark the connection as needing a
        // new token, which is exactly what an operator must then do.
        match grant {
            Grant::AuthorizationCode(_) => Err(DestinationError::InvalidRequest(
                "the webhook destination does not use OAuth; configure the receiver's token directly".into(),
            )),
            Grant::Refresh(_) => Err(DestinationError::Unauthorized(
                "webhook tokens cannot be renewed; configure a new token for this connection".into(),
            )),
        }
    }

    fn list_accounts(
        _config: PluginConfig,
        _creds: Credentials,
        _cursor: Option<String>,
    ) -> Result<AccountPage, DestinationError> {
        // A receiver has no ad accounts: offer one, locally.
        Ok(AccountPage {
            accounts: vec![Account {
                id: config::DEFAULT_ACCOUNT.into(),
                name: "Webhook receiver".into(),
                permissions: vec!["WRITE".into()],
            }],
            next_cursor: None,
        })
    }

    fn search_audiences(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        query: String,
        cursor: Option<String>,
    ) -> Result<AudiencePage, DestinationError> {
        audiences::search_audiences(&WasmHost, &config, &creds, &account_id, &query, cursor.as_deref())
    }

    fn read_audience(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        audience_id: String,
    ) -> Result<Audience, DestinationError> {
        audiences::read_audience(&WasmHost, &config, &creds, &account_id, &audience_id)
    }

    fn check_target(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        spec: AudienceSpec,
    ) -> Result<Vec<TargetProblem>, DestinationError> {
        audiences::check_target(&WasmHost, &config, &creds, &account_id, &spec)
    }

    fn upsert_audience(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        spec: AudienceSpec,
    ) -> Result<UpsertOutcome, DestinationError> {
        audiences::upsert_audience(&WasmHost, &config, &creds, &account_id, &spec).map(UpsertOutcome::Ready)
    }

    fn add_users(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        target: AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, DestinationError> {
        delivery::write_users(&WasmHost, &config, &creds, &account_id, &target, Operation::Add, &batch)
    }

    fn remove_users(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        target: AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, DestinationError> {
        delivery::write_users(&WasmHost, &config, &creds, &account_id, &target, Operation::Remove, &batch)
    }

    fn check_submission(
        _config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        _target: AudienceTarget,
        _submission_id: String,
    ) -> Result<SubmissionStatus, DestinationError> {
        Err(DestinationError::InvalidRequest("the webhook destination finishes every batch in its request".into()))
    }
}

// Only in the component: natively the exported symbol names (`audience:destination/...`) cannot
// be linked into a cdylib, and native builds exist only for unit tests.
#[cfg(target_arch = "wasm32")]
audience_plugin_sdk::export!(WebhookDestination);

#[cfg(test)]
mod testing;
