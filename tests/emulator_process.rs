//! `faceenroll emulator` as a separate process: its help, its credentials from the
//! environment, the API and introspection over the network, and a clean stop on
//! SIGTERM that leaves the state file behind.

mod support;

use faceenroll::emulator::StateSnapshot;
use faceenroll::service::api::Call;
use serde_json::json;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use support::face_png;
use support::http::*;

const BIN: &str = env!("CARGO_BIN_EXE_faceenroll");

#[test]
fn help_documents_every_option() {
    let out = support::bin::command(BIN)
        .args(["emulator", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for flag in [
        "--bind",
        "127.0.0.1:8080",
        "--appid",
        "--secret-id",
        "--secret-key",
        "TENCENTCLOUD_SECRET_ID",
        "TENCENTCLOUD_SECRET_KEY",
        "--qps",
        "--latency-ms",
        "--jitter-ms",
        "--error-213",
        "--rate-limit-15",
        "--drop-connection",
        "--lose-answer",
        "--transient-image",
        "--seed",
        "--state-file",
        "/_emulator/state",
    ] {
        assert!(help.contains(flag), "help lacks {flag}:\n{help}");
    }
}

#[test]
fn bad_flags_are_refused_with_usage() {
    let out = support::bin::command(BIN)
        .args(["emulator", "--error-213", "1.5"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("1.5"));
    let out = support::bin::command(BIN)
        .args([
            "emulator",
            "--bind",
            "127.0.0.1:0",
            "--secret-id",
            "AKIDonly",
        ])
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_KEY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --secret-key"));
}

#[test]
fn serves_as_a_process_with_credentials_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let state_file = dir.path().join("state.json");
    let mut child = support::bin::command(BIN)
        .args([
            "emulator",
            "--bind",
            "127.0.0.1:0",
            "--qps",
            "0",
            "--state-file",
        ])
        .arg(&state_file)
        .env("TENCENTCLOUD_SECRET_ID", "AKIDfromEnvironment")
        .env("TENCENTCLOUD_SECRET_KEY", "environment-key-value")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let endpoint = first
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|e| e.strip_prefix("http://"))
        .unwrap_or_else(|| panic!("no endpoint in {first:?}"));
    let addr: SocketAddr = endpoint.parse().unwrap();

    let mut conn = Connection::open(addr);
    let now = unix_now();
    let env_sig = signature(
        APPID,
        "AKIDfromEnvironment",
        "environment-key-value",
        now,
        now + 60,
    );
    let body = new_person_body("p", &["g"], &face_png(5));
    let v = conn
        .call_signed(Call::NewPerson, &body, Some(&env_sig))
        .unwrap()
        .json();
    assert_eq!(v["code"], 0, "{v}");
    // The rehearsal credentials are not accepted when others are configured.
    let v = conn
        .call(Call::GetGroupIds, &json_body(json!({})))
        .unwrap()
        .json();
    assert_error(&v, 11);
    let state: StateSnapshot = serde_json::from_slice(
        &conn
            .request("GET", "/_emulator/state", &[], b"")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(state.persons["p"].faces.len(), 1);
    drop(conn);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "exits cleanly on SIGTERM: {status:?}");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let printed = format!("{first}{rest}{stderr}");
    assert!(rest.contains("stopped"), "{printed}");
    assert!(
        !printed.contains("environment-key-value"),
        "the key is never printed"
    );
    let saved: StateSnapshot =
        serde_json::from_slice(&std::fs::read(&state_file).unwrap()).unwrap();
    assert_eq!(saved, state);
}

#[test]
fn rehearsal_credentials_are_announced_without_the_key() {
    let mut child = support::bin::command(BIN)
        .args(["emulator", "--bind", "127.0.0.1:0"])
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_KEY")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut lines = String::new();
    // Served on, appid, credentials, rate limit, how the contract is read.
    for _ in 0..5 {
        stdout.read_line(&mut lines).unwrap();
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().unwrap();
    assert!(
        lines.contains(faceenroll::emulator::REHEARSAL_SECRET_ID),
        "{lines}"
    );
    assert!(
        !lines.contains(faceenroll::emulator::REHEARSAL_SECRET_KEY),
        "{lines}"
    );
    // The contract's readings as their flags spell them, not Rust's names.
    assert!(
        lines.contains("--full-reading per-image, --body-limit ")
            && lines.contains("(--too-large code-23), --empty-answer ok"),
        "{lines}"
    );
    assert!(
        !lines.contains("PerImage") && !lines.contains("Code23"),
        "{lines}"
    );
}
