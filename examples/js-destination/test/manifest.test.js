import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

import { kinds } from '@audience-host/destination-kit';

import { VERSION, manifest } from '../src/manifest.js';

const noBase = { baseUrl: undefined, clientId: undefined, clientSecret: undefined, settings: [] };

test('describe is pure and sane', () => {
  const m = manifest(noBase);
  assert.deepEqual(m, manifest(noBase));
  assert.equal(m.name, 'webhook-js');
  assert.ok(m.limits.maxBatchSize > 0 && m.oauth === undefined && m.defaultHosts.length === 0);
  assert.ok(m.identifiers.every(kinds.isValidKindName));
  assert.deepEqual(m.features, { removal: true, audienceSearch: true });
});

test('the base-url names the default host', () => {
  assert.deepEqual(manifest({ ...noBase, baseUrl: 'https://hooks.example.com:8443/in' }).defaultHosts, ['hooks.example.com']);
});

test("the manifest's version is the package's", () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.equal(VERSION, pkg.version);
});
