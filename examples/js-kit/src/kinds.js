// The well-known identifier-kind names.
//
// Since contract 0.2.0 an `identifier-kind` is a name (a string), so a partner's new key needs no
// contract bump. These are the names the host's API accepts and the conformance suite exercises
// (the table in wit/destination.wit); use the constants rather than string literals.

/** An e-mail address. */
export const EMAIL = 'email';
/** A phone number, ideally E.164 (`+15559876543`). */
export const PHONE = 'phone';
/** An Android advertising id (AAID / MAID). */
export const MOBILE_AD_ID = 'mobile-ad-id';
/** Apple's identifier for advertisers. */
export const IDFA = 'idfa';
/** The caller's own id for the user, agreed with the partner. */
export const EXTERNAL_ID = 'external-id';
/** A first name, as typed. */
export const FIRST_NAME = 'first-name';
/** A last name, as typed. */
export const LAST_NAME = 'last-name';
/** A date of birth, `YYYY-MM-DD`. */
export const DATE_OF_BIRTH = 'date-of-birth';
/** A gender: `f`, `m` (or `female`, `male`). */
export const GENDER = 'gender';
/** A city, as typed. */
export const CITY = 'city';
/** A state or province, as typed. */
export const REGION = 'region';
/** A postal code, as typed. */
export const POSTAL_CODE = 'postal-code';
/** A country, ISO 3166-1 alpha-2 (`us`). */
export const COUNTRY = 'country';

/** Every well-known name, in the contract's order. */
export const WELL_KNOWN = Object.freeze([
  EMAIL, PHONE, MOBILE_AD_ID, IDFA, EXTERNAL_ID, FIRST_NAME, LAST_NAME, DATE_OF_BIRTH, GENDER,
  CITY, REGION, POSTAL_CODE, COUNTRY,
]);

/**
 * Whether `kind` is one of the well-known names.
 *
 * @param {string} kind
 * @returns {boolean}
 */
export function isWellKnown(kind) {
  return WELL_KNOWN.includes(kind);
}

/**
 * Whether `kind` is spelled as the contract requires: non-empty, lowercase ASCII letters,
 * digits and '-'.
 *
 * @param {string} kind
 * @returns {boolean}
 */
export function isValidKindName(kind) {
  return /^[a-z0-9-]+$/.test(kind);
}
