//! `enroll --mirror` takes the source a run names as the truth of that run, however
//! it is named, and deletes only with evidence that what replaces a face is there.
//! Each test checks what the emulator holds, not what the job recorded.
//!
//! - a nightly export under a new file name each night: who left is deleted, a
//!   replaced photo has exactly its new face, and the guards judge that night's
//!   file alone (a header-only file, a file missing 70% of the persons);
//! - the same tree named `tree/`, `../x/tree` or through a link is one source;
//! - a source missing 30% of persons of 9 photos each deletes nothing by default;
//! - a replacement the service refuses keeps the old face;
//! - the job's own report fed back under `--mirror` is refused before any call.

mod support;

use faceenroll::emulator::Emulator;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::bin::code_and_text as output;
use support::{blank, emulator, enroll_command, faceenroll, hash_of, held_faces, photo, Archive};

fn enroll(source: &Path, archive: &Archive, emulator: &Emulator, extra: &[&str]) -> (i32, String) {
    let mut cmd = enroll_command(source, &emulator.endpoint(), &archive.state());
    cmd.args(extra);
    output(&mut cmd)
}

fn person_ids(emulator: &Emulator) -> BTreeSet<String> {
    emulator.snapshot().persons.into_keys().collect()
}

/// A manifest at `path` listing, for each of `persons`, its photos in the archive
/// (relative to the manifest's folder), in group `door`.
fn export(path: &Path, archive: &Archive, persons: &[u32]) {
    let mut text = String::from("person_id,image,group_ids\n");
    for p in persons {
        let person = format!("person{p:03}");
        let mut photos: Vec<PathBuf> = std::fs::read_dir(archive.root().join(&person))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        photos.sort();
        for photo in photos {
            let name = photo.file_name().unwrap().to_string_lossy().into_owned();
            text.push_str(&format!("{person},photos/{person}/{name},door\n"));
        }
    }
    std::fs::write(path, text).unwrap();
}

#[test]
fn a_dated_export_is_the_source_of_its_night() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(20, 2, 100);
    let dir = archive.dir.path();
    let all: Vec<u32> = (0..20).collect();
    let day1 = dir.join("hr-2026-12-06.csv");
    export(&day1, &archive, &all);
    let (code, text) = enroll(&day1, &archive, &emulator, &["--mirror"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(person_ids(&emulator).len(), 20);

    // Day 2, under another name: person019 left, person000's first photo replaced.
    let new_content = photo(77_777);
    archive.add("person000", "000.png", &new_content);
    let day2 = dir.join("hr-2026-12-07.csv");
    export(&day2, &archive, &all[..19]);
    let summary = dir.join("summary.json");
    let (code, text) = enroll(
        &day2,
        &archive,
        &emulator,
        &["--mirror", "--summary-json", summary.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{text}");
    assert!(!person_ids(&emulator).contains("person019"), "{text}");
    assert_eq!(person_ids(&emulator).len(), 19, "{text}");
    let held = held_faces(&emulator.snapshot());
    let mut expected = vec![
        hash_of(&archive.root().join("person000/000.png")),
        hash_of(&archive.root().join("person000/001.png")),
    ];
    expected.sort();
    assert_eq!(held["person000"], expected, "{text}");
    // The report says where the replaced photo's earlier face went.
    let replaced = support::report_rows(&archive.state())
        .into_iter()
        .find(|r| r.image.ends_with("person000/000.png"))
        .expect("a row for the replaced photo");
    assert!(
        replaced
            .reason
            .contains("of its earlier content was deleted by a mirror run"),
        "{replaced:?}"
    );
    // The summary names the source that left, in words and in its JSON.
    assert!(
        text.lines().any(|l| l.starts_with("Source gone: ")
            && l.contains("hr-2026-12-06.csv is no longer a source of the job")),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    assert!(
        json["gone_sources"][0]
            .as_str()
            .is_some_and(|s| s.ends_with("hr-2026-12-06.csv")),
        "{json}"
    );
    // status names the source that left.
    let (code, status) = output(&mut faceenroll(&[
        "status".as_ref(),
        "--state".as_ref(),
        archive.state().as_os_str(),
    ]));
    assert_eq!(code, 0, "{status}");
    assert!(
        status.contains("source gone:") && status.contains("hr-2026-12-06.csv"),
        "{status}"
    );
    // A re-run of the same night makes no call.
    let calls = emulator.counters().requests;
    let (code, text) = enroll(&day2, &archive, &emulator, &["--mirror"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(emulator.counters().requests, calls, "{text}");

    // Day 3: a file missing 70% of the persons deletes nothing.
    let day3 = dir.join("hr-2026-12-08.csv");
    export(&day3, &archive, &all[..6]);
    let (code, text) = enroll(&day3, &archive, &emulator, &["--mirror"]);
    assert_eq!(code, 4, "{text}");
    assert_eq!(person_ids(&emulator).len(), 19, "{text}");

    // Day 4: the export is its header alone: nothing deleted either.
    let day4 = dir.join("hr-2026-12-09.csv");
    std::fs::write(&day4, "person_id,image,group_ids\n").unwrap();
    let (code, text) = enroll(&day4, &archive, &emulator, &["--mirror"]);
    assert_ne!(code, 0, "{text}");
    assert_eq!(person_ids(&emulator).len(), 19, "{text}");
}

#[test]
fn the_same_tree_named_another_way_is_the_same_source() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(20, 2, 100);
    let dir = archive.dir.path();
    let (code, text) = enroll(&archive.root(), &archive, &emulator, &["--group", "door"]);
    assert_eq!(code, 0, "{text}");
    let link = dir.join("link");
    std::os::unix::fs::symlink(archive.root(), &link).unwrap();
    std::fs::create_dir(dir.join("x")).unwrap();
    let spellings = [
        PathBuf::from(format!("{}/", archive.root().display())),
        dir.join("x/../photos"),
        link,
    ];
    for (night, spelling) in spellings.iter().enumerate() {
        // Each night one photo leaves the tree.
        let gone = archive.root().join(format!("person{night:03}/001.png"));
        std::fs::remove_file(&gone).unwrap();
        let (code, text) = enroll(
            spelling,
            &archive,
            &emulator,
            &["--group", "door", "--mirror"],
        );
        assert_eq!(code, 0, "{}: {text}", spelling.display());
        let held = held_faces(&emulator.snapshot());
        assert_eq!(
            held[&format!("person{night:03}")],
            vec![hash_of(
                &archive.root().join(format!("person{night:03}/000.png"))
            )],
            "{}: {text}",
            spelling.display()
        );
        assert_eq!(held.len(), 20, "{}: {text}", spelling.display());
        assert!(
            !text.contains("no longer a source"),
            "{}: {text}",
            spelling.display()
        );
    }
}

#[test]
fn a_source_missing_30_percent_of_persons_of_many_photos_deletes_nothing() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(10, 9, 100);
    let (code, text) = enroll(&archive.root(), &archive, &emulator, &["--group", "door"]);
    assert_eq!(code, 0, "{text}");
    for p in 7..10 {
        std::fs::remove_dir_all(archive.root().join(format!("person{p:03}"))).unwrap();
    }
    let (code, text) = enroll(
        &archive.root(),
        &archive,
        &emulator,
        &["--group", "door", "--mirror"],
    );
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("3 persons would leave the service"), "{text}");
    assert_eq!(person_ids(&emulator).len(), 10, "{text}");
    assert!(held_faces(&emulator.snapshot())
        .values()
        .all(|f| f.len() == 9));
    // Let through on purpose, they go.
    let (code, text) = enroll(
        &archive.root(),
        &archive,
        &emulator,
        &["--group", "door", "--mirror", "--max-delete", "30%"],
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(person_ids(&emulator).len(), 7, "{text}");
}

#[test]
fn a_replacement_the_service_refuses_keeps_the_old_face() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(20, 2, 100);
    let (code, text) = enroll(&archive.root(), &archive, &emulator, &["--group", "door"]);
    assert_eq!(code, 0, "{text}");
    let before = held_faces(&emulator.snapshot())["person003"].clone();
    // Both photos replaced by pictures without a face.
    archive.add("person003", "000.png", &blank());
    let mut other = blank();
    other.extend_from_slice(b"trailer");
    archive.add("person003", "001.png", &other);
    let (code, text) = enroll(
        &archive.root(),
        &archive,
        &emulator,
        &["--group", "door", "--mirror"],
    );
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        held_faces(&emulator.snapshot())["person003"],
        before,
        "{text}"
    );
    assert!(text.contains("earlier content is kept"), "{text}");
    // The nights after: said again, nothing new, no call.
    for night in 0..2 {
        let calls = emulator.counters().requests;
        let (code, again) = enroll(
            &archive.root(),
            &archive,
            &emulator,
            &["--group", "door", "--mirror"],
        );
        assert_eq!(code, 0, "night {night}: {again}");
        assert_eq!(
            emulator.counters().requests,
            calls,
            "night {night}: {again}"
        );
        assert!(
            again.contains("earlier content is kept"),
            "night {night}: {again}"
        );
    }
    assert_eq!(held_faces(&emulator.snapshot())["person003"], before);
}

#[test]
fn a_report_fed_back_under_mirror_is_refused_before_any_call() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(3, 2, 100);
    let (code, text) = enroll(&archive.root(), &archive, &emulator, &["--group", "door"]);
    assert_eq!(code, 0, "{text}");
    let (code, report) = output(&mut faceenroll(&[
        "report".as_ref(),
        "--state".as_ref(),
        archive.state().as_os_str(),
    ]));
    assert_eq!(code, 0);
    let fed_back = archive.dir.path().join("report.csv");
    // Only the first person's rows, as a failed-rows manifest would be.
    let rows: Vec<&str> = report
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l.starts_with("person000,"))
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&fed_back, rows.join("\n") + "\n").unwrap();
    let calls = emulator.counters().requests;
    let (code, text) = enroll(&fed_back, &archive, &emulator, &["--mirror"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("is a report of a job"), "{text}");
    assert_eq!(emulator.counters().requests, calls, "{text}");
    // Without --mirror it joins the job and deletes nothing.
    let (code, text) = enroll(&fed_back, &archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(person_ids(&emulator).len(), 3);
}

#[test]
fn a_person_left_whole_is_not_planned_again_night_after_night() {
    use faceenroll::service::client::ImageBody;
    use support::{client, gid, pid};
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(20, 1, 100);
    let (code, text) = enroll(&archive.root(), &archive, &emulator, &["--group", "door"]);
    assert_eq!(code, 0, "{text}");
    // Someone deletes person007 and makes it again with a face of their own.
    let theirs = archive.dir.path().join("theirs.png");
    std::fs::write(&theirs, photo(5_555)).unwrap();
    let by_hand = client(&emulator);
    by_hand.del_person(&pid("person007")).unwrap();
    by_hand
        .new_person(
            &pid("person007"),
            &[gid("door")],
            &ImageBody::File(theirs),
            None,
            None,
        )
        .unwrap();
    let theirs_now = emulator.snapshot().persons["person007"].clone();
    std::fs::remove_dir_all(archive.root().join("person007")).unwrap();
    let mirror = ["--group", "door", "--mirror"];
    let (code, text) = enroll(&archive.root(), &archive, &emulator, &mirror);
    // Left whole this night: said, exit 1; the nights after, unchanged, exit 0.
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        emulator.snapshot().persons["person007"],
        theirs_now,
        "{text}"
    );
    let summary = archive.dir.path().join("summary.json");
    let nightly = [&mirror[..], &["--summary-json", summary.to_str().unwrap()]].concat();
    for night in 0..2 {
        let calls = emulator.counters().requests;
        let (code, text) = enroll(&archive.root(), &archive, &emulator, &nightly);
        assert_eq!(code, 0, "night {night}: {text}");
        // Counted, not in the exit code: said on the night it was left.
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
        assert_eq!(json["mirror"]["persons_left_earlier"], 1, "{json}");
        assert_eq!(json["exit_code"], 0, "{json}");
        assert_eq!(emulator.counters().requests, calls, "night {night}: {text}");
        assert!(
            text.contains("person007: left the source and stays"),
            "night {night}: {text}"
        );
        assert!(!text.contains("delete person"), "night {night}: {text}");
    }
    assert_eq!(emulator.snapshot().persons["person007"], theirs_now);
}

#[test]
fn a_face_known_only_by_a_duplicate_answer_leaves_with_its_photo() {
    use faceenroll::emulator::Faults;
    use support::{archive_faces, emulator_with, report_rows};
    let emulator = emulator_with(|c| c.faults.lose_answer = 0.4);
    let archive = Archive::new();
    archive.fill(20, 3, 100);
    let add = ["--group", "door"];
    let mut finished = false;
    for _ in 0..15 {
        let (code, _) = enroll(&archive.root(), &archive, &emulator, &add);
        if code == 0 {
            finished = true;
            break;
        }
    }
    assert!(finished, "the job did not finish under lost answers");
    emulator.set_faults(Faults::default());
    // The photos whose face the service holds under an id it never gave the job.
    let unlearned: Vec<_> = report_rows(&archive.state())
        .into_iter()
        .filter(|r| r.status == "enrolled" && r.face_id.is_empty())
        .collect();
    assert!(
        !unlearned.is_empty(),
        "no face was confirmed by a duplicate answer"
    );
    let mut gone = Vec::new();
    for row in &unlearned {
        let path = PathBuf::from(&row.image);
        // Keep a photo of each person, so the person stays listed.
        let left = std::fs::read_dir(path.parent().unwrap()).unwrap().count();
        if left > 1 {
            std::fs::remove_file(&path).unwrap();
            gone.push(path);
        }
    }
    assert!(!gone.is_empty());
    let (_, text) = enroll(
        &archive.root(),
        &archive,
        &emulator,
        &["--group", "door", "--mirror", "--max-delete", "100%"],
    );
    let held = held_faces(&emulator.snapshot());
    let expected = archive_faces(&archive, &[]);
    // Each person holds exactly its listed photos, or the summary names the photo
    // whose face could not be told apart.
    for (person, faces) in &expected {
        if held[person] != *faces {
            assert!(
                text.contains(&format!("{person}: photo"))
                    && text.contains("its face could not be removed"),
                "{person}: {:?} against {faces:?}: {text}",
                held[person]
            );
        }
    }
    let told = expected.iter().filter(|(p, f)| held[*p] == **f).count();
    assert!(told > 0, "{text}");
    // Each photo gone from the source keeps its report row: removed, or why its
    // face stays.
    let rows = report_rows(&archive.state());
    for path in &gone {
        let row = rows
            .iter()
            .find(|r| Path::new(&r.image) == path)
            .unwrap_or_else(|| panic!("no report row for {}", path.display()));
        assert!(
            row.status == "removed" || row.reason.contains("its face stays on the service"),
            "{row:?}"
        );
    }
    // Night after night, nothing more is planned, and what was left is said.
    for night in 0..2 {
        let calls = emulator.counters().requests;
        let (code, again) = enroll(
            &archive.root(),
            &archive,
            &emulator,
            &["--group", "door", "--mirror", "--max-delete", "100%"],
        );
        assert_eq!(code, 0, "night {night}: {again}");
        assert_eq!(
            emulator.counters().requests,
            calls,
            "night {night}: {again}"
        );
        assert_eq!(
            held_faces(&emulator.snapshot()),
            held,
            "night {night}: {again}"
        );
        if told < expected.len() {
            assert!(again.contains("its face could not be removed"), "{again}");
        }
    }
}

#[test]
fn a_hold_for_a_source_error_names_the_photo() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(20, 2, 100);
    let manifest = archive.dir.path().join("hr.csv");
    let all: Vec<u32> = (0..20).collect();
    export(&manifest, &archive, &all);
    let (code, text) = enroll(&manifest, &archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    // An enrolled photo that cannot be read any more (a folder in its place), and a
    // person who left.
    let broken = archive.root().join("person004/001.png");
    std::fs::remove_file(&broken).unwrap();
    std::fs::create_dir(&broken).unwrap();
    export(&manifest, &archive, &all[..19]);
    let (code, text) = enroll(&manifest, &archive, &emulator, &["--mirror"]);
    assert_eq!(code, 4, "{text}");
    assert!(text.contains("the source had 1 error"), "{text}");
    let broken = broken.display().to_string();
    assert!(
        text.lines()
            .any(|l| l.starts_with("Mirror: nothing deleted") && l.contains(&broken)),
        "the hold names the photo: {text}"
    );
    assert_eq!(person_ids(&emulator).len(), 20, "{text}");
}

#[test]
fn a_photo_replaced_in_place_is_noticed_without_the_content_check() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(20, 2, 100);
    let args = ["--group", "door", "--no-content-check"];
    let (code, text) = enroll(&archive.root(), &archive, &emulator, &args);
    assert_eq!(code, 0, "{text}");
    let replaced = archive.add("person002", "000.png", &photo(88_888));
    // A later modification time, as a copy over the file gives.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&replaced)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let (code, text) = enroll(
        &archive.root(),
        &archive,
        &emulator,
        &["--group", "door", "--no-content-check", "--mirror"],
    );
    assert_eq!(code, 0, "{text}");
    let mut expected = vec![
        hash_of(&replaced),
        hash_of(&archive.root().join("person002/001.png")),
    ];
    expected.sort();
    assert_eq!(
        held_faces(&emulator.snapshot())["person002"],
        expected,
        "{text}"
    );
}

#[test]
fn a_revoked_group_of_an_enrolled_person_is_an_error_that_holds_deletions() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(10, 2, 100);
    let manifest = archive.dir.path().join("hr.csv");
    let all: Vec<u32> = (0..10).collect();
    export(&manifest, &archive, &all);
    let (code, text) = enroll(&manifest, &archive, &emulator, &["--mirror"]);
    assert_eq!(code, 0, "{text}");
    let before = emulator.snapshot();

    // person009 left, and person000's groups are revoked by emptying its cells;
    // on later nights, a bad group instead.
    for (night, groups) in ["", "la b", "lab,x"].iter().enumerate() {
        export(&manifest, &archive, &all[..9]);
        let text = std::fs::read_to_string(&manifest).unwrap().replace(
            "person000/000.png,door",
            &format!("person000/000.png,{}", csv_cell(groups)),
        );
        let text = text.replace(
            "person000/001.png,door",
            &format!("person000/001.png,{}", csv_cell(groups)),
        );
        std::fs::write(&manifest, text).unwrap();
        let (code, text) = enroll(&manifest, &archive, &emulator, &["--mirror"]);
        assert_eq!(code, 4, "night {night}: {text}");
        assert!(text.contains("hr.csv:2"), "night {night}: {text}");
        assert!(text.contains("person000"), "night {night}: {text}");
        let now = emulator.snapshot();
        assert_eq!(now.persons, before.persons, "night {night}: {text}");
        assert_eq!(now.groups, before.groups, "night {night}: {text}");
    }
    // Fixed, the night goes on: the leaver is deleted, person000 stays in door.
    export(&manifest, &archive, &all[..9]);
    let (code, text) = enroll(&manifest, &archive, &emulator, &["--mirror"]);
    assert_eq!(code, 0, "{text}");
    assert!(!person_ids(&emulator).contains("person009"), "{text}");
    assert_eq!(
        emulator.snapshot().persons["person000"].groups,
        ["door"],
        "{text}"
    );
}

/// A CSV cell holding `value`.
fn csv_cell(value: &str) -> String {
    if value.contains(',') {
        format!("\"{value}\"")
    } else {
        value.to_owned()
    }
}

#[test]
fn a_fixed_photo_over_the_limit_is_told_how_it_takes_a_place_and_takes_it() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(1, 22, 100);
    // Photo 003 has no face: refused, and 020 takes its place among the 20.
    archive.add("person000", "003.png", &blank());
    let door = ["--group", "door"];
    let (code, text) = enroll(&archive.root(), &archive, &emulator, &door);
    assert_eq!(code, 1, "{text}");
    assert_eq!(held_faces(&emulator.snapshot())["person000"].len(), 20);

    // Fixed: the person is full, and the plan says which photo to take out.
    archive.add("person000", "003.png", &photo(33_333));
    let (code, text) = output(
        faceenroll(&["plan".as_ref(), archive.root().as_os_str()])
            .args(["--state".as_ref(), archive.state().as_os_str()])
            .args(door),
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("003.png") && text.contains("person000/020.png: a face on the service"),
        "{text}"
    );
    // Taken out as told, with --mirror: its face leaves, and the fixed photo
    // takes its place the run after.
    std::fs::remove_file(archive.root().join("person000/020.png")).unwrap();
    let mirror = ["--group", "door", "--mirror"];
    let (_, text) = enroll(&archive.root(), &archive, &emulator, &mirror);
    let (code, text2) = enroll(&archive.root(), &archive, &emulator, &mirror);
    assert_eq!(code, 0, "{text}\n{text2}");
    let held = &held_faces(&emulator.snapshot())["person000"];
    assert_eq!(held.len(), 20, "{text}\n{text2}");
    assert!(
        held.contains(&hash_of(&archive.root().join("person000/003.png"))),
        "{text}\n{text2}"
    );
}

#[test]
fn an_emptied_name_cell_keeps_the_name_and_says_so() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(2, 1, 100);
    let manifest = archive.dir.path().join("hr.csv");
    let write = |name: &str, tag: &str| {
        std::fs::write(
            &manifest,
            format!(
                "person_id,image,group_ids,person_name,tag\n\
                 person000,photos/person000/000.png,door,{name},{tag}\n\
                 person001,photos/person001/000.png,door,Bob,\n"
            ),
        )
        .unwrap();
    };
    write("Alice", "night shift");
    let (code, text) = enroll(&manifest, &archive, &emulator, &["--mirror"]);
    assert_eq!(code, 0, "{text}");
    write("", "");
    let calls = emulator.counters().requests;
    let (code, text) = enroll(&manifest, &archive, &emulator, &["--mirror", "-v"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("person_name is empty for person \"person000\"")
            && text.contains("the service keeps \"Alice\"")
            && text.contains("tag is empty for person \"person000\""),
        "{text}"
    );
    assert_eq!(emulator.counters().requests, calls, "{text}");
    let person = &emulator.snapshot().persons["person000"];
    assert_eq!(
        (person.name.as_str(), person.tag.as_str()),
        ("Alice", "night shift")
    );
}

#[test]
fn a_leaver_found_before_the_job_is_said_every_night_and_planned_once() {
    use faceenroll::service::client::ImageBody;
    use support::{client, gid, pid};
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(10, 1, 100);
    // person003 is in door before the job, with a face of its own.
    let theirs = archive.dir.path().join("theirs.png");
    std::fs::write(&theirs, photo(4_444)).unwrap();
    client(&emulator)
        .new_person(
            &pid("person003"),
            &[gid("door")],
            &ImageBody::File(theirs),
            None,
            None,
        )
        .unwrap();
    let door = ["--group", "door"];
    let (code, text) = enroll(&archive.root(), &archive, &emulator, &door);
    assert_eq!(code, 0, "{text}");
    assert_eq!(emulator.snapshot().persons["person003"].faces.len(), 2);

    std::fs::remove_dir_all(archive.root().join("person003")).unwrap();
    let mirror = ["--group", "door", "--mirror"];
    let (code, text) = enroll(&archive.root(), &archive, &emulator, &mirror);
    // Said, and the night that left it asks for a look.
    assert_eq!(code, 1, "{text}");
    // The job's face leaves; the person and its group were there before the job.
    let left = emulator.snapshot().persons["person003"].clone();
    assert_eq!(left.faces.len(), 1, "{text}");
    assert!(text.contains("person003"), "{text}");
    for night in 0..2 {
        let calls = emulator.counters().requests;
        let (code, again) = enroll(&archive.root(), &archive, &emulator, &mirror);
        assert_eq!(code, 0, "night {night}: {again}");
        assert_eq!(
            emulator.counters().requests,
            calls,
            "night {night}: {again}"
        );
        assert!(
            again.contains("person003: left the source and stays on the service"),
            "night {night}: {again}"
        );
    }
    assert_eq!(emulator.snapshot().persons["person003"], left);
}

#[test]
fn plan_judges_the_guard_as_the_run_will_after_its_adds() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(9, 1, 100);
    let door = ["--group", "door"];
    let (code, text) = enroll(&archive.root(), &archive, &emulator, &door);
    assert_eq!(code, 0, "{text}");
    // One person joins and one leaves: one of the ten the run will hold.
    archive.add("person100", "000.png", &photo(100_100));
    std::fs::remove_dir_all(archive.root().join("person008")).unwrap();
    let mirror = ["--group", "door", "--mirror"];
    let (code, plan) = output(
        faceenroll(&["plan".as_ref(), archive.root().as_os_str()])
            .args(["--state".as_ref(), archive.state().as_os_str()])
            .args(mirror),
    );
    assert_eq!(code, 0, "{plan}");
    assert!(!plan.contains("held back"), "{plan}");
    assert!(plan.contains("(the job holds 10 persons"), "{plan}");
    let (code, text) = enroll(&archive.root(), &archive, &emulator, &mirror);
    assert_eq!(code, 0, "{text}");
    let ids = person_ids(&emulator);
    assert!(
        ids.contains("person100") && !ids.contains("person008"),
        "{text}"
    );
}

#[test]
fn verify_checks_every_person_the_job_holds_whatever_source_added_it() {
    use support::{client, pid};
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(4, 1, 100);
    let dir = archive.dir.path();
    let first = dir.join("first.csv");
    export(&first, &archive, &[0, 1]);
    let (code, text) = enroll(&first, &archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    // A second source joins the job beside the first.
    let second = dir.join("second.csv");
    export(&second, &archive, &[2, 3]);
    let (code, text) = enroll(&second, &archive, &emulator, &["--new-source"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(person_ids(&emulator).len(), 4, "{text}");
    // A person of the first source is deleted by hand.
    client(&emulator).del_person(&pid("person000")).unwrap();
    let (code, text) = output(&mut support::after_command(
        "verify",
        &emulator.endpoint(),
        &archive.state(),
        &[],
    ));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("1 missing"), "{text}");
    let drift = std::fs::read_to_string(archive.state().join("drift.csv")).unwrap();
    assert!(drift.lines().any(|l| l.contains("person000")), "{drift}");
}
