//! One person's flow: create it with a seed photo (or reconcile it when it already
//! exists), then add its other photos in chunks, reading each image's answer.
//!
//! Every state change is written to the store, and the store is flushed before each
//! call that changes the service (the photos it carries are then in doubt) and after
//! its answer is recorded. So after a crash at any point the store knows which photos
//! may already be on the service; re-sending them is safe, because the service answers
//! "duplicate face" for a face the person already has, and that answer to a photo in
//! doubt is recorded as the enrollment it confirms.

use super::retry::Backoff;
use super::Shared;
use crate::limits::{MAX_FACES_PER_PERSON, MAX_IMAGES_PER_ADDFACE, REQUEST_ENVELOPE_BYTES};
use crate::model::{GroupId, ImageRef};
use crate::normalize;
use crate::plan::{self, ChunkItem, PersonWork};
use crate::report::Counted;
use crate::service::client::{CallError, ImageBody};
use crate::service::codes::{self, Class, Outcome};
use crate::store::{
    FaceRef, Failure, FailureKind, PersonEntry, PersonState, PhotoEntry, PhotoKey, PhotoState,
    StoreError,
};
use rayon::prelude::*;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

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

/// Why a person's flow stopped before its queue was empty.
enum Halt {
    /// The job is stopping (fatal error or signal), or the store failed.
    Stop,
    /// This person cannot go on in this run; its other photos stay pending.
    Person,
    /// The service says the person does not exist any more.
    PersonGone,
}

impl From<StoreError> for Halt {
    fn from(_: StoreError) -> Halt {
        Halt::Stop
    }
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
}

impl<'s, 'a> Worker<'s, 'a> {
    pub(super) fn new(shared: &'s Shared<'a>, rng: fastrand::Rng) -> Self {
        Worker {
            shared,
            rng,
            image_retries: HashMap::new(),
            last_call_in_doubt: false,
        }
    }

    /// Works one person to the end of its queue, or until stopped.
    pub(super) fn enroll(&mut self, work: PersonWork) {
        let PersonWork {
            mut person,
            photos,
            enrolled,
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
        if person.state == PersonState::Stale {
            // Its groups, name or tag changed in the source since it was created.
            match self.reconcile(&person) {
                Ok(()) => {
                    person.state = PersonState::Ready { created: false };
                    if self.put_person(&person).is_err() {
                        return;
                    }
                    self.shared.tally.persons_reconciled.fetch_add(1, Relaxed);
                }
                Err(_) => {
                    tracing::warn!("cannot bring the person in line now; the next run tries again");
                    return;
                }
            }
        }
        let mut room = MAX_FACES_PER_PERSON.saturating_sub(enrolled);
        let mut recreated = false;
        let mut stopped = false;
        self.image_retries.clear();
        loop {
            let result = self
                .create_if_new(&mut person, &mut queue, &mut room)
                .and_then(|()| self.add_faces(&person, &mut queue, &mut room));
            match result {
                Err(Halt::PersonGone) if !recreated => {
                    tracing::warn!("person vanished from the service; creating it again");
                    recreated = true;
                    person.state = PersonState::New;
                    room = MAX_FACES_PER_PERSON;
                    if self.put_person(&person).is_err() {
                        return;
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
            self.shared.tally.persons_done.fetch_add(1, Relaxed);
        }
    }

    /// Creates a new person with the first photo the service accepts as its seed.
    fn create_if_new(
        &mut self,
        person: &mut PersonEntry,
        queue: &mut VecDeque<Item>,
        room: &mut usize,
    ) -> Result<(), Halt> {
        if person.state != PersonState::New {
            return Ok(());
        }
        let mut last_reason = None;
        while let Some(mut item) = queue.pop_front() {
            if self.shared.stop.requested() {
                queue.push_front(item);
                return Err(Halt::Stop);
            }
            if !self.make_ready(&mut item)? {
                continue;
            }
            let before = (item.entry.state.clone(), item.entry.attempts);
            self.mark_sent(std::slice::from_mut(&mut item))?;
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
                    tracing::info!(photo = %item.entry.image, face_id = %data.face_id, "person created");
                    self.finish(
                        &mut item,
                        PhotoState::Enrolled {
                            face: FaceRef::Id(data.face_id),
                        },
                    )?;
                    *room = room.saturating_sub(1);
                    person.state = PersonState::Ready { created: true };
                    // Kept apart from the person's state, which a later change of
                    // its fields replaces: `rollback` deletes only what the job made.
                    self.shared
                        .store
                        .mark_created(person.person.as_str())
                        .map_err(|e| self.store_failed(e))?;
                    self.put_person(person)?;
                    self.shared.tally.persons_created.fetch_add(1, Relaxed);
                    return Ok(());
                }
                Err(err) => match err.class() {
                    Class::Outcome(Outcome::PersonExists) => {
                        let seed_in_doubt = self.last_call_in_doubt;
                        tracing::info!("person already exists on the service; reconciling");
                        self.reconcile(person)?;
                        person.state = PersonState::Ready { created: false };
                        self.put_person(person)?;
                        self.shared.tally.persons_reconciled.fetch_add(1, Relaxed);
                        // This call added nothing (unless an earlier attempt of it lost
                        // its answer), so the seed is as it was before it. It goes in with the other photos: if an earlier run's lost
                        // answer put it on the service, the service will say so.
                        if !seed_in_doubt {
                            (item.entry.state, item.entry.attempts) = before;
                            self.put_photo(&item)?;
                        }
                        queue.push_front(item);
                        return Ok(());
                    }
                    Class::Fatal => {
                        self.shared.record_fatal(err);
                        return Err(Halt::Stop);
                    }
                    Class::Transient | Class::RateLimited => {
                        if self.shared.stop.requested() {
                            return Err(Halt::Stop);
                        }
                        tracing::warn!(photo = %item.entry.image, "cannot create the person now: {err}");
                        self.fail(&mut item, FailureKind::RetriesExhausted, &err)?;
                        return Err(Halt::Person);
                    }
                    _ => {
                        tracing::warn!(photo = %item.entry.image, "seed photo refused: {err}");
                        last_reason = Some(err.to_string());
                        self.fail(&mut item, FailureKind::Permanent, &err)?;
                    }
                },
            }
        }
        let reason = match last_reason {
            Some(r) => format!("no photo could seed the person (last refusal: {r})"),
            None => "no photo could seed the person".to_owned(),
        };
        tracing::warn!("{reason}");
        person.state = PersonState::Failed { reason };
        self.put_person(person)?;
        self.shared.tally.persons_failed.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Brings an existing person in line with the plan: its groups, name and tag.
    fn reconcile(&mut self, person: &PersonEntry) -> Result<(), Halt> {
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
        Ok(())
    }

    /// Adds the queued photos in chunks until the queue is empty or the person full.
    fn add_faces(
        &mut self,
        person: &PersonEntry,
        queue: &mut VecDeque<Item>,
        room: &mut usize,
    ) -> Result<(), Halt> {
        if !matches!(person.state, PersonState::Ready { .. }) {
            return Ok(());
        }
        let id = &person.person;
        while !queue.is_empty() {
            if self.shared.stop.requested() {
                return Err(Halt::Stop);
            }
            if *room == 0 {
                return self.skip_rest(
                    queue,
                    &format!("the person already holds {MAX_FACES_PER_PERSON} faces"),
                );
            }
            let mut chunk = self.next_chunk(queue, *room)?;
            if chunk.is_empty() {
                continue;
            }
            self.mark_sent(&mut chunk)?;
            let bodies: Vec<ImageBody> = chunk
                .iter()
                .map(|i| i.ready.as_ref().expect("made ready").body.clone())
                .collect();
            let tag = person.fields.tag.as_deref();
            let answer = self.call(|client| client.add_faces(id, &bodies, tag));
            match answer {
                Ok(data) => {
                    let mut face_ids = data.face_ids.into_iter();
                    let mut full = false;
                    for (i, mut item) in chunk.into_iter().enumerate() {
                        let code = data.ret_codes.get(i).copied();
                        match code.map(codes::class) {
                            Some(Class::Ok) => match face_ids.next() {
                                Some(face_id) => {
                                    *room = room.saturating_sub(1);
                                    self.finish(
                                        &mut item,
                                        PhotoState::Enrolled {
                                            face: FaceRef::Id(face_id),
                                        },
                                    )?;
                                }
                                None => self.requeue_or_fail(queue, item, None)?,
                            },
                            Some(Class::Outcome(Outcome::DuplicateFace)) => {
                                self.duplicate_on_service(&mut item)?;
                            }
                            Some(Class::Outcome(Outcome::PersonFull)) => {
                                full = true;
                                self.finish(
                                    &mut item,
                                    PhotoState::Skipped {
                                        reason: person_full(),
                                    },
                                )?;
                            }
                            Some(Class::Transient | Class::RateLimited) | None => {
                                self.requeue_or_fail(queue, item, code)?;
                            }
                            Some(_) => {
                                let code = code.expect("matched Some");
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
                    if full {
                        self.skip_rest(queue, &person_full())?;
                    }
                }
                Err(err) => match err.class() {
                    Class::Outcome(Outcome::PersonMissing) => {
                        for item in chunk.into_iter().rev() {
                            queue.push_front(item);
                        }
                        return Err(Halt::PersonGone);
                    }
                    Class::Outcome(Outcome::PersonFull) => {
                        for item in chunk.into_iter().rev() {
                            queue.push_front(item);
                        }
                        return self.skip_rest(queue, &person_full());
                    }
                    Class::Fatal => {
                        self.shared.record_fatal(err);
                        return Err(Halt::Stop);
                    }
                    Class::Transient | Class::RateLimited => {
                        if self.shared.stop.requested() {
                            return Err(Halt::Stop);
                        }
                        tracing::warn!("addface failed after retries: {err}");
                        for mut item in chunk {
                            self.fail(&mut item, FailureKind::RetriesExhausted, &err)?;
                        }
                    }
                    _ => {
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
        // chunk starts at the front; the photos past it go back to the queue.
        let first = plan::chunks(&items, room, self.shared.options.max_request_bytes)
            .into_iter()
            .next()
            .unwrap_or(0..0);
        debug_assert_eq!(first.start, 0);
        let rest = usable.split_off(first.end);
        for item in rest.into_iter().rev() {
            queue.push_front(item);
        }
        Ok(usable)
    }

    /// Prepares a photo for sending, failing it (and answering `false`) when it cannot
    /// be sent at all.
    fn make_ready(&mut self, item: &mut Item) -> Result<bool, Halt> {
        if item.ready.is_some() {
            return Ok(true);
        }
        match prepare(&item.entry, &self.shared.options.normalize) {
            Ok(ready) => {
                let limit = self
                    .shared
                    .options
                    .max_request_bytes
                    .saturating_sub(REQUEST_ENVELOPE_BYTES);
                if ready.bytes > limit {
                    let failure = Failure {
                        kind: FailureKind::Input,
                        code: None,
                        message: format!(
                            "{}: {} bytes, over the request limit of {} bytes on its own",
                            item.entry.image, ready.bytes, limit
                        ),
                    };
                    self.finish(item, PhotoState::Failed(failure))?;
                    return Ok(false);
                }
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

    /// A photo refused with a transient per-image code goes to the back of the queue,
    /// until its retries run out.
    fn requeue_or_fail(
        &mut self,
        queue: &mut VecDeque<Item>,
        mut item: Item,
        code: Option<i64>,
    ) -> Result<(), Halt> {
        let count = self.image_retries.entry(item.key.clone()).or_default();
        *count += 1;
        if *count < self.shared.options.retry.max_attempts {
            self.shared.tally.retries.fetch_add(1, Relaxed);
            tracing::debug!(photo = %item.entry.image, "image refused for now, will retry: {:?}", code.map(codes::Described));
            queue.push_back(item);
            return Ok(());
        }
        let message = match code {
            Some(code) => format!(
                "{}: refused {} times, last with {}",
                item.entry.image,
                count,
                codes::Described(code)
            ),
            None => format!(
                "{}: the service's answer did not account for this image",
                item.entry.image
            ),
        };
        self.finish(
            &mut item,
            PhotoState::Failed(Failure {
                kind: FailureKind::RetriesExhausted,
                code,
                message,
            }),
        )
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

    fn skip_rest(&mut self, queue: &mut VecDeque<Item>, reason: &str) -> Result<(), Halt> {
        while let Some(mut item) = queue.pop_front() {
            self.finish(
                &mut item,
                PhotoState::Skipped {
                    reason: reason.to_owned(),
                },
            )?;
        }
        Ok(())
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
                    self.shared.tally.bytes_saved.fetch_add(saved, Relaxed);
                }
                Counted::Enrolled
            }
            PhotoState::Duplicate { .. } => Counted::Duplicate,
            PhotoState::Skipped { .. } => Counted::Skipped,
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
        self.call(f).map_err(|err| match err.class() {
            Class::Fatal => {
                self.shared.record_fatal(err);
                Halt::Stop
            }
            Class::Outcome(Outcome::PersonMissing) => Halt::PersonGone,
            _ => {
                tracing::warn!("cannot go on with the person now: {err}");
                Halt::Person
            }
        })
    }

    /// Sends a call through the pacer, retrying transient errors with backoff.
    fn call<T>(
        &mut self,
        mut f: impl FnMut(&crate::service::client::Client) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let shared = self.shared;
        let mut backoff = Backoff::new(&shared.options.retry, self.rng.fork());
        let started = std::time::Instant::now();
        self.last_call_in_doubt = false;
        loop {
            shared.pacer.acquire();
            shared.tally.calls.fetch_add(1, Relaxed);
            let result = f(shared.client);
            let class = match &result {
                Ok(_) => {
                    shared.pacer.on_success();
                    return result;
                }
                Err(err) => {
                    self.last_call_in_doubt |= err.outcome_unknown();
                    err.class()
                }
            };
            match class {
                Class::RateLimited => {
                    // The pacer, not the backoff, spaces the next attempt: a
                    // rate-limit answer is the service asking for a lower rate, not a
                    // failure of the call. The total wait still bounds it.
                    shared.tally.rate_limited.fetch_add(1, Relaxed);
                    shared.pacer.on_rate_limited();
                    if started.elapsed() < shared.options.retry.max_total_wait
                        && !shared.stop.requested()
                    {
                        shared.tally.retries.fetch_add(1, Relaxed);
                        continue;
                    }
                    return result;
                }
                Class::Transient => shared.pacer.on_success(),
                _ => {
                    shared.pacer.on_success();
                    return result;
                }
            }
            if shared.stop.requested() {
                return result;
            }
            match backoff.next_delay() {
                Some(delay) => {
                    if let Err(err) = &result {
                        tracing::debug!("retrying in {delay:?}: {err}");
                    }
                    shared.tally.retries.fetch_add(1, Relaxed);
                    std::thread::sleep(delay);
                }
                None => return result,
            }
        }
    }
}

/// Why the photos left for a full person are skipped.
fn person_full() -> String {
    format!("the person is full: the service holds {MAX_FACES_PER_PERSON} faces for it")
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
                normalize::Prepared::Normalized { bytes, normalized } => {
                    let filename = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "photo.jpg".into());
                    Ok(Ready {
                        bytes: bytes.len() as u64,
                        body: ImageBody::Bytes {
                            filename,
                            bytes: Arc::from(bytes),
                        },
                        outcome: normalize::Outcome::Normalized(normalized),
                    })
                }
            }
        }
    }
}
