//! Behaviours of workspaces, connections, syncs and credentials.

use super::{Harness, T0, another_sync, conserved, entry, new_connection, new_sync, setup, users};
use crate::{CredentialKey, Health, Store, StoreError, SyncStatus};

/// A created workspace can be read back and is listed.
pub async fn workspaces_are_created_found_and_listed(store: &dyn Store) {
    let a = store.create_workspace("Acme").await.expect("create");
    let b = store.create_workspace("Globex").await.expect("create");
    assert!(a.id.starts_with("ws_"), "{}", a.id);
    assert_ne!(a.id, b.id);
    assert_eq!(a.name, "Acme");
    assert!(a.created_at > 0);
    assert_eq!(store.workspace(&a.id).await.expect("read"), a);
    let listed = store.workspaces(None, 10).await.expect("list");
    let mut both = vec![a, b];
    both.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(listed, both, "by id");
}

/// Every lookup of something that does not exist is `NotFound` with its kind.
pub async fn unknown_ids_are_not_found(store: &dyn Store) {
    fn kind<T: std::fmt::Debug>(result: Result<T, StoreError>) -> &'static str {
        match result {
            Err(StoreError::NotFound { kind, .. }) => kind,
            other => panic!("expected NotFound, got {other:?}"),
        }
    }
    assert_eq!(kind(store.workspace("ws_nope").await), "workspace");
    assert_eq!(kind(store.connection("conn_nope").await), "connection");
    assert_eq!(kind(store.connections("ws_nope", None, 10).await), "workspace");
    assert_eq!(kind(store.update_credentials("conn_nope", b"x").await), "connection");
    assert_eq!(kind(store.set_connection_health("conn_nope", Health::Ok, None).await), "connection");
    assert_eq!(kind(store.delete_connection("conn_nope").await), "connection");
    assert_eq!(kind(store.create_connection(new_connection("ws_nope", b"x")).await), "workspace");
    assert_eq!(kind(store.sync("sync_nope").await), "sync");
    assert_eq!(kind(store.syncs("ws_nope", None, 10).await), "workspace");
    assert_eq!(kind(store.syncs_of_connection("conn_nope").await), "connection");
    assert_eq!(kind(store.set_sync_status("sync_nope", SyncStatus::Paused, None).await), "sync");
    assert_eq!(kind(store.set_audience_id("sync_nope", "aud").await), "sync");
    assert_eq!(kind(store.delete_sync("sync_nope").await), "sync");
    assert_eq!(kind(store.counts("sync_nope").await), "sync");
    assert_eq!(kind(store.enter("sync_nope", entry(users("u", 1), T0)).await), "sync");
    assert_eq!(kind(store.claim_batch("sync_nope", super::claim(T0, 10)).await), "sync");
    assert_eq!(kind(store.complete("sync_nope", Vec::new()).await), "sync");
    assert_eq!(kind(store.oldest_pending("sync_nope").await), "sync");
    assert_eq!(kind(store.recent_errors("sync_nope", 10).await), "sync");
    assert_eq!(store.next_due(&["sync_nope".into()]).await.expect("next_due"), None);
    assert_eq!(kind(store.api_key_by_hash("nope").await), "api key");
    assert_eq!(kind(store.api_keys("ws_nope", None, 10).await), "workspace");
    assert_eq!(kind(store.delete_api_key("key_nope").await), "api key");
    assert_eq!(kind(store.take_oauth_state("nope", T0).await), "oauth state");
    assert_eq!(kind(store.acquire_lane("conn_nope", "host-a", 60_000).await), "connection");
}

/// Connections keep their fields; new credentials bump the version.
pub async fn connections_are_created_listed_and_updated(store: &dyn Store) {
    let ws = store.create_workspace("Acme").await.expect("create");
    let other = store.create_workspace("Globex").await.expect("create");
    let created = store.create_connection(new_connection(&ws.id, b"token-1")).await.expect("create");
    assert!(created.id.starts_with("conn_"), "{}", created.id);
    assert_eq!(created.workspace_id, ws.id);
    assert_eq!(created.destination, "test-destination");
    assert_eq!(created.name, "Main account");
    assert_eq!(created.credentials, b"token-1");
    assert_eq!(created.health, Health::Ok);
    assert_eq!(created.last_error, None);
    assert_eq!(store.connection(&created.id).await.expect("read"), created);
    assert_eq!(store.connections(&ws.id, None, 10).await.expect("list"), vec![created.clone()]);
    assert!(store.connections(&other.id, None, 10).await.expect("list").is_empty());
    let ids = ["conn_unknown".to_string(), created.id.clone()];
    assert_eq!(store.connections_by_id(&ids).await.expect("by id"), vec![created.clone()], "unknown ids left out");

    let updated = store.update_credentials(&created.id, b"token-2").await.expect("update");
    assert_eq!(updated.credentials, b"token-2");
    assert_eq!(updated.credentials_version, created.credentials_version + 1);
    assert!(updated.updated_at >= created.updated_at);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(store.connection(&created.id).await.expect("read"), updated);

    store.delete_connection(&created.id).await.expect("delete");
    assert!(matches!(store.connection(&created.id).await, Err(StoreError::NotFound { .. })));
}

/// Health and last error are recorded; new credentials set health back to ok.
pub async fn new_credentials_clear_a_connection_health_problem(store: &dyn Store) {
    let (_, conn, _) = setup(store).await;
    store
        .set_connection_health(&conn.id, Health::NeedsReauthorization, Some("token revoked"))
        .await
        .expect("set health");
    let read = store.connection(&conn.id).await.expect("read");
    assert_eq!(read.health, Health::NeedsReauthorization);
    assert_eq!(read.last_error.as_deref(), Some("token revoked"));
    let updated = store.update_credentials(&conn.id, b"fresh").await.expect("update");
    assert_eq!(updated.health, Health::Ok);
    assert_eq!(updated.last_error, None);
}

/// Deleting a connection is refused with `Conflict` while a sync uses it.
pub async fn a_connection_used_by_syncs_cannot_be_deleted(store: &dyn Store) {
    let (_, conn, sync) = setup(store).await;
    match store.delete_connection(&conn.id).await {
        Err(StoreError::Conflict(message)) => assert!(message.contains(&sync.id), "{message}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(store.connection(&conn.id).await.is_ok());
    store.delete_sync(&sync.id).await.expect("delete sync");
    super::purge_everything(store).await;
    store.delete_connection(&conn.id).await.expect("delete connection");
}

/// A new sync is active with zeroed counters and appears in every listing.
pub async fn syncs_are_created_with_zeroed_counters_and_listed(store: &dyn Store) {
    let (ws, conn, sync) = setup(store).await;
    assert!(sync.id.starts_with("sync_"), "{}", sync.id);
    assert_eq!(sync.status, SyncStatus::Active);
    assert_eq!(sync.status_reason, None);
    let wanted = new_sync(&ws.id, &conn.id);
    assert_eq!(sync.audience, wanted.audience);
    assert_eq!(sync.match_fields, wanted.match_fields);
    assert_eq!(sync.action, wanted.action);
    assert_eq!(sync.account_id, wanted.account_id);
    assert_eq!(store.sync(&sync.id).await.expect("read"), sync);
    assert_eq!(store.counts(&sync.id).await.expect("counts"), Default::default());
    let second = another_sync(store, &ws, &conn).await;
    let mut both = vec![sync.clone(), second.clone()];
    both.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(store.syncs(&ws.id, None, 10).await.expect("list"), both, "by id");
    assert_eq!(store.syncs_of_connection(&conn.id).await.expect("list"), vec![sync.clone(), second.clone()]);
    let all = store.all_syncs().await.expect("all");
    assert!(all.contains(&sync) && all.contains(&second));
}

/// Status, its reason and the audience id are recorded.
pub async fn sync_status_and_audience_id_are_updated(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    store.set_sync_status(&sync.id, SyncStatus::Broken, Some("audience deleted at the partner")).await.expect("status");
    store.set_audience_id(&sync.id, "aud-42").await.expect("audience id");
    let read = store.sync(&sync.id).await.expect("read");
    assert_eq!(read.status, SyncStatus::Broken);
    assert_eq!(read.status_reason.as_deref(), Some("audience deleted at the partner"));
    assert_eq!(read.audience_id.as_deref(), Some("aud-42"));
    store.set_sync_status(&sync.id, SyncStatus::Active, None).await.expect("status");
    let read = store.sync(&sync.id).await.expect("read");
    assert_eq!((read.status, read.status_reason), (SyncStatus::Active, None));
}

/// A degraded sync keeps its reason; an error of a whole call shows among the recent errors
/// with an empty key, cut like a user's reason, and moves no counter.
pub async fn an_error_of_a_whole_call_is_shown_with_no_key_and_moves_no_counter(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    let reason = "add-users failed for 1900 users (retrying): the plugin crashed";
    store.set_sync_status(&sync.id, SyncStatus::Degraded, Some(reason)).await.expect("status");
    assert_eq!(store.sync(&sync.id).await.expect("read").status, SyncStatus::Degraded);
    store.record_sync_error(&sync.id, reason).await.expect("record");
    store.record_sync_error(&sync.id, &"x".repeat(100_000)).await.expect("record a long one");
    let errors = store.recent_errors(&sync.id, 10).await.expect("errors");
    assert_eq!(errors.len(), 2);
    assert_eq!((errors[1].key.as_str(), errors[1].reason.as_str()), ("", reason));
    assert!(errors[0].key.is_empty() && errors[0].reason.len() < 10_000, "cut: {}", errors[0].reason.len());
    assert_eq!(store.counts(&sync.id).await.expect("counts"), Default::default());
    assert!(matches!(store.record_sync_error("sync_nope", reason).await, Err(StoreError::NotFound { .. })));
}

/// A sync cannot use another workspace's connection (`NotFound`) or a connection of another
/// destination (`Conflict`).
pub async fn a_sync_needs_a_visible_connection_of_its_destination(store: &dyn Store) {
    let (_, conn, _) = setup(store).await;
    let other = store.create_workspace("Globex").await.expect("create");
    assert!(matches!(
        store.create_sync(new_sync(&other.id, &conn.id)).await,
        Err(StoreError::NotFound { kind: "connection", .. })
    ));
    let mut wrong_destination = new_sync(&conn.workspace_id, &conn.id);
    wrong_destination.destination = "pinterest".into();
    assert!(matches!(store.create_sync(wrong_destination).await, Err(StoreError::Conflict(_))));
}

/// After `delete_sync`, the sync is gone at once for every call, and once purged its
/// counters, queue and errors are gone too; other syncs keep theirs.
pub async fn deleting_a_sync_removes_its_queue_counters_and_errors(store: &dyn Store) {
    let (ws, conn, sync) = setup(store).await;
    let kept = another_sync(store, &ws, &conn).await;
    for s in [&sync, &kept] {
        store.enter(&s.id, entry(users("u", 5), T0)).await.expect("enter");
        let claimed = store.claim_batch(&s.id, super::claim(T0, 2)).await.expect("claim");
        assert_eq!(claimed.len(), 2);
        let results = vec![crate::UserResult {
            key: claimed[0].key.clone(),
            outcome: crate::UserOutcome::Errored("bad email".into()),
        }];
        store.complete(&s.id, results).await.expect("complete");
    }
    store.delete_sync(&sync.id).await.expect("delete");
    assert!(matches!(store.sync(&sync.id).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(store.counts(&sync.id).await, Err(StoreError::NotFound { .. })));
    assert!(matches!(store.recent_errors(&sync.id, 10).await, Err(StoreError::NotFound { .. })));
    assert_eq!(store.next_due(std::slice::from_ref(&sync.id)).await.expect("next_due"), None);
    assert_eq!(store.recover_in_flight(T0).await.expect("recover"), 1, "only the kept sync's");
    let counts = conserved(store, &kept.id).await;
    assert_eq!((counts.pending, counts.errored), (4, 1));
    assert_eq!(store.recent_errors(&kept.id, 10).await.expect("errors").len(), 1);
    assert!(!store.all_syncs().await.expect("all").iter().any(|s| s.id == sync.id));
    super::purge_everything(store).await;
    let counts = conserved(store, &kept.id).await;
    assert_eq!((counts.pending, counts.errored), (4, 1), "the purge left the kept sync alone");
    assert_eq!(store.recent_errors(&kept.id, 10).await.expect("errors").len(), 1);
}

/// Credentials come back byte for byte, and are not stored in clear.
pub async fn credentials_round_trip_and_are_encrypted_at_rest(harness: &dyn Harness) {
    let store = harness.open(CredentialKey::generate()).await;
    let ws = store.create_workspace("Acme").await.expect("create");
    let secret = b"refresh-token-\x00\xffSECRET-PLAINTEXT-7f3a9c";
    let conn = store.create_connection(new_connection(&ws.id, secret)).await.expect("create");
    assert_eq!(store.connection(&conn.id).await.expect("read").credentials, secret);
    let newer = b"access-token-NEWER-PLAINTEXT-b81e22";
    store.update_credentials(&conn.id, newer).await.expect("update");
    assert_eq!(store.connection(&conn.id).await.expect("read").credentials, newer);
    assert!(!harness.stored_bytes_contain(secret).await, "first credentials stored in clear");
    assert!(!harness.stored_bytes_contain(newer).await, "new credentials stored in clear");
    assert!(
        harness.stored_bytes_contain(b"Main account").await,
        "stored_bytes_contain does not see the stored data, so it proves nothing"
    );
}

/// Opening the database with another key: credentials fail with `Decrypt`, the rest works.
pub async fn a_wrong_key_cannot_read_credentials(harness: &dyn Harness) {
    let store = harness.open(CredentialKey::generate()).await;
    let (ws, conn, sync) = setup(&*store).await;
    drop(store);
    let store = harness.open(CredentialKey::generate()).await;
    assert!(matches!(store.connection(&conn.id).await, Err(StoreError::Decrypt)));
    assert!(matches!(store.connections(&ws.id, None, 10).await, Err(StoreError::Decrypt)));
    assert_eq!(store.sync(&sync.id).await.expect("sync").id, sync.id);
    // Re-authorizing with the new key repairs the connection.
    store.update_credentials(&conn.id, b"re-authorized").await.expect("update");
    assert_eq!(store.connection(&conn.id).await.expect("read").credentials, b"re-authorized");
}

/// Reopening the database finds everything as it was.
pub async fn everything_survives_reopening(harness: &dyn Harness) {
    let key = CredentialKey::generate();
    let store = harness.open(key.clone()).await;
    let (ws, conn, sync) = setup(&*store).await;
    store.enter(&sync.id, entry(users("u", 10), T0)).await.expect("enter");
    let claimed = store.claim_batch(&sync.id, super::claim(T0 + 5_000, 4)).await.expect("claim");
    assert_eq!(claimed.len(), 4);
    let counts = conserved(&*store, &sync.id).await;
    drop(store);
    let store = harness.open(key).await;
    assert_eq!(store.workspace(&ws.id).await.expect("ws"), ws);
    assert_eq!(store.connection(&conn.id).await.expect("conn"), conn);
    assert_eq!(store.sync(&sync.id).await.expect("sync"), sync);
    assert_eq!(conserved(&*store, &sync.id).await, counts);
    assert_eq!(store.recover_in_flight(T0 + 6_000).await.expect("recover"), 4);
    let all = store.claim_batch(&sync.id, super::claim(T0 + 10_000, 100)).await.expect("claim");
    assert_eq!(all.len(), 10);
}
