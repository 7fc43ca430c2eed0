//! Reading a photo's header: its format, stored dimensions, EXIF orientation and
//! whether it is animated, without decoding its pixels.
//!
//! A dry run reads this for every photo of an archive, so it must stay cheap: a JPEG's
//! segments are walked up to its frame header and a GIF's blocks are skipped by their
//! lengths; the image crate's JPEG decoder would read the whole file first, and it can
//! tell a GIF's frames apart only by decoding them.

use super::decode::{decoder_limits, heif_dims};
use super::{decode_failure, is_over_pixel_limit, Failure};
use crate::model::ImageKind;
use image::metadata::Orientation;
use image::{ImageDecoder, ImageFormat, ImageReader};
use std::io::{self, BufRead, Read, Seek};

/// The kind of a photo, as far as decoding it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Jpeg,
    Gif,
    /// HEIC/HEIF (and AVIF, the same container), read by libheif.
    Heif,
    /// PNG, BMP, WebP or TIFF, read by the image crate.
    Other(ImageFormat),
}

impl Kind {
    /// Whether the service does not take photos of this kind, so they are sent as JPEG.
    pub(super) fn is_foreign(self) -> bool {
        matches!(
            self,
            Kind::Heif | Kind::Other(ImageFormat::WebP | ImageFormat::Tiff)
        )
    }
}

/// Brands of an ISO base media file (`ftyp` box) that libheif reads as a still photo.
const HEIF_BRANDS: &[&[u8; 4]] = &[
    b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif",
];

/// Whether a file's first bytes are a HEIF container: an `ftyp` box whose major brand
/// is one of [`HEIF_BRANDS`].
pub(super) fn is_heif(start: &[u8]) -> bool {
    start.len() >= 12 && &start[4..8] == b"ftyp" && HEIF_BRANDS.iter().any(|b| &start[8..12] == *b)
}

/// The kind of a photo, from its first bytes; only the kinds this build decodes.
fn sniff_kind(reader: &mut (impl BufRead + Seek)) -> Result<Kind, Failure> {
    let start = reader.fill_buf().map_err(Failure::Read)?;
    let start = &start[..start.len().min(16)];
    if start.is_empty() {
        return Err(Failure::Decode("the file is empty".into()));
    }
    if is_heif(start) {
        return Ok(Kind::Heif);
    }
    // The formats the service takes are recognised where the rest of the program
    // recognises them; the image crate names the others.
    match ImageKind::sniff(start) {
        Some(ImageKind::Jpeg) => return Ok(Kind::Jpeg),
        Some(ImageKind::Gif) => return Ok(Kind::Gif),
        Some(kind @ (ImageKind::Png | ImageKind::Bmp)) => return Ok(Kind::Other(kind.format())),
        None => {}
    }
    match image::guess_format(start) {
        Ok(ImageFormat::Jpeg) => Ok(Kind::Jpeg),
        Ok(ImageFormat::Gif) => Ok(Kind::Gif),
        Ok(f @ (ImageFormat::Png | ImageFormat::Bmp | ImageFormat::WebP | ImageFormat::Tiff)) => {
            Ok(Kind::Other(f))
        }
        Ok(f) => Err(Failure::Decode(format!(
            "{f:?} photos are not supported ({SUPPORTED} are)"
        ))),
        Err(_) => Err(Failure::Decode(format!(
            "not a photo in a known format ({SUPPORTED})"
        ))),
    }
}

/// The formats photos may come in, for messages.
const SUPPORTED: &str = "JPEG, HEIC/HEIF, PNG, WebP, TIFF, GIF and BMP";

/// What a photo's header says of its pixels.
pub(super) struct Shape {
    pub(super) kind: Kind,
    pub(super) dims: (u32, u32),
    pub(super) orientation: Orientation,
    pub(super) animated: bool,
}

/// Stored dimensions, orientation and animation from a photo's header; a header that
/// declares more pixels than [`MAX_PHOTO_PIXELS`](crate::limits::MAX_PHOTO_PIXELS) is
/// [`Failure::TooManyPixels`], so such a photo is never decoded. A header read whole
/// (a HEIC container) is read no further than `max_bytes`.
pub(super) fn header_of(reader: impl BufRead + Seek, max_bytes: u64) -> Result<Shape, Failure> {
    let shape = shape_of(reader, max_bytes)?;
    if is_over_pixel_limit(shape.dims) {
        return Err(Failure::TooManyPixels(shape.dims));
    }
    Ok(shape)
}

fn shape_of(mut reader: impl BufRead + Seek, max_bytes: u64) -> Result<Shape, Failure> {
    let kind = sniff_kind(&mut reader)?;
    let still = |dims, orientation| Shape {
        kind,
        dims,
        orientation,
        animated: false,
    };
    match kind {
        Kind::Jpeg => {
            let (dims, orientation) = jpeg_header(&mut reader)?;
            Ok(still(dims, orientation))
        }
        Kind::Gif => {
            let (dims, animated) = gif_header(&mut reader)?;
            Ok(Shape {
                animated,
                ..still(dims, Orientation::NoTransforms)
            })
        }
        Kind::Heif => {
            // libheif reads the container from memory; the dimensions it gives are
            // those of the upright picture, its rotation and mirroring applied.
            let mut bytes = Vec::new();
            reader
                .by_ref()
                .take(max_bytes.saturating_add(1))
                .read_to_end(&mut bytes)
                .map_err(Failure::Read)?;
            crate::photo_file::check_size(bytes.len() as u64, max_bytes).map_err(Failure::Read)?;
            Ok(still(heif_dims(&bytes)?, Orientation::NoTransforms))
        }
        Kind::Other(format) => {
            let mut reader = ImageReader::with_format(reader, format);
            reader.limits(decoder_limits());
            let mut decoder = reader.into_decoder().map_err(decode_failure)?;
            let orientation = decoder.orientation().map_err(decode_failure)?;
            Ok(still(decoder.dimensions(), orientation))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heif_container_is_known_by_its_brand() {
        let ftyp = |brand: &[u8; 4]| {
            let mut b = vec![0, 0, 0, 24];
            b.extend_from_slice(b"ftyp");
            b.extend_from_slice(brand);
            b.extend_from_slice(&[0; 12]);
            b
        };
        assert!(is_heif(&ftyp(b"heic")));
        assert!(is_heif(&ftyp(b"mif1")));
        // An MP4 video is the same container with another brand.
        assert!(!is_heif(&ftyp(b"isom")));
        assert!(!is_heif(b"\xFF\xD8\xFF\xE0"));
        assert!(Kind::Heif.is_foreign() && Kind::Other(ImageFormat::WebP).is_foreign());
        assert!(!Kind::Jpeg.is_foreign() && !Kind::Other(ImageFormat::Png).is_foreign());
    }
    use std::io::Cursor;

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
}
