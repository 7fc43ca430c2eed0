//! Every wait of a job is bounded, and said: a service that accepts and never
//! answers stops the job (exit 3) after the limit of unanswered time, the state
//! resumable; a service that restarts (refused connections for seconds) is ridden
//! through; a photo that is not a regular file (a FIFO) fails alone instead of
//! hanging the job; a signal ends every command with its code, a summary and the end
//! ping, and no person is started after it.
//!
//! The binary runs against `faceenroll emulator` as a separate process. No test
//! asserts a speed: each child has a generous outer timeout, only so that a
//! regression fails instead of hanging the suite.

mod support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{archive_faces, enroll_command, held_faces, Archive, EmulatorProcess};

/// Long enough for any of these runs on a loaded machine; a hang takes longer.
const OUTER_TIMEOUT: Duration = Duration::from_secs(240);

/// Waits for `child` to end within [`OUTER_TIMEOUT`], killing it (and failing) if
/// it does not; answers its output.
fn finish(mut child: Child, what: &str) -> Output {
    let deadline = Instant::now() + OUTER_TIMEOUT;
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} did not end within {OUTER_TIMEOUT:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts `cmd` with its output piped.
fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs `cmd` to its end: its exit code, stdout and stderr.
fn run(cmd: &mut Command, what: &str) -> (i32, String, String) {
    let out = finish(spawn(cmd), what);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sets the faults of a running emulator.
fn set_faults(emulator: &EmulatorProcess, json: &str) {
    ureq::put(&format!("{}/_emulator/faults", emulator.endpoint))
        .send_string(json)
        .unwrap();
}

fn enroll(archive: &Archive, endpoint: &str, extra: &[&str]) -> Command {
    let mut cmd = enroll_command(&archive.root(), endpoint, &archive.state());
    cmd.args(["--group", "staff"]).args(extra);
    cmd
}

#[test]
fn a_service_that_never_answers_stops_the_job_with_exit_3_and_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(&[], &dir.path().join("emulator.log"));
    let archive = Archive::new();
    archive.fill(3, 2, 1);
    set_faults(&emulator, r#"{"hang": 1.0}"#);
    // Short timeouts and a short limit, so the test is quick; few attempts, so a
    // job that only spent each call's attempts would leave the persons for the next
    // run (exit 1) well within the outer timeout.
    let settings = [
        "--read-timeout",
        "1",
        "--connect-timeout",
        "1",
        "--retry-attempts",
        "2",
        "--workers",
        "2",
    ];
    let mut cmd = enroll(&archive, &emulator.endpoint, &settings);
    cmd.env("FACEENROLL_UNANSWERED_LIMIT", "4");
    let (code, stdout, stderr) = run(&mut cmd, "enroll against a hung service");
    assert_eq!(code, 3, "a network stop\n{stdout}\n{stderr}");
    let said = format!("{stdout}{stderr}");
    assert!(said.contains("answered no call"), "{said}");
    assert!(said.contains("--unanswered-limit"), "the remedy: {said}");
    assert!(said.contains("run the same command again"), "{said}");
    assert!(emulator.counters().faults.hang > 0);
    assert!(emulator.state().persons.is_empty(), "no call was answered");

    set_faults(&emulator, "{}");
    let (code, stdout, stderr) = run(
        &mut enroll(&archive, &emulator.endpoint, &settings),
        "the rerun",
    );
    assert_eq!(code, 0, "the rerun completes\n{stdout}\n{stderr}");
    assert_eq!(held_faces(&emulator.state()), archive_faces(&archive, &[]));
}

/// A free loopback port: bound, read and let go.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `faceenroll emulator` on `port`, keeping its account in `state`.
fn emulator_on(port: u16, state: &Path, log: &Path) -> Child {
    let mut cmd = support::bin::command(support::BIN);
    cmd.args([
        "emulator",
        "--bind",
        &format!("127.0.0.1:{port}"),
        "--strict",
    ])
    .arg("--state-file")
    .arg(state)
    .args(["--latency-ms", "100"])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(log).unwrap());
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the emulator did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn terminate(child: &mut Child) {
    // SAFETY: a signal to a child process this test owns and has not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    child.wait().unwrap();
}

#[test]
fn a_service_restart_of_five_seconds_mid_run_does_not_stop_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let account = dir.path().join("account.json");
    let mut service = emulator_on(port, &account, &dir.path().join("first.log"));
    let endpoint = format!("http://127.0.0.1:{port}");
    let archive = Archive::new();
    archive.fill(60, 2, 1);
    let job = spawn(&mut enroll(&archive, &endpoint, &["--workers", "2"]));
    // Let the job make good calls first, then take the service away for 5 s.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&account).is_ok_and(|s| s.contains("person0")) {
        assert!(Instant::now() < deadline, "the job made no call");
        std::thread::sleep(Duration::from_millis(20));
    }
    terminate(&mut service);
    std::thread::sleep(Duration::from_secs(5));
    let mut service = emulator_on(port, &account, &dir.path().join("second.log"));
    let out = finish(job, "enroll across a restart");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the restart was ridden through\n{stdout}\n{stderr}"
    );
    terminate(&mut service);
    let state = support::account(&account);
    assert_eq!(held_faces(&state), archive_faces(&archive, &[]));
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_fifo_in_a_manifest_fails_alone_and_never_hangs_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(&[], &dir.path().join("emulator.log"));
    let photos = dir.path().join("photos");
    std::fs::create_dir(&photos).unwrap();
    std::fs::write(photos.join("ann.png"), support::photo(1)).unwrap();
    std::fs::write(photos.join("bob.png"), support::photo(2)).unwrap();
    mkfifo(&photos.join("pipe.jpg"));
    let manifest = photos.join("manifest.csv");
    std::fs::write(
        &manifest,
        "person_id,image,group_ids\nann,ann.png,staff\nann,pipe.jpg,staff\nbob,pipe.jpg,staff\n\
         bob,bob.png,staff\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    let mut cmd = enroll_command(&manifest, &emulator.endpoint, &state);
    cmd.arg("--no-content-check");
    let (code, stdout, stderr) = run(&mut cmd, "enroll with a FIFO in its manifest");
    assert_eq!(code, 1, "the FIFO failed, the rest in\n{stdout}\n{stderr}");
    let rows = support::report_rows(&state);
    let piped: Vec<_> = rows
        .iter()
        .filter(|r| r.image.ends_with("pipe.jpg"))
        .collect();
    assert_eq!(piped.len(), 2, "{rows:?}");
    for row in piped {
        assert_eq!(row.status, "failed", "{row:?}");
        assert!(row.reason.contains("not a regular file"), "{row:?}");
    }
    let held = held_faces(&emulator.state());
    assert_eq!(held.len(), 2, "ann and bob are in: {held:?}");
}

/// A monitor on 127.0.0.1 that answers 200 to everything and keeps the request
/// lines (`GET /run/130 HTTP/1.1`).
struct Monitor {
    url: String,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Monitor {
    fn start() -> Monitor {
        use std::io::{BufRead as _, Write as _};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/run", listener.local_addr().unwrap());
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                kept.lock().unwrap().push(first.trim().to_owned());
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"
                );
            }
        });
        Monitor { url, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// Calls of `name` the emulator has received.
fn calls(emulator: &EmulatorProcess, name: &str) -> u64 {
    emulator
        .counters()
        .calls
        .get(name)
        .copied()
        .unwrap_or_default()
}

/// Waits until the emulator has received `at_least` calls of `name`.
fn wait_for_calls(emulator: &EmulatorProcess, name: &str, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while calls(emulator, name) < at_least {
        assert!(Instant::now() < deadline, "fewer than {at_least} {name}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn signal(child: &Child, signal: libc::c_int) {
    // SAFETY: a signal to a child process this test owns and has not reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, signal);
    }
}

#[test]
fn a_signal_ends_enroll_with_130_its_summary_and_the_end_ping_and_no_person_after_it() {
    for (name, sig) in [
        ("SIGTERM", libc::SIGTERM),
        ("SIGINT", libc::SIGINT),
        ("SIGHUP", libc::SIGHUP),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let emulator = EmulatorProcess::start(&["--latency-ms", "200"], &dir.path().join("log"));
        let monitor = Monitor::start();
        let archive = Archive::new();
        archive.fill(30, 1, 1);
        // Six workers and three calls a second: most workers wait at the pacer
        // with their person's newperson ready when the signal comes.
        let settings = ["--workers", "6", "--qps", "3", "--ping-url", &monitor.url];
        let job = spawn(&mut enroll(&archive, &emulator.endpoint, &settings));
        wait_for_calls(&emulator, "newperson", 2);
        signal(&job, sig);
        // The stop is raised within 50 ms; the calls in flight were counted as they
        // arrived.
        std::thread::sleep(Duration::from_millis(500));
        let at_stop = calls(&emulator, "newperson");
        let out = finish(job, name);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{name}\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("interrupted"),
            "{name}: the summary\n{stdout}"
        );
        assert_eq!(
            calls(&emulator, "newperson"),
            at_stop,
            "{name}: no person started after the stop\n{stderr}"
        );
        assert!(at_stop < 30, "{name}: the job was stopped mid-run");
        let pings = monitor.lines();
        assert!(
            pings.iter().any(|l| l.starts_with("GET /run/130 ")),
            "{name}: the end ping: {pings:?}"
        );
    }
}

#[test]
fn a_signal_ends_verify_with_130_and_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(&[], &dir.path().join("log"));
    let archive = Archive::new();
    archive.fill(20, 1, 1);
    let (code, stdout, stderr) = run(&mut enroll(&archive, &emulator.endpoint, &[]), "enroll");
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    set_faults(&emulator, r#"{"latency_ms": 200}"#);
    for (name, sig) in [("SIGHUP", libc::SIGHUP), ("SIGTERM", libc::SIGTERM)] {
        let before = calls(&emulator, "getinfo");
        let mut cmd = support::faceenroll(&[
            "verify".as_ref(),
            "--endpoint".as_ref(),
            emulator.endpoint.as_ref(),
            "--appid".as_ref(),
            faceenroll::emulator::REHEARSAL_APPID.as_ref(),
            "--state".as_ref(),
            archive.state().as_os_str(),
        ]);
        cmd.env(
            "TENCENTCLOUD_SECRET_ID",
            faceenroll::emulator::REHEARSAL_SECRET_ID,
        )
        .env(
            "TENCENTCLOUD_SECRET_KEY",
            faceenroll::emulator::REHEARSAL_SECRET_KEY,
        );
        let verify = spawn(&mut cmd);
        wait_for_calls(&emulator, "getinfo", before + 2);
        signal(&verify, sig);
        let out = finish(verify, name);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{name}\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("faceenroll verify: interrupted"),
            "{name}: the summary\n{stdout}"
        );
        assert!(
            calls(&emulator, "getinfo") < before + 20,
            "{name}: stopped mid-way"
        );
    }
}
