//! US state names and codes: Meta wants the two-letter ANSI code for a US state. (The country
//! and calling-code table is the SDK's, `audience_plugin_sdk::countries`.)

/// US states, the District of Columbia and the inhabited territories: the name with letters
/// only, lowercase (as normalisation leaves it), and the two-letter code.
#[rustfmt::skip]
pub const US_STATES: [(&str, &str); 56] = [
    ("alabama", "al"), ("alaska", "ak"), ("americansamoa", "as"), ("arizona", "az"), ("arkansas", "ar"),
    ("california", "ca"), ("colorado", "co"), ("connecticut", "ct"), ("delaware", "de"),
    ("districtofcolumbia", "dc"), ("florida", "fl"), ("georgia", "ga"), ("guam", "gu"), ("hawaii", "hi"),
    ("idaho", "id"), ("illinois", "il"), ("indiana", "in"), ("iowa", "ia"), ("kansas", "ks"),
    ("kentucky", "ky"), ("louisiana", "la"), ("maine", "me"), ("maryland", "md"), ("massachusetts", "ma"),
    ("michigan", "mi"), ("minnesota", "mn"), ("mississippi", "ms"), ("missouri", "mo"), ("montana", "mt"),
    ("nebraska", "ne"), ("nevada", "nv"), ("newhampshire", "nh"), ("newjersey", "nj"), ("newmexico", "nm"),
    ("newyork", "ny"), ("northcarolina", "nc"), ("northdakota", "nd"), ("northernmarianaislands", "mp"),
    ("ohio", "oh"), ("oklahoma", "ok"), ("oregon", "or"), ("pennsylvania", "pa"), ("puertorico", "pr"),
    ("rhodeisland", "ri"), ("southcarolina", "sc"), ("southdakota", "sd"), ("tennessee", "tn"),
    ("texas", "tx"), ("usvirginislands", "vi"), ("utah", "ut"), ("vermont", "vt"), ("virginia", "va"),
    ("washington", "wa"), ("westvirginia", "wv"), ("wisconsin", "wi"), ("wyoming", "wy"),
];

/// The two-letter code of a US state given by name (letters only, lowercase) or by code.
pub fn us_state(normalised: &str) -> Option<&'static str> {
    US_STATES.iter().find(|(name, code)| *name == normalised || *code == normalised).map(|(_, code)| *code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_unique_and_found_by_name_or_code() {
        let mut codes: Vec<&str> = US_STATES.iter().map(|(_, c)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), US_STATES.len());
        assert_eq!(us_state("newyork"), Some("ny"));
        assert_eq!(us_state("ca"), Some("ca"));
        assert_eq!(us_state("bavaria"), None);
    }
}
