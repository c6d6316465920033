//! `prepare-users`: pick, normalise and hash each user's identifiers, locally and
//! deterministically (a user's preparation depends on nothing but the fields and that user).
//!
//! The list's key type is the type of the sync's first supported field
//! ([`KeyType::for_fields`]); only the selected fields of that type are used:
//!
//! - **Contact info**: every valid `email` and `phone` value (repeats are allowed by Google, and
//!   each one is a chance to match), and one address when `first-name`, `last-name`, `country`
//!   and `postal-code` are all selected and the user has a valid value of each (Google fails a
//!   request with an incomplete address). At most 10 identifiers, an address counting as one,
//!   taken in the order of the fields (an address at the place of its first field), each
//!   kind's values in the caller's order; duplicates (after normalisation) are sent once.
//! - **Mobile ids**: every valid `mobile-ad-id` and `idfa` value, at most 10.
//! - **User id**: the first valid `external-id` (a member carries one).
//!
//! The user's country (the first valid `country` value, selected or not) gives a phone number
//! written without a calling code its country's code.
//!
//! Prepared identifiers keep the host's kind names: `email` and `phone` are SHA-256 hex,
//! `first-name` and `last-name` too (the address's given and family name), `country` and
//! `postal-code` are plain (Google wants them unhashed), mobile ids and the external id are
//! raw. All values to hash go to the host's `hashing` import in one bulk call (normalisation
//! `none`: Google's rules were applied here). A user with nothing usable is `not-synced`, with
//! the reasons (at most three) in words an operator can act on.

use audience_plugin_sdk::Host;
use audience_plugin_sdk::hashing::Normalization;
use audience_plugin_sdk::identity::{HashQueue, HashTicket, HashedValues};
use audience_plugin_sdk::kinds;
use audience_plugin_sdk::types::{Consent, Identifier, IdentifierKind, Preparation, PreparedUser, RawUser};

use crate::kinds::{ADDRESS, KeyType, SUPPORTED};
use crate::normalize::{self, Normalised};

/// The most identifiers (an address counting as one) or mobile ids one member carries.
pub const MAX_IDENTIFIERS: usize = 10;

/// How many problems a not-synced reason lists.
const MAX_REASONS: usize = 3;

/// One prepared value: waiting for its digest, or sent as is.
enum Pending {
    Hash(HashTicket),
    Literal(String),
}

impl Pending {
    fn resolve(self, hashed: &mut HashedValues) -> String {
        match self {
            Pending::Hash(ticket) => hashed.take(ticket),
            Pending::Literal(value) => value,
        }
    }
}

/// A user half-way: identifiers chosen, digests not yet computed.
enum Draft {
    Ready { key: String, consent: Option<Consent>, ids: Vec<(&'static str, Pending)> },
    NotSynced(String),
}

/// Queue a normalised value of a hashed kind.
fn queue_hashed(queue: &mut HashQueue, value: Normalised) -> Pending {
    match value {
        Normalised::Plain(v) => Pending::Hash(queue.push(Normalization::None, v)),
        Normalised::Hashed(d) => Pending::Hash(queue.push_hashed(&d)),
    }
}

fn plain(value: Normalised) -> String {
    match value {
        Normalised::Plain(v) | Normalised::Hashed(v) => v,
    }
}

/// The values of `kind` the user carries.
fn values<'a>(user: &'a RawUser, kind: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    user.identifiers.iter().filter(move |i| i.kind == kind).map(|i| i.value.as_str())
}

/// The first valid value of `kind`, or the reason the last one was refused.
fn first_valid<T>(
    user: &RawUser,
    kind: &str,
    normalise: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    let mut last_error = None;
    for value in values(user, kind) {
        match normalise(value) {
            Ok(v) => return Ok(Some(v)),
            Err(e) => last_error = Some(e),
        }
    }
    match last_error {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

/// The user's country for context: the first value that is a country code (lowercase).
fn context_country(user: &RawUser) -> Option<String> {
    values(user, kinds::COUNTRY).find_map(|v| normalize::country_code(v).ok())
}

/// The kinds of `fields` of type `key_type`, each once, in order.
fn selected(fields: &[IdentifierKind], key_type: KeyType) -> Vec<&'static str> {
    let mut kinds: Vec<&'static str> = Vec::new();
    for field in fields {
        if let Some(kind) = key_type.kinds().iter().copied().find(|k| *k == field.as_str())
            && !kinds.contains(&kind)
        {
            kinds.push(kind);
        }
    }
    kinds
}

struct Chooser<'a> {
    user: &'a RawUser,
    queue: &'a mut HashQueue,
    ids: Vec<(&'static str, Pending)>,
    units: usize,
    seen: Vec<(&'static str, String)>,
    problems: Vec<String>,
}

impl Chooser<'_> {
    fn full(&self) -> bool {
        self.units >= MAX_IDENTIFIERS
    }

    fn problem(&mut self, kind: &str, reason: String) {
        self.problems.push(format!("{kind} {reason}"));
    }

    /// Every valid value of `kind`, hashed or not, deduplicated, while there is room.
    fn each(&mut self, kind: &'static str, hashed: bool, normalise: impl Fn(&str) -> Result<Normalised, String>) {
        let user = self.user;
        for value in values(user, kind) {
            if self.full() {
                return;
            }
            match normalise(value) {
                Ok(n) => {
                    let text = match &n {
                        Normalised::Plain(v) | Normalised::Hashed(v) => v.clone(),
                    };
                    if self.seen.iter().any(|(k, v)| *k == kind && *v == text) {
                        continue;
                    }
                    self.seen.push((kind, text));
                    let pending = if hashed { queue_hashed(self.queue, n) } else { Pending::Literal(plain(n)) };
                    self.ids.push((kind, pending));
                    self.units += 1;
                }
                Err(reason) => self.problem(kind, reason),
            }
        }
    }

    /// One address from the first valid value of each part.
    fn address(&mut self) {
        let user = self.user;
        let has_any = ADDRESS.iter().any(|k| values(user, k).next().is_some());
        if !has_any || self.full() {
            return;
        }
        let given = first_valid(user, kinds::FIRST_NAME, normalize::name);
        let family = first_valid(user, kinds::LAST_NAME, normalize::name);
        let country = first_valid(user, kinds::COUNTRY, normalize::country_code);
        // A postal code is read in its country; without a valid country it is not judged.
        let postal = match &country {
            Ok(Some(code)) => first_valid(user, kinds::POSTAL_CODE, |v| normalize::postal_code(v, code)),
            _ => Ok(Some(Normalised::Plain(String::new()))),
        };
        match (given, family, country, postal) {
            (Ok(Some(given)), Ok(Some(family)), Ok(Some(country)), Ok(Some(postal))) => {
                let given = queue_hashed(self.queue, given);
                let family = queue_hashed(self.queue, family);
                self.ids.push((kinds::FIRST_NAME, given));
                self.ids.push((kinds::LAST_NAME, family));
                self.ids.push((kinds::COUNTRY, Pending::Literal(country.to_ascii_uppercase())));
                self.ids.push((kinds::POSTAL_CODE, Pending::Literal(plain(postal))));
                self.units += 1;
            }
            (given, family, country, postal) => {
                let parts = [
                    (kinds::FIRST_NAME, given.map(|v| v.is_some())),
                    (kinds::LAST_NAME, family.map(|v| v.is_some())),
                    (kinds::COUNTRY, country.map(|v| v.is_some())),
                    (kinds::POSTAL_CODE, postal.map(|v| v.is_some())),
                ];
                let mut missing = Vec::new();
                for (kind, part) in parts {
                    match part {
                        Ok(true) => {}
                        Ok(false) => missing.push(kind),
                        Err(reason) => self.problem(kind, reason),
                    }
                }
                if !missing.is_empty() {
                    self.problems.push(format!(
                        "no complete address: no valid {} (Google takes an address only with a first name, last \
                         name, country and postal code)",
                        missing.join(", ")
                    ));
                }
            }
        }
    }
}

/// What the user lacks, for the not-synced reason when no value was refused.
fn nothing_reason(key_type: KeyType, first: &str, kinds: &[&str]) -> String {
    if key_type == KeyType::ContactId && !ADDRESS.iter().all(|k| kinds.contains(k)) {
        let sent: Vec<&str> = kinds.iter().copied().filter(|k| !ADDRESS.contains(k)).collect();
        let partial: Vec<&str> = kinds.iter().copied().filter(|k| ADDRESS.contains(k)).collect();
        if sent.is_empty() {
            return format!(
                "nothing to send: the selected {} make no complete address (Google takes an address only with \
                 first-name, last-name, country and postal-code selected together)",
                partial.join(", ")
            );
        }
        return format!("no valid {}", sent.join(" or "));
    }
    format!(
        "no valid {}: this sync's Google list holds {} (the first match field the plugin supports is {first})",
        kinds.join(" or "),
        key_type.words()
    )
}

fn draft(fields: &[IdentifierKind], user: RawUser, queue: &mut HashQueue) -> Draft {
    let Some(key_type) = KeyType::for_fields(fields) else {
        return Draft::NotSynced(format!(
            "none of the sync's match fields is one Google matches on ({})",
            SUPPORTED.join(", ")
        ));
    };
    let first = fields.iter().find(|f| KeyType::of_kind(f).is_some()).map_or("", String::as_str);
    let sent_kinds = selected(fields, key_type);
    let mut chooser = Chooser { user: &user, queue, ids: Vec::new(), units: 0, seen: Vec::new(), problems: vec![] };
    match key_type {
        KeyType::ContactId => {
            let country = context_country(&user);
            let whole_address = ADDRESS.iter().all(|k| sent_kinds.contains(k));
            let mut address_done = false;
            for kind in &sent_kinds {
                match *kind {
                    kinds::EMAIL => chooser.each(kinds::EMAIL, true, normalize::email),
                    kinds::PHONE => chooser.each(kinds::PHONE, true, |v| normalize::phone(v, country.as_deref())),
                    _ if whole_address && !address_done => {
                        address_done = true;
                        chooser.address();
                    }
                    _ => {}
                }
            }
        }
        KeyType::MobileId => {
            for kind in &sent_kinds {
                let ios = *kind == kinds::IDFA;
                chooser.each(kind, false, |v| normalize::mobile_id(v, ios));
            }
        }
        KeyType::UserId => match first_valid(&user, kinds::EXTERNAL_ID, normalize::external_id) {
            Ok(Some(id)) => {
                chooser.ids.push((kinds::EXTERNAL_ID, Pending::Literal(plain(id))));
            }
            Ok(None) => {}
            Err(reason) => chooser.problem(kinds::EXTERNAL_ID, reason),
        },
    }
    let Chooser { ids, mut problems, .. } = chooser;
    if !ids.is_empty() {
        return Draft::Ready { key: user.key, consent: user.consent, ids };
    }
    if problems.is_empty() {
        return Draft::NotSynced(nothing_reason(key_type, first, &sent_kinds));
    }
    let more = problems.len().saturating_sub(MAX_REASONS);
    problems.truncate(MAX_REASONS);
    let mut reason = format!("no usable {}: {}", key_type.words(), problems.join("; "));
    if more > 0 {
        reason.push_str(&format!("; and {more} more"));
    }
    Draft::NotSynced(reason)
}

/// `prepare-users`: one preparation per user, in order.
pub fn prepare_users(host: &dyn Host, fields: &[IdentifierKind], users: Vec<RawUser>) -> Vec<Preparation> {
    let mut queue = HashQueue::new();
    let drafts: Vec<Draft> = users.into_iter().map(|user| draft(fields, user, &mut queue)).collect();
    let mut hashed = queue.hash(host);
    drafts
        .into_iter()
        .map(|draft| match draft {
            Draft::NotSynced(reason) => Preparation::NotSynced(reason),
            Draft::Ready { key, consent, ids } => Preparation::Ready(PreparedUser {
                key,
                identifiers: ids
                    .into_iter()
                    .map(|(kind, pending)| Identifier { kind: kind.to_string(), value: pending.resolve(&mut hashed) })
                    .collect(),
                consent,
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use audience_plugin_sdk::identity::sha256_hex;
    use audience_plugin_sdk::types::ConsentStatus;

    use super::*;
    use crate::testing::FakeHost;

    fn user(key: &str, ids: &[(&str, &str)]) -> RawUser {
        RawUser {
            key: key.into(),
            identifiers: ids.iter().map(|(k, v)| Identifier { kind: (*k).into(), value: (*v).into() }).collect(),
            consent: None,
        }
    }

    fn fields(names: &[&str]) -> Vec<IdentifierKind> {
        kinds::list(names)
    }

    fn ready(p: &Preparation) -> Vec<(String, String)> {
        match p {
            Preparation::Ready(u) => u.identifiers.iter().map(|i| (i.kind.clone(), i.value.clone())).collect(),
            Preparation::NotSynced(why) => panic!("not synced: {why}"),
        }
    }

    fn why(p: &Preparation) -> String {
        match p {
            Preparation::NotSynced(why) => why.clone(),
            Preparation::Ready(u) => panic!("ready: {u:?}"),
        }
    }

    const ALL: [&str; 9] =
        ["email", "phone", "first-name", "last-name", "country", "postal-code", "mobile-ad-id", "idfa", "external-id"];

    #[test]
    fn a_contact_member_holds_emails_phones_and_one_address() {
        let host = FakeHost::new(vec![]);
        let u = user(
            "u1",
            &[
                ("email", " AlexZ@Example.com "),
                ("email", "alexz@example.com"),
                ("email", "Cloudy.SanFrancisco+shopping@gmail.com"),
                ("phone", "(800) 555-0100"),
                ("country", "us"),
                ("first-name", "Dr. Alex"),
                ("last-name", "Zed Jr."),
                ("postal-code", "94103"),
                ("idfa", "C0FFEE00-0000-4000-8000-0000000000AB"),
            ],
        );
        let out = prepare_users(&host, &fields(&ALL), vec![u]);
        assert_eq!(
            ready(&out[0]),
            vec![
                ("email".into(), sha256_hex("alexz@example.com")),
                ("email".into(), sha256_hex("cloudysanfrancisco@gmail.com")),
                ("phone".into(), sha256_hex("+18005550100")),
                ("first-name".into(), sha256_hex("alex")),
                ("last-name".into(), sha256_hex("zed")),
                ("country".into(), "US".into()),
                ("postal-code".into(), "94103".into()),
            ]
        );
        assert_eq!(host.hash_calls.borrow().as_slice(), &[5], "one bulk hash call");
    }

    #[test]
    fn the_first_supported_field_decides_the_list_type() {
        let host = FakeHost::new(vec![]);
        let u = user("u", &[("email", "a@example.com"), ("mobile-ad-id", "C0FFEE00-0000-4000-8000-0000000000AB")]);
        let out = prepare_users(&host, &fields(&["shoe-size", "mobile-ad-id", "email"]), vec![u.clone()]);
        assert_eq!(ready(&out[0]), vec![("mobile-ad-id".into(), "c0ffee00-0000-4000-8000-0000000000ab".into())]);
        let only_email = user("e", &[("email", "a@example.com")]);
        let out = prepare_users(&host, &fields(&["idfa", "email"]), vec![only_email]);
        assert_eq!(
            why(&out[0]),
            "no valid idfa: this sync's Google list holds mobile advertising ids (mobile-ad-id, idfa) (the first match \
             field the plugin supports is idfa)"
        );
        let out = prepare_users(&host, &fields(&["external-id"]), vec![user("x", &[("external-id", " C-42 ")])]);
        assert_eq!(ready(&out[0]), vec![("external-id".into(), "C-42".into())]);
        let out = prepare_users(&host, &fields(&["gender"]), vec![u]);
        assert!(why(&out[0]).contains("none of the sync's match fields"));
    }

    #[test]
    fn an_address_needs_all_four_parts() {
        let host = FakeHost::new(vec![]);
        let partial = user("p", &[("first-name", "Ann"), ("last-name", "Lee"), ("country", "us")]);
        let out = prepare_users(&host, &fields(&ADDRESS), vec![partial.clone()]);
        assert!(why(&out[0]).contains("no complete address: no valid postal-code"), "{}", why(&out[0]));
        let out = prepare_users(&host, &fields(&["first-name", "last-name"]), vec![partial]);
        assert!(why(&out[0]).contains("make no complete address"), "{}", why(&out[0]));
        let bad = user("b", &[("first-name", "Ann"), ("last-name", "Lee"), ("country", "usa"), ("postal-code", "1")]);
        let out = prepare_users(&host, &fields(&ADDRESS), vec![bad]);
        assert!(why(&out[0]).contains("country 'usa' is not a two-letter"), "{}", why(&out[0]));
    }

    #[test]
    fn phones_take_the_country_as_context_and_reasons_are_actionable() {
        let host = FakeHost::new(vec![]);
        let u = user("u", &[("phone", "020 7946 0958"), ("country", "GB")]);
        let out = prepare_users(&host, &fields(&["phone"]), vec![u]);
        assert_eq!(ready(&out[0]), vec![("phone".into(), sha256_hex("+442079460958"))]);
        let bad = user("b", &[("email", "bob@"), ("phone", "555-0001"), ("phone", "call me")]);
        let out = prepare_users(&host, &fields(&["email", "phone"]), vec![bad]);
        let reason = why(&out[0]);
        assert!(reason.starts_with("no usable contact info"), "{reason}");
        assert!(reason.contains("email 'bob@' has no domain"), "{reason}");
        assert!(reason.contains("phone '555-0001' has no country code"), "{reason}");
    }

    #[test]
    fn at_most_ten_identifiers_and_hashes_pass_through() {
        let host = FakeHost::new(vec![]);
        let emails: Vec<String> = (0..12).map(|i| format!("u{i}@example.com")).collect();
        let mut ids: Vec<(&str, &str)> = emails.iter().map(|e| ("email", e.as_str())).collect();
        let digest = "509E933019BB285A134A9334B8BB679DFF79D0CE023D529AF4BD744D47B4FD8A";
        ids.insert(0, ("email", digest));
        let out = prepare_users(&host, &fields(&["email"]), vec![user("u", &ids)]);
        let got = ready(&out[0]);
        assert_eq!(got.len(), MAX_IDENTIFIERS);
        assert_eq!(got[0].1, digest.to_ascii_lowercase());
    }

    #[test]
    fn consent_is_copied_and_output_is_deterministic() {
        let host = FakeHost::new(vec![]);
        let mut u = user("u", &[("email", "a@example.com")]);
        u.consent = Some(Consent { ad_user_data: ConsentStatus::Granted, ad_personalization: ConsentStatus::Denied });
        let a = prepare_users(&host, &fields(&ALL), vec![u.clone(), user("n", &[])]);
        let b = prepare_users(&host, &fields(&ALL), vec![user("n", &[]), u.clone()]);
        assert_eq!(a[0], b[1]);
        assert_eq!(a[1], b[0]);
        match &a[0] {
            Preparation::Ready(p) => assert_eq!(p.consent, u.consent),
            other => panic!("{other:?}"),
        }
    }
}
