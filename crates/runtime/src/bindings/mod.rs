//! Host-side bindings of the `audience:destination` WIT package, one module per version, the
//! way Zed's extension host keeps old extensions working.
//!
//! Why per version: a plugin compiled against an older contract must keep loading after the
//! contract moves on. Each version gets its own generated module (`since_v0_1_0`,
//! `since_v0_2_0`) with the oldest host release that speaks it (`MIN_HOST_VERSION`); the rest
//! of the host speaks only [`latest`]'s types, and each older version is adapted to them here,
//! at the boundary (`since_v0_1_0`'s `From` impls and its import implementations). Adding
//! 0.3.0 means: freeze `wit/v0.2.0`, add `wit/v0.3.0` and a `since_v0_3_0` module, point
//! `latest` at it, and write the adapter from 0.2.0.

pub mod since_v0_1_0;
pub mod since_v0_2_0;

/// The newest contract version: the types the rest of the host uses.
pub use since_v0_2_0 as latest;

/// The interface name a component must export, without the version.
pub const EXPORT_PREFIX: &str = "audience:destination/plugin@";

/// The contract versions this host can load, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &[since_v0_1_0::VERSION, since_v0_2_0::VERSION];
