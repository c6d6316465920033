// The HMAC-SHA256 signature a receiver checks before trusting a batch.
//
// `x-audience-signature: sha256=<hex(HMAC-SHA256(client-secret, body))>`. The receiver recomputes
// it over the raw body it received and compares in constant time. (To protect against replays as
// well, sign a timestamp together with the body and reject old ones.)
//
// Web Crypto (`crypto.subtle`) runs in native code in the component (StarlingMonkey's OpenSSL)
// and in Node alike; it answers with promises, so signing is async, and so are the exports that
// sign (the generated bindings await an export's promise).

/** The header carrying the signature. */
export const SIGNATURE_HEADER = 'x-audience-signature';

/** The header carrying a batch id that stays the same when the host retries the same batch: the host's `batch.id`. */
export const BATCH_ID_HEADER = 'x-audience-batch-id';

/** The header carrying the attempt number (1 on the first try, then 2, 3, ...). */
export const ATTEMPT_HEADER = 'x-audience-attempt';

/** @param {ArrayBuffer} bytes */
function hex(bytes) {
  return Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * `sha256=<hex>`: the HMAC-SHA256 of `body` under `secret`.
 *
 * @param {string} secret
 * @param {Uint8Array<ArrayBuffer>} body
 * @returns {Promise<string>}
 */
export async function sign(secret, body) {
  const key = await crypto.subtle.importKey('raw', new TextEncoder().encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return `sha256=${hex(await crypto.subtle.sign('HMAC', key, body))}`;
}

/**
 * A batch id derived from the body (the first 32 hex digits of its SHA-256), for a host that
 * sends no `batch.id`.
 *
 * @param {Uint8Array<ArrayBuffer>} body
 * @returns {Promise<string>}
 */
export async function batchId(body) {
  return hex(await crypto.subtle.digest('SHA-256', body)).slice(0, 32);
}
