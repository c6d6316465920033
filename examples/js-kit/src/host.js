// What a plugin needs from the host, as one object, so the same code runs in the component
// (the imports themselves) and in `node --test` (a `FakeHost` from '@audience-host/destination-kit/testing').
//
// In the component's entry module:
//
//   import { send } from 'audience:destination/http-client@0.2.0';
//   import { log } from 'audience:destination/log@0.2.0';
//   import { sha256Hex } from 'audience:destination/hashing@0.2.0';
//   import { reportBudget } from 'audience:destination/pacing@0.2.0';
//   const host = { send, log, sha256Hex, reportBudget };

/**
 * The host's imports.
 *
 * @typedef {object} Host
 * @property {(request: import('audience:destination/http-client@0.2.0').Request) => import('audience:destination/http-client@0.2.0').Response} send
 *   `http-client.send`: any status is an answer; when none came it throws an `Error` whose
 *   `payload` is the `http-error` (`{ tag: 'timeout' }`, `{ tag: 'denied', val: '...' }`, ...).
 *   Use `send` from ./http.js, which turns that into the right `destination-error`.
 * @property {(level: import('audience:destination/log@0.2.0').Level, message: string) => void} log
 *   `log.log`: one line into the host's log, tagged with the plugin's name. Never log credentials.
 * @property {(normalization: import('audience:destination/hashing@0.2.0').Normalization, values: string[]) => string[]} sha256Hex
 *   `hashing.sha256-hex`: normalise and SHA-256 many values in native code, one digest per value.
 * @property {(reading: import('audience:destination/pacing@0.2.0').Budget) => void} reportBudget
 *   `pacing.report-budget`: the partner's own reading of this connection's rate budget.
 */

export {};
