//! What may be taken back from one person, decided from the job's records and the
//! person as the service holds it now. Pure: no call, no store.

use crate::model::GroupId;
use crate::service::api::GetInfoData;
use crate::store::{BeforeEntry, RollbackEntry};
use std::collections::BTreeSet;

/// How the job came to hold a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The job's `newperson` created it (answered, or told by [`creation`]).
    Created,
    /// The job sent a `newperson` for it whose outcome it never learnt.
    CreationInDoubt,
    /// It existed before the job: how the job found it.
    Found(BeforeEntry),
    /// The job never sent a call that could change it: nothing to undo.
    NeverSent,
    /// The job changed it but cannot tell how it came to hold it: left, with the
    /// reason.
    NotPut { reason: String },
}

/// What the job recorded of one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub origin: Origin,
    /// Faces the job recorded adding, by the id the service answered.
    pub face_ids: Vec<String>,
    /// Faces the job recorded adding without an id (a lost answer confirmed later by
    /// "duplicate face"): known by count only.
    pub confirmed: u64,
    /// Photos the job sent in a call whose answer it never recorded (lost, or the
    /// job was killed, ran out of disk or was stopped by a second Ctrl-C): each may
    /// be a face on the person, known by count only.
    pub in_doubt: u64,
    /// The groups the job put the person in.
    pub groups: Vec<GroupId>,
    /// The name and tag the job last set (`None`: the job set none).
    pub name: Option<String>,
    pub tag: Option<String>,
}

/// A person as `getinfo` reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub tag: String,
    pub groups: Vec<String>,
    pub face_ids: Vec<String>,
}

impl From<GetInfoData> for Found {
    fn from(info: GetInfoData) -> Found {
        Found {
            name: info.person_name,
            tag: info.tag,
            groups: info.group_ids,
            face_ids: info.face_ids,
        }
    }
}

impl Found {
    /// The person as the job left it, by the job's records alone: what a dry run
    /// plans against, since it reads nothing. Faces confirmed without an id stand in
    /// as ids no real face has.
    pub fn as_left(record: &JobRecord) -> Found {
        let groups = record.groups.iter().map(|g| g.as_str().to_owned());
        let confirmed = (0..record.confirmed).map(|i| format!("(confirmed {i})"));
        let mut found = match &record.origin {
            Origin::Found(before) => Found {
                name: before.name.clone(),
                tag: before.tag.clone(),
                groups: before.groups.clone(),
                face_ids: before.face_ids.clone(),
            },
            Origin::CreationInDoubt => Found {
                face_ids: vec!["(the seed)".into()],
                ..Found::default()
            },
            _ => Found::default(),
        };
        for group in groups {
            if !found.groups.contains(&group) {
                found.groups.push(group);
            }
        }
        found.face_ids.extend(record.face_ids.iter().cloned());
        found.face_ids.extend(confirmed);
        if let Some(name) = &record.name {
            found.name = name.clone();
        }
        if let Some(tag) = &record.tag {
            found.tag = tag.clone();
        }
        found
    }
}

/// One call of an undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    DelPerson,
    DelFace { face_ids: Vec<String> },
    DelGroupIds { groups: Vec<GroupId> },
    SetInfo { name: String, tag: String },
}

/// The calls that undo the job's work on one person, and what the store records
/// once they are answered (with the reasons for anything left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub steps: Vec<Step>,
    pub outcome: RollbackEntry,
}

impl Decision {
    fn none(outcome: RollbackEntry) -> Decision {
        Decision {
            steps: Vec::new(),
            outcome,
        }
    }
}

/// Whether a person that answered "person exists" to a `newperson` whose earlier
/// attempt (or earlier run) went unanswered is the one that call made: it holds
/// exactly what the call would have made, one face (the seed), the job's groups
/// and no other, and the job's name and tag (the service's empty ones where the job
/// gives none). A person that existed before holds the same only if it is, on the
/// service, what the job's call would have made.
pub fn creation(found: &Found, groups: &[GroupId], name: Option<&str>, tag: Option<&str>) -> bool {
    let wanted: BTreeSet<&str> = groups.iter().map(GroupId::as_str).collect();
    let held: BTreeSet<&str> = found.groups.iter().map(String::as_str).collect();
    found.face_ids.len() == 1
        && held == wanted
        && found.name == name.unwrap_or_default()
        && found.tag == tag.unwrap_or_default()
}

/// Decides the undo of one person: `found` is the person as read just before
/// (`None`: the service does not have it).
///
/// - A person the job created is deleted only if every face it holds is one the
///   job added (by id, or by count for those confirmed without an id), it is in no
///   group but the job's, and its name and tag are what the job set. Otherwise it
///   was changed since by someone else (or deleted and made again): when it holds
///   faces of others, the job's faces are taken off and the rest stays; when it
///   holds only the job's faces, it stays whole, since taking them would leave a
///   person with no face.
/// - A person whose creation is in doubt is deleted if it holds what the job's call
///   would have made ([`creation`], with the job's later faces added); otherwise it
///   stays whole.
/// - A person the job found loses the job's faces and the groups the job added
///   (unless that would leave it in no group), and gets back the name and tag it
///   had, each only if it still holds what the job set.
pub fn undo(record: &JobRecord, found: Option<&Found>) -> Decision {
    let before = match &record.origin {
        Origin::NotPut { reason } => {
            return Decision::none(RollbackEntry::Left {
                reason: reason.clone(),
            })
        }
        Origin::NeverSent => return Decision::none(RollbackEntry::Gone),
        Origin::Found(before) => Some(before),
        Origin::Created | Origin::CreationInDoubt => None,
    };
    let Some(found) = found else {
        return Decision::none(RollbackEntry::Gone);
    };
    match before {
        Some(before) => undo_found(record, before, found),
        None => undo_created(record, found),
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn undo_created(record: &JobRecord, found: &Found) -> Decision {
    let creation_in_doubt = record.origin == Origin::CreationInDoubt;
    let job_faces: Vec<String> = found
        .face_ids
        .iter()
        .filter(|f| record.face_ids.contains(f))
        .cloned()
        .collect();
    let others = found.face_ids.len() - job_faces.len();
    // Faces the job made without learning their id: those confirmed, and those its
    // photos in doubt may have made (the seed of a creation in doubt among them).
    let unknown_allowed =
        record.confirmed as usize + (record.in_doubt as usize).max(usize::from(creation_in_doubt));
    let unaccounted = others.saturating_sub(unknown_allowed);
    let mut reasons = Vec::new();
    if unaccounted > 0 {
        reasons.push(if job_faces.is_empty() && unknown_allowed == 0 {
            format!(
                "it holds none of the job's faces and {others} others: it was deleted and \
                 made again by someone else"
            )
        } else {
            format!("it holds {unaccounted} faces the job did not add")
        });
    }
    let extra: Vec<&str> = found
        .groups
        .iter()
        .filter(|g| !record.groups.iter().any(|j| j.as_str() == g.as_str()))
        .map(String::as_str)
        .collect();
    if !extra.is_empty() {
        reasons.push(format!(
            "someone put it in groups the job did not: {}",
            extra.join(",")
        ));
    }
    let name = record.name.clone().unwrap_or_default();
    if found.name != name {
        reasons.push(format!(
            "its name was changed to {} since the job set {}",
            quoted(&found.name),
            quoted(&name)
        ));
    }
    let tag = record.tag.clone().unwrap_or_default();
    if found.tag != tag {
        reasons.push(format!(
            "its tag was changed to {} since the job set {}",
            quoted(&found.tag),
            quoted(&tag)
        ));
    }
    if creation_in_doubt && unaccounted == 0 && found.face_ids.is_empty() {
        reasons.push("it holds no face, not even the seed the job's call sent".into());
    }
    if reasons.is_empty() {
        return Decision {
            steps: vec![Step::DelPerson],
            outcome: RollbackEntry::Deleted,
        };
    }
    if unaccounted > 0 && !job_faces.is_empty() {
        reasons
            .push("the job's faces were taken off; its groups stay with the others' faces".into());
        return Decision {
            steps: vec![Step::DelFace {
                face_ids: job_faces,
            }],
            outcome: RollbackEntry::Partly { reasons },
        };
    }
    Decision::none(RollbackEntry::Left {
        reason: reasons.join("; "),
    })
}

fn undo_found(record: &JobRecord, before: &BeforeEntry, found: &Found) -> Decision {
    let mut steps = Vec::new();
    let mut reasons = Vec::new();
    let face_ids: Vec<String> = found
        .face_ids
        .iter()
        .filter(|f| record.face_ids.contains(f) && !before.face_ids.contains(f))
        .cloned()
        .collect();
    if !face_ids.is_empty() {
        steps.push(Step::DelFace { face_ids });
    }
    if record.confirmed > 0 {
        reasons.push(format!(
            "{} faces the job added have no known id and stay; compare `faceenroll faces \
             PERSON` with the faces it had before",
            record.confirmed
        ));
    }
    if record.in_doubt > 0 {
        reasons.push(format!(
            "{} photos the job sent without learning the answer may be faces on it, with \
             no known id, and stay; compare `faceenroll faces PERSON` with the faces it \
             had before",
            record.in_doubt
        ));
    }
    let added: Vec<GroupId> = record
        .groups
        .iter()
        .filter(|g| !before.groups.iter().any(|b| b == g.as_str()))
        .filter(|g| found.groups.iter().any(|f| f == g.as_str()))
        .cloned()
        .collect();
    let kept = found
        .groups
        .iter()
        .filter(|f| !added.iter().any(|g| g.as_str() == f.as_str()))
        .count();
    if !added.is_empty() {
        if kept == 0 {
            let names: Vec<&str> = added.iter().map(GroupId::as_str).collect();
            reasons.push(format!(
                "it stays in {}: it is in no other group now",
                names.join(",")
            ));
        } else {
            steps.push(Step::DelGroupIds { groups: added });
        }
    }
    // Each field goes back only if it still holds what the job set.
    let field =
        |what: &str, set: &Option<String>, had: &str, now: &str, reasons: &mut Vec<String>| {
            match set {
                Some(set) if set != had => {
                    if now == set {
                        Some(had.to_owned())
                    } else {
                        if now != had {
                            reasons.push(format!(
                                "its {what} was changed to {} since the job set {}",
                                quoted(now),
                                quoted(set)
                            ));
                        }
                        None
                    }
                }
                _ => None,
            }
        };
    let name = field(
        "name",
        &record.name,
        &before.name,
        &found.name,
        &mut reasons,
    );
    let tag = field("tag", &record.tag, &before.tag, &found.tag, &mut reasons);
    if name.is_some() || tag.is_some() {
        steps.push(Step::SetInfo {
            name: name.unwrap_or_else(|| found.name.clone()),
            tag: tag.unwrap_or_else(|| found.tag.clone()),
        });
    }
    let outcome = if reasons.is_empty() {
        RollbackEntry::Restored
    } else {
        RollbackEntry::Partly { reasons }
    };
    Decision { steps, outcome }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn group(g: &str) -> GroupId {
        GroupId::new(g).unwrap()
    }

    fn created(faces: &[&str], confirmed: u64) -> JobRecord {
        JobRecord {
            origin: Origin::Created,
            face_ids: ids(faces),
            confirmed,
            in_doubt: 0,
            groups: vec![group("staff")],
            name: Some("Ann".into()),
            tag: None,
        }
    }

    fn found(faces: &[&str], groups: &[&str], name: &str, tag: &str) -> Found {
        Found {
            name: name.into(),
            tag: tag.into(),
            groups: ids(groups),
            face_ids: ids(faces),
        }
    }

    fn left(d: &Decision) -> &str {
        match &d.outcome {
            RollbackEntry::Left { reason } => reason,
            other => panic!("not left: {other:?}"),
        }
    }

    #[test]
    fn a_person_holding_only_what_the_job_made_is_deleted() {
        let d = undo(
            &created(&["f1", "f2"], 1),
            Some(&found(&["f1", "f2", "x"], &["staff"], "Ann", "")),
        );
        assert_eq!(d.steps, [Step::DelPerson]);
        assert_eq!(d.outcome, RollbackEntry::Deleted);
        // Its faces by count: one confirmed face accounts for one unknown id, not two.
        let d = undo(
            &created(&["f1"], 1),
            Some(&found(&["f1", "x", "y"], &["staff"], "Ann", "")),
        );
        assert_eq!(
            d.steps,
            [Step::DelFace {
                face_ids: ids(&["f1"])
            }]
        );
        assert!(
            matches!(&d.outcome, RollbackEntry::Partly { reasons } if reasons[0].contains("1 faces the job did not add"))
        );
    }

    #[test]
    fn a_person_deleted_and_made_again_by_someone_else_is_left_whole() {
        let d = undo(
            &created(&["f1", "f2"], 0),
            Some(&found(&["g1", "g2", "g3"], &["staff"], "Ann", "")),
        );
        assert_eq!(d.steps, []);
        assert!(
            left(&d).contains("deleted and made again by someone else"),
            "{d:?}"
        );
    }

    #[test]
    fn a_created_person_renamed_since_is_left_with_its_faces() {
        let d = undo(
            &created(&["f1"], 0),
            Some(&found(&["f1"], &["staff"], "Manual", "tm")),
        );
        assert_eq!(d.steps, []);
        let reason = left(&d);
        assert!(
            reason.contains("name was changed to \"Manual\""),
            "{reason}"
        );
        assert!(reason.contains("tag was changed to \"tm\""), "{reason}");
        let d = undo(
            &created(&["f1"], 0),
            Some(&found(&["f1"], &["staff", "vip"], "Ann", "")),
        );
        assert!(left(&d).contains("vip"));
    }

    #[test]
    fn a_person_no_longer_on_the_service_needs_no_call() {
        for origin in [
            Origin::Created,
            Origin::CreationInDoubt,
            Origin::Found(BeforeEntry::default()),
            Origin::NeverSent,
        ] {
            let record = JobRecord {
                origin,
                ..created(&["f1"], 0)
            };
            assert_eq!(undo(&record, None), Decision::none(RollbackEntry::Gone));
        }
        let record = JobRecord {
            origin: Origin::NotPut {
                reason: "no record".into(),
            },
            ..created(&[], 0)
        };
        assert_eq!(left(&undo(&record, None)), "no record");
    }

    #[test]
    fn faces_of_photos_in_doubt_are_the_jobs_by_count() {
        // The job stopped before recording an addface of three photos.
        let record = JobRecord {
            in_doubt: 3,
            ..created(&["f1"], 0)
        };
        let now = found(&["f1", "x", "y", "z"], &["staff"], "Ann", "");
        assert_eq!(undo(&record, Some(&now)).steps, [Step::DelPerson]);
        let more = found(&["f1", "w", "x", "y", "z"], &["staff"], "Ann", "");
        assert_ne!(undo(&record, Some(&more)).steps, [Step::DelPerson]);
        // On a person the job found, they cannot be told from the others: said.
        let record = JobRecord {
            in_doubt: 2,
            ..found_record()
        };
        let now = found(
            &["f1", "f2", "x", "y"],
            &["old", "new"],
            "New Name",
            "job-tag",
        );
        match undo(&record, Some(&now)).outcome {
            RollbackEntry::Partly { reasons } => assert!(reasons[0].contains("2 photos")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_creation_in_doubt_is_the_jobs_when_it_holds_what_the_call_made() {
        let record = JobRecord {
            origin: Origin::CreationInDoubt,
            ..created(&[], 0)
        };
        let d = undo(&record, Some(&found(&["seed"], &["staff"], "Ann", "")));
        assert_eq!(d.steps, [Step::DelPerson]);
        // Two faces the job knows nothing of: it existed before, or was changed since.
        let d = undo(&record, Some(&found(&["a", "b"], &["staff"], "Ann", "")));
        assert_eq!(d.steps, []);
        assert!(left(&d).contains("1 faces the job did not add"), "{d:?}");
        let d = undo(&record, Some(&found(&[], &["staff"], "Ann", "")));
        assert_eq!(d.steps, []);
    }

    #[test]
    fn creation_is_told_by_one_face_the_jobs_groups_name_and_tag() {
        let groups = [group("a"), group("b")];
        let made = found(&["f"], &["b", "a"], "Ann", "");
        assert!(creation(&made, &groups, Some("Ann"), None));
        assert!(!creation(&made, &groups, Some("Bob"), None));
        assert!(!creation(&made, &groups, Some("Ann"), Some("t")));
        assert!(!creation(&made, &groups[..1], Some("Ann"), None));
        let two = found(&["f", "g"], &["a", "b"], "Ann", "");
        assert!(!creation(&two, &groups, Some("Ann"), None));
    }

    fn found_record() -> JobRecord {
        JobRecord {
            origin: Origin::Found(BeforeEntry {
                name: "Old Name".into(),
                tag: "old-tag".into(),
                groups: ids(&["old"]),
                face_ids: ids(&["f1", "f2"]),
            }),
            face_ids: ids(&["f2", "f3", "f4"]),
            confirmed: 0,
            in_doubt: 0,
            groups: vec![group("old"), group("new")],
            name: Some("New Name".into()),
            tag: Some("job-tag".into()),
        }
    }

    #[test]
    fn a_person_found_loses_what_the_job_added_only() {
        let now = found(
            &["f1", "f2", "f3", "f4", "o"],
            &["old", "new"],
            "New Name",
            "job-tag",
        );
        let d = undo(&found_record(), Some(&now));
        assert_eq!(
            d.steps,
            [
                Step::DelFace {
                    face_ids: ids(&["f3", "f4"])
                },
                Step::DelGroupIds {
                    groups: vec![group("new")]
                },
                Step::SetInfo {
                    name: "Old Name".into(),
                    tag: "old-tag".into()
                },
            ]
        );
        assert_eq!(d.outcome, RollbackEntry::Restored);
    }

    #[test]
    fn a_name_changed_since_the_job_set_it_is_left_and_said() {
        let now = found(&["f1", "f3"], &["old", "new"], "Manual", "job-tag");
        let d = undo(&found_record(), Some(&now));
        assert_eq!(
            d.steps,
            [
                Step::DelFace {
                    face_ids: ids(&["f3"])
                },
                Step::DelGroupIds {
                    groups: vec![group("new")]
                },
                Step::SetInfo {
                    name: "Manual".into(),
                    tag: "old-tag".into()
                },
            ]
        );
        match &d.outcome {
            RollbackEntry::Partly { reasons } => {
                assert_eq!(reasons.len(), 1);
                assert!(reasons[0].contains("name was changed to \"Manual\""));
            }
            other => panic!("{other:?}"),
        }
        // Both changed: no setinfo at all.
        let now = found(&["f1"], &["old", "new"], "Manual", "tm");
        let d = undo(&found_record(), Some(&now));
        assert!(!d.steps.iter().any(|s| matches!(s, Step::SetInfo { .. })));
    }

    #[test]
    fn the_last_group_and_faces_without_an_id_stay_and_are_said() {
        let record = JobRecord {
            confirmed: 2,
            ..found_record()
        };
        let now = found(&["f1"], &["new"], "Old Name", "old-tag");
        let d = undo(&record, Some(&now));
        assert_eq!(d.steps, []);
        match &d.outcome {
            RollbackEntry::Partly { reasons } => {
                assert!(reasons[0].contains("2 faces the job added have no known id"));
                assert!(reasons[1].contains("it stays in new"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_dry_run_plans_against_the_person_as_the_job_left_it() {
        let record = created(&["f1"], 1);
        assert_eq!(
            undo(&record, Some(&Found::as_left(&record))).steps,
            [Step::DelPerson]
        );
        let record = found_record();
        let d = undo(&record, Some(&Found::as_left(&record)));
        assert_eq!(d.outcome, RollbackEntry::Restored);
        assert_eq!(d.steps.len(), 3);
        let record = JobRecord {
            origin: Origin::CreationInDoubt,
            ..created(&[], 0)
        };
        assert_eq!(
            undo(&record, Some(&Found::as_left(&record))).steps,
            [Step::DelPerson]
        );
    }
}
