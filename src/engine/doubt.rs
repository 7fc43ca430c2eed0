//! Photos that may already be on the service when their person is full.
//!
//! A photo whose earlier send may have reached the service (the job was killed, or
//! an answer was lost, between the service's work and the job's record) is settled
//! by sending it again: the service answers "duplicate face" (-1312), and the job
//! records the enrollment that answer confirms. Once the person holds 20 faces, the
//! contract leaves open (API.md, "Points the contract leaves open") whether that
//! answer is -1312 or -1309, and whether an `addface` past 20 is refused whole; a
//! -1309 does not say whether the face is there, and no call reads a face's picture
//! back.
//!
//! So for a full person the job counts instead: the faces the service holds that it
//! cannot account for, that is neither held before the job found the person, nor
//! answered to the job with their face id, nor already confirmed this way. When
//! they are at least as many as the person's photos in doubt, those photos are the
//! faces whose answers were lost: they are recorded enrolled (confirmed). When they
//! are fewer, the photos sent first are taken for them (the job sends a person's
//! photos in order, and the service adds a call's images in order until the person
//! is full); the others are recorded full, with the count read, as any photo that
//! did not fit.
//! The answer is the same under every reading, and no photo is sent twice to find
//! out.

use crate::store::{FaceRef, PhotoState, Store, StoreError};
use std::collections::HashSet;

/// The faces of `person` the job can account for: its face ids before the job
/// found it on the service, the face ids answered to the job, and the number of
/// faces confirmed without an id.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Known {
    ids: HashSet<String>,
    confirmed: usize,
}

impl Known {
    /// Reads what the store records of `person`.
    pub(super) fn read(store: &Store, person: &str) -> Result<Known, StoreError> {
        let mut known = Known::default();
        if let Some(before) = store.before(person)? {
            known.ids.extend(before.face_ids);
        }
        for found in store.photos_of(person) {
            let (_, entry) = found?;
            match entry.state {
                PhotoState::Enrolled {
                    face: FaceRef::Id(id),
                } => {
                    known.ids.insert(id);
                }
                PhotoState::Enrolled {
                    face: FaceRef::Confirmed,
                } => known.confirmed += 1,
                _ => {}
            }
        }
        Ok(known)
    }

    /// How many of the faces the service holds (`held`, as read) the job cannot
    /// account for.
    pub(super) fn unaccounted(&self, held: &[String]) -> usize {
        held.iter()
            .filter(|id| !self.ids.contains(id.as_str()))
            .count()
            .saturating_sub(self.confirmed)
    }
}

/// Splits the photos in doubt of a full person into those taken for the
/// `unaccounted` faces it holds, the first by `order`, and the others.
pub(super) fn settle<T, K: Ord>(
    mut in_doubt: Vec<T>,
    unaccounted: usize,
    order: impl FnMut(&T) -> K,
) -> (Vec<T>, Vec<T>) {
    in_doubt.sort_by_key(order);
    let rest = in_doubt.split_off(unaccounted.min(in_doubt.len()));
    (in_doubt, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(ids: &[&str], confirmed: usize) -> Known {
        Known {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            confirmed,
        }
    }

    fn held(ids: &[&str]) -> Vec<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn faces_the_job_knows_are_accounted_for() {
        let k = known(&["a", "b"], 0);
        assert_eq!(k.unaccounted(&held(&["a", "b"])), 0);
        assert_eq!(k.unaccounted(&held(&["a", "b", "x", "y"])), 2);
        // A face the job knows but the service lost is not a face it holds.
        assert_eq!(k.unaccounted(&held(&["a", "x"])), 1);
    }

    #[test]
    fn the_photos_sent_first_are_taken_for_the_faces_unaccounted_for() {
        let id = |x: &u32| *x;
        assert_eq!(settle(vec![3, 1, 2], 2, id), (vec![1, 2], vec![3]));
        assert_eq!(settle(vec![3, 1], 5, id), (vec![1, 3], vec![]));
        assert_eq!(settle(vec![3, 1], 0, id), (vec![], vec![1, 3]));
    }

    #[test]
    fn confirmed_faces_take_their_share_of_the_unknown_ids() {
        assert_eq!(known(&["a"], 1).unaccounted(&held(&["a", "x", "y"])), 1);
        assert_eq!(known(&["a"], 3).unaccounted(&held(&["a", "x"])), 0);
    }
}
