//! `enroll --mirror`: the service follows the source within the job's reach, and the
//! guards hold every deletion of a source that cannot be trusted. Each test checks
//! what the emulator holds, not what the job recorded.
//!
//! - day 1 enrolls a dozen persons; day 2 two persons' folders and one photo are
//!   gone: without `--mirror` nothing is deleted; `plan --mirror` lists the
//!   deletions; `--mirror` makes exactly those, the report keeps the removed
//!   photo's row, a person made beforehand by plain calls is untouched, and a
//!   re-run makes no call;
//! - 70% of the persons gone, an empty source (a folder or a manifest of its header
//!   alone), and a photo that cannot be read each delete nothing and exit 4 with
//!   the reason; `--max-delete 100%` then deletes.

mod support;

use faceenroll::emulator::Emulator;
use faceenroll::service::client::ImageBody;
use std::collections::BTreeSet;
use std::path::Path;
use support::bin::code_and_text as output;
use support::{
    client, emulator, enroll_command, faceenroll, gid, photo, pid, report_rows, Archive,
};

fn enroll(archive: &Archive, emulator: &Emulator, extra: &[&str]) -> (i32, String) {
    let mut cmd = enroll_command(&archive.root(), &emulator.endpoint(), &archive.state());
    cmd.args(["--group", "staff"]).args(extra);
    output(&mut cmd)
}

/// The persons the service holds, with their face ids.
fn held(emulator: &Emulator) -> Vec<(String, usize)> {
    emulator
        .snapshot()
        .persons
        .into_iter()
        .map(|(id, p)| (id, p.faces.len()))
        .collect()
}

fn person_ids(emulator: &Emulator) -> BTreeSet<String> {
    emulator.snapshot().persons.into_keys().collect()
}

fn remove_person(archive: &Archive, person: &str) {
    std::fs::remove_dir_all(archive.root().join(person)).unwrap();
}

/// A person made by plain calls before the job, outside the source.
fn outsider(emulator: &Emulator, dir: &Path) {
    let path = dir.join("outsider.png");
    std::fs::write(&path, photo(9000)).unwrap();
    client(emulator)
        .new_person(
            &pid("outsider"),
            &[gid("staff")],
            &ImageBody::File(path),
            None,
            None,
        )
        .unwrap();
}

#[test]
fn a_mirror_run_deletes_what_left_the_source_and_nothing_else() {
    let emulator = emulator();
    let archive = Archive::new();
    outsider(&emulator, archive.dir.path());
    let outsider_before = emulator.snapshot().persons["outsider"].clone();
    archive.fill(12, 2, 100);
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(held(&emulator).len(), 13);

    // Day 2: two persons left, one photo removed.
    remove_person(&archive, "person010");
    remove_person(&archive, "person011");
    std::fs::remove_file(archive.root().join("person000/001.png")).unwrap();
    let removed_face = emulator.snapshot().persons["person000"].faces[1]
        .face_id
        .clone();

    // Without --mirror, the job only adds.
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(held(&emulator).len(), 13);
    assert_eq!(emulator.snapshot().persons["person000"].faces.len(), 2);

    // The plan lists every deletion, and the dry run the same.
    let mut plan = faceenroll(&[
        "plan".as_ref(),
        archive.root().as_os_str(),
        "--group".as_ref(),
        "staff".as_ref(),
        "--state".as_ref(),
        archive.state().as_os_str(),
        "--mirror".as_ref(),
        "--max-delete".as_ref(),
        "25%".as_ref(),
    ]);
    let (code, planned) = output(&mut plan);
    assert_eq!(code, 0, "{planned}");
    assert!(
        planned.contains("Mirror: 3 deletions to delete"),
        "{planned}"
    );
    for line in [
        "delete person person010",
        "delete person person011",
        &format!("delete face {removed_face} of person person000"),
    ] {
        assert!(planned.contains(line), "{line} not in {planned}");
    }
    let listed = |text: &str| text.lines().filter(|l| l.starts_with("  delete ")).count();
    assert_eq!(listed(&planned), 3, "{planned}");
    let (code, dry) = enroll(
        &archive,
        &emulator,
        &["--mirror", "--max-delete", "25%", "--dry-run"],
    );
    assert_eq!(listed(&dry), 3, "{dry}");
    assert_eq!(code, 0, "{dry}");
    assert!(dry.contains("Mirror: 3 deletions"), "{dry}");
    assert_eq!(held(&emulator).len(), 13);

    let outputs = tempfile::tempdir().unwrap();
    let summary = outputs.path().join("summary.json");
    let metrics = outputs.path().join("faceenroll.prom");
    let (code, text) = enroll(
        &archive,
        &emulator,
        &[
            "--mirror",
            // 2 of the 12 persons, 5 of the 24 faces.
            "--max-delete",
            "25%",
            "--summary-json",
            summary.to_str().unwrap(),
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Mirror: 2 persons and 5 faces deleted"),
        "{text}"
    );
    // Wrappers and monitoring read the same counts.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(
        json["mirror"],
        serde_json::json!({"persons_deleted": 2, "faces_deleted": 5, "groups_deleted": 0, "persons_left": 0, "persons_left_earlier": 0, "failed": 0, "held": null})
    );
    let prom = std::fs::read_to_string(&metrics).unwrap();
    for sample in [
        "faceenroll_mirror_deleted{kind=\"person\"} 2",
        "faceenroll_mirror_deleted{kind=\"face\"} 5",
        "faceenroll_mirror_held 0",
    ] {
        assert!(prom.lines().any(|l| l == sample), "{sample}: {prom}");
    }
    let after = emulator.snapshot();
    let mut expected: BTreeSet<String> = (0..10).map(|p| format!("person{p:03}")).collect();
    expected.insert("outsider".into());
    assert_eq!(person_ids(&emulator), expected);
    for p in 1..10 {
        assert_eq!(after.persons[&format!("person{p:03}")].faces.len(), 2);
    }
    let person000 = &after.persons["person000"];
    assert_eq!(person000.faces.len(), 1);
    assert!(person000.faces.iter().all(|f| f.face_id != removed_face));
    assert_eq!(after.persons["outsider"], outsider_before);

    // The report keeps the removed photo, with the face deleted.
    let rows = report_rows(&archive.state());
    let row = rows
        .iter()
        .find(|r| r.image.ends_with("person000/001.png"))
        .expect("a row for the removed photo");
    assert_eq!(row.status, "removed");
    assert_eq!(row.face_id, removed_face);
    assert!(row.reason.contains("deleted by a mirror run at"), "{row:?}");
    // `report --only removed` takes the status the report writes, and lists just it.
    let only = support::bin::run(&[
        "report",
        "--state",
        archive.state().to_str().unwrap(),
        "--only",
        "removed",
    ]);
    assert_eq!(only.code, 0, "{only:?}");
    let listed: Vec<&str> = only.stdout.lines().skip(1).collect();
    // The five faces deleted: person000's photo and the two persons' photos.
    assert_eq!(listed.len(), 5, "{only:?}");
    assert!(listed.iter().all(|l| l.contains(",removed,")), "{only:?}");
    assert!(listed[0].contains("person000/001.png"), "{only:?}");

    // Done: a re-run makes no call.
    let calls = emulator.counters().requests;
    let (code, text) = enroll(&archive, &emulator, &["--mirror"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(emulator.counters().requests, calls, "{text}");
}

#[test]
fn a_source_that_lost_most_persons_deletes_nothing_until_the_limit_is_raised() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(10, 2, 100);
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    for p in 3..10 {
        remove_person(&archive, &format!("person{p:03}"));
    }
    let outputs = tempfile::tempdir().unwrap();
    let summary = outputs.path().join("summary.json");
    let (code, text) = enroll(
        &archive,
        &emulator,
        &["--mirror", "--summary-json", summary.to_str().unwrap()],
    );
    assert_eq!(code, 4, "{text}");
    assert!(
        text.contains(
            "7 persons would leave the service, passing --max-delete 10% (at most 1 of \
             the 10 persons"
        ),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert_eq!(json["mirror"]["persons_deleted"], 0);
    assert!(
        json["mirror"]["held"]
            .as_str()
            .is_some_and(|why| why.contains("--max-delete 10%")),
        "{json}"
    );
    assert_eq!(held(&emulator).len(), 10);

    let (code, text) = enroll(&archive, &emulator, &["--mirror", "--max-delete", "100%"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        person_ids(&emulator),
        ["person000", "person001", "person002"]
            .map(String::from)
            .into()
    );
}

#[test]
fn an_empty_source_or_one_with_an_error_deletes_nothing() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(3, 2, 100);
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");

    // A photo that cannot be read: no deletion, whatever the limit.
    remove_person(&archive, "person002");
    archive.add("person001", "broken.png", b"not an image at all");
    let (code, text) = enroll(&archive, &emulator, &["--mirror", "--max-delete", "100%"]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("the source had 1 error"), "{text}");
    assert_eq!(held(&emulator).len(), 3);
    std::fs::remove_file(archive.root().join("person001/broken.png")).unwrap();

    // Every folder gone (an unmounted share): refused, or held when empty is allowed.
    for p in 0..2 {
        remove_person(&archive, &format!("person{p:03}"));
    }
    let (code, text) = enroll(&archive, &emulator, &["--mirror", "--max-delete", "100%"]);
    assert_eq!(code, 2, "{text}");
    assert_eq!(held(&emulator).len(), 3);
    let (code, text) = enroll(
        &archive,
        &emulator,
        &["--mirror", "--max-delete", "100%", "--allow-empty"],
    );
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("the source lists no photo"), "{text}");
    assert_eq!(held(&emulator).len(), 3);
}

#[test]
fn a_person_deleted_by_a_mirror_comes_back_when_listed_again_and_can_leave_again() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(10, 2, 100);
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    let saved = archive.dir.path().join("saved");
    std::fs::rename(archive.root().join("person009"), &saved).unwrap();
    let (code, text) = enroll(&archive, &emulator, &["--mirror"]);
    assert_eq!(code, 0, "{text}");
    assert!(!person_ids(&emulator).contains("person009"), "{text}");

    std::fs::rename(&saved, archive.root().join("person009")).unwrap();
    let (code, text) = enroll(&archive, &emulator, &["--mirror"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(emulator.snapshot().persons["person009"].faces.len(), 2);

    remove_person(&archive, "person009");
    let (code, text) = enroll(&archive, &emulator, &["--mirror"]);
    assert_eq!(code, 0, "{text}");
    assert!(!person_ids(&emulator).contains("person009"), "{text}");
}

#[test]
fn a_person_that_existed_before_the_job_loses_only_the_jobs_faces_and_groups() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(3, 2, 100);
    // person001 existed before the job, in another group, with a face of its own.
    let theirs = archive.dir.path().join("theirs.png");
    std::fs::write(&theirs, photo(7000)).unwrap();
    client(&emulator)
        .new_person(
            &pid("person001"),
            &[gid("vip")],
            &ImageBody::File(theirs),
            None,
            None,
        )
        .unwrap();
    let before = emulator.snapshot().persons["person001"].clone();
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(emulator.snapshot().persons["person001"].faces.len(), 3);

    remove_person(&archive, "person001");
    // One person, two faces of the job's.
    let (code, text) = enroll(&archive, &emulator, &["--mirror", "--max-delete", "2"]);
    assert_eq!(code, 0, "{text}");
    let after = emulator.snapshot();
    assert_eq!(after.persons["person001"], before, "{text}");
    assert_eq!(after.persons.len(), 3);
}

/// A manifest cut to its header line (an export that failed half way) lists no
/// photo: `--mirror` deletes nothing and exits 4 saying why, whatever the limit.
#[test]
fn a_manifest_of_its_header_alone_deletes_nothing() {
    let emulator = emulator();
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("manifest.csv");
    let state = dir.path().join("state");
    for (person, seed) in [("p", 1), ("q", 2)] {
        std::fs::write(dir.path().join(format!("{person}.png")), photo(seed)).unwrap();
    }
    std::fs::write(
        &manifest,
        "person_id,image,group_ids\np,p.png,staff\nq,q.png,staff\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = enroll_command(&manifest, &emulator.endpoint(), &state);
        output(cmd.args(extra))
    };
    let (code, text) = run(&[]);
    assert_eq!(code, 0, "{text}");
    let before = held(&emulator);
    assert_eq!(before.len(), 2);

    std::fs::write(&manifest, "person_id,image,group_ids\n").unwrap();
    let deletions = |e: &Emulator| {
        let c = e.counters();
        c.received("delperson") + c.received("delface") + c.received("delgroupids")
    };
    let (code, text) = run(&["--mirror", "--max-delete", "100%"]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("lists no photo"), "{text}");
    assert_eq!(held(&emulator), before, "{text}");
    assert_eq!(deletions(&emulator), 0, "{text}");
}
