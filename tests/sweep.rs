//! A second sweep of a job's edges, through the binary against the emulator: how a
//! person's 20 places are filled when some photos are refused, duplicated rows and
//! photos, what a tree walk takes, the job's own state directory inside its source,
//! the report and exit code of a pending photo, and what the summary and the
//! after-job commands print. Each test checks what the service holds where it can.

mod support;

use faceenroll::emulator::StateSnapshot;
use faceenroll::report::Row;
use std::path::{Path, PathBuf};
use support::bin::{output, Run};
use support::{after_command, faceenroll, hash_of, photo, report_rows, write};

/// `faceenroll enroll SOURCE --emulator --emulator-state SERVICE --state STATE
/// --no-progress EXTRA...`, to its end.
fn enroll(source: &Path, state: &Path, service: &Path, extra: &[&str]) -> Run {
    let mut cmd = faceenroll(&[]);
    cmd.arg("enroll")
        .arg(source)
        .arg("--emulator")
        .arg("--emulator-state")
        .arg(service)
        .arg("--state")
        .arg(state)
        .arg("--no-progress")
        .args(extra);
    let run = output(&mut cmd);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

/// What the emulated account holds, from its state file.
fn held(service: &Path) -> StateSnapshot {
    serde_json::from_slice(&std::fs::read(service).unwrap()).unwrap()
}

/// The content hashes of the faces the service holds for `person`.
fn faces_of(service: &Path, person: &str) -> Vec<String> {
    held(service)
        .persons
        .get(person)
        .map(|p| p.faces.iter().map(|f| f.content_hash.clone()).collect())
        .unwrap_or_default()
}

/// The report's row of the file at `path`.
fn row_of<'a>(rows: &'a [Row], path: &Path) -> &'a Row {
    let path = std::path::absolute(path).unwrap();
    let found: Vec<&Row> = rows
        .iter()
        .filter(|r| Path::new(&r.image) == path)
        .collect();
    assert_eq!(found.len(), 1, "{} in {rows:#?}", path.display());
    found[0]
}

fn tmp() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let service = dir.path().join("service.json");
    (dir, state, service)
}

#[test]
fn a_gif_in_a_tree_is_a_photo_sent_as_it_is() {
    let (dir, state, service) = tmp();
    let root = dir.path().join("photos");
    let still = support::encode(&support::face_picture(3, 24, 24), image::ImageFormat::Gif);
    let gif = write(&root.join("ann/a.gif"), &still);
    write(&root.join("ann/b.png"), &photo(1));
    let run = enroll(&root, &state, &service, &["--group", "staff"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let rows = report_rows(&state);
    assert_eq!(row_of(&rows, &gif).status, "enrolled", "{rows:#?}");
    // The service holds the GIF's own bytes, as a manifest row would have sent them.
    assert!(faces_of(&service, "ann").contains(&hash_of(&gif)));
}

#[test]
fn the_readme_tree_table_names_every_extension_the_walker_takes() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let line = readme
        .lines()
        .find(|l| l.starts_with("| a file ending in "))
        .expect("the tree table's photo line");
    for ext in faceenroll::source::IMAGE_EXTENSIONS {
        assert!(line.contains(&format!("`.{ext}`")), ".{ext} in {line}");
    }
    let listed = line.matches("`.").count();
    assert_eq!(listed, faceenroll::source::IMAGE_EXTENSIONS.len(), "{line}");
}

#[test]
fn the_jobs_state_directory_inside_its_source_is_never_walked() {
    let (dir, _, service) = tmp();
    let root = dir.path().join("photos");
    write(&root.join("ann/a.png"), &photo(1));
    write(&root.join("bob/b.png"), &photo(2));
    // Run from the archive, as an operator might: the state goes to
    // ./faceenroll-state, inside the tree.
    let enroll_here = || {
        output(
            faceenroll(&[])
                .current_dir(&root)
                .args([
                    "enroll",
                    ".",
                    "--group",
                    "staff",
                    "--emulator",
                    "--no-progress",
                ])
                .arg("--emulator-state")
                .arg(&service),
        )
    };
    for _ in 0..2 {
        let run = enroll_here();
        assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    }
    let rows = report_rows(&root.join("faceenroll-state"));
    let state_rows: Vec<&Row> = rows
        .iter()
        .filter(|r| r.image.contains("faceenroll-state") || r.person_id.contains("faceenroll"))
        .collect();
    assert_eq!(state_rows.len(), 1, "{rows:#?}");
    assert_eq!(state_rows[0].status, "ignored");
    assert!(
        state_rows[0].reason.contains("state directory"),
        "{rows:#?}"
    );
    assert_eq!(
        held(&service).persons.keys().collect::<Vec<_>>(),
        ["ann", "bob"]
    );

    // The job's own state directory is known by what it is, not by its name, and
    // a dry run from the archive leaves the default one out too.
    let custom = root.join("ann/job");
    let run = enroll(&root, &custom, &service, &["--group", "staff"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let rows = report_rows(&custom);
    assert!(
        rows.iter().all(|r| r.status != "skipped"),
        "no file of the state directory is a photo in a subfolder: {rows:#?}"
    );
    let plan = output(
        faceenroll(&[])
            .current_dir(&root)
            .args(["plan", ".", "--group", "staff"]),
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(!plan.stdout.contains("/db/"), "{}", plan.stdout);
    assert!(plan.stdout.contains("persons:    2 "), "{}", plan.stdout);
}

#[test]
fn a_pending_photo_gives_its_last_code_and_the_run_exits_as_the_help_says() {
    let (dir, state, service) = tmp();
    write(&dir.path().join("a.png"), &photo(1));
    // A URL the service cannot download: -1308, refused for now on every try.
    let files = support::http::FileServer::start(vec![]);
    let url = files.url("gone.png");
    let manifest = write(
        &dir.path().join("m.csv"),
        format!("person_id,image,group_ids\nann,a.png,staff\nann,{url},staff\n").as_bytes(),
    );
    let run = enroll(&manifest, &state, &service, &["--retry-attempts", "2"]);
    assert!(
        run.stdout
            .contains("finished with 0 failed photos and 1 left for the next run"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    let rows = report_rows(&state);
    let row = rows.iter().find(|r| r.image == url).unwrap();
    assert_eq!(row.status, "pending", "{row:#?}");
    assert_eq!(row.code, Some(-1308), "{row:#?}");
    assert!(row.reason.contains("-1308"), "{row:#?}");
    assert!(!row.meaning.is_empty(), "{row:#?}");
    assert_eq!(faces_of(&service, "ann").len(), 1);

    // The exit code is the one the help gives for a run that left photos.
    let help = output(faceenroll(&[]).args(["enroll", "--help"]));
    let one = help
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("  1 "))
        .take_while(|l| !l.starts_with("  2 "))
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(one.contains("left for the next run"), "{}", help.stdout);
    assert_eq!(run.code, 1, "{}", run.stdout);
}

/// A PNG of one colour, `shade`: no face by the emulator's rule, and other bytes
/// for every shade.
fn faceless(shade: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(24, 24, image::Rgb([shade, shade, shade]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The figure before `what` in the summary's "this run:" line ("0 calls").
fn this_run(stdout: &str, what: &str) -> u64 {
    let line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("this run:"))
        .unwrap_or_else(|| panic!("no 'this run' line in {stdout}"));
    let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    let at = words
        .iter()
        .position(|w| *w == what)
        .unwrap_or_else(|| panic!("no {what} in {line}"));
    words[at - 1].parse().unwrap()
}

#[test]
fn a_persons_places_go_to_the_first_photos_the_service_accepts() {
    let (dir, state, service) = tmp();
    let root = dir.path().join("photos");
    // ann: 25 photos, three of them faceless among the first 20, the seed included.
    let mut ann = Vec::new();
    for i in 0..25u8 {
        let bytes = if [0, 7, 11].contains(&i) {
            faceless(100 + i)
        } else {
            photo(u32::from(i) + 1)
        };
        ann.push(write(&root.join(format!("ann/{i:03}.png")), &bytes));
    }
    // bob: a faceless photo and two byte-identical copies of it.
    write(&root.join("bob/0.png"), &photo(500));
    let refused = write(&root.join("bob/1.png"), &faceless(7));
    let copies = [
        write(&root.join("bob/2.png"), &faceless(7)),
        write(&root.join("bob/3.png"), &faceless(7)),
    ];

    let plan = output(
        faceenroll(&[])
            .arg("plan")
            .arg(&root)
            .args(["--group", "staff"]),
    );
    assert!(plan.stdout.contains("a spare"), "{}", plan.stdout);

    let first = enroll(&root, &state, &service, &["--group", "staff"]);
    assert_eq!(first.code, 1, "{}\n{}", first.stdout, first.stderr);
    assert!(
        first
            .stdout
            .contains("finished with 4 failed photos and 0 left for the next run"),
        "{}",
        first.stdout
    );
    // The service holds 20 faces of ann: the three refused handed their places on.
    assert_eq!(faces_of(&service, "ann").len(), 20);
    let rows = report_rows(&state);
    let status = |path: &Path| row_of(&rows, path).status.clone();
    let count = |s: &str| ann.iter().filter(|p| status(p) == s).count();
    assert_eq!(
        (count("enrolled"), count("failed"), count("skipped")),
        (20, 3, 2)
    );
    for spare in &ann[23..] {
        assert!(row_of(&rows, spare)
            .reason
            .contains("over the service's limit of 20"));
    }
    assert!(
        ann[..23].iter().all(|p| status(p) != "skipped"),
        "{rows:#?}"
    );
    // bob's copies of the refused photo are one photo with it: never sent.
    assert_eq!(status(&refused), "failed");
    for copy in &copies {
        assert_eq!(status(copy), "duplicate", "{rows:#?}");
    }

    // "0 left" was true: the next run, nothing changed, makes no call.
    let second = enroll(&root, &state, &service, &["--group", "staff"]);
    assert_eq!(this_run(&second.stdout, "calls"), 0, "{}", second.stdout);
    assert_eq!(faces_of(&service, "ann").len(), 20);
    assert_eq!(faces_of(&service, "bob").len(), 1);
    let rows = report_rows(&state);
    for copy in &copies {
        let row = row_of(&rows, copy);
        assert_eq!(row.status, "duplicate", "{row:#?}");
        assert!(row.reason.contains("1.png"), "{row:#?}");
    }
}

#[test]
fn every_manifest_row_is_in_the_report_a_repeated_one_too() {
    let (dir, state, service) = tmp();
    write(&dir.path().join("a.png"), &photo(1));
    write(&dir.path().join("b.png"), &photo(2));
    let manifest = write(
        &dir.path().join("m.csv"),
        b"person_id,image,group_ids\n\
          ann,a.png,staff\n\
          bob,b.png,staff\n\
          ann,a.png,staff\n\
          ann,a.png,lab\n",
    );
    let run = enroll(&manifest, &state, &service, &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let rows = report_rows(&state);
    let mut lines: Vec<u64> = rows.iter().filter_map(|r| r.line).collect();
    lines.sort();
    assert_eq!(
        lines,
        [2, 3, 4, 5],
        "one report row per data row: {rows:#?}"
    );
    let line = |n: u64| rows.iter().find(|r| r.line == Some(n)).unwrap();
    assert_eq!(line(2).status, "enrolled");
    // The same row again: ignored, naming the line it repeats.
    assert_eq!(line(4).status, "ignored", "{:#?}", line(4));
    assert!(line(4).reason.contains("m.csv:2"), "{:#?}", line(4));
    // Again with another group: refused as a conflicting name is, and no group of
    // it is made on the service.
    assert_eq!(line(5).status, "failed", "{:#?}", line(5));
    assert!(line(5).reason.contains("\"lab\""), "{:#?}", line(5));
    assert_eq!(line(5).group_ids, "lab");
    let held = held(&service);
    assert_eq!(held.persons["ann"].groups, ["staff"]);
    assert!(!held.groups.contains_key("lab"));
}

#[test]
fn the_same_photo_for_two_persons_is_enrolled_for_both_with_a_warning() {
    let (dir, state, service) = tmp();
    let root = dir.path().join("photos");
    let ann = write(&root.join("ann/a.png"), &photo(1));
    let bob = write(&root.join("bob/b.png"), &photo(1));
    write(&root.join("bob/c.png"), &photo(2));
    write(&root.join("carol/d.png"), &photo(3));

    let plan = output(
        faceenroll(&[])
            .arg("plan")
            .arg(&root)
            .args(["--group", "staff"]),
    );
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let warning = plan
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("warning "))
        .unwrap_or_else(|| panic!("{}", plan.stdout));
    for named in [&ann, &bob] {
        assert!(warning.contains(&named.display().to_string()), "{warning}");
    }

    let run = enroll(&root, &state, &service, &["--group", "staff"]);
    assert_eq!(
        run.code, 0,
        "a warning fails nothing: {}\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr
            .contains("the same photo is listed for 2 persons"),
        "{}",
        run.stderr
    );
    // Enrolled for both, as listed.
    let hash = hash_of(&ann);
    assert!(faces_of(&service, "ann").contains(&hash));
    assert!(faces_of(&service, "bob").contains(&hash));
    let rows = report_rows(&state);
    let (a, b) = (row_of(&rows, &ann), row_of(&rows, &bob));
    assert_eq!(
        (a.status.as_str(), b.status.as_str()),
        ("enrolled", "enrolled")
    );
    assert!(a.reason.contains("person \"bob\" too"), "{a:#?}");
    assert!(b.reason.contains("person \"ann\" too"), "{b:#?}");
    assert!(row_of(&rows, &root.join("carol/d.png")).reason.is_empty());
}

#[test]
fn the_summary_counts_this_runs_photos_and_calls_in_flight_as_the_json_does() {
    let (dir, state, service) = tmp();
    let root = dir.path().join("photos");
    for (person, seed) in [("ann", 1), ("bob", 2), ("carol", 3)] {
        write(&root.join(format!("{person}/a.png")), &photo(seed));
    }
    // Settled by the plan, before the run's calls: a copy and a file that is no photo.
    write(&root.join("ann/copy.png"), &photo(1));
    write(&root.join("ann/notes.txt"), b"notes");
    let json = dir.path().join("summary.json");
    let run = enroll(
        &root,
        &state,
        &service,
        &["--group", "staff", "--summary-json", json.to_str().unwrap()],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(this_run(&run.stdout, "photos"), 3, "{}", run.stdout);
    assert_eq!(summary["photos_this_run"], 3, "{summary}");
    // Three calls were made, so at least one was in flight.
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("calls in flight: up to "))
        .unwrap();
    let peak: u64 = line
        .split("up to ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(peak >= 1, "{line}");
}

#[test]
fn a_rollback_stopped_by_ctrl_c_prints_what_it_did() {
    let archive = support::Archive::new();
    archive.fill(40, 1, 900);
    let emulator = support::emulator();
    let client = support::client(&emulator);
    support::run(&archive, &client, &support::options());
    assert_eq!(emulator.snapshot().persons.len(), 40);
    let endpoint = emulator.endpoint();

    // Paced, so it is still going when Ctrl-C comes after its fifth deletion.
    let child = after_command(
        "rollback",
        &endpoint,
        &archive.state(),
        &["--yes", "--qps", "20"],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let started = std::time::Instant::now();
    while emulator.counters().received("delperson") < 5 {
        assert!(
            started.elapsed().as_secs() < 60,
            "the rollback never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // SAFETY: a signal to a child process this test owns and has not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    let deleted = 40 - emulator.snapshot().persons.len();
    assert!(
        (5..40).contains(&deleted),
        "stopped in the middle: {deleted}"
    );
    assert!(
        stdout.contains(&format!("faceenroll rollback: {deleted} persons deleted")),
        "what it did, as the service holds it: {stdout}\n{stderr}"
    );
    assert!(stderr.contains("run the same command again"), "{stderr}");

    let again = output(&mut after_command(
        "rollback",
        &endpoint,
        &archive.state(),
        &["--yes", "--qps", "0"],
    ));
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert!(emulator.snapshot().persons.is_empty());
}

#[test]
fn a_stopped_verify_leaves_the_last_drift_report_as_it_was() {
    let archive = support::Archive::new();
    archive.fill(3, 2, 950);
    let emulator = support::emulator();
    let client = support::client(&emulator);
    support::run(&archive, &client, &support::options());
    let endpoint = emulator.endpoint();
    let state = archive.state();
    // Another tool deletes a person: the verify reports it.
    client
        .del_person(&faceenroll::model::PersonId::new("person001").unwrap())
        .unwrap();
    let first = output(&mut after_command("verify", &endpoint, &state, &[]));
    assert_eq!(first.code, 1, "{}{}", first.stdout, first.stderr);
    let drift = state.join("drift.csv");
    let reported = std::fs::read_to_string(&drift).unwrap();
    assert!(reported.contains("person_missing"), "{reported}");

    // A verify stopped at its first call (credentials refused) writes no report.
    let stopped = output(
        after_command("verify", &endpoint, &state, &[])
            .env("TENCENTCLOUD_SECRET_KEY", "not-the-key"),
    );
    assert_eq!(stopped.code, 3, "{}{}", stopped.stdout, stopped.stderr);
    assert_eq!(std::fs::read_to_string(&drift).unwrap(), reported);
    assert!(
        stopped.stdout.contains("left as it was"),
        "{}",
        stopped.stdout
    );
}
