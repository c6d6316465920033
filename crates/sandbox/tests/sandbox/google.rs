//! The Google Customer Match stand-in over real HTTP: OAuth, Google Ads API account discovery,
//! Data Manager user lists, ingestion with its fast-fail checks, request status, quotas and
//! faults. Time-dependent behaviour is driven by the sandbox clock, never by sleeping.

use std::collections::HashMap;
use std::time::Duration;

use audience_sandbox::google::{
    GoogleConfig, GoogleFault, GoogleHandle, GoogleSandbox, GoogleService, QuotaBucket, QuotaLimits, UploadKeyType,
};
use reqwest::header::HeaderMap;
use reqwest::{Client, RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::common::hashed;

const REDIRECT: &str = "http://localhost:9999/callback";
const ADWORDS: &str = GoogleHandle::ADWORDS_SCOPE;
const DATAMANAGER: &str = GoogleHandle::DATAMANAGER_SCOPE;
/// `sha256("alexz@example.com")`, hex and Base64, from Google's data-manager-python tests.
const ALEX_HEX: &str = "509e933019bb285a134a9334b8bb679dff79d0ce023d529af4bd744d47b4fd8a";
const ALEX_B64: &str = "UJ6TMBm7KFoTSpM0uLtnnf950M4CPVKa9L10TUe0/Yo=";
/// `sha256("+18005550100")`.
const PHONE_HEX: &str = "fb4f73a6ec5fdb7077d564cdd22c3554b43ce49168550c3b12c547b78c517b30";

struct Google {
    sandbox: GoogleSandbox,
    handle: GoogleHandle,
    http: Client,
    token: String,
}

async fn start(config: GoogleConfig) -> Google {
    let sandbox = GoogleSandbox::start(config).await.expect("sandbox starts");
    let handle = sandbox.handle();
    let token = handle.issue_tokens(&[ADWORDS, DATAMANAGER]).access_token;
    let http = Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client builds");
    Google { sandbox, handle, http, token }
}

async fn send(request: RequestBuilder) -> (StatusCode, Value, HeaderMap) {
    let response = request.send().await.expect("request is answered");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body is read");
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), headers)
}

/// The `ErrorInfo` detail of an error body.
fn error_info(body: &Value) -> Value {
    detail(body, "type.googleapis.com/google.rpc.ErrorInfo")
}

fn detail(body: &Value, kind: &str) -> Value {
    body["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["@type"] == kind)
        .cloned()
        .unwrap_or(Value::Null)
}

/// The field violations of a 400, as `(field, reason)`.
fn violations(body: &Value) -> Vec<(String, String)> {
    let bad = detail(body, "type.googleapis.com/google.rpc.BadRequest");
    bad["fieldViolations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| (v["field"].as_str().unwrap_or("").to_owned(), v["reason"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// The Ads error code of a `GoogleAdsFailure` body, e.g. `("authorizationError", "USER_PERMISSION_DENIED")`.
fn ads_code(body: &Value) -> (String, String) {
    let code = &body["error"]["details"][0]["errors"][0]["errorCode"];
    let (category, value) = code.as_object().and_then(|o| o.iter().next()).expect("an Ads error code");
    (category.clone(), value.as_str().unwrap_or("").to_owned())
}

fn contact(emails: &[&str]) -> Value {
    let identifiers: Vec<Value> = emails.iter().map(|e| json!({"emailAddress": e})).collect();
    json!({"userData": {"userIdentifiers": identifiers}})
}

impl Google {
    fn dm(&self, path: &str) -> String {
        format!("{}/v1{path}", self.handle.datamanager_url())
    }

    fn ads(&self, path: &str) -> String {
        format!("{}/v25{path}", self.handle.googleads_url())
    }

    fn account(&self) -> String {
        self.handle.accessible_customer_ids()[0].clone()
    }

    fn lists_url(&self, account: &str) -> String {
        self.dm(&format!("/accountTypes/GOOGLE_ADS/accounts/{account}/userLists"))
    }

    async fn create_list(&self, account: &str, name: &str) -> String {
        let body = json!({
            "displayName": name,
            "membershipDuration": "2592000s",
            "ingestedUserListInfo": {"uploadKeyTypes": ["CONTACT_ID"], "contactIdInfo": {"dataSourceType": "DATA_SOURCE_TYPE_FIRST_PARTY"}},
        });
        let (status, list, _) =
            send(self.http.post(self.lists_url(account)).bearer_auth(&self.token).json(&body)).await;
        assert_eq!(status, StatusCode::OK, "{list}");
        list["id"].as_str().expect("list id").to_owned()
    }

    fn destination(account: &str, list: &str) -> Value {
        json!({"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": account}, "productDestinationId": list})
    }

    async fn post_dm(&self, call: &str, body: &Value) -> (StatusCode, Value) {
        let (status, body, _) = send(self.http.post(self.dm(call)).bearer_auth(&self.token).json(body)).await;
        (status, body)
    }

    async fn ingest(&self, account: &str, list: &str, members: Vec<Value>) -> (StatusCode, Value) {
        let body = json!({
            "destinations": [Self::destination(account, list)],
            "audienceMembers": members,
            "consent": {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"},
            "encoding": "HEX",
            "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"},
        });
        self.post_dm("/audienceMembers:ingest", &body).await
    }

    async fn status(&self, request_id: &str) -> (StatusCode, Value) {
        let url = self.dm("/requestStatus:retrieve");
        let (status, body, _) =
            send(self.http.get(url).query(&[("requestId", request_id)]).bearer_auth(&self.token)).await;
        (status, body)
    }

    async fn search(&self, customer: &str, login: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let mut request =
            self.http.post(self.ads(&format!("/customers/{customer}/googleAds:search"))).bearer_auth(&self.token);
        if let Some(login) = login {
            request = request.header("login-customer-id", login);
        }
        let (status, body, _) = send(request.header("developer-token", "ignored").json(body)).await;
        (status, body)
    }
}

#[tokio::test]
async fn oauth_code_flow_refresh_revoke_and_invalid_grant() {
    let env = start(GoogleConfig::default()).await;
    let scope = format!("{DATAMANAGER} {ADWORDS}");
    let (status, _, headers) = send(env.http.get(format!("{}/o/oauth2/v2/auth", env.handle.accounts_url())).query(&[
        ("client_id", GoogleHandle::DEFAULT_CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", scope.as_str()),
        ("access_type", "offline"),
        ("prompt", "consent"),
        ("state", "csrf 42"),
    ]))
    .await;
    assert_eq!(status, StatusCode::FOUND);
    let location = reqwest::Url::parse(headers["location"].to_str().expect("ascii")).expect("a URL");
    assert!(location.as_str().starts_with(REDIRECT));
    let pairs: HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs["state"], "csrf 42");

    let token_url = format!("{}/token", env.handle.oauth2_url());
    let exchange = |code: &str| {
        env.http.post(&token_url).form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", GoogleHandle::DEFAULT_CLIENT_ID),
            ("client_secret", GoogleHandle::DEFAULT_CLIENT_SECRET),
        ])
    };
    let (status, tokens, _) = send(exchange(&pairs["code"])).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 3599);
    assert_eq!(tokens["scope"], scope);
    let access = tokens["access_token"].as_str().expect("access token").to_owned();
    let refresh = tokens["refresh_token"].as_str().expect("refresh token").to_owned();
    let (status, reused, _) = send(exchange(&pairs["code"])).await;
    assert_eq!((status, reused["error"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_grant")));

    // An hour later the access token is dead: 401 with ACCESS_TOKEN_EXPIRED and a request id.
    let lists = env.lists_url(&env.account());
    env.handle.advance_clock(Duration::from_secs(3600));
    let (status, expired, headers) = send(env.http.get(&lists).bearer_auth(&access)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{expired}");
    assert_eq!(expired["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(error_info(&expired)["reason"], "ACCESS_TOKEN_EXPIRED");
    let request_id = error_info(&expired)["metadata"]["requestId"].as_str().expect("request id").to_owned();
    assert_eq!(headers["request-id"].to_str().ok(), Some(request_id.as_str()));

    // Refresh: a new access token, no new refresh token.
    let refresh_with = |token: &str| {
        env.http.post(&token_url).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", GoogleHandle::DEFAULT_CLIENT_ID),
            ("client_secret", GoogleHandle::DEFAULT_CLIENT_SECRET),
        ])
    };
    let (status, renewed, _) = send(refresh_with(&refresh)).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    assert!(renewed.get("refresh_token").is_none(), "{renewed}");
    assert_eq!(renewed["expires_in"], 3599);
    let fresh = renewed["access_token"].as_str().expect("access token").to_owned();
    let (status, _, _) = send(env.http.get(&lists).bearer_auth(&fresh)).await;
    assert_eq!(status, StatusCode::OK);

    // Revoking the refresh token kills the grant: invalid_grant, and its access tokens get 401.
    let (status, _, _) =
        send(env.http.post(format!("{}/revoke", env.handle.oauth2_url())).query(&[("token", &refresh)])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, dead, _) = send(refresh_with(&refresh)).await;
    assert_eq!((status, dead["error"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_grant")));
    let (status, _, _) = send(env.http.get(&lists).bearer_auth(&fresh)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, wrong, _) = send(env.http.post(&token_url).form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", "x"),
        ("client_id", GoogleHandle::DEFAULT_CLIENT_ID),
        ("client_secret", "nope"),
    ]))
    .await;
    assert_eq!((status, wrong["error"].clone()), (StatusCode::UNAUTHORIZED, json!("invalid_client")));
}

#[tokio::test]
async fn refresh_tokens_of_a_testing_app_die_after_seven_days() {
    let config =
        GoogleConfig { refresh_token_ttl: Some(Duration::from_secs(7 * 24 * 3600)), ..GoogleConfig::default() };
    let env = start(config).await;
    let refresh = env.handle.issue_tokens(&[DATAMANAGER]).refresh_token.expect("a refresh token");
    let token_url = format!("{}/token", env.handle.oauth2_url());
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", GoogleHandle::DEFAULT_CLIENT_ID),
        ("client_secret", GoogleHandle::DEFAULT_CLIENT_SECRET),
    ];
    let (status, _, _) = send(env.http.post(&token_url).form(&form)).await;
    assert_eq!(status, StatusCode::OK);
    env.handle.advance_clock(Duration::from_secs(7 * 24 * 3600));
    let (status, dead, _) = send(env.http.post(&token_url).form(&form)).await;
    assert_eq!((status, dead["error"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_grant")));
}

#[tokio::test]
async fn scopes_are_enforced_per_api_and_a_disabled_service_says_so() {
    let env = start(GoogleConfig::default()).await;
    let ads_only = env.handle.issue_tokens(&[ADWORDS]).access_token;
    let dm_only = env.handle.issue_tokens(&[DATAMANAGER]).access_token;
    let lists = env.lists_url(&env.account());
    let accessible = env.ads("/customers:listAccessibleCustomers");

    let (status, body, _) = send(env.http.get(&lists).bearer_auth(&ads_only)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    assert_eq!(error_info(&body)["reason"], "ACCESS_TOKEN_SCOPE_INSUFFICIENT");
    let (status, body, _) = send(env.http.get(&accessible).bearer_auth(&dm_only)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_info(&body)["reason"], "ACCESS_TOKEN_SCOPE_INSUFFICIENT");
    let (status, _, _) = send(env.http.get(&accessible).bearer_auth(&ads_only)).await;
    assert_eq!(status, StatusCode::OK);

    env.handle.set_service_enabled(GoogleService::DataManager, false);
    let (status, body, _) = send(env.http.get(&lists).bearer_auth(&dm_only)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let info = error_info(&body);
    assert_eq!(info["reason"], "SERVICE_DISABLED");
    assert_eq!(info["metadata"]["consumer"], format!("projects/{}", audience_sandbox::google::DEFAULT_PROJECT));
    assert!(info["metadata"]["requestId"].is_string());
    env.handle.set_service_enabled(GoogleService::DataManager, true);
    let (status, _, _) = send(env.http.get(&lists).bearer_auth(&dm_only)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) = send(env.http.get(&lists)).await;
    assert_eq!((status, error_info(&body)["reason"].clone()), (StatusCode::UNAUTHORIZED, json!("CREDENTIALS_MISSING")));
}

#[tokio::test]
async fn accounts_are_discovered_through_managers_in_fixed_pages() {
    let env = start(GoogleConfig { ads_page_size: 2, ..GoogleConfig::default() }).await;
    let (status, accessible, _) =
        send(env.http.get(env.ads("/customers:listAccessibleCustomers")).bearer_auth(&env.token)).await;
    assert_eq!(status, StatusCode::OK, "{accessible}");
    let names: Vec<String> = env.handle.accessible_customer_ids().iter().map(|id| format!("customers/{id}")).collect();
    assert_eq!(accessible["resourceNames"], json!(names));
    assert_eq!(names.len(), 3, "two plain accounts and a manager; never the manager's clients");

    let manager = env.handle.manager_ids()[0].clone();
    let client = env.handle.client_ids(&manager)[0].clone();
    let query = "SELECT customer_client.id, customer_client.descriptive_name, customer_client.manager, \
                 customer_client.level FROM customer_client WHERE customer_client.level <= 1";
    let mut rows = Vec::new();
    let mut body = json!({"query": query});
    let mut pages = 0;
    loop {
        let (status, page) = env.search(&manager, Some(&manager), &body).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        pages += 1;
        rows.extend(page["results"].as_array().cloned().unwrap_or_default());
        match page["nextPageToken"].as_str() {
            Some(token) => body = json!({"query": query, "pageToken": token}),
            None => break,
        }
    }
    assert_eq!((rows.len(), pages), (5, 3), "the manager, three clients and the sub-manager; not level 2");
    assert_eq!(rows[0]["customerClient"]["level"], "0");
    assert_eq!(rows[0]["customerClient"]["id"], manager);
    assert!(
        rows.iter().all(|r| r["customerClient"]["resourceName"].as_str().is_some_and(|n| n.starts_with("customers/")))
    );

    // A client needs its manager in login-customer-id.
    let (status, denied) = env.search(&client, None, &json!({"query": query})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(ads_code(&denied), ("authorizationError".to_owned(), "USER_PERMISSION_DENIED".to_owned()));
    assert!(denied["error"]["details"][0]["requestId"].is_string());
    let (status, own) = env.search(&client, Some(&manager), &json!({"query": query})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(own["results"].as_array().map(Vec::len), Some(1));

    // Google's paging rules.
    let (status, sized) = env.search(&manager, None, &json!({"query": query, "pageSize": 2})).await;
    assert_eq!((status, ads_code(&sized).1), (StatusCode::BAD_REQUEST, "PAGE_SIZE_NOT_SUPPORTED".to_owned()));
    let (_, first) = env.search(&manager, None, &json!({"query": query})).await;
    let token = first["nextPageToken"].as_str().expect("a next page").to_owned();
    let other = "SELECT customer_client.id FROM customer_client";
    let (_, mismatch) = env.search(&manager, None, &json!({"query": other, "pageToken": token})).await;
    assert_eq!(ads_code(&mismatch).1, "INVALID_PAGE_TOKEN");
    env.handle.advance_clock(Duration::from_secs(3 * 3600));
    let fresh = env.handle.issue_tokens(&[ADWORDS]).access_token;
    let url = env.ads(&format!("/customers/{manager}/googleAds:search"));
    let (_, expired, _) =
        send(env.http.post(&url).bearer_auth(&fresh).json(&json!({"query": query, "pageToken": token}))).await;
    assert_eq!(ads_code(&expired).1, "EXPIRED_PAGE_TOKEN");
    let (_, refused, _) =
        send(env.http.post(&url).bearer_auth(&fresh).json(&json!({"query": "SELECT user_list.id FROM user_list"})))
            .await;
    assert_eq!(ads_code(&refused), ("queryError".to_owned(), "PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE".to_owned()));
    let old = format!("{}/v21/customers:listAccessibleCustomers", env.handle.googleads_url());
    let (status, _, _) = send(env.http.get(old).bearer_auth(&fresh)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn user_lists_follow_googles_create_rules_filters_and_access() {
    let env = start(GoogleConfig::default()).await;
    let account = env.account();
    let url = env.lists_url(&account);
    let post = |body: Value| env.http.post(&url).bearer_auth(&env.token).json(&body);
    let list = env.create_list(&account, "Newsletter").await;
    let (status, read, _) = send(env.http.get(format!("{url}/{list}")).bearer_auth(&env.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["name"], format!("accountTypes/GOOGLE_ADS/accounts/{account}/userLists/{list}"));
    assert_eq!(read["membershipDuration"], "2592000s");
    assert_eq!(read["ingestedUserListInfo"]["uploadKeyTypes"], json!(["CONTACT_ID"]));
    assert_eq!(read["sizeInfo"]["displayNetworkMembersCount"], "0");

    let info = json!({"uploadKeyTypes": ["CONTACT_ID"]});
    let (status, dup, _) = send(post(json!({"displayName": "Newsletter", "ingestedUserListInfo": info}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_info(&dup)["reason"], "DISPLAY_NAME_ALREADY_USED");
    let (_, two, _) = send(post(
        json!({"displayName": "Two", "ingestedUserListInfo": {"uploadKeyTypes": ["CONTACT_ID", "USER_ID"]}}),
    ))
    .await;
    assert_eq!(
        violations(&two),
        vec![("user_list.ingested_user_list_info.upload_key_types".to_owned(), "INVALID_ARGUMENT".to_owned())]
    );
    let (_, long, _) =
        send(post(json!({"displayName": "Long", "membershipDuration": "46742400s", "ingestedUserListInfo": info})))
            .await;
    assert_eq!(error_info(&long)["reason"], "MEMBERSHIP_DURATION_TOO_LONG");
    let (_, partial, _) =
        send(post(json!({"displayName": "Odd", "membershipDuration": "90000s", "ingestedUserListInfo": info}))).await;
    assert_eq!(partial["error"]["status"], "INVALID_ARGUMENT");
    let (status, checked, _) = send(
        env.http
            .post(format!("{url}?validateOnly=true"))
            .bearer_auth(&env.token)
            .json(&json!({"displayName": "Dry", "ingestedUserListInfo": info})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{checked}");
    assert!(env.handle.find_user_list(&account, "Dry").is_none());

    env.create_list(&account, "Second").await;
    env.create_list(&account, "Third").await;
    let (status, filtered, _) =
        send(env.http.get(&url).query(&[("filter", r#"display_name = "Second""#)]).bearer_auth(&env.token)).await;
    assert_eq!(status, StatusCode::OK, "{filtered}");
    assert_eq!(filtered["userLists"].as_array().map(Vec::len), Some(1));
    assert_eq!(filtered["userLists"][0]["displayName"], "Second");
    let (_, page, _) = send(env.http.get(&url).query(&[("pageSize", "2")]).bearer_auth(&env.token)).await;
    assert_eq!(page["userLists"].as_array().map(Vec::len), Some(2));
    let token = page["nextPageToken"].as_str().expect("a second page").to_owned();
    let (_, last, _) =
        send(env.http.get(&url).query(&[("pageSize", "2"), ("pageToken", &token)]).bearer_auth(&env.token)).await;
    assert_eq!(last["userLists"].as_array().map(Vec::len), Some(1));
    assert!(last.get("nextPageToken").is_none());

    // A client account is reached through its manager's login-account, else PERMISSION_DENIED.
    let manager = env.handle.manager_ids()[0].clone();
    let client = env.handle.client_ids(&manager)[0].clone();
    let client_url = env.lists_url(&client);
    let (status, denied, _) = send(env.http.get(&client_url).bearer_auth(&env.token)).await;
    assert_eq!((status, error_info(&denied)["reason"].clone()), (StatusCode::FORBIDDEN, json!("PERMISSION_DENIED")));
    let login = format!("accountTypes/GOOGLE_ADS/accounts/{manager}");
    let (status, _, _) = send(env.http.get(&client_url).header("login-account", &login).bearer_auth(&env.token)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = send(env.http.get(format!("{url}/123")).bearer_auth(&env.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a list that does not exist is PERMISSION_DENIED");
    let patch = |mask: &str, body: Value| {
        env.http.patch(format!("{url}/{list}")).query(&[("updateMask", mask)]).bearer_auth(&env.token).json(&body)
    };
    let (status, renamed, _) =
        send(patch("displayName,membershipDuration", json!({"displayName": "News", "membershipDuration": "86400s"})))
            .await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(
        (renamed["displayName"].clone(), renamed["membershipDuration"].clone()),
        (json!("News"), json!("86400s"))
    );
    let (status, immutable, _) = send(patch(
        "ingestedUserListInfo.uploadKeyTypes",
        json!({"ingestedUserListInfo": {"uploadKeyTypes": ["USER_ID"]}}),
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{immutable}");
    assert_eq!(env.handle.find_user_list(&account, "News"), Some(list.clone()));
    let (status, _, _) = send(env.http.delete(format!("{url}/{list}")).bearer_auth(&env.token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(env.handle.find_user_list(&account, "News").is_none());
}

#[tokio::test]
async fn destinations_reach_client_accounts_through_their_manager() {
    let env = start(GoogleConfig::default()).await;
    let manager = env.handle.manager_ids()[0].clone();
    let client = env.handle.client_ids(&manager)[0].clone();
    let list = env.handle.create_user_list(&client, "Client list", UploadKeyType::ContactId).expect("list");
    let login = |account: &str| json!({"accountType": "GOOGLE_ADS", "accountId": account});
    let body = |destination: Value| {
        json!({
            "destinations": [destination],
            "audienceMembers": [contact(&[&hashed(1)])],
            "encoding": "HEX",
            "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"},
        })
    };
    let direct = Google::destination(&client, &list);
    let (status, denied) = env.post_dm("/audienceMembers:ingest", &body(direct.clone())).await;
    assert_eq!((status, error_info(&denied)["reason"].clone()), (StatusCode::FORBIDDEN, json!("PERMISSION_DENIED")));
    let mut elsewhere = direct.clone();
    elsewhere["loginAccount"] = login(&env.account());
    let (status, mismatch) = env.post_dm("/audienceMembers:ingest", &body(elsewhere)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(violations(&mismatch)[0].1, "OPERATING_ACCOUNT_LOGIN_ACCOUNT_MISMATCH");
    let mut through = direct;
    through["loginAccount"] = login(&manager);
    let (status, accepted) = env.post_dm("/audienceMembers:ingest", &body(through)).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    env.handle.finish_processing();
    assert_eq!(env.handle.member_count(&list), 1);
    assert_eq!(env.handle.max_members_per_request(), 1);
}

#[tokio::test]
async fn ingested_members_apply_when_processing_ends_and_sizes_lag() {
    let env = start(GoogleConfig::default()).await;
    let account = env.account();
    let list = env.create_list(&account, "Buyers").await;
    let with_phone =
        json!({"userData": {"userIdentifiers": [{"emailAddress": hashed(2)}, {"phoneNumber": PHONE_HEX}]}});
    let members = vec![contact(&[&hashed(1)]), with_phone, contact(&[&hashed(3).to_uppercase()])];
    let (status, accepted) = env.ingest(&account, &list, members).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    let request_id = accepted["requestId"].as_str().expect("request id").to_owned();

    let (status, processing) = env.status(&request_id).await;
    assert_eq!(status, StatusCode::OK, "{processing}");
    let entry = &processing["requestStatusPerDestination"][0];
    assert_eq!(entry["requestStatus"], "PROCESSING");
    assert!(entry.get("errorInfo").is_none());
    assert_eq!(entry["destination"]["productDestinationId"], list);
    assert_eq!(env.handle.member_count(&list), 0, "nothing applies while PROCESSING");
    assert_eq!(env.handle.pending_requests(), 1);

    env.handle.advance_clock(Duration::from_secs(5));
    let (_, done) = env.status(&request_id).await;
    let entry = &done["requestStatusPerDestination"][0];
    assert_eq!(entry["requestStatus"], "SUCCESS", "{done}");
    let ingestion = &entry["audienceMembersIngestionStatus"]["userDataIngestionStatus"];
    assert_eq!(ingestion["recordCount"], "3");
    assert_eq!(ingestion["userIdentifierCount"], "4");
    assert_eq!(ingestion["uploadMatchRateRange"], "MATCH_RATE_RANGE_61_TO_70");
    assert_eq!(env.handle.member_count(&list), 3);
    assert!(env.handle.is_member(&list, &GoogleHandle::phone_key(PHONE_HEX)));
    assert!(env.handle.is_member(&list, &GoogleHandle::email_key(&hashed(3))), "hex case does not matter");
    assert_eq!(env.handle.max_times_ingested(&list), 1, "nobody was sent twice");

    // Sizes lag behind the membership.
    let url = format!("{}/{list}", env.lists_url(&account));
    let (_, read, _) = send(env.http.get(&url).bearer_auth(&env.token)).await;
    assert_eq!(read["sizeInfo"]["displayNetworkMembersCount"], "0");
    env.handle.advance_clock(Duration::from_secs(5));
    let (_, read, _) = send(env.http.get(&url).bearer_auth(&env.token)).await;
    assert_eq!(read["sizeInfo"]["displayNetworkMembersCount"], "2", "3 members x 70 %");
    assert_eq!(read["ingestedUserListInfo"]["contactIdInfo"]["matchRatePercentage"], 70);

    // Sending a member again is visible in its count.
    let (_, again) = env.ingest(&account, &list, vec![contact(&[&hashed(1)])]).await;
    assert!(again["requestId"].is_string());
    env.handle.finish_processing();
    assert_eq!(env.handle.times_ingested(&list, &GoogleHandle::email_key(&hashed(1))), 2);
    assert_eq!(env.handle.member_count(&list), 3);
}

#[tokio::test]
async fn base64_requests_and_composite_data_are_understood() {
    let env = start(GoogleConfig::default()).await;
    let account = env.account();
    let list = env.create_list(&account, "B64").await;
    let body = json!({
        "destinations": [Google::destination(&account, &list)],
        "audienceMembers": [{"compositeData": {"userData": {"userIdentifiers": [{"emailAddress": ALEX_B64}]}}}],
        "encoding": "BASE64",
        "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"},
    });
    let (status, accepted) = env.post_dm("/audienceMembers:ingest", &body).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    env.handle.finish_processing();
    assert!(env.handle.is_member(&list, &GoogleHandle::email_key(ALEX_HEX)));
    let (_, done) = env.status(accepted["requestId"].as_str().unwrap_or("")).await;
    let composite =
        &done["requestStatusPerDestination"][0]["audienceMembersIngestionStatus"]["compositeDataIngestionStatus"];
    assert_eq!(composite["dataTypeCounts"], json!([{"type": "EMAIL", "count": "1"}]), "{done}");
}

#[tokio::test]
async fn one_bad_record_fails_the_whole_request_and_every_bad_record_is_named() {
    let env = start(GoogleConfig::default()).await;
    let account = env.account();
    let list = env.create_list(&account, "Strict").await;
    let eleven: Vec<String> = (10..21).map(hashed).collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    let members = vec![
        contact(&[&hashed(1)]),
        contact(&["dana@example.com"]),
        contact(&[&hashed(2)]),
        contact(&["abc123"]),
        json!({"userData": {"userIdentifiers": [{"address": {"givenName": hashed(4), "familyName": hashed(5), "regionCode": "US"}}]}}),
        contact(&eleven),
        json!({"userData": {"userIdentifiers": [{"address": {
            "givenName": hashed(6), "familyName": hashed(7), "regionCode": "us", "postalCode": "94107"}}]}}),
        json!({"userData": {"userIdentifiers": [{"address": {
            "givenName": hashed(6), "familyName": hashed(7), "regionCode": "US", "postalCode": "9410"}}]}}),
    ];
    let (status, refused) = env.ingest(&account, &list, members).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert_eq!(refused["error"]["status"], "INVALID_ARGUMENT");
    let found = violations(&refused);
    let expect = |field: &str, reason: &str| (field.to_owned(), reason.to_owned());
    assert_eq!(
        found,
        vec![
            expect("audience_members[1].user_data.user_identifiers[0].email_address", "INVALID_HEX_ENCODING"),
            expect("audience_members[3].user_data.user_identifiers[0].email_address", "INVALID_SHA256_FORMAT"),
            expect("audience_members[4].user_data.user_identifiers[0].address.postal_code", "REQUIRED_FIELD_MISSING"),
            expect("audience_members[5].user_data.user_identifiers", "TOO_MANY_USER_IDENTIFIERS"),
            expect("audience_members[6].user_data.user_identifiers[0].address.region_code", "INVALID_REGION_CODE"),
            expect("audience_members[7].user_data.user_identifiers[0].address.postal_code", "INVALID_POSTAL_CODE"),
        ]
    );
    let info = error_info(&refused);
    assert_eq!(
        (info["reason"].clone(), info["domain"].clone()),
        (json!("INVALID_HEX_ENCODING"), json!("datamanager.googleapis.com"))
    );
    let request_id = info["metadata"]["requestId"].as_str().expect("request id");
    assert_eq!(detail(&refused, "type.googleapis.com/google.rpc.RequestInfo")["requestId"], request_id);
    env.handle.finish_processing();
    assert_eq!(env.handle.member_count(&list), 0, "nothing of a refused request is applied");
    assert_eq!(env.handle.pending_requests(), 0);

    // Request-level checks.
    let good = vec![contact(&[&hashed(1)])];
    let mut body = json!({"destinations": [Google::destination(&account, &list)], "audienceMembers": good});
    let (_, missing) = env.post_dm("/audienceMembers:ingest", &body).await;
    let fields: Vec<String> = violations(&missing).into_iter().map(|(f, r)| format!("{f} {r}")).collect();
    assert_eq!(
        fields,
        vec![
            "encoding REQUIRED_FIELD_MISSING".to_owned(),
            "terms_of_service.customer_match_terms_of_service_status TERMS_AND_CONDITIONS_NOT_SIGNED".to_owned(),
        ]
    );
    body["encoding"] = json!("HEX");
    body["termsOfService"] = json!({"customerMatchTermsOfServiceStatus": "ACCEPTED"});
    body["audienceMembers"] =
        json!([contact(&[&hashed(1)]), {"mobileData": {"mobileIds": ["6d92078a-8246-4ba4-ae5b-76104861e7dc"]}}]);
    let (_, mixed) = env.post_dm("/audienceMembers:ingest", &body).await;
    assert_eq!(violations(&mixed), vec![expect("audience_members[1]", "MULTIPLE_DATA_TYPES_NOT_ALLOWED")]);
    body["audienceMembers"] = json!(vec![contact(&[&hashed(1)]); 10_001]);
    let (_, many) = env.post_dm("/audienceMembers:ingest", &body).await;
    assert_eq!(error_info(&many)["reason"], "TOO_MANY_AUDIENCE_MEMBERS");
    body["audienceMembers"] = json!([contact(&[&hashed(1)])]);
    body["destinations"] = json!([{"operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "123-456-7890"},
        "productDestinationId": format!("accountTypes/GOOGLE_ADS/accounts/{account}/userLists/{list}")}]);
    body["bogus"] = json!(1);
    let (_, unknown) = env.post_dm("/audienceMembers:ingest", &body).await;
    assert_eq!(violations(&unknown), vec![expect("bogus", "INVALID_ARGUMENT")]);
    if let Some(object) = body.as_object_mut() {
        object.remove("bogus");
    }
    let (_, destination) = env.post_dm("/audienceMembers:ingest", &body).await;
    assert_eq!(
        violations(&destination),
        vec![
            expect("destinations[0].operating_account.account_id", "INVALID_NUMBER_FORMAT"),
            expect("destinations[0].product_destination_id", "INVALID_USER_LIST_ID"),
        ]
    );
    let mobile_list = env.handle.create_user_list(&account, "Apps", UploadKeyType::MobileId).expect("list");
    body["destinations"] = json!([Google::destination(&account, &mobile_list)]);
    let (_, wrong_type) = env.post_dm("/audienceMembers:ingest", &body).await;
    assert_eq!(
        violations(&wrong_type),
        vec![expect("destinations[0].product_destination_id", "INVALID_USER_LIST_TYPE")]
    );
}

#[tokio::test]
async fn validate_only_checks_everything_and_applies_nothing() {
    let env = start(GoogleConfig::default()).await;
    let account = env.account();
    let list = env.create_list(&account, "Dry run").await;
    let body = json!({
        "destinations": [Google::destination(&account, &list)],
        "audienceMembers": [contact(&[&hashed(1)])],
        "encoding": "HEX",
        "termsOfService": {"customerMatchTermsOfServiceStatus": "ACCEPTED"},
        "validateOnly": true,
    });
    let (status, accepted) = env.post_dm("/audienceMembers:ingest", &body).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    let request_id = accepted["requestId"].as_str().expect("request id").to_owned();
    let (status, unknown) = env.status(&request_id).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_info(&unknown)["reason"], "INVALID_REQUEST_ID");
    let (_, nonsense) = env.status("no-such-request").await;
    assert_eq!(error_info(&nonsense)["reason"], "INVALID_REQUEST_ID");
    env.handle.finish_processing();
    assert_eq!(env.handle.member_count(&list), 0);
    let mut bad = body.clone();
    bad["audienceMembers"] = json!([contact(&["not hashed"])]);
    let (status, _) = env.post_dm("/audienceMembers:ingest", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "validateOnly still refuses bad records");
}

#[tokio::test]
async fn removal_and_remove_all_take_members_out_after_processing() {
    let env = start(GoogleConfig::default()).await;
    let account = env.account();
    let list = env.create_list(&account, "Churn").await;
    let (_, _) = env.ingest(&account, &list, (1..=3).map(|n| contact(&[&hashed(n)])).collect()).await;
    env.handle.finish_processing();
    assert_eq!(env.handle.member_count(&list), 3);

    let body = json!({
        "destinations": [Google::destination(&account, &list)],
        "audienceMembers": [contact(&[&hashed(2)])],
        "encoding": "HEX",
    });
    let (status, removed) = env.post_dm("/audienceMembers:remove", &body).await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    assert_eq!(env.handle.member_count(&list), 3, "removal waits for processing too");
    env.handle.finish_processing();
    assert_eq!(env.handle.member_count(&list), 2);
    assert!(!env.handle.is_member(&list, &GoogleHandle::email_key(&hashed(2))));
    let (_, done) = env.status(removed["requestId"].as_str().unwrap_or("")).await;
    let removal = &done["requestStatusPerDestination"][0]["audienceMembersRemovalStatus"]["userDataRemovalStatus"];
    assert_eq!(removal["recordCount"], "1", "{done}");

    let future = "2999-01-01T00:00:00Z";
    let all = |at: Option<&str>| {
        let mut body = json!({"destinations": [Google::destination(&account, &list)]});
        if let Some(at) = at {
            body["removeAsOfTime"] = json!(at);
        }
        body
    };
    let (status, refused) = env.post_dm("/audienceMembers:removeAll", &all(Some(future))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_info(&refused)["reason"], "INVALID_REMOVE_AS_OF_TIME");
    let (status, cleared) = env.post_dm("/audienceMembers:removeAll", &all(None)).await;
    assert_eq!(status, StatusCode::OK, "{cleared}");
    env.handle.finish_processing();
    assert_eq!(env.handle.member_count(&list), 0);
    let (_, done) = env.status(cleared["requestId"].as_str().unwrap_or("")).await;
    assert_eq!(done["requestStatusPerDestination"][0]["requestStatus"], "SUCCESS");
}

#[tokio::test]
async fn denied_consent_and_processing_errors_are_counted_not_added() {
    let env = start(GoogleConfig::default()).await;
    let account = env.account();
    let list = env.create_list(&account, "Consent").await;
    env.handle.fail_processing_of(&GoogleHandle::email_key(&hashed(3)), "PROCESSING_ERROR_REASON_INVALID_FORMAT");
    let mut denied = contact(&[&hashed(2)]);
    denied["consent"] = json!({"adUserData": "CONSENT_DENIED"});
    let (status, accepted) =
        env.ingest(&account, &list, vec![contact(&[&hashed(1)]), denied, contact(&[&hashed(3)])]).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    env.handle.finish_processing();
    let (_, done) = env.status(accepted["requestId"].as_str().unwrap_or("")).await;
    let entry = &done["requestStatusPerDestination"][0];
    assert_eq!(entry["requestStatus"], "PARTIAL_SUCCESS", "{done}");
    let mut counts: Vec<(String, String)> = entry["errorInfo"]["errorCounts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (c["reason"].as_str().unwrap_or("").to_owned(), c["recordCount"].as_str().unwrap_or("").to_owned()))
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        vec![
            ("PROCESSING_ERROR_REASON_DENIED_CONSENT".to_owned(), "1".to_owned()),
            ("PROCESSING_ERROR_REASON_INVALID_FORMAT".to_owned(), "1".to_owned()),
        ]
    );
    assert_eq!(entry["audienceMembersIngestionStatus"]["userDataIngestionStatus"]["recordCount"], "3");
    assert_eq!(env.handle.member_count(&list), 1);
    assert!(env.handle.is_member(&list, &GoogleHandle::email_key(&hashed(1))));
}

#[tokio::test]
async fn quotas_count_every_token_of_one_oauth_client() {
    let config = GoogleConfig { quotas: QuotaLimits::uniform(3, 1_000), ..GoogleConfig::default() };
    let env = start(config).await;
    let second = env.handle.issue_tokens(&[DATAMANAGER]).access_token;
    let url = env.lists_url(&env.account());
    for token in [&env.token, &second, &env.token] {
        let (status, _, _) = send(env.http.get(&url).bearer_auth(token)).await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, refused, _) = send(env.http.get(&url).bearer_auth(&second)).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{refused}");
    assert_eq!(refused["error"]["status"], "RESOURCE_EXHAUSTED");
    let info = error_info(&refused);
    assert_eq!(info["metadata"]["quota_limit"], "ManagementReadRequestsPerMinutePerProject");
    let delay =
        detail(&refused, "type.googleapis.com/google.rpc.RetryInfo")["retryDelay"].as_str().unwrap_or("").to_owned();
    let seconds: u64 = delay.strip_suffix('s').and_then(|s| s.parse().ok()).expect("a retry delay like \"60s\"");
    assert!((1..=60).contains(&seconds), "{delay}");

    // Another OAuth client is another Cloud project with its own quota; other buckets are apart.
    env.handle.register_client("other.apps.googleusercontent.com", "s");
    let other = env.handle.issue_tokens_for("other.apps.googleusercontent.com", &[DATAMANAGER]).expect("tokens");
    let (status, _, _) = send(env.http.get(&url).bearer_auth(&other.access_token)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = env.status("nothing").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "requestStatus is in the ingestion read bucket");

    env.handle.advance_clock(Duration::from_secs(60));
    let (status, _, _) = send(env.http.get(&url).bearer_auth(&second)).await;
    assert_eq!(status, StatusCode::OK, "the minute has passed");
    let stats = env.handle.quota_stats(QuotaBucket::ManagementRead);
    assert_eq!((stats.refused, stats.max_per_minute), (1, 3));
    assert_eq!(env.handle.quota_refusals(), 1);
    assert_eq!(env.handle.count_error("RATE_LIMIT_EXCEEDED"), 1);
    assert_eq!(env.handle.max_requests_in_window(QuotaBucket::ManagementRead, Duration::from_secs(60)), 5);
}

#[tokio::test]
async fn retry_info_can_be_left_out_and_daily_limits_name_themselves() {
    let config =
        GoogleConfig { quotas: QuotaLimits::uniform(100, 1), retry_info_on_429: false, ..GoogleConfig::default() };
    let env = start(config).await;
    let (status, _) = env.status("a").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, refused) = env.status("b").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_info(&refused)["metadata"]["quota_limit"], "IngestionReadRequestsPerDayPerProject");
    assert!(detail(&refused, "type.googleapis.com/google.rpc.RetryInfo").is_null());
}

#[tokio::test]
async fn injected_faults_answer_googles_shapes_once() {
    let env = start(GoogleConfig::default()).await;
    let url = env.lists_url(&env.account());
    let get = || env.http.get(&url).bearer_auth(&env.token);
    for (fault, status, code) in [
        (GoogleFault::Unavailable, StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE"),
        (GoogleFault::DeadlineExceeded, StatusCode::GATEWAY_TIMEOUT, "DEADLINE_EXCEEDED"),
        (GoogleFault::Internal, StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
        (GoogleFault::TokenExpired, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED"),
        (GoogleFault::QuotaExhausted, StatusCode::TOO_MANY_REQUESTS, "RESOURCE_EXHAUSTED"),
    ] {
        env.handle.fail_next(1, fault);
        let (got, body, _) = send(get()).await;
        assert_eq!((got, body["error"]["status"].clone()), (status, json!(code)), "{body}");
        assert!(error_info(&body)["metadata"]["requestId"].is_string());
        let (got, _, _) = send(get()).await;
        assert_eq!(got, StatusCode::OK, "the fault clears after one call");
    }
    env.handle.fail_next(1, GoogleFault::Internal);
    let (status, body, _) =
        send(env.http.get(env.ads("/customers:listAccessibleCustomers")).bearer_auth(&env.token)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(ads_code(&body), ("internalError".to_owned(), "INTERNAL_ERROR".to_owned()));
    let forced = env.handle.request_log().iter().filter(|r| r.fault.is_some()).count();
    assert_eq!(forced, 6);

    // A real expiry, unlike the injected one, lasts.
    assert!(env.handle.expire_access_token(&env.token));
    let (status, _, _) = send(get()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_control_api_and_usage_explain_the_sandbox() {
    let env = start(GoogleConfig::default()).await;
    let base = env.sandbox.base_url();
    let usage = env.sandbox.usage();
    for prefix in ["/accounts", "/oauth2", "/googleads", "/datamanager", "/_sandbox/"] {
        assert!(usage.contains(&format!("{base}{prefix}")), "{usage}");
    }
    let (status, tokens, _) = send(env.http.post(format!("{base}/_sandbox/tokens"))).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let token = tokens["access_token"].as_str().expect("token");
    let (status, _, _) = send(env.http.get(env.lists_url(&env.account())).bearer_auth(token)).await;
    assert_eq!(status, StatusCode::OK);
    let list = env.create_list(&env.account(), "Seen").await;
    env.ingest(&env.account(), &list, vec![contact(&[&hashed(9)])]).await;
    let (_, _, _) = send(env.http.post(format!("{base}/_sandbox/clock/advance")).json(&json!({"seconds": 10}))).await;
    let (status, members, _) = send(env.http.get(format!("{base}/_sandbox/user_lists/{list}/members"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(members[0]["identifiers"], json!([GoogleHandle::email_key(&hashed(9))]));
    let (_, summary, _) = send(env.http.get(format!("{base}/_sandbox/summary"))).await;
    assert_eq!(summary["user_lists"][0]["members"], 1);
    let (status, _, _) = send(env.http.get(format!("{base}/_sandbox/notes.md"))).await;
    assert_eq!(status, StatusCode::OK);
}
