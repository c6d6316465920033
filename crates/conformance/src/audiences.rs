//! Checks on the audience exports of contract 0.2.0: `search-audiences`, `read-audience` and
//! `check-target`.
//!
//! The stand-in answers `200 {}` unless partner-shaped answers were given
//! (`ConformanceOptions::answers`, `--answers FILE`; see [`super::standin::Route`]), which are
//! installed for these checks only. Against `{}` a plugin sees an empty listing and an
//! audience it cannot read, so without answers these checks assert what holds whatever the
//! partner said (paging ends, ids round-trip, a 404 is `not-found`, nothing is created);
//! with answers they also check what the plugin makes of real pages.
//!
//! - `audiences.search`: with the `audience-search` feature, `search-audiences` with an empty
//!   query is followed from page to page by `next-cursor` until none, at most
//!   [`MAX_SEARCH_PAGES`] pages (a cursor that comes back twice is a loop); short and empty
//!   pages with a cursor are fine. Every audience has an id, `created` false and a size whose
//!   lower bound is not above its upper one, and no audience is listed twice. Each cursor
//!   round-trips: asking again with the first page's (none) and the second page's cursor gives
//!   the same pages. Without the feature, `search-audiences` answers `invalid-request`.
//! - `audiences.search-query`: the queries `Conformance`, `CONFORMANCE` and `conformance` find
//!   the same audiences (the query ignores case); when the plugin filters (it finds fewer than
//!   the empty query), every name found contains the query, ignoring case. A plugin that
//!   leaves filtering to the partner sees the stand-in ignore the query, which is fine.
//! - `audiences.read`: the suite gets an audience from `upsert-audience` (with
//!   `create-if-missing`), or, when that answers `create-with-first-batch`, from
//!   `batch-outcome.created` of an `add-users` with `create(spec)` (which must be set when that
//!   succeeds), else uses the id of `setup.audience-id`. `read-audience` of that id must not be
//!   refused without asking the partner; when it succeeds the audience has that id, `created`
//!   false and a sane size. Answered 404, it must say `not-found`.
//! - `audiences.check-target`: for an audience that does not exist (a random name the
//!   stand-in lists nowhere) with `create-if-missing` false, `check-target` returns problems,
//!   one of them about the audience, not an error; with `create-if-missing` true too, no request
//!   carries the spec's description (a random marker only a creation would send) or deletes,
//!   replaces or patches anything named like it.

use std::collections::{BTreeSet, HashSet};

use super::report::CheckResult;
use super::standin::{RecordedRequest, Script};
use super::suite::{Suite, excerpt};
use super::writes::{Op, write};
use audience_runtime::CallError;
use audience_runtime::types::{
    Audience, AudiencePage, AudienceSpec, AudienceState, AudienceTarget, DestinationError, Features, PreparedUser,
    TargetPart, UpsertOutcome,
};

/// The most `search-audiences` pages the suite follows for one query.
pub const MAX_SEARCH_PAGES: usize = 50;
/// The query of `audiences.search-query`, in three spellings.
pub const SEARCH_QUERIES: [&str; 3] = ["Conformance", "CONFORMANCE", "conformance"];
/// Users in the batch that creates the audience `audiences.read` reads.
const CREATE_BATCH: usize = 3;

/// Run the `audiences.*` checks; `users` are the delivery users (for creating an audience).
pub async fn run(suite: &mut Suite, users: Option<&[PreparedUser]>) {
    const NAMES: [&str; 4] = ["audiences.search", "audiences.search-query", "audiences.read", "audiences.check-target"];
    if suite.is_v0_1_0() {
        for name in NAMES {
            suite.skip_for_v0_1_0(name);
        }
        return;
    }
    suite.stand_in.script(Script::ok());
    suite.stand_in.routes(suite.options.answers.clone());
    search(suite).await;
    read(suite, users).await;
    check_target(suite).await;
    suite.stand_in.routes(Vec::new());
    suite.stand_in.script(Script::ok());
}

/// The pages of one query, followed from the first.
struct Walk {
    /// Each page with the cursor it was asked for.
    pages: Vec<(Option<String>, AudiencePage)>,
    /// Why the walk stopped early, if it did.
    problem: Option<String>,
}

impl Walk {
    fn audiences(&self) -> impl Iterator<Item = &Audience> {
        self.pages.iter().flat_map(|(_, page)| page.audiences.iter())
    }

    fn ids(&self) -> BTreeSet<String> {
        self.audiences().map(|a| a.id.clone()).collect()
    }
}

async fn search_page(
    suite: &mut Suite,
    query: &str,
    cursor: Option<String>,
) -> (Result<AudiencePage, CallError>, String) {
    let log_mark = suite.logs().len();
    let (config, creds, account) = (&suite.config, &suite.creds, suite.options.account_id.as_str());
    let result = suite.plugin.search_audiences(config, creds, account, query, cursor).await;
    let outcome = suite.outcome(&result, log_mark);
    (result, outcome)
}

async fn walk(suite: &mut Suite, query: &str) -> Walk {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    let mut seen: HashSet<String> = HashSet::new();
    for number in 1..=MAX_SEARCH_PAGES {
        let (result, outcome) = search_page(suite, query, cursor.clone()).await;
        let page = match result {
            Ok(page) => page,
            Err(_) => {
                let problem = format!("query {query:?}, page {number}: search-audiences answered {outcome}");
                return Walk { pages, problem: Some(problem) };
            }
        };
        let next = page.next_cursor.clone().filter(|c| !c.is_empty());
        pages.push((cursor, page));
        match next {
            None => return Walk { pages, problem: None },
            Some(next) if !seen.insert(next.clone()) => {
                let problem = format!(
                    "query {query:?}, page {number}: next-cursor {:?} came back a second time, so following it \
                     loops",
                    excerpt(&next, 60)
                );
                return Walk { pages, problem: Some(problem) };
            }
            Some(next) => cursor = Some(next),
        }
    }
    let problem = format!(
        "query {query:?}: still a next-cursor after {MAX_SEARCH_PAGES} pages against the stand-in (each call must \
         return a page and, at the end, none)"
    );
    Walk { pages, problem: Some(problem) }
}

/// Problems with an audience as a listing or `read-audience` returns it.
fn audience_problems(audience: &Audience, what: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if audience.id.trim().is_empty() {
        problems.push(format!("{what}: an audience ({:?}) has an empty id", excerpt(&audience.name, 40)));
    }
    if audience.created {
        problems
            .push(format!("{what}: audience {:?} says created, but nothing was created", excerpt(&audience.id, 40)));
    }
    if let (Some(lower), Some(upper)) = (audience.size.lower, audience.size.upper)
        && lower > upper
    {
        problems.push(format!(
            "{what}: audience {:?} has size lower {lower} above upper {upper}",
            excerpt(&audience.id, 40)
        ));
    }
    problems
}

fn state_name(state: AudienceState) -> &'static str {
    match state {
        AudienceState::Ready => "ready",
        AudienceState::Populating => "populating",
        AudienceState::TooSmall => "too-small",
        AudienceState::Unusable => "unusable",
        AudienceState::Unknown => "unknown",
    }
}

async fn search(suite: &mut Suite) {
    if !suite.declares(Features::AUDIENCE_SEARCH) {
        let mark = suite.stand_in.request_count();
        let (result, outcome) = search_page(suite, "", None).await;
        let sent = suite.stand_in.requests_since(mark).len();
        suite.push(match result {
            Err(CallError::Destination(DestinationError::InvalidRequest(_))) => CheckResult::pass(
                "audiences.search",
                format!("no audience-search feature: search-audiences answered invalid-request ({sent} request(s))"),
            ),
            _ => CheckResult::fail(
                "audiences.search",
                format!(
                    "the plugin does not declare the audience-search feature, so search-audiences must answer \
                     invalid-request; it answered {outcome}"
                ),
            ),
        });
        suite.push(CheckResult::pass("audiences.search-query", "no audience-search feature: nothing to search"));
        return;
    }
    let all = walk(suite, "").await;
    let check = paging_check(suite, &all).await;
    suite.push(check);
    let check = query_check(suite, &all).await;
    suite.push(check);
}

async fn paging_check(suite: &mut Suite, all: &Walk) -> CheckResult {
    const NAME: &str = "audiences.search";
    let mut problems: Vec<String> = all.problem.iter().cloned().collect();
    let mut ids: HashSet<&str> = HashSet::new();
    for (number, (_, page)) in all.pages.iter().enumerate() {
        for audience in &page.audiences {
            problems.extend(audience_problems(audience, &format!("page {}", number + 1)));
            if !ids.insert(audience.id.as_str()) {
                problems.push(format!(
                    "page {}: audience {:?} was listed on an earlier page too",
                    number + 1,
                    excerpt(&audience.id, 40)
                ));
            }
        }
    }
    problems.truncate(5);
    // Cursors round-trip: the first page and the second page's cursor, asked again.
    for (cursor, page) in all.pages.iter().take(2) {
        let (again, outcome) = search_page(suite, "", cursor.clone()).await;
        let which = cursor
            .as_ref()
            .map_or("the first page (no cursor)".to_string(), |c| format!("cursor {:?}", excerpt(c, 60)));
        match again {
            Ok(again) if &again == page => {}
            Ok(_) => problems.push(format!("{which}, asked again, gave a different page: a cursor must round-trip")),
            Err(_) => problems.push(format!("{which}, asked again, gave {outcome}")),
        }
    }
    let pages = all.pages.len();
    let empty_with_cursor = all
        .pages
        .iter()
        .filter(|(_, p)| p.audiences.is_empty() && p.next_cursor.as_deref().is_some_and(|c| !c.is_empty()))
        .count();
    let mut ok = format!(
        "followed next-cursor to the end: {pages} page(s), {} audience(s), each with an id and a sane size; cursors \
         round-trip",
        ids.len()
    );
    if empty_with_cursor > 0 {
        ok.push_str(&format!(" ({empty_with_cursor} empty page(s) with a next-cursor, which is fine)"));
    }
    CheckResult::from_problems(NAME, &problems, ok)
}

async fn query_check(suite: &mut Suite, all: &Walk) -> CheckResult {
    const NAME: &str = "audiences.search-query";
    let mut problems = Vec::new();
    let mut found: Vec<(&str, BTreeSet<String>)> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for query in SEARCH_QUERIES {
        let walk = walk(suite, query).await;
        if let Some(problem) = &walk.problem {
            problems.push(problem.clone());
        }
        names.extend(walk.audiences().map(|a| a.name.clone()));
        found.push((query, walk.ids()));
    }
    if let Some((first, ids)) = found.first() {
        for (query, other) in &found[1..] {
            if other != ids {
                problems.push(format!(
                    "query {query:?} found {} audience(s) but {first:?} found {}: the query must ignore case",
                    other.len(),
                    ids.len()
                ));
            }
        }
    }
    let everything = all.ids();
    let filters = found.iter().any(|(_, ids)| ids != &everything);
    let needle = SEARCH_QUERIES[2];
    if filters && let Some(name) = names.iter().find(|n| !n.to_lowercase().contains(needle)) {
        problems.push(format!(
            "the plugin filters by name, but found {:?} for the query {:?}: every name must contain the query, \
             ignoring case",
            excerpt(name, 60),
            SEARCH_QUERIES[0]
        ));
    }
    let count = found.first().map_or(0, |(_, ids)| ids.len());
    let ok = if filters {
        format!(
            "{} found the same {count} of {} audience(s) whatever the case, each named with the query",
            SEARCH_QUERIES.join(", "),
            everything.len()
        )
    } else {
        format!(
            "{} found the same {count} audience(s) whatever the case (the same as the empty query: filtering is the \
             partner's, and the stand-in ignores it)",
            SEARCH_QUERIES.join(", ")
        )
    };
    CheckResult::from_problems(NAME, &problems, ok)
}

/// An audience the suite made or found, and where it came from.
async fn an_audience(
    suite: &mut Suite,
    users: Option<&[PreparedUser]>,
    problems: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Option<(String, &'static str)> {
    let spec = suite.spec();
    let log_mark = suite.logs().len();
    let (config, creds, account) = (&suite.config, &suite.creds, suite.options.account_id.as_str());
    let result = suite.plugin.upsert_audience(config, creds, account, &spec).await;
    let outcome = suite.outcome(&result, log_mark);
    match result {
        Ok(UpsertOutcome::Ready(audience)) => return Some((audience.id, "upsert-audience")),
        Ok(UpsertOutcome::CreateWithFirstBatch(_)) => match users {
            None => notes.push(
                "upsert-audience answered create-with-first-batch, and there are no users to create it with".into(),
            ),
            Some(users) => {
                let batch = &users[..CREATE_BATCH.min(users.len())];
                let target = AudienceTarget::Create(spec);
                let written = write(suite, "audiences.read", Op::Add, &target, batch, Script::ok()).await;
                match written.result {
                    Ok(outcome) => match outcome.created {
                        Some(created) => return Some((created.id, "add-users(create)")),
                        None => problems.push(
                            "upsert-audience answered create-with-first-batch, and add-users(create(spec)) succeeded \
                             without batch-outcome.created: the host would never learn the audience's id"
                                .into(),
                        ),
                    },
                    Err(_) => notes.push(format!(
                        "upsert-audience answered create-with-first-batch, and add-users(create(spec)) answered {}",
                        written.outcome
                    )),
                }
            }
        },
        Err(_) => notes.push(format!("upsert-audience answered {outcome}")),
    }
    suite.audience_id.clone().map(|id| (id, "setup.audience-id"))
}

async fn read_once(
    suite: &mut Suite,
    id: &str,
    script: Script,
) -> (Result<Audience, CallError>, Vec<RecordedRequest>, String) {
    suite.stand_in.script(script);
    let mark = suite.stand_in.request_count();
    let log_mark = suite.logs().len();
    let (config, creds, account) = (&suite.config, &suite.creds, suite.options.account_id.as_str());
    let result = suite.plugin.read_audience(config, creds, account, id).await;
    let requests = suite.stand_in.requests_since(mark);
    suite.stand_in.script(Script::ok());
    let outcome = suite.outcome(&result, log_mark);
    (result, requests, outcome)
}

async fn read(suite: &mut Suite, users: Option<&[PreparedUser]>) {
    const NAME: &str = "audiences.read";
    let (mut problems, mut notes) = (Vec::new(), Vec::new());
    let Some((id, source)) = an_audience(suite, users, &mut problems, &mut notes).await else {
        notes.push("no audience id from setup.audience-id either".into());
        suite.push(CheckResult::fail(NAME, format!("no audience to read: {}", notes.join("; "))));
        return;
    };
    let shown = excerpt(&id, 60);
    let mut ok = String::new();
    let (result, requests, outcome) = read_once(suite, &id, Script::ok()).await;
    match &result {
        Ok(audience) => {
            if audience.id != id {
                problems
                    .push(format!("read-audience({shown:?}) returned the audience {:?}", excerpt(&audience.id, 60)));
            }
            problems.extend(audience_problems(audience, "read-audience"));
            let size = match (audience.size.lower, audience.size.upper) {
                (None, None) => "not reported".to_string(),
                (lower, upper) => format!(
                    "{}..{}",
                    lower.map_or("?".into(), |l| l.to_string()),
                    upper.map_or("?".into(), |u| u.to_string())
                ),
            };
            ok = format!(
                "read the audience of {source} ({shown:?}): {:?}, state {}, size {size}",
                excerpt(&audience.name, 40),
                state_name(audience.state)
            );
        }
        Err(CallError::Destination(DestinationError::InvalidRequest(_))) if requests.is_empty() => problems.push(
            format!("read-audience refused the id {source} gave ({shown:?}) without asking the partner: {outcome}"),
        ),
        Err(CallError::Destination(_)) if suite.options.answers.is_empty() => {
            notes.push(format!("against the stand-in's 200 {{}} it answered {outcome} (give partner-shaped answers to check the audience it reads)"));
        }
        Err(_) => problems.push(format!("read-audience({shown:?}) answered {outcome}")),
    }
    // Every request answered 404, whatever the routes say.
    suite.stand_in.routes(Vec::new());
    let (result, requests, outcome) = read_once(suite, &id, Script::status(404)).await;
    suite.stand_in.routes(suite.options.answers.clone());
    match &result {
        _ if requests.is_empty() => notes.push(format!("answered 404 it sent no request ({outcome})")),
        Err(CallError::Destination(DestinationError::NotFound(_))) => notes.push("HTTP 404 → not-found".into()),
        _ => problems.push(format!("HTTP 404 to read-audience must map to not-found, but it answered {outcome}")),
    }
    if ok.is_empty() {
        ok = format!("read-audience accepts the id of {source} ({shown:?})");
    }
    if !notes.is_empty() {
        ok = format!("{ok}; {}", notes.join("; "));
    }
    suite.push(CheckResult::from_problems(NAME, &problems, ok));
}

/// Requests that look like they created, replaced or deleted the audience of `spec`: any
/// carrying its description (a random marker), or a PUT, PATCH or DELETE naming it.
fn creations(spec: &AudienceSpec, requests: &[RecordedRequest]) -> Vec<String> {
    let marker = spec.description.clone().unwrap_or_default();
    let contains = |r: &RecordedRequest, text: &str| {
        !text.is_empty() && (r.path.contains(text) || String::from_utf8_lossy(&r.body).contains(text))
    };
    requests
        .iter()
        .filter(|r| {
            contains(r, &marker)
                || (matches!(r.method.as_str(), "PUT" | "PATCH" | "DELETE") && contains(r, &spec.name))
                || r.method == "DELETE"
        })
        .map(|r| format!("{} {}", r.method, excerpt(&r.path, 80)))
        .collect()
}

async fn target_once(
    suite: &mut Suite,
    spec: &AudienceSpec,
) -> (Result<Vec<audience_runtime::types::TargetProblem>, CallError>, Vec<RecordedRequest>, String) {
    let mark = suite.stand_in.request_count();
    let log_mark = suite.logs().len();
    let (config, creds, account) = (&suite.config, &suite.creds, suite.options.account_id.as_str());
    let result = suite.plugin.check_target(config, creds, account, spec).await;
    let requests = suite.stand_in.requests_since(mark);
    let outcome = suite.outcome(&result, log_mark);
    (result, requests, outcome)
}

async fn check_target(suite: &mut Suite) {
    const NAME: &str = "audiences.check-target";
    let nonce = suite.secrets.nonce.clone();
    let missing = AudienceSpec {
        id: None,
        name: format!("audience-host conformance missing {nonce}"),
        identifiers: suite.manifest.identifiers.clone(),
        description: Some(format!("conformance check-target probe {nonce}")),
        create_if_missing: false,
    };
    let mut problems = Vec::new();
    let mut ok = String::new();
    let (result, requests, outcome) = target_once(suite, &missing).await;
    let mut made = creations(&missing, &requests);
    match &result {
        Ok(found) if found.is_empty() => problems.push(format!(
            "no problem reported for an audience that does not exist ({:?}, listed nowhere by the stand-in) with \
             create-if-missing false",
            missing.name
        )),
        Ok(found) => {
            if found.iter().any(|p| p.message.trim().is_empty()) {
                problems.push("a target-problem has an empty message".into());
            }
            match found.iter().find(|p| p.part == TargetPart::Audience) {
                None => problems.push(format!(
                    "none of its {} problem(s) is about the audience (target-part audience), though the audience does \
                     not exist",
                    found.len()
                )),
                Some(problem) => {
                    ok = format!(
                        "a missing audience with create-if-missing false gave {} problem(s) (audience: {:?})",
                        found.len(),
                        excerpt(&problem.message, 100)
                    );
                }
            }
        }
        Err(_) => problems.push(format!(
            "for a missing audience with create-if-missing false, check-target must return problems, not an error; it \
             answered {outcome}"
        )),
    }
    let creatable = AudienceSpec { create_if_missing: true, ..missing.clone() };
    let (result, requests, outcome) = target_once(suite, &creatable).await;
    made.extend(creations(&creatable, &requests));
    if let Err(CallError::Plugin(_)) = result {
        problems.push(format!("with create-if-missing true, check-target answered {outcome}"));
    }
    if let Some(first) = made.first() {
        problems.push(format!(
            "check-target must not create anything, but sent {} such request(s) (first: {first})",
            made.len()
        ));
    }
    ok.push_str("; no request created anything (with create-if-missing true neither)");
    suite.push(CheckResult::from_problems(NAME, &problems, ok));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, path: &str, body: &str) -> RecordedRequest {
        RecordedRequest { method: method.into(), path: path.into(), headers: vec![], body: body.as_bytes().to_vec() }
    }

    #[test]
    fn creations_are_recognised() {
        let spec = AudienceSpec {
            id: None,
            name: "missing x".into(),
            identifiers: vec![],
            description: Some("probe 123".into()),
            create_if_missing: false,
        };
        let requests = [
            request("GET", "/lists?name=missing%20x", ""),
            request("POST", "/search", r#"{"query": "name = 'missing x'"}"#),
            request("POST", "/lists", r#"{"name": "missing x", "description": "probe 123"}"#),
            request("PATCH", "/lists/1", r#"{"name": "missing x"}"#),
            request("DELETE", "/lists/1", ""),
        ];
        assert_eq!(creations(&spec, &requests), vec!["POST /lists", "PATCH /lists/1", "DELETE /lists/1"]);
    }
}
