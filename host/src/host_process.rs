//! Running `audience-host serve` as a child process and talking to it: what the several-hosts
//! benchmark (`bench hosts`) and the process tests (crash, several hosts) share.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use audience_sandbox::SandboxHandle;
use serde_json::Value;

/// A host process; killed when dropped, so a failed run leaves no process behind.
#[derive(Debug)]
pub struct HostProcess(Child);

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl HostProcess {
    /// Start `EXE serve --config CONFIG` with these environment variables (the secrets the
    /// configuration names), logging errors only, its output on this process's stderr.
    pub fn spawn(exe: &Path, config: &Path, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut command = Command::new(exe);
        command.args(["serve", "--config"]).arg(config).env("RUST_LOG", "error");
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        Ok(Self(child))
    }

    /// SIGKILL, and reap.
    pub fn kill_now(&mut self) -> anyhow::Result<()> {
        self.0.kill().context("SIGKILL failed")?;
        self.0.wait().context("reaping the killed host failed")?;
        Ok(())
    }

    /// SIGTERM (a graceful stop), and wait for the process to exit successfully.
    pub fn terminate(&mut self) -> anyhow::Result<()> {
        let status = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let exit = self.0.wait()?;
        if !exit.success() {
            bail!("the host exited with {exit} after SIGTERM");
        }
        Ok(())
    }
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Wait until `{base}/readyz` answers 2xx (at most a minute).
pub async fn wait_ready(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the host at {base} did not become ready within a minute");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One API call with a bearer key; its JSON answer, or an error naming the status and body.
pub async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    key: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let mut request = client.request(method, &url).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.with_context(|| format!("{url} did not answer"))?;
    let status = response.status();
    let value: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("{url}: {status}: {value}");
    }
    Ok(value)
}

/// A metric's value in Prometheus text, or 0 when absent. `selector` is a name (summed over
/// its label sets) or a name with its labels as printed (`name{label="value"}`).
pub fn metric(text: &str, selector: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.strip_prefix(selector).is_some_and(|rest| rest.starts_with([' ', '{'])))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The `[plugins.pinterest]` section of a host configuration pointing at a sandbox, its client
/// secret read from the environment variable `secret_env`.
pub fn pinterest_section(sandbox_base_url: &str, secret_env: &str) -> String {
    let host_port = sandbox_base_url.trim_start_matches("http://");
    format!(
        r#"
[plugins.pinterest]
component = "builtin:pinterest"
base_url = "{sandbox_base_url}"
client_id = "{client_id}"
client_secret = {{ env = "{secret_env}" }}
plain_http_hosts = ["{host_port}"]
"#,
        client_id = SandboxHandle::DEFAULT_CLIENT_ID,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read_by_name_or_by_name_and_labels() {
        let text = "# HELP x\naudience_lanes_owned 3\naudience_lane_takeovers_total{event=\"taken_over\"} 2\n\
                    audience_lane_takeovers_total{event=\"lost\"} 1\naudience_lanes_owned_other 9\n";
        assert_eq!(metric(text, "audience_lanes_owned"), 3.0);
        assert_eq!(metric(text, "audience_lane_takeovers_total"), 3.0);
        assert_eq!(metric(text, r#"audience_lane_takeovers_total{event="lost"}"#), 1.0);
        assert_eq!(metric(text, "absent"), 0.0);
    }
}
