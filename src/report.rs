//! What a run tells the operator: the live tally the workers report to, and the
//! figures of the summary.
//!
//! Workers never print. They report each event to one [`Tally`], which the progress
//! display reads, and the summary is drawn from the tally and the store at the end.

use crate::model::ImageRef;
use crate::service::codes;
use crate::store::{FaceRef, Origin, PersonEntry, PhotoEntry, PhotoState, Store};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

/// Running counts of one run, shared by all workers.
#[derive(Debug, Default)]
pub struct Tally {
    pub enrolled: AtomicU64,
    pub duplicate: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    pub persons_created: AtomicU64,
    pub persons_reconciled: AtomicU64,
    pub persons_failed: AtomicU64,
    pub persons_done: AtomicU64,
    pub calls: AtomicU64,
    pub retries: AtomicU64,
    pub rate_limited: AtomicU64,
    pub bytes_saved: AtomicU64,
    /// Persons the service no longer had, created again.
    pub persons_vanished: AtomicU64,
    /// Photos recorded as enrolled on a vanished person, sent again.
    pub photos_resent: AtomicU64,
    /// Requests the service refused as too large in this run (23 or HTTP 413).
    pub too_large: AtomicU64,
    /// The smallest request the service refused as too large, this run or earlier
    /// (0: none), and the largest it accepted, as the job learned them.
    pub limit_refused: AtomicU64,
    pub limit_accepted: AtomicU64,
    failures: Mutex<BTreeMap<Option<i64>, u64>>,
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

    /// Photos finished in this run, whatever their status.
    pub fn photos_done(&self) -> u64 {
        self.enrolled.load(Relaxed)
            + self.duplicate.load(Relaxed)
            + self.skipped.load(Relaxed)
            + self.failed.load(Relaxed)
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
}

impl Only {
    fn matches(self, state: &PhotoState) -> bool {
        self.status() == state.status()
    }

    fn status(self) -> &'static str {
        match self {
            Only::Enrolled => "enrolled",
            Only::Duplicate => "duplicate",
            Only::Skipped => "skipped",
            Only::Failed => "failed",
            Only::Pending => "pending",
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
            | PhotoState::Full { reason } => (String::new(), None, reason.clone()),
            PhotoState::Failed(f) => (String::new(), f.code, f.message.clone()),
            PhotoState::Pending => (String::new(), None, String::new()),
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
        let (source, line) = match &entry.origin {
            Origin::Tree { path } => (path.display().to_string(), None),
            Origin::Manifest { file, line } => (format!("{}:{line}", file.display()), Some(*line)),
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
            group_ids: fields
                .map(|f| {
                    f.groups
                        .iter()
                        .map(|g| g.as_str())
                        .collect::<Vec<_>>()
                        .join(";")
                })
                .unwrap_or_default(),
            person_name: fields.and_then(|f| f.name.clone()).unwrap_or_default(),
            tag: fields.and_then(|f| f.tag.clone()).unwrap_or_default(),
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
        }
    }
}

/// The format of `faceenroll report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Writes one row per input photo of the current plan generation, answering how
/// many rows it wrote.
pub fn write_report(
    store: &Store,
    only: Option<Only>,
    format: Format,
    out: impl std::io::Write,
) -> anyhow::Result<u64> {
    let generation = store.meta()?.generation;
    let mut writer = RowWriter::new(format, out);
    let mut rows = 0;
    let mut person: Option<PersonEntry> = None;
    for item in store.photos() {
        let (_, entry) = item?;
        if entry.generation != generation || only.is_some_and(|o| !o.matches(&entry.state)) {
            continue;
        }
        if person.as_ref().map(|p| p.person.as_str()) != Some(entry.person.as_str()) {
            person = store.person(&entry.person)?;
        }
        writer.write(&Row::new(&entry, person.as_ref()))?;
        rows += 1;
    }
    writer.finish()?;
    Ok(rows)
}

enum RowWriter<W: std::io::Write> {
    Csv(Box<csv::Writer<W>>),
    Jsonl(std::io::BufWriter<W>),
}

impl<W: std::io::Write> RowWriter<W> {
    fn new(format: Format, out: W) -> Self {
        match format {
            Format::Csv => RowWriter::Csv(Box::new(csv::Writer::from_writer(out))),
            Format::Jsonl => RowWriter::Jsonl(std::io::BufWriter::new(out)),
        }
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
    pub failures_by_code: BTreeMap<Option<i64>, u64>,
    pub persons: u64,
    pub persons_failed: u64,
}

impl StoreCounts {
    pub fn read(store: &Store) -> crate::store::Result<StoreCounts> {
        let generation = store.meta()?.generation;
        let mut counts = StoreCounts::default();
        for item in store.photos() {
            let (_, entry) = item?;
            if entry.generation != generation {
                continue;
            }
            counts.photos += 1;
            match &entry.state {
                PhotoState::Pending | PhotoState::InDoubt => counts.pending += 1,
                PhotoState::Enrolled { .. } => counts.enrolled += 1,
                PhotoState::Duplicate { .. } => counts.duplicate += 1,
                PhotoState::Skipped { .. } | PhotoState::Full { .. } => counts.skipped += 1,
                PhotoState::Failed(f) => {
                    counts.failed += 1;
                    *counts.failures_by_code.entry(f.code).or_default() += 1;
                }
            }
        }
        for person in store.persons() {
            let person = person?;
            if person.generation != generation {
                continue;
            }
            counts.persons += 1;
            if matches!(person.state, crate::store::PersonState::Failed { .. }) {
                counts.persons_failed += 1;
            }
        }
        Ok(counts)
    }
}

/// The summary printed at the end of every run.
#[derive(Debug)]
pub struct Summary<'a> {
    pub counts: &'a StoreCounts,
    pub tally: &'a Tally,
    pub elapsed: std::time::Duration,
    pub state_dir: &'a std::path::Path,
    pub report: Option<&'a std::path::Path>,
    /// How the run ended, in words.
    pub ending: &'a str,
}

impl std::fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::sync::atomic::Ordering::Relaxed;
        let c = self.counts;
        let t = self.tally;
        let secs = self.elapsed.as_secs_f64();
        let done = t.photos_done();
        writeln!(f, "faceenroll: {}", self.ending)?;
        writeln!(
            f,
            "  persons: {} in the plan, {} created and {} reconciled this run, {} failed",
            c.persons,
            t.persons_created.load(Relaxed),
            t.persons_reconciled.load(Relaxed),
            c.persons_failed,
        )?;
        writeln!(
            f,
            "  photos:  {} in the plan: {} enrolled, {} duplicate, {} skipped, {} failed, {} pending",
            c.photos, c.enrolled, c.duplicate, c.skipped, c.failed, c.pending
        )?;
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
            "  this run: {done} photos in {secs:.1} s ({:.1} photos/s), {} calls, {} retries, {} rate-limit answers",
            if secs > 0.0 { done as f64 / secs } else { 0.0 },
            t.calls.load(Relaxed),
            t.retries.load(Relaxed),
            t.rate_limited.load(Relaxed),
        )?;
        let refused = t.limit_refused.load(Relaxed);
        if refused > 0 {
            let accepted = t.limit_accepted.load(Relaxed);
            writeln!(
                f,
                "  the service refused bodies over ~{} (it accepted {accepted} bytes and \
                 refused {refused}; {} refusals this run); chunks were cut to fit, and later \
                 runs start from this limit",
                indicatif::HumanBytes(accepted),
                t.too_large.load(Relaxed),
            )?;
        }
        let vanished = t.persons_vanished.load(Relaxed);
        if vanished > 0 {
            writeln!(
                f,
                "  {vanished} persons were gone from the service and were created again; \
                 {} photos recorded as enrolled on them were sent again",
                t.photos_resent.load(Relaxed)
            )?;
        }
        let saved = t.bytes_saved.load(Relaxed);
        if saved > 0 {
            writeln!(f, "  normalizing photos saved {saved} bytes of upload")?;
        }
        writeln!(f, "  state:  {}", self.state_dir.display())?;
        if let Some(report) = self.report {
            writeln!(f, "  report: {}", report.display())?;
        }
        if c.failed > 0 {
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
    use super::utc_time;

    #[test]
    fn utc_time_names_the_civil_date_and_time() {
        assert_eq!(utc_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_time(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_time(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
