//! The sync engine against the Google sandbox, through the real Google plugin: users reach a
//! Customer Match list through asynchronous Data Manager requests, members equal Synced,
//! nobody is sent twice, records Google's validation refuses are rejected and the rest sent at
//! once, identifiers arrive hashed exactly as Google's formatting rules say, and twenty
//! connections through one OAuth client stay within the project's quota.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use audience_engine::{EngineConfig, UserInput};
use audience_lab::world::{Google, Partner, World, WorldOptions};
use audience_sandbox::google::QuotaBucket;
use audience_sandbox::{GoogleConfig, GoogleHandle};
use audience_store::Counts;
use sha2::{Digest, Sha256};

fn fast_config() -> EngineConfig {
    let mut config = EngineConfig::default();
    config.batch.flush_interval = Duration::from_millis(200);
    config.retry.initial_backoff = Duration::from_millis(50);
    config.retry.max_backoff = Duration::from_millis(400);
    config
}

fn sandbox() -> GoogleConfig {
    GoogleConfig { processing_delay: Duration::from_millis(700), ..GoogleConfig::default() }
}

async fn world(dir: &std::path::Path, sandbox: GoogleConfig) -> World<Google> {
    World::launch(dir, WorldOptions::<Google> { sandbox, engine: fast_config(), ..WorldOptions::default() })
        .await
        .expect("the Google world starts")
}

/// Enter `emails` in calls of at most 10,000.
async fn enter(world: &World<Google>, sync: &str, emails: &[String]) {
    for chunk in emails.chunks(10_000) {
        let users = chunk.iter().map(|e| UserInput::new(e.clone()).with("email", e.clone())).collect();
        let sync = world.store.sync(sync).await.expect("the sync exists");
        world.engine.enter(&sync, users).await.expect("intake");
    }
}

/// Wait until nothing is pending, in flight or submitted, checking conservation at each look.
async fn settle(world: &World<Google>, sync: &str, limit: Duration) -> Counts {
    let started = Instant::now();
    loop {
        let counts = world.engine.counts(sync).await.unwrap();
        assert!(counts.conserved(), "counts conserved at every instant: {counts:?}");
        if counts.pending == 0 && counts.in_flight == 0 && counts.submitted == 0 && counts.entered > 0 {
            return counts;
        }
        assert!(started.elapsed() < limit, "not settled within {limit:?}: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The hex SHA-256 of Google's normalised form of an e-mail address, computed here from
/// Google's formatting rules, independently of the plugin.
fn google_email_hash(email: &str) -> String {
    let lowered: String = email.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_lowercase();
    let normalised = match lowered.split_once('@') {
        Some((local, domain)) if domain == "gmail.com" || domain == "googlemail.com" => {
            let local = local.split('+').next().unwrap_or(local).replace('.', "");
            format!("{local}@{domain}")
        }
        _ => lowered,
    };
    hex::encode(Sha256::digest(normalised.as_bytes()))
}

fn emails(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user{i:05}@example.com")).collect()
}

fn list_of(world: &World<Google>, name: &str) -> String {
    let account = Google::ad_account_ids(&world.handle())[0].clone();
    world.handle().find_user_list(&account, name).expect("the list exists")
}

#[tokio::test]
async fn fifty_thousand_users_reach_a_list_through_asynchronous_requests() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), sandbox()).await;
    let workspace = world.store.create_workspace("google").await.unwrap().id;
    let (connection, _) = world.connect_with_token(&workspace).await.unwrap();
    let sync = world.sync(&workspace, &connection, "Customers").await.unwrap().id;
    let all = emails(50_000);
    enter(&world, &sync, &all).await;
    let counts = settle(&world, &sync, Duration::from_secs(240)).await;
    assert_eq!((counts.synced, counts.errored, counts.not_synced), (50_000, 0, 0), "{counts:?}");
    let list = list_of(&world, "Customers");
    let handle = world.handle();
    assert_eq!(handle.member_count(&list) as u64, counts.synced, "members equal Synced");
    assert!(handle.max_times_ingested(&list) <= 1, "nobody sent twice");
    assert!(handle.max_members_per_request() <= 10_000);
    for email in all.iter().step_by(997) {
        let key = GoogleHandle::email_key(&google_email_hash(email));
        assert!(handle.is_member(&list, &key), "{email} is a member under Google's hash");
    }
    world.stop().await;
}

#[tokio::test]
async fn identifiers_arrive_hashed_exactly_as_googles_rules_say() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), sandbox()).await;
    let workspace = world.store.create_workspace("google").await.unwrap().id;
    let (connection, _) = world.connect_with_token(&workspace).await.unwrap();
    let sync = world.sync(&workspace, &connection, "Hashes").await.unwrap().id;
    let raw = [
        " Cloudy.SanFrancisco+shopping@gmail.com ",
        "user.name+NYC@Example.com",
        "alexz@example.com",
        "First.Last@GoogleMail.com",
    ];
    let users = raw.iter().enumerate().map(|(i, e)| UserInput::new(format!("k{i}")).with("email", *e)).collect();
    let record = world.store.sync(&sync).await.unwrap();
    world.engine.enter(&record, users).await.expect("intake");
    let counts = settle(&world, &sync, Duration::from_secs(60)).await;
    assert_eq!(counts.synced, 4, "{counts:?}");
    let list = list_of(&world, "Hashes");
    let members: HashSet<String> = raw.iter().map(|e| GoogleHandle::email_key(&google_email_hash(e))).collect();
    for key in &members {
        assert!(world.handle().is_member(&list, key), "{key} missing");
    }
    // Google's own test vector (data-manager-python): the plugin's hash of it is Google's.
    assert_eq!(
        google_email_hash("alexz@example.com"),
        "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a"
    );
    world.stop().await;
}

#[tokio::test]
async fn records_googles_validation_refuses_are_rejected_and_the_rest_sent_in_one_retry() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), sandbox()).await;
    let handle = world.handle();
    let workspace = world.store.create_workspace("google").await.unwrap().id;
    let (connection, _) = world.connect_with_token(&workspace).await.unwrap();
    let sync = world.sync(&workspace, &connection, "Refusals").await.unwrap().id;
    let all = emails(300);
    for bad in [&all[7], &all[123]] {
        handle.refuse_identifier(&GoogleHandle::email_key(&google_email_hash(bad)), "INVALID_SHA256_FORMAT");
    }
    enter(&world, &sync, &all).await;
    let counts = settle(&world, &sync, Duration::from_secs(60)).await;
    assert_eq!((counts.synced, counts.errored, counts.retries), (298, 2, 0), "{counts:?}");
    let errors = world.store.recent_errors(&sync, 10).await.unwrap();
    assert!(errors.iter().any(|e| e.key == all[7] && e.reason.contains("INVALID_SHA256_FORMAT")), "{errors:?}");
    let list = list_of(&world, "Refusals");
    assert_eq!(handle.member_count(&list), 298);
    let ingests = handle.request_log().iter().filter(|r| r.path.ends_with("audienceMembers:ingest")).count();
    assert_eq!(ingests, 2, "the refused request, then the rest once (no bisection)");
    world.stop().await;
}

#[tokio::test]
async fn twenty_connections_through_one_client_stay_within_the_projects_quota() {
    let dir = tempfile::tempdir().unwrap();
    // Twenty tokens of one OAuth client: each could send 4 requests a second on its own, but
    // Google counts the Cloud project's requests, so together they get the plugin's
    // application-wide 4 a second (below the project's 300 a minute), never 80.
    let mut options = WorldOptions::<Google> { sandbox: sandbox(), engine: fast_config(), ..WorldOptions::default() };
    options.limits.max_batch_size = Some(50);
    let world = World::launch(dir.path(), options).await.unwrap();
    let workspace = world.store.create_workspace("google").await.unwrap().id;
    let mut syncs = Vec::new();
    for i in 0..20 {
        let (connection, _) = world.connect_with_token(&workspace).await.unwrap();
        syncs.push(world.sync(&workspace, &connection, &format!("Tenant {i}")).await.unwrap().id);
    }
    for (i, sync) in syncs.iter().enumerate() {
        let users: Vec<String> = (0..100).map(|n| format!("t{i}u{n}@example.com")).collect();
        enter(&world, sync, &users).await;
    }
    for sync in &syncs {
        let counts = settle(&world, sync, Duration::from_secs(240)).await;
        assert_eq!(counts.synced, 100, "{counts:?}");
    }
    let handle = world.handle();
    assert_eq!(handle.quota_refusals(), 0, "no quota error");
    let ingests = handle.quota_stats(QuotaBucket::IngestionMutate);
    assert_eq!(ingests.counted, 40, "two requests of 50 per tenant: {ingests:?}");
    for bucket in [QuotaBucket::IngestionMutate, QuotaBucket::IngestionRead] {
        // 4 a second across the app: at most 4 starts in any second (5 with one on its edge).
        let most = handle.max_requests_in_window(bucket, Duration::from_secs(1));
        assert!(most <= 5, "{most} requests of {bucket:?} within one second from one app");
    }
    world.stop().await;
}

#[tokio::test]
async fn a_quota_error_holds_every_connection_of_the_app_for_googles_retry_delay() {
    use audience_sandbox::google::GoogleFault;
    let dir = tempfile::tempdir().unwrap();
    let world = world(dir.path(), sandbox()).await;
    let handle = world.handle();
    let workspace = world.store.create_workspace("google").await.unwrap().id;
    let mut syncs = Vec::new();
    for name in ["Quota A", "Quota B"] {
        let (connection, _) = world.connect_with_token(&workspace).await.unwrap();
        syncs.push(world.sync(&workspace, &connection, name).await.unwrap().id);
    }
    // The next call (a list's look-up or a first ingest) is refused with RESOURCE_EXHAUSTED and
    // RetryInfo `retryDelay: 30s`: the project's quota, which both connections share.
    handle.fail_next(1, GoogleFault::QuotaExhausted);
    for (i, sync) in syncs.iter().enumerate() {
        let users: Vec<String> = (0..100).map(|n| format!("q{i}u{n}@example.com")).collect();
        enter(&world, sync, &users).await;
    }
    for sync in &syncs {
        let counts = settle(&world, sync, Duration::from_secs(120)).await;
        assert_eq!((counts.synced, counts.errored), (100, 0), "{counts:?}");
    }
    let log = handle.request_log();
    let refused = log.iter().find(|r| r.status == 429).expect("the quota error was answered");
    assert_eq!(log.iter().filter(|r| r.status == 429).count(), 1, "one quota error, not one per connection");
    // Requests already on their way when the 429 came back may arrive just after it; after
    // the lanes heard it, no connection of the app sends anything for the retry delay.
    let after: Vec<_> =
        log.iter().filter(|r| r.at > refused.at + Duration::from_millis(500) && r.access_token.is_some()).collect();
    let first_after = after.first().expect("requests after the quota error");
    assert!(
        first_after.at - refused.at >= Duration::from_millis(29_900),
        "a request {:?} after the quota error, before its 30 s retry delay: {first_after:?}",
        first_after.at - refused.at
    );
    let ingests = log.iter().filter(|r| r.path.ends_with("audienceMembers:ingest") && r.status == 200).count();
    assert_eq!(ingests, 2, "one ingest per connection, none sent twice");
    world.stop().await;
}
