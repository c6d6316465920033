//! `add-users` / `remove-users`: one batch into or out of a custom audience.
//!
//! One batch is one Meta session of `POST` (add) or `DELETE` (remove) `/<audience_id>/users`
//! requests, with the form fields `payload` (the multi-key schema and rows, [`crate::payload`])
//! and `session` (a fresh session per attempt), and always finishes in that call:
//! `write-outcome::done`, with Meta's invalid-entry count and samples turned into rejected and
//! unattributed users ([`crate::outcome`]). The host sends at most 10,000 users, Meta's limit;
//! a bigger batch (an operator override) is `invalid-request`, which makes the host split it.
//!
//! **Request size.** Often the session is one request. But the host refuses request bodies
//! over 8 MiB, partners' front ends (and the conformance stand-in, at 2 MiB) often refuse less,
//! and 10,000 rows of a dozen hashed keys encode to about 10 MB: a body longer than
//! [`MAX_BODY_BYTES`] is sent as several requests of equal share of the rows in the same
//! session (`batch_seq` 1, 2, ..., `last_batch_flag` on the last, `estimated_num_total` the
//! whole batch), as Meta's sessions are meant for. Each body is built only when it is sent,
//! so one is held at a time. A failure part way fails the call; the retry is a new attempt,
//! hence a new session that sends every row again (adding or removing a user twice is
//! harmless).
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
use crate::outcome::batch_outcome_of;
use crate::payload::{Operation, Row, Rows, rows, session_id, session_part};

/// The most bytes one `/users` body may take: well below the host's 8 MiB cap and the 2 MiB
/// many HTTP front ends accept by default, and small enough that holding one costs little of
/// the instance's 64 MiB.
pub const MAX_BODY_BYTES: usize = 3 << 19;

/// How many rows each request of the session carries: all of them when the body fits in
/// [`MAX_BODY_BYTES`], else the largest equal share whose bodies all fit.
fn share(graph: &Graph<'_>, rows: &Rows<'_>, id: i64) -> Result<usize, DestinationError> {
    let total = rows.rows.len();
    let len = |part: &[Row<'_>]| graph.users_body_len(&rows.payload_of(part), &session_part(id, 1, false, total));
    let whole = len(&rows.rows)?;
    let mut parts = whole.div_ceil(MAX_BODY_BYTES).max(1);
    loop {
        let share = total.div_ceil(parts);
        let mut fits = true;
        for part in rows.rows.chunks(share) {
            if len(part)? > MAX_BODY_BYTES {
                fits = false;
                break;
            }
        }
        if fits || share == 1 {
            return Ok(share);
        }
        parts += 1;
    }
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
    let mut rows = rows(&batch.users);
    let rejected = std::mem::take(&mut rows.rejected);
    if rows.rows.is_empty() {
        return Ok(WriteOutcome::Done(BatchOutcome { rejected, unattributed: vec![], created }));
    }
    let graph = Graph::new(host, config, creds)?;
    let id = session_id(account, &audience, operation, &batch.id, batch.attempt);
    let total = rows.rows.len();
    let share = share(&graph, &rows, id)?;
    let parts = total.div_ceil(share);
    let mut outcome = BatchOutcome { rejected, unattributed: vec![], created: None };
    for (seq, part) in rows.rows.chunks(share).enumerate() {
        let seq = u32::try_from(seq + 1).unwrap_or(u32::MAX);
        let session = session_part(id, seq, seq as usize == parts, total);
        // The body is encoded once, straight from the rows, which borrow the batch: nothing
        // of the batch is copied (see `crate::form`).
        let response = graph.users(operation, &audience, &rows.payload_of(part), &session, account)?;
        graph.client().log(
            Level::Info,
            &format!(
                "Meta: {} {} rows {} custom audience {audience} (session {id}, request {seq} of {parts}): \
                 num_received {}, num_invalid_entries {}",
                match operation {
                    Operation::Add => "added",
                    Operation::Remove => "removed",
                },
                part.len(),
                match operation {
                    Operation::Add => "to",
                    Operation::Remove => "from",
                },
                response.num_received.map_or_else(|| "none".to_string(), |n| n.to_string()),
                response.num_invalid_entries.map_or_else(|| "none".to_string(), |n| n.to_string()),
            ),
        );
        let rejected = std::mem::take(&mut outcome.rejected);
        let part_outcome = batch_outcome_of(&response, &rows.schema, part, rejected);
        outcome.rejected = part_outcome.rejected;
        outcome.unattributed.extend(part_outcome.unattributed);
    }
    outcome.created = created;
    Ok(WriteOutcome::Done(outcome))
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::types::{AudienceSpec, Identifier, PreparedUser};
    use serde_json::json;

    use super::*;
    use crate::payload::session;
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
                DestinationError::RejectedUsers(_) => "rejected-users",
            };
            assert_eq!(variant, expected);
            assert_no_secrets_logged(&host);
        }
    }

    const FIVE: [&str; 5] = ["email", "phone", "first-name", "last-name", "country"];

    /// 10,000 users with five hashed keys each, as the host sends a full batch.
    fn full_batch() -> Batch {
        batch_of(&FIVE)
    }

    /// 10,000 users with a hashed value of each of `kinds`.
    fn batch_of(kinds: &[&str]) -> Batch {
        let users = (0..MAX_BATCH_SIZE as usize)
            .map(|i| {
                let ids: Vec<(&str, String)> =
                    kinds.iter().enumerate().map(|(k, kind)| (*kind, format!("{:060x}{k:04x}", i))).collect();
                PreparedUser {
                    key: format!("user-{i:05}"),
                    identifiers: ids.into_iter().map(|(kind, value)| Identifier { kind: kind.into(), value }).collect(),
                    consent: None,
                }
            })
            .collect();
        Batch { id: "big".into(), attempt: 1, users }
    }

    #[test]
    fn a_body_too_big_for_the_host_is_sent_as_one_session_of_several_requests() {
        let all = [
            "external-id",
            "email",
            "phone",
            "gender",
            "dob-year",
            "dob-month",
            "dob-day",
            "last-name",
            "first-name",
            "first-initial",
            "city",
            "region",
            "postal-code",
            "mobile-ad-id",
            "country",
        ];
        let batch = batch_of(&all);
        let mut script = vec![ok(json!({})), ok(json!({"num_invalid_entries": 1}))];
        script.extend((0..10).map(|_| ok(json!({}))));
        let host = FakeHost::new(script);
        let (result, peak) = crate::alloc_probe::peak_during(|| {
            write(&host, &config(), &creds(), "act_1", AudienceTarget::Existing("6001".into()), &batch, Operation::Add)
        });
        let outcome = done(result);
        assert!(outcome.rejected.is_empty());
        assert_eq!(outcome.unattributed.iter().map(|u| u.count).sum::<u32>(), 1);
        let requests = host.count();
        assert_eq!(requests, 8, "about 11 MB of body, in requests of at most 1.5 MiB");
        let mut rows_sent = 0;
        let mut ids = vec![];
        for i in 0..requests {
            let len = host.sent.borrow()[i].body.len();
            assert!(len <= MAX_BODY_BYTES, "{len}");
            let payload: serde_json::Value = serde_json::from_str(&host.param(i, "payload").unwrap()).unwrap();
            assert_eq!(payload["schema"].as_array().unwrap().len(), 15);
            rows_sent += payload["data"].as_array().unwrap().len();
            let session: serde_json::Value = serde_json::from_str(&host.param(i, "session").unwrap()).unwrap();
            assert_eq!(session["batch_seq"], i + 1);
            assert_eq!(session["last_batch_flag"], i == requests - 1);
            assert_eq!(session["estimated_num_total"], 10_000);
            ids.push(session["session_id"].clone());
        }
        assert_eq!(rows_sent, 10_000);
        assert!(ids.iter().all(|id| *id == ids[0]), "one session");
        println!("peak above the batch for 10,000 rows of 15 keys: {peak} bytes");
        assert!(peak < 24 << 20, "{peak} bytes at once");
    }

    #[test]
    fn a_full_batch_is_encoded_once_at_its_exact_size() {
        let batch = full_batch();
        let rows = rows(&batch.users);
        assert_eq!((rows.rows.len(), rows.schema.len()), (10_000, 5));
        let schema: Vec<String> = rows.schema.iter().map(|k| format!("\"{}\"", k.name())).collect();
        let body = crate::client::users_body(&rows.payload(), &session(7, 10_000), "tok", Some("proof")).unwrap();
        assert_eq!(body.capacity(), body.len(), "one buffer of exactly the body's size");
        // A row `["<64 hex>",...]` encodes as %5B + 5 × (%22 + 64 + %22) + 4 × %2C + %5D = 368
        // bytes; rows are separated by %2C.
        let enc = |text: &str| crate::form::encoded_len(text.as_bytes());
        let head = enc(&format!("{{\"schema\":[{}],\"data\":[", schema.join(",")));
        let tail = enc("],\"is_raw\":true}");
        let session_json = r#"{"session_id":7,"batch_seq":1,"last_batch_flag":true,"estimated_num_total":10000}"#;
        let expected = "payload=".len()
            + head
            + 10_000 * 368
            + 9_999 * 3
            + tail
            + "&session=".len()
            + enc(session_json)
            + "&access_token=tok&appsecret_proof=proof".len();
        assert_eq!(body.len(), expected);
        assert_eq!(body.len(), 3_710_302, "about 3.5 MiB");
        // Byte for byte what the SDK's form encoder makes of the same fields.
        let sdk = audience_plugin_sdk::http::RequestBuilder::post("http://x")
            .form(&[
                ("payload", serde_json::to_string(&rows.payload()).unwrap()),
                ("session", session_json.to_string()),
                ("access_token", "tok".to_string()),
                ("appsecret_proof", "proof".to_string()),
            ])
            .build()
            .body;
        assert!(sdk == body);
    }

    #[test]
    fn a_full_batch_fits_well_within_the_memory_limit() {
        let batch = full_batch();
        let host = FakeHost::new((0..3).map(|_| ok(json!({}))).collect());
        let (result, peak) = crate::alloc_probe::peak_during(|| {
            write(&host, &config(), &creds(), "act_1", AudienceTarget::Existing("6001".into()), &batch, Operation::Add)
        });
        let outcome = done(result);
        assert!(outcome.rejected.is_empty() && outcome.unattributed.is_empty());
        let sent: usize = host.sent.borrow().iter().map(|r| r.body.len()).sum();
        // The peak includes the fake host's own copy of the request it records.
        println!("peak above the batch for 10,000 rows: {peak} bytes (bodies {sent} bytes)");
        assert!(peak < 24 << 20, "{peak} bytes at once");
        assert!(peak < 3 * sent, "{peak} bytes at once for a body of {sent}");
    }
}
