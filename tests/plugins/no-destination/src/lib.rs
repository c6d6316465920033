//! A valid component that exports something other than a destination, so the host's tests can
//! check that it is refused with a message naming the missing export.

#![allow(unsafe_code, reason = "the component ABI glue that wit-bindgen's export! generates is unsafe by construction")]
#![allow(missing_docs, reason = "the bindings generate! writes here are undocumented")]
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

wit_bindgen::generate!({
    inline: "
        package example:other@1.0.0;
        world other { export greet: func() -> string; }
    ",
});

struct Other;

impl Guest for Other {
    fn greet() -> String {
        "hello".into()
    }
}

// Exported names contain `:`, which only a wasm target can link.
#[cfg(target_arch = "wasm32")]
export!(Other);
