//! The backend-independent behaviour suite (`audience_store::suite`), run on PostgreSQL, and
//! the PostgreSQL-only guarantee that several stores can claim from one sync at once.
//!
//! Each harness creates its own scratch database on the server named by
//! `AUDIENCE_TEST_POSTGRES_URL` (default [`DEFAULT_URL`]) and drops it when dropped. When the
//! server cannot be reached the tests fail: a silent pass would hide that the backend was
//! never tested. (CI's `.ci/run` starts the server.)

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use audience_store::suite::{FLUSH, Harness, T0, claim, conserved, entry, keys, setup, users};
use audience_store::{CredentialKey, PostgresStore, Store, UserOutcome, UserResult};
use tokio_postgres::NoTls;

/// The server used when `AUDIENCE_TEST_POSTGRES_URL` is not set.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// One scratch database, created on first use.
struct PostgresHarness {
    admin_url: String,
    db: String,
    url: String,
    created: tokio::sync::OnceCell<()>,
}

impl PostgresHarness {
    fn new() -> Self {
        let admin_url = std::env::var("AUDIENCE_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        tokio_postgres::Config::from_str(&admin_url)
            .unwrap_or_else(|e| panic!("AUDIENCE_TEST_POSTGRES_URL {admin_url:?} is not a PostgreSQL URL: {e}"));
        let db = format!("audience_test_{}", &CredentialKey::generate().to_hex()[..16]);
        let url = with_database(&admin_url, &db);
        Self { admin_url, db, url, created: tokio::sync::OnceCell::new() }
    }

    async fn ensure_created(&self) {
        self.created
            .get_or_init(|| async {
                let admin = connect(&self.admin_url).await;
                admin
                    .batch_execute(&format!("CREATE DATABASE {}", self.db))
                    .await
                    .unwrap_or_else(|e| panic!("creating the scratch database {}: {e:?}", self.db));
            })
            .await;
    }
}

impl Drop for PostgresHarness {
    fn drop(&mut self) {
        if self.created.get().is_none() {
            return;
        }
        // Dropping runs inside a Tokio runtime that cannot be blocked on: use a thread with
        // its own runtime.
        let (admin_url, db) = (self.admin_url.clone(), self.db.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
            runtime.block_on(async {
                let admin = connect(&admin_url).await;
                admin.batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the scratch database {}: {dropped:?}", self.db);
        }
    }
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, format!("?{query}")),
        None => (url, String::new()),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    format!("{base}/{db}{query}")
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {url} ({e}: {:?}): start it (CI's .ci/run does), or point \
             AUDIENCE_TEST_POSTGRES_URL at a server where this user may create databases",
            std::error::Error::source(&e)
        )
    });
    tokio::spawn(connection);
    client
}

#[async_trait]
impl Harness for PostgresHarness {
    async fn open(&self, key: CredentialKey) -> Arc<dyn Store> {
        self.ensure_created().await;
        Arc::new(PostgresStore::connect(&self.url, key).await.expect("connect the store"))
    }

    async fn stored_bytes_contain(&self, needle: &[u8]) -> bool {
        self.ensure_created().await;
        let client = connect(&self.url).await;
        let tables = client
            .query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'", &[])
            .await
            .expect("list tables");
        // Rows as text: text columns as they are, bytea columns in hex.
        let text = std::str::from_utf8(needle).ok();
        let hexed = hex_lower(needle);
        for table in tables {
            let name: String = table.get(0);
            for row in client.query(&format!("SELECT t::text FROM \"{name}\" t"), &[]).await.expect("read a table") {
                let row: String = row.get(0);
                if text.is_some_and(|t| row.contains(t)) || row.contains(&hexed) {
                    return true;
                }
            }
        }
        false
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

audience_store::store_suite!(PostgresHarness::new());

/// Two stores (two hosts) on one database, two claimers each, draining one sync: no user is
/// claimed twice, every user is claimed, and the counters stay conserved.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_claim_a_user_twice() {
    const USERS: usize = 2_000;
    let harness = PostgresHarness::new();
    let key = CredentialKey::generate();
    let (a, b) = (harness.open(key.clone()).await, harness.open(key).await);
    let (_, _, sync) = setup(&*a).await;
    for part in 0..4 {
        a.enter(&sync.id, entry(users(&format!("u{part}-"), USERS / 4), T0)).await.expect("enter");
    }
    let claimer = |store: Arc<dyn Store>, id: String| {
        tokio::spawn(async move {
            let mut claimed = Vec::new();
            loop {
                let batch = store.claim_batch(&id, claim(T0 + FLUSH, 25)).await.expect("claim");
                if batch.is_empty() {
                    break claimed;
                }
                let results = batch
                    .iter()
                    .enumerate()
                    .map(|(i, u)| UserResult {
                        key: u.key.clone(),
                        outcome: if i % 2 == 0 { UserOutcome::Synced } else { UserOutcome::Errored("no".into()) },
                    })
                    .collect();
                store.complete(&id, results).await.expect("complete");
                claimed.extend(keys(&batch));
            }
        })
    };
    let tasks = [
        claimer(Arc::clone(&a), sync.id.clone()),
        claimer(Arc::clone(&b), sync.id.clone()),
        claimer(Arc::clone(&a), sync.id.clone()),
        claimer(Arc::clone(&b), sync.id.clone()),
    ];
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a claimer"));
    }
    let distinct: HashSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "a user was claimed twice");
    assert_eq!(all.len(), USERS, "every user is claimed once");
    let counts = conserved(&*b, &sync.id).await;
    assert_eq!((counts.pending, counts.in_flight, counts.synced + counts.errored), (0, 0, USERS as u64));
}

#[test]
fn the_database_name_is_replaced_in_the_url() {
    assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
    assert_eq!(with_database("postgres://u@h/postgres?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
    assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
}

/// Hosts starting together on a new database: the advisory lock lets exactly one apply each
/// migration, and every host starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hosts_starting_together_migrate_once() {
    let harness = PostgresHarness::new();
    harness.ensure_created().await;
    let start = || PostgresStore::connect(&harness.url, CredentialKey::generate());
    let (a, b, c, d) = tokio::join!(start(), start(), start(), start());
    for store in [a, b, c, d] {
        store.expect("a host starts");
    }
    let client = connect(&harness.url).await;
    let versions: Vec<i64> = client
        .query("SELECT version FROM schema_migrations ORDER BY version", &[])
        .await
        .expect("read migrations")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7]);
}

/// Intake calls sharing keys in opposite orders can deadlock in PostgreSQL; the aborted one
/// runs again, so every call succeeds and each key is queued once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_enters_in_opposite_orders_all_succeed() {
    let harness = PostgresHarness::new();
    let (a, b) = (harness.open(CredentialKey::generate()).await, harness.open(CredentialKey::generate()).await);
    let (_, _, sync) = setup(&*a).await;
    let forward = users("k", 300);
    let mut backward = forward.clone();
    backward.reverse();
    let (r0, r1, r2, r3) = tokio::join!(
        a.enter(&sync.id, entry(forward.clone(), T0)),
        b.enter(&sync.id, entry(backward.clone(), T0)),
        a.enter(&sync.id, entry(backward, T0)),
        b.enter(&sync.id, entry(forward, T0)),
    );
    let queued: u64 = [r0, r1, r2, r3].into_iter().map(|r| r.expect("enter").queued).sum();
    assert_eq!(queued, 300);
    let counts = conserved(&*a, &sync.id).await;
    assert_eq!((counts.pending, counts.deduplicated, counts.proceeded), (300, 900, 1200));
}

/// Two hosts on one database: what one announces, the other hears, in order; a listener
/// says first that it may have missed earlier announcements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hosts_announcement_reaches_the_others_listener() {
    let harness = PostgresHarness::new();
    let key = CredentialKey::generate();
    let (a, b) = (harness.open(key.clone()).await, harness.open(key).await);
    let mut heard = b.announcements().expect("PostgreSQL announces between hosts");
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), heard.recv()).await.expect("listening");
    assert_eq!(first, Some(audience_store::Announcement::Missed));
    a.announce("conn-1").await.expect("announce");
    a.announce("conn-2").await.expect("announce");
    for expected in ["conn-1", "conn-2"] {
        let got = tokio::time::timeout(std::time::Duration::from_secs(10), heard.recv()).await.expect("heard in time");
        assert_eq!(got, Some(audience_store::Announcement::Connection(expected.to_string())));
    }
}
