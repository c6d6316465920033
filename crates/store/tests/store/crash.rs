//! Crash durability: every user whose `enter` was acknowledged is in the store after the
//! process is killed with SIGKILL mid-write, and the counters are conserved.
//!
//! The test re-runs its own binary as the child (`crash_child`, ignored in normal runs and
//! selected by the environment variable below). The child enters users in many small
//! concurrent calls and prints `ACK <prefix>` after each acknowledged call; the parent kills
//! it at a random moment, reopens the file and looks for every acknowledged user. Three
//! rounds, so later rounds also recover from a file that was itself left by a crash.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use audience_store::suite::{FLUSH, T0, claim, conserved, entry, setup, users};
use audience_store::{CredentialKey, SqliteStore, Store};

const CHILD: &str = "AUDIENCE_STORE_CRASH_CHILD";
const USERS_PER_CALL: usize = 10;
const WRITERS: usize = 4;

#[test]
#[ignore = "the child process of acknowledged_users_survive_kill_9"]
fn crash_child() {
    let Ok(spec) = std::env::var(CHILD) else {
        return;
    };
    let mut parts = spec.splitn(4, '|');
    let (path, key, sync_id, round) = (
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().to_owned(),
        parts.next().unwrap().to_owned(),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let key = CredentialKey::from_hex(&key).unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path, key).unwrap());
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let (store, sync_id, round) = (store.clone(), sync_id.clone(), round.clone());
            tasks.push(tokio::spawn(async move {
                for call in 0.. {
                    let prefix = format!("r{round}-w{writer}-c{call}-");
                    let ready = users(&prefix, USERS_PER_CALL);
                    store.enter(&sync_id, entry(ready, T0)).await.unwrap();
                    println!("ACK {prefix}");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_users_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.db");
    let key = CredentialKey::generate();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sync_id = runtime.block_on(async {
        let store = SqliteStore::open(&path, key.clone()).unwrap();
        setup(&store).await.2.id
    });
    let mut acknowledged = BTreeSet::new();
    for round in 0..3 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["crash::crash_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD, format!("{}|{}|{sync_id}|{round}", path.display(), key.to_hex()))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (acks, received) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The test harness may print "test crash_child ... " on the same line.
                if let Some((_, prefix)) = line.split_once("ACK ") {
                    let _ = acks.send(prefix.to_owned());
                }
            }
        });
        let first = received.recv_timeout(Duration::from_secs(60)).expect("the child acknowledged nothing within 60 s");
        let pause = 50 + RandomState::new().hash_one(round) % 400;
        std::thread::sleep(Duration::from_millis(pause));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        let mut calls = vec![first];
        calls.extend(received.try_iter());
        for prefix in &calls {
            acknowledged.extend(users(prefix, USERS_PER_CALL).into_iter().map(|u| u.key));
        }

        let found = runtime.block_on(async {
            let store = SqliteStore::open(&path, key.clone()).unwrap();
            let counts = conserved(&store, &sync_id).await;
            assert_eq!(counts.in_flight, 0);
            let all = store.claim_batch(&sync_id, claim(T0 + FLUSH, usize::MAX)).await.unwrap();
            assert_eq!(all.len() as u64, counts.pending, "counters equal the queue");
            // Unacknowledged calls may have committed too, but at most one per writer.
            store.recover_in_flight(T0).await.unwrap();
            all.into_iter().map(|u| u.key).collect::<BTreeSet<_>>()
        });
        let lost: Vec<_> = acknowledged.difference(&found).take(5).collect();
        assert!(lost.is_empty(), "round {round}: acknowledged users lost: {lost:?}");
        // Calls may commit without being acknowledged (killed before the answer), but only
        // the one each writer had under way.
        let round_prefix = format!("r{round}-");
        let unacknowledged: BTreeSet<_> = found
            .difference(&acknowledged)
            .filter(|key| key.starts_with(&round_prefix))
            .map(|key| key.rsplit_once('-').map_or(key.as_str(), |(call, _)| call))
            .collect();
        assert!(unacknowledged.len() <= WRITERS, "{unacknowledged:?}");
        eprintln!(
            "round {round}: killed after {pause} ms, {} calls acknowledged, {} committed \
             unacknowledged, {} users present",
            calls.len(),
            unacknowledged.len(),
            found.len()
        );
    }
}
