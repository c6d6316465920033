// `exportPlugin`: the object a component exports as `plugin`, with every failure in the shape the
// generated bindings can pass to the host.
//
// The bindings answer an export's `err` with the thrown value's own `payload`, or with the thrown
// value itself when it is not an `Error`; any other `Error` is re-thrown and crashes the call.
// That makes two mistakes easy: throwing `new Error('not found')` (a crash instead of
// `not-found`), and letting the failure of an import call escape (its `payload` is an
// `http-error`, which is not a `destination-error`: the call fails with a type error inside the
// bindings). `exportPlugin` checks that every export is there, answers an escaped import
// failure with the error the Rust SDK would (`httpFailure`), and logs a real crash's stack
// through the host before letting it crash the call.

import { toDestinationError } from './errors.js';

/**
 * @typedef {typeof import('audience:destination/plugin@0.2.0')} PluginExports
 * @typedef {import('./host.js').Host} Host
 */

/**
 * What `exportPlugin` takes: every export of `interface plugin`, each answering its value or a
 * promise of it.
 *
 * @typedef {{ [K in keyof PluginExports]: (...args: Parameters<PluginExports[K]>) => ReturnType<PluginExports[K]> | Promise<ReturnType<PluginExports[K]>> }} PluginImplementation
 */

/** The exports of `interface plugin`, in the WIT's order. */
export const EXPORTS = Object.freeze([
  'describe', 'prepareUsers', 'authorize', 'listAccounts', 'searchAudiences', 'readAudience',
  'checkTarget', 'upsertAudience', 'addUsers', 'removeUsers', 'checkSubmission',
]);

/** The exports that return `result<_, destination-error>`. */
const FALLIBLE = new Set(EXPORTS.filter((name) => name !== 'describe' && name !== 'prepareUsers'));

/**
 * What `name` throws to the bindings for `thrown`: the `destination-error` it stands for (for a
 * fallible export), else `thrown` itself after logging it.
 *
 * @param {string} name
 * @param {unknown} thrown
 * @param {Pick<Host, 'log'>} host
 */
function settle(name, thrown, host) {
  const error = FALLIBLE.has(name) ? toDestinationError(thrown) : undefined;
  if (error !== undefined) return error;
  const detail = thrown instanceof Error ? (thrown.stack ?? `${thrown.name}: ${thrown.message}`) : String(thrown);
  host.log('error', `${name} crashed: ${detail}`);
  return thrown;
}

/**
 * `impl` wrapped for export: `export const plugin = exportPlugin({ describe, prepareUsers, ... }, host);`.
 * Each function may return its value or a promise of it (the bindings await it).
 *
 * @param {PluginImplementation} impl every export of `interface plugin`, camelCase
 * @param {Pick<Host, 'log'>} host where a crash's stack is logged
 * @returns {PluginExports}
 */
export function exportPlugin(impl, host) {
  const missing = EXPORTS.filter((name) => typeof (/** @type {any} */ (impl))[name] !== 'function');
  if (missing.length > 0) {
    throw new TypeError(`the plugin does not implement ${missing.join(', ')}: every export of interface plugin is required (answer invalidRequest(...) for what your partner does not support)`);
  }
  /** @type {any} */
  const wrapped = {};
  for (const name of EXPORTS) {
    const fn = /** @type {(...args: unknown[]) => unknown} */ ((/** @type {any} */ (impl))[name]);
    wrapped[name] = (/** @type {unknown[]} */ ...args) => {
      let result;
      try {
        result = fn.apply(impl, args);
      } catch (thrown) {
        throw settle(name, thrown, host);
      }
      if (result instanceof Promise) {
        return result.catch((thrown) => {
          throw settle(name, thrown, host);
        });
      }
      return result;
    };
  }
  return /** @type {PluginExports} */ (Object.freeze(wrapped));
}
