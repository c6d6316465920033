// `searchAudiences`, `readAudience`, `checkTarget` and `upsertAudience` over HTTP.
//
// | export            | request                                                          |
// |-------------------|------------------------------------------------------------------|
// | `searchAudiences` | `GET {base-url}/audiences?account=&query=[&cursor=]` → `{"audiences": [audience...], "next_cursor": "..."}` |
// | `readAudience`    | `GET {base-url}/audience?account=&id=` → `audience`              |
// | `upsertAudience`  | `POST {base-url}/audiences` with `{"account","name","description","identifiers","create_if_missing"}` → `audience` |
// | `checkTarget`     | local checks, then `readAudience` (with `spec.id`) or a search by name (when the audience may not be created) |
//
// An `audience` on the wire is `{"id", "name", "created", "identifiers", "size", "state",
// "status"}`; only `id` is required (`name` defaults to the name asked for). `state` is one of
// `ready`, `populating`, `too-small`, `unusable`; `size` is an exact count.

import { audience, exactSize, findFirst, toDestinationError, transient } from '@audience-host/destination-kit';

import { audienceUrl, audiencesUrl } from './config.js';
import { IDENTIFIERS, supports } from './manifest.js';
import { answerJson, authorized, execute } from './receiver.js';

/**
 * @typedef {import('@audience-host/destination-kit').Host} Host
 * @typedef {import('audience:destination/types@0.2.0').PluginConfig} PluginConfig
 * @typedef {import('audience:destination/types@0.2.0').Credentials} Credentials
 * @typedef {import('audience:destination/types@0.2.0').Audience} Audience
 * @typedef {import('audience:destination/types@0.2.0').AudiencePage} AudiencePage
 * @typedef {import('audience:destination/types@0.2.0').AudienceSpec} AudienceSpec
 * @typedef {import('audience:destination/types@0.2.0').AudienceState} AudienceState
 * @typedef {import('audience:destination/types@0.2.0').TargetProblem} TargetProblem
 */

/** @type {ReadonlyArray<AudienceState>} */
const STATES = ['ready', 'populating', 'too-small', 'unusable'];

/**
 * The contract's audience for a receiver's `wire` object; `id` and `name` stand in for what the
 * receiver left out.
 *
 * @param {any} wire
 * @param {string} id
 * @param {string} name
 * @returns {Audience}
 */
export function fromWire(wire, id, name) {
  const wireId = typeof wire?.id === 'string' && wire.id !== '' ? wire.id : id;
  const size = Number.isSafeInteger(wire?.size) && wire.size >= 0 ? exactSize(wire.size) : {};
  return audience(wireId, typeof wire?.name === 'string' ? wire.name : name, {
    created: wire?.created === true,
    identifiers: Array.isArray(wire?.identifiers) ? wire.identifiers.filter((/** @type {unknown} */ k) => typeof k === 'string') : [],
    size,
    state: STATES.includes(wire?.state) ? wire.state : 'unknown',
    statusDetail: typeof wire?.status === 'string' ? wire.status : undefined,
    details: [['receiver id', wireId]],
  });
}

/**
 * One page of the account's audiences whose name contains `query`.
 *
 * @param {Host} host
 * @param {PluginConfig} config
 * @param {Credentials} creds
 * @param {string} account
 * @param {string} query
 * @param {string | undefined} cursor
 * @returns {AudiencePage}
 */
export function searchAudiences(host, config, creds, account, query, cursor) {
  const response = execute(host, 'search audiences', 'GET', audiencesUrl(config), authorized({ query: { account, query, cursor: cursor || undefined } }, creds));
  const page = answerJson(response, {}, 'to a search');
  const wires = Array.isArray(page?.audiences) ? page.audiences : [];
  return {
    audiences: wires.filter((/** @type {any} */ a) => typeof a?.id === 'string' && a.id !== '').map((/** @type {any} */ a) => fromWire(a, a.id, a.id)),
    nextCursor: typeof page?.next_cursor === 'string' ? page.next_cursor : undefined,
  };
}

/**
 * The audience `id` with the receiver's current size and state.
 *
 * @param {Host} host
 * @param {PluginConfig} config
 * @param {Credentials} creds
 * @param {string} account
 * @param {string} id
 * @returns {Audience}
 */
export function readAudience(host, config, creds, account, id) {
  const response = execute(host, `read audience '${id}'`, 'GET', audienceUrl(config), authorized({ query: { account, id } }, creds));
  return fromWire(answerJson(response, {}, `about audience '${id}'`), id, id);
}

/**
 * Find the audience of `spec` (by `spec.id`, else by name), or create it when allowed.
 *
 * @param {Host} host
 * @param {PluginConfig} config
 * @param {Credentials} creds
 * @param {string} account
 * @param {AudienceSpec} spec
 * @returns {Audience}
 */
export function upsertAudience(host, config, creds, account, spec) {
  if (spec.id) return readAudience(host, config, creds, account, spec.id);
  const json = {
    account,
    name: spec.name,
    description: spec.description ?? null,
    identifiers: spec.identifiers,
    create_if_missing: spec.createIfMissing,
  };
  const response = execute(host, 'find or create the audience', 'POST', audiencesUrl(config), authorized({ json }, creds));
  const wire = answerJson(response, undefined, `about audience '${spec.name}'`);
  if (typeof wire?.id !== 'string' || wire.id === '') {
    throw transient(`the receiver's answer about audience '${spec.name}' has no id`);
  }
  return fromWire(wire, '', spec.name);
}

/**
 * Every reason the sync described by `spec` cannot run. Creates nothing.
 *
 * @param {Host} host
 * @param {PluginConfig} config
 * @param {Credentials} creds
 * @param {string} account
 * @param {AudienceSpec} spec
 * @returns {TargetProblem[]}
 */
export function checkTarget(host, config, creds, account, spec) {
  /** @type {TargetProblem[]} */
  const problems = [];
  if (!spec.identifiers.some(supports)) {
    const sent = spec.identifiers.length === 0 ? 'nothing' : spec.identifiers.join(', ');
    problems.push({ part: 'identifiers', message: `the receiver matches on ${IDENTIFIERS.join(', ')}; the sync sends only ${sent}` });
  }
  /** @type {Audience | undefined} */
  let found;
  if (spec.id) {
    try {
      found = readAudience(host, config, creds, account, spec.id);
    } catch (thrown) {
      if (toDestinationError(thrown)?.tag !== 'not-found') throw thrown;
      problems.push({ part: 'audience', message: `the receiver has no audience '${spec.id}'; pick another one` });
    }
  } else if (!spec.createIfMissing) {
    found = findFirst((cursor) => {
      const page = searchAudiences(host, config, creds, account, spec.name, cursor);
      return { items: page.audiences, nextCursor: page.nextCursor };
    }, (a) => a.name === spec.name);
    if (found === undefined) {
      problems.push({ part: 'audience', message: `the receiver has no audience named '${spec.name}' and the sync may not create one` });
    }
  }
  if (found?.state === 'unusable') {
    problems.push({ part: 'audience', message: `the receiver says audience '${found.name}' is unusable: ${found.statusDetail ?? 'no reason given'}` });
  }
  return problems;
}
