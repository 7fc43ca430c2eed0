//! Camera originals side by side: the corpus, and this project's normalization of it.
//!
//! `benches/camera.sh` drives it; by hand:
//!
//! - `cargo bench --bench camera -- generate DIR PERSONS PHOTOS` writes PERSONS folders
//!   of PHOTOS camera-like JPEGs each (4032×3024, quality 92, one in four tagged EXIF
//!   orientation 6, as a phone held upright stores them) under DIR.
//! - `cargo bench --bench camera -- normalize DIR THREADS` prepares every photo under
//!   DIR with the default options on a pool of THREADS, as an enroll does, and prints
//!   photos per second, CPU per photo and the bytes sent.
//!
//! Peak memory is measured from outside, by the script, so every pipeline is measured
//! the same way.

#[path = "support/exif.rs"]
mod exif;
use exif::with_orientation;
use faceenroll::normalize::{prepare, thread_pool, NormalizeOptions, Outcome};
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// A camera-like picture: smooth shading, hard edges and sensor noise, so a JPEG at
/// quality 92 comes out near the size of a phone's original.
fn picture(seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (w, h) = (4032u32, 3024u32);
    let (cx, cy) = (rng.u32(1000..3000) as i64, rng.u32(800..2200) as i64);
    let mut out = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let d = ((x as i64 - cx).pow(2) + (y as i64 - cy).pow(2)) as f64;
            let ring = ((d.sqrt() / 40.0).sin() * 60.0) as i32;
            let block = if (x / 97 + y / 61) % 4 == 0 { 40 } else { 0 };
            let mut px =
                |base: u32| (base as i32 + ring + block + rng.i32(-14..14)).clamp(0, 255) as u8;
            out.push(px(x * 200 / w + 30));
            out.push(px(y * 200 / h + 20));
            out.push(px((x + y) * 100 / (w + h) + 60));
        }
    }
    out
}

fn generate(dir: &Path, persons: usize, photos: usize) {
    let t = Instant::now();
    let bytes: u64 = (0..persons * photos)
        .into_par_iter()
        .map(|i| {
            let folder = dir.join(format!("person{:03}", i / photos));
            std::fs::create_dir_all(&folder).unwrap();
            let mut jpeg = Vec::new();
            jpeg_encoder::Encoder::new(&mut jpeg, 92)
                .encode(&picture(i as u64), 4032, 3024, jpeg_encoder::ColorType::Rgb)
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
        ),
        ["normalize", dir, threads] => normalize(Path::new(dir), threads.parse().unwrap()),
        ["edge"] => println!("{}", NormalizeOptions::default().max_edge),
        _ => println!(
            "camera: run by benches/camera.sh (or: generate DIR PERSONS PHOTOS | \
             normalize DIR THREADS | edge)"
        ),
    }
}
