//! `audience:destination@0.1.0` (`wit/v0.1.0/destination.wit`, frozen): the first version, and
//! its adapter to [`super::latest`].
//!
//! Everything a 0.1.0 component says is converted to the current types here (`From` impls), and
//! everything the host asks of it is converted down (`down_*` functions). What 0.1.0 cannot
//! express is decided here, once:
//! - identifier kinds were a closed enum: a kind name 0.1.0 does not know is not passed down
//!   (the host only asks for kinds the plugin's manifest listed, so this drops nothing real);
//! - there is no consent, no `renewable-until`, no partner size or state, no `batch` id, no
//!   asynchronous outcome and no unattributed rejection: those read as absent;
//! - renewal was `refresh(refresh-token)`: credentials without a refresh token cannot be
//!   renewed by a 0.1.0 plugin (the caller gets `unauthorized`, as 0.1.0 hosts behaved);
//! - `search-audiences`, `read-audience`, `check-target` and `check-submission` do not exist:
//!   the runtime answers [`crate::CallError::Unsupported`] without calling the plugin.
//!
//! Its imports (`http-client`, `log`) are served by the same code as 0.2.0's, through the
//! conversions below.

#![allow(missing_docs, reason = "generated from the WIT, whose doc comments are the documentation")]

wasmtime::component::bindgen!({
    path: "../../wit/v0.1.0",
    world: "destination",
    imports: { default: async | trappable },
    exports: { default: async },
    additional_derives: [PartialEq],
});

use super::latest::audience::destination::{http_client as new_http, log as new_log, types as new};
use audience::destination::{http_client as old_http, log as old_log, types as old};

/// The contract version this module binds.
pub const VERSION: &str = "0.1.0";
/// The first audience-host release that loads components of this version.
pub const MIN_HOST_VERSION: &str = "0.1.0";

/// A 0.1.0 identifier kind's name in the current contract.
pub fn kind_name(kind: old::IdentifierKind) -> &'static str {
    match kind {
        old::IdentifierKind::Email => "email",
        old::IdentifierKind::Phone => "phone",
        old::IdentifierKind::MobileAdId => "mobile-ad-id",
        old::IdentifierKind::Idfa => "idfa",
        old::IdentifierKind::ExternalId => "external-id",
    }
}

/// The 0.1.0 kind of a current kind name; `None` for kinds 0.1.0 did not have.
pub fn kind_from_name(name: &str) -> Option<old::IdentifierKind> {
    [
        old::IdentifierKind::Email,
        old::IdentifierKind::Phone,
        old::IdentifierKind::MobileAdId,
        old::IdentifierKind::Idfa,
        old::IdentifierKind::ExternalId,
    ]
    .into_iter()
    .find(|kind| kind_name(*kind) == name)
}

fn down_kinds(kinds: &[String]) -> Vec<old::IdentifierKind> {
    kinds.iter().filter_map(|name| kind_from_name(name)).collect()
}

fn down_identifiers(ids: &[new::Identifier]) -> Vec<old::Identifier> {
    ids.iter()
        .filter_map(|id| kind_from_name(&id.kind).map(|kind| old::Identifier { kind, value: id.value.clone() }))
        .collect()
}

fn up_identifiers(ids: Vec<old::Identifier>) -> Vec<new::Identifier> {
    ids.into_iter().map(|id| new::Identifier { kind: kind_name(id.kind).to_string(), value: id.value }).collect()
}

/// The fields of a call, down to 0.1.0.
pub fn down_fields(fields: &[String]) -> Vec<old::IdentifierKind> {
    down_kinds(fields)
}

/// Users as a 0.1.0 `prepare-users` takes them (consent is dropped).
pub fn down_raw_users(users: &[new::RawUser]) -> Vec<old::RawUser> {
    users.iter().map(|u| old::RawUser { key: u.key.clone(), identifiers: down_identifiers(&u.identifiers) }).collect()
}

/// A 0.1.0 preparation, with the consent of the user it was made from.
pub fn up_preparation(prep: old::Preparation, consent: Option<new::Consent>) -> new::Preparation {
    match prep {
        old::Preparation::Ready(user) => new::Preparation::Ready(new::PreparedUser {
            key: user.key,
            identifiers: up_identifiers(user.identifiers),
            consent,
        }),
        old::Preparation::NotSynced(why) => new::Preparation::NotSynced(why),
    }
}

/// Prepared users as a 0.1.0 `add-users` / `remove-users` takes them: the strings are moved,
/// not copied, so adapting a batch costs a pass over it and no allocation per value.
pub fn down_prepared_users(users: Vec<new::PreparedUser>) -> Vec<old::PreparedUser> {
    users
        .into_iter()
        .map(|u| old::PreparedUser {
            key: u.key,
            identifiers: u
                .identifiers
                .into_iter()
                .filter_map(|id| kind_from_name(&id.kind).map(|kind| old::Identifier { kind, value: id.value }))
                .collect(),
        })
        .collect()
}

/// The operator's configuration, for 0.1.0.
pub fn down_config(config: &new::PluginConfig) -> old::PluginConfig {
    old::PluginConfig {
        base_url: config.base_url.clone(),
        client_id: config.client_id.clone(),
        client_secret: config.client_secret.clone(),
        settings: config.settings.clone(),
    }
}

/// Credentials, for 0.1.0 (`renewable-until` is dropped).
pub fn down_credentials(creds: &new::Credentials) -> old::Credentials {
    old::Credentials {
        access_token: creds.access_token.clone(),
        refresh_token: creds.refresh_token.clone(),
        expires_at: creds.expires_at,
        scopes: creds.scopes.clone(),
    }
}

/// A grant, for 0.1.0; `None` when 0.1.0 cannot express it (renewal without a refresh token).
pub fn down_grant(grant: &new::Grant) -> Option<old::Grant> {
    match grant {
        new::Grant::AuthorizationCode(code) => Some(old::Grant::AuthorizationCode(old::AuthCode {
            code: code.code.clone(),
            redirect_uri: code.redirect_uri.clone(),
        })),
        new::Grant::Refresh(creds) => creds.refresh_token.clone().map(old::Grant::Refresh),
    }
}

/// An audience spec, for 0.1.0 (a picked `id` cannot be passed: 0.1.0 finds audiences by name).
pub fn down_spec(spec: &new::AudienceSpec) -> old::AudienceSpec {
    old::AudienceSpec {
        name: spec.name.clone(),
        identifiers: down_kinds(&spec.identifiers),
        description: spec.description.clone(),
        create_if_missing: spec.create_if_missing,
    }
}

/// A write target, for 0.1.0.
pub fn down_target(target: &new::AudienceTarget) -> old::AudienceTarget {
    match target {
        new::AudienceTarget::Existing(id) => old::AudienceTarget::Existing(id.clone()),
        new::AudienceTarget::Create(spec) => old::AudienceTarget::Create(down_spec(spec)),
    }
}

impl From<old::Manifest> for new::Manifest {
    fn from(m: old::Manifest) -> Self {
        let mut features = new::Features::empty();
        if m.supports_removal {
            features |= new::Features::REMOVAL;
        }
        new::Manifest {
            name: m.name,
            version: m.version,
            display_name: m.display_name,
            identifiers: m.identifiers.into_iter().map(|k| kind_name(k).to_string()).collect(),
            // 0.1.0 said nothing about it; the host assumes nothing of one kind per audience.
            audience_keys: new::AudienceKeys::MultiKey,
            features,
            limits: new::Limits {
                max_batch_size: m.limits.max_batch_size,
                requests_per_second: m.limits.requests_per_second,
                max_concurrent_requests: m.limits.max_concurrent_requests,
                max_submissions_per_audience: 0,
                app_requests_per_second: None,
            },
            oauth: m.oauth.map(|o| new::OauthApp {
                authorize_url: o.authorize_url,
                scopes: o.scopes,
                scope_separator: o.scope_separator,
            }),
            default_hosts: m.default_hosts,
        }
    }
}

impl From<old::DestinationError> for new::DestinationError {
    fn from(err: old::DestinationError) -> Self {
        match err {
            old::DestinationError::RateLimited(ms) => new::DestinationError::RateLimited(ms),
            old::DestinationError::Unauthorized(why) => new::DestinationError::Unauthorized(why),
            old::DestinationError::NotFound(why) => new::DestinationError::NotFound(why),
            old::DestinationError::InvalidRequest(why) => new::DestinationError::InvalidRequest(why),
            old::DestinationError::Transient(why) => new::DestinationError::Transient(why),
        }
    }
}

impl From<old::Credentials> for new::Credentials {
    fn from(c: old::Credentials) -> Self {
        new::Credentials {
            access_token: c.access_token,
            refresh_token: c.refresh_token,
            expires_at: c.expires_at,
            renewable_until: None,
            scopes: c.scopes,
        }
    }
}

impl From<old::AccountPage> for new::AccountPage {
    fn from(page: old::AccountPage) -> Self {
        new::AccountPage {
            accounts: page
                .accounts
                .into_iter()
                .map(|a| new::Account { id: a.id, name: a.name, permissions: a.permissions })
                .collect(),
            next_cursor: page.next_cursor,
        }
    }
}

impl From<old::Audience> for new::Audience {
    fn from(a: old::Audience) -> Self {
        new::Audience {
            id: a.id,
            name: a.name,
            created: a.created,
            identifiers: Vec::new(),
            size: new::AudienceSize { lower: None, upper: None },
            state: new::AudienceState::Unknown,
            status_detail: None,
            details: a.details,
        }
    }
}

impl From<old::UpsertOutcome> for new::UpsertOutcome {
    fn from(outcome: old::UpsertOutcome) -> Self {
        match outcome {
            old::UpsertOutcome::Ready(a) => new::UpsertOutcome::Ready(a.into()),
            old::UpsertOutcome::CreateWithFirstBatch(why) => new::UpsertOutcome::CreateWithFirstBatch(why),
        }
    }
}

impl From<old::BatchOutcome> for new::WriteOutcome {
    fn from(outcome: old::BatchOutcome) -> Self {
        new::WriteOutcome::Done(new::BatchOutcome {
            rejected: outcome
                .rejected
                .into_iter()
                .map(|r| new::RejectedUser { key: r.key, reason: r.reason })
                .collect(),
            unattributed: Vec::new(),
            created: outcome.created.map(Into::into),
        })
    }
}

impl From<old_http::Request> for new_http::Request {
    fn from(r: old_http::Request) -> Self {
        new_http::Request { method: r.method, url: r.url, headers: r.headers, body: r.body }
    }
}

impl From<new_http::Response> for old_http::Response {
    fn from(r: new_http::Response) -> Self {
        old_http::Response { status: r.status, headers: r.headers, body: r.body }
    }
}

impl From<new_http::HttpError> for old_http::HttpError {
    fn from(err: new_http::HttpError) -> Self {
        match err {
            new_http::HttpError::Denied(why) => old_http::HttpError::Denied(why),
            new_http::HttpError::Timeout => old_http::HttpError::Timeout,
            new_http::HttpError::Connection(why) => old_http::HttpError::Connection(why),
            new_http::HttpError::TooLarge => old_http::HttpError::TooLarge,
        }
    }
}

impl From<old_log::Level> for new_log::Level {
    fn from(level: old_log::Level) -> Self {
        match level {
            old_log::Level::Trace => new_log::Level::Trace,
            old_log::Level::Debug => new_log::Level::Debug,
            old_log::Level::Info => new_log::Level::Info,
            old_log::Level::Warn => new_log::Level::Warn,
            old_log::Level::Error => new_log::Level::Error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_name_of_0_1_0_round_trips() {
        for kind in [
            old::IdentifierKind::Email,
            old::IdentifierKind::Phone,
            old::IdentifierKind::MobileAdId,
            old::IdentifierKind::Idfa,
            old::IdentifierKind::ExternalId,
        ] {
            assert_eq!(kind_from_name(kind_name(kind)), Some(kind));
        }
        assert_eq!(kind_from_name("first-name"), None);
    }

    #[test]
    fn every_0_1_0_kind_name_is_a_host_kind() {
        for name in ["email", "phone", "mobile-ad-id", "idfa", "external-id"] {
            assert!(name.parse::<audience_model::IdentifierKind>().is_ok(), "{name}");
            assert!(kind_from_name(name).is_some(), "{name}");
        }
    }

    #[test]
    fn renewal_without_a_refresh_token_cannot_be_said_in_0_1_0() {
        let creds = new::Credentials {
            access_token: "t".into(),
            refresh_token: None,
            expires_at: Some(1),
            renewable_until: None,
            scopes: vec![],
        };
        assert_eq!(down_grant(&new::Grant::Refresh(creds.clone())), None);
        let with = new::Credentials { refresh_token: Some("r".into()), ..creds };
        assert_eq!(down_grant(&new::Grant::Refresh(with)), Some(old::Grant::Refresh("r".into())));
    }
}
