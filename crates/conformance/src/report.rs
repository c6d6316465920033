//! The suite's result: one line per check, for people (`render_text`) and machines (JSON).

use serde::Serialize;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// The check's stable name (`errors.404`, `batch.over-limit`, ...), documented in
    /// `docs/plugin-guide.md`.
    pub name: String,
    /// Whether the plugin passed it.
    pub passed: bool,
    /// Why: what was observed, in words a plugin author can act on.
    pub reason: String,
}

impl CheckResult {
    /// A passed check.
    pub fn pass(name: &str, reason: impl Into<String>) -> Self {
        Self { name: name.to_string(), passed: true, reason: reason.into() }
    }

    /// A failed check.
    pub fn fail(name: &str, reason: impl Into<String>) -> Self {
        Self { name: name.to_string(), passed: false, reason: reason.into() }
    }

    /// Passed when `problems` is empty (reason `ok`), else failed with the problems joined.
    pub fn from_problems(name: &str, problems: &[String], ok: impl Into<String>) -> Self {
        if problems.is_empty() { Self::pass(name, ok) } else { Self::fail(name, problems.join("; ")) }
    }
}

/// The whole suite's result for one component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The plugin's `name` from its manifest.
    pub plugin: String,
    /// The plugin's `version` from its manifest.
    pub version: String,
    /// Whether every check passed (the same as [`Report::passed`]; kept in the JSON).
    pub all_passed: bool,
    /// How many checks passed.
    pub passed_count: usize,
    /// How many checks failed.
    pub failed_count: usize,
    /// Every check, in the order they ran.
    pub checks: Vec<CheckResult>,
}

impl Report {
    /// A report over `checks`.
    pub fn new(plugin: String, version: String, checks: Vec<CheckResult>) -> Self {
        let passed_count = checks.iter().filter(|c| c.passed).count();
        let failed_count = checks.len() - passed_count;
        Self { plugin, version, all_passed: failed_count == 0, passed_count, failed_count, checks }
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The check called `name`, if it ran.
    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The failed checks.
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| !c.passed)
    }

    /// The report for people: one `PASS`/`FAIL` line per check with its reason, then a total.
    pub fn render_text(&self) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = format!("conformance of plugin {} {}\n", self.plugin, self.version);
        for check in &self.checks {
            let mark = if check.passed { "PASS" } else { "FAIL" };
            out.push_str(&format!("{mark}  {:width$}  {}\n", check.name, check.reason));
        }
        out.push_str(&format!("{} passed, {} failed\n", self.passed_count, self.failed_count));
        out
    }

    /// The report as pretty-printed JSON (`--json`).
    pub fn render_json(&self) -> String {
        // Serialising plain strings, bools and integers cannot fail; keep a fallback anyway.
        serde_json::to_string_pretty(self)
            .unwrap_or_else(|err| format!(r#"{{"error":"could not encode the report: {err}"}}"#))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report::new(
            "demo".into(),
            "1.0.0".into(),
            vec![CheckResult::pass("describe.well-formed", "ok"), CheckResult::fail("errors.404", "got transient")],
        )
    }

    #[test]
    fn counts_and_text() {
        let r = report();
        assert!(!r.passed());
        assert!(!r.all_passed);
        assert_eq!((r.passed_count, r.failed_count), (1, 1));
        let text = r.render_text();
        assert!(text.contains("PASS  describe.well-formed  ok"), "{text}");
        assert!(text.contains("FAIL  errors.404            got transient"), "{text}");
        assert!(text.ends_with("1 passed, 1 failed\n"), "{text}");
        assert_eq!(r.failures().count(), 1);
        assert_eq!(r.check("errors.404").map(|c| c.passed), Some(false));
    }

    #[test]
    fn json_is_machine_readable() {
        let v: serde_json::Value = serde_json::from_str(&report().render_json()).unwrap();
        assert_eq!(v["plugin"], "demo");
        assert_eq!(v["all_passed"], false);
        assert_eq!(v["checks"][1]["name"], "errors.404");
        assert_eq!(v["checks"][1]["reason"], "got transient");
    }

    #[test]
    fn problems_make_a_failure() {
        assert!(CheckResult::from_problems("x", &[], "fine").passed);
        let failed = CheckResult::from_problems("x", &["a".into(), "b".into()], "fine");
        assert_eq!((failed.passed, failed.reason.as_str()), (false, "a; b"));
    }
}
