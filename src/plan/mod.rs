//! The plan: which photos of which person are sent, which never can be, and how the
//! work splits into calls — decided before the first call and written into the
//! progress store.
//!
//! # One planning pass ([`build`])
//!
//! 1. **Gather.** The source's records are read in batches of [`BATCH`]. Each batch
//!    is checked in parallel (rayon): ids by the service's rules, URLs, and for a
//!    local file (unless `check_content` is off) that it exists, is not empty, is an
//!    image by its content ([`ImageKind::sniff`](crate::model::ImageKind::sniff)), fits one request when resizing is
//!    off, and its content hash (streamed, never held in memory). The checked rows
//!    are sorted by [`PhotoKey`] (person first) in runs of [`RUN_ROWS`]; full runs
//!    are spilled to files in the state directory (`plan-sort/`, removed after the
//!    pass). A manifest of millions of rows, a person's rows spread through it, is
//!    so grouped by person without holding it in memory.
//! 2. **Decide, person by person.** The runs are merged back in key order. For each
//!    person, with its rows in source order and what the store knew of it from
//!    earlier runs: the person's name, tag and groups are merged (a conflicting name
//!    or tag fails the later line, naming both); every photo gets its state (below)
//!    and is written once if it is new or its entry changed (an unchanged entry is
//!    left as it is); one [`PersonEntry`](crate::store::PersonEntry) is written for a valid person; the
//!    calls are counted with [`crate::chunk::chunks`]. The store is read once in key
//!    order beside the merged runs; an entry of this source the pass does not list
//!    (a photo or a whole person gone from the source) is retired
//!    ([`PhotoEntry::retired`](crate::store::PhotoEntry::retired)), one write each.
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
//! - Changed content (another hash) or new: decided below. The face a photo
//!   changed in place was enrolled with stays on the service: the plan records it
//!   ([`Store::put_replaced_face`]) for `enroll --mirror` to delete, and counts the
//!   photo's new content as a new photo.
//! - A listed photo enrolled before whose file is gone now (a manifest row whose
//!   file was deleted) keeps its face (`Enrolled`), counted apart
//!   ([`PlanSummary::kept_gone`]): not an error of the source for `--mirror`, unlike
//!   a file that is there but cannot be read ([`PlanSummary::enrolled_errors`]).
//! - Deciding, in source order: a photo whose content equals a photo of the same
//!   person already accounted for (enrolled, in doubt, refused for good by the
//!   service, or planned earlier in source order, spares included) is a `Duplicate`
//!   naming it, so byte-identical copies are one photo; past
//!   [`MAX_FACES_PER_PERSON`](crate::limits::MAX_FACES_PER_PERSON) (counting faces
//!   already enrolled and photos in doubt) it is a `Spare`, which the engine sends
//!   in the place of a photo the service refuses for good in the run; otherwise
//!   `Pending`.
//!
//! The same photo (same person, same path or URL) listed twice is recorded once; the
//! second listing is an entry not taken (ignored, or failed when it gives other
//! groups, name or tag). The same content listed for two persons is enrolled for
//! each, with a warning (`plan/shared.rs`).
//!
//! A source new to the job that lists every photo an earlier source kept, by content
//! at new paths and none by path, is that source moved or copied: it takes its place
//! and each photo keeps its state under its new path (`moved`).
//!
//! A state directory holds one shard: the plan records it, and refuses another
//! (`Store::bind_shard`).
//!
//! A person whose earlier run ended `PersonState::Failed` (no photo could seed it)
//! and that has photos to send again goes back to `PersonState::New`; a person on the
//! service whose groups, name or tag changed in the source becomes
//! `PersonState::Stale` (the engine brings it in line); any other known person keeps
//! its state.
mod calls;
mod check;
mod decide;
mod moved;
mod shared;
mod sort;
mod summary;

pub use calls::with_crops as calls_with_crops;
pub use sort::{MAX_RUNS, RUN_ROWS};
pub use summary::{
    not_taken_words, CallCount, OtherShardsCount, PlanProblem, PlanSummary, ProblemStatus,
    MAX_LISTED_PROBLEMS,
};

use crate::limits::{RequestBudget, MAX_REQUEST_BYTES, REQUEST_ENVELOPE_BYTES};
use crate::model::check_id;
use crate::normalize::NormalizeOptions;
use crate::shard::Shard;
use crate::source::{Problem, ProblemKind, SourceItem, SourceSpec};
use crate::store::{NotTaken, PhotoKey, Store, StoreError};
use check::{check, Previous, Row};
use rayon::prelude::*;
use sort::{spill, write_run, SortLimits, Sorted};
use std::path::Path;

/// Records checked together (in parallel) and written to the store in one go.
pub const BATCH: usize = 4096;
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
    /// The request budget chunks are cut to and photos are checked against: the
    /// configured limit; [`build`] adds what earlier runs learned of it.
    pub budget: RequestBudget,
    /// A directory tree without a photo is a plan with nothing to do, not an error.
    pub allow_empty: bool,
    /// A source that shares no photo with the job's earlier sources joins the job
    /// anyway (without it, such a source is refused as a probable mistake).
    pub new_source: bool,
    /// The source is the job's whole source (`--mirror`): the job's other sources
    /// leave it with this plan, so what only they listed has left the source. A
    /// report of the job fed back is refused: it is a part of the job.
    pub sole_source: bool,
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
            budget: RequestBudget::configured(MAX_REQUEST_BYTES),
            allow_empty: false,
            new_source: false,
            sole_source: false,
            shard: Shard::WHOLE,
        }
    }
}

impl PlanOptions {
    /// The most image bytes one request can carry with a photo alone.
    pub fn image_budget(&self) -> u64 {
        self.budget.photo_bytes()
    }
}

/// Why a plan could not be made at all.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    // Not transparent: the store error stays in the chain, where its exit class
    // is read (`exit::of_error`).
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bound(#[from] crate::store::BindError),
    #[error("group {0:?} holds a comma: give each group as its own list item (groups = [\"staff\", \"lab\"], --group staff,lab)")]
    GroupComma(String),
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
        "{given} is a report of a job (its columns {columns}): its rows are a part of \
         the job, not its whole source, so --mirror would take everything else off the \
         service; enroll it without --mirror, and mirror the whole source; nothing was sent"
    )]
    ReportUnderMirror { given: String, columns: String },
    #[error(
        "--max-request-bytes {given} leaves no room for a photo (the request envelope \
         takes {REQUEST_ENVELOPE_BYTES} bytes)"
    )]
    RequestLimit { given: u64 },
}
/// One planning pass over `source` into `store`. See the module documentation.
pub fn build(
    store: &Store,
    source: &SourceSpec,
    options: &PlanOptions,
) -> Result<PlanSummary, PlanError> {
    if options.image_budget() == 0 {
        return Err(PlanError::RequestLimit {
            given: options.budget.configured_request_bytes(),
        });
    }
    if let SourceSpec::Tree { groups, .. } = source {
        for group in groups {
            // `--group` and FACEENROLL_GROUPS are split on commas; a comma left
            // (a file's `groups = ["staff,lab"]`) is refused here, not per photo.
            if group.contains(',') {
                return Err(PlanError::GroupComma(group.clone()));
            }
            check_id(group).map_err(|error| PlanError::Group {
                group: group.clone(),
                error,
            })?;
        }
    }
    // A state holds one shard: another one's plan would replace it.
    store.bind_shard(options.shard)?;
    let (items, others) = options.shard.split(source.open()?);
    // Count calls with the request limit earlier runs learned, as the engine cuts them.
    let learned = PlanOptions {
        budget: options.budget.with_learned(&store.request_limit()?),
        ..options.clone()
    };
    let options = &learned;

    if options.sole_source {
        if let Some(columns) = source.report_columns() {
            return Err(PlanError::ReportUnderMirror {
                given: source.describe(),
                columns: columns.join(", "),
            });
        }
    }
    let id = source.id();
    let mut meta = store.meta()?;
    meta.generation += 1;
    meta.source = Some(source.describe());
    store.put_meta(&meta)?;
    let generation = meta.generation;
    // A source the job has not seen must share a photo with it, unless it is meant;
    // one the job knows only by content may be an earlier source moved (`moved`).
    let unseen = !meta.sources.is_empty() && !meta.sources.contains_key(&id);
    let check_shared = !options.new_source && unseen;
    let mut matches = unseen.then(moved::Matches::default);
    let mut summary = PlanSummary {
        source: source.describe(),
        generation,
        ..PlanSummary::default()
    };

    let failed_before = store.failed_not_taken(&id)?;
    store.clear_not_taken(&id)?;
    let sort_dir = crate::state_dir::StateDir::new(store.dir()).plan_sort();
    let _ = std::fs::remove_dir_all(&sort_dir);
    let result = (|| {
        let started = std::time::Instant::now();
        let previous = |key: &PhotoKey| store.photo(key).ok().flatten();
        let pass = Pass {
            source: &id,
            generation,
            previous: meta.sources.get(&id).copied().unwrap_or(0),
            moved_from: None,
            failed_before: &failed_before,
        };
        let sorted = gather(
            store,
            &pass,
            &sort_dir,
            items,
            options,
            &previous,
            SortLimits::default(),
            matches.as_mut(),
            &mut summary,
        )?;
        summary.known = usize::from(matches.as_ref().is_some_and(|m| m.any()));
        if check_shared && summary.listed > 0 && summary.known == 0 {
            {
                return Err(PlanError::Unrelated {
                    given: source.describe(),
                    known: meta.sources.keys().cloned().collect::<Vec<_>>().join(", "),
                });
            }
        }
        let moved_from = match &matches {
            Some(m) => m.moved_from(store)?,
            None => None,
        };
        let mut meta = store.meta()?;
        if let Some(from) = &moved_from {
            tracing::warn!(
                "{}: the same photos as the job's source {from} (by content): taken as that \
                 source moved here; its photos keep their state",
                source.describe()
            );
            meta.sources.remove(from);
            store.clear_not_taken(from)?;
            summary.moved_from = Some(from.clone());
        }
        // The same source recorded under another spelling (before sources were
        // known by their real path) is this one.
        meta.sources.retain(|s, _| {
            *s == id || crate::source::real_path(Path::new(s)).display().to_string() != id
        });
        if options.sole_source {
            let gone: Vec<String> = meta.sources.keys().filter(|s| **s != id).cloned().collect();
            for earlier in &gone {
                tracing::warn!(
                    "{earlier} is no longer a source of the job: with --mirror, {} is its \
                     whole source",
                    source.describe()
                );
                meta.sources.remove(earlier);
                store.clear_not_taken(earlier)?;
            }
            summary.gone_sources = gone;
        }
        store.note_gone_sources(&summary.gone_sources, &id)?;
        meta.sources.insert(id.clone(), generation);
        store.put_meta(&meta)?;
        let pass = Pass {
            moved_from: moved_from.as_deref(),
            ..pass
        };
        tracing::debug!("plan: rows gathered and sorted in {:?}", started.elapsed());
        let started = std::time::Instant::now();
        let mut contents = shared::Contents::default();
        decide::decide(store, sorted, &pass, options, &mut summary, &mut contents)?;
        tracing::debug!(
            "plan: persons decided in {:?}, {} photo entries written",
            started.elapsed(),
            store.photo_writes()
        );
        let shared = shared::find(store, &id, contents)?;
        for content in &shared {
            let warning = shared::warning(content);
            tracing::warn!("{warning}");
            summary.problem(ProblemStatus::Warning, warning);
        }
        summary.shared = shared.len();
        store.put_shared(&id, &shared)?;
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
    for warning in summary.group_warnings(&crate::limits::GroupLimits::default()) {
        tracing::warn!("{warning}");
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
    // A manifest with its header and no row, for a job that holds nothing yet, is an
    // export that went wrong as an empty tree is an unmounted share. On a job that
    // holds photos, it is a source that lost every row: --mirror's guards hold it.
    if let SourceSpec::Manifest { path } = source {
        if summary.photos == 0
            && others_photos == 0
            && !options.allow_empty
            && !holds_a_photo(store)?
        {
            return Err(PlanError::Empty {
                root: path.display().to_string(),
                found: "the manifest lists no row under its header".to_owned(),
            });
        }
    }
    Ok(summary)
}

/// Whether the job holds a photo enrolled on the service (by any of its sources).
fn holds_a_photo(store: &Store) -> Result<bool, PlanError> {
    for item in store.photos() {
        let (_, entry) = item?;
        if matches!(entry.state, crate::store::PhotoState::Enrolled { .. }) {
            return Ok(true);
        }
    }
    Ok(false)
}

struct Pass<'a> {
    /// The source's id ([`SourceSpec::id`]).
    source: &'a str,
    generation: u64,
    /// The generation of the source's previous plan (0 for a source new to the job):
    /// the last that saw an entry this pass retires.
    previous: u64,
    /// The earlier source this one is at a new path, whose photos' entries move to
    /// the rows listing the same content ([`moved::adopt`]).
    moved_from: Option<&'a str>,
    /// The source's entries its previous plan failed, by message: failed again for
    /// the same reason, they are known from earlier runs.
    failed_before: &'a std::collections::HashSet<String>,
}

/// Phase 1: checks the source's records in parallel batches and sorts them by
/// photo key (person first) in runs of [`RUN_ROWS`], spilled to files.
#[allow(clippy::too_many_arguments)]
fn gather(
    store: &Store,
    pass: &Pass<'_>,
    sort_dir: &Path,
    mut items: Box<dyn Iterator<Item = SourceItem> + Send>,
    options: &PlanOptions,
    previous: &Previous<'_>,
    limits: SortLimits,
    mut matches: Option<&mut moved::Matches>,
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
                    if let Some(m) = matches.as_deref_mut() {
                        m.note(store, &row.0, &row.1)?;
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
        summary.invalid_before += usize::from(pass.failed_before.contains(&problem.message));
    } else {
        tracing::info!("not taken: {}", problem.message);
    }
    *summary.not_taken.entry(problem.class).or_default() += 1;
    summary.problem(
        if failed {
            ProblemStatus::Invalid
        } else {
            ProblemStatus::Ignored
        },
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let none = std::collections::HashSet::new();
        let pass = Pass {
            source: "m.csv",
            generation: 1,
            previous: 0,
            moved_from: None,
            failed_before: &none,
        };
        let sorted = gather(
            &store,
            &pass,
            &sort_dir,
            source.open().unwrap(),
            &PlanOptions::default(),
            &|_| None,
            limits,
            None,
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
}
