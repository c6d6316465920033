//! The Google Customer Match destination as audience-host runs it: the compiled component,
//! loaded by the host's plugin runtime, talking to the local Google stand-in
//! (`audience_sandbox::google`) through the host's checked `http-client`. Each test names a
//! behaviour a user would notice (a sign-in that works, every account listed including those
//! under a manager, the right people in the list after Google processed the upload, a bad
//! record named rather than failing the batch) and checks it from the outside: the stand-in's
//! exact list membership and what it says about each request.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use audience_plugin_artifacts as artifacts;
use audience_runtime::types::*;
use audience_runtime::{CallError, HttpPolicy, Plugin, PluginOptions, PluginRuntime, RuntimeConfig};
use audience_sandbox::google::UploadKeyType;
use audience_sandbox::{GoogleConfig, GoogleHandle, GoogleSandbox};
use sha2::{Digest, Sha256};

const REDIRECT_URI: &str = "https://host.test/oauth/callback";

/// One runtime for the whole file, with the Google component compiled once into an on-disk
/// cache before any test loads it.
fn runtime() -> PluginRuntime {
    static RUNTIME: OnceLock<PluginRuntime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("google-plugin-cache");
            let config = RuntimeConfig { cache_dir: Some(cache), max_instances: 64, ..RuntimeConfig::default() };
            let runtime = PluginRuntime::new(config).expect("runtime");
            let warm = runtime.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio");
                rt.block_on(warm.load(artifacts::GOOGLE, PluginOptions::default())).expect("Google loads");
            })
            .join()
            .expect("warm-up thread");
            runtime
        })
        .clone()
}

/// A stand-in, the plugin pointed at it, and credentials from a real code exchange.
struct Env {
    _sandbox: GoogleSandbox,
    handle: GoogleHandle,
    plugin: Plugin,
    config: PluginConfig,
    creds: Credentials,
}

impl Env {
    async fn start() -> Self {
        let sandbox = GoogleSandbox::start(GoogleConfig::default()).await.expect("the Google stand-in starts");
        let handle = sandbox.handle();
        let base = handle.base_url();
        let config = PluginConfig {
            base_url: Some(base.clone()),
            client_id: Some(GoogleHandle::DEFAULT_CLIENT_ID.to_string()),
            client_secret: Some(GoogleHandle::DEFAULT_CLIENT_SECRET.to_string()),
            settings: vec![("status-check-after-ms".into(), "10".into())],
        };
        let host_port = base.trim_start_matches("http://").to_string();
        let http = HttpPolicy { plain_http_hosts: vec![host_port], ..HttpPolicy::default() };
        let options = PluginOptions { http: Some(http), config: config.clone(), ..PluginOptions::default() };
        let plugin = runtime().load(artifacts::GOOGLE, options).await.expect("the Google component loads");
        let code = handle
            .issue_authorization_code(REDIRECT_URI, &[GoogleHandle::DATAMANAGER_SCOPE, GoogleHandle::ADWORDS_SCOPE]);
        let grant = Grant::AuthorizationCode(AuthCode { code, redirect_uri: REDIRECT_URI.into() });
        let creds = plugin.authorize(&config, grant).await.expect("the code exchange works");
        Self { _sandbox: sandbox, handle, plugin, config, creds }
    }

    /// A plain account the user holds directly.
    fn direct_account(&self) -> String {
        let managers = self.handle.manager_ids();
        self.handle.accessible_customer_ids().into_iter().find(|c| !managers.contains(c)).expect("a plain account")
    }

    /// A plain client under the manager, as `list-accounts` names it (`client@manager`), and
    /// the client's own id.
    fn managed_account(&self) -> (String, String) {
        let manager = self.handle.manager_ids()[0].clone();
        let client = self
            .handle
            .client_ids(&manager)
            .into_iter()
            .find(|c| self.handle.client_ids(c).is_empty())
            .expect("a plain client");
        (format!("{client}@{manager}"), client)
    }

    async fn prepare(&self, fields: &[&str], users: Vec<RawUser>) -> Vec<PreparedUser> {
        let fields: Vec<String> = fields.iter().map(|f| f.to_string()).collect();
        self.plugin
            .prepare_users(&fields, users)
            .await
            .expect("prepare-users runs")
            .into_iter()
            .map(|p| match p {
                Preparation::Ready(user) => user,
                Preparation::NotSynced(why) => panic!("a well-formed user was not synced: {why}"),
            })
            .collect()
    }

    async fn upsert(&self, account: &str, name: &str) -> Audience {
        let spec = AudienceSpec {
            id: None,
            name: name.into(),
            identifiers: vec!["email".into(), "phone".into()],
            description: Some("synced by audience-host".into()),
            create_if_missing: true,
        };
        match self.plugin.upsert_audience(&self.config, &self.creds, account, &spec).await.expect("upsert works") {
            UpsertOutcome::Ready(audience) => audience,
            other => panic!("Google creates empty lists, got {other:?}"),
        }
    }

    /// Write `users`, then follow the submission to its end the way the host does, letting the
    /// stand-in finish processing once it was asked while still processing.
    async fn write(&self, account: &str, list: &str, users: Vec<PreparedUser>, add: bool) -> BatchOutcome {
        let target = AudienceTarget::Existing(list.to_string());
        let sent = users.len();
        let written = if add {
            self.plugin.add_users(&self.config, &self.creds, account, &target, batch(users)).await
        } else {
            self.plugin.remove_users(&self.config, &self.creds, account, &target, batch(users)).await
        };
        let submission = match written.expect("the write is accepted") {
            WriteOutcome::Submitted(submission) => submission,
            WriteOutcome::Done(outcome) => panic!("Google finishes later, got done({outcome:?})"),
        };
        assert_eq!(submission.check_after_ms, 10, "the status-check-after-ms setting");
        for poll in 0..5 {
            let status = self
                .plugin
                .check_submission(&self.config, &self.creds, account, &target, &submission.id, sent)
                .await
                .expect("check-submission works");
            match status {
                SubmissionStatus::Processing(_) => {
                    assert_eq!(poll, 0, "processing again after the stand-in finished");
                    self.handle.finish_processing();
                }
                SubmissionStatus::Finished(outcome) => return outcome,
                SubmissionStatus::Failed(err) => panic!("the submission failed: {err:?}"),
            }
        }
        panic!("the submission never finished")
    }
}

fn batch(users: Vec<PreparedUser>) -> Batch {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    Batch { id: format!("google-batch-{}", NEXT.fetch_add(1, Ordering::Relaxed)), attempt: 1, users }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// User `i` as a caller sends it: a Gmail address with dots, a tag and capitals, and a phone
/// number with punctuation.
fn raw_user(i: usize) -> RawUser {
    RawUser {
        key: format!("user-{i}"),
        identifiers: vec![
            Identifier { kind: "email".into(), value: format!(" Jane.Doe{i}+news@GMail.com ") },
            Identifier { kind: "phone".into(), value: format!("+1 (415) 555-{i:04}") },
        ],
        consent: None,
    }
}

/// The identifier keys Google must hold for user `i`, computed here from Google's rules.
fn expected_keys(i: usize) -> (String, String) {
    (
        GoogleHandle::email_key(&sha256_hex(&format!("janedoe{i}@gmail.com"))),
        GoogleHandle::phone_key(&sha256_hex(&format!("+1415555{i:04}"))),
    )
}

fn destination_error(err: CallError) -> DestinationError {
    match err {
        CallError::Destination(err) => err,
        other => panic!("not the partner's answer: {other}"),
    }
}

#[tokio::test]
async fn sign_in_renew_and_list_every_account_including_those_under_managers() {
    let env = Env::start().await;
    assert_eq!(env.creds.scopes.len(), 2);
    assert!(env.creds.refresh_token.is_some() && env.creds.expires_at.is_some());
    let renewed = env.plugin.authorize(&env.config, Grant::Refresh(env.creds.clone())).await.expect("refresh");
    assert_ne!(renewed.access_token, env.creds.access_token);
    assert_eq!(renewed.refresh_token, env.creds.refresh_token, "Google keeps the refresh token");

    let mut ids = Vec::new();
    let mut cursor = None;
    for _ in 0..50 {
        let page = env.plugin.list_accounts(&env.config, &renewed, cursor).await.expect("list-accounts");
        ids.extend(page.accounts.into_iter().map(|a| a.id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert!(cursor.is_none(), "the walk ends");
    let mut expected = Vec::new();
    for customer in env.handle.accessible_customer_ids() {
        expected.push(customer.clone());
        // Every account under a manager, at any depth, is reached through that manager.
        let mut below = env.handle.client_ids(&customer);
        while let Some(client) = below.pop() {
            below.extend(env.handle.client_ids(&client));
            expected.push(format!("{client}@{customer}"));
        }
    }
    ids.sort();
    expected.sort();
    assert_eq!(ids, expected);
    assert!(ids.iter().filter(|i| i.contains('@')).count() >= 5, "three clients, the sub-manager and its client");
}

#[tokio::test]
async fn members_reach_a_list_under_a_manager_and_leave_it_again() {
    let env = Env::start().await;
    let (account, client) = env.managed_account();
    let audience = env.upsert(&account, "Newsletter").await;
    assert!(audience.created);
    assert_eq!(env.handle.find_user_list(&client, "Newsletter").as_deref(), Some(audience.id.as_str()));
    let again = env.upsert(&account, "Newsletter").await;
    assert_eq!((again.id.as_str(), again.created), (audience.id.as_str(), false), "found by name");

    let users = env.prepare(&["email", "phone"], (0..5).map(raw_user).collect()).await;
    let outcome = env.write(&account, &audience.id, users.clone(), true).await;
    assert!(outcome.rejected.is_empty() && outcome.unattributed.is_empty(), "{outcome:?}");
    assert_eq!(env.handle.member_count(&audience.id), 5);
    for i in 0..5 {
        let (email, phone) = expected_keys(i);
        assert!(env.handle.is_member(&audience.id, &email), "user {i}'s email");
        assert!(env.handle.is_member(&audience.id, &phone), "user {i}'s phone");
    }
    assert_eq!(env.handle.max_times_ingested(&audience.id), 1, "nobody sent twice");

    let read = env.plugin.read_audience(&env.config, &env.creds, &account, &audience.id).await.expect("read");
    assert_eq!((read.id.as_str(), read.name.as_str()), (audience.id.as_str(), "Newsletter"));
    assert_eq!(read.identifiers.first().map(String::as_str), Some("email"));
    let found = env.plugin.search_audiences(&env.config, &env.creds, &account, "NEWS", None).await.expect("search");
    assert_eq!(found.audiences.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), vec![audience.id.as_str()]);

    let outcome = env.write(&account, &audience.id, users[..2].to_vec(), false).await;
    assert!(outcome.rejected.is_empty() && outcome.unattributed.is_empty(), "{outcome:?}");
    assert_eq!(env.handle.member_count(&audience.id), 3);
    assert!(!env.handle.is_member(&audience.id, &expected_keys(0).0));
}

#[tokio::test]
async fn a_bad_record_is_named_and_the_rest_goes_through() {
    let env = Env::start().await;
    let account = env.direct_account();
    let list = env.handle.create_user_list(&account, "Buyers", UploadKeyType::ContactId).expect("a list");
    let mut users = env.prepare(&["email"], (0..3).map(raw_user).collect()).await;
    // A user stored by an older plugin version, with a value Google cannot read as a hash.
    users.insert(
        1,
        PreparedUser {
            key: "stale".into(),
            identifiers: vec![Identifier { kind: "email".into(), value: "not-a-sha256".into() }],
            consent: None,
        },
    );
    let target = AudienceTarget::Existing(list.clone());
    let err = env.plugin.add_users(&env.config, &env.creds, &account, &target, batch(users.clone())).await;
    match destination_error(err.expect_err("Google refuses the whole request")) {
        DestinationError::RejectedUsers(rejected) => {
            assert_eq!(rejected.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), vec!["stale"]);
            assert!(rejected[0].reason.contains("audience_members[1]"), "{}", rejected[0].reason);
        }
        other => panic!("expected rejected-users, got {other:?}"),
    }
    assert_eq!(env.handle.pending_requests(), 0, "nothing was accepted");
    users.remove(1);
    let outcome = env.write(&account, &list, users, true).await;
    assert!(outcome.rejected.is_empty(), "{outcome:?}");
    assert_eq!(env.handle.member_count(&list), 3);
}

#[tokio::test]
async fn denied_consent_is_counted_as_dropped_without_names() {
    let env = Env::start().await;
    let account = env.direct_account();
    let list = env.handle.create_user_list(&account, "Consent", UploadKeyType::ContactId).expect("a list");
    let mut raw: Vec<RawUser> = (0..3).map(raw_user).collect();
    raw[2].consent = Some(Consent { ad_user_data: ConsentStatus::Denied, ad_personalization: ConsentStatus::Granted });
    let users = env.prepare(&["email", "phone"], raw).await;
    assert_eq!(users[2].consent.as_ref().map(|c| c.ad_user_data), Some(ConsentStatus::Denied));
    let outcome = env.write(&account, &list, users, true).await;
    assert!(outcome.rejected.is_empty());
    assert_eq!(outcome.unattributed.len(), 1, "{outcome:?}");
    assert_eq!(outcome.unattributed[0].count, 1);
    assert!(outcome.unattributed[0].reason.contains("DENIED_CONSENT"), "{}", outcome.unattributed[0].reason);
    assert_eq!(env.handle.member_count(&list), 2);
}

#[tokio::test]
async fn a_list_gone_or_out_of_reach_is_not_found() {
    let env = Env::start().await;
    let account = env.direct_account();
    let users = env.prepare(&["email"], vec![raw_user(1)]).await;
    let target = AudienceTarget::Existing("999999999".into());
    let err = env.plugin.add_users(&env.config, &env.creds, &account, &target, batch(users)).await;
    assert!(matches!(destination_error(err.expect_err("no such list")), DestinationError::NotFound(_)));
    let err = env.plugin.read_audience(&env.config, &env.creds, &account, "999999999").await;
    assert!(matches!(destination_error(err.expect_err("no such list")), DestinationError::NotFound(_)));
}
