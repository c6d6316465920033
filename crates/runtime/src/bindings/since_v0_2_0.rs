//! `audience:destination@0.2.0` (`wit/v0.2.0/destination.wit`): the current version, whose
//! types the rest of the host speaks.

#![allow(missing_docs, reason = "generated from the WIT, whose doc comments are the documentation")]

wasmtime::component::bindgen!({
    path: "../../wit/v0.2.0",
    world: "destination",
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [PartialEq],
});

/// The contract version this module binds.
pub const VERSION: &str = "0.2.0";
/// The first audience-host release that loads components of this version.
pub const MIN_HOST_VERSION: &str = "0.2.0";
