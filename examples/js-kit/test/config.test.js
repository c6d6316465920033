import { test } from 'node:test';
import assert from 'node:assert/strict';

import { setting, urlHost } from '../src/config.js';

test('settings: trimmed, blank is absent, the first occurrence wins', () => {
  const config = { settings: /** @type {Array<[string, string]>} */ ([['path', ' /in '], ['empty', ' '], ['path', '/other']]) };
  assert.equal(setting(config, 'path'), '/in');
  assert.equal(setting(config, 'empty'), undefined);
  assert.equal(setting(config, 'absent'), undefined);
});

test("a URL's host, as the Rust SDK's url_host reads it", () => {
  const cases = [
    ['https://api.example.com:8443/v5/', 'api.example.com'],
    ['http://127.0.0.1:9', '127.0.0.1'],
    ['http://[::1]:9/x', '[::1]'],
    ['https://user:pw@h.example/x', 'h.example'],
    ['not a url', undefined],
    ['', undefined],
  ];
  for (const [url, expected] of cases) assert.equal(urlHost(url), expected, url);
});
