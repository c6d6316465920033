//! The state one run of the suite shares across its checks: the loaded plugin, the stand-in,
//! the test configuration and secrets, and what has been observed so far.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use super::ConformanceOptions;
use super::report::CheckResult;
use super::standin::StandIn;
use audience_runtime::types::{AudienceSpec, Credentials, DestinationError, Features, Manifest, PluginConfig};
use audience_runtime::{CallError, LogLine, LogSource, Plugin, describe_destination_error, redact};

/// What the runtime logs when it refuses a plugin's request (see `plugin::runtime`).
pub const DENIED_MARKER: &str = "host refused an outbound request";

/// How many stderr lines of a crashed call a reason quotes.
const MAX_STDERR_LINES: usize = 8;

/// The fixed OAuth client id the plugin is configured with.
pub const CLIENT_ID: &str = "conformance-client-id";

/// The secrets handed to the plugin, each recognisable and random per run.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// `credentials.access-token`.
    pub access_token: String,
    /// `credentials.refresh-token`.
    pub refresh_token: String,
    /// `plugin-config.client-secret`.
    pub client_secret: String,
    /// A random marker, not a secret, for names and descriptions the suite must recognise in
    /// requests (the audience `check-target` must not create).
    pub nonce: String,
}

impl Secrets {
    /// Fresh secrets for one run.
    pub fn generate() -> Self {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default());
        hasher.write_u32(std::process::id());
        let a = hasher.finish();
        hasher.write_u64(a);
        let b = hasher.finish();
        let random = format!("{a:016x}{b:016x}");
        Self {
            access_token: format!("conformance-secret-token-{random}"),
            refresh_token: format!("conformance-secret-refresh-{random}"),
            client_secret: format!("conformance-secret-client-{random}"),
            nonce: random[..12].to_string(),
        }
    }

    /// Each secret with the name it is reported by.
    pub fn named(&self) -> [(&'static str, &str); 3] {
        [
            ("the access token", &self.access_token),
            ("the refresh token", &self.refresh_token),
            ("the client secret", &self.client_secret),
        ]
    }

    /// Whether `text` shows the secret reported as `name`: the secret itself, or the host's
    /// mark where it scrubbed it (the host redacts what a plugin returns or logs, so a plugin
    /// that echoes a credential shows up as the mark: still a fault of the plugin's, which
    /// leaks on any host that does not scrub).
    pub fn shows(&self, name: &str, text: &str) -> bool {
        let secret = self.named().into_iter().find(|(n, _)| *n == name).map_or("", |(_, secret)| secret);
        (!secret.is_empty() && text.contains(secret)) || text.contains(&redact::marker(Self::host_name(name)))
    }

    /// `text` with every secret (or the host's mark where it scrubbed one) replaced by its
    /// name, so a report never repeats one and reads the same whoever scrubbed it.
    pub fn redact(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (name, secret) in self.named() {
            text = text.replace(secret, &format!("<{name}>"));
            text = text.replace(&redact::marker(Self::host_name(name)), &format!("<{name}>"));
        }
        text
    }

    /// The runtime's name of the secret the suite reports as `name`.
    fn host_name(name: &str) -> &'static str {
        match name {
            "the access token" => redact::ACCESS_TOKEN,
            "the refresh token" => redact::REFRESH_TOKEN,
            _ => redact::CLIENT_SECRET,
        }
    }
}

/// What the suite configures the plugin with: `base-url` (when given), the fixed client id,
/// the client secret and the options' settings (with `{base-url}` replaced by the stand-in's URL).
pub fn plugin_config(
    base_url: Option<&str>,
    stand_in_url: &str,
    secrets: &Secrets,
    options: &ConformanceOptions,
) -> PluginConfig {
    let settings = options.settings.iter().map(|(k, v)| (k.clone(), v.replace("{base-url}", stand_in_url))).collect();
    PluginConfig {
        base_url: base_url.map(str::to_string),
        client_id: Some(CLIENT_ID.into()),
        client_secret: Some(secrets.client_secret.clone()),
        settings,
    }
}

/// The reason of a check that does not apply to a component of contract `version`.
pub fn not_applicable_reason(version: &str) -> String {
    format!("not applicable (contract {version})")
}

/// One write that answered `submitted`, and how following it ended.
#[derive(Debug, Clone)]
pub struct SubmissionRecord {
    /// The check (or step) that made the write.
    pub during: String,
    /// The submission id the plugin returned.
    pub id: String,
    /// How many `check-submission` calls it took (or were made before giving up).
    pub polls: u32,
    /// `None` when it reached `finished` or `failed`; else why following it failed.
    pub problem: Option<String>,
}

/// One run of the suite.
pub struct Suite {
    /// The plugin under test.
    pub plugin: Plugin,
    /// Its manifest.
    pub manifest: Manifest,
    /// The contract version it implements (`0.1.0`, `0.2.0`).
    pub version: String,
    /// The scripted partner.
    pub stand_in: StandIn,
    /// What the run was asked to do.
    pub options: ConformanceOptions,
    /// The configuration every call gets.
    pub config: PluginConfig,
    /// The credentials every call gets.
    pub creds: Credentials,
    /// The secrets inside `config` and `creds`.
    pub secrets: Secrets,
    /// Every destination-error message the plugin returned, for the credentials check.
    pub error_messages: Vec<String>,
    /// The results so far.
    pub checks: Vec<CheckResult>,
    /// The audience id `setup.audience-id` settled on.
    pub audience_id: Option<String>,
    /// How often each batch id was sent, so the same users sent again are the same batch with
    /// the next attempt, as the host does (see `Suite::batch` in `writes.rs`).
    pub attempts: HashMap<String, u32>,
    /// Every write that answered `submitted`.
    pub submissions: Vec<SubmissionRecord>,
    /// Problems with the `rejected` / `unattributed` parts of the outcomes seen so far.
    pub rejection_problems: Vec<String>,
    /// How many batch outcomes (done or finished) were looked at.
    pub outcomes_seen: usize,
    /// The position of a check whose verdict needs the whole run, and what decides it.
    pub deferred: Vec<(usize, Deferred)>,
}

/// A check decided at the end of the run (it keeps its place in the report).
#[derive(Debug, Clone)]
pub enum Deferred {
    /// `describe.base-url` for a plugin whose default hosts do not react to `base-url`: it
    /// fails only if the plugin turns out to take a base-url (it reached the stand-in while no
    /// setting pointed at it).
    BaseUrl {
        /// The default hosts it listed whatever the base-url.
        hosts: Vec<String>,
    },
}

impl Suite {
    /// A suite for `plugin`, configured with `config` (see [`plugin_config`]) against
    /// `stand_in`.
    pub fn new(
        plugin: Plugin,
        stand_in: StandIn,
        options: ConformanceOptions,
        config: PluginConfig,
        secrets: Secrets,
    ) -> Self {
        let manifest = plugin.manifest().clone();
        let version = plugin.contract_version().to_string();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).ok();
        let scopes = manifest.oauth.as_ref().map(|o| o.scopes.clone()).unwrap_or_default();
        let creds = Credentials {
            access_token: secrets.access_token.clone(),
            refresh_token: Some(secrets.refresh_token.clone()),
            expires_at: now.map(|n| n + 3600),
            renewable_until: now.map(|n| n + 30 * 86_400),
            scopes,
        };
        Self {
            plugin,
            manifest,
            version,
            stand_in,
            options,
            config,
            creds,
            secrets,
            error_messages: Vec::new(),
            checks: Vec::new(),
            audience_id: None,
            attempts: HashMap::new(),
            submissions: Vec::new(),
            rejection_problems: Vec::new(),
            outcomes_seen: 0,
            deferred: Vec::new(),
        }
    }

    /// Record a result.
    pub fn push(&mut self, check: CheckResult) {
        self.checks.push(check);
    }

    /// Keep `name`'s place in the report; the end of the run decides it (see [`Deferred`]).
    pub fn defer(&mut self, name: &str, what: Deferred) {
        self.deferred.push((self.checks.len(), what));
        self.checks.push(CheckResult::fail(name, "not decided (the suite stopped early)"));
    }

    /// Whether the component implements contract 0.1.0, which lacks the 0.2.0-only exports.
    pub fn is_v0_1_0(&self) -> bool {
        self.version == audience_runtime::since_v0_1_0::VERSION
    }

    /// Record `name` as not applicable to this component's contract version, when it is 0.1.0;
    /// returns whether it did (the caller then skips the check).
    pub fn skip_for_v0_1_0(&mut self, name: &str) -> bool {
        if self.is_v0_1_0() {
            let reason = not_applicable_reason(&self.version);
            self.push(CheckResult::pass(name, reason));
        }
        self.is_v0_1_0()
    }

    /// Whether the manifest declares `feature`.
    pub fn declares(&self, feature: Features) -> bool {
        self.manifest.features.contains(feature)
    }

    /// The audience spec the suite uses: every identifier kind the plugin declares.
    pub fn spec(&self) -> AudienceSpec {
        AudienceSpec {
            id: None,
            name: "audience-host conformance".into(),
            identifiers: self.manifest.identifiers.clone(),
            description: Some("created by `audience-host plugin test`".into()),
            create_if_missing: true,
        }
    }

    /// Every line the plugin logged so far.
    pub fn logs(&self) -> Vec<LogLine> {
        self.plugin.captured_logs()
    }

    /// The lines logged since there were `mark` lines.
    pub fn logs_since(&self, mark: usize) -> Vec<LogLine> {
        self.logs().into_iter().skip(mark).collect()
    }

    /// Describe a call's outcome in the WIT's words, remembering error messages. `log_mark`
    /// is the number of log lines before the call: when the plugin crashed, the last lines it
    /// wrote to stderr since then (a panic message, a Python traceback) say why.
    pub fn outcome<T>(&mut self, result: &Result<T, CallError>, log_mark: usize) -> String {
        match result {
            Ok(_) => "success".into(),
            Err(CallError::Destination(err)) => {
                let message = error_message(err).to_string();
                self.error_messages.push(message);
                self.secrets.redact(&format!("{}: {}", variant_name(err), describe_destination_error(err)))
            }
            Err(CallError::HostRefused(why)) => {
                self.secrets.redact(&format!("a refusal of the host's own gate ({why}), not the partner's answer"))
            }
            Err(CallError::Unsupported { function, version }) => {
                format!("unsupported ({function} is not in contract {version})")
            }
            Err(CallError::Plugin(err)) => {
                let stderr: Vec<String> = self
                    .logs_since(log_mark)
                    .into_iter()
                    .filter(|l| l.source == LogSource::Stderr && !l.message.trim().is_empty())
                    .map(|l| l.message.trim().to_string())
                    .collect();
                let tail = stderr.len().saturating_sub(MAX_STDERR_LINES);
                if stderr.is_empty() {
                    format!("a plugin failure ({err})")
                } else {
                    let said = self.secrets.redact(&stderr[tail..].join(" / "));
                    format!("a plugin failure ({err}; its stderr: {})", excerpt(&said, 400))
                }
            }
        }
    }
}

/// The WIT name of an error's variant, with its payload for `rate-limited`.
pub fn variant_name(err: &DestinationError) -> String {
    match err {
        DestinationError::RateLimited(Some(ms)) => format!("rate-limited({ms} ms)"),
        DestinationError::RateLimited(None) => "rate-limited(none)".into(),
        DestinationError::Unauthorized(_) => "unauthorized".into(),
        DestinationError::NotFound(_) => "not-found".into(),
        DestinationError::InvalidRequest(_) => "invalid-request".into(),
        DestinationError::ActionRequired(_) => "action-required".into(),
        DestinationError::Transient(_) => "transient".into(),
        DestinationError::RejectedUsers(users) => format!("rejected-users ({})", users.len()),
    }
}

fn error_message(err: &DestinationError) -> &str {
    match err {
        DestinationError::RateLimited(_) => "",
        DestinationError::Unauthorized(m)
        | DestinationError::NotFound(m)
        | DestinationError::InvalidRequest(m)
        | DestinationError::ActionRequired(m)
        | DestinationError::Transient(m) => m,
        DestinationError::RejectedUsers(_) => "",
    }
}

/// Lines that say the runtime refused a request, with what it said.
pub fn denied_lines(lines: &[LogLine]) -> Vec<String> {
    lines.iter().filter(|l| l.message.contains(DENIED_MARKER)).map(|l| l.message.clone()).collect()
}

/// The distinct refusals in `denied` (from [`denied_lines`]), each once with its count.
pub fn summarize_denied(denied: &[String]) -> String {
    let mut distinct: Vec<(String, usize)> = Vec::new();
    for line in denied {
        let what = line.split_once(DENIED_MARKER).map_or(line.as_str(), |(_, rest)| rest);
        let what = what.trim_start_matches(':').trim().to_string();
        match distinct.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => *n += 1,
            None => distinct.push((what, 1)),
        }
    }
    let parts: Vec<String> = distinct.into_iter().map(|(w, n)| if n > 1 { format!("{w} (x{n})") } else { w }).collect();
    parts.join("; ")
}

/// At most `max` characters of `text`.
pub fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_recognisable_and_redacted() {
        let (a, b) = (Secrets::generate(), Secrets::generate());
        assert_ne!(a.access_token, b.access_token);
        assert!(a.access_token.starts_with("conformance-secret-token-"));
        let text = format!("token {} and {}", a.access_token, a.client_secret);
        assert_eq!(a.redact(&text), "token <the access token> and <the client secret>");
    }

    #[test]
    fn variant_names() {
        assert_eq!(variant_name(&DestinationError::RateLimited(Some(7000))), "rate-limited(7000 ms)");
        assert_eq!(variant_name(&DestinationError::NotFound("x".into())), "not-found");
        assert_eq!(variant_name(&DestinationError::ActionRequired("x".into())), "action-required");
        assert_eq!(not_applicable_reason("0.1.0"), "not applicable (contract 0.1.0)");
        assert_eq!(excerpt("abcdef", 3), "abc…");
        let denied = [
            format!("{DENIED_MARKER}: host a.example:443 is not allowed"),
            format!("{DENIED_MARKER}: host a.example:443 is not allowed"),
            format!("{DENIED_MARKER}: plain http to b.example is not allowed"),
        ];
        assert_eq!(
            summarize_denied(&denied),
            "host a.example:443 is not allowed (x2); plain http to b.example is not allowed"
        );
    }
}
