//! `faceenroll emulator`: serves the local stand-in of the face person API until
//! interrupted, for rehearsals and for testing against a separate process.

use super::Exit;
use crate::config::{SECRET_ID_ENV, SECRET_KEY_ENV};
use crate::emulator::{
    self, Emulator, EmulatorConfig, Faults, REHEARSAL_APPID, REHEARSAL_SECRET_ID,
};
use crate::limits::DEFAULT_QPS;
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
        }
    }

    /// Whether any fault or seed was asked for.
    pub fn any(&self) -> bool {
        self.faults() != Faults::default() || self.seed != 0
    }
}

#[derive(Debug, clap::Args)]
#[command(after_help = AFTER_HELP)]
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
    /// Calls per second before answering 15 (sliding one-second window); 0 is
    /// unlimited.
    #[arg(long, default_value_t = DEFAULT_QPS)]
    qps: u32,
    /// Keep the state in this JSON file: loaded at start, rewritten atomically after
    /// changes (at most every 100 ms) and at stop. Without it, the state lives in
    /// memory only.
    #[arg(long, value_name = "PATH")]
    state_file: Option<PathBuf>,
    /// Refuse with 21 (invalid parameter) every body the contract does not allow:
    /// a text where it says array, a number where it says string, a field the call
    /// does not take. Use it to check a client against the contract as written.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    faults: FaultArgs,
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
            probes: emulator::Probes {
                strict: self.strict,
                ..emulator::Probes::default()
            },
        })
    }
}

pub fn run(args: EmulatorArgs) -> anyhow::Result<Exit> {
    let bind = args.bind;
    let config = args.config()?;
    let rehearsal = config
        .credentials
        .iter()
        .any(|c| c.secret_id() == REHEARSAL_SECRET_ID);
    let appid = config.appid.clone();
    let qps = config.qps;
    let state_file = config.state_file.clone();
    let emulator = Emulator::start(config, bind)
        .with_context(|| format!("cannot start the emulator on {bind}"))?;
    println!("faceenroll emulator serving on {}", emulator.endpoint());
    println!("  appid {appid}");
    if rehearsal {
        println!("  rehearsal credentials: SecretId {REHEARSAL_SECRET_ID} (key in --help)");
    } else {
        println!("  credentials from --secret-id/--secret-key or the environment");
    }
    match qps {
        Some(q) => println!("  rate limit {q} calls/s"),
        None => println!("  no rate limit"),
    }
    if let Some(path) = &state_file {
        println!("  state file {}", path.display());
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    emulator.shutdown();
    println!("faceenroll emulator stopped");
    Ok(Exit::Ok)
}
