//! `upsert-audience`: find (or create) the customer list + CUSTOMER_LIST audience pair.
//!
//! The audience a sync delivers into is a customer list named after the spec, paired with a
//! CUSTOMER_LIST audience of the same name whose rule points at that list. Lookups page
//! through every page (250 a page, the spec's maximum for both listings) and stop at the first
//! match, so accounts with thousands of audiences work without fetching more than needed.
//!
//! | customer list | audience | result                                                     |
//! |---------------|----------|------------------------------------------------------------|
//! | found         | found    | `ready`                                                    |
//! | found         | missing  | create the audience → `ready(created)`; `not-found` if `create-if-missing` is false |
//! | missing       | —        | `create-with-first-batch` if `create-if-missing`, else `not-found` |
//!
//! Pinterest creates a customer list only together with real records, so a list is never
//! created here (and never with placeholder records): the host's first `add-users` does it.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::paging::{DEFAULT_MAX_PAGES, find_first};
use audience_plugin_sdk::types::{Audience, AudienceSpec, Credentials, DestinationError, PluginConfig, UpsertOutcome};

use crate::audience_ref::AudienceRef;
use crate::client::{Client, Pinterest};
use crate::config::path_id;
use crate::list_type::ListType;
use crate::wire::{self, AudienceCreate, CustomerList};

/// Why `upsert-audience` defers creation to the first batch (shown to people).
pub const CREATE_WITH_FIRST_BATCH: &str = "Pinterest creates a customer list only with its first records; \
     the list and its audience will be created with the first batch of users";

/// The customer list named `name` in `account`, if any.
pub fn find_customer_list(
    api: &Pinterest<'_>,
    account: &str,
    name: &str,
) -> Result<Option<CustomerList>, DestinationError> {
    find_first(DEFAULT_MAX_PAGES, |bookmark| api.customer_lists(account, bookmark), |list| list.name == name)
        .map_err(DestinationError::from)
}

/// Whether `audience` is the CUSTOMER_LIST audience named `name` on list `list_id`. An audience
/// listed without its rule is accepted on name and type alone.
pub fn is_list_audience(audience: &wire::Audience, name: &str, list_id: &str) -> bool {
    let rule_list = audience.rule.as_ref().and_then(|r| r.customer_list_id.as_deref());
    audience.name == name
        && audience.audience_type.as_deref() == Some("CUSTOMER_LIST")
        && rule_list.is_none_or(|id| id == list_id)
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

/// The host's view of the pair: opaque id, name, and details worth showing.
pub fn to_audience(list: &CustomerList, audience: &wire::Audience, list_type: ListType, created: bool) -> Audience {
    let reference = AudienceRef { customer_list_id: list.id.clone(), audience_id: audience.id.clone(), list_type };
    let mut details = vec![
        ("customer list id".to_string(), list.id.clone()),
        ("audience id".to_string(), audience.id.clone()),
        ("list type".to_string(), list_type.to_string()),
    ];
    if let Some(status) = &list.status {
        details.push(("customer list status".into(), status.clone()));
    }
    if let Some(status) = &audience.status {
        details.push(("audience status".into(), status.clone()));
    }
    if let Some(size) = audience.size {
        details.push(("audience size".into(), size.to_string()));
    }
    Audience { id: reference.encode(), name: audience.name.clone(), created, details }
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
        return Ok(UpsertOutcome::Ready(to_audience(&list, &audience, list_type, false)));
    }
    if !spec.create_if_missing {
        return Err(DestinationError::NotFound(format!(
            "customer list '{}' exists in ad account {account} but no CUSTOMER_LIST audience of that \
             name targets it",
            spec.name
        )));
    }
    let audience = create_list_audience(&api, account, spec, &list)?;
    Ok(UpsertOutcome::Ready(to_audience(&list, &audience, list_type, true)))
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::types::IdentifierKind;
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, config, creds, fail, ok};

    const ACCOUNT: &str = "549755885175";

    fn spec(create: bool) -> AudienceSpec {
        AudienceSpec {
            name: "VIPs".into(),
            identifiers: vec![IdentifierKind::MobileAdId, IdentifierKind::Email],
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
        assert_eq!(found.id, "3:12:EMAIL");
        assert!(!found.created);
        assert!(found.details.contains(&("audience size".into(), "1200".into())));
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
        assert_eq!(created.id, "3:12:EMAIL");
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
        phone_only.identifiers = vec![IdentifierKind::Phone];
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
}
