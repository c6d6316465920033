//! What an operator can alert on, in Prometheus text format.
//!
//! Two sources, on purpose. The user counts (entered, synced, pending, ...) come from the store
//! at scrape time, summed per destination (or workspace, see [`MetricsDetail`]): they are
//! durable and exact, survive restarts and agree across several hosts, which in-process
//! counters would not. Request-level figures (partner status codes, latency, plugin call time,
//! plugin failures) are in-process, because they describe this process. No series is per sync
//! or per connection unless `engine.metrics.detail = "sync"` asks for it: their number would
//! grow with the tenants.
//!
//! Every family either source exports is listed by [`Metrics::exported`], from the same
//! definitions that register or render it: the alert rules and the dashboard shipped under
//! `deploy/` are checked against that list, so they cannot query a metric the host does not
//! have.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::time::Instant;

use audience_runtime::PluginError;
use audience_runtime::http_types::HttpError;

mod figures;

pub(crate) use figures::read_and_render as render_store_figures;
pub use figures::{MetricsConfig, MetricsDetail};

/// A metric family the host exports on `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExportedMetric {
    /// Its name, as in the `# TYPE` line.
    pub name: &'static str,
    /// Its Prometheus type: `counter`, `gauge` or `histogram`.
    pub kind: &'static str,
}

impl ExportedMetric {
    /// The series names a query can select: the name itself, or for a histogram its
    /// `_bucket`, `_sum` and `_count` series.
    pub fn series(&self) -> Vec<String> {
        if self.kind == "histogram" {
            ["_bucket", "_sum", "_count"].iter().map(|suffix| format!("{}{suffix}", self.name)).collect()
        } else {
            vec![self.name.to_string()]
        }
    }
}

/// Every value of the `kind` label of `audience_plugin_failures_total`, one per variant of
/// [`PluginError`].
pub const PLUGIN_FAILURE_KINDS: [&str; 7] =
    ["trap", "timeout", "too_long", "memory_limit", "contract", "instantiate", "busy"];

/// How a failed plugin call is labelled in `audience_plugin_failures_total`.
pub fn plugin_failure_kind(err: &PluginError) -> &'static str {
    match err {
        PluginError::Trap(_) => "trap",
        PluginError::Timeout(_) => "timeout",
        PluginError::TooLong(_) => "too_long",
        PluginError::MemoryLimit { .. } => "memory_limit",
        PluginError::Contract(_) => "contract",
        PluginError::Instantiate(_) => "instantiate",
        PluginError::Busy { .. } => "busy",
    }
}

/// At most one WARN line per (destination, kind of failure) this often; the failures in
/// between are counted, and the next line says how many were not logged.
pub const PLUGIN_FAILURE_LOG_EVERY: Duration = Duration::from_secs(60);

/// The most bytes of a plugin-provided text the host puts in one log line.
pub const MAX_LOGGED_TEXT_BYTES: usize = 300;

/// `text` fit for a log line: cut to [`MAX_LOGGED_TEXT_BYTES`] on a character boundary (saying
/// how much was cut), control characters escaped so a plugin cannot forge lines.
pub(crate) fn loggable(text: &str) -> String {
    let mut end = text.len().min(MAX_LOGGED_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + 24);
    for c in text[..end].chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if end < text.len() {
        let _ = write!(out, "... [{} bytes cut]", text.len() - end);
    }
    out
}

/// Which plugin failures get a log line: the first of each (destination, kind), then at most
/// one per [`PLUGIN_FAILURE_LOG_EVERY`].
#[derive(Debug, Default)]
struct FailureLog {
    /// Per (destination, kind): when the last line was logged, and failures since not logged.
    windows: HashMap<(String, &'static str), (Instant, u64)>,
}

impl FailureLog {
    /// A failure at `now`: `Some(n)` to log it, saying `n` failures since the last line were
    /// not logged; `None` to count it silently.
    fn admit(&mut self, destination: &str, kind: &'static str, now: Instant) -> Option<u64> {
        match self.windows.get_mut(&(destination.to_string(), kind)) {
            Some((logged_at, suppressed)) if now.saturating_duration_since(*logged_at) < PLUGIN_FAILURE_LOG_EVERY => {
                *suppressed += 1;
                None
            }
            Some((logged_at, suppressed)) => {
                let not_logged = *suppressed;
                (*logged_at, *suppressed) = (now, 0);
                Some(not_logged)
            }
            None => {
                self.windows.insert((destination.to_string(), kind), (now, 0));
                Some(0)
            }
        }
    }
}

/// In-process metrics of the engine.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Whether batches are counted per sync and 429s per connection.
    per_sync: bool,
    /// The in-process families, as registered.
    families: Arc<Vec<ExportedMetric>>,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    rate_limited: IntCounterVec,
    batches: IntCounterVec,
    plugin_seconds: HistogramVec,
    plugin_failures: IntCounterVec,
    submission_checks: IntCounterVec,
    lanes_owned: IntGauge,
    lane_takeovers: IntCounterVec,
    lapsing: IntGaugeVec,
    /// The connections counted in `lapsing`, with their destination.
    lapsing_connections: Arc<Mutex<HashMap<String, String>>>,
    failure_log: Arc<Mutex<FailureLog>>,
    /// Pacing: see [`Pacing`].
    pacing: Pacing,
}

/// The pacing figures: how late requests leave after the limiter lets them go, the backoffs
/// after unexpected 429s, the API calls answered 429 instead of waiting. Per destination only:
/// a host runs thousands of connections.
#[derive(Clone)]
struct Pacing {
    send_delay: HistogramVec,
    backoffs: IntCounterVec,
    below_rate: IntGaugeVec,
    /// Per connection running below its configured rate: its destination and until when.
    below_rate_until: Arc<Mutex<HashMap<String, (String, Instant)>>>,
    api_paced_out: IntCounterVec,
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

/// Registers the in-process families and remembers each one's name and type.
struct Registrar {
    registry: Registry,
    families: Vec<ExportedMetric>,
}

impl Registrar {
    fn register<C: Collector + Clone + 'static>(&mut self, name: &'static str, kind: &'static str, c: C) -> C {
        let _ = self.registry.register(Box::new(c.clone()));
        self.families.push(ExportedMetric { name, kind });
        c
    }

    fn counter(&mut self, name: &'static str, help: &str, labels: &[&str]) -> IntCounterVec {
        let vec = IntCounterVec::new(Opts::new(name, help), labels)
            .unwrap_or_else(|err| unreachable!("static metric {name}: {err}"));
        self.register(name, "counter", vec)
    }

    fn histogram(&mut self, name: &'static str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets);
        let vec = HistogramVec::new(opts, labels).unwrap_or_else(|err| unreachable!("static metric {name}: {err}"));
        self.register(name, "histogram", vec)
    }

    fn gauge_vec(&mut self, name: &'static str, help: &str, labels: &[&str]) -> IntGaugeVec {
        let vec = IntGaugeVec::new(Opts::new(name, help), labels)
            .unwrap_or_else(|err| unreachable!("static metric {name}: {err}"));
        self.register(name, "gauge", vec)
    }

    fn gauge(&mut self, name: &'static str, help: &str) -> IntGauge {
        let gauge = IntGauge::new(name, help).unwrap_or_else(|err| unreachable!("static metric {name}: {err}"));
        self.register(name, "gauge", gauge)
    }
}

impl Metrics {
    /// Fresh metrics with their own registry (several engines in one process do not mix), per
    /// destination.
    pub fn new() -> Self {
        Self::with_detail(MetricsDetail::Destination)
    }

    /// Fresh metrics, per sync and per connection at [`MetricsDetail::Sync`], per destination
    /// otherwise.
    pub fn with_detail(detail: MetricsDetail) -> Self {
        let per_sync = detail == MetricsDetail::Sync;
        let mut r = Registrar { registry: Registry::new(), families: Vec::new() };
        let latency = vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        let requests = r.counter(
            "audience_partner_requests_total",
            "HTTP requests plugins sent to partners, by status class (2xx, 4xx, 429, 5xx) or failure (timeout, connection, denied, too_large).",
            &["destination", "status"],
        );
        let request_seconds = r.histogram(
            "audience_partner_request_duration_seconds",
            "Time from sending a partner request to its last byte.",
            &["destination"],
            latency.clone(),
        );
        let rate_limited = r.counter(
            "audience_rate_limited_total",
            "Partner answers that said to slow down (429) (per connection too at engine.metrics.detail = \"sync\").",
            if per_sync { &["destination", "connection"] } else { &["destination"] },
        );
        let batches = r.counter(
            "audience_batches_total",
            "Batches delivered, by outcome: synced, partial (some users refused), retry, errored (per sync too at engine.metrics.detail = \"sync\").",
            if per_sync { &["destination", "sync", "outcome"] } else { &["destination", "outcome"] },
        );
        let plugin_seconds = r.histogram(
            "audience_plugin_call_duration_seconds",
            "Time spent in a plugin call, including the partner requests it made.",
            &["destination", "function"],
            latency,
        );
        let plugin_failures = r.counter(
            "audience_plugin_failures_total",
            "Plugin calls that failed in the plugin itself (not a partner's answer), by function and kind: trap, timeout, too_long, memory_limit, contract, instantiate, busy (no instance free in time: the host's capacity).",
            &["destination", "function", "kind"],
        );
        let submission_checks = r.counter(
            "audience_submission_checks_total",
            "Questions to asynchronous partners about submitted requests, by answer: processing, finished, failed, error (the question itself failed; asked again later), given_up (not finished within the retry window).",
            &["destination", "answer"],
        );
        let lanes_owned = r.gauge(
            "audience_lanes_owned",
            "Connection lanes this host delivers for (with several hosts: the lanes it holds a lease on).",
        );
        let lane_takeovers = r.counter(
            "audience_lane_takeovers_total",
            "Lanes this host took over after another host's lease expired or was released, and lanes it lost.",
            &["event"],
        );
        let lapsing = r.gauge_vec(
            "audience_connections_lapsing",
            "Connections this host runs whose credentials stop working within 7 days unless someone connects the account again (a refresh token's or a Meta token's end).",
            &["destination"],
        );
        let pacing = Pacing {
            send_delay: r.histogram(
                "audience_request_departure_delay_seconds",
                "Time from the moment a connection's limiter let a request go to the moment it left (its HTTP client wrote it onto a connection): the send path the pacing guard is measured from.",
                &["destination"],
                vec![0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0],
            ),
            backoffs: r.counter(
                "audience_rate_backoffs_total",
                "Times a connection's rate was lowered because the partner answered 429 to a request sent at the paced rate.",
                &["destination"],
            ),
            below_rate: r.gauge_vec(
                "audience_connections_below_rate",
                "Connections running below their configured request rate after an unexpected 429 (they probe back up to it).",
                &["destination"],
            ),
            below_rate_until: Arc::new(Mutex::new(HashMap::new())),
            api_paced_out: r.counter(
                "audience_api_paced_out_total",
                "Partner requests of API calls (account lists, audience searches, sync checks, OAuth code exchanges) not sent because the connection's next free slot was beyond engine.rate.api_max_wait; the API answered 429 with Retry-After.",
                &["destination"],
            ),
        };
        Self {
            pacing,
            registry: r.registry,
            per_sync,
            families: Arc::new(r.families),
            requests,
            request_seconds,
            rate_limited,
            batches,
            plugin_seconds,
            plugin_failures,
            submission_checks,
            lanes_owned,
            lane_takeovers,
            lapsing,
            lapsing_connections: Arc::new(Mutex::new(HashMap::new())),
            failure_log: Arc::new(Mutex::new(FailureLog::default())),
        }
    }

    /// Every metric family `/metrics` can show: the store-derived ones and this process's.
    pub fn exported(&self) -> Vec<ExportedMetric> {
        figures::families()
            .chain(std::iter::once(ExportedMetric { name: LOG_LINES_DROPPED.0, kind: "counter" }))
            .chain(self.families.iter().copied())
            .collect()
    }

    /// How many lanes this host runs now.
    pub fn set_lanes_owned(&self, n: usize) {
        self.lanes_owned.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Whether `connection`'s credentials lapse soon (see `audience_connections_lapsing`).
    pub fn set_lapsing(&self, destination: &str, connection: &str, lapsing: bool) {
        let mut connections = self.lapsing_connections.lock();
        let changed = if lapsing {
            connections.insert(connection.to_string(), destination.to_string()).is_none()
        } else {
            connections.remove(connection).is_some()
        };
        if changed {
            let n = connections.values().filter(|d| d.as_str() == destination).count();
            self.lapsing.with_label_values(&[destination]).set(i64::try_from(n).unwrap_or(i64::MAX));
        }
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
            let labels: &[&str] = if self.per_sync { &[destination, connection] } else { &[destination] };
            self.rate_limited.with_label_values(labels).inc();
        }
        self.request_seconds.with_label_values(&[destination]).observe(elapsed.as_secs_f64());
    }

    /// Count one batch outcome (of `sync`, a label only at [`MetricsDetail::Sync`]).
    pub fn batch(&self, destination: &str, sync: &str, outcome: &str) {
        let labels: &[&str] = if self.per_sync { &[destination, sync, outcome] } else { &[destination, outcome] };
        self.batches.with_label_values(labels).inc();
    }

    /// Count one answer about a submitted request (see `audience_submission_checks_total`).
    pub fn submission_check(&self, destination: &str, answer: &str) {
        self.submission_checks.with_label_values(&[destination, answer]).inc();
    }

    /// Time one plugin call.
    pub fn plugin_call(&self, destination: &str, function: &str, elapsed: Duration) {
        self.plugin_seconds.with_label_values(&[destination, function]).observe(elapsed.as_secs_f64());
    }

    /// A call of `function` (`add-users`, `upsert-audience`, `prepare-users`, `authorize`, ...)
    /// failed in the plugin itself: count it, and log it at WARN unless a line for the same
    /// destination and kind was logged less than [`PLUGIN_FAILURE_LOG_EVERY`] ago (the line
    /// then says how many were not logged since). Call once per failed call, never per user.
    pub fn plugin_failed(&self, destination: &str, function: &str, err: &PluginError) {
        let kind = plugin_failure_kind(err);
        self.plugin_failures.with_label_values(&[destination, function, kind]).inc();
        let Some(suppressed) = self.failure_log.lock().admit(destination, kind, Instant::now()) else {
            return;
        };
        let error = loggable(&err.to_string());
        tracing::warn!(
            destination,
            function,
            kind,
            suppressed,
            error = %error,
            "a plugin call failed; its users are retried. At most one line a minute per destination and kind \
             (suppressed: failures since the last line not logged); every failure is counted in \
             audience_plugin_failures_total"
        );
    }

    /// A request of `destination` left `delay` after its limiter let it go.
    pub fn send_delay(&self, destination: &str, delay: Duration) {
        self.pacing.send_delay.with_label_values(&[destination]).observe(delay.as_secs_f64());
    }

    /// `connection`'s rate was lowered after an unexpected 429; it is back in full at
    /// `full_rate_at` unless lowered again.
    pub fn rate_backoff(&self, destination: &str, connection: &str, full_rate_at: Instant) {
        self.pacing.backoffs.with_label_values(&[destination]).inc();
        self.pacing.below_rate_until.lock().insert(connection.to_string(), (destination.to_string(), full_rate_at));
        self.count_below_rate();
    }

    /// A request of an API call was not sent: the connection's next slot was too far.
    pub fn api_paced_out(&self, destination: &str) {
        self.pacing.api_paced_out.with_label_values(&[destination]).inc();
    }

    /// Set `audience_connections_below_rate` from the backoffs still running now.
    fn count_below_rate(&self) {
        let now = Instant::now();
        let mut until = self.pacing.below_rate_until.lock();
        let mut counts: HashMap<String, i64> = HashMap::new();
        for (destination, at) in until.values() {
            *counts.entry(destination.clone()).or_default() += i64::from(*at > now);
        }
        until.retain(|_, (_, at)| *at > now);
        for (destination, n) in counts {
            self.pacing.below_rate.with_label_values(&[&destination]).set(n);
        }
    }

    /// The in-process metrics in Prometheus text format.
    pub fn render(&self) -> String {
        self.count_below_rate();
        let mut out = Vec::new();
        if TextEncoder::new().encode(&self.registry.gather(), &mut out).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

/// Per destination: log lines its plugin wrote beyond its budget (name, help; a counter read
/// off the plugin runtime at scrape time).
const LOG_LINES_DROPPED: (&str, &str) = (
    "audience_plugin_log_lines_dropped_total",
    "Log lines a plugin wrote beyond its budget (runtime.limits.max_log_lines_per_second and per call), dropped.",
);

/// Render the figures read off the loaded plugins: `(destination, log lines dropped)`.
pub fn render_plugin_figures(dropped: &[(String, u64)]) -> String {
    let (name, help) = LOG_LINES_DROPPED;
    let mut out = format!("# HELP {name} {help}\n# TYPE {name} counter\n");
    for (destination, n) in dropped {
        let _ = writeln!(out, "{name}{{destination=\"{}\"}} {n}", escape(destination));
    }
    out
}

pub(crate) fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::PathBuf;

    use super::*;

    /// The `# TYPE` lines of a rendering, as (name, type).
    fn declared(text: &str) -> BTreeSet<(String, String)> {
        text.lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .map(|rest| {
                let (name, kind) = rest.split_once(' ').expect("a TYPE line has a name and a type");
                (name.to_string(), kind.to_string())
            })
            .collect()
    }

    fn as_set<'a>(metrics: impl IntoIterator<Item = &'a ExportedMetric>) -> BTreeSet<(String, String)> {
        metrics.into_iter().map(|m| (m.name.to_string(), m.kind.to_string())).collect()
    }

    #[test]
    fn every_plugin_failure_has_its_kind() {
        let table = [
            (PluginError::Trap("unreachable executed".into()), "trap"),
            (PluginError::Timeout(Duration::from_secs(10)), "timeout"),
            (PluginError::TooLong(Duration::from_secs(300)), "too_long"),
            (PluginError::MemoryLimit { limit: 64 << 20 }, "memory_limit"),
            (PluginError::Contract("2 results for 3 users".into()), "contract"),
            (PluginError::Instantiate("the runtime is shutting down".into()), "instantiate"),
            (
                PluginError::Busy {
                    plugin: "pinterest".into(),
                    limit: audience_runtime::InstanceLimit::Plugin { share: 64, configured: false },
                    waited: Duration::from_secs(10),
                },
                "busy",
            ),
        ];
        for (err, kind) in &table {
            assert_eq!(plugin_failure_kind(err), *kind, "{err}");
        }
        let kinds: Vec<&str> = table.iter().map(|(_, kind)| *kind).collect();
        assert_eq!(kinds, PLUGIN_FAILURE_KINDS, "the table covers every kind, once, in the documented order");
    }

    #[test]
    fn plugin_failure_lines_are_limited_per_destination_and_kind() {
        let mut log = FailureLog::default();
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        assert_eq!(log.admit("pinterest", "trap", at(0)), Some(0), "the first failure is logged");
        for secs in [1, 10, 59] {
            assert_eq!(log.admit("pinterest", "trap", at(secs)), None, "within the minute: counted, not logged");
        }
        assert_eq!(log.admit("pinterest", "timeout", at(5)), Some(0), "another kind has its own minute");
        assert_eq!(log.admit("webhook", "trap", at(5)), Some(0), "another destination has its own minute");
        assert_eq!(log.admit("pinterest", "trap", at(60)), Some(3), "a minute on: logged, saying 3 were not");
        assert_eq!(log.admit("pinterest", "trap", at(61)), None);
        assert_eq!(log.admit("pinterest", "trap", at(200)), Some(1));
        assert_eq!(log.admit("pinterest", "trap", at(400)), Some(0), "nothing suppressed since the last line");
    }

    #[test]
    fn plugin_failures_are_counted_by_destination_function_and_kind() {
        let metrics = Metrics::new();
        for _ in 0..3 {
            metrics.plugin_failed("pinterest", "add-users", &PluginError::Trap("x".repeat(10_000)));
        }
        metrics.plugin_failed("pinterest", "upsert-audience", &PluginError::Timeout(Duration::from_secs(10)));
        let text = metrics.render();
        assert!(
            text.contains(
                "audience_plugin_failures_total{destination=\"pinterest\",function=\"add-users\",kind=\"trap\"} 3"
            ),
            "{text}"
        );
        assert!(text.contains(
            "audience_plugin_failures_total{destination=\"pinterest\",function=\"upsert-audience\",kind=\"timeout\"} 1"
        ));
    }

    #[test]
    fn logged_texts_are_cut_on_a_character_boundary_and_escaped() {
        assert_eq!(loggable("short reason"), "short reason");
        assert_eq!(loggable("two\nlines\u{1b}[31m"), "two\\nlines\\u{1b}[31m");
        let long = "é".repeat(1_000); // 2,000 bytes
        let cut = loggable(&long);
        assert!(cut.starts_with(&"é".repeat(MAX_LOGGED_TEXT_BYTES / 2)), "{cut}");
        assert!(cut.ends_with("... [1700 bytes cut]"), "{cut}");
        let odd = format!("a{long}");
        assert!(loggable(&odd).ends_with("... [1702 bytes cut]"), "cut back to a boundary: {}", loggable(&odd));
    }

    #[test]
    fn exported_lists_exactly_the_families_rendered() {
        let metrics = Metrics::new();
        metrics.partner_request("d", "c", Ok(429), Duration::from_millis(5));
        metrics.batch("d", "s", "synced");
        metrics.plugin_call("d", "add-users", Duration::from_millis(5));
        metrics.plugin_failed("d", "add-users", &PluginError::MemoryLimit { limit: 1 });
        metrics.submission_check("d", "finished");
        metrics.set_lanes_owned(1);
        metrics.lane_event("lost");
        metrics.set_lapsing("d", "c", true);
        metrics.send_delay("d", Duration::from_micros(300));
        metrics.rate_backoff("d", "c", Instant::now() + Duration::from_secs(20));
        metrics.api_paced_out("d");
        let groups = [audience_store::GroupFigures {
            workspace_id: "w".into(),
            destination: "d".into(),
            syncs: 1,
            ..Default::default()
        }];
        let store_text = figures::render(&groups, &[], MetricsDetail::Destination, 0);
        let mut rendered = declared(&store_text);
        assert_eq!(rendered, as_set(&figures::families().collect::<Vec<_>>()), "store figures");
        rendered.extend(declared(&render_plugin_figures(&[("d".into(), 3)])));
        rendered.extend(declared(&metrics.render()));
        let exported = metrics.exported();
        assert_eq!(rendered, as_set(&exported), "every family touched once, all of them listed");
        assert_eq!(exported.len(), rendered.len(), "no family listed twice");
    }

    #[test]
    fn batches_and_429s_are_per_destination_unless_the_detail_is_per_sync() {
        for (detail, batch, limited) in [
            (
                MetricsDetail::Destination,
                "audience_batches_total{destination=\"d\",outcome=\"synced\"} 2",
                "audience_rate_limited_total{destination=\"d\"} 2",
            ),
            (
                MetricsDetail::Workspace,
                "audience_batches_total{destination=\"d\",outcome=\"synced\"} 2",
                "audience_rate_limited_total{destination=\"d\"} 2",
            ),
            (
                MetricsDetail::Sync,
                "audience_batches_total{destination=\"d\",outcome=\"synced\",sync=\"s1\"} 1",
                "audience_rate_limited_total{connection=\"c1\",destination=\"d\"} 1",
            ),
        ] {
            let metrics = Metrics::with_detail(detail);
            for (sync, connection) in [("s1", "c1"), ("s2", "c2")] {
                metrics.batch("d", sync, "synced");
                metrics.partner_request("d", connection, Ok(429), Duration::from_millis(1));
            }
            let text = metrics.render();
            assert!(text.contains(batch), "{detail:?}: {text}");
            assert!(text.contains(limited), "{detail:?}: {text}");
        }
    }

    #[test]
    fn lapsing_connections_are_counted_per_destination_once_each() {
        let metrics = Metrics::new();
        metrics.set_lapsing("meta", "c1", true);
        metrics.set_lapsing("meta", "c1", true);
        metrics.set_lapsing("meta", "c2", true);
        metrics.set_lapsing("pinterest", "c3", true);
        metrics.set_lapsing("meta", "c2", false);
        let text = metrics.render();
        assert!(text.contains("audience_connections_lapsing{destination=\"meta\"} 1"), "{text}");
        assert!(text.contains("audience_connections_lapsing{destination=\"pinterest\"} 1"), "{text}");
    }

    // The operator-facing files under deploy/ and docs/: every metric they name is one the
    // host exports, every alert can be acted on, and the operations guide lists every metric.

    fn repo_file(path: &str) -> String {
        let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
        std::fs::read_to_string(&full).unwrap_or_else(|err| panic!("reading {}: {err}", full.display()))
    }

    /// The metric names in a PromQL expression: identifiers starting with `audience_`, outside
    /// string literals (label values, regular expressions).
    fn metric_names_in(expr: &str) -> Vec<String> {
        let bytes = expr.as_bytes();
        let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
        let mut names = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if matches!(b, b'"' | b'\'' | b'`') {
                i += 1;
                while i < bytes.len() && bytes[i] != b {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            } else if word(b) {
                let start = i;
                while i < bytes.len() && word(bytes[i]) {
                    i += 1;
                }
                let token = &expr[start..i];
                if token.starts_with("audience_") {
                    names.push(token.to_string());
                }
            } else {
                i += 1;
            }
        }
        names
    }

    #[test]
    fn the_tokenizer_finds_metric_names_and_skips_strings() {
        let expr = r#"sum by (le) (rate(audience_plugin_call_duration_seconds_bucket{destination=~"audience_x|y",kind='audience_z'}[5m])) / audience_lanes_owned"#;
        assert_eq!(metric_names_in(expr), ["audience_plugin_call_duration_seconds_bucket", "audience_lanes_owned"]);
    }

    /// Every series name a query can select on the host's `/metrics`.
    fn exported_series() -> BTreeSet<String> {
        Metrics::new().exported().iter().flat_map(ExportedMetric::series).collect()
    }

    #[derive(Debug, serde::Deserialize)]
    struct RuleFile {
        groups: Vec<RuleGroup>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct RuleGroup {
        rules: Vec<Rule>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Rule {
        alert: String,
        expr: String,
        #[serde(rename = "for")]
        pending_for: Option<String>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }

    fn alert_rules() -> Vec<Rule> {
        let file: RuleFile =
            serde_saphyr::from_str(&repo_file("deploy/prometheus/alerts.yml")).expect("alerts.yml is a rule file");
        file.groups.into_iter().flat_map(|g| g.rules).collect()
    }

    /// Every string under an `expr`, `query` or `definition` key of the dashboard: the panels'
    /// queries and the template variables'.
    fn dashboard_queries(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    if let (true, Some(text)) =
                        (matches!(key.as_str(), "expr" | "query" | "definition"), value.as_str())
                    {
                        out.push(text.to_string());
                    }
                    dashboard_queries(value, out);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|item| dashboard_queries(item, out)),
            _ => {}
        }
    }

    fn dashboard() -> serde_json::Value {
        serde_json::from_str(&repo_file("deploy/grafana/audience-host.json")).expect("the dashboard is JSON")
    }

    #[test]
    fn the_shipped_alerts_query_only_metrics_the_host_exports() {
        let exported = exported_series();
        let rules = alert_rules();
        let mut used = BTreeSet::new();
        for rule in &rules {
            let names = metric_names_in(&rule.expr);
            assert!(!names.is_empty(), "{}: no audience_ metric in {}", rule.alert, rule.expr);
            for name in names {
                assert!(exported.contains(&name), "{}: the host exports no {name}", rule.alert);
                used.insert(name);
            }
        }
        for needed in [
            "audience_plugin_failures_total",
            "audience_connections_needing_reauthorization",
            "audience_oldest_pending_age_seconds",
            "audience_rate_limited_total",
            "audience_users_errored_total",
        ] {
            assert!(used.contains(needed), "no alert on {needed}");
        }
    }

    #[test]
    fn the_shipped_dashboard_queries_only_metrics_the_host_exports() {
        let exported = exported_series();
        let dashboard = dashboard();
        let mut queries = Vec::new();
        dashboard_queries(&dashboard, &mut queries);
        let names: Vec<String> = queries.iter().flat_map(|q| metric_names_in(q)).collect();
        assert!(names.len() >= 20, "the dashboard's queries were found: {queries:?}");
        for name in &names {
            assert!(exported.contains(name), "the dashboard queries {name}, which the host does not export");
        }
        assert!(names.iter().any(|n| n == "audience_plugin_failures_total"), "a panel shows plugin failures");
        // The data source is chosen on import: every panel and query names the variable.
        let variables = dashboard["templating"]["list"].as_array().expect("template variables");
        assert!(variables.iter().any(|v| v["type"] == "datasource" && v["name"] == "datasource"));
        let panels = dashboard["panels"].as_array().expect("panels");
        for panel in panels.iter().filter(|p| p["type"] != "row") {
            assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {}", panel["title"]);
            for target in panel["targets"].as_array().expect("targets") {
                assert_eq!(target["datasource"]["uid"], "${datasource}", "panel {}", panel["title"]);
            }
        }
    }

    /// GitHub's anchor of a Markdown heading.
    fn anchor(heading: &str) -> String {
        heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect()
    }

    #[test]
    fn every_alert_waits_before_firing_has_a_severity_and_says_what_to_do() {
        let guide = repo_file("docs/operations.md");
        let anchors: BTreeSet<String> =
            guide.lines().filter_map(|l| l.strip_prefix('#')).map(|h| anchor(h.trim_start_matches('#'))).collect();
        for rule in alert_rules() {
            let name = &rule.alert;
            assert!(rule.pending_for.is_some(), "{name} has no `for:`");
            let severity = rule.labels.get("severity").map(String::as_str);
            assert!(matches!(severity, Some("critical" | "warning")), "{name}: severity {severity:?}");
            for key in ["summary", "description"] {
                assert!(rule.annotations.get(key).is_some_and(|t| !t.is_empty()), "{name} has no {key}");
            }
            let runbook = rule.annotations.get("runbook_url").map(String::as_str).unwrap_or_default();
            let section = runbook.strip_prefix("docs/operations.md#");
            assert!(section.is_some_and(|s| anchors.contains(s)), "{name}: {runbook:?} is no section of the guide");
            assert!(guide.contains(&format!("`{name}`")), "docs/operations.md does not name {name}");
        }
    }

    #[test]
    fn the_operations_guide_lists_every_exported_metric() {
        let guide = repo_file("docs/operations.md");
        let documented: BTreeSet<String> = guide
            .lines()
            .filter_map(|line| line.strip_prefix("| `audience_"))
            .filter_map(|rest| rest.split_once('`'))
            .map(|(name, _)| format!("audience_{name}"))
            .collect();
        let exported: BTreeSet<String> = Metrics::new().exported().iter().map(|m| m.name.to_string()).collect();
        assert_eq!(documented, exported, "the metrics table of docs/operations.md");
    }
}
