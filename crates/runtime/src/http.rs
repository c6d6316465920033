//! The `http-client` import: the only way a plugin reaches the network.
//!
//! Every request is checked before anything is sent: the URL's host must be on the plugin's
//! allow-list (an empty list denies everything), plain http only to hosts allowed for it
//! (local sandboxes), a method and headers that parse, and a body under the cap. Redirects are
//! followed only to hosts that pass the same check. The response body is read with a running
//! size check, so a partner (or a hostile server) cannot make the host buffer gigabytes.

use std::time::Duration;

use futures::StreamExt as _;
use reqwest::Url;

use super::bindings::latest::audience::destination::http_client::{HttpError, Request, Response};
use super::config::{HttpLimits, HttpPolicy};

/// An allow-list entry: a host name, optionally with a port, optionally a `*.` wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    host: String,
    port: Option<u16>,
    wildcard: bool,
}

impl HostRule {
    fn parse(entry: &str) -> Self {
        let entry = entry.trim().to_ascii_lowercase();
        let (wildcard, rest) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest.to_string()),
            None => (false, entry),
        };
        // "[::1]:8080", "host:443", "host"
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']')) => {
                (h.to_string(), p.parse().ok())
            }
            _ => (rest, None),
        };
        Self { host: host.trim_start_matches('[').trim_end_matches(']').to_string(), port, wildcard }
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host_ok = if self.wildcard {
            host.strip_suffix(self.host.as_str()).is_some_and(|prefix| prefix.ends_with('.'))
        } else {
            host == self.host
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

/// The checked outbound HTTP client of one plugin.
#[derive(Debug, Clone)]
pub struct HttpGate {
    client: reqwest::Client,
    rules: Rules,
    limits: HttpLimits,
}

#[derive(Debug, Clone)]
struct Rules {
    https: Vec<HostRule>,
    plain: Vec<HostRule>,
}

impl Rules {
    /// Why `url` may not be requested, or `None` when it may.
    fn refusal(&self, url: &Url) -> Option<String> {
        let Some(host) = url.host_str() else {
            return Some(format!("the URL {} has no host", redacted(url)));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or(0);
        let allowed = |rules: &[HostRule]| rules.iter().any(|r| r.matches(&host, port));
        match url.scheme() {
            "https" if allowed(&self.https) || allowed(&self.plain) => None,
            "http" if allowed(&self.plain) => None,
            "http" if allowed(&self.https) => {
                Some(format!("plain http to {host} is not allowed; use https (or allow the host in plain_http_hosts)"))
            }
            "http" | "https" => Some(format!("host {host}:{port} is not on this plugin's allow-list")),
            other => Some(format!("scheme {other:?} is not allowed; only https (and http to allowed sandboxes)")),
        }
    }
}

/// A URL without its query string, for messages (queries may carry codes or tokens).
fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

impl HttpGate {
    /// A gate enforcing `policy`.
    pub fn new(policy: &HttpPolicy) -> Result<Self, reqwest::Error> {
        let rules = Rules {
            https: policy.allowed_hosts.iter().map(|h| HostRule::parse(h)).collect(),
            plain: policy.plain_http_hosts.iter().map(|h| HostRule::parse(h)).collect(),
        };
        let redirect_rules = rules.clone();
        let max_redirects = policy.limits.max_redirects;
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() > max_redirects {
                attempt.error(format!("more than {max_redirects} redirects"))
            } else if let Some(why) = redirect_rules.refusal(attempt.url()) {
                attempt.error(format!("redirect refused: {why}"))
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .redirect(redirect)
            .timeout(policy.limits.timeout)
            .connect_timeout(policy.limits.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("audience-host/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, rules, limits: policy.limits.clone() })
    }

    /// Check and send one request on behalf of a plugin.
    pub async fn send(&self, req: Request) -> Result<Response, HttpError> {
        let url = Url::parse(&req.url).map_err(|err| HttpError::Denied(format!("invalid URL: {err}")))?;
        if let Some(why) = self.rules.refusal(&url) {
            return Err(HttpError::Denied(why));
        }
        if req.body.len() > self.limits.max_request_bytes {
            return Err(HttpError::Denied(format!(
                "request body of {} bytes exceeds the {}-byte cap",
                req.body.len(),
                self.limits.max_request_bytes
            )));
        }
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| HttpError::Denied(format!("invalid HTTP method {:?}", req.method)))?;
        let mut builder = self.client.request(method, url);
        for (name, value) in &req.headers {
            let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| HttpError::Denied(format!("invalid header name {name:?}")))?;
            let value = reqwest::header::HeaderValue::from_str(value)
                .map_err(|_| HttpError::Denied(format!("invalid value for header {name}")))?;
            builder = builder.header(name, value);
        }
        let response = builder.body(req.body).send().await.map_err(transport_error)?;
        self.read(response).await
    }

    async fn read(&self, response: reqwest::Response) -> Result<Response, HttpError> {
        let cap = self.limits.max_response_bytes;
        if response.content_length().is_some_and(|len| len > cap as u64) {
            return Err(HttpError::TooLarge);
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport_error)?;
            if body.len() + chunk.len() > cap {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { status, headers, body })
    }
}

fn transport_error(err: reqwest::Error) -> HttpError {
    if err.is_timeout() {
        return HttpError::Timeout;
    }
    let redirect = err.is_redirect();
    // Drop the URL (its query may carry secrets), then follow the source chain: it says what
    // actually failed (refused, reset, DNS...).
    let err = err.without_url();
    let mut message = String::new();
    let mut cause: Option<&dyn std::error::Error> = Some(&err);
    while let Some(inner) = cause {
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&inner.to_string());
        cause = inner.source();
    }
    if redirect { HttpError::Denied(message) } else { HttpError::Connection(message) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(https: &[&str], plain: &[&str]) -> Rules {
        Rules {
            https: https.iter().map(|h| HostRule::parse(h)).collect(),
            plain: plain.iter().map(|h| HostRule::parse(h)).collect(),
        }
    }

    fn check(r: &Rules, url: &str) -> Option<String> {
        r.refusal(&Url::parse(url).unwrap())
    }

    #[test]
    fn empty_allow_list_denies_everything() {
        let r = rules(&[], &[]);
        assert!(check(&r, "https://api.pinterest.com/v5").is_some());
        assert!(check(&r, "http://127.0.0.1:8080/").is_some());
    }

    #[test]
    fn https_host_allowed_on_any_port_unless_pinned() {
        let r = rules(&["api.pinterest.com", "pinned.example:8443"], &[]);
        assert_eq!(check(&r, "https://api.pinterest.com/v5/ad_accounts"), None);
        assert_eq!(check(&r, "https://API.Pinterest.com:444/"), None);
        assert_eq!(check(&r, "https://pinned.example:8443/"), None);
        assert!(check(&r, "https://pinned.example/").is_some());
        assert!(check(&r, "https://evil.com/").unwrap().contains("allow-list"));
        assert!(check(&r, "https://api.pinterest.com.evil.com/").is_some());
    }

    #[test]
    fn plain_http_needs_its_own_permission() {
        let r = rules(&["api.pinterest.com"], &["127.0.0.1:9000"]);
        assert!(check(&r, "http://api.pinterest.com/").unwrap().contains("plain http"));
        assert_eq!(check(&r, "http://127.0.0.1:9000/v5"), None);
        assert!(check(&r, "http://127.0.0.1:9001/v5").is_some());
        assert!(check(&r, "ftp://api.pinterest.com/").unwrap().contains("scheme"));
    }

    #[test]
    fn wildcard_matches_subdomains_only() {
        let r = rules(&["*.example.com"], &[]);
        assert_eq!(check(&r, "https://a.example.com/"), None);
        assert_eq!(check(&r, "https://a.b.example.com/"), None);
        assert!(check(&r, "https://example.com/").is_some());
        assert!(check(&r, "https://badexample.com/").is_some());
    }

    #[test]
    fn ipv6_entries_parse() {
        let r = rules(&[], &["[::1]:8080"]);
        assert_eq!(check(&r, "http://[::1]:8080/"), None);
        assert!(check(&r, "http://[::1]:8081/").is_some());
    }
}
