//! Pages of the host's own listings (workspaces, API keys, connections, syncs).
//!
//! Why pages: an answer listing everything grows with the tenants (5,000 syncs took 7.6 s to
//! list), so every listing answers at most `limit` items (100 unless asked, at most 1,000) in
//! id order with a `next_cursor` to ask for the next page, and each page is one index range
//! in the store whatever the number of items. The cursor is opaque to callers (today: the
//! last id of the page, hex-encoded); an item created or deleted between two pages shows or
//! not, but nothing is listed twice or skipped. Listings the partner pages itself (ad
//! accounts, audiences) keep the partner's cursors.

use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use audience_store::{DEFAULT_PAGE, MAX_PAGE};

use super::error::ApiError;

/// Which page of a listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageQuery {
    /// Most items on the page: 1 to 1,000; 100 when left out.
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page, unchanged; left out for the first page.
    cursor: Option<String>,
}

/// A checked page request: where to start and how many.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    /// The id after which the page starts.
    pub(crate) after: Option<String>,
    /// Most items.
    pub(crate) limit: u32,
}

/// The position a cursor stands for: the id of the last item seen.
fn encode(last_id: &str) -> String {
    hex::encode(last_id)
}

/// The id a cursor of a listing of ids starting with `prefix` stands for.
fn decode(cursor: &str, prefix: &str) -> Option<String> {
    let id = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    let valid = id.len() <= 64
        && id.strip_prefix(prefix).is_some_and(|rest| !rest.is_empty())
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    valid.then_some(id)
}

impl PageQuery {
    /// The page asked for, in a listing whose ids start with `prefix`; 400 when `limit` is out
    /// of bounds or `cursor` is not one this listing gave out.
    pub(crate) fn page(self, prefix: &str) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE);
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("limit: {limit} is out of bounds; ask for 1 to {MAX_PAGE} items (default {DEFAULT_PAGE})"),
            ));
        }
        let after = match self.cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => Some(decode(&cursor, prefix).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_cursor",
                    "cursor: not one this listing gave out; start again without `cursor` for the first page, then \
                     pass each answer's `next_cursor` unchanged",
                )
            })?),
        };
        Ok(Page { after, limit })
    }
}

impl Page {
    /// How many items to ask the store for: one more than the page, to know whether another
    /// page follows.
    pub(crate) fn fetch(&self) -> u32 {
        self.limit + 1
    }

    /// Cuts what the store gave (at most [`Page::fetch`] items) to the page, and the cursor of
    /// the next page when there is one.
    pub(crate) fn cut<T>(&self, mut items: Vec<T>, id: impl Fn(&T) -> &str) -> (Vec<T>, Option<String>) {
        if items.len() <= self.limit as usize {
            return (items, None);
        }
        items.truncate(self.limit as usize);
        let next = items.last().map(|last| encode(id(last)));
        (items, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(limit: Option<u32>, cursor: Option<&str>) -> PageQuery {
        PageQuery { limit, cursor: cursor.map(String::from) }
    }

    #[test]
    fn pages_default_to_100_and_refuse_limits_out_of_bounds() {
        assert_eq!(query(None, None).page("sync_").unwrap(), Page { after: None, limit: 100 });
        assert_eq!(query(Some(1_000), Some("")).page("sync_").unwrap(), Page { after: None, limit: 1_000 });
        for limit in [0, 1_001, u32::MAX] {
            let err = query(Some(limit), None).page("sync_").unwrap_err();
            assert_eq!((err.status, err.code), (StatusCode::BAD_REQUEST, "invalid_request"), "{limit}");
            assert!(err.message.contains("1 to 1000"), "{}", err.message);
        }
    }

    #[test]
    fn a_cursor_stands_for_the_last_id_of_its_own_listing() {
        let cursor = encode("sync_abc123");
        let page = query(Some(5), Some(&cursor)).page("sync_").unwrap();
        assert_eq!(page.after.as_deref(), Some("sync_abc123"));
        for bad in [
            "zz".to_string(),                // not hex
            hex::encode([0xff, 0xfe]),       // not UTF-8
            encode("conn_abc123"),           // another listing's
            encode("sync_"),                 // no id
            encode("sync_a'; DROP TABLE x"), // not an id
            encode(&format!("sync_{}", "a".repeat(80))),
        ] {
            let err = query(None, Some(&bad)).page("sync_").unwrap_err();
            assert_eq!((err.status, err.code), (StatusCode::BAD_REQUEST, "invalid_cursor"), "{bad}");
            assert!(err.message.contains("start again without `cursor`"), "{}", err.message);
        }
    }

    #[test]
    fn a_page_says_whether_another_follows() {
        let page = Page { after: None, limit: 2 };
        assert_eq!(page.fetch(), 3);
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let (items, next) = page.cut(ids(&["ws_a", "ws_b", "ws_c"]), |s| s.as_str());
        assert_eq!((items, next), (ids(&["ws_a", "ws_b"]), Some(encode("ws_b"))));
        let (items, next) = page.cut(ids(&["ws_a", "ws_b"]), |s| s.as_str());
        assert_eq!((items, next), (ids(&["ws_a", "ws_b"]), None), "exactly a page: the last one");
        let (items, next) = page.cut(Vec::<String>::new(), |s| s.as_str());
        assert_eq!((items.len(), next), (0, None));
    }
}
