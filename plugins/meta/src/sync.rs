//! `add-users` / `remove-users`: one batch into or out of a custom audience.
//!
//! One batch is one request, `POST` (add) or `DELETE` (remove) `/<audience_id>/users`, with the
//! form fields `payload` (the multi-key schema and rows, [`crate::payload`]) and `session` (a
//! fresh one-request session per attempt), and always finishes in that call:
//! `write-outcome::done`, with Meta's invalid-entry count and samples turned into rejected and
//! unattributed users ([`crate::outcome`]). Nothing is split: the host sends at most 10,000
//! users, Meta's limit; a bigger batch (an operator override) is `invalid-request`, which makes
//! the host split it.
//!
//! `audience-target::create` does not normally happen (Meta creates empty audiences, so
//! `upsert-audience` answers `ready`), but is honoured: the audience is found or created as
//! `upsert-audience` would, the batch added, and the audience reported in `created`. Removing
//! from an audience that does not exist yet removes nothing.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::types::{
    AudienceTarget, Batch, BatchOutcome, Credentials, DestinationError, PluginConfig, WriteOutcome,
};

use crate::audiences::find_or_create;
use crate::client::Graph;
use crate::config::{account_number, audience_id};
use crate::manifest::MAX_BATCH_SIZE;
use crate::outcome::batch_outcome;
use crate::payload::{Operation, rows, session, session_id};

fn encode<T: serde::Serialize>(value: &T, what: &str) -> Result<String, DestinationError> {
    serde_json::to_string(value)
        .map_err(|e| DestinationError::InvalidRequest(format!("could not encode the {what}: {e}")))
}

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
    let account = account_number(account_id)?;
    if batch.users.len() > MAX_BATCH_SIZE as usize {
        return Err(DestinationError::InvalidRequest(format!(
            "a batch of {} users exceeds Meta's {MAX_BATCH_SIZE} rows per request",
            batch.users.len()
        )));
    }
    let (audience, created) = match target {
        AudienceTarget::Existing(id) => (audience_id(&id)?.to_string(), None),
        AudienceTarget::Create(_) if operation == Operation::Remove => {
            return Ok(WriteOutcome::Done(BatchOutcome { rejected: vec![], unattributed: vec![], created: None }));
        }
        AudienceTarget::Create(spec) => {
            let graph = Graph::new(host, config, creds)?;
            let audience = find_or_create(&graph, account, &spec)?;
            (audience.id.clone(), Some(audience))
        }
    };
    let rows = rows(&batch.users);
    if rows.rows.is_empty() {
        return Ok(WriteOutcome::Done(BatchOutcome { rejected: rows.rejected, unattributed: vec![], created }));
    }
    let graph = Graph::new(host, config, creds)?;
    let id = session_id(account, &audience, operation, &batch.id, batch.attempt);
    let payload = encode(&rows.payload(), "payload")?;
    let session = encode(&session(id, rows.rows.len()), "session")?;
    let response = graph.users(operation, &audience, payload, session, account)?;
    graph.client().log(
        Level::Info,
        &format!(
            "Meta: {} {} rows {} custom audience {audience} (session {id}): num_received {}, num_invalid_entries {}",
            match operation {
                Operation::Add => "added",
                Operation::Remove => "removed",
            },
            rows.rows.len(),
            match operation {
                Operation::Add => "to",
                Operation::Remove => "from",
            },
            response.num_received.map_or_else(|| "none".to_string(), |n| n.to_string()),
            response.num_invalid_entries.map_or_else(|| "none".to_string(), |n| n.to_string()),
        ),
    );
    let mut outcome = batch_outcome(&response, &rows, rows.rejected.clone());
    outcome.created = created;
    Ok(WriteOutcome::Done(outcome))
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::types::{AudienceSpec, Identifier, PreparedUser};
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, assert_no_secrets_logged, config, creds, fail, ok};

    const H1: &str = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79";
    const H2: &str = "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e";

    fn user(key: &str, ids: &[(&str, &str)]) -> PreparedUser {
        PreparedUser {
            key: key.into(),
            identifiers: ids.iter().map(|(k, v)| Identifier { kind: (*k).into(), value: (*v).into() }).collect(),
            consent: None,
        }
    }

    fn batch(attempt: u32) -> Batch {
        Batch {
            id: "batch-1".into(),
            attempt,
            users: vec![
                user("a", &[("email", H1), ("phone", H2)]),
                user("b", &[("phone", H2), ("mobile-ad-id", "38400000-8cf0-11bd-b23e-10b96e40000d")]),
                user("c", &[("shoe-size", "9")]),
            ],
        }
    }

    fn answer(
        invalid: i64,
        samples: serde_json::Value,
    ) -> Result<audience_plugin_sdk::http::Response, audience_plugin_sdk::http_client::HttpError> {
        ok(json!({"audience_id": "6001", "session_id": "1", "num_received": 2, "num_invalid_entries": invalid,
                  "invalid_entry_samples": samples}))
    }

    fn done(result: Result<WriteOutcome, DestinationError>) -> BatchOutcome {
        match result {
            Ok(WriteOutcome::Done(outcome)) => outcome,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn add_posts_payload_and_session_as_form_fields() {
        let host = FakeHost::new(vec![answer(0, json!([]))]);
        let outcome = done(write(
            &host,
            &config(),
            &creds(),
            "act_1",
            AudienceTarget::Existing("6001".into()),
            &batch(1),
            Operation::Add,
        ));
        assert_eq!(outcome.rejected.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), vec!["c"]);
        assert!(outcome.unattributed.is_empty() && outcome.created.is_none());
        assert_eq!(host.call(0).0, "POST");
        assert_eq!(host.url(0), "http://sandbox.test/v25.0/6001/users");
        let payload: serde_json::Value = serde_json::from_str(&host.param(0, "payload").unwrap()).unwrap();
        assert_eq!(
            payload,
            json!({"schema": ["EMAIL", "PHONE", "MADID"],
                   "data": [[H1, H2, ""], ["", H2, "38400000-8cf0-11bd-b23e-10b96e40000d"]], "is_raw": true})
        );
        let session: serde_json::Value = serde_json::from_str(&host.param(0, "session").unwrap()).unwrap();
        let expected_id = session_id("1", "6001", Operation::Add, "batch-1", 1);
        assert_eq!(
            session,
            json!({"session_id": expected_id, "batch_seq": 1, "last_batch_flag": true, "estimated_num_total": 2})
        );
        assert!(host.param(0, "access_token").is_some());
        assert_no_secrets_logged(&host);
    }

    #[test]
    fn a_retry_uses_a_fresh_session_and_remove_uses_delete() {
        let host = FakeHost::new(vec![answer(0, json!([])), answer(0, json!([]))]);
        let target = || AudienceTarget::Existing("6001".into());
        done(write(&host, &config(), &creds(), "1", target(), &batch(1), Operation::Remove));
        done(write(&host, &config(), &creds(), "1", target(), &batch(2), Operation::Remove));
        assert_eq!(host.call(0).0, "DELETE");
        let id = |i| {
            serde_json::from_str::<serde_json::Value>(&host.param(i, "session").unwrap()).unwrap()["session_id"].clone()
        };
        assert_ne!(id(0), id(1));
    }

    #[test]
    fn invalid_entries_become_rejected_and_unattributed_users() {
        let host = FakeHost::new(vec![answer(3, json!({ H1: "Invalid email hash", "zz": "Bad" }))]);
        let outcome = done(write(
            &host,
            &config(),
            &creds(),
            "1",
            AudienceTarget::Existing("6001".into()),
            &batch(1),
            Operation::Add,
        ));
        let rejected: Vec<(&str, &str)> =
            outcome.rejected.iter().map(|r| (r.key.as_str(), r.reason.as_str())).collect();
        assert_eq!(rejected[0].0, "c");
        assert_eq!(rejected[1], ("a", "Meta counted the user's row as invalid: Invalid email hash"));
        assert_eq!(outcome.unattributed.len(), 1);
        assert_eq!(outcome.unattributed[0].count, 2);
        assert_eq!(outcome.unattributed[0].samples, vec!["zz".to_string()]);
    }

    #[test]
    fn nothing_to_send_sends_nothing() {
        let host = FakeHost::new(vec![]);
        let only_bad = Batch { id: "b".into(), attempt: 1, users: vec![user("c", &[])] };
        let outcome = done(write(
            &host,
            &config(),
            &creds(),
            "1",
            AudienceTarget::Existing("6001".into()),
            &only_bad,
            Operation::Add,
        ));
        assert_eq!(outcome.rejected.len(), 1);
        let spec = AudienceSpec {
            id: None,
            name: "VIPs".into(),
            identifiers: vec![],
            description: None,
            create_if_missing: true,
        };
        let removed =
            done(write(&host, &config(), &creds(), "1", AudienceTarget::Create(spec), &batch(1), Operation::Remove));
        assert!(removed.rejected.is_empty());
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn create_targets_are_found_or_created_then_written() {
        let host = FakeHost::new(vec![ok(json!({"data": []})), ok(json!({"id": "6010"})), answer(0, json!([]))]);
        let spec = AudienceSpec {
            id: None,
            name: "VIPs".into(),
            identifiers: vec![],
            description: None,
            create_if_missing: true,
        };
        let outcome =
            done(write(&host, &config(), &creds(), "1", AudienceTarget::Create(spec), &batch(1), Operation::Add));
        let created = outcome.created.unwrap();
        assert!(created.created && created.id == "6010");
        assert_eq!(host.url(2), "http://sandbox.test/v25.0/6010/users");
    }

    #[test]
    fn bad_inputs_and_partner_errors() {
        let host = FakeHost::new(vec![]);
        let big = Batch { id: "b".into(), attempt: 1, users: vec![user("x", &[("email", H1)]); 10_001] };
        assert!(
            matches!(write(&host, &config(), &creds(), "1", AudienceTarget::Existing("6001".into()), &big, Operation::Add), Err(DestinationError::InvalidRequest(m)) if m.contains("10000"))
        );
        assert!(matches!(
            write(
                &host,
                &config(),
                &creds(),
                "1",
                AudienceTarget::Existing("6001/x".into()),
                &batch(1),
                Operation::Add
            ),
            Err(DestinationError::InvalidRequest(_))
        ));
        assert_eq!(host.count(), 0);
        let cases = [
            (fail(400, 80003, Some(2446079), "too many calls"), "rate-limited"),
            (fail(400, 100, Some(1_713_230), "flagged"), "action-required"),
            (fail(400, 200, Some(1_870_090), "terms"), "action-required"),
            (fail(400, 190, Some(463), "expired"), "unauthorized"),
            (fail(400, 100, Some(33), "gone"), "not-found"),
            (fail(400, 100, None, "bad payload"), "invalid-request"),
            (fail(500, 2, None, "unavailable"), "transient"),
        ];
        for (response, expected) in cases {
            let host = FakeHost::new(vec![response]);
            let err = write(
                &host,
                &config(),
                &creds(),
                "1",
                AudienceTarget::Existing("6001".into()),
                &batch(1),
                Operation::Add,
            )
            .unwrap_err();
            let variant = match err {
                DestinationError::RateLimited(_) => "rate-limited",
                DestinationError::ActionRequired(_) => "action-required",
                DestinationError::Unauthorized(_) => "unauthorized",
                DestinationError::NotFound(_) => "not-found",
                DestinationError::InvalidRequest(_) => "invalid-request",
                DestinationError::Transient(_) => "transient",
            };
            assert_eq!(variant, expected);
            assert_no_secrets_logged(&host);
        }
    }
}
