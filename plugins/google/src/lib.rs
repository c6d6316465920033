//! Google Customer Match destination for audience-host: syncs users into Google Ads Customer
//! Match lists through Google's **Data Manager API** (user lists, members, request status),
//! with the Google Ads API used only to discover accounts, and Google OAuth 2.0.
//!
//! Why the Data Manager API: since 2026-04 the Google Ads API takes no new Customer Match
//! adopters (`CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE`) and Google points new integrations at
//! the Data Manager API, which has its own user-list management, needs no developer token, and
//! reports per-request diagnostics. The researched facts this plugin implements (endpoints,
//! formats, errors, quotas, hashing rules with Google's test vectors, and what is not confirmed)
//! are in `crates/sandbox/spec/google-notes.md`; each module says which of them it relies on
//! and what it decided where they leave a point open.
//!
//! Built on `audience-plugin-sdk` as a WebAssembly component (`wasm32-wasip2`) for contract
//! `audience:destination@0.2.0`. Everything that talks to Google does so through a
//! [`Host`](audience_plugin_sdk::Host), so the orchestration runs in native unit tests against a
//! scripted fake, and the pure parts (normalisation, bodies, error and status mapping) are plain
//! functions over plain data.
//!
//! | module          | what                                                                     |
//! |-----------------|--------------------------------------------------------------------------|
//! | [`manifest`]    | `describe`: identifiers, limits, the consent page, the hosts             |
//! | [`config`]      | the operator's settings; account and list ids                           |
//! | [`kinds`]       | the kinds matched on and the three list key types                        |
//! | [`prepare`]     | `prepare-users`: pick, normalise and hash each user's values             |
//! | [`normalize`]   | Google's formatting rules, one function per identifier                  |
//! | [`oauth`]       | `authorize`: code exchange and refresh                                   |
//! | [`accounts`]    | `list-accounts` (Ads API: accessible customers and their clients)       |
//! | [`audiences`]   | `search-audiences`, `read-audience`, `upsert-audience` (DM user lists)   |
//! | [`target`]      | `check-target`                                                           |
//! | [`sync`]        | `add-users` / `remove-users` (`audienceMembers:ingest` / `:remove`)      |
//! | [`payload`]     | the bodies of those requests                                             |
//! | [`status`]      | `check-submission` (`requestStatus:retrieve`)                            |
//! | [`errors`]      | Google errors → `destination-error`                                      |
//! | [`client`]      | the thin layer that sends requests through the host                      |
//! | [`wire`]        | response bodies                                                          |

#![allow(unsafe_code, reason = "the component ABI glue that wit-bindgen's export! generates is unsafe by construction")]

pub mod accounts;
pub mod audiences;
pub mod client;
pub mod config;
pub mod errors;
pub mod kinds;
pub mod manifest;
pub mod normalize;
pub mod oauth;
pub mod payload;
pub mod prepare;
pub mod status;
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

use crate::client::Operation;

/// The Google Customer Match destination component.
pub struct GoogleDestination;

impl Guest for GoogleDestination {
    fn describe(config: PluginConfig) -> Manifest {
        manifest::manifest(&config)
    }

    fn prepare_users(fields: Vec<IdentifierKind>, users: Vec<RawUser>) -> Vec<Preparation> {
        prepare::prepare_users(&WasmHost, &fields, users)
    }

    fn authorize(config: PluginConfig, grant: Grant) -> Result<Credentials, DestinationError> {
        oauth::authorize(&WasmHost, &config, grant, oauth::now_unix())
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
        sync::write(&WasmHost, &config, &creds, &account_id, target, &batch, Operation::Ingest)
    }

    fn remove_users(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        target: AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, DestinationError> {
        sync::write(&WasmHost, &config, &creds, &account_id, target, &batch, Operation::Remove)
    }

    fn check_submission(
        config: PluginConfig,
        creds: Credentials,
        _account_id: String,
        target: AudienceTarget,
        submission_id: String,
    ) -> Result<SubmissionStatus, DestinationError> {
        status::check_submission(&WasmHost, &config, &creds, &target, &submission_id)
    }
}

// Only in the component: natively the exported symbol names (`audience:destination/...`) break
// the linker's version script for the cdylib, and native builds exist only for unit tests.
#[cfg(target_arch = "wasm32")]
export!(GoogleDestination);
