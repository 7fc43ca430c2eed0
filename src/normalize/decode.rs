//! Decoding a photo to 8-bit RGB or gray pixels, no larger than needed.
//!
//! A JPEG is decoded at the smallest DCT scale (1/8, 1/4, 1/2 or 1) whose picture is
//! still at least the size it is to be fitted into: the inverse DCT then does most of
//! the scaling, at a fraction of the cost of a full decode and a resize. A 12-megapixel
//! camera original bound for 1280 pixels decodes straight to 2016×1512. HEIC/HEIF
//! photos are decoded by the system's libheif, loaded when the first one is met
//! ([`heif`]); every other format by the image crate, at full size.

use super::header::Kind;
use super::heif;
use super::picture::flatten;
use super::{decode_failure, Failure, MAX_DECODED_BYTES};
use image::{DynamicImage, ImageDecoder, ImageReader};
use indicatif::HumanBytes;
use std::io::Cursor;

/// A decoded photo: its pixels (8-bit RGB or gray) and its colour profile, if any.
pub(super) struct Decoded {
    pub(super) picture: DynamicImage,
    pub(super) profile: Option<Vec<u8>>,
}

/// The DCT scale, in eighths, a JPEG of `dims` is decoded at to be fitted into a
/// square of `edge` pixels: the smallest whose picture still reaches the fitted size
/// on one axis (the rule of `jpeg_decoder::Decoder::scale`, given the fitted size).
pub(super) fn jpeg_scale(dims: (u32, u32), edge: u32) -> u32 {
    let fitted = fitted(dims, edge);
    let scaled = |side: u32, eighths: u32| (side * eighths).div_ceil(8);
    [1, 2, 4]
        .into_iter()
        .find(|&s| scaled(dims.0, s) >= fitted.0 || scaled(dims.1, s) >= fitted.1)
        .unwrap_or(8)
}

/// Dimensions of a picture of `dims` fitted into a square of `edge`, aspect kept.
pub(super) fn fitted(dims: (u32, u32), edge: u32) -> (u32, u32) {
    let long = dims.0.max(dims.1).max(1);
    if edge >= long {
        return dims;
    }
    let scale =
        |side: u32| (u64::from(side) * u64::from(edge) + u64::from(long) / 2) / u64::from(long);
    (scale(dims.0).max(1) as u32, scale(dims.1).max(1) as u32)
}

/// Decodes a photo of kind `kind` for fitting into a square of `edge` pixels.
pub(super) fn decode(original: &[u8], kind: Kind, edge: u32) -> Result<Decoded, Failure> {
    if kind == Kind::Jpeg {
        if let Some(decoded) = decode_jpeg_scaled(original, edge)? {
            return Ok(decoded);
        }
    }
    if kind == Kind::Heif {
        return decode_heif(original);
    }
    decode_any(original)
}

/// Decodes a gray or YCbCr/RGB JPEG at its DCT scale for `edge`; `None` for a JPEG of
/// another kind (CMYK, 16-bit), which the image crate decodes instead.
fn decode_jpeg_scaled(original: &[u8], edge: u32) -> Result<Option<Decoded>, Failure> {
    let failed = |e: jpeg_decoder::Error| Failure::Decode(e.to_string());
    let mut decoder = jpeg_decoder::Decoder::new(original);
    decoder.read_info().map_err(failed)?;
    let info = decoder.info().expect("read_info succeeded");
    let channels = match info.pixel_format {
        jpeg_decoder::PixelFormat::L8 => 1,
        jpeg_decoder::PixelFormat::RGB24 => 3,
        _ => return Ok(None),
    };
    let dims = (u32::from(info.width), u32::from(info.height));
    let want = fitted(dims, edge);
    let (w, h) = decoder
        .scale(want.0 as u16, want.1 as u16)
        .map_err(failed)?;
    let (w, h) = (u32::from(w), u32::from(h));
    check_decoded_size(w, h, channels)?;
    decoder.set_max_decoding_buffer_size(MAX_DECODED_BYTES as usize);
    let pixels = decoder.decode().map_err(failed)?;
    let picture = match channels {
        1 => image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
        _ => image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
    }
    .ok_or_else(|| Failure::Decode("the JPEG decoded to fewer pixels than it declares".into()))?;
    Ok(Some(Decoded {
        picture,
        profile: decoder.icc_profile(),
    }))
}

/// Decodes any format the image crate reads, at full size.
fn decode_any(original: &[u8]) -> Result<Decoded, Failure> {
    let mut reader = ImageReader::new(Cursor::new(original))
        .with_guessed_format()
        .map_err(Failure::Read)?;
    reader.limits(decoder_limits());
    let mut decoder = reader.into_decoder().map_err(decode_failure)?;
    let need = decoder.total_bytes();
    if need > MAX_DECODED_BYTES {
        let (w, h) = decoder.dimensions();
        return Err(too_many_pixels(w, h, need));
    }
    // A damaged profile is dropped, not fatal: the pixels are what matter.
    let profile = decoder.icc_profile().ok().flatten();
    let picture = flatten(DynamicImage::from_decoder(decoder).map_err(decode_failure)?);
    Ok(Decoded { picture, profile })
}

/// What the image crate's decoders may allocate for one photo: no more than
/// [`MAX_DECODED_BYTES`], whatever the header said.
pub(super) fn decoder_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    limits
}

fn check_decoded_size(w: u32, h: u32, channels: u64) -> Result<(), Failure> {
    let need = u64::from(w) * u64::from(h) * channels;
    if need > MAX_DECODED_BYTES {
        return Err(too_many_pixels(w, h, need));
    }
    Ok(())
}

fn too_many_pixels(w: u32, h: u32, need: u64) -> Failure {
    Failure::Decode(format!(
        "{w}×{h} pixels take {} to decode, more than the {} allowed for one photo",
        HumanBytes(need),
        HumanBytes(MAX_DECODED_BYTES)
    ))
}

/// The upright dimensions of a HEIC/HEIF photo, from its container.
pub(super) fn heif_dims(original: &[u8]) -> Result<(u32, u32), Failure> {
    let lib = heif::library().map_err(|why| Failure::Decode(why.to_string()))?;
    Ok(lib.open(original).map_err(Failure::Decode)?.dims())
}

/// Decodes a HEIC/HEIF photo's primary image, upright: libheif applies the
/// container's rotation and mirroring, which stand in for an EXIF orientation.
fn decode_heif(original: &[u8]) -> Result<Decoded, Failure> {
    let lib = heif::library().map_err(|why| Failure::Decode(why.to_string()))?;
    let primary = lib.open(original).map_err(Failure::Decode)?;
    let (w, h) = primary.dims();
    let channels = if primary.has_alpha() { 4 } else { 3 };
    check_decoded_size(w, h, channels)?;
    let pixels = primary.decode().map_err(Failure::Decode)?;
    let (w, h) = (pixels.width, pixels.height);
    let picture = if pixels.alpha {
        image::RgbaImage::from_raw(w, h, pixels.data).map(DynamicImage::ImageRgba8)
    } else {
        image::RgbImage::from_raw(w, h, pixels.data).map(DynamicImage::ImageRgb8)
    }
    .ok_or_else(|| Failure::Decode("libheif gave fewer pixels than it declares".into()))?;
    Ok(Decoded {
        picture: flatten(picture),
        profile: primary.color_profile(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jpeg_is_decoded_at_the_smallest_scale_that_still_covers_the_target() {
        // 12 MP bound for 1280: 1/2 gives 2016×1512, 1/4 would give 1008×756.
        assert_eq!(jpeg_scale((4032, 3024), 1280), 4);
        assert_eq!(jpeg_scale((3024, 4032), 1280), 4);
        assert_eq!(jpeg_scale((4032, 3024), 1008), 2);
        assert_eq!(jpeg_scale((4032, 3024), 504), 1);
        assert_eq!(jpeg_scale((4032, 3024), 2048), 8);
        assert_eq!(jpeg_scale((640, 480), 2048), 8);
        assert_eq!(fitted((4032, 3024), 1280), (1280, 960));
        assert_eq!(fitted((3, 700), 256), (1, 256));
        assert_eq!(fitted((640, 480), 2048), (640, 480));
    }
}
