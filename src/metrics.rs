//! What a run tells machines: the figures of a run in the Prometheus text format,
//! for node_exporter's textfile collector, and the summary as JSON, for wrappers.
//!
//! [`Figures`] gathers the counts once, from the plan and the live tally during a run
//! or from the store at its end; [`render`] turns them into text and is pure, so the
//! format is tested apart from any run. The file is replaced whole
//! ([`crate::output_file`]), so a collector never reads half a file.

use crate::plan::PlanSummary;
use crate::report::{StoreCounts, Summary, Tally};
use crate::service::api::Call;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

/// The figures of a run, as the metrics file shows them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Photos of the plan by status: enrolled, duplicate, skipped, failed, pending.
    pub photos: [(&'static str, u64); 5],
    /// Persons in the plan.
    pub persons: u64,
    /// Persons by what became of them: created and reconciled this run, failed.
    pub persons_by_outcome: [(&'static str, u64); 3],
    /// Calls of this run by call and class of the answer (`ok`, `transient`, ...).
    pub calls: BTreeMap<(Call, &'static str), u64>,
    pub retries: u64,
    pub rate_limited: u64,
    pub duration: Duration,
    /// When the last run that finished ended (Unix seconds), this one or an earlier.
    pub last_finished: Option<u64>,
    /// The job's shard (`I/N`) when it is split: a `shard` label on every sample.
    pub shard: Option<String>,
    /// What `--mirror` deleted this run, when it ran.
    pub mirror: Option<MirrorFigures>,
}

/// What a `--mirror` run deleted, or why it deleted nothing: the summary JSON's
/// `mirror` object and the `faceenroll_mirror_*` metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorFigures {
    pub persons_deleted: u64,
    pub faces_deleted: u64,
    /// Groups taken from persons still listed (one for each person and group).
    pub groups_deleted: u64,
    /// Persons left whole or in part (the log and the summary give each reason).
    pub persons_left: u64,
    /// Persons an earlier run left, said then and unchanged since (not in the exit
    /// code).
    pub persons_left_earlier: u64,
    /// Deletions that failed this run (planned again by the next).
    pub failed: u64,
    /// Why every deletion was held back, when a guard held them.
    pub held: Option<String>,
}

impl Figures {
    /// The figures while a run goes on: the plan it started from, moved on by what
    /// the tally has counted since.
    pub fn during(
        plan: &PlanSummary,
        tally: &Tally,
        calls: BTreeMap<(Call, &'static str), u64>,
        duration: Duration,
        last_finished: Option<u64>,
    ) -> Figures {
        let to_send = (plan.pending + plan.in_doubt) as u64;
        Figures {
            photos: [
                ("enrolled", plan.enrolled as u64 + tally.snapshot().enrolled),
                (
                    "duplicate",
                    plan.duplicate as u64 + tally.snapshot().duplicate,
                ),
                ("skipped", plan.skipped as u64 + tally.snapshot().skipped),
                (
                    "failed",
                    (plan.invalid + plan.failed_before) as u64 + tally.snapshot().failed,
                ),
                ("pending", to_send.saturating_sub(tally.photos_done())),
            ],
            persons: plan.persons as u64,
            persons_by_outcome: persons_by_outcome(tally, 0),
            calls,
            retries: tally.snapshot().retries,
            rate_limited: tally.snapshot().rate_limited,
            duration,
            last_finished,
            shard: None,
            mirror: None,
        }
    }

    /// The same figures labelled with the job's shard when it is split.
    pub fn of_shard(self, shard: crate::shard::Shard) -> Figures {
        Figures {
            shard: shard.is_split().then(|| shard.to_string()),
            ..self
        }
    }

    /// The same figures with what `--mirror` did, when it ran.
    pub fn with_mirror(self, mirror: Option<MirrorFigures>) -> Figures {
        Figures { mirror, ..self }
    }

    /// The figures of a finished run: the same the summary prints.
    pub fn at_end(
        summary: &Summary<'_>,
        calls: BTreeMap<(Call, &'static str), u64>,
        last_finished: Option<u64>,
    ) -> Figures {
        let c = summary.counts;
        Figures {
            photos: [
                ("enrolled", c.enrolled),
                ("duplicate", c.duplicate),
                ("skipped", c.skipped),
                ("failed", c.failed),
                ("pending", c.pending),
            ],
            persons: c.persons,
            persons_by_outcome: persons_by_outcome(summary.tally, c.persons_failed),
            calls,
            retries: summary.tally.snapshot().retries,
            rate_limited: summary.tally.snapshot().rate_limited,
            duration: summary.elapsed,
            last_finished,
            shard: None,
            mirror: None,
        }
    }
}

fn persons_by_outcome(tally: &Tally, failed: u64) -> [(&'static str, u64); 3] {
    [
        ("created", tally.snapshot().persons_created),
        ("reconciled", tally.snapshot().persons_reconciled),
        ("failed", failed),
    ]
}

/// The figures in the Prometheus text exposition format (version 0.0.4).
pub fn render(f: &Figures) -> String {
    let mut out = String::new();
    // Every sample of a shard's file carries its shard, first among its labels.
    let shard = f.shard.as_ref().map(|s| format!("shard=\"{}\"", escape(s)));
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let labels = match (&shard, labels.strip_prefix('{')) {
                (None, _) => labels.clone(),
                (Some(shard), None) => format!("{{{shard}}}"),
                (Some(shard), Some(rest)) => format!("{{{shard},{rest}"),
            };
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let by = |label: &str, pairs: &[(&str, u64)]| -> Vec<(String, f64)> {
        pairs
            .iter()
            .map(|(v, n)| (format!("{{{label}=\"{}\"}}", escape(v)), *n as f64))
            .collect()
    };
    family(
        "faceenroll_photos",
        "gauge",
        "Photos of the job's plan by status.",
        &by("status", &f.photos),
    );
    family(
        "faceenroll_persons",
        "gauge",
        "Persons in the job's plan.",
        &[(String::new(), f.persons as f64)],
    );
    family(
        "faceenroll_persons_by_outcome",
        "gauge",
        "Persons created and reconciled by this run, and persons of the plan that failed.",
        &by("outcome", &f.persons_by_outcome),
    );
    let calls: Vec<(String, f64)> = f
        .calls
        .iter()
        .map(|((call, class), n)| {
            (
                format!("{{call=\"{}\",class=\"{}\"}}", call.name(), escape(class)),
                *n as f64,
            )
        })
        .collect();
    family(
        "faceenroll_calls_total",
        "counter",
        "Calls of this run by call and class of the service's answer.",
        &calls,
    );
    family(
        "faceenroll_retries_total",
        "counter",
        "Calls and images of this run sent again after a transient error or rate limit.",
        &[(String::new(), f.retries as f64)],
    );
    family(
        "faceenroll_rate_limited_total",
        "counter",
        "Rate-limit answers (code 15) of this run.",
        &[(String::new(), f.rate_limited as f64)],
    );
    family(
        "faceenroll_run_duration_seconds",
        "gauge",
        "How long this run has taken.",
        &[(String::new(), f.duration.as_secs_f64())],
    );
    if let Some(m) = &f.mirror {
        family(
            "faceenroll_mirror_deleted",
            "gauge",
            "What --mirror deleted this run, by kind.",
            &by(
                "kind",
                &[
                    ("person", m.persons_deleted),
                    ("face", m.faces_deleted),
                    ("group", m.groups_deleted),
                ],
            ),
        );
        family(
            "faceenroll_mirror_left",
            "gauge",
            "Persons --mirror left whole or in part this run (see the log for why).",
            &[(String::new(), m.persons_left as f64)],
        );
        family(
            "faceenroll_mirror_held",
            "gauge",
            "1 when a guard held every deletion of this run back (exit 4), else 0.",
            &[(String::new(), f64::from(u8::from(m.held.is_some())))],
        );
    }
    if let Some(at) = f.last_finished {
        family(
            "faceenroll_last_success_timestamp_seconds",
            "gauge",
            "When the last run that finished (exit 0 or 1) ended, in Unix seconds.",
            &[(String::new(), at as f64)],
        );
    }
    out
}

/// A label value as the text format writes it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// What `--summary-json` holds after a run that stopped before it could make its
/// summary (exit 2, or 3 when the progress database could not be written): how it
/// ended and its exit code, so that a wrapper never reads an earlier run's summary
/// as this run's.
#[derive(Debug, Clone, Serialize)]
pub struct StoppedJson {
    /// How the run ended, in words.
    pub ending: String,
    pub exit_code: i32,
}

/// Rewrites the summary at `path` as [`StoppedJson`]; where that cannot be written,
/// removes what is there, so no earlier summary stands in for this run's.
pub fn write_stopped_summary(path: &Path, stopped: &StoppedJson) {
    let json = serde_json::to_string_pretty(stopped).expect("the ending serializes");
    if crate::output_file::replace(path, &(json + "\n")).is_err() {
        let _ = std::fs::remove_file(path);
    }
}

/// The summary of a run as JSON, for wrappers.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryJson {
    /// How the run ended, in words.
    pub ending: String,
    /// The exit code of the run ([`crate::exit`]).
    pub exit_code: i32,
    pub persons: u64,
    pub persons_created: u64,
    pub persons_reconciled: u64,
    pub persons_failed: u64,
    pub photos: u64,
    pub enrolled: u64,
    pub duplicate: u64,
    pub skipped: u64,
    pub failed: u64,
    pub pending: u64,
    /// Of `failed`, the photos known from earlier runs and unchanged (not in the exit
    /// code unless `--strict`).
    pub failed_earlier: u64,
    /// Changes of persons (groups, name, tag) refused this run past their retries.
    pub changes_failed: u64,
    /// Failed photos by service code (`null`: no code).
    pub failures_by_code: Vec<CodeCount>,
    /// Photos this run settled (enrolled, duplicate, skipped or failed by its calls),
    /// as the summary's "this run: N photos"; those the plan settled before it are
    /// in the counts by status above.
    pub photos_this_run: u64,
    pub calls: u64,
    pub retries: u64,
    pub rate_limited: u64,
    pub bytes_saved: u64,
    pub elapsed_secs: f64,
    pub state_dir: String,
    pub report: Option<String>,
    /// The job's shard (`I/N`) when it is split.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// What `--mirror` deleted, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<MirrorFigures>,
    /// The job's earlier sources this run's plan took out of the job (a `--mirror`
    /// run's source is the job's whole source).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gone_sources: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CodeCount {
    pub code: Option<i64>,
    pub count: u64,
}

impl SummaryJson {
    pub fn new(s: &Summary<'_>) -> SummaryJson {
        let c: &StoreCounts = s.counts;
        let t = s.tally.snapshot();
        SummaryJson {
            ending: s.ending.to_owned(),
            exit_code: 0,
            persons: c.persons,
            persons_created: t.persons_created,
            persons_reconciled: t.persons_reconciled,
            persons_failed: c.persons_failed,
            photos: c.photos,
            enrolled: c.enrolled,
            duplicate: c.duplicate,
            skipped: c.skipped,
            failed: c.failed,
            pending: c.pending,
            failed_earlier: 0,
            changes_failed: t.changes_failed,
            failures_by_code: c
                .failures_by_code
                .iter()
                .map(|(code, count)| CodeCount {
                    code: *code,
                    count: *count,
                })
                .collect(),
            photos_this_run: s.tally.photos_this_run(),
            calls: t.calls,
            retries: t.retries,
            rate_limited: t.rate_limited,
            bytes_saved: t.bytes_saved,
            elapsed_secs: s.elapsed.as_secs_f64(),
            state_dir: s.state_dir.display().to_string(),
            report: s.report.map(|p| p.display().to_string()),
            shard: None,
            mirror: None,
            gone_sources: Vec::new(),
        }
    }

    /// The same summary naming the job's shard when it is split.
    pub fn of_shard(self, shard: crate::shard::Shard) -> SummaryJson {
        SummaryJson {
            shard: shard.is_split().then(|| shard.to_string()),
            ..self
        }
    }

    /// The same summary with the run's exit code and the failures known from
    /// earlier runs.
    pub fn with_exit(self, exit: crate::exit::Exit, failed_earlier: u64) -> SummaryJson {
        SummaryJson {
            exit_code: exit.code(),
            failed_earlier,
            ..self
        }
    }

    /// The same summary with what `--mirror` did, when it ran.
    pub fn with_mirror(self, mirror: Option<MirrorFigures>) -> SummaryJson {
        SummaryJson { mirror, ..self }
    }

    /// The same summary naming the sources that left the job.
    pub fn with_gone_sources(self, gone_sources: Vec<String>) -> SummaryJson {
        SummaryJson {
            gone_sources,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures() -> Figures {
        let mut calls = BTreeMap::new();
        calls.insert((Call::AddFace, "ok"), 7);
        calls.insert((Call::AddFace, "rate_limited"), 2);
        calls.insert((Call::NewPerson, "ok"), 3);
        Figures {
            photos: [
                ("enrolled", 40),
                ("duplicate", 1),
                ("skipped", 2),
                ("failed", 3),
                ("pending", 0),
            ],
            persons: 3,
            persons_by_outcome: [("created", 3), ("reconciled", 0), ("failed", 0)],
            calls,
            retries: 2,
            rate_limited: 2,
            duration: Duration::from_millis(1500),
            last_finished: Some(1_700_000_000),
            shard: None,
            mirror: None,
        }
    }

    #[test]
    fn a_shard_labels_every_sample() {
        let shard = crate::shard::Shard::new(1, 3).unwrap();
        let text = render(&figures().of_shard(shard));
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"faceenroll_photos{shard=\"1/3\",status=\"enrolled\"} 40"));
        assert!(lines.contains(&"faceenroll_run_duration_seconds{shard=\"1/3\"} 1.5"));
        for line in lines.iter().filter(|l| !l.starts_with('#')) {
            assert!(line.contains("{shard=\"1/3\""), "{line}");
        }
        // A job not split has no shard label.
        let whole = render(&figures().of_shard(crate::shard::Shard::WHOLE));
        assert_eq!(whole, render(&figures()));
    }

    #[test]
    fn every_family_has_help_and_type_before_its_samples() {
        let text = render(&figures());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"faceenroll_photos{status=\"enrolled\"} 40"));
        assert!(
            lines.contains(&"faceenroll_calls_total{call=\"addface\",class=\"rate_limited\"} 2")
        );
        assert!(lines.contains(&"faceenroll_run_duration_seconds 1.5"));
        assert!(lines.contains(&"faceenroll_last_success_timestamp_seconds 1700000000"));
        let mut declared = std::collections::HashSet::new();
        for (i, line) in lines.iter().enumerate() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert_eq!(lines[i + 1].split(' ').nth(2), Some(name), "{line}");
                declared.insert(name.to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                assert!(declared.contains(name), "{name} sampled before # HELP");
            }
        }
    }

    #[test]
    fn no_last_success_is_no_sample() {
        let text = render(&Figures {
            last_finished: None,
            ..figures()
        });
        assert!(!text.contains("faceenroll_last_success"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
