//! The conformance suite against real components: the Pinterest plugin and the webhook
//! template pass it, and the deliberately broken plugin fails exactly the checks for its
//! faults, with reasons that name them.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "a test: a step that fails is a failed test")]

use std::path::Path;

use audience_conformance::{CheckResult, ConformanceOptions, Report, cli_main, run};
use audience_plugin_artifacts as artifacts;

async fn report(component: &[u8]) -> Report {
    run(component, ConformanceOptions::default()).await.expect("the suite runs")
}

fn check<'a>(report: &'a Report, name: &str) -> &'a CheckResult {
    report.check(name).unwrap_or_else(|| panic!("check {name} did not run:\n{}", report.render_text()))
}

fn assert_fails(report: &Report, name: &str, needles: &[&str]) {
    let check = check(report, name);
    assert!(!check.passed, "{name} should fail:\n{}", report.render_text());
    for needle in needles {
        assert!(check.reason.contains(needle), "{name}: reason {:?} should mention {needle:?}", check.reason);
    }
}

/// Every check of the documented suite, in order.
const SUITE: &[&str] = &[
    "describe.well-formed",
    "describe.limits",
    "describe.deterministic",
    "describe.no-network",
    "prepare.empty",
    "prepare.well-formed",
    "prepare.selected-fields",
    "prepare.huge",
    "prepare.odd-input",
    "prepare.deterministic",
    "prepare.normalises",
    "prepare.already-hashed",
    "prepare.no-network",
    "setup.audience-id",
    "batch.at-limit",
    "batch.over-limit",
    "errors.401",
    "errors.403",
    "errors.404",
    "errors.429-retry-after",
    "errors.429",
    "errors.500",
    "errors.502",
    "errors.503",
    "errors.timeout",
    "errors.400",
    "remove.contract",
    "errors.other-calls",
    "network.allow-list",
    "credentials.not-logged",
    "credentials.not-in-errors",
];

#[tokio::test]
async fn the_pinterest_plugin_passes() {
    let report = report(artifacts::PINTEREST).await;
    assert!(report.passed(), "{}", report.render_text());
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, SUITE);
    assert!(check(&report, "setup.audience-id").reason.contains("1000000001:1000000002:EMAIL"));
    assert!(check(&report, "prepare.already-hashed").reason.contains("email"));
}

#[tokio::test]
async fn the_webhook_template_passes() {
    let report = report(artifacts::WEBHOOK).await;
    assert!(report.passed(), "{}", report.render_text());
    assert_eq!(report.checks.len(), SUITE.len());
    assert!(check(&report, "setup.audience-id").reason.contains("conformance-audience"));
}

#[tokio::test]
async fn the_broken_plugin_fails_with_the_matching_reasons() {
    let report = report(artifacts::BROKEN).await;
    assert!(!report.passed());
    // Wrong error mapping: 404 must be not-found, it says transient.
    assert_fails(&report, "errors.404", &["HTTP 404", "not-found", "transient"]);
    // Oversized batches: 20 users in one request against a declared limit of 10.
    assert_fails(&report, "batch.over-limit", &["carried 20 users", "max-batch-size of 10"]);
    // A network call in prepare-users, refused by the sandbox.
    assert_fails(&report, "prepare.no-network", &["prepare-users tried", "telemetry.broken.example"]);
    assert_fails(&report, "network.allow-list", &["telemetry.broken.example"]);
    // The token in its logs, reported without repeating it.
    assert_fails(&report, "credentials.not-logged", &["the access token appeared in", "<the access token>"]);
    assert!(!report.render_text().contains("conformance-secret-token-"), "{}", report.render_text());

    // Everything else it does right, so each failure points at one fault.
    let faults =
        ["errors.404", "batch.over-limit", "prepare.no-network", "network.allow-list", "credentials.not-logged"];
    let unexpected: Vec<&CheckResult> = report.failures().filter(|c| !faults.contains(&c.name.as_str())).collect();
    assert!(unexpected.is_empty(), "unexpected failures: {unexpected:#?}");
    for name in ["errors.401", "errors.429-retry-after", "errors.timeout", "batch.at-limit", "prepare.deterministic"] {
        assert!(check(&report, name).passed, "{name}:\n{}", report.render_text());
    }
}

#[tokio::test]
async fn the_json_report_is_machine_readable() {
    let report = report(artifacts::BROKEN).await;
    let json: serde_json::Value = serde_json::from_str(&report.render_json()).expect("valid JSON");
    assert_eq!(json["plugin"], "broken");
    assert_eq!(json["all_passed"], false);
    assert_eq!(json["checks"].as_array().map(Vec::len), Some(SUITE.len()));
    let failed = json["failed_count"].as_u64().unwrap_or_default();
    assert_eq!(failed as usize, report.failures().count());
    assert!(report.render_text().ends_with(&format!("{} passed, {failed} failed\n", SUITE.len() - failed as usize)));
}

#[tokio::test]
async fn the_cli_entry_reports_pass_or_fail() {
    let broken = cli_main(Path::new(artifacts::BROKEN_PATH), true, ConformanceOptions::default()).await;
    assert!(matches!(broken, Ok(false)), "{broken:?}");
    let missing = cli_main(Path::new("/nonexistent/plugin.wasm"), false, ConformanceOptions::default()).await;
    assert!(missing.is_err());
    let not_wasm = run(b"not a component", ConformanceOptions::default()).await;
    assert!(not_wasm.is_err());
}

#[tokio::test]
async fn a_wrong_audience_id_is_reported_not_guessed_around() {
    let options =
        ConformanceOptions { audience_id: Some("not-a-pinterest-id".into()), ..ConformanceOptions::default() };
    let report = run(artifacts::PINTEREST, options).await.expect("the suite runs");
    assert_fails(&report, "setup.audience-id", &["--audience-id", "invalid-request"]);
    assert_fails(&report, "errors.404", &["setup.audience-id"]);
    assert!(check(&report, "prepare.deterministic").passed);
}

/// The runtime's own test fixture is not a conformant destination, and the suite says where:
/// it keeps identifiers of kinds it never declared, and maps every non-2xx to `transient`.
#[tokio::test]
async fn the_runtime_test_fixture_fails_where_it_cuts_corners() {
    let options = ConformanceOptions {
        settings: vec![("url".into(), "{base-url}/batch".into())],
        ..ConformanceOptions::default()
    };
    let report = run(artifacts::TEST_DESTINATION, options).await.expect("the suite runs");
    assert_fails(&report, "prepare.selected-fields", &["phone"]);
    assert_fails(&report, "errors.404", &["not-found", "transient"]);
    assert_fails(&report, "errors.429-retry-after", &["rate-limited(7000 ms)"]);
    // It POSTs only the batch size, so the suite cannot count users and says so.
    assert_fails(&report, "batch.at-limit", &["verbatim"]);
    for name in ["describe.well-formed", "prepare.deterministic", "prepare.no-network", "errors.503", "errors.timeout"]
    {
        assert!(check(&report, name).passed, "{name}:\n{}", report.render_text());
    }
}

/// A plugin that crashes is reported with what it wrote to stderr, so the author sees why.
#[tokio::test]
async fn a_crash_is_reported_with_the_plugins_own_words() {
    let options =
        ConformanceOptions { settings: vec![("behaviour".into(), "panic".into())], ..ConformanceOptions::default() };
    let report = run(artifacts::TEST_DESTINATION, options).await.expect("the suite runs");
    assert_fails(&report, "setup.audience-id", &["the plugin crashed", "test-destination was asked to panic"]);
}
