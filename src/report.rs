//! What a run tells the operator: the live tally the workers report to, and the
//! figures of the summary.
//!
//! Workers never print. They report each event to one [`Tally`], which the progress
//! display reads, and the summary is drawn from the tally and the store at the end.

use crate::model::ImageRef;
use crate::service::codes;
use crate::store::{
    FaceRef, NotTaken, Origin, PersonEntry, PhotoEntry, PhotoKey, PhotoState, Store,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Running counts of one run, shared by all workers: the workers report events to
/// it, and the progress display and the summary read a [`TallySnapshot`].
#[derive(Debug, Default)]
pub struct Tally {
    enrolled: AtomicU64,
    duplicate: AtomicU64,
    skipped: AtomicU64,
    failed: AtomicU64,
    persons_created: AtomicU64,
    persons_reconciled: AtomicU64,
    persons_failed: AtomicU64,
    changes_failed: AtomicU64,
    persons_done: AtomicU64,
    calls: AtomicU64,
    retries: AtomicU64,
    rate_limited: AtomicU64,
    bytes_saved: AtomicU64,
    /// Photos the job had settled before this run (counted in the figures above).
    settled: AtomicU64,
    persons_vanished: AtomicU64,
    photos_resent: AtomicU64,
    too_large: AtomicU64,
    limit_refused: AtomicU64,
    limit_accepted: AtomicU64,
    concurrency: AtomicU64,
    peak_concurrency: AtomicU64,
    workers: AtomicU64,
    latency: Latencies,
    failures: Mutex<BTreeMap<Option<i64>, u64>>,
}

/// The figures of a [`Tally`] at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TallySnapshot {
    /// Photos of the job by status, those settled before this run included.
    pub enrolled: u64,
    pub duplicate: u64,
    pub skipped: u64,
    pub failed: u64,
    pub persons_created: u64,
    pub persons_reconciled: u64,
    pub persons_failed: u64,
    /// Changes of persons already on the service (groups, name, tag) the service
    /// refused in this run, past their retries: the person is brought in line by a
    /// later run.
    pub changes_failed: u64,
    pub persons_done: u64,
    /// Attempts of calls sent, retries included.
    pub calls: u64,
    pub retries: u64,
    /// Rate-limit answers.
    pub rate_limited: u64,
    /// Bytes the re-encoding of enrolled photos saved.
    pub bytes_saved: u64,
    /// Persons the service no longer had, created again.
    pub persons_vanished: u64,
    /// Photos recorded as enrolled on a vanished person, sent again.
    pub photos_resent: u64,
    /// Requests the service refused as too large in this run (23 or HTTP 413).
    pub too_large: u64,
    /// The smallest request the service refused as too large, this run or earlier
    /// (0: none), and the largest it accepted, as the job learned them.
    pub limit_refused: u64,
    pub limit_accepted: u64,
    /// Calls allowed in flight now.
    pub concurrency: u64,
    /// The most calls in flight at once in this run.
    pub peak_concurrency: u64,
    /// Worker threads started.
    pub workers: u64,
}

/// A histogram of call latencies: buckets 5% wide, from 1 ms to hours, so a
/// percentile is within 5% of the truth in constant memory.
#[derive(Debug)]
pub struct Latencies {
    buckets: Mutex<Vec<u64>>,
}

const LATENCY_GROWTH: f64 = 1.05;
const LATENCY_BUCKETS: usize = 400;

impl Default for Latencies {
    fn default() -> Self {
        Latencies {
            buckets: Mutex::new(vec![0; LATENCY_BUCKETS]),
        }
    }
}

impl Latencies {
    pub fn record(&self, took: std::time::Duration) {
        let ms = took.as_secs_f64() * 1000.0;
        let index = if ms <= 1.0 {
            0
        } else {
            (ms.ln() / LATENCY_GROWTH.ln()).ceil() as usize
        };
        self.buckets.lock().expect("latency lock")[index.min(LATENCY_BUCKETS - 1)] += 1;
    }

    /// The latency under which `share` (0 to 1) of the calls were answered, `None`
    /// before the first answer.
    pub fn percentile(&self, share: f64) -> Option<std::time::Duration> {
        let buckets = self.buckets.lock().expect("latency lock");
        let total: u64 = buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((total as f64 * share).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        let index = buckets
            .iter()
            .position(|n| {
                seen += n;
                seen >= rank
            })
            .unwrap_or(LATENCY_BUCKETS - 1);
        let ms = LATENCY_GROWTH.powi(index as i32);
        Some(std::time::Duration::from_secs_f64(ms / 1000.0))
    }

    /// `p50 120 ms, p95 310 ms`, or `none answered`.
    pub fn describe(&self) -> String {
        match (self.percentile(0.5), self.percentile(0.95)) {
            (Some(p50), Some(p95)) => {
                format!("p50 {} ms, p95 {} ms", p50.as_millis(), p95.as_millis())
            }
            _ => "none answered".to_owned(),
        }
    }
}

/// The final status of a photo in this run, as the tally counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Enrolled,
    Duplicate,
    Skipped,
    Failed(Option<i64>),
}

impl Tally {
    /// The figures now.
    pub fn snapshot(&self) -> TallySnapshot {
        let get = |n: &AtomicU64| n.load(Relaxed);
        TallySnapshot {
            enrolled: get(&self.enrolled),
            duplicate: get(&self.duplicate),
            skipped: get(&self.skipped),
            failed: get(&self.failed),
            persons_created: get(&self.persons_created),
            persons_reconciled: get(&self.persons_reconciled),
            persons_failed: get(&self.persons_failed),
            changes_failed: get(&self.changes_failed),
            persons_done: get(&self.persons_done),
            calls: get(&self.calls),
            retries: get(&self.retries),
            rate_limited: get(&self.rate_limited),
            bytes_saved: get(&self.bytes_saved),
            persons_vanished: get(&self.persons_vanished),
            photos_resent: get(&self.photos_resent),
            too_large: get(&self.too_large),
            limit_refused: get(&self.limit_refused),
            limit_accepted: get(&self.limit_accepted),
            concurrency: get(&self.concurrency),
            peak_concurrency: get(&self.peak_concurrency),
            workers: get(&self.workers),
        }
    }

    /// How long the service took to answer, over the whole run.
    pub fn latency(&self) -> &Latencies {
        &self.latency
    }

    /// An attempt of a call is sent.
    pub fn call_sent(&self) {
        self.calls.fetch_add(1, Relaxed);
    }

    /// The service answered a call after `took`.
    pub fn call_answered(&self, took: std::time::Duration) {
        self.latency.record(took);
    }

    /// A call, or one image of it, is sent again.
    pub fn retried(&self) {
        self.retries.fetch_add(1, Relaxed);
    }

    /// The service answered a call with a rate-limit code.
    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Relaxed);
    }

    /// The service refused a request as too large.
    pub fn too_large(&self) {
        self.too_large.fetch_add(1, Relaxed);
    }

    /// The request limit the job learned: the smallest request refused as too
    /// large and the largest accepted.
    pub fn limit_learned(&self, refused: u64, accepted: u64) {
        self.limit_refused.store(refused, Relaxed);
        self.limit_accepted.store(accepted, Relaxed);
    }

    /// Calls allowed in flight now, and the most in flight at once in this run.
    pub fn concurrency(&self, limit: u64, peak: u64) {
        self.concurrency.store(limit, Relaxed);
        self.peak_concurrency.store(peak, Relaxed);
    }

    /// Worker threads started so far.
    pub fn workers_started(&self, workers: u64) {
        self.workers.store(workers, Relaxed);
    }

    pub fn person_created(&self) {
        self.persons_created.fetch_add(1, Relaxed);
    }

    pub fn person_reconciled(&self) {
        self.persons_reconciled.fetch_add(1, Relaxed);
    }

    pub fn person_failed(&self) {
        self.persons_failed.fetch_add(1, Relaxed);
    }

    /// A change of a person already on the service (its groups, name or tag) was
    /// refused past its retries; the person stays to be brought in line.
    pub fn change_failed(&self) {
        self.changes_failed.fetch_add(1, Relaxed);
    }

    /// `n` calls were sent outside the engine (the deletions of `--mirror`).
    pub fn calls_made(&self, n: u64) {
        self.calls.fetch_add(n, Relaxed);
    }

    /// The job went through a person's queue (its photos may have failed).
    pub fn person_done(&self) {
        self.persons_done.fetch_add(1, Relaxed);
    }

    /// The service no longer had a person; `resent` photos recorded as enrolled on
    /// it go again.
    pub fn person_vanished(&self, resent: u64) {
        self.persons_vanished.fetch_add(1, Relaxed);
        self.photos_resent.fetch_add(resent, Relaxed);
    }

    /// A spare photo, counted skipped by the plan, takes the place of a refused one:
    /// it is no longer settled, and this run settles it again.
    pub fn spare_promoted(&self) {
        for n in [&self.skipped, &self.settled] {
            let _ = n.fetch_update(Relaxed, Relaxed, |v| v.checked_sub(1));
        }
    }

    /// An enrolled photo was re-encoded, saving `bytes`.
    pub fn bytes_saved(&self, bytes: u64) {
        self.bytes_saved.fetch_add(bytes, Relaxed);
    }

    pub fn photo(&self, outcome: Counted) {
        match outcome {
            Counted::Enrolled => self.enrolled.fetch_add(1, Relaxed),
            Counted::Duplicate => self.duplicate.fetch_add(1, Relaxed),
            Counted::Skipped => self.skipped.fetch_add(1, Relaxed),
            Counted::Failed(code) => {
                *self
                    .failures
                    .lock()
                    .expect("tally lock")
                    .entry(code)
                    .or_default() += 1;
                self.failed.fetch_add(1, Relaxed)
            }
        };
    }

    /// Starts the figures from what the job had settled before the run (the plan's
    /// decisions and earlier runs), so the live figures count what the summary and
    /// `faceenroll status` count: the job's photos by status.
    pub fn settle(&self, counts: &StoreCounts) {
        self.enrolled.fetch_add(counts.enrolled, Relaxed);
        self.duplicate.fetch_add(counts.duplicate, Relaxed);
        self.skipped.fetch_add(counts.skipped, Relaxed);
        self.failed.fetch_add(counts.failed, Relaxed);
        let mut failures = self.failures.lock().expect("tally lock");
        for (code, n) in &counts.failures_by_code {
            *failures.entry(*code).or_default() += n;
        }
        self.settled.fetch_add(
            counts.enrolled + counts.duplicate + counts.skipped + counts.failed,
            Relaxed,
        );
    }

    /// Photos of the job settled so far, whatever their status.
    pub fn photos_done(&self) -> u64 {
        self.enrolled.load(Relaxed)
            + self.duplicate.load(Relaxed)
            + self.skipped.load(Relaxed)
            + self.failed.load(Relaxed)
    }

    /// Photos settled by this run.
    pub fn photos_this_run(&self) -> u64 {
        self.photos_done()
            .saturating_sub(self.settled.load(Relaxed))
    }

    /// Failures of this run by service code (`None`: no code, e.g. unreadable input
    /// or a network error).
    pub fn failures_by_code(&self) -> BTreeMap<Option<i64>, u64> {
        self.failures.lock().expect("tally lock").clone()
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`, for reasons that say when a value was
/// read from the service.
pub fn utc_time(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Which rows `faceenroll report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    Enrolled,
    Duplicate,
    Skipped,
    Failed,
    Pending,
    /// Photos that left the source and whose face a mirror run deleted.
    Removed,
    /// Files and folders of the source the job left (hidden, not photos, ...).
    Ignored,
}

impl Only {
    fn matches(self, status: &str) -> bool {
        self.status() == status
    }

    fn status(self) -> &'static str {
        match self {
            Only::Enrolled => "enrolled",
            Only::Duplicate => "duplicate",
            Only::Skipped => "skipped",
            Only::Failed => "failed",
            Only::Pending => "pending",
            Only::Removed => "removed",
            Only::Ignored => "ignored",
        }
    }
}

/// One row of the report: one input photo.
///
/// The first five columns are the manifest's, so the failed rows of a CSV report can
/// be fixed and fed back to `faceenroll enroll` as a manifest (the manifest reader
/// ignores the other columns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Row {
    pub person_id: String,
    pub image: String,
    pub group_ids: String,
    pub person_name: String,
    pub tag: String,
    pub status: String,
    pub face_id: String,
    pub code: Option<i64>,
    pub meaning: String,
    pub reason: String,
    pub attempts: u32,
    /// Where the photo was listed: a path, or `manifest.csv:LINE`.
    pub source: String,
    pub line: Option<u64>,
    /// The face the local detector found (`--crop-faces`, `--skip-faceless`): its box
    /// in the upright photo's pixels, or "no face found locally"; empty when the
    /// photo was not looked at.
    #[serde(default)]
    pub face_box: String,
    /// The box of the crop sent in place of the photo (`--crop-faces`); empty when
    /// the photo was sent whole.
    #[serde(default)]
    pub crop: String,
    /// The state directory the row comes from, in a report of several shards of a
    /// job (`report --state A --state B`); no column otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

impl Row {
    pub fn new(entry: &PhotoEntry, person: Option<&PersonEntry>) -> Row {
        let (face_id, code, reason) = match &entry.state {
            PhotoState::Enrolled { face } => (
                match face {
                    FaceRef::Id(id) => id.clone(),
                    FaceRef::Confirmed => String::new(),
                },
                None,
                match face {
                    FaceRef::Id(_) => String::new(),
                    FaceRef::Confirmed => {
                        "enrolled; the service confirmed it holds the face after an answer was lost"
                            .to_owned()
                    }
                },
            ),
            PhotoState::Duplicate { reason }
            | PhotoState::Skipped { reason }
            | PhotoState::Full { reason }
            | PhotoState::Spare { reason } => (String::new(), None, reason.clone()),
            PhotoState::Failed(f) | PhotoState::Deferred(f) => {
                (String::new(), f.code, f.message.clone())
            }
            PhotoState::Pending => (String::new(), None, String::new()),
            PhotoState::Removed { face_id, at } => (
                face_id.clone(),
                None,
                format!(
                    "left the source; its face was deleted by a mirror run at {}",
                    utc_time(*at)
                ),
            ),
            PhotoState::InDoubt => (
                String::new(),
                None,
                "sent; the answer was not recorded (settled on the next run)".to_owned(),
            ),
        };
        let reason = match &entry.note {
            Some(note) if reason.is_empty() => note.clone(),
            Some(note) => format!("{reason}; {note}"),
            None => reason,
        };
        let fields = person.map(|p| &p.fields);
        let (source, line) = source_columns(&entry.origin);
        let (group_ids, person_name, tag) = match &entry.given {
            // As the source gave them with this photo: a row refused for its person or
            // its groups comes back as it was written, to be fixed and fed back.
            Some(given) => (
                given.groups.join(";"),
                given.name.clone().unwrap_or_default(),
                given.tag.clone().unwrap_or_default(),
            ),
            None => (
                fields
                    .map(|f| {
                        f.groups
                            .iter()
                            .map(|g| g.as_str())
                            .collect::<Vec<_>>()
                            .join(";")
                    })
                    .unwrap_or_default(),
                fields.and_then(|f| f.name.clone()).unwrap_or_default(),
                fields.and_then(|f| f.tag.clone()).unwrap_or_default(),
            ),
        };
        Row {
            person_id: entry.person.clone(),
            image: match &entry.image {
                ImageRef::File(p) => std::path::absolute(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string(),
                ImageRef::Url(u) => u.clone(),
            },
            group_ids,
            person_name,
            tag,
            status: entry.state.status().to_owned(),
            face_id,
            code,
            meaning: code
                .map(|c| codes::meaning(c).to_owned())
                .unwrap_or_default(),
            reason,
            attempts: entry.attempts,
            source,
            line,
            face_box: String::new(),
            crop: String::new(),
            shard: None,
        }
    }
}

impl Row {
    /// The row of an entry of the source not taken as a photo: a manifest row as it
    /// was written, or a file of a tree by its path.
    pub fn not_taken(entry: &NotTaken) -> Row {
        let (source, line) = source_columns(&entry.origin);
        let cells = entry.cells.clone().unwrap_or_default();
        let image = match (&entry.origin, entry.cells.is_some()) {
            (Origin::Tree { path }, false) => std::path::absolute(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
            _ => cells.image,
        };
        Row {
            person_id: cells.person_id,
            image,
            group_ids: cells.group_ids,
            person_name: cells.person_name,
            tag: cells.tag,
            status: entry.status().to_owned(),
            face_id: String::new(),
            code: None,
            meaning: String::new(),
            reason: entry.message.clone(),
            attempts: 0,
            source,
            line,
            face_box: String::new(),
            crop: String::new(),
            shard: None,
        }
    }
}

/// The `source` and `line` columns of a place in the source.
fn source_columns(origin: &Origin) -> (String, Option<u64>) {
    match origin {
        Origin::Tree { path } => (path.display().to_string(), None),
        Origin::Manifest { file, line } => (format!("{}:{line}", file.display()), Some(*line)),
    }
}

/// The columns of the CSV report, in order: the first five are a manifest's.
pub const COLUMNS: [&str; 15] = [
    "person_id",
    "image",
    "group_ids",
    "person_name",
    "tag",
    "status",
    "face_id",
    "code",
    "meaning",
    "reason",
    "attempts",
    "source",
    "line",
    "face_box",
    "crop",
];

/// The format of `faceenroll report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Writes one row per input photo of the job (each source's latest plan), answering how
/// many rows it wrote.
pub fn write_report(
    store: &Store,
    only: Option<Only>,
    format: Format,
    out: impl std::io::Write,
) -> anyhow::Result<u64> {
    let mut writer = RowWriter::new(format, out, false)?;
    let rows = write_rows(store, only, None, &mut writer, None)?;
    writer.finish()?;
    Ok(rows)
}

/// Writes the whole report as CSV and counts the job as [`StoreCounts::read`] does,
/// in one reading of the store.
pub fn write_report_counted(
    store: &Store,
    out: impl std::io::Write,
) -> anyhow::Result<StoreCounts> {
    let mut writer = RowWriter::new(Format::Csv, out, false)?;
    let mut counts = StoreCounts::default();
    write_rows(store, None, None, &mut writer, Some(&mut counts))?;
    writer.finish()?;
    counts.count_persons(store)?;
    Ok(counts)
}

/// One report of several state directories of a job (its shards), each row with a
/// last `shard` column naming the directory it comes from.
pub fn write_merged_report(
    stores: &[(String, Store)],
    only: Option<Only>,
    format: Format,
    out: impl std::io::Write,
) -> anyhow::Result<u64> {
    let mut writer = RowWriter::new(format, out, true)?;
    let mut rows = 0;
    for (shard, store) in stores {
        rows += write_rows(store, only, Some(shard), &mut writer, None)?;
    }
    writer.finish()?;
    Ok(rows)
}

/// Writes the rows `only` selects, counting every entry of the job in `counts` (its
/// persons excepted) when given.
fn write_rows<W: std::io::Write>(
    store: &Store,
    only: Option<Only>,
    shard: Option<&str>,
    writer: &mut RowWriter<W>,
    mut counts: Option<&mut StoreCounts>,
) -> anyhow::Result<u64> {
    let meta = store.meta()?;
    let shared = SharedNotes::read(store)?;
    let earlier = store.earlier_faces()?;
    let mut rows = 0;
    let mut person: Option<PersonEntry> = None;
    let with_shard = |mut row: Row| {
        row.shard = shard.map(str::to_owned);
        row
    };
    for item in store.photos() {
        let (key, entry) = item?;
        // A photo whose face a mirror run deleted keeps its row: when it left.
        let removed = matches!(entry.state, PhotoState::Removed { .. });
        let current = meta.is_current(entry.source.as_deref(), entry.generation);
        // A photo that left the source and whose face a mirror run could not
        // remove keeps its row too: why its face stays.
        let left = if current || removed {
            None
        } else {
            match store.mirrored_photo(&key)? {
                Some(crate::store::MirrorMark::Left { reason, .. }) => Some(reason),
                _ => None,
            }
        };
        if !removed && !current && left.is_none() {
            continue;
        }
        if let Some(counts) = counts.as_deref_mut().filter(|_| !removed) {
            counts.count_photo(&entry);
        }
        if only.is_some_and(|o| !o.matches(entry.state.status())) {
            continue;
        }
        if person.as_ref().map(|p| p.person.as_str()) != Some(entry.person.as_str()) {
            person = store.person(&entry.person)?;
        }
        let mut row = Row::new(&entry, person.as_ref());
        let mut notes: Vec<String> = shared.note(&key).into_iter().collect();
        if let Some(reason) = left {
            notes.push(format!(
                "left the source; its face stays on the service: {reason}"
            ));
        }
        for (face_id, mark) in earlier.get(&key).into_iter().flatten().cloned() {
            notes.push(match mark {
                None => format!(
                    "face {face_id} of its earlier content stays on the service until a \
                     mirror run deletes it, once the new content is enrolled"
                ),
                Some(crate::store::MirrorMark::Deleted { at }) => format!(
                    "face {face_id} of its earlier content was deleted by a mirror run at {}",
                    utc_time(at)
                ),
                Some(_) => format!(
                    "face {face_id} of its earlier content: a mirror run was deleting it \
                     when it stopped (settled by the next run with --mirror)"
                ),
            });
        }
        for note in notes {
            row.reason = if row.reason.is_empty() {
                note
            } else {
                format!("{}; {note}", row.reason)
            };
        }
        faces_columns(store, &key, &entry, &mut row)?;
        writer.write(&with_shard(row))?;
        rows += 1;
    }
    for entry in store.not_taken() {
        let entry = entry?;
        if !meta.is_current(entry.source.as_deref(), entry.generation) {
            continue;
        }
        if let Some(counts) = counts.as_deref_mut() {
            counts.count_not_taken(&entry);
        }
        if only.is_some_and(|o| !o.matches(entry.status())) {
            continue;
        }
        writer.write(&with_shard(Row::not_taken(&entry)))?;
        rows += 1;
    }
    Ok(rows)
}

/// How many other listings of a shared photo its row names; the others are counted.
const SHARED_NAMED: usize = 3;

/// The warnings the rows of photos listed for two persons or more carry: "the same
/// photo is listed for person "bob" too (PATH)", or, for a photo many persons share
/// (a placeholder avatar), the first few other listings and a count.
///
/// The report stays linear in its rows: each note names at most [`SHARED_NAMED`]
/// other listings, made as its row is written; what is held is the store's record of
/// the shared photos (one entry a listing) and an index into it, never a list of the
/// other persons for each photo.
struct SharedNotes {
    contents: Vec<crate::store::SharedContent>,
    /// The distinct persons of each content.
    persons: Vec<usize>,
    /// Each shared listing: its content and its place in the content's listings.
    listings: std::collections::HashMap<PhotoKey, (usize, usize)>,
}

impl SharedNotes {
    fn read(store: &Store) -> crate::store::Result<SharedNotes> {
        Ok(SharedNotes::new(store.shared()?))
    }

    fn new(contents: Vec<crate::store::SharedContent>) -> SharedNotes {
        let mut listings = std::collections::HashMap::new();
        let persons = contents
            .iter()
            .enumerate()
            .map(|(c, content)| {
                for (i, photo) in content.photos.iter().enumerate() {
                    listings.insert(PhotoKey::new(&photo.person, &photo.image), (c, i));
                }
                content
                    .photos
                    .iter()
                    .map(|p| p.person.as_str())
                    .collect::<std::collections::HashSet<_>>()
                    .len()
            })
            .collect();
        SharedNotes {
            contents,
            persons,
            listings,
        }
    }

    /// The note of the photo at `key`, if other persons list it too.
    fn note(&self, key: &PhotoKey) -> Option<String> {
        let &(c, i) = self.listings.get(key)?;
        let photos = &self.contents[c].photos;
        let me = photos[i].person.as_str();
        let mut others = photos.iter().filter(|other| other.person != me);
        let named: Vec<_> = others.by_ref().take(SHARED_NAMED).collect();
        if named.is_empty() {
            return None;
        }
        let more = others.count();
        let listed = if more == 0 {
            named
                .iter()
                .map(|other| format!("person {:?} too ({})", other.person, other.origin))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            let listings = named.len() + more;
            let persons = self.persons[c] - 1;
            let first = named
                .iter()
                .map(|other| format!("person {:?} ({})", other.person, other.origin))
                .collect::<Vec<_>>()
                .join(", ");
            let times = if listings == persons {
                String::new()
            } else {
                format!(" in {listings} listings")
            };
            format!("{persons} other persons too{times} (first: {first}, and {more} more)")
        };
        Some(format!(
            "the same photo is listed for {listed}: enrolled for each as listed, check it"
        ))
    }
}

/// The `face_box` and `crop` columns of a photo, from what the store recorded.
fn faces_columns(
    store: &Store,
    key: &PhotoKey,
    entry: &PhotoEntry,
    row: &mut Row,
) -> anyhow::Result<()> {
    if let Some(hash) = &entry.hash {
        if let Some(detection) = store.faces(hash)? {
            row.face_box = detection.cell();
        }
    }
    if let Some(rect) = store.crop(key)? {
        row.crop = rect.to_string();
    }
    Ok(())
}

enum RowWriter<W: std::io::Write> {
    Csv(Box<csv::Writer<W>>),
    Jsonl(std::io::BufWriter<W>),
}

impl<W: std::io::Write> RowWriter<W> {
    /// A CSV report starts with its header, even when no row follows: an empty
    /// selection is still a manifest, with nothing to do.
    fn new(format: Format, out: W, shard_column: bool) -> anyhow::Result<Self> {
        Ok(match format {
            Format::Csv => {
                let mut w = csv::WriterBuilder::new()
                    .has_headers(false)
                    .from_writer(out);
                if shard_column {
                    w.write_record(COLUMNS.iter().chain(&["shard"]))?;
                } else {
                    w.write_record(COLUMNS)?;
                }
                RowWriter::Csv(Box::new(w))
            }
            Format::Jsonl => RowWriter::Jsonl(std::io::BufWriter::new(out)),
        })
    }

    fn write(&mut self, row: &Row) -> anyhow::Result<()> {
        match self {
            RowWriter::Csv(w) => w.serialize(row)?,
            RowWriter::Jsonl(w) => {
                serde_json::to_writer(&mut *w, row)?;
                w.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            RowWriter::Csv(mut w) => w.flush(),
            RowWriter::Jsonl(mut w) => w.flush(),
        }
    }
}

/// Photos of the current plan by status, and failures by code: what the store says
/// after a run, whatever earlier runs did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCounts {
    pub photos: u64,
    pub enrolled: u64,
    pub duplicate: u64,
    pub skipped: u64,
    pub failed: u64,
    pub pending: u64,
    /// Failures by service code (`None`: no code, e.g. bad input or a network error).
    #[serde(with = "code_keys")]
    pub failures_by_code: BTreeMap<Option<i64>, u64>,
    /// Files and folders of the source left deliberately, by reason (the unusable
    /// entries not taken are among the failed photos).
    #[serde(default)]
    pub ignored: BTreeMap<String, u64>,
    pub persons: u64,
    pub persons_failed: u64,
}

impl StoreCounts {
    pub fn read(store: &Store) -> crate::store::Result<StoreCounts> {
        let meta = store.meta()?;
        let mut counts = StoreCounts::default();
        for item in store.photos() {
            let (_, entry) = item?;
            if meta.is_current(entry.source.as_deref(), entry.generation) {
                counts.count_photo(&entry);
            }
        }
        for entry in store.not_taken() {
            let entry = entry?;
            if meta.is_current(entry.source.as_deref(), entry.generation) {
                counts.count_not_taken(&entry);
            }
        }
        counts.count_persons(store)?;
        Ok(counts)
    }

    /// Counts a photo of the job.
    fn count_photo(&mut self, entry: &PhotoEntry) {
        // Left the source, its face deleted: no longer one of the job's photos.
        if matches!(entry.state, PhotoState::Removed { .. }) {
            return;
        }
        self.photos += 1;
        match &entry.state {
            PhotoState::Pending | PhotoState::InDoubt | PhotoState::Deferred(_) => {
                self.pending += 1
            }
            PhotoState::Enrolled { .. } => self.enrolled += 1,
            PhotoState::Duplicate { .. } => self.duplicate += 1,
            PhotoState::Skipped { .. } | PhotoState::Full { .. } | PhotoState::Spare { .. } => {
                self.skipped += 1
            }
            PhotoState::Failed(f) => {
                self.failed += 1;
                *self.failures_by_code.entry(f.code).or_default() += 1;
            }
            PhotoState::Removed { .. } => unreachable!("counted above"),
        }
    }

    /// Counts an entry of the job's sources not taken as a photo.
    fn count_not_taken(&mut self, entry: &NotTaken) {
        if entry.failed {
            self.photos += 1;
            self.failed += 1;
            *self.failures_by_code.entry(None).or_default() += 1;
        } else {
            *self.ignored.entry(entry.class.clone()).or_default() += 1;
        }
    }

    /// Counts the persons of the job.
    fn count_persons(&mut self, store: &Store) -> crate::store::Result<()> {
        let meta = store.meta()?;
        for person in store.persons() {
            let person = person?;
            if !meta.person_is_current(person.generation) {
                continue;
            }
            self.persons += 1;
            if matches!(person.state, crate::store::PersonState::Failed { .. }) {
                self.persons_failed += 1;
            }
        }
        Ok(())
    }
}

/// Failures by code as JSON: object keys are strings, so a code is written as its
/// number and "no code" as `"none"`.
mod code_keys {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<Option<i64>, u64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            map.iter()
                .map(|(code, n)| (code.map_or_else(|| "none".to_owned(), |c| c.to_string()), n)),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<Option<i64>, u64>, D::Error> {
        let text: BTreeMap<String, u64> = BTreeMap::deserialize(deserializer)?;
        text.into_iter()
            .map(|(key, n)| match key.as_str() {
                "none" => Ok((None, n)),
                number => number
                    .parse()
                    .map(|c| (Some(c), n))
                    .map_err(serde::de::Error::custom),
            })
            .collect()
    }
}

/// The singular or plural of a noun for a count: "1 photo", "2 photos".
pub fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// A count with its noun, singular or plural: "1 call", "2 calls".
pub fn count(n: u64, one: &'static str, many: &'static str) -> String {
    format!("{n} {}", plural(n, one, many))
}

/// A size in bytes as every message writes one: binary units with one decimal
/// ("158.1 MiB"), and whole bytes under a KiB ("1 byte", "512 bytes").
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return count(n, "byte", "bytes");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// The summary printed at the end of every run.
#[derive(Debug)]
pub struct Summary<'a> {
    pub counts: &'a StoreCounts,
    pub tally: &'a Tally,
    pub elapsed: std::time::Duration,
    pub state_dir: &'a std::path::Path,
    pub report: Option<&'a std::path::Path>,
    /// Why `report` was not written this run, if it was not (the previous one stays).
    pub report_unwritten: Option<&'a str>,
    /// How the run ended, in words.
    pub ending: &'a str,
    /// Whether the run stopped before it went through the plan: the advice is then
    /// to resume, not to work on the failed photos yet.
    pub stopped: Stopped,
}

/// Whether and how a run stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// It went through the plan.
    No,
    /// By an error every later call would get too (exit 3).
    ByError,
    /// By a signal (exit 130).
    ByOperator,
}

impl std::fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = self.counts;
        let t = self.tally.snapshot();
        let secs = self.elapsed.as_secs_f64();
        let done = self.tally.photos_this_run();
        writeln!(f, "faceenroll: {}", self.ending)?;
        writeln!(
            f,
            "  persons: {} in the plan, {} created and {} reconciled this run, {} failed",
            c.persons, t.persons_created, t.persons_reconciled, c.persons_failed,
        )?;
        if t.changes_failed > 0 {
            writeln!(
                f,
                "  {} {} of persons' groups, name or tag failed this run (the log says why); \
                 the next run tries again",
                t.changes_failed,
                plural(t.changes_failed, "change", "changes"),
            )?;
        }
        writeln!(
            f,
            "  photos:  {} in the plan: {} enrolled, {} duplicate, {} skipped, {} failed, {} pending",
            c.photos, c.enrolled, c.duplicate, c.skipped, c.failed, c.pending
        )?;
        if !c.ignored.is_empty() {
            let total: u64 = c.ignored.values().sum();
            let by: Vec<String> = c.ignored.iter().map(|(k, n)| format!("{n} {k}")).collect();
            writeln!(
                f,
                "  not taken: {total} {} ({}), listed in the report as ignored",
                plural(total, "entry", "entries"),
                by.join(", ")
            )?;
        }
        for (code, n) in &c.failures_by_code {
            match code {
                Some(code) => writeln!(f, "    {n} failed with {}", codes::Described(*code))?,
                None => writeln!(
                    f,
                    "    {n} failed without a service code: unusable input, or no answer \
                     after retries (the report's reason column says which)"
                )?,
            }
        }
        writeln!(
            f,
            "  this run: {} in {secs:.1} s ({:.1} photos/s), {}, {}, {}",
            count(done, "photo", "photos"),
            if secs > 0.0 { done as f64 / secs } else { 0.0 },
            count(t.calls, "call", "calls"),
            count(t.retries, "retry", "retries"),
            count(t.rate_limited, "rate-limit answer", "rate-limit answers"),
        )?;
        let refused = t.limit_refused;
        if refused > 0 && t.limit_accepted == 0 {
            writeln!(
                f,
                "  the service refused requests of {} and more as too large and \
                 has accepted none yet ({} this run); photos that fit no request \
                 under that failed, and later runs start from this limit",
                bytes(refused),
                count(t.too_large, "refusal", "refusals"),
            )?;
        } else if refused > 0 {
            let accepted = t.limit_accepted;
            writeln!(
                f,
                "  the service refused bodies over ~{} (it refused {}; {} this run); \
                 chunks were cut to fit, and later runs start from this limit",
                bytes(accepted),
                bytes(refused),
                count(t.too_large, "refusal", "refusals"),
            )?;
        }
        let vanished = t.persons_vanished;
        if vanished > 0 {
            writeln!(
                f,
                "  {} gone from the service and created again; \
                 {} recorded as enrolled on them {} sent again",
                count(vanished, "person was", "persons were"),
                count(t.photos_resent, "photo", "photos"),
                plural(t.photos_resent, "was", "were")
            )?;
        }
        writeln!(
            f,
            "  calls in flight: up to {} at once ({} workers); service latency {}",
            t.peak_concurrency,
            t.workers,
            self.tally.latency().describe(),
        )?;
        let saved = t.bytes_saved;
        if saved > 0 {
            writeln!(f, "  normalizing photos saved {} of upload", bytes(saved))?;
        }
        writeln!(f, "  state:  {}", self.state_dir.display())?;
        match (self.report, self.report_unwritten) {
            (Some(report), Some(why)) => writeln!(f, "  report: {} {why}", report.display())?,
            (Some(report), None) => writeln!(f, "  report: {}", report.display())?,
            (None, _) => {}
        }
        let resume = "run the same command again: it resumes where it stopped";
        if self.stopped == Stopped::ByError {
            writeln!(
                f,
                "  next:   fix what stopped the job (above), then {resume}"
            )?;
        } else if self.stopped == Stopped::ByOperator {
            writeln!(f, "  next:   {resume}")?;
        } else if c.failed > 0 {
            writeln!(
                f,
                "  next:   faceenroll report --state {} --only failed > failed.csv\n          \
                 lists the failed photos as a manifest: fix them, then enroll failed.csv",
                self.state_dir.display()
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counts_and_sizes_are_written_one_way() {
        assert_eq!(count(1, "call", "calls"), "1 call");
        assert_eq!(count(0, "call", "calls"), "0 calls");
        assert_eq!(bytes(1), "1 byte");
        assert_eq!(bytes(1023), "1023 bytes");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(165_820_550), "158.1 MiB");
    }

    #[test]
    fn a_summary_of_one_says_one() {
        let tally = Tally::default();
        tally.call_sent();
        tally.retried();
        tally.rate_limited();
        tally.bytes_saved(165_820_550);
        let counts = StoreCounts::default();
        let text = Summary {
            counts: &counts,
            tally: &tally,
            elapsed: Duration::from_secs(1),
            state_dir: std::path::Path::new("state"),
            report: None,
            report_unwritten: None,
            ending: "finished",
            stopped: Stopped::No,
        }
        .to_string();
        assert!(
            text.contains("1 call, 1 retry, 1 rate-limit answer"),
            "{text}"
        );
        assert!(text.contains("saved 158.1 MiB of upload"), "{text}");
    }

    #[test]
    fn a_promoted_spare_is_settled_again_by_the_run() {
        let tally = Tally::default();
        // A run whose tally was not started from the store: nothing to take back.
        tally.spare_promoted();
        assert_eq!((tally.snapshot().skipped, tally.photos_this_run()), (0, 0));
        let counts = StoreCounts {
            skipped: 3,
            enrolled: 20,
            ..StoreCounts::default()
        };
        tally.settle(&counts);
        tally.spare_promoted();
        tally.photo(Counted::Enrolled);
        let t = tally.snapshot();
        assert_eq!((t.skipped, t.enrolled), (2, 21));
        assert_eq!(tally.photos_this_run(), 1);
    }

    fn shared(persons: &[&str]) -> SharedNotes {
        use crate::store::{SharedContent, SharedListing};
        let photos = persons
            .iter()
            .enumerate()
            .map(|(i, person)| SharedListing {
                person: (*person).to_owned(),
                image: ImageRef::File(format!("/archive/{person}/avatar-{i}.png").into()),
                origin: Origin::Tree {
                    path: format!("/archive/{person}/avatar-{i}.png").into(),
                },
            })
            .collect();
        SharedNotes::new(vec![SharedContent { photos }])
    }

    fn note_of(notes: &SharedNotes, i: usize) -> Option<String> {
        let listing = &notes.contents[0].photos[i];
        notes.note(&PhotoKey::new(&listing.person, &listing.image))
    }

    #[test]
    fn a_photo_two_persons_share_names_the_other_listing() {
        let notes = shared(&["ann", "bob", "bob"]);
        assert_eq!(
            note_of(&notes, 0).unwrap(),
            "the same photo is listed for person \"bob\" too (/archive/bob/avatar-1.png), \
             person \"bob\" too (/archive/bob/avatar-2.png): enrolled for each as listed, \
             check it"
        );
        // A person's own second listing is not another person's.
        assert!(note_of(&notes, 1).unwrap().contains("person \"ann\" too"));
        assert!(!note_of(&notes, 1).unwrap().contains("\"bob\""));
        let unshared = PhotoKey::new("carol", &ImageRef::File("/archive/x.png".into()));
        assert_eq!(notes.note(&unshared), None);
    }

    #[test]
    fn a_photo_many_persons_share_is_named_once_with_a_count() {
        let names: Vec<String> = (0..2_000).map(|i| format!("p{i:04}")).collect();
        let mut persons: Vec<&str> = names.iter().map(String::as_str).collect();
        persons.insert(1, "p0000");
        let notes = shared(&persons);
        let longest = "/archive/p0000/avatar-2000.png".len();
        for i in 0..persons.len() {
            let note = note_of(&notes, i).unwrap();
            // Bounded by the listings it names, whatever the number of persons: the
            // report is linear in its rows.
            assert!(
                note.len() <= 200 + SHARED_NAMED * (longest + 20),
                "{} bytes: {note}",
                note.len()
            );
            assert!(note.contains("1999 other persons too"), "{note}");
        }
        assert_eq!(
            note_of(&notes, 0).unwrap(),
            "the same photo is listed for 1999 other persons too (first: \
             person \"p0001\" (/archive/p0001/avatar-2.png), \
             person \"p0002\" (/archive/p0002/avatar-3.png), \
             person \"p0003\" (/archive/p0003/avatar-4.png), and 1996 more): \
             enrolled for each as listed, check it"
        );
        // p0001 sees p0000's two listings among the others.
        assert!(
            note_of(&notes, 2)
                .unwrap()
                .contains("1999 other persons too in 2000 listings"),
            "{:?}",
            note_of(&notes, 2)
        );
    }

    #[test]
    fn utc_time_names_the_civil_date_and_time() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00 UTC");
    }

    #[test]
    fn latency_percentiles_are_within_five_percent() {
        let l = Latencies::default();
        assert_eq!(l.percentile(0.5), None);
        assert_eq!(l.describe(), "none answered");
        // 90 calls of 300 ms and 10 of 2 s.
        for _ in 0..90 {
            l.record(Duration::from_millis(300));
        }
        for _ in 0..10 {
            l.record(Duration::from_secs(2));
        }
        let p50 = l.percentile(0.5).unwrap().as_secs_f64();
        let p95 = l.percentile(0.95).unwrap().as_secs_f64();
        assert!((p50 - 0.3).abs() <= 0.3 * 0.05, "{p50}");
        assert!((p95 - 2.0).abs() <= 2.0 * 0.05, "{p95}");
        assert!(l.describe().starts_with("p50 3"), "{}", l.describe());
        // Very fast and very slow answers land in the end buckets.
        l.record(Duration::from_micros(10));
        l.record(Duration::from_secs(100_000));
        assert!(l.percentile(1.0).unwrap() > Duration::from_secs(3600));
    }
}
