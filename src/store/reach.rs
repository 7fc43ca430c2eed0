//! What the job put on the service that the photo entries do not say, for a mirror
//! to take back exactly that and nothing else:
//!
//! - `j\0PERSON`: the groups the job put the person in (by its `newperson`, or by
//!   an `addgroupids` once answered), so a group the source drops from the person's
//!   row is taken back only if the job added it. A group the person had before the
//!   job, or that someone else added, is never in it.
//! - `r\0PHOTO_KEY\0FACE_ID`: the face of a photo's earlier content, recorded when
//!   the plan finds the photo changed in place (same path, another content hash):
//!   the photo's entry then stands for the new content, and this face is the one a
//!   mirror deletes.
//!
//! The group deletions themselves are recorded in the `mirror` tree, as every
//! deletion of a mirror run: [`Store::mirrored_groups`] reads them back (for a
//! rollback that puts them back).

use super::{decode, encode, MirrorMark, PhotoKey, Result, Store};
use crate::model::GroupId;

const JOINED: u8 = b'j';
const REPLACED: u8 = b'r';
const GROUP_MARK: u8 = b'g';

fn key(kind: u8, parts: &[&[u8]]) -> Vec<u8> {
    let mut key = vec![kind];
    for part in parts {
        key.push(0);
        key.extend_from_slice(part);
    }
    key
}

/// The faces of photos' earlier contents ([`Store::earlier_faces`]).
pub type EarlierFaces =
    std::collections::HashMap<PhotoKey, Vec<(String, Option<crate::store::MirrorMark>)>>;

/// A group a mirror run took from a person, as the `mirror` tree records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMark {
    pub person: String,
    pub group: String,
    pub mark: MirrorMark,
}

impl Store {
    /// The groups the job put `person` in, in the order it did.
    pub fn joined_groups(&self, person: &str) -> Result<Vec<GroupId>> {
        let Some(value) = self.reach.get(key(JOINED, &[person.as_bytes()]))? else {
            return Ok(Vec::new());
        };
        let names: Vec<String> = decode(&value, "groups the job joined")?;
        Ok(names
            .iter()
            .filter_map(|g| GroupId::new(g.as_str()).ok())
            .collect())
    }

    /// Records that the job put `person` in `groups` (answered by the service).
    pub fn add_joined_groups(&self, person: &str, groups: &[GroupId]) -> Result<()> {
        let mut joined = self.joined_groups(person)?;
        let before = joined.len();
        for group in groups {
            if !joined.contains(group) {
                joined.push(group.clone());
            }
        }
        if joined.len() != before {
            self.put_joined(person, &joined)?;
        }
        Ok(())
    }

    /// Records that the job created `person` in `groups`: the groups of an earlier
    /// person of that id (deleted since) no longer count.
    pub fn set_joined_groups(&self, person: &str, groups: &[GroupId]) -> Result<()> {
        self.put_joined(person, groups)
    }

    /// Forgets every group the job put `person` in: the person was deleted.
    pub fn forget_joined_groups(&self, person: &str) -> Result<()> {
        self.reach.remove(key(JOINED, &[person.as_bytes()]))?;
        Ok(())
    }

    /// Forgets that the job put `person` in `group`: a mirror took it back.
    pub fn drop_joined_group(&self, person: &str, group: &GroupId) -> Result<()> {
        let mut joined = self.joined_groups(person)?;
        joined.retain(|g| g != group);
        self.put_joined(person, &joined)
    }

    fn put_joined(&self, person: &str, groups: &[GroupId]) -> Result<()> {
        let names: Vec<&str> = groups.iter().map(GroupId::as_str).collect();
        self.reach
            .insert(key(JOINED, &[person.as_bytes()]), encode(&names))?;
        Ok(())
    }

    /// Records that the face `face_id`, the job's for the earlier content of the
    /// photo `photo`, stays on the service after the photo changed in place.
    pub fn put_replaced_face(&self, photo: &PhotoKey, face_id: &str) -> Result<()> {
        self.reach.insert(
            key(REPLACED, &[photo.as_bytes(), face_id.as_bytes()]),
            encode(&face_id),
        )?;
        Ok(())
    }

    /// The faces of earlier contents of `person`'s photos: (photo, face id).
    pub fn replaced_faces(&self, person: &str) -> Result<Vec<(PhotoKey, String)>> {
        // r \0 PERSON \0: every photo key of the person.
        let prefix = key(REPLACED, &[&PhotoKey::person_prefix(person)]);
        let mut out = Vec::new();
        for item in self.reach.scan_prefix(prefix) {
            let (k, v) = item?;
            let face_id: String = decode(&v, "face of a photo's earlier content")?;
            // r \0 PHOTO_KEY \0 FACE_ID
            let photo = &k[2..k.len() - face_id.len() - 1];
            out.push((PhotoKey::from_bytes(photo), face_id));
        }
        Ok(out)
    }

    /// Forgets a face of an earlier content: a mirror deleted it.
    pub fn forget_replaced_face(&self, photo: &PhotoKey, face_id: &str) -> Result<()> {
        self.reach
            .remove(key(REPLACED, &[photo.as_bytes(), face_id.as_bytes()]))?;
        Ok(())
    }

    /// What a mirror run recorded of deleting the face of a photo's earlier content,
    /// if it began.
    pub fn mirrored_replaced(&self, photo: &PhotoKey, face_id: &str) -> Result<Option<MirrorMark>> {
        self.mirror
            .get(key(REPLACED, &[photo.as_bytes(), face_id.as_bytes()]))?
            .map(|v| decode(&v, "mirror deletion of an earlier content's face"))
            .transpose()
    }

    /// The faces of the photos' earlier contents, by photo: each kept on the
    /// service (`None`) or what a mirror run recorded of deleting it, by face id.
    pub fn earlier_faces(&self) -> Result<EarlierFaces> {
        let prefix = [REPLACED, 0];
        // REPLACED \0 PHOTO_KEY \0 FACE_ID: a face id holds no \0.
        let split = |k: &[u8]| -> Option<(PhotoKey, String)> {
            let rest = &k[prefix.len()..];
            let face_start = rest.iter().rposition(|b| *b == 0)?;
            Some((
                PhotoKey::from_bytes(&rest[..face_start]),
                String::from_utf8_lossy(&rest[face_start + 1..]).into_owned(),
            ))
        };
        let mut out = EarlierFaces::new();
        for item in self.reach.scan_prefix(prefix) {
            let (k, _) = item?;
            if let Some((photo, face)) = split(&k) {
                out.entry(photo).or_default().push((face, None));
            }
        }
        for item in self.mirror.scan_prefix(prefix) {
            let (k, v) = item?;
            if let Some((photo, face)) = split(&k) {
                let faces = out.entry(photo).or_default();
                if !faces.iter().any(|(f, _)| *f == face) {
                    let mark = decode(&v, "mirror deletion of an earlier content's face")?;
                    faces.push((face, Some(mark)));
                }
            }
        }
        Ok(out)
    }

    /// What a mirror run recorded of deleting the face of a photo's earlier content.
    pub fn put_mirrored_replaced(
        &self,
        photo: &PhotoKey,
        face_id: &str,
        mark: &MirrorMark,
    ) -> Result<()> {
        self.mirror.insert(
            key(REPLACED, &[photo.as_bytes(), face_id.as_bytes()]),
            encode(mark),
        )?;
        Ok(())
    }

    /// What a mirror run recorded of taking `group` from `person`, if it began.
    pub fn mirrored_group(&self, person: &str, group: &str) -> Result<Option<MirrorMark>> {
        self.mirror
            .get(key(GROUP_MARK, &[person.as_bytes(), group.as_bytes()]))?
            .map(|v| decode(&v, "group a mirror took"))
            .transpose()
    }

    /// Records a mirror run taking `group` from `person`, before its call and after.
    pub fn put_mirrored_group(&self, person: &str, group: &str, mark: &MirrorMark) -> Result<()> {
        self.mirror.insert(
            key(GROUP_MARK, &[person.as_bytes(), group.as_bytes()]),
            encode(mark),
        )?;
        Ok(())
    }

    /// Forgets a group a mirror run took (put back since).
    pub fn forget_mirrored_group(&self, person: &str, group: &str) -> Result<()> {
        self.mirror
            .remove(key(GROUP_MARK, &[person.as_bytes(), group.as_bytes()]))?;
        Ok(())
    }

    /// Every group mirror runs took from a person (or were taking when stopped).
    pub fn mirrored_groups(&self) -> Result<Vec<GroupMark>> {
        let mut out = Vec::new();
        for item in self.mirror.scan_prefix([GROUP_MARK, 0]) {
            let (k, v) = item?;
            let rest = &k[2..];
            let Some(split) = rest.iter().position(|b| *b == 0) else {
                continue;
            };
            out.push(GroupMark {
                person: String::from_utf8_lossy(&rest[..split]).into_owned(),
                group: String::from_utf8_lossy(&rest[split + 1..]).into_owned(),
                mark: decode(&v, "mirror deletion")?,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ImageRef;

    #[test]
    fn joined_groups_replaced_faces_and_group_marks_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let g = |s: &str| GroupId::new(s).unwrap();
        assert!(store.joined_groups("p").unwrap().is_empty());
        store.add_joined_groups("p", &[g("a"), g("b")]).unwrap();
        store.add_joined_groups("p", &[g("b"), g("c")]).unwrap();
        store.add_joined_groups("pq", &[g("z")]).unwrap();
        assert_eq!(store.joined_groups("p").unwrap(), [g("a"), g("b"), g("c")]);
        store.drop_joined_group("p", &g("b")).unwrap();
        assert_eq!(store.joined_groups("p").unwrap(), [g("a"), g("c")]);

        let photo = PhotoKey::new("p", &ImageRef::File("p/1.jpg".into()));
        let other = PhotoKey::new("pq", &ImageRef::File("pq/1.jpg".into()));
        store.put_replaced_face(&photo, "111").unwrap();
        store.put_replaced_face(&photo, "222").unwrap();
        store.put_replaced_face(&other, "333").unwrap();
        assert_eq!(
            store.replaced_faces("p").unwrap(),
            [(photo.clone(), "111".into()), (photo.clone(), "222".into())]
        );
        store.forget_replaced_face(&photo, "111").unwrap();
        assert_eq!(
            store.replaced_faces("p").unwrap(),
            [(photo.clone(), "222".into())]
        );
        // The report's reading: kept ones, and what a mirror did with the others.
        store
            .put_mirrored_replaced(&photo, "111", &MirrorMark::Deleted { at: 9 })
            .unwrap();
        let earlier = store.earlier_faces().unwrap();
        assert_eq!(
            earlier[&photo],
            [
                ("222".to_owned(), None),
                ("111".to_owned(), Some(MirrorMark::Deleted { at: 9 }))
            ]
        );
        assert_eq!(earlier[&other], [("333".to_owned(), None)]);
        assert_eq!(earlier.len(), 2);

        store
            .put_mirrored_group("p", "night", &MirrorMark::Deleted { at: 5 })
            .unwrap();
        store
            .put_mirrored_person("p", &MirrorMark::Deleting { at: 1 })
            .unwrap();
        assert_eq!(
            store.mirrored_groups().unwrap(),
            [GroupMark {
                person: "p".into(),
                group: "night".into(),
                mark: MirrorMark::Deleted { at: 5 }
            }]
        );
        store.forget_mirrored_group("p", "night").unwrap();
        assert!(store.mirrored_groups().unwrap().is_empty());
    }

    #[test]
    fn a_person_created_again_or_deleted_forgets_the_groups_joined_before() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let g = |s: &str| GroupId::new(s).unwrap();
        store.add_joined_groups("p", &[g("a"), g("b")]).unwrap();
        store.add_joined_groups("q", &[g("a")]).unwrap();
        // Created again in other groups: those of the earlier person no longer count.
        store.set_joined_groups("p", &[g("c")]).unwrap();
        assert_eq!(store.joined_groups("p").unwrap(), [g("c")]);
        // Deleted: nothing of it is the job's any more; another person keeps its own.
        store.forget_joined_groups("p").unwrap();
        assert!(store.joined_groups("p").unwrap().is_empty());
        assert_eq!(store.joined_groups("q").unwrap(), [g("a")]);
    }
}
