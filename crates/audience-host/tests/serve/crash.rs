//! The host as a separate process, killed with SIGKILL at random moments while users pour in,
//! restarted each time: no acknowledged user is lost and the counts stay exactly conserved;
//! killed while Google requests are submitted: the next process asks about the same requests
//! and sends nobody twice; and killed during a re-drive of errored users: nobody is lost or
//! re-driven twice.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_host_while_google_requests_are_submitted_sends_nobody_twice() -> anyhow::Result<()> {
    use audience_host::config::{PluginSettings, SecretSource};
    use audience_sandbox::{GoogleConfig, GoogleHandle, GoogleSandbox};

    // Google finishes each request 6 s after accepting it (real Google: about 30 minutes).
    let sandbox =
        GoogleSandbox::start(GoogleConfig { processing_delay: Duration::from_secs(6), ..GoogleConfig::default() })
            .await?;
    let handle = sandbox.handle();
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let store = dir.path().join("host.db");
    let config_path = dir.path().join("host.toml");
    let mut host_config = config(port, &store.display().to_string(), &dir.path().join("cache"), "http://127.0.0.1:1");
    host_config.plugins.clear();
    let mut google = PluginSettings::pointed_at(
        audience_host::service::BUILTIN_GOOGLE,
        &sandbox.base_url(),
        GoogleHandle::DEFAULT_CLIENT_ID,
        SecretSource::env("TEST_GOOGLE_SECRET"),
    );
    google.settings.insert("status-check-after-ms".into(), "500".into());
    host_config.plugins.insert("google".into(), google);
    host_config.write(&config_path)?;
    let api = ApiClient::new(format!("http://127.0.0.1:{port}"), Duration::from_secs(30))?;

    let mut host = spawn_host(&config_path)?;
    api.wait_ready().await?;
    let key = api.create_workspace(OPERATOR_KEY, "crash").await?;
    let tokens = handle.issue_tokens(&[GoogleHandle::DATAMANAGER_SCOPE, GoogleHandle::ADWORDS_SCOPE]);
    let refresh = tokens.refresh_token.clone().unwrap_or_default();
    let account = handle.accessible_customer_ids()[0].clone();
    let (_, sync_id) =
        api.connect_with_tokens_and_sync(&key, "google", (&tokens.access_token, &refresh), &account, "crash").await?;
    let emails: Vec<String> = (0..20_000).map(|i| format!("crash{i}@example.com")).collect();
    for chunk in emails.chunks(10_000) {
        api.enter_emails(&key, &sync_id, chunk).await?;
    }

    let counts = |view: &Value| {
        let c = view["counts"].clone();
        let n = |k: &str| c[k].as_u64().unwrap_or(u64::MAX);
        assert_eq!(
            n("entered"),
            n("not_synced") + n("pending") + n("submitted") + n("synced") + n("errored"),
            "conserved at every look: {c}"
        );
        c
    };
    // Every user is in a request Google accepted and has not finished: kill the host now.
    let started = Instant::now();
    loop {
        let c = counts(&api.sync(&key, &sync_id).await?);
        if c["submitted"].as_u64() == Some(20_000) {
            break;
        }
        assert!(c["synced"].as_u64() == Some(0), "synced before the partner finished: {c}");
        assert!(started.elapsed() < Duration::from_secs(60), "not submitted in time: {c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ingests_before = handle.request_log().iter().filter(|r| r.path.ends_with("audienceMembers:ingest")).count();
    host.kill_now()?;
    host = spawn_host(&config_path)?;
    api.wait_ready().await?;

    let started = Instant::now();
    let done = loop {
        let c = counts(&api.sync(&key, &sync_id).await?);
        if c["synced"].as_u64() == Some(20_000) {
            break c;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "not synced after the restart: {c}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    drop(host);
    assert_eq!(
        (done["submitted"].as_u64(), done["pending"].as_u64(), done["errored"].as_u64()),
        (Some(0), Some(0), Some(0))
    );
    let ingests_after = handle.request_log().iter().filter(|r| r.path.ends_with("audienceMembers:ingest")).count();
    assert_eq!(ingests_after, ingests_before, "no request was sent again after the restart");
    let list = handle.find_user_list(&account, "crash").expect("the list exists");
    assert_eq!(handle.member_count(&list), 20_000, "members equal Synced");
    assert!(handle.max_times_ingested(&list) <= 1, "nobody ingested twice");
    Ok(())
}

/// Users errored by the partner incident and re-driven: eight of the store's re-drive
/// transactions (5,000 users each).
const REDRIVEN: usize = 40_000;

/// A partner incident outlasts the retry window (every request answered 500, a window of 1 s)
/// so every user of a sync ends errored; the partner recovers, the operator widens the window
/// again and re-drives the errored users (`POST /v1/syncs/{id}/users/retry` with
/// `{"state": "errored"}`, 5,000 users per store transaction), and the host is SIGKILLed at a
/// random moment during or after that call, three times, restarted each time, the call made
/// again after each restart until it says nothing is left. Whatever the moments: every user is
/// synced and in the audience once, each re-driven exactly once (two entries: the first and
/// the re-drive), nobody is left errored, and the counts are conserved at every look.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_host_during_a_redrive_of_errored_users_loses_and_repeats_nobody() -> anyhow::Result<()> {
    use audience_sandbox::Faults;

    let sandbox = PinterestSandbox::start(SandboxConfig::default()).await?;
    let handle = sandbox.handle();
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let store = dir.path().join("host.db");
    let config_path = dir.path().join("host.toml");
    let host_config = config(port, &store.display().to_string(), &dir.path().join("cache"), &sandbox.base_url());
    let mut incident = host_config.clone();
    incident.engine.retry.window = Duration::from_secs(1);
    incident.write(&config_path)?;
    let api = ApiClient::new(format!("http://127.0.0.1:{port}"), Duration::from_secs(30))?;

    let mut host = spawn_host(&config_path)?;
    api.wait_ready().await?;
    let key = api.create_workspace(OPERATOR_KEY, "redrive").await?;
    let account = handle.ad_account_ids()[0].clone();
    let (_, sync_id) = api.connect_and_sync(&key, &handle, &account, "redrive").await?;
    let counts = async || -> anyhow::Result<Value> {
        let c = api.sync(&key, &sync_id).await?["counts"].clone();
        let n = |k: &str| c[k].as_u64().unwrap_or(u64::MAX);
        // The API's `pending` includes the users in flight.
        assert_eq!(
            n("entered"),
            n("not_synced") + n("pending") + n("submitted") + n("synced") + n("errored"),
            "conserved at every look: {c}"
        );
        Ok(c)
    };
    let settled = async |what: &str, done: &dyn Fn(&Value) -> bool| -> anyhow::Result<Value> {
        let started = Instant::now();
        loop {
            let c = counts().await?;
            if done(&c) {
                return Ok(c);
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{what}: not within a minute: {c}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };

    // The incident: the partner fails every request, and every user ends errored.
    handle.set_faults(Faults { error_rate: 1.0, ..Faults::default() });
    let emails: Vec<String> = (0..REDRIVEN).map(|i| format!("redrive{i}@example.com")).collect();
    for chunk in emails.chunks(10_000) {
        api.enter_emails(&key, &sync_id, chunk).await?;
    }
    let all = REDRIVEN as u64;
    let errored = settled("every user errored", &|c| c["errored"].as_u64() == Some(all)).await?;
    assert_eq!((errored["synced"].as_u64(), errored["entered"].as_u64()), (Some(0), Some(all)), "{errored}");
    assert!(handle.find_customer_list(&account, "redrive").is_none_or(|list| handle.members(&list).is_empty()));
    host.terminate()?;

    // The partner is back; the operator restores the retry window and re-drives everyone.
    handle.set_faults(Faults::default());
    host_config.write(&config_path)?;
    host = spawn_host(&config_path)?;
    api.wait_ready().await?;
    let retry = {
        let (api, key, path) = (api.clone(), key.clone(), format!("/v1/syncs/{sync_id}/users/retry"));
        move || {
            let (api, key, path) = (api.clone(), key.clone(), path.clone());
            async move { api.call(reqwest::Method::POST, &path, &key, Some(json!({"state": "errored"}))).await }
        }
    };
    for round in 0..3 {
        let call = tokio::spawn({
            let retry = retry.clone();
            async move {
                let started = Instant::now();
                retry().await.map(|_| started.elapsed())
            }
        });
        // The first kill aims at the call itself (a few hundred ms in a debug build), the next
        // ones at the deliveries after it; wherever they land, the same must hold.
        let wait = Duration::from_millis(rand_u64() % if round == 0 { 400 } else { 3_000 });
        tokio::time::sleep(wait).await;
        host.kill_now()?;
        let answered = call.await?;
        host = spawn_host(&config_path)?;
        api.wait_ready().await?;
        let c = counts().await?;
        eprintln!(
            "round {round}: killed {wait:?} after the call ({}), then {} entries re-driven and {} synced",
            answered.map_or("not answered".to_string(), |took| format!("answered in {took:?}")),
            c["entered"].as_u64().unwrap_or(0) - all,
            c["synced"]
        );
    }
    // The call is made again until it says no errored user is left.
    let started = Instant::now();
    while retry().await?["more"] != json!(false) {
        assert!(started.elapsed() < Duration::from_secs(60), "errored users were still left after a minute");
    }
    let done = settled("every user synced", &|c| c["pending"].as_u64() == Some(0)).await?;
    let sent: usize = handle.request_log().iter().filter(|r| r.status == 200).filter_map(|r| r.records).sum();

    let n = |k: &str| done[k].as_u64();
    assert_eq!((n("synced"), n("errored"), n("submitted")), (Some(all), Some(all), Some(0)), "{done}");
    assert_eq!(n("entered"), Some(2 * all), "each user entered once and was re-driven exactly once: {done}");
    assert_eq!(n("users"), Some(all), "{done}");
    let list = handle.find_customer_list(&account, "redrive").expect("the audience exists");
    let members = handle.members(&list);
    let hashes: std::collections::HashSet<String> =
        emails.iter().map(|e| hex::encode(Sha256::digest(e.as_bytes()))).collect();
    assert_eq!(members, hashes, "the audience holds every user, each once");
    eprintln!(
        "{sent} users sent in accepted requests for {all} users: resent after the kills: {}",
        sent.saturating_sub(REDRIVEN)
    );

    // The ledger: every user synced, with two entries.
    let mut seen = std::collections::HashSet::new();
    let mut cursor = String::new();
    loop {
        let page = api
            .call(
                reqwest::Method::GET,
                &format!("/v1/syncs/{sync_id}/users?state=synced&limit=1000&cursor={cursor}"),
                &key,
                None,
            )
            .await?;
        for user in page["users"].as_array().expect("users") {
            assert_eq!(user["entries"], 2, "entered once, re-driven once: {user}");
            assert!(seen.insert(user["key"].as_str().expect("a key").to_string()), "listed twice: {user}");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, emails.iter().cloned().collect(), "every user is synced in the ledger");
    let errored =
        api.call(reqwest::Method::GET, &format!("/v1/syncs/{sync_id}/users?state=errored"), &key, None).await?;
    assert_eq!(errored["users"], json!([]), "nobody is left errored");
    drop(host);
    Ok(())
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Instant::now().elapsed().as_nanos());
    hasher.finish()
}
