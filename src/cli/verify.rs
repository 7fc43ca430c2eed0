//! `faceenroll verify`: audits the service against the job ([`crate::ops::verify`]).

use super::settings::ServiceArgs;
use super::Exit;
use crate::config;
use crate::engine::retry::RetryPolicy;
use crate::limits::DEFAULT_QPS;
use crate::ops::paced::PaceOptions;
use crate::ops::verify::{verify, VerifyJob};
use crate::report::Format;
use crate::service::client::Client;
use crate::store::DEFAULT_STATE_DIR;
use std::io::Write as _;
use std::path::PathBuf;

const VERIFY_EXIT_HELP: &str = "\
Exit codes:
  0  the service holds every person, group, name, tag and face the job recorded
  1  something differs (see the drift report)
  2  usage or configuration error, or the state directory is in use
  3  stopped by a service error before every person was checked (run it again to
     go on where it stopped)";

/// The flags `verify` and `rollback` share: the service, the job, the pace.
#[derive(Debug, clap::Args)]
pub struct AfterArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    /// The job's state directory [default: ./faceenroll-state].
    #[arg(long, value_name = "DIR", env = "FACEENROLL_STATE")]
    pub state: Option<PathBuf>,
    /// Calls per second in all [default: 50]; 0 is unlimited.
    #[arg(long, value_name = "N", env = "FACEENROLL_QPS")]
    pub qps: Option<u32>,
}

impl AfterArgs {
    pub fn state_dir(&self) -> PathBuf {
        self.state
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
    }

    pub fn pace(&self) -> PaceOptions {
        PaceOptions {
            qps: self.qps.unwrap_or(DEFAULT_QPS),
            retry: RetryPolicy::default(),
        }
    }

    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(config::client_config_from_args(
            &self.service,
        )?)?)
    }
}

/// `faceenroll verify`
#[derive(Debug, clap::Args)]
#[command(after_help = VERIFY_EXIT_HELP)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub after: AfterArgs,
    /// Mark what went missing as pending, so the next enroll re-sends exactly that.
    #[arg(long)]
    pub repair: bool,
    /// Write the drift report here [default: drift.csv or drift.jsonl in the state
    /// directory].
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// The drift report's format: one row per difference.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    pub format: Format,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<Exit> {
    let client = args.after.client()?;
    let job = VerifyJob {
        state_dir: args.after.state_dir(),
        repair: args.repair,
        report: args.report,
        format: args.format,
        pace: args.after.pace(),
    };
    let verified = verify(&job, &client)?;
    let _ = write!(std::io::stdout().lock(), "{verified}");
    Ok(if verified.stopped.is_some() {
        Exit::Fatal
    } else if verified.differences() > 0 {
        Exit::Failures
    } else {
        Exit::Ok
    })
}
