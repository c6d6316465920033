//! The Graph entry: every call outside `/_sandbox/` passes here, in one fixed order.
//!
//! 1. the path: an optional `/v{N}.0` (v20..v30 by default; older is code 2635, other is code
//!    100), then a node (`me`, `act_<n>`, an audience id) and an optional edge;
//! 2. parameters from the query and the body ([`Params`]), `access_token` among them (or an
//!    `Authorization: Bearer` / `OAuth` header); a `POST` with `method=DELETE|GET` is that method;
//! 3. injected faults (not for the login dialog);
//! 4. the token (104 missing, 190/467 unknown, 190/460 revoked, 190/463 expired);
//! 5. the object (100/33 when it does not exist or the user cannot see it);
//! 6. the permission (reads need `ads_read` or `ads_management`, else 200; writes need
//!    `ads_management`, else 294);
//! 7. the ad account's `custom_audience` budget (80003/2446079);
//! 8. added latency, then the handler.
//!
//! Every answer carries `x-fb-trace-id` (the `fbtrace_id` of an error body) and
//! `facebook-api-version`; every answer about an ad account or its audiences carries the
//! usage headers. Each call is logged.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rand::RngExt;
use serde_json::Value;

use crate::faults::{dropped_response, probability};
use crate::meta::config::{MetaConfig, MetaFault, MetaFaults};
use crate::meta::errors::{GraphError, fbtrace_id};
use crate::meta::log::{MetaFaultKind, MetaRequestRecord};
use crate::meta::oauth::Caller;
use crate::meta::paging::Links;
use crate::meta::params::Params;
use crate::meta::sessions::SessionOperation;
use crate::meta::state::{MetaShared, MetaState, account_node, parse_number};
use crate::meta::{accounts, audiences, oauth, users};

const TRACE_ID: HeaderName = HeaderName::from_static("x-fb-trace-id");
const API_VERSION: HeaderName = HeaderName::from_static("facebook-api-version");

/// A node in a Graph path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Me,
    Account(u64),
    /// Anything else; an audience when it is one.
    Object(String),
}

impl Node {
    fn parse(raw: &str) -> Self {
        if raw == "me" {
            return Node::Me;
        }
        match raw.strip_prefix("act_").and_then(parse_number) {
            Some(number) => Node::Account(number),
            None => Node::Object(raw.to_owned()),
        }
    }

    fn id(&self) -> String {
        match self {
            Node::Me => "me".to_owned(),
            Node::Account(n) => account_node(*n),
            Node::Object(raw) => raw.clone(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Node::Me => "User",
            Node::Account(_) => "AdAccount",
            Node::Object(_) => "CustomAudience",
        }
    }
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Dialog,
    AccessToken,
    DebugToken,
    Node(Node),
    Edge(Node, String),
    Unknown,
}

impl Route {
    fn parse(segments: &[&str]) -> Self {
        match segments {
            ["dialog", "oauth"] => Route::Dialog,
            ["oauth", "access_token"] => Route::AccessToken,
            ["debug_token"] => Route::DebugToken,
            [node] => Route::Node(Node::parse(node)),
            [node, edge] => Route::Edge(Node::parse(node), (*edge).to_owned()),
            _ => Route::Unknown,
        }
    }

    fn node(&self) -> Option<&Node> {
        match self {
            Route::Node(node) | Route::Edge(node, _) => Some(node),
            _ => None,
        }
    }
}

/// Splits `/v25.0/act_1/customaudiences` into the version segment (if the first segment looks
/// like one) and the rest.
fn split_path(path: &str) -> (Option<&str>, Vec<&str>) {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.split_first() {
        Some((first, rest)) if first.strip_prefix('v').is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit())) => {
            (Some(first), rest.to_vec())
        }
        _ => (None, segments),
    }
}

fn parse_version(raw: Option<&str>, config: &MetaConfig) -> Result<Option<u32>, GraphError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let number = raw.strip_prefix('v').and_then(|v| v.strip_suffix(".0")).and_then(|n| n.parse::<u32>().ok());
    match number {
        Some(n) if n < config.min_version => Err(GraphError::deprecated_version(n, config.default_version)),
        Some(n) if n <= config.max_version => Ok(Some(n)),
        _ => Err(GraphError::unknown_version(raw, config.min_version, config.max_version)),
    }
}

fn header_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth")).then(|| token.trim().to_owned())
}

/// A fault drawn for one call.
enum Injected {
    Answer(GraphError, MetaFaultKind),
    Drop,
}

/// Draws the fault for one call, counting down forced errors.
fn draw(faults: &mut MetaFaults) -> Option<Injected> {
    if let Some(forced) = faults.forced.as_mut()
        && forced.remaining > 0
    {
        forced.remaining -= 1;
        let error = GraphError::forced(&forced.fault);
        if forced.remaining == 0 {
            faults.forced = None;
        }
        return Some(Injected::Answer(error, MetaFaultKind::Forced));
    }
    let mut rng = rand::rng();
    if rng.random_bool(probability(faults.drop_rate)) {
        return Some(Injected::Drop);
    }
    if rng.random_bool(probability(faults.error_rate)) {
        return Some(Injected::Answer(GraphError::forced(&MetaFault::Service), MetaFaultKind::ServerError));
    }
    None
}

/// What passed the checks.
struct Admitted {
    caller: Option<Caller>,
}

enum Decision {
    Proceed(Admitted),
    Refuse(GraphError, Option<MetaFaultKind>),
    Drop,
}

/// The ad account a route addresses, directly or through one of its audiences, if visible.
fn target_account(world: &MetaState, route: &Route) -> Option<u64> {
    match route.node()? {
        Node::Me => None,
        Node::Account(n) => world.visible_account(*n).map(|a| a.number),
        Node::Object(raw) => parse_number(raw).and_then(|id| world.visible_audience(id)).map(|a| a.account),
    }
}

/// Steps 3 to 7 of the module docs.
fn decide(
    world: &mut MetaState,
    path: &str,
    route: &Route,
    method: &Method,
    token: Option<&str>,
    account: Option<u64>,
) -> Decision {
    match draw(&mut world.faults) {
        Some(Injected::Drop) => return Decision::Drop,
        Some(Injected::Answer(error, kind)) => return Decision::Refuse(error, Some(kind)),
        None => {}
    }
    let Some(node) = route.node() else {
        return match route {
            Route::Unknown => Decision::Refuse(GraphError::unknown_path(path), None),
            _ => Decision::Proceed(Admitted { caller: None }),
        };
    };
    if *node == Node::Me && token.is_none() {
        return Decision::Refuse(GraphError::no_current_user(), None);
    }
    let caller = match world.oauth.check(&world.clock, token) {
        Ok(caller) => caller,
        Err(error) => return Decision::Refuse(error, None),
    };
    if *node == Node::Me && matches!(caller, Caller::App) {
        return Decision::Refuse(GraphError::no_current_user(), None);
    }
    if !matches!(node, Node::Me) && account.is_none() {
        return Decision::Refuse(GraphError::unknown_object(&node.id(), method.as_str()), None);
    }
    let write = *method != Method::GET;
    let needs_scope = !matches!(route, Route::Node(Node::Me));
    if needs_scope && write && !caller.has("ads_management") {
        return Decision::Refuse(GraphError::missing_ads_management(), None);
    }
    if needs_scope && !write && !caller.has("ads_read") && !caller.has("ads_management") {
        return Decision::Refuse(GraphError::missing_ads_read(), None);
    }
    if let Some(account) = account {
        let audiences = world.audience_count(account);
        let now = world.clock.now();
        if !world.usage.admit(account, audiences, now, write) {
            return Decision::Refuse(GraphError::custom_audience_throttled(), None);
        }
    }
    Decision::Proceed(Admitted { caller: Some(caller) })
}

/// A successful answer.
enum Answer {
    Json(Value),
    Redirect(String),
}

/// Everything a handler may need about its call.
struct Call<'a> {
    route: Route,
    method: Method,
    params: Params,
    token: Option<String>,
    version: u32,
    url: String,
    caller: Option<Caller>,
    rows: Option<usize>,
    shared: &'a MetaShared,
}

fn run(world: &mut MetaState, call: &mut Call<'_>) -> Result<Answer, GraphError> {
    let shared = call.shared;
    let config = &shared.config;
    let links = Links {
        url: call.url.clone(),
        params: &call.params,
        token: call.token.as_deref().filter(|_| call.params.token_in_params),
    };
    let caller = call.caller.clone().unwrap_or(Caller::App);
    let audience = call.route.node().and_then(|n| match n {
        Node::Object(raw) => parse_number(raw),
        _ => None,
    });
    let json = |result: Result<Value, GraphError>| result.map(Answer::Json);
    let get = call.method == Method::GET;
    let delete = call.method == Method::DELETE;
    match (&call.route, audience) {
        (Route::Dialog, _) if get => oauth::dialog(shared, world, &call.params).map(Answer::Redirect),
        (Route::AccessToken, _) if get || call.method == Method::POST => {
            json(oauth::access_token(shared, world, &call.params))
        }
        (Route::DebugToken, _) if get => json(oauth::debug_token(world, &call.params, call.token.as_deref())),
        (Route::Node(Node::Me), _) if get => json(accounts::me(&caller, &call.params)),
        (Route::Edge(Node::Me, edge), _) if get && edge == "adaccounts" => {
            json(accounts::list(config, world, &caller, &links))
        }
        (Route::Node(Node::Account(n)), _) if get => json(accounts::read(world, &caller, *n, &call.params)),
        (Route::Edge(Node::Account(n), edge), _) if edge == "customaudiences" && get => {
            json(audiences::list(config, world, *n, &links, call.version))
        }
        (Route::Edge(Node::Account(n), edge), _) if edge == "customaudiences" && !delete => {
            json(audiences::create(config, world, *n, &call.params))
        }
        (Route::Node(Node::Object(_)), Some(id)) if get => json(audiences::read(world, id, &call.params, call.version)),
        (Route::Node(Node::Object(_)), Some(id)) if delete => json(audiences::delete(world, id)),
        (Route::Node(Node::Object(_)), Some(id)) => json(audiences::update(world, id, &call.params)),
        (Route::Edge(Node::Object(_), edge), Some(id)) if edge == "users" && !get => {
            let operation = if delete { SessionOperation::Remove } else { SessionOperation::Add };
            json(users::edit(config, world, id, &call.params, operation, &mut call.rows))
        }
        (Route::Edge(Node::Object(_), edge), Some(id)) if edge == "usersreplace" && !get && !delete => {
            json(users::edit(config, world, id, &call.params, SessionOperation::Replace, &mut call.rows))
        }
        (Route::Edge(node, edge), _) if get => Err(GraphError::nonexisting_field(edge, node.type_name())),
        (route, _) => match route.node() {
            Some(node) => Err(GraphError::unknown_object(&node.id(), call.method.as_str())),
            None => Err(GraphError::unknown_path(&call.url)),
        },
    }
}

fn effective_method(method: &Method, params: &Params) -> Method {
    if *method != Method::POST {
        return method.clone();
    }
    match params.text("method").map(|m| m.to_ascii_uppercase()).as_deref() {
        Some("DELETE") => Method::DELETE,
        Some("GET") => Method::GET,
        _ => Method::POST,
    }
}

/// The handler of every Graph route.
pub(crate) async fn entry(
    State(shared): State<Arc<MetaShared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let trace = fbtrace_id();
    let path = uri.path().to_owned();
    let config = &shared.config;
    let (version_raw, segments) = split_path(&path);
    let route = Route::parse(&segments);
    let version = parse_version(version_raw, config);
    let parsed = Params::parse(uri.query(), &headers, &body);
    let params = parsed.as_ref().ok();
    let token = params.and_then(|p| p.text("access_token")).or_else(|| header_token(&headers));
    let method = params.map_or_else(|| method.clone(), |p| effective_method(&method, p));
    let body_format = params.and_then(|p| p.body_format);
    let api_version = version.as_ref().ok().copied().flatten();

    let (at, account, decision, latency) = {
        let mut world = shared.settled();
        let at = world.clock.since_start();
        if let Some(v) = api_version {
            world.versions.insert(v);
        }
        let account = target_account(&world, &route);
        let latency = if route == Route::Dialog { Duration::ZERO } else { world.faults.latency };
        let decision = match (&version, &parsed) {
            (Err(error), _) | (_, Err(error)) => Decision::Refuse(error.clone(), None),
            _ if route == Route::Dialog => Decision::Proceed(Admitted { caller: None }),
            _ => decide(&mut world, &path, &route, &method, token.as_deref(), account),
        };
        (at, account, decision, latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let mut rows = None;
    let (outcome, fault) = match decision {
        Decision::Drop => (None, Some(MetaFaultKind::Dropped)),
        Decision::Refuse(error, fault) => (Some(Err(error)), fault),
        Decision::Proceed(admitted) => {
            let mut call = Call {
                route: route.clone(),
                method: method.clone(),
                params: parsed.unwrap_or_default(),
                token: token.clone(),
                version: api_version.unwrap_or(config.default_version),
                url: format!("{}{path}", shared.base_url()),
                caller: admitted.caller,
                rows: None,
                shared: &shared,
            };
            let result = run(&mut shared.settled(), &mut call);
            rows = call.rows;
            (Some(result), None)
        }
    };

    let (error_code, error_subcode) = match &outcome {
        Some(Err(error)) => (Some(error.code), error.subcode),
        _ => (None, None),
    };
    let forced_throttle = matches!(&outcome, Some(Err(e)) if e.is_throttle()) && fault.is_some();
    let mut response = match outcome {
        None => dropped_response(),
        Some(Ok(Answer::Json(value))) => axum::Json(value).into_response(),
        Some(Ok(Answer::Redirect(location))) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Some(Err(error)) => error.into_response_traced(&trace),
    };
    let dropped = fault == Some(MetaFaultKind::Dropped);
    let mut world = shared.lock();
    let mut call_count = None;
    if !dropped {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&trace) {
            headers.insert(TRACE_ID, value);
        }
        let shown = api_version.unwrap_or(config.default_version);
        if let Ok(value) = HeaderValue::from_str(&format!("v{shown}.0")) {
            headers.insert(API_VERSION, value);
        }
        if let Some(account) = account {
            let audiences = world.audience_count(account);
            let now = world.clock.now();
            call_count = Some(world.usage.add_headers(headers, account, audiences, now, forced_throttle));
        }
    }
    world.log.push(MetaRequestRecord {
        at,
        access_token: token,
        method: method.to_string(),
        path,
        api_version,
        ad_account_id: account.map(account_node),
        status: if dropped { 0 } else { response.status().as_u16() },
        error_code,
        error_subcode,
        rows,
        body_format,
        call_count,
        fault,
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_version_node_and_edge() {
        assert_eq!(split_path("/v25.0/act_1/customaudiences"), (Some("v25.0"), vec!["act_1", "customaudiences"]));
        assert_eq!(split_path("/debug_token"), (None, vec!["debug_token"]));
        assert_eq!(split_path("/videos/"), (None, vec!["videos"]));
        assert_eq!(
            Route::parse(&["act_1", "customaudiences"]),
            Route::Edge(Node::Account(1), "customaudiences".into())
        );
        assert_eq!(Route::parse(&["act_x"]), Route::Node(Node::Object("act_x".into())));
        assert_eq!(Route::parse(&["a", "b", "c"]), Route::Unknown);
    }

    #[test]
    fn versions_outside_the_served_range_are_refused() {
        let config = MetaConfig::default();
        assert_eq!(parse_version(Some("v25.0"), &config).ok(), Some(Some(25)));
        assert_eq!(parse_version(None, &config).ok(), Some(None));
        assert_eq!(parse_version(Some("v19.0"), &config).err().map(|e| e.code), Some(2635));
        assert_eq!(parse_version(Some("v31.0"), &config).err().map(|e| e.code), Some(100));
        assert_eq!(parse_version(Some("v25.1"), &config).err().map(|e| e.code), Some(100));
    }

    #[test]
    fn post_with_method_parameter_becomes_that_method() {
        let params = Params::parse(Some("method=delete"), &HeaderMap::new(), b"").unwrap_or_default();
        assert_eq!(effective_method(&Method::POST, &params), Method::DELETE);
        assert_eq!(effective_method(&Method::GET, &params), Method::GET);
    }
}
