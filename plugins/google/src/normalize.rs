//! Google's formatting rules, one function per identifier, as the Data Manager formatting guide
//! and Google's own formatting library (`googleads/data-manager-python`,
//! `datamanager_util/format.py`) apply them; the researched facts are in
//! `crates/sandbox/spec/google-notes.md` ("Identifier normalisation and hashing").
//!
//! | kind | rule | sent |
//! |---|---|---|
//! | `email` | trim, no whitespace inside, lowercase, `local@domain.tld`; for `gmail.com` and `googlemail.com` only, every `.` and any `+tag` dropped from the local part (`Cloudy.SanFrancisco+shopping@gmail.com` → `cloudysanfrancisco@gmail.com`; `user.name+NYC@Example.com` → `user.name+nyc@example.com`) | SHA-256, lowercase hex |
//! | `phone` | E.164: `+`, the calling code, the digits (`+1 (800) 555-0100` → `+18005550100`); a number written without `+` or `00` gets the calling code of the user's `country` (a national trunk `0` dropped), and without a country it is refused: Google's library "cannot add a missing country code" and neither can the plugin | SHA-256, lowercase hex |
//! | `first-name`, `last-name` | trim, lowercase, punctuation removed, inner whitespace collapsed, a leading title (`mr`, `mrs`, `ms`, `miss`, `mx`, `dr`) and trailing suffixes (`jr`, `sr`, `ii`, `iii`, `iv`, `md`, `phd`, `dds`, `esq`) dropped when a name remains | SHA-256, lowercase hex |
//! | `country` | ISO 3166-1 alpha-2, uppercase (`us` → `US`) | as is, never hashed |
//! | `postal-code` | trimmed; a US code is 5 digits or 5+4 (`94103-1234`), elsewhere letters, digits, spaces and `-`, 2 to 10 characters | as is, never hashed |
//! | `mobile-ad-id`, `idfa` | a UUID (8-4-4-4-12 hex), not all zeros; an Android id lowercase, an IDFA uppercase (each platform's canonical form, so any spelling prepares alike) | raw |
//! | `external-id` | trimmed, no control characters, at most 256 characters | raw |
//!
//! A value that already is a SHA-256 hex digest passes through (lowercased) for the hashed
//! kinds; for the kinds Google wants unhashed it is refused.
//!
//! Decisions where the notes leave a point open: the gmail dot and `+tag` rule is documented by
//! Google for the Data Manager API only, which is the API this plugin uses, so it is applied.
//! Google's library only trims and lowercases names, while the formatting guide also removes
//! punctuation, titles and suffixes: the plugin follows the guide, which is stricter and makes
//! `O'Brien` and `OBrien` hash alike. Mobile-id case is not documented: the platforms'
//! canonical forms are used.

use audience_plugin_sdk::identity::{is_sha256_hex, normalize_device_id, normalize_email};
use audience_plugin_sdk::text::excerpt;

use audience_plugin_sdk::countries::{LEADING_ZERO_KEPT, calling_code, is_country};

/// Why a value is unusable, in words an operator can act on.
pub type Reason = String;

/// How much of a value a reason quotes.
const QUOTED_CHARS: usize = 40;

/// The digits an E.164 number has after the `+`.
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

/// The longest external id accepted.
pub const MAX_EXTERNAL_ID_CHARS: usize = 256;

/// Titles dropped from the start of a name.
const TITLES: [&str; 6] = ["mr", "mrs", "ms", "miss", "mx", "dr"];

/// Suffixes dropped from the end of a name.
const SUFFIXES: [&str; 9] = ["jr", "sr", "ii", "iii", "iv", "md", "phd", "dds", "esq"];

/// A usable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Normalised {
    /// Normalised; hashed before sending for the hashed kinds, sent as is for the others.
    Plain(String),
    /// Already a SHA-256 hex digest (lowercase): sent as is.
    Hashed(String),
}

/// `value` quoted for a reason: control characters replaced, cut short.
pub fn quote(value: &str) -> String {
    let clean: String = value.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
    format!("'{}'", excerpt(&clean, QUOTED_CHARS))
}

fn pre_hashed(raw: &str) -> Option<Normalised> {
    let trimmed = raw.trim();
    is_sha256_hex(trimmed).then(|| Normalised::Hashed(trimmed.to_ascii_lowercase()))
}

fn non_empty(raw: &str) -> Result<&str, Reason> {
    let trimmed = raw.trim();
    if trimmed.is_empty() { Err("the value is empty".into()) } else { Ok(trimmed) }
}

/// An e-mail address.
pub fn email(raw: &str) -> Result<Normalised, Reason> {
    if let Some(hashed) = pre_hashed(raw) {
        return Ok(hashed);
    }
    let email = normalize_email(raw).map_err(|e| e.to_string())?;
    let Some((local, domain)) = email.split_once('@') else { return Err(format!("{} has no '@'", quote(&email))) };
    if domain != "gmail.com" && domain != "googlemail.com" {
        return Ok(Normalised::Plain(email));
    }
    let local: String = local.split('+').next().unwrap_or_default().chars().filter(|c| *c != '.').collect();
    if local.is_empty() {
        return Err(format!("{} has nothing before the '@' once dots and the +tag are dropped", quote(&email)));
    }
    Ok(Normalised::Plain(format!("{local}@{domain}")))
}

/// The ASCII digit `c` stands for (Arabic-Indic, Devanagari and full-width digits included).
fn digit_value(c: char) -> Option<char> {
    if c.is_ascii_digit() {
        return Some(c);
    }
    ['\u{0660}', '\u{06f0}', '\u{0966}', '\u{ff10}'].iter().find_map(|zero| {
        let offset = u32::from(c).checked_sub(u32::from(*zero))?;
        (offset < 10).then(|| char::from_digit(offset, 10)).flatten()
    })
}

/// A phone number, in E.164 (`+` and digits); `country` (lowercase alpha-2) is the user's
/// country, which gives a national number its calling code.
pub fn phone(raw: &str, country: Option<&str>) -> Result<Normalised, Reason> {
    if let Some(hashed) = pre_hashed(raw) {
        return Ok(hashed);
    }
    let trimmed = non_empty(raw)?;
    if trimmed.chars().any(|c| c.is_alphabetic()) {
        return Err(format!("{} has letters; a phone number has digits only", quote(trimmed)));
    }
    let digits: String = trimmed.chars().filter_map(digit_value).collect();
    let plus = trimmed.starts_with('+') || trimmed.starts_with('\u{ff0b}');
    let international = plus || digits.starts_with("00");
    let number = if international {
        let number = if plus { digits.as_str() } else { &digits[2..] };
        number.trim_start_matches('0').to_string()
    } else {
        let trunk = digits.starts_with('0');
        let significant = digits.trim_start_matches('0');
        let Some((country, code)) = country.and_then(|c| calling_code(c).map(|code| (c, code))) else {
            return Err(format!(
                "{} has no country code: send it in E.164 (+15555550123), or send the user's country",
                quote(trimmed)
            ));
        };
        if LEADING_ZERO_KEPT.contains(&country) && trunk {
            format!("{code}0{significant}")
        } else if trunk || !significant.starts_with(code) {
            format!("{code}{significant}")
        } else {
            significant.to_string()
        }
    };
    if !PHONE_DIGITS.contains(&number.len()) {
        return Err(format!(
            "{} has {} digits with its country code; a phone number has {} to {}",
            quote(trimmed),
            number.len(),
            PHONE_DIGITS.start(),
            PHONE_DIGITS.end()
        ));
    }
    Ok(Normalised::Plain(format!("+{number}")))
}

/// Whether `c` is kept in a name: a letter or digit of any script, or a combining mark (the
/// accent of a decomposed letter).
fn kept_in_name(c: char) -> bool {
    c.is_alphanumeric() || ('\u{0300}'..='\u{036f}').contains(&c)
}

/// A first or last name.
pub fn name(raw: &str) -> Result<Normalised, Reason> {
    if let Some(hashed) = pre_hashed(raw) {
        return Ok(hashed);
    }
    let trimmed = non_empty(raw)?;
    let mut words: Vec<String> = trimmed
        .to_lowercase()
        .split_whitespace()
        .map(|w| w.chars().filter(|c| kept_in_name(*c)).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() > 1 && TITLES.contains(&words[0].as_str()) {
        words.remove(0);
    }
    while words.len() > 1 && words.last().is_some_and(|w| SUFFIXES.contains(&w.as_str())) {
        words.pop();
    }
    if words.is_empty() {
        return Err(format!("{} has no letters", quote(trimmed)));
    }
    Ok(Normalised::Plain(words.join(" ")))
}

/// A country, as the lowercase alpha-2 code (the form [`phone`] takes as context).
pub fn country_code(raw: &str) -> Result<String, Reason> {
    let trimmed = non_empty(raw)?;
    if is_sha256_hex(trimmed) {
        return Err("a country is sent unhashed, but the value is a SHA-256 digest".into());
    }
    let code = trimmed.to_ascii_lowercase();
    if code.len() == 2 && is_country(&code) {
        Ok(code)
    } else {
        Err(format!("{} is not a two-letter ISO 3166-1 country code (like US)", quote(trimmed)))
    }
}

/// A country, as Google wants it: the uppercase alpha-2 code.
pub fn country(raw: &str) -> Result<Normalised, Reason> {
    country_code(raw).map(|c| Normalised::Plain(c.to_ascii_uppercase()))
}

/// A postal code of an address in `country` (lowercase alpha-2).
pub fn postal_code(raw: &str, country: &str) -> Result<Normalised, Reason> {
    let trimmed = non_empty(raw)?;
    if is_sha256_hex(trimmed) {
        return Err("a postal code is sent unhashed, but the value is a SHA-256 digest".into());
    }
    if country == "us" {
        let bytes = trimmed.as_bytes();
        let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
        let five = bytes.len() == 5 && digits(bytes);
        let nine = bytes.len() == 10 && digits(&bytes[..5]) && bytes[5] == b'-' && digits(&bytes[6..]);
        return if five || nine {
            Ok(Normalised::Plain(trimmed.to_string()))
        } else {
            Err(format!("{} is not a US ZIP code (5 digits, or 5+4 like 94103-1234)", quote(trimmed)))
        };
    }
    let allowed = trimmed.chars().all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
    let length = trimmed.chars().count();
    if allowed && (2..=10).contains(&length) && trimmed.chars().any(|c| c.is_ascii_alphanumeric()) {
        Ok(Normalised::Plain(trimmed.to_string()))
    } else {
        Err(format!("{} is not a postal code (2 to 10 letters, digits, spaces or '-')", quote(trimmed)))
    }
}

/// A mobile advertising id: `ios` for an IDFA (uppercase), else an Android id (lowercase).
pub fn mobile_id(raw: &str, ios: bool) -> Result<Normalised, Reason> {
    let id = normalize_device_id(raw).map_err(|e| e.to_string())?;
    Ok(Normalised::Plain(if ios { id.to_ascii_uppercase() } else { id }))
}

/// The advertiser's own id for the user, sent as it is (trimmed).
pub fn external_id(raw: &str) -> Result<Normalised, Reason> {
    let trimmed = non_empty(raw)?;
    if trimmed.chars().any(char::is_control) {
        return Err(format!("{} has control characters", quote(trimmed)));
    }
    if trimmed.chars().count() > MAX_EXTERNAL_ID_CHARS {
        return Err(format!("{} is longer than {MAX_EXTERNAL_ID_CHARS} characters", quote(trimmed)));
    }
    Ok(Normalised::Plain(trimmed.to_string()))
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::identity::sha256_hex;

    use super::*;

    fn plain(result: Result<Normalised, Reason>) -> String {
        match result {
            Ok(Normalised::Plain(v)) => v,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn googles_hash_vectors() {
        // data-manager-python's tests/formatter_test.py, and the notes' own computation.
        assert_eq!(
            sha256_hex(&plain(email("alexz@example.com"))),
            "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a"
        );
        assert_eq!(
            sha256_hex(&plain(phone("+18005550100", None))),
            "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30"
        );
        assert_eq!(
            sha256_hex(&plain(email(" Dana@Example.com "))),
            "07e2f1394b0ea80e2adca010ea8318df697001a005ba7452720edda4b0ce57b3"
        );
    }

    #[test]
    fn emails() {
        assert_eq!(plain(email("Cloudy.SanFrancisco+shopping@gmail.com")), "cloudysanfrancisco@gmail.com");
        assert_eq!(plain(email("a.b.c+x+y@GoogleMail.com")), "abc@googlemail.com");
        assert_eq!(plain(email("user.name+NYC@Example.com")), "user.name+nyc@example.com");
        assert_eq!(plain(email("  Alex.Z@Example.COM\t")), "alex.z@example.com");
        assert!(email("+tag@gmail.com").unwrap_err().contains("nothing before"));
        assert!(email("spaced out@example.com").is_err());
        assert!(email("bob@").is_err());
        let digest = "509E933019BB285A134A9334B8BB679DFF79D0CE023D529AF4BD744D47B4FD8A";
        assert_eq!(email(&format!(" {digest} ")), Ok(Normalised::Hashed(digest.to_ascii_lowercase())));
    }

    #[test]
    fn phones() {
        assert_eq!(plain(phone("+1 (800) 555-0100", None)), "+18005550100");
        assert_eq!(plain(phone("0044 20 7946 0958", None)), "+442079460958");
        assert_eq!(plain(phone("(800)555-0100", Some("us"))), "+18005550100");
        assert_eq!(plain(phone("1 800 555 0100", Some("us"))), "+18005550100");
        assert_eq!(plain(phone("020 7946 0958", Some("gb"))), "+442079460958");
        assert_eq!(plain(phone("06 1234 5678", Some("it"))), "+390612345678");
        assert_eq!(plain(phone("+٤٤٧٩٠٠٠٠٠٠٠٠", None)), "+447900000000");
        assert!(phone("(800)555-0100", None).unwrap_err().contains("no country code"));
        assert!(phone("phone", None).unwrap_err().contains("letters"));
        assert!(phone("+1 23", None).unwrap_err().contains("digits"));
        assert!(phone(" ", None).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(plain(name("  José  ")), "josé");
        assert_eq!(plain(name("O'Brien")), "obrien");
        assert_eq!(plain(name("Dr. Mary-Ann  Smith, Jr.")), "maryann smith");
        assert_eq!(plain(name("Mr.")), "mr");
        assert_eq!(plain(name("John Smith III PhD")), "john smith");
        assert_eq!(plain(name("名前")), "名前");
        assert!(name("!!!").is_err());
    }

    #[test]
    fn addresses() {
        assert_eq!(plain(country(" us ")), "US");
        assert!(country("usa").is_err() && country("ZZ").is_err());
        assert_eq!(plain(postal_code(" 94103-1234 ", "us")), "94103-1234");
        assert!(postal_code("9410", "us").is_err());
        assert_eq!(plain(postal_code("SW1A 1AA", "gb")), "SW1A 1AA");
        assert!(postal_code("1234567890123", "de").is_err());
        let digest = "f".repeat(64);
        assert!(postal_code(&digest, "de").is_err() && country(&digest).is_err());
    }

    #[test]
    fn mobile_and_user_ids() {
        let id = "C0FFEE00-0000-4000-8000-0000000000AB";
        assert_eq!(plain(mobile_id(&id.to_ascii_lowercase(), true)), id);
        assert_eq!(plain(mobile_id(id, false)), id.to_ascii_lowercase());
        assert!(mobile_id("00000000-0000-0000-0000-000000000000", false).is_err());
        assert!(mobile_id("not-a-device-id", true).is_err());
        assert_eq!(plain(external_id("  Ext-ODD-1  ")), "Ext-ODD-1");
        assert!(external_id("null\0byte").is_err());
        assert!(external_id(&"x".repeat(300)).is_err());
    }
}
