//! `--shard I/N` at the planner: the shards of a source, planned each into its own
//! state directory, together hold exactly the plan of the whole source, and no photo,
//! person or not-taken entry is held by two shards.

mod support;

use faceenroll::plan::{self, PlanOptions, PlanSummary};
use faceenroll::shard::Shard;
use faceenroll::source::SourceSpec;
use faceenroll::store::Store;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use support::photo;

/// A manifest of 40 persons, with bad input of every kind among them: a missing file,
/// a person id the service refuses, a person written in NFD, a row without a person,
/// a photo listed twice, a bad group.
fn source(dir: &Path) -> SourceSpec {
    let photos = dir.join("photos");
    fs::create_dir_all(&photos).unwrap();
    let mut text = String::from("person_id,image,group_ids\n");
    for p in 0..40 {
        for i in 0..(1 + p % 4) {
            let path = photos.join(format!("{p}-{i}.png"));
            fs::write(&path, photo(p * 100 + i)).unwrap();
            text += &format!("person{p:02},{},staff\n", path.display());
        }
    }
    let one = photos.join("0-0.png").display().to_string();
    text += &format!("person03,{},staff\n", photos.join("missing.png").display());
    text += &format!("bad id,{one},staff\n");
    text += &format!("jose\u{301},{one},staff\n");
    text += &format!(",{one},staff\n");
    text += &format!("person05,{one},staff\n");
    text += &format!("person05,{one},staff\n");
    text += &format!("person07,{one},bad group\n");
    text += "person09,,staff\n";
    text += ",,staff\n";
    let path = dir.join("manifest.csv");
    fs::write(&path, text).unwrap();
    SourceSpec::Manifest { path }
}

/// What one state directory holds after planning: its photos, persons and not-taken
/// entries, each as text.
#[derive(Default)]
struct Held {
    photos: Vec<String>,
    persons: Vec<String>,
    not_taken: Vec<String>,
}

fn plan_into(state: &Path, spec: &SourceSpec, shard: Shard) -> (Held, PlanSummary) {
    let store = Store::open(state).unwrap();
    let options = PlanOptions {
        shard,
        ..PlanOptions::default()
    };
    let summary = plan::build(&store, spec, &options).expect("plan");
    let held = Held {
        photos: store
            .photos()
            .map(|r| format!("{:?}", r.unwrap().1))
            .collect(),
        persons: store
            .persons()
            .map(|r| format!("{:?}", r.unwrap()))
            .collect(),
        not_taken: store
            .not_taken()
            .map(|r| format!("{:?}", r.unwrap()))
            .collect(),
    };
    (held, summary)
}

fn union_once(parts: &[Vec<String>], what: &str) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for part in parts {
        for item in part {
            assert!(
                all.insert(item.clone()),
                "{what} held by two shards: {item}"
            );
        }
    }
    all
}

fn same(union: BTreeSet<String>, whole: &[String], n: u32) {
    let whole: BTreeSet<String> = whole.iter().cloned().collect();
    let missing: Vec<_> = whole.difference(&union).collect();
    let extra: Vec<_> = union.difference(&whole).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "N={n}: the shards miss {missing:#?}\nand hold what the whole does not: {extra:#?}"
    );
}

#[test]
fn the_shards_together_hold_the_whole_plan_each_part_once() {
    let dir = tempfile::tempdir().unwrap();
    let spec = source(dir.path());
    let (whole, whole_summary) = plan_into(&dir.path().join("whole"), &spec, Shard::WHOLE);
    assert!(whole.photos.len() > 100, "{}", whole.photos.len());
    assert!(!whole.not_taken.is_empty());
    for n in [1, 3, 7] {
        let mut parts: Vec<(Held, PlanSummary)> = Vec::new();
        for i in 0..n {
            let state = dir.path().join(format!("{n}-{i}"));
            parts.push(plan_into(&state, &spec, Shard::new(i, n).unwrap()));
        }
        let photos: Vec<_> = parts.iter().map(|(h, _)| h.photos.clone()).collect();
        let persons: Vec<_> = parts.iter().map(|(h, _)| h.persons.clone()).collect();
        let not_taken: Vec<_> = parts.iter().map(|(h, _)| h.not_taken.clone()).collect();
        same(union_once(&photos, "a photo"), &whole.photos, n);
        same(union_once(&persons, "a person"), &whole.persons, n);
        same(union_once(&not_taken, "an entry"), &whole.not_taken, n);
        let calls: usize = parts.iter().map(|(_, s)| s.calls.total()).sum();
        assert_eq!(calls, whole_summary.calls.total(), "N={n}");
        for (i, (held, summary)) in parts.iter().enumerate() {
            if n == 1 {
                assert_eq!(summary.other_shards, None);
                continue;
            }
            let others = summary.other_shards.expect("a split plan says so");
            assert_eq!(others.shard, Shard::new(i as u32, n).unwrap());
            assert_eq!(
                others.photos + summary.listed,
                whole_summary.listed,
                "N={n} shard {i}: this shard's photos and the others' make the source's"
            );
            assert_eq!(held.photos.len(), summary.photos);
        }
    }
}

#[test]
fn a_shard_without_a_person_of_its_own_is_no_empty_source() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("photos");
    fs::create_dir_all(root.join("alice")).unwrap();
    fs::write(root.join("alice/1.png"), photo(1)).unwrap();
    let spec = support::tree(&root, &["staff"]);
    let alice = faceenroll::shard::bucket("alice", 2);
    let other = Shard::new(1 - alice, 2).unwrap();
    let (held, summary) = plan_into(&dir.path().join("state"), &spec, other);
    assert!(held.photos.is_empty());
    let others = summary.other_shards.unwrap();
    assert_eq!((others.persons, others.photos), (1, 1));
}

/// Waits for a shard process and asserts it finished with everything accounted for.
fn finished(child: std::process::Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn shard_command(
    archive: &support::Archive,
    endpoint: &str,
    i: u32,
    n: u32,
) -> std::process::Command {
    let state = archive.dir.path().join(format!("state-{i}"));
    let mut cmd = support::enroll_command(&archive.root(), endpoint, &state);
    cmd.args(["--group", "staff", "--shard", &format!("{i}/{n}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// The account holds exactly what one job over the whole archive leaves: each photo
/// once under its person, every person in the group and in no other.
fn assert_one_jobs_state(emulator: &support::EmulatorProcess, archive: &support::Archive) {
    let state = emulator.state();
    assert_eq!(
        support::held_faces(&state),
        support::archive_faces(archive, &[])
    );
    let persons: Vec<String> = state.persons.keys().cloned().collect();
    assert_eq!(state.groups.get("staff"), Some(&persons));
    assert_eq!(state.groups.len(), 1);
    for (id, person) in &state.persons {
        assert_eq!(person.groups, ["staff"], "{id}");
    }
}

#[test]
fn four_shards_at_once_share_one_account_and_one_rate() {
    let archive = support::Archive::new();
    archive.fill(24, 3, 1);
    let log = archive.dir.path().join("emulator.log");
    let emulator = support::EmulatorProcess::start(&["--qps", "50"], &log);

    let children: Vec<_> = (0..4)
        .map(|i| {
            shard_command(&archive, &emulator.endpoint, i, 4)
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let stdout = finished(child, &format!("shard {i}/4"));
        assert!(
            stdout.contains(&format!(
                "Shard {i}/4: paced at 12 calls/s (the account's 50"
            )),
            "{stdout}"
        );
    }
    assert_one_jobs_state(&emulator, &archive);
    let counters = emulator.counters();
    let limited = counters.answered(15);
    assert!(limited <= 5, "{limited} calls answered 15: {counters:?}");

    // Each person is in exactly one shard's report, and every photo in one.
    let mut seen = BTreeSet::new();
    let mut photos = 0;
    for i in 0..4 {
        let rows = support::report_rows(&archive.dir.path().join(format!("state-{i}")));
        let persons: BTreeSet<String> = rows.iter().map(|r| r.person_id.clone()).collect();
        for person in persons {
            assert!(
                seen.insert(person.clone()),
                "{person} in two shards' reports"
            );
        }
        assert!(rows.iter().all(|r| r.status == "enrolled"), "{rows:#?}");
        photos += rows.len();
    }
    assert_eq!((seen.len(), photos), (24, 72));

    // One view of the four: the report with a shard column, the totals in status.
    let pattern = archive.dir.path().join("state-*");
    let merged = support::report_rows(&pattern);
    assert_eq!(merged.len(), 72);
    for row in &merged {
        let shard = row.shard.as_deref().expect("a shard column");
        let i = faceenroll::shard::bucket(&row.person_id, 4);
        assert!(shard.ends_with(&format!("state-{i}")), "{row:?}");
    }
    let states: Vec<std::path::PathBuf> = (0..4)
        .map(|i| archive.dir.path().join(format!("state-{i}")))
        .collect();
    let mut args: Vec<&std::ffi::OsStr> = vec!["status".as_ref()];
    for state in &states {
        args.extend(["--state".as_ref(), state.as_os_str()]);
    }
    let out = support::faceenroll(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("photos:  72 in the plans: 72 enrolled")
            && stdout.contains("persons: 24 (0 failed)")
            && stdout.matches(" done, 0 failed, 0 left").count() == 4,
        "{stdout}"
    );

    // A re-run of every shard has nothing to do and makes no call.
    let before = counters.requests;
    for i in 0..4 {
        let child = shard_command(&archive, &emulator.endpoint, i, 4)
            .spawn()
            .unwrap();
        let _ = finished(child, &format!("re-run of shard {i}/4"));
    }
    assert_eq!(emulator.counters().requests, before);
}

#[test]
fn a_shard_killed_mid_run_and_run_again_leaves_the_exact_state() {
    let archive = support::Archive::new();
    archive.fill(24, 3, 1);
    let log = archive.dir.path().join("emulator.log");
    let emulator = support::EmulatorProcess::start(&["--qps", "50"], &log);

    // Shard 1 alone, slowed down, killed once it has made some of its calls.
    let mut slow = shard_command(&archive, &emulator.endpoint, 1, 4);
    slow.args(["--qps", "4"]);
    let mut child = slow.spawn().unwrap();
    let started = std::time::Instant::now();
    while emulator.counters().received("newperson") < 2 {
        assert!(started.elapsed().as_secs() < 60, "shard 1 made no call");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let held = support::held_faces(&emulator.state());
    assert!(
        !held.is_empty() && held.len() < 24,
        "killed mid-run: {held:?}"
    );

    for i in 0..4 {
        let child = shard_command(&archive, &emulator.endpoint, i, 4)
            .spawn()
            .unwrap();
        let _ = finished(child, &format!("shard {i}/4"));
    }
    assert_one_jobs_state(&emulator, &archive);
}

/// The Kubernetes sample: the manifest is an Indexed Job whose arguments, with each
/// pod's `JOB_COMPLETION_INDEX` put in, are accepted by the binary and name that
/// pod's shard and state directory; its credentials come from a Secret.
#[test]
fn the_kubernetes_sample_is_an_indexed_job_the_binary_accepts() {
    use faceenroll::config::{SECRET_ID_ENV, SECRET_KEY_ENV};
    use serde_yaml::Value;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/kubernetes/job.yaml");
    let job: Value = serde_yaml::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(job["kind"].as_str(), Some("Job"));
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"].as_str(), Some("Indexed"));
    assert!(spec["backoffLimitPerIndex"].as_u64().is_some());
    let count = spec["completions"].as_u64().unwrap() as u32;
    let container = &spec["template"]["spec"]["containers"][0];
    let secrets: BTreeSet<&str> = container["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|e| !e["valueFrom"]["secretKeyRef"].is_null())
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(secrets, BTreeSet::from([SECRET_ID_ENV, SECRET_KEY_ENV]));
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.join(" ").contains("--shard $(JOB_COMPLETION_INDEX)/"));
    let mut states = BTreeSet::new();
    for index in 0..count {
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("$(JOB_COMPLETION_INDEX)", &index.to_string()))
            .collect();
        let mut argv: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        argv.push("--print-config".as_ref());
        let out = support::faceenroll(&argv).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let config: toml::Value = toml::from_str(&stdout).unwrap();
        let enroll = &config["enroll"];
        assert_eq!(
            enroll["shard"].as_str(),
            Some(format!("{index}/{count}").as_str())
        );
        assert_eq!(
            enroll["qps"].as_integer(),
            Some(i64::from(50 / count).max(1))
        );
        states.insert(enroll["state"].as_str().unwrap().to_owned());
    }
    assert_eq!(states.len(), count as usize, "each pod has its own state");
}
