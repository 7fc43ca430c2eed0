//! Plans a generated manifest of 1,000,000 rows (photos not read: `check_content`
//! off) into a fresh progress store and prints the time taken and the peak memory.
//!
//! Run: `cargo bench --bench plan` (rows: `FACEENROLL_BENCH_ROWS=N`).
//!
//! The manifest has 50,000 persons of 20 photos each, rows shuffled so a person's
//! rows are spread through the file, as in an export sorted by date.

use faceenroll::engine::queue::pending_persons;
use faceenroll::plan::{self, PlanOptions};
use faceenroll::source::SourceSpec;
use faceenroll::store::Store;
use std::io::Write as _;
use std::time::Instant;

fn peak_memory_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat
/// (clock ticks of 1/100 s, the Linux default).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn main() {
    faceenroll::memory::configure();
    faceenroll::cli::init_logging(0, false);
    let rows: u64 = std::env::var("FACEENROLL_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let per_person = 20;
    let persons = rows.div_ceil(per_person);
    let dir = tempfile::tempdir().expect("temp dir");
    let manifest = dir.path().join("manifest.csv");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&manifest).unwrap());
        writeln!(out, "person_id,image,group_ids,person_name,tag").unwrap();
        // A fixed permutation of the rows (multiplicative step coprime with rows).
        let step = 7_919u64;
        let mut step = step;
        while gcd(step, rows) != 1 {
            step += 2;
        }
        for i in 0..rows {
            let n = (i * step) % rows;
            let (p, k) = (n % persons, n / persons);
            writeln!(
                out,
                "person{p:06},photos/person{p:06}/{k:02}.jpg,staff;site{},Person {p},t{}",
                p % 7,
                p % 3
            )
            .unwrap();
        }
    }
    let generated = peak_memory_kb();

    let store = Store::open(&dir.path().join("state")).expect("store");
    let options = PlanOptions {
        check_content: false,
        ..PlanOptions::default()
    };
    let source = SourceSpec::Manifest { path: manifest };
    let start = Instant::now();
    let cpu_before = cpu_seconds();
    let summary = plan::build(&store, &source, &options).expect("plan");
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu_before).map(|(a, b)| a - b);
    assert_eq!(summary.photos as u64, rows);
    let start = Instant::now();
    let work = pending_persons(&store).count();
    let read_secs = start.elapsed().as_secs_f64();

    println!(
        "plan: {rows} manifest rows, {} persons, {} photos pending, {} calls",
        summary.persons,
        summary.pending,
        summary.calls.total()
    );
    println!("plan: {secs:.2} s ({:.0} rows/s)", rows as f64 / secs);
    if let Some(cpu) = cpu {
        println!("plan: {cpu:.2} s of CPU (user + system, all threads)");
    }
    println!("pending_persons: {work} persons read back in {read_secs:.2} s");
    match (generated, peak_memory_kb()) {
        (Some(before), Some(peak)) => println!(
            "peak memory (VmHWM): {:.1} MB (before planning: {:.1} MB)",
            peak as f64 / 1024.0,
            before as f64 / 1024.0
        ),
        _ => println!("peak memory: not available (no /proc/self/status)"),
    }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}
