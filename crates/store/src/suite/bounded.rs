//! Behaviours that keep each call's cost bounded whatever the number of tenants and users:
//! paged listings, deletes purged in chunks, expiry in chunks, figures summed by the store.

use std::collections::BTreeSet;

use super::{T0, another_sync, claim, conserved, entry, new_connection, new_sync, setup, users};
use crate::{
    Claim, EXPIRE_CHUNK, GroupBy, GroupFigures, Health, NewApiKey, Store, StoreError, SyncStatus, UserOutcome,
    UserResult,
};

/// Every item of a listing, read `limit` at a time through `page(after, limit)`: checks that
/// no page is longer than asked and that the pages, in order, are sorted by id.
async fn all_pages<T, F, Fut>(limit: u32, id: fn(&T) -> &str, mut page: F) -> Vec<T>
where
    F: FnMut(Option<String>, u32) -> Fut,
    Fut: std::future::Future<Output = crate::StoreResult<Vec<T>>>,
{
    let mut all: Vec<T> = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..1_000 {
        let items = page(after.clone(), limit).await.expect("a page");
        assert!(items.len() <= limit as usize, "a page of {} items for a limit of {limit}", items.len());
        let Some(last) = items.last() else {
            return all;
        };
        after = Some(id(last).to_owned());
        all.extend(items);
    }
    panic!("the listing never ended");
}

fn assert_sorted_once(ids: &[String]) {
    let mut sorted = ids.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "every item once, by id");
}

/// Workspaces, connections, syncs and API keys are listed a page at a time, by id: over all
/// pages every item comes once (no gap, no repeat) and only the workspace's own; a page
/// after an id that no longer exists goes on from where it was.
pub async fn listings_are_paged_by_id_without_gaps_or_repeats(store: &dyn Store) {
    let ws = store.create_workspace("Acme").await.expect("workspace");
    let other = store.create_workspace("Globex").await.expect("workspace");
    let mut workspaces = vec![ws.id.clone(), other.id.clone()];
    for i in 0..5 {
        workspaces.push(store.create_workspace(&format!("w{i}")).await.expect("workspace").id);
    }
    let (mut connections, mut syncs, mut keys) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..7 {
        let conn = store.create_connection(new_connection(&ws.id, b"t")).await.expect("connection");
        syncs.push(store.create_sync(new_sync(&ws.id, &conn.id)).await.expect("sync").id);
        connections.push(conn.id);
        let key = NewApiKey { workspace_id: ws.id.clone(), name: format!("k{i}"), key_hash: format!("hash-{i}") };
        keys.push(store.create_api_key(key).await.expect("key").id);
    }
    // Another tenant's, which no page of `ws` shows.
    let foreign = store.create_connection(new_connection(&other.id, b"t")).await.expect("connection");
    store.create_sync(new_sync(&other.id, &foreign.id)).await.expect("sync");
    let foreign_key = NewApiKey { workspace_id: other.id.clone(), name: "x".into(), key_hash: "hash-x".into() };
    store.create_api_key(foreign_key).await.expect("key");
    for list in [&mut workspaces, &mut connections, &mut syncs, &mut keys] {
        list.sort();
    }

    for limit in [1, 3, 7, 100] {
        let listed: Vec<String> = all_pages(
            limit,
            |w: &crate::Workspace| w.id.as_str(),
            |after, limit| async move { store.workspaces(after.as_deref(), limit).await },
        )
        .await
        .into_iter()
        .map(|w| w.id)
        .collect();
        assert_eq!(listed, workspaces, "workspaces, {limit} a page");
        let listed: Vec<String> = all_pages(
            limit,
            |c: &crate::Connection| c.id.as_str(),
            |after, limit| {
                let ws = ws.id.clone();
                async move { store.connections(&ws, after.as_deref(), limit).await }
            },
        )
        .await
        .into_iter()
        .map(|c| c.id)
        .collect();
        assert_eq!(listed, connections, "connections, {limit} a page");
        let listed: Vec<String> = all_pages(
            limit,
            |s: &crate::SyncRecord| s.id.as_str(),
            |after, limit| {
                let ws = ws.id.clone();
                async move { store.syncs(&ws, after.as_deref(), limit).await }
            },
        )
        .await
        .into_iter()
        .map(|s| s.id)
        .collect();
        assert_eq!(listed, syncs, "syncs, {limit} a page");
        let listed: Vec<String> = all_pages(
            limit,
            |k: &crate::ApiKey| k.id.as_str(),
            |after, limit| {
                let ws = ws.id.clone();
                async move { store.api_keys(&ws, after.as_deref(), limit).await }
            },
        )
        .await
        .into_iter()
        .map(|k| k.id)
        .collect();
        assert_eq!(listed, keys, "API keys, {limit} a page");
        assert_sorted_once(&listed);
    }

    // The last item of a page is deleted before the next page is asked for.
    let first = store.syncs(&ws.id, None, 3).await.expect("page");
    store.delete_sync(&first[2].id).await.expect("delete");
    let next = store.syncs(&ws.id, Some(&first[2].id), 3).await.expect("page");
    assert_eq!(next.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), syncs[3..6].to_vec());
    let rest = store.syncs(&ws.id, Some(&syncs[6]), 3).await.expect("page");
    assert!(rest.is_empty(), "nothing after the last id");
}

/// A deleted sync is gone for every call at once, whatever its backlog; its rows go a chunk
/// at a time (never more than asked), and once the last one is gone the sync is forgotten.
pub async fn a_deleted_sync_is_gone_at_once_and_purged_in_chunks(store: &dyn Store) {
    let (ws, conn, sync) = setup(store).await;
    let kept = another_sync(store, &ws, &conn).await;
    for s in [&sync, &kept] {
        store.enter(&s.id, entry(users("u", 25), T0)).await.expect("enter");
        let flying = store.claim_batch(&s.id, claim(T0, 5)).await.expect("claim");
        let errored: Vec<UserResult> = flying[..2]
            .iter()
            .map(|u| UserResult { key: u.key.clone(), outcome: UserOutcome::Errored("refused".into()) })
            .collect();
        store.complete(&s.id, errored).await.expect("complete");
    }
    store.delete_sync(&sync.id).await.expect("delete");

    let not_found = |r: Result<(), StoreError>| matches!(r, Err(StoreError::NotFound { kind: "sync", .. }));
    assert!(not_found(store.sync(&sync.id).await.map(drop)));
    assert!(not_found(store.enter(&sync.id, entry(users("v", 1), T0)).await.map(drop)));
    assert!(not_found(store.claim_batch(&sync.id, claim(T0 + 10_000, 100)).await.map(drop)), "no claim");
    assert!(not_found(store.complete(&sync.id, Vec::new()).await));
    assert!(not_found(store.counts(&sync.id).await.map(drop)));
    assert!(not_found(store.set_sync_status(&sync.id, SyncStatus::Paused, None).await));
    assert!(not_found(store.delete_sync(&sync.id).await), "deleted once");
    assert_eq!(store.next_due(std::slice::from_ref(&sync.id)).await.expect("next due"), None);
    assert!(store.counts_of(std::slice::from_ref(&sync.id)).await.expect("counts").is_empty());
    assert!(!store.syncs(&ws.id, None, 100).await.expect("list").iter().any(|s| s.id == sync.id));
    assert!(!store.syncs_of_connection(&conn.id).await.expect("list").iter().any(|s| s.id == sync.id));
    assert!(!store.sync_figures().await.expect("figures").iter().any(|f| f.sync.id == sync.id));
    assert_eq!(store.recover_in_flight(T0).await.expect("recover"), 3, "only the kept sync's");

    // 25 users in the ledger (23 queued, 2 errored) and 2 errors: chunks of at most 10 rows.
    let mut chunks = Vec::new();
    loop {
        let purged = store.purge_deleted(10, None).await.expect("purge");
        assert!(purged.rows <= 10, "a chunk of {} rows", purged.rows);
        chunks.push(purged);
        if !purged.more {
            break;
        }
        assert!(chunks.len() < 10, "the purge does not end: {chunks:?}");
    }
    assert_eq!(chunks.iter().map(|p| p.rows).sum::<u64>(), 27, "{chunks:?}");
    assert_eq!(chunks.iter().map(|p| p.syncs).sum::<u64>(), 1, "{chunks:?}");
    assert!(chunks.len() >= 3, "{chunks:?}");
    assert_eq!(store.purge_deleted(10, None).await.expect("purge"), crate::Purged::default(), "nothing left");
    let counts = conserved(store, &kept.id).await;
    assert_eq!((counts.pending, counts.errored), (23, 2), "the kept sync lost nothing");
    assert_eq!(store.recent_errors(&kept.id, 10).await.expect("errors").len(), 2);
}

/// A connection whose deleted syncs still have rows cannot be deleted yet (`Conflict`
/// saying so); purging that connection's syncs leaves other connections' deleted syncs for
/// later, and then the connection can go.
pub async fn a_connection_is_deleted_once_its_deleted_syncs_are_purged(store: &dyn Store) {
    let (ws, conn, sync) = setup(store).await;
    let second = store.create_connection(new_connection(&ws.id, b"t")).await.expect("connection");
    let elsewhere = store.create_sync(new_sync(&ws.id, &second.id)).await.expect("sync");
    for s in [&sync, &elsewhere] {
        store.enter(&s.id, entry(users("u", 12), T0)).await.expect("enter");
        store.delete_sync(&s.id).await.expect("delete");
    }
    match store.delete_connection(&conn.id).await {
        Err(StoreError::Conflict(message)) => assert!(message.contains("still being removed"), "{message}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    let mut rows = 0;
    loop {
        let purged = store.purge_deleted(5, Some(&conn.id)).await.expect("purge");
        rows += purged.rows;
        if !purged.more {
            break;
        }
    }
    assert_eq!(rows, 12, "only this connection's deleted sync");
    store.delete_connection(&conn.id).await.expect("delete connection");
    assert!(matches!(store.delete_connection(&second.id).await, Err(StoreError::Conflict(_))));
    let purged = store.purge_deleted(100, None).await.expect("purge");
    assert_eq!((purged.rows, purged.syncs, purged.more), (12, 1, false));
    store.delete_connection(&second.id).await.expect("delete connection");
}

/// `group_figures` sums per workspace and destination, or per destination, what the per-sync
/// reads say; the counters that only grow keep a deleted sync's users (before and after its
/// purge), the gauges and sync counts drop them.
pub async fn figures_are_summed_per_workspace_and_destination(store: &dyn Store) {
    let (ws, conn, sync) = setup(store).await;
    let second = another_sync(store, &ws, &conn).await;
    let other = store.create_workspace("Globex").await.expect("workspace");
    let other_conn = store.create_connection(new_connection(&other.id, b"t")).await.expect("connection");
    let foreign = store.create_sync(new_sync(&other.id, &other_conn.id)).await.expect("sync");
    let idle = store.create_connection(new_connection(&other.id, b"t")).await.expect("connection");
    store.set_connection_health(&idle.id, Health::NeedsReauthorization, Some("revoked")).await.expect("health");

    store.enter(&sync.id, entry(users("a", 10), T0)).await.expect("enter");
    store.enter(&second.id, entry(users("b", 4), T0 + 1_000)).await.expect("enter");
    store.enter(&foreign.id, entry(users("c", 3), T0 + 2_000)).await.expect("enter");
    let flying = store.claim_batch(&sync.id, claim(T0 + 10_000, 6)).await.expect("claim");
    let results = flying
        .iter()
        .enumerate()
        .map(|(i, u)| UserResult {
            key: u.key.clone(),
            outcome: if i < 4 { UserOutcome::Synced } else { UserOutcome::Errored("refused".into()) },
        })
        .collect();
    store.complete(&sync.id, results).await.expect("complete");
    store.set_sync_status(&second.id, SyncStatus::Broken, Some("gone")).await.expect("status");
    store.set_sync_status(&foreign.id, SyncStatus::Paused, Some("paused")).await.expect("status");

    let figures = store.group_figures(GroupBy::Workspace).await.expect("figures");
    let of = |figures: &[GroupFigures], ws: &str| -> GroupFigures {
        let found: Vec<&GroupFigures> = figures.iter().filter(|g| g.workspace_id == ws).collect();
        assert_eq!(found.len(), 1, "one group per workspace and destination: {figures:?}");
        assert_eq!(found[0].destination, "test-destination");
        found[0].clone()
    };
    assert_eq!(figures.len(), 2, "{figures:?}");
    let acme = of(&figures, &ws.id);
    assert_eq!((acme.syncs, acme.broken, acme.degraded, acme.paused), (2, 1, 0, 0));
    assert_eq!((acme.connections, acme.needs_reauthorization), (1, 0));
    let mut summed = store.counts(&sync.id).await.expect("counts");
    let more = store.counts(&second.id).await.expect("counts");
    summed.entered += more.entered;
    summed.proceeded += more.proceeded;
    summed.pending += more.pending;
    summed.users += more.users;
    // The audience's counters are per sync only (the API's), not summed for metrics.
    summed.in_audience = 0;
    assert_eq!(acme.counts, summed);
    assert_eq!((acme.counts.entered, acme.counts.synced, acme.counts.errored, acme.counts.pending), (14, 4, 2, 8));
    assert_eq!(acme.oldest_pending_at, Some(T0), "the oldest of both syncs");
    let globex = of(&figures, &other.id);
    assert_eq!((globex.syncs, globex.paused, globex.connections, globex.needs_reauthorization), (1, 1, 2, 1));
    assert_eq!((globex.counts.pending, globex.oldest_pending_at), (3, Some(T0 + 2_000)));
    let whole = store.group_figures(GroupBy::Destination).await.expect("figures");
    assert_eq!(whole.len(), 1, "{whole:?}");
    let all = &whole[0];
    assert_eq!((all.workspace_id.as_str(), all.destination.as_str()), ("", "test-destination"));
    assert_eq!((all.syncs, all.broken, all.paused, all.connections, all.needs_reauthorization), (3, 1, 1, 3, 1));
    assert_eq!((all.counts.entered, all.counts.pending, all.oldest_pending_at), (17, 11, Some(T0)));

    // Deleting the sync with the history: the totals that only grow keep it, the gauges drop it.
    store.delete_sync(&sync.id).await.expect("delete");
    for purged in [false, true] {
        if purged {
            super::purge_everything(store).await;
        }
        let acme = of(&store.group_figures(GroupBy::Workspace).await.expect("figures"), &ws.id);
        assert_eq!((acme.syncs, acme.broken), (1, 1), "purged: {purged}");
        assert_eq!(
            (acme.counts.entered, acme.counts.synced, acme.counts.errored, acme.counts.pending),
            (14, 4, 2, 4),
            "purged: {purged}"
        );
        assert_eq!(acme.oldest_pending_at, Some(T0 + 1_000), "purged: {purged}");
        let all = store.group_figures(GroupBy::Destination).await.expect("figures").remove(0);
        assert_eq!((all.syncs, all.counts.entered, all.counts.errored, all.counts.pending), (2, 17, 2, 7));
    }
    let counts = store.counts_of(&[second.id.clone(), "sync_nope".into(), foreign.id.clone()]).await.expect("counts");
    let ids: BTreeSet<&str> = counts.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, BTreeSet::from([second.id.as_str(), foreign.id.as_str()]));
    for (id, c) in &counts {
        assert_eq!(*c, store.counts(id).await.expect("counts"));
    }
}

/// A backlog past its retry window is errored at most [`EXPIRE_CHUNK`] users per claim, and a
/// claim that errored a full chunk hands out nothing; the books balance after each.
pub async fn a_large_expired_backlog_is_errored_in_chunks(store: &dyn Store) {
    let (_, _, sync) = setup(store).await;
    let chunk = EXPIRE_CHUNK as usize;
    for part in 0..chunk.div_ceil(2_000) {
        let n = 2_000.min(chunk - part * 2_000);
        store.enter(&sync.id, entry(users(&format!("old{part}-"), n), T0)).await.expect("enter");
    }
    store.enter(&sync.id, entry(users("old-extra-", 10), T0)).await.expect("enter");
    store.enter(&sync.id, entry(users("fresh", 3), T0 + 60_000)).await.expect("enter");
    let expiring = Claim { expire_before_ms: T0 + 1, ..claim(T0 + 120_000, 100) };
    let first = store.claim_batch(&sync.id, expiring.clone()).await.expect("claim");
    assert!(first.is_empty(), "a claim that errored a full chunk hands out nothing");
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.errored, counts.pending), (EXPIRE_CHUNK as u64, 13));
    let second = store.claim_batch(&sync.id, expiring).await.expect("claim");
    assert_eq!(second.len(), 3, "the rest expired, the fresh users claimed");
    assert!(second.iter().all(|u| u.key.starts_with("fresh")));
    let counts = conserved(store, &sync.id).await;
    assert_eq!((counts.errored, counts.pending, counts.in_flight), (EXPIRE_CHUNK as u64 + 10, 0, 3));
}
