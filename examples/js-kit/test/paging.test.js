import { test } from 'node:test';
import assert from 'node:assert/strict';

import { findFirst } from '../src/paging.js';

/** Pages of numbers; cursors are page indexes; records what was fetched. */
function listing(/** @type {number[][]} */ pages, /** @type {(i: number) => string | undefined} */ next = (i) => (i + 1 < pages.length ? String(i + 1) : undefined)) {
  /** @type {Array<string | undefined>} */
  const fetched = [];
  const fetchPage = (/** @type {string | undefined} */ cursor) => {
    fetched.push(cursor);
    const i = cursor === undefined ? 0 : Number(cursor);
    return { items: pages[i] ?? [], nextCursor: next(i) };
  };
  return { fetched, fetchPage };
}

test('findFirst stops on the page holding the match', () => {
  const { fetched, fetchPage } = listing([[1, 2], [3, 4], [5]]);
  assert.equal(findFirst(fetchPage, (n) => n === 3), 3);
  assert.deepEqual(fetched, [undefined, '1']);
});

test('findFirst walks to the end when nothing matches; an empty cursor ends the listing', () => {
  const { fetched, fetchPage } = listing([[1], [2]]);
  assert.equal(findFirst(fetchPage, (n) => n === 9), undefined);
  assert.deepEqual(fetched, [undefined, '1']);
  const empty = listing([[1], [2]], () => '');
  assert.equal(findFirst(empty.fetchPage, (n) => n === 2), undefined);
  assert.deepEqual(empty.fetched, [undefined]);
});

test('findFirst gives up on a repeated cursor (transient) and past the cap (invalid-request)', () => {
  const loop = listing([[1], [2]], () => '1');
  assert.throws(() => findFirst(loop.fetchPage, () => false), (e) => /** @type {any} */ (e).payload.tag === 'transient');
  const endless = listing([], (i) => String(i + 1));
  assert.throws(() => findFirst(endless.fetchPage, () => false, 5), (e) => /** @type {any} */ (e).payload.val === 'gave up after 5 pages: the listing is longer than the cap');
  assert.equal(endless.fetched.length, 5);
});
