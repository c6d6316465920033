//! Where a plugin's words go: the `log` import and the guest's stdout/stderr.
//!
//! Both end up in the host's `tracing` log tagged with the plugin's name. Lines are capped in
//! length, in number per call, and in rate per plugin over time ([`LogBudget`], shared by all
//! of a plugin's calls: many small calls cannot add up to a flood either), with a count of what
//! was dropped. A caller may also
//! capture the lines of its calls (the conformance test does, to check that credentials never
//! appear in a plugin's output). Every line is scrubbed of the secrets the call handed the
//! plugin before it is written or captured (see [`crate::redact`]).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use std::task::{Context, Poll};

use serde::Serialize;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use super::bindings::latest::audience::destination::log::Level;
use super::redact::Secrets;

/// Longest line kept; the rest is cut and marked.
const MAX_LINE: usize = 4096;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogSource {
    /// The `log` import.
    Log,
    /// The guest's standard output.
    Stdout,
    /// The guest's standard error.
    Stderr,
}

/// One line a plugin wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Where it came from.
    pub source: LogSource,
    /// Its level (stdout is info, stderr is warn).
    pub level: &'static str,
    /// The text.
    pub message: String,
}

/// How many lines one plugin may log over time, across all its calls: a token bucket refilled
/// at `per_second`, holding at most `burst`. Lines over it are dropped and counted.
#[derive(Debug)]
pub struct LogBudget {
    per_second: f64,
    burst: f64,
    state: Mutex<BudgetState>,
    dropped: AtomicU64,
}

#[derive(Debug)]
struct BudgetState {
    tokens: f64,
    at: Instant,
    /// Lines dropped since the last warning about it, and when that warning was.
    unreported: u64,
    warned_at: Option<Instant>,
}

/// How often at most the host says that a plugin's lines are being dropped.
const DROP_WARNING_EVERY: Duration = Duration::from_secs(60);

impl LogBudget {
    /// A full budget of `burst` lines, refilled at `per_second`.
    pub fn new(per_second: f64, burst: usize) -> Self {
        let burst = burst.max(1) as f64;
        let state = BudgetState { tokens: burst, at: Instant::now(), unreported: 0, warned_at: None };
        Self { per_second: per_second.max(0.0), burst, state: Mutex::new(state), dropped: AtomicU64::new(0) }
    }

    /// Whether one more line may be logged at `now`. When not, the line is counted as dropped;
    /// the second value is how many drops to report now (at most once a minute), if any.
    fn take(&self, now: Instant) -> (bool, Option<u64>) {
        let mut state = self.state.lock();
        let elapsed = now.saturating_duration_since(state.at).as_secs_f64();
        state.tokens = (state.tokens + elapsed * self.per_second).min(self.burst);
        state.at = now;
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            return (true, None);
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        state.unreported += 1;
        let due = state.warned_at.is_none_or(|at| now.saturating_duration_since(at) >= DROP_WARNING_EVERY);
        if !due {
            return (false, None);
        }
        state.warned_at = Some(now);
        (false, Some(std::mem::take(&mut state.unreported)))
    }

    /// Lines dropped by this budget so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The per-call log of one plugin instance: emits to `tracing`, counts, optionally captures.
#[derive(Debug, Clone)]
pub struct CallLog {
    plugin: Arc<str>,
    state: Arc<Mutex<CallLogState>>,
    budget: Arc<LogBudget>,
    capture: Option<Arc<Mutex<Vec<LogLine>>>>,
    /// What the call handed the plugin, scrubbed from every line.
    secrets: Arc<Secrets>,
}

#[derive(Debug, Default)]
struct CallLogState {
    lines: usize,
    max_lines: usize,
    warned: bool,
}

impl CallLog {
    /// A log for one call of `plugin`, keeping at most `max_lines` lines, within the plugin's
    /// `budget` over time, with the call's `secrets` scrubbed from every line.
    pub fn new(
        plugin: Arc<str>,
        max_lines: usize,
        budget: Arc<LogBudget>,
        capture: Option<Arc<Mutex<Vec<LogLine>>>>,
        secrets: Arc<Secrets>,
    ) -> Self {
        let state = CallLogState { max_lines, ..Default::default() };
        Self { plugin, state: Arc::new(Mutex::new(state)), budget, capture, secrets }
    }

    /// Record one line.
    pub fn write(&self, source: LogSource, level: Level, message: &str) {
        {
            let mut state = self.state.lock();
            if state.lines >= state.max_lines {
                if !state.warned {
                    state.warned = true;
                    tracing::warn!(plugin = %self.plugin, "plugin log limit of {} lines per call reached; dropping the rest", state.max_lines);
                }
                return;
            }
            state.lines += 1;
        }
        match self.budget.take(Instant::now()) {
            (true, _) => {}
            (false, report) => {
                if let Some(n) = report {
                    tracing::warn!(plugin = %self.plugin, dropped = n, "the plugin logs more lines than its budget over time; dropped {n} since the last report");
                }
                return;
            }
        }
        // Scrubbed before cut, so a cut cannot leave the start of a secret behind.
        let scrubbed = self.secrets.scrubbed(message);
        let message = truncate(&scrubbed);
        let plugin = &*self.plugin;
        match level {
            Level::Trace => tracing::trace!(plugin, source = ?source, "{message}"),
            Level::Debug => tracing::debug!(plugin, source = ?source, "{message}"),
            Level::Info => tracing::info!(plugin, source = ?source, "{message}"),
            Level::Warn => tracing::warn!(plugin, source = ?source, "{message}"),
            Level::Error => tracing::error!(plugin, source = ?source, "{message}"),
        }
        if let Some(capture) = &self.capture {
            capture.lock().push(LogLine { source, level: level_name(level), message: message.into_owned() });
        }
    }

    /// A WASI output stream writing lines into this log.
    pub fn stream(&self, source: LogSource) -> GuestOutput {
        GuestOutput { log: self.clone(), source }
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "trace",
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

fn truncate(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_LINE {
        return message.into();
    }
    let mut end = MAX_LINE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... [{} bytes cut]", &message[..end], message.len() - end).into()
}

/// The guest's stdout or stderr: splits what it writes into lines for the [`CallLog`].
#[derive(Debug, Clone)]
pub struct GuestOutput {
    log: CallLog,
    source: LogSource,
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(LineWriter { out: self.clone(), pending: Vec::new() })
    }
}

struct LineWriter {
    out: GuestOutput,
    pending: Vec<u8>,
}

impl LineWriter {
    fn emit(&mut self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        let level = if self.out.source == LogSource::Stderr { Level::Warn } else { Level::Info };
        self.out.log.write(self.out.source, level, text);
    }
}

impl AsyncWrite for LineWriter {
    fn poll_write(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        for &byte in buf {
            if byte == b'\n' {
                let line = std::mem::take(&mut self.pending);
                self.emit(&line);
            } else if self.pending.len() < MAX_LINE + 1 {
                self.pending.push(byte);
            }
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let line = std::mem::take(&mut self.pending);
            self.emit(&line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_lets_a_burst_through_then_its_rate_and_counts_the_rest() {
        let budget = LogBudget::new(10.0, 5);
        let start = Instant::now();
        let taken = (0..20).filter(|_| budget.take(start).0).count();
        assert_eq!((taken, budget.dropped()), (5, 15));
        // A second later, ten more lines fit (the rate), not more than the burst.
        let later = start + Duration::from_secs(1);
        let taken = (0..20).filter(|_| budget.take(later).0).count();
        assert_eq!(taken, 5, "refilled to the burst, not beyond");
        let much_later = start + Duration::from_millis(1_300);
        assert_eq!((0..20).filter(|_| budget.take(much_later).0).count(), 3);
    }

    #[test]
    fn drops_are_reported_at_most_once_a_minute_with_their_count() {
        let budget = LogBudget::new(0.0, 1);
        let start = Instant::now();
        assert_eq!(budget.take(start), (true, None));
        assert_eq!(budget.take(start), (false, Some(1)));
        assert_eq!(budget.take(start + Duration::from_secs(1)), (false, None));
        assert_eq!(budget.take(start + Duration::from_secs(2)), (false, None));
        assert_eq!(budget.take(start + Duration::from_secs(61)), (false, Some(3)));
    }
}
