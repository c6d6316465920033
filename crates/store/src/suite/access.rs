//! Behaviours of API keys and OAuth states.

use super::T0;
use crate::{NewApiKey, OAUTH_STATE_RETENTION_MS, OauthState, Store, StoreError};

fn new_key(workspace_id: &str, hash: &str) -> NewApiKey {
    NewApiKey { workspace_id: workspace_id.to_owned(), name: "CI".into(), key_hash: hash.to_owned() }
}

/// An OAuth state of `workspace_id` created at `created_at`, living ten minutes.
pub fn oauth_state(workspace_id: &str, hash: &str, created_at: i64) -> OauthState {
    OauthState {
        state_hash: hash.to_owned(),
        workspace_id: workspace_id.to_owned(),
        destination: "test-destination".into(),
        name: "Main account".into(),
        connection_id: None,
        redirect_uri: "https://host.example/v1/oauth/callback".into(),
        created_at,
        expires_at: created_at + 600_000,
    }
}

/// Keys are found by their hash only, listed per workspace, unique, and stop working once
/// deleted.
pub async fn api_keys_are_found_by_hash_listed_and_revoked(store: &dyn Store) {
    let a = store.create_workspace("Acme").await.expect("create");
    let b = store.create_workspace("Globex").await.expect("create");
    let first = store.create_api_key(new_key(&a.id, "hash-a1")).await.expect("create key");
    assert!(first.id.starts_with("key_"), "{}", first.id);
    assert_eq!(
        (first.workspace_id.as_str(), first.name.as_str(), first.key_hash.as_str()),
        (a.id.as_str(), "CI", "hash-a1")
    );
    assert!(first.created_at > 0);
    let second = store.create_api_key(new_key(&a.id, "hash-a2")).await.expect("create key");
    let other = store.create_api_key(new_key(&b.id, "hash-b1")).await.expect("create key");

    assert_eq!(store.api_key_by_hash("hash-a1").await.expect("by hash"), first);
    assert_eq!(store.api_key_by_hash("hash-b1").await.expect("by hash"), other);
    let mut both = vec![first.clone(), second.clone()];
    both.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(store.api_keys(&a.id, None, 10).await.expect("list"), both, "by id");
    assert_eq!(store.api_keys(&b.id, None, 10).await.expect("list"), vec![other]);

    assert!(matches!(store.create_api_key(new_key(&b.id, "hash-a1")).await, Err(StoreError::Conflict(_))));
    assert!(matches!(
        store.create_api_key(new_key("ws_nope", "hash-x")).await,
        Err(StoreError::NotFound { kind: "workspace", .. })
    ));

    store.delete_api_key(&first.id).await.expect("delete");
    assert!(matches!(store.api_key_by_hash("hash-a1").await, Err(StoreError::NotFound { kind: "api key", .. })));
    assert_eq!(store.api_keys(&a.id, None, 10).await.expect("list"), vec![second]);
    assert!(matches!(store.delete_api_key(&first.id).await, Err(StoreError::NotFound { kind: "api key", .. })));
}

/// A state comes back whole once; a second take is `Conflict`, an unknown one `NotFound`.
pub async fn an_oauth_state_is_taken_once(store: &dyn Store) {
    let ws = store.create_workspace("Acme").await.expect("create");
    let mut state = oauth_state(&ws.id, "state-1", T0);
    state.connection_id = Some("conn_x".into());
    store.create_oauth_state(state.clone()).await.expect("create state");
    assert!(matches!(store.create_oauth_state(state.clone()).await, Err(StoreError::Conflict(_))));
    assert!(matches!(
        store.create_oauth_state(oauth_state("ws_nope", "state-2", T0)).await,
        Err(StoreError::NotFound { kind: "workspace", .. })
    ));

    assert_eq!(store.take_oauth_state("state-1", T0 + 1_000).await.expect("take"), state);
    assert!(matches!(store.take_oauth_state("state-1", T0 + 2_000).await, Err(StoreError::Conflict(_))));
    assert!(matches!(
        store.take_oauth_state("state-unknown", T0).await,
        Err(StoreError::NotFound { kind: "oauth state", .. })
    ));
    // An expired state is handed over (and consumed) with its expiry, for the caller to refuse.
    store.create_oauth_state(oauth_state(&ws.id, "state-3", T0)).await.expect("create state");
    let late = store.take_oauth_state("state-3", T0 + 3_600_000).await.expect("take");
    assert!(late.expires_at < T0 + 3_600_000);
    assert!(matches!(store.take_oauth_state("state-3", T0 + 3_600_000).await, Err(StoreError::Conflict(_))));
}

/// Callbacks racing with the same state: exactly one gets it.
pub async fn concurrent_takes_of_an_oauth_state_give_it_once(store: &dyn Store) {
    let ws = store.create_workspace("Acme").await.expect("create");
    store.create_oauth_state(oauth_state(&ws.id, "raced", T0)).await.expect("create state");
    let take = || store.take_oauth_state("raced", T0 + 1);
    let (r0, r1, r2, r3, r4, r5, r6, r7) = tokio::join!(take(), take(), take(), take(), take(), take(), take(), take());
    let takes = [r0, r1, r2, r3, r4, r5, r6, r7];
    let won = takes.iter().filter(|r| r.is_ok()).count();
    let refused = takes.iter().filter(|r| matches!(r, Err(StoreError::Conflict(_)))).count();
    assert_eq!((won, refused), (1, 7), "{takes:?}");
}

/// States that expired more than the retention period ago are purged when new ones are made;
/// recent ones stay (so a replay is still told "already used").
pub async fn old_oauth_states_are_purged(store: &dyn Store) {
    let ws = store.create_workspace("Acme").await.expect("create");
    store.create_oauth_state(oauth_state(&ws.id, "old", T0)).await.expect("create");
    store.create_oauth_state(oauth_state(&ws.id, "recent", T0 + OAUTH_STATE_RETENTION_MS)).await.expect("create");
    store.take_oauth_state("recent", T0 + OAUTH_STATE_RETENTION_MS + 1).await.expect("take");
    let later = T0 + 600_000 + OAUTH_STATE_RETENTION_MS + 1;
    store.create_oauth_state(oauth_state(&ws.id, "new", later)).await.expect("create");
    assert!(matches!(store.take_oauth_state("old", later).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(store.take_oauth_state("recent", later).await, Err(StoreError::Conflict(_))));
    assert!(store.take_oauth_state("new", later).await.is_ok());
}
