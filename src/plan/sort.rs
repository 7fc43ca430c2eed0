//! The external merge sort of a pass: checked rows sorted by photo key (person
//! first) in runs of [`RUN_ROWS`], spilled to files in the state directory and
//! merged back, so a source of millions of rows is grouped by person without being
//! held in memory.

use super::check::Row;
use super::PlanError;
use crate::store::PhotoKey;
use rayon::prelude::*;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

/// Rows a pass sorts in memory before spilling them to a file.
pub const RUN_ROWS: usize = 50_000;

pub(super) fn sort_error(path: &Path, e: impl std::fmt::Display) -> PlanError {
    PlanError::Scratch(format!("{}: {e}", path.display()))
}

/// Sorts a run and writes it to a file.
pub(super) fn spill(
    dir: &Path,
    index: usize,
    run: &mut Vec<(PhotoKey, Row)>,
) -> Result<PathBuf, PlanError> {
    run.par_sort_unstable_by(|a, b| (&a.0, a.1.seq).cmp(&(&b.0, b.1.seq)));
    write_run(dir, index, run.drain(..).map(Ok))
}

/// Runs merged into one when there are this many, which bounds the files a pass
/// holds open.
pub const MAX_RUNS: usize = 128;

/// How a pass sorts: [`RUN_ROWS`] and [`MAX_RUNS`], smaller in tests.
#[derive(Debug, Clone, Copy)]
pub(super) struct SortLimits {
    pub(super) run_rows: usize,
    pub(super) max_runs: usize,
}

impl Default for SortLimits {
    fn default() -> Self {
        SortLimits {
            run_rows: RUN_ROWS,
            max_runs: MAX_RUNS,
        }
    }
}

/// Writes sorted rows to a run file: each row as its length (4 bytes, little-endian)
/// and its postcard encoding, which is several times quicker to write and read
/// back than a text encoding, and the run files never outlive the pass.
pub(super) fn write_run(
    dir: &Path,
    index: usize,
    rows: impl Iterator<Item = Result<(PhotoKey, Row), PlanError>>,
) -> Result<PathBuf, PlanError> {
    std::fs::create_dir_all(dir).map_err(|e| sort_error(dir, e))?;
    let path = dir.join(format!("run-{index:06}.rows"));
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| sort_error(&tmp, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut bytes = Vec::new();
    for row in rows {
        let (_, row) = row?;
        bytes.clear();
        bytes = postcard::to_extend(&row, bytes).map_err(|e| sort_error(&tmp, e))?;
        let len = u32::try_from(bytes.len()).map_err(|e| sort_error(&tmp, e))?;
        out.write_all(&len.to_le_bytes())
            .and_then(|()| out.write_all(&bytes))
            .map_err(|e| sort_error(&tmp, e))?;
    }
    out.flush().map_err(|e| sort_error(&tmp, e))?;
    drop(out);
    std::fs::rename(&tmp, &path).map_err(|e| sort_error(&path, e))?;
    Ok(path)
}

/// The rows of all runs, merged in (key, source order).
pub(super) struct Sorted {
    readers: Vec<RunReader>,
    memory: std::vec::IntoIter<(PhotoKey, Row)>,
    /// The next row of each source (files, then memory), smallest on top.
    heap: BinaryHeap<Reverse<Head>>,
}

pub(super) struct Head {
    key: PhotoKey,
    seq: u64,
    source: usize,
    row: Row,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        (&self.key, self.seq, self.source).cmp(&(&other.key, other.seq, other.source))
    }
}

impl Sorted {
    pub(super) fn new(
        runs: Vec<PathBuf>,
        memory: Vec<(PhotoKey, Row)>,
    ) -> Result<Sorted, PlanError> {
        let mut readers = Vec::with_capacity(runs.len());
        for path in runs {
            let file = std::fs::File::open(&path).map_err(|e| sort_error(&path, e))?;
            readers.push(RunReader {
                path,
                file: std::io::BufReader::with_capacity(64 * 1024, file),
                bytes: Vec::new(),
            });
        }
        let mut sorted = Sorted {
            readers,
            memory: memory.into_iter(),
            heap: BinaryHeap::new(),
        };
        for source in 0..=sorted.readers.len() {
            sorted.refill(source)?;
        }
        Ok(sorted)
    }

    fn refill(&mut self, source: usize) -> Result<(), PlanError> {
        let next = match self.readers.get_mut(source) {
            Some(reader) => reader.next_row()?.map(|row| (row.key(), row)),
            None => self.memory.next(),
        };
        if let Some((key, row)) = next {
            self.heap.push(Reverse(Head {
                key,
                seq: row.seq,
                source,
                row,
            }));
        }
        Ok(())
    }
}

/// One run file read back row by row.
struct RunReader {
    path: PathBuf,
    file: std::io::BufReader<std::fs::File>,
    bytes: Vec<u8>,
}

impl RunReader {
    /// The next row, or `None` at the end of the file.
    fn next_row(&mut self) -> Result<Option<Row>, PlanError> {
        let mut len = [0u8; 4];
        match self.file.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(sort_error(&self.path, e)),
        }
        self.bytes.resize(u32::from_le_bytes(len) as usize, 0);
        self.file
            .read_exact(&mut self.bytes)
            .map_err(|e| sort_error(&self.path, e))?;
        postcard::from_bytes(&self.bytes)
            .map(Some)
            .map_err(|e| sort_error(&self.path, e))
    }
}

impl Iterator for Sorted {
    type Item = Result<(PhotoKey, Row), PlanError>;

    fn next(&mut self) -> Option<Self::Item> {
        let Reverse(head) = self.heap.pop()?;
        if let Err(e) = self.refill(head.source) {
            return Some(Err(e));
        }
        Some(Ok((head.key, head.row)))
    }
}
