//! The sync engine against the Pinterest sandbox, through the real Pinterest plugin: what a
//! user of the host would notice — everyone delivered exactly where expected, the partner's
//! limits never exceeded, failures retried, counts conserved.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use audience_engine::{EngineConfig, EngineError, SyncRequest, UserInput};
use audience_lab::world::{World, WorldOptions};
use audience_runtime::types::*;
use audience_sandbox::{Faults, Forced429, SandboxConfig};
use audience_store::{Counts, Health, SyncAction, SyncStatus};
use sha2::{Digest, Sha256};

/// The lab's world with one workspace and one connection holding a sandbox token.
struct Fixture {
    world: World,
    workspace: String,
    connection: String,
    token: String,
    account: String,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Fixture {
    type Target = World;

    fn deref(&self) -> &World {
        &self.world
    }
}

fn fast_config() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.batch.flush_interval = Duration::from_millis(200);
    config.retry.initial_backoff = Duration::from_millis(50);
    config.retry.max_backoff = Duration::from_millis(400);
    config
}

async fn world(sandbox: SandboxConfig, engine: EngineConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let world = World::start(dir.path(), WorldOptions { sandbox, engine, ..WorldOptions::default() }).await.unwrap();
    let workspace = world.store.create_workspace("test").await.unwrap().id;
    let (connection, credentials) = world.connect_with_token(&workspace).await.unwrap();
    let account = world.handle().ad_account_ids()[0].clone();
    Fixture { world, workspace, connection, token: credentials.access_token, account, _dir: dir }
}

impl Fixture {
    async fn sync(&self, name: &str) -> String {
        self.world.sync(&self.workspace, &self.connection, name).await.expect("sync created").id
    }

    /// Enter `emails` in calls of at most 10,000.
    async fn enter(&self, sync: &str, emails: &[String]) {
        for chunk in emails.chunks(10_000) {
            let users = chunk.iter().map(|e| UserInput::new(e.clone()).with("email", e.clone())).collect();
            let sync = self.store.sync(sync).await.expect("the sync exists");
            self.engine.enter(&sync, users).await.expect("intake");
        }
    }

    /// Wait until nothing is pending or in flight in `sync`.
    async fn settle(&self, sync: &str, limit: Duration) -> Counts {
        let started = Instant::now();
        loop {
            let counts = self.engine.counts(sync).await.unwrap();
            assert!(counts.conserved(), "counts conserved at every instant: {counts:?}");
            if counts.pending == 0 && counts.in_flight == 0 {
                return counts;
            }
            assert!(started.elapsed() < limit, "not settled within {limit:?}: {counts:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn members(&self, audience: &str) -> HashSet<String> {
        let list = self.handle().find_customer_list(&self.account, audience).expect("customer list exists");
        self.handle().members(&list)
    }
}

fn emails(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}@example.com")).collect()
}

fn hashes(emails: &[String]) -> HashSet<String> {
    emails.iter().map(|e| hex::encode(Sha256::digest(e.trim().to_lowercase()))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_thousand_users_over_three_syncs_respect_the_partner_limits() {
    let w = world(SandboxConfig::default(), fast_config()).await;
    let names = ["alpha", "beta", "gamma"];
    let mut syncs = Vec::new();
    for name in names {
        syncs.push(w.sync(name).await);
    }
    let per_sync = [20_000, 20_000, 10_000];
    let mut expected = Vec::new();
    for ((sync, name), n) in syncs.iter().zip(names).zip(per_sync) {
        let list = emails(&format!("{name}-"), n);
        w.enter(sync, &list).await;
        expected.push(list);
    }
    for (sync, list) in syncs.iter().zip(&expected) {
        let counts = w.settle(sync, Duration::from_secs(120)).await;
        assert_eq!(counts.synced, list.len() as u64, "{counts:?}");
        assert_eq!(counts.errored, 0);
    }
    for (name, list) in names.iter().zip(&expected) {
        assert_eq!(w.members(name).await, hashes(list), "audience {name} holds exactly its users");
    }
    let handle = w.handle();
    let worst = handle.max_requests_in_window(&w.token, Duration::from_secs(1));
    assert!(worst <= 7, "the sandbox saw {worst} requests in one second for the token");
    assert!(handle.max_records_per_request() <= 1900);
    assert_eq!(handle.count_status(429), 0, "no request was refused for rate");
    assert!(handle.spec_violations().is_empty(), "{:?}", handle.spec_violations());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_pauses_the_connection_for_that_long() {
    let w = world(SandboxConfig::default(), fast_config()).await;
    let sync = w.sync("paced").await;
    w.handle().set_faults(Faults {
        forced_429: Some(Forced429 { remaining: 3, retry_after: Some(Duration::from_secs(2)) }),
        ..Faults::default()
    });
    let list = emails("paced-", 5_000);
    w.enter(&sync, &list).await;
    let counts = w.settle(&sync, Duration::from_secs(60)).await;
    assert_eq!(counts.synced, 5_000);
    assert_eq!(w.members("paced").await, hashes(&list));
    // After each 429, the token's next request came no sooner than Retry-After.
    let log: Vec<_> =
        w.handle().request_log().into_iter().filter(|r| r.access_token.as_deref() == Some(&w.token)).collect();
    for (i, record) in log.iter().enumerate() {
        if record.status == 429
            && let Some(next) = log[i + 1..].iter().find(|r| r.status != 429)
        {
            assert!(
                next.at >= record.at + Duration::from_millis(1900),
                "request {:?} came {:?} after a 429",
                next.path,
                next.at - record.at
            );
        }
    }
    assert!(counts.retries > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_percent_error_rate_still_delivers_everyone() {
    let w = world(SandboxConfig::default(), fast_config()).await;
    let sync = w.sync("flaky").await;
    w.handle().set_faults(Faults { error_rate: 0.3, ..Faults::default() });
    // Enough batches (about 22) that some certainly fail: with 6 batches, about 1 run in 12
    // saw no failure at all and the retry check below failed.
    let list = emails("flaky-", 40_000);
    w.enter(&sync, &list).await;
    let counts = w.settle(&sync, Duration::from_secs(90)).await;
    assert_eq!((counts.synced, counts.errored), (40_000, 0));
    w.handle().set_faults(Faults::default());
    assert_eq!(w.members("flaky").await, hashes(&list));
    assert!(counts.retries > 0, "some batches were retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refreshed_then_parked_and_resumes_after_reconnecting() {
    let w = world(SandboxConfig::default(), fast_config()).await;
    let sync = w.sync("revoked").await;
    let first = emails("first-", 2_000);
    w.enter(&sync, &first).await;
    w.settle(&sync, Duration::from_secs(30)).await;

    // Revoking only the access token: one refresh brings the connection back by itself.
    w.handle().revoke_token(&w.token);
    let second = emails("second-", 2_000);
    w.enter(&sync, &second).await;
    let counts = w.settle(&sync, Duration::from_secs(30)).await;
    assert_eq!(counts.synced, 4_000, "delivered after an automatic refresh");
    assert_eq!(w.store.connection(&w.connection).await.unwrap().health, Health::Ok);

    // Revoking everything: the refresh fails too, the connection needs a person, users wait.
    w.handle().revoke_all_tokens();
    let third = emails("third-", 3_000);
    w.enter(&sync, &third).await;
    let started = Instant::now();
    loop {
        let connection = w.store.connection(&w.connection).await.unwrap();
        if connection.health == Health::NeedsReauthorization {
            assert!(connection.last_error.is_some());
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "connection never marked");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let waiting = w.engine.counts(&sync).await.unwrap();
    assert_eq!(waiting.pending + waiting.in_flight, 3_000, "users stay pending: {waiting:?}");
    assert_eq!(waiting.errored, 0);

    // A person connects again.
    let fresh = w.handle().issue_tokens(&["ads:read", "ads:write"]);
    let creds = Credentials {
        access_token: fresh.access_token,
        refresh_token: Some(fresh.refresh_token),
        expires_at: None,
        renewable_until: None,
        scopes: vec![],
    };
    w.engine.reconnect(&w.connection, &creds).await.unwrap();
    let counts = w.settle(&sync, Duration::from_secs(30)).await;
    assert_eq!((counts.synced, counts.errored), (7_000, 0));
    let mut all = first;
    all.extend(second);
    all.extend(third);
    assert_eq!(w.members("revoked").await, hashes(&all));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_retry_window_turns_undeliverable_users_into_errored() {
    let mut config = fast_config();
    config.retry.window = Duration::from_secs(2);
    let w = world(SandboxConfig::default(), config).await;
    let sync = w.sync("doomed").await;
    w.enter(&sync, &emails("ok-", 100)).await;
    w.settle(&sync, Duration::from_secs(30)).await;
    w.handle().set_faults(Faults { error_rate: 1.0, ..Faults::default() });
    w.enter(&sync, &emails("doomed-", 500)).await;
    let counts = w.settle(&sync, Duration::from_secs(30)).await;
    assert_eq!((counts.synced, counts.errored), (100, 500), "{counts:?}");
    let errors = w.store.recent_errors(&sync, 5).await.unwrap();
    assert!(errors[0].reason.contains("retry window"), "{:?}", errors[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_without_a_usable_match_field_are_not_synced() {
    let w = world(SandboxConfig::default(), fast_config()).await;
    let sync = w.sync("partial").await;
    let users = vec![
        UserInput::new("good").with("email", "Good@Example.com"),
        UserInput::new("bad-email").with("email", "bob@"),
        UserInput::new("phone-only").with("phone", "+1555"),
    ];
    // A user with no identifier at all is a mistake of the caller's: the call is refused whole.
    let record = w.store.sync(&sync).await.unwrap();
    let refused = w.engine.enter(&record, vec![UserInput::new("nothing")]).await.unwrap_err();
    assert!(matches!(&refused, EngineError::Invalid(p) if p[0].field == "users[0].identifiers"), "{refused}");
    let sync = record;
    let report = w.engine.enter(&sync, users).await.unwrap();
    assert_eq!((report.accepted, report.not_synced), (1, 2));
    assert!(report.not_synced_users.iter().any(|u| u.key == "bad-email" && u.reason.contains("bob@")), "{report:?}");
    let counts = w.settle(&sync.id, Duration::from_secs(30)).await;
    assert_eq!((counts.entered, counts.synced, counts.not_synced), (3, 1, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_audience_marks_the_sync_broken() {
    let w = world(SandboxConfig::default(), fast_config()).await;
    let sync = w.sync("vanishing").await;
    w.enter(&sync, &emails("v-", 100)).await;
    w.settle(&sync, Duration::from_secs(30)).await;
    let list = w.handle().find_customer_list(&w.account, "vanishing").unwrap();
    assert!(w.handle().delete_customer_list(&w.account, &list));
    w.enter(&sync, &emails("late-", 100)).await;
    let started = Instant::now();
    loop {
        let record = w.store.sync(&sync).await.unwrap();
        if record.status == SyncStatus::Broken {
            assert!(record.status_reason.unwrap().contains("gone"));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "sync never marked broken");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = w.engine.counts(&sync).await.unwrap();
    assert!(counts.conserved());
    assert_eq!(counts.synced, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_entering_twice_while_pending_is_queued_once() {
    let w = world(SandboxConfig::default(), fast_config()).await;
    let sync = w.sync("dedup").await;
    w.engine.set_paused(&sync, true).await.unwrap();
    let list = emails("d-", 50);
    w.enter(&sync, &list).await;
    w.enter(&sync, &list).await;
    let counts = w.engine.counts(&sync).await.unwrap();
    assert_eq!((counts.entered, counts.proceeded, counts.pending, counts.deduplicated), (50, 100, 50, 50));
    w.engine.set_paused(&sync, false).await.unwrap();
    let counts = w.settle(&sync, Duration::from_secs(30)).await;
    assert_eq!(counts.synced, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_users_are_isolated_and_the_rest_of_the_batch_goes_through() {
    let w = world(SandboxConfig::default(), fast_config()).await;
    let sync = w.sync("isolate").await;
    // The first batch creates the list; then queue users behind the plugin's back with a
    // record the partner refuses (uppercase), the way a buggy prepare would.
    w.enter(&sync, &emails("seed-", 10)).await;
    w.settle(&sync, Duration::from_secs(30)).await;
    let mut ready = Vec::new();
    for i in 0..100 {
        let value = if i == 37 || i == 80 {
            "NOT-A-HASH".to_string()
        } else {
            hex::encode(Sha256::digest(format!("iso{i}@example.com")))
        };
        let user = PreparedUser {
            key: format!("iso-{i}"),
            identifiers: vec![Identifier { kind: "email".into(), value }],
            consent: None,
        };
        ready.push(audience_store::ReadyUser {
            key: user.key.clone(),
            payload: audience_engine::payload::encode(&user),
        });
    }
    let now_ms = audience_model::now_ms();
    let entry = audience_store::Entry { ready, not_synced: vec![], now_ms, flush_ms: 0, skip_synced: false };
    w.store.enter(&sync, entry).await.unwrap();
    w.engine.set_paused(&sync, false).await.unwrap();
    let counts = w.settle(&sync, Duration::from_secs(30)).await;
    let sample = w.store.recent_errors(&sync, 3).await.unwrap();
    assert_eq!((counts.synced, counts.errored), (108, 2), "{counts:?} {sample:?}");
    let errors: HashSet<String> = w.store.recent_errors(&sync, 10).await.unwrap().into_iter().map(|e| e.key).collect();
    assert_eq!(errors, HashSet::from(["iso-37".to_string(), "iso-80".to_string()]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_a_sync_reports_every_problem_at_once() {
    let w = world(SandboxConfig::default(), fast_config()).await;
    let request = SyncRequest {
        workspace_id: w.workspace.clone(),
        connection_id: w.connection.clone(),
        account_id: " ".into(),
        audience_name: "".into(),
        audience_id: None,
        description: None,
        create_if_missing: true,
        action: SyncAction::Add,
        match_fields: vec!["phone".into(), "shoe-size".into()],
        reentry: Default::default(),
    };
    let err = w.engine.create_sync(request).await.expect_err("refused");
    let audience_engine::EngineError::Invalid(problems) = err else { panic!("{err:?}") };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["account_id", "audience_name", "match_fields", "match_fields"], "{problems:?}");
    assert!(problems[2].message.contains("not supported") && problems[2].message.contains("email"));
    assert!(problems[3].message.contains("unknown identifier kind"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_onto_a_list_of_another_kind_is_refused_with_every_problem() {
    let w = world(SandboxConfig::default(), fast_config()).await;
    // A list made by an email sync: its typed id records that it holds emails.
    let sync = w.sync("emails").await;
    w.enter(&sync, &emails("kind-", 10)).await;
    w.settle(&sync, Duration::from_secs(30)).await;
    let picked = w.store.sync(&sync).await.unwrap().audience_id.expect("the list's id is known after delivery");
    assert!(picked.ends_with(":EMAIL"), "{picked}");
    let lists_before = w.handle().summary();

    // Picked by id, with mobile-ad-id first (the kind the sync would send), on a connection
    // granted ads:read only: two problems, both reported, in the fields a person fixes.
    let (read_only, _) = w.world.connect_with_scopes(&w.workspace, &["ads:read"]).await.unwrap();
    let request = SyncRequest {
        workspace_id: w.workspace.clone(),
        connection_id: read_only,
        account_id: w.account.clone(),
        audience_name: "emails".into(),
        audience_id: Some(picked.clone()),
        description: None,
        create_if_missing: false,
        action: SyncAction::Add,
        match_fields: vec!["mobile-ad-id".into(), "email".into()],
        reentry: Default::default(),
    };
    let err = w.engine.create_sync(request.clone()).await.expect_err("refused");
    let EngineError::Invalid(problems) = err else { panic!("{err:?}") };
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["connection_id", "match_fields"], "{problems:?}");
    assert!(problems[0].message.contains("ads:write"), "{:?}", problems[0]);
    assert!(
        problems[1].message.contains("emails") && problems[1].message.contains("mobile-ad-id"),
        "{:?}",
        problems[1]
    );
    assert_eq!(w.store.syncs(&w.workspace, None, 100).await.unwrap().len(), 1, "nothing was stored");
    assert_eq!(
        format!("{:?}", w.handle().summary().ad_accounts),
        format!("{:?}", lists_before.ad_accounts),
        "nothing was created at Pinterest"
    );

    // The same list with email first, on the full connection, is fine.
    let fine = SyncRequest {
        connection_id: w.connection.clone(),
        match_fields: vec!["email".into(), "mobile-ad-id".into()],
        ..request
    };
    w.engine.create_sync(fine).await.expect("email first matches the list");
}
