// The component's entry module (`npm run build` bundles it and everything it imports): the
// host's imports as one `host` object, and the `plugin` export of the `destination` world.
// Everything else is ordinary JavaScript that the unit tests run in Node against a FakeHost.

import { send } from 'audience:destination/http-client@0.2.0';
import { log } from 'audience:destination/log@0.2.0';
import { sha256Hex } from 'audience:destination/hashing@0.2.0';
import { reportBudget } from 'audience:destination/pacing@0.2.0';

import { createPlugin } from './plugin.js';

/** The `plugin` interface the component exports (`audience:destination/plugin@0.2.0`). */
export const plugin = createPlugin({ send, log, sha256Hex, reportBudget });
