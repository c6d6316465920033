//! Creating a sync: every setting is checked before anything runs, and every problem is
//! reported at once in words a person can act on.

use audience_store::{AudienceConfig, Health, IdentifierKind, NewSync, Reentry, SyncAction, SyncRecord};
use serde::Deserialize;

use std::time::Duration;

use audience_runtime::CallError;
use audience_runtime::types::{AudienceSpec, Credentials, DestinationError, Features, TargetPart};

use super::error::{EngineError, Problem};
use super::{Destination, Engine, decode_credentials};

/// What a person asks for when creating a sync.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SyncRequest {
    /// The workspace it belongs to.
    #[serde(skip)]
    pub workspace_id: String,
    /// The connection (partner account credentials) to deliver with.
    pub connection_id: String,
    /// The partner ad account.
    pub account_id: String,
    /// The audience by name (found, or created when `create_if_missing`).
    pub audience_name: String,
    /// The partner's handle of an existing audience, when one was picked from a list.
    #[serde(default)]
    pub audience_id: Option<String>,
    /// A description for a created audience.
    #[serde(default)]
    pub description: Option<String>,
    /// Create the audience when no audience has that name. Default true.
    #[serde(default = "yes")]
    pub create_if_missing: bool,
    /// Add or remove.
    pub action: SyncAction,
    /// Identifier kinds to match on, in priority order ("email", "mobile-ad-id", "idfa", ...).
    pub match_fields: Vec<String>,
    /// What a user entering again while synced becomes: sent again (default) or skipped.
    /// `skip` is for syncs that add users.
    #[serde(default)]
    pub reentry: Reentry,
}

fn yes() -> bool {
    true
}

impl Engine {
    /// Create a sync after checking every setting; all problems are reported together.
    pub async fn create_sync(&self, request: SyncRequest) -> Result<SyncRecord, EngineError> {
        let store = &self.shared.store;
        let mut problems = Vec::new();
        let connection = match store.connection(&request.connection_id).await {
            Ok(c) if c.workspace_id == request.workspace_id => Some(c),
            Ok(_) | Err(audience_store::StoreError::NotFound { .. }) => {
                problems.push(Problem::new(
                    "connection_id",
                    format!("no connection {:?} in this workspace", request.connection_id),
                ));
                None
            }
            Err(err) => return Err(err.into()),
        };
        let destination = connection.as_ref().and_then(|c| self.shared.destinations.get(&c.destination));
        if let Some(c) = &connection {
            if c.health != Health::Ok {
                problems.push(Problem::new(
                    "connection_id",
                    format!(
                        "connection {} needs re-authorization ({}); connect the account again first",
                        c.id,
                        c.last_error.as_deref().unwrap_or("the partner refused its credentials")
                    ),
                ));
            }
            if destination.is_none() {
                problems.push(Problem::new(
                    "connection_id",
                    format!("destination {:?} of this connection is not configured on this host", c.destination),
                ));
            }
        }
        if request.account_id.trim().is_empty() {
            problems.push(Problem::new("account_id", "choose an ad account (list them on the connection)"));
        }
        if request.audience_name.trim().is_empty() && request.audience_id.is_none() {
            problems.push(Problem::new("audience_name", "name the audience to find or create"));
        }
        if request.match_fields.is_empty() {
            problems.push(Problem::new("match_fields", "select at least one match field"));
        }
        let supported: Vec<IdentifierKind> = destination
            .as_ref()
            .map(|d| d.plugin.manifest().identifiers.iter().filter_map(|k| audience_runtime::host_kind(k)).collect())
            .unwrap_or_default();
        let mut match_fields = Vec::with_capacity(request.match_fields.len());
        for field in &request.match_fields {
            match field.parse::<IdentifierKind>() {
                Err(unknown) => problems.push(Problem::new("match_fields", format!("{unknown}"))),
                Ok(kind) if destination.is_some() && !supported.contains(&kind) => problems.push(Problem::new(
                    "match_fields",
                    format!(
                        "{field:?} is not supported by this destination; it supports: {}",
                        supported.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                    ),
                )),
                Ok(kind) if match_fields.contains(&kind) => {
                    problems.push(Problem::new("match_fields", format!("{field:?} is listed twice")))
                }
                Ok(kind) => match_fields.push(kind),
            }
        }
        if let Some(d) = &destination
            && request.action == SyncAction::Remove
            && !d.plugin.manifest().features.contains(Features::REMOVAL)
        {
            problems.push(Problem::new("action", format!("{} does not support removing users", d.name())));
        }
        if request.action == SyncAction::Remove && request.reentry == Reentry::Skip {
            problems.push(Problem::new(
                "reentry",
                "`skip` is for syncs that add users (a user already in the audience is not sent again); \
                 leave it out for a sync that removes users",
            ));
        }
        if !problems.is_empty() {
            return Err(EngineError::Invalid(problems));
        }
        let Some(connection) = connection else { return Err(EngineError::Invalid(problems)) };
        let audience = AudienceConfig {
            name: request.audience_name.trim().to_string(),
            description: request.description,
            create_if_missing: request.create_if_missing,
        };
        let audience_id = request.audience_id.filter(|id| !id.trim().is_empty());
        let account_id = request.account_id.trim().to_string();
        if let Some(destination) = &destination {
            let spec = super::audience_spec(&audience, &match_fields, audience_id.as_deref());
            let plugin = self.paced_plugin_for_change(&connection.id, destination);
            let problems = check_target(self, destination, &plugin, &connection, &account_id, &spec).await?;
            if !problems.is_empty() {
                return Err(EngineError::Invalid(problems));
            }
        }
        let sync = store
            .create_sync(NewSync {
                workspace_id: request.workspace_id,
                connection_id: connection.id.clone(),
                destination: connection.destination.clone(),
                account_id,
                audience,
                audience_id,
                action: request.action,
                match_fields,
                reentry: request.reentry,
            })
            .await?;
        self.work_arrived(&connection.id, &sync.id).await?;
        Ok(sync)
    }
}

/// How often a check the partner throttles is tried in all, and the longest wait between two.
const CHECK_ATTEMPTS: u32 = 4;
const CHECK_MAX_WAIT: Duration = Duration::from_secs(5);

/// Ask the plugin whether the sync's target can work (`check-target`), before anything is
/// stored: every problem it finds, as the request field it is about. A plugin of contract
/// 0.1.0 cannot check; its syncs are created unchecked, as before. `plugin` is paced as the
/// connection ([`Engine::paced_plugin`]), so a person creating syncs shares the token's rate
/// with delivery instead of adding to it: when the connection's turn is further away than
/// `engine.rate.api_max_wait`, the check is not made and the caller is told when to try again.
/// A check the partner throttles waits and tries again a few times before giving up; one whose
/// credentials the partner refuses is made once more with fresh ones (see
/// [`super::unauthorized`]).
async fn check_target(
    engine: &Engine,
    destination: &Destination,
    plugin: &super::PacedPlugin,
    connection: &audience_store::Connection,
    account_id: &str,
    spec: &AudienceSpec,
) -> Result<Vec<Problem>, EngineError> {
    let Ok(creds) = decode_credentials(&connection.credentials) else {
        return Ok(vec![Problem::new(
            "connection_id",
            "the connection's stored credentials cannot be read; connect again",
        )]);
    };
    let mut attempt = 1;
    let answer = loop {
        let check = |creds: Credentials| async move {
            plugin.check_target(&destination.config, &creds, account_id, spec).await
        };
        let answer =
            engine.with_credentials(&connection.id, connection.credentials_version, creds.clone(), check).await;
        match answer {
            Err(CallError::Destination(DestinationError::RateLimited(ms))) if attempt < CHECK_ATTEMPTS => {
                let wait = ms.map_or(Duration::from_secs(1), |ms| Duration::from_millis(ms.into()));
                tokio::time::sleep(wait.min(CHECK_MAX_WAIT)).await;
                attempt += 1;
            }
            other => break other,
        }
    };
    if answer.is_err()
        && let Some(retry_after) = plugin.paced_out()
    {
        return Err(EngineError::RateLimited { destination: destination.name().to_string(), retry_after });
    }
    let found = match answer {
        Ok(found) => found,
        Err(CallError::Unsupported { .. }) => return Ok(Vec::new()),
        Err(CallError::Destination(DestinationError::Unauthorized(why))) => {
            return Ok(vec![Problem::new(
                "connection_id",
                format!("the partner refused the connection's credentials ({why}); connect the account again"),
            )]);
        }
        Err(CallError::Destination(DestinationError::NotFound(why))) => {
            return Ok(vec![Problem::new("account_id", format!("the partner does not know this account: {why}"))]);
        }
        Err(err) => {
            return Err(EngineError::Unavailable(format!(
                "could not check the sync's account and audience with {}: {err}; try again",
                destination.name()
            )));
        }
    };
    Ok(found
        .into_iter()
        .map(|p| {
            let field = match p.part {
                TargetPart::Account => "account_id",
                TargetPart::Audience => {
                    if spec.id.is_some() {
                        "audience_id"
                    } else {
                        "audience_name"
                    }
                }
                TargetPart::Identifiers => "match_fields",
                TargetPart::Credentials => "connection_id",
            };
            Problem::new(field, p.message)
        })
        .collect())
}
