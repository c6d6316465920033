//! `POST /v1/audienceMembers:ingest`, `:remove` and `:removeAll`: Google's fast-fail checks.
//!
//! The Data Manager API validates a whole request before it processes any of it: one record
//! failing basic validation fails the request with 400 INVALID_ARGUMENT and nothing is
//! applied. The answer's `BadRequest.fieldViolations` names every offending field (each bad
//! record, not just the first) by its snake_case path, e.g.
//! `audience_members[12].user_data.user_identifiers[1].email_address`, so a client can drop
//! exactly those records and resend the rest. The checks, in Google's terms:
//!
//! - JSON names the messages do not have (`Unknown name`);
//! - `destinations`: 1..=10 (`TOO_MANY_DESTINATIONS`), unique `reference`s
//!   (`DUPLICATE_DESTINATION_REFERENCE`), `operatingAccount` / `loginAccount` of type
//!   `GOOGLE_ADS` with digits-only ids (`INVALID_NUMBER_FORMAT`), no `linkedAccount`
//!   (data partners only), `productDestinationId` the numeric id of an existing list of the
//!   operating account (`INVALID_USER_LIST_ID`) whose key type fits the data
//!   (`INVALID_USER_LIST_TYPE`), the operating account under the login account
//!   (`OPERATING_ACCOUNT_LOGIN_ACCOUNT_MISMATCH`); a login account the user does not hold is 403
//!   PERMISSION_DENIED;
//! - `audienceMembers`: 1..=10,000 (`TOO_MANY_AUDIENCE_MEMBERS`), each exactly one data kind,
//!   one kind per request (`MULTIPLE_DATA_TYPES_NOT_ALLOWED`), partner-only kinds refused
//!   (`INVALID_AUDIENCE_MEMBER`);
//! - `encoding` `HEX` or `BASE64`, required with user data; every hashed value a SHA-256 in
//!   that encoding (`INVALID_HEX_ENCODING`, `INVALID_BASE64_ENCODING`,
//!   `INVALID_SHA256_FORMAT`; hex is accepted in either case, as Google's Java library emits
//!   uppercase); 1..=10 identifiers per member (`TOO_MANY_USER_IDENTIFIERS`), each exactly one
//!   of `emailAddress`, `phoneNumber`, `address`; an address has all of `givenName`,
//!   `familyName` (hashed), `regionCode` (ISO 3166-1 alpha-2, uppercase, not hashed:
//!   `INVALID_REGION_CODE`) and `postalCode` (not hashed; US 5 or 5+4 digits:
//!   `INVALID_POSTAL_CODE`), or the request fails (`REQUIRED_FIELD_MISSING` per missing part);
//!   mobile ids are IDFA / advertising-id UUIDs (`INVALID_MOBILE_ID_FORMAT`), at most 10;
//! - consent values `CONSENT_GRANTED`, `CONSENT_DENIED` or `CONSENT_STATUS_UNSPECIFIED`
//!   (`INVALID_ENUM_VALUE`); denied consent does not fail the request, it fails the record at
//!   processing time;
//! - `termsOfService.customerMatchTermsOfServiceStatus: ACCEPTED` on ingest with user or mobile
//!   data (`TERMS_AND_CONDITIONS_NOT_SIGNED`);
//! - `removeAsOfTime` RFC 3339 and not in the future (`INVALID_REMOVE_AS_OF_TIME`);
//! - `encryptionInfo` is refused: the sandbox does not decrypt.
//!
//! `validateOnly: true` runs every check and applies nothing; its request id has no status.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::google::config::GoogleConfig;
use crate::google::errors::{FieldViolation, GoogleError};
use crate::google::fields::{self, get, text};
use crate::google::oauth::AccessToken;
use crate::google::requests::{DataKind, IngestionRequest, Operation, PlannedDestination, PlannedMember, TypeCounts};
use crate::google::state::{GoogleState, Reach, UploadKeyType, parse_customer_id};

/// Most members per request.
pub(crate) const MAX_MEMBERS: usize = 10_000;
/// Most identifiers (or mobile ids) per member.
pub(crate) const MAX_IDENTIFIERS: usize = 10;
/// Most destinations per request.
pub(crate) const MAX_DESTINATIONS: usize = 10;

const INGEST_FIELDS: &[&str] =
    &["destinations", "audienceMembers", "consent", "validateOnly", "encoding", "encryptionInfo", "termsOfService"];
const REMOVE_FIELDS: &[&str] = &["destinations", "audienceMembers", "validateOnly", "encoding", "encryptionInfo"];
const REMOVE_ALL_FIELDS: &[&str] = &["destinations", "removeAsOfTime", "validateOnly"];
const DESTINATION_FIELDS: &[&str] =
    &["reference", "operatingAccount", "loginAccount", "linkedAccount", "productDestinationId"];
const ACCOUNT_FIELDS: &[&str] = &["accountType", "accountId"];
const MEMBER_FIELDS: &[&str] = &[
    "destinationReferences",
    "consent",
    "userData",
    "mobileData",
    "userIdData",
    "compositeData",
    "pairData",
    "ppidData",
    "googleUserIdData",
    "partnerProvidedIdData",
];
const PARTNER_KINDS: &[&str] = &["pairData", "ppidData", "googleUserIdData", "partnerProvidedIdData"];
const CONSENT_VALUES: &[&str] = &["CONSENT_GRANTED", "CONSENT_DENIED", "CONSENT_STATUS_UNSPECIFIED"];

/// What a valid request turns into.
#[derive(Debug)]
pub(crate) struct Accepted {
    /// `None` for validateOnly.
    pub request: Option<IngestionRequest>,
}

/// The hash encoding of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Hex,
    Base64,
}

struct Check {
    violations: Vec<FieldViolation>,
    encoding: Option<Encoding>,
    /// Identifier keys a test made the validation refuse, with the reason.
    refused: HashMap<String, &'static str>,
}

impl Check {
    fn push(&mut self, field: impl Into<String>, reason: &'static str, description: impl Into<String>) {
        self.violations.push(FieldViolation::new(field, reason, description));
    }

    /// A hashed value in the request's encoding, as lowercase hex.
    fn hash(&mut self, value: Option<&Value>, field: &str) -> Option<String> {
        let Some(raw) = value.and_then(Value::as_str).filter(|v| !v.is_empty()) else {
            self.push(field, "REQUIRED_FIELD_MISSING", "A hashed value is required.");
            return None;
        };
        match self.encoding? {
            Encoding::Hex => {
                if !raw.bytes().all(|b| b.is_ascii_hexdigit()) {
                    self.push(field, "INVALID_HEX_ENCODING", "The HEX encoded value is malformed.");
                    return None;
                }
                if raw.len() != 64 {
                    self.push(field, "INVALID_SHA256_FORMAT", "The value is not a SHA-256 hash (64 hex digits).");
                    return None;
                }
                Some(raw.to_ascii_lowercase())
            }
            Encoding::Base64 => {
                let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(raw) else {
                    self.push(field, "INVALID_BASE64_ENCODING", "The base64 encoded value is malformed.");
                    return None;
                };
                if bytes.len() != 32 {
                    self.push(field, "INVALID_SHA256_FORMAT", "The value is not a SHA-256 hash (32 bytes).");
                    return None;
                }
                Some(bytes.iter().map(|b| format!("{b:02x}")).collect())
            }
        }
    }

    /// The identifier key, or a violation at `field` when a test made validation refuse it.
    fn unless_refused(&mut self, key: Option<String>, field: &str) -> Option<String> {
        let key = key?;
        match self.refused.get(&key).copied() {
            Some(reason) => {
                self.push(field, reason, "The value was refused by validation.");
                None
            }
            None => Some(key),
        }
    }

    fn consent(&mut self, consent: Option<&Value>, at: &str) -> (Option<String>, Option<String>) {
        let Some(consent) = consent.and_then(Value::as_object) else {
            return (None, None);
        };
        fields::unknown(consent, &["adUserData", "adPersonalization"], at, &mut self.violations);
        let mut read = |name: &str| {
            let value = text(consent, name)?;
            if !CONSENT_VALUES.contains(&value) {
                self.push(fields::path(at, name), "INVALID_ENUM_VALUE", format!("Invalid consent value {value}."));
            }
            Some(value.to_owned())
        };
        (read("adUserData"), read("adPersonalization"))
    }

    fn address(&mut self, address: &Map<String, Value>, at: &str) -> Option<String> {
        fields::unknown(address, &["givenName", "familyName", "regionCode", "postalCode"], at, &mut self.violations);
        let present = |name: &str| text(address, name).is_some_and(|v| !v.trim().is_empty());
        let mut complete = true;
        for part in ["givenName", "familyName", "regionCode", "postalCode"] {
            if !present(part) {
                complete = false;
                self.push(
                    fields::path(at, part),
                    "REQUIRED_FIELD_MISSING",
                    "An address needs givenName, familyName, regionCode and postalCode.",
                );
            }
        }
        if !complete {
            return None;
        }
        let given = self.hash(get(address, "givenName"), &fields::path(at, "givenName"));
        let family = self.hash(get(address, "familyName"), &fields::path(at, "familyName"));
        let region = text(address, "regionCode").unwrap_or_default();
        let region_ok = region.len() == 2 && region.bytes().all(|b| b.is_ascii_uppercase());
        if !region_ok {
            self.push(
                fields::path(at, "regionCode"),
                "INVALID_REGION_CODE",
                "regionCode must be an ISO 3166-1 alpha-2 code in uppercase, not hashed.",
            );
        }
        let postal = text(address, "postalCode").unwrap_or_default().trim();
        let hashed_looking = postal.len() >= 32 && postal.bytes().all(|b| b.is_ascii_hexdigit());
        let postal_ok = if region == "US" {
            let bytes = postal.as_bytes();
            let five = |s: &[u8]| s.len() == 5 && s.iter().all(u8::is_ascii_digit);
            five(bytes)
                || (bytes.len() == 10
                    && five(&bytes[..5])
                    && bytes[5] == b'-'
                    && bytes[6..].iter().all(u8::is_ascii_digit))
        } else {
            !hashed_looking
                && postal.len() <= 16
                && postal.bytes().all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-')
        };
        if !postal_ok {
            self.push(
                fields::path(at, "postalCode"),
                "INVALID_POSTAL_CODE",
                "postalCode is not valid for the region (not hashed; US: 5 digits or 5+4).",
            );
        }
        match (given, family, region_ok && postal_ok) {
            (Some(given), Some(family), true) => Some(format!("address:{given}|{family}|{region}|{postal}")),
            _ => None,
        }
    }

    fn user_data(&mut self, user_data: &Value, at: &str, counts: &mut TypeCounts) -> Vec<String> {
        let mut keys = Vec::new();
        let Some(user_data) = user_data.as_object() else {
            self.push(at, "INVALID_AUDIENCE_MEMBER", "userData must be an object.");
            return keys;
        };
        fields::unknown(user_data, &["userIdentifiers"], at, &mut self.violations);
        let identifiers = get(user_data, "userIdentifiers").and_then(Value::as_array).cloned().unwrap_or_default();
        let list_at = fields::path(at, "userIdentifiers");
        if identifiers.is_empty() {
            self.push(&list_at, "REQUIRED_FIELD_MISSING", "A member needs at least one user identifier.");
            return keys;
        }
        if identifiers.len() > MAX_IDENTIFIERS {
            self.push(
                &list_at,
                "TOO_MANY_USER_IDENTIFIERS",
                format!("A member may have at most {MAX_IDENTIFIERS} user identifiers, not {}.", identifiers.len()),
            );
            return keys;
        }
        for (j, identifier) in identifiers.iter().enumerate() {
            let id_at = format!("{list_at}[{j}]");
            let Some(identifier) = identifier.as_object() else {
                self.push(&id_at, "INVALID_AUDIENCE_MEMBER", "A user identifier must be an object.");
                continue;
            };
            fields::unknown(identifier, &["emailAddress", "phoneNumber", "address"], &id_at, &mut self.violations);
            let set: Vec<&str> = ["emailAddress", "phoneNumber", "address"]
                .into_iter()
                .filter(|name| get(identifier, name).is_some_and(|v| !v.is_null()))
                .collect();
            match set.as_slice() {
                ["emailAddress"] => {
                    counts.email += 1;
                    let field = fields::path(&id_at, "emailAddress");
                    let key = self.hash(get(identifier, "emailAddress"), &field).map(|h| format!("email:{h}"));
                    keys.extend(self.unless_refused(key, &field));
                }
                ["phoneNumber"] => {
                    counts.phone += 1;
                    let field = fields::path(&id_at, "phoneNumber");
                    let key = self.hash(get(identifier, "phoneNumber"), &field).map(|h| format!("phone:{h}"));
                    keys.extend(self.unless_refused(key, &field));
                }
                ["address"] => {
                    counts.address += 1;
                    let field = fields::path(&id_at, "address");
                    match get(identifier, "address").and_then(Value::as_object) {
                        Some(address) => keys.extend(self.address(address, &field)),
                        None => self.push(field, "INVALID_AUDIENCE_MEMBER", "address must be an object."),
                    }
                }
                [] => self.push(
                    &id_at,
                    "REQUIRED_FIELD_MISSING",
                    "A user identifier needs one of emailAddress, phoneNumber or address.",
                ),
                _ => self.push(
                    &id_at,
                    "INVALID_AUDIENCE_MEMBER",
                    "A user identifier holds exactly one of emailAddress, phoneNumber or address.",
                ),
            }
        }
        keys
    }

    fn mobile_data(&mut self, mobile: &Value, at: &str) -> Vec<String> {
        let mut keys = Vec::new();
        let Some(mobile) = mobile.as_object() else {
            self.push(at, "INVALID_AUDIENCE_MEMBER", "mobileData must be an object.");
            return keys;
        };
        fields::unknown(mobile, &["mobileIds"], at, &mut self.violations);
        let ids = get(mobile, "mobileIds").and_then(Value::as_array).cloned().unwrap_or_default();
        let list_at = fields::path(at, "mobileIds");
        if ids.is_empty() {
            self.push(&list_at, "REQUIRED_FIELD_MISSING", "mobileData needs at least one mobile id.");
        } else if ids.len() > MAX_IDENTIFIERS {
            self.push(
                &list_at,
                "TOO_MANY_USER_IDENTIFIERS",
                format!("At most {MAX_IDENTIFIERS} mobile ids per member."),
            );
        } else {
            for (j, id) in ids.iter().enumerate() {
                match id.as_str().filter(|s| is_uuid(s)) {
                    Some(id) => keys.push(format!("mobile:{}", id.to_ascii_lowercase())),
                    None => self.push(
                        format!("{list_at}[{j}]"),
                        "INVALID_MOBILE_ID_FORMAT",
                        "A mobile id is an IDFA or Android advertising id (UUID), sent raw.",
                    ),
                }
            }
        }
        keys
    }
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(raw: &str) -> bool {
    let groups: Vec<&str> = raw.split('-').collect();
    groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An RFC 3339 timestamp as Unix time (seconds, fractions dropped).
pub(crate) fn parse_rfc3339(raw: &str) -> Option<Duration> {
    let bytes = raw.as_bytes();
    if bytes.len() < 20 || bytes[4] != b'-' || bytes[7] != b'-' || !matches!(bytes[10], b'T' | b't') {
        return None;
    }
    let number = |range: std::ops::Range<usize>| raw.get(range).and_then(|s| s.parse::<i64>().ok());
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = raw.get(19..)?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = fraction.get(digits..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && matches!(zone.as_bytes()[0], b'+' | b'-') && zone.as_bytes()[3] == b':' => {
            let hours: i64 = zone.get(1..3)?.parse().ok()?;
            let minutes: i64 = zone.get(4..6)?.parse().ok()?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(seconds).ok().map(Duration::from_secs)
}

fn account_of(
    check: &mut Check,
    destination: &Map<String, Value>,
    name: &str,
    at: &str,
    required: bool,
) -> Option<u64> {
    let field = fields::path(at, name);
    let Some(account) = get(destination, name).filter(|v| !v.is_null()) else {
        if required {
            check.push(&field, "REQUIRED_FIELD_MISSING", format!("{name} is required."));
        }
        return None;
    };
    let Some(account) = account.as_object() else {
        check.push(&field, "INVALID_DESTINATION", format!("{name} must be an object."));
        return None;
    };
    fields::unknown(account, ACCOUNT_FIELDS, &field, &mut check.violations);
    match text(account, "accountType") {
        Some("GOOGLE_ADS") => {}
        Some(other) => {
            check.push(
                fields::path(&field, "accountType"),
                "INVALID_DESTINATION",
                format!("The sandbox models GOOGLE_ADS accounts only, not {other}."),
            );
            return None;
        }
        None => {
            check.push(fields::path(&field, "accountType"), "REQUIRED_FIELD_MISSING", "accountType is required.");
            return None;
        }
    }
    let id = get(account, "accountId")
        .and_then(|v| v.as_str().map(str::to_owned).or_else(|| v.as_u64().map(|n| n.to_string())));
    match id.as_deref().and_then(parse_customer_id) {
        Some(id) => Some(id),
        None => {
            check.push(
                fields::path(&field, "accountId"),
                "INVALID_NUMBER_FORMAT",
                "accountId must be the customer id, digits only (no hyphens).",
            );
            None
        }
    }
}

/// Validates an ingest, remove or removeAll body for the token's user; on success, plans the
/// request (nothing is applied until it has processed).
pub(crate) fn validate(
    config: &GoogleConfig,
    world: &GoogleState,
    _token: &AccessToken,
    operation: Operation,
    body: &Value,
) -> Result<Accepted, GoogleError> {
    let Some(object) = body.as_object() else {
        return Err(GoogleError::invalid_field("", "INVALID_ARGUMENT", "The request body must be a JSON object."));
    };
    let allowed = match operation {
        Operation::Ingest => INGEST_FIELDS,
        Operation::Remove => REMOVE_FIELDS,
        Operation::RemoveAll => REMOVE_ALL_FIELDS,
    };
    let mut unknown = Vec::new();
    fields::unknown(object, allowed, "", &mut unknown);
    if !unknown.is_empty() {
        return Err(GoogleError::invalid(unknown));
    }
    let members_raw = get(object, "audienceMembers").and_then(Value::as_array).cloned().unwrap_or_default();
    if members_raw.len() > MAX_MEMBERS {
        return Err(GoogleError::invalid_field(
            "audience_members",
            "TOO_MANY_AUDIENCE_MEMBERS",
            format!("At most {MAX_MEMBERS} audience members per request, not {}.", members_raw.len()),
        ));
    }
    let destinations_raw = get(object, "destinations").and_then(Value::as_array).cloned().unwrap_or_default();
    if destinations_raw.len() > MAX_DESTINATIONS {
        return Err(GoogleError::invalid_field(
            "destinations",
            "TOO_MANY_DESTINATIONS",
            format!("At most {MAX_DESTINATIONS} destinations per request."),
        ));
    }
    let mut check = Check { violations: Vec::new(), encoding: None, refused: world.refused_identifiers.clone() };
    let validate_only = get(object, "validateOnly").and_then(Value::as_bool).unwrap_or(false);

    // The data kind, decided before the destinations so list key types can be compared.
    let mut kind: Option<(DataKind, usize)> = None;
    let mut kinds_per_member = Vec::new();
    for (i, member) in members_raw.iter().enumerate() {
        let at = format!("audience_members[{i}]");
        let Some(member) = member.as_object() else {
            check.push(&at, "INVALID_AUDIENCE_MEMBER", "An audience member must be an object.");
            kinds_per_member.push(None);
            continue;
        };
        fields::unknown(member, MEMBER_FIELDS, &at, &mut check.violations);
        let set: Vec<&str> = ["userData", "mobileData", "userIdData", "compositeData"]
            .into_iter()
            .chain(PARTNER_KINDS.iter().copied())
            .filter(|name| get(member, name).is_some_and(|v| !v.is_null()))
            .collect();
        let member_kind = match set.as_slice() {
            ["userData"] => Some(DataKind::User { composite: false }),
            ["compositeData"] => Some(DataKind::User { composite: true }),
            ["mobileData"] => Some(DataKind::Mobile),
            ["userIdData"] => Some(DataKind::UserId),
            [partner] => {
                check.push(
                    fields::path(&at, partner),
                    "INVALID_AUDIENCE_MEMBER",
                    format!("{partner} is for data partners; a Google Ads destination takes userData, mobileData or userIdData."),
                );
                None
            }
            [] => {
                check.push(&at, "INVALID_AUDIENCE_MEMBER", "An audience member needs one kind of data.");
                None
            }
            _ => {
                check.push(&at, "INVALID_AUDIENCE_MEMBER", "An audience member holds exactly one kind of data.");
                None
            }
        };
        if let Some(member_kind) = member_kind {
            let base = |k: DataKind| match k {
                DataKind::User { .. } => 0,
                DataKind::Mobile => 1,
                DataKind::UserId => 2,
            };
            match kind {
                None => kind = Some((member_kind, i)),
                Some((first, _)) if base(first) != base(member_kind) => check.push(
                    &at,
                    "MULTIPLE_DATA_TYPES_NOT_ALLOWED",
                    "Multiple data types are not allowed to be ingested in a single request.",
                ),
                Some(_) => {}
            }
        }
        kinds_per_member.push(member_kind);
    }
    let kind = kind.map(|(k, _)| k);
    let needed_key = kind.map(|k| match k {
        DataKind::User { .. } => UploadKeyType::ContactId,
        DataKind::Mobile => UploadKeyType::MobileId,
        DataKind::UserId => UploadKeyType::UserId,
    });

    // Destinations.
    if destinations_raw.is_empty() {
        check.push("destinations", "REQUIRED_FIELD_MISSING", "At least one destination is required.");
    }
    let mut destinations = Vec::new();
    let mut references = BTreeSet::new();
    let mut denied_login = None;
    for (d, destination) in destinations_raw.iter().enumerate() {
        let at = format!("destinations[{d}]");
        let Some(destination) = destination.as_object() else {
            check.push(&at, "INVALID_DESTINATION", "A destination must be an object.");
            continue;
        };
        fields::unknown(destination, DESTINATION_FIELDS, &at, &mut check.violations);
        let reference = text(destination, "reference").filter(|r| !r.is_empty()).map(str::to_owned);
        if let Some(reference) = &reference
            && !references.insert(reference.clone())
        {
            check.push(
                fields::path(&at, "reference"),
                "DUPLICATE_DESTINATION_REFERENCE",
                "Destination references must be unique.",
            );
        }
        if get(destination, "linkedAccount").is_some_and(|v| !v.is_null()) {
            check.push(
                fields::path(&at, "linkedAccount"),
                "INVALID_DESTINATION",
                "linkedAccount is only for a DATA_PARTNER login account.",
            );
        }
        let operating = account_of(&mut check, destination, "operatingAccount", &at, true);
        let login = account_of(&mut check, destination, "loginAccount", &at, false);
        let list_field = fields::path(&at, "productDestinationId");
        let list_id = match text(destination, "productDestinationId") {
            None | Some("") => {
                check.push(
                    &list_field,
                    "REQUIRED_FIELD_MISSING",
                    "productDestinationId (the user list id) is required.",
                );
                None
            }
            Some(raw) => match parse_customer_id(raw) {
                Some(id) => Some(id),
                None => {
                    check.push(
                        &list_field,
                        "INVALID_USER_LIST_ID",
                        "productDestinationId is the numeric user list id, not a resource name.",
                    );
                    None
                }
            },
        };
        let Some(operating) = operating else {
            continue;
        };
        let login_id = login.unwrap_or(operating);
        match world.reach(login_id, operating) {
            Reach::Ok => {}
            _ if world.customers.get(&login_id).is_some_and(|c| c.direct) => {
                check.push(
                    fields::path(&at, "loginAccount"),
                    "OPERATING_ACCOUNT_LOGIN_ACCOUNT_MISMATCH",
                    format!("Operating account {operating} is not reachable through login account {login_id}."),
                );
                continue;
            }
            _ => {
                if denied_login.is_none() {
                    denied_login = Some(login_id);
                }
                continue;
            }
        }
        let Some(list_id) = list_id else {
            continue;
        };
        match world.user_lists.get(&list_id).filter(|l| l.account == operating) {
            None => check.push(
                &list_field,
                "INVALID_USER_LIST_ID",
                format!("User list {list_id} does not exist in account {operating}."),
            ),
            Some(list) => {
                if operation != Operation::RemoveAll
                    && let Some(needed) = needed_key
                    && list.key_type != needed
                {
                    check.push(
                        &list_field,
                        "INVALID_USER_LIST_TYPE",
                        format!("User list {list_id} takes {} data.", list.key_type.name()),
                    );
                }
                let echo = json!({
                    "reference": reference,
                    "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": operating.to_string()},
                    "loginAccount": login.map(|l| json!({"accountType": "GOOGLE_ADS", "accountId": l.to_string()})),
                    "productDestinationId": list_id.to_string(),
                });
                let echo = strip_nulls(echo);
                destinations.push(PlannedDestination { echo, list: list_id, reference });
            }
        }
    }

    // Request-level fields.
    let mut remove_before = None;
    if operation == Operation::RemoveAll {
        if let Some(raw) = get(object, "removeAsOfTime").filter(|v| !v.is_null()) {
            match raw.as_str().and_then(parse_rfc3339) {
                None => {
                    check.push("remove_as_of_time", "INVALID_FORMAT", "removeAsOfTime must be an RFC 3339 timestamp.")
                }
                Some(unix) if unix > world.clock.unix() => {
                    check.push(
                        "remove_as_of_time",
                        "INVALID_REMOVE_AS_OF_TIME",
                        "removeAsOfTime cannot be in the future.",
                    );
                }
                Some(unix) => remove_before = Some(world.clock.instant_of(unix)),
            }
        }
    } else if members_raw.is_empty() {
        check.push("audience_members", "REQUIRED_FIELD_MISSING", "At least one audience member is required.");
    }
    let user_data = matches!(kind, Some(DataKind::User { .. }));
    match text(object, "encoding") {
        Some("HEX") => check.encoding = Some(Encoding::Hex),
        Some("BASE64") => check.encoding = Some(Encoding::Base64),
        Some(other) if other != "ENCODING_UNSPECIFIED" => {
            check.push("encoding", "INVALID_ENUM_VALUE", format!("encoding must be HEX or BASE64, not {other}."));
        }
        _ if user_data => {
            check.push("encoding", "REQUIRED_FIELD_MISSING", "encoding (HEX or BASE64) is required with user data.")
        }
        _ => {}
    }
    if get(object, "encryptionInfo").is_some_and(|v| !v.is_null()) {
        check.push(
            "encryption_info",
            "INVALID_ARGUMENT",
            "The sandbox does not decrypt: send hashed data without encryptionInfo.",
        );
    }
    let request_consent = check.consent(get(object, "consent"), "consent");
    if operation == Operation::Ingest && matches!(kind, Some(DataKind::User { .. } | DataKind::Mobile)) {
        let terms = get(object, "termsOfService").and_then(Value::as_object);
        if let Some(terms) = terms {
            fields::unknown(terms, &["customerMatchTermsOfServiceStatus"], "terms_of_service", &mut check.violations);
        }
        let accepted = terms.and_then(|t| text(t, "customerMatchTermsOfServiceStatus")) == Some("ACCEPTED");
        if !accepted {
            check.push(
                "terms_of_service.customer_match_terms_of_service_status",
                "TERMS_AND_CONDITIONS_NOT_SIGNED",
                "The operating account must accept the Customer Match terms: send termsOfService with \
                 customerMatchTermsOfServiceStatus ACCEPTED.",
            );
        }
    }

    // Members.
    let mut planned = Vec::new();
    for (i, (member, member_kind)) in members_raw.iter().zip(&kinds_per_member).enumerate() {
        let at = format!("audience_members[{i}]");
        let Some(member) = member.as_object() else {
            continue;
        };
        let (user, personalization) = check.consent(get(member, "consent"), &fields::path(&at, "consent"));
        let effective = |own: Option<String>, default: &Option<String>| own.or_else(|| default.clone());
        let denied = [effective(user, &request_consent.0), effective(personalization, &request_consent.1)]
            .iter()
            .any(|c| c.as_deref() == Some("CONSENT_DENIED"));
        let member_refs: Option<Vec<String>> = get(member, "destinationReferences")
            .and_then(Value::as_array)
            .map(|refs| refs.iter().filter_map(Value::as_str).map(str::to_owned).collect());
        if let Some(refs) = &member_refs {
            for reference in refs.iter().filter(|r| !references.contains(*r)) {
                check.push(
                    fields::path(&at, "destinationReferences"),
                    "INVALID_DESTINATION",
                    format!("No destination has the reference {reference}."),
                );
            }
        }
        let mut counts = TypeCounts::default();
        let identifiers = match member_kind {
            Some(DataKind::User { composite: false }) => {
                get(member, "userData").map(|u| check.user_data(u, &fields::path(&at, "userData"), &mut counts))
            }
            Some(DataKind::User { composite: true }) => {
                let composite_at = fields::path(&at, "compositeData");
                let composite = get(member, "compositeData").and_then(Value::as_object);
                composite.map(|c| {
                    fields::unknown(c, &["userData", "ipData"], &composite_at, &mut check.violations);
                    match get(c, "userData") {
                        Some(u) => check.user_data(u, &fields::path(&composite_at, "userData"), &mut counts),
                        None => {
                            check.push(
                                fields::path(&composite_at, "userData"),
                                "REQUIRED_FIELD_MISSING",
                                "compositeData needs userData for a Customer Match list.",
                            );
                            Vec::new()
                        }
                    }
                })
            }
            Some(DataKind::Mobile) => {
                get(member, "mobileData").map(|m| check.mobile_data(m, &fields::path(&at, "mobileData")))
            }
            Some(DataKind::UserId) => {
                let field = fields::path(&at, "userIdData");
                let user_id = get(member, "userIdData").and_then(Value::as_object);
                if let Some(object) = user_id {
                    fields::unknown(object, &["userId"], &field, &mut check.violations);
                }
                match user_id.and_then(|u| text(u, "userId")).filter(|u| !u.is_empty()) {
                    Some(id) => Some(vec![format!("user_id:{id}")]),
                    None => {
                        check.push(
                            fields::path(&field, "userId"),
                            "REQUIRED_FIELD_MISSING",
                            "userIdData.userId is required.",
                        );
                        None
                    }
                }
            }
            None => None,
        };
        planned.push(PlannedMember {
            identifiers: identifiers.unwrap_or_default(),
            counts,
            denied: denied && operation == Operation::Ingest,
            references: member_refs,
        });
    }

    if !check.violations.is_empty() {
        return Err(GoogleError::invalid(check.violations));
    }
    if let Some(login) = denied_login {
        return Err(GoogleError::permission_denied(format!(
            "The caller does not have permission to act as login account {login}."
        )));
    }
    if validate_only {
        return Ok(Accepted { request: None });
    }
    let received = world.clock.now();
    let request = IngestionRequest {
        operation,
        kind,
        received,
        due: received + config.processing_delay,
        destinations,
        members: planned,
        remove_before,
        outcomes: None,
    };
    Ok(Accepted { request: Some(request) })
}

fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(object.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_timestamps_parse_with_zones_and_fractions() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(Duration::ZERO));
        assert_eq!(parse_rfc3339("2026-12-07T15:00:00.123Z"), Some(Duration::from_secs(1_796_655_600)));
        assert_eq!(parse_rfc3339("2026-12-07T07:00:00-08:00"), Some(Duration::from_secs(1_796_655_600)));
        assert_eq!(parse_rfc3339("2026-12-07 15:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn mobile_ids_are_uuids() {
        assert!(is_uuid("6D92078A-8246-4BA4-AE5B-76104861E7DC"));
        assert!(!is_uuid("6d92078a82464ba4ae5b76104861e7dc"));
        assert!(!is_uuid("not-a-uuid"));
    }
}
