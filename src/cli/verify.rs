//! `faceenroll verify`: audits the service against the job ([`crate::ops::verify`]).

use super::settings::{self, JobArgs, JobSettings, ServiceArgs};
use super::Exit;
use crate::config;
use crate::engine::retry::RetryPolicy;
use crate::engine::StopSignal;
use crate::limits::DEFAULT_QPS;
use crate::ops::paced::PaceOptions;
use crate::ops::verify::{verify, VerifyJob};
use crate::report::Format;
use crate::service::client::Client;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

/// The flags `verify` and `rollback` share: the service, the job, the pace.
#[derive(Debug, clap::Args)]
pub struct AfterArgs {
    #[command(flatten)]
    pub service: ServiceArgs,
    #[command(flatten)]
    pub job: JobArgs,
    /// The state directory records the account (endpoint, AppID, bucket) of its
    /// first call and refuses another; this binds it to the account given now, on
    /// purpose (the same account at a migrated endpoint).
    #[arg(long)]
    pub rebind_account: bool,
}

impl AfterArgs {
    /// The job's state directory and pace, resolved as `enroll` resolves them (flag >
    /// environment > the config file's `[enroll]` table > default).
    pub fn job(&self) -> anyhow::Result<(PathBuf, PaceOptions)> {
        self.job_with(&|name| std::env::var(name).ok())
    }

    fn job_with(&self, env: settings::Env) -> anyhow::Result<(PathBuf, PaceOptions)> {
        let (_, section) = settings::load(self.service.config.as_deref(), env)?;
        let job = JobSettings::resolve(&self.job, env, &section)?;
        let pace = PaceOptions {
            qps: job.qps.unwrap_or(DEFAULT_QPS),
            retry: RetryPolicy::default(),
        };
        Ok((job.state, pace))
    }

    pub fn client(&self) -> anyhow::Result<Client> {
        Ok(Client::new(config::client_config_from_args(
            &self.service,
        )?)?)
    }
}

/// `faceenroll verify`
#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help())]
pub struct VerifyArgs {
    #[command(flatten)]
    pub after: AfterArgs,
    /// Mark what went missing as pending, so the next enroll re-sends exactly that;
    /// queue the deletion of what left the source (persons and faces the source no
    /// longer lists) for the next `enroll --mirror`, which makes it under its guards.
    /// Verify itself never deletes.
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
    let (state_dir, pace) = args.after.job()?;
    let job = VerifyJob {
        state_dir,
        repair: args.repair,
        report: args.report,
        format: args.format,
        pace,
        rebind_account: args.after.rebind_account,
    };
    let stop = Arc::new(StopSignal::default());
    let _signals = super::enroll::install_signal_handlers(Arc::clone(&stop))?;
    let verified = verify(&job, &client, &stop)?;
    let _ = write!(std::io::stdout().lock(), "{verified}");
    Ok(verified.exit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    fn after(argv: &[&str]) -> AfterArgs {
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Verify(args) => args.after,
            other => panic!("parsed {other:?}"),
        }
    }

    #[test]
    fn the_job_and_its_pace_are_read_as_enroll_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("fe.toml");
        std::fs::write(&config, "[enroll]\nstate = \"/file/state\"\nqps = 7\n").unwrap();
        let config = config.to_str().unwrap();
        let no_env = |_: &str| None;
        let (state, pace) = after(&["faceenroll", "verify", "--config", config])
            .job_with(&no_env)
            .unwrap();
        assert_eq!((state, pace.qps), (PathBuf::from("/file/state"), 7));
        let env = |name: &str| (name == "FACEENROLL_QPS").then(|| "9".to_owned());
        let (state, pace) = after(&["faceenroll", "verify", "--config", config, "--state", "s"])
            .job_with(&env)
            .unwrap();
        assert_eq!((state, pace.qps), (PathBuf::from("s"), 9));
        let named = |name: &str| (name == "FACEENROLL_CONFIG").then(|| config.to_owned());
        let (state, pace) = after(&["faceenroll", "verify"]).job_with(&named).unwrap();
        assert_eq!((state, pace.qps), (PathBuf::from("/file/state"), 7));
        let (state, pace) = after(&["faceenroll", "verify"]).job_with(&no_env).unwrap();
        assert_eq!(
            (state, pace.qps),
            (PathBuf::from(crate::store::DEFAULT_STATE_DIR), DEFAULT_QPS)
        );
    }
}
