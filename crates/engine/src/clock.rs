//! The wall clock a lane reads (ms since the Unix epoch): the times it writes to the store
//! (claims, retry times) and compares with the store's (due times, the retry window).
//!
//! Why not call [`audience_model::now_ms`] directly: a lane's tests run under tokio's paused
//! time, where sleeps and the rate limiter advance a virtual clock but the system clock does
//! not move. A lane that read the system clock would then never see a user become due. Tests
//! give the lane a clock that follows tokio's time instead.

/// Where a lane reads the time.
#[derive(Debug, Clone)]
pub(crate) enum Clock {
    /// The system clock (the host's normal clock).
    System,
    /// Tokio's clock (paused in tests), starting at `at_start_ms` when `start` was read.
    #[cfg(test)]
    Tokio {
        /// Tokio's instant when the clock was made.
        start: tokio::time::Instant,
        /// What the clock read then (ms since the epoch).
        at_start_ms: i64,
    },
}

impl Clock {
    /// A clock that reads `at_start_ms` now and then moves with tokio's (possibly paused) time.
    #[cfg(test)]
    pub(crate) fn tokio(at_start_ms: i64) -> Self {
        Clock::Tokio { start: tokio::time::Instant::now(), at_start_ms }
    }

    /// Now, in ms since the Unix epoch.
    pub(crate) fn now_ms(&self) -> i64 {
        match self {
            Clock::System => audience_model::now_ms(),
            #[cfg(test)]
            Clock::Tokio { start, at_start_ms } => {
                at_start_ms + i64::try_from(start.elapsed().as_millis()).unwrap_or(i64::MAX)
            }
        }
    }
}
