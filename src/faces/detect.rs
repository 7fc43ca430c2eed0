//! The detector: SeetaFace's frontal funnel cascade (`rustface`, pure Rust), with its
//! model built into the program, run on a small grey copy of the photo.

use super::{Detection, FaceBox, Found, LENIENT_SCORE};
use rustface::{Detector, ImageData};
use std::cell::RefCell;
use std::sync::OnceLock;

/// SeetaFace's frontal face model (1.2 MB), from the `rustface` crate's sources, under
/// the BSD 2-clause licence in `SEETAFACE-LICENSE` beside it. Built in, so the
/// program needs no file at a known place and downloads nothing.
static MODEL: &[u8] = include_bytes!("seeta_fd_frontal_v1.0.bin");

/// The long edge, in pixels, of the grey copy the detector looks at. The cascade's
/// cost grows with the pixels it slides over: at 480 pixels a camera photo costs a
/// few tens of milliseconds, under a fifth of decoding and re-encoding it (see
/// `benches/faces.rs`), and a face across a tenth of the frame still spans 48 pixels,
/// well over the cascade's 20-pixel window.
pub const DETECT_EDGE: u32 = 480;

/// The smallest face looked for, in pixels of the grey copy: a face under 1/20 of
/// the photo's long edge is not looked for (it would be too small a crop anyway).
const MIN_FACE: u32 = 24;

/// The step between the pyramid's scales. The library's own examples use 0.8; 0.75
/// makes fewer scales (a quarter less work) and still finds frontal faces at every
/// size, the cascade's window tolerating the gap.
const PYRAMID_SCALE: f32 = 0.75;

/// Where the window slides, in pixels of each scale: the library's usual step.
const SLIDE_STEP: u32 = 4;

fn model() -> &'static rustface::Model {
    static PARSED: OnceLock<rustface::Model> = OnceLock::new();
    PARSED.get_or_init(|| {
        rustface::read_model(MODEL).expect("the built-in face model is a valid SeetaFace model")
    })
}

thread_local! {
    /// One detector per thread (it keeps work buffers between photos).
    static DETECTOR: RefCell<Option<Box<dyn Detector>>> = const { RefCell::new(None) };
}

/// The faces in an upright grey picture of `width` × `height` pixels (one byte a
/// pixel, rows in order), their boxes scaled by `scale` into the photo's pixels
/// (clamped to `dims`, the upright photo's size), largest first.
pub fn detect(grey: &[u8], width: u32, height: u32, scale: f64, dims: (u32, u32)) -> Detection {
    let mut found = Vec::new();
    if width >= MIN_FACE && height >= MIN_FACE {
        let image = ImageData::new(grey, width, height);
        let faces = DETECTOR.with(|cell| {
            let mut cell = cell.borrow_mut();
            let detector = cell.get_or_insert_with(|| {
                let mut d = rustface::create_detector_with_model(model().clone());
                d.set_min_face_size(MIN_FACE);
                d.set_score_thresh(f64::from(LENIENT_SCORE));
                d.set_pyramid_scale_factor(PYRAMID_SCALE);
                d.set_slide_window_step(SLIDE_STEP, SLIDE_STEP);
                d
            });
            detector.detect(&image)
        });
        for face in faces {
            let b = face.bbox();
            let to = |v: i64, limit: u32| (v.max(0) as f64 * scale).round().min(f64::from(limit));
            let (x0, y0) = (to(i64::from(b.x()), dims.0), to(i64::from(b.y()), dims.1));
            let x1 = to(i64::from(b.x()) + i64::from(b.width()), dims.0);
            let y1 = to(i64::from(b.y()) + i64::from(b.height()), dims.1);
            if x1 > x0 && y1 > y0 {
                found.push(Found {
                    face: FaceBox {
                        x: x0 as u32,
                        y: y0 as u32,
                        w: (x1 - x0) as u32,
                        h: (y1 - y0) as u32,
                    },
                    score: face.score() as f32,
                });
            }
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(u64::from(f.face.w) * u64::from(f.face.h)));
    Detection { dims, faces: found }
}
