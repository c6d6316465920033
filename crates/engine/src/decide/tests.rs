//! Table tests of the engine's decisions. The first is the module documentation's table: its
//! rows and this file's cases are the same list, checked against each other.

use std::collections::HashSet;
use std::time::Duration;

use audience_runtime::types::{
    Audience, AudienceSize, AudienceState, BatchOutcome, DestinationError, RejectedUser, UnattributedRejection,
};
use audience_runtime::{CallError, InstanceLimit, PluginError};
use audience_store::{AudienceConfig, Health, IdentifierKind, SyncAction, SyncRecord, SyncStatus, UserOutcome};

use super::*;

const NOW: i64 = 1_700_000_000_000;
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);
const HOUR_MS: i64 = 3_600_000;

fn outcome(rejected: &[(&str, &str)]) -> BatchOutcome {
    BatchOutcome {
        rejected: rejected.iter().map(|(k, r)| RejectedUser { key: k.to_string(), reason: r.to_string() }).collect(),
        unattributed: Vec::new(),
        created: None,
    }
}

fn partner(err: DestinationError) -> Result<BatchOutcome, CallError> {
    Err(CallError::Destination(err))
}

fn decision(users: Fate, connection: ConnectionEffect, sync: SyncEffect) -> Decision {
    Decision { users, connection, sync }
}

fn retry(error: &str, at: Option<i64>) -> Fate {
    Fate::Retry { error: error.into(), at }
}

/// Every plugin failure; the match fails to compile when the runtime adds one, so the table's
/// plugin-failure row is extended with it.
fn every_plugin_failure() -> Vec<PluginError> {
    let all = vec![
        PluginError::Trap("unreachable executed".into()),
        PluginError::Timeout(Duration::from_secs(10)),
        PluginError::TooLong(Duration::from_secs(60)),
        PluginError::MemoryLimit { limit: 64 << 20 },
        PluginError::Contract("prepare-users returned 2 results for 3 users".into()),
        PluginError::Instantiate("the plugin runtime is shutting down".into()),
    ];
    for err in &all {
        match err {
            PluginError::Trap(_)
            | PluginError::Timeout(_)
            | PluginError::TooLong(_)
            | PluginError::MemoryLimit { .. }
            | PluginError::Contract(_)
            | PluginError::Instantiate(_) => {}
            // Not the plugin's failure: a row of its own (the runtime was busy).
            PluginError::Busy { .. } => panic!("busy is not a plugin failure"),
        }
    }
    all
}

/// The runtime being busy, for each limit that can be full.
fn every_busy() -> Vec<PluginError> {
    [
        InstanceLimit::Connection { limit: 3 },
        InstanceLimit::Plugin { share: 64, configured: false },
        InstanceLimit::Plugin { share: 8, configured: true },
        InstanceLimit::Runtime { max_instances: 128 },
    ]
    .into_iter()
    .map(|limit| PluginError::Busy { plugin: "pinterest".into(), limit, waited: Duration::from_secs(10) })
    .collect()
}

/// One row of the documentation's table: the answers it stands for (with the size of the
/// group they answer) and the decision expected for each.
struct Row {
    answer: &'static str,
    what_happens: &'static str,
    cases: Vec<(Result<BatchOutcome, CallError>, usize, Decision)>,
}

fn rows() -> Vec<Row> {
    let delivered = |refused: Vec<(String, &str)>| {
        let refused = refused.into_iter().map(|(key, reason)| (key, reason.into())).collect();
        decision(Fate::Delivered { refused, dropped: vec![] }, ConnectionEffect::CredentialsWork, SyncEffect::Works)
    };
    let mut dropped = outcome(&[("u1", "bad hash")]);
    dropped.unattributed =
        vec![UnattributedRejection { count: 2, reason: "invalid entries".into(), samples: vec!["zz".into()] }];
    let dropped_reason =
        "dropped by the partner without naming the user, 2 of this batch's rows: invalid entries (examples: zz)";
    let backoff = |error: &str| decision(retry(error, None), ConnectionEffect::None, SyncEffect::None);
    let mut created = outcome(&[]);
    created.created = Some(Audience {
        id: "aud-1".into(),
        name: "Churn".into(),
        created: true,
        identifiers: Vec::new(),
        size: AudienceSize { lower: None, upper: None },
        state: AudienceState::Unknown,
        status_detail: None,
        details: Vec::new(),
    });
    vec![
        Row {
            answer: "success",
            what_happens: "every user synced; a sync marked broken is active again",
            cases: vec![(Ok(outcome(&[])), 3, delivered(vec![])), (Ok(created), 1, delivered(vec![]))],
        },
        Row {
            answer: "success, some users refused",
            what_happens: "the users the partner refused individually are errored, the others synced",
            cases: vec![(
                Ok(outcome(&[("u2", "malformed email hash")])),
                3,
                delivered(vec![("u2".into(), "refused by the partner: malformed email hash")]),
            )],
        },
        Row {
            answer: "success, rows dropped without names",
            what_happens: "as many users as the partner dropped (of those it did not name, last first) are errored \
                           with its reason and samples, never synced; the others synced",
            cases: vec![(
                Ok(dropped),
                5,
                decision(
                    Fate::Delivered {
                        refused: vec![("u1".into(), "refused by the partner: bad hash".into())],
                        dropped: vec![dropped_reason.into(), dropped_reason.into()],
                    },
                    ConnectionEffect::CredentialsWork,
                    SyncEffect::Works,
                ),
            )],
        },
        Row {
            answer: "`rate-limited` with a wait",
            what_happens: "the connection pauses for that wait; the users retry after it",
            cases: vec![(
                partner(DestinationError::RateLimited(Some(5_000))),
                10,
                decision(
                    retry("rate limited by the partner (retry after 5000 ms)", Some(NOW + 5_000)),
                    ConnectionEffect::Pause(Duration::from_secs(5)),
                    SyncEffect::None,
                ),
            )],
        },
        Row {
            answer: "`rate-limited` without a wait",
            what_happens: "the connection pauses for `rate.default_pause`; the users retry after it",
            cases: vec![(
                partner(DestinationError::RateLimited(None)),
                10,
                decision(
                    retry("rate limited by the partner", Some(NOW + 1_000)),
                    ConnectionEffect::Pause(DEFAULT_PAUSE),
                    SyncEffect::None,
                ),
            )],
        },
        Row {
            answer: "`unauthorized`",
            what_happens: "one refresh through `authorize`; if that fails, or the fresh token is refused too, the \
                           connection needs re-authorization and its users wait, pending",
            cases: vec![(
                partner(DestinationError::Unauthorized("token expired".into())),
                10,
                decision(
                    retry("unauthorized: token expired", Some(NOW)),
                    ConnectionEffect::RefreshOrPark { why: "token expired".into() },
                    SyncEffect::None,
                ),
            )],
        },
        Row {
            answer: "`not-found`",
            what_happens: "the sync is marked broken (visible); the users retry with backoff",
            cases: vec![(
                partner(DestinationError::NotFound("ad account 42".into())),
                10,
                decision(
                    retry("not found: ad account 42", None),
                    ConnectionEffect::None,
                    SyncEffect::Broken {
                        reason: "the partner says the account or audience is gone: ad account 42".into(),
                    },
                ),
            )],
        },
        Row {
            answer: "`action-required`",
            what_happens: "the sync is marked broken with the partner's words (a person must act: accept terms, \
                           appeal a flag); the users retry with backoff",
            cases: vec![(
                partner(DestinationError::ActionRequired("accept the Custom Audience terms".into())),
                10,
                decision(
                    retry("action required: accept the Custom Audience terms", None),
                    ConnectionEffect::None,
                    SyncEffect::Broken {
                        reason: "the partner needs someone to act: accept the Custom Audience terms".into(),
                    },
                ),
            )],
        },
        Row {
            answer: "`invalid-request`, several users",
            what_happens: "the batch is split in halves, each sent on its own, until the users at fault are isolated",
            cases: [2, 3, 1_000]
                .into_iter()
                .map(|n| {
                    (
                        partner(DestinationError::InvalidRequest("bad schema".into())),
                        n,
                        decision(Fate::Split { why: "bad schema".into() }, ConnectionEffect::None, SyncEffect::None),
                    )
                })
                .collect(),
        },
        Row {
            answer: "`invalid-request`, one user",
            what_happens: "the user is errored: refused by the partner",
            cases: vec![(
                partner(DestinationError::InvalidRequest("bad schema".into())),
                1,
                decision(
                    Fate::Errored { reason: "refused by the partner: bad schema".into() },
                    ConnectionEffect::None,
                    SyncEffect::None,
                ),
            )],
        },
        Row {
            answer: "`rejected-users` (the request refused whole because of the users it names)",
            what_happens: "the named users are errored with the partner's reasons; the others are sent again at \
                           once, unsplit and without waiting (named users not in the request are ignored; when it \
                           names none of the request's users it counts as `invalid-request`)",
            cases: vec![(
                partner(DestinationError::RejectedUsers(vec![RejectedUser {
                    key: "u-3".into(),
                    reason: "INVALID_SHA256_FORMAT at audience_members[3]".into(),
                }])),
                10,
                decision(
                    Fate::Resend {
                        refused: vec![(
                            "u-3".into(),
                            "refused by the partner: INVALID_SHA256_FORMAT at audience_members[3]".into(),
                        )],
                    },
                    ConnectionEffect::None,
                    SyncEffect::None,
                ),
            )],
        },
        Row {
            answer: "`transient`",
            what_happens: "the users retry with backoff and jitter",
            cases: vec![(
                partner(DestinationError::Transient("503 from the partner".into())),
                10,
                backoff("transient failure: 503 from the partner"),
            )],
        },
        Row {
            answer: "plugin failure (trap, timeout, too long, memory limit, contract, instantiate)",
            what_happens: "the users retry with backoff and jitter",
            cases: every_plugin_failure()
                .into_iter()
                .map(|err| {
                    let expected = backoff(&err.to_string());
                    (Err(CallError::Plugin(err)), 10, expected)
                })
                .collect(),
        },
        Row {
            answer: "the runtime had no free instance in time (`busy`: a quota, the plugin's share or the pool was \
                     full)",
            what_happens: "the users retry with backoff and jitter; the connection is not paused and the partner is \
                           not blamed: the host's capacity, not a partner's answer",
            cases: every_busy()
                .into_iter()
                .map(|err| {
                    let expected = backoff(&err.to_string());
                    (Err(CallError::Plugin(err)), 10, expected)
                })
                .collect(),
        },
        Row {
            answer: "the host's gate refused a request of the call",
            what_happens: "the users retry with backoff; the error names the host's refusal (an operator setting), \
                           never the partner",
            cases: vec![(
                Err(CallError::HostRefused("api.example.com is not on the allow-list".into())),
                10,
                backoff(
                    "the host refused the plugin's request (api.example.com is not on the allow-list); the partner was not asked",
                ),
            )],
        },
        Row {
            answer: "an export the plugin's contract version lacks",
            what_happens: "the users retry with backoff",
            cases: vec![(
                Err(CallError::Unsupported { function: "check-submission", version: "0.1.0" }),
                10,
                backoff(
                    "check-submission is not in contract 0.1.0, which this plugin implements; rebuild it against 0.2.0",
                ),
            )],
        },
    ]
}

/// The table's rows about the audience look-up: answers to `upsert-audience`, before any user
/// was sent, and the decision expected for each.
struct LookupRow {
    answer: &'static str,
    what_happens: &'static str,
    cases: Vec<(CallError, Decision)>,
}

fn lookup_rows() -> Vec<LookupRow> {
    vec![LookupRow {
        answer: "`invalid-request` to the audience look-up",
        what_happens: "the sync is marked broken (the partner refused its audience settings, not its users); \
                       the users retry with backoff, unsplit",
        cases: vec![(
            CallError::Destination(DestinationError::InvalidRequest("name longer than 100 characters".into())),
            decision(
                retry("invalid request: name longer than 100 characters", None),
                ConnectionEffect::None,
                SyncEffect::Broken {
                    reason: "the partner refused the sync's audience settings: name longer than 100 characters".into(),
                },
            ),
        )],
    }]
}

#[test]
fn a_refused_audience_look_up_breaks_the_sync_and_splits_nothing() {
    for row in lookup_rows() {
        for (err, expected) in row.cases {
            assert_eq!(classify_lookup(&err, NOW, DEFAULT_PAUSE), expected, "row {:?}", row.answer);
        }
    }
    // Any other answer to the look-up decides what it decides for a write.
    let transient = CallError::Destination(DestinationError::Transient("503".into()));
    assert_eq!(classify_lookup(&transient, NOW, DEFAULT_PAUSE), classify(Err(&transient), 1, NOW, DEFAULT_PAUSE));
}

/// The rows of the module documentation's table (answer, what happens), as written.
fn documented_rows() -> Vec<(String, String)> {
    let source = include_str!("../decide.rs");
    let rows: Vec<(String, String)> = source
        .lines()
        .take_while(|line| line.starts_with("//!"))
        .filter_map(|line| line.strip_prefix("//! |"))
        .skip(2) // the header and the separator
        .map(|row| {
            let cells: Vec<&str> = row.trim().trim_end_matches('|').split('|').map(str::trim).collect();
            assert_eq!(cells.len(), 2, "a row of the table has two cells: {row}");
            (cells[0].to_string(), cells[1].to_string())
        })
        .collect();
    assert!(!rows.is_empty(), "the module documentation has the table");
    rows
}

#[test]
fn the_documented_table_is_the_list_of_cases() {
    let mut cases: Vec<(String, String)> =
        rows().iter().map(|r| (r.answer.to_string(), r.what_happens.to_string())).collect();
    cases.extend(lookup_rows().iter().map(|r| (r.answer.to_string(), r.what_happens.to_string())));
    assert_eq!(documented_rows(), cases, "decide.rs's table and its test cases must list the same rows");
}

#[test]
fn every_answer_is_classified_as_its_row_says() {
    for row in rows() {
        assert!(!row.cases.is_empty(), "row {:?} has no case", row.answer);
        for (answer, group_len, expected) in row.cases {
            let got = classify(answer.as_ref(), group_len, NOW, DEFAULT_PAUSE);
            assert_eq!(got, expected, "row {:?}, answer {answer:?} for {group_len} users", row.answer);
        }
    }
}

#[test]
fn every_destination_error_has_a_row() {
    let mut answers = HashSet::new();
    for row in rows() {
        for (answer, _, _) in &row.cases {
            if let Err(CallError::Destination(err)) = answer {
                let name = match err {
                    DestinationError::RateLimited(_) => "rate-limited",
                    DestinationError::Unauthorized(_) => "unauthorized",
                    DestinationError::NotFound(_) => "not-found",
                    DestinationError::InvalidRequest(_) => "invalid-request",
                    DestinationError::ActionRequired(_) => "action-required",
                    DestinationError::Transient(_) => "transient",
                    DestinationError::RejectedUsers(_) => "rejected-users",
                };
                answers.insert(name);
            }
        }
    }
    assert_eq!(answers.len(), 7, "{answers:?}");
}

#[test]
fn rows_the_partner_dropped_without_names_are_never_counted_synced() {
    let keys: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
    let fate = Fate::Delivered {
        refused: vec![("d".into(), "refused by the partner: bad".into())],
        dropped: vec!["dropped".into(), "dropped".into()],
    };
    let got: Vec<Verdict> = verdicts(keys, fate).into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        got,
        vec![
            Verdict::Synced,
            Verdict::Rejected("dropped".into()),
            Verdict::Rejected("dropped".into()),
            Verdict::Rejected("refused by the partner: bad".into()),
        ]
    );
}

#[test]
fn without_credentials_nothing_is_sent_and_the_users_retry() {
    assert_eq!(
        without_credentials(),
        decision(retry("the connection has no usable credentials", None), ConnectionEffect::None, SyncEffect::None)
    );
}

#[test]
fn each_user_gets_the_verdict_of_the_request_that_carried_it() {
    let keys = || vec!["a".to_string(), "b".to_string()];
    let cases = [
        (Fate::Delivered { refused: vec![], dropped: vec![] }, vec![Verdict::Synced, Verdict::Synced]),
        (
            Fate::Delivered { refused: vec![("b".into(), "refused by the partner: x".into())], dropped: vec![] },
            vec![Verdict::Synced, Verdict::Rejected("refused by the partner: x".into())],
        ),
        (
            Fate::Errored { reason: "refused by the partner: y".into() },
            vec![Verdict::Rejected("refused by the partner: y".into()); 2],
        ),
        (
            Fate::Retry { error: "e".into(), at: Some(NOW) },
            vec![Verdict::Failed { error: "e".into(), retry_at: Some(NOW) }; 2],
        ),
        (Fate::Split { why: "z".into() }, vec![]),
    ];
    for (fate, expected) in cases {
        let got: Vec<Verdict> = verdicts(keys(), fate.clone()).into_iter().map(|(_, v)| v).collect();
        assert_eq!(got, expected, "{fate:?}");
    }
    // A refusal for a key the request did not carry is ignored.
    let stray = Fate::Delivered { refused: vec![("zz".into(), "?".into())], dropped: vec![] };
    assert_eq!(verdicts(keys(), stray), vec![("a".into(), Verdict::Synced), ("b".into(), Verdict::Synced)]);
}

/// A partner's error for a whole request (up to 10,000 users, up to 1 KiB after the runtime's
/// cut) is held once, not once per user: every verdict and every outcome shares that copy.
#[test]
fn one_error_for_a_whole_request_is_one_copy_however_many_users_it_carried() {
    let keys: Vec<String> = (0..1_900).map(|i| format!("u{i}")).collect();
    let error = Arc::<str>::from("E".repeat(1024));
    let shared = |reason: &Arc<str>| Arc::ptr_eq(reason, &error);
    for fate in [Fate::Retry { error: Arc::clone(&error), at: None }, Fate::Errored { reason: Arc::clone(&error) }] {
        let verdicts = verdicts(keys.clone(), fate);
        assert_eq!(verdicts.len(), keys.len());
        for (_, verdict) in verdicts {
            match verdict {
                Verdict::Failed { error, .. } => {
                    assert!(shared(&error));
                    match retry_or_give_up(NOW, NOW, 0, None, error, &RetryPolicy::default(), 0.5) {
                        UserOutcome::Retry { error, .. } => assert!(shared(&error)),
                        other => panic!("{other:?}"),
                    }
                }
                Verdict::Rejected(reason) => assert!(shared(&reason)),
                Verdict::Synced | Verdict::Unsent => panic!("a failed request synced or returned a user"),
            }
        }
    }
    // The users only ever referred to the one string: with them gone, the test's is the last.
    assert_eq!(Arc::strong_count(&error), 1);
}

#[test]
fn a_failed_user_retries_with_backoff_within_its_window_or_is_errored() {
    let policy = RetryPolicy::default();
    let window = 13 * HOUR_MS;
    let given_up = |error: &str| {
        UserOutcome::Errored(format!("not delivered within the retry window of 13h; last error: {error}").into())
    };
    let at = |ms: i64| UserOutcome::Retry { not_before_ms: ms, error: "boom".into() };
    // (what, now, entered_at, attempts so far, partner's retry time, random unit, expected)
    type Case = (&'static str, i64, i64, u32, Option<i64>, f64, UserOutcome);
    let cases: Vec<Case> = vec![
        ("first failure, least jitter", NOW, NOW, 0, None, 0.0, at(NOW + 500)),
        ("first failure, most jitter", NOW, NOW, 0, None, 1.0, at(NOW + 1_000)),
        ("fourth failure doubles thrice", NOW, NOW, 3, None, 0.5, at(NOW + 6_000)),
        ("backoff caps at max_backoff", NOW, NOW, 50, None, 1.0, at(NOW + 600_000)),
        ("attempts at the limit do not overflow", NOW, NOW, u32::MAX, None, 1.0, at(NOW + 600_000)),
        ("the partner's time wins over the backoff", NOW, NOW, 7, Some(NOW + 5_000), 1.0, at(NOW + 5_000)),
        ("a retry now (after a refresh)", NOW, NOW - HOUR_MS, 2, Some(NOW), 1.0, at(NOW)),
        ("a retry at the window's last instant", NOW, NOW + 1_000 - window, 0, None, 1.0, at(NOW + 1_000)),
        ("a retry just after the window", NOW, NOW + 999 - window, 0, None, 1.0, given_up("boom")),
        ("the partner's time after the window", NOW, NOW - window, 0, Some(NOW + 1), 0.0, given_up("boom")),
        ("an old user whose window is over", NOW, NOW - 14 * HOUR_MS, 30, None, 0.0, given_up("boom")),
    ];
    for (what, now, entered_at, attempts, retry_at, random, expected) in cases {
        let got = retry_or_give_up(now, entered_at, attempts, retry_at, "boom".into(), &policy, random);
        assert_eq!(got, expected, "{what}");
    }
    let short = RetryPolicy { window: Duration::from_secs(90), ..RetryPolicy::default() };
    assert_eq!(
        retry_or_give_up(NOW, NOW - 90_000, 0, None, "e".into(), &short, 0.0),
        UserOutcome::Errored("not delivered within the retry window of 1m 30s; last error: e".into())
    );
}

#[test]
fn a_claim_expires_users_past_their_window() {
    let policy = RetryPolicy::default();
    let claim = claim(NOW, 500, &policy, Some("host-a".into()));
    assert_eq!(claim.now_ms, NOW);
    assert_eq!(claim.max, 500);
    assert_eq!(claim.expire_before_ms, NOW - 13 * HOUR_MS);
    assert_eq!(claim.expired_reason, "not delivered within the retry window of 13h");
    assert_eq!(claim.lane_owner.as_deref(), Some("host-a"));
    assert_eq!(super::claim(NOW, 1, &policy, None).lane_owner, None);
}

#[test]
fn a_group_is_halved_with_the_smaller_half_first() {
    let cases: Vec<(Vec<u32>, Vec<u32>, Vec<u32>)> = vec![
        (vec![], vec![], vec![]),
        (vec![1], vec![], vec![1]),
        (vec![1, 2], vec![1], vec![2]),
        (vec![1, 2, 3, 4, 5], vec![1, 2], vec![3, 4, 5]),
        ((1..=10).collect(), (1..=5).collect(), (6..=10).collect()),
    ];
    for (group, first, second) in cases {
        assert_eq!(halves(group.clone()), (first, second), "{group:?}");
    }
}

/// Sends a batch of `n` users to a partner that refuses (invalid-request) every request
/// carrying one of `bad`, through [`classify`] and [`Isolation`] as the lane does; returns the
/// groups sent, in order, and the verdicts.
fn isolate(n: u32, bad: &[u32]) -> (Vec<Vec<u32>>, Vec<(u32, Verdict)>) {
    let mut isolation = Isolation::new((0..n).collect::<Vec<u32>>());
    let mut sent = Vec::new();
    let mut verdicts_by_user = Vec::new();
    while let Some(group) = isolation.next_group() {
        sent.push(group.clone());
        let answer = if group.iter().any(|u| bad.contains(u)) {
            partner(DestinationError::InvalidRequest("bad user".into()))
        } else {
            Ok(outcome(&[]))
        };
        match classify(answer.as_ref(), group.len(), NOW, DEFAULT_PAUSE).users {
            Fate::Split { .. } => isolation.split(group),
            fate => {
                let keys = group.iter().map(u32::to_string).collect();
                verdicts_by_user
                    .extend(verdicts(keys, fate).into_iter().map(|(k, v)| (k.parse().unwrap_or(u32::MAX), v)));
            }
        }
    }
    (sent, verdicts_by_user)
}

#[test]
fn invalid_requests_are_split_until_the_users_at_fault_are_alone() {
    // (users, at fault, requests sent)
    let cases: Vec<(u32, Vec<u32>, usize)> = vec![
        (0, vec![], 0),
        (1, vec![], 1),
        (16, vec![], 1),
        (1, vec![0], 1),
        (16, vec![5], 9),
        (16, vec![3, 11], 15),
        (4, vec![0, 1, 2, 3], 7),
        (500, vec![0, 499], 33),
    ];
    for (n, bad, requests) in cases {
        let (sent, verdicts) = isolate(n, &bad);
        assert_eq!(sent.len(), requests, "{n} users, {bad:?} at fault: {sent:?}");
        assert_eq!(verdicts.len(), n as usize, "every user has one verdict");
        let mut seen = HashSet::new();
        for (user, verdict) in verdicts {
            assert!(seen.insert(user), "user {user} decided twice");
            let expected = if bad.contains(&user) {
                Verdict::Rejected("refused by the partner: bad user".into())
            } else {
                Verdict::Synced
            };
            assert_eq!(verdict, expected, "user {user}");
        }
    }
    // The first half is sent before the second.
    let (sent, _) = isolate(4, &[0]);
    assert_eq!(sent, vec![vec![0, 1, 2, 3], vec![0, 1], vec![0], vec![1], vec![2, 3]]);
}

fn sync(id: &str, status: SyncStatus) -> SyncRecord {
    SyncRecord {
        id: id.into(),
        workspace_id: "ws".into(),
        connection_id: "conn".into(),
        destination: "test".into(),
        account_id: "acct".into(),
        audience: AudienceConfig { name: "a".into(), description: None, create_if_missing: true },
        audience_id: Some("aud".into()),
        action: SyncAction::Add,
        match_fields: vec![IdentifierKind::Email],
        reentry: Default::default(),
        status,
        status_reason: None,
        created_at: 0,
    }
}

#[test]
fn the_lane_claims_least_recently_served_first_from_syncs_neither_paused_nor_held() {
    use SyncStatus::{Active, Broken, Paused};
    // (what; statuses of a, b, c; held; last served serials of a, b, c (0: never); expected order)
    type Case = (&'static str, [SyncStatus; 3], &'static [&'static str], [u64; 3], &'static [&'static str]);
    let cases: Vec<Case> = vec![
        ("none served yet: in order", [Active; 3], &[], [0, 0, 0], &["a", "b", "c"]),
        ("a served last", [Active; 3], &[], [3, 1, 2], &["b", "c", "a"]),
        ("never served goes first", [Active; 3], &[], [5, 6, 0], &["c", "a", "b"]),
        ("a paused sync is skipped", [Active, Paused, Active], &[], [1, 0, 2], &["a", "c"]),
        ("a held sync is skipped", [Active; 3], &["a"], [0, 0, 0], &["b", "c"]),
        ("a broken sync keeps its turn", [Broken, Active, Active], &[], [0, 2, 1], &["a", "c", "b"]),
        ("nothing to claim", [Paused; 3], &[], [0, 0, 0], &[]),
        ("paused and held", [Paused, Active, Active], &["c"], [0, 9, 0], &["b"]),
    ];
    for (what, statuses, held, served, expected) in cases {
        let syncs: Vec<SyncRecord> = ["a", "b", "c"].iter().zip(statuses).map(|(id, s)| sync(id, s)).collect();
        let held: HashSet<String> = held.iter().map(|s| s.to_string()).collect();
        let served: HashMap<String, u64> =
            ["a", "b", "c"].iter().zip(served).filter(|(_, n)| *n > 0).map(|(id, n)| (id.to_string(), n)).collect();
        let got: Vec<String> = claim_order(&syncs, &held, &served).into_iter().map(|s| s.id).collect();
        assert_eq!(got, expected, "{what}");
    }
}

/// Claims `n` batches from syncs with the given batches ready (`ready`), as the lane does, and
/// the ids claimed in order; `arrive` adds batches to a sync after a number of claims.
fn claims(ids: &[&str], mut ready: HashMap<String, u32>, n: usize, arrive: &[(usize, &str, u32)]) -> Vec<String> {
    let syncs: Vec<SyncRecord> = ids.iter().map(|id| sync(id, SyncStatus::Active)).collect();
    let mut served = HashMap::new();
    let mut claimed = Vec::new();
    for serial in 1..=n as u64 {
        for (after, id, more) in arrive {
            if *after == claimed.len() {
                *ready.entry(id.to_string()).or_default() += more;
            }
        }
        let next = claim_order(&syncs, &HashSet::new(), &served).into_iter().find(|s| ready[&s.id] > 0);
        let Some(sync) = next else { break };
        *ready.entry(sync.id.clone()).or_default() -= 1;
        served.insert(sync.id.clone(), serial);
        claimed.push(sync.id);
    }
    claimed
}

#[test]
fn syncs_of_a_connection_share_it_in_turn() {
    // a has three batches ready, b one: the lane alternates while both have some.
    let ready = HashMap::from([("a".to_string(), 3), ("b".to_string(), 1)]);
    assert_eq!(claims(&["a", "b"], ready, 10, &[]), ["a", "b", "a", "a"]);
}

#[test]
fn fresh_users_wait_at_most_one_slot_behind_other_syncs_backlogs() {
    // Nine syncs with deep backlogs; the tenth gets a batch after 20 claims: it goes next,
    // not after the nine others' turns.
    let ids = ["s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "fresh"];
    let mut ready: HashMap<String, u32> = ids.iter().map(|id| (id.to_string(), 100)).collect();
    ready.insert("fresh".into(), 0);
    let claimed = claims(&ids, ready, 30, &[(20, "fresh", 1)]);
    assert_eq!(claimed[20], "fresh", "{claimed:?}");
    // The backlogged syncs share the rest equally.
    let counts: HashMap<&str, usize> =
        ids[..9].iter().map(|id| (*id, claimed.iter().filter(|c| c == id).count())).collect();
    assert!(counts.values().all(|n| (3..=4).contains(n)), "{counts:?}");
}

#[test]
fn a_failing_sync_is_probed_once_per_backoff_interval() {
    let policy = RetryPolicy::default();
    // (what, before, what the delivery said, expected)
    type Case = (&'static str, Option<Probe>, Option<bool>, Option<Probe>);
    let cases: Vec<Case> = vec![
        (
            "first failure: held for the first backoff",
            None,
            Some(true),
            Some(Probe { failures: 1, next_at: NOW + 1_000 }),
        ),
        (
            "another failure: the backoff doubles",
            Some(Probe { failures: 1, next_at: NOW }),
            Some(true),
            Some(Probe { failures: 2, next_at: NOW + 2_000 }),
        ),
        (
            "capped at the longest backoff",
            Some(Probe { failures: 30, next_at: NOW }),
            Some(true),
            Some(Probe { failures: 31, next_at: NOW + 600_000 }),
        ),
        ("a delivery that worked frees it", Some(Probe { failures: 4, next_at: NOW }), Some(false), None),
        (
            "nothing sent: as it was",
            Some(Probe { failures: 2, next_at: NOW + 5 }),
            None,
            Some(Probe { failures: 2, next_at: NOW + 5 }),
        ),
        ("healthy stays free", None, Some(false), None),
    ];
    for (what, before, failed, expected) in cases {
        assert_eq!(probe_after(before, failed, NOW, &policy, 1.0, false), expected, "{what}");
    }
    // A sync the partner says is gone waits at least `broken_probe_every` between tries, and
    // longer once the backoff passes it.
    let broken = [
        (None, Some(Probe { failures: 1, next_at: NOW + 60_000 })),
        (Some(Probe { failures: 6, next_at: NOW }), Some(Probe { failures: 7, next_at: NOW + 64_000 })),
    ];
    for (before, expected) in broken {
        assert_eq!(probe_after(before, Some(true), NOW, &policy, 1.0, true), expected);
    }
    assert_eq!(probe_after(None, Some(false), NOW, &policy, 1.0, true), None, "a broken sync that worked is free");
    assert!(Probe { failures: 1, next_at: NOW + 1 }.holds_at(NOW));
    assert!(!Probe { failures: 1, next_at: NOW }.holds_at(NOW));
}

#[test]
fn a_delivery_failed_when_no_user_of_it_was_taken_or_judged() {
    let retry = || UserOutcome::Retry { not_before_ms: NOW, error: "503".into() };
    let cases: Vec<(&str, Vec<UserOutcome>, usize, Option<bool>)> = vec![
        ("all retried", vec![retry(), retry()], 0, Some(true)),
        ("one synced", vec![retry(), UserOutcome::Synced], 0, Some(false)),
        ("refused users are an answer", vec![UserOutcome::Errored("bad".into())], 0, Some(false)),
        ("submitted counts as taken", vec![], 3, Some(false)),
        ("unsent: nothing was sent", vec![UserOutcome::Unsent, UserOutcome::Unsent], 0, None),
        ("unsent beside retried", vec![UserOutcome::Unsent, retry()], 0, Some(true)),
        ("nothing at all", vec![], 0, None),
    ];
    for (what, outcomes, submitted, expected) in cases {
        assert_eq!(delivery_failed(&outcomes, submitted), expected, "{what}");
    }
}

#[test]
fn the_next_probe_is_the_earliest_hold_of_a_sync_not_paused() {
    let syncs = vec![sync("a", SyncStatus::Active), sync("b", SyncStatus::Paused), sync("c", SyncStatus::Broken)];
    let probes = HashMap::from([
        ("a".to_string(), Probe { failures: 1, next_at: NOW + 900 }),
        ("b".to_string(), Probe { failures: 1, next_at: NOW + 100 }),
        ("c".to_string(), Probe { failures: 3, next_at: NOW + 400 }),
        ("gone".to_string(), Probe { failures: 3, next_at: NOW + 50 }),
    ]);
    assert_eq!(next_probe(&syncs, &probes, NOW), Some(NOW + 400));
    assert_eq!(next_probe(&syncs, &probes, NOW + 400), Some(NOW + 900));
    assert_eq!(next_probe(&syncs, &probes, NOW + 900), None);
}

#[test]
fn a_lane_is_parked_without_working_credentials_or_active_syncs() {
    use SyncStatus::{Active, Broken, Paused};
    let cases: Vec<(Health, bool, Vec<SyncStatus>, bool)> = vec![
        (Health::Ok, true, vec![Active], false),
        (Health::Ok, true, vec![Paused, Broken], false),
        (Health::Ok, true, vec![Paused, Paused], true),
        (Health::Ok, true, vec![], true),
        (Health::Ok, false, vec![Active], true),
        (Health::NeedsReauthorization, true, vec![Active], true),
    ];
    for (health, creds, statuses, expected) in cases {
        let syncs: Vec<SyncRecord> = statuses.iter().map(|s| sync("s", *s)).collect();
        assert_eq!(parked(health, creds, &syncs), expected, "{health:?}, credentials: {creds}, {statuses:?}");
    }
}

#[test]
fn an_idle_lane_sleeps_until_the_next_thing_due_or_until_woken() {
    let cases = [
        (None, None),
        (Some(NOW + 300), Some(Duration::from_millis(300))),
        (Some(NOW + 5), Some(Duration::from_millis(10))),
        (Some(NOW - 60_000), Some(Duration::from_millis(10))),
        (Some(NOW + 3_600_000), Some(Duration::from_secs(3_600))),
    ];
    for (due, expected) in cases {
        assert_eq!(next_wake(due, NOW), expected, "{due:?}");
    }
}

#[test]
fn a_401_refreshes_once_then_needs_a_person() {
    let token = || true;
    // (what, failed version, current version, refreshed to, renewable, expected)
    let cases = vec![
        ("first 401: refresh", 1, 1, None, token(), AfterUnauthorized::Refresh),
        ("refreshed meanwhile", 1, 2, Some(2), token(), AfterUnauthorized::AlreadyChanged),
        ("reconnected meanwhile", 1, 2, None, false, AfterUnauthorized::AlreadyChanged),
        (
            "401 on the fresh token",
            2,
            2,
            Some(2),
            token(),
            AfterUnauthorized::Park("expired (even right after a token refresh)".into()),
        ),
        ("refreshed long ago (a success since)", 2, 2, None, token(), AfterUnauthorized::Refresh),
        (
            "nothing to renew with",
            1,
            1,
            None,
            false,
            AfterUnauthorized::Park("expired (nothing to renew the credentials with)".into()),
        ),
    ];
    for (what, failed, current, refreshed_to, renewable, expected) in cases {
        assert_eq!(after_unauthorized(failed, current, refreshed_to, renewable, "expired"), expected, "{what}");
    }
}

#[test]
fn credentials_are_renewable_with_a_refresh_token_or_until_the_plugin_says() {
    use audience_runtime::types::Credentials;
    let creds = |refresh: Option<&str>, until: Option<u64>| Credentials {
        access_token: "a".into(),
        refresh_token: refresh.map(String::from),
        expires_at: Some(10_000),
        renewable_until: until,
        scopes: vec![],
    };
    // (what, credentials, now, renewable)
    let cases = [
        ("refresh token", creds(Some("r"), None), 5_000, true),
        ("Meta long-lived token, still valid", creds(None, Some(10_000)), 5_000, true),
        ("Meta long-lived token, expired", creds(None, Some(10_000)), 10_000, false),
        ("nothing", creds(None, None), 5_000, false),
    ];
    for (what, c, now, expected) in cases {
        assert_eq!(renewable(&c, now), expected, "{what}");
    }
}

#[test]
fn credentials_are_renewed_ahead_of_expiry_never_in_a_loop() {
    use audience_runtime::types::Credentials;
    let creds = |expires: Option<u64>, refresh: bool| Credentials {
        access_token: "a".into(),
        refresh_token: refresh.then(|| "r".to_string()),
        expires_at: expires,
        renewable_until: None,
        scopes: vec![],
    };
    let day = Duration::from_secs(86_400);
    // (what, credentials, now, expected renewal time)
    let cases = [
        ("30-day token: a day ahead", creds(Some(30 * 86_400), true), 0, Some(29 * 86_400)),
        ("1-hour token: half way", creds(Some(3_600), true), 0, Some(1_800)),
        ("already expired: now", creds(Some(100), true), 200, Some(100)),
        ("never expires", creds(None, true), 0, None),
        ("cannot be renewed", creds(Some(3_600), false), 0, None),
    ];
    for (what, c, now, expected) in cases {
        assert_eq!(renew_at(&c, now, day), expected, "{what}");
    }
}

#[test]
fn a_batch_is_labelled_by_its_users_outcomes() {
    let synced = || UserOutcome::Synced;
    let errored = || UserOutcome::Errored("x".into());
    let retry = || UserOutcome::Retry { not_before_ms: NOW, error: "x".into() };
    let cases: Vec<(Vec<UserOutcome>, &str)> = vec![
        (vec![], "synced"),
        (vec![synced(), synced()], "synced"),
        (vec![retry(), retry()], "retry"),
        (vec![synced(), errored()], "partial"),
        (vec![synced(), retry()], "partial"),
        (vec![errored(), errored()], "errored"),
        (vec![errored(), retry()], "errored"),
    ];
    for (outcomes, label) in cases {
        let results: Vec<UserResult> =
            outcomes.iter().cloned().map(|outcome| UserResult { key: "k".into(), outcome }).collect();
        assert_eq!(batch_label(&results), label, "{outcomes:?}");
    }
}

#[test]
fn a_partner_budget_running_low_widens_the_spacing_and_at_100_pauses() {
    // (used percent, expected slowdown)
    let cases = [
        (0.0, Some(1.0)),
        (74.9, Some(1.0)),
        (75.0, Some(1.0)),
        (87.5, Some(1.0 / 0.55)),
        (99.0, Some(1.0 / (1.0 - 0.9 * 0.96))),
        (100.0, None),
    ];
    for (used, expected) in cases {
        let got = budget_slowdown(used);
        match (got, expected) {
            (Some(g), Some(e)) => assert!((g - e).abs() < 1e-4, "{used}%: {g} vs {e}"),
            (g, e) => assert_eq!(g, e, "{used}%"),
        }
    }
}

#[test]
fn a_request_refused_for_named_users_errors_them_and_resends_the_rest_whole() {
    let keys: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
    // (users named, named users' verdicts, users sent again)
    type Case<'a> = (Vec<&'a str>, Vec<&'a str>, Option<Vec<&'a str>>);
    let cases: Vec<Case> = vec![
        (vec!["b"], vec!["b"], Some(vec!["a", "c", "d"])),
        (vec!["d", "a"], vec!["a", "d"], Some(vec!["b", "c"])),
        (vec!["a", "b", "c", "d"], vec!["a", "b", "c", "d"], Some(vec![])),
        (vec!["b", "z"], vec!["b"], Some(vec!["a", "c", "d"])),
        (vec!["z"], vec![], None),
        (vec![], vec![], None),
    ];
    for (named, errored, again) in cases {
        let refused =
            named.iter().map(|k| (k.to_string(), Arc::from(format!("refused by the partner: bad {k}")))).collect();
        let got = resend(keys.clone(), String::as_str, refused);
        match (got, again) {
            (Err(group), None) => assert_eq!(group, keys, "{named:?}: the group comes back whole"),
            (Ok((verdicts, rest)), Some(again)) => {
                let keys: Vec<&str> = verdicts.iter().map(|(k, _)| k.as_str()).collect();
                assert_eq!(keys, errored, "{named:?}");
                for (key, verdict) in &verdicts {
                    assert_eq!(*verdict, Verdict::Rejected(Arc::from(format!("refused by the partner: bad {key}"))));
                }
                assert_eq!(rest, again, "{named:?}");
            }
            (got, again) => panic!("{named:?}: got {got:?}, expected to send again {again:?}"),
        }
    }
    // Naming none of the request's users is a refusal of the request as sent.
    assert!(matches!(named_none(4), Fate::Split { .. }));
    assert!(matches!(named_none(1), Fate::Errored { reason } if reason.contains("none of them was in the request")));
}

#[test]
fn deliveries_leave_a_quarter_of_the_plugins_instances_to_intake_and_the_api() {
    let cases = [(128, 96), (20, 15), (4, 3), (3, 3), (1, 1), (0, 1)];
    for (share, slots) in cases {
        assert_eq!(delivery_slots(share), slots, "share {share}");
    }
}
