//! Logging over the host's `log` import.
//!
//! Lines go to the host's structured log, tagged with the plugin's name. The functions here
//! take a finished message; the crate-root macros ([`info!`](crate::info) and friends) format
//! one first, like the `log` crate's. They call the import directly, so they only work inside
//! the component; code that must run in native tests should log through a
//! [`Host`](crate::Host) instead. Never log credentials.
//!
//! ```ignore
//! use audience_plugin_sdk::{info, warn};
//! info!("uploaded {} records", 1900);
//! warn!("Pinterest answered HTTP {}; x-pinterest-rid {}", 429, "abc123");
//! ```

use crate::log::{Level, log};

/// Log `message` at trace level.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Log `message` at debug level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Log `message` at info level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Log `message` at warn level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Log `message` at error level.
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Format and log a line at trace level through the host's `log` import.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => { $crate::logging::trace(&::std::format!($($arg)*)) };
}

/// Format and log a line at debug level through the host's `log` import.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::logging::debug(&::std::format!($($arg)*)) };
}

/// Format and log a line at info level through the host's `log` import.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::logging::info(&::std::format!($($arg)*)) };
}

/// Format and log a line at warn level through the host's `log` import.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::logging::warn(&::std::format!($($arg)*)) };
}

/// Format and log a line at error level through the host's `log` import.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::logging::error(&::std::format!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn macros_format_like_format() {
        // The import is unreachable natively, so only check that every macro expands and
        // type-checks with format arguments.
        if std::hint::black_box(false) {
            crate::trace!("{} {}", 1, "a");
            crate::debug!("{}", 2);
            crate::info!("plain");
            crate::warn!("rid {rid}", rid = "x");
            crate::error!("{:?}", Some(3));
        }
    }
}
