//! One person's flow: create it with a seed photo (or reconcile it when it already
//! exists), then add its other photos in chunks, reading each image's answer.
//!
//! Every state change is written to the store, and the store is flushed before each
//! call that changes the service (the photos it carries are then in doubt) and after
//! its answer is recorded. So after a crash at any point the store knows which photos
//! may already be on the service; re-sending them is safe, because the service answers
//! "duplicate face" for a face the person already has, and that answer to a photo in
//! doubt is recorded as the enrollment it confirms.
//!
//! # What the job reads rather than assumes
//!
//! A person may hold faces the job did not add (another tool, the application, a
//! colleague), or lose faces or vanish between runs. So the room left on a person is
//! the face count read from the service (`getinfo` when the person is reconciled,
//! else `getfaceids`) before the first `addface` of each run, unless this run created
//! the person. A -1309, for the whole call or for some images, reads the count again:
//! what still fits is sent, the rest is recorded `Full` with the count read. A person
//! the service no longer has (-1303) has the photos recorded as enrolled on it sent
//! again to a re-created person.
//!
//! The flow is cut by step: [`seed`] creates (or reconciles) the person, [`faces`]
//! adds the other photos with `addface`, [`room`] reads and keeps the face count,
//! and [`prepare`] readies photos and cuts them into chunks.

mod faces;
mod prepare;
mod room;
mod seed;

use super::caller::{self, Action, Step};
use super::queue::PersonWork;
use super::Shared;
use crate::normalize;
use crate::report::Counted;
use crate::service::api::Call;
use crate::service::client::{CallError, ImageBody};
use crate::store::{
    Failure, FailureKind, PersonEntry, PersonState, PhotoEntry, PhotoKey, PhotoState, StoreError,
};
use room::Room;
use std::collections::{HashMap, VecDeque};

/// A photo ready to be sent: what goes on the wire and how many bytes it weighs.
struct Ready {
    body: ImageBody,
    bytes: u64,
    /// Whether the photo was re-encoded to fit, and from what to what.
    outcome: normalize::Outcome,
}

/// A photo of the person's queue, prepared once it comes near the front.
struct Item {
    key: PhotoKey,
    entry: PhotoEntry,
    ready: Option<Ready>,
}

impl Item {
    /// A photo of the person's work, not yet prepared.
    fn new((key, entry): (PhotoKey, PhotoEntry)) -> Item {
        Item {
            key,
            entry,
            ready: None,
        }
    }
}

/// Why a person's flow stopped before its queue was empty.
enum Halt {
    /// The job is stopping (fatal error or signal), or the store failed.
    Stop,
    /// This person cannot go on in this run; its other photos stay pending.
    Person,
    /// The service says the person does not exist any more.
    PersonGone,
}

/// A worker thread's own state.
pub(super) struct Worker<'s, 'a> {
    shared: &'s Shared<'a>,
    rng: fastrand::Rng,
    /// Transient per-image refusals of each photo in this run.
    image_retries: HashMap<PhotoKey, u32>,
    /// Whether an attempt of the last call ended with its outcome unknown (the
    /// connection was lost after the request was sent): the service may have done
    /// the work before the attempt that answered.
    last_call_in_doubt: bool,
    /// Re-reads of the face count after -1309 for the current person.
    full_rereads: u32,
    /// The current person's spares ([`PhotoState::Spare`]), in source order.
    spares: VecDeque<Item>,
    /// Places of the current person freed by photos the service refused for good
    /// (or that could not be sent at all), each handed to the next spare.
    freed: usize,
}

impl<'s, 'a> Worker<'s, 'a> {
    pub(super) fn new(shared: &'s Shared<'a>, rng: fastrand::Rng) -> Self {
        Worker {
            shared,
            rng,
            image_retries: HashMap::new(),
            last_call_in_doubt: false,
            full_rereads: 0,
            spares: VecDeque::new(),
            freed: 0,
        }
    }

    /// Works one person to the end of its queue, or until stopped.
    pub(super) fn enroll(&mut self, work: PersonWork) {
        let PersonWork {
            mut person,
            photos,
            spares,
            ..
        } = work;
        let _span = tracing::info_span!("person", id = %person.person).entered();
        let mut queue: VecDeque<Item> = photos.into_iter().map(Item::new).collect();
        let mut room: Option<Room> = None;
        let mut recreated = false;
        let mut stopped = false;
        self.image_retries.clear();
        self.full_rereads = 0;
        self.freed = 0;
        self.spares = spares.into_iter().map(Item::new).collect();
        loop {
            let result = self
                .bring_in_line(&mut person, &mut room)
                .and_then(|()| self.create_if_new(&mut person, &mut queue, &mut room))
                .and_then(|()| self.add_faces(&person, &mut queue, &mut room));
            match result {
                Err(Halt::PersonGone) if !recreated => {
                    recreated = true;
                    room = None;
                    if self.person_vanished(&mut person, &mut queue).is_err() {
                        stopped = true;
                        break;
                    }
                }
                Err(Halt::PersonGone) => {
                    tracing::warn!("person vanished from the service twice; leaving its photos for the next run");
                    break;
                }
                Err(Halt::Stop) => {
                    stopped = true;
                    break;
                }
                Ok(()) | Err(Halt::Person) => break,
            }
        }
        if let Err(err) = self.shared.store.flush() {
            self.shared.record_store_error(err);
        }
        // A person the job stopped in the middle of is not done: the next run
        // takes it up again.
        if !stopped {
            self.shared.tally.person_done();
        }
    }

    /// A person whose groups, name or tag changed in the source is brought in line
    /// first; its face count is read on the way.
    fn bring_in_line(
        &mut self,
        person: &mut PersonEntry,
        room: &mut Option<Room>,
    ) -> Result<(), Halt> {
        if person.state != PersonState::Stale {
            return Ok(());
        }
        let (found, created) = match self.reconcile(person, false) {
            Ok(found) => found,
            Err(Halt::Person) => {
                // Refused past its retries (an internal error that lasts, 213): a
                // failure of this run, and the person stays to be brought in line by
                // the next one.
                self.shared.tally.change_failed();
                return Err(Halt::Person);
            }
            Err(halt) => return Err(halt),
        };
        *room = Some(found);
        person.state = PersonState::Ready { created };
        self.put_person(person)?;
        self.shared.tally.person_reconciled();
        Ok(())
    }

    /// The service no longer has the person: the photos recorded as enrolled on it
    /// are not enrolled any more. They go back to pending, to be sent again with the
    /// others once the person is created again.
    fn person_vanished(
        &mut self,
        person: &mut PersonEntry,
        queue: &mut VecDeque<Item>,
    ) -> Result<(), Halt> {
        let store = self.shared.store;
        let generation = store.meta().map_err(|e| self.store_failed(e))?.generation;
        let mut back = Vec::new();
        for found in store.photos_of(person.person.as_str()) {
            let (key, mut entry) = found.map_err(|e| self.store_failed(e))?;
            if entry.generation == generation && matches!(entry.state, PhotoState::Enrolled { .. })
            {
                entry.state = PhotoState::Pending;
                back.push(Item {
                    key,
                    entry,
                    ready: None,
                });
            }
        }
        for item in &back {
            self.put_photo(item)?;
        }
        tracing::warn!(
            "person vanished from the service; creating it again and sending again the {} \
             photos recorded as enrolled on it",
            back.len()
        );
        self.shared.tally.person_vanished(back.len() as u64);
        queue.extend(back);
        queue.make_contiguous().sort_by_key(|i| i.entry.seq);
        person.state = PersonState::New;
        self.put_person(person)?;
        self.flush()
    }

    /// Leaves a photo for the next run: in doubt if the last call that carried it
    /// may have reached the service, else pending.
    fn leave_pending(&mut self, item: &mut Item) -> Result<(), Halt> {
        item.entry.state = if self.last_call_in_doubt {
            PhotoState::InDoubt
        } else {
            PhotoState::Pending
        };
        self.put_photo(item)
    }

    /// Leaves a photo the service refused for now for the next run, as
    /// [`Self::leave_pending`] does, keeping the last refusal (`code`, `why`) for the
    /// report; a stop the operator asked for is no refusal and keeps none.
    fn leave_refused(&mut self, item: &mut Item, code: Option<i64>, why: &str) -> Result<(), Halt> {
        if self.last_call_in_doubt || self.shared.stop.requested() {
            return self.leave_pending(item);
        }
        item.entry.state = PhotoState::Deferred(Failure {
            kind: FailureKind::RetriesExhausted,
            code,
            message: format!("{}: {why}; left for the next run", item.entry.image),
        });
        self.put_photo(item)
    }

    /// Marks photos as sent (in doubt) and makes that durable before the call.
    fn mark_sent(&mut self, items: &mut [Item]) -> Result<(), Halt> {
        for item in items.iter_mut() {
            item.entry.attempts += 1;
            item.entry.state = PhotoState::InDoubt;
            item.entry.note = item
                .ready
                .as_ref()
                .filter(|r| r.outcome != normalize::Outcome::AsIs)
                .map(|r| r.outcome.to_string());
            self.put_photo(item)?;
            if let Some(ready) = &item.ready {
                super::crop::record_sent(self.shared, &item.key, &ready.outcome)
                    .map_err(|e| self.store_failed(e))?;
            }
        }
        self.flush()
    }

    fn fail(&mut self, item: &mut Item, kind: FailureKind, err: &CallError) -> Result<(), Halt> {
        let failure = Failure {
            kind,
            code: err.code(),
            message: format!("{}: {err}", item.entry.image),
        };
        self.finish(item, PhotoState::Failed(failure))
    }

    /// Fails a photo that could not be read when its call was built or streamed
    /// ([`CallError::Image`]): unusable input, its path and the reason in the report.
    /// Nothing of that call reached the service.
    fn fail_unreadable(&mut self, item: &mut Item, err: &CallError) -> Result<(), Halt> {
        let reason = match err.unreadable_photo() {
            Some((_, source)) => source.to_string(),
            None => err.to_string(),
        };
        let failure = Failure {
            kind: FailureKind::Input,
            code: None,
            message: format!(
                "{}: cannot be read when its call was sent: {reason}; not sent",
                item.entry.image
            ),
        };
        tracing::warn!(photo = %item.entry.image, "{}", failure.message);
        self.finish(item, PhotoState::Failed(failure))
    }

    /// Hands the places freed by refused photos to the next spares, at the back of
    /// the queue: the person's places go to the first photos the service accepts. A
    /// spare promoted is recorded pending at once, so a run that stops before
    /// sending it counts it among the photos left for the next run.
    fn promote_spares(&mut self, queue: &mut VecDeque<Item>) -> Result<(), Halt> {
        while self.freed > 0 {
            let Some(mut spare) = self.spares.pop_front() else {
                break;
            };
            self.freed -= 1;
            tracing::info!(photo = %spare.entry.image, "takes the place of a photo refused for good");
            spare.entry.state = PhotoState::Pending;
            self.put_photo(&spare)?;
            self.shared.tally.spare_promoted();
            queue.push_back(spare);
        }
        Ok(())
    }

    /// Records a photo's final state for this run and counts it.
    fn finish(&mut self, item: &mut Item, state: PhotoState) -> Result<(), Halt> {
        let counted = match &state {
            PhotoState::Enrolled { .. } => {
                if let Some(ready) = &item.ready {
                    let saved = ready.outcome.bytes_saved();
                    self.shared.tally.bytes_saved(saved);
                }
                Counted::Enrolled
            }
            PhotoState::Duplicate { .. } => Counted::Duplicate,
            PhotoState::Skipped { .. } | PhotoState::Full { .. } | PhotoState::Spare { .. } => {
                Counted::Skipped
            }
            PhotoState::Failed(f) => {
                self.freed += 1;
                Counted::Failed(f.code)
            }
            PhotoState::Pending
            | PhotoState::InDoubt
            | PhotoState::Deferred(_)
            | PhotoState::Removed { .. } => {
                unreachable!("finish with a final state of a run")
            }
        };
        item.entry.state = state;
        self.put_photo(item)?;
        self.shared.tally.photo(counted);
        Ok(())
    }

    fn put_photo(&self, item: &Item) -> Result<(), Halt> {
        self.shared
            .store
            .put_photo(&item.key, &item.entry)
            .map_err(|e| self.store_failed(e))
    }

    fn put_person(&self, person: &PersonEntry) -> Result<(), Halt> {
        self.shared
            .store
            .put_person(person)
            .map_err(|e| self.store_failed(e))
    }

    fn flush(&self) -> Result<(), Halt> {
        self.shared.store.flush().map_err(|e| self.store_failed(e))
    }

    fn store_failed(&self, err: StoreError) -> Halt {
        self.shared.record_store_error(err);
        Halt::Stop
    }

    /// A call that must succeed for the person to go on.
    fn call_or_halt<T>(
        &mut self,
        call: Call,
        f: impl FnMut(&crate::service::client::Client) -> Result<T, CallError>,
    ) -> Result<T, Halt> {
        self.call(call, f).map_err(|err| {
            match caller::action(Step::Read, err.class(), err.code()) {
                Action::StopJob => {
                    self.shared.record_fatal(err);
                    Halt::Stop
                }
                Action::PersonGone => Halt::PersonGone,
                _ => {
                    // Action::HaltPerson.
                    tracing::warn!("cannot go on with the person now: {err}");
                    Halt::Person
                }
            }
        })
    }

    /// Sends a call through the pacer, retrying transient errors with backoff.
    fn call<T>(
        &mut self,
        call: Call,
        f: impl FnMut(&crate::service::client::Client) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let mut sent = caller::Sent::default();
        let result = caller::call(self.shared, &mut self.rng, &mut sent, call, f);
        self.last_call_in_doubt = sent.in_doubt;
        result
    }
}
