import { test } from 'node:test';
import assert from 'node:assert/strict';

import { audience, exactSize, limits, unattributed } from '../src/build.js';

test('record builders fill the defaults, sizes as bigint', () => {
  assert.deepEqual(exactSize(42), { lower: 42n, upper: 42n });
  assert.deepEqual(audience('a-1', 'VIPs', { state: 'ready' }), {
    id: 'a-1', name: 'VIPs', created: false, identifiers: [], size: {}, state: 'ready', details: [],
  });
  assert.deepEqual(limits(1000, 10, 4), { maxBatchSize: 1000, requestsPerSecond: 10, maxConcurrentRequests: 4, maxSubmissionsPerAudience: 0 });
  const samples = Array.from({ length: 12 }, (_, i) => `s${i}`);
  assert.deepEqual(unattributed(3, 'bad rows', samples).samples, samples.slice(0, 10));
});
