//! Guest-side SDK for audience-host destination plugins.
//!
//! A destination plugin is a WebAssembly component implementing the `audience:destination`
//! world (see `wit/destination.wit`). This crate generates the bindings once, so plugins do not
//! each run `wit-bindgen`, and adds the helpers every destination needs.
//!
//! ```ignore
//! use audience_plugin_sdk::{export, Guest};
//! struct MyDestination;
//! impl Guest for MyDestination { /* describe, prepare_users, ... */ }
//! export!(MyDestination);
//! ```
#![deny(missing_docs)]

/// Bindings generated from `wit/destination.wit` (package `audience:destination@0.1.0`).
#[allow(missing_docs, clippy::all)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "destination",
        pub_export_macro: true,
        default_bindings_module: "audience_plugin_sdk::bindings",
        export_macro_name: "export",
        generate_all,
    });
}

pub use bindings::audience::destination::http_client;
pub use bindings::audience::destination::log;
pub use bindings::audience::destination::types;
pub use bindings::export;
pub use bindings::exports::audience::destination::plugin::Guest;
