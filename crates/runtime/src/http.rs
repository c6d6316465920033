//! The HTTP gate: the one place that decides whether a plugin's request may leave, for both
//! ways a plugin reaches the network (the contract's `http-client` import and the standard
//! `wasi:http/outgoing-handler`, see [`super::outbound`]).
//!
//! Every request is checked before anything is sent, and before it takes a slot of the
//! engine's rate limiter ([`HttpGate::check`], then [`HttpGate::send_checked`]): the URL's host
//! must be on the plugin's allow-list (an empty list denies everything), plain http only to
//! hosts allowed for it (local sandboxes), a method and headers that parse, and a body under
//! the cap. Redirects are followed only to hosts that pass the same check. The response body
//! is read with a running size check, so a partner (or a hostile server) cannot make the host
//! buffer gigabytes.
//!
//! **Egress by address, not only by name.** An allowed *name* might resolve to the host's own
//! network (a partner's DNS taken over, a name the plugin's author controls): names are
//! resolved here, by [`CheckedResolver`], and addresses that are not public (private,
//! loopback, link-local, CGNAT, unique-local, multicast, ..., and the IPv4-mapped forms of
//! those; see [`non_public`]) are dropped unless the operator listed them in
//! `allowed_private_addresses`. An IP literal in a URL is never resolved: it is allowed only
//! when the allow-list names that very address (`127.0.0.1:9000` in `plain_http_hosts`), which
//! is the operator allowing it explicitly; `*.` wildcards never match an address. Environment
//! proxies are off, so no `HTTPS_PROXY` can route requests around this check.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use reqwest::Url;

use super::bindings::latest::audience::destination::http_client::{HttpError, Request, Response};
use super::config::{HttpLimits, HttpPolicy};
use super::departure::{DepartureClock, TimedBody};

/// An allow-list entry: a host name or an IP address, optionally with a port, optionally a
/// `*.` wildcard (names only).
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    host: String,
    /// The entry's address, when it is an IP literal.
    ip: Option<IpAddr>,
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
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let ip = if wildcard { None } else { host.parse::<IpAddr>().ok().map(canonical) };
        Self { host, ip, port, wildcard }
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host_ok = match host.parse::<IpAddr>() {
            // An address matches only an entry that is that address: never a wildcard, never
            // a name.
            Ok(ip) => self.ip == Some(canonical(ip)),
            Err(_) if self.wildcard => {
                host.strip_suffix(self.host.as_str()).is_some_and(|prefix| prefix.ends_with('.'))
            }
            Err(_) => host == self.host,
        };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

/// `ip`, with an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Why `ip` is not a public unicast address (the range it is in), or `None` when it is one.
/// IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) are judged by the
/// embedded address.
pub(crate) fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "shared CGNAT (100.64.0.0/10)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local (169.254.0.0/16)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay anycast (192.88.99.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved or broadcast (240.0.0.0/4)",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return non_public_v4(v4);
    }
    let segments = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    Some(match segments {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified (::)",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback (::1)",
        // IPv4-compatible: deprecated, never a real destination.
        [0, 0, 0, 0, 0, 0, _, _] => "IPv4-compatible (::/96, deprecated)",
        // NAT64's well-known prefix and 6to4: the IPv4 address inside decides.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] | [0x2002, hi, lo, ..] => return non_public_v4(embedded(hi, lo)),
        [0x0100, 0, 0, 0, ..] => "discard-only (100::/64)",
        [0x2001, 0x0db8, ..] => "documentation (2001:db8::/32)",
        [s, ..] if s & 0xfe00 == 0xfc00 => "unique-local (fc00::/7)",
        [s, ..] if s & 0xffc0 == 0xfe80 => "link-local (fe80::/10)",
        [s, ..] if s & 0xffc0 == 0xfec0 => "site-local (fec0::/10)",
        [s, ..] if s & 0xff00 == 0xff00 => "multicast (ff00::/8)",
        _ => return None,
    })
}

/// An address or a CIDR block of `allowed_private_addresses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.5`, `10.20.0.0/16`, `::1`, `fd00::/8`; an IPv4-mapped IPv6 entry is taken as its
    /// IPv4 address.
    fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let (addr, prefix) = match entry.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (entry, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = addr.parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("the prefix length {p:?} is not a number from 0 to {max}")),
            },
        };
        let (net, prefix) = match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
                _ => (ip, prefix),
            },
            IpAddr::V4(_) => (ip, prefix),
        };
        if Self::masked(net, prefix) != net {
            return Err(format!(
                "{net} has bits set past the /{prefix} prefix; write the block's first address ({}/{prefix})",
                Self::masked(net, prefix)
            ));
        }
        Ok(Self { net, prefix })
    }

    fn masked(ip: IpAddr, prefix: u8) -> IpAddr {
        match ip {
            IpAddr::V4(v4) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
            }
            IpAddr::V6(v6) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        }
    }

    fn contains_net(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
        match (net, canonical(ip)) {
            (IpAddr::V4(_), ip @ IpAddr::V4(_)) | (IpAddr::V6(_), ip @ IpAddr::V6(_)) => {
                Self::masked(ip, prefix) == Self::masked(net, prefix)
            }
            _ => false,
        }
    }

    fn contains(&self, ip: IpAddr) -> bool {
        Self::contains_net(self.net, self.prefix, ip)
    }
}

/// Which non-public addresses the operator allowed names to resolve to.
#[derive(Debug, Clone, Default)]
struct AddressPolicy {
    allowed: Vec<Cidr>,
}

impl AddressPolicy {
    fn parse(entries: &[String]) -> Result<Self, GateError> {
        let allowed = entries
            .iter()
            .map(|entry| Cidr::parse(entry).map_err(|why| GateError::Address { entry: entry.clone(), why }))
            .collect::<Result<_, _>>()?;
        Ok(Self { allowed })
    }

    /// The range `ip` is in when it may not be reached, or `None` when it may.
    fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let range = non_public(ip)?;
        (!self.allowed.iter().any(|cidr| cidr.contains(ip))).then_some(range)
    }
}

/// A name resolved only to addresses the plugin may not reach.
#[derive(Debug)]
struct AddressRefused {
    host: String,
    ip: IpAddr,
    range: &'static str,
}

impl std::fmt::Display for AddressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} resolves to {}, a {} address, which plugins may not reach by name; if that is intended (a \
             sandbox on your own network), add it to the plugin's allowed_private_addresses, or allow the \
             address itself in allowed_hosts / plain_http_hosts",
            self.host, self.ip, self.range
        )
    }
}

impl std::error::Error for AddressRefused {}

/// Resolves names with the system's resolver and keeps only the addresses the plugin may
/// reach; a name left with none fails with [`AddressRefused`].
struct CheckedResolver {
    addresses: Arc<AddressPolicy>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.addresses.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|addr| match policy.refusal(addr.ip()) {
                    None => true,
                    Some(range) => {
                        refused.get_or_insert((addr.ip(), range));
                        false
                    }
                })
                .collect();
            if allowed.is_empty()
                && let Some((ip, range)) = refused
            {
                return Err(Box::new(AddressRefused { host, ip, range }) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Why a gate could not be built from a policy.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// An entry of `allowed_private_addresses` does not parse.
    #[error(
        "allowed_private_addresses entry {entry:?} is not an IP address or a CIDR block: {why} \
         (write e.g. \"10.0.0.5\", \"10.20.0.0/16\" or \"fd00::/8\")"
    )]
    Address {
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        why: String,
    },
    /// The HTTP client could not be built.
    #[error("the HTTP client could not be built: {0}")]
    Client(#[from] reqwest::Error),
}

/// The checked outbound HTTP client of one plugin.
#[derive(Debug, Clone)]
pub struct HttpGate {
    /// The client. It follows no redirect itself: the gate does (see [`next_hop`]), so that
    /// every hop is checked and the request's departure is seen on the first.
    client: reqwest::Client,
    rules: Rules,
    limits: HttpLimits,
}

/// Who follows a redirect the partner answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Redirects {
    /// The gate, to allowed hosts only, at most `max_redirects` times (`http-client`).
    Follow,
    /// The guest: the 3xx answer is handed back (`wasi:http`); a request for its `Location`
    /// is a new request that passes the gate again.
    Return,
}

/// A partner's answer, read within the response cap.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl From<Answer> for Response {
    fn from(answer: Answer) -> Self {
        Response { status: answer.status, headers: header_pairs(&answer.headers), body: answer.body }
    }
}

/// `headers` as the contract's (name, value) pairs; a value that is not UTF-8 is read lossily.
pub(crate) fn header_pairs(headers: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect()
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
        let on_list = match url.scheme() {
            "https" if allowed(&self.https) || allowed(&self.plain) => true,
            "http" if allowed(&self.plain) => true,
            "http" if allowed(&self.https) => {
                return Some(format!(
                    "plain http to {host} is not allowed; use https (or allow the host in plain_http_hosts)"
                ));
            }
            "http" | "https" => false,
            other => {
                return Some(format!("scheme {other:?} is not allowed; only https (and http to allowed sandboxes)"));
            }
        };
        if !on_list {
            // A wildcard never matches an address: name the reason when that is why.
            let why = match host.parse::<IpAddr>().ok().and_then(non_public) {
                Some(range) => format!(
                    "address {host}:{port} ({range}) is not on this plugin's allow-list; an address is reached only \
                     when the allow-list names it (e.g. \"{host}:{port}\" in plain_http_hosts)"
                ),
                None => format!("host {host}:{port} is not on this plugin's allow-list"),
            };
            return Some(why);
        }
        // An IP literal is never resolved, so it is checked here: on the list means an entry
        // that is this very address, which is the operator allowing it explicitly.
        None
    }
}

/// A URL without its query string, for messages (queries may carry codes or tokens).
fn redacted(url: &Url) -> String {
    let mut url = url.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// A request that passed the gate's checks, ready to send.
pub(crate) struct Checked {
    /// The request, its body apart (each hop gets its own, see [`TimedBody`]).
    request: reqwest::Request,
    body: Bytes,
}

impl HttpGate {
    /// A gate enforcing `policy`. An entry of `allowed_private_addresses` that does not parse
    /// is an error naming it.
    pub fn new(policy: &HttpPolicy) -> Result<Self, GateError> {
        let rules = Rules {
            https: policy.allowed_hosts.iter().map(|h| HostRule::parse(h)).collect(),
            plain: policy.plain_http_hosts.iter().map(|h| HostRule::parse(h)).collect(),
        };
        let addresses = Arc::new(AddressPolicy::parse(&policy.allowed_private_addresses)?);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // Resolution happens here, by the checked resolver: no proxy may do it instead.
            .no_proxy()
            .dns_resolver(Arc::new(CheckedResolver { addresses }))
            .timeout(policy.limits.timeout)
            .connect_timeout(policy.limits.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("audience-host/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, rules, limits: policy.limits.clone() })
    }

    /// The size and time limits this gate applies.
    pub(crate) fn limits(&self) -> &HttpLimits {
        &self.limits
    }

    /// Check a URL against the allow-list alone: a refusal is [`HttpError::Denied`] with the
    /// reason. (`wasi:http` asks before reading the request's body.)
    pub(crate) fn check_url(&self, url: &str) -> Result<Url, HttpError> {
        let url = Url::parse(url).map_err(|err| HttpError::Denied(format!("invalid URL: {err}")))?;
        match self.rules.refusal(&url) {
            Some(why) => Err(HttpError::Denied(why)),
            None => Ok(url),
        }
    }

    /// The refusal of a request body of `size` bytes (`"more than N"` when it was cut short
    /// while read), or `None` when it is within the cap.
    pub(crate) fn body_refusal(&self, size: usize, exact: bool) -> Option<HttpError> {
        let cap = self.limits.max_request_bytes;
        (size > cap).then(|| {
            let size = if exact { size.to_string() } else { format!("more than {cap}") };
            HttpError::Denied(format!("request body of {size} bytes exceeds the {cap}-byte cap"))
        })
    }

    /// Check one request of a plugin without sending it: the URL against the allow-list, the
    /// body against its cap, the method and the headers. A refusal is
    /// [`HttpError::Denied`] with the reason.
    pub(crate) fn check(&self, req: Request) -> Result<Checked, HttpError> {
        let url = self.check_url(&req.url)?;
        if let Some(refused) = self.body_refusal(req.body.len(), true) {
            return Err(refused);
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
        let request = builder.build().map_err(|err| HttpError::Denied(transport_message(err)))?;
        Ok(Checked { request, body: Bytes::from(req.body) })
    }

    /// Send a request [`Self::check`] passed, following redirects when asked, and read the
    /// answer within the caps, all within the request timeout. `clock` notes when the request
    /// left (its first hop), as the HTTP client takes it onto a connection.
    pub(crate) async fn send_checked(
        &self,
        checked: Checked,
        redirects: Redirects,
        clock: &DepartureClock,
    ) -> Result<Answer, HttpError> {
        match tokio::time::timeout(self.limits.timeout, self.send_hops(checked, redirects, clock)).await {
            Ok(answer) => answer,
            Err(_) => Err(HttpError::Timeout),
        }
    }

    async fn send_hops(
        &self,
        checked: Checked,
        redirects: Redirects,
        clock: &DepartureClock,
    ) -> Result<Answer, HttpError> {
        let Checked { mut request, mut body } = checked;
        let mut followed = 0;
        loop {
            let Some(mut hop) = request.try_clone() else {
                return Err(HttpError::Connection("the request could not be prepared again for a redirect".into()));
            };
            let first = followed == 0;
            *hop.body_mut() = Some(reqwest::Body::wrap(TimedBody::new(body.clone(), first.then(|| clock.clone()))));
            let response = self.client.execute(hop).await.map_err(transport_error)?;
            if redirects == Redirects::Return {
                return self.read(response).await;
            }
            let location = response.headers().get(reqwest::header::LOCATION);
            let Some((method, url, keep_body)) =
                next_hop(response.status().as_u16(), request.method(), request.url(), location)
            else {
                return self.read(response).await;
            };
            followed += 1;
            let max = self.limits.max_redirects;
            if followed > max {
                return Err(HttpError::Denied(format!("error following redirect: more than {max} redirects")));
            }
            if let Some(why) = self.rules.refusal(&url) {
                return Err(HttpError::Denied(format!("error following redirect: redirect refused: {why}")));
            }
            let moved = cross_host(request.url(), &url);
            let headers = request.headers_mut();
            if !keep_body {
                body = Bytes::new();
                for name in PAYLOAD_HEADERS {
                    headers.remove(name);
                }
            }
            if moved {
                for name in SENSITIVE_HEADERS {
                    headers.remove(name);
                }
            }
            *request.method_mut() = method;
            *request.url_mut() = url;
        }
    }

    async fn read(&self, response: reqwest::Response) -> Result<Answer, HttpError> {
        let cap = self.limits.max_response_bytes;
        if response.content_length().is_some_and(|len| len > cap as u64) {
            return Err(HttpError::TooLarge);
        }
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(transport_error)?;
            if body.len() + chunk.len() > cap {
                return Err(HttpError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Answer { status, headers, body })
    }
}

fn transport_error(err: reqwest::Error) -> HttpError {
    if err.is_timeout() {
        return HttpError::Timeout;
    }
    // A name that resolved only to addresses the plugin may not reach: the host refused it.
    let mut cause: Option<&dyn std::error::Error> = Some(&err);
    while let Some(inner) = cause {
        if let Some(refused) = inner.downcast_ref::<AddressRefused>() {
            return HttpError::Denied(refused.to_string());
        }
        cause = inner.source();
    }
    let redirect = err.is_redirect();
    let message = transport_message(err);
    if redirect { HttpError::Denied(message) } else { HttpError::Connection(message) }
}

/// The error without its URL (its query may carry secrets), with its source chain: it says
/// what actually failed (refused, reset, DNS...).
fn transport_message(err: reqwest::Error) -> String {
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
    message
}

/// Headers about a body, dropped with the body when a redirect turns the request into a GET.
const PAYLOAD_HEADERS: [reqwest::header::HeaderName; 4] = [
    reqwest::header::CONTENT_TYPE,
    reqwest::header::CONTENT_LENGTH,
    reqwest::header::CONTENT_ENCODING,
    reqwest::header::TRANSFER_ENCODING,
];

/// Headers carrying credentials, never sent on to another host by a redirect.
const SENSITIVE_HEADERS: [&str; 5] = ["authorization", "cookie", "cookie2", "proxy-authorization", "www-authenticate"];

/// Where a redirect sends a `method` request to `url` next, as browsers and HTTP clients do
/// (RFC 9110 §15.4): the method, the URL (the `location` resolved against `url`), and whether
/// the body goes along. `None` when the answer is not a redirect to follow (another status, no
/// usable `Location`): the answer is then the request's.
fn next_hop(
    status: u16,
    method: &reqwest::Method,
    url: &Url,
    location: Option<&reqwest::header::HeaderValue>,
) -> Option<(reqwest::Method, Url, bool)> {
    let (method, keep_body) = match status {
        // Clients have long turned a redirected POST into a GET.
        301 | 302 if method == reqwest::Method::POST => (reqwest::Method::GET, false),
        301 | 302 | 307 | 308 => (method.clone(), true),
        303 if method == reqwest::Method::HEAD => (reqwest::Method::HEAD, false),
        303 => (reqwest::Method::GET, false),
        _ => return None,
    };
    let next = url.join(location?.to_str().ok()?).ok()?;
    Some((method, next, keep_body))
}

/// Whether a redirect from `from` to `to` changes the host or the port (its credentials stay
/// behind).
fn cross_host(from: &Url, to: &Url) -> bool {
    from.host_str() != to.host_str() || from.port_or_known_default() != to.port_or_known_default()
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
    fn a_redirect_is_followed_as_http_clients_do() {
        use reqwest::Method;
        let url = Url::parse("https://api.example.com/v5/users?x=1").unwrap();
        let to = |path: &str| Url::parse(path).unwrap();
        // (status, method, Location, where it goes: method, URL, whether the body goes along)
        type Case<'a> = (u16, Method, Option<&'a str>, Option<(Method, Url, bool)>);
        let table: [Case; 11] = [
            (307, Method::POST, Some("/v5/other"), Some((Method::POST, to("https://api.example.com/v5/other"), true))),
            (308, Method::PATCH, Some("https://b.example/x"), Some((Method::PATCH, to("https://b.example/x"), true))),
            (301, Method::POST, Some("next"), Some((Method::GET, to("https://api.example.com/v5/next"), false))),
            (302, Method::GET, Some("/a"), Some((Method::GET, to("https://api.example.com/a"), true))),
            (302, Method::PUT, Some("/a"), Some((Method::PUT, to("https://api.example.com/a"), true))),
            (303, Method::POST, Some("/done"), Some((Method::GET, to("https://api.example.com/done"), false))),
            (303, Method::HEAD, Some("/done"), Some((Method::HEAD, to("https://api.example.com/done"), false))),
            // Not a redirect to follow: the answer is the request's.
            (304, Method::GET, Some("/a"), None),
            (300, Method::GET, Some("/a"), None),
            (307, Method::POST, None, None),
            (200, Method::GET, Some("/a"), None),
        ];
        for (status, method, location, expected) in table {
            let location = location.map(|l| reqwest::header::HeaderValue::from_str(l).unwrap());
            assert_eq!(next_hop(status, &method, &url, location.as_ref()), expected, "{status} {method}");
        }
    }

    #[test]
    fn credentials_stay_behind_when_a_redirect_changes_host_or_port() {
        let from = Url::parse("https://api.example.com/v5").unwrap();
        // (to, whether the host or port changed)
        let table = [
            ("https://api.example.com/other", false),
            ("https://api.example.com:443/other", false),
            ("https://API.example.com/other", false),
            ("https://api.example.com:8443/other", true),
            ("http://api.example.com/other", true),
            ("https://cdn.example.com/other", true),
        ];
        for (to, moved) in table {
            assert_eq!(cross_host(&from, &Url::parse(to).unwrap()), moved, "{to}");
        }
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

    #[test]
    fn an_address_in_a_url_is_reached_only_when_the_allow_list_names_it() {
        let r = rules(&["*.0.0.1", "*.example.com"], &["127.0.0.1:9000", "[fd00::7]:80"]);
        // (URL, allowed)
        let table = [
            ("http://127.0.0.1:9000/", true),
            // The same address written otherwise is the same address.
            ("http://[::ffff:127.0.0.1]:9000/", true),
            ("http://2130706433:9000/", true),
            ("http://[fd00::7]/", true),
            ("http://127.0.0.1:9001/", false),
            ("http://127.0.0.2:9000/", false),
            ("http://0.0.0.0:9000/", false),
            ("http://[::1]:9000/", false),
            // A wildcard never matches an address.
            ("https://127.0.0.1/", false),
            ("https://10.0.0.1/", false),
            ("https://169.254.169.254/latest/meta-data", false),
        ];
        for (url, allowed) in table {
            assert_eq!(check(&r, url).is_none(), allowed, "{url}: {:?}", check(&r, url));
        }
        let why = check(&r, "https://169.254.169.254/").unwrap();
        assert!(why.contains("link-local") && why.contains("plain_http_hosts"), "{why}");
    }

    #[test]
    fn addresses_that_are_not_public_are_classified() {
        // (address, the range it is in; None: public)
        let table: &[(&str, Option<&str>)] = &[
            ("8.8.8.8", None),
            ("151.101.1.1", None),
            ("2606:4700::1111", None),
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("unspecified")),
            ("10.0.0.1", Some("private")),
            ("10.255.255.255", Some("private")),
            ("172.15.255.255", None),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("172.32.0.1", None),
            ("192.168.1.1", Some("private")),
            ("127.0.0.1", Some("loopback")),
            ("127.255.255.254", Some("loopback")),
            ("169.254.169.254", Some("link-local")),
            ("100.63.255.255", None),
            ("100.64.0.1", Some("CGNAT")),
            ("100.127.255.255", Some("CGNAT")),
            ("100.128.0.1", None),
            ("192.0.0.8", Some("IETF")),
            ("192.0.2.1", Some("documentation")),
            ("198.18.0.1", Some("benchmarking")),
            ("224.0.0.1", Some("multicast")),
            ("239.255.255.250", Some("multicast")),
            ("240.0.0.1", Some("reserved")),
            ("255.255.255.255", Some("broadcast")),
            ("::", Some("unspecified")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.1.2.3", Some("private")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some("IPv4-compatible")),
            ("64:ff9b::7f00:1", Some("loopback")),
            ("64:ff9b::808:808", None),
            ("2002:7f00:1::", Some("loopback")),
            ("2002:0a00:0001::1", Some("private")),
            ("2002:0808:0808::1", None),
            ("fc00::1", Some("unique-local")),
            ("fd12:3456::1", Some("unique-local")),
            ("fe80::1", Some("link-local")),
            ("febf::1", Some("link-local")),
            ("fec0::1", Some("site-local")),
            ("ff02::1", Some("multicast")),
            ("2001:db8::1", Some("documentation")),
            ("100::1", Some("discard-only")),
        ];
        for (address, range) in table {
            let ip: IpAddr = address.parse().unwrap();
            let found = non_public(ip);
            match (found, range) {
                (None, None) => {}
                (Some(found), Some(range)) => assert!(found.contains(range), "{address}: {found}, expected {range}"),
                _ => panic!("{address}: {found:?}, expected {range:?}"),
            }
        }
    }

    #[test]
    fn allowed_private_addresses_parse_with_precise_errors() {
        // (entry, Ok(an address it contains, one it does not) or Err(part of the reason))
        type Expected = Result<(&'static str, &'static str), &'static str>;
        let table: &[(&str, Expected)] = &[
            ("10.0.0.5", Ok(("10.0.0.5", "10.0.0.6"))),
            ("10.20.0.0/16", Ok(("10.20.255.1", "10.21.0.1"))),
            (" 192.168.0.0/24 ", Ok(("192.168.0.200", "192.168.1.1"))),
            ("0.0.0.0/0", Ok(("127.0.0.1", "::1"))),
            ("::1", Ok(("::1", "127.0.0.1"))),
            ("[::1]", Ok(("::1", "::2"))),
            ("fd00::/8", Ok(("fd12::1", "fe80::1"))),
            ("::ffff:127.0.0.1", Ok(("127.0.0.1", "127.0.0.2"))),
            ("127.0.0.1", Ok(("::ffff:127.0.0.1", "::1"))),
            ("localhost", Err("not an IP address")),
            ("10.0.0.0/33", Err("from 0 to 32")),
            ("10.0.0.0/x", Err("from 0 to 32")),
            ("fd00::/129", Err("from 0 to 128")),
            ("10.1.2.3/16", Err("10.1.0.0/16")),
            ("", Err("not an IP address")),
        ];
        for (entry, expected) in table {
            match (Cidr::parse(entry), expected) {
                (Ok(cidr), Ok((inside, outside))) => {
                    assert!(cidr.contains(inside.parse().unwrap()), "{entry} contains {inside}");
                    assert!(!cidr.contains(outside.parse().unwrap()), "{entry} does not contain {outside}");
                }
                (Err(why), Err(part)) => assert!(why.contains(part), "{entry}: {why}"),
                (got, expected) => panic!("{entry}: {got:?}, expected {expected:?}"),
            }
        }
        let err = AddressPolicy::parse(&["10.0.0.1".into(), "intranet".into()]).unwrap_err();
        assert!(err.to_string().contains("\"intranet\""), "the entry is named: {err}");
        let err =
            HttpGate::new(&HttpPolicy { allowed_private_addresses: vec!["10/8".into()], ..HttpPolicy::default() })
                .unwrap_err();
        assert!(err.to_string().contains("allowed_private_addresses entry \"10/8\""), "{err}");
    }

    #[test]
    fn only_listed_non_public_addresses_are_reachable_by_name() {
        let policy = AddressPolicy::parse(&["10.20.0.0/16".into(), "::1".into()]).unwrap();
        // (address, refused)
        let table = [
            ("8.8.8.8", false),
            ("10.20.3.4", false),
            ("::1", false),
            ("10.21.0.1", true),
            ("127.0.0.1", true),
            ("::ffff:127.0.0.1", true),
            ("169.254.169.254", true),
        ];
        for (address, refused) in table {
            assert_eq!(policy.refusal(address.parse().unwrap()).is_some(), refused, "{address}");
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_only_to_loopback_is_refused_naming_the_address_and_the_setting() {
        let resolver = CheckedResolver { addresses: Arc::new(AddressPolicy::default()) };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let Err(err) = reqwest::dns::Resolve::resolve(&resolver, name).await else { panic!("localhost resolved") };
        let message = err.to_string();
        assert!(message.contains("localhost resolves to"), "{message}");
        assert!(message.contains("loopback") && message.contains("allowed_private_addresses"), "{message}");

        let open = CheckedResolver {
            addresses: Arc::new(AddressPolicy::parse(&["127.0.0.0/8".into(), "::1".into()]).unwrap()),
        };
        let name: reqwest::dns::Name = "localhost".parse().unwrap();
        let addrs: Vec<SocketAddr> = reqwest::dns::Resolve::resolve(&open, name).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
    }

    #[test]
    fn a_body_over_the_cap_is_refused_with_its_size_when_known() {
        let gate = HttpGate::new(&HttpPolicy {
            limits: HttpLimits { max_request_bytes: 10, ..HttpLimits::default() },
            ..HttpPolicy::default()
        })
        .unwrap();
        // (size, exact, the refusal; None: within the cap)
        let table = [
            (10, true, None),
            (0, false, None),
            (11, true, Some("request body of 11 bytes exceeds the 10-byte cap")),
            (4096, false, Some("request body of more than 10 bytes exceeds the 10-byte cap")),
        ];
        for (size, exact, expected) in table {
            let got = gate.body_refusal(size, exact).map(|refused| match refused {
                HttpError::Denied(why) => why,
                other => panic!("{other:?}"),
            });
            assert_eq!(got.as_deref(), expected, "{size} {exact}");
        }
    }

    #[test]
    fn the_checks_refuse_before_anything_is_built_to_send() {
        let gate = HttpGate::new(&HttpPolicy {
            plain_http_hosts: vec!["127.0.0.1:9000".into()],
            limits: HttpLimits { max_request_bytes: 10, ..HttpLimits::default() },
            ..HttpPolicy::default()
        })
        .unwrap();
        let request = |method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]| Request {
            method: method.into(),
            url: url.into(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.to_vec(),
        };
        // (request, part of the refusal; None: it passes)
        let table = [
            (request("GET", "http://127.0.0.1:9000/ok", &[("x-a", "b")], b"small"), None),
            (request("GET", "http://127.0.0.1:9001/ok", &[], b""), Some("allow-list")),
            (request("GET", "not a url", &[], b""), Some("invalid URL")),
            (request("POST", "http://127.0.0.1:9000/", &[], &[0; 11]), Some("11 bytes exceeds the 10-byte cap")),
            (request("GE T", "http://127.0.0.1:9000/", &[], b""), Some("invalid HTTP method")),
            (request("GET", "http://127.0.0.1:9000/", &[("bad name", "v")], b""), Some("invalid header name")),
            (request("GET", "http://127.0.0.1:9000/", &[("x-a", "line\r\nbreak")], b""), Some("invalid value")),
        ];
        for (req, refusal) in table {
            let url = req.url.clone();
            match (gate.check(req), refusal) {
                (Ok(_), None) => {}
                (Err(HttpError::Denied(why)), Some(part)) => assert!(why.contains(part), "{url}: {why}"),
                (Err(err), _) => panic!("{url}: {err:?}, expected {refusal:?}"),
                (Ok(_), Some(part)) => panic!("{url}: passed, expected a refusal with {part:?}"),
            }
        }
    }
}
