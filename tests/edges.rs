//! The edges of a job, through the binary: every file and row the operator gave is
//! either in the report or in its "not taken" rows with a reason, and a run that did
//! not do what was asked does not exit 0.

mod support;

use support::{faceenroll, photo, report_rows, write};

use faceenroll::report::Row;
use std::ffi::OsStr;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

/// Runs the binary with `args`, failing the test on a panic or past `limit`.
fn run(args: &[&OsStr]) -> Output {
    let started = Instant::now();
    let out = faceenroll(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    assert_ne!(out.status.code(), Some(101), "panic:\n{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "no answer within a minute"
    );
    out
}

fn os<'a>(args: &[&'a str]) -> Vec<&'a OsStr> {
    args.iter().map(|a| OsStr::new(*a)).collect()
}

/// `faceenroll enroll SOURCE --emulator --state STATE --no-progress EXTRA...`.
fn enroll(source: &Path, state: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        OsStr::new("enroll"),
        source.as_os_str(),
        OsStr::new("--emulator"),
        OsStr::new("--state"),
        state.as_os_str(),
        OsStr::new("--no-progress"),
    ];
    args.extend(extra.iter().map(OsStr::new));
    run(&args)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn row_of<'a>(rows: &'a [Row], image: &Path) -> &'a Row {
    let image = std::path::absolute(image).unwrap();
    let found: Vec<&Row> = rows
        .iter()
        .filter(|r| Path::new(&r.image) == image)
        .collect();
    assert_eq!(found.len(), 1, "{} in {rows:#?}", image.display());
    found[0]
}

#[test]
fn files_the_tree_walker_leaves_are_counted_listed_and_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    write(&root.join("ann/a.png"), &photo(1));
    let stray = write(&root.join("stray.png"), &photo(2));
    let hidden = write(&root.join("ann/.thumbs.png"), &photo(3));
    let hidden_dir = root.join(".cache");
    write(&hidden_dir.join("x.png"), &photo(4));
    let empty = root.join("bob");
    std::fs::create_dir_all(&empty).unwrap();
    let dangling = root.join("ann/gone.png");
    std::os::unix::fs::symlink(root.join("nowhere.png"), &dangling).unwrap();

    // plan: counted by reason, and named.
    let out = run(&os(&[
        "plan",
        root.to_str().unwrap(),
        "--group",
        "staff",
        "--follow-symlinks",
    ]));
    let plan = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{plan}{}", text(&out.stderr));
    assert!(
        plan.contains("not taken:  5 entries (1 dangling symbolic link, 1 empty person folder, 2 hidden, 1 photo not in a person folder)"),
        "{plan}"
    );
    for path in [&stray, &hidden, &hidden_dir, &empty] {
        assert!(plan.contains(&path.display().to_string()), "{plan}");
    }

    // enroll: every entry in the report; the photo outside a person folder and the
    // dangling link fail the run.
    let state = tmp.path().join("state");
    let out = enroll(
        &root,
        &state,
        &["--group", "staff", "--follow-symlinks", "-v"],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("not taken: 3 entries (1 empty person folder, 2 hidden), listed in the report as ignored"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("not taken: {}: hidden file", hidden.display())),
        "-v lists what is left:\n{stderr}"
    );
    let rows = report_rows(&state);
    assert_eq!(rows.len(), 6, "{rows:#?}");
    assert_eq!(row_of(&rows, &root.join("ann/a.png")).status, "enrolled");
    for (path, status, why) in [
        (&stray, "failed", "photo not in a person folder"),
        (&hidden, "ignored", "hidden file"),
        (&hidden_dir, "ignored", "hidden folder"),
        (&empty, "ignored", "empty person folder"),
        (&dangling, "failed", "symbolic link to nothing"),
    ] {
        let row = row_of(&rows, path);
        assert_eq!(row.status, status, "{row:#?}");
        assert!(row.reason.contains(why), "{row:#?}");
    }
    let ignored = run(&os(&[
        "report",
        "--state",
        state.to_str().unwrap(),
        "--only",
        "ignored",
    ]));
    assert_eq!(text(&ignored.stdout).lines().count(), 1 + 3);
}

#[test]
fn an_empty_source_is_an_error_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("share");
    std::fs::create_dir_all(&root).unwrap();
    let state = tmp.path().join("state");
    let out = enroll(&root, &state, &["--group", "staff"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no photo found (the folder is empty)") && stderr.contains("--allow-empty"),
        "{stderr}"
    );
    // Only files that are left: still no photo.
    write(&root.join(".DS_Store"), b"x");
    let out = enroll(&root, &state, &["--group", "staff"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no photo found (only 1 hidden)"));

    let out = enroll(&root, &state, &["--group", "staff", "--allow-empty"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A header and no row, for a job that holds nothing yet: an export that went wrong,
/// refused as an empty tree is; expected, with --allow-empty, it is nothing to do.
#[test]
fn a_header_only_manifest_is_nothing_to_do_only_when_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = write(
        &tmp.path().join("m.csv"),
        format!("{}\n", faceenroll::report::COLUMNS.join(",")).as_bytes(),
    );
    let state = tmp.path().join("state");
    let out = enroll(&manifest, &state, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no row under its header"));
    let out = enroll(&manifest, &state, &["--allow-empty"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("0 in the plan"));
}

#[test]
fn a_group_cell_with_a_comma_is_refused_never_a_group_name() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("a.png"), &photo(1));
    write(&tmp.path().join("b.png"), &photo(2));
    let manifest = write(
        &tmp.path().join("m.csv"),
        b"person_id,image,group_ids\nann,a.png,\"g1,g2\"\nbob,b.png,g1;g2\n",
    );
    let state = tmp.path().join("state");
    let service = tmp.path().join("service.json");
    let out = enroll(
        &manifest,
        &state,
        &["--emulator-state", service.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let rows = report_rows(&state);
    let ann = rows.iter().find(|r| r.person_id == "ann").unwrap();
    assert_eq!(ann.status, "failed");
    assert!(
        ann.reason
            .contains("group \"g1,g2\" holds a comma; separate groups with \";\""),
        "{ann:#?}"
    );
    assert_eq!(ann.group_ids, "g1,g2", "given back as written");
    let bob = rows.iter().find(|r| r.person_id == "bob").unwrap();
    assert_eq!(
        (bob.status.as_str(), bob.group_ids.as_str()),
        ("enrolled", "g1;g2")
    );
    // On the service: bob in g1 and g2, and no group named "g1,g2".
    let held: faceenroll::emulator::StateSnapshot =
        serde_json::from_slice(&std::fs::read(&service).unwrap()).unwrap();
    let groups: Vec<&String> = held.groups.keys().collect();
    assert_eq!(groups, ["g1", "g2"]);
    assert_eq!(held.persons.keys().collect::<Vec<_>>(), ["bob"]);
}

#[test]
fn ids_are_nfc_and_two_spellings_of_one_id_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for i in 0..3 {
        write(&tmp.path().join(format!("{i}.png")), &photo(i));
    }
    let nfc = "Jos\u{e9}";
    let nfd = "Jose\u{301}";
    // One spelling, written NFD: enrolled as the NFC id.
    let manifest = write(
        &tmp.path().join("m.csv"),
        format!("person_id,image,group_ids\n{nfd},0.png,staff\n").as_bytes(),
    );
    let state = tmp.path().join("state");
    let out = enroll(&manifest, &state, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows = report_rows(&state);
    assert_eq!(rows[0].person_id, nfc);

    // Two spellings of one id: refused, naming both lines.
    let manifest = write(
        &tmp.path().join("m2.csv"),
        format!("person_id,image,group_ids\n{nfc},1.png,staff\n{nfd},2.png,staff\n").as_bytes(),
    );
    let state = tmp.path().join("state2");
    let out = enroll(&manifest, &state, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let rows = report_rows(&state);
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row.status, "failed", "{row:#?}");
        assert!(
            row.reason.contains("written in two Unicode forms") && row.reason.contains("m2.csv:3"),
            "{row:#?}"
        );
    }
}

/// Runs the binary with its standard output closed before it writes.
fn with_stdout_closed(args: &[&OsStr]) -> std::process::ExitStatus {
    use std::process::Stdio;
    let started = Instant::now();
    let mut child = faceenroll(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "panic:\n{stderr}");
    assert!(!stderr.contains("Broken pipe"), "an error:\n{stderr}");
    assert!(started.elapsed() < Duration::from_secs(60));
    out.status
}

#[test]
fn every_command_ends_quietly_when_its_reader_is_gone() {
    use std::os::unix::process::ExitStatusExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    for i in 0..30 {
        write(&root.join(format!("p{i:02}/a.png")), &photo(i));
    }
    let root = root.to_str().unwrap();
    let state = tmp.path().join("state");
    let state = state.to_str().unwrap();
    // Reading commands end as a shell tool does: killed by SIGPIPE (141 in a shell).
    let status = with_stdout_closed(&os(&["plan", root, "--group", "staff"]));
    assert_eq!(status.signal(), Some(libc_sigpipe()), "{status:?}");
    // enroll keeps its exit code: the job is done whether or not the summary is read.
    let status = with_stdout_closed(&os(&[
        "enroll",
        root,
        "--group",
        "staff",
        "--dry-run",
        "--state",
        state,
    ]));
    assert_eq!(status.code(), Some(0), "{status:?}");
    let status = with_stdout_closed(&os(&[
        "enroll",
        root,
        "--group",
        "staff",
        "--emulator",
        "--no-progress",
        "--state",
        state,
    ]));
    assert_eq!(status.code(), Some(0), "{status:?}");
    // --print-config too (it used to panic with exit 101), with and without a service.
    for extra in [&["--emulator"][..], &["--appid", "1"][..]] {
        let mut args = vec!["enroll", root, "--group", "staff", "--print-config"];
        args.extend_from_slice(extra);
        let status = with_stdout_closed(&os(&args));
        assert_eq!(status.code(), Some(0), "{extra:?}: {status:?}");
    }
    for format in ["csv", "jsonl"] {
        let status = with_stdout_closed(&os(&["report", "--state", state, "--format", format]));
        assert_eq!(
            status.signal(),
            Some(libc_sigpipe()),
            "{format}: {status:?}"
        );
    }
    let status = with_stdout_closed(&os(&["status", "--state", state, "--json"]));
    assert!(
        status.signal() == Some(libc_sigpipe()) || status.code() == Some(0),
        "{status:?}"
    );
}

fn libc_sigpipe() -> i32 {
    13
}

#[test]
fn out_of_range_options_are_refused_by_their_flag_name() {
    let tmp = tempfile::tempdir().unwrap();
    write(&tmp.path().join("ann/a.png"), &photo(1));
    let root = tmp.path().to_str().unwrap();
    for (flag, value) in [
        ("--max-edge", "0"),
        ("--workers", "0"),
        ("--jpeg-quality", "0"),
        ("--jpeg-quality", "101"),
        ("--max-photo-bytes", "0"),
        ("--retry-attempts", "0"),
        ("--progress-interval", "0"),
    ] {
        let out = run(&os(&[
            "enroll",
            root,
            "--group",
            "staff",
            "--emulator",
            flag,
            value,
        ]));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
    let config = tmp.path().join("fe.toml");
    std::fs::write(&config, "[enroll]\nmax_edge = 0\n").unwrap();
    let out = run(&os(&[
        "enroll",
        root,
        "--group",
        "staff",
        "--emulator",
        "--config",
        config.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("max_edge = 0"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unwritable_report_is_found_before_the_first_call() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    write(&root.join("ann/a.png"), &photo(1));
    let report = tmp.path().join("no-such-dir/report.csv");
    let service = tmp.path().join("service.json");
    let out = enroll(
        &root,
        &tmp.path().join("state"),
        &[
            "--group",
            "staff",
            "--report",
            report.to_str().unwrap(),
            "--emulator-state",
            service.to_str().unwrap(),
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot write the report {}", report.display())),
        "{stderr}"
    );
    // No call was made: the emulated account holds nobody.
    let held = std::fs::read(&service).unwrap_or_default();
    assert!(
        held.is_empty() || !text(&held).contains("ann"),
        "{}",
        text(&held)
    );
}

#[test]
fn status_json_reads_back_with_failures_by_code() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    write(&root.join("ann/a.png"), &photo(1));
    write(&root.join("ann/b.png"), b"not a photo");
    let state = tmp.path().join("state");
    let out = enroll(&root, &state, &["--group", "staff"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let out = run(&os(&[
        "status",
        "--state",
        state.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["counts"]["failed"], 1, "{status:#}");
    assert_eq!(
        status["counts"]["failures_by_code"]["none"], 1,
        "{status:#}"
    );
}

fn report_csv(state: &Path, only: &str) -> String {
    let out = run(&os(&[
        "report",
        "--state",
        state.to_str().unwrap(),
        "--only",
        only,
    ]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

#[test]
fn a_report_fed_back_updates_its_rows_and_the_job_keeps_every_row() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    for i in 0..6 {
        write(&root.join(format!("p{i}/a.png")), &photo(i));
    }
    let broken = root.join("p6/a.png");
    write(&broken, b"not a photo");
    let bad_id = root.join("bad id/a.png");
    write(&bad_id, &photo(7));
    let state = tmp.path().join("state");
    let service = tmp.path().join("service.json");
    let service_flag = ["--emulator-state", service.to_str().unwrap()];
    let mut args = vec!["--group", "staff"];
    args.extend(service_flag);
    let out = enroll(&root, &state, &args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));

    // The failed rows as a manifest: fix the photo and the person id, feed it back.
    let failed = report_csv(&state, "failed");
    assert_eq!(failed.lines().count(), 1 + 2, "{failed}");
    let failed = failed.replace("bad id,", "bad_id,");
    assert!(failed.contains(",staff,"), "groups given back: {failed}");
    let manifest = write(&tmp.path().join("failed.csv"), failed.as_bytes());
    write(&broken, &photo(6));
    let out = enroll(&manifest, &state, &service_flag);
    // The row for "bad id" stays failed, as the tree still lists it: the job is not
    // free of failures, and the exit code says so.
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("9 in the plan: 8 enrolled, 0 duplicate, 0 skipped, 1 failed"),
        "{stdout}"
    );

    // The job still covers every photo: the six, the fixed one, the renamed person,
    // and the row for "bad id".
    let rows = report_rows(&state);
    assert_eq!(rows.len(), 6 + 1 + 1 + 1, "{rows:#?}");
    assert_eq!(row_of(&rows, &broken).status, "enrolled");
    let enrolled = rows.iter().filter(|r| r.status == "enrolled").count();
    assert_eq!(enrolled, 8, "{rows:#?}");
    let status = run(&os(&[
        "status",
        "--state",
        state.to_str().unwrap(),
        "--json",
    ]));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["counts"]["photos"], 9, "{status:#}");
    assert_eq!(status["counts"]["pending"], 0, "{status:#}");
    assert_eq!(status["counts"]["failed"], 1, "{status:#}");
    // On the service: eight persons with one face each.
    let held: faceenroll::emulator::StateSnapshot =
        serde_json::from_slice(&std::fs::read(&service).unwrap()).unwrap();
    assert_eq!(held.persons.len(), 8);
    assert!(held.persons.values().all(|p| p.faces.len() == 1));

    // Nothing pending: the selection is still a manifest, its header alone.
    let none = report_csv(&state, "pending");
    assert_eq!(
        none.lines().collect::<Vec<_>>(),
        [faceenroll::report::COLUMNS.join(",")]
    );
}

#[test]
fn a_source_that_shares_nothing_with_the_job_is_refused_unless_meant() {
    let tmp = tempfile::tempdir().unwrap();
    let first = tmp.path().join("first");
    let other = tmp.path().join("other");
    write(&first.join("ann/a.png"), &photo(1));
    write(&other.join("bob/b.png"), &photo(2));
    let state = tmp.path().join("state");
    let out = enroll(&first, &state, &["--group", "staff"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = enroll(&other, &state, &["--group", "staff"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("shares no photo with this job's sources")
            && stderr.contains("--new-source"),
        "{stderr}"
    );
    assert_eq!(report_rows(&state).len(), 1, "the job is as it was");
    let out = enroll(&other, &state, &["--group", "staff", "--new-source"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let rows = report_rows(&state);
    assert_eq!(rows.len(), 2, "{rows:#?}");
}

#[test]
fn the_emulator_fails_loudly_when_it_cannot_keep_its_state() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("account");
    std::fs::create_dir(&folder).unwrap();
    let state_file = folder.join("account.json");
    let log = tmp.path().join("emulator.log");
    let emulator =
        support::EmulatorProcess::start(&["--state-file", state_file.to_str().unwrap()], &log);
    // Its folder gone once it runs (an unmounted disk): the state cannot be written.
    std::fs::remove_dir_all(&folder).unwrap();
    write(&folder, b"");
    // A person to keep.
    let photos = tmp.path().join("photos");
    write(&photos.join("ann/a.png"), &photo(1));
    let enrolled = support::enroll_command(&photos, &emulator.endpoint, &tmp.path().join("state"))
        .args(["--group", "staff"])
        .output()
        .unwrap();
    assert_eq!(
        enrolled.status.code(),
        Some(0),
        "{}",
        text(&enrolled.stderr)
    );
    let status = emulator.terminate();
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("could not write state file") && stderr.contains("was not kept"),
        "{stderr}"
    );
}

#[test]
fn a_decoder_error_is_one_line_of_text_and_one_photo_is_not_photos() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    let jpeg = support::jpeg_bytes(&support::picture(400, 300, 40, 7), 90);
    let truncated = root.join("ann/cut.jpg");
    write(&truncated, &jpeg[..300]);
    let state = tmp.path().join("state");
    let out = enroll(
        &root,
        &state,
        &["--group", "staff", "--max-photo-bytes", "100"],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("finished with 1 failed photo and 0 left"),
        "{stdout}"
    );
    let rows = report_rows(&state);
    let row = row_of(&rows, &truncated);
    assert_eq!(row.status, "failed", "{row:#?}");
    assert!(row.reason.contains("cannot decode the photo"), "{row:#?}");
    assert!(
        !row.reason.contains('\n') && !row.reason.contains("Error {"),
        "{row:#?}"
    );
}
