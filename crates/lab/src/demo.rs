//! `audience-host demo`: the whole product in one command, with nothing to set up.
//!
//! It starts a Pinterest sandbox on loopback, loads the Pinterest plugin built into this binary,
//! connects to the sandbox through the real OAuth code flow, picks an ad account, creates a sync
//! into a new audience, enters synthetic users (some without a usable email, so "Not Synced"
//! shows), and watches them arrive — then prints the host's counts beside the sandbox's own
//! count of audience members.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use audience_sandbox::{Faults, Forced429, SandboxConfig, SandboxHandle};
use audience_store::Counts;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::world::{Lab, WorldOptions};
use audience_engine::{EngineConfig, UserInput};

/// Options of the demo.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// How many synthetic users enter the sync.
    #[arg(long, default_value_t = 100_000)]
    pub users: usize,
    /// Print the final figures as one JSON object (no progress bars).
    #[arg(long)]
    pub json: bool,
    /// Fraction of partner requests the sandbox fails with a 5xx (e.g. 0.3).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Fraction of partner requests whose connection the sandbox drops.
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Extra latency the sandbox adds to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Make the sandbox answer this many requests with 429 (see --retry-after).
    #[arg(long, default_value_t = 0)]
    pub force_429: u32,
    /// The Retry-After (seconds) of the forced 429s; 0 = none.
    #[arg(long, default_value_t = 2)]
    pub retry_after: u64,
    /// The engine's flush interval in milliseconds (a partial batch waits at most this long).
    #[arg(long, default_value_t = 5_000)]
    pub flush_ms: u64,
    /// Give up waiting for delivery after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout_secs: u64,
}

/// The demo's final figures.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    /// Users sent to the intake.
    pub users: usize,
    /// Entered the sync.
    pub entered: u64,
    /// Proceeded to the next step (accepted by the intake).
    pub proceeded: u64,
    /// Delivered to the partner.
    pub synced: u64,
    /// No usable match field.
    pub not_synced: u64,
    /// Still waiting.
    pub pending: u64,
    /// Refused for good or out of retry window.
    pub errored: u64,
    /// Delivery attempts retried.
    pub retries: u64,
    /// The sandbox's own count of the audience's members.
    pub sandbox_members: usize,
    /// Requests the sandbox received with the connection's token.
    pub partner_requests: usize,
    /// The most requests the sandbox saw from the token in any one second.
    pub max_requests_in_one_second: usize,
    /// The largest number of records in one request.
    pub max_records_per_request: usize,
    /// 429 answers the sandbox gave.
    pub rate_limited: usize,
    /// Seconds from the first user entering to the last delivered.
    pub elapsed_secs: f64,
    /// Synced users per second.
    pub synced_per_second: f64,
}

/// Run the demo and print its figures.
pub async fn run(args: DemoArgs) -> anyhow::Result<DemoSummary> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory for the demo's store")?;
    let progress = if args.json { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
    let bars = MultiProgress::with_draw_target(progress);
    let say = |text: String| {
        if !args.json {
            let _ = bars.println(text);
        }
    };
    let mut engine = EngineConfig::default();
    engine.batch.flush_interval = Duration::from_millis(args.flush_ms);
    engine.retry.max_backoff = Duration::from_secs(30);
    let options = WorldOptions {
        sandbox: SandboxConfig { ad_accounts: 3, ..SandboxConfig::default() },
        engine,
        ..WorldOptions::default()
    };
    let lab = Lab::start(dir.path(), options).await?;
    let handle = lab.handle();
    let m = lab.plugin.manifest();
    say(format!("Pinterest sandbox listening on {}", lab.sandbox.base_url()));
    say(format!(
        "Loaded plugin {} {} ({} users per request, {} requests/s per token)",
        m.display_name, m.version, m.limits.max_batch_size, m.limits.requests_per_second
    ));
    say("Connected to the sandbox through OAuth (authorization code exchanged for a pina… token)".into());
    say(format!("Chose ad account {} ({})", lab.account.name, lab.account.id));
    let audience = "audience-host demo";
    let sync = lab.sync(audience).await?;
    say(format!("Created sync {} into the new audience {audience:?} (created with the first batch)", sync.id));

    handle.set_faults(Faults {
        error_rate: args.error_rate,
        drop_rate: args.drop_rate,
        latency: Duration::from_millis(args.latency_ms),
        forced_429: (args.force_429 > 0).then(|| Forced429 {
            remaining: args.force_429,
            retry_after: (args.retry_after > 0).then(|| Duration::from_secs(args.retry_after)),
        }),
    });

    let style = ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos:>7}/{len:7} {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let entered_bar = bars.add(ProgressBar::new(args.users as u64).with_style(style.clone()).with_prefix("entered"));
    let done_bar = bars.add(ProgressBar::new(args.users as u64).with_style(style).with_prefix("settled"));

    let started = Instant::now();
    let mut sent = 0;
    for chunk in synthetic_users(args.users).chunks(10_000) {
        lab.engine.enter(&sync, chunk.to_vec()).await?;
        sent += chunk.len();
        entered_bar.set_position(sent as u64);
    }
    entered_bar.finish_with_message("all users entered");

    let deadline = started + Duration::from_secs(args.timeout_secs);
    let counts = loop {
        let c = lab.engine.counts(&sync.id).await?;
        done_bar.set_position(c.synced + c.not_synced + c.errored);
        done_bar.set_message(format!(
            "synced {}  not synced {}  pending {}  errored {}  retries {}  429s {}",
            c.synced,
            c.not_synced,
            c.pending + c.in_flight,
            c.errored,
            c.retries,
            handle.count_status(429)
        ));
        if c.pending + c.in_flight == 0 {
            break c;
        }
        if Instant::now() > deadline {
            done_bar.abandon_with_message("timed out");
            break c;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let elapsed = started.elapsed();
    done_bar.finish_with_message("done");

    let members = lab.members(audience);
    let summary = summarize(&args, counts, members, &handle, &lab.credentials.access_token, elapsed);
    lab.stop().await;
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_table(&summary);
    }
    if summary.pending > 0 {
        bail!("{} users were still pending after {}s", summary.pending, args.timeout_secs);
    }
    Ok(summary)
}

/// Synthetic users: most with an email in assorted case and spacing (the plugin normalises
/// it), every 20th with an unusable one, every 50th with only a phone number (which an email
/// sync cannot match).
pub fn synthetic_users(n: usize) -> Vec<UserInput> {
    (0..n)
        .map(|i| {
            let user = UserInput::new(format!("user-{i}"));
            if i % 50 == 49 {
                user.with("phone", format!("+1 555 {i:07}"))
            } else if i % 20 == 19 {
                user.with("email", format!("user{i}@"))
            } else if i % 3 == 0 {
                user.with("email", format!("  User{i}@Example.COM "))
            } else {
                user.with("email", format!("user{i}@example.com"))
            }
        })
        .collect()
}

fn summarize(
    args: &DemoArgs,
    c: Counts,
    members: usize,
    handle: &SandboxHandle,
    token: &str,
    elapsed: Duration,
) -> DemoSummary {
    let requests = handle.request_log().iter().filter(|r| r.access_token.as_deref() == Some(token)).count();
    DemoSummary {
        users: args.users,
        entered: c.entered,
        proceeded: c.proceeded,
        synced: c.synced,
        not_synced: c.not_synced,
        pending: c.pending + c.in_flight,
        errored: c.errored,
        retries: c.retries,
        sandbox_members: members,
        partner_requests: requests,
        max_requests_in_one_second: handle.max_requests_in_window(token, Duration::from_secs(1)),
        max_records_per_request: handle.max_records_per_request(),
        rate_limited: handle.count_status(429),
        elapsed_secs: elapsed.as_secs_f64(),
        synced_per_second: c.synced as f64 / elapsed.as_secs_f64().max(1e-9),
    }
}

fn print_table(s: &DemoSummary) {
    println!();
    println!("  {:<22} {:>10}", "Entered", s.entered);
    println!("  {:<22} {:>10}", "Proceeded", s.proceeded);
    println!("  {:<22} {:>10}", "Synced", s.synced);
    println!("  {:<22} {:>10}", "Not Synced", s.not_synced);
    println!("  {:<22} {:>10}", "Pending", s.pending);
    println!("  {:<22} {:>10}", "Errored", s.errored);
    println!("  {:<22} {:>10}", "Sandbox members", s.sandbox_members);
    println!();
    println!(
        "  {} partner requests, at most {} in any second and {} records in one; {} answered 429; {} retries",
        s.partner_requests, s.max_requests_in_one_second, s.max_records_per_request, s.rate_limited, s.retries
    );
    println!("  {:.1} s from first entry to last delivery ({:.0} synced users/s)", s.elapsed_secs, s.synced_per_second);
}
