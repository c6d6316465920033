//! The host's answer to a request.

use std::borrow::Cow;

use serde::de::DeserializeOwned;

use crate::http_client;

/// An HTTP response of any status (a 4xx or 5xx is a response, not an error).
///
/// Plain data: tests build one directly (`Response::new(429).with_header("retry-after", "2")`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers as name/value pairs (the host sends names lowercase).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status`, no headers and an empty body.
    pub fn new(status: u16) -> Self {
        Self { status, ..Self::default() }
    }

    /// This response with a header added.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// This response with `body`.
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of header `name`, compared ignoring case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.body)
    }

    /// The body decoded as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

impl From<http_client::Response> for Response {
    fn from(r: http_client::Response) -> Self {
        Self { status: r.status, headers: r.headers, body: r.body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_ignores_case() {
        let r = Response::new(200).with_header("x-pinterest-rid", "abc");
        assert_eq!(r.header("X-Pinterest-RID"), Some("abc"));
        assert_eq!(r.header("retry-after"), None);
    }

    #[test]
    fn json_and_status() {
        let r = Response::new(201).with_body(r#"{"id":"7"}"#);
        assert!(r.is_success());
        assert!(!Response::new(302).is_success());
        let v: serde_json::Value = match r.json() {
            Ok(v) => v,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(v["id"], "7");
        assert!(Response::new(200).with_body("nope").json::<serde_json::Value>().is_err());
    }
}
