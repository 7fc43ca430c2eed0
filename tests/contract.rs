//! The job against every reading of the points the contract leaves open (API.md):
//! -1309 for the whole call or image by image, the request body limit learned from
//! 23 or HTTP 413, persons and faces the job did not make. Each test checks what the
//! emulator holds, under both readings of -1309.

mod support;

use faceenroll::emulator::{
    CallHook, Contract, DuplicateWhenFull, Emulator, Faults, FullReading, Moment, Prepared,
    Spelling, TooLarge,
};
use faceenroll::engine::groups::GroupLimits;
use faceenroll::engine::RunOutcome;
use faceenroll::model::{GroupId, PersonId};
use faceenroll::plan::PlanOptions;
use faceenroll::service::api::Call;
use faceenroll::service::client::{Client, ImageBody};
use faceenroll::service::codes::{Class, Outcome};
use faceenroll::store::{FaceRef, PhotoState, Store};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc, Mutex};
use support::*;

/// Both readings of -1309 on addface.
const READINGS: [FullReading; 2] = [FullReading::PerImage, FullReading::WholeCall];

fn reading(full: FullReading) -> Contract {
    Contract {
        full,
        ..Contract::default()
    }
}

/// Creates `person` in group `staff` with `faces` faces through plain client calls,
/// as another tool or the application would have (generated pictures no job sends).
fn create_beforehand(client: &Client, person: &str, faces: u32) {
    let id = PersonId::new(person).unwrap();
    let groups = [GroupId::new("staff").unwrap()];
    client
        .new_person(&id, &groups, &bytes(photo(500_000)), None, None)
        .unwrap();
    let rest: Vec<ImageBody> = (1..faces).map(|i| bytes(photo(500_000 + i))).collect();
    if !rest.is_empty() {
        let added = client.add_faces(&id, &rest, None).unwrap();
        assert_eq!(added.added as u32, faces - 1);
    }
}

/// Each photo's state in the job's store, by file name.
fn states(archive: &Archive) -> BTreeMap<String, PhotoState> {
    let store = Store::open(&archive.state()).unwrap();
    store
        .photos()
        .map(|item| {
            let (_, entry) = item.unwrap();
            let name = match &entry.image {
                faceenroll::model::ImageRef::File(p) => {
                    p.file_name().unwrap().to_string_lossy().into_owned()
                }
                faceenroll::model::ImageRef::Url(u) => u.clone(),
            };
            (name, entry.state)
        })
        .collect()
}

/// Whether the service holds the archive photo `name` of `person`.
fn held(emulator: &Emulator, archive: &Archive, person: &str, name: &str) -> bool {
    let hash = hash_of(&archive.root().join(person).join(name));
    emulator.snapshot().persons[person]
        .faces
        .iter()
        .any(|f| f.content_hash == hash)
}

/// An archive with five photos for `pre`, `0.png` to `4.png`.
fn five_for_pre() -> Archive {
    let archive = Archive::new();
    for i in 0..5 {
        archive.add("pre", &format!("{i}.png"), &photo(100 + i));
    }
    archive
}

/// An emulator under `full` where `pre` already holds `faces` faces the job did not
/// add, a client of it, and an archive with five new photos for `pre`.
fn pre_holding(full: FullReading, faces: u32) -> (Archive, Emulator, Client) {
    let archive = five_for_pre();
    let emulator = emulator_under(reading(full));
    let client = client(&emulator);
    create_beforehand(&client, "pre", faces);
    (archive, emulator, client)
}

#[test]
fn a_person_with_faces_the_job_did_not_add_takes_only_what_fits() {
    for full in READINGS {
        let (archive, emulator, client) = pre_holding(full, 18);

        let (outcome, tally) = run(&archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished), "{full:?}");
        assert_eq!(
            emulator.snapshot().persons["pre"].faces.len(),
            20,
            "{full:?}"
        );
        assert!(held(&emulator, &archive, "pre", "0.png"), "{full:?}");
        assert!(held(&emulator, &archive, "pre", "1.png"), "{full:?}");
        assert_eq!(tally.snapshot().enrolled, 2, "{full:?}");
        // It read the count first, so it never sent more than fits.
        assert_eq!(emulator.counters().answered(-1309), 0, "{full:?}");
        let states = states(&archive);
        for name in ["2.png", "3.png", "4.png"] {
            match &states[name] {
                PhotoState::Full { reason } => assert!(
                    reason.contains("held 18 faces") && reason.contains("added 2"),
                    "{full:?}: {reason}"
                ),
                other => panic!("{full:?}: {name} is {other:?}"),
            }
        }

        let before = emulator.counters().requests;
        let (_, tally) = run(&archive, &client, &options());
        assert_eq!(tally.snapshot().calls, 0, "{full:?}");
        assert_eq!(emulator.counters().requests, before, "{full:?}");
    }
}

#[test]
fn faces_deleted_on_the_service_give_room_back_only_when_asked() {
    for full in READINGS {
        let (archive, emulator, client) = pre_holding(full, 18);
        run(&archive, &client, &options());
        // An operator deletes three faces the job did not add.
        let id = PersonId::new("pre").unwrap();
        let theirs: Vec<String> = emulator.snapshot().persons["pre"].faces[..3]
            .iter()
            .map(|f| f.face_id.clone())
            .collect();
        client.del_faces(&id, &theirs).unwrap();

        let before = emulator.counters().requests;
        let (_, tally) = run(&archive, &client, &options());
        assert_eq!(tally.snapshot().calls, 0, "{full:?}: skipped-full is final");
        assert_eq!(emulator.counters().requests, before);
        assert_eq!(emulator.snapshot().persons["pre"].faces.len(), 17);

        let recheck = PlanOptions {
            recheck_full: true,
            ..PlanOptions::default()
        };
        let (_, tally) = run_with(&archive, &client, &options(), &recheck);
        assert_eq!(tally.snapshot().enrolled, 3, "{full:?}");
        assert_eq!(emulator.snapshot().persons["pre"].faces.len(), 20);
        for i in 0..5 {
            assert!(
                held(&emulator, &archive, "pre", &format!("{i}.png")),
                "{full:?}: {i}"
            );
        }
    }
}

#[test]
fn a_person_that_fills_up_while_the_job_runs_gets_what_still_fits() {
    for full in READINGS {
        let (archive, emulator, client) = pre_holding(full, 16);
        // The job reads 16 faces; the service refuses its first addface as full
        // (another writer got there first, as far as the job can tell).
        emulator.inject_next_for(Call::AddFace, -1309, 1);
        let (outcome, _) = run(&archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished));
        // Read when the job met the person (getinfo), read again after the -1309.
        assert_eq!(emulator.counters().received("getinfo"), 1, "{full:?}");
        assert_eq!(emulator.counters().received("getfaceids"), 1, "{full:?}");
        assert_eq!(
            emulator.snapshot().persons["pre"].faces.len(),
            20,
            "{full:?}"
        );
        for i in 0..4 {
            assert!(
                held(&emulator, &archive, "pre", &format!("{i}.png")),
                "{full:?}: {i}"
            );
        }
        assert!(matches!(states(&archive)["4.png"], PhotoState::Full { .. }));
    }
}

/// Both readings of a duplicate sent to a full person (-1312 or -1309), under both
/// readings of -1309 on addface.
fn full_person_readings() -> Vec<Contract> {
    let mut out = Vec::new();
    for full in READINGS {
        for duplicate_when_full in [DuplicateWhenFull::Duplicate, DuplicateWhenFull::Full] {
            out.push(Contract {
                full,
                duplicate_when_full,
                ..Contract::default()
            });
        }
    }
    out
}

/// How many faces of `person` on the service are the archive photo `name`.
fn times_held(emulator: &Emulator, archive: &Archive, person: &str, name: &str) -> usize {
    let hash = hash_of(&archive.root().join(person).join(name));
    emulator.snapshot().persons[person]
        .faces
        .iter()
        .filter(|f| f.content_hash == hash)
        .count()
}

/// Sets the photos `names` back to in doubt, as a job killed between the service's
/// answer and its record leaves them.
fn leave_in_doubt(archive: &Archive, names: &[&str]) {
    let store = Store::open(&archive.state()).unwrap();
    let photos: Vec<_> = store.photos().map(|p| p.unwrap()).collect();
    for (key, mut entry) in photos {
        let name = entry.image.to_string();
        if names.iter().any(|n| name.ends_with(&format!("/{n}"))) {
            entry.state = PhotoState::InDoubt;
            store.put_photo(&key, &entry).unwrap();
        }
    }
    store.flush().unwrap();
}

/// Each of `names` is held once by `pre` on the service and recorded enrolled.
fn held_once_and_enrolled(
    emulator: &Emulator,
    archive: &Archive,
    states: &BTreeMap<String, PhotoState>,
    names: &[&str],
) {
    for name in names {
        assert_eq!(times_held(emulator, archive, "pre", name), 1, "{name}");
        assert!(
            matches!(states[*name], PhotoState::Enrolled { .. }),
            "{name} is {:?}",
            states[*name]
        );
    }
}

/// A run of the same job makes no call at all.
fn rerun_makes_no_call(archive: &Archive, emulator: &Emulator, client: &Client) {
    let before = emulator.counters().requests;
    let (_, tally) = run(archive, client, &options());
    assert_eq!(tally.snapshot().calls, 0);
    assert_eq!(emulator.counters().requests, before);
}

#[test]
fn photos_in_doubt_on_a_person_that_became_full_are_enrolled_not_full() {
    // The person holds 18 faces; the job's addface of 0.png and 1.png fills it, but
    // its answer is lost, so the retry meets a full person that already holds both.
    for contract in full_person_readings() {
        let archive = five_for_pre();
        // The hook asks the test's thread to lose the answer of the armed addface
        // when it arrives, and to serve as usual again once its work is done.
        let armed = Arc::new(AtomicBool::new(false));
        let hook_armed = armed.clone();
        let (ask, asked) = mpsc::channel::<bool>();
        let (done, wait_done) = mpsc::channel::<()>();
        let (ask, wait_done) = (Mutex::new(ask), Mutex::new(wait_done));
        let emulator = emulator_with(|c| {
            c.contract = contract.clone();
            c.probes.hook = Some(CallHook::new(move |call, moment| {
                if call != Call::AddFace || !hook_armed.load(Relaxed) {
                    return;
                }
                let lose = match moment {
                    Moment::Received => true,
                    Moment::Done { .. } => {
                        hook_armed.store(false, Relaxed);
                        false
                    }
                    Moment::Answered => return,
                };
                ask.lock().unwrap().send(lose).unwrap();
                wait_done.lock().unwrap().recv().unwrap();
            }));
        });
        let client = client(&emulator);
        create_beforehand(&client, "pre", 18);
        armed.store(true, Relaxed);

        let outcome = std::thread::scope(|scope| {
            let emulator = &emulator;
            scope.spawn(move || {
                for lose in asked.iter().take(2) {
                    let lose_answer = if lose { 1.0 } else { 0.0 };
                    emulator.set_faults(Faults {
                        lose_answer,
                        ..Faults::default()
                    });
                    done.send(()).unwrap();
                }
            });
            run(&archive, &client, &options()).0
        });
        assert!(matches!(outcome, RunOutcome::Finished), "{contract:?}");
        assert_eq!(emulator.counters().faults.lose_answer, 1, "{contract:?}");
        assert_eq!(emulator.snapshot().persons["pre"].faces.len(), 20);
        let states = states(&archive);
        held_once_and_enrolled(&emulator, &archive, &states, &["0.png", "1.png"]);
        for name in ["2.png", "3.png", "4.png"] {
            assert_eq!(times_held(&emulator, &archive, "pre", name), 0, "{name}");
            assert!(matches!(states[name], PhotoState::Full { .. }), "{name}");
        }
        rerun_makes_no_call(&archive, &emulator, &client);
    }
}

#[test]
fn photos_left_in_doubt_by_a_killed_run_are_settled_on_a_full_person() {
    for contract in full_person_readings() {
        let archive = five_for_pre();
        let emulator = emulator_under(contract.clone());
        let client = client(&emulator);
        create_beforehand(&client, "pre", 18);
        run(&archive, &client, &options());
        // Killed after the service added 0.png and 1.png, before the job recorded
        // it; 2.png was being sent to a person that was already full.
        leave_in_doubt(&archive, &["0.png", "1.png", "2.png"]);

        let (outcome, _) = run(&archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished), "{contract:?}");
        assert_eq!(emulator.snapshot().persons["pre"].faces.len(), 20);
        let states = states(&archive);
        held_once_and_enrolled(&emulator, &archive, &states, &["0.png", "1.png"]);
        assert_eq!(times_held(&emulator, &archive, "pre", "2.png"), 0);
        match &states["2.png"] {
            PhotoState::Full { reason } => assert!(reason.contains("held 20 faces"), "{reason}"),
            other => panic!("{contract:?}: 2.png is {other:?}"),
        }
        rerun_makes_no_call(&archive, &emulator, &client);
    }
}

fn emulator_under(contract: Contract) -> Emulator {
    emulator_with(|c| c.contract = contract)
}

fn bytes(b: Vec<u8>) -> ImageBody {
    ImageBody::Bytes {
        filename: "p.png".into(),
        bytes: Arc::from(b),
    }
}

#[test]
fn a_body_over_the_limit_is_refused_as_too_large_either_way() {
    for how in [TooLarge::Code23, TooLarge::Http413] {
        let emulator = emulator_under(Contract {
            max_request_bytes: 4000,
            too_large: how,
            ..Contract::default()
        });
        let client = client(&emulator);
        let id = PersonId::new("p").unwrap();
        let groups = [GroupId::new("g").unwrap()];
        client
            .new_person(&id, &groups, &bytes(photo(1)), None, None)
            .unwrap();
        let big: Vec<ImageBody> = (2..10).map(|s| bytes(photo(s))).collect();
        let err = client.add_faces(&id, &big, None).unwrap_err();
        assert_eq!(
            err.class(),
            Class::Outcome(Outcome::TooLarge),
            "{how:?}: {err}"
        );
        assert_eq!(emulator.snapshot().persons["p"].faces.len(), 1, "{how:?}");
        assert_eq!(
            emulator.counters().http_413,
            u64::from(how == TooLarge::Http413)
        );
    }
}

#[test]
fn a_prepared_account_holds_its_persons_before_any_job() {
    let emulator = emulator_under(Contract {
        prepared: vec![Prepared {
            person: "pre".into(),
            group: "staff".into(),
            faces: 18,
        }],
        ..Contract::default()
    });
    let snapshot = emulator.snapshot();
    assert_eq!(snapshot.persons["pre"].faces.len(), 18);
    assert_eq!(snapshot.groups["staff"], ["pre"]);
    assert_eq!(emulator.counters().requests, 0);
}

/// A loopback image host that can be down (every request answered 503) or up.
struct ImageHost {
    addr: std::net::SocketAddr,
    up: Arc<std::sync::atomic::AtomicBool>,
}

impl ImageHost {
    fn start(files: Vec<(&str, Vec<u8>)>, up: bool) -> ImageHost {
        use std::io::{BufRead as _, Write as _};
        let files: Arc<BTreeMap<String, Vec<u8>>> = Arc::new(
            files
                .into_iter()
                .map(|(n, b)| (format!("/{n}"), b))
                .collect(),
        );
        let flag = Arc::new(std::sync::atomic::AtomicBool::new(up));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = Arc::clone(&flag);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = std::io::BufReader::new(stream);
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let path = first.split_whitespace().nth(1).unwrap_or("");
                let (status, body) = match files.get(path) {
                    Some(b) if serving.load(Relaxed) => ("200 OK", b.clone()),
                    Some(_) => ("503 Service Unavailable", b"down".to_vec()),
                    None => ("404 Not Found", b"no such file".to_vec()),
                };
                let mut out = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                out.extend_from_slice(&body);
                let _ = reader.get_mut().write_all(&out);
            }
        });
        ImageHost { addr, up: flag }
    }

    fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.addr)
    }
}

/// A manifest of `(person, image)` rows, every person in group `staff`.
fn manifest(archive: &Archive, rows: &[(&str, String)]) -> faceenroll::source::SourceSpec {
    let path = archive.dir.path().join("manifest.csv");
    let mut text = String::from("person_id,image,group_ids\n");
    for (person, image) in rows {
        text.push_str(&format!("{person},{image},staff\n"));
    }
    std::fs::write(&path, text).unwrap();
    faceenroll::source::SourceSpec::from_path(
        &path,
        Vec::new(),
        faceenroll::source::Layout::Person,
        false,
    )
}

#[test]
fn a_first_photo_the_service_cannot_download_hands_the_seed_over() {
    for full in READINGS {
        let archive = Archive::new();
        let host = ImageHost::start(vec![("u0.png", photo(700))], false);
        let a = archive.add("u", "a.png", &photo(701));
        let b = archive.add("u", "b.png", &photo(702));
        let rows = [
            ("u", host.url("u0.png")),
            ("u", a.display().to_string()),
            ("u", b.display().to_string()),
        ];
        let source = manifest(&archive, &rows);
        let emulator = emulator_under(reading(full));
        let client = client(&emulator);
        let (_, outcome, _) = run_source(
            &archive,
            &source,
            &client,
            &options(),
            &PlanOptions::default(),
        );
        assert!(matches!(outcome, RunOutcome::Finished));
        // Created from its second photo; the first is left for the next run.
        let faces = &emulator.snapshot().persons["u"].faces;
        assert_eq!(faces.len(), 2, "{full:?}");
        assert!(held(&emulator, &archive, "u", "a.png"));
        assert!(held(&emulator, &archive, "u", "b.png"));
        let left = faceenroll::report::StoreCounts::read(&Store::open(&archive.state()).unwrap())
            .unwrap()
            .pending;
        assert_eq!(left, 1, "{full:?}");
        let u0 = &states(&archive)[&host.url("u0.png")];
        assert_eq!(u0.status(), "pending", "{u0:?}");
        assert!(
            matches!(u0, PhotoState::Deferred(f) if f.code == Some(-1308)),
            "the last refusal is kept for the report: {u0:?}"
        );

        // The host is back: the next run sends exactly what was left.
        host.up.store(true, Relaxed);
        let (plan, outcome, tally) = run_source(
            &archive,
            &source,
            &client,
            &options(),
            &PlanOptions::default(),
        );
        assert!(matches!(outcome, RunOutcome::Finished));
        assert_eq!((plan.pending + plan.in_doubt) as u64, left, "{full:?}");
        assert_eq!(tally.photos_done(), left, "{full:?}");
        assert_eq!(emulator.snapshot().persons["u"].faces.len(), 3, "{full:?}");
    }
}

#[test]
fn what_a_run_leaves_for_the_next_run_is_what_the_next_run_sends() {
    for full in READINGS {
        let archive = Archive::new();
        archive.fill(3, 4, 0);
        let emulator = emulator_under(reading(full));
        let client = client(&emulator);
        // The service's feature storage refuses every image for a while.
        emulator.set_faults(faceenroll::emulator::Faults {
            transient_image: 1.0,
            ..Default::default()
        });
        let mut short = options();
        short.retry.max_attempts = 2;
        run(&archive, &client, &short);
        let store = Store::open(&archive.state()).unwrap();
        let left = faceenroll::report::StoreCounts::read(&store).unwrap();
        drop(store);
        assert_eq!(
            left.failed, 0,
            "{full:?}: a transient refusal is not a failure"
        );
        assert!(left.pending > 0, "{full:?}");

        emulator.set_faults(faceenroll::emulator::Faults::default());
        let (outcome, tally) = run(&archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished));
        assert_eq!(tally.photos_done(), left.pending, "{full:?}");
        assert_eq!(tally.snapshot().enrolled, left.pending, "{full:?}");
        assert_eq!(
            held_faces(&emulator.snapshot()),
            archive_faces(&archive, &[])
        );

        // Nothing left: the next run makes no call.
        let before = emulator.counters().requests;
        let (_, tally) = run(&archive, &client, &options());
        assert_eq!(tally.snapshot().calls, 0);
        assert_eq!(emulator.counters().requests, before);
    }
}

#[test]
fn a_person_deleted_on_the_service_comes_back_with_all_its_photos() {
    for full in READINGS {
        let archive = Archive::new();
        archive.fill(2, 3, 0);
        let emulator = emulator_under(reading(full));
        let client = client(&emulator);
        run(&archive, &client, &options());
        client
            .del_person(&PersonId::new("person000").unwrap())
            .unwrap();
        archive.add("person000", "new.png", &photo(9000));

        let (outcome, tally) = run(&archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished));
        assert_eq!(tally.snapshot().persons_vanished, 1, "{full:?}");
        let snapshot = emulator.snapshot();
        assert_eq!(
            held_faces(&snapshot),
            archive_faces(&archive, &[]),
            "{full:?}"
        );
        // Every face id in the report is one the service holds, for that photo.
        for row in report_rows(&archive.state()) {
            assert_eq!(row.status, "enrolled", "{row:?}");
            let face = snapshot.persons[&row.person_id]
                .faces
                .iter()
                .find(|f| f.face_id == row.face_id)
                .unwrap_or_else(|| panic!("{full:?}: {} is not on the service", row.face_id));
            assert_eq!(face.content_hash, hash_of(std::path::Path::new(&row.image)));
        }
    }
}

/// `persons` persons of 20 photos of about 100 KB each (noisy PNGs).
fn hundred_kb_photos(archive: &Archive, persons: u32, first: u32) {
    for p in first..first + persons {
        let dir = archive.root().join(format!("big{p:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..20 {
            let path = dir.join(format!("{i:02}.png"));
            write_png(&path, &picture(185, 185, 255, u64::from(p * 100 + i)));
            let size = std::fs::metadata(&path).unwrap().len();
            assert!((90_000..120_000).contains(&size), "{size}");
        }
    }
}

#[test]
fn a_request_limit_of_one_mib_is_learned_and_kept_for_later_jobs() {
    for full in ["per-image", "whole-call"] {
        let archive = Archive::new();
        hundred_kb_photos(&archive, 3, 0);
        let log = archive.dir.path().join("emulator.log");
        let emulator = EmulatorProcess::start(
            &[
                "--qps",
                "0",
                "--body-limit",
                "1048576",
                "--full-reading",
                full,
            ],
            &log,
        );
        let state = archive.state();
        let enroll = || {
            enroll_command(&archive.root(), &emulator.endpoint, &state)
                .args(["--group", "staff"])
                .output()
                .unwrap()
        };
        let out = enroll();
        let summary = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{full}: {summary}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            summary.contains("refused bodies over ~"),
            "{full}: {summary}"
        );
        println!("{full}:\n{summary}");
        let snapshot = emulator.state();
        assert_eq!(
            held_faces(&snapshot),
            archive_faces(&archive, &[]),
            "{full}"
        );
        // The three persons' first chunks go out at once at the documented 1.5 MB and
        // are all refused; a few more refusals narrow the limit down (workers in
        // flight at once may each be refused at the same step).
        let refusals = emulator.counters().answered(23);
        assert!((1..=10).contains(&refusals), "{full}: {refusals} refusals");

        // A re-run has nothing to do.
        let before = emulator.counters().requests;
        assert!(enroll().status.success());
        assert_eq!(emulator.counters().requests, before, "{full}");

        // A second job on the same state, with new persons, does not probe again.
        hundred_kb_photos(&archive, 2, 3);
        let out = enroll();
        assert!(out.status.success(), "{full}");
        assert_eq!(held_faces(&emulator.state()), archive_faces(&archive, &[]));
        assert_eq!(
            emulator.counters().answered(23),
            refusals,
            "{full}: probed again"
        );
    }
}

#[test]
fn persons_that_would_pass_a_group_limit_are_named_before_any_call_and_the_rest_enrolled() {
    for full in READINGS {
        let archive = Archive::new();
        archive.fill(3, 2, 0);
        // The group already holds two persons the job did not add; it takes three.
        let emulator = emulator_under(Contract {
            full,
            max_persons_per_group: 3,
            prepared: ["a", "b"]
                .map(|p| Prepared {
                    person: p.into(),
                    group: "staff".into(),
                    faces: 1,
                })
                .to_vec(),
            ..Contract::default()
        });
        let client = client(&emulator);
        let mut options = options();
        options.group_limits = GroupLimits {
            persons_per_group: 3,
            ..GroupLimits::default()
        };
        let (outcome, tally) = run(&archive, &client, &options);
        assert!(matches!(outcome, RunOutcome::Finished));
        // One person fits; the two others are failed before any newperson is sent.
        assert_eq!(emulator.counters().received("newperson"), 1, "{full:?}");
        assert_eq!(emulator.counters().answered(-1310), 0, "{full:?}");
        let snapshot = emulator.snapshot();
        assert_eq!(
            snapshot.groups["staff"],
            ["a", "b", "person000"],
            "{full:?}"
        );
        assert_eq!(snapshot.persons["person000"].faces.len(), 2);
        assert_eq!(tally.snapshot().persons_failed, 2);
        let store = Store::open(&archive.state()).unwrap();
        for item in store.photos() {
            let (_, entry) = item.unwrap();
            match entry.state {
                PhotoState::Enrolled { .. } if entry.person == "person000" => {}
                PhotoState::Failed(f) if entry.person != "person000" => {
                    assert_eq!(f.code, Some(-1310));
                    assert!(
                        f.message.contains("does not fit group \"staff\""),
                        "{}",
                        f.message
                    );
                    assert!(f.message.contains("holds 3 persons"), "{}", f.message);
                }
                other => panic!("{full:?}: {} is {other:?}", entry.image),
            }
        }
    }
}

#[test]
fn a_photo_over_a_learned_limit_is_failed_without_another_call() {
    let seed = photo(1);
    let big = jpeg_bytes(&picture(300, 300, 255, 2), 95);
    let bigger = jpeg_bytes(&picture(360, 360, 255, 3), 95);
    assert!(bigger.len() > big.len() && big.len() > 4 * seed.len());
    let emulator = emulator_under(Contract {
        max_request_bytes: faceenroll::limits::REQUEST_ENVELOPE_BYTES + big.len() as u64 / 2,
        ..Contract::default()
    });
    let archive = Archive::new();
    archive.add("p", "1.png", &seed);
    archive.add("p", "2.jpg", &big);
    archive.add("p", "3.jpg", &bigger);
    // Sent as they are (`--no-resize`), so the photos keep their sizes.
    let mut options = options();
    options.normalize.enabled = false;
    let (outcome, _) = run(&archive, &client(&emulator), &options);
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    assert_eq!(emulator.snapshot().persons["p"].faces.len(), 1);
    // The two photos together, then 2.jpg alone, are refused: the limit learned is
    // then under 3.jpg, which is failed with it rather than sent.
    assert_eq!(emulator.counters().received("addface"), 2);
    let states = states(&archive);
    let PhotoState::Failed(alone) = &states["2.jpg"] else {
        panic!("{:?}", states["2.jpg"])
    };
    assert!(alone.message.contains("alone as too large"), "{alone:?}");
    let PhotoState::Failed(learned) = &states["3.jpg"] else {
        panic!("{:?}", states["3.jpg"])
    };
    assert!(
        learned.message.contains("over the request limit of")
            && learned
                .message
                .contains("learned from the service's refusals"),
        "{learned:?}"
    );
}

#[test]
fn a_photo_over_the_configured_request_limit_is_re_encoded_to_fit_it() {
    let big = jpeg_bytes(&picture(300, 300, 255, 4), 95);
    let limit = faceenroll::limits::REQUEST_ENVELOPE_BYTES + big.len() as u64 / 2;
    let emulator = emulator_under(Contract {
        max_request_bytes: limit,
        ..Contract::default()
    });
    let archive = Archive::new();
    archive.add("p", "1.jpg", &big);
    // `--max-request-bytes` at the service's limit: nothing to learn by refusals.
    let mut options = options();
    options.budget = faceenroll::limits::RequestBudget::configured(limit);
    let (outcome, _) = run(&archive, &client(&emulator), &options);
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    assert_eq!(emulator.snapshot().persons["p"].faces.len(), 1);
    assert_eq!(emulator.counters().received("newperson"), 1);
    assert!(
        matches!(states(&archive)["1.jpg"], PhotoState::Enrolled { .. }),
        "{:?}",
        states(&archive)
    );
}

/// A service that writes its answers sparsely (fields left out or `null`, numbers
/// as strings, face ids as numbers), under both readings of -1309: the job reads
/// the person it did not create, fills it, creates a new one, records the face ids
/// the service holds, and a second run makes no call.
#[test]
fn answers_spelled_sparsely_are_read_as_meant() {
    for full in READINGS {
        let archive = five_for_pre();
        for i in 0..3 {
            archive.add("new1", &format!("n{i}.png"), &photo(200 + i));
        }
        let emulator = emulator_under(Contract {
            full,
            spelling: Spelling::Sparse,
            ..Contract::default()
        });
        let client = client(&emulator);
        create_beforehand(&client, "pre", 18);

        let (outcome, tally) = run(&archive, &client, &options());
        assert!(matches!(outcome, RunOutcome::Finished), "{full:?}");
        assert_eq!(tally.snapshot().enrolled, 5, "{full:?}");
        let persons = emulator.snapshot().persons;
        assert_eq!(persons["pre"].faces.len(), 20, "{full:?}");
        assert_eq!(persons["new1"].faces.len(), 3, "{full:?}");
        let states = states(&archive);
        for (person, name) in [
            ("pre", "0.png"),
            ("pre", "1.png"),
            ("new1", "n0.png"),
            ("new1", "n2.png"),
        ] {
            let hash = hash_of(&archive.root().join(person).join(name));
            let face = persons[person]
                .faces
                .iter()
                .find(|f| f.content_hash == hash)
                .unwrap_or_else(|| panic!("{full:?}: {person}/{name} not held"));
            assert_eq!(
                states[name],
                PhotoState::Enrolled {
                    face: FaceRef::Id(face.face_id.clone())
                },
                "{full:?}: {person}/{name}"
            );
        }
        for name in ["2.png", "3.png", "4.png"] {
            assert!(
                matches!(&states[name], PhotoState::Full { .. }),
                "{full:?}: {name} is {:?}",
                states[name]
            );
        }
        rerun_makes_no_call(&archive, &emulator, &client);
    }
}

#[test]
fn a_nightly_run_reads_its_groups_members_while_it_reads_the_groups() {
    // The emulator holds getgroupids until a getpersonids arrives (for 20 s at most):
    // a job that waits for the groups before it reads their members sends none
    // meanwhile, and the hook gives up.
    let armed = Arc::new(AtomicBool::new(false));
    let overlapped = Arc::new(AtomicBool::new(false));
    let (hook_armed, hook_overlapped) = (armed.clone(), overlapped.clone());
    let (seen, wait_seen) = mpsc::channel::<()>();
    let (seen, wait_seen) = (Mutex::new(seen), Mutex::new(wait_seen));
    let emulator = emulator_with(|c| {
        c.probes.hook = Some(CallHook::new(move |call, moment| {
            if !hook_armed.load(Relaxed) || moment != Moment::Received {
                return;
            }
            match call {
                Call::GetPersonIds => {
                    let _ = seen.lock().unwrap().send(());
                }
                Call::GetGroupIds => {
                    let waited = wait_seen
                        .lock()
                        .unwrap()
                        .recv_timeout(std::time::Duration::from_secs(20));
                    hook_overlapped.store(waited.is_ok(), Relaxed);
                }
                _ => {}
            }
        }));
    });
    let client = client(&emulator);
    let archive = Archive::new();
    archive.fill(2, 1, 0);
    let (outcome, _) = run(&archive, &client, &options());
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");

    // The next night: two new persons for the group the job used before.
    archive.fill(4, 1, 0);
    armed.store(true, Relaxed);
    let reads = emulator.counters().received("getpersonids");
    let (outcome, _) = run(&archive, &client, &options());
    assert!(matches!(outcome, RunOutcome::Finished), "{outcome:?}");
    assert!(
        overlapped.load(Relaxed),
        "the members of staff were not read until getgroupids was answered"
    );
    // Read once, ahead, and the persons checked against it.
    assert_eq!(emulator.counters().received("getpersonids"), reads + 1);
    assert_eq!(
        emulator.snapshot().groups["staff"],
        ["person000", "person001", "person002", "person003"]
    );
}
