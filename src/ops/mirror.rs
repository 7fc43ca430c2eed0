//! `enroll --mirror`: after the adds of a run, takes off the service what left the
//! source within the job's reach, with the guards of [`crate::deletion::mirror`].
//!
//! A person of the job the source no longer lists is read (`getinfo`) just before,
//! and [`crate::deletion::undo`] decides, as for `rollback`, what may go: a person
//! the job created only with that evidence (else only the job's faces, or nothing,
//! with the reason); a person that existed before only loses the job's faces and
//! groups (its name and tag are left). A photo no longer listed whose face the job
//! enrolled has that face deleted (`delface`).
//!
//! A photo changed in place has the face of its earlier content deleted
//! (`delface`). A group the job put a person in and the source dropped from its
//! row is taken back (`delgroupids`) after the person is read (`getinfo`): only
//! the groups it is still in, and never its last one (whether the service would
//! refuse that or leave the person in no group, the contract does not say): that
//! group stays, and the run says so (exit 1).
//!
//! A person still listed that had faces deleted has room again: its photos over
//! the limit (spares, or refused as full) take that room in source order
//! ([`make_room`]), and the engine sends them in a second pass of the same run.
//!
//! Every deletion is recorded in the store before its call and after its answer; a
//! run stopped between the two settles it from the service: a person is read
//! (`getinfo`) before its deletion anyway, and a face recorded as being deleted is
//! looked for on its person (`getinfo`) before any `delface` is sent again, so a
//! face already gone is recorded deleted without a call the service may refuse
//! (-1305). A person, face or group already gone counts as deleted. A photo whose face was
//! deleted keeps its report row, status `removed`, with the face id and the time.
//! Each run's account (what it deleted, left, or why a guard held it) is recorded
//! for `status`.

use super::paced::{PaceOptions, Paced};
use super::rollback::{job_record, run_step, stops};
use crate::deletion::mirror::{self, Hold, MaxDelete, Removal, SourceHealth, Tally};
use crate::deletion::{undo, Decision, Found, JobRecord, Origin, Step};
use crate::engine::StopSignal;
use crate::model::GroupId;
use crate::model::PersonId;
use crate::service::client::{CallError, Client};
use crate::service::codes::{Class, Outcome};
use crate::store::{FaceRef, MirrorMark, MirrorRun, PersonState, PhotoState, RollbackEntry, Store};
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;

/// The deletions a mirror run plans, counted, and whether the guards let them.
#[derive(Debug, Clone)]
pub struct MirrorPlan {
    pub removals: Vec<Removal>,
    /// What the job holds on the service, of which `--max-delete N%` is a share
    /// (kind by kind).
    pub managed: Tally,
    pub held: Option<Hold>,
    /// Faces of photos' earlier contents kept because the new content is not on
    /// the service: (person, why).
    pub kept: Vec<(PersonId, String)>,
    /// Persons that left the source and that an earlier run left on the service
    /// by the evidence, with the reason: not planned again, said again.
    pub still_left: Vec<(PersonId, String)>,
}

impl MirrorPlan {
    /// What the deletions planned take off the service, by kind.
    pub fn tally(&self) -> Tally {
        let mut tally = Tally::default();
        self.removals.iter().for_each(|r| tally += r.tally());
        tally
    }

    /// Deletions planned, each removal one.
    pub fn count(&self) -> u64 {
        self.removals.len() as u64
    }

    /// Every deletion planned, one a line, as the person is now by the job's records
    /// (a run reads each person just before, and may delete less).
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Mirror: {} {} to delete: {} (the job holds {})",
            self.count(),
            if self.count() == 1 {
                "deletion"
            } else {
                "deletions"
            },
            self.tally(),
            self.managed
        );
        for removal in &self.removals {
            match removal {
                Removal::Person { person, record } => {
                    let decision = undo(record, Some(&Found::as_left(record)));
                    for step in deletion_steps(decision.steps) {
                        match step {
                            Step::DelPerson => {
                                let _ = writeln!(
                                    out,
                                    "  delete person {person} (left the source) faces {}",
                                    record.face_ids.join(",")
                                );
                            }
                            Step::DelFace { face_ids } => {
                                let _ = writeln!(
                                    out,
                                    "  delete faces of person {person} (left the source; it \
                                     existed before the job) faces {}",
                                    face_ids.join(",")
                                );
                            }
                            Step::DelGroupIds { groups } => {
                                let groups: Vec<&str> = groups.iter().map(|g| g.as_str()).collect();
                                let _ = writeln!(
                                    out,
                                    "  take person {person} out of the job's groups {}",
                                    groups.join(",")
                                );
                            }
                            Step::SetInfo { .. } => {}
                        }
                    }
                }
                Removal::Photo {
                    person,
                    photo,
                    face_id,
                    ..
                } => {
                    let _ = writeln!(
                        out,
                        "  delete face {face_id} of person {person} (photo {photo} left the source)"
                    );
                }
                Removal::Replaced {
                    person,
                    photo,
                    face_id,
                    ..
                } => {
                    let _ = writeln!(
                        out,
                        "  delete face {face_id} of person {person} (photo {photo} changed in \
                         the source: its earlier content)"
                    );
                }
                Removal::Groups { person, groups } => {
                    for group in groups {
                        let _ = writeln!(
                            out,
                            "  take person {person} out of group {group} (dropped from its row; kept \
                             if it is its last)"
                        );
                    }
                }
                Removal::Unlearned { person, photos, .. } => {
                    for (_, photo) in photos {
                        let _ = writeln!(
                            out,
                            "  delete the face of person {person} whose id the service never \
                             gave (photo {photo} left the source), if its faces tell it apart"
                        );
                    }
                }
            }
        }
        for (person, why) in &self.kept {
            let _ = writeln!(out, "  keep person {person}'s face: {why}");
        }
        for (person, why) in &self.still_left {
            let _ = writeln!(
                out,
                "  person {person} left the source and stays, as an earlier run left it: {why}"
            );
        }
        if let Some(held) = &self.held {
            let _ = writeln!(out, "  held back, nothing would be deleted: {held}");
        }
        out
    }
}

/// The steps of an undo that a mirror makes: deletions only (a name or tag the job
/// set on a person that existed before stays).
fn deletion_steps(steps: Vec<Step>) -> impl Iterator<Item = Step> {
    steps
        .into_iter()
        .filter(|s| !matches!(s, Step::SetInfo { .. }))
}

/// When a mirror is planned: after the run's adds (its deletion phase), or ahead
/// of them (`plan`, `--dry-run`), where what the run is to add counts as the job's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Planned {
    AfterAdds,
    AheadOfAdds,
}

/// Plans the mirror of the store as its latest plan left it.
pub fn plan(
    store: &Store,
    health: SourceHealth,
    max: MaxDelete,
    when: Planned,
) -> anyhow::Result<MirrorPlan> {
    let mut held = Vec::new();
    let mut managed = Tally::default();
    let mut kept = Vec::new();
    let mut still_left = Vec::new();
    let ahead = when == Planned::AheadOfAdds;
    for person in store.persons() {
        let person = person?;
        if matches!(person.state, PersonState::Ready { .. } | PersonState::Stale) {
            managed.persons += 1;
        }
        let id = person.person.as_str();
        let mut listed = false;
        let mut enrolled = false;
        let mut gone_photos = Vec::new();
        let mut unlearned = Vec::new();
        // What the listed photos still hold: a photo that moved, was renamed or was
        // copied into another source is listed under its new path with the same
        // content (and the same face); its old entry has not left the source.
        let mut listed_faces = HashSet::new();
        let mut listed_content = HashSet::new();
        // Ahead of the adds, what the run is to send counts as the job's.
        let mut adds = 0u64;
        for item in store.photos_of(id) {
            let (key, entry) = item?;
            adds += u64::from(ahead && !entry.retired && entry.state.is_to_send());
            listed |= !entry.retired;
            if !entry.retired {
                listed_content.extend(entry.hash);
            }
            if let PhotoState::Enrolled { face } = &entry.state {
                enrolled = true;
                managed.faces += 1;
                if *face == FaceRef::Confirmed && entry.retired {
                    // Left by an earlier run that could not tell its face apart, and
                    // not listed since: said again, not planned again.
                    match store.mirrored_photo(&key)? {
                        Some(MirrorMark::Left {
                            generation, reason, ..
                        }) if generation == entry.generation => {
                            still_left.push((person.person.clone(), reason));
                        }
                        _ => unlearned.push((key.clone(), entry.image.to_string(), entry.hash)),
                    }
                }
                if let FaceRef::Id(face_id) = face {
                    if entry.retired {
                        gone_photos.push((
                            key,
                            entry.image.to_string(),
                            face_id.clone(),
                            entry.hash,
                        ));
                    } else {
                        listed_faces.insert(face_id.clone());
                    }
                }
            }
        }
        managed.faces += adds;
        if person.state == PersonState::New && adds > 0 {
            managed.persons += 1;
            managed.groups += person.fields.groups.len() as u64;
        }
        let gone_photos = gone_photos
            .into_iter()
            .filter(|(_, _, face_id, hash)| {
                !listed_faces.contains(face_id)
                    && !hash.is_some_and(|h| listed_content.contains(&h))
            })
            .map(|(key, image, face_id, _)| (key, image, face_id))
            .collect();
        let gone_unlearned = unlearned
            .into_iter()
            .filter(|(_, _, hash)| !hash.is_some_and(|h| listed_content.contains(&h)))
            .map(|(key, image, _)| (key, image))
            .collect();
        // Deleted by an earlier mirror run, and not enrolled again since (a person
        // listed again is created again, and may leave again); or left on the
        // service by the evidence, and not listed since: settled, not planned again.
        let removed_before = match store.mirrored_person(id)? {
            Some(MirrorMark::Deleted { .. }) => !enrolled,
            Some(MirrorMark::Left {
                generation, reason, ..
            }) if !listed && generation == person.generation => {
                still_left.push((person.person.clone(), reason));
                true
            }
            _ => false,
        };
        let mut replaced = Vec::new();
        for (key, face_id) in store.replaced_faces(id)? {
            let entry = store.photo(&key)?;
            let photo = entry.as_ref().map_or_else(
                || String::from_utf8_lossy(key.as_bytes()).into_owned(),
                |e| e.image.to_string(),
            );
            // The earlier content's face leaves only once the new content is on
            // the service, or when the person is full and its place is what the new
            // content needs: a refused replacement never costs the person a face.
            match entry.as_ref().map(|e| &e.state) {
                None | Some(PhotoState::Enrolled { .. } | PhotoState::Full { .. }) => {
                    replaced.push((key, photo, face_id));
                }
                // The photo left the source: its earlier face goes with it.
                Some(_) if entry.as_ref().is_some_and(|e| e.retired) => {
                    replaced.push((key, photo, face_id));
                }
                Some(state) => kept.push((
                    person.person.clone(),
                    format!(
                        "face {face_id} of photo {photo}'s earlier content is kept: its new \
                         content is not on the service ({})",
                        replacement_state(state)
                    ),
                )),
            }
        }
        let joined = store.joined_groups(id)?;
        if matches!(person.state, PersonState::Ready { .. } | PersonState::Stale) {
            managed.groups += joined.len() as u64;
        }
        let dropped_groups = mirror::dropped_groups(&joined, &person.fields.groups);
        held.push(mirror::Held {
            gone_unlearned,
            replaced,
            dropped_groups,
            record: job_record(store, &person)?,
            person: person.person,
            listed,
            removed_before,
            gone_photos,
        });
    }
    let removals = mirror::removals(held);
    let mut leaving = Tally::default();
    removals.iter().for_each(|r| leaving += r.tally());
    let held = mirror::hold(leaving, managed, &health, max);
    Ok(MirrorPlan {
        removals,
        managed,
        held,
        kept,
        still_left,
    })
}

/// Where a replaced photo's new content stands, in words, when it is not on the
/// service.
fn replacement_state(state: &PhotoState) -> String {
    match state {
        PhotoState::Failed(f) | PhotoState::Deferred(f) => format!("refused: {}", f.message),
        PhotoState::Pending | PhotoState::InDoubt => "not sent yet".to_owned(),
        PhotoState::Duplicate { reason }
        | PhotoState::Skipped { reason }
        | PhotoState::Spare { reason } => format!("not sent: {reason}"),
        PhotoState::Enrolled { .. } | PhotoState::Full { .. } | PhotoState::Removed { .. } => {
            "on the service".to_owned()
        }
    }
}

/// What a mirror run did.
#[derive(Debug, Default)]
pub struct Mirrored {
    /// Why nothing was deleted, if the guards held the run.
    pub held: Option<Hold>,
    pub persons_deleted: u64,
    pub faces_deleted: u64,
    /// Groups taken from persons still listed.
    pub groups_deleted: u64,
    /// Persons left whole or in part, with the reason.
    pub left: Vec<(PersonId, String)>,
    /// Persons that left the source and that an earlier run left on the service,
    /// with the reason (no call made for them).
    pub still_left: Vec<(PersonId, String)>,
    /// Persons kept in a group the source dropped because it is their last one
    /// (among [`Self::left`]).
    pub last_group_kept: u64,
    /// Of [`Self::left`], those the last mirror run left alike (the same person, for
    /// the same reason): said again, and not new this run.
    pub left_before: u64,
    /// Persons still listed that had faces deleted, so room for photos over the
    /// limit.
    pub room_made: BTreeSet<String>,
    pub calls: u64,
    /// Deletions the service refused in this run (past their retries, for an error
    /// that may pass): each is planned again by the next run.
    pub failed: u64,
    /// The error that stopped the deletions (the rest are made by the next run).
    pub stopped: Option<CallError>,
    pub interrupted: bool,
}

impl Mirrored {
    /// The counts wrappers and monitoring read (`--summary-json`, `--metrics-file`).
    pub fn figures(&self) -> crate::metrics::MirrorFigures {
        crate::metrics::MirrorFigures {
            persons_deleted: self.persons_deleted,
            faces_deleted: self.faces_deleted,
            groups_deleted: self.groups_deleted,
            persons_left: self.left.len() as u64,
            persons_left_earlier: self.still_left.len() as u64,
            failed: self.failed,
            held: self.held.as_ref().map(ToString::to_string),
        }
    }
}

/// Runs the deletions of `plan`, unless the guards hold it.
pub fn run(
    store: &Store,
    client: &Client,
    pace: &PaceOptions,
    stop: &StopSignal,
    plan: MirrorPlan,
) -> anyhow::Result<Mirrored> {
    let mut done = Mirrored {
        held: plan.held.clone(),
        left: plan.kept.clone(),
        still_left: plan.still_left.clone(),
        ..Mirrored::default()
    };
    if done.held.is_some() {
        record_run(store, &mut done)?;
        return Ok(done);
    }
    let mut paced = Paced::new(client, pace);
    for removal in plan.removals {
        if stop.requested() {
            done.interrupted = true;
            break;
        }
        let result = match removal {
            Removal::Photo {
                person,
                key,
                face_id,
                ..
            } => {
                // A run stopped after its call and before its record: ask the service
                // whether the face is gone, rather than send a delface it may refuse.
                let resumed = matches!(
                    store.mirrored_photo(&key)?,
                    Some(MirrorMark::Deleting { .. })
                );
                store.put_mirrored_photo(&key, &MirrorMark::Deleting { at: unix_now() })?;
                store.flush()?;
                delete_face(&mut paced, &person, &face_id, resumed).map(|()| {
                    let at = unix_now();
                    removed(store, &person, &[face_id], false, at)?;
                    store.put_mirrored_photo(&key, &MirrorMark::Deleted { at })?;
                    done.faces_deleted += 1;
                    done.room_made.insert(person.as_str().to_owned());
                    anyhow::Ok(())
                })
            }
            Removal::Replaced {
                person,
                key,
                face_id,
                ..
            } => {
                // As for a photo: a run stopped after its call and before its record
                // asks the service whether the face is gone before a delface.
                let resumed = matches!(
                    store.mirrored_replaced(&key, &face_id)?,
                    Some(MirrorMark::Deleting { .. })
                );
                store.put_mirrored_replaced(
                    &key,
                    &face_id,
                    &MirrorMark::Deleting { at: unix_now() },
                )?;
                store.flush()?;
                delete_face(&mut paced, &person, &face_id, resumed).map(|()| {
                    store.forget_replaced_face(&key, &face_id)?;
                    store.put_mirrored_replaced(
                        &key,
                        &face_id,
                        &MirrorMark::Deleted { at: unix_now() },
                    )?;
                    done.faces_deleted += 1;
                    done.room_made.insert(person.as_str().to_owned());
                    anyhow::Ok(())
                })
            }
            Removal::Groups { person, groups } => {
                take_groups(store, &mut paced, &mut done, &person, &groups)
            }
            Removal::Unlearned {
                person,
                record,
                photos,
            } => take_unlearned(store, &mut paced, &mut done, &person, &record, &photos),
            Removal::Person { person, record } => {
                let resumed = matches!(
                    store.mirrored_person(person.as_str())?,
                    Some(MirrorMark::Deleting { .. })
                );
                store.put_mirrored_person(
                    person.as_str(),
                    &MirrorMark::Deleting { at: unix_now() },
                )?;
                store.flush()?;
                let found = match paced.call(|c| c.get_info(&person)) {
                    Ok(info) => Ok(Some(Found::from(info))),
                    Err(err) if err.class() == Class::Outcome(Outcome::PersonMissing) => Ok(None),
                    Err(err) => Err(err),
                };
                match found {
                    Err(err) => Err(err),
                    Ok(found) => {
                        // A run stopped between its delface and its record: the job's
                        // faces the service no longer holds were taken off by it.
                        let taken_off: Vec<String> = match (&found, resumed) {
                            (Some(found), true) => record
                                .face_ids
                                .iter()
                                .filter(|f| !found.face_ids.contains(f))
                                .cloned()
                                .collect(),
                            _ => Vec::new(),
                        };
                        let decision = match &found {
                            Some(found) if finished_in_part(&record, found, &taken_off) => {
                                Decision {
                                    steps: Vec::new(),
                                    outcome: RollbackEntry::Partly {
                                        reasons: vec![format!(
                                            "it holds {} faces the job did not add; the job's \
                                             faces were taken off by the run that was stopped, \
                                             and the rest stays",
                                            found.face_ids.len()
                                        )],
                                    },
                                }
                            }
                            _ => undo(&record, found.as_ref()),
                        };
                        let mut result = Ok(());
                        let mut faces: Vec<String> = taken_off;
                        let mut deleted_person = false;
                        let mut groups_taken: Vec<GroupId> = Vec::new();
                        for step in deletion_steps(decision.steps) {
                            // The groups taken from a person that stays (it existed
                            // before the job) are recorded, so `rollback --mirror`
                            // can put them back.
                            let taken: &[GroupId] = match &step {
                                Step::DelGroupIds { groups } => groups,
                                _ => &[],
                            };
                            let at = unix_now();
                            for group in taken {
                                store.put_mirrored_group(
                                    person.as_str(),
                                    group.as_str(),
                                    &MirrorMark::Deleting { at },
                                )?;
                            }
                            if !taken.is_empty() {
                                store.flush()?;
                            }
                            let outcome = run_step(&mut paced, &person, &step);
                            let missing = matches!(&outcome, Err(err)
                                if err.class() == Class::Outcome(Outcome::PersonMissing));
                            for group in taken {
                                if outcome.is_ok() {
                                    store.put_mirrored_group(
                                        person.as_str(),
                                        group.as_str(),
                                        &MirrorMark::Deleted { at },
                                    )?;
                                    store.drop_joined_group(person.as_str(), group)?;
                                } else {
                                    store.forget_mirrored_group(person.as_str(), group.as_str())?;
                                }
                            }
                            match outcome {
                                Ok(()) => {}
                                Err(_) if missing => {}
                                Err(err) => {
                                    result = Err(err);
                                    break;
                                }
                            }
                            match step {
                                Step::DelPerson => deleted_person = true,
                                Step::DelFace { face_ids } => faces.extend(face_ids),
                                Step::DelGroupIds { groups } => groups_taken.extend(groups),
                                _ => {}
                            }
                        }
                        if found.is_none() {
                            deleted_person = true;
                        }
                        result.map(|()| {
                            let at = unix_now();
                            if deleted_person {
                                faces = record.face_ids.clone();
                            }
                            // A person deleted takes every face of the job's with it,
                            // those whose id the job never learned too.
                            done.faces_deleted +=
                                removed(store, &person, &faces, deleted_person, at)?;
                            for (key, face_id) in store.replaced_faces(person.as_str())? {
                                if deleted_person || faces.contains(&face_id) {
                                    store.forget_replaced_face(&key, &face_id)?;
                                    done.faces_deleted += 1;
                                }
                            }
                            if deleted_person {
                                // Its groups went with it.
                                store.forget_joined_groups(person.as_str())?;
                                done.persons_deleted += 1;
                                if let Some(mut entry) = store.person(person.as_str())? {
                                    // Listed again later, it is created again.
                                    entry.state = PersonState::New;
                                    store.put_person(&entry)?;
                                }
                            }
                            // A person that stays (it was on the service before the
                            // job) keeps the groups of the source it was in before:
                            // not the job's to take, and said every night.
                            let kept_in = match (&found, deleted_person) {
                                (Some(found), false) => {
                                    let given = store
                                        .person(person.as_str())?
                                        .map(|e| e.fields.groups)
                                        .unwrap_or_default();
                                    kept_in_groups(&found.groups, &given, &groups_taken)
                                }
                                _ => Vec::new(),
                            };
                            let mut reasons = match &decision.outcome {
                                RollbackEntry::Left { reason } if !deleted_person => {
                                    vec![format!("left as it is: {reason}")]
                                }
                                RollbackEntry::Partly { reasons } if !deleted_person => {
                                    vec![format!("left in part: {}", reasons.join("; "))]
                                }
                                _ => Vec::new(),
                            };
                            if !kept_in.is_empty() {
                                reasons.push(format!(
                                    "it stays in {}, where it was before the job: the job \
                                     takes away only what it added; take it out by hand if \
                                     it should leave",
                                    kept_in.join(",")
                                ));
                            }
                            let mark = if reasons.is_empty() {
                                MirrorMark::Deleted { at }
                            } else {
                                let reason = reasons.join("; ");
                                done.left.push((person.clone(), reason.clone()));
                                MirrorMark::Left {
                                    at,
                                    generation: person_generation(store, &person)?,
                                    reason,
                                }
                            };
                            store.put_mirrored_person(person.as_str(), &mark)?;
                            anyhow::Ok(())
                        })
                    }
                }
            }
        };
        match result {
            Ok(recorded) => {
                recorded?;
                store.flush()?;
            }
            Err(err) if stops_the_mirror(&err) => {
                done.stopped = Some(err);
                break;
            }
            Err(err) => {
                // A refusal, or an error of the service that outlasted its retries
                // (213): a failed item of this run, planned again by the next one.
                done.failed += 1;
                tracing::warn!(
                    "mirror: a deletion failed: {err}; the next run with --mirror tries it again"
                );
            }
        }
    }
    done.calls = paced.calls;
    record_run(store, &mut done)?;
    Ok(done)
}

/// Whether an error stops the deletions (exit 3): one every later call would get
/// too (the account, the credentials, a service out of reach) or the network
/// failing under the calls. An error of the service that outlasted its retries
/// (213, rate limits) is one deletion's failure, not the job's.
fn stops_the_mirror(err: &CallError) -> bool {
    err.class() == Class::Fatal
        || (matches!(err, CallError::Transport { .. }) && err.class() == Class::Transient)
}

/// Takes `dropped` groups from a person still listed, as [`mirror::groups_to_take`]
/// allows once the person is read: recorded before the call and after; a group
/// the person is no longer in, or a person no longer there, counts as taken. Its
/// last group stays, and is said.
fn take_groups(
    store: &Store,
    paced: &mut Paced<'_>,
    done: &mut Mirrored,
    person: &PersonId,
    dropped: &[GroupId],
) -> Result<anyhow::Result<()>, CallError> {
    let held = match paced.call(|c| c.get_info(person)) {
        Ok(info) => info.group_ids,
        Err(err) if err.class() == Class::Outcome(Outcome::PersonMissing) => Vec::new(),
        Err(err) => return Err(err),
    };
    let names = |groups: &[GroupId]| {
        groups
            .iter()
            .map(GroupId::as_str)
            .collect::<Vec<_>>()
            .join(",")
    };
    let take = match mirror::groups_to_take(dropped, &held) {
        Ok(take) => take,
        Err(last) => {
            done.last_group_kept += 1;
            done.left.push((
                person.clone(),
                format!(
                    "kept in {}, which the source no longer gives it: it is in no other \
                     group now (the groups the source gives it could not be added, or \
                     someone took it out of them), and a person is never left in no group",
                    names(&last)
                ),
            ));
            return Ok(Ok(()));
        }
    };
    let record = |mark: &dyn Fn() -> MirrorMark| -> anyhow::Result<()> {
        for group in &take {
            store.put_mirrored_group(person.as_str(), group.as_str(), &mark())?;
        }
        Ok(())
    };
    if !take.is_empty() {
        if let Err(e) =
            record(&|| MirrorMark::Deleting { at: unix_now() }).and_then(|()| Ok(store.flush()?))
        {
            return Ok(Err(e));
        }
        let step = Step::DelGroupIds {
            groups: take.clone(),
        };
        match run_step(paced, person, &step) {
            Ok(()) => {}
            Err(err) if err.class() == Class::Outcome(Outcome::PersonMissing) => {}
            Err(err) if stops(&err) => return Err(err),
            Err(err) => {
                // Refused (a service that keeps a person's last group, changed
                // since it was read): nothing was taken.
                for group in &take {
                    if let Err(e) = store.forget_mirrored_group(person.as_str(), group.as_str()) {
                        return Ok(Err(e.into()));
                    }
                }
                done.last_group_kept += 1;
                done.left.push((
                    person.clone(),
                    format!(
                        "kept in {}, which the source no longer gives it: the service refused \
                         to take it out: {err}",
                        names(&take)
                    ),
                ));
                return Ok(Ok(()));
            }
        }
    }
    Ok((|| {
        let at = unix_now();
        record(&|| MirrorMark::Deleted { at })?;
        // A run stopped after its delgroupids and before its record: the group is
        // gone now, so nothing was taken this time, but the earlier run took it.
        for group in dropped {
            if let Some(MirrorMark::Deleting { .. }) =
                store.mirrored_group(person.as_str(), group.as_str())?
            {
                store.put_mirrored_group(
                    person.as_str(),
                    group.as_str(),
                    &MirrorMark::Deleted { at },
                )?;
            }
        }
        for group in dropped {
            store.drop_joined_group(person.as_str(), group)?;
        }
        done.groups_deleted += dropped.len() as u64;
        Ok(())
    })())
}

/// Gives the photos over the limit of each person of `persons` the room a mirror
/// made: photos kept out because the person was full (spares, or refused as
/// full) become pending, in source order, as many as the person has room for by
/// the job's records (the engine reads the service's count before it sends them).
/// Answers how many.
pub fn make_room(store: &Store, persons: &BTreeSet<String>) -> anyhow::Result<u64> {
    let generation = store.meta()?.generation;
    let mut promoted = 0;
    for person in persons {
        let mut taken = 0usize;
        let mut waiting = Vec::new();
        for item in store.photos_of(person) {
            let (key, entry) = item?;
            match &entry.state {
                PhotoState::Enrolled { .. } | PhotoState::InDoubt => taken += 1,
                state if state.is_to_send() && entry.generation == generation => taken += 1,
                PhotoState::Spare { .. } | PhotoState::Full { .. }
                    if !entry.retired && entry.generation == generation =>
                {
                    waiting.push((key, entry))
                }
                _ => {}
            }
        }
        waiting.sort_by_key(|(_, e)| e.seq);
        let room = crate::limits::MAX_FACES_PER_PERSON.saturating_sub(taken);
        for (key, mut entry) in waiting.into_iter().take(room) {
            entry.state = PhotoState::Pending;
            store.put_photo(&key, &entry)?;
            promoted += 1;
        }
    }
    store.flush()?;
    Ok(promoted)
}

/// Records the run's account for `status`. A run that made every deletion of its
/// plan also settles what `verify --repair` queued: those still to delete were in
/// the plan (what left the source), and the others are listed again or gone.
fn record_run(store: &Store, done: &mut Mirrored) -> anyhow::Result<()> {
    let before = store.last_mirror_run()?.map(|r| r.left).unwrap_or_default();
    done.left_before = done
        .left
        .iter()
        .filter(|(p, why)| before.iter().any(|(bp, bw)| bp == p.as_str() && bw == why))
        .count() as u64;
    store.put_mirror_run(&MirrorRun {
        at: unix_now(),
        persons_deleted: done.persons_deleted,
        faces_deleted: done.faces_deleted,
        groups_deleted: done.groups_deleted,
        left: done
            .left
            .iter()
            .map(|(p, why)| (p.as_str().to_owned(), why.clone()))
            .collect(),
        held: done.held.as_ref().map(ToString::to_string),
    })?;
    if done.held.is_none() && done.stopped.is_none() && !done.interrupted {
        for (key, _) in store.queued_mirror_deletions()? {
            store.unqueue_mirror_deletion(&key)?;
        }
    }
    store.flush()?;
    Ok(())
}

/// Whether a person the job created, whose deletion a stopped run began, holds no
/// face of the job any more but others' faces: that run took the job's faces off
/// (as `undo` decides for a person changed since), and nothing is left to do.
fn finished_in_part(record: &JobRecord, found: &Found, taken_off: &[String]) -> bool {
    matches!(record.origin, Origin::Created | Origin::CreationInDoubt)
        && !taken_off.is_empty()
        && taken_off.len() == record.face_ids.len()
        && !found.face_ids.is_empty()
}

/// Deletes one face of the job (`delface`). `resumed`: a run stopped after its
/// call and before its record, so the service is asked first whether the face is
/// gone, rather than sent a `delface` it may refuse. A face already gone, or whose
/// person is gone (its faces with it), counts as deleted.
fn delete_face(
    paced: &mut Paced<'_>,
    person: &PersonId,
    face_id: &str,
    resumed: bool,
) -> Result<(), CallError> {
    let step = Step::DelFace {
        face_ids: vec![face_id.to_owned()],
    };
    match resumed.then(|| face_gone(paced, person, face_id)) {
        Some(Ok(true)) => Ok(()),
        Some(Err(err)) => Err(err),
        Some(Ok(false)) | None => run_step(paced, person, &step),
    }
    .or_else(|err| match err.class() {
        Class::Outcome(Outcome::PersonMissing) => Ok(()),
        _ => Err(err),
    })
}

/// Whether the service no longer holds `face_id` on `person` (or the person at all),
/// read with `getinfo`.
fn face_gone(paced: &mut Paced<'_>, person: &PersonId, face_id: &str) -> Result<bool, CallError> {
    match paced.call(|c| c.get_info(person)) {
        Ok(info) => Ok(!info.face_ids.iter().any(|f| f == face_id)),
        Err(err) if err.class() == Class::Outcome(Outcome::PersonMissing) => Ok(true),
        Err(err) => Err(err),
    }
}

/// Records the photos of `person` whose faces (of `face_ids`) were deleted as
/// removed; how many.
/// Deletes the faces of `photos`, which left the source and whose face ids the
/// service never gave, when the person's faces, read just before, tell them apart
/// ([`mirror::unlearned_faces`]); else leaves them, each photo named with the
/// reason. A run stopped after the `delface` finds them gone: the person then
/// holds no face the job does not know.
fn take_unlearned(
    store: &Store,
    paced: &mut Paced<'_>,
    done: &mut Mirrored,
    person: &PersonId,
    record: &JobRecord,
    photos: &[(crate::store::PhotoKey, String)],
) -> Result<anyhow::Result<()>, CallError> {
    let found = match paced.call(|c| c.get_info(person)) {
        Ok(info) => Some(info.face_ids),
        Err(err) if err.class() == Class::Outcome(Outcome::PersonMissing) => None,
        Err(err) => return Err(err),
    };
    let resumed = photos.iter().try_fold(false, |any, (key, _)| {
        Ok::<_, crate::store::StoreError>(
            any || matches!(
                store.mirrored_photo(key)?,
                Some(MirrorMark::Deleting { .. })
            ),
        )
    });
    let resumed = match resumed {
        Ok(resumed) => resumed,
        Err(e) => return Ok(Err(e.into())),
    };
    let faces = match &found {
        None => Ok(Vec::new()),
        Some(found) => match mirror::unlearned_faces(record, photos.len(), found) {
            // Taken off by the run that was stopped: none unknown is left.
            Err(_) if resumed && found.iter().all(|f| record.face_ids.contains(f)) => {
                Ok(Vec::new())
            }
            other => other,
        },
    };
    let faces = match faces {
        Ok(faces) => faces,
        Err(reason) => {
            return Ok((|| {
                let at = unix_now();
                for (key, photo) in photos {
                    let reason = format!(
                        "photo {photo} left the source, but its face could not be removed: \
                         the service never gave its id, and {reason}; delete it by hand"
                    );
                    let generation = store.photo(key)?.map_or(0, |e| e.generation);
                    store.put_mirrored_photo(
                        key,
                        &MirrorMark::Left {
                            at,
                            generation,
                            reason: reason.clone(),
                        },
                    )?;
                    done.left.push((person.clone(), reason));
                }
                Ok(())
            })());
        }
    };
    let mark = |mark: MirrorMark| -> anyhow::Result<()> {
        for (key, _) in photos {
            store.put_mirrored_photo(key, &mark)?;
        }
        store.flush()?;
        Ok(())
    };
    if !faces.is_empty() {
        if let Err(e) = mark(MirrorMark::Deleting { at: unix_now() }) {
            return Ok(Err(e));
        }
        let step = Step::DelFace {
            face_ids: faces.clone(),
        };
        match run_step(paced, person, &step) {
            Ok(()) => {}
            Err(err) if err.class() == Class::Outcome(Outcome::PersonMissing) => {}
            Err(err) => return Err(err),
        }
    }
    Ok((|| {
        let at = unix_now();
        for (key, _) in photos {
            if let Some(mut entry) = store.photo(key)? {
                entry.state = PhotoState::Removed {
                    face_id: String::new(),
                    at,
                };
                store.put_photo(key, &entry)?;
            }
        }
        mark(MirrorMark::Deleted { at })?;
        done.faces_deleted += photos.len() as u64;
        done.room_made.insert(person.as_str().to_owned());
        Ok(())
    })())
}

/// Records the photos of `person` whose faces are `face_ids` removed, and with
/// `all` (the person was deleted) those whose face id the job never learned too.
fn removed(
    store: &Store,
    person: &PersonId,
    face_ids: &[String],
    all: bool,
    at: u64,
) -> anyhow::Result<u64> {
    let mut n = 0;
    for item in store.photos_of(person.as_str()) {
        let (key, mut entry) = item?;
        let face_id = match &entry.state {
            PhotoState::Enrolled {
                face: FaceRef::Id(face_id),
            } if face_ids.contains(face_id) => face_id.clone(),
            PhotoState::Enrolled {
                face: FaceRef::Confirmed,
            } if all => String::new(),
            _ => continue,
        };
        entry.state = PhotoState::Removed { face_id, at };
        store.put_photo(&key, &entry)?;
        n += 1;
    }
    Ok(n)
}

/// The groups of the source (`given`) a person that stays still holds (`found`),
/// once the mirror took `taken`.
fn kept_in_groups(found: &[String], given: &[GroupId], taken: &[GroupId]) -> Vec<String> {
    found
        .iter()
        .filter(|g| given.iter().any(|s| s.as_str() == g.as_str()))
        .filter(|g| !taken.iter().any(|t| t.as_str() == g.as_str()))
        .cloned()
        .collect()
}

/// The plan generation that last listed `person`.
fn person_generation(store: &Store, person: &PersonId) -> anyhow::Result<u64> {
    Ok(store.person(person.as_str())?.map_or(0, |p| p.generation))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What putting back the groups of mirror runs did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GroupsRestored {
    /// (person, group) put back.
    pub restored: Vec<(String, String)>,
    /// (person, group, why) not put back.
    pub left: Vec<(String, String, String)>,
}

/// Puts back, for a rollback of mirror runs, every group a mirror took from a
/// person (the `mirror` tree's group records, [`Store::mirrored_groups`]) on the
/// persons still on the service (`addgroupids`), the person read (`getinfo`) just
/// before; a person no longer there is left, with the reason. A group put back is
/// the job's again (a later mirror takes it back if the source still drops it), and
/// its record of deletion is forgotten, so running this again makes no call for it.
/// A deletion recorded as under way (its answer never recorded) is put back too:
/// the group may have gone.
pub fn restore_groups(store: &Store, paced: &mut Paced<'_>) -> anyhow::Result<GroupsRestored> {
    let mut done = GroupsRestored::default();
    for mark in store.mirrored_groups()? {
        let (Ok(person), Ok(group)) = (
            PersonId::new(mark.person.as_str()),
            GroupId::new(mark.group.as_str()),
        ) else {
            continue;
        };
        let held = match paced.call(|c| c.get_info(&person)) {
            Ok(info) => info.group_ids,
            Err(err) if err.class() == Class::Outcome(Outcome::PersonMissing) => {
                done.left.push((
                    mark.person,
                    mark.group,
                    "the person is no longer on the service".into(),
                ));
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        if !held.iter().any(|g| g == group.as_str()) {
            if let Err(err) = paced.call(|c| c.add_group_ids(&person, std::slice::from_ref(&group)))
            {
                if stops(&err) {
                    return Err(err.into());
                }
                done.left.push((
                    mark.person,
                    mark.group,
                    format!("the service refused to put it back: {err}"),
                ));
                continue;
            }
        }
        store.add_joined_groups(person.as_str(), std::slice::from_ref(&group))?;
        store.forget_mirrored_group(person.as_str(), group.as_str())?;
        store.flush()?;
        done.restored.push((mark.person, mark.group));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_that_stays_keeps_only_the_source_groups_it_still_holds() {
        let g = |s: &str| GroupId::new(s).unwrap();
        let found = ["door".to_owned(), "lab".to_owned(), "theirs".to_owned()];
        assert_eq!(
            kept_in_groups(&found, &[g("door"), g("lab")], &[g("lab")]),
            ["door"]
        );
        assert!(kept_in_groups(&found, &[g("lab")], &[g("lab")]).is_empty());
        assert!(kept_in_groups(&[], &[g("door")], &[]).is_empty());
    }
}
