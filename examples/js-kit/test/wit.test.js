import { test } from 'node:test';
import assert from 'node:assert/strict';

import { differences, expectedFiles } from '../scripts/sync-wit.js';

test("the kit's WIT copy and generated types match the repository's WIT", () => {
  assert.deepEqual(differences(expectedFiles()), [], 'run `npm run sync-wit` in examples/js-kit and commit the result');
});
