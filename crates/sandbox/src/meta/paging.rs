//! Graph cursor paging: `limit`, `after`, `before`; answers are
//! `{data, paging: {cursors: {before, after}, next?, previous?}}`.
//!
//! `next` is present exactly when more items follow, so "stop when `next` is absent" is the
//! only correct loop: pages may be short (`MetaConfig::page_cap`) or even empty
//! (`MetaConfig::empty_page_every`) while `next` is present. Cursors name the item served (by
//! creation sequence), reuse the Pinterest sandbox's opaque scoped cursors, and are refused
//! outside the collection they came from. A collection with nothing to show answers `{data: []}`.

use serde_json::{Map, Value, json};

use crate::meta::config::MetaConfig;
use crate::meta::errors::GraphError;
use crate::meta::params::Params;
use crate::paging::{decode_cursor, encode_cursor};

/// `limit` when the client sends none.
pub(crate) const DEFAULT_LIMIT: usize = 25;

/// Where the page links point.
pub(crate) struct Links<'a> {
    /// `http://127.0.0.1:PORT/v25.0/act_1/customaudiences`.
    pub url: String,
    pub params: &'a Params,
    /// The token, when it came as a parameter (links then carry it, as Meta's do).
    pub token: Option<&'a str>,
}

impl Links<'_> {
    fn with(&self, cursor_name: &str, cursor: &str) -> String {
        let mut pairs: Vec<(String, String)> = self
            .params
            .query
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "after" | "before" | "access_token"))
            .cloned()
            .collect();
        if let Some(token) = self.token {
            pairs.push(("access_token".to_owned(), token.to_owned()));
        }
        pairs.push((cursor_name.to_owned(), cursor.to_owned()));
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{}?{query}", self.url)
    }
}

fn cursor_param(params: &Params, name: &str, scope: &str) -> Result<Option<u64>, GraphError> {
    match params.text(name).filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(raw) => decode_cursor(&raw, scope)
            .map(Some)
            .ok_or_else(|| GraphError::invalid_param(format!("Invalid {name} cursor"))),
    }
}

/// One page out of the collection whose items have the sequences `seqs` (ascending, above 0),
/// rendering only the items served.
pub(crate) fn page(
    config: &MetaConfig,
    paged_requests: u64,
    links: &Links<'_>,
    scope: &str,
    seqs: &[u64],
    mut render: impl FnMut(u64) -> Result<Value, GraphError>,
) -> Result<Value, GraphError> {
    let params = links.params;
    let limit = match params.text("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(GraphError::invalid_param("Param limit must be a positive integer")),
        },
    };
    let size = config.page_cap.map_or(limit, |cap| limit.min(cap.max(1)));
    let after = cursor_param(params, "after", scope)?;
    let before = cursor_param(params, "before", scope)?;
    let (window, more_after): (&[u64], bool) = match (before, after) {
        (Some(before), _) => {
            let end = seqs.partition_point(|seq| *seq < before);
            (&seqs[end.saturating_sub(size)..end], true)
        }
        (None, after) => {
            let start = after.map_or(0, |a| seqs.partition_point(|seq| *seq <= a));
            let end = start.saturating_add(size).min(seqs.len());
            (&seqs[start..end], end < seqs.len())
        }
    };
    let empty_now =
        config.empty_page_every.filter(|n| *n >= 2).is_some_and(|n| paged_requests.is_multiple_of(u64::from(n)));
    if empty_now && !window.is_empty() && before.is_none() {
        let here = encode_cursor(scope, after.unwrap_or(0));
        return Ok(json!({
            "data": [],
            "paging": {"cursors": {"before": here, "after": here}, "next": links.with("after", &here)},
        }));
    }
    let (Some(first), Some(last)) = (window.first(), window.last()) else {
        return Ok(json!({ "data": [] }));
    };
    let (first, last) = (encode_cursor(scope, *first), encode_cursor(scope, *last));
    let mut paging = Map::new();
    paging.insert("cursors".to_owned(), json!({ "before": first, "after": last }));
    if more_after {
        paging.insert("next".to_owned(), json!(links.with("after", &last)));
    }
    if after.is_some() || before.is_some() {
        paging.insert("previous".to_owned(), json!(links.with("before", &first)));
    }
    let data = window.iter().map(|seq| render(*seq)).collect::<Result<Vec<Value>, GraphError>>()?;
    Ok(json!({ "data": data, "paging": paging }))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    fn items(n: u64) -> Vec<u64> {
        (1..=n).collect()
    }

    fn show(seq: u64) -> Result<Value, GraphError> {
        Ok(json!(seq))
    }

    fn walk(config: &MetaConfig, query: &str, n: u64) -> (Vec<u64>, usize) {
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut next = Some(query.to_owned());
        while let Some(query) = next.take() {
            let params = Params::parse(Some(&query), &HeaderMap::new(), b"").unwrap_or_default();
            let links = Links { url: "http://x/v25.0/c".to_owned(), params: &params, token: None };
            let page = page(config, pages as u64 + 1, &links, "c", &items(n), show).unwrap_or(Value::Null);
            pages += 1;
            seen.extend(page["data"].as_array().into_iter().flatten().filter_map(Value::as_u64));
            next = page["paging"]["next"].as_str().and_then(|u| u.split_once('?')).map(|(_, q)| q.to_owned());
            assert!(pages < 100, "paging does not end");
        }
        (seen, pages)
    }

    #[test]
    fn next_is_absent_exactly_on_the_last_page() {
        let config = MetaConfig::default();
        assert_eq!(walk(&config, "limit=2", 5), ((1..=5).collect(), 3));
        assert_eq!(walk(&config, "limit=2", 4), ((1..=4).collect(), 2));
        assert_eq!(walk(&config, "", 30), ((1..=30).collect(), 2));
        assert_eq!(walk(&config, "", 0), (Vec::new(), 1));
    }

    #[test]
    fn short_and_empty_pages_still_cover_everything() {
        let config = MetaConfig { page_cap: Some(3), empty_page_every: Some(2), ..MetaConfig::default() };
        let (seen, pages) = walk(&config, "limit=10", 10);
        assert_eq!(seen, (1..=10).collect::<Vec<_>>());
        assert!(pages >= 7, "{pages} pages");
    }

    #[test]
    fn before_walks_backwards_and_bad_cursors_are_refused() {
        let params = Params::parse(Some(&format!("limit=2&before={}", encode_cursor("c", 5))), &HeaderMap::new(), b"")
            .unwrap_or_default();
        let links = Links { url: "u".to_owned(), params: &params, token: None };
        let page = page(&MetaConfig::default(), 1, &links, "c", &items(9), show).unwrap_or(Value::Null);
        assert_eq!(page["data"], json!([3, 4]));
        let params = Params::parse(Some(&format!("after={}", encode_cursor("other", 5))), &HeaderMap::new(), b"")
            .unwrap_or_default();
        let links = Links { url: "u".to_owned(), params: &params, token: None };
        assert!(page_err(&links));
        let params = Params::parse(Some("limit=0"), &HeaderMap::new(), b"").unwrap_or_default();
        assert!(page_err(&Links { url: "u".to_owned(), params: &params, token: None }));
    }

    fn page_err(links: &Links<'_>) -> bool {
        page(&MetaConfig::default(), 1, links, "c", &items(3), show).is_err()
    }
}
