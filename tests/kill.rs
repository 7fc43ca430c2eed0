//! The job killed with SIGKILL at random moments and resumed each time, until it
//! finishes: the service must end up holding every enrollable photo exactly once,
//! and the report must account for every input photo with its true status.
//!
//! The emulator runs as a separate process (`faceenroll emulator`, with a state file
//! and a little latency), the job as the operator runs it (`faceenroll enroll
//! --endpoint ...`, credentials in the environment). The moments come from a seeded
//! RNG; the seed is printed, and `FACEENROLL_KILL_SEED=N` replays a run.
//!
//! The job is paced (`--qps 15`) and its photos cut into chunks of two, so a run
//! killed at most 100 ms after its first call has started two or three calls (the
//! pacer may make up a slot missed while the run was starting): every person takes
//! three calls at least, so with at least three persons per kill every kill lands
//! before the job is done (the test checks that the last, unkilled run still had
//! calls to make).
//!
//! The same runs under the whole-call reading of -1309, and with the chunks cut not
//! by `--max-request-bytes` but by a body limit of the emulator that the job learns
//! (and is killed while learning: while chunks are being refused and split).
//!
//! Fast version (in `cargo test`): 25 persons × 4 photos, 20 kills.
//! Long version, 120 persons × 4 photos, 100 kills:
//!
//! ```text
//! cargo test --test kill -- --ignored --nocapture
//! ```

mod common;

use common::{
    archive_faces, blank, enroll_command, held_faces, picture, report_rows, write_png, Archive,
    EmulatorProcess,
};
use faceenroll::limits::REQUEST_ENVELOPE_BYTES;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// The job's rate: its calls are at least 1/QPS apart.
const QPS: u32 = 15;

/// A kill lands at most this long after the run's first call.
const MAX_DELAY_MS: u64 = 100;

fn seed() -> u64 {
    let seed = std::env::var("FACEENROLL_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("kill test seed: {seed} (replay with FACEENROLL_KILL_SEED={seed})");
    seed
}

/// Waits up to `limit` for the child to exit on its own.
fn wait_for(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// How the service reads the contract in a kill run.
#[derive(Debug, Clone, Copy)]
struct Reading {
    /// `--full-reading` of the emulator.
    full: &'static str,
    /// The emulator refuses bodies over two photos and the job learns that limit,
    /// rather than being told with `--max-request-bytes`.
    learn_limit: bool,
}

const PER_IMAGE: Reading = Reading {
    full: "per-image",
    learn_limit: false,
};

fn kill_until_done(persons: u32, photos: u32, kills: u32, reading: Reading) {
    let seed = seed();
    println!("{reading:?}");
    let mut rng = fastrand::Rng::with_seed(seed);
    let archive = Archive::new();
    if reading.learn_limit {
        // Photos of about 20 KB, so the multipart envelope's own bytes (a few
        // hundred per photo) do not decide how many fit under the limit.
        for p in 0..persons {
            for i in 0..photos {
                let path = archive.add(&format!("person{p:03}"), &format!("{i:03}.png"), b"");
                write_png(&path, &picture(80, 80, 255, u64::from(p * 1000 + i)));
            }
        }
    } else {
        archive.fill(persons, photos, 0);
    }
    // Photos the service refuses or the planner rejects: they must end failed.
    let no_face = archive.add("person000", "zz-blank.png", &blank());
    let not_image = archive.add("person001", "zz-text.png", b"this is not a picture");

    // Two photos per addface at most: more calls per person, so more moments to
    // kill in, and a lost answer leaves more than one photo in doubt.
    let sizes: Vec<u64> = walk_files(&archive.root())
        .iter()
        .filter(|p| **p != no_face && **p != not_image)
        .map(|p| std::fs::metadata(p).unwrap().len())
        .collect();
    let (small, large) = (*sizes.iter().min().unwrap(), *sizes.iter().max().unwrap());
    let budget = 2 * large;
    assert!(
        budget < 3 * small,
        "photo sizes {small}..{large} too uneven to cut pairs"
    );
    let max_request_bytes = (REQUEST_ENVELOPE_BYTES + budget).to_string();
    // Two photos and their multipart envelope fit the emulator's limit; three do not.
    let body_limit = (budget + 4096).to_string();
    let mut emulator_args = vec!["--full-reading", reading.full];
    let mut job_args = vec!["--max-request-bytes", max_request_bytes.as_str()];
    if reading.learn_limit {
        assert!(
            budget + 4096 < 3 * small,
            "photos too small for the body limit"
        );
        emulator_args = vec!["--full-reading", reading.full, "--body-limit", &body_limit];
        job_args.clear();
    }

    let emulator_log = archive.dir.path().join("emulator.log");
    let state_file = archive.dir.path().join("emulator-state.json");
    let emulator = EmulatorProcess::start(
        &[
            "--qps",
            "0",
            "--latency-ms",
            "5",
            "--state-file",
            state_file.to_str().unwrap(),
        ]
        .into_iter()
        .chain(emulator_args)
        .collect::<Vec<_>>(),
        &emulator_log,
    );
    let state = archive.state();
    let job_log = archive.dir.path().join("job.log");
    let run = || {
        let log = std::fs::File::create(&job_log).unwrap();
        enroll_command(&archive.root(), &emulator.endpoint, &state)
            .args(["--group", "staff", "--workers", "4", "--qps"])
            .arg(QPS.to_string())
            .args(&job_args)
            .args(["--retry-attempts", "3", "--retry-max-wait", "2"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    };

    for kill in 0..kills {
        let before = emulator.counters().requests;
        let mut child = run();
        // One kill in five lands at a random moment from the start (opening the
        // store, planning); the others at a random moment after the run's first call.
        let limit = if rng.u8(0..5) == 0 {
            Duration::from_millis(rng.u64(0..=MAX_DELAY_MS))
        } else {
            let waited = Instant::now();
            while emulator.counters().requests == before && child.try_wait().unwrap().is_none() {
                assert!(
                    waited.elapsed() < Duration::from_secs(60),
                    "no call was sent"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            Duration::from_millis(rng.u64(0..=MAX_DELAY_MS))
        };
        if let Some(status) = wait_for(&mut child, limit) {
            panic!(
                "the job ended ({status:?}) before kill {} of {kills} (seed {seed}):\n{}",
                kill + 1,
                std::fs::read_to_string(&job_log).unwrap_or_default()
            );
        }
        child.kill().unwrap();
        child.wait().unwrap();
    }
    // The kills landed before the job was done: the last run still has work.
    let before = emulator.counters().requests;
    let mut child = run();
    let status = wait_for(&mut child, Duration::from_secs(120)).expect("the last run finishes");
    let calls = emulator.counters().requests - before;
    let log = std::fs::read_to_string(&job_log).unwrap_or_default();
    println!("{kills} kills; the last run made {calls} calls and ended {status:?}\n{log}");
    assert!(!log.contains("panicked"), "seed {seed}:\n{log}");
    // Finished with failed photos: the two bad ones.
    assert_eq!(status.code(), Some(1), "seed {seed}:\n{log}");
    assert!(
        calls > 0,
        "the job was done before the last kill (seed {seed})"
    );

    // The service holds every enrollable photo exactly once, and no person twice.
    let snapshot = emulator.state();
    let expected = archive_faces(&archive, &[no_face.clone(), not_image.clone()]);
    assert_eq!(held_faces(&snapshot), expected, "faces held (seed {seed})");
    let persons: Vec<&String> = expected.keys().collect();
    let in_group: Vec<&String> = snapshot.groups["staff"].iter().collect();
    assert_eq!(in_group, persons, "members of the group (seed {seed})");

    // The report accounts for every input photo once, with its true status.
    let rows = report_rows(&state);
    let listed: BTreeSet<PathBuf> = rows.iter().map(|r| PathBuf::from(&r.image)).collect();
    assert_eq!(rows.len(), listed.len(), "a photo reported twice");
    assert_eq!(
        listed,
        walk_files(&archive.root()).into_iter().collect(),
        "photos in the report"
    );
    for row in &rows {
        let path = PathBuf::from(&row.image);
        if path == no_face || path == not_image {
            assert_eq!(row.status, "failed", "{row:?}");
            assert!(row.reason.contains(&row.image), "{row:?}");
        } else {
            assert_eq!(row.status, "enrolled", "seed {seed}: {row:?}");
        }
    }
    let blank_row = rows
        .iter()
        .find(|r| std::path::Path::new(&r.image) == no_face);
    assert_eq!(blank_row.unwrap().code, Some(-1101));
}

/// Every file under `root`, sorted.
fn walk_files(root: &std::path::Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    files.sort();
    files
}

#[test]
fn a_job_killed_twenty_times_enrolls_every_photo_exactly_once() {
    // 25 persons: 75 calls at least (newperson and two addface each); a killed run
    // starts at most three of them.
    kill_until_done(25, 4, 20, PER_IMAGE);
}

#[test]
fn under_the_whole_call_reading_a_killed_job_enrolls_every_photo_exactly_once() {
    kill_until_done(
        25,
        4,
        20,
        Reading {
            full: "whole-call",
            learn_limit: false,
        },
    );
}

#[test]
fn a_job_killed_while_it_learns_the_request_limit_enrolls_every_photo_exactly_once() {
    kill_until_done(
        25,
        4,
        20,
        Reading {
            full: "whole-call",
            learn_limit: true,
        },
    );
}

#[test]
#[ignore = "long: one to two minutes; run with --ignored"]
fn a_job_killed_a_hundred_times_enrolls_every_photo_exactly_once() {
    // 360 calls at least.
    kill_until_done(120, 4, 100, PER_IMAGE);
}
