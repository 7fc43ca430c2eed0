//! The engine's throughput against the service's limit: a whole job (plan, then
//! `engine::run`) against the in-process emulator answering after a fixed latency.
//!
//! Run: `cargo bench --bench throughput` (persons: `FACEENROLL_BENCH_PERSONS=N`,
//! default 2,000 of 3 small PNG photos each: one newperson and one addface per
//! person).
//!
//! Scenarios: the service's cap of 50 calls/s, enforced by the emulator (answers 15
//! past a one-second window, see below), the engine with its default settings (paced
//! at 50/s, calls in flight sized from the measured latency), the emulator
//! answering after 50 ms, 300 ms and 1 s. `FACEENROLL_BENCH_ONLY=50|300|1000` runs one
//! latency; `FACEENROLL_BENCH_WORKERS=N` runs a fixed number of workers instead, to
//! compare; `FACEENROLL_BENCH_CAP=N` sets another cap.
//!
//! For each it prints calls/s as a percentage of the cap, the code-15 answers, the
//! most calls in flight, the workers started, the latency the engine measured, and
//! the CPU time and peak resident memory of the process over the run (the process
//! holds the emulator too: its threads and its decoding of every photo count).
//!
//! The progress store lives in a temporary directory; `FACEENROLL_BENCH_STATE_IN=DIR`
//! puts it under DIR instead (e.g. `/dev/shm`, to see what the per-call flush of the
//! store costs on the disk).
//!
//! The emulator's reading of the rate (an open point of the contract,
//! `emulator::contract`): `FACEENROLL_BENCH_RATE_WINDOW=sliding|fixed` (default
//! sliding: at most the cap in any one-second window) and
//! `FACEENROLL_BENCH_ARRIVAL_JITTER_MS=J` (each call stamped for the rate up to J ms
//! after it arrived, as a threaded service would; default 0). `FACEENROLL_BENCH_RUNS=N`
//! runs each latency N times on a fresh emulator and store.
//!
//! `FACEENROLL_BENCH_TIMELINE=1` also prints the job's timeline as the emulator saw
//! it, per half second: the `newperson` and `addface` calls received, the persons in
//! hand at its end (`newperson` received, `addface` not yet) and the `addface`s
//! ready (their `newperson` answered, not yet received); and when the last
//! `newperson` and the last call arrived.

#[path = "support/proc_stats.rs"]
mod proc_stats;

use faceenroll::emulator::{
    rehearsal_credentials, CallHook, Contract, Emulator, EmulatorConfig, Faults, Moment, Probes,
    RateReading,
};
use faceenroll::engine::{self, EngineOptions, RunOutcome, StopSignal, Workers};
use faceenroll::plan::{self, PlanOptions};
use faceenroll::report::Tally;
use faceenroll::service::api::Call;
use faceenroll::service::client::{Client, ClientConfig};
use faceenroll::service::codes::code;
use faceenroll::source::{Layout, SourceSpec};
use faceenroll::store::Store;
use image::{ImageFormat, Rgb, RgbImage};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What the emulator saw of a job, for `FACEENROLL_BENCH_TIMELINE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    NewPersonReceived,
    NewPersonAnswered,
    AddFaceReceived,
}

type Timeline = Arc<Mutex<Vec<(Instant, Event)>>>;

/// A hook recording the job's `newperson` and `addface` calls.
fn recorder(timeline: &Timeline) -> CallHook {
    let timeline = Arc::clone(timeline);
    CallHook::new(move |call, moment| {
        let event = match (call, moment) {
            (Call::NewPerson, Moment::Received) => Event::NewPersonReceived,
            (Call::NewPerson, Moment::Done { code: 0 }) => Event::NewPersonAnswered,
            (Call::AddFace, Moment::Received) => Event::AddFaceReceived,
            _ => return,
        };
        timeline.lock().unwrap().push((Instant::now(), event));
    })
}

/// Prints the timeline per half second from `start`.
fn print_timeline(timeline: &[(Instant, Event)], start: Instant) {
    const STEP: f64 = 0.5;
    let at = |t: &Instant| t.saturating_duration_since(start).as_secs_f64();
    let end = timeline.iter().map(|(t, _)| at(t)).fold(0.0, f64::max);
    let last_of = |e: Event| {
        timeline
            .iter()
            .filter(|(_, x)| *x == e)
            .map(|(t, _)| at(t))
            .fold(0.0, f64::max)
    };
    println!(
        "  last newperson received at {:.2} s, last call at {end:.2} s",
        last_of(Event::NewPersonReceived)
    );
    println!("  until    newperson  addface  in hand  addfaces ready");
    let (mut np, mut answered, mut af) = (0u32, 0u32, 0u32);
    let mut bucket = 0;
    loop {
        let to = STEP * f64::from(bucket + 1);
        let (np0, af0) = (np, af);
        for (t, e) in timeline {
            let s = at(t);
            if s >= to - STEP && s < to {
                match e {
                    Event::NewPersonReceived => np += 1,
                    Event::NewPersonAnswered => answered += 1,
                    Event::AddFaceReceived => af += 1,
                }
            }
        }
        println!(
            "  {to:>5.1} s  {:>9}  {:>7}  {:>7}  {:>14}",
            np - np0,
            af - af0,
            np.saturating_sub(af),
            answered.saturating_sub(af)
        );
        if to > end {
            break;
        }
        bucket += 1;
    }
}

/// The emulator's reading of the rate, from `FACEENROLL_BENCH_RATE_WINDOW` and
/// `FACEENROLL_BENCH_ARRIVAL_JITTER_MS`.
fn contract() -> Contract {
    let rate_window = match std::env::var("FACEENROLL_BENCH_RATE_WINDOW") {
        Ok(v) => v.parse().unwrap(),
        Err(_) => RateReading::Sliding,
    };
    let arrival_jitter_ms = std::env::var("FACEENROLL_BENCH_ARRIVAL_JITTER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Contract {
        rate_window,
        arrival_jitter_ms,
        ..Contract::default()
    }
}

/// The service's cap, calls per second (`FACEENROLL_BENCH_CAP`, default 50).
fn cap() -> u32 {
    std::env::var("FACEENROLL_BENCH_CAP")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}
const LATENCIES_MS: [u64; 3] = [50, 300, 1000];
const PHOTOS_PER_PERSON: u32 = 3;

/// A small PNG, distinct for every seed.
fn photo(seed: u32) -> Vec<u8> {
    let img = RgbImage::from_fn(24, 24, |x, y| {
        let v = seed.wrapping_mul(2_654_435_761) ^ (x * 31 + y * 17);
        Rgb([v as u8, (v >> 8) as u8, (x * 10 + y) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, ImageFormat::Png).unwrap();
    out.into_inner()
}

fn archive(root: &Path, persons: u32) {
    for p in 0..persons {
        let dir = root.join(format!("p{p:06}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..PHOTOS_PER_PERSON {
            std::fs::write(
                dir.join(format!("{i}.png")),
                photo(p * PHOTOS_PER_PERSON + i),
            )
            .unwrap();
        }
    }
}

/// One whole job on a fresh store and a fresh emulator.
fn scenario(root: &Path, latency_ms: u64, workers: Workers) {
    let cap = cap();
    let timeline: Timeline = Arc::default();
    let emulator = Emulator::start(
        EmulatorConfig {
            qps: Some(cap),
            faults: Faults {
                latency_ms,
                ..Faults::default()
            },
            probes: Probes {
                hook: std::env::var_os("FACEENROLL_BENCH_TIMELINE").map(|_| recorder(&timeline)),
                ..Probes::default()
            },
            contract: contract(),
            ..EmulatorConfig::rehearsal()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .unwrap();
    let client = Client::new(ClientConfig::new(
        &emulator.endpoint(),
        &EmulatorConfig::rehearsal().appid,
        "",
        rehearsal_credentials(),
    ))
    .unwrap();
    let state = match std::env::var_os("FACEENROLL_BENCH_STATE_IN") {
        Some(parent) => tempfile::tempdir_in(parent).unwrap(),
        None => tempfile::tempdir().unwrap(),
    };
    let store = Store::open(state.path()).unwrap();
    let source = SourceSpec::Tree {
        root: root.to_owned(),
        groups: vec!["bench".into()],
        layout: Layout::Person,
        follow_symlinks: false,
    };
    let summary = plan::build(&store, &source, &PlanOptions::default()).unwrap();
    let options = EngineOptions {
        workers,
        qps: cap,
        seed: Some(1),
        ..EngineOptions::default()
    };
    let tally = Tally::default();
    proc_stats::reset_peak();
    let cpu0 = proc_stats::cpu_seconds();
    let start = Instant::now();
    let outcome = engine::run(&store, &client, &options, &StopSignal::default(), &tally).unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = proc_stats::cpu_seconds() - cpu0;
    let peak_mib = proc_stats::peak_rss_kib() as f64 / 1024.0;
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    let calls = tally.snapshot().calls;
    let counters = emulator.counters();
    let rate = calls as f64 / elapsed;
    // The physical best: the calls at the cap, plus the latency of the last one.
    let best = calls as f64 / f64::from(cap) + latency_ms as f64 / 1000.0;
    let workers = match workers {
        Workers::Fixed(n) => format!("{n} fixed"),
        Workers::Adaptive { max } => format!("adaptive ≤{max}"),
    };
    println!(
        "{latency_ms:>4} ms  {workers:<14} {calls:>5} calls ({} planned) in {elapsed:>6.2} s  \
         {rate:>5.1} calls/s = {:>5.1}% of {cap}, {:>5.1}% of the best ({best:.2} s)  \
         code 15: {:>3}  in flight ≤{:>3}, {:>3} workers  \
         latency {}  cpu {cpu:.1} s  peak rss {peak_mib:.0} MiB  enrolled {}",
        summary.calls.total(),
        100.0 * rate / f64::from(cap),
        100.0 * best / elapsed,
        counters.answered(code::RATE_LIMITED),
        tally.snapshot().peak_concurrency,
        tally.snapshot().workers,
        tally.latency().describe(),
        tally.snapshot().enrolled,
    );
    let timeline = timeline.lock().unwrap();
    if !timeline.is_empty() {
        print_timeline(&timeline, start);
    }
    drop(timeline);
    emulator.shutdown().unwrap();
}

fn main() {
    faceenroll::memory::configure();
    faceenroll::cli::init_logging(0, true);
    let persons: u32 = std::env::var("FACEENROLL_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let workers = std::env::var("FACEENROLL_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or_else(Workers::default, Workers::Fixed);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    archive(dir.path(), persons);
    let c = contract();
    println!(
        "{persons} persons × {PHOTOS_PER_PERSON} photos generated in {:.1} s; cap {}/s, \
         {:?} window, arrival jitter up to {} ms",
        t.elapsed().as_secs_f64(),
        cap(),
        c.rate_window,
        c.arrival_jitter_ms
    );
    let runs: u32 = std::env::var("FACEENROLL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let only: Option<String> = std::env::var("FACEENROLL_BENCH_ONLY").ok();
    for latency_ms in LATENCIES_MS {
        if only.as_deref().is_none_or(|o| o == latency_ms.to_string()) {
            for _ in 0..runs {
                scenario(dir.path(), latency_ms, workers);
            }
        }
    }
}
