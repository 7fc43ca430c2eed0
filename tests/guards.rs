//! What a job checks before it spends a call, through the binary against a separate
//! emulator: a photo whose header claims too many pixels, outputs that cannot be
//! written, a config file with a table or key the job does not know, and a service
//! whose request limit is small.

mod support;

use support::bin::{output, s, Run};
use support::{enroll_command, photo, report_rows, EmulatorProcess};

use std::path::Path;

/// A person's photos: (file name, bytes).
type Photos<'a> = Vec<(&'a str, Vec<u8>)>;

/// A tree of `persons`, each with its photos, under `dir/photos`.
fn tree(dir: &Path, persons: &[(&str, Photos<'_>)]) -> std::path::PathBuf {
    let root = dir.join("photos");
    for (person, photos) in persons {
        std::fs::create_dir_all(root.join(person)).unwrap();
        for (name, bytes) in photos {
            std::fs::write(root.join(person).join(name), bytes).unwrap();
        }
    }
    root
}

fn emulator(dir: &Path, args: &[&str]) -> EmulatorProcess {
    EmulatorProcess::start(args, &dir.join("emulator.log"))
}

fn enroll(root: &Path, emulator: &EmulatorProcess, state: &Path, extra: &[&str]) -> Run {
    output(
        enroll_command(root, &emulator.endpoint, state)
            .args(["--group", "staff"])
            .args(extra),
    )
}

#[test]
fn a_photo_whose_header_claims_65500_by_65500_pixels_fails_unread_and_unsent() {
    let tmp = tempfile::tempdir().unwrap();
    let bomb = support::jpeg_bomb(65_500, 65_500);
    let root = tree(
        tmp.path(),
        &[
            ("ann", vec![("1.png", photo(1)), ("2.jpg", bomb.clone())]),
            ("bob", vec![("1.jpg", bomb)]),
        ],
    );
    let em = emulator(tmp.path(), &[]);
    let state = tmp.path().join("state");

    let plan = output(support::faceenroll(&[]).args(["plan", s(&root), "--group", "staff"]));
    assert!(
        plan.stdout.contains("65500×65500 pixels"),
        "the plan names it: {plan:?}"
    );

    let run = enroll(&root, &em, &state, &[]);
    assert_eq!(run.code, 1, "{run:?}");
    let rows = report_rows(&state);
    for path in [root.join("ann/2.jpg"), root.join("bob/1.jpg")] {
        let row = rows
            .iter()
            .find(|r| Path::new(&r.image) == path)
            .unwrap_or_else(|| panic!("{} in {rows:#?}", path.display()));
        assert_eq!(row.status, "failed", "{row:?}");
        assert!(row.reason.contains("65500×65500 pixels"), "{row:?}");
        assert!(row.reason.contains("not decoded"), "{row:?}");
    }
    // The service holds ann's face alone; bob, whose only photo is the bomb, was
    // never created.
    let held = em.state();
    assert_eq!(held.persons.keys().collect::<Vec<_>>(), ["ann"]);
    assert_eq!(held.persons["ann"].faces.len(), 1);
}

#[test]
fn an_output_that_cannot_be_written_stops_the_job_before_its_first_call() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tree(tmp.path(), &[("ann", vec![("1.png", photo(1))])]);
    let em = emulator(tmp.path(), &[]);
    let nowhere = tmp.path().join("no-such-folder");
    let a_folder = tmp.path().join("a-folder");
    std::fs::create_dir(&a_folder).unwrap();
    for (flag, path) in [
        ("--summary-json", nowhere.join("summary.json")),
        ("--metrics-file", nowhere.join("faceenroll.prom")),
        ("--metrics-file", a_folder.clone()),
        ("--report", nowhere.join("report.csv")),
    ] {
        let state = tmp.path().join(format!("state{}", flag.len()));
        // -q, as the cron line runs it: the error still shows.
        let run = enroll(&root, &em, &state, &["-q", flag, s(&path)]);
        assert_eq!(run.code, 2, "{flag} {}: {run:?}", path.display());
        assert!(
            run.stderr.contains(&path.display().to_string()),
            "names the path: {run:?}"
        );
        assert!(run.stderr.contains("nothing was sent"), "{run:?}");
    }
    assert_eq!(em.counters().requests, 0, "no call was made");
    assert!(em.state().persons.is_empty());
}

#[test]
fn a_run_that_stops_early_leaves_no_summary_of_an_earlier_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tree(tmp.path(), &[("ann", vec![("1.png", photo(1))])]);
    let em = emulator(tmp.path(), &[]);
    let state = tmp.path().join("state");
    let summary = tmp.path().join("last-summary.json");
    let read = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap()
    };

    let run = enroll(&root, &em, &state, &["--summary-json", s(&summary)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(read()["ending"], "finished: every photo accounted for");

    // The next night's run stops before any call (here: its metrics file's folder is
    // gone); its summary says so, not yesterday's "every photo accounted for".
    let gone = tmp.path().join("gone/faceenroll.prom");
    let run = enroll(
        &root,
        &em,
        &state,
        &["--summary-json", s(&summary), "--metrics-file", s(&gone)],
    );
    assert_eq!(run.code, 2, "{run:?}");
    let stopped = read();
    assert_eq!(stopped["exit_code"], 2, "{stopped}");
    let ending = stopped["ending"].as_str().unwrap();
    assert!(ending.starts_with("stopped before any call"), "{ending}");
    assert!(ending.contains("faceenroll.prom"), "{ending}");

    // So does a run refused at planning: a source that shares no photo with the job
    // (probably a wrong --state).
    let run = enroll(&root, &em, &state, &["--summary-json", s(&summary)]);
    assert_eq!(
        read()["ending"],
        "finished: every photo accounted for",
        "{run:?}"
    );
    let other = tree(
        &tmp.path().join("other"),
        &[("bob", vec![("1.png", photo(2))])],
    );
    let run = enroll(&other, &em, &state, &["--summary-json", s(&summary)]);
    assert_eq!(run.code, 2, "{run:?}");
    assert_eq!(read()["exit_code"], 2);
}

#[test]
fn a_config_file_with_a_misspelled_table_or_a_key_outside_any_table_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tree(tmp.path(), &[("ann", vec![("1.png", photo(1))])]);
    let em = emulator(tmp.path(), &[]);
    let config = tmp.path().join("faceenroll.toml");
    for (text, names) in [
        (
            "[enroll]\nworkers = 2\n\n[servce]\nread_timeout_secs = 5\n",
            "line 4: unknown table [servce] (did you mean [service]?)",
        ),
        (
            "state = \"/srv/x\"\n\n[enroll]\nworkers = 2\n",
            "line 1: the key state is outside any table; it belongs in [enroll]",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        let state = tmp.path().join("state");
        for command in ["enroll", "plan"] {
            let run = if command == "enroll" {
                enroll(&root, &em, &state, &["--config", s(&config)])
            } else {
                output(support::faceenroll(&[]).args([
                    "plan",
                    s(&root),
                    "--group",
                    "staff",
                    "--config",
                    s(&config),
                ]))
            };
            assert_eq!(run.code, 2, "{command}: {run:?}");
            assert!(run.stderr.contains(s(&config)), "{run:?}");
            assert!(run.stderr.contains(names), "{run:?}");
        }
        assert!(!state.exists(), "nothing was started");
    }
    assert_eq!(em.counters().requests, 0);
}

/// `count` photos of 420 × 420 noisy pixels, as PNG: over 500 KB each, and about
/// 95 KB as JPEG at quality 60, so a copy that fits a 60 KB request is also smaller.
fn noisy_photos(dir: &Path, count: u64) -> Photos<'static> {
    (0..count)
        .map(|i| {
            let name: &'static str = ["0.png", "1.png", "2.png", "3.png", "4.png"][i as usize];
            let path = dir.join(name);
            support::write_png(&path, &support::picture(420, 420, 255, i));
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

#[test]
fn under_a_60_kb_request_limit_photos_are_sent_as_smaller_copies_and_the_limit_is_told() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tree(tmp.path(), &[("ann", noisy_photos(tmp.path(), 4))]);
    // Learned from the service's refusals, and given by the operator.
    for given in [None, Some("60000")] {
        let em = emulator(tmp.path(), &["--body-limit", "60000"]);
        let state = tmp.path().join(format!("state-{}", given.is_some()));
        let extra: Vec<&str> = given
            .map(|limit| vec!["--max-request-bytes", limit])
            .unwrap_or_default();
        let run = enroll(&root, &em, &state, &extra);
        assert_eq!(run.code, 0, "{run:?}");
        for row in report_rows(&state) {
            assert_eq!(row.status, "enrolled", "{row:?}");
        }
        assert_eq!(em.state().persons["ann"].faces.len(), 4);
        if given.is_none() {
            let line = run
                .stdout
                .lines()
                .find(|l| l.contains("the service refused bodies over"))
                .unwrap_or_else(|| panic!("the limit learned is told: {run:?}"));
            assert!(
                !line.contains("~0 B") && !line.contains("~0 bytes"),
                "{line}"
            );
            assert!(!line.contains("accepted 0 bytes"), "{line}");
        }
    }
}

#[test]
fn a_limit_under_which_nothing_was_accepted_is_told_as_such() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tree(tmp.path(), &[("ann", noisy_photos(tmp.path(), 1))]);
    let em = emulator(tmp.path(), &["--body-limit", "60000"]);
    let state = tmp.path().join("state");
    // Sent as it is, 500 KB: refused, and no copy may be made.
    let run = enroll(&root, &em, &state, &["--no-resize"]);
    assert_eq!(run.code, 1, "{run:?}");
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("the service refused"))
        .unwrap_or_else(|| panic!("the refusal is told: {run:?}"));
    assert!(!line.contains("~0 B"), "{line}");
    assert!(line.contains("accepted none"), "{line}");
    let rows = report_rows(&state);
    assert!(rows[0].reason.contains("--no-resize"), "{rows:?}");
}

#[test]
fn a_state_directory_deleted_under_a_running_job_stops_it_with_3() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("photos");
    for i in 0..12 {
        let dir = root.join(format!("p{i:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.png"), photo(i)).unwrap();
    }
    let state = tmp.path().join("state");
    let child = support::faceenroll(&[])
        .args(["enroll", s(&root), "--group", "staff", "--emulator"])
        .args(["--no-progress", "--workers", "1", "--latency-ms", "300"])
        .args(["--state", s(&state)])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the job has started calling, its state directory goes (rm -rf).
    let started = std::time::Instant::now();
    while !state.join("progress.json").exists() {
        assert!(started.elapsed().as_secs() < 30, "the job never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(700));
    std::fs::remove_dir_all(&state).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("was deleted or replaced"), "{stderr}");
    assert!(started.elapsed().as_secs() < 10, "it went on: {stderr}");
}
