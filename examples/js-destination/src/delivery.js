// `addUsers` and `removeUsers` over HTTP.
//
// A batch is one `POST {base-url}{path}` with the JSON body of `batchBody`, signed (./signature.js)
// and carrying the host's batch id and attempt number as headers, so the receiver can drop a
// retried duplicate. A 2xx answer may list users the receiver refused individually
// (`{"rejected": [{"key", "reason"}]}`) and rows it dropped without naming them
// (`{"unattributed": [{"count", "reason", "samples"}]}`); an empty body or `{}` means all were
// taken. Any other answer is an error (./receiver.js).
//
// Log lines name the operation, batch size, status and batch id; never a token, the secret or a
// user's values.

import { invalidRequest, unattributed } from '@audience-host/destination-kit';

import { upsertAudience } from './audiences.js';
import { batchUrl, signingSecret } from './config.js';
import { MAX_BATCH_SIZE } from './manifest.js';
import { answerJson, authorized, execute } from './receiver.js';
import { ATTEMPT_HEADER, BATCH_ID_HEADER, SIGNATURE_HEADER, batchId, sign } from './signature.js';

/**
 * @typedef {import('@audience-host/destination-kit').Host} Host
 * @typedef {import('audience:destination/types@0.2.0').PluginConfig} PluginConfig
 * @typedef {import('audience:destination/types@0.2.0').Credentials} Credentials
 * @typedef {import('audience:destination/types@0.2.0').AudienceTarget} AudienceTarget
 * @typedef {import('audience:destination/types@0.2.0').Batch} Batch
 * @typedef {import('audience:destination/types@0.2.0').PreparedUser} PreparedUser
 * @typedef {import('audience:destination/types@0.2.0').WriteOutcome} WriteOutcome
 * @typedef {import('audience:destination/types@0.2.0').Audience} Audience
 * @typedef {'add' | 'remove'} Operation
 */

/**
 * The JSON body of a batch: `{"operation","account","audience","users":[{"key","identifiers":[{"kind","value"}]}]}`.
 *
 * @param {Operation} operation
 * @param {string} account
 * @param {string} audience
 * @param {PreparedUser[]} users
 * @returns {Uint8Array<ArrayBuffer>}
 */
export function batchBody(operation, account, audience, users) {
  const wireUsers = users.map((u) => ({ key: u.key, identifiers: u.identifiers.map(({ kind, value }) => ({ kind, value })) }));
  return new TextEncoder().encode(JSON.stringify({ operation, account, audience, users: wireUsers }));
}

/**
 * Add or remove one batch.
 *
 * @param {Host} host
 * @param {PluginConfig} config
 * @param {Credentials} creds
 * @param {string} account
 * @param {AudienceTarget} target
 * @param {Operation} operation
 * @param {Batch} batch
 * @returns {Promise<WriteOutcome>}
 */
export async function writeUsers(host, config, creds, account, target, operation, batch) {
  const users = batch.users;
  if (users.length > MAX_BATCH_SIZE) {
    throw invalidRequest(`a batch of ${users.length} users exceeds the receiver's limit of ${MAX_BATCH_SIZE}`);
  }
  /** @type {Audience | undefined} */
  let created;
  let audience;
  if (target.tag === 'existing') {
    audience = target.val;
  } else {
    created = upsertAudience(host, config, creds, account, target.val);
    audience = created.id;
  }
  const body = batchBody(operation, account, audience, users);
  // The host's id is the same on every retry of these users; fall back to the body's hash.
  const id = batch.id.trim() === '' ? await batchId(body) : batch.id;
  const headers = {
    'content-type': 'application/json',
    [SIGNATURE_HEADER]: await sign(signingSecret(config), body),
    [BATCH_ID_HEADER]: id,
    [ATTEMPT_HEADER]: String(batch.attempt),
  };
  const response = execute(host, 'deliver the batch', 'POST', batchUrl(config), authorized({ headers, body }, creds));
  const answer = answerJson(response, {}, `to batch ${id}`);
  const rejected = Array.isArray(answer?.rejected) ? answer.rejected : [];
  const dropped = Array.isArray(answer?.unattributed) ? answer.unattributed : [];
  const unattributedRows = dropped
    .filter((/** @type {any} */ u) => Number.isInteger(u?.count) && u.count > 0)
    .map((/** @type {any} */ u) => unattributed(u.count, String(u.reason ?? ''), Array.isArray(u.samples) ? u.samples.map(String) : []));
  host.log('debug', `webhook: batch ${id} attempt ${batch.attempt}: ${users.length} users ${operation === 'add' ? 'added' : 'removed'}, HTTP ${response.status}, ${rejected.length} rejected, ${unattributedRows.reduce((/** @type {number} */ n, /** @type {{ count: number }} */ u) => n + u.count, 0)} unattributed`);
  return {
    tag: 'done',
    val: {
      rejected: rejected.filter((/** @type {any} */ r) => typeof r?.key === 'string').map((/** @type {any} */ r) => ({ key: r.key, reason: String(r.reason ?? '') })),
      unattributed: unattributedRows,
      created,
    },
  };
}
