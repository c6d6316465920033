//! The host's imports behind one trait.
//!
//! A plugin reaches the outside world only through two imports: `http-client.send` and
//! `log.log`. Code that calls them directly cannot run in a native unit test (the generated
//! import functions are `unreachable!()` off wasm32). Writing a plugin's orchestration against
//! [`Host`] instead lets tests substitute a scripted fake and check the exact requests sent,
//! while [`WasmHost`] is the real thing inside the component.

use crate::http::Response;
use crate::http_client::{self, HttpError, Request};
use crate::log::{self, Level};

/// Everything a plugin imports from the host.
pub trait Host {
    /// Send one request through the host's `http-client` import.
    fn send(&self, request: &Request) -> Result<Response, HttpError>;

    /// Write one line to the host's log. Never pass credentials.
    fn log(&self, level: Level, message: &str);
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
}
