//! HTTP over the host's `http-client` import.
//!
//! A plugin never opens a socket: it hands a [`Request`](crate::http_client::Request) to the
//! host, which checks it against the operator's allow-list. This module makes building those
//! requests pleasant ([`RequestBuilder`]: query strings, JSON and form bodies, bearer and basic
//! auth), wraps the answer ([`Response`]: case-insensitive headers, JSON decoding), and gives
//! the default translation of failures into `destination-error` ([`http_failure`],
//! [`default_status_error`]) that a plugin refines for its partner.
//!
//! ```ignore
//! use audience_plugin_sdk::http::{RequestBuilder, http_failure, default_status_error};
//! let response = RequestBuilder::get("https://api.example.com/v1/things")
//!     .query("page_size", "250")
//!     .bearer_auth(&token)
//!     .send()
//!     .map_err(|e| http_failure(&e))?;
//! if !response.is_success() {
//!     return Err(default_status_error(&response, "could not list things"));
//! }
//! let things: Things = response.json().map_err(|e| /* ... */)?;
//! ```

mod errors;
mod request;
mod response;

pub use errors::{default_status_error, http_failure, retry_after_ms};
pub use request::RequestBuilder;
pub use response::Response;
