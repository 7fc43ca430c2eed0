//! Planning again a job the store already holds, as a nightly run does: entries the
//! pass finds unchanged are left as they are, and entries that left the source are
//! retired, never sent, counted or reported as part of the job.

mod support;

use faceenroll::plan::{self, PlanOptions};
use faceenroll::report::{write_report, Format, StoreCounts};
use faceenroll::store::Store;
use std::collections::BTreeMap;
use support::{client, emulator, held_faces, options, photo, run, spec, Archive};

#[test]
fn a_replan_of_an_unchanged_archive_writes_no_photo_entry() {
    let archive = Archive::new();
    archive.fill(3, 4, 1);
    {
        let store = Store::open(&archive.state()).unwrap();
        plan::build(&store, &spec(&archive), &PlanOptions::default()).unwrap();
        assert_eq!(
            store.photo_writes(),
            12,
            "the first plan writes every photo"
        );
    }
    let store = Store::open(&archive.state()).unwrap();
    let before: Vec<_> = store.photos().map(Result::unwrap).collect();
    let summary = plan::build(&store, &spec(&archive), &PlanOptions::default()).unwrap();
    assert_eq!(summary.photos, 12);
    assert_eq!(summary.pending, 12);
    assert_eq!(store.photo_writes(), 0, "nothing changed, nothing written");
    let after: Vec<_> = store.photos().map(Result::unwrap).collect();
    assert_eq!(after.len(), before.len());
    for ((_, b), (_, a)) in before.iter().zip(&after) {
        assert_eq!(
            a.generation, summary.generation,
            "read as seen by this plan"
        );
        assert_eq!(a.state, b.state);
        assert!(!a.retired);
    }
    drop(store);

    // One photo changes, one is added: two entries written.
    archive.add("person001", "002.png", &photo(90_001));
    archive.add("person001", "009.png", &photo(90_002));
    let store = Store::open(&archive.state()).unwrap();
    let summary = plan::build(&store, &spec(&archive), &PlanOptions::default()).unwrap();
    assert_eq!(summary.photos, 13);
    assert_eq!(store.photo_writes(), 2);
}

#[test]
fn a_replan_of_a_manifest_larger_than_a_write_batch_writes_nothing() {
    // More rows than one batch of writes (plan::BATCH), so the pass writes while it
    // still reads the store.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.csv");
    let mut text = String::from("person_id,image,group_ids\n");
    for p in 0..300 {
        for i in 0..20 {
            text += &format!("p{p:03},https://photos.example/p{p:03}/{i}.jpg,staff\n");
        }
    }
    // A person that sorts after every other, added by the second plan only.
    let grown = format!("{text}zed,https://photos.example/zed/0.jpg,staff\n");
    std::fs::write(&path, &text).unwrap();
    let source = faceenroll::source::SourceSpec::Manifest { path: path.clone() };
    let state = dir.path().join("state");
    {
        let store = Store::open(&state).unwrap();
        plan::build(&store, &source, &PlanOptions::default()).unwrap();
        assert_eq!(store.photo_writes(), 6000);
        assert_eq!(
            store
                .photos()
                .filter(|r| r.as_ref().unwrap().1.retired)
                .count(),
            0
        );
    }
    std::fs::write(&path, &grown).unwrap();
    let store = Store::open(&state).unwrap();
    let summary = plan::build(&store, &source, &PlanOptions::default()).unwrap();
    assert_eq!(summary.photos, 6001);
    assert_eq!(store.photo_writes(), 1, "only the new photo is written");
    assert_eq!(
        store
            .photos()
            .filter(|r| r.as_ref().unwrap().1.retired)
            .count(),
        0
    );
}

#[test]
fn photos_that_left_the_source_are_retired_and_neither_sent_nor_reported() {
    let archive = Archive::new();
    for person in ["alice", "bob", "carol", "dave"] {
        for i in 0..3u32 {
            let seed = 1 + i + 100 * (person.as_bytes()[0] as u32);
            archive.add(person, &format!("{i}.png"), &photo(seed));
        }
    }
    {
        // Planned, never run: every photo pending.
        let store = Store::open(&archive.state()).unwrap();
        let summary = plan::build(&store, &spec(&archive), &PlanOptions::default()).unwrap();
        assert_eq!(summary.pending, 12);
    }
    // A person in the middle, the last person and one photo leave the archive.
    std::fs::remove_dir_all(archive.root().join("bob")).unwrap();
    std::fs::remove_dir_all(archive.root().join("dave")).unwrap();
    std::fs::remove_file(archive.root().join("alice/1.png")).unwrap();

    let emulator = emulator();
    run(&archive, &client(&emulator), &options());

    let held = held_faces(&emulator.snapshot());
    assert_eq!(
        held.iter()
            .map(|(p, faces)| (p.as_str(), faces.len()))
            .collect::<BTreeMap<_, _>>(),
        BTreeMap::from([("alice", 2), ("carol", 3)]),
        "the service holds only the photos still in the archive"
    );
    let store = Store::open(&archive.state()).unwrap();
    let retired: Vec<String> = store
        .photos()
        .map(Result::unwrap)
        .filter(|(_, e)| e.retired)
        .map(|(_, e)| e.image.to_string())
        .collect();
    let root = archive.root();
    let expected: Vec<String> = [
        "alice/1", "bob/0", "bob/1", "bob/2", "dave/0", "dave/1", "dave/2",
    ]
    .iter()
    .map(|p| root.join(format!("{p}.png")).display().to_string())
    .collect();
    assert_eq!(retired, expected);

    let counts = StoreCounts::read(&store).unwrap();
    assert_eq!((counts.photos, counts.enrolled, counts.pending), (5, 5, 0));
    let mut report = Vec::new();
    assert_eq!(
        write_report(&store, None, Format::Csv, &mut report).unwrap(),
        5
    );
    let report = String::from_utf8(report).unwrap();
    assert!(
        !report.contains("bob") && !report.contains("dave"),
        "{report}"
    );
    assert!(!report.contains(&expected[0]), "{report}");
}
