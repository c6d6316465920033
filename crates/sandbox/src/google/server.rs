//! Binding, routing and lifetime of the Google stand-in, and the entry every call passes.
//!
//! Google Ads API and Data Manager API calls pass, in this order:
//!
//! 1. the route (unknown paths and methods: 404 NOT_FOUND; Ads versions outside
//!    `min_ads_version..=max_ads_version` too);
//! 2. injected faults ([`GoogleFaults`](crate::google::GoogleFaults));
//! 3. the bearer token (401 UNAUTHENTICATED: missing, unknown, revoked or expired);
//! 4. the service being enabled in the token's Cloud project (403 SERVICE_DISABLED);
//! 5. the API's scope (403 ACCESS_TOKEN_SCOPE_INSUFFICIENT);
//! 6. the Data Manager quota bucket of the token's project (429 RESOURCE_EXHAUSTED);
//! 7. added latency, then the handler (its own checks: access to the account, the body).
//!
//! Every answer carries a `request-id` header; every error body names it too. Each call,
//! OAuth ones included, is logged; `/_sandbox/` control routes are not.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use rand::RngExt;
use serde_json::{Value, json};

use crate::error::SandboxError;
use crate::faults::probability;
use crate::google::config::{GoogleConfig, GoogleFault, GoogleFaults};
use crate::google::errors::{Api, GoogleError, request_id};
use crate::google::log::{GoogleApiKind, GoogleFaultKind, GoogleRequestRecord};
use crate::google::oauth::{ADWORDS_SCOPE, AccessToken, DATAMANAGER_SCOPE, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use crate::google::quota::QuotaBucket;
use crate::google::requests::Operation;
use crate::google::state::{GoogleShared, GoogleState};
use crate::google::{ads, control, handle::GoogleHandle, ingest, oauth, requests, user_lists};
use crate::server::{Serving, serve_until_ctrl_c};

/// Largest request body accepted; far above 10,000 members so over-cap bodies reach the
/// member check and get TOO_MANY_AUDIENCE_MEMBERS rather than a transport error.
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// A running Google stand-in (OAuth, Google Ads API account discovery, Data Manager API) on
/// `127.0.0.1`, every Google host a path prefix of one base URL (see the module docs of
/// [`google`](crate::google)). Dropping it stops the server abruptly;
/// [`shutdown`](Self::shutdown) stops it gracefully.
#[derive(Debug)]
pub struct GoogleSandbox {
    shared: Arc<GoogleShared>,
    server: Serving,
}

fn router(shared: Arc<GoogleShared>) -> Router {
    Router::new()
        .merge(control::routes())
        .fallback(entry)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared)
}

/// Starts a Google stand-in: `GoogleSandbox::start` under the name the lab and tests use.
pub async fn start_google(config: GoogleConfig) -> Result<GoogleSandbox, SandboxError> {
    GoogleSandbox::start(config).await
}

impl GoogleSandbox {
    /// Binds `127.0.0.1:config.port` (0 = any free port) and starts serving.
    pub async fn start(config: GoogleConfig) -> Result<Self, SandboxError> {
        let (listener, addr) = Serving::bind(config.port).await?;
        let shared = Arc::new(GoogleShared::new(config, addr));
        let server = Serving::spawn(listener, router(Arc::clone(&shared)));
        tracing::info!("Google sandbox listening on http://{addr}");
        Ok(Self { shared, server })
    }

    /// `http://127.0.0.1:PORT`: the base every Google host hangs off as a path prefix.
    pub fn base_url(&self) -> String {
        self.shared.base_url()
    }

    /// A handle to control and inspect this sandbox.
    pub fn handle(&self) -> GoogleHandle {
        GoogleHandle::new(Arc::clone(&self.shared))
    }

    /// How to use this sandbox, for people: URLs, credentials, and a first `curl`.
    pub fn usage(&self) -> String {
        let base = self.base_url();
        let config = &self.shared.config;
        let handle = self.handle();
        let manager = handle.manager_ids().into_iter().next().unwrap_or_default();
        let quota = config.quotas.ingestion_mutate;
        format!(
            "Google Customer Match sandbox listening on {base}\n\
             \x20 accounts.google.com            -> {base}/accounts  (authorize: /accounts/o/oauth2/v2/auth, consents at once)\n\
             \x20 oauth2.googleapis.com          -> {base}/oauth2    (POST /oauth2/token, POST /oauth2/revoke)\n\
             \x20 googleads.googleapis.com       -> {base}/googleads (v{min}..v{max}: customers:listAccessibleCustomers, googleAds:search)\n\
             \x20 datamanager.googleapis.com     -> {base}/datamanager (v1: userLists, audienceMembers:ingest|remove|removeAll, requestStatus:retrieve)\n\
             \x20 OAuth client id/secret:        {DEFAULT_CLIENT_ID} / {DEFAULT_CLIENT_SECRET}\n\
             \x20 Scopes:                        {ADWORDS_SCOPE} {DATAMANAGER_SCOPE}\n\
             \x20 Accounts held directly:        {direct} (manager {manager} has clients: use login-customer-id / login-account)\n\
             \x20 Limits:                        ingestion {per_minute}/min and {per_day}/day per project; requests PROCESSING {delay} s; \
             search pages of {page} rows\n\
             Get tokens without the OAuth dance:\n\
             \x20 curl -s -X POST {base}/_sandbox/tokens\n\
             Call the APIs with them:\n\
             \x20 curl -s -H 'Authorization: Bearer <access_token>' {base}/googleads/v{max}/customers:listAccessibleCustomers\n\
             \x20 curl -s -H 'Authorization: Bearer <access_token>' {base}/datamanager/v1/accountTypes/GOOGLE_ADS/accounts/<cid>/userLists\n\
             Inspect and control (summary, request log, list members, faults, clock, quotas):\n\
             \x20 curl -s {base}/_sandbox/",
            min = config.min_ads_version,
            max = config.max_ads_version,
            direct = handle.accessible_customer_ids().join(", "),
            per_minute = quota.per_minute,
            per_day = quota.per_day,
            delay = config.processing_delay.as_secs(),
            page = config.ads_page_size,
        )
    }

    /// Stops accepting requests, lets open ones finish (up to a few seconds), and returns.
    pub async fn shutdown(mut self) {
        self.server.shutdown().await;
    }
}

/// Runs a Google stand-in for people and non-Rust plugin authors: starts it, prints how to
/// use it to stdout, and serves until Ctrl-C.
pub async fn run_standalone_google(config: GoogleConfig) -> Result<(), SandboxError> {
    let mut sandbox = GoogleSandbox::start(config).await?;
    println!("{}\nPress Ctrl-C to stop.", sandbox.usage());
    serve_until_ctrl_c(&mut [&mut sandbox.server]).await
}

/// A routed API call.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    ListAccessible,
    Search { customer: String },
    UserLists { account_type: String, account: String },
    UserList { account_type: String, account: String, id: String },
    Ingestion(Operation),
    Status,
}

impl Route {
    fn bucket(&self, method: &Method) -> Option<QuotaBucket> {
        match self {
            Route::ListAccessible | Route::Search { .. } => None,
            Route::UserLists { .. } | Route::UserList { .. } if *method == Method::GET => {
                Some(QuotaBucket::ManagementRead)
            }
            Route::UserLists { .. } | Route::UserList { .. } => Some(QuotaBucket::ManagementMutate),
            Route::Ingestion(_) => Some(QuotaBucket::IngestionMutate),
            Route::Status => Some(QuotaBucket::IngestionRead),
        }
    }

    fn method_name(&self) -> &'static str {
        match self {
            Route::ListAccessible => "google.ads.googleads.CustomerService.ListAccessibleCustomers",
            Route::Search { .. } => "google.ads.googleads.GoogleAdsService.Search",
            Route::UserLists { .. } | Route::UserList { .. } => "google.ads.datamanager.v1.UserListService",
            Route::Ingestion(_) => "google.ads.datamanager.v1.IngestionService",
            Route::Status => "google.ads.datamanager.v1.IngestionService.RetrieveRequestStatus",
        }
    }
}

/// Parses `/googleads/...` and `/datamanager/...` paths (prefix included) for `method`.
fn route(config: &GoogleConfig, method: &Method, path: &str) -> Result<(Api, Route), GoogleError> {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let not_found = |api| GoogleError::no_such_method(api, path);
    match segments.as_slice() {
        ["googleads", version, rest @ ..] => {
            let number = version.strip_prefix('v').and_then(|v| v.parse::<u32>().ok());
            let api = Api::Ads(number.unwrap_or(config.max_ads_version));
            let Some(number) = number.filter(|n| (config.min_ads_version..=config.max_ads_version).contains(n)) else {
                return Err(not_found(api));
            };
            let api = Api::Ads(number);
            match (rest, method) {
                (["customers:listAccessibleCustomers"], &Method::GET) => Ok((api, Route::ListAccessible)),
                (["customers", customer, "googleAds:search"], &Method::POST) => {
                    Ok((api, Route::Search { customer: (*customer).to_owned() }))
                }
                _ => Err(not_found(api)),
            }
        }
        ["datamanager", "v1", rest @ ..] => {
            let api = Api::DataManager;
            let route = match (rest, method) {
                (["audienceMembers:ingest"], &Method::POST) => Route::Ingestion(Operation::Ingest),
                (["audienceMembers:remove"], &Method::POST) => Route::Ingestion(Operation::Remove),
                (["audienceMembers:removeAll"], &Method::POST) => Route::Ingestion(Operation::RemoveAll),
                (["requestStatus:retrieve"], &Method::GET) => Route::Status,
                (["accountTypes", account_type, "accounts", account, "userLists"], &Method::GET | &Method::POST) => {
                    Route::UserLists { account_type: (*account_type).to_owned(), account: (*account).to_owned() }
                }
                (
                    ["accountTypes", account_type, "accounts", account, "userLists", id],
                    &Method::GET | &Method::PATCH | &Method::DELETE,
                ) => Route::UserList {
                    account_type: (*account_type).to_owned(),
                    account: (*account).to_owned(),
                    id: (*id).to_owned(),
                },
                _ => return Err(not_found(api)),
            };
            Ok((api, route))
        }
        _ => Err(not_found(Api::DataManager)),
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    Some((id.to_owned(), secret.to_owned()))
}

fn query_map(uri: &Uri) -> HashMap<String, String> {
    serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default()
}

/// A fault drawn for one call, counting down forced errors.
fn draw(faults: &mut GoogleFaults) -> Option<(GoogleFault, GoogleFaultKind)> {
    if let Some(forced) = faults.forced.as_mut()
        && forced.remaining > 0
    {
        forced.remaining -= 1;
        let fault = forced.fault.clone();
        if forced.remaining == 0 {
            faults.forced = None;
        }
        return Some((fault, GoogleFaultKind::Forced));
    }
    if rand::rng().random_bool(probability(faults.error_rate)) {
        return Some((GoogleFault::Unavailable, GoogleFaultKind::ServerError));
    }
    None
}

/// The Google service name of an API (what SERVICE_DISABLED names).
pub(crate) fn service_of(api: Api) -> &'static str {
    match api {
        Api::Ads(_) => crate::google::errors::ADS_SERVICE,
        Api::DataManager => crate::google::errors::DM_SERVICE,
    }
}

/// Steps 2 to 6 of the module docs.
fn admit(
    config: &GoogleConfig,
    world: &mut GoogleState,
    api: Api,
    route: &Route,
    bucket: Option<QuotaBucket>,
    token: Option<&str>,
) -> Result<AccessToken, (GoogleError, Option<GoogleFaultKind>)> {
    if let Some((fault, kind)) = draw(&mut world.faults) {
        let error = match (&fault, bucket) {
            (GoogleFault::QuotaExhausted, Some(bucket)) => {
                world.quota.note_forced_refusal(bucket);
                let project = world.oauth.check(&world.clock, token).map(|t| t.project).unwrap_or_default();
                let retry = config.retry_info_on_429.then_some(std::time::Duration::from_secs(60));
                GoogleError::quota_exceeded(
                    bucket.minute_limit_name(),
                    bucket.quota(&config.quotas).per_minute,
                    project,
                    retry,
                )
            }
            _ => GoogleError::forced(&fault, api),
        };
        return Err((error, Some(kind)));
    }
    let access = world.oauth.check(&world.clock, token).map_err(|p| (GoogleError::unauthenticated(api, p), None))?;
    if world.disabled_services.contains(service_of(api)) {
        return Err((GoogleError::service_disabled(api, access.project), None));
    }
    let scope = match api {
        Api::Ads(_) => ADWORDS_SCOPE,
        Api::DataManager => DATAMANAGER_SCOPE,
    };
    if !access.has(scope) {
        return Err((GoogleError::scope_insufficient(api, route.method_name()), None));
    }
    if let Some(bucket) = bucket {
        let (now, unix) = (world.clock.now(), world.clock.unix());
        world.quota.admit(access.project, bucket, &config.quotas, now, unix).map_err(|refusal| {
            let retry = config.retry_info_on_429.then_some(refusal.retry_after);
            (GoogleError::quota_exceeded(refusal.limit_name, refusal.limit_value, access.project, retry), None)
        })?;
    }
    Ok(access)
}

/// What a handler produced, plus what the log wants to know.
struct Handled {
    result: Result<Value, GoogleError>,
    members: Option<usize>,
}

fn run(
    config: &GoogleConfig,
    world: &mut GoogleState,
    api: Api,
    route: &Route,
    method: &Method,
    call: &CallParts<'_>,
    access: &AccessToken,
) -> Handled {
    let version = match api {
        Api::Ads(v) => v,
        Api::DataManager => 0,
    };
    let validate_only = call.query.get("validateOnly").map(String::as_str) == Some("true");
    let mut members = None;
    let result = match route {
        Route::ListAccessible => Ok(ads::list_accessible(world)),
        Route::Search { customer } => ads::search(config, world, version, customer, call.headers, &call.body),
        Route::UserLists { account_type, account } => {
            user_lists::path_account(account_type, account).and_then(|account| {
                user_lists::check_access(world, call.headers, account)?;
                if *method == Method::GET {
                    user_lists::list(world, account, &call.query)
                } else {
                    user_lists::create(world, account, &call.body, validate_only)
                }
            })
        }
        Route::UserList { account_type, account, id } => {
            user_lists::path_account(account_type, account).and_then(|account| {
                user_lists::check_access(world, call.headers, account)?;
                match *method {
                    Method::GET => user_lists::read(world, account, id),
                    Method::DELETE => user_lists::delete(world, account, id),
                    _ => {
                        let mask = call.query.get("updateMask").or_else(|| call.query.get("update_mask"));
                        user_lists::update(world, account, id, &call.body, mask.map(String::as_str), validate_only)
                    }
                }
            })
        }
        Route::Ingestion(operation) => {
            members = call
                .body
                .get("audienceMembers")
                .or_else(|| call.body.get("audience_members"))
                .and_then(Value::as_array)
                .map(Vec::len);
            ingest::validate(config, world, access, *operation, &call.body).map(|accepted| {
                if let Some(request) = accepted.request {
                    world.requests.insert(call.request_id.clone(), request);
                    world.request_order.push(call.request_id.clone());
                }
                json!({ "requestId": call.request_id })
            })
        }
        Route::Status => {
            let id = call.query.get("requestId").or_else(|| call.query.get("request_id"));
            requests::retrieve(world, id.map(String::as_str))
        }
    };
    Handled { result, members }
}

struct CallParts<'a> {
    headers: &'a HeaderMap,
    query: HashMap<String, String>,
    body: Value,
    request_id: String,
}

fn with_request_id(mut response: Response, request_id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("request-id", value);
    }
    response
}

/// The OAuth endpoints: `(status, response, error for the log)`.
fn oauth_call(
    shared: &GoogleShared,
    world: &mut GoogleState,
    method: &Method,
    path: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> (Response, Option<String>) {
    let config = &shared.config;
    let mut params = query_map(uri);
    if let Ok(form) = serde_urlencoded::from_bytes::<HashMap<String, String>>(body) {
        params.extend(form);
    }
    match (method, path) {
        (&Method::GET, "/accounts/o/oauth2/v2/auth" | "/accounts/o/oauth2/auth") => {
            match oauth::authorize(config, world, &params) {
                Ok(location) => ((StatusCode::FOUND, [(header::LOCATION, location)]).into_response(), None),
                Err((status, text)) => ((status, text).into_response(), Some("authorize_error".to_owned())),
            }
        }
        (&Method::POST, "/oauth2/token") => match oauth::token(config, world, &params, basic(headers)) {
            Ok(answer) => (axum::Json(answer).into_response(), None),
            Err(error) => {
                let reason = error.error.to_owned();
                (error.into_response(), Some(reason))
            }
        },
        (&Method::POST, "/oauth2/revoke") => match oauth::revoke(world, &params) {
            Ok(answer) => (axum::Json(answer).into_response(), None),
            Err(error) => {
                let reason = error.error.to_owned();
                (error.into_response(), Some(reason))
            }
        },
        _ => ((StatusCode::NOT_FOUND, "Not Found").into_response(), Some("not_found".to_owned())),
    }
}

/// The handler of every non-control route.
async fn entry(
    State(shared): State<Arc<GoogleShared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let config = &shared.config;
    if path.starts_with("/accounts/") || path.starts_with("/oauth2/") {
        let mut world = shared.settled();
        let at = world.clock.since_start();
        let (response, reason) = oauth_call(&shared, &mut world, &method, &path, &uri, &headers, &body);
        world.log.push(GoogleRequestRecord {
            at,
            api: GoogleApiKind::OAuth,
            method: method.to_string(),
            path,
            access_token: None,
            client_id: None,
            bucket: None,
            status: response.status().as_u16(),
            error_reason: reason,
            request_id: None,
            members: None,
            fault: None,
        });
        return response;
    }

    let request_id = request_id();
    let token = bearer(&headers);
    let routed = route(config, &method, &path);
    let api_kind = if path.starts_with("/googleads/") { GoogleApiKind::Ads } else { GoogleApiKind::DataManager };
    let logged_path = path.split_once('/').map(|(_, rest)| rest).and_then(|rest| rest.find('/').map(|i| &rest[i..]));
    let logged_path = logged_path.unwrap_or(&path).to_owned();
    let bucket = routed.as_ref().ok().and_then(|(_, r)| r.bucket(&method));
    let parsed_body: Result<Value, GoogleError> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            GoogleError::invalid_field("", "INVALID_ARGUMENT", format!("Invalid JSON payload received. {e}"))
        })
    };

    let (at, admitted, latency) = {
        let mut world = shared.settled();
        let at = world.clock.since_start();
        let latency = world.faults.latency;
        let admitted = match &routed {
            Err(error) => Err((error.clone(), None)),
            Ok((api, route)) => admit(config, &mut world, *api, route, bucket, token.as_deref()),
        };
        (at, admitted, latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let mut members = None;
    let mut client_id = None;
    let (result, fault) = match (admitted, routed, parsed_body) {
        (Err((error, fault)), _, _) => (Err(error), fault),
        (Ok(_), _, Err(error)) => (Err(error), None),
        (Ok(access), Ok((api, route)), Ok(body)) => {
            client_id = Some(access.client_id.clone());
            let call = CallParts { headers: &headers, query: query_map(&uri), body, request_id: request_id.clone() };
            let handled = run(config, &mut shared.settled(), api, &route, &method, &call, &access);
            members = handled.members;
            (handled.result, None)
        }
        (Ok(_), Err(error), _) => (Err(error), None),
    };
    let error_reason = result.as_ref().err().map(|e| e.reason.clone());
    let response = match result {
        Ok(value) => with_request_id(axum::Json(value).into_response(), &request_id),
        Err(error) => error.into_response_with(&request_id),
    };
    let mut world = shared.lock();
    world.log.push(GoogleRequestRecord {
        at,
        api: api_kind,
        method: method.to_string(),
        path: logged_path,
        access_token: token,
        client_id,
        bucket,
        status: response.status().as_u16(),
        error_reason,
        request_id: Some(request_id),
        members,
        fault,
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_route_to_their_calls_and_buckets() {
        let config = GoogleConfig::default();
        let routed = |method: Method, path: &str| route(&config, &method, path).ok().map(|(_, r)| r);
        assert_eq!(
            routed(Method::GET, "/googleads/v25/customers:listAccessibleCustomers"),
            Some(Route::ListAccessible)
        );
        assert_eq!(routed(Method::GET, "/googleads/v21/customers:listAccessibleCustomers"), None);
        assert_eq!(routed(Method::GET, "/googleads/v27/customers:listAccessibleCustomers"), None);
        assert_eq!(
            routed(Method::POST, "/googleads/v22/customers/123/googleAds:search"),
            Some(Route::Search { customer: "123".to_owned() })
        );
        let ingest = routed(Method::POST, "/datamanager/v1/audienceMembers:ingest");
        assert_eq!(ingest, Some(Route::Ingestion(Operation::Ingest)));
        assert_eq!(ingest.and_then(|r| r.bucket(&Method::POST)), Some(QuotaBucket::IngestionMutate));
        let lists = routed(Method::GET, "/datamanager/v1/accountTypes/GOOGLE_ADS/accounts/1/userLists");
        assert_eq!(lists.and_then(|r| r.bucket(&Method::GET)), Some(QuotaBucket::ManagementRead));
        assert_eq!(routed(Method::PUT, "/datamanager/v1/accountTypes/GOOGLE_ADS/accounts/1/userLists/2"), None);
        assert_eq!(routed(Method::GET, "/datamanager/v1/requestStatus:retrieve"), Some(Route::Status));
    }
}
