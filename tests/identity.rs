//! A state directory knows what it belongs to: the account its calls went to, its
//! shard, and its source by content. Run as an operator would, against emulators as
//! separate processes, reading back what each emulated account holds.

mod support;

use faceenroll::emulator::{REHEARSAL_APPID, REHEARSAL_SECRET_ID, REHEARSAL_SECRET_KEY};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::bin::{output, s, Run};
use support::{faceenroll, photo, Archive, EmulatorProcess};

/// `faceenroll enroll SOURCE --group staff` against the emulator at `endpoint`.
fn enroll_command(source: &Path, endpoint: &str, state: &Path) -> std::process::Command {
    let mut cmd = support::enroll_command(source, endpoint, state);
    cmd.args(["--group", "staff"]);
    cmd
}

/// `faceenroll ARGS...` with the rehearsal credentials in the environment.
fn with_credentials(args: &[&str]) -> Run {
    let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    output(
        faceenroll(&args)
            .env("TENCENTCLOUD_SECRET_ID", REHEARSAL_SECRET_ID)
            .env("TENCENTCLOUD_SECRET_KEY", REHEARSAL_SECRET_KEY),
    )
}

/// An emulator as a separate process, its log in the archive's directory.
fn emulator(archive: &Archive, name: &str, args: &[&str]) -> EmulatorProcess {
    EmulatorProcess::start(args, &archive.dir.path().join(format!("{name}.log")))
}

/// A rehearsal (`--emulator`, in the process) of the archive into `state`.
fn rehearse(archive: &Archive, state: &Path) -> Run {
    output(&mut faceenroll(&[
        "enroll".as_ref(),
        archive.root().as_os_str(),
        "--group".as_ref(),
        "staff".as_ref(),
        "--emulator".as_ref(),
        "--no-progress".as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
    ]))
}

fn assert_refused_naming(run: &Run, words: &[&str]) {
    assert_eq!(run.code, 2, "{run:?}");
    for w in words {
        assert!(run.stderr.contains(w), "{w:?} not in: {}", run.stderr);
    }
}

#[test]
fn a_rehearsal_state_refuses_a_real_account_until_rebound() {
    let archive = Archive::new();
    archive.fill(2, 3, 100);
    let state = archive.state();
    assert_eq!(rehearse(&archive, &state).code, 0);

    // Another account, holding a person of its own that the job never made.
    let other = emulator(&archive, "other", &["--prepare", "person000:staff:5"]);
    let held = other.state();
    let rollback = with_credentials(&[
        "rollback",
        "--state",
        s(&state),
        "--endpoint",
        &other.endpoint,
        "--appid",
        REHEARSAL_APPID,
        "--yes",
    ]);
    assert_refused_naming(
        &rollback,
        &[
            "the rehearsal emulator (--emulator)",
            &other.endpoint,
            "--rebind-account",
        ],
    );
    let enroll = output(&mut enroll_command(
        &archive.root(),
        &other.endpoint,
        &state,
    ));
    assert_refused_naming(&enroll, &["the rehearsal emulator", &other.endpoint]);
    let verify = with_credentials(&[
        "verify",
        "--state",
        s(&state),
        "--endpoint",
        &other.endpoint,
        "--appid",
        REHEARSAL_APPID,
    ]);
    assert_refused_naming(&verify, &[&other.endpoint]);
    assert_eq!(other.counters().requests, 0, "no call reached the account");
    assert_eq!(other.state(), held, "the account holds what it held");

    // Re-bound on purpose (the account moved), the job works against it and stays
    // bound to it: verify calls it and finds what is missing there.
    let rebound = with_credentials(&[
        "verify",
        "--state",
        s(&state),
        "--endpoint",
        &other.endpoint,
        "--appid",
        REHEARSAL_APPID,
        "--rebind-account",
    ]);
    assert_eq!(rebound.code, 1, "{rebound:?}");
    assert!(other.counters().requests > 0);
    assert_refused_naming(&rehearse(&archive, &state), &[&other.endpoint]);
}

#[test]
fn a_state_refuses_another_appid_and_another_endpoint_with_no_call() {
    let archive = Archive::new();
    archive.fill(2, 2, 300);
    let state = archive.state();
    let first = emulator(&archive, "first", &[]);
    assert_eq!(
        output(&mut enroll_command(
            &archive.root(),
            &first.endpoint,
            &state
        ))
        .code,
        0
    );
    let calls = first.counters().requests;
    let held = first.state();
    assert_eq!(held.persons.len(), 2);

    // The same endpoint, another AppID.
    for command in ["rollback", "verify"] {
        let mut args = vec![
            command,
            "--state",
            s(&state),
            "--endpoint",
            &first.endpoint,
            "--appid",
            "1250000001",
        ];
        if command == "rollback" {
            args.push("--yes");
        }
        let run = with_credentials(&args);
        assert_refused_naming(&run, &["AppID 1250000000", "AppID 1250000001"]);
    }
    let enroll = with_credentials(&[
        "enroll",
        s(&archive.root()),
        "--group",
        "staff",
        "--no-progress",
        "--state",
        s(&state),
        "--endpoint",
        &first.endpoint,
        "--appid",
        "1250000001",
    ]);
    assert_refused_naming(&enroll, &["AppID 1250000001"]);
    assert_eq!(first.counters().requests, calls, "no call");
    assert_eq!(first.state(), held);

    // Another endpoint: the rollback deletes nothing there.
    let second = emulator(&archive, "second", &["--prepare", "person001:staff:3"]);
    let before = second.state();
    let run = with_credentials(&[
        "rollback",
        "--state",
        s(&state),
        "--endpoint",
        &second.endpoint,
        "--appid",
        REHEARSAL_APPID,
        "--yes",
    ]);
    assert_refused_naming(&run, &[&first.endpoint, &second.endpoint]);
    assert_eq!(second.counters().requests, 0);
    assert_eq!(second.state(), before);

    // The account it belongs to is still served: the rollback there deletes the job.
    let run = with_credentials(&[
        "rollback",
        "--state",
        s(&state),
        "--endpoint",
        &first.endpoint,
        "--appid",
        REHEARSAL_APPID,
        "--yes",
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(first.state().persons.is_empty());
}

/// Every file under `dir` with the hash of its bytes.
fn files(dir: &Path) -> BTreeMap<PathBuf, String> {
    walkdir::WalkDir::new(dir)
        .sort_by_file_name()
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().to_owned(), support::hash_of(e.path())))
        .collect()
}

fn plan_number(plan: &str) -> String {
    plan.lines()
        .next()
        .and_then(|l| l.split("(plan #").nth(1))
        .unwrap_or_else(|| panic!("no plan number in {plan}"))
        .to_owned()
}

#[test]
fn a_dry_run_writes_nothing_to_the_state() {
    let archive = Archive::new();
    archive.fill(2, 3, 500);
    let state = archive.state();
    let served = emulator(&archive, "served", &[]);
    assert_eq!(
        output(&mut enroll_command(
            &archive.root(),
            &served.endpoint,
            &state
        ))
        .code,
        0
    );
    let root = archive.root();
    let plan_state = |extra: &[&str]| {
        let mut args = vec!["plan", s(&root), "--group", "staff"];
        args.extend_from_slice(extra);
        with_credentials(&args)
    };
    let before_plan = plan_state(&["--state", s(&state)]);
    assert_eq!(before_plan.code, 0, "{before_plan:?}");
    let bytes = files(&state);

    // Another source, fed in as a dry run meant to join the job, then plan --state.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("zed")).unwrap();
    std::fs::write(other.path().join("zed/1.png"), photo(9_999)).unwrap();
    let mut dry = enroll_command(other.path(), &served.endpoint, &state);
    let dry = output(dry.args(["--dry-run", "--new-source"]));
    assert_eq!(dry.code, 0, "{dry:?}");
    let again = plan_state(&["--state", s(&state)]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(
        files(&state),
        bytes,
        "the state's files are unchanged byte for byte"
    );
    assert_eq!(plan_number(&again.stdout), plan_number(&before_plan.stdout));

    // The real run that follows is not poisoned by the dry run: nothing left, no call.
    let calls = served.counters().requests;
    let real = output(&mut enroll_command(
        &archive.root(),
        &served.endpoint,
        &state,
    ));
    assert_eq!(real.code, 0, "{real:?}");
    assert!(
        real.stdout.contains("every photo accounted for"),
        "{real:?}"
    );
    assert_eq!(served.counters().requests, calls);
}

/// Runs shard `index` of 3 of the archive into `sh/shard-INDEX` against `served`,
/// with `extra` flags.
fn run_shard(archive: &Archive, served: &EmulatorProcess, index: u32, extra: &[&str]) -> Run {
    let state = shard_state(archive, index);
    let mut cmd = enroll_command(&archive.root(), &served.endpoint, &state);
    output(cmd.args(["--shard", &format!("{index}/3")]).args(extra))
}

fn shard_state(archive: &Archive, index: u32) -> PathBuf {
    archive.dir.path().join(format!("sh/shard-{index}"))
}

#[test]
fn a_shards_state_refuses_another_shard_and_the_whole_job() {
    let archive = Archive::new();
    archive.fill(9, 2, 700);
    let served = emulator(&archive, "served", &[]);
    assert_eq!(run_shard(&archive, &served, 0, &[]).code, 0);
    let calls = served.counters().requests;
    let held = served.state();
    let state = shard_state(&archive, 0);
    let plan = status(&["--state", s(&state), "--json"]);

    let mut other = enroll_command(&archive.root(), &served.endpoint, &state);
    let other = output(other.args(["--shard", "1/3"]));
    assert_refused_naming(&other, &["holds shard 0/3, not shard 1/3", "--shard 0/3"]);
    let whole = output(&mut enroll_command(
        &archive.root(),
        &served.endpoint,
        &state,
    ));
    assert_refused_naming(&whole, &["holds shard 0/3, not the whole job"]);
    let mut dry = enroll_command(&archive.root(), &served.endpoint, &state);
    let dry = output(dry.arg("--dry-run"));
    assert_refused_naming(&dry, &[&format!("{} holds shard 0/3", s(&state))]);
    assert_eq!(served.counters().requests, calls, "no call");
    assert_eq!(served.state(), held);
    assert_eq!(
        status(&["--state", s(&state), "--json"]).stdout,
        plan.stdout,
        "the shard's plan is as it was"
    );

    // The same shard resumes as before: nothing left, no call.
    assert_eq!(run_shard(&archive, &served, 0, &[]).code, 0);
    assert_eq!(served.counters().requests, calls);
}

fn status(args: &[&str]) -> Run {
    let mut all = vec!["status"];
    all.extend_from_slice(args);
    with_credentials(&all)
}

#[test]
fn status_and_report_over_shards_name_the_missing_and_count_each_once() {
    let archive = Archive::new();
    archive.fill(9, 2, 900);
    let served = emulator(&archive, "served", &[]);
    let metrics = archive.dir.path().join("shard-2.prom");
    let summary = archive.dir.path().join("shard-2.json");
    assert_eq!(run_shard(&archive, &served, 0, &[]).code, 0);
    let run = run_shard(
        &archive,
        &served,
        2,
        &["--metrics-file", s(&metrics), "--summary-json", s(&summary)],
    );
    assert_eq!(run.code, 0, "{run:?}");
    let enrolled_on_service: usize = served.state().persons.values().map(|p| p.faces.len()).sum();

    let pattern = archive.dir.path().join("sh/shard-*");
    let text = status(&["--state", s(&pattern)]);
    assert_eq!(text.code, 0, "{text:?}");
    assert!(
        text.stdout.contains("missing: shard 1/3 of the job"),
        "{}",
        text.stdout
    );
    let json = status(&["--state", s(&pattern), "--json"]);
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["missing_shards"], serde_json::json!(["1/3"]));
    assert_eq!(
        json["totals"]["enrolled"].as_u64(),
        Some(enrolled_on_service as u64)
    );
    assert_eq!(json["shards"][1]["shard"], "2/3");

    // A directory given twice (by a pattern and by name) is counted once.
    let twice = status(&[
        "--state",
        s(&pattern),
        "--state",
        s(&shard_state(&archive, 2)),
        "--json",
    ]);
    assert_eq!(twice.code, 0, "{twice:?}");
    assert!(twice.stderr.contains("counted once"), "{}", twice.stderr);
    let twice: serde_json::Value = serde_json::from_str(&twice.stdout).unwrap();
    assert_eq!(twice["totals"], json["totals"]);
    assert_eq!(twice["shards"].as_array().unwrap().len(), 2);
    let report = with_credentials(&["report", "--state", s(&pattern)]);
    assert_eq!(report.code, 0, "{report:?}");
    assert!(report.stderr.contains("shard 1/3"), "{}", report.stderr);
    assert_eq!(report.stdout.lines().count(), 1 + enrolled_on_service);

    // A copy of a shard's state is not another shard.
    let copy = archive.dir.path().join("sh/shard-copy");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(shard_state(&archive, 0))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cp.success());
    let mixed = status(&["--state", s(&pattern)]);
    assert_refused_naming(&mixed, &["both hold shard 0/3"]);

    // The shard's figures for machines carry its shard.
    let prom = std::fs::read_to_string(&metrics).unwrap();
    for line in prom.lines().filter(|l| !l.starts_with('#')) {
        assert!(line.contains("shard=\"2/3\""), "{line}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["shard"], "2/3");
}

/// `cp -a FROM TO`, as an operator copies an archive.
fn copy_archive(from: &Path, to: &Path) {
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(cp.success());
}

#[test]
fn a_copied_archive_at_a_new_path_is_the_same_source_and_resumes_with_no_call() {
    let archive = Archive::new();
    archive.fill(3, 4, 1_100);
    let state = archive.state();
    let served = emulator(&archive, "served", &[]);
    assert_eq!(
        output(&mut enroll_command(
            &archive.root(),
            &served.endpoint,
            &state
        ))
        .code,
        0
    );
    let calls = served.counters().requests;
    let faces: BTreeMap<String, String> = support::report_rows(&state)
        .into_iter()
        .map(|r| (r.image.rsplit('/').take(2).collect(), r.face_id))
        .collect();
    assert_eq!(faces.len(), 12);

    // The archive moved: the job follows it, with a note, and makes no call.
    let moved = archive.dir.path().join("moved");
    copy_archive(&archive.root(), &moved);
    let run = output(&mut enroll_command(&moved, &served.endpoint, &state));
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("the same photos as the job's source"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("every photo accounted for"), "{run:?}");
    assert_eq!(served.counters().requests, calls, "no call");
    let rows = support::report_rows(&state);
    assert_eq!(rows.len(), 12, "each photo once");
    for row in &rows {
        assert_eq!(row.status, "enrolled", "{row:?}");
        assert!(row.image.starts_with(s(&moved)), "{row:?}");
        let name: String = row.image.rsplit('/').take(2).collect();
        assert_eq!(faces[&name], row.face_id, "the face the service holds");
    }

    // Another copy meant to join the job is the same photos too: not counted twice.
    let copy = archive.dir.path().join("copy");
    copy_archive(&moved, &copy);
    let mut joined = enroll_command(&copy, &served.endpoint, &state);
    let joined = output(joined.arg("--new-source"));
    assert_eq!(joined.code, 0, "{joined:?}");
    assert_eq!(served.counters().requests, calls);
    assert_eq!(support::report_rows(&state).len(), 12);

    // What the job knows still matches the service: verify finds every face by id.
    let verify = with_credentials(&[
        "verify",
        "--state",
        s(&state),
        "--endpoint",
        &served.endpoint,
        "--appid",
        REHEARSAL_APPID,
    ]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn a_source_sharing_only_some_photos_by_content_is_not_taken_as_moved() {
    let archive = Archive::new();
    archive.fill(2, 3, 1_300);
    let state = archive.state();
    let served = emulator(&archive, "served", &[]);
    assert_eq!(
        output(&mut enroll_command(
            &archive.root(),
            &served.endpoint,
            &state
        ))
        .code,
        0
    );
    // A second archive holding one photo of the first, and a new one.
    let other = archive.dir.path().join("other");
    std::fs::create_dir_all(other.join("person000")).unwrap();
    std::fs::copy(
        archive.root().join("person000/000.png"),
        other.join("person000/000.png"),
    )
    .unwrap();
    std::fs::write(other.join("person000/new.png"), photo(1_399)).unwrap();
    let mut joined = enroll_command(&other, &served.endpoint, &state);
    let joined = output(joined.arg("--new-source"));
    assert_eq!(joined.code, 0, "{joined:?}");
    assert!(!joined.stderr.contains("the same photos as"), "{joined:?}");
    let rows = support::report_rows(&state);
    let enrolled = rows.iter().filter(|r| r.status == "enrolled").count();
    assert_eq!(
        enrolled, 7,
        "the first archive's 6 photos stay in the job, 1 new"
    );
    assert_eq!(
        rows.iter().filter(|r| r.status == "duplicate").count(),
        1,
        "{rows:?}"
    );
}
