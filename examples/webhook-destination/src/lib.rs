//! A template destination for audience-host: the "webhook audience".
//!
//! Copy this crate to start a destination for your own API. It is small on purpose, but it is
//! complete: it passes `audience-host plugin test`, and each export shows the pattern a real
//! partner needs.
//!
//! What it does: every `add-users` / `remove-users` batch is POSTed as JSON to
//! `{base-url}{path}` (setting `path`, default `/audience-batches`), signed with HMAC-SHA256 of
//! the body under the `client-secret` (header `x-audience-signature: sha256=<hex>`), with the
//! connection's access token as a bearer token. Audiences are found or created with
//! `POST {base-url}/audiences`. See `README.md` for the wire format.
//!
//! | module        | what                                                               |
//! |---------------|--------------------------------------------------------------------|
//! | [`manifest`]  | `describe`: name, identifiers, limits                              |
//! | [`prepare`]   | `prepare-users`: normalise and hash, locally                       |
//! | [`config`]    | reading `plugin-config`                                            |
//! | [`signature`] | the HMAC-SHA256 signature                                          |
//! | [`delivery`]  | `add-users` / `remove-users` / `upsert-audience` over HTTP         |
//!
//! Everything that talks to the network goes through a [`Host`](audience_plugin_sdk::Host), so
//! it runs in native unit tests against a fake; the `Guest` impl below only wires the exports.

#![allow(unsafe_code, reason = "the component ABI glue that wit-bindgen's export! generates is unsafe by construction")]

pub mod config;
pub mod delivery;
pub mod manifest;
pub mod prepare;
pub mod signature;

use audience_plugin_sdk::types::{
    Account, AccountPage, AudienceSpec, AudienceTarget, BatchOutcome, Credentials, DestinationError, Grant,
    IdentifierKind, Manifest, PluginConfig, Preparation, PreparedUser, RawUser, UpsertOutcome,
};
use audience_plugin_sdk::{Guest, WasmHost};

use crate::delivery::Operation;

/// The webhook destination component.
pub struct WebhookDestination;

impl Guest for WebhookDestination {
    fn describe() -> Manifest {
        manifest::manifest()
    }

    fn prepare_users(fields: Vec<IdentifierKind>, users: Vec<RawUser>) -> Vec<Preparation> {
        prepare::prepare_users(&fields, users)
    }

    fn authorize(_config: PluginConfig, grant: Grant) -> Result<Credentials, DestinationError> {
        // A webhook receiver hands out static tokens: there is no OAuth flow and nothing to
        // refresh. `unauthorized` on refresh makes the host mark the connection as needing a
        // new token, which is exactly what an operator must then do.
        match grant {
            Grant::AuthorizationCode(_) => Err(DestinationError::InvalidRequest(
                "the webhook destination does not use OAuth; configure the receiver's token directly".into(),
            )),
            Grant::Refresh(_) => Err(DestinationError::Unauthorized(
                "webhook tokens cannot be refreshed; configure a new token for this connection".into(),
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

    fn upsert_audience(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        spec: AudienceSpec,
    ) -> Result<UpsertOutcome, DestinationError> {
        delivery::upsert_audience(&WasmHost, &config, &creds, &account_id, &spec).map(UpsertOutcome::Ready)
    }

    fn add_users(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        target: AudienceTarget,
        users: Vec<PreparedUser>,
    ) -> Result<BatchOutcome, DestinationError> {
        delivery::write_users(&WasmHost, &config, &creds, &account_id, &target, Operation::Add, &users)
    }

    fn remove_users(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        target: AudienceTarget,
        users: Vec<PreparedUser>,
    ) -> Result<BatchOutcome, DestinationError> {
        delivery::write_users(&WasmHost, &config, &creds, &account_id, &target, Operation::Remove, &users)
    }
}

// Only in the component: natively the exported symbol names (`audience:destination/...`) cannot
// be linked into a cdylib, and native builds exist only for unit tests.
#[cfg(target_arch = "wasm32")]
audience_plugin_sdk::export!(WebhookDestination);
