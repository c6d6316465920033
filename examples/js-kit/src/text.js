// Shortening text before it goes into a log line or an error message.
//
// Partner error bodies can be large and user-supplied values arbitrarily long; both end up in
// messages that people read and that the host stores (and cuts at 1,024 bytes).

/**
 * The first `maxChars` characters (code points) of `text`, with `…` appended when it was cut.
 * Never splits a character.
 *
 * @param {string} text
 * @param {number} maxChars
 * @returns {string}
 */
export function excerpt(text, maxChars) {
  let count = 0;
  let end = 0;
  for (const char of text) {
    if (count === maxChars) {
      return `${text.slice(0, end)}…`;
    }
    count += 1;
    end += char.length;
  }
  return text;
}

const LEADING_SPACE = /^\p{White_Space}+/u;
const TRAILING_SPACE = /\p{White_Space}+$/u;

/**
 * `text` without surrounding Unicode White_Space: the same as the host's (Rust's) `trim`, which
 * differs from `String.prototype.trim` on U+FEFF (kept here) and U+0085 (removed here).
 *
 * @param {string} text
 * @returns {string}
 */
export function trimWhiteSpace(text) {
  return text.replace(LEADING_SPACE, '').replace(TRAILING_SPACE, '');
}
