//! Photos looked at for faces (`--crop-faces`, `--skip-faceless`): one decoding gives
//! the detector its grey copy and the copy sent, a crop around the face or the whole
//! photo made exactly as [`prepare`] makes it.
//!
//! The detector looks at a grey copy of [`DETECT_EDGE`](crate::faces::DETECT_EDGE)
//! pixels scaled from the picture decoded for the copy anyway (a JPEG at its DCT
//! scale), so detection adds a small grey resize and the cascade to the work of a
//! normalized copy; the crop is cut from that same picture, where a face across a
//! tenth of a 12-megapixel frame spans 200 pixels, and is encoded much smaller than
//! a whole copy. A photo whose crop cannot be made within its budget is sent whole.

use super::decode::Decoded;
use super::picture::grey_copy;
use super::*;
use crate::faces::{self, Choice, Detection, FaceBox};

/// A crop sent in place of a photo, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cropped {
    /// The copy made: from the original, to the crop.
    pub copy: Normalized,
    /// The crop's box in the upright original's pixels.
    pub rect: FaceBox,
    /// The faces found (at any score); the crop is around the largest, sure and
    /// clearly the largest.
    pub faces: usize,
}

impl fmt::Display for Cropped {
    /// "cropped to the face (x=… y=… w=… h=…; the largest of 2 faces), from 9.35 MiB
    /// 4000×3000 to 61.2 KiB 600×600".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cropped to the face ({}", self.rect)?;
        if self.faces > 1 {
            write!(f, "; the largest of {} faces", self.faces)?;
        }
        let c = &self.copy;
        write!(
            f,
            "), from {} {}×{} to {} {}×{}",
            HumanBytes(c.from_bytes),
            c.from_dims.0,
            c.from_dims.1,
            HumanBytes(c.to_bytes),
            c.to_dims.0,
            c.to_dims.1
        )
    }
}

/// What was made of a photo looked at for faces.
#[derive(Debug)]
pub struct FacePrepared {
    pub prepared: Prepared,
    /// What the detector found: given, or found now (`detected_now`). `None` when
    /// re-encoding is off (`--no-resize`): the photo is then never looked at.
    pub detection: Option<Detection>,
    pub detected_now: bool,
}

/// Makes the bytes to send for the photo at `path`, looking for faces first unless
/// `known` (a detection recorded earlier for the same content) says what is there.
/// With `crop`, a photo whose [`Detection::choice`] is a crop is sent as one, of at
/// most `crop_bytes`; any other photo is sent exactly as [`prepare`] sends it.
pub fn prepare_faces(
    path: &Path,
    opts: &NormalizeOptions,
    crop: bool,
    crop_bytes: u64,
    known: Option<Detection>,
) -> Result<FacePrepared, NormalizeError> {
    let whole = |detection: Option<Detection>| {
        prepare(path, opts).map(|prepared| FacePrepared {
            prepared,
            detection,
            detected_now: false,
        })
    };
    if !opts.enabled {
        return whole(None);
    }
    let (bytes, shape) = read_shape(path, opts)?;
    let known = known.filter(|d| d.dims == upright_dims(&shape));
    if let Some(known) = known {
        if !crop || !matches!(known.choice(), Choice::Crop { .. }) {
            return whole(Some(known));
        }
        return cut(path, opts, crop_bytes, bytes, &shape, Some(known));
    }
    let crop_bytes = if crop { crop_bytes } else { 0 };
    cut(path, opts, crop_bytes, bytes, &shape, None)
}

/// Decodes the photo once, detects its faces unless `known`, and makes its crop (with
/// a `crop_bytes` of 0, none) or its whole copy.
fn cut(
    path: &Path,
    opts: &NormalizeOptions,
    crop_bytes: u64,
    bytes: u64,
    shape: &Shape,
    known: Option<Detection>,
) -> Result<FacePrepared, NormalizeError> {
    let _permit = IN_FLIGHT.take(memory_of(path, shape, bytes, opts)?);
    let original = read_original(path, opts)?;
    let (shape, decoded) = decode_for(&original, opts).map_err(|e| e.at(path))?;
    let detected_now = known.is_none();
    let detection = known.unwrap_or_else(|| detect_in(&decoded.picture, &shape));
    let from_bytes = original.len() as u64;
    if let (Choice::Crop { face, of }, true) = (detection.choice(), crop_bytes > 0) {
        match crop_copy(&decoded, &shape, face, from_bytes, opts, crop_bytes) {
            Ok((bytes, copy, rect)) => {
                return Ok(FacePrepared {
                    prepared: Prepared::Cropped {
                        bytes,
                        cropped: Cropped {
                            copy,
                            rect,
                            faces: of,
                        },
                    },
                    detection: Some(detection),
                    detected_now,
                })
            }
            Err(e) => tracing::info!(
                photo = %path.display(),
                "the crop around the face cannot be made ({}); sending the whole photo",
                e.at(path)
            ),
        }
    }
    let prepared = if Decision::of(&Header::of(bytes, &shape), opts) == Decision::AsIs {
        Prepared::AsIs
    } else {
        let (bytes, normalized) =
            encode_within(decoded, &shape, from_bytes, opts, Floor::Photo.edge())
                .map_err(|e| e.at(path))?;
        Prepared::Normalized { bytes, normalized }
    };
    Ok(FacePrepared {
        prepared,
        detection: Some(detection),
        detected_now,
    })
}

/// Prepares the photos of one chunk on `pool`, in parallel, as [`prepare_faces`] does,
/// each result in the place of its path.
pub fn prepare_chunk_faces<P: AsRef<Path> + Send>(
    pool: &rayon::ThreadPool,
    photos: Vec<(P, Option<Detection>)>,
    opts: &NormalizeOptions,
    crop: bool,
    crop_bytes: u64,
) -> Vec<Result<FacePrepared, NormalizeError>> {
    use rayon::prelude::*;
    pool.install(|| {
        photos
            .into_par_iter()
            .map(|(p, known)| prepare_faces(p.as_ref(), opts, crop, crop_bytes, known))
            .collect()
    })
}

/// The photo's width and height once upright.
fn upright_dims(shape: &Shape) -> (u32, u32) {
    let (w, h) = shape.dims;
    match shape.orientation {
        Orientation::Rotate90
        | Orientation::Rotate270
        | Orientation::Rotate90FlipH
        | Orientation::Rotate270FlipH => (h, w),
        _ => (w, h),
    }
}

/// The faces in a decoded picture, in the upright original's pixels.
fn detect_in(picture: &image::DynamicImage, shape: &Shape) -> Detection {
    let grey = grey_copy(picture, faces::DETECT_EDGE, shape.orientation);
    let dims = upright_dims(shape);
    let scale = f64::from(dims.0) / f64::from(grey.width().max(1));
    faces::detect(grey.as_raw(), grey.width(), grey.height(), scale, dims)
}

/// The crop around `face`, upright and encoded within `crop_bytes`: its bytes, the
/// copy's record and the crop's box in the upright original's pixels.
fn crop_copy(
    decoded: &Decoded,
    shape: &Shape,
    face: FaceBox,
    from_bytes: u64,
    opts: &NormalizeOptions,
    crop_bytes: u64,
) -> Result<(Vec<u8>, Normalized, FaceBox), Failure> {
    let rect = faces::crop_rect(face, upright_dims(shape));
    let stored = faces::to_stored(rect, shape.dims, shape.orientation);
    // From the original's stored pixels to the decoded picture's (a JPEG is decoded
    // at a fraction of its size).
    let base = &decoded.picture;
    let sx = f64::from(base.width()) / f64::from(shape.dims.0.max(1));
    let sy = f64::from(base.height()) / f64::from(shape.dims.1.max(1));
    let x0 = (f64::from(stored.x) * sx).floor() as u32;
    let y0 = (f64::from(stored.y) * sy).floor() as u32;
    let x1 = ((f64::from(stored.x + stored.w) * sx).ceil() as u32).min(base.width());
    let y1 = ((f64::from(stored.y + stored.h) * sy).ceil() as u32).min(base.height());
    if x1 <= x0 || y1 <= y0 {
        return Err(Failure::Encode("the face's box is empty".to_owned()));
    }
    let piece = base.crop_imm(x0, y0, x1 - x0, y1 - y0);
    let face_across = (f64::from(face.w) * sx).round() as u32;
    let crop_opts = NormalizeOptions {
        max_edge: faces::crop_edge(face_across, piece.width().max(piece.height())),
        max_bytes: crop_bytes.min(opts.max_bytes),
        ..*opts
    };
    let piece = Decoded {
        picture: piece,
        profile: decoded.profile.clone(),
    };
    let (bytes, copy) = encode_within(piece, shape, from_bytes, &crop_opts, Floor::Photo.edge())?;
    Ok((bytes, copy, rect))
}

/// Looks for the faces in the photo at `path` without making a copy to send: for
/// `plan --crop-faces`. With re-encoding off the photo is not looked at (`None`).
pub fn look_for_faces(
    path: &Path,
    opts: &NormalizeOptions,
) -> Result<Option<Detection>, NormalizeError> {
    if !opts.enabled {
        return Ok(None);
    }
    let (bytes, shape) = read_shape(path, opts)?;
    let _permit = IN_FLIGHT.take(memory_of(path, &shape, bytes, opts)?);
    let original = read_original(path, opts)?;
    let (shape, decoded) = decode_for(&original, opts).map_err(|e| e.at(path))?;
    Ok(Some(detect_in(&decoded.picture, &shape)))
}
