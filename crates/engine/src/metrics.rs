//! What an operator can alert on, in Prometheus text format.
//!
//! Two sources, on purpose. The per-sync user counts (entered, synced, pending, ...) come from
//! the store at scrape time: they are durable and exact, survive restarts and agree across
//! several hosts, which in-process counters would not. Request-level figures (partner status
//! codes, latency, plugin call time) are in-process, because they describe this process.

use std::fmt::Write as _;
use std::time::Duration;

use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

use audience_runtime::http_types::HttpError;

/// In-process metrics of the engine.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    rate_limited: IntCounterVec,
    batches: IntCounterVec,
    plugin_seconds: HistogramVec,
    lanes_owned: IntGauge,
    lane_takeovers: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let vec = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|err| unreachable!("static metric {name}: {err}"));
    let _ = registry.register(Box::new(vec.clone()));
    vec
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets);
    let vec = HistogramVec::new(opts, labels).unwrap_or_else(|err| unreachable!("static metric {name}: {err}"));
    let _ = registry.register(Box::new(vec.clone()));
    vec
}

impl Metrics {
    /// Fresh metrics with their own registry (several engines in one process do not mix).
    pub fn new() -> Self {
        let registry = Registry::new();
        let latency = vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        Self {
            requests: counter(
                &registry,
                "audience_partner_requests_total",
                "HTTP requests plugins sent to partners, by status class (2xx, 4xx, 429, 5xx) or failure (timeout, connection, denied, too_large).",
                &["destination", "status"],
            ),
            request_seconds: histogram(
                &registry,
                "audience_partner_request_duration_seconds",
                "Time from sending a partner request to its last byte.",
                &["destination"],
                latency.clone(),
            ),
            rate_limited: counter(
                &registry,
                "audience_rate_limited_total",
                "Partner answers that said to slow down (429), per connection.",
                &["destination", "connection"],
            ),
            batches: counter(
                &registry,
                "audience_batches_total",
                "Batches delivered, by outcome: synced, partial (some users refused), retry, errored.",
                &["destination", "sync", "outcome"],
            ),
            plugin_seconds: histogram(
                &registry,
                "audience_plugin_call_duration_seconds",
                "Time spent in a plugin call, including the partner requests it made.",
                &["destination", "function"],
                latency,
            ),
            lanes_owned: {
                let gauge = IntGauge::new(
                    "audience_lanes_owned",
                    "Connection lanes this host delivers for (with several hosts: the lanes it holds a lease on).",
                )
                .unwrap_or_else(|err| unreachable!("static metric audience_lanes_owned: {err}"));
                let _ = registry.register(Box::new(gauge.clone()));
                gauge
            },
            lane_takeovers: counter(
                &registry,
                "audience_lane_takeovers_total",
                "Lanes this host took over after another host's lease expired or was released, and lanes it lost.",
                &["event"],
            ),
            registry,
        }
    }

    /// How many lanes this host runs now.
    pub fn set_lanes_owned(&self, n: usize) {
        self.lanes_owned.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Count a lane event: `taken_over`, `released` or `lost`.
    pub fn lane_event(&self, event: &str) {
        self.lane_takeovers.with_label_values(&[event]).inc();
    }

    /// Count one partner request.
    pub fn partner_request(
        &self,
        destination: &str,
        connection: &str,
        outcome: Result<u16, &HttpError>,
        elapsed: Duration,
    ) {
        let status = match outcome {
            Ok(429) => "429",
            Ok(s) if s < 300 => "2xx",
            Ok(s) if s < 400 => "3xx",
            Ok(s) if s < 500 => "4xx",
            Ok(_) => "5xx",
            Err(HttpError::Timeout) => "timeout",
            Err(HttpError::Connection(_)) => "connection",
            Err(HttpError::Denied(_)) => "denied",
            Err(HttpError::TooLarge) => "too_large",
        };
        self.requests.with_label_values(&[destination, status]).inc();
        if status == "429" {
            self.rate_limited.with_label_values(&[destination, connection]).inc();
        }
        self.request_seconds.with_label_values(&[destination]).observe(elapsed.as_secs_f64());
    }

    /// Count one batch outcome.
    pub fn batch(&self, destination: &str, sync: &str, outcome: &str) {
        self.batches.with_label_values(&[destination, sync, outcome]).inc();
    }

    /// Time one plugin call.
    pub fn plugin_call(&self, destination: &str, function: &str, elapsed: Duration) {
        self.plugin_seconds.with_label_values(&[destination, function]).observe(elapsed.as_secs_f64());
    }

    /// The in-process metrics in Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        if TextEncoder::new().encode(&self.registry.gather(), &mut out).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// One sync's durable figures, rendered at scrape time.
#[derive(Debug, Clone)]
pub struct SyncFigures {
    /// Destination name.
    pub destination: String,
    /// Sync id.
    pub sync: String,
    /// Its counters.
    pub counts: audience_store::Counts,
    /// Age of its oldest pending user.
    pub oldest_pending_age: Option<Duration>,
    /// Whether it is broken.
    pub broken: bool,
}

/// A metric family read off a sync's counters: name, type, help, getter.
type Family = (&'static str, &'static str, &'static str, fn(&audience_store::Counts) -> u64);

/// Render the store-derived metrics: per-sync user counts, queue age, health.
pub fn render_store_figures(syncs: &[SyncFigures], connections: &[(String, String, bool)]) -> String {
    let mut out = String::new();
    let families: [Family; 9] = [
        ("audience_users_entered_total", "counter", "Users who entered the sync (queued or not synced).", |c| {
            c.entered
        }),
        (
            "audience_users_proceeded_total",
            "counter",
            "Users the intake accepted, including re-entries of a pending user.",
            |c| c.proceeded,
        ),
        ("audience_users_synced_total", "counter", "Users the partner accepted.", |c| c.synced),
        ("audience_users_not_synced_total", "counter", "Users with no usable match field.", |c| c.not_synced),
        (
            "audience_users_errored_total",
            "counter",
            "Users refused for good or not delivered within the retry window.",
            |c| c.errored,
        ),
        (
            "audience_users_deduplicated_total",
            "counter",
            "Re-entries of a user already pending, not queued twice.",
            |c| c.deduplicated,
        ),
        (
            "audience_retries_total",
            "counter",
            "Delivery attempts that failed and were scheduled again (per user).",
            |c| c.retries,
        ),
        ("audience_users_pending", "gauge", "Users waiting for a batch or a retry.", |c| c.pending),
        ("audience_users_in_flight", "gauge", "Users in a partner request right now.", |c| c.in_flight),
    ];
    for (name, kind, help, get) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in syncs {
            let _ = writeln!(
                out,
                "{name}{{destination=\"{}\",sync=\"{}\"}} {}",
                escape(&s.destination),
                escape(&s.sync),
                get(&s.counts)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP audience_oldest_pending_age_seconds Age of the oldest user not yet delivered.\n# TYPE audience_oldest_pending_age_seconds gauge"
    );
    for s in syncs {
        let age = s.oldest_pending_age.map_or(0.0, |a| a.as_secs_f64());
        let _ = writeln!(
            out,
            "audience_oldest_pending_age_seconds{{destination=\"{}\",sync=\"{}\"}} {age}",
            escape(&s.destination),
            escape(&s.sync)
        );
    }
    let _ = writeln!(
        out,
        "# HELP audience_sync_broken 1 when the partner says the sync's account or audience is gone.\n# TYPE audience_sync_broken gauge"
    );
    for s in syncs {
        let _ = writeln!(
            out,
            "audience_sync_broken{{destination=\"{}\",sync=\"{}\"}} {}",
            escape(&s.destination),
            escape(&s.sync),
            u8::from(s.broken)
        );
    }
    let _ = writeln!(
        out,
        "# HELP audience_connection_needs_reauthorization 1 when a person must connect the account again.\n# TYPE audience_connection_needs_reauthorization gauge"
    );
    for (destination, connection, needs) in connections {
        let _ = writeln!(
            out,
            "audience_connection_needs_reauthorization{{destination=\"{}\",connection=\"{}\"}} {}",
            escape(destination),
            escape(connection),
            u8::from(*needs)
        );
    }
    out
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
