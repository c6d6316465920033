//! The `audience-host` command line: `serve`, `demo`, `sandbox`, `plugin inspect|test`, `bench`.

#[cfg(feature = "lab")]
mod bench_containment;
#[cfg(feature = "lab")]
mod bench_hosts;
#[cfg(feature = "lab")]
mod bench_strict;
#[cfg(feature = "lab")]
mod bench_tenants;
pub mod compile_cache;
pub mod inspect;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// audience-host: sync users into ad-platform audiences through WebAssembly destination plugins.
#[derive(Debug, Parser)]
#[command(name = "audience-host", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: HTTP API, engine and plugins, as configured.
    Serve {
        /// The configuration file (see examples/host.toml).
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// The whole thing in one command: a partner sandbox (Pinterest, Meta, Google, or all three
    /// side by side with `--destination`), the built-in plugin, an OAuth connection, an
    /// audience, and synthetic users synced into it.
    #[cfg(feature = "lab")]
    Demo(audience_lab::demo::DemoArgs),
    /// Run a partner sandbox on its own, for plugin authors.
    #[cfg(feature = "lab")]
    Sandbox {
        /// Which partner.
        #[command(subcommand)]
        partner: SandboxPartner,
    },
    /// Measure the engine on this machine (against the local sandbox).
    #[cfg(feature = "lab")]
    Bench(audience_lab::bench::BenchArgs),
    /// Work with plugin components.
    Plugin {
        /// What to do with the plugin.
        #[command(subcommand)]
        action: PluginAction,
    },
}

/// Partners with a sandbox.
#[derive(Debug, Subcommand)]
pub enum SandboxPartner {
    /// Pinterest API v5: OAuth, ad accounts, customer lists, audiences.
    Pinterest {
        /// Port to listen on (0 = any free port).
        #[arg(long, default_value_t = 9000)]
        port: u16,
        /// Requests per second per token before 429 (0 = unlimited).
        #[arg(long, default_value_t = 7)]
        rate_limit: u32,
        /// Number of ad accounts to offer.
        #[arg(long, default_value_t = 3)]
        ad_accounts: usize,
    },
    /// Meta Marketing API: Facebook Login, ad accounts, custom audiences and their users, the
    /// `custom_audience` call budget with its usage headers.
    Meta {
        /// Port to listen on (0 = any free port).
        #[arg(long, default_value_t = 9001)]
        port: u16,
        /// Number of ad accounts to offer.
        #[arg(long, default_value_t = 3)]
        ad_accounts: usize,
        /// Calls each ad account may make per hour before code 80003 (0 = Meta's Standard tier:
        /// 5,000 plus 40 per custom audience).
        #[arg(long, default_value_t = 0)]
        budget_calls_per_hour: u64,
    },
    /// Google Customer Match: Google OAuth, Google Ads API account discovery, and the Data
    /// Manager API (user lists, audience members, request status, per-project quotas).
    Google {
        /// Port to listen on (0 = any free port).
        #[arg(long, default_value_t = 9002)]
        port: u16,
        /// Seconds an accepted ingestion request stays PROCESSING (Google: about 30 minutes).
        #[arg(long, default_value_t = 5)]
        processing_seconds: u64,
        /// Requests per minute per Cloud project in each Data Manager quota bucket (Google: 300).
        #[arg(long, default_value_t = 300)]
        quota_per_minute: u64,
    },
}

/// `sandbox <partner>`: run that partner's sandbox until Ctrl-C.
#[cfg(feature = "lab")]
pub async fn sandbox(partner: SandboxPartner) -> anyhow::Result<()> {
    match partner {
        SandboxPartner::Pinterest { port, rate_limit, ad_accounts } => {
            let config = audience_sandbox::SandboxConfig {
                port,
                rate_limit_per_second: (rate_limit > 0).then_some(rate_limit),
                ad_accounts,
                ..audience_sandbox::SandboxConfig::default()
            };
            audience_sandbox::run_standalone(config).await?;
        }
        SandboxPartner::Meta { port, ad_accounts, budget_calls_per_hour } => {
            let defaults = audience_sandbox::MetaConfig::default();
            let usage = if budget_calls_per_hour > 0 {
                audience_sandbox::meta::UsageBudget::fixed(budget_calls_per_hour, std::time::Duration::from_secs(3600))
            } else {
                defaults.usage
            };
            let config = audience_sandbox::MetaConfig { port, ad_accounts, usage, ..defaults };
            audience_sandbox::run_standalone_meta(config).await?;
        }
        SandboxPartner::Google { port, processing_seconds, quota_per_minute } => {
            let defaults = audience_sandbox::GoogleConfig::default();
            let mut quotas = defaults.quotas;
            for quota in [
                &mut quotas.ingestion_mutate,
                &mut quotas.ingestion_read,
                &mut quotas.management_mutate,
                &mut quotas.management_read,
            ] {
                quota.per_minute = quota_per_minute;
            }
            let config = audience_sandbox::GoogleConfig {
                port,
                processing_delay: std::time::Duration::from_secs(processing_seconds),
                quotas,
                ..defaults
            };
            audience_sandbox::run_standalone_google(config).await?;
        }
    }
    Ok(())
}

/// Plugin subcommands.
#[derive(Debug, Subcommand)]
pub enum PluginAction {
    /// Show a component's manifest, the contract version it implements and its imports, or
    /// why it cannot load.
    Inspect {
        /// The component (.wasm).
        component: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Where the compiled component is cached.
        #[command(flatten)]
        cache: compile_cache::CacheArgs,
    },
    /// Run the conformance suite on a component against a scripted partner stand-in; exits
    /// non-zero when any check fails.
    Test {
        /// What to test, and how.
        #[command(flatten)]
        args: audience_conformance::PluginTestArgs,
        /// Where the compiled component is cached.
        #[command(flatten)]
        cache: compile_cache::CacheArgs,
    },
}

/// `plugin test`: the conformance suite, with the component compiled once into the cache.
pub async fn plugin_test(
    args: &audience_conformance::PluginTestArgs,
    cache: &compile_cache::CacheArgs,
) -> anyhow::Result<bool> {
    audience_conformance::cli_run(args, cache.dir()?).await
}

/// `bench <scenario>`: the in-process scenarios run in the lab; `hosts`, `containment` and
/// `tenants` start `serve` processes of this binary, and `rate-limit --strict` serves the HTTP
/// API in this process.
#[cfg(feature = "lab")]
pub async fn bench(args: audience_lab::bench::BenchArgs) -> anyhow::Result<serde_json::Value> {
    use audience_lab::bench::Scenario;
    let result = match args.scenario {
        Scenario::Hosts => {
            let Some(server) = args.postgres.as_deref() else {
                anyhow::bail!("bench hosts needs a PostgreSQL server: add --postgres postgres://USER@HOST:PORT/DB");
            };
            bench_hosts::run(server, args.max_hosts, args.users.unwrap_or(200_000)).await?
        }
        Scenario::Containment => bench_containment::run(args.users.unwrap_or(60_000)).await?,
        Scenario::Tenants => {
            let settings = bench_tenants::TenantsArgs {
                users_per_sync: args.users_per_sync,
                workspaces: args.workspaces,
                idle_window: std::time::Duration::from_secs(args.seconds.unwrap_or(10)),
            };
            bench_tenants::run(&args.connections, settings).await?
        }
        Scenario::RateLimit if args.strict => bench_strict::run(args.seconds.unwrap_or(60), args.syncs).await?,
        _ => return audience_lab::bench::run(args).await,
    };
    audience_lab::bench::print(&result, args.json)?;
    Ok(result)
}
