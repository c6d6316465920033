//! The Pinterest destination as audience-host runs it: the compiled component, loaded by the
//! host's plugin runtime, talking to the local Pinterest sandbox through the host's checked
//! `http-client`. Each test names a behaviour a user of audience-host would notice (tokens that
//! work, every account listed, the right people in the list, errors the retry policy can act
//! on) and checks it from the outside: the sandbox's exact list membership, its request log,
//! and Pinterest's own OpenAPI description.

use std::collections::{BTreeSet, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use audience_plugin_artifacts as artifacts;
use audience_runtime::types::*;
use audience_runtime::{CallError, HttpLimits, HttpPolicy, Plugin, PluginOptions, PluginRuntime, RuntimeConfig};
use audience_sandbox::{Faults, Forced429, ListType, PinterestSandbox, SandboxConfig, SandboxHandle, TokenPair};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------------

/// One runtime for the whole file, with the Pinterest component compiled once into an on-disk
/// cache before any test loads it (the tests run in parallel; each would otherwise compile it).
fn runtime() -> PluginRuntime {
    static RUNTIME: OnceLock<PluginRuntime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("pinterest-plugin-cache");
            let config = RuntimeConfig { cache_dir: Some(cache), max_instances: 64, ..RuntimeConfig::default() };
            let runtime = PluginRuntime::new(config).expect("runtime");
            let warm = runtime.clone();
            // The caller is inside a tokio runtime, which cannot block on another one.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
                rt.block_on(warm.load(artifacts::PINTEREST, PluginOptions::default())).expect("Pinterest loads");
            })
            .join()
            .expect("warm-up thread");
            runtime
        })
        .clone()
}

/// The sandbox without its rate limit: most tests are about something else.
fn unlimited() -> SandboxConfig {
    SandboxConfig { rate_limit_per_second: None, ..SandboxConfig::default() }
}

/// A sandbox, the plugin pointed at it, and a full-scope token pair.
struct Env {
    _sandbox: PinterestSandbox,
    handle: SandboxHandle,
    plugin: Plugin,
    config: PluginConfig,
    tokens: TokenPair,
}

impl Env {
    async fn start(sandbox: SandboxConfig) -> Self {
        Self::start_with(sandbox, HttpLimits::default(), false).await
    }

    async fn start_with(sandbox: SandboxConfig, limits: HttpLimits, capture_logs: bool) -> Self {
        let sandbox = PinterestSandbox::start(sandbox).await.expect("sandbox starts");
        let handle = sandbox.handle();
        let plugin = load_plugin(&sandbox.base_url(), limits, capture_logs).await;
        let tokens = handle.issue_tokens(&["ads:read", "ads:write"]);
        Self { config: plugin_config(&sandbox.base_url()), _sandbox: sandbox, handle, plugin, tokens }
    }

    fn creds(&self) -> Credentials {
        creds_of(&self.tokens)
    }

    fn account(&self) -> String {
        self.handle.ad_account_ids()[0].clone()
    }

    /// A customer list with an audience on it, seeded behind the plugin's back, as the
    /// `existing` target `add-users` gets.
    fn seeded_audience(&self, name: &str) -> (String, AudienceTarget) {
        let account = self.account();
        let list = self.handle.create_customer_list(&account, name, ListType::Email, &[]);
        let audience = self.handle.create_audience(&account, name, &list);
        (list.clone(), AudienceTarget::Existing(format!("{list}:{audience}:EMAIL")))
    }

    async fn add(&self, target: &AudienceTarget, users: Vec<PreparedUser>) -> Result<BatchOutcome, CallError> {
        self.plugin.add_users(&self.config, &self.creds(), &self.account(), target, batch(users)).await.map(done)
    }

    async fn remove(&self, target: &AudienceTarget, users: Vec<PreparedUser>) -> Result<BatchOutcome, CallError> {
        self.plugin.remove_users(&self.config, &self.creds(), &self.account(), target, batch(users)).await.map(done)
    }
}

/// Load the Pinterest component allowed to reach `base_url` (plain http, as for a sandbox).
async fn load_plugin(base_url: &str, limits: HttpLimits, capture_logs: bool) -> Plugin {
    let host_port = base_url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let http = HttpPolicy { plain_http_hosts: vec![host_port], limits, ..HttpPolicy::default() };
    let options =
        PluginOptions { http: Some(http), capture_logs, config: plugin_config(base_url), ..PluginOptions::default() };
    runtime().load(artifacts::PINTEREST, options).await.expect("the Pinterest component loads")
}

fn plugin_config(base_url: &str) -> PluginConfig {
    PluginConfig {
        base_url: Some(base_url.to_string()),
        client_id: Some(SandboxHandle::DEFAULT_CLIENT_ID.to_string()),
        client_secret: Some(SandboxHandle::DEFAULT_CLIENT_SECRET.to_string()),
        settings: vec![],
    }
}

fn creds_of(tokens: &TokenPair) -> Credentials {
    Credentials {
        access_token: tokens.access_token.clone(),
        refresh_token: Some(tokens.refresh_token.clone()),
        expires_at: None,
        renewable_until: None,
        scopes: vec!["ads:read".into(), "ads:write".into()],
    }
}

/// A renewal of `creds` (0.2.0 hands the plugin the whole credentials; Pinterest renews with
/// their refresh token).
fn refresh_grant(creds: &Credentials) -> Grant {
    Grant::Refresh(creds.clone())
}

/// `users` as one first-attempt batch, each batch with an id of its own.
fn batch(users: Vec<PreparedUser>) -> Batch {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    Batch { id: format!("batch-{}", NEXT.fetch_add(1, Ordering::Relaxed)), attempt: 1, users }
}

/// The per-user results of a write; Pinterest finishes every write in its call.
fn done(outcome: WriteOutcome) -> BatchOutcome {
    match outcome {
        WriteOutcome::Done(outcome) => outcome,
        WriteOutcome::Submitted(submission) => panic!("Pinterest answers synchronously, got {submission:?}"),
    }
}

fn spec(name: &str, create_if_missing: bool) -> AudienceSpec {
    AudienceSpec {
        id: None,
        name: name.to_string(),
        identifiers: vec!["email".into()],
        description: Some("synced by audience-host".into()),
        create_if_missing,
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

/// The partner's refusal inside a call error; panics on a plugin failure.
fn destination_error(err: CallError) -> DestinationError {
    match err {
        CallError::Destination(err) => err,
        CallError::Plugin(err) => panic!("the plugin itself failed: {err}"),
        err @ (CallError::HostRefused(_) | CallError::Unsupported { .. }) => panic!("not the partner's answer: {err}"),
    }
}

/// User `i` as a caller would send it: an email with stray spaces and capitals.
fn raw_email_user(i: usize) -> RawUser {
    RawUser {
        key: format!("user-{i}"),
        identifiers: vec![Identifier { kind: "email".into(), value: format!(" User{i}@Example.COM ") }],
        consent: None,
    }
}

/// What Pinterest must receive for user `i`: SHA-256 of the trimmed, lowercased address,
/// computed here independently of the plugin.
fn expected_hash(i: usize) -> String {
    sha256_hex(&format!("user{i}@example.com"))
}

/// Users `range` prepared by the plugin, all of them ready.
async fn prepared_users(plugin: &Plugin, range: std::ops::Range<usize>) -> Vec<PreparedUser> {
    let raw: Vec<RawUser> = range.map(raw_email_user).collect();
    plugin
        .prepare_users(&["email".into()], raw)
        .await
        .expect("prepare-users runs")
        .into_iter()
        .map(|p| match p {
            Preparation::Ready(user) => user,
            Preparation::NotSynced(why) => panic!("a valid email was not synced: {why}"),
        })
        .collect()
}

/// Add `users` to a new audience named `name` the way the host does: the first batch creates
/// it, the rest go to the audience it reported. Returns the audience id.
async fn sync_into_new_audience(env: &Env, name: &str, users: Vec<PreparedUser>) -> String {
    let batch_size = env.plugin.manifest().limits.max_batch_size as usize;
    let mut audience_id: Option<String> = None;
    for batch in users.chunks(batch_size) {
        let target = match &audience_id {
            None => AudienceTarget::Create(spec(name, true)),
            Some(id) => AudienceTarget::Existing(id.clone()),
        };
        let outcome = env.add(&target, batch.to_vec()).await.expect("batch added");
        assert!(outcome.rejected.is_empty(), "nobody is refused: {:?}", outcome.rejected.first());
        if audience_id.is_none() {
            audience_id = Some(outcome.created.expect("the first batch reports the audience it created").id);
        }
    }
    audience_id.expect("at least one batch")
}

/// The customer list id inside the plugin's opaque audience id.
fn list_of(audience_id: &str) -> String {
    audience_id.split(':').next().expect("list id").to_string()
}

// ---------------------------------------------------------------------------------------------
// OAuth
// ---------------------------------------------------------------------------------------------

const REDIRECT_URI: &str = "https://audience-host.test/oauth/callback";

fn code_grant(code: &str) -> Grant {
    Grant::AuthorizationCode(AuthCode { code: code.to_string(), redirect_uri: REDIRECT_URI.into() })
}

#[tokio::test]
async fn authorization_code_exchange_gives_pinterest_tokens_that_expire_in_the_future_with_the_granted_scopes() {
    let env = Env::start(unlimited()).await;
    let code = env.handle.issue_authorization_code(SandboxHandle::DEFAULT_CLIENT_ID, REDIRECT_URI);
    let before = now_unix();
    let creds = env.plugin.authorize(&env.config, code_grant(&code)).await.expect("code exchanged");
    let after = now_unix();

    assert!(creds.access_token.starts_with("pina"), "an access token: {}", &creds.access_token[..4]);
    let refresh = creds.refresh_token.as_deref().expect("a refresh token");
    assert!(refresh.starts_with("pinr"), "a refresh token");
    // The sandbox's access tokens live 30 days; `expires_at` is absolute (now + expires_in).
    let ttl = SandboxConfig::default().access_token_ttl.as_secs();
    let expires_at = creds.expires_at.expect("an expiry");
    assert!((before + ttl..=after + ttl).contains(&expires_at), "expires_at {expires_at} is now + {ttl}s");
    assert_eq!(creds.scopes, vec!["ads:read".to_string(), "ads:write".to_string()]);

    // The token works.
    let page = env.plugin.list_accounts(&env.config, &creds, None).await.expect("the new token is accepted");
    assert_eq!(page.accounts.len(), 3);
}

#[tokio::test]
async fn refresh_gives_a_new_access_token_and_keeps_the_refresh_token_when_pinterest_does_not_rotate_it() {
    let env = Env::start(unlimited()).await;
    let code = env.handle.issue_authorization_code(SandboxHandle::DEFAULT_CLIENT_ID, REDIRECT_URI);
    let first = env.plugin.authorize(&env.config, code_grant(&code)).await.expect("code exchanged");
    let refresh = first.refresh_token.clone().expect("refresh token");

    let renewed = env.plugin.authorize(&env.config, refresh_grant(&first)).await.expect("refreshed");
    assert_ne!(renewed.access_token, first.access_token, "a new access token");
    assert!(renewed.access_token.starts_with("pina"));
    assert_eq!(renewed.refresh_token.as_deref(), Some(refresh.as_str()), "the refresh token is kept");
    assert!(renewed.expires_at.is_some_and(|at| at > now_unix()));
    env.plugin.list_accounts(&env.config, &renewed, None).await.expect("the new access token works");

    // The kept refresh token still refreshes.
    let again = env.plugin.authorize(&env.config, refresh_grant(&renewed)).await.expect("refreshed again");
    assert_eq!(again.refresh_token.as_deref(), Some(refresh.as_str()));
}

#[tokio::test]
async fn refresh_takes_the_new_refresh_token_when_pinterest_rotates_it() {
    let env = Env::start(SandboxConfig { rotate_refresh_tokens: true, ..unlimited() }).await;
    let code = env.handle.issue_authorization_code(SandboxHandle::DEFAULT_CLIENT_ID, REDIRECT_URI);
    let first = env.plugin.authorize(&env.config, code_grant(&code)).await.expect("code exchanged");
    let old_refresh = first.refresh_token.clone().expect("refresh token");

    let renewed = env.plugin.authorize(&env.config, refresh_grant(&first)).await.expect("refreshed");
    let new_refresh = renewed.refresh_token.clone().expect("a refresh token");
    assert_ne!(new_refresh, old_refresh, "the rotated refresh token is taken");
    assert!(new_refresh.starts_with("pinr"));
    assert_ne!(renewed.access_token, first.access_token);

    // Keeping the old one would have broken the connection: it is no longer accepted.
    let err = env.plugin.authorize(&env.config, refresh_grant(&first)).await.expect_err("old token refused");
    assert!(matches!(destination_error(err), DestinationError::Unauthorized(_)));
    env.plugin.authorize(&env.config, refresh_grant(&renewed)).await.expect("the new refresh token works");
}

#[tokio::test]
async fn a_reused_authorization_code_is_unauthorized_and_the_message_blames_the_grant() {
    let env = Env::start(unlimited()).await;
    let code = env.handle.issue_authorization_code(SandboxHandle::DEFAULT_CLIENT_ID, REDIRECT_URI);
    env.plugin.authorize(&env.config, code_grant(&code)).await.expect("first exchange works");

    let err = env.plugin.authorize(&env.config, code_grant(&code)).await.expect_err("a code is single-use");
    let DestinationError::Unauthorized(message) = destination_error(err) else { panic!("not unauthorized") };
    // Pinterest answers 401 code 283 "The authorization grant is invalid"; the message says so,
    // carries the request id for Pinterest support, and does not echo the code.
    assert!(message.contains("grant"), "{message}");
    assert!(message.contains("283") && message.contains("authorization grant is invalid"), "{message}");
    assert!(message.contains("x-pinterest-rid"), "{message}");
    assert!(!message.contains(&code), "the code is not echoed: {message}");
}

#[tokio::test]
async fn a_wrong_client_secret_is_unauthorized_and_names_the_app_credentials() {
    let env = Env::start(unlimited()).await;
    let code = env.handle.issue_authorization_code(SandboxHandle::DEFAULT_CLIENT_ID, REDIRECT_URI);
    let config = PluginConfig { client_secret: Some("not-the-secret".into()), ..env.config.clone() };
    let err = env.plugin.authorize(&config, code_grant(&code)).await.expect_err("refused");
    let DestinationError::Unauthorized(message) = destination_error(err) else { panic!("not unauthorized") };
    assert!(message.contains("client-id / client-secret"), "{message}");
    assert!(!message.contains("not-the-secret"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Accounts and audiences
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn listing_accounts_walks_every_page_and_sees_each_account_exactly_once() {
    let env = Env::start(SandboxConfig { ad_accounts: 600, ..unlimited() }).await;
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = env.plugin.list_accounts(&env.config, &env.creds(), cursor.take()).await.expect("a page");
        pages += 1;
        assert!(page.accounts.iter().all(|a| !a.name.is_empty() && a.permissions == ["OWNER"]));
        seen.extend(page.accounts.into_iter().map(|a| a.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
        assert!(pages < 10, "the cursor walk ends");
    }
    assert_eq!(pages, 3, "600 accounts at 250 a page");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 600, "no account twice");
    assert_eq!(seen, env.handle.ad_account_ids(), "every account, in order");
}

#[tokio::test]
async fn upsert_finds_an_existing_audience_among_more_than_a_thousand() {
    let env = Env::start(unlimited()).await;
    let account = env.account();
    let other_account = env.handle.ad_account_ids()[1].clone();
    // Same name in another account: must not be picked.
    let foreign = env.handle.create_customer_list(&other_account, "Loyal customers", ListType::Email, &[]);
    env.handle.create_audience(&other_account, "Loyal customers", &foreign);
    let mut target = None;
    for i in 0..1_050 {
        if i == 1_040 {
            let list = env.handle.create_customer_list(&account, "Loyal customers", ListType::Email, &[]);
            let audience = env.handle.create_audience(&account, "Loyal customers", &list);
            target = Some((list, audience));
        }
        let list = env.handle.create_customer_list(&account, &format!("List {i}"), ListType::Email, &[]);
        // An audience of the right name but on another list comes first in the listing.
        let name = if i == 3 { "Loyal customers".to_string() } else { format!("List {i}") };
        env.handle.create_audience(&account, &name, &list);
    }
    let (list, audience) = target.expect("seeded");

    let outcome = env
        .plugin
        .upsert_audience(&env.config, &env.creds(), &account, &spec("Loyal customers", true))
        .await
        .expect("upsert");
    let UpsertOutcome::Ready(found) = outcome else { panic!("not ready: {outcome:?}") };
    assert!(!found.created, "found, not created");
    assert_eq!(found.id, format!("{list}:{audience}:EMAIL"), "the right list and audience");
    assert_eq!(found.name, "Loyal customers");
    assert!(found.details.contains(&("customer list id".to_string(), list.clone())), "{:?}", found.details);
    assert!(found.details.contains(&("audience id".to_string(), audience.clone())), "{:?}", found.details);
    // Nothing was created while looking.
    let summary = env.handle.summary();
    let ours = summary.ad_accounts.iter().find(|a| a.id == account).expect("account");
    assert_eq!((ours.customer_lists.len(), ours.audiences.len()), (1_051, 1_051));
    let list_pages =
        env.handle.request_log().iter().filter(|r| r.method == "GET" && r.path.ends_with("/customer_lists")).count();
    assert!(list_pages >= 5, "the 1,041st list is on the fifth page of 250 ({list_pages} pages read)");
}

#[tokio::test]
async fn a_new_audience_is_created_with_its_first_batch_of_real_users() {
    let env = Env::start(unlimited()).await;
    let account = env.account();
    let outcome =
        env.plugin.upsert_audience(&env.config, &env.creds(), &account, &spec("Newsletter", true)).await.expect("ok");
    let UpsertOutcome::CreateWithFirstBatch(why) = outcome else { panic!("expected deferral: {outcome:?}") };
    assert!(why.contains("first batch"), "{why}");
    assert_eq!(env.handle.find_customer_list(&account, "Newsletter"), None, "no empty or placeholder list");

    let users = prepared_users(&env.plugin, 0..250).await;
    let outcome = env.add(&AudienceTarget::Create(spec("Newsletter", true)), users).await.expect("first batch");
    let created = outcome.created.expect("the audience made by the first batch");
    assert!(created.created);
    assert_eq!(created.name, "Newsletter");
    let list = env.handle.find_customer_list(&account, "Newsletter").expect("the list exists now");
    let audience = env.handle.find_audience(&account, "Newsletter").expect("the audience exists now");
    assert_eq!(created.id, format!("{list}:{audience}:EMAIL"));
    let expected: HashSet<String> = (0..250).map(expected_hash).collect();
    assert_eq!(env.handle.members(&list), expected, "created with the batch's real records");

    // From now on upsert finds it.
    let again =
        env.plugin.upsert_audience(&env.config, &env.creds(), &account, &spec("Newsletter", true)).await.expect("ok");
    let UpsertOutcome::Ready(found) = again else { panic!("not ready: {again:?}") };
    assert_eq!((found.id, found.created), (created.id, false));
}

#[tokio::test]
async fn upsert_of_a_missing_audience_without_create_if_missing_is_not_found() {
    let env = Env::start(unlimited()).await;
    let account = env.account();
    env.seeded_audience("Somebody else's list");
    let err = env
        .plugin
        .upsert_audience(&env.config, &env.creds(), &account, &spec("Nobody made this", false))
        .await
        .expect_err("missing");
    let DestinationError::NotFound(message) = destination_error(err) else { panic!("not not-found") };
    assert!(message.contains("Nobody made this") && message.contains(&account), "{message}");
    assert_eq!(env.handle.find_customer_list(&account, "Nobody made this"), None, "nothing created");
}

// ---------------------------------------------------------------------------------------------
// The data path
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ten_thousand_users_land_in_the_list_exactly_in_batches_of_at_most_1900() {
    let env = Env::start(unlimited()).await;
    let max_batch = env.plugin.manifest().limits.max_batch_size;
    assert_eq!(max_batch, 1_900);
    let users = prepared_users(&env.plugin, 0..10_000).await;
    for (i, user) in users.iter().enumerate() {
        assert_eq!(user.key, format!("user-{i}"));
        assert_eq!(user.identifiers, vec![Identifier { kind: "email".into(), value: expected_hash(i) }]);
    }

    let audience_id = sync_into_new_audience(&env, "Ten thousand", users).await;

    let expected: HashSet<String> = (0..10_000).map(expected_hash).collect();
    assert_eq!(env.handle.members(&list_of(&audience_id)), expected, "exactly the 10,000 hashes");
    assert!(env.handle.max_records_per_request() <= 1_900, "{}", env.handle.max_records_per_request());
    let writes: Vec<_> = env.handle.request_log().into_iter().filter(|r| r.records.is_some()).collect();
    assert_eq!(writes.len(), 6, "10,000 users in ceil(10,000 / 1,900) requests");
    assert!(writes.iter().all(|r| r.status == 200), "every batch accepted");
}

#[tokio::test]
async fn removing_a_subset_leaves_exactly_the_rest() {
    let env = Env::start(unlimited()).await;
    let users = prepared_users(&env.plugin, 0..4_000).await;
    let audience_id = sync_into_new_audience(&env, "Churn", users.clone()).await;
    let target = AudienceTarget::Existing(audience_id.clone());

    let (gone, kept): (Vec<_>, Vec<_>) = users.into_iter().enumerate().partition(|(i, _)| i % 3 == 0);
    let gone: Vec<PreparedUser> = gone.into_iter().map(|(_, u)| u).collect();
    for batch in gone.chunks(1_900) {
        let outcome = env.remove(&target, batch.to_vec()).await.expect("removed");
        assert!(outcome.rejected.is_empty() && outcome.created.is_none());
    }
    let expected: HashSet<String> = kept.iter().map(|(i, _)| expected_hash(*i)).collect();
    assert_eq!(expected.len(), 2_666);
    assert_eq!(env.handle.members(&list_of(&audience_id)), expected);
}

// ---------------------------------------------------------------------------------------------
// Errors, as the host's retry policy sees them
// ---------------------------------------------------------------------------------------------

fn one_user() -> Vec<PreparedUser> {
    vec![PreparedUser {
        key: "u".into(),
        identifiers: vec![Identifier { kind: "email".into(), value: expected_hash(1) }],
        consent: None,
    }]
}

#[tokio::test]
async fn a_forced_429_with_retry_after_is_rate_limited_for_that_long() {
    let env = Env::start(unlimited()).await;
    let (_, target) = env.seeded_audience("Throttled");
    env.handle.set_faults(Faults {
        forced_429: Some(Forced429 { remaining: 1, retry_after: Some(Duration::from_secs(3)) }),
        ..Faults::default()
    });
    let err = env.add(&target, one_user()).await.expect_err("throttled");
    assert_eq!(destination_error(err), DestinationError::RateLimited(Some(3_000)));
    // The fault is spent; the retry goes through.
    env.add(&target, one_user()).await.expect("the retry works");
}

#[tokio::test]
async fn pinterests_own_rate_limit_is_rate_limited_without_a_wait() {
    // One request per second per token: two calls in a row cannot both get through.
    let env = Env::start(SandboxConfig { rate_limit_per_second: Some(1), ..SandboxConfig::default() }).await;
    let mut refused = None;
    for _ in 0..50 {
        if let Err(err) = env.plugin.list_accounts(&env.config, &env.creds(), None).await {
            refused = Some(destination_error(err));
            break;
        }
    }
    assert_eq!(refused, Some(DestinationError::RateLimited(None)), "no Retry-After, so no wait is invented");
    let log = env.handle.request_log();
    assert!(log.iter().any(|r| r.status == 429 && r.fault.is_none()), "refused by the limiter itself");
}

#[tokio::test]
async fn a_revoked_token_is_unauthorized() {
    let env = Env::start(unlimited()).await;
    let (_, target) = env.seeded_audience("Revoked");
    env.handle.revoke_token(&env.tokens.access_token);
    let err = env.add(&target, one_user()).await.expect_err("revoked");
    let DestinationError::Unauthorized(message) = destination_error(err) else { panic!("not unauthorized") };
    assert!(message.contains("access token invalid or expired"), "{message}");
}

#[tokio::test]
async fn an_expired_token_is_unauthorized() {
    let env = Env::start(unlimited()).await;
    env.handle.expire_access_token(&env.tokens.access_token);
    let err = env.plugin.list_accounts(&env.config, &env.creds(), None).await.expect_err("expired");
    let DestinationError::Unauthorized(message) = destination_error(err) else { panic!("not unauthorized") };
    assert!(message.contains("expired") && message.contains("1104"), "{message}");
}

#[tokio::test]
async fn a_token_without_ads_write_is_unauthorized_and_names_the_missing_scope() {
    let env = Env::start(unlimited()).await;
    let (_, target) = env.seeded_audience("Read only");
    let read_only = creds_of(&env.handle.issue_tokens(&["ads:read"]));
    let err = env
        .plugin
        .add_users(&env.config, &read_only, &env.account(), &target, batch(one_user()))
        .await
        .expect_err("scope");
    let DestinationError::Unauthorized(message) = destination_error(err) else { panic!("not unauthorized") };
    assert!(message.contains("scope") && message.contains("ads:write"), "{message}");
}

#[tokio::test]
async fn writing_to_a_deleted_customer_list_is_not_found() {
    let env = Env::start(unlimited()).await;
    let (list, target) = env.seeded_audience("Deleted");
    assert!(env.handle.delete_customer_list(&env.account(), &list));
    let err = env.add(&target, one_user()).await.expect_err("gone");
    let DestinationError::NotFound(message) = destination_error(err) else { panic!("not not-found") };
    assert!(message.contains("customer list"), "{message}");
}

#[tokio::test]
async fn unnormalised_prepared_users_are_rejected_one_by_one_and_never_sent() {
    // A prepared user that bypassed `prepare-users`: plain, mixed-case addresses. The plugin
    // sends only SHA-256 records, so it refuses these users itself instead of letting Pinterest
    // refuse the whole batch.
    let env = Env::start(unlimited()).await;
    let (list, target) = env.seeded_audience("Raw");
    let raw = |key: &str, value: &str| PreparedUser {
        key: key.into(),
        identifiers: vec![Identifier { kind: "email".into(), value: value.into() }],
        consent: None,
    };
    let users = vec![raw("a", "Alice@Example.COM"), raw("b", " bob@example.com"), raw("c", "x,y@example.com")];
    let outcome = env.add(&target, users).await.expect("answered");
    let keys: Vec<&str> = outcome.rejected.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["a", "b", "c"]);
    assert!(outcome.rejected.iter().all(|r| r.reason.contains("email")), "{:?}", outcome.rejected);
    assert!(env.handle.request_log().is_empty(), "nothing was sent");
    assert!(env.handle.members(&list).is_empty());
}

#[tokio::test]
async fn a_batch_pinterest_refuses_as_sent_is_an_invalid_request() {
    // Pinterest answers 400 to a request it will never accept (here: over its record cap).
    let env = Env::start(SandboxConfig { max_records_per_request: 10, ..unlimited() }).await;
    let (list, target) = env.seeded_audience("Too many");
    let users = prepared_users(&env.plugin, 0..11).await;
    let err = env.add(&target, users).await.expect_err("refused");
    let DestinationError::InvalidRequest(message) = destination_error(err) else { panic!("not invalid-request") };
    assert!(message.contains("Too many records") && message.contains("code 1"), "{message}");
    assert!(env.handle.members(&list).is_empty());
}

#[tokio::test]
async fn server_errors_are_transient() {
    let env = Env::start(unlimited()).await;
    let (_, target) = env.seeded_audience("Flaky");
    env.handle.set_faults(Faults { error_rate: 1.0, ..Faults::default() });
    let err = env.add(&target, one_user()).await.expect_err("5xx");
    let DestinationError::Transient(message) = destination_error(err) else { panic!("not transient") };
    assert!(message.contains("HTTP 500") || message.contains("HTTP 503"), "{message}");
}

#[tokio::test]
async fn dropped_connections_are_transient() {
    let env = Env::start(unlimited()).await;
    let (_, target) = env.seeded_audience("Dropped");
    env.handle.set_faults(Faults { drop_rate: 1.0, ..Faults::default() });
    let err = env.add(&target, one_user()).await.expect_err("dropped");
    let DestinationError::Transient(message) = destination_error(err) else { panic!("not transient") };
    assert!(message.contains("connection"), "{message}");
}

#[tokio::test]
async fn a_partner_slower_than_the_http_timeout_is_transient() {
    let limits = HttpLimits { timeout: Duration::from_millis(300), ..HttpLimits::default() };
    let env = Env::start_with(unlimited(), limits, false).await;
    let (list, target) = env.seeded_audience("Slow");
    env.handle.set_faults(Faults { latency: Duration::from_secs(3), ..Faults::default() });
    let err = env.add(&target, one_user()).await.expect_err("timed out");
    let DestinationError::Transient(message) = destination_error(err) else { panic!("not transient") };
    assert!(message.contains("timeout"), "{message}");
    assert!(env.handle.members(&list).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Normalisation and hashing, through the runtime
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn prepare_users_normalises_and_hashes_with_sha256() {
    let env = Env::start(unlimited()).await;
    let already_hashed = sha256_hex("somebody@example.com");
    let user = |key: &str, kind: &str, value: &str| RawUser {
        key: key.into(),
        identifiers: vec![Identifier { kind: kind.into(), value: value.to_string() }],
        consent: None,
    };
    let users = vec![
        user("email", "email", " Alice@Example.COM "),
        user("maid", "mobile-ad-id", "  38400000-8CF0-11BD-B23E-10B96E40000D "),
        user("hashed", "email", &already_hashed),
        user("hashed-upper", "email", &already_hashed.to_uppercase()),
        user("invalid", "email", "bob@"),
    ];
    let fields = ["email".to_string(), "mobile-ad-id".to_string()];
    let out = env.plugin.prepare_users(&fields, users).await.expect("prepared");
    let value = |p: &Preparation| match p {
        Preparation::Ready(u) => u.identifiers[0].value.clone(),
        Preparation::NotSynced(why) => panic!("not synced: {why}"),
    };

    assert_eq!(value(&out[0]), sha256_hex("alice@example.com"));
    // Known vector, so the test's own hashing is checked too.
    assert_eq!(value(&out[0]), "ff8d9819fc0e12bf0d24892e45987e249a28dce836a85cad60e28eaaa8c6d976");
    // A customer list keeps one kind (`one-kind`): the sync's first supported field, email.
    // A user with only a mobile ad id cannot join it.
    let Preparation::NotSynced(why) = &out[1] else { panic!("a MAID-only user joined an email list") };
    assert!(why.contains("no email present") && why.contains("mobile-ad-id"), "{why}");
    assert_eq!(value(&out[2]), already_hashed, "a SHA-256 passes through");
    assert_eq!(value(&out[3]), already_hashed, "lowercased");
    let Preparation::NotSynced(why) = &out[4] else { panic!("an invalid email is not synced") };
    assert!(why.contains("email") && why.contains("'bob@' has no domain"), "{why}");

    // A sync that matches on mobile ad ids first hashes them the same way.
    let maid = vec![user("maid", "mobile-ad-id", "  38400000-8CF0-11BD-B23E-10B96E40000D ")];
    let out = env.plugin.prepare_users(&["mobile-ad-id".to_string()], maid).await.expect("prepared");
    assert_eq!(value(&out[0]), sha256_hex("38400000-8cf0-11bd-b23e-10b96e40000d"));
}

// ---------------------------------------------------------------------------------------------
// Conformance with Pinterest's OpenAPI description
// ---------------------------------------------------------------------------------------------

/// A request as it left the host, captured between the plugin and the sandbox.
#[derive(Debug, Clone)]
struct Captured {
    method: String,
    path: String,
    content_type: String,
    body: Vec<u8>,
    status: u16,
}

/// A pass-through HTTP proxy in front of the sandbox that keeps every request body: the
/// sandbox checks bodies but does not hand them out.
struct RecordingProxy {
    addr: SocketAddr,
    captured: Arc<Mutex<Vec<Captured>>>,
}

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    captured: Arc<Mutex<Vec<Captured>>>,
}

impl RecordingProxy {
    async fn start(upstream: String) -> Self {
        let captured = Arc::new(Mutex::new(Vec::new()));
        let state = Arc::new(ProxyState { upstream, client: reqwest::Client::new(), captured: captured.clone() });
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { addr, captured }
    }

    fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn captured(&self) -> Vec<Captured> {
        self.captured.lock().expect("lock").clone()
    }
}

async fn forward(
    axum::extract::State(state): axum::extract::State<Arc<ProxyState>>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::http::header;
    let url = format!("{}{}", state.upstream, uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut request = state.client.request(method.clone(), url).body(body.clone());
    for name in [header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(value) = headers.get(&name) {
            request = request.header(name, value);
        }
    }
    let answer = request.send().await.expect("the sandbox answers");
    let status = answer.status();
    let mut response = axum::response::Response::builder().status(status);
    for name in [header::CONTENT_TYPE.as_str(), header::RETRY_AFTER.as_str(), "x-pinterest-rid"] {
        if let Some(value) = answer.headers().get(name) {
            response = response.header(name, value);
        }
    }
    let answer_body = answer.bytes().await.expect("answer body");
    state.captured.lock().expect("lock").push(Captured {
        method: method.to_string(),
        path: uri.path().to_string(),
        content_type: headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string(),
        body: body.to_vec(),
        status: status.as_u16(),
    });
    response.body(axum::body::Body::from(answer_body)).expect("response")
}

/// Pinterest's description of the request `method path` (`/v5/...`): the spec's path template
/// and its `requestBody.content`, if the operation has a body.
fn spec_operation<'s>(spec: &'s Value, method: &str, path: &str) -> (String, Option<&'s Map<String, Value>>) {
    let path = path.strip_prefix("/v5").expect("a /v5 path");
    let segments: Vec<&str> = path.split('/').collect();
    let paths = spec["paths"].as_object().expect("paths");
    let (template, item) = paths
        .iter()
        .find(|(template, _)| {
            let parts: Vec<&str> = template.split('/').collect();
            parts.len() == segments.len()
                && parts.iter().zip(&segments).all(|(p, s)| p == s || (p.starts_with('{') && p.ends_with('}')))
        })
        .unwrap_or_else(|| panic!("the plugin called {method} {path}, which Pinterest does not describe"));
    let operation =
        item.get(method.to_lowercase()).unwrap_or_else(|| panic!("Pinterest has no {method} on {template}"));
    (template.clone(), operation.pointer("/requestBody/content").and_then(Value::as_object))
}

/// Check `value` against `schema`: references, `allOf`, discriminator mappings, required
/// properties, enums and basic types. Form bodies carry every value as a string.
fn check_schema(spec: &Value, schema: &Value, value: &Value, at: &str, form: bool, out: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        match reference.strip_prefix('#').and_then(|pointer| spec.pointer(pointer)) {
            Some(target) => check_schema(spec, target, value, at, form, out),
            None => out.push(format!("{at}: cannot resolve {reference}")),
        }
        return;
    }
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let ok = match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => {
                value.is_i64() || value.is_u64() || (form && value.as_str().is_some_and(|s| s.parse::<i64>().is_ok()))
            }
            "number" => value.is_number() || (form && value.as_str().is_some_and(|s| s.parse::<f64>().is_ok())),
            "boolean" => value.is_boolean() || (form && matches!(value.as_str(), Some("true" | "false"))),
            _ => true,
        };
        if !ok {
            out.push(format!("{at}: expected {kind}, got {value}"));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        out.push(format!("{at}: {value} is not one of {options:?}"));
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if value.get(name).is_none() {
                out.push(format!("{at}.{name}: required but missing"));
            }
        }
    }
    if let (Some(properties), Some(object)) = (schema.get("properties").and_then(Value::as_object), value.as_object()) {
        for (name, sub) in properties {
            if let Some(v) = object.get(name) {
                check_schema(spec, sub, v, &format!("{at}.{name}"), form, out);
            }
        }
    }
    for part in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        check_schema(spec, part, value, at, form, out);
    }
    if let Some(discriminator) = schema.get("discriminator")
        && let Some(property) = discriminator.get("propertyName").and_then(Value::as_str)
        && let Some(tag) = value.get(property).and_then(Value::as_str)
    {
        match discriminator.pointer(&format!("/mapping/{tag}")).and_then(Value::as_str) {
            Some(reference) => check_schema(spec, &serde_json::json!({ "$ref": reference }), value, at, form, out),
            None => out.push(format!("{at}.{property}: no schema for `{tag}`")),
        }
    }
}

/// A captured body as JSON (a form becomes an object of strings).
fn parse_body(request: &Captured) -> Value {
    let text = String::from_utf8(request.body.clone()).expect("UTF-8 body");
    if request.content_type.starts_with("application/x-www-form-urlencoded") {
        let url = reqwest::Url::parse(&format!("http://form.invalid/?{text}")).expect("form");
        Value::Object(url.query_pairs().map(|(k, v)| (k.into_owned(), Value::String(v.into_owned()))).collect())
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} {}: body is not JSON: {e}", request.method, request.path))
    }
}

/// The violations of one request body; panics when the spec describes no body of its type.
fn body_violations(spec: &Value, request: &Captured, body: &Value) -> Vec<String> {
    let (template, content) = spec_operation(spec, &request.method, &request.path);
    let content = content.unwrap_or_else(|| panic!("{} {template} takes no body", request.method));
    let media = request.content_type.split(';').next().unwrap_or("").trim();
    let schema = content
        .get(media)
        .and_then(|c| c.get("schema"))
        .unwrap_or_else(|| panic!("{} {template}: Content-Type `{media}` is not one the spec accepts", request.method));
    let mut out = Vec::new();
    check_schema(spec, schema, body, "body", media.ends_with("urlencoded"), &mut out);
    out
}

#[tokio::test]
async fn every_request_body_the_plugin_sends_conforms_to_pinterests_openapi_description() {
    let sandbox = PinterestSandbox::start(unlimited()).await.expect("sandbox");
    let handle = sandbox.handle();
    let proxy = RecordingProxy::start(sandbox.base_url()).await;
    let plugin = load_plugin(&proxy.base_url(), HttpLimits::default(), false).await;
    let config = plugin_config(&proxy.base_url());

    // Every endpoint the plugin uses: token (code and refresh), ad accounts, customer lists
    // (list, create, add, remove) and audiences (list, create).
    let code = handle.issue_authorization_code(SandboxHandle::DEFAULT_CLIENT_ID, REDIRECT_URI);
    let creds = plugin.authorize(&config, code_grant(&code)).await.expect("code exchanged");
    let creds = plugin.authorize(&config, refresh_grant(&creds)).await.expect("refreshed");
    let account = plugin.list_accounts(&config, &creds, None).await.expect("accounts").accounts[0].id.clone();
    let outcome = plugin.upsert_audience(&config, &creds, &account, &spec("Conformance", true)).await.expect("ok");
    assert!(matches!(outcome, UpsertOutcome::CreateWithFirstBatch(_)));
    let users = prepared_users(&plugin, 0..120).await;
    let create = AudienceTarget::Create(spec("Conformance", true));
    let outcome =
        plugin.add_users(&config, &creds, &account, &create, batch(users[..100].to_vec())).await.expect("created");
    let existing = AudienceTarget::Existing(done(outcome).created.expect("created").id);
    plugin.add_users(&config, &creds, &account, &existing, batch(users[100..].to_vec())).await.expect("added");
    plugin.remove_users(&config, &creds, &account, &existing, batch(users[..10].to_vec())).await.expect("removed");
    let found = plugin.upsert_audience(&config, &creds, &account, &spec("Conformance", true)).await.expect("ok");
    assert!(matches!(found, UpsertOutcome::Ready(ref a) if !a.created));
    // A list without its audience: upsert creates the audience (with a description).
    handle.create_customer_list(&account, "Orphan list", ListType::Email, &[expected_hash(1)]);
    let made = plugin.upsert_audience(&config, &creds, &account, &spec("Orphan list", true)).await.expect("ok");
    assert!(matches!(made, UpsertOutcome::Ready(ref a) if a.created));

    // The sandbox's own check: nothing violated the spec, nothing was refused.
    assert_eq!(handle.spec_violations(), Vec::<String>::new());
    let log = handle.request_log();
    assert!(log.iter().all(|r| (200..300).contains(&r.status)), "{log:#?}");

    // This test's own check, on the bodies as they left the host.
    let spec_json: Value = serde_json::from_str(audience_sandbox::PINTEREST_OPENAPI_JSON).expect("spec parses");
    let captured = proxy.captured();
    assert_eq!(captured.len(), log.len(), "every request went through the proxy");
    let mut seen = BTreeSet::new();
    for request in &captured {
        assert!((200..300).contains(&request.status), "{} {} got {}", request.method, request.path, request.status);
        let (template, content) = spec_operation(&spec_json, &request.method, &request.path);
        if content.is_none() {
            assert!(request.body.is_empty(), "{} {template} has no body in the spec", request.method);
            seen.insert(format!("{} {template}", request.method));
            continue;
        }
        let body = parse_body(request);
        let violations = body_violations(&spec_json, request, &body);
        assert!(violations.is_empty(), "{} {template}: {violations:#?}\nbody: {body}", request.method);
        let variant = ["grant_type", "operation_type"].iter().find_map(|k| body.get(*k)).and_then(Value::as_str);
        seen.insert(format!("{} {template}{}", request.method, variant.map(|v| format!(" {v}")).unwrap_or_default()));
        assert_checker_catches_broken_copies(&spec_json, request, &body);
    }
    let expected = [
        "GET /ad_accounts",
        "GET /ad_accounts/{ad_account_id}/audiences",
        "GET /ad_accounts/{ad_account_id}/customer_lists",
        "PATCH /ad_accounts/{ad_account_id}/customer_lists/{customer_list_id} ADD",
        "PATCH /ad_accounts/{ad_account_id}/customer_lists/{customer_list_id} REMOVE",
        "POST /ad_accounts/{ad_account_id}/audiences",
        "POST /ad_accounts/{ad_account_id}/customer_lists",
        "POST /oauth/token authorization_code",
        "POST /oauth/token refresh_token",
    ];
    assert_eq!(seen.iter().map(String::as_str).collect::<Vec<_>>(), expected, "every endpoint exercised");
}

/// Keep the conformance check honest: on a copy of the plugin's real body with one required
/// property dropped, or an enum value misspelt, the checker must complain.
fn assert_checker_catches_broken_copies(spec: &Value, request: &Captured, body: &Value) {
    let required: &[&str] = match (request.method.as_str(), body.get("grant_type").and_then(Value::as_str)) {
        ("POST", Some("authorization_code")) => &["grant_type", "code", "redirect_uri"],
        ("POST", Some("refresh_token")) => &["grant_type", "refresh_token"],
        ("POST", _) if request.path.ends_with("/customer_lists") => &["name", "records"],
        ("POST", _) if request.path.ends_with("/audiences") => &["name", "audience_type", "rule"],
        ("PATCH", _) => &["operation_type", "records"],
        other => panic!("unexpected body for {other:?}"),
    };
    for name in required {
        let mut broken = body.clone();
        broken.as_object_mut().expect("object").remove(*name);
        let found = body_violations(spec, request, &broken);
        assert!(
            found.iter().any(|v| v.contains(name)),
            "dropping `{name}` from {} {} must be caught: {found:?}",
            request.method,
            request.path
        );
    }
    for name in ["list_type", "operation_type", "audience_type"] {
        if let Some(Value::String(good)) = body.get(name) {
            let mut broken = body.clone();
            broken[name] = Value::String(good.to_lowercase());
            assert!(!body_violations(spec, request, &broken).is_empty(), "a bad `{name}` must be caught");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_token_or_secret_ever_reaches_the_plugin_log() {
    let env = Env::start_with(unlimited(), HttpLimits::default(), true).await;
    let account = env.account();
    let mut secrets = vec![
        SandboxHandle::DEFAULT_CLIENT_SECRET.to_string(),
        // base64("sandbox-app:sandbox-secret"), the Basic credentials of the token endpoint.
        "c2FuZGJveC1hcHA6c2FuZGJveC1zZWNyZXQ=".to_string(),
        env.tokens.access_token.clone(),
        env.tokens.refresh_token.clone(),
    ];

    // The happy paths.
    let code = env.handle.issue_authorization_code(SandboxHandle::DEFAULT_CLIENT_ID, REDIRECT_URI);
    secrets.push(code.clone());
    let creds = env.plugin.authorize(&env.config, code_grant(&code)).await.expect("exchanged");
    let refresh = creds.refresh_token.clone().expect("refresh");
    secrets.extend([creds.access_token.clone(), refresh.clone()]);
    let renewed = env.plugin.authorize(&env.config, refresh_grant(&creds)).await.expect("refreshed");
    secrets.push(renewed.access_token.clone());
    env.plugin.list_accounts(&env.config, &renewed, None).await.expect("accounts");
    env.plugin.upsert_audience(&env.config, &renewed, &account, &spec("Logged", true)).await.expect("upsert");
    let users = prepared_users(&env.plugin, 0..50).await;
    let audience_id = sync_into_new_audience(&env, "Logged", users.clone()).await;
    let target = AudienceTarget::Existing(audience_id);
    env.remove(&target, users[..5].to_vec()).await.expect("removed");

    // The failures, which is when a plugin logs.
    let _ = env.plugin.authorize(&env.config, code_grant(&code)).await.expect_err("reused code");
    let read_only = env.handle.issue_tokens(&["ads:read"]);
    secrets.extend([read_only.access_token.clone(), read_only.refresh_token.clone()]);
    let _ = env
        .plugin
        .add_users(&env.config, &creds_of(&read_only), &account, &target, batch(one_user()))
        .await
        .expect_err("scope");
    for faults in [
        Faults { forced_429: Some(Forced429 { remaining: 1, retry_after: None }), ..Faults::default() },
        Faults { error_rate: 1.0, ..Faults::default() },
        Faults { drop_rate: 1.0, ..Faults::default() },
    ] {
        env.handle.set_faults(faults);
        let _ = env.add(&target, one_user()).await.expect_err("fault");
    }
    env.handle.set_faults(Faults::default());
    env.handle.expire_access_token(&renewed.access_token);
    let _ = env.plugin.list_accounts(&env.config, &renewed, None).await.expect_err("expired");
    env.handle.revoke_token(&env.tokens.access_token);
    let _ = env.add(&target, one_user()).await.expect_err("revoked");

    let logs = env.plugin.captured_logs();
    assert!(logs.len() >= 7, "every failure was logged: {logs:#?}");
    assert!(logs.iter().any(|l| l.message.contains("x-pinterest-rid")), "the lines are useful: {logs:#?}");
    for line in &logs {
        for secret in &secrets {
            assert!(!line.message.contains(secret.as_str()), "a secret leaked into the log: {}", line.message);
        }
    }
}
