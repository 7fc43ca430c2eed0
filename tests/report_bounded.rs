//! The report of a job whose photos many persons share (a placeholder avatar in
//! every folder): linear in its rows, and written whole or not at all, through the
//! binary against the emulator.
//!
//! `cargo test --release --test report_bounded -- --ignored --nocapture` prints the
//! report's size and the run's peak memory for 2,000 persons sharing 10 photos
//! (figures, not limits: issue 34 asks under 10 MB and 200 MB).

mod support;

use support::{faceenroll, photo, write};

/// What one run of a job of `persons` persons, each listing the same `photos` files,
/// left: the report's size, its rows, the longest path in it, and the run's peak
/// resident memory in KiB.
struct Shared {
    report_bytes: u64,
    rows: u64,
    longest_path: usize,
    peak_rss_kib: i64,
    secs: f64,
}

fn shared_run(persons: usize, photos: usize) -> Shared {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..photos)
        .map(|i| {
            write(
                &dir.path().join(format!("avatars/avatar-{i}.png")),
                &photo(i as u32 + 1),
            )
        })
        .collect();
    let manifest = dir.path().join("manifest.csv");
    let mut text = String::from("person_id,image,group_ids,person_name,tag\n");
    for p in 0..persons {
        for file in &files {
            text.push_str(&format!("p{p:05},{},staff,,\n", file.display()));
        }
    }
    std::fs::write(&manifest, text).unwrap();
    let longest_path = files
        .iter()
        .map(|f| f.display().to_string().len())
        .chain([manifest.display().to_string().len() + 8])
        .max()
        .unwrap();
    let state = dir.path().join("state");
    let report = dir.path().join("report.csv");
    let mut cmd = faceenroll(&[]);
    cmd.arg("enroll")
        .arg(&manifest)
        .arg("--emulator")
        .arg("--emulator-state")
        .arg(dir.path().join("service.json"))
        .arg("--state")
        .arg(&state)
        .arg("--report")
        .arg(&report)
        .arg("--no-progress")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap());
    let start = std::time::Instant::now();
    // Reaped by `wait4` in `wait_measured`, which also reads its peak memory.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().unwrap();
    let (code, peak_rss_kib) = wait_measured(child.id() as libc::pid_t);
    let secs = start.elapsed().as_secs_f64();
    let log = std::fs::read_to_string(dir.path().join("log")).unwrap();
    assert_eq!(code, 0, "{}", &log[log.len().saturating_sub(4000)..]);
    let mut reader = csv::Reader::from_path(&report).unwrap();
    let rows = reader
        .records()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .len() as u64;
    assert_eq!(rows, (persons * photos) as u64);
    Shared {
        report_bytes: std::fs::metadata(&report).unwrap().len(),
        rows,
        longest_path,
        peak_rss_kib,
        secs,
    }
}

/// Waits for the child `pid`, answering its exit code and its peak resident memory
/// (KiB, from the kernel's accounting of the child, `wait4`).
fn wait_measured(pid: libc::pid_t) -> (i32, i64) {
    let mut status = 0;
    // SAFETY: `rusage` is plain data the call fills in; `pid` is our child, not yet
    // waited for (std never reaps a `Child` on its own).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "{}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "killed: {status}");
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

/// Every row names a shared photo once, with a count: a row's bytes are bounded by a
/// small multiple of the longest path, however many persons share the photo (each
/// row named all the others: 1,000 persons sharing 10 files made 530 MB).
#[test]
fn the_report_of_a_photo_many_persons_share_is_linear_in_its_rows() {
    let run = shared_run(40, 2);
    let per_row = run.report_bytes / run.rows;
    assert!(
        per_row <= 8 * run.longest_path as u64 + 400,
        "{} bytes for {} rows: {per_row} a row, the longest path {} bytes",
        run.report_bytes,
        run.rows,
        run.longest_path
    );
}

#[test]
#[ignore = "a measurement: 2,000 persons, run with --ignored --nocapture"]
fn measure_2000_persons_sharing_10_photos() {
    let persons = std::env::var("FACEENROLL_SHARED_PERSONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let run = shared_run(persons, 10);
    println!(
        "{persons} persons sharing 10 photos: report {} bytes ({:.2} MB, {} rows, {} bytes a row), \
         peak RSS {} KiB ({:.1} MiB), {:.1} s",
        run.report_bytes,
        run.report_bytes as f64 / 1e6,
        run.rows,
        run.report_bytes / run.rows,
        run.peak_rss_kib,
        run.peak_rss_kib as f64 / 1024.0,
        run.secs,
    );
}

/// `kill -9` while `report --output R` writes leaves the previous R whole: the new
/// report goes to a temporary file renamed over R only once written. (Written in
/// place, R was cut short: the process is killed as soon as R changes.)
#[test]
fn a_report_killed_while_written_leaves_the_previous_one_whole() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = (0..10)
        .map(|i| {
            write(
                &dir.path().join(format!("avatars/avatar-{i}.png")),
                &photo(i + 1),
            )
        })
        .collect();
    let manifest = dir.path().join("manifest.csv");
    let mut text = String::from("person_id,image,group_ids,person_name,tag\n");
    for p in 0..100 {
        for file in &files {
            text.push_str(&format!("p{p:05},{},staff,,\n", file.display()));
        }
    }
    std::fs::write(&manifest, text).unwrap();
    let state = dir.path().join("state");
    let run = support::bin::output(
        faceenroll(&[])
            .arg("enroll")
            .arg(&manifest)
            .arg("--emulator")
            .arg("--emulator-state")
            .arg(dir.path().join("service.json"))
            .arg("--state")
            .arg(&state)
            .arg("--no-progress"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let report = out.join("report.csv");
    let previous = "person_id,image\nthe previous report,whole\n";
    let mut killed = 0;
    for _ in 0..5 {
        // What a killed attempt left (its temporary file) goes: a new one shows the
        // next attempt writing.
        for entry in std::fs::read_dir(&out).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        std::fs::write(&report, previous).unwrap();
        let mut child = faceenroll(&[])
            .arg("report")
            .arg("--state")
            .arg(&state)
            .arg("--output")
            .arg(&report)
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let exited = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            let writing = std::fs::read_dir(&out).unwrap().count() > 1
                || std::fs::metadata(&report).map_or(0, |m| m.len()) != previous.len() as u64;
            if writing {
                child.kill().unwrap();
                child.wait().unwrap();
                break None;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        };
        if exited.is_some() {
            // It finished before it was seen writing: try again.
            continue;
        }
        killed += 1;
        assert_eq!(
            std::fs::read_to_string(&report).unwrap(),
            previous,
            "killed while writing, the report is cut"
        );
    }
    assert!(killed > 0, "the report was never caught while written");
}
