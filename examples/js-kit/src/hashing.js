// Hashing identifiers through the host's `hashing` import, in bulk.
//
// SHA-256 written in JavaScript runs in the component's interpreter (no JIT in WebAssembly) and
// costs most of a call's 10 s budget for 10,000 users; the host hashes the same values in native
// code in one call. So queue every value while preparing users, hash the queue once, then pick
// each digest by its ticket. Validate before hashing (./identity.js): a hash hides garbage.

import { isSha256Hex, normalizeDeviceId, normalizeEmail } from './identity.js';
import { trimWhiteSpace } from './text.js';

/**
 * @typedef {import('audience:destination/hashing@0.2.0').Normalization} Normalization
 * @typedef {import('./host.js').Host} Host
 * @typedef {import('./identity.js').Checked} Checked
 */

/**
 * How many values one `hashing.sha256-hex` call gets (the host accepts up to 200,000; smaller
 * calls keep the component's memory for arguments and answers modest).
 */
export const HOST_HASH_CHUNK = 10_000;

/**
 * The SHA-256 hex of each of `values` after `normalization`, in order, computed by the host in
 * calls of at most `chunkSize` values.
 *
 * @param {Pick<Host, 'sha256Hex'>} host
 * @param {Normalization} normalization
 * @param {string[]} values
 * @param {number} [chunkSize]
 * @returns {string[]}
 */
export function hashAll(host, normalization, values, chunkSize = HOST_HASH_CHUNK) {
  /** @type {string[]} */
  const out = [];
  for (let start = 0; start < values.length; start += chunkSize) {
    const chunk = values.slice(start, start + chunkSize);
    const digests = host.sha256Hex(normalization, chunk);
    if (digests.length !== chunk.length) {
      throw new Error(`the host's hashing.sha256-hex answered ${digests.length} digests for ${chunk.length} values: the host is faulty, tell its operator`);
    }
    for (const digest of digests) out.push(digest);
  }
  return out;
}

/**
 * Values to hash, collected while preparing users, then hashed all at once through the host:
 * one `hashAll` per normalization used, none when nothing needs hashing.
 *
 * ```js
 * const queue = new HashQueue();
 * const email = queue.push('trim-lowercase', ' Alice@Example.COM ');
 * const digests = queue.hash(host);
 * digests[email]; // sha256 hex of 'alice@example.com'
 * ```
 */
export class HashQueue {
  constructor() {
    /** @type {Array<{ normalization: Normalization, value: string } | { digest: string }>} */
    this.entries = [];
  }

  /**
   * Queue `value` to be hashed after `normalization`; returns its ticket (an index).
   *
   * @param {Normalization} normalization
   * @param {string} value
   * @returns {number}
   */
  push(normalization, value) {
    return this.entries.push({ normalization, value }) - 1;
  }

  /**
   * Queue a value that already is a digest: it comes back trimmed and lowercased, unhashed.
   *
   * @param {string} digest
   * @returns {number}
   */
  pushHashed(digest) {
    return this.entries.push({ digest: trimWhiteSpace(digest).toLowerCase() }) - 1;
  }

  /**
   * `pushHashed` when `value` (trimmed) already is a SHA-256 hex digest, else `push`.
   *
   * @param {Normalization} normalization
   * @param {string} value
   * @returns {number}
   */
  pushUnlessHashed(normalization, value) {
    return isSha256Hex(trimWhiteSpace(value)) ? this.pushHashed(value) : this.push(normalization, value);
  }

  /** How many values are queued. */
  get size() {
    return this.entries.length;
  }

  /**
   * Hash every queued value through `host`: the digests, indexed by ticket.
   *
   * @param {Pick<Host, 'sha256Hex'>} host
   * @returns {string[]}
   */
  hash(host) {
    /** @type {string[]} */
    const out = new Array(this.entries.length).fill('');
    /** @type {Map<Normalization, { slots: number[], values: string[] }>} */
    const groups = new Map();
    this.entries.forEach((entry, slot) => {
      if ('digest' in entry) {
        out[slot] = entry.digest;
        return;
      }
      let group = groups.get(entry.normalization);
      if (group === undefined) {
        group = { slots: [], values: [] };
        groups.set(entry.normalization, group);
      }
      group.slots.push(slot);
      group.values.push(entry.value);
    });
    for (const [normalization, { slots, values }] of groups) {
      hashAll(host, normalization, values).forEach((digest, i) => {
        out[slots[i]] = digest;
      });
    }
    return out;
  }
}

/**
 * Check and normalise each of `raws` with `normalize` (in JavaScript: cheap), then hash the
 * normalised values through `host` in bulk; a value that already is a SHA-256 hex digest (after
 * trimming) passes through, lowercased. One result per value, in order.
 *
 * @param {Pick<Host, 'sha256Hex'>} host
 * @param {string[]} raws
 * @param {(raw: string) => Checked} normalize
 * @returns {Checked[]}
 */
export function hashedManyWith(host, raws, normalize) {
  const queue = new HashQueue();
  const tickets = raws.map((raw) => {
    const trimmed = trimWhiteSpace(raw);
    if (isSha256Hex(trimmed)) return { ok: true, ticket: queue.pushHashed(trimmed) };
    const checked = normalize(trimmed);
    return checked.ok ? { ok: true, ticket: queue.push('none', checked.value) } : checked;
  });
  const digests = queue.hash(host);
  return tickets.map((t) => ('ticket' in t ? { ok: true, value: digests[t.ticket] } : /** @type {Checked} */ (t)));
}

/**
 * The SHA-256 hex of each e-mail address after `normalizeEmail`, hashed by the host in bulk
 * (see `hashedManyWith`).
 *
 * @param {Pick<Host, 'sha256Hex'>} host
 * @param {string[]} raws
 * @returns {Checked[]}
 */
export function hashedEmails(host, raws) {
  return hashedManyWith(host, raws, normalizeEmail);
}

/**
 * The SHA-256 hex of each device id (MAID or IDFA) after `normalizeDeviceId`, hashed by the
 * host in bulk (see `hashedManyWith`).
 *
 * @param {Pick<Host, 'sha256Hex'>} host
 * @param {string[]} raws
 * @returns {Checked[]}
 */
export function hashedDeviceIds(host, raws) {
  return hashedManyWith(host, raws, normalizeDeviceId);
}
