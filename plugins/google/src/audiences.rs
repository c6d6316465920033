//! `search-audiences`, `read-audience` and `upsert-audience`, over the Data Manager user lists
//! (`UserListService`).
//!
//! The host's audience id is the user list's numeric id. Only lists that take uploads of a
//! kind the plugin sends are Customer Match targets: lists whose `ingestedUserListInfo` names
//! `CONTACT_ID`, `MOBILE_ID` or `USER_ID`; others (rule-based lists, PAIR and pseudonymous-id
//! lists, lists without ingested info) are never listed, found by name or written to.
//!
//! **Search.** The filter language (AIP-160) has `=` and `:` on `display_name`, but neither is
//! documented as case-insensitive or as "contains", which the contract asks for; so names are
//! matched here (the SDK's `matches_query`) over pages of [`SEARCH_PAGE_SIZE`]. One call
//! fetches at most [`SEARCH_FETCHES`] pages from the cursor, stopping once it has
//! [`SEARCH_MIN_ITEMS`] matches, and hands back Google's `nextPageToken` as the cursor: the
//! listing is asked the same way every time, so the token stays valid and a cursor round-trips.
//!
//! **Size and state.** `sizeInfo` gives estimated members per network (Display, Search, and
//! in newer versions YouTube and Gmail); the size is the largest of them (the list's reach on
//! its widest network), reported as both bounds, each network's count in `details`. State:
//! `CLOSED` (Google closes a list unused in targeting: `closingReason` `UNUSED`) or a revoked
//! share (`accountAccessStatus` `DISABLED`) or a read-only list → `unusable`; no size yet or
//! all zero → `populating` (Google reports sizes hours after an upload); below 100 → `too-small`
//! (a list needs 100 active members to serve); else `ready`. An answer without status or
//! size is `unknown`.
//!
//! **Upsert.** With `spec.id`, that list (read; gone is `not-found`, never replaced). Without,
//! the list named exactly `spec.name`, looked up with the filter `display_name = "<name>"` (and
//! the names compared here as well, so a sandbox that ignores the filter still finds the right
//! one). A list found must take the sync's key type (else `action-required`: pick another list
//! or other match fields). None found: created when allowed (`POST .../userLists` with the
//! name, the description, `membershipDuration` from the `membership-days` setting, and
//! `ingestedUserListInfo` for the key type with `dataSourceType` `DATA_SOURCE_TYPE_FIRST_PARTY`;
//! a mobile-id list also needs the key space and app, from the `android-app-id` or `ios-app-id`
//! setting by the sync's first mobile field), else `not-found`. Google creates empty lists, so
//! nothing waits for a first batch. `DISPLAY_NAME_ALREADY_USED` (a list created meanwhile) is
//! answered by looking the name up again.

use std::ops::ControlFlow;

use audience_plugin_sdk::Host;
use audience_plugin_sdk::build;
use audience_plugin_sdk::config::setting;
use audience_plugin_sdk::kinds;
use audience_plugin_sdk::paging::{Page, matches_query, search_page, walk};
use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::{
    Audience, AudiencePage, AudienceSize, AudienceSpec, AudienceState, Credentials, DestinationError, PluginConfig,
    UpsertOutcome,
};
use serde_json::{Value, json};

use crate::client::Google;
use crate::config::{ANDROID_APP_ID, AccountRef, IOS_APP_ID, list_id, membership_days};
use crate::kinds::KeyType;
use crate::wire::UserList;

/// The lists asked per page.
pub const SEARCH_PAGE_SIZE: u32 = 200;
/// The most pages one `search-audiences` call fetches.
pub const SEARCH_FETCHES: usize = 5;
/// A search call stops fetching once it has this many matches.
pub const SEARCH_MIN_ITEMS: usize = 25;
/// The lists asked per page when looking a name up.
pub const LOOKUP_PAGE_SIZE: u32 = 1000;
/// The most pages a name lookup walks.
pub const LOOKUP_MAX_PAGES: usize = 50;
/// The fewest members a list needs to serve.
pub const MIN_SERVING_SIZE: u64 = 100;

/// The list's key type, when it is one the plugin writes.
pub fn key_type(list: &UserList) -> Option<KeyType> {
    let info = list.ingested_user_list_info.as_ref()?;
    info.upload_key_types.iter().find_map(|t| KeyType::from_dm_name(t))
}

/// Whether the plugin can write to the list at all.
pub fn is_customer_match(list: &UserList) -> bool {
    key_type(list).is_some()
}

/// The host kinds a list holds.
pub fn kinds_of(list: &UserList) -> Vec<String> {
    match key_type(list) {
        Some(KeyType::MobileId) => {
            let space = list.ingested_user_list_info.as_ref().and_then(|i| i.mobile_id_info.as_ref());
            match space.and_then(|m| m.key_space.as_deref()) {
                Some("IOS") => kinds::list(&[kinds::IDFA]),
                Some("ANDROID") => kinds::list(&[kinds::MOBILE_AD_ID]),
                _ => kinds::list(KeyType::MobileId.kinds()),
            }
        }
        Some(t) => kinds::list(t.kinds()),
        None => vec![],
    }
}

/// The list's id: `id`, else the last part of `name`.
pub fn id_of(list: &UserList) -> Option<String> {
    list.id
        .clone()
        .filter(|i| !i.trim().is_empty())
        .or_else(|| list.name.as_deref().and_then(|n| n.rsplit('/').next()).map(str::to_string))
        .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
}

/// The list's state and Google's words for it (see the module documentation).
pub fn state_of(list: &UserList) -> (AudienceState, Option<String>) {
    if list.membership_status.as_deref() == Some("CLOSED") {
        let why = match list.closing_reason.as_deref() {
            Some("UNUSED") => "Google closed the list because it was not used in targeting recently; reopen it in \
                               Google Ads"
                .to_string(),
            _ => "the list is closed: it takes no new members; reopen it in Google Ads".to_string(),
        };
        return (AudienceState::Unusable, Some(why));
    }
    if list.account_access_status.as_deref() == Some("DISABLED") {
        return (AudienceState::Unusable, Some("the list's owner revoked this account's access to it".into()));
    }
    if list.read_only == Some(true) {
        return (
            AudienceState::Unusable,
            Some("the list is read-only for this account: it cannot take members".into()),
        );
    }
    let largest = list.size_info.as_ref().and_then(|s| s.counts().into_iter().map(|(_, c)| c).max());
    match (largest, list.membership_status.as_deref()) {
        (None, None) => (AudienceState::Unknown, None),
        (None | Some(0), _) => (
            AudienceState::Populating,
            Some("no members reported yet: Google reports list sizes hours after an upload".into()),
        ),
        (Some(n), _) if n < MIN_SERVING_SIZE => (
            AudienceState::TooSmall,
            Some(format!("about {n} members: Google needs at least {MIN_SERVING_SIZE} to serve ads to a list")),
        ),
        _ => (AudienceState::Ready, None),
    }
}

/// The host's view of a user list; `fallback_id` stands in when the answer has no id.
pub fn to_audience(list: &UserList, created: bool, fallback_id: Option<&str>) -> Audience {
    let id = id_of(list).or_else(|| fallback_id.map(str::to_string)).unwrap_or_default();
    let mut audience = build::audience(id.clone(), list.display_name.clone().unwrap_or_default());
    audience.created = created;
    audience.identifiers = kinds_of(list);
    let counts = list.size_info.as_ref().map(|s| s.counts()).unwrap_or_default();
    if let Some(largest) = counts.iter().map(|(_, c)| *c).max() {
        audience.size = AudienceSize { lower: Some(largest), upper: Some(largest) };
    }
    (audience.state, audience.status_detail) = state_of(list);
    let mut details = vec![("user list id".to_string(), id)];
    let mut add = |label: &str, value: Option<String>| {
        if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
            details.push((label.to_string(), value));
        }
    };
    add("resource name", list.name.clone());
    add("upload key type", key_type(list).map(|t| t.dm_name().to_string()));
    let info = list.ingested_user_list_info.as_ref();
    let mobile = info.and_then(|i| i.mobile_id_info.as_ref());
    add("key space", mobile.and_then(|m| m.key_space.clone()));
    add("app", mobile.and_then(|m| m.app_id.clone()));
    let rate = info.and_then(|i| i.contact_id_info.as_ref()).and_then(|c| c.match_rate_percentage);
    add("match rate", rate.map(|r| format!("{r}%")));
    add(
        "membership duration",
        list.membership_duration
            .as_deref()
            .and_then(|d| d.trim_end_matches('s').parse::<u64>().ok())
            .map(|s| format!("{} days", s / 86_400)),
    );
    add("membership status", list.membership_status.clone());
    add("access", list.access_reason.clone());
    add("description", list.description.clone());
    for (network, count) in counts {
        add(&format!("members ({network})"), Some(count.to_string()));
    }
    audience.details = details;
    audience
}

/// One page of the account's Customer Match lists whose name contains `query`.
pub fn search_audiences(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    query: &str,
    cursor: Option<&str>,
) -> Result<AudiencePage, DestinationError> {
    let account = AccountRef::parse(account_id)?;
    let google = Google::new(host, config, creds)?;
    let page = search_page(
        cursor,
        SEARCH_MIN_ITEMS,
        SEARCH_FETCHES,
        |token| {
            let page = google.user_lists(&account, SEARCH_PAGE_SIZE, token, None)?;
            Ok::<_, DestinationError>(Page { items: page.user_lists, next_cursor: page.next_page_token })
        },
        |list: &UserList| {
            id_of(list).is_some()
                && is_customer_match(list)
                && matches_query(list.display_name.as_deref().unwrap_or_default(), query)
        },
    )?;
    Ok(AudiencePage {
        audiences: page.items.iter().map(|l| to_audience(l, false, None)).collect(),
        next_cursor: page.next_cursor,
    })
}

/// The list `id` of `account`.
pub fn read(google: &Google<'_>, account: &AccountRef, id: &str) -> Result<UserList, DestinationError> {
    let mut list = google.user_list(account, id)?;
    // `GET .../userLists/{id}` answers the list at that id; an answer that leaves the id out
    // (a stand-in answering `{}`) is still that one.
    if id_of(&list).is_none() {
        list.id = Some(id.to_string());
    }
    Ok(list)
}

/// `read-audience`.
pub fn read_audience(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    audience_id: &str,
) -> Result<Audience, DestinationError> {
    let account = AccountRef::parse(account_id)?;
    let id = list_id(audience_id)?;
    let google = Google::new(host, config, creds)?;
    Ok(to_audience(&read(&google, &account, id)?, false, Some(id)))
}

/// `name` as an AIP-160 string literal.
pub fn filter_literal(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The Customer Match list of `account` named exactly `name`, if any.
pub fn find_by_name(
    google: &Google<'_>,
    account: &AccountRef,
    name: &str,
) -> Result<Option<UserList>, DestinationError> {
    let wanted = name.trim();
    let filter = format!("display_name = {}", filter_literal(wanted));
    let found = walk(
        LOOKUP_MAX_PAGES,
        |token| {
            let page = google.user_lists(account, LOOKUP_PAGE_SIZE, token, Some(&filter))?;
            Ok::<_, DestinationError>(Page { items: page.user_lists, next_cursor: page.next_page_token })
        },
        |lists| match lists.into_iter().find(|l| {
            id_of(l).is_some() && is_customer_match(l) && l.display_name.as_deref().map(str::trim) == Some(wanted)
        }) {
            Some(list) => ControlFlow::Break(list),
            None => ControlFlow::Continue(()),
        },
    )?;
    Ok(found)
}

/// The list `spec` names (by id, else by name), if it exists.
pub fn resolve(
    google: &Google<'_>,
    account: &AccountRef,
    spec: &AudienceSpec,
) -> Result<Option<UserList>, DestinationError> {
    match spec.id.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
        Some(id) => {
            let id = list_id(id)?;
            read(google, account, id).map(Some)
        }
        None => find_by_name(google, account, &spec.name),
    }
}

/// Why `list` cannot take the members of a sync of `key_type`, if it cannot.
pub fn mismatch(list: &UserList, key_type: KeyType, spec: &AudienceSpec) -> Option<String> {
    let name = list.display_name.as_deref().unwrap_or_default();
    let id = id_of(list).unwrap_or_default();
    match self::key_type(list) {
        None => Some(format!(
            "the Google list '{}' ({id}) is not a Customer Match list of contact info, mobile ids or user ids; pick \
             another list",
            excerpt(name, 60)
        )),
        Some(t) if t != key_type => Some(format!(
            "the Google list '{}' ({id}) holds {}, but the sync's first match field makes it send {}; pick another \
             list, or match on {}",
            excerpt(name, 60),
            t.words(),
            key_type.words(),
            t.kinds().join(", ")
        )),
        Some(KeyType::MobileId) => {
            let first_mobile = spec.identifiers.iter().find(|f| KeyType::of_kind(f) == Some(KeyType::MobileId))?;
            let holds = kinds_of(list);
            (!holds.contains(first_mobile)).then(|| {
                format!(
                    "the Google list '{}' ({id}) holds {} ids, but the sync sends {first_mobile}; pick another list",
                    excerpt(name, 60),
                    holds.join(", ")
                )
            })
        }
        Some(_) => None,
    }
}

/// The `ingestedUserListInfo` of a new list of `key_type` for `spec`, or why it cannot be made.
pub fn ingested_info(config: &PluginConfig, key_type: KeyType, spec: &AudienceSpec) -> Result<Value, String> {
    const FIRST_PARTY: &str = "DATA_SOURCE_TYPE_FIRST_PARTY";
    Ok(match key_type {
        KeyType::ContactId => {
            json!({"uploadKeyTypes": ["CONTACT_ID"], "contactIdInfo": {"dataSourceType": FIRST_PARTY}})
        }
        KeyType::UserId => json!({"uploadKeyTypes": ["USER_ID"], "userIdInfo": {"dataSourceType": FIRST_PARTY}}),
        KeyType::MobileId => {
            let ios = spec
                .identifiers
                .iter()
                .find(|f| KeyType::of_kind(f) == Some(KeyType::MobileId))
                .is_some_and(|f| f == kinds::IDFA);
            let (space, setting_name) = if ios { ("IOS", IOS_APP_ID) } else { ("ANDROID", ANDROID_APP_ID) };
            let Some(app) = setting(config, setting_name) else {
                return Err(format!(
                    "a Google mobile-id list belongs to one app, and the plugin setting `{setting_name}` names none: \
                     the operator must set it, or someone must create the list in Google Ads and pick it"
                ));
            };
            json!({"uploadKeyTypes": ["MOBILE_ID"],
                   "mobileIdInfo": {"dataSourceType": FIRST_PARTY, "keySpace": space, "appId": app}})
        }
    })
}

/// The sync's key type, or `invalid-request` when none of its fields is one Google takes.
pub fn spec_key_type(spec: &AudienceSpec) -> Result<KeyType, DestinationError> {
    KeyType::for_fields(&spec.identifiers).ok_or_else(|| {
        DestinationError::InvalidRequest(format!(
            "none of the sync's match fields ({}) is one Google matches on",
            if spec.identifiers.is_empty() { "none".to_string() } else { spec.identifiers.join(", ") }
        ))
    })
}

fn create(
    google: &Google<'_>,
    config: &PluginConfig,
    account: &AccountRef,
    spec: &AudienceSpec,
    key_type: KeyType,
) -> Result<Audience, DestinationError> {
    let info = ingested_info(config, key_type, spec).map_err(DestinationError::ActionRequired)?;
    let mut body = json!({
        "displayName": spec.name.trim(),
        "membershipDuration": format!("{}s", u64::from(membership_days(config)) * 86_400),
        "ingestedUserListInfo": info,
    });
    if let Some(description) = spec.description.as_deref().map(str::trim).filter(|d| !d.is_empty()) {
        body["description"] = Value::String(description.to_string());
    }
    match google.create_user_list(account, &body) {
        Ok(list) => {
            if id_of(&list).is_none() {
                return Err(DestinationError::Transient(format!(
                    "Google created the list '{}' but answered no id for it",
                    excerpt(spec.name.trim(), 60)
                )));
            }
            let mut audience = to_audience(&list, true, None);
            if audience.name.is_empty() {
                audience.name = spec.name.trim().to_string();
            }
            Ok(audience)
        }
        Err(err @ DestinationError::InvalidRequest(_)) => match find_by_name(google, account, &spec.name)? {
            // Someone created it meanwhile (DISPLAY_NAME_ALREADY_USED).
            Some(list) => checked(list, key_type, spec),
            None => Err(err),
        },
        Err(err) => Err(err),
    }
}

fn checked(list: UserList, key_type: KeyType, spec: &AudienceSpec) -> Result<Audience, DestinationError> {
    match mismatch(&list, key_type, spec) {
        Some(why) => Err(DestinationError::ActionRequired(why)),
        None => Ok(to_audience(&list, false, None)),
    }
}

/// The list of `spec` in `account`, created when missing and allowed.
pub fn find_or_create(
    google: &Google<'_>,
    config: &PluginConfig,
    account: &AccountRef,
    spec: &AudienceSpec,
) -> Result<Audience, DestinationError> {
    let key_type = spec_key_type(spec)?;
    match resolve(google, account, spec)? {
        Some(list) => checked(list, key_type, spec),
        None if spec.create_if_missing => create(google, config, account, spec, key_type),
        None => Err(DestinationError::NotFound(format!(
            "no Customer Match list named '{}' in {}, and the sync may not create one",
            excerpt(spec.name.trim(), 60),
            account.describe()
        ))),
    }
}

/// `upsert-audience`.
pub fn upsert_audience(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    spec: &AudienceSpec,
) -> Result<UpsertOutcome, DestinationError> {
    let account = AccountRef::parse(account_id)?;
    let google = Google::new(host, config, creds)?;
    find_or_create(&google, config, &account, spec).map(UpsertOutcome::Ready)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, config, creds, fail, ok};

    fn list(id: &str, name: &str, key: &str) -> Value {
        json!({"name": format!("accountTypes/GOOGLE_ADS/accounts/1234567890/userLists/{id}"), "id": id,
               "displayName": name, "membershipStatus": "OPEN",
               "ingestedUserListInfo": {"uploadKeyTypes": [key]},
               "sizeInfo": {"displayNetworkMembersCount": "1500", "searchNetworkMembersCount": "900"}})
    }

    fn spec(name: &str, fields: &[&str], create: bool) -> AudienceSpec {
        AudienceSpec {
            id: None,
            name: name.into(),
            identifiers: kinds::list(fields),
            description: Some("from the CRM".into()),
            create_if_missing: create,
        }
    }

    fn parse(value: Value) -> UserList {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_list_as_an_audience() {
        let a = to_audience(&parse(list("42", "VIP", "CONTACT_ID")), false, None);
        assert_eq!((a.id.as_str(), a.name.as_str(), a.state), ("42", "VIP", AudienceState::Ready));
        assert_eq!(a.size, AudienceSize { lower: Some(1500), upper: Some(1500) });
        assert_eq!(a.identifiers[0], "email");
        assert!(a.details.contains(&("members (Search)".to_string(), "900".to_string())));
        let states = [
            (json!({"membershipStatus": "CLOSED", "closingReason": "UNUSED"}), AudienceState::Unusable),
            (json!({"membershipStatus": "OPEN"}), AudienceState::Populating),
            (
                json!({"membershipStatus": "OPEN", "sizeInfo": {"displayNetworkMembersCount": "40"}}),
                AudienceState::TooSmall,
            ),
            (json!({"readOnly": true, "sizeInfo": {"displayNetworkMembersCount": "4000"}}), AudienceState::Unusable),
            (json!({}), AudienceState::Unknown),
        ];
        for (value, expected) in states {
            assert_eq!(state_of(&parse(value.clone())).0, expected, "{value}");
        }
        let ios = parse(json!({"id": "7", "ingestedUserListInfo": {"uploadKeyTypes": ["MOBILE_ID"],
            "mobileIdInfo": {"keySpace": "IOS", "appId": "123"}}}));
        assert_eq!(kinds_of(&ios), vec!["idfa".to_string()]);
        assert_eq!(
            id_of(&parse(json!({"name": "accountTypes/GOOGLE_ADS/accounts/1/userLists/77"}))).as_deref(),
            Some("77")
        );
    }

    #[test]
    fn search_matches_names_here_and_pages_with_googles_token() {
        let host = FakeHost::new(vec![
            ok(json!({"userLists": [list("1", "VIP buyers", "CONTACT_ID"), list("2", "Churned", "CONTACT_ID"),
                                    list("3", "vip rules", "PAIR_ID")], "nextPageToken": "t2"})),
            ok(json!({"userLists": [list("4", "Old VIPs", "MOBILE_ID")]})),
        ]);
        let (config, creds) = (config(), creds());
        let page = search_audiences(&host, &config, &creds, "1234567890", "vip", None).unwrap();
        let ids: Vec<&str> = page.audiences.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, vec!["1", "4"]);
        assert_eq!(page.next_cursor, None);
        assert!(host.call(1).1.ends_with("userLists?pageSize=200&pageToken=t2"), "{}", host.call(1).1);
    }

    #[test]
    fn upsert_finds_by_name_or_creates() {
        let host = FakeHost::new(vec![ok(json!({"userLists": [list("9", "VIP", "CONTACT_ID")]}))]);
        let (config, creds) = (config(), creds());
        let found = upsert_audience(&host, &config, &creds, "1234567890", &spec("VIP", &["email"], true)).unwrap();
        assert!(matches!(found, UpsertOutcome::Ready(a) if a.id == "9" && !a.created));
        assert!(host.call(0).1.contains("filter=display_name%20%3D%20%22VIP%22"), "{}", host.call(0).1);

        let host = FakeHost::new(vec![ok(json!({})), ok(list("10", "New", "CONTACT_ID"))]);
        let created = upsert_audience(&host, &config, &creds, "1@2", &spec("New", &["phone"], true)).unwrap();
        assert!(matches!(created, UpsertOutcome::Ready(a) if a.id == "10" && a.created));
        assert_eq!(host.call(1).0, "POST");
        assert_eq!(host.header(1, "login-account").as_deref(), Some("accountTypes/GOOGLE_ADS/accounts/2"));
        assert_eq!(
            host.json(1),
            json!({"displayName": "New", "description": "from the CRM", "membershipDuration": "46656000s",
                   "ingestedUserListInfo": {"uploadKeyTypes": ["CONTACT_ID"],
                                            "contactIdInfo": {"dataSourceType": "DATA_SOURCE_TYPE_FIRST_PARTY"}}})
        );

        let host = FakeHost::new(vec![ok(json!({}))]);
        let missing = upsert_audience(&host, &config, &creds, "1", &spec("Nope", &["email"], false));
        assert!(matches!(missing, Err(DestinationError::NotFound(_))));
        let host = FakeHost::new(vec![ok(json!({"userLists": [list("9", "VIP", "MOBILE_ID")]}))]);
        let wrong = upsert_audience(&host, &config, &creds, "1", &spec("VIP", &["email"], true));
        assert!(
            matches!(wrong, Err(DestinationError::ActionRequired(m)) if m.contains("holds mobile advertising ids"))
        );
    }

    #[test]
    fn creating_races_and_mobile_lists() {
        let (mut config, creds) = (config(), creds());
        let host = FakeHost::new(vec![
            ok(json!({})),
            fail(400, "INVALID_ARGUMENT", Some("DISPLAY_NAME_ALREADY_USED"), vec![]),
            ok(json!({"userLists": [list("11", "Race", "USER_ID")]})),
        ]);
        let raced = upsert_audience(&host, &config, &creds, "1", &spec("Race", &["external-id"], true)).unwrap();
        assert!(matches!(raced, UpsertOutcome::Ready(a) if a.id == "11" && !a.created));

        let host = FakeHost::new(vec![ok(json!({}))]);
        let no_app = upsert_audience(&host, &config, &creds, "1", &spec("Apps", &["idfa"], true));
        assert!(matches!(no_app, Err(DestinationError::ActionRequired(m)) if m.contains("ios-app-id")));
        config.settings.push(("ios-app-id".into(), "123456789".into()));
        let host = FakeHost::new(vec![ok(json!({})), ok(json!({"id": "12", "displayName": "Apps"}))]);
        upsert_audience(&host, &config, &creds, "1", &spec("Apps", &["idfa", "mobile-ad-id"], true)).unwrap();
        assert_eq!(
            host.json(1)["ingestedUserListInfo"],
            json!({"uploadKeyTypes": ["MOBILE_ID"], "mobileIdInfo": {"dataSourceType": "DATA_SOURCE_TYPE_FIRST_PARTY",
                   "keySpace": "IOS", "appId": "123456789"}})
        );
    }

    #[test]
    fn read_by_id() {
        let host = FakeHost::new(vec![ok(json!({})), fail(404, "NOT_FOUND", None, vec![])]);
        let (config, creds) = (config(), creds());
        let a = read_audience(&host, &config, &creds, "1234567890", "1000000001").unwrap();
        assert_eq!((a.id.as_str(), a.state), ("1000000001", AudienceState::Unknown));
        assert!(host.call(0).1.ends_with("/accounts/1234567890/userLists/1000000001"));
        assert!(matches!(read_audience(&host, &config, &creds, "1", "5"), Err(DestinationError::NotFound(_))));
        assert!(matches!(read_audience(&host, &config, &creds, "1", "x"), Err(DestinationError::InvalidRequest(_))));
        assert_eq!(filter_literal(r#"a "b" \c"#), r#""a \"b\" \\c""#);
    }
}
