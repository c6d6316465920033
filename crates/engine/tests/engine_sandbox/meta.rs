//! The sync engine against the Meta Marketing API sandbox, through the real Meta plugin: rows
//! hashed exactly as Meta documents, the `custom_audience` budget respected without a single
//! throttle, rows Meta drops counted as errored, a revoked token parking the connection, a late
//! audience found by search among thousands, and bad targets refused with every problem.
//!
//! The facts checked are Meta's, as collected in `crates/sandbox/spec/meta-notes.md`; expected
//! hashes are computed here from hand-normalised literals, never by the plugin's code.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::{Duration, Instant};

use audience_engine::{EngineConfig, EngineError, LimitOverrides, SyncRequest, UserInput};
use audience_lab::world::{Meta, World, WorldOptions};
use audience_runtime::types::{Credentials, Identifier, PreparedUser};
use audience_sandbox::MetaConfig;
use audience_sandbox::meta::UsageBudget;
use audience_store::{Counts, Health, SyncAction};
use sha2::{Digest, Sha256};

/// A Meta world with one workspace and one connection holding a sandbox-issued long-lived
/// token (all three permissions).
struct Fixture {
    world: World<Meta>,
    workspace: String,
    connection: String,
    token: String,
    /// The sandbox's first ad account, `act_<n>`.
    account: String,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Fixture {
    type Target = World<Meta>;

    fn deref(&self) -> &World<Meta> {
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

async fn world_with(sandbox: MetaConfig, engine: EngineConfig, limits: LimitOverrides) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let options = WorldOptions::<Meta> { sandbox, engine, limits, ..WorldOptions::default() };
    let world = World::launch(dir.path(), options).await.unwrap();
    let workspace = world.store.create_workspace("test").await.unwrap().id;
    let (connection, credentials) = world.connect_with_token(&workspace).await.unwrap();
    let account = world.handle().ad_account_ids()[0].clone();
    Fixture { world, workspace, connection, token: credentials.access_token, account, _dir: dir }
}

async fn world() -> Fixture {
    world_with(MetaConfig::default(), fast_config(), LimitOverrides::default()).await
}

/// SHA-256, lowercase hex, of exactly these bytes.
fn sha(normalised: &str) -> String {
    hex::encode(Sha256::digest(normalised.as_bytes()))
}

/// A member row as the sandbox stores it: schema key -> value.
fn row(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), v.clone())).collect()
}

impl Fixture {
    fn request(&self, audience: &str, fields: &[&str]) -> SyncRequest {
        SyncRequest {
            workspace_id: self.workspace.clone(),
            connection_id: self.connection.clone(),
            account_id: self.account.clone(),
            audience_name: audience.into(),
            audience_id: None,
            description: Some("created by the engine tests".into()),
            create_if_missing: true,
            action: SyncAction::Add,
            match_fields: fields.iter().map(|f| (*f).to_string()).collect(),
            reentry: Default::default(),
        }
    }

    /// An add-sync by email into a new audience called `audience`.
    async fn sync(&self, audience: &str) -> String {
        self.engine.create_sync(self.request(audience, &["email"])).await.expect("sync created").id
    }

    async fn enter(&self, sync: &str, users: Vec<UserInput>) {
        let record = self.store.sync(sync).await.unwrap();
        for chunk in users.chunks(10_000) {
            self.engine.enter(&record, chunk.to_vec()).await.expect("intake");
        }
    }

    async fn enter_emails(&self, sync: &str, prefix: &str, n: usize) {
        let users = (0..n).map(|i| UserInput::new(format!("{prefix}{i}")).with("email", email(prefix, i))).collect();
        self.enter(sync, users).await;
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

    /// The id of the one audience called `name` in the fixture's account.
    fn audience_id(&self, name: &str) -> String {
        let found = self.handle().find_audiences(&self.account, name);
        assert_eq!(found.len(), 1, "exactly one audience named {name:?}: {found:?}");
        found[0].clone()
    }

    /// The sandbox's member rows of the audience called `name`.
    fn members(&self, name: &str) -> BTreeSet<BTreeMap<String, String>> {
        self.handle().members(&self.audience_id(name)).into_iter().collect()
    }

    /// The calls addressed to the fixture's account so far, in the order they were answered.
    fn account_calls(&self) -> Vec<audience_sandbox::meta::MetaRequestRecord> {
        let log = self.handle().request_log();
        log.into_iter().filter(|r| r.ad_account_id.as_deref() == Some(self.account.as_str())).collect()
    }
}

fn email(prefix: &str, i: usize) -> String {
    format!("{prefix}{i}@example.com")
}

fn email_rows(prefix: &str, n: usize) -> BTreeSet<BTreeMap<String, String>> {
    (0..n).map(|i| row(&[("EMAIL", sha(&email(prefix, i)))])).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_key_rows_arrive_hashed_exactly_as_meta_documents() {
    let w = world().await;
    let fields = ["email", "phone", "first-name", "last-name", "country"];
    let sync = w.engine.create_sync(w.request("multi-key", &fields)).await.unwrap();
    let users = vec![
        UserInput::new("mary")
            .with("email", " Mary@Example.COM ")
            .with("phone", "+1 (555) 987-6543")
            .with("first-name", "Mary")
            .with("last-name", "O'Brien")
            .with("country", "US"),
        UserInput::new("jean-luc")
            .with("email", "JOHN.DOE@EXAMPLE.COM.")
            .with("phone", "+44 7700 900123")
            .with("first-name", " Jean-Luc ")
            .with("last-name", "Picard")
            .with("country", "gb"),
        // An unusable phone is left out; the rest of the row goes.
        UserInput::new("zoe").with("email", "zoe@example.com").with("phone", "not a phone").with("first-name", "Zoë"),
        UserInput::new("ann").with("phone", "+1 555 123 4567").with("first-name", "Ann").with("last-name", "Lee"),
        // Nothing Meta can use: Not Synced.
        UserInput::new("broken").with("email", "bob@").with("phone", "12"),
        // Only traits many people share: matches nobody, Not Synced.
        UserInput::new("traits").with("first-name", "Ann").with("country", "US"),
    ];
    let report = w.engine.enter(&sync, users).await.unwrap();
    assert_eq!((report.accepted, report.not_synced), (4, 2), "{report:?}");
    let counts = w.settle(&sync.id, Duration::from_secs(30)).await;
    assert_eq!((counts.synced, counts.not_synced, counts.errored), (4, 2, 0), "{counts:?}");

    // The notes' own examples, so the hashing here is Meta's and not this test's idea of it.
    assert_eq!(sha("mary@example.com"), "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79");
    assert_eq!(sha("15559876543"), "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e");
    // EMAIL: trimmed, lowercased (and the SDK's trailing "." dropped); PHONE: digits only with
    // the country code, no "+"; FN/LN: lowercase letters only; FI: the first initial; COUNTRY:
    // ISO alpha-2 lowercase. All SHA-256, lowercase hex.
    let expected = BTreeSet::from([
        row(&[
            ("EMAIL", sha("mary@example.com")),
            ("PHONE", sha("15559876543")),
            ("FN", sha("mary")),
            ("FI", sha("m")),
            ("LN", sha("obrien")),
            ("COUNTRY", sha("us")),
        ]),
        row(&[
            ("EMAIL", sha("john.doe@example.com")),
            ("PHONE", sha("447700900123")),
            ("FN", sha("jeanluc")),
            ("FI", sha("j")),
            ("LN", sha("picard")),
            ("COUNTRY", sha("gb")),
        ]),
        row(&[("EMAIL", sha("zoe@example.com")), ("FN", sha("zoë")), ("FI", sha("z"))]),
        row(&[("PHONE", sha("15551234567")), ("FN", sha("ann")), ("FI", sha("a")), ("LN", sha("lee"))]),
    ]);
    assert_eq!(w.members("multi-key"), expected);
    // One request, as Meta asks: a multi-key schema in a session of its own, nothing invalid.
    let sessions = w.handle().sessions(&w.audience_id("multi-key"));
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!((sessions[0].num_received, sessions[0].num_invalid_entries, sessions[0].finished), (4, 0, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_usage_budget_near_its_limit_slows_the_lane_with_zero_throttled_answers() {
    // 100 calls per hour for the account: counted per call over a window far longer than the
    // test, so usage only rises, by exactly 1 % a call, whatever the timing. The lane may send
    // 10 requests a second of 40 users: at that pace the budget is gone in ten seconds.
    let sandbox = MetaConfig { usage: UsageBudget::fixed(100, Duration::from_secs(3600)), ..MetaConfig::default() };
    let limits =
        LimitOverrides { max_batch_size: Some(40), requests_per_second: Some(10.0), ..LimitOverrides::default() };
    let w = world_with(sandbox, fast_config(), limits).await;
    let nominal = Duration::from_secs_f64((1.0 + w.engine.config().rate.guard) / 10.0);
    let sync = w.sync("budget").await;
    // A first batch creates the audience; then exactly as many batches as leave 5 % unused.
    w.enter_emails(&sync, "seed-", 40).await;
    w.settle(&sync, Duration::from_secs(30)).await;
    let used = w.handle().usage(&w.account).unwrap().calls_in_window;
    assert!(used < 20, "setting up took {used} calls");
    let batches = 95 - used as usize;
    let n = batches * 40;
    // All of them queued before the lane may send any, so the batches are full and counted.
    w.engine.set_paused(&sync, true).await.unwrap();
    w.enter_emails(&sync, "paced-", n).await;
    w.engine.set_paused(&sync, false).await.unwrap();
    let counts = w.settle(&sync, Duration::from_secs(120)).await;

    let handle = w.handle();
    assert_eq!((counts.synced, counts.errored), (40 + n as u64, 0), "{counts:?}");
    let mut everyone = email_rows("seed-", 40);
    everyone.extend(email_rows("paced-", n));
    assert_eq!(w.members("budget"), everyone, "all users got through");
    assert_eq!(handle.throttled_count(), 0, "no call was refused by the budget");
    assert_eq!(handle.count_error(80_003), 0);
    let max = handle.max_usage_seen(&w.account);
    assert!((90..100).contains(&max), "the usage climbed into the slow range and stayed below 100: {max}");

    // The lane slowed as usage climbed: the spacing after an answer reporting u % is set when
    // the next request leaves, so it shows between the two requests after that answer. From
    // 90 % on the engine spaces requests more than twice the nominal interval apart; asserted
    // here is 1.5 times, over the span of those requests measured end to end (so one arrival's
    // jitter counts once, not once per gap). Only lower bounds: a slow machine cannot fail it.
    let calls = w.account_calls();
    let first_slow = calls.iter().position(|r| r.call_count.is_some_and(|c| c >= 90)).expect("a call reported 90 %");
    let slowed = &calls[first_slow + 1..];
    assert!(slowed.len() >= 4, "{} calls after 90 %", slowed.len());
    let gaps = (slowed.len() - 1) as u32;
    let span = slowed[slowed.len() - 1].at - slowed[0].at;
    assert!(
        span >= nominal * gaps * 3 / 2,
        "{gaps} gaps after 90 % took {span:?}, less than 1.5 x the nominal {nominal:?} each"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_meta_counts_invalid_are_errored_never_synced_and_named_in_recent_errors() {
    let w = world().await;
    let sync = w.sync("invalid").await;
    w.enter_emails(&sync, "seed-", 10).await;
    w.settle(&sync, Duration::from_secs(30)).await;
    // Queue users behind the plugin's back, as a buggy prepare would: two mis-hashed emails
    // and an uppercase phone hash (values that name their user), and a first name sent
    // unhashed next to a good email (a trait, which names nobody).
    let mut ready = Vec::new();
    for i in 0..100 {
        let mut identifiers = vec![Identifier { kind: "email".into(), value: sha(&email("bad-", i)) }];
        match i {
            13 | 57 => identifiers[0].value = format!("NOT-A-HASH-{i}"),
            88 => identifiers.push(Identifier { kind: "phone".into(), value: sha("15550000088").to_uppercase() }),
            71 => identifiers.push(Identifier { kind: "first-name".into(), value: "Bad First Name".into() }),
            _ => {}
        }
        let user = PreparedUser { key: format!("bad-{i}"), identifiers, consent: None };
        let payload = audience_engine::payload::encode(&user);
        ready.push(audience_store::ReadyUser { key: user.key, payload });
    }
    let entry = audience_store::Entry {
        ready,
        not_synced: vec![],
        now_ms: audience_model::now_ms(),
        flush_ms: 0,
        skip_synced: false,
    };
    w.store.enter(&sync, entry).await.unwrap();
    w.engine.set_paused(&sync, false).await.unwrap();
    let counts = w.settle(&sync, Duration::from_secs(30)).await;

    // What Meta said: four rows dropped, with samples.
    let sessions = w.handle().sessions(&w.audience_id("invalid"));
    let dropped: u64 = sessions.iter().map(|s| s.num_invalid_entries).sum();
    assert_eq!(dropped, 4, "{sessions:?}");
    // The same four are errored, never synced: the three Meta named, and one more for the row
    // it dropped without naming (the engine cannot tell which user that was).
    assert_eq!((counts.synced, counts.errored), (10 + 96, 4), "{counts:?}");
    let errors = w.store.recent_errors(&sync, 10).await.unwrap();
    assert_eq!(errors.len(), 4, "{errors:?}");
    let named: HashSet<&str> = errors.iter().filter(|e| e.reason.contains("invalid")).map(|e| e.key.as_str()).collect();
    assert!(
        ["bad-13", "bad-57", "bad-88"].iter().all(|k| named.contains(k)),
        "the users Meta named are errored: {errors:?}"
    );
    let unnamed: Vec<_> = errors.iter().filter(|e| e.reason.contains("without naming")).collect();
    assert_eq!(unnamed.len(), 1, "{errors:?}");
    assert!(unnamed[0].reason.contains("Bad First Name"), "with Meta's sample: {:?}", unnamed[0]);
    // And the sandbox holds exactly the rows it accepted.
    let members = w.members("invalid");
    assert_eq!(members.len(), 10 + 96);
    for i in [13, 57, 71, 88] {
        assert!(members.iter().all(|m| m.get("EMAIL") != Some(&sha(&email("bad-", i)))), "bad-{i} is not a member");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_parks_the_connection_and_users_wait_for_a_new_login() {
    let w = world().await;
    let sync = w.sync("revoked").await;
    w.enter_emails(&sync, "first-", 200).await;
    w.settle(&sync, Duration::from_secs(30)).await;

    w.handle().revoke_token(&w.token);
    w.enter_emails(&sync, "second-", 300).await;
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
    assert_eq!(waiting.pending + waiting.in_flight, 300, "users stay pending: {waiting:?}");
    assert_eq!((waiting.synced, waiting.errored), (200, 0));
    // Meta has no refresh token: the engine tried renewing by exchanging the token, which a
    // revoked token cannot do (190), and stopped there.
    let log = w.handle().request_log();
    let exchanges: Vec<_> = log.iter().filter(|r| r.path.ends_with("/oauth/access_token")).collect();
    assert!(!exchanges.is_empty() && exchanges.iter().all(|r| r.error_code == Some(190)), "{exchanges:?}");

    // A person logs in again.
    let fresh: Credentials = w.issue_credentials();
    w.engine.reconnect(&w.connection, &fresh).await.unwrap();
    let counts = w.settle(&sync, Duration::from_secs(30)).await;
    assert_eq!((counts.synced, counts.errored), (500, 0));
    assert_eq!(w.store.connection(&w.connection).await.unwrap().health, Health::Ok);
    let mut everyone = email_rows("first-", 200);
    everyone.extend(email_rows("second-", 300));
    assert_eq!(w.members("revoked"), everyone);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_an_audience_on_a_late_page_among_five_thousand() {
    let w = world().await;
    let handle = w.handle();
    let mut needle = None;
    for i in 0..5_000 {
        let name = if i == 4_321 { "Needle: lapsed buyers".to_string() } else { format!("Cohort {i:04}") };
        let id = handle.create_audience(&w.account, &name).unwrap();
        if i == 4_321 {
            needle = Some(id);
        }
    }
    let needle = needle.unwrap();
    let creds = w.issue_credentials();
    let token = creds.access_token.clone();
    let requests = || handle.request_log().iter().filter(|r| r.access_token.as_deref() == Some(token.as_str())).count();

    let mut cursor = None;
    let mut calls = 0;
    let found = loop {
        let before = requests();
        let page = w.plugin.search_audiences(&w.plugin_config, &creds, &w.account, "needle", cursor).await.unwrap();
        calls += 1;
        let sent = requests() - before;
        assert!((1..=5).contains(&sent), "search call {calls} sent {sent} requests");
        if let Some(hit) = page.audiences.iter().find(|a| a.id == needle) {
            assert_eq!(page.audiences.len(), 1, "only the needle matches: {:?}", page.audiences);
            break hit.clone();
        }
        assert!(page.audiences.is_empty(), "{:?}", page.audiences);
        cursor = Some(page.next_cursor.expect("more pages while the needle is not found"));
        assert!(calls < 100, "never found");
    };
    assert_eq!(found.name, "Needle: lapsed buyers");
    assert!(calls >= 5, "found on a late page (call {calls}), not the first ones");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_aimed_at_a_missing_or_unusable_target_is_refused_with_every_problem() {
    let w = world().await;
    let handle = w.handle();
    let accounts = handle.ad_account_ids();
    // A connection without ads_management (read-only), for one more problem each time.
    let (read_only, _) = w.world.connect_with_scopes(&w.workspace, &["ads_read"]).await.unwrap();
    let refused = |request: SyncRequest| {
        let engine = w.engine.clone();
        async move {
            match engine.create_sync(request).await {
                Err(EngineError::Invalid(problems)) => problems,
                other => panic!("not refused as invalid: {other:?}"),
            }
        }
    };
    let fields = |problems: &[audience_engine::Problem]| problems.iter().map(|p| p.field.clone()).collect::<Vec<_>>();

    // A missing account (the audience is not looked at: there is no account to look in).
    let missing = SyncRequest {
        connection_id: read_only.clone(),
        account_id: "act_987654321".into(),
        ..w.request("anything", &["email"])
    };
    let problems = refused(missing).await;
    assert_eq!(fields(&problems), ["connection_id", "account_id"], "{problems:?}");
    assert!(problems[0].message.contains("ads_management"), "{:?}", problems[0]);
    assert!(problems[1].message.contains("987654321"), "{:?}", problems[1]);

    // A disabled account whose business withdrew the terms, and a missing audience that may
    // not be created.
    handle.set_account_status(&accounts[1], 2);
    handle.set_tos_accepted(&accounts[1], false);
    let unusable = SyncRequest {
        connection_id: read_only.clone(),
        account_id: accounts[1].clone(),
        create_if_missing: false,
        ..w.request("Nobody made this", &["email", "phone"])
    };
    let problems = refused(unusable).await;
    assert_eq!(fields(&problems), ["connection_id", "account_id", "account_id", "audience_name"], "{problems:?}");
    assert!(problems[1].message.contains("DISABLED"), "{:?}", problems[1]);
    assert!(problems[2].message.contains("customaudiences/tos"), "{:?}", problems[2]);
    assert!(problems[3].message.contains("Nobody made this"), "{:?}", problems[3]);

    // An audience picked by id that Meta flagged, and one that does not exist.
    let flagged = handle.create_audience(&w.account, "Flagged").unwrap();
    handle.set_audience_flagged(&flagged, true);
    let picked = SyncRequest {
        connection_id: read_only.clone(),
        audience_id: Some(flagged.clone()),
        ..w.request("Flagged", &["email"])
    };
    let problems = refused(picked).await;
    assert_eq!(fields(&problems), ["connection_id", "audience_id"], "{problems:?}");
    assert!(problems[1].message.contains(&flagged) && problems[1].message.contains("appeal"), "{:?}", problems[1]);
    let gone = SyncRequest { audience_id: Some("6999999999".into()), ..w.request("Gone", &["email"]) };
    assert_eq!(fields(&refused(gone).await), ["audience_id"]);

    // An account already at Meta's 500 customer-list audiences: a new one cannot be made.
    for i in 0..500 {
        handle.create_audience(&accounts[2], &format!("Full {i}")).unwrap();
    }
    let full = SyncRequest { account_id: accounts[2].clone(), ..w.request("One too many", &["email"]) };
    let problems = refused(full).await;
    assert_eq!(fields(&problems), ["audience_name"], "{problems:?}");
    assert!(problems[0].message.contains("500"), "{:?}", problems[0]);

    // Nothing was stored, nothing was created at Meta.
    assert!(w.store.syncs(&w.workspace, None, 100).await.unwrap().is_empty());
    assert_eq!(handle.audiences(&w.account).len(), 1);
    assert!(handle.audiences(&accounts[1]).is_empty());
    assert_eq!(handle.audiences(&accounts[2]).len(), 500);
}
