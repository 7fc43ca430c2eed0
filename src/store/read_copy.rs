//! Reading a job's store from a state directory this process cannot write: a job
//! of another account, a read-only mount, a backup.
//!
//! sled has no read-only mode: opening a database writes to it (its lock, its
//! recovery). So when the state directory cannot be written, the progress database
//! is copied into a temporary directory and opened there; the copy is removed when
//! the [`Reading`] is dropped. The state directory is only read. A job running in it
//! holds its lock, which the copy checks first, so a half-written database is never
//! copied.

use super::{running_job, Result, Store, StoreError};
use crate::state_dir::StateDir;
use std::io;
use std::path::Path;

/// A store opened to be read: in its state directory, or as a copy.
pub struct Reading {
    // Dropped before the copy's directory is removed.
    store: Store,
    copy: Option<tempfile::TempDir>,
}

impl Reading {
    /// Whether the store is a copy, because the state directory cannot be written.
    pub fn is_copy(&self) -> bool {
        self.copy.is_some()
    }

    /// The store, to be read.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store and, for a copy, its temporary directory, which must outlive it.
    pub fn into_parts(self) -> (Store, Option<tempfile::TempDir>) {
        (self.store, self.copy)
    }
}

/// Opens the store of `dir` to read it, as a copy when `dir` cannot be written
/// (permission denied, read-only file system).
pub fn open_for_reading(dir: &Path) -> Result<Reading> {
    match Store::open(dir) {
        Ok(store) => Ok(Reading { store, copy: None }),
        Err(err) if cannot_write(&err) => open_copy(dir, "it cannot be written"),
        Err(err) => Err(err),
    }
}

/// Whether opening a store failed only because its directory cannot be written
/// (permission denied, read-only file system).
fn cannot_write(err: &StoreError) -> bool {
    let io = match err {
        StoreError::Dir { source, .. } => Some(source),
        StoreError::Open {
            source: sled::Error::Io(source),
            ..
        } => Some(source),
        _ => None,
    };
    io.is_some_and(|e| {
        matches!(
            e.kind(),
            io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
        )
    })
}

/// A store to plan into without touching the job's: a copy of the progress database
/// of `dir` in a temporary directory (or an empty store there when `dir` holds no
/// job yet, or none is given), removed when the [`Reading`] is dropped. What a dry
/// run writes (its plan, its plan number, the shard it records) goes into the copy;
/// the state directory is only read.
pub fn open_scratch_copy(dir: Option<&Path>) -> Result<Reading> {
    if let Some(dir) = dir.filter(|d| StateDir::new(d).db().is_dir()) {
        return open_copy(dir, "a dry run reads the job without writing to it");
    }
    let scratch = tempfile::Builder::new()
        .prefix("faceenroll-plan-")
        .tempdir()
        .map_err(|source| StoreError::Dir {
            dir: std::env::temp_dir(),
            source,
        })?;
    let store = Store::open(scratch.path())?;
    Ok(Reading {
        store,
        copy: Some(scratch),
    })
}

/// Copies the progress database of `dir` into a temporary directory and opens it;
/// `why` a copy is read starts the message of a copy that fails.
fn open_copy(dir: &Path, why: &str) -> Result<Reading> {
    if let Some(pid) = running_job(dir) {
        return Err(StoreError::Busy {
            dir: dir.to_owned(),
            pid: Some(pid).filter(|&p| p != 0),
        });
    }
    let copy_failed = |source: io::Error| StoreError::Dir {
        dir: dir.to_owned(),
        source: io::Error::new(
            source.kind(),
            format!("{why}, and copying its progress database to read it failed: {source}"),
        ),
    };
    let copy = tempfile::Builder::new()
        .prefix("faceenroll-read-")
        .tempdir()
        .map_err(copy_failed)?;
    let from = StateDir::new(dir).db();
    if !from.is_dir() {
        return Err(copy_failed(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} does not exist", from.display()),
        )));
    }
    copy_tree(&from, &StateDir::new(copy.path()).db()).map_err(copy_failed)?;
    let mut store = Store::open(copy.path())?;
    store.shown = dir.to_owned();
    Ok(Reading {
        store,
        copy: Some(copy),
    })
}

/// Copies the directory `from` to `to`, files and folders.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn dir_error(kind: io::ErrorKind) -> StoreError {
        StoreError::Dir {
            dir: PathBuf::from("s"),
            source: io::Error::from(kind),
        }
    }

    #[test]
    fn only_a_directory_that_cannot_be_written_is_read_from_a_copy() {
        assert!(cannot_write(&dir_error(io::ErrorKind::PermissionDenied)));
        assert!(cannot_write(&dir_error(io::ErrorKind::ReadOnlyFilesystem)));
        assert!(cannot_write(&StoreError::Open {
            dir: PathBuf::from("s"),
            source: sled::Error::Io(io::Error::from(io::ErrorKind::ReadOnlyFilesystem)),
        }));
        assert!(!cannot_write(&dir_error(io::ErrorKind::NotFound)));
        assert!(!cannot_write(&StoreError::Busy {
            dir: PathBuf::from("s"),
            pid: Some(1)
        }));
    }

    #[test]
    fn a_copy_reads_what_the_store_holds_and_leaves_the_directory_untouched() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.put_last_finished(1_700_000_000).unwrap();
            store.flush().unwrap();
        }
        let listing = |p: &Path| {
            let mut out = Vec::new();
            for e in walkdir::WalkDir::new(p).sort_by_file_name() {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                out.push((e.path().to_owned(), m.len(), m.modified().unwrap()));
            }
            out
        };
        let before = listing(dir.path());
        let reading = open_copy(dir.path(), "test").unwrap();
        assert!(reading.is_copy());
        assert_eq!(
            reading.store().last_finished().unwrap(),
            Some(1_700_000_000)
        );
        let copy = reading.copy.as_ref().unwrap().path().to_owned();
        drop(reading);
        assert_eq!(listing(dir.path()), before);
        assert!(!copy.exists(), "the copy is removed");

        let _job = Store::open(dir.path()).unwrap();
        assert!(matches!(
            open_copy(dir.path(), "test"),
            Err(StoreError::Busy { .. })
        ));
    }
}
