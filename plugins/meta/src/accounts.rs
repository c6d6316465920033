//! `list-accounts`: the ad accounts the token's user (or system user) is assigned to.
//!
//! `GET /me/adaccounts?fields=id,account_id,name,account_status,currency,timezone_name,business,
//! user_tasks&limit=100&after=<cursor>`. The host's cursor is Meta's `after` cursor, passed back
//! unchanged; the listing ends only when `paging.next` is absent. Meta's pages may be short or
//! empty while more follow, so one call fetches up to [`MAX_FETCHES`] pages until it has at
//! least one account, rather than hand the host an empty page. An account's id is the bare
//! number (`account_id`, what Ads Manager shows); every call accepts `act_<n>` too. Its
//! permissions are Meta's `user_tasks` (MANAGE, ADVERTISE, ANALYZE, ...).

use audience_plugin_sdk::Host;
use audience_plugin_sdk::types::{Account, AccountPage, Credentials, DestinationError, PluginConfig};

use crate::client::Graph;
use crate::paging::search;
use crate::wire::AdAccount;

/// The most Graph pages one `list-accounts` call fetches.
pub const MAX_FETCHES: usize = 5;

/// An ad account as the host's `account`.
pub fn to_account(a: AdAccount) -> Option<Account> {
    let id = a.number()?;
    Some(Account { name: a.name.unwrap_or_default(), id, permissions: a.user_tasks })
}

/// One page of accounts, starting at `cursor` (a Graph `after` cursor).
pub fn list_accounts(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    cursor: Option<&str>,
) -> Result<AccountPage, DestinationError> {
    let graph = Graph::new(host, config, creds)?;
    let page =
        search(cursor, 1, MAX_FETCHES, |after| Ok(graph.ad_accounts(after)?), |a: &AdAccount| a.number().is_some())?;
    Ok(AccountPage { accounts: page.items.into_iter().filter_map(to_account).collect(), next_cursor: page.after })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, assert_no_secrets_logged, config, creds, fail, ok};

    fn account(n: u64, name: &str) -> serde_json::Value {
        json!({"id": format!("act_{n}"), "account_id": n.to_string(), "name": name, "account_status": 1,
               "currency": "USD", "user_tasks": ["MANAGE", "ADVERTISE"]})
    }

    #[test]
    fn pages_follow_the_after_cursor_until_next_is_absent() {
        let host = FakeHost::new(vec![
            ok(
                json!({"data": [account(1, "Acme")], "paging": {"cursors": {"after": "c1"}, "next": "http://sandbox.test/next"}}),
            ),
            ok(json!({"data": [account(2, "Beta")], "paging": {"cursors": {"before": "c1", "after": "c2"}}})),
        ]);
        let first = list_accounts(&host, &config(), &creds(), None).unwrap();
        assert_eq!(first.next_cursor.as_deref(), Some("c1"));
        assert_eq!(
            first.accounts,
            vec![Account {
                id: "1".into(),
                name: "Acme".into(),
                permissions: vec!["MANAGE".into(), "ADVERTISE".into()]
            }]
        );
        let second = list_accounts(&host, &config(), &creds(), Some("c1")).unwrap();
        assert_eq!(second.next_cursor, None, "no `next`: the last page, although it has an `after` cursor");
        assert_eq!(second.accounts[0].id, "2");
        assert_eq!(
            host.url(0),
            "http://sandbox.test/v25.0/me/adaccounts?fields=id%2Caccount_id%2Cname%2Caccount_status%2Ccurrency%2C\
             timezone_name%2Cbusiness%2Cuser_tasks&limit=100"
        );
        assert!(host.url(1).ends_with("&limit=100&after=c1"));
    }

    #[test]
    fn empty_pages_with_next_are_skipped_within_a_call() {
        let host = FakeHost::new(vec![
            ok(json!({"data": [], "paging": {"cursors": {"after": "c0"}, "next": "x"}})),
            ok(json!({"data": [], "paging": {"cursors": {"after": "c0"}, "next": "x"}})),
            ok(json!({"data": [account(3, "Gamma")], "paging": {"cursors": {"after": "c3"}, "next": "x"}})),
        ]);
        let page = list_accounts(&host, &config(), &creds(), None).unwrap();
        assert_eq!(page.accounts.len(), 1);
        assert_eq!(page.next_cursor.as_deref(), Some("c3"));
        assert_eq!(host.count(), 3);
    }

    #[test]
    fn errors_are_mapped() {
        let host = FakeHost::new(vec![fail(400, 190, Some(460), "Error validating access token")]);
        let err = list_accounts(&host, &config(), &creds(), None).unwrap_err();
        assert!(matches!(&err, DestinationError::Unauthorized(m) if m.contains("password")), "{err:?}");
        assert_no_secrets_logged(&host);
    }
}
