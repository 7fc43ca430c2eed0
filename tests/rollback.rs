//! `rollback` touches only what the job made, against the in-process emulator: each
//! test checks what the service holds after it.
//!
//! - a person deleted and made again by another job, and a name changed by someone
//!   else after the job, are left (exit 1, named with the reason);
//! - persons the job created on answers it never read (lost answers, a job stopped
//!   by a second Ctrl-C while its `newperson` was done but unanswered, a job stopped
//!   by a full disk) are deleted;
//! - a rollback closes the state: `enroll` and `verify` refuse it, a second
//!   rollback says so, and a new state enrolls everything again;
//! - a rollback interrupted by Ctrl-C says what it did, and finishes when run again.

mod support;

use faceenroll::emulator::{CallHook, Emulator, Faults, Moment, REHEARSAL_APPID};
use faceenroll::engine::RunOutcome;
use faceenroll::service::api::Call;
use faceenroll::service::client::ImageBody;
use faceenroll::state_dir::StateDir;
use faceenroll::store::{FaceRef, PersonState, PhotoState, Store};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use support::bin::code_and_text as output;
use support::{
    archive_faces, client, emulator, emulator_with, enroll_command, faceenroll, gid, held_faces,
    options, photo, pid, run, Archive,
};

/// [`support::after_command`] with no input: a question is not confirmed.
fn after_command(command: &str, endpoint: &str, state: &Path, extra: &[&str]) -> Command {
    let mut cmd = support::after_command(command, endpoint, state, extra);
    cmd.stdin(Stdio::null());
    cmd
}

fn rollback(emulator: &Emulator, state: &Path) -> (i32, String) {
    output(&mut after_command(
        "rollback",
        &emulator.endpoint(),
        state,
        &["--yes"],
    ))
}

/// Runs the job in-process until nothing is left to send.
fn run_to_the_end(archive: &Archive, emulator: &Emulator) {
    let client = client(emulator);
    for _ in 0..10 {
        let (outcome, _) = run(archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
        let store = Store::open(&archive.state()).unwrap();
        let open = store
            .photos()
            .filter(|p| !p.as_ref().unwrap().1.state.is_final())
            .count();
        if open == 0 {
            return;
        }
    }
    panic!("the job did not finish in ten runs");
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(60), "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn interrupt(child: &std::process::Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_person_deleted_and_made_again_by_another_job_is_left_with_all_its_faces() {
    let emulator = emulator();
    let client = client(&emulator);
    let a = Archive::new();
    a.fill(2, 2, 100);
    run_to_the_end(&a, &emulator);
    // Someone deletes person000; another job (another state) makes it again with
    // other photos.
    client.del_person(&pid("person000")).unwrap();
    let b = Archive::new();
    b.fill(1, 3, 500);
    run_to_the_end(&b, &emulator);
    let theirs = emulator.snapshot().persons["person000"].clone();
    assert_eq!(theirs.faces.len(), 3);

    let (code, text) = rollback(&emulator, &a.state());
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("person000: left as it is")
            && text.contains("deleted and made again by someone else"),
        "{text}"
    );
    let after = emulator.snapshot();
    assert_eq!(after.persons.keys().collect::<Vec<_>>(), ["person000"]);
    assert_eq!(after.persons["person000"], theirs, "the other job's person");
}

#[test]
fn a_person_that_existed_with_one_face_is_not_taken_for_the_jobs() {
    let emulator = emulator();
    let client = client(&emulator);
    let archive = Archive::new();
    archive.fill(2, 2, 100);
    // person000 holds one face in the job's group, with no name or tag: just what the
    // job's own newperson would have made.
    let theirs = archive.dir.path().join("theirs.png");
    std::fs::write(&theirs, photo(7000)).unwrap();
    client
        .new_person(
            &pid("person000"),
            &[gid("staff")],
            &ImageBody::File(theirs),
            None,
            None,
        )
        .unwrap();
    let found = emulator.snapshot().persons["person000"].clone();
    run_to_the_end(&archive, &emulator);
    assert_eq!(emulator.snapshot().persons["person000"].faces.len(), 3);

    let (code, text) = rollback(&emulator, &archive.state());
    assert_eq!(code, 0, "{text}");
    let after = emulator.snapshot();
    assert_eq!(after.persons.keys().collect::<Vec<_>>(), ["person000"]);
    assert_eq!(after.persons["person000"], found);
}

#[test]
fn a_person_found_then_deleted_by_someone_else_and_made_again_by_the_job_is_deleted() {
    let emulator = emulator();
    let client = client(&emulator);
    let archive = Archive::new();
    archive.fill(2, 2, 100);
    let theirs = archive.dir.path().join("theirs.png");
    std::fs::write(&theirs, photo(7000)).unwrap();
    client
        .new_person(
            &pid("person000"),
            &[gid("before")],
            &ImageBody::File(theirs),
            Some("Theirs"),
            None,
        )
        .unwrap();
    run_to_the_end(&archive, &emulator);
    // Someone deletes the person the job found; verify --repair and the next run
    // make it again, with the job's photos only.
    client.del_person(&pid("person000")).unwrap();
    let state = archive.state();
    let (code, text) = output(&mut after_command(
        "verify",
        &emulator.endpoint(),
        &state,
        &["--repair"],
    ));
    assert_eq!(code, 0, "every repair queued for the next enroll: {text}");
    run_to_the_end(&archive, &emulator);
    assert_eq!(emulator.snapshot().persons["person000"].faces.len(), 2);

    let (code, text) = rollback(&emulator, &state);
    assert_eq!(code, 0, "{text}");
    assert!(
        emulator.snapshot().persons.is_empty(),
        "not left as a bare person: {text}"
    );
}

#[test]
fn a_job_stopped_after_recording_a_creation_but_not_the_persons_state_still_owns_it() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(2, 2, 100);
    run_to_the_end(&archive, &emulator);
    // As after a stop between the two writes of a creation: the creation and the
    // seed's face id are recorded, the person's state still says new, and its other
    // photo was not sent yet.
    {
        let store = Store::open(&archive.state()).unwrap();
        let mut person = store.person("person000").unwrap().unwrap();
        person.state = PersonState::New;
        store.put_person(&person).unwrap();
        let (key, mut photo) = store
            .photos_of("person000")
            .map(Result::unwrap)
            .find(|(_, p)| p.seq == 1)
            .unwrap();
        let PhotoState::Enrolled {
            face: FaceRef::Id(face),
        } = photo.state
        else {
            panic!("{photo:?}");
        };
        client(&emulator)
            .del_faces(&pid("person000"), &[face])
            .unwrap();
        photo.state = PhotoState::Pending;
        store.put_photo(&key, &photo).unwrap();
        store.flush().unwrap();
    }
    // The next run meets "person exists" and reads it.
    run_to_the_end(&archive, &emulator);
    assert_eq!(emulator.counters().answered(-1302), 1);

    let (code, text) = rollback(&emulator, &archive.state());
    assert_eq!(code, 0, "{text}");
    assert!(emulator.snapshot().persons.is_empty(), "{text}");
}

/// A manifest that renames and tags its persons: person000 (which existed before
/// the job), person001 and person002 (which the job creates), in group `staff`.
fn manifest(archive: &Archive) -> std::path::PathBuf {
    let mut text = String::from("person_id,image,group_ids,person_name,tag\n");
    for (person, seeds) in [
        ("person000", 100..102),
        ("person001", 200..202),
        ("person002", 300..302),
    ] {
        for seed in seeds {
            let path = archive.add(person, &format!("{seed}.png"), &photo(seed));
            text.push_str(&format!(
                "{person},{},staff,Job {person},job-tag\n",
                path.display()
            ));
        }
    }
    let path = archive.dir.path().join("manifest.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_name_changed_by_someone_else_after_the_job_is_left_and_named() {
    let emulator = emulator();
    let client = client(&emulator);
    let archive = Archive::new();
    let seed = archive.dir.path().join("before.png");
    std::fs::write(&seed, photo(9000)).unwrap();
    client
        .new_person(
            &pid("person000"),
            &[gid("before")],
            &ImageBody::File(seed),
            Some("Old Name"),
            Some("old-tag"),
        )
        .unwrap();
    let found = emulator.snapshot().persons["person000"].clone();
    let source = manifest(&archive);
    let (code, text) = output(&mut enroll_command(
        &source,
        &emulator.endpoint(),
        &archive.state(),
    ));
    assert_eq!(code, 0, "{text}");
    // After the job, someone renames person000 and person001.
    for person in ["person000", "person001"] {
        client.set_info(&pid(person), Some("Manual"), None).unwrap();
    }
    let renamed = emulator.snapshot().persons["person001"].clone();

    let (code, text) = rollback(&emulator, &archive.state());
    assert_eq!(code, 1, "{text}");
    for person in ["person000", "person001"] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("# {person}:"))
                && l.contains("name was changed to \"Manual\"")),
            "{person} named: {text}"
        );
    }
    let after = emulator.snapshot();
    // The person found keeps the new name; the rest of what the job did is undone.
    let person000 = &after.persons["person000"];
    assert_eq!(person000.name, "Manual");
    assert_eq!(person000.tag, found.tag);
    assert_eq!(person000.groups, found.groups);
    assert_eq!(person000.faces, found.faces);
    // The person the job created and someone renamed stays whole; the other is gone.
    assert_eq!(after.persons["person001"], renamed);
    assert!(!after.persons.contains_key("person002"));

    // Asked again, the rollback says what it left, and calls nothing.
    let calls = emulator.counters().requests;
    let (code, text) = rollback(&emulator, &archive.state());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("# person001: left as it is"), "{text}");
    assert_eq!(emulator.counters().requests, calls);
}

#[test]
fn persons_created_on_lost_answers_are_deleted() {
    let emulator = emulator_with(|c| c.faults.lose_answer = 0.3);
    let archive = Archive::new();
    archive.fill(20, 2, 100);
    run_to_the_end(&archive, &emulator);
    assert_eq!(
        held_faces(&emulator.snapshot()),
        archive_faces(&archive, &[])
    );
    assert!(
        emulator.counters().answered(-1302) > 0,
        "some newperson answered \"exists\" after its own lost answer"
    );
    emulator.set_faults(Faults::default());

    let (code, text) = rollback(&emulator, &archive.state());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("20 persons deleted"), "{text}");
    assert!(emulator.snapshot().persons.is_empty());
}

/// Holds the `skip + 1`-th `newperson` once the service has done it, until released.
#[derive(Default)]
struct Hold {
    state: Mutex<(u32, bool, bool)>,
    changed: Condvar,
}

impl Hold {
    fn hook(self: &Arc<Self>, skip: u32) -> CallHook {
        let hold = Arc::clone(self);
        CallHook::new(move |call, moment| {
            if call != Call::NewPerson || !matches!(moment, Moment::Done { .. }) {
                return;
            }
            let mut state = hold.state.lock().unwrap();
            state.0 += 1;
            if state.0 != skip + 1 {
                return;
            }
            state.1 = true;
            hold.changed.notify_all();
            while !state.2 {
                state = hold.changed.wait(state).unwrap();
            }
        })
    }

    fn holding(&self) -> bool {
        self.state.lock().unwrap().1
    }

    fn release(&self) {
        self.state.lock().unwrap().2 = true;
        self.changed.notify_all();
    }
}

#[test]
fn a_job_ended_by_a_second_ctrl_c_while_a_person_was_being_created_is_rolled_back_whole() {
    let hold = Arc::new(Hold::default());
    let emulator = emulator_with(|c| c.probes.hook = Some(hold.hook(2)));
    let archive = Archive::new();
    archive.fill(5, 2, 100);
    let mut job = enroll_command(&archive.root(), &emulator.endpoint(), &archive.state())
        .args(["--group", "staff", "--workers", "1"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the third newperson is done", || hold.holding());
    // The first Ctrl-C waits for the call in flight; the second ends the job at once.
    interrupt(&job);
    std::thread::sleep(Duration::from_millis(200));
    interrupt(&job);
    let status = job.wait().unwrap();
    hold.release();
    assert_eq!(status.code(), Some(130));
    assert_eq!(emulator.snapshot().persons.len(), 3);

    let (code, text) = rollback(&emulator, &archive.state());
    assert_eq!(code, 0, "{text}");
    let after = emulator.snapshot();
    assert!(after.persons.is_empty(), "{text}{:?}", after.persons);
}

/// Runs `enroll` of `archive` into a state directory on a file system of `size`
/// (a tmpfs in a mount namespace of its own: `unshare`, util-linux), then copies the
/// state directory out to `out`. Answers the job's exit code.
fn enroll_on_a_small_disk(archive: &Archive, endpoint: &str, size: u32, out: &Path) -> i32 {
    use faceenroll::emulator::{REHEARSAL_SECRET_ID, REHEARSAL_SECRET_KEY};
    let mount = archive.dir.path().join(format!("disk-{size}"));
    std::fs::create_dir(&mount).unwrap();
    let script = format!(
        "mount -t tmpfs -o size={size}k tmpfs '{m}' || exit 99; \
         \"$BIN\" enroll '{root}' --group staff --endpoint '{endpoint}' --appid '{appid}' \
         --state '{m}/state' --no-progress --qps 0 >'{m}.log' 2>&1; rc=$?; \
         cp -a '{m}/state' '{out}'; exit $rc",
        m = mount.display(),
        root = archive.root().display(),
        appid = REHEARSAL_APPID,
        out = out.display(),
    );
    let status = support::bin::command("unshare")
        .args(["-rm", "sh", "-c", &script])
        .env("BIN", support::BIN)
        .env("TENCENTCLOUD_SECRET_ID", REHEARSAL_SECRET_ID)
        .env("TENCENTCLOUD_SECRET_KEY", REHEARSAL_SECRET_KEY)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    let code = status.code().unwrap_or(-1);
    assert_ne!(code, 99, "cannot mount a tmpfs in a user namespace");
    code
}

#[test]
fn a_job_stopped_by_a_full_disk_is_rolled_back_whole() {
    assert!(
        Command::new("unshare").arg("--version").output().is_ok(),
        "this test needs `unshare` (util-linux)"
    );
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(40, 6, 100);
    // The smallest disk the plan fits on fills up while the job runs: the first
    // size past the plan's that lets calls through.
    let mut stopped = None;
    for size in (100..2000).step_by(20) {
        let out = archive.dir.path().join(format!("state-{size}"));
        let code = enroll_on_a_small_disk(&archive, &emulator.endpoint(), size, &out);
        if emulator.counters().requests > 0 {
            assert_eq!(code, 3, "the job stopped on the full disk ({size} KB)");
            // Said once, in words: no line per tree, no Rust debug text.
            let log = archive.dir.path().join(format!("disk-{size}.log"));
            let log = std::fs::read_to_string(log).unwrap();
            assert!(
                !log.contains("Os {") && !log.contains("failed to flush"),
                "{log}"
            );
            assert!(log.matches("stopping the job").count() <= 1, "{log}");
            stopped = Some(out);
            break;
        }
        // The plan did not fit, or the disk filled before the first call: a stop (3).
        let log = archive.dir.path().join(format!("disk-{size}.log"));
        let log = std::fs::read_to_string(log).unwrap_or_default();
        assert_eq!(code, 3, "with no call ({size} KB): {log}");
    }
    let state = stopped.expect("a disk size that stops the job while it runs");
    let made = emulator.snapshot().persons.len();
    assert!(made > 0);

    let (code, text) = rollback(&emulator, &state);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("{made} persons deleted")), "{text}");
    assert!(emulator.snapshot().persons.is_empty(), "{text}");
}

/// Runs `enroll` of `archive` twice into one state directory on a tmpfs of 4 MB (in
/// a mount namespace of its own, as [`enroll_on_a_small_disk`]): first with the
/// photos of `early` alone, which it enrolls and reports; then, the disk filled to
/// `free` KB and `archive`'s photos added to the source, again. Copies the state
/// directory out after each run to `out`-1 and `out`-2, and the second run's output to
/// `out`.log. Answers the second run's exit code.
fn second_run_on_a_filled_disk(
    early: &Archive,
    archive: &Archive,
    endpoint: &str,
    free: u32,
    out: &Path,
) -> i32 {
    use faceenroll::emulator::{REHEARSAL_SECRET_ID, REHEARSAL_SECRET_KEY};
    let mount = archive.dir.path().join(format!("disk-{free}"));
    let root = archive.dir.path().join(format!("source-{free}"));
    std::fs::create_dir(&mount).unwrap();
    std::fs::create_dir(&root).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=4096k tmpfs '{m}' || exit 99; \
         cp -a '{early}/.' '{root}/'; \
         enroll() {{ \"$BIN\" enroll '{root}' --group staff --endpoint '{endpoint}' \
           --appid '{appid}' --state '{m}/state' --no-progress --qps 0; }}; \
         enroll >'{out}-1.log' 2>&1 || exit 98; cp -a '{m}/state' '{out}-1'; \
         cp -a '{big}/.' '{root}/'; \
         avail=$(df -k --output=avail '{m}' | tail -1); \
         dd if=/dev/zero of='{m}/filler' bs=1k count=$((avail - {free})) 2>/dev/null; \
         enroll >'{out}.log' 2>&1; rc=$?; cp -a '{m}/state' '{out}-2'; exit $rc",
        m = mount.display(),
        root = root.display(),
        early = early.root().display(),
        big = archive.root().display(),
        appid = REHEARSAL_APPID,
        out = out.display(),
    );
    let status = support::bin::command("unshare")
        .args(["-rm", "sh", "-c", &script])
        .env("BIN", support::BIN)
        .env("TENCENTCLOUD_SECRET_ID", REHEARSAL_SECRET_ID)
        .env("TENCENTCLOUD_SECRET_KEY", REHEARSAL_SECRET_KEY)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    let code = status.code().unwrap_or(-1);
    assert_ne!(code, 99, "cannot mount a tmpfs in a user namespace");
    assert_ne!(
        code,
        98,
        "the first run failed: see {}-1.log",
        out.display()
    );
    code
}

#[test]
fn a_disk_filling_mid_run_ends_with_a_summary_and_keeps_the_previous_report() {
    assert!(
        Command::new("unshare").arg("--version").output().is_ok(),
        "this test needs `unshare` (util-linux)"
    );
    let early = Archive::new();
    for p in 0..2 {
        for i in 0..2 {
            early.add(
                &format!("early{p}"),
                &format!("{i}.png"),
                &photo(9000 + p * 10 + i),
            );
        }
    }
    let archive = Archive::new();
    archive.fill(120, 4, 100);
    // The free space that lets the second run make calls before the disk fills.
    for free in (0..3000).step_by(8) {
        let emulator = emulator();
        let out = archive.dir.path().join(format!("state-{free}"));
        let code = second_run_on_a_filled_disk(&early, &archive, &emulator.endpoint(), free, &out);
        let log = std::fs::read_to_string(out.with_extension("log")).unwrap_or_default();
        if !log.contains("this run:") || log.contains(", 0 pending") {
            // The disk filled before the second run's first call (planning), or after
            // its last (the report): a stop (3) all the same.
            assert_eq!(code, 3, "with {free} KB free: {log}");
            continue;
        }
        assert_eq!(
            code, 3,
            "the job stopped on the full disk ({free} KB free): {log}"
        );
        // The summary, from what the run held in memory, ending on the stop.
        let ending = log
            .lines()
            .find(|l| l.starts_with("faceenroll: stopped: "))
            .unwrap_or_else(|| panic!("no summary: {log}"));
        assert!(
            ending.starts_with("faceenroll: stopped: the disk holding the state directory is full"),
            "{log}"
        );
        assert_eq!(ending.matches("is full").count(), 1, "said once: {ending}");
        assert!(log.contains("  photos:  484 in the plan:"), "{log}");
        assert!(
            log.contains("not written") && log.contains("the previous report is kept"),
            "{log}"
        );
        assert!(
            !log.contains("Os {") && !log.contains("failed to flush"),
            "{log}"
        );
        // The first run's report, whole, and no temporary file beside it.
        let one = StateDir::new(format!("{}-1", out.display())).report();
        let two = StateDir::new(format!("{}-2", out.display())).report();
        let (one, two) = (std::fs::read(one).unwrap(), std::fs::read(two).unwrap());
        assert_eq!(one, two, "the previous report stays whole");
        assert_eq!(
            String::from_utf8(two).unwrap().lines().count(),
            5,
            "a header and 4 rows"
        );
        let dir = std::fs::read_dir(format!("{}-2", out.display())).unwrap();
        for entry in dir {
            let name = entry.unwrap().file_name();
            assert!(
                !name.to_string_lossy().ends_with(".tmp"),
                "{name:?} left behind"
            );
        }
        return;
    }
    panic!("no free space made the second run stop after its first call");
}

#[test]
fn a_rolled_back_state_is_closed_and_a_new_state_enrolls_everything() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(3, 2, 100);
    run_to_the_end(&archive, &emulator);
    let endpoint = emulator.endpoint();
    let state = archive.state();
    let (code, text) = rollback(&emulator, &state);
    assert_eq!(code, 0, "{text}");
    assert!(emulator.snapshot().persons.is_empty());

    let before = emulator.counters().requests;
    let (code, text) =
        output(enroll_command(&archive.root(), &endpoint, &state).args(["--group", "staff"]));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("this job was rolled back"), "{text}");
    let (code, text) = output(&mut after_command("verify", &endpoint, &state, &[]));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("this job was rolled back"), "{text}");
    let (code, text) = output(&mut faceenroll(&[
        "status".as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
    ]));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("rolled back: at "), "{text}");
    let (code, text) = rollback(&emulator, &state);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("this job was rolled back at"), "{text}");
    assert_eq!(
        emulator.counters().requests,
        before,
        "no call on a closed state"
    );

    let fresh = archive.dir.path().join("fresh-state");
    let (code, text) =
        output(enroll_command(&archive.root(), &endpoint, &fresh).args(["--group", "staff"]));
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        held_faces(&emulator.snapshot()),
        archive_faces(&archive, &[])
    );
}

#[test]
fn a_job_that_put_nothing_on_the_service_is_not_closed_by_a_rollback() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(3, 2, 100);
    // Every newperson refused with an answer: the job made nothing.
    emulator.inject_next_for(Call::NewPerson, -1310, 1000);
    let (code, text) = output(
        enroll_command(&archive.root(), &emulator.endpoint(), &archive.state())
            .args(["--group", "staff"]),
    );
    assert_eq!(code, 1, "{text}");
    assert!(emulator.snapshot().persons.is_empty());
    emulator.inject_next_for(Call::NewPerson, 0, 0);

    let (code, text) = rollback(&emulator, &archive.state());
    assert_eq!(code, 0, "{text}");
    let status = output(&mut faceenroll(&[
        "status".as_ref(),
        "--state".as_ref(),
        archive.state().as_os_str(),
    ]));
    assert!(!status.1.contains("rolled back"), "{}", status.1);
}

#[test]
fn a_rollback_interrupted_by_ctrl_c_says_what_it_did_and_finishes_when_run_again() {
    let emulator = emulator();
    let archive = Archive::new();
    archive.fill(40, 1, 100);
    run_to_the_end(&archive, &emulator);
    let endpoint = emulator.endpoint();
    let state = archive.state();
    let child = after_command("rollback", &endpoint, &state, &["--yes", "--qps", "20"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("five persons deleted", || {
        emulator.counters().received("delperson") >= 5
    });
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{text}");
    let left = emulator.snapshot().persons.len();
    assert!(left > 0 && left < 40, "{left} persons left");
    assert!(
        text.contains(&format!("{} persons deleted", 40 - left)),
        "{text}"
    );
    // Until the rollback is finished, the state is not enrolled into again.
    let (code, text) =
        output(enroll_command(&archive.root(), &endpoint, &state).args(["--group", "staff"]));
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("did not finish"), "{text}");

    let (code, text) = rollback(&emulator, &state);
    assert_eq!(code, 0, "{text}");
    assert!(emulator.snapshot().persons.is_empty());
}
