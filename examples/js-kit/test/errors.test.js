import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  DestinationFailure, U32_MAX, httpFailure, isDestinationError, notFound, rateLimited, rejectedUsers, toDestinationError, transient,
} from '../src/errors.js';
import { noAnswer } from '../src/testing.js';

test('an http-error maps as the Rust SDK maps it', () => {
  const cases = [
    [{ tag: 'timeout' }, { tag: 'transient', val: "no response within the host's request timeout" }],
    [{ tag: 'too-large' }, { tag: 'transient', val: 'the response was larger than the host allows' }],
    [{ tag: 'connection', val: 'reset by peer' }, { tag: 'transient', val: 'connection failed: reset by peer' }],
    [{ tag: 'denied', val: 'host not allowed: evil.example' }, { tag: 'invalid-request', val: 'the host refused the request: host not allowed: evil.example' }],
  ];
  for (const [httpError, expected] of cases) {
    assert.deepEqual(httpFailure(/** @type {any} */ (httpError)).payload, expected);
  }
});

test('a failure is an Error with a readable message and the variant as payload', () => {
  const failure = notFound('HTTP 404: no such audience');
  assert.ok(failure instanceof Error && failure instanceof DestinationFailure);
  assert.equal(failure.message, 'not-found: HTTP 404: no such audience');
  assert.deepEqual(failure.payload, { tag: 'not-found', val: 'HTTP 404: no such audience' });
  assert.ok(Object.prototype.hasOwnProperty.call(failure, 'payload'), 'the bindings read an own payload');
  assert.equal(rateLimited(7000).message, 'rate-limited: retry after 7000 ms');
  assert.equal(rateLimited().message, 'rate-limited');
  assert.throws(() => new DestinationFailure(/** @type {any} */ ({ tag: 'gone', val: 'x' })), /not a destination-error/);
});

test('rejectedUsers carries exactly the key and reason of each user', () => {
  const failure = rejectedUsers([{ key: 'u1', reason: 'INVALID_SHA256_FORMAT', extra: 1 }]);
  assert.deepEqual(failure.payload, { tag: 'rejected-users', val: [{ key: 'u1', reason: 'INVALID_SHA256_FORMAT' }] });
  assert.equal(failure.message, 'rejected-users: 1 user(s) refused the whole request');
});

test('rate-limited waits are whole milliseconds within u32', () => {
  const cases = [[undefined, undefined], [1.6, 2], [-5, 0], [2 ** 40, U32_MAX], [7000, 7000]];
  for (const [given, expected] of cases) {
    assert.deepEqual(rateLimited(given).payload, { tag: 'rate-limited', val: expected });
  }
});

test('isDestinationError accepts exactly the WIT variant shapes', () => {
  const cases = [
    [{ tag: 'rate-limited', val: undefined }, true],
    [{ tag: 'rate-limited' }, true],
    [{ tag: 'rate-limited', val: 7000 }, true],
    [{ tag: 'rate-limited', val: -1 }, false],
    [{ tag: 'rate-limited', val: 1.5 }, false],
    [{ tag: 'transient', val: 'x' }, true],
    [{ tag: 'action-required', val: 'accept the terms' }, true],
    [{ tag: 'transient' }, false],
    [{ tag: 'rejected-users', val: [{ key: 'u1', reason: 'INVALID_SHA256_FORMAT' }] }, true],
    [{ tag: 'rejected-users', val: [] }, true],
    [{ tag: 'rejected-users', val: [{ key: 'u1' }] }, false],
    [{ tag: 'rejected-users', val: 'u1' }, false],
    [{ tag: 'timeout' }, false],
    [new Error('x'), false],
    [null, false],
    ['transient', false],
  ];
  for (const [value, expected] of cases) {
    assert.equal(isDestinationError(value), expected, JSON.stringify(value));
  }
});

test('toDestinationError: failures, variants and escaped import failures; bugs are not errors', () => {
  const cases = [
    [transient('down'), { tag: 'transient', val: 'down' }],
    [{ tag: 'not-found', val: 'gone' }, { tag: 'not-found', val: 'gone' }],
    [noAnswer({ tag: 'timeout' }), { tag: 'transient', val: "no response within the host's request timeout" }],
    [noAnswer({ tag: 'denied', val: 'plain http' }), { tag: 'invalid-request', val: 'the host refused the request: plain http' }],
    [new TypeError('x is undefined'), undefined],
    [new Error('not found'), undefined],
    [{ tag: 'not-found' }, undefined],
    [undefined, undefined],
  ];
  for (const [thrown, expected] of cases) {
    assert.deepEqual(toDestinationError(thrown), expected);
  }
});
