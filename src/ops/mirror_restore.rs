//! `rollback --mirror`: what mirror runs deleted, and what of it can come back.
//!
//! The service gives no deleted face back by its id, so no face or person is
//! restored by a call of this command: a face comes back only as its photo sent again, which the
//! next `enroll` does for every photo its source lists again (a new face id), and a
//! person deleted comes back, created again with the name, tag and groups of its
//! row, when its photos are listed again. What can come back is therefore what is
//! still in the source: a photo's file that is still there (a URL cannot be told
//! without fetching it, so it is counted as one the next `enroll` tries). A face
//! whose photo is gone cannot come back, and a person none of whose photos is
//! there is not created again: both are listed.
//!
//! Reads the store and the source's files; no call, and nothing written, so the
//! report keeps each `removed` row until the photo is enrolled again.
//!
//! Groups are the exception: a group a mirror took from a person can be given back
//! by its id, so [`put_back_groups`] does it (`addgroupids`, each person read
//! first).

use super::mirror::{restore_groups, GroupsRestored};
use super::paced::{PaceOptions, Paced};
use crate::model::ImageRef;
use crate::service::client::Client;
use crate::store::{MirrorMark, PersonState, PhotoState, Store};
use std::path::Path;

/// Puts back every group the job's mirror runs took from a person still on the
/// service ([`restore_groups`]), after the same checks as any command that calls
/// the service for a job: the state not closed by a rollback and bound to this
/// account. No call when no mirror took a group.
pub fn put_back_groups(
    state_dir: &Path,
    client: &Client,
    pace: &PaceOptions,
    rebind_account: bool,
) -> anyhow::Result<GroupsRestored> {
    let store = Store::open(state_dir)?;
    if store.mirrored_groups()?.is_empty() {
        return Ok(GroupsRestored::default());
    }
    super::rollback::refuse_if_rolled_back(&store)?;
    super::bind_account(&store, client, rebind_account)?;
    restore_groups(&store, &mut Paced::new(client, pace))
}

/// One deletion of a mirror run, and whether it can come back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub person: String,
    /// The face deleted, or `None` for the person itself.
    pub face: Option<DeletedFace>,
    /// When it was deleted (Unix seconds).
    pub at: u64,
    /// How it comes back (`Ok`), or why it cannot (`Err`).
    pub back: Result<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedFace {
    pub face_id: String,
    /// The photo as the source gave it.
    pub photo: String,
}

/// Whether the source still holds `image`: a file that is there, or a URL (which
/// only the next `enroll` can try).
fn still_there(image: &ImageRef) -> bool {
    match image {
        ImageRef::File(path) => path.is_file(),
        ImageRef::Url(_) => true,
    }
}

/// Every deletion of the job's mirror runs: the persons first, then the faces.
pub fn deletions(store: &Store) -> anyhow::Result<Vec<Deleted>> {
    let mut persons = Vec::new();
    let mut faces = Vec::new();
    for person in store.persons() {
        let person = person?;
        let id = person.person.as_str();
        let mut there = 0;
        let mut removed = 0;
        for item in store.photos_of(id) {
            let (_, entry) = item?;
            let PhotoState::Removed { face_id, at } = &entry.state else {
                continue;
            };
            removed += 1;
            let back = if still_there(&entry.image) {
                there += 1;
                Ok(
                    "its photo is still in the source: the next enroll that lists it sends it \
                    again, as a new face"
                        .to_owned(),
                )
            } else {
                Err("its photo is no longer in the source".to_owned())
            };
            faces.push(Deleted {
                person: id.to_owned(),
                face: Some(DeletedFace {
                    face_id: face_id.clone(),
                    photo: entry.image.to_string(),
                }),
                at: *at,
                back,
            });
        }
        // Deleted by a mirror, and not created again since.
        if let (PersonState::New, Some(MirrorMark::Deleted { at })) =
            (&person.state, store.mirrored_person(id)?)
        {
            let back = if there > 0 {
                Ok(format!(
                    "{there} of its {removed} photos are still in the source: the next \
                     enroll that lists them creates it again, with its row's name, tag and \
                     groups"
                ))
            } else {
                Err("none of its photos is in the source: it is not created again".to_owned())
            };
            persons.push(Deleted {
                person: id.to_owned(),
                face: None,
                at,
                back,
            });
        }
    }
    persons.extend(faces);
    Ok(persons)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Origin, PersonEntry, PhotoEntry, PhotoKey};

    #[test]
    fn what_is_still_in_the_source_comes_back_and_the_rest_is_said() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let kept = dir.path().join("kept.png");
        std::fs::write(&kept, b"png").unwrap();
        let gone = dir.path().join("gone.png");
        let add = |person: &str, state: PersonState, photos: &[(&std::path::Path, &str)]| {
            store
                .put_person(&PersonEntry {
                    person: crate::model::PersonId::new(person).unwrap(),
                    fields: Default::default(),
                    state,
                    generation: 1,
                })
                .unwrap();
            for (path, face) in photos {
                let image = ImageRef::File(path.to_path_buf());
                let entry = PhotoEntry {
                    person: person.into(),
                    image: image.clone(),
                    origin: Origin::Tree {
                        path: path.to_path_buf(),
                    },
                    seq: 0,
                    hash: None,
                    size: None,
                    modified: None,
                    state: PhotoState::Removed {
                        face_id: face.to_string(),
                        at: 7,
                    },
                    attempts: 0,
                    generation: 1,
                    note: None,
                    given: None,
                    source: None,
                    retired: true,
                };
                store
                    .put_photo(&PhotoKey::new(person, &image), &entry)
                    .unwrap();
            }
            store
                .put_mirrored_person(person, &MirrorMark::Deleted { at: 7 })
                .unwrap();
        };
        add("ann", PersonState::New, &[(&kept, "f1"), (&gone, "f2")]);
        add("bob", PersonState::New, &[(&gone, "f3")]);
        let all = deletions(&store).unwrap();
        let said: Vec<(String, Option<String>, bool)> = all
            .iter()
            .map(|d| {
                (
                    d.person.clone(),
                    d.face.as_ref().map(|f| f.face_id.clone()),
                    d.back.is_ok(),
                )
            })
            .collect();
        assert_eq!(
            said,
            [
                ("ann".into(), None, true),
                ("bob".into(), None, false),
                // A person's photos in key order: gone.png, then kept.png.
                ("ann".into(), Some("f2".into()), false),
                ("ann".into(), Some("f1".into()), true),
                ("bob".into(), Some("f3".into()), false),
            ]
        );
        assert!(all[0].back.as_ref().unwrap().contains("1 of its 2 photos"));
    }
}
