//! What the emulator makes of a photo's bytes: the service's image checks, in order.
//!
//! 1. No bytes at all: -1300 (image empty).
//! 2. The magic bytes are not those of JPEG, PNG, BMP or GIF: -1400 (illegal image
//!    format). A GIF with more than one frame (animated) is refused with -1400 too.
//! 3. The bytes do not decode (truncated or corrupt file, or a picture that would
//!    need more than [`MAX_DECODE_BYTES`] of memory): -1102 (decode failed).
//! 4. The decoded pixels are all one colour: -1101 (no face found). This is the
//!    emulator's stand-in for face detection: a blank picture has no face, any
//!    picture with at least two distinct pixel values has one.
//!
//! A photo that passes is known by the BLAKE3 hash of the exact bytes received and
//! the width and height of the decoded picture.

use crate::model::{ContentHash, ImageKind};
use crate::service::codes::code;
use image::{AnimationDecoder, ImageFormat};
use serde::{Deserialize, Serialize};

/// The most memory one decoded picture may take (a 6 MB JPEG of 8000×6000 pixels
/// needs 144 MiB); larger pictures are refused with -1102 rather than risk the
/// emulator's memory when many calls decode at once.
pub const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// A photo the emulator accepts as a face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceImage {
    pub hash: ContentHash,
    pub width: u32,
    pub height: u32,
}

/// The image format named by the first bytes, if it is one the service accepts.
pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
    ImageKind::sniff(bytes).map(ImageKind::format)
}

/// Runs the checks of the module doc on `bytes`: the face, or the code refusing it.
pub fn examine(bytes: &[u8]) -> Result<FaceImage, i64> {
    if bytes.is_empty() {
        return Err(code::IMAGE_EMPTY);
    }
    let format = sniff(bytes).ok_or(code::ILLEGAL_IMAGE)?;
    if format == ImageFormat::Gif && is_animated_gif(bytes)? {
        return Err(code::ILLEGAL_IMAGE);
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let picture = reader.decode().map_err(|_| code::DECODE_FAILED)?;
    let pixel = usize::from(picture.color().bytes_per_pixel());
    let raw = picture.as_bytes();
    let first = raw.get(..pixel).ok_or(code::NO_FACE)?;
    if raw.chunks_exact(pixel).all(|p| p == first) {
        return Err(code::NO_FACE);
    }
    Ok(FaceImage {
        hash: ContentHash::of(bytes),
        width: picture.width(),
        height: picture.height(),
    })
}

/// Whether a GIF holds more than one frame; a GIF that cannot be read is -1102.
fn is_animated_gif(bytes: &[u8]) -> Result<bool, i64> {
    let decoder = image::codecs::gif::GifDecoder::new(std::io::Cursor::new(bytes))
        .map_err(|_| code::DECODE_FAILED)?;
    Ok(decoder.into_frames().take(2).count() > 1)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use image::{Rgba, RgbaImage};

    pub(crate) fn varied(width: u32, height: u32, seed: u8) -> RgbaImage {
        RgbaImage::from_fn(width, height, |x, y| {
            Rgba([
                (x as u8).wrapping_mul(7).wrapping_add(seed),
                (y as u8).wrapping_mul(13),
                seed,
                255,
            ])
        })
    }

    pub(crate) fn encode(picture: &RgbaImage, format: ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        match format {
            ImageFormat::Jpeg => image::DynamicImage::ImageRgba8(picture.clone())
                .into_rgb8()
                .write_to(&mut out, format)
                .unwrap(),
            _ => picture.write_to(&mut out, format).unwrap(),
        }
        out.into_inner()
    }

    #[test]
    fn accepts_each_format_with_its_size() {
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Bmp,
            ImageFormat::Gif,
        ] {
            let bytes = encode(&varied(40, 30, 3), format);
            assert_eq!(sniff(&bytes), Some(format));
            let face = examine(&bytes).unwrap_or_else(|c| panic!("{format:?}: {c}"));
            assert_eq!((face.width, face.height), (40, 30));
            assert_eq!(face.hash, ContentHash::of(&bytes));
        }
    }

    #[test]
    fn refusals_follow_the_documented_order() {
        assert_eq!(examine(b""), Err(-1300));
        assert_eq!(examine(b"hello, not an image"), Err(-1400));
        let png = encode(&varied(40, 30, 3), ImageFormat::Png);
        assert_eq!(examine(&png[..png.len() / 2]), Err(-1102));
        let jpeg = encode(&varied(40, 30, 3), ImageFormat::Jpeg);
        assert_eq!(examine(&jpeg[..20]), Err(-1102));
        let blank = RgbaImage::from_pixel(16, 16, Rgba([200, 10, 10, 255]));
        assert_eq!(examine(&encode(&blank, ImageFormat::Png)), Err(-1101));
    }

    #[test]
    fn animated_gifs_are_refused() {
        use image::codecs::gif::GifEncoder;
        use image::Frame;
        let mut out = Vec::new();
        {
            let mut encoder = GifEncoder::new(&mut out);
            encoder
                .encode_frames([Frame::new(varied(8, 8, 1)), Frame::new(varied(8, 8, 2))])
                .unwrap();
        }
        assert_eq!(examine(&out), Err(-1400));
    }
}
