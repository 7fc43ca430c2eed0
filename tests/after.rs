//! After the job: the metrics file and the JSON summary of `enroll`, `verify` and
//! `rollback`, against the in-process emulator.

mod support;

use faceenroll::emulator::rehearsal_credentials;
use faceenroll::emulator::{Emulator, REHEARSAL_APPID};
use faceenroll::engine::StopSignal;
use faceenroll::model::{GroupId, PersonId};
use faceenroll::ops::enroll::{enroll, Done, EnrollJob, Finished, Outputs, Target};
use faceenroll::plan::PlanOptions;
use faceenroll::service::client::ClientConfig;
use faceenroll::service::client::ImageBody;
use faceenroll::source::SourceSpec;
use std::path::Path;
use std::time::Duration;
use support::bin::code_and_text as output;
use support::{
    after_command, blank, client, emulator, held_faces, options, photo, run, spec, Archive,
};

fn service(emulator: &Emulator) -> Target {
    Target::Service(ClientConfig::new(
        &emulator.endpoint(),
        REHEARSAL_APPID,
        "",
        rehearsal_credentials(),
    ))
}

fn job(archive: &Archive, outputs: Outputs) -> EnrollJob {
    EnrollJob {
        source: spec(archive),
        state_dir: archive.state(),
        plan: PlanOptions::default(),
        engine: options(),
        dry_run: false,
        rebind_account: false,
        report: None,
        outputs,
        mirror: None,
        strict: false,
    }
}

fn run_job(archive: &Archive, emulator: &Emulator, outputs: Outputs) -> Finished {
    match enroll(
        &job(archive, outputs),
        service(emulator),
        &StopSignal::default(),
        |_: &_, _, _, _| {},
    )
    .unwrap()
    {
        Done::Ran(finished) => finished,
        Done::Planned(..) => panic!("not a dry run"),
    }
}

fn read_metrics(path: &Path) -> prometheus_parse::Scrape {
    let text = std::fs::read_to_string(path).unwrap();
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap()
}

fn value(v: &prometheus_parse::Value) -> f64 {
    match v {
        prometheus_parse::Value::Counter(n)
        | prometheus_parse::Value::Gauge(n)
        | prometheus_parse::Value::Untyped(n) => *n,
        other => panic!("unexpected {other:?}"),
    }
}

/// The sample of `metric` whose labels include `labels`, summed over the others.
fn sum(scrape: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| value(&s.value))
        .sum()
}

#[test]
fn the_metrics_file_parses_and_its_figures_are_the_summarys() {
    let archive = Archive::new();
    archive.fill(3, 4, 100);
    archive.add("person001", "zz-blank.png", &blank());
    let emulator = emulator();
    // Two rate-limit answers, retried.
    emulator.inject_next(15, 2);
    let metrics = archive.dir.path().join("faceenroll.prom");
    let json = archive.dir.path().join("summary.json");
    let outputs = Outputs {
        metrics_file: Some(metrics.clone()),
        metrics_interval: Duration::from_secs(60),
        summary_json: Some(json.clone()),
    };
    let finished = run_job(&archive, &emulator, outputs.clone());
    let c = &finished.counts;
    assert_eq!((c.enrolled, c.failed, c.pending), (12, 1, 0));

    let scrape = read_metrics(&metrics);
    for (status, n) in [
        ("enrolled", c.enrolled),
        ("duplicate", c.duplicate),
        ("skipped", c.skipped),
        ("failed", c.failed),
        ("pending", c.pending),
    ] {
        assert_eq!(
            sum(&scrape, "faceenroll_photos", &[("status", status)]),
            n as f64,
            "{status}"
        );
    }
    let t = finished.tally.snapshot();
    assert_eq!(sum(&scrape, "faceenroll_persons", &[]), c.persons as f64);
    assert_eq!(
        sum(
            &scrape,
            "faceenroll_persons_by_outcome",
            &[("outcome", "created")]
        ),
        3.0
    );
    assert_eq!(sum(&scrape, "faceenroll_calls_total", &[]), t.calls as f64);
    let counters = emulator.counters();
    for call in ["newperson", "addface"] {
        assert_eq!(
            sum(&scrape, "faceenroll_calls_total", &[("call", call)]),
            counters.received(call) as f64,
            "{call}"
        );
    }
    assert_eq!(
        sum(
            &scrape,
            "faceenroll_calls_total",
            &[("class", "rate_limited")]
        ),
        2.0
    );
    assert_eq!(sum(&scrape, "faceenroll_rate_limited_total", &[]), 2.0);
    assert_eq!(
        sum(&scrape, "faceenroll_retries_total", &[]),
        t.retries as f64
    );
    assert!(sum(&scrape, "faceenroll_run_duration_seconds", &[]) > 0.0);
    let first_end = sum(&scrape, "faceenroll_last_success_timestamp_seconds", &[]);
    assert!(first_end > 1.7e9, "{first_end}");
    for metric in ["faceenroll_photos", "faceenroll_calls_total"] {
        assert!(scrape.docs.contains_key(metric), "# HELP of {metric}");
    }

    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(summary["enrolled"], 12);
    assert_eq!(summary["failed"], 1);
    assert_eq!(summary["calls"], t.calls);
    assert_eq!(summary["failures_by_code"][0]["code"], -1101);

    // A later run that is interrupted before it starts still shows when the last
    // finished run ended.
    let stop = StopSignal::default();
    stop.interrupt();
    enroll(
        &job(&archive, outputs),
        service(&emulator),
        &stop,
        |_: &_, _, _, _| {},
    )
    .unwrap();
    let again = read_metrics(&metrics);
    assert_eq!(
        sum(&again, "faceenroll_last_success_timestamp_seconds", &[]),
        first_end
    );
}

/// Starts `cmd` and kills it with SIGKILL once the emulator has received five
/// `call` calls.
fn kill_after(mut cmd: std::process::Command, emulator: &Emulator, call: &str) {
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while emulator.counters().received(call) < 5 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn verify_finds_a_deleted_face_and_repair_then_enroll_restores_exactly_it() {
    let archive = Archive::new();
    archive.fill(3, 4, 200);
    let emulator = emulator();
    let client = client(&emulator);
    run(&archive, &client, &options());
    let after_job = held_faces(&emulator.snapshot());
    let endpoint = emulator.endpoint();
    let state = archive.state();

    let (code, text) = output(&mut after_command("verify", &endpoint, &state, &[]));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("3 checked"), "{text}");

    // Another client deletes one face the job enrolled.
    let person = PersonId::new("person001").unwrap();
    let victim = emulator.snapshot().persons["person001"].faces[2]
        .face_id
        .clone();
    client
        .del_faces(&person, std::slice::from_ref(&victim))
        .unwrap();
    let (code, text) = output(&mut after_command("verify", &endpoint, &state, &[]));
    assert_eq!(code, 1, "{text}");
    let drift = std::fs::read_to_string(state.join("drift.csv")).unwrap();
    let rows: Vec<&str> = drift.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{drift}");
    assert!(
        rows[0].starts_with(&format!("person001,face_missing,{victim},")),
        "{drift}"
    );

    let before = emulator.counters();
    let (code, text) = output(&mut after_command(
        "verify",
        &endpoint,
        &state,
        &["--repair"],
    ));
    assert_eq!(code, 0, "every repair queued for the next enroll: {text}");
    assert!(text.contains("1 photos marked pending"), "{text}");
    let counters = emulator.counters();
    assert_eq!(counters.received("getinfo") - before.received("getinfo"), 3);
    assert_eq!(counters.requests - before.requests, 3, "verify only reads");

    let before = emulator.counters();
    run(&archive, &client, &options());
    let counters = emulator.counters();
    assert_eq!(counters.received("addface") - before.received("addface"), 1);
    assert_eq!(held_faces(&emulator.snapshot()), after_job);
    let (code, text) = output(&mut after_command("verify", &endpoint, &state, &[]));
    assert_eq!(code, 0, "{text}");

    // A face added by another tool is counted, not a difference; a person deleted by
    // another client is one, and repair then enroll creates it again with its faces.
    let extra = archive.dir.path().join("extra.png");
    std::fs::write(&extra, photo(9999)).unwrap();
    client
        .add_faces(
            &PersonId::new("person000").unwrap(),
            &[ImageBody::File(extra)],
            None,
        )
        .unwrap();
    let after_job = held_faces(&emulator.snapshot());
    let (code, text) = output(&mut after_command("verify", &endpoint, &state, &[]));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("1 faces on these persons the job did not add"),
        "{text}"
    );
    client
        .del_person(&PersonId::new("person002").unwrap())
        .unwrap();
    let (code, text) = output(&mut after_command(
        "verify",
        &endpoint,
        &state,
        &["--repair", "--format", "jsonl"],
    ));
    assert_eq!(code, 0, "every repair queued for the next enroll: {text}");
    let drift = std::fs::read_to_string(state.join("drift.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = drift
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{drift}");
    assert_eq!(rows[0]["person_id"], "person002");
    assert_eq!(rows[0]["difference"], "person_missing");
    run(&archive, &client, &options());
    assert_eq!(held_faces(&emulator.snapshot()), after_job);
}

#[test]
fn the_metrics_file_is_written_while_the_job_runs() {
    let archive = Archive::new();
    archive.fill(4, 3, 800);
    let emulator = emulator();
    emulator.set_faults(faceenroll::emulator::Faults {
        latency_ms: 60,
        ..Default::default()
    });
    let metrics = archive.dir.path().join("faceenroll.prom");
    let outputs = Outputs {
        metrics_file: Some(metrics.clone()),
        metrics_interval: Duration::from_millis(100),
        summary_json: None,
    };
    let mut engine = options();
    engine.workers = faceenroll::engine::Workers::Fixed(1);
    let job = job(&archive, outputs);
    let job = EnrollJob { engine, ..job };
    let during = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| {
            // The first figures that show the run under way.
            let started = std::time::Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if let Ok(text) = std::fs::read_to_string(&metrics) {
                    let scrape =
                        prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
                            .unwrap();
                    let enrolled = sum(&scrape, "faceenroll_photos", &[("status", "enrolled")]);
                    let pending = sum(&scrape, "faceenroll_photos", &[("status", "pending")]);
                    if enrolled > 0.0 && pending > 0.0 {
                        return (enrolled, pending);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            (0.0, 0.0)
        });
        enroll(
            &job,
            service(&emulator),
            &StopSignal::default(),
            |_: &_, _, _, _| {},
        )
        .unwrap();
        watcher.join().unwrap()
    });
    assert_eq!(
        during.0 + during.1,
        12.0,
        "every photo enrolled or pending: {during:?}"
    );
    let end = read_metrics(&metrics);
    assert_eq!(
        sum(&end, "faceenroll_photos", &[("status", "enrolled")]),
        12.0
    );
    assert_eq!(
        sum(&end, "faceenroll_photos", &[("status", "pending")]),
        0.0
    );
}

/// A person made by plain client calls before the job: 18 faces, a group, a name
/// and a tag.
fn prepare_existing(client: &faceenroll::service::client::Client, dir: &Path) {
    let person = PersonId::new("person000").unwrap();
    let write = |seed: u32| {
        let path = dir.join(format!("before-{seed}.png"));
        std::fs::write(&path, photo(seed)).unwrap();
        ImageBody::File(path)
    };
    client
        .new_person(
            &person,
            &[GroupId::new("before").unwrap()],
            &write(9000),
            Some("Old Name"),
            Some("old-tag"),
        )
        .unwrap();
    let more: Vec<ImageBody> = (9001..9018).map(write).collect();
    let added = client.add_faces(&person, &more, None).unwrap();
    assert_eq!(added.added, 17);
}

/// A manifest that adds two faces, the group `staff` and a new name and tag to
/// person000, and creates person001 and person002.
fn manifest(archive: &Archive, name: &str) -> SourceSpec {
    let mut text = String::from("person_id,image,group_ids,person_name,tag\n");
    for (person, seeds) in [
        ("person000", 100..102),
        ("person001", 200..203),
        ("person002", 300..303),
    ] {
        for seed in seeds {
            let path = archive.add(person, &format!("{seed}.png"), &photo(seed));
            text.push_str(&format!(
                "{person},{},staff,{name} {person},job-tag\n",
                path.display()
            ));
        }
    }
    let path = archive.dir.path().join("manifest.csv");
    std::fs::write(&path, text).unwrap();
    SourceSpec::Manifest { path }
}

#[test]
fn rollback_leaves_the_account_as_the_job_found_it() {
    let archive = Archive::new();
    let emulator = emulator();
    let client = client(&emulator);
    prepare_existing(&client, archive.dir.path());
    let found = emulator.snapshot();
    assert_eq!(found.persons["person000"].faces.len(), 18);
    let source = manifest(&archive, "New");
    support::run_source(&archive, &source, &client, &options(), &Default::default());
    // A later run renames them all: the persons the job created are brought in line,
    // and the person it found keeps its first record.
    let source = manifest(&archive, "Renamed");
    support::run_source(&archive, &source, &client, &options(), &Default::default());
    let changed = emulator.snapshot();
    assert_eq!(changed.persons["person000"].faces.len(), 20);
    assert_eq!(changed.persons["person000"].tag, "job-tag");
    assert_eq!(changed.persons.len(), 3);
    let endpoint = emulator.endpoint();
    let state = archive.state();

    // A dry run lists the calls and makes none.
    let before = emulator.counters().requests;
    let (code, text) = output(&mut after_command(
        "rollback",
        &endpoint,
        &state,
        &["--dry-run"],
    ));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("delperson person_id=person001"), "{text}");
    assert!(
        text.contains("delgroupids person_id=person000 group_ids=staff"),
        "{text}"
    );
    assert_eq!(emulator.counters().requests, before);
    // Without a terminal and without --yes it is not confirmed.
    let (code, _) = output(&mut after_command("rollback", &endpoint, &state, &[]));
    assert_eq!(code, 1);
    assert_eq!(emulator.counters().requests, before);

    let (code, text) = output(&mut after_command(
        "rollback",
        &endpoint,
        &state,
        &["--yes"],
    ));
    assert_eq!(code, 0, "{text}");
    let after = emulator.snapshot();
    assert_eq!(after.persons.keys().collect::<Vec<_>>(), ["person000"]);
    assert_eq!(after.persons["person000"], found.persons["person000"]);
    assert_eq!(held_faces(&after), held_faces(&found));

    let before = emulator.counters().requests;
    let (code, text) = output(&mut after_command(
        "rollback",
        &endpoint,
        &state,
        &["--yes"],
    ));
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        emulator.counters().requests,
        before,
        "a second rollback makes no call"
    );
}

#[test]
fn a_rollback_killed_in_the_middle_finishes_when_run_again() {
    let archive = Archive::new();
    // Enough persons that a paced rollback is still running when it is killed.
    archive.fill(40, 1, 500);
    let emulator = emulator();
    let client = client(&emulator);
    run(&archive, &client, &options());
    assert_eq!(emulator.snapshot().persons.len(), 40);
    let endpoint = emulator.endpoint();
    let state = archive.state();

    kill_after(
        after_command("rollback", &endpoint, &state, &["--yes", "--qps", "20"]),
        &emulator,
        "delperson",
    );
    let left = emulator.snapshot().persons.len();
    assert!(
        left > 0 && left < 40,
        "killed in the middle: {left} persons left"
    );

    let (code, text) = output(&mut after_command(
        "rollback",
        &endpoint,
        &state,
        &["--yes", "--qps", "0"],
    ));
    assert_eq!(code, 0, "{text}");
    assert!(emulator.snapshot().persons.is_empty());
    let before = emulator.counters().requests;
    let (code, _) = output(&mut after_command(
        "rollback",
        &endpoint,
        &state,
        &["--yes"],
    ));
    assert_eq!(code, 0);
    assert_eq!(emulator.counters().requests, before);
}

#[test]
fn a_verify_killed_in_the_middle_goes_on_where_it_stopped() {
    let archive = Archive::new();
    archive.fill(40, 1, 700);
    let emulator = emulator();
    let client = client(&emulator);
    run(&archive, &client, &options());
    let endpoint = emulator.endpoint();
    let state = archive.state();

    kill_after(
        after_command("verify", &endpoint, &state, &["--qps", "20"]),
        &emulator,
        "getinfo",
    );
    let first = emulator.counters().received("getinfo");
    assert!(first < 40, "killed in the middle: {first} persons read");

    let (code, text) = output(&mut after_command(
        "verify",
        &endpoint,
        &state,
        &["--qps", "0"],
    ));
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("40 checked"), "{text}");
    let second = emulator.counters().received("getinfo") - first;
    assert!(second < 40 && second + first >= 40, "{first} then {second}");

    // A verify that finished starts afresh.
    let (code, text) = output(&mut after_command(
        "verify",
        &endpoint,
        &state,
        &["--qps", "0"],
    ));
    assert_eq!(code, 0, "{text}");
    assert_eq!(emulator.counters().received("getinfo") - first - second, 40);
}

#[test]
fn a_person_the_service_refuses_to_show_is_a_difference_and_the_rest_are_checked() {
    let archive = Archive::new();
    archive.fill(2, 2, 900);
    let emulator = emulator();
    run(&archive, &client(&emulator), &options());
    let (endpoint, state) = (emulator.endpoint(), archive.state());
    emulator.inject_next(21, 1);
    let (code, text) = output(&mut after_command("verify", &endpoint, &state, &[]));
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("2 checked"), "{text}");
    let drift = std::fs::read_to_string(state.join("drift.csv")).unwrap();
    let rows: Vec<&str> = drift.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{drift}");
    assert!(rows[0].starts_with("person000,unreadable,"), "{drift}");
    let (code, text) = output(&mut after_command("verify", &endpoint, &state, &[]));
    assert_eq!(code, 0, "{text}");
}
