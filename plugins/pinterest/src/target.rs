//! `check-target`: every reason a sync's target cannot work, before it runs. Creates nothing.
//!
//! | part          | checked                                                                        |
//! |---------------|--------------------------------------------------------------------------------|
//! | `identifiers` | at least one of `spec.identifiers` is a kind Pinterest matches on; with a typed `spec.id`, the list holds the kind the sync would send (its first supported match field) |
//! | `credentials` | the granted scopes include `ads:read` and `ads:write` (when the credentials list scopes; an empty list is "unknown") and no call answered "insufficient scope" |
//! | `account`     | the ad account id is well-formed and `GET /ad_accounts/{id}` finds it for these credentials (404 / not permitted → a problem); the user's roles there are not only ones that cannot touch audiences (ANALYST, finance, catalog, profile roles) |
//! | `audience`    | with `spec.id`: the id is this plugin's, the audience and its customer list exist, and the audience is a CUSTOMER_LIST audience on that list; without: the customer list and its CUSTOMER_LIST audience named `spec.name` exist, or `create-if-missing` allows creating them |
//!
//! The audience is only looked at when the account is visible. Answers that say nothing about
//! the target are errors, not problems: an invalid or expired token (the host renews it),
//! throttling, transient failures, and the host refusing a request.
//!
//! Pinterest never reports a customer list's type, so the "another kind" check can only use
//! the type recorded in a typed audience id (one this plugin created or chose); an audience
//! picked from `search-audiences` or found by name is taken to hold the sync's kind, as
//! `upsert-audience` does.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::types::{
    AudienceSpec, Credentials, DestinationError, PluginConfig, TargetPart, TargetProblem,
};

use crate::audience_ref::{AudienceRef, is_pinterest_id};
use crate::audiences::{find_customer_list, find_list_audience, pair_problem, type_mismatch};
use crate::client::{Client, Pinterest};
use crate::errors::{LACKS_SCOPE, NOT_PERMITTED};
use crate::list_type::{ListType, no_supported_kind};
use crate::manifest::{ADS_READ, ADS_WRITE};
use crate::wire::AdAccountRoles;

/// Ad-account roles that allow no audience changes; a user holding only these cannot sync.
/// (Roles not listed, such as OWNER, ADMIN, AUDIENCE_MANAGER or CAMPAIGN_MANAGER, or ones
/// Pinterest adds later, are given the benefit of the doubt.)
pub const NON_AUDIENCE_ROLES: [&str; 11] = [
    "ANALYST",
    "SOS_READER",
    "FINANCE_MANAGER",
    "FINANCE_VIEW",
    "FINANCE_EDIT",
    "CATALOGS_MANAGER",
    "PROFILE_MANAGER",
    "PROFILE_PUBLISHER",
    "RESOURCE_PINNER_LIST_READER",
    "RESOURCE_CONVERSION_TAGS_READER",
    "BIZ_PINNER_LIST_SHARER",
];

fn problem(part: TargetPart, message: impl Into<String>) -> TargetProblem {
    TargetProblem { part, message: message.into() }
}

/// Add `found` unless it is a second credentials problem (a missing scope shows up both in the
/// granted scopes and in a refused call).
fn add(problems: &mut Vec<TargetProblem>, found: TargetProblem) {
    let repeated = found.part == TargetPart::Credentials && problems.iter().any(|p| p.part == TargetPart::Credentials);
    if !repeated {
        problems.push(found);
    }
}

/// The problem a failed call stands for, or the error when it says nothing about the target.
/// `not_found` words a 404 for people.
fn classify(
    err: DestinationError,
    part: TargetPart,
    not_found: impl FnOnce(&str) -> String,
) -> Result<TargetProblem, DestinationError> {
    match err {
        DestinationError::Unauthorized(m) if m.starts_with(LACKS_SCOPE) => Ok(problem(
            TargetPart::Credentials,
            format!("{m}; connect the Pinterest account again and grant ads:read and ads:write"),
        )),
        // A 403 without Pinterest's code: the user, not the token, is refused this account.
        DestinationError::Unauthorized(m) if m.starts_with(NOT_PERMITTED) => Ok(problem(part, m)),
        DestinationError::NotFound(m) => Ok(problem(part, not_found(&m))),
        DestinationError::ActionRequired(m) => Ok(problem(part, m)),
        DestinationError::InvalidRequest(m) if !m.starts_with("the host refused") => Ok(problem(part, m)),
        other => Err(other),
    }
}

fn scope_problems(creds: &Credentials, problems: &mut Vec<TargetProblem>) {
    if creds.scopes.is_empty() {
        return;
    }
    for (scope, needed_for) in [
        (ADS_READ, "reading ad accounts, customer lists and audiences"),
        (ADS_WRITE, "creating and updating customer lists and audiences"),
    ] {
        if !creds.scopes.iter().any(|s| s == scope) {
            problems.push(problem(
                TargetPart::Credentials,
                format!(
                    "the connection was not granted {scope}, which {needed_for} needs (granted: {}); connect the \
                     Pinterest account again and grant it",
                    creds.scopes.join(", ")
                ),
            ));
        }
    }
}

fn role_problems(account: &str, found: &AdAccountRoles, problems: &mut Vec<TargetProblem>) {
    let roles = &found.permissions;
    if !roles.is_empty() && roles.iter().all(|r| NON_AUDIENCE_ROLES.contains(&r.as_str())) {
        problems.push(problem(
            TargetPart::Account,
            format!(
                "the connected Pinterest user's roles in ad account {account} ({}) do not allow managing audiences: \
                 an admin of the account must give the user access that does (Pinterest Business Access), or \
                 connect a user who has it",
                roles.join(", ")
            ),
        ));
    }
}

fn audience_by_id(
    api: &Pinterest<'_>,
    account: &str,
    id: &str,
    list_type: Option<ListType>,
    problems: &mut Vec<TargetProblem>,
) -> Result<(), DestinationError> {
    let reference = match AudienceRef::parse(id) {
        Ok(r) => r,
        Err(DestinationError::InvalidRequest(m)) => {
            problems.push(problem(TargetPart::Audience, format!("{m}; pick the audience from the search again")));
            return Ok(());
        }
        Err(other) => return Err(other),
    };
    let audience = match api.audience(account, &reference.audience_id) {
        Ok(a) => a,
        Err(e) => {
            let id = reference.audience_id.clone();
            add(
                problems,
                classify(e, TargetPart::Audience, |_| {
                    format!("Pinterest audience {id} no longer exists in ad account {account}; pick another audience")
                })?,
            );
            return Ok(());
        }
    };
    if let Some(p) = pair_problem(&reference, &audience) {
        problems.push(problem(TargetPart::Audience, p));
    }
    if let Err(e) = api.customer_list(account, &reference.customer_list_id) {
        let list = reference.customer_list_id.clone();
        let name = audience.name.clone();
        add(
            problems,
            classify(e, TargetPart::Audience, |_| {
                format!(
                    "the customer list {list} that audience '{name}' is built on no longer exists; pick another audience"
                )
            })?,
        );
    }
    if let (Some(held), Some(wanted)) = (reference.list_type, list_type)
        && held != wanted
    {
        problems.push(problem(TargetPart::Identifiers, type_mismatch(&audience.name, held, wanted)));
    }
    Ok(())
}

fn audience_by_name(
    api: &Pinterest<'_>,
    account: &str,
    spec: &AudienceSpec,
    problems: &mut Vec<TargetProblem>,
) -> Result<(), DestinationError> {
    let name = spec.name.as_str();
    if name.trim().is_empty() {
        problems.push(problem(TargetPart::Audience, "the sync names no audience (no name and no picked id)"));
        return Ok(());
    }
    let list = match find_customer_list(api, account, name) {
        Ok(list) => list,
        Err(e) => {
            add(problems, classify(e, TargetPart::Audience, str::to_string)?);
            return Ok(());
        }
    };
    let Some(list) = list else {
        if !spec.create_if_missing {
            problems.push(problem(
                TargetPart::Audience,
                format!(
                    "no customer list named '{name}' in ad account {account}, and the sync may not create one: \
                     allow creating it or pick an existing audience"
                ),
            ));
        }
        return Ok(());
    };
    match find_list_audience(api, account, name, &list.id) {
        Ok(Some(_)) => {}
        Ok(None) if spec.create_if_missing => {}
        Ok(None) => problems.push(problem(
            TargetPart::Audience,
            format!(
                "customer list '{name}' exists in ad account {account} but no CUSTOMER_LIST audience of that name \
                 targets it, and the sync may not create one: allow creating it or pick an existing audience"
            ),
        )),
        Err(e) => add(problems, classify(e, TargetPart::Audience, str::to_string)?),
    }
    Ok(())
}

/// Every reason the sync described by `spec` cannot run in `account_id` (empty: it can).
pub fn check_target(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    spec: &AudienceSpec,
) -> Result<Vec<TargetProblem>, DestinationError> {
    let mut problems = Vec::new();
    let list_type = ListType::first_supported(&spec.identifiers);
    if list_type.is_none() {
        problems.push(problem(TargetPart::Identifiers, no_supported_kind(&spec.identifiers)));
    }
    scope_problems(creds, &mut problems);
    let account = account_id.trim();
    if !is_pinterest_id(account) {
        problems.push(problem(
            TargetPart::Account,
            format!(
                "'{}' is not a Pinterest ad account id (expected up to 18 digits)",
                audience_plugin_sdk::text::excerpt(account_id, 40)
            ),
        ));
        return Ok(problems);
    }
    let api = Pinterest::new(Client::new(host, config), &creds.access_token)?;
    match api.ad_account_roles(account) {
        Ok(found) => role_problems(account, &found, &mut problems),
        Err(e) => {
            add(
                &mut problems,
                classify(e, TargetPart::Account, |_| {
                    format!(
                        "ad account {account} is not visible to the connected Pinterest user (it does not exist, or the \
                     user has no access to it): pick one of the connection's accounts"
                    )
                })?,
            );
            return Ok(problems);
        }
    }
    match spec.id.as_deref().map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => audience_by_id(&api, account, id, list_type, &mut problems)?,
        None => audience_by_name(&api, account, spec, &mut problems)?,
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::kinds::{EMAIL, MOBILE_AD_ID, PHONE, list};
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, config, creds, fail, ok};

    const ACCOUNT: &str = "549755885175";

    fn spec(identifiers: &[&str], create: bool) -> AudienceSpec {
        AudienceSpec {
            id: None,
            name: "VIPs".into(),
            identifiers: list(identifiers),
            description: None,
            create_if_missing: create,
        }
    }

    fn picked(id: &str, identifiers: &[&str]) -> AudienceSpec {
        AudienceSpec { id: Some(id.into()), ..spec(identifiers, false) }
    }

    fn account(
        roles: &[&str],
    ) -> Result<audience_plugin_sdk::http::Response, audience_plugin_sdk::http_client::HttpError> {
        ok(json!({"id": ACCOUNT, "name": "Acme", "permissions": roles}))
    }

    fn list_audience(id: &str, list: &str) -> serde_json::Value {
        json!({"id": id, "name": "VIPs", "audience_type": "CUSTOMER_LIST", "rule": {"customer_list_id": list},
               "status": "READY", "size": 1200})
    }

    fn check(host: &FakeHost, creds: &Credentials, spec: &AudienceSpec) -> Vec<TargetProblem> {
        match check_target(host, &config(), creds, ACCOUNT, spec) {
            Ok(problems) => problems,
            Err(e) => panic!("{e:?}"),
        }
    }

    fn parts(problems: &[TargetProblem]) -> Vec<TargetPart> {
        problems.iter().map(|p| p.part).collect()
    }

    fn only_reads(host: &FakeHost) {
        for i in 0..host.count() {
            assert_eq!(host.call(i).0, "GET", "check-target must not create anything: {:?}", host.call(i));
        }
    }

    #[test]
    fn a_workable_target_has_no_problems() {
        let host = FakeHost::new(vec![
            account(&["OWNER"]),
            ok(json!({"items": [{"id": "3", "name": "VIPs"}], "bookmark": null})),
            ok(json!({"items": [list_audience("12", "3")], "bookmark": null})),
        ]);
        assert_eq!(check(&host, &creds(), &spec(&[EMAIL], false)), vec![]);
        assert_eq!(host.path(0), format!("/ad_accounts/{ACCOUNT}"));
        only_reads(&host);
        // A missing list is fine when the sync may create it: nothing is created now.
        let host = FakeHost::new(vec![account(&["ADMIN"]), ok(json!({"items": []}))]);
        assert_eq!(check(&host, &creds(), &spec(&[EMAIL], true)), vec![]);
        assert_eq!(host.count(), 2);
        only_reads(&host);
    }

    #[test]
    fn every_problem_at_once_and_a_hidden_account_is_a_problem_not_an_error() {
        let host = FakeHost::new(vec![fail(404, 2, "AdAccount not found.")]);
        let mut read_only = creds();
        read_only.scopes = vec!["ads:read".into()];
        let problems = check(&host, &read_only, &spec(&[PHONE], false));
        assert_eq!(parts(&problems), vec![TargetPart::Identifiers, TargetPart::Credentials, TargetPart::Account]);
        assert!(problems[0].message.contains("(phone)"), "{}", problems[0].message);
        assert!(problems[1].message.contains("not granted ads:write"), "{}", problems[1].message);
        assert!(problems[2].message.contains("not visible"), "{}", problems[2].message);
        assert_eq!(host.count(), 1, "the audience is not looked at in an invisible account");
    }

    #[test]
    fn roles_and_a_missing_audience_are_reported_together() {
        let host = FakeHost::new(vec![account(&["ANALYST"]), ok(json!({"items": [], "bookmark": null}))]);
        let problems = check(&host, &creds(), &spec(&[EMAIL], false));
        assert_eq!(parts(&problems), vec![TargetPart::Account, TargetPart::Audience]);
        assert!(problems[0].message.contains("(ANALYST)"), "{}", problems[0].message);
        assert!(problems[1].message.contains("no customer list named 'VIPs'"), "{}", problems[1].message);
        only_reads(&host);
    }

    #[test]
    fn a_list_without_its_audience_is_a_problem_unless_creation_is_allowed() {
        let script = || {
            vec![
                account(&["OWNER"]),
                ok(json!({"items": [{"id": "3", "name": "VIPs"}], "bookmark": null})),
                ok(json!({"items": [list_audience("12", "99")], "bookmark": null})),
            ]
        };
        let host = FakeHost::new(script());
        let problems = check(&host, &creds(), &spec(&[EMAIL], false));
        assert_eq!(parts(&problems), vec![TargetPart::Audience]);
        assert!(problems[0].message.contains("no CUSTOMER_LIST audience"), "{}", problems[0].message);
        let host = FakeHost::new(script());
        assert_eq!(check(&host, &creds(), &spec(&[EMAIL], true)), vec![]);
        only_reads(&host);
    }

    #[test]
    fn a_picked_list_of_another_kind_is_an_identifiers_problem() {
        let host = FakeHost::new(vec![
            account(&["OWNER"]),
            ok(list_audience("12", "3")),
            ok(json!({"id": "3", "name": "VIPs", "status": "READY"})),
        ]);
        let problems = check(&host, &creds(), &picked("3:12:MAID", &[EMAIL, MOBILE_AD_ID]));
        assert_eq!(parts(&problems), vec![TargetPart::Identifiers]);
        assert!(
            problems[0].message.contains("holds Android mobile ad ids (MAID)")
                && problems[0].message.contains("would send e-mail addresses"),
            "{}",
            problems[0].message
        );
        assert_eq!(host.path(1), format!("/ad_accounts/{ACCOUNT}/audiences/12"));
        assert_eq!(host.path(2), format!("/ad_accounts/{ACCOUNT}/customer_lists/3"));
        // The same pick is fine for a sync matching on mobile-ad-id first, and an untyped pick
        // (from search-audiences) is taken to hold the sync's kind.
        for (id, fields) in [("3:12:MAID", &[MOBILE_AD_ID, EMAIL][..]), ("3:12", &[EMAIL][..])] {
            let host = FakeHost::new(vec![
                account(&["OWNER"]),
                ok(list_audience("12", "3")),
                ok(json!({"id": "3", "name": "VIPs"})),
            ]);
            assert_eq!(check(&host, &creds(), &picked(id, fields)), vec![], "{id}");
        }
    }

    #[test]
    fn a_picked_audience_that_is_gone_or_moved() {
        let host = FakeHost::new(vec![account(&["OWNER"]), fail(404, 404, "Audience not found.")]);
        let problems = check(&host, &creds(), &picked("3:12:EMAIL", &[EMAIL]));
        assert_eq!(parts(&problems), vec![TargetPart::Audience]);
        assert!(problems[0].message.contains("audience 12 no longer exists"), "{}", problems[0].message);
        assert_eq!(host.count(), 2);
        let host = FakeHost::new(vec![account(&["OWNER"]), ok(list_audience("12", "4")), fail(404, 404, "gone")]);
        let problems = check(&host, &creds(), &picked("3:12", &[EMAIL]));
        assert_eq!(parts(&problems), vec![TargetPart::Audience, TargetPart::Audience]);
        assert!(problems[0].message.contains("now targets customer list 4"), "{}", problems[0].message);
        assert!(problems[1].message.contains("customer list 3"), "{}", problems[1].message);
        let host = FakeHost::new(vec![account(&["OWNER"])]);
        let problems = check(&host, &creds(), &picked("VIPs", &[EMAIL]));
        assert_eq!(parts(&problems), vec![TargetPart::Audience]);
        assert_eq!(host.count(), 1);
    }

    #[test]
    fn refusals_are_problems_and_token_trouble_is_an_error() {
        for (status, code) in [(403, 29), (403, 0)] {
            let host = FakeHost::new(vec![fail(status, code, "You are not permitted to access that resource.")]);
            let problems = check(&host, &creds(), &spec(&[EMAIL], true));
            assert_eq!(parts(&problems), vec![TargetPart::Account], "{code}");
            assert!(problems[0].message.contains("not permitted"), "{}", problems[0].message);
        }
        // A scope refusal is one credentials problem, even when the granted scopes say so too.
        let host = FakeHost::new(vec![fail(401, 3, "Insufficient scope.")]);
        let mut no_read = creds();
        no_read.scopes = vec!["ads:write".into()];
        let problems = check(&host, &no_read, &spec(&[EMAIL], true));
        assert_eq!(parts(&problems), vec![TargetPart::Credentials]);
        let host = FakeHost::new(vec![fail(401, 3, "Insufficient scope.")]);
        let mut unknown = creds();
        unknown.scopes = vec![];
        let problems = check(&host, &unknown, &spec(&[EMAIL], true));
        assert_eq!(parts(&problems), vec![TargetPart::Credentials]);
        assert!(problems[0].message.contains("grant ads:read and ads:write"), "{}", problems[0].message);
        for (response, expired) in [(fail(401, 1104, "Access token expired."), true), (fail(429, 8, "slow"), false)] {
            let host = FakeHost::new(vec![response]);
            match check_target(&host, &config(), &creds(), ACCOUNT, &spec(&[EMAIL], true)) {
                Err(DestinationError::Unauthorized(_)) if expired => {}
                Err(DestinationError::RateLimited(_)) if !expired => {}
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_bare_answer_still_finds_the_missing_audience() {
        // What a partner stand-in answering `200 {}` to everything looks like.
        let host = FakeHost::new(vec![ok(json!({})), ok(json!({}))]);
        let problems = check(&host, &creds(), &spec(&[EMAIL], false));
        assert_eq!(parts(&problems), vec![TargetPart::Audience]);
    }

    #[test]
    fn a_malformed_account_id_is_a_problem_without_a_request() {
        let host = FakeHost::new(vec![]);
        let problems = check_target(&host, &config(), &creds(), "act_12", &spec(&[EMAIL], true));
        assert!(matches!(problems.as_deref(), Ok([p]) if p.part == TargetPart::Account), "{problems:?}");
        assert_eq!(host.count(), 0);
    }
}
