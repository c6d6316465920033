//! A sync's users from its ledger: one user by key, the users of a state page by page, and
//! re-driving errored or chosen users; only the caller's syncs.

use std::collections::BTreeSet;
use std::time::Instant;

use audience_store::{Claim, Entry, ReadyUser, UserOutcome, UserResult};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::{Server, server, server_on_postgres, users};

/// Every user of `state`, `limit` at a time: the keys in the order listed.
async fn all_users(s: &Server, key: &str, sync: &str, state: &str, limit: u32) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10_000 {
        let url = match &cursor {
            Some(c) => format!("/v1/syncs/{sync}/users?state={state}&limit={limit}&cursor={c}"),
            None => format!("/v1/syncs/{sync}/users?state={state}&limit={limit}"),
        };
        let page = s.get(&url, key).await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        let items = page.body["users"].as_array().expect("users");
        assert!(items.len() <= limit as usize);
        assert!(items.iter().all(|u| u["state"] == state), "{items:?}");
        keys.extend(items.iter().map(|u| u["key"].as_str().expect("key").to_string()));
        match &page.body["next_cursor"] {
            Value::Null => return keys,
            Value::String(next) => cursor = Some(next.clone()),
            other => panic!("next_cursor {other:?}"),
        }
    }
    panic!("the listing never ended");
}

async fn ledger_flow(s: Server) {
    let (_, key) = s.workspace("Acme").await;
    let (_, other_key) = s.workspace("Globex").await;
    let connection = s.connection(&key).await;
    let sync = s.sync(&key, &connection, "Churn risk").await;
    let mut batch = users("u", 5);
    batch.push(json!({"key": "bad/1", "identifiers": [{"kind": "email", "value": "bob@"}]}));
    let intake = s.post(&format!("/v1/syncs/{sync}/users"), &key, json!({"users": batch})).await;
    assert_eq!(intake.status, StatusCode::OK, "{intake:?}");
    let counts = s.settled(&key, &sync).await;
    assert_eq!((counts["synced"].as_u64(), counts["users"].as_u64()), (Some(5), Some(6)), "{counts}");

    // One user: where they are, what was sent (hashed, never the raw email), what happened.
    let u1 = s.get(&format!("/v1/syncs/{sync}/users/u1"), &key).await;
    assert_eq!(u1.status, StatusCode::OK, "{u1:?}");
    assert_eq!((u1.body["state"].as_str(), u1.body["attempts"].as_u64()), (Some("synced"), Some(1)), "{u1:?}");
    assert_eq!(u1.body["entries"], 1);
    assert!(u1.body["done_at"].is_i64() && u1.body["last_attempt_at"].is_i64(), "{u1:?}");
    assert!(u1.body["sent"].is_object(), "what was sent: {u1:?}");
    assert!(!u1.text.contains("u1@example.com"), "the raw identifier is not kept: {}", u1.text);
    let kinds: Vec<&str> = u1.body["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["synced", "sent", "entered"], "{u1:?}");
    // A key with a slash, URL-encoded; not synced, with the reason and nothing sent.
    let bad = s.get(&format!("/v1/syncs/{sync}/users/bad%2F1"), &key).await;
    assert_eq!(bad.status, StatusCode::OK, "{bad:?}");
    assert_eq!(bad.body["state"], "not_synced");
    assert!(bad.body["last_error"].as_str().is_some_and(|r| !r.is_empty()), "{bad:?}");
    assert!(bad.body["sent"].is_null(), "{bad:?}");
    s.get(&format!("/v1/syncs/{sync}/users/nobody"), &key).await.refused(StatusCode::NOT_FOUND, "not_found", "user");

    // Listings by state, paged.
    for limit in [1, 2, 100] {
        let synced = all_users(&s, &key, &sync, "synced", limit).await;
        assert_eq!(synced.iter().collect::<BTreeSet<_>>().len(), 5, "each once, limit {limit}: {synced:?}");
    }
    assert_eq!(all_users(&s, &key, &sync, "not_synced", 10).await, ["bad/1"]);
    assert!(all_users(&s, &key, &sync, "errored", 10).await.is_empty());
    let page = s.get(&format!("/v1/syncs/{sync}/users?state=synced&limit=2"), &key).await;
    let cursor = page.body["next_cursor"].as_str().expect("a next page").to_string();
    s.get(&format!("/v1/syncs/{sync}/users?state=errored&cursor={cursor}"), &key).await.refused(
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
        "same `state`",
    );
    s.get(&format!("/v1/syncs/{sync}/users?state=synced&cursor=zz"), &key).await.refused(
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
        "start again",
    );
    s.get(&format!("/v1/syncs/{sync}/users"), &key).await.refused(StatusCode::BAD_REQUEST, "invalid_request", "state");
    s.get(&format!("/v1/syncs/{sync}/users?state=gone"), &key).await.refused(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "errored",
    );
    s.get(&format!("/v1/syncs/{sync}/users?state=synced&limit=0"), &key).await.refused(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        "1 to 1000",
    );

    // Another workspace sees none of it.
    for path in [
        format!("/v1/syncs/{sync}/users/u1"),
        format!("/v1/syncs/{sync}/users?state=synced"),
        "/v1/syncs/sync_nope/users/u1".to_string(),
    ] {
        s.get(&path, &other_key).await.refused(StatusCode::NOT_FOUND, "not_found", "sync");
    }
    s.post(&format!("/v1/syncs/{sync}/users/retry"), &other_key, json!({"state": "errored"})).await.refused(
        StatusCode::NOT_FOUND,
        "not_found",
        "sync",
    );

    // Re-driving chosen users: synced ones are sent again; others are skipped.
    let retry =
        s.post(&format!("/v1/syncs/{sync}/users/retry"), &key, json!({"keys": ["u1", "bad/1", "nobody"]})).await;
    assert_eq!(retry.status, StatusCode::OK, "{retry:?}");
    assert_eq!((retry.body["retried"].as_u64(), retry.body["skipped"].as_u64()), (Some(1), Some(2)), "{retry:?}");
    let counts = s.settled(&key, &sync).await;
    assert_eq!((counts["synced"].as_u64(), counts["entered"].as_u64()), (Some(6), Some(7)), "{counts}");
    let u1 = s.get(&format!("/v1/syncs/{sync}/users/u1"), &key).await;
    assert_eq!((u1.body["state"].as_str(), u1.body["entries"].as_u64()), (Some("synced"), Some(2)), "{u1:?}");

    // Errored users (made errored here through the store while the sync is paused) are
    // re-driven and delivered once the sync resumes.
    let paused = s.post(&format!("/v1/syncs/{sync}/pause"), &key, json!({})).await;
    assert_eq!(paused.status, StatusCode::OK, "{paused:?}");
    let intake = s.post(&format!("/v1/syncs/{sync}/users"), &key, json!({"users": users("e", 3)})).await;
    assert_eq!(intake.status, StatusCode::OK, "{intake:?}");
    let store = s.engine.store();
    // Past their flush time (200 ms), so due.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let claim = Claim {
        now_ms: audience_model::now_ms(),
        max: 10,
        expire_before_ms: i64::MIN,
        expired_reason: String::new(),
        lane_owner: None,
    };
    let claimed = store.claim_batch(&sync, claim).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let refused = claimed
        .iter()
        .map(|u| UserResult { key: u.key.clone(), outcome: UserOutcome::Errored("the partner was down".into()) })
        .collect();
    store.complete(&sync, refused).await.unwrap();
    let errored = all_users(&s, &key, &sync, "errored", 2).await;
    assert_eq!(errored.len(), 3);
    let e0 = s.get(&format!("/v1/syncs/{sync}/users/e0"), &key).await;
    assert_eq!(e0.body["last_error"], "the partner was down", "{e0:?}");
    let first = &e0.body["events"][0];
    assert_eq!((first["kind"].as_str(), first["detail"].as_str()), (Some("errored"), Some("the partner was down")));
    let retry = s.post(&format!("/v1/syncs/{sync}/users/retry"), &key, json!({"state": "errored"})).await;
    assert_eq!(retry.status, StatusCode::OK, "{retry:?}");
    assert_eq!((retry.body["retried"].as_u64(), retry.body["more"].as_bool()), (Some(3), Some(false)), "{retry:?}");
    assert_eq!(all_users(&s, &key, &sync, "pending", 10).await.len(), 3);
    let resumed = s.post(&format!("/v1/syncs/{sync}/resume"), &key, json!({})).await;
    assert_eq!(resumed.status, StatusCode::OK, "{resumed:?}");
    let counts = s.settled(&key, &sync).await;
    assert_eq!(
        (counts["synced"].as_u64(), counts["errored"].as_u64(), counts["users"].as_u64()),
        (Some(9), Some(3), Some(9)),
        "{counts}"
    );

    // Bad requests say what to send.
    for (body, words) in [
        (json!({}), "missing"),
        (json!({"state": "errored", "keys": ["u1"]}), "not both"),
        (json!({"state": "synced"}), "only `errored`"),
        (json!({"keys": []}), "1 to 1000"),
        (json!({"keys": [""]}), "blank"),
    ] {
        s.post(&format!("/v1/syncs/{sync}/users/retry"), &key, body).await.refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            words,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syncs_users_are_looked_up_listed_and_redriven_on_sqlite() {
    ledger_flow(server().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_syncs_users_are_looked_up_listed_and_redriven_on_postgres() {
    ledger_flow(server_on_postgres().await).await;
}

/// 100,000 users of a paused sync, entered through the store (the API's intake would take the
/// test minutes), are listed through the API 1,000 a page, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_users_are_paged_through_the_api() {
    let s = server().await;
    let (_, key) = s.workspace("Acme").await;
    let connection = s.connection(&key).await;
    let sync = s.sync(&key, &connection, "Big").await;
    let paused = s.post(&format!("/v1/syncs/{sync}/pause"), &key, json!({})).await;
    assert_eq!(paused.status, StatusCode::OK);
    const N: usize = 100_000;
    for chunk in 0..N / 10_000 {
        let ready = (0..10_000)
            .map(|i| ReadyUser { key: format!("k{:06}", chunk * 10_000 + i), payload: b"{}".to_vec() })
            .collect();
        let entry =
            Entry { ready, not_synced: Vec::new(), now_ms: audience_model::now_ms(), flush_ms: 0, skip_synced: false };
        s.engine.store().enter(&sync, entry).await.unwrap();
    }
    let started = Instant::now();
    let listed = all_users(&s, &key, &sync, "pending", 1_000).await;
    let took = started.elapsed();
    assert_eq!(listed.len(), N);
    assert_eq!(listed.iter().collect::<BTreeSet<_>>().len(), N, "no user twice");
    eprintln!("{N} users in pages of 1,000 through the API: {took:?}");
}

/// Users leave the partner's audience by key alone, with what was sent for them; the counts say
/// who is in the audience; a sync that skips re-entries does not send synced users again.
async fn removal_flow(s: Server) {
    let (_, key) = s.workspace("Acme").await;
    let (_, other_key) = s.workspace("Globex").await;
    let connection = s.connection(&key).await;
    let sync = s.sync(&key, &connection, "Churn risk").await;
    let intake = s.post(&format!("/v1/syncs/{sync}/users"), &key, json!({"users": users("u", 5)})).await;
    assert_eq!(intake.status, StatusCode::OK, "{intake:?}");
    let counts = s.settled(&key, &sync).await;
    assert_eq!(counts["in_audience"], 5, "{counts}");
    let account = s.sandbox.handle().ad_account_ids()[0].clone();
    let audience = s.sandbox.handle().find_customer_list(&account, "Churn risk").expect("audience made");
    assert_eq!(s.sandbox.handle().members(&audience).len(), 5);

    s.post(&format!("/v1/syncs/{sync}/users/remove"), &other_key, json!({"keys": ["u1"]})).await.refused(
        StatusCode::NOT_FOUND,
        "not_found",
        "sync",
    );
    let removed =
        s.post(&format!("/v1/syncs/{sync}/users/remove"), &key, json!({"keys": ["u1", "u2", "nobody", "u1"]})).await;
    assert_eq!(removed.status, StatusCode::ACCEPTED, "{removed:?}");
    assert_eq!(removed.body["removing"], 2, "{removed:?}");
    assert_eq!(removed.body["skipped"], json!([{"key": "nobody", "reason": "unknown"}]), "{removed:?}");
    let counts = s.settled(&key, &sync).await;
    assert_eq!(
        (counts["in_audience"].as_u64(), counts["removed"].as_u64(), counts["synced"].as_u64()),
        (Some(3), Some(2), Some(5)),
        "{counts}"
    );
    let members = s.sandbox.handle().members(&audience);
    assert_eq!(members.len(), 3, "the partner's list lost exactly the two: {members:?}");
    assert!(!members.contains(&hex::encode(sha2::Sha256::digest("u1@example.com"))));
    let u1 = s.get(&format!("/v1/syncs/{sync}/users/u1"), &key).await;
    assert_eq!(u1.body["state"], "removed", "{u1:?}");
    let kinds: Vec<&str> = u1.body["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds[..2], ["removed", "sent"], "{u1:?}");
    assert_eq!(all_users(&s, &key, &sync, "removed", 1).await.len(), 2);
    let again = s.post(&format!("/v1/syncs/{sync}/users/remove"), &key, json!({"keys": ["u1"]})).await;
    assert_eq!(again.body["skipped"][0]["reason"], "already_removed", "{again:?}");

    // A removed user who enters again is added again.
    let back = s.post(&format!("/v1/syncs/{sync}/users"), &key, json!({"users": users("u", 2)})).await;
    assert_eq!(back.status, StatusCode::OK, "{back:?}");
    let counts = s.settled(&key, &sync).await;
    assert_eq!(
        (counts["in_audience"].as_u64(), counts["removed"].as_u64()),
        (Some(4), Some(1)),
        "u2 stays out: {counts}"
    );
    assert_eq!(s.sandbox.handle().members(&audience).len(), 4);

    // Bad requests say what to send.
    for (body, words) in [(json!({"keys": []}), "1 to 10000"), (json!({"keys": [" "]}), "blank")] {
        s.post(&format!("/v1/syncs/{sync}/users/remove"), &key, body).await.refused(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            words,
        );
    }

    // Re-entry policy `skip`: synced users entering again are not sent again.
    let created = s
        .post(
            "/v1/syncs",
            &key,
            json!({"connection_id": connection, "account_id": account, "audience_name": "Loyal",
                   "match_fields": ["email"], "reentry": "skip"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    assert_eq!(created.body["reentry"], "skip");
    let skip = created.body["id"].as_str().unwrap().to_string();
    s.post(&format!("/v1/syncs/{skip}/users"), &key, json!({"users": users("v", 3)})).await;
    s.settled(&key, &skip).await;
    let again = s.post(&format!("/v1/syncs/{skip}/users"), &key, json!({"users": users("v", 3)})).await;
    assert_eq!((again.body["queued"].as_u64(), again.body["accepted"].as_u64()), (Some(0), Some(3)), "{again:?}");
    let counts = s.settled(&key, &skip).await;
    assert_eq!(
        (counts["already_in_audience"].as_u64(), counts["entered"].as_u64(), counts["synced"].as_u64()),
        (Some(3), Some(3), Some(3)),
        "{counts}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_removed_by_key_on_sqlite() {
    removal_flow(server().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_removed_by_key_on_postgres() {
    removal_flow(server_on_postgres().await).await;
}
