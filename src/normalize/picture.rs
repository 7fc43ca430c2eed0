//! The pixel work of a normalized copy: flattening to 8-bit RGB or gray, scaling
//! down by area averaging, turning upright, and encoding as JPEG with a size
//! predicted from a sample of the rows.

use super::Failure;
use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageEncoder};
use std::fmt;

/// Rows of a sample band, and one band in how many is sampled.
const SAMPLE_BAND_ROWS: u32 = 8;
const SAMPLE_EVERY: u32 = 4;

/// Every fourth band of 8 rows of a picture (the height of a row of JPEG blocks), for
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
    let long = w.max(h);
    let mut picture = if edge < long {
        let scale = |side: u32| {
            ((u64::from(side) * u64::from(edge) + u64::from(long) / 2) / u64::from(long)).max(1)
                as u32
        };
        let (nw, nh) = (scale(w), scale(h));
        match base {
            DynamicImage::ImageRgb8(rgb) => DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(nw, nh, shrink::<3>(rgb.as_raw(), w, h, nw, nh))
                    .expect("shrink returns nw × nh pixels"),
            ),
            DynamicImage::ImageLuma8(gray) => DynamicImage::ImageLuma8(
                image::GrayImage::from_raw(nw, nh, shrink::<1>(gray.as_raw(), w, h, nw, nh))
                    .expect("shrink returns nw × nh pixels"),
            ),
            other => other.thumbnail_exact(nw, nh),
        }
    } else {
        base.clone()
    };
    picture.apply_orientation(orientation);
    picture
}

/// Scales an 8-bit interleaved picture of `w` × `h` pixels of `N` channels down to
/// `nw` × `nh` (each no larger than the source), each output pixel being the mean of
/// the block of source pixels it covers, rounded to the nearest level.
///
/// This is the area averaging of the image crate's `thumbnail`, which reads pixel by
/// pixel through a generic view (about 140 ms for 12 megapixels); reading whole rows,
/// with the channel count known and the divisions turned into multiplications, it
/// takes a fraction of that.
fn shrink<const N: usize>(src: &[u8], w: u32, h: u32, nw: u32, nh: u32) -> Vec<u8> {
    debug_assert!(nw >= 1 && nh >= 1 && nw <= w && nh <= h);
    let bounds = |n: u32, of: u32| -> Vec<usize> {
        (0..=u64::from(n))
            .map(|i| (i * u64::from(of) / u64::from(n)) as usize)
            .collect()
    };
    let (xs, ys) = (bounds(nw, w), bounds(nh, h));
    let row_len = w as usize * N;
    let mut out = Vec::with_capacity(nw as usize * nh as usize * N);
    let mut acc = vec![[0u64; N]; nw as usize];
    // Each block's (count / 2, ⌈2⁴⁸ / count⌉), for blocks `blocks_rows` rows high.
    let mut blocks = vec![(0u64, 0u64); nw as usize];
    let mut blocks_rows = 0;
    for oy in 0..nh as usize {
        acc.fill([0; N]);
        for row in src[ys[oy] * row_len..ys[oy + 1] * row_len].chunks_exact(row_len) {
            for (ox, sums) in acc.iter_mut().enumerate() {
                for px in row[xs[ox] * N..xs[ox + 1] * N].chunks_exact(N) {
                    for c in 0..N {
                        sums[c] += u64::from(px[c]);
                    }
                }
            }
        }
        // (sum + count / 2) / count, rounding to the nearest level, as a multiplication
        // by ⌈2⁴⁸ / count⌉ and a shift: exact while the block is under 2²⁰ pixels (the
        // error stays under 1 / count), and the product stays under 2⁵⁷.
        let rows = (ys[oy + 1] - ys[oy]) as u64;
        if rows != blocks_rows {
            for (ox, block) in blocks.iter_mut().enumerate() {
                let count = rows * (xs[ox + 1] - xs[ox]) as u64;
                *block = (count / 2, (1u64 << 48).div_ceil(count));
            }
            blocks_rows = rows;
        }
        for (sums, &(half, scale)) in acc.iter().zip(&blocks) {
            out.extend(sums.iter().map(|&sum| (((sum + half) * scale) >> 48) as u8));
        }
    }
    out
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

pub(super) fn encode_jpeg(
    picture: &DynamicImage,
    quality: u8,
    profile: Option<&[u8]>,
) -> Result<Vec<u8>, Failure> {
    let failed = |e: &dyn fmt::Display| Failure::Encode(e.to_string());
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, quality);
    if let Some(profile) = profile {
        encoder
            .set_icc_profile(profile.to_vec())
            .map_err(|e| failed(&e))?;
    }
    // Given a DynamicImage the encoder sees RGBA pixels and writes three channels
    // even for a gray picture; given the buffer, a gray picture makes a smaller
    // one-channel JPEG.
    match picture {
        DynamicImage::ImageRgb8(rgb) => encoder.encode_image(rgb),
        DynamicImage::ImageLuma8(gray) => encoder.encode_image(gray),
        other => encoder.encode_image(&other.to_rgb8()),
    }
    .map_err(|e| failed(&e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn shrinking_averages_the_block_each_pixel_covers() {
        // 4×2 gray → 2×1: each output pixel is the mean of a 2×2 block.
        let src = [0, 10, 100, 200, 20, 30, 50, 51];
        assert_eq!(shrink::<1>(&src, 4, 2, 2, 1), vec![15, 100]);
        // 3×1 RGB → 2×1: uneven blocks (1 and 2 pixels wide).
        let src = [9, 9, 9, 0, 0, 0, 255, 255, 1];
        assert_eq!(shrink::<3>(&src, 3, 1, 2, 1), vec![9, 9, 9, 128, 128, 1]);
        // Same size is the identity.
        let src: Vec<u8> = (0..24).collect();
        assert_eq!(shrink::<3>(&src, 4, 2, 4, 2), src);
    }

    proptest! {
        #[test]
        fn shrinking_rounds_each_block_mean_to_the_nearest_level(
            (w, h, nw, nh) in (1u32..40, 1u32..40)
                .prop_flat_map(|(w, h)| (Just(w), Just(h), 1..=w, 1..=h)),
            seed in any::<u64>(),
            level in 0u8..=255,
        ) {
            let mut rng = fastrand::Rng::with_seed(seed);
            // Half the cases flat at one level (so sums sit on exact multiples), half noise.
            let src: Vec<u8> = (0..w * h * 3)
                .map(|_| if seed % 2 == 0 { level } else { rng.u8(..) })
                .collect();
            let got = shrink::<3>(&src, w, h, nw, nh);
            let cut = |i: u32, n: u32, of: u32| (u64::from(i) * u64::from(of) / u64::from(n)) as u32;
            for oy in 0..nh {
                for ox in 0..nw {
                    for c in 0..3 {
                        let (mut sum, mut count) = (0u64, 0u64);
                        for y in cut(oy, nh, h)..cut(oy + 1, nh, h) {
                            for x in cut(ox, nw, w)..cut(ox + 1, nw, w) {
                                sum += u64::from(src[((y * w + x) * 3 + c) as usize]);
                                count += 1;
                            }
                        }
                        let want = ((sum + count / 2) / count) as u8;
                        prop_assert_eq!(got[((oy * nw + ox) * 3 + c) as usize], want);
                    }
                }
            }
        }
    }

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
        assert_eq!((sample.width(), sample.height()), (640, 120));
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
