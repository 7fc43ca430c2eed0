//! Photos that do not fit as they are, end to end: what the service receives after
//! the engine normalizes them (read through the emulator's record of each face).

mod support;

use faceenroll::cli::LIBHEIF_ENV;
use faceenroll::emulator::TooLarge;
use faceenroll::engine::RunOutcome;
use faceenroll::limits::MAX_REQUEST_BYTES;
use faceenroll::normalize::NormalizeOptions;
use faceenroll::plan::PlanOptions;
use faceenroll::store::{PhotoState, Store};
use support::{
    client, emulator, hash_of, jpeg_bytes, options, picture, report_rows, run, run_with,
    with_orientation, write_png, Archive, EmulatorProcess,
};

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
    assert!(tally.snapshot().bytes_saved > 0);

    // Resume after normalization: the photo is known by its original's hash.
    let before = emulator.counters().requests;
    let (_, tally) = run(&archive, &client, &options());
    assert_eq!(tally.snapshot().calls, 0);
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
        faceenroll::plan::build(&store, &support::spec(&archive), &PlanOptions::default()).unwrap();
    assert_eq!((summary.pending, summary.to_normalize), (3, 2));
    let text = faceenroll::cli::plan::render(&summary);
    assert!(text.contains("re-encoded to fit"), "{text}");
}

/// Runs a one-photo archive and answers the face the service holds, checking that a
/// JPEG copy was sent, not the original, and that the photo is recorded enrolled.
fn enrolled_copy(name: &str, bytes: &[u8]) -> (u32, u32) {
    let archive = Archive::new();
    let path = archive.add("p", name, bytes);
    let emulator = emulator();
    let (outcome, _) = run(&archive, &client(&emulator), &options());
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    let (state, note) = only_photo_state(&archive);
    assert!(
        matches!(state, PhotoState::Enrolled { .. }),
        "{name}: {state:?}"
    );
    let note = note.unwrap_or_default();
    assert!(note.starts_with("normalized from"), "{name}: {note}");
    let faces = &emulator.snapshot().persons["p"].faces;
    assert_eq!(faces.len(), 1, "{name}");
    assert_ne!(
        faces[0].content_hash,
        hash_of(&path),
        "{name}: a copy was sent"
    );
    (faces[0].width, faces[0].height)
}

#[test]
fn webp_and_tiff_photos_are_enrolled_as_jpeg_copies() {
    use image::ImageEncoder;
    let stored = picture(300, 200, 30, 8);
    let mut webp = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut webp)
        .write_image(&stored, 300, 200, image::ExtendedColorType::Rgb8)
        .unwrap();
    assert_eq!(enrolled_copy("face.webp", &webp), (300, 200));
    let mut tiff = std::io::Cursor::new(Vec::new());
    image::codecs::tiff::TiffEncoder::new(&mut tiff)
        .write_image(&stored, 300, 200, image::ExtendedColorType::Rgb8)
        .unwrap();
    assert_eq!(enrolled_copy("scan.tiff", tiff.get_ref()), (300, 200));
}

/// A HEIC photo of `w` × `h` pixels, encoded by the system's libheif (x265), or `None`
/// where libheif cannot be loaded here (see [`support::heic_library`]).
fn heic(test: &str, w: u32, h: u32) -> Option<Vec<u8>> {
    let lib = support::heic_library(test)?;
    let stored = picture(w, h, 30, 9);
    Some(lib.encode_heic(stored.as_raw(), w, h, 80).unwrap())
}

#[test]
fn a_heic_photo_from_a_phone_is_enrolled_as_a_jpeg_copy() {
    let Some(bytes) = heic(
        "a_heic_photo_from_a_phone_is_enrolled_as_a_jpeg_copy",
        320,
        240,
    ) else {
        return;
    };
    assert_eq!(&bytes[4..8], b"ftyp");
    assert_eq!(enrolled_copy("IMG_0001.HEIC", &bytes), (320, 240));
}

#[test]
fn a_heic_photo_stored_sideways_is_enrolled_upright() {
    let Some(stored) = heic("a_heic_photo_stored_sideways_is_enrolled_upright", 320, 240) else {
        return;
    };
    // Stored 320 wide and 240 high; its container says: turn it a quarter clockwise
    // (three quarters anticlockwise) to view it, as a phone held upright writes it.
    let bytes = with_irot(&stored, 3);
    assert_eq!(enrolled_copy("IMG_0002.HEIC", &bytes), (240, 320));
}

/// One ISO-BMFF box: its type, its body and the whole box as stored.
struct Bmff<'a> {
    kind: [u8; 4],
    body: &'a [u8],
    raw: &'a [u8],
}

/// The boxes of `data`, in order (32-bit sizes; a size of 0 runs to the end).
fn boxes(mut data: &[u8]) -> Vec<Bmff<'_>> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let size = match u32::from_be_bytes(data[..4].try_into().unwrap()) as usize {
            0 => data.len(),
            size => size,
        };
        assert!((8..=data.len()).contains(&size), "a box of {size} bytes");
        out.push(Bmff {
            kind: data[4..8].try_into().unwrap(),
            body: &data[8..size],
            raw: &data[..size],
        });
        data = &data[size..];
    }
    out
}

fn bmff_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
    out
}

/// `heic` with an `irot` property (`quarter_turns` × 90° anticlockwise) on its primary
/// image, as a phone writes a photo taken held upright. libheif 1.15's encoder writes
/// no transform, so it is added to the container: an `irot` box at the end of `ipco`,
/// an essential association to it in `ipma`, and the `iloc` offsets into `mdat` moved
/// by the bytes the `meta` box grew.
fn with_irot(heic: &[u8], quarter_turns: u8) -> Vec<u8> {
    let top = boxes(heic);
    let meta = top.iter().find(|b| &b.kind == b"meta").expect("a meta box");
    let meta_start = meta.raw.as_ptr() as usize - heic.as_ptr() as usize;
    let meta_end = meta_start + meta.raw.len();
    assert!(
        top.iter()
            .any(|b| &b.kind == b"mdat" && b.raw.as_ptr() as usize > meta.raw.as_ptr() as usize),
        "the pixels follow the meta box"
    );
    let (full_box, children) = meta.body.split_at(4);
    let children = boxes(children);
    let child = |kind: &[u8; 4]| children.iter().find(|b| &b.kind == kind).unwrap();
    let pitm = child(b"pitm").body;
    let primary = match pitm[0] {
        0 => u32::from(u16::from_be_bytes([pitm[4], pitm[5]])),
        _ => u32::from_be_bytes(pitm[4..8].try_into().unwrap()),
    };
    let properties = boxes(child(b"iprp").body);
    let ipco = properties.iter().find(|b| &b.kind == b"ipco").unwrap();
    let ipma = properties.iter().find(|b| &b.kind == b"ipma").unwrap();
    let irot = bmff_box(b"irot", &[quarter_turns & 3]);
    let wide_indices = ipma.body[3] & 1 != 0;
    let grown = irot.len() + if wide_indices { 2 } else { 1 };

    let mut body = full_box.to_vec();
    for part in &children {
        match &part.kind {
            b"iprp" => {
                let mut iprp = Vec::new();
                for property in &properties {
                    match &property.kind {
                        b"ipco" => iprp.extend(bmff_box(b"ipco", &[ipco.body, &irot].concat())),
                        b"ipma" => {
                            let index = boxes(ipco.body).len() + 1;
                            iprp.extend(bmff_box(
                                b"ipma",
                                &with_association(ipma.body, primary, index),
                            ))
                        }
                        _ => iprp.extend_from_slice(property.raw),
                    }
                }
                body.extend(bmff_box(b"iprp", &iprp));
            }
            b"iloc" => body.extend(bmff_box(b"iloc", &shifted(part.body, grown as u64))),
            _ => body.extend_from_slice(part.raw),
        }
    }
    let mut out = heic[..meta_start].to_vec();
    out.extend(bmff_box(b"meta", &body));
    assert_eq!(out.len(), meta_end + grown);
    out.extend_from_slice(&heic[meta_end..]);
    out
}

/// An `ipma` body with an essential association of `item` to the 1-based `property`.
fn with_association(ipma: &[u8], item: u32, property: usize) -> Vec<u8> {
    let (version, wide) = (ipma[0], ipma[3] & 1 != 0);
    let (id_len, index_len) = (if version < 1 { 2 } else { 4 }, if wide { 2 } else { 1 });
    let entries = u32::from_be_bytes(ipma[4..8].try_into().unwrap());
    let mut out = ipma[..8].to_vec();
    let (mut at, mut found) = (8, false);
    for _ in 0..entries {
        let id = ipma[at..at + id_len]
            .iter()
            .fold(0u32, |n, b| n << 8 | u32::from(*b));
        let count = usize::from(ipma[at + id_len]);
        let end = at + id_len + 1 + count * index_len;
        out.extend_from_slice(&ipma[at..at + id_len]);
        if id == item {
            found = true;
            out.push(count as u8 + 1);
            out.extend_from_slice(&ipma[at + id_len + 1..end]);
            match wide {
                true => out.extend_from_slice(&(0x8000 | property as u16).to_be_bytes()),
                false => out.push(0x80 | property as u8),
            }
        } else {
            out.extend_from_slice(&ipma[at + id_len..end]);
        }
        at = end;
    }
    assert!(found, "the primary image has properties");
    out
}

/// An `iloc` body with every offset into the file moved `delta` bytes on.
fn shifted(iloc: &[u8], delta: u64) -> Vec<u8> {
    let mut out = iloc.to_vec();
    let version = iloc[0];
    let (offset_len, length_len) = (usize::from(iloc[4] >> 4), usize::from(iloc[4] & 15));
    let base_len = usize::from(iloc[5] >> 4);
    let index_len = if version >= 1 {
        usize::from(iloc[5] & 15)
    } else {
        0
    };
    let (items, mut at) = match version {
        0 | 1 => (u32::from(u16::from_be_bytes([iloc[6], iloc[7]])), 8),
        _ => (u32::from_be_bytes(iloc[6..10].try_into().unwrap()), 10),
    };
    let mut add = |at: usize, len: usize| {
        let field = &mut out[at..at + len];
        let n = field.iter().fold(0u64, |n, b| n << 8 | u64::from(*b)) + delta;
        field.copy_from_slice(&n.to_be_bytes()[8 - len..]);
    };
    for _ in 0..items {
        at += if version < 2 { 2 } else { 4 };
        // Construction method 0: offsets into the file; 1 and 2 point elsewhere.
        let in_file = version == 0 || iloc[at + 1] & 15 == 0;
        at += if version >= 1 { 2 } else { 0 } + 2;
        if in_file && base_len > 0 {
            add(at, base_len);
        }
        at += base_len;
        let extents = u16::from_be_bytes([iloc[at], iloc[at + 1]]);
        at += 2;
        for _ in 0..extents {
            at += index_len;
            if in_file && base_len == 0 && offset_len > 0 {
                add(at, offset_len);
            }
            at += offset_len + length_len;
        }
    }
    out
}

/// Where libheif is not installed, a job with a HEIC photo among JPEGs enrolls the
/// JPEGs and fails the HEIC photo with what to install: the binary, pointed at a library
/// that is not there, against the emulator as a process.
#[test]
fn without_libheif_a_heic_photo_fails_with_what_to_install_and_the_rest_is_enrolled() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    std::fs::create_dir_all(root.join("ann")).unwrap();
    let mut container = vec![0, 0, 0, 24];
    container.extend_from_slice(b"ftypheic\0\0\0\0mif1heic");
    std::fs::write(root.join("ann/IMG_0001.HEIC"), &container).unwrap();
    std::fs::write(root.join("ann/IMG_0002.jpg"), support::face_jpeg(1)).unwrap();
    std::fs::write(root.join("ann/IMG_0003.jpg"), support::face_jpeg(2)).unwrap();
    let emulator = EmulatorProcess::start(&[], &tmp.path().join("emulator.log"));
    let state = tmp.path().join("state");
    let out = support::bin::output(
        support::enroll_command(&root, &emulator.endpoint, &state)
            .args(["--group", "staff"])
            .env(LIBHEIF_ENV, "/nonexistent/libheif.so.1"),
    );
    assert_eq!(out.code, 1, "one photo failed: {out:?}");
    let held = emulator.state();
    assert_eq!(held.persons["ann"].faces.len(), 2, "{held:?}");
    let rows = report_rows(&state);
    let heic = rows
        .iter()
        .find(|r| r.image.ends_with("IMG_0001.HEIC"))
        .expect("the HEIC photo has its row");
    assert_eq!(heic.status, "failed", "{heic:?}");
    assert!(heic.reason.contains("IMG_0001.HEIC"), "{heic:?}");
    assert!(heic.reason.contains("apt-get install libheif1"), "{heic:?}");
    assert!(
        heic.reason.contains("/nonexistent/libheif.so.1"),
        "{heic:?}"
    );
    let enrolled = rows.iter().filter(|r| r.status == "enrolled").count();
    assert_eq!(enrolled, 2, "{rows:?}");
}

/// An archive of `persons` persons with `photos` noisy photos each, whose
/// normalized copies take more than 100 KB.
fn heavy_photos(persons: u32, photos: u32) -> Archive {
    let archive = Archive::new();
    for p in 0..persons {
        for i in 0..photos {
            let path = archive.add(&format!("p{p}"), &format!("{i}.png"), b"");
            write_png(&path, &picture(900, 700, 120, u64::from(p * 10 + i)));
        }
    }
    archive
}

fn emulator_with_body_limit(limit: u64, too_large: TooLarge) -> faceenroll::emulator::Emulator {
    support::emulator_with(|c| {
        c.contract.max_request_bytes = limit;
        c.contract.too_large = too_large;
    })
}

#[test]
fn a_photo_refused_alone_as_too_large_is_sent_again_as_a_smaller_copy() {
    const LIMIT: u64 = 100_000;
    for too_large in [TooLarge::Code23, TooLarge::Http413] {
        let archive = heavy_photos(2, 2);
        let emulator = emulator_with_body_limit(LIMIT, too_large);
        let client = client(&emulator);
        let (outcome, _) = run(&archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");

        let store = Store::open(&archive.state()).unwrap();
        let snapshot = emulator.snapshot();
        for found in store.photos() {
            let (_, entry) = found.unwrap();
            assert!(
                matches!(entry.state, PhotoState::Enrolled { .. }),
                "{too_large:?}: {} is {:?}",
                entry.image,
                entry.state
            );
            let note = entry.note.unwrap_or_default();
            assert!(note.starts_with("normalized from"), "{note}");
            let faceenroll::model::ImageRef::File(path) = &entry.image else {
                panic!("a file")
            };
            let person = path
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap();
            // The service holds a copy (not the original), once.
            assert_eq!(snapshot.persons[person].faces.len(), 2, "{person}");
            assert!(snapshot.persons[person]
                .faces
                .iter()
                .all(|f| f.content_hash != hash_of(path)));
        }
        drop(store);
        assert!(emulator.counters().answered(23) + emulator.counters().http_413 > 0);

        let before = emulator.counters().requests;
        let (_, tally) = run(&archive, &client, &options());
        assert_eq!(tally.snapshot().calls, 0, "{too_large:?}");
        assert_eq!(emulator.counters().requests, before);
    }
}

#[test]
fn a_photo_refused_even_as_the_smallest_copy_is_failed_with_the_sizes() {
    for too_large in [TooLarge::Code23, TooLarge::Http413] {
        let archive = heavy_photos(1, 1);
        // 3 000 bytes: not even a copy shrunk to 128 pixels fits (under 12 000 bytes
        // one does, and the photo is enrolled).
        let emulator = emulator_with_body_limit(3_000, too_large);
        let client = client(&emulator);
        let (outcome, _) = run(&archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
        assert!(emulator.snapshot().persons.is_empty());
        // Refused as it was prepared, then as smaller copies, before it failed.
        let refused = emulator.counters().answered(23) + emulator.counters().http_413;
        assert!(refused >= 3, "{too_large:?}: {refused} refusals");
        let store = Store::open(&archive.state()).unwrap();
        for found in store.photos() {
            let (_, entry) = found.unwrap();
            match &entry.state {
                PhotoState::Failed(f) => {
                    assert!(
                        f.message.contains(", over the request limit of")
                            && f.message.contains(" on its own"),
                        "{too_large:?}: {}",
                        f.message
                    );
                }
                other => panic!("{too_large:?}: {} is {other:?}", entry.image),
            }
        }
    }
}

/// The request limit of the tests below: 383 616 bytes of images a request, so at
/// most three of the heavy photos' copies (each over 100 KB) fit one `addface`.
const SMALL_LIMIT: u64 = 400_000;

fn small_limit_options() -> faceenroll::engine::EngineOptions {
    faceenroll::engine::EngineOptions {
        budget: faceenroll::limits::RequestBudget::configured(SMALL_LIMIT),
        ..options()
    }
}

#[test]
fn a_worker_reads_only_about_the_photos_of_its_next_call() {
    use faceenroll::emulator::probe::{CallHook, Moment};
    use faceenroll::service::api::Call;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;

    let archive = heavy_photos(1, 12);
    let person = archive.root().join("p0");
    // When the first addface arrives, the person's photos are taken away: those the
    // job has not read by then cannot be sent.
    let first = Arc::new(AtomicBool::new(true));
    let emulator = support::emulator_with(|c| {
        c.contract.max_request_bytes = SMALL_LIMIT;
        let person = person.clone();
        c.probes.hook = Some(CallHook::new(move |call, moment| {
            if call == Call::AddFace && moment == Moment::Received && first.swap(false, SeqCst) {
                std::fs::remove_dir_all(&person).unwrap();
            }
        }));
    });
    let client = client(&emulator);
    let options = faceenroll::engine::EngineOptions {
        workers: faceenroll::engine::Workers::Fixed(1),
        ..small_limit_options()
    };
    let (outcome, _) = run(&archive, &client, &options);
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");

    let store = Store::open(&archive.state()).unwrap();
    let (mut enrolled, mut failed) = (0, 0);
    for found in store.photos() {
        let (_, entry) = found.unwrap();
        match entry.state {
            PhotoState::Enrolled { .. } => enrolled += 1,
            PhotoState::Failed(failure) => {
                assert!(failure.message.contains("p0"), "{}", failure.message);
                failed += 1;
            }
            other => panic!("{}: {other:?}", entry.image),
        }
    }
    assert_eq!(enrolled + failed, 12);
    assert_eq!(emulator.snapshot().persons["p0"].faces.len(), enrolled);
    // Read before the first addface: the seed photo, the first call's (at most
    // three) and the few prepared to find where that call ends; not all 12.
    assert!((2..=7).contains(&enrolled), "{enrolled} photos read ahead");
}

#[test]
fn under_a_small_request_limit_every_photo_is_enrolled_once() {
    let archive = heavy_photos(2, 10);
    let emulator = emulator_with_body_limit(SMALL_LIMIT, TooLarge::Code23);
    let client = client(&emulator);
    let options = faceenroll::engine::EngineOptions {
        workers: faceenroll::engine::Workers::Fixed(8),
        ..small_limit_options()
    };
    let (outcome, _) = run(&archive, &client, &options);
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    let snapshot = emulator.snapshot();
    for p in 0..2 {
        let faces = &snapshot.persons[&format!("p{p}")].faces;
        let mut hashes: Vec<_> = faces.iter().map(|f| f.content_hash.clone()).collect();
        hashes.sort();
        hashes.dedup();
        assert_eq!((faces.len(), hashes.len()), (10, 10), "p{p}");
    }
    // Every call fitted the limit: none was refused as too large.
    assert_eq!(emulator.counters().answered(23), 0);
    // One newperson and, with at most three copies a call, at least three addface
    // calls a person.
    assert!(
        emulator.counters().requests >= 2 * 4,
        "{:?}",
        emulator.counters()
    );
}
