// The operator's settings, read from `plugin-config`.
//
// | where           | meaning                                                              |
// |-----------------|----------------------------------------------------------------------|
// | `base-url`      | the receiver's root URL (required), e.g. `https://hooks.example.com` |
// | `client-secret` | the shared secret the batches are signed with (required)             |
// | setting `path`  | where batches are POSTed, default `/audience-batches`                |

import { invalidRequest, setting } from '@audience-host/destination-kit';

/** @typedef {import('audience:destination/types@0.2.0').PluginConfig} PluginConfig */

/** Where batches go when the setting `path` is not set. */
export const DEFAULT_PATH = '/audience-batches';

/** The only account `listAccounts` offers. */
export const DEFAULT_ACCOUNT = 'default';

/**
 * @param {string | undefined} value
 * @param {string} name
 * @returns {string}
 */
function required(value, name) {
  const trimmed = value?.trim();
  if (!trimmed) {
    throw invalidRequest(`the webhook destination is not configured: set \`${name}\` in the plugin configuration`);
  }
  return trimmed;
}

/** The receiver's root URL, without a trailing slash. @param {PluginConfig} config */
export function baseUrl(config) {
  return required(config.baseUrl, 'base-url').replace(/\/+$/, '');
}

/** The secret batches are signed with. Never log it. @param {PluginConfig} config */
export function signingSecret(config) {
  return required(config.clientSecret, 'client-secret');
}

/** The URL batches are POSTed to: `{base-url}{path}`. @param {PluginConfig} config */
export function batchUrl(config) {
  const path = setting(config, 'path') ?? DEFAULT_PATH;
  return `${baseUrl(config)}${path.startsWith('/') ? '' : '/'}${path}`;
}

/** The URL audiences are found, created and searched at. @param {PluginConfig} config */
export function audiencesUrl(config) {
  return `${baseUrl(config)}/audiences`;
}

/** The URL one audience is read at (with query `account` and `id`). @param {PluginConfig} config */
export function audienceUrl(config) {
  return `${baseUrl(config)}/audience`;
}
