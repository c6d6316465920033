//! Pinterest destination for audience-host: syncs users into Pinterest customer lists and the
//! CUSTOMER_LIST audiences advertisers target (Pinterest API v5).
//!
//! Built on `audience-plugin-sdk` as a WebAssembly component (`wasm32-wasip2`). Each export of
//! the `plugin` interface is a short function in its own module; everything that talks to
//! Pinterest does so through a [`Host`](audience_plugin_sdk::Host), so the orchestration runs
//! in native unit tests against a scripted fake, and the pure parts (normalisation, hashing,
//! request bodies, error mapping) are plain functions over plain data.
//!
//! | module            | what                                                              |
//! |-------------------|-------------------------------------------------------------------|
//! | [`manifest`]      | `describe`                                                        |
//! | [`prepare`]       | `prepare-users`: normalise, validate, hash (one kind per sync)    |
//! | [`oauth`]         | `authorize`: code and refresh-token exchange                      |
//! | [`accounts`]      | `list-accounts`                                                   |
//! | [`audiences`]     | `upsert-audience`, `search-audiences`, `read-audience`; size and state mapping |
//! | [`target`]        | `check-target`                                                    |
//! | [`sync`]          | `add-users` / `remove-users` (always `done`: Pinterest is synchronous) |
//! | [`list_type`]     | which identifier a customer list holds, and how a sync picks it   |
//! | [`audience_ref`]  | the opaque audience id `<customer_list_id>:<audience_id>[:<TYPE>]` |
//! | [`records`]       | choosing each user's record for a batch                           |
//! | [`wire`]          | Pinterest request/response bodies                                 |
//! | [`errors`]        | Pinterest responses → `destination-error`                         |
//! | [`client`]        | the thin layer that sends requests through the host               |
//! | [`config`]        | the operator's settings                                           |
//!
//! Contract: `audience:destination@0.2.0` (`wit/v0.2.0`). `check-submission` answers
//! `invalid-request`: Pinterest finishes every write in its own call.

#![allow(unsafe_code, reason = "the component ABI glue that wit-bindgen's export! generates is unsafe by construction")]

pub mod accounts;
pub mod audience_ref;
pub mod audiences;
pub mod client;
pub mod config;
pub mod errors;
pub mod list_type;
pub mod manifest;
pub mod oauth;
pub mod prepare;
pub mod records;
pub mod sync;
pub mod target;
pub mod wire;

#[cfg(test)]
mod testing;

#[cfg(target_arch = "wasm32")]
use audience_plugin_sdk::export;
use audience_plugin_sdk::types::{
    AccountPage, Audience, AudiencePage, AudienceSpec, AudienceTarget, Batch, Credentials, DestinationError, Grant,
    IdentifierKind, Manifest, PluginConfig, Preparation, RawUser, SubmissionStatus, TargetProblem, UpsertOutcome,
    WriteOutcome,
};
use audience_plugin_sdk::{Guest, WasmHost};

/// Why `check-submission` is refused (the plugin never answers `submitted`).
pub const NOT_ASYNCHRONOUS: &str = "the Pinterest plugin is not asynchronous: Pinterest applies every customer \
     list update in its own call, so there is no submission to check";

/// The Pinterest destination component.
pub struct PinterestDestination;

impl Guest for PinterestDestination {
    fn describe(config: PluginConfig) -> Manifest {
        manifest::manifest(&config)
    }

    fn prepare_users(fields: Vec<IdentifierKind>, users: Vec<RawUser>) -> Vec<Preparation> {
        prepare::prepare_users(&fields, users)
    }

    fn authorize(config: PluginConfig, grant: Grant) -> Result<Credentials, DestinationError> {
        oauth::authorize(&WasmHost, &config, grant)
    }

    fn list_accounts(
        config: PluginConfig,
        creds: Credentials,
        cursor: Option<String>,
    ) -> Result<AccountPage, DestinationError> {
        accounts::list_accounts(&WasmHost, &config, &creds, cursor.as_deref())
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
        target::check_target(&WasmHost, &config, &creds, &account_id, &spec)
    }

    fn upsert_audience(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        spec: AudienceSpec,
    ) -> Result<UpsertOutcome, DestinationError> {
        audiences::upsert_audience(&WasmHost, &config, &creds, &account_id, &spec)
    }

    fn add_users(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        target: AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, DestinationError> {
        sync::add_users(&WasmHost, &config, &creds, &account_id, target, &batch)
    }

    fn remove_users(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        target: AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, DestinationError> {
        sync::remove_users(&WasmHost, &config, &creds, &account_id, target, &batch)
    }

    fn check_submission(
        _config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        _target: AudienceTarget,
        _submission_id: String,
    ) -> Result<SubmissionStatus, DestinationError> {
        Err(DestinationError::InvalidRequest(NOT_ASYNCHRONOUS.into()))
    }
}

// Only in the component: natively the exported symbol names (`audience:destination/...`) break
// the linker's version script for the cdylib, and native builds exist only for unit tests.
#[cfg(target_arch = "wasm32")]
export!(PinterestDestination);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{config, creds};

    #[test]
    fn check_submission_is_refused() {
        let answer = PinterestDestination::check_submission(
            config(),
            creds(),
            "549755885175".into(),
            AudienceTarget::Existing("1:2:EMAIL".into()),
            "sub-1".into(),
        );
        assert_eq!(answer, Err(DestinationError::InvalidRequest(NOT_ASYNCHRONOUS.into())));
    }
}
