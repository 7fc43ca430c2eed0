//! Opening a photo file without ever blocking on it.
//!
//! A manifest can name anything: a FIFO (whose `open` waits for a writer, for
//! ever), a socket, a terminal, a device. Every open of a photo, whether to look at
//! it, to read its header or its bytes, or to stream it into a request, goes through
//! [`open`]: the file is opened non-blocking (so a FIFO's open returns at once) and
//! refused unless it is a regular file, with [`NOT_A_REGULAR_FILE`] as its reason,
//! which the photo's failure and the report then name.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

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

/// Reads the photo at `path` whole, opened by [`open`].
pub fn read(path: &Path) -> io::Result<Vec<u8>> {
    let mut file = open(path)?;
    let mut bytes = Vec::with_capacity(file.metadata().map_or(0, |m| m.len() as usize));
    file.read_to_end(&mut bytes)?;
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
        assert!(read(dir.path()).is_err(), "a folder");
        let file = dir.path().join("photo.png");
        std::fs::write(&file, b"bytes").unwrap();
        assert_eq!(read(&file).unwrap(), b"bytes");
    }
}
