//! The engine's throughput against the service's limit: a whole job (plan, then
//! `engine::run`) against the in-process emulator answering after 50 ms.
//!
//! Run: `cargo bench --bench throughput` (persons: `FACEENROLL_BENCH_PERSONS=N`,
//! default 2,000 of 3 small PNG photos each: one newperson and one addface per
//! person).
//!
//! Scenarios:
//! - the service's cap of 50 calls/s, enforced by the emulator (answers 15 past a
//!   sliding one-second window), the engine paced at the same 50/s with its default
//!   8 workers;
//! - no cap at 8, 16 and 32 workers.
//!
//! For each it prints calls/s as a percentage of the limit, min(cap, workers ÷
//! latency), and the number of code-15 answers.
//!
//! The progress store lives in a temporary directory; `FACEENROLL_BENCH_STATE_IN=DIR`
//! puts it under DIR instead (e.g. `/dev/shm`, to see what the per-call flush of the
//! store costs on the disk). `FACEENROLL_BENCH_ONLY=cap|8|16|32` runs one scenario.

use faceenroll::emulator::{rehearsal_credentials, Emulator, EmulatorConfig, Faults};
use faceenroll::engine::{self, EngineOptions, RunOutcome, StopSignal};
use faceenroll::plan::{self, PlanOptions};
use faceenroll::report::Tally;
use faceenroll::service::client::{Client, ClientConfig};
use faceenroll::service::codes::code;
use faceenroll::source::{Layout, SourceSpec};
use faceenroll::store::Store;
use image::{ImageFormat, Rgb, RgbImage};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

const LATENCY_MS: u64 = 50;
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
fn scenario(root: &Path, cap: Option<u32>, workers: usize) {
    let emulator = Emulator::start(
        EmulatorConfig {
            qps: cap,
            faults: Faults {
                latency_ms: LATENCY_MS,
                ..Faults::default()
            },
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
        qps: cap.unwrap_or(0),
        seed: Some(1),
        ..EngineOptions::default()
    };
    let tally = Tally::default();
    let start = Instant::now();
    let outcome = engine::run(&store, &client, &options, &StopSignal::default(), &tally).unwrap();
    let elapsed = start.elapsed().as_secs_f64();
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    let calls = tally.calls.load(Relaxed);
    let counters = emulator.counters();
    let by_workers = workers as f64 * 1000.0 / LATENCY_MS as f64;
    let limit = cap.map_or(by_workers, |c| by_workers.min(f64::from(c)));
    let rate = calls as f64 / elapsed;
    println!(
        "{:<10} {workers:>2} workers  {calls:>5} calls ({} planned) in {elapsed:>6.1} s  \
         {rate:>6.1} calls/s = {:>5.1}% of {limit:.0}  code 15: {}  enrolled {}",
        cap.map_or("no cap".to_owned(), |c| format!("cap {c}/s")),
        summary.calls.total(),
        100.0 * rate / limit,
        counters.answered(code::RATE_LIMITED),
        tally.enrolled.load(Relaxed),
    );
    emulator.shutdown().unwrap();
}

fn main() {
    faceenroll::cli::init_logging(0, true);
    let persons: u32 = std::env::var("FACEENROLL_BENCH_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    archive(dir.path(), persons);
    println!(
        "{persons} persons × {PHOTOS_PER_PERSON} photos generated in {:.1} s; latency {LATENCY_MS} ms",
        t.elapsed().as_secs_f64()
    );
    let only: Option<String> = std::env::var("FACEENROLL_BENCH_ONLY").ok();
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if wanted("cap") {
        scenario(dir.path(), Some(50), engine::DEFAULT_WORKERS);
    }
    for workers in [8, 16, 32] {
        if wanted(&workers.to_string()) {
            scenario(dir.path(), None, workers);
        }
    }
}
