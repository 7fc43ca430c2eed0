//! The `newperson` step: creating the person with the first photo the service
//! accepts as its seed, or reconciling a person the service already has.

use super::prepare::request_size;
use super::room::Room;
use super::{Halt, Item, Worker};
use crate::engine::caller::{self, Action, Step};
use crate::model::GroupId;
use crate::service::api::Call;
use crate::service::client::CallError;
use crate::store::{FaceRef, FailureKind, PersonEntry, PersonState, PhotoState};
use std::collections::VecDeque;

impl Worker<'_, '_> {
    /// Creates a new person with the first photo the service accepts as its seed.
    ///
    /// A seed refused for its image hands over to the next photo: for good (no face,
    /// undecodable: failed), or for now (the service could not download it: left for
    /// `addface` once the person exists, or for the next run).
    pub(super) fn create_if_new(
        &mut self,
        person: &mut PersonEntry,
        queue: &mut VecDeque<Item>,
        room: &mut Option<Room>,
    ) -> Result<(), Halt> {
        if person.state != PersonState::New {
            return Ok(());
        }
        let mut last_reason = None;
        // A `newperson` of an earlier run whose outcome was never recorded, or an
        // attempt of this run whose answer was lost: the person may be the job's.
        let mut creation_in_doubt = self
            .shared
            .store
            .creation_in_doubt(person.person.as_str())
            .map_err(|e| self.store_failed(e))?;
        let mut deferred: Vec<Item> = Vec::new();
        let put_back = |queue: &mut VecDeque<Item>, deferred: Vec<Item>| {
            for item in deferred.into_iter().rev() {
                queue.push_front(item);
            }
        };
        loop {
            self.promote_spares(queue)?;
            let Some(mut item) = queue.pop_front() else {
                break;
            };
            if self.shared.stop.requested() {
                queue.push_front(item);
                put_back(queue, deferred);
                return Err(Halt::Stop);
            }
            if !self.make_ready(&mut item)? {
                continue;
            }
            let before = (item.entry.state.clone(), item.entry.attempts);
            // Durable before the call (with the photo in doubt): whatever stops the
            // job before its answer is recorded, the person may be the job's.
            self.shared
                .store
                .mark_creation_in_doubt(person.person.as_str())
                .map_err(|e| self.store_failed(e))?;
            self.mark_sent(std::slice::from_mut(&mut item))?;
            let size = request_size(std::slice::from_ref(&item));
            let ready = item.ready.as_ref().expect("made ready");
            let fields = &person.fields;
            let answer = self.call(Call::NewPerson, |client| {
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
                            face: FaceRef::given(data.face_id),
                        },
                    )?;
                    *room = Some(Room::created());
                    person.state = PersonState::Ready { created: true };
                    // Kept apart from the person's state, which a later change of
                    // its fields replaces: `rollback` deletes only what the job made.
                    self.shared
                        .store
                        .mark_created(person.person.as_str())
                        .and_then(|()| {
                            self.shared
                                .store
                                .set_joined_groups(person.person.as_str(), &fields.groups)
                        })
                        .map_err(|e| self.store_failed(e))?;
                    self.put_person(person)?;
                    self.shared.tally.person_created();
                    put_back(queue, deferred);
                    return Ok(());
                }
                Err(err) => match self.seed_refused(person, &err, &mut creation_in_doubt)? {
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
                        // `reconcile` tells from the service whether a lost attempt
                        // made the person.
                        let (found, created) = self.reconcile(person, creation_in_doubt)?;
                        *room = Some(found);
                        person.state = PersonState::Ready { created };
                        self.put_person(person)?;
                        if created {
                            // Made by this call's lost attempt (or an earlier run's).
                            self.shared.tally.person_created();
                        } else {
                            self.shared.tally.person_reconciled();
                        }
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
                        let why = format!("newperson refused it for now: {err}");
                        self.leave_refused(&mut item, err.code(), &why)?;
                        deferred.push(item);
                    }
                    Action::HaltPerson => {
                        if !self.shared.stop.requested() {
                            tracing::warn!(photo = %item.entry.image, "cannot create the person now; its photos are left for the next run: {err}");
                        }
                        let why = format!("newperson failed: {err}");
                        self.leave_refused(&mut item, err.code(), &why)?;
                        queue.push_front(item);
                        put_back(queue, deferred);
                        return Err(if self.shared.stop.requested() {
                            Halt::Stop
                        } else {
                            Halt::Person
                        });
                    }
                    Action::FailPhoto => {
                        if self.whole_instead_of_crop(&mut item, err.code()) {
                            queue.push_front(item);
                            continue;
                        }
                        tracing::warn!(photo = %item.entry.image, "seed photo refused: {err}");
                        last_reason = Some(err.to_string());
                        self.fail(&mut item, FailureKind::Permanent, &err)?;
                    }
                    Action::FailUnreadable => {
                        // The seed cannot be read now (nothing was sent): the next
                        // photo seeds the person.
                        last_reason = Some(err.to_string());
                        self.fail_unreadable(&mut item, &err)?;
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

    /// The action for a refused seed. An answer that does not say the person exists,
    /// to a call none of whose attempts (nor any before it) was lost, means the call
    /// made nothing: the creation is no longer in doubt.
    fn seed_refused(
        &mut self,
        person: &PersonEntry,
        err: &CallError,
        creation_in_doubt: &mut bool,
    ) -> Result<Action, Halt> {
        let action = caller::action(Step::Seed, err.class(), err.code());
        *creation_in_doubt |= self.last_call_in_doubt;
        if !*creation_in_doubt && action != Action::Reconcile {
            self.shared
                .store
                .clear_creation_in_doubt(person.person.as_str())
                .map_err(|e| self.store_failed(e))?;
        }
        Ok(action)
    }

    /// Whether the job recorded creating `person` and it holds a face (of `held`)
    /// the job recorded adding.
    fn still_the_jobs(
        &self,
        person: &PersonEntry,
        held: &[String],
    ) -> Result<bool, crate::store::StoreError> {
        let store = self.shared.store;
        let id = person.person.as_str();
        if !store.was_created(id)? {
            return Ok(false);
        }
        for found in store.photos_of(id) {
            let (_, entry) = found?;
            if let PhotoState::Enrolled {
                face: FaceRef::Id(face),
            } = entry.state
            {
                if held.contains(&face) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Brings an existing person in line with the plan: its groups, name and tag.
    /// Answers the person's face count as `getinfo` read it, and whether the job
    /// made the person: a person answered "exists" while the job's own `newperson`
    /// of it was in doubt (`creation_in_doubt`) is the job's when it holds exactly
    /// what that call made ([`crate::deletion::creation`]).
    pub(super) fn reconcile(
        &mut self,
        person: &PersonEntry,
        creation_in_doubt: bool,
    ) -> Result<(Room, bool), Halt> {
        let id = &person.person;
        let info = self.call_or_halt(Call::GetInfo, |c| c.get_info(id))?;
        let mut created = matches!(person.state, PersonState::Ready { created: true });
        if person.state == PersonState::New {
            let found = crate::deletion::Found::from(info.clone());
            let fields = &person.fields;
            let store = self.shared.store;
            // Recorded created, and still holding a face the job recorded adding:
            // the job stopped between recording the creation and the person's
            // state. Holding none, it was deleted and made again by someone else.
            let still_ours = self
                .still_the_jobs(person, &found.face_ids)
                .map_err(|e| self.store_failed(e))?;
            created = still_ours
                || (creation_in_doubt
                    && crate::deletion::creation(
                        &found,
                        &fields.groups,
                        fields.name.as_deref(),
                        fields.tag.as_deref(),
                    ));
            let recorded = if created {
                tracing::info!("the person is the one the job's unanswered call created");
                store
                    .mark_created(id.as_str())
                    .and_then(|()| store.set_joined_groups(id.as_str(), &fields.groups))
            } else {
                // Found on the service, not created by the job: how it was found is
                // what `rollback` restores, so it is made durable before the first
                // change.
                let found = crate::store::BeforeEntry {
                    name: found.name,
                    tag: found.tag,
                    groups: found.groups,
                    face_ids: found.face_ids,
                };
                store.put_before_once(id.as_str(), &found)
            };
            recorded.map_err(|e| self.store_failed(e))?;
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
            self.call_or_halt(Call::AddGroupIds, |c| c.add_group_ids(id, &missing))?;
            // What the job added is what a mirror may take back, once the source
            // drops it.
            self.shared
                .store
                .add_joined_groups(id.as_str(), &missing)
                .map_err(|e| self.store_failed(e))?;
        }
        let name = person.fields.name.as_deref();
        let tag = person.fields.tag.as_deref();
        let differs =
            name.is_some_and(|n| n != info.person_name) || tag.is_some_and(|t| t != info.tag);
        if differs {
            self.call_or_halt(Call::SetInfo, |c| c.set_info(id, name, tag))?;
        }
        Ok((Room::read(info.face_ids.len(), "getinfo"), created))
    }
}
