//! How many calls per second the emulator serves on this machine, with no injected
//! latency, over keep-alive connections from a few client threads; and how long 64
//! concurrent calls with injected latency take (they should overlap, not queue).
//!
//! Run: `cargo bench --bench emulator` (prints figures; asserts nothing).

#[path = "../tests/support/http.rs"]
mod http;
#[path = "../tests/support/photos.rs"]
mod photos;

use faceenroll::emulator::{Emulator, EmulatorConfig, Faults};
use faceenroll::service::api::Call;
use http::*;
use photos::face_png;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUN: Duration = Duration::from_secs(2);

/// One client call: `(connection, thread, iteration)`.
type Work = Arc<dyn Fn(&mut Connection, usize, usize) + Send + Sync>;

/// Runs `work(thread, i)` from `threads` threads, each on its own keep-alive
/// connection, for `RUN`; returns calls per second.
fn measure(addr: std::net::SocketAddr, threads: usize, work: Work) -> f64 {
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let work = Arc::clone(&work);
            std::thread::spawn(move || {
                let mut conn = Connection::open(addr);
                let mut i = 0;
                while start.elapsed() < RUN {
                    work(&mut conn, t, i);
                    i += 1;
                }
                i
            })
        })
        .collect();
    let calls: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    calls as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let config = EmulatorConfig {
        qps: None,
        ..EmulatorConfig::rehearsal()
    };
    let emu = Emulator::start(config, "127.0.0.1:0".parse().unwrap()).expect("emulator starts");
    let addr = emu.addr();
    println!(
        "emulator benchmark ({} cores available)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    for threads in [1, 2, 4, 8] {
        let body = json_body(json!({}));
        let rate = measure(
            addr,
            threads,
            Arc::new(move |conn: &mut Connection, _, _| {
                let v = conn.call(Call::GetGroupIds, &body).unwrap();
                assert_eq!(v.status, 200);
            }),
        );
        println!("getgroupids, {threads} client threads: {rate:8.0} calls/s");
    }

    // Enrollment: per person one newperson then 19 addface calls of one 48x32 PNG.
    let photos: Arc<Vec<Vec<u8>>> = Arc::new((0..20).map(face_png).collect());
    let bytes: usize = photos.iter().map(Vec::len).sum::<usize>() / photos.len();
    for threads in [1, 2, 4] {
        let photos = Arc::clone(&photos);
        let rate = measure(
            addr,
            threads,
            Arc::new(move |conn: &mut Connection, t, i| {
                let person = format!("bench{threads}_{t}_{}", i / 20);
                let photo = &photos[i % 20];
                let body = if i % 20 == 0 {
                    multipart_body(&[
                        Field::Text("person_id", &person),
                        Field::List("group_ids", &["bench"]),
                        Field::File("image", photo),
                    ])
                } else {
                    multipart_body(&[
                        Field::Text("person_id", &person),
                        Field::File("images[0]", photo),
                    ])
                };
                let call = if i % 20 == 0 {
                    Call::NewPerson
                } else {
                    Call::AddFace
                };
                let v = conn.call(call, &body).unwrap().json();
                assert_eq!(v["code"], 0, "{v}");
            }),
        );
        println!(
            "newperson + addface (1 PNG of {bytes} bytes each), {threads} client threads: {rate:8.0} calls/s"
        );
    }

    // 64 concurrent calls with 100 ms injected latency.
    emu.set_faults(Faults {
        latency_ms: 100,
        ..Faults::default()
    });
    let start = Instant::now();
    let handles: Vec<_> = (0..64)
        .map(|_| {
            std::thread::spawn(move || {
                let mut conn = Connection::open(addr);
                conn.call(Call::GetGroupIds, &json_body(json!({}))).unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    println!(
        "64 concurrent getgroupids with 100 ms latency each: {:.0} ms in all (serial would be 6400 ms)",
        start.elapsed().as_secs_f64() * 1000.0
    );
    let counters = emu.counters();
    println!(
        "total calls served: {}, connections: {}",
        counters.requests, counters.connections
    );
}
