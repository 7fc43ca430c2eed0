//! The inspection commands (`groups`, `persons`, `person`, `faces`, `face`,
//! `delete-person`) run as the binary against the in-process emulator on 127.0.0.1.

mod support;

use faceenroll::emulator::{Emulator, EmulatorConfig};
use faceenroll::service::client::ImageBody;
use std::process::Stdio;
use support::{gid, pid};

fn faceenroll(emu: &Emulator, args: &[&str]) -> (i32, String, String) {
    let rehearsal = EmulatorConfig::rehearsal();
    let creds = &rehearsal.credentials[0];
    let output = support::faceenroll(&[])
        .args(args)
        .args(["--endpoint", &emu.endpoint(), "--appid", &rehearsal.appid])
        .env("TENCENTCLOUD_SECRET_ID", creds.secret_id())
        .env("TENCENTCLOUD_SECRET_KEY", creds.secret_key())
        .env_remove("FACEENROLL_ENDPOINT")
        .env_remove("FACEENROLL_APPID")
        .env_remove("FACEENROLL_BUCKET")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn inspection_commands_show_and_delete_what_the_service_holds() {
    let emu = support::emulator();
    let client = support::client(&emu);
    // Nothing yet: nothing printed.
    let (code, out, _) = faceenroll(&emu, &["groups"]);
    assert_eq!((code, out.as_str()), (0, ""));
    let (code, out, _) = faceenroll(&emu, &["groups", "--json"]);
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&out).unwrap(),
        serde_json::json!({"group_ids": []})
    );

    let photo = |seed| ImageBody::Bytes {
        filename: "x.jpg".into(),
        bytes: support::face_jpeg(seed).into(),
    };
    let made = client
        .new_person(
            &pid("ann"),
            &[gid("g1"), gid("g2")],
            &photo(71),
            Some("Ann"),
            None,
        )
        .unwrap();
    let added = client
        .add_faces(&pid("ann"), &[photo(72), photo(73)], None)
        .unwrap();
    client
        .new_person(&pid("ben"), &[gid("g1")], &photo(74), None, None)
        .unwrap();

    let (code, out, _) = faceenroll(&emu, &["groups"]);
    assert_eq!(code, 0);
    let mut groups: Vec<&str> = out.lines().collect();
    groups.sort();
    assert_eq!(groups, ["g1", "g2"]);

    let (code, out, _) = faceenroll(&emu, &["persons", "g1"]);
    assert_eq!(code, 0);
    let mut persons: Vec<&str> = out.lines().collect();
    persons.sort();
    assert_eq!(persons, ["ann", "ben"]);

    let (code, out, _) = faceenroll(&emu, &["person", "ann"]);
    assert_eq!(code, 0);
    assert!(out.contains("name    Ann"), "{out}");
    assert!(out.contains("faces   3"), "{out}");
    assert!(out.contains(&made.face_id), "{out}");

    let (code, out, _) = faceenroll(&emu, &["person", "ann", "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["person_id"], "ann");
    assert_eq!(json["face_ids"].as_array().unwrap().len(), 3);

    let (code, out, _) = faceenroll(&emu, &["faces", "ann"]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 3);

    let (code, out, _) = faceenroll(&emu, &["face", &added.face_ids[0], "--json"]);
    assert_eq!(code, 0);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["face_info"]["face_id"], added.face_ids[0].as_str());

    // A person that does not exist: the service's refusal, exit 1.
    let (code, _, err) = faceenroll(&emu, &["person", "nobody"]);
    assert_eq!(code, 1);
    assert!(err.contains("-1303 (person does not exist)"), "{err}");

    // An id the service would refuse: usage error, exit 2, nothing sent.
    let before = emu.counters().requests;
    let (code, _, err) = faceenroll(&emu, &["person", "a b"]);
    assert_eq!(code, 2);
    assert!(err.contains("\"a b\""), "{err}");
    assert_eq!(emu.counters().requests, before);

    // Deletes refuse without a terminal or --yes: not confirmed, exit 1 as --help says.
    let before = emu.counters().requests;
    let (code, _, err) = faceenroll(&emu, &["delete-person", "ben"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("--yes") && err.contains("not confirmed"),
        "{err}"
    );
    assert_eq!(emu.counters().requests, before);
    assert!(emu.snapshot().persons.contains_key("ben"));

    let (code, out, _) = faceenroll(
        &emu,
        &[
            "delete-faces",
            "ann",
            &added.face_ids[0],
            &added.face_ids[1],
            "--yes",
        ],
    );
    assert_eq!(code, 0);
    assert!(out.contains("deleted 2 of 2"), "{out}");
    assert_eq!(emu.snapshot().persons["ann"].faces.len(), 1);

    let (code, _, _) = faceenroll(&emu, &["delete-person", "ben", "--yes"]);
    assert_eq!(code, 0);
    assert!(!emu.snapshot().persons.contains_key("ben"));

    // A fatal service error exits 3 with the code's meaning.
    emu.inject_next(3, 1);
    let (code, _, err) = faceenroll(&emu, &["groups"]);
    assert_eq!(code, 3);
    assert!(err.contains("account abnormal"), "{err}");
}

#[test]
fn inspection_commands_refuse_bad_configuration_with_exit_2() {
    let emu = support::emulator();
    let output = support::faceenroll(&[])
        .args([
            "groups",
            "--endpoint",
            "http://192.0.2.1:80",
            "--appid",
            "1",
        ])
        .env("TENCENTCLOUD_SECRET_ID", "AKIDx")
        .env("TENCENTCLOUD_SECRET_KEY", "key")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(err.contains("--insecure-http"), "{err}");

    let output = support::faceenroll(&[])
        .args(["groups", "--endpoint", &emu.endpoint(), "--appid", "1"])
        .env_remove("TENCENTCLOUD_SECRET_ID")
        .env_remove("TENCENTCLOUD_SECRET_KEY")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("TENCENTCLOUD_SECRET_ID"));
    assert_eq!(emu.counters().requests, 0);
}

#[cfg(unix)]
#[test]
fn inspection_commands_read_credentials_from_a_private_config_file() {
    use std::os::unix::fs::PermissionsExt;
    let emu = support::emulator();
    let rehearsal = EmulatorConfig::rehearsal();
    let creds = &rehearsal.credentials[0];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faceenroll.toml");
    std::fs::write(
        &path,
        format!(
            "[service]\nendpoint = \"{}\"\nappid = \"{}\"\nsecret_id = \"{}\"\nsecret_key = \"{}\"\n",
            emu.endpoint(),
            rehearsal.appid,
            creds.secret_id(),
            creds.secret_key()
        ),
    )
    .unwrap();
    let run = || {
        support::faceenroll(&[])
            .args(["groups", "--config"])
            .arg(&path)
            .env_remove("TENCENTCLOUD_SECRET_ID")
            .env_remove("TENCENTCLOUD_SECRET_KEY")
            .env_remove("FACEENROLL_ENDPOINT")
            .env_remove("FACEENROLL_APPID")
            .output()
            .unwrap()
    };
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0644") && err.contains("chmod 600"), "{err}");
    assert!(!err.contains(creds.secret_key()), "{err}");

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(emu.counters().received("getgroupids"), 1);
}
