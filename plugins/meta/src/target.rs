//! `check-target`: every reason a sync's target cannot work, before it runs. Creates nothing.
//!
//! | part          | checked                                                                       |
//! |---------------|-------------------------------------------------------------------------------|
//! | `identifiers` | at least one of the sync's kinds is one Meta matches on                       |
//! | `credentials` | the token holds `ads_management` (read live with `debug_token` when the app is configured, else from the stored scopes; unknown scopes are not a problem) |
//! | `account`     | the account is visible to the token (`GET /act_<n>`), ACTIVE (`account_status` 1), and its business accepted the Custom Audience terms (`tos_accepted.custom_audience_tos` = 1; else a problem with the terms link) |
//! | `audience`    | with `spec.id`: it exists, is a customer-file (CUSTOM) audience, and is not unusable; without: the CUSTOM audience named so exists and is not unusable, or it may be created (`create-if-missing`, and the account holds fewer than 500 customer-file audiences) |
//!
//! The audience is only looked at when the account is visible. Errors that say nothing about
//! the target are returned as errors, not problems: an invalid or expired token (code 190 /
//! 102: the host renews it), throttling, transient failures and a deprecated API version.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::types::{
    AudienceSpec, AudienceState, Credentials, DestinationError, PluginConfig, TargetPart, TargetProblem,
};

use crate::audiences::{MAX_CUSTOMER_FILE_AUDIENCES, by_id, scan, to_audience};
use crate::client::{Failure, Graph, message_of};
use crate::config::account_number;
use crate::errors::tos_link;
use crate::kinds::{SUPPORTED, is_supported};
use crate::manifest::ADS_MANAGEMENT;
use crate::oauth::live_scopes;
use crate::wire::{AD_ACCOUNT_CHECK_FIELDS, AdAccount};

fn problem(part: TargetPart, message: impl Into<String>) -> TargetProblem {
    TargetProblem { part, message: message.into() }
}

/// The problem a failed call stands for, or the error when it says nothing about the target.
fn classify(failure: Failure, part: TargetPart) -> Result<TargetProblem, DestinationError> {
    use DestinationError as E;
    match (&failure.error, failure.code) {
        (E::Unauthorized(_), Some(294)) => Ok(problem(TargetPart::Credentials, message_of(&failure.error))),
        (E::Unauthorized(_), Some(10 | 200..=299)) => Ok(problem(TargetPart::Account, message_of(&failure.error))),
        (E::ActionRequired(m), Some(200)) => Ok(problem(TargetPart::Account, m.clone())),
        (E::InvalidRequest(_), Some(2635)) => Err(failure.error),
        (E::NotFound(m) | E::ActionRequired(m) | E::InvalidRequest(m), _) => Ok(problem(part, m.clone())),
        _ => Err(failure.error),
    }
}

fn status_name(status: i64) -> &'static str {
    match status {
        1 => "ACTIVE",
        2 => "DISABLED",
        3 => "UNSETTLED",
        7 => "PENDING_RISK_REVIEW",
        8 => "PENDING_SETTLEMENT",
        9 => "IN_GRACE_PERIOD",
        100 => "PENDING_CLOSURE",
        101 => "CLOSED",
        102 => "PENDING_SETTLEMENT",
        _ => "not active",
    }
}

fn account_problems(account: &str, found: &AdAccount, problems: &mut Vec<TargetProblem>) {
    match found.account_status {
        Some(1) | None => {}
        Some(status) => problems.push(problem(
            TargetPart::Account,
            format!(
                "ad account {account} is {} (account_status {status}); only an ACTIVE account can use custom \
                 audiences: settle or reactivate it in Ads Manager",
                status_name(status)
            ),
        )),
    }
    if !found.custom_audience_tos_accepted() {
        problems.push(problem(
            TargetPart::Account,
            format!(
                "the Custom Audience terms are not accepted for ad account {account}: someone in the business that owns \
                 it must accept them at {}",
                tos_link(account)
            ),
        ));
    }
}

fn audience_state_problem(audience: &crate::wire::CustomAudience) -> Option<TargetProblem> {
    let view = to_audience(audience, false);
    (view.state == AudienceState::Unusable).then(|| {
        let flagged = audience.operation_status.as_ref().and_then(|s| s.code) == Some(471);
        let advice = if flagged {
            "appeal in Ads Manager, or pick or create another audience"
        } else {
            "pick or create another audience"
        };
        problem(
            TargetPart::Audience,
            format!(
                "Meta will not use custom audience '{}' ({}): {}; {advice}",
                view.name,
                view.id,
                view.status_detail.as_deref().unwrap_or("unusable")
            ),
        )
    })
}

/// Every problem with the target `spec` in `account_id` (empty: it can run).
pub fn check_target(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    account_id: &str,
    spec: &AudienceSpec,
) -> Result<Vec<TargetProblem>, DestinationError> {
    let mut problems = Vec::new();
    if !spec.identifiers.iter().any(|k| is_supported(k)) {
        let asked = if spec.identifiers.is_empty() { "none".to_string() } else { spec.identifiers.join(", ") };
        problems.push(problem(
            TargetPart::Identifiers,
            format!("none of the sync's match fields ({asked}) is one Meta matches on ({})", SUPPORTED.join(", ")),
        ));
    }
    let account = match account_number(account_id) {
        Ok(account) => account,
        Err(err) => {
            problems.push(problem(TargetPart::Account, message_of(&err)));
            return Ok(problems);
        }
    };
    let graph = Graph::new(host, config, creds)?;
    let scopes =
        live_scopes(host, config, &creds.access_token).or_else(|| Some(creds.scopes.clone()).filter(|s| !s.is_empty()));
    if let Some(scopes) = scopes
        && !scopes.iter().any(|s| s == ADS_MANAGEMENT)
    {
        problems.push(problem(
            TargetPart::Credentials,
            "the connection lacks the ads_management permission, which adding users to audiences needs: log in again \
             and grant it",
        ));
    }
    match graph.ad_account(account, AD_ACCOUNT_CHECK_FIELDS) {
        Ok(found) => account_problems(account, &found, &mut problems),
        Err(failure) => {
            let mut found = classify(failure, TargetPart::Account)?;
            if found.part == TargetPart::Account && !found.message.contains(&format!("ad account {account}")) {
                found.message = format!("ad account {account}: {}", found.message);
            }
            problems.push(found);
            return Ok(problems);
        }
    }
    if let Some(id) = spec.id.as_deref().filter(|id| !id.trim().is_empty()) {
        match by_id(&graph, account, id) {
            Ok(audience) => problems.extend(audience_state_problem(&audience)),
            Err(failure) => problems.push(classify(failure, TargetPart::Audience)?),
        }
        return Ok(problems);
    }
    let found = match scan(&graph, account, &spec.name) {
        Ok(found) => found,
        Err(err) => {
            problems.push(classify(Failure::from(err), TargetPart::Audience)?);
            return Ok(problems);
        }
    };
    match &found.found {
        Some(audience) => problems.extend(audience_state_problem(audience)),
        None if !spec.create_if_missing => problems.push(problem(
            TargetPart::Audience,
            format!(
                "no customer-list custom audience named '{}' in ad account {account}, and creating it is not allowed",
                spec.name
            ),
        )),
        None if found.customer_files >= MAX_CUSTOMER_FILE_AUDIENCES => problems.push(problem(
            TargetPart::Audience,
            format!(
                "ad account {account} already holds {} customer-list audiences, Meta's maximum: delete some before \
                 one can be created",
                found.customer_files
            ),
        )),
        None => {}
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, config, creds, fail, ok};

    fn debug(scopes: &[&str]) -> serde_json::Value {
        json!({"data": {"is_valid": true, "scopes": scopes}})
    }

    fn account(status: i64, tos: bool) -> serde_json::Value {
        let tos = if tos { json!({"custom_audience_tos": 1}) } else { json!({}) };
        json!({"id": "act_1", "account_id": "1", "name": "Acme", "account_status": status, "tos_accepted": tos})
    }

    fn audiences(items: Vec<serde_json::Value>) -> serde_json::Value {
        json!({"data": items, "paging": {"cursors": {"after": "c"}}})
    }

    fn spec(id: Option<&str>, kinds: &[&str], create: bool) -> AudienceSpec {
        AudienceSpec {
            id: id.map(str::to_string),
            name: "VIPs".into(),
            identifiers: kinds.iter().map(|k| (*k).to_string()).collect(),
            description: None,
            create_if_missing: create,
        }
    }

    fn parts(problems: &[TargetProblem]) -> Vec<TargetPart> {
        problems.iter().map(|p| p.part).collect()
    }

    #[test]
    fn a_good_target_has_no_problems_and_nothing_is_created() {
        let host = FakeHost::new(vec![
            ok(debug(&["ads_management", "ads_read"])),
            ok(account(1, true)),
            ok(audiences(vec![])),
        ]);
        let problems = check_target(&host, &config(), &creds(), "1", &spec(None, &["email"], true)).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        assert!(host.sent.borrow().iter().all(|r| r.method == "GET"));
        assert!(host.url(1).starts_with("http://sandbox.test/v25.0/act_1?fields="));
        assert!(host.param(1, "fields").unwrap().contains("tos_accepted"));
    }

    #[test]
    fn every_problem_at_once() {
        let flagged = json!({"id": "6001", "name": "VIPs", "subtype": "CUSTOM",
                             "operation_status": {"code": 471, "description": "Flagged"}, "delivery_status": {"code": 200}});
        let host = FakeHost::new(vec![ok(debug(&["ads_read"])), ok(account(2, false)), ok(audiences(vec![flagged]))]);
        let problems = check_target(&host, &config(), &creds(), "act_1", &spec(None, &["shoe-size"], true)).unwrap();
        assert_eq!(
            parts(&problems),
            vec![
                TargetPart::Identifiers,
                TargetPart::Credentials,
                TargetPart::Account,
                TargetPart::Account,
                TargetPart::Audience
            ]
        );
        assert!(problems[2].message.contains("DISABLED"));
        assert!(problems[3].message.contains("https://business.facebook.com/ads/manage/customaudiences/tos/?act=1"));
        assert!(problems[4].message.contains("appeal"), "{:?}", problems[4]);
    }

    #[test]
    fn an_invisible_account_skips_the_audience() {
        let host =
            FakeHost::new(vec![ok(debug(&["ads_management"])), fail(400, 100, Some(33), "Unsupported get request")]);
        let problems = check_target(&host, &config(), &creds(), "1", &spec(None, &["email"], true)).unwrap();
        assert_eq!(parts(&problems), vec![TargetPart::Account]);
        assert!(problems[0].message.starts_with("ad account 1"), "{problems:?}");
        assert_eq!(host.count(), 2);
    }

    #[test]
    fn a_missing_audience_is_a_problem_only_when_it_may_not_be_created() {
        let host = FakeHost::new(vec![ok(debug(&["ads_management"])), ok(account(1, true)), ok(audiences(vec![]))]);
        let problems = check_target(&host, &config(), &creds(), "1", &spec(None, &["email"], false)).unwrap();
        assert_eq!(parts(&problems), vec![TargetPart::Audience]);
        let full: Vec<serde_json::Value> =
            (0..500).map(|i| json!({"id": i.to_string(), "name": format!("a{i}"), "subtype": "CUSTOM"})).collect();
        let host = FakeHost::new(vec![ok(debug(&["ads_management"])), ok(account(1, true)), ok(audiences(full))]);
        let problems = check_target(&host, &config(), &creds(), "1", &spec(None, &["email"], true)).unwrap();
        assert!(problems.len() == 1 && problems[0].message.contains("500"), "{problems:?}");
    }

    #[test]
    fn an_audience_by_id_must_exist_and_be_custom() {
        let host =
            FakeHost::new(vec![ok(debug(&["ads_management"])), ok(account(1, true)), fail(400, 100, Some(33), "gone")]);
        let problems = check_target(&host, &config(), &creds(), "1", &spec(Some("6001"), &["email"], true)).unwrap();
        assert_eq!(parts(&problems), vec![TargetPart::Audience]);
        let host = FakeHost::new(vec![
            ok(debug(&["ads_management"])),
            ok(account(1, true)),
            ok(json!({"id": "6001", "subtype": "LOOKALIKE"})),
        ]);
        let problems = check_target(&host, &config(), &creds(), "1", &spec(Some("6001"), &["email"], true)).unwrap();
        assert!(problems[0].message.contains("LOOKALIKE"));
    }

    #[test]
    fn token_and_transient_failures_are_errors_not_problems() {
        let host = FakeHost::new(vec![ok(debug(&["ads_management"])), fail(400, 190, Some(463), "expired")]);
        assert!(matches!(
            check_target(&host, &config(), &creds(), "1", &spec(None, &["email"], true)),
            Err(DestinationError::Unauthorized(_))
        ));
        let host = FakeHost::new(vec![ok(debug(&["ads_management"])), fail(500, 2, None, "Service unavailable")]);
        assert!(matches!(
            check_target(&host, &config(), &creds(), "1", &spec(None, &["email"], true)),
            Err(DestinationError::Transient(_))
        ));
        let host = FakeHost::new(vec![ok(debug(&["ads_management"])), fail(400, 200, None, "Permissions error")]);
        let problems = check_target(&host, &config(), &creds(), "1", &spec(None, &["email"], true)).unwrap();
        assert_eq!(parts(&problems), vec![TargetPart::Account]);
    }

    #[test]
    fn unknown_scopes_are_not_a_problem_and_stored_scopes_are_used_without_an_app() {
        let mut no_app = config();
        no_app.client_secret = None;
        let mut scopeless = creds();
        scopeless.scopes = vec![];
        let host = FakeHost::new(vec![ok(account(1, true)), ok(audiences(vec![]))]);
        assert_eq!(check_target(&host, &no_app, &scopeless, "1", &spec(None, &["email"], true)), Ok(vec![]));
        let mut read_only = creds();
        read_only.scopes = vec!["ads_read".into()];
        let host = FakeHost::new(vec![ok(account(1, true)), ok(audiences(vec![]))]);
        let problems = check_target(&host, &no_app, &read_only, "1", &spec(None, &["email"], true)).unwrap();
        assert_eq!(parts(&problems), vec![TargetPart::Credentials]);
    }
}
