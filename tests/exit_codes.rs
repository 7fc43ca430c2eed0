//! The exit codes a nightly wrapper acts on, through the binary against the
//! emulator: what is new this run exits 1, what is known from earlier runs and
//! unchanged exits 0 (unless `--strict`), a held mirror exits 4 without counting as
//! a finished night, and each command's promise in the README holds as written.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use support::bin::{output, s, Run};
use support::{faceenroll, photo, write};

/// `faceenroll enroll SOURCE --emulator --emulator-state SERVICE --state STATE
/// --no-progress EXTRA...`, to its end.
fn enroll(source: &Path, state: &Path, service: &Path, extra: &[&str]) -> Run {
    let run = output(
        faceenroll(&[])
            .arg("enroll")
            .arg(source)
            .args(["--emulator", "--emulator-state", s(service)])
            .args(["--state", s(state), "--no-progress"])
            .args(extra),
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run
}

/// A PNG of one colour: no face by the emulator's rule, other bytes per shade.
fn faceless(shade: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(24, 24, image::Rgb([shade, shade, shade]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// A monitor on 127.0.0.1 answering 200 and keeping each request line.
fn monitor() -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/night", listener.local_addr().unwrap());
    let lines = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&lines);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            kept.lock().unwrap().push(first.trim_end().to_owned());
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"
            );
        }
    });
    (url, lines)
}

fn tmp() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    let state = dir.path().join("state");
    let service = dir.path().join("service.json");
    (dir, root, state, service)
}

#[test]
fn a_night_with_only_old_failures_exits_0_and_pings_success_and_a_new_failure_exits_1() {
    let (dir, root, state, service) = tmp();
    write(&root.join("ann/1.png"), &photo(1));
    write(&root.join("ann/2.png"), &faceless(200));
    let summary = dir.path().join("summary.json");
    let group = ["--group", "staff", "--summary-json", s(&summary)];

    let first = enroll(&root, &state, &service, &group);
    assert_eq!(first.code, 1, "a photo failed this run: {first:?}");
    assert_eq!(json(&summary)["exit_code"], 1);
    assert_eq!(json(&summary)["failed_earlier"], 0);

    // The next night: nothing new, only the photo refused for good last night.
    let (url, pings) = monitor();
    let mut extra = group.to_vec();
    extra.extend(["--ping-url", &url]);
    let night = enroll(&root, &state, &service, &extra);
    assert_eq!(night.code, 0, "{night:?}");
    assert!(night.stdout.contains(", 0 calls"), "{}", night.stdout);
    assert!(
        night.stdout.contains("1 of them known from earlier runs"),
        "{}",
        night.stdout
    );
    let figures = json(&summary);
    assert_eq!(
        (
            figures["exit_code"].as_i64(),
            figures["failed_earlier"].as_u64()
        ),
        (Some(0), Some(1)),
        "{figures}"
    );
    assert_eq!(figures["failed"], 1, "still counted: {figures}");
    assert_eq!(
        *pings.lock().unwrap(),
        ["GET /night/start HTTP/1.1", "GET /night/0 HTTP/1.1"]
    );

    // --strict, FACEENROLL_STRICT and `[enroll] strict` count the old failure.
    let strict = enroll(
        &root,
        &state,
        &service,
        &[&group[..], &["--strict"]].concat(),
    );
    assert_eq!(strict.code, 1, "{strict:?}");
    let by_env = output(
        faceenroll(&[])
            .arg("enroll")
            .arg(&root)
            .args(["--emulator", "--emulator-state", s(&service)])
            .args(["--state", s(&state), "--no-progress"])
            .args(group)
            .env("FACEENROLL_STRICT", "true"),
    );
    assert_eq!(by_env.code, 1, "{by_env:?}");
    let config = dir.path().join("fe.toml");
    std::fs::write(&config, "[enroll]\nstrict = true\n").unwrap();
    let by_file = enroll(
        &root,
        &state,
        &service,
        &[&group[..], &["--config", s(&config)]].concat(),
    );
    assert_eq!(by_file.code, 1, "{by_file:?}");

    // A new failure this night exits 1 again, the old one still counted apart.
    write(&root.join("ann/3.png"), &faceless(120));
    let new = enroll(&root, &state, &service, &group);
    assert_eq!(new.code, 1, "{new:?}");
    let figures = json(&summary);
    assert_eq!(
        (
            figures["exit_code"].as_i64(),
            figures["failed"].as_u64(),
            figures["failed_earlier"].as_u64()
        ),
        (Some(1), Some(2), Some(1)),
        "{figures}"
    );
}

/// The value of a metric in a Prometheus text file.
fn metric(path: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last().map(str::to_owned))
}

#[test]
fn a_held_mirror_exits_4_and_is_not_a_finished_night() {
    let (dir, root, state, service) = tmp();
    for (i, person) in ["ann", "ben", "cy"].iter().enumerate() {
        write(&root.join(format!("{person}/1.png")), &photo(i as u32 + 1));
    }
    let metrics = dir.path().join("fe.prom");
    let summary = dir.path().join("summary.json");
    let extra = [
        "--group",
        "staff",
        "--mirror",
        "--metrics-file",
        s(&metrics),
        "--summary-json",
        s(&summary),
    ];
    let first = enroll(&root, &state, &service, &extra);
    assert_eq!(first.code, 0, "{first:?}");
    let finished = metric(&metrics, "faceenroll_last_success_timestamp_seconds");
    assert!(
        finished.is_some(),
        "{}",
        std::fs::read_to_string(&metrics).unwrap()
    );

    std::thread::sleep(std::time::Duration::from_millis(1100));
    std::fs::remove_dir_all(root.join("ben")).unwrap();
    std::fs::remove_dir_all(root.join("cy")).unwrap();
    let held = enroll(
        &root,
        &state,
        &service,
        &[&extra[..], &["--max-delete", "1"]].concat(),
    );
    assert_eq!(held.code, 4, "{held:?}");
    assert_eq!(
        metric(&metrics, "faceenroll_last_success_timestamp_seconds"),
        finished,
        "a held run is not a finished night"
    );
    let figures = json(&summary);
    assert_eq!(figures["exit_code"], 4, "{figures}");
    let ending = figures["ending"].as_str().unwrap();
    assert!(
        !ending.contains("every photo accounted for") && ending.contains("deleted nothing"),
        "{ending}"
    );
}

#[test]
fn the_readmes_repair_line_run_as_written_enrolls_what_went_missing() {
    use faceenroll::emulator::{REHEARSAL_APPID, REHEARSAL_SECRET_ID, REHEARSAL_SECRET_KEY};
    let (dir, root, state, _) = tmp();
    write(&root.join("ann/1.png"), &photo(1));
    write(&root.join("ann/2.png"), &photo(2));
    let em = support::EmulatorProcess::start(&[], &dir.path().join("emulator.log"));
    let first =
        output(support::enroll_command(&root, &em.endpoint, &state).args(["--group", "staff"]));
    assert_eq!(first.code, 0, "{first:?}");

    // Someone deletes a face the job enrolled.
    let gone = em.state().persons["ann"].faces[0].face_id.clone();
    let deleted = output(
        faceenroll(&[])
            .args(["delete-faces", "ann", &gone, "--yes"])
            .args(["--endpoint", &em.endpoint, "--appid", REHEARSAL_APPID])
            .env("TENCENTCLOUD_SECRET_ID", REHEARSAL_SECRET_ID)
            .env("TENCENTCLOUD_SECRET_KEY", REHEARSAL_SECRET_KEY),
    );
    assert_eq!(deleted.code, 0, "{deleted:?}");
    assert_eq!(em.state().persons["ann"].faces.len(), 1);

    // The README's line, with the job's settings in the environment.
    let readme = include_str!("../README.md");
    let line =
        "faceenroll verify --state DIR --repair && faceenroll enroll /srv/photos --state DIR ...";
    assert!(readme.contains(line), "the README's repair line changed");
    let script = line
        .replace("DIR", s(&state))
        .replace("/srv/photos", s(&root))
        .replace("...", "--group staff --no-progress");
    let bin = Path::new(support::bin::BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = output(
        support::bin::command("sh")
            .args(["-c", &script])
            .env("PATH", path)
            .env("FACEENROLL_ENDPOINT", &em.endpoint)
            .env("FACEENROLL_APPID", REHEARSAL_APPID)
            .env("TENCENTCLOUD_SECRET_ID", REHEARSAL_SECRET_ID)
            .env("TENCENTCLOUD_SECRET_KEY", REHEARSAL_SECRET_KEY),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("faceenroll: finished"),
        "the enroll ran: {run:?}"
    );
    assert_eq!(em.state().persons["ann"].faces.len(), 2, "{run:?}");

    // Without --repair a difference is still exit 1.
    let gone = em.state().persons["ann"].faces[0].face_id.clone();
    output(
        faceenroll(&[])
            .args(["delete-faces", "ann", &gone, "--yes"])
            .args(["--endpoint", &em.endpoint, "--appid", REHEARSAL_APPID])
            .env("TENCENTCLOUD_SECRET_ID", REHEARSAL_SECRET_ID)
            .env("TENCENTCLOUD_SECRET_KEY", REHEARSAL_SECRET_KEY),
    );
    let (code, text) = support::bin::code_and_text(&mut support::after_command(
        "verify",
        &em.endpoint,
        &state,
        &[],
    ));
    assert_eq!(code, 1, "{text}");
}

#[test]
fn a_manifest_cut_inside_its_last_cell_is_refused_before_any_call() {
    let (dir, root, state, service) = tmp();
    for (i, person) in ["p1", "p5"].iter().enumerate() {
        write(&root.join(format!("{person}-1.png")), &photo(i as u32 + 1));
    }
    let manifest = dir.path().join("hr.csv");
    let whole = format!(
        "person_id,image,group_ids\np1,{},door\np5,{},door\n",
        s(&root.join("p1-1.png")),
        s(&root.join("p5-1.png"))
    );
    // The export arrives cut inside the last cell: `...,d`, no line break.
    std::fs::write(&manifest, &whole[..whole.len() - 4]).unwrap();
    let run = enroll(&manifest, &state, &service, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("hr.csv:3: "),
        "names the file and the line: {}",
        run.stderr
    );
    assert!(run.stderr.contains("no line break"), "{}", run.stderr);
    assert!(!service.exists(), "no call was made: {run:?}");

    // Whole, it is taken.
    std::fs::write(&manifest, &whole).unwrap();
    let run = enroll(&manifest, &state, &service, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    let held = serde_json::from_slice::<faceenroll::emulator::StateSnapshot>(
        &std::fs::read(&service).unwrap(),
    )
    .unwrap();
    assert_eq!(held.persons["p5"].groups, ["door"], "{held:?}");
}

/// The flags that make every call of the in-process emulator answer 213 (an
/// internal error) and give up on it soon.
const ALWAYS_213: [&str; 6] = [
    "--error-213",
    "1",
    "--retry-attempts",
    "2",
    "--retry-max-wait",
    "1",
];

#[test]
fn a_group_change_refused_past_its_retries_is_a_failure_of_the_run() {
    let (dir, root, state, service) = tmp();
    write(&root.join("ann/1.png"), &photo(1));
    let summary = dir.path().join("summary.json");
    let first = enroll(&root, &state, &service, &["--group", "staff"]);
    assert_eq!(first.code, 0, "{first:?}");

    // ann now goes in lab too; the service answers 213 to every call.
    let extra = [
        &[
            "--group",
            "staff",
            "--group",
            "lab",
            "--summary-json",
            s(&summary),
        ][..],
        &ALWAYS_213,
    ]
    .concat();
    let run = enroll(&root, &state, &service, &extra);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stdout
            .contains("1 change of persons' groups, name or tag failed this run"),
        "{}",
        run.stdout
    );
    let figures = json(&summary);
    assert_eq!(
        (
            figures["exit_code"].as_i64(),
            figures["changes_failed"].as_u64()
        ),
        (Some(1), Some(1)),
        "{figures}"
    );

    // The next run, the service well again, brings ann in line.
    let run = enroll(&root, &state, &service, &extra[..6]);
    assert_eq!(run.code, 0, "{run:?}");
    let held = serde_json::from_slice::<faceenroll::emulator::StateSnapshot>(
        &std::fs::read(&service).unwrap(),
    )
    .unwrap();
    let mut groups = held.persons["ann"].groups.clone();
    groups.sort();
    assert_eq!(groups, ["lab", "staff"]);
}

#[test]
fn a_mirror_deletion_refused_past_its_retries_is_a_failure_not_a_fatal_stop() {
    let (dir, root, state, service) = tmp();
    write(&root.join("ann/1.png"), &photo(1));
    write(&root.join("ben/1.png"), &photo(2));
    let summary = dir.path().join("summary.json");
    let mirror = [
        "--group",
        "staff",
        "--mirror",
        "--max-delete",
        "100%",
        "--summary-json",
        s(&summary),
    ];
    let first = enroll(&root, &state, &service, &mirror);
    assert_eq!(first.code, 0, "{first:?}");

    std::fs::remove_dir_all(root.join("ben")).unwrap();
    let run = enroll(
        &root,
        &state,
        &service,
        &[&mirror[..], &ALWAYS_213].concat(),
    );
    assert_eq!(
        run.code, 1,
        "not exit 3, kept for account and network stops: {run:?}"
    );
    assert!(
        run.stdout.contains("Mirror: 1 deletion failed"),
        "{}",
        run.stdout
    );
    let figures = json(&summary);
    assert_eq!(figures["mirror"]["failed"], 1, "{figures}");
    assert_eq!(figures["exit_code"], 1, "{figures}");
    assert!(
        figures["calls"].as_u64().unwrap() >= 2,
        "the mirror's calls are the run's: {figures}"
    );

    // The next night deletes ben.
    let run = enroll(&root, &state, &service, &mirror);
    assert_eq!(run.code, 0, "{run:?}");
    let held = serde_json::from_slice::<faceenroll::emulator::StateSnapshot>(
        &std::fs::read(&service).unwrap(),
    )
    .unwrap();
    assert!(!held.persons.contains_key("ben"), "{held:?}");
    assert!(json(&summary)["calls"].as_u64().unwrap() >= 2, "{run:?}");
}

#[test]
fn max_delete_without_mirror_is_refused_before_any_call() {
    let (_dir, root, state, service) = tmp();
    write(&root.join("ann/1.png"), &photo(1));
    let run = enroll(
        &root,
        &state,
        &service,
        &["--group", "staff", "--max-delete", "5"],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("--max-delete is set without --mirror"),
        "{}",
        run.stderr
    );
    assert!(!service.exists(), "no call was made");
    let by_env = output(
        faceenroll(&[])
            .args(["plan", s(&root), "--group", "staff"])
            .env("FACEENROLL_MAX_DELETE", "5"),
    );
    assert_eq!(by_env.code, 2, "{by_env:?}");
    assert!(
        by_env.stderr.contains("FACEENROLL_MAX_DELETE"),
        "{by_env:?}"
    );
    let with_mirror = enroll(
        &root,
        &state,
        &service,
        &["--group", "staff", "--mirror", "--max-delete", "5"],
    );
    assert_eq!(with_mirror.code, 0, "{with_mirror:?}");
}

#[test]
fn a_header_only_manifest_for_a_job_that_holds_nothing_exits_2_as_an_empty_tree_does() {
    let (dir, root, state, service) = tmp();
    let manifest = dir.path().join("hr.csv");
    std::fs::write(&manifest, "person_id,image,group_ids\n").unwrap();
    let run = enroll(&manifest, &state, &service, &[]);
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("hr.csv") && run.stderr.contains("no row"),
        "{}",
        run.stderr
    );
    assert!(!service.exists(), "no call was made");
    let allowed = enroll(&manifest, &state, &service, &["--allow-empty"]);
    assert_eq!(allowed.code, 0, "{allowed:?}");

    // The empty tree it matches.
    std::fs::create_dir_all(&root).unwrap();
    let tree = enroll(
        &root,
        &dir.path().join("s2"),
        &service,
        &["--group", "staff"],
    );
    assert_eq!(tree.code, 2, "{tree:?}");
}

#[test]
fn the_readmes_mirror_cron_line_run_as_written_deletes_a_leaver_and_exits_0() {
    use faceenroll::emulator::{REHEARSAL_APPID, REHEARSAL_SECRET_ID, REHEARSAL_SECRET_KEY};
    let (dir, root, state, _) = tmp();
    for p in 0..12 {
        write(&root.join(format!("p{p:02}/1.png")), &photo(10 + p));
    }
    let em = support::EmulatorProcess::start(&[], &dir.path().join("emulator.log"));
    let config = dir.path().join("faceenroll.toml");
    std::fs::write(
        &config,
        format!(
            "[service]\nendpoint = \"{}\"\nappid = {REHEARSAL_APPID}\n",
            em.endpoint
        ),
    )
    .unwrap();
    let readme = include_str!("../README.md");
    let cron = "30 1 * * *  faceenroll -q enroll /srv/photos --group staff --mirror \
                --config /etc/faceenroll.toml --state /var/lib/faceenroll/nightly";
    assert!(
        readme.contains(cron),
        "the README's mirror cron line changed"
    );
    let script = cron
        .trim_start_matches("30 1 * * *")
        .replace("/srv/photos", s(&root))
        .replace("/etc/faceenroll.toml", s(&config))
        .replace("/var/lib/faceenroll/nightly", s(&state));
    let bin = Path::new(support::bin::BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let night = || {
        output(
            support::bin::command("sh")
                .args(["-c", &script])
                .env("PATH", &path)
                .env("TENCENTCLOUD_SECRET_ID", REHEARSAL_SECRET_ID)
                .env("TENCENTCLOUD_SECRET_KEY", REHEARSAL_SECRET_KEY),
        )
    };
    let first = night();
    assert_eq!(first.code, 0, "{first:?}");
    assert_eq!(em.state().persons.len(), 12, "{first:?}");
    // p11 leaves: the next night deletes it and exits 0 (`chronic` mails nothing);
    // the mail cron would send holds the summary, without progress lines.
    std::fs::remove_dir_all(root.join("p11")).unwrap();
    let second = night();
    assert_eq!(second.code, 0, "{second:?}");
    assert!(!em.state().persons.contains_key("p11"), "{second:?}");
    assert_eq!(em.state().persons.len(), 11, "{second:?}");
    assert!(
        second
            .stdout
            .contains("Mirror: 1 person and 1 face deleted"),
        "{second:?}"
    );
    assert!(
        !second.stdout.contains("progress:") && !second.stderr.contains("progress:"),
        "{second:?}"
    );
}

#[test]
fn a_progress_database_that_cannot_be_opened_stops_verify_and_rollback_with_3() {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    // A job's state directory whose database is not sled's any more.
    std::fs::create_dir_all(state.join("db")).unwrap();
    std::fs::write(state.join("lock"), "").unwrap();
    std::fs::write(state.join("db/conf"), b"\xff\xfenot a sled config").unwrap();
    std::fs::write(state.join("db/db"), vec![0xa5u8; 4096]).unwrap();
    for (command, extra) in [("verify", &[][..]), ("rollback", &["--yes"][..])] {
        let run = output(
            support::bin::after_command(command, "http://127.0.0.1:1", &state, extra)
                .env_remove("FACEENROLL_CONFIG"),
        );
        assert_eq!(run.code, 3, "{command}: {run:?}");
        assert!(
            run.stderr.contains("progress database"),
            "{command}: {run:?}"
        );
    }
}

#[test]
fn an_entry_the_source_fails_again_for_the_same_reason_is_known_from_earlier_runs() {
    let (_dir, root, state, service) = tmp();
    write(&root.join("ann/1.png"), &photo(1));
    // A photo directly under the tree's root belongs to no person: an entry not taken.
    write(&root.join("stray.png"), &photo(2));
    let group = ["--group", "staff"];
    let first = enroll(&root, &state, &service, &group);
    assert_eq!(first.code, 1, "a new failure: {first:?}");
    let night = enroll(&root, &state, &service, &group);
    assert_eq!(night.code, 0, "{night:?}");
    assert!(
        night.stdout.contains("1 of them known from earlier runs"),
        "{}",
        night.stdout
    );
    let mut strict = group.to_vec();
    strict.push("--strict");
    let strict = enroll(&root, &state, &service, &strict);
    assert_eq!(strict.code, 1, "{strict:?}");
}
