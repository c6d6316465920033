// Reading the operator's `plugin-config`.

/**
 * @typedef {import('audience:destination/types@0.2.0').PluginConfig} PluginConfig
 */

/**
 * The value of setting `key`, trimmed; `undefined` when it is absent or blank. When a key
 * repeats, the first occurrence wins.
 *
 * @param {PluginConfig} config
 * @param {string} key
 * @returns {string | undefined}
 */
export function setting(config, key) {
  const value = config.settings.find(([k]) => k === key)?.[1].trim();
  return value === '' ? undefined : value;
}

/**
 * The host of `url` (no scheme, port, path or user info), for `manifest.defaultHosts`;
 * `undefined` when `url` is not an absolute URL with a host.
 *
 * @param {string} url
 * @returns {string | undefined}
 */
export function urlHost(url) {
  try {
    const host = new URL(url.trim()).hostname;
    return host === '' ? undefined : host;
  } catch {
    return undefined;
  }
}
