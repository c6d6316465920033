//! Contract versions side by side. A component built against `audience:destination@0.1.0` keeps
//! loading and delivering after the contract moved to 0.2.0: the compiled Pinterest plugin as it
//! shipped on 0.1.0 (`tests/fixtures/pinterest-0.1.0.wasm`) runs against the Pinterest sandbox
//! through the runtime's adapter, and answers `Unsupported` for what 0.1.0 never had. Beside it,
//! what only 0.2.0 has: the operator's config in `describe`, consent, submissions, the
//! `hashing` and `pacing` imports, and the host's own refusals told apart from the partner's.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use audience_plugin_artifacts as artifacts;
use audience_runtime::hashing_types::Normalization;
use audience_runtime::types::*;
use audience_runtime::{
    CallError, HttpPolicy, LoadError, MAX_HASH_VALUES, Plugin, PluginError, PluginOptions, PluginRuntime, RequestHooks,
    RuntimeConfig, SUPPORTED_VERSIONS, sha256_hex,
};
use audience_sandbox::{ListType, PinterestSandbox, SandboxConfig, SandboxHandle, TokenPair};

use crate::support::TestServer;

/// The Pinterest component as it shipped on contract 0.1.0 (see `tests/fixtures/README.md`).
const PINTEREST_0_1_0: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/pinterest-0.1.0.wasm"));

const REDIRECT_URI: &str = "https://audience-host.test/oauth/callback";

// ---------------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------------

/// One runtime for the file, with the 0.1.0 fixture compiled once into an on-disk cache before
/// any test loads it (the tests run in parallel; each would otherwise compile it).
fn runtime() -> PluginRuntime {
    static RUNTIME: OnceLock<PluginRuntime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("versions-plugin-cache");
            let config = RuntimeConfig { cache_dir: Some(cache), max_instances: 32, ..RuntimeConfig::default() };
            let runtime = PluginRuntime::new(config).expect("runtime");
            let warm = runtime.clone();
            // The caller is inside a tokio runtime, which cannot block on another one.
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
                rt.block_on(warm.load(PINTEREST_0_1_0, PluginOptions::default())).expect("the 0.1.0 fixture loads");
            })
            .join()
            .expect("warm-up thread");
            runtime
        })
        .clone()
}

fn no_config() -> PluginConfig {
    PluginConfig { base_url: None, client_id: None, client_secret: None, settings: vec![] }
}

fn settings(pairs: &[(&str, &str)]) -> PluginConfig {
    PluginConfig { settings: pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..no_config() }
}

fn test_creds() -> Credentials {
    Credentials {
        access_token: "t".into(),
        refresh_token: None,
        expires_at: None,
        renewable_until: None,
        scopes: vec![],
    }
}

fn prepared(key: &str, kind: &str, value: &str) -> PreparedUser {
    PreparedUser {
        key: key.into(),
        identifiers: vec![Identifier { kind: kind.into(), value: value.into() }],
        consent: None,
    }
}

fn batch(id: &str, users: Vec<PreparedUser>) -> Batch {
    Batch { id: id.into(), attempt: 1, users }
}

fn done(outcome: WriteOutcome) -> BatchOutcome {
    match outcome {
        WriteOutcome::Done(outcome) => outcome,
        WriteOutcome::Submitted(submission) => panic!("expected a finished write, got {submission:?}"),
    }
}

fn sha256_of(text: &str) -> String {
    sha256_hex(Normalization::None, text)
}

/// The test destination, its `describe` given `config`.
async fn test_destination(options: PluginOptions) -> Plugin {
    runtime().load(artifacts::TEST_DESTINATION, options).await.expect("the test destination loads")
}

/// The Pinterest sandbox, the 0.1.0 component allowed to reach it, and a full-scope token pair.
struct OldPinterest {
    _sandbox: PinterestSandbox,
    handle: SandboxHandle,
    plugin: Plugin,
    config: PluginConfig,
    tokens: TokenPair,
}

impl OldPinterest {
    async fn start(sandbox: SandboxConfig) -> Self {
        let sandbox = PinterestSandbox::start(sandbox).await.expect("sandbox starts");
        let handle = sandbox.handle();
        let base_url = sandbox.base_url();
        let host_port = base_url.trim_start_matches("http://").trim_end_matches('/').to_string();
        let http = HttpPolicy { plain_http_hosts: vec![host_port], ..HttpPolicy::default() };
        let options = PluginOptions { http: Some(http), ..PluginOptions::default() };
        let plugin = runtime().load(PINTEREST_0_1_0, options).await.expect("the 0.1.0 fixture loads");
        let config = PluginConfig {
            base_url: Some(base_url),
            client_id: Some(SandboxHandle::DEFAULT_CLIENT_ID.into()),
            client_secret: Some(SandboxHandle::DEFAULT_CLIENT_SECRET.into()),
            settings: vec![],
        };
        let tokens = handle.issue_tokens(&["ads:read", "ads:write"]);
        Self { _sandbox: sandbox, handle, plugin, config, tokens }
    }

    fn creds(&self) -> Credentials {
        Credentials {
            access_token: self.tokens.access_token.clone(),
            refresh_token: Some(self.tokens.refresh_token.clone()),
            expires_at: None,
            renewable_until: None,
            scopes: vec!["ads:read".into(), "ads:write".into()],
        }
    }

    fn account(&self) -> String {
        self.handle.ad_account_ids()[0].clone()
    }

    async fn write(&self, action: &str, target: &AudienceTarget, id: &str, users: Vec<PreparedUser>) -> BatchOutcome {
        let (config, creds, account) = (&self.config, self.creds(), self.account());
        let outcome = match action {
            "add" => self.plugin.add_users(config, &creds, &account, target, batch(id, users)).await,
            _ => self.plugin.remove_users(config, &creds, &account, target, batch(id, users)).await,
        };
        done(outcome.unwrap_or_else(|err| panic!("{action} {id}: {err}")))
    }
}

fn unlimited() -> SandboxConfig {
    SandboxConfig { rate_limit_per_second: None, ..SandboxConfig::default() }
}

fn email_spec(name: &str) -> AudienceSpec {
    AudienceSpec {
        id: None,
        name: name.into(),
        identifiers: vec!["email".into()],
        description: Some("synced by audience-host".into()),
        create_if_missing: true,
    }
}

/// Users `range` with a messy email each, as a caller sends them.
fn raw_emails(range: std::ops::Range<usize>) -> Vec<RawUser> {
    range
        .map(|i| RawUser {
            key: format!("user-{i}"),
            identifiers: vec![Identifier { kind: "email".into(), value: format!(" User{i}@Example.COM ") }],
            consent: None,
        })
        .collect()
}

fn ready(preparations: Vec<Preparation>) -> Vec<PreparedUser> {
    preparations
        .into_iter()
        .map(|p| match p {
            Preparation::Ready(user) => user,
            Preparation::NotSynced(why) => panic!("not synced: {why}"),
        })
        .collect()
}

fn expected_hash(i: usize) -> String {
    sha256_of(&format!("user{i}@example.com"))
}

/// Records what the `pacing` import and the gate report to the engine.
#[derive(Default)]
struct Recorder {
    budgets: Mutex<Vec<(f32, Option<Duration>)>>,
    statuses: Mutex<Vec<Option<u16>>>,
}

impl RequestHooks for Recorder {
    fn before_send(&self) -> futures::future::BoxFuture<'_, Result<audience_runtime::Departure, String>> {
        Box::pin(async { Ok(audience_runtime::Departure::untracked()) })
    }

    fn after_send(&self, outcome: Result<u16, &audience_runtime::http_types::HttpError>, _elapsed: Duration) {
        self.statuses.lock().unwrap().push(outcome.ok());
    }

    fn report_budget(&self, used_percent: f32, regain_after: Option<Duration>) {
        self.budgets.lock().unwrap().push((used_percent, regain_after));
    }
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_host_speaks_0_1_0_and_0_2_0() {
    assert_eq!(SUPPORTED_VERSIONS, ["0.1.0", "0.2.0"]);
}

#[tokio::test]
async fn the_0_1_0_component_loads_as_0_1_0_with_its_manifest_in_the_current_types() {
    let plugin = runtime().load(PINTEREST_0_1_0, PluginOptions::default()).await.expect("loads");
    assert_eq!(plugin.contract_version(), "0.1.0");
    assert_eq!(plugin.name(), "pinterest");
    let manifest = plugin.manifest();
    assert_eq!(manifest.identifiers, ["email", "mobile-ad-id", "idfa"]);
    assert_eq!(manifest.features, Features::REMOVAL, "0.1.0's supports-removal, nothing 0.1.0 could not say");
    assert_eq!(manifest.limits.max_batch_size, 1_900);
    assert_eq!((manifest.limits.max_submissions_per_audience, manifest.limits.app_requests_per_second), (0, None));
    assert_eq!(manifest.default_hosts, ["api.pinterest.com"]);
    assert!(manifest.oauth.as_ref().is_some_and(|o| o.scopes == ["ads:read", "ads:write"]), "{:?}", manifest.oauth);
    let imports = plugin.imports();
    assert!(imports.iter().any(|i| i == "audience:destination/http-client@0.1.0"), "{imports:?}");
    assert!(!imports.iter().any(|i| i.contains("@0.2.0")), "{imports:?}");

    let current = runtime().load(artifacts::TEST_DESTINATION, PluginOptions::default()).await.expect("loads");
    assert_eq!(current.contract_version(), "0.2.0");
}

#[tokio::test]
async fn a_component_of_an_unknown_version_is_refused_naming_both_supported_versions() {
    let err = runtime().load(artifacts::WRONG_VERSION, PluginOptions::default()).await.err().expect("refused");
    let LoadError::WrongVersion { found, supported } = &err else { panic!("{err:?}") };
    assert_eq!(found, "9.0.0");
    assert_eq!(supported, "0.1.0, 0.2.0");
    let message = err.to_string();
    assert!(message.contains("9.0.0") && message.contains("0.1.0, 0.2.0"), "{message}");
}

#[tokio::test]
async fn describe_gets_the_operators_config() {
    let config = PluginConfig {
        base_url: Some("http://127.0.0.1:4321".into()),
        settings: vec![("max-batch-size".into(), "7".into()), ("identifiers".into(), "email,first-name".into())],
        ..no_config()
    };
    let plugin = test_destination(PluginOptions { config, ..PluginOptions::default() }).await;
    let manifest = plugin.manifest();
    assert_eq!(manifest.limits.max_batch_size, 7);
    assert_eq!(manifest.identifiers, ["email", "first-name"], "a kind 0.1.0 could not name");
    assert_eq!(manifest.default_hosts, ["127.0.0.1"], "derived from base-url");
    let plain = test_destination(PluginOptions::default()).await;
    assert_eq!(plain.manifest().limits.max_batch_size, 100);
}

// ---------------------------------------------------------------------------------------------
// The 0.1.0 Pinterest component, end to end against the sandbox
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_0_1_0_component_prepares_users_and_their_consent_survives_the_adapter() {
    let plugin = runtime().load(PINTEREST_0_1_0, PluginOptions::default()).await.expect("loads");
    let consent = || Consent { ad_user_data: ConsentStatus::Granted, ad_personalization: ConsentStatus::Denied };
    let users = vec![
        RawUser {
            key: "a".into(),
            identifiers: vec![
                // A kind 0.1.0 has no name for: not passed down, nothing else lost.
                Identifier { kind: "first-name".into(), value: "Alice".into() },
                Identifier { kind: "email".into(), value: " Alice@Example.COM ".into() },
            ],
            consent: Some(consent()),
        },
        RawUser {
            key: "b".into(),
            identifiers: vec![Identifier { kind: "email".into(), value: "bob@".into() }],
            consent: None,
        },
        RawUser { key: "c".into(), identifiers: vec![], consent: None },
    ];
    let out = plugin.prepare_users(&["first-name".into(), "email".into()], users).await.expect("prepared");
    assert_eq!(out.len(), 3);
    let Preparation::Ready(alice) = &out[0] else { panic!("{:?}", out[0]) };
    assert_eq!(alice.key, "a");
    assert_eq!(alice.identifiers, vec![Identifier { kind: "email".into(), value: sha256_of("alice@example.com") }]);
    assert_eq!(alice.consent, Some(consent()), "consent is copied across, as 0.2.0 says");
    assert!(matches!(&out[1], Preparation::NotSynced(why) if why.contains("bob@")), "{:?}", out[1]);
    assert!(matches!(&out[2], Preparation::NotSynced(_)), "{:?}", out[2]);
}

#[tokio::test]
async fn the_0_1_0_component_authorizes_by_code_and_by_refresh() {
    let env = OldPinterest::start(unlimited()).await;
    let code = env.handle.issue_authorization_code(SandboxHandle::DEFAULT_CLIENT_ID, REDIRECT_URI);
    let grant = Grant::AuthorizationCode(AuthCode { code, redirect_uri: REDIRECT_URI.into() });
    let first = env.plugin.authorize(&env.config, grant).await.expect("code exchanged");
    assert!(first.access_token.starts_with("pina") && first.expires_at.is_some());
    assert!(first.refresh_token.as_deref().is_some_and(|t| t.starts_with("pinr")));
    assert_eq!(first.renewable_until, None, "0.1.0 cannot say");
    assert_eq!(first.scopes, ["ads:read", "ads:write"]);

    let renewed = env.plugin.authorize(&env.config, Grant::Refresh(first.clone())).await.expect("refreshed");
    assert_ne!(renewed.access_token, first.access_token);
    assert_eq!(renewed.refresh_token, first.refresh_token, "Pinterest did not rotate it; the plugin kept it");
    let page = env.plugin.list_accounts(&env.config, &renewed, None).await.expect("the renewed token works");
    assert_eq!(page.accounts.len(), 3);

    // 0.1.0 renews only with a refresh token: without one the host answers for the plugin.
    env.handle.clear_request_log();
    let bare = Credentials { refresh_token: None, ..renewed };
    let err = env.plugin.authorize(&env.config, Grant::Refresh(bare)).await.expect_err("cannot renew");
    let CallError::Destination(DestinationError::Unauthorized(why)) = &err else { panic!("{err:?}") };
    assert!(why.contains("0.1.0") && why.contains("refresh token"), "{why}");
    assert!(env.handle.request_log().is_empty(), "Pinterest was not asked");
}

#[tokio::test]
async fn the_0_1_0_component_lists_every_account_through_the_same_gate_and_hooks() {
    let env = OldPinterest::start(SandboxConfig { ad_accounts: 300, ..unlimited() }).await;
    let recorder = Arc::new(Recorder::default());
    let plugin = env.plugin.with_hooks(recorder.clone());
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..5 {
        let page = plugin.list_accounts(&env.config, &env.creds(), cursor.take()).await.expect("a page");
        assert!(page.accounts.iter().all(|a| a.permissions == ["OWNER"]));
        seen.extend(page.accounts.into_iter().map(|a| a.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, env.handle.ad_account_ids(), "every account, once, in order");
    assert_eq!(*recorder.statuses.lock().unwrap(), [Some(200), Some(200)], "0.1.0's requests reach the hooks");
}

#[tokio::test]
async fn the_0_1_0_component_upserts_adds_and_removes_users_end_to_end() {
    let env = OldPinterest::start(unlimited()).await;
    let account = env.account();
    let spec = email_spec("Old but gold");
    let outcome = env.plugin.upsert_audience(&env.config, &env.creds(), &account, &spec).await.expect("upsert");
    assert!(matches!(outcome, UpsertOutcome::CreateWithFirstBatch(_)), "{outcome:?}");

    let users = ready(env.plugin.prepare_users(&["email".into()], raw_emails(0..3_000)).await.expect("prepared"));
    // The first batch creates the audience, the rest go to the one it reported.
    let first = env.write("add", &AudienceTarget::Create(spec.clone()), "b-1", users[..1_900].to_vec()).await;
    assert!(first.rejected.is_empty() && first.unattributed.is_empty(), "{:?}", first.rejected.first());
    let created = first.created.expect("the first batch reports the audience it created");
    assert!(created.created && created.name == "Old but gold");
    assert_eq!(created.state, AudienceState::Unknown, "0.1.0 reports no state");
    let list = env.handle.find_customer_list(&account, "Old but gold").expect("the list exists");
    assert!(created.id.starts_with(&format!("{list}:")), "{}", created.id);
    let target = AudienceTarget::Existing(created.id.clone());
    let second = env.write("add", &target, "b-2", users[1_900..].to_vec()).await;
    assert!(second.rejected.is_empty() && second.created.is_none());
    let all: HashSet<String> = (0..3_000).map(expected_hash).collect();
    assert_eq!(env.handle.members(&list), all, "exactly the 3,000 hashes");

    let gone: Vec<PreparedUser> = users.iter().step_by(3).cloned().collect();
    let removed = env.write("remove", &target, "b-3", gone).await;
    assert!(removed.rejected.is_empty());
    let kept: HashSet<String> = (0..3_000).filter(|i| i % 3 != 0).map(expected_hash).collect();
    assert_eq!(env.handle.members(&list), kept, "exactly the users not removed");
    assert!(env.handle.spec_violations().is_empty(), "{:?}", env.handle.spec_violations());

    let again = env.plugin.upsert_audience(&env.config, &env.creds(), &account, &spec).await.expect("upsert");
    let UpsertOutcome::Ready(found) = again else { panic!("{again:?}") };
    assert_eq!((found.id, found.created), (created.id, false));
    assert_eq!(found.size, AudienceSize { lower: None, upper: None }, "0.1.0 reports no size");
}

#[tokio::test]
async fn exports_0_1_0_lacks_are_unsupported_and_never_reach_the_plugin_or_the_partner() {
    let env = OldPinterest::start(unlimited()).await;
    let (config, creds, account) = (&env.config, env.creds(), env.account());
    let list = env.handle.create_customer_list(&account, "Existing", ListType::Email, &[]);
    let audience = env.handle.create_audience(&account, "Existing", &list);
    let id = format!("{list}:{audience}:EMAIL");
    let target = AudienceTarget::Existing(id.clone());
    env.handle.clear_request_log();

    let unsupported = |function: &'static str| CallError::Unsupported { function, version: "0.1.0" };
    let p = &env.plugin;
    assert_eq!(p.search_audiences(config, &creds, &account, "", None).await, Err(unsupported("search-audiences")));
    assert_eq!(p.read_audience(config, &creds, &account, &id).await, Err(unsupported("read-audience")));
    assert_eq!(
        p.check_target(config, &creds, &account, &email_spec("Existing")).await,
        Err(unsupported("check-target"))
    );
    let err = p.check_submission(config, &creds, &account, &target, "job-1", 10).await.expect_err("unsupported");
    assert_eq!(err, unsupported("check-submission"));
    assert!(err.to_string().contains("0.1.0") && err.to_string().contains("0.2.0"), "says what to do: {err}");
    assert!(env.handle.request_log().is_empty(), "Pinterest was not asked");
}

// ---------------------------------------------------------------------------------------------
// The host's refusals are the host's
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_request_the_gate_refuses_fails_the_call_as_the_hosts_refusal_in_every_version() {
    let server = TestServer::start().await;
    let elsewhere = HttpPolicy { plain_http_hosts: vec!["127.0.0.1:1".into()], ..HttpPolicy::default() };
    let options = || PluginOptions { http: Some(elsewhere.clone()), ..PluginOptions::default() };

    // 0.2.0: the test destination fetches a host that is not allowed; it reports the failure
    // as the partner's invalid request, the host knows it refused.
    let current = test_destination(options()).await;
    let url = server.url("/ok");
    let config = settings(&[("behaviour", "fetch"), ("url", &url)]);
    let target = AudienceTarget::Existing("aud".into());
    let users = vec![prepared("u", "email", "u@example.com")];
    let err = current.add_users(&config, &test_creds(), "acct", &target, batch("b", users)).await.expect_err("refused");
    let CallError::HostRefused(why) = &err else { panic!("{err:?}") };
    assert!(why.contains("allow-list"), "{why}");
    assert!(err.to_string().contains("the partner was not asked"), "{err}");
    assert_eq!(server.hits(), 0);

    // 0.1.0: the old Pinterest component pointed at a sandbox the operator did not allow.
    let sandbox = PinterestSandbox::start(unlimited()).await.expect("sandbox");
    let handle = sandbox.handle();
    let old = runtime().load(PINTEREST_0_1_0, options()).await.expect("loads");
    let config = PluginConfig { base_url: Some(sandbox.base_url()), ..no_config() };
    let tokens = handle.issue_tokens(&["ads:read"]);
    let creds = Credentials { access_token: tokens.access_token, ..test_creds() };
    let err = old.list_accounts(&config, &creds, None).await.expect_err("refused");
    assert!(matches!(&err, CallError::HostRefused(why) if why.contains("allow-list")), "{err:?}");
    assert!(handle.request_log().is_empty(), "nothing reached the sandbox");

    // The same plugins, allowed, get the partner's own answers.
    let allowed = HttpPolicy { plain_http_hosts: vec![server.host_port()], ..HttpPolicy::default() };
    let current = test_destination(PluginOptions { http: Some(allowed), ..PluginOptions::default() }).await;
    let config = settings(&[("behaviour", "fetch"), ("url", &server.url("/missing"))]);
    let users = vec![prepared("u", "email", "u@example.com")];
    current
        .add_users(&config, &test_creds(), "acct", &target, batch("b", users))
        .await
        .expect("a 404 is not a failure");
}

#[tokio::test]
async fn a_partner_failure_without_a_refusal_stays_the_partners() {
    let plugin = test_destination(PluginOptions::default()).await;
    let config = settings(&[("fail-calls", "list-accounts"), ("fail-with", "not-found")]);
    let err = plugin.list_accounts(&config, &test_creds(), None).await.expect_err("fails");
    assert!(matches!(err, CallError::Destination(DestinationError::NotFound(_))), "{err:?}");
}

// ---------------------------------------------------------------------------------------------
// The imports only 0.2.0 has
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_hashing_import_hashes_exactly_like_sha256_hex() {
    let plugin = test_destination(PluginOptions::default()).await;
    let values = ["  Mary@Example.com ", "+1 (555) 987-6543", "O'Brien-Smith", "Zoë", "", "x,y\n"];
    let users: Vec<PreparedUser> = values
        .iter()
        .enumerate()
        .map(|(i, v)| PreparedUser {
            key: format!("u{i}"),
            // Two identifiers per user: the digests come back per user, in order.
            identifiers: vec![
                Identifier { kind: "email".into(), value: v.to_string() },
                Identifier { kind: "external-id".into(), value: format!("{v}#{i}") },
            ],
            consent: None,
        })
        .collect();
    let target = AudienceTarget::Existing("aud".into());
    for (name, normalization) in [
        ("none", Normalization::None),
        ("trim-lowercase", Normalization::TrimLowercase),
        ("digits-only", Normalization::DigitsOnly),
        ("letters-lowercase", Normalization::LettersLowercase),
    ] {
        let config = settings(&[("behaviour", "hash"), ("normalization", name)]);
        let outcome = plugin.add_users(&config, &test_creds(), "acct", &target, batch("h", users.clone())).await;
        let outcome = done(outcome.expect("hashed"));
        assert_eq!(outcome.rejected.len(), users.len());
        for (user, rejected) in users.iter().zip(&outcome.rejected) {
            let expected: Vec<String> = user.identifiers.iter().map(|i| sha256_hex(normalization, &i.value)).collect();
            assert_eq!(rejected.key, user.key);
            assert_eq!(rejected.reason, format!("sha256:{}", expected.join(",")), "{name}: {:?}", user.identifiers);
        }
    }
    // The documented vector, so `sha256_hex` itself is checked here too.
    assert_eq!(
        sha256_hex(Normalization::TrimLowercase, values[0]),
        "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79"
    );

    // prepare-users hashes `hash:` values through the import.
    let raw = vec![RawUser {
        key: "p".into(),
        identifiers: vec![Identifier { kind: "email".into(), value: "hash:  Bob@Example.COM ".into() }],
        consent: None,
    }];
    let out = ready(plugin.prepare_users(&["email".into()], raw).await.expect("prepared"));
    assert_eq!(out[0].identifiers[0].value, sha256_hex(Normalization::TrimLowercase, "Bob@Example.COM"));
}

#[tokio::test]
async fn the_hashing_import_takes_large_calls_and_traps_a_plugin_asking_too_much() {
    let plugin = test_destination(PluginOptions::default()).await;
    let target = AudienceTarget::Existing("aud".into());
    let call = |n: usize| {
        let config = settings(&[("behaviour", "hash"), ("hash-values", &n.to_string())]);
        let (plugin, target) = (plugin.clone(), target.clone());
        async move { plugin.add_users(&config, &test_creds(), "acct", &target, batch("h", vec![])).await }
    };
    call(20_000).await.expect("20,000 values in one call");
    let err = call(MAX_HASH_VALUES + 1).await.expect_err("over the cap");
    assert!(matches!(&err, CallError::Plugin(PluginError::Trap(why)) if why.contains("sha256-hex")), "{err:?}");
    call(3).await.expect("the next call gets a fresh instance");
}

#[tokio::test]
async fn report_budget_reaches_the_request_hooks_clamped() {
    let recorder = Arc::new(Recorder::default());
    let plugin = test_destination(PluginOptions::default()).await.with_hooks(recorder.clone());
    for reading in ["87.5:1500", "12", "150", "-3", "NaN"] {
        plugin.list_accounts(&settings(&[("budget", reading)]), &test_creds(), None).await.expect("a page");
    }
    let target = AudienceTarget::Existing("aud".into());
    let config = settings(&[("budget", "99:60000")]);
    plugin.add_users(&config, &test_creds(), "acct", &target, batch("b", vec![])).await.expect("written");
    assert_eq!(
        *recorder.budgets.lock().unwrap(),
        [
            (87.5, Some(Duration::from_millis(1_500))),
            (12.0, None),
            (100.0, None),
            (0.0, None),
            (0.0, None),
            (99.0, Some(Duration::from_secs(60))),
        ]
    );
    // Without hooks a reading goes nowhere and harms nothing.
    let bare = test_destination(PluginOptions::default()).await;
    bare.list_accounts(&settings(&[("budget", "50")]), &test_creds(), None).await.expect("a page");
}

// ---------------------------------------------------------------------------------------------
// What else 0.2.0 says, through the runtime
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn consent_and_attempts_reach_a_0_2_0_plugin_and_submissions_come_back_checked() {
    let plugin = test_destination(PluginOptions::default()).await;
    let consent = || Consent { ad_user_data: ConsentStatus::Denied, ad_personalization: ConsentStatus::Unspecified };
    let raw = vec![RawUser {
        key: "a".into(),
        identifiers: vec![Identifier { kind: "email".into(), value: " A@X.COM ".into() }],
        consent: Some(consent()),
    }];
    let out = ready(plugin.prepare_users(&["email".into()], raw).await.expect("prepared"));
    assert_eq!(out[0].consent, Some(consent()));

    let target = AudienceTarget::Existing("acct/VIP 000".into());
    let users = vec![
        prepared("ok", "email", "a@x.com"),
        prepared("reject-1", "email", "b@x.com"),
        prepared("drop-1", "email", "c"),
    ];
    let creds = test_creds();
    // The batch's attempt reaches the plugin: attempt 1 fails, its retry (same id) does not.
    let config = settings(&[("fail-attempts", "1"), ("fail-with", "rate-limited:700")]);
    let first = Batch { id: "b-6".into(), attempt: 1, users: vec![prepared("ok", "email", "a@x.com")] };
    let err = plugin.add_users(&config, &creds, "acct", &target, first.clone()).await.expect_err("attempt 1");
    assert_eq!(err, CallError::Destination(DestinationError::RateLimited(Some(700))));
    let retry = Batch { attempt: 2, ..first };
    assert!(
        done(plugin.add_users(&config, &creds, "acct", &target, retry).await.expect("attempt 2")).rejected.is_empty()
    );

    let config = settings(&[("write", "submitted"), ("check-after-ms", "25")]);
    let answer = plugin.add_users(&config, &creds, "acct", &target, batch("b-7", users)).await.expect("submitted");
    let WriteOutcome::Submitted(submission) = answer else { panic!("{answer:?}") };
    assert_eq!(submission.check_after_ms, 25);
    let status = plugin.check_submission(&config, &creds, "acct", &target, &submission.id, 3).await.expect("checked");
    let SubmissionStatus::Finished(outcome) = status else { panic!("{status:?}") };
    assert_eq!(outcome.rejected.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["reject-1"]);
    assert_eq!(outcome.unattributed.iter().map(|u| u.count).sum::<u32>(), 1);

    // Unattributed rows count against the batch too: more than were sent breaks the contract,
    // whether the write finished at once or later.
    let err = plugin.check_submission(&config, &creds, "acct", &target, &submission.id, 1).await.expect_err("too many");
    assert!(
        matches!(&err, CallError::Plugin(PluginError::Contract(why)) if why.contains("in a batch of 1")),
        "{err:?}"
    );
    let config = settings(&[("unattributed", "5")]);
    let users = vec![prepared("ok", "email", "a@x.com")];
    let err = plugin.add_users(&config, &creds, "acct", &target, batch("b-8", users)).await.expect_err("too many");
    assert!(
        matches!(&err, CallError::Plugin(PluginError::Contract(why)) if why.contains("5 users reported rejected in a batch of 1")),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_0_2_0_exports_0_1_0_lacks_answer_through_the_runtime() {
    let plugin = test_destination(PluginOptions::default()).await;
    let (config, creds) = (no_config(), test_creds());
    let page = plugin.search_audiences(&config, &creds, "acct", "vip", None).await.expect("a page");
    assert!(!page.audiences.is_empty() && page.audiences.iter().all(|a| a.name.starts_with("VIP")), "{page:?}");
    let first = &page.audiences[0];
    let read = plugin.read_audience(&config, &creds, "acct", &first.id).await.expect("read");
    assert_eq!(&read, first, "the same facts as the search");
    let spec = AudienceSpec { id: Some("elsewhere/x".into()), ..email_spec("x") };
    let problems = plugin.check_target(&config, &creds, "disabled-1", &spec).await.expect("checked");
    let parts: Vec<TargetPart> = problems.iter().map(|p| p.part).collect();
    assert_eq!(parts, [TargetPart::Account, TargetPart::Audience]);
}
