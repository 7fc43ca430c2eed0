//! Faces, not photos: a local face detector, and the crop of a photo around its face
//! that `--crop-faces` sends in place of the whole photo.
//!
//! The service uses only the face of a photo. A camera photo re-encoded to fit
//! (1264 pixels, up to 300 000 bytes) travels four or five to a call; the same face
//! cropped with a margin of its own size around it keeps every pixel of the face at
//! a fraction of the bytes, so a call carries 20 photos. A person's first photo still
//! takes a `newperson` of its own, so a job needs 2.5× fewer calls for persons of 20
//! photos and none fewer for persons of 5 (see `benches/faces.rs` and BENCHMARKS.md).
//!
//! # The pieces
//!
//! - [`detect`] (in `detect.rs`) runs SeetaFace's frontal cascade (`rustface`, pure
//!   Rust, its model built into the program) on a grey copy of the photo of
//!   [`DETECT_EDGE`] pixels, made from the picture the normalizer decodes anyway, and
//!   gives a [`Detection`]: the faces' boxes in the upright photo's pixels.
//! - [`choose`] (and [`Detection::choice`]) decides what is sent (pure), from every
//!   face found at any score: the crop of the largest face when it is found with
//!   confidence ([`SURE_SCORE`]) and is clearly the largest ([`CLEARLY_LARGER`]),
//!   else the whole photo exactly as without `--crop-faces`, and the service picks
//!   the largest face itself. A crop around any other face could enrol a bystander;
//!   a photo sent whole costs only bytes. The detector misses faces the service finds
//!   (small faces, the faces of a group photo, faces turned away), and a photo is
//!   never lost for it.
//! - [`crop_rect`] and [`crop_edge`] size the crop (pure); [`to_stored`] maps a box
//!   of the upright photo back to the pixels as stored, so the crop is cut before it
//!   is turned upright. The pixel work is the normalizer's (`normalize::prepare_faces`).
//!
//! A detection is recorded in the store per content hash, so a later run (a nightly
//! job, a plan) does not look at the same photo again.

mod detect;

pub use detect::{detect, DETECT_EDGE};

use crate::limits::{RequestBudget, MAX_IMAGES_PER_ADDFACE};
use image::metadata::Orientation;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The version of the detector and its settings: a detection recorded by another
/// version is made again.
pub const DETECTOR_VERSION: u8 = 1;

/// The lowest score the detector reports a face at: anything at this score counts as
/// "a face may be there" (`--skip-faceless` skips only photos without even that).
/// The SeetaFace authors name 0.95, 2.8 and 4.5 as typical thresholds.
pub const LENIENT_SCORE: f32 = 2.0;

/// The score a face must reach to be cropped to: a face below it is unsure, and the
/// photo is sent whole. The score grows with the face's size in the grey copy: the
/// shipped astronaut portrait scores 4 to 6 with a face of 40 pixels there (a twelfth
/// of the photo's long side), 20 and more with one of 80, under every orientation;
/// the synthetic photos without a face give nothing at all at [`LENIENT_SCORE`].
pub const SURE_SCORE: f32 = 3.5;

/// How much larger, in area, the face cropped to must be than the next face found
/// (at any score): below it the photo is sent whole, and the service, which takes the
/// largest face of a photo, chooses. 1.5× the area is about 1.22× the width.
///
/// Why this much: the detector's boxes are not exact. The cascade scans a pyramid of
/// copies 0.75× apart and regresses the box of what it finds. Measured on the shipped
/// portrait pasted at 27 sizes (a face of 98 to 226 px in a 1600 × 1200 frame, the
/// 480 px grey copy as the normalizer makes it), the box's width came out 0.92 to
/// 1.01 of the face's: two faces of one size can differ by 1.10× in width, 1.21× in
/// area, and a margin below that would crop to whichever the detector happened to
/// draw larger, while the service, on the whole photo, may take the other. That is a
/// sharp frontal face; a washed-out or turned one is boxed worse, so the margin is
/// set well past it: at 1.5× a crop is taken only where the boxes' error cannot
/// turn the order around. Above it the margin buys nothing more than
/// safety already had, and costs crops: the bystanders of issue 38 were 1.6–2.25×
/// smaller in width than the person's own face (2.6–5× in area), all cropped to the
/// right face at 1.5×, and a portrait with a face in the background still crops.
/// What it costs: a photo of two people of like size goes whole, as without
/// `--crop-faces` (fewer photos a call, never the wrong face).
pub const CLEARLY_LARGER: f64 = 1.5;

/// The margin around a face in a crop, in face widths on each side: the service's own
/// detector then sees the whole head and some shoulders, as in a portrait.
pub const FACE_MARGIN: f64 = 1.0;

/// The pixels across the face a crop keeps, when the photo has them: well above the
/// 100 or so the service's detector needs, and what 20 crops a call leave room for.
pub const CROP_FACE_PIXELS: u32 = 200;

/// What the detector is asked to do, from `--crop-faces` and `--skip-faceless`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaceOptions {
    /// Send a photo with a face found with confidence as a crop around it.
    pub crop: bool,
    /// Skip, without a call, a photo in which the detector finds no face at all.
    pub skip_faceless: bool,
}

impl FaceOptions {
    /// Whether photos are looked at for faces at all.
    pub fn detects(&self) -> bool {
        self.crop || self.skip_faceless
    }
}

/// A box in a photo's upright pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceBox {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl FaceBox {
    pub fn area(&self) -> u64 {
        u64::from(self.w) * u64::from(self.h)
    }
}

impl fmt::Display for FaceBox {
    /// "x=120 y=80 w=200 h=200", as the report gives it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "x={} y={} w={} h={}", self.x, self.y, self.w, self.h)
    }
}

/// A face the detector found, with its score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Found {
    pub face: FaceBox,
    pub score: f32,
}

/// What the detector found in one photo: its faces (largest first), in the pixels of
/// the upright photo of `dims`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// The upright photo's width and height, as stored in the original.
    pub dims: (u32, u32),
    pub faces: Vec<Found>,
}

/// What is sent for a photo the detector has looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    /// The crop around `face`, the largest of the `of` faces found (at any score),
    /// sure and clearly larger than any other.
    Crop { face: FaceBox, of: usize },
    /// The whole photo, as without `--crop-faces`.
    Whole(Whole),
}

/// Why a photo is sent whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whole {
    /// The detector found nothing, even at its lenient threshold.
    NoFace,
    /// The largest face found (of `of`) is not found with confidence: the crop would
    /// be around a smaller face, or around something that may not be one.
    Unsure { of: usize },
    /// The largest face (sure) is not clearly larger ([`CLEARLY_LARGER`]) than the
    /// next of the `of` faces found: which one the service takes is its choice.
    Similar { of: usize },
}

/// How many faces a photo holds, as `plan --crop-faces` counts them: what
/// [`Detection::choice`] does with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// No face found: sent whole.
    None,
    /// One face found, with confidence: sent as a crop.
    One,
    /// Several faces, the largest sure and clearly the largest: a crop around it.
    Several,
    /// Faces found, but none to crop to (the largest not sure, or two of like size):
    /// sent whole.
    Unclear,
}

/// What is sent for a photo whose detector found `faces` (at any score, in any
/// order): the crop of the largest face when it is sure ([`SURE_SCORE`]) and its area
/// is at least [`CLEARLY_LARGER`] times the next face's, else the whole photo.
pub fn choose(faces: &[Found]) -> Choice {
    let mut by_size: Vec<&Found> = faces.iter().collect();
    by_size.sort_by_key(|f| std::cmp::Reverse(f.face.area()));
    let of = faces.len();
    match by_size.as_slice() {
        [] => Choice::Whole(Whole::NoFace),
        [largest, ..] if largest.score < SURE_SCORE => Choice::Whole(Whole::Unsure { of }),
        [largest, next, ..]
            if (largest.face.area() as f64) < CLEARLY_LARGER * next.face.area() as f64 =>
        {
            Choice::Whole(Whole::Similar { of })
        }
        [largest, ..] => Choice::Crop {
            face: largest.face,
            of,
        },
    }
}

impl Detection {
    /// The faces found with confidence, largest first.
    pub fn sure(&self) -> impl Iterator<Item = &Found> {
        self.faces.iter().filter(|f| f.score >= SURE_SCORE)
    }

    /// What is sent for the photo: [`choose`] over every face found.
    pub fn choice(&self) -> Choice {
        choose(&self.faces)
    }

    /// The photo as `plan` counts it, after what is sent for it.
    pub fn count(&self) -> Count {
        match self.choice() {
            Choice::Whole(Whole::NoFace) => Count::None,
            Choice::Crop { of: 1, .. } => Count::One,
            Choice::Crop { .. } => Count::Several,
            Choice::Whole(Whole::Unsure { .. } | Whole::Similar { .. }) => Count::Unclear,
        }
    }

    /// The report's `face_box` cell: the face a crop is cut around, or why none is.
    pub fn cell(&self) -> String {
        match self.choice() {
            Choice::Crop { face, of: 1 } => face.to_string(),
            Choice::Crop { face, of } => format!("{face} (the largest of {of} faces)"),
            Choice::Whole(Whole::NoFace) => "no face found locally".to_owned(),
            Choice::Whole(Whole::Unsure { of: 1 }) => {
                "no face found locally with confidence: sent whole".to_owned()
            }
            Choice::Whole(Whole::Unsure { of }) => {
                format!("the largest of {of} faces is not sure: sent whole")
            }
            Choice::Whole(Whole::Similar { of: 2 }) => {
                "two faces of similar size: sent whole".to_owned()
            }
            Choice::Whole(Whole::Similar { of }) => {
                format!("{of} faces, the two largest of similar size: sent whole")
            }
        }
    }
}

/// The crop around `face` in a photo of `dims`: the face with [`FACE_MARGIN`] face
/// widths on each side, clamped to the photo.
pub fn crop_rect(face: FaceBox, dims: (u32, u32)) -> FaceBox {
    let margin = |side: u32| (f64::from(side) * FACE_MARGIN).round() as u32;
    let x0 = face.x.saturating_sub(margin(face.w));
    let y0 = face.y.saturating_sub(margin(face.h));
    let x1 = (face.x + face.w + margin(face.w)).min(dims.0);
    let y1 = (face.y + face.h + margin(face.h)).min(dims.1);
    FaceBox {
        x: x0,
        y: y0,
        w: x1.saturating_sub(x0).max(1),
        h: y1.saturating_sub(y0).max(1),
    }
}

/// The long edge a crop is sent at: enough for [`CROP_FACE_PIXELS`] across the face,
/// never more than the crop has (`crop_long` pixels where the face spans `face_w`).
pub fn crop_edge(face_w: u32, crop_long: u32) -> u32 {
    let wanted = u64::from(crop_long) * u64::from(CROP_FACE_PIXELS) / u64::from(face_w.max(1));
    (wanted.min(u64::from(crop_long)) as u32).max(1)
}

/// The bytes a crop may take: a share of a full chunk's image bytes, so that 20
/// crops fit one request under the limit in effect.
pub fn crop_bytes(budget: &RequestBudget) -> u64 {
    budget.chunk_image_bytes() / MAX_IMAGES_PER_ADDFACE as u64
}

/// The box of the stored (not yet turned) pixels that shows `rect` of the upright
/// photo, for a photo stored `stored` pixels wide and high and turned upright by
/// `orientation`.
pub fn to_stored(rect: FaceBox, stored: (u32, u32), orientation: Orientation) -> FaceBox {
    let (ws, hs) = (i64::from(stored.0), i64::from(stored.1));
    // An upright point (x, y), as a corner between pixels, in stored coordinates.
    let back = |x: i64, y: i64| -> (i64, i64) {
        match orientation {
            Orientation::NoTransforms => (x, y),
            Orientation::FlipHorizontal => (ws - x, y),
            Orientation::FlipVertical => (x, hs - y),
            Orientation::Rotate180 => (ws - x, hs - y),
            Orientation::Rotate90 => (y, hs - x),
            Orientation::Rotate270 => (ws - y, x),
            Orientation::Rotate90FlipH => (y, x),
            Orientation::Rotate270FlipH => (ws - y, hs - x),
        }
    };
    let (x0, y0) = (i64::from(rect.x), i64::from(rect.y));
    let (x1, y1) = (x0 + i64::from(rect.w), y0 + i64::from(rect.h));
    let (a, b) = (back(x0, y0), back(x1, y1));
    let clamp = |v: i64, hi: i64| v.clamp(0, hi) as u32;
    let (sx0, sx1) = (clamp(a.0.min(b.0), ws), clamp(a.0.max(b.0), ws));
    let (sy0, sy1) = (clamp(a.1.min(b.1), hs), clamp(a.1.max(b.1), hs));
    FaceBox {
        x: sx0,
        y: sy0,
        w: (sx1 - sx0).max(1),
        h: (sy1 - sy0).max(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(x: u32, y: u32, side: u32, score: f32) -> Found {
        Found {
            face: FaceBox {
                x,
                y,
                w: side,
                h: side,
            },
            score,
        }
    }

    #[test]
    fn one_sure_face_is_cropped_to_and_unsure_or_none_is_sent_whole() {
        let one = Detection {
            dims: (4000, 3000),
            faces: vec![found(1000, 800, 600, 25.0)],
        };
        assert_eq!(
            one.choice(),
            Choice::Crop {
                face: one.faces[0].face,
                of: 1
            }
        );
        assert_eq!(one.count(), Count::One);
        assert_eq!(one.cell(), "x=1000 y=800 w=600 h=600");

        let unsure = Detection {
            dims: (4000, 3000),
            faces: vec![found(10, 10, 40, SURE_SCORE - 0.5)],
        };
        assert_eq!(unsure.choice(), Choice::Whole(Whole::Unsure { of: 1 }));
        assert_eq!(unsure.count(), Count::Unclear);

        let none = Detection {
            dims: (4000, 3000),
            faces: vec![],
        };
        assert_eq!(none.choice(), Choice::Whole(Whole::NoFace));
        assert_eq!(none.cell(), "no face found locally");
    }

    fn in_photo(faces: Vec<Found>) -> Detection {
        Detection {
            dims: (4000, 3000),
            faces,
        }
    }

    /// Issue 38: the person's own face found only leniently (washed out, far away),
    /// a smaller bystander's sharp: the crop would enrol the bystander, so the
    /// photo goes whole and the service takes the largest face.
    #[test]
    fn a_sure_small_face_beside_a_larger_lenient_one_is_sent_whole() {
        // The sizes of one case of the issue: own face 504 px, bystander 302 px.
        let photo = in_photo(vec![
            found(2000, 500, 302, 20.0),
            found(300, 400, 504, LENIENT_SCORE + 0.5),
        ]);
        assert_eq!(photo.choice(), Choice::Whole(Whole::Unsure { of: 2 }));
        assert_eq!(photo.count(), Count::Unclear);
        assert_eq!(
            photo.cell(),
            "the largest of 2 faces is not sure: sent whole"
        );
        // Whatever the order the faces are recorded in.
        let reversed = in_photo(photo.faces.iter().rev().copied().collect());
        assert_eq!(reversed.choice(), photo.choice());
    }

    #[test]
    fn one_large_face_beside_a_much_smaller_one_is_cropped_to_the_large_one() {
        let photo = in_photo(vec![
            found(2000, 100, 300, 15.0),
            found(100, 100, 500, 20.0),
        ]);
        assert_eq!(
            photo.choice(),
            Choice::Crop {
                face: photo.faces[1].face,
                of: 2
            }
        );
        assert_eq!(photo.count(), Count::Several);
        assert_eq!(
            photo.cell(),
            "x=100 y=100 w=500 h=500 (the largest of 2 faces)"
        );
        // A small lenient face (in the background) does not keep the large sure one
        // from being cropped to, and is counted.
        let background = in_photo(vec![
            found(100, 100, 500, 20.0),
            found(3000, 100, 80, LENIENT_SCORE),
        ]);
        assert_eq!(
            background.choice(),
            Choice::Crop {
                face: background.faces[0].face,
                of: 2
            }
        );
    }

    #[test]
    fn two_faces_of_similar_size_are_sent_whole() {
        // 500 and 420 px: 1.42× the area, under CLEARLY_LARGER; both sure.
        let photo = in_photo(vec![
            found(100, 100, 500, 20.0),
            found(2000, 100, 420, 25.0),
        ]);
        assert_eq!(photo.choice(), Choice::Whole(Whole::Similar { of: 2 }));
        assert_eq!(photo.count(), Count::Unclear);
        assert_eq!(photo.cell(), "two faces of similar size: sent whole");
        // At the margin exactly, the larger is clearly the largest: 1.5× the area.
        let at = |w: u32| Found {
            face: FaceBox {
                x: 0,
                y: 0,
                w,
                h: 100,
            },
            score: 20.0,
        };
        assert!(matches!(
            choose(&[at(150), at(100)]),
            Choice::Crop { of: 2, .. }
        ));
        assert_eq!(
            choose(&[at(149), at(100)]),
            Choice::Whole(Whole::Similar { of: 2 })
        );
        // Of three, the two largest decide.
        let three = in_photo(vec![
            found(0, 0, 500, 20.0),
            found(1000, 0, 480, 20.0),
            found(2000, 0, 100, 20.0),
        ]);
        assert_eq!(
            three.cell(),
            "3 faces, the two largest of similar size: sent whole"
        );
    }

    #[test]
    fn a_crop_is_the_face_with_its_size_around_it_clamped_to_the_photo() {
        let face = FaceBox {
            x: 1000,
            y: 1000,
            w: 400,
            h: 400,
        };
        assert_eq!(
            crop_rect(face, (4000, 3000)),
            FaceBox {
                x: 600,
                y: 600,
                w: 1200,
                h: 1200
            }
        );
        let corner = FaceBox {
            x: 100,
            y: 2700,
            w: 300,
            h: 300,
        };
        assert_eq!(
            crop_rect(corner, (4000, 3000)),
            FaceBox {
                x: 0,
                y: 2400,
                w: 700,
                h: 600
            }
        );
    }

    #[test]
    fn a_crop_keeps_two_hundred_pixels_across_the_face_when_it_has_them() {
        // A face of 600 px in a crop of 1800: sent at 600 px, 200 across the face.
        assert_eq!(crop_edge(600, 1800), 600);
        // A face of 120 px: the crop's own 360 px, never enlarged.
        assert_eq!(crop_edge(120, 360), 360);
        assert_eq!(crop_edge(0, 10), 10);
    }

    #[test]
    fn twenty_crops_fit_a_request() {
        let budget = RequestBudget::configured(crate::limits::MAX_REQUEST_BYTES);
        let per = crop_bytes(&budget);
        assert!(per * MAX_IMAGES_PER_ADDFACE as u64 <= budget.chunk_image_bytes());
        assert!(per > 60_000, "{per}");
    }

    /// A box of the upright photo, mapped back to the stored pixels, shows the same
    /// pixels once the stored picture is turned upright, whatever its orientation.
    #[test]
    fn a_box_maps_back_to_the_stored_pixels_under_every_orientation() {
        use image::{DynamicImage, GrayImage, Luma};
        let stored = (7u32, 5u32);
        let all = [
            Orientation::NoTransforms,
            Orientation::FlipHorizontal,
            Orientation::FlipVertical,
            Orientation::Rotate180,
            Orientation::Rotate90,
            Orientation::Rotate270,
            Orientation::Rotate90FlipH,
            Orientation::Rotate270FlipH,
        ];
        for orientation in all {
            // Each stored pixel holds its own index.
            let picture =
                GrayImage::from_fn(stored.0, stored.1, |x, y| Luma([(y * stored.0 + x) as u8]));
            let mut upright = DynamicImage::ImageLuma8(picture.clone());
            upright.apply_orientation(orientation);
            let upright = upright.to_luma8();
            let rect = FaceBox {
                x: 1,
                y: 2,
                w: 2,
                h: 3,
            };
            let back = to_stored(rect, stored, orientation);
            let mut want: Vec<u8> = (rect.y..rect.y + rect.h)
                .flat_map(|y| (rect.x..rect.x + rect.w).map(move |x| (x, y)))
                .map(|(x, y)| upright.get_pixel(x, y).0[0])
                .collect();
            let mut got: Vec<u8> = (back.y..back.y + back.h)
                .flat_map(|y| (back.x..back.x + back.w).map(move |x| (x, y)))
                .map(|(x, y)| picture.get_pixel(x, y).0[0])
                .collect();
            want.sort_unstable();
            got.sort_unstable();
            assert_eq!(got, want, "{orientation:?}");
        }
    }
}
