//! An audience's state from Meta's two status objects.
//!
//! Meta reports `delivery_status` (can ads reach it: 200 usable, 300 too small, 400 and up
//! unusable) and `operation_status` (how processing went: 0 n/a, 100 expiring, 200 normal, 400
//! warning, 410 nothing uploaded, 411 low match rate, 412 many invalid entries, 414 replace in
//! progress, 415 replace failed, 441 still populating, 450 stale, 470 creator account inactive,
//! 471 flagged for integrity, 500 error). The first rule that applies decides:
//!
//! | # | operation_status        | delivery_status | state        |
//! |---|-------------------------|-----------------|--------------|
//! | 1 | 470, 471, 500           | any             | `unusable`   |
//! | 2 | any                     | 400 and up      | `unusable`   |
//! | 3 | any                     | 200             | `ready`      |
//! | 4 | 441, 414                | other or none   | `populating` |
//! | 5 | any                     | 300             | `too-small`  |
//! | 6 | 410                     | none            | `too-small`  |
//! | 7 | 100, 200, 400, 411, 412, 450 | none       | `ready`      |
//! | 8 | anything else           |                 | `unknown`    |
//!
//! Rule 3 before rule 4: an audience that ads can reach stays `ready` while a new upload is
//! matched. `status-detail` is Meta's description of each status (the plugin's words from the
//! list above when Meta gives none), delivery first, with the fields Meta flagged.

use audience_plugin_sdk::types::AudienceState;

use crate::wire::Status;

/// The plugin's words for an operation status code Meta gave no description for.
fn operation_words(code: i64) -> Option<&'static str> {
    Some(match code {
        100 => "expiring: unused for almost two years",
        200 => "normal",
        400 => "warning",
        410 => "no users uploaded yet",
        411 => "low match rate",
        412 => "many invalid entries",
        414 => "replace in progress",
        415 => "replace failed",
        441 => "still populating",
        450 => "stale",
        470 => "the account that created it is inactive",
        471 => "flagged for integrity policy",
        500 => "error",
        _ => return None,
    })
}

fn delivery_words(code: i64) -> &'static str {
    match code {
        200 => "ready for delivery",
        300 => "too small to deliver ads",
        _ => "not usable for delivery",
    }
}

/// The state for these statuses (see the module documentation).
pub fn state(delivery: Option<&Status>, operation: Option<&Status>) -> AudienceState {
    let d = delivery.and_then(|s| s.code);
    let o = operation.and_then(|s| s.code);
    match (o, d) {
        (Some(470 | 471 | 500), _) => AudienceState::Unusable,
        (_, Some(code)) if code >= 400 => AudienceState::Unusable,
        (_, Some(200)) => AudienceState::Ready,
        (Some(441 | 414), _) => AudienceState::Populating,
        (_, Some(300)) => AudienceState::TooSmall,
        (Some(410), None) => AudienceState::TooSmall,
        (Some(100 | 200 | 400 | 411 | 412 | 450), None) => AudienceState::Ready,
        _ => AudienceState::Unknown,
    }
}

fn described(status: Option<&Status>, words: impl Fn(i64) -> Option<&'static str>, label: &str) -> Option<String> {
    let status = status?;
    let text = status.description.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(str::to_string);
    let text = text.or_else(|| status.code.and_then(&words).map(str::to_string))?;
    Some(match status.code {
        Some(code) => format!("{label} {code}: {text}"),
        None => format!("{label}: {text}"),
    })
}

/// `status-detail`: Meta's words for both statuses and the flagged fields; none when Meta said
/// nothing.
pub fn detail(
    delivery: Option<&Status>,
    operation: Option<&Status>,
    flagged: Option<&serde_json::Value>,
) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    parts.extend(described(delivery, |c| Some(delivery_words(c)), "delivery"));
    parts.extend(described(operation, operation_words, "operation"));
    let fields: Vec<String> = match flagged {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string).or_else(|| v.as_object().map(|_| v.to_string())))
            .collect(),
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() => vec![s.clone()],
        Some(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => vec![],
    };
    if !fields.is_empty() {
        parts.push(format!("fields violating the integrity policy: {}", fields.join(", ")));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: i64) -> Status {
        Status { code: Some(code), description: None }
    }

    #[test]
    fn the_state_table() {
        use AudienceState::*;
        let table: &[(Option<i64>, Option<i64>, AudienceState)] = &[
            (Some(471), Some(200), Unusable),
            (Some(470), None, Unusable),
            (Some(500), Some(300), Unusable),
            (Some(200), Some(400), Unusable),
            (Some(200), Some(200), Ready),
            (Some(441), Some(200), Ready),
            (Some(411), Some(200), Ready),
            (Some(441), Some(300), Populating),
            (Some(414), None, Populating),
            (Some(200), Some(300), TooSmall),
            (Some(410), Some(300), TooSmall),
            (Some(410), None, TooSmall),
            (Some(200), None, Ready),
            (Some(450), None, Ready),
            (Some(0), None, Unknown),
            (Some(415), None, Unknown),
            (None, None, Unknown),
        ];
        for (op, delivery, expected) in table {
            let (d, o) = (delivery.map(status), op.map(status));
            assert_eq!(state(d.as_ref(), o.as_ref()), *expected, "operation {op:?}, delivery {delivery:?}");
        }
    }

    #[test]
    fn details_prefer_meta_s_words() {
        let delivery = Status { code: Some(300), description: Some("This audience is too small.".into()) };
        let operation = status(441);
        assert_eq!(
            detail(Some(&delivery), Some(&operation), None).as_deref(),
            Some("delivery 300: This audience is too small.; operation 441: still populating")
        );
        let flagged = serde_json::json!(["name", "description"]);
        assert_eq!(
            detail(None, Some(&status(471)), Some(&flagged)).as_deref(),
            Some(
                "operation 471: flagged for integrity policy; fields violating the integrity policy: name, description"
            )
        );
        assert_eq!(detail(None, None, None), None);
        assert_eq!(detail(None, Some(&status(12345)), None), None);
    }
}
