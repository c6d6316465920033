//! The body of an `audienceMembers:ingest` / `:remove` request, built from prepared users.
//!
//! ```json
//! {"destinations": [{"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "<client>"},
//!                    "loginAccount": {"accountType": "GOOGLE_ADS", "accountId": "<manager>"},
//!                    "productDestinationId": "<list id>"}],
//!  "encoding": "HEX",
//!  "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"},
//!  "audienceMembers": [{"userData": {"userIdentifiers": [{"emailAddress": ".."}, {"phoneNumber": ".."},
//!                        {"address": {"givenName": "..", "familyName": "..", "regionCode": "US", "postalCode": ".."}}]},
//!                       "consent": {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_DENIED"}}]}
//! ```
//!
//! - One destination per request; `loginAccount` only for an account reached through a manager.
//! - A member is `userData` (contact info: the user's `email`, `phone` and address identifiers in
//!   their prepared order, at most 10, the address once, where its first part is),
//!   `mobileData.mobileIds` (`mobile-ad-id`, `idfa`) or `userIdData.userId` (`external-id`),
//!   by the kind of the user's first identifier. One request holds one kind (Google refuses a
//!   mix with `MULTIPLE_DATA_TYPES_NOT_ALLOWED`): the batch's kind is its first user's, and a
//!   user of another kind, or with nothing to send, is refused before anything is sent.
//! - `encoding: "HEX"` with `userData` (the prepared digests are lowercase hex).
//! - `termsOfService` on every ingest: Google requires it with user or mobile data, and it
//!   states that the operating account **has accepted the Customer Match terms**; the operator
//!   must make sure it has (Google answers a `TERMS…` error otherwise, which the plugin reports
//!   as `action-required`). Never on a remove (Google takes none there).
//! - `consent` per member from `prepared-user.consent` (`granted` / `denied` / `unspecified` →
//!   `CONSENT_GRANTED` / `CONSENT_DENIED` / `CONSENT_STATUS_UNSPECIFIED`), omitted when the user
//!   carries none, so the account's default applies. Never on a remove.
//!
//! **Size.** Google documents no byte cap, but the host refuses request bodies over 8 MiB and
//! HTTP front ends often refuse less (the conformance stand-in: 2 MB), while 10,000 contact
//! members with an email, a phone and an address take about 4 MB. So the members are split
//! into consecutive parts whose bodies stay under [`MAX_BODY_BYTES`], each sent as its own
//! request; each member's JSON is encoded once.

use audience_plugin_sdk::kinds;
use audience_plugin_sdk::types::{Consent, ConsentStatus, PreparedUser, RejectedUser};
use serde_json::{Map, Value, json};

use crate::client::Operation;
use crate::config::AccountRef;
use crate::kinds::KeyType;
use crate::prepare::MAX_IDENTIFIERS;

/// The most bytes one request body may take.
pub const MAX_BODY_BYTES: usize = 3 << 19;

fn status(s: ConsentStatus) -> &'static str {
    match s {
        ConsentStatus::Granted => "CONSENT_GRANTED",
        ConsentStatus::Denied => "CONSENT_DENIED",
        ConsentStatus::Unspecified => "CONSENT_STATUS_UNSPECIFIED",
    }
}

/// The DM `consent` of a member.
pub fn consent_json(consent: &Consent) -> Value {
    json!({"adUserData": status(consent.ad_user_data), "adPersonalization": status(consent.ad_personalization)})
}

/// The key type of a prepared user: that of its first identifier the plugin knows.
pub fn member_type(user: &PreparedUser) -> Option<KeyType> {
    user.identifiers.iter().find_map(|i| KeyType::of_kind(&i.kind))
}

fn value_of<'a>(user: &'a PreparedUser, kind: &str) -> Option<&'a str> {
    user.identifiers.iter().find(|i| i.kind == kind).map(|i| i.value.trim()).filter(|v| !v.is_empty())
}

/// The data part of a member of type `key_type` (`{"userData": ..}`, ...), or why there is none.
pub fn member_data(user: &PreparedUser, key_type: KeyType) -> Result<(&'static str, Value), String> {
    match key_type {
        KeyType::ContactId => {
            let mut identifiers: Vec<Value> = Vec::new();
            let mut address_done = false;
            for id in &user.identifiers {
                if identifiers.len() >= MAX_IDENTIFIERS {
                    break;
                }
                let value = id.value.trim();
                match id.kind.as_str() {
                    _ if value.is_empty() => {}
                    kinds::EMAIL => identifiers.push(json!({"emailAddress": value})),
                    kinds::PHONE => identifiers.push(json!({"phoneNumber": value})),
                    kinds::FIRST_NAME | kinds::LAST_NAME | kinds::COUNTRY | kinds::POSTAL_CODE if !address_done => {
                        address_done = true;
                        let parts = (
                            value_of(user, kinds::FIRST_NAME),
                            value_of(user, kinds::LAST_NAME),
                            value_of(user, kinds::COUNTRY),
                            value_of(user, kinds::POSTAL_CODE),
                        );
                        if let (Some(given), Some(family), Some(region), Some(postal)) = parts {
                            identifiers.push(json!({"address": {"givenName": given, "familyName": family,
                                "regionCode": region, "postalCode": postal}}));
                        }
                    }
                    _ => {}
                }
            }
            if identifiers.is_empty() {
                return Err("no email, phone or complete address to send".into());
            }
            Ok(("userData", json!({ "userIdentifiers": identifiers })))
        }
        KeyType::MobileId => {
            let ids: Vec<&str> = user
                .identifiers
                .iter()
                .filter(|i| i.kind == kinds::MOBILE_AD_ID || i.kind == kinds::IDFA)
                .map(|i| i.value.trim())
                .filter(|v| !v.is_empty())
                .take(MAX_IDENTIFIERS)
                .collect();
            if ids.is_empty() {
                return Err("no mobile-ad-id or idfa to send".into());
            }
            Ok(("mobileData", json!({ "mobileIds": ids })))
        }
        KeyType::UserId => match value_of(user, kinds::EXTERNAL_ID) {
            Some(id) => Ok(("userIdData", json!({ "userId": id }))),
            None => Err("no external-id to send".into()),
        },
    }
}

/// The members of a batch, each encoded once, and the users refused before sending.
#[derive(Debug, Default)]
pub struct Members<'a> {
    /// The key type of every member.
    pub key_type: Option<KeyType>,
    /// Each member's user key and JSON, in the batch's order.
    pub members: Vec<(&'a str, String)>,
    /// Users that cannot be sent with the others.
    pub refused: Vec<RejectedUser>,
}

/// Encode `users` as members for `operation` (consent only on an ingest).
pub fn members(users: &[PreparedUser], operation: Operation) -> Members<'_> {
    let mut out = Members { key_type: users.iter().find_map(member_type), ..Members::default() };
    let Some(key_type) = out.key_type else {
        out.refused = users
            .iter()
            .map(|u| RejectedUser {
                key: u.key.clone(),
                reason: "the user carries no identifier Google matches on: prepare it again".into(),
            })
            .collect();
        return out;
    };
    for user in users {
        let data = match member_type(user) {
            Some(t) if t != key_type => Err(format!(
                "the user carries {}, but this batch sends {} (one Google list holds one kind): the sync's match \
                 fields changed since it was prepared",
                t.words(),
                key_type.words()
            )),
            _ => member_data(user, key_type),
        };
        match data {
            Ok((field, data)) => {
                let mut member = Map::new();
                member.insert(field.to_string(), data);
                if let (Operation::Ingest, Some(consent)) = (operation, &user.consent) {
                    member.insert("consent".to_string(), consent_json(consent));
                }
                out.members.push((user.key.as_str(), Value::Object(member).to_string()));
            }
            Err(reason) => out.refused.push(RejectedUser { key: user.key.clone(), reason }),
        }
    }
    out
}

fn product_account(id: &str) -> Value {
    json!({"accountType": "GOOGLE_ADS", "accountId": id})
}

/// The destination of a write to `list` in `account`.
pub fn destination(account: &AccountRef, list: &str) -> Value {
    let mut destination =
        json!({"operatingAccount": product_account(&account.operating), "productDestinationId": list});
    if let Some(login) = &account.login {
        destination["loginAccount"] = product_account(login);
    }
    destination
}

/// The body's text before the members (`{..., "audienceMembers":[`); after them comes `]}`.
pub fn body_prefix(operation: Operation, account: &AccountRef, list: &str, key_type: KeyType) -> String {
    let mut head = json!({ "destinations": [destination(account, list)] });
    if key_type == KeyType::ContactId {
        head["encoding"] = Value::String("HEX".into());
    }
    if operation == Operation::Ingest {
        head["termsOfService"] = json!({"customerMatchTermsOfServiceStatus": "ACCEPTED"});
    }
    let mut text = head.to_string();
    text.pop(); // the closing brace
    text.push_str(",\"audienceMembers\":[");
    text
}

/// The members split into consecutive parts whose bodies (with `prefix`) stay under
/// [`MAX_BODY_BYTES`] (a single member over it still makes a part of its own).
pub fn parts<'m, 'a>(prefix: &str, members: &'m [(&'a str, String)]) -> Vec<&'m [(&'a str, String)]> {
    let mut parts = Vec::new();
    let (mut start, mut size) = (0, prefix.len() + 2);
    for (i, (_, json)) in members.iter().enumerate() {
        let added = json.len() + 1;
        if i > start && size + added > MAX_BODY_BYTES {
            parts.push(&members[start..i]);
            start = i;
            size = prefix.len() + 2;
        }
        size += added;
    }
    if start < members.len() {
        parts.push(&members[start..]);
    }
    parts
}

/// The body of one request: `prefix`, the members' JSON joined by commas, `]}`.
pub fn body(prefix: &str, part: &[(&str, String)]) -> Vec<u8> {
    let len = prefix.len() + 2 + part.iter().map(|(_, j)| j.len() + 1).sum::<usize>();
    let mut body = String::with_capacity(len);
    body.push_str(prefix);
    for (i, (_, json)) in part.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(json);
    }
    body.push_str("]}");
    body.into_bytes()
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::types::Identifier;

    use super::*;

    fn user(key: &str, ids: &[(&str, &str)], consent: Option<Consent>) -> PreparedUser {
        PreparedUser {
            key: key.into(),
            identifiers: ids.iter().map(|(k, v)| Identifier { kind: (*k).into(), value: (*v).into() }).collect(),
            consent,
        }
    }

    const H: &str = "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a";

    #[test]
    fn an_ingest_body() {
        let consent = Consent { ad_user_data: ConsentStatus::Granted, ad_personalization: ConsentStatus::Denied };
        let users = vec![
            user(
                "a",
                &[
                    ("email", H),
                    ("first-name", "g"),
                    ("last-name", "f"),
                    ("country", "US"),
                    ("postal-code", "94103"),
                    ("phone", "p"),
                ],
                Some(consent),
            ),
            user("b", &[("phone", "p2")], None),
            user("c", &[("idfa", "C0FFEE00-0000-4000-8000-0000000000AB")], None),
            user("d", &[("first-name", "g")], None),
        ];
        let m = members(&users, Operation::Ingest);
        assert_eq!(m.key_type, Some(KeyType::ContactId));
        assert_eq!(m.refused.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), vec!["c", "d"]);
        let account = AccountRef::parse("1112223334@9998887776").unwrap();
        let prefix = body_prefix(Operation::Ingest, &account, "42", KeyType::ContactId);
        let body: Value = serde_json::from_slice(&body(&prefix, &m.members)).unwrap();
        assert_eq!(
            body,
            json!({
                "destinations": [{"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1112223334"},
                                  "loginAccount": {"accountType": "GOOGLE_ADS", "accountId": "9998887776"},
                                  "productDestinationId": "42"}],
                "encoding": "HEX",
                "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"},
                "audienceMembers": [
                    {"userData": {"userIdentifiers": [{"emailAddress": H},
                        {"address": {"givenName": "g", "familyName": "f", "regionCode": "US", "postalCode": "94103"}},
                        {"phoneNumber": "p"}]},
                     "consent": {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_DENIED"}},
                    {"userData": {"userIdentifiers": [{"phoneNumber": "p2"}]}}
                ]
            })
        );
    }

    #[test]
    fn remove_bodies_and_other_kinds() {
        let account = AccountRef::parse("1234567890").unwrap();
        let consent = Consent { ad_user_data: ConsentStatus::Unspecified, ad_personalization: ConsentStatus::Granted };
        let users = vec![
            user("m", &[("mobile-ad-id", "a-id"), ("idfa", "I-ID")], Some(consent)),
            user("x", &[("email", H)], None),
        ];
        let m = members(&users, Operation::Remove);
        let prefix = body_prefix(Operation::Remove, &account, "7", KeyType::MobileId);
        let body: Value = serde_json::from_slice(&body(&prefix, &m.members)).unwrap();
        assert_eq!(
            body,
            json!({"destinations": [{"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
                                     "productDestinationId": "7"}],
                   "audienceMembers": [{"mobileData": {"mobileIds": ["a-id", "I-ID"]}}]})
        );
        assert!(m.refused[0].reason.contains("match fields changed"));
        let one = [user("u", &[("external-id", "C-42")], None)];
        let ids = members(&one, Operation::Ingest);
        assert_eq!(ids.members[0].1, r#"{"userIdData":{"userId":"C-42"}}"#);
        let unknown = [user("n", &[("gender", "f")], None)];
        let none = members(&unknown, Operation::Ingest);
        assert_eq!(none.refused.len(), 1);
    }

    #[test]
    fn parts_stay_under_the_cap() {
        let member = format!(r#"{{"userData":{{"userIdentifiers":[{{"emailAddress":"{H}"}}]}}}}"#);
        let members: Vec<(&str, String)> = (0..40_000).map(|_| ("k", member.clone())).collect();
        let prefix = "x".repeat(200);
        let parts = parts(&prefix, &members);
        assert!(parts.len() > 1);
        assert_eq!(parts.iter().map(|p| p.len()).sum::<usize>(), members.len());
        for part in &parts {
            assert!(body(&prefix, part).len() <= MAX_BODY_BYTES);
        }
        assert_eq!(super::parts(&prefix, &members[..3]).len(), 1);
        assert!(super::parts(&prefix, &[]).is_empty());
    }
}
