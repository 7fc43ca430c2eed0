//! `--crop-faces` side by side with today's default, on camera-sized photos with one
//! face each: CPU per photo, bytes per photo, photos per call and calls per 1,000
//! photos, and the detector's hits and misses.
//!
//! `cargo bench --bench faces [-- PERSONS PHOTOS]` (default 2 persons of 20 photos,
//! the most faces a person holds, so the calls per person are what a full person
//! takes):
//!
//! - The corpus: 4032×3024 JPEGs at quality 92 (a phone's original), each holding the
//!   shipped astronaut portrait's head with the face across 1/6 to 1/3 of the short
//!   side, on the busy camera-like background of `benches/camera.rs` (its copy at
//!   1264 px takes about the 300,000-byte budget, as a phone photo's does); one in
//!   four is stored sideways with EXIF orientation 6, as a phone held upright stores
//!   it. Photos without a face are `benches/camera.rs` frames and smooth ones.
//! - CPU: each photo prepared on one thread as today (`normalize::prepare`) and with
//!   `--crop-faces` (`normalize::prepare_faces`), and the detector alone on the
//!   480-pixel grey copy, in thread CPU time.
//! - Calls and bytes: the whole job run by the engine against the in-process emulator,
//!   with and without `--crop-faces`, counting the calls the emulator answered and the
//!   bytes of the images it holds.
//! - Hits and misses: the corpus, photos without a face, and smaller faces (1/8 to
//!   1/24 of the short side), to show where the detector stops finding them.

#[path = "support/exif.rs"]
mod exif;
#[path = "support/faces.rs"]
mod scenes;

use exif::with_orientation;
use faceenroll::emulator::{rehearsal_credentials, Emulator, EmulatorConfig};
use faceenroll::engine::{self, EngineOptions, StopSignal, Workers};
use faceenroll::faces::{self, Count, FaceOptions};
use faceenroll::limits::{RequestBudget, MAX_REQUEST_BYTES};
use faceenroll::normalize::{self, NormalizeOptions};
use faceenroll::plan::{self, PlanOptions};
use faceenroll::report::Tally;
use faceenroll::service::client::{Client, ClientConfig};
use faceenroll::source::{Layout, SourceSpec};
use faceenroll::store::Store;
use image::imageops::{self, FilterType};
use image::RgbImage;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

const FRAME: (u32, u32) = (4032, 3024);

/// The thread's CPU time so far, in seconds.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a pointer to a timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The portrait's head: the face with about 0.6 of its width around it.
fn head() -> RgbImage {
    let portrait = image::load_from_memory(scenes::ASTRONAUT)
        .unwrap()
        .to_rgb8();
    let [x, y, w, _] = scenes::PORTRAIT_FACE;
    let m = w * 6 / 10;
    imageops::crop_imm(&portrait, x - m, y.saturating_sub(m), w + 2 * m, w + 2 * m).to_image()
}

/// A camera-like frame as `benches/camera.rs` makes them: smooth shading, hard edges
/// and sensor noise, so its copy at 1264 px takes about what a phone photo's does
/// (the 300,000-byte budget, four to a call).
fn busy(seed: u64) -> RgbImage {
    let mut rng = fastrand::Rng::with_seed(seed);
    let (w, h) = FRAME;
    let (cx, cy) = (rng.u32(1000..3000) as i64, rng.u32(800..2200) as i64);
    RgbImage::from_fn(w, h, |x, y| {
        let d = ((x as i64 - cx).pow(2) + (y as i64 - cy).pow(2)) as f64;
        let ring = ((d.sqrt() / 40.0).sin() * 60.0) as i32;
        let block = if (x / 97 + y / 61) % 4 == 0 { 40 } else { 0 };
        let mut px =
            |base: u32| (base as i32 + ring + block + rng.i32(-14..14)).clamp(0, 255) as u8;
        image::Rgb([
            px(x * 200 / w + 30),
            px(y * 200 / h + 20),
            px((x + y) * 100 / (w + h) + 60),
        ])
    })
}

/// A frame with the head pasted so the face spans `face` pixels; the face's box.
fn with_face(head: &RgbImage, face: u32, seed: u64) -> (RgbImage, [u32; 4]) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut frame = busy(seed);
    let [_, _, w, _] = scenes::PORTRAIT_FACE;
    let side = face * head.width() / w;
    let scaled = imageops::resize(head, side, side, FilterType::Triangle);
    let x = rng.u32(0..=FRAME.0 - side);
    let y = rng.u32(0..=FRAME.1.saturating_sub(side));
    imageops::replace(&mut frame, &scaled, i64::from(x), i64::from(y));
    let m = (side - face) / 2;
    (frame, [x + m, y + m, face, face])
}

fn jpeg(image: &RgbImage, orientation: u16) -> Vec<u8> {
    let stored = scenes::stored_for(image, orientation);
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 92)
        .encode(
            stored.as_raw(),
            stored.width() as u16,
            stored.height() as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
    if orientation == 1 {
        out
    } else {
        with_orientation(&out, orientation)
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let persons = args.first().copied().unwrap_or(2);
    let photos = args.get(1).copied().unwrap_or(20);
    let n = persons * photos;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    let head = head();
    let short = FRAME.1;

    // The corpus: one face each, across 1/6 to 1/3 of the short side.
    let faces: Vec<[u32; 4]> = (0..n)
        .into_par_iter()
        .map(|i| {
            let face = short / 6 + (short / 3 - short / 6) * (i as u32 % 7) / 6;
            let (frame, face_box) = with_face(&head, face, i as u64);
            let folder = root.join(format!("person{:03}", i / photos));
            std::fs::create_dir_all(&folder).unwrap();
            let orientation = if i % 4 == 1 { 6 } else { 1 };
            std::fs::write(
                folder.join(format!("IMG_{i:04}.jpg")),
                jpeg(&frame, orientation),
            )
            .unwrap();
            face_box
        })
        .collect();
    let paths: Vec<PathBuf> = (0..n)
        .map(|i| {
            root.join(format!("person{:03}", i / photos))
                .join(format!("IMG_{i:04}.jpg"))
        })
        .collect();
    let mean_original = paths
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum::<u64>() as f64
        / n as f64;
    println!(
        "corpus: {persons} persons × {photos} photos, {}×{} JPEG q92 ({:.1} MiB on average), \
         face across 1/6–1/3 of the short side, one in four EXIF orientation 6",
        FRAME.0,
        FRAME.1,
        mean_original / 1048576.0
    );

    cpu(&paths);
    calls(&root, persons, photos);
    hits(&head, &paths, &faces);
}

/// CPU per photo on one thread: today's copy, the crop with detection, and the
/// detector alone on its grey copy.
fn cpu(paths: &[PathBuf]) {
    let opts = NormalizeOptions::default();
    let budget = faces::crop_bytes(&RequestBudget::configured(MAX_REQUEST_BYTES));
    // Warm up (page cache, the detector's model).
    let _ = normalize::prepare_faces(&paths[0], &opts, true, budget, None);
    let mut today = 0.0;
    let mut cropped = 0.0;
    let mut detect = 0.0;
    for path in paths {
        let t = thread_cpu();
        normalize::prepare(path, &opts).unwrap();
        today += thread_cpu() - t;
        let t = thread_cpu();
        normalize::prepare_faces(path, &opts, true, budget, None).unwrap();
        cropped += thread_cpu() - t;
        // The detector alone, on a grey copy of the size it is given.
        let upright = image::load_from_memory(&std::fs::read(path).unwrap())
            .unwrap()
            .to_luma8();
        let grey = imageops::resize(
            &upright,
            faces::DETECT_EDGE,
            faces::DETECT_EDGE * upright.height() / upright.width(),
            FilterType::Triangle,
        );
        let t = thread_cpu();
        let _ = faces::detect(
            grey.as_raw(),
            grey.width(),
            grey.height(),
            1.0,
            grey.dimensions(),
        );
        detect += thread_cpu() - t;
    }
    let n = paths.len() as f64;
    println!("CPU per photo, one thread:");
    println!(
        "  normalized copy (today)          {:>7.1} ms",
        today / n * 1e3
    );
    println!(
        "  --crop-faces (decode, detect, crop) {:>4.1} ms  ({:.2}× today)",
        cropped / n * 1e3,
        cropped / today
    );
    println!(
        "  the detector alone on {} px grey {:>6.1} ms",
        faces::DETECT_EDGE,
        detect / n * 1e3
    );
}

/// The job run against the emulator with and without `--crop-faces`.
fn calls(root: &Path, persons: usize, photos: usize) {
    println!("The job against the emulator (1.5 MB request limit):");
    for crop in [false, true] {
        let emulator = Emulator::start(
            EmulatorConfig {
                qps: None,
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
        let state = tempfile::tempdir().unwrap();
        let store = Store::open(state.path()).unwrap();
        let source = SourceSpec::Tree {
            root: root.to_owned(),
            groups: vec!["bench".into()],
            layout: Layout::Person,
            follow_symlinks: false,
        };
        plan::build(&store, &source, &PlanOptions::default()).unwrap();
        let options = EngineOptions {
            workers: Workers::Fixed(2),
            qps: 0,
            seed: Some(1),
            faces: FaceOptions {
                crop,
                skip_faceless: false,
            },
            ..EngineOptions::default()
        };
        let tally = Tally::default();
        engine::run(&store, &client, &options, &StopSignal::default(), &tally).unwrap();
        let counters = emulator.counters();
        let newperson = counters.received("newperson");
        let addface = counters.received("addface");
        let held = emulator.snapshot();
        let faces: Vec<_> = held.persons.values().flat_map(|p| p.faces.iter()).collect();
        let sent: Vec<u64> = store
            .photos()
            .map(|r| r.unwrap().1)
            .filter_map(|e| match e.image {
                faceenroll::model::ImageRef::File(p) => Some(p),
                _ => None,
            })
            .map(|p| sent_bytes(&p, crop))
            .collect();
        let n = (persons * photos) as f64;
        let calls = newperson + addface;
        println!(
            "  {:<14} {:>3} faces held of {}, {:>7.0} bytes per photo, {:>4.1} photos per addface, \
             {} calls ({newperson} newperson + {addface} addface): {:.0} calls per 1,000 photos",
            if crop { "--crop-faces" } else { "today" },
            faces.len(),
            n,
            sent.iter().sum::<u64>() as f64 / n,
            (n - persons as f64) / addface.max(1) as f64,
            calls,
            calls as f64 * 1000.0 / n,
        );
    }
}

/// The bytes sent for the photo at `path`, as prepared again.
fn sent_bytes(path: &Path, crop: bool) -> u64 {
    let opts = NormalizeOptions::default();
    let budget = faces::crop_bytes(&RequestBudget::configured(MAX_REQUEST_BYTES));
    let prepared = if crop {
        normalize::prepare_faces(path, &opts, true, budget, None)
            .unwrap()
            .prepared
    } else {
        normalize::prepare(path, &opts).unwrap()
    };
    match prepared.bytes() {
        Some(b) => b.len() as u64,
        None => path.metadata().unwrap().len(),
    }
}

/// Hits and misses: the corpus, faceless photos, and faces too small to find.
fn hits(head: &RgbImage, paths: &[PathBuf], boxes: &[[u32; 4]]) {
    let opts = NormalizeOptions::default();
    let look = |path: &Path| normalize::look_for_faces(path, &opts).unwrap().unwrap();
    let found: Vec<_> = paths.par_iter().map(|p| look(p)).collect();
    let mut one = 0;
    let mut right = 0;
    for (detection, truth) in found.iter().zip(boxes) {
        if detection.count() == Count::One {
            one += 1;
            let f = detection.sure().next().unwrap().face;
            let [x, y, w, _] = *truth;
            let (cx, cy) = (f.x + f.w / 2, f.y + f.h / 2);
            if cx.abs_diff(x + w / 2) < w / 2 && cy.abs_diff(y + w / 2) < w / 2 {
                right += 1;
            }
        }
    }
    println!("Hits and misses:");
    println!(
        "  corpus (one face, 1/6–1/3 of the short side): {one} of {} found as one face, {right} at the right place",
        paths.len()
    );
    let dir = tempfile::tempdir().unwrap();
    let faceless: Vec<_> = (0..20u64)
        .into_par_iter()
        .map(|seed| {
            let path = dir.path().join(format!("bg{seed}.jpg"));
            let frame = if seed % 2 == 0 {
                busy(1000 + seed)
            } else {
                scenes::background(FRAME.0, FRAME.1, 1000 + seed)
            };
            std::fs::write(&path, jpeg(&frame, 1)).unwrap();
            let d = look(&path);
            (d.count(), d.faces.is_empty())
        })
        .collect();
    println!(
        "  20 photos without a face (10 busy, 10 smooth): {} with a face found with confidence (a false crop), \
         {} with nothing at all found (skipped by --skip-faceless)",
        faceless.iter().filter(|(c, _)| *c != Count::None).count(),
        faceless.iter().filter(|(_, none)| *none).count(),
    );
    for fraction in [8u32, 12, 16, 24] {
        let found = (0..8u64)
            .into_par_iter()
            .filter(|&seed| {
                let (frame, _) = with_face(head, FRAME.1 / fraction, 500 + seed);
                let path = dir.path().join(format!("small{fraction}-{seed}.jpg"));
                std::fs::write(&path, jpeg(&frame, 1)).unwrap();
                look(&path).count() == Count::One
            })
            .count();
        println!(
            "  a face across 1/{fraction} of the short side ({} px): {found} of 8 found",
            FRAME.1 / fraction
        );
    }
}
