//! The engine's work queue: the persons with something to do in the current plan,
//! read from the store person by person. The planner writes the plan into the store;
//! the engine reads it back from there, never through the planner.

use crate::store::{PersonEntry, PersonState, PhotoEntry, PhotoKey, PhotoState, Store, StoreError};

/// One person's work for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonWork {
    pub person: PersonEntry,
    /// The person's `Pending` and `InDoubt` photos of the current plan, in source
    /// order.
    pub photos: Vec<(PhotoKey, PhotoEntry)>,
    /// The person's `Spare` photos of the current plan, in source order: each takes
    /// the place of a photo the service refuses for good in the run.
    pub spares: Vec<(PhotoKey, PhotoEntry)>,
    /// Faces this job already has on the service for the person.
    pub enrolled: usize,
}

/// Whether the engine has nothing to do after a plan that left `to_send` photos
/// (pending or in doubt) to send: no photo to send and no person whose fields
/// changed since it was brought in line, whichever source listed it. Reads the
/// person entries, not the photos.
pub fn nothing_to_do(store: &Store, to_send: usize) -> Result<bool, StoreError> {
    if to_send > 0 {
        return Ok(false);
    }
    for person in store.persons() {
        if person?.state == PersonState::Stale {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The persons with something to do in the current plan, in person id order, read
/// from the store one person at a time.
pub fn pending_persons(store: &Store) -> impl Iterator<Item = Result<PersonWork, StoreError>> + '_ {
    let (generation, error) = match store.meta() {
        Ok(meta) => (meta.generation, None),
        Err(e) => (0, Some(e)),
    };
    PendingPersons {
        store,
        photos: (Box::new(store.photos()) as PhotoIter<'_>).peekable(),
        generation,
        error,
    }
}

type PhotoIter<'a> = Box<dyn Iterator<Item = Result<(PhotoKey, PhotoEntry), StoreError>> + 'a>;

struct PendingPersons<'a> {
    store: &'a Store,
    photos: std::iter::Peekable<PhotoIter<'a>>,
    generation: u64,
    error: Option<StoreError>,
}

impl Iterator for PendingPersons<'_> {
    type Item = Result<PersonWork, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        loop {
            let (key, first) = match self.photos.next()? {
                Ok(item) => item,
                Err(e) => return Some(Err(e)),
            };
            let person = first.person.clone();
            let mut photos = Vec::new();
            let mut spares = Vec::new();
            let mut enrolled = 0;
            let mut take = |key: PhotoKey, entry: PhotoEntry, generation: u64| match entry.state {
                PhotoState::Enrolled { .. } => enrolled += 1,
                ref state if state.is_to_send() && entry.generation == generation => {
                    photos.push((key, entry))
                }
                PhotoState::Spare { .. } if entry.generation == generation => {
                    spares.push((key, entry))
                }
                _ => {}
            };
            take(key, first, self.generation);
            while let Some(Ok((_, next))) = self.photos.peek() {
                if next.person != person {
                    break;
                }
                let Some(Ok((key, entry))) = self.photos.next() else {
                    unreachable!("peeked")
                };
                take(key, entry, self.generation);
            }
            if photos.is_empty() {
                // Nothing to send; still work when the person's fields changed.
                match self.store.person(&person) {
                    Ok(Some(entry)) if entry.state == PersonState::Stale => {
                        return Some(Ok(PersonWork {
                            person: entry,
                            photos,
                            spares: Vec::new(),
                            enrolled,
                        }))
                    }
                    Ok(_) => continue,
                    Err(e) => return Some(Err(e)),
                }
            }
            photos.sort_by_key(|(_, e)| e.seq);
            spares.sort_by_key(|(_, e)| e.seq);
            match self.store.person(&person) {
                Ok(Some(entry)) => {
                    return Some(Ok(PersonWork {
                        person: entry,
                        photos,
                        spares,
                        enrolled,
                    }))
                }
                // Photos of a person that is not planned are never pending.
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PersonId;
    use crate::store::PersonFields;

    fn person(store: &Store, id: &str, state: PersonState) {
        store
            .put_person(&PersonEntry {
                person: PersonId::new(id).unwrap(),
                fields: PersonFields::default(),
                state,
                generation: 1,
            })
            .unwrap();
    }

    #[test]
    fn nothing_to_do_only_without_photos_to_send_and_without_a_stale_person() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        person(&store, "a", PersonState::Ready { created: true });
        person(&store, "b", PersonState::New);
        assert!(nothing_to_do(&store, 0).unwrap());
        assert!(!nothing_to_do(&store, 1).unwrap());
        // A person whose fields changed is brought in line whichever plan made it so.
        person(&store, "c", PersonState::Stale);
        assert!(!nothing_to_do(&store, 0).unwrap());
    }
}
