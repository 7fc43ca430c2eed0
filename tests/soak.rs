//! Fault soak: a job against an emulator that misbehaves on one call in five, in
//! every way it can (internal errors 213, rate-limit answers 15, connections dropped
//! before the work, answers lost after the work was done, transient per-image
//! refusals), with latency and jitter on every call. The job must finish with every
//! photo enrolled exactly once, under each reading of -1309 on addface; under the
//! whole-call reading the answers are also spelled sparsely (`Spelling::Sparse`).
//! A rollback under the same faults then leaves the service holding nothing: the
//! persons created on lost answers are the job's too.
//!
//! Fast version (in `cargo test`): 100 persons × 3 photos, in process. Long version,
//! 400 persons × 7 photos:
//!
//! ```text
//! cargo test --test soak -- --ignored --nocapture
//! ```

mod support;

use faceenroll::emulator::{Faults, FullReading, Spelling};
use faceenroll::engine::{retry::RetryPolicy, EngineOptions, RunOutcome, StopSignal};
use faceenroll::ops::paced::PaceOptions;
use faceenroll::ops::rollback::{rollback, RollbackJob};
use faceenroll::store::{PhotoState, Store};
use std::time::Duration;
use support::{archive_faces, client, emulator_with, for_each_reading, held_faces, run, Archive};

/// One call in five faulted: 5% + 4% + 5% + 6% of calls, plus 10% of the images.
fn faults() -> Faults {
    Faults {
        latency_ms: 2,
        jitter_ms: 4,
        error_213: 0.05,
        rate_limit_15: 0.05,
        drop_connection: 0.04,
        lose_answer: 0.06,
        transient_image: 0.10,
        hang: 0.0,
    }
}

fn soak(persons: u32, photos: u32, seed: u64) {
    let archive = Archive::new();
    archive.fill(persons, photos, 0);
    let emulator = emulator_with(|c| {
        c.faults = faults();
        c.seed = seed;
        if c.contract.full == FullReading::WholeCall {
            c.contract.spelling = Spelling::Sparse;
        }
    });
    let options = EngineOptions {
        workers: faceenroll::engine::Workers::Fixed(8),
        // Far above what 8 workers send: its random code-15 answers slow it as
        // under a cap, rather than teaching an unpaced job a rate from its first
        // few calls.
        qps: 1000,
        retry: RetryPolicy {
            max_attempts: 12,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            max_total_wait: Duration::from_secs(10),
        },
        seed: Some(seed),
        ..EngineOptions::default()
    };
    let client = client(&emulator);
    let (outcome, tally) = run(&archive, &client, &options);
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");

    let counters = emulator.counters();
    println!("seed {seed}: {counters:?}");
    let f = &counters.faults;
    let faulted = f.error_213 + f.rate_limit_15 + f.drop_connection + f.lose_answer;
    let share = faulted as f64 / counters.requests as f64;
    assert!(
        (0.10..0.30).contains(&share),
        "{faulted} of {} calls faulted",
        counters.requests
    );
    for (kind, count) in [
        ("213", f.error_213),
        ("15", f.rate_limit_15),
        ("dropped connection", f.drop_connection),
        ("lost answer", f.lose_answer),
        ("transient image", f.transient_image),
    ] {
        assert!(count > 0, "no {kind} fault was injected: {counters:?}");
    }
    assert!(tally.snapshot().retries > 0);

    assert_eq!(
        held_faces(&emulator.snapshot()),
        archive_faces(&archive, &[]),
        "the service holds every photo exactly once"
    );
    let store = Store::open(&archive.state()).unwrap();
    for item in store.photos() {
        let (_, entry) = item.unwrap();
        assert!(
            matches!(entry.state, PhotoState::Enrolled { .. }),
            "{:?}: {:?}",
            entry.image,
            entry.state
        );
    }
    drop(store);

    let job = RollbackJob {
        state_dir: archive.state(),
        dry_run: false,
        rebind_account: false,
        pace: PaceOptions {
            qps: options.qps,
            retry: options.retry.clone(),
        },
    };
    let done = rollback(&job, &client, &StopSignal::default(), |_| Ok(true)).unwrap();
    assert!(done.stopped.is_none(), "{:?}", done.stopped);
    assert_eq!(done.left, [], "seed {seed}");
    assert_eq!(
        emulator.snapshot().persons.len(),
        0,
        "seed {seed}: the rollback takes back every person"
    );
}

#[test]
fn one_call_in_five_faulted_every_photo_enrolled_once() {
    // About 250 calls: enough that each fault kind fires and the share of faulted
    // calls is near one in five whatever order the workers' calls come in.
    for_each_reading(|| soak(100, 3, 17));
}

#[test]
#[ignore = "long: about a minute; run with --ignored"]
fn a_long_soak_enrolls_every_photo_once() {
    let seed = std::env::var("FACEENROLL_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    println!("soak seed: {seed} (replay with FACEENROLL_SOAK_SEED={seed})");
    for_each_reading(|| soak(400, 7, seed));
}
