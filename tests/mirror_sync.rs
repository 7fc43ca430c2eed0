//! `enroll --mirror` keeps the service equal to the source within the job's reach, a
//! night after another, under every reading of the contract's open points that
//! touch it: -1309 on addface (whole call or image by image), a person's last group
//! (`delgroupids` allowed or refused) and `delface` of a face already gone (-1305,
//! or code 0 with `deleted` 0). Each test checks what the emulator holds.
//!
//! - Day 1 enrolls a manifest of a dozen persons, one holding 21 photos (20 faces
//!   and a spare), one that held two faces of its own before the job, beside a
//!   person the source never names. Day 2 removes two persons, replaces a photo in
//!   place, removes a photo (whose face someone already deleted by hand), shrinks a
//!   person's groups and grows another's, adds a person, removes a full person's
//!   photo and replaces another of its photos, and deletes a listed photo's file.
//!   After `--mirror` the service holds exactly the source (the full person its
//!   first 20 photos), the outsider and the faces of other origin untouched, the
//!   missing file's face kept; a re-run makes no call.
//! - A person whose groups move from `a` to a group the service will not take keeps
//!   `a` (never left in no group), and the run says so with exit 1.

mod support;

use faceenroll::emulator::{
    Emulator, FaceGone, FullReading, LastGroup, PersonSnapshot, StateSnapshot,
};
use faceenroll::service::client::ImageBody;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use support::bin::code_and_text as output;
use support::{client, emulator_with, enroll_command, faceenroll, gid, hash_of, photo, pid};

/// A manifest source: rows of (person, photo file name, groups), photos under
/// `photos/PERSON/NAME` beside the manifest.
struct Manifest {
    dir: tempfile::TempDir,
    rows: Vec<(String, String, String)>,
}

impl Manifest {
    fn new() -> Manifest {
        Manifest {
            dir: tempfile::tempdir().unwrap(),
            rows: Vec::new(),
        }
    }

    fn file(&self, person: &str, name: &str) -> PathBuf {
        self.dir.path().join("photos").join(person).join(name)
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("manifest.csv")
    }

    /// Lists a new photo of `person` with content `seed`.
    fn add(&mut self, person: &str, name: &str, groups: &str, seed: u32) {
        let file = self.file(person, name);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, photo(seed)).unwrap();
        self.rows.push((person.into(), name.into(), groups.into()));
    }

    fn drop_person(&mut self, person: &str) {
        self.rows.retain(|(p, _, _)| p != person);
    }

    fn drop_photo(&mut self, person: &str, name: &str) {
        self.rows.retain(|(p, n, _)| !(p == person && n == name));
    }

    fn set_groups(&mut self, person: &str, groups: &str) {
        for row in self.rows.iter_mut().filter(|(p, _, _)| p == person) {
            row.2 = groups.into();
        }
    }

    fn write(&self) {
        let mut text = String::from("person_id,image,group_ids\n");
        for (person, name, groups) in &self.rows {
            text.push_str(&format!("{person},photos/{person}/{name},{groups}\n"));
        }
        std::fs::write(self.path(), text).unwrap();
    }

    /// What the service must hold of the job's persons: each person's groups
    /// (as listed) and the content hashes of its listed photos, the first 20 in
    /// source order; `kept` gives the hash of a listed photo whose file is gone.
    fn expected(
        &self,
        kept: &BTreeMap<PathBuf, String>,
    ) -> BTreeMap<String, (BTreeSet<String>, Vec<String>)> {
        let mut out: BTreeMap<String, (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
        for (person, name, groups) in &self.rows {
            let entry = out.entry(person.clone()).or_default();
            entry.0.extend(groups.split(';').map(String::from));
            if entry.1.len() < 20 {
                let file = self.file(person, name);
                let hash = kept.get(&file).cloned().unwrap_or_else(|| hash_of(&file));
                entry.1.push(hash);
            }
        }
        for (_, hashes) in out.values_mut() {
            hashes.sort();
        }
        out
    }
}

fn enroll(source: &Manifest, emulator: &Emulator, extra: &[&str]) -> (i32, String) {
    let mut cmd = enroll_command(&source.path(), &emulator.endpoint(), &source.state());
    cmd.args(extra);
    output(&mut cmd)
}

fn hashes(person: &PersonSnapshot) -> Vec<String> {
    let mut out: Vec<String> = person
        .faces
        .iter()
        .map(|f| f.content_hash.clone())
        .collect();
    out.sort();
    out
}

/// Creates `person` in `group` with `faces` faces by plain calls, as another tool
/// would; seeds from `seed`.
fn made_by_hand(emulator: &Emulator, dir: &Path, person: &str, group: &str, faces: u32, seed: u32) {
    let client = client(emulator);
    let file = |i: u32| {
        let path = dir.join(format!("{person}-{i}.png"));
        std::fs::write(&path, photo(seed + i)).unwrap();
        ImageBody::File(path)
    };
    client
        .new_person(&pid(person), &[gid(group)], &file(0), None, None)
        .unwrap();
    let rest: Vec<ImageBody> = (1..faces).map(file).collect();
    if !rest.is_empty() {
        client.add_faces(&pid(person), &rest, None).unwrap();
    }
}

fn readings() -> Vec<(FullReading, LastGroup, FaceGone)> {
    let mut out = Vec::new();
    for full in [FullReading::PerImage, FullReading::WholeCall] {
        for last in [LastGroup::Allowed, LastGroup::Refused] {
            for gone in [FaceGone::FaceMissing, FaceGone::DeletedZero] {
                out.push((full, last, gone));
            }
        }
    }
    out
}

fn emulator_under((full, last, gone): (FullReading, LastGroup, FaceGone)) -> Emulator {
    emulator_with(|c| {
        c.contract.full = full;
        c.contract.last_group = last;
        c.contract.face_gone = gone;
    })
}

/// The job's persons as the service holds them: groups and face contents, the
/// persons made by hand (`others`) left out.
fn held_by_job(
    snapshot: &StateSnapshot,
    others: &[&str],
) -> BTreeMap<String, (BTreeSet<String>, Vec<String>)> {
    snapshot
        .persons
        .iter()
        .filter(|(id, _)| !others.contains(&id.as_str()))
        .map(|(id, p)| (id.clone(), (p.groups.iter().cloned().collect(), hashes(p))))
        .collect()
}

fn night_after_night(reading: (FullReading, LastGroup, FaceGone)) {
    println!("readings: {reading:?}");
    let emulator = emulator_under(reading);
    let mut source = Manifest::new();
    let by_hand = source.dir.path().join("by-hand");
    std::fs::create_dir(&by_hand).unwrap();
    // Never named by the source.
    made_by_hand(&emulator, &by_hand, "outsider", "staff", 1, 90_000);
    // Named by the source, with two faces of its own, in a group of its own.
    made_by_hand(&emulator, &by_hand, "owner", "vip", 2, 91_000);
    let outsider = emulator.snapshot().persons["outsider"].clone();
    let owners_own = hashes(&emulator.snapshot().persons["owner"]);

    for p in 0..12u32 {
        let person = format!("p{p:02}");
        let groups = match p {
            1 => "staff;night",
            _ => "staff",
        };
        for i in 0..2 {
            source.add(&person, &format!("{i}.png"), groups, 1000 * p + i);
        }
    }
    for i in 0..2 {
        source.add("owner", &format!("{i}.png"), "staff", 50_000 + i);
    }
    for i in 0..21 {
        source.add("full", &format!("{i:02}.png"), "staff", 60_000 + i);
    }
    source.write();
    let (code, text) = enroll(&source, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(emulator.snapshot().persons["full"].faces.len(), 20);

    // Day 2.
    source.drop_person("p10");
    source.drop_person("p11");
    std::fs::write(source.file("p03", "0.png"), photo(77_000)).unwrap();
    source.drop_photo("p04", "1.png");
    // Someone already deleted that photo's face by hand.
    let p04_face = {
        let snapshot = emulator.snapshot();
        let hash = hash_of(&source.file("p04", "1.png"));
        let face = snapshot.persons["p04"]
            .faces
            .iter()
            .find(|f| f.content_hash == hash)
            .unwrap()
            .face_id
            .clone();
        client(&emulator)
            .del_faces(&pid("p04"), std::slice::from_ref(&face))
            .unwrap();
        face
    };
    source.set_groups("p01", "staff");
    source.set_groups("p02", "staff;lab");
    for i in 0..2 {
        source.add("p12", &format!("{i}.png"), "staff", 12_000 + i);
    }
    // A listed photo whose file is gone: its face stays.
    let gone_file = source.file("p05", "0.png");
    let kept = BTreeMap::from([(gone_file.clone(), hash_of(&gone_file))]);
    std::fs::remove_file(&gone_file).unwrap();
    // The full person: one photo removed, another replaced in place.
    source.drop_photo("full", "05.png");
    std::fs::write(source.file("full", "10.png"), photo(68_000)).unwrap();
    source.write();

    // Without --mirror the job only adds: nothing leaves the service.
    let before = emulator.snapshot();
    let (code, text) = enroll(&source, &emulator, &[]);
    assert!(code == 0 || code == 1, "{text}");
    let after = emulator.snapshot();
    for person in ["p10", "p11", "p03", "p04", "full"] {
        for face in &before.persons[person].faces {
            assert!(
                after.persons[person].faces.contains(face),
                "{person}: {face:?} deleted without --mirror: {text}"
            );
        }
    }
    assert!(after.persons["p01"].groups.contains(&"night".to_string()));

    // The plan lists every deletion the run then makes.
    let mut plan = faceenroll(&[
        "plan".as_ref(),
        source.path().as_os_str(),
        "--state".as_ref(),
        source.state().as_os_str(),
        "--mirror".as_ref(),
    ]);
    let (code, planned) = output(&mut plan);
    assert_eq!(code, 0, "{planned}");
    let old_p03 = before.persons["p03"].faces[0].face_id.clone();
    for line in [
        "delete person p10".to_string(),
        "delete person p11".to_string(),
        format!("delete face {p04_face} of person p04"),
        format!("delete face {old_p03} of person p03"),
        "take person p01 out of group night".to_string(),
    ] {
        assert!(planned.contains(&line), "{line} not in {planned}");
    }
    let listed = planned
        .lines()
        .filter(|l| l.starts_with("  delete ") || l.starts_with("  take "))
        .count();
    // 2 persons, p03's old face, p04's face, full's removed and replaced faces,
    // p01's night.
    assert_eq!(listed, 7, "{planned}");

    let outputs = tempfile::tempdir().unwrap();
    let summary = outputs.path().join("summary.json");
    let metrics = outputs.path().join("faceenroll.prom");
    let (code, text) = enroll(
        &source,
        &emulator,
        &[
            "--mirror",
            // 2 persons, 8 faces (theirs included), a group: each within 8.
            "--max-delete",
            "8",
            "--summary-json",
            summary.to_str().unwrap(),
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{text}");
    let snapshot = emulator.snapshot();
    assert_eq!(
        held_by_job(&snapshot, &["outsider", "owner"]),
        {
            let mut expected = source.expected(&kept);
            expected.remove("owner");
            expected
        },
        "{text}"
    );
    assert_eq!(snapshot.persons["outsider"], outsider);
    let owner = &snapshot.persons["owner"];
    assert_eq!(
        owner.groups.iter().cloned().collect::<BTreeSet<_>>(),
        BTreeSet::from(["vip".to_string(), "staff".to_string()])
    );
    let mut owner_expected = owners_own.clone();
    owner_expected.extend(source.expected(&kept)["owner"].1.clone());
    owner_expected.sort();
    assert_eq!(hashes(owner), owner_expected);

    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    // p10, p11 (2 faces each), p03's and p04's, full's two; p01's night.
    assert_eq!(json["mirror"]["persons_deleted"], 2, "{json}");
    assert_eq!(json["mirror"]["faces_deleted"], 8, "{json}");
    assert_eq!(json["mirror"]["groups_deleted"], 1, "{json}");
    let prom = std::fs::read_to_string(&metrics).unwrap();
    assert!(
        prom.lines()
            .any(|l| l == "faceenroll_mirror_deleted{kind=\"group\"} 1"),
        "{prom}"
    );

    // Done: a re-run makes no call.
    let calls = emulator.counters().requests;
    let (code, text) = enroll(&source, &emulator, &["--mirror"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(emulator.counters().requests, calls, "{text}");
}

#[test]
fn the_service_follows_the_source_night_after_night_under_every_reading() {
    for reading in readings() {
        night_after_night(reading);
    }
}

#[test]
fn a_persons_last_group_is_kept_and_said_under_both_readings() {
    for last in [LastGroup::Allowed, LastGroup::Refused] {
        // The account holds two groups at most: `a` and the outsider's `x`.
        let emulator = emulator_with(|c| {
            c.contract.last_group = last;
            c.contract.max_groups = 2;
        });
        let mut source = Manifest::new();
        let by_hand = source.dir.path().join("by-hand");
        std::fs::create_dir(&by_hand).unwrap();
        made_by_hand(&emulator, &by_hand, "outsider", "x", 1, 90_000);
        source.add("mover", "0.png", "a", 1);
        source.write();
        let (code, text) = enroll(&source, &emulator, &[]);
        assert_eq!(code, 0, "{text}");

        // Its group moves to `b`, which the account has no room for.
        source.set_groups("mover", "b");
        source.write();
        let (code, text) = enroll(&source, &emulator, &["--mirror", "--max-delete", "100%"]);
        assert_eq!(code, 1, "{last:?}: {text}");
        assert!(text.contains("kept in a"), "{last:?}: {text}");
        assert_eq!(
            emulator.snapshot().persons["mover"].groups,
            ["a"],
            "{last:?}: {text}"
        );
    }
}

#[test]
fn a_group_a_mirror_took_is_put_back_by_a_rollback_of_the_mirror() {
    let emulator = emulator_with(|_| {});
    let mut source = Manifest::new();
    source.add("p", "0.png", "staff;night", 1);
    source.add("q", "0.png", "staff", 2);
    source.write();
    let (code, text) = enroll(&source, &emulator, &[]);
    assert_eq!(code, 0, "{text}");
    source.set_groups("p", "staff");
    source.write();
    let (code, text) = enroll(&source, &emulator, &["--mirror", "--max-delete", "100%"]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(emulator.snapshot().persons["p"].groups, ["staff"]);

    let rollback = || {
        output(&mut support::bin::after_command(
            "rollback",
            &emulator.endpoint(),
            &source.state(),
            &["--mirror"],
        ))
    };
    let (code, text) = rollback();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("put back: person p in group night"), "{text}");
    let mut groups = emulator.snapshot().persons["p"].groups.clone();
    groups.sort();
    assert_eq!(groups, ["night", "staff"]);
    // Put back once: nothing to do again, no call.
    let calls = emulator.counters().requests;
    let (code, text) = rollback();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("(0 groups put back now)"), "{text}");
    assert_eq!(emulator.counters().requests, calls);
}
