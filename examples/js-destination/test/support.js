// Shared fixtures for the unit tests: a configuration, credentials and users.

/** @returns {import('audience:destination/types@0.2.0').PluginConfig} */
export function config(settings = /** @type {Array<[string, string]>} */ ([])) {
  return { baseUrl: 'http://receiver.test/', clientId: undefined, clientSecret: 'shh-secret', settings };
}

/** @returns {import('audience:destination/types@0.2.0').Credentials} */
export function creds() {
  return { accessToken: 'tok-123', refreshToken: undefined, expiresAt: undefined, renewableUntil: undefined, scopes: [] };
}

/** `n` prepared users with one external id each. */
export function users(/** @type {number} */ n) {
  return Array.from({ length: n }, (_, i) => ({ key: `k${i}`, identifiers: [{ kind: 'external-id', value: `crm-${i}` }], consent: undefined }));
}

/** A batch of `n` users, id `b-1`, attempt 2. */
export function batch(/** @type {number} */ n) {
  return { id: 'b-1', attempt: 2, users: users(n) };
}
