//! Building a request for the host's `http-client`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;

use super::Response;
use crate::host::{Host, WasmHost};
use crate::http_client::{HttpError, Request};
use crate::types::DestinationError;

/// Characters escaped in a query name or value: everything but RFC 3986 "unreserved".
const QUERY: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// A request being put together; [`build`](Self::build) turns it into the import's `request`.
///
/// Headers are set, not appended: setting one twice (in any letter case) keeps the last value.
/// The `Debug` output hides the `authorization` header, so a builder may be logged.
#[derive(Clone)]
pub struct RequestBuilder {
    method: String,
    url: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RequestBuilder {
    /// A request with `method` (uppercased) to the absolute `url`.
    pub fn new(method: &str, url: impl Into<String>) -> Self {
        Self {
            method: method.to_ascii_uppercase(),
            url: url.into(),
            query: Vec::new(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// A GET request.
    pub fn get(url: impl Into<String>) -> Self {
        Self::new("GET", url)
    }

    /// A POST request.
    pub fn post(url: impl Into<String>) -> Self {
        Self::new("POST", url)
    }

    /// A PATCH request.
    pub fn patch(url: impl Into<String>) -> Self {
        Self::new("PATCH", url)
    }

    /// A PUT request.
    pub fn put(url: impl Into<String>) -> Self {
        Self::new("PUT", url)
    }

    /// A DELETE request.
    pub fn delete(url: impl Into<String>) -> Self {
        Self::new("DELETE", url)
    }

    /// Append a query parameter; name and value are percent-encoded.
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_string(), value.to_string()));
        self
    }

    /// Append a query parameter when `value` is present.
    pub fn query_opt(self, name: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.query(name, value),
            None => self,
        }
    }

    /// Set a header, replacing any earlier value of the same name (compared ignoring case).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer_auth(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// `Authorization: Basic base64(<id>:<secret>)`.
    pub fn basic_auth(self, id: &str, secret: &str) -> Self {
        let encoded = BASE64.encode(format!("{id}:{secret}"));
        self.header("authorization", &format!("Basic {encoded}"))
    }

    /// A JSON body (and `content-type: application/json`).
    ///
    /// Fails with `invalid-request` only when `body` cannot be represented as JSON (a map with
    /// non-string keys, say): a bug in the plugin that retrying will not fix.
    pub fn json<T: Serialize + ?Sized>(mut self, body: &T) -> Result<Self, DestinationError> {
        self.body = serde_json::to_vec(body)
            .map_err(|e| DestinationError::InvalidRequest(format!("could not encode the request body: {e}")))?;
        Ok(self.header("content-type", "application/json"))
    }

    /// An `application/x-www-form-urlencoded` body built from `fields`, in order.
    pub fn form<K: AsRef<str>, V: AsRef<str>>(mut self, fields: &[(K, V)]) -> Self {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            serializer.append_pair(name.as_ref(), value.as_ref());
        }
        self.body = serializer.finish().into_bytes();
        self.header("content-type", "application/x-www-form-urlencoded")
    }

    /// A raw body; set `content-type` yourself.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = body;
        self
    }

    /// The full URL, query parameters included.
    pub fn url(&self) -> String {
        if self.query.is_empty() {
            return self.url.clone();
        }
        let mut url = self.url.clone();
        let mut separator = if url.contains('?') { '&' } else { '?' };
        for (name, value) in &self.query {
            url.push(separator);
            url.push_str(&utf8_percent_encode(name, QUERY).to_string());
            url.push('=');
            url.push_str(&utf8_percent_encode(value, QUERY).to_string());
            separator = '&';
        }
        url
    }

    /// The request as the host's `http-client` import takes it.
    pub fn build(self) -> Request {
        let url = self.url();
        Request { method: self.method, url, headers: self.headers, body: self.body }
    }

    /// Send through the component's `http-client` import (only works inside the component).
    pub fn send(self) -> Result<Response, HttpError> {
        self.send_via(&WasmHost)
    }

    /// Send through `host` (the real one, or a fake in tests).
    pub fn send_via(self, host: &dyn Host) -> Result<Response, HttpError> {
        host.send(&self.build())
    }
}

impl fmt::Debug for RequestBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let shown = if n == "authorization" { "<redacted>" } else { v.as_str() };
                (n.as_str(), shown)
            })
            .collect();
        f.debug_struct("RequestBuilder")
            .field("method", &self.method)
            .field("url", &self.url())
            .field("headers", &headers)
            .field("body_len", &self.body.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
        req.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn query_parameters_are_percent_encoded() {
        let req = RequestBuilder::get("https://h.example/v5/x")
            .query("page_size", "250")
            .query("bookmark", "a b&c=d/é")
            .query_opt("absent", None)
            .build();
        assert_eq!(req.method, "GET");
        assert_eq!(req.url, "https://h.example/v5/x?page_size=250&bookmark=a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn query_appends_to_an_existing_query_string() {
        let url = RequestBuilder::get("https://h.example/x?a=1").query("b", "2").url();
        assert_eq!(url, "https://h.example/x?a=1&b=2");
    }

    #[test]
    fn json_body_sets_content_type() {
        let req = RequestBuilder::new("patch", "https://h.example/x")
            .json(&serde_json::json!({"operation_type": "ADD"}))
            .map(RequestBuilder::build);
        let req = match req {
            Ok(req) => req,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(req.method, "PATCH");
        assert_eq!(header(&req, "content-type"), Some("application/json"));
        assert_eq!(req.body, br#"{"operation_type":"ADD"}"#);
    }

    #[test]
    fn form_body_is_urlencoded() {
        let req = RequestBuilder::post("https://h.example/token")
            .form(&[("grant_type", "authorization_code"), ("redirect_uri", "https://a.b/c?d=e f")])
            .build();
        assert_eq!(header(&req, "content-type"), Some("application/x-www-form-urlencoded"));
        assert_eq!(
            String::from_utf8_lossy(&req.body),
            "grant_type=authorization_code&redirect_uri=https%3A%2F%2Fa.b%2Fc%3Fd%3De+f"
        );
    }

    #[test]
    fn auth_headers() {
        let basic = RequestBuilder::post("https://h.example").basic_auth("id", "secret").build();
        // base64("id:secret")
        assert_eq!(header(&basic, "authorization"), Some("Basic aWQ6c2VjcmV0"));
        let bearer = RequestBuilder::get("https://h.example").bearer_auth("pina_tok").build();
        assert_eq!(header(&bearer, "authorization"), Some("Bearer pina_tok"));
    }

    #[test]
    fn headers_are_replaced_case_insensitively() {
        let req = RequestBuilder::get("https://h.example")
            .header("Accept", "text/plain")
            .header("accept", "application/json")
            .build();
        assert_eq!(req.headers, vec![("accept".to_string(), "application/json".to_string())]);
    }

    #[test]
    fn debug_hides_the_authorization_header() {
        let builder = RequestBuilder::get("https://h.example").bearer_auth("pina_secret_token");
        let shown = format!("{builder:?}");
        assert!(!shown.contains("pina_secret_token"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
