//! Meta's normalisation rules, one function per key of the multi-key schema.
//!
//! Meta hashes its own users' data after normalising it one way, so a value only matches when
//! the plugin normalises it the same way before hashing. The rules (Meta's customer-file guide
//! and its SDK's normaliser):
//!
//! | key       | rule                                                                                   |
//! |-----------|----------------------------------------------------------------------------------------|
//! | `EMAIL`   | trim, drop trailing dots, lowercase; must look like `local@domain.tld`                  |
//! | `PHONE`   | digits only (symbols, spaces, letters dropped; Arabic-Indic, Devanagari and full-width digits read as digits), leading zeros dropped; with the country code: a number written internationally (`+…` or `00…`) keeps its own; a national number gets the calling code of the user's country prefixed **when the row sends no `COUNTRY`** (with `COUNTRY` sent, Meta combines the two itself, so the national digits go as they are); 7 to 15 digits |
//! | `FN`,`LN` | lowercase, letters only (any script: non-Roman names are allowed), no punctuation or spaces |
//! | `FI`      | the first letter of the normalised first name                                          |
//! | `CT`      | lowercase, letters only, no spaces or punctuation                                      |
//! | `ST`      | lowercase, letters and digits only; a US state (user's country `us`, or none) as its two-letter ANSI code, full names translated |
//! | `ZIP`     | lowercase, no whitespace; US: the first 5 digits; UK (`gb`): area, district and sector (`SW1A 1AA` → `sw1a1`); a value shaped like a US ZIP with no country known is treated as one |
//! | `COUNTRY` | ISO 3166-1 alpha-2, lowercase (`uk` is read as `gb`)                                   |
//! | `GEN`     | `m` or `f` (`male` / `female` accepted)                                                |
//! | `DOBY` `DOBM` `DOBD` | from `YYYY-MM-DD`: the year (1900 to this year), the two-digit month, the two-digit day; the date must exist |
//! | `MADID`   | lowercase, hyphens kept, UUID shape, not hashed; the all-zero id is refused            |
//! | `EXTERN_ID` | trimmed, otherwise as given, not hashed                                              |
//!
//! A value of a hashed key that already is a SHA-256 hex digest passes through (lowercased),
//! so callers may send pre-hashed data. Every function returns a reason for people when the
//! value cannot be used, quoting the value shortened and without control characters.

use audience_plugin_sdk::identity::{is_sha256_hex, normalize_device_id, normalize_email};
use audience_plugin_sdk::text::excerpt;

use crate::countries::us_state;
use audience_plugin_sdk::countries::{LEADING_ZERO_KEPT, calling_code, is_country};

/// How much of a value a reason quotes.
const QUOTED_CHARS: usize = 40;

/// The fewest and most digits of a phone number with its country code (E.164 allows 15).
const PHONE_DIGITS: std::ops::RangeInclusive<usize> = 7..=15;

/// The earliest year of birth Meta accepts.
pub const MIN_BIRTH_YEAR: u32 = 1900;

/// A usable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Normalised {
    /// Normalised, still to be hashed (or sent as is, for the unhashed keys).
    Plain(String),
    /// Already a SHA-256 hex digest (lowercased): sent as given.
    Hashed(String),
}

impl Normalised {
    /// The value, hashed or not.
    pub fn as_str(&self) -> &str {
        match self {
            Normalised::Plain(v) | Normalised::Hashed(v) => v,
        }
    }
}

/// Why a value cannot be used, for people.
pub type Reason = String;

/// `value` cut to [`QUOTED_CHARS`] with control characters replaced, in quotes.
pub fn quote(value: &str) -> String {
    let clean: String = value.chars().map(|c| if c.is_control() { '\u{fffd}' } else { c }).collect();
    format!("'{}'", excerpt(&clean, QUOTED_CHARS))
}

/// The value when it already is a SHA-256 hex digest (after trimming), lowercased.
fn pre_hashed(raw: &str) -> Option<Normalised> {
    let trimmed = raw.trim();
    is_sha256_hex(trimmed).then(|| Normalised::Hashed(trimmed.to_ascii_lowercase()))
}

fn empty_check(raw: &str) -> Result<&str, Reason> {
    let trimmed = raw.trim();
    if trimmed.is_empty() { Err("the value is empty".into()) } else { Ok(trimmed) }
}

/// `EMAIL`.
pub fn email(raw: &str) -> Result<Normalised, Reason> {
    if let Some(hashed) = pre_hashed(raw) {
        return Ok(hashed);
    }
    let trimmed = empty_check(raw)?.trim_end_matches('.');
    normalize_email(trimmed).map(Normalised::Plain).map_err(|e| e.to_string())
}

/// What a phone number's normalisation needs to know about the rest of the user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhoneContext<'a> {
    /// The user's country (lowercase alpha-2), when a valid one was given.
    pub country: Option<&'a str>,
    /// Whether the row sends `COUNTRY` (the country is selected and valid).
    pub country_sent: bool,
}

/// The value of a decimal digit in ASCII or one of the scripts phone numbers are commonly
/// written in (Arabic-Indic, Extended Arabic-Indic, Devanagari, full-width).
fn digit_value(c: char) -> Option<char> {
    if c.is_ascii_digit() {
        return Some(c);
    }
    let zeros = ['\u{0660}', '\u{06f0}', '\u{0966}', '\u{ff10}'];
    zeros.iter().find_map(|zero| {
        let offset = u32::from(c).checked_sub(u32::from(*zero))?;
        (offset < 10).then(|| char::from_digit(offset, 10)).flatten()
    })
}

/// `PHONE`.
pub fn phone(raw: &str, context: PhoneContext<'_>) -> Result<Normalised, Reason> {
    if let Some(hashed) = pre_hashed(raw) {
        return Ok(hashed);
    }
    let trimmed = empty_check(raw)?;
    let digits: String = trimmed.chars().filter_map(digit_value).collect();
    let international = trimmed.starts_with('+') || trimmed.starts_with('\u{ff0b}') || digits.starts_with("00");
    let national_trunk = !international && digits.starts_with('0');
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Err(format!("{} has no phone number digits", quote(trimmed)));
    }
    let number = match context.country.filter(|_| !international && !context.country_sent) {
        Some(country) => match calling_code(country) {
            Some(code) if LEADING_ZERO_KEPT.contains(&country) && national_trunk => format!("{code}0{significant}"),
            Some(code) if national_trunk || !significant.starts_with(code) => format!("{code}{significant}"),
            _ => significant.to_string(),
        },
        None => significant.to_string(),
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
    Ok(Normalised::Plain(number))
}

/// Lowercased letters (any script) of `value`, nothing else.
fn letters_lowercase(value: &str) -> String {
    value.chars().filter(|c| c.is_alphabetic()).flat_map(char::to_lowercase).collect()
}

fn letters_only(raw: &str) -> Result<Normalised, Reason> {
    if let Some(hashed) = pre_hashed(raw) {
        return Ok(hashed);
    }
    let trimmed = empty_check(raw)?;
    let letters = letters_lowercase(trimmed);
    if letters.is_empty() {
        return Err(format!("{} has no letters", quote(trimmed)));
    }
    Ok(Normalised::Plain(letters))
}

/// `FN` and `LN`.
pub fn name(raw: &str) -> Result<Normalised, Reason> {
    letters_only(raw)
}

/// `FI` from a normalised first name; none when the first name came pre-hashed.
pub fn first_initial(first_name: &Normalised) -> Option<Normalised> {
    match first_name {
        Normalised::Plain(name) => name.chars().next().map(|c| Normalised::Plain(c.to_string())),
        Normalised::Hashed(_) => None,
    }
}

/// `CT`.
pub fn city(raw: &str) -> Result<Normalised, Reason> {
    letters_only(raw)
}

/// `ST`. `country` is the user's country (lowercase alpha-2), when known.
pub fn region(raw: &str, country: Option<&str>) -> Result<Normalised, Reason> {
    if let Some(hashed) = pre_hashed(raw) {
        return Ok(hashed);
    }
    let trimmed = empty_check(raw)?;
    let compact: String =
        trimmed.chars().filter(|c| c.is_alphabetic() || c.is_ascii_digit()).flat_map(char::to_lowercase).collect();
    if compact.is_empty() {
        return Err(format!("{} has no letters or digits", quote(trimmed)));
    }
    match (country, us_state(&compact)) {
        (Some("us") | None, Some(code)) => Ok(Normalised::Plain(code.to_string())),
        (Some("us"), None) => {
            Err(format!("{} is not a US state (expected its name or two-letter code)", quote(trimmed)))
        }
        _ => Ok(Normalised::Plain(compact)),
    }
}

/// Whether `value` is shaped like a US ZIP code: 5 digits, optionally `-` or nothing and 4 more.
fn looks_like_us_zip(value: &str) -> bool {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    match value.split_once('-') {
        Some((five, four)) => five.len() == 5 && four.len() == 4 && digits(five) && digits(four),
        None => (value.len() == 5 || value.len() == 9) && digits(value),
    }
}

/// `ZIP`. `country` is the user's country (lowercase alpha-2), when known.
pub fn postal_code(raw: &str, country: Option<&str>) -> Result<Normalised, Reason> {
    if let Some(hashed) = pre_hashed(raw) {
        return Ok(hashed);
    }
    let trimmed = empty_check(raw)?;
    let compact: String = trimmed.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect();
    let us = country == Some("us") || (country.is_none() && looks_like_us_zip(&compact));
    if us {
        let first = compact.split('-').next().unwrap_or_default();
        let digits: String = first.chars().filter(char::is_ascii_digit).collect();
        if digits.len() < 5 {
            return Err(format!("{} is not a US ZIP code (5 digits)", quote(trimmed)));
        }
        return Ok(Normalised::Plain(digits[..5].to_string()));
    }
    if country == Some("gb") {
        let alnum: String = compact.chars().filter(char::is_ascii_alphanumeric).collect();
        let bytes = alnum.as_bytes();
        let n = bytes.len();
        // A full postcode ends in the unit: a digit (the sector) then two letters.
        let full = (5..=7).contains(&n)
            && bytes[n - 3].is_ascii_digit()
            && bytes[n - 2].is_ascii_alphabetic()
            && bytes[n - 1].is_ascii_alphabetic();
        if full {
            return Ok(Normalised::Plain(alnum[..n - 2].to_string()));
        }
        if alnum.is_empty() {
            return Err(format!("{} is not a UK postcode", quote(trimmed)));
        }
        return Ok(Normalised::Plain(alnum));
    }
    Ok(Normalised::Plain(compact))
}

/// `COUNTRY`.
pub fn country(raw: &str) -> Result<Normalised, Reason> {
    if let Some(hashed) = pre_hashed(raw) {
        return Ok(hashed);
    }
    let trimmed = empty_check(raw)?;
    let code = trimmed.to_ascii_lowercase();
    let code = if code == "uk" { "gb".to_string() } else { code };
    if code.len() == 2 && is_country(&code) {
        return Ok(Normalised::Plain(code));
    }
    Err(format!("{} is not an ISO 3166-1 alpha-2 country code (like 'us')", quote(trimmed)))
}

/// `GEN`.
pub fn gender(raw: &str) -> Result<Normalised, Reason> {
    if let Some(hashed) = pre_hashed(raw) {
        return Ok(hashed);
    }
    let trimmed = empty_check(raw)?;
    match trimmed.to_lowercase().as_str() {
        "m" | "male" => Ok(Normalised::Plain("m".into())),
        "f" | "female" => Ok(Normalised::Plain("f".into())),
        _ => Err(format!("{} is not a gender Meta takes ('f' or 'm')", quote(trimmed))),
    }
}

/// A date of birth split into Meta's three keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BirthDate {
    /// `DOBY`: `YYYY`.
    pub year: String,
    /// `DOBM`: `MM`.
    pub month: String,
    /// `DOBD`: `DD`.
    pub day: String,
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `DOBY`, `DOBM`, `DOBD` from `YYYY-MM-DD`; the year must be within 1900..=`max_year`.
pub fn date_of_birth(raw: &str, max_year: u32) -> Result<BirthDate, Reason> {
    let trimmed = empty_check(raw)?;
    let bad = || format!("{} is not a date of birth as YYYY-MM-DD", quote(trimmed));
    let parts: Vec<&str> = trimmed.split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    let number = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
    };
    let (Some(year), Some(month), Some(day)) = (number(y, 4), number(m, 2), number(d, 2)) else {
        return Err(bad());
    };
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(format!("{} is not a real date", quote(trimmed)));
    }
    if !(MIN_BIRTH_YEAR..=max_year).contains(&year) {
        return Err(format!("{} has a year of birth outside {MIN_BIRTH_YEAR} to {max_year}", quote(trimmed)));
    }
    Ok(BirthDate { year: format!("{year:04}"), month: format!("{month:02}"), day: format!("{day:02}") })
}

/// `MADID` (from `mobile-ad-id` or `idfa`): not hashed.
pub fn device_id(raw: &str) -> Result<Normalised, Reason> {
    normalize_device_id(raw).map(Normalised::Plain).map_err(|e| e.to_string())
}

/// `EXTERN_ID`: not hashed.
pub fn external_id(raw: &str) -> Result<Normalised, Reason> {
    let trimmed = empty_check(raw)?;
    if trimmed.chars().any(char::is_control) {
        return Err(format!("{} contains control characters", quote(trimmed)));
    }
    Ok(Normalised::Plain(trimmed.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(v: &str) -> Result<Normalised, Reason> {
        Ok(Normalised::Plain(v.into()))
    }

    const HASH: &str = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79";

    #[test]
    fn emails() {
        assert_eq!(email("  Mary@Example.COM  "), plain("mary@example.com"));
        assert_eq!(email("trailing.dot@example.com."), plain("trailing.dot@example.com"));
        assert_eq!(email(&HASH.to_ascii_uppercase()), Ok(Normalised::Hashed(HASH.into())));
        assert_eq!(email("bob@"), Err("'bob@' has no domain".into()));
        assert_eq!(email(" "), Err("the value is empty".into()));
    }

    fn ctx(country: Option<&str>, sent: bool) -> PhoneContext<'_> {
        PhoneContext { country, country_sent: sent }
    }

    #[test]
    fn phones_written_internationally_keep_their_country_code() {
        for raw in ["+1 (555) 987-6543", "  +15559876543 ", "0015559876543", "+1-555-987-6543 ext", "＋1 555 987 6543"]
        {
            assert_eq!(phone(raw, ctx(None, false)), plain("15559876543"), "{raw}");
            assert_eq!(phone(raw, ctx(Some("gb"), false)), plain("15559876543"), "{raw}");
        }
        assert_eq!(phone("+44 7700 900123", ctx(Some("us"), false)), plain("447700900123"));
        assert_eq!(phone("+٤٤٧٩٠٠٠٠٠٠٠٠", ctx(None, false)), plain("447900000000"));
    }

    #[test]
    fn national_phones_get_the_calling_code_when_no_country_is_sent() {
        assert_eq!(phone("(555) 987-6543", ctx(Some("us"), false)), plain("15559876543"));
        assert_eq!(phone("15559876543", ctx(Some("us"), false)), plain("15559876543"));
        assert_eq!(phone("07700 900123", ctx(Some("gb"), false)), plain("447700900123"));
        assert_eq!(phone("030 1234567", ctx(Some("de"), false)), plain("49301234567"));
        assert_eq!(phone("04921 123456", ctx(Some("de"), false)), plain("494921123456"), "trunk 0 = national");
        assert_eq!(phone("06 1234 5678", ctx(Some("it"), false)), plain("390612345678"), "Italy keeps its 0");
        assert_eq!(phone("3471234567", ctx(Some("it"), false)), plain("393471234567"));
    }

    #[test]
    fn national_phones_stay_national_with_country_sent_or_unknown() {
        assert_eq!(phone("07700 900123", ctx(Some("gb"), true)), plain("7700900123"));
        assert_eq!(phone("(555) 987-6543", ctx(None, false)), plain("5559876543"));
        assert_eq!(phone("15559876543", ctx(None, false)), plain("15559876543"));
    }

    #[test]
    fn bad_phones() {
        assert!(phone("phone", ctx(None, false)).is_err_and(|r| r.contains("no phone number digits")));
        assert!(phone("000", ctx(None, false)).is_err());
        assert!(phone("555-001", ctx(None, false)).is_err_and(|r| r.contains("has 6 digits") && r.contains("7 to 15")));
        assert!(phone("+1234567890123456", ctx(None, false)).is_err_and(|r| r.contains("16 digits")));
        assert_eq!(phone(HASH, ctx(None, false)), Ok(Normalised::Hashed(HASH.into())));
    }

    #[test]
    fn names_and_cities() {
        assert_eq!(name("  Mary-Jane  "), plain("maryjane"));
        assert_eq!(name("O'Brien"), plain("obrien"));
        assert_eq!(name("José"), plain("josé"));
        assert_eq!(name("Дмитрий"), plain("дмитрий"));
        assert_eq!(name("123"), Err("'123' has no letters".into()));
        assert_eq!(city("New York City"), plain("newyorkcity"));
        assert_eq!(city("St. Louis"), plain("stlouis"));
        assert_eq!(first_initial(&Normalised::Plain("mary".into())), Some(Normalised::Plain("m".into())));
        assert_eq!(first_initial(&Normalised::Hashed(HASH.into())), None);
    }

    #[test]
    fn regions() {
        assert_eq!(region("CA", Some("us")), plain("ca"));
        assert_eq!(region("California", Some("us")), plain("ca"));
        assert_eq!(region("new york", None), plain("ny"));
        assert!(region("Bavaria", Some("us")).is_err_and(|r| r.contains("not a US state")));
        assert_eq!(region("Île-de-France", Some("fr")), plain("îledefrance"));
        assert_eq!(region("Bavaria", None), plain("bavaria"));
        assert_eq!(region("75", Some("fr")), plain("75"));
    }

    #[test]
    fn postal_codes() {
        assert_eq!(postal_code("94105-1234", Some("us")), plain("94105"));
        assert_eq!(postal_code("941051234", None), plain("94105"));
        assert_eq!(postal_code(" 02134 ", None), plain("02134"));
        assert!(postal_code("2134", Some("us")).is_err());
        assert_eq!(postal_code("SW1A 1AA", Some("gb")), plain("sw1a1"));
        assert_eq!(postal_code("M1 1AE", Some("gb")), plain("m11"));
        assert_eq!(postal_code("sw1a1", Some("gb")), plain("sw1a1"));
        assert_eq!(postal_code("75 001", Some("fr")), plain("75001"));
        assert_eq!(postal_code("100-0001", Some("jp")), plain("100-0001"));
        assert_eq!(postal_code("SW1A 1AA", None), plain("sw1a1aa"));
    }

    #[test]
    fn countries_and_genders() {
        assert_eq!(country(" US "), plain("us"));
        assert_eq!(country("uk"), plain("gb"));
        assert!(country("USA").is_err());
        assert!(country("zz").is_err());
        for (raw, want) in [("M", "m"), ("male", "m"), (" Female ", "f"), ("f", "f")] {
            assert_eq!(gender(raw), plain(want), "{raw}");
        }
        assert!(gender("x").is_err());
    }

    #[test]
    fn dates_of_birth() {
        let date = date_of_birth(" 1990-05-07 ", 2026);
        assert_eq!(date, Ok(BirthDate { year: "1990".into(), month: "05".into(), day: "07".into() }));
        assert!(date_of_birth("2000-02-29", 2026).is_ok());
        assert!(date_of_birth("1900-02-29", 2026).is_err_and(|r| r.contains("not a real date")));
        assert!(date_of_birth("1990-13-01", 2026).is_err());
        assert!(date_of_birth("1990-04-31", 2026).is_err());
        assert!(date_of_birth("1899-12-31", 2026).is_err_and(|r| r.contains("1900 to 2026")));
        assert!(date_of_birth("2027-01-01", 2026).is_err());
        for bad in ["1990/05/07", "90-05-07", "1990-5-7", "19900507", "x"] {
            assert!(date_of_birth(bad, 2026).is_err_and(|r| r.contains("YYYY-MM-DD")), "{bad}");
        }
    }

    #[test]
    fn device_and_external_ids() {
        assert_eq!(device_id(" 38400000-8CF0-11BD-B23E-10B96E40000D "), plain("38400000-8cf0-11bd-b23e-10b96e40000d"));
        assert!(device_id("00000000-0000-0000-0000-000000000000").is_err());
        assert!(device_id(HASH).is_err(), "a device id is never hashed");
        assert_eq!(external_id("  Ext-ODD-1  "), plain("Ext-ODD-1"));
        assert!(external_id("null\0byte").is_err());
        assert!(external_id("\t").is_err());
    }

    #[test]
    fn quotes_are_short_and_clean() {
        assert_eq!(quote("a\u{1b}b"), "'a\u{fffd}b'");
        assert!(quote(&"x".repeat(500)).chars().count() < 50);
    }
}
