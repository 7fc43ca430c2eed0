//! Deleting on the service: the one place that decides what the job may take back,
//! from its own records and from what the service holds now.
//!
//! A deletion is the one change a later run cannot undo, and the service is shared:
//! other tools, the application, a colleague or another job may have changed a
//! person since the job touched it, or deleted it and made another of the same id.
//! So nothing is deleted on the job's records alone:
//!
//! - [`decide::creation`] tells, when a `newperson` answered "person exists" after
//!   the job's own call of it went unanswered (a lost answer, a kill, a full disk, a
//!   second Ctrl-C), whether the person is the one that call made: it holds exactly
//!   what the call would have made (one face, the job's groups, name and tag). That
//!   reading costs no call: the engine reads the person (`getinfo`) to reconcile it
//!   anyway. The job records that a creation is in doubt before every `newperson`
//!   (the store's `creating` tree), so the doubt survives any stop.
//! - [`decide::undo`] decides, for one person, from what the job recorded
//!   ([`JobRecord`]) and the person as `getinfo` reads it just before ([`Found`]),
//!   which calls undo the job's work and nothing else ([`Decision`]), with the reason
//!   for everything it leaves.
//!
//! - [`mirror`] tells what left the source within the job's reach, and whether a
//!   run may delete it (the guards of `enroll --mirror`).
//!
//! All are pure; `ops::rollback` and `ops::mirror` do the reading, the calls and the
//! recording.

pub mod decide;
pub mod mirror;

pub use decide::{creation, undo, Decision, Found, JobRecord, Origin, Step};
