// Walking cursor-paginated listings without walking forever.
//
// Finding "the audience named X" means walking a partner's pages, and accounts can hold
// thousands of audiences, so the walk must not stop early, but it must stop: a partner bug that
// keeps returning a cursor would spin the plugin until the host kills the call. `findFirst` stops
// at a page cap, when a cursor comes back twice, and as soon as an item matches. An empty-string
// cursor counts as "no more pages". (The Rust SDK's `paging::find_first`.)

import { invalidRequest, transient } from './errors.js';

/** A reasonable cap for walks over a partner's listing: 200 pages. */
export const DEFAULT_MAX_PAGES = 200;

/**
 * One page of a listing.
 *
 * @template T
 * @typedef {{ items: T[], nextCursor?: string }} Page
 */

/**
 * The first item for which `matches` is true, fetching no page after the one it is on;
 * `undefined` when the whole listing was seen and nothing matched. Throws what `fetchPage`
 * throws; past `maxPages` pages an `invalid-request` failure (the same walk would hit the cap
 * again), on a repeated cursor a `transient` one (a partner glitch).
 *
 * @template T
 * @param {(cursor: string | undefined) => Page<T>} fetchPage
 * @param {(item: T) => boolean} matches
 * @param {number} [maxPages]
 * @returns {T | undefined}
 */
export function findFirst(fetchPage, matches, maxPages = DEFAULT_MAX_PAGES) {
  /** @type {string | undefined} */
  let cursor;
  const seen = new Set();
  for (let pages = 0; pages < maxPages; pages += 1) {
    const page = fetchPage(cursor);
    const found = page.items.find(matches);
    if (found !== undefined) return found;
    const next = page.nextCursor;
    if (next === undefined || next === '') return undefined;
    if (seen.has(next)) throw transient('the partner returned the same page cursor twice');
    seen.add(next);
    cursor = next;
  }
  throw invalidRequest(`gave up after ${maxPages} pages: the listing is longer than the cap`);
}
