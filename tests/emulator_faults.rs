//! The emulator's edges: signature checks, the rate limit, every injected fault,
//! HTTP keep-alive and chunked bodies, many connections at once, introspection over
//! HTTP, the state file and shutdown.

mod support;

use faceenroll::emulator::{
    self, Counters, Emulator, EmulatorConfig, Faults, StateSnapshot, REHEARSAL_SECRET_ID,
    REHEARSAL_SECRET_KEY,
};
use faceenroll::limits::MAX_SIGNATURE_VALIDITY_SECS;
use faceenroll::service::api::Call;
use faceenroll::service::sign::Credentials;
use serde_json::{json, Value};
use std::net::TcpStream;
use support::http::*;
use support::{face_jpeg, face_png, lenient_emulator};

fn new_person(person_id: &str) -> RequestBody {
    new_person_body(person_id, &["g"], &face_png(person_id.len() as u8))
}

fn get_groups() -> RequestBody {
    json_body(json!({}))
}

#[test]
fn signature_failures_have_their_codes() {
    let emu = lenient_emulator(|c| {
        c.credentials
            .push(Credentials::new("AKIDsecond", "second-key"));
    });
    let mut conn = Connection::open(emu.addr());
    let now = unix_now();
    let id = REHEARSAL_SECRET_ID;
    let key = REHEARSAL_SECRET_KEY;
    let body = get_groups();
    let cases: Vec<(Option<String>, i64)> = vec![
        (None, 4),
        (Some(String::new()), 4),
        (Some("@@not base64@@".into()), 5),
        (Some("c2hvcnQ=".into()), 5),
        (Some(signature(APPID, id, key, now, now)), 5),
        (
            Some(signature(
                APPID,
                id,
                key,
                now,
                now + MAX_SIGNATURE_VALIDITY_SECS + 1,
            )),
            5,
        ),
        (Some(signature("1250000099", id, key, now, now + 60)), 6),
        (Some(signature(APPID, id, key, now - 7200, now - 3600)), 9),
        (
            Some(signature(APPID, "AKIDunknown", key, now, now + 60)),
            11,
        ),
        (Some(signature(APPID, id, "not-the-key", now, now + 60)), 14),
    ];
    for (auth, code) in cases {
        let v = conn
            .call_signed(Call::GetGroupIds, &body, auth.as_deref())
            .unwrap()
            .json();
        assert_error(&v, code);
    }
    // The body's appid must match the signature's.
    let other_app = RequestBody {
        content_type: "application/json".into(),
        bytes: br#"{"appid": "1250000099", "bucket": ""}"#.to_vec(),
    };
    let v = conn.call(Call::GetGroupIds, &other_app).unwrap().json();
    assert_error(&v, 6);
    // Every accepted credential works; three months of validity is allowed.
    for (id, key) in [(id, key), ("AKIDsecond", "second-key")] {
        let auth = signature(APPID, id, key, now, now + MAX_SIGNATURE_VALIDITY_SECS);
        let v = conn
            .call_signed(Call::GetGroupIds, &body, Some(&auth))
            .unwrap()
            .json();
        assert_eq!(v["code"], 0, "{v}");
    }
    // A refused signature does no work.
    let v = conn
        .call_signed(Call::NewPerson, &new_person("p"), None)
        .unwrap()
        .json();
    assert_error(&v, 4);
    assert!(emu.snapshot().persons.is_empty());
}

#[test]
fn the_rate_limit_answers_15_and_refused_calls_do_no_work() {
    let emu = lenient_emulator(|c| c.qps = Some(3));
    let mut conn = Connection::open(emu.addr());
    let codes: Vec<i64> = (0..6)
        .map(|i| {
            let v = conn
                .call(Call::NewPerson, &new_person(&format!("p{i}")))
                .unwrap()
                .json();
            if v["code"] != 0 {
                assert_error(&v, 15);
            }
            v["code"].as_i64().unwrap()
        })
        .collect();
    // Six calls in well under a second: the first three pass.
    assert_eq!(codes, [0, 0, 0, 15, 15, 15]);
    let persons: Vec<String> = emu.snapshot().persons.into_keys().collect();
    assert_eq!(persons, ["p0", "p1", "p2"]);
    assert_eq!(emu.counters().answered(15), 3);
    emu.set_qps(None);
    let v = conn
        .call(Call::NewPerson, &new_person("p3"))
        .unwrap()
        .json();
    assert_eq!(v["code"], 0);
}

#[test]
fn injected_answers_do_no_work() {
    let emu = lenient_emulator(|_| {});
    let mut conn = Connection::open(emu.addr());
    emu.inject_next(9, 2);
    for _ in 0..2 {
        assert_error(
            &conn.call(Call::NewPerson, &new_person("p")).unwrap().json(),
            9,
        );
    }
    assert!(emu.snapshot().persons.is_empty());
    assert_eq!(
        conn.call(Call::NewPerson, &new_person("p")).unwrap().json()["code"],
        0
    );
    emu.inject_next(3, 1);
    assert_error(
        &conn.call(Call::GetGroupIds, &get_groups()).unwrap().json(),
        3,
    );
    assert_eq!(
        conn.call(Call::GetGroupIds, &get_groups()).unwrap().json()["code"],
        0
    );
    assert_eq!(emu.counters().faults.injected, 3);
}

#[test]
fn fault_213_and_15_answer_without_work() {
    let emu = lenient_emulator(|c| {
        c.faults.error_213 = 1.0;
    });
    let mut conn = Connection::open(emu.addr());
    assert_error(
        &conn.call(Call::NewPerson, &new_person("p")).unwrap().json(),
        213,
    );
    emu.set_faults(Faults {
        rate_limit_15: 1.0,
        ..Faults::default()
    });
    assert_error(
        &conn.call(Call::NewPerson, &new_person("p")).unwrap().json(),
        15,
    );
    assert!(emu.snapshot().persons.is_empty());
    let faults = emu.counters().faults;
    assert_eq!((faults.error_213, faults.rate_limit_15), (1, 1));
    emu.set_faults(Faults::default());
    assert_eq!(
        conn.call(Call::NewPerson, &new_person("p")).unwrap().json()["code"],
        0
    );
}

#[test]
fn dropped_connections_do_no_work_and_lost_answers_do() {
    let emu = lenient_emulator(|c| c.faults.drop_connection = 1.0);
    let mut conn = Connection::open(emu.addr());
    assert!(conn.call(Call::NewPerson, &new_person("dropped")).is_err());
    assert!(emu.snapshot().persons.is_empty(), "dropped before the work");

    emu.set_faults(Faults {
        lose_answer: 1.0,
        ..Faults::default()
    });
    let mut conn = Connection::open(emu.addr());
    assert!(conn.call(Call::NewPerson, &new_person("lost")).is_err());
    let snap = emu.snapshot();
    assert_eq!(
        snap.persons.keys().collect::<Vec<_>>(),
        ["lost"],
        "work done, answer lost"
    );

    let counters = emu.counters();
    assert_eq!(counters.faults.drop_connection, 1);
    assert_eq!(counters.faults.lose_answer, 1);
    assert_eq!(counters.requests, 2);
    assert!(
        counters.codes.is_empty(),
        "no answer was sent: {counters:?}"
    );
}

#[test]
fn transient_image_faults_refuse_addface_images_with_1200() {
    let emu = lenient_emulator(|_| {});
    let mut conn = Connection::open(emu.addr());
    assert_eq!(
        conn.call(Call::NewPerson, &new_person("p")).unwrap().json()["code"],
        0
    );
    emu.set_faults(Faults {
        transient_image: 1.0,
        ..Faults::default()
    });
    let (a, b) = (face_png(40), face_png(41));
    let body = multipart_body(&[
        Field::Text("person_id", "p"),
        Field::File("images[0]", &a),
        Field::File("images[1]", &b),
    ]);
    let v = conn.call(Call::AddFace, &body).unwrap().json();
    assert_eq!(v["code"], 0);
    assert_eq!(
        v["data"],
        json!({"added": 0, "face_ids": [], "ret_codes": [-1200, -1200], "session_id": ""})
    );
    assert_eq!(emu.snapshot().persons["p"].faces.len(), 1);
    assert_eq!(emu.counters().faults.transient_image, 2);
    // Sent again without the fault, the same images are added.
    emu.set_faults(Faults::default());
    let v = conn.call(Call::AddFace, &body).unwrap().json();
    assert_eq!(v["data"]["ret_codes"], json!([0, 0]));
}

#[test]
fn latency_delays_the_answer_not_its_content() {
    let emu = lenient_emulator(|c| {
        c.faults.latency_ms = 20;
        c.faults.jitter_ms = 10;
    });
    let mut conn = Connection::open(emu.addr());
    for _ in 0..3 {
        let sent = std::time::Instant::now();
        let v = conn.call(Call::GetGroupIds, &get_groups()).unwrap().json();
        // At least the latency; the jitter adds 0 to 10 ms on top.
        let elapsed = sent.elapsed();
        assert!(
            elapsed >= std::time::Duration::from_millis(20),
            "answered after {elapsed:?}"
        );
        assert_eq!(
            v,
            json!({"code": 0, "message": "OK", "data": {"group_ids": []}})
        );
    }
    assert_eq!(emu.counters().faults.latency, 3);
}

#[test]
fn the_same_seed_replays_the_same_faults() {
    let run = |seed: u64| -> Vec<i64> {
        let emu = lenient_emulator(|c| {
            c.seed = seed;
            c.faults.error_213 = 0.4;
            c.faults.rate_limit_15 = 0.2;
        });
        let mut conn = Connection::open(emu.addr());
        (0..40)
            .map(|_| {
                conn.call(Call::GetGroupIds, &get_groups()).unwrap().json()["code"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    };
    let first = run(11);
    assert_eq!(first, run(11));
    assert_ne!(first, run(12));
    assert!(first.contains(&0) && first.contains(&213) && first.contains(&15));
}

#[test]
fn keep_alive_with_content_length_and_chunked_bodies() {
    let emu = lenient_emulator(|_| {});
    let mut conn = Connection::open(emu.addr());
    assert_eq!(
        conn.call(Call::NewPerson, &new_person("p")).unwrap().json()["code"],
        0
    );
    let body = br#"{"appid":"1250000000","bucket":"","person_id":"p"}"#;
    let mut raw = format!(
        "POST /face/getinfo HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        good_signature()
    )
    .into_bytes();
    for piece in body.chunks(10) {
        raw.extend(format!("{:x}\r\n", piece.len()).as_bytes());
        raw.extend(piece);
        raw.extend(b"\r\n");
    }
    raw.extend(b"0\r\n\r\n");
    conn.send_raw(&raw).unwrap();
    let answer = conn.read_answer().unwrap();
    assert_eq!(answer.header("connection"), Some("keep-alive"));
    assert_eq!(answer.json()["data"]["person_id"], "p");
    // Two requests sent back to back are answered in order.
    let mut two = Vec::new();
    for call in [Call::GetGroupIds, Call::GetPersonIds] {
        let body = json_body(json!({"group_id": "g"}));
        two.extend(
            format!(
                "POST {} HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                call.path(),
                good_signature(),
                body.bytes.len()
            )
            .as_bytes(),
        );
        two.extend(&body.bytes);
    }
    conn.send_raw(&two).unwrap();
    assert_eq!(
        conn.read_answer().unwrap().json()["data"],
        json!({"group_ids": ["g"]})
    );
    assert_eq!(
        conn.read_answer().unwrap().json()["data"],
        json!({"person_ids": ["p"]})
    );
    assert_eq!(emu.counters().connections, 1);
    // Unknown calls and other methods are refused at the HTTP level.
    let answer = conn
        .request("POST", "/face/nosuchcall", &[], b"{}")
        .unwrap();
    assert_eq!(answer.status, 404);
    let answer = conn.request("GET", "/face/getinfo", &[], b"").unwrap();
    assert_eq!(answer.status, 405);
}

#[test]
fn sixty_four_connections_at_once_with_latency() {
    let emu = lenient_emulator(|c| c.faults.latency_ms = 50);
    let mut conns: Vec<Connection> = (0..64).map(|_| Connection::open(emu.addr())).collect();
    // Every connection sends before any answer is read: all 64 calls are in flight.
    for (i, conn) in conns.iter_mut().enumerate() {
        let body = new_person(&format!("person{i:02}"));
        let head = format!(
            "POST /face/newperson HTTP/1.1\r\nAuthorization: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
            good_signature(),
            body.content_type,
            body.bytes.len()
        );
        let mut raw = head.into_bytes();
        raw.extend(&body.bytes);
        conn.send_raw(&raw).unwrap();
    }
    for conn in &mut conns {
        assert_eq!(conn.read_answer().unwrap().json()["code"], 0);
    }
    let snap = emu.snapshot();
    assert_eq!(snap.persons.len(), 64);
    assert_eq!(snap.groups["g"].len(), 64);
    assert_eq!(emu.counters().connections, 64);
}

#[test]
fn introspection_over_http_matches_the_library() {
    let emu = lenient_emulator(|_| {});
    let mut conn = Connection::open(emu.addr());
    assert_eq!(
        conn.call(Call::NewPerson, &new_person("p")).unwrap().json()["code"],
        0
    );
    let state: StateSnapshot = serde_json::from_slice(
        &conn
            .request("GET", "/_emulator/state", &[], b"")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(state, emu.snapshot());
    let counters: Counters = serde_json::from_slice(
        &conn
            .request("GET", "/_emulator/counters", &[], b"")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(counters, emu.counters());
    assert_eq!(counters.received("newperson"), 1);
    assert_eq!(counters.answered(0), 1);

    let answer = conn
        .request("PUT", "/_emulator/faults", &[], br#"{"error_213": 1.0}"#)
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(emu.faults().error_213, 1.0);
    assert_error(
        &conn.call(Call::GetGroupIds, &get_groups()).unwrap().json(),
        213,
    );
    let answer = conn
        .request("PUT", "/_emulator/faults", &[], br#"{"error_213": 2.0}"#)
        .unwrap();
    assert_eq!(answer.status, 400, "fractions are checked");
    conn.request("PUT", "/_emulator/faults", &[], b"{}")
        .unwrap();
    conn.request("PUT", "/_emulator/qps", &[], br#"{"qps": 1}"#)
        .unwrap();
    let codes: Vec<Value> = (0..2)
        .map(|_| conn.call(Call::GetGroupIds, &get_groups()).unwrap().json()["code"].clone())
        .collect();
    assert_eq!(codes, [json!(0), json!(15)]);
    conn.request("PUT", "/_emulator/qps", &[], br#"{"qps": null}"#)
        .unwrap();
    conn.request(
        "POST",
        "/_emulator/inject",
        &[],
        br#"{"code": 13, "count": 1}"#,
    )
    .unwrap();
    assert_error(
        &conn.call(Call::GetGroupIds, &get_groups()).unwrap().json(),
        13,
    );
    assert_eq!(
        conn.call(Call::GetGroupIds, &get_groups()).unwrap().json()["code"],
        0
    );
}

#[test]
fn the_state_file_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emulator-state.json");
    let config = || {
        let mut c = EmulatorConfig::rehearsal();
        c.qps = None;
        c.state_file = Some(path.clone());
        c
    };
    let emu = Emulator::start(config(), "127.0.0.1:0".parse().unwrap()).unwrap();
    let mut conn = Connection::open(emu.addr());
    let v = conn.call(Call::NewPerson, &new_person("p")).unwrap().json();
    let first_face = v["data"]["face_id"].as_str().unwrap().to_owned();
    // Written shortly after the change, without stopping the emulator.
    let written = (0..100)
        .find_map(|_| {
            let text = std::fs::read(&path).ok();
            let snap = text.and_then(|t| serde_json::from_slice::<StateSnapshot>(&t).ok());
            if snap.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            snap
        })
        .expect("the state file is written while the emulator runs");
    assert_eq!(written, emu.snapshot());
    let before = emu.snapshot();
    drop(conn);
    emu.shutdown().unwrap();
    assert!(!dir.path().join("emulator-state.json.tmp").exists());

    let emu = Emulator::start(config(), "127.0.0.1:0".parse().unwrap()).unwrap();
    assert_eq!(emu.snapshot(), before);
    let mut conn = Connection::open(emu.addr());
    let v = conn.call(Call::NewPerson, &new_person("q")).unwrap().json();
    assert_ne!(v["data"]["face_id"].as_str().unwrap(), first_face);
    let v = conn
        .call(Call::GetInfo, &json_body(json!({"person_id": "p"})))
        .unwrap()
        .json();
    assert_eq!(v["data"]["face_ids"], json!([first_face]));
    // Stopped first: a running emulator's writer could replace the broken file.
    drop(conn);
    emu.shutdown().unwrap();

    std::fs::write(&path, "not json").unwrap();
    let err = Emulator::start(config(), "127.0.0.1:0".parse().unwrap())
        .expect_err("a broken state file is refused");
    assert!(err.to_string().contains("emulator-state.json"), "{err}");
}

#[test]
fn shutdown_stops_accepting_even_with_open_connections() {
    let emu = lenient_emulator(|_| {});
    let addr = emu.addr();
    let mut idle = Connection::open(addr);
    assert_eq!(
        idle.call(Call::GetGroupIds, &get_groups()).unwrap().json()["code"],
        0
    );
    emu.shutdown().unwrap();
    assert!(TcpStream::connect(addr).is_err(), "no longer listening");
    assert!(idle.call(Call::GetGroupIds, &get_groups()).is_err());
}

#[test]
fn rehearsal_config_is_documented_and_rate_limited() {
    let config = EmulatorConfig::rehearsal();
    assert_eq!(config.appid, emulator::REHEARSAL_APPID);
    assert_eq!(config.qps, Some(faceenroll::limits::DEFAULT_QPS));
    assert_eq!(config.credentials, [emulator::rehearsal_credentials()]);
    assert_eq!(config.faults, Faults::default());
}

#[test]
fn ureq_clients_share_one_keep_alive_connection_with_both_framings() {
    let emu = lenient_emulator(|_| {});
    let agent = ureq::AgentBuilder::new().build();
    let url = |call: Call| format!("{}{}", emu.endpoint(), call.path());
    let photo = face_jpeg(9);
    let body = new_person_body("p", &["g"], &photo);
    // Content-Length framing.
    let v: Value = agent
        .post(&url(Call::NewPerson))
        .set("Authorization", &good_signature())
        .set("Content-Type", &body.content_type)
        .send_bytes(&body.bytes)
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(v["code"], 0, "{v}");
    // Chunked framing: ureq sends a reader of unknown length chunked.
    let json = json_body(json!({"person_id": "p"}));
    let v: Value = agent
        .post(&url(Call::GetInfo))
        .set("Authorization", &good_signature())
        .set("Content-Type", &json.content_type)
        .send(std::io::Cursor::new(json.bytes.clone()))
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(v["data"]["face_ids"].as_array().unwrap().len(), 1);
    let state: StateSnapshot = agent
        .get(&format!("{}/_emulator/state", emu.endpoint()))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(state, emu.snapshot());
    assert_eq!(emu.counters().connections, 1);
}
