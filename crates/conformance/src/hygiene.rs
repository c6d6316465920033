//! Checks over everything the plugin did during the run: no request to a host outside its
//! allow-list, and no credential in its log output or its error messages. The end of the run
//! also decides the checks that needed all of it (`describe.base-url` for a plugin whose
//! default hosts ignore `base-url`).

use super::describe::{Loads, base_url_verdict};
use super::report::CheckResult;
use super::suite::{Deferred, Suite, denied_lines, excerpt, summarize_denied};
use audience_runtime::LogLine;

/// Decide the deferred checks, then run the `network.*` and `credentials.*` checks over the
/// plugin's logs and those of its other `loads`.
pub fn run(suite: &mut Suite, loads: &Loads) {
    decide_deferred(suite);
    let mut lines = suite.logs();
    for other in loads.all() {
        lines.extend(other.captured_logs());
    }

    let denied = denied_lines(&lines);
    suite.push(if denied.is_empty() {
        CheckResult::pass(
            "network.allow-list",
            format!("every request went to the stand-in ({} request(s) in all)", suite.stand_in.request_count()),
        )
    } else {
        CheckResult::fail(
            "network.allow-list",
            format!(
                "the host refused {} request(s) to hosts outside the allow-list: {}",
                denied.len(),
                excerpt(&suite.secrets.redact(&summarize_denied(&denied)), 300)
            ),
        )
    });

    suite.push(leaks_in_logs(suite, &lines));

    let mut leaks = Vec::new();
    for (name, _) in suite.secrets.named() {
        if let Some(message) = suite.error_messages.iter().find(|m| suite.secrets.shows(name, m)) {
            leaks.push(format!(
                "{name} appeared in an error message: {:?}",
                excerpt(&suite.secrets.redact(message), 160)
            ));
        }
    }
    let count = suite.error_messages.len();
    suite.push(CheckResult::from_problems(
        "credentials.not-in-errors",
        &leaks,
        format!("no credential in the {count} error message(s) returned"),
    ));
}

fn decide_deferred(suite: &mut Suite) {
    // Only base-url (or a setting the operator pointed at it) leads a plugin to the stand-in.
    let through_settings = suite.options.settings.iter().any(|(_, v)| v.contains("{base-url}"));
    let reached = suite.stand_in.request_count() > 0 && !through_settings;
    let base = suite.stand_in.base_url();
    for (index, what) in std::mem::take(&mut suite.deferred) {
        let check = match what {
            Deferred::BaseUrl { hosts } => base_url_verdict(&hosts, reached, &base),
        };
        if let Some(slot) = suite.checks.get_mut(index) {
            *slot = check;
        }
    }
}

fn leaks_in_logs(suite: &Suite, lines: &[LogLine]) -> CheckResult {
    let mut leaks = Vec::new();
    for (name, _) in suite.secrets.named() {
        let hits: Vec<&LogLine> = lines.iter().filter(|l| suite.secrets.shows(name, &l.message)).collect();
        if let Some(first) = hits.first() {
            leaks.push(format!(
                "{name} appeared in {} log line(s), e.g. {:?}",
                hits.len(),
                excerpt(&suite.secrets.redact(&first.message), 160)
            ));
        }
    }
    CheckResult::from_problems(
        "credentials.not-logged",
        &leaks,
        format!("no credential in the {} log line(s) captured", lines.len()),
    )
}
