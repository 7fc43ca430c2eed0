//! `rollback`: undoes what the job did on the service, and nothing else.
//!
//! For each person of the store:
//!
//! - a person the job created is deleted (`delperson`);
//! - a person that existed before the job (the engine recorded how it found it, with
//!   `getinfo`, before its first change: the store's `before` tree) loses the faces
//!   the job added (`delface`) and the groups the job added (`delgroupids`), and gets
//!   its name and tag back (`setinfo`); its other faces and groups are not touched;
//! - any other person is left as it is, with the reason.
//!
//! The undo of each person is planned from the store alone ([`undo`], pure), so a
//! dry run lists the exact calls without making one. Calls are paced like a job's.
//! Each person undone is recorded in the store's `rollback` tree once its calls are
//! answered: a rollback stopped (even by `kill -9`) goes on with the persons left,
//! and a finished one makes no call when run again. Every undo call is safe to repeat:
//! a person or face already gone counts as undone.

use super::paced::{PaceOptions, Paced};
use crate::model::{GroupId, PersonId};
use crate::service::client::{CallError, Client};
use crate::service::codes::{code, Class, Outcome};
use crate::store::{
    BeforeEntry, FaceRef, PersonEntry, PersonState, PhotoState, RollbackEntry, Store,
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

/// One call of an undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    DelPerson,
    DelFace { face_ids: Vec<String> },
    DelGroupIds { groups: Vec<GroupId> },
    SetInfo { name: String, tag: String },
}

/// The undo of one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undo {
    pub person: PersonId,
    pub steps: Vec<Step>,
    /// What the store records once the steps are done.
    pub entry: RollbackEntry,
    /// Faces the job added whose id it never learned (their answer was lost, and a
    /// later send was answered "duplicate face"): they cannot be named to delete.
    pub unnamed_faces: u64,
}

impl std::fmt::Display for Undo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let person = &self.person;
        if self.steps.is_empty() {
            if let RollbackEntry::Left { reason } = &self.entry {
                writeln!(f, "# {person}: left as it is: {reason}")?;
            }
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
        if self.unnamed_faces > 0 {
            writeln!(
                f,
                "# {person}: {} faces the job added have no known id and stay; compare \
                 `faceenroll faces {person}` with the faces it had before",
                self.unnamed_faces
            )?;
        }
        Ok(())
    }
}

/// Plans the undo of one person from the store's record: `before` is how the job
/// found it if it existed, `created` whether the job recorded creating it, `faces`
/// the ids of the faces the job enrolled on it, `unnamed` the number it enrolled
/// without an id.
pub fn undo(
    person: &PersonEntry,
    before: Option<&BeforeEntry>,
    created: bool,
    faces: &[String],
    unnamed: u64,
) -> Undo {
    let mut steps = Vec::new();
    let entry = match (before, &person.state) {
        (None, _) if created => {
            steps.push(Step::DelPerson);
            RollbackEntry::Deleted
        }
        (Some(before), _) => {
            let mut face_ids: Vec<String> = faces
                .iter()
                .filter(|f| !before.face_ids.contains(f))
                .cloned()
                .collect();
            face_ids.dedup();
            if !face_ids.is_empty() {
                steps.push(Step::DelFace { face_ids });
            }
            let groups: Vec<GroupId> = person
                .fields
                .groups
                .iter()
                .filter(|g| !before.groups.iter().any(|b| b == g.as_str()))
                .cloned()
                .collect();
            if !groups.is_empty() {
                steps.push(Step::DelGroupIds { groups });
            }
            let fields = &person.fields;
            let changed = fields.name.as_ref().is_some_and(|n| *n != before.name)
                || fields.tag.as_ref().is_some_and(|t| *t != before.tag);
            if changed {
                steps.push(Step::SetInfo {
                    name: before.name.clone(),
                    tag: before.tag.clone(),
                });
            }
            RollbackEntry::Restored
        }
        // Created by a version that did not record it apart: the state still says.
        (None, PersonState::Ready { created: true }) => {
            steps.push(Step::DelPerson);
            RollbackEntry::Deleted
        }
        (None, PersonState::Ready { created: false }) => RollbackEntry::Left {
            reason: "it existed before the job, and the job has no record of how it found it"
                .into(),
        },
        (None, PersonState::Stale) => RollbackEntry::Left {
            reason: "the job has no record of whether it created the person or found it".into(),
        },
        (None, PersonState::New | PersonState::Failed { .. }) => RollbackEntry::Left {
            reason: "the job did not put it on the service".into(),
        },
    };
    Undo {
        person: person.person.clone(),
        unnamed_faces: if before.is_some() { unnamed } else { 0 },
        steps,
        entry,
    }
}

/// What a rollback did or would do.
#[derive(Debug, Default)]
pub struct RolledBack {
    /// The undos planned (all of them on a dry run; on a run, those not yet done).
    pub planned: Vec<Undo>,
    pub deleted: u64,
    pub restored: u64,
    pub left: u64,
    /// Persons a rollback before this one had undone already.
    pub done_before: u64,
    pub calls: u64,
    /// Persons whose undo was refused by the service, with the error.
    pub refused: Vec<(PersonId, String)>,
    /// The error that stopped the rollback before every person was undone.
    pub stopped: Option<CallError>,
    /// Whether the operator declined.
    pub declined: bool,
}

impl RolledBack {
    /// The calls the undos planned.
    pub fn planned_calls(&self) -> usize {
        self.planned.iter().map(|u| u.steps.len()).sum()
    }
}

/// Plans the undo of every person not undone yet.
fn plan(store: &Store, done: &mut RolledBack) -> anyhow::Result<Vec<Undo>> {
    let mut undos = Vec::new();
    for person in store.persons() {
        let person = person?;
        let id = person.person.as_str();
        if store.rolled_back(id)?.is_some() {
            done.done_before += 1;
            continue;
        }
        let mut faces = Vec::new();
        let mut unnamed = 0;
        for item in store.photos_of(id) {
            let (_, photo) = item?;
            match photo.state {
                PhotoState::Enrolled {
                    face: FaceRef::Id(face_id),
                } => faces.push(face_id),
                PhotoState::Enrolled {
                    face: FaceRef::Confirmed,
                } => unnamed += 1,
                _ => {}
            }
        }
        let (before, created) = (store.before(id)?, store.was_created(id)?);
        undos.push(undo(&person, before.as_ref(), created, &faces, unnamed));
    }
    Ok(undos)
}

/// Runs a rollback: plans it, asks `confirm` (with the plan) unless it is a dry run or
/// there is nothing to call, then undoes person by person.
pub fn rollback(
    job: &RollbackJob,
    client: &Client,
    confirm: impl FnOnce(&RolledBack) -> anyhow::Result<bool>,
) -> anyhow::Result<RolledBack> {
    let store = Store::open(&job.state_dir)?;
    super::bind_account(&store, client, job.rebind_account)?;
    let mut done = RolledBack::default();
    done.planned = plan(&store, &mut done)?;
    if job.dry_run {
        return Ok(done);
    }
    if done.planned_calls() > 0 && !confirm(&done)? {
        done.declined = true;
        return Ok(done);
    }
    let mut paced = Paced::new(client, &job.pace);
    for undo in std::mem::take(&mut done.planned) {
        let mut entry = undo.entry.clone();
        for step in &undo.steps {
            match run_step(&mut paced, &undo.person, step) {
                Ok(()) => {}
                Err(err) if err.class() == Class::Outcome(Outcome::PersonMissing) => {
                    if *step != Step::DelPerson {
                        entry = RollbackEntry::Left {
                            reason: "it is not on the service any more".into(),
                        };
                    }
                    break;
                }
                Err(err)
                    if matches!(
                        err.class(),
                        Class::Fatal | Class::Transient | Class::RateLimited
                    ) =>
                {
                    done.stopped = Some(err);
                    break;
                }
                Err(err) => {
                    done.refused.push((undo.person.clone(), err.to_string()));
                    entry = RollbackEntry::Left {
                        reason: format!("the service refused the undo: {err}"),
                    };
                    break;
                }
            }
        }
        if done.stopped.is_some() {
            done.planned.push(undo);
            break;
        }
        match &entry {
            RollbackEntry::Deleted => done.deleted += 1,
            RollbackEntry::Restored => done.restored += 1,
            RollbackEntry::Left { .. } => done.left += 1,
        }
        store.put_rolled_back(undo.person.as_str(), &entry)?;
        store.flush()?;
        done.planned.push(undo);
    }
    done.calls = paced.calls;
    Ok(done)
}

/// Sends one undo call. A face or group the person no longer has counts as undone.
fn run_step(paced: &mut Paced<'_>, person: &PersonId, step: &Step) -> Result<(), CallError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::PersonFields;

    fn person(state: PersonState) -> PersonEntry {
        PersonEntry {
            person: PersonId::new("p1").unwrap(),
            fields: PersonFields {
                groups: vec![GroupId::new("old").unwrap(), GroupId::new("new").unwrap()],
                name: None,
                tag: Some("job-tag".into()),
            },
            state,
            generation: 1,
        }
    }

    fn before() -> BeforeEntry {
        BeforeEntry {
            name: "Old Name".into(),
            tag: "old-tag".into(),
            groups: vec!["old".into()],
            face_ids: vec!["f1".into(), "f2".into()],
        }
    }

    #[test]
    fn a_person_found_on_the_service_loses_what_the_job_added_only() {
        let faces = ["f2".to_owned(), "f3".to_owned(), "f4".to_owned()];
        let u = undo(
            &person(PersonState::Ready { created: false }),
            Some(&before()),
            false,
            &faces,
            1,
        );
        assert_eq!(
            u.steps,
            [
                Step::DelFace {
                    face_ids: vec!["f3".into(), "f4".into()]
                },
                Step::DelGroupIds {
                    groups: vec![GroupId::new("new").unwrap()]
                },
                Step::SetInfo {
                    name: "Old Name".into(),
                    tag: "old-tag".into()
                },
            ]
        );
        assert_eq!(u.entry, RollbackEntry::Restored);
        assert_eq!(u.unnamed_faces, 1);
    }

    #[test]
    fn a_person_the_job_created_is_deleted_and_others_are_left() {
        // Recorded as created, whatever its state says now.
        let stale = undo(&person(PersonState::Stale), None, true, &[], 0);
        assert_eq!(stale.steps, [Step::DelPerson]);
        assert_eq!(stale.entry, RollbackEntry::Deleted);
        // A store from before the record: the state still tells a created person.
        let created = undo(
            &person(PersonState::Ready { created: true }),
            None,
            false,
            &["f1".into()],
            0,
        );
        assert_eq!(created.steps, [Step::DelPerson]);
        for state in [
            PersonState::Ready { created: false },
            PersonState::Stale,
            PersonState::New,
            PersonState::Failed { reason: "x".into() },
        ] {
            let u = undo(&person(state), None, false, &["f1".into()], 0);
            assert_eq!(u.steps, []);
            assert!(matches!(u.entry, RollbackEntry::Left { .. }));
        }
    }

    #[test]
    fn the_dry_run_lists_each_call() {
        let u = undo(
            &person(PersonState::Ready { created: false }),
            Some(&before()),
            false,
            &["f9".into()],
            0,
        );
        assert_eq!(
            u.to_string(),
            "delface person_id=p1 face_ids=f9\ndelgroupids person_id=p1 group_ids=new\n\
             setinfo person_id=p1 person_name=\"Old Name\" tag=\"old-tag\"\n"
        );
    }
}
