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

/**
 * Whether the UTF-16 code unit `code` is Unicode White_Space (every White_Space character is in
 * the Basic Multilingual Plane). A comparison, not a `\p{White_Space}` regular expression: the
 * component's JavaScript runs in an interpreter, where this is several times faster.
 *
 * @param {number} code
 * @returns {boolean}
 */
export function isWhiteSpaceCode(code) {
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  if (code < 0x85) return false;
  return code === 0x85 || code === 0xa0 || code === 0x1680 || (code >= 0x2000 && code <= 0x200a)
    || code === 0x2028 || code === 0x2029 || code === 0x202f || code === 0x205f || code === 0x3000;
}

/**
 * `text` without surrounding Unicode White_Space: the same as the host's (Rust's) `trim`, which
 * differs from `String.prototype.trim` on U+FEFF (kept here) and U+0085 (removed here).
 *
 * @param {string} text
 * @returns {string}
 */
export function trimWhiteSpace(text) {
  let start = 0;
  let end = text.length;
  while (start < end && isWhiteSpaceCode(text.charCodeAt(start))) start += 1;
  while (end > start && isWhiteSpaceCode(text.charCodeAt(end - 1))) end -= 1;
  return start === 0 && end === text.length ? text : text.slice(start, end);
}
