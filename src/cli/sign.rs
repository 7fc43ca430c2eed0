//! `faceenroll sign`: prints an Authorization value so an operator can reproduce a
//! call by hand. The secret comes from the environment, never from a flag.

use super::Exit;
// Re-exported for the commands that name them through `sign`; defined in `config`.
pub use crate::config::{SECRET_ID_ENV, SECRET_KEY_ENV};
use crate::service::sign::{sign, SignatureFields};
use anyhow::{bail, Context};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help_after(
    "The SecretId and SecretKey are read from TENCENTCLOUD_SECRET_ID and \
TENCENTCLOUD_SECRET_KEY."
))]
pub struct SignArgs {
    /// The AppID the signature is for.
    #[arg(long)]
    appid: String,
    /// The bucket (legacy; usually empty).
    #[arg(long, default_value = "")]
    bucket: String,
    /// Signing time, unix seconds [default: now].
    #[arg(long)]
    now: Option<u64>,
    /// Expiry time, unix seconds [default: one hour after --now].
    #[arg(long)]
    expires: Option<u64>,
    /// The random number, at most 10 digits [default: random].
    #[arg(long)]
    rand: Option<u64>,
}

pub fn run(args: SignArgs) -> anyhow::Result<Exit> {
    let secret_id =
        std::env::var(SECRET_ID_ENV).with_context(|| format!("{SECRET_ID_ENV} is not set"))?;
    let secret_key =
        std::env::var(SECRET_KEY_ENV).with_context(|| format!("{SECRET_KEY_ENV} is not set"))?;
    let now = args.now.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let expires = args.expires.unwrap_or(now + 3600);
    if expires <= now {
        bail!("--expires ({expires}) must be later than --now ({now})");
    }
    if expires - now > crate::limits::MAX_SIGNATURE_VALIDITY_SECS {
        bail!("a signature may be valid for at most three months");
    }
    let rand = args
        .rand
        .unwrap_or_else(|| fastrand::u64(0..10_000_000_000));
    if rand >= 10_000_000_000 {
        bail!("--rand must have at most 10 digits");
    }
    let fields = SignatureFields {
        appid: args.appid,
        bucket: args.bucket,
        secret_id,
        expires,
        now,
        rand,
        fileid: String::new(),
    };
    println!("{}", sign(&fields, &secret_key));
    Ok(Exit::Ok)
}
