// A scripted stand-in for the host, for unit tests under `node --test`. Node only (it hashes
// with node:crypto): import it from tests, never from the component.
//
//   import { FakeHost, answer } from '@audience-host/destination-kit/testing';
//   const host = new FakeHost([answer(200, { body: '{}' }), answer(429, { headers: { 'retry-after': '7' } })]);
//   ... call your code with `host` ...
//   host.requests[0].url; host.header(0, 'authorization'); host.logs; host.budgets; host.hashCalls

import { createHash } from 'node:crypto';

import { normalize } from './identity.js';

/**
 * @typedef {import('audience:destination/http-client@0.2.0').Request} Request
 * @typedef {import('audience:destination/http-client@0.2.0').Response} Response
 * @typedef {import('audience:destination/http-client@0.2.0').HttpError} HttpError
 * @typedef {import('audience:destination/hashing@0.2.0').Normalization} Normalization
 * @typedef {import('audience:destination/pacing@0.2.0').Budget} Budget
 * @typedef {import('audience:destination/log@0.2.0').Level} Level
 */

/**
 * A scripted answer: a response.
 *
 * @param {number} status
 * @param {{ headers?: Record<string, string>, body?: string | Uint8Array }} [options]
 * @returns {Response}
 */
export function answer(status, options = {}) {
  const headers = Object.entries(options.headers ?? {}).map(([n, v]) => /** @type {[string, string]} */ ([n.toLowerCase(), v]));
  const body = typeof options.body === 'string' ? new TextEncoder().encode(options.body) : (options.body ?? new Uint8Array(0));
  return { status, headers, body };
}

/**
 * A scripted failure: what the real import throws when no response came (an `Error` whose
 * `payload` is the `http-error`, like the bindings' `ComponentError`).
 *
 * @param {HttpError} error
 */
export function noAnswer(error) {
  const thrown = new Error(`${JSON.stringify(error)} (see error.payload)`);
  Object.defineProperty(thrown, 'payload', { value: error, enumerable: true });
  return thrown;
}

/** The SHA-256 hex of `value` after `normalization`, as the host computes it. */
export function sha256HexNormalized(/** @type {Normalization} */ normalization, /** @type {string} */ value) {
  return createHash('sha256').update(normalize(normalization, value), 'utf8').digest('hex');
}

/** A host that answers requests from a script and remembers requests, log lines, readings and hash calls. */
export class FakeHost {
  /** @param {Array<Response | Error>} [script] answers (`answer(...)`) or failures (`noAnswer(...)`), in order */
  constructor(script = []) {
    /** What is left of the script. */
    this.script = [...script];
    /** Every request sent, in order. @type {Request[]} */
    this.requests = [];
    /** Every log line, as `"<level>: <message>"`. @type {string[]} */
    this.logs = [];
    /** Every budget reading reported. @type {Budget[]} */
    this.budgets = [];
    /** How many values each `sha256Hex` call got. @type {number[]} */
    this.hashCalls = [];
    this.send = this.send.bind(this);
    this.log = this.log.bind(this);
    this.sha256Hex = this.sha256Hex.bind(this);
    this.reportBudget = this.reportBudget.bind(this);
  }

  /** @param {Request} request @returns {Response} */
  send(request) {
    this.requests.push(request);
    const next = this.script.shift();
    if (next === undefined) throw noAnswer({ tag: 'connection', val: 'no scripted answer left' });
    if (next instanceof Error) throw next;
    return next;
  }

  /** @param {Level} level @param {string} message */
  log(level, message) {
    this.logs.push(`${level}: ${message}`);
  }

  /** @param {Normalization} normalization @param {string[]} values @returns {string[]} */
  sha256Hex(normalization, values) {
    this.hashCalls.push(values.length);
    return values.map((value) => sha256HexNormalized(normalization, value));
  }

  /** @param {Budget} reading */
  reportBudget(reading) {
    this.budgets.push(reading);
  }

  /**
   * Header `name` of request `i`.
   *
   * @param {number} i
   * @param {string} name
   * @returns {string | undefined}
   */
  header(i, name) {
    return this.requests[i]?.headers.find(([n]) => n === name.toLowerCase())?.[1];
  }

  /** The body of request `i` as text. @param {number} i */
  bodyText(i) {
    return new TextDecoder().decode(this.requests[i]?.body);
  }
}
