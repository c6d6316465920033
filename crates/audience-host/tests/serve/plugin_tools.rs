//! `plugin inspect` and `plugin test` keep the compiled component in the compile cache: a
//! second run on the same component does not compile it again.

use std::path::Path;
use std::process::Command;

/// `plugin inspect --json` of `component` with `args`; its `compile_cache` word.
fn inspect(component: &Path, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_audience-host"))
        .args(["plugin", "inspect", "--json"])
        .args(args)
        .arg(component)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    value["compile_cache"].as_str().unwrap().to_string()
}

#[test]
fn inspect_compiles_a_component_once_into_the_cache_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let component = dir.path().join("webhook.wasm");
    std::fs::write(&component, audience_plugin_artifacts::WEBHOOK).unwrap();
    let cache = dir.path().join("cache");
    let flag = ["--cache-dir", cache.to_str().unwrap()];
    assert_eq!(inspect(&component, &flag), "miss");
    assert_eq!(inspect(&component, &flag), "hit", "the second run loads the compiled component");
    assert_eq!(inspect(&component, &["--no-cache"]), "off");

    // --config: the cache `serve` with that file uses.
    let config = dir.path().join("host.toml");
    let shared = dir.path().join("serve-cache");
    std::fs::write(&config, format!("[runtime]\ncache_dir = {:?}\n", shared.to_str().unwrap())).unwrap();
    let flag = ["--config", config.to_str().unwrap()];
    assert_eq!(inspect(&component, &flag), "miss");
    assert_eq!(inspect(&component, &flag), "hit");
    assert!(std::fs::read_dir(&shared).unwrap().next().is_some(), "the entry is in runtime.cache_dir");
}

#[test]
fn plugin_test_fills_the_cache_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let component = dir.path().join("webhook.wasm");
    std::fs::write(&component, audience_plugin_artifacts::WEBHOOK).unwrap();
    let cache = dir.path().join("cache");
    let output = Command::new(env!("CARGO_BIN_EXE_audience-host"))
        .args(["plugin", "test", "--cache-dir", cache.to_str().unwrap()])
        .arg(&component)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    // The component `plugin test` compiled is the one `inspect` then finds.
    let flag = ["--cache-dir", cache.to_str().unwrap()];
    assert_eq!(inspect(&component, &flag), "hit");
}
