//! The progress database keeps what was flushed when the job is killed the moment
//! after: the engine flushes before each call that changes the service, and a resume
//! is only as right as what survived.
//!
//! The test runs itself again as a child process that writes and flushes, and kills
//! that child (SIGKILL) as soon as it says it has flushed. The store opens sled
//! without its own flush every 500 ms, so the write survives only by the store's
//! flush: with a flush that does nothing, this test fails (tried).

use faceenroll::store::{JobMeta, Store};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

/// Set in the child's environment: the state directory it writes to.
const CHILD_DIR: &str = "STORE_DURABILITY_CHILD_DIR";
const FLUSHED: &str = "store-durability: flushed";
const GENERATION: u64 = 7;

#[test]
fn a_flushed_write_survives_a_kill_the_moment_after() {
    if let Some(dir) = std::env::var_os(CHILD_DIR) {
        let store = Store::open(std::path::Path::new(&dir)).unwrap();
        let meta = JobMeta {
            generation: GENERATION,
            ..JobMeta::default()
        };
        store.put_meta(&meta).unwrap();
        // Longer than sled's own flush interval would be: only the store's flush
        // can have made the write durable, however soon the kill comes.
        std::thread::sleep(std::time::Duration::from_secs(1));
        store.flush().unwrap();
        println!("{FLUSHED}");
        std::thread::sleep(std::time::Duration::from_secs(60));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_flushed_write_survives_a_kill_the_moment_after",
            "--nocapture",
        ])
        .env(CHILD_DIR, &state)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut said_flushed = false;
    for line in stdout.lines() {
        if line.unwrap().contains(FLUSHED) {
            said_flushed = true;
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(said_flushed, "the child never flushed");
    let store = Store::open(&state).unwrap();
    assert_eq!(store.meta().unwrap().generation, GENERATION);
}
