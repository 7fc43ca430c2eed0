//! Property tests of the pure pieces the job's correctness rests on, over random
//! input: the manifest reader reads back what a CSV writer wrote and what a report
//! wrote (any outcome, any cell text), the signature
//! round-trips and a tampered one fails, and every answer code has the class the
//! code table gives it. (The chunker's properties are tested beside it, in
//! `src/plan.rs`; the backoff's in `src/engine/retry.rs`.)

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use faceenroll::model::ImageRef;
use faceenroll::service::api::Call;
use faceenroll::service::client::CallError;
use faceenroll::service::codes::{self, Class, TABLE};
use faceenroll::service::sign::{parse, sign, SignatureFields};
use faceenroll::source::{manifest, PhotoRecord, SourceItem};
use faceenroll::store::Origin;
use proptest::prelude::*;

/// One manifest row as written.
#[derive(Debug, Clone)]
struct RowIn {
    person: String,
    image: String,
    groups: Vec<String>,
    name: String,
    tag: String,
}

fn row_in() -> impl Strategy<Value = RowIn> {
    // Text with the characters CSV must quote (comma, quote) and spaces to trim.
    let text = "[A-Za-z0-9 ,\"'_.é-]{0,16}";
    let image = prop_oneof![
        "[a-z0-9_]{1,10}\\.png",
        "sub/[a-z0-9_ ]{1,10}\\.jpg",
        "https?://[a-z]{1,8}\\.example/[a-z0-9,\"]{1,10}\\.jpg",
    ];
    (
        text,
        image,
        prop::collection::vec("[a-z0-9_-]{1,8}", 0..4),
        text,
        text,
    )
        .prop_map(|(person, image, groups, name, tag)| RowIn {
            person,
            image,
            groups,
            name,
            tag,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_manifest_reads_back_what_a_csv_writer_wrote(
        rows in prop::collection::vec(row_in(), 1..30),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.csv");
        let mut writer = csv::Writer::from_path(&path).unwrap();
        writer.write_record(["person_id", "image", "group_ids", "person_name", "tag"]).unwrap();
        for r in &rows {
            writer
                .write_record([&r.person, &r.image, &r.groups.join(";"), &r.name, &r.tag])
                .unwrap();
        }
        writer.flush().unwrap();
        drop(writer);

        let read: Vec<SourceItem> = manifest::read(&path).unwrap().collect();
        let expected: Vec<SourceItem> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let line = i as u64 + 2;
                let optional = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
                let image = r.image.trim();
                SourceItem::Photo(PhotoRecord {
                    person: r.person.trim().to_owned(),
                    written: None,
                    image: if image.starts_with("http") {
                        ImageRef::Url(image.to_owned())
                    } else {
                        ImageRef::File(dir.path().join(image))
                    },
                    groups: r.groups.clone(),
                    name: optional(&r.name),
                    tag: optional(&r.tag),
                    origin: Origin::Manifest { file: path.clone(), line },
                    seq: line,
                })
            })
            .collect();
        prop_assert_eq!(read, expected);
    }

    #[test]
    fn a_signature_parses_back_and_verifies(
        appid in "[0-9]{1,12}",
        bucket in "[a-z0-9-]{0,12}",
        secret_id in "[A-Za-z0-9]{1,40}",
        key in ".{1,40}",
        other_key in ".{1,40}",
        now in 0u64..4_000_000_000,
        validity in 1u64..8_000_000,
        rand in 0u64..10_000_000_000,
    ) {
        let fields = SignatureFields {
            appid,
            bucket,
            secret_id,
            expires: now + validity,
            now,
            rand,
            fileid: String::new(),
        };
        let signed = sign(&fields, &key);
        let parsed = parse(&signed).unwrap();
        prop_assert_eq!(&parsed.fields, &fields);
        prop_assert!(parsed.verify(&key));
        prop_assert_eq!(parsed.verify(&other_key), other_key == key);
    }

    #[test]
    fn a_flipped_byte_fails_verification(
        secret_id in "[A-Za-z0-9]{1,40}",
        key in ".{1,40}",
        now in 0u64..4_000_000_000,
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let fields = SignatureFields {
            appid: "1250000000".into(),
            bucket: String::new(),
            secret_id,
            expires: now + 3600,
            now,
            rand: 42,
            fileid: String::new(),
        };
        let mut raw = BASE64.decode(sign(&fields, &key)).unwrap();
        let i = position.index(raw.len());
        raw[i] ^= flip;
        let tampered = BASE64.encode(&raw);
        // Either it no longer reads as a signature, or its HMAC does not match.
        prop_assert!(parse(&tampered).map_or(true, |p| !p.verify(&key)));
    }

    #[test]
    fn codes_outside_the_table_are_unknown(code in any::<i64>()) {
        prop_assume!(TABLE.iter().all(|row| row.code != code));
        prop_assert_eq!(codes::class(code), Class::Unknown);
        prop_assert!(codes::lookup(code).is_none());
    }

    #[test]
    fn a_service_error_has_the_class_of_its_code(
        code in prop_oneof![
            prop::sample::select(TABLE.iter().map(|r| r.code).collect::<Vec<_>>()),
            any::<i64>(),
        ],
        call in prop::sample::select(Call::ALL.to_vec()),
        message in ".{0,20}",
    ) {
        let err = CallError::Service { call, code, message };
        prop_assert_eq!(err.class(), codes::class(code));
        prop_assert_eq!(err.code(), Some(code));
    }
}

/// The contract's table of error codes, copied as written from `shared/spec/API.md`
/// ("Error codes"), so the test holds its own copy of the contract.
const CONTRACT_CODES: &str = "
| 3 | bad request (message \"account abnormal, errorno is:2\" = account suspended for arrears) |
| 4 | signature empty |
| 5 | signature malformed |
| 6 | AppID/bucket in the signature do not match the target |
| 9 | signature expired |
| 10 | AppID does not exist |
| 11 | SecretId does not exist |
| 12 | AppID and SecretId do not match |
| 13 | replay attack |
| 14 | signature check failed |
| 15 | too frequent: rate limited |
| 16 | bucket does not exist |
| 21 | invalid parameter |
| 23 | request body too large |
| 24 | this API is being retired |
| 107, 108 | authentication service unavailable |
| 213 | internal error |
| -1101 | face detection failed (no face found) |
| -1102 | image decode failed |
| -1103 | feature processing failed |
| -1104 .. -1109 | extracting contour / gender / expression / age / pose / glasses failed |
| -1200 | feature storage error |
| -1300 | image empty |
| -1301 | parameter empty |
| -1302 | person already exists |
| -1303 | person does not exist |
| -1304 | parameter too long |
| -1305 | face does not exist |
| -1306 | group does not exist |
| -1307 | group list does not exist |
| -1308 | downloading the image from the url failed |
| -1309 | too many faces (over the per-person limit) |
| -1310 | too many persons |
| -1311 | too many groups |
| -1312 | a face with 99% or more similarity was added to the person |
| -1313 | illegal parameter (special characters: space, slash, tab, newline) |
| -1400 | illegal image format |
| -1403 | image download failed |
";

/// The contract's codes with their meanings: `107, 108` and `-1104 .. -1109` rows
/// give one entry per code.
fn contract_codes() -> Vec<(i64, &'static str)> {
    let mut out = Vec::new();
    for line in CONTRACT_CODES.lines().filter(|l| l.starts_with('|')) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let (codes, meaning) = (cells[0], cells[1]);
        if let Some((from, to)) = codes.split_once(" .. ") {
            let (from, to): (i64, i64) = (from.parse().unwrap(), to.parse().unwrap());
            out.extend((to.min(from)..=to.max(from)).map(|c| (c, meaning)));
        } else {
            out.extend(codes.split(", ").map(|c| (c.parse().unwrap(), meaning)));
        }
    }
    out
}

/// What a client must do about a code, judged from the contract's meaning alone.
fn class_by_meaning(code: i64, meaning: &str) -> Class {
    use codes::Outcome::*;
    let has = |words: &[&str]| words.iter().any(|w| meaning.contains(w));
    match () {
        _ if has(&["rate limited"]) => Class::RateLimited,
        _ if has(&["person already exists"]) => Class::Outcome(PersonExists),
        _ if has(&["person does not exist"]) => Class::Outcome(PersonMissing),
        _ if has(&["too many faces"]) => Class::Outcome(PersonFull),
        _ if has(&["99% or more similarity"]) => Class::Outcome(DuplicateFace),
        // The contract leaves the limit open: the body is cut smaller and sent again.
        _ if has(&["body too large"]) => Class::Outcome(TooLarge),
        // The service's own trouble, or a download it made: the same request later.
        _ if has(&["unavailable", "internal error", "storage error", "download"]) => {
            Class::Transient
        }
        // The account, its credentials, its signature or its quotas: every later
        // call would fail the same way.
        _ if has(&[
            "signature",
            "AppID",
            "SecretId",
            "replay",
            "bucket does not exist",
            "retired",
            "account",
        ]) =>
        {
            Class::Fatal
        }
        // One photo the service will not take as it is.
        _ if has(&[
            "face detection",
            "decode",
            "feature processing",
            "extracting",
            "image empty",
            "image format",
            // A quota of one group or of the AppID: the person that would pass it
            // cannot be enrolled, persons of other groups still can.
            "too many persons",
            "too many groups",
        ]) =>
        {
            Class::Permanent
        }
        // The request was wrong for the item it names.
        _ if has(&["parameter", "does not exist"]) => Class::Request,
        _ => panic!("no class judged for {code} {meaning:?}"),
    }
}

#[test]
fn every_code_of_the_contract_has_the_class_its_meaning_calls_for() {
    let contract = contract_codes();
    assert_eq!(contract.len(), 44, "rows read from the contract's table");
    for &(code, meaning) in &contract {
        let expected = class_by_meaning(code, meaning);
        assert_eq!(codes::class(code), expected, "{code} {meaning:?}");
        assert!(codes::lookup(code).is_some(), "{code}");
        assert!(!codes::meaning(code).is_empty(), "{code}");
        assert!(
            codes::Described(code)
                .to_string()
                .starts_with(&code.to_string()),
            "{code}"
        );
    }
    // The program knows no code the contract does not list, besides 0.
    for row in TABLE.iter().filter(|r| r.code != 0) {
        assert!(
            contract.iter().any(|&(code, _)| code == row.code),
            "{} is not in the contract",
            row.code
        );
    }
    assert_eq!(codes::class(0), Class::Ok);
}

/// What a report row gives back as a manifest row.
type ManifestRow = (
    String,
    ImageRef,
    Vec<String>,
    Option<String>,
    Option<String>,
);

/// A cell's text: commas, quotes, semicolons, newlines and non-ASCII, without the
/// surrounding whitespace a manifest reader trims.
fn cell(max: usize) -> impl Strategy<Value = String> {
    prop::string::string_regex(&format!("[a-zA-Z0-9 ,\"';\\n.é漢ü-]{{0,{max}}}"))
        .unwrap()
        .prop_map(|s| s.trim_matches(|c: char| c.is_ascii_whitespace()).to_owned())
}

fn nfc(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    s.nfc().collect()
}

/// Any outcome a photo can end in.
fn outcome() -> impl Strategy<Value = faceenroll::store::PhotoState> {
    use faceenroll::store::{FaceRef, Failure, FailureKind, PhotoState};
    prop_oneof![
        Just(PhotoState::Pending),
        Just(PhotoState::InDoubt),
        "[a-z0-9]{1,8}".prop_map(|id| PhotoState::Enrolled {
            face: FaceRef::Id(id)
        }),
        Just(PhotoState::Enrolled {
            face: FaceRef::Confirmed
        }),
        cell(30).prop_map(|reason| PhotoState::Duplicate { reason }),
        cell(30).prop_map(|reason| PhotoState::Skipped { reason }),
        (cell(30), prop::option::of(-2000i64..300)).prop_map(|(message, code)| {
            PhotoState::Failed(Failure {
                kind: if code.is_some() {
                    FailureKind::Permanent
                } else {
                    FailureKind::Input
                },
                code,
                message,
            })
        }),
        (cell(30), prop::option::of(-2000i64..300)).prop_map(|(message, code)| {
            PhotoState::Deferred(Failure {
                kind: FailureKind::RetriesExhausted,
                code,
                message,
            })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// `faceenroll report` output, fed back as a manifest, lists the same photos
    /// with the same person, groups, name and tag, whatever their outcome.
    #[test]
    fn a_report_reads_back_as_the_manifest_of_its_rows(
        photos in prop::collection::vec(
            (
                cell(12).prop_filter("a person", |p| !p.is_empty()),
                cell(12).prop_filter("a file name", |f| !f.is_empty() && !f.contains('/')),
                any::<bool>(),
                prop::collection::vec(
                    cell(8).prop_filter("a group", |g| !g.is_empty() && !g.contains(';')),
                    0..3,
                ),
                cell(16),
                cell(16),
                outcome(),
            ),
            1..12,
        ),
    ) {
        use faceenroll::store::{GivenFields, PhotoEntry, PhotoKey, Store};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state")).unwrap();
        let mut meta = store.meta().unwrap();
        meta.generation = 1;
        store.put_meta(&meta).unwrap();
        let mut expected: Vec<ManifestRow> = Vec::new();
        for (seq, (person, file, is_url, groups, name, tag, state)) in photos.into_iter().enumerate() {
            let person = nfc(&person);
            let image = if is_url {
                ImageRef::Url(format!("https://photos.example/{file}"))
            } else {
                ImageRef::File(dir.path().join("photos").join(&file))
            };
            let key = PhotoKey::new(&person, &image);
            if store.photo(&key).unwrap().is_some() {
                continue;
            }
            let groups: Vec<String> = groups.iter().map(|g| nfc(g)).collect();
            let optional = |s: String| Some(s).filter(|s| !s.is_empty());
            let given = GivenFields {
                groups: groups.clone(),
                name: optional(name),
                tag: optional(tag),
            };
            expected.push((person.clone(), image.clone(), groups, given.name.clone(), given.tag.clone()));
            store.put_photo(&key, &PhotoEntry {
                person,
                image,
                origin: Origin::Tree { path: dir.path().join("photos").join(&file) },
                seq: seq as u64,
                hash: None,
                size: None,
                modified: None,
                state,
                attempts: 1,
                generation: 1,
                note: None,
                given: Some(given),
                source: None,
                retired: false,
            }).unwrap();
        }
        let report = dir.path().join("report.csv");
        faceenroll::report::write_report(
            &store,
            None,
            faceenroll::report::Format::Csv,
            std::fs::File::create(&report).unwrap(),
        ).unwrap();

        let mut read: Vec<ManifestRow> = manifest::read(&report)
            .unwrap()
            .map(|item| match item {
                SourceItem::Photo(p) => (p.person, p.image, p.groups, p.name, p.tag),
                SourceItem::Problem(p) => panic!("{}", p.message),
            })
            .collect();
        read.sort_by(|a, b| (&a.0, a.1.to_string()).cmp(&(&b.0, b.1.to_string())));
        expected.sort_by(|a, b| (&a.0, a.1.to_string()).cmp(&(&b.0, b.1.to_string())));
        prop_assert_eq!(read, expected);
    }
}
