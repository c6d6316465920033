// Normalising and checking the identifiers users are matched on, as the Rust SDK
// (`audience_plugin_sdk::identity`) and the host do it, with the same reasons.
//
// Partners match hashed identifiers, so two spellings of one address must hash alike: trim,
// lowercase, then SHA-256 hex. Checking before hashing matters too: a hash hides garbage, so a
// malformed address would be uploaded, never match, and never be reported. The checks are about
// plausibility, not RFC 5322, and each reason quotes at most MAX_QUOTED_CHARS characters.
//
// Hashing itself is in ./hashing.js: through the host's `hashing` import, in bulk.

import { excerpt, trimWhiteSpace } from './text.js';

/** How much of a rejected value a reason quotes. */
export const MAX_QUOTED_CHARS = 40;

/** The longest e-mail address accepted (RFC 5321's limit on a forward path), in characters. */
export const MAX_EMAIL_LEN = 254;

/**
 * A checked value, or why it is not usable (words an operator can act on).
 *
 * @typedef {{ ok: true, value: string } | { ok: false, reason: string }} Checked
 */

/** @param {string} value @returns {Checked} */
const ok = (value) => ({ ok: true, value });
/** @param {string} reason @returns {Checked} */
const refused = (reason) => ({ ok: false, reason });
/** @param {string} value */
const quoted = (value) => excerpt(value, MAX_QUOTED_CHARS);

// White_Space and control characters (Cc), spelled out: a `\p{...}` class is slow in the
// component's interpreter.
const SPACE_OR_CONTROL = /[\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

// An ASCII address that passes every check below, in one test: the common case, decided without
// the step-by-step checks (which alone say what is wrong). Printable ASCII without '@' before
// the '@'; after it, labels without '.' or '@', at least two, the last of two or more.
const PLAIN_ASCII_EMAIL = /^[\x21-\x3f\x41-\x7e]+@[\x21-\x2d\x2f-\x3f\x41-\x7e]+(?:\.[\x21-\x2d\x2f-\x3f\x41-\x7e]+)*\.[\x21-\x2d\x2f-\x3f\x41-\x7e]{2,}$/;

/**
 * Trim and lowercase an e-mail address and check it looks like `local@domain.tld`.
 *
 * @param {string} raw
 * @returns {Checked}
 */
export function normalizeEmail(raw) {
  const email = trimWhiteSpace(raw).toLowerCase();
  if (email.length <= MAX_EMAIL_LEN && PLAIN_ASCII_EMAIL.test(email)) return ok(email);
  return checkEmail(email);
}

/**
 * The step-by-step checks of a trimmed, lowercased address, naming the first problem; what
 * `normalizeEmail` decides for anything its one-test path does not take.
 *
 * @param {string} email
 * @returns {Checked}
 */
export function checkEmail(email) {
  if (email === '') return refused('the value is empty');
  const q = `'${quoted(email)}'`;
  if (email.length > MAX_EMAIL_LEN && [...email].length > MAX_EMAIL_LEN) return refused(`${q} is longer than ${MAX_EMAIL_LEN} characters`);
  if (SPACE_OR_CONTROL.test(email)) return refused(`${q} contains whitespace`);
  const at = email.indexOf('@');
  if (at < 0) return refused(`${q} has no '@'`);
  const local = email.slice(0, at);
  const domain = email.slice(at + 1);
  if (domain.includes('@')) return refused(`${q} has more than one '@'`);
  if (local === '') return refused(`${q} has nothing before the '@'`);
  if (domain === '') return refused(`${q} has no domain`);
  if (!domain.includes('.')) return refused(`${q} has no dot in its domain`);
  const labels = domain.split('.');
  if (labels.some((label) => label === '')) return refused(`${q} has an empty part in its domain`);
  if ([...labels[labels.length - 1]].length < 2) return refused(`${q} has a one-letter top-level domain`);
  return ok(email);
}

const UUID_SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ZERO_ID = /^[0-]+$/;

/**
 * Trim and lowercase a mobile advertising id (Android MAID or Apple IDFA) and check it has the
 * UUID shape `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. The all-zero id is refused: devices report
 * it when the user limited ad tracking, so it matches nobody (or everybody).
 *
 * @param {string} raw
 * @returns {Checked}
 */
export function normalizeDeviceId(raw) {
  const id = trimWhiteSpace(raw).replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
  if (id === '') return refused('the value is empty');
  if (!UUID_SHAPE.test(id)) return refused(`'${quoted(id)}' is not a device id (8-4-4-4-12 hex digits)`);
  if (ZERO_ID.test(id)) return refused('the all-zero device id means the user limited ad tracking');
  return ok(id);
}

/**
 * Whether `value` is exactly 64 hex digits (either case): an already-hashed identifier.
 *
 * @param {string} value
 * @returns {boolean}
 */
export function isSha256Hex(value) {
  return value.length === 64 && /^[0-9a-fA-F]{64}$/.test(value);
}

/**
 * `value` normalised as the host's `hashing` import normalises it before hashing:
 *
 * | normalization       | what is kept                                              |
 * |---------------------|-----------------------------------------------------------|
 * | `none`              | the value as given                                        |
 * | `trim-lowercase`    | the value trimmed of surrounding whitespace, lowercased   |
 * | `digits-only`       | ASCII digits only                                         |
 * | `letters-lowercase` | letters only (any script), each lowercased                |
 *
 * The host does this itself; use it to predict a digest in a test, or to send a normalised
 * value unhashed.
 *
 * @param {import('audience:destination/hashing@0.2.0').Normalization} normalization
 * @param {string} value
 * @returns {string}
 */
export function normalize(normalization, value) {
  switch (normalization) {
    case 'none':
      return value;
    case 'trim-lowercase':
      return trimWhiteSpace(value).toLowerCase();
    case 'digits-only':
      return value.replace(/[^0-9]+/g, '');
    case 'letters-lowercase':
      return [...value].filter((char) => /\p{Alphabetic}/u.test(char)).map((char) => char.toLowerCase()).join('');
    default:
      throw new TypeError(`unknown normalization '${normalization}': use none, trim-lowercase, digits-only or letters-lowercase`);
  }
}
