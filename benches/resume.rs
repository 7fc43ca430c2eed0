//! Resuming a finished job of 100,000 photos: how long `faceenroll enroll` takes to
//! find there is nothing left to do, and how many calls it makes (there must be none).
//!
//! Run: `cargo bench --bench resume` (photos: `FACEENROLL_BENCH_PHOTOS=N`, default
//! 100,000, 20 per person).
//!
//! The photos are tiny files (a PNG signature and 8 distinct bytes) dated an hour
//! before the run, as a nightly run finds its archive: planning reads
//! and hashes each, as it does real photos, but they are not pictures the emulator
//! could take. The finished job is therefore made by planning the archive and
//! recording every photo as enrolled and every person as created, which is the store
//! a finished job leaves. The resume is then the whole `enroll` run
//! ([`faceenroll::ops::enroll::enroll`]: open the store, plan again, run the engine,
//! count, write the report) against an emulator that counts the calls it receives,
//! with the content check on (the default) and off (`--no-content-check`). Last, a
//! dry run of the same job (`enroll --dry-run`, which plans in a copy of the state):
//! what leaving the state untouched costs, and the size of the database it copies.

use faceenroll::emulator::{rehearsal_credentials, Emulator, EmulatorConfig};
use faceenroll::engine::{EngineOptions, StopSignal};
use faceenroll::ops::enroll::{enroll, Done, Ending, EnrollJob, Target};
use faceenroll::plan::{self, PlanOptions};
use faceenroll::service::client::ClientConfig;
use faceenroll::source::{Layout, SourceSpec};
use faceenroll::store::{FaceRef, PersonState, PhotoState, Store};
use std::path::Path;
use std::time::{Duration, Instant};

const PER_PERSON: u64 = 20;

fn peak_rss_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn archive(root: &Path, photos: u64) {
    let an_hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    for p in 0..photos.div_ceil(PER_PERSON) {
        let dir = root.join(format!("p{p:06}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..PER_PERSON.min(photos - p * PER_PERSON) {
            let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
            bytes.extend_from_slice(&(p * PER_PERSON + i).to_le_bytes());
            let path = dir.join(format!("{i:02}.png"));
            std::fs::write(&path, bytes).unwrap();
            // An archive older than the run, as a nightly run finds it: a file
            // written moments ago has not settled and is read again.
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(an_hour_ago))
                .unwrap();
        }
    }
}

/// Plans the archive and records it as a finished job.
fn finished_job(state: &Path, source: &SourceSpec) {
    let store = Store::open(state).unwrap();
    let summary = plan::build(&store, source, &PlanOptions::default()).unwrap();
    assert_eq!(summary.invalid, 0);
    let photos: Vec<_> = store.photos().map(Result::unwrap).collect();
    for (n, (key, mut entry)) in photos.into_iter().enumerate() {
        entry.state = PhotoState::Enrolled {
            face: FaceRef::Id(format!("{}", 1_840_000_000_000_000_000u64 + n as u64)),
        };
        entry.attempts = 1;
        store.put_photo(&key, &entry).unwrap();
    }
    let persons: Vec<_> = store.persons().map(Result::unwrap).collect();
    for mut person in persons {
        person.state = PersonState::Ready { created: true };
        store.put_person(&person).unwrap();
    }
    store.flush().unwrap();
}

fn resume(
    state: &Path,
    source: &SourceSpec,
    check_content: bool,
    emulator: &Emulator,
) -> (Duration, u64) {
    let job = EnrollJob {
        source: source.clone(),
        state_dir: state.to_owned(),
        plan: PlanOptions {
            check_content,
            ..PlanOptions::default()
        },
        engine: EngineOptions::default(),
        dry_run: false,
        rebind_account: false,
        report: None,
        outputs: Default::default(),
        mirror: None,
        strict: false,
    };
    let target = Target::Service(ClientConfig::new(
        &emulator.endpoint(),
        &EmulatorConfig::rehearsal().appid,
        "",
        rehearsal_credentials(),
    ));
    let before = emulator.counters().requests;
    let start = Instant::now();
    // No progress view: the bench prints its own figures.
    let done = enroll(&job, target, &StopSignal::default(), |_: &_, _, _, _| {}).unwrap();
    let elapsed = start.elapsed();
    let Done::Ran(finished) = done else {
        panic!("a run, not a dry run")
    };
    assert_eq!(
        finished.ending,
        Ending::Completed {
            failed: 0,
            pending: 0
        }
    );
    (elapsed, emulator.counters().requests - before)
}

/// A dry run of the job: its time, and the bytes of the database it copies.
fn dry_run(state: &Path, source: &SourceSpec) -> (Duration, u64) {
    let bytes = walkdir::WalkDir::new(state.join("db"))
        .into_iter()
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    let job = EnrollJob {
        source: source.clone(),
        state_dir: state.to_owned(),
        plan: PlanOptions::default(),
        engine: EngineOptions::default(),
        dry_run: true,
        rebind_account: false,
        report: None,
        outputs: Default::default(),
        mirror: None,
        strict: false,
    };
    let start = Instant::now();
    let done = enroll(
        &job,
        Target::Emulator(EmulatorConfig::rehearsal()),
        &StopSignal::default(),
        |_: &_, _, _, _| {},
    )
    .unwrap();
    let elapsed = start.elapsed();
    let Done::Planned(plan, _) = done else {
        panic!("a dry run")
    };
    assert_eq!(plan.pending, 0);
    (elapsed, bytes)
}

fn main() {
    faceenroll::memory::configure();
    faceenroll::cli::init_logging(0, true);
    let photos: u64 = std::env::var("FACEENROLL_BENCH_PHOTOS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    let state = dir.path().join("state");
    let t = Instant::now();
    archive(&root, photos);
    println!(
        "{photos} photos ({} persons) written in {:.1} s",
        photos.div_ceil(PER_PERSON),
        t.elapsed().as_secs_f64()
    );
    let source = SourceSpec::Tree {
        root,
        groups: vec!["bench".into()],
        layout: Layout::Person,
        follow_symlinks: false,
    };
    let t = Instant::now();
    finished_job(&state, &source);
    println!(
        "first plan, recorded as a finished job, in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let emulator =
        Emulator::start(EmulatorConfig::rehearsal(), "127.0.0.1:0".parse().unwrap()).unwrap();
    for (check_content, label) in [(true, "content check on"), (false, "--no-content-check")] {
        let (elapsed, calls) = resume(&state, &source, check_content, &emulator);
        println!(
            "resume of the finished job ({label}): {:.2} s, {calls} calls",
            elapsed.as_secs_f64()
        );
    }
    let (elapsed, bytes) = dry_run(&state, &source);
    println!(
        "dry run of the finished job (planned in a copy of its {:.1} MB database): {:.2} s",
        bytes as f64 / 1e6,
        elapsed.as_secs_f64()
    );
    println!("peak RSS {} MiB", peak_rss_mib());
    emulator.shutdown().unwrap();
}
