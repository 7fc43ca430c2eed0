//! Helpers the end-to-end tests share: generated photos, archives in temporary
//! directories, an in-process emulator and a client for it.
#![allow(dead_code)]

use faceenroll::emulator::{rehearsal_credentials, Emulator, EmulatorConfig, REHEARSAL_APPID};
use faceenroll::model::ContentHash;
use faceenroll::service::client::{Client, ClientConfig};
use std::path::{Path, PathBuf};

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
