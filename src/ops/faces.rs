//! `plan --crop-faces`: looks for the faces in every photo a job would send, before
//! any call, and counts the photos with none, one and several; what is found is
//! recorded per content hash, so `enroll` (and the next plan) does not look again.

use crate::faces::{Count, Detection};
use crate::model::ImageRef;
use crate::normalize::{self, NormalizeOptions};
use crate::store::{PhotoState, Store};
use std::path::PathBuf;

/// Photos looked at together, on the pool's threads: few enough that their pixels
/// stay within the normalizer's memory budget anyway.
const BATCH: usize = 32;

/// What the detector found in the photos a job would send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaceSurvey {
    /// Photos without a face found: sent whole.
    pub none: usize,
    /// Photos with one face, found with confidence: sent as a crop.
    pub one: usize,
    /// Photos with several faces, the largest sure and clearly the largest: sent as
    /// a crop around it.
    pub several: usize,
    /// Photos with faces but none to crop to (the largest not sure, or two of like
    /// size): sent whole.
    pub unclear: usize,
    /// Photos that could not be looked at (unreadable; the plan lists them).
    pub unreadable: usize,
    /// Of the photos looked at, those looked at now (the others were recorded by an
    /// earlier run).
    pub detected_now: usize,
}

impl FaceSurvey {
    fn count(&mut self, detection: &Detection) {
        match detection.count() {
            Count::None => self.none += 1,
            Count::One => self.one += 1,
            Count::Several => self.several += 1,
            Count::Unclear => self.unclear += 1,
        }
    }
}

/// Looks for faces in the photos of the job's current plan still to send (pending or
/// in doubt), on `threads` threads.
pub fn survey(
    store: &Store,
    opts: &NormalizeOptions,
    threads: usize,
) -> anyhow::Result<FaceSurvey> {
    use rayon::prelude::*;
    let meta = store.meta()?;
    let pool = normalize::thread_pool(threads)?;
    let mut survey = FaceSurvey::default();
    let mut batch: Vec<(PathBuf, Option<crate::model::ContentHash>)> = Vec::new();
    let run = |batch: &mut Vec<(PathBuf, Option<crate::model::ContentHash>)>,
               survey: &mut FaceSurvey|
     -> anyhow::Result<()> {
        let mut todo = Vec::new();
        for (path, hash) in batch.drain(..) {
            match hash.as_ref().map(|h| store.faces(h)).transpose()?.flatten() {
                Some(known) => survey.count(&known),
                None => todo.push((path, hash)),
            }
        }
        let found: Vec<_> = pool.install(|| {
            todo.par_iter()
                .map(|(path, _)| normalize::look_for_faces(path, opts))
                .collect()
        });
        for ((_, hash), found) in todo.iter().zip(found) {
            match found {
                Ok(Some(detection)) => {
                    survey.detected_now += 1;
                    survey.count(&detection);
                    if let Some(hash) = hash {
                        store.put_faces(hash, &detection)?;
                    }
                }
                Ok(None) | Err(_) => survey.unreadable += 1,
            }
        }
        Ok(())
    };
    for item in store.photos() {
        let (_, entry) = item?;
        if !meta.is_current(entry.source.as_deref(), entry.generation)
            || !matches!(entry.state, PhotoState::Pending | PhotoState::InDoubt)
        {
            continue;
        }
        if let ImageRef::File(path) = entry.image {
            batch.push((path, entry.hash));
            if batch.len() >= BATCH {
                run(&mut batch, &mut survey)?;
            }
        }
    }
    run(&mut batch, &mut survey)?;
    store.flush()?;
    Ok(survey)
}
