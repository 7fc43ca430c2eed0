//! `multipart/form-data` bodies whose photos stream from disk.
//!
//! A request carries up to twenty photos and six megabytes. Reading them all into
//! memory for every request of every worker would multiply the job's memory by the
//! pool size for no gain, so a [`Multipart`] body is a list of segments: header bytes
//! built here, then the photo's [`File`], then the next header, and so on. Its length
//! is known before the first byte is sent (the files' sizes are read when they are
//! opened), so the request carries a `Content-Length` and no chunked encoding.
//!
//! A photo whose size changes while it is being sent would break that length; the
//! reader notices (the file ends early, or has bytes past its announced size), fails
//! the upload and records the file's path and error in an [`UploadFault`] slot, so the
//! client can report the photo rather than a vague transport error.
//!
//! Text fields are plain form fields; image parts carry a URL-quoted file name and a
//! content type sniffed from their first bytes ([`sniff_content_type`]).

use crate::model::ImageKind;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The content type of an image, from its magic bytes ([`ImageKind::sniff`]).
pub fn sniff_content_type(head: &[u8]) -> &'static str {
    ImageKind::sniff(head).map_or("application/octet-stream", ImageKind::mime)
}

/// Percent-encodes everything but ASCII letters, digits and `-._~`, as a URL path
/// segment; the result is safe inside a quoted header parameter.
pub fn url_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The filename an image part carries for a local file: its URL-quoted file name.
pub fn part_filename(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.to_string_lossy().into_owned());
    url_quote(&name)
}

/// A photo that failed while its bytes were being sent.
#[derive(Debug)]
pub struct PhotoFault {
    pub path: PathBuf,
    pub error: io::Error,
}

/// Where a streaming photo records why it failed the upload.
#[derive(Debug, Clone, Default)]
pub struct UploadFault(Arc<Mutex<Option<PhotoFault>>>);

impl UploadFault {
    /// The first photo fault recorded, if any.
    pub fn take(&self) -> Option<PhotoFault> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    fn record(&self, path: &Path, error: &io::Error) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(PhotoFault {
                path: path.to_owned(),
                error: io::Error::new(error.kind(), error.to_string()),
            });
        }
    }
}

enum Segment {
    Bytes(Cursor<Vec<u8>>),
    Shared(Cursor<Arc<[u8]>>),
    File(FileSegment),
}

struct FileSegment {
    file: File,
    path: PathBuf,
    len: u64,
    sent: u64,
    fault: UploadFault,
}

impl Read for FileSegment {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let result = self.read_checked(buf);
        if let Err(e) = &result {
            self.fault.record(&self.path, e);
        }
        result
    }
}

impl FileSegment {
    fn read_checked(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.len - self.sent;
        if left == 0 {
            // Announced length reached: the file must end here too.
            let mut probe = [0u8; 1];
            return match self.file.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the file grew while it was being sent",
                )),
            };
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file shrank while it was being sent",
            ));
        }
        self.sent += n as u64;
        Ok(n)
    }
}

/// Builds a multipart body: text fields and images, in order.
pub struct MultipartBuilder {
    boundary: String,
    segments: Vec<Segment>,
    pending: Vec<u8>,
    len: u64,
    fault: UploadFault,
}

impl Default for MultipartBuilder {
    fn default() -> Self {
        MultipartBuilder::new()
    }
}

impl MultipartBuilder {
    /// A builder with a random boundary.
    pub fn new() -> MultipartBuilder {
        let boundary = format!(
            "faceenroll-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        MultipartBuilder::with_boundary(boundary)
    }

    /// A builder with a given boundary (tests use a fixed one).
    pub fn with_boundary(boundary: impl Into<String>) -> MultipartBuilder {
        MultipartBuilder {
            boundary: boundary.into(),
            segments: Vec::new(),
            pending: Vec::new(),
            len: 0,
            fault: UploadFault::default(),
        }
    }

    /// The boundary between parts.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// Adds a text field.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.push_head(name, None);
        self.pending.extend_from_slice(value.as_bytes());
        self.pending.extend_from_slice(b"\r\n");
        self
    }

    /// Adds an image from memory; `filename` is sent URL-quoted.
    pub fn bytes(&mut self, name: &str, filename: &str, bytes: Arc<[u8]>) -> &mut Self {
        let content_type = sniff_content_type(&bytes);
        self.push_head(name, Some((&url_quote(filename), content_type)));
        self.flush_pending();
        self.len += bytes.len() as u64;
        self.segments.push(Segment::Shared(Cursor::new(bytes)));
        self.pending.extend_from_slice(b"\r\n");
        self
    }

    /// Adds an image streamed from a local file, opened now so that a missing or
    /// unreadable photo is reported before anything is sent.
    pub fn file(&mut self, name: &str, path: &Path) -> io::Result<&mut Self> {
        let mut file = crate::photo_file::open(path)?;
        let len = file.metadata()?.len();
        let mut head = [0u8; 16];
        let mut got = 0;
        while got < head.len() {
            match file.read(&mut head[got..])? {
                0 => break,
                n => got += n,
            }
        }
        file.seek(SeekFrom::Start(0))?;
        let content_type = sniff_content_type(&head[..got]);
        self.push_head(name, Some((&part_filename(path), content_type)));
        self.flush_pending();
        self.len += len;
        self.segments.push(Segment::File(FileSegment {
            file,
            path: path.to_owned(),
            len,
            sent: 0,
            fault: self.fault.clone(),
        }));
        self.pending.extend_from_slice(b"\r\n");
        Ok(self)
    }

    /// Closes the body.
    pub fn finish(mut self) -> Multipart {
        self.pending
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        self.flush_pending();
        Multipart {
            content_type: format!("multipart/form-data; boundary={}", self.boundary),
            content_length: self.len,
            reader: MultipartReader {
                segments: self.segments.into(),
            },
            fault: self.fault,
        }
    }

    fn push_head(&mut self, name: &str, file: Option<(&str, &str)>) {
        let head = match file {
            None => format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n",
                self.boundary
            ),
            Some((filename, content_type)) => format!(
                "--{}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n",
                self.boundary
            ),
        };
        self.pending.extend_from_slice(head.as_bytes());
    }

    fn flush_pending(&mut self) {
        if !self.pending.is_empty() {
            let bytes = std::mem::take(&mut self.pending);
            self.len += bytes.len() as u64;
            self.segments.push(Segment::Bytes(Cursor::new(bytes)));
        }
    }
}

/// A finished multipart body: its headers and a reader of exactly `content_length`
/// bytes.
pub struct Multipart {
    pub content_type: String,
    pub content_length: u64,
    pub reader: MultipartReader,
    /// Where a photo that fails mid-upload records its path and error.
    pub fault: UploadFault,
}

/// Reads the segments of a body one after the other.
pub struct MultipartReader {
    segments: VecDeque<Segment>,
}

impl Read for MultipartReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        while let Some(segment) = self.segments.front_mut() {
            let n = match segment {
                Segment::Bytes(c) => c.read(buf)?,
                Segment::Shared(c) => c.read(buf)?,
                Segment::File(f) => f.read(buf)?,
            };
            if n > 0 {
                return Ok(n);
            }
            self.segments.pop_front();
        }
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read_all(body: Multipart) -> Vec<u8> {
        let mut out = Vec::new();
        let mut reader = body.reader;
        reader.read_to_end(&mut out).unwrap();
        out
    }

    #[test]
    fn a_small_body_is_exactly_the_expected_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("my photo.png");
        std::fs::write(&photo, b"\x89PNG\r\n\x1a\nDATA").unwrap();

        let mut b = MultipartBuilder::with_boundary("XyZ");
        b.text("appid", "1250000000").text("group_ids[0]", "g1");
        b.file("images[0]", &photo).unwrap();
        b.bytes(
            "images[1]",
            "re-encoded.jpg",
            Arc::from(&b"\xFF\xD8\xFFjpeg"[..]),
        );
        let body = b.finish();
        assert_eq!(body.content_type, "multipart/form-data; boundary=XyZ");
        let announced = body.content_length;
        let bytes = read_all(body);

        let expected: &[u8] = b"--XyZ\r\n\
Content-Disposition: form-data; name=\"appid\"\r\n\
\r\n\
1250000000\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"group_ids[0]\"\r\n\
\r\n\
g1\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"images[0]\"; filename=\"my%20photo.png\"\r\n\
Content-Type: image/png\r\n\
\r\n\
\x89PNG\r\n\x1a\nDATA\r\n\
--XyZ\r\n\
Content-Disposition: form-data; name=\"images[1]\"; filename=\"re-encoded.jpg\"\r\n\
Content-Type: image/jpeg\r\n\
\r\n\
\xFF\xD8\xFFjpeg\r\n\
--XyZ--\r\n";
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(expected)
        );
        assert_eq!(bytes, expected);
        assert_eq!(announced, bytes.len() as u64);
    }

    #[test]
    fn content_length_matches_for_a_large_streamed_file() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("big.jpg");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&photo, &data).unwrap();
        let mut b = MultipartBuilder::new();
        b.text("person_id", "p1");
        b.file("image", &photo).unwrap();
        let body = b.finish();
        let announced = body.content_length;
        let bytes = read_all(body);
        assert_eq!(announced, bytes.len() as u64);
        assert!(bytes.windows(data.len()).any(|w| w == &data[..]));
    }

    #[test]
    fn a_missing_file_fails_when_added() {
        let mut b = MultipartBuilder::new();
        let err = b
            .file("image", Path::new("/nonexistent/photo.jpg"))
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_file_that_changes_size_fails_the_upload_and_names_itself() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("a.jpg");
        std::fs::write(&photo, b"\xFF\xD8\xFF0123456789").unwrap();
        let mut b = MultipartBuilder::new();
        b.file("image", &photo).unwrap();
        let body = b.finish();
        // Grows after the length was announced.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&photo)
            .unwrap()
            .write_all(b"more")
            .unwrap();
        let mut reader = body.reader;
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        let fault = body.fault.take().unwrap();
        assert_eq!(fault.path, photo);

        // Shrinks after the length was announced.
        let mut b = MultipartBuilder::new();
        b.file("image", &photo).unwrap();
        let body = b.finish();
        std::fs::write(&photo, b"x").unwrap();
        let mut reader = body.reader;
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(body.fault.take().unwrap().path, photo);
    }

    #[test]
    fn sniffs_the_four_image_formats() {
        assert_eq!(sniff_content_type(b"\xFF\xD8\xFF\xE0"), "image/jpeg");
        assert_eq!(sniff_content_type(b"\x89PNG\r\n\x1a\n"), "image/png");
        assert_eq!(sniff_content_type(b"GIF89a.."), "image/gif");
        assert_eq!(sniff_content_type(b"GIF87a.."), "image/gif");
        assert_eq!(sniff_content_type(b"BM...."), "image/bmp");
        assert_eq!(sniff_content_type(b"hello"), "application/octet-stream");
        assert_eq!(sniff_content_type(b""), "application/octet-stream");
    }

    #[test]
    fn filenames_are_url_quoted() {
        assert_eq!(
            part_filename(Path::new("/a/b/张 三\".jpg")),
            "%E5%BC%A0%20%E4%B8%89%22.jpg"
        );
        assert_eq!(url_quote("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(url_quote("a\r\nb"), "a%0D%0Ab");
    }
}
