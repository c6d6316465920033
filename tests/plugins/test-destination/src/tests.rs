//! Native tests of the behaviours, against a scripted host.

use std::cell::RefCell;

use audience_plugin_sdk::http::Response;
use audience_plugin_sdk::identity::{sha256_hex, sha256_hex_normalized};

use super::*;

#[derive(Default)]
struct FakeHost {
    answers: RefCell<Vec<Result<Response, HttpError>>>,
    requests: RefCell<Vec<Request>>,
    budgets: RefCell<Vec<Budget>>,
    hash_calls: RefCell<Vec<usize>>,
}

impl Host for FakeHost {
    fn send(&self, request: &Request) -> Result<Response, HttpError> {
        self.requests.borrow_mut().push(request.clone());
        let mut answers = self.answers.borrow_mut();
        if answers.is_empty() { Err(HttpError::Connection("no scripted answer".into())) } else { answers.remove(0) }
    }

    fn log(&self, _level: Level, _message: &str) {}

    fn sha256_hex(&self, normalization: Normalization, values: &[String]) -> Vec<String> {
        self.hash_calls.borrow_mut().push(values.len());
        values.iter().map(|v| sha256_hex_normalized(normalization, v)).collect()
    }

    fn report_budget(&self, budget: Budget) {
        self.budgets.borrow_mut().push(budget);
    }
}

fn config(pairs: &[(&str, &str)]) -> PluginConfig {
    PluginConfig {
        base_url: None,
        client_id: None,
        client_secret: None,
        settings: pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect(),
    }
}

fn batch(keys: &[&str], attempt: u32) -> Batch {
    Batch {
        id: "batch.1".into(),
        attempt,
        users: keys
            .iter()
            .map(|k| PreparedUser {
                key: (*k).into(),
                identifiers: vec![Identifier { kind: kinds::EMAIL.into(), value: format!("{k}@example.com") }],
                consent: None,
            })
            .collect(),
    }
}

fn existing() -> AudienceTarget {
    AudienceTarget::Existing("acct/x".into())
}

fn add(host: &FakeHost, settings: &[(&str, &str)], b: &Batch) -> Result<WriteOutcome, DestinationError> {
    write(host, &config(settings), "acct", &existing(), Operation::Add, b)
}

fn spec(id: Option<&str>, identifiers: &[&str]) -> AudienceSpec {
    AudienceSpec {
        id: id.map(String::from),
        name: "VIPs".into(),
        identifiers: kinds::list(identifiers),
        description: None,
        create_if_missing: true,
    }
}

#[test]
fn the_default_manifest_and_its_settings() {
    let m = manifest(&config(&[]));
    assert_eq!(m.identifiers, kinds::list(&[kinds::EMAIL, kinds::EXTERNAL_ID]));
    assert_eq!(m.features, Features::REMOVAL | Features::ASYNCHRONOUS | Features::AUDIENCE_SEARCH);
    assert_eq!((m.limits.max_batch_size, m.audience_keys), (100, AudienceKeys::MultiKey));
    assert_eq!(m.default_hosts, vec!["127.0.0.1".to_string()]);

    let mut c = config(&[
        ("identifiers", "email, gen"),
        ("audience-keys", "one-kind"),
        ("features", "removal,consent"),
        ("max-batch-size", "7"),
        ("max-submissions-per-audience", "1"),
        ("app-requests-per-second", "2.5"),
        ("oauth", "on"),
    ]);
    c.base_url = Some("http://127.0.0.1:8123/api".into());
    let m = manifest(&c);
    assert_eq!(m.identifiers, kinds::list(&["email", "gen"]));
    assert_eq!((m.audience_keys, m.features), (AudienceKeys::OneKind, Features::REMOVAL | Features::CONSENT));
    assert_eq!((m.limits.max_batch_size, m.limits.max_submissions_per_audience), (7, 1));
    assert_eq!(m.limits.app_requests_per_second, Some(2.5));
    assert_eq!(m.default_hosts, vec!["127.0.0.1".to_string()]);
    let oauth = m.oauth.unwrap();
    assert!(oauth.authorize_url.starts_with("http://127.0.0.1:8123/api/oauth/authorize?client_id={client-id}"));
    assert_eq!(manifest(&config(&[("features", "none")])).features, Features::empty());
}

#[test]
fn prepare_keeps_selected_fields_and_hashes_through_the_host() {
    let host = FakeHost::default();
    let raw = |key: &str, ids: &[(&str, &str)]| RawUser {
        key: key.into(),
        identifiers: ids.iter().map(|(k, v)| Identifier { kind: (*k).into(), value: (*v).into() }).collect(),
        consent: None,
    };
    let out = prepare(
        &host,
        &kinds::list(&[kinds::EMAIL, kinds::PHONE]),
        vec![
            raw("a", &[(kinds::EMAIL, " A@X.COM "), (kinds::EXTERNAL_ID, "x")]),
            raw("b", &[(kinds::EMAIL, "hash: Alice@Example.COM ")]),
            raw("c", &[(kinds::EXTERNAL_ID, "x"), (kinds::EMAIL, "hash:  ")]),
            raw("d", &[(kinds::PHONE, "123")]),
        ],
    );
    let value = |p: &Preparation| match p {
        Preparation::Ready(u) => u.identifiers.iter().map(|i| i.value.clone()).collect::<Vec<_>>(),
        Preparation::NotSynced(why) => vec![format!("not synced: {why}")],
    };
    assert_eq!(value(&out[0]), vec!["a@x.com"]);
    assert_eq!(value(&out[1]), vec![sha256_hex("alice@example.com")]);
    assert_eq!(value(&out[2]), vec!["not synced: no selected identifier present"]);
    // Kinds it never declared are kept when selected: the conformance suite relies on it.
    assert_eq!(value(&out[3]), vec!["123"]);
    assert_eq!(*host.hash_calls.borrow(), vec![1]);
}

#[test]
fn done_writes_report_rejections_unattributed_rows_and_created_audiences() {
    let host = FakeHost::default();
    let b = batch(&["u1", "reject-1", "drop-1", "drop-2"], 1);
    let Ok(WriteOutcome::Done(outcome)) = add(&host, &[("unattributed", "3")], &b) else { panic!() };
    assert_eq!(outcome.rejected.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), vec!["reject-1"]);
    assert_eq!(outcome.unattributed.len(), 1);
    assert_eq!(outcome.unattributed[0].count, 5);
    assert_eq!(outcome.unattributed[0].samples, vec!["drop-1@example.com", "drop-2@example.com"]);
    assert_eq!(outcome.created, None);

    let target = AudienceTarget::Create(spec(None, &[kinds::EMAIL]));
    let Ok(WriteOutcome::Done(outcome)) = write(&host, &config(&[]), "acct", &target, Operation::Remove, &b) else {
        panic!()
    };
    let created = outcome.created.unwrap();
    assert_eq!((created.id.as_str(), created.created), ("acct/VIPs", true));
}

#[test]
fn failing_attempts_then_success() {
    let host = FakeHost::default();
    let settings = [("fail-attempts", "2"), ("fail-with", "rate-limited:1500")];
    assert_eq!(add(&host, &settings, &batch(&["u"], 1)), Err(DestinationError::RateLimited(Some(1500))));
    assert_eq!(add(&host, &settings, &batch(&["u"], 2)), Err(DestinationError::RateLimited(Some(1500))));
    assert!(matches!(add(&host, &settings, &batch(&["u"], 3)), Ok(WriteOutcome::Done(_))));
    let err = add(&host, &[("fail-attempts", "1"), ("fail-with", "action-required")], &batch(&["u"], 1));
    assert!(matches!(err, Err(DestinationError::ActionRequired(_))));
}

#[test]
fn submissions_finish_from_their_id_alone() {
    let host = FakeHost::default();
    let b = batch(&["u1", "reject-1", "drop-1"], 1);
    let Ok(WriteOutcome::Submitted(s)) = add(&host, &[("write", "submitted"), ("check-after-ms", "25")], &b) else {
        panic!()
    };
    assert_eq!(s.check_after_ms, 25);
    let facts = SubmissionFacts::decode(&s.id).unwrap();
    assert_eq!((facts.batch_id.as_str(), facts.attempt, facts.unattributed), ("batch.1", 1, 1));
    assert_eq!(SubmissionFacts::decode(&facts.encode()), Some(facts));

    let status = check_submission(&host, &config(&[]), "acct", &existing(), &s.id).unwrap();
    let SubmissionStatus::Finished(outcome) = status else { panic!("{status:?}") };
    assert_eq!(outcome.rejected[0].key, "reject-1");
    assert_eq!(outcome.unattributed[0].count, 1);

    let bad = check_submission(&host, &config(&[]), "acct", &existing(), "nope");
    assert!(matches!(bad, Err(DestinationError::InvalidRequest(_))));
}

#[test]
fn submissions_process_for_a_while_or_fail() {
    let host = FakeHost::default();
    let settings = [("write", "submitted"), ("processing-ms", "60000")];
    let Ok(WriteOutcome::Submitted(s)) = add(&host, &settings, &batch(&["u"], 1)) else { panic!() };
    let status = check_submission(&host, &config(&settings), "acct", &existing(), &s.id).unwrap();
    assert!(matches!(status, SubmissionStatus::Processing(Some(ms)) if ms > 50_000 && ms <= 60_000), "{status:?}");
    let hintless = config(&[("processing-hint", "none")]);
    let status = check_submission(&host, &hintless, "acct", &existing(), &s.id).unwrap();
    assert_eq!(status, SubmissionStatus::Processing(None));

    let settings = [("write", "submitted"), ("fail-attempts", "1"), ("fail-with", "invalid-request")];
    let Ok(WriteOutcome::Submitted(s)) = add(&host, &settings, &batch(&["u"], 1)) else { panic!() };
    let status = check_submission(&host, &config(&settings), "acct", &existing(), &s.id).unwrap();
    assert!(matches!(status, SubmissionStatus::Failed(DestinationError::InvalidRequest(_))), "{status:?}");
    let Ok(WriteOutcome::Submitted(s)) = add(&host, &settings, &batch(&["u"], 2)) else { panic!() };
    let status = check_submission(&host, &config(&settings), "acct", &existing(), &s.id).unwrap();
    assert!(matches!(status, SubmissionStatus::Finished(_)), "{status:?}");
}

#[test]
fn a_status_server_scripts_the_submission() {
    let host = FakeHost::default();
    let Ok(WriteOutcome::Submitted(s)) = add(&host, &[("write", "submitted")], &batch(&["u"], 1)) else { panic!() };
    *host.answers.borrow_mut() = vec![
        Ok(Response::new(202).with_header("retry-after", "2")),
        Ok(Response::new(202)),
        Ok(Response::new(200)),
        Ok(Response::new(404)),
        Err(HttpError::Timeout),
    ];
    let c = config(&[("status-url", "http://127.0.0.1:9/status")]);
    let check = || check_submission(&host, &c, "acct", &existing(), &s.id);
    assert_eq!(check(), Ok(SubmissionStatus::Processing(Some(2000))));
    assert_eq!(check(), Ok(SubmissionStatus::Processing(None)));
    assert!(matches!(check(), Ok(SubmissionStatus::Finished(_))));
    assert!(matches!(check(), Ok(SubmissionStatus::Failed(DestinationError::NotFound(_)))));
    assert!(matches!(check(), Err(DestinationError::Transient(_))));
    let request = host.requests.borrow()[0].clone();
    assert_eq!(request.url, "http://127.0.0.1:9/status");
    assert!(request.headers.contains(&("x-submission-id".to_string(), s.id.clone())));
}

#[test]
fn budgets_and_failing_calls() {
    let host = FakeHost::default();
    add(&host, &[("budget", "87.5:3000")], &batch(&["u"], 1)).unwrap();
    add(&host, &[("budget", "40")], &batch(&["u"], 1)).unwrap();
    assert_eq!(
        *host.budgets.borrow(),
        vec![
            Budget { used_percent: 87.5, regain_after_ms: Some(3000) },
            Budget { used_percent: 40.0, regain_after_ms: None }
        ]
    );
    let c = config(&[("fail-calls", "check-target, add-users"), ("fail-with", "unauthorized")]);
    assert!(matches!(enter(&host, &c, "check-target"), Err(DestinationError::Unauthorized(_))));
    assert!(enter(&host, &c, "read-audience").is_ok());
}

#[test]
fn the_hash_behaviour_uses_the_hashing_import() {
    let host = FakeHost::default();
    let Ok(WriteOutcome::Done(outcome)) = add(&host, &[("behaviour", "hash")], &batch(&["U1"], 1)) else { panic!() };
    assert_eq!(outcome.rejected[0].reason, format!("sha256:{}", sha256_hex("u1@example.com")));
    assert!(add(&host, &[("behaviour", "hash"), ("hash-values", "3")], &batch(&["u"], 1)).is_ok());
    assert_eq!(*host.hash_calls.borrow(), vec![1, 3]);
}

#[test]
fn search_pages_over_the_synthetic_set() {
    let c = config(&[]);
    let first = search_audiences(&c, "acct", "", None).unwrap();
    assert_eq!(first.audiences.len(), 10);
    assert_eq!(first.audiences[0].name, "VIP 000");
    assert_eq!(first.audiences[1].id, "acct/Churned 001");
    assert_eq!(first.next_cursor.as_deref(), Some("10"));
    let last = search_audiences(&c, "acct", "", Some("20")).unwrap();
    assert_eq!((last.audiences.len(), last.next_cursor), (5, None));

    let vip = search_audiences(&config(&[("page-size", "3")]), "acct", "vip", None).unwrap();
    let names: Vec<&str> = vip.audiences.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, vec!["VIP 000", "VIP 004", "VIP 008"]);
    assert_eq!(vip.next_cursor.as_deref(), Some("3"));
    let a = &vip.audiences[2];
    assert_eq!((a.state, a.size.lower), (AudienceState::Unusable, Some(800)));
    assert!(a.status_detail.is_some());

    assert!(search_audiences(&c, "acct", "", Some("x")).is_err());
    assert!(search_audiences(&config(&[("features", "removal")]), "acct", "", None).is_err());
}

#[test]
fn read_upsert_and_check_target() {
    let c = config(&[]);
    assert_eq!(read_audience(&c, "acct", "acct/VIP 004").unwrap().size.lower, Some(400));
    assert_eq!(read_audience(&c, "acct", "acct/Mine").unwrap().state, AudienceState::Ready);
    assert!(matches!(read_audience(&c, "acct", "other/VIP 004"), Err(DestinationError::NotFound(_))));

    let Ok(UpsertOutcome::Ready(a)) = upsert_audience(&c, "acct", spec(None, &[kinds::EMAIL])) else { panic!() };
    assert_eq!(a.id, "acct/VIPs");
    let c2 = config(&[("upsert", "create-with-first-batch")]);
    assert!(matches!(upsert_audience(&c2, "acct", spec(None, &[])), Ok(UpsertOutcome::CreateWithFirstBatch(_))));
    assert!(upsert_audience(&c2, "acct", spec(Some("nope"), &[])).is_err());

    assert!(check_target(&c, "acct", &spec(None, &[kinds::PHONE, kinds::EMAIL])).is_empty());
    let parts = |problems: Vec<TargetProblem>| problems.into_iter().map(|p| p.part).collect::<Vec<_>>();
    assert_eq!(
        parts(check_target(&c, "disabled-1", &spec(Some("acct/VIPs"), &[kinds::PHONE]))),
        vec![TargetPart::Account, TargetPart::Audience, TargetPart::Identifiers]
    );
    let asked = config(&[("target-problems", "credentials,bogus,audience")]);
    assert_eq!(
        parts(check_target(&asked, "acct", &spec(None, &[kinds::EMAIL]))),
        vec![TargetPart::Credentials, TargetPart::Audience]
    );
}

#[test]
fn authorize_keeps_or_rotates_the_refresh_token() {
    let old = Credentials {
        access_token: "old".into(),
        refresh_token: Some("refresh-1".into()),
        expires_at: Some(1),
        renewable_until: Some(99),
        scopes: vec![],
    };
    let renewed = authorize(&config(&[]), Grant::Refresh(old.clone())).unwrap();
    assert_eq!((renewed.refresh_token.as_deref(), renewed.renewable_until), (Some("refresh-1"), Some(99)));
    assert_eq!(renewed.access_token, "test-access");
    let rotated =
        authorize(&config(&[("refresh", "rotate"), ("expires-in", "60")]), Grant::Refresh(old.clone())).unwrap();
    assert_eq!(rotated.refresh_token.as_deref(), Some("refresh-1-r"));
    assert!(rotated.expires_at.unwrap() > 1_600_000_000);
    let code = AuthCode { code: "c".into(), redirect_uri: "https://r.example/cb".into() };
    let fresh =
        authorize(&config(&[("renewable-for", "3600"), ("scopes", "a,b")]), Grant::AuthorizationCode(code)).unwrap();
    assert_eq!(fresh.refresh_token.as_deref(), Some("refresh-c"));
    assert!(fresh.renewable_until.is_some() && fresh.scopes == vec!["a".to_string(), "b".to_string()]);
    let refused =
        authorize(&config(&[("fail-calls", "authorize"), ("fail-with", "unauthorized")]), Grant::Refresh(old));
    assert!(matches!(refused, Err(DestinationError::Unauthorized(_))));
}
