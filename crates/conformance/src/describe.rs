//! Checks on `describe`: a well-formed manifest, sane limits, the same answer every time, and
//! no network use (the runtime runs `describe` with every host denied).

use super::report::CheckResult;
use super::suite::{Suite, denied_lines, summarize_denied};
use audience_runtime::Plugin;
use audience_runtime::types::{Limits, Manifest};

/// The largest `max-batch-size` the suite accepts as sane.
pub const MAX_SANE_BATCH: u32 = 100_000;
/// The largest `requests-per-second` the suite accepts as sane.
pub const MAX_SANE_RPS: f64 = 10_000.0;
/// The largest `max-concurrent-requests` the suite accepts as sane.
pub const MAX_SANE_CONCURRENCY: u32 = 1_000;

/// Run the `describe.*` checks; `second` is the same component loaded a second time.
pub fn run(suite: &mut Suite, second: &Plugin) {
    let manifest = suite.manifest.clone();
    suite.push(CheckResult::from_problems(
        "describe.well-formed",
        &manifest_problems(&manifest),
        format!(
            "{} {} ({}), {} identifier kind(s)",
            manifest.name,
            manifest.version,
            manifest.display_name,
            manifest.identifiers.len()
        ),
    ));
    let limits = &manifest.limits;
    suite.push(CheckResult::from_problems(
        "describe.limits",
        &limit_problems(limits),
        format!(
            "max-batch-size {}, {} requests/s, {} concurrent",
            limits.max_batch_size, limits.requests_per_second, limits.max_concurrent_requests
        ),
    ));
    let same = second.manifest() == &manifest;
    suite.push(if same {
        CheckResult::pass("describe.deterministic", "two loads described the plugin identically")
    } else {
        CheckResult::fail("describe.deterministic", "two loads of the same component returned different manifests")
    });
    let mut denied = denied_lines(&suite.logs());
    denied.extend(denied_lines(&second.captured_logs()));
    let requests = suite.stand_in.request_count();
    suite.push(if denied.is_empty() && requests == 0 {
        CheckResult::pass("describe.no-network", "describe made no request")
    } else {
        CheckResult::fail(
            "describe.no-network",
            format!(
                "describe tried the network ({} refused, {requests} sent): {}",
                denied.len(),
                summarize_denied(&denied)
            ),
        )
    });
}

fn is_semver(version: &str) -> bool {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_host(entry: &str) -> bool {
    let host = entry.strip_prefix("*.").unwrap_or(entry);
    !host.is_empty()
        && !host.contains("://")
        && !host.contains('/')
        && !host.chars().any(char::is_whitespace)
        && host == host.to_ascii_lowercase()
}

/// What is wrong with `manifest`, apart from its limits.
pub fn manifest_problems(manifest: &Manifest) -> Vec<String> {
    let mut problems = Vec::new();
    let name_ok = !manifest.name.is_empty()
        && manifest.name.len() <= 64
        && manifest.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !manifest.name.starts_with('-')
        && !manifest.name.ends_with('-');
    if !name_ok {
        problems.push(format!("name {:?} is not 1-64 lowercase letters, digits and inner '-'", manifest.name));
    }
    if !is_semver(&manifest.version) {
        problems.push(format!("version {:?} is not semver (MAJOR.MINOR.PATCH)", manifest.version));
    }
    if manifest.display_name.trim().is_empty() || manifest.display_name.chars().count() > 100 {
        problems.push("display-name must be 1-100 characters".into());
    }
    if manifest.identifiers.is_empty() {
        problems.push("identifiers is empty: the plugin can match nobody".into());
    }
    for (i, kind) in manifest.identifiers.iter().enumerate() {
        if manifest.identifiers[..i].contains(kind) {
            problems.push(format!("identifier kind {kind:?} is listed twice"));
        }
    }
    for host in &manifest.default_hosts {
        if !is_host(host) {
            problems.push(format!("default-hosts entry {host:?} is not a lowercase host name (no scheme, no path)"));
        }
    }
    if let Some(oauth) = &manifest.oauth {
        if !oauth.authorize_url.starts_with("https://") {
            problems.push("oauth.authorize-url must be https".into());
        }
        for placeholder in ["{client-id}", "{redirect-uri}", "{state}"] {
            if !oauth.authorize_url.contains(placeholder) {
                problems.push(format!("oauth.authorize-url lacks the {placeholder} placeholder"));
            }
        }
        if !oauth.scopes.is_empty() && !oauth.authorize_url.contains("{scopes}") {
            problems.push("oauth.authorize-url lacks {scopes} although scopes are listed".into());
        }
        if oauth.scopes.len() > 1 && oauth.scope_separator.is_empty() {
            problems.push("oauth.scope-separator is empty but several scopes are listed".into());
        }
    }
    problems
}

/// What is not sane about `limits`.
pub fn limit_problems(limits: &Limits) -> Vec<String> {
    let mut problems = Vec::new();
    if limits.max_batch_size == 0 || limits.max_batch_size > MAX_SANE_BATCH {
        problems.push(format!("max-batch-size {} is not within 1..={MAX_SANE_BATCH}", limits.max_batch_size));
    }
    let rps = limits.requests_per_second;
    if !rps.is_finite() || rps <= 0.0 || rps > MAX_SANE_RPS {
        problems.push(format!("requests-per-second {rps} is not a number within (0, {MAX_SANE_RPS}]"));
    }
    if limits.max_concurrent_requests == 0 || limits.max_concurrent_requests > MAX_SANE_CONCURRENCY {
        problems.push(format!(
            "max-concurrent-requests {} is not within 1..={MAX_SANE_CONCURRENCY}",
            limits.max_concurrent_requests
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use audience_runtime::types::{IdentifierKind, OauthApp};

    fn manifest() -> Manifest {
        Manifest {
            name: "demo-partner".into(),
            version: "1.2.3-beta.1".into(),
            display_name: "Demo".into(),
            identifiers: vec![IdentifierKind::Email],
            supports_removal: true,
            limits: Limits { max_batch_size: 1000, requests_per_second: 5.0, max_concurrent_requests: 2 },
            oauth: Some(OauthApp {
                authorize_url: "https://p.example/oauth?c={client-id}&r={redirect-uri}&s={scopes}&st={state}".into(),
                scopes: vec!["a".into(), "b".into()],
                scope_separator: " ".into(),
            }),
            default_hosts: vec!["api.example.com".into(), "*.example.net".into()],
        }
    }

    #[test]
    fn a_good_manifest_has_no_problems() {
        assert_eq!(manifest_problems(&manifest()), Vec::<String>::new());
        assert_eq!(limit_problems(&manifest().limits), Vec::<String>::new());
    }

    #[test]
    fn problems_are_named() {
        let mut m = manifest();
        m.name = "Demo Partner".into();
        m.version = "1.2".into();
        m.identifiers = vec![IdentifierKind::Email, IdentifierKind::Email];
        m.default_hosts = vec!["https://api.example.com/v1".into()];
        if let Some(o) = m.oauth.as_mut() {
            o.authorize_url = "http://p.example/oauth".into();
        }
        let problems = manifest_problems(&m).join("\n");
        for needle in ["name", "semver", "twice", "default-hosts", "https", "{state}", "{scopes}"] {
            assert!(problems.contains(needle), "{needle} missing in {problems}");
        }
        let limits = Limits { max_batch_size: 0, requests_per_second: f64::NAN, max_concurrent_requests: 5000 };
        assert_eq!(limit_problems(&limits).len(), 3);
    }
}
