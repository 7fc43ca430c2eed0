//! A local stand-in of the face person API, faithful to the contract
//! (`shared/spec/API.md`), which tests, benchmarks and operators' rehearsals run
//! against, since the real service cannot be reached from a test.
//!
//! [`Emulator::start`] serves the twelve calls of `POST /face/<name>` on a
//! loopback address, in JSON or multipart bodies, and answers exactly as the
//! contract spells it. It checks every signature ([`auth`]), applies the
//! service's rules to an in-memory account ([`rules`], [`state`]), examines images
//! ([`images`]), enforces the rate limit ([`rate`]) and can misbehave on purpose
//! ([`faults`]). Tests read back what it holds and what it saw ([`introspect`]),
//! and can read bodies strictly or hold a call at a moment of their choosing
//! ([`probe`]).
//! The `faceenroll emulator` command runs the same type.
//!
//! ```no_run
//! use faceenroll::emulator::{Emulator, EmulatorConfig};
//! let emulator = Emulator::start(EmulatorConfig::rehearsal(), "127.0.0.1:0".parse().unwrap())?;
//! println!("serving on {}", emulator.endpoint());
//! let snapshot = emulator.snapshot();
//! emulator.shutdown().expect("no state file to write");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # The emulator's choices where the contract is silent
//!
//! - Lengths: ids over [`MAX_ID_BYTES`](crate::limits::MAX_ID_BYTES) bytes,
//!   `person_name` over [`MAX_NAME_BYTES`](crate::limits::MAX_NAME_BYTES), `tag`
//!   over [`MAX_TAG_BYTES`](crate::limits::MAX_TAG_BYTES): -1304.
//! - The points the contract leaves open (-1309 for the whole call or image by image,
//!   the request body limit and how it is refused, the answer of an `addface` that
//!   added nothing, a duplicate sent to a full person, the group and AppID limits)
//!   are played as [`Contract`] says;
//!   see [`contract`]. By default: image by image, bodies over
//!   [`MAX_REQUEST_BYTES`](crate::limits::MAX_REQUEST_BYTES) answered 23.
//! - Faces: a picture whose pixels are all one colour has no face (-1101); a face
//!   is "the same" as one the person has when its bytes hash the same (-1312),
//!   checked before the person limit (-1309) unless
//!   [`Contract::duplicate_when_full`] says otherwise. See [`images`] and [`rules`].
//! - Rate: by default a sliding one-second window of admitted calls, or calendar
//!   seconds, with arrivals stamped at once or a few milliseconds late
//!   ([`Contract::rate_window`], [`Contract::arrival_jitter_ms`], [`rate`]); refused
//!   calls answer 15 and do no work.
//! - Signatures: a validity over three months is malformed (5); see [`auth`].
//! - Bodies: an unreadable body is 21, a missing field -1301; see [`params`].
//! - Groups exist while they have persons; face ids are 19-digit decimals never
//!   reused; see [`state`].
//!
//! # Rehearsal credentials
//!
//! With no credentials configured, the emulator accepts the fixed, public
//! rehearsal credentials [`REHEARSAL_SECRET_ID`] / [`REHEARSAL_SECRET_KEY`] for the
//! AppID [`REHEARSAL_APPID`]. They open nothing but a local emulator.

pub mod auth;
pub mod contract;
pub mod faults;
pub mod http;
pub mod images;
pub mod introspect;
pub mod multipart;
pub mod params;
pub mod probe;
pub mod rate;
pub mod rules;
mod server;
pub mod state;

pub use contract::{
    Contract, DuplicateWhenFull, EmptyAnswer, FaceGone, FullReading, LastGroup, Prepared,
    RateReading, Spelling, TooLarge, LAST_GROUP_REFUSED,
};
pub use faults::{FaultCounters, Faults};
pub use introspect::Counters;
pub use probe::{CallHook, Moment, Probes};
pub use state::{FaceSnapshot, PersonSnapshot, StateSnapshot};

use crate::limits::DEFAULT_QPS;
use crate::service::sign::Credentials;
use server::{lock, Shared};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;

/// The AppID the emulator serves when none is configured.
pub const REHEARSAL_APPID: &str = "1250000000";
/// The SecretId the emulator accepts when none is configured.
pub const REHEARSAL_SECRET_ID: &str = "AKIDfaceenrollREHEARSAL0000000000000";
/// The SecretKey of [`REHEARSAL_SECRET_ID`]. Public on purpose: it opens only a
/// local emulator.
pub const REHEARSAL_SECRET_KEY: &str = "faceenroll-rehearsal-key-not-secret";

/// How an emulator is set up.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The AppID it serves: signatures and bodies must name it.
    pub appid: String,
    /// The credentials whose signatures it accepts.
    pub credentials: Vec<Credentials>,
    /// Calls per second before answering 15; `None` or 0 is unlimited.
    pub qps: Option<u32>,
    /// Faults to inject (all off by default).
    pub faults: Faults,
    /// Where to keep the state between runs: JSON, loaded at start, written after
    /// changes (at most every 100 ms) and at shutdown.
    pub state_file: Option<PathBuf>,
    /// Seed of the RNG behind the fault decisions.
    pub seed: u64,
    /// The readings of the contract's open points and the limits it plays.
    pub contract: Contract,
    /// What tests use to examine a client: strict bodies, duplicates kept, a hook
    /// on each call (all off by default).
    pub probes: Probes,
}

impl EmulatorConfig {
    /// The rehearsal set-up: [`REHEARSAL_APPID`], the rehearsal credentials, the
    /// service's default rate limit, no faults, state in memory, seed 0.
    pub fn rehearsal() -> Self {
        EmulatorConfig {
            appid: REHEARSAL_APPID.to_owned(),
            credentials: vec![rehearsal_credentials()],
            qps: Some(DEFAULT_QPS),
            faults: Faults::default(),
            state_file: None,
            seed: 0,
            contract: Contract::default(),
            probes: Probes::default(),
        }
    }
}

/// Creates the persons of [`Contract::prepared`] that the account does not hold yet,
/// by plain `newperson` and `addface` calls, with generated faces no job sends.
fn prepare_account(state: &mut state::State, contract: &Contract) -> Result<(), String> {
    use crate::model::ContentHash;
    use crate::service::api::Call;
    for p in &contract.prepared {
        if state.person(&p.person).is_some() || p.faces == 0 {
            continue;
        }
        let faces: Vec<rules::Verdict> = (0..p.faces)
            .map(|i| {
                Ok(images::FaceImage {
                    hash: ContentHash::of(
                        format!("prepared face {} of {}", i, p.person).as_bytes(),
                    ),
                    width: 64,
                    height: 64,
                })
            })
            .collect();
        let body = serde_json::json!({"person_id": p.person, "group_ids": [p.group]});
        let params =
            params::Params::from_json(body.to_string().as_bytes()).map_err(|e| e.to_string())?;
        let mut answers = vec![rules::apply(
            state,
            contract,
            Call::NewPerson,
            &params,
            Some(&faces[..1]),
        )];
        for chunk in faces[1..].chunks(crate::limits::MAX_IMAGES_PER_ADDFACE) {
            answers.push(rules::apply(
                state,
                contract,
                Call::AddFace,
                &params,
                Some(chunk),
            ));
        }
        if let Some(refused) = answers.iter().find(|a| a.code != 0) {
            return Err(format!(
                "cannot prepare person {} with {} faces: {}",
                p.person, p.faces, refused.body
            ));
        }
    }
    Ok(())
}

/// The credentials [`EmulatorConfig::rehearsal`] accepts.
pub fn rehearsal_credentials() -> Credentials {
    Credentials::new(REHEARSAL_SECRET_ID, REHEARSAL_SECRET_KEY)
}

/// The TLS settings of an emulator that serves HTTPS: a certificate chain and its
/// private key, both PEM (the chain's first certificate is the server's).
pub fn tls_config(cert_chain_pem: &[u8], key_pem: &[u8]) -> io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
    };
    let chain = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("the certificate is not PEM", &e))?;
    if chain.is_empty() {
        return Err(invalid("the certificate file", &"holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| invalid("the key is not a PEM private key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("TLS versions", &e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid("the certificate and key do not make a TLS identity", &e))?;
    Ok(Arc::new(config))
}

/// A running emulator. Dropping it stops it, as [`Emulator::shutdown`] does.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    https: bool,
    accept: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Loads the state file (if any), binds `bind` (port 0 picks a free port) and
    /// starts serving.
    pub fn start(config: EmulatorConfig, bind: SocketAddr) -> io::Result<Emulator> {
        Emulator::start_with_tls(config, bind, None)
    }

    /// As [`Emulator::start`], serving HTTPS with `tls` ([`tls_config`]) if given.
    pub fn start_with_tls(
        config: EmulatorConfig,
        bind: SocketAddr,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Emulator> {
        config
            .faults
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let mut state = match &config.state_file {
            Some(path) => state::load(path)?,
            None => state::State::default(),
        };
        prepare_account(&mut state, &config.contract)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(bind)?;
        let addr = listener.local_addr()?;
        let has_state_file = config.state_file.is_some();
        let shared = Arc::new(Shared::new(config, state));
        let writer = if has_state_file {
            let for_thread = Arc::clone(&shared);
            Some(
                std::thread::Builder::new()
                    .name("emulator-state-file".into())
                    .spawn(move || server::persist_loop(for_thread))?,
            )
        } else {
            None
        };
        let for_thread = Arc::clone(&shared);
        let https = tls.is_some();
        let accept = std::thread::Builder::new()
            .name("emulator-accept".into())
            .spawn(move || server::accept_loop(for_thread, listener, tls))?;
        Ok(Emulator {
            shared,
            addr,
            https,
            accept: Some(accept),
            writer,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL of the API: `http://127.0.0.1:PORT`, or `https://` when it
    /// serves TLS.
    pub fn endpoint(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The whole state of the account.
    pub fn snapshot(&self) -> StateSnapshot {
        self.shared.snapshot()
    }

    /// What it has seen and answered so far.
    pub fn counters(&self) -> Counters {
        lock(&self.shared.counters).clone()
    }

    /// Replaces the faults; the next call decides with the new ones.
    ///
    /// # Panics
    /// If a fraction is outside `0..=1`.
    pub fn set_faults(&self, faults: Faults) {
        if let Err(e) = faults.validate() {
            panic!("{e}");
        }
        *lock(&self.shared.faults) = faults;
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        lock(&self.shared.faults).clone()
    }

    /// Changes the rate limit; `None` or 0 is unlimited.
    pub fn set_qps(&self, qps: Option<u32>) {
        lock(&self.shared.rate).set_qps(qps);
    }

    /// Answers the next `count` calls with `code` (and `data` `{}`), without
    /// doing any work. Replaces any injection still pending; 0 cancels it.
    pub fn inject_next(&self, code: i64, count: u32) {
        *lock(&self.shared.injected) = (count > 0).then_some((code, count));
    }

    /// Answers the next `count` calls named like `call` with `code` (and `data`
    /// `{}`), without doing any work; other calls are served as usual.
    pub fn inject_next_for(&self, call: crate::service::api::Call, code: i64, count: u32) {
        *lock(&self.shared.injected_for) = (count > 0).then_some((call, code, count));
    }

    /// Stops accepting, lets the connections finish their current call, joins the
    /// threads and writes the state file.
    /// Stops the emulator, writing its state file a last time: `Err` says why the
    /// state file does not hold the final state.
    pub fn shutdown(mut self) -> Result<(), String> {
        self.stop();
        match server::lock(&self.shared.persist_error).take() {
            Some(message) => Err(message),
            None => Ok(()),
        }
    }

    fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let _ = TcpStream::connect_timeout(&wake, std::time::Duration::from_secs(1));
        let _ = accept.join();
        self.shared.wake_writer();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        self.shared.flush();
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}
