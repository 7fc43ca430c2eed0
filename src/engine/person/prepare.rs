//! Readying photos for sending (read, re-encoded if needed) and cutting the queue
//! into the next chunk.

use super::{Halt, Item, Ready, Worker};
use crate::chunk::{self, ChunkItem};
use crate::engine::shrink;
use crate::limits::{RequestBudget, MAX_IMAGES_PER_ADDFACE};
use crate::model::ImageRef;
use crate::normalize::{self, NormalizeError};
use crate::service::client::ImageBody;
use crate::store::{Failure, FailureKind, PhotoEntry, PhotoState};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

impl Worker<'_, '_> {
    /// Takes the next chunk off the front of the queue: at most 20 photos, within the
    /// request size limit and the person's room, all files or all URLs.
    pub(super) fn next_chunk(
        &mut self,
        queue: &mut VecDeque<Item>,
        room: usize,
    ) -> Result<Vec<Item>, Halt> {
        let mut candidates: Vec<Item> = Vec::with_capacity(MAX_IMAGES_PER_ADDFACE);
        while candidates.len() < MAX_IMAGES_PER_ADDFACE.min(room) {
            match queue.pop_front() {
                Some(item) => candidates.push(item),
                None => break,
            }
        }
        // Prepare (read, re-encode if needed) in parallel on the normalizing pool; a
        // photo that fails is failed with its reason, and the others go on.
        let waiting: Vec<&PhotoEntry> = candidates
            .iter()
            .filter(|i| i.ready.is_none())
            .map(|i| &i.entry)
            .collect();
        let mut prepared = self.prepare(&waiting).into_iter();
        let mut usable = Vec::with_capacity(candidates.len());
        for mut item in candidates {
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
        let items: Vec<ChunkItem> = usable
            .iter()
            .map(|i| {
                let ready = i.ready.as_ref().expect("made ready");
                ChunkItem {
                    bytes: ready.bytes,
                    is_url: matches!(ready.body, ImageBody::Url(_)),
                }
            })
            .collect();
        // Every usable photo fits a request on its own (see fits_alone), so the first
        // chunk starts at the front, unless the photo there is over the budget being
        // probed (yet under the smallest refused): it then goes alone. The photos
        // past the chunk go back to the queue.
        let budget = self.shared.request_budget();
        let first = chunk::chunks(&items, room, &budget)
            .into_iter()
            .next()
            .filter(|r| r.start == 0)
            .unwrap_or(0..usable.len().min(1));
        let rest = usable.split_off(first.end);
        for item in rest.into_iter().rev() {
            queue.push_front(item);
        }
        Ok(usable)
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
    /// normalizing pool, the URLs as they are.
    fn prepare(&self, entries: &[&PhotoEntry]) -> Vec<Result<Ready, Failure>> {
        let files: Vec<&Path> = entries
            .iter()
            .filter_map(|e| match &e.image {
                ImageRef::File(path) => Some(path.as_path()),
                ImageRef::Url(_) => None,
            })
            .collect();
        let options = self
            .shared
            .options
            .normalize
            .within(&self.shared.request_budget());
        let mut prepared =
            normalize::prepare_chunk(&self.shared.normalize_pool, &files, &options).into_iter();
        entries
            .iter()
            .map(|e| match &e.image {
                ImageRef::Url(url) => Ok(Ready {
                    body: ImageBody::Url(url.clone()),
                    bytes: url.len() as u64,
                    outcome: normalize::Outcome::AsIs,
                }),
                ImageRef::File(path) => ready(path, prepared.next().expect("one result per file")),
            })
            .collect()
    }

    /// Takes a prepared photo, or fails it with its reason (and answers `false`) when
    /// it could not be prepared.
    fn accept(&mut self, item: &mut Item, result: Result<Ready, Failure>) -> Result<bool, Halt> {
        match result {
            Ok(ready) => {
                item.ready = Some(ready);
                Ok(true)
            }
            Err(failure) => {
                tracing::warn!(photo = %item.entry.image, "{}", failure.message);
                self.finish(item, PhotoState::Failed(failure))?;
                Ok(false)
            }
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
                "{}: {} bytes, over the request limit of {} bytes on its own{}; {why}",
                item.entry.image,
                bytes,
                limit,
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

/// The size of a request carrying `items`, as the chunker counts it.
pub(super) fn request_size(items: &[Item]) -> u64 {
    RequestBudget::request_size(
        items
            .iter()
            .map(|i| i.ready.as_ref().map_or(0, |r| r.bytes))
            .sum::<u64>(),
    )
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
            let bytes = std::fs::metadata(path)
                .map_err(|e| input_failure(format!("{}: cannot read: {e}", path.display())))?
                .len();
            Ok(Ready {
                body: ImageBody::File(path.to_path_buf()),
                bytes,
                outcome: normalize::Outcome::AsIs,
            })
        }
        normalize::Prepared::Normalized { bytes, normalized } => Ok(Ready {
            bytes: bytes.len() as u64,
            body: ImageBody::Bytes {
                filename: file_name(path),
                bytes: Arc::from(bytes),
            },
            outcome: normalize::Outcome::Normalized(normalized),
        }),
    }
}

/// The file name a re-encoded copy of the photo at `path` is sent under.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "photo.jpg".into())
}
