//! Helpers the end-to-end tests share: generated photos, archives in temporary
//! directories, an in-process emulator and a client for it.
#![allow(dead_code)]

use faceenroll::emulator::{rehearsal_credentials, Emulator, EmulatorConfig, REHEARSAL_APPID};
use faceenroll::engine::{self, retry::RetryPolicy, EngineOptions, RunOutcome, StopSignal};
use faceenroll::model::ContentHash;
use faceenroll::plan::{self, PlanOptions};
use faceenroll::report::Tally;
use faceenroll::service::client::{Client, ClientConfig};
use faceenroll::source::{Layout, SourceSpec};
use faceenroll::store::Store;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A small PNG whose pixels depend on `seed`: a "face" by the emulator's rule, and a
/// different one for every seed.
pub fn photo(seed: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(24, 24, |x, y| {
        let v = seed.wrapping_mul(2_654_435_761) ^ (x * 31 + y * 17);
        image::Rgb([
            (v & 0xff) as u8,
            ((v >> 8) & 0xff) as u8,
            (x * 10 + y) as u8,
        ])
    });
    encode_png(&img)
}

/// A PNG of one colour: no face by the emulator's rule.
pub fn blank() -> Vec<u8> {
    encode_png(&image::RgbImage::from_pixel(
        24,
        24,
        image::Rgb([200, 200, 200]),
    ))
}

fn encode_png(img: &image::RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// A photo archive laid out as `root/<person>/<photo>` in a temporary directory.
pub struct Archive {
    pub dir: tempfile::TempDir,
}

impl Archive {
    pub fn new() -> Archive {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("photos")).unwrap();
        Archive { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("photos")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes a photo and answers its path.
    pub fn add(&self, person: &str, name: &str, bytes: &[u8]) -> PathBuf {
        let dir = self.root().join(person);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// `persons` persons of `photos` distinct photos each, seeds starting at `first`.
    pub fn fill(&self, persons: u32, photos: u32, first: u32) {
        for p in 0..persons {
            for i in 0..photos {
                let seed = first + p * 1000 + i;
                self.add(
                    &format!("person{p:03}"),
                    &format!("{i:03}.png"),
                    &photo(seed),
                );
            }
        }
    }
}

pub fn hash_of(path: &Path) -> String {
    ContentHash::of(&std::fs::read(path).unwrap()).to_hex()
}

pub fn options() -> EngineOptions {
    EngineOptions {
        workers: 4,
        qps: 0,
        retry: RetryPolicy {
            max_attempts: 12,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            max_total_wait: Duration::from_secs(5),
        },
        seed: Some(7),
        ..EngineOptions::default()
    }
}

pub fn spec(archive: &Archive) -> SourceSpec {
    SourceSpec::Tree {
        root: archive.root(),
        groups: vec!["staff".into()],
        layout: Layout::Person,
        follow_symlinks: false,
    }
}

/// Plans the archive into its state directory and runs the engine once.
pub fn run(archive: &Archive, client: &Client, options: &EngineOptions) -> (RunOutcome, Tally) {
    run_with(archive, client, options, &PlanOptions::default())
}

/// Plans the archive with `plan` options and runs the engine once.
pub fn run_with(
    archive: &Archive,
    client: &Client,
    options: &EngineOptions,
    plan: &PlanOptions,
) -> (RunOutcome, Tally) {
    let store = Store::open(&archive.state()).unwrap();
    plan::build(&store, &spec(archive), plan).unwrap();
    let tally = Tally::default();
    let outcome = engine::run(&store, client, options, &StopSignal::default(), &tally).unwrap();
    (outcome, tally)
}

/// An emulator on an ephemeral loopback port, with the rehearsal account and no
/// rate limit unless the test sets one.
pub fn emulator() -> Emulator {
    emulator_with(|_| {})
}

pub fn emulator_with(configure: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    let mut config = EmulatorConfig::rehearsal();
    config.qps = None;
    configure(&mut config);
    Emulator::start(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// A client of `emulator` with the rehearsal credentials and short timeouts.
pub fn client(emulator: &Emulator) -> Client {
    let mut config = ClientConfig::new(
        &emulator.endpoint(),
        REHEARSAL_APPID,
        "",
        rehearsal_credentials(),
    );
    config.read_timeout = std::time::Duration::from_secs(5);
    Client::new(config).unwrap()
}

/// A picture of smooth gradients with per-pixel noise of the given amplitude.
pub fn picture(width: u32, height: u32, noise: u8, seed: u64) -> RgbImage {
    let mut rng = fastrand::Rng::with_seed(seed);
    RgbImage::from_fn(width, height, |x, y| {
        let mut n = || if noise == 0 { 0 } else { rng.u8(..noise) };
        Rgb([
            ((x * 255 / width) as u8).wrapping_add(n()),
            ((y * 255 / height) as u8).wrapping_add(n()),
            (((x + y) * 127 / (width + height)) as u8).wrapping_add(n()),
        ])
    })
}

pub fn jpeg_bytes(image: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(image)
        .unwrap();
    out
}

pub fn write_png(path: &Path, image: &RgbImage) {
    let mut out = Vec::new();
    PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::NoFilter)
        .write_image(
            image,
            image.width(),
            image.height(),
            image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    std::fs::write(path, out).unwrap();
}

/// A minimal EXIF APP1 segment holding only an Orientation entry.
pub fn exif_app1(orientation: u16) -> Vec<u8> {
    let mut tiff = Vec::new();
    tiff.extend_from_slice(b"II*\0"); // little-endian TIFF header
    tiff.extend_from_slice(&8u32.to_le_bytes()); // first IFD right after the header
    tiff.extend_from_slice(&1u16.to_le_bytes()); // one entry
    tiff.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    tiff.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    tiff.extend_from_slice(&1u32.to_le_bytes()); // one value
    tiff.extend_from_slice(&orientation.to_le_bytes());
    tiff.extend_from_slice(&[0, 0]); // value padding
    tiff.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    let mut segment = vec![0xFF, 0xE1];
    segment.extend_from_slice(&((2 + 6 + tiff.len()) as u16).to_be_bytes());
    segment.extend_from_slice(b"Exif\0\0");
    segment.extend_from_slice(&tiff);
    segment
}

/// A JPEG whose EXIF says how its stored pixels must be turned.
pub fn with_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&exif_app1(orientation));
    out.extend_from_slice(&jpeg[2..]);
    out
}
