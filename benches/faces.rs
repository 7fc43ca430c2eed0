//! `--crop-faces` side by side with today's default, on camera-sized photos with one
//! face each: CPU per photo, bytes per photo, photos per call and calls per 1,000
//! photos for persons of 20, 10 and 5 photos, and the detector's hits and misses,
//! on the corpus and on real photos.
//!
//! `cargo bench --bench faces [-- PHOTOS] [phone|plain]` (default 40 photos, `phone`):
//!
//! - Real photos first: the photos shipped in `tests/faces/` (public domain or CC0,
//!   see its README) encoded at quality 85 as the normalizer encodes, in bits per
//!   pixel, and what that makes of a copy at 1264×948. The corpus's frames are made
//!   to match (`support/frame.rs`).
//! - The corpus: PHOTOS 4032×3024 JPEGs at quality 92 (a phone's original), each
//!   holding a real head (the astronaut's or Grace Hopper's, in turn) with the face
//!   across 1/6 to 1/3 of the short side, on a camera-like frame with the fine
//!   texture of a real photo (`phone`), or without it (`plain`, the frames of
//!   `benches/camera.rs`); one in four is stored sideways with EXIF orientation 6, as
//!   a phone held upright stores it.
//! - CPU: each photo prepared on one thread as today (`normalize::prepare`) and with
//!   `--crop-faces` (`normalize::prepare_faces`), and the detector alone on the
//!   480-pixel grey copy, in thread CPU time.
//! - Calls and bytes: the whole job run by the engine against the in-process emulator,
//!   with and without `--crop-faces`, counting the calls the emulator answered and the
//!   bytes of the images it holds; the same photos in persons of 20, 10 and 5 (hard
//!   links), and what `plan --crop-faces` estimates for each.
//! - Hits and misses: the corpus, photos without a face, smaller faces (1/8 to 1/24
//!   of the short side), the real photos as they are, and the group photo in the
//!   `rustface` crate's sources when Cargo has unpacked them.

#[path = "support/exif.rs"]
mod exif;
#[path = "support/frame.rs"]
mod frame;
#[path = "support/faces.rs"]
mod scenes;

use exif::with_orientation;
use faceenroll::emulator::{rehearsal_credentials, Emulator, EmulatorConfig};
use faceenroll::engine::{self, EngineOptions, StopSignal, Workers};
use faceenroll::faces::{self, Count, Detection, FaceOptions};
use faceenroll::limits::{RequestBudget, MAX_REQUEST_BYTES};
use faceenroll::normalize::{self, NormalizeOptions};
use faceenroll::plan::{self, PlanOptions};
use faceenroll::report::Tally;
use faceenroll::service::client::{Client, ClientConfig};
use faceenroll::source::{Layout, SourceSpec};
use faceenroll::store::Store;
use frame::{camera_frame, Detail};
use image::imageops::{self, FilterType};
use image::RgbImage;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

const FRAME: (u32, u32) = (4032, 3024);

/// The pixels of a whole copy at the default 1264 px edge, landscape.
const COPY_PIXELS: f64 = 1264.0 * 948.0;

/// The real photos shipped in `tests/faces/` (see its README): name, bytes, and
/// what is in them.
const REAL: [(&str, &[u8], &str); 6] = [
    (
        "astronaut",
        include_bytes!("../tests/faces/astronaut.jpg"),
        "a frontal portrait",
    ),
    (
        "grace_hopper",
        include_bytes!("../tests/faces/grace_hopper.jpg"),
        "a frontal portrait",
    ),
    (
        "camera",
        include_bytes!("../tests/faces/camera.jpg"),
        "a man filming, his face in profile",
    ),
    (
        "chelsea",
        include_bytes!("../tests/faces/chelsea.jpg"),
        "a cat's face",
    ),
    (
        "coffee",
        include_bytes!("../tests/faces/coffee.jpg"),
        "no face",
    ),
    (
        "rocket",
        include_bytes!("../tests/faces/rocket.jpg"),
        "no face",
    ),
];

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

/// A portrait's head: the face with about 0.6 of its width around it, and the face's
/// box in it.
struct Head {
    image: RgbImage,
    face: [u32; 4],
}

impl Head {
    fn of(portrait: &[u8], face: [u32; 4]) -> Head {
        let portrait = image::load_from_memory(portrait).unwrap().to_rgb8();
        let [x, y, w, h] = face;
        let m = w * 6 / 10;
        let (x0, y0) = (x.saturating_sub(m), y.saturating_sub(m));
        let x1 = (x + w + m).min(portrait.width());
        let y1 = (y + h + m).min(portrait.height());
        Head {
            image: imageops::crop_imm(&portrait, x0, y0, x1 - x0, y1 - y0).to_image(),
            face: [x - x0, y - y0, w, h],
        }
    }

    /// The shipped portraits' heads: the astronaut's (its face box known) and Grace
    /// Hopper's (its face box as the detector finds it at full size).
    fn all() -> Vec<Head> {
        let hopper = REAL[1].1;
        let grey = image::load_from_memory(hopper).unwrap().to_luma8();
        let found = faces::detect(
            grey.as_raw(),
            grey.width(),
            grey.height(),
            1.0,
            grey.dimensions(),
        );
        let f = found
            .sure()
            .next()
            .expect("Grace Hopper's face is found at full size")
            .face;
        vec![
            Head::of(scenes::ASTRONAUT, scenes::PORTRAIT_FACE),
            Head::of(hopper, [f.x, f.y, f.w, f.h]),
        ]
    }
}

/// A frame with the head pasted so the face spans `face` pixels across; the face's box.
fn with_face(head: &Head, face: u32, seed: u64, detail: Detail) -> (RgbImage, [u32; 4]) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut frame = camera_frame(FRAME.0, FRAME.1, seed, detail);
    let [fx, fy, fw, fh] = head.face;
    let scale = |v: u32| v * face / fw;
    let (w, h) = (scale(head.image.width()), scale(head.image.height()));
    let scaled = imageops::resize(&head.image, w, h, FilterType::Triangle);
    let x = rng.u32(0..=FRAME.0 - w);
    let y = rng.u32(0..=FRAME.1.saturating_sub(h));
    imageops::replace(&mut frame, &scaled, i64::from(x), i64::from(y));
    (frame, [x + scale(fx), y + scale(fy), face, scale(fh)])
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
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let n: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(40);
    let detail = args
        .iter()
        .find_map(|a| Detail::parse(a))
        .unwrap_or(Detail::Phone);
    let dir = tempfile::tempdir().unwrap();
    let pool = dir.path().join("photos");
    std::fs::create_dir_all(&pool).unwrap();
    let heads = Head::all();
    let short = FRAME.1;

    real_detail();

    // The corpus: one face each, across 1/6 to 1/3 of the short side.
    let faces: Vec<[u32; 4]> = (0..n)
        .into_par_iter()
        .map(|i| {
            let face = short / 6 + (short / 3 - short / 6) * (i as u32 % 7) / 6;
            let (frame, face_box) = with_face(&heads[i % heads.len()], face, i as u64, detail);
            let orientation = if i % 4 == 1 { 6 } else { 1 };
            std::fs::write(
                pool.join(format!("IMG_{i:04}.jpg")),
                jpeg(&frame, orientation),
            )
            .unwrap();
            face_box
        })
        .collect();
    let paths: Vec<PathBuf> = (0..n)
        .map(|i| pool.join(format!("IMG_{i:04}.jpg")))
        .collect();
    let mean_original = paths
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum::<u64>() as f64
        / n as f64;
    println!(
        "corpus: {n} photos, {}×{} JPEG q92 ({:.1} MiB on average), frames {detail:?}, the astronaut's \
         and Grace Hopper's heads in turn, the face across 1/6–1/3 of the short side, one in \
         four EXIF orientation 6",
        FRAME.0,
        FRAME.1,
        mean_original / 1048576.0
    );

    cpu(&paths);
    println!("The job against the emulator (1.5 MB request limit), the same photos in persons of:");
    for per_person in [20, 10, 5] {
        let root = dir.path().join(format!("persons-of-{per_person}"));
        for (i, path) in paths.iter().enumerate() {
            let folder = root.join(format!("person{:03}", i / per_person));
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::hard_link(path, folder.join(path.file_name().unwrap())).unwrap();
        }
        calls(&root, n, per_person);
    }
    hits(&heads, &paths, &faces, detail);
    real_hits();
}

/// What real photos take at quality 85, as the normalizer encodes a copy: bits per
/// pixel, and the bytes that makes at 1264×948. The shipped photos are already
/// scaled down from their cameras' frames, as a copy at 1264 px is from a 12-megapixel
/// original, so their detail per pixel is of the same order as a copy's.
fn real_detail() {
    println!("Real photos at quality 85 (the normalizer's encoder):");
    let mut bpp: Vec<f64> = REAL
        .iter()
        .map(|(name, bytes, _)| {
            let picture = image::load_from_memory(bytes).unwrap();
            let (w, h) = (picture.width(), picture.height());
            let mut out = Vec::new();
            let encoder = jpeg_encoder::Encoder::new(&mut out, 85);
            match picture {
                image::DynamicImage::ImageLuma8(g) => encoder
                    .encode(g.as_raw(), w as u16, h as u16, jpeg_encoder::ColorType::Luma)
                    .unwrap(),
                other => encoder
                    .encode(
                        other.to_rgb8().as_raw(),
                        w as u16,
                        h as u16,
                        jpeg_encoder::ColorType::Rgb,
                    )
                    .unwrap(),
            }
            let bits = out.len() as f64 * 8.0 / f64::from(w * h);
            println!(
                "  {name:<13} {w}×{h}: {:>6} bytes, {bits:.2} bits per pixel, {:>7.0} bytes at 1264×948",
                out.len(),
                bits / 8.0 * COPY_PIXELS
            );
            bits
        })
        .collect();
    bpp.sort_by(f64::total_cmp);
    let median = (bpp[bpp.len() / 2 - 1] + bpp[bpp.len() / 2]) / 2.0;
    println!(
        "  median {median:.2} bits per pixel: {:.0} bytes at 1264×948",
        median / 8.0 * COPY_PIXELS
    );
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

/// The job run against the emulator with and without `--crop-faces`, on the photos
/// under `root` (persons of `per_person`), and what the plan estimates.
fn calls(root: &Path, n: usize, per_person: usize) {
    let persons = n.div_ceil(per_person);
    let mut per_1000 = [0.0; 2];
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
        let options = PlanOptions::default();
        let planned = plan::build(&store, &source, &options).unwrap().calls;
        let estimate = if crop {
            faceenroll::ops::faces::survey(&store, &options.normalize, 2).unwrap();
            plan::calls_with_crops(&store, &options).unwrap()
        } else {
            planned
        };
        let engine_options = EngineOptions {
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
        engine::run(
            &store,
            &client,
            &engine_options,
            &StopSignal::default(),
            &tally,
        )
        .unwrap();
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
        let calls = newperson + addface;
        let bytes = sent.iter().sum::<u64>() as f64 / n as f64;
        per_1000[usize::from(crop)] = calls as f64 * 1000.0 / n as f64;
        println!(
            "  {per_person:>2}: {:<13} {:>3} faces held of {n}, {:>7.0} bytes per photo ({:.2} bits per pixel \
             of a 1264×948 copy), {:>4.1} photos per addface, {calls} calls ({newperson} newperson + \
             {addface} addface): {:.0} calls per 1,000 photos; plan estimated {} ({} + {})",
            if crop { "--crop-faces" } else { "today" },
            faces.len(),
            bytes,
            bytes * 8.0 / COPY_PIXELS,
            (n - persons) as f64 / addface.max(1) as f64,
            per_1000[usize::from(crop)],
            estimate.total(),
            estimate.newperson,
            estimate.addface,
        );
    }
    println!(
        "      calls per 1,000 photos fall {:.2}× with --crop-faces",
        per_1000[0] / per_1000[1]
    );
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
fn hits(heads: &[Head], paths: &[PathBuf], boxes: &[[u32; 4]], detail: Detail) {
    let opts = NormalizeOptions::default();
    let look = |path: &Path| normalize::look_for_faces(path, &opts).unwrap().unwrap();
    let found: Vec<_> = paths.par_iter().map(|p| look(p)).collect();
    let mut one = 0;
    let mut right = 0;
    for (detection, truth) in found.iter().zip(boxes) {
        if detection.count() == Count::One {
            one += 1;
            let f = detection.sure().next().unwrap().face;
            let [x, y, w, h] = *truth;
            let (cx, cy) = (f.x + f.w / 2, f.y + f.h / 2);
            if cx.abs_diff(x + w / 2) < w / 2 && cy.abs_diff(y + h / 2) < h / 2 {
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
                camera_frame(FRAME.0, FRAME.1, 1000 + seed, detail)
            } else {
                scenes::background(FRAME.0, FRAME.1, 1000 + seed)
            };
            std::fs::write(&path, jpeg(&frame, 1)).unwrap();
            let d = look(&path);
            (d.count(), d.faces.is_empty())
        })
        .collect();
    println!(
        "  20 photos without a face (10 camera-like, 10 smooth): {} with a face found with confidence (a false crop), \
         {} with nothing at all found (skipped by --skip-faceless)",
        faceless.iter().filter(|(c, _)| *c != Count::None).count(),
        faceless.iter().filter(|(_, none)| *none).count(),
    );
    for fraction in [8u32, 12, 16, 24] {
        let found = (0..8u64)
            .into_par_iter()
            .filter(|&seed| {
                let head = &heads[seed as usize % heads.len()];
                let (frame, _) = with_face(head, FRAME.1 / fraction, 500 + seed, detail);
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

/// The detector on real photos as they are, as `--crop-faces` runs it (on a grey copy
/// of 480 px), and on the group photo of the `rustface` crate's sources, also at
/// full size to show what the smaller copy costs.
fn real_hits() {
    let opts = NormalizeOptions::default();
    let dir = tempfile::tempdir().unwrap();
    let describe = |d: &Detection| {
        let sure: Vec<String> = d
            .sure()
            .map(|f| format!("{} (score {:.1})", f.face, f.score))
            .collect();
        let unsure = d.faces.len() - sure.len();
        format!(
            "{:?}: {} with confidence{}{}",
            d.count(),
            sure.len(),
            if sure.is_empty() {
                String::new()
            } else {
                format!(" [{}]", sure.join(", "))
            },
            if unsure > 0 {
                format!(", {unsure} under it")
            } else {
                String::new()
            }
        )
    };
    println!("Real photos as they are:");
    for (name, bytes, what) in REAL {
        let path = dir.path().join(format!("{name}.jpg"));
        std::fs::write(&path, bytes).unwrap();
        let d = normalize::look_for_faces(&path, &opts).unwrap().unwrap();
        println!("  {name:<13} ({what}): {}", describe(&d));
    }
    let group = group_photo();
    match group {
        None => println!(
            "  the rustface crate's group photo (test.png): not found under the Cargo registry"
        ),
        Some(path) => {
            let d = normalize::look_for_faces(&path, &opts).unwrap().unwrap();
            println!(
                "  the rustface crate's group photo ({}; 29 people, faces about 1/30 of its width): {}",
                path.display(),
                describe(&d)
            );
            let grey = image::open(&path).unwrap().to_luma8();
            let full = faces::detect(
                grey.as_raw(),
                grey.width(),
                grey.height(),
                1.0,
                grey.dimensions(),
            );
            println!(
                "    the same at full size ({}×{} grey, not what --crop-faces does): {} with confidence",
                grey.width(),
                grey.height(),
                full.sure().count()
            );
        }
    }
}

/// The `rustface` crate's own test image (a group photo) where Cargo unpacked the
/// crate, if it did.
fn group_photo() -> Option<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let registries = std::fs::read_dir(home.join("registry/src")).ok()?;
    registries
        .filter_map(|r| r.ok())
        .flat_map(|r| std::fs::read_dir(r.path()).into_iter().flatten())
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rustface-"))
        .map(|e| e.path().join("test.png"))
        .find(|p| p.is_file())
}
