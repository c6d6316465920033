//! `add-users` / `remove-users`: one batch into or out of a customer list.
//!
//! With `existing(id)` the batch is one `PATCH .../customer_lists/{list}` with
//! `{"operation_type": "ADD"|"REMOVE", "records": "h1,h2,..."}`. With `create(spec)` (the
//! first batch after `upsert-audience` said `create-with-first-batch`) the list is created
//! with the batch as its records, then its CUSTOMER_LIST audience, and the pair is returned in
//! `batch-outcome.created`.
//!
//! Pinterest applies customer-list updates synchronously, so every answer is
//! `write-outcome.done`; Pinterest reports no per-user results and drops nothing it counts, so
//! `unattributed` is always empty and only users without an identifier of the list's kind are
//! ever `rejected`. The list's kind comes from the audience id, or, for an untyped id (an
//! audience picked with `search-audiences`), from the batch itself (see [`crate::records`]).
//! Pinterest takes no idempotency key, so `batch.id` and `batch.attempt` are not sent; a
//! retried ADD or REMOVE of the same records is harmless (set semantics).
//!
//! The create path is written to survive retries: a retry after a lost answer or a failure
//! between the two POSTs must not create a second list. So it first looks the list up by name
//! (adding to it if found) and, for a list that already existed, looks its audience up before
//! creating one. Removing from an audience that does not exist yet removes nothing and
//! succeeds.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::build::{batch_outcome, done};
use audience_plugin_sdk::types::{
    AudienceSpec, AudienceTarget, Batch, BatchOutcome, Credentials, DestinationError, PluginConfig, PreparedUser,
    WriteOutcome,
};

use crate::audience_ref::AudienceRef;
use crate::audiences::{create_list_audience, find_customer_list, find_list_audience, pair_audience};
use crate::client::{Client, Pinterest};
use crate::config::path_id;
use crate::list_type::ListType;
use crate::records::{batch_list_type, check_batch_size, records_for};
use crate::wire::{CustomerListCreate, CustomerListUpdate, Operation};

/// Add the users of `batch` to the audience `target`.
pub fn add_users(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    target: AudienceTarget,
    batch: &Batch,
) -> Result<WriteOutcome, DestinationError> {
    check_batch_size(batch.users.len())?;
    let account = path_id(account_id, "ad account id")?;
    let outcome = match target {
        AudienceTarget::Existing(id) => update(host, config, creds, account, &id, Operation::Add, &batch.users)?,
        AudienceTarget::Create(spec) => create(host, config, creds, account, &spec, &batch.users)?,
    };
    Ok(WriteOutcome::Done(outcome))
}

/// Remove the users of `batch` from the audience `target`.
pub fn remove_users(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    target: AudienceTarget,
    batch: &Batch,
) -> Result<WriteOutcome, DestinationError> {
    check_batch_size(batch.users.len())?;
    let account = path_id(account_id, "ad account id")?;
    match target {
        AudienceTarget::Existing(id) => {
            update(host, config, creds, account, &id, Operation::Remove, &batch.users).map(WriteOutcome::Done)
        }
        // No list exists yet, so nobody is in it: nothing to remove.
        AudienceTarget::Create(_) => Ok(done(vec![])),
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
    let Some(list_type) = target.list_type.or_else(|| batch_list_type(users)) else {
        // An untyped id and no user with a supported identifier: nothing can be sent.
        return Ok(batch_outcome(records_for(users, ListType::Email).rejected));
    };
    let records = records_for(users, list_type);
    if !records.values.is_empty() {
        let api = Pinterest::new(Client::new(host, config), &creds.access_token)?;
        let joined = records.joined();
        let body = CustomerListUpdate { operation_type: operation, records: &joined };
        api.update_customer_list(account, &target.customer_list_id, &body)?;
    }
    Ok(batch_outcome(records.rejected))
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
        return Ok(batch_outcome(records.rejected));
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
    let mut outcome = batch_outcome(records.rejected);
    outcome.created = Some(pair_audience(&list, &audience, list_type, created));
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::kinds::{EMAIL, IDFA, MOBILE_AD_ID};
    use audience_plugin_sdk::types::Identifier;
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, assert_no_secrets_logged, config, creds, fail, ok};

    const ACCOUNT: &str = "549755885175";
    const H1: &str = "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976";
    const H2: &str = "d4181bb455a74b3bc8b37c75ac9b2c702eb6b9930bd040b861403b31ca85634d";

    fn user(key: &str, kind: &str, value: &str) -> PreparedUser {
        PreparedUser {
            key: key.into(),
            identifiers: vec![Identifier { kind: kind.into(), value: value.into() }],
            consent: None,
        }
    }

    fn batch_of(users: Vec<PreparedUser>) -> Batch {
        Batch { id: "batch-1".into(), attempt: 1, users }
    }

    fn batch() -> Batch {
        batch_of(vec![user("a", EMAIL, H1), user("b", EMAIL, H2), user("c", IDFA, H1)])
    }

    fn spec() -> AudienceSpec {
        AudienceSpec {
            id: None,
            name: "VIPs".into(),
            identifiers: vec![EMAIL.into()],
            description: None,
            create_if_missing: true,
        }
    }

    fn existing() -> AudienceTarget {
        AudienceTarget::Existing("6431:12:EMAIL".into())
    }

    fn finished(outcome: Result<WriteOutcome, DestinationError>) -> BatchOutcome {
        match outcome {
            Ok(WriteOutcome::Done(o)) => {
                assert!(o.unattributed.is_empty());
                o
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn add_patches_the_list_with_one_records_string() {
        let host = FakeHost::new(vec![ok(json!({"id": "6431", "name": "VIPs"}))]);
        let outcome = finished(add_users(&host, &config(), &creds(), ACCOUNT, existing(), &batch()));
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
        let one = batch_of(vec![user("a", EMAIL, H1)]);
        let outcome = finished(remove_users(&host, &config(), &creds(), ACCOUNT, existing(), &one));
        assert!(outcome.rejected.is_empty());
        assert_eq!(host.body(0), json!({"operation_type": "REMOVE", "records": H1}));
    }

    #[test]
    fn an_untyped_id_writes_the_kind_the_batch_carries() {
        let host = FakeHost::new(vec![ok(json!({}))]);
        let users = batch_of(vec![user("a", MOBILE_AD_ID, H1), user("b", MOBILE_AD_ID, H2), user("c", EMAIL, H1)]);
        let picked = AudienceTarget::Existing("6431:12".into());
        let outcome = finished(add_users(&host, &config(), &creds(), ACCOUNT, picked, &users));
        assert_eq!(host.body(0), json!({"operation_type": "ADD", "records": format!("{H1},{H2}")}));
        assert_eq!(outcome.rejected.len(), 1);
        assert!(outcome.rejected[0].reason.contains("MAID customer list"), "{}", outcome.rejected[0].reason);
        let host = FakeHost::new(vec![]);
        let nothing = batch_of(vec![user("a", "phone", H1)]);
        let picked = AudienceTarget::Existing("6431:12".into());
        let outcome = finished(add_users(&host, &config(), &creds(), ACCOUNT, picked, &nothing));
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn remove_before_creation_is_a_no_op() {
        let host = FakeHost::new(vec![]);
        let outcome = remove_users(&host, &config(), &creds(), ACCOUNT, AudienceTarget::Create(spec()), &batch());
        assert_eq!(finished(outcome), BatchOutcome { rejected: vec![], unattributed: vec![], created: None });
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn a_batch_without_records_sends_nothing() {
        let host = FakeHost::new(vec![]);
        let users = batch_of(vec![user("c", IDFA, H1)]);
        let outcome = finished(add_users(&host, &config(), &creds(), ACCOUNT, existing(), &users));
        assert_eq!(outcome.rejected.len(), 1);
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn oversized_batches_and_bad_ids_are_invalid() {
        let host = FakeHost::new(vec![]);
        let many = batch_of(vec![user("x", EMAIL, H1); 1901]);
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
        let outcome =
            finished(add_users(&host, &config(), &creds(), ACCOUNT, AudienceTarget::Create(spec()), &batch()));
        let Some(created) = outcome.created else { panic!("no audience reported") };
        assert_eq!(created.id, "6431:12:EMAIL");
        assert!(created.created);
        assert_eq!(created.state, audience_plugin_sdk::types::AudienceState::Populating);
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
    fn create_follows_the_order_of_the_match_fields() {
        let host = FakeHost::new(vec![
            ok(json!({"items": [], "bookmark": null})),
            ok(json!({"id": "6431", "name": "VIPs"})),
            ok(json!({"id": "12", "name": "VIPs", "audience_type": "CUSTOMER_LIST"})),
        ]);
        let mut idfa_first = spec();
        idfa_first.identifiers = vec!["phone".into(), IDFA.into(), EMAIL.into()];
        let outcome =
            finished(add_users(&host, &config(), &creds(), ACCOUNT, AudienceTarget::Create(idfa_first), &batch()));
        assert_eq!(host.body(1), json!({"name": "VIPs", "records": H1, "list_type": "IDFA"}));
        assert_eq!(outcome.created.map(|a| a.id).as_deref(), Some("6431:12:IDFA"));
        assert_eq!(outcome.rejected.len(), 2);
    }

    #[test]
    fn create_retried_after_a_partial_failure_reuses_the_list() {
        let host = FakeHost::new(vec![
            ok(json!({"items": [{"id": "6431", "name": "VIPs"}], "bookmark": null})),
            ok(json!({"id": "6431"})),
            ok(json!({"items": [{"id": "12", "name": "VIPs", "audience_type": "CUSTOMER_LIST",
                                 "rule": {"customer_list_id": "6431"}}]})),
        ]);
        let mut retry = batch();
        retry.attempt = 2;
        let outcome = finished(add_users(&host, &config(), &creds(), ACCOUNT, AudienceTarget::Create(spec()), &retry));
        let Some(found) = outcome.created else { panic!("no audience reported") };
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
            (fail(403, 29, "You are not permitted to access that resource."), "action-required"),
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
                Some(DestinationError::ActionRequired(_)) => "action-required",
                Some(DestinationError::Transient(_)) => "transient",
                Some(DestinationError::RejectedUsers(_)) => "rejected-users",
                None => "ok",
            };
            assert_eq!(variant, expected);
            assert_eq!(host.logs.borrow().len(), 1);
            assert_no_secrets_logged(&host);
        }
    }
}
