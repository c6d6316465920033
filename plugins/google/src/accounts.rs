//! `list-accounts`: the Google Ads accounts the connection can deliver into.
//!
//! The Data Manager API cannot list accounts, so the Google Ads API does it (the only Ads API
//! use left): `customers:listAccessibleCustomers` names the customers the user holds directly
//! (not paged), and for each of them a `googleAds:search` over `customer_client` (with
//! `login-customer-id` = that customer) gives its name, whether it is a manager, and, for a
//! manager, every account under it at any depth (fixed pages of up to 10,000 rows with
//! `nextPageToken`):
//!
//! ```text
//! SELECT customer_client.id, customer_client.descriptive_name, customer_client.manager,
//!        customer_client.level, customer_client.status, customer_client.test_account
//! FROM customer_client
//! ```
//!
//! Ids (see [`crate::config`]): the customer itself (level 0) is `"<cid>"`; an account under a
//! manager is `"<client>@<manager>"`, the manager being the login account for every later call.
//! Accounts whose status is not `ENABLED` (cancelled, suspended, closed) are left out.
//! Permissions, in Google's absence of a word for it: `DIRECT` or `VIA_MANAGER`, plus `MANAGER`
//! for a manager account and `TEST_ACCOUNT` for a test account.
//!
//! **Paging.** Each call is short: one `listAccessibleCustomers` and one search page. The
//! cursor says where the walk is: `"<i>"` (the i-th accessible customer, ordered by id, from its
//! first page) or `"<i>:<pageToken>"` (that customer's next page). A customer the search refuses
//! for reasons of its own (not enabled, no permission: `action-required`, `not-found`,
//! `invalid-request`) is skipped with a warning, so one cancelled account does not hide the
//! others; throttling, transient failures and an invalid token end the call.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::log::Level;
use audience_plugin_sdk::text::excerpt;
use audience_plugin_sdk::types::{Account, AccountPage, Credentials, DestinationError, PluginConfig};

use crate::client::{Google, message_of};
use crate::wire::CustomerClient;

/// The hierarchy query run in each accessible customer.
pub const CLIENTS_QUERY: &str = "SELECT customer_client.id, customer_client.descriptive_name, \
     customer_client.manager, customer_client.level, customer_client.status, customer_client.test_account FROM \
     customer_client";

/// Where a `list-accounts` walk is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// The index of the accessible customer (ordered by id).
    pub customer: usize,
    /// The search page token within it; none for its first page.
    pub page_token: Option<String>,
}

impl Cursor {
    /// Parse a cursor this module made.
    pub fn parse(raw: Option<&str>) -> Result<Self, DestinationError> {
        let Some(raw) = raw.map(str::trim).filter(|c| !c.is_empty()) else {
            return Ok(Self { customer: 0, page_token: None });
        };
        let (index, token) = match raw.split_once(':') {
            Some((index, token)) => (index, Some(token.to_string()).filter(|t| !t.is_empty())),
            None => (raw, None),
        };
        let customer = index.parse().map_err(|_| {
            DestinationError::InvalidRequest(format!(
                "'{}' is not a list-accounts cursor of the Google plugin",
                excerpt(raw, 40)
            ))
        })?;
        Ok(Self { customer, page_token: token })
    }

    /// The cursor's text.
    pub fn render(&self) -> String {
        match &self.page_token {
            Some(token) => format!("{}:{token}", self.customer),
            None => self.customer.to_string(),
        }
    }
}

fn shown_id(id: &str) -> String {
    if id.len() == 10 { format!("{}-{}-{}", &id[..3], &id[3..6], &id[6..]) } else { id.to_string() }
}

/// The account a row of `customer`'s hierarchy stands for; none when it is not usable.
pub fn account_of(customer: &str, row: &CustomerClient) -> Option<Account> {
    let id = row.id.as_deref().map(str::trim).filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))?;
    if row.status.as_deref().is_some_and(|s| s != "ENABLED") {
        return None;
    }
    let direct = id == customer || row.level == Some(0);
    let mut permissions = vec![if direct { "DIRECT" } else { "VIA_MANAGER" }.to_string()];
    if row.manager == Some(true) {
        permissions.push("MANAGER".into());
    }
    if row.test_account == Some(true) {
        permissions.push("TEST_ACCOUNT".into());
    }
    let name = row
        .descriptive_name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map_or_else(|| format!("Google Ads account {}", shown_id(id)), str::to_string);
    let id = if direct { id.to_string() } else { format!("{id}@{customer}") };
    Some(Account { id, name, permissions })
}

/// One page of the accounts the connection can use.
pub fn list_accounts(
    host: &dyn Host,
    config: &PluginConfig,
    creds: &Credentials,
    cursor: Option<&str>,
) -> Result<AccountPage, DestinationError> {
    let cursor = Cursor::parse(cursor)?;
    let google = Google::new(host, config, creds)?;
    let customers = google.accessible_customers()?;
    let Some(customer) = customers.get(cursor.customer) else {
        return Ok(AccountPage { accounts: vec![], next_cursor: None });
    };
    let next_customer = (cursor.customer + 1 < customers.len())
        .then(|| Cursor { customer: cursor.customer + 1, page_token: None }.render());
    let page = match google.search(customer, CLIENTS_QUERY, cursor.page_token.as_deref()) {
        Ok(page) => page,
        Err(
            err @ (DestinationError::ActionRequired(_)
            | DestinationError::NotFound(_)
            | DestinationError::InvalidRequest(_)),
        ) => {
            google
                .client()
                .log(Level::Warn, &format!("Google: leaving out Google Ads account {customer}: {}", message_of(&err)));
            return Ok(AccountPage { accounts: vec![], next_cursor: next_customer });
        }
        Err(err) => return Err(err),
    };
    let mut accounts: Vec<Account> = Vec::new();
    for row in page.results.iter().filter_map(|r| r.customer_client.as_ref()) {
        if let Some(account) = account_of(customer, row)
            && !accounts.iter().any(|a| a.id == account.id)
        {
            accounts.push(account);
        }
    }
    let first_page = cursor.page_token.is_none();
    if first_page
        && !page
            .results
            .iter()
            .filter_map(|r| r.customer_client.as_ref())
            .any(|r| r.id.as_deref() == Some(customer.as_str()))
    {
        // The customer's own row was not in the answer: it is still an account the user holds.
        let own = CustomerClient { id: Some(customer.clone()), level: Some(0), ..CustomerClient::default() };
        accounts.extend(account_of(customer, &own));
    }
    let next_cursor = match page.next_page_token.filter(|t| !t.is_empty()) {
        Some(token) => Some(Cursor { customer: cursor.customer, page_token: Some(token) }.render()),
        None => next_customer,
    };
    Ok(AccountPage { accounts, next_cursor })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::{FakeHost, assert_no_secrets_logged, config, creds, fail, ok};

    fn accessible() -> Result<audience_plugin_sdk::http::Response, audience_plugin_sdk::http_client::HttpError> {
        ok(json!({"resourceNames": ["customers/9998887776", "customers/1234567890"]}))
    }

    fn row(id: &str, name: &str, manager: bool, level: u64) -> serde_json::Value {
        json!({"customerClient": {"id": id, "descriptiveName": name, "manager": manager, "level": level.to_string(),
                                  "status": "ENABLED", "testAccount": false}})
    }

    #[test]
    fn a_walk_over_direct_customers_and_manager_clients() {
        let host = FakeHost::new(vec![
            accessible(),
            ok(json!({"results": [row("1234567890", "Shop", false, 0)]})),
            accessible(),
            ok(json!({"results": [row("9998887776", "Agency", true, 0), row("1112223334", "Client A", false, 1)],
                      "nextPageToken": "page-2"})),
            accessible(),
            ok(json!({"results": [row("5556667778", "Client B", false, 2),
                {"customerClient": {"id": "4445556667", "status": "CANCELED", "level": "1"}}]})),
        ]);
        let (config, creds) = (config(), creds());
        let first = list_accounts(&host, &config, &creds, None).unwrap();
        assert_eq!(
            first.accounts,
            vec![Account { id: "1234567890".into(), name: "Shop".into(), permissions: vec!["DIRECT".into()] }]
        );
        assert_eq!(first.next_cursor.as_deref(), Some("1"));
        assert_eq!(host.header(1, "login-customer-id").as_deref(), Some("1234567890"));
        assert_eq!(host.json(1), json!({"query": CLIENTS_QUERY}));

        let second = list_accounts(&host, &config, &creds, first.next_cursor.as_deref()).unwrap();
        let ids: Vec<&str> = second.accounts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, vec!["9998887776", "1112223334@9998887776"]);
        assert_eq!(second.accounts[0].permissions, vec!["DIRECT".to_string(), "MANAGER".to_string()]);
        assert_eq!(second.accounts[1].permissions, vec!["VIA_MANAGER".to_string()]);
        assert_eq!(second.next_cursor.as_deref(), Some("1:page-2"));

        let third = list_accounts(&host, &config, &creds, second.next_cursor.as_deref()).unwrap();
        assert_eq!(third.accounts.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), vec!["5556667778@9998887776"]);
        assert_eq!(third.next_cursor, None);
        assert_eq!(host.json(5), json!({"query": CLIENTS_QUERY, "pageToken": "page-2"}));
        assert_eq!(host.header(5, "login-customer-id").as_deref(), Some("9998887776"));
    }

    #[test]
    fn an_unusable_customer_is_skipped_and_errors_that_matter_end_the_call() {
        let host = FakeHost::new(vec![
            accessible(),
            fail(
                403,
                "PERMISSION_DENIED",
                None,
                vec![json!({"@type": "x.GoogleAdsFailure",
                "errors": [{"errorCode": {"authorizationError": "CUSTOMER_NOT_ENABLED"}}]})],
            ),
            accessible(),
            ok(json!({})),
            fail(503, "UNAVAILABLE", None, vec![]),
        ]);
        let (config, creds) = (config(), creds());
        let page = list_accounts(&host, &config, &creds, None).unwrap();
        assert!(page.accounts.is_empty());
        assert_eq!(page.next_cursor.as_deref(), Some("1"));
        let page = list_accounts(&host, &config, &creds, Some("1")).unwrap();
        assert_eq!(page.accounts[0].name, "Google Ads account 999-888-7776");
        assert!(matches!(list_accounts(&host, &config, &creds, None), Err(DestinationError::Transient(_))));
        assert!(matches!(list_accounts(&host, &config, &creds, Some("x:y")), Err(DestinationError::InvalidRequest(_))));
        assert_eq!(
            list_accounts(&FakeHost::new(vec![accessible()]), &config, &creds, Some("7")).unwrap().accounts,
            vec![]
        );
        assert_no_secrets_logged(&host);
    }

    #[test]
    fn cursors_round_trip() {
        for raw in ["0", "3", "2:tok:with:colons"] {
            assert_eq!(Cursor::parse(Some(raw)).unwrap().render(), raw);
        }
        assert_eq!(Cursor::parse(None).unwrap(), Cursor { customer: 0, page_token: None });
    }
}
