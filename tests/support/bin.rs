//! The binary as the tests run it: with a clean environment, as a separate
//! `faceenroll emulator`, and the job's report read back.

use faceenroll::emulator::REHEARSAL_APPID;
use std::path::Path;
use std::process::{Command, Stdio};

/// The `faceenroll` binary Cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_faceenroll");

/// `faceenroll emulator` running as a separate process on an ephemeral loopback port.
/// Dropping it kills it.
pub struct EmulatorProcess {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl EmulatorProcess {
    /// Starts `faceenroll emulator --bind 127.0.0.1:0 --strict ARGS...` with the
    /// rehearsal credentials, its log in `log`, and waits for the address it announces.
    pub fn start(args: &[&str], log: &Path) -> EmulatorProcess {
        EmulatorProcess::spawn(None, args, log)
    }

    /// Starts it as [`EmulatorProcess::start`] does, accepting only `secret_id` with
    /// `secret_key`.
    pub fn with_credentials(
        secret_id: &str,
        secret_key: &str,
        args: &[&str],
        log: &Path,
    ) -> EmulatorProcess {
        EmulatorProcess::spawn(Some((secret_id, secret_key)), args, log)
    }

    fn spawn(credentials: Option<(&str, &str)>, args: &[&str], log: &Path) -> EmulatorProcess {
        use std::io::BufRead as _;
        let mut cmd = command(BIN);
        cmd.args(["emulator", "--bind", "127.0.0.1:0", "--strict"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap());
        if let Some((id, key)) = credentials {
            cmd.env("TENCENTCLOUD_SECRET_ID", id)
                .env("TENCENTCLOUD_SECRET_KEY", key);
        }
        let mut child = cmd.spawn().unwrap();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let endpoint = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("the emulator announced no endpoint: {first:?}"))
            .to_owned();
        // Keep reading what it prints, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while stdout.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        EmulatorProcess { child, endpoint }
    }

    /// Stops it as Ctrl-C would (SIGTERM), and answers how it exited.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: a signal to a child process this value owns and has not reaped.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        self.child.wait().unwrap()
    }

    fn get(&self, path: &str) -> String {
        ureq::get(&format!("{}{path}", self.endpoint))
            .call()
            .unwrap()
            .into_string()
            .unwrap()
    }

    /// What the emulator holds, read through `GET /_emulator/state`.
    pub fn state(&self) -> faceenroll::emulator::StateSnapshot {
        serde_json::from_str(&self.get("/_emulator/state")).unwrap()
    }

    /// What it has seen, read through `GET /_emulator/counters`.
    pub fn counters(&self) -> faceenroll::emulator::Counters {
        serde_json::from_str(&self.get("/_emulator/counters")).unwrap()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The variables of the machine running the tests that would send a child's calls
/// elsewhere: proxies and a CA file. Tests set them only on purpose.
pub const NETWORK_VARIABLES: &[&str] = &[
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// `program` with the environment a test means, whatever the shell running the tests
/// exported: no `FACEENROLL_*` setting, no `TENCENTCLOUD_*` credentials, no proxy or
/// CA file, no `RUST_LOG`. Every child process of the tests starts from this (a shell
/// such as `script` passes it on to the binary it runs); a test sets what it needs.
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("FACEENROLL_") || name_text.starts_with("TENCENTCLOUD_") {
            cmd.env_remove(&name);
        }
    }
    for name in NETWORK_VARIABLES {
        cmd.env_remove(name);
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

/// `faceenroll ARGS...` with a clean environment ([`command`]).
pub fn faceenroll(args: &[&std::ffi::OsStr]) -> std::process::Command {
    let mut cmd = command(BIN);
    cmd.args(args);
    cmd
}

/// Runs `cmd` to its end: its exit code (-1 when a signal ended it) and its stdout
/// and stderr in one text, for assertions that do not care which stream said it.
pub fn code_and_text(cmd: &mut std::process::Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// `faceenroll COMMAND --state STATE EXTRA...` (`verify`, `rollback`, `status`, ...)
/// against the emulator at `endpoint`, with the rehearsal credentials in the
/// environment, as an operator would run it.
pub fn after_command(
    command: &str,
    endpoint: &str,
    state: &Path,
    extra: &[&str],
) -> std::process::Command {
    use faceenroll::emulator::{REHEARSAL_SECRET_ID, REHEARSAL_SECRET_KEY};
    let mut cmd = faceenroll(&[
        command.as_ref(),
        "--endpoint".as_ref(),
        endpoint.as_ref(),
        "--appid".as_ref(),
        REHEARSAL_APPID.as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
    ]);
    cmd.args(extra)
        .env("TENCENTCLOUD_SECRET_ID", REHEARSAL_SECRET_ID)
        .env("TENCENTCLOUD_SECRET_KEY", REHEARSAL_SECRET_KEY);
    cmd
}

/// `faceenroll enroll SOURCE` against the emulator at `endpoint`, with the rehearsal
/// credentials in the environment, as an operator would run it.
pub fn enroll_command(source: &Path, endpoint: &str, state: &Path) -> std::process::Command {
    use faceenroll::emulator::{REHEARSAL_SECRET_ID, REHEARSAL_SECRET_KEY};
    let mut cmd = faceenroll(&[
        "enroll".as_ref(),
        source.as_os_str(),
        "--endpoint".as_ref(),
        endpoint.as_ref(),
        "--appid".as_ref(),
        REHEARSAL_APPID.as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        "--no-progress".as_ref(),
    ]);
    cmd.env("TENCENTCLOUD_SECRET_ID", REHEARSAL_SECRET_ID)
        .env("TENCENTCLOUD_SECRET_KEY", REHEARSAL_SECRET_KEY);
    cmd
}

/// Every row of the job's report (`faceenroll report --format jsonl`).
pub fn report_rows(state: &Path) -> Vec<faceenroll::report::Row> {
    let out = faceenroll(&[
        "report".as_ref(),
        "--state".as_ref(),
        state.as_os_str(),
        "--format".as_ref(),
        "jsonl".as_ref(),
    ])
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

/// The repository's root, where the samples are.
pub const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// `faceenroll` with a clean environment (see [`faceenroll`]), run from the
/// repository root (where the samples are).
pub fn in_repo() -> Command {
    let mut cmd = faceenroll(&[]);
    cmd.current_dir(REPO);
    cmd
}

/// How a run of the binary ended.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with no input to its end.
pub fn output(cmd: &mut Command) -> Run {
    let out = cmd.stdin(Stdio::null()).output().expect("run faceenroll");
    Run {
        code: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `faceenroll ARGS...` from the repository root, to its end.
pub fn run(args: &[&str]) -> Run {
    output(in_repo().args(args))
}

/// A path as an argument.
pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}
