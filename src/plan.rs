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
//!    off, and its content hash (streamed, never held in memory). The checked rows go
//!    into a scratch tree of the store keyed by [`PhotoKey`], which sorts them by
//!    person: a manifest of millions of rows is grouped without holding it in memory.
//! 2. **Decide, person by person.** The scratch tree is read back in key order. For
//!    each person, with its rows in source order and what the store knew of it from
//!    earlier runs: the person's name, tag and groups are merged (a conflicting name
//!    or tag fails the later line, naming both); every photo gets its state (below);
//!    one [`PersonEntry`] is written for a valid person; the number of calls is
//!    counted with [`chunks`].
//!
//! Memory is bounded by the batch size and by the photos of one person.
//!
//! # A photo's state after planning
//!
//! - Invalid input (missing, empty, not an image, too large with resizing off, bad
//!   person or group id, conflicting name or tag, a URL that is not http(s)):
//!   `Failed(Input)`, its message naming the file and, for a manifest, the line.
//! - Not a photo by its name, a link not followed: `Skipped`.
//! - Known from an earlier run with unchanged content: its state is kept (`Enrolled`,
//!   `InDoubt`, `Failed(Permanent)` unless `retry_failed`); `Failed(RetriesExhausted)`
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
//! and that has photos to send again goes back to `PersonState::New`; any other
//! known person keeps its state.

use crate::limits::{
    MAX_FACES_PER_PERSON, MAX_IMAGES_PER_ADDFACE, MAX_NAME_BYTES, MAX_REQUEST_BYTES, MAX_TAG_BYTES,
    REQUEST_ENVELOPE_BYTES,
};
use crate::model::{check_id, ContentHash, GroupId, ImageKind, ImageRef, PersonId};
use crate::source::{PhotoRecord, ProblemKind, SourceError, SourceItem, SourceSpec};
use crate::store::{
    Failure, FailureKind, Origin, PersonEntry, PersonFields, PersonState, PhotoEntry, PhotoKey,
    PhotoState, Store, StoreError,
};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Read as _;
use std::ops::Range;
use std::path::Path;

/// Records checked together (in parallel) and written to the store in one go.
pub const BATCH: usize = 8192;

/// Problems kept in a [`PlanSummary`] to show the operator; the store holds all.
pub const MAX_LISTED_PROBLEMS: usize = 1000;

/// The scratch tree a planning pass gathers its rows in.
const SCRATCH: &str = "plan";

/// How to plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanOptions {
    /// Oversized photos will be re-encoded to fit a request; when off, a photo too
    /// large for one request on its own is invalid input.
    pub resize: bool,
    /// Read local files (existence, size, image kind, content hash). Off records only
    /// the paths, for very large archives already known to be sound.
    pub check_content: bool,
    /// Plan again photos the service refused for good in an earlier run.
    pub retry_failed: bool,
    /// The request body limit the chunks are cut to.
    pub max_request_bytes: u64,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            resize: true,
            check_content: true,
            retry_failed: false,
            max_request_bytes: MAX_REQUEST_BYTES,
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
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("--group {group:?} {error}")]
    Group {
        group: String,
        error: crate::model::IdError,
    },
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
    /// Input photos recorded in the store (each once).
    pub photos: usize,
    /// Photos to send (`Pending`).
    pub pending: usize,
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
    /// Entries of the source that are not photos (loops, stray files, unreadable rows).
    pub source_problems: usize,
    pub calls: CallCount,
    /// The first [`MAX_LISTED_PROBLEMS`] problems, in the order found.
    pub problems: Vec<PlanProblem>,
    /// All problems, listed or not.
    pub problems_total: usize,
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
                continue;
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

/// One listed photo after its checks, before it is written.
struct Checked {
    key: PhotoKey,
    record: PhotoRecord,
    /// What the store knew of the photo before this pass.
    before: Option<PhotoEntry>,
    hash: Option<ContentHash>,
    size: Option<u64>,
    /// The person cannot be planned (bad id).
    person_error: Option<String>,
    /// The person's folder name is not UTF-8: no photo of it can be planned.
    person_unusable: bool,
    /// A group, name or tag of this line is unusable.
    field_error: Option<String>,
    verdict: Verdict,
}

enum Verdict {
    Ok,
    Skip(String),
    Invalid(String),
}

/// What the pass gathers of one person's fields while reading the source.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PersonAcc {
    groups: Vec<String>,
    /// The name and tag as first given, and where.
    name: Option<(String, String)>,
    tag: Option<(String, String)>,
    /// Why the person cannot be planned, when one of its listings says so.
    unusable: Option<String>,
}

/// The persons' gathered fields: held in memory up to [`PERSON_CACHE`] persons,
/// spilled to a scratch tree of the store beyond that.
struct Persons {
    cache: HashMap<String, PersonAcc>,
    spill: sled::Tree,
}

/// Persons whose gathered fields are held in memory at once during a pass.
pub const PERSON_CACHE: usize = 100_000;

impl Persons {
    fn get_mut(&mut self, person: &str) -> Result<&mut PersonAcc, StoreError> {
        if !self.cache.contains_key(person) {
            if self.cache.len() >= PERSON_CACHE {
                self.spill_all()?;
            }
            let acc = match self.spill.get(person.as_bytes())? {
                Some(v) => decode_acc(&v)?,
                None => PersonAcc::default(),
            };
            self.cache.insert(person.to_owned(), acc);
        }
        Ok(self.cache.get_mut(person).expect("inserted above"))
    }

    fn get(&self, person: &str) -> Result<Option<PersonAcc>, StoreError> {
        if let Some(acc) = self.cache.get(person) {
            return Ok(Some(acc.clone()));
        }
        self.spill
            .get(person.as_bytes())?
            .map(|v| decode_acc(&v))
            .transpose()
    }

    fn spill_all(&mut self) -> Result<(), StoreError> {
        for (person, acc) in self.cache.drain() {
            let value = serde_json::to_vec(&acc).expect("person fields serialize");
            self.spill.insert(person.as_bytes(), value)?;
        }
        Ok(())
    }
}

fn decode_acc(bytes: &[u8]) -> Result<PersonAcc, StoreError> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        what: "gathered person fields".into(),
        source,
    })
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
    let items = source.open()?;

    let mut meta = store.meta()?;
    meta.generation += 1;
    meta.source = Some(source.describe());
    store.put_meta(&meta)?;
    let generation = meta.generation;
    let mut summary = PlanSummary {
        source: source.describe(),
        generation,
        ..PlanSummary::default()
    };

    store.drop_scratch(SCRATCH)?;
    let mut persons = Persons {
        cache: HashMap::new(),
        spill: store.scratch(SCRATCH)?,
    };
    let started = std::time::Instant::now();
    gather(
        store,
        items,
        generation,
        options,
        &mut persons,
        &mut summary,
    )?;
    tracing::debug!("plan: photos gathered in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    decide(store, &persons, generation, options, &mut summary)?;
    tracing::debug!("plan: persons decided in {:?}", started.elapsed());
    drop(persons);
    store.drop_scratch(SCRATCH)?;
    store.flush()?;
    Ok(summary)
}

/// Phase 1: checks the source's records in parallel batches and writes each photo
/// with its provisional state: decided when its input or its earlier run decides
/// it, `Pending` when the person-level checks of phase 2 decide it.
fn gather(
    store: &Store,
    mut items: Box<dyn Iterator<Item = SourceItem> + Send>,
    generation: u64,
    options: &PlanOptions,
    persons: &mut Persons,
    summary: &mut PlanSummary,
) -> Result<(), PlanError> {
    // A store without photos has no earlier entries to look up.
    let fresh = store.photo_count() == 0;
    let mut batch: Vec<SourceItem> = Vec::with_capacity(BATCH);
    let mut out: Vec<(PhotoKey, PhotoEntry)> = Vec::with_capacity(BATCH);
    let mut listed: HashMap<PhotoKey, Origin> = HashMap::new();
    loop {
        batch.clear();
        batch.extend(items.by_ref().take(BATCH));
        if batch.is_empty() {
            return Ok(());
        }
        let checked: Vec<Result<Result<Checked, String>, StoreError>> = batch
            .par_drain(..)
            .map(|item| check(store, item, fresh, options))
            .collect();
        out.clear();
        listed.clear();
        for c in checked {
            let mut c = match c? {
                Ok(c) => c,
                Err(message) => {
                    // An entry that names no photo has no row in the report: the
                    // log is where a run tells the operator about it.
                    tracing::warn!("{message}");
                    summary.source_problems += 1;
                    summary.problem("invalid", message);
                    continue;
                }
            };
            let first = match &c.before {
                Some(b) if b.generation == generation => Some(b.origin.clone()),
                _ => listed.get(&c.key).cloned(),
            };
            if let Some(first) = first {
                summary.relisted += 1;
                summary.problem("duplicate", relisted(&c.record, &first));
                continue;
            }
            listed.insert(c.key.clone(), c.record.origin.clone());
            if c.person_error.is_none() {
                let acc = persons.get_mut(&c.record.person)?;
                merge_fields(acc, &mut c);
            }
            let key = c.key.clone();
            out.push((key, provisional(c, generation, options)));
        }
        // Sorted, the writes of a batch land on neighbouring leaves of the tree.
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let replaced: Vec<Option<(PhotoKey, PhotoEntry)>> = out
            .par_iter()
            .map(|(k, e)| {
                // Without a lookup first, a listing of an earlier batch shows here.
                Ok(match store.swap_photo(k, e)? {
                    Some(before) if fresh && before.generation == generation => {
                        store.put_photo(k, &before)?;
                        Some((k.clone(), before))
                    }
                    _ => None,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        for (key, first) in replaced.into_iter().flatten() {
            let again = out
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, e)| e)
                .expect("written from out");
            let record = PhotoRecord {
                person: again.person.clone(),
                image: again.image.clone(),
                groups: Vec::new(),
                name: None,
                tag: None,
                origin: again.origin.clone(),
                seq: again.seq,
            };
            summary.relisted += 1;
            summary.problem("duplicate", relisted(&record, &first.origin));
        }
    }
}

fn relisted(record: &PhotoRecord, first: &Origin) -> String {
    format!(
        "{}: {} is listed again for person {:?}; first listed at {first}",
        record.origin, record.image, record.person
    )
}

/// Adds a listing's groups, name and tag to its person's, or fails the listing when
/// its name or tag conflicts with the one given first.
fn merge_fields(acc: &mut PersonAcc, c: &mut Checked) {
    let r = &c.record;
    if c.person_unusable {
        if acc.unusable.is_none() {
            if let Verdict::Invalid(message) = &c.verdict {
                acc.unusable = Some(message.clone());
            }
        }
        return;
    }
    if c.field_error.is_some() {
        return;
    }
    for (field, value, kept) in [
        ("person_name", &r.name, &acc.name),
        ("tag", &r.tag, &acc.tag),
    ] {
        if let (Some(value), Some((first, at))) = (value, kept) {
            if value != first {
                c.field_error = Some(format!(
                    "{}: {field} {value:?} for person {:?} conflicts with {first:?} at {at}",
                    r.origin, r.person
                ));
                return;
            }
        }
    }
    let origin = r.origin.to_string();
    if acc.name.is_none() {
        acc.name = r.name.clone().map(|n| (n, origin.clone()));
    }
    if acc.tag.is_none() {
        acc.tag = r.tag.clone().map(|t| (t, origin));
    }
    for g in &r.groups {
        if !acc.groups.contains(g) {
            acc.groups.push(g.clone());
        }
    }
}

/// The entry phase 1 writes for a checked listing.
fn provisional(c: Checked, generation: u64, options: &PlanOptions) -> PhotoEntry {
    let invalid = |message: String| {
        PhotoState::Failed(Failure {
            kind: FailureKind::Input,
            code: None,
            message,
        })
    };
    let state = if let Some(e) = c.person_error.or(c.field_error) {
        invalid(e)
    } else {
        match c.verdict {
            Verdict::Invalid(e) => invalid(e),
            Verdict::Skip(reason) => PhotoState::Skipped { reason },
            Verdict::Ok => match carry(c.before.as_ref(), c.hash, options) {
                Carry::Keep(s) => s,
                Carry::Open => PhotoState::Pending,
            },
        }
    };
    let before = c.before;
    // Without a hash on either side the content cannot be compared: the path stands
    // for the photo.
    let unchanged = before
        .as_ref()
        .is_some_and(|b| c.hash.is_none() || b.hash.is_none() || b.hash == c.hash);
    let (hash, size) = match &before {
        Some(b) if unchanged && c.hash.is_none() => (b.hash, b.size.or(c.size)),
        _ => (c.hash, c.size),
    };
    PhotoEntry {
        person: c.record.person,
        image: c.record.image,
        origin: c.record.origin,
        seq: c.record.seq,
        hash,
        size,
        state,
        attempts: before.as_ref().map_or(0, |b| b.attempts),
        generation,
        note: before.filter(|_| unchanged).and_then(|b| b.note),
    }
}

/// Checks one record: everything that can be told from the record, its file and
/// its earlier entry alone. `Ok(Err(message))` is a problem of the source with no
/// photo to record.
fn check(
    store: &Store,
    item: SourceItem,
    fresh: bool,
    options: &PlanOptions,
) -> Result<Result<Checked, String>, StoreError> {
    let (record, verdict, person_unusable) = match item {
        SourceItem::Photo(record) => (record, Verdict::Ok, false),
        SourceItem::Problem(problem) => match (problem.photo, problem.kind) {
            (None, _) => return Ok(Err(problem.message)),
            (Some(r), ProblemKind::Skip) => (r, Verdict::Skip(problem.message), false),
            (Some(r), ProblemKind::Invalid) => (r, Verdict::Invalid(problem.message), false),
            (Some(r), ProblemKind::InvalidPerson) => (r, Verdict::Invalid(problem.message), true),
        },
    };
    let origin = &record.origin;
    let is_manifest = matches!(origin, Origin::Manifest { .. });
    let person_error = check_id(&record.person).err().map(|e| {
        let field = if is_manifest {
            "person_id"
        } else {
            "person folder"
        };
        format!("{origin}: {field} {:?} {e}", record.person)
    });
    let field_error = record
        .groups
        .iter()
        .find_map(|g| {
            check_id(g).err().map(|e| {
                let field = if is_manifest {
                    "group_ids: group"
                } else {
                    "group folder"
                };
                format!("{origin}: {field} {g:?} {e}")
            })
        })
        .or_else(|| {
            too_long(
                origin,
                "person_name",
                record.name.as_deref(),
                MAX_NAME_BYTES,
            )
        })
        .or_else(|| too_long(origin, "tag", record.tag.as_deref(), MAX_TAG_BYTES));
    let key = PhotoKey::new(&record.person, &record.image);
    let before = if fresh { None } else { store.photo(&key)? };
    let mut checked = Checked {
        key,
        record,
        before,
        hash: None,
        size: None,
        person_error,
        person_unusable,
        field_error,
        verdict,
    };
    if options.check_content && matches!(checked.verdict, Verdict::Ok) {
        if let ImageRef::File(path) = &checked.record.image {
            match inspect(path, options) {
                Ok((size, hash)) => {
                    checked.size = Some(size);
                    checked.hash = Some(hash);
                }
                Err(message) => {
                    let place = match &checked.record.origin {
                        Origin::Tree { .. } => String::new(),
                        o @ Origin::Manifest { .. } => format!("{o}: "),
                    };
                    checked.verdict =
                        Verdict::Invalid(format!("{place}{}: {message}", path.display()));
                }
            }
        }
    }
    Ok(Ok(checked))
}

fn too_long(origin: &Origin, field: &str, value: Option<&str>, max: usize) -> Option<String> {
    let len = value?.len();
    (len > max).then(|| {
        format!("{origin}: {field} is {len} bytes long, over the service's limit of {max}")
    })
}

/// Reads a local photo: its size and content hash, or why it cannot be sent.
fn inspect(path: &Path, options: &PlanOptions) -> Result<(u64, ContentHash), String> {
    let mut file = std::fs::File::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "file not found".to_owned(),
        _ => format!("cannot read: {e}"),
    })?;
    let meta = file.metadata().map_err(|e| format!("cannot read: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let size = meta.len();
    if size == 0 {
        return Err("the file is empty".into());
    }
    if !options.resize && size > options.image_budget() {
        return Err(format!(
            "{size} bytes, over the {} bytes one request can carry (resizing is off)",
            options.image_budget()
        ));
    }
    let mut head = [0u8; ImageKind::SNIFF_BYTES];
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
        return Err("not an image (content is not JPEG, PNG, BMP or GIF)".into());
    }
    let hash = ContentHash::of_reader((&head[..got]).chain(file))
        .map_err(|e| format!("cannot read: {e}"))?;
    Ok((size, hash))
}

/// Phase 2: reads the store back person by person (key order) and decides what only
/// a person's photos together decide: its groups, duplicates and the 20-face cap.
fn decide(
    store: &Store,
    persons: &Persons,
    generation: u64,
    options: &PlanOptions,
    summary: &mut PlanSummary,
) -> Result<(), PlanError> {
    let mut photos = store.photos().peekable();
    let mut group: Vec<(PhotoKey, PhotoEntry)> = Vec::new();
    while let Some(item) = photos.next() {
        group.clear();
        group.push(item?);
        while let Some(Ok((_, next))) = photos.peek() {
            if next.person != group[0].1.person {
                break;
            }
            group.push(photos.next().expect("peeked")?);
        }
        if group.iter().any(|(_, e)| e.generation == generation) {
            plan_person(store, persons, &mut group, generation, options, summary)?;
        }
    }
    Ok(())
}

/// Decides one person: `group` holds all its photos in the store, of this plan and
/// of earlier ones.
fn plan_person(
    store: &Store,
    persons: &Persons,
    group: &mut [(PhotoKey, PhotoEntry)],
    generation: u64,
    options: &PlanOptions,
    summary: &mut PlanSummary,
) -> Result<(), PlanError> {
    group.sort_by_key(|(_, e)| (e.generation != generation, e.seq));
    let current = group
        .iter()
        .filter(|(_, e)| e.generation == generation)
        .count();
    let person = group[0].1.person.clone();
    let id = PersonId::new(person.as_str()).ok();
    let acc = persons.get(&person)?.unwrap_or_default();
    let order = match group[0].1.origin {
        Origin::Tree { .. } => "sorted file name order",
        Origin::Manifest { .. } => "manifest line order",
    };

    // Faces the person holds or may hold, and whose content they are.
    let mut holders: HashMap<ContentHash, String> = HashMap::new();
    let mut enrolled = 0;
    let mut in_doubt = 0;
    for (_, e) in group.iter() {
        let what = match e.state {
            PhotoState::Enrolled { .. } => {
                enrolled += 1;
                "enrolled"
            }
            PhotoState::InDoubt if e.generation == generation => {
                in_doubt += 1;
                "in doubt"
            }
            _ => continue,
        };
        if let Some(h) = e.hash {
            holders
                .entry(h)
                .or_insert_with(|| format!("{} ({what})", e.origin));
        }
    }

    // The open photos (provisionally pending), in source order.
    let unusable = match (&id, &acc.unusable) {
        (_, Some(why)) => Some(format!("cannot be planned: {why}")),
        (Some(_), None) if acc.groups.is_empty() => {
            Some("has no group (group_ids is empty on every line)".to_owned())
        }
        _ => None,
    };
    let mut slots = MAX_FACES_PER_PERSON.saturating_sub(enrolled + in_doubt);
    let mut planned = 0;
    for (key, e) in group[..current].iter_mut() {
        if e.state != PhotoState::Pending {
            continue;
        }
        let state = if let Some(why) = &unusable {
            PhotoState::Failed(Failure {
                kind: FailureKind::Input,
                code: None,
                message: format!("{}: person {person:?} {why}", e.origin),
            })
        } else if let Some(holder) = e.hash.and_then(|h| holders.get(&h)) {
            PhotoState::Duplicate {
                reason: format!("{}: same content as {holder}, which is kept", e.origin),
            }
        } else if slots == 0 {
            PhotoState::Skipped {
                reason: format!(
                    "{}: over the service's limit of {MAX_FACES_PER_PERSON} faces per person: \
                     person {person:?} has {enrolled} enrolled, {in_doubt} in doubt and \
                     {planned} planned before it (photos are taken in {order})",
                    e.origin
                ),
            }
        } else {
            slots -= 1;
            planned += 1;
            if let Some(h) = e.hash {
                holders.insert(h, e.origin.to_string());
            }
            continue;
        };
        e.state = state;
        store.put_photo(key, e)?;
    }
    for (key, e) in group[..current].iter() {
        if let (PhotoState::Pending | PhotoState::InDoubt | PhotoState::Enrolled { .. }, Some(h)) =
            (&e.state, e.hash)
        {
            store.put_photo_hash(&person, &h, key)?;
        }
    }

    // The person's entry, and the calls it will take.
    let work: Vec<ChunkItem> = group[..current]
        .iter()
        .filter(|(_, e)| matches!(e.state, PhotoState::Pending | PhotoState::InDoubt))
        .map(|(_, e)| chunk_item(e, options))
        .collect();
    if let (Some(id), None) = (id, &unusable) {
        let state = match store.person(&person)? {
            Some(PersonEntry {
                state: PersonState::Failed { .. },
                ..
            }) if !work.is_empty() => PersonState::New,
            Some(existing) => existing.state,
            None => PersonState::New,
        };
        summary.persons += 1;
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
        let fields = PersonFields {
            groups: acc
                .groups
                .iter()
                .filter_map(|g| GroupId::new(g.as_str()).ok())
                .collect(),
            name: acc.name.map(|(n, _)| n),
            tag: acc.tag.map(|(t, _)| t),
        };
        store.put_person(&PersonEntry {
            person: id,
            fields,
            state,
            generation,
        })?;
    }

    // What the operator is told.
    for (_, e) in group[..current].iter() {
        summary.photos += 1;
        match &e.state {
            PhotoState::Pending => summary.pending += 1,
            PhotoState::InDoubt => summary.in_doubt += 1,
            PhotoState::Enrolled { .. } => summary.enrolled += 1,
            PhotoState::Duplicate { reason } => {
                summary.duplicate += 1;
                summary.problem("duplicate", reason.clone());
            }
            PhotoState::Skipped { reason } => {
                summary.skipped += 1;
                summary.problem("skipped", reason.clone());
            }
            PhotoState::Failed(f) if f.kind == FailureKind::Input => {
                summary.invalid += 1;
                summary.problem("invalid", f.message.clone());
            }
            PhotoState::Failed(_) => summary.failed_before += 1,
        }
    }
    Ok(())
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
        _ => Carry::Open,
    }
}

fn chunk_item(entry: &PhotoEntry, options: &PlanOptions) -> ChunkItem {
    match &entry.image {
        ImageRef::Url(u) => ChunkItem {
            bytes: u.len() as u64,
            is_url: true,
        },
        ImageRef::File(_) => {
            let size = entry.size.unwrap_or(0);
            ChunkItem {
                // A photo too large for a request is re-encoded to fit.
                bytes: if options.resize {
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
        // Budget is 6 MB - 16 KB: two 3 MB photos do not fit together.
        let items = files(&[3 * MB, 3 * MB, 2 * MB, MB]);
        assert_eq!(
            chunks(&items, 20, MAX_REQUEST_BYTES),
            vec![0..1, 1..3, 3..4]
        );
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
