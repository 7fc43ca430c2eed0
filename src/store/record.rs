//! The records the store's trees hold. Each state is an enum whose variants carry
//! exactly the data that state has.
//!
//! # Changing a record
//!
//! Records are postcard: positional, with no field names and no lengths of structs,
//! so the bytes of every state directory ever written are decoded by the order and
//! types of the fields below. The bytes of each store format are frozen in
//! `tests/fixtures/store/` (`v2/` is this format, `v1/` and `json/` the earlier
//! ones), and the tests in `store/fixtures.rs` fail on any change that alters them.
//!
//! - **A new enum variant goes last.** Variants are numbered by position: one
//!   appended leaves every stored record readable; one inserted, removed or moved
//!   reads old records as another state. Add the new variant to the sample job in
//!   `store/fixtures.rs` and freeze its bytes in a new format (below).
//! - **A new, removed, moved or retyped field needs a new format**: bump
//!   `STORE_FORMAT` in `store/mod.rs`, give the new encoding its own first byte,
//!   keep a decoder of the old bytes and rewrite them in `Store::migrate`, then
//!   write the new format's fixtures once (`cargo test --lib
//!   store::fixtures::write -- --ignored`) and add a test that opens the previous
//!   format's fixtures and checks the migrated fields. `#[serde(default)]` does not
//!   make a field optional in postcard: a record written without it fails to decode,
//!   or decodes its neighbours' bytes into it.
//! - **Fixtures of a format are never regenerated or edited**: they are what the
//!   versions of that format wrote, and what the next version must read. A test
//!   that fails against them asks for a migration, not for new fixtures.
//! - A field skipped by serde (`PhotoEntry::retired`) is stored beside the record
//!   by the store itself, and is part of the format the same way.

use crate::model::{ContentHash, GroupId, ImageRef, PersonId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where an input photo was listed, so every message and report row can name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// Found by walking a directory tree.
    Tree { path: PathBuf },
    /// Line `line` (1-based, counting the header) of a CSV manifest.
    Manifest { file: PathBuf, line: u64 },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Tree { path } => write!(f, "{}", path.display()),
            Origin::Manifest { file, line } => write!(f, "{}:{}", file.display(), line),
        }
    }
}

/// The identity of an input photo in the store: its person and its locator (path or
/// URL as given). Keys sort by person first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PhotoKey(Vec<u8>);

impl PhotoKey {
    pub fn new(person: &str, image: &ImageRef) -> PhotoKey {
        let mut key = Vec::with_capacity(person.len() + 64);
        key.extend_from_slice(person.as_bytes());
        key.push(0);
        match image {
            ImageRef::File(p) => {
                key.push(b'f');
                key.extend_from_slice(p.as_os_str().as_encoded_bytes());
            }
            ImageRef::Url(u) => {
                key.push(b'u');
                key.extend_from_slice(u.as_bytes());
            }
        }
        PhotoKey(key)
    }

    /// The prefix shared by every key of one person.
    pub fn person_prefix(person: &str) -> Vec<u8> {
        let mut key = person.as_bytes().to_vec();
        key.push(0);
        key
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn from_bytes(bytes: &[u8]) -> PhotoKey {
        PhotoKey(bytes.to_vec())
    }
}

/// How a photo's face ended up on the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaceRef {
    /// The service answered with this face id.
    Id(String),
    /// The photo was sent, its answer was lost, and a later send was answered
    /// "duplicate face": the service holds it, under a face id it did not repeat.
    Confirmed,
}

impl FaceRef {
    /// The face the service answered with: its id, or `Confirmed` when the answer
    /// said the face was added but left its id empty.
    pub fn given(id: String) -> FaceRef {
        if id.trim().is_empty() {
            FaceRef::Confirmed
        } else {
            FaceRef::Id(id)
        }
    }
}

/// Why a failed photo failed, which decides whether a later run retries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The input is unusable as it is (missing, empty, not an image, too large, bad id).
    Input,
    /// The service refused the photo for good (no face, undecodable, ...). Retried
    /// only with `--retry-failed`.
    Permanent,
    /// Transient errors outlasted the retry budget; the next run tries again (the
    /// failure of a [`PhotoState::Deferred`] photo).
    RetriesExhausted,
}

/// A failed photo's reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub kind: FailureKind,
    /// The service's code, when the service gave one.
    pub code: Option<i64>,
    /// What went wrong, naming the photo or field.
    pub message: String,
}

/// Where a photo stands. Each state carries exactly the data it has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhotoState {
    /// Planned, not yet on the service.
    Pending,
    /// Sent in a call whose answer has not been recorded: after a crash, the service
    /// may or may not hold it. A "duplicate face" answer on re-sending confirms it.
    InDoubt,
    /// On the service as a face of its person.
    Enrolled { face: FaceRef },
    /// Not sent because the same content is already accounted for: another input
    /// photo of the same person, or a face the service already held.
    Duplicate { reason: String },
    /// Deliberately not sent (over 20 photos, a name that is not a photo, ...).
    Skipped { reason: String },
    /// Not added because the service said the person is full: its reason quotes the
    /// face count read from the service. Final: a later run sends it again only when
    /// the photo changes or the operator asks (`--recheck-full`).
    Full { reason: String },
    /// Could not be enrolled.
    Failed(Failure),
    /// Pending for the next run: this run's tries were refused for now (a transient
    /// per-image code such as -1308, or a call that failed after its retries), the
    /// last with this code and reason, which the report gives. Sent again like
    /// `Pending`. (Appended last, so records written before it read unchanged.)
    Deferred(Failure),
    /// Over the person's 20 places when planned (`reason` says so): not sent, unless
    /// a photo planned before it is refused for good in the run, which hands it its
    /// place. Counted and reported as skipped. (Appended last, as `Deferred`.)
    Spare { reason: String },
    /// Its face was deleted by a mirror run (`enroll --mirror`) after the photo left
    /// the source: the face id deleted and when (Unix seconds). Kept so the report
    /// answers when the face left the service. (Appended last, as `Deferred`.)
    Removed { face_id: String, at: u64 },
}

impl PhotoState {
    /// The one-word status the report and the summary use.
    pub fn status(&self) -> &'static str {
        match self {
            PhotoState::Pending | PhotoState::InDoubt | PhotoState::Deferred(_) => "pending",
            PhotoState::Enrolled { .. } => "enrolled",
            PhotoState::Duplicate { .. } => "duplicate",
            PhotoState::Skipped { .. } | PhotoState::Full { .. } | PhotoState::Spare { .. } => {
                "skipped"
            }
            PhotoState::Failed(_) => "failed",
            PhotoState::Removed { .. } => "removed",
        }
    }

    /// Whether this run has nothing more to do for the photo.
    pub fn is_final(&self) -> bool {
        !self.is_to_send()
    }

    /// Whether the photo is to be sent (pending, in doubt or deferred).
    pub fn is_to_send(&self) -> bool {
        matches!(
            self,
            PhotoState::Pending | PhotoState::InDoubt | PhotoState::Deferred(_)
        )
    }
}

/// A manifest row's columns as written (a cell that is not UTF-8 decoded lossily),
/// kept for an entry the planner could not take as a photo, so the report gives the
/// row back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cells {
    pub person_id: String,
    pub image: String,
    pub group_ids: String,
    pub person_name: String,
    pub tag: String,
}

/// One content (a photo) the latest plan of a source found listed for two persons or
/// more: enrolled for each, with a warning in the plan and in their report rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedContent {
    /// Each listing of it, in key order (person first).
    pub photos: Vec<SharedListing>,
}

/// A listing of a [`SharedContent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedListing {
    pub person: String,
    pub image: ImageRef,
    pub origin: Origin,
}

/// The groups, name and tag the source gave with one photo, as written: the report
/// writes them back, whether or not the person could be planned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GivenFields {
    pub groups: Vec<String>,
    pub name: Option<String>,
    pub tag: Option<String>,
}

/// What became of an entry of the source that is not a photo the job can take: a
/// file the tree walker leaves (hidden, not a photo, outside a person folder, a link,
/// a special file), an empty person folder, or a manifest row that names no usable
/// photo. Listed in the report so every file and row given is accounted for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotTaken {
    pub origin: Origin,
    /// Left deliberately (`ignored`), or unusable input the operator must fix
    /// (`failed`).
    pub failed: bool,
    /// The reason in a few words, the same for every entry left for it.
    pub class: String,
    /// What is wrong, starting with the place.
    pub message: String,
    /// The manifest row as written.
    pub cells: Option<Cells>,
    /// The plan generation that found it.
    pub generation: u64,
    /// The source that listed it ([`crate::source::SourceSpec::id`]).
    pub source: Option<String>,
}

impl NotTaken {
    /// The one-word status the report and the counts use.
    pub fn status(&self) -> &'static str {
        if self.failed {
            "failed"
        } else {
            "ignored"
        }
    }
}

/// The manifest columns of a photo, kept so a failed photo can be written back out as
/// a manifest row.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonFields {
    pub groups: Vec<GroupId>,
    pub name: Option<String>,
    pub tag: Option<String>,
}

/// One input photo and what has become of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhotoEntry {
    /// The person as written in the input (it may be an invalid id, reported as such).
    pub person: String,
    pub image: ImageRef,
    pub origin: Origin,
    /// Position of the photo among its person's photos in its source (0 for the
    /// first), which orders them. Counted per person, so photos added to or removed
    /// from other persons leave the entry unchanged.
    pub seq: u64,
    /// Content hash of a local file (none for URLs or unreadable files).
    pub hash: Option<ContentHash>,
    /// Size in bytes of a local file.
    pub size: Option<u64>,
    /// The file's modification time (nanoseconds since the epoch) when `hash` was
    /// taken, if the file had settled by then: a later plan that finds the same size
    /// and time trusts the hash without reading the file again.
    pub modified: Option<u64>,
    pub state: PhotoState,
    /// Calls that carried this photo, across runs.
    pub attempts: u32,
    /// The plan generation that last saw this photo in the input. A plan writes only
    /// the entries it changes, so the store reads this as the latest plan of the
    /// entry's source unless the entry is retired.
    pub generation: u64,
    /// How the photo was sent when it was re-encoded to fit ("normalized from ...").
    pub note: Option<String>,
    /// The groups, name and tag listed with this photo.
    pub given: Option<GivenFields>,
    /// The source that listed it last ([`crate::source::SourceSpec::id`]).
    pub source: Option<String>,
    /// The latest plan of its source did not list it: the photo has left the job (its
    /// record stays, so a face on the service is still known if it comes back). Kept
    /// by the store beside the encoded record, so retiring an entry rewrites one byte.
    #[serde(skip)]
    pub retired: bool,
}

/// Where a person stands on the service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PersonState {
    /// Not yet created by this job.
    New,
    /// On the service with its groups, name and tag as planned.
    Ready { created: bool },
    /// On the service, but its groups, name or tag in the source changed since it was
    /// brought in line: the next run reconciles it (adds the missing groups, sets the
    /// name and tag) even when it has no photo to send.
    Stale,
    /// No photo of the person could seed it.
    Failed { reason: String },
}

/// A deletion of a mirror run, recorded before its call and after its answer: a
/// run stopped between the two sends it again (a person or face already gone counts
/// as deleted).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MirrorMark {
    Deleting {
        at: u64,
    },
    Deleted {
        at: u64,
    },
    /// A person that left the source, left on the service whole or in part by the
    /// evidence (`reason`), by the run of plan `generation`: later runs do not plan
    /// it again while the source does not list it again. (Appended last, so records
    /// written before it read unchanged.)
    Left {
        at: u64,
        generation: u64,
        reason: String,
    },
}

/// One person of the job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonEntry {
    pub person: PersonId,
    pub fields: PersonFields,
    pub state: PersonState,
    pub generation: u64,
}

/// The job's metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobMeta {
    /// The source given on the command line.
    pub source: Option<String>,
    /// The current plan generation: incremented by every planning pass.
    pub generation: u64,
    /// Unix seconds.
    pub started: Option<u64>,
    pub finished: Option<u64>,
    /// How the last run ended, in words.
    pub last_outcome: Option<String>,
    /// Every source planned into the job, with the generation of its latest plan. A
    /// photo belongs to the job while it is in its source's latest plan: feeding a
    /// report back updates the photos it names and leaves the others in the job.
    ///
    /// `serde(default)` is for the JSON job metadata of stores written before this
    /// field (migrated on open, `tests/fixtures/store/json/`): JSON names its fields,
    /// and a map missing there reads as empty. In postcard it does nothing. (The
    /// `Option` fields need no default for JSON: a missing one reads as `None`.)
    #[serde(default)]
    pub sources: BTreeMap<String, u64>,
}

impl JobMeta {
    /// Whether an entry last planned in `generation` from `source` is in the job now.
    pub fn is_current(&self, source: Option<&str>, generation: u64) -> bool {
        match source.and_then(|s| self.sources.get(s)) {
            Some(latest) => *latest == generation,
            None => generation == self.generation,
        }
    }

    /// Whether a person last planned in `generation` is in the job now.
    pub fn person_is_current(&self, generation: u64) -> bool {
        generation == self.generation || self.sources.values().any(|g| *g == generation)
    }
}

/// How the job found a person that already existed on the service, read with
/// `getinfo` before the job's first change to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeforeEntry {
    pub name: String,
    pub tag: String,
    pub groups: Vec<String>,
    pub face_ids: Vec<String>,
}

/// A way the service differs from what the job recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Difference {
    /// The person is not on the service.
    PersonMissing,
    /// The person is not in a group of the job.
    GroupMissing {
        group: String,
    },
    NameDiffers {
        expected: String,
        found: String,
    },
    TagDiffers {
        expected: String,
        found: String,
    },
    /// A face the job enrolled is not on the person; `photo` is its photo's key.
    FaceMissing {
        face_id: String,
        photo: Vec<u8>,
    },
    /// The service refused to show the person (the code and message given).
    Unreadable {
        reason: String,
    },
    /// The source no longer lists the person, and the service still holds what the
    /// job put on it (`faces` of the job's faces): a mirror run would take it back.
    PersonLeftSource {
        faces: u64,
    },
    /// The source no longer lists the photo, and its face is still on the person:
    /// a mirror run would delete it. `photo` is its photo's key.
    FaceLeftSource {
        face_id: String,
        photo: Vec<u8>,
    },
}

/// A person checked by `verify`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedEntry {
    pub differences: Vec<Difference>,
    /// Faces of the job checked by id.
    pub faces_checked: u64,
    /// Faces on the person that the job did not add (or whose id it never learned).
    pub other_faces: u64,
    /// Whether `--repair` marked the differences for the next enroll.
    pub repaired: bool,
}

/// How far a rollback of the job went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackStatus {
    /// No rollback started.
    None,
    /// A rollback undid some persons and was stopped before the end.
    Started,
    /// A rollback went through every person of the job, ending at `at` (Unix
    /// seconds); the persons it left are in the `rollback` tree with their reason.
    Finished { at: u64 },
}

/// What `rollback` did to a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RollbackEntry {
    /// The job created it: deleted.
    Deleted,
    /// It existed before the job: the job's faces and groups taken off, name and tag
    /// set back.
    Restored,
    /// Left as it is, for the reason given.
    Left { reason: String },
    /// Nothing of the job's is on it, and it was not deleted: it is not on the
    /// service any more, the job never sent it, or the job's call that may have
    /// created it made nothing.
    Gone,
    /// The job's faces (and groups the job added) taken off, the rest left, for
    /// the reasons given.
    Partly { reasons: Vec<String> },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_face_given_without_an_id_is_confirmed_not_an_empty_id() {
        assert_eq!(FaceRef::given("184".into()), FaceRef::Id("184".into()));
        assert_eq!(FaceRef::given(String::new()), FaceRef::Confirmed);
        assert_eq!(FaceRef::given(" ".into()), FaceRef::Confirmed);
    }
}
