//! The `addface` step: sending the queued photos in chunks and reading each
//! image's answer.

use super::prepare::request_size;
use super::room::Room;
use super::{Halt, Item, Worker};
use crate::engine::caller::{self, Action, Step};
use crate::limits::RequestLimit;
use crate::model::ImageRef;
use crate::service::api::Call;
use crate::service::client::{CallError, ImageBody};
use crate::service::codes;
use crate::store::{FaceRef, Failure, FailureKind, PersonEntry, PersonState, PhotoState};
use std::collections::VecDeque;

impl Worker<'_, '_> {
    /// Adds the queued photos in chunks until the queue is empty or the person full.
    pub(super) fn add_faces(
        &mut self,
        person: &PersonEntry,
        queue: &mut VecDeque<Item>,
        room: &mut Option<Room>,
    ) -> Result<(), Halt> {
        if !matches!(person.state, PersonState::Ready { .. }) || queue.is_empty() {
            return Ok(());
        }
        let room = match room {
            Some(room) => room,
            None => room.insert(self.read_room(person)?),
        };
        let id = &person.person;
        loop {
            self.promote_spares(queue)?;
            if queue.is_empty() {
                break;
            }
            if self.shared.stop.requested() {
                return Err(Halt::Stop);
            }
            if room.left() == 0 {
                // Photos an earlier run may have put on the service are settled
                // against the faces it holds before the rest is skipped.
                let doubtful = take_in_doubt(queue);
                if doubtful.is_empty() {
                    return self.skip_full(queue, std::iter::empty(), &room.full_reason());
                }
                self.person_full(person, queue, room, Vec::new(), doubtful)?;
                continue;
            }
            let mut chunk = self.next_chunk(queue, room.left())?;
            if chunk.is_empty() {
                continue;
            }
            self.mark_sent(&mut chunk)?;
            let bodies: Vec<ImageBody> = chunk
                .iter()
                .map(|i| i.ready.as_ref().expect("made ready").body.clone())
                .collect();
            let size = request_size(&chunk);
            let tag = person.fields.tag.as_deref();
            let answer = self.call(Call::AddFace, |client| client.add_faces(id, &bodies, tag));
            match answer {
                Ok(data) => {
                    self.learn_limit(|l| l.accept(size))?;
                    let mut face_ids = data.face_ids.into_iter();
                    let mut refused_full = Vec::new();
                    for (i, mut item) in chunk.into_iter().enumerate() {
                        let code = data.ret_codes.get(i).copied();
                        // An image the answer does not account for is refused for now.
                        let action = code.map_or(Action::Requeue, |code| {
                            caller::action(Step::Image, codes::class(code), Some(code))
                        });
                        match action {
                            Action::Enroll => match face_ids.next() {
                                Some(face_id) => {
                                    room.added += 1;
                                    self.finish(
                                        &mut item,
                                        PhotoState::Enrolled {
                                            face: FaceRef::given(face_id),
                                        },
                                    )?;
                                }
                                None => self.requeue_or_leave(queue, item, None)?,
                            },
                            Action::Duplicate => {
                                self.duplicate_on_service(&mut item)?;
                            }
                            Action::PersonFull => refused_full.push(item),
                            Action::Requeue => {
                                self.requeue_or_leave(queue, item, code)?;
                            }
                            _ => {
                                // Action::FailPhoto; an image without a code is requeued.
                                if self.whole_instead_of_crop(&mut item, code) {
                                    queue.push_front(item);
                                    continue;
                                }
                                let code = code.expect("requeued without a code");
                                tracing::warn!(photo = %item.entry.image, "refused: {}", codes::Described(code));
                                let failure = Failure {
                                    kind: FailureKind::Permanent,
                                    code: Some(code),
                                    message: format!(
                                        "{}: addface refused the image: {}",
                                        item.entry.image,
                                        codes::Described(code)
                                    ),
                                };
                                self.finish(&mut item, PhotoState::Failed(failure))?;
                            }
                        }
                    }
                    if !refused_full.is_empty() {
                        let (doubtful, refused) = self.split_in_doubt(refused_full);
                        self.person_full(person, queue, room, refused, doubtful)?;
                    }
                }
                Err(err) => match caller::action(Step::AddFaces, err.class(), err.code()) {
                    Action::PersonGone => {
                        for item in chunk.into_iter().rev() {
                            queue.push_front(item);
                        }
                        return Err(Halt::PersonGone);
                    }
                    Action::PersonFull => {
                        let (doubtful, refused) = self.split_in_doubt(chunk);
                        self.person_full(person, queue, room, refused, doubtful)?;
                    }
                    Action::TooLarge => {
                        self.too_large(queue, chunk, size, &err)?;
                    }
                    Action::FailUnreadable => {
                        self.unreadable_in_chunk(queue, chunk, &err)?;
                    }
                    Action::StopJob => {
                        self.shared.record_fatal(err);
                        return Err(Halt::Stop);
                    }
                    Action::LeavePending => {
                        if !self.shared.stop.requested() {
                            tracing::warn!(
                                "addface failed after retries; its photos are left for the next run: {err}"
                            );
                        }
                        let why = format!("addface failed after retries: {err}");
                        for mut item in chunk {
                            self.leave_refused(&mut item, err.code(), &why)?;
                        }
                        if self.shared.stop.requested() {
                            return Err(Halt::Stop);
                        }
                    }
                    _ => {
                        // Action::FailPhoto, for every photo of the call.
                        tracing::warn!("addface refused: {err}");
                        for mut item in chunk {
                            self.fail(&mut item, FailureKind::Permanent, &err)?;
                        }
                    }
                },
            }
            self.flush()?;
        }
        Ok(())
    }

    /// The service refused a request of `size` bytes carrying `items` as too large:
    /// the limit learned is lowered, and the photos go back to the queue to be cut
    /// into smaller chunks; a photo alone in the request goes back too, to be sent as
    /// a smaller copy ([`shrink`](crate::engine::shrink)), unless it is a URL or
    /// re-encoding is off (`--no-resize`): it is then failed with the reason.
    pub(super) fn too_large(
        &mut self,
        queue: &mut VecDeque<Item>,
        mut items: Vec<Item>,
        size: u64,
        err: &CallError,
    ) -> Result<(), Halt> {
        self.shared.tally.too_large();
        self.learn_limit(|l| {
            l.refuse(size);
            true
        })?;
        tracing::info!(
            "the service refused a request of {size} bytes as too large; cutting smaller requests"
        );
        if let [item] = &mut items[..] {
            if matches!(item.entry.image, ImageRef::File(_))
                && self.shared.options.normalize.enabled
            {
                // Alone and still too large: made ready again under the limit now
                // learned, as a smaller copy, or failed with the sizes.
                self.leave_pending(item)?;
                queue.push_front(items.pop().expect("one photo"));
                return Ok(());
            }
            let failure = Failure {
                kind: FailureKind::Permanent,
                code: err.code(),
                message: format!(
                    "{}: the service refused a request of {size} bytes carrying this photo \
                     alone as too large ({err}); send a smaller copy (without --no-resize, \
                     lower --max-photo-bytes)",
                    item.entry.image
                ),
            };
            return self.finish(item, PhotoState::Failed(failure));
        }
        for mut item in items.into_iter().rev() {
            self.leave_pending(&mut item)?;
            queue.push_front(item);
        }
        Ok(())
    }

    /// A photo of `items` could not be read when their call was built or streamed:
    /// nothing reached the service. The photo named fails alone (unusable input, with
    /// its path and reason), and the others go back to the front of the queue, to be
    /// sent in the next call.
    fn unreadable_in_chunk(
        &mut self,
        queue: &mut VecDeque<Item>,
        items: Vec<Item>,
        err: &CallError,
    ) -> Result<(), Halt> {
        let path = err.unreadable_photo().map(|(path, _)| path);
        let named = |item: &Item| {
            matches!(
                (item.ready.as_ref().map(|r| &r.body), path),
                (Some(ImageBody::File(file)), Some(path)) if file == path
            )
        };
        let Some(bad) = items.iter().position(named) else {
            // No photo of the call is named (every image error comes from a file of
            // its call, so this is not expected): sending the call again as it is
            // would fail again, so its photos are left for the next run.
            tracing::warn!("addface: {err}; its photos are left for the next run");
            let why = format!("addface not sent: {err}");
            for mut item in items {
                self.leave_refused(&mut item, None, &why)?;
            }
            return Ok(());
        };
        for (i, mut item) in items.into_iter().enumerate().rev() {
            if i == bad {
                self.fail_unreadable(&mut item, err)?;
            } else {
                if !self.last_call_in_doubt {
                    // No attempt of the call can have added it: not counted as sent.
                    item.entry.attempts = item.entry.attempts.saturating_sub(1);
                }
                self.leave_pending(&mut item)?;
                queue.push_front(item);
            }
        }
        Ok(())
    }

    pub(super) fn learn_limit(
        &self,
        learn: impl FnOnce(&mut RequestLimit) -> bool,
    ) -> Result<(), Halt> {
        self.shared
            .learn_limit(learn)
            .map_err(|e| self.store_failed(e))
    }

    /// A photo refused with a transient per-image code goes to the back of the queue,
    /// until its retries in this run run out; then it is left pending for the next run.
    pub(super) fn requeue_or_leave(
        &mut self,
        queue: &mut VecDeque<Item>,
        mut item: Item,
        code: Option<i64>,
    ) -> Result<(), Halt> {
        let count = self.image_retries.entry(item.key.clone()).or_default();
        *count += 1;
        if *count < self.shared.options.retry.max_attempts {
            self.shared.tally.retried();
            tracing::debug!(photo = %item.entry.image, "image refused for now, will retry: {:?}", code.map(codes::Described));
            queue.push_back(item);
            return Ok(());
        }
        let why = match code {
            Some(code) => format!(
                "refused {count} times in this run, last with {}",
                codes::Described(code)
            ),
            None => "the service's answer did not account for this image".to_owned(),
        };
        tracing::warn!(photo = %item.entry.image, "{why}; left for the next run");
        self.leave_refused(&mut item, code, &why)
    }

    /// Whether `item` may have reached the service before the last call: it was in
    /// doubt, or an earlier attempt of that call lost its answer. A face the service
    /// holds for it is then ours, from an answer that was lost.
    pub(super) fn sent_before(&self, item: &Item) -> bool {
        item.entry.attempts > 1 || self.last_call_in_doubt
    }

    /// The service already holds this face for the person.
    pub(super) fn duplicate_on_service(&mut self, item: &mut Item) -> Result<(), Halt> {
        let state = if self.sent_before(item) {
            PhotoState::Enrolled {
                face: FaceRef::Confirmed,
            }
        } else {
            PhotoState::Duplicate {
                reason: "the service already holds this face for the person".into(),
            }
        };
        self.finish(item, state)
    }
}

/// Takes the photos an earlier run sent without recording the answer off the queue.
fn take_in_doubt(queue: &mut VecDeque<Item>) -> Vec<Item> {
    let (doubtful, rest): (Vec<Item>, Vec<Item>) = queue
        .drain(..)
        .partition(|i| i.entry.state == PhotoState::InDoubt);
    queue.extend(rest);
    doubtful
}
