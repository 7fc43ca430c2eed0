//! Opening a photo file without ever blocking on it.
//!
//! A manifest can name anything: a FIFO (whose `open` waits for a writer, for
//! ever), a socket, a terminal, a device. Every open of a photo, whether to look at
//! it, to read its header or its bytes, or to stream it into a request, goes through
//! [`open`]: the file is opened non-blocking (so a FIFO's open returns at once) and
//! refused unless it is a regular file, with [`NOT_A_REGULAR_FILE`] as its reason,
//! which the photo's failure and the report then name.
//!
//! A photo is read into memory only through [`read`], under a cap on its size (the
//! `--max-file-bytes` setting, [`DEFAULT_MAX_FILE_BYTES`]): the size is looked at
//! before a byte is read, and the read itself stops one byte past the cap, so a file
//! that grows meanwhile is refused all the same, never read whole. A file over the
//! cap is refused with an [`OverCap`] reason.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The default cap on a photo file read into memory: 64 MiB, well above the largest
/// camera original (a 100-megapixel JPEG takes about 40 MB) and far above what one
/// request carries (1.5 MB at the documented limit), so only a file that is no photo
/// to send (a video, a disk image, a sparse file) meets it.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Why a photo file is refused unread: it is larger than the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the file is too large: {} ({bytes} bytes), over the {} a photo file may take \
     (--max-file-bytes); not read",
    indicatif::HumanBytes(*bytes),
    indicatif::HumanBytes(*limit)
)]
pub struct OverCap {
    /// The file's size, or the cap and one byte when it grew past it while read.
    pub bytes: u64,
    /// The cap.
    pub limit: u64,
}

/// The [`OverCap`] an error of [`read`] carries, if it is one.
pub fn over_cap(e: &io::Error) -> Option<OverCap> {
    e.get_ref()?.downcast_ref::<OverCap>().copied()
}

/// Refuses a file of `bytes` over the cap `limit`.
pub fn check_size(bytes: u64, limit: u64) -> io::Result<()> {
    if bytes > limit {
        return Err(io::Error::new(
            io::ErrorKind::FileTooLarge,
            OverCap { bytes, limit },
        ));
    }
    Ok(())
}

/// Why a photo that is not a regular file is refused unread.
pub const NOT_A_REGULAR_FILE: &str = "not a regular file (a pipe, socket or device); not opened";

/// Opens the photo at `path` for reading, never blocking: refused unless it is a
/// regular file (or a link to one).
pub fn open(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        // A FIFO's open does not wait for a writer, and a terminal does not become
        // the process's controlling one. A regular file ignores both.
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (a folder)",
        ));
    }
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            NOT_A_REGULAR_FILE,
        ));
    }
    Ok(file)
}

/// Reads the photo at `path` whole, opened by [`open`], unless it is larger than
/// `limit` bytes: refused from its size before any byte is read, and, should it grow
/// while it is read, once the read passes the cap ([`OverCap`]).
pub fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = open(path)?;
    let len = file.metadata()?.len();
    check_size(len, limit)?;
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    check_size(bytes.len() as u64, limit)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_at_once_and_a_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("photo.jpg");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path that lives across the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let err = open(&fifo).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), NOT_A_REGULAR_FILE);
        assert!(read(dir.path(), 100).is_err(), "a folder");
        let file = dir.path().join("photo.png");
        std::fs::write(&file, b"bytes").unwrap();
        assert_eq!(read(&file, 100).unwrap(), b"bytes");
    }

    #[test]
    fn a_file_over_the_cap_is_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("photo.png");
        std::fs::write(&file, b"bytes").unwrap();
        assert_eq!(read(&file, 5).unwrap(), b"bytes");
        let err = read(&file, 4).unwrap_err();
        assert_eq!(over_cap(&err), Some(OverCap { bytes: 5, limit: 4 }));
        assert!(err.to_string().contains("too large"), "{err}");
        // A sparse file of 2 GiB: refused from its size, without reading it.
        let big = std::fs::File::create(&file).unwrap();
        big.set_len(2 << 30).unwrap();
        let err = read(&file, DEFAULT_MAX_FILE_BYTES).unwrap_err();
        assert_eq!(over_cap(&err).map(|o| o.bytes), Some(2 << 30));
    }
}
