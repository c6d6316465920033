//! A destination for the host's own tests that reaches the network only through the standard
//! `wasi:http/outgoing-handler` (contract `audience:destination@0.2.0`), never through the
//! contract's `http-client` import: the component does not even import it.
//!
//! It mirrors the network behaviour of `test-destination`, so that a test can run both side by
//! side and show that the host treats the two imports alike:
//!
//! | setting     | what `add-users` / `remove-users` does                                          |
//! |-------------|----------------------------------------------------------------------------------|
//! | (`url`)     | POSTs the batch size to `url` (with its `content-length`); a status of 300 or more fails `transient` |
//! | `behaviour` = `fetch` | GETs `url`, following redirects itself (as a `wasi:http` client does), at most 5; a status of 500 or more fails `transient` |
//!
//! A request that fails is reported the way `test-destination` reports the same failure of
//! `http-client`: refused by the host (`HTTP-request-denied`, `HTTP-request-body-size`) as
//! `invalid-request` "denied", a response over the cap as `transient` "too-large", a timeout as
//! `transient` "timeout", anything else as `transient` "connection: ...".
//!
//! The other exports answer locally: a fixed manifest (`name` setting, default `wasi-http`;
//! default host `127.0.0.1`), e-mails kept trimmed and lowercase, one account, no audiences to
//! search, every audience id readable and upserted as itself.

#![allow(unsafe_code, reason = "the component ABI glue that wit-bindgen's export! generates is unsafe by construction")]

/// Most redirects `fetch` follows.
pub const MAX_REDIRECTS: usize = 5;

/// A URL's scheme, authority and path with query; `None` unless it is `scheme://authority...`.
pub fn split_url(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(cut);
    if scheme.is_empty() || authority.is_empty() {
        return None;
    }
    Some((scheme, authority, if path.is_empty() { "/" } else { path }))
}

/// Where a redirect answer sends a client that asked for `url`: the `location` of a 301, 302,
/// 303, 307 or 308, made absolute against `url` when it is a path.
pub fn redirect_target(url: &str, status: u16, location: Option<&str>) -> Option<String> {
    if !matches!(status, 301 | 302 | 303 | 307 | 308) {
        return None;
    }
    let location = location?.trim();
    if location.contains("://") {
        return Some(location.to_string());
    }
    let (scheme, authority, _) = split_url(url)?;
    location.starts_with('/').then(|| format!("{scheme}://{authority}{location}"))
}

#[cfg(target_arch = "wasm32")]
mod wasm;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_their_parts() {
        // (URL, its parts)
        let table = [
            ("http://127.0.0.1:9000/ok?a=1", Some(("http", "127.0.0.1:9000", "/ok?a=1"))),
            ("https://api.example.com", Some(("https", "api.example.com", "/"))),
            ("https://api.example.com?x", Some(("https", "api.example.com", "?x"))),
            ("http://[::1]:80/p", Some(("http", "[::1]:80", "/p"))),
            ("not a url", None),
            ("http:///path", None),
        ];
        for (url, parts) in table {
            assert_eq!(split_url(url), parts, "{url}");
        }
    }

    #[test]
    fn redirects_are_followed_to_their_location() {
        // (status, location, target)
        let table = [
            (302, Some("http://evil.test/x"), Some("http://evil.test/x")),
            (307, Some("/elsewhere"), Some("http://127.0.0.1:9000/elsewhere")),
            (301, None, None),
            (200, Some("http://evil.test/"), None),
            (304, Some("http://evil.test/"), None),
        ];
        for (status, location, target) in table {
            assert_eq!(
                redirect_target("http://127.0.0.1:9000/redirect", status, location).as_deref(),
                target,
                "{status} {location:?}"
            );
        }
    }
}
