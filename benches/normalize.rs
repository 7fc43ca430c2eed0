//! Photos normalized per second, and the memory it takes, for 12-megapixel JPEGs.
//!
//! Run with `cargo bench --bench normalize`. It writes 8 camera-sized JPEGs
//! (4000×3000, quality 92, two of them tagged as stored sideways) into a temporary
//! folder once, then times `decide` (header only) and `prepare` (decode, scale to the
//! 2048-pixel bound, re-encode within the budget) on one thread and on a rayon pool of
//! as many threads as the machine has cores, and prints the peak resident memory
//! (VmHWM) the normalization reached.

#[path = "support/proc_stats.rs"]
mod proc_stats;

#[path = "support/exif.rs"]
mod exif;
use exif::with_orientation;
use faceenroll::normalize::{
    decide, prepare_chunk, thread_pool, Decision, NormalizeOptions, Outcome,
};
use image::codecs::jpeg::JpegEncoder;
use image::{Rgb, RgbImage};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

const PHOTOS: usize = 8;
const ROUNDS: usize = 3;

/// A camera-like picture: smooth shapes with sensor-like noise, so files come out
/// at the sizes camera originals have.
fn picture(seed: u64) -> RgbImage {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (w, h) = (4000u32, 3000u32);
    let (cx, cy) = (rng.u32(1000..3000), rng.u32(800..2200));
    RgbImage::from_fn(w, h, |x, y| {
        let d = ((x as i64 - cx as i64).pow(2) + (y as i64 - cy as i64).pow(2)) as f64;
        let ring = ((d.sqrt() / 40.0).sin() * 60.0) as i32;
        let mut px = |base: u32| (base as i32 + ring + rng.i32(-12..12)).clamp(0, 255) as u8;
        Rgb([
            px(x * 200 / w + 30),
            px(y * 200 / h + 20),
            px((x + y) * 100 / (w + h) + 60),
        ])
    })
}

fn write_photos(dir: &Path) -> Vec<PathBuf> {
    (0..PHOTOS)
        .into_par_iter()
        .map(|i| {
            let mut jpeg = Vec::new();
            JpegEncoder::new_with_quality(&mut jpeg, 92)
                .encode_image(&picture(i as u64))
                .unwrap();
            if i % 4 == 1 {
                jpeg = with_orientation(&jpeg, 6);
            }
            let path = dir.join(format!("IMG_{i:04}.jpg"));
            std::fs::write(&path, jpeg).unwrap();
            path
        })
        .collect()
}

/// Peak resident memory of this process so far, in MiB (VmHWM).
fn peak_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Prepares every photo `ROUNDS` times on `pool`: photos per second of wall time,
/// CPU milliseconds per photo, and the last round's outcomes.
fn run(
    pool: &rayon::ThreadPool,
    photos: &[PathBuf],
    opts: &NormalizeOptions,
) -> (f64, f64, Vec<Outcome>) {
    let start = Instant::now();
    let cpu = proc_stats::cpu_seconds();
    let mut outcomes = Vec::new();
    for _ in 0..ROUNDS {
        outcomes = prepare_chunk(pool, photos, opts)
            .into_iter()
            .map(|r| r.unwrap().outcome())
            .collect();
    }
    let secs = start.elapsed().as_secs_f64();
    let n = (ROUNDS * photos.len()) as f64;
    (
        n / secs,
        (proc_stats::cpu_seconds() - cpu) * 1000.0 / n,
        outcomes,
    )
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    let photos = write_photos(dir.path());
    let total: u64 = photos
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load = load.split_whitespace().next().unwrap_or("?").to_string();
    println!(
        "normalize: {PHOTOS} JPEGs 4000×3000, {:.1} MiB on average, written in {:.1} s; \
         {cores} cores, load average {load}",
        mib(total) / PHOTOS as f64,
        t.elapsed().as_secs_f64()
    );
    let opts = NormalizeOptions::default();
    println!(
        "options: budget {} bytes, bound {} px, quality {}",
        opts.max_bytes, opts.max_edge, opts.jpeg_quality
    );

    // decide: header only.
    let t = Instant::now();
    let mut n = 0;
    let mut to_normalize = 0;
    while t.elapsed().as_secs_f64() < 1.0 {
        for p in &photos {
            to_normalize += usize::from(decide(p, &opts).unwrap() != Decision::AsIs);
            n += 1;
        }
    }
    println!(
        "decide (header only): {:.0} photos/s, one thread ({} of {} to normalize)",
        n as f64 / t.elapsed().as_secs_f64(),
        to_normalize / (n / PHOTOS),
        PHOTOS
    );

    let before = peak_mib();
    let resettable = proc_stats::reset_peak();
    let after_reset = peak_mib();
    for threads in [1, cores] {
        let pool = thread_pool(threads).unwrap();
        proc_stats::reset_peak();
        let (rate, cpu_ms, outcomes) = run(&pool, &photos, &opts);
        let sent: u64 = outcomes
            .iter()
            .map(|o| match o {
                Outcome::Normalized(n) => n.to_bytes,
                Outcome::Cropped(c) => c.copy.to_bytes,
                Outcome::AsIs => 0,
            })
            .sum();
        println!(
            "prepare on a rayon pool of {threads}: {rate:.2} photos/s, {cpu_ms:.0} ms of CPU a photo; \
             sent {:.0} KiB on average; peak memory (VmHWM) {}",
            sent as f64 / 1024.0 / outcomes.len() as f64,
            match peak_mib() {
                Some(m) if resettable => format!("{m:.0} MiB"),
                Some(m) => format!("{m:.0} MiB (including the fixture writing)"),
                None => "unknown".into(),
            }
        );
        if threads == 1 {
            for o in outcomes.iter().take(2) {
                println!("  e.g. {o}");
            }
            let qualities: Vec<String> = outcomes
                .iter()
                .map(|o| match o {
                    Outcome::Normalized(n) => n.quality.to_string(),
                    Outcome::Cropped(c) => c.copy.quality.to_string(),
                    Outcome::AsIs => "as is".into(),
                })
                .collect();
            println!("  JPEG quality reached: {}", qualities.join(", "));
        }
    }
    if let (Some(b), Some(a)) = (before, after_reset) {
        println!("memory before timing: peak {b:.0} MiB while writing fixtures, {a:.0} MiB resident at start");
    }
}
