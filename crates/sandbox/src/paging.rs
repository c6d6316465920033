//! Bookmark paging, as every Pinterest list endpoint does it: `page_size` (1..=250, default
//! 25) and an opaque `bookmark`; answers are `{items, bookmark}` with `bookmark: null` on the
//! last page.
//!
//! The bookmark names the last item served (by creation sequence) rather than an offset, so
//! deleting items between two page requests neither skips nor repeats the ones that remain.
//! It is scoped to the collection it came from; replaying it elsewhere is a 400.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;

use crate::error::ApiError;

/// `page_size` when the client does not send one (spec: `default: 25`).
pub(crate) const DEFAULT_PAGE_SIZE: usize = 25;
/// Largest `page_size` accepted (spec: `maximum: 250`).
pub(crate) const MAX_PAGE_SIZE: usize = 250;

/// A page answer: `{items, bookmark}`.
#[derive(Debug, Serialize)]
pub(crate) struct Page<T> {
    pub items: Vec<T>,
    pub bookmark: Option<String>,
}

/// What the client asked for.
#[derive(Debug, Clone)]
pub(crate) struct PageRequest {
    /// Which collection the bookmark belongs to.
    scope: String,
    size: usize,
    /// Sequence of the last item already served.
    after: Option<u64>,
    descending: bool,
}

impl PageRequest {
    /// Reads `page_size`, `bookmark` and `order` from the query.
    pub fn parse(query: &HashMap<String, String>, scope: String) -> Result<Self, ApiError> {
        let size = match query.get("page_size") {
            None => DEFAULT_PAGE_SIZE,
            Some(raw) => match raw.parse::<usize>() {
                Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid(format!("page_size must be an integer from 1 to {MAX_PAGE_SIZE}")));
                }
            },
        };
        let descending = match query.get("order").map(String::as_str) {
            None | Some("ASCENDING") => false,
            Some("DESCENDING") => true,
            Some(_) => {
                return Err(ApiError::invalid("order must be ASCENDING or DESCENDING"));
            }
        };
        let after = match query.get("bookmark").filter(|b| !b.is_empty()) {
            None => None,
            Some(bookmark) => Some(decode(bookmark, &scope)?),
        };
        Ok(Self { scope, size, after, descending })
    }

    /// Cuts one page out of `items`, which must be in ascending sequence order.
    pub fn page<T>(&self, items: impl DoubleEndedIterator<Item = (u64, T)>) -> Page<T> {
        let ordered: Box<dyn Iterator<Item = (u64, T)>> =
            if self.descending { Box::new(items.rev()) } else { Box::new(items) };
        let mut remaining = ordered
            .filter(|(seq, _)| match self.after {
                None => true,
                Some(after) if self.descending => *seq < after,
                Some(after) => *seq > after,
            })
            .peekable();
        let mut served = Vec::with_capacity(self.size);
        let mut last = None;
        while served.len() < self.size {
            match remaining.next() {
                Some((seq, item)) => {
                    last = Some(seq);
                    served.push(item);
                }
                None => break,
            }
        }
        let bookmark = match (remaining.peek(), last) {
            (Some(_), Some(seq)) => Some(encode(&self.scope, seq)),
            _ => None,
        };
        Page { items: served, bookmark }
    }
}

fn encode(scope: &str, seq: u64) -> String {
    encode_cursor(scope, seq)
}

fn decode(bookmark: &str, scope: &str) -> Result<u64, ApiError> {
    decode_cursor(bookmark, scope).ok_or_else(|| ApiError::invalid("Invalid bookmark."))
}

/// An opaque cursor naming the item with sequence `seq` in the collection `scope` (Pinterest's
/// bookmarks and Meta's `paging.cursors` are both made this way).
pub(crate) fn encode_cursor(scope: &str, seq: u64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{scope}|{seq}"))
}

/// The sequence a cursor names, if it is well-formed and belongs to `scope`.
pub(crate) fn decode_cursor(cursor: &str, scope: &str) -> Option<u64> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (from, seq) = text.rsplit_once('|')?;
    if from != scope {
        return None;
    }
    seq.parse().ok()
}

/// Parses a query string or form body into its pairs, in order.
pub(crate) fn parse_pairs(raw: &str) -> Result<Vec<(String, String)>, serde_urlencoded::de::Error> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw)
}

/// Parses a query string into a map (last value wins), answering 400 when it is malformed.
pub(crate) fn parse_query(raw: Option<&str>) -> Result<HashMap<String, String>, ApiError> {
    parse_pairs(raw.unwrap_or(""))
        .map(|pairs| pairs.into_iter().collect())
        .map_err(|e| ApiError::invalid(format!("Invalid query string: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&str, &str)]) -> Result<PageRequest, ApiError> {
        let query = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        PageRequest::parse(&query, "things".to_owned())
    }

    fn all_pages(pairs: &[(&str, &str)], n: u64) -> Vec<Vec<u64>> {
        let mut pages = Vec::new();
        let mut bookmark: Option<String> = None;
        loop {
            let mut query: Vec<(&str, &str)> = pairs.to_vec();
            if let Some(b) = &bookmark {
                query.push(("bookmark", b));
            }
            let page =
                request(&query).map(|r| r.page((1..=n).map(|i| (i, i)))).unwrap_or_else(|e| panic!("{}", e.message));
            pages.push(page.items);
            bookmark = page.bookmark;
            if bookmark.is_none() {
                return pages;
            }
        }
    }

    #[test]
    fn pages_cover_every_item_once_and_end_with_null_bookmark() {
        let pages = all_pages(&[("page_size", "2")], 5);
        assert_eq!(pages, vec![vec![1, 2], vec![3, 4], vec![5]]);
        let pages = all_pages(&[("page_size", "2")], 4);
        assert_eq!(pages, vec![vec![1, 2], vec![3, 4]]);
        let pages = all_pages(&[("page_size", "2"), ("order", "DESCENDING")], 3);
        assert_eq!(pages, vec![vec![3, 2], vec![1]]);
        assert_eq!(all_pages(&[], 0), vec![Vec::<u64>::new()]);
    }

    #[test]
    fn page_size_outside_spec_bounds_is_refused() {
        assert!(request(&[("page_size", "251")]).is_err());
        assert!(request(&[("page_size", "0")]).is_err());
        assert!(request(&[("page_size", "ten")]).is_err());
        assert!(request(&[("page_size", "250")]).is_ok());
    }

    #[test]
    fn bookmark_from_another_collection_is_refused() {
        let foreign = encode("other", 3);
        assert!(request(&[("bookmark", &foreign)]).is_err());
        assert!(request(&[("bookmark", "!!")]).is_err());
    }
}
