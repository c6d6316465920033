// `destination-error` values, and how a plugin throws them.
//
// An export returning `result<T, destination-error>` answers its error by throwing. The bindings
// componentize-js generates take the thrown value's own `payload` property when it has one, else
// the thrown value itself when it is not an `Error`; a plain `Error` (a bug, a `TypeError`) is
// re-thrown and crashes the call. So either throw the variant object (`{ tag: 'not-found', val:
// '...' }`) or, better, one of the `DestinationFailure`s below: an `Error` with a stack and a
// readable message whose `payload` is the variant.
//
// Which variant to pick decides what the host does (docs/plugin-guide.md, "How errors drive the
// host's retries"); the string is for people and must never hold a token, a secret or a user's
// values.

import { excerpt } from './text.js';

/**
 * @typedef {import('audience:destination/types@0.2.0').DestinationError} DestinationError
 * @typedef {import('audience:destination/http-client@0.2.0').HttpError} HttpError
 */

/** The largest `u32`: the most milliseconds `rate-limited` can carry. */
export const U32_MAX = 4_294_967_295;

const TEXT_TAGS = new Set(['unauthorized', 'not-found', 'invalid-request', 'action-required', 'transient']);
const HTTP_ERROR_TAGS = new Set(['denied', 'timeout', 'connection', 'too-large']);

/**
 * Whether `value` is a well-formed `destination-error` variant object.
 *
 * @param {unknown} value
 * @returns {value is DestinationError}
 */
export function isDestinationError(value) {
  if (value === null || typeof value !== 'object') return false;
  const { tag, val } = /** @type {{ tag?: unknown, val?: unknown }} */ (value);
  if (tag === 'rate-limited') {
    return val === undefined || (Number.isInteger(val) && /** @type {number} */ (val) >= 0 && /** @type {number} */ (val) <= U32_MAX);
  }
  if (tag === 'rejected-users') {
    return Array.isArray(val) && val.every(isRejectedUser);
  }
  return typeof tag === 'string' && TEXT_TAGS.has(tag) && typeof val === 'string';
}

/**
 * Whether `value` is a `rejected-user` record (`{ key, reason }`, both strings).
 *
 * @param {unknown} value
 */
function isRejectedUser(value) {
  if (value === null || typeof value !== 'object') return false;
  const { key, reason } = /** @type {{ key?: unknown, reason?: unknown }} */ (value);
  return typeof key === 'string' && typeof reason === 'string';
}

/**
 * Whether `value` is an `http-client` `http-error` variant object (what a failed `send` carries).
 *
 * @param {unknown} value
 * @returns {value is HttpError}
 */
export function isHttpError(value) {
  return value !== null && typeof value === 'object' && HTTP_ERROR_TAGS.has(/** @type {{ tag?: any }} */ (value).tag);
}

/** @param {DestinationError} error */
function describeError(error) {
  if (error.tag === 'rate-limited') {
    return error.val === undefined ? 'rate-limited' : `rate-limited: retry after ${error.val} ms`;
  }
  if (error.tag === 'rejected-users') {
    return `rejected-users: ${error.val.length} user(s) refused the whole request`;
  }
  return `${error.tag}: ${error.val}`;
}

/**
 * An `Error` carrying a `destination-error`: throw it from an export and the host receives
 * `payload`. `message` is `"<tag>: <text>"`.
 */
export class DestinationFailure extends Error {
  /** @param {DestinationError} error */
  constructor(error) {
    if (!isDestinationError(error)) {
      throw new TypeError(`not a destination-error: ${JSON.stringify(error)}; build one with transient(), notFound(), ...`);
    }
    super(describeError(error));
    this.name = 'DestinationFailure';
    /** The variant the host receives. An own property: the generated bindings look for it. */
    this.payload = error;
  }
}

/**
 * The partner is throttling this token: the host pauses the connection for `retryAfterMs` when
 * given (the partner's `Retry-After`), else backs off.
 *
 * @param {number} [retryAfterMs] a whole number of milliseconds, at most `U32_MAX`
 */
export function rateLimited(retryAfterMs) {
  const ms = retryAfterMs === undefined ? undefined : Math.min(U32_MAX, Math.max(0, Math.round(retryAfterMs)));
  return new DestinationFailure({ tag: 'rate-limited', val: ms });
}

/**
 * The credentials are invalid, expired, revoked or lack a scope: the host renews once, then
 * asks a person to sign in again.
 *
 * @param {string} message
 */
export function unauthorized(message) {
  return new DestinationFailure({ tag: 'unauthorized', val: message });
}

/**
 * The account or audience is gone: the host marks the sync broken.
 *
 * @param {string} message
 */
export function notFound(message) {
  return new DestinationFailure({ tag: 'not-found', val: message });
}

/**
 * The partner refused the request as sent; retrying it unchanged will not help. For a batch,
 * the host splits it to find the users at fault.
 *
 * @param {string} message
 */
export function invalidRequest(message) {
  return new DestinationFailure({ tag: 'invalid-request', val: message });
}

/**
 * A person must act (accept terms, appeal a flag, grant access): say what to do, with a link.
 *
 * @param {string} message
 */
export function actionRequired(message) {
  return new DestinationFailure({ tag: 'action-required', val: message });
}

/**
 * The partner refused the whole request because of these users and processed none of it: the
 * host errors them with their reasons and resends the rest of the batch at once, without
 * splitting it. Only from `addUsers` / `removeUsers`.
 *
 * @param {{ key: string, reason: string }[]} users
 */
export function rejectedUsers(users) {
  return new DestinationFailure({ tag: 'rejected-users', val: users.map(({ key, reason }) => ({ key, reason })) });
}

/**
 * Network failure, timeout, 5xx, an unreadable answer: the host retries with backoff.
 *
 * @param {string} message
 */
export function transient(message) {
  return new DestinationFailure({ tag: 'transient', val: message });
}

/**
 * The error for a request that got no response (the `http-error` of a failed `send`), as the Rust
 * SDK's `http_failure` maps it: a timeout, a broken connection or an over-large answer is
 * `transient`; a request the host refused to send (host not allowed, plain http, ...) is
 * `invalid-request`, since sending it again will be refused again.
 *
 * @param {HttpError} error
 * @returns {DestinationFailure}
 */
export function httpFailure(error) {
  switch (error.tag) {
    case 'timeout':
      return transient("no response within the host's request timeout");
    case 'connection':
      return transient(`connection failed: ${excerpt(error.val, 200)}`);
    case 'too-large':
      return transient('the response was larger than the host allows');
    case 'denied':
      return invalidRequest(`the host refused the request: ${excerpt(error.val, 200)}`);
    default:
      throw new TypeError(`not an http-error: ${JSON.stringify(error)}`);
  }
}

/**
 * The `destination-error` a thrown value stands for, or `undefined` when it stands for none (a
 * bug, which should crash the call):
 *
 * | thrown                                            | answer                          |
 * |---------------------------------------------------|---------------------------------|
 * | a `DestinationFailure`                            | its `payload`                   |
 * | a `destination-error` variant object              | itself                          |
 * | what a failed import throws: an `Error` whose `payload` is an `http-error` | `httpFailure(payload).payload` |
 * | anything else (`TypeError`, ...)                  | `undefined`                     |
 *
 * @param {unknown} thrown
 * @returns {DestinationError | undefined}
 */
export function toDestinationError(thrown) {
  if (isDestinationError(thrown)) return thrown;
  if (thrown !== null && typeof thrown === 'object' && Object.prototype.hasOwnProperty.call(thrown, 'payload')) {
    const payload = /** @type {{ payload: unknown }} */ (thrown).payload;
    if (isDestinationError(payload)) return payload;
    if (isHttpError(payload)) return httpFailure(payload).payload;
  }
  return undefined;
}
