//! A destination used by the host's own tests (contract `audience:destination@0.2.0`).
//!
//! With no settings it behaves well: it keeps the selected identifiers (trimmed, lowercase),
//! answers every call locally, and when the setting `url` is present `add-users` POSTs the
//! batch size there through the host's `http-client`. Users whose key starts with `reject` are
//! rejected individually; users whose key starts with `drop` are reported as one unattributed
//! rejection; a write carrying users whose key starts with `refuse` fails whole with
//! `rejected-users` naming them (and applies nothing). Every call is a fresh instance, so nothing is remembered between calls: every
//! answer is derived from the call's arguments and `plugin-config.settings`.
//!
//! # Hostile `add-users` / `remove-users` (setting `behaviour`)
//!
//! | behaviour         | what the write does                                                |
//! |-------------------|--------------------------------------------------------------------|
//! | `loop`            | spins forever                                                      |
//! | `memory-bomb`     | allocates until the host refuses more memory                       |
//! | `panic`           | panics (a trap)                                                    |
//! | `huge-error`      | fails with a 4 MiB reason (of the kind `fail-with` names; default `transient`) |
//! | `huge-rejections` | rejects every user with a 1 MiB reason (`extra` set: and a user never sent) |
//! | `fetch`           | GETs `url` and fails with the http error it got, if any            |
//! | `print`           | writes to stdout, stderr and the log import, then succeeds         |
//! | `log-flood`       | logs `log-lines` lines (default 1,000) of 4 KiB each, then succeeds |
//! | `leak`            | logs and prints its access and refresh tokens, sends a request whose header name holds the access token (the host refuses it), then fails with a `transient` reason quoting the access token and the client secret |
//! | `probe`           | tries files, environment, arguments and stdin; fails with what it found |
//! | `hash`            | hashes every identifier value of the batch with the host's `hashing` import (setting `normalization`: `none`, `trim-lowercase` (default), `digits-only`, `letters-lowercase`) and rejects each user with reason `sha256:<digest>,<digest>...` (its identifiers' digests, in order). With setting `hash-values` = N it instead hashes N synthetic values `v0`..`v{N-1}` in one call and succeeds when N digests came back |
//!
//! `behaviour` = `crlf-token` makes `authorize` return an access token with a CR LF in it.
//!
//! # The 0.2.0 contract's new behaviour
//!
//! | setting | effect |
//! |---|---|
//! | `identifiers` | comma-separated kinds for `manifest.identifiers`; default `email,external-id` |
//! | `audience-keys` | `one-kind` or `multi-key` (default) |
//! | `features` | comma-separated of `removal`, `asynchronous`, `consent`, `audience-search`, or `none`; default `removal,asynchronous,audience-search` |
//! | `max-batch-size`, `requests-per-second`, `max-concurrent-requests`, `max-submissions-per-audience`, `app-requests-per-second` | the manifest's limits (defaults 100, 50, 4, 0, none) |
//! | `oauth` | `on`: the manifest has an OAuth app whose `authorize-url` is `{base-url or https://auth.test.invalid}/oauth/authorize?...` |
//! | (`base-url`) | `default-hosts` is the base URL's host; without one, `127.0.0.1` |
//! | `write` | `submitted`: writes answer `submitted` instead of `done` |
//! | `check-after-ms` | the submission's `check-after-ms` (default 0) |
//! | `processing-ms` | `check-submission` answers `processing` until this many ms after the write (wall clock; default 0) |
//! | `processing-hint` | `none`: `processing` carries no wait; else it carries the ms left (at least 1) |
//! | `status-url` | `check-submission` GETs this URL (header `x-submission-id`) and answers by status: 202 `processing` (`Retry-After` as the wait), 2xx `finished`, any other status `failed` with the SDK's default error for it; no response is a `transient` call error. A scripted server makes "processing N times, then finished" exact |
//! | `fail-attempts` | writes of a batch whose `attempt` is at most N fail with `fail-with`: a `done` write returns the error, a `submitted` one is `failed` with it at `check-submission` |
//! | `fail-with` | the error for `fail-attempts` and `fail-calls`: `transient` (default), `invalid-request`, `not-found`, `unauthorized`, `action-required`, `rate-limited` or `rate-limited:<ms>` |
//! | `fail-calls` | comma-separated export names (`authorize`, `list-accounts`, `search-audiences`, `read-audience`, `check-target`, `upsert-audience`, `add-users`, `remove-users`, `check-submission`) that answer `fail-with` at once |
//! | `unattributed` | N more unattributed rows reported on every finished write (besides the `drop*` users) |
//! | `budget` | `<used-percent>[:<regain-after-ms>]`: every call with credentials reports this reading through the `pacing` import first |
//! | `audiences` | size of the synthetic audience set `search-audiences` pages over (default 25) |
//! | `page-size` | audiences per `search-audiences` page (default 10) |
//! | `upsert` | `create-with-first-batch`: `upsert-audience` (without `spec.id`) answers so |
//! | `target-problems` | comma-separated target parts (`account`, `audience`, `identifiers`, `credentials`) `check-target` reports a problem for |
//! | `expires-in`, `renewable-for` | seconds from now for `credentials.expires-at` / `renewable-until` from `authorize` |
//! | `refresh` | `rotate`: a renewal returns a new refresh token (`<old>-r`); else it keeps the old one |
//! | `scopes` | comma-separated `credentials.scopes` from `authorize` |
//! | `name` | the manifest's name (default `test`), so one component can be loaded as several plugins |
//!
//! Derived from the arguments:
//! - `prepare-users`: a raw value starting with `hash:` is hashed (the rest, trimmed and
//!   lowercased) through the host's `hashing` import;
//! - the synthetic audiences are `{account}/{Word} {nnn}` for n in 0..`audiences`, Word cycling
//!   through `VIP`, `Churned`, `Newsletter`, `Lapsed`; size exactly n * 100; state by n % 5:
//!   `ready`, `populating`, `too-small`, `unusable` (with a status detail), `unknown`;
//! - `read-audience` answers every id of the form `{account}/{name}` (a synthetic one with its
//!   facts, any other as `ready` of unknown size) and `not-found` for any other id;
//! - `check-target` also reports: an account id starting with `disabled` (account), a
//!   `spec.id` not of the account (audience), no `spec.identifiers` among the manifest's
//!   (identifiers);
//! - a write to `audience-target.create(spec)` reports the audience `{account}/{spec.name}`
//!   as created (in `done`, or in `finished` at `check-submission`).

#![allow(unsafe_code, reason = "the component ABI glue that wit-bindgen's export! generates is unsafe by construction")]

use audience_plugin_sdk::config::{setting, setting_parsed, url_host};
use audience_plugin_sdk::hashing::Normalization;
use audience_plugin_sdk::http::{RequestBuilder, default_status_error, retry_after_ms};
use audience_plugin_sdk::http_client::{HttpError, Request};
use audience_plugin_sdk::identity::HashQueue;
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::pacing::Budget;
use audience_plugin_sdk::paging::matches_query;
use audience_plugin_sdk::types::*;
use audience_plugin_sdk::{Guest, Host, WasmHost, build, kinds};

/// The test destination.
pub struct TestDestination;

/// The words the synthetic audiences' names cycle through.
pub const AUDIENCE_WORDS: [&str; 4] = ["VIP", "Churned", "Newsletter", "Lapsed"];

fn http_failure(err: HttpError) -> DestinationError {
    match err {
        HttpError::Denied(why) => DestinationError::InvalidRequest(format!("denied: {why}")),
        HttpError::Timeout => DestinationError::Transient("timeout".into()),
        HttpError::Connection(why) => DestinationError::Transient(format!("connection: {why}")),
        HttpError::TooLarge => DestinationError::Transient("too-large".into()),
    }
}

fn fetch(host: &dyn Host, url: &str, method: &str, body: Vec<u8>) -> Result<u16, DestinationError> {
    let req = Request { method: method.into(), url: url.into(), headers: vec![], body };
    host.send(&req).map(|resp| resp.status).map_err(http_failure)
}

/// A comma-separated setting as its trimmed, non-empty items.
fn list_setting<'a>(config: &'a PluginConfig, key: &str) -> Vec<&'a str> {
    setting(config, key).map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).collect()).unwrap_or_default()
}

/// Milliseconds since the Unix epoch (the host's wall clock).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The error named `name` (`fail-with`'s values), with `message`.
pub fn named_error(name: &str, message: &str) -> DestinationError {
    let message = message.to_string();
    match name.split_once(':') {
        Some(("rate-limited", ms)) => DestinationError::RateLimited(ms.trim().parse().ok()),
        _ => match name {
            "rate-limited" => DestinationError::RateLimited(None),
            "unauthorized" => DestinationError::Unauthorized(message),
            "not-found" => DestinationError::NotFound(message),
            "invalid-request" => DestinationError::InvalidRequest(message),
            "action-required" => DestinationError::ActionRequired(message),
            _ => DestinationError::Transient(message),
        },
    }
}

fn fail_with(config: &PluginConfig) -> &str {
    setting(config, "fail-with").unwrap_or("transient")
}

/// `fail-calls` lists `export`: its configured error.
fn failing_call(config: &PluginConfig, export: &str) -> Result<(), DestinationError> {
    if list_setting(config, "fail-calls").contains(&export) {
        return Err(named_error(fail_with(config), &format!("test-destination was asked to fail {export}")));
    }
    Ok(())
}

/// Report the `budget` setting's reading, if any, through the pacing import.
fn report_budget(host: &dyn Host, config: &PluginConfig) {
    let Some(reading) = setting(config, "budget") else { return };
    let (used, regain) = match reading.split_once(':') {
        Some((used, regain)) => (used, regain.trim().parse().ok()),
        None => (reading, None),
    };
    if let Ok(used_percent) = used.trim().parse::<f32>() {
        host.report_budget(Budget { used_percent, regain_after_ms: regain });
    }
}

/// The start of a call that has credentials: its configured failure, then the budget reading.
fn enter(host: &dyn Host, config: &PluginConfig, export: &str) -> Result<(), DestinationError> {
    failing_call(config, export)?;
    report_budget(host, config);
    Ok(())
}

// ---- describe ----

/// The manifest for `config`.
pub fn manifest(config: &PluginConfig) -> Manifest {
    let mut identifiers: Vec<IdentifierKind> =
        list_setting(config, "identifiers").into_iter().map(String::from).collect();
    if identifiers.is_empty() {
        identifiers = kinds::list(&[kinds::EMAIL, kinds::EXTERNAL_ID]);
    }
    let audience_keys = match setting(config, "audience-keys") {
        Some("one-kind") => AudienceKeys::OneKind,
        _ => AudienceKeys::MultiKey,
    };
    let features = match setting(config, "features") {
        None => Features::REMOVAL | Features::ASYNCHRONOUS | Features::AUDIENCE_SEARCH,
        Some(_) => list_setting(config, "features").into_iter().fold(Features::empty(), |all, name| {
            all | match name {
                "removal" => Features::REMOVAL,
                "asynchronous" => Features::ASYNCHRONOUS,
                "consent" => Features::CONSENT,
                "audience-search" => Features::AUDIENCE_SEARCH,
                _ => Features::empty(),
            }
        }),
    };
    let limits = Limits {
        max_batch_size: setting_parsed(config, "max-batch-size").unwrap_or(100),
        requests_per_second: setting_parsed(config, "requests-per-second").unwrap_or(50.0),
        max_concurrent_requests: setting_parsed(config, "max-concurrent-requests").unwrap_or(4),
        max_submissions_per_audience: setting_parsed(config, "max-submissions-per-audience").unwrap_or(0),
        app_requests_per_second: setting_parsed(config, "app-requests-per-second"),
    };
    let base = config.base_url.as_deref().map(str::trim).filter(|b| !b.is_empty());
    let oauth = (setting(config, "oauth") == Some("on")).then(|| OauthApp {
        authorize_url: format!(
            "{}/oauth/authorize?client_id={{client-id}}&redirect_uri={{redirect-uri}}&scope={{scopes}}&state={{state}}",
            base.unwrap_or("https://auth.test.invalid").trim_end_matches('/')
        ),
        scopes: vec!["audiences:write".into(), "accounts:read".into()],
        scope_separator: ",".into(),
    });
    let default_hosts = match base {
        Some(base) => url_host(base).map(|h| vec![h.to_string()]).unwrap_or_default(),
        None => vec!["127.0.0.1".into()],
    };
    Manifest {
        name: setting(config, "name").unwrap_or("test").into(),
        version: "0.1.0".into(),
        display_name: "Test destination".into(),
        identifiers,
        audience_keys,
        features,
        limits,
        oauth,
        default_hosts,
    }
}

// ---- prepare-users ----

/// Keep the selected identifiers, trimmed and lowercased; `hash:` values hashed by the host.
pub fn prepare(host: &dyn Host, fields: &[IdentifierKind], users: Vec<RawUser>) -> Vec<Preparation> {
    enum Value {
        Plain(String),
        Hashed(audience_plugin_sdk::identity::HashTicket),
    }
    let mut queue = HashQueue::new();
    let staged: Vec<(RawUser, Vec<(IdentifierKind, Value)>)> = users
        .into_iter()
        .map(|mut user| {
            let ids = std::mem::take(&mut user.identifiers)
                .into_iter()
                .filter(|id| fields.contains(&id.kind))
                .filter_map(|id| {
                    let value = match id.value.strip_prefix("hash:") {
                        Some(rest) if !rest.trim().is_empty() => {
                            Value::Hashed(queue.push(Normalization::TrimLowercase, rest))
                        }
                        Some(_) => return None,
                        None => {
                            let value = id.value.trim().to_lowercase();
                            if value.is_empty() {
                                return None;
                            }
                            Value::Plain(value)
                        }
                    };
                    Some((id.kind, value))
                })
                .collect();
            (user, ids)
        })
        .collect();
    let mut hashed = queue.hash(host);
    staged
        .into_iter()
        .map(|(user, ids)| {
            let identifiers: Vec<Identifier> = ids
                .into_iter()
                .map(|(kind, value)| Identifier {
                    kind,
                    value: match value {
                        Value::Plain(v) => v,
                        Value::Hashed(t) => hashed.take(t),
                    },
                })
                .collect();
            if identifiers.is_empty() {
                Preparation::NotSynced("no selected identifier present".into())
            } else {
                Preparation::Ready(PreparedUser { key: user.key, identifiers, consent: user.consent })
            }
        })
        .collect()
}

// ---- authorize ----

fn in_seconds(config: &PluginConfig, key: &str) -> Option<u64> {
    setting_parsed::<u64>(config, key).map(|secs| now_ms() / 1000 + secs)
}

/// `authorize` for `grant`.
pub fn authorize(config: &PluginConfig, grant: Grant) -> Result<Credentials, DestinationError> {
    failing_call(config, "authorize")?;
    let (refresh_token, renewable_until) = match grant {
        Grant::AuthorizationCode(code) => (Some(format!("refresh-{}", code.code)), None),
        Grant::Refresh(old) => {
            let token = match setting(config, "refresh") {
                Some("rotate") => old.refresh_token.map(|t| format!("{t}-r")),
                _ => old.refresh_token,
            };
            (token, old.renewable_until)
        }
    };
    // A token that would smuggle a header into every request made with it.
    let access = match setting(config, "behaviour") {
        Some("crlf-token") => "test-access\r\nX-Injected: 1",
        _ => "test-access",
    };
    Ok(Credentials {
        access_token: access.into(),
        refresh_token,
        expires_at: in_seconds(config, "expires-in"),
        renewable_until: in_seconds(config, "renewable-for").or(renewable_until),
        scopes: list_setting(config, "scopes").into_iter().map(String::from).collect(),
    })
}

// ---- accounts and audiences ----

/// One page of the fixed account listing: three pages of two accounts.
pub fn list_accounts(cursor: Option<&str>) -> AccountPage {
    let page: u32 = cursor.and_then(|c| c.parse().ok()).unwrap_or(0);
    let accounts = (0..2)
        .map(|i| Account {
            id: format!("acct-{}", page * 2 + i),
            name: format!("Account {}", page * 2 + i),
            permissions: vec!["OWNER".into()],
        })
        .collect();
    let next_cursor = (page < 2).then(|| (page + 1).to_string());
    AccountPage { accounts, next_cursor }
}

/// The name of synthetic audience `n`.
pub fn synthetic_name(n: u32) -> String {
    format!("{} {n:03}", AUDIENCE_WORDS[n as usize % AUDIENCE_WORDS.len()])
}

fn synthetic_count(config: &PluginConfig) -> u32 {
    setting_parsed(config, "audiences").unwrap_or(25)
}

/// Synthetic audience `n` of `account`.
pub fn synthetic_audience(account: &str, n: u32) -> Audience {
    let name = synthetic_name(n);
    let mut audience = build::audience(format!("{account}/{name}"), name);
    audience.identifiers = vec![kinds::EMAIL.into()];
    audience.size = build::exact_size(u64::from(n) * 100);
    audience.state = match n % 5 {
        0 => AudienceState::Ready,
        1 => AudienceState::Populating,
        2 => AudienceState::TooSmall,
        3 => AudienceState::Unusable,
        _ => AudienceState::Unknown,
    };
    if audience.state == AudienceState::Unusable {
        audience.status_detail = Some("Disabled by test-destination: every fourth of five is".into());
    }
    audience.details = vec![("index".into(), n.to_string())];
    audience
}

/// One page of the synthetic audiences of `account` whose name contains `query`.
pub fn search_audiences(
    config: &PluginConfig,
    account: &str,
    query: &str,
    cursor: Option<&str>,
) -> Result<AudiencePage, DestinationError> {
    if !manifest(config).features.contains(Features::AUDIENCE_SEARCH) {
        return Err(DestinationError::InvalidRequest("test-destination: audience-search is switched off".into()));
    }
    let offset: usize = match cursor {
        None | Some("") => 0,
        Some(c) => c.parse().map_err(|_| DestinationError::InvalidRequest(format!("not a cursor of ours: {c:?}")))?,
    };
    let page_size: usize = setting_parsed(config, "page-size").unwrap_or(10).max(1);
    let matching: Vec<u32> =
        (0..synthetic_count(config)).filter(|n| matches_query(&synthetic_name(*n), query)).collect();
    let audiences = matching.iter().skip(offset).take(page_size).map(|n| synthetic_audience(account, *n)).collect();
    let next = offset.saturating_add(page_size);
    let next_cursor = (next < matching.len()).then(|| next.to_string());
    Ok(AudiencePage { audiences, next_cursor })
}

/// The audience `id` of `account`.
pub fn read_audience(config: &PluginConfig, account: &str, id: &str) -> Result<Audience, DestinationError> {
    let name = id
        .strip_prefix(account)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|name| !name.is_empty())
        .ok_or_else(|| DestinationError::NotFound(format!("no audience {id:?} in account {account:?}")))?;
    let synthetic = (0..synthetic_count(config)).find(|n| synthetic_name(*n) == name);
    Ok(match synthetic {
        Some(n) => synthetic_audience(account, n),
        None => {
            let mut audience = build::audience(id, name);
            audience.state = AudienceState::Ready;
            audience
        }
    })
}

/// Every problem with the target `spec` in `account`.
pub fn check_target(config: &PluginConfig, account: &str, spec: &AudienceSpec) -> Vec<TargetProblem> {
    let mut problems = Vec::new();
    let mut problem = |part: TargetPart, message: String| problems.push(TargetProblem { part, message });
    if account.starts_with("disabled") {
        problem(TargetPart::Account, format!("the account {account:?} is disabled"));
    }
    if let Some(id) = &spec.id
        && read_audience(config, account, id).is_err()
    {
        problem(TargetPart::Audience, format!("there is no audience {id:?} in account {account:?}"));
    }
    let declared = manifest(config).identifiers;
    if !spec.identifiers.iter().any(|kind| declared.contains(kind)) {
        problem(
            TargetPart::Identifiers,
            format!("none of {:?} is supported; pick one of {:?}", spec.identifiers, declared),
        );
    }
    for part in list_setting(config, "target-problems") {
        let part = match part {
            "account" => TargetPart::Account,
            "audience" => TargetPart::Audience,
            "identifiers" => TargetPart::Identifiers,
            "credentials" => TargetPart::Credentials,
            _ => continue,
        };
        problem(part, format!("test-destination was asked to report a {part:?} problem"));
    }
    problems
}

/// `upsert-audience`.
pub fn upsert_audience(
    config: &PluginConfig,
    account: &str,
    spec: AudienceSpec,
) -> Result<UpsertOutcome, DestinationError> {
    if let Some(id) = &spec.id {
        return read_audience(config, account, id).map(UpsertOutcome::Ready);
    }
    if setting(config, "upsert") == Some("create-with-first-batch") {
        return Ok(UpsertOutcome::CreateWithFirstBatch(
            "test-destination creates audiences with their first batch".into(),
        ));
    }
    Ok(UpsertOutcome::Ready(build::audience(format!("{account}/{}", spec.name), spec.name)))
}

/// The audience a write to `target` created, if it created one.
fn created(account: &str, target: &AudienceTarget) -> Option<Audience> {
    match target {
        AudienceTarget::Existing(_) => None,
        AudienceTarget::Create(spec) => {
            let mut audience = build::audience(format!("{account}/{}", spec.name), spec.name.clone());
            audience.created = true;
            audience.identifiers = spec.identifiers.clone();
            Some(audience)
        }
    }
}

// ---- writes and submissions ----

/// Whether a write adds or removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `add-users`.
    Add,
    /// `remove-users`.
    Remove,
}

fn hex_encode(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(hex: &str) -> Option<String> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> =
        (0..hex.len()).step_by(2).map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect();
    String::from_utf8(bytes?).ok()
}

/// Everything `check-submission` needs to answer, packed into the submission id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionFacts {
    /// What the write did.
    pub operation: Operation,
    /// The batch's id.
    pub batch_id: String,
    /// The batch's attempt.
    pub attempt: u32,
    /// When the outcome is ready, in ms since the Unix epoch.
    pub ready_at_ms: u64,
    /// `fail-with`'s value when this attempt is to fail.
    pub failure: Option<String>,
    /// The keys rejected individually.
    pub rejected: Vec<String>,
    /// The rows reported as unattributed.
    pub unattributed: u32,
    /// Sample values of the unattributed rows.
    pub samples: Vec<String>,
}

impl SubmissionFacts {
    /// The submission id: `tds1.` then the facts, `.`-separated, text hex-encoded.
    pub fn encode(&self) -> String {
        let op = match self.operation {
            Operation::Add => "add",
            Operation::Remove => "remove",
        };
        format!(
            "tds1.{op}.{}.{}.{}.{}.{}.{}.{}",
            hex_encode(&self.batch_id),
            self.attempt,
            self.ready_at_ms,
            hex_encode(self.failure.as_deref().unwrap_or("")),
            hex_encode(&self.rejected.join("\n")),
            self.unattributed,
            hex_encode(&self.samples.join("\n")),
        )
    }

    /// The facts of a submission id made by [`encode`](Self::encode).
    pub fn decode(id: &str) -> Option<Self> {
        let parts: Vec<&str> = id.split('.').collect();
        let [tag, op, batch, attempt, ready, failure, rejected, unattributed, samples] = parts[..] else {
            return None;
        };
        if tag != "tds1" {
            return None;
        }
        let lines = |hex: &str| -> Option<Vec<String>> {
            let text = hex_decode(hex)?;
            Some(if text.is_empty() { vec![] } else { text.split('\n').map(String::from).collect() })
        };
        Some(Self {
            operation: match op {
                "add" => Operation::Add,
                "remove" => Operation::Remove,
                _ => return None,
            },
            batch_id: hex_decode(batch)?,
            attempt: attempt.parse().ok()?,
            ready_at_ms: ready.parse().ok()?,
            failure: Some(hex_decode(failure)?).filter(|f| !f.is_empty()),
            rejected: lines(rejected)?,
            unattributed: unattributed.parse().ok()?,
            samples: lines(samples)?,
        })
    }

    fn outcome(&self, account: &str, target: &AudienceTarget) -> BatchOutcome {
        let rejected = self
            .rejected
            .iter()
            .map(|key| RejectedUser { key: key.clone(), reason: "rejected by test-destination".into() })
            .collect();
        BatchOutcome {
            rejected,
            unattributed: unattributed(self.unattributed, self.samples.clone()),
            created: created(account, target),
        }
    }
}

fn unattributed(count: u32, samples: Vec<String>) -> Vec<UnattributedRejection> {
    if count == 0 {
        return vec![];
    }
    vec![build::unattributed(count, "dropped by test-destination", samples)]
}

/// The behaviours of `behaviour` that end the write early (or never).
fn hostile(host: &dyn Host, config: &PluginConfig, batch: &Batch) -> Result<Option<WriteOutcome>, DestinationError> {
    match setting(config, "behaviour") {
        Some("loop") => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Some("memory-bomb") => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        Some("panic") => panic!("test-destination was asked to panic"),
        // A partner's HTML error page passed on whole: 4 MiB in one reason.
        Some("huge-error") => Err(named_error(fail_with(config), &"E".repeat(4 << 20))),
        Some("log-flood") => {
            let line = "L".repeat(4096);
            for _ in 0..setting_parsed::<usize>(config, "log-lines").unwrap_or(1_000) {
                host.log(Level::Info, &line);
            }
            Ok(None)
        }
        // A reason of 1 MiB for every user, and rejections for users never sent.
        Some("huge-rejections") => {
            let mut rejected: Vec<RejectedUser> =
                batch.users.iter().map(|u| RejectedUser { key: u.key.clone(), reason: "R".repeat(1 << 20) }).collect();
            if setting(config, "extra").is_some() {
                rejected.push(RejectedUser { key: "never-sent".into(), reason: "made up".into() });
            }
            Ok(Some(build::done(rejected)))
        }
        Some("fetch") => {
            let url = setting(config, "url").unwrap_or("https://example.invalid/");
            let status = fetch(host, url, "GET", vec![])?;
            if status >= 500 {
                return Err(DestinationError::Transient(format!("status {status}")));
            }
            Ok(None)
        }
        Some("probe") => {
            let root = std::fs::read_dir("/").map(|d| d.count()).map_err(|e| e.kind().to_string());
            let passwd = std::fs::read("/etc/passwd").map(|b| b.len()).map_err(|e| e.kind().to_string());
            let cwd = std::fs::read_dir(".").map(|d| d.count()).map_err(|e| e.kind().to_string());
            let mut line = String::new();
            let stdin = std::io::stdin().read_line(&mut line).map_err(|e| e.kind().to_string());
            Err(DestinationError::InvalidRequest(format!(
                "root={root:?} passwd={passwd:?} cwd={cwd:?} env={} args={} stdin={stdin:?}",
                std::env::vars().count(),
                std::env::args().count(),
            )))
        }
        Some("print") => {
            println!("a line on stdout");
            eprintln!("a line on stderr");
            host.log(Level::Warn, "a line through the log import");
            Ok(None)
        }
        Some("hash") => hash_behaviour(host, config, batch).map(Some),
        _ => {
            if let Some(url) = setting(config, "url") {
                let status = fetch(host, url, "POST", batch.users.len().to_string().into_bytes())?;
                if status >= 300 {
                    return Err(DestinationError::Transient(format!("status {status}")));
                }
            }
            Ok(None)
        }
    }
}

fn normalization(config: &PluginConfig) -> Normalization {
    match setting(config, "normalization") {
        Some("none") => Normalization::None,
        Some("digits-only") => Normalization::DigitsOnly,
        Some("letters-lowercase") => Normalization::LettersLowercase,
        _ => Normalization::TrimLowercase,
    }
}

/// `behaviour` = `hash`: the host hashes, the rejections carry the digests.
fn hash_behaviour(host: &dyn Host, config: &PluginConfig, batch: &Batch) -> Result<WriteOutcome, DestinationError> {
    let normalization = normalization(config);
    if let Some(n) = setting_parsed::<usize>(config, "hash-values") {
        let values: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
        let digests = host.sha256_hex(normalization, &values);
        if digests.len() != n {
            return Err(DestinationError::InvalidRequest(format!(
                "the host returned {} digests for {n} values",
                digests.len()
            )));
        }
        return Ok(build::done(vec![]));
    }
    let values: Vec<String> = batch.users.iter().flat_map(|u| u.identifiers.iter().map(|i| i.value.clone())).collect();
    let digests = host.sha256_hex(normalization, &values);
    let mut digests = digests.into_iter();
    let rejected = batch
        .users
        .iter()
        .map(|u| {
            let mine: Vec<String> = digests.by_ref().take(u.identifiers.len()).collect();
            RejectedUser { key: u.key.clone(), reason: format!("sha256:{}", mine.join(",")) }
        })
        .collect();
    Ok(build::done(rejected))
}

/// `add-users` / `remove-users`.
pub fn write(
    host: &dyn Host,
    config: &PluginConfig,
    account: &str,
    target: &AudienceTarget,
    operation: Operation,
    batch: &Batch,
) -> Result<WriteOutcome, DestinationError> {
    let export = if operation == Operation::Add { "add-users" } else { "remove-users" };
    enter(host, config, export)?;
    if let Some(outcome) = hostile(host, config, batch)? {
        return Ok(outcome);
    }
    let failing = setting_parsed::<u32>(config, "fail-attempts").is_some_and(|n| batch.attempt <= n);
    let submitted = setting(config, "write") == Some("submitted");
    if failing && !submitted {
        return Err(named_error(
            fail_with(config),
            &format!("test-destination fails attempt {} of batch {}", batch.attempt, batch.id),
        ));
    }
    // Users whose key starts with `refuse` fail the whole request, named (Google's fast-fail
    // 400): nothing of it is applied.
    let refused: Vec<RejectedUser> = batch
        .users
        .iter()
        .filter(|u| u.key.starts_with("refuse"))
        .map(|u| RejectedUser { key: u.key.clone(), reason: format!("test-destination refuses {}", u.key) })
        .collect();
    if !refused.is_empty() {
        return Err(DestinationError::RejectedUsers(refused));
    }
    let rejected: Vec<String> =
        batch.users.iter().filter(|u| u.key.starts_with("reject")).map(|u| u.key.clone()).collect();
    let dropped: Vec<&PreparedUser> = batch.users.iter().filter(|u| u.key.starts_with("drop")).collect();
    let samples: Vec<String> =
        dropped.iter().filter_map(|u| u.identifiers.first().map(|i| i.value.clone())).take(10).collect();
    let extra: u32 = setting_parsed(config, "unattributed").unwrap_or(0);
    let unattributed_count = u32::try_from(dropped.len()).unwrap_or(u32::MAX).saturating_add(extra);
    let facts = SubmissionFacts {
        operation,
        batch_id: batch.id.clone(),
        attempt: batch.attempt,
        ready_at_ms: now_ms().saturating_add(setting_parsed(config, "processing-ms").unwrap_or(0)),
        failure: failing.then(|| fail_with(config).to_string()),
        rejected,
        unattributed: unattributed_count,
        samples,
    };
    if submitted {
        return Ok(build::submitted(facts.encode(), setting_parsed(config, "check-after-ms").unwrap_or(0)));
    }
    Ok(WriteOutcome::Done(facts.outcome(account, target)))
}

/// `check-submission`.
pub fn check_submission(
    host: &dyn Host,
    config: &PluginConfig,
    account: &str,
    target: &AudienceTarget,
    submission_id: &str,
) -> Result<SubmissionStatus, DestinationError> {
    enter(host, config, "check-submission")?;
    if !manifest(config).features.contains(Features::ASYNCHRONOUS) {
        return Err(DestinationError::InvalidRequest("test-destination: asynchronous is switched off".into()));
    }
    let facts = SubmissionFacts::decode(submission_id).ok_or_else(|| {
        DestinationError::InvalidRequest(format!("not a submission of test-destination: {submission_id:?}"))
    })?;
    if let Some(url) = setting(config, "status-url") {
        let response =
            RequestBuilder::get(url).header("x-submission-id", submission_id).send_via(host).map_err(http_failure)?;
        return Ok(match response.status {
            202 => SubmissionStatus::Processing(response.header("retry-after").and_then(retry_after_ms)),
            200..=299 => SubmissionStatus::Finished(facts.outcome(account, target)),
            _ => SubmissionStatus::Failed(default_status_error(&response, "the scripted status says failed")),
        });
    }
    let now = now_ms();
    if now < facts.ready_at_ms {
        let left = u32::try_from(facts.ready_at_ms - now).unwrap_or(u32::MAX).max(1);
        let hint = (setting(config, "processing-hint") != Some("none")).then_some(left);
        return Ok(SubmissionStatus::Processing(hint));
    }
    if let Some(failure) = &facts.failure {
        return Ok(SubmissionStatus::Failed(named_error(
            failure,
            &format!("test-destination failed attempt {} of batch {}", facts.attempt, facts.batch_id),
        )));
    }
    Ok(SubmissionStatus::Finished(facts.outcome(account, target)))
}

impl Guest for TestDestination {
    fn describe(config: PluginConfig) -> Manifest {
        manifest(&config)
    }

    fn prepare_users(fields: Vec<IdentifierKind>, users: Vec<RawUser>) -> Vec<Preparation> {
        prepare(&WasmHost, &fields, users)
    }

    fn authorize(config: PluginConfig, grant: Grant) -> Result<Credentials, DestinationError> {
        authorize(&config, grant)
    }

    fn list_accounts(
        config: PluginConfig,
        _creds: Credentials,
        cursor: Option<String>,
    ) -> Result<AccountPage, DestinationError> {
        enter(&WasmHost, &config, "list-accounts")?;
        Ok(list_accounts(cursor.as_deref()))
    }

    fn search_audiences(
        config: PluginConfig,
        _creds: Credentials,
        account_id: String,
        query: String,
        cursor: Option<String>,
    ) -> Result<AudiencePage, DestinationError> {
        enter(&WasmHost, &config, "search-audiences")?;
        search_audiences(&config, &account_id, &query, cursor.as_deref())
    }

    fn read_audience(
        config: PluginConfig,
        _creds: Credentials,
        account_id: String,
        audience_id: String,
    ) -> Result<Audience, DestinationError> {
        enter(&WasmHost, &config, "read-audience")?;
        read_audience(&config, &account_id, &audience_id)
    }

    fn check_target(
        config: PluginConfig,
        _creds: Credentials,
        account_id: String,
        spec: AudienceSpec,
    ) -> Result<Vec<TargetProblem>, DestinationError> {
        enter(&WasmHost, &config, "check-target")?;
        Ok(check_target(&config, &account_id, &spec))
    }

    fn upsert_audience(
        config: PluginConfig,
        _creds: Credentials,
        account_id: String,
        spec: AudienceSpec,
    ) -> Result<UpsertOutcome, DestinationError> {
        enter(&WasmHost, &config, "upsert-audience")?;
        upsert_audience(&config, &account_id, spec)
    }

    fn add_users(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        target: AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, DestinationError> {
        leak(&WasmHost, &config, &creds)?;
        write(&WasmHost, &config, &account_id, &target, Operation::Add, &batch)
    }

    fn remove_users(
        config: PluginConfig,
        creds: Credentials,
        account_id: String,
        target: AudienceTarget,
        batch: Batch,
    ) -> Result<WriteOutcome, DestinationError> {
        leak(&WasmHost, &config, &creds)?;
        write(&WasmHost, &config, &account_id, &target, Operation::Remove, &batch)
    }

    fn check_submission(
        config: PluginConfig,
        _creds: Credentials,
        account_id: String,
        target: AudienceTarget,
        submission_id: String,
    ) -> Result<SubmissionStatus, DestinationError> {
        check_submission(&WasmHost, &config, &account_id, &target, &submission_id)
    }
}

/// `behaviour` = `leak`: everything a careless plugin could do with its secrets, so the host's
/// scrubbing of them can be tested.
fn leak(host: &dyn Host, config: &PluginConfig, creds: &Credentials) -> Result<(), DestinationError> {
    if setting(config, "behaviour") != Some("leak") {
        return Ok(());
    }
    let refresh = creds.refresh_token.as_deref().unwrap_or("");
    host.log(Level::Warn, &format!("leaking the access token {} through the log", creds.access_token));
    eprintln!("leaking the refresh token {refresh} on stderr");
    let header = format!("x {}", creds.access_token);
    let req = Request {
        method: "GET".into(),
        url: "https://127.0.0.1:9/".into(),
        headers: vec![(header, "1".into())],
        body: vec![],
    };
    let _ = host.send(&req);
    Err(DestinationError::Transient(format!(
        "the partner refused token {} (client secret {})",
        creds.access_token,
        config.client_secret.as_deref().unwrap_or("")
    )))
}

// Exported names contain `:`, which only a wasm target can link.
#[cfg(target_arch = "wasm32")]
audience_plugin_sdk::export!(TestDestination);

#[cfg(test)]
mod tests;
