//! `audience-host bench tenants` runs end to end: a `serve` process set up through the API with
//! a few connections, every user it was given synced, and every figure reported.

use std::process::Command;

#[test]
fn bench_tenants_sets_up_connections_through_the_api_and_reports_every_figure() {
    let output = Command::new(env!("CARGO_BIN_EXE_audience-host"))
        .args(["bench", "tenants", "--connections", "3", "--users-per-sync", "5", "--seconds", "1", "--json"])
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "bench failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    let row = &report["results"][0];
    let n = |key: &str| row[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {row}"));
    assert_eq!(n("connections"), 3.0);
    // At least 1,000 intake calls, a whole number of rounds over the 3 syncs.
    assert_eq!(n("intake_calls"), 1_002.0);
    assert_eq!(n("users"), 5_010.0);
    assert_eq!(row["settled"], true, "{row}");
    assert_eq!(n("users_synced"), 5_010.0);
    // One workspace holds the three syncs, and the list shows them.
    assert_eq!(n("list_syncs_returned"), 3.0);
    assert!(n("metrics_series") > 0.0);
    for key in [
        "idle_cpu_cores",
        "idle_cpu_cores_after_delivery",
        "bytes_per_idle_connection",
        "intake_p50_ms",
        "intake_p99_ms",
        "cpu_us_per_delivered_user",
        "metrics_ms",
        "list_syncs_limit_100_ms",
    ] {
        assert!(n(key) >= 0.0, "{key}: {row}");
    }
    assert!(n("intake_p99_ms") >= n("intake_p50_ms"));
}
