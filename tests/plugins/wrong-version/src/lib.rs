//! A component that exports `audience:destination/plugin@9.0.0`, a version the host does
//! not know, so the host's tests can check that it is refused with a message naming the version.

#![allow(unsafe_code, reason = "the component ABI glue that wit-bindgen's export! generates is unsafe by construction")]
#![allow(missing_docs, reason = "the bindings generate! writes here are undocumented")]
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

wit_bindgen::generate!({
    inline: "
        package audience:destination@9.0.0;
        interface plugin { describe: func() -> string; }
        world destination { export plugin; }
    ",
});

struct Future;

impl exports::audience::destination::plugin::Guest for Future {
    fn describe() -> String {
        "from the future".into()
    }
}

// Exported names contain `:`, which only a wasm target can link.
#[cfg(target_arch = "wasm32")]
export!(Future);
