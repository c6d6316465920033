import { test } from 'node:test';
import assert from 'node:assert/strict';

import { FakeHost, sha256HexNormalized } from '@audience-host/destination-kit/testing';

import { prepareUsers } from '../src/prepare.js';

// hashlib.sha256(b"alice@example.com").hexdigest()
const ALICE = 'ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976';
const MAID = 'd4181bb455a74b3bc8b37c75ac9b2c702eb6b9930bd040b861403b31ca85634d';

/** A raw user with these (kind, value) identifiers. */
function user(/** @type {Array<[string, string]>} */ ids, key = 'u') {
  return { key, identifiers: ids.map(([kind, value]) => ({ kind, value })), consent: undefined };
}

test('hashes e-mails and device ids through the host, keeps external ids', () => {
  const host = new FakeHost();
  const out = prepareUsers(host, ['email', 'external-id', 'mobile-ad-id'], [
    user([['email', ' Alice@Example.COM '], ['external-id', ' crm-42 '], ['mobile-ad-id', '38400000-8CF0-11BD-B23E-10B96E40000D']]),
  ]);
  assert.deepEqual(out, [{
    tag: 'ready',
    val: {
      key: 'u',
      identifiers: [{ kind: 'email', value: ALICE }, { kind: 'external-id', value: 'crm-42' }, { kind: 'mobile-ad-id', value: MAID }],
      consent: undefined,
    },
  }]);
});

test('only selected, supported fields; reasons an operator can act on', () => {
  const host = new FakeHost();
  const out = prepareUsers(host, ['email'], [user([['external-id', 'crm-42']]), user([['email', 'bob@']])]);
  assert.deepEqual(out, [
    { tag: 'not-synced', val: 'none of the selected identifiers is present' },
    { tag: 'not-synced', val: "no usable email: 'bob@' has no domain" },
  ]);
  const phone = prepareUsers(host, ['phone'], [user([['phone', '+15550000001']])]);
  assert.equal(phone[0].tag, 'not-synced');
  const many = prepareUsers(host, ['email'], [user([['email', 'a'], ['email', 'b'], ['email', 'c'], ['email', 'd'], ['email', 'e']])]);
  assert.deepEqual(many[0], { tag: 'not-synced', val: "no usable email: 'a' has no '@'; no usable email: 'b' has no '@'; no usable email: 'c' has no '@'; and 2 more" });
});

test('already-hashed values pass through; duplicates collapse; odd external ids are refused', () => {
  const host = new FakeHost();
  const out = prepareUsers(host, ['email'], [user([['email', ALICE.toUpperCase()], ['email', ' alice@example.com '], ['email', `  ${ALICE}`]])]);
  assert.deepEqual(out[0], { tag: 'ready', val: { key: 'u', identifiers: [{ kind: 'email', value: ALICE }], consent: undefined } });
  for (const odd of ['', ' ', 'a\u0000b', 'x'.repeat(300)]) {
    const [prepared] = prepareUsers(host, ['external-id'], [user([['external-id', odd]])]);
    assert.equal(prepared.tag, 'not-synced', JSON.stringify(odd));
  }
  const [control] = prepareUsers(host, ['external-id'], [user([['external-id', 'a\u0000b']])]);
  assert.deepEqual(control, { tag: 'not-synced', val: "no usable external-id: 'a\\u{0}b' contains a control character" });
});

test('consent is copied; one preparation per user, in order', () => {
  const host = new FakeHost();
  const consent = { adUserData: /** @type {const} */ ('granted'), adPersonalization: /** @type {const} */ ('denied') };
  const [out] = prepareUsers(host, ['external-id'], [{ ...user([['external-id', 'x']]), consent }]);
  assert.ok(out.tag === 'ready' && out.val.consent === consent);
  assert.deepEqual(prepareUsers(host, ['email'], []), []);
});

test('10,000 users are hashed in one host call', () => {
  const host = new FakeHost();
  const raws = Array.from({ length: 10_000 }, (_, i) => user([['email', `User.${i}@Example.com`]], `k${i}`));
  const out = prepareUsers(host, ['email'], raws);
  assert.equal(out.length, 10_000);
  assert.deepEqual(host.hashCalls, [10_000]);
  const last = out[9_999];
  assert.ok(last.tag === 'ready' && last.val.key === 'k9999' && last.val.identifiers[0].value === sha256HexNormalized('none', 'user.9999@example.com'));
});
