//! `upsert-audience`, `search-audiences` and `read-audience`: the customer list + CUSTOMER_LIST
//! audience pair a sync delivers into.
//!
//! The audience a sync delivers into is a customer list named after the spec, paired with a
//! CUSTOMER_LIST audience of the same name whose rule points at that list. Lookups by name page
//! through every page (250 a page, the spec's maximum for both listings) and stop at the first
//! match, so accounts with thousands of audiences work without fetching more than needed.
//!
//! `upsert-audience` without `spec.id`:
//!
//! | customer list | audience | result                                                     |
//! |---------------|----------|------------------------------------------------------------|
//! | found         | found    | `ready`                                                    |
//! | found         | missing  | create the audience → `ready(created)`; `not-found` if `create-if-missing` is false |
//! | missing       | —        | `create-with-first-batch` if `create-if-missing`, else `not-found` |
//!
//! With `spec.id` (an audience picked from `search-audiences`) it reads that audience and its
//! list (`not-found` when either is gone) and answers `ready` with the id typed for the sync's
//! kind; an id whose type is another kind is `invalid-request`. Either way the list type is the
//! first of `spec.identifiers` Pinterest supports (see [`crate::list_type`]).
//!
//! Pinterest creates a customer list only together with real records, so a list is never
//! created here (and never with placeholder records): the host's first `add-users` does it.
//!
//! `search-audiences` walks the account's audiences (what advertisers target, and what carries
//! Pinterest's size and status), keeping the CUSTOMER_LIST ones whose name contains the query,
//! ignoring case. Pinterest cannot filter by name, so each call fetches at most
//! [`SEARCH_MAX_PAGES`] pages of 250 from the caller's cursor (stopping early once it has
//! [`SEARCH_MIN_RESULTS`] matches) and hands back Pinterest's bookmark as the cursor: an account
//! with thousands of audiences is searched a few pages per call, never all at once.
//!
//! # Size and state
//!
//! Pinterest reports an audience's `size` (an integer, null until known) and `status` (READY,
//! INITIALIZING, TOO_SMALL: an audience needs at least 100 people with Pinterest accounts before
//! it can be used; sizes update within 24-48 hours). They map as follows ([`audience_size`],
//! [`audience_state`]):
//!
//! | Pinterest                         | `audience-size`                          |
//! |-----------------------------------|------------------------------------------|
//! | `size: n`                         | lower = upper = n (Pinterest's count, as reported) |
//! | `size: null`, `status: TOO_SMALL` | lower none, upper 99 (fewer than 100)    |
//! | `size: null` otherwise            | both none: not reported yet              |
//!
//! | Pinterest `status`                | `audience-state`                         |
//! |-----------------------------------|------------------------------------------|
//! | READY                             | `ready`                                  |
//! | INITIALIZING                      | `populating`                             |
//! | TOO_SMALL                         | `too-small`                              |
//! | absent, with the customer list's status known (read-audience) | list READY → `ready`, PROCESSING / UPLOADING → `populating`, TOO_SMALL → `too-small` |
//! | anything else                     | `unknown`, the raw status in `status-detail` |
//!
//! Pinterest has no "unusable" status for audiences, so `unusable` is never reported.
//! `status-detail` gives Pinterest's status in its words; `details` the ids, the list type when
//! known, both statuses and the list's upload counters.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::paging::{DEFAULT_MAX_PAGES, find_first, matches_query, search_page};
use audience_plugin_sdk::types::{
    Audience, AudiencePage, AudienceSize, AudienceSpec, AudienceState, Credentials, DestinationError, PluginConfig,
    UpsertOutcome,
};

use crate::audience_ref::{AudienceRef, is_pinterest_id};
use crate::client::{Client, Pinterest};
use crate::config::path_id;
use crate::list_type::ListType;
use crate::wire::{self, AudienceCreate, CustomerList};

/// Why `upsert-audience` defers creation to the first batch (shown to people).
pub const CREATE_WITH_FIRST_BATCH: &str = "Pinterest creates a customer list only with its first records; \
     the list and its audience will be created with the first batch of users";

/// `search-audiences` stops fetching once it has this many matches...
pub const SEARCH_MIN_RESULTS: usize = 25;

/// ...or after this many Pinterest pages (of 250) in one call.
pub const SEARCH_MAX_PAGES: usize = 4;

/// Pinterest's audience type for audiences built on a customer list.
pub const CUSTOMER_LIST_AUDIENCE: &str = "CUSTOMER_LIST";

/// Pinterest's minimum for a usable audience: at least this many people with Pinterest accounts.
pub const MIN_USABLE_SIZE: u64 = 100;

/// The customer list named `name` in `account`, if any.
pub fn find_customer_list(
    api: &Pinterest<'_>,
    account: &str,
    name: &str,
) -> Result<Option<CustomerList>, DestinationError> {
    find_first(DEFAULT_MAX_PAGES, |bookmark| api.customer_lists(account, bookmark), |list| list.name == name)
        .map_err(DestinationError::from)
}

/// The customer list a CUSTOMER_LIST audience's rule names, if it names one.
pub fn rule_list(audience: &wire::Audience) -> Option<&str> {
    audience.rule.as_ref().and_then(|r| r.customer_list_id.as_deref())
}

/// Whether `audience` is a CUSTOMER_LIST audience.
pub fn is_customer_list_audience(audience: &wire::Audience) -> bool {
    audience.audience_type.as_deref() == Some(CUSTOMER_LIST_AUDIENCE)
}

/// Whether `audience` is the CUSTOMER_LIST audience named `name` on list `list_id`. An audience
/// listed without its rule is accepted on name and type alone.
pub fn is_list_audience(audience: &wire::Audience, name: &str, list_id: &str) -> bool {
    audience.name == name && is_customer_list_audience(audience) && rule_list(audience).is_none_or(|id| id == list_id)
}

/// The CUSTOMER_LIST audience named `name` on list `list_id` in `account`, if any.
pub fn find_list_audience(
    api: &Pinterest<'_>,
    account: &str,
    name: &str,
    list_id: &str,
) -> Result<Option<wire::Audience>, DestinationError> {
    find_first(
        DEFAULT_MAX_PAGES,
        |bookmark| api.audiences(account, bookmark),
        |audience| is_list_audience(audience, name, list_id),
    )
    .map_err(DestinationError::from)
}

/// Create the CUSTOMER_LIST audience for `spec` on `list`.
pub fn create_list_audience(
    api: &Pinterest<'_>,
    account: &str,
    spec: &AudienceSpec,
    list: &CustomerList,
) -> Result<wire::Audience, DestinationError> {
    let body = AudienceCreate::customer_list(&spec.name, &list.id, spec.description.as_deref());
    api.create_audience(account, &body)
}

/// Pinterest's size for `audience` (see the module's table).
pub fn audience_size(audience: &wire::Audience) -> AudienceSize {
    match (audience.size, audience.status.as_deref()) {
        (Some(n), _) => AudienceSize { lower: Some(n), upper: Some(n) },
        (None, Some("TOO_SMALL")) => AudienceSize { lower: None, upper: Some(MIN_USABLE_SIZE - 1) },
        (None, _) => AudienceSize { lower: None, upper: None },
    }
}

/// Pinterest's state for `audience`, falling back on its customer list's status when the
/// audience has none (see the module's table).
pub fn audience_state(audience: &wire::Audience, list: Option<&CustomerList>) -> AudienceState {
    match audience.status.as_deref() {
        Some("READY") => AudienceState::Ready,
        Some("INITIALIZING") => AudienceState::Populating,
        Some("TOO_SMALL") => AudienceState::TooSmall,
        Some(_) => AudienceState::Unknown,
        None => match list.and_then(|l| l.status.as_deref()) {
            Some("READY") => AudienceState::Ready,
            Some("PROCESSING" | "UPLOADING") => AudienceState::Populating,
            Some("TOO_SMALL") => AudienceState::TooSmall,
            _ => AudienceState::Unknown,
        },
    }
}

/// Pinterest's words for the state, when it gave a status.
pub fn status_detail(audience: &wire::Audience, list: Option<&CustomerList>) -> Option<String> {
    let (what, status) = match (audience.status.as_deref(), list.and_then(|l| l.status.as_deref())) {
        (Some(status), _) => ("audience", status),
        (None, Some(status)) => ("customer list", status),
        (None, None) => return None,
    };
    let meaning = match status {
        "READY" => "usable for targeting",
        "INITIALIZING" | "PROCESSING" | "UPLOADING" => {
            "Pinterest is still matching its members; sizes update within 24-48 hours"
        }
        "TOO_SMALL" => "fewer than 100 people with Pinterest accounts matched; it cannot be used until at least 100 do",
        _ => "a status this plugin does not know",
    };
    Some(format!("Pinterest {what} status {status}: {meaning}"))
}

/// The host's view of the pair: opaque id, name, Pinterest's size and state, details worth
/// showing. `list` is the customer list when it was read.
pub fn to_audience(
    reference: &AudienceRef,
    audience: &wire::Audience,
    list: Option<&CustomerList>,
    created: bool,
) -> Audience {
    let mut details = vec![
        ("customer list id".to_string(), reference.customer_list_id.clone()),
        ("audience id".to_string(), reference.audience_id.clone()),
    ];
    if let Some(list_type) = reference.list_type {
        details.push(("list type".into(), list_type.to_string()));
    }
    if let Some(status) = &audience.status {
        details.push(("audience status".into(), status.clone()));
    }
    if let Some(list) = list {
        if let Some(status) = &list.status {
            details.push(("customer list status".into(), status.clone()));
        }
        if let Some(n) = list.num_uploaded_user_records {
            details.push(("records uploaded".into(), n.to_string()));
        }
        if let Some(n) = list.num_removed_user_records {
            details.push(("records removed".into(), n.to_string()));
        }
    }
    Audience {
        id: reference.encode(),
        name: audience.name.clone(),
        created,
        identifiers: reference.list_type.map(|t| vec![t.kind().to_string()]).unwrap_or_default(),
        size: audience_size(audience),
        state: audience_state(audience, list),
        status_detail: status_detail(audience, list),
        details,
    }
}

/// [`to_audience`] for a list and audience found or made as a pair.
pub fn pair_audience(list: &CustomerList, audience: &wire::Audience, list_type: ListType, created: bool) -> Audience {
    let reference =
        AudienceRef { customer_list_id: list.id.clone(), audience_id: audience.id.clone(), list_type: Some(list_type) };
    to_audience(&reference, audience, Some(list), created)
}

/// Why the audience read for `reference` is not the pair the id names, if it is not: another
/// audience type, or a rule that now names another customer list.
pub fn pair_problem(reference: &AudienceRef, audience: &wire::Audience) -> Option<String> {
    if !is_customer_list_audience(audience) {
        return Some(format!(
            "Pinterest audience {} ('{}') is a {} audience, not one built on a customer list",
            audience.id,
            audience.name,
            audience.audience_type.as_deref().unwrap_or("untyped")
        ));
    }
    match rule_list(audience) {
        Some(list) if list != reference.customer_list_id => Some(format!(
            "Pinterest audience {} ('{}') now targets customer list {list}, not {}: pick the audience again",
            audience.id, audience.name, reference.customer_list_id
        )),
        _ => None,
    }
}

/// Why a list known to hold `held` cannot take a sync that sends `wanted`, for people.
pub fn type_mismatch(name: &str, held: ListType, wanted: ListType) -> String {
    format!(
        "the Pinterest customer list '{name}' holds {} ({held}), but this sync would send {} (its first match \
         field Pinterest supports is {}): pick another list, or put {} first in the match fields",
        held.holds(),
        wanted.holds(),
        wanted.kind(),
        held.kind()
    )
}

/// The audience and customer list an id names, read from Pinterest (`not-found` when either is
/// gone).
pub fn read_pair(
    api: &Pinterest<'_>,
    account: &str,
    reference: &AudienceRef,
) -> Result<(wire::Audience, CustomerList), DestinationError> {
    let audience = api.audience(account, &reference.audience_id)?;
    let list = api.customer_list(account, &reference.customer_list_id)?;
    Ok((audience, list))
}

fn upsert_by_id(
    api: &Pinterest<'_>,
    account: &str,
    id: &str,
    list_type: ListType,
) -> Result<UpsertOutcome, DestinationError> {
    let reference = AudienceRef::parse(id)?;
    let (audience, list) = read_pair(api, account, &reference)?;
    if let Some(held) = reference.list_type.filter(|held| *held != list_type) {
        return Err(DestinationError::InvalidRequest(type_mismatch(&audience.name, held, list_type)));
    }
    if let Some(problem) = pair_problem(&reference, &audience) {
        return Err(DestinationError::InvalidRequest(problem));
    }
    let typed = AudienceRef { list_type: Some(list_type), ..reference };
    Ok(UpsertOutcome::Ready(to_audience(&typed, &audience, Some(&list), false)))
}

/// Find the audience for `spec` in `account_id`, or create what may be created now.
pub fn upsert_audience(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    spec: &AudienceSpec,
) -> Result<UpsertOutcome, DestinationError> {
    let account = path_id(account_id, "ad account id")?;
    let list_type = ListType::for_sync(&spec.identifiers)?;
    let api = Pinterest::new(Client::new(host, config), &creds.access_token)?;
    if let Some(id) = spec.id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
        return upsert_by_id(&api, account, id, list_type);
    }
    let Some(list) = find_customer_list(&api, account, &spec.name)? else {
        if spec.create_if_missing {
            return Ok(UpsertOutcome::CreateWithFirstBatch(CREATE_WITH_FIRST_BATCH.into()));
        }
        return Err(DestinationError::NotFound(format!(
            "no customer list named '{}' in ad account {account}",
            spec.name
        )));
    };
    if let Some(audience) = find_list_audience(&api, account, &spec.name, &list.id)? {
        return Ok(UpsertOutcome::Ready(pair_audience(&list, &audience, list_type, false)));
    }
    if !spec.create_if_missing {
        return Err(DestinationError::NotFound(format!(
            "customer list '{}' exists in ad account {account} but no CUSTOMER_LIST audience of that \
             name targets it",
            spec.name
        )));
    }
    let audience = create_list_audience(&api, account, spec, &list)?;
    Ok(UpsertOutcome::Ready(pair_audience(&list, &audience, list_type, true)))
}

/// Whether a listed audience can be a search result: a CUSTOMER_LIST audience naming its list
/// (the only kind a sync can write to).
pub fn is_searchable(audience: &wire::Audience) -> bool {
    is_customer_list_audience(audience)
        && is_pinterest_id(&audience.id)
        && rule_list(audience).is_some_and(is_pinterest_id)
}

/// A listed audience as a search result, with the untyped id (Pinterest does not say the list
/// type); `None` when it [is not searchable](is_searchable).
pub fn search_result(audience: &wire::Audience) -> Option<Audience> {
    let list = rule_list(audience).filter(|_| is_searchable(audience))?;
    let reference =
        AudienceRef { customer_list_id: list.to_string(), audience_id: audience.id.clone(), list_type: None };
    Some(to_audience(&reference, audience, None, false))
}

/// One page of the account's CUSTOMER_LIST audiences whose name contains `query` (ignoring
/// case; blank = all), from `cursor` (a Pinterest bookmark).
pub fn search_audiences(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    query: &str,
    cursor: Option<&str>,
) -> Result<AudiencePage, DestinationError> {
    let account = path_id(account_id, "ad account id")?;
    let api = Pinterest::new(Client::new(host, config), &creds.access_token)?;
    let page = search_page(
        cursor.map(str::trim).filter(|c| !c.is_empty()),
        SEARCH_MIN_RESULTS,
        SEARCH_MAX_PAGES,
        |bookmark| api.audiences(account, bookmark),
        |audience| is_searchable(audience) && matches_query(&audience.name, query),
    )
    .map_err(DestinationError::from)?;
    Ok(AudiencePage {
        audiences: page.items.iter().filter_map(search_result).collect(),
        next_cursor: page.next_cursor.filter(|c| !c.is_empty()),
    })
}

/// The audience `audience_id` (an id from this plugin) with Pinterest's current size and state.
pub fn read_audience(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    audience_id: &str,
) -> Result<Audience, DestinationError> {
    let account = path_id(account_id, "ad account id")?;
    let reference = AudienceRef::parse(audience_id)?;
    let api = Pinterest::new(Client::new(host, config), &creds.access_token)?;
    let (audience, list) = read_pair(&api, account, &reference)?;
    let mut found = to_audience(&reference, &audience, Some(&list), false);
    if let Some(problem) = pair_problem(&reference, &audience) {
        found.details.push(("problem".into(), problem));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::kinds::{EMAIL, IDFA, MOBILE_AD_ID, PHONE, list};
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, config, creds, fail, ok};

    const ACCOUNT: &str = "549755885175";

    fn spec(create: bool) -> AudienceSpec {
        AudienceSpec {
            id: None,
            name: "VIPs".into(),
            identifiers: list(&[MOBILE_AD_ID, EMAIL]),
            description: Some("from the CRM".into()),
            create_if_missing: create,
        }
    }

    fn upsert(host: &FakeHost, create: bool) -> Result<UpsertOutcome, DestinationError> {
        upsert_audience(host, &config(), &creds(), ACCOUNT, &spec(create))
    }

    fn lists_page(names: &[(&str, &str)], bookmark: Option<&str>) -> serde_json::Value {
        let items: Vec<_> = names.iter().map(|(id, name)| json!({"id": id, "name": name, "status": "READY"})).collect();
        json!({"items": items, "bookmark": bookmark})
    }

    fn audience(id: &str, name: &str, kind: &str, list: &str) -> serde_json::Value {
        json!({"id": id, "name": name, "audience_type": kind, "rule": {"customer_list_id": list},
               "status": "READY", "size": 1200})
    }

    #[test]
    fn finds_both_across_many_pages() {
        let mut script = vec![
            ok(lists_page(&[("1", "Other")], Some("l1"))),
            ok(lists_page(&[("2", "Another"), ("3", "VIPs")], Some("l2"))),
        ];
        // Audiences: 3 pages; a same-named non-list audience and one on another list come first.
        script.push(ok(json!({"items": [audience("10", "VIPs", "VISITOR", "3")], "bookmark": "a1"})));
        script.push(ok(json!({"items": [audience("11", "VIPs", "CUSTOMER_LIST", "99")], "bookmark": "a2"})));
        script.push(ok(json!({"items": [audience("12", "VIPs", "CUSTOMER_LIST", "3")], "bookmark": "a3"})));
        let host = FakeHost::new(script);
        let outcome = upsert(&host, true);
        let Ok(UpsertOutcome::Ready(found)) = outcome else { panic!("{outcome:?}") };
        assert_eq!(found.id, "3:12:MAID", "the first supported match field decides the list type");
        assert!(!found.created);
        assert_eq!(found.identifiers, vec![MOBILE_AD_ID.to_string()]);
        assert_eq!(found.size, AudienceSize { lower: Some(1200), upper: Some(1200) });
        assert_eq!(found.state, AudienceState::Ready);
        assert_eq!(host.count(), 5, "stops paging at the match");
        assert_eq!(
            host.call(1).1,
            format!("http://sandbox.test/v5/ad_accounts/{ACCOUNT}/customer_lists?page_size=250&bookmark=l1")
        );
        assert_eq!(
            host.call(4).1,
            format!(
                "http://sandbox.test/v5/ad_accounts/{ACCOUNT}/audiences?page_size=250&ownership_type=OWNED&bookmark=a2"
            )
        );
    }

    #[test]
    fn creates_the_audience_on_an_existing_list() {
        let host = FakeHost::new(vec![
            ok(lists_page(&[("3", "VIPs")], None)),
            ok(json!({"items": [], "bookmark": null})),
            ok(audience("12", "VIPs", "CUSTOMER_LIST", "3")),
        ]);
        let outcome = upsert(&host, true);
        let Ok(UpsertOutcome::Ready(created)) = outcome else { panic!("{outcome:?}") };
        assert!(created.created);
        assert_eq!(created.id, "3:12:MAID");
        assert_eq!(host.call(2), ("POST".into(), format!("http://sandbox.test/v5/ad_accounts/{ACCOUNT}/audiences")));
        assert_eq!(
            host.body(2),
            json!({"name": "VIPs", "audience_type": "CUSTOMER_LIST", "rule": {"customer_list_id": "3"},
                   "description": "from the CRM"})
        );
    }

    #[test]
    fn missing_list_defers_or_is_not_found() {
        let host = FakeHost::new(vec![ok(lists_page(&[("1", "Other")], None))]);
        assert_eq!(upsert(&host, true), Ok(UpsertOutcome::CreateWithFirstBatch(CREATE_WITH_FIRST_BATCH.into())));
        assert_eq!(host.count(), 1, "no list is created without records");
        let host = FakeHost::new(vec![ok(lists_page(&[], None))]);
        assert!(matches!(upsert(&host, false), Err(DestinationError::NotFound(_))));
    }

    #[test]
    fn missing_audience_without_create_is_not_found() {
        let host = FakeHost::new(vec![ok(lists_page(&[("3", "VIPs")], None)), ok(json!({"items": []}))]);
        assert!(matches!(upsert(&host, false), Err(DestinationError::NotFound(_))));
        assert_eq!(host.count(), 2);
    }

    #[test]
    fn bad_inputs_send_nothing() {
        let host = FakeHost::new(vec![]);
        let bad_account = upsert_audience(&host, &config(), &creds(), "../1", &spec(true));
        assert!(matches!(bad_account, Err(DestinationError::InvalidRequest(_))));
        let mut phone_only = spec(true);
        phone_only.identifiers = list(&[PHONE]);
        let bad_spec = upsert_audience(&host, &config(), &creds(), ACCOUNT, &phone_only);
        assert!(matches!(bad_spec, Err(DestinationError::InvalidRequest(_))));
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn lookup_errors_are_mapped() {
        let host = FakeHost::new(vec![fail(403, 3, "Insufficient scope")]);
        assert!(matches!(upsert(&host, true), Err(DestinationError::Unauthorized(m)) if m.contains("ads:read")));
    }

    #[test]
    fn audience_matching() {
        let parse = |v: serde_json::Value| serde_json::from_value::<wire::Audience>(v).ok();
        let Some(a) = parse(audience("1", "VIPs", "CUSTOMER_LIST", "3")) else { panic!() };
        assert!(is_list_audience(&a, "VIPs", "3"));
        assert!(!is_list_audience(&a, "VIPs", "4"));
        assert!(!is_list_audience(&a, "vips", "3"));
        let Some(no_rule) = parse(json!({"id": "1", "name": "VIPs", "audience_type": "CUSTOMER_LIST"})) else {
            panic!()
        };
        assert!(is_list_audience(&no_rule, "VIPs", "3"));
    }

    fn with_id(id: &str, identifiers: &[&str]) -> AudienceSpec {
        AudienceSpec { id: Some(id.into()), identifiers: list(identifiers), ..spec(false) }
    }

    fn list_json(id: &str, status: &str) -> serde_json::Value {
        json!({"id": id, "name": "VIPs", "status": status, "num_uploaded_user_records": 150,
               "num_removed_user_records": 3, "type": "customerlist"})
    }

    #[test]
    fn upsert_by_id_types_an_untyped_pick_for_the_syncs_kind() {
        let host = FakeHost::new(vec![ok(audience("12", "VIPs", "CUSTOMER_LIST", "3")), ok(list_json("3", "READY"))]);
        let outcome = upsert_audience(&host, &config(), &creds(), ACCOUNT, &with_id("3:12", &[PHONE, IDFA, EMAIL]));
        let Ok(UpsertOutcome::Ready(found)) = outcome else { panic!("{outcome:?}") };
        assert_eq!(found.id, "3:12:IDFA");
        assert!(!found.created);
        assert_eq!(host.path(0), format!("/ad_accounts/{ACCOUNT}/audiences/12"));
        assert_eq!(host.path(1), format!("/ad_accounts/{ACCOUNT}/customer_lists/3"));
        assert_eq!(host.count(), 2, "no lookup by name, nothing created");
    }

    #[test]
    fn upsert_by_id_refuses_a_list_of_another_kind_or_a_gone_audience() {
        let host = FakeHost::new(vec![ok(audience("12", "VIPs", "CUSTOMER_LIST", "3")), ok(list_json("3", "READY"))]);
        let outcome =
            upsert_audience(&host, &config(), &creds(), ACCOUNT, &with_id("3:12:MAID", &[EMAIL, MOBILE_AD_ID]));
        match outcome {
            Err(DestinationError::InvalidRequest(m)) => {
                assert!(m.contains("holds Android mobile ad ids (MAID)") && m.contains("put mobile-ad-id first"), "{m}")
            }
            other => panic!("{other:?}"),
        }
        let host = FakeHost::new(vec![fail(404, 404, "Audience not found.")]);
        let outcome = upsert_audience(&host, &config(), &creds(), ACCOUNT, &with_id("3:12:EMAIL", &[EMAIL]));
        assert!(matches!(outcome, Err(DestinationError::NotFound(_))), "{outcome:?}");
        let host = FakeHost::new(vec![]);
        let outcome = upsert_audience(&host, &config(), &creds(), ACCOUNT, &with_id("VIPs", &[EMAIL]));
        assert!(matches!(outcome, Err(DestinationError::InvalidRequest(_))));
        assert_eq!(host.count(), 0);
    }

    fn audiences_page(
        items: Vec<serde_json::Value>,
        bookmark: Option<&str>,
    ) -> Result<audience_plugin_sdk::http::Response, audience_plugin_sdk::http_client::HttpError> {
        ok(json!({"items": items, "bookmark": bookmark}))
    }

    fn search(host: &FakeHost, query: &str, cursor: Option<&str>) -> AudiencePage {
        match search_audiences(host, &config(), &creds(), ACCOUNT, query, cursor) {
            Ok(page) => page,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn search_filters_by_name_ignoring_case_and_keeps_customer_list_audiences() {
        let host = FakeHost::new(vec![audiences_page(
            vec![
                audience("10", "VIP shoppers", "CUSTOMER_LIST", "3"),
                audience("11", "vip visitors", "VISITOR", "4"),
                audience("12", "Churned", "CUSTOMER_LIST", "5"),
                audience("13", "Top VIPS", "CUSTOMER_LIST", "6"),
                json!({"id": "14", "name": "VIP no rule", "audience_type": "CUSTOMER_LIST"}),
            ],
            None,
        )]);
        let page = search(&host, " vip ", None);
        let ids: Vec<&str> = page.audiences.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, vec!["3:10", "6:13"]);
        assert_eq!(page.next_cursor, None);
        assert!(page.audiences.iter().all(|a| !a.created && a.identifiers.is_empty()));
        assert_eq!(page.audiences[0].size, AudienceSize { lower: Some(1200), upper: Some(1200) });
        assert_eq!(page.audiences[0].state, AudienceState::Ready);
        assert_eq!(host.path(0), format!("/ad_accounts/{ACCOUNT}/audiences?page_size=250&ownership_type=OWNED"));
    }

    #[test]
    fn search_pages_a_bounded_number_of_partner_pages_per_call() {
        // Thousands of audiences, none matching: each call fetches SEARCH_MAX_PAGES pages and
        // hands back Pinterest's bookmark.
        let page_of = |n: usize| {
            (0..250)
                .map(|i| audience(&format!("{}", n * 1000 + i + 1), "Other", "CUSTOMER_LIST", "3"))
                .collect::<Vec<_>>()
        };
        let script = (0..SEARCH_MAX_PAGES).map(|n| audiences_page(page_of(n), Some(&format!("b{}", n + 1)))).collect();
        let host = FakeHost::new(script);
        let page = search(&host, "vip", None);
        assert!(page.audiences.is_empty());
        assert_eq!(page.next_cursor.as_deref(), Some("b4"));
        assert_eq!(host.count(), SEARCH_MAX_PAGES);
        assert!(host.path(3).ends_with("&bookmark=b3"), "{}", host.path(3));
        // The next call resumes at the cursor and stops at the listing's end.
        let host = FakeHost::new(vec![audiences_page(vec![audience("99", "VIP", "CUSTOMER_LIST", "3")], None)]);
        let page = search(&host, "vip", Some("b4"));
        assert_eq!(page.audiences.len(), 1);
        assert_eq!(page.next_cursor, None);
        assert!(host.path(0).ends_with("&bookmark=b4"));
    }

    #[test]
    fn search_stops_early_once_a_page_of_matches_is_found() {
        let many: Vec<_> =
            (0..SEARCH_MIN_RESULTS).map(|i| audience(&format!("{}", i + 1), "VIP", "CUSTOMER_LIST", "3")).collect();
        let host = FakeHost::new(vec![audiences_page(many, Some("b1"))]);
        let page = search(&host, "", None);
        assert_eq!(page.audiences.len(), SEARCH_MIN_RESULTS);
        assert_eq!(page.next_cursor.as_deref(), Some("b1"));
        assert_eq!(host.count(), 1);
    }

    #[test]
    fn search_errors_are_mapped() {
        let host = FakeHost::new(vec![fail(404, 2, "AdAccount not found.")]);
        let result = search_audiences(&host, &config(), &creds(), ACCOUNT, "", None);
        assert!(matches!(result, Err(DestinationError::NotFound(_))));
        let host = FakeHost::new(vec![]);
        let result = search_audiences(&host, &config(), &creds(), "act_1", "", None);
        assert!(matches!(result, Err(DestinationError::InvalidRequest(_))));
        assert_eq!(host.count(), 0);
    }

    #[test]
    fn read_audience_reports_size_state_and_details() {
        let host = FakeHost::new(vec![
            ok(json!({"id": "12", "name": "VIPs", "audience_type": "CUSTOMER_LIST",
                      "rule": {"customer_list_id": "3"}, "size": null, "status": "TOO_SMALL"})),
            ok(list_json("3", "TOO_SMALL")),
        ]);
        let found = read_audience(&host, &config(), &creds(), ACCOUNT, "3:12:EMAIL");
        let Ok(found) = found else { panic!("{found:?}") };
        assert_eq!(found.id, "3:12:EMAIL");
        assert_eq!(found.name, "VIPs");
        assert_eq!(found.identifiers, vec![EMAIL.to_string()]);
        assert_eq!(found.size, AudienceSize { lower: None, upper: Some(99) });
        assert_eq!(found.state, AudienceState::TooSmall);
        assert!(found.status_detail.as_deref().is_some_and(|d| d.starts_with("Pinterest audience status TOO_SMALL")));
        assert!(found.details.contains(&("records uploaded".into(), "150".into())));
        assert!(found.details.contains(&("list type".into(), "EMAIL".into())));
        let host = FakeHost::new(vec![ok(audience("12", "VIPs", "CUSTOMER_LIST", "3")), fail(404, 404, "gone")]);
        assert!(matches!(
            read_audience(&host, &config(), &creds(), ACCOUNT, "3:12"),
            Err(DestinationError::NotFound(_))
        ));
    }

    #[test]
    fn size_and_state_mapping() {
        let parse = |v: serde_json::Value| match serde_json::from_value::<wire::Audience>(v) {
            Ok(a) => a,
            Err(e) => panic!("{e}"),
        };
        let cases = [
            (json!({"id": "1", "size": 5000, "status": "READY"}), (Some(5000), Some(5000)), AudienceState::Ready),
            (json!({"id": "1", "size": null, "status": "INITIALIZING"}), (None, None), AudienceState::Populating),
            (json!({"id": "1", "size": 42, "status": "TOO_SMALL"}), (Some(42), Some(42)), AudienceState::TooSmall),
            (json!({"id": "1", "status": "TOO_SMALL"}), (None, Some(99)), AudienceState::TooSmall),
            (json!({"id": "1", "status": "ARCHIVED"}), (None, None), AudienceState::Unknown),
            (json!({"id": "1"}), (None, None), AudienceState::Unknown),
        ];
        for (raw, (lower, upper), state) in cases {
            let a = parse(raw);
            assert_eq!(audience_size(&a), AudienceSize { lower, upper }, "{a:?}");
            assert_eq!(audience_state(&a, None), state, "{a:?}");
        }
        let no_status = parse(json!({"id": "1"}));
        let list = |status: &str| match serde_json::from_value::<CustomerList>(json!({"id": "3", "status": status})) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(audience_state(&no_status, Some(&list("UPLOADING"))), AudienceState::Populating);
        assert_eq!(audience_state(&no_status, Some(&list("READY"))), AudienceState::Ready);
        assert!(
            status_detail(&parse(json!({"id": "1", "status": "ARCHIVED"})), None)
                .is_some_and(|d| d.contains("ARCHIVED"))
        );
        assert_eq!(status_detail(&no_status, None), None);
    }
}
