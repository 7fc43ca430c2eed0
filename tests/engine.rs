//! The engine end to end against the in-process emulator: each test asserts the exact
//! final state of the service (read through the emulator's introspection) and the
//! store's record of every photo, each under both readings of -1309 on addface.

mod support;

use faceenroll::emulator::{Emulator, Faults};
use faceenroll::engine::{self, RunOutcome, StopSignal};
use faceenroll::model::{GroupId, ImageRef, PersonId};
use faceenroll::plan::PlanOptions;
use faceenroll::service::client::ImageBody;
use faceenroll::source::SourceSpec;
use faceenroll::store::{FaceRef, PhotoState, Store};
use std::collections::BTreeMap;
use support::{
    blank, client, emulator, emulator_with, for_each_reading, hash_of, options, photo, run,
    run_source, tree_spec, Archive,
};

/// Every photo's state in the store, by file name relative to the archive root.
fn states(archive: &Archive) -> BTreeMap<String, PhotoState> {
    let store = Store::open(&archive.state()).unwrap();
    store
        .photos()
        .map(|r| {
            let (_, e) = r.unwrap();
            let ImageRef::File(path) = &e.image else {
                panic!("tree photos are files")
            };
            let name = path
                .strip_prefix(archive.root())
                .unwrap()
                .display()
                .to_string();
            (name, e.state)
        })
        .collect()
}

/// Asserts that the service holds, for each person of the archive, exactly one face
/// per distinct photo content, and nothing else.
fn assert_service_holds_each_photo_once(archive: &Archive, emulator: &Emulator, persons: &[&str]) {
    let snapshot = emulator.snapshot();
    assert_eq!(
        snapshot
            .persons
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        persons,
        "persons on the service"
    );
    for person in persons {
        let mut expected: Vec<String> = std::fs::read_dir(archive.root().join(person))
            .unwrap()
            .map(|e| hash_of(&e.unwrap().path()))
            .collect();
        expected.sort();
        expected.dedup();
        let mut held: Vec<String> = snapshot.persons[*person]
            .faces
            .iter()
            .map(|f| f.content_hash.clone())
            .collect();
        held.sort();
        assert_eq!(held, expected, "faces of {person}");
    }
}

#[test]
fn a_clean_run_enrolls_every_photo_once_and_records_its_face_id() {
    for_each_reading(|| {
        let archive = Archive::new();
        archive.fill(3, 4, 0);
        let emulator = emulator();
        let (outcome, tally) = run(&archive, &client(&emulator), &options());
        assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
        assert_service_holds_each_photo_once(
            &archive,
            &emulator,
            &["person000", "person001", "person002"],
        );
        assert_eq!(tally.snapshot().enrolled, 12);
        assert_eq!(tally.snapshot().persons_created, 3);
        // getgroupids (the group limits, before any person is created; the group
        // is new, so no getpersonids), 3 newperson + 3 addface.
        assert_eq!(tally.snapshot().calls, 7);

        let snapshot = emulator.snapshot();
        let store = Store::open(&archive.state()).unwrap();
        for item in store.photos() {
            let (_, entry) = item.unwrap();
            let PhotoState::Enrolled {
                face: FaceRef::Id(face_id),
            } = &entry.state
            else {
                panic!("{:?} not enrolled: {:?}", entry.image, entry.state)
            };
            let ImageRef::File(path) = &entry.image else {
                unreachable!()
            };
            let face = snapshot.persons[&entry.person]
                .faces
                .iter()
                .find(|f| &f.face_id == face_id)
                .expect("the recorded face id is on the service");
            assert_eq!(face.content_hash, hash_of(path));
        }
        let person = &snapshot.persons["person001"];
        assert_eq!(person.groups, ["staff"]);
        assert_eq!(snapshot.groups["staff"].len(), 3);
    });
}

#[test]
fn a_rerun_of_a_finished_job_makes_no_call() {
    for_each_reading(|| {
        let archive = Archive::new();
        archive.fill(2, 3, 0);
        let emulator = emulator();
        let client = client(&emulator);
        run(&archive, &client, &options());
        let before = emulator.counters().requests;
        let (outcome, tally) = run(&archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished));
        assert_eq!(tally.snapshot().calls, 0);
        assert_eq!(emulator.counters().requests, before);
    });
}

#[test]
fn a_nightly_rerun_enrolls_only_new_persons_and_photos() {
    for_each_reading(|| {
        let archive = Archive::new();
        archive.fill(2, 2, 0);
        // A service that keeps a face sent twice: a photo sent again shows up twice.
        let emulator = emulator_with(|c| c.probes.accept_duplicates = true);
        let client = client(&emulator);
        run(&archive, &client, &options());
        archive.add("person000", "new.png", &photo(9000));
        archive.add("person009", "a.png", &photo(9001));
        archive.add("person009", "b.png", &photo(9002));
        let (outcome, tally) = run(&archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished));
        assert_eq!(tally.snapshot().enrolled, 3);
        // For person000, known from the first run, its face count is read (getfaceids)
        // before one addface; for the new person009, the group limits are read
        // (getgroupids, getpersonids of staff), then one newperson + one addface.
        assert_eq!(tally.snapshot().calls, 6);
        assert_eq!(emulator.counters().received("getfaceids"), 1);
        assert_service_holds_each_photo_once(
            &archive,
            &emulator,
            &["person000", "person001", "person009"],
        );
    });
}

#[test]
fn transient_per_image_refusals_are_retried_until_every_photo_is_in() {
    for_each_reading(|| {
        let archive = Archive::new();
        archive.fill(3, 8, 0);
        let emulator = emulator_with(|c| {
            c.faults = Faults {
                transient_image: 0.4,
                ..Faults::default()
            };
            c.seed = 11;
        });
        let (outcome, tally) = run(&archive, &client(&emulator), &options());
        assert!(matches!(outcome, RunOutcome::Finished));
        assert!(tally.snapshot().retries > 0, "some images were refused");
        assert_service_holds_each_photo_once(
            &archive,
            &emulator,
            &["person000", "person001", "person002"],
        );
        assert!(states(&archive)
            .values()
            .all(|s| matches!(s, PhotoState::Enrolled { .. })));
    });
}

#[test]
fn lost_answers_dropped_connections_and_errors_never_enroll_a_face_twice() {
    for_each_reading(|| {
        let archive = Archive::new();
        archive.fill(20, 3, 0);
        let emulator = emulator_with(|c| {
            c.faults = Faults {
                error_213: 0.1,
                rate_limit_15: 0.05,
                drop_connection: 0.1,
                lose_answer: 0.25,
                transient_image: 0.1,
                ..Faults::default()
            };
            c.seed = 5;
        });
        let (outcome, _) = run(&archive, &client(&emulator), &options());
        assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
        let persons: Vec<String> = (0..20).map(|p| format!("person{p:03}")).collect();
        let persons: Vec<&str> = persons.iter().map(String::as_str).collect();
        assert_service_holds_each_photo_once(&archive, &emulator, &persons);
        let counters = emulator.counters();
        assert!(
            counters.faults.lose_answer > 0,
            "answers were lost: {counters:?}"
        );
        for (name, state) in states(&archive) {
            assert!(
                matches!(state, PhotoState::Enrolled { .. }),
                "{name}: {state:?}"
            );
        }
    });
}

#[test]
fn the_pacer_slows_down_when_the_service_rate_limits() {
    const PERSONS: u64 = 20;
    const CAP: u64 = 5;
    let archive = Archive::new();
    archive.fill(PERSONS as u32, 1, 0);
    let emulator = emulator_with(|c| c.qps = Some(CAP as u32));
    let mut options = options();
    options.qps = 50;
    options.workers = faceenroll::engine::Workers::Fixed(6);
    let started = std::time::Instant::now();
    let (outcome, tally) = run(&archive, &client(&emulator), &options);
    let elapsed = started.elapsed().as_secs_f64();
    assert!(matches!(outcome, RunOutcome::Finished));
    assert_eq!(emulator.snapshot().persons.len(), PERSONS as usize);
    let counters = emulator.counters();
    let limited = counters.answered(15);
    assert!(limited > 0, "the cap was hit: {counters:?}");
    assert_eq!(tally.snapshot().rate_limited, limited);
    // The job asked for 50 calls/s; having heard 15 it sent at most a few times the
    // service's cap, and got fewer 15s than three per call done. (Measured: about
    // 9 calls/s and 27 answers 15; a pacer deaf to 15 sends about 46 calls/s and
    // gets about 135.)
    let rate = counters.requests as f64 / elapsed;
    assert!(
        rate < (3 * CAP) as f64,
        "{rate:.1} calls/s over {elapsed:.1} s against a cap of {CAP}: {counters:?}"
    );
    assert!(
        limited < 3 * PERSONS,
        "{limited} answers 15 for {PERSONS} calls done: {counters:?}"
    );
}

/// `--qps 0` is "start unpaced", not "ignore the service": against a service that
/// answers 15 to nearly every call of a client that does not slow down, the job
/// slows down to the service's rate and finishes.
#[test]
fn an_unpaced_job_slows_down_to_the_rate_the_service_allows() {
    const LIMIT: u32 = 5;
    let archive = Archive::new();
    archive.fill(20, 1, 0);
    let emulator = emulator_with(|c| c.qps = Some(LIMIT));
    let mut options = options();
    options.qps = 0;
    options.workers = faceenroll::engine::Workers::default();
    options.retry.max_total_wait = std::time::Duration::from_secs(60);
    let start = std::time::Instant::now();
    let (outcome, tally) = run(&archive, &client(&emulator), &options);
    let secs = start.elapsed().as_secs_f64();
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    assert_eq!(
        emulator.snapshot().persons.len(),
        20,
        "every person is on the service"
    );
    let counters = emulator.counters();
    let calls: u64 = counters.codes.values().sum();
    let refused = counters.answered(15);
    assert!(refused > 0, "the service did rate-limit the job");
    // 20 calls needed at 5/s: about 4 s. Without pacing, the job sent tens of
    // thousands of calls a second for as long as its retries lasted.
    assert!(
        calls as f64 <= 4.0 * f64::from(LIMIT) * secs.max(1.0),
        "{calls} calls ({refused} answered 15) in {secs:.1} s"
    );
    assert_eq!(tally.snapshot().rate_limited, refused);
}

#[test]
fn name_tag_and_groups_reach_the_service_when_created_and_when_changed() {
    let archive = Archive::new();
    for (person, seed) in [("alice", 1), ("alice", 2), ("bob", 3)] {
        archive.add(person, &format!("{seed}.png"), &photo(seed));
    }
    let manifest = archive.dir.path().join("people.csv");
    let write_manifest = |rows: &[&str]| {
        let mut text = "person_id,image,group_ids,person_name,tag\n".to_owned();
        for row in rows {
            text.push_str(row);
            text.push('\n');
        }
        std::fs::write(&manifest, text).unwrap();
    };
    write_manifest(&[
        "alice,photos/alice/1.png,staff;lab,Alice Lee,badge-1",
        "alice,photos/alice/2.png,staff;lab,Alice Lee,badge-1",
        "bob,photos/bob/3.png,staff,,",
    ]);
    let spec = SourceSpec::Manifest {
        path: manifest.clone(),
    };
    let emulator = emulator();
    let client = client(&emulator);
    let plan = PlanOptions::default();
    let person = |id: &str| {
        let p = emulator.snapshot().persons[id].clone();
        (p.name, p.tag, p.groups)
    };
    let held = |name: &str, tag: &str, groups: &[&str]| {
        (
            name.to_owned(),
            tag.to_owned(),
            groups.iter().map(|g| g.to_string()).collect::<Vec<_>>(),
        )
    };

    // Created by newperson with the manifest's name, tag and groups; none for bob.
    run_source(&archive, &spec, &client, &options(), &plan);
    assert_eq!(
        person("alice"),
        held("Alice Lee", "badge-1", &["staff", "lab"])
    );
    assert_eq!(person("bob"), held("", "", &["staff"]));
    assert_eq!(emulator.counters().received("setinfo"), 0);

    // The next night alice has a new name and tag, bob a tag and a second group.
    write_manifest(&[
        "alice,photos/alice/1.png,staff;lab,Alice Kim,badge-2",
        "alice,photos/alice/2.png,staff;lab,Alice Kim,badge-2",
        "bob,photos/bob/3.png,staff;night,,visitor",
    ]);
    run_source(&archive, &spec, &client, &options(), &plan);
    assert_eq!(
        person("alice"),
        held("Alice Kim", "badge-2", &["staff", "lab"])
    );
    assert_eq!(person("bob"), held("", "visitor", &["staff", "night"]));
    assert_eq!(emulator.counters().received("setinfo"), 2);

    // Changed on the service by someone else: the job's next change of the source
    // brings the person in line with the source, not with what the job sent last.
    client
        .set_info(&PersonId::new("alice").unwrap(), Some("Other"), Some("x"))
        .unwrap();
    write_manifest(&[
        "alice,photos/alice/1.png,staff,Alice Kim,badge-3",
        "alice,photos/alice/2.png,staff,Alice Kim,badge-3",
        "bob,photos/bob/3.png,staff;night,,visitor",
    ]);
    run_source(&archive, &spec, &client, &options(), &plan);
    let (name, tag, _) = person("alice");
    assert_eq!((name.as_str(), tag.as_str()), ("Alice Kim", "badge-3"));
    assert_eq!(person("bob"), held("", "visitor", &["staff", "night"]));

    // Only the name changes, then only the tag.
    write_manifest(&[
        "alice,photos/alice/1.png,staff,Alice Park,badge-3",
        "alice,photos/alice/2.png,staff,Alice Park,badge-3",
        "bob,photos/bob/3.png,staff;night,,visitor",
    ]);
    run_source(&archive, &spec, &client, &options(), &plan);
    let (name, tag, _) = person("alice");
    assert_eq!((name.as_str(), tag.as_str()), ("Alice Park", "badge-3"));
    write_manifest(&[
        "alice,photos/alice/1.png,staff,Alice Park,badge-4",
        "alice,photos/alice/2.png,staff,Alice Park,badge-4",
        "bob,photos/bob/3.png,staff;night,,visitor",
    ]);
    run_source(&archive, &spec, &client, &options(), &plan);
    let (name, tag, _) = person("alice");
    assert_eq!((name.as_str(), tag.as_str()), ("Alice Park", "badge-4"));
    for id in ["alice", "bob"] {
        let faces = emulator.snapshot().persons[id].faces.len();
        assert_eq!(faces, if id == "alice" { 2 } else { 1 }, "{id}");
    }
}

#[test]
fn an_existing_person_is_reconciled_not_failed() {
    for_each_reading(|| {
        let archive = Archive::new();
        let old = archive.add("alice", "0.png", &photo(1));
        archive.add("alice", "1.png", &photo(2));
        let emulator = emulator();
        let client = client(&emulator);
        // Enrolled before this tool, in another group, with one of the archive's photos.
        client
            .new_person(
                &PersonId::new("alice").unwrap(),
                &[GroupId::new("legacy").unwrap()],
                &ImageBody::File(old),
                Some("Alice"),
                None,
            )
            .unwrap();
        let (outcome, tally) = run(&archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished));
        assert_eq!(tally.snapshot().persons_reconciled, 1);
        let alice = &emulator.snapshot().persons["alice"];
        assert_eq!(alice.groups, ["legacy", "staff"]);
        assert_service_holds_each_photo_once(&archive, &emulator, &["alice"]);
        let states = states(&archive);
        assert!(
            matches!(states["alice/0.png"], PhotoState::Duplicate { .. }),
            "{states:?}"
        );
        assert!(matches!(states["alice/1.png"], PhotoState::Enrolled { .. }));
    });
}

#[test]
fn a_refused_seed_hands_over_to_the_next_photo() {
    for_each_reading(|| {
        let archive = Archive::new();
        archive.add("bob", "0.png", &blank());
        archive.add("bob", "1.png", b"not an image at all");
        archive.add("bob", "2.png", &photo(3));
        archive.add("bob", "3.png", &photo(4));
        archive.add("carol", "0.png", &blank());
        let emulator = emulator();
        let (outcome, tally) = run(&archive, &client(&emulator), &options());
        assert!(matches!(outcome, RunOutcome::Finished));
        let states = states(&archive);
        let PhotoState::Failed(f) = &states["bob/0.png"] else {
            panic!("{states:?}")
        };
        assert_eq!(f.code, Some(-1101));
        assert!(matches!(states["bob/1.png"], PhotoState::Failed(_)));
        assert!(matches!(states["bob/2.png"], PhotoState::Enrolled { .. }));
        assert!(matches!(states["bob/3.png"], PhotoState::Enrolled { .. }));
        assert!(matches!(states["carol/0.png"], PhotoState::Failed(_)));
        assert_eq!(tally.snapshot().persons_failed, 1);
        let snapshot = emulator.snapshot();
        assert_eq!(snapshot.persons["bob"].faces.len(), 2);
        assert!(!snapshot.persons.contains_key("carol"));
    });
}

#[test]
fn more_than_twenty_photos_enroll_twenty_and_skip_the_rest() {
    for_each_reading(|| {
        let archive = Archive::new();
        archive.fill(1, 23, 0);
        let emulator = emulator();
        let (outcome, _) = run(&archive, &client(&emulator), &options());
        assert!(matches!(outcome, RunOutcome::Finished));
        assert_eq!(emulator.snapshot().persons["person000"].faces.len(), 20);
        let states = states(&archive);
        let skipped: Vec<&String> = states
            .iter()
            .filter(|(_, s)| s.status() == "skipped")
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            skipped,
            [
                "person000/020.png",
                "person000/021.png",
                "person000/022.png"
            ]
        );
    });
}

#[test]
fn a_fatal_error_stops_the_job_and_a_rerun_resumes_it() {
    for_each_reading(|| {
        let archive = Archive::new();
        archive.fill(4, 2, 0);
        // A service that keeps a face sent twice: a photo sent again shows up twice.
        let emulator = emulator_with(|c| c.probes.accept_duplicates = true);
        let client = client(&emulator);
        // The account is suspended for the next calls.
        emulator.inject_next(3, 1000);
        let (outcome, _) = run(&archive, &client, &options());
        let RunOutcome::Fatal(err) = outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(err.code(), Some(3));
        assert!(
            emulator.counters().requests <= 4,
            "dispatch stopped at once"
        );
        assert!(emulator.snapshot().persons.is_empty());
        // Nothing was recorded as failed: the photos wait for the next run.
        assert!(states(&archive)
            .values()
            .all(|s| matches!(s, PhotoState::Pending | PhotoState::InDoubt)));

        // The operator settles the account; the same run resumes.
        emulator.inject_next(3, 0);
        let (outcome, _) = run(&archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
        assert_service_holds_each_photo_once(
            &archive,
            &emulator,
            &["person000", "person001", "person002", "person003"],
        );
    });
}

#[test]
fn a_person_whose_groups_or_name_changed_is_brought_in_line_on_the_next_run() {
    for_each_reading(|| {
        let archive = Archive::new();
        archive.fill(2, 2, 0);
        let emulator = emulator();
        let client = client(&emulator);
        run(&archive, &client, &options());

        // The next night the archive puts everyone in a second group; no photo is new.
        let mut spec = tree_spec(&archive, "staff");
        if let SourceSpec::Tree { groups, .. } = &mut spec {
            groups.push("night".into());
        }
        let plan = PlanOptions::default();
        let (summary, outcome, tally) = run_source(&archive, &spec, &client, &options(), &plan);
        assert_eq!(summary.persons_to_update, 2);
        assert!(matches!(outcome, RunOutcome::Finished));
        assert_eq!(tally.snapshot().persons_reconciled, 2);
        // getinfo and addgroupids for each person; no photo sent again.
        assert_eq!(tally.snapshot().calls, 4);
        let snapshot = emulator.snapshot();
        for person in ["person000", "person001"] {
            assert_eq!(
                snapshot.persons[person].groups,
                ["staff", "night"],
                "{person}"
            );
            assert_eq!(snapshot.persons[person].faces.len(), 2);
        }

        // Brought in line: a third run has nothing to do.
        let (summary, _, tally) = run_source(&archive, &spec, &client, &options(), &plan);
        assert_eq!(summary.persons_to_update, 0);
        assert_eq!(tally.snapshot().calls, 0);
    });
}

#[test]
fn an_interrupted_job_stops_before_its_next_call_and_a_rerun_finishes_it() {
    let archive = Archive::new();
    archive.fill(3, 2, 0);
    let emulator = emulator_with(|c| c.probes.accept_duplicates = true);
    let client = client(&emulator);
    let store = Store::open(&archive.state()).unwrap();
    faceenroll::plan::build(
        &store,
        &tree_spec(&archive, "staff"),
        &PlanOptions::default(),
    )
    .unwrap();
    // Ctrl-C before the first person was handed to a worker.
    let stop = StopSignal::default();
    stop.interrupt();
    assert!(stop.requested() && stop.interrupted());
    let tally = faceenroll::report::Tally::default();
    let outcome = engine::run(&store, &client, &options(), &stop, &tally).unwrap();
    assert!(matches!(outcome, RunOutcome::Interrupted), "{outcome:?}");
    assert_eq!(emulator.counters().requests, 0);
    drop(store);
    let (outcome, _) = run(&archive, &client, &options());
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    assert_service_holds_each_photo_once(
        &archive,
        &emulator,
        &["person000", "person001", "person002"],
    );
}
