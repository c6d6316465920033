//! Every listing of the host's own objects is paged by cursor: no item twice, none skipped,
//! only the caller's, and a cursor the listing did not give out is refused.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{OPERATOR, Server, server};

/// Every item of `path`'s listing (its array under `field`), `limit` at a time: the ids in
/// the order listed.
async fn all_pages(s: &Server, path: &str, field: &str, key: &str, limit: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            Some(c) => format!("{path}?limit={limit}&cursor={c}"),
            None => format!("{path}?limit={limit}"),
        };
        let page = s.get(&url, key).await;
        assert_eq!(page.status, StatusCode::OK, "{page:?}");
        let items = page.body[field].as_array().unwrap_or_else(|| panic!("no {field} in {page:?}"));
        assert!(items.len() <= limit as usize, "{} items for a limit of {limit}", items.len());
        ids.extend(items.iter().map(|i| i["id"].as_str().expect("an id").to_string()));
        match &page.body["next_cursor"] {
            Value::Null => return ids,
            Value::String(next) => {
                assert_eq!(items.len(), limit as usize, "a page before the last is full");
                cursor = Some(next.clone());
            }
            other => panic!("next_cursor {other:?}"),
        }
    }
    panic!("{path} never ended");
}

fn sorted_once(ids: &[String]) -> bool {
    let set: BTreeSet<&String> = ids.iter().collect();
    set.len() == ids.len() && ids.windows(2).all(|w| w[0] < w[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listing_is_paged_by_cursor_and_shows_only_the_callers_items() {
    let s = server().await;
    let (a, key) = s.workspace("Acme").await;
    let (_, other_key) = s.workspace("Globex").await;
    let mut connections = Vec::new();
    let mut syncs = Vec::new();
    for i in 0..3 {
        let connection = s.connection(&key).await;
        syncs.push(s.sync(&key, &connection, &format!("Audience {i}")).await);
        syncs.push(s.sync(&key, &connection, &format!("Audience {i}b")).await);
        connections.push(connection);
    }
    for i in 0..4 {
        let made = s.post(&format!("/v1/workspaces/{a}/keys"), OPERATOR, json!({"name": format!("k{i}")})).await;
        assert_eq!(made.status, StatusCode::CREATED, "{made:?}");
    }
    let foreign_connection = s.connection(&other_key).await;
    let foreign_sync = s.sync(&other_key, &foreign_connection, "Theirs").await;

    for limit in [1, 4, 100] {
        let listed = all_pages(&s, "/v1/syncs", "syncs", &key, limit).await;
        assert!(sorted_once(&listed), "{listed:?}");
        assert_eq!(listed.iter().collect::<BTreeSet<_>>(), syncs.iter().collect::<BTreeSet<_>>(), "limit {limit}");
        let listed = all_pages(&s, "/v1/connections", "connections", &key, limit).await;
        assert!(sorted_once(&listed), "{listed:?}");
        assert_eq!(listed.len(), 3);
        assert!(!listed.contains(&foreign_connection));
        let listed = all_pages(&s, &format!("/v1/workspaces/{a}/keys"), "keys", OPERATOR, limit).await;
        assert!(sorted_once(&listed) && listed.len() == 5, "the first key and four more: {listed:?}");
        let listed = all_pages(&s, "/v1/workspaces", "workspaces", OPERATOR, limit).await;
        assert!(sorted_once(&listed) && listed.len() == 2, "{listed:?}");
    }
    let theirs = all_pages(&s, "/v1/syncs", "syncs", &other_key, 10).await;
    assert_eq!(theirs, vec![foreign_sync]);

    // A page still has each sync's counts and its connection's health.
    let page = s.get("/v1/syncs?limit=2", &key).await;
    for sync in page.body["syncs"].as_array().unwrap() {
        assert_eq!(sync["counts"]["entered"], 0, "{sync}");
        assert_eq!(sync["connection_health"], "ok", "{sync}");
    }

    // Deleted between two pages: the next page goes on after it.
    let first = s.get("/v1/syncs?limit=2", &key).await;
    let cursor = first.body["next_cursor"].as_str().unwrap().to_string();
    let last_shown = first.body["syncs"][1]["id"].as_str().unwrap().to_string();
    let deleted = s.call(reqwest::Method::DELETE, &format!("/v1/syncs/{last_shown}"), Some(&key), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let next = s.get(&format!("/v1/syncs?limit=2&cursor={cursor}"), &key).await;
    let mut sorted = syncs.clone();
    sorted.sort();
    let expected: Vec<&str> = sorted[2..4].iter().map(String::as_str).collect();
    let got: Vec<&str> = next.body["syncs"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_the_listing_did_not_give_out_and_a_limit_out_of_bounds_are_refused() {
    let s = server().await;
    let (_, key) = s.workspace("Acme").await;
    let connection = s.connection(&key).await;
    s.sync(&key, &connection, "A").await;
    s.sync(&key, &connection, "B").await;
    let connections_cursor = {
        s.connection(&key).await;
        let page = s.get("/v1/connections?limit=1", &key).await;
        page.body["next_cursor"].as_str().expect("another page").to_string()
    };
    for cursor in ["not-a-cursor", "00ff", connections_cursor.as_str()] {
        s.get(&format!("/v1/syncs?cursor={cursor}"), &key).await.refused(
            StatusCode::BAD_REQUEST,
            "invalid_cursor",
            "start again without `cursor`",
        );
    }
    for limit in ["0", "1001", "many", "-1"] {
        let answer = s.get(&format!("/v1/syncs?limit={limit}"), &key).await;
        assert_eq!(
            (answer.status, answer.body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("invalid_request")),
            "{answer:?}"
        );
    }
    let whole = s.get("/v1/syncs?limit=1000", &key).await;
    assert_eq!((whole.body["syncs"].as_array().unwrap().len(), &whole.body["next_cursor"]), (2, &Value::Null));
    let default = s.get("/v1/syncs", &key).await;
    assert_eq!(default.body["syncs"].as_array().unwrap().len(), 2, "{default:?}");
}
