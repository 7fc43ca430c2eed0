//! What the client puts on the wire, checked on its own: every call is sent to a
//! capture server and its raw request compared with a request written by hand from
//! the contract (`shared/spec/API.md`): lists as JSON arrays or `name[i]` parts,
//! `url`/`urls` in JSON, `image`/`images[i]` parts in multipart, `appid` and
//! `bucket` in every body, optional fields present when given and absent when not.
//! Then the same calls against the emulator's strict reading, which refuses what
//! the contract does not allow.

mod support;

use faceenroll::emulator::{rehearsal_credentials, REHEARSAL_APPID};
use faceenroll::model::{GroupId, PersonId};
use faceenroll::service::api::Call;
use faceenroll::service::client::{Client, ClientConfig, ImageBody};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use support::capture::{CaptureServer, Captured, CapturedPart};

fn client_of(endpoint: &str) -> Client {
    Client::new(ClientConfig::new(
        endpoint,
        REHEARSAL_APPID,
        "",
        rehearsal_credentials(),
    ))
    .unwrap()
}

fn pid(id: &str) -> PersonId {
    PersonId::new(id).unwrap()
}

fn gids(ids: &[&str]) -> Vec<GroupId> {
    ids.iter().map(|g| GroupId::new(*g).unwrap()).collect()
}

/// The request line and headers every call carries.
fn assert_call(captured: &Captured, name: &str) {
    assert_eq!(captured.method, "POST");
    assert_eq!(captured.path, format!("/face/{name}"));
    assert!(
        captured
            .header("authorization")
            .is_some_and(|a| a.len() > 40),
        "{captured:?}"
    );
    assert_eq!(
        captured.header("content-length"),
        Some(captured.body.len().to_string().as_str())
    );
}

/// A JSON call: its body equals `expected` exactly (no key more, no key less).
fn assert_json(captured: &Captured, name: &str, expected: serde_json::Value) {
    assert_call(captured, name);
    assert_eq!(captured.json(), expected, "{name}");
}

/// A multipart call: its parts, sorted by name, equal `expected`.
fn assert_parts(captured: &Captured, name: &str, mut expected: Vec<CapturedPart>) {
    assert_call(captured, name);
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(captured.parts(), expected, "{name}");
}

struct Photos {
    _dir: tempfile::TempDir,
    first: PathBuf,
    second: PathBuf,
}

/// Two PNG photos; the first has a space in its name, which the part's filename
/// carries URL-quoted.
fn photos() -> Photos {
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("face 1.png");
    let second = dir.path().join("face2.png");
    std::fs::write(&first, support::photo(1)).unwrap();
    std::fs::write(&second, support::photo(2)).unwrap();
    Photos {
        _dir: dir,
        first,
        second,
    }
}

#[test]
fn newperson_on_the_wire_as_the_contract_spells_it() {
    let server = CaptureServer::start();
    let client = client_of(&server.endpoint);
    let photos = photos();
    let png = |p: &PathBuf| std::fs::read(p).unwrap();

    // A local photo, one group, name and tag: multipart, the list as group_ids[0].
    let image = ImageBody::File(photos.first.clone());
    client
        .new_person(
            &pid("p1"),
            &gids(&["g1"]),
            &image,
            Some("Ann Lee"),
            Some("t"),
        )
        .unwrap();
    assert_parts(
        &server.only(),
        "newperson",
        vec![
            CapturedPart::text("appid", "1250000000"),
            CapturedPart::text("bucket", ""),
            CapturedPart::text("group_ids[0]", "g1"),
            CapturedPart::text("person_id", "p1"),
            CapturedPart::text("person_name", "Ann Lee"),
            CapturedPart::text("tag", "t"),
            CapturedPart::image("image", "face%201.png", "image/png", &png(&photos.first)),
        ],
    );

    // Two groups, no name or tag: neither field is sent.
    client
        .new_person(&pid("p2"), &gids(&["g1", "g2"]), &image, None, None)
        .unwrap();
    assert_parts(
        &server.only(),
        "newperson",
        vec![
            CapturedPart::text("appid", "1250000000"),
            CapturedPart::text("bucket", ""),
            CapturedPart::text("group_ids[0]", "g1"),
            CapturedPart::text("group_ids[1]", "g2"),
            CapturedPart::text("person_id", "p2"),
            CapturedPart::image("image", "face%201.png", "image/png", &png(&photos.first)),
        ],
    );

    // Bytes the tool produced: the same part, under the filename given.
    let bytes = ImageBody::Bytes {
        filename: "face2.jpg".into(),
        bytes: Arc::from(png(&photos.second)),
    };
    client
        .new_person(&pid("p3"), &gids(&["g1"]), &bytes, None, Some("t"))
        .unwrap();
    assert_parts(
        &server.only(),
        "newperson",
        vec![
            CapturedPart::text("appid", "1250000000"),
            CapturedPart::text("bucket", ""),
            CapturedPart::text("group_ids[0]", "g1"),
            CapturedPart::text("person_id", "p3"),
            CapturedPart::text("tag", "t"),
            CapturedPart::image("image", "face2.jpg", "image/png", &png(&photos.second)),
        ],
    );

    // A URL: JSON, one group still an array, `url` a string.
    let url = ImageBody::Url("http://127.0.0.1:9/a.jpg".into());
    client
        .new_person(&pid("p4"), &gids(&["g1"]), &url, None, None)
        .unwrap();
    assert_json(
        &server.only(),
        "newperson",
        json!({"appid": "1250000000", "bucket": "", "group_ids": ["g1"],
               "person_id": "p4", "url": "http://127.0.0.1:9/a.jpg"}),
    );
    client
        .new_person(&pid("p5"), &gids(&["g1", "g2"]), &url, Some("N"), Some("T"))
        .unwrap();
    assert_json(
        &server.only(),
        "newperson",
        json!({"appid": "1250000000", "bucket": "", "group_ids": ["g1", "g2"],
               "person_id": "p5", "person_name": "N", "tag": "T",
               "url": "http://127.0.0.1:9/a.jpg"}),
    );
}

#[test]
fn addface_on_the_wire_as_the_contract_spells_it() {
    let server = CaptureServer::start();
    let client = client_of(&server.endpoint);
    let photos = photos();
    let png = |p: &PathBuf| std::fs::read(p).unwrap();

    // Local photos: images[0], images[1] in order, and the tag when given.
    let files = [
        ImageBody::File(photos.first.clone()),
        ImageBody::File(photos.second.clone()),
    ];
    client.add_faces(&pid("p1"), &files, Some("t")).unwrap();
    assert_parts(
        &server.only(),
        "addface",
        vec![
            CapturedPart::text("appid", "1250000000"),
            CapturedPart::text("bucket", ""),
            CapturedPart::text("person_id", "p1"),
            CapturedPart::text("tag", "t"),
            CapturedPart::image(
                "images[0]",
                "face%201.png",
                "image/png",
                &png(&photos.first),
            ),
            CapturedPart::image("images[1]", "face2.png", "image/png", &png(&photos.second)),
        ],
    );
    // One local photo, no tag: still images[0], never `image`.
    client.add_faces(&pid("p1"), &files[1..], None).unwrap();
    assert_parts(
        &server.only(),
        "addface",
        vec![
            CapturedPart::text("appid", "1250000000"),
            CapturedPart::text("bucket", ""),
            CapturedPart::text("person_id", "p1"),
            CapturedPart::image("images[0]", "face2.png", "image/png", &png(&photos.second)),
        ],
    );

    // One URL: `urls` is an array of one.
    let urls = [ImageBody::Url("http://127.0.0.1:9/a.jpg".into())];
    client.add_faces(&pid("p1"), &urls, None).unwrap();
    assert_json(
        &server.only(),
        "addface",
        json!({"appid": "1250000000", "bucket": "", "person_id": "p1",
               "urls": ["http://127.0.0.1:9/a.jpg"]}),
    );
    let urls = [
        ImageBody::Url("http://127.0.0.1:9/a.jpg".into()),
        ImageBody::Url("http://127.0.0.1:9/b.jpg".into()),
    ];
    client.add_faces(&pid("p1"), &urls, Some("t")).unwrap();
    assert_json(
        &server.only(),
        "addface",
        json!({"appid": "1250000000", "bucket": "", "person_id": "p1", "tag": "t",
               "urls": ["http://127.0.0.1:9/a.jpg", "http://127.0.0.1:9/b.jpg"]}),
    );
}

#[test]
fn calls_without_images_on_the_wire_as_the_contract_spells_them() {
    let server = CaptureServer::start();
    let client = client_of(&server.endpoint);
    let base = |fields: serde_json::Value| {
        let mut body = json!({"appid": "1250000000", "bucket": ""});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        body
    };

    client.set_info(&pid("p1"), Some("Ann"), None).unwrap();
    assert_json(
        &server.only(),
        "setinfo",
        base(json!({"person_id": "p1", "person_name": "Ann"})),
    );
    client.set_info(&pid("p1"), None, Some("t")).unwrap();
    assert_json(
        &server.only(),
        "setinfo",
        base(json!({"person_id": "p1", "tag": "t"})),
    );
    client.set_info(&pid("p1"), Some("Ann"), Some("t")).unwrap();
    assert_json(
        &server.only(),
        "setinfo",
        base(json!({"person_id": "p1", "person_name": "Ann", "tag": "t"})),
    );

    client.get_info(&pid("p1")).unwrap();
    assert_json(&server.only(), "getinfo", base(json!({"person_id": "p1"})));
    client.del_person(&pid("p1")).unwrap();
    assert_json(
        &server.only(),
        "delperson",
        base(json!({"person_id": "p1"})),
    );
    client.get_face_ids(&pid("p1")).unwrap();
    assert_json(
        &server.only(),
        "getfaceids",
        base(json!({"person_id": "p1"})),
    );
    client.get_group_ids().unwrap();
    assert_json(&server.only(), "getgroupids", base(json!({})));
    client.get_person_ids(&GroupId::new("g1").unwrap()).unwrap();
    assert_json(
        &server.only(),
        "getpersonids",
        base(json!({"group_id": "g1"})),
    );
    client.get_face_info("1840000000000000001").unwrap();
    assert_json(
        &server.only(),
        "getfaceinfo",
        base(json!({"face_id": "1840000000000000001"})),
    );

    // Lists of one are arrays of one.
    client.del_faces(&pid("p1"), &["7".to_owned()]).unwrap();
    assert_json(
        &server.only(),
        "delface",
        base(json!({"person_id": "p1", "face_ids": ["7"]})),
    );
    client
        .del_faces(&pid("p1"), &["7".to_owned(), "8".to_owned()])
        .unwrap();
    assert_json(
        &server.only(),
        "delface",
        base(json!({"person_id": "p1", "face_ids": ["7", "8"]})),
    );
    client.add_group_ids(&pid("p1"), &gids(&["g2"])).unwrap();
    assert_json(
        &server.only(),
        "addgroupids",
        base(json!({"person_id": "p1", "group_ids": ["g2"]})),
    );
    client
        .del_group_ids(&pid("p1"), &gids(&["g2", "g3"]))
        .unwrap();
    assert_json(
        &server.only(),
        "delgroupids",
        base(json!({"person_id": "p1", "group_ids": ["g2", "g3"]})),
    );
}

#[test]
fn the_strict_emulator_takes_every_call_the_client_makes() {
    let emulator = support::emulator_with(|c| c.probes.strict = true);
    let client = support::client(&emulator);
    let photos = photos();
    let person = pid("p1");
    let created = client
        .new_person(
            &person,
            &gids(&["g1"]),
            &ImageBody::File(photos.first.clone()),
            Some("Ann"),
            Some("t"),
        )
        .unwrap();
    let added = client
        .add_faces(
            &person,
            &[ImageBody::File(photos.second.clone())],
            Some("t"),
        )
        .unwrap();
    assert_eq!(added.ret_codes, [0]);
    client.set_info(&person, Some("Bea"), None).unwrap();
    client.add_group_ids(&person, &gids(&["g2"])).unwrap();
    client.del_group_ids(&person, &gids(&["g2"])).unwrap();
    let info = client.get_info(&person).unwrap();
    assert_eq!((info.person_name.as_str(), info.tag.as_str()), ("Bea", "t"));
    assert_eq!(info.group_ids, ["g1"]);
    client.get_group_ids().unwrap();
    client.get_person_ids(&GroupId::new("g1").unwrap()).unwrap();
    client.get_face_ids(&person).unwrap();
    client.get_face_info(&created.face_id).unwrap();
    client
        .del_faces(&person, std::slice::from_ref(&created.face_id))
        .unwrap();
    client.del_person(&person).unwrap();
    let counters = emulator.counters();
    assert_eq!(counters.answered(21), 0, "{counters:?}");
    assert_eq!(counters.answered(0), 12, "{counters:?}");
}

#[test]
fn the_strict_emulator_refuses_a_text_where_the_contract_says_array() {
    use support::http::{json_body, multipart_body, Connection, Field};
    let strict = support::emulator_with(|c| c.probes.strict = true);
    let lenient = support::emulator_with(|c| c.probes.strict = false);
    let face = support::photo(3);
    let bare = |body: &support::http::RequestBody, emulator: &faceenroll::emulator::Emulator| {
        let mut conn = Connection::open(emulator.addr());
        conn.call(Call::NewPerson, body).unwrap().json()["code"].clone()
    };
    // group_ids as a bare string in JSON (with a URL nobody serves).
    let json =
        json_body(json!({"person_id": "p1", "group_ids": "g1", "url": "http://127.0.0.1:9/x"}));
    assert_eq!(bare(&json, &strict), json!(21));
    assert_ne!(
        bare(&json, &lenient),
        json!(21),
        "the lenient reading takes it"
    );
    // group_ids as an unindexed part in multipart.
    let multi = multipart_body(&[
        Field::Text("person_id", "p2"),
        Field::Text("group_ids", "g1"),
        Field::File("image", &face),
    ]);
    assert_eq!(bare(&multi, &strict), json!(21));
    assert_eq!(bare(&multi, &lenient), json!(0));
    assert!(strict.snapshot().persons.is_empty());
}
