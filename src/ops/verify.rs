//! `verify`: audits the service against what the job recorded.
//!
//! Every person the job put on the service is read with one paced `getinfo` and
//! compared with the store: the person exists, is in every group of the job, has the
//! job's name and tag, and holds every face the job enrolled (by face id). Faces on
//! the person that the job did not add are counted, not reported as differences.
//!
//! Each person checked is recorded in the store's `verify` tree with its differences,
//! so a verify stopped on a large account goes on where it stopped, and the drift
//! report is written from that record. `repair` marks what went missing for the next
//! `enroll`: a missing face's photo becomes pending, a missing person becomes new
//! with all its enrolled photos pending, a person whose groups, name or tag differ
//! becomes stale (brought in line on the next run). Without `repair` nothing is
//! written but the verify's own record.
//!
//! Verify knows mirror: what left the source within the job's reach (as
//! [`super::mirror::plan`] tells it from the latest plan: a person of the job the
//! source no longer lists, a photo no longer listed whose face the job enrolled)
//! and that the service still holds is drift too. `repair` never deletes: it
//! queues the deletions in the store, and the next `enroll --mirror` makes them,
//! under the same guards and the same reading of each person just before.

use super::paced::{PaceOptions, Paced};
use crate::deletion::mirror::{Removal, SourceHealth};
use crate::deletion::JobRecord;
use crate::engine::StopSignal;
use crate::exit::Exit;
use crate::model::PersonId;
use crate::report::Format;
use crate::service::api::GetInfoData;
use crate::service::client::{CallError, Client};
use crate::service::codes::{Class, Outcome};
use crate::state_dir::StateDir;
use crate::store::{
    Difference, FaceRef, PersonEntry, PersonState, PhotoKey, PhotoState, Store, VerifiedEntry,
};
use crate::store::{Queued, QueuedKey};
use anyhow::Context as _;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// One verify run, fully resolved.
pub struct VerifyJob {
    pub state_dir: PathBuf,
    pub repair: bool,
    /// Where the drift report goes (default: `drift.csv` in the state directory).
    pub report: Option<PathBuf>,
    pub format: Format,
    pub pace: PaceOptions,
    /// Bind the state to the account called even if it recorded another.
    pub rebind_account: bool,
}

/// What a verify found.
#[derive(Debug, Default)]
pub struct Verified {
    /// Whether an unfinished verify was taken up again.
    pub resumed: bool,
    /// Persons checked in all, and by this run.
    pub persons: u64,
    pub persons_this_run: u64,
    pub faces_checked: u64,
    pub other_faces: u64,
    pub persons_missing: u64,
    pub faces_missing: u64,
    /// Group, name and tag differences, and persons the service refused to show.
    pub fields_differ: u64,
    /// Persons and faces the source no longer lists that the service still holds.
    pub persons_left_source: u64,
    pub faces_left_source: u64,
    /// Their deletions queued for the next `enroll --mirror` (`--repair`).
    pub deletions_queued: u64,
    /// Photos marked pending and persons marked for the next enroll (`--repair`).
    pub photos_repaired: u64,
    pub persons_repaired: u64,
    /// Differences `--repair` did not take care of (all of them without it; with it,
    /// a person the service refused to show).
    pub unrepaired: u64,
    pub calls: u64,
    pub report: PathBuf,
    /// The error that stopped the verify before every person was checked.
    pub stopped: Option<CallError>,
    /// A signal stopped the verify before every person was checked.
    pub interrupted: bool,
}

impl Verified {
    /// Whether the verify ended before every person was checked (an error or a
    /// signal stopped it): it goes on from there next time.
    pub fn incomplete(&self) -> bool {
        self.stopped.is_some() || self.interrupted
    }

    pub fn differences(&self) -> u64 {
        self.persons_missing
            + self.faces_missing
            + self.fields_differ
            + self.persons_left_source
            + self.faces_left_source
    }

    /// The exit code of the verify: 3 when a service error stopped it, 1 when a
    /// difference is left to act on, 0 when nothing differs or `--repair` queued
    /// every repair for the next enroll (so `verify --repair && enroll ...` goes on
    /// to the enroll that makes them).
    pub fn exit(&self) -> Exit {
        if self.stopped.is_some() {
            Exit::Fatal
        } else if self.interrupted {
            Exit::Interrupted
        } else if self.unrepaired > 0 {
            Exit::Failures
        } else {
            Exit::Ok
        }
    }
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ending = match (&self.stopped, self.differences()) {
            (Some(err), _) => format!("stopped: {err}; run the same command again to go on"),
            (None, _) if self.interrupted => {
                "interrupted; run the same command again to go on".to_owned()
            }
            (None, 0) => "the service holds everything the job recorded".to_owned(),
            (None, n) => format!("{n} differences between the service and the job"),
        };
        writeln!(f, "faceenroll verify: {ending}")?;
        writeln!(
            f,
            "  persons: {} checked ({} by this run{}), {} missing",
            self.persons,
            self.persons_this_run,
            if self.resumed {
                ", going on from a stopped verify"
            } else {
                ""
            },
            self.persons_missing
        )?;
        writeln!(
            f,
            "  faces:   {} of the job checked, {} missing; {} faces on these persons the job did not add",
            self.faces_checked, self.faces_missing, self.other_faces
        )?;
        writeln!(
            f,
            "  groups, names and tags that differ: {}",
            self.fields_differ
        )?;
        if self.persons_left_source + self.faces_left_source > 0 {
            writeln!(
                f,
                "  left the source, still on the service: {} persons, {} faces{}",
                self.persons_left_source,
                self.faces_left_source,
                if self.deletions_queued > 0 {
                    ""
                } else {
                    " (--repair queues their deletion for the next enroll --mirror)"
                }
            )?;
        }
        writeln!(f, "  {}", crate::report::count(self.calls, "call", "calls"))?;
        if self.photos_repaired + self.persons_repaired > 0 {
            writeln!(
                f,
                "  repaired: {} photos marked pending and {} persons marked for the next \
                 enroll, which re-sends exactly that",
                self.photos_repaired, self.persons_repaired
            )?;
        }
        if self.deletions_queued > 0 {
            writeln!(
                f,
                "  queued: {} for the next enroll --mirror, under its guards (a run \
                 without --mirror leaves them queued); nothing was deleted",
                crate::report::count(self.deletions_queued, "deletion", "deletions")
            )?;
        }
        if self.incomplete() {
            writeln!(
                f,
                "  drift report: not written, as this verify stopped before checking every \
                 person; {} is left as it was (the last complete one, if any)",
                self.report.display()
            )
        } else {
            writeln!(f, "  drift report: {}", self.report.display())
        }
    }
}

/// Compares what the service says of a person with the store's record of it.
/// `faces` are the job's enrolled faces of the person: (face id, photo key).
pub fn compare(
    person: &PersonEntry,
    info: Option<&GetInfoData>,
    faces: &[(String, Vec<u8>)],
) -> VerifiedEntry {
    let mut entry = VerifiedEntry {
        faces_checked: faces.len() as u64,
        ..VerifiedEntry::default()
    };
    let Some(info) = info else {
        entry.differences.push(Difference::PersonMissing);
        return entry;
    };
    for group in &person.fields.groups {
        if !info.group_ids.iter().any(|g| g == group.as_str()) {
            entry.differences.push(Difference::GroupMissing {
                group: group.as_str().to_owned(),
            });
        }
    }
    if let Some(name) = person
        .fields
        .name
        .as_ref()
        .filter(|n| **n != info.person_name)
    {
        entry.differences.push(Difference::NameDiffers {
            expected: name.clone(),
            found: info.person_name.clone(),
        });
    }
    if let Some(tag) = person.fields.tag.as_ref().filter(|t| **t != info.tag) {
        entry.differences.push(Difference::TagDiffers {
            expected: tag.clone(),
            found: info.tag.clone(),
        });
    }
    let held: HashSet<&str> = info.face_ids.iter().map(String::as_str).collect();
    let mut found = 0;
    for (face_id, photo) in faces {
        if held.contains(face_id.as_str()) {
            found += 1;
        } else {
            entry.differences.push(Difference::FaceMissing {
                face_id: face_id.clone(),
                photo: photo.clone(),
            });
        }
    }
    entry.other_faces = (info.face_ids.len() as u64).saturating_sub(found);
    entry
}

/// Whether the job put this person on the service.
fn on_service(person: &PersonEntry) -> bool {
    matches!(person.state, PersonState::Ready { .. } | PersonState::Stale)
}

/// Runs a verify to the end, or until an error or `stop` stops it (checked before
/// each person: no call is made after a stop is asked but the one in flight).
pub fn verify(job: &VerifyJob, client: &Client, stop: &StopSignal) -> anyhow::Result<Verified> {
    let store = Store::open(&job.state_dir)?;
    super::rollback::refuse_if_rolled_back(&store)?;
    super::bind_account(&store, client, job.rebind_account)?;
    let meta = store.meta()?;
    let mut paced = Paced::new(client, &job.pace);
    let mut done = Verified {
        resumed: store.open_verify()?,
        report: job.report.clone().unwrap_or_else(|| {
            StateDir::new(&job.state_dir).drift_report(match job.format {
                Format::Csv => "csv",
                Format::Jsonl => "jsonl",
            })
        }),
        ..Verified::default()
    };
    // What left the source within the job's reach, as a mirror run would take it.
    let left = super::mirror::plan(
        &store,
        SourceHealth::default(),
        crate::deletion::mirror::MaxDelete::Count(0),
        super::mirror::Planned::AfterAdds,
    )?;
    let mut gone_faces: HashMap<&str, Vec<(String, Vec<u8>)>> = HashMap::new();
    let mut gone_persons: Vec<(&PersonId, &JobRecord)> = Vec::new();
    for removal in &left.removals {
        match removal {
            // The face of a photo no longer listed, or of a photo's earlier content.
            Removal::Photo {
                person,
                key,
                face_id,
                ..
            }
            | Removal::Replaced {
                person,
                key,
                face_id,
                ..
            } => gone_faces
                .entry(person.as_str())
                .or_default()
                .push((face_id.clone(), key.as_bytes().to_vec())),
            Removal::Person { person, record } => gone_persons.push((person, record)),
            // Faces of photos that left whose ids the job never learned: on the
            // person while it holds faces the job does not know.
            Removal::Unlearned { person, photos, .. } => {
                for (key, _) in photos {
                    gone_faces
                        .entry(person.as_str())
                        .or_default()
                        .push((String::new(), key.as_bytes().to_vec()));
                }
            }
            // Groups on the service beyond the source's are not drift for verify
            // (it checks that the source's groups are there); a mirror run takes
            // the job's back.
            Removal::Groups { .. } => {}
        }
    }
    for person in store.persons() {
        if stop.requested() {
            done.interrupted = true;
            break;
        }
        let person = person?;
        let id = person.person.as_str();
        // Persons the job's sources still list, whichever source listed them last.
        if !meta.person_is_current(person.generation)
            || !on_service(&person)
            || store.verified(id)?.is_some()
        {
            continue;
        }
        let faces: Vec<(String, Vec<u8>)> = store
            .photos_of(id)
            .filter_map(|item| match item {
                Ok((key, e)) if !e.retired => match e.state {
                    PhotoState::Enrolled {
                        face: FaceRef::Id(face_id),
                    } => Some(Ok((face_id, key.as_bytes().to_vec()))),
                    _ => None,
                },
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()?;
        let mut entry = match paced.call(|c| c.get_info(&person.person)) {
            Ok(info) => {
                let mut entry = compare(&person, Some(&info), &faces);
                for (face_id, photo) in gone_faces.get(id).into_iter().flatten() {
                    let held = match face_id.is_empty() {
                        true => entry.other_faces > 0,
                        false => info.face_ids.contains(face_id),
                    };
                    if held {
                        entry.other_faces = entry.other_faces.saturating_sub(1);
                        entry.differences.push(Difference::FaceLeftSource {
                            face_id: face_id.clone(),
                            photo: photo.clone(),
                        });
                    }
                }
                entry
            }
            Err(err) if err.class() == Class::Outcome(Outcome::PersonMissing) => {
                compare(&person, None, &faces)
            }
            Err(err) if super::rollback::stops(&err) => {
                // Every later call would meet it too, or the service is not answering
                // now: stop, and go on from here next time.
                done.stopped = Some(err);
                break;
            }
            Err(err) => VerifiedEntry {
                differences: vec![Difference::Unreadable {
                    reason: err.to_string(),
                }],
                ..VerifiedEntry::default()
            },
        };
        if job.repair && !entry.differences.is_empty() {
            let (photos, persons) = repair(&store, &person, &entry.differences)?;
            done.photos_repaired += photos;
            done.persons_repaired += persons;
            entry.repaired = true;
        }
        store.put_verified(id, &entry)?;
        store.flush()?;
        done.persons_this_run += 1;
    }
    // Persons of the job the source no longer lists: drift while the service holds
    // what the job put on them.
    for (person, record) in gone_persons {
        if stop.requested() {
            done.interrupted = true;
        }
        if done.incomplete() {
            break;
        }
        let id = person.as_str();
        if store.verified(id)?.is_some() {
            continue;
        }
        let found = match paced.call(|c| c.get_info(person)) {
            Ok(info) => Some(crate::deletion::Found::from(info)),
            Err(err) if err.class() == Class::Outcome(Outcome::PersonMissing) => None,
            Err(err) if super::rollback::stops(&err) => {
                done.stopped = Some(err);
                break;
            }
            Err(err) => {
                tracing::warn!("verify: {id}: the service refused to show it: {err}");
                continue;
            }
        };
        let mut entry = VerifiedEntry::default();
        if let Some(found) = &found {
            let takes_back = crate::deletion::undo(record, Some(found))
                .steps
                .iter()
                .any(|s| !matches!(s, crate::deletion::Step::SetInfo { .. }));
            if takes_back {
                let faces = found
                    .face_ids
                    .iter()
                    .filter(|f| record.face_ids.contains(f))
                    .count() as u64;
                entry.other_faces = found.face_ids.len() as u64 - faces;
                entry
                    .differences
                    .push(Difference::PersonLeftSource { faces });
            }
        }
        if job.repair && !entry.differences.is_empty() {
            store.queue_mirror_deletion(
                &QueuedKey::Person(id.to_owned()),
                &Queued {
                    at: unix_now(),
                    face_id: None,
                },
            )?;
            entry.repaired = true;
        }
        store.put_verified(id, &entry)?;
        store.flush()?;
        done.persons_this_run += 1;
    }
    done.calls = paced.calls;
    write_drift(&store, &mut done, job.format)?;
    if !done.incomplete() {
        store.close_verify()?;
    }
    Ok(done)
}

/// Marks the differences of one person for the next enroll; answers the photos and
/// persons marked.
fn repair(
    store: &Store,
    person: &PersonEntry,
    differences: &[Difference],
) -> anyhow::Result<(u64, u64)> {
    let mut photos = 0;
    let mut mark = |key: &PhotoKey| -> anyhow::Result<()> {
        if let Some(mut entry) = store.photo(key)? {
            if matches!(entry.state, PhotoState::Enrolled { .. }) {
                entry.state = PhotoState::Pending;
                store.put_photo(key, &entry)?;
                photos += 1;
            }
        }
        Ok(())
    };
    let mut updated = person.clone();
    if differences.contains(&Difference::PersonMissing) {
        for item in store.photos_of(person.person.as_str()) {
            let (key, _) = item?;
            mark(&key)?;
        }
        updated.state = PersonState::New;
    } else {
        for d in differences {
            match d {
                Difference::FaceMissing { photo, .. } => mark(&PhotoKey::from_bytes(photo))?,
                Difference::GroupMissing { .. }
                | Difference::NameDiffers { .. }
                | Difference::TagDiffers { .. } => updated.state = PersonState::Stale,
                Difference::FaceLeftSource { face_id, photo } => store.queue_mirror_deletion(
                    &QueuedKey::Face(PhotoKey::from_bytes(photo)),
                    &Queued {
                        at: unix_now(),
                        face_id: Some(face_id.clone()),
                    },
                )?,
                Difference::PersonMissing
                | Difference::Unreadable { .. }
                | Difference::PersonLeftSource { .. } => {}
            }
        }
    }
    let persons = u64::from(updated.state != person.state);
    if persons > 0 {
        store.put_person(&updated)?;
    }
    Ok((photos, persons))
}

/// One row of the drift report: one difference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DriftRow {
    pub person_id: String,
    /// `person_missing`, `group_missing`, `name_differs`, `tag_differs`,
    /// `face_missing`, `unreadable` (the service refused `getinfo`; `found` says how),
    /// `person_left_source` or `face_left_source` (the source no longer lists it and
    /// the service still holds it: what `enroll --mirror` would delete).
    /// `repaired` on those two means their deletion is queued for the next
    /// `enroll --mirror`.
    pub difference: String,
    pub face_id: String,
    /// The photo of a missing face, as the report names it.
    pub image: String,
    pub expected: String,
    pub found: String,
    /// Whether `--repair` marked it for the next enroll.
    pub repaired: bool,
}

/// Writes the drift report from the store's record of the verify, and the totals. A
/// verify that stopped before every person was checked counts what it has, and
/// leaves the drift report of the last one that finished as it was.
fn write_drift(store: &Store, done: &mut Verified, format: Format) -> anyhow::Result<()> {
    let file: Box<dyn std::io::Write> =
        if done.incomplete() {
            Box::new(std::io::sink())
        } else {
            Box::new(std::fs::File::create(&done.report).with_context(|| {
                format!("cannot write the drift report {}", done.report.display())
            })?)
        };
    let mut out = std::io::BufWriter::new(file);
    let mut csv = matches!(format, Format::Csv).then(|| csv::Writer::from_writer(Vec::new()));
    done.persons = 0;
    done.unrepaired = 0;
    done.faces_checked = 0;
    done.other_faces = 0;
    for item in store.verified_all() {
        let (person, entry) = item?;
        done.persons += 1;
        done.faces_checked += entry.faces_checked;
        done.other_faces += entry.other_faces;
        for d in &entry.differences {
            let row = drift_row(store, &person, d, entry.repaired)?;
            if !entry.repaired || matches!(d, Difference::Unreadable { .. }) {
                done.unrepaired += 1;
            }
            match d {
                Difference::PersonMissing => done.persons_missing += 1,
                Difference::FaceMissing { .. } => done.faces_missing += 1,
                Difference::PersonLeftSource { .. } => done.persons_left_source += 1,
                Difference::FaceLeftSource { .. } => done.faces_left_source += 1,
                _ => done.fields_differ += 1,
            }
            if entry.repaired
                && matches!(
                    d,
                    Difference::PersonLeftSource { .. } | Difference::FaceLeftSource { .. }
                )
            {
                done.deletions_queued += 1;
            }
            match &mut csv {
                Some(w) => w.serialize(&row)?,
                None => {
                    serde_json::to_writer(&mut out, &row)?;
                    std::io::Write::write_all(&mut out, b"\n")?;
                }
            }
        }
    }
    if let Some(w) = csv {
        // A header even when nothing differs, so a reader knows the columns.
        let mut bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        if bytes.is_empty() {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "person_id",
                "difference",
                "face_id",
                "image",
                "expected",
                "found",
                "repaired",
            ])?;
            bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        std::io::Write::write_all(&mut out, &bytes)?;
    }
    std::io::Write::flush(&mut out)
        .with_context(|| format!("cannot write the drift report {}", done.report.display()))?;
    Ok(())
}

fn drift_row(
    store: &Store,
    person: &str,
    d: &Difference,
    repaired: bool,
) -> anyhow::Result<DriftRow> {
    let row =
        |difference: &str, face_id: &str, image: String, expected: &str, found: &str| DriftRow {
            person_id: person.to_owned(),
            difference: difference.to_owned(),
            face_id: face_id.to_owned(),
            image,
            expected: expected.to_owned(),
            found: found.to_owned(),
            repaired,
        };
    Ok(match d {
        Difference::PersonMissing => row(
            "person_missing",
            "",
            String::new(),
            "on the service",
            "missing",
        ),
        Difference::GroupMissing { group } => row("group_missing", "", String::new(), group, ""),
        Difference::NameDiffers { expected, found } => {
            row("name_differs", "", String::new(), expected, found)
        }
        Difference::TagDiffers { expected, found } => {
            row("tag_differs", "", String::new(), expected, found)
        }
        Difference::Unreadable { reason } => {
            row("unreadable", "", String::new(), "readable", reason)
        }
        Difference::FaceMissing { face_id, photo } => {
            let image = store
                .photo(&PhotoKey::from_bytes(photo))?
                .map(|e| e.image.to_string())
                .unwrap_or_default();
            row("face_missing", face_id, image, "on the person", "missing")
        }
        Difference::PersonLeftSource { faces } => row(
            "person_left_source",
            "",
            String::new(),
            "deleted (the source no longer lists it)",
            &format!("on the service with {faces} faces of the job"),
        ),
        Difference::FaceLeftSource { face_id, photo } => {
            let image = store
                .photo(&PhotoKey::from_bytes(photo))?
                .map(|e| e.image.to_string())
                .unwrap_or_default();
            row(
                "face_left_source",
                face_id,
                image,
                "deleted (its photo left the source)",
                "on the person",
            )
        }
    })
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{GroupId, PersonId};
    use crate::store::PersonFields;

    fn person() -> PersonEntry {
        PersonEntry {
            person: PersonId::new("alice").unwrap(),
            fields: PersonFields {
                groups: vec![GroupId::new("staff").unwrap(), GroupId::new("lab").unwrap()],
                name: Some("Alice".into()),
                tag: None,
            },
            state: PersonState::Ready { created: true },
            generation: 1,
        }
    }

    fn info(faces: &[&str], groups: &[&str], name: &str) -> GetInfoData {
        GetInfoData {
            person_id: "alice".into(),
            person_name: name.into(),
            face_ids: faces.iter().map(|s| s.to_string()).collect(),
            group_ids: groups.iter().map(|s| s.to_string()).collect(),
            tag: "any".into(),
            session_id: String::new(),
        }
    }

    fn faces(ids: &[&str]) -> Vec<(String, Vec<u8>)> {
        ids.iter()
            .map(|i| (i.to_string(), i.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn a_person_as_recorded_has_no_difference_and_other_faces_are_counted() {
        let e = compare(
            &person(),
            Some(&info(&["1", "2", "9"], &["lab", "staff", "x"], "Alice")),
            &faces(&["1", "2"]),
        );
        assert_eq!(e.differences, []);
        assert_eq!((e.faces_checked, e.other_faces), (2, 1));
    }

    #[test]
    fn each_difference_is_named() {
        let e = compare(
            &person(),
            Some(&info(&["2"], &["staff"], "Bob")),
            &faces(&["1", "2"]),
        );
        assert_eq!(
            e.differences,
            [
                Difference::GroupMissing {
                    group: "lab".into()
                },
                Difference::NameDiffers {
                    expected: "Alice".into(),
                    found: "Bob".into()
                },
                Difference::FaceMissing {
                    face_id: "1".into(),
                    photo: b"1".to_vec()
                },
            ]
        );
        let e = compare(&person(), None, &faces(&["1"]));
        assert_eq!(e.differences, [Difference::PersonMissing]);
    }
}
