//! The host as a separate process, killed with SIGKILL at random moments while users pour in,
//! restarted each time: no acknowledged user is lost and the counts stay exactly conserved.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audience_sandbox::{PinterestSandbox, SandboxConfig};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

mod processes;

use processes::{
    HostProcess, call, connect_and_sync, create_workspace, free_port, pinterest_section, spawn_host, wait_ready,
};

fn write_config(dir: &Path, port: u16, sandbox: &PinterestSandbox) -> std::path::PathBuf {
    let config = format!(
        r#"
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
store = "{store}"
credentials_key = {{ env = "TEST_CREDENTIALS_KEY" }}
operator_key = {{ env = "TEST_OPERATOR_KEY" }}

[engine.batch]
flush_interval = "300ms"

[engine.retry]
initial_backoff = "100ms"
max_backoff = "1s"

[runtime]
cache_dir = "{cache}"
{plugin}"#,
        store = dir.join("host.db").display(),
        cache = dir.join("cache").display(),
        plugin = pinterest_section(&sandbox.base_url()),
    );
    let path = dir.join("host.toml");
    std::fs::write(&path, config).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_host_at_random_moments_loses_no_acknowledged_user() {
    let sandbox = PinterestSandbox::start(SandboxConfig::default()).await.unwrap();
    let handle = sandbox.handle();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = write_config(dir.path(), port, &sandbox);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();

    let mut host: HostProcess = spawn_host(&config);
    wait_ready(&client, &base).await;
    let key = create_workspace(&client, &base, "crash").await;
    let account = handle.ad_account_ids()[0].clone();
    let (tokens_access, sync_id) = connect_and_sync(&client, &base, &key, &handle, &account, "crash").await;

    // A client enters users continuously; only answered calls count as acknowledged.
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let feeder = {
        let (client, base, key, sync_id, acknowledged, stop) =
            (client.clone(), base.clone(), key.clone(), sync_id.clone(), acknowledged.clone(), stop.clone());
        tokio::spawn(async move {
            let mut next = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let emails: Vec<String> = (next..next + 250).map(|i| format!("crash{i}@example.com")).collect();
                let users: Vec<Value> =
                    emails.iter().map(|e| json!({"key": e, "identifiers": [{"kind": "email", "value": e}]})).collect();
                let sent = client
                    .post(format!("{base}/v1/syncs/{sync_id}/users"))
                    .bearer_auth(&key)
                    .json(&json!({ "users": users }))
                    .send()
                    .await;
                if matches!(sent, Ok(ref r) if r.status().is_success()) {
                    acknowledged.lock().unwrap().extend(emails);
                    next += 250;
                } else {
                    // Not acknowledged: maybe committed, maybe not. Move on with new keys.
                    next += 250;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        })
    };

    for round in 0..4 {
        let wait = Duration::from_millis(400 + (rand_u64() % 1200));
        tokio::time::sleep(wait).await;
        host.kill_now().expect("SIGKILL");
        eprintln!(
            "round {round}: killed after {wait:?} with {} users acknowledged",
            acknowledged.lock().unwrap().len()
        );
        host = spawn_host(&config);
        wait_ready(&client, &base).await;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    feeder.await.unwrap();

    // Let the last host deliver everything.
    let started = Instant::now();
    let counts = loop {
        let view = call(&client, reqwest::Method::GET, format!("{base}/v1/syncs/{sync_id}"), &key, None).await;
        let c = view["counts"].clone();
        let n = |k: &str| c[k].as_u64().unwrap();
        // The API's `pending` includes the users in flight.
        assert_eq!(n("entered"), n("not_synced") + n("pending") + n("synced") + n("errored"), "conserved: {c}");
        if n("pending") == 0 {
            break c;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "not delivered in time: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    drop(host);

    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 1000, "the test entered too few users ({})", acknowledged.len());
    let list = handle.find_customer_list(&account, "crash").expect("the audience exists");
    let members = handle.members(&list);
    let missing: Vec<&String> =
        acknowledged.iter().filter(|e| !members.contains(&hex::encode(Sha256::digest(e.as_bytes())))).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged users never reached the audience, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert_eq!(counts["errored"].as_u64(), Some(0));
    assert_eq!(handle.count_status(429), 0, "restarted hosts never exceeded the token's rate");
    let worst = handle.max_requests_in_window(&tokens_access, Duration::from_secs(1));
    assert!(worst <= 7, "{worst} requests in one second across restarts");
    assert!(counts["entered"].as_u64().unwrap() >= acknowledged.len() as u64);
    // Every entry synced is a distinct user in the audience (at-least-once delivery never
    // inflates the count).
    assert_eq!(counts["synced"].as_u64().unwrap() as usize, members.len(), "{counts}");
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish()
}
