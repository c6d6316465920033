//! The `audience-host` binary.

use std::process::ExitCode;

mod cli;

use clap::Parser as _;
use cli::{Cli, Command, PluginAction};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo and the plugin tools print their own results; the log only speaks of trouble.
    let default = match cli.command {
        #[cfg(feature = "lab")]
        Command::Demo(_) | Command::Bench(_) => "warn,audience_runtime::logging=error",
        Command::Plugin { .. } => "warn,audience_runtime::logging=off",
        _ => "info",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Serve { config } => {
            audience_host::serve::run(config.as_deref()).await?;
            Ok(true)
        }
        #[cfg(feature = "lab")]
        Command::Bench(args) => {
            cli::bench(args).await?;
            Ok(true)
        }
        #[cfg(feature = "lab")]
        Command::Demo(args) => {
            audience_lab::demo::run(args).await?;
            Ok(true)
        }
        #[cfg(feature = "lab")]
        Command::Sandbox { partner } => {
            cli::sandbox(partner).await?;
            Ok(true)
        }
        Command::Plugin { action: PluginAction::Inspect { component, json, cache } } => {
            cli::inspect::run(&component, json, &cache).await
        }
        Command::Plugin { action: PluginAction::Test { args, cache } } => cli::plugin_test(&args, &cache).await,
    }
}
