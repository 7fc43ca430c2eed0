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

use super::caller::{self, Action, Step};
use super::doubt;
use super::queue::PersonWork;
use super::shrink;
use super::Shared;
use crate::chunk::{self, ChunkItem};
use crate::limits::{RequestBudget, RequestLimit, MAX_FACES_PER_PERSON, MAX_IMAGES_PER_ADDFACE};
use crate::model::{GroupId, ImageRef};
use crate::normalize;
use crate::report::Counted;
use crate::service::client::{CallError, ImageBody};
use crate::service::codes;
use crate::store::{
    FaceRef, Failure, FailureKind, PersonEntry, PersonState, PhotoEntry, PhotoKey, PhotoState,
    StoreError,
};
use rayon::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

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

/// What this run knows of a person's faces on the service.
#[derive(Debug, Clone, Copy)]
struct Room {
    /// Faces the service held when read, or 1 when this run created the person.
    held: usize,
    source: Held,
    /// Faces this run added since.
    added: usize,
}

/// How a [`Room`]'s count was established.
#[derive(Debug, Clone, Copy)]
enum Held {
    /// This run created the person with its seed.
    Created,
    /// Read from the service (`call`) at `at` (unix seconds).
    Read { call: &'static str, at: u64 },
}

impl Room {
    fn created() -> Room {
        Room {
            held: 1,
            source: Held::Created,
            added: 0,
        }
    }

    fn read(held: usize, call: &'static str) -> Room {
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Room {
            held,
            source: Held::Read { call, at },
            added: 0,
        }
    }

    /// Faces the person can still take.
    fn left(&self) -> usize {
        MAX_FACES_PER_PERSON.saturating_sub(self.held + self.added)
    }

    /// Why the photos left for a full person are not sent, quoting the count read.
    fn full_reason(&self) -> String {
        match self.source {
            Held::Read { call, at } => format!(
                "the person is full: the service held {} faces for it when read with {call} \
                 at {} (the limit is {MAX_FACES_PER_PERSON}), and this run added {} since",
                self.held,
                crate::report::utc_time(at),
                self.added
            ),
            Held::Created => format!(
                "the person is full: this run created it and added its {} faces (the limit \
                 is {MAX_FACES_PER_PERSON})",
                self.held + self.added
            ),
        }
    }
}

/// Times the face count is read again after -1309 for one person in one run before
/// the job believes the service's refusal over the count it reads.
const MAX_FULL_REREADS: u32 = 3;

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
}

impl<'s, 'a> Worker<'s, 'a> {
    pub(super) fn new(shared: &'s Shared<'a>, rng: fastrand::Rng) -> Self {
        Worker {
            shared,
            rng,
            image_retries: HashMap::new(),
            last_call_in_doubt: false,
            full_rereads: 0,
        }
    }

    /// Works one person to the end of its queue, or until stopped.
    pub(super) fn enroll(&mut self, work: PersonWork) {
        let PersonWork {
            mut person, photos, ..
        } = work;
        let _span = tracing::info_span!("person", id = %person.person).entered();
        let mut queue: VecDeque<Item> = photos
            .into_iter()
            .map(|(key, entry)| Item {
                key,
                entry,
                ready: None,
            })
            .collect();
        let mut room: Option<Room> = None;
        let mut recreated = false;
        let mut stopped = false;
        self.image_retries.clear();
        self.full_rereads = 0;
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
        *room = Some(self.reconcile(person)?);
        person.state = PersonState::Ready { created: false };
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

    /// Creates a new person with the first photo the service accepts as its seed.
    ///
    /// A seed refused for its image hands over to the next photo: for good (no face,
    /// undecodable: failed), or for now (the service could not download it: left for
    /// `addface` once the person exists, or for the next run).
    fn create_if_new(
        &mut self,
        person: &mut PersonEntry,
        queue: &mut VecDeque<Item>,
        room: &mut Option<Room>,
    ) -> Result<(), Halt> {
        if person.state != PersonState::New {
            return Ok(());
        }
        let mut last_reason = None;
        let mut deferred: Vec<Item> = Vec::new();
        let put_back = |queue: &mut VecDeque<Item>, deferred: Vec<Item>| {
            for item in deferred.into_iter().rev() {
                queue.push_front(item);
            }
        };
        while let Some(mut item) = queue.pop_front() {
            if self.shared.stop.requested() {
                queue.push_front(item);
                put_back(queue, deferred);
                return Err(Halt::Stop);
            }
            if !self.make_ready(&mut item)? {
                continue;
            }
            let before = (item.entry.state.clone(), item.entry.attempts);
            self.mark_sent(std::slice::from_mut(&mut item))?;
            let size = request_size(std::slice::from_ref(&item));
            let ready = item.ready.as_ref().expect("made ready");
            let fields = &person.fields;
            let answer = self.call(|client| {
                client.new_person(
                    &person.person,
                    &fields.groups,
                    &ready.body,
                    fields.name.as_deref(),
                    fields.tag.as_deref(),
                )
            });
            match answer {
                Ok(data) => {
                    self.learn_limit(|l| l.accept(size))?;
                    tracing::info!(photo = %item.entry.image, face_id = %data.face_id, "person created");
                    self.finish(
                        &mut item,
                        PhotoState::Enrolled {
                            face: FaceRef::Id(data.face_id),
                        },
                    )?;
                    *room = Some(Room::created());
                    person.state = PersonState::Ready { created: true };
                    // Kept apart from the person's state, which a later change of
                    // its fields replaces: `rollback` deletes only what the job made.
                    self.shared
                        .store
                        .mark_created(person.person.as_str())
                        .map_err(|e| self.store_failed(e))?;
                    self.put_person(person)?;
                    self.shared.tally.person_created();
                    put_back(queue, deferred);
                    return Ok(());
                }
                Err(err) => match caller::action(Step::Seed, err.class(), err.code()) {
                    Action::Reconcile => {
                        let seed_in_doubt = self.last_call_in_doubt;
                        tracing::info!("person already exists on the service; reconciling");
                        // This call added nothing (unless an earlier attempt of it lost
                        // its answer), so the seed is as it was before it. It goes in
                        // with the other photos: if an earlier run's lost answer put it
                        // on the service, the service will say so.
                        if !seed_in_doubt {
                            (item.entry.state, item.entry.attempts) = before;
                            self.put_photo(&item)?;
                        }
                        queue.push_front(item);
                        put_back(queue, deferred);
                        *room = Some(self.reconcile(person)?);
                        person.state = PersonState::Ready { created: false };
                        self.put_person(person)?;
                        self.shared.tally.person_reconciled();
                        return Ok(());
                    }
                    Action::StopJob => {
                        self.shared.record_fatal(err);
                        queue.push_front(item);
                        put_back(queue, deferred);
                        return Err(Halt::Stop);
                    }
                    Action::TooLarge => {
                        // The seed alone is over the limit: the next photo seeds.
                        last_reason = Some(err.to_string());
                        self.too_large(queue, vec![item], size, &err)?;
                    }
                    Action::DeferSeed => {
                        if self.shared.stop.requested() {
                            self.leave_pending(&mut item)?;
                            queue.push_front(item);
                            put_back(queue, deferred);
                            return Err(Halt::Stop);
                        }
                        tracing::warn!(photo = %item.entry.image, "seed photo refused for now, the next photo seeds the person: {err}");
                        self.leave_pending(&mut item)?;
                        deferred.push(item);
                    }
                    Action::HaltPerson => {
                        if !self.shared.stop.requested() {
                            tracing::warn!(photo = %item.entry.image, "cannot create the person now; its photos are left for the next run: {err}");
                        }
                        self.leave_pending(&mut item)?;
                        queue.push_front(item);
                        put_back(queue, deferred);
                        return Err(if self.shared.stop.requested() {
                            Halt::Stop
                        } else {
                            Halt::Person
                        });
                    }
                    Action::FailPhoto => {
                        tracing::warn!(photo = %item.entry.image, "seed photo refused: {err}");
                        last_reason = Some(err.to_string());
                        self.fail(&mut item, FailureKind::Permanent, &err)?;
                    }
                    _ => {
                        // Action::FailPerson.
                        // Refused for the person, not the photo (a group full, a bad
                        // parameter): every photo of the person would be refused so.
                        tracing::warn!("person refused: {err}");
                        self.fail(&mut item, FailureKind::Permanent, &err)?;
                        for mut other in deferred.into_iter().chain(queue.drain(..)) {
                            self.fail(&mut other, FailureKind::Permanent, &err)?;
                        }
                        person.state = PersonState::Failed {
                            reason: err.to_string(),
                        };
                        self.put_person(person)?;
                        self.shared.tally.person_failed();
                        return Err(Halt::Person);
                    }
                },
            }
        }
        if !deferred.is_empty() {
            // Only photos refused for now are left: the next run seeds with them.
            tracing::warn!(
                "no photo could seed the person in this run; {} photos refused for now are left for the next run",
                deferred.len()
            );
            put_back(queue, deferred);
            return Err(Halt::Person);
        }
        let reason = match last_reason {
            Some(r) => format!("no photo could seed the person (last refusal: {r})"),
            None => "no photo could seed the person".to_owned(),
        };
        tracing::warn!("{reason}");
        person.state = PersonState::Failed { reason };
        self.put_person(person)?;
        self.shared.tally.person_failed();
        Ok(())
    }

    /// Brings an existing person in line with the plan: its groups, name and tag.
    /// Answers the person's face count as `getinfo` read it.
    fn reconcile(&mut self, person: &PersonEntry) -> Result<Room, Halt> {
        let id = &person.person;
        let info = self.call_or_halt(|c| c.get_info(id))?;
        if person.state == PersonState::New {
            // Found on the service, not created by the job: how it was found is what
            // `rollback` restores, so it is made durable before the first change.
            let found = crate::store::BeforeEntry {
                name: info.person_name.clone(),
                tag: info.tag.clone(),
                groups: info.group_ids.clone(),
                face_ids: info.face_ids.clone(),
            };
            self.shared
                .store
                .put_before_once(id.as_str(), &found)
                .map_err(|e| self.store_failed(e))?;
            self.flush()?;
        }
        let missing: Vec<GroupId> = person
            .fields
            .groups
            .iter()
            .filter(|g| !info.group_ids.iter().any(|have| have == g.as_str()))
            .cloned()
            .collect();
        if !missing.is_empty() {
            self.call_or_halt(|c| c.add_group_ids(id, &missing))?;
        }
        let name = person.fields.name.as_deref();
        let tag = person.fields.tag.as_deref();
        let differs =
            name.is_some_and(|n| n != info.person_name) || tag.is_some_and(|t| t != info.tag);
        if differs {
            self.call_or_halt(|c| c.set_info(id, name, tag))?;
        }
        Ok(Room::read(info.face_ids.len(), "getinfo"))
    }

    /// Reads the person's face count from the service.
    fn read_room(&mut self, person: &PersonEntry) -> Result<Room, Halt> {
        Ok(self.read_faces(person)?.0)
    }

    /// Reads the person's faces from the service: the count and the face ids.
    fn read_faces(&mut self, person: &PersonEntry) -> Result<(Room, Vec<String>), Halt> {
        let id = &person.person;
        let faces = self.call_or_halt(|c| c.get_face_ids(id))?;
        Ok((
            Room::read(faces.face_ids.len(), "getfaceids"),
            faces.face_ids,
        ))
    }

    /// Adds the queued photos in chunks until the queue is empty or the person full.
    fn add_faces(
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
        while !queue.is_empty() {
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
            let answer = self.call(|client| client.add_faces(id, &bodies, tag));
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
                                            face: FaceRef::Id(face_id),
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
                        for mut item in chunk {
                            self.leave_pending(&mut item)?;
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
    /// a smaller copy ([`shrink`]), unless it is a URL, which is failed with the reason.
    fn too_large(
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
            if matches!(item.entry.image, ImageRef::File(_)) {
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

    fn learn_limit(&self, learn: impl FnOnce(&mut RequestLimit) -> bool) -> Result<(), Halt> {
        self.shared
            .learn_limit(learn)
            .map_err(|e| self.store_failed(e))
    }

    /// The service answered -1309 for `refused` and `doubtful` (for the whole call
    /// or image by image), or the person is full with `doubtful` photos that an
    /// earlier send may have put on it: reads the faces again, queues again what now
    /// fits, settles the photos in doubt against the faces read ([`doubt`]), and
    /// records the rest `Full` with the count read.
    fn person_full(
        &mut self,
        person: &PersonEntry,
        queue: &mut VecDeque<Item>,
        room: &mut Room,
        mut refused: Vec<Item>,
        doubtful: Vec<Item>,
    ) -> Result<(), Halt> {
        self.full_rereads += 1;
        let held;
        (*room, held) = self.read_faces(person)?;
        tracing::info!(
            "the service says the person is full; it holds {} faces",
            room.held
        );
        if room.left() > 0 && self.full_rereads <= MAX_FULL_REREADS {
            // What fits goes again, in order, with the chunk cut to the room read.
            refused.extend(doubtful);
            refused.sort_by_key(|i| i.entry.seq);
            for item in refused.into_iter().rev() {
                queue.push_front(item);
            }
            return Ok(());
        }
        if !doubtful.is_empty() {
            let known = doubt::Known::read(self.shared.store, person.person.as_str())
                .map_err(|e| self.store_failed(e))?;
            let (on_service, not_there) =
                doubt::settle(doubtful, known.unaccounted(&held), |i| i.entry.seq);
            if !on_service.is_empty() {
                tracing::info!(
                    "the person is full and holds faces the job cannot account for otherwise: \
                     {} photos in doubt are recorded as those faces",
                    on_service.len()
                );
            }
            for mut item in on_service {
                let state = PhotoState::Enrolled {
                    face: FaceRef::Confirmed,
                };
                self.finish(&mut item, state)?;
            }
            refused.extend(not_there);
        }
        let reason = room.full_reason();
        self.skip_full(queue, refused, &reason)
    }

    /// Splits photos refused by the last call into those an earlier send may have
    /// put on the service (as [`Self::duplicate_on_service`] judges) and the others.
    fn split_in_doubt(&self, items: Vec<Item>) -> (Vec<Item>, Vec<Item>) {
        let in_doubt = self.last_call_in_doubt;
        items
            .into_iter()
            .partition(|i| in_doubt || i.entry.attempts > 1)
    }

    /// Takes the next chunk off the front of the queue: at most 20 photos, within the
    /// request size limit and the person's room, all files or all URLs.
    fn next_chunk(&mut self, queue: &mut VecDeque<Item>, room: usize) -> Result<Vec<Item>, Halt> {
        let mut candidates: Vec<Item> = Vec::with_capacity(MAX_IMAGES_PER_ADDFACE);
        while candidates.len() < MAX_IMAGES_PER_ADDFACE.min(room) {
            match queue.pop_front() {
                Some(item) => candidates.push(item),
                None => break,
            }
        }
        // Prepare (read, re-encode if needed) in parallel on the normalizing pool;
        // a photo that fails is failed with its reason by make_ready below.
        let options = &self.shared.options.normalize;
        self.shared.normalize_pool.install(|| {
            candidates
                .par_iter_mut()
                .filter(|i| i.ready.is_none())
                .for_each(|item| {
                    if let Ok(ready) = prepare(&item.entry, options) {
                        item.ready = Some(ready);
                    }
                })
        });
        let mut usable = Vec::with_capacity(candidates.len());
        for mut item in candidates {
            if self.make_ready(&mut item)? {
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
        // Every usable photo fits a request on its own (see make_ready), so the first
        // chunk starts at the front, unless the photo there is over the budget being
        // probed (yet under the smallest refused): it then goes alone. The photos
        // past the chunk go back to the queue.
        let budget = self.shared.request_budget().chunk_request_bytes();
        let first = chunk::chunks(&items, room, budget)
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
    /// be sent at all. A photo over the request limit on its own (as learned from
    /// the service's refusals) is sent as a smaller copy ([`shrink`]).
    fn make_ready(&mut self, item: &mut Item) -> Result<bool, Halt> {
        let ready = match item.ready.take() {
            Some(ready) => ready,
            None => match prepare(&item.entry, &self.shared.options.normalize) {
                Ok(ready) => ready,
                Err(failure) => {
                    tracing::warn!(photo = %item.entry.image, "{}", failure.message);
                    self.finish(item, PhotoState::Failed(failure))?;
                    return Ok(false);
                }
            },
        };
        let budget = self.shared.request_budget();
        let limit = budget.photo_bytes();
        if ready.bytes <= limit {
            item.ready = Some(ready);
            return Ok(true);
        }
        let copy = match &item.entry.image {
            ImageRef::File(path) => {
                shrink::smaller_copy(path, &self.shared.options.normalize, limit)
            }
            ImageRef::Url(_) => Err("a URL is sent as it is".to_owned()),
        };
        match copy {
            Ok((bytes, normalized)) => {
                tracing::info!(photo = %item.entry.image, "over the request limit of {limit} bytes on its own; sending a smaller copy ({normalized})");
                item.ready = Some(Ready {
                    bytes: bytes.len() as u64,
                    body: ImageBody::Bytes {
                        filename: file_name(&item.entry.image),
                        bytes: Arc::from(bytes),
                    },
                    outcome: normalize::Outcome::Normalized(normalized),
                });
                Ok(true)
            }
            Err(why) => {
                let failure = Failure {
                    kind: FailureKind::Input,
                    code: None,
                    message: format!(
                        "{}: {} bytes, over the request limit of {} bytes on its own{}; {why}",
                        item.entry.image,
                        ready.bytes,
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
    }

    /// A photo refused with a transient per-image code goes to the back of the queue,
    /// until its retries in this run run out; then it is left pending for the next run.
    fn requeue_or_leave(
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
        match code {
            Some(code) => tracing::warn!(
                photo = %item.entry.image,
                "refused {count} times in this run, last with {}; left for the next run",
                codes::Described(code)
            ),
            None => tracing::warn!(
                photo = %item.entry.image,
                "the service's answer did not account for this image; left for the next run"
            ),
        }
        self.leave_pending(&mut item)
    }

    /// The service already holds this face for the person.
    fn duplicate_on_service(&mut self, item: &mut Item) -> Result<(), Halt> {
        // Sent before this call (the photo was in doubt, or an earlier attempt of this
        // call lost its answer): the face is ours, from an answer that was lost.
        let ours = item.entry.attempts > 1 || self.last_call_in_doubt;
        let state = if ours {
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

    /// Records `refused` and the rest of the queue `Full` with `reason`.
    fn skip_full(
        &mut self,
        queue: &mut VecDeque<Item>,
        refused: impl IntoIterator<Item = Item>,
        reason: &str,
    ) -> Result<(), Halt> {
        tracing::info!("{reason}");
        let rest: Vec<Item> = queue.drain(..).collect();
        for mut item in refused.into_iter().chain(rest) {
            let reason = format!("{}: {reason}", item.entry.image);
            self.finish(&mut item, PhotoState::Full { reason })?;
        }
        Ok(())
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
            PhotoState::Skipped { .. } | PhotoState::Full { .. } => Counted::Skipped,
            PhotoState::Failed(f) => Counted::Failed(f.code),
            PhotoState::Pending | PhotoState::InDoubt => unreachable!("finish with a final state"),
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
        f: impl FnMut(&crate::service::client::Client) -> Result<T, CallError>,
    ) -> Result<T, Halt> {
        self.call(f).map_err(
            |err| match caller::action(Step::Read, err.class(), err.code()) {
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
            },
        )
    }

    /// Sends a call through the pacer, retrying transient errors with backoff.
    fn call<T>(
        &mut self,
        f: impl FnMut(&crate::service::client::Client) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let mut sent = caller::Sent::default();
        let result = caller::call(self.shared, &mut self.rng, &mut sent, f);
        self.last_call_in_doubt = sent.in_doubt;
        result
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

/// The size of a request carrying `items`, as the chunker counts it.
fn request_size(items: &[Item]) -> u64 {
    RequestBudget::request_size(
        items
            .iter()
            .map(|i| i.ready.as_ref().map_or(0, |r| r.bytes))
            .sum::<u64>(),
    )
}

/// The file name a re-encoded copy of `image` is sent under.
fn file_name(image: &ImageRef) -> String {
    match image {
        ImageRef::File(path) => path.file_name().map(|n| n.to_string_lossy().into_owned()),
        ImageRef::Url(_) => None,
    }
    .unwrap_or_else(|| "photo.jpg".into())
}

/// Reads (and if needed re-encodes) a photo into what the client sends.
fn prepare(entry: &PhotoEntry, options: &normalize::NormalizeOptions) -> Result<Ready, Failure> {
    let input_failure = |message: String| Failure {
        kind: FailureKind::Input,
        code: None,
        message,
    };
    match &entry.image {
        ImageRef::Url(url) => Ok(Ready {
            body: ImageBody::Url(url.clone()),
            bytes: url.len() as u64,
            outcome: normalize::Outcome::AsIs,
        }),
        ImageRef::File(path) => {
            match normalize::prepare(path, options).map_err(|e| input_failure(e.to_string()))? {
                normalize::Prepared::AsIs => {
                    let bytes = std::fs::metadata(path)
                        .map_err(|e| {
                            input_failure(format!("{}: cannot read: {e}", path.display()))
                        })?
                        .len();
                    Ok(Ready {
                        body: ImageBody::File(path.clone()),
                        bytes,
                        outcome: normalize::Outcome::AsIs,
                    })
                }
                normalize::Prepared::Normalized { bytes, normalized } => Ok(Ready {
                    bytes: bytes.len() as u64,
                    body: ImageBody::Bytes {
                        filename: file_name(&entry.image),
                        bytes: Arc::from(bytes),
                    },
                    outcome: normalize::Outcome::Normalized(normalized),
                }),
            }
        }
    }
}
