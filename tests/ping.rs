//! `--ping-url`: the start and finish pings a monitor receives, through the binary,
//! against a listener on 127.0.0.1 that records what it is sent.

mod support;

use support::bin::{output, s, Run};
use support::{enroll_command, faceenroll, photo};

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A monitor on 127.0.0.1: answers every request `status`, and keeps each request's
/// head (request line and headers) and body, in order.
struct Monitor {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    fn start(status: u16) -> Monitor {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; length];
                let _ = std::io::Read::read_exact(&mut reader, &mut body);
                head.push_str(&String::from_utf8_lossy(&body));
                kept.lock().unwrap().push(head);
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"
                );
            }
        });
        Monitor { port, requests }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The request lines received, in order (`GET /abc/start HTTP/1.1`).
    fn lines(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.lines().next().unwrap_or_default().to_owned())
            .collect()
    }

    fn everything(&self) -> String {
        self.requests.lock().unwrap().join("\n")
    }
}

/// A tree of one person under `dir/photos`: a photo with a face, and one without
/// (a blank, which fails the run with exit 1) when `blank`.
fn archive(dir: &Path, blank: bool) -> std::path::PathBuf {
    let root = dir.join("photos");
    std::fs::create_dir_all(root.join("ann")).unwrap();
    std::fs::write(root.join("ann/1.png"), photo(1)).unwrap();
    if blank {
        std::fs::write(root.join("ann/2.png"), support::blank()).unwrap();
    }
    root
}

fn rehearsal(root: &Path, state: &Path, extra: &[&str]) -> Run {
    output(
        faceenroll(&[])
            .args([
                "enroll",
                s(root),
                "--group",
                "staff",
                "--emulator",
                "--no-progress",
            ])
            .args(["--state", s(state)])
            .args(extra),
    )
}

#[test]
fn the_monitor_gets_a_start_ping_and_a_finish_ping_with_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let monitor = Monitor::start(200);
    let url = monitor.url("/ping/0d5f-token");

    let run = rehearsal(
        &archive(tmp.path(), false),
        &tmp.path().join("a"),
        &["--ping-url", &url],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        monitor.lines(),
        [
            "GET /ping/0d5f-token/start HTTP/1.1",
            "GET /ping/0d5f-token/0 HTTP/1.1"
        ]
    );

    // From the environment, with a trailing slash: a run with a failed photo ends 1.
    let other = tmp.path().join("other");
    let run = output(
        faceenroll(&[])
            .args(["enroll", s(&archive(&other, true)), "--group", "staff"])
            .args([
                "--emulator",
                "--no-progress",
                "--state",
                s(&tmp.path().join("b")),
            ])
            .env("FACEENROLL_PING_URL", monitor.url("/ping/0d5f-token/")),
    );
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        monitor.lines()[2..],
        [
            "GET /ping/0d5f-token/start HTTP/1.1",
            "GET /ping/0d5f-token/1 HTTP/1.1"
        ]
    );

    // From the config file; a run refused before any call ends 2, and says so.
    let config = tmp.path().join("fe.toml");
    std::fs::write(&config, format!("[enroll]\nping_url = \"{url}\"\n")).unwrap();
    // Other photos than the job's, so not its source moved.
    let third = archive(&tmp.path().join("third"), false);
    std::fs::write(third.join("ann/1.png"), photo(2)).unwrap();
    let run = rehearsal(&third, &tmp.path().join("a"), &["--config", s(&config)]);
    assert_eq!(run.code, 2, "a source new to the job: {run:?}");
    assert_eq!(
        monitor.lines()[4..],
        [
            "GET /ping/0d5f-token/start HTTP/1.1",
            "GET /ping/0d5f-token/2 HTTP/1.1"
        ]
    );

    // A dry run is not the job the monitor watches.
    let run = rehearsal(
        &archive(tmp.path(), false),
        &tmp.path().join("a"),
        &["--ping-url", &url, "--dry-run"],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(monitor.lines().len(), 6);
}

#[test]
fn a_ping_carries_no_credential_and_no_content_of_the_job() {
    use faceenroll::emulator::{REHEARSAL_APPID, REHEARSAL_SECRET_ID, REHEARSAL_SECRET_KEY};
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("emulator.log");
    let em = support::EmulatorProcess::start(&[], &log);
    let monitor = Monitor::start(200);
    let root = archive(tmp.path(), false);
    let run = output(
        support::enroll_command(&root, &em.endpoint, &tmp.path().join("state")).args([
            "--group",
            "staff",
            "--ping-url",
            &monitor.url("/p"),
        ]),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(monitor.lines().len(), 2);
    let sent = monitor.everything();
    for secret in [
        REHEARSAL_SECRET_ID,
        REHEARSAL_SECRET_KEY,
        REHEARSAL_APPID,
        "staff",
        "ann",
    ] {
        assert!(!sent.contains(secret), "{secret} in {sent}");
    }
    assert!(
        !sent.to_ascii_lowercase().contains("authorization"),
        "{sent}"
    );
}

#[test]
fn a_monitor_that_is_down_or_refuses_costs_a_warning_not_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then closed.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let refusing = Monitor::start(500);
    for (i, url) in [
        format!("http://127.0.0.1:{closed}/secret-token"),
        refusing.url("/secret-token"),
    ]
    .iter()
    .enumerate()
    {
        let state = tmp.path().join(format!("state{i}"));
        let run = rehearsal(&archive(tmp.path(), false), &state, &["--ping-url", url]);
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stderr.contains("did not take the start ping")
                && run.stderr.contains("did not take the 0 ping"),
            "{run:?}"
        );
        // The monitor is named by its host; the token in its path is not logged.
        assert!(run.stderr.contains("http://127.0.0.1:"), "{run:?}");
        assert!(!run.stderr.contains("secret-token"), "{run:?}");
        assert!(run.stdout.contains("every photo accounted for"), "{run:?}");
    }
    assert_eq!(refusing.lines().len(), 2);
}

#[test]
fn pings_go_through_the_proxy_the_proxy_variables_name() {
    let tmp = tempfile::tempdir().unwrap();
    // A plain-http proxy is handed the whole URL to forward; this one answers itself.
    let proxy = Monitor::start(200);
    let run = output(
        faceenroll(&[])
            .args(["enroll", s(&archive(tmp.path(), false)), "--group", "staff"])
            .args([
                "--emulator",
                "--no-progress",
                "--state",
                s(&tmp.path().join("s")),
            ])
            .args(["--ping-url", "http://monitor.example/p"])
            .env("http_proxy", proxy.url("")),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        proxy.lines(),
        [
            "GET http://monitor.example/p/start HTTP/1.1",
            "GET http://monitor.example/p/0 HTTP/1.1"
        ]
    );
}

#[test]
fn a_ping_url_with_credentials_or_a_query_is_refused_before_the_job() {
    let tmp = tempfile::tempdir().unwrap();
    for url in [
        "https://user:pw@hc-ping.com/x",
        "https://hc-ping.com/x?create=1",
    ] {
        let run = rehearsal(
            &archive(tmp.path(), false),
            &tmp.path().join("s"),
            &["--ping-url", url],
        );
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains("--ping-url"), "{run:?}");
        assert!(!tmp.path().join("s").exists(), "no job started");
    }
}

#[test]
fn the_systemd_sample_runs_a_command_the_binary_takes_and_maps_its_exit_codes() {
    use clap::Parser as _;
    use faceenroll::cli::{Cli, Exit};
    let dir = Path::new(support::bin::REPO).join("samples/systemd");
    let service = std::fs::read_to_string(dir.join("faceenroll.service")).unwrap();
    let timer = std::fs::read_to_string(dir.join("faceenroll.timer")).unwrap();
    // Directives, their continuation lines joined, comments left out.
    let directives = service.replace("\\\n", " ");
    let value = |key: &str| {
        directives
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key}= in the sample"))
            .to_owned()
    };
    let exec = value("ExecStart");
    let argv: Vec<&str> = exec.split_whitespace().collect();
    assert!(argv[0].ends_with("/faceenroll"), "{exec}");
    Cli::try_parse_from(&argv).unwrap_or_else(|e| panic!("{exec}: {e}"));
    // Stopped by SIGTERM (resumed next night) is not a failure of the unit; a new
    // failure (1), usage (2), fatal (3) and held (4) are: a night with nothing new
    // already exits 0.
    let codes: Vec<i32> = value("SuccessExitStatus")
        .split_whitespace()
        .map(|c| c.parse().unwrap())
        .collect();
    assert_eq!(codes, [Exit::Interrupted as i32]);
    assert_eq!(value("Type"), "oneshot");
    assert!(timer.lines().any(|l| l == "Persistent=true"), "{timer}");
}

#[test]
fn a_password_or_a_monitors_token_is_never_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let root = archive(tmp.path(), false);

    // A refused endpoint or ping URL is named without its password (or token).
    let run = output(
        enroll_command(
            &root,
            "https://user:hunter2@127.0.0.1:1/x",
            &tmp.path().join("e"),
        )
        .args(["--group", "staff"]),
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("user:***@"), "{run:?}");
    assert!(!run.stderr.contains("hunter2"), "{run:?}");
    let run = rehearsal(
        &root,
        &tmp.path().join("p"),
        &["--ping-url", "https://user:hunter2@hc-ping.com/0d5f-token"],
    );
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("hc-ping.com/***"), "{run:?}");
    assert!(
        !run.stderr.contains("hunter2") && !run.stderr.contains("0d5f"),
        "{run:?}"
    );

    // --print-config shows the endpoint's password and the monitor's token as ***.
    let run = output(
        enroll_command(
            &root,
            "https://user:hunter2@host.example",
            &tmp.path().join("c"),
        )
        .args(["--group", "staff", "--print-config"])
        .args(["--ping-url", "https://hc-ping.com/0d5f-token"]),
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.contains("https://user:***@host.example"),
        "{run:?}"
    );
    assert!(run.stdout.contains("https://hc-ping.com/***"), "{run:?}");
    assert!(
        !run.stdout.contains("hunter2") && !run.stdout.contains("0d5f"),
        "{run:?}"
    );

    // At -vv, the HTTP library's lines (which name the whole URL) are not shown.
    let monitor = Monitor::start(200);
    let run = rehearsal(
        &root,
        &tmp.path().join("v"),
        &["-vv", "--ping-url", &monitor.url("/ping/0d5f-token")],
    );
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(monitor.lines().len(), 2, "{run:?}");
    assert!(run.stderr.contains("pinged the monitor"), "{run:?}");

    for run_text in [&run.stdout, &run.stderr] {
        assert!(!run_text.contains("0d5f-token"), "{run:?}");
    }
}
