//! Readying photos for sending (read, re-encoded if needed) and cutting the queue
//! into the next chunk.

use super::{Halt, Item, Ready, Worker};
use crate::chunk::{self, ChunkItem};
use crate::engine::crop;
use crate::engine::shrink;
use crate::limits::{RequestBudget, MAX_IMAGES_PER_ADDFACE};
use crate::model::ImageRef;
use crate::normalize::{self, NormalizeError};
use crate::service::client::ImageBody;
use crate::service::codes;
use crate::store::{Failure, FailureKind, PhotoEntry, PhotoState};
use std::collections::VecDeque;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

impl Worker<'_, '_> {
    /// Takes the next chunk off the front of the queue: at most 20 photos, within the
    /// request size limit and the person's room, all files or all URLs.
    ///
    /// Photos are prepared (read, re-encoded if needed) a few at a time, about as many
    /// as the bytes left in the chunk are expected to hold ([`photos_to_prepare`]),
    /// until the chunk is cut; so a worker holds the prepared copies of about one
    /// request, not of 20 photos, and a job that stops has read little it will not
    /// send. The few prepared past the chunk go back to the front of the queue as
    /// they are, for the next chunk.
    pub(super) fn next_chunk(
        &mut self,
        queue: &mut VecDeque<Item>,
        room: usize,
    ) -> Result<Vec<Item>, Halt> {
        let most = MAX_IMAGES_PER_ADDFACE.min(room);
        let mut usable: Vec<Item> = Vec::with_capacity(most);
        let first = loop {
            let budget = self.shared.request_budget();
            let first = first_chunk(&usable, room, &budget);
            if first.end < usable.len() || usable.len() >= most || queue.is_empty() {
                break first;
            }
            let bytes: u64 = usable.iter().map(ready_bytes).sum();
            let expected = if usable.is_empty() {
                self.shared.options.normalize.within(&budget).max_bytes
            } else {
                bytes / usable.len() as u64
            };
            let count = photos_to_prepare(
                budget.chunk_image_bytes().saturating_sub(bytes),
                expected,
                most - usable.len(),
            );
            let batch: Vec<Item> = (0..count).map_while(|_| queue.pop_front()).collect();
            self.make_usable(batch, &mut usable)?;
        };
        let rest = usable.split_off(first.end);
        for item in rest.into_iter().rev() {
            queue.push_front(item);
        }
        Ok(usable)
    }

    /// Prepares the photos of `batch` not prepared yet, in parallel on the normalizing
    /// pool, and appends those that can be sent to `usable`, in order; a photo that
    /// fails is failed with its reason, and the others go on.
    fn make_usable(&mut self, batch: Vec<Item>, usable: &mut Vec<Item>) -> Result<(), Halt> {
        let waiting: Vec<&PhotoEntry> = batch
            .iter()
            .filter(|i| i.ready.is_none())
            .map(|i| &i.entry)
            .collect();
        let mut prepared = self.prepare(&waiting).into_iter();
        for mut item in batch {
            if item.ready.is_none() {
                let result = prepared.next().expect("one result per photo");
                if !self.accept(&mut item, result)? {
                    continue;
                }
            }
            // The limit may have been learned lower since the photo was prepared.
            if self.fits_alone(&mut item)? {
                usable.push(item);
            }
        }
        Ok(())
    }

    /// Prepares a photo for sending, failing it (and answering `false`) when it cannot
    /// be sent at all.
    pub(super) fn make_ready(&mut self, item: &mut Item) -> Result<bool, Halt> {
        if item.ready.is_none() {
            let result = self
                .prepare(&[&item.entry])
                .pop()
                .expect("one result per photo");
            if !self.accept(item, result)? {
                return Ok(false);
            }
        }
        self.fits_alone(item)
    }

    /// Reads (and if needed re-encodes) photos into what the client sends, one result
    /// per entry in its place: the files through [`normalize::prepare_chunk`] on the
    /// normalizing pool (or, looked at for faces, [`crop::prepare`]), the URLs as they are.
    fn prepare(&self, entries: &[&PhotoEntry]) -> Vec<Result<Ready, NotReady>> {
        let files: Vec<&Path> = entries
            .iter()
            .filter_map(|e| match &e.image {
                ImageRef::File(path) => Some(path.as_path()),
                ImageRef::Url(_) => None,
            })
            .collect();
        let configured = self.shared.options.normalize;
        let budget = self.shared.request_budget();
        let mut options = configured.within(&budget);
        // A request limit under the photo budget leaves photos less room than the
        // operator gave them: they may be shrunk further rather than fail, but not
        // under the smallest copy sent (a photo that fits no request then fails in
        // `fits_alone`, with the sizes).
        let floor = if options.max_bytes < configured.max_bytes {
            options.max_bytes = options
                .max_bytes
                .max(shrink::MIN_COPY_BYTES.min(configured.max_bytes));
            normalize::Floor::RequestLimit
        } else {
            normalize::Floor::Photo
        };
        let mut prepared = if self.shared.options.faces.detects() {
            crop::prepare(self.shared, entries, &options, &budget)
        } else {
            normalize::prepare_chunk_down_to(&self.shared.normalize_pool, &files, &options, floor)
                .into_iter()
                .map(|r| r.map(|p| (p, None)))
                .collect()
        }
        .into_iter();
        entries
            .iter()
            .map(|e| match &e.image {
                ImageRef::Url(url) => Ok(Ready {
                    body: ImageBody::Url(url.clone()),
                    bytes: url.len() as u64,
                    outcome: normalize::Outcome::AsIs,
                }),
                ImageRef::File(path) => {
                    let (prepared, skip) = match prepared.next().expect("one result per file") {
                        Ok((prepared, skip)) => (Ok(prepared), skip),
                        Err(e) => (Err(e), None),
                    };
                    match skip {
                        Some(reason) => Err(NotReady::Skipped(reason)),
                        None => ready(path, prepared).map_err(NotReady::Failed),
                    }
                }
            })
            .collect()
    }

    /// Takes a prepared photo, or fails or skips it with its reason (and answers
    /// `false`) when it is not to be sent.
    fn accept(&mut self, item: &mut Item, result: Result<Ready, NotReady>) -> Result<bool, Halt> {
        match result {
            Ok(ready) => {
                item.ready = Some(ready);
                Ok(true)
            }
            Err(NotReady::Failed(failure)) => {
                tracing::warn!(photo = %item.entry.image, "{}", failure.message);
                self.finish(item, PhotoState::Failed(failure))?;
                Ok(false)
            }
            Err(NotReady::Skipped(reason)) => {
                tracing::info!(photo = %item.entry.image, "skipped: {reason}");
                self.finish(item, PhotoState::Skipped { reason })?;
                Ok(false)
            }
        }
    }

    /// A crop in which the service found no face (-1101) is made ready again as the
    /// whole photo, exactly as without `--crop-faces`, to be sent again: the local
    /// detector took something else for a face, and the photo must not be lost for
    /// it. Answers whether it was.
    pub(super) fn whole_instead_of_crop(&self, item: &mut Item, code: Option<i64>) -> bool {
        let cropped = matches!(
            item.ready.as_ref().map(|r| &r.outcome),
            Some(normalize::Outcome::Cropped(_))
        );
        let ImageRef::File(path) = &item.entry.image else {
            return false;
        };
        if !cropped || code != Some(codes::code::NO_FACE) {
            return false;
        }
        let options = self
            .shared
            .options
            .normalize
            .within(&self.shared.request_budget());
        match ready(path, normalize::prepare(path, &options)) {
            Ok(whole) => {
                tracing::info!(photo = %item.entry.image, "the service found no face in the crop; sending the whole photo");
                item.ready = Some(whole);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether a prepared photo fits a request on its own under the limit in effect;
    /// a file that does not is made ready again as a smaller copy ([`shrink`]), and
    /// one that cannot be is failed with the limit (and answers `false`).
    fn fits_alone(&mut self, item: &mut Item) -> Result<bool, Halt> {
        let bytes = item.ready.as_ref().expect("prepared").bytes;
        let budget = self.shared.request_budget();
        let limit = budget.photo_bytes();
        if bytes <= limit {
            return Ok(true);
        }
        let copy = match &item.entry.image {
            ImageRef::File(path) => {
                shrink::smaller_copy(path, &self.shared.options.normalize, limit)
                    .map(|(bytes, normalized)| (path, bytes, normalized))
            }
            ImageRef::Url(_) => Err("a URL is sent as it is".to_owned()),
        };
        let why = match copy {
            Ok((path, bytes, normalized)) => {
                tracing::info!(photo = %item.entry.image, "over the request limit of {limit} bytes on its own; sending a smaller copy ({normalized})");
                item.ready = Some(Ready {
                    bytes: bytes.len() as u64,
                    body: ImageBody::Bytes {
                        filename: file_name(path),
                        bytes: Arc::from(bytes),
                    },
                    outcome: normalize::Outcome::Normalized(normalized),
                });
                return Ok(true);
            }
            Err(why) => why,
        };
        let failure = Failure {
            kind: FailureKind::Input,
            code: None,
            message: format!(
                "{}: {}, over the request limit of {} on its own{}; {why}",
                item.entry.image,
                crate::report::bytes(bytes),
                crate::report::bytes(limit),
                if budget.is_learned() {
                    " (as learned from the service's refusals)"
                } else {
                    ""
                }
            ),
        };
        tracing::warn!(photo = %item.entry.image, "{}", failure.message);
        self.finish(item, PhotoState::Failed(failure))?;
        Ok(false)
    }
}

/// The first chunk of `usable` (prepared photos, each fitting a request on its own):
/// the chunker's first chunk when it starts at the front, else the photo at the
/// front alone (it is over the budget being probed, yet under the smallest refused).
fn first_chunk(usable: &[Item], room: usize, budget: &RequestBudget) -> Range<usize> {
    let items: Vec<ChunkItem> = usable
        .iter()
        .map(|i| ChunkItem {
            bytes: ready_bytes(i),
            is_url: matches!(i.ready.as_ref().map(|r| &r.body), Some(ImageBody::Url(_))),
        })
        .collect();
    chunk::chunks(&items, room, budget)
        .into_iter()
        .next()
        .filter(|r| r.start == 0)
        .unwrap_or(0..usable.len().min(1))
}

/// How many photos to prepare next for a chunk with `left` image bytes still free,
/// when a prepared photo is expected to take `expected` bytes: enough to fill what
/// is left (rounded up, so the chunk is cut by a photo that does not fit rather than
/// by a guess), at least one and at most `slots`, the places left in the chunk.
fn photos_to_prepare(left: u64, expected: u64, slots: usize) -> usize {
    let fill = left.div_ceil(expected.max(1));
    usize::try_from(fill)
        .unwrap_or(usize::MAX)
        .clamp(1, slots.max(1))
}

/// The bytes a prepared photo adds to a request.
fn ready_bytes(item: &Item) -> u64 {
    item.ready.as_ref().map_or(0, |r| r.bytes)
}

/// The size of a request carrying `items`, as the chunker counts it.
pub(super) fn request_size(items: &[Item]) -> u64 {
    RequestBudget::request_size(items.iter().map(ready_bytes).sum::<u64>())
}

/// What the client sends for a file, from what the normalizer made of it.
fn ready(
    path: &Path,
    prepared: Result<normalize::Prepared, NormalizeError>,
) -> Result<Ready, Failure> {
    let input_failure = |message: String| Failure {
        kind: FailureKind::Input,
        code: None,
        message,
    };
    match prepared.map_err(|e| input_failure(e.to_string()))? {
        normalize::Prepared::AsIs => {
            // Opened, not only looked at: a photo that cannot be read fails alone here,
            // rather than the call that would carry it (the plan does not open an
            // unchanged file whose permission bits allow reading it).
            let bytes = crate::photo_file::open(path)
                .and_then(|file| file.metadata())
                .map_err(|e| input_failure(format!("{}: cannot read: {e}", path.display())))?
                .len();
            Ok(Ready {
                body: ImageBody::File(path.to_path_buf()),
                bytes,
                outcome: normalize::Outcome::AsIs,
            })
        }
        normalize::Prepared::Normalized { bytes, normalized } => Ok(copy(
            path,
            bytes,
            normalize::Outcome::Normalized(normalized),
        )),
        normalize::Prepared::Cropped { bytes, cropped } => {
            Ok(copy(path, bytes, normalize::Outcome::Cropped(cropped)))
        }
    }
}

/// A copy made of the photo at `path`, sent as bytes under the photo's file name.
fn copy(path: &Path, bytes: Vec<u8>, outcome: normalize::Outcome) -> Ready {
    Ready {
        bytes: bytes.len() as u64,
        body: ImageBody::Bytes {
            filename: file_name(path),
            bytes: Arc::from(bytes),
        },
        outcome,
    }
}

/// Why a photo taken from the queue is not sent.
pub(super) enum NotReady {
    /// It cannot be: failed with its reason.
    Failed(Failure),
    /// It is not to be (`--skip-faceless`): skipped with its reason.
    Skipped(String),
}

/// The file name a re-encoded copy of the photo at `path` is sent under.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photo.jpg".into())
}

#[cfg(test)]
mod tests {
    use super::photos_to_prepare;

    #[test]
    fn prepares_about_what_the_chunk_has_room_for() {
        // 1.5 MB less the envelope, 300 000-byte copies: five, the fifth to find
        // out whether it fits.
        assert_eq!(photos_to_prepare(1_483_616, 300_000, 20), 5);
        // Small photos: no more than the places left.
        assert_eq!(photos_to_prepare(1_483_616, 10_000, 20), 20);
        assert_eq!(photos_to_prepare(1_483_616, 10_000, 3), 3);
    }

    #[test]
    fn prepares_at_least_one_photo() {
        assert_eq!(photos_to_prepare(0, 300_000, 20), 1);
        assert_eq!(photos_to_prepare(50_000, 300_000, 20), 1);
        assert_eq!(photos_to_prepare(1_000, 0, 20), 20);
        assert_eq!(photos_to_prepare(1_000, 10, 0), 1);
    }
}
