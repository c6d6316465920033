//! `search-audiences`, `read-audience` and `upsert-audience`.
//!
//! Only customer-file audiences (`subtype` CUSTOM) take users, so only they are searched and
//! looked up by name; an audience listed without a subtype is taken as one. The host's audience
//! id is Meta's audience id (digits).
//!
//! **Search.** Meta's `filtering` parameter exists but which fields it takes is undocumented,
//! so names are matched here (case-insensitive "contains", the SDK's `matches_query`). One call
//! fetches at most [`SEARCH_FETCHES`] pages of 100 from the cursor, stopping early once it has
//! [`SEARCH_MIN_ITEMS`] matches, and returns Meta's `after` cursor to continue from: an account
//! with thousands of audiences is searched a short page at a time, well within the call
//! budget.
//!
//! **Size.** `approximate_count_lower_bound` / `_upper_bound`; a negative or absent bound is
//! "not reported". **State** from the two status objects: see [`crate::state`].
//!
//! **Upsert.** With `spec.id`, that audience (read, must be CUSTOM; gone is `not-found`, never
//! replaced by a new one). Without, the CUSTOM audiences named exactly `spec.name` (names are
//! not unique on Meta): the one with the lowest id, the oldest, so every lookup picks the same.
//! None found: created when allowed (`POST /act_<n>/customaudiences` with `subtype=CUSTOM`,
//! `customer_file_source=USER_PROVIDED_ONLY` and the description; Meta creates an empty
//! audience, so nothing waits for a first batch), else `not-found`.

use std::cmp::Ordering;
use std::ops::ControlFlow;

use audience_plugin_sdk::Host;
use audience_plugin_sdk::build;
use audience_plugin_sdk::paging::matches_query;
use audience_plugin_sdk::types::{
    Audience, AudiencePage, AudienceSize, AudienceSpec, AudienceState, Credentials, DestinationError, PluginConfig,
    UpsertOutcome,
};

use crate::client::{Failure, Graph};
use crate::config::{account_number, audience_id};
use crate::paging::{search, walk};
use crate::state;
use crate::wire::CustomAudience;

/// The most pages one `search-audiences` call fetches.
pub const SEARCH_FETCHES: usize = 5;

/// A search call stops fetching once it has this many matches.
pub const SEARCH_MIN_ITEMS: usize = 25;

/// The subtype of customer-file audiences.
pub const CUSTOM: &str = "CUSTOM";

/// The most customer-file audiences one ad account may hold.
pub const MAX_CUSTOMER_FILE_AUDIENCES: usize = 500;

/// Whether `audience` is a customer-file audience (or does not say).
pub fn is_custom(audience: &CustomAudience) -> bool {
    audience.subtype.as_deref().is_none_or(|s| s.eq_ignore_ascii_case(CUSTOM))
}

fn bound(n: Option<i64>) -> Option<u64> {
    n.and_then(|n| u64::try_from(n).ok())
}

/// The host's view of a Meta audience.
pub fn to_audience(a: &CustomAudience, created: bool) -> Audience {
    let id = a.id.clone().unwrap_or_default();
    let mut audience = build::audience(id.clone(), a.name.clone().unwrap_or_default());
    audience.created = created;
    audience.size =
        AudienceSize { lower: bound(a.approximate_count_lower_bound), upper: bound(a.approximate_count_upper_bound) };
    audience.state = state::state(a.delivery_status.as_ref(), a.operation_status.as_ref());
    audience.status_detail = state::detail(
        a.delivery_status.as_ref(),
        a.operation_status.as_ref(),
        a.fields_violating_integrity_policy.as_ref(),
    );
    let mut details = vec![("audience id".to_string(), id)];
    let mut add = |label: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            details.push((label.to_string(), value));
        }
    };
    add("ad account", a.account_id.clone());
    add("subtype", a.subtype.clone());
    add("customer file source", a.customer_file_source.clone());
    add("description", a.description.clone());
    add(
        "retention",
        a.retention_days.map(|d| if d > 0 { format!("{d} days") } else { "kept until removed".to_string() }),
    );
    add("delivery status", a.delivery_status.as_ref().and_then(|s| s.code).map(|c| c.to_string()));
    add("operation status", a.operation_status.as_ref().and_then(|s| s.code).map(|c| c.to_string()));
    add("updated (unix time)", a.time_updated.map(|t| t.to_string()));
    add("members updated (unix time)", a.time_content_updated.map(|t| t.to_string()));
    audience.details = details;
    audience
}

/// One page of the account's CUSTOM audiences whose name contains `query`.
pub fn search_audiences(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    query: &str,
    cursor: Option<&str>,
) -> Result<AudiencePage, DestinationError> {
    let account = account_number(account_id)?;
    let graph = Graph::new(host, config, creds)?;
    let page = search(
        cursor,
        SEARCH_MIN_ITEMS,
        SEARCH_FETCHES,
        |after| Ok(graph.audiences(account, after)?),
        |a: &CustomAudience| {
            a.id.as_deref().is_some_and(|i| !i.trim().is_empty())
                && is_custom(a)
                && matches_query(a.name.as_deref().unwrap_or_default(), query)
        },
    )?;
    Ok(AudiencePage { audiences: page.items.iter().map(|a| to_audience(a, false)).collect(), next_cursor: page.after })
}

/// Read audience `id` of `account` (bare number); an audience of another account is
/// `not-found`.
pub fn read(graph: &Graph<'_>, account: &str, id: &str) -> Result<CustomAudience, Failure> {
    let mut audience = graph.audience(id, Some(account))?;
    // `GET /<audience_id>` answers the object at that id; an answer that leaves the id out
    // (Graph omits what it was not asked for, or a stand-in answers `{}`) is still that one.
    if audience.id.as_deref().is_none_or(|i| i.trim().is_empty()) {
        audience.id = Some(id.to_string());
    }
    if let Some(owner) = audience.account_id.as_deref().filter(|o| !o.is_empty() && *o != account) {
        return Err(Failure::from(DestinationError::NotFound(format!(
            "custom audience {id} belongs to ad account {owner}, not {account}"
        ))));
    }
    Ok(audience)
}

/// `read-audience`.
pub fn read_audience(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    audience: &str,
) -> Result<Audience, DestinationError> {
    let account = account_number(account_id)?;
    let id = audience_id(audience)?;
    let graph = Graph::new(host, config, creds)?;
    Ok(to_audience(&read(&graph, account, id)?, false))
}

/// Order of audience ids: numerically (they are digit strings of any length).
fn id_order(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// What a walk over an account's audiences found.
#[derive(Debug, Default)]
pub struct Scan {
    /// The CUSTOM audience named exactly so with the lowest id, if any.
    pub found: Option<CustomAudience>,
    /// How many CUSTOM audiences the account holds.
    pub customer_files: usize,
}

/// Walk every audience of `account`, counting the CUSTOM ones and picking the one named `name`
/// with the lowest id (a later page may hold a lower id, so the walk never stops early).
pub fn scan(graph: &Graph<'_>, account: &str, name: &str) -> Result<Scan, DestinationError> {
    let mut result = Scan::default();
    let wanted = name.trim();
    walk(
        |after| Ok(graph.audiences(account, after)?),
        |items| {
            for audience in items.into_iter().filter(is_custom) {
                result.customer_files += 1;
                let Some(id) = audience.id.as_deref().filter(|i| !i.trim().is_empty()) else { continue };
                if audience.name.as_deref().map(str::trim) != Some(wanted) {
                    continue;
                }
                let lower =
                    result.found.as_ref().and_then(|f| f.id.as_deref()).is_none_or(|best| id_order(id, best).is_lt());
                if lower {
                    result.found = Some(audience);
                }
            }
            ControlFlow::<()>::Continue(())
        },
    )?;
    Ok(result)
}

/// The audience `spec.id` names, checked to be a customer-file audience.
pub fn by_id(graph: &Graph<'_>, account: &str, id: &str) -> Result<CustomAudience, Failure> {
    let id = audience_id(id)?;
    let audience = read(graph, account, id)?;
    if !is_custom(&audience) {
        return Err(Failure::from(DestinationError::InvalidRequest(format!(
            "custom audience {id} is a {} audience: users can only be added to a customer-list (CUSTOM) audience",
            audience.subtype.as_deref().unwrap_or("different")
        ))));
    }
    Ok(audience)
}

/// Find the audience of `spec` in `account_id`, or create it when allowed.
pub fn upsert_audience(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    spec: &AudienceSpec,
) -> Result<UpsertOutcome, DestinationError> {
    let account = account_number(account_id)?;
    let graph = Graph::new(host, config, creds)?;
    find_or_create(&graph, account, spec).map(UpsertOutcome::Ready)
}

/// [`upsert_audience`]'s work, shared with `add-users` to a target still to be created.
pub fn find_or_create(graph: &Graph<'_>, account: &str, spec: &AudienceSpec) -> Result<Audience, DestinationError> {
    if let Some(id) = spec.id.as_deref().filter(|id| !id.trim().is_empty()) {
        return Ok(to_audience(&by_id(graph, account, id)?, false));
    }
    if spec.name.trim().is_empty() {
        return Err(DestinationError::InvalidRequest("the audience has no name and no id".into()));
    }
    if let Some(found) = scan(graph, account, &spec.name)?.found {
        return Ok(to_audience(&found, false));
    }
    if !spec.create_if_missing {
        return Err(DestinationError::NotFound(format!(
            "no customer-list custom audience named '{}' in ad account {account}",
            audience_plugin_sdk::text::excerpt(&spec.name, 80)
        )));
    }
    let created = graph.create_audience(account, spec.name.trim(), spec.description.as_deref())?;
    let Some(id) = created.id.filter(|id| !id.trim().is_empty()) else {
        return Err(DestinationError::Transient("Meta created the audience but answered no id".into()));
    };
    let mut audience = build::audience(id.clone(), spec.name.trim());
    audience.created = true;
    audience.state = AudienceState::TooSmall;
    audience.status_detail = Some("created just now, with no members yet".into());
    audience.details = vec![
        ("audience id".into(), id),
        ("ad account".into(), account.to_string()),
        ("subtype".into(), CUSTOM.into()),
        ("customer file source".into(), "USER_PROVIDED_ONLY".into()),
    ];
    Ok(audience)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, config, creds, fail, ok};

    fn audience(id: u64, name: &str, subtype: &str) -> serde_json::Value {
        json!({"id": id.to_string(), "account_id": "1", "name": name, "subtype": subtype,
               "approximate_count_lower_bound": 1000, "approximate_count_upper_bound": 1200,
               "delivery_status": {"code": 200, "description": "This audience is ready for use."},
               "operation_status": {"code": 200, "description": "Normal"},
               "customer_file_source": "USER_PROVIDED_ONLY", "retention_days": 0})
    }

    fn page(items: Vec<serde_json::Value>, after: &str, more: bool) -> serde_json::Value {
        let mut paging = json!({"cursors": {"before": "b", "after": after}});
        if more {
            paging["next"] = json!(format!("http://sandbox.test/next?after={after}"));
        }
        json!({"data": items, "paging": paging})
    }

    fn spec(id: Option<&str>, create: bool) -> AudienceSpec {
        AudienceSpec {
            id: id.map(str::to_string),
            name: "VIPs".into(),
            identifiers: vec!["email".into()],
            description: Some("from the CRM".into()),
            create_if_missing: create,
        }
    }

    #[test]
    fn audiences_as_the_host_sees_them() {
        let a: CustomAudience = serde_json::from_value(audience(6001, "VIPs", "CUSTOM")).unwrap();
        let view = to_audience(&a, false);
        assert_eq!((view.id.as_str(), view.name.as_str()), ("6001", "VIPs"));
        assert_eq!(view.size, AudienceSize { lower: Some(1000), upper: Some(1200) });
        assert_eq!(view.state, AudienceState::Ready);
        assert_eq!(
            view.status_detail.as_deref(),
            Some("delivery 200: This audience is ready for use.; operation 200: Normal")
        );
        assert!(view.identifiers.is_empty(), "a multi-key audience holds no one kind");
        assert!(view.details.contains(&("retention".into(), "kept until removed".into())));
        let unknown: CustomAudience =
            serde_json::from_value(json!({"id": "1", "approximate_count_lower_bound": -1})).unwrap();
        assert_eq!(to_audience(&unknown, false).size, AudienceSize { lower: None, upper: None });
    }

    #[test]
    fn search_matches_names_client_side_and_returns_a_cursor() {
        let host = FakeHost::new(vec![
            ok(page(
                vec![
                    audience(1, "VIP customers", "CUSTOM"),
                    audience(2, "vip lookalike", "LOOKALIKE"),
                    audience(3, "Churned", "CUSTOM"),
                ],
                "c1",
                true,
            )),
            ok(page(vec![], "c1", true)),
            ok(page(vec![audience(4, "Old VIPs", "CUSTOM")], "c2", true)),
            ok(page(vec![audience(5, "vip 5", "CUSTOM")], "c3", true)),
            ok(page(vec![audience(6, "vip 6", "CUSTOM")], "c4", true)),
        ]);
        let found = search_audiences(&host, &config(), &creds(), "act_1", "VIP", None).unwrap();
        let ids: Vec<&str> = found.audiences.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, vec!["1", "4", "5", "6"]);
        assert_eq!(found.next_cursor.as_deref(), Some("c4"), "capped at {SEARCH_FETCHES} fetches");
        assert_eq!(host.count(), SEARCH_FETCHES);
        assert!(
            host.url(0)
                .starts_with("http://sandbox.test/v25.0/act_1/customaudiences?fields=id%2Caccount_id%2Cname%2Csubtype")
        );
        assert!(host.url(0).ends_with("&limit=100"));
        assert!(host.url(1).ends_with("&limit=100&after=c1"));
    }

    #[test]
    fn search_ends_without_a_cursor() {
        let host = FakeHost::new(vec![ok(page(vec![audience(1, "A", "CUSTOM")], "c1", false))]);
        let found = search_audiences(&host, &config(), &creds(), "1", "", Some("c0")).unwrap();
        assert_eq!((found.audiences.len(), found.next_cursor), (1, None));
        assert!(host.url(0).ends_with("&after=c0"));
    }

    #[test]
    fn read_checks_the_owner() {
        let host =
            FakeHost::new(vec![ok(audience(6001, "VIPs", "CUSTOM")), ok(json!({"id": "6002", "account_id": "9"}))]);
        let a = read_audience(&host, &config(), &creds(), "1", "6001").unwrap();
        assert_eq!(a.state, AudienceState::Ready);
        assert_eq!(host.url(0).split('?').next(), Some("http://sandbox.test/v25.0/6001"));
        assert!(
            matches!(read_audience(&host, &config(), &creds(), "1", "6002"), Err(DestinationError::NotFound(m)) if m.contains("ad account 9"))
        );
        let host = FakeHost::new(vec![fail(400, 100, Some(33), "Unsupported get request")]);
        assert!(matches!(read_audience(&host, &config(), &creds(), "1", "6003"), Err(DestinationError::NotFound(_))));
        assert!(matches!(
            read_audience(&host, &config(), &creds(), "1", "../me"),
            Err(DestinationError::InvalidRequest(_))
        ));
    }

    #[test]
    fn an_answer_without_an_id_is_the_audience_asked_for() {
        let host = FakeHost::new(vec![ok(json!({})), ok(json!({"id": ""})), ok(json!({}))]);
        for _ in 0..2 {
            let a = read_audience(&host, &config(), &creds(), "1", "1000000001").unwrap();
            assert_eq!(a.id, "1000000001");
            assert!(a.details.contains(&("audience id".into(), "1000000001".into())));
        }
        let outcome = upsert_audience(&host, &config(), &creds(), "1", &spec(Some("6001"), false)).unwrap();
        let UpsertOutcome::Ready(found) = outcome else { panic!("{outcome:?}") };
        assert_eq!(found.id, "6001");
    }

    #[test]
    fn listed_audiences_without_an_id_are_skipped() {
        let nameless = json!({"name": "VIPs", "subtype": "CUSTOM"});
        let empty = json!({"id": "", "name": "VIPs", "subtype": "CUSTOM"});
        let host = FakeHost::new(vec![ok(page(vec![nameless.clone(), empty.clone()], "c1", false))]);
        let found = search_audiences(&host, &config(), &creds(), "1", "VIP", None).unwrap();
        assert!(found.audiences.is_empty(), "{found:?}");
        let host = FakeHost::new(vec![ok(page(vec![nameless, empty], "c1", false)), ok(json!({"id": ""}))]);
        let err = upsert_audience(&host, &config(), &creds(), "1", &spec(None, true)).unwrap_err();
        assert!(matches!(err, DestinationError::Transient(m) if m.contains("no id")));
    }

    #[test]
    fn upsert_by_name_picks_the_lowest_custom_id_across_pages() {
        let host = FakeHost::new(vec![
            ok(page(vec![audience(900, "VIPs", "CUSTOM"), audience(5, "VIPs", "LOOKALIKE")], "c1", true)),
            ok(page(vec![audience(77, "VIPs", "CUSTOM"), audience(1000, "VIPs", "CUSTOM")], "c2", false)),
        ]);
        let outcome = upsert_audience(&host, &config(), &creds(), "1", &spec(None, true)).unwrap();
        let UpsertOutcome::Ready(found) = outcome else { panic!("{outcome:?}") };
        assert_eq!((found.id.as_str(), found.created), ("77", false));
        assert_eq!(host.count(), 2);
    }

    #[test]
    fn upsert_creates_when_missing_and_allowed() {
        let host =
            FakeHost::new(vec![ok(page(vec![audience(3, "Other", "CUSTOM")], "c1", false)), ok(json!({"id": "6010"}))]);
        let UpsertOutcome::Ready(created) =
            upsert_audience(&host, &config(), &creds(), "1", &spec(None, true)).unwrap()
        else {
            panic!()
        };
        assert_eq!((created.id.as_str(), created.name.as_str(), created.created), ("6010", "VIPs", true));
        assert_eq!(created.state, AudienceState::TooSmall);
        assert_eq!(host.call(1).0, "POST");
        assert_eq!(host.param(1, "customer_file_source").as_deref(), Some("USER_PROVIDED_ONLY"));
        assert_eq!(host.param(1, "description").as_deref(), Some("from the CRM"));

        let host = FakeHost::new(vec![ok(page(vec![], "c1", false))]);
        assert!(matches!(
            upsert_audience(&host, &config(), &creds(), "1", &spec(None, false)),
            Err(DestinationError::NotFound(_))
        ));
        assert_eq!(host.count(), 1, "nothing created");
    }

    #[test]
    fn upsert_by_id_reads_that_audience_only() {
        let host = FakeHost::new(vec![ok(audience(6001, "Renamed", "CUSTOM"))]);
        let UpsertOutcome::Ready(found) =
            upsert_audience(&host, &config(), &creds(), "1", &spec(Some("6001"), true)).unwrap()
        else {
            panic!()
        };
        assert_eq!((found.id.as_str(), found.name.as_str()), ("6001", "Renamed"));
        assert_eq!(host.count(), 1);
        let host = FakeHost::new(vec![fail(400, 100, Some(33), "gone")]);
        assert!(matches!(
            upsert_audience(&host, &config(), &creds(), "1", &spec(Some("6001"), true)),
            Err(DestinationError::NotFound(_))
        ));
        assert_eq!(host.count(), 1, "a vanished audience is not replaced");
        let host = FakeHost::new(vec![ok(audience(6002, "LAL", "LOOKALIKE"))]);
        assert!(
            matches!(upsert_audience(&host, &config(), &creds(), "1", &spec(Some("6002"), true)), Err(DestinationError::InvalidRequest(m)) if m.contains("LOOKALIKE"))
        );
    }

    #[test]
    fn terms_not_accepted_on_create_is_action_required() {
        let host = FakeHost::new(vec![
            ok(page(vec![], "c", false)),
            fail(400, 200, Some(1_870_090), "Custom Audience Terms Not Accepted"),
        ]);
        let err = upsert_audience(&host, &config(), &creds(), "act_1", &spec(None, true)).unwrap_err();
        assert!(matches!(&err, DestinationError::ActionRequired(m) if m.contains("tos/?act=1")), "{err:?}");
    }
}
