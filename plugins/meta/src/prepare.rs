//! `prepare-users`: normalise, validate and hash identifiers, locally and deterministically.
//!
//! For each user, only identifiers whose kind is selected (`fields`) and supported are
//! considered, and each Meta key gets **one** value: the first valid one, taking the selected
//! kinds in the sync's priority order and each kind's values in the caller's order (so of a
//! `mobile-ad-id` and an `idfa`, the one whose kind comes first in `fields` fills `MADID`).
//! The values are normalised by Meta's rules ([`crate::normalize`]); the hashed keys are then
//! SHA-256 hashed through the host's `hashing` import, all users' values in one bulk call
//! (with `none` normalisation: the rules are Meta's and were applied here). Already-hashed
//! values pass through.
//!
//! Context that crosses kinds: the user's country (the first valid `country` value, selected
//! or not) decides how a national phone number, a region and a postal code are read, and
//! whether a `COUNTRY` key is sent decides whether a national phone number gets its calling
//! code (see [`crate::normalize::phone`]).
//!
//! The prepared identifiers keep the host's kind names, in Meta's schema order, except for
//! the kinds the plugin defines ([`crate::kinds::derived`]): `date-of-birth` becomes
//! `dob-year`, `dob-month` and `dob-day`, and a first name also yields its `first-initial`.
//!
//! A user is `not-synced` when nothing valid is left, and also when only traits many people
//! share are left (gender, date of birth, city, region, postal code, country, one name):
//! Meta matches on an e-mail, a phone, a mobile ad id, an external id, or a first name (or
//! initial) together with a last name, and rows without one of those match nobody. The reason
//! names what was wrong, quoting values only shortened.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::hashing::Normalization;
use audience_plugin_sdk::identity::{HashQueue, HashTicket};
use audience_plugin_sdk::types::{Identifier, IdentifierKind, Preparation, PreparedUser, RawUser};

use crate::kinds::{Key, derived, host, is_supported};
use crate::normalize::{self, Normalised, PhoneContext};

/// How many problems a not-synced reason lists before summarising the rest.
const MAX_REASONS: usize = 3;

/// One prepared value: sent as is, or waiting for its digest.
enum Pending {
    Literal(String),
    Hash(HashTicket),
}

/// A user half-way: identifiers chosen, digests not yet computed.
enum Draft {
    Ready { key: String, consent: Option<audience_plugin_sdk::types::Consent>, ids: Vec<(String, Pending)> },
    NotSynced(String),
}

/// The values chosen for one user, by key, with the prepared kind each is filed under.
#[derive(Default)]
struct Chosen {
    slots: Vec<(Key, String, Normalised)>,
    problems: Vec<String>,
}

impl Chosen {
    fn has(&self, key: Key) -> bool {
        self.slots.iter().any(|(k, _, _)| *k == key)
    }

    fn put(&mut self, key: Key, kind: &str, value: Normalised) {
        if !self.has(key) {
            self.slots.push((key, kind.to_string(), value));
        }
    }

    /// The keys this kind fills, to know whether a later value of it is needed at all.
    fn filled(&self, kind: &str) -> bool {
        match kind {
            host::DATE_OF_BIRTH => self.has(Key::Doby),
            host::FIRST_NAME => self.has(Key::Fn),
            other => Key::of_prepared(other).is_some_and(|key| self.has(key)),
        }
    }

    /// Whether the row can match anybody (see the module documentation).
    fn matchable(&self) -> bool {
        let strong = [Key::Email, Key::Phone, Key::Madid, Key::ExternId].iter().any(|k| self.has(*k));
        strong || (self.has(Key::Ln) && (self.has(Key::Fn) || self.has(Key::Fi)))
    }
}

/// The user's country for context: the first `country` value that normalises to a code.
fn context_country(user: &RawUser) -> (Option<String>, bool) {
    let mut any_valid = false;
    for id in user.identifiers.iter().filter(|i| i.kind == host::COUNTRY) {
        match normalize::country(&id.value) {
            Ok(Normalised::Plain(code)) => return (Some(code), true),
            Ok(Normalised::Hashed(_)) => any_valid = true,
            Err(_) => {}
        }
    }
    (None, any_valid)
}

fn choose(fields: &[IdentifierKind], user: &RawUser, max_year: u32) -> Chosen {
    let mut chosen = Chosen::default();
    let (country, has_valid_country) = context_country(user);
    let country = country.as_deref();
    let country_sent = fields.iter().any(|f| f == host::COUNTRY) && has_valid_country;
    let mut seen_kinds: Vec<&str> = Vec::new();
    for kind in fields.iter().map(String::as_str).filter(|k| is_supported(k)) {
        if seen_kinds.contains(&kind) {
            continue;
        }
        seen_kinds.push(kind);
        for id in user.identifiers.iter().filter(|i| i.kind == kind) {
            if chosen.filled(kind) {
                break;
            }
            let value = id.value.as_str();
            let result: Result<(), String> = match kind {
                host::DATE_OF_BIRTH => normalize::date_of_birth(value, max_year).map(|date| {
                    chosen.put(Key::Doby, derived::DOB_YEAR, Normalised::Plain(date.year));
                    chosen.put(Key::Dobm, derived::DOB_MONTH, Normalised::Plain(date.month));
                    chosen.put(Key::Dobd, derived::DOB_DAY, Normalised::Plain(date.day));
                }),
                host::FIRST_NAME => normalize::name(value).map(|name| {
                    if let Some(initial) = normalize::first_initial(&name) {
                        chosen.put(Key::Fi, derived::FIRST_INITIAL, initial);
                    }
                    chosen.put(Key::Fn, kind, name);
                }),
                _ => {
                    let normalised = match kind {
                        host::EMAIL => normalize::email(value),
                        host::PHONE => normalize::phone(value, PhoneContext { country, country_sent }),
                        host::LAST_NAME => normalize::name(value),
                        host::GENDER => normalize::gender(value),
                        host::CITY => normalize::city(value),
                        host::REGION => normalize::region(value, country),
                        host::POSTAL_CODE => normalize::postal_code(value, country),
                        host::COUNTRY => normalize::country(value),
                        host::MOBILE_AD_ID | host::IDFA => normalize::device_id(value),
                        _ => normalize::external_id(value),
                    };
                    normalised.map(|v| {
                        if let Some(key) = Key::of_prepared(kind) {
                            chosen.put(key, kind, v);
                        }
                    })
                }
            };
            if let Err(why) = result {
                chosen.problems.push(format!("no usable {kind}: {why}"));
            }
        }
    }
    chosen.slots.sort_by_key(|(key, _, _)| *key);
    chosen
}

fn summarise(problems: &[String]) -> String {
    let mut reason = problems.iter().take(MAX_REASONS).cloned().collect::<Vec<_>>().join("; ");
    if problems.len() > MAX_REASONS {
        reason.push_str(&format!("; and {} more", problems.len() - MAX_REASONS));
    }
    reason
}

fn not_synced_reason(fields: &[IdentifierKind], chosen: &Chosen) -> String {
    let supported: Vec<&str> = fields.iter().map(String::as_str).filter(|k| is_supported(k)).collect();
    if supported.is_empty() {
        let asked = if fields.is_empty() { "none".to_string() } else { fields.join(", ") };
        return format!("none of the selected fields ({asked}) can be matched on Meta");
    }
    if chosen.slots.is_empty() {
        if chosen.problems.is_empty() {
            return format!("none of the selected fields ({}) is present", supported.join(", "));
        }
        return summarise(&chosen.problems);
    }
    let mut kinds: Vec<&str> = Vec::new();
    for (key, kind, _) in &chosen.slots {
        let shown = match key {
            Key::Doby | Key::Dobm | Key::Dobd => host::DATE_OF_BIRTH,
            Key::Fi => host::FIRST_NAME,
            _ => kind.as_str(),
        };
        if !kinds.contains(&shown) {
            kinds.push(shown);
        }
    }
    let mut reason = format!(
        "only {} can be sent, which match nobody on their own: Meta needs an email, a phone, a mobile ad id, \
         an external id, or a first and a last name",
        kinds.join(", ")
    );
    if !chosen.problems.is_empty() {
        reason.push_str(&format!(" ({})", summarise(&chosen.problems)));
    }
    reason
}

/// Prepare every user: exactly one [`Preparation`] per user, in order. `max_year` is the
/// latest year of birth accepted (this year); hashing goes through `host` in bulk.
pub fn prepare_users(
    host: &dyn Host,
    fields: &[IdentifierKind],
    users: Vec<RawUser>,
    max_year: u32,
) -> Vec<Preparation> {
    let mut queue = HashQueue::new();
    let drafts: Vec<Draft> = users
        .into_iter()
        .map(|user| {
            let chosen = choose(fields, &user, max_year);
            if !chosen.matchable() {
                return Draft::NotSynced(not_synced_reason(fields, &chosen));
            }
            let ids = chosen
                .slots
                .into_iter()
                .map(|(key, kind, value)| {
                    let pending = match value {
                        Normalised::Hashed(digest) if key.hashed() => Pending::Hash(queue.push_hashed(&digest)),
                        Normalised::Plain(plain) if key.hashed() => {
                            Pending::Hash(queue.push(Normalization::None, plain))
                        }
                        Normalised::Plain(v) | Normalised::Hashed(v) => Pending::Literal(v),
                    };
                    (kind, pending)
                })
                .collect();
            Draft::Ready { key: user.key, consent: user.consent, ids }
        })
        .collect();
    let mut hashed = queue.hash(host);
    drafts
        .into_iter()
        .map(|draft| match draft {
            Draft::NotSynced(reason) => Preparation::NotSynced(reason),
            Draft::Ready { key, consent, ids } => Preparation::Ready(PreparedUser {
                key,
                consent,
                identifiers: ids
                    .into_iter()
                    .map(|(kind, pending)| Identifier {
                        kind,
                        value: match pending {
                            Pending::Literal(v) => v,
                            Pending::Hash(ticket) => hashed.take(ticket),
                        },
                    })
                    .collect(),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::identity::sha256_hex;
    use audience_plugin_sdk::types::{Consent, ConsentStatus};

    use super::*;
    use crate::testing::FakeHost;

    // The notes' examples.
    const MARY: &str = "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79";
    const PHONE: &str = "1ef970831d7963307784fa8688e8fce101a15685d62aa765fed23f3a2c576a4e";
    const MAID: &str = "38400000-8cf0-11bd-b23e-10b96e40000d";

    fn user(key: &str, ids: &[(&str, &str)]) -> RawUser {
        RawUser {
            key: key.into(),
            identifiers: ids.iter().map(|(k, v)| Identifier { kind: (*k).into(), value: (*v).into() }).collect(),
            consent: None,
        }
    }

    fn fields(kinds: &[&str]) -> Vec<String> {
        kinds.iter().map(|k| (*k).to_string()).collect()
    }

    fn prepare(kinds: &[&str], users: Vec<RawUser>) -> Vec<Preparation> {
        prepare_users(&FakeHost::new(vec![]), &fields(kinds), users, 2026)
    }

    fn ready(out: &Preparation) -> Vec<(String, String)> {
        match out {
            Preparation::Ready(u) => u.identifiers.iter().map(|i| (i.kind.clone(), i.value.clone())).collect(),
            Preparation::NotSynced(reason) => panic!("not synced: {reason}"),
        }
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    fn reason(out: &Preparation) -> &str {
        match out {
            Preparation::NotSynced(reason) => reason,
            Preparation::Ready(u) => panic!("ready: {u:?}"),
        }
    }

    #[test]
    fn the_notes_examples_hash_as_documented() {
        let out = prepare(
            &["email", "phone"],
            vec![user("u", &[("email", " Mary@Example.com "), ("phone", "+1 (555) 987-6543")])],
        );
        assert_eq!(ready(&out[0]), pairs(&[("email", MARY), ("phone", PHONE)]));
    }

    #[test]
    fn every_kind_in_schema_order_with_derived_kinds() {
        let all = [
            "email",
            "phone",
            "first-name",
            "last-name",
            "date-of-birth",
            "gender",
            "city",
            "region",
            "postal-code",
            "country",
            "mobile-ad-id",
            "idfa",
            "external-id",
        ];
        let out = prepare(
            &all,
            vec![user(
                "u",
                &[
                    ("country", "US"),
                    ("idfa", "1DFA0000-0000-4000-8000-000000000001"),
                    ("mobile-ad-id", "38400000-8CF0-11BD-B23E-10B96E40000D"),
                    ("external-id", " crm-42 "),
                    ("postal-code", "94105-1234"),
                    ("region", "California"),
                    ("city", "San Francisco"),
                    ("gender", "Female"),
                    ("date-of-birth", "1990-05-07"),
                    ("last-name", "O'Brien"),
                    ("first-name", "Mary"),
                    ("phone", "(555) 987-6543"),
                    ("email", "mary@example.com"),
                ],
            )],
        );
        assert_eq!(
            ready(&out[0]),
            pairs(&[
                ("external-id", "crm-42"),
                ("email", MARY),
                ("phone", &sha256_hex("5559876543")),
                ("gender", &sha256_hex("f")),
                ("dob-year", &sha256_hex("1990")),
                ("dob-month", &sha256_hex("05")),
                ("dob-day", &sha256_hex("07")),
                ("last-name", &sha256_hex("obrien")),
                ("first-name", &sha256_hex("mary")),
                ("first-initial", &sha256_hex("m")),
                ("city", &sha256_hex("sanfrancisco")),
                ("region", &sha256_hex("ca")),
                ("postal-code", &sha256_hex("94105")),
                ("mobile-ad-id", MAID),
                ("country", &sha256_hex("us")),
            ])
        );
    }

    #[test]
    fn a_national_phone_gets_the_calling_code_when_country_is_not_sent() {
        let u = || user("u", &[("phone", "(555) 987-6543"), ("country", "us")]);
        assert_eq!(ready(&prepare(&["phone"], vec![u()])[0]), pairs(&[("phone", PHONE)]));
        let with_country = ready(&prepare(&["phone", "country"], vec![u()])[0]);
        assert_eq!(with_country[0], ("phone".into(), sha256_hex("5559876543")));
    }

    #[test]
    fn one_value_per_key_first_valid_wins_in_field_priority() {
        let u = user(
            "u",
            &[
                ("email", "bob@"),
                ("email", "mary@example.com"),
                ("email", "other@example.com"),
                ("idfa", MAID),
                ("mobile-ad-id", "c0ffee00-0000-4000-8000-000000000001"),
            ],
        );
        let out = prepare(&["idfa", "email", "mobile-ad-id"], vec![u]);
        assert_eq!(ready(&out[0]), pairs(&[("email", MARY), ("idfa", MAID)]));
    }

    #[test]
    fn only_selected_kinds_are_kept_and_consent_is_copied() {
        let mut u = user("u", &[("email", "mary@example.com"), ("phone", "+15559876543"), ("gender", "f")]);
        let consent = Consent { ad_user_data: ConsentStatus::Granted, ad_personalization: ConsentStatus::Denied };
        u.consent = Some(consent);
        let out = prepare_users(&FakeHost::new(vec![]), &fields(&["email", "shoe-size"]), vec![u], 2026);
        let Preparation::Ready(prepared) = &out[0] else { panic!("{out:?}") };
        assert_eq!(prepared.consent, Some(consent));
        assert_eq!(prepared.identifiers.len(), 1);
    }

    #[test]
    fn pre_hashed_values_pass_through() {
        let upper = MARY.to_ascii_uppercase();
        let out = prepare(
            &["email", "first-name", "last-name"],
            vec![user("u", &[("email", &upper), ("first-name", &upper), ("last-name", "Smith")])],
        );
        assert_eq!(
            ready(&out[0]),
            pairs(&[("email", MARY), ("last-name", &sha256_hex("smith")), ("first-name", MARY)])
        );
    }

    #[test]
    fn not_synced_reasons() {
        let out = prepare(
            &["email", "phone", "gender", "first-name", "last-name"],
            vec![
                user("a", &[("email", "bob@"), ("phone", "phone")]),
                user("b", &[]),
                user("c", &[("gender", "f"), ("last-name", "Smith")]),
                user("d", &[("first-name", "Mary"), ("last-name", "Smith")]),
                user("e", &[("email", "a"), ("email", "b"), ("email", "c"), ("email", "d"), ("email", "e")]),
            ],
        );
        assert_eq!(
            reason(&out[0]),
            "no usable email: 'bob@' has no domain; no usable phone: 'phone' has no phone number digits"
        );
        assert_eq!(
            reason(&out[1]),
            "none of the selected fields (email, phone, gender, first-name, last-name) is present"
        );
        assert!(reason(&out[2]).starts_with("only gender, last-name can be sent"), "{}", reason(&out[2]));
        assert_eq!(ready(&out[3]).len(), 3, "first and last name together can match");
        assert!(reason(&out[4]).ends_with("; and 2 more"), "{}", reason(&out[4]));
        let none = prepare(&["shoe-size"], vec![user("x", &[("shoe-size", "9")])]);
        assert_eq!(reason(&none[0]), "none of the selected fields (shoe-size) can be matched on Meta");
    }

    #[test]
    fn hashing_is_one_bulk_host_call_and_deterministic() {
        let host = FakeHost::new(vec![]);
        let users: Vec<RawUser> = (0..50)
            .map(|i| user(&format!("u{i}"), &[("email", &format!("user{i}@example.com")), ("mobile-ad-id", MAID)]))
            .collect();
        let first = prepare_users(&host, &fields(&["email", "mobile-ad-id"]), users.clone(), 2026);
        assert_eq!(*host.hash_calls.borrow(), vec![50], "MADIDs are not hashed; one call for all emails");
        assert_eq!(first, prepare_users(&host, &fields(&["email", "mobile-ad-id"]), users, 2026));
        assert_eq!(first.len(), 50);
    }
}
