import { test } from 'node:test';
import assert from 'node:assert/strict';

import { MAX_QUOTED_CHARS, checkEmail, isSha256Hex, normalize, normalizeDeviceId, normalizeEmail } from '../src/identity.js';
import { isValidKindName, isWellKnown, WELL_KNOWN } from '../src/kinds.js';
import { excerpt, isWhiteSpaceCode, trimWhiteSpace } from '../src/text.js';
import { sha256HexNormalized } from '../src/testing.js';

// hashlib.sha256(b"alice@example.com").hexdigest(), as in the Rust SDK's tests.
const ALICE = 'ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976';

test('e-mail addresses: normalised, or refused with the Rust SDK reasons', () => {
  const cases = [
    [' Alice@Example.COM ', { ok: true, value: 'alice@example.com' }],
    ['ALICE@EXAMPLE.COM\t', { ok: true, value: 'alice@example.com' }],
    ['\u0085bob@example.org\u3000', { ok: true, value: 'bob@example.org' }],
    ['bob@', { ok: false, reason: "'bob@' has no domain" }],
    ['   ', { ok: false, reason: 'the value is empty' }],
    ['bob', { ok: false, reason: "'bob' has no '@'" }],
    ['a@b@c.com', { ok: false, reason: "'a@b@c.com' has more than one '@'" }],
    ['@x.com', { ok: false, reason: "'@x.com' has nothing before the '@'" }],
    ['bob@localhost', { ok: false, reason: "'bob@localhost' has no dot in its domain" }],
    ['bob@.com', { ok: false, reason: "'bob@.com' has an empty part in its domain" }],
    ['bob@a..com', { ok: false, reason: "'bob@a..com' has an empty part in its domain" }],
    ['bob@a.c', { ok: false, reason: "'bob@a.c' has a one-letter top-level domain" }],
    ['bo b@a.com', { ok: false, reason: "'bo b@a.com' contains whitespace" }],
    ['a\u0000b@a.com', { ok: false, reason: "'a\u0000b@a.com' contains whitespace" }],
    [`${'x'.repeat(60)}@`, { ok: false, reason: `'${'x'.repeat(MAX_QUOTED_CHARS)}…' has no domain` }],
    [`${'a'.repeat(250)}@b.com`, { ok: false, reason: `'${'a'.repeat(MAX_QUOTED_CHARS)}…' is longer than 254 characters` }],
  ];
  for (const [raw, expected] of cases) {
    assert.deepEqual(normalizeEmail(raw), expected, JSON.stringify(raw));
  }
});

test('device ids: UUID-shaped, lowercased, never all zero', () => {
  const cases = [
    [' 38400000-8CF0-11BD-B23E-10B96E40000D ', { ok: true, value: '38400000-8cf0-11bd-b23e-10b96e40000d' }],
    ['not-a-uuid', { ok: false, reason: "'not-a-uuid' is not a device id (8-4-4-4-12 hex digits)" }],
    ['38400000-8cf0-11bd-b23e-10b96e40000', { ok: false, reason: "'38400000-8cf0-11bd-b23e-10b96e40000' is not a device id (8-4-4-4-12 hex digits)" }],
    ['38400000x8cf0-11bd-b23e-10b96e40000d', { ok: false, reason: "'38400000x8cf0-11bd-b23e-10b96e40000d' is not a device id (8-4-4-4-12 hex digits)" }],
    ['00000000-0000-0000-0000-000000000000', { ok: false, reason: 'the all-zero device id means the user limited ad tracking' }],
    ['', { ok: false, reason: 'the value is empty' }],
  ];
  for (const [raw, expected] of cases) {
    assert.deepEqual(normalizeDeviceId(raw), expected, raw);
  }
});

test('already-hashed values are 64 hex digits of either case', () => {
  const cases = [[ALICE, true], [ALICE.toUpperCase(), true], [ALICE.slice(1), false], [`${ALICE.slice(1)}g`, false], [` ${ALICE}`, false]];
  for (const [value, expected] of cases) assert.equal(isSha256Hex(value), expected, value);
});

test("the host's normalizations, with Meta's documented digests", () => {
  const cases = [
    ['trim-lowercase', '  Mary@Example.com ', 'f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79'],
    ['none', 'mary@example.com', 'f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79'],
    ['digits-only', '+1 (555) 987-6543', '1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e'],
    ['trim-lowercase', ' Alice@Example.COM ', ALICE],
  ];
  for (const [normalization, value, digest] of cases) {
    assert.equal(sha256HexNormalized(/** @type {any} */ (normalization), value), digest, `${normalization} ${value}`);
  }
  const normalized = [
    ['letters-lowercase', "O'Brien-Smith", 'obriensmith'],
    ['letters-lowercase', 'Zoë', 'zoë'],
    ['letters-lowercase', 'ΣΊΣΥΦΟΣ 2', 'σίσυφοσ'], // each letter alone, as Rust's char::to_lowercase
    ['none', ' A ', ' A '],
    ['digits-only', '٣1x2', '12'], // ASCII digits only
  ];
  for (const [normalization, value, expected] of normalized) {
    assert.equal(normalize(/** @type {any} */ (normalization), value), expected, `${normalization} ${value}`);
  }
  assert.throws(() => normalize(/** @type {any} */ ('upper'), 'x'), /unknown normalization 'upper'/);
});

test('kinds and text helpers', () => {
  assert.equal(WELL_KNOWN.length, 13);
  assert.ok(WELL_KNOWN.every(isValidKindName));
  assert.equal(new Set(WELL_KNOWN).size, WELL_KNOWN.length);
  assert.ok(isWellKnown('mobile-ad-id') && !isWellKnown('shoe-size'));
  assert.ok(isValidKindName('shoe-size') && !isValidKindName('Shoe Size') && !isValidKindName('') && !isValidKindName('e_mail'));
  assert.equal(excerpt('abcdefghij', 4), 'abcd…');
  assert.equal(excerpt('ééééé', 2), 'éé…');
  assert.equal(excerpt('😀😀😀', 2), '😀😀…');
  assert.equal(excerpt('abc', 3), 'abc');
  assert.equal(trimWhiteSpace('\u0085 x \u00a0'), 'x');
  assert.equal(trimWhiteSpace('\ufeffx'), '\ufeffx');
});

test('the fast white-space test agrees with Unicode White_Space over the whole BMP', () => {
  const differing = [];
  for (let code = 0; code < 0x10000; code += 1) {
    if (isWhiteSpaceCode(code) !== /\p{White_Space}/u.test(String.fromCharCode(code))) differing.push(code.toString(16));
  }
  assert.deepEqual(differing, []);
  // astral characters are never White_Space, and trimming keeps surrogate pairs whole
  assert.equal(trimWhiteSpace(' 😀 '), '😀');
});

test('e-mail addresses with any White_Space or control character inside are refused', () => {
  const differing = [];
  for (let code = 0; code < 0x10000; code += 1) {
    const char = String.fromCharCode(code);
    if (/[\p{White_Space}\p{Cc}]/u.test(char) !== !normalizeEmail(`a${char}b@example.com`).ok && !/[@.A-Za-z]/.test(char)) differing.push(code.toString(16));
  }
  assert.deepEqual(differing, []);
});

test('the one-test path for plain addresses decides exactly as the step-by-step checks', () => {
  // Every string of up to 4 characters from the characters that matter, alone and placed around
  // '@' and '.', plus lengths at the limit and non-ASCII domains.
  const alphabet = ['a', 'Z', '@', '.', ' ', '\u0000', '-', 'é', '\u3000'];
  /** @type {string[]} */
  let strings = [''];
  const all = [''];
  for (let length = 1; length <= 4; length += 1) {
    strings = strings.flatMap((s) => alphabet.map((c) => s + c));
    all.push(...strings);
  }
  const shapes = all.flatMap((s) => [s, `${s}@x.io`, `a@${s}`, `a@b.${s}`, `${s}@${s}.${s}`]);
  shapes.push(`${'a'.repeat(248)}@b.com`, `${'a'.repeat(249)}@b.com`, 'ü@b.com', 'a@ü.com', 'a@b.üü', 'a@b.c😀', 'a@b.😀');
  let accepted = 0;
  for (const raw of shapes) {
    const got = normalizeEmail(raw);
    assert.deepEqual(got, checkEmail(trimWhiteSpace(raw).toLowerCase()), JSON.stringify(raw));
    if (got.ok) accepted += 1;
  }
  assert.ok(shapes.length > 30_000 && accepted > 100, `${shapes.length} shapes, ${accepted} accepted`);
});
