//! `audience-host demo`: the whole product in one command, with nothing to set up.
//!
//! `--destination` picks the partner (default `pinterest`):
//!
//! - `pinterest`: it starts a Pinterest sandbox on loopback, loads the Pinterest plugin built
//!   into this binary, connects to the sandbox through the real OAuth code flow, picks an ad
//!   account, creates a sync into a new audience, enters synthetic users (some without a usable
//!   email, so "Not Synced" shows), and watches them arrive — then prints the host's counts
//!   beside the sandbox's own count of audience members.
//! - `meta`: the same against a Meta Marketing API sandbox and the built-in Meta plugin
//!   (Facebook Login's code flow, swapped for a long-lived token), with users carrying several
//!   identifiers each (email, phone, first and last name, country; some values invalid, some
//!   users with nothing Meta can match, so "Not Synced" shows). The figures add Meta's side:
//!   the sandbox's member count, the highest share of the ad account's `custom_audience` call
//!   budget any answer reported, and how many calls that budget refused (0: the engine paces
//!   on Meta's usage headers). The Meta sandbox has no fault that makes it count valid rows as
//!   invalid, and the plugin never sends a malformed one, so "Errored" stays 0 without faults.
//! - `google`: the same against a Google Customer Match sandbox (Google OAuth, Google Ads
//!   account discovery, the Data Manager API) and the built-in Google plugin, matching on email
//!   and phone. Google answers writes asynchronously: it accepts a request, then finishes it
//!   later (about 30 minutes on real Google), so users are first counted "Submitted" and only
//!   become Synced once the host asked `check-submission` and the sandbox finished processing.
//!   The demo's sandbox finishes after `--google-processing-ms` (2 s) so the whole arc fits in
//!   a run, and the demo ends only when nothing is pending, in flight or submitted — which is
//!   also when the sandbox's members (applied by finished requests only) can equal Synced.
//! - `all` (also accepted as `both`, its name when there were two partners): Pinterest, Meta
//!   and Google side by side in one engine, three connections and three syncs delivering at
//!   once, each summarised (with `--json`: one object per destination).
//!
//! The fault options apply to every sandbox the demo starts, except `--force-429` and
//! `--retry-after`, which are Pinterest's (Meta throttles with its own errors and usage
//! headers, Google with its per-project quotas), and `--drop-rate`, which the Google sandbox
//! has no fault for.

use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use audience_engine::{Engine, EngineConfig, UserInput};
use audience_runtime::types::{Account, Credentials, Manifest};
use audience_sandbox::google::{GoogleFaults, QuotaBucket};
use audience_sandbox::meta::MetaFaults;
use audience_sandbox::{
    Faults, Forced429, GoogleConfig, GoogleHandle, MetaConfig, MetaHandle, SandboxConfig, SandboxHandle,
};
use audience_store::{Counts, SyncRecord};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::world::{
    Google, Lab, Meta, Partner, Pinterest, SideBySide, SideBySideOptions, WorldOptions, add_sync_request,
};

/// Which partner the demo delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DemoDestination {
    /// The Pinterest sandbox and plugin.
    #[default]
    Pinterest,
    /// The Meta sandbox and plugin.
    Meta,
    /// The Google Customer Match sandbox and plugin (asynchronous: users are submitted first).
    Google,
    /// Pinterest, Meta and Google at once, in one engine (`both` is accepted for it too).
    #[value(alias = "both")]
    All,
}

/// Options of the demo.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Which partner to deliver to: pinterest, meta, google, or all three side by side.
    #[arg(long, value_enum, default_value_t = DemoDestination::Pinterest)]
    pub destination: DemoDestination,
    /// How many synthetic users enter the sync (each sync, with `--destination all`).
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
    /// Make the Pinterest sandbox answer this many requests with 429 (see --retry-after).
    #[arg(long, default_value_t = 0)]
    pub force_429: u32,
    /// The Retry-After (seconds) of the forced 429s; 0 = none.
    #[arg(long, default_value_t = 2)]
    pub retry_after: u64,
    /// The engine's flush interval in milliseconds (a partial batch waits at most this long).
    #[arg(long, default_value_t = 5_000)]
    pub flush_ms: u64,
    /// How long the Google sandbox keeps an accepted request processing before it applies it,
    /// in milliseconds (real Google: about 30 minutes).
    #[arg(long, default_value_t = 2_000)]
    pub google_processing_ms: u64,
    /// Give up waiting for delivery after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout_secs: u64,
}

/// The demo's final figures for Pinterest.
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

/// The demo's final figures for Meta.
#[derive(Debug, Clone, Serialize)]
pub struct MetaDemoSummary {
    /// Users sent to the intake.
    pub users: usize,
    /// Entered the sync.
    pub entered: u64,
    /// Proceeded to the next step (accepted by the intake).
    pub proceeded: u64,
    /// Delivered to the partner.
    pub synced: u64,
    /// Nothing Meta can match on.
    pub not_synced: u64,
    /// Still waiting.
    pub pending: u64,
    /// Refused for good (Meta counted the row invalid) or out of retry window.
    pub errored: u64,
    /// Delivery attempts retried.
    pub retries: u64,
    /// The sandbox's own count of the audience's members (distinct rows).
    pub sandbox_members: usize,
    /// Requests the sandbox received with the connection's token.
    pub partner_requests: usize,
    /// The most requests the sandbox saw addressed to the ad account in any one second.
    pub max_requests_in_one_second: usize,
    /// The largest number of rows in one `/users` request.
    pub max_rows_per_request: usize,
    /// The highest share (percent) of the ad account's `custom_audience` call budget any
    /// answer reported in `X-Business-Use-Case-Usage`.
    pub max_usage_percent: u64,
    /// Calls counted against the ad account's `custom_audience` budget in its window at the end.
    pub budget_calls_used: u64,
    /// The ad account's `custom_audience` budget: calls per window (Meta's: per hour).
    pub budget_calls: u64,
    /// Calls the `custom_audience` budget refused (code 80003).
    pub throttled: usize,
    /// Seconds from the first user entering to the last delivered.
    pub elapsed_secs: f64,
    /// Synced users per second.
    pub synced_per_second: f64,
}

/// The demo's final figures for Google.
#[derive(Debug, Clone, Serialize)]
pub struct GoogleDemoSummary {
    /// Users sent to the intake.
    pub users: usize,
    /// Entered the sync.
    pub entered: u64,
    /// Proceeded to the next step (accepted by the intake).
    pub proceeded: u64,
    /// Delivered: in a request Google finished processing.
    pub synced: u64,
    /// No usable email or phone.
    pub not_synced: u64,
    /// Still waiting for a batch, a retry, or in a request right now.
    pub pending: u64,
    /// In a request Google accepted but has not finished processing.
    pub submitted: u64,
    /// The most users counted submitted at any look during the run.
    pub max_submitted: u64,
    /// Refused for good or out of retry window.
    pub errored: u64,
    /// Delivery attempts retried.
    pub retries: u64,
    /// The sandbox's own count of the list's members (applied by finished requests only).
    pub sandbox_members: usize,
    /// Requests the sandbox received with the connection's token.
    pub partner_requests: usize,
    /// `audienceMembers:ingest` (and remove) requests the Data Manager quota counted.
    pub ingest_requests: u64,
    /// `requestStatus:retrieve` requests (the host's `check-submission`) the quota counted.
    pub status_checks: u64,
    /// The most ingest requests the sandbox saw in any one second.
    pub max_requests_in_one_second: usize,
    /// The largest number of audience members in one request.
    pub max_members_per_request: usize,
    /// 429 RESOURCE_EXHAUSTED answers the sandbox gave (quota refusals).
    pub quota_refusals: u64,
    /// How long the sandbox kept each request processing, in seconds.
    pub processing_secs: f64,
    /// Seconds from the first user entering to the last finished.
    pub elapsed_secs: f64,
    /// Synced users per second.
    pub synced_per_second: f64,
}

/// What a demo run measured.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum DemoReport {
    /// `--destination pinterest`.
    Pinterest(DemoSummary),
    /// `--destination meta`.
    Meta(MetaDemoSummary),
    /// `--destination google`.
    Google(GoogleDemoSummary),
    /// `--destination all`: one object per destination (boxed: three summaries in one).
    All(Box<SideBySideReport>),
}

/// The figures of `--destination all`, one object per destination.
#[derive(Debug, Clone, Serialize)]
pub struct SideBySideReport {
    /// The Pinterest sync.
    pub pinterest: DemoSummary,
    /// The Meta sync.
    pub meta: MetaDemoSummary,
    /// The Google sync.
    pub google: GoogleDemoSummary,
}

impl DemoReport {
    /// Users not settled at the end, over all syncs: pending, in flight or submitted.
    pub fn pending(&self) -> u64 {
        match self {
            DemoReport::Pinterest(s) => s.pending,
            DemoReport::Meta(s) => s.pending,
            DemoReport::Google(s) => s.pending + s.submitted,
            DemoReport::All(all) => {
                all.pinterest.pending + all.meta.pending + all.google.pending + all.google.submitted
            }
        }
    }
}

/// Run the demo and print its figures.
pub async fn run(args: DemoArgs) -> anyhow::Result<DemoReport> {
    let dir = tempfile::tempdir().context("cannot create a temporary directory for the demo's store")?;
    let screen = Screen::new(args.json);
    let report = match args.destination {
        DemoDestination::Pinterest => DemoReport::Pinterest(pinterest_alone(&args, dir.path(), &screen).await?),
        DemoDestination::Meta => DemoReport::Meta(meta_alone(&args, dir.path(), &screen).await?),
        DemoDestination::Google => DemoReport::Google(google_alone(&args, dir.path(), &screen).await?),
        DemoDestination::All => side_by_side(&args, dir.path(), &screen).await?,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        match &report {
            DemoReport::Pinterest(s) => print_pinterest(s),
            DemoReport::Meta(s) => print_meta(s),
            DemoReport::Google(s) => print_google(s),
            DemoReport::All(all) => {
                println!("\nPinterest");
                print_pinterest(&all.pinterest);
                println!("\nMeta");
                print_meta(&all.meta);
                println!("\nGoogle");
                print_google(&all.google);
            }
        }
    }
    if report.pending() > 0 {
        bail!("{} users were still pending or submitted after {}s", report.pending(), args.timeout_secs);
    }
    Ok(report)
}

fn engine_config(args: &DemoArgs) -> EngineConfig {
    let mut engine = EngineConfig::default();
    engine.batch.flush_interval = Duration::from_millis(args.flush_ms);
    engine.retry.max_backoff = Duration::from_secs(30);
    engine
}

fn pinterest_sandbox() -> SandboxConfig {
    SandboxConfig { ad_accounts: 3, ..SandboxConfig::default() }
}

fn meta_sandbox() -> MetaConfig {
    MetaConfig { ad_accounts: 3, ..MetaConfig::default() }
}

fn google_sandbox(args: &DemoArgs) -> GoogleConfig {
    GoogleConfig { processing_delay: Duration::from_millis(args.google_processing_ms), ..GoogleConfig::default() }
}

fn pinterest_faults(args: &DemoArgs) -> Faults {
    Faults {
        error_rate: args.error_rate,
        drop_rate: args.drop_rate,
        latency: Duration::from_millis(args.latency_ms),
        forced_429: (args.force_429 > 0).then(|| Forced429 {
            remaining: args.force_429,
            retry_after: (args.retry_after > 0).then(|| Duration::from_secs(args.retry_after)),
        }),
    }
}

fn google_faults(args: &DemoArgs) -> GoogleFaults {
    GoogleFaults { error_rate: args.error_rate, latency: Duration::from_millis(args.latency_ms), forced: None }
}

fn meta_faults(args: &DemoArgs) -> MetaFaults {
    MetaFaults {
        error_rate: args.error_rate,
        drop_rate: args.drop_rate,
        latency: Duration::from_millis(args.latency_ms),
        forced: None,
    }
}

/// The progress bars and the narration (both silent with `--json`).
struct Screen {
    bars: MultiProgress,
    quiet: bool,
}

impl Screen {
    fn new(quiet: bool) -> Self {
        let target = if quiet { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr() };
        Self { bars: MultiProgress::with_draw_target(target), quiet }
    }

    fn say(&self, text: impl Into<String>) {
        if !self.quiet {
            let _ = self.bars.println(text.into());
        }
    }

    fn bar(&self, len: usize, prefix: &str, width: usize) -> ProgressBar {
        let template = format!("{{prefix:>{width}}} [{{bar:40}}] {{pos:>7}}/{{len:7}} {{msg}}");
        let style = ProgressStyle::with_template(&template)
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        self.bars.add(ProgressBar::new(len as u64).with_style(style).with_prefix(prefix.to_string()))
    }
}

fn loaded(screen: &Screen, m: &Manifest) {
    screen.say(format!(
        "Loaded plugin {} {} ({} users per request, {} requests/s per token)",
        m.display_name, m.version, m.limits.max_batch_size, m.limits.requests_per_second
    ));
}

/// One sync being watched: its bars, its users, and when it settled.
struct Track {
    sync: SyncRecord,
    users: Vec<UserInput>,
    entered: ProgressBar,
    settled: ProgressBar,
    /// The partner's side of the progress line (429s, usage).
    partner: Box<dyn Fn() -> String + Send + Sync>,
    /// Whether the partner finishes requests later (Google): the line then shows "submitted".
    asynchronous: bool,
    counts: Counts,
    /// The most users counted submitted at any look.
    max_submitted: u64,
    done_after: Option<Duration>,
}

impl Track {
    fn new(
        screen: &Screen,
        label: Option<&str>,
        sync: SyncRecord,
        users: Vec<UserInput>,
        partner: Box<dyn Fn() -> String + Send + Sync>,
    ) -> Self {
        let (entered, settled, width) = match label {
            Some(label) => (format!("{label} entered"), format!("{label} settled"), 17),
            None => ("entered".to_string(), "settled".to_string(), 9),
        };
        let entered = screen.bar(users.len(), &entered, width);
        let settled = screen.bar(users.len(), &settled, width);
        Track {
            sync,
            users,
            entered,
            settled,
            partner,
            asynchronous: false,
            counts: Counts::default(),
            max_submitted: 0,
            done_after: None,
        }
    }

    /// For a partner that accepts requests and finishes them later: show "submitted".
    fn asynchronous(mut self) -> Self {
        self.asynchronous = true;
        self
    }
}

/// Enter every track's users (in calls of 10,000), then watch until nothing is pending, in
/// flight or submitted (an asynchronous partner's users are settled only once it finished
/// their requests), or the timeout passes. Each track's `done_after` is measured from the
/// first entry.
async fn deliver(engine: &Engine, tracks: &mut [Track], timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    for track in tracks.iter_mut() {
        let mut sent = 0;
        for chunk in track.users.chunks(10_000) {
            engine.enter(&track.sync, chunk.to_vec()).await?;
            sent += chunk.len();
            track.entered.set_position(sent as u64);
        }
        track.entered.finish_with_message("all users entered");
    }
    let deadline = started + timeout;
    loop {
        let mut waiting = false;
        for track in tracks.iter_mut().filter(|t| t.done_after.is_none()) {
            let c = engine.counts(&track.sync.id).await?;
            track.settled.set_position(c.synced + c.not_synced + c.errored);
            let submitted = if track.asynchronous { format!("submitted {}  ", c.submitted) } else { String::new() };
            track.settled.set_message(format!(
                "synced {}  not synced {}  pending {}  {submitted}errored {}  retries {}  {}",
                c.synced,
                c.not_synced,
                c.pending + c.in_flight,
                c.errored,
                c.retries,
                (track.partner)()
            ));
            track.counts = c;
            track.max_submitted = track.max_submitted.max(c.submitted);
            if c.pending + c.in_flight + c.submitted == 0 {
                track.done_after = Some(started.elapsed());
                track.settled.finish_with_message("done");
            } else if Instant::now() > deadline {
                track.done_after = Some(started.elapsed());
                track.settled.abandon_with_message("timed out");
            } else {
                waiting = true;
            }
        }
        if !waiting {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn elapsed(track: &Track) -> Duration {
    track.done_after.unwrap_or_default()
}

async fn pinterest_alone(args: &DemoArgs, dir: &std::path::Path, screen: &Screen) -> anyhow::Result<DemoSummary> {
    let options = WorldOptions { sandbox: pinterest_sandbox(), engine: engine_config(args), ..WorldOptions::default() };
    let lab = Lab::start(dir, options).await?;
    let handle = lab.handle();
    screen.say(format!("Pinterest sandbox listening on {}", lab.sandbox.base_url()));
    loaded(screen, lab.plugin.manifest());
    screen.say("Connected to the sandbox through OAuth (authorization code exchanged for a pina… token)");
    screen.say(format!("Chose ad account {} ({})", lab.account.name, lab.account.id));
    let audience = "audience-host demo";
    let sync = lab.sync(audience).await?;
    screen.say(format!("Created sync {} into the new audience {audience:?} (created with the first batch)", sync.id));
    handle.set_faults(pinterest_faults(args));
    let status = handle.clone();
    let partner = Box::new(move || format!("429s {}", status.count_status(429)));
    let mut tracks = [Track::new(screen, None, sync, synthetic_users(args.users), partner)];
    deliver(&lab.engine, &mut tracks, Duration::from_secs(args.timeout_secs)).await?;
    let [track] = tracks;
    let members = lab.members(audience);
    let summary = summarize(args, track.counts, members, &handle, &lab.credentials.access_token, elapsed(&track));
    lab.stop().await;
    Ok(summary)
}

async fn meta_alone(args: &DemoArgs, dir: &std::path::Path, screen: &Screen) -> anyhow::Result<MetaDemoSummary> {
    let options =
        WorldOptions::<Meta> { sandbox: meta_sandbox(), engine: engine_config(args), ..WorldOptions::default() };
    let lab = Lab::launch(dir, options).await?;
    let handle = lab.handle();
    screen.say(format!("Meta Marketing API sandbox listening on {}", lab.sandbox.base_url()));
    loaded(screen, lab.plugin.manifest());
    screen.say(
        "Connected to the sandbox through Facebook Login (authorization code exchanged, then swapped for a \
         long-lived EAA… token)",
    );
    screen.say(format!("Chose ad account {} ({})", lab.account.name, lab.account.id));
    let audience = "audience-host demo";
    let sync = lab.sync(audience).await?;
    screen.say(format!(
        "Created sync {} into the new custom audience {audience:?}, matching on {}",
        sync.id,
        Meta::MATCH_FIELDS.join(", ")
    ));
    handle.set_faults(meta_faults(args));
    let partner = meta_status(&handle, &lab.account.id);
    let mut tracks = [Track::new(screen, None, sync, meta_synthetic_users(args.users), partner)];
    deliver(&lab.engine, &mut tracks, Duration::from_secs(args.timeout_secs)).await?;
    let [track] = tracks;
    let members = lab.members(audience);
    let summary =
        summarize_meta(args, track.counts, members, &handle, &lab.account.id, &lab.credentials, elapsed(&track));
    lab.stop().await;
    Ok(summary)
}

fn meta_status(handle: &MetaHandle, account: &str) -> Box<dyn Fn() -> String + Send + Sync> {
    let (handle, account) = (handle.clone(), account.to_string());
    Box::new(move || {
        let usage = handle.usage(&account).map_or(0, |u| u.call_count);
        format!("usage {usage}%  throttled {}", handle.throttled_count())
    })
}

/// What the demo says about Google's asynchronous answers before delivering.
fn google_explained(screen: &Screen, args: &DemoArgs) {
    screen.say(format!(
        "Google finishes requests later (real Google: about 30 minutes; this sandbox: {:.1} s), so users are \
         counted \"submitted\" first and Synced once the host checked the request and Google finished it",
        Duration::from_millis(args.google_processing_ms).as_secs_f64()
    ));
}

async fn google_alone(args: &DemoArgs, dir: &std::path::Path, screen: &Screen) -> anyhow::Result<GoogleDemoSummary> {
    let options = WorldOptions::<Google> {
        sandbox: google_sandbox(args),
        engine: engine_config(args),
        ..WorldOptions::default()
    };
    let lab = Lab::launch(dir, options).await?;
    let handle = lab.handle();
    screen.say(format!("Google Customer Match sandbox listening on {}", lab.sandbox.base_url()));
    loaded(screen, lab.plugin.manifest());
    screen.say("Connected to the sandbox through Google OAuth (authorization code exchanged for a ya29… token)");
    screen.say(format!("Chose Google Ads account {} ({})", lab.account.name, lab.account.id));
    let audience = "audience-host demo";
    let sync = lab.sync(audience).await?;
    screen.say(format!(
        "Created sync {} into the new Customer Match list {audience:?}, matching on {}",
        sync.id,
        Google::MATCH_FIELDS.join(", ")
    ));
    google_explained(screen, args);
    handle.set_faults(google_faults(args));
    let partner = google_status(&handle);
    let mut tracks = [Track::new(screen, None, sync, google_synthetic_users(args.users), partner).asynchronous()];
    deliver(&lab.engine, &mut tracks, Duration::from_secs(args.timeout_secs)).await?;
    let [track] = tracks;
    let members = lab.members(audience);
    let summary = summarize_google(args, &track, members, &handle, &lab.credentials.access_token);
    lab.stop().await;
    Ok(summary)
}

fn google_status(handle: &GoogleHandle) -> Box<dyn Fn() -> String + Send + Sync> {
    let handle = handle.clone();
    Box::new(move || format!("processing {}  quota 429s {}", handle.pending_requests(), handle.quota_refusals()))
}

async fn side_by_side(args: &DemoArgs, dir: &std::path::Path, screen: &Screen) -> anyhow::Result<DemoReport> {
    let options = SideBySideOptions {
        pinterest: pinterest_sandbox(),
        meta: meta_sandbox(),
        google: google_sandbox(args),
        engine: engine_config(args),
        ..SideBySideOptions::default()
    };
    let world = SideBySide::start(dir, options).await?;
    screen.say(format!("Pinterest sandbox listening on {}", world.pinterest.base_url()));
    screen.say(format!("Meta Marketing API sandbox listening on {}", world.meta.base_url()));
    screen.say(format!("Google Customer Match sandbox listening on {}", world.google.base_url()));
    loaded(screen, world.pinterest.plugin.manifest());
    loaded(screen, world.meta.plugin.manifest());
    loaded(screen, world.google.plugin.manifest());
    let workspace = world.store.create_workspace("lab").await?.id;
    let audience = "audience-host demo";

    let pinterest_creds = world.pinterest.oauth().await?;
    let pinterest_connection = world.connect::<Pinterest>(&workspace, &pinterest_creds).await?;
    let pinterest_account = world.pinterest.first_account(&pinterest_creds).await?;
    screen.say(format!(
        "Pinterest: connected through OAuth, chose ad account {} ({})",
        pinterest_account.name, pinterest_account.id
    ));
    let meta_creds = world.meta.oauth().await?;
    let meta_connection = world.connect::<Meta>(&workspace, &meta_creds).await?;
    let meta_account = world.meta.first_account(&meta_creds).await?;
    screen.say(format!(
        "Meta: connected through Facebook Login (long-lived token), chose ad account {} ({})",
        meta_account.name, meta_account.id
    ));
    let google_creds = world.google.oauth().await?;
    let google_connection = world.connect::<Google>(&workspace, &google_creds).await?;
    let google_account = world.google.first_account(&google_creds).await?;
    screen.say(format!(
        "Google: connected through Google OAuth, chose Google Ads account {} ({})",
        google_account.name, google_account.id
    ));

    let pinterest_sync =
        create_sync::<Pinterest>(&world.engine, &workspace, &pinterest_connection, &pinterest_account, audience)
            .await?;
    let meta_sync = create_sync::<Meta>(&world.engine, &workspace, &meta_connection, &meta_account, audience).await?;
    let google_sync =
        create_sync::<Google>(&world.engine, &workspace, &google_connection, &google_account, audience).await?;
    screen.say(format!(
        "Created sync {} (Pinterest, by email), sync {} (Meta, by {}) and sync {} (Google, by {}), all into \
         {audience:?}",
        pinterest_sync.id,
        meta_sync.id,
        Meta::MATCH_FIELDS.join(", "),
        google_sync.id,
        Google::MATCH_FIELDS.join(", ")
    ));
    google_explained(screen, args);

    let (pinterest, meta, google) = (world.pinterest.handle(), world.meta.handle(), world.google.handle());
    pinterest.set_faults(pinterest_faults(args));
    meta.set_faults(meta_faults(args));
    google.set_faults(google_faults(args));
    let status = pinterest.clone();
    let pinterest_status = Box::new(move || format!("429s {}", status.count_status(429)));
    let mut tracks = [
        Track::new(screen, Some("pinterest"), pinterest_sync, synthetic_users(args.users), pinterest_status),
        Track::new(
            screen,
            Some("meta"),
            meta_sync,
            meta_synthetic_users(args.users),
            meta_status(&meta, &meta_account.id),
        ),
        Track::new(screen, Some("google"), google_sync, google_synthetic_users(args.users), google_status(&google))
            .asynchronous(),
    ];
    deliver(&world.engine, &mut tracks, Duration::from_secs(args.timeout_secs)).await?;
    let [pinterest_track, meta_track, google_track] = tracks;
    let pinterest_members = Pinterest::member_count(&pinterest, &pinterest_account.id, audience);
    let meta_members = Meta::member_count(&meta, &meta_account.id, audience);
    let google_members = Google::member_count(&google, &google_account.id, audience);
    let report = DemoReport::All(Box::new(SideBySideReport {
        pinterest: summarize(
            args,
            pinterest_track.counts,
            pinterest_members,
            &pinterest,
            &pinterest_creds.access_token,
            elapsed(&pinterest_track),
        ),
        meta: summarize_meta(
            args,
            meta_track.counts,
            meta_members,
            &meta,
            &meta_account.id,
            &meta_creds,
            elapsed(&meta_track),
        ),
        google: summarize_google(args, &google_track, google_members, &google, &google_creds.access_token),
    }));
    world.stop().await;
    Ok(report)
}

/// An add-sync into a new audience called `audience` in `account`, matching on
/// `P::MATCH_FIELDS`.
async fn create_sync<P: Partner>(
    engine: &Engine,
    workspace: &str,
    connection: &str,
    account: &Account,
    audience: &str,
) -> anyhow::Result<SyncRecord> {
    Ok(engine.create_sync(add_sync_request::<P>(workspace, connection, &account.id, audience)).await?)
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

/// Synthetic users for Google, matched on email and phone: most with an email in assorted case
/// and spacing (every third of the rest a Gmail address with dots and a `+tag`, which Google's
/// rules strip before hashing), every 4th also with an international phone number, every 20th
/// with an unusable email and nothing else (Not Synced) and every 50th with only a phone
/// number (which Google matches on: Synced). Every email and phone is distinct after Google's
/// normalisation, so each synced user is one member of the list.
pub fn google_synthetic_users(n: usize) -> Vec<UserInput> {
    (0..n)
        .map(|i| {
            let user = UserInput::new(format!("user-{i}"));
            if i % 50 == 49 {
                return user.with("phone", format!("+1 555 {i:07}"));
            }
            if i % 20 == 19 {
                return user.with("email", format!("user{i}@"));
            }
            let user = match i % 3 {
                0 => user.with("email", format!("  User{i}@Example.COM ")),
                1 => user.with("email", format!("demo.user.{i}+audience@Gmail.com")),
                _ => user.with("email", format!("user{i}@example.com")),
            };
            if i % 4 == 0 { user.with("phone", format!("+44 20 {i:08}")) } else { user }
        })
        .collect()
}

const NAMES: [(&str, &str); 6] = [
    ("Mary", "O'Brien"),
    ("  José ", "García-López"),
    ("Jean-Luc", "Picard"),
    ("ANN", "Lee"),
    ("Dmitri", "Ivanov"),
    ("Zoë", "Smith Jones"),
];

/// Synthetic users for Meta, each with several identifiers: an email (in assorted case and
/// spacing), first and last name (with accents and punctuation the plugin normalises away),
/// a country, and every other user an international phone number. Among them, every 7th
/// phone is unusable (the user still syncs, on the rest), every 20th user has only a first
/// name and a country (traits many people share, which match nobody: Not Synced) and every
/// 50th has nothing valid at all (a broken email and a two-digit phone: Not Synced).
pub fn meta_synthetic_users(n: usize) -> Vec<UserInput> {
    (0..n)
        .map(|i| {
            let user = UserInput::new(format!("user-{i}"));
            if i % 50 == 49 {
                return user.with("email", format!("user{i}@")).with("phone", "12");
            }
            if i % 20 == 19 {
                return user.with("first-name", "Ann").with("country", "US");
            }
            let email = if i % 3 == 0 { format!("  User{i}@Example.COM ") } else { format!("user{i}@example.com") };
            let (first, last) = NAMES[i % NAMES.len()];
            let country = if i % 4 == 0 { "GB" } else { "us" };
            let mut user =
                user.with("email", email).with("first-name", first).with("last-name", last).with("country", country);
            if i % 7 == 3 {
                user = user.with("phone", "n/a");
            } else if i % 2 == 0 {
                user = user.with("phone", format!("+1 (555) {:03}-{:04}", (i / 10_000) % 1_000, i % 10_000));
            }
            user
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

fn summarize_meta(
    args: &DemoArgs,
    c: Counts,
    members: usize,
    handle: &MetaHandle,
    account: &str,
    credentials: &Credentials,
    elapsed: Duration,
) -> MetaDemoSummary {
    let token = credentials.access_token.as_str();
    let usage = handle.usage(account);
    let requests = handle.request_log().iter().filter(|r| r.access_token.as_deref() == Some(token)).count();
    MetaDemoSummary {
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
        max_requests_in_one_second: handle.max_requests_in_window(account, Duration::from_secs(1)),
        max_rows_per_request: handle.max_rows_per_request(),
        max_usage_percent: handle.max_usage_seen(account),
        budget_calls_used: usage.map_or(0, |u| u.calls_in_window),
        budget_calls: usage.map_or(0, |u| u.budget),
        throttled: handle.throttled_count(),
        elapsed_secs: elapsed.as_secs_f64(),
        synced_per_second: c.synced as f64 / elapsed.as_secs_f64().max(1e-9),
    }
}

fn summarize_google(
    args: &DemoArgs,
    track: &Track,
    members: usize,
    handle: &GoogleHandle,
    token: &str,
) -> GoogleDemoSummary {
    let (c, elapsed) = (track.counts, elapsed(track));
    let requests = handle.request_log().iter().filter(|r| r.access_token.as_deref() == Some(token)).count();
    GoogleDemoSummary {
        users: args.users,
        entered: c.entered,
        proceeded: c.proceeded,
        synced: c.synced,
        not_synced: c.not_synced,
        pending: c.pending + c.in_flight,
        submitted: c.submitted,
        max_submitted: track.max_submitted,
        errored: c.errored,
        retries: c.retries,
        sandbox_members: members,
        partner_requests: requests,
        ingest_requests: handle.quota_stats(QuotaBucket::IngestionMutate).counted,
        status_checks: handle.quota_stats(QuotaBucket::IngestionRead).counted,
        max_requests_in_one_second: handle.max_requests_in_window(QuotaBucket::IngestionMutate, Duration::from_secs(1)),
        max_members_per_request: handle.max_members_per_request(),
        quota_refusals: handle.quota_refusals(),
        processing_secs: Duration::from_millis(args.google_processing_ms).as_secs_f64(),
        elapsed_secs: elapsed.as_secs_f64(),
        synced_per_second: c.synced as f64 / elapsed.as_secs_f64().max(1e-9),
    }
}

/// The host's counts and the sandbox's member count, one per line: entered, proceeded,
/// synced, not synced, pending, (submitted, for an asynchronous partner,) errored, sandbox
/// members.
fn print_counts(values: &[(&str, u64)]) {
    println!();
    for (label, value) in values {
        println!("  {label:<22} {value:>10}");
    }
    println!();
}

/// The counts every partner shows; `submitted` (an asynchronous partner's) after Pending.
fn count_lines(
    [entered, proceeded, synced, not_synced, pending]: [u64; 5],
    submitted: Option<u64>,
    errored: u64,
    members: usize,
) -> Vec<(&'static str, u64)> {
    let mut lines = vec![
        ("Entered", entered),
        ("Proceeded", proceeded),
        ("Synced", synced),
        ("Not Synced", not_synced),
        ("Pending", pending),
    ];
    lines.extend(submitted.map(|s| ("Submitted", s)));
    lines.extend([("Errored", errored), ("Sandbox members", members as u64)]);
    lines
}

fn print_pinterest(s: &DemoSummary) {
    print_counts(&count_lines(
        [s.entered, s.proceeded, s.synced, s.not_synced, s.pending],
        None,
        s.errored,
        s.sandbox_members,
    ));
    println!(
        "  {} partner requests, at most {} in any second and {} records in one; {} answered 429; {} retries",
        s.partner_requests, s.max_requests_in_one_second, s.max_records_per_request, s.rate_limited, s.retries
    );
    println!("  {:.1} s from first entry to last delivery ({:.0} synced users/s)", s.elapsed_secs, s.synced_per_second);
}

fn print_meta(s: &MetaDemoSummary) {
    print_counts(&count_lines(
        [s.entered, s.proceeded, s.synced, s.not_synced, s.pending],
        None,
        s.errored,
        s.sandbox_members,
    ));
    println!(
        "  {} partner requests, at most {} in any second and {} rows in one; {} retries",
        s.partner_requests, s.max_requests_in_one_second, s.max_rows_per_request, s.retries
    );
    println!(
        "  custom_audience budget: {} of {} calls used, at most {}% reported; {} calls throttled",
        s.budget_calls_used, s.budget_calls, s.max_usage_percent, s.throttled
    );
    println!("  {:.1} s from first entry to last delivery ({:.0} synced users/s)", s.elapsed_secs, s.synced_per_second);
}

fn print_google(s: &GoogleDemoSummary) {
    print_counts(&count_lines(
        [s.entered, s.proceeded, s.synced, s.not_synced, s.pending],
        Some(s.submitted),
        s.errored,
        s.sandbox_members,
    ));
    println!(
        "  {} partner requests: {} ingest (at most {} in any second, {} members in one) and {} status checks; \
         {} quota 429s; {} retries",
        s.partner_requests,
        s.ingest_requests,
        s.max_requests_in_one_second,
        s.max_members_per_request,
        s.status_checks,
        s.quota_refusals,
        s.retries
    );
    println!(
        "  up to {} users were submitted at once: Google finishes requests later (real Google: about 30 minutes, \
         this sandbox: {:.1} s)",
        s.max_submitted, s.processing_secs
    );
    println!("  {:.1} s from first entry to last finished ({:.0} synced users/s)", s.elapsed_secs, s.synced_per_second);
}
