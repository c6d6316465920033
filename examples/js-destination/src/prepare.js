// `prepareUsers`: normalise, check and hash identifiers, locally and deterministically.
//
// E-mail addresses and device ids are trimmed, lowercased and checked here (cheap), then hashed
// by the host's `hashing` import in one call for the whole batch (SHA-256 in JavaScript would
// cost seconds for 10,000 users); a value that already is SHA-256 hex passes through. External
// ids are ids both sides agreed on: trimmed and sent as they are. Only identifiers of the
// selected `fields` are kept; a user left with none is `not-synced`, with the reason.

import { HashQueue, excerpt, isSha256Hex, kinds, normalizeDeviceId, normalizeEmail, trimWhiteSpace } from '@audience-host/destination-kit';

import { supports } from './manifest.js';

/**
 * @typedef {import('audience:destination/types@0.2.0').RawUser} RawUser
 * @typedef {import('audience:destination/types@0.2.0').Preparation} Preparation
 * @typedef {import('audience:destination/types@0.2.0').Identifier} Identifier
 * @typedef {import('@audience-host/destination-kit').Host} Host
 */

/** The longest external id accepted, in characters. */
export const MAX_EXTERNAL_ID = 256;

/**
 * An external id as sent, or why there is none.
 *
 * @param {string} raw
 * @returns {import('@audience-host/destination-kit').Checked}
 */
export function checkExternalId(raw) {
  const id = trimWhiteSpace(raw);
  if (id === '') return { ok: false, reason: 'the value is empty' };
  if ([...id].length > MAX_EXTERNAL_ID) return { ok: false, reason: `'${excerpt(id, 40)}' is longer than ${MAX_EXTERNAL_ID} characters` };
  if (/\p{Cc}/u.test(id)) {
    const shown = excerpt(id, 40).replace(/\p{Cc}/gu, (c) => `\\u{${c.codePointAt(0)?.toString(16)}}`);
    return { ok: false, reason: `'${shown}' contains a control character` };
  }
  return { ok: true, value: id };
}

/**
 * Where a value goes: a hash ticket or the value itself, or why it is unusable.
 *
 * @param {HashQueue} queue
 * @param {string} kind
 * @param {string} raw
 * @returns {{ ticket: number } | { value: string } | { reason: string }}
 */
function queueValue(queue, kind, raw) {
  if (kind === kinds.EXTERNAL_ID) {
    const checked = checkExternalId(raw);
    return checked.ok ? { value: checked.value } : { reason: checked.reason };
  }
  const trimmed = trimWhiteSpace(raw);
  if (isSha256Hex(trimmed)) return { ticket: queue.pushHashed(trimmed) };
  const checked = kind === kinds.EMAIL ? normalizeEmail(trimmed) : normalizeDeviceId(trimmed);
  return checked.ok ? { ticket: queue.push('none', checked.value) } : { reason: checked.reason };
}

/**
 * Prepare every user: exactly one preparation per user, in order. All hashing is one host call
 * per 10,000 values.
 *
 * @param {Pick<Host, 'sha256Hex'>} host
 * @param {string[]} fields the sync's selected kinds
 * @param {RawUser[]} users
 * @returns {Preparation[]}
 */
export function prepareUsers(host, fields, users) {
  const queue = new HashQueue();
  const planned = users.map((user) => {
    /** @type {Array<{ kind: string, slot: { ticket: number } | { value: string } }>} */
    const usable = [];
    /** @type {string[]} */
    const problems = [];
    for (const { kind, value } of user.identifiers) {
      if (!fields.includes(kind) || !supports(kind)) continue;
      const slot = queueValue(queue, kind, value);
      if ('reason' in slot) problems.push(`no usable ${kind}: ${slot.reason}`);
      else usable.push({ kind, slot });
    }
    return { user, usable, problems };
  });
  const digests = queue.hash(host);
  return planned.map(({ user, usable, problems }) => {
    /** @type {Identifier[]} */
    const identifiers = [];
    for (const { kind, slot } of usable) {
      const value = 'ticket' in slot ? digests[slot.ticket] : slot.value;
      if (!identifiers.some((id) => id.kind === kind && id.value === value)) identifiers.push({ kind, value });
    }
    if (identifiers.length > 0) {
      return { tag: 'ready', val: { key: user.key, identifiers, consent: user.consent } };
    }
    return { tag: 'not-synced', val: notSyncedReason(problems) };
  });
}

/**
 * Why a user has no usable identifier, naming at most three problems.
 *
 * @param {string[]} problems
 */
function notSyncedReason(problems) {
  if (problems.length === 0) return 'none of the selected identifiers is present';
  if (problems.length <= 3) return problems.join('; ');
  return `${problems.slice(0, 3).join('; ')}; and ${problems.length - 3} more`;
}
