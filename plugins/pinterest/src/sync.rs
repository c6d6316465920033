//! `add-users` / `remove-users`: one batch into or out of a customer list.
//!
//! With `existing(id)` the batch is one `PATCH .../customer_lists/{list}` with
//! `{"operation_type": "ADD"|"REMOVE", "records": "h1,h2,..."}`. With `create(spec)` (the
//! first batch after `upsert-audience` said `create-with-first-batch`) the list is created
//! with the batch as its records, then its CUSTOMER_LIST audience, and the pair is returned in
//! `batch-outcome.created`.
//!
//! The create path is written to survive retries: a retry after a lost answer or a failure
//! between the two POSTs must not create a second list. So it first looks the list up by name
//! (adding to it if found) and, for a list that already existed, looks its audience up before
//! creating one. Removing from an audience that does not exist yet removes nothing and
//! succeeds. Pinterest reports no per-user results, so only users without an identifier of the
//! list's kind are ever `rejected`.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::types::{
    AudienceSpec, AudienceTarget, BatchOutcome, Credentials, DestinationError, PluginConfig, PreparedUser,
};

use crate::audience_ref::AudienceRef;
use crate::audiences::{create_list_audience, find_customer_list, find_list_audience, to_audience};
use crate::client::{Client, Pinterest};
use crate::config::path_id;
use crate::list_type::ListType;
use crate::records::{check_batch_size, records_for};
use crate::wire::{CustomerListCreate, CustomerListUpdate, Operation};

/// Add `users` to the audience `target`.
pub fn add_users(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    target: AudienceTarget,
    users: &[PreparedUser],
) -> Result<BatchOutcome, DestinationError> {
    check_batch_size(users.len())?;
    let account = path_id(account_id, "ad account id")?;
    match target {
        AudienceTarget::Existing(id) => update(host, config, creds, account, &id, Operation::Add, users),
        AudienceTarget::Create(spec) => create(host, config, creds, account, &spec, users),
    }
}

/// Remove `users` from the audience `target`.
pub fn remove_users(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    target: AudienceTarget,
    users: &[PreparedUser],
) -> Result<BatchOutcome, DestinationError> {
    check_batch_size(users.len())?;
    let account = path_id(account_id, "ad account id")?;
    match target {
        AudienceTarget::Existing(id) => update(host, config, creds, account, &id, Operation::Remove, users),
        // No list exists yet, so nobody is in it: nothing to remove.
        AudienceTarget::Create(_) => Ok(BatchOutcome { rejected: vec![], created: None }),
    }
}

fn update(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account: &str,
    audience_id: &str,
    operation: Operation,
    users: &[PreparedUser],
) -> Result<BatchOutcome, DestinationError> {
    let target = AudienceRef::parse(audience_id)?;
    let records = records_for(users, target.list_type);
    if !records.values.is_empty() {
        let api = Pinterest::new(Client::new(host, config), &creds.access_token)?;
        let joined = records.joined();
        let body = CustomerListUpdate { operation_type: operation, records: &joined };
        api.update_customer_list(account, &target.customer_list_id, &body)?;
    }
    Ok(BatchOutcome { rejected: records.rejected, created: None })
}

fn create(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account: &str,
    spec: &AudienceSpec,
    users: &[PreparedUser],
) -> Result<BatchOutcome, DestinationError> {
    let list_type = ListType::for_sync(&spec.identifiers)?;
    let records = records_for(users, list_type);
    if records.values.is_empty() {
        // Nothing to create the list with; the host's next batch will try again.
        return Ok(BatchOutcome { rejected: records.rejected, created: None });
    }
    let api = Pinterest::new(Client::new(host, config), &creds.access_token)?;
    let joined = records.joined();
    let (list, audience) = match find_customer_list(&api, account, &spec.name)? {
        Some(list) => {
            let body = CustomerListUpdate { operation_type: Operation::Add, records: &joined };
            api.update_customer_list(account, &list.id, &body)?;
            let audience = find_list_audience(&api, account, &spec.name, &list.id)?;
            (list, audience)
        }
        None => {
            let body = CustomerListCreate { name: &spec.name, records: &joined, list_type };
            (api.create_customer_list(account, &body)?, None)
        }
    };
    let (audience, created) = match audience {
        Some(audience) => (audience, false),
        None => (create_list_audience(&api, account, spec, &list)?, true),
    };
    Ok(BatchOutcome { rejected: records.rejected, created: Some(to_audience(&list, &audience, list_type, created)) })
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::types::{Identifier, IdentifierKind};
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, assert_no_secrets_logged, config, creds, fail, ok};

    const ACCOUNT: &str = "549755885175";
    const H1: &str = "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976";
    const H2: &str = "d4181bb455a74b3bc8b37c75ac9b2c702eb6b9930bd040b861403b31ca85634d";

    fn user(key: &str, kind: IdentifierKind, value: &str) -> PreparedUser {
        PreparedUser { key: key.into(), identifiers: vec![Identifier { kind, value: value.into() }] }
    }

    fn batch() -> Vec<PreparedUser> {
        vec![
            user("a", IdentifierKind::Email, H1),
            user("b", IdentifierKind::Email, H2),
            user("c", IdentifierKind::Idfa, H1),
        ]
    }

    fn spec() -> AudienceSpec {
        AudienceSpec {
            name: "VIPs".into(),
            identifiers: vec![IdentifierKind::Email],
            description: None,
            create_if_missing: true,
        }
    }

    fn existing() -> AudienceTarget {
        AudienceTarget::Existing("6431:12:EMAIL".into())
    }

    #[test]
    fn add_patches_the_list_with_one_records_string() {
        let host = FakeHost::new(vec![ok(json!({"id": "6431", "name": "VIPs"}))]);
        let outcome = add_users(&host, &config(), &creds(), ACCOUNT, existing(), &batch());
        let Ok(outcome) = outcome else { panic!("{outcome:?}") };
        assert_eq!(outcome.created, None);
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(outcome.rejected[0].key, "c");
        assert_eq!(
            host.call(0),
            ("PATCH".into(), format!("http://sandbox.test/v5/ad_accounts/{ACCOUNT}/customer_lists/6431"))
        );
        assert_eq!(host.body(0), json!({"operation_type": "ADD", "records": format!("{H1},{H2}")}));
        assert_eq!(host.header(0, "content-type").as_deref(), Some("application/json"));
    }

    #[test]
    fn remove_patches_with_remove() {
        let host = FakeHost::new(vec![ok(json!({}))]);
        let outcome = remove_users(&host, &config(), &creds(), ACCOUNT, existing(), &batch()[..1]);
        assert!(outcome.is_ok_and(|o| o.rejected.is_empty()));
        assert_eq!(host.body(0), json!({"operation_type": "REMOVE", "records": H1}));
    }

    #[test]
    fn remove_before_creation_is_a_no_op() {
        let host = FakeHost::new(vec![]);
        let outcome = remove_users(&host, &config(), &creds(), ACCOUNT, AudienceTarget::Create(spec()), &batch());
        assert_eq!(outcome, Ok(BatchOutcome { rejected: vec![], created: None }));
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn a_batch_without_records_sends_nothing() {
        let host = FakeHost::new(vec![]);
        let users = [user("c", IdentifierKind::Idfa, H1)];
        let outcome = add_users(&host, &config(), &creds(), ACCOUNT, existing(), &users);
        assert!(outcome.is_ok_and(|o| o.rejected.len() == 1));
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn oversized_batches_and_bad_ids_are_invalid() {
        let host = FakeHost::new(vec![]);
        let many = vec![user("x", IdentifierKind::Email, H1); 1901];
        let result = add_users(&host, &config(), &creds(), ACCOUNT, existing(), &many);
        assert!(matches!(result, Err(DestinationError::InvalidRequest(m)) if m.contains("exceeds")));
        let bad = AudienceTarget::Existing("not-ours".into());
        assert!(matches!(
            add_users(&host, &config(), &creds(), ACCOUNT, bad, &batch()),
            Err(DestinationError::InvalidRequest(_))
        ));
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn create_makes_the_list_with_records_then_the_audience() {
        let host = FakeHost::new(vec![
            ok(json!({"items": [], "bookmark": null})),
            ok(json!({"id": "6431", "name": "VIPs", "status": "PROCESSING", "type": "customerlist"})),
            ok(json!({"id": "12", "name": "VIPs", "audience_type": "CUSTOMER_LIST", "status": "INITIALIZING"})),
        ]);
        let outcome = add_users(&host, &config(), &creds(), ACCOUNT, AudienceTarget::Create(spec()), &batch());
        let Ok(outcome) = outcome else { panic!("{outcome:?}") };
        let Some(created) = outcome.created else { panic!("no audience reported") };
        assert_eq!(created.id, "6431:12:EMAIL");
        assert!(created.created);
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(
            host.call(1),
            ("POST".into(), format!("http://sandbox.test/v5/ad_accounts/{ACCOUNT}/customer_lists"))
        );
        assert_eq!(host.body(1), json!({"name": "VIPs", "records": format!("{H1},{H2}"), "list_type": "EMAIL"}));
        assert_eq!(
            host.body(2),
            json!({"name": "VIPs", "audience_type": "CUSTOMER_LIST", "rule": {"customer_list_id": "6431"}})
        );
    }

    #[test]
    fn create_retried_after_a_partial_failure_reuses_the_list() {
        let host = FakeHost::new(vec![
            ok(json!({"items": [{"id": "6431", "name": "VIPs"}], "bookmark": null})),
            ok(json!({"id": "6431"})),
            ok(json!({"items": [{"id": "12", "name": "VIPs", "audience_type": "CUSTOMER_LIST",
                                 "rule": {"customer_list_id": "6431"}}]})),
        ]);
        let outcome = add_users(&host, &config(), &creds(), ACCOUNT, AudienceTarget::Create(spec()), &batch());
        let Ok(BatchOutcome { created: Some(found), .. }) = outcome else { panic!("{outcome:?}") };
        assert_eq!(found.id, "6431:12:EMAIL");
        assert!(!found.created);
        assert_eq!(host.call(1).0, "PATCH");
        assert_eq!(host.body(1), json!({"operation_type": "ADD", "records": format!("{H1},{H2}")}));
        assert_eq!(host.count(), 3);
    }

    #[test]
    fn partner_errors_are_mapped_and_secrets_stay_out_of_logs() {
        let cases = [
            (fail(429, 8, "This request exceeded a rate limit."), "rate-limited"),
            (fail(429, 8, "Request blocked: spam"), "invalid-request"),
            (fail(401, 2, "Authentication failed."), "unauthorized"),
            (fail(404, 2, "Customer list not found."), "not-found"),
            (fail(400, 1, "Invalid records"), "invalid-request"),
            (fail(503, 0, "Service unavailable"), "transient"),
            (Err(audience_plugin_sdk::http_client::HttpError::Connection("reset".into())), "transient"),
        ];
        for (response, expected) in cases {
            let host = FakeHost::new(vec![response]);
            let err = add_users(&host, &config(), &creds(), ACCOUNT, existing(), &batch()).err();
            let variant = match err {
                Some(DestinationError::RateLimited(_)) => "rate-limited",
                Some(DestinationError::InvalidRequest(_)) => "invalid-request",
                Some(DestinationError::Unauthorized(_)) => "unauthorized",
                Some(DestinationError::NotFound(_)) => "not-found",
                Some(DestinationError::Transient(_)) => "transient",
                None => "ok",
            };
            assert_eq!(variant, expected);
            assert_eq!(host.logs.borrow().len(), 1);
            assert_no_secrets_logged(&host);
        }
    }
}
