import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';

import { FakeHost, answer, noAnswer } from '@audience-host/destination-kit/testing';

import { batchBody, writeUsers } from '../src/delivery.js';
import { MAX_BATCH_SIZE } from '../src/manifest.js';
import { BUDGET_REGAIN_HEADER, BUDGET_USED_HEADER } from '../src/receiver.js';
import { ATTEMPT_HEADER, BATCH_ID_HEADER, SIGNATURE_HEADER } from '../src/signature.js';
import { batch, config, creds, users } from './support.js';

/** @typedef {import('audience:destination/types@0.2.0').Batch} Batch */

/** Add `b` to audience `vips` through `host`. */
function add(/** @type {FakeHost} */ host, /** @type {Batch} */ b) {
  return writeUsers(host, config(), creds(), 'default', { tag: 'existing', val: 'vips' }, 'add', b);
}

/** What `promise` rejected with, as the host would receive it. */
async function failure(/** @type {Promise<unknown>} */ promise) {
  try {
    await promise;
  } catch (thrown) {
    return /** @type {any} */ (thrown).payload;
  }
  throw new Error('expected a failure');
}

test('the body has the documented shape', () => {
  const body = new TextDecoder().decode(batchBody('remove', 'acct', 'vips', users(1)));
  assert.equal(body, '{"operation":"remove","account":"acct","audience":"vips","users":[{"key":"k0","identifiers":[{"kind":"external-id","value":"crm-0"}]}]}');
});

test('a batch is posted, signed, with batch id and attempt; rejections are reported', async () => {
  const host = new FakeHost([answer(200, {
    body: '{"rejected":[{"key":"k1","reason":"unknown id"}],"unattributed":[{"count":2,"reason":"bad rows","samples":["x"]},{"count":0}]}',
  })]);
  const outcome = await add(host, batch(2));
  assert.deepEqual(outcome, {
    tag: 'done',
    val: { rejected: [{ key: 'k1', reason: 'unknown id' }], unattributed: [{ count: 2, reason: 'bad rows', samples: ['x'] }], created: undefined },
  });
  const request = host.requests[0];
  assert.equal(request.method, 'POST');
  assert.equal(request.url, 'http://receiver.test/audience-batches');
  // What a receiver computes over the raw body it got (see README.md).
  assert.equal(host.header(0, SIGNATURE_HEADER), `sha256=${createHmac('sha256', 'shh-secret').update(request.body).digest('hex')}`);
  assert.equal(host.header(0, 'authorization'), 'Bearer tok-123');
  assert.equal(host.header(0, 'content-type'), 'application/json');
  assert.equal(host.header(0, BATCH_ID_HEADER), 'b-1');
  assert.equal(host.header(0, ATTEMPT_HEADER), '2');
  assert.ok(host.logs.length > 0 && host.logs.every((line) => !line.includes('tok-123') && !line.includes('shh-secret')));
});

test('a missing batch id falls back to the hash of the body', async () => {
  const host = new FakeHost([answer(204)]);
  await add(host, { ...batch(1), id: '' });
  const expected = createHash('sha256').update(host.requests[0].body).digest('hex').slice(0, 32);
  assert.equal(host.header(0, BATCH_ID_HEADER), expected);
});

test("the receiver's budget headers are reported to the host", async () => {
  const host = new FakeHost([
    answer(204, { headers: { [BUDGET_USED_HEADER]: '91.5', [BUDGET_REGAIN_HEADER]: '4000' } }),
    answer(429, { headers: { [BUDGET_USED_HEADER]: '100' } }),
    answer(204, { headers: { [BUDGET_USED_HEADER]: 'lots' } }),
    answer(204, { headers: { [BUDGET_USED_HEADER]: '91.5%' } }),
    answer(204, { headers: { [BUDGET_USED_HEADER]: ' ' } }),
  ]);
  await add(host, batch(1));
  assert.deepEqual(await failure(add(host, batch(1))), { tag: 'rate-limited', val: undefined });
  for (let i = 0; i < 3; i += 1) await add(host, batch(1));
  assert.deepEqual(host.budgets, [{ usedPercent: 91.5, regainAfterMs: 4000n }, { usedPercent: 100, regainAfterMs: undefined }]);
});

test('errors follow the kit mapping the host retries by', async () => {
  /** @type {Array<[import('audience:destination/http-client@0.2.0').Response | Error, string, RegExp?]>} */
  const cases = [
    [answer(401), 'unauthorized'],
    [answer(403), 'unauthorized'],
    [answer(404, { body: '{"message":"no such audience"}' }), 'not-found', /no such audience/],
    [answer(429, { headers: { 'retry-after': '7' } }), 'rate-limited 7000'],
    [answer(503), 'transient'],
    [answer(422), 'invalid-request'],
    [noAnswer({ tag: 'timeout' }), 'transient'],
    [noAnswer({ tag: 'denied', val: 'host not allowed' }), 'invalid-request'],
    [answer(200, { body: '<html>' }), 'transient', /not the expected JSON/],
  ];
  for (const [scripted, expected, message] of cases) {
    const host = new FakeHost([scripted]);
    const error = await failure(add(host, batch(1)));
    const got = error.tag === 'rate-limited' ? `rate-limited ${error.val}` : error.tag;
    assert.equal(got, expected, JSON.stringify(scripted));
    if (message) assert.match(error.val, message);
    assert.ok(host.logs.every((line) => !line.includes('tok-123')));
  }
});

test('an oversized batch is refused without a request', async () => {
  const host = new FakeHost();
  const error = await failure(add(host, batch(MAX_BATCH_SIZE + 1)));
  assert.equal(error.tag, 'invalid-request');
  assert.match(error.val, /exceeds the receiver's limit of 1000/);
  assert.equal(host.requests.length, 0);
});

test('a create target upserts, then delivers into the new audience', async () => {
  const host = new FakeHost([answer(201, { body: '{"id":"aud-7","created":true}' }), answer(204)]);
  const spec = { id: undefined, name: 'VIPs', identifiers: ['email'], description: undefined, createIfMissing: true };
  const outcome = await writeUsers(host, config(), creds(), 'default', { tag: 'create', val: spec }, 'add', batch(1));
  assert.ok(outcome.tag === 'done');
  const created = outcome.val.created;
  assert.deepEqual([created?.id, created?.name, created?.created], ['aud-7', 'VIPs', true]);
  assert.equal(host.requests[0].url, 'http://receiver.test/audiences');
  assert.match(host.bodyText(1), /"audience":"aud-7"/);
});
