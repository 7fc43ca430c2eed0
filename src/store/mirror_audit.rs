//! What `status` and `verify` read and write of mirror runs, beside the deletions'
//! own records in the `mirror` tree (`p\0`, `f\0`, `g\0`, `r\0`):
//!
//! - `L\0` the account of the last mirror run ([`MirrorRun`]): what it deleted,
//!   the persons it left and why, or the guard that held it;
//! - `P\0PERSON` and `F\0PHOTO_KEY` the deletions `verify --repair` queued for the
//!   next `enroll --mirror` ([`Queued`]).

use super::{
    decode, encode, mirror_key, MirrorMark, PersonState, PhotoKey, PhotoState, Result, Store,
};
use serde::{Deserialize, Serialize};

const LAST_RUN: u8 = b'L';
const QUEUED_PERSON: u8 = b'P';
const QUEUED_FACE: u8 = b'F';

/// The account of one mirror run, as `status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorRun {
    /// When it ended (Unix seconds).
    pub at: u64,
    pub persons_deleted: u64,
    pub faces_deleted: u64,
    /// Groups taken from persons still listed.
    pub groups_deleted: u64,
    /// Persons left whole or in part, with the reason.
    pub left: Vec<(String, String)>,
    /// Why it deleted nothing, if a guard held it.
    pub held: Option<String>,
}

/// A deletion `verify --repair` queued: what verify found still on the service
/// though the source no longer lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    /// When verify found it (Unix seconds).
    pub at: u64,
    /// The face, for a photo's face; `None` for a person.
    pub face_id: Option<String>,
}

/// One deletion queued, by what it deletes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueuedKey {
    Person(String),
    Face(PhotoKey),
}

/// The mirror's deletions as the store records them, counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MirrorMarks {
    pub persons_deleted: u64,
    pub faces_deleted: u64,
    /// Groups taken from persons still listed.
    pub groups_deleted: u64,
    /// Deletions recorded before their call and not after its answer: the next
    /// `--mirror` run settles them.
    pub under_way: u64,
}

impl Store {
    pub fn put_mirror_run(&self, run: &MirrorRun) -> Result<()> {
        self.mirror.insert(mirror_key(LAST_RUN, b""), encode(run))?;
        Ok(())
    }

    /// The account of the last mirror run, if any ran.
    pub fn last_mirror_run(&self) -> Result<Option<MirrorRun>> {
        self.mirror
            .get(mirror_key(LAST_RUN, b""))?
            .map(|v| decode(&v, "mirror run"))
            .transpose()
    }

    /// Counts what mirror runs deleted: persons recorded deleted and not created
    /// again since, photos whose face was deleted (those of deleted persons among
    /// them), and deletions under way.
    pub fn mirror_marks(&self) -> Result<MirrorMarks> {
        let mut marks = MirrorMarks::default();
        let prefix = mirror_key(b'p', b"");
        for item in self.mirror.scan_prefix(&prefix) {
            let (key, value) = item?;
            match decode(&value, "mirror deletion")? {
                MirrorMark::Deleted { .. } => {
                    let person = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                    if self
                        .person(&person)?
                        .is_some_and(|p| p.state == PersonState::New)
                    {
                        marks.persons_deleted += 1;
                    }
                }
                MirrorMark::Deleting { .. } => marks.under_way += 1,
                MirrorMark::Left { .. } => {}
            }
        }
        // A photo's face, a group taken from a person, the face of a photo's
        // earlier content (its photo is listed, so it is not `Removed`).
        for kind in [b'f', b'g', b'r'] {
            for item in self.mirror.scan_prefix(mirror_key(kind, b"")) {
                let (_, value) = item?;
                match decode(&value, "mirror deletion")? {
                    MirrorMark::Deleting { .. } => marks.under_way += 1,
                    MirrorMark::Deleted { .. } if kind == b'g' => marks.groups_deleted += 1,
                    MirrorMark::Deleted { .. } if kind == b'r' => marks.faces_deleted += 1,
                    MirrorMark::Deleted { .. } | MirrorMark::Left { .. } => {}
                }
            }
        }
        for item in self.photos() {
            let (_, entry) = item?;
            if matches!(entry.state, PhotoState::Removed { .. }) {
                marks.faces_deleted += 1;
            }
        }
        Ok(marks)
    }

    pub fn queue_mirror_deletion(&self, key: &QueuedKey, queued: &Queued) -> Result<()> {
        self.mirror.insert(queued_key(key), encode(queued))?;
        Ok(())
    }

    pub fn unqueue_mirror_deletion(&self, key: &QueuedKey) -> Result<()> {
        self.mirror.remove(queued_key(key))?;
        Ok(())
    }

    /// The deletions `verify --repair` queued, persons first.
    pub fn queued_mirror_deletions(&self) -> Result<Vec<(QueuedKey, Queued)>> {
        let mut out = Vec::new();
        for kind in [QUEUED_PERSON, QUEUED_FACE] {
            let prefix = mirror_key(kind, b"");
            for item in self.mirror.scan_prefix(&prefix) {
                let (key, value) = item?;
                let id = &key[prefix.len()..];
                let key = match kind {
                    QUEUED_PERSON => QueuedKey::Person(String::from_utf8_lossy(id).into_owned()),
                    _ => QueuedKey::Face(PhotoKey::from_bytes(id)),
                };
                out.push((key, decode(&value, "queued mirror deletion")?));
            }
        }
        Ok(out)
    }
}

fn queued_key(key: &QueuedKey) -> Vec<u8> {
    match key {
        QueuedKey::Person(person) => mirror_key(QUEUED_PERSON, person.as_bytes()),
        QueuedKey::Face(photo) => mirror_key(QUEUED_FACE, photo.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ImageRef, PersonId};
    use crate::store::PersonEntry;

    #[test]
    fn queued_deletions_and_marks_are_read_back_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let photo = PhotoKey::new("ann", &ImageRef::File("ann/1.jpg".into()));
        // bob was deleted (its entry is new again); dan was left by the mirror.
        for (person, state) in [
            ("bob", PersonState::New),
            ("dan", PersonState::Ready { created: true }),
        ] {
            store
                .put_person(&PersonEntry {
                    person: PersonId::new(person).unwrap(),
                    fields: Default::default(),
                    state,
                    generation: 1,
                })
                .unwrap();
            store
                .put_mirrored_person(person, &MirrorMark::Deleted { at: 1 })
                .unwrap();
        }
        store
            .put_mirrored_photo(&photo, &MirrorMark::Deleting { at: 2 })
            .unwrap();
        // A group taken, the face of a photo's earlier content deleted, another
        // under way.
        store
            .put_mirrored_group("ann", "night", &MirrorMark::Deleted { at: 2 })
            .unwrap();
        store
            .put_mirrored_replaced(&photo, "old1", &MirrorMark::Deleted { at: 2 })
            .unwrap();
        store
            .put_mirrored_replaced(&photo, "old2", &MirrorMark::Deleting { at: 2 })
            .unwrap();
        assert_eq!(
            store.mirror_marks().unwrap(),
            MirrorMarks {
                persons_deleted: 1,
                faces_deleted: 1,
                groups_deleted: 1,
                under_way: 2
            }
        );
        let face = Queued {
            at: 3,
            face_id: Some("f1".into()),
        };
        let person = Queued {
            at: 3,
            face_id: None,
        };
        store
            .queue_mirror_deletion(&QueuedKey::Face(photo.clone()), &face)
            .unwrap();
        store
            .queue_mirror_deletion(&QueuedKey::Person("cy".into()), &person)
            .unwrap();
        assert_eq!(
            store.queued_mirror_deletions().unwrap(),
            [
                (QueuedKey::Person("cy".into()), person),
                (QueuedKey::Face(photo.clone()), face)
            ]
        );
        store
            .unqueue_mirror_deletion(&QueuedKey::Face(photo))
            .unwrap();
        assert_eq!(store.queued_mirror_deletions().unwrap().len(), 1);
        // The queue and the last run's account are not deletions.
        store.put_mirror_run(&MirrorRun::default()).unwrap();
        assert_eq!(store.mirror_marks().unwrap().persons_deleted, 1);
    }

    #[test]
    fn the_last_mirror_runs_account_reads_back_and_the_next_replaces_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.last_mirror_run().unwrap(), None);
        let run = MirrorRun {
            at: 7,
            persons_deleted: 1,
            faces_deleted: 2,
            groups_deleted: 1,
            left: vec![("ann".into(), "existed before the job".into())],
            held: None,
        };
        store.put_mirror_run(&run).unwrap();
        assert_eq!(store.last_mirror_run().unwrap(), Some(run));
        let held = MirrorRun {
            at: 8,
            held: Some("the source lists no photo".into()),
            ..MirrorRun::default()
        };
        store.put_mirror_run(&held).unwrap();
        assert_eq!(store.last_mirror_run().unwrap(), Some(held));
    }

    #[test]
    fn a_face_deleted_counts_once_and_a_person_created_again_not_at_all() {
        use crate::store::{FaceRef, Origin, PhotoEntry};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // ann and bob deleted (their entries new again); cy deleted, then enrolled
        // again.
        for (person, state) in [
            ("ann", PersonState::New),
            ("bob", PersonState::New),
            ("cy", PersonState::Ready { created: true }),
        ] {
            store
                .put_person(&PersonEntry {
                    person: PersonId::new(person).unwrap(),
                    fields: Default::default(),
                    state,
                    generation: 1,
                })
                .unwrap();
            store
                .put_mirrored_person(person, &MirrorMark::Deleted { at: 1 })
                .unwrap();
        }
        // A photo's face deleted: its mark and the photo's state are one deletion;
        // a photo still enrolled is none.
        for (n, state) in [
            PhotoState::Removed {
                face_id: "f1".into(),
                at: 2,
            },
            PhotoState::Enrolled {
                face: FaceRef::Id("f2".into()),
            },
        ]
        .into_iter()
        .enumerate()
        {
            let image = ImageRef::File(format!("dan/{n}.jpg").into());
            let key = PhotoKey::new("dan", &image);
            let deleted = matches!(state, PhotoState::Removed { .. });
            store
                .put_photo(
                    &key,
                    &PhotoEntry {
                        person: "dan".into(),
                        image,
                        origin: Origin::Tree {
                            path: format!("dan/{n}.jpg").into(),
                        },
                        seq: n as u64,
                        hash: None,
                        size: None,
                        modified: None,
                        state,
                        attempts: 1,
                        generation: 1,
                        note: None,
                        given: None,
                        source: None,
                        retired: false,
                    },
                )
                .unwrap();
            if deleted {
                store
                    .put_mirrored_photo(&key, &MirrorMark::Deleted { at: 2 })
                    .unwrap();
            }
        }
        assert_eq!(
            store.mirror_marks().unwrap(),
            MirrorMarks {
                persons_deleted: 2,
                faces_deleted: 1,
                groups_deleted: 0,
                under_way: 0
            }
        );
    }
}
