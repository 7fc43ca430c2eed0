//! Generated photos: faces (varied pixels, distinct by seed) and blanks (one colour,
//! no face) by the emulator's rule, in PNG, JPEG and GIF, noisy pictures of a given
//! size, and JPEGs with an EXIF orientation. Self-contained, so benchmarks include it
//! too.
#![allow(dead_code)]

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};
use std::io;
use std::path::Path;

/// The EXIF orientation writer the benchmarks use too.
#[path = "../../benches/support/exif.rs"]
mod exif;
#[allow(unused_imports)]
pub use exif::with_orientation;

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

/// Bytes that start like a JPEG (enough for the planner's content check), distinct
/// for every `tag`; not a decodable picture.
pub fn jpeg(tag: &str) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0];
    b.extend_from_slice(tag.as_bytes());
    b
}

/// A picture with varied pixels ("a face"), different for each seed.
pub fn face_picture(seed: u8, width: u32, height: u32) -> RgbaImage {
    RgbaImage::from_fn(width, height, |x, y| {
        Rgba([
            (x as u8).wrapping_mul(5).wrapping_add(seed),
            (y as u8)
                .wrapping_mul(3)
                .wrapping_add(seed.wrapping_mul(31)),
            seed,
            255,
        ])
    })
}

pub fn encode(picture: &RgbaImage, format: ImageFormat) -> Vec<u8> {
    let mut out = io::Cursor::new(Vec::new());
    if format == ImageFormat::Jpeg {
        image::DynamicImage::ImageRgba8(picture.clone())
            .into_rgb8()
            .write_to(&mut out, format)
            .unwrap();
    } else {
        picture.write_to(&mut out, format).unwrap();
    }
    out.into_inner()
}

/// A PNG face photo of 48×32 pixels.
pub fn face_png(seed: u8) -> Vec<u8> {
    encode(&face_picture(seed, 48, 32), ImageFormat::Png)
}

/// A JPEG face photo of 40×30 pixels.
pub fn face_jpeg(seed: u8) -> Vec<u8> {
    encode(&face_picture(seed, 40, 30), ImageFormat::Jpeg)
}

/// A two-frame GIF.
pub fn animated_gif() -> Vec<u8> {
    use image::codecs::gif::GifEncoder;
    use image::Frame;
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut out);
        encoder
            .encode_frames([
                Frame::new(face_picture(1, 8, 8)),
                Frame::new(face_picture(2, 8, 8)),
            ])
            .unwrap();
    }
    out
}

/// The variable that turns a HEIC test's skip (libheif not loadable here) into a
/// failure: `.ci/run`, which installs libheif, sets it, so CI proves HEIC decoding.
pub const REQUIRE_HEIC_ENV: &str = "FACEENROLL_REQUIRE_HEIC";

/// The system's libheif, able to encode HEVC, for a test that makes HEIC photos; `None`
/// where it is not loadable here, with a notice naming `test` on standard error (which
/// `cargo test` shows), or a failure when [`REQUIRE_HEIC_ENV`] is `1`.
pub fn heic_library(test: &str) -> Option<&'static faceenroll::normalize::heif::Libheif> {
    let usable = faceenroll::normalize::heif::library()
        .map_err(|why| why.to_string())
        .and_then(|lib| lib.encode_heic(&[0; 16 * 16 * 3], 16, 16, 50).map(|_| lib));
    match usable {
        Ok(lib) => Some(lib),
        Err(why) if std::env::var(REQUIRE_HEIC_ENV).as_deref() == Ok("1") => {
            panic!("{REQUIRE_HEIC_ENV}=1 and libheif cannot make a HEIC photo here: {why}")
        }
        Err(why) => {
            use std::io::Write as _;
            // Written to stderr directly, not with eprintln!, so the test harness does
            // not capture it: the skip is seen in every run, not only a failing one.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: libheif cannot make a HEIC photo here ({why})"
            );
            None
        }
    }
}
