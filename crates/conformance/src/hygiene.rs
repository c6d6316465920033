//! Checks over everything the plugin did during the run: no request to a host outside its
//! allow-list, and no credential in its log output or its error messages.

use super::report::CheckResult;
use super::suite::{Suite, denied_lines, excerpt, summarize_denied};
use audience_runtime::{LogLine, Plugin};

/// Run the `network.*` and `credentials.*` checks; `second` is the second load's plugin.
pub fn run(suite: &mut Suite, second: &Plugin) {
    let mut lines = suite.logs();
    lines.extend(second.captured_logs());

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
    for (name, secret) in suite.secrets.named() {
        if let Some(message) = suite.error_messages.iter().find(|m| m.contains(secret)) {
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

fn leaks_in_logs(suite: &Suite, lines: &[LogLine]) -> CheckResult {
    let mut leaks = Vec::new();
    for (name, secret) in suite.secrets.named() {
        let hits: Vec<&LogLine> = lines.iter().filter(|l| l.message.contains(secret)).collect();
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
