//! Photos that cost more than they should, end to end against the emulator: a file
//! that cannot be read when its call is sent fails alone, not its chunk.

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
