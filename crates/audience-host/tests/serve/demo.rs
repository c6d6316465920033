//! `audience-host demo` as a user runs it: one process, no setup, figures that add up — for
//! Pinterest alone, Google alone (users submitted first, synced once Google finished), and all
//! three partners side by side.

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

/// Run `audience-host demo` with `args` and `--json`; its figures.
fn demo_json(args: &[&str]) -> serde_json::Value {
    let output = Command::new(env!("CARGO_BIN_EXE_audience-host"))
        .arg("demo")
        .args(args)
        .arg("--json")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "demo failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_str(stdout.trim()).expect("one JSON object")
}

fn count(figures: &serde_json::Value, key: &str) -> u64 {
    figures[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {figures}"))
}

#[test]
fn the_google_demo_shows_users_submitted_then_synced_and_the_sandbox_agrees() {
    let figures = demo_json(&["--destination", "google", "--users", "20000", "--flush-ms", "1000"]);
    let n = |key: &str| count(&figures, key);
    assert_eq!(n("entered"), 20_000);
    assert_eq!(n("synced") + n("not_synced"), n("entered"));
    assert_eq!(n("sandbox_members"), n("synced"), "members equal Synced: {figures}");
    // The run ends only when nothing is pending, in flight or submitted.
    assert_eq!((n("pending"), n("submitted"), n("errored")), (0, 0, 0));
    // Google finishes requests later: users were submitted first, and the host asked.
    assert!(n("max_submitted") > 0, "nobody was ever submitted: {figures}");
    assert!(n("status_checks") > 0, "no requestStatus:retrieve: {figures}");
    // Every 20th user has only an unusable email; every 50th only a phone, which Google matches.
    let expected_not_synced = (0..20_000u64).filter(|i| i % 20 == 19 && i % 50 != 49).count() as u64;
    assert_eq!(n("not_synced"), expected_not_synced);
    assert!(n("max_members_per_request") <= 10_000);
    assert_eq!(n("quota_refusals"), 0);
}

#[test]
fn the_side_by_side_demo_delivers_to_pinterest_meta_and_google_at_once() {
    let figures = demo_json(&["--destination", "all", "--users", "5000", "--flush-ms", "500"]);
    for partner in ["pinterest", "meta", "google"] {
        let side = &figures[partner];
        let n = |key: &str| count(side, key);
        assert_eq!(n("entered"), 5_000, "{partner}");
        assert_eq!(n("synced") + n("not_synced"), n("entered"), "{partner}: {side}");
        assert_eq!(n("sandbox_members"), n("synced"), "{partner}: members equal Synced: {side}");
        assert_eq!((n("pending"), n("errored")), (0, 0), "{partner}: {side}");
    }
    assert_eq!(count(&figures["google"], "submitted"), 0);
    assert!(count(&figures["google"], "max_submitted") > 0);
}

/// The compiled Pinterest plugin of contract 0.1.0, kept as it shipped.
const PINTEREST_0_1_0: &[u8] = include_bytes!("../../../../tests/fixtures/pinterest-0.1.0.wasm");

/// The components `plugin inspect` and `plugin test` are checked on: (file name, bytes,
/// contract version, users per request).
fn shipped_components() -> [(&'static str, &'static [u8], &'static str, u64); 4] {
    [
        ("pinterest.wasm", audience_plugin_artifacts::PINTEREST, "0.2.0", 1900),
        ("meta.wasm", audience_plugin_artifacts::META, "0.2.0", 10_000),
        ("webhook.wasm", audience_plugin_artifacts::WEBHOOK, "0.2.0", 1000),
        ("pinterest-0.1.0.wasm", PINTEREST_0_1_0, "0.1.0", 1900),
    ]
}

#[test]
fn inspect_shows_the_manifest_and_contract_of_each_component_and_refuses_a_non_component() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, version, batch) in shipped_components() {
        let good = dir.path().join(name);
        std::fs::write(&good, bytes).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_audience-host"))
            .args(["plugin", "inspect", "--json", "--cache-dir"])
            .arg(dir.path().join("cache"))
            .arg(&good)
            .output()
            .unwrap();
        assert!(output.status.success(), "{name}: {}", String::from_utf8_lossy(&output.stderr));
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(value["world"], format!("audience:destination/destination@{version}"), "{name}");
        assert_eq!(value["contract_version"], version, "{name}");
        assert_eq!(value["manifest"]["limits"]["max_batch_size"], batch, "{name}");
    }

    let bad = dir.path().join("module.wasm");
    std::fs::write(&bad, b"\0asm\x01\0\0\0").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_audience-host"))
        .args(["plugin", "inspect", "--no-cache"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("core WebAssembly module"));
}

#[test]
fn plugin_test_passes_each_shipped_component_of_either_contract() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, version, _) in shipped_components() {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_audience-host"))
            .args(["plugin", "test", "--json", "--cache-dir"])
            .arg(dir.path().join("cache"))
            .arg(&path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{name} (contract {version}) fails conformance:\n{report}");
    }
}
