//! The emulator's network side: the accept loop, one thread per connection, and
//! the path of one call from its bytes to its answer.
//!
//! A call goes through, in order: the rate window (15), an answer injected with
//! `inject_next`, the random faults (drop, latency, 213, 15), the body size (23),
//! the signature ([`super::auth`]), the body ([`super::params`], 21), with
//! [`Probes::strict`] the body's spelling ([`super::probe`], 21), a missing
//! `appid` (-1301), the images (downloaded and examined outside the state lock),
//! then [`super::rules::apply`] under the lock, then the lost-answer fault.
//! Nothing sleeps or downloads while holding the state lock.
//!
//! Every answer of `/face/` is HTTP 200 with the outcome in its `code`, as the
//! service's SDKs expect; HTTP errors are only for requests outside the contract
//! (404 unknown path, 405 wrong method, 400 unreadable HTTP).
//!
//! The state file is written by a thread of its own: a change wakes it, it writes
//! the whole state (temporary file + rename), then waits [`PERSIST_INTERVAL`]
//! before writing again, so a burst of changes costs one write, not one each.
//! Stopping the emulator writes the last changes.

use super::auth;
use super::contract::{Contract, TooLarge};
use super::faults::{self, Fate, Faults};
use super::http::{self, Body, Conn, ReadError, Request};
use super::images;
use super::introspect::{Counters, InjectRequest, QpsRequest};
use super::params::{ImageSource, Params};
use super::probe::{self, Moment, Probes};
use super::rate::RateWindow;
use super::rules::{self, Answer, Verdict};
use super::state::{self, State, StateSnapshot};
use super::EmulatorConfig;
use crate::limits::MAX_REQUEST_BYTES;
use crate::service::api::{Call, Envelope};
use crate::service::codes::code;
use crate::service::sign::Credentials;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often an idle connection looks whether the emulator is stopping.
const POLL: Duration = Duration::from_millis(100);

/// The shortest time between two writes of the state file.
pub const PERSIST_INTERVAL: Duration = Duration::from_millis(100);

/// Everything the connection threads share.
pub(super) struct Shared {
    appid: String,
    credentials: Vec<Credentials>,
    pub(super) contract: Contract,
    state_file: Option<PathBuf>,
    pub(super) state: Mutex<Versioned>,
    pub(super) rate: Mutex<RateWindow>,
    pub(super) faults: Mutex<Faults>,
    rng: Mutex<fastrand::Rng>,
    pub(super) injected: Mutex<Option<(i64, u32)>>,
    /// Like `injected`, for calls of one name only.
    pub(super) injected_for: Mutex<Option<(Call, i64, u32)>>,
    pub(super) counters: Mutex<Counters>,
    /// The version of the state last written to the state file.
    persisted: Mutex<u64>,
    /// Why the state file could not be written the last time it was tried.
    pub(super) persist_error: Mutex<Option<String>>,
    /// Set when the state changed; wakes the state file writer.
    dirty: Mutex<bool>,
    dirty_changed: Condvar,
    pub(super) stop: AtomicBool,
    probes: Probes,
    workers: Mutex<Vec<JoinHandle<()>>>,
    agent: ureq::Agent,
}

/// The state and a counter of its changes.
pub(super) struct Versioned {
    pub(super) state: State,
    version: u64,
}

/// Locks a mutex, going on with the data if a thread panicked while holding it.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub(super) fn new(config: EmulatorConfig, state: State) -> Shared {
        let rate_window = config.contract.rate_window;
        Shared {
            appid: config.appid,
            credentials: config.credentials,
            contract: config.contract,
            state_file: config.state_file,
            state: Mutex::new(Versioned { state, version: 0 }),
            rate: Mutex::new(RateWindow::with_reading(
                config.qps,
                rate_window,
                Instant::now(),
            )),
            faults: Mutex::new(config.faults),
            rng: Mutex::new(fastrand::Rng::with_seed(config.seed)),
            injected: Mutex::new(None),
            injected_for: Mutex::new(None),
            counters: Mutex::new(Counters::default()),
            persisted: Mutex::new(0),
            persist_error: Mutex::new(None),
            dirty: Mutex::new(false),
            dirty_changed: Condvar::new(),
            stop: AtomicBool::new(false),
            probes: config.probes,
            workers: Mutex::new(Vec::new()),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(10))
                .build(),
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub(super) fn snapshot(&self) -> StateSnapshot {
        lock(&self.state).state.snapshot()
    }

    /// Writes the state file with the current state, if it changed since it was
    /// last written.
    pub(super) fn flush(&self) {
        let Some(path) = &self.state_file else {
            return;
        };
        let mut persisted = lock(&self.persisted);
        let (snapshot, version) = {
            let guard = lock(&self.state);
            if guard.version <= *persisted {
                return;
            }
            (guard.state.snapshot(), guard.version)
        };
        match state::save(path, &snapshot) {
            Ok(()) => {
                *persisted = version;
                *lock(&self.persist_error) = None;
            }
            Err(e) => {
                let message = format!("could not write state file {}: {e}", path.display());
                tracing::error!("{message}");
                *lock(&self.persist_error) = Some(message);
            }
        }
    }

    fn mark_dirty(&self) {
        *lock(&self.dirty) = true;
        self.dirty_changed.notify_one();
    }

    /// Wakes the state file writer so it sees the emulator is stopping.
    pub(super) fn wake_writer(&self) {
        self.dirty_changed.notify_all();
    }
}

/// The state file writer: writes after changes, at most every [`PERSIST_INTERVAL`].
pub(super) fn persist_loop(shared: Arc<Shared>) {
    loop {
        {
            let mut dirty = lock(&shared.dirty);
            while !*dirty && !shared.stopping() {
                dirty = shared
                    .dirty_changed
                    .wait_timeout(dirty, Duration::from_secs(1))
                    .map_or_else(|p| p.into_inner().0, |(g, _)| g);
            }
            *dirty = false;
        }
        if shared.stopping() {
            return;
        }
        shared.flush();
        std::thread::sleep(PERSIST_INTERVAL);
    }
}

impl Shared {}

/// The accept loop: one thread per connection, until `stop` is set; with `tls`, each
/// connection speaks TLS.
pub(super) fn accept_loop(
    shared: Arc<Shared>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
) {
    for stream in listener.incoming() {
        if shared.stopping() {
            break;
        }
        let Ok(stream) = stream else {
            // Out of file descriptors or similar: give the system a moment.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        lock(&shared.counters).connections += 1;
        let for_thread = Arc::clone(&shared);
        let tls = tls.clone();
        let spawned = std::thread::Builder::new()
            .name("emulator-conn".into())
            .spawn(move || {
                let _ = stream.set_read_timeout(Some(POLL));
                let _ = stream.set_nodelay(true);
                match tls {
                    None => serve_connection(&for_thread, stream),
                    Some(config) => match rustls::ServerConnection::new(config) {
                        // The handshake happens on the first read, under the same
                        // polling as any other read.
                        Ok(tls) => {
                            serve_connection(&for_thread, rustls::StreamOwned::new(tls, stream))
                        }
                        Err(e) => tracing::warn!("cannot start a TLS session: {e}"),
                    },
                }
            });
        let mut workers = lock(&shared.workers);
        workers.retain(|w| !w.is_finished());
        if let Ok(handle) = spawned {
            workers.push(handle);
        }
    }
    let workers = std::mem::take(&mut *lock(&shared.workers));
    for worker in workers {
        let _ = worker.join();
    }
}

/// What to do with a request.
enum Reply {
    /// Answer with this HTTP status and JSON body; `close` closes afterwards.
    Json {
        status: u16,
        body: String,
        close: bool,
    },
    /// Close the connection without answering.
    Drop,
}

impl Reply {
    fn ok(body: String) -> Reply {
        Reply::Json {
            status: 200,
            body,
            close: false,
        }
    }

    /// The same answer, closing the connection afterwards if `close`.
    fn closing(self, close: bool) -> Reply {
        match self {
            Reply::Json { status, body, .. } => Reply::Json {
                status,
                body,
                close,
            },
            Reply::Drop => Reply::Drop,
        }
    }
}

fn serve_connection(shared: &Shared, stream: impl Read + Write) {
    let mut conn = Conn::new(stream);
    let stopping = || shared.stopping();
    loop {
        let request = match conn.read_request(shared.contract.max_request_bytes, &stopping) {
            Ok(request) => request,
            Err(ReadError::Malformed(reason)) => {
                let body = rules::Answer::error(code::INVALID_PARAMETER).body;
                tracing::debug!("malformed request: {reason}");
                let _ = http::write_response(
                    &mut conn.stream,
                    400,
                    "Bad Request",
                    "application/json",
                    body.as_bytes(),
                    false,
                );
                return;
            }
            Err(_) => return,
        };
        let keep_alive = request.keep_alive();
        match route(shared, &request) {
            Reply::Drop => return,
            Reply::Json {
                status,
                body,
                close,
            } => {
                let keep = keep_alive && !close && !shared.stopping();
                let reason = match status {
                    200 => "OK",
                    404 => "Not Found",
                    405 => "Method Not Allowed",
                    413 => "Payload Too Large",
                    _ => "Bad Request",
                };
                let written = http::write_response(
                    &mut conn.stream,
                    status,
                    reason,
                    "application/json",
                    body.as_bytes(),
                    keep,
                );
                if let (Some(hook), Some(call)) = (
                    &shared.probes.hook,
                    Call::from_path(request.path.split('?').next().unwrap_or("")),
                ) {
                    hook.at(call, Moment::Answered);
                }
                if written.is_err() || !keep {
                    return;
                }
            }
        }
    }
}

fn route(shared: &Shared, request: &Request) -> Reply {
    let path = request.path.split('?').next().unwrap_or("");
    if path.starts_with("/face/") {
        return match (Call::from_path(path), request.method.as_str()) {
            (Some(call), "POST") => serve_call(shared, call, request),
            (Some(_), _) => error_reply(405, "use POST for the calls of /face/"),
            (None, _) => error_reply(404, "no such call"),
        };
    }
    introspection(shared, request.method.as_str(), path, &request.body)
}

/// An answer to a request outside the contract: code 21 with its reason.
fn error_reply(status: u16, message: &str) -> Reply {
    let envelope = Envelope {
        code: code::INVALID_PARAMETER,
        message: message.to_owned(),
        data: serde_json::Map::new(),
    };
    Reply::Json {
        status,
        body: serde_json::to_string(&envelope).expect("answers serialize"),
        close: false,
    }
}

fn introspection(shared: &Shared, method: &str, path: &str, body: &Body) -> Reply {
    let body_bytes = match body {
        Body::Complete(bytes) => bytes.as_slice(),
        Body::TooLarge { drained } => {
            return error_reply(400, "body too large").closing(!drained);
        }
    };
    match (method, path) {
        ("GET", "/_emulator/state") => json(&shared.snapshot()),
        ("GET", "/_emulator/counters") => json(&lock(&shared.counters).clone()),
        ("GET", "/_emulator/faults") => json(&lock(&shared.faults).clone()),
        ("PUT" | "POST", "/_emulator/faults") => match serde_json::from_slice::<Faults>(body_bytes)
        {
            Ok(faults) => match faults.validate() {
                Ok(()) => {
                    *lock(&shared.faults) = faults.clone();
                    json(&faults)
                }
                Err(e) => error_reply(400, &e),
            },
            Err(e) => error_reply(400, &format!("body is not a Faults object: {e}")),
        },
        ("PUT" | "POST", "/_emulator/qps") => {
            match serde_json::from_slice::<QpsRequest>(body_bytes) {
                Ok(q) => {
                    lock(&shared.rate).set_qps(q.qps);
                    json(&QpsRequest {
                        qps: lock(&shared.rate).qps(),
                    })
                }
                Err(e) => error_reply(400, &format!("body is not {{\"qps\": n}}: {e}")),
            }
        }
        ("POST", "/_emulator/inject") => {
            match serde_json::from_slice::<InjectRequest>(body_bytes) {
                Ok(i) => {
                    *lock(&shared.injected) = (i.count > 0).then_some((i.code, i.count));
                    json(&i)
                }
                Err(e) => error_reply(
                    400,
                    &format!("body is not {{\"code\": n, \"count\": n}}: {e}"),
                ),
            }
        }
        _ => error_reply(404, "no such path"),
    }
}

fn json(value: &impl serde::Serialize) -> Reply {
    Reply::ok(serde_json::to_string(value).expect("introspection types serialize"))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Takes one call of `call`'s name off the `inject_next_for` budget, if any.
fn take_injected_for(shared: &Shared, call: Call) -> Option<i64> {
    let mut injected = lock(&shared.injected_for);
    let (name, code, count) = (*injected)?;
    if name != call {
        return None;
    }
    *injected = (count > 1).then(|| (name, code, count - 1));
    Some(code)
}

/// The instant the rate counts for a call read now: shifted by up to the
/// contract's arrival jitter (no randomness drawn without jitter, so the faults'
/// decisions stay those of the seed).
fn arrival_stamp(shared: &Shared) -> Instant {
    let now = Instant::now();
    let jitter_ms = shared
        .contract
        .arrival_jitter_ms
        .min(super::contract::MAX_ARRIVAL_JITTER_MS);
    if jitter_ms == 0 {
        return now;
    }
    now + Duration::from_micros(lock(&shared.rng).u64(0..=jitter_ms * 1000))
}

/// Takes one call off the `inject_next` budget, if any.
fn take_injected(shared: &Shared) -> Option<i64> {
    let mut injected = lock(&shared.injected);
    let (code, count) = (*injected)?;
    *injected = (count > 1).then(|| (code, count - 1));
    Some(code)
}

/// The longest a hung call is held, so a forgotten fault cannot keep threads for
/// ever.
const LONGEST_HANG: Duration = Duration::from_secs(3600);

/// Holds a call without an answer while the hang fault is on and the emulator runs.
fn hang(shared: &Shared) {
    let started = Instant::now();
    while lock(&shared.faults).hang > 0.0 && !shared.stopping() && started.elapsed() < LONGEST_HANG
    {
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serve_call(shared: &Shared, call: Call, request: &Request) -> Reply {
    {
        let mut counters = lock(&shared.counters);
        counters.requests += 1;
        *counters.calls.entry(call.name().to_owned()).or_default() += 1;
    }
    if let Some(hook) = &shared.probes.hook {
        hook.at(call, Moment::Received);
    }
    let answer = |a: Answer| {
        tracing::debug!("{} answered {}", call.name(), a.code);
        *lock(&shared.counters).codes.entry(a.code).or_default() += 1;
        Reply::ok(shared.contract.spelling.spell(a.body))
    };
    if !lock(&shared.rate).admit(arrival_stamp(shared)) {
        return answer(Answer::error(code::RATE_LIMITED));
    }
    if let Some(injected) = take_injected(shared).or_else(|| take_injected_for(shared, call)) {
        lock(&shared.counters).faults.injected += 1;
        return answer(Answer::error(injected));
    }
    let faults = lock(&shared.faults).clone();
    let decision = faults::decide(&faults, &mut lock(&shared.rng));
    if decision.fate == Fate::Hang {
        lock(&shared.counters).faults.hang += 1;
        hang(shared);
        return Reply::Drop;
    }
    if decision.fate == Fate::Drop {
        lock(&shared.counters).faults.drop_connection += 1;
        return Reply::Drop;
    }
    if !decision.latency.is_zero() {
        lock(&shared.counters).faults.latency += 1;
        std::thread::sleep(decision.latency);
    }
    if let Fate::Answer(injected) = decision.fate {
        {
            let mut counters = lock(&shared.counters);
            if injected == code::INTERNAL_ERROR {
                counters.faults.error_213 += 1;
            } else {
                counters.faults.rate_limit_15 += 1;
            }
        }
        return answer(Answer::error(injected));
    }
    let body = match &request.body {
        Body::Complete(bytes) => bytes,
        Body::TooLarge { drained } => {
            let reply = match shared.contract.too_large {
                TooLarge::Code23 => answer(Answer::error(code::BODY_TOO_LARGE)),
                TooLarge::Http413 => {
                    lock(&shared.counters).http_413 += 1;
                    Reply::Json {
                        status: 413,
                        body: r#"{"error":"request entity too large"}"#.to_owned(),
                        close: false,
                    }
                }
            };
            return reply.closing(!drained);
        }
    };
    let params = Params::from_body(request.header("content-type"), body);
    let body_appid = params
        .as_ref()
        .ok()
        .and_then(|p| p.text("appid"))
        .map(str::to_owned);
    if let Err(refused) = auth::check(
        request.header("authorization"),
        &shared.appid,
        body_appid.as_deref(),
        &shared.credentials,
        unix_now(),
    ) {
        return answer(Answer::error(refused));
    }
    let params = match params {
        Ok(params) => params,
        Err(e) => {
            tracing::debug!("{} body refused: {e}", call.name());
            return answer(Answer::error(code::INVALID_PARAMETER));
        }
    };
    if shared.probes.strict {
        if let Err(refused) = probe::check_body(call, request.header("content-type"), body) {
            tracing::debug!(
                "{} body refused by the strict reading: {refused}",
                call.name()
            );
            return answer(Answer::error(code::INVALID_PARAMETER));
        }
    }
    if body_appid.as_deref().unwrap_or("").is_empty() {
        return answer(Answer::error(code::PARAMETER_EMPTY));
    }
    let verdicts = params
        .image_sources(call)
        .map(|sources| examine_all(shared, call, &faults, sources));
    let result = {
        let mut guard = lock(&shared.state);
        let duplicates = if shared.probes.accept_duplicates {
            rules::Duplicates::Accept
        } else {
            rules::Duplicates::Refuse
        };
        let result = rules::apply_with(
            &mut guard.state,
            &shared.contract,
            call,
            &params,
            verdicts.as_deref(),
            duplicates,
        );
        if result.mutated {
            guard.version += 1;
        }
        result
    };
    if result.mutated && shared.state_file.is_some() {
        shared.mark_dirty();
    }
    if let Some(hook) = &shared.probes.hook {
        hook.at(call, Moment::Done { code: result.code });
    }
    if decision.fate == Fate::LoseAnswer {
        lock(&shared.counters).faults.lose_answer += 1;
        return Reply::Drop;
    }
    answer(result)
}

/// Downloads and examines a call's images; for `addface`, each image may be
/// refused with the transient -1200 instead.
fn examine_all(
    shared: &Shared,
    call: Call,
    faults: &Faults,
    sources: Vec<ImageSource>,
) -> Vec<Verdict> {
    sources
        .into_iter()
        .map(|source| {
            if call == Call::AddFace && faults::transient_image(faults, &mut lock(&shared.rng)) {
                lock(&shared.counters).faults.transient_image += 1;
                return Err(code::FEATURE_STORAGE);
            }
            match source {
                ImageSource::Bytes(bytes) => images::examine(&bytes),
                ImageSource::Url(url) => images::examine(&download(&shared.agent, &url)?),
            }
        })
        .collect()
}

/// Fetches an image by URL: any failure, a non-2xx answer or a body over the
/// request limit is -1308.
fn download(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, i64> {
    let response = agent.get(url).call().map_err(|e| {
        tracing::debug!("download of {url} failed: {e}");
        code::URL_DOWNLOAD_FAILED
    })?;
    let mut bytes = Vec::new();
    response
        .into_reader()
        .take(MAX_REQUEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| code::URL_DOWNLOAD_FAILED)?;
    if bytes.len() as u64 > MAX_REQUEST_BYTES {
        return Err(code::URL_DOWNLOAD_FAILED);
    }
    Ok(bytes)
}
