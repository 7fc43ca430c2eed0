//! The job's pace against each reading of the service's rate (an open point of the
//! contract, `emulator::contract::RateReading`): a sliding window of one second with
//! arrivals stamped a few milliseconds late, and calendar seconds. The job keeps to
//! the rate so that the service refuses at most a handful of its calls, read from
//! the emulator's counters; nothing here measures time.

mod support;

use faceenroll::emulator::{Faults, RateReading};
use faceenroll::engine::{RunOutcome, Workers};
use support::*;

const PERSONS: u32 = 40;
const CAP: u32 = 20;

fn job_under(rate_window: RateReading, arrival_jitter_ms: u64) {
    let archive = Archive::new();
    // Two photos each: one newperson and one addface per person, 80 calls.
    archive.fill(PERSONS, 2, 0);
    let emulator = emulator_with(|c| {
        c.qps = Some(CAP);
        c.contract.rate_window = rate_window;
        c.contract.arrival_jitter_ms = arrival_jitter_ms;
        c.faults = Faults {
            latency_ms: 100,
            ..Faults::default()
        };
        c.seed = 3;
    });
    let mut options = options();
    options.qps = CAP;
    options.workers = Workers::default();
    let (outcome, tally) = run(&archive, &client(&emulator), &options);
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    let snapshot = emulator.snapshot();
    assert_eq!(snapshot.persons.len(), PERSONS as usize);
    assert!(snapshot.persons.values().all(|p| p.faces.len() == 2));
    let counters = emulator.counters();
    let refused = counters.answered(15);
    assert_eq!(tally.snapshot().rate_limited, refused);
    assert!(
        refused <= 2,
        "{rate_window:?}, jitter {arrival_jitter_ms} ms: {refused} answers 15 in {} calls: \
         {counters:?}",
        counters.requests
    );
}

#[test]
fn a_sliding_window_with_late_arrivals_refuses_a_handful_at_most() {
    job_under(RateReading::Sliding, 10);
}

#[test]
fn calendar_seconds_refuse_a_handful_at_most() {
    job_under(RateReading::Fixed, 10);
}
