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

/// Decompression bombs: a few KB whose header claims `width` × `height` pixels, in each
/// format the job decodes (name, bytes). Only the header is real; the data behind it
/// is filler, as in a bomb made to cost a decoder its memory.
pub fn bombs(width: u32, height: u32) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("bomb.jpg", jpeg_bomb(width as u16, height as u16)),
        ("bomb.png", png_bomb(width, height)),
        ("bomb.gif", gif_bomb(width as u16, height as u16)),
        ("bomb.webp", webp_bomb(width, height)),
        ("bomb.tif", tiff_bomb(width, height)),
    ]
}

/// A baseline JPEG header of `width` × `height` (one gray component) and 3 KB of scan.
pub fn jpeg_bomb(width: u16, height: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    let mut sof = vec![0xFF, 0xC0, 0, 11, 8];
    sof.extend_from_slice(&height.to_be_bytes());
    sof.extend_from_slice(&width.to_be_bytes());
    sof.extend_from_slice(&[1, 1, 0x11, 0]);
    out.extend_from_slice(&sof);
    out.extend_from_slice(&[0xFF, 0xDA, 0, 8, 1, 1, 0, 0, 63, 0]);
    out.extend_from_slice(&[0; 3000]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A PNG whose IHDR declares `width` × `height` RGB pixels, with a short IDAT.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &[0x78, 0x9C, 0x63, 0, 0, 0, 1, 0, 1]);
    chunk(&mut out, b"IEND", &[]);
    out
}

/// The CRC-32 of PNG chunks (ISO 3309), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A GIF whose screen and one frame are `width` × `height`, with one data block.
pub fn gif_bomb(width: u16, height: u16) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 255, 255, 255]);
    out.push(0x2C);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&[2, 2, 0x4C, 0x01, 0, 0x3B]);
    out
}

/// An extended WebP (VP8X) whose canvas is `width` × `height`, with an empty VP8L.
pub fn webp_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut body = b"WEBPVP8X".to_vec();
    body.extend_from_slice(&10u32.to_le_bytes());
    body.extend_from_slice(&[0, 0, 0, 0]);
    body.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    body.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    body.extend_from_slice(b"VP8L");
    body.extend_from_slice(&5u32.to_le_bytes());
    let (w, h) = (width.min(16384) - 1, height.min(16384) - 1);
    let bits = w | (h << 14);
    body.push(0x2F);
    body.extend_from_slice(&bits.to_le_bytes());
    body.push(0);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// A little-endian TIFF of one strip whose IFD declares `width` × `height` RGB pixels.
pub fn tiff_bomb(width: u32, height: u32) -> Vec<u8> {
    let entries: [(u16, u16, u32); 9] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 2),
        (273, 4, 8 + 2 + 9 * 12 + 4),
        (277, 3, 3),
        (278, 4, height),
        (279, 4, 64),
    ];
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        if kind == 3 {
            out.extend_from_slice(&(value as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&[0; 64]);
    out
}
