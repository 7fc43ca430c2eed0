//! The client end to end, against the in-process emulator on 127.0.0.1 (the
//! inspection commands that use it are in `inspect.rs`).

mod support;

use faceenroll::emulator::{Emulator, EmulatorConfig, Faults};
use faceenroll::model::ContentHash;
use faceenroll::service::api::Call;
use faceenroll::service::client::{
    CallError, Client, ClientConfig, ImageBody, TransportKind, Unreachable,
};
use faceenroll::service::codes::{Class, Outcome};
use faceenroll::service::sign::Credentials;
use image::ImageFormat;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use support::{blank, encode, face_picture, gid, pid};

// ---------------------------------------------------------------------------------
// Helpers

fn config_for(emu: &Emulator) -> ClientConfig {
    let rehearsal = EmulatorConfig::rehearsal();
    ClientConfig::new(
        &emu.endpoint(),
        &rehearsal.appid,
        "",
        rehearsal.credentials[0].clone(),
    )
}

fn client_for(emu: &Emulator) -> Client {
    Client::new(config_for(emu)).expect("client for the emulator")
}

fn write_photo(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn hashes_of(emu: &Emulator, person: &str) -> Vec<String> {
    emu.snapshot().persons[person]
        .faces
        .iter()
        .map(|f| f.content_hash.clone())
        .collect()
}

fn hash(bytes: &[u8]) -> String {
    ContentHash::of(bytes).to_hex()
}

/// Reads one HTTP/1.1 request (headers and a Content-Length body) from `stream`;
/// returns its path.
fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).ok()?;
    head.split_whitespace().nth(1).map(str::to_owned)
}

/// A loopback HTTP server answering every request through `answer(path)`, one
/// connection per request. Returns its base URL.
fn tiny_server(answer: impl Fn(&str) -> Vec<u8> + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                if let Some(path) = read_request(&mut stream) {
                    let _ = stream.write_all(&answer(&path));
                }
            });
        }
    });
    base
}

/// Serves `files` (name → bytes) under `/photos/NAME`.
fn photo_server(files: Vec<(&'static str, Vec<u8>)>) -> String {
    let base = tiny_server(move |path| {
        let name = path.trim_start_matches("/photos/");
        match files.iter().find(|(n, _)| *n == name) {
            Some((_, bytes)) => {
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    bytes.len()
                )
                .into_bytes();
                out.extend_from_slice(bytes);
                out
            }
            None => {
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
            }
        }
    });
    format!("{base}/photos")
}

/// A port on 127.0.0.1 where nothing listens.
fn closed_port_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------------
// Every call, both encodings

#[test]
fn every_call_works_with_local_photos_sent_as_multipart() {
    let emu = support::emulator();
    let client = client_for(&emu);
    let dir = tempfile::tempdir().unwrap();
    let first = encode(&face_picture(1, 48, 40), ImageFormat::Jpeg);
    let second = encode(&face_picture(2, 48, 40), ImageFormat::Png);
    let third = encode(&face_picture(3, 48, 40), ImageFormat::Bmp);
    let fourth = encode(&face_picture(4, 48, 40), ImageFormat::Gif);
    let first_path = write_photo(dir.path(), "first photo (1).jpg", &first);
    let second_path = write_photo(dir.path(), "张三.png", &second);
    let third_path = write_photo(dir.path(), "third.bmp", &third);

    let alice = pid("alice");
    let made = client
        .new_person(
            &alice,
            &[gid("staff"), gid("paris")],
            &ImageBody::File(first_path),
            Some("Alice Liddell"),
            Some("tag one"),
        )
        .unwrap();
    assert_eq!(made.person_id, "alice");
    assert_eq!(made.suc_face, 1);
    assert_eq!(made.suc_group, 2);
    assert!(!made.face_id.is_empty());

    let added = client
        .add_faces(
            &alice,
            &[
                ImageBody::File(second_path),
                ImageBody::File(third_path),
                ImageBody::Bytes {
                    filename: "re-encoded.gif".into(),
                    bytes: fourth.clone().into(),
                },
            ],
            Some("batch"),
        )
        .unwrap();
    assert_eq!(added.added, 3);
    assert_eq!(added.ret_codes, vec![0, 0, 0]);
    assert_eq!(added.face_ids.len(), 3);
    // The exact bytes of every photo arrived, in order.
    assert_eq!(
        hashes_of(&emu, "alice"),
        vec![hash(&first), hash(&second), hash(&third), hash(&fourth)]
    );

    let info = client.get_info(&alice).unwrap();
    assert_eq!(info.person_name, "Alice Liddell");
    assert_eq!(info.tag, "tag one");
    assert_eq!(info.face_ids.len(), 4);
    let mut groups = info.group_ids.clone();
    groups.sort();
    assert_eq!(groups, ["paris", "staff"]);

    client.set_info(&alice, Some("Alice L."), None).unwrap();
    let info = client.get_info(&alice).unwrap();
    assert_eq!(
        (info.person_name.as_str(), info.tag.as_str()),
        ("Alice L.", "tag one")
    );
    client.set_info(&alice, None, Some("new tag")).unwrap();
    assert_eq!(client.get_info(&alice).unwrap().tag, "new tag");

    let joined = client.add_group_ids(&alice, &[gid("london")]).unwrap();
    assert_eq!(joined.added, 1);
    assert!(joined.group_ids.contains(&"london".to_string()));
    let mut all_groups = client.get_group_ids().unwrap().group_ids;
    all_groups.sort();
    assert_eq!(all_groups, ["london", "paris", "staff"]);
    assert_eq!(
        client.get_person_ids(&gid("london")).unwrap().person_ids,
        ["alice"]
    );
    let left = client.del_group_ids(&alice, &[gid("paris")]).unwrap();
    assert_eq!(left.deleted, 1);
    assert!(!left.group_ids.contains(&"paris".to_string()));

    let face_ids = client.get_face_ids(&alice).unwrap().face_ids;
    assert_eq!(face_ids, info.face_ids);
    let face = client.get_face_info(&face_ids[1]).unwrap().face_info;
    assert_eq!(face.face_id, face_ids[1]);

    let deleted = client.del_faces(&alice, &face_ids[..2]).unwrap();
    assert_eq!(deleted.deleted, 2);
    assert_eq!(hashes_of(&emu, "alice"), vec![hash(&third), hash(&fourth)]);

    let gone = client.del_person(&alice).unwrap();
    assert_eq!(gone.person_id, "alice");
    assert!(!emu.snapshot().persons.contains_key("alice"));

    // Every call was received once or more, and each answered 0.
    let counters = emu.counters();
    for call in Call::ALL {
        assert!(
            counters.received(call.name()) >= 1,
            "{} not sent",
            call.name()
        );
    }
    assert_eq!(counters.answered(0), counters.requests);
}

#[test]
fn url_photos_travel_as_json_and_arrive_intact() {
    let emu = support::emulator();
    let client = client_for(&emu);
    let first = encode(&face_picture(21, 48, 40), ImageFormat::Jpeg);
    let second = encode(&face_picture(22, 48, 40), ImageFormat::Png);
    let third = encode(&face_picture(23, 48, 40), ImageFormat::Jpeg);
    let base = photo_server(vec![
        ("a.jpg", first.clone()),
        ("b.png", second.clone()),
        ("c.jpg", third.clone()),
    ]);
    let bob = pid("bob");
    client
        .new_person(
            &bob,
            &[gid("remote")],
            &ImageBody::Url(format!("{base}/a.jpg")),
            None,
            None,
        )
        .unwrap();
    let added = client
        .add_faces(
            &bob,
            &[
                ImageBody::Url(format!("{base}/b.png")),
                ImageBody::Url(format!("{base}/c.jpg")),
                ImageBody::Url(format!("{base}/missing.jpg")),
            ],
            None,
        )
        .unwrap();
    assert_eq!(added.added, 2);
    assert_eq!(added.ret_codes[..2], [0, 0]);
    assert_ne!(added.ret_codes[2], 0, "a photo the service cannot download");
    assert_eq!(
        hashes_of(&emu, "bob"),
        vec![hash(&first), hash(&second), hash(&third)]
    );
}

#[test]
fn a_mixed_chunk_or_missing_photo_is_refused_before_anything_is_sent() {
    let emu = support::emulator();
    let client = client_for(&emu);
    let err = client
        .add_faces(
            &pid("p"),
            &[
                ImageBody::Url("http://127.0.0.1:1/a.jpg".into()),
                ImageBody::Bytes {
                    filename: "b.jpg".into(),
                    bytes: encode(&face_picture(1, 48, 40), ImageFormat::Jpeg).into(),
                },
            ],
            None,
        )
        .unwrap_err();
    assert_eq!(err.class(), Class::Request);
    assert_eq!(err.call(), Call::AddFace);

    let err = client
        .new_person(
            &pid("p"),
            &[gid("g")],
            &ImageBody::File("/nonexistent/dir/photo.jpg".into()),
            None,
            None,
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Image {
                call: Call::NewPerson,
                ..
            }
        ),
        "{err}"
    );
    // The photo, not the call, cannot be sent: the engine fails that photo alone.
    assert_eq!(err.class(), Class::Outcome(Outcome::Unreadable));
    assert!(
        err.to_string().contains("/nonexistent/dir/photo.jpg"),
        "{err}"
    );

    assert_eq!(emu.counters().requests, 0);
}

// ---------------------------------------------------------------------------------
// Every error class

#[test]
fn service_answers_are_classed_by_the_code_table() {
    let emu = support::emulator();
    let client = client_for(&emu);
    let dir = tempfile::tempdir().unwrap();
    let face = write_photo(
        dir.path(),
        "face.png",
        &encode(&face_picture(31, 48, 40), ImageFormat::Png),
    );
    let blank = write_photo(dir.path(), "blank.png", &blank());
    let carol = pid("carol");

    // Outcome: the person does not exist.
    let err = client.get_info(&carol).unwrap_err();
    assert_eq!(err.code(), Some(-1303));
    assert_eq!(err.class(), Class::Outcome(Outcome::PersonMissing));
    assert_eq!(err.call(), Call::GetInfo);
    assert!(
        err.to_string()
            .starts_with("getinfo: the service answered -1303"),
        "{err}"
    );

    // Permanent: no face in the photo.
    let err = client
        .new_person(&carol, &[gid("g")], &ImageBody::File(blank), None, None)
        .unwrap_err();
    assert_eq!(err.code(), Some(-1101));
    assert_eq!(err.class(), Class::Permanent);

    // Outcome: the person already exists.
    client
        .new_person(
            &carol,
            &[gid("g")],
            &ImageBody::File(face.clone()),
            None,
            None,
        )
        .unwrap();
    let err = client
        .new_person(&carol, &[gid("g")], &ImageBody::File(face), None, None)
        .unwrap_err();
    assert_eq!(err.class(), Class::Outcome(Outcome::PersonExists));

    // Request: a face that does not exist.
    let err = client.get_face_info("no-such-face").unwrap_err();
    assert_eq!(err.class(), Class::Request);

    // Rate limited, transient, fatal and unknown codes, injected.
    for (code, class) in [
        (15, Class::RateLimited),
        (213, Class::Transient),
        (-1200, Class::Transient),
        (3, Class::Fatal),
        (14, Class::Fatal),
        (-4242, Class::Unknown),
    ] {
        emu.inject_next(code, 1);
        let err = client.get_group_ids().unwrap_err();
        assert_eq!(err.code(), Some(code));
        assert_eq!(err.class(), class, "code {code}");
    }
}

#[test]
fn a_dropped_connection_is_lost_and_nothing_was_done() {
    let emu = support::emulator();
    let client = client_for(&emu);
    emu.set_faults(Faults {
        drop_connection: 1.0,
        ..Faults::default()
    });
    let err = client
        .new_person(
            &pid("dave"),
            &[gid("g")],
            &ImageBody::Bytes {
                filename: "d.jpg".into(),
                bytes: encode(&face_picture(41, 48, 40), ImageFormat::Jpeg).into(),
            },
            None,
            None,
        )
        .unwrap_err();
    assert_eq!(
        err.transport_kind(),
        Some(TransportKind::ConnectionLost),
        "{err}"
    );
    assert_eq!(err.class(), Class::Transient);
    assert!(err.outcome_unknown());
    assert!(!emu.snapshot().persons.contains_key("dave"));
}

#[test]
fn a_lost_answer_leaves_the_work_done_and_the_outcome_unknown() {
    let emu = support::emulator();
    let client = client_for(&emu);
    let photo: Arc<[u8]> = encode(&face_picture(42, 48, 40), ImageFormat::Jpeg).into();
    let image = ImageBody::Bytes {
        filename: "e.jpg".into(),
        bytes: photo.clone(),
    };
    emu.set_faults(Faults {
        lose_answer: 1.0,
        ..Faults::default()
    });
    let err = client
        .new_person(&pid("erin"), &[gid("g")], &image, None, None)
        .unwrap_err();
    assert_eq!(
        err.transport_kind(),
        Some(TransportKind::ConnectionLost),
        "{err}"
    );
    assert!(err.outcome_unknown());
    assert!(err.to_string().contains("may have been done"), "{err}");
    // The service did the work although the client never heard.
    assert_eq!(hashes_of(&emu, "erin"), vec![hash(&photo)]);

    // Sent again, the call says the person exists: the sign of a lost success.
    emu.set_faults(Faults::default());
    let err = client
        .new_person(&pid("erin"), &[gid("g")], &image, None, None)
        .unwrap_err();
    assert_eq!(err.class(), Class::Outcome(Outcome::PersonExists));
}

#[test]
fn a_slow_answer_times_out_with_an_unknown_outcome() {
    let emu = support::emulator();
    let mut config = config_for(&emu);
    config.read_timeout = Duration::from_millis(200);
    let client = Client::new(config).unwrap();
    emu.set_faults(Faults {
        latency_ms: 1500,
        ..Faults::default()
    });
    let err = client.get_group_ids().unwrap_err();
    assert_eq!(err.transport_kind(), Some(TransportKind::Timeout), "{err}");
    assert_eq!(err.class(), Class::Transient);
    assert!(err.outcome_unknown());
}

#[test]
fn nothing_listening_stops_the_job_with_nothing_done() {
    let rehearsal = EmulatorConfig::rehearsal();
    let client = Client::new(ClientConfig::new(
        &closed_port_endpoint(),
        &rehearsal.appid,
        "",
        rehearsal.credentials[0].clone(),
    ))
    .unwrap();
    let err = client.get_info(&pid("x")).unwrap_err();
    assert_eq!(
        err.transport_kind(),
        Some(TransportKind::Unreachable(Unreachable::Refused)),
        "{err}"
    );
    assert_eq!(err.class(), Class::Fatal);
    assert!(!err.outcome_unknown());
    assert!(
        err.to_string()
            .starts_with("getinfo: the service could not be reached: the connection was refused"),
        "{err}"
    );
}

#[test]
fn http_errors_and_foreign_answers_are_transport_errors() {
    let creds = Credentials::new("AKIDx", "key");
    let client =
        |base: String| Client::new(ClientConfig::new(&base, "1", "", creds.clone())).unwrap();

    let gateway = tiny_server(|_| {
        b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad gateway"
            .to_vec()
    });
    let err = client(gateway).get_group_ids().unwrap_err();
    assert_eq!(
        err.transport_kind(),
        Some(TransportKind::HttpStatus(502)),
        "{err}"
    );
    assert_eq!(err.class(), Class::Transient);

    let html = tiny_server(|_| {
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\nConnection: close\r\n\r\n<html></html>"
            .to_vec()
    });
    let err = client(html).get_group_ids().unwrap_err();
    assert_eq!(
        err.transport_kind(),
        Some(TransportKind::BadAnswer),
        "{err}"
    );

    // A contract answer under an HTTP error status is the service's answer.
    let coded = tiny_server(|_| {
        let body = r#"{"code":15,"message":"too frequent","data":{}}"#;
        format!(
            "HTTP/1.1 429 Too Many Requests\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    let err = client(coded).get_group_ids().unwrap_err();
    assert_eq!(err.code(), Some(15));
    assert_eq!(err.class(), Class::RateLimited);

    // Code 0 with data of the wrong shape.
    let shapeless = tiny_server(|_| {
        let body = r#"{"code":0,"message":"OK","data":{"group_ids":"not a list"}}"#;
        format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    });
    let err = client(shapeless).get_group_ids().unwrap_err();
    assert_eq!(
        err.transport_kind(),
        Some(TransportKind::BadAnswer),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------
// Signatures

#[test]
fn an_expired_or_replayed_signature_is_renewed_once() {
    let emu = support::emulator();
    let client = client_for(&emu);
    for code in [9, 13] {
        let before = emu.counters().requests;
        emu.inject_next(code, 1);
        client.get_group_ids().unwrap();
        assert_eq!(
            emu.counters().requests - before,
            2,
            "code {code}: one retry"
        );

        let before = emu.counters().requests;
        emu.inject_next(code, 2);
        let err = client.get_group_ids().unwrap_err();
        assert_eq!(err.code(), Some(code));
        assert_eq!(err.class(), Class::Fatal);
        assert_eq!(
            emu.counters().requests - before,
            2,
            "code {code}: no third try"
        );
    }
    // Other codes are not retried by the client.
    let before = emu.counters().requests;
    emu.inject_next(14, 1);
    client.get_group_ids().unwrap_err();
    assert_eq!(emu.counters().requests - before, 1);
}

#[test]
fn a_resent_multipart_call_sends_its_photo_again() {
    let emu = support::emulator();
    let client = client_for(&emu);
    let dir = tempfile::tempdir().unwrap();
    let bytes = encode(&face_picture(51, 48, 40), ImageFormat::Jpeg);
    let path = write_photo(dir.path(), "f.jpg", &bytes);
    emu.inject_next(9, 1);
    client
        .new_person(
            &pid("frank"),
            &[gid("g")],
            &ImageBody::File(path),
            None,
            None,
        )
        .unwrap();
    assert_eq!(hashes_of(&emu, "frank"), vec![hash(&bytes)]);
}

#[test]
fn errors_of_a_refused_signature_do_not_carry_secrets() {
    let emu = support::emulator();
    let rehearsal = EmulatorConfig::rehearsal();
    let secret_id = rehearsal.credentials[0].secret_id().to_owned();
    let wrong_key = "wrong-secret-key-0123456789abcdef";
    let mut config = config_for(&emu);
    config.credentials = Credentials::new(secret_id.clone(), wrong_key);
    let signer = faceenroll::service::signer::Signer::new(
        &config.appid,
        "",
        config.credentials.clone(),
        config.signature_validity,
    )
    .unwrap();
    let client = Client::new(config).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = write_photo(
        dir.path(),
        "g.jpg",
        &encode(&face_picture(61, 48, 40), ImageFormat::Jpeg),
    );
    let errors = [
        client.get_info(&pid("x")).unwrap_err(),
        client
            .new_person(&pid("x"), &[gid("g")], &ImageBody::File(path), None, None)
            .unwrap_err(),
    ];
    for err in errors {
        assert_eq!(err.code(), Some(14), "{err}");
        assert_eq!(err.class(), Class::Fatal);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains(wrong_key), "{shown}");
        assert!(!shown.contains(&secret_id), "{shown}");
        assert!(!shown.to_lowercase().contains("authorization"), "{shown}");
        // No signature: a signature of these credentials is a long base64 run that
        // starts with the same HMAC-independent tail; look for any long base64 run.
        let longest_base64_run = shown
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '+' || c == '/' || c == '='))
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(longest_base64_run < 40, "{shown}");
    }
    // The signature the client would send is long base64, so the check above bites.
    assert!(signer.authorization().header_value().len() > 80);
}

// ---------------------------------------------------------------------------------
// Connections

#[test]
fn one_connection_serves_many_calls() {
    let emu = support::emulator();
    let client = client_for(&emu);
    for _ in 0..50 {
        client.get_group_ids().unwrap();
    }
    let counters = emu.counters();
    assert_eq!(counters.requests, 50);
    assert_eq!(counters.connections, 1);
}

#[test]
fn threads_share_the_client_and_its_pool() {
    let emu = support::emulator();
    let client = client_for(&emu);
    let dir = tempfile::tempdir().unwrap();
    std::thread::scope(|s| {
        for t in 0..4u8 {
            let client = client.clone();
            let dir = dir.path();
            s.spawn(move || {
                for i in 0..10u8 {
                    let id = pid(&format!("t{t}p{i}"));
                    let path = write_photo(
                        dir,
                        &format!("{t}-{i}.png"),
                        &encode(&face_picture(t * 16 + i, 48, 40), ImageFormat::Png),
                    );
                    client
                        .new_person(&id, &[gid("threads")], &ImageBody::File(path), None, None)
                        .unwrap();
                    client.get_info(&id).unwrap();
                }
            });
        }
    });
    let counters = emu.counters();
    assert_eq!(counters.requests, 80);
    assert!(
        counters.connections <= 4,
        "{} connections",
        counters.connections
    );
    assert_eq!(emu.snapshot().persons.len(), 40);
}

#[test]
fn a_body_over_the_service_limit_is_answered_23() {
    let emu = support::emulator();
    let client = client_for(&emu);
    let mut big = encode(&face_picture(81, 48, 40), ImageFormat::Png);
    big.resize(faceenroll::limits::MAX_REQUEST_BYTES as usize + 1024, 0);
    let err = client
        .add_faces(
            &pid("p"),
            &[ImageBody::Bytes {
                filename: "big.png".into(),
                bytes: big.into(),
            }],
            None,
        )
        .unwrap_err();
    assert_eq!(err.code(), Some(23), "{err}");
    assert_eq!(err.class(), Class::Outcome(Outcome::TooLarge));
}
