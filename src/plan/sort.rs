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
use std::io::{BufRead as _, Write as _};
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

/// Writes sorted rows to a run file, one JSON row a line.
pub(super) fn write_run(
    dir: &Path,
    index: usize,
    rows: impl Iterator<Item = Result<(PhotoKey, Row), PlanError>>,
) -> Result<PathBuf, PlanError> {
    std::fs::create_dir_all(dir).map_err(|e| sort_error(dir, e))?;
    let path = dir.join(format!("run-{index:06}.jsonl"));
    let tmp = path.with_extension("tmp");
    let file = std::fs::File::create(&tmp).map_err(|e| sort_error(&tmp, e))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    for row in rows {
        let (_, row) = row?;
        serde_json::to_writer(&mut out, &row).map_err(|e| sort_error(&tmp, e))?;
        out.write_all(b"\n").map_err(|e| sort_error(&tmp, e))?;
    }
    out.flush().map_err(|e| sort_error(&tmp, e))?;
    drop(out);
    std::fs::rename(&tmp, &path).map_err(|e| sort_error(&path, e))?;
    Ok(path)
}

/// The rows of all runs, merged in (key, source order).
pub(super) struct Sorted {
    readers: Vec<(PathBuf, std::io::Lines<std::io::BufReader<std::fs::File>>)>,
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
            readers.push((
                path,
                std::io::BufReader::with_capacity(64 * 1024, file).lines(),
            ));
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
            Some((path, lines)) => match lines.next() {
                None => None,
                Some(line) => {
                    let line = line.map_err(|e| sort_error(path, e))?;
                    let row: Row = serde_json::from_str(&line).map_err(|e| sort_error(path, e))?;
                    Some((row.key(), row))
                }
            },
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
