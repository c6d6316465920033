//! Runs a partner sandbox until Ctrl-C:
//! `cargo run -p audience-sandbox --example standalone [-- --partner pinterest|meta|both]`.
//!
//! Pinterest is the default, as before. `SANDBOX_PORT` picks the port of the sandbox served
//! (Pinterest's when both run); `META_SANDBOX_PORT` picks Meta's when both run. Unset means any
//! free port.

use audience_sandbox::{
    MetaConfig, SandboxConfig, SandboxError, run_standalone, run_standalone_both, run_standalone_meta,
};

fn port(variable: &str) -> u16 {
    std::env::var(variable).ok().and_then(|p| p.parse().ok()).unwrap_or(0)
}

/// The value of `--partner X` or `--partner=X`, if given.
fn partner() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--partner" {
            return args.next();
        }
        if let Some(value) = arg.strip_prefix("--partner=") {
            return Some(value.to_owned());
        }
    }
    None
}

#[tokio::main]
async fn main() -> Result<(), SandboxError> {
    match partner().as_deref() {
        None | Some("pinterest") => {
            run_standalone(SandboxConfig { port: port("SANDBOX_PORT"), ..SandboxConfig::default() }).await
        }
        Some("meta") => run_standalone_meta(MetaConfig { port: port("SANDBOX_PORT"), ..MetaConfig::default() }).await,
        Some("both") => {
            let pinterest = SandboxConfig { port: port("SANDBOX_PORT"), ..SandboxConfig::default() };
            let meta = MetaConfig { port: port("META_SANDBOX_PORT"), ..MetaConfig::default() };
            run_standalone_both(pinterest, meta).await
        }
        Some(other) => {
            eprintln!("unknown partner `{other}`: use --partner pinterest, meta or both");
            std::process::exit(2);
        }
    }
}
