//! `rollback`: undoes what the job did on the service, and nothing else.
//!
//! For each person of the store, the person is read (`getinfo`) just before its
//! undo, and [`crate::deletion`] decides from that reading and the job's records:
//!
//! - a person the job created is deleted (`delperson`) only if it holds nothing but
//!   what the job made; one changed since by someone else, or deleted and made
//!   again, keeps what is not the job's, and the reason is said;
//! - a person whose creation is in doubt (the job's `newperson` was never
//!   answered: a lost answer, a kill, a full disk, a second Ctrl-C) is deleted if it
//!   holds what that call made, else left;
//! - a person that existed before the job (the engine recorded how it found it,
//!   with `getinfo`, before its first change: the store's `before` tree) loses the
//!   faces the job added (`delface`) and the groups the job added (`delgroupids`),
//!   and gets its name and tag back (`setinfo`) where they still hold what the job
//!   set; its other faces and groups are not touched;
//! - any other person is left as it is, with the reason.
//!
//! A dry run reads nothing: it lists the calls as if every person were as the job
//! left it. Calls are paced like a job's. Each person undone is recorded in the
//! store's `rollback` tree once its calls are answered: a rollback stopped (even by
//! `kill -9`) goes on with the persons left, and a finished one makes no call when
//! run again. Once every person is undone or left, the state is closed
//! ([`Store::put_rolled_back_at`]): `enroll` and `verify` refuse it. Every undo call
//! is safe to repeat: a person or face already gone counts as undone.

use super::paced::{PaceOptions, Paced};
use crate::deletion::{undo, Decision, Found, JobRecord, Origin, Step};
use crate::engine::StopSignal;
use crate::model::{GroupId, PersonId};
use crate::service::client::{CallError, Client};
use crate::service::codes::{code, Class, Outcome};
use crate::store::{
    FaceRef, PersonEntry, PersonState, PhotoState, RollbackEntry, RollbackStatus, Store,
};
use std::path::PathBuf;

/// One rollback, fully resolved.
pub struct RollbackJob {
    pub state_dir: PathBuf,
    /// List the calls; make none.
    pub dry_run: bool,
    pub pace: PaceOptions,
    /// Bind the state to the account called even if it recorded another.
    pub rebind_account: bool,
}

/// The undo of one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo {
    pub person: PersonId,
    /// Whether the person is read (`getinfo`) before its undo.
    pub read: bool,
    pub steps: Vec<Step>,
    /// What the store records once the steps are done.
    pub entry: RollbackEntry,
}

impl Undo {
    fn new(person: PersonId, record: &JobRecord, decision: Decision) -> Undo {
        Undo {
            person,
            read: !matches!(record.origin, Origin::NotPut { .. } | Origin::NeverSent),
            steps: decision.steps,
            entry: decision.outcome,
        }
    }

    /// Why the person (or part of it) stays, if it does.
    pub fn left(&self) -> Option<String> {
        left(&self.entry)
    }
}

/// Why a person (or part of it) stays, if it does, as the rollback recorded it.
fn left(entry: &RollbackEntry) -> Option<String> {
    match entry {
        RollbackEntry::Left { reason } => Some(format!("left as it is: {reason}")),
        RollbackEntry::Partly { reasons } => Some(format!("left in part: {}", reasons.join("; "))),
        _ => None,
    }
}

/// The persons a rollback left, as its store records them, but those of `except`.
fn recorded_left(
    store: &Store,
    except: &std::collections::HashSet<&str>,
) -> anyhow::Result<Vec<(PersonId, String)>> {
    let mut out = Vec::new();
    for item in store.rolled_back_all() {
        let (person, entry) = item?;
        if let (false, Some(why)) = (except.contains(person.as_str()), left(&entry)) {
            out.push((PersonId::new(&person)?, why));
        }
    }
    Ok(out)
}

impl std::fmt::Display for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let person = &self.person;
        if self.read {
            writeln!(f, "getinfo person_id={person}")?;
        }
        for step in &self.steps {
            match step {
                Step::DelPerson => writeln!(f, "delperson person_id={person}")?,
                Step::DelFace { face_ids } => writeln!(
                    f,
                    "delface person_id={person} face_ids={}",
                    face_ids.join(",")
                )?,
                Step::DelGroupIds { groups } => {
                    let groups: Vec<&str> = groups.iter().map(GroupId::as_str).collect();
                    writeln!(
                        f,
                        "delgroupids person_id={person} group_ids={}",
                        groups.join(",")
                    )?
                }
                Step::SetInfo { name, tag } => writeln!(
                    f,
                    "setinfo person_id={person} person_name={name:?} tag={tag:?}"
                )?,
            }
        }
        if let Some(left) = self.left() {
            writeln!(f, "# {person}: {left}")?;
        }
        Ok(())
    }
}

/// What a rollback did or would do.
#[derive(Debug, Default)]
pub struct RolledBack {
    /// On a dry run, the undos planned as if every person were as the job left it;
    /// on a run, the undos done.
    pub planned: Vec<Undo>,
    pub deleted: u64,
    pub restored: u64,
    /// Persons with nothing of the job's on the service: not on it any more, never
    /// sent, or not made by the job's call in doubt.
    pub gone: u64,
    /// Persons left whole or in part, with the reason.
    pub left: Vec<(PersonId, String)>,
    /// Persons a rollback before this one had undone already.
    pub done_before: u64,
    pub calls: u64,
    /// The error that stopped the rollback before every person was undone.
    pub stopped: Option<CallError>,
    /// Stopped by the operator (Ctrl-C) before every person was undone.
    pub interrupted: bool,
    /// Whether the operator declined.
    pub declined: bool,
    /// The job was rolled back whole before this run (Unix seconds): nothing to do.
    pub closed_before: Option<u64>,
}

impl RolledBack {
    /// The calls the undos planned.
    pub fn planned_calls(&self) -> usize {
        self.planned
            .iter()
            .map(|u| u.steps.len() + usize::from(u.read))
            .sum()
    }

    /// Whether every person of the job was undone or left in this run or before.
    pub fn finished(&self) -> bool {
        self.stopped.is_none() && !self.interrupted && !self.declined
    }
}

/// What the store records of one person, for [`crate::deletion`].
pub(super) fn job_record(store: &Store, person: &PersonEntry) -> anyhow::Result<JobRecord> {
    let id = person.person.as_str();
    // The faces of photos' earlier contents (changed in place) are the job's too.
    let mut face_ids: Vec<String> = store
        .replaced_faces(id)?
        .into_iter()
        .map(|(_, face_id)| face_id)
        .collect();
    let mut confirmed = 0;
    let mut in_doubt = 0;
    for item in store.photos_of(id) {
        let (_, photo) = item?;
        match photo.state {
            PhotoState::InDoubt => in_doubt += 1,
            PhotoState::Enrolled {
                face: FaceRef::Id(face_id),
            } => face_ids.push(face_id),
            PhotoState::Enrolled {
                face: FaceRef::Confirmed,
            } => confirmed += 1,
            _ => {}
        }
    }
    let origin = if store.was_created(id)? {
        Origin::Created
    } else if let Some(before) = store.before(id)? {
        Origin::Found(before)
    } else if store.creation_in_doubt(id)? {
        Origin::CreationInDoubt
    } else {
        match &person.state {
            // Created by a version that did not record it apart: the state still says.
            PersonState::Ready { created: true } => Origin::Created,
            PersonState::Ready { created: false } => Origin::NotPut {
                reason: "it existed before the job, and the job has no record of how it found it"
                    .into(),
            },
            PersonState::Stale => Origin::NotPut {
                reason: "the job has no record of whether it created the person or found it".into(),
            },
            PersonState::New | PersonState::Failed { .. } => Origin::NeverSent,
        }
    };
    // The groups the source gives it now, and those the job put it in that the
    // source dropped since.
    let mut groups = person.fields.groups.clone();
    for group in store.joined_groups(id)? {
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    Ok(JobRecord {
        origin,
        face_ids,
        confirmed,
        in_doubt,
        groups,
        name: person.fields.name.clone(),
        tag: person.fields.tag.clone(),
    })
}

/// Runs a rollback: plans it, asks `confirm` (with the plan) unless it is a dry run or
/// there is nothing to call, then undoes person by person, each read just before,
/// until done or `stop` is asked.
pub fn rollback(
    job: &RollbackJob,
    client: &Client,
    stop: &StopSignal,
    confirm: impl FnOnce(&RolledBack) -> anyhow::Result<bool>,
) -> anyhow::Result<RolledBack> {
    let store = Store::open(&job.state_dir)?;
    super::bind_account(&store, client, job.rebind_account)?;
    let mut done = RolledBack::default();
    if let RollbackStatus::Finished { at } = store.rollback_status()? {
        done.closed_before = Some(at);
        done.left = recorded_left(&store, &Default::default())?;
        return Ok(done);
    }
    let mut records = Vec::new();
    // Whether the job put anything on the service: a job that never did (every call
    // refused, or only planned) is not closed by a rollback that had nothing to do.
    let mut sent = false;
    for person in store.persons() {
        let person = person?;
        if store.rolled_back(person.person.as_str())?.is_some() {
            done.done_before += 1;
            sent = true;
            continue;
        }
        let record = job_record(&store, &person)?;
        sent |= record.origin != Origin::NeverSent;
        let planned = undo(&record, Some(&Found::as_left(&record)));
        done.planned
            .push(Undo::new(person.person.clone(), &record, planned));
        records.push((person.person, record));
    }
    if job.dry_run {
        return Ok(done);
    }
    if done.planned_calls() > 0 && !confirm(&done)? {
        done.declined = true;
        return Ok(done);
    }
    done.planned.clear();
    let mut paced = Paced::new(client, &job.pace);
    for (person, record) in records {
        if stop.requested() {
            done.interrupted = true;
            break;
        }
        let found = if matches!(record.origin, Origin::NotPut { .. } | Origin::NeverSent) {
            Ok(None)
        } else {
            match paced.call(|c| c.get_info(&person)) {
                Ok(info) => Ok(Some(Found::from(info))),
                Err(err) if err.class() == Class::Outcome(Outcome::PersonMissing) => Ok(None),
                Err(err) => Err(err),
            }
        };
        let decision = match found {
            Ok(found) => undo(&record, found.as_ref()),
            Err(err) if stops(&err) => {
                done.stopped = Some(err);
                break;
            }
            Err(err) => Decision {
                steps: Vec::new(),
                outcome: RollbackEntry::Left {
                    reason: format!("the service refused to show it: {err}"),
                },
            },
        };
        let mut undo = Undo::new(person, &record, decision);
        for step in &undo.steps {
            match run_step(&mut paced, &undo.person, step) {
                Ok(()) => {}
                Err(err) if err.class() == Class::Outcome(Outcome::PersonMissing) => {
                    // Deleted between the reading and the call: by this delperson
                    // whose answer was lost and sent again, or by someone else.
                    if *step != Step::DelPerson {
                        undo.entry = RollbackEntry::Gone;
                    }
                    break;
                }
                Err(err) if stops(&err) => {
                    done.stopped = Some(err);
                    break;
                }
                Err(err) => {
                    undo.entry = RollbackEntry::Left {
                        reason: format!("the service refused the undo: {err}"),
                    };
                    break;
                }
            }
        }
        if done.stopped.is_some() {
            break;
        }
        match &undo.entry {
            RollbackEntry::Deleted => done.deleted += 1,
            RollbackEntry::Restored => done.restored += 1,
            RollbackEntry::Gone => done.gone += 1,
            RollbackEntry::Left { .. } | RollbackEntry::Partly { .. } => {}
        }
        if let Some(left) = undo.left() {
            done.left.push((undo.person.clone(), left));
        }
        // A person the job never sent has nothing to undo, and is not recorded: a
        // job that sent nothing is not a job rolled back.
        if record.origin != Origin::NeverSent {
            store.put_rolled_back(undo.person.as_str(), &undo.entry)?;
            store.flush()?;
        }
        done.planned.push(undo);
    }
    done.calls = paced.calls;
    if done.finished() && sent {
        // Persons left by an earlier run of this rollback are the job's answer too.
        let this_run: std::collections::HashSet<&str> =
            done.planned.iter().map(|u| u.person.as_str()).collect();
        let earlier_left = recorded_left(&store, &this_run)?;
        done.left.extend(earlier_left);
        store.put_rolled_back_at(unix_now())?;
        store.flush()?;
    }
    Ok(done)
}

/// Refuses a state a rollback undid (or started to undo): what it records as
/// enrolled is no longer on the service, so `enroll` would report done and
/// `verify` would find everything missing.
pub fn refuse_if_rolled_back(store: &Store) -> anyhow::Result<()> {
    let dir = store.dir().display();
    match store.rollback_status()? {
        RollbackStatus::None => Ok(()),
        RollbackStatus::Finished { at } => anyhow::bail!(
            "this job was rolled back at {} (state directory {dir}): the service no \
             longer holds what it enrolled; enroll again with a new state directory \
             (--state NEW_DIR)",
            crate::report::utc_time(at)
        ),
        RollbackStatus::Started => anyhow::bail!(
            "a rollback of this job (state directory {dir}) started and did not finish: \
             run `faceenroll rollback` again to finish it, then enroll with a new state \
             directory (--state NEW_DIR)"
        ),
    }
}

/// Errors every later call would meet too, or that say the service is not
/// answering now: a rollback, a mirror or a verify stops, and goes on from there
/// next time.
pub(super) fn stops(err: &CallError) -> bool {
    matches!(
        err.class(),
        Class::Fatal | Class::Transient | Class::RateLimited
    )
}

/// Sends one undo call. A face or group the person no longer has counts as undone.
pub(super) fn run_step(
    paced: &mut Paced<'_>,
    person: &PersonId,
    step: &Step,
) -> Result<(), CallError> {
    let gone = |err: &CallError| {
        matches!(
            err.code(),
            Some(code::FACE_MISSING | code::GROUP_MISSING | code::GROUP_LIST_MISSING)
        )
    };
    let result = match step {
        Step::DelPerson => paced.call(|c| c.del_person(person)).map(drop),
        Step::DelFace { face_ids } => paced.call(|c| c.del_faces(person, face_ids)).map(drop),
        Step::DelGroupIds { groups } => paced.call(|c| c.del_group_ids(person, groups)).map(drop),
        Step::SetInfo { name, tag } => paced
            .call(|c| c.set_info(person, Some(name), Some(tag)))
            .map(drop),
    };
    match result {
        Err(err) if gone(&err) => Ok(()),
        other => other,
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
