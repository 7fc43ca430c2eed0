//! Camera originals side by side: the corpus, and this project's normalization of it.
//!
//! `benches/camera.sh` drives it; by hand:
//!
//! - `cargo bench --bench camera -- generate DIR PERSONS PHOTOS [plain|phone]` writes
//!   PERSONS folders of PHOTOS camera-like JPEGs each (4032×3024, quality 92, one in
//!   four tagged EXIF orientation 6, as a phone held upright stores them) under DIR:
//!   `plain` (the default, what `camera.sh` measures) or `phone`, with the fine
//!   texture of a real photo (`support/frame.rs`).
//! - `cargo bench --bench camera -- normalize DIR THREADS` prepares every photo under
//!   DIR with the default options on a pool of THREADS, as an enroll does, and prints
//!   photos per second, CPU per photo and the bytes sent.
//!
//! Peak memory is measured from outside, by the script, so every pipeline is measured
//! the same way.

#[path = "support/exif.rs"]
mod exif;
#[path = "support/frame.rs"]
mod frame;
use exif::with_orientation;
use faceenroll::normalize::{prepare, thread_pool, NormalizeOptions, Outcome};
use frame::{camera_frame, Detail};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn generate(dir: &Path, persons: usize, photos: usize, detail: Detail) {
    let t = Instant::now();
    let bytes: u64 = (0..persons * photos)
        .into_par_iter()
        .map(|i| {
            let folder = dir.join(format!("person{:03}", i / photos));
            std::fs::create_dir_all(&folder).unwrap();
            let mut jpeg = Vec::new();
            jpeg_encoder::Encoder::new(&mut jpeg, 92)
                .encode(
                    camera_frame(4032, 3024, i as u64, detail).as_raw(),
                    4032,
                    3024,
                    jpeg_encoder::ColorType::Rgb,
                )
                .unwrap();
            if i % 4 == 1 {
                jpeg = with_orientation(&jpeg, 6);
            }
            std::fs::write(folder.join(format!("IMG_{i:04}.jpg")), &jpeg).unwrap();
            jpeg.len() as u64
        })
        .sum();
    let n = persons * photos;
    println!(
        "wrote {n} JPEGs 4032×3024 q92 ({:.1} MiB on average) in {:.0} s",
        bytes as f64 / n as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
}

fn photos_under(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "jpg"))
        .map(|e| e.into_path())
        .collect();
    out.sort();
    out
}

/// CPU time this process has used so far, all threads, in seconds.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn normalize(dir: &Path, threads: usize) {
    let photos = photos_under(dir);
    let opts = NormalizeOptions::default();
    let pool = thread_pool(threads).unwrap();
    let (t, cpu) = (Instant::now(), cpu_secs());
    let outcomes: Vec<Outcome> = pool.install(|| {
        photos
            .par_iter()
            .map(|p| prepare(p, &opts).unwrap().outcome())
            .collect()
    });
    let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_secs() - cpu);
    let n = photos.len() as f64;
    let sent: u64 = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Normalized(n) => n.to_bytes,
            Outcome::Cropped(c) => c.copy.to_bytes,
            Outcome::AsIs => 0,
        })
        .sum();
    println!(
        "faceenroll normalize: {} photos to {} px q{} on {threads} threads: {:.1} photos/s, \
         {:.0} ms CPU a photo, {:.0} KiB sent a photo (budget {} B)",
        photos.len(),
        opts.max_edge,
        opts.jpeg_quality,
        n / secs,
        cpu * 1000.0 / n,
        sent as f64 / n / 1024.0,
        opts.max_bytes
    );
    if let Some(Outcome::Normalized(n)) = outcomes.get(1) {
        println!("  e.g. {n}");
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["generate", dir, persons, photos] => generate(
            Path::new(dir),
            persons.parse().unwrap(),
            photos.parse().unwrap(),
            Detail::Plain,
        ),
        ["generate", dir, persons, photos, detail] => generate(
            Path::new(dir),
            persons.parse().unwrap(),
            photos.parse().unwrap(),
            Detail::parse(detail).expect("the detail is plain or phone"),
        ),
        ["normalize", dir, threads] => normalize(Path::new(dir), threads.parse().unwrap()),
        ["edge"] => println!("{}", NormalizeOptions::default().max_edge),
        _ => println!(
            "camera: run by benches/camera.sh (or: generate DIR PERSONS PHOTOS [plain|phone] | \
             normalize DIR THREADS | edge)"
        ),
    }
}
