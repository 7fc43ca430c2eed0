//! Photos that do not fit as they are, end to end: what the service receives after
//! the engine normalizes them (read through the emulator's record of each face).

mod common;

use common::{
    client, emulator, hash_of, jpeg_bytes, options, picture, run, run_with, with_orientation,
    write_png, Archive,
};
use faceenroll::engine::RunOutcome;
use faceenroll::limits::MAX_REQUEST_BYTES;
use faceenroll::normalize::NormalizeOptions;
use faceenroll::plan::PlanOptions;
use faceenroll::store::{PhotoState, Store};
use std::sync::atomic::Ordering::Relaxed;

fn only_photo_state(archive: &Archive) -> (PhotoState, Option<String>) {
    let store = Store::open(&archive.state()).unwrap();
    let mut photos = store.photos().map(|r| r.unwrap().1);
    let entry = photos.next().expect("one photo");
    assert!(photos.next().is_none(), "only one photo");
    (entry.state, entry.note)
}

#[test]
fn a_photo_over_six_mb_is_enrolled_as_a_smaller_copy_and_a_rerun_makes_no_call() {
    let archive = Archive::new();
    let path = archive.add("scan", "big.png", b"");
    write_png(&path, &picture(2600, 1100, 255, 1));
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > MAX_REQUEST_BYTES, "the original is {size} bytes");

    let emulator = emulator();
    let client = client(&emulator);
    let (outcome, tally) = run(&archive, &client, &options());
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    let faces = &emulator.snapshot().persons["scan"].faces;
    assert_eq!(faces.len(), 1);
    assert!(faces[0].width.max(faces[0].height) <= faceenroll::normalize::DEFAULT_MAX_EDGE);
    let expected_height = f64::from(faces[0].width) * 1100.0 / 2600.0;
    assert!(
        (f64::from(faces[0].height) - expected_height).abs() <= 1.0,
        "aspect ratio kept: {}x{}",
        faces[0].width,
        faces[0].height
    );
    assert_ne!(faces[0].content_hash, hash_of(&path), "a copy was sent");
    let (state, note) = only_photo_state(&archive);
    assert!(matches!(state, PhotoState::Enrolled { .. }), "{state:?}");
    assert!(note.unwrap().starts_with("normalized from"));
    assert!(tally.bytes_saved.load(Relaxed) > 0);

    // Resume after normalization: the photo is known by its original's hash.
    let before = emulator.counters().requests;
    let (_, tally) = run(&archive, &client, &options());
    assert_eq!(tally.calls.load(Relaxed), 0);
    assert_eq!(emulator.counters().requests, before);
}

#[test]
fn a_photo_tagged_rotated_arrives_upright() {
    let archive = Archive::new();
    // Stored 300 wide and 200 high; EXIF orientation 6 says: turn it 90° to view.
    let stored = picture(300, 200, 30, 2);
    archive.add(
        "phone",
        "sideways.jpg",
        &with_orientation(&jpeg_bytes(&stored, 90), 6),
    );
    let emulator = emulator();
    run(&archive, &client(&emulator), &options());
    let face = &emulator.snapshot().persons["phone"].faces[0];
    assert_eq!((face.width, face.height), (200, 300));
}

#[test]
fn a_small_upright_photo_is_sent_byte_for_byte() {
    let archive = Archive::new();
    let path = archive.add(
        "small",
        "face.jpg",
        &jpeg_bytes(&picture(320, 240, 20, 3), 85),
    );
    let emulator = emulator();
    run(&archive, &client(&emulator), &options());
    let face = &emulator.snapshot().persons["small"].faces[0];
    assert_eq!(face.content_hash, hash_of(&path));
    assert_eq!(only_photo_state(&archive).1, None, "no normalization note");
}

#[test]
fn with_no_resize_an_oversized_photo_fails_with_its_reason() {
    let archive = Archive::new();
    let path = archive.add("scan", "big.png", b"");
    write_png(&path, &picture(2600, 1100, 255, 4));
    let emulator = emulator();
    let mut engine = options();
    engine.normalize.enabled = false;
    let plan = PlanOptions {
        normalize: NormalizeOptions {
            enabled: false,
            ..NormalizeOptions::default()
        },
        ..PlanOptions::default()
    };
    let (outcome, _) = run_with(&archive, &client(&emulator), &engine, &plan);
    assert!(matches!(outcome, RunOutcome::Finished));
    let (state, _) = only_photo_state(&archive);
    let PhotoState::Failed(failure) = state else {
        panic!("{state:?}")
    };
    assert!(failure.message.contains("big.png"), "{}", failure.message);
    assert!(failure.message.contains("request"), "{}", failure.message);
    assert_eq!(emulator.counters().requests, 0, "no call spent on it");
}

#[test]
fn the_plan_counts_the_photos_that_will_be_reencoded() {
    let archive = Archive::new();
    let big = archive.add("a", "big.png", b"");
    write_png(&big, &picture(2600, 1100, 255, 5));
    let sideways = picture(300, 200, 30, 6);
    archive.add(
        "a",
        "sideways.jpg",
        &with_orientation(&jpeg_bytes(&sideways, 90), 6),
    );
    archive.add("a", "small.jpg", &jpeg_bytes(&picture(320, 240, 20, 7), 85));
    let store = Store::open(&archive.state()).unwrap();
    let summary =
        faceenroll::plan::build(&store, &common::spec(&archive), &PlanOptions::default()).unwrap();
    assert_eq!((summary.pending, summary.to_normalize), (3, 2));
    let text = faceenroll::cli::plan::render(&summary);
    assert!(text.contains("re-encoded to fit"), "{text}");
}
