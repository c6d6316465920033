//! Where a plugin's words go: the `log` import and the guest's stdout/stderr.
//!
//! Both end up in the host's `tracing` log tagged with the plugin's name. Lines are capped in
//! length and in number per call, so a plugin cannot flood the host's log. A caller may also
//! capture the lines of its calls (the conformance test does, to check that credentials never
//! appear in a plugin's output).

use std::pin::Pin;
use std::sync::Arc;

use parking_lot::Mutex;
use std::task::{Context, Poll};

use serde::Serialize;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

use super::bindings::v0_1_0::audience::destination::log::Level;

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

/// The per-call log of one plugin instance: emits to `tracing`, counts, optionally captures.
#[derive(Debug, Clone)]
pub struct CallLog {
    plugin: Arc<str>,
    state: Arc<Mutex<CallLogState>>,
    capture: Option<Arc<Mutex<Vec<LogLine>>>>,
}

#[derive(Debug, Default)]
struct CallLogState {
    lines: usize,
    max_lines: usize,
    warned: bool,
}

impl CallLog {
    /// A log for one call of `plugin`, keeping at most `max_lines` lines.
    pub fn new(plugin: Arc<str>, max_lines: usize, capture: Option<Arc<Mutex<Vec<LogLine>>>>) -> Self {
        let state = CallLogState { max_lines, ..Default::default() };
        Self { plugin, state: Arc::new(Mutex::new(state)), capture }
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
        let message = truncate(message);
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
