//! The progress store: everything a job knows, durable in one sled database under
//! the state directory.
//!
//! # Trees
//!
//! - `photos`: one [`PhotoEntry`] per input photo, keyed by [`PhotoKey`]
//!   (`person_id \0 locator`). Keys sort by person, so reading the tree in order reads
//!   the job person by person without holding the archive in memory. An entry
//!   whose source's latest plan did not list it is retired, not removed; an entry
//!   not retired is read with its source's latest generation, so a plan writes only
//!   the entries it changes.
//! - `persons`: one [`PersonEntry`] per person, keyed by person id.
//! - `hashes`: `person_id \0 content hash` → photo key of the photo that holds that
//!   content for that person, so a renamed or copied photo is known as a duplicate.
//! - `meta`: the job's metadata ([`JobMeta`]), the request body limit learned
//!   from the service ([`RequestLimit`]), the end time of the last run that
//!   finished (a `u64` of Unix seconds under `last_finished`), and what the state
//!   is bound to: its [`Account`] and its shard (see `store/identity.rs`).
//! - `before`: one [`BeforeEntry`] per person that existed on the service before the
//!   job changed it: how the job found it, for `rollback`.
//! - `created`: the id of every person the job created (an empty value), kept
//!   whatever becomes of the person's state, for `rollback`. A person holds a
//!   `before` or a `created` record, never both: the latest of the two events wins
//!   (a person the job found, that vanished and that the job created again, is the
//!   job's; a person the job created, deleted and made again by someone else, is
//!   found).
//! - `creating`: the id of every person whose `newperson` was sent and whose
//!   outcome is not known yet (written and flushed before the call): after a lost
//!   answer, a kill, a full disk or a second Ctrl-C, the job still knows the person
//!   may be its own, and [`crate::deletion`] tells which from the service.
//! - `verify`: one [`VerifiedEntry`] per person checked by the current or last
//!   `verify`, so a stopped verify goes on where it stopped.
//! - `rollback`: one [`RollbackEntry`] per person `rollback` has undone, so a
//!   stopped rollback goes on and a finished one makes no call. Once every person
//!   is undone, the metadata's `rolled_back` (a `u64` of Unix seconds) closes the
//!   state: `enroll` and `verify` refuse it ([`Store::rollback_status`]).
//! - `faces`: detector version byte + content hash → the [`Detection`] the local
//!   face detector made of that content, so no later run looks at it again.
//! - `crops`: photo key → the box of the crop around its face last sent for it
//!   (`--crop-faces`), for the report; no entry when the photo was sent whole.
//!
//! # Durability
//!
//! sled buffers writes in memory; [`Store::flush`] makes them durable. The engine
//! flushes before each call that changes the service (so a photo in flight is known
//! to be in doubt after a crash) and after recording each answer (so what the service
//! said survives a crash before the next call for that person).
//!
//! # One job at a time
//!
//! The state directory holds a `lock` file locked for the life of a [`Store`]; a
//! second job on the same directory fails at once with [`StoreError::Busy`].

#[cfg(test)]
mod fixtures;
mod identity;
mod mirror_audit;
mod reach;
mod read_copy;
mod record;

pub use identity::{
    check_shard_set, Account, BindError, Endpoint, IdentityError, ShardSet, ShardSetError,
    ShardWords,
};
pub use mirror_audit::{MirrorMarks, MirrorRun, Queued, QueuedKey};
pub use reach::GroupMark;
pub use read_copy::{open_for_reading, open_scratch_copy, Reading};
pub use record::*;

use crate::faces::{Detection, FaceBox};
use crate::limits::RequestLimit;
use crate::model::ContentHash;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use crate::state_dir::StateDir;
pub use crate::state_dir::DEFAULT_STATE_DIR;

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state directory {dir} is in use by another faceenroll job{}", pid_note(.pid))]
    Busy { dir: PathBuf, pid: Option<u32> },
    #[error("cannot create or open state directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("progress database in {dir} cannot be opened: {source}")]
    Open { dir: PathBuf, source: sled::Error },
    /// Said in words, and with no source: sled's own text of an I/O error is Rust's
    /// debug form (`Os { code: 28, kind: StorageFull, .. }`).
    #[error("{}", db_words(.0))]
    Db(sled::Error),
    #[error("progress database holds a record that cannot be read ({what}): {detail}")]
    Corrupt { what: String, detail: String },
    /// The state directory or its lock is no longer the one the job opened: deleted,
    /// moved or replaced while it ran. Writing on would record progress nowhere, and
    /// another job may already run on the new directory.
    #[error(
        "state directory {dir} was deleted or replaced while the job ran ({what}); what \
         this run did since is not recorded there. Make sure no other job runs on it, \
         then run the same command again (the service holds what was sent: the next run \
         finds it)"
    )]
    Replaced { dir: PathBuf, what: String },
}

impl From<sled::Error> for StoreError {
    fn from(err: sled::Error) -> StoreError {
        StoreError::Db(err)
    }
}

impl StoreError {
    /// The exit class of the error, decided here where it is made: a state directory
    /// in use by another job, or one that cannot be created (a path not writable), is
    /// the operator's to fix before the job (2); everything else (the database cannot
    /// be read or written, the disk is full, the directory replaced) stops a job,
    /// resumable (3).
    pub fn exit(&self) -> crate::exit::Exit {
        use crate::exit::Exit;
        match self {
            StoreError::Busy { .. } => Exit::Usage,
            StoreError::Dir { source, .. } if !is_disk_full(source) => Exit::Usage,
            _ => Exit::Fatal,
        }
    }
}

/// Whether an I/O error says the disk (or the user's quota on it) is full.
pub fn is_disk_full(err: &std::io::Error) -> bool {
    err.kind() == std::io::ErrorKind::StorageFull
        || matches!(err.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// A database error in words: a full disk said as such, not as sled's text.
fn db_words(err: &sled::Error) -> String {
    match err {
        sled::Error::Io(io) if is_disk_full(io) => "the disk holding the state directory \
             is full (no space left on device); free space on it, then run the same command \
             again"
            .to_owned(),
        other => format!("progress database error: {other}"),
    }
}

fn pid_note(pid: &Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p}); wait for it to finish or stop it"))
        .unwrap_or_default()
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The progress database of one state directory.
pub struct Store {
    dir: PathBuf,
    /// The state directory as messages name it: `dir`, or for a copy read in its
    /// place ([`open_for_reading`], [`open_scratch_copy`]) the directory copied.
    shown: PathBuf,
    db: sled::Db,
    photos: sled::Tree,
    persons: sled::Tree,
    hashes: sled::Tree,
    meta: sled::Tree,
    not_taken: sled::Tree,
    before: sled::Tree,
    created: sled::Tree,
    creating: sled::Tree,
    verify: sled::Tree,
    rollback: sled::Tree,
    faces: sled::Tree,
    crops: sled::Tree,
    /// Deletions of mirror runs, recorded before their call and after: `p\0PERSON`
    /// for a person, `f\0PHOTO_KEY` for a photo's face, `g\0PERSON\0GROUP` for a
    /// group taken from a person, `r\0PHOTO_KEY\0FACE_ID` for the face of a photo's
    /// earlier content; the last run's account and the deletions `verify --repair`
    /// queued (see `mirror_audit`).
    mirror: sled::Tree,
    /// What the job put on the service that a mirror may take back, beyond the photo
    /// entries: see [`reach`].
    reach: sled::Tree,
    /// Each source's latest plan generation ([`JobMeta::sources`]), kept with every
    /// write of the metadata: a photo entry not retired was seen by its source's
    /// latest plan, which is the generation it is read with.
    sources: RwLock<BTreeMap<String, u64>>,
    /// Photo entries written since the store was opened.
    photo_writes: AtomicU64,
    /// The state directory and its lock file as opened: checked at every flush.
    opened: Opened,
    _lock: File,
}

/// The device and inode of the state directory and of its lock file when the store
/// was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Opened {
    dir: (u64, u64),
    lock: (u64, u64),
}

/// `(device, inode)` of a file's metadata.
fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    (meta.dev(), meta.ino())
}

const META_KEY: &[u8] = b"job";
/// The metadata key of the end time of the last run that finished.
const LAST_FINISHED_KEY: &[u8] = b"last_finished";
/// The metadata key present while a `verify` has not finished.
const VERIFY_OPEN_KEY: &[u8] = b"verify_open";
/// The metadata key that records the encoding of every record: see [`STORE_FORMAT`].
const FORMAT_KEY: &[u8] = b"format";
const REQUEST_LIMIT_KEY: &[u8] = b"request_limit";
/// The key prefix of a source's photos shared between persons
/// ([`Store::put_shared`]), followed by the source's id.
const SHARED_KEY: &[u8] = b"shared\0";
/// The metadata key of the sources that left the job ([`Store::gone_sources`]): a
/// list of strings, newest last.
const GONE_SOURCES_KEY: &str = "gone_sources";
/// How many sources that left the job are remembered, for `status`.
const GONE_SOURCES_KEPT: usize = 16;
/// The metadata key of the end time of the rollback that undid the whole job.
const ROLLED_BACK_KEY: &[u8] = b"rolled_back";

/// Memory sled may use to cache the database. Its default, 1 GB, makes a job's
/// memory grow with the archive (planning a million photos peaked near 600 MB); with
/// 8 MB the same plan peaks near 120 MB and is no slower, since the planner writes in
/// key order and the engine reads person by person.
const CACHE_BYTES: u64 = 8 * 1024 * 1024;

impl Store {
    /// Opens (creating if needed) the store in `dir`, taking the job lock.
    pub fn open(dir: &Path) -> Result<Store> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Dir {
            dir: dir.to_owned(),
            source,
        })?;
        let lock = take_lock(dir)?;
        let dir_error = |source| StoreError::Dir {
            dir: dir.to_owned(),
            source,
        };
        let opened = Opened {
            dir: file_id(&std::fs::metadata(dir).map_err(dir_error)?),
            lock: file_id(&lock.metadata().map_err(dir_error)?),
        };
        let db = open_db(dir)?;
        let store = Store {
            dir: dir.to_owned(),
            shown: dir.to_owned(),
            photos: db.open_tree("photos")?,
            persons: db.open_tree("persons")?,
            hashes: db.open_tree("hashes")?,
            meta: db.open_tree("meta")?,
            not_taken: db.open_tree("not_taken")?,
            before: db.open_tree("before")?,
            created: db.open_tree("created")?,
            creating: db.open_tree("creating")?,
            verify: db.open_tree("verify")?,
            rollback: db.open_tree("rollback")?,
            faces: db.open_tree("faces")?,
            crops: db.open_tree("crops")?,
            mirror: db.open_tree("mirror")?,
            reach: db.open_tree("reach")?,
            sources: RwLock::default(),
            photo_writes: AtomicU64::new(0),
            opened,
            db,
            _lock: lock,
        };
        store.migrate()?;
        *store.sources.write().unwrap_or_else(|e| e.into_inner()) = store.meta()?.sources;
        Ok(store)
    }

    /// Brings a store written by an earlier version to this version's record
    /// encoding, once: the format is recorded in the metadata when done, so a store
    /// killed in the middle of a migration finishes it on the next open.
    ///
    /// Photo entries of the first postcard version and of JSON stores carry the
    /// generation each was last planned in, and are in the job when it is their
    /// source's latest ([`JobMeta::is_current`]); they are rewritten with the
    /// retired flag set for those that are not.
    fn migrate(&self) -> Result<()> {
        if self.meta.get(FORMAT_KEY)?.as_deref() == Some(&[STORE_FORMAT][..]) {
            return Ok(());
        }
        let mut rewritten = migrate_tree::<PersonEntry>(&self.persons, "person")?;
        if let Some(value) = self.meta.get(META_KEY)? {
            if value.first() != Some(&FORMAT_POSTCARD_1) {
                let meta: JobMeta = decode(&value, "job metadata")?;
                self.meta.insert(META_KEY, encode(&meta))?;
                rewritten += 1;
            }
        }
        let meta = self.meta()?;
        for item in self.photos.iter() {
            let (key, value) = item?;
            if value.first() != Some(&FORMAT_PHOTO_2) {
                let mut entry = decode_photo(&value)?;
                entry.retired = !meta.is_current(entry.source.as_deref(), entry.generation);
                self.photos.insert(key, encode_photo(&entry))?;
                rewritten += 1;
            }
        }
        self.meta.insert(FORMAT_KEY, &[STORE_FORMAT])?;
        self.db.flush()?;
        if rewritten > 0 {
            tracing::info!(
                "progress database in {} brought to the current format ({rewritten} records)",
                self.dir.display()
            );
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Makes every write so far durable, in the state directory the store opened:
    /// one deleted or replaced since ([`StoreError::Replaced`]) is a stop.
    pub fn flush(&self) -> Result<()> {
        self.db.flush()?;
        self.check_still_there()
    }

    /// Whether the state directory and its lock file are still the ones opened (a
    /// `stat` of each).
    pub fn check_still_there(&self) -> Result<()> {
        let replaced = |what: &str| StoreError::Replaced {
            dir: self.shown.clone(),
            what: what.to_owned(),
        };
        match std::fs::metadata(&self.dir) {
            Ok(meta) if file_id(&meta) == self.opened.dir => {}
            Ok(_) => return Err(replaced("another directory is at its path")),
            Err(_) => return Err(replaced("it is gone")),
        }
        match std::fs::metadata(StateDir::new(&self.dir).lock()) {
            Ok(meta) if file_id(&meta) == self.opened.lock => Ok(()),
            Ok(_) => Err(replaced("its lock file was replaced")),
            Err(_) => Err(replaced("its lock file is gone")),
        }
    }

    pub fn meta(&self) -> Result<JobMeta> {
        Ok(match self.meta.get(META_KEY)? {
            Some(v) => decode(&v, "job metadata")?,
            None => JobMeta::default(),
        })
    }

    pub fn put_meta(&self, meta: &JobMeta) -> Result<()> {
        self.meta.insert(META_KEY, encode(meta))?;
        *self.sources.write().unwrap_or_else(|e| e.into_inner()) = meta.sources.clone();
        Ok(())
    }

    /// The request body limit learned from the service by earlier runs.
    pub fn request_limit(&self) -> Result<RequestLimit> {
        Ok(match self.meta.get(REQUEST_LIMIT_KEY)? {
            Some(v) => decode(&v, "learned request limit")?,
            None => RequestLimit::default(),
        })
    }

    pub fn put_request_limit(&self, limit: &RequestLimit) -> Result<()> {
        self.meta.insert(REQUEST_LIMIT_KEY, encode(limit))?;
        Ok(())
    }

    pub fn photo(&self, key: &PhotoKey) -> Result<Option<PhotoEntry>> {
        self.photos
            .get(key.as_bytes())?
            .map(|v| self.read_photo(&v))
            .transpose()
    }

    pub fn put_photo(&self, key: &PhotoKey, entry: &PhotoEntry) -> Result<()> {
        self.photos.insert(key.as_bytes(), encode_photo(entry))?;
        self.photo_writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Photo entries written since the store was opened: what a plan or a run cost
    /// the store.
    pub fn photo_writes(&self) -> u64 {
        self.photo_writes.load(Ordering::Relaxed)
    }

    /// Every photo, in key order (grouped by person).
    pub fn photos(&self) -> impl Iterator<Item = Result<(PhotoKey, PhotoEntry)>> + '_ {
        self.photos.iter().map(|item| self.read_item(item))
    }

    /// The photos of one person, in key order.
    pub fn photos_of(
        &self,
        person: &str,
    ) -> impl Iterator<Item = Result<(PhotoKey, PhotoEntry)>> + '_ {
        self.photos
            .scan_prefix(PhotoKey::person_prefix(person))
            .map(|item| self.read_item(item))
    }

    fn read_item(
        &self,
        item: sled::Result<(sled::IVec, sled::IVec)>,
    ) -> Result<(PhotoKey, PhotoEntry)> {
        let (k, v) = item?;
        Ok((PhotoKey::from_bytes(&k), self.read_photo(&v)?))
    }

    /// A photo entry as stored, with the generation that last saw it: the latest plan
    /// of its source, unless it is retired.
    fn read_photo(&self, bytes: &[u8]) -> Result<PhotoEntry> {
        let mut entry = decode_photo(bytes)?;
        if !entry.retired {
            let sources = self.sources.read().unwrap_or_else(|e| e.into_inner());
            if let Some(latest) = entry.source.as_deref().and_then(|s| sources.get(s)) {
                entry.generation = entry.generation.max(*latest);
            }
        }
        Ok(entry)
    }

    /// Photo entries in the store, retired ones included. Reads every entry: for
    /// tests and tools, not for a job's path.
    pub fn photo_count(&self) -> usize {
        self.photos.len()
    }

    /// Whether the store holds no photo entry yet (a first plan), without reading
    /// them all.
    pub fn has_no_photos(&self) -> bool {
        self.photos.is_empty()
    }

    pub fn person(&self, person: &str) -> Result<Option<PersonEntry>> {
        self.persons
            .get(person.as_bytes())?
            .map(|v| decode(&v, "person"))
            .transpose()
    }

    pub fn put_person(&self, entry: &PersonEntry) -> Result<()> {
        self.persons
            .insert(entry.person.as_str().as_bytes(), encode(entry))?;
        Ok(())
    }

    /// Every person, in id order.
    pub fn persons(&self) -> impl Iterator<Item = Result<PersonEntry>> + '_ {
        self.persons.iter().map(|item| {
            let (_, v) = item?;
            decode(&v, "person")
        })
    }

    /// Forgets the entries not taken by earlier plans of `source`: each plan lists
    /// its own.
    pub fn clear_not_taken(&self, source: &str) -> Result<()> {
        for item in self.not_taken.iter() {
            let (k, v) = item?;
            let entry: NotTaken = decode(&v, "entry not taken")?;
            if entry.source.as_deref().is_none_or(|s| s == source) {
                self.not_taken.remove(k)?;
            }
        }
        Ok(())
    }

    /// The messages of the entries of `source` not taken because they failed, as
    /// its last plan recorded them.
    pub fn failed_not_taken(&self, source: &str) -> Result<std::collections::HashSet<String>> {
        let mut out = std::collections::HashSet::new();
        for entry in self.not_taken() {
            let entry = entry?;
            if entry.failed && entry.source.as_deref().is_none_or(|s| s == source) {
                out.insert(entry.message);
            }
        }
        Ok(out)
    }

    /// Records an entry of the source not taken, after those recorded before it.
    pub fn put_not_taken(&self, entry: &NotTaken) -> Result<()> {
        let next = self.not_taken.last()?.map_or(0, |(k, _)| {
            u64::from_be_bytes(k.as_ref().try_into().unwrap_or([0; 8])) + 1
        });
        self.not_taken.insert(next.to_be_bytes(), encode(entry))?;
        Ok(())
    }

    /// The entries not taken, in the order found.
    pub fn not_taken(&self) -> impl Iterator<Item = Result<NotTaken>> + '_ {
        self.not_taken.iter().map(|item| {
            let (_, v) = item?;
            decode(&v, "entry not taken")
        })
    }

    /// The photo key that holds `hash` for `person`, if any.
    pub fn photo_with_hash(&self, person: &str, hash: &ContentHash) -> Result<Option<PhotoKey>> {
        Ok(self
            .hashes
            .get(hash_key(person, hash))?
            .map(|v| PhotoKey::from_bytes(&v)))
    }

    pub fn put_photo_hash(&self, person: &str, hash: &ContentHash, key: &PhotoKey) -> Result<()> {
        self.hashes.insert(hash_key(person, hash), key.as_bytes())?;
        Ok(())
    }

    /// When the last run that finished ended (Unix seconds).
    pub fn last_finished(&self) -> Result<Option<u64>> {
        Ok(self
            .meta
            .get(LAST_FINISHED_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes))
    }

    pub fn put_last_finished(&self, unix: u64) -> Result<()> {
        self.meta.insert(LAST_FINISHED_KEY, &unix.to_be_bytes())?;
        Ok(())
    }

    /// The sources that left the job (a `--mirror` plan of another source), newest
    /// last: the latest sixteen.
    pub fn gone_sources(&self) -> Result<Vec<String>> {
        get_record(&self.meta, GONE_SOURCES_KEY, "sources that left the job")
            .map(Option::unwrap_or_default)
    }

    /// Notes the sources a plan took out of the job; `current`, the plan's own
    /// source, is a source again if it left before.
    pub fn note_gone_sources(&self, gone: &[String], current: &str) -> Result<()> {
        let mut all = self.gone_sources()?;
        if gone.is_empty() && !all.iter().any(|s| s == current) {
            return Ok(());
        }
        all.retain(|s| s != current && !gone.contains(s));
        all.extend(gone.iter().cloned());
        let excess = all.len().saturating_sub(GONE_SOURCES_KEPT);
        all.drain(..excess);
        self.meta
            .insert(GONE_SOURCES_KEY.as_bytes(), encode(&all))?;
        Ok(())
    }

    /// Records what the latest plan of `source` found listed for two persons or more
    /// (none: the record is removed).
    pub fn put_shared(&self, source: &str, shared: &[SharedContent]) -> Result<()> {
        let key = [SHARED_KEY, source.as_bytes()].concat();
        if shared.is_empty() {
            self.meta.remove(key)?;
        } else {
            self.meta.insert(key, encode(&shared))?;
        }
        Ok(())
    }

    /// The photos the job's sources list for two persons or more, as their latest
    /// plans found them.
    pub fn shared(&self) -> Result<Vec<SharedContent>> {
        let meta = self.meta()?;
        let mut out = Vec::new();
        for item in self.meta.scan_prefix(SHARED_KEY) {
            let (key, value) = item?;
            let source = String::from_utf8_lossy(&key[SHARED_KEY.len()..]);
            if meta.sources.contains_key(source.as_ref()) {
                out.extend(decode::<Vec<SharedContent>>(&value, "shared photos")?);
            }
        }
        Ok(out)
    }

    /// How the job found `person`, if it existed before the job.
    pub fn before(&self, person: &str) -> Result<Option<BeforeEntry>> {
        get_record(&self.before, person, "person as found")
    }

    /// Records how the job found `person`, unless already recorded: the first
    /// reading is the one a rollback restores. A person the job had recorded
    /// creating was deleted since and made again by someone else: the new reading
    /// replaces that record.
    pub fn put_before_once(&self, person: &str, entry: &BeforeEntry) -> Result<()> {
        if self.created.remove(person.as_bytes())?.is_some() {
            self.before.insert(person.as_bytes(), encode(entry))?;
        } else {
            let _ = self.before.compare_and_swap(
                person.as_bytes(),
                None as Option<&[u8]>,
                Some(encode(entry)),
            )?;
        }
        self.creating.remove(person.as_bytes())?;
        Ok(())
    }

    /// Records that the job created `person` on the service: how the job found an
    /// earlier person of that id no longer applies (it was deleted since), and the
    /// creation is no longer in doubt.
    pub fn mark_created(&self, person: &str) -> Result<()> {
        self.created.insert(person.as_bytes(), &[])?;
        self.before.remove(person.as_bytes())?;
        self.creating.remove(person.as_bytes())?;
        Ok(())
    }

    /// Whether the job created `person` (as recorded since this record exists).
    pub fn was_created(&self, person: &str) -> Result<bool> {
        Ok(self.created.contains_key(person.as_bytes())?)
    }

    /// Records, before its `newperson` is sent, that `person` may be created by the
    /// job with an outcome it has not learnt yet. The caller flushes before the call.
    pub fn mark_creation_in_doubt(&self, person: &str) -> Result<()> {
        self.creating.insert(person.as_bytes(), &[])?;
        Ok(())
    }

    /// Forgets that a creation is in doubt: the job's `newperson` was answered, and
    /// made nothing.
    pub fn clear_creation_in_doubt(&self, person: &str) -> Result<()> {
        self.creating.remove(person.as_bytes())?;
        Ok(())
    }

    /// Whether a `newperson` of `person` was sent and its outcome never recorded.
    pub fn creation_in_doubt(&self, person: &str) -> Result<bool> {
        Ok(self.creating.contains_key(person.as_bytes())?)
    }

    /// Whether a rollback of the job started, and when it finished if it did.
    pub fn rollback_status(&self) -> Result<RollbackStatus> {
        if let Some(at) = self
            .meta
            .get(ROLLED_BACK_KEY)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
        {
            return Ok(RollbackStatus::Finished {
                at: u64::from_be_bytes(at),
            });
        }
        Ok(if self.rollback.is_empty() {
            RollbackStatus::None
        } else {
            RollbackStatus::Started
        })
    }

    /// Closes the state: every person of the job was undone (or left, with its
    /// reason) by a rollback that ended at `unix`.
    pub fn put_rolled_back_at(&self, unix: u64) -> Result<()> {
        self.meta.insert(ROLLED_BACK_KEY, &unix.to_be_bytes())?;
        Ok(())
    }

    /// Every person a rollback undid or left, in id order.
    pub fn rolled_back_all(&self) -> impl Iterator<Item = Result<(String, RollbackEntry)>> + '_ {
        self.rollback.iter().map(|item| {
            let (k, v) = item?;
            Ok((
                String::from_utf8_lossy(&k).into_owned(),
                decode(&v, "rollback")?,
            ))
        })
    }

    /// Starts a verify, or answers `true` when an unfinished one is taken up again.
    /// A fresh verify forgets the persons the last one checked.
    pub fn open_verify(&self) -> Result<bool> {
        if self.meta.get(VERIFY_OPEN_KEY)?.is_some() {
            return Ok(true);
        }
        self.verify.clear()?;
        self.meta.insert(VERIFY_OPEN_KEY, &[1u8])?;
        self.flush()?;
        Ok(false)
    }

    /// Marks the verify finished: the next one starts afresh.
    pub fn close_verify(&self) -> Result<()> {
        self.meta.remove(VERIFY_OPEN_KEY)?;
        self.flush()
    }

    pub fn verified(&self, person: &str) -> Result<Option<VerifiedEntry>> {
        get_record(&self.verify, person, "verified person")
    }

    pub fn put_verified(&self, person: &str, entry: &VerifiedEntry) -> Result<()> {
        self.verify.insert(person.as_bytes(), encode(entry))?;
        Ok(())
    }

    /// Every person the current or last verify checked, in id order.
    pub fn verified_all(&self) -> impl Iterator<Item = Result<(String, VerifiedEntry)>> + '_ {
        self.verify.iter().map(|item| {
            let (k, v) = item?;
            Ok((
                String::from_utf8_lossy(&k).into_owned(),
                decode(&v, "verified person")?,
            ))
        })
    }

    pub fn rolled_back(&self, person: &str) -> Result<Option<RollbackEntry>> {
        get_record(&self.rollback, person, "rollback")
    }

    pub fn put_rolled_back(&self, person: &str, entry: &RollbackEntry) -> Result<()> {
        self.rollback.insert(person.as_bytes(), encode(entry))?;
        Ok(())
    }

    /// What a mirror run recorded of deleting a person.
    pub fn mirrored_person(&self, person: &str) -> Result<Option<MirrorMark>> {
        self.mirror
            .get(mirror_key(b'p', person.as_bytes()))?
            .map(|v| decode(&v, "mirror deletion"))
            .transpose()
    }

    pub fn put_mirrored_person(&self, person: &str, mark: &MirrorMark) -> Result<()> {
        self.mirror
            .insert(mirror_key(b'p', person.as_bytes()), encode(mark))?;
        Ok(())
    }

    /// What a mirror run recorded of deleting a photo's face.
    pub fn mirrored_photo(&self, key: &PhotoKey) -> Result<Option<MirrorMark>> {
        self.mirror
            .get(mirror_key(b'f', key.as_bytes()))?
            .map(|v| decode(&v, "mirror deletion"))
            .transpose()
    }

    pub fn put_mirrored_photo(&self, key: &PhotoKey, mark: &MirrorMark) -> Result<()> {
        self.mirror
            .insert(mirror_key(b'f', key.as_bytes()), encode(mark))?;
        Ok(())
    }
}

fn mirror_key(kind: u8, id: &[u8]) -> Vec<u8> {
    let mut key = vec![kind, 0];
    key.extend_from_slice(id);
    key
}

/// The local face detector's findings and the crops sent.
impl Store {
    /// What the face detector of this version found in a photo of this content.
    pub fn faces(&self, hash: &ContentHash) -> Result<Option<Detection>> {
        self.faces
            .get(faces_key(hash))?
            .map(|v| decode(&v, "face detection"))
            .transpose()
    }

    pub fn put_faces(&self, hash: &ContentHash, detection: &Detection) -> Result<()> {
        self.faces.insert(faces_key(hash), encode(detection))?;
        Ok(())
    }

    /// The box (in the upright original's pixels) of the crop last sent for a photo,
    /// if it was sent as a crop.
    pub fn crop(&self, key: &PhotoKey) -> Result<Option<FaceBox>> {
        self.crops
            .get(key.as_bytes())?
            .map(|v| decode(&v, "crop"))
            .transpose()
    }

    /// Records what was sent for a photo: the crop's box, or `None` for the whole.
    pub fn put_crop(&self, key: &PhotoKey, crop: Option<&FaceBox>) -> Result<()> {
        match crop {
            Some(rect) => self.crops.insert(key.as_bytes(), encode(rect))?,
            None => self.crops.remove(key.as_bytes())?,
        };
        Ok(())
    }
}

fn faces_key(hash: &ContentHash) -> Vec<u8> {
    let mut key = vec![crate::faces::DETECTOR_VERSION];
    key.extend_from_slice(&hash.0);
    key
}

fn get_record<T: for<'de> Deserialize<'de>>(
    tree: &sled::Tree,
    key: &str,
    what: &str,
) -> Result<Option<T>> {
    tree.get(key.as_bytes())?
        .map(|v| decode(&v, what))
        .transpose()
}

fn hash_key(person: &str, hash: &ContentHash) -> Vec<u8> {
    let mut key = PhotoKey::person_prefix(person);
    key.extend_from_slice(&hash.0);
    key
}

/// The first byte of every record this version writes: the encoding that follows.
///
/// Records are postcard (a compact binary serde format): a finished 100k-photo job
/// is read whole by every resume, and decoding JSON was a third of that time.
/// postcard is positional, so a change to a record type must come with a new value
/// here and a migration of the records written with the old one in
/// [`Store::migrate`]. Stores written before this byte existed hold JSON objects,
/// whose first byte is `{`. The bytes of every format are frozen in
/// `tests/fixtures/store/` (`store/fixtures.rs`); the rule for changing a record is
/// in `store/record.rs`.
const FORMAT_POSTCARD_1: u8 = 1;
const FORMAT_JSON: u8 = b'{';
/// The first byte of a photo entry this version writes: a flags byte
/// ([`FLAG_RETIRED`]) follows, then the entry in postcard. A photo written with
/// [`FORMAT_POSTCARD_1`] or JSON had no flags; [`Store::migrate`] rewrites it.
const FORMAT_PHOTO_2: u8 = 2;
/// The flag of a retired photo entry ([`PhotoEntry::retired`]).
const FLAG_RETIRED: u8 = 1;
/// The format of the whole store, recorded under [`FORMAT_KEY`] once every record
/// is in this version's encoding.
const STORE_FORMAT: u8 = FORMAT_PHOTO_2;

fn encode_photo(entry: &PhotoEntry) -> Vec<u8> {
    let flags = if entry.retired { FLAG_RETIRED } else { 0 };
    let mut bytes = vec![FORMAT_PHOTO_2, flags];
    postcard::to_io(entry, &mut bytes).expect("store records serialize");
    bytes
}

/// A photo entry in any format this version reads (the retired flag unset in those
/// without flags).
fn decode_photo(bytes: &[u8]) -> Result<PhotoEntry> {
    match bytes {
        [FORMAT_PHOTO_2, flags, record @ ..] => {
            let mut entry: PhotoEntry =
                postcard::from_bytes(record).map_err(|e| StoreError::Corrupt {
                    what: "photo".to_owned(),
                    detail: e.to_string(),
                })?;
            entry.retired = flags & FLAG_RETIRED != 0;
            Ok(entry)
        }
        _ => decode(bytes, "photo"),
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = vec![FORMAT_POSTCARD_1];
    postcard::to_io(value, &mut bytes).expect("store records serialize");
    bytes
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], what: &str) -> Result<T> {
    let corrupt = |detail: String| StoreError::Corrupt {
        what: what.to_owned(),
        detail,
    };
    match bytes.first() {
        Some(&FORMAT_POSTCARD_1) => {
            postcard::from_bytes(&bytes[1..]).map_err(|e| corrupt(e.to_string()))
        }
        Some(&FORMAT_JSON) => serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string())),
        Some(other) => Err(corrupt(format!("unknown record format {other}"))),
        None => Err(corrupt("empty record".to_owned())),
    }
}

/// Rewrites every record of `tree` whose encoding is not this version's.
fn migrate_tree<T: Serialize + for<'de> Deserialize<'de>>(
    tree: &sled::Tree,
    what: &str,
) -> Result<u64> {
    let mut rewritten = 0;
    for item in tree.iter() {
        let (key, value) = item?;
        if value.first() != Some(&FORMAT_POSTCARD_1) {
            let record: T = decode(&value, what)?;
            tree.insert(key, encode(&record))?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// How long [`Store::open`] waits for sled's own file lock once it holds the job lock.
///
/// Holding the job lock means no other job uses the directory, so a sled lock that is
/// still taken belongs to a store of this process that was just dropped: sled's
/// background flusher keeps the file open for a moment after the last handle goes.
/// Under CPU load that moment reached a few hundred milliseconds; two seconds is
/// ample and still quick to fail if something else holds the file.
const SLED_LOCK_WAIT: Duration = Duration::from_secs(2);

/// Opens the sled database of `dir`, waiting up to [`SLED_LOCK_WAIT`] for its file lock.
fn open_db(dir: &Path) -> Result<sled::Db> {
    let started = Instant::now();
    let mut waited = false;
    loop {
        // No flush of sled's own every 500 ms: what is durable is what the store's
        // flushes made so (the engine's before each call that changes the service),
        // which a kill test can then tell from a flush that does nothing; and a full
        // disk is one error of the flush that met it, not a line from a background
        // thread every half second.
        let opened = sled::Config::new()
            .path(StateDir::new(dir).db())
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(None)
            .open();
        match opened {
            Ok(db) => {
                if waited {
                    tracing::debug!(
                        "waited {} ms for the progress database's file lock in {}",
                        started.elapsed().as_millis(),
                        dir.display()
                    );
                }
                return Ok(db);
            }
            Err(source) if is_sled_lock_busy(&source) && started.elapsed() < SLED_LOCK_WAIT => {
                waited = true;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(source) => {
                return Err(StoreError::Open {
                    dir: dir.to_owned(),
                    source,
                })
            }
        }
    }
}

/// Whether sled refused to open because its file lock is taken. sled reports this
/// only as an `Other` I/O error with a message, so the message is what can be read.
fn is_sled_lock_busy(error: &sled::Error) -> bool {
    matches!(error, sled::Error::Io(io) if io.to_string().contains("could not acquire lock"))
}

/// Takes the job lock of `dir`, writing our pid into the lock file for the message a
/// second job prints.
///
/// A lock that names this very process was held by a store it has just closed: a
/// child being spawned at that moment by another thread holds a copy of every open
/// file until it runs its program, and with it the lock. That is waited out, up to
/// [`SLED_LOCK_WAIT`]; a lock of another process is refused at once.
fn take_lock(dir: &Path) -> Result<File> {
    let started = Instant::now();
    loop {
        match try_take_lock(dir) {
            Err(StoreError::Busy { pid: Some(pid), .. })
                if pid == std::process::id() && started.elapsed() < SLED_LOCK_WAIT =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            taken => return taken,
        }
    }
}

/// One attempt at the job lock of `dir`.
fn try_take_lock(dir: &Path) -> Result<File> {
    let path = StateDir::new(dir).lock();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| StoreError::Dir {
            dir: dir.to_owned(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.set_len(0);
            let _ = file.rewind();
            let _ = write!(file, "{}", std::process::id());
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Err(StoreError::Busy {
                dir: dir.to_owned(),
                pid: pid.trim().parse().ok(),
            })
        }
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Dir {
            dir: dir.to_owned(),
            source,
        }),
    }
}

/// Whether a job holds the lock of `dir` now, and its pid. Reads without locking.
pub fn running_job(dir: &Path) -> Option<u32> {
    let mut file = File::open(StateDir::new(dir).lock()).ok()?;
    match file.try_lock_shared() {
        Ok(()) => None,
        Err(_) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            Some(pid.trim().parse().unwrap_or(0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ImageRef;

    fn entry(person: &str, path: &str) -> PhotoEntry {
        PhotoEntry {
            person: person.into(),
            image: ImageRef::File(path.into()),
            origin: Origin::Tree { path: path.into() },
            seq: 0,
            hash: None,
            size: None,
            modified: None,
            state: PhotoState::Pending,
            attempts: 0,
            generation: 1,
            note: None,
            given: None,
            source: None,
            retired: false,
        }
    }

    #[test]
    fn photos_read_back_grouped_by_person() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for (p, f) in [
            ("bob", "b1"),
            ("alice", "a2"),
            ("bob", "b0"),
            ("alice", "a1"),
        ] {
            let e = entry(p, f);
            store.put_photo(&PhotoKey::new(p, &e.image), &e).unwrap();
        }
        let people: Vec<String> = store.photos().map(|r| r.unwrap().1.person).collect();
        assert_eq!(people, ["alice", "alice", "bob", "bob"]);
        assert_eq!(store.photos_of("bob").count(), 2);
        // "bo" is a prefix of "bob" as a string but not as a person.
        assert_eq!(store.photos_of("bo").count(), 0);
    }

    #[test]
    fn a_second_job_on_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Store::open(dir.path()).unwrap();
        assert_eq!(running_job(dir.path()), Some(std::process::id()));
        match Store::open(dir.path()) {
            Err(StoreError::Busy { pid, .. }) => assert_eq!(pid, Some(std::process::id())),
            Err(other) => panic!("expected Busy, got {other}"),
            Ok(_) => panic!("expected Busy, got a second store"),
        }
    }

    #[test]
    fn a_lock_of_this_process_held_a_moment_longer_is_waited_for() {
        // As a child spawned while a store closes holds the lock until it runs its
        // program: another open file, locked, naming this process.
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let copy = File::options()
            .write(true)
            .open(StateDir::new(dir.path()).lock())
            .unwrap();
        copy.try_lock().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(copy);
        });
        Store::open(dir.path()).unwrap();
        release.join().unwrap();
    }

    #[test]
    fn the_lock_is_released_when_the_store_closes() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        assert_eq!(running_job(dir.path()), None);
        Store::open(dir.path()).unwrap();
    }

    #[test]
    fn open_waits_for_a_sled_lock_held_a_moment_longer() {
        let dir = tempfile::tempdir().unwrap();
        // A database handle that outlives its store, as sled's flusher does.
        let lingering = sled::Config::new()
            .path(dir.path().join("db"))
            .open()
            .unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(lingering);
        });
        let store = Store::open(dir.path());
        release.join().unwrap();
        assert!(store.is_ok(), "{}", store.err().unwrap());
    }

    #[test]
    fn a_full_disk_is_said_in_words_and_stops_the_job() {
        use crate::exit::Exit;
        let full = || std::io::Error::from_raw_os_error(libc::ENOSPC);
        let err = StoreError::Db(sled::Error::Io(full()));
        let text = err.to_string();
        assert!(
            text.starts_with("the disk holding the state directory is full"),
            "{text}"
        );
        assert!(
            !text.contains("Os {") && !text.contains("StorageFull"),
            "{text}"
        );
        assert_eq!(err.exit(), Exit::Fatal);
        let dir = |source| StoreError::Dir {
            dir: "/s".into(),
            source,
        };
        assert_eq!(dir(full()).exit(), Exit::Fatal);
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert_eq!(dir(denied).exit(), Exit::Usage);
        let busy = StoreError::Busy {
            dir: "/s".into(),
            pid: None,
        };
        assert_eq!(busy.exit(), Exit::Usage);
        let gone = StoreError::Replaced {
            dir: "/s".into(),
            what: "it is gone".into(),
        };
        assert_eq!(gone.exit(), Exit::Fatal);
    }

    #[test]
    fn a_state_directory_deleted_or_replaced_under_the_job_stops_it_at_the_next_flush() {
        let tmp = tempfile::tempdir().unwrap();
        let replaced = |store: &Store, what: &str| match store.flush() {
            Err(err @ StoreError::Replaced { .. }) => {
                assert!(err.to_string().contains(what), "{err}");
            }
            other => panic!("expected Replaced ({what}), got {other:?}"),
        };
        // Deleted (rm -rf) while the job runs.
        let dir = tmp.path().join("gone");
        let store = Store::open(&dir).unwrap();
        store.put_meta(&JobMeta::default()).unwrap();
        store.flush().unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        replaced(&store, "it is gone");
        // Replaced: moved away, and a new one (another job's) at its path.
        let dir = tmp.path().join("moved");
        let store = Store::open(&dir).unwrap();
        std::fs::rename(&dir, tmp.path().join("elsewhere")).unwrap();
        let other = Store::open(&dir).unwrap();
        replaced(&store, "another directory is at its path");
        other.flush().unwrap();
        drop(other);
        // Its lock file deleted (the lock defeated: a second job could start).
        let dir = tmp.path().join("unlocked");
        let store = Store::open(&dir).unwrap();
        std::fs::remove_file(StateDir::new(&dir).lock()).unwrap();
        replaced(&store, "lock file is gone");
    }

    #[test]
    fn open_gives_up_on_a_sled_lock_that_stays_taken() {
        let dir = tempfile::tempdir().unwrap();
        let _held = sled::Config::new()
            .path(dir.path().join("db"))
            .open()
            .unwrap();
        let started = Instant::now();
        match Store::open(dir.path()) {
            Err(StoreError::Open { .. }) => {}
            Err(other) => panic!("expected Open, got {other}"),
            Ok(_) => panic!("opened a database whose lock is held"),
        }
        assert!(started.elapsed() >= SLED_LOCK_WAIT);
    }

    #[test]
    fn a_record_in_an_unknown_format_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.persons.insert("bob", &[7u8, 1, 2][..]).unwrap();
        match store.person("bob") {
            Err(StoreError::Corrupt { what, detail }) => {
                assert_eq!(what, "person");
                assert!(detail.contains("unknown record format 7"), "{detail}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}
