//! Photos that cost more than they should, end to end against the emulator, with the
//! service's state read back: a file that cannot be read when its call is sent fails
//! alone, not its chunk nor its person; a file over `--max-file-bytes` (a 2 GiB sparse
//! file) is refused from its size, never read whole; a small PNG whose header claims
//! 9999×9999 pixels is refused from its header, before a decoder allocates.

mod support;

use faceenroll::emulator::probe::{CallHook, Moment};
use faceenroll::engine::{RunOutcome, Workers};
use faceenroll::service::api::Call;
use faceenroll::store::{FailureKind, PhotoState, Store};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use support::{client, emulator_with, options, run, Archive};

/// Every photo's state, by file name.
fn states(archive: &Archive) -> Vec<(String, PhotoState)> {
    let store = Store::open(&archive.state()).unwrap();
    store
        .photos()
        .map(|found| {
            let (_, entry) = found.unwrap();
            let name = entry.image.to_string();
            let name = name.rsplit('/').next().unwrap().to_owned();
            (name, entry.state)
        })
        .collect()
}

#[test]
fn a_photo_unreadable_when_its_call_is_sent_fails_alone_and_the_rest_of_its_chunk_goes_on() {
    // One person of 21 small photos: the seed, a chunk of the 19 the person has room
    // for, and a spare that takes the place of a photo that fails.
    let archive = Archive::new();
    archive.fill(1, 21, 0);
    let gone = archive.root().join("person000").join("010.png");
    // When the first addface arrives (its body read), a photo of that chunk is
    // deleted; the call is answered 213, so its next attempt builds the body again
    // and meets the photo gone: after the plan, after the photo was made ready.
    let first = Arc::new(AtomicBool::new(true));
    let emulator = emulator_with(|c| {
        let gone = gone.clone();
        c.probes.hook = Some(CallHook::new(move |call, moment| {
            if call == Call::AddFace && moment == Moment::Received && first.swap(false, SeqCst) {
                std::fs::remove_file(&gone).unwrap();
            }
        }));
    });
    emulator.inject_next_for(Call::AddFace, 213, 1);
    let options = faceenroll::engine::EngineOptions {
        workers: Workers::Fixed(1),
        ..options()
    };
    let (outcome, _) = run(&archive, &client(&emulator), &options);
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");

    assert_eq!(emulator.snapshot().persons["person000"].faces.len(), 20);
    let states = states(&archive);
    assert_eq!(states.len(), 21);
    for (name, state) in states {
        match (name.as_str(), state) {
            ("010.png", PhotoState::Failed(f)) => {
                assert_eq!(f.kind, FailureKind::Input, "{f:?}");
                assert!(
                    f.message.contains(&gone.display().to_string())
                        && f.message.contains("cannot be read")
                        && f.message.contains("No such file"),
                    "{}",
                    f.message
                );
            }
            (_, PhotoState::Enrolled { .. }) if name != "010.png" => {}
            (name, state) => panic!("{name}: {state:?}"),
        }
    }
}

/// The most resident memory this test process has had, from `/proc/self/status`.
fn peak_rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Pads the photo at `path` with zeros to 2 GiB, without writing them (a sparse file):
/// a small PNG at its start, the rest a hole.
fn pad_to_2_gib(path: &std::path::Path) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(2 << 30).unwrap();
}

fn assert_too_large(name: &str, state: &PhotoState) {
    match state {
        PhotoState::Failed(f) => {
            assert_eq!(f.kind, FailureKind::Input, "{f:?}");
            assert!(
                f.message.contains(name)
                    && f.message.contains("too large")
                    && f.message.contains("--max-file-bytes"),
                "{}",
                f.message
            );
        }
        other => panic!("{name}: {other:?}"),
    }
}

#[test]
fn a_2_gib_file_is_refused_from_its_size_unread_and_the_rest_is_enrolled() {
    let archive = Archive::new();
    archive.fill(1, 3, 0);
    pad_to_2_gib(&archive.root().join("person000").join("001.png"));
    let emulator = support::emulator();
    let (outcome, _) = run(&archive, &client(&emulator), &options());
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    assert_eq!(emulator.snapshot().persons["person000"].faces.len(), 2);
    for (name, state) in states(&archive) {
        if name == "001.png" {
            assert_too_large(&name, &state);
        } else {
            assert!(
                matches!(state, PhotoState::Enrolled { .. }),
                "{name}: {state:?}"
            );
        }
    }
    // Never read whole: the process stays far under the file's size.
    assert!(peak_rss_bytes() < 1 << 30, "peak RSS {}", peak_rss_bytes());
}

#[test]
fn a_file_grown_past_the_cap_after_the_plan_fails_alone_when_it_is_read() {
    // Planned at its size; when the person's first call arrives, one of its later
    // photos becomes 2 GiB: the read that makes it ready refuses it from its size.
    let archive = Archive::new();
    archive.fill(1, 3, 0);
    let grown = archive.root().join("person000").join("002.png");
    let first = Arc::new(AtomicBool::new(true));
    let emulator = emulator_with(|c| {
        let grown = grown.clone();
        c.probes.hook = Some(CallHook::new(move |call, moment| {
            if call == Call::NewPerson && moment == Moment::Received && first.swap(false, SeqCst) {
                pad_to_2_gib(&grown);
            }
        }));
    });
    let options = faceenroll::engine::EngineOptions {
        workers: Workers::Fixed(1),
        ..options()
    };
    let (outcome, _) = run(&archive, &client(&emulator), &options);
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    assert_eq!(emulator.snapshot().persons["person000"].faces.len(), 2);
    for (name, state) in states(&archive) {
        if name == "002.png" {
            assert_too_large(&name, &state);
        } else {
            assert!(
                matches!(state, PhotoState::Enrolled { .. }),
                "{name}: {state:?}"
            );
        }
    }
    assert!(peak_rss_bytes() < 1 << 30, "peak RSS {}", peak_rss_bytes());
}

/// CRC-32 of PNG chunks (ISO 3309), bit by bit: a few bytes per test.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A PNG of a few dozen bytes whose header declares `width`×`height` 8-bit RGBA
/// pixels, its image data an empty zlib stream: what a decoder allocates for it is
/// what the header says (400 MB at 9999×9999, under the 100-megapixel bound).
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8; 4], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    // zlib header, one empty final stored block, the Adler-32 of nothing.
    chunk(
        b"IDAT",
        &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0, 0, 0, 1],
    );
    chunk(b"IEND", &[]);
    png
}

#[test]
fn a_small_png_claiming_9999_by_9999_pixels_is_refused_from_its_header_before_decoding() {
    let archive = Archive::new();
    archive.fill(1, 3, 0);
    let bomb = archive.add("person000", "bomb.png", &png_claiming(9999, 9999));
    assert!(std::fs::metadata(&bomb).unwrap().len() < 100);
    // From its header alone: the decision a plan makes refuses it.
    let refused = faceenroll::normalize::decide(&bomb, &Default::default()).unwrap_err();
    assert!(
        matches!(
            refused,
            faceenroll::normalize::NormalizeError::OverMemory { .. }
        ),
        "{refused}"
    );

    let emulator = support::emulator();
    let (outcome, _) = run(&archive, &client(&emulator), &options());
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    assert_eq!(emulator.snapshot().persons["person000"].faces.len(), 3);
    for (name, state) in states(&archive) {
        match (name.as_str(), &state) {
            ("bomb.png", PhotoState::Failed(f)) => {
                assert_eq!(f.kind, FailureKind::Input, "{f:?}");
                assert!(
                    f.message.contains("9999×9999 pixels")
                        && f.message.contains("one photo may take")
                        && f.message.contains("not decoded"),
                    "{}",
                    f.message
                );
            }
            ("bomb.png", _) => panic!("{name}: {state:?}"),
            _ => assert!(
                matches!(state, PhotoState::Enrolled { .. }),
                "{name}: {state:?}"
            ),
        }
    }
}

#[test]
fn a_seed_photo_unreadable_when_its_call_is_sent_fails_alone_and_the_next_photo_seeds() {
    let archive = Archive::new();
    archive.fill(1, 3, 0);
    let seed = archive.root().join("person000").join("000.png");
    // The first newperson is answered 213; the photo is gone before its next attempt.
    let first = Arc::new(AtomicBool::new(true));
    let emulator = emulator_with(|c| {
        let seed = seed.clone();
        c.probes.hook = Some(CallHook::new(move |call, moment| {
            if call == Call::NewPerson && moment == Moment::Received && first.swap(false, SeqCst) {
                std::fs::remove_file(&seed).unwrap();
            }
        }));
    });
    emulator.inject_next_for(Call::NewPerson, 213, 1);
    let options = faceenroll::engine::EngineOptions {
        workers: Workers::Fixed(1),
        ..options()
    };
    let (outcome, _) = run(&archive, &client(&emulator), &options);
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    assert_eq!(emulator.snapshot().persons["person000"].faces.len(), 2);
    for (name, state) in states(&archive) {
        match (name.as_str(), &state) {
            ("000.png", PhotoState::Failed(f)) => {
                assert_eq!(f.kind, FailureKind::Input, "{f:?}");
                assert!(f.message.contains("cannot be read"), "{}", f.message);
            }
            ("000.png", _) => panic!("{name}: {state:?}"),
            _ => assert!(
                matches!(state, PhotoState::Enrolled { .. }),
                "{name}: {state:?}"
            ),
        }
    }
}
