//! End-to-end checks of photo normalization on files generated in a temporary folder.

mod support;

use faceenroll::model::ContentHash;
use faceenroll::normalize::{
    decide, prepare, prepare_chunk, read_header, thread_pool, Decision, NormalizeError,
    NormalizeOptions, Normalized, Outcome, Prepared, Reasons, DEFAULT_MAX_EDGE,
    MAX_SINGLE_PHOTO_BYTES,
};
use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{ImageEncoder, Rgb, RgbImage};
use std::path::{Path, PathBuf};
use support::{jpeg_bytes, picture, with_orientation, write_png};

fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn hash(path: &Path) -> ContentHash {
    ContentHash::of(&std::fs::read(path).unwrap())
}

/// The size a `w` × `h` picture is fitted to at the default pixel bound (long side
/// `DEFAULT_MAX_EDGE`, the other rounded to the nearest pixel).
fn fitted(w: u32, h: u32) -> (u32, u32) {
    let e = DEFAULT_MAX_EDGE;
    let long = w.max(h);
    let side = |s: u32| ((s * e + long / 2) / long).max(1);
    (side(w), side(h))
}

fn normalized(prepared: &Prepared) -> (&[u8], Normalized) {
    match prepared {
        Prepared::Normalized { bytes, normalized } => (bytes, *normalized),
        other => panic!("expected a normalized copy, got {other:?}"),
    }
}

#[test]
fn a_photo_over_six_mb_is_sent_as_a_copy_under_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scan.png");
    // Noise does not compress: 2400 × 1000 RGB pixels make a PNG of about 7 MB.
    write_png(&path, &picture(2400, 1000, 255, 1));
    let original_len = std::fs::metadata(&path).unwrap().len();
    assert!(
        original_len > 6 * 1024 * 1024,
        "fixture is {original_len} bytes"
    );
    let before = hash(&path);
    let opts = NormalizeOptions::default();

    assert_eq!(
        decide(&path, &opts).unwrap(),
        Decision::Normalize(Reasons {
            over_budget: true,
            over_edge: true,
            not_upright: false,
            animated: false,
            foreign: false,
        })
    );
    let prepared = prepare(&path, &opts).unwrap();
    let (bytes, outcome) = normalized(&prepared);
    assert!(
        bytes.len() as u64 <= opts.max_bytes,
        "{} bytes",
        bytes.len()
    );
    let sent = image::load_from_memory(bytes).unwrap();
    assert_eq!(
        image::guess_format(bytes).unwrap(),
        image::ImageFormat::Jpeg
    );
    let Normalized {
        from_bytes,
        to_bytes,
        from_dims,
        to_dims,
        rotated,
        ..
    } = outcome;
    assert_eq!(from_bytes, original_len);
    assert_eq!(to_bytes, bytes.len() as u64);
    assert_eq!(from_dims, (2400, 1000));
    assert_eq!(to_dims, (sent.width(), sent.height()));
    assert!(sent.width() <= opts.max_edge && sent.width() >= 512);
    // The aspect ratio is kept (12:5, to a pixel of rounding).
    assert!((sent.width() * 5).abs_diff(sent.height() * 12) <= 12);
    assert!(!rotated);
    assert_eq!(outcome.bytes_saved(), from_bytes - to_bytes);
    assert_eq!(hash(&path), before, "the original was modified");
}

#[test]
fn a_photo_over_the_pixel_bound_is_scaled_keeping_its_aspect_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        dir.path(),
        "panorama.jpg",
        &jpeg_bytes(&picture(3000, 1000, 0, 2), 90),
    );
    let opts = NormalizeOptions {
        max_bytes: u64::MAX,
        ..NormalizeOptions::default()
    };
    assert_eq!(
        decide(&path, &opts).unwrap(),
        Decision::Normalize(Reasons {
            over_budget: false,
            over_edge: true,
            not_upright: false,
            animated: false,
            foreign: false,
        })
    );
    let prepared = prepare(&path, &opts).unwrap();
    let (bytes, outcome) = normalized(&prepared);
    let sent = image::load_from_memory(bytes).unwrap();
    assert_eq!((sent.width(), sent.height()), fitted(3000, 1000));
    assert_eq!((outcome.to_dims, outcome.quality), (fitted(3000, 1000), 85));
}

#[test]
fn a_photo_tagged_with_orientation_6_is_sent_upright() {
    let dir = tempfile::tempdir().unwrap();
    // Stored sideways: 64 wide, 32 high, left half red, right half blue.
    let stored = RgbImage::from_fn(64, 32, |x, _| {
        if x < 32 {
            Rgb([255, 0, 0])
        } else {
            Rgb([0, 0, 255])
        }
    });
    let path = file(
        dir.path(),
        "phone.jpg",
        &with_orientation(&jpeg_bytes(&stored, 95), 6),
    );
    let header = read_header(&path, &NormalizeOptions::default()).unwrap();
    assert_eq!(header.dims, (64, 32));
    assert_eq!(header.orientation, Orientation::Rotate90);
    let opts = NormalizeOptions::default();
    assert_eq!(
        decide(&path, &opts).unwrap(),
        Decision::Normalize(Reasons {
            over_budget: false,
            over_edge: false,
            not_upright: true,
            animated: false,
            foreign: false,
        })
    );

    let prepared = prepare(&path, &opts).unwrap();
    let (bytes, outcome) = normalized(&prepared);
    let sent = image::load_from_memory(bytes).unwrap().into_rgb8();
    assert_eq!(sent.dimensions(), (32, 64), "width and height are swapped");
    // Orientation 6 means "turn 90° clockwise to view": the left (red) half is on top.
    let top = sent.get_pixel(16, 8);
    let bottom = sent.get_pixel(16, 56);
    assert!(top[0] > 200 && top[2] < 60, "top is {top:?}");
    assert!(bottom[2] > 200 && bottom[0] < 60, "bottom is {bottom:?}");
    // The copy carries no orientation of its own, so it is not turned twice.
    let again = file(dir.path(), "sent.jpg", bytes);
    assert_eq!(
        read_header(&again, &NormalizeOptions::default())
            .unwrap()
            .orientation,
        Orientation::NoTransforms
    );
    assert_eq!(outcome.from_dims, (64, 32));
    assert_eq!(outcome.to_dims, (32, 64));
    assert!(outcome.rotated);
    let report = prepared.outcome().to_string();
    assert!(
        report.contains("64×32 to") && report.ends_with("32×64, turned upright"),
        "{report}"
    );
}

#[test]
fn a_small_upright_photo_is_sent_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = with_orientation(&jpeg_bytes(&picture(640, 480, 8, 3), 85), 1);
    let path = file(dir.path(), "small.jpg", &jpeg);
    let png = dir.path().join("small.png");
    write_png(&png, &picture(300, 200, 0, 4));
    let opts = NormalizeOptions::default();
    for path in [&path, &png] {
        assert_eq!(decide(path, &opts).unwrap(), Decision::AsIs);
        let prepared = prepare(path, &opts).unwrap();
        assert_eq!(prepared, Prepared::AsIs);
        assert_eq!(prepared.bytes(), None);
        assert_eq!(prepared.outcome(), Outcome::AsIs);
        assert_eq!(prepared.outcome().bytes_saved(), 0);
    }
}

#[test]
fn a_copy_keeps_the_color_profile_of_its_original() {
    let dir = tempfile::tempdir().unwrap();
    // A stand-in for a Display P3 profile: what matters is that it travels intact.
    let mut profile = vec![0u8; 600];
    profile[16..20].copy_from_slice(b"RGB ");
    profile[36..40].copy_from_slice(b"acsp");
    let mut jpeg = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut jpeg, 90);
    encoder.set_icc_profile(profile.clone()).unwrap();
    encoder.encode_image(&picture(2500, 400, 0, 9)).unwrap();
    let path = file(dir.path(), "p3.jpg", &jpeg);

    let prepared = prepare(&path, &NormalizeOptions::default()).unwrap();
    let (bytes, _) = normalized(&prepared);
    let mut decoder = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .unwrap()
        .into_decoder()
        .unwrap();
    use image::ImageDecoder;
    assert_eq!(decoder.dimensions(), fitted(2500, 400));
    assert_eq!(decoder.icc_profile().unwrap(), Some(profile));
}

#[test]
fn an_animated_gif_is_sent_as_its_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame, Rgba, RgbaImage};
    let dir = tempfile::tempdir().unwrap();
    let frame = |color: [u8; 4]| {
        Frame::from_parts(
            RgbaImage::from_pixel(48, 24, Rgba(color)),
            0,
            0,
            Delay::from_numer_denom_ms(100, 1),
        )
    };
    let gif = |frames: Vec<Frame>| {
        let mut out = Vec::new();
        GifEncoder::new(&mut out).encode_frames(frames).unwrap();
        out
    };
    let animated = file(
        dir.path(),
        "wave.gif",
        &gif(vec![frame([0, 200, 0, 255]), frame([0, 0, 200, 255])]),
    );
    let still = file(dir.path(), "still.gif", &gif(vec![frame([0, 200, 0, 255])]));
    let opts = NormalizeOptions::default();

    assert_eq!(decide(&still, &opts).unwrap(), Decision::AsIs);
    assert_eq!(
        decide(&animated, &opts).unwrap(),
        Decision::Normalize(Reasons {
            over_budget: false,
            over_edge: false,
            not_upright: false,
            animated: true,
            foreign: false,
        })
    );
    let prepared = prepare(&animated, &opts).unwrap();
    let (bytes, outcome) = normalized(&prepared);
    assert_eq!(
        image::guess_format(bytes).unwrap(),
        image::ImageFormat::Jpeg
    );
    let sent = image::load_from_memory(bytes).unwrap().into_rgb8();
    assert_eq!(sent.dimensions(), (48, 24));
    assert_eq!(outcome.to_dims, (48, 24));
    let px = sent.get_pixel(10, 10);
    assert!(
        px[1] > 150 && px[2] < 60,
        "the first (green) frame, got {px:?}"
    );
}

#[test]
fn with_normalization_off_an_oversized_original_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![0xA5u8; MAX_SINGLE_PHOTO_BYTES as usize + 1];
    let path = file(dir.path(), "camera-original.jpg", &big);
    let opts = NormalizeOptions {
        enabled: false,
        ..NormalizeOptions::default()
    };
    for result in [
        decide(&path, &opts).map(|_| ()),
        prepare(&path, &opts).map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(err, NormalizeError::TooLarge { bytes, .. } if bytes == big.len() as u64),
            "{err:?}"
        );
        assert!(err.to_string().contains("camera-original.jpg"), "{err}");
        assert!(err.to_string().contains("--no-resize"), "{err}");
    }
    // Within the request limit, the original goes as it is, even over the budget
    // and even sideways.
    let sideways = with_orientation(&jpeg_bytes(&picture(900, 600, 40, 5), 95), 6);
    assert!(sideways.len() as u64 > NormalizeOptions::default().max_bytes);
    assert!((sideways.len() as u64) < MAX_SINGLE_PHOTO_BYTES);
    let path = file(dir.path(), "sideways.jpg", &sideways);
    assert_eq!(prepare(&path, &opts).unwrap(), Prepared::AsIs);
}

#[test]
fn normalizing_the_same_photo_twice_gives_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = with_orientation(&jpeg_bytes(&picture(1000, 700, 40, 6), 95), 8);
    let path = file(dir.path(), "twice.jpg", &jpeg);
    let opts = NormalizeOptions::default();
    let first = prepare(&path, &opts).unwrap();
    let second = prepare(&path, &opts).unwrap();
    let (a, _) = normalized(&first);
    let (b, _) = normalized(&second);
    assert_eq!(ContentHash::of(a), ContentHash::of(b));
    assert_eq!(first, second);
}

#[test]
fn a_file_that_is_not_a_photo_is_a_decode_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let opts = NormalizeOptions::default();
    let text = file(dir.path(), "notes.jpg", b"shopping list: eggs, milk\n");
    let empty = file(dir.path(), "empty.jpg", b"");
    let headless = file(dir.path(), "headless.jpg", &[0xFF, 0xD8, 0xFF, 0xE0, 0x00]);
    // A PNG whose header is fine but whose pixel data is cut off.
    let png_path = dir.path().join("cut.png");
    write_png(&png_path, &picture(2500, 100, 0, 7));
    let png = std::fs::read(&png_path).unwrap();
    std::fs::write(&png_path, &png[..png.len() / 2]).unwrap();

    for (path, name) in [
        (&text, "notes.jpg"),
        (&empty, "empty.jpg"),
        (&headless, "headless.jpg"),
        (&png_path, "cut.png"),
    ] {
        let err = prepare(path, &opts).unwrap_err();
        assert!(
            matches!(err, NormalizeError::Decode { .. }),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
    // A header claiming 30000 × 30000 pixels (2.5 GiB decoded) over a few bytes.
    let mut bomb = b"BM".to_vec();
    bomb.extend_from_slice(&70u32.to_le_bytes());
    bomb.extend_from_slice(&[0, 0, 0, 0]);
    bomb.extend_from_slice(&54u32.to_le_bytes());
    for field in [40i32, 30000, 30000] {
        bomb.extend_from_slice(&field.to_le_bytes());
    }
    bomb.extend_from_slice(&1u16.to_le_bytes());
    bomb.extend_from_slice(&24u16.to_le_bytes());
    bomb.extend_from_slice(&[0; 24]);
    bomb.extend_from_slice(&[0x7F; 16]);
    let bomb = file(dir.path(), "bomb.bmp", &bomb);
    let err = prepare(&bomb, &opts).unwrap_err();
    assert!(
        matches!(err, NormalizeError::TooManyPixels { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("bomb.bmp"), "{err}");
    assert!(err.to_string().contains("30000×30000 pixels"), "{err}");

    let missing = dir.path().join("missing.jpg");
    let err = decide(&missing, &opts).unwrap_err();
    assert!(matches!(err, NormalizeError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.jpg"), "{err}");
}

#[test]
fn a_header_over_100_megapixels_is_refused_before_decoding_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let opts = NormalizeOptions::default();
    // 10001 × 10001 is just over the limit; 65500 × 65500 is the bomb an operator met.
    for (width, height) in [(10_001, 10_001), (65_500, 65_500)] {
        for (name, bytes) in support::bombs(width, height) {
            let path = file(dir.path(), name, &bytes);
            for err in [
                read_header(&path, &NormalizeOptions::default()).unwrap_err(),
                decide(&path, &opts).unwrap_err(),
                prepare(&path, &opts).unwrap_err(),
            ] {
                match &err {
                    NormalizeError::TooManyPixels { dims, .. } => {
                        assert_eq!(*dims, (width, height), "{name}")
                    }
                    other => panic!("{name} {width}×{height}: {other:?}"),
                }
                let message = err.to_string();
                assert!(message.contains(name), "{message}");
                assert!(
                    message.contains(&format!("{width}×{height} pixels")),
                    "{message}"
                );
                assert!(message.contains("over the 100 megapixels"), "{message}");
            }
        }
    }
    // Just under the limit, the header is read as a photo's.
    for (name, bytes) in support::bombs(10_000, 10_000) {
        let path = file(dir.path(), name, &bytes);
        let header = read_header(&path, &NormalizeOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(header.dims, (10_000, 10_000), "{name}");
    }
}

#[test]
fn a_heic_whose_container_claims_over_100_megapixels_is_refused_before_decoding() {
    let Some(lib) = support::heic_library("a_heic_whose_container_claims_over_100_megapixels")
    else {
        return;
    };
    let mut heic = lib.encode_heic(&[90; 64 * 64 * 3], 64, 64, 50).unwrap();
    // The image spatial extents property ("ispe": version and flags, width, height)
    // is what libheif reports as the picture's size; a bomb lies in it.
    let at = heic
        .windows(4)
        .position(|w| w == b"ispe")
        .expect("an ispe box")
        + 8;
    heic[at..at + 4].copy_from_slice(&20_000u32.to_be_bytes());
    heic[at + 4..at + 8].copy_from_slice(&20_000u32.to_be_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "bomb.heic", &heic);
    let err = prepare(&path, &NormalizeOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            NormalizeError::TooManyPixels {
                dims: (20_000, 20_000),
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_chunk_is_prepared_in_order_and_one_bad_photo_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let small = file(
        dir.path(),
        "a.jpg",
        &jpeg_bytes(&picture(64, 48, 0, 10), 85),
    );
    let bad = file(dir.path(), "b.jpg", b"not a photo");
    let wide = dir.path().join("c.png");
    write_png(&wide, &picture(2100, 30, 0, 11));
    let sideways = file(
        dir.path(),
        "d.jpg",
        &with_orientation(&jpeg_bytes(&picture(40, 20, 0, 12), 85), 8),
    );
    let pool = thread_pool(2).unwrap();
    let results = prepare_chunk(
        &pool,
        &[&small, &bad, &wide, &sideways],
        &NormalizeOptions::default(),
    );
    assert_eq!(results.len(), 4);
    assert_eq!(results[0].as_ref().unwrap(), &Prepared::AsIs);
    let err = results[1].as_ref().unwrap_err();
    assert!(err.to_string().contains("b.jpg"), "{err}");
    let (_, wide) = normalized(results[2].as_ref().unwrap());
    assert_eq!(wide.to_dims, fitted(2100, 30));
    let (_, turned) = normalized(results[3].as_ref().unwrap());
    assert_eq!((turned.to_dims, turned.rotated), ((20, 40), true));
}

#[test]
fn a_gray_scan_stays_a_one_channel_picture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scan.png");
    image::GrayImage::from_fn(2500, 300, |x, y| image::Luma([((x + y) % 256) as u8]))
        .save(&path)
        .unwrap();
    let prepared = prepare(&path, &NormalizeOptions::default()).unwrap();
    let (bytes, outcome) = normalized(&prepared);
    let sent = image::load_from_memory(bytes).unwrap();
    assert_eq!(sent.color(), image::ColorType::L8);
    assert_eq!(outcome.to_dims, fitted(2500, 300));
}

#[test]
fn a_budget_too_small_for_any_usable_copy_is_reported_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(
        dir.path(),
        "detailed.jpg",
        &jpeg_bytes(&picture(900, 600, 120, 13), 90),
    );
    let opts = NormalizeOptions {
        max_bytes: 2_000,
        ..NormalizeOptions::default()
    };
    let err = prepare(&path, &opts).unwrap_err();
    match &err {
        NormalizeError::OverBudget {
            bytes,
            limit,
            dims,
            quality,
            ..
        } => {
            assert!(*bytes > 2_000 && *limit == 2_000, "{err}");
            // It stopped at the smallest useful size, not below.
            assert_eq!(dims.0.max(dims.1), 512, "{err}");
            assert!(*quality <= opts.jpeg_quality, "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("detailed.jpg"), "{err}");
}

#[test]
fn a_copy_for_a_small_request_limit_may_be_shrunk_under_the_photo_floor() {
    use faceenroll::normalize::{prepare_down_to, Floor};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noisy.png");
    write_png(&path, &picture(420, 420, 255, 3));
    let opts = NormalizeOptions {
        max_bytes: 40_000,
        ..NormalizeOptions::default()
    };
    // At 420 px, under the 512 px floor of the per-photo budget, it cannot fit...
    let err = prepare_down_to(&path, &opts, Floor::Photo).unwrap_err();
    match err {
        NormalizeError::OverBudget { dims, quality, .. } => {
            assert_eq!((dims, quality), ((420, 420), 60), "lowest quality tried")
        }
        other => panic!("{other:?}"),
    }
    // ...while a copy that must fit a request is shrunk until it does.
    let copy = prepare_down_to(&path, &opts, Floor::RequestLimit).unwrap();
    let (bytes, normalized) = normalized(&copy);
    assert!(bytes.len() as u64 <= 40_000, "{normalized}");
    assert!(
        normalized.to_dims.0 >= 128 && normalized.to_dims.0 < 420,
        "{normalized}"
    );
}

/// A camera-like scene with detail at every scale: smooth shading, hard-edged
/// shapes (the edges of a face, of glasses, of text) and fine sensor-like noise.
fn scene(width: u32, height: u32, seed: u64) -> RgbImage {
    let mut rng = fastrand::Rng::with_seed(seed);
    RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (x as f64 / width as f64, y as f64 / height as f64);
        let shade = 90.0 + 60.0 * (fx * 7.0).sin() * (fy * 5.0).cos();
        let ring = ((((fx - 0.4).powi(2) + (fy - 0.6).powi(2)).sqrt() * 60.0).sin() * 35.0) as i32;
        let block = if (x / 37 + y / 53) % 3 == 0 { 50 } else { 0 };
        let mut v = |base: f64| (base as i32 + ring + block + rng.i32(-6..6)).clamp(0, 255) as u8;
        Rgb([v(shade + 40.0 * fx), v(shade), v(shade + 40.0 * fy)])
    })
}

/// Mean structural similarity of two pictures' luma, over 8×8 windows (Wang et al.
/// 2004, the constants of the paper for 8-bit levels).
fn ssim(a: &image::GrayImage, b: &image::GrayImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let (c1, c2) = ((0.01f64 * 255.0).powi(2), (0.03f64 * 255.0).powi(2));
    let (w, h) = a.dimensions();
    let (mut sum, mut windows) = (0.0, 0u32);
    for wy in (0..h - 7).step_by(8) {
        for wx in (0..w - 7).step_by(8) {
            let px = |img: &image::GrayImage, i: u32| {
                f64::from(img.get_pixel(wx + i % 8, wy + i / 8)[0])
            };
            let mean = |img| (0..64).map(|i| px(img, i)).sum::<f64>() / 64.0;
            let (ma, mb) = (mean(a), mean(b));
            let (mut va, mut vb, mut cov) = (0.0, 0.0, 0.0);
            for i in 0..64 {
                let (da, db) = (px(a, i) - ma, px(b, i) - mb);
                va += da * da;
                vb += db * db;
                cov += da * db;
            }
            let (va, vb, cov) = (va / 63.0, vb / 63.0, cov / 63.0);
            sum += ((2.0 * ma * mb + c1) * (2.0 * cov + c2))
                / ((ma * ma + mb * mb + c1) * (va + vb + c2));
            windows += 1;
        }
    }
    sum / f64::from(windows)
}

/// Peak signal-to-noise ratio of two pictures' luma, in dB.
fn psnr(a: &image::GrayImage, b: &image::GrayImage) -> f64 {
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    10.0 * (255.0f64 * 255.0 / mse).log10()
}

/// The copy of a camera original (decoded at a DCT scale, resized with SIMD, encoded
/// fast) against a reference made the slow way from the same file: a full decode, the
/// EXIF orientation applied, a Lanczos-3 resize to the same size.
///
/// Thresholds: SSIM ≥ 0.95 and PSNR ≥ 35 dB on luma. JPEG at quality 85 alone scores
/// about 0.97–0.99 and 38–42 dB against its source on pictures like this, and face
/// recognition is insensitive to differences at that level; a copy turned the wrong
/// way, shifted by a pixel, scaled by nearest neighbour or blurred by a second poor
/// resampling scores far below (SSIM under 0.5 for a wrong turn).
#[test]
fn the_fast_copy_matches_a_reference_downscale_portrait_and_landscape_turned_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let opts = NormalizeOptions {
        max_bytes: u64::MAX,
        max_edge: EDGE,
        ..NormalizeOptions::default()
    };
    // Small enough for a debug build's reference resize; large enough that the copy
    // is decoded at 1/2 scale and then resized, as a camera original is.
    const EDGE: u32 = 360;
    for (name, (w, h), orientation) in [
        ("landscape", (1200, 900), None),
        ("portrait", (900, 1200), None),
        ("landscape-stored-sideways", (1200, 900), Some(6)),
        ("portrait-stored-sideways", (900, 1200), Some(6)),
        ("upside-down", (1200, 900), Some(3)),
    ] {
        let mut original = jpeg_bytes(&scene(w, h, 5), 92);
        if let Some(o) = orientation {
            original = with_orientation(&original, o);
        }
        let path = file(dir.path(), &format!("{name}.jpg"), &original);
        let prepared = prepare(&path, &opts).unwrap();
        let (bytes, _) = normalized(&prepared);
        let copy = image::load_from_memory(bytes).unwrap().to_luma8();

        let mut reference = image::load_from_memory(&original).unwrap();
        if let Some(o) = orientation {
            reference.apply_orientation(Orientation::from_exif(o as u8).unwrap());
        }
        let (rw, rh) = (reference.width(), reference.height());
        let long = rw.max(rh);
        let want = ((rw * EDGE + long / 2) / long, (rh * EDGE + long / 2) / long);
        assert_eq!(copy.dimensions(), want, "{name}");
        let reference = image::imageops::resize(
            &reference.to_luma8(),
            want.0,
            want.1,
            image::imageops::FilterType::Lanczos3,
        );
        let (s, p) = (ssim(&copy, &reference), psnr(&copy, &reference));
        eprintln!("{name}: SSIM {s:.4}, PSNR {p:.2} dB");
        assert!(
            s >= 0.95 && p >= 35.0,
            "{name}: SSIM {s:.4}, PSNR {p:.2} dB"
        );
    }
}
