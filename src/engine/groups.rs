//! Before the first `newperson`: will the new persons fit their groups?
//!
//! A group holds at most [`MAX_PERSONS_PER_GROUP`](crate::limits::MAX_PERSONS_PER_GROUP)
//! persons and an AppID at most
//! [`MAX_GROUPS_PER_APPID`](crate::limits::MAX_GROUPS_PER_APPID) groups; past them the service answers -1310 / -1311. The
//! persons and groups already on the service count, whoever made them, so the job
//! reads them once per run (`getgroupids`, and `getpersonids` of each group a new
//! person goes in) and fails the persons that would pass a limit, naming the group
//! and the counts read, before any of them is sent. The others are enrolled. A run
//! with no new person makes no call here.
//!
//! The reads of the groups the job put persons in on earlier runs (a nightly run's
//! `staff`) go out together with `getgroupids`, so a nightly run waits one latency
//! here, not one per group plus one; a group the job has not used yet is read
//! after `getgroupids` says it exists (a new group is not read at all).
//!
//! Persons are taken in person id order, the order the engine creates them in.
//! When the counts cannot be read, the check is left out with a warning: the
//! service's own -1310 / -1311 then fails the person that passes the limit.

use super::caller::{self, Action, Step};
use super::Shared;
use crate::model::GroupId;
use crate::report::Counted;
use crate::service::api::Call;
use crate::service::client::CallError;
use crate::service::codes::code;
use crate::store::{Failure, FailureKind, PersonState, PhotoState, StoreError};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::limits::GroupLimits;

/// At most this many threads read groups ahead of `getgroupids`, each taking its
/// share of the groups in turn.
const MAX_READS_AHEAD: usize = 8;

/// What the check found.
#[derive(Debug)]
pub enum Fit {
    /// The reasons of the persons failed, one each (none: every new person fits).
    Checked(Vec<String>),
    /// The service refused the reads with an error every call would get: the job
    /// stops before any person is sent.
    Fatal(CallError),
}

/// Fails the new persons of the plan that would pass a group limit.
pub(super) fn fit(shared: &Shared<'_>, limits: &GroupLimits) -> Result<Fit, StoreError> {
    let store = shared.store;
    let tally = shared.tally;
    let mut rng = match shared.options.seed {
        Some(seed) => fastrand::Rng::with_seed(seed),
        None => fastrand::Rng::new(),
    };
    let mut sent = caller::Sent::default();

    let generation = store.meta()?.generation;
    let mut new_persons = Vec::new();
    // Groups the job put persons in before: most likely still on the service.
    let mut used = BTreeSet::new();
    for person in store.persons() {
        let person = person?;
        if matches!(person.state, PersonState::Ready { .. } | PersonState::Stale) {
            used.extend(person.fields.groups.iter().cloned());
        }
        if person.state != PersonState::New || person.generation != generation {
            continue;
        }
        // Only a person with photos to send is created.
        let mut has_work = false;
        for photo in store.photos_of(person.person.as_str()) {
            let (_, entry) = photo?;
            has_work |= entry.generation == generation && !entry.state.is_final();
        }
        if has_work {
            new_persons.push(person);
        }
    }
    if new_persons.is_empty() {
        return Ok(Fit::Checked(Vec::new()));
    }
    let unchecked = |err: CallError| {
        if caller::action(Step::Read, err.class(), err.code()) == Action::StopJob {
            return Fit::Fatal(err);
        }
        tracing::warn!(
            "cannot read the groups on the service; their limits are not checked ahead: {err}"
        );
        Fit::Checked(Vec::new())
    };
    let wanted: BTreeSet<&GroupId> = new_persons.iter().flat_map(|p| &p.fields.groups).collect();
    let ahead: Vec<&GroupId> = wanted
        .iter()
        .copied()
        .filter(|g| used.contains(*g))
        .collect();
    let (existing, mut read_ahead) = std::thread::scope(|scope| {
        let readers: Vec<_> = ahead
            .chunks(ahead.len().div_ceil(MAX_READS_AHEAD).max(1))
            .map(|groups| {
                let mut rng = rng.fork();
                scope.spawn(move || {
                    let mut sent = caller::Sent::default();
                    groups
                        .iter()
                        .map(|&group| {
                            let read = caller::call(
                                shared,
                                &mut rng,
                                &mut sent,
                                Call::GetPersonIds,
                                |c| c.get_person_ids(group),
                            );
                            (group, read)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let existing = caller::call(shared, &mut rng, &mut sent, Call::GetGroupIds, |c| {
            c.get_group_ids()
        });
        let read: BTreeMap<&GroupId, _> = readers
            .into_iter()
            .flat_map(|r| r.join().expect("a group read panicked"))
            .collect();
        (existing, read)
    });
    let existing: BTreeSet<String> = match existing {
        Ok(data) => data.group_ids.into_iter().collect(),
        Err(err) => return Ok(unchecked(err)),
    };
    let mut members: BTreeMap<GroupId, BTreeSet<String>> = BTreeMap::new();
    for group in wanted {
        let held = if existing.contains(group.as_str()) {
            let read = match read_ahead.remove(group) {
                Some(read) => read,
                None => caller::call(shared, &mut rng, &mut sent, Call::GetPersonIds, |c| {
                    c.get_person_ids(group)
                }),
            };
            match read {
                Ok(data) => data.person_ids.into_iter().collect(),
                Err(err) => return Ok(unchecked(err)),
            }
        } else {
            // A group read ahead that is gone since: whatever its read answered,
            // it holds no one now.
            BTreeSet::new()
        };
        members.insert(group.clone(), held);
    }
    let mut groups_now = existing.len();
    let mut refused = Vec::new();
    for mut person in new_persons {
        let id = person.person.as_str().to_owned();
        let mut verdict = None;
        let mut opens = 0;
        for group in &person.fields.groups {
            let held = &members[group];
            if held.contains(&id) {
                continue;
            }
            if held.is_empty() && !existing.contains(group.as_str()) {
                opens += 1;
            }
            if held.len() >= limits.persons_per_group {
                verdict = Some((
                    code::TOO_MANY_PERSONS,
                    format!(
                        "person {id:?} does not fit group {:?}: the group holds {} persons \
                         (read from the service and counting the persons this run puts in it \
                         first), the limit is {}",
                        group.as_str(),
                        held.len(),
                        limits.persons_per_group
                    ),
                ));
                break;
            }
        }
        if verdict.is_none() && groups_now + opens > limits.groups {
            verdict = Some((
                code::TOO_MANY_GROUPS,
                format!(
                    "person {id:?} would open {opens} new groups: the AppID holds {groups_now} \
                     groups (read from the service, with those this run opens first), the \
                     limit is {}",
                    limits.groups
                ),
            ));
        }
        let Some((code, reason)) = verdict else {
            for group in &person.fields.groups {
                members
                    .get_mut(group)
                    .expect("read above")
                    .insert(id.clone());
            }
            groups_now += opens;
            continue;
        };
        tracing::warn!("{reason}");
        for photo in store.photos_of(&id) {
            let (key, mut entry) = photo?;
            if entry.generation == generation && !entry.state.is_final() {
                entry.state = PhotoState::Failed(Failure {
                    kind: FailureKind::Permanent,
                    code: Some(code),
                    message: format!("{}: {reason}", entry.image),
                });
                store.put_photo(&key, &entry)?;
                tally.photo(Counted::Failed(Some(code)));
            }
        }
        person.state = PersonState::Failed {
            reason: reason.clone(),
        };
        store.put_person(&person)?;
        tally.person_failed();
        refused.push(reason);
    }
    store.flush()?;
    Ok(Fit::Checked(refused))
}
