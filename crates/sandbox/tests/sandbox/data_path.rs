//! Ad accounts, customer lists and audiences over real HTTP.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::common::{hashed, send, start, unlimited};
use audience_sandbox::{ListType, SandboxConfig};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn ad_accounts_are_paged_until_the_bookmark_is_null() {
    let env = start(SandboxConfig { ad_accounts: 600, ..unlimited() }).await;
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut bookmark: Option<String> = None;
    loop {
        let mut request =
            env.get("/v5/ad_accounts").query(&[("page_size", "250"), ("include_shared_accounts", "true")]);
        if let Some(b) = &bookmark {
            request = request.query(&[("bookmark", b)]);
        }
        let (status, body) = send(request).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        for account in body["items"].as_array().expect("items") {
            seen.push(account["id"].as_str().expect("id").to_owned());
        }
        match body["bookmark"].as_str() {
            Some(b) => bookmark = Some(b.to_owned()),
            None => {
                assert!(body["bookmark"].is_null());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, env.handle.ad_account_ids());
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 600);
}

#[tokio::test]
async fn ad_account_has_the_spec_fields_and_default_page_size_is_25() {
    let env = start(SandboxConfig { ad_accounts: 30, ..unlimited() }).await;
    let (_, body) = send(env.get("/v5/ad_accounts")).await;
    let items = body["items"].as_array().expect("items");
    assert_eq!(items.len(), 25);
    assert!(body["bookmark"].is_string());
    let account = &items[0];
    assert!(account["id"].as_str().is_some_and(|id| id.bytes().all(|b| b.is_ascii_digit())));
    for field in ["name", "country", "currency"] {
        assert!(account[field].is_string(), "{field} in {account}");
    }
    assert!(account["owner"]["id"].is_string() && account["owner"]["username"].is_string());
    assert_eq!(account["permissions"], json!(["OWNER"]));
}

#[tokio::test]
async fn page_size_above_250_is_refused() {
    let env = start(unlimited()).await;
    let (status, body) = send(env.get("/v5/ad_accounts").query(&[("page_size", "251")])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["code"].is_i64() && body["message"].is_string());
}

#[tokio::test]
async fn customer_list_membership_follows_add_and_remove_exactly() {
    let env = start(unlimited()).await;
    let id = env.create_list("Newsletter", &["ann@example.com", "bob@example.com"]).await;
    let path = format!("/v5/ad_accounts/{}/customer_lists/{id}", env.account());

    let (status, body) =
        send(env.patch(&path, json!({"operation_type": "ADD", "records": format!("cid@example.com,{}", hashed(1))})))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        send(env.patch(&path, json!({"operation_type": "REMOVE", "records": "bob@example.com,nobody@example.com"})))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let expected: HashSet<String> =
        ["ann@example.com", "cid@example.com", &hashed(1)].into_iter().map(str::to_owned).collect();
    assert_eq!(env.handle.members(&id), expected);
    assert_eq!(body["num_batches"], 3);
    assert_eq!(body["num_uploaded_user_records"], 4);
    assert_eq!(body["num_removed_user_records"], 2);
    assert_eq!(body["type"], "customerlist");
    assert_eq!(body["ad_account_id"], env.account());
    assert!(body["exceptions"].is_object() && body["created_time"].is_u64());
    assert_eq!(body["status"], "TOO_SMALL");
}

#[tokio::test]
async fn customer_lists_can_be_listed_paged_and_fetched() {
    let env = start(unlimited()).await;
    let ids = [
        env.create_list("a", &["a@x.io"]).await,
        env.create_list("b", &["b@x.io"]).await,
        env.create_list("c", &["c@x.io"]).await,
    ];
    let path = format!("/v5/ad_accounts/{}/customer_lists", env.account());
    let (_, first) = send(env.get(&path).query(&[("page_size", "2")])).await;
    let bookmark = first["bookmark"].as_str().expect("more pages").to_owned();
    let (_, second) = send(env.get(&path).query(&[("page_size", "2"), ("bookmark", &bookmark)])).await;
    let listed: Vec<_> = first["items"]
        .as_array()
        .into_iter()
        .chain(second["items"].as_array())
        .flatten()
        .map(|l| l["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(listed, ids);
    assert!(second["bookmark"].is_null());

    let (status, one) = send(env.get(&format!("{path}/{}", ids[1]))).await;
    assert_eq!((status, one["name"].clone()), (StatusCode::OK, json!("b")));
    assert_eq!(env.handle.find_customer_list(&env.account(), "c"), Some(ids[2].clone()));
}

#[tokio::test]
async fn invalid_records_are_refused_naming_their_position() {
    let env = start(unlimited()).await;
    let account = env.account();
    let create = format!("/v5/ad_accounts/{account}/customer_lists");

    let (status, body) = send(
        env.post(&create, json!({"name": "n", "records": "ann@example.com,Bob@Example.com", "list_type": "EMAIL"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains("position 2") && !message.contains("Bob@Example.com"), "{message}");

    let (status, body) = send(
        env.post(&create, json!({"name": "m", "records": "6d92078a-8246-4ba4-ae5b-76104861e7dc", "list_type": "MAID"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("hashed"));

    let (status, _) = send(env.post(&create, json!({"name": "m", "records": hashed(7), "list_type": "MAID"}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(env.handle.find_customer_list(&account, "n"), None);
}

#[tokio::test]
async fn empty_records_are_refused() {
    let env = start(unlimited()).await;
    let path = format!("/v5/ad_accounts/{}/customer_lists", env.account());
    let (status, _) = send(env.post(&path, json!({"name": "n", "records": ""}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn more_records_than_the_cap_are_refused_and_logged() {
    let env = start(unlimited()).await;
    let id = env.create_list("big", &["seed@example.com"]).await;
    let path = format!("/v5/ad_accounts/{}/customer_lists/{id}", env.account());
    let records = |n: usize| (0..n).map(hashed).collect::<Vec<_>>().join(",");

    let (status, body) = send(env.patch(&path, json!({"operation_type": "ADD", "records": records(1901)}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap_or_default().contains("1900"), "{body}");
    assert_eq!(env.handle.members(&id).len(), 1);

    let (status, _) = send(env.patch(&path, json!({"operation_type": "ADD", "records": records(1900)}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(env.handle.members(&id).len(), 1901);
    assert_eq!(env.handle.max_records_per_request(), 1901);
}

#[tokio::test]
async fn unknown_ad_account_and_list_are_404() {
    let env = start(unlimited()).await;
    let (status, body) = send(env.get("/v5/ad_accounts/999/customer_lists")).await;
    assert_eq!((status, body["code"].clone()), (StatusCode::NOT_FOUND, json!(2)));
    let (status, _) = send(env.get("/v5/ad_accounts/not-a-number/customer_lists")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let path = format!("/v5/ad_accounts/{}/customer_lists/12345", env.account());
    assert_eq!(send(env.get(&path)).await.0, StatusCode::NOT_FOUND);
    let (status, _) = send(env.patch(&path, json!({"operation_type": "ADD", "records": "a@b.c"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn audience_lives_on_its_list_until_removed() {
    let env = start(unlimited()).await;
    let account = env.account();
    let list = env.create_list("Buyers", &["a@x.io", "b@x.io"]).await;
    let path = format!("/v5/ad_accounts/{account}/audiences");
    let (status, created) = send(env.post(
        &path,
        json!({"name": "Buyers", "audience_type": "CUSTOMER_LIST",
               "rule": {"customer_list_id": list}, "description": "synced"}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{created}");
    let id = created["id"].as_str().expect("id").to_owned();
    assert_eq!(created["type"], "audience");
    assert_eq!(created["rule"]["customer_list_id"], list.as_str());
    assert_eq!(created["size"], 2);
    assert!(created["created_timestamp"].is_u64() && created["updated_timestamp"].is_u64());

    let (_, listed) = send(env.get(&path).query(&[("ownership_type", "OWNED")])).await;
    assert_eq!(listed["items"][0]["id"], id.as_str());
    assert_eq!(env.handle.find_audience(&account, "Buyers"), Some(id.clone()));

    let one = format!("{path}/{id}");
    let (status, _) = send(env.patch(&one, json!({"operation_type": "REMOVE"}))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = send(env.get(&one)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(!env.handle.members(&list).is_empty(), "the list outlives its audience");
}

#[tokio::test]
async fn audience_on_a_missing_list_is_refused() {
    let env = start(unlimited()).await;
    let path = format!("/v5/ad_accounts/{}/audiences", env.account());
    let (status, _) = send(
        env.post(&path, json!({"name": "x", "audience_type": "CUSTOMER_LIST", "rule": {"customer_list_id": "42"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn deleting_a_list_deletes_the_audiences_built_on_it() {
    let env = start(unlimited()).await;
    let account = env.account();
    let list = env.handle.create_customer_list(&account, "L", ListType::Email, &["a@x.io".to_owned()]);
    let audience = env.handle.create_audience(&account, "L", &list);
    let other_list = env.handle.create_customer_list(&account, "M", ListType::Email, &[]);
    let other = env.handle.create_audience(&account, "M", &other_list);

    assert!(env.handle.delete_customer_list(&account, &list));
    let (status, _) = send(env.get(&format!("/v5/ad_accounts/{account}/audiences/{audience}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(env.get(&format!("/v5/ad_accounts/{account}/customer_lists/{list}"))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(env.get(&format!("/v5/ad_accounts/{account}/audiences/{other}"))).await;
    assert_eq!(status, StatusCode::OK);

    assert!(env.handle.delete_audience(&account, &other));
    assert!(!env.handle.delete_audience(&account, &other));
    assert!(env.handle.find_customer_list(&account, "M").is_some());
}

#[tokio::test]
async fn spec_violating_bodies_are_refused_and_recorded() {
    let env = start(unlimited()).await;
    let account = env.account();
    let list = env.create_list("L", &["a@x.io"]).await;
    let patch = format!("/v5/ad_accounts/{account}/customer_lists/{list}");

    let (status, body) = send(env.patch(&patch, json!({"records": "b@x.io"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap_or_default().contains("operation_type"));
    let (status, _) = send(env.patch(&patch, json!({"operation_type": "APPEND", "records": "b@x.io"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(
        env.post(&format!("/v5/ad_accounts/{account}/customer_lists"), json!({"name": "n", "records": ["a@x.io"]})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send(env.post(
        &format!("/v5/ad_accounts/{account}/audiences"),
        json!({"name": "n", "audience_type": "CUSTOMER_LIST", "rule": {"customer_list_ids": [list]}}),
    ))
    .await;
    // Not a schema violation (unknown properties are allowed) but the list is missing.
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let violations = env.handle.spec_violations();
    assert_eq!(violations.len(), 3, "{violations:#?}");
    assert!(violations[0].ends_with("body.operation_type: required property is missing"));
    assert!(violations[1].contains("`APPEND` is not one of [ADD, REMOVE]"));
    assert!(violations[2].contains("body.records: expected string, got array"));
    assert_eq!(env.handle.members(&list).len(), 1);
    let logged = env.handle.request_log();
    assert_eq!(logged.iter().filter(|r| !r.spec_violations.is_empty()).count(), 3);
}

#[tokio::test]
async fn conforming_traffic_records_no_violations() {
    let env = start(unlimited()).await;
    let list = env.create_list("L", &["a@x.io"]).await;
    let path = format!("/v5/ad_accounts/{}/audiences", env.account());
    let body = json!({"name": "L", "audience_type": "CUSTOMER_LIST", "rule": {"customer_list_id": list}});
    assert_eq!(send(env.post(&path, body)).await.0, StatusCode::OK);
    assert!(env.handle.spec_violations().is_empty());
}

#[tokio::test]
async fn hundred_thousand_records_sync_quickly() {
    let env = start(unlimited()).await;
    let id = env.create_list("big", &["seed@example.com"]).await;
    let path = format!("/v5/ad_accounts/{}/customer_lists/{id}", env.account());
    let started = Instant::now();
    let all: Vec<String> = (0..100_000).map(hashed).collect();
    for batch in all.chunks(1900) {
        let (status, _) = send(env.patch(&path, json!({"operation_type": "ADD", "records": batch.join(",")}))).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(env.handle.members(&id).len(), 100_001);
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    let (_, body) = send(env.get(&path)).await;
    assert_eq!(body["status"], "READY");
}
