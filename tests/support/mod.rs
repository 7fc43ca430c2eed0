//! Helpers the end-to-end tests share: archives in temporary directories, the
//! in-process emulator ([`emulator`], [`emulator_with`]) and a client for it, and
//! running the job. [`photos`] draws the photos, [`bin`] runs the binary (and the
//! emulator as a process), [`http`] is the byte-level HTTP client and request
//! builders of the emulator's own tests, [`capture`] records what the client sends.
#![allow(dead_code)]

pub mod bin;
pub mod capture;
pub mod http;
pub mod photos;

#[allow(unused_imports)]
pub use bin::{
    after_command, enroll_command, faceenroll, report_rows, EmulatorProcess, BIN, NETWORK_VARIABLES,
};
#[allow(unused_imports)]
pub use photos::*;

use faceenroll::emulator::{rehearsal_credentials, Emulator, EmulatorConfig, REHEARSAL_APPID};
use faceenroll::engine::{
    self, retry::RetryPolicy, EngineOptions, RunOutcome, StopSignal, Workers,
};
use faceenroll::model::ContentHash;
use faceenroll::plan::{self, PlanOptions};
use faceenroll::report::Tally;
use faceenroll::service::client::{Client, ClientConfig};
use faceenroll::source::{Layout, SourceSpec};
use faceenroll::store::Store;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A photo archive laid out as `root/<person>/<photo>` in a temporary directory.
pub struct Archive {
    pub dir: tempfile::TempDir,
}

impl Archive {
    pub fn new() -> Archive {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("photos")).unwrap();
        Archive { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("photos")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes a photo and answers its path.
    pub fn add(&self, person: &str, name: &str, bytes: &[u8]) -> PathBuf {
        let dir = self.root().join(person);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// `persons` persons of `photos` distinct photos each, seeds starting at `first`.
    pub fn fill(&self, persons: u32, photos: u32, first: u32) {
        for p in 0..persons {
            for i in 0..photos {
                let seed = first + p * 1000 + i;
                self.add(
                    &format!("person{p:03}"),
                    &format!("{i:03}.png"),
                    &photo(seed),
                );
            }
        }
    }
}

pub fn hash_of(path: &Path) -> String {
    ContentHash::of(&std::fs::read(path).unwrap()).to_hex()
}

pub fn options() -> EngineOptions {
    EngineOptions {
        workers: Workers::Fixed(4),
        qps: 0,
        retry: RetryPolicy {
            max_attempts: 12,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            max_total_wait: Duration::from_secs(5),
        },
        seed: Some(7),
        ..EngineOptions::default()
    }
}

pub fn spec(archive: &Archive) -> SourceSpec {
    tree_spec(archive, "staff")
}

/// Plans the archive into its state directory and runs the engine once.
pub fn run(archive: &Archive, client: &Client, options: &EngineOptions) -> (RunOutcome, Tally) {
    run_with(archive, client, options, &PlanOptions::default())
}

/// Plans the archive with `plan` options and runs the engine once.
pub fn run_with(
    archive: &Archive,
    client: &Client,
    options: &EngineOptions,
    plan: &PlanOptions,
) -> (RunOutcome, Tally) {
    let (_, outcome, tally) = run_source(archive, &spec(archive), client, options, plan);
    (outcome, tally)
}

/// Plans `source` into the archive's state directory and runs the engine once,
/// answering the plan's summary too.
pub fn run_source(
    archive: &Archive,
    source: &SourceSpec,
    client: &Client,
    options: &EngineOptions,
    plan: &PlanOptions,
) -> (plan::PlanSummary, RunOutcome, Tally) {
    let store = Store::open(&archive.state()).unwrap();
    let summary = plan::build(&store, source, plan).unwrap();
    let tally = Tally::default();
    let outcome = engine::run(&store, client, options, &StopSignal::default(), &tally).unwrap();
    (summary, outcome, tally)
}

/// A person id, for tests that write it out.
pub fn pid(id: &str) -> faceenroll::model::PersonId {
    faceenroll::model::PersonId::new(id).unwrap()
}

/// A group id, for tests that write it out.
pub fn gid(id: &str) -> faceenroll::model::GroupId {
    faceenroll::model::GroupId::new(id).unwrap()
}

/// An emulator on an ephemeral loopback port, with the rehearsal account, no rate
/// limit unless the test sets one, and the strict reading of bodies: a request the
/// contract does not allow is refused with 21, not read leniently.
pub fn emulator() -> Emulator {
    emulator_with(|_| {})
}

pub fn emulator_with(configure: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    let mut config = EmulatorConfig::rehearsal();
    config.qps = None;
    config.contract.full = READING.with(|r| r.get());
    config.probes.strict = true;
    configure(&mut config);
    Emulator::start(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

/// An emulator that reads bodies as the service does, leniently (see
/// [`emulator_with`] for the rest): for the emulator's own tests of that reading.
pub fn lenient_emulator(configure: impl FnOnce(&mut EmulatorConfig)) -> Emulator {
    emulator_with(|config| {
        config.probes.strict = false;
        configure(config);
    })
}

thread_local! {
    /// The reading of -1309 the emulators of this test thread play.
    static READING: std::cell::Cell<faceenroll::emulator::FullReading> =
        const { std::cell::Cell::new(faceenroll::emulator::FullReading::PerImage) };
}

/// Runs `test` once under each reading of -1309 on addface (for the whole call, image
/// by image): every emulator it starts with [`emulator_with`] plays that reading.
pub fn for_each_reading(mut test: impl FnMut()) {
    use faceenroll::emulator::FullReading;
    for reading in [FullReading::PerImage, FullReading::WholeCall] {
        println!("-1309 reading: {reading:?}");
        READING.with(|r| r.set(reading));
        test();
    }
    READING.with(|r| r.set(FullReading::PerImage));
}

/// A client of `emulator` with the rehearsal credentials and short timeouts.
pub fn client(emulator: &Emulator) -> Client {
    let mut config = ClientConfig::new(
        &emulator.endpoint(),
        REHEARSAL_APPID,
        "",
        rehearsal_credentials(),
    );
    config.read_timeout = std::time::Duration::from_secs(5);
    Client::new(config).unwrap()
}

/// The account an emulator kept in its state file (`--emulator-state`,
/// `--state-file`), read back as a test would read the service.
pub fn account(path: &Path) -> faceenroll::emulator::StateSnapshot {
    let text =
        std::fs::read(path).unwrap_or_else(|e| panic!("the account file {}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap()
}

/// The content hashes of the faces the service holds for each person, sorted (a face
/// held twice appears twice).
pub fn held_faces(
    snapshot: &faceenroll::emulator::StateSnapshot,
) -> std::collections::BTreeMap<String, Vec<String>> {
    snapshot
        .persons
        .iter()
        .map(|(id, person)| {
            let mut hashes: Vec<String> = person
                .faces
                .iter()
                .map(|f| f.content_hash.clone())
                .collect();
            hashes.sort();
            (id.clone(), hashes)
        })
        .collect()
}

/// The archive as a tree source whose persons all go in `group`.
pub fn tree_spec(archive: &Archive, group: &str) -> SourceSpec {
    tree(&archive.root(), &[group])
}

/// The tree at `root` (`ROOT/<person>/<photo>`) as a source whose persons all go in
/// `groups`.
pub fn tree(root: &Path, groups: &[&str]) -> SourceSpec {
    SourceSpec::Tree {
        root: root.to_owned(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        layout: Layout::Person,
        follow_symlinks: false,
    }
}

/// The content hashes of the archive's photos by person folder, sorted, for
/// comparison with [`held_faces`]; `except` lists photos that must not be held.
pub fn archive_faces(
    archive: &Archive,
    except: &[PathBuf],
) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut expected = std::collections::BTreeMap::<String, Vec<String>>::new();
    for person in std::fs::read_dir(archive.root()).unwrap() {
        let person = person.unwrap();
        for photo in std::fs::read_dir(person.path()).unwrap() {
            let path = photo.unwrap().path();
            if except.contains(&path) {
                continue;
            }
            expected
                .entry(person.file_name().to_string_lossy().into_owned())
                .or_default()
                .push(hash_of(&path));
        }
    }
    for hashes in expected.values_mut() {
        hashes.sort();
    }
    expected
}

/// Writes a file, creating its folders.
pub fn write(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    path.to_owned()
}
