// Constructors for the contract's larger records, with the usual defaults, and the one type
// trap they hide: `u64` fields (sizes, expiry times) are `bigint`, not `number`.

/**
 * @typedef {import('audience:destination/types@0.2.0').Audience} Audience
 * @typedef {import('audience:destination/types@0.2.0').AudienceSize} AudienceSize
 * @typedef {import('audience:destination/types@0.2.0').Limits} Limits
 * @typedef {import('audience:destination/types@0.2.0').UnattributedRejection} UnattributedRejection
 */

/** At most this many samples are kept in an unattributed rejection (the contract's limit). */
export const MAX_UNATTRIBUTED_SAMPLES = 10;

/**
 * An exact audience size (a `u64`, so a `bigint` on the wire: `size.lower === 42n`).
 *
 * @param {number | bigint} count
 * @returns {AudienceSize}
 */
export function exactSize(count) {
  const n = BigInt(count);
  return { lower: n, upper: n };
}

/**
 * An audience found at the partner: not created by this call, identifiers unknown, size not
 * reported, state `unknown`; `fields` overrides any of that.
 *
 * @param {string} id
 * @param {string} name
 * @param {Partial<Audience>} [fields]
 * @returns {Audience}
 */
export function audience(id, name, fields = {}) {
  return { id, name, created: false, identifiers: [], size: {}, state: 'unknown', details: [], ...fields };
}

/**
 * Limits with the three classic numbers; no cap on outstanding submissions and no
 * per-application rate.
 *
 * @param {number} maxBatchSize
 * @param {number} requestsPerSecond
 * @param {number} maxConcurrentRequests
 * @returns {Limits}
 */
export function limits(maxBatchSize, requestsPerSecond, maxConcurrentRequests) {
  return { maxBatchSize, requestsPerSecond, maxConcurrentRequests, maxSubmissionsPerAudience: 0 };
}

/**
 * Rows the partner dropped without naming them; keeps at most `MAX_UNATTRIBUTED_SAMPLES` samples.
 *
 * @param {number} count
 * @param {string} reason
 * @param {string[]} [samples]
 * @returns {UnattributedRejection}
 */
export function unattributed(count, reason, samples = []) {
  return { count, reason, samples: samples.slice(0, MAX_UNATTRIBUTED_SAMPLES) };
}
