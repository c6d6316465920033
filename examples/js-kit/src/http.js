// HTTP through the host's `http-client` import: building requests, reading answers, and the
// default translation of answers into `destination-error` that a plugin refines for its partner.
//
// A plugin never opens a socket: it hands a request to `host.send` (the import), which checks it
// against the operator's allow-list, paces it with the connection's rate limiter and answers
// with any status (a 4xx or 5xx is an answer) or throws when no answer came.

import { excerpt } from './text.js';
import { DestinationFailure, httpFailure, invalidRequest, isHttpError, notFound, rateLimited, transient, unauthorized, U32_MAX } from './errors.js';

/**
 * @typedef {import('audience:destination/http-client@0.2.0').Request} Request
 * @typedef {import('./host.js').Host} Host
 */

/** The longest partner message carried into an error, in characters. */
export const MAX_MESSAGE_CHARS = 300;

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();

/**
 * Name/value pairs, or an object of them; `undefined` and `null` values are left out.
 *
 * @typedef {Array<[string, string | number | undefined | null]> | Record<string, string | number | undefined | null>} Pairs
 */

/** @param {Pairs | undefined} pairs @returns {Array<[string, string]>} */
function entries(pairs) {
  const list = Array.isArray(pairs) ? pairs : Object.entries(pairs ?? {});
  return list.filter(([, value]) => value !== undefined && value !== null).map(([name, value]) => [name, String(value)]);
}

/**
 * `text` percent-encoded for a query string: everything but RFC 3986 "unreserved" characters
 * (`A-Z a-z 0-9 - . _ ~`) is escaped, as the Rust SDK does.
 *
 * @param {string} text
 */
export function encodeQueryComponent(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * What a request is made of. Give at most one of `json`, `form` and `body`.
 *
 * @typedef {object} RequestOptions
 * @property {Pairs} [query] appended to the URL, percent-encoded
 * @property {Pairs} [headers] names are lowercased; a later value of the same name replaces an earlier one
 * @property {string} [bearer] `authorization: Bearer <token>` (never log the request's headers)
 * @property {unknown} [json] a JSON body, with `content-type: application/json`
 * @property {Pairs} [form] an `application/x-www-form-urlencoded` body
 * @property {string | Uint8Array} [body] a raw body; set `content-type` yourself
 */

/**
 * The `http-client` request for `method` on the absolute `url`.
 *
 * @param {string} method
 * @param {string} url
 * @param {RequestOptions} [options]
 * @returns {Request}
 */
export function buildRequest(method, url, options = {}) {
  let fullUrl = url;
  const query = entries(options.query);
  if (query.length > 0) {
    const encoded = query.map(([name, value]) => `${encodeQueryComponent(name)}=${encodeQueryComponent(value)}`).join('&');
    fullUrl = `${url}${url.includes('?') ? '&' : '?'}${encoded}`;
  }
  /** @type {Map<string, string>} */
  const headers = new Map();
  for (const [name, value] of entries(options.headers)) headers.set(name.toLowerCase(), value);
  /** @type {Uint8Array} */
  let body = new Uint8Array(0);
  const given = ['json', 'form', 'body'].filter((k) => /** @type {any} */ (options)[k] !== undefined);
  if (given.length > 1) {
    throw new TypeError(`a request takes one of json, form and body; got ${given.join(' and ')}`);
  }
  if (options.json !== undefined) {
    body = ENCODER.encode(JSON.stringify(options.json));
    headers.set('content-type', 'application/json');
  } else if (options.form !== undefined) {
    const form = entries(options.form).map(([n, v]) => `${encodeURIComponent(n)}=${encodeURIComponent(v)}`.replace(/%20/g, '+'));
    body = ENCODER.encode(form.join('&'));
    headers.set('content-type', 'application/x-www-form-urlencoded');
  } else if (typeof options.body === 'string') {
    body = ENCODER.encode(options.body);
  } else if (options.body !== undefined) {
    body = options.body;
  }
  if (options.bearer !== undefined) headers.set('authorization', `Bearer ${options.bearer}`);
  return { method: method.toUpperCase(), url: fullUrl, headers: [...headers], body };
}

/** The host's answer to a request: any status. */
export class HttpResponse {
  /** @param {import('audience:destination/http-client@0.2.0').Response} response */
  constructor(response) {
    /** The status code. */
    this.status = response.status;
    /** Headers as name/value pairs (the host sends names lowercase). @type {Array<[string, string]>} */
    this.headers = response.headers;
    /** The body. @type {Uint8Array} */
    this.body = response.body;
  }

  /** Whether the status is 2xx. */
  get ok() {
    return this.status >= 200 && this.status < 300;
  }

  /**
   * The first value of header `name`, compared ignoring case.
   *
   * @param {string} name
   * @returns {string | undefined}
   */
  header(name) {
    const wanted = name.toLowerCase();
    return this.headers.find(([n]) => n.toLowerCase() === wanted)?.[1];
  }

  /** The body as text (invalid UTF-8 replaced). */
  text() {
    return DECODER.decode(this.body);
  }

  /** Whether the body is empty or only whitespace: for a 2xx, "all fine, nothing to report". */
  isBlank() {
    return this.text().trim() === '';
  }

  /**
   * The body parsed as JSON; throws a `SyntaxError` when it is not JSON.
   *
   * @returns {any}
   */
  json() {
    return JSON.parse(this.text());
  }
}

/**
 * Send `request` through `host` and return the answer, whatever its status. When no answer
 * came, throws the `DestinationFailure` the host's retries expect (`httpFailure`): the import
 * throws an `Error` whose `payload` is the `http-error`.
 *
 * @param {Pick<Host, 'send'>} host
 * @param {Request} request
 * @returns {HttpResponse}
 */
export function send(host, request) {
  try {
    return new HttpResponse(host.send(request));
  } catch (thrown) {
    const payload = thrown !== null && typeof thrown === 'object' ? /** @type {any} */ (thrown).payload : undefined;
    if (isHttpError(payload)) throw httpFailure(payload);
    throw thrown;
  }
}

/**
 * The partner's own words in an error answer: the `message` or `error` string of a JSON body,
 * else the body's text; trimmed and cut to 200 characters.
 *
 * @param {HttpResponse} response
 * @returns {string}
 */
export function partnerMessage(response) {
  let text = response.text();
  try {
    const body = JSON.parse(text);
    const field = body?.message ?? body?.error;
    if (typeof field === 'string') text = field;
  } catch {
    // not JSON: the text itself
  }
  return excerpt(text.trim(), 200);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const IMF_FIXDATE = /^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;

/**
 * A `Retry-After` value as milliseconds from `now`: delta-seconds (`"7"` → 7000), or an HTTP
 * date in the IMF-fixdate form every current server sends (`"Wed, 21 Oct 2015 07:28:00 GMT"`;
 * a date in the past → 0). `undefined` when it is neither (the host then backs off by itself).
 * Saturates at `U32_MAX`. (The Rust SDK reads delta-seconds only.)
 *
 * @param {string | undefined} value
 * @param {number} [now] milliseconds since the Unix epoch
 * @returns {number | undefined}
 */
export function retryAfterMs(value, now = Date.now()) {
  const text = (value ?? '').trim();
  if (/^\d+$/.test(text)) {
    return Math.min(U32_MAX, Number(text) * 1000);
  }
  const date = IMF_FIXDATE.exec(text);
  if (date === null) return undefined;
  const [, day, month, year, hours, minutes, seconds] = date;
  const at = Date.UTC(Number(year), MONTHS.indexOf(month), Number(day), Number(hours), Number(minutes), Number(seconds));
  if (Number.isNaN(at) || new Date(at).getUTCDate() !== Number(day)) return undefined;
  return Math.min(U32_MAX, Math.max(0, at - now));
}

/**
 * The default error for a non-2xx `response`; `message` says what failed, for people (the
 * partner's words, or "could not list accounts"). Match your partner's special cases first and
 * fall back to this:
 *
 * | status               | error                                            |
 * |----------------------|--------------------------------------------------|
 * | 429                  | `rate-limited` (`Retry-After` in ms, if usable)  |
 * | 401, 403             | `unauthorized`                                   |
 * | 404                  | `not-found`                                      |
 * | 408, 5xx             | `transient`                                      |
 * | 400, 409, 422, other | `invalid-request`                                |
 *
 * @param {HttpResponse} response
 * @param {string} message
 * @param {number} [now] milliseconds since the Unix epoch, for an HTTP-date `Retry-After`
 * @returns {DestinationFailure}
 */
export function statusError(response, message, now = Date.now()) {
  const status = response.status;
  const detail = `HTTP ${status}: ${excerpt(message, MAX_MESSAGE_CHARS)}`;
  if (status === 429) return rateLimited(retryAfterMs(response.header('retry-after'), now));
  if (status === 401 || status === 403) return unauthorized(detail);
  if (status === 404) return notFound(detail);
  if (status === 408 || (status >= 500 && status <= 599)) return transient(detail);
  return invalidRequest(detail);
}
