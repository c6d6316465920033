// `describe`: who the plugin is and what it can do. Pure: the same answer for the same
// configuration, and no network.

import { kinds, limits, urlHost } from '@audience-host/destination-kit';

/**
 * @typedef {import('audience:destination/types@0.2.0').Manifest} Manifest
 * @typedef {import('audience:destination/types@0.2.0').PluginConfig} PluginConfig
 */

/** The plugin's version, shown to operators: bump it with every release (test/manifest.test.js keeps it equal to package.json's). */
export const VERSION = '0.1.0';

/** The most users in one batch request. The host never sends more; more is refused anyway, since an operator may override the limit upwards. */
export const MAX_BATCH_SIZE = 1000;

/** The identifier kinds the receiver matches on. */
export const IDENTIFIERS = Object.freeze([kinds.EMAIL, kinds.MOBILE_AD_ID, kinds.IDFA, kinds.EXTERNAL_ID]);

/**
 * Whether the receiver matches on `kind`.
 *
 * @param {string} kind
 */
export function supports(kind) {
  return IDENTIFIERS.includes(kind);
}

/**
 * The manifest for `config`.
 *
 * @param {PluginConfig} config
 * @returns {Manifest}
 */
export function manifest(config) {
  const host = config.baseUrl === undefined ? undefined : urlHost(config.baseUrl);
  return {
    name: 'webhook-js',
    version: VERSION,
    displayName: 'Webhook audience (JavaScript)',
    identifiers: [...IDENTIFIERS],
    // Each user is sent with every selected identifier it has.
    audienceKeys: 'multi-key',
    // Removal and `GET /audiences` search; every batch finishes in its request.
    features: { removal: true, audienceSearch: true },
    limits: limits(MAX_BATCH_SIZE, 10, 4),
    // No OAuth: the receiver's token is configured directly on the connection.
    oauth: undefined,
    // The receiver's host, when the operator configured its URL (else none: the operator
    // allows it in the host's HTTP policy).
    defaultHosts: host === undefined ? [] : [host],
  };
}
