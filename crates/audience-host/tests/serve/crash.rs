//! The host as a separate process, killed with SIGKILL at random moments while users pour in,
//! restarted each time: no acknowledged user is lost and the counts stay exactly conserved.

use std::sync::Arc;
use std::time::{Duration, Instant};

use audience_sandbox::{PinterestSandbox, SandboxConfig};
use parking_lot::Mutex;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{ApiClient, OPERATOR_KEY, config, free_port, spawn_host};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_host_at_random_moments_loses_no_acknowledged_user() -> anyhow::Result<()> {
    let sandbox = PinterestSandbox::start(SandboxConfig::default()).await?;
    let handle = sandbox.handle();
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let store = dir.path().join("host.db");
    let config_path = dir.path().join("host.toml");
    config(port, &store.display().to_string(), &dir.path().join("cache"), &sandbox.base_url()).write(&config_path)?;
    let api = ApiClient::new(format!("http://127.0.0.1:{port}"), Duration::from_secs(10))?;
    let (client, base) = (reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?, api.base().to_string());

    let mut host = spawn_host(&config_path)?;
    api.wait_ready().await?;
    let key = api.create_workspace(OPERATOR_KEY, "crash").await?;
    let account = handle.ad_account_ids()[0].clone();
    let (tokens_access, sync_id) = api.connect_and_sync(&key, &handle, &account, "crash").await?;

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
                    acknowledged.lock().extend(emails);
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
        host.kill_now()?;
        eprintln!("round {round}: killed after {wait:?} with {} users acknowledged", acknowledged.lock().len());
        host = spawn_host(&config_path)?;
        api.wait_ready().await?;
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    feeder.await?;

    // Let the last host deliver everything.
    let started = Instant::now();
    let counts = loop {
        let view = api.sync(&key, &sync_id).await?;
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

    let acknowledged = acknowledged.lock().clone();
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
    Ok(())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish()
}
