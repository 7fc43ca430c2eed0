//! Mirror: what a run takes off the service because it left the source, and whether
//! the run may delete at all. Pure: no call, no store.
//!
//! Only what the job put on the service is within reach:
//!
//! - a person of the job that the source no longer lists is a [`Removal::Person`]:
//!   undone as `rollback` undoes it, decided by [`super::undo`] from the person as
//!   read just before (a person the job created is deleted only with that evidence;
//!   a person that existed before loses only the job's faces and groups);
//! - a photo the source no longer lists, whose face the job enrolled, of a person
//!   the source still lists, is a [`Removal::Photo`] (`delface` of that face);
//! - a photo changed in place (same path, new content) leaves the face of its old
//!   content, which the job enrolled: a [`Removal::Replaced`] (`delface`); the new
//!   content is enrolled as any new photo;
//! - a group the job put a person in and the source no longer lists for it is a
//!   [`Removal::Groups`] (`delgroupids`), never one the person had before the job
//!   or got from someone else, and never the person's last group.
//!
//! A person the source never named is not in the job's records, so never here; a
//! listed photo that cannot be read is still listed, so never removed.
//!
//! The guards ([`hold`]) come before the first deletion: a source with any error or
//! none listed deletes nothing, and neither does a run whose deletions pass
//! [`MaxDelete`] of what the job manages.

use super::JobRecord;
use crate::model::{GroupId, PersonId};
use crate::store::PhotoKey;
use std::fmt;
use std::str::FromStr;

/// The most one run may take off the service, for each kind on its own (persons,
/// faces, groups taken from persons): a count of each, or a share of what the job
/// holds of each. A person's deletion counts as one person and as each of its
/// faces, so a source missing 30% of its persons is held whatever the number of
/// photos a person has, and so is one missing a third of the photos.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxDelete {
    Count(u64),
    Percent(u32),
}

/// 10%: a nightly run over a source where a tenth of the persons or of the faces
/// left at once is more likely a wrong path or a half export than a real departure.
pub const DEFAULT_MAX_DELETE: MaxDelete = MaxDelete::Percent(10);

impl MaxDelete {
    /// The deletions of one kind allowed for a job holding `managed` of that kind
    /// (rounded down).
    pub fn limit(self, managed: u64) -> u64 {
        match self {
            MaxDelete::Count(n) => n,
            MaxDelete::Percent(p) => managed * u64::from(p) / 100,
        }
    }
}

impl fmt::Display for MaxDelete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxDelete::Count(n) => write!(f, "{n}"),
            MaxDelete::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl FromStr for MaxDelete {
    type Err = String;

    fn from_str(given: &str) -> Result<MaxDelete, String> {
        let given = given.trim();
        let form = || format!("expected a count (N) or a share (N%), not {given:?}");
        match given.strip_suffix('%') {
            Some(p) => {
                let p: u32 = p.trim().parse().map_err(|_| form())?;
                if p > 100 {
                    return Err(format!("a share of at most 100%, not {given:?}"));
                }
                Ok(MaxDelete::Percent(p))
            }
            None => given.parse().map(MaxDelete::Count).map_err(|_| form()),
        }
    }
}

/// Something of the job's that left the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// A person of the job the source no longer lists, with what the job recorded
    /// of it.
    Person { person: PersonId, record: JobRecord },
    /// A photo no longer listed whose face the job enrolled, of a person still
    /// listed.
    Photo {
        person: PersonId,
        key: PhotoKey,
        /// The photo as the source gave it (path or URL).
        photo: String,
        face_id: String,
    },
    /// The face of a photo's earlier content, the photo changed in place, of a
    /// person still listed.
    Replaced {
        person: PersonId,
        key: PhotoKey,
        photo: String,
        face_id: String,
    },
    /// Groups the job put a person still listed in, that its row no longer gives.
    Groups {
        person: PersonId,
        groups: Vec<GroupId>,
    },
    /// Photos no longer listed, of a person still listed, whose faces the service
    /// holds under ids it never gave the job (a lost answer, confirmed later as a
    /// duplicate): (key, photo). [`unlearned_faces`] tells them from the person's
    /// faces as read just before, or says why it cannot.
    Unlearned {
        person: PersonId,
        record: JobRecord,
        photos: Vec<(PhotoKey, String)>,
    },
}

impl Removal {
    /// What it takes off the service, toward `--max-delete`: a person with each
    /// face the job recorded on it, a face, or each group taken from a person.
    pub fn tally(&self) -> Tally {
        match self {
            Removal::Person { record, .. } => Tally {
                persons: 1,
                faces: record.face_ids.len() as u64 + record.confirmed,
                groups: 0,
            },
            Removal::Photo { .. } | Removal::Replaced { .. } => Tally {
                faces: 1,
                ..Tally::default()
            },
            Removal::Groups { groups, .. } => Tally {
                groups: groups.len() as u64,
                ..Tally::default()
            },
            Removal::Unlearned { photos, .. } => Tally {
                faces: photos.len() as u64,
                ..Tally::default()
            },
        }
    }
}

/// The faces of a person that are the job's faces of `gone` photos whose ids the
/// service never gave, as `found` (the person's face ids, read just before) shows
/// them: the faces that are not the job's known ones, when the job created the
/// person, no photo of it is in doubt, every photo with an unlearned face has left
/// the source, and the service holds exactly that many faces the job does not
/// know. Else why they cannot be told from the others.
pub fn unlearned_faces(
    record: &JobRecord,
    gone: usize,
    found: &[String],
) -> Result<Vec<String>, String> {
    let unknown: Vec<String> = found
        .iter()
        .filter(|f| !record.face_ids.contains(f))
        .cloned()
        .collect();
    if record.origin != super::Origin::Created {
        return Err(
            "the person was not created by the job, so faces of others may be \
                    among those the job does not know"
                .into(),
        );
    }
    if record.in_doubt > 0 {
        return Err(format!(
            "{} of its photos are in doubt (sent, answer not recorded)",
            record.in_doubt
        ));
    }
    if record.confirmed as usize != gone {
        return Err(format!(
            "{} of its photos still listed hold faces of unknown id too, and the service \
             does not say which face is which photo",
            (record.confirmed as usize).saturating_sub(gone)
        ));
    }
    if unknown.len() != gone {
        return Err(format!(
            "the service holds {} faces the job does not know, where {gone} would be the \
             job's",
            unknown.len()
        ));
    }
    Ok(unknown)
}

/// Persons, faces and groups of persons, counted by kind: what a run's deletions
/// take off the service, or what the job holds there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub persons: u64,
    pub faces: u64,
    /// Group memberships (a person in a group counts one).
    pub groups: u64,
}

impl Tally {
    pub fn is_empty(&self) -> bool {
        self.persons == 0 && self.faces == 0 && self.groups == 0
    }

    /// Each kind with its count and its name for one and for many.
    fn kinds(&self) -> [(u64, &'static str, &'static str); 3] {
        [
            (self.persons, "person", "persons"),
            (self.faces, "face", "faces"),
            (self.groups, "group of a person", "groups of persons"),
        ]
    }
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, other: Tally) {
        self.persons += other.persons;
        self.faces += other.faces;
        self.groups += other.groups;
    }
}

impl fmt::Display for Tally {
    /// `2 persons, 5 faces and 1 group of a person`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c] = self
            .kinds()
            .map(|(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }));
        write!(f, "{a}, {b} and {c}")
    }
}

/// The groups the job put a person in (`joined`) that the source no longer gives
/// it (`listed`), in the order the job joined them.
pub fn dropped_groups(joined: &[GroupId], listed: &[GroupId]) -> Vec<GroupId> {
    joined
        .iter()
        .filter(|g| !listed.contains(g))
        .cloned()
        .collect()
}

/// What may go of `dropped` for a person in `held` groups now (as `getinfo` reads
/// it): the dropped groups it is still in, unless taking them would leave it in no
/// group (then none: the person stays where it is, and the caller says so).
/// `Err` names the groups left when it would be its last.
pub fn groups_to_take(dropped: &[GroupId], held: &[String]) -> Result<Vec<GroupId>, Vec<GroupId>> {
    let take: Vec<GroupId> = dropped
        .iter()
        .filter(|g| held.iter().any(|h| h == g.as_str()))
        .cloned()
        .collect();
    let kept = held
        .iter()
        .filter(|h| !take.iter().any(|g| g.as_str() == h.as_str()))
        .count();
    if kept == 0 && !take.is_empty() {
        Err(take)
    } else {
        Ok(take)
    }
}

/// One person of the job as the store holds it, for [`removals`].
#[derive(Debug, Clone)]
pub struct Held {
    pub person: PersonId,
    pub record: JobRecord,
    /// Whether the latest plan lists any photo of it.
    pub listed: bool,
    /// Whether a mirror run deleted it already.
    pub removed_before: bool,
    /// Its photos no longer listed with the face the job enrolled for each: (key,
    /// photo, face id).
    pub gone_photos: Vec<(PhotoKey, String, String)>,
    /// Faces of its photos' earlier contents (changed in place): (key, photo, face
    /// id).
    pub replaced: Vec<(PhotoKey, String, String)>,
    /// Groups the job put it in that the source no longer gives it.
    pub dropped_groups: Vec<GroupId>,
    /// Its photos no longer listed whose faces the job holds without an id: (key,
    /// photo).
    pub gone_unlearned: Vec<(PhotoKey, String)>,
}

/// What left the source, within the job's reach.
pub fn removals(persons: impl IntoIterator<Item = Held>) -> Vec<Removal> {
    let mut out = Vec::new();
    for held in persons {
        if held.listed {
            for (key, photo, face_id) in held.gone_photos {
                out.push(Removal::Photo {
                    person: held.person.clone(),
                    key,
                    photo,
                    face_id,
                });
            }
            for (key, photo, face_id) in held.replaced {
                out.push(Removal::Replaced {
                    person: held.person.clone(),
                    key,
                    photo,
                    face_id,
                });
            }
            if !held.dropped_groups.is_empty() {
                out.push(Removal::Groups {
                    person: held.person.clone(),
                    groups: held.dropped_groups,
                });
            }
            if !held.gone_unlearned.is_empty() {
                out.push(Removal::Unlearned {
                    person: held.person.clone(),
                    record: held.record.clone(),
                    photos: held.gone_unlearned,
                });
            }
        } else if !held.removed_before
            && matches!(
                held.record.origin,
                super::Origin::Created | super::Origin::CreationInDoubt | super::Origin::Found(_)
            )
        {
            out.push(Removal::Person {
                person: held.person,
                record: held.record,
            });
        }
    }
    out
}

/// What the source's reading gave: enough to tell a source that can be trusted to
/// say what left.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceHealth {
    /// Photos the source listed.
    pub listed: usize,
    /// Unreadable folders, rows that failed to parse, listed photos that cannot be
    /// read.
    pub errors: usize,
    /// The first of those errors, each naming its place, so that the hold says
    /// which to fix (at most [`ERRORS_NAMED`]).
    pub named: Vec<String>,
}

/// How many of a source's errors a hold names.
pub const ERRORS_NAMED: usize = 3;

/// Why a run deletes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// The source had errors: how many, and the first of them.
    SourceErrors(usize, Vec<String>),
    EmptySource,
    /// The deletions of one kind (`what`: "persons", "faces", ...) pass the limit.
    OverLimit {
        what: &'static str,
        count: u64,
        limit: u64,
        max: MaxDelete,
        managed: u64,
    },
}

impl fmt::Display for Hold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hold::SourceErrors(n, named) => {
                write!(
                    f,
                    "the source had {n} {} (unreadable folders, rows or photos): a source \
                     read in part cannot tell what left it; fix them and run again",
                    if *n == 1 { "error" } else { "errors" }
                )?;
                if !named.is_empty() {
                    write!(f, " ({}", named.join("; "))?;
                    if *n > named.len() {
                        write!(f, "; and {} more: see the plan", n - named.len())?;
                    }
                    f.write_str(")")?;
                }
                Ok(())
            }
            Hold::EmptySource => f.write_str(
                "the source lists no photo: an unmounted share or a wrong path looks \
                 exactly like everyone leaving",
            ),
            Hold::OverLimit {
                what,
                count,
                limit,
                max,
                managed,
            } => {
                let run_with = match max {
                    MaxDelete::Count(_) => count.to_string(),
                    // The smallest share that lets them through.
                    MaxDelete::Percent(_) => format!("{}%", share_needed(*count, *managed)),
                };
                write!(
                    f,
                    "{count} {what} would leave the service, passing --max-delete {max} \
                     (at most {limit} of the {managed} {what} the job holds); check the \
                     source, then run with --max-delete {run_with} (or more) to let them \
                     through"
                )
            }
        }
    }
}

/// Whether a run may take `leaving` off the service, for a job holding `managed`
/// there: `None` if it may, else why not. Each kind is held to its own limit.
/// Checked before the first deletion; nothing to delete is never held.
pub fn hold(leaving: Tally, managed: Tally, health: &SourceHealth, max: MaxDelete) -> Option<Hold> {
    if leaving.is_empty() {
        return None;
    }
    if health.errors > 0 {
        return Some(Hold::SourceErrors(health.errors, health.named.clone()));
    }
    if health.listed == 0 {
        return Some(Hold::EmptySource);
    }
    leaving.kinds().into_iter().zip(managed.kinds()).find_map(
        |((count, _, what), (managed, _, _))| {
            let limit = max.limit(managed);
            (count > limit).then_some(Hold::OverLimit {
                what,
                count,
                limit,
                max,
                managed,
            })
        },
    )
}

/// The smallest whole share of `managed` that is at least `count` (at most 100).
fn share_needed(count: u64, managed: u64) -> u64 {
    if managed == 0 {
        return 100;
    }
    (count * 100).div_ceil(managed).min(100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deletion::Origin;
    use crate::model::ImageRef;

    fn record(origin: Origin) -> JobRecord {
        JobRecord {
            origin,
            face_ids: vec!["f1".into()],
            confirmed: 0,
            in_doubt: 0,
            groups: Vec::new(),
            name: None,
            tag: None,
        }
    }

    fn held(person: &str, origin: Origin, listed: bool, gone: &[&str]) -> Held {
        let person = PersonId::new(person).unwrap();
        Held {
            record: record(origin),
            listed,
            removed_before: false,
            gone_photos: gone
                .iter()
                .map(|f| {
                    let image = ImageRef::File(format!("{f}.jpg").into());
                    (
                        PhotoKey::new(person.as_str(), &image),
                        image.to_string(),
                        f.to_string(),
                    )
                })
                .collect(),
            replaced: Vec::new(),
            dropped_groups: Vec::new(),
            gone_unlearned: Vec::new(),
            person,
        }
    }

    fn g(names: &[&str]) -> Vec<GroupId> {
        names.iter().map(|n| GroupId::new(*n).unwrap()).collect()
    }

    #[test]
    fn groups_the_job_added_and_the_source_dropped_go_but_never_the_last() {
        let joined = g(&["staff", "night", "lab"]);
        assert_eq!(
            dropped_groups(&joined, &g(&["staff", "day"])),
            g(&["night", "lab"])
        );
        assert_eq!(dropped_groups(&joined, &joined), []);
        // Only those the person is still in; others keep it in a group.
        let held = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let dropped = g(&["night", "lab"]);
        assert_eq!(
            groups_to_take(&dropped, &held(&["staff", "night", "vip"])),
            Ok(g(&["night"]))
        );
        assert_eq!(groups_to_take(&dropped, &held(&["staff"])), Ok(vec![]));
        // Its last groups: none taken, named.
        assert_eq!(
            groups_to_take(&dropped, &held(&["night", "lab"])),
            Err(g(&["night", "lab"]))
        );
        assert_eq!(groups_to_take(&dropped, &held(&[])), Ok(vec![]));
    }

    #[test]
    fn a_listed_person_loses_its_replaced_faces_and_dropped_groups() {
        let mut kept = held("kept", Origin::Created, true, &[]);
        let image = ImageRef::File("kept/a.jpg".into());
        kept.replaced = vec![(
            PhotoKey::new("kept", &image),
            image.to_string(),
            "old".into(),
        )];
        kept.dropped_groups = g(&["night", "lab"]);
        let out = removals([kept]);
        assert!(matches!(&out[0], Removal::Replaced { face_id, .. } if face_id == "old"));
        assert!(
            matches!(&out[1], Removal::Groups { groups, .. } if *groups == g(&["night", "lab"]))
        );
        let mut tally = Tally::default();
        out.iter().for_each(|r| tally += r.tally());
        assert_eq!(
            tally,
            Tally {
                persons: 0,
                faces: 1,
                groups: 2
            }
        );
        // A person that left takes its groups with it: no group removal of its own.
        let mut gone = held("gone", Origin::Created, false, &[]);
        gone.dropped_groups = g(&["night"]);
        assert_eq!(removals([gone]).len(), 1);
    }

    #[test]
    fn unlearned_faces_are_told_apart_only_when_every_unknown_face_is_the_jobs() {
        let mut job = record(Origin::Created);
        job.confirmed = 2;
        let found = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            unlearned_faces(&job, 2, &found(&["f1", "u1", "u2"])),
            Ok(found(&["u1", "u2"]))
        );
        // One still listed: which face is which photo, the service does not say.
        assert!(unlearned_faces(&job, 1, &found(&["f1", "u1", "u2"])).is_err());
        // A face of someone else's beside them.
        assert!(unlearned_faces(&job, 2, &found(&["f1", "u1", "u2", "x"])).is_err());
        let mut doubt = job.clone();
        doubt.in_doubt = 1;
        assert!(unlearned_faces(&doubt, 2, &found(&["f1", "u1", "u2"])).is_err());
        let mut theirs = job.clone();
        theirs.origin = Origin::Found(Default::default());
        assert!(unlearned_faces(&theirs, 2, &found(&["f1", "u1", "u2"])).is_err());
    }

    #[test]
    fn max_delete_reads_a_count_or_a_share() {
        assert_eq!("5".parse(), Ok(MaxDelete::Count(5)));
        assert_eq!(" 10% ".parse(), Ok(MaxDelete::Percent(10)));
        assert!("101%".parse::<MaxDelete>().is_err());
        assert!("ten".parse::<MaxDelete>().is_err());
        assert_eq!(MaxDelete::Percent(10).limit(36), 3);
        assert_eq!(MaxDelete::Percent(100).limit(36), 36);
        assert_eq!(MaxDelete::Count(7).limit(36), 7);
        assert_eq!(MaxDelete::Percent(10).to_string(), "10%");
    }

    #[test]
    fn only_what_left_the_source_and_the_job_put_there_is_removed() {
        let out = removals([
            held("gone", Origin::Created, false, &[]),
            held("found", Origin::Found(Default::default()), false, &[]),
            held("kept", Origin::Created, true, &["f9"]),
            held("never", Origin::NeverSent, false, &[]),
            held(
                "unknown",
                Origin::NotPut {
                    reason: "no record".into(),
                },
                false,
                &[],
            ),
        ]);
        let names: Vec<String> = out
            .iter()
            .map(|r| match r {
                Removal::Person { person, .. } => format!("person {person}"),
                Removal::Photo {
                    person, face_id, ..
                } => format!("face {person} {face_id}"),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["person gone", "person found", "face kept f9"]);
        // Deleted by an earlier mirror run: not again.
        let mut again = held("gone", Origin::Created, false, &[]);
        again.removed_before = true;
        assert_eq!(removals([again]), []);
    }

    fn tally(persons: u64, faces: u64, groups: u64) -> Tally {
        Tally {
            persons,
            faces,
            groups,
        }
    }

    #[test]
    fn a_source_with_errors_or_nothing_listed_deletes_nothing() {
        let sound = SourceHealth {
            listed: 30,
            ..SourceHealth::default()
        };
        let max = DEFAULT_MAX_DELETE;
        let job = tally(30, 90, 30);
        assert_eq!(hold(tally(3, 9, 0), job, &sound, max), None);
        let broken = SourceHealth {
            errors: 2,
            named: vec!["tree/p1/a.jpg: cannot be read".into()],
            ..sound.clone()
        };
        let held = hold(tally(0, 1, 0), job, &broken, max).unwrap();
        assert!(matches!(held, Hold::SourceErrors(2, _)));
        assert!(
            held.to_string()
                .contains("(tree/p1/a.jpg: cannot be read; and 1 more: see the plan)"),
            "{held}"
        );
        assert_eq!(
            hold(
                tally(1, 3, 0),
                job,
                &SourceHealth {
                    listed: 0,
                    ..sound.clone()
                },
                max
            ),
            Some(Hold::EmptySource)
        );
        // Nothing to delete: nothing held, whatever the source.
        let broken = SourceHealth {
            listed: 0,
            errors: 1,
            named: Vec::new(),
        };
        assert_eq!(hold(Tally::default(), job, &broken, max), None);
    }

    #[test]
    fn each_kind_is_held_to_its_own_share_whatever_the_faces_of_a_person() {
        let sound = SourceHealth {
            listed: 63,
            ..SourceHealth::default()
        };
        // 10 persons of 9 photos, 3 gone: 30% of the persons and of the faces.
        let job = tally(10, 90, 10);
        let held = hold(tally(3, 27, 0), job, &sound, DEFAULT_MAX_DELETE).unwrap();
        assert_eq!(
            held,
            Hold::OverLimit {
                what: "persons",
                count: 3,
                limit: 1,
                max: DEFAULT_MAX_DELETE,
                managed: 10
            }
        );
        let words = held.to_string();
        assert!(
            words.contains("3 persons would leave")
                && words.contains("--max-delete 10%")
                && words.contains("run with --max-delete 30%"),
            "{words}"
        );
        // 30% of persons of one face among persons of 20: few faces, still held.
        let mixed = tally(100, 30 + 70 * 20, 100);
        assert!(matches!(
            hold(tally(30, 30, 0), mixed, &sound, DEFAULT_MAX_DELETE),
            Some(Hold::OverLimit {
                what: "persons",
                ..
            })
        ));
        // A third of the faces, no person: held on the faces.
        assert!(matches!(
            hold(tally(0, 30, 0), job, &sound, DEFAULT_MAX_DELETE),
            Some(Hold::OverLimit {
                what: "faces",
                count: 30,
                limit: 9,
                ..
            })
        ));
        // Groups have their share too.
        assert!(matches!(
            hold(tally(0, 0, 2), job, &sound, DEFAULT_MAX_DELETE),
            Some(Hold::OverLimit {
                what: "groups of persons",
                ..
            })
        ));
        // One person of 9 faces in a job of 100 persons: within every share.
        let big = tally(100, 900, 100);
        assert_eq!(hold(tally(1, 9, 0), big, &sound, DEFAULT_MAX_DELETE), None);
        assert_eq!(
            hold(tally(10, 90, 0), job, &sound, MaxDelete::Percent(100)),
            None
        );
        assert_eq!(
            hold(tally(3, 27, 0), job, &sound, MaxDelete::Count(27)),
            None
        );
        assert!(hold(tally(3, 27, 0), job, &sound, MaxDelete::Count(26)).is_some());
    }

    #[test]
    fn a_person_left_in_only_the_group_the_source_dropped_keeps_it() {
        let held = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            groups_to_take(&g(&["night"]), &held(&["night"])),
            Err(g(&["night"]))
        );
        // In another group as well: the dropped one goes.
        assert_eq!(
            groups_to_take(&g(&["night"]), &held(&["night", "staff"])),
            Ok(g(&["night"]))
        );
    }

    #[test]
    fn max_delete_takes_a_share_up_to_all() {
        assert_eq!("100%".parse(), Ok(MaxDelete::Percent(100)));
        assert_eq!("0%".parse(), Ok(MaxDelete::Percent(0)));
        assert!("100.5%".parse::<MaxDelete>().is_err());
    }
}
