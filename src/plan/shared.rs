//! The same photo listed for two persons or more (the same content hash): a photo
//! copied into the wrong person's folder, or a group photo listed for each person
//! in it (the service takes one face from it, the largest, for each of them). The
//! job cannot tell which listing is right, so it enrolls each as listed and warns:
//! in the plan, in the log, and in the report's rows of those photos.
//!
//! Found in two steps, so that a large archive costs 8 bytes a photo: while the
//! persons are decided, the first 8 bytes of each person's distinct hashes are
//! collected ([`Contents`]); prefixes seen more than once (rare) are then looked
//! up in the store, and the photos whose whole hash two persons share are grouped.

use crate::model::ContentHash;
use crate::store::{PhotoState, SharedContent, SharedListing, Store, StoreError};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The hash prefixes of the photos decided so far, one per person and content.
#[derive(Debug, Default)]
pub(super) struct Contents(Vec<u64>);

fn prefix(hash: &ContentHash) -> u64 {
    u64::from_be_bytes(hash.0[..8].try_into().expect("8 bytes"))
}

/// Whether a photo in `state` stands for its content (a duplicate's holder does).
fn stands_for_content(state: &PhotoState) -> bool {
    !matches!(state, PhotoState::Duplicate { .. })
}

impl Contents {
    /// Adds one person's photos: the hashes of those that stand for their content.
    pub(super) fn add_person<'a>(
        &mut self,
        photos: impl Iterator<Item = (Option<ContentHash>, &'a PhotoState)>,
    ) {
        let mut mine: Vec<u64> = photos
            .filter(|(_, state)| stands_for_content(state))
            .filter_map(|(hash, _)| hash.as_ref().map(prefix))
            .collect();
        mine.sort_unstable();
        mine.dedup();
        self.0.extend(mine);
    }

    /// The prefixes more than one person has.
    fn repeated(mut self) -> HashSet<u64> {
        self.0.sort_unstable();
        self.0
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect()
    }
}

/// The photos of `source`'s current plan whose content two persons or more share,
/// one group per content, in key order.
pub(super) fn find(
    store: &Store,
    source: &str,
    contents: Contents,
) -> Result<Vec<SharedContent>, StoreError> {
    let repeated = contents.repeated();
    if repeated.is_empty() {
        return Ok(Vec::new());
    }
    let meta = store.meta()?;
    let mut by_hash: BTreeMap<[u8; 32], Vec<SharedListing>> = BTreeMap::new();
    for item in store.photos() {
        let (_, entry) = item?;
        let Some(hash) = entry.hash else { continue };
        if !repeated.contains(&prefix(&hash))
            || entry.source.as_deref() != Some(source)
            || !meta.is_current(entry.source.as_deref(), entry.generation)
            || !stands_for_content(&entry.state)
        {
            continue;
        }
        by_hash.entry(hash.0).or_default().push(SharedListing {
            person: entry.person,
            image: entry.image,
            origin: entry.origin,
        });
    }
    Ok(by_hash
        .into_values()
        .filter(|photos| {
            let persons: BTreeSet<&str> = photos.iter().map(|p| p.person.as_str()).collect();
            persons.len() > 1
        })
        .map(|photos| SharedContent { photos })
        .collect())
}

/// The warning for one shared content, as the plan and the log give it.
pub fn warning(shared: &SharedContent) -> String {
    let listed: Vec<String> = shared
        .photos
        .iter()
        .map(|p| format!("{} (person {:?})", p.origin, p.person))
        .collect();
    format!(
        "the same photo is listed for {} persons: {}; it is enrolled for each as listed: \
         check that it is not in the wrong person's folder or row",
        shared
            .photos
            .iter()
            .map(|p| p.person.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        listed.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(first: u8, rest: u8) -> Option<ContentHash> {
        let mut h = [rest; 32];
        h[0] = first;
        Some(ContentHash(h))
    }

    #[test]
    fn only_prefixes_of_two_persons_are_repeated() {
        let pending = PhotoState::Pending;
        let dup = PhotoState::Duplicate { reason: "x".into() };
        let mut c = Contents::default();
        // One person listing a content twice is no repeat; a duplicate is not counted.
        c.add_person([(hash(1, 0), &pending), (hash(1, 0), &pending)].into_iter());
        c.add_person([(hash(2, 0), &pending), (None, &pending)].into_iter());
        c.add_person([(hash(2, 0), &dup), (hash(3, 0), &pending)].into_iter());
        assert!(Contents(c.0.clone()).repeated().is_empty());
        c.add_person([(hash(3, 0), &pending)].into_iter());
        let repeated = c.repeated();
        assert_eq!(repeated.len(), 1);
        assert!(repeated.contains(&prefix(&hash(3, 0).unwrap())));
    }
}
