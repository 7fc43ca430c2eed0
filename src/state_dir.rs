//! The layout of a job's state directory (`--state DIR`, `./faceenroll-state` by
//! default): every file and folder the program keeps there is named here and nowhere
//! else.
//!
//! ```text
//! DIR/
//!   db/             the progress database (sled)           store
//!   lock            the job lock, holding the running pid    store, status
//!   plan-sort/      a plan's sorted runs, removed after it  plan
//!   progress.json   the running job's figures, for status   cli::progress
//!   report.csv      one row per photo, unless --report      ops::enroll
//!   drift.csv       verify's report (drift.jsonl as JSON)   ops::verify
//! ```

use std::path::{Path, PathBuf};

/// The state directory used when none is given: `./faceenroll-state`.
pub const DEFAULT_STATE_DIR: &str = "faceenroll-state";

/// A job's state directory, and the paths of what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir(PathBuf);

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> StateDir {
        StateDir(path.into())
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Whether the directory holds a job (its progress database and lock), as a
    /// directory tree that holds it must not be walked as photos: two `stat`s, the
    /// second only when the first finds a `db` folder.
    pub fn holds_job(&self) -> bool {
        self.db().is_dir() && self.lock().is_file()
    }

    /// The progress database (a sled directory).
    pub fn db(&self) -> PathBuf {
        self.0.join("db")
    }

    /// The job lock: held while a job runs, holding its pid.
    pub fn lock(&self) -> PathBuf {
        self.0.join("lock")
    }

    /// The folder of a plan's sorted runs, removed when the plan is made.
    pub fn plan_sort(&self) -> PathBuf {
        self.0.join("plan-sort")
    }

    /// The figures of the running job, rewritten at every progress interval.
    pub fn progress(&self) -> PathBuf {
        self.0.join("progress.json")
    }

    /// Where [`StateDir::progress`] is written before it is renamed into place.
    pub fn progress_draft(&self) -> PathBuf {
        self.0.join("progress.json.tmp")
    }

    /// The job's report when `--report` names none.
    pub fn report(&self) -> PathBuf {
        self.0.join("report.csv")
    }

    /// Verify's drift report when `--report` names none: `drift.<extension>`.
    pub fn drift_report(&self, extension: &str) -> PathBuf {
        self.0.join(format!("drift.{extension}"))
    }
}

impl Default for StateDir {
    fn default() -> StateDir {
        StateDir::new(DEFAULT_STATE_DIR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_inside_the_directory_and_distinct() {
        let dir = StateDir::new("/jobs/a");
        let paths = [
            dir.db(),
            dir.lock(),
            dir.plan_sort(),
            dir.progress(),
            dir.progress_draft(),
            dir.report(),
            dir.drift_report("csv"),
            dir.drift_report("jsonl"),
        ];
        for (i, p) in paths.iter().enumerate() {
            assert_eq!(p.parent(), Some(Path::new("/jobs/a")), "{}", p.display());
            assert!(!paths[..i].contains(p), "{} twice", p.display());
        }
        assert_eq!(dir.report(), Path::new("/jobs/a/report.csv"));
        assert_eq!(StateDir::default().path(), Path::new("faceenroll-state"));
    }
}
