//! Checks on `prepare-users`: one preparation per user in order, deterministic, local, and
//! robust to empty, huge and odd input; since contract 0.2.0 also consent passed through and
//! the order of the selected fields honoured. The suite also prepares here the well-formed
//! users the delivery checks send, so every `prepare-users` call happens inside the no-network
//! window.

use std::time::Instant;

use sha2::{Digest, Sha256};

use super::inputs::{WELL_KNOWN_KINDS, consents, odd_users, plain_users, plain_value, user};
use super::report::CheckResult;
use super::suite::{Suite, denied_lines, excerpt, summarize_denied};
use audience_runtime::types::{
    AudienceKeys, Consent, ConsentStatus, Features, Identifier, IdentifierKind, Preparation, PreparedUser, RawUser,
};

/// Users in the `prepare.huge` call.
pub const HUGE: usize = 10_000;
/// Users in the `prepare.well-formed` call.
const WELL_FORMED: usize = 100;
/// The most users the suite puts in one `prepare-users` call when preparing delivery users.
const CHUNK: usize = 10_000;

/// Run the `prepare.*` checks; returns the prepared users for the delivery checks (at least
/// twice `max-batch-size` of them when the plugin made them ready), or why there are none.
pub async fn run(suite: &mut Suite) -> Result<Vec<PreparedUser>, String> {
    let request_mark = suite.stand_in.request_count();
    let log_mark = suite.logs().len();
    let kinds = suite.manifest.identifiers.clone();

    empty(suite, &kinds).await;
    well_formed(suite, &kinds).await;
    selected_fields(suite, &kinds).await;
    huge(suite, &kinds).await;
    odd_input(suite, &kinds).await;
    deterministic(suite, &kinds).await;
    normalises(suite, &kinds).await;
    already_hashed(suite, &kinds).await;
    consent(suite, &kinds).await;
    field_order(suite, &kinds).await;
    let delivery = delivery_users(suite, &kinds).await;

    let requests = suite.stand_in.requests_since(request_mark);
    let denied = denied_lines(&suite.logs_since(log_mark));
    let mut problems = Vec::new();
    if !requests.is_empty() {
        let first = &requests[0];
        problems.push(format!(
            "prepare-users sent {} request(s) to the partner (first: {} {})",
            requests.len(),
            first.method,
            first.path
        ));
    }
    if !denied.is_empty() {
        problems.push(format!(
            "prepare-users tried {} network request(s) the host refused: {}",
            denied.len(),
            excerpt(&summarize_denied(&denied), 300)
        ));
    }
    suite.push(CheckResult::from_problems("prepare.no-network", &problems, "no request during any prepare-users call"));
    delivery
}

async fn prepare(suite: &Suite, fields: &[IdentifierKind], users: Vec<RawUser>) -> Result<Vec<Preparation>, String> {
    suite.plugin.prepare_users(fields, users).await.map_err(|e| e.to_string())
}

/// Problems with `out` as the preparation of `users`: keys, empty ready users, blank values.
fn shape_problems(users: &[RawUser], out: &[Preparation]) -> Vec<String> {
    let mut problems = Vec::new();
    for (user, prep) in users.iter().zip(out) {
        if let Preparation::Ready(ready) = prep {
            if ready.key != user.key {
                problems.push(format!(
                    "user {:?} came back with key {:?}",
                    excerpt(&user.key, 40),
                    excerpt(&ready.key, 40)
                ));
            } else if ready.identifiers.is_empty() {
                problems.push(format!("user {:?} is ready with no identifier", excerpt(&user.key, 40)));
            } else if ready.identifiers.iter().any(|i| i.value.trim().is_empty()) {
                problems.push(format!("user {:?} is ready with a blank identifier value", excerpt(&user.key, 40)));
            }
        }
        if problems.len() >= 3 {
            break;
        }
    }
    problems
}

async fn empty(suite: &mut Suite, kinds: &[IdentifierKind]) {
    let check = match prepare(suite, kinds, vec![]).await {
        Ok(out) if out.is_empty() => CheckResult::pass("prepare.empty", "no users in, no preparations out"),
        Ok(out) => CheckResult::fail("prepare.empty", format!("0 users gave {} preparations", out.len())),
        Err(e) => CheckResult::fail("prepare.empty", format!("0 users: {e}")),
    };
    suite.push(check);
}

async fn well_formed(suite: &mut Suite, kinds: &[IdentifierKind]) {
    let users = plain_users(kinds, 0, WELL_FORMED);
    let check = match prepare(suite, kinds, users.clone()).await {
        Err(e) => CheckResult::fail("prepare.well-formed", e),
        Ok(out) => {
            let mut problems = shape_problems(&users, &out);
            let refused: Vec<String> = out
                .iter()
                .filter_map(|p| match p {
                    Preparation::NotSynced(why) => Some(why.clone()),
                    Preparation::Ready(_) => None,
                })
                .collect();
            if let Some(first) = refused.first() {
                problems.push(format!(
                    "{} of {WELL_FORMED} users with a well-formed value of every declared kind were not-synced \
                     (first: {})",
                    refused.len(),
                    excerpt(first, 120)
                ));
            }
            let sample = users.first().map(describe_user).unwrap_or_default();
            CheckResult::from_problems(
                "prepare.well-formed",
                &problems,
                format!("{WELL_FORMED} users like {sample} are all ready, keys kept"),
            )
        }
    };
    suite.push(check);
}

fn describe_user(user: &RawUser) -> String {
    let values: Vec<String> = user.identifiers.iter().map(|i| format!("{}={}", i.kind, i.value)).collect();
    format!("[{}]", values.join(", "))
}

async fn selected_fields(suite: &mut Suite, kinds: &[IdentifierKind]) {
    let mut all: Vec<IdentifierKind> = WELL_KNOWN_KINDS.iter().map(|k| k.to_string()).collect();
    all.extend(kinds.iter().filter(|k| !all.contains(k)).cloned().collect::<Vec<_>>());
    let users = plain_users(&all, 0, 5);
    let mut problems = Vec::new();
    let mut cases: Vec<Vec<IdentifierKind>> = kinds.iter().map(|k| vec![k.clone()]).collect();
    cases.push(vec![]);
    let undeclared: Vec<IdentifierKind> = all.iter().filter(|k| !kinds.contains(k)).cloned().collect();
    if !undeclared.is_empty() {
        cases.push(undeclared);
    }
    for fields in cases {
        let names = fields.join(", ");
        match prepare(suite, &fields, users.clone()).await {
            Err(e) => problems.push(format!("fields [{names}]: {e}")),
            Ok(out) => {
                let allowed: Vec<&IdentifierKind> = fields.iter().filter(|k| kinds.contains(k)).collect();
                for prep in &out {
                    if let Preparation::Ready(ready) = prep
                        && let Some(extra) = ready.identifiers.iter().find(|i| !allowed.contains(&&i.kind))
                    {
                        problems.push(format!("fields [{names}]: a ready user carries a {} identifier", extra.kind));
                        break;
                    }
                }
            }
        }
    }
    suite.push(CheckResult::from_problems(
        "prepare.selected-fields",
        &problems,
        "ready users only carry identifiers of the selected, declared kinds",
    ));
}

async fn huge(suite: &mut Suite, kinds: &[IdentifierKind]) {
    let users = plain_users(kinds, 0, HUGE);
    let started = Instant::now();
    let check = match prepare(suite, kinds, users).await {
        Ok(_) => CheckResult::pass(
            "prepare.huge",
            format!("{HUGE} users prepared in one call in {} ms", started.elapsed().as_millis()),
        ),
        Err(e) => CheckResult::fail("prepare.huge", format!("{HUGE} users in one call: {e}")),
    };
    suite.push(check);
}

async fn odd_input(suite: &mut Suite, kinds: &[IdentifierKind]) {
    let users = odd_users(kinds);
    let count = users.len();
    let check = match prepare(suite, kinds, users.clone()).await {
        Err(e) => CheckResult::fail("prepare.odd-input", e),
        Ok(out) => {
            let ready = out.iter().filter(|p| matches!(p, Preparation::Ready(_))).count();
            CheckResult::from_problems(
                "prepare.odd-input",
                &shape_problems(&users, &out),
                format!(
                    "{count} users with unicode, whitespace, uppercase, hashed, empty, 10 KB and control-character \
                     values: {ready} ready, {} not-synced",
                    count - ready
                ),
            )
        }
    };
    suite.push(check);
}

async fn deterministic(suite: &mut Suite, kinds: &[IdentifierKind]) {
    let mut users = odd_users(kinds);
    users.extend(plain_users(kinds, 0, 50));
    let first = prepare(suite, kinds, users.clone()).await;
    let second = prepare(suite, kinds, users.clone()).await;
    let reversed_input: Vec<RawUser> = users.iter().rev().cloned().collect();
    let reversed = prepare(suite, kinds, reversed_input).await;
    let check = match (first, second, reversed) {
        (Ok(a), Ok(b), Ok(mut r)) => {
            r.reverse();
            if a != b {
                CheckResult::fail("prepare.deterministic", "the same input prepared twice gave different results")
            } else if a != r {
                CheckResult::fail(
                    "prepare.deterministic",
                    "a user's preparation depends on the other users in the call (reversed input differs)",
                )
            } else {
                CheckResult::pass(
                    "prepare.deterministic",
                    format!("{} users: same output twice and in reverse order", users.len()),
                )
            }
        }
        (a, b, r) => {
            let err = [a.err(), b.err(), r.err()].into_iter().flatten().next().unwrap_or_default();
            CheckResult::fail("prepare.deterministic", err)
        }
    };
    suite.push(check);
}

/// Spellings that must prepare alike: (kind, canonical, variants).
fn spellings(kind: &str) -> Option<(&'static str, [&'static str; 3])> {
    match kind {
        "email" => Some((
            "conformance.norm@example.com",
            ["  Conformance.Norm@Example.COM  ", "CONFORMANCE.NORM@EXAMPLE.COM\t", "\nconformance.norm@example.com"],
        )),
        "mobile-ad-id" | "idfa" => Some((
            "c0ffee00-0000-4000-8000-0000000000ab",
            [
                "C0FFEE00-0000-4000-8000-0000000000AB",
                "  c0ffee00-0000-4000-8000-0000000000ab ",
                "\tC0ffee00-0000-4000-8000-0000000000Ab",
            ],
        )),
        _ => None,
    }
}

fn single(kind: &str, value: &str) -> RawUser {
    user("norm", vec![Identifier { kind: kind.into(), value: value.into() }])
}

async fn prepared_value(suite: &Suite, kind: &str, value: &str) -> Result<Option<Vec<Identifier>>, String> {
    let out = prepare(suite, &[kind.to_string()], vec![single(kind, value)]).await?;
    Ok(match out.into_iter().next() {
        Some(Preparation::Ready(ready)) => Some(ready.identifiers),
        _ => None,
    })
}

async fn normalises(suite: &mut Suite, kinds: &[IdentifierKind]) {
    let mut problems = Vec::new();
    let mut tried = Vec::new();
    for kind in kinds {
        let Some((canonical, variants)) = spellings(kind) else { continue };
        tried.push(kind.as_str());
        let expected = match prepared_value(suite, kind, canonical).await {
            Ok(Some(ids)) => ids,
            Ok(None) => {
                problems.push(format!("{kind} {canonical:?} was not-synced"));
                continue;
            }
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        for variant in variants {
            match prepared_value(suite, kind, variant).await {
                Ok(Some(ids)) if ids == expected => {}
                Ok(_) => problems.push(format!(
                    "{kind} {variant:?} did not prepare like {canonical:?} (case and surrounding whitespace must not matter)"
                )),
                Err(e) => problems.push(e),
            }
        }
    }
    let ok = if tried.is_empty() {
        "no declared kind has a case-insensitive canonical form (email, device ids); nothing to compare".to_string()
    } else {
        format!("uppercase and padded spellings prepare like the canonical one ({})", tried.join(", "))
    };
    suite.push(CheckResult::from_problems("prepare.normalises", &problems, ok));
}

fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit())
}

async fn already_hashed(suite: &mut Suite, kinds: &[IdentifierKind]) {
    let mut problems = Vec::new();
    let mut hashed_kinds = Vec::new();
    for kind in kinds {
        let canonical = spellings(kind).map_or_else(|| plain_value(kind, 42), |(c, _)| c.to_string());
        let Ok(Some(ids)) = prepared_value(suite, kind, &canonical).await else { continue };
        let Some(value) = ids.iter().find(|i| &i.kind == kind).map(|i| i.value.clone()) else { continue };
        // Only a plain SHA-256 of the normalised value has an "already hashed" form a caller
        // could send; a salted or keyed hash has none.
        if !is_sha256_hex(&value) || value != hex::encode(Sha256::digest(canonical.as_bytes())) {
            continue;
        }
        hashed_kinds.push(kind.as_str());
        for input in [value.clone(), value.to_ascii_uppercase(), format!(" {value} ")] {
            match prepared_value(suite, kind, &input).await {
                Ok(Some(again)) if again.iter().any(|i| &i.kind == kind && i.value == value) => {}
                Ok(_) => problems.push(format!(
                    "an already-hashed {kind} {:?} was not passed through as {value} (hashed twice or refused)",
                    excerpt(&input, 20)
                )),
                Err(e) => problems.push(e),
            }
        }
    }
    let ok = if hashed_kinds.is_empty() {
        "the plugin sends no identifier as the plain SHA-256 of its normalised value; nothing to pass through"
            .to_string()
    } else {
        format!("SHA-256 hex input passes through unchanged ({})", hashed_kinds.join(", "))
    };
    suite.push(CheckResult::from_problems("prepare.already-hashed", &problems, ok));
}

fn status_name(status: ConsentStatus) -> &'static str {
    match status {
        ConsentStatus::Unspecified => "unspecified",
        ConsentStatus::Granted => "granted",
        ConsentStatus::Denied => "denied",
    }
}

fn consent_text(consent: &Option<Consent>) -> String {
    match consent {
        None => "none".into(),
        Some(c) => format!(
            "ad-user-data {}, ad-personalization {}",
            status_name(c.ad_user_data),
            status_name(c.ad_personalization)
        ),
    }
}

/// `prepare.consent` (0.2.0): a plugin declaring the `consent` feature copies every user's
/// consent to `prepared-user.consent` unchanged; one that does not may, and must not trap on it.
async fn consent(suite: &mut Suite, kinds: &[IdentifierKind]) {
    const NAME: &str = "prepare.consent";
    if suite.skip_for_v0_1_0(NAME) {
        return;
    }
    let signals = consents();
    let mut users = plain_users(kinds, 0, signals.len());
    for (user, signal) in users.iter_mut().zip(&signals) {
        user.consent = *signal;
    }
    let declares = suite.declares(Features::CONSENT);
    let check = match prepare(suite, kinds, users.clone()).await {
        Err(e) => CheckResult::fail(NAME, format!("users carrying consent: {e}")),
        Ok(out) => {
            let mut ready = 0;
            let mut changed = Vec::new();
            for (user, prep) in users.iter().zip(&out) {
                if let Preparation::Ready(prepared) = prep {
                    ready += 1;
                    if prepared.consent != user.consent {
                        changed.push(format!(
                            "user {:?} sent with consent {} came back with {}",
                            user.key,
                            consent_text(&user.consent),
                            consent_text(&prepared.consent)
                        ));
                    }
                }
            }
            let count = users.len();
            if ready == 0 {
                CheckResult::fail(NAME, format!("none of {count} well-formed users carrying consent was ready"))
            } else if declares && !changed.is_empty() {
                CheckResult::fail(
                    NAME,
                    format!(
                        "the plugin declares the consent feature, but {} of {ready} ready users came back with other \
                         consent (first: {}); prepared-user.consent must be the raw user's, unchanged",
                        changed.len(),
                        changed[0]
                    ),
                )
            } else if declares {
                CheckResult::pass(
                    NAME,
                    format!(
                        "consent passed through unchanged for {ready} users (none, and every combination of \
                         unspecified, granted and denied)"
                    ),
                )
            } else {
                let copied = if changed.is_empty() { "copied" } else { "not copied" };
                CheckResult::pass(
                    NAME,
                    format!(
                        "no consent feature (the partner takes none): {count} users carrying consent prepared, \
                         their consent {copied} to prepared-user.consent"
                    ),
                )
            }
        }
    };
    suite.push(check);
}

/// User `label` with well-formed values of `kinds` only.
fn with_kinds(label: &str, kinds: &[&IdentifierKind]) -> RawUser {
    let identifiers = kinds.iter().map(|k| Identifier { kind: (*k).clone(), value: plain_value(k, 77) }).collect();
    user(&format!("order-{label}"), identifiers)
}

/// One case of `prepare.field-order`: the fields, the user, whether it must be ready.
struct OrderCase {
    fields: Vec<IdentifierKind>,
    user: RawUser,
    ready: bool,
    why: String,
}

async fn order_problems(suite: &Suite, cases: Vec<OrderCase>) -> Vec<String> {
    let mut problems = Vec::new();
    for case in cases {
        let fields = case.fields.join(", ");
        let has: Vec<&str> = case.user.identifiers.iter().map(|i| i.kind.as_str()).collect();
        let has = has.join(" and ");
        match prepare(suite, &case.fields, vec![case.user]).await {
            Err(e) => problems.push(format!("fields [{fields}]: {e}")),
            Ok(out) => {
                let ready = matches!(out.first(), Some(Preparation::Ready(_)));
                if ready != case.ready {
                    let got = if ready { "ready" } else { "not-synced" };
                    problems.push(format!("fields [{fields}]: a user with {has} was {got}; {}", case.why));
                }
            }
        }
    }
    problems
}

/// `prepare.field-order` (0.2.0): a `one-kind` plugin lets the first selected field it
/// supports decide (a user lacking it is not-synced); a `multi-key` plugin sends whatever
/// selected field a user has.
async fn field_order(suite: &mut Suite, kinds: &[IdentifierKind]) {
    const NAME: &str = "prepare.field-order";
    if suite.skip_for_v0_1_0(NAME) {
        return;
    }
    let (Some(first), Some(second)) = (kinds.first(), kinds.get(1)) else {
        suite.push(CheckResult::pass(NAME, "fewer than two identifier kinds declared: no order to honour"));
        return;
    };
    let undeclared = WELL_KNOWN_KINDS.iter().map(|k| k.to_string()).find(|k| !kinds.contains(k));
    let (cases, ok) = match suite.manifest.audience_keys {
        AudienceKeys::OneKind => {
            let must_lack = |f: &str| {
                format!("a one-kind audience holds the first supported field ({f}), so a user lacking it is not-synced")
            };
            let must_have = |f: &str| format!("it has the first supported field ({f})");
            let mut cases = vec![
                OrderCase {
                    fields: vec![first.clone(), second.clone()],
                    user: with_kinds("second-only", &[second]),
                    ready: false,
                    why: must_lack(first),
                },
                OrderCase {
                    fields: vec![first.clone(), second.clone()],
                    user: with_kinds("both", &[first, second]),
                    ready: true,
                    why: must_have(first),
                },
                OrderCase {
                    fields: vec![second.clone(), first.clone()],
                    user: with_kinds("first-only", &[first]),
                    ready: false,
                    why: must_lack(second),
                },
                OrderCase {
                    fields: vec![second.clone(), first.clone()],
                    user: with_kinds("second-only", &[second]),
                    ready: true,
                    why: must_have(second),
                },
            ];
            if let Some(other) = &undeclared {
                let fields = vec![other.clone(), first.clone(), second.clone()];
                cases.push(OrderCase {
                    fields: fields.clone(),
                    user: with_kinds("undeclared-and-first", &[other, first]),
                    ready: true,
                    why: format!("{other} is not a supported kind, so {first} is the first supported field"),
                });
                cases.push(OrderCase {
                    fields,
                    user: with_kinds("undeclared-and-second", &[other, second]),
                    ready: false,
                    why: must_lack(first),
                });
            }
            let skipped = if undeclared.is_some() { ", an unsupported field first is skipped" } else { "" };
            (
                cases,
                format!(
                    "one-kind: the first supported selected field decides ([{first}, {second}] and [{second}, \
                     {first}]), a user lacking it is not-synced{skipped}"
                ),
            )
        }
        AudienceKeys::MultiKey => (
            vec![
                OrderCase {
                    fields: vec![first.clone(), second.clone()],
                    user: with_kinds("second-only", &[second]),
                    ready: true,
                    why: format!("a multi-key row is built from every selected field the user has ({second})"),
                },
                OrderCase {
                    fields: vec![second.clone(), first.clone()],
                    user: with_kinds("first-only", &[first]),
                    ready: true,
                    why: format!("a multi-key row is built from every selected field the user has ({first})"),
                },
            ],
            "multi-key: a user lacking the first selected field but having another is ready, in either order".into(),
        ),
    };
    let problems = order_problems(suite, cases).await;
    suite.push(CheckResult::from_problems(NAME, &problems, ok));
}

/// Prepare twice `max-batch-size` well-formed users for the delivery checks.
async fn delivery_users(suite: &Suite, kinds: &[IdentifierKind]) -> Result<Vec<PreparedUser>, String> {
    let max = suite.manifest.limits.max_batch_size as usize;
    if max == 0 || max > super::describe::MAX_SANE_BATCH as usize {
        return Err(format!("max-batch-size {max} is not sane (see describe.limits)"));
    }
    let wanted = max * 2;
    let mut ready = Vec::with_capacity(wanted);
    let mut from = 0;
    while from < wanted {
        let count = CHUNK.min(wanted - from);
        let out = prepare(suite, kinds, plain_users(kinds, from, count)).await?;
        ready.extend(out.into_iter().filter_map(|p| match p {
            Preparation::Ready(user) => Some(user),
            Preparation::NotSynced(_) => None,
        }));
        from += count;
    }
    if ready.len() < wanted {
        return Err(format!("prepare-users made only {} of {wanted} well-formed users ready", ready.len()));
    }
    Ok(ready)
}
