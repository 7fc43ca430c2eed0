//! The store's bytes, frozen: every record this version writes, and every format
//! earlier versions wrote, kept as committed fixtures under `tests/fixtures/store/`.
//!
//! - `v2/` (this format, [`STORE_FORMAT`]): the whole store of a sample job that
//!   holds every record type, every enum variant and every metadata key, one file
//!   per tree. Today's code must write exactly these bytes
//!   ([`todays_store_writes_the_committed_bytes`]) and read them back as the
//!   sample ([`the_committed_bytes_of_this_format_read_as_the_sample_job`]).
//! - `v1/` (postcard behind format byte 1, photo entries without flags) and `json/`
//!   (JSON objects, before the format byte): stores as those versions wrote them,
//!   opened and migrated by today's code, checked field by field.
//!
//! Each `TREE.hex` file holds one line per key in key order, `KEY VALUE` in hex
//! (`-` for an empty value); lines starting with `#` are notes for the reader. The
//! files are written once ([`write_the_fixtures_of_this_format`], ignored, which
//! refuses to overwrite) and never regenerated: see the rule in `record.rs`.

use super::*;
use crate::faces::Found;
use crate::model::{GroupId, ImageRef, PersonId};
use crate::shard::Shard;

/// Every non-empty tree of a store: name → entries in key order.
type Dump = BTreeMap<String, Vec<(Vec<u8>, Vec<u8>)>>;

/// What a test failing here asks of whoever changed a record.
const THE_RULE: &str = "a stored record's encoding changed: bump the store format and add a \
    migration (STORE_FORMAT and Store::migrate in src/store/mod.rs), freeze the new \
    format's bytes in a new tests/fixtures/store/vN/ and keep the old fixtures as they \
    are (see the rule above the records in src/store/record.rs)";

fn fixtures(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/store")
        .join(version)
}

fn this_format() -> String {
    format!("v{STORE_FORMAT}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    if text == "-" {
        return Vec::new();
    }
    assert!(text.len().is_multiple_of(2), "odd hex {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// A key or value as a reader of a fixture file sees it.
fn shown(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

/// The committed store of `version`.
fn read_fixtures(version: &str) -> Dump {
    let dir = fixtures(version);
    let mut dump = Dump::new();
    for file in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = file.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("hex") {
            continue;
        }
        let tree = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let entries = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|line| {
                let (key, value) = line
                    .split_once(' ')
                    .unwrap_or_else(|| panic!("{}: no value in {line}", path.display()));
                (unhex(key.trim()), unhex(value.trim()))
            })
            .collect();
        dump.insert(tree, entries);
    }
    dump
}

/// Every non-empty tree of `store`, as stored.
fn dump(store: &Store) -> Dump {
    let mut dump = Dump::new();
    for name in store.db.tree_names() {
        if name.as_ref() == b"__sled__default" {
            continue;
        }
        let tree = store.db.open_tree(&name).unwrap();
        let entries: Vec<_> = tree
            .iter()
            .map(|item| {
                let (k, v) = item.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect();
        if !entries.is_empty() {
            dump.insert(String::from_utf8(name.to_vec()).unwrap(), entries);
        }
    }
    dump
}

/// Writes `dump` as the sled database of the state directory `dir`, byte for byte,
/// as the version that made it left it.
fn lay_down(dir: &Path, dump: &Dump) {
    let db = sled::open(StateDir::new(dir).db()).unwrap();
    for (tree, entries) in dump {
        let tree = db.open_tree(tree).unwrap();
        for (key, value) in entries {
            tree.insert(key.as_slice(), value.as_slice()).unwrap();
        }
    }
    db.flush().unwrap();
}

/// The differences between what today's code wrote and what is committed, one line
/// each (the first 20).
fn differences(written: &Dump, committed: &Dump) -> Vec<String> {
    let mut out = Vec::new();
    let trees: std::collections::BTreeSet<&String> =
        written.keys().chain(committed.keys()).collect();
    for tree in trees {
        let w: BTreeMap<_, _> = written.get(tree).into_iter().flatten().cloned().collect();
        let c: BTreeMap<_, _> = committed.get(tree).into_iter().flatten().cloned().collect();
        let keys: std::collections::BTreeSet<&Vec<u8>> = w.keys().chain(c.keys()).collect();
        for key in keys {
            match (w.get(key), c.get(key)) {
                (Some(a), Some(b)) if a == b => {}
                (Some(a), Some(b)) => out.push(format!(
                    "{tree} {}: written {} committed {}",
                    shown(key),
                    hex(a),
                    hex(b)
                )),
                (Some(a), None) => out.push(format!(
                    "{tree} {}: written {}, not in the fixtures",
                    shown(key),
                    hex(a)
                )),
                (None, _) => out.push(format!("{tree} {}: committed, not written", shown(key))),
            }
        }
    }
    out.truncate(20);
    out
}

// The sample job: one of every record, every variant, every key.

const AT: u64 = 1_764_000_000;

fn hash(seed: u8) -> ContentHash {
    ContentHash(std::array::from_fn(|i| seed.wrapping_add(i as u8)))
}

fn group(name: &str) -> GroupId {
    GroupId::new(name).unwrap()
}

fn failure(kind: FailureKind, code: Option<i64>, message: &str) -> Failure {
    Failure {
        kind,
        code,
        message: message.into(),
    }
}

/// A photo of bob's with nothing but its state, from source `b`.
fn plain(seq: u64, state: PhotoState) -> PhotoEntry {
    let path = format!("bob/{seq:02}.jpg");
    PhotoEntry {
        person: "bob".into(),
        image: ImageRef::File(path.clone().into()),
        origin: Origin::Tree {
            path: format!("/photos/{path}").into(),
        },
        seq,
        hash: None,
        size: None,
        modified: None,
        state,
        attempts: 0,
        generation: 3,
        note: None,
        given: None,
        source: Some("b".into()),
        retired: false,
    }
}

/// Every field given, every value distinct, so a field moved or retyped changes
/// the bytes.
fn full_photo() -> PhotoEntry {
    PhotoEntry {
        person: "bob".into(),
        image: ImageRef::File("bob/01.jpg".into()),
        origin: Origin::Manifest {
            file: "/lists/list.csv".into(),
            line: 2,
        },
        seq: 1,
        hash: Some(hash(1)),
        size: Some(2048),
        modified: Some(1_764_000_000_123_456_789),
        state: PhotoState::Enrolled {
            face: FaceRef::Id("1840".into()),
        },
        attempts: 7,
        generation: 3,
        note: Some("normalized from 9000x6000 JPEG".into()),
        given: Some(GivenFields {
            groups: vec!["staff".into(), "night".into()],
            name: Some("Bob B".into()),
            tag: Some("t-1".into()),
        }),
        source: Some("b".into()),
        retired: false,
    }
}

fn sample_photos() -> Vec<PhotoEntry> {
    use FailureKind::*;
    let reason = |r: &str| r.to_owned();
    let states = [
        PhotoState::Pending,
        PhotoState::InDoubt,
        PhotoState::Enrolled {
            face: FaceRef::Confirmed,
        },
        PhotoState::Duplicate {
            reason: reason("same content as bob/01.jpg"),
        },
        PhotoState::Skipped {
            reason: reason("not a photo"),
        },
        PhotoState::Full {
            reason: reason("the person holds 20 faces"),
        },
        PhotoState::Failed(failure(Input, None, "bob/08.jpg: empty file")),
        PhotoState::Failed(failure(Permanent, Some(-1101), "no face found")),
        PhotoState::Deferred(failure(RetriesExhausted, Some(-1308), "busy")),
        PhotoState::Spare {
            reason: reason("over the person's 20 places"),
        },
        PhotoState::Removed {
            face_id: "1701".into(),
            at: AT + 5,
        },
    ];
    let mut photos = vec![full_photo()];
    photos.extend(
        states
            .into_iter()
            .enumerate()
            .map(|(i, state)| plain(i as u64 + 2, state)),
    );
    photos.push(PhotoEntry {
        generation: 2,
        retired: true,
        ..plain(13, PhotoState::Pending)
    });
    photos.push(PhotoEntry {
        image: ImageRef::Url("https://photos.example/bob/14.jpg".into()),
        origin: Origin::Manifest {
            file: "/lists/list.csv".into(),
            line: 14,
        },
        source: None,
        ..plain(14, PhotoState::Pending)
    });
    photos
}

fn key_of(photo: &PhotoEntry) -> PhotoKey {
    PhotoKey::new(&photo.person, &photo.image)
}

fn sample_persons() -> Vec<PersonEntry> {
    let person = |id: &str, state: PersonState| PersonEntry {
        person: PersonId::new(id).unwrap(),
        fields: PersonFields::default(),
        state,
        generation: 3,
    };
    vec![
        person("ann", PersonState::New),
        PersonEntry {
            fields: PersonFields {
                groups: vec![group("staff"), group("night")],
                name: Some("Bob B".into()),
                tag: Some("t-1".into()),
            },
            ..person("bob", PersonState::Ready { created: true })
        },
        person("cid", PersonState::Stale),
        PersonEntry {
            generation: 2,
            ..person(
                "dee",
                PersonState::Failed {
                    reason: "no photo could seed it".into(),
                },
            )
        },
    ]
}

fn sample_meta() -> JobMeta {
    JobMeta {
        source: Some("/photos".into()),
        generation: 3,
        started: Some(AT),
        finished: Some(AT + 600),
        last_outcome: Some("finished: 12 enrolled".into()),
        sources: [("a".to_owned(), 1), ("b".to_owned(), 3)].into(),
    }
}

fn sample_limit() -> RequestLimit {
    RequestLimit {
        accepted: 4_000_000,
        refused: Some(5_000_000),
        probing: false,
    }
}

fn sample_shared() -> Vec<SharedContent> {
    let listing = |person: &str, line| SharedListing {
        person: person.into(),
        image: ImageRef::File("shared/avatar.png".into()),
        origin: Origin::Manifest {
            file: "/lists/list.csv".into(),
            line,
        },
    };
    vec![SharedContent {
        photos: vec![listing("ann", 20), listing("bob", 21)],
    }]
}

fn sample_not_taken() -> Vec<NotTaken> {
    vec![
        NotTaken {
            origin: Origin::Manifest {
                file: "/lists/list.csv".into(),
                line: 7,
            },
            failed: true,
            class: "bad person id".into(),
            message: "/lists/list.csv:7: person id \"a b\" holds a space".into(),
            cells: Some(Cells {
                person_id: "a b".into(),
                image: "ab/1.jpg".into(),
                group_ids: "staff;night".into(),
                person_name: "A B".into(),
                tag: "t-7".into(),
            }),
            generation: 3,
            source: Some("b".into()),
        },
        NotTaken {
            origin: Origin::Tree {
                path: "/photos/bob/notes.txt".into(),
            },
            failed: false,
            class: "not a photo".into(),
            message: "/photos/bob/notes.txt: not a photo".into(),
            cells: None,
            generation: 2,
            source: None,
        },
    ]
}

fn sample_before() -> BeforeEntry {
    BeforeEntry {
        name: "Ann A".into(),
        tag: "t-0".into(),
        groups: vec!["staff".into()],
        face_ids: vec!["17".into(), "18".into()],
    }
}

fn sample_verified() -> VerifiedEntry {
    let photo = key_of(&full_photo()).as_bytes().to_vec();
    VerifiedEntry {
        differences: vec![
            Difference::PersonMissing,
            Difference::GroupMissing {
                group: "night".into(),
            },
            Difference::NameDiffers {
                expected: "Bob B".into(),
                found: "Bob".into(),
            },
            Difference::TagDiffers {
                expected: "t-1".into(),
                found: String::new(),
            },
            Difference::FaceMissing {
                face_id: "1840".into(),
                photo: photo.clone(),
            },
            Difference::Unreadable {
                reason: "-1101 person not found".into(),
            },
            Difference::PersonLeftSource { faces: 4 },
            Difference::FaceLeftSource {
                face_id: "1841".into(),
                photo,
            },
        ],
        faces_checked: 3,
        other_faces: 1,
        repaired: true,
    }
}

fn sample_rollbacks() -> Vec<(&'static str, RollbackEntry)> {
    vec![
        ("ann", RollbackEntry::Restored),
        ("bob", RollbackEntry::Deleted),
        (
            "cid",
            RollbackEntry::Left {
                reason: "someone else changed its name".into(),
            },
        ),
        ("dee", RollbackEntry::Gone),
        (
            "eve",
            RollbackEntry::Partly {
                reasons: vec!["a face of someone else's".into(), "group kept".into()],
            },
        ),
    ]
}

fn sample_detection() -> Detection {
    Detection {
        dims: (640, 480),
        faces: vec![
            Found {
                face: sample_crop(),
                score: 0.875,
            },
            Found {
                face: FaceBox {
                    x: 300,
                    y: 40,
                    w: 50,
                    h: 60,
                },
                score: 0.5,
            },
        ],
    }
}

fn sample_crop() -> FaceBox {
    FaceBox {
        x: 10,
        y: 20,
        w: 100,
        h: 120,
    }
}

fn sample_account() -> Account {
    Account::service("https://api.example/face", "app-1", "bucket-1")
}

fn sample_mirror_run() -> MirrorRun {
    MirrorRun {
        at: AT + 700,
        persons_deleted: 1,
        faces_deleted: 2,
        groups_deleted: 3,
        left: vec![("ann".into(), "faces of someone else's".into())],
        held: Some("--max-delete faces 10".into()),
    }
}

/// Marks of mirror deletions: persons, a photo's face, a group, an earlier
/// content's face.
fn sample_person_marks() -> Vec<(&'static str, MirrorMark)> {
    vec![
        (
            "ann",
            MirrorMark::Left {
                at: AT + 10,
                generation: 2,
                reason: "faces of someone else's".into(),
            },
        ),
        ("cid", MirrorMark::Deleting { at: AT + 11 }),
        ("dee", MirrorMark::Deleted { at: AT + 12 }),
    ]
}

/// The sample job written through the store's own API, as a job would.
fn write_sample_job(store: &Store) {
    let photos = sample_photos();
    for photo in &photos {
        store.put_photo(&key_of(photo), photo).unwrap();
    }
    let full = key_of(&photos[0]);
    let removed = key_of(&photos[11]);
    for person in sample_persons() {
        store.put_person(&person).unwrap();
    }
    store.put_meta(&sample_meta()).unwrap();
    store.put_request_limit(&sample_limit()).unwrap();
    store.put_last_finished(AT + 600).unwrap();
    store.put_shared("b", &sample_shared()).unwrap();
    store
        .note_gone_sources(&["old-tree".into(), "older".into()], "b")
        .unwrap();
    store.bind_account(&sample_account(), false).unwrap();
    store.bind_shard(Shard::new(1, 4).unwrap()).unwrap();
    for entry in sample_not_taken() {
        store.put_not_taken(&entry).unwrap();
    }
    store.put_photo_hash("bob", &hash(1), &full).unwrap();
    store.put_before_once("ann", &sample_before()).unwrap();
    store.mark_created("bob").unwrap();
    store.mark_creation_in_doubt("cid").unwrap();
    assert!(!store.open_verify().unwrap());
    store.put_verified("bob", &sample_verified()).unwrap();
    for (person, entry) in sample_rollbacks() {
        store.put_rolled_back(person, &entry).unwrap();
    }
    store.put_rolled_back_at(AT + 900).unwrap();
    store.put_faces(&hash(1), &sample_detection()).unwrap();
    store.put_crop(&full, Some(&sample_crop())).unwrap();
    for (person, mark) in sample_person_marks() {
        store.put_mirrored_person(person, &mark).unwrap();
    }
    store
        .put_mirrored_photo(&removed, &MirrorMark::Deleted { at: AT + 5 })
        .unwrap();
    store
        .put_mirrored_group("bob", "night", &MirrorMark::Deleted { at: AT + 13 })
        .unwrap();
    store
        .put_mirrored_replaced(&full, "1700", &MirrorMark::Deleting { at: AT + 14 })
        .unwrap();
    store.put_mirror_run(&sample_mirror_run()).unwrap();
    store
        .queue_mirror_deletion(
            &QueuedKey::Person("eve".into()),
            &Queued {
                at: AT + 20,
                face_id: None,
            },
        )
        .unwrap();
    store
        .queue_mirror_deletion(
            &QueuedKey::Face(full.clone()),
            &Queued {
                at: AT + 21,
                face_id: Some("1840".into()),
            },
        )
        .unwrap();
    store
        .set_joined_groups("bob", &[group("staff"), group("night")])
        .unwrap();
    store.put_replaced_face(&full, "1700").unwrap();
    store.flush().unwrap();
}

/// The records no single store holds at once (one account per state): key is the
/// record's name.
fn sample_standalone() -> Vec<(Vec<u8>, Vec<u8>)> {
    vec![(
        b"account of a rehearsal".to_vec(),
        encode(&Account::rehearsal("app-1")),
    )]
}

/// A record of the fixtures that today's code cannot read.
fn rule<T>(e: StoreError) -> T {
    panic!("{THE_RULE}: {e}")
}

/// Checks that `store` holds the sample job, read through the store's API.
fn assert_holds_the_sample_job(store: &Store) {
    let photos = sample_photos();
    for photo in &photos {
        let read = store.photo(&key_of(photo)).unwrap_or_else(rule);
        assert_eq!(
            read.as_ref(),
            Some(photo),
            "photo {}",
            shown(key_of(photo).as_bytes())
        );
    }
    assert_eq!(store.photo_count(), photos.len());
    // The fullest entry, field by field, as a reader of this test wants to see them.
    let full = store
        .photo(&key_of(&photos[0]))
        .unwrap_or_else(rule)
        .unwrap();
    assert_eq!(full.origin.to_string(), "/lists/list.csv:2");
    assert_eq!(full.hash, Some(hash(1)));
    assert_eq!(
        (full.size, full.modified),
        (Some(2048), Some(1_764_000_000_123_456_789))
    );
    assert_eq!(full.attempts, 7);
    assert_eq!(full.note.as_deref(), Some("normalized from 9000x6000 JPEG"));
    assert_eq!(full.given.unwrap().groups, ["staff", "night"]);
    assert_eq!(full.source.as_deref(), Some("b"));
    let retired: Vec<bool> = store.photos().map(|r| r.unwrap().1.retired).collect();
    assert_eq!(retired.iter().filter(|r| **r).count(), 1);

    let persons: Vec<PersonEntry> = store.persons().map(|r| r.unwrap_or_else(rule)).collect();
    assert_eq!(persons, sample_persons());
    assert_eq!(store.meta().unwrap_or_else(rule), sample_meta());
    assert_eq!(store.request_limit().unwrap_or_else(rule), sample_limit());
    assert_eq!(store.last_finished().unwrap_or_else(rule), Some(AT + 600));
    assert_eq!(store.shared().unwrap_or_else(rule), sample_shared());
    assert_eq!(
        store.gone_sources().unwrap_or_else(rule),
        ["old-tree", "older"]
    );
    assert_eq!(store.account().unwrap_or_else(rule), Some(sample_account()));
    assert_eq!(
        store.shard().unwrap_or_else(rule),
        Some(Shard::new(1, 4).unwrap())
    );
    let not_taken: Vec<NotTaken> = store.not_taken().map(|r| r.unwrap_or_else(rule)).collect();
    assert_eq!(not_taken, sample_not_taken());

    let full_key = key_of(&photos[0]);
    assert_eq!(
        store.photo_with_hash("bob", &hash(1)).unwrap_or_else(rule),
        Some(full_key.clone())
    );
    assert_eq!(
        store.before("ann").unwrap_or_else(rule),
        Some(sample_before())
    );
    assert!(
        store.was_created("bob").unwrap_or_else(rule)
            && !store.was_created("ann").unwrap_or_else(rule)
    );
    assert!(
        store.creation_in_doubt("cid").unwrap_or_else(rule)
            && !store.creation_in_doubt("ann").unwrap_or_else(rule)
    );
    assert_eq!(
        store.verified("bob").unwrap_or_else(rule),
        Some(sample_verified())
    );
    for (person, entry) in sample_rollbacks() {
        assert_eq!(
            store.rolled_back(person).unwrap_or_else(rule),
            Some(entry),
            "{person}"
        );
    }
    assert_eq!(
        store.rollback_status().unwrap_or_else(rule),
        RollbackStatus::Finished { at: AT + 900 }
    );
    assert_eq!(
        store.faces(&hash(1)).unwrap_or_else(rule),
        Some(sample_detection())
    );
    assert_eq!(
        store.crop(&full_key).unwrap_or_else(rule),
        Some(sample_crop())
    );
    for (person, mark) in sample_person_marks() {
        assert_eq!(
            store.mirrored_person(person).unwrap_or_else(rule),
            Some(mark),
            "{person}"
        );
    }
    assert_eq!(
        store
            .mirrored_photo(&key_of(&photos[11]))
            .unwrap_or_else(rule),
        Some(MirrorMark::Deleted { at: AT + 5 })
    );
    assert_eq!(
        store.mirrored_group("bob", "night").unwrap_or_else(rule),
        Some(MirrorMark::Deleted { at: AT + 13 })
    );
    assert_eq!(
        store
            .mirrored_replaced(&full_key, "1700")
            .unwrap_or_else(rule),
        Some(MirrorMark::Deleting { at: AT + 14 })
    );
    assert_eq!(
        store.last_mirror_run().unwrap_or_else(rule),
        Some(sample_mirror_run())
    );
    assert_eq!(
        store.queued_mirror_deletions().unwrap_or_else(rule),
        [
            (
                QueuedKey::Person("eve".into()),
                Queued {
                    at: AT + 20,
                    face_id: None
                }
            ),
            (
                QueuedKey::Face(full_key.clone()),
                Queued {
                    at: AT + 21,
                    face_id: Some("1840".into())
                }
            ),
        ]
    );
    assert_eq!(
        store.joined_groups("bob").unwrap_or_else(rule),
        [group("staff"), group("night")]
    );
    assert_eq!(
        store.replaced_faces("bob").unwrap_or_else(rule),
        [(full_key, "1700".to_owned())]
    );
    // Last: the verify left open is taken up again (this writes nothing).
    assert!(store.open_verify().unwrap_or_else(rule));
}

#[test]
fn todays_store_writes_the_committed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    write_sample_job(&store);
    let written = dump(&store);
    // Every tree the store opens holds a sample record, so a tree added later is
    // frozen too.
    for name in store.db.tree_names() {
        let name = String::from_utf8(name.to_vec()).unwrap();
        assert!(
            name == "__sled__default" || written.contains_key(&name),
            "the sample job writes nothing in the tree `{name}`: add its records to \
             write_sample_job, then {THE_RULE}"
        );
    }
    let mut committed = read_fixtures(&this_format());
    let standalone = committed.remove("standalone").unwrap_or_default();
    let differences = differences(&written, &committed);
    assert!(
        differences.is_empty(),
        "{THE_RULE}.\nToday's code writes other bytes than tests/fixtures/store/{}/:\n{}",
        this_format(),
        differences.join("\n")
    );
    assert_eq!(
        standalone,
        sample_standalone(),
        "{THE_RULE} (tests/fixtures/store/{}/standalone.hex)",
        this_format()
    );
}

#[test]
fn the_committed_bytes_of_this_format_read_as_the_sample_job() {
    let dir = tempfile::tempdir().unwrap();
    let mut committed = read_fixtures(&this_format());
    let standalone = committed.remove("standalone").unwrap();
    lay_down(dir.path(), &committed);
    let store = Store::open(dir.path()).unwrap();
    assert_holds_the_sample_job(&store);
    // Nothing to migrate: opening and reading changed no byte.
    assert_eq!(store.photo_writes(), 0);
    assert!(
        differences(&dump(&store), &committed).is_empty(),
        "{:?}",
        differences(&dump(&store), &committed)
    );
    let [(name, account)] = &standalone[..] else {
        panic!("one standalone record expected, found {}", standalone.len());
    };
    assert_eq!(name, b"account of a rehearsal");
    let account: Account = decode(account, "account").unwrap_or_else(|e| panic!("{THE_RULE}: {e}"));
    assert_eq!(account, Account::rehearsal("app-1"));
    assert_eq!(account.endpoint, Endpoint::Rehearsal);
}

/// Writes the fixtures of this format, once. Run it when the format was bumped:
/// `cargo test --lib store::fixtures::write -- --ignored`. It refuses to touch a
/// format whose fixtures exist: those bytes are what released versions wrote.
#[test]
#[ignore = "writes the fixtures of a new store format, once"]
fn write_the_fixtures_of_this_format() {
    let out = fixtures(&this_format());
    assert!(
        !out.exists(),
        "{} exists: fixtures of a format are never regenerated; bump the format instead",
        out.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    write_sample_job(&store);
    let mut all = dump(&store);
    all.insert("standalone".into(), sample_standalone());
    write_dump(
        &out,
        &all,
        &format!("Store format {STORE_FORMAT}, written by the version that made it."),
    );
}

fn write_dump(out: &Path, dump: &Dump, header: &str) {
    std::fs::create_dir_all(out).unwrap();
    for (tree, entries) in dump {
        let mut text = format!(
            "# The `{tree}` tree of the sample job: KEY VALUE in hex, in key order.\n\
             # {header}\n# Written once; never regenerated or edited.\n"
        );
        for (key, value) in entries {
            let value_hex = if value.is_empty() {
                "-".to_owned()
            } else {
                hex(value)
            };
            text.push_str(&format!("# {}\n", shown(key)));
            if value.first() == Some(&FORMAT_JSON) {
                text.push_str(&format!("# {}\n", String::from_utf8_lossy(value)));
            }
            text.push_str(&format!("{} {value_hex}\n", hex(key)));
        }
        std::fs::write(out.join(format!("{tree}.hex")), text).unwrap();
    }
}

// Earlier formats: laid down as those versions left them, opened by today's code.

/// The photos of the format-1 store, with whether each is retired once migrated:
/// in format 1 a photo is in the job when its generation is its source's latest
/// (`a` 1, `b` 3) or, without a source, the job's (3).
fn format_1_photos() -> Vec<(PhotoEntry, bool)> {
    vec![
        (full_photo(), false),
        (
            PhotoEntry {
                generation: 2,
                ..plain(2, PhotoState::Pending)
            },
            true,
        ),
        (
            PhotoEntry {
                generation: 1,
                source: Some("a".into()),
                ..plain(
                    3,
                    PhotoState::Failed(failure(FailureKind::Permanent, Some(-1101), "no face")),
                )
            },
            false,
        ),
        (
            PhotoEntry {
                source: None,
                ..plain(
                    4,
                    PhotoState::Full {
                        reason: "the person holds 20 faces".into(),
                    },
                )
            },
            false,
        ),
        (
            PhotoEntry {
                source: None,
                generation: 2,
                ..plain(5, PhotoState::InDoubt)
            },
            true,
        ),
    ]
}

/// What a format-1 `verify` recorded: the differences that format knew.
fn format_1_verified() -> VerifiedEntry {
    let mut verified = sample_verified();
    verified.differences.truncate(6);
    verified
}

/// The JSON store's photos as today's code reads them, with whether each is retired
/// once migrated (JSON stores had no sources: a photo is in the job when its
/// generation is the job's, 3).
fn json_photos() -> Vec<(PhotoEntry, bool)> {
    let json = |seq, state, generation| PhotoEntry {
        source: None,
        generation,
        ..plain(seq, state)
    };
    vec![
        (
            PhotoEntry {
                given: None,
                source: None,
                ..full_photo()
            },
            false,
        ),
        // Written before `modified` existed.
        (json(2, PhotoState::Pending, 2), true),
        (
            json(
                3,
                PhotoState::Failed(failure(FailureKind::Permanent, Some(-1101), "no face")),
                3,
            ),
            false,
        ),
        (json(4, PhotoState::InDoubt, 2), true),
        (
            json(
                5,
                PhotoState::Skipped {
                    reason: "not a photo".into(),
                },
                3,
            ),
            false,
        ),
    ]
}

fn json_person() -> PersonEntry {
    PersonEntry {
        person: PersonId::new("bob").unwrap(),
        fields: PersonFields {
            groups: vec![group("staff")],
            name: Some("Bob B".into()),
            tag: None,
        },
        state: PersonState::Ready { created: true },
        generation: 3,
    }
}

fn json_meta() -> JobMeta {
    JobMeta {
        source: Some("/photos".into()),
        generation: 3,
        started: Some(AT),
        finished: None,
        last_outcome: Some("stopped".into()),
        sources: BTreeMap::new(),
    }
}

/// Opens the earlier store laid down from `version`'s fixtures and checks what
/// every migration must give: each photo read as `photos` says, retired or not,
/// and rewritten in this format; a second open rewrites nothing.
fn assert_photos_migrated(dir: &Path, photos: &[(PhotoEntry, bool)]) -> Store {
    let store = Store::open(dir).unwrap_or_else(|e| panic!("{THE_RULE}: {e}"));
    for (photo, retired) in photos {
        let key = key_of(photo);
        let expected = PhotoEntry {
            retired: *retired,
            ..photo.clone()
        };
        let read = store
            .photo(&key)
            .unwrap_or_else(|e| panic!("{THE_RULE}: {e}"));
        assert_eq!(read.as_ref(), Some(&expected), "{}", shown(key.as_bytes()));
        let raw = store.photos.get(key.as_bytes()).unwrap().unwrap();
        assert_eq!(
            &raw[..],
            &encode_photo(&expected)[..],
            "rewritten in this format"
        );
    }
    assert_eq!(store.photo_count(), photos.len());
    assert_eq!(
        store.meta.get(FORMAT_KEY).unwrap().as_deref(),
        Some(&[STORE_FORMAT][..])
    );
    let migrated = dump(&store);
    drop(store);
    let store = Store::open(dir).unwrap();
    assert_eq!(store.photo_writes(), 0);
    assert!(
        differences(&dump(&store), &migrated).is_empty(),
        "a second open migrated again"
    );
    store
}

#[test]
fn a_store_of_format_1_is_read_and_migrated() {
    let dir = tempfile::tempdir().unwrap();
    lay_down(dir.path(), &read_fixtures("v1"));
    let store = assert_photos_migrated(dir.path(), &format_1_photos());
    let bob = sample_persons().swap_remove(1);
    assert_eq!(store.person("bob").unwrap(), Some(bob));
    assert_eq!(store.meta().unwrap(), sample_meta());
    assert_eq!(store.request_limit().unwrap(), sample_limit());
    assert_eq!(store.last_finished().unwrap(), Some(AT + 600));
    let not_taken: Vec<NotTaken> = store.not_taken().map(Result::unwrap).collect();
    assert_eq!(not_taken, sample_not_taken());
    let full = key_of(&full_photo());
    assert_eq!(store.photo_with_hash("bob", &hash(1)).unwrap(), Some(full));
    assert_eq!(store.before("ann").unwrap(), Some(sample_before()));
    assert!(store.was_created("bob").unwrap());
    assert_eq!(store.verified("bob").unwrap(), Some(format_1_verified()));
    for (person, entry) in sample_rollbacks().into_iter().take(3) {
        assert_eq!(store.rolled_back(person).unwrap(), Some(entry), "{person}");
    }
    assert_eq!(store.rollback_status().unwrap(), RollbackStatus::Started);
    assert!(store.open_verify().unwrap(), "the verify left open");
}

#[test]
fn a_store_of_json_records_is_read_and_migrated() {
    let dir = tempfile::tempdir().unwrap();
    lay_down(dir.path(), &read_fixtures("json"));
    let store = assert_photos_migrated(dir.path(), &json_photos());
    assert_eq!(store.person("bob").unwrap(), Some(json_person()));
    assert_eq!(store.meta().unwrap(), json_meta());
    let full = key_of(&full_photo());
    assert_eq!(store.photo_with_hash("bob", &hash(1)).unwrap(), Some(full));
    // Every record rewritten: no JSON left where records are.
    for (tree, entries) in dump(&store) {
        if tree != "hashes" {
            for (key, value) in entries {
                assert_ne!(value.first(), Some(&FORMAT_JSON), "{tree} {}", shown(&key));
            }
        }
    }
}
