//! Host-side bindings of the `audience:destination` WIT package, one module per version.
//!
//! Why per version: a plugin compiled against an older contract must keep loading after the
//! contract moves on (the way Zed's extension host keeps old extensions working). Each version
//! gets its own generated module; the rest of the host speaks the newest version's types, and an
//! older version would be adapted to them at this boundary.

/// `audience:destination@0.1.0`, the current (and first) version.
#[allow(missing_docs)]
pub mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "destination",
        imports: { default: async | trappable },
        exports: { default: async },
        additional_derives: [PartialEq],
    });
}

/// The interface name a component must export, without the version.
pub const EXPORT_PREFIX: &str = "audience:destination/plugin@";

/// The contract versions this host can load.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0"];
