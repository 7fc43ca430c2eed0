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
//! - [`Detection::choice`] decides what is sent (pure): the crop of the face when one
//!   is found with confidence ([`SURE_SCORE`]), the crop of the largest face when
//!   several are (the report says so), else the whole photo exactly as without
//!   `--crop-faces`: the detector misses faces the service finds (small faces, the
//!   faces of a group photo, faces turned away), and a photo is never lost for it.
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
    /// The crop around `face`; `of` faces were found with confidence (more than one:
    /// the largest is taken).
    Crop { face: FaceBox, of: usize },
    /// The whole photo, as without `--crop-faces`.
    Whole(Whole),
}

/// Why a photo is sent whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whole {
    /// The detector found nothing, even at its lenient threshold.
    NoFace,
    /// Something that may be a face, not with confidence.
    Unsure,
}

/// How many faces a photo holds, as `plan --crop-faces` counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    None,
    One,
    Several,
}

impl Detection {
    /// The faces found with confidence, largest first.
    pub fn sure(&self) -> impl Iterator<Item = &Found> {
        self.faces.iter().filter(|f| f.score >= SURE_SCORE)
    }

    /// What is sent for the photo (see the module documentation).
    pub fn choice(&self) -> Choice {
        match self.sure().next() {
            Some(largest) => Choice::Crop {
                face: largest.face,
                of: self.sure().count(),
            },
            None if self.faces.is_empty() => Choice::Whole(Whole::NoFace),
            None => Choice::Whole(Whole::Unsure),
        }
    }

    /// The faces found with confidence, counted for `plan`.
    pub fn count(&self) -> Count {
        match self.sure().count() {
            0 => Count::None,
            1 => Count::One,
            _ => Count::Several,
        }
    }

    /// The report's `face_box` cell: the face a crop is cut around, or why none is.
    pub fn cell(&self) -> String {
        match self.choice() {
            Choice::Crop { face, of: 1 } => face.to_string(),
            Choice::Crop { face, of } => format!("{face} (the largest of {of} faces)"),
            Choice::Whole(Whole::NoFace) => "no face found locally".to_owned(),
            Choice::Whole(Whole::Unsure) => "no face found locally with confidence".to_owned(),
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
        assert_eq!(unsure.choice(), Choice::Whole(Whole::Unsure));
        assert_eq!(unsure.count(), Count::None);

        let none = Detection {
            dims: (4000, 3000),
            faces: vec![],
        };
        assert_eq!(none.choice(), Choice::Whole(Whole::NoFace));
        assert_eq!(none.cell(), "no face found locally");
    }

    #[test]
    fn of_several_faces_the_largest_sure_one_is_cropped_to_and_the_cell_says_so() {
        let group = Detection {
            dims: (4000, 3000),
            faces: vec![
                found(0, 0, 900, 3.0),
                found(100, 100, 500, 20.0),
                found(2000, 100, 300, 15.0),
            ],
        };
        assert_eq!(
            group.choice(),
            Choice::Crop {
                face: group.faces[1].face,
                of: 2
            }
        );
        assert_eq!(group.count(), Count::Several);
        assert_eq!(
            group.cell(),
            "x=100 y=100 w=500 h=500 (the largest of 2 faces)"
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
