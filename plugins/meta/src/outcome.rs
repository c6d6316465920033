//! A `/users` answer as a `batch-outcome`.
//!
//! Meta reports no per-row status: only `num_invalid_entries` (an approximate count of rows it
//! dropped as mis-hashed or malformed) and `invalid_entry_samples` (up to 100 examples; a map
//! of string to string in the reference, a list of strings in the guide, so both are read, as
//! are nested lists, which are taken as whole rows). Each sample is compared, ignoring ASCII
//! case and surrounding whitespace, with what was sent:
//!
//! - a sample equal to a user's value of a key that points at one person (`EXTERN_ID`,
//!   `EMAIL`, `PHONE`, `MADID`), or to the user's whole row (values joined by `,`), names that
//!   user: the user is `rejected`, with the sample's counterpart in a map as the reason when it
//!   is not itself a sent value;
//! - samples equal to a trait many users share (a gender, a country, a city...) name nobody:
//!   blaming every user holding it would reject the innocent;
//! - everything else, and the rows the count says were dropped beyond the users named, is one
//!   `unattributed` entry: `count` = `num_invalid_entries` (at least the number of samples)
//!   minus the users named, with the unmatched samples (at most 10, shortened).

use audience_plugin_sdk::build::MAX_UNATTRIBUTED_SAMPLES;
use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::{BatchOutcome, RejectedUser, UnattributedRejection};
use serde_json::Value;

use crate::kinds::Key;
use crate::payload::{Row, Rows};
use crate::wire::UsersResponse;

/// How much of a sample is kept.
const SAMPLE_CHARS: usize = 100;

/// One example Meta gave: a value, and what the map paired it with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The value (for a row: the row's values joined by `,`).
    pub value: String,
    /// The other side of a map entry, when the sample came from a map.
    pub note: Option<String>,
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) => Some(items.iter().filter_map(text).collect::<Vec<_>>().join(",")),
        _ => None,
    }
}

/// The samples of `invalid_entry_samples`, whichever shape it has.
pub fn samples(raw: Option<&Value>) -> Vec<Sample> {
    match raw {
        Some(Value::Array(items)) => items.iter().filter_map(text).map(|value| Sample { value, note: None }).collect(),
        Some(Value::Object(map)) => map
            .iter()
            .flat_map(|(k, v)| {
                let other = text(v);
                let mut both = vec![Sample { value: k.clone(), note: other.clone() }];
                if let Some(v) = other {
                    both.push(Sample { value: v, note: Some(k.clone()) });
                }
                both
            })
            .collect(),
        Some(Value::String(s)) => vec![Sample { value: s.clone(), note: None }],
        _ => vec![],
    }
}

fn same(a: &str, b: &str) -> bool {
    !a.trim().is_empty() && a.trim().eq_ignore_ascii_case(b.trim())
}

/// [`same`] of the row's values joined by `,` and `sample`, without building the joined text
/// (samples are compared with every row: joining would allocate once per row and sample).
fn same_row(values: &[&str], sample: &str) -> bool {
    let sample = sample.trim();
    if sample.is_empty() {
        return false;
    }
    let mut joined = values
        .iter()
        .enumerate()
        .flat_map(|(i, v)| (i > 0).then_some(',').into_iter().chain(v.chars()))
        .skip_while(|c| c.is_whitespace());
    for expected in sample.chars() {
        match joined.next() {
            Some(c) if c.eq_ignore_ascii_case(&expected) => {}
            _ => return false,
        }
    }
    joined.all(char::is_whitespace)
}

/// The outcome of a `/users` call that sent `rows`; `rejected` are the users not sent.
pub fn batch_outcome(response: &UsersResponse, rows: &Rows<'_>, rejected: Vec<RejectedUser>) -> BatchOutcome {
    batch_outcome_of(response, &rows.schema, &rows.rows, rejected)
}

/// [`batch_outcome`] of a request that sent `sent`, rows of `schema`.
pub fn batch_outcome_of(
    response: &UsersResponse,
    schema: &[Key],
    sent: &[Row<'_>],
    mut rejected: Vec<RejectedUser>,
) -> BatchOutcome {
    let samples = samples(response.invalid_entry_samples.as_ref());
    let distinctive: Vec<usize> = schema.iter().enumerate().filter(|(_, k)| k.distinctive()).map(|(i, _)| i).collect();
    let mut named = 0usize;
    let mut unmatched: Vec<String> = Vec::new();
    // A map entry is read twice (key, then value): the pair counts once.
    let mut counted_pairs: Vec<(String, String)> = Vec::new();
    for sample in &samples {
        let holders: Vec<&Row<'_>> = sent
            .iter()
            .filter(|row| {
                distinctive.iter().any(|&i| same(row.values[i], &sample.value)) || same_row(&row.values, &sample.value)
            })
            .collect();
        let pair = sample.note.clone().map(|note| {
            let (a, b) = (sample.value.clone(), note);
            if a <= b { (a, b) } else { (b, a) }
        });
        if holders.is_empty() {
            let other_side_matched = sample.note.as_deref().is_some_and(|note| {
                sent.iter()
                    .any(|row| distinctive.iter().any(|&i| same(row.values[i], note)) || same_row(&row.values, note))
            });
            if !other_side_matched && pair.as_ref().is_none_or(|p| !counted_pairs.contains(p)) {
                unmatched.push(excerpt(&sample.value, SAMPLE_CHARS));
                if let Some(p) = pair {
                    counted_pairs.push(p);
                }
            }
            continue;
        }
        if let Some(p) = pair {
            counted_pairs.push(p);
        }
        let reason = match sample.note.as_deref().filter(|n| !n.trim().is_empty()) {
            Some(note) => format!("Meta counted the user's row as invalid: {}", excerpt(note, SAMPLE_CHARS)),
            None => "Meta counted the user's row as invalid (mis-hashed or malformed) and dropped it".to_string(),
        };
        for row in holders {
            if !rejected.iter().any(|r| r.key == row.key) {
                rejected.push(RejectedUser { key: row.key.to_string(), reason: reason.clone() });
                named += 1;
            }
        }
    }
    let reported = usize::try_from(response.num_invalid_entries.unwrap_or(0).max(0)).unwrap_or(usize::MAX);
    let total = reported.max(named + unmatched.len());
    let remaining = total.saturating_sub(named);
    let mut unattributed = Vec::new();
    if remaining > 0 {
        unmatched.truncate(MAX_UNATTRIBUTED_SAMPLES);
        unattributed.push(UnattributedRejection {
            count: u32::try_from(remaining).unwrap_or(u32::MAX),
            reason: format!(
                "Meta dropped {remaining} row(s) as invalid (mis-hashed or malformed) without saying whose; \
                 num_invalid_entries was {reported}"
            ),
            samples: unmatched,
        });
    }
    BatchOutcome { rejected, unattributed, created: None }
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::types::{Identifier, PreparedUser};
    use serde_json::json;

    use super::*;
    use crate::payload::rows;

    const H1: &str = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79";
    const H2: &str = "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e";
    const F: &str = "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111";

    fn user(key: &str, ids: &[(&str, &str)]) -> PreparedUser {
        PreparedUser {
            key: key.into(),
            identifiers: ids.iter().map(|(k, v)| Identifier { kind: (*k).into(), value: (*v).into() }).collect(),
            consent: None,
        }
    }

    fn users() -> Vec<PreparedUser> {
        vec![
            user("a", &[("email", H1), ("gender", F)]),
            user("b", &[("phone", H2), ("gender", F)]),
            user("c", &[("mobile-ad-id", "38400000-8cf0-11bd-b23e-10b96e40000d")]),
        ]
    }

    #[test]
    fn rows_match_as_if_joined() {
        for (values, sample, expected) in [
            (&["a", "b"][..], "a,b", true),
            (&["A", "b "][..], "  a,B", true),
            (&[" a", "b"][..], "a,b ", true),
            (&["a", "b"][..], "a,b,", false),
            (&["a", "b"][..], "a,", false),
            (&["a", ""][..], "a,", true),
            (&["", ""][..], ",", true),
            (&["", ""][..], " ", false),
            (&["é"][..], "É", false),
        ] {
            assert_eq!(same_row(values, sample), expected, "{values:?} {sample:?}");
            assert_eq!(same(&values.join(","), sample), expected, "{values:?} {sample:?}");
        }
    }

    fn response(invalid: i64, samples: Value) -> UsersResponse {
        UsersResponse {
            num_invalid_entries: Some(invalid),
            invalid_entry_samples: Some(samples),
            ..UsersResponse::default()
        }
    }

    #[test]
    fn a_clean_answer() {
        let outcome = batch_outcome(&response(0, json!([])), &rows(&users()), vec![]);
        assert_eq!(outcome, BatchOutcome { rejected: vec![], unattributed: vec![], created: None });
    }

    #[test]
    fn list_samples_are_matched_to_users() {
        let outcome = batch_outcome(
            &response(3, json!([H1.to_uppercase(), "38400000-8CF0-11BD-B23E-10B96E40000D ", "zzz"])),
            &rows(&users()),
            vec![],
        );
        let keys: Vec<&str> = outcome.rejected.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(keys, vec!["a", "c"]);
        assert_eq!(outcome.unattributed.len(), 1);
        assert_eq!(outcome.unattributed[0].count, 1);
        assert_eq!(outcome.unattributed[0].samples, vec!["zzz".to_string()]);
    }

    #[test]
    fn map_samples_use_the_other_side_as_reason() {
        let outcome = batch_outcome(&response(1, json!({ H2: "Invalid hash length" })), &rows(&users()), vec![]);
        assert_eq!(
            outcome.rejected,
            vec![RejectedUser {
                key: "b".into(),
                reason: "Meta counted the user's row as invalid: Invalid hash length".into()
            }]
        );
        assert!(outcome.unattributed.is_empty());
        let flipped = batch_outcome(&response(1, json!({ "row 2": H2 })), &rows(&users()), vec![]);
        assert_eq!(flipped.rejected[0].key, "b");
        assert!(flipped.unattributed.is_empty(), "{flipped:?}");
        let unknown = batch_outcome(&response(1, json!({ "row 9": "bad" })), &rows(&users()), vec![]);
        assert_eq!(unknown.unattributed[0].count, 1, "{unknown:?}");
    }

    #[test]
    fn shared_traits_and_counts_stay_unattributed() {
        let outcome = batch_outcome(&response(2, json!([F])), &rows(&users()), vec![]);
        assert!(outcome.rejected.is_empty(), "a gender hash names nobody");
        assert_eq!(outcome.unattributed[0].count, 2);
        assert_eq!(outcome.unattributed[0].samples, vec![F.to_string()]);
        let counted = batch_outcome(
            &UsersResponse { num_invalid_entries: Some(5), ..UsersResponse::default() },
            &rows(&users()),
            vec![],
        );
        assert_eq!(counted.unattributed[0].count, 5);
        assert!(counted.unattributed[0].samples.is_empty());
    }

    #[test]
    fn whole_rows_match_and_samples_are_capped() {
        let sent = users();
        let row = rows(&sent).rows[1].values.clone();
        let outcome = batch_outcome(&response(1, json!([row])), &rows(&users()), vec![]);
        assert_eq!(outcome.rejected.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), vec!["b"], "{outcome:?}");
        let many: Vec<String> = (0..30).map(|i| format!("bad{i}")).collect();
        let outcome = batch_outcome(&response(30, json!(many)), &rows(&users()), vec![]);
        assert_eq!(outcome.unattributed[0].count, 30);
        assert_eq!(outcome.unattributed[0].samples.len(), 10);
    }
}
