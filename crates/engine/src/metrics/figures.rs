//! The store's durable figures on `/metrics`: where users are, how old the oldest waiting one
//! is, how many syncs are broken, degraded or paused, how many connections need a person.
//!
//! Why sums and not one series per sync: a host of a platform runs thousands of syncs, and
//! per-sync series (13 of them per sync) made 65,109 series and a 13 s scrape at 5,000
//! connections, growing with the tenants rather than with the work. So the store sums its
//! counters per workspace and destination in a few `GROUP BY` statements, and the series are
//! per destination by default ([`MetricsDetail::Destination`]): their number depends on the
//! plugins loaded, not on the syncs. `detail = "workspace"` adds a `workspace` label (one set
//! per tenant); `detail = "sync"` also shows every sync's own figures, as before, at the
//! old cost. Per-sync figures are always in the API (`GET /v1/syncs/{id}`).
//!
//! The counters that only grow keep deleted syncs' users (the store keeps their totals), so
//! deleting a sync never makes a sum go down, which Prometheus would read as a reset.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use audience_store::{Counts, GroupBy, GroupFigures, Store, StoreError, SyncFigures};

use super::{ExportedMetric, escape};

/// How finely `/metrics` breaks the store's figures down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricsDetail {
    /// Per destination (label `destination`): a few series per plugin, whatever the number of
    /// workspaces and syncs. The default.
    #[default]
    Destination,
    /// Per workspace and destination (labels `destination`, `workspace`): a set of series per
    /// tenant.
    Workspace,
    /// Per sync for the user figures (labels `destination`, `workspace`, `sync`), per
    /// workspace for the rest; and `audience_batches_total` per sync,
    /// `audience_rate_limited_total` per connection. Costly: the series and the scrape grow
    /// with the syncs (13 series each). For hosts with few syncs.
    Sync,
}

/// What `/metrics` shows (`[engine.metrics]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// How finely the store's figures are broken down. Default `destination`.
    pub detail: MetricsDetail,
}

/// A family read off the users' counters: name, type, help, getter.
type Family = (&'static str, &'static str, &'static str, fn(&Counts) -> u64);

/// The families read off the users' counters, in the order rendered.
const COUNT_FAMILIES: [Family; 10] = [
    (
        "audience_users_entered_total",
        "counter",
        "Users who entered syncs (queued or not synced); deleted syncs' included.",
        |c| c.entered,
    ),
    (
        "audience_users_proceeded_total",
        "counter",
        "Users the intake accepted, including re-entries of a pending user; deleted syncs' included.",
        |c| c.proceeded,
    ),
    ("audience_users_synced_total", "counter", "Users the partner accepted; deleted syncs' included.", |c| c.synced),
    ("audience_users_not_synced_total", "counter", "Users with no usable match field; deleted syncs' included.", |c| {
        c.not_synced
    }),
    (
        "audience_users_errored_total",
        "counter",
        "Users refused for good or not delivered within the retry window; deleted syncs' included.",
        |c| c.errored,
    ),
    (
        "audience_users_deduplicated_total",
        "counter",
        "Re-entries of a user already pending, not queued twice; deleted syncs' included.",
        |c| c.deduplicated,
    ),
    (
        "audience_retries_total",
        "counter",
        "Delivery attempts that failed and were scheduled again (per user); deleted syncs' included.",
        |c| c.retries,
    ),
    ("audience_users_pending", "gauge", "Users waiting for a batch or a retry.", |c| c.pending),
    ("audience_users_in_flight", "gauge", "Users in a partner request right now.", |c| c.in_flight),
    (
        "audience_users_submitted",
        "gauge",
        "Users in a request the partner accepted but has not finished yet (asynchronous partners).",
        |c| c.submitted,
    ),
];

/// The age of the oldest user not yet delivered (name, help; a gauge).
const OLDEST_PENDING_AGE: (&str, &str) = (
    "audience_oldest_pending_age_seconds",
    "Age of the oldest user not yet delivered (pending, in flight or submitted); 0 when none waits.",
);

/// A family counting syncs or connections in a state: name, help, getter.
type StateFamily = (&'static str, &'static str, fn(&GroupFigures) -> u64);

/// The families counting syncs and connections, in the order rendered (gauges).
const STATE_FAMILIES: [StateFamily; 6] = [
    ("audience_syncs", "Syncs (deleted ones excluded).", |g| g.syncs),
    ("audience_syncs_broken", "Syncs the partner says lost their account or audience (status broken).", |g| g.broken),
    (
        "audience_syncs_degraded",
        "Syncs whose plugin failed several calls in a row: crashed, timed out, out of memory, broke the contract (status degraded).",
        |g| g.degraded,
    ),
    ("audience_syncs_paused", "Syncs paused by a person (status paused).", |g| g.paused),
    ("audience_connections", "Connections.", |g| g.connections),
    (
        "audience_connections_needing_reauthorization",
        "Connections whose credentials the partner refuses: a person must connect the account again.",
        |g| g.needs_reauthorization,
    ),
];

/// The families [`render`] renders.
pub(crate) fn families() -> impl Iterator<Item = ExportedMetric> {
    let counts = COUNT_FAMILIES.iter().map(|(name, kind, _, _)| ExportedMetric { name, kind });
    let age = std::iter::once(ExportedMetric { name: OLDEST_PENDING_AGE.0, kind: "gauge" });
    let states = STATE_FAMILIES.iter().map(|(name, _, _)| ExportedMetric { name, kind: "gauge" });
    counts.chain(age).chain(states)
}

/// The users' figures of one series.
struct Users {
    labels: Vec<(&'static str, String)>,
    counts: Counts,
    oldest_pending_at: Option<i64>,
}

/// The states of one series.
struct States {
    labels: Vec<(&'static str, String)>,
    group: GroupFigures,
}

fn add(into: &mut Counts, more: &Counts) {
    into.entered += more.entered;
    into.proceeded += more.proceeded;
    into.not_synced += more.not_synced;
    into.pending += more.pending;
    into.in_flight += more.in_flight;
    into.submitted += more.submitted;
    into.synced += more.synced;
    into.errored += more.errored;
    into.deduplicated += more.deduplicated;
    into.retries += more.retries;
}

fn earliest(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The groups summed per destination.
fn per_destination(groups: &[GroupFigures]) -> Vec<GroupFigures> {
    let mut out: BTreeMap<&str, GroupFigures> = BTreeMap::new();
    for g in groups {
        let sum = out
            .entry(&g.destination)
            .or_insert_with(|| GroupFigures { destination: g.destination.clone(), ..GroupFigures::default() });
        add(&mut sum.counts, &g.counts);
        sum.oldest_pending_at = earliest(sum.oldest_pending_at, g.oldest_pending_at);
        sum.syncs += g.syncs;
        sum.broken += g.broken;
        sum.degraded += g.degraded;
        sum.paused += g.paused;
        sum.connections += g.connections;
        sum.needs_reauthorization += g.needs_reauthorization;
    }
    out.into_values().collect()
}

fn group_labels(g: &GroupFigures, detail: MetricsDetail) -> Vec<(&'static str, String)> {
    match detail {
        MetricsDetail::Destination => vec![("destination", g.destination.clone())],
        MetricsDetail::Workspace | MetricsDetail::Sync => {
            vec![("destination", g.destination.clone()), ("workspace", g.workspace_id.clone())]
        }
    }
}

fn label_text(labels: &[(&'static str, String)]) -> String {
    let inner = labels.iter().map(|(k, v)| format!("{k}=\"{}\"", escape(v))).collect::<Vec<_>>().join(",");
    format!("{{{inner}}}")
}

/// The store-derived metrics, from the figures per workspace and destination (`groups`) and,
/// at [`MetricsDetail::Sync`], every sync's (`syncs`, ignored otherwise). `now_ms` dates the
/// queue ages.
pub(crate) fn render(groups: &[GroupFigures], syncs: &[SyncFigures], detail: MetricsDetail, now_ms: i64) -> String {
    let grouped = match detail {
        MetricsDetail::Destination => per_destination(groups),
        MetricsDetail::Workspace | MetricsDetail::Sync => groups.to_vec(),
    };
    let states: Vec<States> =
        grouped.iter().map(|g| States { labels: group_labels(g, detail), group: g.clone() }).collect();
    let users: Vec<Users> = match detail {
        MetricsDetail::Sync => syncs
            .iter()
            .map(|s| Users {
                labels: vec![
                    ("destination", s.sync.destination.clone()),
                    ("workspace", s.sync.workspace_id.clone()),
                    ("sync", s.sync.id.clone()),
                ],
                counts: s.counts,
                oldest_pending_at: s.oldest_pending_at,
            })
            .collect(),
        _ => grouped
            .iter()
            .map(|g| Users {
                labels: group_labels(g, detail),
                counts: g.counts,
                oldest_pending_at: g.oldest_pending_at,
            })
            .collect(),
    };
    let mut out = String::new();
    for (name, kind, help, get) in COUNT_FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for u in &users {
            let _ = writeln!(out, "{name}{} {}", label_text(&u.labels), get(&u.counts));
        }
    }
    let (name, help) = OLDEST_PENDING_AGE;
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for u in &users {
        let age = u.oldest_pending_at.map_or(0.0, |t| Duration::from_millis((now_ms - t).max(0) as u64).as_secs_f64());
        let _ = writeln!(out, "{name}{} {age}", label_text(&u.labels));
    }
    for (name, help, get) in STATE_FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for s in &states {
            let _ = writeln!(out, "{name}{} {}", label_text(&s.labels), get(&s.group));
        }
    }
    out
}

/// Reads the store's figures (one read of the sums; every sync's too at
/// [`MetricsDetail::Sync`]) and renders them.
pub(crate) async fn read_and_render(
    store: &dyn Store,
    detail: MetricsDetail,
    now_ms: i64,
) -> Result<String, StoreError> {
    let by = match detail {
        MetricsDetail::Destination => GroupBy::Destination,
        MetricsDetail::Workspace | MetricsDetail::Sync => GroupBy::Workspace,
    };
    let groups = store.group_figures(by).await?;
    let syncs = match detail {
        MetricsDetail::Sync => store.sync_figures().await?,
        MetricsDetail::Destination | MetricsDetail::Workspace => Vec::new(),
    };
    Ok(render(&groups, &syncs, detail, now_ms))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn group(workspace: &str, destination: &str, n: u64) -> GroupFigures {
        GroupFigures {
            workspace_id: workspace.into(),
            destination: destination.into(),
            syncs: n,
            broken: 1,
            degraded: 0,
            paused: 0,
            counts: Counts { entered: 10 * n, pending: n, ..Counts::default() },
            oldest_pending_at: Some(1_000 * n as i64),
            connections: 1,
            needs_reauthorization: u64::from(n.is_multiple_of(2)),
        }
    }

    /// The series lines (not comments) of a rendering.
    fn series(text: &str) -> Vec<&str> {
        text.lines().filter(|l| !l.starts_with('#')).collect()
    }

    fn value<'a>(text: &'a str, prefix: &str) -> &'a str {
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in\n{text}"));
        line.rsplit(' ').next().expect("a value")
    }

    #[test]
    fn per_destination_the_series_do_not_grow_with_workspaces_or_syncs() {
        let few: Vec<GroupFigures> = vec![group("ws_a", "pinterest", 1), group("ws_a", "meta", 1)];
        let many: Vec<GroupFigures> = (0..2_000)
            .flat_map(|i| [group(&format!("ws_{i}"), "pinterest", 3), group(&format!("ws_{i}"), "meta", 2)])
            .collect();
        let (few, many) = (
            render(&few, &[], MetricsDetail::Destination, 10_000),
            render(&many, &[], MetricsDetail::Destination, 10_000),
        );
        assert_eq!(series(&few).len(), series(&many).len(), "two destinations either way");
        assert_eq!(series(&many).len(), 2 * families().count());
        assert_eq!(value(&many, "audience_users_entered_total{destination=\"pinterest\"}"), "60000");
        assert_eq!(value(&many, "audience_syncs{destination=\"pinterest\"}"), "6000");
        assert_eq!(value(&many, "audience_syncs_broken{destination=\"meta\"}"), "2000");
        assert_eq!(value(&many, "audience_connections_needing_reauthorization{destination=\"meta\"}"), "2000");
        assert_eq!(value(&many, "audience_connections_needing_reauthorization{destination=\"pinterest\"}"), "0");
        // The oldest of all: entered at 2,000 ms (meta), 3,000 ms (pinterest).
        assert_eq!(value(&many, "audience_oldest_pending_age_seconds{destination=\"meta\"}"), "8");
        assert_eq!(value(&many, "audience_oldest_pending_age_seconds{destination=\"pinterest\"}"), "7");
    }

    #[test]
    fn per_workspace_each_workspace_has_its_series() {
        let groups = vec![group("ws_a", "pinterest", 1), group("ws_b", "pinterest", 2)];
        let text = render(&groups, &[], MetricsDetail::Workspace, 10_000);
        assert_eq!(series(&text).len(), 2 * families().count());
        assert_eq!(value(&text, "audience_users_pending{destination=\"pinterest\",workspace=\"ws_b\"}"), "2");
        assert_eq!(
            value(&text, "audience_oldest_pending_age_seconds{destination=\"pinterest\",workspace=\"ws_a\"}"),
            "9"
        );
        assert!(!text.contains("sync="), "{text}");
    }

    #[test]
    fn per_sync_the_users_are_per_sync_and_the_states_per_workspace() {
        let groups = vec![group("ws_a", "pinterest", 2)];
        let sync = |id: &str, pending: u64| SyncFigures {
            sync: audience_store::SyncRecord {
                id: id.into(),
                workspace_id: "ws_a".into(),
                connection_id: "conn_a".into(),
                destination: "pinterest".into(),
                account_id: "acct".into(),
                audience: audience_store::AudienceConfig {
                    name: "n".into(),
                    description: None,
                    create_if_missing: true,
                },
                audience_id: None,
                action: audience_store::SyncAction::Add,
                match_fields: Vec::new(),
                reentry: Default::default(),
                status: audience_store::SyncStatus::Active,
                status_reason: None,
                created_at: 0,
            },
            counts: Counts { pending, ..Counts::default() },
            oldest_pending_at: None,
        };
        let text = render(&groups, &[sync("sync_1", 4), sync("sync_\"2", 5)], MetricsDetail::Sync, 10_000);
        assert_eq!(
            value(&text, "audience_users_pending{destination=\"pinterest\",workspace=\"ws_a\",sync=\"sync_1\"}"),
            "4"
        );
        assert!(text.contains("sync=\"sync_\\\"2\"} 5"), "label values are escaped: {text}");
        assert_eq!(value(&text, "audience_syncs{destination=\"pinterest\",workspace=\"ws_a\"}"), "2");
        assert_eq!(
            value(
                &text,
                "audience_oldest_pending_age_seconds{destination=\"pinterest\",workspace=\"ws_a\",sync=\"sync_1\"}"
            ),
            "0"
        );
    }

    #[test]
    fn every_family_is_declared_once_even_with_no_figures() {
        let text = render(&[], &[], MetricsDetail::Destination, 0);
        let declared: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("# TYPE ")).collect();
        let names: BTreeSet<&str> = declared.iter().filter_map(|l| l.split(' ').next()).collect();
        assert_eq!(names.len(), declared.len());
        assert_eq!(names, families().map(|f| f.name).collect());
        assert!(series(&text).is_empty());
    }

    #[test]
    fn the_detail_is_read_from_the_configuration() {
        let config: MetricsConfig = serde_json::from_str(r#"{"detail": "workspace"}"#).expect("parses");
        assert_eq!(config.detail, MetricsDetail::Workspace);
        assert_eq!(MetricsConfig::default().detail, MetricsDetail::Destination);
        assert!(serde_json::from_str::<MetricsConfig>(r#"{"detail": "connection"}"#).is_err());
    }
}
