//! The HTTP API: workspaces and their keys, connections (OAuth or given credentials), syncs,
//! user intake, and the operational endpoints (`/metrics`, `/healthz`, `/readyz`,
//! `/openapi.json`).
//!
//! Why it looks like this:
//! - **Tenancy by key.** Every `/v1` route but the OAuth callback needs
//!   `Authorization: Bearer <key>`. A workspace key sees and changes only its workspace; any
//!   other workspace's object answers 404, exactly like a missing one, so ids reveal nothing.
//!   The operator key (from the host's configuration) manages workspaces and keys and reads
//!   `/metrics`, and nothing inside a workspace. Keys are stored as SHA-256 hashes.
//! - **The OAuth callback is authenticated by its `state`**: 256 random bits, stored hashed
//!   with the workspace, destination and redirect URI, expiring (10 minutes by default) and
//!   consumed atomically by the first callback, so a wrong, expired or replayed state is
//!   refused.
//! - **Bad input is the caller's to fix, never a 500**: every malformed body, wrong type,
//!   unknown id, oversized body or invalid user answers 4xx with
//!   `{"error": {"code", "message", "problems"?}}`, and a refused intake call stores nothing.
//!   Control characters in a body's strings or a path id are refused once, in the extractors
//!   (`extract.rs`), before anything reaches the store.
//! - **The HTTP edge** ([`serve`]) bounds what a slow or idle client can hold: a header-read
//!   timeout, a body-read timeout, an idle timeout and a cap on open connections
//!   ([`HttpSettings`]); [`bind`] listens with a backlog longer than tokio's.
//! - **The OpenAPI document is generated from the handlers** (`utoipa` + `utoipa-axum`): a
//!   route exists in the router only through its `#[utoipa::path]`, so the document cannot
//!   drift from what is served. The statuses implied by a route's input (a key, a path id, a
//!   body) are added to every operation by `contract.rs`, and the limits the server enforces
//!   are in the schemas; CI runs schemathesis against a real host to hold the two together.
//! - **`/metrics` needs the operator key.** The figures describe every workspace (and name
//!   them, or their syncs, at `engine.metrics.detail = "workspace"` or `"sync"`), so they are
//!   not public; Prometheus sends the key with `authorization: {credentials: ...}` in its
//!   scrape config. `/healthz` (the process answers) and `/readyz` (the store answers) are
//!   open, for load balancers and orchestrators.
//! - **What it must not know**: how delivery works. Every change goes through the engine
//!   (`Engine::create_sync`, `enter`, `set_paused`, `delete_sync`, `delete_connection`,
//!   `reconnect`); the API checks tenancy, parses bodies and maps errors to answers.
//! - **Listings are paged** (`paging.rs`): a cursor and at most 1,000 items a page, so no
//!   answer grows with the tenants. A sync's users (`members.rs`) are paged the same way, by
//!   state, from the sync's ledger.
//! - **Logs** carry one span per request with the method and path only: query strings (OAuth
//!   codes and states), headers (keys) and the user key of `/v1/syncs/{id}/users/{key}` are
//!   never logged, nor are credentials.

mod audiences;
mod connections;
mod contract;
mod edge;
mod error;
mod extract;
mod members;
mod ops;
mod paging;
mod secrets;
mod syncs;
mod workspaces;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use edge::{
    DEFAULT_LISTEN_BACKLOG, HYPER_MAX_HEAD_BYTES, HYPER_MAX_HEADERS, HttpSettings, MAX_REQUEST_HEAD_BYTES,
    MAX_REQUEST_HEADERS, bind, serve,
};
pub use error::{ApiError, ErrorBody, ErrorDetail, ProblemView};
pub use secrets::{API_KEY_PREFIX, OperatorKey, OperatorKeyError};

use audience_engine::Engine;

/// Default lifetime of an OAuth `state`: 10 minutes.
pub const DEFAULT_STATE_TTL: Duration = Duration::from_secs(600);
/// Default largest request body: 16 MiB (10,000 users with a few identifiers each fit easily).
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 << 20;

/// The operator's OAuth settings for one destination, overriding the plugin's manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OauthOverride {
    /// Where to send people to authorize, instead of the manifest's `authorize-url` (e.g. a
    /// sandbox's `http://127.0.0.1:9000/oauth/`). With placeholders (`{client-id}`,
    /// `{redirect-uri}`, `{scopes}`, `{state}`) it is a whole template; without any, it
    /// replaces the page only and the manifest template's query string is kept.
    pub authorize_url: Option<String>,
}

/// Everything the API needs. Build it with [`ApiState::new`], adjust the public fields, and
/// pass it to [`router`].
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
///
/// use audience_api::{ApiState, OauthOverride, OperatorKey, router};
/// use audience_engine::{Destinations, Engine, EngineConfig};
/// use audience_store::{CredentialKey, SqliteStore, Store};
///
/// let store: Arc<dyn Store> = Arc::new(SqliteStore::open("data/host.db", CredentialKey::generate())?);
/// let destinations = Destinations::new(); // plus the loaded plugins
/// let engine = Engine::new(store, destinations, EngineConfig::default());
/// engine.start().await?;
///
/// let operator = OperatorKey::new(&std::env::var("AUDIENCE_OPERATOR_KEY")?)?;
/// let mut state = ApiState::new(engine, operator, "https://audience.example.com");
/// // Send people to a local Pinterest sandbox instead of pinterest.com:
/// state.oauth.insert(
///     "pinterest".into(),
///     OauthOverride { authorize_url: Some("http://127.0.0.1:9000/oauth/".into()) },
/// );
/// state.state_ttl = Duration::from_secs(300);
///
/// let settings = audience_api::HttpSettings::default();
/// let listener = audience_api::bind("0.0.0.0:8080", settings.listen_backlog).await?;
/// let stop = async { tokio::signal::ctrl_c().await.ok(); };
/// audience_api::serve(listener, router(state), settings, stop).await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct ApiState {
    /// The sync engine (and through it the store and the destinations).
    pub engine: Engine,
    /// The operator's key.
    pub operator_key: OperatorKey,
    /// The base URL people's browsers reach this host at, without a trailing slash
    /// (`https://audience.example.com`). The OAuth redirect URI is
    /// `{public_url}/v1/oauth/callback` and must be registered with the partner's app.
    pub public_url: String,
    /// Per-destination OAuth overrides, by destination name.
    pub oauth: HashMap<String, OauthOverride>,
    /// How long an OAuth `state` (an authorization link) stays valid. Default 10 minutes.
    pub state_ttl: Duration,
    /// Largest request body accepted; larger ones get 413. Default 16 MiB.
    pub max_body_bytes: usize,
}

impl ApiState {
    /// The API over `engine`, with default limits and no OAuth overrides.
    pub fn new(engine: Engine, operator_key: OperatorKey, public_url: impl Into<String>) -> Self {
        Self {
            engine,
            operator_key,
            public_url: public_url.into().trim_end_matches('/').to_string(),
            oauth: HashMap::new(),
            state_ttl: DEFAULT_STATE_TTL,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The OAuth redirect URI of this host.
    pub fn redirect_uri(&self) -> String {
        format!("{}/v1/oauth/callback", self.public_url.trim_end_matches('/'))
    }
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("public_url", &self.public_url)
            .field("oauth", &self.oauth)
            .field("state_ttl", &self.state_ttl)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

/// The OpenAPI document's root; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "audience-host API",
        description = "Sync users into ad-platform audiences. Authenticate with `Authorization: Bearer <key>`: \
                       a workspace API key for everything inside a workspace, the operator key for workspaces, \
                       keys and /metrics. Errors are `{\"error\": {\"code\", \"message\", \"problems\"?}}`. \
                       Control characters (NUL, line breaks...) are refused with 422 in every string of a body \
                       (line breaks and tabs are allowed in a sync's `description`) and in every path id. \
                       Any route may also answer 408 `request_timeout` (the request head did not arrive in time; \
                       on routes with a body, also the body) or 431 `headers_too_large`; a request head hyper cannot parse at all (a malformed request \
                       line or header, a head over 64 KiB) gets hyper's 400, 414 or 431 with an empty body. \
                       Times are milliseconds since the Unix epoch."
    ),
    modifiers(&BearerScheme),
    components(schemas(ErrorBody, ErrorDetail, ProblemView)),
    tags(
        (name = "workspaces", description = "Tenants and their API keys (operator key)"),
        (name = "connections", description = "Partner accounts connected with OAuth or credentials"),
        (name = "syncs", description = "Audience syncs and user intake"),
        (name = "users", description = "A sync's users from its ledger: look up, list by state, send again"),
        (name = "operations", description = "Health, readiness, metrics")
    )
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the handlers refer to.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// Every route with its OpenAPI description, before state and layers.
fn api_routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(workspaces::create_workspace, workspaces::list_workspaces))
        .routes(routes!(workspaces::get_workspace))
        .routes(routes!(workspaces::create_key, workspaces::list_keys))
        .routes(routes!(workspaces::delete_key))
        .routes(routes!(workspaces::current_workspace))
        .routes(routes!(connections::list_destinations))
        .routes(routes!(connections::start_oauth))
        .routes(routes!(connections::start_reconnect))
        .routes(routes!(connections::oauth_callback))
        .routes(routes!(connections::create_connection, connections::list_connections))
        .routes(routes!(connections::get_connection, connections::delete_connection))
        .routes(routes!(connections::list_accounts))
        .routes(routes!(audiences::search_audiences))
        .routes(routes!(syncs::create_sync, syncs::list_syncs))
        .routes(routes!(syncs::get_sync, syncs::delete_sync))
        .routes(routes!(syncs::pause_sync))
        .routes(routes!(syncs::resume_sync))
        .routes(routes!(syncs::enter_users, members::list_users))
        .routes(routes!(members::get_user))
        .routes(routes!(members::retry_users))
        .routes(routes!(members::remove_users))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

/// The OpenAPI document of this API, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = api_routes().into_openapi();
    contract::complete(&mut document);
    document
}

/// The API's router, with its state applied: serve it with [`serve`], which bounds what slow
/// and idle clients can hold.
pub fn router(state: ApiState) -> Router {
    let max_body_bytes = state.max_body_bytes;
    let (routes, mut document) = api_routes().split_for_parts();
    contract::complete(&mut document);
    let document = Arc::new(document.to_json().unwrap_or_else(|_| "{}".to_string()));
    routes
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let document = Arc::clone(&document);
                async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], document.to_string()) }
            }),
        )
        .fallback(ops::no_route)
        .method_not_allowed_fallback(ops::method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            // The path only: query strings carry OAuth codes and states; a user's key is the
            // caller's, not logged either.
            tracing::info_span!("request", method = %request.method(), path = %members::logged_path(request.uri().path()))
        }))
        .with_state(Arc::new(state))
}

/// A handler panicked: the request fails with a JSON 500, the host keeps serving.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; the request was not completed")
        .into_response()
}

pub(crate) use audience_model::now_ms;
