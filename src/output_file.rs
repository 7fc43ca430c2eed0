//! The files a run leaves for the operator and for machines (the report, the summary
//! JSON, the metrics file), each written whole or not at all.
//!
//! A file is written to a temporary file in its own folder (hidden, named
//! `.NAME.RANDOM.tmp`, so the rename stays on one file system), flushed to the disk,
//! then renamed over the old one: a reader, a crash or a `kill -9` sees the previous
//! file or the new one, never a part. On every error the temporary file is removed
//! and the previous file stays as it was. Only a process killed while writing leaves
//! its temporary file behind (nothing runs then to remove it); the next write does
//! not read it.

use std::io::Write as _;
use std::path::Path;

/// Replaces the file at `path` with what `write` writes, or leaves it as it was.
///
/// `write`'s error (or one of writing, syncing or renaming) is handed back after the
/// temporary file is removed.
pub fn replace_with<T, E>(
    path: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<std::io::Error>,
{
    let mut tmp = temporary_beside(path)?;
    let value = {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        let value = write(&mut out)?;
        out.flush()?;
        value
    };
    tmp.as_file().sync_all()?;
    // A failed rename hands the temporary file back in the error: dropped with it,
    // it is removed.
    tmp.persist(path).map_err(|e| e.error)?;
    // The rename itself reaches the disk with the folder (best effort: some file
    // systems cannot sync a folder).
    if let Ok(dir) = std::fs::File::open(folder_of(path)) {
        let _ = dir.sync_all();
    }
    Ok(value)
}

/// Replaces the file at `path` with `text`, or leaves it as it was.
pub fn replace(path: &Path, text: &str) -> std::io::Result<()> {
    replace_with(path, |out| out.write_all(text.as_bytes()))
}

/// Whether [`replace_with`] can write `path`, leaving nothing behind: `path` is not a
/// folder, and its temporary file can be made in its folder. A job checks its
/// outputs so before its first call, not after its last.
pub fn check_replaceable(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Err(std::io::Error::other("it is a folder"));
    }
    temporary_beside(path)?.close()
}

/// The folder of `path` (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// A new temporary file for `path`, in its folder, removed when dropped. Made with
/// the mode a new file gets (0666 less the umask), not the 0600 of a private
/// temporary file: the report is read by others than the job's user.
fn temporary_beside(path: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "the path names no file")
    })?;
    let mut prefix = std::ffi::OsString::from(".");
    prefix.push(name);
    prefix.push(".");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    builder.tempfile_in(folder_of(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_file_is_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        replace(&path, "one\n").unwrap();
        replace(&path, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        assert_eq!(
            names(dir.path()),
            ["report.csv"],
            "no temporary file is left"
        );
    }

    #[test]
    fn a_write_that_fails_midway_leaves_the_previous_file_whole_and_nothing_beside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        let previous = "person_id,image\nann,a.png\n".repeat(1000);
        std::fs::write(&path, &previous).unwrap();
        let failed: std::io::Result<()> = replace_with(&path, |out| {
            // More than the buffer holds, so part of it reached the temporary file.
            for _ in 0..10_000 {
                out.write_all(b"bob,b.png\n")?;
            }
            Err(std::io::Error::other("the disk is full"))
        });
        assert_eq!(failed.unwrap_err().to_string(), "the disk is full");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), previous);
        assert_eq!(
            names(dir.path()),
            ["report.csv"],
            "no temporary file is left"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_file_that_cannot_be_renamed_into_place_leaves_nothing_beside() {
        let dir = tempfile::tempdir().unwrap();
        // A folder in the file's place: the rename fails after the whole write.
        let path = dir.path().join("report.csv");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("kept"), "x").unwrap();
        assert!(replace(&path, "new\n").is_err());
        assert!(check_replaceable(&path).is_err());
        assert_eq!(names(dir.path()), ["report.csv"]);
        assert_eq!(names(&path), ["kept"]);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_readable_by_others_as_the_umask_allows() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.csv");
        replace(&path, "x\n").unwrap();
        let made = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // Whatever the umask, a private temporary file's 0600 is not kept.
        let umask = {
            let probe = dir.path().join("probe");
            std::fs::write(&probe, "").unwrap();
            0o666 & !(std::fs::metadata(&probe).unwrap().permissions().mode() & 0o777)
        };
        assert_eq!(made, 0o666 & !umask, "{made:o}");
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_current_folder() {
        assert_eq!(folder_of(Path::new("report.csv")), Path::new("."));
        assert_eq!(folder_of(Path::new("/a/b.csv")), Path::new("/a"));
    }
}
