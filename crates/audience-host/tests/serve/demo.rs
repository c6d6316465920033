//! `audience-host demo` as a user runs it: one process, no setup, figures that add up.

use std::process::Command;

#[test]
fn the_demo_syncs_everyone_with_a_usable_email_and_the_sandbox_agrees() {
    let output = Command::new(env!("CARGO_BIN_EXE_audience-host"))
        .args(["demo", "--users", "20000", "--json", "--flush-ms", "1000"])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "demo failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let figures: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let n = |key: &str| figures[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {figures}"));
    assert_eq!(n("entered"), 20_000);
    assert_eq!(n("synced") + n("not_synced"), n("entered"));
    assert_eq!(n("sandbox_members"), n("synced"));
    assert_eq!((n("pending"), n("errored")), (0, 0));
    // Every 20th user has an unusable email and every 50th only a phone number.
    let expected_not_synced = (0..20_000u64).filter(|i| i % 50 == 49 || i % 20 == 19).count() as u64;
    assert_eq!(n("not_synced"), expected_not_synced);
    assert!(n("max_requests_in_one_second") <= 7);
    assert!(n("max_records_per_request") <= 1_900);
}

#[test]
fn inspect_shows_the_manifest_and_refuses_a_non_component() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("pinterest.wasm");
    std::fs::write(&good, audience_plugin_artifacts::PINTEREST).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_audience-host"))
        .args(["plugin", "inspect", "--json"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(output.status.success());
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["world"], "audience:destination/destination@0.1.0");
    assert_eq!(value["manifest"]["limits"]["max_batch_size"], 1900);

    let bad = dir.path().join("module.wasm");
    std::fs::write(&bad, b"\0asm\x01\0\0\0").unwrap();
    let output =
        Command::new(env!("CARGO_BIN_EXE_audience-host")).args(["plugin", "inspect"]).arg(&bad).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("core WebAssembly module"));
}
