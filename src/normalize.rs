//! Turns a local photo into bytes the service can use: small enough, upright, decodable.
//!
//! Real archives hold camera originals of 8–25 MB, 6000-pixel scans and phone photos
//! stored sideways with an EXIF orientation tag. The service takes at most
//! [`MAX_REQUEST_BYTES`] per request (a chunk of up to [`MAX_IMAGES_PER_ADDFACE`]
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

use crate::limits::{MAX_IMAGES_PER_ADDFACE, MAX_REQUEST_BYTES, REQUEST_ENVELOPE_BYTES};
use image::codecs::jpeg::JpegEncoder;
use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader};
use indicatif::HumanBytes;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Seek};
use std::path::{Path, PathBuf};

/// The largest photo that can travel alone in one request: the request limit less the
/// multipart envelope. With normalization off, a larger original cannot be sent.
pub const MAX_SINGLE_PHOTO_BYTES: u64 = MAX_REQUEST_BYTES - REQUEST_ENVELOPE_BYTES;

/// The default per-photo budget: a full chunk of normalized photos plus the envelope
/// fits one request (20 × 313 753 + 16 384 ≤ 6 291 456 bytes).
pub const DEFAULT_MAX_BYTES: u64 =
    (MAX_REQUEST_BYTES - REQUEST_ENVELOPE_BYTES) / MAX_IMAGES_PER_ADDFACE as u64;

// A full chunk at the default budget fits one request; the build fails if the default
// is ever set by hand to a figure that breaks that.
const _: () = assert!(
    MAX_IMAGES_PER_ADDFACE as u64 * DEFAULT_MAX_BYTES + REQUEST_ENVELOPE_BYTES <= MAX_REQUEST_BYTES
);

/// The default bound on a photo's long edge, in pixels: ample for faces, which the
/// service finds at a few hundred pixels.
pub const DEFAULT_MAX_EDGE: u32 = 2048;

/// The default JPEG quality of a re-encoded photo (1–100).
pub const DEFAULT_JPEG_QUALITY: u8 = 85;

/// The lowest quality the step-down loop goes to before it shrinks the picture.
const QUALITY_FLOOR: u8 = 60;

/// The shortest long edge the step-down loop shrinks a photo to: below it a face is
/// too small for the service to find, so the photo is reported instead.
const MIN_EDGE: u32 = 512;

/// The most memory one photo's decoded pixels may take; a larger picture (or a file
/// that claims to be one) is reported rather than decoded.
const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;

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
}

impl NormalizeOptions {
    /// The bytes one photo may take: `max_bytes`, but never more than a request can
    /// carry with the photo alone.
    pub fn budget(&self) -> u64 {
        self.max_bytes.min(MAX_SINGLE_PHOTO_BYTES)
    }
}

impl Default for NormalizeOptions {
    fn default() -> Self {
        NormalizeOptions {
            enabled: true,
            max_bytes: DEFAULT_MAX_BYTES,
            max_edge: DEFAULT_MAX_EDGE,
            jpeg_quality: DEFAULT_JPEG_QUALITY,
        }
    }
}

/// Why a photo cannot be sent, named with its file.
#[derive(Debug, thiserror::Error)]
pub enum NormalizeError {
    #[error("{}: cannot read the photo: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
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
}

impl fmt::Display for Reasons {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (self.over_budget, "over the byte budget"),
            (self.over_edge, "over the pixel bound"),
            (self.not_upright, "not stored upright"),
            (self.animated, "animated"),
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
        };
        if reasons.over_budget || reasons.over_edge || reasons.not_upright || reasons.animated {
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
}

impl Outcome {
    /// Bytes the copy saved over the original (0 when sent as is).
    pub fn bytes_saved(&self) -> u64 {
        match self {
            Outcome::AsIs => 0,
            Outcome::Normalized(n) => n.bytes_saved(),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::AsIs => f.write_str("sent as is"),
            Outcome::Normalized(n) => n.fmt(f),
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
}

impl Prepared {
    /// What was sent, without the bytes.
    pub fn outcome(&self) -> Outcome {
        match self {
            Prepared::AsIs => Outcome::AsIs,
            Prepared::Normalized { normalized, .. } => Outcome::Normalized(*normalized),
        }
    }

    /// The bytes to send in place of the file, if any.
    pub fn bytes(&self) -> Option<&[u8]> {
        match self {
            Prepared::AsIs => None,
            Prepared::Normalized { bytes, .. } => Some(bytes),
        }
    }
}

/// Decides what will happen to the photo at `path`, reading only its size and header.
///
/// With normalization disabled only the size is read: a photo that fits a request is
/// [`Decision::AsIs`], a larger one is [`NormalizeError::TooLarge`]. With it enabled,
/// a file whose header cannot be read as JPEG, PNG, GIF or BMP is
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
    let header = read_header(path)?;
    Ok(Decision::of(&header, opts))
}

/// Reads a photo's size, stored dimensions and orientation without decoding pixels.
///
/// For a JPEG only the segments before the image data are read (seeking past those
/// not needed); for the other formats only what their decoder reads to start.
pub fn read_header(path: &Path) -> Result<Header, NormalizeError> {
    let file = File::open(path).map_err(|e| read_error(path, e))?;
    let bytes = file.metadata().map_err(|e| read_error(path, e))?.len();
    let shape = header_of(BufReader::new(file)).map_err(|e| e.at(path))?;
    Ok(Header {
        bytes,
        dims: shape.dims,
        orientation: shape.orientation,
        animated: shape.animated,
    })
}

/// Makes the bytes to send for the photo at `path` (see the module documentation).
///
/// Call it when the photo is about to be sent, on a bounded pool of its own.
pub fn prepare(path: &Path, opts: &NormalizeOptions) -> Result<Prepared, NormalizeError> {
    if decide(path, opts)? == Decision::AsIs {
        return Ok(Prepared::AsIs);
    }
    let original = std::fs::read(path).map_err(|e| read_error(path, e))?;
    let (bytes, normalized) = normalize_bytes(&original, opts).map_err(|e| e.at(path))?;
    Ok(Prepared::Normalized { bytes, normalized })
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
    use rayon::prelude::*;
    pool.install(|| {
        paths
            .par_iter()
            .map(|p| prepare(p.as_ref(), opts))
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
}

impl Failure {
    fn at(self, path: &Path) -> NormalizeError {
        let path = path.to_path_buf();
        match self {
            Failure::Read(source) => NormalizeError::Read { path, source },
            Failure::Decode(reason) => NormalizeError::Decode { path, reason },
            Failure::Encode(reason) => NormalizeError::Encode { path, reason },
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
    NormalizeError::Read {
        path: path.to_path_buf(),
        source,
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
        e => Failure::Decode(e.to_string()),
    }
}

/// The format of a photo, from its first bytes; only the formats this build decodes.
fn sniff_format(reader: &mut (impl BufRead + Seek)) -> Result<ImageFormat, Failure> {
    let start = reader.fill_buf().map_err(Failure::Read)?;
    let start = &start[..start.len().min(16)];
    if start.is_empty() {
        return Err(Failure::Decode("the file is empty".into()));
    }
    match image::guess_format(start) {
        Ok(f @ (ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::Bmp)) => {
            Ok(f)
        }
        Ok(f) => Err(Failure::Decode(format!(
            "{f:?} photos are not supported (JPEG, PNG, GIF and BMP are)"
        ))),
        Err(_) => Err(Failure::Decode("not a JPEG, PNG, GIF or BMP image".into())),
    }
}

/// What a photo's header says of its pixels.
struct Shape {
    dims: (u32, u32),
    orientation: Orientation,
    animated: bool,
}

/// Stored dimensions, orientation and animation from a photo's header.
fn header_of(mut reader: impl BufRead + Seek) -> Result<Shape, Failure> {
    match sniff_format(&mut reader)? {
        ImageFormat::Jpeg => {
            let (dims, orientation) = jpeg_header(&mut reader)?;
            Ok(Shape {
                dims,
                orientation,
                animated: false,
            })
        }
        ImageFormat::Gif => {
            let (dims, animated) = gif_header(&mut reader)?;
            Ok(Shape {
                dims,
                orientation: Orientation::NoTransforms,
                animated,
            })
        }
        format => {
            let mut decoder = ImageReader::with_format(reader, format)
                .into_decoder()
                .map_err(decode_failure)?;
            let orientation = decoder.orientation().map_err(decode_failure)?;
            Ok(Shape {
                dims: decoder.dimensions(),
                orientation,
                animated: false,
            })
        }
    }
}

/// Reads a GIF's screen size and whether it holds more than one frame, walking its
/// blocks and seeking past their data without decoding any.
///
/// The image crate can tell frames apart only by decoding them; this reads the block
/// lengths up to the second frame's descriptor (or the end of the file).
fn gif_header(r: &mut (impl BufRead + Seek)) -> Result<((u32, u32), bool), Failure> {
    let mut frames = 0u32;
    let truncated = |frames: u32| {
        move |e: io::Error| {
            if e.kind() != io::ErrorKind::UnexpectedEof {
                Failure::Read(e)
            } else if frames == 0 {
                Failure::Decode("the GIF ends before its first frame".into())
            } else {
                Failure::Decode("the GIF is cut off".into())
            }
        }
    };
    let mut screen = [0u8; 13];
    r.read_exact(&mut screen).map_err(truncated(0))?;
    let dims = (
        u32::from(u16::from_le_bytes([screen[6], screen[7]])),
        u32::from(u16::from_le_bytes([screen[8], screen[9]])),
    );
    let color_table_len = |packed: u8| {
        if packed & 0x80 != 0 {
            3i64 << ((packed & 7) + 1)
        } else {
            0
        }
    };
    r.seek_relative(color_table_len(screen[10]))
        .map_err(Failure::Read)?;
    let mut byte = [0u8; 1];
    loop {
        match r.read_exact(&mut byte) {
            // Some writers leave out the trailer; a whole frame was read.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && frames > 0 => break,
            other => other.map_err(truncated(frames))?,
        }
        match byte[0] {
            0x3B => break,
            0x21 => {
                r.read_exact(&mut byte).map_err(truncated(frames))?; // extension label
            }
            0x2C => {
                frames += 1;
                if frames > 1 {
                    break;
                }
                let mut descriptor = [0u8; 9];
                r.read_exact(&mut descriptor).map_err(truncated(0))?;
                r.seek_relative(color_table_len(descriptor[8]))
                    .map_err(Failure::Read)?;
                r.read_exact(&mut byte).map_err(truncated(0))?; // LZW code size
            }
            other => return Err(Failure::Decode(format!("corrupt GIF (block {other:#04x})"))),
        }
        // Data sub-blocks, each led by its length, up to an empty one.
        loop {
            r.read_exact(&mut byte).map_err(truncated(frames))?;
            if byte[0] == 0 {
                break;
            }
            r.seek_relative(i64::from(byte[0])).map_err(Failure::Read)?;
        }
    }
    if frames == 0 {
        return Err(Failure::Decode("the GIF holds no frame".into()));
    }
    Ok((dims, frames > 1))
}

/// Walks a JPEG's segments up to its frame header, reading the dimensions from the
/// frame header and the orientation from an EXIF APP1 segment before it.
///
/// The image crate's JPEG decoder reads the whole file first; this reads a few KB.
fn jpeg_header(r: &mut (impl BufRead + Seek)) -> Result<((u32, u32), Orientation), Failure> {
    let truncated = |e: io::Error| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            Failure::Decode("the JPEG ends before its frame header".into())
        } else {
            Failure::Read(e)
        }
    };
    let mut two = [0u8; 2];
    r.read_exact(&mut two).map_err(truncated)?;
    if two != [0xFF, 0xD8] {
        return Err(Failure::Decode(
            "not a JPEG (no start-of-image marker)".into(),
        ));
    }
    let mut orientation = Orientation::NoTransforms;
    loop {
        // A marker is 0xFF (possibly repeated as fill) followed by its code.
        let mut byte = [0u8; 1];
        r.read_exact(&mut byte).map_err(truncated)?;
        if byte[0] != 0xFF {
            return Err(Failure::Decode(format!(
                "corrupt JPEG header (byte {:#04x} where a marker was expected)",
                byte[0]
            )));
        }
        let mut marker = 0xFF;
        while marker == 0xFF {
            r.read_exact(&mut byte).map_err(truncated)?;
            marker = byte[0];
        }
        match marker {
            0x01 | 0xD0..=0xD7 => continue,
            0xD9 | 0xDA => {
                return Err(Failure::Decode("the JPEG has no frame header".into()));
            }
            _ => {}
        }
        r.read_exact(&mut two).map_err(truncated)?;
        let len = u16::from_be_bytes(two);
        if len < 2 {
            return Err(Failure::Decode("corrupt JPEG segment length".into()));
        }
        let body_len = u64::from(len - 2);
        let is_frame = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_frame || marker == 0xE1 {
            let mut body = vec![0u8; body_len as usize];
            r.read_exact(&mut body).map_err(truncated)?;
            if is_frame {
                if body.len() < 5 {
                    return Err(Failure::Decode("corrupt JPEG frame header".into()));
                }
                let height = u32::from(u16::from_be_bytes([body[1], body[2]]));
                let width = u32::from(u16::from_be_bytes([body[3], body[4]]));
                if width == 0 || height == 0 {
                    return Err(Failure::Decode(format!(
                        "the JPEG declares a {width}×{height} picture"
                    )));
                }
                return Ok(((width, height), orientation));
            }
            if let Some(tiff) = body.strip_prefix(b"Exif\0\0") {
                orientation =
                    Orientation::from_exif_chunk(tiff).unwrap_or(Orientation::NoTransforms);
            }
        } else {
            r.seek_relative(body_len as i64).map_err(Failure::Read)?;
        }
    }
}

/// Decodes, scales, turns upright and re-encodes a photo to fit the budget.
fn normalize_bytes(
    original: &[u8],
    opts: &NormalizeOptions,
) -> Result<(Vec<u8>, Normalized), Failure> {
    let Shape {
        dims: from_dims,
        orientation,
        ..
    } = header_of(Cursor::new(original))?;
    let mut decoder = ImageReader::new(Cursor::new(original))
        .with_guessed_format()
        .map_err(Failure::Read)?
        .into_decoder()
        .map_err(decode_failure)?;
    let (w, h) = decoder.dimensions();
    let need = decoder.total_bytes();
    if need > MAX_DECODED_BYTES {
        return Err(Failure::Decode(format!(
            "{w}×{h} pixels take {} to decode, more than the {} allowed for one photo",
            HumanBytes(need),
            HumanBytes(MAX_DECODED_BYTES)
        )));
    }
    // A damaged profile is dropped, not fatal: the pixels are what matter.
    let profile = decoder.icc_profile().ok().flatten();
    let base = flatten(DynamicImage::from_decoder(decoder).map_err(decode_failure)?);
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
                        from_bytes: original.len() as u64,
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
            let next = ((f64::from(edge) * ratio.sqrt() * 0.9) as u32).max(MIN_EDGE.min(long));
            if next >= edge {
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

/// Rows of a sample band, and one band in how many is sampled.
const SAMPLE_BAND_ROWS: u32 = 8;
const SAMPLE_EVERY: u32 = 4;

/// Every fourth band of 8 rows of a picture (the height of a row of JPEG blocks), for
/// predicting the size of its JPEG: the scan is the sum of its blocks' codes, so the
/// sample's scan, scaled by the rows, comes close to the whole's. `None` for a picture
/// too small to be worth sampling.
fn sample_of(picture: &DynamicImage) -> Option<DynamicImage> {
    let band = SAMPLE_BAND_ROWS * SAMPLE_EVERY;
    if picture.height() < 4 * band {
        return None;
    }
    let keep = |y: u32| (y / SAMPLE_BAND_ROWS) % SAMPLE_EVERY == 0;
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
fn predict_size(
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
fn fit(base: &DynamicImage, edge: u32, orientation: Orientation) -> DynamicImage {
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
fn flatten(image: DynamicImage) -> DynamicImage {
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
fn profile_fits(profile: &[u8], picture: &DynamicImage) -> bool {
    let space = profile.get(16..20);
    match picture {
        DynamicImage::ImageRgb8(_) => space == Some(b"RGB "),
        DynamicImage::ImageLuma8(_) => space == Some(b"GRAY"),
        _ => false,
    }
}

fn encode_jpeg(
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

    fn header(bytes: u64, dims: (u32, u32), orientation: Orientation) -> Header {
        Header {
            bytes,
            dims,
            orientation,
            animated: false,
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

    /// A JPEG head: SOI, the given segments, then a baseline frame header.
    fn jpeg_head(segments: &[(u8, Vec<u8>)], width: u16, height: u16) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8];
        let mut sof = vec![8];
        sof.extend_from_slice(&height.to_be_bytes());
        sof.extend_from_slice(&width.to_be_bytes());
        sof.extend_from_slice(&[1, 1, 0x11, 0]);
        for (marker, body) in segments.iter().chain([(0xC0, sof)].iter()) {
            out.extend_from_slice(&[0xFF, *marker]);
            out.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
            out.extend_from_slice(body);
        }
        out.extend_from_slice(&[0xFF, 0xDA]);
        out
    }

    /// An EXIF APP1 body in big-endian ("MM") order, Orientation after another entry.
    fn exif_big_endian(orientation: u16) -> Vec<u8> {
        let mut body = b"Exif\0\0MM\0\x2a\0\0\0\x08\0\x02".to_vec();
        body.extend_from_slice(&[0x01, 0x0F, 0, 2, 0, 0, 0, 4, b'A', b'C', b'M', 0]); // Make
        body.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1]);
        body.extend_from_slice(&orientation.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        body
    }

    #[test]
    fn the_jpeg_header_gives_dimensions_and_orientation() {
        let jfif = (0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0".to_vec());
        let icc = (0xE2, vec![7u8; 60_000]);
        let head = jpeg_head(&[jfif, (0xE1, exif_big_endian(8)), icc], 6000, 4000);
        let (dims, orientation) = jpeg_header(&mut Cursor::new(&head)).unwrap();
        assert_eq!(dims, (6000, 4000));
        assert_eq!(orientation, Orientation::Rotate270);

        // Fill bytes before a marker are allowed; no EXIF means upright.
        let mut plain = jpeg_head(&[], 17, 9);
        plain.insert(2, 0xFF);
        let (dims, orientation) = jpeg_header(&mut Cursor::new(&plain)).unwrap();
        assert_eq!((dims, orientation), ((17, 9), Orientation::NoTransforms));

        // An XMP APP1 segment is not EXIF; a broken orientation counts as upright.
        let xmp = (0xE1, b"http://ns.adobe.com/xap/1.0/\0<x/>".to_vec());
        let head = jpeg_head(&[xmp, (0xE1, exif_big_endian(42))], 8, 8);
        let (_, orientation) = jpeg_header(&mut Cursor::new(&head)).unwrap();
        assert_eq!(orientation, Orientation::NoTransforms);
    }

    #[test]
    fn a_broken_jpeg_header_says_what_is_wrong() {
        let reason = |bytes: &[u8]| match jpeg_header(&mut Cursor::new(bytes)) {
            Err(Failure::Decode(reason)) => reason,
            other => panic!("{other:?}"),
        };
        let head = jpeg_head(&[], 100, 100);
        assert!(reason(&head[..head.len() - 8]).contains("ends before its frame header"));
        assert!(reason(b"GIF89a").contains("not a JPEG"));
        assert!(reason(&[0xFF, 0xD8, 0xFF, 0xDA, 0, 2]).contains("no frame header"));
        assert!(reason(&[0xFF, 0xD8, 0x12]).contains("corrupt"));
        assert!(reason(&jpeg_head(&[], 0, 100)).contains("0×100"));
    }

    /// A GIF of `frames` 2×2 frames, each with a local color table and one data
    /// sub-block, after a comment extension.
    fn gif(frames: usize) -> Vec<u8> {
        let mut out = b"GIF89a\x02\0\x02\0\x80\0\0".to_vec();
        out.extend_from_slice(&[0, 0, 0, 255, 255, 255]); // global table, 2 colors
        out.extend_from_slice(b"\x21\xFE\x03abc\0"); // comment
        for _ in 0..frames {
            out.extend_from_slice(b"\x21\xF9\x04\0\x0A\0\0\0"); // frame delay
            out.extend_from_slice(&[0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0x80]);
            out.extend_from_slice(&[255, 0, 0, 0, 0, 255]); // local table
            out.extend_from_slice(&[2, 3, 0x84, 0x1D, 0x05, 0]); // code size, data
        }
        out.push(0x3B);
        out
    }

    #[test]
    fn the_gif_header_tells_an_animation_from_a_still() {
        let header = |bytes: &[u8]| gif_header(&mut Cursor::new(bytes));
        assert!(matches!(header(&gif(1)), Ok(((2, 2), false))));
        assert!(matches!(header(&gif(2)), Ok(((2, 2), true))));
        assert!(matches!(header(&gif(5)), Ok(((2, 2), true))));
        // Without its trailer a still is still a still.
        let still = gif(1);
        assert!(matches!(header(&still[..still.len() - 1]), Ok((_, false))));
        for (cut, why) in [
            (10, "before its first frame"),
            (40, "before its first frame"),
        ] {
            match header(&still[..cut]) {
                Err(Failure::Decode(reason)) => assert!(reason.contains(why), "{reason}"),
                other => panic!("{other:?}"),
            }
        }
        match header(&gif(0)) {
            Err(Failure::Decode(reason)) => assert!(reason.contains("no frame"), "{reason}"),
            other => panic!("{other:?}"),
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

    use proptest::prelude::*;

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
