//! The binary as an operator runs it: a child process, with and without a terminal,
//! against the in-process emulator (`enroll --emulator`) or a separately started
//! `faceenroll emulator`. Each test checks what an operator would look at: the
//! summary, the report, `status`, the exit code, and that no secret is left behind.

mod support;

use faceenroll::report::Row;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use support::bin::{in_repo as faceenroll, output, run, s, Run, BIN, REPO};

/// `enroll SOURCE --group staff --emulator --state STATE EXTRA...`, the rehearsal of
/// the README's first command.
fn rehearse(source: &str, state: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "enroll",
        source,
        "--group",
        "staff",
        "--emulator",
        "--state",
        s(state),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn read_report(text: &str) -> Vec<Row> {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The rows by the photo's path relative to the samples' tree (`carol/03-blank.png`).
fn by_photo(rows: &[Row]) -> BTreeMap<String, Row> {
    rows.iter()
        .map(|r| {
            let at = r.image.find("tree/").expect("a path in a tree") + "tree/".len();
            (r.image[at..].to_owned(), r.clone())
        })
        .collect()
}

/// What the samples are documented to give (samples/README.md).
fn assert_sample_outcomes(rows: &[Row]) {
    assert_eq!(rows.len(), 33, "one row per input photo");
    let photos = by_photo(rows);
    let status = |p: &str| (photos[p].status.as_str(), photos[p].code);
    assert_eq!(status("alice/04-copy-of-01.jpg"), ("duplicate", None));
    for p in ["bob/21.jpg", "bob/22.jpg", "bob/23.jpg"] {
        assert_eq!(status(p), ("skipped", None), "{p}");
        assert!(photos[p].reason.contains("20 faces"), "{:?}", photos[p]);
    }
    assert_eq!(status("carol/03-blank.png"), ("failed", Some(-1101)));
    assert!(photos["carol/03-blank.png"].meaning.contains("no face"));
    assert_eq!(status("carol/04-truncated.jpg"), ("failed", Some(-1102)));
    assert!(photos["carol/04-truncated.jpg"]
        .meaning
        .contains("decode failed"));
    assert_eq!(status("dave/02-not-an-image.jpg"), ("failed", None));
    assert!(photos["dave/02-not-an-image.jpg"]
        .reason
        .contains("not an image"));
    let enrolled: Vec<&Row> = rows.iter().filter(|r| r.status == "enrolled").collect();
    assert_eq!(enrolled.len(), 26);
    for row in enrolled {
        assert!(
            !row.face_id.is_empty() && row.code.is_none() && row.attempts == 1,
            "{row:?}"
        );
    }
    for p in ["alice/01.jpg", "bob/20.jpg", "dave/01.png"] {
        assert_eq!(photos[p].status, "enrolled", "{p}");
    }
}

#[test]
fn a_rehearsal_on_the_samples_sums_up_reports_every_outcome_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let r = rehearse("samples/tree", &state, &[]);
    assert_eq!(r.code, 1, "failed photos exit 1: {r:?}");
    // The summary's figures.
    let summary = &r.stdout;
    for line in [
        "faceenroll: finished with 3 failed photos and 0 left for the next run",
        "persons: 4 in the plan, 4 created and 0 reconciled this run, 0 failed",
        "photos:  33 in the plan: 26 enrolled, 1 duplicate, 3 skipped, 3 failed, 0 pending",
        "1 failed with -1101 (face detection failed: no face found)",
        "1 failed with -1102 (image decode failed)",
        "1 failed without a service code",
        "this run: 28 photos in ",
        "8 calls, 0 retries, 0 rate-limit answers",
    ] {
        assert!(summary.contains(line), "{line:?} not in\n{summary}");
    }
    assert!(summary.contains(&format!("state:  {}", state.display())));
    let report_path = state.join("report.csv");
    assert!(summary.contains(&format!("report: {}", report_path.display())));
    assert!(summary.contains(&format!(
        "next:   faceenroll report --state {} --only failed > failed.csv",
        state.display()
    )));

    // Without a terminal: no bars, a progress line, and each problem named by its
    // person and photo.
    assert!(
        !r.stderr.contains('\r') && !r.stderr.contains("[=="),
        "{}",
        r.stderr
    );
    // The last progress line counts what the summary counts.
    assert!(
        r.stderr.contains(
            "progress: photos 33/33 persons 4/4 enrolled 26 duplicate 1 skipped 3 failed 3"
        ),
        "{}",
        r.stderr
    );
    assert!(
        r.stdout
            .contains("33 in the plan: 26 enrolled, 1 duplicate, 3 skipped, 3 failed, 0 pending"),
        "{}",
        r.stdout
    );
    let refused = r
        .stderr
        .lines()
        .find(|l| l.contains("-1101"))
        .expect("a line for the refused photo");
    assert!(
        refused.contains("carol") && refused.contains("carol/03-blank.png"),
        "{refused}"
    );
    // The default log level leaves out a line per person created: what cron mails
    // is a few lines.
    assert!(!r.stderr.contains("person created"), "{}", r.stderr);
    assert!(r.stderr.lines().count() <= 6, "{}", r.stderr);

    // The report the run left, and `faceenroll report` over the same state.
    let left = std::fs::read_to_string(&report_path).unwrap();
    assert_sample_outcomes(&read_report(&left));
    let r = run(&["report", "--state", s(&state)]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, left);

    for (only, expected) in [
        (
            "failed",
            &[
                "carol/03-blank.png",
                "carol/04-truncated.jpg",
                "dave/02-not-an-image.jpg",
            ][..],
        ),
        ("duplicate", &["alice/04-copy-of-01.jpg"][..]),
        ("skipped", &["bob/21.jpg", "bob/22.jpg", "bob/23.jpg"][..]),
    ] {
        let r = run(&["report", "--state", s(&state), "--only", only]);
        assert_eq!(r.code, 0);
        let rows = read_report(&r.stdout);
        let photos: Vec<String> = by_photo(&rows).into_keys().collect();
        assert_eq!(photos, expected, "--only {only}");
        assert!(rows.iter().all(|row| row.status == only));
    }
    let r = run(&[
        "report",
        "--state",
        s(&state),
        "--only",
        "enrolled",
        "--format",
        "jsonl",
    ]);
    assert_eq!(r.code, 0);
    let rows: Vec<Row> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 26);
    assert!(rows.iter().all(|r| !r.face_id.is_empty()));

    let r = run(&["status", "--state", s(&state)]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("running: no"), "{}", r.stdout);
    assert!(
        r.stdout.contains(
            "33 in the plan: 26 enrolled, 1 duplicate, 3 skipped, 3 failed, 0 left to do"
        ),
        "{}",
        r.stdout
    );
}

#[test]
fn a_manifest_run_names_the_manifest_line_of_each_photo() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A manifest names its groups; --group adds nothing to it.
    let account = dir.path().join("account.json");
    let r = rehearse(
        "samples/manifest.csv",
        &state,
        &["--emulator-state", s(&account)],
    );
    assert_eq!(r.code, 1, "{r:?}");
    let rows = read_report(&std::fs::read_to_string(state.join("report.csv")).unwrap());
    assert_sample_outcomes(&rows);
    // The service holds each person with the manifest's groups, name and tag.
    let held = support::account(&account);
    let person = |id: &str| {
        let p = &held.persons[id];
        (p.groups.join(";"), p.name.as_str(), p.tag.as_str())
    };
    assert_eq!(
        person("alice"),
        ("staff;lab".into(), "Alice Example", "badge-1001")
    );
    assert_eq!(person("carol"), ("visitors".into(), "Carol Example", ""));
    assert_eq!(
        person("dave"),
        ("staff;visitors".into(), "Dave Example", "badge-1004")
    );
    let photos = by_photo(&rows);
    for (photo, line) in [
        ("alice/01.jpg", 2),
        ("carol/03-blank.png", 31),
        ("carol/04-truncated.jpg", 32),
        ("dave/02-not-an-image.jpg", 34),
    ] {
        let row = &photos[photo];
        assert_eq!(row.line, Some(line), "{row:?}");
        assert_eq!(row.source, format!("samples/manifest.csv:{line}"));
    }
    let alice = &photos["alice/01.jpg"];
    assert_eq!(
        (
            alice.group_ids.as_str(),
            alice.person_name.as_str(),
            alice.tag.as_str()
        ),
        ("staff;lab", "Alice Example", "badge-1001")
    );
}

/// Copies the samples' tree to `to`.
fn copy_tree(to: &Path) {
    let from = Path::new(REPO).join("samples/tree");
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.unwrap();
        let target = to.join(entry.path().strip_prefix(&from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn failed_photos_fixed_and_fed_back_as_a_manifest_are_enrolled() {
    // Fed back into the same state directory, and into a new one against the same
    // (emulated) account.
    for same_state in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("tree");
        copy_tree(&tree);
        let state = dir.path().join("state");
        let account = dir.path().join("account.json");
        let again_with = |source: &Path, state: &Path| {
            rehearse(s(source), state, &["--emulator-state", s(&account)])
        };
        assert_eq!(again_with(&tree, &state).code, 1);

        let failed = dir.path().join("failed.csv");
        let r = run(&[
            "report",
            "--state",
            s(&state),
            "--only",
            "failed",
            "--output",
            s(&failed),
        ]);
        assert_eq!(r.code, 0, "{r:?}");
        let rows = read_report(&std::fs::read_to_string(&failed).unwrap());
        assert_eq!(rows.len(), 3);
        // The operator replaces each photo the report names with a good one.
        for (n, row) in rows.iter().enumerate() {
            assert!(Path::new(&row.image).is_file(), "{row:?}");
            std::fs::write(&row.image, support::photo(9000 + n as u32)).unwrap();
        }

        let new_state = dir.path().join("state2");
        let again = if same_state { &state } else { &new_state };
        let r = again_with(&failed, again);
        assert_eq!(r.code, 0, "every fixed photo enrolled: {r:?}");
        // Into the same state, the job still covers the whole archive; into a new one,
        // the job is the three rows.
        let (plan, total) = if same_state {
            (
                "33 in the plan: 29 enrolled, 1 duplicate, 3 skipped, 0 failed",
                33,
            )
        } else {
            (
                "3 in the plan: 3 enrolled, 0 duplicate, 0 skipped, 0 failed",
                3,
            )
        };
        assert!(r.stdout.contains(plan), "{}", r.stdout);
        assert!(
            !r.stdout.contains("next:"),
            "nothing left to fix: {}",
            r.stdout
        );
        let all = read_report(&std::fs::read_to_string(again.join("report.csv")).unwrap());
        assert_eq!(all.len(), total);
        // The service holds each fixed photo, under the face id the report gives.
        let held = support::account(&account);
        for fixed in &rows {
            let row = all.iter().find(|r| r.image == fixed.image).unwrap();
            let person = &held.persons[&row.person_id];
            let face = person.faces.iter().find(|f| f.face_id == row.face_id);
            assert_eq!(
                face.map(|f| f.content_hash.clone()),
                Some(support::hash_of(Path::new(&row.image))),
                "{row:?}"
            );
            assert_eq!(row.status, "enrolled", "{row:?}");
            assert!(!row.face_id.is_empty(), "{row:?}");
        }
        if !same_state {
            // The persons existed on the account: they were reconciled, not created.
            assert!(
                r.stdout.contains("0 created and 2 reconciled this run"),
                "{}",
                r.stdout
            );
        }
    }
}

#[test]
fn a_rehearsal_run_again_against_the_same_account_makes_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let account = dir.path().join("account.json");
    let account_flag = ["--emulator-state", s(&account)];
    let first = rehearse(
        "samples/tree",
        &state,
        &[&account_flag[..], &["--lose-answer", "0.2", "--seed", "7"]].concat(),
    );
    assert_eq!(first.code, 1, "{first:?}");
    let held = support::account(&account);
    let faces: usize = held.persons.values().map(|p| p.faces.len()).sum();
    assert_eq!(faces, 26, "every enrolled photo is held once");
    let second = rehearse("samples/tree", &state, &account_flag);
    assert_eq!(
        second.code, 0,
        "the same 3 photos still failed, as the first run said: nothing new: {second:?}"
    );
    assert!(
        second.stdout.contains("3 of them known from earlier runs"),
        "{}",
        second.stdout
    );
    assert!(
        second.stdout.contains("this run: 0 photos in ")
            && second.stdout.contains("0 calls, 0 retries"),
        "{}",
        second.stdout
    );
    assert!(second.stdout.contains("26 enrolled"), "{}", second.stdout);
    assert_eq!(support::account(&account), held, "the account is as it was");
}

#[test]
fn a_second_run_against_the_same_service_makes_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let emulator = support::EmulatorProcess::start(&["--qps", "0"], &dir.path().join("emu.log"));
    let source = Path::new(REPO).join("samples/tree");
    let enroll = || {
        output(
            support::enroll_command(&source, &emulator.endpoint, &state)
                .args(["--group", "staff"])
                .current_dir(REPO),
        )
    };
    let first = enroll();
    assert_eq!(first.code, 1, "the 3 bad photos failed: {first:?}");
    let counted = emulator.counters();
    assert!(counted.received("addface") > 0, "{counted:?}");
    let second = enroll();
    assert_eq!(
        second.code, 0,
        "only the failures of the first run: {second:?}"
    );
    let after = emulator.counters();
    assert_eq!(
        (after.requests, after.calls),
        (counted.requests, counted.calls),
        "the service saw no call of the second run"
    );
}

#[test]
fn usage_configuration_and_input_errors_exit_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let st = s(&state);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["enroll"], "SOURCE"),
        (
            vec!["enroll", "samples/tree", "--no-such-flag"],
            "--no-such-flag",
        ),
        (
            vec!["enroll", "samples/tree", "--emulator", "--state", st],
            "--group",
        ),
        (
            vec![
                "enroll",
                "samples/none",
                "--group",
                "g",
                "--emulator",
                "--state",
                st,
            ],
            "samples/none",
        ),
        (
            vec![
                "enroll",
                "samples/tree",
                "--group",
                "g",
                "--lose-answer",
                "0.1",
                "--state",
                st,
            ],
            "need --emulator",
        ),
        (
            vec!["enroll", "samples/tree", "--group", "g", "--state", st],
            "no AppID",
        ),
        (
            vec!["report", "--state", s(dir.path())],
            "holds no faceenroll job",
        ),
        (
            vec!["status", "--state", s(dir.path())],
            "holds no faceenroll job",
        ),
    ];
    for (args, message) in cases {
        let r = run(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
    }

    // Config files: missing, not TOML, an unknown key, credentials readable by others.
    let config = dir.path().join("faceenroll.toml");
    let with_config = |text: Option<&str>| {
        if let Some(text) = text {
            std::fs::write(&config, text).unwrap();
        }
        run(&[
            "enroll",
            "samples/tree",
            "--group",
            "g",
            "--emulator",
            "--config",
            s(&config),
            "--state",
            st,
        ])
    };
    let r = with_config(None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read config file"), "{}", r.stderr);
    // Unreadable: a directory where the file should be.
    std::fs::create_dir(&config).unwrap();
    let r = with_config(None);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read config file"), "{}", r.stderr);
    std::fs::remove_dir(&config).unwrap();
    let r = with_config(Some("[enroll\n"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("not valid TOML"), "{}", r.stderr);
    let r = with_config(Some("[enroll]\nworkerz = 2\n"));
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("workerz"), "{}", r.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::write(
            &config,
            "[service]\nsecret_id = \"AKIDx\"\nsecret_key = \"k\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
        let r = with_config(None);
        assert_eq!(r.code, 2);
        assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);
        assert!(!r.stderr.contains("AKIDx"), "{}", r.stderr);
    }
    // None of these made a call or left a report.
    assert!(!state.join("report.csv").exists());
}

#[test]
fn settings_come_from_flags_then_environment_then_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("faceenroll.toml");
    std::fs::write(
        &config,
        "[enroll]\nstate = \"/from/file\"\nworkers = 3\nqps = 7\nmax_edge = 900\n\
         groups = [\"file\"]\nno_resize = true\n",
    )
    .unwrap();
    let r = output(
        faceenroll()
            .args([
                "enroll",
                "samples/tree",
                "--config",
                s(&config),
                "--qps",
                "9",
                "--print-config",
            ])
            .env("FACEENROLL_WORKERS", "4")
            .env("FACEENROLL_QPS", "8")
            .env("FACEENROLL_GROUPS", "env1,env2")
            .env("FACEENROLL_NO_RESIZE", "false"),
    );
    assert_eq!(r.code, 0, "{r:?}");
    let printed: toml::Table = r.stdout.parse().unwrap();
    let enroll = printed["enroll"].as_table().unwrap();
    assert_eq!(enroll["qps"].as_integer(), Some(9), "flag over env");
    assert_eq!(enroll["workers"].as_integer(), Some(4), "env over file");
    assert_eq!(
        enroll["max_edge"].as_integer(),
        Some(900),
        "file over default"
    );
    assert_eq!(enroll["state"].as_str(), Some("/from/file"));
    assert_eq!(enroll["no_resize"].as_bool(), Some(false), "env over file");
    assert_eq!(
        enroll["groups"].as_array().unwrap(),
        &vec![toml::Value::from("env1"), toml::Value::from("env2")]
    );
    assert_eq!(enroll["retry_attempts"].as_integer(), Some(6), "default");
}

#[cfg(unix)]
#[test]
fn print_config_shows_the_service_table_without_credentials() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("faceenroll.toml");
    std::fs::write(
        &config,
        "[service]\nappid = \"1250000000\"\nread_timeout_secs = 5\n\
         secret_id = \"AKIDfilesecret\"\nsecret_key = \"filekeysecret\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = output(
        faceenroll()
            .args([
                "enroll",
                "samples/tree",
                "--config",
                s(&config),
                "--connect-timeout",
                "3",
                "--print-config",
            ])
            .env("FACEENROLL_ENDPOINT", "https://env.example")
            .env("TENCENTCLOUD_SECRET_KEY", "envkeysecret"),
    );
    assert_eq!(r.code, 0, "{r:?}");
    for secret in ["AKIDfilesecret", "filekeysecret", "envkeysecret", "secret_"] {
        assert!(!r.stdout.contains(secret), "{secret}: {}", r.stdout);
    }
    let printed: toml::Table = r.stdout.parse().unwrap();
    let service = printed["service"].as_table().unwrap();
    assert_eq!(service["endpoint"].as_str(), Some("https://env.example"));
    assert_eq!(service["appid"].as_str(), Some("1250000000"));
    assert_eq!(service["read_timeout_secs"].as_integer(), Some(5), "file");
    assert_eq!(
        service["connect_timeout_secs"].as_integer(),
        Some(3),
        "flag"
    );
    assert_eq!(
        service["signature_validity_secs"].as_integer(),
        Some(14400),
        "default"
    );
    assert_eq!(service["allow_insecure_http"].as_bool(), Some(false));
    assert!(printed["enroll"].as_table().is_some());
}

#[test]
fn plan_and_a_dry_run_print_the_same_plan_from_flags_environment_or_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("faceenroll.toml");
    std::fs::write(
        &config,
        "[enroll]\ngroups = [\"staff\"]\nmax_photo_bytes = 2000\n",
    )
    .unwrap();
    type Way<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);
    let ways: [Way; 3] = [
        (
            "flags",
            vec!["--group", "staff", "--max-photo-bytes", "2000"],
            vec![],
        ),
        (
            "environment",
            vec![],
            vec![
                ("FACEENROLL_GROUPS", "staff"),
                ("FACEENROLL_MAX_PHOTO_BYTES", "2000"),
            ],
        ),
        ("config file", vec!["--config", s(&config)], vec![]),
    ];
    let mut plans = Vec::new();
    for (i, (way, flags, vars)) in ways.iter().enumerate() {
        let state = dir.path().join(format!("state-{i}"));
        let mut plan = faceenroll();
        plan.args(["plan", "samples/tree"])
            .args(flags)
            .envs(vars.iter().copied());
        let plan = output(&mut plan);
        let mut dry = faceenroll();
        dry.args(["enroll", "samples/tree", "--dry-run", "--state", s(&state)])
            .args(flags)
            .envs(vars.iter().copied());
        let dry = output(&mut dry);
        assert_eq!(plan.code, 0, "plan, settings from {way}: {plan:?}");
        assert_eq!(dry.code, 0, "dry run, settings from {way}: {dry:?}");
        assert_eq!(plan.stdout, dry.stdout, "settings from {way}");
        // The group and the photo budget were both taken.
        assert!(
            plan.stdout.contains("4 to create"),
            "{way}: {}",
            plan.stdout
        );
        assert!(
            plan.stdout.contains("re-encoded to fit 3"),
            "{way}: {}",
            plan.stdout
        );
        plans.push(plan.stdout);
    }
    assert!(plans.iter().all(|p| *p == plans[0]), "{plans:#?}");
    // Without a group the tree is refused, by both.
    let r = run(&["plan", "samples/tree"]);
    assert_eq!(r.code, 2, "{r:?}");
}

/// Runs the shell `command` (`$BIN` is faceenroll) with `dir` mounted read-only
/// over itself, in a mount namespace of its own (`unshare`, util-linux), so nothing
/// can be written there whoever runs the test.
fn on_read_only(dir: &Path, command: &str, tmpdir: &Path) -> Run {
    assert!(
        Command::new("unshare").arg("--version").output().is_ok(),
        "this test needs `unshare` (util-linux)"
    );
    let script = format!(
        "mount --bind -o ro '{d}' '{d}' && {command}",
        d = dir.display()
    );
    let mut cmd = support::bin::command("unshare");
    cmd.args(["-rm", "sh", "-c", &script])
        .current_dir(REPO)
        .env("TMPDIR", tmpdir)
        .env("BIN", BIN);
    output(&mut cmd)
}

#[test]
fn status_and_report_read_a_state_directory_that_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let r = rehearse("samples/tree", &state, &[]);
    assert_eq!(r.code, 1, "{r:?}");
    let expected = read_report(&run(&["report", "--state", s(&state)]).stdout);
    let listing = || {
        let mut out: Vec<_> = walkdir::WalkDir::new(&state)
            .sort_by_file_name()
            .into_iter()
            .map(|e| {
                let e = e.unwrap();
                let m = e.metadata().unwrap();
                (e.path().to_owned(), m.len(), m.modified().unwrap())
            })
            .collect();
        out.sort();
        out
    };
    let before = listing();

    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let probe = on_read_only(&state, &format!("touch '{}/x'", s(&state)), &tmp);
    assert!(
        probe.stderr.contains("Read-only file system"),
        "the mount is read-only: {probe:?}"
    );

    let r = on_read_only(
        &state,
        &format!("exec \"$BIN\" status --state '{}'", s(&state)),
        &tmp,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("26 enrolled"), "{}", r.stdout);
    assert!(
        r.stderr.contains("cannot be written here; reading a copy"),
        "{}",
        r.stderr
    );
    let r = on_read_only(
        &state,
        &format!("exec \"$BIN\" report --state '{}'", s(&state)),
        &tmp,
    );
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(read_report(&r.stdout), expected);
    assert_eq!(listing(), before, "the state directory is left as it was");

    // With nowhere to copy it to either, a clear error.
    let r = on_read_only(
        &state,
        &format!("exec \"$BIN\" status --state '{}'", s(&state)),
        &state,
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr
            .contains(&format!("{}: it cannot be written, and copying", s(&state)))
            || r.stderr
                .contains("it cannot be written, and copying its progress database"),
        "{}",
        r.stderr
    );
    assert_eq!(
        std::fs::read_dir(&tmp).unwrap().count(),
        0,
        "no copy is left"
    );
}

#[test]
fn a_plan_with_more_persons_than_a_group_holds_says_so_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("big.csv");
    let mut text = String::from("person_id,image,group_ids\n");
    let persons = faceenroll::limits::MAX_PERSONS_PER_GROUP + 1;
    for i in 0..persons {
        let also = if i < 10 { ";few" } else { "" };
        text.push_str(&format!("p{i:05},https://127.0.0.1/{i}.jpg,big{also}\n"));
    }
    std::fs::write(&manifest, text).unwrap();
    let r = run(&["plan", s(&manifest)]);
    assert_eq!(r.code, 0, "{r:?}");
    let expected = format!(
        "group \"big\": {persons} persons in this plan: a group holds at most {} persons \
         (-1310 past it), so at least 1 of them will fail",
        faceenroll::limits::MAX_PERSONS_PER_GROUP
    );
    assert!(r.stdout.contains("Group limits:"), "{}", r.stdout);
    assert!(r.stdout.contains(&expected), "{}", r.stdout);
    assert!(!r.stdout.contains("group \"few\""), "{}", r.stdout);
}

#[test]
fn a_comma_list_of_groups_is_split_as_the_variable_is() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let account = dir.path().join("account.json");
    let r = run(&[
        "enroll",
        "samples/tree",
        "--group",
        "staff,lab",
        "--emulator",
        "--emulator-state",
        s(&account),
        "--state",
        s(&state),
    ]);
    // The samples' three failures, and no photo failed for its group.
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!r.stderr.contains("comma"), "{r:?}");
    let rows = read_report(&std::fs::read_to_string(state.join("report.csv")).unwrap());
    assert_sample_outcomes(&rows);
    let held = support::account(&account);
    assert_eq!(held.persons["alice"].groups, ["staff", "lab"]);
    // A comma left inside a file's list item is refused at once, not per photo.
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[enroll]\ngroups = [\"staff,lab\"]\n").unwrap();
    let r = run(&["plan", "samples/tree", "--config", s(&config)]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("group \"staff,lab\" holds a comma"),
        "{r:?}"
    );
}

#[test]
fn an_appid_with_a_letter_is_refused_where_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[service]\nappid = \"125000000O\"\n").unwrap();
    let base = [
        "enroll",
        "samples/tree",
        "--group",
        "g",
        "--state",
        s(&state),
    ];
    // The flags, the environment, and what the message names.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 3] = [
        (&["--appid", "125000000O"], &[], "'--appid <APPID>'"),
        (
            &[],
            &[("FACEENROLL_APPID", "125000000O")],
            "FACEENROLL_APPID=125000000O",
        ),
        (
            &["--config", s(&config)],
            &[],
            "[service] appid = \"125000000O\"",
        ),
    ];
    for (args, env, names) in cases {
        let mut cmd = faceenroll();
        cmd.args(base).args(args).env_remove("FACEENROLL_APPID");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let r = output(&mut cmd);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains(names), "{r:?}");
        assert!(r.stderr.contains("digits only"), "{r:?}");
        assert!(!state.exists(), "nothing was started: {r:?}");
    }
}

#[test]
fn verbose_shows_what_its_help_says() {
    let help = run(&["--help"]);
    let words = help.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains("-v adds the plan's outline, a line per person created or reconciled"),
        "{help:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    let r = run(&[
        "-v",
        "enroll",
        "samples/tree",
        "--group",
        "staff",
        "--emulator",
        "--state",
        s(&dir.path().join("state")),
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    // A line per person created (4), not one per photo enrolled (26).
    let created = r.stderr.matches("person created").count();
    assert_eq!(created, 4, "{}", r.stderr);
    assert!(r.stderr.contains("INFO plan: 28 photos"), "{}", r.stderr);
    assert!(
        r.stderr.contains("INFO progress: photos 33/33"),
        "{}",
        r.stderr
    );
}
