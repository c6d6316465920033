//! Connections: a partner account's credentials, made through OAuth (start → partner's page →
//! callback) or given directly (sandboxes, automation); their ad accounts; their health.
//!
//! The OAuth flow: `start` records a random `state` (hashed) with the workspace, destination
//! and redirect URI, and answers the partner's authorize URL built from the plugin's template.
//! The partner sends the person's browser back to `/v1/oauth/callback?code&state`; the
//! callback consumes the state (once, atomically), exchanges the code through the plugin's
//! `authorize`, and stores the credentials encrypted — as a new connection, or as the new
//! credentials of the connection being re-authorized (which resumes its deliveries).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use audience_store::{Connection, Health, NewConnection, OauthState};

use super::error::{ApiError, ErrorBody, plugin_call_failed};
use super::extract::{Json, Path, Query, Tenant};
use super::paging::PageQuery;
use super::secrets::{hash_secret, new_secret};
use super::workspaces::check_name;
use super::{ApiState, now_ms};
use audience_engine::{Destination, decode_credentials, encode_credentials, lapses_at, retry_after_secs};
use audience_runtime::CallError;
use audience_runtime::types::{AuthCode, Credentials, DestinationError, Features, Grant};

/// Characters left as they are in a URL component (RFC 3986 "unreserved").
/// Whether a connection's credentials work.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HealthView {
    /// Usable.
    Ok,
    /// The partner refused the credentials and a refresh did not help: connect again with
    /// `POST /v1/connections/{id}/oauth/start`. Users stay pending meanwhile.
    NeedsReauthorization,
}

impl From<Health> for HealthView {
    fn from(h: Health) -> Self {
        match h {
            Health::Ok => HealthView::Ok,
            Health::NeedsReauthorization => HealthView::NeedsReauthorization,
        }
    }
}

/// A connection; never its credentials.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectionView {
    /// Id, `conn_...`.
    id: String,
    /// Destination name ("pinterest").
    destination: String,
    /// Name shown to people.
    name: String,
    /// Whether the credentials work.
    health: HealthView,
    /// The last error seen on this connection (why it needs re-authorization).
    last_error: Option<String>,
    /// Bumped each time the credentials change (refresh, re-authorization).
    credentials_version: i64,
    /// When the current access token expires (seconds since the epoch); the host renews it
    /// ahead of time where the partner allows.
    expires_at: Option<u64>,
    /// When the connection stops working unless someone connects the account again (seconds
    /// since the epoch): the end of renewal (Pinterest's refresh token, Meta's long-lived
    /// token), else the token's expiry; none when it does not lapse.
    lapses_at: Option<u64>,
    /// True when `lapses_at` is less than 7 days away: connect the account again
    /// (`POST /v1/connections/{id}/oauth/start`) before delivery stops.
    lapsing_soon: bool,
    /// Creation time (ms).
    created_at: i64,
    /// Last change (ms).
    updated_at: i64,
}

/// How long before a connection lapses the API says `lapsing_soon`.
const LAPSING_SOON_S: u64 = 7 * 24 * 3600;

impl From<Connection> for ConnectionView {
    fn from(c: Connection) -> Self {
        let now_s = (now_ms().max(0) / 1000) as u64;
        let creds = decode_credentials(&c.credentials).ok();
        let lapses_at = creds.as_ref().and_then(|creds| lapses_at(creds, now_s));
        Self {
            id: c.id,
            destination: c.destination,
            name: c.name,
            health: c.health.into(),
            last_error: c.last_error,
            credentials_version: c.credentials_version,
            expires_at: creds.as_ref().and_then(|creds| creds.expires_at),
            lapses_at,
            lapsing_soon: lapses_at.is_some_and(|at| at < now_s + LAPSING_SOON_S),
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// A page of connections.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ConnectionList {
    /// By id.
    connections: Vec<ConnectionView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    next_cursor: Option<String>,
}

/// A destination this host delivers to.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DestinationView {
    /// Name used in requests ("pinterest").
    name: String,
    /// Name shown to people ("Pinterest").
    display_name: String,
    /// The plugin's version.
    version: String,
    /// Identifier kinds it can match on, for a sync's `match_fields`.
    identifiers: Vec<String>,
    /// Whether syncs may remove users.
    supports_removal: bool,
    /// Whether the account's audiences can be searched
    /// (`GET /v1/connections/{id}/accounts/{account}/audiences`).
    audience_search: bool,
    /// The contract version the plugin implements ("0.2.0").
    contract: String,
    /// Whether connections are made through OAuth (`POST /v1/connections/oauth/start`).
    oauth: bool,
}

/// Destinations.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DestinationList {
    /// By name.
    destinations: Vec<DestinationView>,
}

/// An OAuth connection to start.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StartOauth {
    /// Destination name (see `GET /v1/destinations`).
    #[schema(min_length = 1)]
    destination: String,
    /// Name of the connection to create: 1 to 200 characters, not blank, no control characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
}

/// Where to send the person who authorizes.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OauthStarted {
    /// The partner's authorization page: open it in the person's browser.
    authorize_url: String,
    /// The single-use `state` in that URL; the callback must bring it back.
    state: String,
    /// When the link stops working (ms).
    expires_at: i64,
    /// Where the partner will send the browser back (register it with the partner's app).
    redirect_uri: String,
}

/// What the partner passes to the callback.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CallbackQuery {
    /// The authorization code.
    code: Option<String>,
    /// The `state` issued by `oauth/start`.
    state: Option<String>,
    /// Set by the partner when the person refused or the request was wrong.
    error: Option<String>,
    /// The partner's explanation of `error`.
    error_description: Option<String>,
}

/// A connection made (or re-authorized) by the OAuth callback.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CallbackDone {
    /// The connection.
    connection: ConnectionView,
    /// True when an existing connection got new credentials.
    reconnected: bool,
}

/// Credentials given directly (sandboxes, automation).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialsIn {
    /// The bearer token for the partner's API: visible ASCII, no spaces.
    #[schema(min_length = 1, pattern = "^[!-~]+$")]
    access_token: String,
    /// The token that renews it, if the partner issued one: visible ASCII, no spaces.
    #[serde(default)]
    #[schema(pattern = "^[!-~]*$")]
    refresh_token: Option<String>,
    /// When the access token expires (seconds since the Unix epoch).
    #[serde(default)]
    expires_at: Option<u64>,
    /// The scopes granted.
    #[serde(default)]
    scopes: Vec<String>,
}

/// A connection to create from credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateConnection {
    /// Destination name (see `GET /v1/destinations`).
    #[schema(min_length = 1)]
    destination: String,
    /// Name shown to people: 1 to 200 characters, not blank, no control characters.
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// The credentials (stored encrypted, never shown again).
    credentials: CredentialsIn,
}

/// Which page of accounts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AccountsQuery {
    /// `next_cursor` of the previous page; none for the first page.
    cursor: Option<String>,
}

/// An ad account.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccountView {
    /// The partner's id; a sync's `account_id`.
    id: String,
    /// Name at the partner.
    name: String,
    /// What the connection may do in it.
    permissions: Vec<String>,
}

/// One page of ad accounts.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AccountPageView {
    /// The accounts.
    accounts: Vec<AccountView>,
    /// Pass as `cursor` for the next page; none on the last page.
    next_cursor: Option<String>,
}

/// The connection's stored credentials, or 500 saying to connect again.
pub(crate) fn stored_credentials(connection: &Connection) -> Result<Credentials, ApiError> {
    decode_credentials(&connection.credentials).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_failed",
            format!("the stored credentials of connection {} are unreadable ({e}); connect it again", connection.id),
        )
    })
}

/// A connection of the caller's workspace, or 404 (also for another workspace's).
pub(crate) async fn owned_connection(state: &ApiState, tenant: &Tenant, id: &str) -> Result<Connection, ApiError> {
    match state.engine.store().connection(id).await {
        Ok(c) if c.workspace_id == tenant.workspace_id => Ok(c),
        Ok(_) | Err(audience_store::StoreError::NotFound { .. }) => Err(ApiError::not_found("connection", id)),
        Err(other) => Err(other.into()),
    }
}

/// A configured destination by name, or 422 naming the ones there are.
fn destination(state: &ApiState, name: &str) -> Result<Arc<Destination>, ApiError> {
    state.engine.destinations().get(name).ok_or_else(|| {
        let names = state.engine.destinations().names();
        ApiError::field(
            "destination",
            format!(
                "unknown destination {name:?}; this host has: {}",
                if names.is_empty() { "none".to_string() } else { names.join(", ") }
            ),
        )
    })
}

/// The destination of an existing connection (configured when it was made, maybe not now).
pub(crate) fn destination_of(state: &ApiState, connection: &Connection) -> Result<Arc<Destination>, ApiError> {
    state.engine.destinations().get(&connection.destination).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "destination_not_configured",
            format!(
                "destination {:?} of connection {} is not configured on this host; add its plugin to the \
                 configuration",
                connection.destination, connection.id
            ),
        )
    })
}

/// Records a state and builds the partner's authorize URL.
async fn start(
    state: &ApiState,
    workspace_id: &str,
    destination: &Destination,
    name: String,
    connection_id: Option<String>,
) -> Result<OauthStarted, ApiError> {
    let manifest = destination.plugin.manifest();
    let Some(oauth) = &manifest.oauth else {
        return Err(ApiError::field(
            "destination",
            format!(
                "{} does not use OAuth; create the connection with POST /v1/connections and its credentials",
                destination.name()
            ),
        ));
    };
    let Some(client_id) = destination.config.client_id.as_deref().filter(|c| !c.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "oauth_not_configured",
            format!(
                "the operator has not configured an OAuth client id for {}; set `client_id` in its plugin \
                 configuration",
                destination.name()
            ),
        ));
    };
    let secret = new_secret("").map_err(|e| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "internal", format!("no random source for the state: {e}"))
    })?;
    let redirect_uri = state.redirect_uri();
    let now = now_ms();
    let ttl_ms = i64::try_from(state.state_ttl.as_millis()).unwrap_or(i64::MAX);
    let expires_at = now.saturating_add(ttl_ms);
    let override_url = state.oauth.get(destination.name()).and_then(|o| o.authorize_url.as_deref());
    let template = audience_engine::oauth::template_for(&oauth.authorize_url, override_url);
    let scopes = oauth.scopes.join(&oauth.scope_separator);
    let authorize_url = audience_engine::oauth::fill_template(&template, client_id, &redirect_uri, &scopes, &secret);
    state
        .engine
        .store()
        .create_oauth_state(OauthState {
            state_hash: hash_secret(&secret),
            workspace_id: workspace_id.to_string(),
            destination: destination.name().to_string(),
            name,
            connection_id,
            redirect_uri: redirect_uri.clone(),
            created_at: now,
            expires_at,
        })
        .await?;
    Ok(OauthStarted { authorize_url, state: secret, expires_at, redirect_uri })
}

/// The destinations this host delivers to.
#[utoipa::path(get, path = "/v1/destinations", tag = "connections", security(("bearer" = [])),
    responses((status = 200, body = DestinationList), (status = 401, body = ErrorBody)))]
pub(crate) async fn list_destinations(_: Tenant, State(state): State<Arc<ApiState>>) -> axum::Json<DestinationList> {
    let destinations = state
        .engine
        .destinations()
        .names()
        .into_iter()
        .filter_map(|name| state.engine.destinations().get(&name))
        .map(|d| {
            let m = d.plugin.manifest();
            DestinationView {
                name: d.name().to_string(),
                display_name: m.display_name.clone(),
                version: m.version.clone(),
                identifiers: m.identifiers.clone(),
                supports_removal: m.features.contains(Features::REMOVAL),
                audience_search: m.features.contains(Features::AUDIENCE_SEARCH),
                contract: d.plugin.contract_version().to_string(),
                oauth: m.oauth.is_some(),
            }
        })
        .collect();
    axum::Json(DestinationList { destinations })
}

/// Start connecting a partner account through OAuth: answers the partner's authorization URL
/// with a single-use, expiring `state`.
#[utoipa::path(post, path = "/v1/connections/oauth/start", tag = "connections", security(("bearer" = [])),
    request_body = StartOauth,
    responses((status = 201, body = OauthStarted), (status = 401, body = ErrorBody),
        (status = 409, description = "OAuth not configured for the destination", body = ErrorBody),
        (status = 422, description = "Every problem, by field (unknown destination, control characters...)", body = ErrorBody)))]
pub(crate) async fn start_oauth(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Json(body): Json<StartOauth>,
) -> Result<(StatusCode, axum::Json<OauthStarted>), ApiError> {
    let mut problems = Vec::new();
    let name = check_name("name", &body.name).map_err(|e| problems.extend(e.problems)).ok();
    let destination = destination(&state, &body.destination).map_err(|e| problems.extend(e.problems)).ok();
    let (Some(name), Some(destination)) = (name, destination) else {
        return Err(ApiError::invalid(problems));
    };
    let started = start(&state, &tenant.workspace_id, &destination, name, None).await?;
    tracing::info!(workspace = %tenant.workspace_id, destination = %destination.name(), "OAuth connection started");
    Ok((StatusCode::CREATED, axum::Json(started)))
}

/// Connect an existing connection again (it needs re-authorization): answers the partner's
/// authorization URL; the callback then replaces the connection's credentials and its
/// deliveries resume.
#[utoipa::path(post, path = "/v1/connections/{id}/oauth/start", tag = "connections", security(("bearer" = [])),
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 201, body = OauthStarted), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, description = "The id holds a control character", body = ErrorBody)))]
pub(crate) async fn start_reconnect(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<OauthStarted>), ApiError> {
    let connection = owned_connection(&state, &tenant, &id).await?;
    let destination = destination_of(&state, &connection)?;
    let started =
        start(&state, &tenant.workspace_id, &destination, connection.name.clone(), Some(connection.id.clone())).await?;
    tracing::info!(workspace = %tenant.workspace_id, connection = %connection.id, "OAuth re-authorization started");
    Ok((StatusCode::CREATED, axum::Json(started)))
}

/// Where the partner sends the person's browser back. Needs no key: the single-use `state`
/// is the credential. Answers JSON, or a small HTML page when the browser asks for HTML.
#[utoipa::path(get, path = "/v1/oauth/callback", tag = "connections", security(()),
    params(CallbackQuery),
    responses(
        (status = 201, description = "Connection made or re-authorized", body = CallbackDone),
        (status = 400, description = "Unknown, expired or already used state; the partner refused", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the partner's turn for this exchange (the connection's budget when it \
            is re-authorized, the destination's exchanges when it is new) is further away than `engine.rate.api_max_wait`; \
            the code was not exchanged and the link is used up: start the connection again after `Retry-After`",
            body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the connection's turn, rounded up"))),
        (status = 502, description = "The plugin or partner failed", body = ErrorBody)
    ))]
pub(crate) async fn oauth_callback(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    query: Result<Query<CallbackQuery>, ApiError>,
) -> Response {
    let html =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| accept.contains("text/html"));
    let result = match query {
        Ok(Query(query)) => complete(&state, query).await,
        Err(err) => Err(err),
    };
    match (result, html) {
        (Ok(done), false) => (StatusCode::CREATED, axum::Json(done)).into_response(),
        (Ok(done), true) => (
            StatusCode::CREATED,
            Html(page(
                "Connected",
                &format!(
                    "The {} account is connected as “{}” (connection <code>{}</code>). You can close this page.",
                    escape(&done.connection.destination),
                    escape(&done.connection.name),
                    escape(&done.connection.id)
                ),
            )),
        )
            .into_response(),
        (Err(err), false) => err.into_response(),
        (Err(err), true) => {
            let mut response = (err.status, Html(page("Not connected", &escape(&err.message)))).into_response();
            if let Some(secs) = err.retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            response
        }
    }
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>{title}</h1><p>{body}</p></body></html>"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

async fn complete(state: &ApiState, query: CallbackQuery) -> Result<CallbackDone, ApiError> {
    let restart = "start again with POST /v1/connections/oauth/start (or /v1/connections/{id}/oauth/start)";
    let Some(raw_state) = query.state.as_deref().filter(|s| !s.is_empty()) else {
        return Err(ApiError::invalid_state(format!("the callback has no `state` parameter; {restart}")));
    };
    let now = now_ms();
    let pending = match state.engine.store().take_oauth_state(&hash_secret(raw_state), now).await {
        Ok(pending) => pending,
        Err(audience_store::StoreError::NotFound { .. }) => {
            return Err(ApiError::invalid_state(format!(
                "unknown OAuth state: this host did not issue it (or it expired long ago); {restart}"
            )));
        }
        Err(audience_store::StoreError::Conflict(_)) => {
            return Err(ApiError::invalid_state(format!(
                "this OAuth state was already used: each authorization link works once; {restart}"
            )));
        }
        Err(other) => return Err(other.into()),
    };
    if pending.expires_at <= now {
        return Err(ApiError::invalid_state(format!(
            "this OAuth state expired {} s ago (links are valid for {} s); {restart}",
            (now - pending.expires_at) / 1000,
            state.state_ttl.as_secs()
        )));
    }
    if let Some(error) = &query.error {
        let detail = query.error_description.as_deref().map(|d| format!(": {d}")).unwrap_or_default();
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "oauth_failed",
            format!("{} did not authorize the connection ({error}{detail}); {restart}", pending.destination),
        ));
    }
    let Some(code) = query.code.filter(|c| !c.is_empty()) else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "oauth_failed",
            format!("the callback has no `code` parameter; {restart}"),
        ));
    };
    let destination = state.engine.destinations().get(&pending.destination).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "destination_not_configured",
            format!("destination {:?} is no longer configured on this host", pending.destination),
        )
    })?;
    let grant = Grant::AuthorizationCode(AuthCode { code, redirect_uri: pending.redirect_uri.clone() });
    let plugin = state.engine.oauth_plugin(&destination, pending.connection_id.as_deref());
    let exchanged = plugin.authorize(&destination.config, grant).await;
    if exchanged.is_err()
        && let Some(wait) = plugin.paced_out()
    {
        // Not exchanged: the partner was not asked (a flood of callbacks, or deliveries holding
        // the connection's budget). The state was used up taking it.
        return Err(ApiError::rate_limited(
            format!(
                "{}'s requests are paced and its next free turn is {} ms away, so the code was not exchanged; this \
                 authorization link is used up: {restart} in {} s",
                pending.destination,
                wait.as_millis(),
                retry_after_secs(wait)
            ),
            wait,
        ));
    }
    let credentials = exchanged.map_err(|err| match err {
        audience_runtime::CallError::Destination(
            audience_runtime::types::DestinationError::Unauthorized(why)
            | audience_runtime::types::DestinationError::InvalidRequest(why),
        ) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "oauth_failed",
            format!("{} refused the authorization code ({why}); {restart}", pending.destination),
        ),
        other => plugin_call_failed(&pending.destination, other),
    })?;
    match pending.connection_id {
        Some(id) => {
            let connection = match state.engine.store().connection(&id).await {
                Ok(c) if c.workspace_id == pending.workspace_id => c,
                Ok(_) | Err(audience_store::StoreError::NotFound { .. }) => {
                    return Err(ApiError::not_found("connection", &id));
                }
                Err(other) => return Err(other.into()),
            };
            state.engine.reconnect(&connection.id, &credentials).await?;
            let connection = state.engine.store().connection(&connection.id).await?;
            tracing::info!(workspace = %pending.workspace_id, connection = %connection.id, "connection re-authorized");
            Ok(CallbackDone { connection: connection.into(), reconnected: true })
        }
        None => {
            let connection = state
                .engine
                .store()
                .create_connection(NewConnection {
                    workspace_id: pending.workspace_id.clone(),
                    destination: pending.destination.clone(),
                    name: pending.name.clone(),
                    credentials: encode_credentials(&credentials),
                })
                .await?;
            tracing::info!(workspace = %pending.workspace_id, connection = %connection.id, "connection made through OAuth");
            Ok(CallbackDone { connection: connection.into(), reconnected: false })
        }
    }
}

/// Create a connection from credentials obtained elsewhere (sandboxes, automation).
#[utoipa::path(post, path = "/v1/connections", tag = "connections", security(("bearer" = [])),
    request_body = CreateConnection,
    responses((status = 201, body = ConnectionView), (status = 401, body = ErrorBody),
        (status = 422, description = "Every problem, by field: e.g. a token with a control character or a space", body = ErrorBody)))]
pub(crate) async fn create_connection(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Json(body): Json<CreateConnection>,
) -> Result<(StatusCode, axum::Json<ConnectionView>), ApiError> {
    let mut problems = Vec::new();
    let name = check_name("name", &body.name).map_err(|e| problems.extend(e.problems)).ok();
    let destination = destination(&state, &body.destination).map_err(|e| problems.extend(e.problems)).ok();
    if body.credentials.access_token.trim().is_empty() {
        problems
            .push(audience_engine::Problem::new("credentials.access_token", "empty; give the partner's access token"));
    }
    // Control characters were refused by the body's extractor already; a token is also sent
    // as `Authorization: Bearer <token>`, so it is visible ASCII without spaces (RFC 6750).
    for (field, token) in [
        ("credentials.access_token", Some(&body.credentials.access_token)),
        ("credentials.refresh_token", body.credentials.refresh_token.as_ref()),
    ] {
        if let Some(token) = token
            && let Some(bad) = token.trim().chars().find(|c| !c.is_ascii_graphic())
        {
            problems.push(audience_engine::Problem::new(
                field,
                format!(
                    "contains {bad:?}; a token is sent in an HTTP header and holds visible ASCII characters only \
                     (no spaces): give it exactly as the partner issued it"
                ),
            ));
        }
    }
    let (Some(name), Some(destination), true) = (name, destination, problems.is_empty()) else {
        return Err(ApiError::invalid(problems));
    };
    let credentials = Credentials {
        access_token: body.credentials.access_token.trim().to_string(),
        refresh_token: body.credentials.refresh_token.filter(|t| !t.trim().is_empty()),
        expires_at: body.credentials.expires_at,
        renewable_until: None,
        scopes: body.credentials.scopes,
    };
    let connection = state
        .engine
        .store()
        .create_connection(NewConnection {
            workspace_id: tenant.workspace_id.clone(),
            destination: destination.name().to_string(),
            name,
            credentials: encode_credentials(&credentials),
        })
        .await?;
    tracing::info!(workspace = %tenant.workspace_id, connection = %connection.id, "connection made from credentials");
    Ok((StatusCode::CREATED, axum::Json(connection.into())))
}

/// A page of the workspace's connections, by id.
#[utoipa::path(get, path = "/v1/connections", tag = "connections", security(("bearer" = [])),
    params(PageQuery),
    responses((status = 200, body = ConnectionList),
        (status = 400, description = "`invalid_request`: `limit` out of 1 to 1000; `invalid_cursor`: not a cursor this listing gave out", body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub(crate) async fn list_connections(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Query(query): Query<PageQuery>,
) -> Result<axum::Json<ConnectionList>, ApiError> {
    let page = query.page("conn_")?;
    let found = state.engine.store().connections(&tenant.workspace_id, page.after.as_deref(), page.fetch()).await?;
    let (connections, next_cursor) = page.cut(found, |c| c.id.as_str());
    Ok(axum::Json(ConnectionList { connections: connections.into_iter().map(Into::into).collect(), next_cursor }))
}

/// A connection and its health (ok, or needs re-authorization with the last error).
#[utoipa::path(get, path = "/v1/connections/{id}", tag = "connections", security(("bearer" = [])),
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 200, body = ConnectionView), (status = 404, body = ErrorBody),
        (status = 422, description = "The id holds a control character", body = ErrorBody)))]
pub(crate) async fn get_connection(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<axum::Json<ConnectionView>, ApiError> {
    Ok(axum::Json(owned_connection(&state, &tenant, &id).await?.into()))
}

/// Disconnect: delete the connection and its stored credentials. Refused (409) while syncs
/// use it.
#[utoipa::path(delete, path = "/v1/connections/{id}", tag = "connections", security(("bearer" = [])),
    params(("id" = String, Path, description = "Connection id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 409, description = "Syncs use it", body = ErrorBody),
        (status = 422, description = "The id holds a control character", body = ErrorBody)))]
pub(crate) async fn delete_connection(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let connection = owned_connection(&state, &tenant, &id).await?;
    state.engine.delete_connection(&connection.id).await?;
    tracing::info!(workspace = %tenant.workspace_id, connection = %connection.id, "connection deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// What a 429 `rate_limited` answer means, in the OpenAPI document.
pub(crate) const RATE_LIMITED: &str = "`rate_limited`: the connection's partner budget is in use further ahead than \
    `engine.rate.api_max_wait` (2 s by default), by deliveries or by other API calls (which may use \
    `engine.rate.api_share` of it, a quarter by default); the partner was not asked and nothing changed. Try again after `Retry-After`";

/// One page of the ad accounts this connection can use. The partner is asked at the
/// connection's pace, shared with delivery: when deliveries hold the budget for more than
/// `engine.rate.api_max_wait`, the answer is 429 with `Retry-After` instead of a long wait.
#[utoipa::path(get, path = "/v1/connections/{id}/accounts", tag = "connections", security(("bearer" = [])),
    params(("id" = String, Path, description = "Connection id"), AccountsQuery),
    responses((status = 200, body = AccountPageView),
        (status = 400, description = "`invalid_cursor`: not a cursor this host gave out for this connection", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The partner refused the credentials", body = ErrorBody),
        (status = 422, description = "The id holds a control character", body = ErrorBody),
        (status = 429, description = RATE_LIMITED, body = ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the connection's turn, rounded up"))),
        (status = 502, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub(crate) async fn list_accounts(
    tenant: Tenant,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(query): Query<AccountsQuery>,
) -> Result<axum::Json<AccountPageView>, ApiError> {
    let connection = owned_connection(&state, &tenant, &id).await?;
    let destination = destination_of(&state, &connection)?;
    let credentials = stored_credentials(&connection)?;
    let cursor = query.cursor.filter(|c| !c.is_empty());
    let with_cursor = cursor.is_some();
    let plugin = state.engine.paced_plugin(&connection.id, &destination);
    let page = state
        .engine
        .with_credentials(&connection.id, connection.credentials_version, credentials, |creds| {
            let (plugin, destination, cursor) = (&plugin, &destination, cursor.clone());
            async move { plugin.list_accounts(&destination.config, &creds, cursor).await }
        })
        .await
        .map_err(|err| match err {
            // Not asked at all: deliveries or other API calls have the connection's budget for now.
            _ if plugin.paced_out().is_some() => {
                ApiError::paced_out(&connection.destination, &connection.id, plugin.paced_out().unwrap_or_default())
            }
            // The cursor is the only thing in this call the caller chose: a partner refusing
            // the request when one is given refuses the cursor (Pinterest: "Invalid bookmark").
            CallError::Destination(DestinationError::InvalidRequest(why)) if with_cursor => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_cursor",
                format!(
                    "cursor: not one this host gave out for this connection ({} refused it: {why}); pass the \
                     `next_cursor` of the previous page unchanged, or leave `cursor` out for the first page",
                    connection.destination
                ),
            ),
            other => plugin_call_failed(&connection.destination, other),
        })?;
    Ok(axum::Json(AccountPageView {
        accounts: page
            .accounts
            .into_iter()
            .map(|a| AccountView { id: a.id, name: a.name, permissions: a.permissions })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}
