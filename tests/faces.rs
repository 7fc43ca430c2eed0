//! `--crop-faces` and `--skip-faceless`: a photo with a face goes as a crop around
//! it, upright; a photo without one goes whole, exactly as without the flag (or is
//! skipped when asked); a group photo goes as its largest face and the report says
//! so; what the detector found is recorded, so no later run looks again.

#[path = "../benches/support/faces.rs"]
mod scenes;
mod support;

use faceenroll::faces::{self, FaceBox};
use faceenroll::normalize::{self, NormalizeOptions, Prepared};
use faceenroll::report::Row;
use scenes::{background, face_boxes, scene, stored_for};
use std::path::Path;
use std::sync::OnceLock;
use support::{jpeg_bytes, with_orientation};

/// The camera frame the tests place faces in: larger than the 1264 pixels a photo is
/// sent at, so it is re-encoded, and a portrait of 800 puts a face of 158 pixels
/// (a tenth of the frame) in it.
const FRAME: (u32, u32) = (1600, 1200);

fn contains(outer: FaceBox, inner: [u32; 4], slack: u32) -> bool {
    let [x, y, w, h] = inner;
    outer.x <= x + slack
        && outer.y <= y + slack
        && outer.x + outer.w + slack >= x + w
        && outer.y + outer.h + slack >= y + h
}

/// The box a report cell ("x=1 y=2 w=3 h=4 ...") gives.
fn cell_box(cell: &str) -> FaceBox {
    let value = |name: &str| -> u32 {
        let at = cell
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("{cell}"))
            + 2;
        cell[at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    FaceBox {
        x: value("x"),
        y: value("y"),
        w: value("w"),
        h: value("h"),
    }
}

/// A real face placed small in a large frame, stored under each EXIF orientation, is
/// sent as a crop a fraction of the frame's size, with the face inside it, upright:
/// the detector, which finds only upright frontal faces, finds it in the crop.
#[test]
fn a_face_in_a_large_frame_is_sent_as_an_upright_crop_under_every_orientation() {
    let dir = tempfile::tempdir().unwrap();
    let upright = scene(FRAME.0, FRAME.1, &[(500, 250, 800)], 1);
    let face = upright.faces[0];
    let opts = NormalizeOptions::default();
    let budget = faceenroll::limits::RequestBudget::configured(1_500_000);
    for orientation in 1..=8u16 {
        let path = dir.path().join(format!("o{orientation}.jpg"));
        let stored = stored_for(&upright.image, orientation);
        std::fs::write(
            &path,
            with_orientation(&jpeg_bytes(&stored, 90), orientation),
        )
        .unwrap();
        let done =
            normalize::prepare_faces(&path, &opts, true, faces::crop_bytes(&budget), None).unwrap();
        assert!(done.detected_now);
        let Prepared::Cropped { bytes, cropped } = &done.prepared else {
            panic!("orientation {orientation}: {:?}", done.detection);
        };
        assert!(
            contains(cropped.rect, face, 8),
            "orientation {orientation}: crop {} misses the face {face:?}",
            cropped.rect
        );
        // Much smaller than the frame, in pixels and bytes: 20 fit one request.
        let (w, h) = cropped.copy.to_dims;
        assert!(w * h * 4 < FRAME.0 * FRAME.1, "{w}×{h}");
        assert!(bytes.len() as u64 <= faces::crop_bytes(&budget));
        // Upright: the frontal detector finds the face in the crop as sent.
        let sent = image::load_from_memory(bytes).unwrap().to_luma8();
        let found = faces::detect(
            sent.as_raw(),
            sent.width(),
            sent.height(),
            1.0,
            sent.dimensions(),
        );
        assert!(
            found.sure().count() == 1,
            "orientation {orientation}: the crop as sent shows no upright face: {found:?}"
        );
    }
}

/// An archive of three persons: one face, no face, and a group of two.
struct Archive {
    archive: support::Archive,
}

/// Alice's portrait, and the crew's two, the larger first and clearly the larger
/// (2× the area: a crop is made only past `faces::CLEARLY_LARGER`).
const ALICE: [(u32, u32, u32); 1] = [(500, 250, 800)];
const CREW: [(u32, u32, u32); 2] = [(20, 250, 900), (950, 400, 640)];

impl Archive {
    fn new() -> Archive {
        // Made once for all the tests of this file.
        static PHOTOS: OnceLock<[(&str, Vec<u8>); 3]> = OnceLock::new();
        let photos = PHOTOS.get_or_init(|| {
            [
                (
                    "alice",
                    jpeg_bytes(&scene(FRAME.0, FRAME.1, &ALICE, 2).image, 90),
                ),
                ("bob", jpeg_bytes(&background(FRAME.0, FRAME.1, 3), 90)),
                (
                    "crew",
                    jpeg_bytes(&scene(FRAME.0, FRAME.1, &CREW, 4).image, 90),
                ),
            ]
        });
        let archive = support::Archive::new();
        for (person, bytes) in photos {
            archive.add(person, "photo.jpg", bytes);
        }
        Archive { archive }
    }

    fn photo(&self, person: &str) -> std::path::PathBuf {
        self.archive.root().join(person).join("photo.jpg")
    }
}

fn enroll(archive: &Archive, emulator: &faceenroll::emulator::Emulator, flags: &[&str]) {
    let out = support::enroll_command(
        &archive.archive.root(),
        &emulator.endpoint(),
        &archive.archive.state(),
    )
    .args(["--group", "staff"])
    .args(flags)
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn row<'a>(rows: &'a [Row], person: &str) -> &'a Row {
    rows.iter().find(|r| r.person_id == person).unwrap()
}

/// The hash of what the job sends for the photo at `path` without `--crop-faces`.
fn whole_copy_hash(path: &Path) -> String {
    match normalize::prepare(path, &NormalizeOptions::default()).unwrap() {
        Prepared::Normalized { bytes, .. } => faceenroll::model::ContentHash::of(&bytes).to_hex(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn with_crop_faces_the_service_holds_crops_and_the_faceless_photo_whole() {
    let archive = Archive::new();
    let emulator = support::emulator();
    enroll(&archive, &emulator, &["--crop-faces"]);

    let held = emulator.snapshot();
    let face = |person: &str| {
        let faces = &held.persons[person].faces;
        assert_eq!(faces.len(), 1, "{person}");
        faces[0].clone()
    };
    // A crop around the face, a fraction of the frame.
    for person in ["alice", "crew"] {
        let f = face(person);
        assert!(
            f.width * f.height * 4 < FRAME.0 * FRAME.1,
            "{person}: {}×{}",
            f.width,
            f.height
        );
    }
    // No face found: the very bytes sent without --crop-faces.
    let bob = face("bob");
    assert_eq!(bob.content_hash, whole_copy_hash(&archive.photo("bob")));
    assert_eq!((bob.width, bob.height), (1264, 948));

    let rows = support::report_rows(&archive.archive.state());
    let alice = row(&rows, "alice");
    let known = face_boxes(&ALICE)[0];
    assert!(contains(cell_box(&alice.face_box), known, 20), "{alice:?}");
    assert!(contains(cell_box(&alice.crop), known, 0), "{alice:?}");
    assert!(alice.reason.starts_with("cropped to the face"), "{alice:?}");
    let bob = row(&rows, "bob");
    assert_eq!(bob.face_box, "no face found locally");
    assert_eq!(bob.crop, "");
    let crew = row(&rows, "crew");
    assert!(
        crew.face_box.ends_with("(the largest of 2 faces)"),
        "{crew:?}"
    );
    // The crop is around the larger face, the one on the left.
    let larger = face_boxes(&CREW)[0];
    assert!(contains(cell_box(&crew.crop), larger, 0), "{crew:?}");
    assert!(crew.reason.contains("the largest of 2 faces"), "{crew:?}");
}

#[test]
fn skip_faceless_skips_the_photo_without_a_face_and_makes_no_call_for_it() {
    let archive = Archive::new();
    let emulator = support::emulator();
    enroll(&archive, &emulator, &["--skip-faceless"]);
    let held = emulator.snapshot();
    assert!(
        !held.persons.contains_key("bob"),
        "{:?}",
        held.persons.keys()
    );
    // Without --crop-faces the others go whole, as always.
    for person in ["alice", "crew"] {
        assert_eq!(
            held.persons[person].faces[0].content_hash,
            whole_copy_hash(&archive.photo(person)),
            "{person}"
        );
    }
    let rows = support::report_rows(&archive.archive.state());
    let bob = row(&rows, "bob");
    assert_eq!(bob.status, "skipped");
    assert!(bob.reason.contains("no face found locally"), "{bob:?}");
}

/// Without the face flags nothing changes: the bytes the service holds are the
/// normalizer's whole copies, and the report's face columns are empty.
#[test]
fn without_crop_faces_the_whole_photos_are_sent_as_before() {
    let archive = Archive::new();
    let emulator = support::emulator();
    enroll(&archive, &emulator, &[]);
    let held = emulator.snapshot();
    for person in ["alice", "bob", "crew"] {
        assert_eq!(
            held.persons[person].faces[0].content_hash,
            whole_copy_hash(&archive.photo(person)),
            "{person}"
        );
    }
    for row in support::report_rows(&archive.archive.state()) {
        assert_eq!((row.face_box.as_str(), row.crop.as_str()), ("", ""));
    }
}

/// `plan --crop-faces` counts the photos with no face, one and several before any
/// call, writing nothing to the job's state (a plan never does); the enroll records
/// what it found per content and follows a recorded detection rather than looking
/// again.
#[test]
fn plan_counts_the_faces_and_the_enroll_follows_what_is_recorded() {
    let archive = Archive::new();
    let state = archive.archive.state();
    let plan = || {
        support::bin::output(&mut support::faceenroll(&[
            "plan".as_ref(),
            archive.archive.root().as_os_str(),
            "--group".as_ref(),
            "staff".as_ref(),
            "--state".as_ref(),
            state.as_os_str(),
            "--crop-faces".as_ref(),
        ]))
    };
    let first = plan();
    assert_eq!(first.code, 0, "{first:?}");
    let counts = |out: &str| -> Vec<(String, u64)> {
        out.lines()
            .skip_while(|l| !l.starts_with("Faces found"))
            .skip(1)
            .take_while(|l| !l.trim_start().starts_with("calls:"))
            .map(|l| {
                let (label, n) = l.trim().rsplit_once(' ').unwrap();
                (label.trim().to_owned(), n.parse().unwrap())
            })
            .collect()
    };
    let expected = vec![
        ("no face: sent whole".to_owned(), 1),
        ("one face: sent as a crop".to_owned(), 1),
        ("several faces: the largest".to_owned(), 1),
    ];
    assert_eq!(counts(&first.stdout), expected, "{}", first.stdout);
    assert!(
        first
            .stdout
            .contains("(3 looked at now, 0 known from earlier runs)"),
        "{}",
        first.stdout
    );
    // Nothing of it was written to the job's state: the next plan looks again.
    let again = plan();
    assert_eq!(counts(&again.stdout), expected, "{}", again.stdout);
    assert!(
        again
            .stdout
            .contains("(3 looked at now, 0 known from earlier runs)"),
        "{}",
        again.stdout
    );

    // The enroll takes what is recorded rather than looking again: alice's one face,
    // recorded here as "no face", sends her photo whole.
    let hash = |person: &str| {
        faceenroll::model::ContentHash::of(&std::fs::read(archive.photo(person)).unwrap())
    };
    {
        let store = faceenroll::store::Store::open(&state).unwrap();
        assert!(
            store.faces(&hash("alice")).unwrap().is_none(),
            "the plans wrote nothing"
        );
        let nothing = faces::Detection {
            dims: image::image_dimensions(archive.photo("alice")).unwrap(),
            faces: vec![],
        };
        store.put_faces(&hash("alice"), &nothing).unwrap();
        store.flush().unwrap();
    }
    let emulator = support::emulator();
    enroll(&archive, &emulator, &["--crop-faces"]);
    let held = emulator.snapshot();
    assert_eq!(
        held.persons["alice"].faces[0].content_hash,
        whole_copy_hash(&archive.photo("alice"))
    );
    let crew = &held.persons["crew"].faces[0];
    assert!(crew.width * crew.height * 4 < FRAME.0 * FRAME.1);
    // What the enroll found is recorded, for the next run.
    let store = faceenroll::store::Store::open(&state).unwrap();
    let recorded = store
        .faces(&hash("crew"))
        .unwrap()
        .expect("recorded by the enroll");
    assert_eq!(recorded.count(), faces::Count::Several);
}

/// Should the detector take something else for a face, the service finds no face in
/// the crop (-1101): the photo is sent again whole, not failed. Here the recorded
/// detection is made to point at a flat part of the photo, which the emulator, like
/// the service, refuses as faceless.
#[test]
fn a_crop_the_service_finds_no_face_in_is_sent_again_whole() {
    let archive = Archive::new();
    let mut frame = background(FRAME.0, FRAME.1, 5);
    for (x, _, p) in frame.enumerate_pixels_mut() {
        if x < FRAME.0 / 2 {
            p.0 = [128, 128, 128];
        }
    }
    let flat_jpeg = jpeg_bytes(&frame, 90);
    let flat = archive.archive.add("alice", "second.jpg", &flat_jpeg);
    // The same photo alone for dana: the one that creates her person.
    archive.archive.add("dana", "second.jpg", &flat_jpeg);
    let state = archive.archive.state();
    let planned = support::bin::output(&mut support::faceenroll(&[
        "plan".as_ref(),
        archive.archive.root().as_os_str(),
        "--group".as_ref(),
        "staff".as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
    ]));
    assert_eq!(planned.code, 0, "{planned:?}");
    {
        let store = faceenroll::store::Store::open(&state).unwrap();
        let hash = faceenroll::model::ContentHash::of(&std::fs::read(&flat).unwrap());
        let wrong = faces::Detection {
            dims: FRAME,
            faces: vec![faces::Found {
                face: FaceBox {
                    x: 200,
                    y: 400,
                    w: 150,
                    h: 150,
                },
                score: 20.0,
            }],
        };
        store.put_faces(&hash, &wrong).unwrap();
        store.flush().unwrap();
    }
    let emulator = support::emulator();
    enroll(&archive, &emulator, &["--crop-faces"]);
    let held = emulator.snapshot();
    let hashes: Vec<&str> = held.persons["alice"]
        .faces
        .iter()
        .map(|f| f.content_hash.as_str())
        .collect();
    assert_eq!(hashes.len(), 2, "{hashes:?}");
    assert!(hashes.contains(&whole_copy_hash(&flat).as_str()));
    let dana: Vec<&str> = held.persons["dana"]
        .faces
        .iter()
        .map(|f| f.content_hash.as_str())
        .collect();
    assert_eq!(dana, [whole_copy_hash(&flat).as_str()]);
    let rows = support::report_rows(&state);
    for person in ["alice", "dana"] {
        let second = rows
            .iter()
            .find(|r| r.person_id == person && r.image.ends_with("second.jpg"))
            .unwrap();
        assert_eq!(second.status, "enrolled", "{second:?}");
        assert_eq!(second.crop, "", "{second:?}");
        // Sent twice: the crop, refused, then the whole photo.
        assert_eq!(second.attempts, 2, "{second:?}");
    }
}

/// `plan --crop-faces` counts the calls as the crops travel, twenty to a call: a
/// person of seven photos with a face each takes a `newperson` and one `addface` of
/// the six others, where whole photos would take more (here, under a request limit of
/// 400,000 bytes, at most four of these photos to a call). The enroll that follows
/// makes just the calls the plan said.
#[test]
fn plan_counts_the_calls_the_crops_take_and_the_enroll_makes_them() {
    // Small frames keep the test quick; the small request limit makes them count.
    const SMALL: (u32, u32) = (800, 600);
    let archive = support::Archive::new();
    for i in 0..7u32 {
        let photo = jpeg_bytes(
            &scene(SMALL.0, SMALL.1, &[(50 * i, 100, 400)], 20 + u64::from(i)).image,
            90,
        );
        // Whole, at most four to a call under the limit.
        assert!(photo.len() > 80_000, "{}", photo.len());
        archive.add("dana", &format!("{i}.jpg"), &photo);
    }
    let state = archive.state();
    let limit = ["--max-request-bytes", "400000"];
    let planned = support::bin::output(
        support::faceenroll(&[
            "plan".as_ref(),
            archive.root().as_os_str(),
            "--group".as_ref(),
            "staff".as_ref(),
            "--state".as_ref(),
            state.as_os_str(),
            "--crop-faces".as_ref(),
        ])
        .args(limit),
    );
    assert_eq!(planned.code, 0, "{planned:?}");
    assert!(
        planned
            .stdout
            .contains("calls:      2 (1 newperson, 1 addface)"),
        "{}",
        planned.stdout
    );
    let whole: usize = planned
        .stdout
        .split("2 with the crops, 20 to a call (sending every photo whole: ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", planned.stdout));
    assert!(whole >= 3, "{}", planned.stdout);

    let emulator = support::emulator();
    let out = support::enroll_command(&archive.root(), &emulator.endpoint(), &state)
        .args(["--group", "staff", "--crop-faces"])
        .args(limit)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(emulator.snapshot().persons["dana"].faces.len(), 7);
    let counters = emulator.counters();
    assert_eq!(
        (counters.received("newperson"), counters.received("addface")),
        (1, 1)
    );
}
