import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FakeHost, answer } from '@audience-host/destination-kit/testing';

import { checkTarget, readAudience, searchAudiences, upsertAudience } from '../src/audiences.js';
import { config, creds } from './support.js';

/** An audience spec named VIPs. */
function spec(/** @type {string | undefined} */ id, /** @type {string[]} */ identifiers, /** @type {boolean} */ createIfMissing) {
  return { id, name: 'VIPs', identifiers, description: undefined, createIfMissing };
}

test('search pages and reads', () => {
  const page = '{"audiences":[{"id":"a1","name":"VIPs","size":1200,"state":"ready"},{"name":"no id"}],"next_cursor":"c2"}';
  const host = new FakeHost([answer(200, { body: page }), answer(200, { body: '{}' })]);
  const got = searchAudiences(host, config(), creds(), 'default', 'vip', undefined);
  assert.equal(got.audiences.length, 1);
  const a = got.audiences[0];
  assert.deepEqual([a.id, a.name, a.state, a.size.upper, a.created], ['a1', 'VIPs', 'ready', 1200n, false]);
  assert.equal(got.nextCursor, 'c2');
  assert.equal(host.requests[0].url, 'http://receiver.test/audiences?account=default&query=vip');
  const last = searchAudiences(host, config(), creds(), 'default', '', 'c2');
  assert.deepEqual([last.audiences.length, last.nextCursor], [0, undefined]);
  assert.ok(host.requests[1].url.endsWith('&cursor=c2'));

  const reader = new FakeHost([answer(200, { body: '{"state":"too-small"}' })]);
  const read = readAudience(reader, config(), creds(), 'default', 'a 1');
  assert.deepEqual([read.id, read.state], ['a 1', 'too-small']);
  assert.equal(reader.requests[0].url, 'http://receiver.test/audience?account=default&id=a%201');
});

test('upsert uses the picked id, else finds or creates by name; an answer without id is transient', () => {
  const host = new FakeHost([answer(200, { body: '{"id":"a1","name":"Old name"}' })]);
  const a = upsertAudience(host, config(), creds(), 'default', spec('a1', ['email'], true));
  assert.deepEqual([a.id, a.name, a.created, host.requests[0].method], ['a1', 'Old name', false, 'GET']);

  const creator = new FakeHost([answer(201, { body: '{"id":"a2","created":true}' })]);
  const b = upsertAudience(creator, config(), creds(), 'default', spec(undefined, ['email'], true));
  assert.deepEqual([b.id, b.name, b.created], ['a2', 'VIPs', true]);
  assert.deepEqual(JSON.parse(creator.bodyText(0)), { account: 'default', name: 'VIPs', description: null, identifiers: ['email'], create_if_missing: true });

  const empty = new FakeHost([answer(200, { body: '{}' })]);
  assert.throws(() => upsertAudience(empty, config(), creds(), 'default', spec(undefined, [], true)), (e) => /** @type {any} */ (e).payload.tag === 'transient');
});

test('check-target lists every problem and creates nothing', () => {
  const gone = new FakeHost([answer(404)]);
  assert.deepEqual(checkTarget(gone, config(), creds(), 'default', spec('gone', ['phone'], true)).map((p) => p.part), ['identifiers', 'audience']);

  const flagged = new FakeHost([answer(200, { body: '{"id":"a1","name":"VIPs","state":"unusable","status":"flagged"}' })]);
  const problems = checkTarget(flagged, config(), creds(), 'default', spec('a1', ['email'], true));
  assert.equal(problems.length, 1);
  assert.match(problems[0].message, /flagged/);

  const byName = new FakeHost([answer(200, { body: '{"audiences":[{"id":"x","name":"VIPs 2"}]}' })]);
  assert.equal(checkTarget(byName, config(), creds(), 'default', spec(undefined, ['email'], false)).length, 1);

  const creatable = new FakeHost();
  assert.deepEqual(checkTarget(creatable, config(), creds(), 'default', spec(undefined, ['email'], true)), []);
  for (const host of [gone, flagged, byName, creatable]) assert.ok(host.requests.every((r) => r.method === 'GET'));

  const down = new FakeHost([answer(503)]);
  assert.throws(() => checkTarget(down, config(), creds(), 'default', spec('a1', ['email'], true)), (e) => /** @type {any} */ (e).payload.tag === 'transient');
});
