import { test } from 'node:test';
import assert from 'node:assert/strict';

import { audienceUrl, audiencesUrl, batchUrl, signingSecret } from '../src/config.js';

/** @param {string | undefined} base @param {string} [path] */
function config(base, path) {
  return { baseUrl: base, clientId: undefined, clientSecret: 's', settings: /** @type {Array<[string, string]>} */ (path === undefined ? [] : [['path', path]]) };
}

test('URLs are built from base-url and the path setting', () => {
  const cases = [
    [batchUrl(config('https://h.example/')), 'https://h.example/audience-batches'],
    [batchUrl(config('https://h.example', 'in')), 'https://h.example/in'],
    [batchUrl(config('https://h.example', ' /v1/in ')), 'https://h.example/v1/in'],
    [audiencesUrl(config('http://127.0.0.1:9/')), 'http://127.0.0.1:9/audiences'],
    [audienceUrl(config('http://127.0.0.1:9')), 'http://127.0.0.1:9/audience'],
  ];
  for (const [got, expected] of cases) assert.equal(got, expected);
});

test('a missing setting says which one to set', () => {
  assert.throws(() => batchUrl(config(' ')), (e) => /** @type {any} */ (e).payload.tag === 'invalid-request'
    && /** @type {any} */ (e).payload.val === 'the webhook destination is not configured: set `base-url` in the plugin configuration');
  assert.throws(() => signingSecret({ ...config('https://h.example'), clientSecret: undefined }), /set `client-secret`/);
});
