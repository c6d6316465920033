//! The host's imports behind one trait.
//!
//! A plugin reaches the outside world only through its imports: `http-client.send`, `log.log`,
//! `hashing.sha256-hex` and `pacing.report-budget`. Code that calls them directly cannot run
//! in a native unit test (the generated import functions are `unreachable!()` off wasm32).
//! Writing a plugin's orchestration against [`Host`] instead lets tests substitute a scripted
//! fake and check the exact requests sent, while [`WasmHost`] is the real thing inside the
//! component.
//!
//! A fake only has to implement [`Host::send`] and [`Host::log`]: hashing defaults to the same
//! computation the host does, natively, and a budget reading is dropped unless the fake
//! overrides [`Host::report_budget`] to record it.

use crate::hashing::{self, Normalization};
use crate::http::Response;
use crate::http_client::{self, HttpError, Request};
use crate::log::{self, Level};
use crate::pacing::{self, Budget};

/// Everything a plugin imports from the host.
pub trait Host {
    /// Send one request through the host's `http-client` import.
    fn send(&self, request: &Request) -> Result<Response, HttpError>;

    /// Write one line to the host's log. Never pass credentials.
    fn log(&self, level: Level, message: &str);

    /// The lowercase hex SHA-256 of each value after `normalization`, in order: the host's
    /// `hashing.sha256-hex` import. The host caps the values of one call (200,000 today):
    /// prefer [`identity::hash_all`](crate::identity::hash_all), which splits big lists.
    ///
    /// The default computes natively exactly what the host computes
    /// ([`identity::sha256_hex_normalized`](crate::identity::sha256_hex_normalized)), so test
    /// fakes need not implement it.
    fn sha256_hex(&self, normalization: Normalization, values: &[String]) -> Vec<String> {
        values.iter().map(|value| crate::identity::sha256_hex_normalized(normalization, value)).collect()
    }

    /// Report the partner's own reading of this connection's rate budget: the host's
    /// `pacing.report-budget` import. Cheap; call it after every response that carries usage.
    ///
    /// The default drops the reading (a test fake overrides it to record readings).
    fn report_budget(&self, budget: Budget) {
        let _ = budget;
    }
}

/// The real host: the component's imports. Only usable inside the wasm component.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmHost;

impl Host for WasmHost {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        http_client::send(request).map(Response::from)
    }

    fn log(&self, level: Level, message: &str) {
        log::log(level, message);
    }

    fn sha256_hex(&self, normalization: Normalization, values: &[String]) -> Vec<String> {
        hashing::sha256_hex(normalization, values)
    }

    fn report_budget(&self, budget: Budget) {
        pacing::report_budget(budget);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;

    impl Host for Quiet {
        fn send(&self, _request: &Request) -> Result<Response, HttpError> {
            Err(HttpError::Timeout)
        }

        fn log(&self, _level: Level, _message: &str) {}
    }

    #[test]
    fn defaults_hash_natively_and_drop_budgets() {
        let hashed = Quiet.sha256_hex(Normalization::TrimLowercase, &[" Alice@Example.COM ".to_string()]);
        assert_eq!(hashed, vec!["ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976".to_string()]);
        Quiet.report_budget(Budget { used_percent: 50.0, regain_after_ms: None });
    }
}
