//! `search-audiences`, `read-audience`, `check-target` and `upsert-audience` over HTTP.
//!
//! | export            | request                                                          |
//! |-------------------|------------------------------------------------------------------|
//! | `search-audiences`| `GET {base-url}/audiences?account=&query=[&cursor=]` → `{"audiences": [audience...], "next_cursor": "..."}` |
//! | `read-audience`   | `GET {base-url}/audience?account=&id=` → `audience`              |
//! | `upsert-audience` | `POST {base-url}/audiences` with `{"account","name","description","identifiers","create_if_missing"}` → `audience` |
//! | `check-target`    | local checks, then `read-audience` (with `spec.id`) or a search by name (when the audience may not be created) |
//!
//! An `audience` on the wire is `{"id", "name", "created", "identifiers", "size", "state",
//! "status"}`; only `id` is required (`name` defaults to the name asked for). `state` is one
//! of `ready`, `populating`, `too-small`, `unusable`; `size` is an exact count.

use audience_plugin_sdk::paging::{DEFAULT_MAX_PAGES, Page, find_first};
use audience_plugin_sdk::types::{
    Audience, AudiencePage, AudienceSpec, AudienceState, Credentials, DestinationError, PluginConfig, TargetPart,
    TargetProblem,
};
use audience_plugin_sdk::{Host, build};
use serde::Deserialize;

use crate::config::{audience_url, audiences_url};
use crate::delivery::{authorized, execute, is_blank};
use crate::manifest::{identifier_kinds, supports};
use audience_plugin_sdk::http::RequestBuilder;

/// An audience as the receiver describes it.
#[derive(Debug, Default, Deserialize)]
struct WireAudience {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    created: bool,
    #[serde(default)]
    identifiers: Vec<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

impl WireAudience {
    /// The contract's audience; `id` and `name` stand in for what the receiver left out.
    fn into_audience(self, id: &str, name: &str) -> Audience {
        let id = self.id.filter(|i| !i.is_empty()).unwrap_or_else(|| id.to_string());
        let mut audience = build::audience(id.clone(), self.name.unwrap_or_else(|| name.to_string()));
        audience.created = self.created;
        audience.identifiers = self.identifiers;
        audience.size = self.size.map_or_else(build::unknown_size, build::exact_size);
        audience.state = match self.state.as_deref() {
            Some("ready") => AudienceState::Ready,
            Some("populating") => AudienceState::Populating,
            Some("too-small") => AudienceState::TooSmall,
            Some("unusable") => AudienceState::Unusable,
            _ => AudienceState::Unknown,
        };
        audience.status_detail = self.status;
        audience.details = vec![("receiver id".into(), id)];
        audience
    }
}

/// What a receiver answers to a search.
#[derive(Debug, Default, Deserialize)]
struct WirePage {
    #[serde(default)]
    audiences: Vec<WireAudience>,
    #[serde(default)]
    next_cursor: Option<String>,
}

fn not_json(what: &str, e: &serde_json::Error) -> DestinationError {
    DestinationError::Transient(format!("the receiver's answer {what} is not the expected JSON: {e}"))
}

/// One page of the account's audiences whose name contains `query`.
pub fn search_audiences(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account: &str,
    query: &str,
    cursor: Option<&str>,
) -> Result<AudiencePage, DestinationError> {
    let request = RequestBuilder::get(audiences_url(config)?)
        .query("account", account)
        .query("query", query)
        .query_opt("cursor", cursor.filter(|c| !c.is_empty()));
    let response = execute(host, "search audiences", authorized(request, creds))?;
    let page: WirePage = if is_blank(&response) {
        WirePage::default()
    } else {
        response.json().map_err(|e| not_json("to a search", &e))?
    };
    let audiences = page
        .audiences
        .into_iter()
        .filter(|a| a.id.as_deref().is_some_and(|id| !id.is_empty()))
        .map(|a| {
            let id = a.id.clone().unwrap_or_default();
            a.into_audience(&id, &id)
        })
        .collect();
    Ok(Page { items: audiences, next_cursor: page.next_cursor }.into())
}

/// The audience `id` with the receiver's current size and state.
pub fn read_audience(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account: &str,
    id: &str,
) -> Result<Audience, DestinationError> {
    let request = RequestBuilder::get(audience_url(config)?).query("account", account).query("id", id);
    let response = execute(host, &format!("read audience '{id}'"), authorized(request, creds))?;
    let wire: WireAudience = if is_blank(&response) {
        WireAudience::default()
    } else {
        response.json().map_err(|e| not_json(&format!("about audience '{id}'"), &e))?
    };
    Ok(wire.into_audience(id, id))
}

/// Find the audience of `spec` (by `spec.id`, else by name), or create it when allowed.
pub fn upsert_audience(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account: &str,
    spec: &AudienceSpec,
) -> Result<Audience, DestinationError> {
    if let Some(id) = spec.id.as_deref().filter(|id| !id.is_empty()) {
        return read_audience(host, config, creds, account, id);
    }
    let body = serde_json::json!({
        "account": account,
        "name": spec.name,
        "description": spec.description,
        "identifiers": spec.identifiers,
        "create_if_missing": spec.create_if_missing,
    });
    let request = RequestBuilder::post(audiences_url(config)?).json(&body)?;
    let response = execute(host, "find or create the audience", authorized(request, creds))?;
    let answer: WireAudience = response.json().map_err(|e| not_json(&format!("about audience '{}'", spec.name), &e))?;
    if answer.id.as_deref().is_none_or(str::is_empty) {
        return Err(DestinationError::Transient(format!(
            "the receiver's answer about audience '{}' has no id",
            spec.name
        )));
    }
    Ok(answer.into_audience("", &spec.name))
}

/// Every reason the sync described by `spec` cannot run. Creates nothing.
pub fn check_target(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account: &str,
    spec: &AudienceSpec,
) -> Result<Vec<TargetProblem>, DestinationError> {
    let mut problems = Vec::new();
    if !spec.identifiers.iter().any(|kind| supports(kind)) {
        problems.push(TargetProblem {
            part: TargetPart::Identifiers,
            message: format!(
                "the receiver matches on {}; the sync sends only {}",
                identifier_kinds().join(", "),
                if spec.identifiers.is_empty() { "nothing".to_string() } else { spec.identifiers.join(", ") }
            ),
        });
    }
    let audience = match spec.id.as_deref().filter(|id| !id.is_empty()) {
        Some(id) => match read_audience(host, config, creds, account, id) {
            Ok(audience) => Some(audience),
            Err(DestinationError::NotFound(_)) => {
                problems.push(TargetProblem {
                    part: TargetPart::Audience,
                    message: format!("the receiver has no audience '{id}'; pick another one"),
                });
                None
            }
            Err(other) => return Err(other),
        },
        None if !spec.create_if_missing => {
            let found = find_first(
                DEFAULT_MAX_PAGES,
                |cursor| {
                    let page = search_audiences(host, config, creds, account, &spec.name, cursor)?;
                    Ok::<_, DestinationError>(Page { items: page.audiences, next_cursor: page.next_cursor })
                },
                |a| a.name == spec.name,
            )?;
            if found.is_none() {
                problems.push(TargetProblem {
                    part: TargetPart::Audience,
                    message: format!(
                        "the receiver has no audience named '{}' and the sync may not create one",
                        spec.name
                    ),
                });
            }
            found
        }
        None => None,
    };
    if let Some(audience) = audience.filter(|a| a.state == AudienceState::Unusable) {
        problems.push(TargetProblem {
            part: TargetPart::Audience,
            message: format!(
                "the receiver says audience '{}' is unusable: {}",
                audience.name,
                audience.status_detail.as_deref().unwrap_or("no reason given")
            ),
        });
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::http::Response;
    use audience_plugin_sdk::kinds;

    use super::*;
    use crate::testing::{FakeHost, config, creds};

    fn spec(id: Option<&str>, identifiers: &[&str], create: bool) -> AudienceSpec {
        AudienceSpec {
            id: id.map(String::from),
            name: "VIPs".into(),
            identifiers: kinds::list(identifiers),
            description: None,
            create_if_missing: create,
        }
    }

    #[test]
    fn search_pages_and_reads() {
        let page = r#"{"audiences":[{"id":"a1","name":"VIPs","size":1200,"state":"ready"},{"name":"no id"}],"next_cursor":"c2"}"#;
        let host = FakeHost::new(vec![Ok(Response::new(200).with_body(page)), Ok(Response::new(200).with_body("{}"))]);
        let got = search_audiences(&host, &config(), &creds(), "default", "vip", None).unwrap();
        assert_eq!(got.audiences.len(), 1);
        let a = &got.audiences[0];
        assert_eq!(
            (a.id.as_str(), a.name.as_str(), a.state, a.size.upper),
            ("a1", "VIPs", AudienceState::Ready, Some(1200))
        );
        assert_eq!(got.next_cursor.as_deref(), Some("c2"));
        assert_eq!(host.requests.borrow()[0].url, "http://receiver.test/audiences?account=default&query=vip");
        let last = search_audiences(&host, &config(), &creds(), "default", "", Some("c2")).unwrap();
        assert_eq!((last.audiences.len(), last.next_cursor), (0, None));
        assert!(host.requests.borrow()[1].url.ends_with("&cursor=c2"));

        let host = FakeHost::new(vec![Ok(Response::new(200).with_body(r#"{"state":"too-small"}"#))]);
        let a = read_audience(&host, &config(), &creds(), "default", "a 1").unwrap();
        assert_eq!((a.id.as_str(), a.state), ("a 1", AudienceState::TooSmall));
        assert_eq!(host.requests.borrow()[0].url, "http://receiver.test/audience?account=default&id=a%201");
    }

    #[test]
    fn upsert_uses_the_picked_id() {
        let host = FakeHost::new(vec![Ok(Response::new(200).with_body(r#"{"id":"a1","name":"Old name"}"#))]);
        let a =
            upsert_audience(&host, &config(), &creds(), "default", &spec(Some("a1"), &[kinds::EMAIL], true)).unwrap();
        assert_eq!((a.id.as_str(), a.name.as_str(), a.created), ("a1", "Old name", false));
        assert_eq!(host.requests.borrow()[0].method, "GET");
        let host = FakeHost::new(vec![Ok(Response::new(200).with_body("{}"))]);
        assert!(upsert_audience(&host, &config(), &creds(), "default", &spec(None, &[], true)).is_err());
    }

    #[test]
    fn check_target_lists_every_problem_and_creates_nothing() {
        let host = FakeHost::new(vec![Ok(Response::new(404))]);
        let problems = check_target(&host, &config(), &creds(), "default", &spec(Some("gone"), &[kinds::PHONE], true));
        let parts: Vec<TargetPart> = problems.unwrap().into_iter().map(|p| p.part).collect();
        assert_eq!(parts, vec![TargetPart::Identifiers, TargetPart::Audience]);

        let unusable = r#"{"id":"a1","name":"VIPs","state":"unusable","status":"flagged"}"#;
        let host = FakeHost::new(vec![Ok(Response::new(200).with_body(unusable))]);
        let problems = check_target(&host, &config(), &creds(), "default", &spec(Some("a1"), &[kinds::EMAIL], true));
        assert!(matches!(&problems.unwrap()[..], [p] if p.message.contains("flagged")));

        let host =
            FakeHost::new(vec![Ok(Response::new(200).with_body(r#"{"audiences":[{"id":"x","name":"VIPs 2"}]}"#))]);
        let problems =
            check_target(&host, &config(), &creds(), "default", &spec(None, &[kinds::EMAIL], false)).unwrap();
        assert_eq!(problems.len(), 1);
        let host = FakeHost::new(vec![]);
        assert_eq!(check_target(&host, &config(), &creds(), "default", &spec(None, &[kinds::EMAIL], true)), Ok(vec![]));
        assert!(host.requests.borrow().iter().all(|r| r.method == "GET"));

        let host = FakeHost::new(vec![Ok(Response::new(503))]);
        let err = check_target(&host, &config(), &creds(), "default", &spec(Some("a1"), &[kinds::EMAIL], true));
        assert!(matches!(err, Err(DestinationError::Transient(_))));
    }
}
