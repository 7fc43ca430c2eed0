//! The calls a plan takes, as `plan` tells them: a new person's first photo goes in
//! `newperson`, the others in `addface` calls of at most 20 photos, cut by
//! [`chunks`] within the request size limit and the room the person has left.
//!
//! Each photo is counted at the most bytes it can take in a request: a file at its
//! size, or, when it is re-encoded to fit, at the copy's budget (`--max-photo-bytes`
//! under the request limit); with `--crop-faces`, a photo in which the detector found
//! a face (recorded by `plan --crop-faces`) at a crop's budget, a twentieth of a
//! call ([`faces::crop_bytes`]). The count is so an upper bound: copies often take
//! less than their budget and travel more to a call.

use super::{PlanError, PlanOptions};
use crate::chunk::{chunks, ChunkItem};
use crate::faces::{self, Choice};
use crate::limits::{RequestBudget, MAX_FACES_PER_PERSON};
use crate::model::ImageRef;
use crate::store::{PersonState, PhotoEntry, PhotoState, Store};

use super::CallCount;

/// The calls one person's photos to send take (`work`, in the order they are sent):
/// a new person's first photo alone in `newperson`, then `addface` calls within
/// `room`, the faces the person can still take.
pub fn person_calls(
    work: &[ChunkItem],
    new: bool,
    room: usize,
    budget: &RequestBudget,
) -> CallCount {
    match (work.split_first(), new) {
        (None, _) => CallCount::default(),
        (Some((_, rest)), true) => CallCount {
            newperson: 1,
            addface: chunks(rest, room.saturating_sub(1), budget).len(),
        },
        (Some(_), false) => CallCount {
            newperson: 0,
            addface: chunks(work, room, budget).len(),
        },
    }
}

/// What a photo adds to a request, at most: its size, or the budget of the copy it
/// is re-encoded to; `cropped`, the budget of a crop around its face.
pub fn chunk_item(
    image: &ImageRef,
    size: Option<u64>,
    options: &PlanOptions,
    cropped: bool,
) -> ChunkItem {
    match image {
        ImageRef::Url(u) => ChunkItem {
            bytes: u.len() as u64,
            is_url: true,
        },
        ImageRef::File(_) => {
            let size = size.unwrap_or(0);
            let bytes = if !options.normalize.enabled {
                size
            } else if cropped {
                size.min(faces::crop_bytes(&options.budget))
            } else {
                // A photo over its budget is re-encoded to fit it.
                size.min(options.normalize.within(&options.budget).max_bytes)
            };
            ChunkItem {
                bytes,
                is_url: false,
            }
        }
    }
}

/// The calls the job's current plan takes with `--crop-faces`: as [`build`](super::build)
/// counts them, each photo whose recorded detection ([`Store::faces`]) is a crop
/// counted at a crop's budget. Photos not looked at are counted whole.
pub fn with_crops(store: &Store, options: &PlanOptions) -> Result<CallCount, PlanError> {
    let meta = store.meta()?;
    let mut total = CallCount::default();
    for person in store.persons() {
        let person = person?;
        if !meta.person_is_current(person.generation) {
            continue;
        }
        let mut photos: Vec<PhotoEntry> = Vec::new();
        for item in store.photos_of(person.person.as_str()) {
            let (_, entry) = item?;
            if !entry.retired && meta.is_current(entry.source.as_deref(), entry.generation) {
                photos.push(entry);
            }
        }
        photos.sort_by_key(|e| e.seq);
        let enrolled = photos
            .iter()
            .filter(|e| matches!(e.state, PhotoState::Enrolled { .. }))
            .count();
        let mut work = Vec::new();
        for e in &photos {
            if !matches!(e.state, PhotoState::Pending | PhotoState::InDoubt) {
                continue;
            }
            let detection = match &e.hash {
                Some(hash) => store.faces(hash)?,
                None => None,
            };
            let cropped = detection.is_some_and(|d| matches!(d.choice(), Choice::Crop { .. }));
            work.push(chunk_item(&e.image, e.size, options, cropped));
        }
        let calls = person_calls(
            &work,
            person.state == PersonState::New,
            MAX_FACES_PER_PERSON.saturating_sub(enrolled),
            &options.budget,
        );
        total.newperson += calls.newperson;
        total.addface += calls.addface;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_REQUEST_BYTES;
    use std::path::PathBuf;

    fn photo(size: u64, options: &PlanOptions, cropped: bool) -> ChunkItem {
        chunk_item(
            &ImageRef::File(PathBuf::from("p.jpg")),
            Some(size),
            options,
            cropped,
        )
    }

    /// Camera originals (6 MB) are counted at the copy's budget, four to a call at
    /// 1.5 MB, and at a crop's with a face found, twenty to a call.
    #[test]
    fn a_person_of_twenty_camera_photos_takes_six_calls_whole_and_two_cropped() {
        let options = PlanOptions::default();
        let budget = RequestBudget::configured(MAX_REQUEST_BYTES);
        let whole: Vec<_> = (0..20).map(|_| photo(6_000_000, &options, false)).collect();
        let cropped: Vec<_> = (0..20).map(|_| photo(6_000_000, &options, true)).collect();
        let calls = |work: &[ChunkItem]| person_calls(work, true, MAX_FACES_PER_PERSON, &budget);
        assert_eq!(
            calls(&whole),
            CallCount {
                newperson: 1,
                addface: 5
            }
        );
        assert_eq!(
            calls(&cropped),
            CallCount {
                newperson: 1,
                addface: 1
            }
        );
        // A person of five: two calls either way (newperson takes one photo).
        assert_eq!(calls(&whole[..5]).total(), 2);
        assert_eq!(calls(&cropped[..5]).total(), 2);
        // A known person: no newperson.
        assert_eq!(
            person_calls(&cropped, false, MAX_FACES_PER_PERSON, &budget),
            CallCount {
                newperson: 0,
                addface: 1
            }
        );
    }

    #[test]
    fn a_small_photo_counts_at_its_size_and_without_resizing_at_its_size_always() {
        let options = PlanOptions::default();
        assert_eq!(photo(40_000, &options, false).bytes, 40_000);
        assert_eq!(photo(40_000, &options, true).bytes, 40_000);
        let as_is = PlanOptions {
            normalize: crate::normalize::NormalizeOptions {
                enabled: false,
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(photo(6_000_000, &as_is, true).bytes, 6_000_000);
    }

    /// `plan --crop-faces` counts what is left to send of the job's current plan:
    /// the pending and in-doubt photos of its current persons (not a retired photo,
    /// an enrolled one, nor a person only an earlier plan listed), a photo with a face
    /// found at a crop's budget, and `newperson` only for a person not yet created.
    #[test]
    fn calls_with_crops_count_what_is_left_to_send_of_the_current_plan() {
        use crate::faces::{Detection, FaceBox, Found, SURE_SCORE};
        use crate::model::{ContentHash, PersonId};
        use crate::store::{FaceRef, JobMeta, Origin, PersonEntry};

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .put_meta(&JobMeta {
                generation: 2,
                ..Default::default()
            })
            .unwrap();
        let face = Detection {
            dims: (4000, 3000),
            faces: vec![Found {
                face: FaceBox {
                    x: 1000,
                    y: 1000,
                    w: 400,
                    h: 400,
                },
                score: SURE_SCORE + 1.0,
            }],
        };
        let put = |person: &str,
                   state: PersonState,
                   generation: u64,
                   photos: &[(PhotoState, bool, bool)]| {
            store
                .put_person(&PersonEntry {
                    person: PersonId::new(person).unwrap(),
                    fields: Default::default(),
                    state,
                    generation,
                })
                .unwrap();
            for (seq, (state, with_face, retired)) in photos.iter().enumerate() {
                let path = PathBuf::from(format!("{person}/{seq}.jpg"));
                let image = ImageRef::File(path.clone());
                let hash = ContentHash::of(path.to_string_lossy().as_bytes());
                if *with_face {
                    store.put_faces(&hash, &face).unwrap();
                }
                let entry = PhotoEntry {
                    person: person.into(),
                    image: image.clone(),
                    origin: Origin::Tree { path },
                    seq: seq as u64,
                    hash: Some(hash),
                    // A camera original: four copies to a call, twenty crops.
                    size: Some(6_000_000),
                    modified: None,
                    state: state.clone(),
                    attempts: 0,
                    generation,
                    note: None,
                    given: None,
                    source: None,
                    retired: *retired,
                };
                store
                    .put_photo(&crate::store::PhotoKey::new(person, &image), &entry)
                    .unwrap();
            }
        };
        let enrolled = || PhotoState::Enrolled {
            face: FaceRef::Id("1".into()),
        };
        // A new person of 5 photos without a face found: newperson, then one call
        // of 4 copies.
        put(
            "ann",
            PersonState::New,
            2,
            &vec![(PhotoState::Pending, false, false); 5],
        );
        // A person created by an earlier run, 5 photos enrolled, 4 left (one call of
        // copies) and one the plan retired.
        let mut bob = vec![(enrolled(), false, false); 5];
        bob.extend(vec![(PhotoState::Pending, false, false); 3]);
        bob.push((PhotoState::InDoubt, false, false));
        bob.push((PhotoState::Pending, false, true));
        put("bob", PersonState::Ready { created: true }, 2, &bob);
        // A person only an earlier plan listed.
        put(
            "cy",
            PersonState::New,
            1,
            &vec![(PhotoState::Pending, false, false); 8],
        );
        // A new person of 21 photos with a face: newperson, then the 19 it has room
        // for in one call of crops (five calls as copies).
        put(
            "dan",
            PersonState::New,
            2,
            &vec![(PhotoState::Pending, true, false); 21],
        );
        assert_eq!(
            with_crops(&store, &PlanOptions::default()).unwrap(),
            CallCount {
                newperson: 2,
                addface: 3
            }
        );
    }
}
