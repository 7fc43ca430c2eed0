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
    /// Calls allowed in flight now.
    pub concurrency: AtomicU64,
    /// The most calls in flight at once in this run.
    pub peak_concurrency: AtomicU64,
    /// Worker threads started.
    pub workers: AtomicU64,
    /// How long the service took to answer, over the whole run.
    pub latency: Latencies,
    failures: Mutex<BTreeMap<Option<i64>, u64>>,
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
            PhotoState::Duplicate { reason } | PhotoState::Skipped { reason } => {
                (String::new(), None, reason.clone())
            }
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
                PhotoState::Skipped { .. } => counts.skipped += 1,
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
        writeln!(
            f,
            "  calls in flight: up to {} at once ({} workers); service latency {}",
            t.peak_concurrency.load(Relaxed),
            t.workers.load(Relaxed),
            t.latency.describe(),
        )?;
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
    use super::*;
    use std::time::Duration;

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
