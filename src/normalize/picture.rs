//! The pixel work of a normalized copy: flattening to 8-bit RGB or gray, scaling
//! down with a Lanczos filter (SIMD, `fast_image_resize`), turning upright, and
//! encoding as a baseline JPEG (SIMD, `jpeg-encoder`) with a size predicted from a
//! sample of the rows.

use super::decode::fitted;
use super::Failure;
use fast_image_resize as fr;
use image::metadata::Orientation;
use image::DynamicImage;

/// Rows of a sample band, and one band in how many is sampled.
const SAMPLE_BAND_ROWS: u32 = 16;
const SAMPLE_EVERY: u32 = 4;

/// Every fourth band of 16 rows of a picture (the height of a row of JPEG blocks with
/// 4:2:0 chroma, so no block straddles a band), for
/// predicting the size of its JPEG: the scan is the sum of its blocks' codes, so the
/// sample's scan, scaled by the rows, comes close to the whole's. `None` for a picture
/// too small to be worth sampling.
pub(super) fn sample_of(picture: &DynamicImage) -> Option<DynamicImage> {
    let band = SAMPLE_BAND_ROWS * SAMPLE_EVERY;
    if picture.height() < 4 * band {
        return None;
    }
    let keep = |y: u32| (y / SAMPLE_BAND_ROWS).is_multiple_of(SAMPLE_EVERY);
    let (w, h) = (picture.width(), picture.height());
    let sample_h = (0..h).filter(|&y| keep(y)).count() as u32;
    let rows = |raw: &[u8], row_len: usize| -> Vec<u8> {
        let mut out = Vec::with_capacity(sample_h as usize * row_len);
        for (y, row) in raw.chunks_exact(row_len).enumerate() {
            if keep(y as u32) {
                out.extend_from_slice(row);
            }
        }
        out
    };
    match picture {
        DynamicImage::ImageRgb8(rgb) => {
            image::RgbImage::from_raw(w, sample_h, rows(rgb.as_raw(), w as usize * 3))
                .map(DynamicImage::ImageRgb8)
        }
        DynamicImage::ImageLuma8(gray) => {
            image::GrayImage::from_raw(w, sample_h, rows(gray.as_raw(), w as usize))
                .map(DynamicImage::ImageLuma8)
        }
        _ => None,
    }
}

/// The predicted size of a `height`-row picture's JPEG at `quality`, from its sample:
/// the sample's headers, plus its scan scaled by the rows.
pub(super) fn predict_size(
    sample: &DynamicImage,
    height: u32,
    quality: u8,
    profile: Option<&[u8]>,
) -> Result<u64, Failure> {
    let bytes = encode_jpeg(sample, quality, profile)?;
    let head = scan_offset(&bytes).unwrap_or(0) as u64;
    let scan = bytes.len() as u64 - head;
    Ok(head + scan * u64::from(height) / u64::from(sample.height()))
}

/// Where the entropy-coded scan of a JPEG begins: past the segments up to and
/// including the start-of-scan header.
fn scan_offset(jpeg: &[u8]) -> Option<usize> {
    let mut at = 2;
    loop {
        let marker = *jpeg.get(at + 1)?;
        let len = usize::from(u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]));
        at += 2 + len;
        if marker == 0xDA {
            return Some(at);
        }
    }
}

/// The picture scaled so its long edge is at most `edge`, keeping its aspect ratio,
/// and turned upright.
pub(super) fn fit(base: &DynamicImage, edge: u32, orientation: Orientation) -> DynamicImage {
    let (w, h) = (base.width(), base.height());
    let (nw, nh) = fitted((w, h), edge);
    let mut picture = if (nw, nh) != (w, h) {
        match base {
            DynamicImage::ImageRgb8(rgb) => DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(nw, nh, resize(rgb.as_raw(), w, h, nw, nh, 3))
                    .expect("resize returns nw × nh pixels"),
            ),
            DynamicImage::ImageLuma8(gray) => DynamicImage::ImageLuma8(
                image::GrayImage::from_raw(nw, nh, resize(gray.as_raw(), w, h, nw, nh, 1))
                    .expect("resize returns nw × nh pixels"),
            ),
            other => fit(&flatten(other.clone()), edge, Orientation::NoTransforms),
        }
    } else {
        base.clone()
    };
    picture.apply_orientation(orientation);
    picture
}

/// The picture scaled so its long edge is at most `edge`, in gray, and turned upright:
/// what the face detector looks at. Scaled with a bilinear filter, cheaper than the
/// copy's Lanczos and as good at a fraction of the size.
pub(super) fn grey_copy(
    base: &DynamicImage,
    edge: u32,
    orientation: Orientation,
) -> image::GrayImage {
    let (w, h) = (base.width(), base.height());
    let (nw, nh) = fitted((w, h), edge);
    let bilinear = fr::ResizeAlg::Convolution(fr::FilterType::Bilinear);
    let grey = match base {
        DynamicImage::ImageRgb8(rgb) => DynamicImage::ImageRgb8(
            image::RgbImage::from_raw(nw, nh, resize_with(rgb.as_raw(), w, h, nw, nh, 3, bilinear))
                .expect("resize returns nw × nh pixels"),
        )
        .into_luma8(),
        DynamicImage::ImageLuma8(gray) => image::GrayImage::from_raw(
            nw,
            nh,
            resize_with(gray.as_raw(), w, h, nw, nh, 1, bilinear),
        )
        .expect("resize returns nw × nh pixels"),
        other => return grey_copy(&flatten(other.clone()), edge, orientation),
    };
    let mut grey = DynamicImage::ImageLuma8(grey);
    grey.apply_orientation(orientation);
    grey.into_luma8()
}

/// Scales 8-bit interleaved pixels of `channels` (1 or 3) from `w` × `h` to `nw` × `nh`
/// with a Lanczos-3 filter, as Pillow's and libvips' thumbnails do: sharper than area
/// averaging, without its blockiness, and with SIMD a few milliseconds for a photo.
fn resize(src: &[u8], w: u32, h: u32, nw: u32, nh: u32, channels: u8) -> Vec<u8> {
    let lanczos = fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3);
    resize_with(src, w, h, nw, nh, channels, lanczos)
}

fn resize_with(
    src: &[u8],
    w: u32,
    h: u32,
    nw: u32,
    nh: u32,
    channels: u8,
    alg: fr::ResizeAlg,
) -> Vec<u8> {
    if (nw, nh) == (w, h) {
        return src.to_vec();
    }
    let pixel = if channels == 1 {
        fr::PixelType::U8
    } else {
        fr::PixelType::U8x3
    };
    let from = fr::images::ImageRef::new(w, h, src, pixel).expect("w × h pixels");
    let mut to = fr::images::Image::new(nw, nh, pixel);
    let options = fr::ResizeOptions::new().resize_alg(alg);
    fr::Resizer::new()
        .resize(&from, &mut to, &options)
        .expect("same pixel type on both sides");
    to.into_vec()
}

/// Brings any decoded picture to 8-bit RGB or gray, laying transparency on white.
pub(super) fn flatten(image: DynamicImage) -> DynamicImage {
    let color = image.color();
    match (color.has_alpha(), color.has_color()) {
        (false, true) => DynamicImage::ImageRgb8(image.into_rgb8()),
        (false, false) => DynamicImage::ImageLuma8(image.into_luma8()),
        (true, _) => {
            let rgba = image.into_rgba8();
            let (w, h) = rgba.dimensions();
            let mut rgb = image::RgbImage::new(w, h);
            for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
                let a = u32::from(src[3]);
                for c in 0..3 {
                    dst[c] = ((u32::from(src[c]) * a + 255 * (255 - a) + 127) / 255) as u8;
                }
            }
            DynamicImage::ImageRgb8(rgb)
        }
    }
}

/// Whether an ICC profile describes pictures of this kind (RGB or gray), from the
/// color space signature at bytes 16–19 of its header.
pub(super) fn profile_fits(profile: &[u8], picture: &DynamicImage) -> bool {
    let space = profile.get(16..20);
    match picture {
        DynamicImage::ImageRgb8(_) => space == Some(b"RGB "),
        DynamicImage::ImageLuma8(_) => space == Some(b"GRAY"),
        _ => false,
    }
}

/// Encodes a picture as a baseline JPEG at `quality`, carrying the colour profile.
pub(super) fn encode_jpeg(
    picture: &DynamicImage,
    quality: u8,
    profile: Option<&[u8]>,
) -> Result<Vec<u8>, Failure> {
    let failed = |e: jpeg_encoder::EncodingError| Failure::Encode(e.to_string());
    let (w, h) = (picture.width(), picture.height());
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(Failure::Encode(format!(
            "{w}×{h} pixels: a JPEG side is at most 65535"
        )));
    };
    let mut out = Vec::new();
    let mut encoder = jpeg_encoder::Encoder::new(&mut out, quality);
    if let Some(profile) = profile {
        encoder.add_icc_profile(profile).map_err(failed)?;
    }
    // A gray picture makes a smaller one-channel JPEG.
    match picture {
        DynamicImage::ImageRgb8(rgb) => {
            encoder.encode(rgb.as_raw(), w16, h16, jpeg_encoder::ColorType::Rgb)
        }
        DynamicImage::ImageLuma8(gray) => {
            encoder.encode(gray.as_raw(), w16, h16, jpeg_encoder::ColorType::Luma)
        }
        other => encoder.encode(
            other.to_rgb8().as_raw(),
            w16,
            h16,
            jpeg_encoder::ColorType::Rgb,
        ),
    }
    .map_err(failed)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitting_keeps_the_aspect_ratio_and_turns_upright() {
        let base = DynamicImage::ImageRgb8(image::RgbImage::new(400, 300));
        let fitted = fit(&base, 256, Orientation::NoTransforms);
        assert_eq!((fitted.width(), fitted.height()), (256, 192));
        let fitted = fit(&base, 256, Orientation::Rotate90);
        assert_eq!((fitted.width(), fitted.height()), (192, 256));
        let gray = DynamicImage::ImageLuma8(image::GrayImage::new(3, 700));
        let fitted = fit(&gray, 256, Orientation::NoTransforms);
        assert_eq!((fitted.width(), fitted.height()), (1, 256));
        let small = fit(&gray, 800, Orientation::Rotate270);
        assert_eq!((small.width(), small.height()), (700, 3));
    }

    #[test]
    fn a_sample_predicts_the_size_of_the_whole_jpeg() {
        let mut rng = fastrand::Rng::with_seed(7);
        let picture = DynamicImage::ImageRgb8(image::RgbImage::from_fn(640, 480, |x, y| {
            let ring = (((x * x + y * y) as f64).sqrt() / 9.0).sin() * 50.0;
            let mut v = |base: u32| (base as f64 + ring + f64::from(rng.u8(..20))) as u8;
            image::Rgb([v(x * 150 / 640 + 20), v(y * 150 / 480 + 30), v(90)])
        }));
        let sample = sample_of(&picture).unwrap();
        assert_eq!((sample.width(), sample.height()), (640, 128));
        for quality in [90, 75, 60] {
            let whole = encode_jpeg(&picture, quality, None).unwrap().len() as f64;
            let predicted = predict_size(&sample, 480, quality, None).unwrap() as f64;
            let error = (predicted - whole).abs() / whole;
            assert!(error < 0.05, "q{quality}: {predicted} for {whole}");
        }
        // Too small to be worth it: the whole is encoded.
        let small = DynamicImage::ImageLuma8(image::GrayImage::new(640, 127));
        assert!(sample_of(&small).is_none());
    }

    #[test]
    fn the_scan_starts_after_the_start_of_scan_header() {
        let jpeg = encode_jpeg(
            &DynamicImage::ImageLuma8(image::GrayImage::new(8, 8)),
            80,
            Some(&[0xFF, 0xDA, 0, 2].repeat(10)),
        )
        .unwrap();
        let at = scan_offset(&jpeg).unwrap();
        // Two bytes before the scan is the SOS header's last byte; the marker before it
        // is the real FF DA, not one inside the color profile.
        let sos = jpeg[..at]
            .windows(2)
            .rposition(|w| w == [0xFF, 0xDA])
            .unwrap();
        assert_eq!(at - sos, 2 + 2 + 1 + 2 + 3);
        assert_eq!(scan_offset(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 9]), None);
    }

    #[test]
    fn transparency_is_laid_on_white() {
        let mut rgba = image::RgbaImage::new(2, 1);
        rgba.put_pixel(0, 0, image::Rgba([0, 0, 0, 0]));
        rgba.put_pixel(1, 0, image::Rgba([200, 100, 0, 255]));
        let flat = flatten(DynamicImage::ImageRgba8(rgba)).into_rgb8();
        assert_eq!(flat.get_pixel(0, 0).0, [255, 255, 255]);
        assert_eq!(flat.get_pixel(1, 0).0, [200, 100, 0]);
    }
}
