//! `enroll --mirror` audited: a deletion phase killed at chosen moments and run
//! again, `verify` reporting what left the source and `--repair` queueing it, and
//! `status` counting the deletions. Each test checks what the emulator holds, not
//! what the job recorded.
//!
//! The kills use the emulator's call hook ([`faceenroll::emulator::probe`]), as
//! `tests/kill.rs` does: the emulator runs in the test's process and holds one call
//! of the job (a separate process) at a chosen moment while the test kills the job
//! with SIGKILL:
//!
//! - **before the delete**: the deletion is recorded `Deleting`, its call has
//!   reached the service and nothing is done yet (`Moment::Received`);
//! - **after the delete, before its record**: the service has deleted and holds the
//!   answer (`Moment::Done`); the job's record still says `Deleting`, so the next
//!   run asks the service (`getinfo`) whether it is gone, rather than send a
//!   `delface` that the service may refuse (-1305, "face does not exist").

mod support;

use faceenroll::emulator::{CallHook, Emulator, Moment};
use faceenroll::service::api::Call;
use faceenroll::store::{MirrorMark, PhotoState, Store};
use std::collections::BTreeSet;
use std::process::Child;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use support::bin::code_and_text as output;
use support::{after_command, emulator_with, enroll_command, report_rows, Archive};

/// Holds the first call of one kind at one moment until released.
#[derive(Default)]
struct Trap {
    /// (call, moment is Done rather than Received) to catch, while armed.
    armed: Mutex<Option<(Call, bool)>>,
    holding: Mutex<bool>,
    changed: Condvar,
}

impl Trap {
    fn hook(self: &Arc<Self>) -> CallHook {
        let trap = Arc::clone(self);
        CallHook::new(move |call, moment| {
            let done = match moment {
                Moment::Received => false,
                Moment::Done { .. } => true,
                Moment::Answered => return,
            };
            {
                let mut armed = trap.armed.lock().unwrap();
                if *armed != Some((call, done)) {
                    return;
                }
                *armed = None;
            }
            let mut holding = trap.holding.lock().unwrap();
            *holding = true;
            trap.changed.notify_all();
            while *holding {
                holding = trap.changed.wait(holding).unwrap();
            }
        })
    }

    fn arm(&self, call: Call, done: bool) {
        *self.armed.lock().unwrap() = Some((call, done));
    }

    /// Waits until a call is held (true), or the child exits or a minute passes.
    fn caught(&self, child: &mut Child) -> bool {
        let started = Instant::now();
        let mut holding = self.holding.lock().unwrap();
        while !*holding {
            if started.elapsed() > Duration::from_secs(60) || child.try_wait().unwrap().is_some() {
                return false;
            }
            holding = self
                .changed
                .wait_timeout(holding, Duration::from_millis(5))
                .unwrap()
                .0;
        }
        true
    }

    fn release(&self) {
        *self.armed.lock().unwrap() = None;
        *self.holding.lock().unwrap() = false;
        self.changed.notify_all();
    }
}

fn enroll(archive: &Archive, emulator: &Emulator, extra: &[&str]) -> (i32, String) {
    let mut cmd = enroll_command(&archive.root(), &emulator.endpoint(), &archive.state());
    cmd.args(["--group", "staff"]).args(extra);
    output(&mut cmd)
}

fn person_ids(emulator: &Emulator) -> BTreeSet<String> {
    emulator.snapshot().persons.into_keys().collect()
}

fn face_ids(emulator: &Emulator, person: &str) -> BTreeSet<String> {
    emulator.snapshot().persons[person]
        .faces
        .iter()
        .map(|f| f.face_id.clone())
        .collect()
}

/// Day 1 (four persons of two photos each, enrolled), then day 2: person003's
/// folder and person000's second photo are gone. Answers the face id of that photo.
fn day_two(archive: &Archive, emulator: &Emulator) -> String {
    archive.fill(4, 2, 100);
    let (code, text) = enroll(archive, emulator, &[]);
    assert_eq!(code, 0, "{text}");
    std::fs::remove_dir_all(archive.root().join("person003")).unwrap();
    std::fs::remove_file(archive.root().join("person000/001.png")).unwrap();
    emulator.snapshot().persons["person000"].faces[1]
        .face_id
        .clone()
}

/// Runs `enroll --mirror` and kills it when `call` is held at the moment asked.
fn kill_at(archive: &Archive, emulator: &Emulator, trap: &Trap, call: Call, done: bool) {
    trap.arm(call, done);
    let mut child = enroll_command(&archive.root(), &emulator.endpoint(), &archive.state())
        .args(["--group", "staff", "--mirror", "--max-delete", "100%"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        trap.caught(&mut child),
        "the job never sent {call:?} (or ended first)"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    trap.release();
}

/// After the kill and one more `--mirror` run: the service holds exactly the
/// source, the report accounts for the removed photos, and nothing is left to do.
fn check_resumed(archive: &Archive, emulator: &Emulator, removed_face: &str) {
    let refused = emulator.counters().answered(-1305);
    let (code, text) = enroll(archive, emulator, &["--mirror", "--max-delete", "100%"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        emulator.counters().answered(-1305),
        refused,
        "a delface was sent for a face already gone: {text}"
    );
    assert_eq!(
        person_ids(emulator),
        ["person000", "person001", "person002"]
            .map(String::from)
            .into()
    );
    let kept = face_ids(emulator, "person000");
    assert_eq!(kept.len(), 1);
    assert!(!kept.contains(removed_face));
    for p in ["person001", "person002"] {
        assert_eq!(face_ids(emulator, p).len(), 2, "{p}");
    }
    // Nothing forgotten: every photo that left has its row, `removed`, with the
    // face deleted; no deletion is left half done.
    let rows = report_rows(&archive.state());
    let removed: Vec<_> = rows.iter().filter(|r| r.status == "removed").collect();
    assert_eq!(removed.len(), 3, "{rows:?}");
    assert!(removed.iter().any(|r| r.face_id == removed_face));
    let store = Store::open(&archive.state()).unwrap();
    for item in store.photos() {
        let (key, _) = item.unwrap();
        assert!(
            !matches!(
                store.mirrored_photo(&key).unwrap(),
                Some(MirrorMark::Deleting { .. })
            ),
            "a deletion still recorded as under way"
        );
    }
    drop(store);
    // Done: a re-run makes no call.
    let calls = emulator.counters().requests;
    let (code, text) = enroll(archive, emulator, &["--mirror"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(emulator.counters().requests, calls, "{text}");
}

fn trapped_emulator(trap: &Arc<Trap>) -> Emulator {
    emulator_with(|c| c.probes.hook = Some(trap.hook()))
}

#[test]
fn a_mirror_killed_before_a_delperson_deletes_it_on_the_next_run() {
    let trap = Arc::new(Trap::default());
    let emulator = trapped_emulator(&trap);
    let archive = Archive::new();
    let face = day_two(&archive, &emulator);
    // The person is read just before its delperson: killed there, the deletion is
    // recorded as under way and no delete was sent.
    kill_at(&archive, &emulator, &trap, Call::GetInfo, false);
    assert!(person_ids(&emulator).contains("person003"));
    {
        let store = Store::open(&archive.state()).unwrap();
        assert!(matches!(
            store.mirrored_person("person003").unwrap(),
            Some(MirrorMark::Deleting { .. })
        ));
    }
    let delpersons = emulator.counters().received("delperson");
    check_resumed(&archive, &emulator, &face);
    assert_eq!(emulator.counters().received("delperson") - delpersons, 1);
}

#[test]
fn a_mirror_killed_after_a_delperson_and_before_its_record_reads_the_person_gone() {
    let trap = Arc::new(Trap::default());
    let emulator = trapped_emulator(&trap);
    let archive = Archive::new();
    let face = day_two(&archive, &emulator);
    kill_at(&archive, &emulator, &trap, Call::DelPerson, true);
    assert!(!person_ids(&emulator).contains("person003"));
    let delpersons = emulator.counters().received("delperson");
    check_resumed(&archive, &emulator, &face);
    assert_eq!(
        emulator.counters().received("delperson"),
        delpersons,
        "delperson sent again for a person already gone"
    );
}

/// A delface in flight when the job dies (the service deletes after): under
/// the job's record it is under way, and the next run settles it from the service.
#[test]
fn a_mirror_killed_with_a_delface_in_flight_or_done_and_unanswered_deletes_it_once() {
    for done in [false, true] {
        let trap = Arc::new(Trap::default());
        let emulator = trapped_emulator(&trap);
        let archive = Archive::new();
        let face = day_two(&archive, &emulator);
        kill_at(&archive, &emulator, &trap, Call::DelFace, done);
        {
            let store = Store::open(&archive.state()).unwrap();
            let (key, entry) = store
                .photos()
                .map(Result::unwrap)
                .find(|(_, e)| e.image.to_string().ends_with("person000/001.png"))
                .unwrap();
            assert!(matches!(entry.state, PhotoState::Enrolled { .. }));
            assert!(matches!(
                store.mirrored_photo(&key).unwrap(),
                Some(MirrorMark::Deleting { .. })
            ));
        }
        let (code, text) = status(&archive, false);
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains("1 deletion under way when a run stopped"),
            "{text}"
        );
        // The held call, let go, is done by the service: the face is gone.
        let started = Instant::now();
        while face_ids(&emulator, "person000").contains(&face) {
            assert!(started.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(5));
        }
        let delfaces = emulator.counters().received("delface");
        check_resumed(&archive, &emulator, &face);
        assert_eq!(
            emulator.counters().received("delface"),
            delfaces,
            "the face already gone was deleted again (done: {done})"
        );
    }
}

fn after(command: &str, archive: &Archive, emulator: &Emulator, extra: &[&str]) -> (i32, String) {
    output(&mut after_command(
        command,
        &emulator.endpoint(),
        &archive.state(),
        extra,
    ))
}

fn status(archive: &Archive, json: bool) -> (i32, String) {
    let mut cmd = support::faceenroll(&["status".as_ref(), "--state".as_ref()]);
    cmd.arg(archive.state());
    if json {
        cmd.arg("--json");
    }
    output(&mut cmd)
}

#[test]
fn verify_reports_what_left_the_source_and_repair_queues_it_for_the_next_mirror_run() {
    let emulator = support::emulator();
    let archive = Archive::new();
    let face = day_two(&archive, &emulator);
    // person002 left the source too, but someone renamed it since: not the job's to
    // take back, so not drift, and a mirror leaves it and says why.
    support::client(&emulator)
        .set_info(&support::pid("person002"), Some("Renamed"), None)
        .unwrap();
    std::fs::remove_dir_all(archive.root().join("person002")).unwrap();
    // The nightly run without --mirror: it only adds, and its plan knows what left.
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    let before = emulator.snapshot();

    let (code, text) = after("verify", &archive, &emulator, &[]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("left the source, still on the service: 1 persons, 1 faces"),
        "{text}"
    );
    let drift = std::fs::read_to_string(archive.state().join("drift.csv")).unwrap();
    let rows: Vec<&str> = drift
        .lines()
        .filter(|l| l.contains("left_source"))
        .collect();
    assert_eq!(rows.len(), 2, "{drift}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("person003,person_left_source,")
                && r.contains("2 faces of the job")),
        "{drift}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("person000,face_left_source,")
                && r.contains(&face)
                && r.contains("person000/001.png")),
        "{drift}"
    );

    // --repair queues, and deletes nothing.
    // Every difference queued for the next enroll: exit 0, so that
    // `verify --repair && enroll --mirror ...` goes on to make them.
    let (code, text) = after("verify", &archive, &emulator, &["--repair"]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("queued: 2 deletions"), "{text}");
    assert_eq!(emulator.snapshot(), before);
    let (code, text) = status(&archive, false);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("2 deletions queued by verify --repair"),
        "{text}"
    );

    // Without --mirror the queue waits, and the run says so.
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Mirror: 2 deletions queued by verify --repair wait for a run with --mirror"),
        "{text}"
    );
    assert_eq!(emulator.snapshot(), before);

    // The same guards: past --max-delete, nothing is deleted and the queue stays.
    let (code, text) = enroll(&archive, &emulator, &["--mirror", "--max-delete", "1"]);
    assert_eq!(code, 4, "{text}");
    assert_eq!(emulator.snapshot(), before);
    let (_, text) = status(&archive, false);
    assert!(text.contains("held, nothing deleted"), "{text}");
    assert!(text.contains("2 deletions queued"), "{text}");

    let (code, text) = enroll(&archive, &emulator, &["--mirror", "--max-delete", "100%"]);
    // person002, renamed by someone since, is left this run: exit 1.
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        person_ids(&emulator),
        ["person000", "person001", "person002"]
            .map(String::from)
            .into()
    );
    assert_eq!(face_ids(&emulator, "person000").len(), 1);
    assert!(!face_ids(&emulator, "person000").contains(&face));
    assert_eq!(
        emulator.snapshot().persons["person002"],
        before.persons["person002"]
    );

    // status counts the deletions by kind, with what the last run left and why.
    let (code, text) = status(&archive, false);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("mirror:  1 person, 3 faces and 0 groups deleted by mirror runs"),
        "{text}"
    );
    assert!(
        text.contains("person002: left as it is: its name was changed"),
        "{text}"
    );
    assert!(!text.contains("queued"), "{text}");
    let (code, json) = status(&archive, true);
    assert_eq!(code, 0, "{json}");
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mirror = &json["mirror"];
    assert_eq!(mirror["persons_deleted"], 1, "{json}");
    assert_eq!(mirror["faces_deleted"], 3, "{json}");
    assert_eq!(mirror["queued"], 0, "{json}");
    assert_eq!(mirror["under_way"], 0, "{json}");
    assert_eq!(mirror["last_run"]["held"], serde_json::Value::Null);
    assert_eq!(mirror["last_run"]["left"][0]["person_id"], "person002");

    // The service follows the source again: verify finds no drift.
    let (code, text) = after("verify", &archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn rollback_mirror_lists_what_can_come_back_and_the_next_enroll_brings_it_back() {
    let emulator = support::emulator();
    let archive = Archive::new();
    archive.fill(4, 2, 100);
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    let day_one = emulator.snapshot();
    // A wrong night: person003's folder and a photo are missing from the share, and
    // one photo is really gone.
    let saved = archive.dir.path().join("saved");
    std::fs::create_dir(&saved).unwrap();
    std::fs::rename(archive.root().join("person003"), saved.join("person003")).unwrap();
    std::fs::rename(
        archive.root().join("person000/001.png"),
        saved.join("000-001.png"),
    )
    .unwrap();
    std::fs::remove_file(archive.root().join("person001/001.png")).unwrap();
    let lost_face = day_one.persons["person001"].faces[1].face_id.clone();
    let (code, text) = enroll(&archive, &emulator, &["--mirror", "--max-delete", "100%"]);
    assert_eq!(code, 0, "{text}");
    assert!(!person_ids(&emulator).contains("person003"));

    // The share is back; the really gone photo is not.
    std::fs::rename(saved.join("person003"), archive.root().join("person003")).unwrap();
    std::fs::rename(
        saved.join("000-001.png"),
        archive.root().join("person000/001.png"),
    )
    .unwrap();
    let calls = emulator.counters().requests;
    let (code, text) = after("rollback", &archive, &emulator, &["--mirror"]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(emulator.counters().requests, calls, "{text}");
    assert!(
        text.contains("comes back: person person003")
            && text.contains("2 of its 2 photos are still in the source"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("  cannot come back: face")
                && l.contains(&lost_face)
                && l.contains("its photo is no longer in the source")),
        "{text}"
    );
    assert!(
        text.contains(
            "5 deletions by mirror runs, 4 can come back (0 groups put back now), 1 cannot"
        ),
        "{text}"
    );

    // The next enroll sends them again: the service holds the source once more.
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    let now = emulator.snapshot();
    assert_eq!(
        person_ids(&emulator),
        day_one.persons.keys().cloned().collect()
    );
    assert_eq!(now.persons["person003"].faces.len(), 2);
    assert_eq!(now.persons["person000"].faces.len(), 2);
    assert_eq!(now.persons["person001"].faces.len(), 1);
    assert!(now.groups["staff"].iter().any(|p| p == "person003"));
    // Nothing left to bring back but what cannot come.
    let (code, text) = after("rollback", &archive, &emulator, &["--mirror"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("1 deletions by mirror runs, 0 can come back"),
        "{text}"
    );
}

#[test]
fn a_rollback_after_mirror_runs_leaves_the_account_as_the_job_found_it() {
    use faceenroll::service::client::ImageBody;
    let emulator = support::emulator();
    let archive = Archive::new();
    archive.fill(4, 2, 100);
    // person001 existed before the job, in vip, with a face of its own.
    let theirs = archive.dir.path().join("theirs.png");
    std::fs::write(&theirs, support::photo(7000)).unwrap();
    support::client(&emulator)
        .new_person(
            &support::pid("person001"),
            &[support::gid("vip")],
            &ImageBody::File(theirs),
            None,
            None,
        )
        .unwrap();
    let found = emulator.snapshot();
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    std::fs::remove_dir_all(archive.root().join("person001")).unwrap();
    std::fs::remove_dir_all(archive.root().join("person003")).unwrap();
    std::fs::remove_file(archive.root().join("person000/001.png")).unwrap();
    let (code, text) = enroll(&archive, &emulator, &["--mirror", "--max-delete", "100%"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        emulator.snapshot().persons["person001"],
        found.persons["person001"]
    );

    let (code, text) = after("rollback", &archive, &emulator, &["--yes"]);
    assert_eq!(code, 0, "{text}");
    let after = emulator.snapshot();
    assert_eq!(after.persons, found.persons, "{text}");
}

#[test]
fn a_moved_archive_is_not_a_source_that_lost_its_photos() {
    let emulator = support::emulator();
    let archive = Archive::new();
    archive.fill(3, 2, 100);
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    let before = emulator.snapshot();
    // The share is mounted elsewhere: the same photos at new paths.
    let moved = archive.dir.path().join("moved");
    std::fs::rename(archive.root(), &moved).unwrap();
    let mut cmd = enroll_command(&moved, &emulator.endpoint(), &archive.state());
    let (code, text) = output(cmd.args(["--group", "staff", "--mirror", "--max-delete", "100%"]));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("Mirror: 0 persons and 0 faces deleted"),
        "{text}"
    );
    assert_eq!(emulator.snapshot(), before);
    let (code, text) = after("verify", &archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
}

/// A person the job created that someone gave a face of their own since: a mirror
/// takes only the job's faces off. Killed between that delface and its record, the
/// next run finds the job's faces gone, records them removed and says why the
/// person stays; later runs make no call.
#[test]
fn a_mirror_killed_while_taking_the_jobs_faces_off_a_shared_person_finishes_it() {
    use faceenroll::service::client::ImageBody;
    let trap = Arc::new(Trap::default());
    let emulator = trapped_emulator(&trap);
    let archive = Archive::new();
    archive.fill(3, 2, 100);
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    let theirs = archive.dir.path().join("theirs.png");
    std::fs::write(&theirs, support::photo(7000)).unwrap();
    let their_face = support::client(&emulator)
        .add_faces(&support::pid("person002"), &[ImageBody::File(theirs)], None)
        .unwrap()
        .face_ids[0]
        .clone();
    std::fs::remove_dir_all(archive.root().join("person002")).unwrap();
    kill_at(&archive, &emulator, &trap, Call::DelFace, true);
    assert_eq!(
        face_ids(&emulator, "person002"),
        [their_face.clone()].into()
    );

    let (code, text) = enroll(&archive, &emulator, &["--mirror", "--max-delete", "100%"]);
    // A person left on the service this run is news: exit 1 this night only.
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("person002: left in part: it holds 1 faces the job did not add"),
        "{text}"
    );
    assert_eq!(face_ids(&emulator, "person002"), [their_face].into());
    let rows = report_rows(&archive.state());
    let theirs: Vec<_> = rows.iter().filter(|r| r.person_id == "person002").collect();
    assert_eq!(theirs.len(), 2, "{rows:?}");
    assert!(theirs.iter().all(|r| r.status == "removed"), "{rows:?}");
    let calls = emulator.counters().requests;
    let (code, text) = enroll(&archive, &emulator, &["--mirror"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(emulator.counters().requests, calls, "{text}");
}

/// A photo replaced in place: the mirror deletes its old face. Killed with that
/// delface in flight or done and unanswered, under both readings of a delface of a
/// face already gone (-1305, or `deleted` 0), the next run reads the face gone
/// rather than delete it again: the old face gone once, the new content enrolled
/// once, no deletion left under way, and a further run makes no call.
#[test]
fn a_mirror_killed_deleting_a_replaced_photos_old_face_deletes_it_once() {
    use faceenroll::emulator::FaceGone;
    for gone in [FaceGone::FaceMissing, FaceGone::DeletedZero] {
        for done in [false, true] {
            let trap = Arc::new(Trap::default());
            let emulator = emulator_with(|c| {
                c.probes.hook = Some(trap.hook());
                c.contract.face_gone = gone;
            });
            let archive = Archive::new();
            archive.fill(2, 2, 100);
            let (code, text) = enroll(&archive, &emulator, &[]);
            assert_eq!(code, 0, "{text}");
            let old = archive.root().join("person000/001.png");
            let old_hash = support::hash_of(&old);
            let old_face = emulator.snapshot().persons["person000"]
                .faces
                .iter()
                .find(|f| f.content_hash == old_hash)
                .unwrap()
                .face_id
                .clone();
            std::fs::write(&old, support::photo(77_000)).unwrap();
            kill_at(&archive, &emulator, &trap, Call::DelFace, done);
            let (code, text) = status(&archive, false);
            assert_eq!(code, 0, "{text}");
            assert!(text.contains("under way when a run stopped"), "{text}");
            // The held call, let go, is done by the service.
            let started = Instant::now();
            while face_ids(&emulator, "person000").contains(&old_face) {
                assert!(started.elapsed() < Duration::from_secs(30));
                std::thread::sleep(Duration::from_millis(5));
            }

            let case = format!("{gone:?}, done: {done}");
            let delfaces = emulator.counters().received("delface");
            let refused = emulator.counters().answered(-1305);
            let (code, text) = enroll(&archive, &emulator, &["--mirror", "--max-delete", "100%"]);
            assert_eq!(code, 0, "{case}: {text}");
            assert_eq!(
                emulator.counters().received("delface"),
                delfaces,
                "{case}: the old face, already gone, was deleted again"
            );
            assert_eq!(emulator.counters().answered(-1305), refused, "{case}");
            let mut held: Vec<String> = emulator.snapshot().persons["person000"]
                .faces
                .iter()
                .map(|f| f.content_hash.clone())
                .collect();
            held.sort();
            let mut source = vec![
                support::hash_of(&archive.root().join("person000/000.png")),
                support::hash_of(&old),
            ];
            source.sort();
            assert_eq!(held, source, "{case}: {text}");
            assert_eq!(face_ids(&emulator, "person001").len(), 2, "{case}");
            let (code, text) = status(&archive, false);
            assert_eq!(code, 0, "{text}");
            assert!(!text.contains("under way"), "{case}: {text}");
            let calls = emulator.counters().requests;
            let (code, text) = enroll(&archive, &emulator, &["--mirror"]);
            assert_eq!(code, 0, "{case}: {text}");
            assert_eq!(emulator.counters().requests, calls, "{case}: {text}");
        }
    }
}

/// A group the source no longer gives a person: the mirror takes it out of it.
/// Killed with that delgroupids in flight or done and unanswered, the next run
/// finishes it: the person out of that group and still in its other, nothing left
/// under way, and a further run makes no call.
#[test]
fn a_mirror_killed_taking_a_person_out_of_a_dropped_group_finishes_it() {
    for done in [false, true] {
        let trap = Arc::new(Trap::default());
        let emulator = trapped_emulator(&trap);
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("manifest.csv");
        let state = dir.path().join("state");
        for (person, seed) in [("p", 1), ("q", 2)] {
            std::fs::write(
                dir.path().join(format!("{person}.png")),
                support::photo(seed),
            )
            .unwrap();
        }
        let write = |p_groups: &str| {
            let text = format!("person_id,image,group_ids\np,p.png,{p_groups}\nq,q.png,staff\n");
            std::fs::write(&manifest, text).unwrap();
        };
        let run = |extra: &[&str]| {
            let mut cmd = enroll_command(&manifest, &emulator.endpoint(), &state);
            output(cmd.args(extra))
        };
        let groups = |person: &str| -> BTreeSet<String> {
            emulator.snapshot().persons[person]
                .groups
                .iter()
                .cloned()
                .collect()
        };
        write("staff;night");
        let (code, text) = run(&[]);
        assert_eq!(code, 0, "{text}");
        assert_eq!(groups("p"), ["night", "staff"].map(String::from).into());

        write("staff");
        trap.arm(Call::DelGroupIds, done);
        let mut child = enroll_command(&manifest, &emulator.endpoint(), &state)
            .args(["--mirror", "--max-delete", "100%"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        assert!(trap.caught(&mut child), "the job never sent delgroupids");
        child.kill().unwrap();
        child.wait().unwrap();
        trap.release();

        let (code, text) = run(&["--mirror", "--max-delete", "100%"]);
        assert_eq!(code, 0, "done: {done}: {text}");
        assert_eq!(groups("p"), ["staff"].map(String::from).into(), "{text}");
        assert_eq!(groups("q"), ["staff"].map(String::from).into(), "{text}");
        assert_eq!(emulator.snapshot().persons["p"].faces.len(), 1);
        let mut cmd = support::faceenroll(&["status".as_ref(), "--state".as_ref()]);
        cmd.arg(&state);
        let (code, text) = output(&mut cmd);
        assert_eq!(code, 0, "{text}");
        assert!(!text.contains("under way"), "done: {done}: {text}");
        assert!(text.contains("and 1 group deleted"), "done: {done}: {text}");
        let calls = emulator.counters().requests;
        let (code, text) = run(&["--mirror"]);
        assert_eq!(code, 0, "done: {done}: {text}");
        assert_eq!(emulator.counters().requests, calls, "done: {done}: {text}");
    }
}

#[test]
fn rollback_mirror_puts_back_the_group_taken_from_a_departed_person_found_before_the_job() {
    use faceenroll::service::client::ImageBody;
    use support::{client, gid, photo, pid};
    let emulator = support::emulator();
    let archive = Archive::new();
    archive.fill(4, 2, 100);
    // person003 is on the service before the job, with a face of its own.
    let theirs = archive.dir.path().join("theirs.png");
    std::fs::write(&theirs, photo(4_444)).unwrap();
    client(&emulator)
        .new_person(
            &pid("person003"),
            &[gid("other")],
            &ImageBody::File(theirs),
            None,
            None,
        )
        .unwrap();
    let (code, text) = enroll(&archive, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    assert!(emulator.snapshot().groups["staff"]
        .iter()
        .any(|p| p == "person003"));

    // It leaves the source: the job's faces and group go, the person stays.
    std::fs::remove_dir_all(archive.root().join("person003")).unwrap();
    let (code, text) = enroll(&archive, &emulator, &["--mirror", "--max-delete", "100%"]);
    assert_eq!(code, 0, "{text}");
    let now = emulator.snapshot();
    assert_eq!(now.persons["person003"].faces.len(), 1, "{text}");
    assert!(
        !now.groups["staff"].iter().any(|p| p == "person003"),
        "{text}"
    );

    let (code, text) = after("rollback", &archive, &emulator, &["--mirror"]);
    // The job's faces cannot come back (their photos left the source): said, exit 1.
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("1 groups put back now"), "{text}");
    let now = emulator.snapshot();
    assert!(
        now.groups["staff"].iter().any(|p| p == "person003"),
        "{text}"
    );
    assert_eq!(
        now.persons["person003"].groups,
        ["other", "staff"],
        "{text}"
    );
}
