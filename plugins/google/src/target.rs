//! `check-target`: every reason a sync's target cannot work, before it runs. Creates nothing.
//!
//! | part | checked |
//! |---|---|
//! | `identifiers` | one of the sync's fields is one Google matches on; the fields are of one key type (a list holds one: the others would never be sent); `first-name`, `last-name`, `country`, `postal-code` are selected all four or none (Google takes only complete addresses) |
//! | `credentials` | the stored scopes include the Data Manager scope (unknown scopes are not a problem) |
//! | `account` | the account id is well-formed, and the account's user lists can be read (the name lookup below): a refusal that is about the account (no access, terms, API not enabled) is a problem |
//! | `audience` | with `spec.id`: the list exists; without: the list named so exists, or may be created (`create-if-missing`, and for a mobile-id list the app setting it needs); a list found must take the sync's key type and be usable (open, not read-only, share not revoked) |
//!
//! Errors that say nothing about the target are returned as errors, not problems: an invalid
//! or expired token (the host renews it), throttling and transient failures.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::types::{
    AudienceSpec, AudienceState, Credentials, DestinationError, PluginConfig, TargetPart, TargetProblem,
};

use crate::audiences::{id_of, ingested_info, mismatch, resolve, spec_key_type, state_of};
use crate::client::{Google, message_of};
use crate::config::AccountRef;
use crate::kinds::{ADDRESS, KeyType, SUPPORTED, key_types};
use crate::manifest::DATAMANAGER_SCOPE;

fn problem(part: TargetPart, message: impl Into<String>) -> TargetProblem {
    TargetProblem { part, message: message.into() }
}

/// Problems with the sync's fields alone.
pub fn identifier_problems(spec: &AudienceSpec) -> Vec<TargetProblem> {
    let mut problems = Vec::new();
    let types = key_types(&spec.identifiers);
    let Some(first) = types.first() else {
        let asked = if spec.identifiers.is_empty() { "none".to_string() } else { spec.identifiers.join(", ") };
        problems.push(problem(
            TargetPart::Identifiers,
            format!("none of the sync's match fields ({asked}) is one Google matches on ({})", SUPPORTED.join(", ")),
        ));
        return problems;
    };
    if types.len() > 1 {
        let others: Vec<&str> = spec
            .identifiers
            .iter()
            .map(String::as_str)
            .filter(|f| KeyType::of_kind(f).is_some_and(|t| t != *first))
            .collect();
        problems.push(problem(
            TargetPart::Identifiers,
            format!(
                "a Google list holds one kind of key, and the sync's first match field makes it {}; {} would never be \
                 sent: remove them, or make a separate sync for them",
                first.words(),
                others.join(", ")
            ),
        ));
    }
    let address: Vec<&str> = ADDRESS.iter().copied().filter(|k| spec.identifiers.iter().any(|f| f == k)).collect();
    if *first == KeyType::ContactId && !address.is_empty() && address.len() < ADDRESS.len() {
        let missing: Vec<&str> = ADDRESS.iter().copied().filter(|k| !address.contains(k)).collect();
        problems.push(problem(
            TargetPart::Identifiers,
            format!(
                "Google takes an address only whole: {} are sent only together with {}; add them or remove the \
                 others",
                address.join(", "),
                missing.join(", ")
            ),
        ));
    }
    problems
}

/// The problem a failed lookup stands for, or the error when it says nothing about the target.
fn classify(error: DestinationError, part: TargetPart) -> Result<TargetProblem, DestinationError> {
    match error {
        DestinationError::NotFound(m) | DestinationError::InvalidRequest(m) | DestinationError::ActionRequired(m) => {
            Ok(problem(part, m))
        }
        DestinationError::Unauthorized(m) if m.contains("lacks a Google permission") => {
            Ok(problem(TargetPart::Credentials, m))
        }
        other => Err(other),
    }
}

/// Every problem with the target `spec` in `account_id` (empty: it can run).
pub fn check_target(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    spec: &AudienceSpec,
) -> Result<Vec<TargetProblem>, DestinationError> {
    let mut problems = identifier_problems(spec);
    if !creds.scopes.is_empty() && !creds.scopes.iter().any(|s| s == DATAMANAGER_SCOPE) {
        problems.push(problem(
            TargetPart::Credentials,
            format!("the connection was granted without the scope {DATAMANAGER_SCOPE}: re-authorize it and allow access to the Data Manager API"),
        ));
    }
    let account = match AccountRef::parse(account_id) {
        Ok(account) => account,
        Err(e) => {
            problems.push(problem(TargetPart::Account, message_of(&e)));
            return Ok(problems);
        }
    };
    let google = Google::new(host, config, creds)?;
    let by_id = spec.id.as_deref().is_some_and(|i| !i.trim().is_empty());
    let found = match resolve(&google, &account, spec) {
        Ok(found) => found,
        Err(e) => {
            let part = if by_id && matches!(e, DestinationError::NotFound(_)) {
                TargetPart::Audience
            } else {
                TargetPart::Account
            };
            problems.push(classify(e, part)?);
            return Ok(problems);
        }
    };
    let key_type = spec_key_type(spec).ok();
    match found {
        Some(list) => {
            if let Some(why) = key_type.and_then(|t| mismatch(&list, t, spec)) {
                problems.push(problem(TargetPart::Identifiers, why));
            }
            if let (AudienceState::Unusable, detail) = state_of(&list) {
                problems.push(problem(
                    TargetPart::Audience,
                    format!(
                        "the Google list '{}' ({}) cannot take members: {}; pick another list",
                        list.display_name.as_deref().unwrap_or_default(),
                        id_of(&list).unwrap_or_default(),
                        detail.unwrap_or_default()
                    ),
                ));
            }
        }
        None if by_id => problems.push(problem(
            TargetPart::Audience,
            format!("the Google list picked for the sync is not in {}", account.describe()),
        )),
        None if !spec.create_if_missing => problems.push(problem(
            TargetPart::Audience,
            format!(
                "no Customer Match list named '{}' in {}, and the sync may not create one: create it, pick another, or \
                 allow creating it",
                spec.name.trim(),
                account.describe()
            ),
        )),
        None => {
            if let Some(Err(why)) = key_type.map(|t| ingested_info(config, t, spec)) {
                problems.push(problem(TargetPart::Audience, why));
            }
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::kinds;
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, config, creds, fail, ok};

    fn spec(name: &str, fields: &[&str], create: bool) -> AudienceSpec {
        AudienceSpec {
            id: None,
            name: name.into(),
            identifiers: kinds::list(fields),
            description: None,
            create_if_missing: create,
        }
    }

    fn parts(problems: &[TargetProblem]) -> Vec<TargetPart> {
        problems.iter().map(|p| p.part).collect()
    }

    #[test]
    fn field_problems() {
        assert!(identifier_problems(&spec("x", &["email", "phone"], true)).is_empty());
        assert!(
            identifier_problems(&spec("x", &["email", "first-name", "last-name", "country", "postal-code"], true))
                .is_empty()
        );
        let mixed = identifier_problems(&spec("x", &["email", "idfa"], true));
        assert!(mixed[0].message.contains("idfa would never be sent"), "{mixed:?}");
        let partial = identifier_problems(&spec("x", &["email", "first-name"], true));
        assert!(partial[0].message.contains("last-name, country, postal-code"), "{partial:?}");
        assert_eq!(parts(&identifier_problems(&spec("x", &["gender"], true))), vec![TargetPart::Identifiers]);
    }

    #[test]
    fn a_missing_list_and_account_problems() {
        let (config, creds) = (config(), creds());
        let host = FakeHost::new(vec![ok(json!({}))]);
        let found = check_target(&host, &config, &creds, "1234567890", &spec("Nope", &["email"], false)).unwrap();
        assert_eq!(parts(&found), vec![TargetPart::Audience]);
        let host = FakeHost::new(vec![ok(json!({}))]);
        assert!(
            check_target(&host, &config, &creds, "1234567890", &spec("Nope", &["email"], true)).unwrap().is_empty()
        );
        assert_eq!(host.count(), 1, "nothing created");
        let host = FakeHost::new(vec![fail(403, "PERMISSION_DENIED", Some("TERMS_AND_CONDITIONS_NOT_SIGNED"), vec![])]);
        let terms = check_target(&host, &config, &creds, "1234567890", &spec("VIP", &["email"], true)).unwrap();
        assert_eq!(parts(&terms), vec![TargetPart::Account]);
        let host = FakeHost::new(vec![fail(503, "UNAVAILABLE", None, vec![])]);
        assert!(check_target(&host, &config, &creds, "1", &spec("VIP", &["email"], true)).is_err());
        let bad =
            check_target(&FakeHost::new(vec![]), &config, &creds, "acct", &spec("VIP", &["email"], true)).unwrap();
        assert_eq!(parts(&bad), vec![TargetPart::Account]);
    }

    #[test]
    fn a_found_list_of_another_kind_or_closed() {
        let (config, mut creds) = (config(), creds());
        creds.scopes = vec!["https://www.googleapis.com/auth/adwords".into()];
        let host = FakeHost::new(vec![ok(json!({"userLists": [{"id": "5", "displayName": "VIP",
            "membershipStatus": "CLOSED", "ingestedUserListInfo": {"uploadKeyTypes": ["USER_ID"]}}]}))]);
        let found = check_target(&host, &config, &creds, "1", &spec("VIP", &["email"], true)).unwrap();
        assert_eq!(parts(&found), vec![TargetPart::Credentials, TargetPart::Identifiers, TargetPart::Audience]);
        let mut by_id = spec("VIP", &["email"], true);
        by_id.id = Some("77".into());
        let host = FakeHost::new(vec![fail(404, "NOT_FOUND", None, vec![])]);
        let gone = check_target(&host, &config, &creds, "1", &by_id).unwrap();
        assert_eq!(parts(&gone)[1..], [TargetPart::Audience]);
    }
}
