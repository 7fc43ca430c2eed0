//! Turns a local photo into bytes the service can use: small enough, upright, decodable.
//!
//! Real archives hold camera originals of 8–25 MB, 6000-pixel scans and phone photos
//! stored sideways with an EXIF orientation tag. The service takes at most
//! [`MAX_REQUEST_BYTES`] per request (a chunk of up to [`MAX_IMAGES_PER_ADDFACE`](crate::limits::MAX_IMAGES_PER_ADDFACE)
//! photos) and finds faces in upright pictures of a few hundred pixels. This module
//! decides, per photo, whether it can travel as it is or must be sent as a smaller,
//! upright JPEG copy, and makes that copy.
//!
//! Two steps, both on one photo at a time:
//!
//! - [`decide`] reads only the file's size and its header (dimensions; for a JPEG the
//!   EXIF orientation; for a GIF whether it is animated): it never decodes pixels, so
//!   a dry run can count the photos that will be normalized across a whole archive
//!   cheaply.
//! - [`prepare`] makes the bytes to send, when the photo is about to be sent. A photo
//!   already upright and within the budget and the pixel bound is [`Prepared::AsIs`]:
//!   the caller sends the file byte for byte. Any other photo is decoded, scaled down
//!   (keeping its aspect ratio), turned upright and re-encoded as JPEG, stepping the
//!   quality and then the size down in a bounded loop until it fits the budget (a
//!   quarter of the picture's rows predicts each step's size, so mostly only the
//!   final copy is encoded whole). An animated GIF, which the service refuses, is
//!   sent as its first frame.
//!
//! Originals are never written to. The photo's identity across runs stays the hash of
//! the original file; the normalized bytes are a pure function of the original's
//! bytes and the options (the encoder has no randomness and no timestamps), so a
//! resumed job sends exactly the bytes an earlier run sent, and the service's refusal
//! of a face it already has keeps working.
//!
//! # Threads
//!
//! [`prepare`] is CPU-bound (a 12-megapixel JPEG takes a few hundred milliseconds of
//! CPU to decode, scale and re-encode; see `benches/normalize.rs`) and holds one
//! photo's pixels (a few tens of MB) while it runs. Run it on a bounded rayon pool of
//! its own ([`thread_pool`]), not on the threads that send requests, so normalization
//! never starves them; and prepare photos one chunk at a time ([`prepare_chunk`]), so
//! the normalized bytes of a whole job are never all in memory at once.
//!
//! # Layout
//!
//! This file holds the options, the decision, the outcome and the step-down loop;
//! `header` reads headers without decoding pixels; `picture` does the pixel work
//! (flatten, scale, turn, encode, predict a size).

mod budget;
mod crop;
mod decode;
mod header;
pub mod heif;
mod picture;

use crate::limits::{RequestBudget, MAX_PHOTO_PIXELS, MAX_REQUEST_BYTES, REQUEST_ENVELOPE_BYTES};
pub use crate::photo_file::DEFAULT_MAX_FILE_BYTES;
use budget::Budget;
pub use crop::{look_for_faces, prepare_chunk_faces, prepare_faces, Cropped, FacePrepared};
use decode::{decode, jpeg_scale, Decoded};
use header::{header_of, Kind, Shape};
use image::metadata::Orientation;
use indicatif::HumanBytes;
use picture::{encode_jpeg, fit, predict_size, profile_fits, sample_of};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::{self, BufReader, Cursor};
use std::path::{Path, PathBuf};

/// The largest photo that can travel alone in one request: the request limit less the
/// multipart envelope. With normalization off, a larger original cannot be sent.
pub const MAX_SINGLE_PHOTO_BYTES: u64 = RequestBudget::configured(MAX_REQUEST_BYTES).photo_bytes();

/// The default per-photo budget: 300 000 bytes, a JPEG of about 1.2 megapixels at
/// quality 85 (see [`DEFAULT_MAX_EDGE`]). At the 1.5 MB request limit a full
/// chunk of 20 photos fits one request only at about 74 KB each; rather than shrink
/// every photo that far, chunks are cut by bytes (a chunk of 300 KB photos carries
/// four of them), so a photo keeps its quality and a person takes a few more calls.
pub const DEFAULT_MAX_BYTES: u64 = 300_000;

// At least four photos at the default budget fit one request; the build fails if the
// default is ever set by hand to a figure that breaks that.
const _: () = assert!(4 * DEFAULT_MAX_BYTES + REQUEST_ENVELOPE_BYTES <= MAX_REQUEST_BYTES);

/// Bits per pixel assumed for a camera photo scaled down to under a megapixel, as a
/// JPEG at [`DEFAULT_JPEG_QUALITY`] with 4:2:0 chroma: such photos commonly take 1.5
/// (a plain background) to 2.5 (foliage, a crowd); the middle is taken, and a photo
/// that takes more is stepped down in quality by the loop in `normalize_bytes`.
const BITS_PER_PIXEL: u64 = 2;

/// The default bound on a photo's long edge, in pixels: the largest 4:3 picture whose
/// JPEG at the default quality and 2 bits per pixel fits [`DEFAULT_MAX_BYTES`], in
/// steps of 16. So a photo usually fits its budget at the first encoding, and a full
/// chunk of four fits one request at the 1.5 MB limit. At 300 000 bytes this is
/// 1264 pixels: a face across a tenth of the long side is 126 pixels wide, well
/// above what face detection needs, and a portrait's face 400 or more. A budget of
/// 74 KB (twenty photos per request) would give 624 pixels and 62-pixel faces:
/// calls are cheap (50 per second take 200 photos per second at four per call,
/// far more than a machine normalizes), pixels across a face are not.
pub const DEFAULT_MAX_EDGE: u32 = edge_for_bytes(DEFAULT_MAX_BYTES);

/// The long edge of the largest 4:3 picture that `bytes` hold at [`BITS_PER_PIXEL`],
/// rounded down to 16 and kept between [`MIN_EDGE`] and 2048.
const fn edge_for_bytes(bytes: u64) -> u32 {
    let pixels = bytes * 8 / BITS_PER_PIXEL;
    let long = (pixels * 4 / 3).isqrt() / 16 * 16;
    if long < MIN_EDGE as u64 {
        MIN_EDGE
    } else if long > 2048 {
        2048
    } else {
        long as u32
    }
}

/// The default JPEG quality of a re-encoded photo (1–100).
pub const DEFAULT_JPEG_QUALITY: u8 = 85;

/// The lowest quality the step-down loop goes to before it shrinks the picture.
const QUALITY_FLOOR: u8 = 60;

/// The shortest long edge the step-down loop shrinks a photo to: below it a face is
/// too small for the service to find, so the photo is reported instead.
const MIN_EDGE: u32 = 512;

/// The shortest long edge a copy made to fit a small request limit ([`Floor`])
/// is shrunk to: a photo that fits no request cannot be sent at all, so such a copy
/// may go under [`MIN_EDGE`]. A face across a third of it, as in an enrollment photo,
/// is 42 pixels, about the least face detection finds.
const MIN_COPY_EDGE: u32 = 128;

/// The most memory one photo may take while it is normalized: its file and twice its
/// decoded pixels, as estimated from its header for the shared budget
/// ([`PIXEL_BUDGET_BYTES`]). A photo that would take more (a 9999×9999 PNG: 800 MB)
/// is refused from its header before its file is read, whatever its format
/// ([`NormalizeError::OverMemory`]); the decoders are held to it too, should a header
/// say less than the pixels take.
pub const MAX_PHOTO_MEMORY_BYTES: u64 = 512 * 1024 * 1024;
const MAX_DECODED_BYTES: u64 = MAX_PHOTO_MEMORY_BYTES;

/// The memory all photos being normalized may take at once (their original bytes and
/// their decoded pixels, estimated from the header before any is read), whatever the
/// number of workers and threads. A 12-megapixel JPEG bound for 1280 pixels takes about
/// 22 MB of it (4 MB of file, 9 MB decoded at 1/2 scale, twice); a photo larger than the
/// whole budget runs alone.
pub const PIXEL_BUDGET_BYTES: u64 = 64 * 1024 * 1024;

/// The budget of photos in flight in this process.
static IN_FLIGHT: Budget = Budget::new(PIXEL_BUDGET_BYTES);

/// The largest color profile carried over to a copy (camera and phone profiles take
/// a few hundred bytes); a larger one is dropped and the copy is read as sRGB.
const MAX_ICC_BYTES: usize = 16 * 1024;

/// The most encodings tried for one photo before it is reported as over budget.
const MAX_ATTEMPTS: u32 = 8;

/// How photos are brought into a form the service can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizeOptions {
    /// Normalize at all; `false` (`--no-resize`) sends every original as it is.
    pub enabled: bool,
    /// The most bytes one photo may take in a request ([`DEFAULT_MAX_BYTES`]).
    pub max_bytes: u64,
    /// The longest edge, in pixels, of a photo sent ([`DEFAULT_MAX_EDGE`]).
    pub max_edge: u32,
    /// The JPEG quality of a re-encoded photo, 1–100 ([`DEFAULT_JPEG_QUALITY`]); the
    /// quality is lowered (down to 60) when a photo would still exceed the budget.
    pub jpeg_quality: u8,
    /// The largest photo file read into memory, in bytes (`--max-file-bytes`,
    /// [`DEFAULT_MAX_FILE_BYTES`]): a larger file is refused from its size, unread.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
}

fn default_max_file_bytes() -> u64 {
    DEFAULT_MAX_FILE_BYTES
}

impl NormalizeOptions {
    /// The bytes one photo may take: `max_bytes`, but never more than a request can
    /// carry with the photo alone.
    pub fn budget(&self) -> u64 {
        self.max_bytes.min(MAX_SINGLE_PHOTO_BYTES)
    }

    /// These options for requests under `budget`: a photo takes no more than a
    /// request under it carries with the photo alone.
    pub fn within(self, budget: &RequestBudget) -> NormalizeOptions {
        NormalizeOptions {
            max_bytes: self.max_bytes.min(budget.photo_bytes()),
            ..self
        }
    }
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            enabled: true,
            max_bytes: DEFAULT_MAX_BYTES,
            max_edge: DEFAULT_MAX_EDGE,
            jpeg_quality: DEFAULT_JPEG_QUALITY,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

/// Why a photo cannot be sent, named with its file.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("{}: cannot read the photo: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    /// The file is over `--max-file-bytes`: refused from its size, never read whole.
    #[error("{}: {over}", path.display())]
    FileTooLarge {
        path: PathBuf,
        over: crate::photo_file::OverCap,
    },
    #[error("{}: cannot decode the photo: {reason}", path.display())]
    Decode { path: PathBuf, reason: String },
    #[error(
        "{}: the photo is {}, more than one request can carry ({}); \
         let faceenroll send a smaller copy (drop --no-resize) or shrink the photo",
        path.display(), HumanBytes(*bytes), HumanBytes(*limit)
    )]
    TooLarge {
        path: PathBuf,
        bytes: u64,
        limit: u64,
    },
    #[error(
        "{}: even at {}×{} px and JPEG quality {quality} the photo takes about {}, over the \
         budget of {}; raise the budget (max_bytes)",
        path.display(), dims.0, dims.1, HumanBytes(*bytes), HumanBytes(*limit)
    )]
    OverBudget {
        path: PathBuf,
        bytes: u64,
        limit: u64,
        dims: (u32, u32),
        quality: u8,
    },
    #[error("{}: cannot encode the normalized photo: {reason}", path.display())]
    Encode { path: PathBuf, reason: String },
    /// The header declares more pixels than [`MAX_PHOTO_PIXELS`]: not decoded.
    #[error("{}: {}", path.display(), over_pixel_limit(*dims))]
    TooManyPixels { path: PathBuf, dims: (u32, u32) },
    /// Normalizing the photo would take more than [`MAX_PHOTO_MEMORY_BYTES`], from
    /// its header: not read, not decoded.
    #[error(
        "{}: its header declares {}×{} pixels, which take about {} to decode and scale, \
         over the {} one photo may take; not decoded (a picture to scale down before \
         enrolling)",
        path.display(), dims.0, dims.1, HumanBytes(*bytes), HumanBytes(MAX_PHOTO_MEMORY_BYTES)
    )]
    OverMemory {
        path: PathBuf,
        dims: (u32, u32),
        bytes: u64,
    },
}

/// Why a photo whose header declares `dims` is not decoded: more pixels than
/// [`MAX_PHOTO_PIXELS`], which a photo of a face never needs and a damaged file or a
/// decompression bomb claims.
pub fn over_pixel_limit(dims: (u32, u32)) -> String {
    let pixels = u64::from(dims.0) * u64::from(dims.1);
    format!(
        "its header declares {}×{} pixels ({} megapixels), over the {} megapixels a photo \
         may have; not decoded (a damaged file, or a picture to scale down before enrolling)",
        dims.0,
        dims.1,
        pixels.div_ceil(1_000_000),
        MAX_PHOTO_PIXELS / 1_000_000
    )
}

/// Whether a header declaring `dims` is over [`MAX_PHOTO_PIXELS`].
fn is_over_pixel_limit(dims: (u32, u32)) -> bool {
    u64::from(dims.0) * u64::from(dims.1) > MAX_PHOTO_PIXELS
}

/// What a photo's header says, read without decoding its pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The file's size in bytes.
    pub bytes: u64,
    /// The stored pixels' width and height, before any orientation is applied.
    pub dims: (u32, u32),
    /// How the stored pixels must be turned to be seen upright (EXIF orientation).
    pub orientation: Orientation,
    /// The file holds more than one frame (an animated GIF), which the service refuses.
    pub animated: bool,
    /// The photo is in a format the service does not take (HEIC/HEIF, WebP, TIFF).
    pub foreign: bool,
}

/// Why a photo must be normalized; at least one field is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reasons {
    /// The file is larger than the per-photo budget.
    pub over_budget: bool,
    /// The long edge is longer than the pixel bound.
    pub over_edge: bool,
    /// The pixels are stored turned or mirrored (EXIF orientation other than 1).
    pub not_upright: bool,
    /// The photo is an animated GIF, which the service refuses: its first frame is sent.
    pub animated: bool,
    /// The photo is in a format the service does not take: it is sent as JPEG.
    #[serde(default)]
    pub foreign: bool,
}

impl fmt::Display for Reasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.over_budget, "over the byte budget"),
            (self.over_edge, "over the pixel bound"),
            (self.not_upright, "not stored upright"),
            (self.animated, "animated"),
            (self.foreign, "in a format the service does not take"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&set.join(", "))
    }
}

/// What will happen to a photo when it is sent, known from its size and header alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// The file is sent byte for byte.
    AsIs,
    /// A smaller, upright JPEG copy is sent instead.
    Normalize(Reasons),
}

impl Decision {
    /// Decides from a photo's header, with normalization enabled (pure).
    pub fn of(header: &Header, opts: &NormalizeOptions) -> Decision {
        let reasons = Reasons {
            over_budget: header.bytes > opts.budget(),
            over_edge: header.dims.0.max(header.dims.1) > opts.max_edge,
            not_upright: header.orientation != Orientation::NoTransforms,
            animated: header.animated,
            foreign: header.foreign,
        };
        if reasons.over_budget
            || reasons.over_edge
            || reasons.not_upright
            || reasons.animated
            || reasons.foreign
        {
            Decision::Normalize(reasons)
        } else {
            Decision::AsIs
        }
    }
}

impl fmt::Display for Decision {
    /// "sent as is", or "normalized (over the byte budget, not stored upright)".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::AsIs => f.write_str("sent as is"),
            Decision::Normalize(reasons) => write!(f, "normalized ({reasons})"),
        }
    }
}

/// What a normalized copy is, against its original: for the report and the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Normalized {
    /// The original file's size.
    pub from_bytes: u64,
    /// The copy's size, as sent.
    pub to_bytes: u64,
    /// The original's stored width and height.
    pub from_dims: (u32, u32),
    /// The copy's width and height, upright.
    pub to_dims: (u32, u32),
    /// Whether the EXIF orientation was applied.
    pub rotated: bool,
    /// The JPEG quality the copy was encoded at.
    pub quality: u8,
}

impl Normalized {
    /// Bytes the copy saved over the original.
    pub fn bytes_saved(&self) -> u64 {
        self.from_bytes.saturating_sub(self.to_bytes)
    }
}

impl fmt::Display for Normalized {
    /// "normalized from 9.35 MiB 6000×4000 to 273.44 KiB 2048×1365".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "normalized from {} {}×{} to {} {}×{}",
            HumanBytes(self.from_bytes),
            self.from_dims.0,
            self.from_dims.1,
            HumanBytes(self.to_bytes),
            self.to_dims.0,
            self.to_dims.1
        )?;
        if self.rotated {
            f.write_str(", turned upright")?;
        }
        Ok(())
    }
}

/// What was sent for a photo, without the bytes: for the report and the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The original was sent byte for byte.
    AsIs,
    /// A re-encoded copy was sent.
    Normalized(Normalized),
    /// A crop around the photo's face was sent (`--crop-faces`).
    Cropped(Cropped),
}

impl Outcome {
    /// Bytes the copy saved over the original (0 when sent as is).
    pub fn bytes_saved(&self) -> u64 {
        match self {
            Outcome::AsIs => 0,
            Outcome::Normalized(n) => n.bytes_saved(),
            Outcome::Cropped(c) => c.copy.bytes_saved(),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::AsIs => f.write_str("sent as is"),
            Outcome::Normalized(n) => n.fmt(f),
            Outcome::Cropped(c) => c.fmt(f),
        }
    }
}

/// The bytes to send for one photo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prepared {
    /// Send the original file byte for byte.
    AsIs,
    /// Send these bytes (a JPEG) in place of the file.
    Normalized {
        bytes: Vec<u8>,
        normalized: Normalized,
    },
    /// Send these bytes (a JPEG of the photo's face) in place of the file.
    Cropped { bytes: Vec<u8>, cropped: Cropped },
}

impl Prepared {
    /// What was sent, without the bytes.
    pub fn outcome(&self) -> Outcome {
        match self {
            Prepared::AsIs => Outcome::AsIs,
            Prepared::Normalized { normalized, .. } => Outcome::Normalized(*normalized),
            Prepared::Cropped { cropped, .. } => Outcome::Cropped(*cropped),
        }
    }

    /// The bytes to send in place of the file, if any.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Prepared::AsIs => None,
            Prepared::Normalized { bytes, .. } | Prepared::Cropped { bytes, .. } => Some(bytes),
        }
    }
}

/// How many leading bytes [`foreign_format`] needs.
pub const SNIFF_BYTES: usize = 16;

/// The name of the format of a photo the service does not take but this module sends
/// as a JPEG copy (HEIC/HEIF, WebP, TIFF), from the file's first bytes; `None` for any
/// other content. A HEIC photo is named even by a build without HEIC support, which
/// then fails it with its reason.
pub fn foreign_format(head: &[u8]) -> Option<&'static str> {
    if header::is_heif(head) {
        return Some("HEIC/HEIF");
    }
    match image::guess_format(head) {
        Ok(image::ImageFormat::WebP) => Some("WebP"),
        Ok(image::ImageFormat::Tiff) => Some("TIFF"),
        _ => None,
    }
}

/// Decides what will happen to the photo at `path`, reading only its size and header.
///
/// With normalization disabled only the size is read: a photo that fits a request is
/// [`Decision::AsIs`], a larger one is [`NormalizeError::TooLarge`]. With it enabled,
/// a file whose header cannot be read as a photo in a format this build decodes is
/// [`NormalizeError::Decode`], so it is reported before any call is spent on it.
pub fn decide(path: &Path, opts: &NormalizeOptions) -> Result<Decision, NormalizeError> {
    if !opts.enabled {
        let bytes = file_len(path)?;
        if bytes > MAX_SINGLE_PHOTO_BYTES {
            return Err(NormalizeError::TooLarge {
                path: path.to_path_buf(),
                bytes,
                limit: MAX_SINGLE_PHOTO_BYTES,
            });
        }
        return Ok(Decision::AsIs);
    }
    let (bytes, shape) = read_shape(path, opts)?;
    let decision = Decision::of(&Header::of(bytes, &shape), opts);
    if decision != Decision::AsIs {
        memory_of(path, &shape, bytes, opts)?;
    }
    Ok(decision)
}

/// Reads a photo's size, stored dimensions and orientation without decoding pixels.
///
/// For a JPEG only the segments before the image data are read (seeking past those
/// not needed); for a HEIC/HEIF photo its container; for the other formats only what
/// their decoder reads to start.
pub fn read_header(path: &Path, opts: &NormalizeOptions) -> Result<Header, NormalizeError> {
    let (bytes, shape) = read_shape(path, opts)?;
    Ok(Header::of(bytes, &shape))
}

impl Header {
    fn of(bytes: u64, shape: &Shape) -> Header {
        Header {
            bytes,
            dims: shape.dims,
            orientation: shape.orientation,
            animated: shape.animated,
            foreign: shape.kind.is_foreign(),
        }
    }
}

/// The file's size and its header, the size checked against `opts.max_file_bytes`
/// before the header is read.
fn read_shape(path: &Path, opts: &NormalizeOptions) -> Result<(u64, Shape), NormalizeError> {
    let file = crate::photo_file::open(path).map_err(|e| read_error(path, e))?;
    let bytes = file.metadata().map_err(|e| read_error(path, e))?.len();
    crate::photo_file::check_size(bytes, opts.max_file_bytes).map_err(|e| read_error(path, e))?;
    let shape = header_of(BufReader::new(file), opts.max_file_bytes).map_err(|e| e.at(path))?;
    Ok((bytes, shape))
}

/// Reads the photo at `path` whole, under `opts.max_file_bytes`.
fn read_original(path: &Path, opts: &NormalizeOptions) -> Result<Vec<u8>, NormalizeError> {
    crate::photo_file::read(path, opts.max_file_bytes).map_err(|e| read_error(path, e))
}

/// Makes the bytes to send for the photo at `path` (see the module documentation).
///
/// Call it when the photo is about to be sent, on a bounded pool of its own. It waits
/// until the photo's working set fits the process's [`PIXEL_BUDGET_BYTES`].
pub fn prepare(path: &Path, opts: &NormalizeOptions) -> Result<Prepared, NormalizeError> {
    prepare_down_to(path, opts, Floor::Photo)
}

/// How far the step-down loop may shrink a picture to fit its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    /// To a long edge of 512 pixels: the budget is the per-photo one the operator
    /// chose, and a photo that does not fit it there is reported.
    Photo,
    /// To 128 pixels (`MIN_COPY_EDGE`): the budget is what the service's request limit
    /// leaves a photo, and a photo that does not fit is not sent at all. A photo then
    /// fails only when not even such a copy fits.
    RequestLimit,
}

impl Floor {
    fn edge(self) -> u32 {
        match self {
            Floor::Photo => MIN_EDGE,
            Floor::RequestLimit => MIN_COPY_EDGE,
        }
    }
}

/// Makes the bytes to send for the photo at `path`, as [`prepare`] does, shrinking the
/// picture no further than `floor`.
pub fn prepare_down_to(
    path: &Path,
    opts: &NormalizeOptions,
    floor: Floor,
) -> Result<Prepared, NormalizeError> {
    let floor = floor.edge();
    if !opts.enabled {
        decide(path, opts)?;
        return Ok(Prepared::AsIs);
    }
    let (bytes, shape) = read_shape(path, opts)?;
    let header = Header::of(bytes, &shape);
    if Decision::of(&header, opts) == Decision::AsIs {
        return Ok(Prepared::AsIs);
    }
    let _permit = IN_FLIGHT.take(memory_of(path, &shape, bytes, opts)?);
    let original = read_original(path, opts)?;
    let (bytes, normalized) = normalize_bytes(&original, opts, floor).map_err(|e| e.at(path))?;
    Ok(Prepared::Normalized { bytes, normalized })
}

/// The memory normalizing a photo takes, from its header: the file, and twice its
/// decoded pixels (the decoded picture, and the flattened or scaled copies made from
/// it). A JPEG is decoded at its DCT scale, three bytes a pixel; other formats whole,
/// up to four.
fn working_bytes(shape: &Shape, file_bytes: u64, edge: u32) -> u64 {
    let (w, h) = (u64::from(shape.dims.0), u64::from(shape.dims.1));
    let decoded = match shape.kind {
        Kind::Jpeg => {
            let eighths = u64::from(jpeg_scale(shape.dims, edge));
            (w * eighths).div_ceil(8) * (h * eighths).div_ceil(8) * 3
        }
        _ => w * h * 4,
    };
    file_bytes + 2 * decoded
}

/// The memory normalizing the photo at `path` takes ([`working_bytes`]), or
/// [`NormalizeError::OverMemory`] past [`MAX_PHOTO_MEMORY_BYTES`]: known from the
/// header, before the file is read or a decoder allocates.
fn memory_of(
    path: &Path,
    shape: &Shape,
    file_bytes: u64,
    opts: &NormalizeOptions,
) -> Result<u64, NormalizeError> {
    let bytes = working_bytes(shape, file_bytes, opts.max_edge);
    if bytes > MAX_PHOTO_MEMORY_BYTES {
        return Err(NormalizeError::OverMemory {
            path: path.to_path_buf(),
            dims: shape.dims,
            bytes,
        });
    }
    Ok(bytes)
}

/// A pool of `threads` threads for normalizing, named `normalize-N`, apart from the
/// threads that send requests.
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .thread_name(|i| format!("normalize-{i}"))
        .build()
}

/// Prepares the photos of one chunk on `pool`, in parallel, each result in the place
/// of its path. A photo that fails does not stop the others.
pub fn prepare_chunk<P: AsRef<Path> + Sync>(
    pool: &rayon::ThreadPool,
    paths: &[P],
    opts: &NormalizeOptions,
) -> Vec<Result<Prepared, NormalizeError>> {
    prepare_chunk_down_to(pool, paths, opts, Floor::Photo)
}

/// [`prepare_chunk`], shrinking pictures no further than `floor`.
pub fn prepare_chunk_down_to<P: AsRef<Path> + Sync>(
    pool: &rayon::ThreadPool,
    paths: &[P],
    opts: &NormalizeOptions,
    floor: Floor,
) -> Vec<Result<Prepared, NormalizeError>> {
    use rayon::prelude::*;
    pool.install(|| {
        paths
            .par_iter()
            .map(|p| prepare_down_to(p.as_ref(), opts, floor))
            .collect()
    })
}

/// A failure not yet tied to a file.
#[derive(Debug)]
enum Failure {
    Read(io::Error),
    Decode(String),
    Encode(String),
    OverBudget {
        bytes: u64,
        limit: u64,
        dims: (u32, u32),
        quality: u8,
    },
    TooManyPixels((u32, u32)),
}

impl Failure {
    fn at(self, path: &Path) -> NormalizeError {
        let path = path.to_path_buf();
        match self {
            Failure::Read(source) => read_error(&path, source),
            Failure::Decode(reason) => NormalizeError::Decode { path, reason },
            Failure::Encode(reason) => NormalizeError::Encode { path, reason },
            Failure::TooManyPixels(dims) => NormalizeError::TooManyPixels { path, dims },
            Failure::OverBudget {
                bytes,
                limit,
                dims,
                quality,
            } => NormalizeError::OverBudget {
                path,
                bytes,
                limit,
                dims,
                quality,
            },
        }
    }
}

fn read_error(path: &Path, source: io::Error) -> NormalizeError {
    let path = path.to_path_buf();
    match crate::photo_file::over_cap(&source) {
        Some(over) => NormalizeError::FileTooLarge { path, over },
        None => NormalizeError::Read { path, source },
    }
}

fn file_len(path: &Path) -> Result<u64, NormalizeError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| read_error(path, e))
}

fn decode_failure(e: image::ImageError) -> Failure {
    match e {
        image::ImageError::IoError(e) if e.kind() != io::ErrorKind::UnexpectedEof => {
            Failure::Read(e)
        }
        e => Failure::Decode(one_line(&e.to_string())),
    }
}

/// A decoder's message on one line, for a log line and a report cell: some decoders
/// end theirs with a line break or spread them over lines.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Decodes, scales, turns upright and re-encodes a photo to fit the budget.
fn normalize_bytes(
    original: &[u8],
    opts: &NormalizeOptions,
    floor: u32,
) -> Result<(Vec<u8>, Normalized), Failure> {
    let (shape, decoded) = decode_for(original, opts)?;
    encode_within(decoded, &shape, original.len() as u64, opts, floor)
}

/// A photo's header and its pixels, decoded for fitting into `opts.max_edge`.
fn decode_for(original: &[u8], opts: &NormalizeOptions) -> Result<(Shape, Decoded), Failure> {
    let shape = header_of(Cursor::new(original), u64::MAX)?;
    let target = opts.max_edge.clamp(1, u32::from(u16::MAX));
    let decoded = decode(original, shape.kind, target)?;
    Ok((shape, decoded))
}

/// Scales, turns upright and re-encodes decoded pixels to fit the budget, stepping
/// the quality and then the size down, the long side no further than `floor`;
/// `from_bytes` and the shape's dimensions are the original's, for the record of what
/// was sent.
fn encode_within(
    decoded: Decoded,
    shape: &Shape,
    from_bytes: u64,
    opts: &NormalizeOptions,
    floor: u32,
) -> Result<(Vec<u8>, Normalized), Failure> {
    let (from_dims, orientation) = (shape.dims, shape.orientation);
    let Decoded {
        picture: base,
        profile,
    } = decoded;
    // A damaged or foreign profile is dropped; the copy is then read as sRGB.
    let profile = profile.filter(|p| p.len() <= MAX_ICC_BYTES && profile_fits(p, &base));
    let long = base.width().max(base.height());
    // JPEG cannot record a side longer than 65535 pixels.
    let mut edge = long.min(opts.max_edge.clamp(1, u32::from(u16::MAX)));
    let mut quality = opts.jpeg_quality.clamp(1, 100);
    let mut picture = fit(&base, edge, orientation);
    let mut sample = sample_of(&picture);
    let budget = opts.budget();
    let mut last = (0u64, (0, 0), quality);
    for _ in 0..MAX_ATTEMPTS {
        let to_dims = (picture.width(), picture.height());
        // A quarter-size sample predicts the copy's size; the whole picture is encoded
        // only when the prediction fits the budget.
        let predicted = match &sample {
            Some(sample) => Some(predict_size(
                sample,
                to_dims.1,
                quality,
                profile.as_deref(),
            )?),
            None => None,
        };
        let size = match predicted {
            Some(size) if size > budget => size,
            _ => {
                let bytes = encode_jpeg(&picture, quality, profile.as_deref())?;
                let size = bytes.len() as u64;
                if size <= budget {
                    let normalized = Normalized {
                        from_bytes,
                        to_bytes: size,
                        from_dims,
                        to_dims,
                        rotated: orientation != Orientation::NoTransforms,
                        quality,
                    };
                    return Ok((bytes, normalized));
                }
                size
            }
        };
        last = (size, to_dims, quality);
        // Step down: first the quality, while a modest cut may do; then the size, by
        // the square root of the overshoot (bytes grow roughly with pixel count).
        let ratio = budget as f64 / size as f64;
        if quality > QUALITY_FLOOR && ratio > 0.5 {
            quality = quality.saturating_sub(10).max(QUALITY_FLOOR);
        } else {
            let next = ((f64::from(edge) * ratio.sqrt() * 0.9) as u32).max(floor.min(long));
            if next >= edge {
                // At the floor already: the lowest quality is the last resort.
                if quality > QUALITY_FLOOR {
                    quality = QUALITY_FLOOR;
                    continue;
                }
                break;
            }
            edge = next;
            picture = fit(&base, edge, orientation);
            sample = sample_of(&picture);
        }
    }
    Err(Failure::OverBudget {
        bytes: last.0,
        limit: budget,
        dims: last.1,
        quality: last.2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(bytes: u64, dims: (u32, u32), orientation: Orientation) -> Header {
        Header {
            bytes,
            dims,
            orientation,
            animated: false,
            foreign: false,
        }
    }

    #[test]
    fn the_decision_names_every_reason_and_only_those() {
        let opts = NormalizeOptions::default();
        let upright = Orientation::NoTransforms;
        let at_limits = header(opts.max_bytes, (opts.max_edge, opts.max_edge), upright);
        assert_eq!(Decision::of(&at_limits, &opts), Decision::AsIs);

        let big = header(opts.max_bytes + 1, (640, 480), upright);
        // A budget set above what a request carries is held to the request.
        let lavish = NormalizeOptions {
            max_bytes: u64::MAX,
            ..opts
        };
        let seven_mb = header(7 << 20, (640, 480), upright);
        assert!(matches!(
            Decision::of(&seven_mb, &lavish),
            Decision::Normalize(Reasons {
                over_budget: true,
                ..
            })
        ));
        let wide = header(1000, (opts.max_edge + 1, 10), upright);
        let tall = header(1000, (10, opts.max_edge + 1), upright);
        let flipped = header(1000, (640, 480), Orientation::FlipHorizontal);
        let all = header(9_800_000, (6000, 4000), Orientation::Rotate270);
        let animated = Header {
            animated: true,
            ..header(1000, (64, 64), upright)
        };
        let all = Header {
            animated: true,
            ..all
        };
        let webp = Header {
            foreign: true,
            ..header(1000, (64, 64), upright)
        };
        assert!(matches!(
            Decision::of(&webp, &opts),
            Decision::Normalize(Reasons {
                foreign: true,
                over_budget: false,
                over_edge: false,
                not_upright: false,
                animated: false,
            })
        ));
        let reasons = |h: &Header| match Decision::of(h, &opts) {
            Decision::Normalize(r) => (r.over_budget, r.over_edge, r.not_upright, r.animated),
            Decision::AsIs => panic!("{h:?} should be normalized"),
        };
        assert_eq!(reasons(&big), (true, false, false, false));
        assert_eq!(reasons(&wide), (false, true, false, false));
        assert_eq!(reasons(&tall), (false, true, false, false));
        assert_eq!(reasons(&flipped), (false, false, true, false));
        assert_eq!(reasons(&animated), (false, false, false, true));
        assert_eq!(reasons(&all), (true, true, true, true));
        let Decision::Normalize(r) = Decision::of(&all, &opts) else {
            unreachable!()
        };
        assert_eq!(
            r.to_string(),
            "over the byte budget, over the pixel bound, not stored upright, animated"
        );
        assert_eq!(
            Decision::of(&flipped, &opts).to_string(),
            "normalized (not stored upright)"
        );
        assert_eq!(Decision::AsIs.to_string(), "sent as is");
    }

    #[test]
    fn the_pixel_bound_follows_the_photo_budget() {
        // 1.5 MB request: (1,572,864 - 16,384) / 20 bytes a photo.
        assert_eq!(edge_for_bytes(77_824), 640);
        // 6 MB request: (6,291,456 - 16,384) / 20.
        assert_eq!(edge_for_bytes(313_753), 1280);
        assert_eq!(edge_for_bytes(1_000), MIN_EDGE);
        assert_eq!(edge_for_bytes(u64::MAX / 64), 2048);
        assert_eq!(DEFAULT_MAX_EDGE, edge_for_bytes(DEFAULT_MAX_BYTES));
        // The figure the README and `--help` give.
        assert_eq!(DEFAULT_MAX_EDGE, 1264);
    }

    /// A HEIC photo libheif cannot read (here a bare container), or one met where
    /// libheif is not installed, is known by its content and fails with the reason,
    /// both when the job is planned and when the photo is sent: never skipped, never
    /// sent as it is.
    #[test]
    fn a_heic_photo_that_cannot_be_decoded_fails_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("IMG_0001.HEIC");
        let mut bytes = vec![0, 0, 0, 24];
        bytes.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(foreign_format(&bytes), Some("HEIC/HEIF"));
        let opts = NormalizeOptions::default();
        for err in [
            decide(&path, &opts).unwrap_err(),
            prepare(&path, &opts).unwrap_err(),
        ] {
            assert!(matches!(err, NormalizeError::Decode { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains("IMG_0001.HEIC"), "{message}");
            assert!(message.contains("HEIC/HEIF"), "{message}");
        }
    }

    #[test]
    fn the_outcome_reads_as_the_report_says_it() {
        let outcome = Outcome::Normalized(Normalized {
            from_bytes: 9_800_000,
            to_bytes: 280_000,
            from_dims: (6000, 4000),
            to_dims: (2048, 1365),
            rotated: false,
            quality: 85,
        });
        assert_eq!(
            outcome.to_string(),
            "normalized from 9.35 MiB 6000×4000 to 273.44 KiB 2048×1365"
        );
        assert_eq!(outcome.bytes_saved(), 9_520_000);
        assert_eq!(Outcome::AsIs.to_string(), "sent as is");
    }
}
