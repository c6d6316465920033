// @audience-host/destination-kit: helpers for audience-host destination plugins written in
// JavaScript or TypeScript, for contract audience:destination@0.2.0 (wit/destination.wit, types
// in types/). See README.md and docs/plugin-guide.md, "JavaScript / TypeScript".

export * as kinds from './kinds.js';
export { excerpt, trimWhiteSpace } from './text.js';
export { MAX_EMAIL_LEN, MAX_QUOTED_CHARS, isSha256Hex, normalize, normalizeDeviceId, normalizeEmail } from './identity.js';
export { HOST_HASH_CHUNK, HashQueue, hashAll, hashedDeviceIds, hashedEmails, hashedManyWith } from './hashing.js';
export {
  DestinationFailure, U32_MAX, actionRequired, httpFailure, invalidRequest, isDestinationError, isHttpError,
  notFound, rateLimited, rejectedUsers, toDestinationError, transient, unauthorized,
} from './errors.js';
export {
  HttpResponse, MAX_MESSAGE_CHARS, buildRequest, encodeQueryComponent, partnerMessage, retryAfterMs, send, statusError,
} from './http.js';
export { setting, urlHost } from './config.js';
export { DEFAULT_MAX_PAGES, findFirst } from './paging.js';
export { MAX_UNATTRIBUTED_SAMPLES, audience, exactSize, limits, unattributed } from './build.js';
export { EXPORTS, exportPlugin } from './plugin.js';

/**
 * The host's imports as one object (./host.js).
 * @typedef {import('./host.js').Host} Host
 */
/**
 * A checked identifier value, or why it is unusable (./identity.js).
 * @typedef {import('./identity.js').Checked} Checked
 */
/**
 * What a request is made of (./http.js).
 * @typedef {import('./http.js').RequestOptions} RequestOptions
 */
/**
 * Every export of `interface plugin`, each answering its value or a promise of it (./plugin.js).
 * @typedef {import('./plugin.js').PluginImplementation} PluginImplementation
 */
