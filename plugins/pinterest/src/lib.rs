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
//! | [`prepare`]       | `prepare-users`: normalise, validate, hash                        |
//! | [`oauth`]         | `authorize`: code and refresh-token exchange                      |
//! | [`accounts`]      | `list-accounts`                                                   |
//! | [`audiences`]     | `upsert-audience`: find or create the list + audience pair        |
//! | [`sync`]          | `add-users` / `remove-users`                                      |
//! | [`list_type`]     | which identifier a customer list holds, and how a sync picks it   |
//! | [`audience_ref`]  | the opaque audience id `<customer_list_id>:<audience_id>:<TYPE>`  |
//! | [`records`]       | choosing each user's record for a batch                           |
//! | [`wire`]          | Pinterest request/response bodies                                 |
//! | [`errors`]        | Pinterest responses → `destination-error`                         |
//! | [`client`]        | the thin layer that sends requests through the host               |
//! | [`config`]        | the operator's settings                                           |

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
pub mod wire;

#[cfg(test)]
mod testing;

#[cfg(target_arch = "wasm32")]
use audience_plugin_sdk::export;
use audience_plugin_sdk::types::{
    AccountPage, AudienceSpec, AudienceTarget, BatchOutcome, Credentials, DestinationError, Grant, IdentifierKind,
    Manifest, PluginConfig, Preparation, PreparedUser, RawUser, UpsertOutcome,
};
use audience_plugin_sdk::{Guest, WasmHost};

/// The Pinterest destination component.
pub struct PinterestDestination;

impl Guest for PinterestDestination {
    fn describe() -> Manifest {
        manifest::manifest()
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
        users: Vec<PreparedUser>,
    ) -> Result<BatchOutcome, DestinationError> {
        sync::add_users(&WasmHost, &config, &creds, &account_id, target, &users)
    }

    fn remove_users(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        target: AudienceTarget,
        users: Vec<PreparedUser>,
    ) -> Result<BatchOutcome, DestinationError> {
        sync::remove_users(&WasmHost, &config, &creds, &account_id, target, &users)
    }
}

// Only in the component: natively the exported symbol names (`audience:destination/...`) break
// the linker's version script for the cdylib, and native builds exist only for unit tests.
#[cfg(target_arch = "wasm32")]
export!(PinterestDestination);
