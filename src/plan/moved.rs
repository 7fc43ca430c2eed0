//! A source the job knows by content at a new path: the archive moved or copied
//! (`mv`, `cp -a`) and the job pointed at the new place.
//!
//! A source new to the job whose photos the job knows by path is a report fed back
//! or another part of the job; one it knows only by content (the same person and
//! the same bytes, [`Store::photo_with_hash`]) and that holds every photo an earlier
//! source kept is that source at a new path. It takes that source's place in the job:
//! each photo keeps its state (an enrolled one its face), its entry moved to its new
//! path, so a resume makes no call and no photo is counted twice; the earlier
//! source's entries are retired. The plan says so.
//!
//! Matching is for a source the job has not planned before, so a nightly run of the
//! same source reads nothing more.

use super::check::Row;
use crate::store::{PhotoEntry, PhotoKey, PhotoState, Store, StoreError};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What the rows of a new source matched among the job's photos.
#[derive(Debug, Default)]
pub(super) struct Matches {
    /// Rows whose photo the job knows by path.
    by_key: usize,
    /// For each earlier source, its kept photos whose content (for the same person) a
    /// row lists.
    by_content: BTreeMap<String, HashSet<PhotoKey>>,
}

impl Matches {
    /// Notes what the job knows of one row of the source.
    pub(super) fn note(
        &mut self,
        store: &Store,
        key: &PhotoKey,
        row: &Row,
    ) -> Result<(), StoreError> {
        if store.photo(key)?.is_some() {
            self.by_key += 1;
            return Ok(());
        }
        let Some(hash) = row.hash else {
            return Ok(());
        };
        let Some(held) = store.photo_with_hash(&row.person, &hash)? else {
            return Ok(());
        };
        if let Some(entry) = store.photo(&held)? {
            if let (Some(source), false, true) = (&entry.source, entry.retired, kept(&entry.state))
            {
                self.by_content
                    .entry(source.clone())
                    .or_default()
                    .insert(held);
            }
        }
        Ok(())
    }

    /// Whether a row was known to the job, by path or by content.
    pub(super) fn any(&self) -> bool {
        self.by_key > 0 || !self.by_content.is_empty()
    }

    /// The earlier source this one is, moved: the one whose every kept photo it
    /// lists, when it lists none by path. Reads that source's entries once.
    pub(super) fn moved_from(&self, store: &Store) -> Result<Option<String>, StoreError> {
        if self.by_key > 0 || self.by_content.is_empty() {
            return Ok(None);
        }
        let mut kept_of: HashMap<&str, usize> = HashMap::new();
        for item in store.photos() {
            let (_, entry) = item?;
            if let Some(source) = entry.source.as_deref() {
                if let Some((name, _)) = self.by_content.get_key_value(source) {
                    if !entry.retired && entry.hash.is_some() && kept(&entry.state) {
                        *kept_of.entry(name.as_str()).or_default() += 1;
                    }
                }
            }
        }
        Ok(self
            .by_content
            .iter()
            .find(|(source, listed)| {
                covers(
                    listed.len(),
                    kept_of.get(source.as_str()).copied().unwrap_or(0),
                )
            })
            .map(|(source, _)| source.clone()))
    }
}

/// Whether a source listing `listed` of an earlier source's `kept` photos (by content)
/// is that source moved: it lists them all.
fn covers(listed: usize, kept: usize) -> bool {
    kept > 0 && listed >= kept
}

/// The states that hold a photo's place on the service: what a moved photo carries.
fn kept(state: &PhotoState) -> bool {
    matches!(
        state,
        PhotoState::Pending | PhotoState::InDoubt | PhotoState::Enrolled { .. }
    )
}

/// Moves the entries of `person` that the source `from` listed at their old paths
/// onto the rows that list the same content at a new path: each such row then finds
/// its photo's entry in `old` under its own key. The old keys are retired (queued in
/// `out`).
pub(super) fn adopt(
    store: &Store,
    person: &str,
    rows: &[(PhotoKey, Row)],
    old: &mut HashMap<PhotoKey, PhotoEntry>,
    from: &str,
    out: &mut Vec<(PhotoKey, PhotoEntry)>,
) -> Result<(), StoreError> {
    let listed: HashSet<&PhotoKey> = rows.iter().map(|(k, _)| k).collect();
    for (key, row) in rows {
        let Some(hash) = row.hash else { continue };
        if old.contains_key(key) {
            continue;
        }
        let moved = old
            .iter()
            .find(|(k, e)| {
                !listed.contains(k)
                    && !e.retired
                    && e.hash == Some(hash)
                    && e.source.as_deref() == Some(from)
            })
            .map(|(k, _)| k.clone());
        let Some(moved) = moved else { continue };
        let entry = old.remove(&moved).expect("found above");
        out.push((
            moved,
            PhotoEntry {
                retired: true,
                ..entry.clone()
            },
        ));
        if kept(&entry.state) {
            store.put_photo_hash(person, &hash, key)?;
        }
        old.insert(key.clone(), entry);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_a_move_only_when_it_lists_every_kept_photo() {
        assert!(covers(7, 7));
        assert!(!covers(6, 7), "a photo of the earlier source is not listed");
        assert!(!covers(0, 0));
    }
}
