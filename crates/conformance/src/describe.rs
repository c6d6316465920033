//! Checks on `describe`: a well-formed manifest, sane limits, the same answer every time, and
//! no network use (the runtime runs `describe` with every host denied).
//!
//! Since contract 0.2.0 `describe` takes the operator's `plugin-config`, so the suite loads the
//! component several times: twice with its own configuration (`base-url` = the stand-in),
//! once without a `base-url`, and twice with [`OTHER_BASE_URL`]. The same configuration must
//! give the same manifest, and a plugin that builds its URLs from `base-url` must name that
//! URL's host in `default-hosts` (`describe.base-url`).

use super::report::CheckResult;
use super::suite::{Deferred, Suite, denied_lines, not_applicable_reason, summarize_denied};
use audience_runtime::Plugin;
use audience_runtime::types::{Limits, Manifest};

/// The second `base-url` the suite describes a 0.2.0 plugin with (never contacted).
pub const OTHER_BASE_URL: &str = "https://conformance-sandbox.example:8443";
/// [`OTHER_BASE_URL`]'s host and port.
const OTHER_HOST: (&str, u16) = ("conformance-sandbox.example", 8443);
/// The largest `max-submissions-per-audience` the suite accepts as sane.
pub const MAX_SANE_SUBMISSIONS: u32 = 1_000;

/// The component's other loads, each of which ran `describe`.
pub struct Loads {
    /// A second load with the suite's own configuration.
    pub second: Plugin,
    /// 0.2.0 only: a load without a `base-url`.
    pub without_base: Option<Plugin>,
    /// 0.2.0 only: two loads with `base-url` = [`OTHER_BASE_URL`].
    pub elsewhere: Option<(Plugin, Plugin)>,
}

impl Loads {
    /// Every other load.
    pub fn all(&self) -> Vec<&Plugin> {
        let mut all = vec![&self.second];
        all.extend(self.without_base.iter());
        if let Some((a, b)) = &self.elsewhere {
            all.extend([a, b]);
        }
        all
    }
}

/// The largest `max-batch-size` the suite accepts as sane.
pub const MAX_SANE_BATCH: u32 = 100_000;
/// The largest `requests-per-second` the suite accepts as sane.
pub const MAX_SANE_RPS: f64 = 10_000.0;
/// The largest `max-concurrent-requests` the suite accepts as sane.
pub const MAX_SANE_CONCURRENCY: u32 = 1_000;

/// Run the `describe.*` checks over the component's other `loads`.
pub fn run(suite: &mut Suite, loads: &Loads) {
    let manifest = suite.manifest.clone();
    let base_url = suite.config.base_url.clone();
    let mut problems = manifest_problems(&manifest, base_url.as_deref());
    if !suite.is_v0_1_0() {
        problems.extend(kind_name_problems(&manifest));
    }
    suite.push(CheckResult::from_problems(
        "describe.well-formed",
        &problems,
        format!(
            "{} {} ({}), {} identifier kind(s)",
            manifest.name,
            manifest.version,
            manifest.display_name,
            manifest.identifiers.len()
        ),
    ));
    let limits = &manifest.limits;
    let mut summary = format!(
        "max-batch-size {}, {} requests/s, {} concurrent",
        limits.max_batch_size, limits.requests_per_second, limits.max_concurrent_requests
    );
    if limits.max_submissions_per_audience > 0 {
        summary.push_str(&format!(", {} submission(s) per audience", limits.max_submissions_per_audience));
    }
    if let Some(rps) = limits.app_requests_per_second {
        summary.push_str(&format!(", {rps} requests/s per application"));
    }
    suite.push(CheckResult::from_problems("describe.limits", &limit_problems(limits), summary));
    suite.push(deterministic(&manifest, loads));
    let mut denied = denied_lines(&suite.logs());
    for other in loads.all() {
        denied.extend(denied_lines(&other.captured_logs()));
    }
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
    derived_hosts(suite, loads);
}

fn deterministic(manifest: &Manifest, loads: &Loads) -> CheckResult {
    if loads.second.manifest() != manifest {
        return CheckResult::fail(
            "describe.deterministic",
            "two loads of the same component with the same plugin-config returned different manifests",
        );
    }
    match &loads.elsewhere {
        None => CheckResult::pass("describe.deterministic", "two loads described the plugin identically"),
        Some((a, b)) if a.manifest() == b.manifest() => CheckResult::pass(
            "describe.deterministic",
            "two loads with the same plugin-config described the plugin identically (with two different base-urls)",
        ),
        Some(_) => CheckResult::fail(
            "describe.deterministic",
            format!(
                "two loads with base-url {OTHER_BASE_URL} (and otherwise the same plugin-config) returned different manifests"
            ),
        ),
    }
}

/// Whether `hosts` lets a plugin reach `host` on `port` (an entry naming the host, with that
/// port or none, or a wildcard over it).
pub fn names_host(hosts: &[String], host: &str, port: u16) -> bool {
    hosts.iter().any(|entry| {
        let entry = entry.trim().to_ascii_lowercase();
        let (name, entry_port) = match entry.rsplit_once(':') {
            Some((name, p)) if p.parse::<u16>().is_ok() => (name.to_string(), p.parse::<u16>().ok()),
            _ => (entry.clone(), None),
        };
        let name_ok = match name.strip_prefix("*.") {
            Some(suffix) => host.strip_suffix(suffix).is_some_and(|prefix| prefix.ends_with('.')),
            None => name == host,
        };
        name_ok && entry_port.is_none_or(|p| p == port)
    })
}

fn derived_hosts(suite: &mut Suite, loads: &Loads) {
    const NAME: &str = "describe.base-url";
    let (Some(without), Some((elsewhere, _))) = (&loads.without_base, &loads.elsewhere) else {
        suite.push(CheckResult::pass(NAME, not_applicable_reason(&suite.version)));
        return;
    };
    let here = suite.manifest.default_hosts.clone();
    let none = without.manifest().default_hosts.clone();
    let there = elsewhere.manifest().default_hosts.clone();
    let base = suite.stand_in.base_url();
    let (host, port) = suite.stand_in.host_and_port();
    if here == none && there == none {
        if here.is_empty() {
            suite.push(CheckResult::pass(
                NAME,
                "default-hosts is empty with and without a base-url: the operator's allow-list decides",
            ));
        } else {
            suite.defer(NAME, Deferred::BaseUrl { hosts: here });
        }
        return;
    }
    let mut problems = Vec::new();
    if !names_host(&here, &host, port) {
        problems.push(format!("with base-url {base}, default-hosts {here:?} does not name {host}"));
    }
    if !names_host(&there, OTHER_HOST.0, OTHER_HOST.1) {
        problems
            .push(format!("with base-url {OTHER_BASE_URL}, default-hosts {there:?} does not name {}", OTHER_HOST.0));
    }
    suite.push(CheckResult::from_problems(
        NAME,
        &problems,
        format!("default-hosts follows base-url: none → {none:?}, {base} → {here:?}, {OTHER_BASE_URL} → {there:?}"),
    ));
}

/// The verdict of a deferred `describe.base-url`: `hosts` did not react to `base-url`; that is
/// wrong only for a plugin that takes one (`reached_stand_in`: its requests reached the
/// stand-in, which only `base-url` pointed at).
pub fn base_url_verdict(hosts: &[String], reached_stand_in: bool, base: &str) -> CheckResult {
    if reached_stand_in {
        CheckResult::fail(
            "describe.base-url",
            format!(
                "the plugin builds its requests from base-url (they reached the stand-in at {base}), but default-hosts \
                 is {hosts:?} with that base-url, with {OTHER_BASE_URL} and with none; with a base-url it must name \
                 that URL's host, or every operator pointing it at a sandbox must allow the host by hand"
            ),
        )
    } else {
        CheckResult::pass(
            "describe.base-url",
            format!(
                "default-hosts is {hosts:?} whatever the base-url, and no request reached the stand-in through \
                 base-url (the plugin does not take one)"
            ),
        )
    }
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

/// Identifier kind names that are not lowercase ASCII letters, digits and '-' (contract 0.2.0).
pub fn kind_name_problems(manifest: &Manifest) -> Vec<String> {
    manifest
        .identifiers
        .iter()
        .filter(|kind| {
            kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
        .map(|kind| format!("identifier kind {kind:?} is not lowercase ASCII letters, digits and '-'"))
        .collect()
}

/// Whether `url` may be the authorization page: https, or (for a plugin pointed at a local
/// sandbox over plain http) on the `base` URL.
fn authorize_url_ok(url: &str, base: Option<&str>) -> bool {
    url.starts_with("https://")
        || base.is_some_and(|b| {
            let b = b.trim_end_matches('/');
            b.starts_with("http://") && url.strip_prefix(b).is_some_and(|rest| rest.starts_with(['/', '?']))
        })
}

/// What is wrong with `manifest`, apart from its limits; `base` is the `base-url` it was
/// described with (an authorization page on a plain-http sandbox is fine).
pub fn manifest_problems(manifest: &Manifest, base: Option<&str>) -> Vec<String> {
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
        if !authorize_url_ok(&oauth.authorize_url, base) {
            problems.push("oauth.authorize-url must be https (or on a plain-http base-url)".into());
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
    if limits.max_submissions_per_audience > MAX_SANE_SUBMISSIONS {
        problems.push(format!(
            "max-submissions-per-audience {} is not within 0..={MAX_SANE_SUBMISSIONS} (0 = no limit)",
            limits.max_submissions_per_audience
        ));
    }
    if let Some(app) = limits.app_requests_per_second
        && (!app.is_finite() || app <= 0.0 || app > MAX_SANE_RPS)
    {
        problems.push(format!("app-requests-per-second {app} is not a number within (0, {MAX_SANE_RPS}]"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use audience_runtime::types::{AudienceKeys, Features, OauthApp};

    fn limits(max_batch_size: u32, requests_per_second: f64, max_concurrent_requests: u32) -> Limits {
        Limits {
            max_batch_size,
            requests_per_second,
            max_concurrent_requests,
            max_submissions_per_audience: 0,
            app_requests_per_second: None,
        }
    }

    fn manifest() -> Manifest {
        Manifest {
            name: "demo-partner".into(),
            version: "1.2.3-beta.1".into(),
            display_name: "Demo".into(),
            identifiers: vec!["email".into()],
            audience_keys: AudienceKeys::OneKind,
            features: Features::REMOVAL,
            limits: limits(1000, 5.0, 2),
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
        assert_eq!(manifest_problems(&manifest(), None), Vec::<String>::new());
        assert_eq!(limit_problems(&manifest().limits), Vec::<String>::new());
        assert_eq!(kind_name_problems(&manifest()), Vec::<String>::new());
    }

    #[test]
    fn an_authorize_page_on_a_plain_http_sandbox_is_fine() {
        let mut m = manifest();
        if let Some(o) = m.oauth.as_mut() {
            o.authorize_url = "http://127.0.0.1:9/oauth?c={client-id}&r={redirect-uri}&s={scopes}&st={state}".into();
        }
        assert_eq!(manifest_problems(&m, Some("http://127.0.0.1:9")), Vec::<String>::new());
        assert_eq!(manifest_problems(&m, Some("http://127.0.0.1:99")).len(), 1);
        assert_eq!(manifest_problems(&m, None).len(), 1);
    }

    #[test]
    fn hosts_are_matched_with_ports_and_wildcards() {
        let hosts = vec!["127.0.0.1:8080".to_string(), "*.example.net".to_string(), "api.example.com".to_string()];
        assert!(names_host(&hosts, "127.0.0.1", 8080));
        assert!(!names_host(&hosts, "127.0.0.1", 8081));
        assert!(names_host(&hosts, "a.example.net", 443));
        assert!(!names_host(&hosts, "example.net", 443));
        assert!(names_host(&hosts, "api.example.com", 1));
        assert!(base_url_verdict(&hosts, true, "http://x").reason.contains("must name"));
        assert!(base_url_verdict(&hosts, false, "http://x").passed);
    }

    #[test]
    fn problems_are_named() {
        let mut m = manifest();
        m.name = "Demo Partner".into();
        m.version = "1.2".into();
        m.identifiers = vec!["email".into(), "email".into(), "E-Mail".into()];
        m.default_hosts = vec!["https://api.example.com/v1".into()];
        if let Some(o) = m.oauth.as_mut() {
            o.authorize_url = "http://p.example/oauth".into();
        }
        let mut problems = manifest_problems(&m, None);
        problems.extend(kind_name_problems(&m));
        let problems = problems.join("\n");
        for needle in ["name", "semver", "twice", "default-hosts", "https", "{state}", "{scopes}", "\"E-Mail\""] {
            assert!(problems.contains(needle), "{needle} missing in {problems}");
        }
        let mut limits = limits(0, f64::NAN, 5000);
        assert_eq!(limit_problems(&limits).len(), 3);
        limits.max_submissions_per_audience = 5000;
        limits.app_requests_per_second = Some(0.0);
        assert_eq!(limit_problems(&limits).len(), 5);
    }
}
