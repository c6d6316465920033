//! `add-users` / `remove-users`: one batch into or out of a user list, through
//! `audienceMembers:ingest` / `:remove` ([`crate::payload`] builds the bodies).
//!
//! The Data Manager API validates a request at once and processes it later: a 200 answers
//! `{requestId}`, and what became of the members is read with `requestStatus:retrieve`
//! ([`crate::status`]). So a write answers `submitted` with the request id(s) as the submission
//! id and `check-after-ms` from the `status-check-after-ms` setting (default 30 minutes, as Google
//! advises). A batch too large for one body goes out as several requests, and the submission id
//! joins their ids with commas. A 200 without a request id (not something Google does; the
//! conformance stand-in answers `{}`) has nothing to follow: the write answers `done`.
//!
//! Failures: a fast-fail 400 naming members (`audience_members[i]…`) becomes `rejected-users`
//! with the users of that request's members (the host errors them and resends the rest at once);
//! users that cannot be sent at all (nothing of the batch's kind) are answered the same way
//! before any request. A failure part way through a split batch fails the call: the host's
//! retry sends every part again, which is harmless (adding or removing a member twice changes
//! nothing; Google's own clients resend on failure, as there is no idempotency key).
//!
//! `audience-target::create` does not normally happen (Google creates empty lists, so
//! `upsert-audience` answers `ready`), but is honoured: the list is found or created as
//! `upsert-audience` would, the batch ingested, and the list reported in `created`; that write
//! answers `done` (a `submitted` answer has no room for `created`), so its processing
//! diagnostics are not followed. Removing from a list that does not exist yet removes nothing.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::build;
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::types::{
    AudienceTarget, Batch, BatchOutcome, Credentials, DestinationError, PluginConfig, WriteOutcome,
};

use crate::audiences::find_or_create;
use crate::client::{Google, Operation};
use crate::config::{AccountRef, list_id, status_check_after_ms};
use crate::manifest::MAX_BATCH_SIZE;
use crate::payload::{body, body_prefix, members, parts};

/// The separator of request ids in a submission id.
pub const SUBMISSION_SEPARATOR: &str = ",";

/// Write `batch` to `target` with `operation`.
pub fn write(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    target: AudienceTarget,
    batch: &Batch,
    operation: Operation,
) -> Result<WriteOutcome, DestinationError> {
    let account = AccountRef::parse(account_id)?;
    if batch.users.len() > MAX_BATCH_SIZE as usize {
        return Err(DestinationError::InvalidRequest(format!(
            "a batch of {} users exceeds Google's {MAX_BATCH_SIZE} members per request",
            batch.users.len()
        )));
    }
    let existing = match &target {
        AudienceTarget::Existing(id) => Some(list_id(id)?.to_string()),
        AudienceTarget::Create(_) if operation == Operation::Remove => return Ok(build::done(vec![])),
        AudienceTarget::Create(_) => None,
    };
    let encoded = members(&batch.users, operation);
    if !encoded.refused.is_empty() {
        return Err(DestinationError::RejectedUsers(encoded.refused));
    }
    let Some(key_type) = encoded.key_type else { return Ok(build::done(vec![])) };
    let google = Google::new(host, config, creds)?;
    let (list, created) = match (existing, target) {
        (Some(id), _) => (id, None),
        (None, AudienceTarget::Create(spec)) => {
            let audience = find_or_create(&google, config, &account, &spec)?;
            (audience.id.clone(), Some(audience))
        }
        (None, AudienceTarget::Existing(_)) => return Ok(build::done(vec![])),
    };
    let prefix = body_prefix(operation, &account, &list, key_type);
    let parts = parts(&prefix, &encoded.members);
    let mut request_ids = Vec::new();
    for (number, part) in parts.iter().enumerate() {
        let keys: Vec<&str> = part.iter().map(|(key, _)| *key).collect();
        let answer = google.write(operation, &account, &list, body(&prefix, part), &keys)?;
        let id = answer.request_id.map(|i| i.trim().to_string()).filter(|i| !i.is_empty());
        google.client().log(
            Level::Info,
            &format!(
                "Google: {} of {} members to user list {list} of {} (request {} of {}): requestId {}",
                operation.verb(),
                part.len(),
                account.describe(),
                number + 1,
                parts.len(),
                id.as_deref().unwrap_or("none"),
            ),
        );
        if let Some(first) = answer.field_warnings.first() {
            google.client().log(
                Level::Warn,
                &format!(
                    "Google: {} field warning(s) on the {} request, first: {}",
                    answer.field_warnings.len(),
                    operation.verb(),
                    audience_plugin_sdk::text::excerpt(&first.to_string(), 300)
                ),
            );
        }
        request_ids.extend(id);
    }
    if request_ids.is_empty() || created.is_some() {
        return Ok(WriteOutcome::Done(BatchOutcome { rejected: vec![], unattributed: vec![], created }));
    }
    Ok(build::submitted(request_ids.join(SUBMISSION_SEPARATOR), status_check_after_ms(config)))
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::types::{AudienceSpec, Identifier, PreparedUser};
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, assert_no_secrets_logged, config, creds, fail, ok};

    const H: &str = "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a";

    fn user(key: &str, ids: &[(&str, &str)]) -> PreparedUser {
        PreparedUser {
            key: key.into(),
            identifiers: ids.iter().map(|(k, v)| Identifier { kind: (*k).into(), value: (*v).into() }).collect(),
            consent: None,
        }
    }

    fn batch(users: Vec<PreparedUser>) -> Batch {
        Batch { id: "batch-1".into(), attempt: 1, users }
    }

    fn three() -> Batch {
        batch(vec![user("a", &[("email", H)]), user("b", &[("phone", H)]), user("c", &[("email", H), ("phone", H)])])
    }

    fn existing() -> AudienceTarget {
        AudienceTarget::Existing("42".into())
    }

    #[test]
    fn an_ingest_is_submitted_with_its_request_id() {
        let host = FakeHost::new(vec![ok(json!({"requestId": "req-1"}))]);
        let mut config = config();
        config.settings.push(("status-check-after-ms".into(), "60000".into()));
        let out = write(&host, &config, &creds(), "1234567890", existing(), &three(), Operation::Ingest).unwrap();
        assert_eq!(out, build::submitted("req-1", 60_000));
        assert_eq!(host.call(0), ("POST".into(), "http://sandbox.test/datamanager/v1/audienceMembers:ingest".into()));
        let body = host.json(0);
        assert_eq!(body["audienceMembers"].as_array().unwrap().len(), 3);
        assert_eq!(body["destinations"][0]["productDestinationId"], "42");
        assert_eq!(body["termsOfService"]["customerMatchTermsOfServiceStatus"], "ACCEPTED");
        assert_eq!(host.header(0, "login-account"), None);
        assert_no_secrets_logged(&host);
    }

    #[test]
    fn a_remove_uses_the_remove_endpoint_and_the_default_delay() {
        let host = FakeHost::new(vec![ok(json!({"requestId": "req-2"}))]);
        let out = write(&host, &config(), &creds(), "1@2", existing(), &three(), Operation::Remove).unwrap();
        assert_eq!(out, build::submitted("req-2", 1_800_000));
        assert!(host.call(0).1.ends_with("/audienceMembers:remove"));
        assert!(host.json(0).get("termsOfService").is_none());
        assert_eq!(host.json(0)["destinations"][0]["loginAccount"]["accountId"], "2");
    }

    #[test]
    fn a_big_batch_goes_out_in_parts_under_one_submission() {
        let users: Vec<PreparedUser> = (0..10_000)
            .map(|i| {
                user(
                    &format!("u{i}"),
                    &[
                        ("email", H),
                        ("phone", H),
                        ("first-name", H),
                        ("last-name", H),
                        ("country", "US"),
                        ("postal-code", "94103"),
                    ],
                )
            })
            .collect();
        let host = FakeHost::new((0..5).map(|i| ok(json!({"requestId": format!("r{i}")}))).collect());
        let out = write(&host, &config(), &creds(), "1", existing(), &batch(users), Operation::Ingest).unwrap();
        let parts = host.count();
        assert!(parts >= 2, "{parts}");
        let ids: Vec<String> = (0..parts).map(|i| format!("r{i}")).collect();
        assert_eq!(out, build::submitted(ids.join(","), 1_800_000));
        let sent: usize = (0..parts).map(|i| host.json(i)["audienceMembers"].as_array().unwrap().len()).sum();
        assert_eq!(sent, 10_000);
        assert!((0..parts).all(|i| host.sent.borrow()[i].body.len() <= crate::payload::MAX_BODY_BYTES));
    }

    #[test]
    fn answers_without_a_request_id_are_done() {
        let host = FakeHost::new(vec![ok(json!({}))]);
        let out = write(&host, &config(), &creds(), "1", existing(), &three(), Operation::Ingest).unwrap();
        assert_eq!(out, build::done(vec![]));
    }

    #[test]
    fn a_fast_fail_names_the_users() {
        let violations = json!({"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [
            {"field": "audience_members[1].user_data.user_identifiers[0]", "description": "bad hash",
             "reason": "INVALID_SHA256_FORMAT"}]});
        let host = FakeHost::new(vec![fail(400, "INVALID_ARGUMENT", Some("INVALID_ARGUMENT"), vec![violations])]);
        let err = write(&host, &config(), &creds(), "1", existing(), &three(), Operation::Ingest).unwrap_err();
        match err {
            DestinationError::RejectedUsers(users) => {
                assert_eq!(users.len(), 1);
                assert_eq!(users[0].key, "b");
                assert!(users[0].reason.contains("INVALID_SHA256_FORMAT"), "{}", users[0].reason);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn users_that_cannot_be_sent_are_refused_before_any_request() {
        let host = FakeHost::new(vec![]);
        let mixed = batch(vec![user("a", &[("email", H)]), user("m", &[("idfa", "I")]), user("z", &[])]);
        let err = write(&host, &config(), &creds(), "1", existing(), &mixed, Operation::Ingest).unwrap_err();
        assert!(matches!(&err, DestinationError::RejectedUsers(u) if u.len() == 2), "{err:?}");
        assert_eq!(host.count(), 0);
        let bad_list = write(
            &host,
            &config(),
            &creds(),
            "1",
            AudienceTarget::Existing("conformance-audience".into()),
            &three(),
            Operation::Ingest,
        );
        assert!(matches!(bad_list, Err(DestinationError::InvalidRequest(_))));
        let big = batch(vec![user("x", &[("email", H)]); 10_001]);
        assert!(matches!(
            write(&host, &config(), &creds(), "1", existing(), &big, Operation::Ingest),
            Err(DestinationError::InvalidRequest(_))
        ));
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn a_create_target_is_found_or_created_and_reported() {
        let spec = AudienceSpec {
            id: None,
            name: "VIP".into(),
            identifiers: vec!["email".into()],
            description: None,
            create_if_missing: true,
        };
        let host = FakeHost::new(vec![
            ok(json!({})),
            ok(json!({"id": "77", "displayName": "VIP", "ingestedUserListInfo": {"uploadKeyTypes": ["CONTACT_ID"]}})),
            ok(json!({"requestId": "req-3"})),
        ]);
        let out =
            write(&host, &config(), &creds(), "1", AudienceTarget::Create(spec.clone()), &three(), Operation::Ingest)
                .unwrap();
        match out {
            WriteOutcome::Done(outcome) => assert!(outcome.created.is_some_and(|a| a.id == "77" && a.created)),
            other => panic!("{other:?}"),
        }
        assert_eq!(host.json(2)["destinations"][0]["productDestinationId"], "77");
        let host = FakeHost::new(vec![]);
        let removed =
            write(&host, &config(), &creds(), "1", AudienceTarget::Create(spec), &three(), Operation::Remove).unwrap();
        assert_eq!(removed, build::done(vec![]));
    }

    #[test]
    fn the_error_table_on_writes() {
        let cases = [
            (fail(401, "UNAUTHENTICATED", None, vec![]), "unauthorized"),
            (fail(403, "PERMISSION_DENIED", Some("TERMS_AND_CONDITIONS_NOT_SIGNED"), vec![]), "action-required"),
            (fail(403, "PERMISSION_DENIED", Some("PERMISSION_DENIED"), vec![]), "not-found"),
            (fail(400, "INVALID_ARGUMENT", Some("TOO_MANY_AUDIENCE_MEMBERS"), vec![]), "invalid-request"),
            (fail(429, "RESOURCE_EXHAUSTED", Some("RATE_LIMIT_EXCEEDED"), vec![]), "rate-limited"),
            (fail(503, "UNAVAILABLE", None, vec![]), "transient"),
        ];
        for (answer, expected) in cases {
            let host = FakeHost::new(vec![answer]);
            let err = write(&host, &config(), &creds(), "1", existing(), &three(), Operation::Ingest).unwrap_err();
            let got = match err {
                DestinationError::RateLimited(_) => "rate-limited",
                DestinationError::Unauthorized(_) => "unauthorized",
                DestinationError::NotFound(_) => "not-found",
                DestinationError::InvalidRequest(_) => "invalid-request",
                DestinationError::ActionRequired(_) => "action-required",
                DestinationError::Transient(_) => "transient",
                DestinationError::RejectedUsers(_) => "rejected-users",
            };
            assert_eq!(got, expected);
        }
    }
}
