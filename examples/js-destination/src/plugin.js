// The exports of `interface plugin`, over a `host`: the real imports in the component
// (./component.js), a `FakeHost` in the tests.
//
// | module          | what                                                                  |
// |-----------------|-----------------------------------------------------------------------|
// | ./manifest.js   | `describe`: name, identifiers, features, limits, default host         |
// | ./prepare.js    | `prepareUsers`: normalise and check locally, hash through the host    |
// | ./config.js     | reading `plugin-config`                                               |
// | ./signature.js  | the HMAC-SHA256 signature                                             |
// | ./receiver.js   | sending a request, error mapping, budget headers                      |
// | ./delivery.js   | `addUsers` / `removeUsers`                                            |
// | ./audiences.js  | `searchAudiences` / `readAudience` / `checkTarget` / `upsertAudience` |
//
// Every batch finishes in its request, so the plugin does not declare the `asynchronous`
// feature and `checkSubmission` answers `invalid-request`; a partner whose API answers
// "accepted, job 123" answers `{ tag: 'submitted', val: { id, checkAfterMs } }` instead and
// implements `checkSubmission` by asking about the job.

import { exportPlugin, invalidRequest, unauthorized } from '@audience-host/destination-kit';

import { checkTarget, readAudience, searchAudiences, upsertAudience } from './audiences.js';
import { DEFAULT_ACCOUNT } from './config.js';
import { writeUsers } from './delivery.js';
import { manifest } from './manifest.js';
import { prepareUsers } from './prepare.js';

/**
 * @typedef {import('@audience-host/destination-kit').Host} Host
 * @typedef {typeof import('audience:destination/plugin@0.2.0')} PluginExports
 */

/**
 * The plugin's exports over `host`, wrapped by the kit's `exportPlugin`.
 *
 * @param {Host} host
 * @returns {PluginExports}
 */
export function createPlugin(host) {
  return exportPlugin({
    describe: (config) => manifest(config),
    prepareUsers: (fields, users) => prepareUsers(host, fields, users),
    authorize(_config, grant) {
      // A webhook receiver hands out static tokens: there is no OAuth flow and nothing to renew.
      // `unauthorized` on renewal makes the host mark the connection as needing a new token,
      // which is exactly what an operator must then do.
      if (grant.tag === 'authorization-code') {
        throw invalidRequest("the webhook destination does not use OAuth; configure the receiver's token directly");
      }
      throw unauthorized('webhook tokens cannot be renewed; configure a new token for this connection');
    },
    listAccounts: () => ({ accounts: [{ id: DEFAULT_ACCOUNT, name: 'Webhook receiver', permissions: [] }], nextCursor: undefined }),
    searchAudiences: (config, creds, accountId, query, cursor) => searchAudiences(host, config, creds, accountId, query, cursor),
    readAudience: (config, creds, accountId, audienceId) => readAudience(host, config, creds, accountId, audienceId),
    checkTarget: (config, creds, accountId, spec) => checkTarget(host, config, creds, accountId, spec),
    upsertAudience: (config, creds, accountId, spec) => ({ tag: 'ready', val: upsertAudience(host, config, creds, accountId, spec) }),
    // The two writes sign with Web Crypto, which answers with promises: they return promises,
    // which the generated bindings await.
    addUsers: (config, creds, accountId, target, batch) => writeUsers(host, config, creds, accountId, target, 'add', batch),
    removeUsers: (config, creds, accountId, target, batch) => writeUsers(host, config, creds, accountId, target, 'remove', batch),
    checkSubmission() {
      throw invalidRequest('the webhook destination finishes every batch in its request');
    },
  }, host);
}
