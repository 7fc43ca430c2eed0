//! What a planning pass found and decided, as the operator is told.

use crate::limits::GroupLimits;
use std::collections::BTreeMap;

/// Problems kept in a [`PlanSummary`] to show the operator; the store holds all.
pub const MAX_LISTED_PROBLEMS: usize = 1000;
/// What a problem shown to the operator is, as the plan lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemStatus {
    /// Unusable input: the photo (or entry) fails the run.
    Invalid,
    /// An entry of the source that is no photo (hidden, stray, a link not followed).
    Ignored,
    /// A photo not sent: not a photo by its name, or over the faces per person.
    Skipped,
    /// A photo not sent because its content or its listing is there already.
    Duplicate,
    /// Sent, but worth a look: the same photo listed for two persons.
    Warning,
}

impl ProblemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemStatus::Invalid => "invalid",
            ProblemStatus::Ignored => "ignored",
            ProblemStatus::Skipped => "skipped",
            ProblemStatus::Duplicate => "duplicate",
            ProblemStatus::Warning => "warning",
        }
    }
}

impl std::fmt::Display for ProblemStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A problem shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanProblem {
    pub status: ProblemStatus,
    /// What is wrong, starting with the place (file, and line of a manifest).
    pub message: String,
    /// An error of the source that is not an invalid photo (a photo enrolled before
    /// that cannot be read now): it holds a mirror's deletions.
    pub source_error: bool,
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
    /// Of [`Self::invalid`], the rows an earlier run found invalid for the same
    /// reason: known from before, not new this run.
    pub invalid_before: usize,
    /// Failed in an earlier run and not retried.
    pub failed_before: usize,
    /// Listed photos enrolled before whose file cannot be read now, or whose line
    /// is unusable now (an emptied or bad `group_ids`): kept as enrolled, and an
    /// error of the source for `--mirror`.
    pub enrolled_errors: usize,
    /// Listed photos enrolled before whose file is gone now (a manifest row whose
    /// file was deleted): kept as enrolled, the listing says the photo stays. Not an
    /// error of the source for `--mirror`: the listing was read whole, and a file
    /// gone cannot make anything look removed.
    pub kept_gone: usize,
    /// Listings of a photo already listed (same person, same path or URL).
    pub relisted: usize,
    /// Photos (contents) listed for two persons or more, each enrolled for each.
    pub shared: usize,
    /// Entries of the source not taken as photos (hidden or stray files, links,
    /// empty person folders, unusable manifest rows), by reason in a few words.
    pub not_taken: BTreeMap<&'static str, usize>,
    /// Of those, the ones that are unusable input (they fail the run).
    pub not_taken_failed: usize,
    /// Photos listed by the source, before listings of the same photo are merged.
    pub listed: usize,
    /// Whether a listed photo was known to the job already, by path or by content
    /// (counted, up to one, only for a source the job has not planned before).
    pub known: usize,
    /// The earlier source of the job this one is, at a new path (the same photos by
    /// content): it took that source's place, its photos keeping their state.
    pub moved_from: Option<String>,
    /// The job's earlier sources this plan took out of the job: a `--mirror` run's
    /// source is the job's whole source, so every other one is gone from it.
    pub gone_sources: Vec<String>,
    pub calls: CallCount,
    /// The first [`MAX_LISTED_PROBLEMS`] problems, in the order found.
    pub problems: Vec<PlanProblem>,
    /// All problems, listed or not.
    pub problems_total: usize,
    /// The shard planned, and what the source holds for the other shards.
    pub other_shards: Option<OtherShardsCount>,
    /// Valid persons of the plan in each group.
    pub persons_per_group: BTreeMap<String, usize>,
}

/// What a shard's plan left to the other shards of the job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OtherShardsCount {
    pub shard: crate::shard::Shard,
    pub persons: usize,
    pub photos: usize,
}

impl PlanSummary {
    /// What the reading of the source tells `--mirror`: how many photos it listed,
    /// and its errors (unusable entries, invalid photos, listed photos unreadable).
    pub fn source_health(&self) -> crate::deletion::mirror::SourceHealth {
        use crate::deletion::mirror::ERRORS_NAMED;
        crate::deletion::mirror::SourceHealth {
            listed: self.listed,
            errors: self.invalid + self.not_taken_failed + self.enrolled_errors,
            named: self
                .problems
                .iter()
                .filter(|p| p.status == ProblemStatus::Invalid || p.source_error)
                .take(ERRORS_NAMED)
                .map(|p| p.message.clone())
                .collect(),
        }
    }

    /// What the plan would put past the service's group limits, one sentence each.
    ///
    /// Only this plan's persons are counted: persons other tools put in a group
    /// count too, so the run checks again against the service's own counts before
    /// its first `newperson` (`engine::groups`) and fails the persons that do not
    /// fit. A plan that passes a limit on its own is told here, before any call.
    pub fn group_warnings(&self, limits: &GroupLimits) -> Vec<String> {
        let mut out = Vec::new();
        let groups = self.persons_per_group.len();
        if groups > limits.groups {
            out.push(format!(
                "{groups} groups in this plan: an AppID holds at most {} groups (-1311 \
                 past it), so the persons of at least {} of them will fail",
                limits.groups,
                groups - limits.groups
            ));
        }
        for (group, persons) in &self.persons_per_group {
            if *persons > limits.persons_per_group {
                out.push(format!(
                    "group {group:?}: {persons} persons in this plan: a group holds at most \
                     {} persons (-1310 past it), so at least {} of them will fail (the \
                     persons are created in person id order)",
                    limits.persons_per_group,
                    persons - limits.persons_per_group
                ));
            }
        }
        out
    }

    pub(super) fn problem(&mut self, status: ProblemStatus, message: String) {
        self.problems_total += 1;
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(PlanProblem {
                status,
                message,
                source_error: false,
            });
        }
    }

    /// A listed photo enrolled before that cannot be read now, or whose line is
    /// unusable now: its face is kept, and with `--mirror` it holds the
    /// deletions. Listed as a warning.
    pub(super) fn enrolled_source_error(&mut self, message: String) {
        self.enrolled_errors += 1;
        self.problems_total += 1;
        if self.problems.len() < MAX_LISTED_PROBLEMS {
            self.problems.push(PlanProblem {
                status: ProblemStatus::Warning,
                message,
                source_error: true,
            });
        }
    }
}

/// Entries not taken, by reason: "3 hidden, 1 empty person folder".
pub fn not_taken_words(by_class: &BTreeMap<&'static str, usize>) -> String {
    by_class
        .iter()
        .map(|(class, n)| format!("{n} {class}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_past_a_group_limit_says_by_how_much() {
        let limits = GroupLimits {
            persons_per_group: 3,
            groups: 2,
        };
        let mut summary = PlanSummary {
            persons_per_group: [("a".to_owned(), 3), ("b".to_owned(), 1)].into(),
            ..PlanSummary::default()
        };
        assert!(summary.group_warnings(&limits).is_empty());
        summary.persons_per_group.insert("b".to_owned(), 5);
        summary.persons_per_group.insert("c".to_owned(), 1);
        let warnings = summary.group_warnings(&limits);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with("3 groups in this plan"),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[0].contains("at least 1 of them"),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[1].starts_with("group \"b\": 5 persons"),
            "{}",
            warnings[1]
        );
        assert!(
            warnings[1].contains("at least 2 of them will fail"),
            "{}",
            warnings[1]
        );
    }
}
