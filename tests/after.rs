//! After the job: the metrics file and the JSON summary of `enroll`, `verify` and
//! `rollback`, against the in-process emulator.

mod common;

use common::{blank, emulator, options, spec, Archive};
use faceenroll::emulator::rehearsal_credentials;
use faceenroll::emulator::{Emulator, REHEARSAL_APPID};
use faceenroll::engine::StopSignal;
use faceenroll::ops::enroll::{enroll, Done, EnrollJob, Finished, Outputs, Target};
use faceenroll::plan::PlanOptions;
use faceenroll::service::client::ClientConfig;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

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
        report: None,
        outputs,
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
        Done::Planned(_) => panic!("not a dry run"),
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
    let t = &finished.tally;
    assert_eq!(sum(&scrape, "faceenroll_persons", &[]), c.persons as f64);
    assert_eq!(
        sum(
            &scrape,
            "faceenroll_persons_by_outcome",
            &[("outcome", "created")]
        ),
        3.0
    );
    assert_eq!(
        sum(&scrape, "faceenroll_calls_total", &[]),
        t.calls.load(Relaxed) as f64
    );
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
        t.retries.load(Relaxed) as f64
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
    assert_eq!(summary["calls"], t.calls.load(Relaxed));
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
