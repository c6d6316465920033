//! A destination used by the host's own tests.
//!
//! With no settings it behaves well: it keeps the selected identifiers (trimmed, lowercase),
//! answers every call locally, and when the setting `url` is present `add-users` POSTs the
//! batch size there through the host's `http-client`. The setting `behaviour` turns it hostile
//! for `add-users`, so the sandbox can be shown to contain it:
//!
//! | behaviour     | what `add-users` does                                         |
//! |---------------|---------------------------------------------------------------|
//! | `loop`        | spins forever                                                 |
//! | `memory-bomb` | allocates until the host refuses more memory                  |
//! | `panic`       | panics (a trap)                                               |
//! | `fetch`       | GETs `url` and fails with the http error it got, if any       |
//! | `print`       | writes to stdout, stderr and the log import, then succeeds    |
//! | `probe`       | tries files, environment, arguments and stdin; fails with what it found |

#![allow(unsafe_code, reason = "the component ABI glue that wit-bindgen's export! generates is unsafe by construction")]

use audience_plugin_sdk::Guest;
use audience_plugin_sdk::http_client::{self, HttpError, Request};
use audience_plugin_sdk::log::{self, Level};
use audience_plugin_sdk::types::*;

/// The test destination.
pub struct TestDestination;

fn setting<'a>(config: &'a PluginConfig, key: &str) -> Option<&'a str> {
    config.settings.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn http_failure(err: HttpError) -> DestinationError {
    match err {
        HttpError::Denied(why) => DestinationError::InvalidRequest(format!("denied: {why}")),
        HttpError::Timeout => DestinationError::Transient("timeout".into()),
        HttpError::Connection(why) => DestinationError::Transient(format!("connection: {why}")),
        HttpError::TooLarge => DestinationError::Transient("too-large".into()),
    }
}

fn fetch(url: &str, method: &str, body: Vec<u8>) -> Result<u16, DestinationError> {
    let req = Request { method: method.into(), url: url.into(), headers: vec![], body };
    http_client::send(&req).map(|resp| resp.status).map_err(http_failure)
}

fn deliver(config: &PluginConfig, users: &[PreparedUser]) -> Result<BatchOutcome, DestinationError> {
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
        Some("huge-error") => return Err(DestinationError::Transient("E".repeat(4 << 20))),
        // A reason of 1 MiB for every user, and rejections for users never sent.
        Some("huge-rejections") => {
            let mut rejected: Vec<RejectedUser> =
                users.iter().map(|u| RejectedUser { key: u.key.clone(), reason: "R".repeat(1 << 20) }).collect();
            if setting(config, "extra").is_some() {
                rejected.push(RejectedUser { key: "never-sent".into(), reason: "made up".into() });
            }
            return Ok(BatchOutcome { rejected, created: None });
        }
        Some("fetch") => {
            let url = setting(config, "url").unwrap_or("https://example.invalid/");
            let status = fetch(url, "GET", vec![])?;
            if status >= 500 {
                return Err(DestinationError::Transient(format!("status {status}")));
            }
        }
        Some("probe") => {
            let root = std::fs::read_dir("/").map(|d| d.count()).map_err(|e| e.kind().to_string());
            let passwd = std::fs::read("/etc/passwd").map(|b| b.len()).map_err(|e| e.kind().to_string());
            let cwd = std::fs::read_dir(".").map(|d| d.count()).map_err(|e| e.kind().to_string());
            let mut line = String::new();
            let stdin = std::io::stdin().read_line(&mut line).map_err(|e| e.kind().to_string());
            return Err(DestinationError::InvalidRequest(format!(
                "root={root:?} passwd={passwd:?} cwd={cwd:?} env={} args={} stdin={stdin:?}",
                std::env::vars().count(),
                std::env::args().count(),
            )));
        }
        Some("print") => {
            println!("a line on stdout");
            eprintln!("a line on stderr");
            log::log(Level::Warn, "a line through the log import");
        }
        _ => {
            if let Some(url) = setting(config, "url") {
                let status = fetch(url, "POST", users.len().to_string().into_bytes())?;
                if status >= 300 {
                    return Err(DestinationError::Transient(format!("status {status}")));
                }
            }
        }
    }
    let rejected = users
        .iter()
        .filter(|u| u.key.starts_with("reject"))
        .map(|u| RejectedUser { key: u.key.clone(), reason: "rejected by test-destination".into() })
        .collect();
    Ok(BatchOutcome { rejected, created: None })
}

impl Guest for TestDestination {
    fn describe() -> Manifest {
        Manifest {
            name: "test".into(),
            version: "0.1.0".into(),
            display_name: "Test destination".into(),
            identifiers: vec![IdentifierKind::Email, IdentifierKind::ExternalId],
            supports_removal: true,
            limits: Limits { max_batch_size: 100, requests_per_second: 50.0, max_concurrent_requests: 4 },
            oauth: None,
            default_hosts: vec!["127.0.0.1".into()],
        }
    }

    fn prepare_users(fields: Vec<IdentifierKind>, users: Vec<RawUser>) -> Vec<Preparation> {
        users
            .into_iter()
            .map(|user| {
                let identifiers: Vec<Identifier> = user
                    .identifiers
                    .into_iter()
                    .filter(|id| fields.contains(&id.kind))
                    .map(|id| Identifier { kind: id.kind, value: id.value.trim().to_lowercase() })
                    .filter(|id| !id.value.is_empty())
                    .collect();
                if identifiers.is_empty() {
                    Preparation::NotSynced("no selected identifier present".into())
                } else {
                    Preparation::Ready(PreparedUser { key: user.key, identifiers })
                }
            })
            .collect()
    }

    fn authorize(config: PluginConfig, grant: Grant) -> Result<Credentials, DestinationError> {
        let refresh = match grant {
            Grant::AuthorizationCode(code) => format!("refresh-{}", code.code),
            Grant::Refresh(token) => token,
        };
        // A token that would smuggle a header into every request made with it.
        let access = match setting(&config, "behaviour") {
            Some("crlf-token") => "test-access\r\nX-Injected: 1",
            _ => "test-access",
        };
        Ok(Credentials { access_token: access.into(), refresh_token: Some(refresh), expires_at: None, scopes: vec![] })
    }

    fn list_accounts(
        _config: PluginConfig,
        _creds: Credentials,
        cursor: Option<String>,
    ) -> Result<AccountPage, DestinationError> {
        let page: u32 = cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
        let accounts = (0..2)
            .map(|i| Account {
                id: format!("acct-{}", page * 2 + i),
                name: format!("Account {}", page * 2 + i),
                permissions: vec!["OWNER".into()],
            })
            .collect();
        let next_cursor = (page < 2).then(|| (page + 1).to_string());
        Ok(AccountPage { accounts, next_cursor })
    }

    fn upsert_audience(
        _config: PluginConfig,
        _creds: Credentials,
        account_id: String,
        spec: AudienceSpec,
    ) -> Result<UpsertOutcome, DestinationError> {
        Ok(UpsertOutcome::Ready(Audience {
            id: format!("{account_id}/{}", spec.name),
            name: spec.name,
            created: false,
            details: vec![],
        }))
    }

    fn add_users(
        config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        _target: AudienceTarget,
        users: Vec<PreparedUser>,
    ) -> Result<BatchOutcome, DestinationError> {
        deliver(&config, &users)
    }

    fn remove_users(
        config: PluginConfig,
        _creds: Credentials,
        _account_id: String,
        _target: AudienceTarget,
        users: Vec<PreparedUser>,
    ) -> Result<BatchOutcome, DestinationError> {
        deliver(&config, &users)
    }
}

// Exported names contain `:`, which only a wasm target can link.
#[cfg(target_arch = "wasm32")]
audience_plugin_sdk::export!(TestDestination);
