//! Builds the workspace's destination components for `wasm32-wasip2`, so that a plain
//! `cargo build` / `cargo test` is all a user ever runs (the same approach as wasmtime's own
//! `test-programs` crate). The nested cargo uses its own target directory inside the workspace's
//! `target/`, so it neither waits on the outer build's lock nor rebuilds from scratch each time.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (constant name, cargo package, crate directory relative to the workspace root)
const GUESTS: &[(&str, &str, &str)] = &[
    ("PINTEREST", "pinterest-destination", "plugins/pinterest"),
    ("META", "meta-destination", "plugins/meta"),
    ("GOOGLE", "google-destination", "plugins/google"),
    ("TEST_DESTINATION", "test-destination", "tests/plugins/test-destination"),
    ("WRONG_VERSION", "wrong-version", "tests/plugins/wrong-version"),
    ("NO_DESTINATION", "no-destination", "tests/plugins/no-destination"),
    ("WEBHOOK", "webhook-destination", "examples/webhook-destination"),
    ("BROKEN", "broken-destination", "tests/plugins/broken-destination"),
    ("WASI_HTTP", "wasi-http-destination", "tests/plugins/wasi-http-destination"),
];

const TARGET: &str = "wasm32-wasip2";

/// A failure of this script: cargo shows it and stops the build.
type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir
        .ancestors()
        .nth(2)
        .ok_or("plugins/artifacts must sit two levels below the workspace root")?
        .to_path_buf();
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    let target_dir = workspace_target_dir(&out_dir).join("plugins");

    for path in ["wit", "plugins/sdk", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    for (_, _, dir) in GUESTS {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root).args(["build", "--release", "--target", TARGET, "--target-dir"]).arg(&target_dir);
    for (_, package, _) in GUESTS {
        cmd.args(["-p", package]);
    }
    // Flags meant for the host build (or a lint driver) must not leak into the wasm build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().map_err(|err| format!("cannot run cargo to build the {TARGET} plugins: {err}"))?;
    if !status.success() {
        return Err(format!(
            "building the plugins for {TARGET} failed (is the target installed? run `rustup target add {TARGET}`)"
        )
        .into());
    }

    let mut code = String::new();
    for (name, package, _) in GUESTS {
        let wasm = target_dir.join(TARGET).join("release").join(format!("{}.wasm", package.replace('-', "_")));
        if !wasm.exists() {
            return Err(format!("expected a component at {}", wasm.display()).into());
        }
        let path = wasm.display().to_string();
        writeln!(code, "/// Path of the `{package}` component.")?;
        writeln!(code, "pub const {name}_PATH: &str = {path:?};")?;
        writeln!(code, "/// Bytes of the `{package}` component.")?;
        writeln!(code, "pub const {name}: &[u8] = include_bytes!({path:?});")?;
    }
    std::fs::write(out_dir.join("artifacts.rs"), code)?;
    Ok(())
}

/// The workspace's target directory: the ancestor of OUT_DIR that cargo marked with CACHEDIR.TAG.
fn workspace_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| out_dir.join("target"))
}
