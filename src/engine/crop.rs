//! Where the engine meets the face detector (`--crop-faces`, `--skip-faceless`): the
//! photos of a chunk are prepared by [`normalize::prepare_chunk_faces`] with the
//! detections the store holds for their content, the detections made now are
//! recorded, and a photo without a face is named for skipping when asked.

use super::Shared;
use crate::faces::{self, Choice, Whole};
use crate::limits::RequestBudget;
use crate::model::ImageRef;
use crate::normalize::{self, NormalizeError, NormalizeOptions, Outcome, Prepared};
use crate::store::{PhotoEntry, PhotoKey, Store};

/// The reason a photo without a face is skipped with under `--skip-faceless`.
pub const FACELESS: &str = "no face found locally (--skip-faceless)";

/// Prepares the files among `entries` (in order; URLs are left out) looking for their
/// faces: each result is what to send, and the reason to skip the photo instead, if
/// it is to be skipped.
pub(super) fn prepare(
    shared: &Shared<'_>,
    entries: &[&PhotoEntry],
    options: &NormalizeOptions,
    budget: &RequestBudget,
) -> Vec<Result<(Prepared, Option<String>), NormalizeError>> {
    let wanted = shared.options.faces;
    let files: Vec<_> = entries
        .iter()
        .filter_map(|e| match &e.image {
            ImageRef::File(path) => Some((path.as_path(), *e)),
            ImageRef::Url(_) => None,
        })
        .collect();
    let photos = files
        .iter()
        .map(|(path, e)| (*path, e.hash.as_ref().and_then(|h| known(shared.store, h))))
        .collect();
    let results = normalize::prepare_chunk_faces(
        &shared.normalize_pool,
        photos,
        options,
        wanted.crop,
        faces::crop_bytes(budget),
    );
    results
        .into_iter()
        .zip(&files)
        .map(|(result, (_, entry))| {
            let done = result?;
            if let (true, Some(hash), Some(detection)) =
                (done.detected_now, &entry.hash, &done.detection)
            {
                if let Err(e) = shared.store.put_faces(hash, detection) {
                    tracing::warn!(photo = %entry.image, "cannot record the faces found: {e}");
                }
            }
            let faceless = done
                .detection
                .as_ref()
                .is_some_and(|d| d.choice() == Choice::Whole(Whole::NoFace));
            let skip = (wanted.skip_faceless && faceless).then(|| FACELESS.to_owned());
            Ok((done.prepared, skip))
        })
        .collect()
}

/// The detection recorded for this content, if any (a store that cannot be read here
/// only costs a detection).
fn known(store: &Store, hash: &crate::model::ContentHash) -> Option<faces::Detection> {
    store.faces(hash).unwrap_or_else(|e| {
        tracing::warn!("cannot read the faces recorded: {e}");
        None
    })
}

/// Records for the report whether a photo about to be sent goes as a crop, when the
/// job looks for faces at all.
pub(super) fn record_sent(
    shared: &Shared<'_>,
    key: &PhotoKey,
    outcome: &Outcome,
) -> Result<(), crate::store::StoreError> {
    if !shared.options.faces.detects() {
        return Ok(());
    }
    let rect = match outcome {
        Outcome::Cropped(c) => Some(&c.rect),
        _ => None,
    };
    shared.store.put_crop(key, rect)
}
