//! Guest-side SDK for audience-host destination plugins.
//!
//! A destination plugin is a WebAssembly component implementing the `audience:destination@0.2.0`
//! world (see `wit/v0.2.0/destination.wit`). This crate generates the bindings once, so plugins
//! do not each run `wit-bindgen`, and adds the helpers every destination needs:
//!
//! - [`http`]: a request builder over the host's `http-client` import, a response type, and the
//!   default mapping of HTTP failures and statuses to `destination-error`;
//! - [`host`]: the [`Host`] trait, which puts the four imports (`http-client`, `log`, `hashing`,
//!   `pacing`) behind one seam so that a plugin's orchestration can be unit-tested natively with
//!   a fake host;
//! - [`kinds`]: the well-known identifier-kind names (`kinds::EMAIL`, ...), so plugins do not
//!   scatter string literals;
//! - [`identity`]: e-mail and device-id normalisation and SHA-256 hashing, natively or in bulk
//!   through the host's `hashing` import;
//! - [`paging`]: walking cursor/bookmark pages with a safety cap, and cutting short filtered
//!   pages for `search-audiences`;
//! - [`build`]: constructors for the contract's larger records with the usual defaults
//!   (an audience of unknown size, a batch outcome with no unattributed rows, limits, ...);
//! - [`config`]: reading `plugin-config.settings`;
//! - [`logging`]: `info!`-style macros over the `log` import;
//! - [`text`]: shortening partner messages and user values before they reach a log or an error.
//!
//! Everything except [`host::WasmHost`], [`http::RequestBuilder::send`] and the [`logging`]
//! functions is pure, so it runs in native unit tests (where the generated import functions are
//! `unreachable!()`).
//!
//! ```ignore
//! use audience_plugin_sdk::{export, Guest};
//! struct MyDestination;
//! impl Guest for MyDestination { /* describe, prepare_users, ... */ }
//! export!(MyDestination);
//! ```
//!
//! # What changed for 0.2.0
//!
//! The bindings now come from `wit/v0.2.0` (`audience:destination@0.2.0`); see that file's
//! header for the contract's changes. In this crate:
//!
//! - **Identifier kinds are strings.** [`types::IdentifierKind`] is `String`. Use the constants
//!   of [`kinds`] (`kinds::EMAIL`, `kinds::PHONE`, `kinds::MOBILE_AD_ID`, `kinds::IDFA`,
//!   `kinds::EXTERNAL_ID`, `kinds::FIRST_NAME`, ...) and compare with `kind == kinds::EMAIL`;
//!   [`kinds::is_valid_name`] checks a name's spelling, [`kinds::list`] builds a
//!   `Vec<IdentifierKind>` for a manifest. [`identity::kind_name`] is kept (it now returns the
//!   name it is given) so that 0.1.0 code ports by writing `kind_name(&kind)`.
//! - **[`Host`] has two more methods**, both with defaults so existing fakes keep compiling:
//!   [`Host::sha256_hex`] (`hashing.sha256-hex`; the default hashes natively, exactly as the
//!   host does) and [`Host::report_budget`] (`pacing.report-budget`; the default does nothing).
//!   [`WasmHost`] calls the real imports. [`hashing`] and [`pacing`] re-export the generated
//!   interfaces (`hashing::Normalization`, `pacing::Budget`).
//! - **[`identity`]** keeps its native functions and adds [`identity::normalize`] /
//!   [`identity::sha256_hex_normalized`] (the host's four normalisations, natively),
//!   [`identity::hash_all`] (many values in few host calls, chunked at
//!   [`identity::HOST_HASH_CHUNK`]), [`identity::hashed_emails`] /
//!   [`identity::hashed_device_ids`] (validate natively, hash in one host call) and
//!   [`identity::HashQueue`] (queue values while preparing users, hash them all at once, then
//!   pick each result by its ticket).
//! - **[`paging`]** adds [`paging::search_page`] (one short page of matching items starting at a
//!   cursor, for `search-audiences` over a partner that cannot filter by name),
//!   [`paging::matches_query`] (the contract's case-insensitive "name contains" test) and
//!   conversions from [`paging::Page`] to `audience-page` / `account-page`.
//! - **[`http`]**: unchanged API; `destination-error` has a new variant, `action-required`, that
//!   no status maps to by default (a partner's "accept the terms" answer is plugin-specific).
//! - **New [`build`] and [`config`] modules** (see above).

/// Bindings generated from `wit/v0.2.0/destination.wit` (package `audience:destination@0.2.0`).
///
/// `PartialEq` is derived on the generated types so that plugins can compare results (an
/// expected `DestinationError`, say) in their unit tests.
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.2.0",
        world: "destination",
        pub_export_macro: true,
        default_bindings_module: "audience_plugin_sdk::bindings",
        export_macro_name: "export",
        additional_derives: [PartialEq],
        generate_all,
    });
}

pub use bindings::audience::destination::hashing;
pub use bindings::audience::destination::http_client;
pub use bindings::audience::destination::log;
pub use bindings::audience::destination::pacing;
pub use bindings::audience::destination::types;
pub use bindings::export;
pub use bindings::exports::audience::destination::plugin::Guest;

pub mod build;
pub mod config;
pub mod countries;
pub mod host;
pub mod http;
pub mod identity;
pub mod kinds;
pub mod logging;
pub mod paging;
pub mod text;

pub use host::{Host, WasmHost};
