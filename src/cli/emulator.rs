//! `faceenroll emulator`: serves the local stand-in of the face person API until
//! interrupted, for rehearsals and for testing against a separate process.

use super::Exit;
use crate::config::{SECRET_ID_ENV, SECRET_KEY_ENV};
use crate::emulator::{
    self, Contract, DuplicateWhenFull, EmptyAnswer, Emulator, EmulatorConfig, FaceGone, Faults,
    FullReading, LastGroup, Prepared, RateReading, Spelling, TooLarge, REHEARSAL_APPID,
    REHEARSAL_SECRET_ID,
};
use crate::limits::{DEFAULT_QPS, MAX_GROUPS_PER_APPID, MAX_PERSONS_PER_GROUP, MAX_REQUEST_BYTES};
use crate::service::sign::Credentials;
use anyhow::{bail, Context};
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const AFTER_HELP: &str = "\
Credentials: the emulator accepts signatures made with --secret-id/--secret-key
(or TENCENTCLOUD_SECRET_ID/TENCENTCLOUD_SECRET_KEY). With neither, it accepts the
public rehearsal credentials, SecretId AKIDfaceenrollREHEARSAL0000000000000 and
SecretKey faceenroll-rehearsal-key-not-secret, for AppID 1250000000.

Introspection (unsigned, outside /face/): GET /_emulator/state, GET /_emulator/counters,
GET|PUT /_emulator/faults, PUT /_emulator/qps {\"qps\": n}, POST /_emulator/inject
{\"code\": n, \"count\": n}.

Stops on Ctrl-C or SIGTERM, after writing the state file.";

/// A secret given on the command line or in the environment; never printed.
#[derive(Clone)]
pub struct Secret(String);

impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

fn fraction(s: &str) -> Result<f64, String> {
    let value: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("{value} is not a fraction between 0 and 1"))
    }
}

/// The faults an emulator can inject, shared by `faceenroll emulator` and
/// `faceenroll enroll --emulator`, so a rehearsal can misbehave like the real service
/// and the network sometimes do. All off by default.
#[derive(Debug, Clone, Default, clap::Args)]
#[command(next_help_heading = "Rehearsal faults (with --emulator)")]
pub struct FaultArgs {
    /// Fault: extra delay before every answer, in milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
    /// Fault: random extra delay of up to this many milliseconds.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub jitter_ms: u64,
    /// Fault: fraction of calls answered 213 (internal error) without work.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, value_name = "FRACTION")]
    pub error_213: f64,
    /// Fault: fraction of calls answered 15 (rate limited) without work.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, value_name = "FRACTION")]
    pub rate_limit_15: f64,
    /// Fault: fraction of connections closed after reading the request, before the
    /// work, without an answer.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, value_name = "FRACTION")]
    pub drop_connection: f64,
    /// Fault: fraction of calls whose work is done but whose answer is lost (the
    /// connection is closed instead).
    #[arg(long, default_value_t = 0.0, value_parser = fraction, value_name = "FRACTION")]
    pub lose_answer: f64,
    /// Fault: fraction of addface images refused with the transient code -1200.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, value_name = "FRACTION")]
    pub transient_image: f64,
    /// Fault: fraction of calls read and never answered (the connection held open,
    /// silent): a service that accepts and hangs.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, value_name = "FRACTION")]
    pub hang: f64,
    /// Seed of the fault decisions, so a run can be replayed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl FaultArgs {
    /// The faults these flags ask for.
    pub fn faults(&self) -> Faults {
        Faults {
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            error_213: self.error_213,
            rate_limit_15: self.rate_limit_15,
            drop_connection: self.drop_connection,
            lose_answer: self.lose_answer,
            transient_image: self.transient_image,
            hang: self.hang,
        }
    }

    /// Whether any fault or seed was asked for.
    pub fn any(&self) -> bool {
        self.faults() != Faults::default() || self.seed != 0
    }
}

/// The readings of the contract's open points an emulator plays (API.md, "Points
/// the contract leaves open"), shared by `faceenroll emulator` and
/// `faceenroll enroll --emulator`, so a rehearsal can meet each reading.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Contract readings (with --emulator)")]
pub struct ContractArgs {
    /// How an addface past a person's 20 faces is refused: per-image (code 0,
    /// -1309 in ret_codes) or whole-call (code -1309, nothing added).
    #[arg(long, default_value = "per-image", value_name = "READING")]
    pub full_reading: FullReading,
    /// Request bodies over this many bytes (the whole body) are refused.
    #[arg(long, default_value_t = MAX_REQUEST_BYTES, value_name = "BYTES")]
    pub body_limit: u64,
    /// How a body over the limit is refused: code-23 or http-413.
    #[arg(long, default_value = "code-23", value_name = "HOW")]
    pub too_large: TooLarge,
    /// How an addface that added nothing answers: ok (code 0) or first-code (the
    /// first image's refusal code, ret_codes filled).
    #[arg(long, default_value = "ok", value_name = "HOW")]
    pub empty_answer: EmptyAnswer,
    /// How an image whose face a full person already holds is refused: duplicate
    /// (-1312, the duplicate checked first) or full (-1309, the face limit first).
    #[arg(long, default_value = "duplicate", value_name = "READING")]
    pub duplicate_when_full: DuplicateWhenFull,
    /// How answers are written: full (every field of the contract's table, typed as
    /// there) or sparse (empty fields left out or null, numbers as strings, face
    /// ids as numbers).
    #[arg(long, default_value = "full", value_name = "HOW")]
    pub spelling: Spelling,
    /// How a delgroupids that would leave a person in no group is answered: allowed
    /// (the person is left in no group) or refused (code 21, nothing removed; the
    /// contract names no code, 21 is the emulator's choice).
    #[arg(long, default_value = "allowed", value_name = "READING")]
    pub last_group: LastGroup,
    /// How a delface of faces the person no longer holds is answered: face-missing
    /// (-1305) or deleted-zero (code 0, deleted 0).
    #[arg(long, default_value = "face-missing", value_name = "READING")]
    pub delface_gone: FaceGone,
    /// Persons a group holds at most (-1310 past it).
    #[arg(long, default_value_t = MAX_PERSONS_PER_GROUP, value_name = "N")]
    pub max_persons_per_group: usize,
    /// Groups the AppID holds at most (-1311 past it).
    #[arg(long, default_value_t = MAX_GROUPS_PER_APPID, value_name = "N")]
    pub max_groups: usize,
    /// How calls are counted against the rate: sliding (at most --qps calls whose
    /// arrivals fall in any window of one second) or fixed (at most --qps in each
    /// calendar second).
    #[arg(long, default_value = "sliding", value_name = "READING")]
    pub rate_window: RateReading,
    /// Stamp each call for the rate up to this many milliseconds after it arrived (a
    /// random shift per call, as a threaded service's late reads would; at most 100).
    #[arg(long, default_value_t = 0, value_name = "MS",
          value_parser = clap::value_parser!(u64).range(0..=emulator::contract::MAX_ARRIVAL_JITTER_MS))]
    pub arrival_jitter_ms: u64,
    /// Prepare the account with a person holding FACES generated faces, in GROUP,
    /// created by plain calls before serving (repeatable).
    #[arg(long, value_name = "PERSON:GROUP:FACES")]
    pub prepare: Vec<Prepared>,
}

impl ContractArgs {
    /// The contract these flags describe.
    pub fn contract(&self) -> Contract {
        Contract {
            full: self.full_reading,
            max_request_bytes: self.body_limit,
            too_large: self.too_large,
            empty_answer: self.empty_answer,
            duplicate_when_full: self.duplicate_when_full,
            spelling: self.spelling,
            last_group: self.last_group,
            face_gone: self.delface_gone,
            max_persons_per_group: self.max_persons_per_group,
            max_groups: self.max_groups,
            prepared: self.prepare.clone(),
            rate_window: self.rate_window,
            arrival_jitter_ms: self.arrival_jitter_ms,
        }
    }

    /// Whether any reading differs from the default.
    pub fn any(&self) -> bool {
        self.contract() != Contract::default()
    }
}

#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help_after(AFTER_HELP))]
pub struct EmulatorArgs {
    /// Address to listen on. Keep it on loopback.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// The AppID served: signatures and bodies must name it [default: 1250000000].
    #[arg(long)]
    appid: Option<String>,
    /// SecretId whose signatures are accepted (needs --secret-key).
    #[arg(long, env = SECRET_ID_ENV, hide_env_values = true)]
    secret_id: Option<Secret>,
    /// SecretKey of --secret-id.
    #[arg(long, env = SECRET_KEY_ENV, hide_env_values = true)]
    secret_key: Option<Secret>,
    /// Calls per second before answering 15 (counted as --rate-window says); 0 is
    /// unlimited.
    #[arg(long, default_value_t = DEFAULT_QPS)]
    qps: u32,
    /// Keep the state in this JSON file: loaded at start, rewritten atomically after
    /// changes (at most every 100 ms) and at stop. Without it, the state lives in
    /// memory only.
    #[arg(long, value_name = "PATH")]
    state_file: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Refuse with 21 (invalid parameter) every body the contract does not allow:
    /// a text where it says array, a number where it says string, a field the call
    /// does not take. Use it to check a client against the contract as written.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    faults: FaultArgs,
    #[command(flatten)]
    contract: ContractArgs,
}

impl EmulatorArgs {
    /// The configuration these flags describe.
    fn config(self) -> anyhow::Result<EmulatorConfig> {
        let credentials = match (self.secret_id, self.secret_key) {
            (Some(id), Some(key)) => vec![Credentials::new(id.0, key.0)],
            (None, None) => vec![emulator::rehearsal_credentials()],
            (Some(_), None) => {
                bail!("--secret-id ({SECRET_ID_ENV}) needs --secret-key ({SECRET_KEY_ENV})")
            }
            (None, Some(_)) => {
                bail!("--secret-key ({SECRET_KEY_ENV}) needs --secret-id ({SECRET_ID_ENV})")
            }
        };
        Ok(EmulatorConfig {
            appid: self.appid.unwrap_or_else(|| REHEARSAL_APPID.to_owned()),
            credentials,
            qps: Some(self.qps).filter(|&q| q > 0),
            faults: self.faults.faults(),
            state_file: self.state_file,
            seed: self.faults.seed,
            contract: self.contract.contract(),
            probes: emulator::Probes {
                strict: self.strict,
                ..emulator::Probes::default()
            },
        })
    }
}

/// The TLS settings of `--tls-cert` and `--tls-key`, if given.
fn tls(args: &EmulatorArgs) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(None);
    };
    let read = |path: &PathBuf| {
        std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let config = emulator::tls_config(&read(cert)?, &read(key)?).with_context(|| {
        format!(
            "cannot serve TLS with {} and {}",
            cert.display(),
            key.display()
        )
    })?;
    Ok(Some(config))
}

pub fn run(args: EmulatorArgs) -> anyhow::Result<Exit> {
    let bind = args.bind;
    let tls = tls(&args)?;
    let config = args.config()?;
    let rehearsal = config
        .credentials
        .iter()
        .any(|c| c.secret_id() == REHEARSAL_SECRET_ID);
    let appid = config.appid.clone();
    let qps = config.qps;
    let state_file = config.state_file.clone();
    let contract = config.contract.clone();
    let emulator = Emulator::start_with_tls(config, bind, tls)
        .with_context(|| format!("cannot start the emulator on {bind}"))?;
    // What is printed is for an operator; an emulator whose stdout has gone serves on.
    let mut text = format!("faceenroll emulator serving on {}\n", emulator.endpoint());
    text.push_str(&format!("  appid {appid}\n"));
    if rehearsal {
        text.push_str(&format!(
            "  rehearsal credentials: SecretId {REHEARSAL_SECRET_ID} (key in --help)\n"
        ));
    } else {
        text.push_str("  credentials from --secret-id/--secret-key or the environment\n");
    }
    match qps {
        Some(q) => text.push_str(&format!("  rate limit {q} calls/s\n")),
        None => text.push_str("  no rate limit\n"),
    }
    if let Some(path) = &state_file {
        text.push_str(&format!("  state file {}\n", path.display()));
    }
    text.push_str(&format!(
        "  --full-reading {}, --body-limit {} (--too-large {}), --empty-answer {}\n",
        contract.full,
        crate::report::bytes(contract.max_request_bytes),
        contract.too_large,
        contract.empty_answer
    ));
    let _ = super::print_out(&text);
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let persisted = emulator.shutdown();
    let _ = super::print_out("faceenroll emulator stopped\n");
    match persisted {
        Ok(()) => Ok(Exit::Ok),
        Err(message) => {
            // The account the operator meant to keep is not on disk: say so, and fail.
            eprintln!("error: {message}; the emulated account was not kept");
            Ok(Exit::Fatal)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn contract(argv: &[&str]) -> Contract {
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Emulator(args) => args.config().unwrap().contract,
            _ => panic!("parsed another command"),
        }
    }

    #[test]
    fn the_duplicate_when_full_reading_reaches_the_emulator() {
        let default = contract(&["faceenroll", "emulator"]);
        assert_eq!(default.duplicate_when_full, DuplicateWhenFull::Duplicate);
        let full = contract(&["faceenroll", "emulator", "--duplicate-when-full", "full"]);
        assert_eq!(full.duplicate_when_full, DuplicateWhenFull::Full);
        assert!(crate::cli::Cli::try_parse_from([
            "faceenroll",
            "emulator",
            "--duplicate-when-full",
            "maybe"
        ])
        .is_err());
    }

    #[test]
    fn the_last_group_and_delface_readings_reach_the_emulator() {
        let default = contract(&["faceenroll", "emulator"]);
        assert_eq!(
            (default.last_group, default.face_gone),
            (LastGroup::Allowed, FaceGone::FaceMissing)
        );
        let other = contract(&[
            "faceenroll",
            "emulator",
            "--last-group",
            "refused",
            "--delface-gone",
            "deleted-zero",
        ]);
        assert_eq!(
            (other.last_group, other.face_gone),
            (LastGroup::Refused, FaceGone::DeletedZero)
        );
    }

    #[test]
    fn the_rate_window_and_arrival_jitter_reach_the_emulator() {
        let default = contract(&["faceenroll", "emulator"]);
        assert_eq!(
            (default.rate_window, default.arrival_jitter_ms),
            (RateReading::Sliding, 0)
        );
        let other = contract(&[
            "faceenroll",
            "emulator",
            "--rate-window",
            "fixed",
            "--arrival-jitter-ms",
            "15",
        ]);
        assert_eq!(
            (other.rate_window, other.arrival_jitter_ms),
            (RateReading::Fixed, 15)
        );
        for bad in [["--rate-window", "bucket"], ["--arrival-jitter-ms", "101"]] {
            let argv = ["faceenroll", "emulator", bad[0], bad[1]];
            assert!(crate::cli::Cli::try_parse_from(argv).is_err(), "{bad:?}");
        }
    }
}
