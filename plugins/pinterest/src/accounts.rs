//! `list-accounts`: one page of the ad accounts a connection can use.
//!
//! One Pinterest page per call (page_size 250, shared accounts included); the host's cursor is
//! Pinterest's `bookmark`, passed back unchanged.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::types::{Account, AccountPage, Credentials, DestinationError, PluginConfig};

use crate::client::{Client, Pinterest};
use crate::wire::AdAccount;

/// A Pinterest ad account as the host's `account`.
pub fn to_account(a: AdAccount) -> Account {
    Account { name: a.name.unwrap_or_default(), id: a.id, permissions: a.permissions }
}

/// One page of accounts, starting at `cursor` (a Pinterest bookmark).
pub fn list_accounts(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    cursor: Option<&str>,
) -> Result<AccountPage, DestinationError> {
    let api = Pinterest::new(Client::new(host, config), &creds.access_token)?;
    let page = api.ad_accounts(cursor.filter(|c| !c.is_empty()))?;
    Ok(AccountPage {
        accounts: page.items.into_iter().map(to_account).collect(),
        next_cursor: page.next_cursor.filter(|c| !c.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, assert_no_secrets_logged, config, creds, fail, ok};

    #[test]
    fn first_and_next_pages() {
        let host = FakeHost::new(vec![
            ok(json!({"items": [{"id": "549755885175", "name": "Acme", "permissions": ["OWNER"],
                                 "owner": {"id": "1", "username": "acme"}}],
                      "bookmark": "bm1"})),
            ok(json!({"items": [{"id": "549755885176"}], "bookmark": null})),
        ]);
        let first = list_accounts(&host, &config(), &creds(), None);
        let first = match first {
            Ok(p) => p,
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(first.next_cursor.as_deref(), Some("bm1"));
        assert_eq!(
            first.accounts,
            vec![Account { id: "549755885175".into(), name: "Acme".into(), permissions: vec!["OWNER".into()] }]
        );
        let second = list_accounts(&host, &config(), &creds(), Some("bm1"));
        assert!(second.is_ok_and(|p| p.next_cursor.is_none() && p.accounts[0].name.is_empty()));
        assert_eq!(
            host.call(0),
            ("GET".into(), "http://sandbox.test/v5/ad_accounts?page_size=250&include_shared_accounts=true".into())
        );
        assert_eq!(
            host.call(1).1,
            "http://sandbox.test/v5/ad_accounts?page_size=250&include_shared_accounts=true&bookmark=bm1"
        );
        assert_eq!(host.header(0, "authorization").as_deref(), Some("Bearer pina_secret_token"));
    }

    #[test]
    fn errors_are_mapped_and_logged_with_the_request_id() {
        let host = FakeHost::new(vec![fail(401, 1104, "Access token expired.")]);
        let result = list_accounts(&host, &config(), &creds(), None);
        assert!(
            matches!(result, Err(DestinationError::Unauthorized(m)) if m.starts_with("access token invalid or expired"))
        );
        assert!(host.logs.borrow()[0].1.contains("x-pinterest-rid rid-1"));
        assert_no_secrets_logged(&host);
    }

    #[test]
    fn transport_failures_are_transient() {
        let host = FakeHost::new(vec![Err(audience_plugin_sdk::http_client::HttpError::Timeout)]);
        assert!(matches!(list_accounts(&host, &config(), &creds(), None), Err(DestinationError::Transient(_))));
    }
}
