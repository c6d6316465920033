//! The whole conformance suite on this template's own component, in its own `cargo test`.
//!
//! Why here and not only in the host's tests: a partner who copies the template keeps this
//! file, and from then on `cargo test` tells them what `audience-host plugin test` would,
//! without a host binary. The test builds this crate for `wasm32-wasip2` with the cargo that
//! runs the tests, in a target directory of its own under cargo's `CARGO_TARGET_TMPDIR` (a
//! nested build in the outer target directory would wait for the lock `cargo test` holds), then
//! runs `audience_conformance::run` on the component: the same checks, the same sandbox and the
//! same scripted partner stand-in as `audience-host plugin test`.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a step that fails is a failed test")]

use std::path::{Path, PathBuf};
use std::process::Command;

use audience_conformance::{ConformanceOptions, run};

const TARGET: &str = "wasm32-wasip2";

/// Builds this crate's component (release, like the component you ship) and returns its path.
fn build_component() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("component");
    let package = env!("CARGO_PKG_NAME");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(manifest_dir)
        .args(["build", "--release", "--target", TARGET, "-p", package, "--target-dir"])
        .arg(&target_dir);
    // Flags meant for the native test build (or a coverage or lint driver) must not reach
    // the wasm build.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        cmd.env_remove(var);
    }
    let status = cmd.status().expect("cargo runs");
    assert!(
        status.success(),
        "building {package} for {TARGET} failed (is the target installed? `rustup target add {TARGET}`)"
    );
    target_dir.join(TARGET).join("release").join(format!("{}.wasm", package.replace('-', "_")))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_component_passes_every_conformance_check() {
    let component = std::fs::read(build_component()).expect("the component was written");
    let report = run(&component, ConformanceOptions::default()).await.expect("the suite runs");
    print!("{}", report.render_text());
    assert!(report.passed(), "{}", report.render_text());
    // Every check ran on a contract 0.2.0 component: none was skipped as not applicable.
    assert!(report.checks.len() >= 40, "only {} checks ran:\n{}", report.checks.len(), report.render_text());
    let skipped: Vec<&str> =
        report.checks.iter().filter(|c| c.reason.contains("not applicable")).map(|c| c.name.as_str()).collect();
    assert!(skipped.is_empty(), "skipped: {skipped:?}");
}
