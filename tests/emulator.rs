//! The emulator's calls end to end: every call in both body encodings, the rules
//! of the service and their error codes, checked against the answers and the state
//! read back through introspection.

mod support;

use faceenroll::limits::{MAX_FACES_PER_PERSON, MAX_REQUEST_BYTES};
use faceenroll::model::ContentHash;
use faceenroll::service::api::{
    AddFaceData, Call, Envelope, FaceInfoData, GetInfoData, NewPersonData,
};
use serde_json::{json, Value};
use support::http::*;
use support::{animated_gif, blank, face_jpeg, face_png, lenient_emulator};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Encoding {
    Json,
    Multipart,
}

/// Images a test sends: by URL from a loopback file server in JSON bodies, as
/// parts in multipart bodies.
struct Photos {
    server: FileServer,
}

impl Photos {
    fn new(files: Vec<(&str, Vec<u8>)>) -> Photos {
        Photos {
            server: FileServer::start(files),
        }
    }
}

fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a.png", face_png(1)),
        ("b.jpg", face_jpeg(2)),
        ("blank.png", blank()),
        ("text.jpg", b"just some text, not a photo".to_vec()),
        ("cut.jpg", face_jpeg(3)[..100].to_vec()),
    ]
}

fn bytes_of(name: &str) -> Vec<u8> {
    files().into_iter().find(|(n, _)| *n == name).unwrap().1
}

/// Builds the body of a call in one encoding from JSON-like fields; image names
/// become `url`/`urls` in JSON and `image`/`images[i]` parts in multipart.
fn body(enc: Encoding, photos: &Photos, fields: Value, images: &[&str]) -> RequestBody {
    let map = fields.as_object().unwrap();
    match enc {
        Encoding::Json => {
            let mut fields = fields.clone();
            if !images.is_empty() {
                let urls: Vec<String> = images.iter().map(|i| photos.server.url(i)).collect();
                if map.contains_key("group_ids") && map.contains_key("person_name") {
                    fields["url"] = json!(urls[0]);
                } else {
                    fields["urls"] = json!(urls);
                }
            }
            json_body(fields)
        }
        Encoding::Multipart => {
            let lists: Vec<(String, Vec<String>)> = map
                .iter()
                .filter_map(|(k, v)| {
                    v.as_array().map(|a| {
                        (
                            k.clone(),
                            a.iter().map(|s| s.as_str().unwrap().to_owned()).collect(),
                        )
                    })
                })
                .collect();
            let list_refs: Vec<(&str, Vec<&str>)> = lists
                .iter()
                .map(|(k, v)| (k.as_str(), v.iter().map(String::as_str).collect()))
                .collect();
            let image_bytes: Vec<Vec<u8>> = images.iter().map(|i| bytes_of(i)).collect();
            let image_names: Vec<String> =
                if map.contains_key("group_ids") && map.contains_key("person_name") {
                    vec!["image".into()]
                } else {
                    (0..images.len()).map(|i| format!("images[{i}]")).collect()
                };
            let mut parts = Vec::new();
            for (k, v) in map {
                if let Some(s) = v.as_str() {
                    parts.push(Field::Text(k, s));
                }
            }
            for (k, v) in &list_refs {
                parts.push(Field::List(k, v));
            }
            for (name, bytes) in image_names.iter().zip(&image_bytes) {
                parts.push(Field::File(name, bytes));
            }
            multipart_body(&parts)
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    ContentHash::of(bytes).to_hex()
}

/// Every call of the contract, in one encoding, with exact answers and the state
/// read back after each change.
fn lifecycle(enc: Encoding) {
    let emu = lenient_emulator(|_| {});
    let photos = Photos::new(files());
    let mut conn = Connection::open(emu.addr());
    let mut call = |call: Call, fields: Value, images: &[&str]| -> Value {
        let answer = conn
            .call(call, &body(enc, &photos, fields, images))
            .expect("answered");
        assert_eq!(answer.status, 200);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        answer.json()
    };

    // newperson: person, groups and first face.
    let v = call(
        Call::NewPerson,
        json!({"person_id": "alice", "group_ids": ["staff", "lab"], "person_name": "Alice", "tag": "t1"}),
        &["a.png"],
    );
    assert_eq!(v["code"], 0, "{v}");
    assert_eq!(
        data_keys(&v),
        [
            "face_id",
            "group_ids",
            "person_id",
            "session_id",
            "suc_face",
            "suc_group"
        ]
    );
    let np: Envelope<NewPersonData> = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(np.data.person_id, "alice");
    assert_eq!((np.data.suc_group, np.data.suc_face), (2, 1));
    assert_eq!(np.data.group_ids, ["staff", "lab"]);
    assert_eq!(np.data.session_id, "");
    assert_eq!(np.data.face_id.len(), 19);
    assert!(np.data.face_id.bytes().all(|b| b.is_ascii_digit()));
    let snap = emu.snapshot();
    assert_eq!(snap.groups["staff"], ["alice"]);
    assert_eq!(snap.groups["lab"], ["alice"]);
    let alice = &snap.persons["alice"];
    assert_eq!((alice.name.as_str(), alice.tag.as_str()), ("Alice", "t1"));
    assert_eq!(alice.groups, ["staff", "lab"]);
    assert_eq!(alice.faces.len(), 1);
    assert_eq!(alice.faces[0].face_id, np.data.face_id);
    assert_eq!(alice.faces[0].content_hash, hex(&face_png(1)));
    assert_eq!((alice.faces[0].width, alice.faces[0].height), (48, 32));

    // addface: per-image outcomes, partial success is code 0.
    let v = call(
        Call::AddFace,
        json!({"person_id": "alice", "tag": "t1"}),
        &["b.jpg", "a.png", "blank.png", "text.jpg", "cut.jpg"],
    );
    assert_eq!(
        data_keys(&v),
        ["added", "face_ids", "ret_codes", "session_id"]
    );
    let af: Envelope<AddFaceData> = serde_json::from_value(v).unwrap();
    assert_eq!(af.code, 0);
    assert_eq!(af.data.added, 1);
    assert_eq!(af.data.ret_codes, [0, -1312, -1101, -1400, -1102]);
    let snap = emu.snapshot();
    let faces = &snap.persons["alice"].faces;
    assert_eq!(af.data.face_ids, [faces[1].face_id.clone()]);
    assert_eq!(faces[1].content_hash, hex(&face_jpeg(2)));
    assert_eq!((faces[1].width, faces[1].height), (40, 30));

    // getinfo, getfaceids, getgroupids, getpersonids.
    let v = call(Call::GetInfo, json!({"person_id": "alice"}), &[]);
    let info: Envelope<GetInfoData> = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(
        data_keys(&v),
        [
            "face_ids",
            "group_ids",
            "person_id",
            "person_name",
            "session_id",
            "tag"
        ]
    );
    assert_eq!(info.data.person_name, "Alice");
    assert_eq!(info.data.tag, "t1");
    assert_eq!(info.data.group_ids, ["staff", "lab"]);
    let face_ids: Vec<String> = faces.iter().map(|f| f.face_id.clone()).collect();
    assert_eq!(info.data.face_ids, face_ids);
    let v = call(Call::GetFaceIds, json!({"person_id": "alice"}), &[]);
    assert_eq!(
        v,
        json!({"code": 0, "message": "OK", "data": {"face_ids": face_ids}})
    );
    let v = call(Call::GetGroupIds, json!({}), &[]);
    assert_eq!(v["data"], json!({"group_ids": ["lab", "staff"]}));
    let v = call(Call::GetPersonIds, json!({"group_id": "lab"}), &[]);
    assert_eq!(v["data"], json!({"person_ids": ["alice"]}));

    // getfaceinfo: every field, with its type, the same twice.
    let v = call(Call::GetFaceInfo, json!({"face_id": face_ids[0]}), &[]);
    let fi: Envelope<FaceInfoData> = serde_json::from_value(v.clone()).unwrap();
    let info = &v["data"]["face_info"];
    for key in [
        "x",
        "y",
        "gender",
        "age",
        "expression",
        "pitch",
        "yaw",
        "roll",
    ] {
        assert!(info[key].is_i64(), "{key} is an int: {v}");
    }
    assert!(info["width"].is_f64() && info["height"].is_f64() && info["glass"].is_boolean());
    assert_eq!(fi.data.face_info.face_id, face_ids[0]);
    assert!((0..=100).contains(&fi.data.face_info.age));
    assert_eq!(
        v,
        call(Call::GetFaceInfo, json!({"face_id": face_ids[0]}), &[])
    );

    // setinfo.
    let v = call(
        Call::SetInfo,
        json!({"person_id": "alice", "person_name": "Alice B", "tag": "t2", "session_id": "s-9"}),
        &[],
    );
    assert_eq!(
        v["data"],
        json!({"person_id": "alice", "session_id": "s-9"})
    );
    let snap = emu.snapshot();
    assert_eq!(snap.persons["alice"].name, "Alice B");
    assert_eq!(snap.persons["alice"].tag, "t2");

    // addgroupids / delgroupids.
    let v = call(
        Call::AddGroupIds,
        json!({"person_id": "alice", "group_ids": ["lab", "night"], "session_id": ""}),
        &[],
    );
    assert_eq!(
        v["data"],
        json!({"person_id": "alice", "added": 1, "group_ids": ["staff", "lab", "night"], "session_id": ""})
    );
    let v = call(
        Call::DelGroupIds,
        json!({"person_id": "alice", "group_ids": ["staff"], "session_id": ""}),
        &[],
    );
    assert_eq!(
        v["data"],
        json!({"person_id": "alice", "deleted": 1, "group_ids": ["lab", "night"], "session_id": ""})
    );
    let snap = emu.snapshot();
    assert!(
        !snap.groups.contains_key("staff"),
        "the empty group is gone"
    );
    assert_eq!(snap.groups["night"], ["alice"]);

    // delface, then delperson.
    let v = call(
        Call::DelFace,
        json!({"person_id": "alice", "face_ids": [face_ids[0]]}),
        &[],
    );
    assert_eq!(
        v["data"],
        json!({"deleted": 1, "face_ids": [face_ids[0]], "session_id": ""})
    );
    assert_eq!(emu.snapshot().persons["alice"].faces.len(), 1);
    let v = call(Call::DelPerson, json!({"person_id": "alice"}), &[]);
    assert_eq!(
        v["data"],
        json!({"person_id": "alice", "deleted": 1, "session_id": ""})
    );
    let snap = emu.snapshot();
    assert!(snap.persons.is_empty() && snap.groups.is_empty());

    let counters = emu.counters();
    assert_eq!(counters.connections, 1, "one keep-alive connection");
    for c in Call::ALL {
        assert!(counters.received(c.name()) >= 1, "{} counted", c.name());
    }
    assert_eq!(counters.answered(0), counters.requests);
}

#[test]
fn every_call_in_json_bodies_with_url_images() {
    lifecycle(Encoding::Json);
}

#[test]
fn every_call_in_multipart_bodies_as_the_sdk_sends_them() {
    lifecycle(Encoding::Multipart);
}

#[test]
fn a_url_wins_over_an_image_part() {
    let emu = lenient_emulator(|_| {});
    let photos = Photos::new(vec![("from-url.png", face_png(7))]);
    let mut conn = Connection::open(emu.addr());
    let url = photos.server.url("from-url.png");
    let part = face_png(8);
    let v = conn
        .call(
            Call::NewPerson,
            &multipart_body(&[
                Field::Text("person_id", "p"),
                Field::List("group_ids", &["g"]),
                Field::Text("url", &url),
                Field::File("image", &part),
            ]),
        )
        .unwrap()
        .json();
    assert_eq!(v["code"], 0, "{v}");
    let url2 = photos.server.url("from-url.png");
    let v = conn
        .call(
            Call::AddFace,
            &json_body(json!({"person_id": "p", "urls": [url2, photos.server.url("missing.png")]})),
        )
        .unwrap()
        .json();
    assert_eq!(v["data"]["ret_codes"], json!([-1312, -1308]));
    let snap = emu.snapshot();
    assert_eq!(snap.persons["p"].faces[0].content_hash, hex(&face_png(7)));
}

#[test]
fn error_codes_of_the_rules() {
    let emu = lenient_emulator(|_| {});
    let mut conn = Connection::open(emu.addr());
    let face = face_png(1);
    let mut send = |call: Call, body: RequestBody| conn.call(call, &body).unwrap().json();

    assert_eq!(
        send(Call::NewPerson, new_person_body("p", &["g"], &face))["code"],
        0
    );
    let before = emu.snapshot();
    let long = "x".repeat(65);
    let cases: Vec<(Call, RequestBody, i64)> = vec![
        (
            Call::NewPerson,
            new_person_body("p", &["g"], &face_png(2)),
            -1302,
        ),
        (
            Call::NewPerson,
            new_person_body("a b", &["g"], &face),
            -1313,
        ),
        (
            Call::NewPerson,
            new_person_body("a/b", &["g"], &face),
            -1313,
        ),
        (
            Call::NewPerson,
            new_person_body("q", &["g\tx"], &face),
            -1313,
        ),
        (
            Call::NewPerson,
            new_person_body("q", &["g\nx"], &face),
            -1313,
        ),
        (
            Call::NewPerson,
            new_person_body(&long, &["g"], &face),
            -1304,
        ),
        (
            Call::NewPerson,
            new_person_body("q", &[&long], &face),
            -1304,
        ),
        (
            Call::NewPerson,
            json_body(
                json!({"person_id": "q", "group_ids": ["g"], "person_name": "n".repeat(257), "url": "http://127.0.0.1:1/x"}),
            ),
            -1304,
        ),
        (
            Call::SetInfo,
            json_body(json!({"person_id": "p", "tag": "t".repeat(1025)})),
            -1304,
        ),
        (Call::NewPerson, new_person_body("q", &["g"], b""), -1300),
        (
            Call::NewPerson,
            new_person_body("q", &["g"], b"plain text"),
            -1400,
        ),
        (
            Call::NewPerson,
            new_person_body("q", &["g"], &animated_gif()),
            -1400,
        ),
        (
            Call::NewPerson,
            new_person_body("q", &["g"], &face_jpeg(1)[..60]),
            -1102,
        ),
        (
            Call::NewPerson,
            new_person_body("q", &["g"], &blank()),
            -1101,
        ),
        (
            Call::NewPerson,
            json_body(
                json!({"person_id": "q", "group_ids": ["g"], "url": "http://127.0.0.1:1/nothing-listens.jpg"}),
            ),
            -1308,
        ),
        (
            Call::NewPerson,
            multipart_body(&[Field::Text("person_id", "q"), Field::File("image", &face)]),
            -1301,
        ),
        (
            Call::NewPerson,
            multipart_body(&[
                Field::Text("person_id", "q"),
                Field::List("group_ids", &["g"]),
            ]),
            -1301,
        ),
        (Call::GetInfo, json_body(json!({})), -1301),
        (
            Call::GetInfo,
            json_body(json!({"person_id": "nobody"})),
            -1303,
        ),
        (
            Call::DelPerson,
            json_body(json!({"person_id": "nobody"})),
            -1303,
        ),
        (
            Call::AddFace,
            multipart_body(&[
                Field::Text("person_id", "nobody"),
                Field::File("images[0]", &face),
            ]),
            -1303,
        ),
        (Call::AddFace, json_body(json!({"person_id": "p"})), -1301),
        (
            Call::DelFace,
            json_body(json!({"person_id": "p", "face_ids": ["123"]})),
            -1305,
        ),
        (
            Call::GetFaceInfo,
            json_body(json!({"face_id": "1840000000000009999"})),
            -1305,
        ),
        (
            Call::GetPersonIds,
            json_body(json!({"group_id": "nogroup"})),
            -1306,
        ),
        (
            Call::AddGroupIds,
            json_body(json!({"person_id": "p", "group_ids": ["bad group"]})),
            -1313,
        ),
        (
            Call::GetInfo,
            RequestBody {
                content_type: "application/json".into(),
                bytes: b"{\"appid\": ".to_vec(),
            },
            21,
        ),
        (
            Call::GetInfo,
            RequestBody {
                content_type: "multipart/form-data; boundary=zz".into(),
                bytes: b"--zz\r\nContent-Disposition: form-data; name=\"appid\"\r\n\r\n1250"
                    .to_vec(),
            },
            21,
        ),
        (
            Call::GetInfo,
            RequestBody {
                content_type: "application/json".into(),
                bytes: br#"{"person_id": "p"}"#.to_vec(),
            },
            -1301,
        ),
    ];
    for (call, body, code) in cases {
        let v = send(call, body.clone());
        assert_error(&v, code);
    }
    assert_eq!(emu.snapshot(), before, "refused calls changed nothing");
}

#[test]
fn a_person_holds_at_most_20_faces_and_duplicates_are_checked_first() {
    let emu = lenient_emulator(|_| {});
    let mut conn = Connection::open(emu.addr());
    let first = face_png(0);
    assert_eq!(
        conn.call(Call::NewPerson, &new_person_body("p", &["g"], &first))
            .unwrap()
            .json()["code"],
        0
    );
    let photos: Vec<Vec<u8>> = (1..=21).map(face_png).collect();
    let mut parts: Vec<Field> = vec![Field::Text("person_id", "p")];
    let names: Vec<String> = (0..=photos.len()).map(|i| format!("images[{i}]")).collect();
    for (name, bytes) in names.iter().zip(&photos) {
        parts.push(Field::File(name, bytes));
    }
    parts.push(Field::File(&names[photos.len()], &first));
    let v = conn
        .call(Call::AddFace, &multipart_body(&parts))
        .unwrap()
        .json();
    assert_eq!(v["code"], 0);
    let codes: Vec<i64> = serde_json::from_value(v["data"]["ret_codes"].clone()).unwrap();
    let mut expected = vec![0; MAX_FACES_PER_PERSON - 1];
    expected.extend([-1309, -1309, -1312]);
    assert_eq!(codes, expected);
    assert_eq!(v["data"]["added"], 19);
    let snap = emu.snapshot();
    let faces = &snap.persons["p"].faces;
    assert_eq!(faces.len(), MAX_FACES_PER_PERSON);
    let stored: Vec<String> = faces.iter().map(|f| f.content_hash.clone()).collect();
    let mut sent = vec![hex(&first)];
    sent.extend(photos[..19].iter().map(|p| hex(p)));
    assert_eq!(stored, sent, "the faces stored are exactly the bytes sent");
    let ids: std::collections::BTreeSet<_> = faces.iter().map(|f| &f.face_id).collect();
    assert_eq!(ids.len(), MAX_FACES_PER_PERSON, "face ids are unique");
}

#[test]
fn bodies_over_6_mb_are_refused_with_23_and_the_connection_goes_on() {
    let emu = lenient_emulator(|_| {});
    let mut conn = Connection::open(emu.addr());
    let big = vec![b'x'; MAX_REQUEST_BYTES as usize + 1];
    let body = multipart_body(&[
        Field::Text("person_id", "p"),
        Field::File("images[0]", &big),
    ]);
    let v = conn.call(Call::AddFace, &body).unwrap().json();
    assert_error(&v, 23);
    // Chunked, too: the limit applies to the decoded body.
    let chunk = vec![b'y'; 1024 * 1024];
    let mut raw = format!(
        "POST /face/getinfo HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        good_signature()
    )
    .into_bytes();
    for _ in 0..7 {
        raw.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        raw.extend(&chunk);
        raw.extend(b"\r\n");
    }
    raw.extend(b"0\r\n\r\n");
    conn.send_raw(&raw).unwrap();
    assert_error(&conn.read_answer().unwrap().json(), 23);
    // The same connection still serves.
    let v = conn
        .call(Call::GetGroupIds, &json_body(json!({})))
        .unwrap()
        .json();
    assert_eq!(v["code"], 0);
    assert_eq!(emu.counters().connections, 1);
}

/// The samples the README uses: enrolled through the emulator person by person
/// (newperson with the first photo, addface with the rest), each special file gets
/// the answer `samples/README.md` documents.
#[test]
fn the_samples_behave_as_documented() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let mut manifest = csv::Reader::from_path(root.join("manifest.csv")).unwrap();
    assert_eq!(
        manifest.headers().unwrap(),
        vec!["person_id", "image", "group_ids", "person_name", "tag"]
    );
    let mut persons: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for record in manifest.records() {
        let record = record.unwrap();
        let groups: Vec<String> = record[2].split(';').map(str::to_owned).collect();
        match persons.last_mut() {
            Some((id, _, images)) if id == &record[0] => images.push(record[1].to_owned()),
            _ => persons.push((record[0].to_owned(), groups, vec![record[1].to_owned()])),
        }
    }
    let on_disk = walkdir::WalkDir::new(root.join("tree"))
        .into_iter()
        .filter(|e| e.as_ref().unwrap().file_type().is_file())
        .count();
    let listed: usize = persons.iter().map(|p| p.2.len()).sum();
    assert_eq!(listed, on_disk, "the manifest lists every file of the tree");

    let emu = lenient_emulator(|_| {});
    let mut conn = Connection::open(emu.addr());
    let mut outcomes = std::collections::BTreeMap::new();
    for (person, groups, images) in &persons {
        let read = |rel: &str| std::fs::read(root.join(rel)).unwrap();
        let first = read(&images[0]);
        let group_refs: Vec<&str> = groups.iter().map(String::as_str).collect();
        let v = conn
            .call(
                Call::NewPerson,
                &new_person_body(person, &group_refs, &first),
            )
            .unwrap()
            .json();
        outcomes.insert(images[0].clone(), v["code"].as_i64().unwrap());
        for chunk in images[1..].chunks(20) {
            let bytes: Vec<Vec<u8>> = chunk.iter().map(|i| read(i)).collect();
            let names: Vec<String> = (0..chunk.len()).map(|i| format!("images[{i}]")).collect();
            let mut parts = vec![Field::Text("person_id", person)];
            for (name, b) in names.iter().zip(&bytes) {
                parts.push(Field::File(name, b));
            }
            let v = conn
                .call(Call::AddFace, &multipart_body(&parts))
                .unwrap()
                .json();
            assert_eq!(v["code"], 0, "{v}");
            for (image, code) in chunk.iter().zip(v["data"]["ret_codes"].as_array().unwrap()) {
                outcomes.insert(image.clone(), code.as_i64().unwrap());
            }
        }
    }
    let special: std::collections::BTreeMap<&str, i64> = [
        ("tree/alice/04-copy-of-01.jpg", -1312),
        ("tree/bob/21.jpg", -1309),
        ("tree/bob/22.jpg", -1309),
        ("tree/bob/23.jpg", -1309),
        ("tree/carol/03-blank.png", -1101),
        ("tree/carol/04-truncated.jpg", -1102),
        ("tree/dave/02-not-an-image.jpg", -1400),
    ]
    .into_iter()
    .collect();
    for (image, code) in &outcomes {
        let expected = special.get(image.as_str()).copied().unwrap_or(0);
        assert_eq!(*code, expected, "{image}");
    }
    let snap = emu.snapshot();
    assert_eq!(snap.persons["bob"].faces.len(), MAX_FACES_PER_PERSON);
    assert_eq!(snap.persons["alice"].faces.len(), 3);
    assert!(snap.persons["alice"]
        .faces
        .iter()
        .all(|f| (f.width, f.height) == (64, 64)));
    assert_eq!(snap.groups["visitors"], ["carol", "dave"]);
}
