//! A component that exports `audience:destination/plugin@9.0.0`, a version the host does
//! not know, so the host's tests can check that it is refused with a message naming the version.

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

export!(Future);
