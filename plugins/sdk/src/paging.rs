//! Walking cursor- (or bookmark-) paginated listings.
//!
//! Partners list things a page at a time and hand back an opaque cursor for the next page.
//! Finding "the audience named X" means walking those pages, and accounts can hold thousands of
//! audiences, so the walk must not stop early — but it must stop: a partner bug that keeps
//! returning a cursor would otherwise spin a plugin until the host kills it. The walkers here
//! stop at a page-count cap and when a cursor comes back twice, and [`find_first`] stops as
//! soon as an item matches so a lookup costs no more requests than it needs.
//!
//! An empty-string cursor counts as "no more pages".
//!
//! `search-audiences` (contract 0.2.0) is different: it must answer one *short* page within
//! the call budget, even on an account with thousands of audiences. When the partner cannot
//! filter by name, [`search_page`] fetches partner pages from the caller's cursor only until
//! it has enough matches (or a fetch cap), and hands back the partner's cursor to continue
//! from; [`matches_query`] is the contract's "name contains, ignoring case" test, and the
//! `From` conversions turn a [`Page`] into an `audience-page` or `account-page`.
//!
//! ```
//! use audience_plugin_sdk::paging::{Page, find_first};
//! let pages = vec![vec![1, 2], vec![3, 4], vec![5]];
//! let found = find_first(10, |cursor| {
//!     let i: usize = cursor.map_or(0, |c| c.parse().unwrap_or(0));
//!     let next = (i + 1 < pages.len()).then(|| (i + 1).to_string());
//!     Ok::<_, String>(Page { items: pages[i].clone(), next_cursor: next })
//! }, |n| *n == 3);
//! assert_eq!(found, Ok(Some(3)));
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::ops::ControlFlow;

use crate::types::{Account, AccountPage, Audience, AudiencePage, DestinationError};

/// A reasonable cap for walks over a partner's listing: 200 pages (50,000 items at 250 a page).
pub const DEFAULT_MAX_PAGES: usize = 200;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items on this page.
    pub items: Vec<T>,
    /// The cursor for the next page; `None` (or empty) on the last page.
    pub next_cursor: Option<String>,
}

/// Why a walk over pages ended without an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PagingError<E> {
    /// Fetching a page failed.
    Fetch(E),
    /// The walk fetched `max_pages` pages and the listing still went on.
    TooManyPages {
        /// The cap that was reached.
        max_pages: usize,
    },
    /// The partner returned a cursor it had already returned: following it would loop.
    RepeatedCursor,
}

impl<E: fmt::Display> fmt::Display for PagingError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fetch(e) => e.fmt(f),
            Self::TooManyPages { max_pages } => {
                write!(f, "gave up after {max_pages} pages: the listing is longer than the cap")
            }
            Self::RepeatedCursor => write!(f, "the partner returned the same page cursor twice"),
        }
    }
}

impl From<PagingError<DestinationError>> for DestinationError {
    /// A fetch error is passed on as it was; hitting the cap is `invalid-request` (the same walk
    /// would hit it again); a repeated cursor is `transient` (a partner glitch).
    fn from(err: PagingError<DestinationError>) -> Self {
        match err {
            PagingError::Fetch(e) => e,
            PagingError::TooManyPages { .. } => DestinationError::InvalidRequest(err.to_string()),
            PagingError::RepeatedCursor => DestinationError::Transient(err.to_string()),
        }
    }
}

/// Fetch pages in order, starting with no cursor, handing each page's items to `visit` until
/// it breaks, the listing ends, or a guard trips. Returns the value `visit` broke with, or
/// `None` when the listing ended.
pub fn walk<T, E, B>(
    max_pages: usize,
    mut fetch: impl FnMut(Option<&str>) -> Result<Page<T>, E>,
    mut visit: impl FnMut(Vec<T>) -> ControlFlow<B>,
) -> Result<Option<B>, PagingError<E>> {
    let mut cursor: Option<String> = None;
    // A BTreeSet, not a HashSet: a HashSet's random seed would make the component import
    // `wasi:random`, which the host need not provide.
    let mut seen: BTreeSet<String> = BTreeSet::new();
    for _ in 0..max_pages {
        let page = fetch(cursor.as_deref()).map_err(PagingError::Fetch)?;
        if let ControlFlow::Break(found) = visit(page.items) {
            return Ok(Some(found));
        }
        match page.next_cursor.filter(|c| !c.is_empty()) {
            None => return Ok(None),
            Some(next) => {
                if !seen.insert(next.clone()) {
                    return Err(PagingError::RepeatedCursor);
                }
                cursor = Some(next);
            }
        }
    }
    Err(PagingError::TooManyPages { max_pages })
}

/// Every item of every page, in order.
pub fn collect_all<T, E>(
    max_pages: usize,
    fetch: impl FnMut(Option<&str>) -> Result<Page<T>, E>,
) -> Result<Vec<T>, PagingError<E>> {
    let mut all = Vec::new();
    walk(max_pages, fetch, |items| {
        all.extend(items);
        ControlFlow::<()>::Continue(())
    })?;
    Ok(all)
}

/// The first item for which `matches` is true, fetching no page after the one it is on.
/// `Ok(None)` means the whole listing was seen and nothing matched.
pub fn find_first<T, E>(
    max_pages: usize,
    fetch: impl FnMut(Option<&str>) -> Result<Page<T>, E>,
    mut matches: impl FnMut(&T) -> bool,
) -> Result<Option<T>, PagingError<E>> {
    walk(max_pages, fetch, |items| match items.into_iter().find(|item| matches(item)) {
        Some(item) => ControlFlow::Break(item),
        None => ControlFlow::Continue(()),
    })
}

/// Whether an audience called `name` answers the search `query`: `name` contains `query`,
/// ignoring case; a blank query matches everything.
///
/// ```
/// use audience_plugin_sdk::paging::matches_query;
/// assert!(matches_query("VIP Customers", "vip"));
/// assert!(matches_query("anything", " "));
/// assert!(!matches_query("Churned", "vip"));
/// ```
pub fn matches_query(name: &str, query: &str) -> bool {
    let query = query.trim();
    query.is_empty() || name.to_lowercase().contains(&query.to_lowercase())
}

/// One short page of the items for which `keep` is true, starting at `cursor` (none: the
/// first page).
///
/// Fetches the partner's pages in order until at least `min_items` items were kept, the
/// listing ends, or `max_fetches` pages were fetched (at least one is), and returns the kept
/// items with the partner's cursor for the page after the last one fetched (none when the
/// listing ended). The caller passes that cursor back unchanged on the next call. A page may
/// hold more than `min_items` items: a partner page is never split. A cursor that comes back
/// twice within the call is [`PagingError::RepeatedCursor`].
///
/// ```
/// use audience_plugin_sdk::paging::{Page, search_page};
/// let listing = |cursor: Option<&str>| {
///     let i: u32 = cursor.map_or(0, |c| c.parse().unwrap_or(0));
///     let next = (i < 9).then(|| (i + 1).to_string());
///     Ok::<_, String>(Page { items: vec![i * 10, i * 10 + 5], next_cursor: next })
/// };
/// // Multiples of 10 only: one per partner page; three wanted, at most five fetches.
/// let page = search_page(None, 3, 5, listing, |n| n % 10 == 0).unwrap();
/// assert_eq!(page, Page { items: vec![0, 10, 20], next_cursor: Some("3".into()) });
/// let page = search_page(Some("8"), 3, 5, listing, |n| n % 10 == 0).unwrap();
/// assert_eq!(page, Page { items: vec![80, 90], next_cursor: None });
/// ```
pub fn search_page<T, E>(
    cursor: Option<&str>,
    min_items: usize,
    max_fetches: usize,
    mut fetch: impl FnMut(Option<&str>) -> Result<Page<T>, E>,
    mut keep: impl FnMut(&T) -> bool,
) -> Result<Page<T>, PagingError<E>> {
    let mut cursor: Option<String> = cursor.filter(|c| !c.is_empty()).map(str::to_string);
    let mut seen: BTreeSet<String> = cursor.iter().cloned().collect();
    let mut kept = Vec::new();
    for fetched in 1..=max_fetches.max(1) {
        let page = fetch(cursor.as_deref()).map_err(PagingError::Fetch)?;
        kept.extend(page.items.into_iter().filter(|item| keep(item)));
        let Some(next) = page.next_cursor.filter(|c| !c.is_empty()) else {
            return Ok(Page { items: kept, next_cursor: None });
        };
        if !seen.insert(next.clone()) {
            return Err(PagingError::RepeatedCursor);
        }
        if kept.len() >= min_items || fetched >= max_fetches {
            return Ok(Page { items: kept, next_cursor: Some(next) });
        }
        cursor = Some(next);
    }
    // Unreachable: the loop runs at least once and every iteration returns or continues with
    // fetched < max_fetches. Answer an empty last page rather than panic.
    Ok(Page { items: kept, next_cursor: None })
}

impl From<Page<Audience>> for AudiencePage {
    fn from(page: Page<Audience>) -> Self {
        AudiencePage { audiences: page.items, next_cursor: page.next_cursor.filter(|c| !c.is_empty()) }
    }
}

impl From<Page<Account>> for AccountPage {
    fn from(page: Page<Account>) -> Self {
        AccountPage { accounts: page.items, next_cursor: page.next_cursor.filter(|c| !c.is_empty()) }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A listing of `pages`, recording the cursors it was asked for.
    fn listing(
        pages: Vec<Vec<u32>>,
        asked: &RefCell<Vec<Option<String>>>,
    ) -> impl FnMut(Option<&str>) -> Result<Page<u32>, String> + '_ {
        move |cursor| {
            asked.borrow_mut().push(cursor.map(str::to_string));
            let i: usize = match cursor {
                None => 0,
                Some(c) => c.strip_prefix("p").and_then(|n| n.parse().ok()).ok_or("bad cursor")?,
            };
            let next = (i + 1 < pages.len()).then(|| format!("p{}", i + 1));
            Ok(Page { items: pages[i].clone(), next_cursor: next })
        }
    }

    #[test]
    fn collects_every_page_in_order() {
        let asked = RefCell::new(vec![]);
        let all = collect_all(10, listing(vec![vec![1, 2], vec![], vec![3]], &asked));
        assert_eq!(all, Ok(vec![1, 2, 3]));
        assert_eq!(*asked.borrow(), vec![None, Some("p1".into()), Some("p2".into())]);
    }

    #[test]
    fn find_first_stops_at_the_matching_page() {
        let asked = RefCell::new(vec![]);
        let found = find_first(10, listing(vec![vec![1], vec![2, 3], vec![4]], &asked), |n| *n > 1);
        assert_eq!(found, Ok(Some(2)));
        assert_eq!(asked.borrow().len(), 2);
    }

    #[test]
    fn find_first_reports_none_after_the_last_page() {
        let asked = RefCell::new(vec![]);
        let found = find_first(10, listing(vec![vec![1], vec![2]], &asked), |n| *n == 9);
        assert_eq!(found, Ok(None));
        assert_eq!(asked.borrow().len(), 2);
    }

    #[test]
    fn the_cap_stops_an_endless_listing() {
        let mut n = 0u32;
        let endless = |_: Option<&str>| {
            n += 1;
            Ok::<_, String>(Page { items: vec![n], next_cursor: Some(format!("c{n}")) })
        };
        assert_eq!(collect_all(5, endless), Err(PagingError::TooManyPages { max_pages: 5 }));
    }

    #[test]
    fn a_repeated_cursor_stops_the_walk() {
        let stuck = |_: Option<&str>| Ok::<_, String>(Page { items: vec![1], next_cursor: Some("same".into()) });
        assert_eq!(collect_all(50, stuck), Err(PagingError::RepeatedCursor));
    }

    #[test]
    fn an_empty_cursor_ends_the_listing() {
        let once = |_: Option<&str>| Ok::<_, String>(Page { items: vec![7], next_cursor: Some(String::new()) });
        assert_eq!(collect_all(5, once), Ok(vec![7]));
    }

    #[test]
    fn fetch_errors_pass_through() {
        let failing = |_: Option<&str>| Err::<Page<u32>, _>(DestinationError::Transient("down".into()));
        let err: DestinationError = collect_all(5, failing).unwrap_err().into();
        assert_eq!(err, DestinationError::Transient("down".into()));
        let capped: DestinationError = PagingError::<DestinationError>::TooManyPages { max_pages: 3 }.into();
        assert!(matches!(capped, DestinationError::InvalidRequest(_)));
    }

    #[test]
    fn search_page_stops_at_the_fetch_cap_with_a_cursor() {
        let asked = RefCell::new(vec![]);
        let page = search_page(None, 10, 2, listing(vec![vec![1], vec![2], vec![3]], &asked), |_| true);
        assert_eq!(page, Ok(Page { items: vec![1, 2], next_cursor: Some("p2".into()) }));
        assert_eq!(asked.borrow().len(), 2);
        let page = search_page(Some("p2"), 10, 2, listing(vec![vec![1], vec![2], vec![3]], &asked), |_| true);
        assert_eq!(page, Ok(Page { items: vec![3], next_cursor: None }));
    }

    #[test]
    fn search_page_guards() {
        let stuck = |_: Option<&str>| Ok::<_, String>(Page { items: vec![1], next_cursor: Some("same".into()) });
        assert_eq!(search_page(Some("same"), 5, 5, stuck, |_| true), Err(PagingError::RepeatedCursor));
        let once = |_: Option<&str>| Ok::<_, String>(Page { items: vec![1, 2], next_cursor: Some("n".into()) });
        assert_eq!(
            search_page(None, 1, 0, once, |n| *n == 2),
            Ok(Page { items: vec![2], next_cursor: Some("n".into()) })
        );
    }

    #[test]
    fn pages_convert() {
        let page: AudiencePage =
            Page { items: vec![crate::build::audience("a", "A")], next_cursor: Some(String::new()) }.into();
        assert_eq!((page.audiences.len(), page.next_cursor), (1, None));
    }
}
