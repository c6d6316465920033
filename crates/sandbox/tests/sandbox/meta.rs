//! The Meta Marketing API stand-in over real HTTP: login and tokens, paging, audiences, the
//! `/users` data path and its sessions, the call budget, the terms gate, faults and the
//! control API. Time-dependent behaviour is driven by the sandbox clock, never by sleeping.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use audience_sandbox::meta::{MemberRow, MetaFault, SessionOperation, UsageBudget};
use audience_sandbox::{MetaConfig, MetaHandle, MetaSandbox};
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::common::hashed;

const REDIRECT: &str = "http://localhost:9999/callback";
/// `sha256("mary@example.com")`, from Meta's hashing table.
const MARY: &str = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79";
/// `sha256("15559876543")`, from Meta's hashing table.
const PHONE: &str = "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e";
const MADID: &str = "6d92078a-8246-4ba4-ae5b-76104861e7dc";

struct Meta {
    sandbox: MetaSandbox,
    handle: MetaHandle,
    http: Client,
    token: String,
}

async fn start(config: MetaConfig) -> Meta {
    let sandbox = MetaSandbox::start(config).await.expect("sandbox starts");
    let handle = sandbox.handle();
    let token = handle.issue_token(&["ads_management", "ads_read"]);
    let http = Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client builds");
    Meta { sandbox, handle, http, token }
}

async fn send(request: RequestBuilder) -> (StatusCode, Value, HeaderMap) {
    let response = request.send().await.expect("request is answered");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body is read");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), headers)
}

/// `(code, subcode)` of an error body.
fn code(body: &Value) -> (i64, Option<i64>) {
    (body["error"]["code"].as_i64().unwrap_or(0), body["error"]["error_subcode"].as_i64())
}

fn row(pairs: &[(&str, &str)]) -> MemberRow {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn session(id: i64, seq: u64, last: bool) -> Value {
    json!({"session_id": id, "batch_seq": seq, "last_batch_flag": last})
}

impl Meta {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.graph_url())
    }

    fn account(&self) -> String {
        self.handle.ad_account_ids()[0].clone()
    }

    fn get(&self, path: &str, query: &[(&str, &str)]) -> RequestBuilder {
        self.http.get(self.url(path)).query(query).query(&[("access_token", &self.token)])
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> RequestBuilder {
        let mut form: Vec<(&str, &str)> = form.to_vec();
        form.push(("access_token", &self.token));
        self.http.post(self.url(path)).form(&form)
    }

    async fn create_audience(&self, name: &str) -> String {
        let path = format!("/{}/customaudiences", self.account());
        let form = [("name", name), ("subtype", "CUSTOM"), ("customer_file_source", "USER_PROVIDED_ONLY")];
        let (status, body, _) = send(self.post(&path, &form)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["id"].as_str().expect("audience id").to_owned()
    }

    /// `/users` with form fields; `remove` sends `method=DELETE`.
    async fn users(&self, audience: &str, remove: bool, payload: &Value, session: &Value) -> (StatusCode, Value) {
        let (payload, session) = (payload.to_string(), session.to_string());
        let mut form = vec![("payload", payload.as_str()), ("session", session.as_str())];
        if remove {
            form.push(("method", "DELETE"));
        }
        let (status, body, _) = send(self.post(&format!("/{audience}/users"), &form)).await;
        (status, body)
    }

    async fn read(&self, audience: &str, fields: &str) -> (StatusCode, Value) {
        let (status, body, _) = send(self.get(&format!("/{audience}"), &[("fields", fields)])).await;
        (status, body)
    }
}

#[tokio::test]
async fn login_dialog_code_exchange_long_lived_swap_and_debug_token() {
    let env = start(MetaConfig::default()).await;
    let (status, _, headers) = send(env.http.get(env.sandbox.dialog_url()).query(&[
        ("client_id", MetaHandle::DEFAULT_APP_ID),
        ("redirect_uri", REDIRECT),
        ("state", "csrf 42"),
        ("scope", "ads_management,ads_read"),
    ]))
    .await;
    assert_eq!(status, StatusCode::FOUND);
    let location = reqwest::Url::parse(headers["location"].to_str().expect("ascii")).expect("a URL");
    assert!(location.as_str().starts_with(REDIRECT));
    let pairs: HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "csrf 42");

    let exchange = |code: &str| {
        env.http.get(env.sandbox.token_url()).query(&[
            ("client_id", MetaHandle::DEFAULT_APP_ID),
            ("client_secret", MetaHandle::DEFAULT_APP_SECRET),
            ("redirect_uri", REDIRECT),
            ("code", code),
        ])
    };
    let (status, short, _) = send(exchange(&pairs["code"])).await;
    assert_eq!(status, StatusCode::OK, "{short}");
    assert_eq!(short["token_type"], "bearer");
    assert_eq!(short["expires_in"], 2 * 3600);
    let short_token = short["access_token"].as_str().expect("token").to_owned();
    let (status, reused, _) = send(exchange(&pairs["code"])).await;
    assert_eq!((status, code(&reused).0), (StatusCode::BAD_REQUEST, 100));

    let swap = |token: &str| {
        env.http.get(env.sandbox.token_url()).query(&[
            ("grant_type", "fb_exchange_token"),
            ("client_id", MetaHandle::DEFAULT_APP_ID),
            ("client_secret", MetaHandle::DEFAULT_APP_SECRET),
            ("fb_exchange_token", token),
        ])
    };
    let (status, long, _) = send(swap(&short_token)).await;
    assert_eq!(status, StatusCode::OK, "{long}");
    assert_eq!(long["expires_in"], 5_184_000);
    let long_token = long["access_token"].as_str().expect("token").to_owned();

    let app_token = format!("{}|{}", MetaHandle::DEFAULT_APP_ID, MetaHandle::DEFAULT_APP_SECRET);
    let debug = |token: &str| {
        env.http
            .get(format!("{}/debug_token", env.sandbox.base_url()))
            .query(&[("input_token", token), ("access_token", &app_token)])
    };
    let (status, info, _) = send(debug(&long_token)).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    let data = &info["data"];
    assert_eq!(data["is_valid"], true);
    assert_eq!(data["type"], "USER");
    assert_eq!(data["app_id"], MetaHandle::DEFAULT_APP_ID);
    assert_eq!(data["scopes"], json!(["ads_management", "ads_read"]));
    assert!(data["user_id"].as_str().is_some_and(|id| !id.is_empty()));
    let now = data["issued_at"].as_u64().expect("issued_at");
    assert!(data["expires_at"].as_u64().is_some_and(|at| at >= now + 5_184_000 - 5));

    // Three hours later the short-lived token is dead and cannot be swapped any more.
    env.handle.advance_clock(Duration::from_secs(3 * 3600));
    let (_, expired, _) = send(swap(&short_token)).await;
    assert_eq!(code(&expired), (190, Some(463)));
    let (_, info, _) = send(debug(&short_token)).await;
    assert_eq!(info["data"]["is_valid"], false);
    assert_eq!(info["data"]["error"]["subcode"], 463);
    let (status, _, _) = send(env.http.get(env.url("/me/adaccounts")).query(&[("access_token", &long_token)])).await;
    assert_eq!(status, StatusCode::OK);

    // A system-user token (handle or Login for Business) never expires.
    let system = env.handle.issue_system_user_token(&["ads_management"]);
    let (_, info, _) = send(debug(&system)).await;
    assert_eq!((info["data"]["type"].clone(), info["data"]["expires_at"].clone()), (json!("SYSTEM_USER"), json!(0)));
    let (_, _, headers) = send(env.http.get(env.sandbox.dialog_url()).query(&[
        ("client_id", MetaHandle::DEFAULT_APP_ID),
        ("redirect_uri", REDIRECT),
        ("config_id", "123"),
        ("response_type", "code"),
        ("override_default_response_type", "true"),
    ]))
    .await;
    let location = reqwest::Url::parse(headers["location"].to_str().expect("ascii")).expect("a URL");
    let code_param: HashMap<_, _> = location.query_pairs().into_owned().collect();
    let (_, answer, _) = send(exchange(&code_param["code"])).await;
    assert!(answer["access_token"].is_string() && answer.get("expires_in").is_none(), "{answer}");

    let (_, wrong_secret, _) = send(env.http.get(env.sandbox.token_url()).query(&[
        ("client_id", MetaHandle::DEFAULT_APP_ID),
        ("client_secret", "nope"),
        ("redirect_uri", REDIRECT),
        ("code", "x"),
    ]))
    .await;
    assert_eq!(code(&wrong_secret).0, 1);
}

#[tokio::test]
async fn ad_accounts_page_until_next_is_absent_and_answer_only_id_without_fields() {
    let env = start(MetaConfig { ad_accounts: 7, ..MetaConfig::default() }).await;
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut next: Option<String> = None;
    loop {
        let request = match &next {
            // `next` links carry the token and every parameter: follow them as they are.
            Some(url) => env.http.get(url),
            None => env.get("/me/adaccounts", &[("limit", "3")]),
        };
        let (status, body, headers) = send(request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(headers.get("x-business-use-case-usage").is_none(), "not scoped to one account");
        pages += 1;
        for account in body["data"].as_array().expect("data") {
            assert_eq!(account.as_object().map(|o| o.len()), Some(1), "only id without fields: {account}");
            seen.push(account["id"].as_str().expect("id").to_owned());
        }
        assert!(body["paging"]["cursors"]["after"].is_string());
        match body["paging"]["next"].as_str() {
            Some(url) => next = Some(url.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, env.handle.ad_account_ids());

    let (_, body, _) = send(env.get(
        "/me/adaccounts",
        &[("fields", "id,account_id,name,account_status,currency,timezone_name,user_tasks,tos_accepted")],
    ))
    .await;
    let first = &body["data"][0];
    assert!(
        first["id"].as_str().is_some_and(|id| id == format!("act_{}", first["account_id"].as_str().unwrap_or("?")))
    );
    assert_eq!(first["account_status"], 1);
    assert_eq!(first["tos_accepted"], json!({"custom_audience_tos": 1}));
    assert!(first["user_tasks"].as_array().is_some_and(|t| t.contains(&json!("MANAGE"))));
    assert!(body["paging"].get("next").is_none(), "7 accounts fit in the default 25");

    let (_, body, _) = send(env.get("/me/adaccounts", &[("fields", "id,colour")])).await;
    assert_eq!(code(&body), (100, None));
    env.handle.set_account_status(&env.account(), 101);
    env.handle.set_account_assigned(&env.handle.ad_account_ids()[1], false);
    let (_, body, _) = send(env.get("/me/adaccounts", &[("fields", "account_status")])).await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(6));
    assert_eq!(body["data"][0]["account_status"], 101);
    let added = env.handle.add_ad_account("Eighth");
    let (_, body, _) = send(env.get(&format!("/{added}"), &[("fields", "name")])).await;
    assert_eq!(body, json!({"name": "Eighth", "id": added}));
}

#[tokio::test]
async fn one_audience_is_found_among_five_thousand_through_short_and_empty_pages() {
    let env = start(MetaConfig {
        max_customer_file_audiences: 10_000,
        page_cap: Some(37),
        empty_page_every: Some(5),
        ..MetaConfig::default()
    })
    .await;
    let account = env.account();
    for i in 0..4_998 {
        env.handle.create_audience(&account, &format!("Audience {i}")).expect("seeded");
    }
    // Names are not unique: two audiences called "Target", one created with a JSON body.
    let first = env.create_audience("Target").await;
    let (status, body, _) = send(env.http.post(env.url(&format!("/{account}/customaudiences"))).json(&json!({
        "name": "Target", "subtype": "CUSTOM", "description": "second", "retention_days": 30,
        "access_token": env.token,
    })))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let second = body["id"].as_str().expect("id").to_owned();
    assert_ne!(first, second);

    let mut found = Vec::new();
    let (mut total, mut pages, mut empty) = (0, 0, 0);
    let mut after: Option<String> = None;
    loop {
        let mut query = vec![("fields", "id,name"), ("limit", "500")];
        if let Some(cursor) = &after {
            query.push(("after", cursor));
        }
        let (status, body, _) = send(env.get(&format!("/{account}/customaudiences"), &query)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        let data = body["data"].as_array().expect("data");
        assert!(data.len() <= 37);
        empty += usize::from(data.is_empty());
        total += data.len();
        found.extend(data.iter().filter(|a| a["name"] == "Target").map(|a| a["id"].as_str().unwrap_or("").to_owned()));
        match body["paging"]["next"].as_str() {
            Some(_) => after = Some(body["paging"]["cursors"]["after"].as_str().expect("after").to_owned()),
            None => break,
        }
        assert!(pages < 1_000);
    }
    assert_eq!(total, 5_000);
    assert!(empty > 0, "some pages were empty with next present");
    assert_eq!(found, vec![first.clone(), second.clone()]);
    assert_eq!(env.handle.find_audiences(&account, "Target"), found);
    let (_, body) = env.read(&second, "name,description,retention_days,subtype").await;
    assert_eq!(
        body,
        json!({"name": "Target", "description": "second", "retention_days": 30, "subtype": "CUSTOM", "id": second})
    );
    let log = env.handle.request_log();
    assert!(log.iter().any(|r| r.body_format == Some(audience_sandbox::meta::BodyFormat::Json)));
}

#[tokio::test]
async fn audience_cap_and_create_parameters_are_enforced() {
    let env = start(MetaConfig { max_customer_file_audiences: 2, ..MetaConfig::default() }).await;
    let path = format!("/{}/customaudiences", env.account());
    let (_, body, _) = send(env.post(&path, &[("subtype", "CUSTOM")])).await;
    assert_eq!(code(&body), (100, None), "name is required");
    let (_, body, _) = send(env.post(&path, &[("name", "A")])).await;
    assert_eq!(code(&body), (100, None), "subtype is required");
    let (_, body, _) = send(env.post(&path, &[("name", "A"), ("subtype", "CUSTOM"), ("retention_days", "181")])).await;
    assert_eq!(code(&body), (100, None));
    let (_, body, _) =
        send(env.post(&path, &[("name", "A"), ("subtype", "CUSTOM"), ("customer_file_source", "X")])).await;
    assert_eq!(code(&body), (100, None));
    env.create_audience("A").await;
    let id = env.create_audience("A").await;
    let (status, body, _) = send(env.post(&path, &[("name", "C"), ("subtype", "CUSTOM")])).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, (100, None)));
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("limit of 2")), "{body}");
    let (_, body) = env.read(&id, "").await;
    assert_eq!(body, json!({"id": id}), "empty fields answer only id");
}

#[tokio::test]
async fn multi_key_rows_with_bad_values_are_counted_sampled_and_not_added() {
    let env = start(MetaConfig::default()).await;
    let audience = env.create_audience("Newsletter").await;
    let upper = hashed(0xab_cdef).to_uppercase();
    let short = &hashed(8)[..40];
    let payload = json!({
        "schema": ["EMAIL", "PHONE", "FN", "MADID"],
        "is_raw": true,
        "data": [
            [MARY, PHONE, hashed(1), ""],
            [hashed(2), "", "", MADID],
            ["", hashed(3), hashed(4), ""],
            [upper, "", "", ""],
            [hashed(5), short, "", ""],
            [hashed(6), "", "", MADID.to_uppercase()],
            ["", "", "", ""],
        ],
    });
    let (status, body) = env.users(&audience, false, &payload, &session(11, 1, true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["audience_id"], audience.as_str());
    assert_eq!(body["session_id"], 11);
    assert_eq!(body["num_received"], 7);
    assert_eq!(body["num_invalid_entries"], 4);
    let samples = body["invalid_entry_samples"].as_object().expect("a map of value -> reason");
    for bad in [upper.as_str(), short, &MADID.to_uppercase(), ""] {
        assert!(samples.get(bad).is_some_and(Value::is_string), "{bad} in {samples:?}");
    }
    let expected: HashSet<MemberRow> = [
        row(&[("EMAIL", MARY), ("PHONE", PHONE), ("FN", &hashed(1))]),
        row(&[("EMAIL", &hashed(2)), ("MADID", MADID)]),
        row(&[("PHONE", &hashed(3)), ("FN", &hashed(4))]),
    ]
    .into_iter()
    .collect();
    assert_eq!(env.handle.members(&audience).into_iter().collect::<HashSet<_>>(), expected);

    // A row of the wrong length fails the whole call; nothing changes.
    let bad = json!({"schema": ["EMAIL", "PHONE"], "data": [[hashed(9), ""], [hashed(10)]]});
    let (status, body) = env.users(&audience, false, &bad, &session(12, 1, true)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, (100, None)));
    let unknown = json!({"schema": ["EMAIL", "SHOE_SIZE"], "data": [[hashed(9), "42"]]});
    assert_eq!(code(&env.users(&audience, false, &unknown, &session(13, 1, true)).await.1), (100, None));
    assert_eq!(env.handle.members(&audience).len(), 3);

    // Removing by one identifier takes out the person added with several.
    let remove = json!({"schema": "EMAIL_SHA256", "data": [MARY]});
    let (status, body) = env.users(&audience, true, &remove, &session(14, 1, true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.handle.members(&audience).len(), 2);
    // DELETE with a JSON body works too (Meta documents form fields; JSON is accepted).
    let (status, body, _) = send(env.http.delete(env.url(&format!("/{audience}/users"))).json(&json!({
        "access_token": env.token,
        "payload": {"schema": "MOBILE_ADVERTISER_ID", "data": [MADID]},
        "session": session(15, 1, true),
    })))
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.handle.members(&audience), vec![row(&[("FN", &hashed(4)), ("PHONE", &hashed(3))])]);
    assert_eq!(env.handle.max_rows_per_request(), 7);
}

#[tokio::test]
async fn more_than_ten_thousand_rows_is_code_100() {
    let env = start(MetaConfig::default()).await;
    let audience = env.create_audience("Big").await;
    let rows: Vec<String> = (0..10_001).map(hashed).collect();
    let (status, body) =
        env.users(&audience, false, &json!({"schema": "EMAIL_SHA256", "data": rows}), &session(1, 1, true)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, (100, None)), "{body}");
    let rows: Vec<String> = (0..10_000).map(hashed).collect();
    let (status, body) =
        env.users(&audience, false, &json!({"schema": "EMAIL_SHA256", "data": rows}), &session(2, 1, true)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(env.handle.max_rows_per_request(), 10_001);

    let (_, body) = env
        .read(&audience, "approximate_count_lower_bound,approximate_count_upper_bound,delivery_status,operation_status")
        .await;
    assert_eq!(body["approximate_count_lower_bound"], 10_000);
    assert_eq!(body["approximate_count_upper_bound"], 11_000);
    assert_eq!(body["delivery_status"]["code"], 200);
    assert_eq!(body["operation_status"]["code"], 200);
}

#[tokio::test]
async fn sessions_count_in_order_close_on_the_last_batch_and_time_out_after_90_minutes() {
    let env = start(MetaConfig::default()).await;
    let audience = env.create_audience("Sessions").await;
    let batch =
        |from: usize| json!({"schema": "EMAIL_SHA256", "data": (from..from + 3).map(hashed).collect::<Vec<_>>()});

    let (_, body) = env.users(&audience, false, &batch(0), &session(7, 2, false)).await;
    assert_eq!(code(&body), (2650, Some(1_870_147)), "a session starts at batch_seq 1");
    let (_, body) = env.users(&audience, false, &batch(0), &session(7, 1, false)).await;
    assert_eq!(body["num_received"], 3);
    let (_, body) = env.users(&audience, false, &batch(3), &session(7, 3, false)).await;
    assert_eq!(code(&body), (100, None), "batch 3 before batch 2");
    let (_, body) = env.users(&audience, false, &batch(3), &session(7, 2, false)).await;
    assert_eq!(body["num_received"], 6, "cumulative in the session");
    let (_, body) = env.users(&audience, false, &batch(6), &session(7, 3, true)).await;
    assert_eq!(body["num_received"], 9);
    let (_, body) = env.users(&audience, false, &batch(9), &session(7, 4, false)).await;
    assert_eq!(code(&body), (2650, Some(1_870_159)), "the session is finished");
    let (_, body) = env.users(&audience, true, &batch(0), &session(7, 4, false)).await;
    assert_eq!(code(&body), (100, None), "a session keeps its operation");

    // A session without a last batch closes 90 minutes after its first one.
    let (_, body) = env.users(&audience, false, &batch(20), &session(8, 1, false)).await;
    assert_eq!(body["num_received"], 3);
    env.handle.advance_clock(Duration::from_secs(91 * 60));
    let (_, body) = env.users(&audience, false, &batch(23), &session(8, 2, false)).await;
    assert_eq!(code(&body), (2650, Some(1_870_158)));
    assert_eq!(env.handle.members(&audience).len(), 12, "the late batch was dropped");

    let (_, body) = env.users(&audience, false, &batch(30), &Value::Null).await;
    assert_eq!(code(&body), (100, None), "session is required by default");
    let sessions = env.handle.sessions(&audience);
    assert_eq!(sessions.len(), 2);
    assert_eq!((sessions[0].session_id, sessions[0].batches, sessions[0].finished), (7, 3, true));
    assert_eq!(sessions[0].operation, SessionOperation::Add);
    assert!(sessions[1].timed_out);
}

#[tokio::test]
async fn without_required_session_each_call_is_its_own_session() {
    let env = start(MetaConfig { require_session: false, ..MetaConfig::default() }).await;
    let audience = env.create_audience("Loose").await;
    let payload = json!({"schema": "EXTERN_ID", "data": ["crm-1", "crm-2", ""]});
    let form = [("payload", payload.to_string())];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (status, body, _) = send(env.post(&format!("/{audience}/users"), &form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["session_id"].as_i64().is_some_and(|id| id > 0));
    assert_eq!((body["num_received"].clone(), body["num_invalid_entries"].clone()), (json!(3), json!(1)));
    assert_eq!(env.handle.members(&audience), vec![row(&[("EXTERN_ID", "crm-1")]), row(&[("EXTERN_ID", "crm-2")])]);
}

#[tokio::test]
async fn delayed_membership_lands_when_the_sandbox_clock_gets_there() {
    let env = start(MetaConfig { membership_delay: Duration::from_secs(600), ..MetaConfig::default() }).await;
    let audience = env.create_audience("Slow").await;
    let (_, body) = env.read(&audience, "operation_status").await;
    assert_eq!(body["operation_status"]["code"], 410, "nothing uploaded yet");
    let rows: Vec<String> = (0..150).map(hashed).collect();
    env.users(&audience, false, &json!({"schema": "EMAIL_SHA256", "data": rows}), &session(1, 1, true)).await;
    assert!(env.handle.members(&audience).is_empty());
    let (_, body) = env.read(&audience, "operation_status,approximate_count_lower_bound").await;
    assert_eq!(body["operation_status"]["code"], 441);
    assert_eq!(body["approximate_count_lower_bound"], -1);
    env.handle.advance_clock(Duration::from_secs(601));
    assert_eq!(env.handle.members(&audience).len(), 150);
    let (_, body) =
        env.read(&audience, "operation_status,approximate_count_lower_bound,approximate_count_upper_bound").await;
    assert_eq!(body["operation_status"]["code"], 200);
    assert_eq!(
        (body["approximate_count_lower_bound"].clone(), body["approximate_count_upper_bound"].clone()),
        (json!(150), json!(160))
    );
}

#[tokio::test]
async fn usersreplace_swaps_members_at_its_last_batch_and_blocks_users_meanwhile() {
    let env = start(MetaConfig::default()).await;
    let audience = env.create_audience("Replace").await;
    let emails = |from: usize, n: usize| json!({"schema": "EMAIL_SHA256", "data": (from..from + n).map(hashed).collect::<Vec<_>>()});
    env.users(&audience, false, &emails(0, 5), &session(1, 1, true)).await;
    let replace = |payload: Value, session: Value| {
        let (payload, session) = (payload.to_string(), session.to_string());
        send(env.post(&format!("/{audience}/usersreplace"), &[("payload", &payload), ("session", &session)]))
    };
    let (status, body, _) = replace(emails(100, 2), session(9, 1, false)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = env.read(&audience, "operation_status").await;
    assert_eq!(body["operation_status"]["code"], 414);
    let (_, body) = env.users(&audience, false, &emails(200, 1), &session(2, 1, true)).await;
    assert_eq!(code(&body), (2650, Some(1_870_145)));
    assert_eq!(env.handle.members(&audience).len(), 5, "old members until the replace ends");
    let (_, body, _) = replace(emails(102, 2), session(9, 2, true)).await;
    assert_eq!(body["num_received"], 4);
    let members: Vec<String> = env.handle.members(&audience).iter().map(|r| r["EMAIL"].clone()).collect();
    let mut expected: Vec<String> = (100..104).map(hashed).collect();
    expected.sort();
    assert_eq!(members, expected);
    let (_, body, _) = replace(emails(0, 1), session(9, 3, true)).await;
    assert_eq!(code(&body), (2650, Some(1_870_159)));
}

#[tokio::test]
async fn usage_header_rises_to_100_then_80003_until_the_window_frees() {
    let env =
        start(MetaConfig { usage: UsageBudget::fixed(10, Duration::from_secs(3600)), ..MetaConfig::default() }).await;
    let account = env.account();
    let number = account.trim_start_matches("act_").to_owned();
    let usage = |headers: &HeaderMap| -> Value {
        let raw = headers.get("x-business-use-case-usage").expect("usage header").to_str().expect("ascii");
        let parsed: Value = serde_json::from_str(raw).expect("JSON");
        parsed[number.as_str()][0].clone()
    };
    let audience = env.handle.create_audience(&account, "Budget").expect("seeded");
    for i in 1..=10 {
        let (status, body, headers) = send(env.get(&format!("/{audience}"), &[("fields", "name")])).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let usage = usage(&headers);
        assert_eq!(usage["type"], "custom_audience");
        assert_eq!(usage["call_count"], i * 10);
        // At 100 % the first call leaves the window in just under an hour: 60 minutes rounded up.
        let regain = usage["estimated_time_to_regain_access"].as_u64().expect("minutes");
        assert!(if i == 10 { (1..=60).contains(&regain) } else { regain == 0 }, "{usage}");
        assert_eq!(usage["ads_api_access_tier"], "standard_access");
        let account_usage: Value =
            serde_json::from_str(headers["x-ad-account-usage"].to_str().expect("ascii")).expect("JSON");
        assert!(account_usage["acc_id_util_pct"].is_number() && account_usage["reset_time_duration"].is_u64());
    }
    let (status, body, headers) = send(env.get(&format!("/{account}/customaudiences"), &[])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(code(&body), (80_003, Some(2_446_079)));
    assert!(body["error"]["fbtrace_id"].is_string());
    let throttled = usage(&headers);
    assert_eq!(throttled["call_count"], 100);
    assert!(throttled["estimated_time_to_regain_access"].as_u64().is_some_and(|m| m > 0));
    assert_eq!(env.handle.throttled_count(), 1);
    assert_eq!(env.handle.max_usage_seen(&account), 100);
    // Other accounts have their own budget.
    let other = env.handle.ad_account_ids()[1].clone();
    assert_eq!(send(env.get(&format!("/{other}/customaudiences"), &[])).await.0, StatusCode::OK);

    env.handle.advance_clock(Duration::from_secs(3601));
    let (status, _, headers) = send(env.get(&format!("/{audience}"), &[])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(usage(&headers)["call_count"], 10);
    assert_eq!(env.handle.usage(&account).map(|u| u.calls_in_window), Some(1));
    assert_eq!(env.handle.max_requests_in_window(&account, Duration::from_secs(60)), 11);
}

#[tokio::test]
async fn custom_audience_terms_gate_creation_and_member_edits() {
    let env = start(MetaConfig::default()).await;
    let account = env.account();
    let audience = env.create_audience("Before").await;
    env.handle.set_tos_accepted(&account, false);
    let (_, body, _) = send(env.get(&format!("/{account}"), &[("fields", "tos_accepted,name")])).await;
    assert!(body.get("tos_accepted").is_none(), "{body}");
    let (status, body, _) =
        send(env.post(&format!("/{account}/customaudiences"), &[("name", "X"), ("subtype", "CUSTOM")])).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, (200, Some(1_870_090))));
    assert_eq!(body["error"]["error_user_title"], "Custom Audience Terms Not Accepted");
    let number = account.trim_start_matches("act_");
    let link = format!("https://business.facebook.com/ads/manage/customaudiences/tos/?act={number}");
    assert!(body["error"]["error_user_msg"].as_str().is_some_and(|m| m.contains(&link)), "{body}");
    let payload = json!({"schema": "EMAIL_SHA256", "data": [MARY]});
    let (_, body) = env.users(&audience, false, &payload, &session(1, 1, true)).await;
    assert_eq!(code(&body), (200, Some(1_870_090)));
    env.handle.set_tos_accepted(&account, true);
    assert_eq!(env.users(&audience, false, &payload, &session(1, 1, true)).await.0, StatusCode::OK);
}

#[tokio::test]
async fn tokens_and_permissions_fail_with_meta_codes() {
    let env = start(MetaConfig::default()).await;
    let account = env.account();
    let path = format!("/{account}/customaudiences");
    let with = |token: &str| env.http.get(env.url(&path)).query(&[("access_token", token)]);
    assert_eq!(code(&send(with("EAAnothing")).await.1), (190, Some(467)));
    assert_eq!(code(&send(env.http.get(env.url(&path))).await.1), (104, None));

    let read_only = env.handle.issue_token(&["ads_read"]);
    assert_eq!(send(with(&read_only)).await.0, StatusCode::OK);
    let form = [("name", "X"), ("subtype", "CUSTOM"), ("access_token", read_only.as_str())];
    let (status, body, _) = send(env.http.post(env.url(&path)).form(&form)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, (294, None)));
    let nothing = env.handle.issue_token(&[]);
    assert_eq!(code(&send(with(&nothing)).await.1), (200, None));
    // Bearer headers work as well as the parameter.
    let (status, _, _) = send(env.http.get(env.url(&path)).bearer_auth(&env.token)).await;
    assert_eq!(status, StatusCode::OK);

    env.handle.revoke_token(&env.token);
    let (status, body, _) = send(with(&env.token)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, (190, Some(460))));
    env.handle.expire_token(&read_only);
    assert_eq!(code(&send(with(&read_only)).await.1), (190, Some(463)));
    assert_eq!(env.handle.count_error(190), 3);
}

#[tokio::test]
async fn flagged_deleted_and_foreign_audiences() {
    let env = start(MetaConfig::default()).await;
    let audience = env.create_audience("Health tips").await;
    env.handle.set_audience_flagged(&audience, true);
    let payload = json!({"schema": "EMAIL_SHA256", "data": [MARY]});
    let (status, body) = env.users(&audience, false, &payload, &session(1, 1, true)).await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, (100, Some(1_713_230))));
    let (_, body) = env.read(&audience, "operation_status,delivery_status,fields_violating_integrity_policy").await;
    assert_eq!(body["operation_status"]["code"], 471);
    assert_eq!(body["fields_violating_integrity_policy"], json!(["name"]));

    // Deleted behind the client's back, then through the API.
    assert!(env.handle.delete_audience(&audience));
    let (status, body) = env.read(&audience, "name").await;
    assert_eq!((status, code(&body)), (StatusCode::BAD_REQUEST, (100, Some(33))));
    assert_eq!(body["error"]["type"], "GraphMethodException");
    let (_, body) = env.users(&audience, false, &payload, &session(2, 1, true)).await;
    assert_eq!(code(&body), (100, Some(33)));
    let other = env.create_audience("Other").await;
    let (status, body, _) =
        send(env.http.delete(env.url(&format!("/{other}"))).query(&[("access_token", &env.token)])).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"success": true})));
    assert_eq!(code(&env.read(&other, "").await.1), (100, Some(33)));

    // An audience in an account the user is no longer assigned to is invisible.
    let foreign = env.create_audience("Foreign").await;
    env.handle.set_account_assigned(&env.account(), false);
    assert_eq!(code(&env.read(&foreign, "name").await.1), (100, Some(33)));
    assert_eq!(code(&env.read("12345", "name").await.1), (100, Some(33)));
}

#[tokio::test]
async fn forced_faults_versions_and_trace_ids() {
    let env = start(MetaConfig::default()).await;
    env.handle.fail_next(2, MetaFault::TemporarilyBlocked);
    for _ in 0..2 {
        let (status, body, _) = send(env.get("/me/adaccounts", &[])).await;
        assert_eq!((status, code(&body).0), (StatusCode::BAD_REQUEST, 368));
    }
    assert_eq!(send(env.get("/me/adaccounts", &[])).await.0, StatusCode::OK);
    env.handle.fail_next(1, MetaFault::HttpStatus(503));
    let (status, body, headers) = send(env.get("/me/adaccounts", &[])).await;
    assert_eq!((status, code(&body).0), (StatusCode::SERVICE_UNAVAILABLE, 2));
    assert_eq!(body["error"]["is_transient"], true);
    assert_eq!(body["error"]["fbtrace_id"].as_str(), headers["x-fb-trace-id"].to_str().ok());
    env.handle.fail_next(1, MetaFault::Service);
    assert_eq!(send(env.get("/me/adaccounts", &[])).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    env.handle.fail_next(1, MetaFault::TokenRevoked);
    assert_eq!(code(&send(env.get("/me/adaccounts", &[])).await.1), (190, Some(460)));
    assert_eq!(send(env.get("/me/adaccounts", &[])).await.0, StatusCode::OK, "a forced 190 does not revoke");

    let account = env.account();
    env.handle.fail_next(1, MetaFault::AdsManagementThrottle);
    let (_, body, headers) = send(env.get(&format!("/{account}/customaudiences"), &[])).await;
    assert_eq!(code(&body).0, 80_004);
    assert!(headers.get("x-business-use-case-usage").is_some());

    let (_, _, headers) =
        send(env.http.get(format!("{}/v22.0/me", env.sandbox.base_url())).query(&[("access_token", &env.token)])).await;
    assert_eq!(headers["facebook-api-version"], "v22.0");
    let (_, body, _) =
        send(env.http.get(format!("{}/v19.0/me", env.sandbox.base_url())).query(&[("access_token", &env.token)])).await;
    assert_eq!(code(&body).0, 2635);
    let versions: Vec<u32> = env.handle.api_versions_used().into_iter().collect();
    assert_eq!(versions, vec![22, 25]);
    let (_, body) = env.read(&env.create_audience("v").await, "approximate_count").await;
    assert_eq!(code(&body).0, 100, "approximate_count is gone from v25");
    let log = env.handle.request_log();
    assert!(log.iter().filter(|r| r.error_code == Some(368)).all(|r| r.fault.is_some()));
}

#[tokio::test]
async fn control_api_issues_tokens_sets_faults_and_shows_members() {
    let env = start(MetaConfig::default()).await;
    let base = env.sandbox.base_url();
    let (status, token, _) =
        send(env.http.post(format!("{base}/_sandbox/tokens")).json(&json!({"kind": "system_user"}))).await;
    assert_eq!(status, StatusCode::OK, "{token}");
    assert!(token.get("expires_in").is_none());
    let token = token["access_token"].as_str().expect("token").to_owned();
    let (status, _, _) = send(env.http.get(env.url("/me/adaccounts")).query(&[("access_token", &token)])).await;
    assert_eq!(status, StatusCode::OK);

    let audience = env.create_audience("Fans").await;
    env.users(&audience, false, &json!({"schema": "EMAIL_SHA256", "data": [MARY, PHONE]}), &session(3, 1, true)).await;
    let (_, members, _) = send(env.http.get(format!("{base}/_sandbox/audiences/{audience}/members"))).await;
    assert_eq!(members["count"], 2);
    assert_eq!(members["members"][0], json!({"EMAIL": PHONE}));
    let (_, sessions, _) = send(env.http.get(format!("{base}/_sandbox/audiences/{audience}/sessions"))).await;
    assert_eq!(sessions[0]["num_received"], 2);

    let (status, echoed, _) = send(
        env.http
            .post(format!("{base}/_sandbox/faults"))
            .json(&json!({"fail_next": 1, "fault": "custom", "code": 613, "message": "burst"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{echoed}");
    assert_eq!((echoed["fault"].clone(), echoed["code"].clone()), (json!("custom"), json!(613)));
    assert_eq!(code(&send(env.get("/me/adaccounts", &[])).await.1).0, 613);

    let account = env.account();
    let (status, _, _) =
        send(env.http.post(format!("{base}/_sandbox/ad_accounts/{account}/tos")).json(&json!({"accepted": false})))
            .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, summary, _) = send(env.http.get(format!("{base}/_sandbox/summary"))).await;
    assert_eq!(summary["ad_accounts"][0]["tos_accepted"], false);
    assert_eq!(summary["ad_accounts"][0]["audiences"][0]["members"], 2);
    let (_, clock, _) =
        send(env.http.post(format!("{base}/_sandbox/clock/advance")).json(&json!({"seconds": 120}))).await;
    assert_eq!(clock["offset_secs"], 120);
    let (status, _, _) =
        send(env.http.post(format!("{base}/_sandbox/audiences/{audience}/flag")).json(&json!({}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(env.handle.audience(&audience).map(|a| a.operation_status), Some(471));

    let (_, log, _) =
        send(env.http.get(format!("{base}/_sandbox/requests")).query(&[("ad_account_id", &account)])).await;
    assert!(log.as_array().is_some_and(|l| !l.is_empty() && l.iter().all(|r| r["ad_account_id"] == account.as_str())));
    let notes = env.http.get(format!("{base}/_sandbox/notes.md")).send().await.expect("answered");
    assert!(notes.text().await.expect("text").contains("Marketing API"));
    let (_, index, _) = send(env.http.get(format!("{base}/_sandbox/"))).await;
    assert!(index["routes"].as_object().is_some_and(|r| r.len() > 15));
}
