import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FakeHost, answer, noAnswer } from '@audience-host/destination-kit/testing';

import { createPlugin } from '../src/plugin.js';
import { batch, config, creds } from './support.js';

/** What an export answered, as the bindings pass it on: `{ ok }` or `{ err }` (a variant). */
async function call(/** @type {() => unknown} */ fn) {
  try {
    return { ok: await fn() };
  } catch (thrown) {
    assert.ok(!(thrown instanceof Error), `the bindings would crash on ${thrown}`);
    return { err: thrown };
  }
}

test('the exports answer as the webhook template does', async () => {
  const host = new FakeHost([answer(200, { body: '{"id":"a1","name":"VIPs"}' })]);
  const plugin = createPlugin(host);
  const renewal = { tag: /** @type {const} */ ('refresh'), val: creds() };
  assert.deepEqual(await call(() => plugin.authorize(config(), renewal)), { err: { tag: 'unauthorized', val: 'webhook tokens cannot be renewed; configure a new token for this connection' } });
  const code = { tag: /** @type {const} */ ('authorization-code'), val: { code: 'c', redirectUri: 'https://r' } };
  assert.equal((/** @type {any} */ (await call(() => plugin.authorize(config(), code)))).err.tag, 'invalid-request');
  assert.deepEqual(await call(() => plugin.listAccounts(config(), creds(), undefined)), { ok: { accounts: [{ id: 'default', name: 'Webhook receiver', permissions: [] }], nextCursor: undefined } });
  assert.equal((/** @type {any} */ (await call(() => plugin.checkSubmission(config(), creds(), 'default', { tag: 'existing', val: 'a1' }, 's-1')))).err.tag, 'invalid-request');
  const spec = { id: 'a1', name: 'VIPs', identifiers: ['email'], description: undefined, createIfMissing: false };
  const upserted = /** @type {any} */ (await call(() => plugin.upsertAudience(config(), creds(), 'default', spec)));
  assert.deepEqual([upserted.ok.tag, upserted.ok.val.id], ['ready', 'a1']);
  assert.equal(plugin.describe(config()).defaultHosts[0], 'receiver.test');
});

test('writes answer asynchronously; failures arrive as variants', async () => {
  const host = new FakeHost([answer(204), noAnswer({ tag: 'connection', val: 'reset by peer' })]);
  const plugin = createPlugin(host);
  const target = { tag: /** @type {const} */ ('existing'), val: 'a1' };
  const done = /** @type {any} */ (await call(() => plugin.removeUsers(config(), creds(), 'default', target, batch(3))));
  assert.equal(done.ok.tag, 'done');
  assert.match(host.bodyText(0), /"operation":"remove"/);
  assert.deepEqual(await call(() => plugin.addUsers(config(), creds(), 'default', target, batch(1))), { err: { tag: 'transient', val: 'connection failed: reset by peer' } });
});

test('no log line carries the token or the secret', async () => {
  const host = new FakeHost([answer(401), answer(500), answer(200, { body: '{}' })]);
  const plugin = createPlugin(host);
  const target = { tag: /** @type {const} */ ('existing'), val: 'a1' };
  await call(() => plugin.addUsers(config(), creds(), 'default', target, batch(1)));
  await call(() => plugin.searchAudiences(config(), creds(), 'default', '', undefined));
  await call(() => plugin.readAudience(config(), creds(), 'default', 'a1'));
  assert.ok(host.logs.length >= 2);
  for (const line of host.logs) assert.ok(!line.includes('tok-123') && !line.includes('shh-secret'), line);
});
