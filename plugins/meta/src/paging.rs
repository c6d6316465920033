//! Graph cursor paging, as Meta does it.
//!
//! A listing answers `{data, paging: {cursors: {before, after}, next?}}`. The rule is: **stop
//! only when `paging.next` is absent**. Pages can be short, or even empty, while `next` is
//! present, and an empty page may hand back the very cursor it was asked with (asking again
//! then gets the items), so the SDK's "a repeated cursor is a loop" guard does not fit Meta.
//! Instead a walk stops with `transient` after [`MAX_STALLS`] pages in a row that did not move
//! (the same cursor back), and after a page cap. The next page is asked with
//! `after=<paging.cursors.after>`; when a page has `next` but no `after` cursor, the `after`
//! parameter of the `next` URL is used.

use std::ops::ControlFlow;

use audience_plugin_sdk::types::DestinationError;

use crate::wire::{Paged, Paging};

/// How many pages in a row may come back without moving before a walk gives up.
pub const MAX_STALLS: usize = 5;

/// The page cap of a full walk (200 pages of 100: 20,000 items).
pub const MAX_PAGES: usize = 200;

/// One page: its items and the cursor of the next page (none on the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// `after` for the next page; none when `next` was absent.
    pub after: Option<String>,
}

/// Percent-decode a URL query value (`+` is a space); a malformed escape is kept as is.
pub(crate) fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%' && i + 2 < bytes.len())
            .then(|| std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
            .flatten();
        match (bytes[i], escaped) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', None) => {
                out.push(b' ');
                i += 1;
            }
            (b, None) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The `after` parameter of a `paging.next` URL.
fn after_in(next: &str) -> Option<String> {
    let (_, query) = next.split_once('?')?;
    let query = query.split('#').next().unwrap_or_default();
    query.split('&').filter_map(|p| p.split_once('=')).find(|(k, _)| *k == "after").map(|(_, v)| decode(v))
}

/// The cursor of the page after one whose `paging` is this; none on the last page.
pub fn next_cursor(paging: Option<&Paging>) -> Result<Option<String>, DestinationError> {
    let Some(paging) = paging else { return Ok(None) };
    let Some(next) = paging.next.as_deref() else { return Ok(None) };
    let after =
        paging.cursors.as_ref().and_then(|c| c.after.clone()).filter(|a| !a.is_empty()).or_else(|| after_in(next));
    match after.filter(|a| !a.is_empty()) {
        Some(after) => Ok(Some(after)),
        None => {
            Err(DestinationError::Transient("Meta said more pages follow but gave no cursor to ask for them".into()))
        }
    }
}

/// A Graph listing as a [`Page`].
pub fn page<T>(paged: Paged<T>) -> Result<Page<T>, DestinationError> {
    let after = next_cursor(paged.paging.as_ref())?;
    Ok(Page { items: paged.data, after })
}

fn stalled() -> DestinationError {
    DestinationError::Transient(format!("Meta answered {MAX_STALLS} pages in a row without moving on; try again later"))
}

/// Fetch pages from the start, handing each page's items to `visit` until it breaks or the
/// listing ends (`Ok(true)` when `visit` broke). Gives up after [`MAX_PAGES`] pages
/// (`invalid-request`: the same walk would hit the cap again) or [`MAX_STALLS`] pages in a row
/// that did not move (`transient`).
pub fn walk<T>(
    mut fetch: impl FnMut(Option<&str>) -> Result<Page<T>, DestinationError>,
    mut visit: impl FnMut(Vec<T>) -> ControlFlow<()>,
) -> Result<bool, DestinationError> {
    let mut cursor: Option<String> = None;
    let mut stalls = 0;
    for _ in 0..MAX_PAGES {
        let page = fetch(cursor.as_deref())?;
        if visit(page.items).is_break() {
            return Ok(true);
        }
        let Some(next) = page.after else { return Ok(false) };
        if cursor.as_deref() == Some(next.as_str()) {
            stalls += 1;
            if stalls >= MAX_STALLS {
                return Err(stalled());
            }
        } else {
            stalls = 0;
        }
        cursor = Some(next);
    }
    Err(DestinationError::InvalidRequest(format!(
        "gave up after {MAX_PAGES} pages: the listing is longer than the plugin walks"
    )))
}

/// One short page of the items `keep` accepts, from `cursor` on: fetches until at least
/// `min_items` were kept, the listing ends, or `max_fetches` pages were fetched, and returns
/// the cursor to continue from (none at the end). Fails with `transient` only when every fetch
/// came back without moving.
pub fn search<T>(
    cursor: Option<&str>,
    min_items: usize,
    max_fetches: usize,
    mut fetch: impl FnMut(Option<&str>) -> Result<Page<T>, DestinationError>,
    mut keep: impl FnMut(&T) -> bool,
) -> Result<Page<T>, DestinationError> {
    let mut cursor: Option<String> = cursor.filter(|c| !c.is_empty()).map(str::to_string);
    let mut kept = Vec::new();
    let mut stalls = 0;
    let max_fetches = max_fetches.max(1);
    for fetched in 1..=max_fetches {
        let page = fetch(cursor.as_deref())?;
        let moved = page.after.as_deref() != cursor.as_deref() || !page.items.is_empty();
        kept.extend(page.items.into_iter().filter(|item| keep(item)));
        let Some(next) = page.after else { return Ok(Page { items: kept, after: None }) };
        if !moved {
            stalls += 1;
        }
        if kept.len() >= min_items || fetched == max_fetches {
            if stalls == max_fetches {
                return Err(stalled());
            }
            return Ok(Page { items: kept, after: Some(next) });
        }
        cursor = Some(next);
    }
    Ok(Page { items: kept, after: None })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use serde_json::json;

    use super::*;
    use crate::wire::Paged;

    fn parse(v: serde_json::Value) -> Result<Page<u32>, DestinationError> {
        page(serde_json::from_value::<Paged<u32>>(v).unwrap())
    }

    #[test]
    fn next_decides_not_the_page_size() {
        let short = parse(json!({"data": [1], "paging": {"cursors": {"after": "c1"}, "next": "https://g/x?after=c1"}}));
        assert_eq!(short, Ok(Page { items: vec![1], after: Some("c1".into()) }));
        let empty = parse(json!({"data": [], "paging": {"cursors": {"after": "c2"}, "next": "https://g/x"}}));
        assert_eq!(empty, Ok(Page { items: vec![], after: Some("c2".into()) }));
        let last = parse(json!({"data": [1, 2], "paging": {"cursors": {"before": "b", "after": "c3"}}}));
        assert_eq!(last, Ok(Page { items: vec![1, 2], after: None }));
        assert_eq!(parse(json!({"data": []})), Ok(Page { items: vec![], after: None }));
    }

    #[test]
    fn a_cursor_from_the_next_url() {
        let p = parse(
            json!({"data": [], "paging": {"next": "https://g/v25.0/act_1/customaudiences?limit=5&after=QVFI%3D%3D&x=1"}}),
        );
        assert_eq!(p, Ok(Page { items: vec![], after: Some("QVFI==".into()) }));
        let none = parse(json!({"data": [], "paging": {"next": "https://g/x?limit=5"}}));
        assert!(matches!(none, Err(DestinationError::Transient(_))));
    }

    /// A listing of `pages`; page i's cursor is "p{i}". `empty_at` pages first answer empty
    /// with the same cursor back.
    fn listing<'a>(
        pages: &'a [Vec<u32>],
        empty_at: &'a RefCell<Vec<usize>>,
        asked: &'a RefCell<Vec<Option<String>>>,
    ) -> impl FnMut(Option<&str>) -> Result<Page<u32>, DestinationError> + 'a {
        move |cursor| {
            asked.borrow_mut().push(cursor.map(str::to_string));
            let i: usize = cursor.map_or(0, |c| c[1..].parse().unwrap());
            let pos = empty_at.borrow().iter().position(|&e| e == i);
            if let Some(pos) = pos {
                empty_at.borrow_mut().remove(pos);
                return Ok(Page { items: vec![], after: Some(cursor.unwrap_or("p0").to_string()) });
            }
            let after = (i + 1 < pages.len()).then(|| format!("p{}", i + 1));
            Ok(Page { items: pages[i].clone(), after })
        }
    }

    #[test]
    fn walks_through_short_and_empty_pages_until_next_is_absent() {
        let pages = [vec![1], vec![], vec![2, 3], vec![4]];
        let empty_at = RefCell::new(vec![2]);
        let asked = RefCell::new(vec![]);
        let mut all = vec![];
        let broke = walk(listing(&pages, &empty_at, &asked), |items| {
            all.extend(items);
            ControlFlow::Continue(())
        });
        assert_eq!(broke, Ok(false));
        assert_eq!(all, vec![1, 2, 3, 4]);
        assert_eq!(asked.borrow().len(), 5, "the empty page with the same cursor is asked again");
    }

    #[test]
    fn a_walk_that_never_moves_gives_up() {
        let stuck = |c: Option<&str>| {
            Ok::<_, DestinationError>(Page { items: vec![], after: Some(c.unwrap_or("x").to_string()) })
        };
        let result = walk(stuck, |_: Vec<u32>| ControlFlow::Continue(()));
        assert!(matches!(result, Err(DestinationError::Transient(_))), "{result:?}");
        let endless = |c: Option<&str>| {
            let n: u32 = c.map_or(0, |c| c.parse().unwrap());
            Ok::<_, DestinationError>(Page { items: vec![n], after: Some((n + 1).to_string()) })
        };
        assert!(matches!(walk(endless, |_| ControlFlow::Continue(())), Err(DestinationError::InvalidRequest(_))));
    }

    #[test]
    fn search_returns_short_pages_with_a_cursor() {
        let pages: Vec<Vec<u32>> = (0..10).map(|i| vec![i * 10, i * 10 + 5]).collect();
        let empty_at = RefCell::new(vec![]);
        let asked = RefCell::new(vec![]);
        let first = search(None, 3, 4, listing(&pages, &empty_at, &asked), |n| n % 10 == 0);
        assert_eq!(first, Ok(Page { items: vec![0, 10, 20], after: Some("p3".into()) }));
        let capped = search(Some("p3"), 100, 2, listing(&pages, &empty_at, &asked), |n| n % 10 == 0);
        assert_eq!(capped, Ok(Page { items: vec![30, 40], after: Some("p5".into()) }));
        let end = search(Some("p8"), 100, 5, listing(&pages, &empty_at, &asked), |_| true);
        assert_eq!(end, Ok(Page { items: vec![80, 85, 90, 95], after: None }));
        let stuck = |c: Option<&str>| {
            Ok::<_, DestinationError>(Page::<u32> { items: vec![], after: Some(c.unwrap_or("x").to_string()) })
        };
        assert!(matches!(search(Some("x"), 1, 3, stuck, |_| true), Err(DestinationError::Transient(_))));
    }
}
