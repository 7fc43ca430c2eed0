//! The plan: which photos of which person are sent, which never can be, and how the
//! work splits into calls — decided before the first call and written into the
//! progress store.
//!
//! # One planning pass ([`build`])
//!
//! 1. **Gather.** The source's records are read in batches of [`BATCH`]. Each batch
//!    is checked in parallel (rayon): ids by the service's rules, URLs, and for a
//!    local file (unless `check_content` is off) that it exists, is not empty, is an
//!    image by its content ([`ImageKind::sniff`]), fits one request when resizing is
//!    off, and its content hash (streamed, never held in memory). The checked rows
//!    are sorted by [`PhotoKey`] (person first) in runs of [`RUN_ROWS`]; full runs
//!    are spilled to files in the state directory (`plan-sort/`, removed after the
//!    pass). A manifest of millions of rows, a person's rows spread through it, is
//!    so grouped by person without holding it in memory.
//! 2. **Decide, person by person.** The runs are merged back in key order. For each
//!    person, with its rows in source order and what the store knew of it from
//!    earlier runs: the person's name, tag and groups are merged (a conflicting name
//!    or tag fails the later line, naming both); every photo gets its state (below)
//!    and is written once; one [`PersonEntry`] is written for a valid person; the
//!    calls are counted with [`chunks`].
//!
//! Memory is bounded by [`RUN_ROWS`], by the photos of one person, and by the
//! store's cache. Writing each photo once, in key order, is what the store does
//! fastest: on a large archive the plan's time is mostly the store's.
//!
//! # A photo's state after planning
//!
//! - Invalid input (missing, empty, not an image, too large with resizing off, bad
//!   person or group id, conflicting name or tag, a URL that is not http(s)):
//!   `Failed(Input)`, its message naming the file and, for a manifest, the line.
//! - Not a photo by its name, a link not followed: `Skipped`.
//! - Known from an earlier run with unchanged content: its state is kept (`Enrolled`,
//!   even when its file is gone now, `InDoubt`, `Failed(Permanent)` unless
//!   `retry_failed`); `Failed(RetriesExhausted)`
//!   and the planner's own decisions (`Pending`, `Duplicate`, `Skipped`, an input
//!   failure now fixed) are decided again below.
//! - Changed content (another hash) or new: decided below.
//! - Deciding, in source order: a photo whose content equals a photo of the same
//!   person already kept (enrolled, in doubt, or planned earlier in source order) is
//!   a `Duplicate` naming it; past [`MAX_FACES_PER_PERSON`] (counting faces already
//!   enrolled and photos in doubt) it is `Skipped`; otherwise `Pending`.
//!
//! The same photo (same person, same path or URL) listed twice is recorded once; the
//! second listing is reported as a duplicate in the summary.
//!
//! A person whose earlier run ended `PersonState::Failed` (no photo could seed it)
//! and that has photos to send again goes back to `PersonState::New`; a person on the
//! service whose groups, name or tag changed in the source becomes
//! `PersonState::Stale` (the engine brings it in line); any other known person keeps
//! its state.

use crate::limits::{
    MAX_FACES_PER_PERSON, MAX_IMAGES_PER_ADDFACE, MAX_NAME_BYTES, MAX_REQUEST_BYTES, MAX_TAG_BYTES,
    REQUEST_ENVELOPE_BYTES,
};
use crate::model::{check_id, ContentHash, GroupId, ImageKind, ImageRef, PersonId};
use crate::normalize::{self, NormalizeOptions};
use crate::shard::Shard;
use crate::source::{PhotoRecord, Problem, ProblemKind, SourceItem, SourceSpec};
use crate::store::{
    Failure, FailureKind, GivenFields, NotTaken, Origin, PersonEntry, PersonFields, PersonState,
    PhotoEntry, PhotoKey, PhotoState, Store, StoreError,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::io::{BufRead as _, Read as _, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Records checked together (in parallel) and written to the store in one go.
pub const BATCH: usize = 4096;

/// Problems kept in a [`PlanSummary`] to show the operator; the store holds all.
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// How to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// How photos that do not fit are re-encoded before they are sent. With it
    /// disabled (`--no-resize`), a photo too large for one request on its own is
    /// invalid input; with it enabled, the plan counts the photos that will be
    /// re-encoded (from their headers) so the dry run can say so.
    pub normalize: NormalizeOptions,
    /// Read local files (existence, size, image kind, content hash). Off records only
    /// the paths, for very large archives already known to be sound.
    pub check_content: bool,
    /// Plan again photos the service refused for good in an earlier run.
    pub retry_failed: bool,
    /// Plan again photos an earlier run left because the service said their person
    /// was full; the engine reads the person's face count before it sends them.
    pub recheck_full: bool,
    /// The request body limit the chunks are cut to.
    pub max_request_bytes: u64,
    /// A directory tree without a photo is a plan with nothing to do, not an error.
    pub allow_empty: bool,
    /// A source that shares no photo with the job's earlier sources joins the job
    /// anyway (without it, such a source is refused as a probable mistake).
    pub new_source: bool,
    /// The part of the source this job takes (`--shard I/N`); the whole by default.
    pub shard: Shard,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            normalize: NormalizeOptions::default(),
            check_content: true,
            retry_failed: false,
            recheck_full: false,
            max_request_bytes: MAX_REQUEST_BYTES,
            allow_empty: false,
            new_source: false,
            shard: Shard::WHOLE,
        }
    }
}

impl PlanOptions {
    /// The most image bytes one request can carry.
    pub fn image_budget(&self) -> u64 {
        self.max_request_bytes
            .saturating_sub(REQUEST_ENVELOPE_BYTES)
    }
}

/// Why a plan could not be made at all.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("--group {group:?} {error}")]
    Group {
        group: String,
        error: crate::model::IdError,
    },
    #[error("cannot sort the source's rows in the state directory: {0}")]
    Scratch(String),
    #[error("{0}; nothing was sent")]
    Refused(String),
    #[error(
        "{root}: no photo found ({found}); an unmounted share or a wrong path? Pass \
         --allow-empty if an empty source is expected"
    )]
    Empty { root: String, found: String },
    #[error(
        "{given}: shares no photo with this job's sources ({known}); a wrong --state? \
         Pass --new-source if it is meant to join the job; nothing was sent"
    )]
    Unrelated { given: String, known: String },
    #[error(
        "--max-request-bytes {given} leaves no room for a photo (the request envelope \
         takes {REQUEST_ENVELOPE_BYTES} bytes)"
    )]
    RequestLimit { given: u64 },
}

/// A problem shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    /// `"invalid"`, `"skipped"` or `"duplicate"`.
    pub status: &'static str,
    /// What is wrong, starting with the place (file, and line of a manifest).
    pub message: String,
}

/// Calls the plan will take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCount {
    pub newperson: usize,
    pub addface: usize,
}

impl CallCount {
    pub fn total(&self) -> usize {
        self.newperson + self.addface
    }
}

/// What a planning pass found and decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanSummary {
    /// The source as named by the operator.
    pub source: String,
    pub generation: u64,
    /// Valid persons in the source.
    pub persons: usize,
    /// Persons this job has not created yet and will create.
    pub new_persons: usize,
    /// Persons (new or known) with photos to send.
    pub persons_with_work: usize,
    /// Known persons whose groups, name or tag changed in the source: the run brings
    /// them in line on the service (getinfo, then addgroupids and setinfo as needed).
    pub persons_to_update: usize,
    /// Input photos recorded in the store (each once).
    pub photos: usize,
    /// Photos to send (`Pending`).
    pub pending: usize,
    /// Photos to send that will be re-encoded to fit first (read from their headers).
    pub to_normalize: usize,
    /// Photos sent before whose outcome is unknown; they are sent again.
    pub in_doubt: usize,
    pub enrolled: usize,
    pub duplicate: usize,
    pub skipped: usize,
    /// `Failed(Input)`.
    pub invalid: usize,
    /// Failed in an earlier run and not retried.
    pub failed_before: usize,
    /// Listings of a photo already listed (same person, same path or URL).
    pub relisted: usize,
    /// Entries of the source not taken as photos (hidden or stray files, links,
    /// empty person folders, unusable manifest rows), by reason in a few words.
    pub not_taken: BTreeMap<&'static str, usize>,
    /// Of those, the ones that are unusable input (they fail the run).
    pub not_taken_failed: usize,
    /// Photos listed by the source, before listings of the same photo are merged.
    pub listed: usize,
    /// Whether a listed photo was known to the job already (counted, up to one, only
    /// for a source the job has not planned before).
    pub known: usize,
    pub calls: CallCount,
    /// The first [`MAX_LISTED_PROBLEMS`] problems, in the order found.
    pub problems: Vec<PlanProblem>,
    /// All problems, listed or not.
    pub problems_total: usize,
    /// The shard planned, and what the source holds for the other shards.
    pub other_shards: Option<OtherShardsCount>,
}

/// What a shard's plan left to the other shards of the job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtherShardsCount {
    pub shard: Shard,
    pub persons: usize,
    pub photos: usize,
}

impl PlanSummary {
    fn problem(&mut self, status: &'static str, message: String) {
        self.problems_total += 1;
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(PlanProblem { status, message });
        }
    }
}

/// A photo's size as [`chunks`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkItem {
    /// Bytes the photo adds to a request (a file's size; a URL's length).
    pub bytes: u64,
    pub is_url: bool,
}

/// Splits a person's photos (in order) into `addface` chunks.
///
/// Each chunk is a run of consecutive items: at most [`MAX_IMAGES_PER_ADDFACE`]
/// photos, at most `max_request_bytes − REQUEST_ENVELOPE_BYTES` bytes of images, all
/// files or all URLs. No more than `room` photos are put in chunks in all; items past
/// that are in no chunk. An item over the byte budget on its own is in no chunk
/// either: the caller fails it (or re-encodes it first). Chunks are in item order.
pub fn chunks(items: &[ChunkItem], room: usize, max_request_bytes: u64) -> Vec<Range<usize>> {
    let budget = max_request_bytes.saturating_sub(REQUEST_ENVELOPE_BYTES);
    let mut out = Vec::new();
    let mut placed = 0;
    // The chunk being filled and its bytes.
    let mut open: Option<(Range<usize>, u64)> = None;
    for (i, item) in items.iter().enumerate() {
        if placed == room {
            break;
        }
        if item.bytes > budget {
            out.extend(open.take().map(|(r, _)| r));
            continue;
        }
        if let Some((r, bytes)) = &open {
            if r.len() == MAX_IMAGES_PER_ADDFACE
                || bytes + item.bytes > budget
                || items[r.start].is_url != item.is_url
            {
                out.extend(open.take().map(|(r, _)| r));
            }
        }
        match &mut open {
            Some((r, bytes)) => {
                r.end = i + 1;
                *bytes += item.bytes;
            }
            None => open = Some((i..i + 1, item.bytes)),
        }
        placed += 1;
    }
    out.extend(open.map(|(r, _)| r));
    out
}

/// One person's work for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonWork {
    pub person: PersonEntry,
    /// The person's `Pending` and `InDoubt` photos of the current plan, in source
    /// order.
    pub photos: Vec<(PhotoKey, PhotoEntry)>,
    /// Faces this job already has on the service for the person.
    pub enrolled: usize,
}

/// The persons with something to do in the current plan, in person id order, read
/// from the store one person at a time.
pub fn pending_persons(store: &Store) -> impl Iterator<Item = Result<PersonWork, StoreError>> + '_ {
    let (generation, error) = match store.meta() {
        Ok(meta) => (meta.generation, None),
        Err(e) => (0, Some(e)),
    };
    PendingPersons {
        store,
        photos: (Box::new(store.photos()) as PhotoIter<'_>).peekable(),
        generation,
        error,
    }
}

type PhotoIter<'a> = Box<dyn Iterator<Item = Result<(PhotoKey, PhotoEntry), StoreError>> + 'a>;

struct PendingPersons<'a> {
    store: &'a Store,
    photos: std::iter::Peekable<PhotoIter<'a>>,
    generation: u64,
    error: Option<StoreError>,
}

impl Iterator for PendingPersons<'_> {
    type Item = Result<PersonWork, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        loop {
            let (key, first) = match self.photos.next()? {
                Ok(item) => item,
                Err(e) => return Some(Err(e)),
            };
            let person = first.person.clone();
            let mut photos = Vec::new();
            let mut enrolled = 0;
            let mut take = |key: PhotoKey, entry: PhotoEntry, generation: u64| match entry.state {
                PhotoState::Enrolled { .. } => enrolled += 1,
                PhotoState::Pending | PhotoState::InDoubt if entry.generation == generation => {
                    photos.push((key, entry))
                }
                _ => {}
            };
            take(key, first, self.generation);
            while let Some(Ok((_, next))) = self.photos.peek() {
                if next.person != person {
                    break;
                }
                let Some(Ok((key, entry))) = self.photos.next() else {
                    unreachable!("peeked")
                };
                take(key, entry, self.generation);
            }
            if photos.is_empty() {
                // Nothing to send; still work when the person's fields changed.
                match self.store.person(&person) {
                    Ok(Some(entry)) if entry.state == PersonState::Stale => {
                        return Some(Ok(PersonWork {
                            person: entry,
                            photos,
                            enrolled,
                        }))
                    }
                    Ok(_) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            photos.sort_by_key(|(_, e)| e.seq);
            match self.store.person(&person) {
                Ok(Some(entry)) => {
                    return Some(Ok(PersonWork {
                        person: entry,
                        photos,
                        enrolled,
                    }))
                }
                // Photos of a person that is not planned are never pending.
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// One listed photo after its checks, as sorted by person on its way to the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Row {
    person: String,
    /// The person as written, when that was not NFC.
    #[serde(default)]
    written: Option<String>,
    image: ImageRef,
    origin: Origin,
    seq: u64,
    groups: Vec<String>,
    name: Option<String>,
    tag: Option<String>,
    hash: Option<ContentHash>,
    size: Option<u64>,
    /// The file's modification time, when it can vouch for the hash (see [`inspect`]).
    #[serde(default)]
    modified: Option<u64>,
    /// The photo will be re-encoded to fit before it is sent.
    #[serde(default)]
    normalize: bool,
    /// The person cannot be planned (bad id, folder name not UTF-8).
    person_error: Option<String>,
    /// A group, name or tag of this line is unusable.
    field_error: Option<String>,
    verdict: Verdict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Verdict {
    Ok,
    Skip(String),
    Invalid(String),
}

impl Row {
    fn key(&self) -> PhotoKey {
        PhotoKey::new(&self.person, &self.image)
    }
}

/// One planning pass over `source` into `store`. See the module documentation.
pub fn build(
    store: &Store,
    source: &SourceSpec,
    options: &PlanOptions,
) -> Result<PlanSummary, PlanError> {
    if options.image_budget() == 0 {
        return Err(PlanError::RequestLimit {
            given: options.max_request_bytes,
        });
    }
    if let SourceSpec::Tree { groups, .. } = source {
        for group in groups {
            check_id(group).map_err(|error| PlanError::Group {
                group: group.clone(),
                error,
            })?;
        }
    }
    let (items, others) = options.shard.split(source.open()?);
    // Count calls with the request limit earlier runs learned, as the engine cuts them.
    let learned = PlanOptions {
        max_request_bytes: store.request_limit()?.budget(options.max_request_bytes),
        ..options.clone()
    };
    let options = &learned;

    let id = source.id();
    let mut meta = store.meta()?;
    meta.generation += 1;
    meta.source = Some(source.describe());
    store.put_meta(&meta)?;
    let generation = meta.generation;
    // A source the job has not seen must share a photo with it, unless it is meant.
    let check_shared =
        !options.new_source && !meta.sources.is_empty() && !meta.sources.contains_key(&id);
    let mut summary = PlanSummary {
        source: source.describe(),
        generation,
        ..PlanSummary::default()
    };

    store.clear_not_taken(&id)?;
    let sort_dir = store.dir().join(SORT_DIR);
    let _ = std::fs::remove_dir_all(&sort_dir);
    let result = (|| {
        let started = std::time::Instant::now();
        let previous = |key: &PhotoKey| store.photo(key).ok().flatten();
        let pass = Pass {
            source: &id,
            generation,
            check_shared,
        };
        let sorted = gather(
            store,
            &pass,
            &sort_dir,
            items,
            options,
            &previous,
            SortLimits::default(),
            &mut summary,
        )?;
        if check_shared && summary.listed > 0 && summary.known == 0 {
            {
                return Err(PlanError::Unrelated {
                    given: source.describe(),
                    known: meta.sources.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
        let mut meta = store.meta()?;
        meta.sources.insert(id.clone(), generation);
        store.put_meta(&meta)?;
        tracing::debug!("plan: rows gathered and sorted in {:?}", started.elapsed());
        let started = std::time::Instant::now();
        decide(store, sorted, &pass, options, &mut summary)?;
        tracing::debug!("plan: persons decided in {:?}", started.elapsed());
        Ok::<_, PlanError>(())
    })();
    let _ = std::fs::remove_dir_all(&sort_dir);
    result?;
    store.flush()?;
    if options.shard.is_split() {
        let others = others.lock().unwrap_or_else(|e| e.into_inner());
        summary.other_shards = Some(OtherShardsCount {
            shard: options.shard,
            persons: others.persons.len(),
            photos: others.photos,
        });
    }
    let others_photos = summary.other_shards.map_or(0, |o| o.photos);
    if let SourceSpec::Tree { root, .. } = source {
        if summary.photos == 0
            && summary.not_taken_failed == 0
            && others_photos == 0
            && !options.allow_empty
        {
            let found = if summary.not_taken.is_empty() {
                "the folder is empty".to_owned()
            } else {
                format!("only {}", not_taken_words(&summary.not_taken))
            };
            return Err(PlanError::Empty {
                root: root.display().to_string(),
                found,
            });
        }
    }
    Ok(summary)
}

/// Entries not taken, by reason: "3 hidden, 1 empty person folder".
pub fn not_taken_words(by_class: &BTreeMap<&'static str, usize>) -> String {
    by_class
        .iter()
        .map(|(class, n)| format!("{n} {class}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Phase 1: checks the source's records in parallel batches and sorts them by
/// photo key (person first) in runs of [`RUN_ROWS`], spilled to files.
/// What every step of one planning pass needs to know of it.
struct Pass<'a> {
    /// The source's id ([`SourceSpec::id`]).
    source: &'a str,
    generation: u64,
    /// Count the listed photos the job already knows ([`PlanSummary::known`]).
    check_shared: bool,
}

#[allow(clippy::too_many_arguments)]
fn gather(
    store: &Store,
    pass: &Pass<'_>,
    sort_dir: &Path,
    mut items: Box<dyn Iterator<Item = SourceItem> + Send>,
    options: &PlanOptions,
    previous: &Previous<'_>,
    limits: SortLimits,
    summary: &mut PlanSummary,
) -> Result<Sorted, PlanError> {
    let mut runs = Vec::new();
    let mut written = 0;
    let mut run: Vec<(PhotoKey, Row)> = Vec::new();
    let mut batch: Vec<SourceItem> = Vec::with_capacity(BATCH);
    loop {
        batch.clear();
        batch.extend(items.by_ref().take(BATCH));
        if batch.is_empty() {
            break;
        }
        let checked: Vec<Result<(PhotoKey, Row), Box<Problem>>> = batch
            .par_drain(..)
            .map(|item| {
                let row = check(item, options, previous)?;
                Ok((row.key(), row))
            })
            .collect();
        for c in checked {
            match c {
                Ok(row) => {
                    summary.listed += 1;
                    if pass.check_shared && summary.known == 0 && store.photo(&row.0)?.is_some() {
                        summary.known += 1;
                    }
                    run.push(row)
                }
                Err(problem) => not_taken(store, pass, *problem, summary)?,
            }
        }
        if run.len() >= limits.run_rows {
            written += 1;
            runs.push(spill(sort_dir, written, &mut run)?);
        }
        if runs.len() >= limits.max_runs {
            // Merge the runs into one, so the final merge never opens more files
            // than the system allows.
            written += 1;
            let inputs = std::mem::take(&mut runs);
            let merged = Sorted::new(inputs.clone(), Vec::new())?;
            runs.push(write_run(sort_dir, written, merged)?);
            for path in inputs {
                let _ = std::fs::remove_file(path);
            }
        }
    }
    run.par_sort_unstable_by(|a, b| (&a.0, a.1.seq).cmp(&(&b.0, b.1.seq)));
    Sorted::new(runs, run)
}

/// Records an entry of the source that is no photo to plan: in the store (the report
/// lists it), in the summary by reason, and in the log. A problem that refuses the
/// whole source ends the plan.
fn not_taken(
    store: &Store,
    pass: &Pass<'_>,
    problem: Problem,
    summary: &mut PlanSummary,
) -> Result<(), PlanError> {
    let failed = match problem.kind {
        ProblemKind::Refused => return Err(PlanError::Refused(problem.message)),
        ProblemKind::Skip => false,
        ProblemKind::Invalid | ProblemKind::InvalidPerson => true,
    };
    if failed {
        tracing::warn!("{}", problem.message);
        summary.not_taken_failed += 1;
    } else {
        tracing::info!("not taken: {}", problem.message);
    }
    *summary.not_taken.entry(problem.class).or_default() += 1;
    summary.problem(
        if failed { "invalid" } else { "ignored" },
        problem.message.clone(),
    );
    store.put_not_taken(&NotTaken {
        origin: problem.origin,
        failed,
        class: problem.class.to_owned(),
        message: problem.message,
        cells: problem.cells,
        generation: pass.generation,
        source: Some(pass.source.to_owned()),
    })?;
    Ok(())
}

/// Threads writing a pass's photos into the store.
const WRITERS: usize = 1;

/// Rows a pass sorts in memory before spilling them to a file.
pub const RUN_ROWS: usize = 50_000;

/// The folder of the state directory that holds a pass's sorted runs.
const SORT_DIR: &str = "plan-sort";

fn sort_error(path: &Path, e: impl std::fmt::Display) -> PlanError {
    PlanError::Scratch(format!("{}: {e}", path.display()))
}

/// Sorts a run and writes it to a file.
fn spill(dir: &Path, index: usize, run: &mut Vec<(PhotoKey, Row)>) -> Result<PathBuf, PlanError> {
    run.par_sort_unstable_by(|a, b| (&a.0, a.1.seq).cmp(&(&b.0, b.1.seq)));
    write_run(dir, index, run.drain(..).map(Ok))
}

/// Runs merged into one when there are this many, which bounds the files a pass
/// holds open.
pub const MAX_RUNS: usize = 128;

/// How a pass sorts: [`RUN_ROWS`] and [`MAX_RUNS`], smaller in tests.
#[derive(Debug, Clone, Copy)]
struct SortLimits {
    run_rows: usize,
    max_runs: usize,
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
fn write_run(
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
struct Sorted {
    readers: Vec<(PathBuf, std::io::Lines<std::io::BufReader<std::fs::File>>)>,
    memory: std::vec::IntoIter<(PhotoKey, Row)>,
    /// The next row of each source (files, then memory), smallest on top.
    heap: BinaryHeap<Reverse<Head>>,
}

struct Head {
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
    fn new(runs: Vec<PathBuf>, memory: Vec<(PhotoKey, Row)>) -> Result<Sorted, PlanError> {
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

/// What an earlier run recorded of a photo, by its key.
type Previous<'a> = dyn Fn(&PhotoKey) -> Option<PhotoEntry> + Sync + 'a;

/// Checks one record: everything that can be told from the record and its file
/// alone (and from what an earlier run recorded of that file). `Err` is a problem of
/// the source with no photo to record.
fn check(
    item: SourceItem,
    options: &PlanOptions,
    previous: &Previous<'_>,
) -> Result<Row, Box<Problem>> {
    let (record, verdict, person_error) = match item {
        SourceItem::Photo(record) => (record, Verdict::Ok, None),
        SourceItem::Problem(mut problem) => match (problem.photo.take(), problem.kind) {
            (None, _) | (_, ProblemKind::Refused) => return Err(Box::new(problem)),
            (Some(r), ProblemKind::Skip) => (r, Verdict::Skip(problem.message), None),
            (Some(r), ProblemKind::Invalid) => (r, Verdict::Invalid(problem.message), None),
            (Some(r), ProblemKind::InvalidPerson) => (
                r,
                Verdict::Invalid(problem.message.clone()),
                Some(problem.message),
            ),
        },
    };
    let PhotoRecord {
        person,
        written,
        image,
        groups,
        name,
        tag,
        origin,
        seq,
    } = record;
    let is_manifest = matches!(origin, Origin::Manifest { .. });
    let person_error = person_error.or_else(|| {
        check_id(&person).err().map(|e| {
            let field = if is_manifest {
                "person_id"
            } else {
                "person folder"
            };
            format!("{origin}: {field} {person:?} {e}")
        })
    });
    let field_error = groups
        .iter()
        .find_map(|g| {
            let field = if is_manifest {
                "group_ids: group"
            } else {
                "group folder"
            };
            if g.contains(',') {
                return Some(format!(
                    "{origin}: {field} {g:?} holds a comma; separate groups with \"{}\"",
                    crate::source::manifest::GROUP_SEPARATOR
                ));
            }
            check_id(g)
                .err()
                .map(|e| format!("{origin}: {field} {g:?} {e}"))
        })
        .or_else(|| too_long(&origin, "person_name", name.as_deref(), MAX_NAME_BYTES))
        .or_else(|| too_long(&origin, "tag", tag.as_deref(), MAX_TAG_BYTES));
    let mut row = Row {
        person,
        written,
        image,
        origin,
        seq,
        groups,
        name,
        tag,
        hash: None,
        size: None,
        modified: None,
        normalize: false,
        person_error,
        field_error,
        verdict,
    };
    if options.check_content && matches!(row.verdict, Verdict::Ok) {
        if let ImageRef::File(path) = &row.image {
            let before = previous(&row.key());
            match inspect(path, options, before.as_ref()) {
                Ok(inspected) => {
                    row.size = Some(inspected.size);
                    row.hash = Some(inspected.hash);
                    row.modified = inspected.modified;
                    // A photo already settled by an earlier run is not sent again: no
                    // need to read its header to count it.
                    let settled = inspected.reused && before.is_some_and(|b| b.state.is_final());
                    row.normalize = options.normalize.enabled
                        && !settled
                        && normalize::decide(path, &options.normalize)
                            .is_ok_and(|d| d != normalize::Decision::AsIs);
                }
                Err(message) => {
                    let place = match &row.origin {
                        Origin::Tree { .. } => String::new(),
                        o @ Origin::Manifest { .. } => format!("{o}: "),
                    };
                    row.verdict = Verdict::Invalid(format!("{place}{}: {message}", path.display()));
                }
            }
        }
    }
    Ok(row)
}

fn too_long(origin: &Origin, field: &str, value: Option<&str>, max: usize) -> Option<String> {
    let len = value?.len();
    (len > max).then(|| {
        format!("{origin}: {field} is {len} bytes long, over the service's limit of {max}")
    })
}

/// A local photo as the planner found it.
struct Inspected {
    size: u64,
    hash: ContentHash,
    /// The modification time to record with the hash, when it can vouch for it.
    modified: Option<u64>,
    /// The hash is an earlier run's, not read again.
    reused: bool,
}

/// How long after its last change a file's modification time is trusted to tell a
/// later run that its content is unchanged. A file changed again within the same
/// tick of the file system's clock could keep its time; one older than this when it
/// was hashed cannot have been changed in that tick unnoticed.
const SETTLED_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads a local photo: its size and content hash, or why it cannot be sent.
///
/// A file whose size and modification time are those an earlier run recorded with
/// its hash is not read again (as `make` and `rsync` judge files): a nightly run over
/// a large archive then costs one `stat` per unchanged photo, not a read of every
/// byte. The time is recorded only when the file had settled before it was hashed
/// (see [`SETTLED_AFTER`]); otherwise the next run reads the file again.
fn inspect(
    path: &Path,
    options: &PlanOptions,
    before: Option<&PhotoEntry>,
) -> Result<Inspected, String> {
    // Looked at before it is opened: opening a FIFO would wait for a writer forever.
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "file not found".to_owned(),
        _ => format!("cannot read: {e}"),
    })?;
    if !meta.is_file() {
        return Err(if meta.is_dir() {
            "not a regular file (a folder)".into()
        } else {
            "not a regular file (a pipe, socket or device); not opened".into()
        });
    }
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    let size = meta.len();
    if size == 0 {
        return Err("the file is empty".into());
    }
    if !options.normalize.enabled && size > options.image_budget() {
        return Err(format!(
            "{size} bytes, over the {} bytes one request can carry (resizing is off)",
            options.image_budget()
        ));
    }
    let modified = meta.modified().ok();
    let modified_nanos = modified
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_nanos()).ok());
    if let Some(before) = before {
        if let (Some(hash), Some(_)) = (before.hash, before.modified) {
            if before.size == Some(size) && before.modified == modified_nanos {
                return Ok(Inspected {
                    size,
                    hash,
                    modified: modified_nanos,
                    reused: true,
                });
            }
        }
    }
    let mut head = [0u8; normalize::SNIFF_BYTES];
    let mut got = 0;
    while got < head.len() {
        match file.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read: {e}")),
        }
    }
    if ImageKind::sniff(&head[..got]).is_none() {
        // HEIC, WebP and TIFF photos travel as JPEG copies, so only with resizing on.
        match normalize::foreign_format(&head[..got]) {
            Some(format) if !options.normalize.enabled => {
                return Err(format!(
                    "a {format} photo, which the service does not take; it is sent as a \
                     JPEG copy, and resizing is off"
                ));
            }
            Some(_) => {}
            None => {
                return Err(
                    "not an image (content is not JPEG, PNG, BMP, GIF, HEIC/HEIF, \
                     WebP or TIFF)"
                        .into(),
                )
            }
        }
    }
    let hash = ContentHash::of_reader((&head[..got]).chain(file))
        .map_err(|e| format!("cannot read: {e}"))?;
    let settled = modified.is_some_and(|m| {
        std::time::SystemTime::now()
            .duration_since(m)
            .is_ok_and(|age| age >= SETTLED_AFTER)
    });
    Ok(Inspected {
        size,
        hash,
        modified: modified_nanos.filter(|_| settled),
        reused: false,
    })
}

/// Phase 2: reads the sorted rows person by person, decides each person and writes
/// its photos (on a writer thread, so deciding and writing overlap).
fn decide(
    store: &Store,
    mut sorted: Sorted,
    pass: &Pass<'_>,
    options: &PlanOptions,
    summary: &mut PlanSummary,
) -> Result<(), PlanError> {
    // A store without photos has no earlier entries to look up.
    let fresh = store.photo_count() == 0;
    let (send, receive) = crossbeam_channel::bounded::<Vec<(PhotoKey, PhotoEntry)>>(2);
    std::thread::scope(|scope| {
        // Batches hold neighbouring keys, so writers on different batches mostly
        // work on different parts of the tree.
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let receive = receive.clone();
                scope.spawn(move || {
                    for batch in receive {
                        for (key, entry) in &batch {
                            store.put_photo(key, entry)?;
                        }
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .collect();
        drop(receive);
        let result = (|| {
            let mut out = Vec::with_capacity(BATCH);
            let mut rows: Vec<(PhotoKey, Row)> = Vec::new();
            for item in sorted.by_ref() {
                let (key, row) = item?;
                if rows.first().is_some_and(|(_, r)| r.person != row.person) {
                    plan_person(store, fresh, &mut rows, pass, options, summary, &mut out)?;
                    if out.len() >= BATCH && send.send(std::mem::take(&mut out)).is_err() {
                        break;
                    }
                }
                rows.push((key, row));
            }
            if !rows.is_empty() {
                plan_person(store, fresh, &mut rows, pass, options, summary, &mut out)?;
            }
            let _ = send.send(out);
            Ok::<_, PlanError>(())
        })();
        drop(send);
        let written: Vec<_> = writers
            .into_iter()
            .map(|w| w.join().expect("a store writer does not panic"))
            .collect();
        result?;
        written.into_iter().collect::<Result<(), _>>()?;
        Ok(())
    })
}

/// Decides one person from its rows (drained from `rows`, sorted by key then source
/// order) and what the store knew of it, and queues its photos in `out`.
fn plan_person(
    store: &Store,
    fresh: bool,
    rows: &mut Vec<(PhotoKey, Row)>,
    pass: &Pass<'_>,
    options: &PlanOptions,
    summary: &mut PlanSummary,
    out: &mut Vec<(PhotoKey, PhotoEntry)>,
) -> Result<(), PlanError> {
    let generation = pass.generation;
    // The same photo listed again: keep the first listing.
    rows.dedup_by(|later, first| {
        let again = later.0 == first.0;
        if again {
            summary.relisted += 1;
            summary.problem(
                "duplicate",
                format!(
                    "{}: {} is listed again for person {:?}; first listed at {}",
                    later.1.origin, later.1.image, later.1.person, first.1.origin
                ),
            );
        }
        again
    });
    rows.sort_by_key(|(_, r)| r.seq);
    let person = rows[0].1.person.clone();
    let mut old: HashMap<PhotoKey, PhotoEntry> = HashMap::new();
    if !fresh {
        for item in store.photos_of(&person) {
            let (k, e) = item?;
            old.insert(k, e);
        }
    }

    // The person: its groups, name and tag, merged in source order. A name or tag
    // that differs from the one given first fails its line.
    let person_error = rows
        .iter()
        .find_map(|(_, r)| r.person_error.clone())
        .or_else(|| spelled_twice(rows));
    let mut fields = PersonFields::default();
    let mut name_from: Option<&Origin> = None;
    let mut tag_from: Option<&Origin> = None;
    let mut conflicts: Vec<Option<String>> = vec![None; rows.len()];
    if person_error.is_none() {
        for (i, (_, r)) in rows.iter().enumerate() {
            if r.field_error.is_some() {
                continue;
            }
            let mut conflict = None;
            for (field, value, kept, from) in [
                ("person_name", &r.name, &fields.name, name_from),
                ("tag", &r.tag, &fields.tag, tag_from),
            ] {
                if let (Some(value), Some(kept), Some(from)) = (value, kept, from) {
                    if value != kept && conflict.is_none() {
                        conflict = Some(format!(
                            "{}: {field} {value:?} for person {person:?} conflicts with {kept:?} at {from}",
                            r.origin
                        ));
                    }
                }
            }
            if conflict.is_some() {
                conflicts[i] = conflict;
                continue;
            }
            if fields.name.is_none() && r.name.is_some() {
                fields.name = r.name.clone();
                name_from = Some(&r.origin);
            }
            if fields.tag.is_none() && r.tag.is_some() {
                fields.tag = r.tag.clone();
                tag_from = Some(&r.origin);
            }
            for g in &r.groups {
                if let Ok(g) = GroupId::new(g.as_str()) {
                    if !fields.groups.contains(&g) {
                        fields.groups.push(g);
                    }
                }
            }
        }
    }
    let no_group = person_error.is_none() && fields.groups.is_empty();

    // Each photo's state before the dedupe and the cap.
    let invalid = |message: String| {
        Carry::Keep(PhotoState::Failed(Failure {
            kind: FailureKind::Input,
            code: None,
            message,
        }))
    };
    let carries: Vec<Carry> = rows
        .iter()
        .zip(&conflicts)
        .map(|((key, r), conflict)| {
            let before = old.get(key);
            if let Some(enrolled @ PhotoState::Enrolled { .. }) = before.map(|b| &b.state) {
                // The face is on the service whatever the input says now (a file
                // moved away, a name changed), unless the photo itself changed.
                if !matches!(carry(before, r.hash, options), Carry::Open) {
                    return Carry::Keep(enrolled.clone());
                }
            }
            if let Some(e) = &r.person_error {
                invalid(e.clone())
            } else if let Some(e) = &person_error {
                invalid(format!(
                    "{}: person {person:?} cannot be planned: {e}",
                    r.origin
                ))
            } else if let Some(e) = r.field_error.as_ref().or(conflict.as_ref()) {
                invalid(e.clone())
            } else {
                match &r.verdict {
                    Verdict::Invalid(e) => invalid(e.clone()),
                    Verdict::Skip(reason) => Carry::Keep(PhotoState::Skipped {
                        reason: reason.clone(),
                    }),
                    Verdict::Ok if no_group => invalid(format!(
                        "{}: person {person:?} has no group (group_ids is empty on every line)",
                        r.origin
                    )),
                    Verdict::Ok => carry(before, r.hash, options),
                }
            }
        })
        .collect();

    // Faces the person holds or may hold, and whose content they are.
    let mut holders: HashMap<ContentHash, String> = HashMap::new();
    let mut enrolled = 0;
    let mut in_doubt = 0;
    let listed: std::collections::HashSet<&PhotoKey> = rows.iter().map(|(k, _)| k).collect();
    for (k, e) in &old {
        if listed.contains(k) {
            continue;
        }
        if let PhotoState::Enrolled { .. } = e.state {
            enrolled += 1;
            if let Some(h) = e.hash {
                holders
                    .entry(h)
                    .or_insert_with(|| format!("{} (enrolled)", e.origin));
            }
        }
    }
    for ((_, r), c) in rows.iter().zip(&carries) {
        let what = match c {
            Carry::Keep(PhotoState::Enrolled { .. }) => {
                enrolled += 1;
                "enrolled"
            }
            Carry::Keep(PhotoState::InDoubt) => {
                in_doubt += 1;
                "in doubt"
            }
            _ => continue,
        };
        if let Some(h) = r.hash {
            holders
                .entry(h)
                .or_insert_with(|| format!("{} ({what})", r.origin));
        }
    }

    // Dedupe and cap, in source order.
    let order = match rows[0].1.origin {
        Origin::Tree { .. } => "sorted file name order",
        Origin::Manifest { .. } => "manifest line order",
    };
    let mut slots = MAX_FACES_PER_PERSON.saturating_sub(enrolled + in_doubt);
    let mut planned = 0;
    let mut states = Vec::with_capacity(rows.len());
    for ((key, r), c) in rows.iter().zip(carries) {
        let state = match c {
            Carry::Keep(s) => s,
            Carry::Open => {
                if let Some(holder) = r.hash.and_then(|h| holders.get(&h)) {
                    PhotoState::Duplicate {
                        reason: format!("{}: same content as {holder}, which is kept", r.origin),
                    }
                } else if slots == 0 {
                    PhotoState::Skipped {
                        reason: format!(
                            "{}: over the service's limit of {MAX_FACES_PER_PERSON} faces per \
                             person: person {person:?} has {enrolled} enrolled, {in_doubt} in \
                             doubt and {planned} planned before it (photos are taken in {order})",
                            r.origin
                        ),
                    }
                } else {
                    slots -= 1;
                    planned += 1;
                    if let Some(h) = r.hash {
                        holders.insert(h, r.origin.to_string());
                    }
                    PhotoState::Pending
                }
            }
        };
        if let (PhotoState::Pending | PhotoState::InDoubt | PhotoState::Enrolled { .. }, Some(h)) =
            (&state, r.hash)
        {
            if store.photo_with_hash(&person, &h)?.as_ref() != Some(key) {
                store.put_photo_hash(&person, &h, key)?;
            }
        }
        states.push(state);
    }

    // The person's entry, and the calls it will take.
    let work: Vec<ChunkItem> = rows
        .iter()
        .zip(&states)
        .filter(|(_, s)| matches!(s, PhotoState::Pending | PhotoState::InDoubt))
        .map(|((_, r), _)| chunk_item(&r.image, r.size, options))
        .collect();
    if person_error.is_none() && !no_group {
        let id = PersonId::new(person.as_str()).expect("person id checked");
        let state = match if fresh { None } else { store.person(&person)? } {
            Some(PersonEntry {
                state: PersonState::Failed { .. },
                ..
            }) if !work.is_empty() => PersonState::New,
            Some(PersonEntry {
                state: PersonState::Ready { .. },
                fields: before,
                ..
            }) if before != fields => PersonState::Stale,
            Some(existing) => existing.state,
            None => PersonState::New,
        };
        summary.persons += 1;
        summary.persons_to_update += usize::from(state == PersonState::Stale);
        if !work.is_empty() {
            summary.persons_with_work += 1;
            let room = MAX_FACES_PER_PERSON.saturating_sub(enrolled);
            if state == PersonState::New {
                summary.new_persons += 1;
                summary.calls.newperson += 1;
                summary.calls.addface += chunks(
                    &work[1..],
                    room.saturating_sub(1),
                    options.max_request_bytes,
                )
                .len();
            } else {
                summary.calls.addface += chunks(&work, room, options.max_request_bytes).len();
            }
        }
        store.put_person(&PersonEntry {
            person: id,
            fields,
            state,
            generation,
        })?;
    }

    // The photos, and what the operator is told of them.
    for ((key, r), state) in rows.drain(..).zip(states) {
        summary.photos += 1;
        match &state {
            PhotoState::Pending => {
                summary.pending += 1;
                summary.to_normalize += usize::from(r.normalize);
            }
            PhotoState::InDoubt => summary.in_doubt += 1,
            PhotoState::Enrolled { .. } => summary.enrolled += 1,
            PhotoState::Duplicate { reason } => {
                summary.duplicate += 1;
                summary.problem("duplicate", reason.clone());
            }
            PhotoState::Skipped { reason } | PhotoState::Full { reason } => {
                summary.skipped += 1;
                summary.problem("skipped", reason.clone());
            }
            PhotoState::Failed(f) if f.kind == FailureKind::Input => {
                summary.invalid += 1;
                tracing::warn!("{}", f.message);
                summary.problem("invalid", f.message.clone());
            }
            PhotoState::Failed(_) => summary.failed_before += 1,
        }
        let before = old.remove(&key);
        // Without a hash on either side the content cannot be compared: the path
        // stands for the photo.
        let unchanged = before
            .as_ref()
            .is_some_and(|b| r.hash.is_none() || b.hash.is_none() || b.hash == r.hash);
        let (hash, size, modified) = match &before {
            Some(b) if unchanged && r.hash.is_none() => (b.hash, b.size.or(r.size), b.modified),
            _ => (r.hash, r.size, r.modified),
        };
        let given = GivenFields {
            groups: r.groups,
            name: r.name,
            tag: r.tag,
        };
        let entry = PhotoEntry {
            given: Some(given),
            source: Some(pass.source.to_owned()),
            person: r.person,
            image: r.image,
            origin: r.origin,
            seq: r.seq,
            hash,
            size,
            modified,
            state,
            attempts: before.as_ref().map_or(0, |b| b.attempts),
            generation,
            note: before.filter(|_| unchanged).and_then(|b| b.note),
        };
        out.push((key, entry));
    }
    Ok(())
}

/// Two rows of one person whose id is written in different Unicode normal forms:
/// which spelling is meant is not clear, so the person is refused.
fn spelled_twice(rows: &[(PhotoKey, Row)]) -> Option<String> {
    let (_, first) = rows.first()?;
    let spelling = |r: &Row| r.written.clone().unwrap_or_else(|| r.person.clone());
    let first_spelling = spelling(first);
    let other = rows.iter().find(|(_, r)| spelling(r) != first_spelling)?;
    Some(format!(
        "person {:?} is written in two Unicode forms, at {} and at {} (a name typed on one \
         system and copied from another); write it one way",
        first.person, first.origin, other.1.origin
    ))
}

/// A photo's state before the person-level checks.
enum Carry {
    /// Decided: written as is.
    Keep(PhotoState),
    /// To be decided by the person-level checks: pending, duplicate or over the cap.
    Open,
}

/// The state of a photo known from an earlier run, or `Open` when the plan decides.
fn carry(before: Option<&PhotoEntry>, hash: Option<ContentHash>, options: &PlanOptions) -> Carry {
    let Some(before) = before else {
        return Carry::Open;
    };
    let changed = matches!((before.hash, hash), (Some(a), Some(b)) if a != b);
    if changed {
        return Carry::Open;
    }
    match &before.state {
        PhotoState::Enrolled { .. } | PhotoState::InDoubt => Carry::Keep(before.state.clone()),
        PhotoState::Failed(Failure {
            kind: FailureKind::Permanent,
            ..
        }) if !options.retry_failed => Carry::Keep(before.state.clone()),
        PhotoState::Full { .. } if !options.recheck_full => Carry::Keep(before.state.clone()),
        _ => Carry::Open,
    }
}

fn chunk_item(image: &ImageRef, size: Option<u64>, options: &PlanOptions) -> ChunkItem {
    match image {
        ImageRef::Url(u) => ChunkItem {
            bytes: u.len() as u64,
            is_url: true,
        },
        ImageRef::File(_) => {
            let size = size.unwrap_or(0);
            ChunkItem {
                // A photo too large for a request is re-encoded to fit.
                bytes: if options.normalize.enabled {
                    size.min(options.image_budget())
                } else {
                    size
                },
                is_url: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn files(sizes: &[u64]) -> Vec<ChunkItem> {
        sizes
            .iter()
            .map(|&bytes| ChunkItem {
                bytes,
                is_url: false,
            })
            .collect()
    }

    const MB: u64 = 1024 * 1024;

    #[test]
    fn rows_sorted_through_many_spilled_runs_come_back_in_key_then_line_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("person_id,image,group_ids\n");
        // 60 rows: persons p0..p6 interleaved, and p3/x.jpg listed at two lines.
        for i in 0..60 {
            text.push_str(&format!("p{},https://h/{}.jpg,g\n", i % 7, i % 11));
        }
        let manifest = dir.path().join("m.csv");
        std::fs::write(&manifest, &text).unwrap();
        let source = SourceSpec::Manifest { path: manifest };
        let sort_dir = dir.path().join("sort");
        let limits = SortLimits {
            run_rows: 4,
            max_runs: 3,
        };
        let mut summary = PlanSummary::default();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let pass = Pass {
            source: "m.csv",
            generation: 1,
            check_shared: false,
        };
        let sorted = gather(
            &store,
            &pass,
            &sort_dir,
            source.open().unwrap(),
            &PlanOptions::default(),
            &|_| None,
            limits,
            &mut summary,
        )
        .unwrap();
        let rows: Vec<(PhotoKey, u64)> = sorted
            .map(|r| r.map(|(k, row)| (k, row.seq)).unwrap())
            .collect();
        assert_eq!(rows.len(), 60);
        let mut expected = rows.clone();
        expected.sort();
        assert_eq!(rows, expected);
        let lines: std::collections::HashSet<u64> = rows.iter().map(|(_, l)| *l).collect();
        assert_eq!(lines, (2..62).collect());
        // Merging kept the files open at once below the limit.
        let files = std::fs::read_dir(&sort_dir).unwrap().count();
        assert!(files <= limits.max_runs, "{files} run files left");
    }

    #[test]
    fn twenty_photos_per_chunk() {
        let items = files(&[1000; 45]);
        assert_eq!(
            chunks(&items, 45, MAX_REQUEST_BYTES),
            vec![0..20, 20..40, 40..45]
        );
    }

    #[test]
    fn chunks_stop_at_the_room_left() {
        let items = files(&[1000; 45]);
        assert_eq!(chunks(&items, 19, MAX_REQUEST_BYTES), vec![0..19]);
        assert_eq!(
            chunks(&items, 0, MAX_REQUEST_BYTES),
            Vec::<Range<usize>>::new()
        );
    }

    #[test]
    fn chunks_stay_under_the_request_limit() {
        // At 6 MiB (budget 6 MiB - 16 KiB), two 3 MiB photos do not fit together.
        let items = files(&[3 * MB, 3 * MB, 2 * MB, MB]);
        assert_eq!(chunks(&items, 20, 6 * MB), vec![0..1, 1..3, 3..4]);
    }

    #[test]
    fn a_photo_too_large_alone_is_in_no_chunk() {
        let items = files(&[MB, 7 * MB, MB]);
        assert_eq!(chunks(&items, 20, MAX_REQUEST_BYTES), vec![0..1, 2..3]);
    }

    #[test]
    fn files_and_urls_are_never_mixed() {
        let mut items = files(&[10, 10, 10]);
        items[1].is_url = true;
        assert_eq!(
            chunks(&items, 20, MAX_REQUEST_BYTES),
            vec![0..1, 1..2, 2..3]
        );
    }

    proptest! {
        #[test]
        fn chunks_respect_every_limit(
            items in prop::collection::vec((0u64..4_000_000, any::<bool>()), 0..80),
            room in 0usize..60,
            limit in 20_000u64..8_000_000,
        ) {
            let items: Vec<ChunkItem> =
                items.into_iter().map(|(bytes, is_url)| ChunkItem { bytes, is_url }).collect();
            let budget = limit - REQUEST_ENVELOPE_BYTES.min(limit);
            let got = chunks(&items, room, limit);
            let mut next = 0;
            let mut placed = 0;
            for r in &got {
                prop_assert!(!r.is_empty());
                prop_assert!(r.start >= next, "chunks in order, disjoint");
                // Anything skipped between chunks is too large alone.
                for item in &items[next..r.start] {
                    prop_assert!(item.bytes > budget);
                }
                prop_assert!(r.len() <= MAX_IMAGES_PER_ADDFACE);
                let bytes: u64 = items[r.clone()].iter().map(|i| i.bytes).sum();
                prop_assert!(bytes <= budget);
                prop_assert!(items[r.clone()].iter().all(|i| i.is_url == items[r.start].is_url));
                placed += r.len();
                next = r.end;
            }
            prop_assert!(placed <= room);
            // Past the last chunk: only items too large alone, unless room ran out.
            if placed < room {
                for item in &items[next..] {
                    prop_assert!(item.bytes > budget);
                }
            }
        }
    }
}
