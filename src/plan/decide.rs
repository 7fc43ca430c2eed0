//! Phase 2 of a pass, one person at a time: the person's fields merged, each photo's
//! state decided (kept from an earlier run, invalid, duplicate, over the cap or
//! pending), the calls counted, and the person and its photos written to the store.

use super::check::{Row, Verdict};
use super::shared::Contents;
use super::sort::Sorted;
use super::{calls, Pass, PlanError, PlanOptions, PlanSummary, ProblemStatus, BATCH};
use crate::chunk::ChunkItem;
use crate::limits::MAX_FACES_PER_PERSON;
use crate::model::{ContentHash, GroupId, PersonId};
use crate::source::{Cells, Problem, ProblemKind};
use crate::store::{
    Failure, FailureKind, GivenFields, Origin, PersonEntry, PersonFields, PersonState, PhotoEntry,
    PhotoKey, PhotoState, Store, StoreError,
};
use std::collections::{BTreeMap, HashMap};
use std::iter::Peekable;

/// Threads writing a pass's photos into the store.
const WRITERS: usize = 1;
/// Phase 2: reads the sorted rows person by person, decides each person and writes
/// its photos (on a writer thread, so deciding and writing overlap).
pub(super) fn decide(
    store: &Store,
    mut sorted: Sorted,
    pass: &Pass<'_>,
    options: &PlanOptions,
    summary: &mut PlanSummary,
    contents: &mut Contents,
) -> Result<(), PlanError> {
    // A store without photos has no earlier entries to look up.
    let fresh = store.has_no_photos();
    let (send, receive) = crossbeam_channel::bounded::<Vec<(PhotoKey, PhotoEntry)>>(2);
    std::thread::scope(|scope| {
        // Batches hold neighbouring keys, so writers on different batches mostly
        // work on different parts of the tree.
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let receive = receive.clone();
                scope.spawn(move || {
                    for batch in receive {
                        for (key, entry) in &batch {
                            store.put_photo(key, entry)?;
                        }
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .collect();
        drop(receive);
        let result = (|| {
            let mut known = Known::new(store, pass, fresh)?;
            let mut out = Vec::with_capacity(BATCH);
            let mut rows: Vec<(PhotoKey, Row)> = Vec::new();
            for item in sorted.by_ref() {
                let (key, row) = item?;
                if rows.first().is_some_and(|(_, r)| r.person != row.person) {
                    plan_person(
                        store, fresh, &mut known, &mut rows, pass, options, summary, contents,
                        &mut out,
                    )?;
                    if out.len() >= BATCH && send.send(std::mem::take(&mut out)).is_err() {
                        break;
                    }
                }
                rows.push((key, row));
            }
            if !rows.is_empty() {
                plan_person(
                    store, fresh, &mut known, &mut rows, pass, options, summary, contents, &mut out,
                )?;
            }
            known.retire_rest(&mut out)?;
            tracing::debug!(
                "plan: {} photo entries left the source and were retired",
                known.retired
            );
            let _ = send.send(out);
            Ok::<_, PlanError>(())
        })();
        drop(send);
        let written: Vec<_> = writers
            .into_iter()
            .map(|w| w.join().expect("a store writer does not panic"))
            .collect();
        result?;
        written.into_iter().collect::<Result<(), _>>()?;
        Ok(())
    })
}

type Entries<'s> =
    std::iter::Fuse<Box<dyn Iterator<Item = Result<(PhotoKey, PhotoEntry), StoreError>> + 's>>;

/// The photos the store holds, read once in key order beside the sorted rows (both
/// go person by person): each person's earlier entries, and the entries of persons
/// the pass does not list. An entry the pass does not list is retired when the
/// pass's source is the one that listed it last, or when no other source of the job
/// did; an entry listed last by another source stays as it is.
///
/// The pass writes the entries of a person once the cursor is past them, so the
/// cursor never reads an entry the pass wrote: it is fused (an iterator of the tree
/// that reached its end would go on with the entries written since), and on a fresh
/// store it reads nothing.
pub(super) struct Known<'s> {
    photos: Peekable<Entries<'s>>,
    /// The job's sources with their latest plan, this pass's included.
    sources: BTreeMap<String, u64>,
    source: String,
    /// The generation of the source's previous plan.
    previous: u64,
    /// Entries retired by this pass.
    retired: usize,
}

impl<'s> Known<'s> {
    pub(super) fn new(
        store: &'s Store,
        pass: &Pass<'_>,
        fresh: bool,
    ) -> Result<Known<'s>, StoreError> {
        let photos: Box<dyn Iterator<Item = _>> = if fresh {
            Box::new(std::iter::empty())
        } else {
            Box::new(store.photos())
        };
        Ok(Known {
            photos: photos.fuse().peekable(),
            sources: store.meta()?.sources,
            source: pass.source.to_owned(),
            previous: pass.previous,
            retired: 0,
        })
    }

    /// The earlier entries of `person`. Entries of the persons before it in key
    /// order, which the pass does not list, are retired (queued in `out`).
    fn take(
        &mut self,
        person: &str,
        out: &mut Vec<(PhotoKey, PhotoEntry)>,
    ) -> Result<HashMap<PhotoKey, PhotoEntry>, StoreError> {
        let prefix = PhotoKey::person_prefix(person);
        let mut old = HashMap::new();
        loop {
            let before = match self.photos.peek() {
                None => break,
                Some(Err(_)) => return Err(self.photos.next().expect("peeked").unwrap_err()),
                Some(Ok((key, _))) if key.as_bytes().starts_with(&prefix) => false,
                Some(Ok((key, _))) if key.as_bytes() < prefix.as_slice() => true,
                Some(Ok(_)) => break,
            };
            let (key, entry) = self.photos.next().expect("peeked")?;
            if before {
                self.retire(key, entry, out);
            } else {
                old.insert(key, entry);
            }
        }
        Ok(old)
    }

    /// Retires `entry`, which the pass does not list, if it belongs to the pass.
    fn retire(
        &mut self,
        key: PhotoKey,
        mut entry: PhotoEntry,
        out: &mut Vec<(PhotoKey, PhotoEntry)>,
    ) {
        let ours = entry
            .source
            .as_deref()
            .is_none_or(|s| s == self.source || !self.sources.contains_key(s));
        if ours && !entry.retired {
            entry.retired = true;
            if entry.source.as_deref() == Some(self.source.as_str()) {
                // Read as seen by this pass; last seen by the source's previous one.
                entry.generation = self.previous;
            }
            self.retired += 1;
            out.push((key, entry));
        }
    }

    /// Retires the entries after the last person the pass lists.
    fn retire_rest(&mut self, out: &mut Vec<(PhotoKey, PhotoEntry)>) -> Result<(), StoreError> {
        while let Some(item) = self.photos.next() {
            let (key, entry) = item?;
            self.retire(key, entry, out);
        }
        Ok(())
    }
}

/// Decides one person from its rows (drained from `rows`, sorted by key then source
/// order) and what the store knew of it, and queues in `out` its photos that are new
/// or changed and those of its earlier entries the pass retires.
#[allow(clippy::too_many_arguments)]
pub(super) fn plan_person(
    store: &Store,
    fresh: bool,
    known: &mut Known<'_>,
    rows: &mut Vec<(PhotoKey, Row)>,
    pass: &Pass<'_>,
    options: &PlanOptions,
    summary: &mut PlanSummary,
    contents: &mut Contents,
    out: &mut Vec<(PhotoKey, PhotoEntry)>,
) -> Result<(), PlanError> {
    for problem in drop_relisted(rows, summary) {
        super::not_taken(store, pass, problem, summary)?;
    }
    rows.sort_by_key(|(_, r)| r.seq);
    let person = rows[0].1.person.clone();
    let mut old = if fresh {
        HashMap::new()
    } else {
        known.take(&person, out)?
    };
    if let Some(from) = pass.moved_from {
        super::moved::adopt(store, &person, rows, &mut old, from, out)?;
    }
    record_replaced(store, rows, &old)?;
    let merged = merge_fields(&person, rows);
    let (carries, line_errors) = first_states(&person, rows, &merged, &old, options);
    let mut held = Held::count(rows, &carries, &old);
    let states = dedupe_and_cap(store, &person, rows, carries, &mut held, &old)?;
    if merged.person_error.is_none() && !merged.no_group() {
        write_person(
            store,
            fresh,
            &person,
            merged.fields,
            rows,
            &states,
            &held,
            pass,
            options,
            summary,
        )?;
    } else if !fresh
        && states
            .iter()
            .any(|s| matches!(s, PhotoState::Enrolled { .. }))
    {
        // Enrolled before, and its lines are unusable now: the person stays on the
        // service as it was, still a person of the job (its lines are errors of the
        // source), and nothing of it changes until its lines are fixed.
        if let Some(mut entry) = store.person(&person)? {
            if entry.generation != pass.generation {
                entry.generation = pass.generation;
                store.put_person(&entry)?;
            }
        }
    }
    contents.add_person(rows.iter().map(|(_, r)| r.hash).zip(&states));
    record_photos(rows, states, line_errors, &mut old, pass, summary, out);
    for (key, entry) in old {
        known.retire(key, entry, out);
    }
    Ok(())
}

/// Records the face of each photo enrolled before whose content changed in place
/// (same path, another hash): the photo's entry stands for the new content from
/// now on, and the face of the old one stays on the service until a mirror run
/// deletes it ([`Store::replaced_faces`]).
fn record_replaced(
    store: &Store,
    rows: &[(PhotoKey, Row)],
    old: &HashMap<PhotoKey, PhotoEntry>,
) -> Result<(), PlanError> {
    for (key, r) in rows {
        let Some(before) = old.get(key) else { continue };
        if let PhotoState::Enrolled {
            face: crate::store::FaceRef::Id(face_id),
        } = &before.state
        {
            if changed_in_place(before, r) {
                store.put_replaced_face(key, face_id)?;
            }
        }
    }
    Ok(())
}

/// The same photo listed again (a manifest row repeated): keeps the first listing
/// and answers each later one as an entry not taken, so the report has a row for it:
/// `ignored`, naming the line it repeats, or `failed` when it gives the photo other
/// groups, a name or a tag than the first (which is meant is not clear, as for a
/// conflicting name).
fn drop_relisted(rows: &mut Vec<(PhotoKey, Row)>, summary: &mut PlanSummary) -> Vec<Problem> {
    let mut relisted = Vec::new();
    rows.dedup_by(|later, first| {
        let again = later.0 == first.0;
        if again {
            summary.relisted += 1;
            let (later, first) = (&later.1, &first.1);
            let listed = format!(
                "{}: {} is listed again for person {:?}",
                later.origin, later.image, later.person
            );
            let (kind, class, message) = match relisted_conflict(first, later) {
                None => (
                    ProblemKind::Skip,
                    "row repeated",
                    format!("{listed}; first listed at {}", first.origin),
                ),
                Some(differs) => (
                    ProblemKind::Invalid,
                    "row repeated with other fields",
                    format!(
                        "{listed} with {differs} at {}; which is meant is not clear: keep \
                         one row",
                        first.origin
                    ),
                ),
            };
            relisted.push(Problem {
                origin: later.origin.clone(),
                photo: None,
                kind,
                class,
                message,
                cells: Some(Cells {
                    person_id: later
                        .written
                        .clone()
                        .unwrap_or_else(|| later.person.clone()),
                    image: later.image.to_string(),
                    group_ids: later.groups.join(";"),
                    person_name: later.name.clone().unwrap_or_default(),
                    tag: later.tag.clone().unwrap_or_default(),
                }),
            });
        }
        again
    });
    relisted
}

/// How a repeated listing of a photo differs from its first listing: other groups,
/// or a name or tag both give differently ("group_ids \"lab\" where it is \"staff\"").
fn relisted_conflict(first: &Row, later: &Row) -> Option<String> {
    let set = |groups: &[String]| -> std::collections::BTreeSet<String> {
        groups.iter().cloned().collect()
    };
    if set(&first.groups) != set(&later.groups) {
        return Some(format!(
            "group_ids {:?} where it is {:?}",
            later.groups.join(";"),
            first.groups.join(";")
        ));
    }
    for (field, a, b) in [
        ("person_name", &first.name, &later.name),
        ("tag", &first.tag, &later.tag),
    ] {
        if let (Some(a), Some(b)) = (a, b) {
            if a != b {
                return Some(format!("{field} {b:?} where it is {a:?}"));
            }
        }
    }
    None
}

/// A person's fields merged from its rows, and what stops the person or a line.
struct Merged {
    /// The person cannot be planned at all.
    person_error: Option<String>,
    fields: PersonFields,
    /// Per row: its name or tag conflicts with the one given first.
    conflicts: Vec<Option<String>>,
}

impl Merged {
    fn no_group(&self) -> bool {
        self.person_error.is_none() && self.fields.groups.is_empty()
    }
}

/// The person: its groups, name and tag, merged in source order. A name or tag
/// that differs from the one given first fails its line.
fn merge_fields(person: &str, rows: &[(PhotoKey, Row)]) -> Merged {
    let person_error = rows
        .iter()
        .find_map(|(_, r)| r.verdict.person_error().map(str::to_owned))
        .or_else(|| spelled_twice(rows));
    let mut fields = PersonFields::default();
    let mut name_from: Option<&Origin> = None;
    let mut tag_from: Option<&Origin> = None;
    let mut conflicts: Vec<Option<String>> = vec![None; rows.len()];
    if person_error.is_none() {
        for (i, (_, r)) in rows.iter().enumerate() {
            if matches!(r.verdict, Verdict::Field(_)) {
                continue;
            }
            let mut conflict = None;
            for (field, value, kept, from) in [
                ("person_name", &r.name, &fields.name, name_from),
                ("tag", &r.tag, &fields.tag, tag_from),
            ] {
                if let (Some(value), Some(kept), Some(from)) = (value, kept, from) {
                    if value != kept && conflict.is_none() {
                        conflict = Some(format!(
                            "{}: {field} {value:?} for person {person:?} conflicts with {kept:?} at {from}",
                            r.origin
                        ));
                    }
                }
            }
            if conflict.is_some() {
                conflicts[i] = conflict;
                continue;
            }
            if fields.name.is_none() && r.name.is_some() {
                fields.name = r.name.clone();
                name_from = Some(&r.origin);
            }
            if fields.tag.is_none() && r.tag.is_some() {
                fields.tag = r.tag.clone();
                tag_from = Some(&r.origin);
            }
            for g in &r.groups {
                if let Ok(g) = GroupId::new(g.as_str()) {
                    if !fields.groups.contains(&g) {
                        fields.groups.push(g);
                    }
                }
            }
        }
    }
    Merged {
        person_error,
        fields,
        conflicts,
    }
}

/// Each photo's state before the dedupe and the cap, and for each photo enrolled
/// before, what is wrong with its line now (an emptied or bad `group_ids`, a bad
/// name): the face stays, and the line is an error of the source.
fn first_states(
    person: &str,
    rows: &[(PhotoKey, Row)],
    merged: &Merged,
    old: &HashMap<PhotoKey, PhotoEntry>,
    options: &PlanOptions,
) -> (Vec<Carry>, Vec<Option<String>>) {
    let invalid = |message: String| {
        Carry::Keep(PhotoState::Failed(Failure {
            kind: FailureKind::Input,
            code: None,
            message,
        }))
    };
    let no_group = merged.no_group();
    // What fails the line whatever its photo: the person, a field, a conflict.
    let line_error =
        |r: &Row, conflict: &Option<String>| match (&r.verdict, &merged.person_error, conflict) {
            (Verdict::Person(e), _, _) => Some(e.clone()),
            (_, Some(e), _) => Some(format!(
                "{}: person {person:?} cannot be planned: {e}",
                r.origin
            )),
            (Verdict::Field(e), _, _) | (_, _, Some(e)) => Some(e.clone()),
            (Verdict::Ok, _, _) if no_group => Some(format!(
                "{}: person {person:?} has no group (group_ids is empty on every line)",
                r.origin
            )),
            _ => None,
        };
    rows.iter()
        .zip(&merged.conflicts)
        .map(|((key, r), conflict)| {
            let before = old.get(key);
            if let Some(enrolled @ PhotoState::Enrolled { .. }) = before.map(|b| &b.state) {
                // The face is on the service whatever the input says now (a file
                // moved away, a name changed), unless the photo itself changed.
                if !matches!(carry(before, r, options), Carry::Open) {
                    return (Carry::Keep(enrolled.clone()), line_error(r, conflict));
                }
            }
            let state = match (line_error(r, conflict), &r.verdict) {
                (Some(e), _) => invalid(e),
                (None, Verdict::Invalid(e)) => invalid(e.clone()),
                (None, Verdict::Skip(reason)) => Carry::Keep(PhotoState::Skipped {
                    reason: reason.clone(),
                }),
                (None, _) => carry(before, r, options),
            };
            (state, None)
        })
        .unzip()
}

/// Faces the person holds or may hold, and whose content they are.
struct Held {
    /// Content → the photo that holds it, as the operator is told.
    holders: HashMap<ContentHash, String>,
    enrolled: usize,
    in_doubt: usize,
}

impl Held {
    fn count(
        rows: &[(PhotoKey, Row)],
        carries: &[Carry],
        old: &HashMap<PhotoKey, PhotoEntry>,
    ) -> Held {
        let mut held = Held {
            holders: HashMap::new(),
            enrolled: 0,
            in_doubt: 0,
        };
        let listed: std::collections::HashSet<&PhotoKey> = rows.iter().map(|(k, _)| k).collect();
        for (k, e) in old {
            if listed.contains(k) {
                continue;
            }
            if let PhotoState::Enrolled { .. } = e.state {
                held.enrolled += 1;
                if let Some(h) = e.hash {
                    held.holders
                        .entry(h)
                        .or_insert_with(|| format!("{} (enrolled)", e.origin));
                }
            }
        }
        for ((_, r), c) in rows.iter().zip(carries) {
            let what = match c {
                Carry::Keep(PhotoState::Enrolled { .. }) => {
                    held.enrolled += 1;
                    "enrolled"
                }
                Carry::Keep(PhotoState::InDoubt) => {
                    held.in_doubt += 1;
                    "in doubt"
                }
                // Refused for good and not sent again: a copy of it would be refused
                // too, one run after another.
                Carry::Keep(PhotoState::Failed(Failure {
                    kind: FailureKind::Permanent,
                    ..
                })) => "refused by the service",
                _ => continue,
            };
            if let Some(h) = r.hash {
                held.holders
                    .entry(h)
                    .or_insert_with(|| format!("{} ({what})", r.origin));
            }
        }
        held
    }
}

/// Decides the photos still open, in source order: a duplicate of a photo held,
/// skipped past the cap, or pending. Records in the store which photo holds each
/// content kept.
fn dedupe_and_cap(
    store: &Store,
    person: &str,
    rows: &[(PhotoKey, Row)],
    carries: Vec<Carry>,
    held: &mut Held,
    old: &HashMap<PhotoKey, PhotoEntry>,
) -> Result<Vec<PhotoState>, PlanError> {
    let order = match rows[0].1.origin {
        Origin::Tree { .. } => "sorted file name order",
        Origin::Manifest { .. } => "manifest line order",
    };
    let (enrolled, in_doubt) = (held.enrolled, held.in_doubt);
    let mut slots = MAX_FACES_PER_PERSON.saturating_sub(enrolled + in_doubt);
    let mut planned = 0;
    // The photos kept on the service, by their place in the source's order: a
    // photo over the limit is told which of them come after it.
    let enrolled_at: Vec<(usize, String)> = carries
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c, Carry::Keep(PhotoState::Enrolled { .. })))
        .map(|(i, _)| (i, rows[i].1.origin.to_string()))
        .collect();
    let mut states = Vec::with_capacity(rows.len());
    for (at, ((key, r), c)) in rows.iter().zip(carries).enumerate() {
        let state = match c {
            Carry::Keep(s) => s,
            Carry::Open => {
                if let Some(holder) = r.hash.and_then(|h| held.holders.get(&h)) {
                    PhotoState::Duplicate {
                        reason: format!(
                            "{}: same content as {holder}, which stands for it",
                            r.origin
                        ),
                    }
                } else if slots == 0 {
                    if let Some(h) = r.hash {
                        // Byte-identical spares are one photo too.
                        held.holders
                            .insert(h, format!("{} (a spare, over the limit)", r.origin));
                    }
                    PhotoState::Spare {
                        reason: format!(
                            "{}: over the service's limit of {MAX_FACES_PER_PERSON} faces per \
                             person: person {person:?} has {enrolled} enrolled, {in_doubt} in \
                             doubt and {planned} planned before it (photos are taken in \
                             {order}); a spare, sent in the run only if one of those is \
                             refused for good{}",
                            r.origin,
                            enrolled_later(&enrolled_at, at)
                        ),
                    }
                } else {
                    slots -= 1;
                    planned += 1;
                    if let Some(h) = r.hash {
                        held.holders.insert(h, r.origin.to_string());
                    }
                    PhotoState::Pending
                }
            }
        };
        let kept = |s: &PhotoState| {
            matches!(
                s,
                PhotoState::Pending | PhotoState::InDoubt | PhotoState::Enrolled { .. }
            )
        };
        if let (true, Some(h)) = (kept(&state), r.hash) {
            // The pass that first kept this content under this key recorded it.
            let recorded = old
                .get(key)
                .is_some_and(|b| b.hash == Some(h) && kept(&b.state));
            if !recorded && store.photo_with_hash(person, &h)?.as_ref() != Some(key) {
                store.put_photo_hash(person, &h, key)?;
            }
        }
        states.push(state);
    }
    Ok(states)
}

/// What a spare is told of the enrolled photos that come after it in the source's
/// order (`enrolled_at`: their places and names): the service keeps the faces it
/// holds, so the spare takes a place only once one of them leaves the source.
fn enrolled_later(enrolled_at: &[(usize, String)], at: usize) -> String {
    let later: Vec<&str> = enrolled_at
        .iter()
        .filter(|(i, _)| *i > at)
        .map(|(_, origin)| origin.as_str())
        .collect();
    let Some(last) = later.last() else {
        return String::new();
    };
    format!(
        "; {} of the enrolled {} after it, the last {last}: a face on the service is never \
         deleted to make room, so for this photo to be sent instead, take {last} out of the \
         source and run with --mirror, which deletes its face; the run after sends this one",
        later.len(),
        if later.len() == 1 { "comes" } else { "come" }
    )
}

/// Writes the person's entry and counts the calls it will take.
#[allow(clippy::too_many_arguments)]
fn write_person(
    store: &Store,
    fresh: bool,
    person: &str,
    fields: PersonFields,
    rows: &[(PhotoKey, Row)],
    states: &[PhotoState],
    held: &Held,
    pass: &Pass<'_>,
    options: &PlanOptions,
    summary: &mut PlanSummary,
) -> Result<(), PlanError> {
    let work: Vec<ChunkItem> = rows
        .iter()
        .zip(states)
        .filter(|(_, s)| matches!(s, PhotoState::Pending | PhotoState::InDoubt))
        .map(|((_, r), _)| calls::chunk_item(&r.image, r.size, options, false))
        .collect();
    let id = PersonId::new(person).expect("person id checked");
    let existing = if fresh { None } else { store.person(person)? };
    let mut fields = fields;
    if let Some(before) = existing.as_ref().map(|e| &e.fields) {
        for (field, now, was) in [
            ("person_name", &mut fields.name, &before.name),
            ("tag", &mut fields.tag, &before.tag),
        ] {
            if let (None, Some(was)) = (now.as_ref(), was) {
                // An empty cell is a value not given: the service keeps the one it
                // holds, and the job's record says so.
                let message = format!(
                    "{}: {field} is empty for person {person:?} on every line: the service \
                     keeps {was:?} (an empty cell gives no {field}; it does not clear one: \
                     give the new value to change it)",
                    rows[0].1.origin
                );
                tracing::warn!("{message}");
                summary.problem(ProblemStatus::Warning, message);
                *now = Some(was.clone());
            }
        }
    }
    let state = match existing {
        Some(PersonEntry {
            state: PersonState::Failed { .. },
            ..
        }) if !work.is_empty() => PersonState::New,
        Some(PersonEntry {
            state: PersonState::Ready { .. },
            fields: before,
            ..
        }) if before != fields => PersonState::Stale,
        Some(existing) => existing.state,
        None => PersonState::New,
    };
    summary.persons += 1;
    summary.persons_to_update += usize::from(state == PersonState::Stale);
    for group in &fields.groups {
        *summary
            .persons_per_group
            .entry(group.as_str().to_owned())
            .or_default() += 1;
    }
    if !work.is_empty() {
        summary.persons_with_work += 1;
        let room = MAX_FACES_PER_PERSON.saturating_sub(held.enrolled);
        let new = state == PersonState::New;
        summary.new_persons += usize::from(new);
        let calls = calls::person_calls(&work, new, room, &options.budget);
        summary.calls.newperson += calls.newperson;
        summary.calls.addface += calls.addface;
    }
    store.put_person(&PersonEntry {
        person: id,
        fields,
        state,
        generation: pass.generation,
    })?;
    Ok(())
}

/// The photos (drained from `rows`, taken out of `old`) as written to the store, and
/// what the operator is told of them. An entry the same as the store's is not
/// written again.
fn record_photos(
    rows: &mut Vec<(PhotoKey, Row)>,
    states: Vec<PhotoState>,
    line_errors: Vec<Option<String>>,
    old: &mut HashMap<PhotoKey, PhotoEntry>,
    pass: &Pass<'_>,
    summary: &mut PlanSummary,
    out: &mut Vec<(PhotoKey, PhotoEntry)>,
) {
    for (rank, (((key, r), state), line_error)) in
        rows.drain(..).zip(states).zip(line_errors).enumerate()
    {
        summary.photos += 1;
        let before = old.remove(&key);
        match &state {
            PhotoState::Pending | PhotoState::Deferred(_) => {
                summary.pending += 1;
                summary.to_normalize += usize::from(r.normalize);
            }
            PhotoState::InDoubt => summary.in_doubt += 1,
            PhotoState::Enrolled { .. } => {
                summary.enrolled += 1;
                if let Some(e) = &line_error {
                    let message = format!(
                        "{e} (person {:?} was enrolled before: its faces and groups are \
                         kept as they are; an error of the source, which holds the deletions \
                         of --mirror)",
                        r.person
                    );
                    tracing::warn!("{message}");
                    summary.enrolled_source_error(message);
                } else if let Verdict::Invalid(e) = &r.verdict {
                    if r.gone {
                        summary.kept_gone += 1;
                        tracing::warn!("{e} (enrolled before: its face is kept)");
                    } else {
                        let message = format!(
                            "{e} (enrolled before: its face is kept; an error of the source, \
                             which holds the deletions of --mirror)"
                        );
                        tracing::warn!("{message}");
                        summary.enrolled_source_error(message);
                    }
                }
            }
            PhotoState::Duplicate { reason } => {
                summary.duplicate += 1;
                summary.problem(ProblemStatus::Duplicate, reason.clone());
            }
            PhotoState::Skipped { reason }
            | PhotoState::Full { reason }
            | PhotoState::Spare { reason } => {
                summary.skipped += 1;
                summary.problem(ProblemStatus::Skipped, reason.clone());
            }
            PhotoState::Failed(f) if f.kind == FailureKind::Input => {
                summary.invalid += 1;
                let known = before.as_ref().is_some_and(|b| {
                    matches!(&b.state, PhotoState::Failed(was)
                        if was.kind == FailureKind::Input && was.message == f.message)
                });
                summary.invalid_before += usize::from(known);
                tracing::warn!("{}", f.message);
                summary.problem(ProblemStatus::Invalid, f.message.clone());
            }
            PhotoState::Failed(_) => summary.failed_before += 1,
            // Listed again: carried open, so planned anew.
            PhotoState::Removed { .. } => {}
        }
        // Without a hash or a size and time on either side the content cannot be
        // compared: the path stands for the photo.
        let unchanged = before.as_ref().is_some_and(|b| !changed_in_place(b, &r));
        let (hash, size, modified) = match &before {
            Some(b) if unchanged && r.hash.is_none() => {
                (b.hash, r.size.or(b.size), r.modified.or(b.modified))
            }
            _ => (r.hash, r.size, r.modified),
        };
        let given = GivenFields {
            groups: r.groups,
            name: r.name,
            tag: r.tag,
        };
        let entry = PhotoEntry {
            given: Some(given),
            source: Some(pass.source.to_owned()),
            person: r.person,
            image: r.image,
            origin: r.origin,
            seq: rank as u64,
            hash,
            size,
            modified,
            state,
            attempts: before.as_ref().map_or(0, |b| b.attempts),
            generation: pass.generation,
            note: before
                .as_ref()
                .filter(|_| unchanged)
                .and_then(|b| b.note.clone()),
            retired: false,
        };
        if before.as_ref() != Some(&entry) {
            out.push((key, entry));
        }
    }
}

/// Two rows of one person whose id is written in different Unicode normal forms:
/// which spelling is meant is not clear, so the person is refused.
pub(super) fn spelled_twice(rows: &[(PhotoKey, Row)]) -> Option<String> {
    let (_, first) = rows.first()?;
    let spelling = |r: &Row| r.written.clone().unwrap_or_else(|| r.person.clone());
    let first_spelling = spelling(first);
    let other = rows.iter().find(|(_, r)| spelling(r) != first_spelling)?;
    Some(format!(
        "person {:?} is written in two Unicode forms, at {} and at {} (a name typed on one \
         system and copied from another); write it one way",
        first.person, first.origin, other.1.origin
    ))
}

/// Whether the photo at a known path holds other content than when it was last
/// planned: by its content hash when both are known, else (`--no-content-check`
/// reads no file) by its size and modification time when both are known.
pub(super) fn changed_in_place(before: &PhotoEntry, row: &Row) -> bool {
    match (before.hash, row.hash) {
        (Some(was), Some(now)) => was != now,
        _ => match (before.size.zip(before.modified), row.size.zip(row.modified)) {
            (Some(was), Some(now)) => was != now,
            _ => false,
        },
    }
}

/// A photo's state before the person-level checks.
pub(super) enum Carry {
    /// Decided: written as is.
    Keep(PhotoState),
    /// To be decided by the person-level checks: pending, duplicate or over the cap.
    Open,
}

/// The state of a photo known from an earlier run, or `Open` when the plan decides.
pub(super) fn carry(before: Option<&PhotoEntry>, row: &Row, options: &PlanOptions) -> Carry {
    let Some(before) = before else {
        return Carry::Open;
    };
    if changed_in_place(before, row) {
        return Carry::Open;
    }
    match &before.state {
        PhotoState::Enrolled { .. } | PhotoState::InDoubt => Carry::Keep(before.state.clone()),
        PhotoState::Failed(Failure {
            kind: FailureKind::Permanent,
            ..
        }) if !options.retry_failed => Carry::Keep(before.state.clone()),
        PhotoState::Full { .. } if !options.recheck_full => Carry::Keep(before.state.clone()),
        _ => Carry::Open,
    }
}
