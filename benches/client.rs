//! CPU cost of the client per 1,000 calls, against the in-process emulator.
//!
//! Run with `cargo bench --bench client`. Prints, for each kind of call, the wall
//! time, the CPU seconds of the calling thread (the client alone: it is blocking and
//! does all its work on the caller's thread) and of the whole process (client plus
//! emulator), per 1,000 calls, read from /proc before and after.
//!
//! Photos are streamed from disk, so the client's memory does not grow with their
//! size; the peak resident size of the process is printed at the end.

#[path = "support/proc_stats.rs"]
mod proc_stats;

use faceenroll::emulator::{Emulator, EmulatorConfig};
use faceenroll::model::{GroupId, PersonId};
use faceenroll::service::client::{Client, ClientConfig, ImageBody};
use image::{ImageFormat, Rgb, RgbImage};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime, in seconds, of a /proc stat file.
fn cpu_seconds(stat_path: &str) -> f64 {
    let stat = std::fs::read_to_string(stat_path).expect("/proc is readable");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 11 and 12 here.
    let utime: f64 = fields[11].parse().unwrap();
    let stime: f64 = fields[12].parse().unwrap();
    (utime + stime) / TICKS_PER_SEC
}

/// Runs `calls` calls of `f` and prints its costs per 1,000 calls.
fn measure(label: &str, calls: usize, mut f: impl FnMut(usize)) {
    let thread0 = cpu_seconds("/proc/thread-self/stat");
    let process0 = cpu_seconds("/proc/self/stat");
    let wall0 = Instant::now();
    for i in 0..calls {
        f(i);
    }
    let wall = wall0.elapsed().as_secs_f64();
    let thread = cpu_seconds("/proc/thread-self/stat") - thread0;
    let process = cpu_seconds("/proc/self/stat") - process0;
    let per_k = 1000.0 / calls as f64;
    println!(
        "{label:<34} {calls:>5} calls  wall {:>7.3} s/1k  client CPU {:>6.3} s/1k  \
         process CPU {:>6.3} s/1k",
        wall * per_k,
        thread * per_k,
        process * per_k,
    );
}

/// A noisy photo of `width` × `height` pixels, distinct by `seed`.
fn photo(dir: &Path, name: &str, width: u32, height: u32, seed: u64) -> PathBuf {
    let mut rng = fastrand::Rng::with_seed(seed);
    let img = RgbImage::from_fn(width, height, |_, _| {
        Rgb([rng.u8(..), rng.u8(..), rng.u8(..)])
    });
    let path = dir.join(name);
    img.save_with_format(&path, ImageFormat::Jpeg).unwrap();
    path
}

fn main() {
    let emu = Emulator::start(EmulatorConfig::rehearsal(), "127.0.0.1:0".parse().unwrap())
        .expect("emulator starts");
    emu.set_qps(None);
    let rehearsal = EmulatorConfig::rehearsal();
    let client = Client::new(ClientConfig::new(
        &emu.endpoint(),
        &rehearsal.appid,
        "",
        rehearsal.credentials[0].clone(),
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = photo(dir.path(), "first.jpg", 640, 480, 1);
    let chunk: Vec<ImageBody> = (0..5)
        .map(|i| ImageBody::File(photo(dir.path(), &format!("c{i}.jpg"), 640, 480, 10 + i)))
        .collect();
    let size = |p: &Path| std::fs::metadata(p).unwrap().len() / 1024;
    println!(
        "photos: {} KiB (newperson), {} KiB each (addface, 5 per call)",
        size(&first),
        size(match &chunk[0] {
            ImageBody::File(p) => p,
            _ => unreachable!(),
        })
    );
    let groups = [GroupId::new("bench").unwrap()];
    let person = |i: usize| PersonId::new(format!("p{i}")).unwrap();

    measure("getgroupids (JSON, no images)", 5000, |_| {
        client.get_group_ids().unwrap();
    });
    let first = ImageBody::File(first);
    measure("newperson (multipart, 1 file)", 1000, |i| {
        client
            .new_person(&person(i), &groups, &first, None, None)
            .unwrap();
    });
    measure("getinfo (JSON)", 5000, |i| {
        client.get_info(&person(i % 1000)).unwrap();
    });
    measure("addface (multipart, 5 files)", 200, |i| {
        let added = client.add_faces(&person(i), &chunk, None).unwrap();
        assert_eq!(added.added, 5);
    });
    let counters = emu.counters();
    println!(
        "emulator: {} requests on {} connection(s); peak RSS {} KiB",
        counters.requests,
        counters.connections,
        proc_stats::peak_rss_kib()
    );
    emu.shutdown().unwrap();
}
