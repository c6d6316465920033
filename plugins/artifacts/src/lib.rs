//! The workspace's destination components, compiled for `wasm32-wasip2` by this crate's build
//! script. The host embeds [`PINTEREST`] so `audience-host demo` needs no plugin directory; the
//! tests load the others.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
