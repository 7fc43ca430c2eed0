//! Planning end to end: trees and manifests with every kind of bad input, written
//! into a progress store in temporary directories, and re-planned as a later run
//! would.

mod support;

use faceenroll::engine::queue::pending_persons;
use faceenroll::model::ImageRef;
use faceenroll::normalize::NormalizeOptions;
use faceenroll::plan::{self, PlanOptions, PlanSummary};
use faceenroll::source::{Layout, SourceSpec};
use faceenroll::store::{
    FaceRef, Failure, FailureKind, PersonState, PhotoEntry, PhotoKey, PhotoState, Store,
};
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use support::{jpeg, tree, write};

fn manifest(dir: &Path, text: &str) -> SourceSpec {
    let path = dir.join("manifest.csv");
    fs::write(&path, text).unwrap();
    SourceSpec::Manifest { path }
}

fn plan(store: &Store, spec: &SourceSpec) -> PlanSummary {
    plan::build(store, spec, &PlanOptions::default()).expect("plan")
}

fn photos(store: &Store) -> Vec<PhotoEntry> {
    store.photos().map(|r| r.unwrap().1).collect()
}

/// The state of the photo at `path` (a file) of `person`.
fn state(store: &Store, person: &str, path: &Path) -> PhotoState {
    store
        .photo(&PhotoKey::new(person, &ImageRef::File(path.to_owned())))
        .unwrap()
        .unwrap_or_else(|| panic!("no entry for {person} {}", path.display()))
        .state
}

/// What a state says about the photo, for the messages the operator reads.
fn said(state: &PhotoState) -> String {
    match state {
        PhotoState::Failed(f) => f.message.clone(),
        PhotoState::Skipped { reason } | PhotoState::Duplicate { reason } => reason.clone(),
        other => format!("{other:?}"),
    }
}

fn assert_invalid(state: &PhotoState, needle: &str) {
    match state {
        PhotoState::Failed(Failure {
            kind: FailureKind::Input,
            code: None,
            message,
        }) => assert!(message.contains(needle), "{message:?} lacks {needle:?}"),
        other => panic!("expected Failed(Input) with {needle:?}, got {other:?}"),
    }
}

fn assert_every_photo_once(store: &Store, expected: &[(&str, PathBuf)]) {
    let all = photos(store);
    let keys: HashSet<(String, String)> = all
        .iter()
        .map(|e| (e.person.clone(), e.image.to_string()))
        .collect();
    assert_eq!(keys.len(), all.len(), "a photo is recorded twice");
    let want: HashSet<(String, String)> = expected
        .iter()
        .map(|(p, f)| (p.to_string(), f.display().to_string()))
        .collect();
    assert_eq!(keys, want);
    let generation = store.meta().unwrap().generation;
    assert!(all.iter().all(|e| e.generation == generation));
}

#[test]
fn a_tree_accounts_for_every_photo_with_its_problem() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    let a = root.join("alice/a.jpg");
    let b = root.join("alice/b.JPG");
    let notes = root.join("alice/notes.txt");
    let empty = root.join("alice/empty.jpg");
    let text = root.join("alice/fake.png");
    let nested = root.join("alice/2019/c.jpg");
    let bad = root.join("bad id/x.jpg");
    let bob = root.join("bob/1.bmp");
    write(&a, &jpeg("a"));
    write(&b, &jpeg("a")); // the same content as a.jpg
    write(&notes, b"a note");
    write(&empty, b"");
    write(&text, b"hello, not an image");
    write(&nested, &jpeg("c"));
    write(&bad, &jpeg("x"));
    write(&bob, b"BM bitmap");
    write(&root.join("alice/.hidden.jpg"), &jpeg("h"));
    write(&root.join("README.jpg"), &jpeg("r"));

    let store = Store::open(&dir.path().join("state")).unwrap();
    let summary = plan(&store, &tree(&root, &["staff"]));

    assert_every_photo_once(
        &store,
        &[
            ("alice", a.clone()),
            ("alice", b.clone()),
            ("alice", notes.clone()),
            ("alice", empty.clone()),
            ("alice", text.clone()),
            ("alice", nested.clone()),
            ("bad id", bad.clone()),
            ("bob", bob.clone()),
        ],
    );
    assert_eq!(state(&store, "alice", &a), PhotoState::Pending);
    let dup = state(&store, "alice", &b);
    assert!(matches!(dup, PhotoState::Duplicate { .. }), "{dup:?}");
    assert!(
        said(&dup).contains(&format!("same content as {}", a.display())),
        "{}",
        said(&dup)
    );
    let skipped = state(&store, "alice", &notes);
    assert!(matches!(skipped, PhotoState::Skipped { .. }));
    assert!(said(&skipped).contains("notes.txt: not a photo by its extension"));
    assert!(said(&state(&store, "alice", &nested)).contains("2019/c.jpg: in a subfolder"));
    assert_invalid(
        &state(&store, "alice", &empty),
        &format!("{}: the file is empty", empty.display()),
    );
    assert_invalid(
        &state(&store, "alice", &text),
        &format!(
            "{}: not an image (content is not JPEG, PNG, BMP, GIF, HEIC/HEIF, WebP or TIFF)",
            text.display()
        ),
    );
    assert_invalid(
        &state(&store, "bad id", &bad),
        "person folder \"bad id\" contains ' '",
    );
    assert_eq!(state(&store, "bob", &bob), PhotoState::Pending);

    // Persons: alice and bob, not the invalid one.
    let persons: Vec<String> = store
        .persons()
        .map(|p| p.unwrap().person.to_string())
        .collect();
    assert_eq!(persons, ["alice", "bob"]);
    let alice = store.person("alice").unwrap().unwrap();
    assert_eq!(alice.state, PersonState::New);
    assert_eq!(alice.fields.groups[0].as_str(), "staff");

    assert_eq!(summary.photos, 8);
    assert_eq!(summary.pending, 2);
    assert_eq!(summary.duplicate, 1);
    assert_eq!(summary.skipped, 2);
    assert_eq!(summary.invalid, 3);
    assert_eq!(
        (
            summary.not_taken_failed,
            summary.not_taken.get("photo not in a person folder")
        ),
        (1, Some(&1)),
        "README.jpg outside a person folder"
    );
    assert_eq!(summary.calls.newperson, 2);
    assert_eq!(summary.calls.addface, 0);
    assert!(summary.problems.iter().any(|p| p
        .message
        .contains("README.jpg: photo not in a person folder")));
}

#[test]
fn the_group_person_layout_puts_a_person_in_each_group_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    write(&root.join("g1/alice/a.jpg"), &jpeg("a"));
    write(&root.join("g2/alice/b.jpg"), &jpeg("b"));
    let bad = root.join("g 3/bob/x.jpg");
    write(&bad, &jpeg("x"));
    let store = Store::open(&dir.path().join("state")).unwrap();
    let spec = SourceSpec::Tree {
        root: root.clone(),
        groups: vec!["all".into()],
        layout: Layout::GroupPerson,
        follow_symlinks: false,
    };
    let summary = plan(&store, &spec);
    let alice = store.person("alice").unwrap().unwrap();
    let groups: Vec<&str> = alice.fields.groups.iter().map(|g| g.as_str()).collect();
    assert_eq!(groups, ["g1", "all", "g2"]);
    assert_invalid(
        &state(&store, "bob", &bad),
        "group folder \"g 3\" contains ' '",
    );
    assert!(store.person("bob").unwrap().is_none());
    assert_eq!(summary.pending, 2);
    // alice: newperson with a.jpg, then one addface with b.jpg.
    assert_eq!(summary.calls.newperson, 1);
    assert_eq!(summary.calls.addface, 1);
}

#[test]
fn an_invalid_group_flag_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    write(&root.join("alice/a.jpg"), &jpeg("a"));
    let store = Store::open(&dir.path().join("state")).unwrap();
    let err = plan::build(&store, &tree(&root, &["a/b"]), &PlanOptions::default())
        .expect_err("an invalid --group is refused");
    assert!(err.to_string().contains("--group \"a/b\""), "{err}");
    assert_eq!(store.photo_count(), 0);
}

#[test]
fn over_twenty_photos_the_rest_are_skipped_in_sorted_order() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    for i in 0..23 {
        write(
            &root.join(format!("alice/{i:02}.jpg")),
            &jpeg(&format!("{i}")),
        );
    }
    let store = Store::open(&dir.path().join("state")).unwrap();
    let summary = plan(&store, &tree(&root, &["g"]));
    assert_eq!(summary.pending, 20);
    assert_eq!(summary.skipped, 3);
    for i in 0..23 {
        let s = state(&store, "alice", &root.join(format!("alice/{i:02}.jpg")));
        if i < 20 {
            assert_eq!(s, PhotoState::Pending, "photo {i}");
        } else {
            assert!(matches!(s, PhotoState::Spare { .. }), "photo {i}: {s:?}");
            assert!(
                said(&s).contains("limit of 20 faces per person"),
                "{}",
                said(&s)
            );
        }
    }
    // newperson takes the first, 19 more fit one addface.
    assert_eq!(summary.calls.newperson, 1);
    assert_eq!(summary.calls.addface, 1);
}

#[test]
fn a_photo_too_large_for_a_request_is_invalid_only_without_resizing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    let big = root.join("alice/big.jpg");
    let mut bytes = jpeg("big");
    bytes.resize(40_000, 7);
    write(&big, &bytes);
    let options = PlanOptions {
        normalize: NormalizeOptions {
            enabled: false,
            ..NormalizeOptions::default()
        },
        budget: faceenroll::limits::RequestBudget::configured(16 * 1024 + 30_000),
        ..PlanOptions::default()
    };
    let store = Store::open(&dir.path().join("state")).unwrap();
    plan::build(&store, &tree(&root, &["g"]), &options).unwrap();
    assert_invalid(
        &state(&store, "alice", &big),
        &format!(
            "{}: 39.1 KiB, over the 29.3 KiB one request can carry (resizing is off)",
            big.display()
        ),
    );
    let resized = PlanOptions {
        normalize: NormalizeOptions::default(),
        ..options
    };
    plan::build(&store, &tree(&root, &["g"]), &resized).unwrap();
    assert_eq!(state(&store, "alice", &big), PhotoState::Pending);
}

#[cfg(unix)]
#[test]
fn non_utf8_file_names_are_reported_not_a_crash() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    let odd = root.join("alice").join(OsStr::from_bytes(b"caf\xe9.jpg"));
    write(&odd, &jpeg("odd"));
    write(&root.join("alice/ok.jpg"), &jpeg("ok"));
    let odd_person = root.join(OsStr::from_bytes(b"jos\xe9")).join("p.jpg");
    write(&odd_person, &jpeg("p"));
    let store = Store::open(&dir.path().join("state")).unwrap();
    let summary = plan(&store, &tree(&root, &["g"]));
    assert_eq!(summary.photos, 3);
    assert_eq!(summary.pending, 1);
    assert_eq!(summary.invalid, 2);
    let all = photos(&store);
    let odd_entry = all
        .iter()
        .find(|e| e.image.to_string().contains("caf"))
        .unwrap();
    assert_invalid(&odd_entry.state, "the name is not valid UTF-8");
    let person_entry = all.iter().find(|e| e.person.starts_with("jos")).unwrap();
    assert_invalid(
        &person_entry.state,
        "person folder's name is not valid UTF-8",
    );
    let persons: Vec<String> = store
        .persons()
        .map(|p| p.unwrap().person.to_string())
        .collect();
    assert_eq!(persons, ["alice"]);
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_does_not_hang_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    write(&root.join("alice/a.jpg"), &jpeg("a"));
    std::os::unix::fs::symlink(&root, root.join("alice/up")).unwrap();
    let store = Store::open(&dir.path().join("state")).unwrap();
    let spec = SourceSpec::Tree {
        root: root.clone(),
        groups: vec!["g".into()],
        layout: Layout::Person,
        follow_symlinks: true,
    };
    let summary = plan(&store, &spec);
    assert_eq!(summary.pending, 1);
    assert!(
        summary
            .problems
            .iter()
            .any(|p| p.message.contains("alice/up: symbolic link loop")),
        "{:#?}",
        summary.problems
    );
}

#[test]
fn a_manifest_reports_each_bad_row_by_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("a1.jpg"), &jpeg("a1"));
    write(&d.join("a2.jpg"), &jpeg("a2"));
    write(&d.join("a3.jpg"), &jpeg("a1")); // same content as a1
    write(&d.join("b1.jpg"), &jpeg("b1"));
    write(&d.join("c1.jpg"), &jpeg("c1"));
    write(&d.join("e1.jpg"), &jpeg("e1"));
    write(&d.join("empty.jpg"), b"");
    write(&d.join("text.jpg"), b"plain text");
    let long = "x".repeat(65);
    let text = format!(
        "person_id,image,group_ids,person_name,tag\n\
         alice,a1.jpg,staff,Alice,\n\
         a b,b1.jpg,staff,,\n\
         bob,missing.jpg,staff,,\n\
         alice,a2.jpg,staff;site 2,,\n\
         carol,c1.jpg,staff,,\n\
         alice,ftp://host/a.jpg,staff,,\n\
         alice,a1.jpg,staff,,\n\
         carol,empty.jpg,staff,,\n\
         carol,text.jpg,staff,,\n\
         alice,a3.jpg,staff,,\n\
         alice,https://example.com/a.jpg,staff,Alicia,\n\
         {long},e1.jpg,staff,,\n\
         erin,e1.jpg,,,\n\
         carol,https://example.com/c.jpg,staff;x,,\n"
    );
    let spec = manifest(d, &text);
    let store = Store::open(&d.join("state")).unwrap();
    let summary = plan(&store, &spec);
    let m = d.join("manifest.csv");
    let at = |line: u32| format!("{}:{line}: ", m.display());

    assert_eq!(
        state(&store, "alice", &d.join("a1.jpg")),
        PhotoState::Pending
    );
    assert_invalid(
        &state(&store, "a b", &d.join("b1.jpg")),
        &format!("{}person_id \"a b\" contains ' '", at(3)),
    );
    assert_invalid(
        &state(&store, "bob", &d.join("missing.jpg")),
        &format!(
            "{}{}: file not found",
            at(4),
            d.join("missing.jpg").display()
        ),
    );
    assert_invalid(
        &state(&store, "alice", &d.join("a2.jpg")),
        &format!("{}group_ids: group \"site 2\" contains ' '", at(5)),
    );
    let ftp = store
        .photo(&PhotoKey::new(
            "alice",
            &ImageRef::Url("ftp://host/a.jpg".into()),
        ))
        .unwrap()
        .unwrap();
    assert_invalid(
        &ftp.state,
        &format!(
            "{}image \"ftp://host/a.jpg\" is a URL that is not http or https",
            at(7)
        ),
    );
    // Line 8 lists a1.jpg for alice again: recorded once, reported as listed again.
    assert_eq!(summary.relisted, 1);
    assert!(summary.problems.iter().any(|p| p.message
        == format!(
            "{}{} is listed again for person \"alice\"; first listed at {}",
            at(8),
            d.join("a1.jpg").display(),
            at(2).trim_end_matches(": ")
        )));
    assert_invalid(
        &state(&store, "carol", &d.join("empty.jpg")),
        &format!(
            "{}{}: the file is empty",
            at(9),
            d.join("empty.jpg").display()
        ),
    );
    assert_invalid(
        &state(&store, "carol", &d.join("text.jpg")),
        &format!("{}{}: not an image", at(10), d.join("text.jpg").display()),
    );
    let dup = state(&store, "alice", &d.join("a3.jpg"));
    assert!(matches!(dup, PhotoState::Duplicate { .. }), "{dup:?}");
    assert!(
        said(&dup).contains(&format!(
            "{}same content as {}",
            at(11),
            at(2).trim_end_matches(": ")
        )),
        "{}",
        said(&dup)
    );
    let conflict = store
        .photo(&PhotoKey::new(
            "alice",
            &ImageRef::Url("https://example.com/a.jpg".into()),
        ))
        .unwrap()
        .unwrap();
    assert_invalid(
        &conflict.state,
        &format!(
            "{}person_name \"Alicia\" for person \"alice\" conflicts with \"Alice\" at {}",
            at(12),
            at(2).trim_end_matches(": ")
        ),
    );
    assert_invalid(
        &state(&store, &long, &d.join("e1.jpg")),
        &format!("{}person_id \"{long}\" is 65 bytes long", at(13)),
    );
    assert_invalid(
        &state(&store, "erin", &d.join("e1.jpg")),
        &format!("{}person \"erin\" has no group", at(14)),
    );
    let carol_url = store
        .photo(&PhotoKey::new(
            "carol",
            &ImageRef::Url("https://example.com/c.jpg".into()),
        ))
        .unwrap()
        .unwrap();
    assert_eq!(carol_url.state, PhotoState::Pending);

    // Every row but the repeated one is in the store once.
    assert_eq!(summary.photos, 13);
    assert_eq!(store.photo_count(), 13);
    let persons: Vec<String> = store
        .persons()
        .map(|p| p.unwrap().person.to_string())
        .collect();
    assert_eq!(persons, ["alice", "bob", "carol"]);
    let alice = store.person("alice").unwrap().unwrap();
    assert_eq!(alice.fields.name.as_deref(), Some("Alice"));
    let carol = store.person("carol").unwrap().unwrap();
    let groups: Vec<&str> = carol.fields.groups.iter().map(|g| g.as_str()).collect();
    assert_eq!(groups, ["staff", "x"]);
    // alice: a1; carol: c1 then the URL (files and URLs never share a call).
    assert_eq!(summary.calls.newperson, 2);
    assert_eq!(summary.calls.addface, 1);
}

#[test]
fn rows_of_one_person_need_not_be_adjacent() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = manifest(
        d,
        "person_id,image,group_ids\n\
         zoe,https://h/z1.jpg,g\n\
         adam,https://h/a1.jpg,g\n\
         zoe,https://h/z2.jpg,g2\n",
    );
    let store = Store::open(&d.join("state")).unwrap();
    let summary = plan(&store, &spec);
    assert_eq!(summary.persons, 2);
    let zoe = store.person("zoe").unwrap().unwrap();
    assert_eq!(zoe.fields.groups.len(), 2);
    let work: Vec<_> = pending_persons(&store).map(|w| w.unwrap()).collect();
    assert_eq!(work.len(), 2);
    assert_eq!(work[1].person.person.as_str(), "zoe");
    let urls: Vec<String> = work[1]
        .photos
        .iter()
        .map(|(_, e)| e.image.to_string())
        .collect();
    assert_eq!(
        urls,
        ["https://h/z1.jpg", "https://h/z2.jpg"],
        "in line order"
    );
    assert_eq!(work[1].enrolled, 0);
}

fn set_state(store: &Store, person: &str, path: &Path, state: PhotoState) {
    let key = PhotoKey::new(person, &ImageRef::File(path.to_owned()));
    let mut entry = store.photo(&key).unwrap().unwrap();
    entry.state = state;
    store.put_photo(&key, &entry).unwrap();
}

fn failed(kind: FailureKind) -> PhotoState {
    PhotoState::Failed(Failure {
        kind,
        code: Some(-1101),
        message: "no face".into(),
    })
}

#[test]
fn a_second_plan_keeps_what_is_done_and_plans_what_is_new_or_changed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    let p = |name: &str| root.join("alice").join(name);
    // 18 photos: 01..=18.
    for i in 1..=18 {
        write(&p(&format!("{i:02}.jpg")), &jpeg(&format!("v1-{i}")));
    }
    let state_dir = dir.path().join("state");
    {
        let store = Store::open(&state_dir).unwrap();
        let first = plan(&store, &tree(&root, &["g"]));
        assert_eq!(first.pending, 18);
        // The engine ran: most enrolled, some failed, one in doubt.
        for i in 1..=14 {
            let face = FaceRef::Id(format!("face{i}"));
            set_state(
                &store,
                "alice",
                &p(&format!("{i:02}.jpg")),
                PhotoState::Enrolled { face },
            );
        }
        set_state(
            &store,
            "alice",
            &p("15.jpg"),
            failed(FailureKind::RetriesExhausted),
        );
        set_state(
            &store,
            "alice",
            &p("16.jpg"),
            failed(FailureKind::Permanent),
        );
        set_state(&store, "alice", &p("17.jpg"), PhotoState::InDoubt);
        let mut person = store.person("alice").unwrap().unwrap();
        person.state = PersonState::Ready { created: true };
        store.put_person(&person).unwrap();
    }

    // The archive grows, one enrolled file is replaced and one moved away.
    write(&p("02.jpg"), &jpeg("v2-2"));
    fs::remove_file(p("04.jpg")).unwrap();
    write(&p("19.jpg"), &jpeg("v1-19"));
    write(&p("20.jpg"), &jpeg("v1-3")); // the content of the enrolled 03.jpg
    write(&p("21.jpg"), &jpeg("v1-21"));
    write(&p("22.jpg"), &jpeg("v1-22"));
    write(&p("23.jpg"), &jpeg("v1-23"));

    let store = Store::open(&state_dir).unwrap();
    let second = plan(&store, &tree(&root, &["g"]));
    assert_eq!(second.generation, 2);
    assert_eq!(
        state(&store, "alice", &p("01.jpg")),
        PhotoState::Enrolled {
            face: FaceRef::Id("face1".into())
        }
    );
    assert_eq!(
        state(&store, "alice", &p("02.jpg")),
        PhotoState::Pending,
        "changed"
    );
    assert_eq!(
        state(&store, "alice", &p("15.jpg")),
        PhotoState::Pending,
        "retried"
    );
    assert_eq!(
        state(&store, "alice", &p("16.jpg")),
        failed(FailureKind::Permanent)
    );
    assert_eq!(state(&store, "alice", &p("17.jpg")), PhotoState::InDoubt);
    assert_eq!(
        state(&store, "alice", &p("18.jpg")),
        PhotoState::Pending,
        "never sent"
    );
    let dup = state(&store, "alice", &p("20.jpg"));
    assert!(
        said(&dup).contains(&format!(
            "same content as {} (enrolled)",
            p("03.jpg").display()
        )),
        "{dup:?}"
    );
    // 13 enrolled (14 minus the changed one) + 1 in doubt leave 6 places:
    // 02, 15, 18, 19, 21, 22 in sorted order; 23 is over the limit.
    assert_eq!(state(&store, "alice", &p("19.jpg")), PhotoState::Pending);
    assert_eq!(state(&store, "alice", &p("22.jpg")), PhotoState::Pending);
    let over = state(&store, "alice", &p("23.jpg"));
    assert!(matches!(over, PhotoState::Spare { .. }), "{over:?}");
    assert!(
        said(&over).contains("has 13 enrolled, 1 in doubt and 6 planned"),
        "{}",
        said(&over)
    );
    assert_eq!(
        store.person("alice").unwrap().unwrap().state,
        PersonState::Ready { created: true },
        "a known person keeps its state"
    );
    assert!(photos(&store)
        .iter()
        .all(|e| e.generation == 2 || e.image == ImageRef::File(p("04.jpg"))));
    assert_eq!(second.photos, 22);
    assert_eq!(second.enrolled, 12, "of the photos in the source");
    assert_eq!(second.pending, 6);
    assert_eq!(second.in_doubt, 1);
    assert_eq!(second.failed_before, 1);
    // A known person: no newperson, the 7 photos (6 + the one in doubt) in one addface.
    assert_eq!(second.calls.newperson, 0);
    assert_eq!(second.calls.addface, 1);

    let work: Vec<_> = pending_persons(&store).map(|w| w.unwrap()).collect();
    assert_eq!(work.len(), 1);
    assert_eq!(work[0].enrolled, 13);
    let names: Vec<String> = work[0]
        .photos
        .iter()
        .map(|(_, e)| match &e.image {
            ImageRef::File(f) => f.file_name().unwrap().to_string_lossy().into_owned(),
            ImageRef::Url(u) => u.clone(),
        })
        .collect();
    assert_eq!(
        names,
        ["02.jpg", "15.jpg", "17.jpg", "18.jpg", "19.jpg", "21.jpg", "22.jpg"]
    );

    // Asked to, a plan retries what the service refused for good.
    drop(store);
    let store = Store::open(&state_dir).unwrap();
    let options = PlanOptions {
        retry_failed: true,
        ..PlanOptions::default()
    };
    plan::build(&store, &tree(&root, &["g"]), &options).unwrap();
    assert_eq!(state(&store, "alice", &p("16.jpg")), PhotoState::Pending);
}

#[test]
fn the_plan_command_prints_the_plan_and_leaves_no_state() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    write(&root.join("alice/a.jpg"), &jpeg("a"));
    write(&root.join("alice/b.jpg"), &jpeg("b"));
    write(&root.join("bob/notes.txt"), b"x");
    let out = support::bin::command(support::BIN)
        .args(["plan", "--group", "staff"])
        .arg(&root)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("persons:    2 (1 to create"), "{stdout}");
    assert!(stdout.contains("to send                     2"), "{stdout}");
    assert!(
        stdout.contains("calls:      2 (1 newperson, 1 addface)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bob/notes.txt: not a photo by its extension"),
        "{stdout}"
    );
    let entries: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "only the photos folder: {entries:?}");

    // A tree without --group is a usage error naming the fix.
    let out = support::bin::command(support::BIN)
        .arg("plan")
        .arg(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--group"));
}

#[test]
fn an_enrolled_photo_listed_again_stays_enrolled_when_its_file_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("a.jpg"), &jpeg("a"));
    let spec = manifest(d, "person_id,image,group_ids\nalice,a.jpg,staff\n");
    let store = Store::open(&d.join("state")).unwrap();
    plan(&store, &spec);
    let enrolled = PhotoState::Enrolled {
        face: FaceRef::Id("f1".into()),
    };
    set_state(&store, "alice", &d.join("a.jpg"), enrolled.clone());
    fs::remove_file(d.join("a.jpg")).unwrap();
    let summary = plan(&store, &spec);
    assert_eq!(state(&store, "alice", &d.join("a.jpg")), enrolled);
    assert_eq!(summary.enrolled, 1);
    assert_eq!(summary.invalid, 0);
    assert_eq!(summary.calls.total(), 0);
}

#[test]
fn a_person_that_could_not_be_created_is_tried_again_with_new_photos() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(&d.join("a.jpg"), &jpeg("a"));
    let store = Store::open(&d.join("state")).unwrap();
    plan(
        &store,
        &manifest(d, "person_id,image,group_ids\nalice,a.jpg,staff\n"),
    );
    set_state(
        &store,
        "alice",
        &d.join("a.jpg"),
        failed(FailureKind::Permanent),
    );
    let mut person = store.person("alice").unwrap().unwrap();
    person.state = PersonState::Failed {
        reason: "no face in any photo".into(),
    };
    store.put_person(&person).unwrap();

    // Planned again without new photos: nothing to do, the person stays failed.
    let again = plan(
        &store,
        &manifest(d, "person_id,image,group_ids\nalice,a.jpg,staff\n"),
    );
    assert_eq!(again.calls.total(), 0);
    assert!(matches!(
        store.person("alice").unwrap().unwrap().state,
        PersonState::Failed { .. }
    ));

    write(&d.join("b.jpg"), &jpeg("b"));
    let summary = plan(
        &store,
        &manifest(
            d,
            "person_id,image,group_ids\nalice,a.jpg,staff\nalice,b.jpg,staff\n",
        ),
    );
    assert_eq!(
        store.person("alice").unwrap().unwrap().state,
        PersonState::New
    );
    assert_eq!(
        state(&store, "alice", &d.join("b.jpg")),
        PhotoState::Pending
    );
    assert_eq!(summary.calls.newperson, 1);
}

#[test]
fn a_manifest_takes_absolute_paths_and_reports_a_tag_conflict_naming_both_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let elsewhere = tempfile::tempdir().unwrap();
    let abs = elsewhere.path().join("a.jpg");
    write(&abs, &jpeg("a"));
    write(&d.join("b.jpg"), &jpeg("b"));
    let text = format!(
        "person_id,image,group_ids,tag\n\
         alice,{},staff,day\n\
         alice,b.jpg,staff,night\n",
        abs.display()
    );
    let store = Store::open(&d.join("state")).unwrap();
    plan(&store, &manifest(d, &text));
    assert_eq!(state(&store, "alice", &abs), PhotoState::Pending);
    let m = d.join("manifest.csv");
    assert_invalid(
        &state(&store, "alice", &d.join("b.jpg")),
        &format!(
            "{}:3: tag \"night\" for person \"alice\" conflicts with \"day\" at {}:2",
            m.display(),
            m.display()
        ),
    );
    assert_eq!(
        store
            .person("alice")
            .unwrap()
            .unwrap()
            .fields
            .tag
            .as_deref(),
        Some("day")
    );
}

#[test]
fn the_plan_command_with_a_state_directory_plans_as_the_job_would_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    write(&root.join("g1/alice/a.jpg"), &jpeg("a"));
    let state_dir = dir.path().join("state");
    let plan = || {
        let out = support::bin::command(support::BIN)
            .args(["plan", "--layout", "group/person", "--state"])
            .arg(&state_dir)
            .arg(&root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // No job there yet: the plan a first run would make, and no directory made.
    for _ in 0..2 {
        assert!(plan().contains("(plan #1)"));
    }
    assert!(!state_dir.exists(), "a plan creates no state directory");
    // A job's state: the plan its next run would make, the state left as it was.
    {
        let store = Store::open(&state_dir).unwrap();
        let spec = SourceSpec::from_path(&root, Vec::new(), Layout::GroupPerson, false);
        plan::build(&store, &spec, &PlanOptions::default()).unwrap();
    }
    for _ in 0..2 {
        let stdout = plan();
        assert!(stdout.contains("(plan #2)"), "{stdout}");
        assert!(stdout.contains("already enrolled") || stdout.contains("to send"));
    }
    let store = Store::open(&state_dir).unwrap();
    assert_eq!(store.meta().unwrap().generation, 1);
    assert_eq!(store.photo_count(), 1);
    assert!(
        !state_dir.join("plan-sort").exists(),
        "sorted runs are not left in the state"
    );
}

#[test]
fn an_unchanged_file_is_known_by_its_size_and_time_without_reading_it_again() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    let path = root.join("alice/a.jpg");
    write(&path, &jpeg("one"));
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    let set_modified = |when| {
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(when)
            .unwrap()
    };
    set_modified(an_hour_ago);
    let store = Store::open(&dir.path().join("state")).unwrap();
    let spec = tree(&root, &["g"]);
    plan(&store, &spec);
    let first = photos(&store).remove(0);
    assert!(
        first.modified.is_some(),
        "a settled file's time is recorded"
    );

    // Same size, same time: trusted as unchanged, so the content is not read (the
    // new bytes go unnoticed, as `make` and `rsync` would miss them too).
    write(&path, &jpeg("two"));
    set_modified(an_hour_ago);
    plan(&store, &spec);
    assert_eq!(photos(&store)[0].hash, first.hash);

    // Another time: read again, and the change is seen.
    set_modified(an_hour_ago + std::time::Duration::from_secs(60));
    plan(&store, &spec);
    let changed = photos(&store).remove(0);
    assert_ne!(changed.hash, first.hash);
    assert_eq!(changed.state, PhotoState::Pending);

    // A file written just now may change again within the same clock tick: its time
    // is not recorded, so the next plan reads it again.
    write(&path, &jpeg("three"));
    plan(&store, &spec);
    let fresh = photos(&store).remove(0);
    assert_eq!(fresh.modified, None);
    assert_ne!(fresh.hash, changed.hash);
}

#[test]
fn a_nul_or_a_backslash_in_an_id_is_refused_by_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in ["n", "b", "g", "e"] {
        write(&d.join(format!("{name}.jpg")), &jpeg(name));
    }
    let text = "person_id,image,group_ids,person_name,tag\n\
                ann\0x,n.jpg,staff,,\n\
                ann\\x,b.jpg,staff,,\n\
                ann,g.jpg,st\\aff,,\n\
                bob,e.jpg,st\u{1b}aff,,\n";
    let spec = manifest(d, text);
    let store = Store::open(&d.join("state")).unwrap();
    plan(&store, &spec);
    let m = d.join("manifest.csv");
    let at = |line: u32| format!("{}:{line}: ", m.display());
    assert_invalid(
        &state(&store, "ann\0x", &d.join("n.jpg")),
        &format!("{}person_id \"ann\\0x\" contains '\\0'", at(2)),
    );
    assert_invalid(
        &state(&store, "ann\\x", &d.join("b.jpg")),
        &format!("{}person_id \"ann\\\\x\" contains '\\\\'", at(3)),
    );
    assert_invalid(
        &state(&store, "ann", &d.join("g.jpg")),
        &format!("{}group_ids: group \"st\\\\aff\" contains '\\\\'", at(4)),
    );
    assert_invalid(
        &state(&store, "bob", &d.join("e.jpg")),
        &format!(
            "{}group_ids: group \"st\\u{{1b}}aff\" contains '\\u{{1b}}'",
            at(5)
        ),
    );
}
