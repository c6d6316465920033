//! The plugin conformance suite behind `audience-host plugin test <component.wasm>`, as a
//! library a plugin author adds as a dev-dependency and calls from their own tests.
//!
//! What it must not know: the engine or the store. It drives the component through the same
//! runtime the host uses (`audience-runtime`), against its own scripted stand-in.
//!
//! Why it exists: a partner writing a destination must be able to find out, without reading
//! the host's code, whether the host will drive their plugin correctly. The host's retries,
//! batching and credential handling all rest on promises only the plugin can keep (a 404 is
//! `not-found`, a batch never exceeds `max-batch-size`, `prepare-users` never touches the
//! network, tokens never reach a log). The suite checks each promise on the compiled component,
//! inside the same sandbox the host uses, against a scripted partner stand-in
//! ([`standin::StandIn`]) that answers every request with the status, headers, body and delay
//! each check chooses and records every request.
//!
//! The checks, their order and what each asserts are documented in `docs/plugin-guide.md`
//! ("The conformance test") and in each module; every check reports pass or fail with a reason.
//!
//! # Contract versions
//!
//! The runtime loads components of every contract version it speaks (`0.1.0`, `0.2.0`) and
//! adapts the older ones, so the suite drives them all through the same calls. A check that
//! exercises what only 0.2.0 has passes on a 0.1.0 component with the reason
//! `not applicable (contract 0.1.0)`; every other check runs on both. The report always lists
//! the whole suite, in this order:
//!
//! | group | checks | since |
//! |---|---|---|
//! | `describe` | `well-formed`, `limits`, `deterministic`, `no-network` | 0.1.0 |
//! | | `base-url` (`describe(config)` derives `default-hosts` from `base-url`) | 0.2.0 |
//! | `prepare` | `empty`, `well-formed`, `selected-fields`, `huge`, `odd-input`, `deterministic`, `normalises`, `already-hashed` | 0.1.0 |
//! | | `consent` (passed through), `field-order` (one-kind: the first supported field decides) | 0.2.0 |
//! | | `no-network` (over every `prepare-users` call above) | 0.1.0 |
//! | delivery | `setup.audience-id`, `batch.at-limit`, `batch.over-limit`, `errors.401` … `errors.400`, `remove.contract` | 0.1.0 |
//! | | `async.submission-limit` (two batches under `max-submissions-per-audience`) | 0.2.0 |
//! | | `errors.other-calls` (0.2.0 adds the audience exports) | 0.1.0 |
//! | `audiences` | `search`, `search-query`, `read`, `check-target` | 0.2.0 |
//! | run-wide | `batch.rejections` | 0.1.0 |
//! | | `async.submissions` | 0.2.0 |
//! | | `network.allow-list`, `credentials.not-logged`, `credentials.not-in-errors` | 0.1.0 |
//!
//! ```no_run
//! # async fn demo(bytes: &[u8]) -> Result<(), audience_conformance::ConformanceError> {
//! use audience_conformance::{ConformanceOptions, run};
//! let report = run(bytes, ConformanceOptions::default()).await?;
//! print!("{}", report.render_text());
//! assert!(report.passed());
//! # Ok(()) }
//! ```

mod asynchronous;
mod audiences;
mod counting;
mod delivery;
mod describe;
mod hygiene;
mod inputs;
mod prepare;
mod report;
mod standin;
mod suite;
mod writes;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use audiences::{MAX_SEARCH_PAGES, SEARCH_QUERIES};
pub use delivery::AUDIENCE_ID_CANDIDATES;
pub use describe::OTHER_BASE_URL;
pub use inputs::WELL_KNOWN_KINDS;
pub use report::{CheckResult, Report};
pub use standin::{RecordedRequest, Route, RouteFile, Script, StandIn, parse_routes};
pub use writes::{MAX_POLL_WAIT, MAX_POLLS};

use audience_runtime::types::PluginConfig;
use audience_runtime::{
    HttpLimits, HttpPolicy, LoadError, Plugin, PluginOptions, PluginRuntime, RuntimeConfig, SandboxLimits,
};
use suite::{Secrets, Suite, plugin_config};

/// The account id passed to calls unless one is configured: digits, the most widely accepted
/// shape of a partner's account id.
pub const DEFAULT_ACCOUNT_ID: &str = "1000000001";

/// The HTTP timeout the suite gives the plugin; the `errors.timeout` stand-in answers 2 s later.
pub const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(2);

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct ConformanceOptions {
    /// The audience id for `add-users` / `remove-users`, in the plugin's own format; `None`
    /// tries [`AUDIENCE_ID_CANDIDATES`].
    pub audience_id: Option<String>,
    /// The account id for the calls that take one.
    pub account_id: String,
    /// Extra `plugin-config.settings`; `{base-url}` in a value is replaced by the stand-in's URL.
    pub settings: Vec<(String, String)>,
    /// The HTTP timeout of the plugin's requests (short, so `errors.timeout` is quick).
    pub http_timeout: Duration,
    /// The sandbox limits of each call; `None` uses the host's defaults (10 s, 64 MiB).
    pub limits: Option<SandboxLimits>,
    /// Where to cache the compiled component; `None` uses a temporary directory for the run.
    pub cache_dir: Option<PathBuf>,
    /// Partner-shaped answers for the `audiences.*` checks (see [`Route`]); empty: the
    /// stand-in answers those checks' requests with `200 {}` too.
    pub answers: Vec<Route>,
}

impl Default for ConformanceOptions {
    fn default() -> Self {
        Self {
            audience_id: None,
            account_id: DEFAULT_ACCOUNT_ID.into(),
            settings: Vec::new(),
            http_timeout: DEFAULT_HTTP_TIMEOUT,
            limits: None,
            cache_dir: None,
            answers: Vec::new(),
        }
    }
}

/// Why the suite could not run at all (a plugin that runs but misbehaves gives a failed
/// [`Report`], not an error).
#[derive(Debug, thiserror::Error)]
pub enum ConformanceError {
    /// The component could not be loaded (not a component, wrong contract, `describe` failed).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The stand-in or the compile cache could not be set up.
    #[error("could not set up the conformance test: {0}")]
    Setup(#[source] std::io::Error),
}

/// Loads the component under test with a given `plugin-config`.
struct Loader<'a> {
    runtime: PluginRuntime,
    component: &'a [u8],
    options: PluginOptions,
}

impl Loader<'_> {
    async fn load(&self, config: &PluginConfig) -> Result<Plugin, LoadError> {
        self.runtime.load(self.component, PluginOptions { config: config.clone(), ..self.options.clone() }).await
    }
}

/// Run the whole suite on a component's bytes.
pub async fn run(component: &[u8], options: ConformanceOptions) -> Result<Report, ConformanceError> {
    let stand_in = StandIn::start().await.map_err(ConformanceError::Setup)?;
    let temp_cache = match options.cache_dir {
        Some(_) => None,
        None => Some(tempfile::tempdir().map_err(ConformanceError::Setup)?),
    };
    let cache_dir = options.cache_dir.clone().or_else(|| temp_cache.as_ref().map(|t| t.path().to_path_buf()));
    let runtime = PluginRuntime::new(RuntimeConfig {
        cache_dir,
        max_instances: 8,
        limits: options.limits.clone().unwrap_or_default(),
        ..RuntimeConfig::default()
    })?;
    let plugin_options = PluginOptions {
        http: Some(HttpPolicy {
            allowed_hosts: vec![],
            plain_http_hosts: vec![stand_in.host_port()],
            limits: HttpLimits { timeout: options.http_timeout, ..HttpLimits::default() },
            ..HttpPolicy::default()
        }),
        limits: options.limits.clone(),
        capture_logs: true,
        config: PluginConfig { base_url: None, client_id: None, client_secret: None, settings: Vec::new() },
        ..PluginOptions::default()
    };
    let secrets = Secrets::generate();
    let base = stand_in.base_url();
    let config = plugin_config(Some(&base), &base, &secrets, &options);
    let loader = Loader { runtime, component, options: plugin_options };
    let plugin = loader.load(&config).await?;
    let second = loader.load(&config).await?;
    // `describe` takes the configuration since 0.2.0: describe it without a base-url and with
    // another one too.
    let (without_base, elsewhere) = if plugin.contract_version() == audience_runtime::since_v0_1_0::VERSION {
        (None, None)
    } else {
        let none = plugin_config(None, &base, &secrets, &options);
        let other = plugin_config(Some(OTHER_BASE_URL), &base, &secrets, &options);
        (Some(loader.load(&none).await?), Some((loader.load(&other).await?, loader.load(&other).await?)))
    };
    let loads = describe::Loads { second, without_base, elsewhere };

    let mut suite = Suite::new(plugin, stand_in, options, config, secrets);
    describe::run(&mut suite, &loads);
    let users = prepare::run(&mut suite).await;
    let users = delivery::run(&mut suite, users).await;
    asynchronous::submission_limit(&mut suite, users.as_deref()).await;
    delivery::other_calls(&mut suite).await;
    audiences::run(&mut suite, users.as_deref()).await;
    delivery::rejections(&mut suite);
    asynchronous::submissions(&mut suite).await;
    hygiene::run(&mut suite, &loads);
    Ok(Report::new(suite.manifest.name.clone(), suite.manifest.version.clone(), suite.checks))
}

/// The arguments of `audience-host plugin test`, for the binary's clap parser to flatten.
#[derive(Debug, Clone, clap::Args)]
pub struct PluginTestArgs {
    /// The component to test (a `.wasm` built for wasm32-wasip2).
    pub component: PathBuf,
    /// Print a machine-readable JSON report instead of text.
    #[arg(long)]
    pub json: bool,
    /// The audience id add-users and remove-users get, in the plugin's own format (default: try
    /// "conformance-audience", "1000000001", "1000000001:1000000002:EMAIL").
    #[arg(long)]
    pub audience_id: Option<String>,
    /// The account id the calls get.
    #[arg(long, default_value = DEFAULT_ACCOUNT_ID)]
    pub account_id: String,
    /// A plugin setting, `KEY=VALUE` (repeatable); `{base-url}` in VALUE becomes the stand-in's URL.
    #[arg(long = "setting", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,
    /// The plugin's HTTP timeout during the test, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    pub http_timeout_ms: u64,
    /// A JSON file of partner-shaped answers for the audience checks: an array of
    /// `{"method", "path_contains": [...], "status", "headers", "body"}` (all optional).
    #[arg(long, value_name = "FILE")]
    pub answers: Option<PathBuf>,
}

fn parse_setting(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

impl PluginTestArgs {
    /// The suite options these arguments ask for.
    pub fn options(&self) -> ConformanceOptions {
        ConformanceOptions {
            audience_id: self.audience_id.clone(),
            account_id: self.account_id.clone(),
            settings: self.settings.clone(),
            http_timeout: Duration::from_millis(self.http_timeout_ms.max(1)),
            ..ConformanceOptions::default()
        }
    }
}

/// Run the suite on the component at `path` and print the report (text, or JSON with `json`)
/// to stdout. Returns whether every check passed: the binary exits non-zero when it did not.
pub async fn cli_main(path: &Path, json: bool, options: ConformanceOptions) -> anyhow::Result<bool> {
    use anyhow::Context as _;
    let bytes = tokio::fs::read(path).await.with_context(|| format!("cannot read {}", path.display()))?;
    let report = run(&bytes, options).await.with_context(|| format!("cannot test {}", path.display()))?;
    if json {
        println!("{}", report.render_json());
    } else {
        print!("{}", report.render_text());
    }
    Ok(report.passed())
}

/// [`cli_main`] with parsed [`PluginTestArgs`] (reading the `--answers` file, if any), the
/// component compiled into `cache_dir` (`None`: a temporary cache for this run).
pub async fn cli_run(args: &PluginTestArgs, cache_dir: Option<PathBuf>) -> anyhow::Result<bool> {
    use anyhow::Context as _;
    let mut options = args.options();
    options.cache_dir = cache_dir;
    if let Some(path) = &args.answers {
        let text = tokio::fs::read_to_string(path).await.with_context(|| format!("cannot read {}", path.display()))?;
        options.answers =
            parse_routes(&text).with_context(|| format!("{} is not a list of answers", path.display()))?;
    }
    cli_main(&args.component, args.json, options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse() {
        assert_eq!(parse_setting("url={base-url}/x=y"), Ok(("url".into(), "{base-url}/x=y".into())));
        assert!(parse_setting("novalue").is_err());
        assert!(parse_setting("=v").is_err());
    }

    #[test]
    fn args_make_options() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: PluginTestArgs,
        }
        let cli = Cli::try_parse_from([
            "t",
            "p.wasm",
            "--json",
            "--audience-id",
            "1:2:EMAIL",
            "--setting",
            "a=b",
            "--answers",
            "answers.json",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(cli.args.json);
        assert_eq!(cli.args.answers.as_deref(), Some(Path::new("answers.json")));
        let options = cli.args.options();
        assert_eq!(options.audience_id.as_deref(), Some("1:2:EMAIL"));
        assert_eq!(options.account_id, DEFAULT_ACCOUNT_ID);
        assert_eq!(options.settings, vec![("a".to_string(), "b".to_string())]);
        assert_eq!(options.http_timeout, Duration::from_secs(2));
    }
}
