//! Meta destination for audience-host: syncs users into Meta (Facebook) Custom Audiences from
//! customer lists, through the Marketing API (Graph API `vNN.N`).
//!
//! Built on `audience-plugin-sdk` as a WebAssembly component (`wasm32-wasip2`) for contract
//! `audience:destination@0.2.0`. Each export of the `plugin` interface is a short function in
//! its own module; everything that talks to Meta does so through a
//! [`Host`](audience_plugin_sdk::Host), so the orchestration runs in native unit tests against
//! a scripted fake, and the pure parts (normalisation, the payload, error and usage mapping)
//! are plain functions over plain data.
//!
//! | module          | what                                                                     |
//! |-----------------|--------------------------------------------------------------------------|
//! | [`manifest`]    | `describe`: identifiers, limits, the login dialog, the hosts             |
//! | [`prepare`]     | `prepare-users`: pick, normalise and hash each user's values             |
//! | [`normalize`]   | Meta's normalisation rules, one function per key                         |
//! | [`countries`]   | US state names (the country table is the SDK's)                          |
//! | [`kinds`]       | host kinds, the plugin's own prepared kinds, Meta's schema keys          |
//! | [`oauth`]       | `authorize`: code exchange, long-lived token, renewal, `debug_token`      |
//! | [`accounts`]    | `list-accounts`                                                          |
//! | [`audiences`]   | `search-audiences`, `read-audience`, `upsert-audience`                   |
//! | [`state`]       | an audience's state from Meta's delivery and operation statuses          |
//! | [`target`]      | `check-target`                                                           |
//! | [`sync`]        | `add-users` / `remove-users`                                             |
//! | [`payload`]     | the multi-key `payload` and the `session` of a `/users` request          |
//! | [`outcome`]     | a `/users` answer (invalid entries and samples) as a `batch-outcome`     |
//! | [`usage`]       | the usage headers as a pacing reading                                    |
//! | [`errors`]      | Graph errors → `destination-error`                                       |
//! | [`paging`]      | Graph cursor paging (stop only when `next` is absent)                    |
//! | [`wire`]        | Graph request and response bodies                                        |
//! | [`client`]      | the thin layer that sends requests through the host                      |
//! | [`config`]      | the operator's settings                                                  |

#![allow(unsafe_code, reason = "the component ABI glue that wit-bindgen's export! generates is unsafe by construction")]

pub mod accounts;
pub mod audiences;
pub mod client;
pub mod config;
pub mod countries;
pub mod errors;
pub mod form;
pub mod kinds;
pub mod manifest;
pub mod normalize;
pub mod oauth;
pub mod outcome;
pub mod paging;
pub mod payload;
pub mod prepare;
pub mod state;
pub mod sync;
pub mod target;
pub mod usage;
pub mod wire;

#[cfg(test)]
mod alloc_probe;
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

use crate::payload::Operation;

/// This year, from the WASI wall clock (the latest year of birth accepted); 9999 when the
/// clock cannot be read, so no real date is refused for it.
fn this_year() -> u32 {
    oauth::now_unix().map_or(9999, |secs| {
        // Days since 1970-01-01 to a civil year (Howard Hinnant's algorithm).
        let days = i64::try_from(secs / 86_400).unwrap_or(0) + 719_468;
        let era = days.div_euclid(146_097);
        let doe = days.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        u32::try_from(year).unwrap_or(9999)
    })
}

/// The Meta destination component.
pub struct MetaDestination;

impl Guest for MetaDestination {
    fn describe(config: PluginConfig) -> Manifest {
        manifest::manifest(&config)
    }

    fn prepare_users(fields: Vec<IdentifierKind>, users: Vec<RawUser>) -> Vec<Preparation> {
        prepare::prepare_users(&WasmHost, &fields, users, this_year())
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
        sync::write(&WasmHost, &config, &creds, &account_id, target, &batch, Operation::Add)
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
        _config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        _target: AudienceTarget,
        _submission_id: String,
    ) -> Result<SubmissionStatus, DestinationError> {
        Err(DestinationError::InvalidRequest(
            "the Meta plugin is not asynchronous: every batch finishes in its own call, so there is no submission to \
             check"
                .into(),
        ))
    }
}

// Only in the component: natively the exported symbol names (`audience:destination/...`) break
// the linker's version script for the cdylib, and native builds exist only for unit tests.
#[cfg(target_arch = "wasm32")]
export!(MetaDestination);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_year_is_plausible() {
        let year = this_year();
        assert!((2024..2200).contains(&year), "{year}");
    }
}
