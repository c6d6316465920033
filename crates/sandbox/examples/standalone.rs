//! Runs the Pinterest sandbox until Ctrl-C: `cargo run -p audience-sandbox --example standalone`.
//! Set `SANDBOX_PORT` to pick the port (default: any free port).

use audience_sandbox::{SandboxConfig, SandboxError, run_standalone};

#[tokio::main]
async fn main() -> Result<(), SandboxError> {
    let port = std::env::var("SANDBOX_PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(0);
    run_standalone(SandboxConfig { port, ..SandboxConfig::default() }).await
}
