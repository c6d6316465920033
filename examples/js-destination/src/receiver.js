// Talking to the receiver: every request goes through `execute`, which sends it with the host's
// `http-client` import (the kit's `send`), reports the receiver's budget headers to the host's
// `pacing` import, and turns a failure or a non-2xx answer into the error the host's retries
// expect, with the kit's `statusError`: 401/403 `unauthorized`, 404 `not-found`, 429
// `rate-limited` (with `Retry-After`), 408/5xx and timeouts `transient`, other 4xx
// `invalid-request`. The receiver's own message is kept, cut short.

import { buildRequest, partnerMessage, send, statusError, transient } from '@audience-host/destination-kit';

/**
 * @typedef {import('@audience-host/destination-kit').Host} Host
 * @typedef {import('@audience-host/destination-kit').HttpResponse} HttpResponse
 * @typedef {import('@audience-host/destination-kit').RequestOptions} RequestOptions
 * @typedef {import('audience:destination/types@0.2.0').Credentials} Credentials
 */

/** The response header carrying the share of the receiver's rate budget used, in percent. */
export const BUDGET_USED_HEADER = 'x-budget-used-percent';

/** The response header saying when an exhausted budget returns, in milliseconds. */
export const BUDGET_REGAIN_HEADER = 'x-budget-regain-ms';

/**
 * Report the receiver's budget reading, when the answer carries one.
 *
 * @param {Pick<Host, 'reportBudget'>} host
 * @param {HttpResponse} response
 */
function reportBudget(host, response) {
  const text = response.header(BUDGET_USED_HEADER)?.trim() ?? '';
  const used = text === '' ? Number.NaN : Number(text);
  if (!Number.isFinite(used)) return;
  const regain = response.header(BUDGET_REGAIN_HEADER)?.trim() ?? '';
  host.reportBudget({
    usedPercent: Math.min(100, Math.max(0, used)),
    regainAfterMs: /^\d+$/.test(regain) ? BigInt(regain) : undefined,
  });
}

/**
 * `options` with the connection's token as a bearer token, when it has one.
 *
 * @param {RequestOptions} options
 * @param {Credentials} creds
 * @returns {RequestOptions}
 */
export function authorized(options, creds) {
  return creds.accessToken.trim() === '' ? options : { ...options, bearer: creds.accessToken };
}

/**
 * Send `method url`; a failure or a non-2xx answer is thrown as the error the host's retries
 * expect, after one log line saying what failed.
 *
 * @param {Host} host
 * @param {string} what e.g. "deliver the batch", for log lines and messages
 * @param {string} method
 * @param {string} url
 * @param {RequestOptions} options
 * @returns {HttpResponse}
 */
export function execute(host, what, method, url, options) {
  let response;
  try {
    response = send(host, buildRequest(method, url, options));
  } catch (failure) {
    host.log('warn', `webhook: could not ${what}: ${failure instanceof Error ? failure.message : String(failure)}`);
    throw failure;
  }
  reportBudget(host, response);
  if (response.ok) return response;
  host.log('warn', `webhook: could not ${what}: HTTP ${response.status}`);
  throw statusError(response, `could not ${what}: ${partnerMessage(response)}`);
}

/**
 * A 2xx answer's JSON, `fallback` when its body is blank; unreadable JSON is `transient`.
 *
 * @template T
 * @param {HttpResponse} response
 * @param {T} fallback
 * @param {string} what e.g. "to batch b-1"
 * @returns {any}
 */
export function answerJson(response, fallback, what) {
  if (response.isBlank()) return fallback;
  try {
    return response.json();
  } catch (e) {
    throw transient(`the receiver's answer ${what} is not the expected JSON: ${e instanceof Error ? e.message : e}`);
  }
}

