import { test } from 'node:test';
import assert from 'node:assert/strict';

import { notFound } from '../src/errors.js';
import { EXPORTS, exportPlugin } from '../src/plugin.js';
import { FakeHost, noAnswer } from '../src/testing.js';

/** An implementation whose every export answers `answer(name)`. */
function implementation(/** @type {(name: string) => unknown} */ answer) {
  return /** @type {any} */ (Object.fromEntries(EXPORTS.map((name) => [name, () => answer(name)])));
}

/** What the generated bindings do with what an export threw (componentize-js 0.23, getErrorPayload). */
function bindingsErr(/** @type {unknown} */ thrown) {
  if (thrown && Object.prototype.hasOwnProperty.call(thrown, 'payload')) return /** @type {any} */ (thrown).payload;
  if (thrown instanceof Error) return { crashed: thrown };
  return thrown;
}

/** Call `fn` and return what the bindings would make of it: `{ ok }`, `{ err }` or `{ crashed }`. */
async function call(/** @type {() => unknown} */ fn) {
  try {
    return { ok: await fn() };
  } catch (thrown) {
    const err = bindingsErr(thrown);
    return err && typeof err === 'object' && 'crashed' in err ? err : { err };
  }
}

test('every export must be implemented; the message names the missing ones', () => {
  const impl = implementation(() => undefined);
  delete impl.readAudience;
  delete impl.checkSubmission;
  assert.throws(() => exportPlugin(impl, new FakeHost()), /does not implement readAudience, checkSubmission: every export of interface plugin is required/);
});

test('failures reach the bindings as variants; escaped import failures are mapped; bugs crash after a log line', async () => {
  const host = new FakeHost();
  const cases = [
    ['readAudience', () => { throw notFound('HTTP 404: gone'); }, { err: { tag: 'not-found', val: 'HTTP 404: gone' } }],
    ['addUsers', () => Promise.reject(notFound('later')), { err: { tag: 'not-found', val: 'later' } }],
    ['listAccounts', () => { throw { tag: 'transient', val: 'plain object' }; }, { err: { tag: 'transient', val: 'plain object' } }],
    ['authorize', () => { throw noAnswer({ tag: 'timeout' }); }, { err: { tag: 'transient', val: "no response within the host's request timeout" } }],
    ['upsertAudience', () => { throw noAnswer({ tag: 'denied', val: 'host not allowed' }); }, { err: { tag: 'invalid-request', val: 'the host refused the request: host not allowed' } }],
    ['checkTarget', () => [], { ok: [] }],
    ['removeUsers', () => Promise.resolve({ tag: 'done' }), { ok: { tag: 'done' } }],
  ];
  for (const [name, behaviour, expected] of cases) {
    const plugin = exportPlugin(implementation((n) => (n === name ? /** @type {any} */ (behaviour)() : undefined)), host);
    assert.deepEqual(await call(() => /** @type {any} */ (plugin)[/** @type {string} */ (name)]()), expected, /** @type {string} */ (name));
  }
  assert.deepEqual(host.logs, [], 'answers and failures are not crashes');

  const bug = new TypeError("Cannot read properties of undefined (reading 'id')");
  const plugin = exportPlugin(implementation(() => { throw bug; }), host);
  assert.deepEqual(await call(() => plugin.searchAudiences(/** @type {any} */ ({}), /** @type {any} */ ({}), '', '', undefined)), { crashed: bug });
  assert.match(host.logs[0], /^error: searchAudiences crashed: TypeError: Cannot read properties of undefined/);
});

test('describe and prepareUsers have no error to answer: what they throw crashes them', async () => {
  const host = new FakeHost();
  const plugin = exportPlugin(implementation(() => { throw notFound('x'); }), host);
  const outcome = await call(() => plugin.prepareUsers([], []));
  assert.ok('err' in outcome || 'crashed' in outcome);
  assert.match(host.logs[0], /^error: prepareUsers crashed: DestinationFailure: not-found: x/);
});
