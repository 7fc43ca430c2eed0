//! The job as a process against a separately started `faceenroll emulator`, and as
//! an operator watches it: refused credentials, no secret left behind, `status`
//! while it runs, Ctrl-C, the terminal's bars, `--help` and the log lines.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::bin::{in_repo as faceenroll, output, run, s, EmulatorProcess, Run, BIN, REPO};

const SECRET_ID: &str = "AKIDcliTestSecretId0123456789abcdef";
const SECRET_KEY: &str = "cliTestSecretKey-9f8e7d6c5b4a";

fn enroll_against(emulator: &EmulatorProcess, id: &str, key: &str, state: &Path) -> Run {
    output(
        faceenroll()
            .args([
                "-vvv",
                "enroll",
                "samples/tree",
                "--group",
                "staff",
                "--endpoint",
                &emulator.endpoint,
                "--appid",
                "1250000000",
                "--state",
                s(state),
            ])
            .env("TENCENTCLOUD_SECRET_ID", id)
            .env("TENCENTCLOUD_SECRET_KEY", key),
    )
}

#[test]
fn refused_credentials_stop_the_job_with_exit_3_and_it_resumes() {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("emulator.log");
    let emulator = EmulatorProcess::with_credentials(SECRET_ID, SECRET_KEY, &[], &log);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // An unknown SecretId (11), then a known one with the wrong key (14).
    for (id, key, code) in [
        ("AKIDsomeoneElse000000000000000000", SECRET_KEY, "11"),
        (SECRET_ID, "not-the-key", "14"),
    ] {
        let r = enroll_against(&emulator, id, key, &state);
        assert_eq!(r.code, 3, "{r:?}");
        assert!(
            r.stdout.contains("stopped by a fatal service error: ")
                && r.stdout.contains(&format!("the service answered {code}")),
            "{}",
            r.stdout
        );
        assert!(r.stdout.contains("28 pending"), "{}", r.stdout);
        // The advice fits a stop: resume, not "fix them, then enroll failed.csv".
        assert!(
            r.stdout.contains(
                "next:   fix what stopped the job (above), then run the same command \
                 again: it resumes where it stopped"
            ),
            "{}",
            r.stdout
        );
        assert!(!r.stdout.contains("failed.csv"), "{}", r.stdout);
    }
    let r = enroll_against(&emulator, SECRET_ID, SECRET_KEY, &state);
    assert_eq!(r.code, 1, "resumed with the right credentials: {r:?}");
    assert!(r.stdout.contains("26 enrolled"), "{}", r.stdout);
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn no_secret_appears_in_any_output_or_file_a_run_leaves() {
    // The emulator's log is kept apart from the files searched for secrets.
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("emulator.log");
    let emulator =
        EmulatorProcess::with_credentials(SECRET_ID, SECRET_KEY, &["--lose-answer", "0.1"], &log);
    let dir = tempfile::tempdir().unwrap();
    let mut outputs = Vec::new();
    // A run refused for its key, one that succeeds, and one whose credentials
    // come from a config file, all at the most verbose log level.
    let state = dir.path().join("state");
    outputs.push(enroll_against(
        &emulator,
        SECRET_ID,
        "wrong-key-0000",
        &state,
    ));
    outputs.push(enroll_against(&emulator, SECRET_ID, SECRET_KEY, &state));
    let config = dir.path().join("faceenroll.toml");
    std::fs::write(
        &config,
        format!("[service]\nsecret_id = \"{SECRET_ID}\"\nsecret_key = \"{SECRET_KEY}\"\n"),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let state2 = dir.path().join("state2");
    outputs.push(output(faceenroll().args([
        "-vvv",
        "enroll",
        "samples/manifest.csv",
        "--endpoint",
        &emulator.endpoint,
        "--appid",
        "1250000000",
        "--config",
        s(&config),
        "--state",
        s(&state2),
    ])));
    assert_eq!(
        outputs.iter().map(|r| r.code).collect::<Vec<_>>(),
        [3, 1, 1],
        "{outputs:?}"
    );
    for state in [&state, &state2] {
        outputs.push(run(&["status", "--state", s(state)]));
        outputs.push(run(&["report", "--state", s(state), "--format", "jsonl"]));
    }
    for secret in [SECRET_ID, SECRET_KEY] {
        for r in &outputs {
            assert!(!r.stdout.contains(secret), "stdout holds a secret: {r:?}");
            assert!(!r.stderr.contains(secret), "stderr holds a secret: {r:?}");
        }
        let files: Vec<PathBuf> = files_under(&state)
            .into_iter()
            .chain(files_under(&state2))
            .collect();
        assert!(files.iter().any(|f| f.ends_with("report.csv")));
        assert!(files.iter().any(|f| f.starts_with(state.join("db"))));
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !contains(&bytes, secret),
                "{} holds a secret",
                file.display()
            );
        }
    }
    // The verbose logs did log calls: the check above looked at real output.
    assert!(
        outputs[1].stderr.contains("person created"),
        "{}",
        outputs[1].stderr
    );
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "waited for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_running_job_shows_in_status_locks_out_a_second_one_and_stops_on_sigint_with_130() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let slow = [
        "enroll",
        "samples/tree",
        "--group",
        "staff",
        "--emulator",
        "--state",
        s(&state),
        // 7 calls of a second each: the run is still going when it is interrupted.
        "--latency-ms",
        "1000",
        "--workers",
        "1",
        "--progress-interval",
        "1",
    ];
    let out = std::fs::File::create(dir.path().join("stdout")).unwrap();
    let err = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let mut job = faceenroll()
        .args(slow)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    let pid = job.id().to_string();
    wait_for("two seconds of work", || {
        std::fs::read(state.join("progress.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .is_some_and(|p| {
                p["photos_done"].as_u64() >= Some(1) && p["elapsed_secs"].as_u64() >= Some(2)
            })
    });

    let r = run(&["status", "--state", s(&state)]);
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.contains(&format!("running: yes (pid {pid})")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("/33 done"), "{}", r.stdout);

    let second = run(&slow);
    assert_eq!(second.code, 2, "{second:?}");
    assert!(
        second
            .stderr
            .contains(&format!("in use by another faceenroll job (pid {pid})")),
        "{}",
        second.stderr
    );
    let r = run(&["report", "--state", s(&state)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("faceenroll status"), "{}", r.stderr);

    let kill = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(kill.success());
    let status = job.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let stdout = std::fs::read_to_string(dir.path().join("stdout")).unwrap();
    assert!(stdout.contains("faceenroll: interrupted"), "{stdout}");
    assert!(stdout.contains(" pending"), "{stdout}");
    // Without a terminal: a progress line every --progress-interval, and at the end.
    let stderr = std::fs::read_to_string(dir.path().join("stderr")).unwrap();
    let lines = stderr
        .lines()
        .filter(|l| l.contains("progress: photos"))
        .count();
    assert!(lines >= 2, "{stderr}");
    assert!(
        stderr.contains("stopping: finishing the calls in flight"),
        "{stderr}"
    );

    let r = run(&["status", "--state", s(&state)]);
    assert!(r.stdout.contains("running: no"), "{}", r.stdout);
    assert!(r.stdout.contains("last run: interrupted"), "{}", r.stdout);

    // Resumed, it finishes the job.
    let r = run(&slow[..7]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("26 enrolled"), "{}", r.stdout);
}

#[test]
fn at_a_terminal_the_job_draws_bars_and_ends_with_the_summary() {
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "this test needs `script` (util-linux; Debian: bsdutils), which .ci/run installs"
    );
    let dir = tempfile::tempdir().unwrap();
    let command = format!(
        "{BIN} enroll samples/tree --group staff --emulator --state {} --latency-ms 200 -v",
        dir.path().join("state").display()
    );
    let out = support::bin::command("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(REPO)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{screen}");
    for part in ["photos [", "persons [", "33/33", "enrolled 26", "/s"] {
        assert!(
            screen.contains(part),
            "{part:?} not on the screen:\n{screen}"
        );
    }
    // Log lines are written whole, between bar redraws.
    for line in screen.lines().filter(|l| l.contains("person created")) {
        assert!(
            !line.contains("photos ["),
            "a log line and a bar share a line: {line:?}"
        );
    }
    assert!(
        screen.contains("faceenroll: finished with 3 failed photos"),
        "{screen}"
    );
    assert!(screen.contains("report: "), "{screen}");
}

#[test]
fn every_help_shows_the_one_exit_table() {
    let table = faceenroll::exit::help();
    for args in [
        &["--help"][..],
        &["enroll", "--help"],
        &["verify", "--help"],
        &["rollback", "--help"],
        &["plan", "--help"],
        &["status", "--help"],
        &["report", "--help"],
        &["groups", "--help"],
        &["delete-person", "--help"],
        &["sign", "--help"],
        &["emulator", "--help"],
    ] {
        let r = run(args);
        assert_eq!(r.code, 0);
        assert!(r.stdout.contains(&table), "{args:?}:\n{}", r.stdout);
        for code in ["0 ", "1 ", "2 ", "3 ", "4 ", "130"] {
            assert!(
                r.stdout.contains(&format!("\n  {code}")),
                "{args:?} lacks exit code {code}"
            );
        }
    }
}

#[test]
fn log_lines_follow_v_q_and_rust_log_and_always_name_their_person() {
    let dir = tempfile::tempdir().unwrap();
    let stderr_with = |flags: &[&str], rust_log: Option<&str>| {
        let state = tempfile::tempdir_in(dir.path()).unwrap().keep();
        let mut cmd = faceenroll();
        cmd.args(flags).args([
            "enroll",
            "samples/tree",
            "--group",
            "staff",
            "--emulator",
            "--state",
            s(&state),
        ]);
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        let r = output(&mut cmd);
        assert_eq!(r.code, 1, "{r:?}");
        assert!(
            r.stdout.contains("26 enrolled"),
            "the summary, whatever the log level"
        );
        r.stderr
    };
    let refused = |stderr: &str| {
        stderr
            .lines()
            .find(|l| l.contains("-1101"))
            .map(str::to_owned)
    };

    let quiet = stderr_with(&["-q"], None);
    assert!(quiet.is_empty(), "{quiet}");

    let verbose = stderr_with(&["-v"], None);
    assert_eq!(verbose.matches("person created").count(), 4, "{verbose}");

    let warnings = stderr_with(&[], Some("warn"));
    assert!(!warnings.contains("INFO"), "{warnings}");
    let line = refused(&warnings).expect("the refused photo is logged");
    assert!(
        line.contains("carol") && line.contains("03-blank.png"),
        "{line}"
    );

    let debug = stderr_with(&[], Some("faceenroll=debug"));
    assert!(debug.contains("DEBUG"), "{debug}");
}

/// The text a terminal of `width` columns shows after `bytes`: printable
/// characters (wrapping at the right edge as xterm does, once the next one comes),
/// CR, LF, cursor up and down, erase line and erase below; colours and other
/// controls change nothing on screen.
fn screen_after(bytes: &[u8], width: usize) -> Vec<String> {
    let mut rows: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col, mut pending_wrap) = (0usize, 0usize, false);
    let mut chars = String::from_utf8_lossy(bytes)
        .chars()
        .collect::<Vec<_>>()
        .into_iter();
    while let Some(c) = chars.next() {
        match c {
            '\r' => (col, pending_wrap) = (0, false),
            '\n' => (row, pending_wrap) = (row + 1, false),
            '\x1b' => {
                if chars.next() != Some('[') {
                    continue;
                }
                let mut params = String::new();
                let command = loop {
                    match chars.next() {
                        Some(p) if p.is_ascii_digit() || p == ';' || p == '?' => params.push(p),
                        other => break other,
                    }
                };
                let n = params.parse::<usize>().unwrap_or(1).max(1);
                pending_wrap = false;
                match command {
                    Some('A') => row = row.saturating_sub(n),
                    Some('B') => row += n,
                    Some('K') if params == "2" => rows[row].clear(),
                    Some('K') => rows[row].truncate(col),
                    Some('J') => {
                        rows[row].truncate(col);
                        rows.truncate(row + 1);
                    }
                    _ => {}
                }
            }
            c if c.is_control() => {}
            c => {
                if pending_wrap {
                    (row, col, pending_wrap) = (row + 1, 0, false);
                }
                while rows.len() <= row {
                    rows.push(Vec::new());
                }
                let line = &mut rows[row];
                if line.len() <= col {
                    line.resize(col + 1, ' ');
                }
                line[col] = c;
                if col + 1 == width {
                    pending_wrap = true;
                } else {
                    col += 1;
                }
            }
        }
        while rows.len() <= row {
            rows.push(Vec::new());
        }
    }
    rows.into_iter()
        .map(|r| r.into_iter().collect::<String>().trim_end().to_owned())
        .collect()
}

#[test]
fn ctrl_c_at_a_terminal_leaves_no_stale_bar_line() {
    assert!(
        Command::new("script").arg("--version").output().is_ok(),
        "this test needs `script` (util-linux; Debian: bsdutils), which .ci/run installs"
    );
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // A terminal of 100 columns; calls of a second each, so the run is going when
    // Ctrl-C is typed.
    let command = format!(
        "stty cols 100 rows 40; exec {BIN} enroll samples/tree --group staff --emulator \
         --state {} --latency-ms 1000 --workers 1",
        state.display()
    );
    let mut job = support::bin::command("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(REPO)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut keyboard = job.stdin.take().unwrap();
    let mut screen = job.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut screen, &mut bytes).unwrap();
        bytes
    });
    wait_for("a photo done", || {
        std::fs::read(state.join("progress.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .is_some_and(|p| p["photos_done"].as_u64() >= Some(1))
    });
    // Past a redraw or two, then Ctrl-C as typed at the keyboard.
    std::thread::sleep(Duration::from_millis(600));
    std::io::Write::write_all(&mut keyboard, b"\x03").unwrap();
    let status = job.wait().unwrap();
    drop(keyboard);
    let bytes = reader.join().unwrap();
    let shown = screen_after(&bytes, 100);
    let text = shown.join("\n");
    assert_eq!(status.code(), Some(130), "{text}");
    assert!(text.contains("faceenroll: interrupted"), "{text}");
    assert!(text.contains("stopping: finishing the calls"), "{text}");
    for bar in ["photos [", "persons ["] {
        let lines = shown.iter().filter(|l| l.contains(bar)).count();
        assert_eq!(lines, 1, "{bar:?} on {lines} lines:\n{text}");
    }
}
