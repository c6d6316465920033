//! `audience-host bench rate-limit --strict [--syncs K] [--seconds S]`: pacing one token under
//! mixed load, judged by a partner that forgives nothing.
//!
//! The plain `rate-limit` scenario lets the syncs have the token to themselves. Here, while K
//! syncs on one connection deliver a backlog that outlasts the window, everything else that
//! spends the same token happens too, as on a real platform:
//!
//! - 8 clients list the connection's ad accounts through the HTTP API in a loop
//!   (`GET /v1/connections/{id}/accounts`), honouring `Retry-After` when the host answers 429;
//! - a third of the way in, the access token expires (the sandbox's control), so the host
//!   refreshes it;
//! - half way in, a person creates a sync through the API into a new audience and enters 100
//!   users, so its customer list and audience are created.
//!
//! The figures: the K syncs' delivered users/s as a share of the ceiling (7 requests/s × 1,900
//! users), the token's requests of every kind as a share of its 7 a second (deliveries get at
//! least the share the API's calls leave them, `engine.rate.api_share`), the partner's 429s, the sandbox's *violations* (requests that arrived while their
//! token already had 7 within the preceding 1,000 ms, refused or not: what a strictly
//! enforcing partner would refuse), what the API callers got (answers by status with a sample
//! of each failure, latency; a call unanswered within 60 s counts as status 0), what became of
//! the new sync, and the connection's health at the end.
//! The host, the sandbox and the API run in this process (the lab's world, with the API served
//! on loopback).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use audience_api::{ApiState, HttpSettings, OperatorKey};
use audience_lab::bench::{all_delivering, backlogged_syncs, max_requests_per_token, total_synced};
use audience_lab::process::{ApiClient, free_port};
use audience_lab::world::{Lab, WorldOptions};
use reqwest::Method;
use serde_json::{Value, json};

const OPERATOR_KEY: &str = "bench-strict-operator-key";
/// Clients listing ad accounts through the API throughout the window.
const API_CLIENTS: usize = 8;
/// Users entered into the sync created during the window.
const NEW_SYNC_USERS: usize = 100;

/// How long an API client waits for an answer before counting the call as unanswered.
const API_TIMEOUT: Duration = Duration::from_secs(60);

/// One call an API client made: its status (0: no answer within [`API_TIMEOUT`]), how long
/// it took, and the start of its answer.
type Call = (u16, f64, String);

/// The start of an answer's body, enough to say why a call failed.
fn excerpt(body: &str) -> String {
    body.chars().take(300).collect()
}

/// List the connection's ad accounts until `deadline`, waiting out any `Retry-After`.
async fn list_accounts(api: ApiClient, key: String, connection: String, deadline: Instant) -> Vec<Call> {
    let path = format!("/v1/connections/{connection}/accounts");
    let mut calls = Vec::new();
    while Instant::now() < deadline {
        let started = Instant::now();
        let Ok(response) = api.send(Method::GET, &path, &key, None).await else {
            calls.push((0, started.elapsed().as_secs_f64(), "no answer".to_string()));
            continue;
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let body = response.text().await.unwrap_or_default();
        calls.push((status, started.elapsed().as_secs_f64(), excerpt(&body)));
        if status == 429 {
            let wait =
                Duration::from_secs(retry_after.unwrap_or(1)).min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(wait).await;
        }
    }
    calls
}

/// What became of the sync created during the window.
struct NewSync {
    status: u16,
    seconds: f64,
    id: Option<String>,
    body: String,
}

/// Create a sync into the new audience `strict-new` through the API, and enter
/// [`NEW_SYNC_USERS`] users into it so that its list and audience are created.
async fn create_sync(api: ApiClient, key: String, connection: String, account: String) -> anyhow::Result<NewSync> {
    let started = Instant::now();
    let body = json!({"connection_id": connection, "account_id": account,
                      "audience_name": "strict-new", "action": "add", "match_fields": ["email"]});
    let answer = api.send(Method::POST, "/v1/syncs", &key, Some(body)).await?;
    let status = answer.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    let body = answer.text().await.unwrap_or_default();
    let id = serde_json::from_str::<Value>(&body).ok().and_then(|v| v["id"].as_str().map(str::to_string));
    if let Some(id) = &id {
        let emails: Vec<String> = (0..NEW_SYNC_USERS).map(|i| format!("strict-new-{i}@example.com")).collect();
        api.enter_emails(&key, id, &emails).await?;
    }
    Ok(NewSync { status, seconds, id, body })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The `q` quantile (nearest rank) of sorted `values` in ms; 0 when empty.
fn quantile_ms(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    round3(values[((values.len() as f64 - 1.0) * q).round() as usize] * 1000.0)
}

/// Run the scenario over a window of `seconds` with `syncs` syncs on the token.
pub async fn run(seconds: u64, syncs: usize) -> anyhow::Result<Value> {
    anyhow::ensure!(syncs >= 1, "--syncs must be at least 1");
    anyhow::ensure!(seconds >= 3, "--seconds must be at least 3 (the refresh and the new audience happen inside)");
    let dir = tempfile::tempdir()?;
    let lab = Lab::start(dir.path(), WorldOptions::default()).await?;
    let limits = lab.plugin.manifest().limits;
    let ceiling = limits.requests_per_second * f64::from(limits.max_batch_size);

    // The API, on loopback, over the lab's engine.
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let operator = OperatorKey::new(OPERATOR_KEY).context("the bench's operator key is refused")?;
    let state = ApiState::new(lab.engine.clone(), operator, base.clone());
    let listener = audience_api::bind(&format!("127.0.0.1:{port}"), audience_api::DEFAULT_LISTEN_BACKLOG).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(audience_api::serve(listener, audience_api::router(state), HttpSettings::default(), async {
            let _ = stopped.await;
        }));
    let api = ApiClient::new(base, API_TIMEOUT)?;
    api.wait_ready().await?;
    let created = api
        .call(
            Method::POST,
            &format!("/v1/workspaces/{}/keys", lab.workspace),
            OPERATOR_KEY,
            Some(json!({ "name": "bench" })),
        )
        .await?;
    let key = created["key"].as_str().context("the new API key came without its secret")?.to_string();

    let backlog = (ceiling * (seconds as f64 + 15.0) * 1.2) as usize;
    let records = backlogged_syncs(&lab, "strict", syncs, backlog).await?;
    let ids: Vec<String> = records.iter().map(|s| s.id.clone()).collect();
    let (t0, s0) = all_delivering(&lab, &ids).await?;
    let handle = lab.handle();
    let violations0 = handle.rate_limit_violations();
    handle.clear_request_log();
    let deadline = t0 + Duration::from_secs(seconds);

    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..API_CLIENTS {
        clients.spawn(list_accounts(api.clone(), key.clone(), lab.connection.clone(), deadline));
    }
    tokio::time::sleep_until((t0 + Duration::from_secs(seconds) / 3).into()).await;
    handle.expire_access_token(&lab.credentials.access_token);
    tokio::time::sleep_until((t0 + Duration::from_secs(seconds) / 2).into()).await;
    // Beside the window, which must not wait for it.
    let creation = tokio::spawn(create_sync(api.clone(), key.clone(), lab.connection.clone(), lab.account.id.clone()));
    tokio::time::sleep_until(deadline.into()).await;
    let s1 = total_synced(&lab, &ids).await?;
    // The partner's side of the window, before the API calls still waiting end.
    let log = handle.request_log();
    let responses_429 = handle.count_status(429);
    let violations = handle.rate_limit_violations() - violations0;
    let max_per_second = max_requests_per_token(&handle);
    let elapsed = t0.elapsed();
    let mut calls = Vec::new();
    while let Some(done) = clients.join_next().await {
        calls.extend(done?);
    }
    let NewSync { status: create_status, seconds: create_seconds, id: new_sync, body: new_sync_body } =
        creation.await??;
    let connection = api.call(Method::GET, &format!("/v1/connections/{}", lab.connection), &key, None).await?;
    let new_synced = match &new_sync {
        Some(id) => lab.engine.counts(id).await?.synced,
        None => 0,
    };

    let refreshes = log.iter().filter(|r| r.path == "/v5/oauth/token" && r.status == 200).count();
    let mut partner_statuses = std::collections::BTreeMap::<String, usize>::new();
    for record in &log {
        *partner_statuses.entry(record.status.to_string()).or_default() += 1;
    }
    let mut ok: Vec<f64> = calls.iter().filter(|(s, _, _)| *s == 200).map(|(_, t, _)| *t).collect();
    ok.sort_by(f64::total_cmp);
    let refused = calls.iter().filter(|(s, _, _)| *s == 429).count();
    let mut by_status = std::collections::BTreeMap::<String, usize>::new();
    let mut samples = std::collections::BTreeMap::<String, String>::new();
    for (status, _, body) in &calls {
        *by_status.entry(status.to_string()).or_default() += 1;
        if *status != 200 {
            samples.entry(status.to_string()).or_insert_with(|| body.clone());
        }
    }
    let rate = (s1 - s0) as f64 / elapsed.as_secs_f64();
    // Every request made with the connection's token (deliveries, look-ups, the API's calls):
    // how much of the token's budget the host used, whoever the requests were for.
    let token_requests = log.iter().filter(|r| r.access_token.is_some()).count();
    let token_utilization = token_requests as f64 / (limits.requests_per_second * elapsed.as_secs_f64());
    let result = json!({
        "scenario": "rate-limit",
        "strict": true,
        "syncs": syncs,
        "seconds": round3(elapsed.as_secs_f64()),
        "delivered_users_per_second": rate.round(),
        "ceiling_users_per_second": ceiling,
        "efficiency": round3(rate / ceiling),
        "target_efficiency": 0.97,
        "token_requests": token_requests,
        "token_utilization": round3(token_utilization),
        "responses_429": responses_429,
        "rate_limit_violations": violations,
        "max_requests_in_one_second": max_per_second,
        "partner_requests": log.len(),
        "partner_answers_by_status": partner_statuses,
        "token_refreshes": refreshes,
        "api_account_listings": calls.len(),
        "api_account_listings_ok": ok.len(),
        "api_account_listings_429": refused,
        "api_account_listings_by_status": by_status,
        "api_account_listing_failures": samples,
        "api_account_listing_p50_ms": quantile_ms(&ok, 0.5),
        "api_account_listing_p99_ms": quantile_ms(&ok, 0.99),
        "new_sync_status": create_status,
        "new_sync_answer": if new_sync.is_some() { Value::Null } else { json!(excerpt(&new_sync_body)) },
        "connection_health_after": connection["health"],
        "connection_last_error": connection["last_error"],
        "new_sync_create_ms": round3(create_seconds * 1000.0),
        "new_sync_users_synced": new_synced,
        "new_audience_created": handle.find_audience(&lab.account.id, "strict-new").is_some(),
    });
    let _ = stop.send(());
    let _ = server.await;
    lab.stop().await;
    Ok(result)
}
