import { test } from 'node:test';
import assert from 'node:assert/strict';

import { HOST_HASH_CHUNK, HashQueue, hashAll, hashedDeviceIds, hashedEmails } from '../src/hashing.js';
import { FakeHost, sha256HexNormalized } from '../src/testing.js';

const ALICE = 'ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976';
const MAID = 'd4181bb455a74b3bc8b37c75ac9b2c702eb6b9930bd040b861403b31ca85634d';

test('hashAll asks the host in chunks, one digest per value in order', () => {
  const host = new FakeHost();
  const values = Array.from({ length: HOST_HASH_CHUNK + 5 }, (_, i) => `value-${i}`);
  const digests = hashAll(host, 'none', values);
  assert.equal(digests.length, values.length);
  assert.equal(digests[HOST_HASH_CHUNK + 4], sha256HexNormalized('none', values[HOST_HASH_CHUNK + 4]));
  assert.deepEqual(host.hashCalls, [HOST_HASH_CHUNK, 5]);
  assert.deepEqual(hashAll(host, 'trim-lowercase', [' Alice@Example.COM ']), [ALICE]);
  assert.deepEqual(hashAll(host, 'none', []), []);
  assert.deepEqual(host.hashCalls, [HOST_HASH_CHUNK, 5, 1]);
});

test('a host answering the wrong number of digests is reported, not papered over', () => {
  const host = { sha256Hex: () => ['only-one'] };
  assert.throws(() => hashAll(host, 'none', ['a', 'b']), /answered 1 digests for 2 values: the host is faulty/);
});

test('a queue hashes once per normalization and passes digests through', () => {
  const host = new FakeHost();
  const queue = new HashQueue();
  const a = queue.push('trim-lowercase', ' A ');
  const b = queue.push('digits-only', '1-2');
  const c = queue.pushUnlessHashed('trim-lowercase', ` ${ALICE.toUpperCase()} `);
  const d = queue.push('trim-lowercase', 'B');
  assert.equal(queue.size, 4);
  const digests = queue.hash(host);
  assert.equal(digests[a], sha256HexNormalized('none', 'a'));
  assert.equal(digests[b], sha256HexNormalized('none', '12'));
  assert.equal(digests[c], ALICE);
  assert.equal(digests[d], sha256HexNormalized('none', 'b'));
  assert.deepEqual(host.hashCalls, [2, 1]);
  assert.deepEqual(new HashQueue().hash(host), []);
  assert.deepEqual(host.hashCalls, [2, 1], 'an empty queue calls nothing');
});

test('hashed e-mails and device ids: checked in JS, hashed by the host in one call', () => {
  const host = new FakeHost();
  const emails = hashedEmails(host, [' Alice@Example.COM ', 'bob@', ALICE.toUpperCase(), 'carol@example.com']);
  assert.deepEqual(emails, [
    { ok: true, value: ALICE },
    { ok: false, reason: "'bob@' has no domain" },
    { ok: true, value: ALICE },
    { ok: true, value: sha256HexNormalized('none', 'carol@example.com') },
  ]);
  assert.deepEqual(host.hashCalls, [2]);
  assert.deepEqual(hashedDeviceIds(host, [' 38400000-8CF0-11BD-B23E-10B96E40000D ', MAID, 'nope']), [
    { ok: true, value: MAID },
    { ok: true, value: MAID },
    { ok: false, reason: "'nope' is not a device id (8-4-4-4-12 hex digits)" },
  ]);
});
