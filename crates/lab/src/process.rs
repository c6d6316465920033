//! Running `audience-host serve` as a child process and talking to it: what the several-hosts
//! benchmark (`bench hosts`) and the process tests (crash, several hosts) share.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use audience_sandbox::SandboxHandle;
use serde_json::{Value, json};

/// A host process; killed when dropped, so a failed run leaves no process behind.
#[derive(Debug)]
pub struct ServeProcess(Child);

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl ServeProcess {
    /// Start `EXE serve --config CONFIG` with these environment variables (the secrets the
    /// configuration names), logging errors only, its output on this process's stderr.
    pub fn spawn(exe: &Path, config: &Path, env: &[(&str, String)]) -> anyhow::Result<Self> {
        Self::spawn_logging(exe, config, env, "error", Stdio::inherit())
    }

    /// [`Self::spawn`] logging at `level` (a `RUST_LOG` filter) into `log`, e.g. a file whose
    /// size a test then measures.
    pub fn spawn_logging(
        exe: &Path,
        config: &Path,
        env: &[(&str, String)],
        level: &str,
        log: impl Into<Stdio>,
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(exe);
        command.args(["serve", "--config"]).arg(config).env("RUST_LOG", level);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", exe.display()))?;
        Ok(Self(child))
    }

    /// The process's peak resident memory so far, in bytes (Linux: `VmHWM`); `None` where the
    /// system does not say.
    pub fn peak_rss(&self) -> Option<u64> {
        proc_status_kib(self.0.id(), "VmHWM:").map(|kib| kib * 1024)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// The process's resident memory now, in bytes (Linux: `VmRSS`); `None` where the system
    /// does not say.
    pub fn rss(&self) -> Option<u64> {
        proc_status_kib(self.0.id(), "VmRSS:").map(|kib| kib * 1024)
    }

    /// CPU time the process has used so far, user and system, all its threads (those that
    /// ended included), from `/proc/PID/stat`: in steps of 10 ms (Linux reports it in
    /// `USER_HZ`, 100 a second); `None` where the system does not say.
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0.id())).ok()?;
        // The command name (field 2) is in parentheses and may hold spaces: count from after it.
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
        Some(Duration::from_millis(ticks * 1000 / USER_HZ))
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

/// The unit of the CPU times in `/proc/PID/stat` (`USER_HZ`), fixed at 100 a second on Linux.
const USER_HZ: u64 = 100;

/// A `/proc/PID/status` field given in KiB (`VmRSS:`, `VmHWM:`).
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The HTTP API of a running host, as tests and benchmarks call it. Every method fails with
/// the status and body of a refused call.
#[derive(Debug, Clone)]
pub struct ApiClient {
    client: reqwest::Client,
    base: String,
}

impl ApiClient {
    /// The host at `base` (`http://127.0.0.1:PORT`), each call giving up after `timeout`.
    pub fn new(base: impl Into<String>, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self { client: reqwest::Client::builder().timeout(timeout).build()?, base: base.into() })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Wait until `/readyz` answers 2xx (at most a minute).
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            if let Ok(response) = self.client.get(format!("{}/readyz", self.base)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the host at {} did not become ready within a minute", self.base);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One call to `path` (`/v1/...`) with a bearer key; its JSON answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method, &url).bearer_auth(key);
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

    /// One call to `path` (query string included) with a bearer key, whatever it answers: for
    /// callers that look at the status, the headers or the size of the answer.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method, &url).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.with_context(|| format!("{url} did not answer"))
    }

    /// `/metrics`, read with the operator key.
    pub async fn metrics(&self, operator_key: &str) -> anyhow::Result<String> {
        let url = format!("{}/metrics", self.base);
        let response = self.client.get(&url).bearer_auth(operator_key).send().await?;
        anyhow::ensure!(response.status().is_success(), "{url}: {}", response.status());
        Ok(response.text().await?)
    }

    /// Create a workspace with the operator key; its first API key.
    pub async fn create_workspace(&self, operator_key: &str, name: &str) -> anyhow::Result<String> {
        let created =
            self.call(reqwest::Method::POST, "/v1/workspaces", operator_key, Some(json!({ "name": name }))).await?;
        Ok(created["api_key"]["key"].as_str().context("the workspace came without a key")?.to_string())
    }

    /// A new token from the Pinterest sandbox, a connection holding it and an add-sync by email
    /// into a new audience called `audience`: the token's access token and the sync's id.
    pub async fn connect_and_sync(
        &self,
        key: &str,
        sandbox: &SandboxHandle,
        account: &str,
        audience: &str,
    ) -> anyhow::Result<(String, String)> {
        let pair = sandbox.issue_tokens(&["ads:read", "ads:write"]);
        let connection = self
            .call(
                reqwest::Method::POST,
                "/v1/connections",
                key,
                Some(json!({"destination": "pinterest", "name": format!("token for {audience}"),
                        "credentials": {"access_token": pair.access_token, "refresh_token": pair.refresh_token}})),
            )
            .await?;
        let sync = self
            .call(
                reqwest::Method::POST,
                "/v1/syncs",
                key,
                Some(json!({"connection_id": connection["id"], "account_id": account,
                        "audience_name": audience, "action": "add", "match_fields": ["email"]})),
            )
            .await?;
        Ok((pair.access_token, sync["id"].as_str().context("the sync came without an id")?.to_string()))
    }

    /// A connection to `destination` holding these tokens, and an add-sync by email of
    /// `account` into a new audience called `audience`: the connection's and the sync's ids.
    pub async fn connect_with_tokens_and_sync(
        &self,
        key: &str,
        destination: &str,
        (access, refresh): (&str, &str),
        account: &str,
        audience: &str,
    ) -> anyhow::Result<(String, String)> {
        let connection = self
            .call(
                reqwest::Method::POST,
                "/v1/connections",
                key,
                Some(json!({"destination": destination, "name": format!("{destination} for {audience}"),
                        "credentials": {"access_token": access, "refresh_token": refresh}})),
            )
            .await?;
        let sync = self
            .call(
                reqwest::Method::POST,
                "/v1/syncs",
                key,
                Some(json!({"connection_id": connection["id"], "account_id": account,
                        "audience_name": audience, "action": "add", "match_fields": ["email"]})),
            )
            .await?;
        let id = |v: &Value, what: &str| {
            v["id"].as_str().map(str::to_string).with_context(|| format!("the {what} came without an id"))
        };
        Ok((id(&connection, "connection")?, id(&sync, "sync")?))
    }

    /// Users identified by these emails (each its own key) enter `sync`.
    pub async fn enter_emails(&self, key: &str, sync: &str, emails: &[String]) -> anyhow::Result<()> {
        let users: Vec<Value> =
            emails.iter().map(|e| json!({"key": e, "identifiers": [{"kind": "email", "value": e}]})).collect();
        self.call(reqwest::Method::POST, &format!("/v1/syncs/{sync}/users"), key, Some(json!({ "users": users })))
            .await?;
        Ok(())
    }

    /// A sync's answer (settings, status, counts).
    pub async fn sync(&self, key: &str, sync: &str) -> anyhow::Result<Value> {
        self.call(reqwest::Method::GET, &format!("/v1/syncs/{sync}"), key, None).await
    }
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

/// A metric family's total in Prometheus text, however the host breaks it down: the series
/// are grouped by the names of their labels (per sync, per workspace, per destination...) and
/// the smallest group that has series is summed, so a family exported at several levels of
/// aggregation is counted once. 0 when absent.
pub fn family_total(text: &str, name: &str) -> f64 {
    let mut groups: std::collections::BTreeMap<Vec<&str>, (usize, f64)> = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let (labels, value) = match rest.strip_prefix('{') {
            Some(inner) => match inner.rsplit_once('}') {
                Some((labels, value)) => (labels, value),
                None => continue,
            },
            None if rest.starts_with(' ') => ("", rest),
            None => continue,
        };
        let Ok(value) = value.trim().parse::<f64>() else { continue };
        let names: Vec<&str> =
            labels.split(',').filter_map(|pair| pair.split_once('=').map(|(k, _)| k.trim())).collect();
        let group = groups.entry(names).or_default();
        group.0 += 1;
        group.1 += value;
    }
    groups.into_values().min_by_key(|(series, _)| *series).map_or(0.0, |(_, total)| total)
}

/// The series (sample lines) in Prometheus text.
pub fn series_count(text: &str) -> usize {
    text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_is_totalled_once_whatever_its_breakdowns() {
        let per_sync = "# TYPE s counter\ns{destination=\"p\",sync=\"a\"} 3\ns{destination=\"p\",sync=\"b\"} 4\n";
        assert_eq!(family_total(per_sync, "s"), 7.0);
        let both = format!("{per_sync}s{{destination=\"p\"}} 7\ns{{workspace=\"w1\"}} 5\ns{{workspace=\"w2\"}} 2\n");
        assert_eq!(family_total(&both, "s"), 7.0);
        assert_eq!(family_total("s 9\nsx 1\n", "s"), 9.0);
        assert_eq!(family_total("other 1\n", "s"), 0.0);
        assert_eq!(series_count(&both), 5);
    }

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
