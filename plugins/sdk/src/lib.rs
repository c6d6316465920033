//! Guest-side SDK for audience-host destination plugins.
//!
//! A destination plugin is a WebAssembly component implementing the `audience:destination`
//! world (see `wit/destination.wit`). This crate generates the bindings once, so plugins do not
//! each run `wit-bindgen`, and adds the helpers every destination needs:
//!
//! - [`http`]: a request builder over the host's `http-client` import, a response type, and the
//!   default mapping of HTTP failures and statuses to `destination-error`;
//! - [`host`]: the [`Host`] trait, which puts the two imports (`http-client` and `log`) behind
//!   one seam so that a plugin's orchestration can be unit-tested natively with a fake host;
//! - [`identity`]: e-mail and device-id normalisation and SHA-256 hashing;
//! - [`paging`]: walking cursor/bookmark pages with a safety cap;
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

/// Bindings generated from `wit/destination.wit` (package `audience:destination@0.1.0`).
///
/// `PartialEq` is derived on the generated types so that plugins can compare results (an
/// expected `DestinationError`, say) in their unit tests.
#[allow(missing_docs, unsafe_code, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "destination",
        pub_export_macro: true,
        default_bindings_module: "audience_plugin_sdk::bindings",
        export_macro_name: "export",
        additional_derives: [PartialEq],
        generate_all,
    });
}

pub use bindings::audience::destination::http_client;
pub use bindings::audience::destination::log;
pub use bindings::audience::destination::types;
pub use bindings::export;
pub use bindings::exports::audience::destination::plugin::Guest;

pub mod host;
pub mod http;
pub mod identity;
pub mod logging;
pub mod paging;
pub mod text;

pub use host::{Host, WasmHost};
