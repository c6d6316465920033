//! Shortening text before it goes into a log line or an error message.
//!
//! Partner error bodies can be large and user-supplied values can be arbitrarily long; both end
//! up in messages that people read and that the host stores. [`excerpt`] keeps them to a
//! readable size without splitting a UTF-8 character.

/// The first `max_chars` characters of `text`, with `…` appended when it was cut.
///
/// ```
/// use audience_plugin_sdk::text::excerpt;
/// assert_eq!(excerpt("short", 10), "short");
/// assert_eq!(excerpt("abcdefghij", 4), "abcd…");
/// ```
pub fn excerpt(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_short_text_and_cuts_on_char_boundaries() {
        assert_eq!(excerpt("", 3), "");
        assert_eq!(excerpt("abc", 3), "abc");
        assert_eq!(excerpt("abcd", 3), "abc…");
        assert_eq!(excerpt("ééééé", 2), "éé…");
    }
}
