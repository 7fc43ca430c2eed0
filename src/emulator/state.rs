//! What the emulated account holds: groups, persons and their faces, and how that
//! is shown to tests ([`StateSnapshot`]) and kept on disk between runs.
//!
//! A group exists while at least one person is in it: it is created when a person
//! is first put in it and disappears when its last person leaves (as the service's
//! `getgroupids` shows only groups with persons). Face ids are unique decimal
//! strings of 19 digits, [`FACE_ID_BASE`] plus a sequence number that is never
//! reused, even after a face is deleted or the emulator restarts from its state file.

use super::images::FaceImage;
use crate::model::ContentHash;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Write};
use std::path::Path;

/// The first face id handed out, so face ids look like the service's 19-digit ids.
pub const FACE_ID_BASE: u64 = 1_840_000_000_000_000_000;

/// One stored face.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Face {
    pub face_id: String,
    pub image: FaceImage,
}

/// One person.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Person {
    pub name: String,
    pub tag: String,
    /// In the order the person joined them.
    pub groups: Vec<String>,
    /// In the order they were added.
    pub faces: Vec<Face>,
}

/// The whole account.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    persons: BTreeMap<String, Person>,
    groups: BTreeMap<String, BTreeSet<String>>,
    face_owner: HashMap<String, String>,
    next_face_seq: u64,
}

impl State {
    pub fn person(&self, person_id: &str) -> Option<&Person> {
        self.persons.get(person_id)
    }

    pub fn person_mut(&mut self, person_id: &str) -> Option<&mut Person> {
        self.persons.get_mut(person_id)
    }

    pub fn group(&self, group_id: &str) -> Option<&BTreeSet<String>> {
        self.groups.get(group_id)
    }

    pub fn group_ids(&self) -> impl Iterator<Item = &String> {
        self.groups.keys()
    }

    /// The person and face of a face id.
    pub fn face(&self, face_id: &str) -> Option<(&str, &Face)> {
        let owner = self.face_owner.get(face_id)?;
        let face = self.persons[owner]
            .faces
            .iter()
            .find(|f| f.face_id == face_id)?;
        Some((owner, face))
    }

    /// Creates a person with no face and no group. The caller checked it is new.
    pub fn insert_person(&mut self, person_id: &str, name: String, tag: String) {
        self.persons.insert(
            person_id.to_owned(),
            Person {
                name,
                tag,
                ..Person::default()
            },
        );
    }

    /// Deletes a person, its faces and its memberships.
    pub fn remove_person(&mut self, person_id: &str) -> Option<Person> {
        let person = self.persons.remove(person_id)?;
        for group in &person.groups {
            self.leave_group(person_id, group);
        }
        for face in &person.faces {
            self.face_owner.remove(&face.face_id);
        }
        Some(person)
    }

    /// Puts a person in a group, creating the group; false if already in it.
    pub fn join_group(&mut self, person_id: &str, group_id: &str) -> bool {
        let person = self.persons.get_mut(person_id).expect("person exists");
        if person.groups.iter().any(|g| g == group_id) {
            return false;
        }
        person.groups.push(group_id.to_owned());
        self.groups
            .entry(group_id.to_owned())
            .or_default()
            .insert(person_id.to_owned());
        true
    }

    /// Takes a person out of a group; false if it was not in it.
    pub fn remove_from_group(&mut self, person_id: &str, group_id: &str) -> bool {
        let person = self.persons.get_mut(person_id).expect("person exists");
        let before = person.groups.len();
        person.groups.retain(|g| g != group_id);
        if person.groups.len() == before {
            return false;
        }
        self.leave_group(person_id, group_id);
        true
    }

    fn leave_group(&mut self, person_id: &str, group_id: &str) {
        if let Some(members) = self.groups.get_mut(group_id) {
            members.remove(person_id);
            if members.is_empty() {
                self.groups.remove(group_id);
            }
        }
    }

    /// Stores a face for a person and returns its new face id.
    pub fn add_face(&mut self, person_id: &str, image: FaceImage) -> String {
        let face_id = (FACE_ID_BASE + self.next_face_seq).to_string();
        self.next_face_seq += 1;
        let person = self.persons.get_mut(person_id).expect("person exists");
        person.faces.push(Face {
            face_id: face_id.clone(),
            image,
        });
        self.face_owner
            .insert(face_id.clone(), person_id.to_owned());
        face_id
    }

    /// Deletes a face of a person; false if the person has no such face.
    pub fn remove_face(&mut self, person_id: &str, face_id: &str) -> bool {
        let Some(person) = self.persons.get_mut(person_id) else {
            return false;
        };
        let before = person.faces.len();
        person.faces.retain(|f| f.face_id != face_id);
        if person.faces.len() == before {
            return false;
        }
        self.face_owner.remove(face_id);
        true
    }

    /// The whole state, in the form tests and the state file read.
    pub fn snapshot(&self) -> StateSnapshot {
        StateSnapshot {
            groups: self
                .groups
                .iter()
                .map(|(g, members)| (g.clone(), members.iter().cloned().collect()))
                .collect(),
            persons: self
                .persons
                .iter()
                .map(|(id, p)| {
                    let faces = p
                        .faces
                        .iter()
                        .map(|f| FaceSnapshot {
                            face_id: f.face_id.clone(),
                            content_hash: f.image.hash.to_hex(),
                            width: f.image.width,
                            height: f.image.height,
                        })
                        .collect();
                    let person = PersonSnapshot {
                        name: p.name.clone(),
                        tag: p.tag.clone(),
                        groups: p.groups.clone(),
                        faces,
                    };
                    (id.clone(), person)
                })
                .collect(),
            next_face_seq: self.next_face_seq,
        }
    }

    /// Rebuilds a state from a snapshot (the groups are derived from the persons).
    pub fn from_snapshot(snapshot: StateSnapshot) -> Result<State, String> {
        let mut state = State {
            next_face_seq: snapshot.next_face_seq,
            ..State::default()
        };
        for (person_id, p) in snapshot.persons {
            state.insert_person(&person_id, p.name, p.tag);
            for group in &p.groups {
                state.join_group(&person_id, group);
            }
            for f in p.faces {
                let hash = blake3::Hash::from_hex(&f.content_hash).map_err(|_| {
                    format!(
                        "face {} of person {person_id} has a content hash that is not 64 hex digits",
                        f.face_id
                    )
                })?;
                let image = FaceImage {
                    hash: ContentHash(*hash.as_bytes()),
                    width: f.width,
                    height: f.height,
                };
                if state.face_owner.contains_key(&f.face_id) {
                    return Err(format!("face id {} appears twice", f.face_id));
                }
                state.persons.get_mut(&person_id).unwrap().faces.push(Face {
                    face_id: f.face_id.clone(),
                    image,
                });
                state.face_owner.insert(f.face_id, person_id.clone());
            }
        }
        Ok(state)
    }
}

/// The whole account, for tests and for the state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateSnapshot {
    /// Each group and its persons' ids, sorted.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Each person by id.
    pub persons: BTreeMap<String, PersonSnapshot>,
    /// The sequence number of the next face id.
    pub next_face_seq: u64,
}

/// One person, for tests and for the state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonSnapshot {
    pub name: String,
    pub tag: String,
    pub groups: Vec<String>,
    pub faces: Vec<FaceSnapshot>,
}

/// One face: its id, the BLAKE3 hash (hex) of the exact bytes received, and the
/// pixel size of the decoded picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaceSnapshot {
    pub face_id: String,
    pub content_hash: String,
    pub width: u32,
    pub height: u32,
}

/// Reads a state file; a missing file is an empty account.
pub fn load(path: &Path) -> io::Result<State> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(State::default()),
        Err(e) => return Err(e),
    };
    let invalid = |msg: String| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("state file {}: {msg}", path.display()),
        )
    };
    let snapshot: StateSnapshot =
        serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    State::from_snapshot(snapshot).map_err(invalid)
}

/// Writes a state file atomically: a temporary file beside it, then a rename.
pub fn save(path: &Path, snapshot: &StateSnapshot) -> io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&serde_json::to_vec_pretty(snapshot).map_err(io::Error::other)?)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(n: u8) -> FaceImage {
        FaceImage {
            hash: ContentHash::of(&[n]),
            width: 10 + n as u32,
            height: 20,
        }
    }

    #[test]
    fn groups_follow_their_members() {
        let mut s = State::default();
        s.insert_person("p1", "A".into(), String::new());
        s.insert_person("p2", "B".into(), String::new());
        assert!(s.join_group("p1", "g"));
        assert!(!s.join_group("p1", "g"));
        assert!(s.join_group("p2", "g"));
        assert!(s.join_group("p2", "h"));
        assert_eq!(s.group_ids().collect::<Vec<_>>(), ["g", "h"]);
        s.remove_person("p2");
        assert_eq!(s.group_ids().collect::<Vec<_>>(), ["g"]);
        assert!(s.remove_from_group("p1", "g"));
        assert_eq!(s.group_ids().count(), 0);
    }

    #[test]
    fn face_ids_are_unique_19_digit_numbers_never_reused() {
        let mut s = State::default();
        s.insert_person("p", String::new(), String::new());
        let a = s.add_face("p", image(1));
        assert_eq!(a.len(), 19);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert!(s.remove_face("p", &a));
        assert!(!s.remove_face("p", &a));
        let b = s.add_face("p", image(2));
        assert_ne!(a, b);
        assert_eq!(s.face(&b).unwrap().0, "p");
        assert!(s.face(&a).is_none());
    }

    #[test]
    fn snapshot_round_trips_through_the_state_file() {
        let mut s = State::default();
        s.insert_person("p", "Name".into(), "tag".into());
        s.join_group("p", "g2");
        s.join_group("p", "g1");
        s.add_face("p", image(1));
        s.add_face("p", image(2));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        assert_eq!(load(&path).unwrap(), State::default());
        save(&path, &s.snapshot()).unwrap();
        let back = load(&path).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.snapshot().persons["p"].groups, ["g2", "g1"]);
        std::fs::write(&path, "{not json").unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(err.contains("state.json"), "{err}");
    }
}
