//! The hostile plugin family: one attack each, all the workspace's test component
//! (`tests/plugins/test-destination`) loaded under a name of its own with the `behaviour`
//! setting that makes it misbehave. The containment test (`serve` beside Pinterest) and
//! `audience-host bench containment` load the same family, so what the test checks and what
//! the benchmark measures are the same attacks.

/// One attack: the plugin's name (its `[plugins.NAME]` section and manifest name), what it
/// does, and the settings that make it do it (besides `name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attack {
    /// The plugin's name.
    pub name: &'static str,
    /// What it does, for reports.
    pub what: &'static str,
    /// Its settings.
    pub settings: &'static [(&'static str, &'static str)],
    /// The sync status the attack leads to once it has shown (`None`: it stays `active`).
    pub shows_as: Option<&'static str>,
}

/// Every attack of the family.
pub const ATTACKS: [Attack; 7] = [
    Attack {
        name: "hostile-spin",
        what: "spins in every write and declares 1,000 concurrent requests",
        settings: &[("behaviour", "loop"), ("max-concurrent-requests", "1000")],
        shows_as: Some("degraded"),
    },
    Attack {
        name: "hostile-memory",
        what: "allocates until the host refuses more memory",
        settings: &[("behaviour", "memory-bomb")],
        shows_as: Some("degraded"),
    },
    Attack {
        name: "hostile-crash",
        what: "panics in every write",
        settings: &[("behaviour", "panic")],
        shows_as: Some("degraded"),
    },
    Attack {
        name: "hostile-error",
        what: "answers a 4 MiB transient error",
        settings: &[("behaviour", "huge-error")],
        shows_as: None,
    },
    Attack {
        name: "hostile-gone",
        what: "answers a 4 MiB not-found",
        settings: &[("behaviour", "huge-error"), ("fail-with", "not-found")],
        shows_as: Some("broken"),
    },
    Attack {
        name: "hostile-logs",
        what: "logs 1,000 lines of 4 KiB per call",
        settings: &[("behaviour", "log-flood")],
        shows_as: None,
    },
    Attack {
        name: "hostile-leak",
        what: "logs, prints and returns its tokens and client secret",
        settings: &[("behaviour", "leak")],
        shows_as: None,
    },
];

/// The tokens a connection of `plugin` holds in the tests and benchmarks (access, refresh):
/// long enough to be recognised as secrets, distinct per plugin.
pub fn tokens(plugin: &str) -> (String, String) {
    (format!("access-{plugin}-0123456789"), format!("refresh-{plugin}-0123456789"))
}
