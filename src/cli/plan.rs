//! `faceenroll plan`: a dry run. Reads the source, checks every photo, and prints
//! what a job would do — persons, photos planned, calls, and every photo that is
//! skipped, duplicate or invalid with its reason — without making a call.
//!
//! [`PlanArgs`] are the planning flags `enroll` shares (`#[command(flatten)]`), and
//! [`render`] the text both commands print for a plan.

use super::settings::{self, Layers};
use super::Exit;
use crate::limits::MAX_REQUEST_BYTES;
use crate::normalize::NormalizeOptions;
use crate::plan::{self, PlanOptions, PlanSummary};
use crate::shard::Shard;
use crate::source::{Layout, SourceSpec};
use crate::store::Store;
use anyhow::Context as _;
use std::fmt::Write as _;
use std::path::PathBuf;

/// What to plan and how: the flags shared by `plan` and `enroll`.
///
/// Values left unset here are taken from the environment or the config file
/// ([`PlanSettings`] is the resolved form), by `plan` and `enroll` alike.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// The photos: a directory tree (ROOT/PERSON_ID/PHOTO) or a CSV manifest
    /// (a file ending in .csv, with columns person_id, image, group_ids and
    /// optionally person_name, tag).
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,
    /// Put every person of a directory tree in this group (repeatable; a tree needs
    /// at least one unless --layout group/person) [env: FACEENROLL_GROUPS, comma
    /// separated].
    #[arg(long = "group", value_name = "GROUP_ID")]
    pub groups: Vec<String>,
    /// How a directory tree is laid out: person (ROOT/PERSON_ID/PHOTO) or
    /// group/person (ROOT/GROUP_ID/PERSON_ID/PHOTO) [default: person].
    #[arg(long, value_enum, env = "FACEENROLL_LAYOUT", hide_env_values = true)]
    pub layout: Option<Layout>,
    /// Follow symbolic links in a directory tree (loops are detected and reported)
    /// [env: FACEENROLL_FOLLOW_SYMLINKS=true].
    #[arg(long)]
    pub follow_symlinks: bool,
    /// Do not read the photo files: record paths only (no existence, image or
    /// duplicate check). For very large archives known to be sound [env:
    /// FACEENROLL_NO_CONTENT_CHECK=true].
    #[arg(long)]
    pub no_content_check: bool,
    /// Do not re-encode photos too large for one request: fail them instead [env:
    /// FACEENROLL_NO_RESIZE=true].
    #[arg(long)]
    pub no_resize: bool,
    /// The request body limit to cut calls to, in bytes [default: 1500000].
    #[arg(
        long,
        value_name = "BYTES",
        env = "FACEENROLL_MAX_REQUEST_BYTES",
        hide_env_values = true
    )]
    pub max_request_bytes: Option<u64>,
    /// Plan again photos the service refused for good in an earlier run [env:
    /// FACEENROLL_RETRY_FAILED=true].
    #[arg(long)]
    pub retry_failed: bool,
    /// A directory tree without a photo is a job with nothing to do, not an error
    /// (without it, an empty tree, e.g. an unmounted share, stops the job) [env:
    /// FACEENROLL_ALLOW_EMPTY=true].
    #[arg(long)]
    pub allow_empty: bool,
    /// Let a source that shares no photo with the job's earlier sources join the job
    /// (without it, such a source is refused: probably a wrong --state).
    #[arg(long)]
    pub new_source: bool,
    /// Plan again photos an earlier run skipped because the service said their
    /// person was full (faces may have been deleted since); the person's face count
    /// is read from the service before they are sent.
    #[arg(long)]
    pub recheck_full: bool,
    /// Take only shard I of N of the persons (0 <= I < N), to split one job over N
    /// machines or processes, each with its own --state: a person's shard is a
    /// stable hash of its id, so all its calls are made by one shard, run after run.
    /// The account's rate is shared: each shard paces at --qps / N unless --qps is
    /// given.
    #[arg(
        long,
        value_name = "I/N",
        env = "FACEENROLL_SHARD",
        hide_env_values = true
    )]
    pub shard: Option<Shard>,
    /// Largest photo sent as is, in bytes; larger ones are re-encoded [default:
    /// 300000, so that four photos fit one request at the documented 1.5 MB].
    #[arg(long, value_name = "BYTES", env = "FACEENROLL_MAX_PHOTO_BYTES", hide_env_values = true,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub max_photo_bytes: Option<u64>,
    /// Longest edge in pixels of a photo sent; larger ones are scaled down
    /// [default: 1264, what the default --max-photo-bytes holds as a JPEG].
    #[arg(long, value_name = "PX", env = "FACEENROLL_MAX_EDGE", hide_env_values = true,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_edge: Option<u32>,
    /// JPEG quality of re-encoded photos, 1-100 [default: 85].
    #[arg(long, value_name = "Q", env = "FACEENROLL_JPEG_QUALITY", hide_env_values = true,
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub jpeg_quality: Option<u8>,
}

/// The planning settings once flags, environment, file and defaults are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSettings {
    pub source: PathBuf,
    pub groups: Vec<String>,
    pub layout: Layout,
    pub follow_symlinks: bool,
    pub content_check: bool,
    /// How photos too large for a request are re-encoded; `enabled` is false with
    /// `--no-resize`.
    pub normalize: NormalizeOptions,
    pub max_request_bytes: u64,
    pub retry_failed: bool,
    pub allow_empty: bool,
    pub new_source: bool,
    pub recheck_full: bool,
    pub shard: Shard,
}

impl PlanSettings {
    /// Resolves the planning settings: flag > environment > the file's `[enroll]`
    /// table > default ([`super::settings`]). `plan` and `enroll` both call this, so
    /// `plan` prints the plan `enroll --dry-run` would.
    pub fn resolve(args: &PlanArgs, layers: &Layers) -> anyhow::Result<PlanSettings> {
        let file = layers.file;
        let layout = match (args.layout, &file.layout) {
            (Some(layout), _) => layout,
            (None, Some(name)) => {
                <Layout as clap::ValueEnum>::from_str(name, false).map_err(|_| {
                    anyhow::anyhow!(
                        "[enroll] layout = {name:?}: expected \"person\" or \"group/person\""
                    )
                })?
            }
            (None, None) => Layout::default(),
        };
        let defaults = NormalizeOptions::default();
        let normalize = NormalizeOptions {
            enabled: !layers.switch(args.no_resize, "FACEENROLL_NO_RESIZE", file.no_resize)?,
            max_bytes: layers
                .value(
                    args.max_photo_bytes,
                    file.max_photo_bytes,
                    defaults.max_bytes,
                )
                .max(1),
            max_edge: layers.value(args.max_edge, file.max_edge, defaults.max_edge),
            jpeg_quality: layers.value(args.jpeg_quality, file.jpeg_quality, defaults.jpeg_quality),
        };
        anyhow::ensure!(
            (1..=100).contains(&normalize.jpeg_quality),
            "[enroll] jpeg_quality = {}: must be between 1 and 100 (--jpeg-quality)",
            normalize.jpeg_quality
        );
        Ok(PlanSettings {
            source: args.source.clone(),
            groups: layers.list(&args.groups, "FACEENROLL_GROUPS", file.groups.as_ref()),
            layout,
            follow_symlinks: layers.switch(
                args.follow_symlinks,
                "FACEENROLL_FOLLOW_SYMLINKS",
                file.follow_symlinks,
            )?,
            content_check: !layers.switch(
                args.no_content_check,
                "FACEENROLL_NO_CONTENT_CHECK",
                file.no_content_check,
            )?,
            normalize,
            max_request_bytes: layers.value(
                args.max_request_bytes,
                file.max_request_bytes,
                MAX_REQUEST_BYTES,
            ),
            retry_failed: layers.switch(
                args.retry_failed,
                "FACEENROLL_RETRY_FAILED",
                file.retry_failed,
            )?,
            allow_empty: layers.switch(
                args.allow_empty,
                "FACEENROLL_ALLOW_EMPTY",
                file.allow_empty,
            )?,
            // Meant for one run, never a standing setting.
            new_source: args.new_source,
            // A one-off request of the operator, never a standing setting.
            recheck_full: args.recheck_full,
            shard: match (args.shard, &file.shard) {
                (Some(shard), _) => shard,
                (None, Some(given)) => given
                    .parse()
                    .map_err(|e| anyhow::anyhow!("[enroll] shard = {given:?}: {e}"))?,
                (None, None) => Shard::WHOLE,
            },
        })
    }

    /// The source the settings name.
    pub fn source_spec(&self) -> SourceSpec {
        SourceSpec::from_path(
            &self.source,
            self.groups.clone(),
            self.layout,
            self.follow_symlinks,
        )
    }

    /// The planning options the settings give.
    pub fn options(&self) -> PlanOptions {
        PlanOptions {
            normalize: self.normalize,
            check_content: self.content_check,
            retry_failed: self.retry_failed,
            recheck_full: self.recheck_full,
            budget: crate::limits::RequestBudget::configured(self.max_request_bytes),
            allow_empty: self.allow_empty,
            new_source: self.new_source,
            shard: self.shard,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct PlanCommand {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Plan into this job's state directory (as a later `enroll --state DIR` would
    /// see it). Without it the plan is made in a temporary directory, removed
    /// afterwards, so a dry run never touches a job's state.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    #[arg(
        long,
        value_name = "PATH",
        env = "FACEENROLL_CONFIG",
        hide_env_values = true,
        help = "A TOML config file whose [enroll] table holds planning settings, read as \
                enroll reads it"
    )]
    pub config: Option<PathBuf>,
}

pub fn run(args: PlanCommand) -> anyhow::Result<Exit> {
    let (_, section) = settings::load(args.config.as_deref())?;
    let env = |name: &str| std::env::var(name).ok();
    let layers = Layers {
        env: &env,
        file: &section,
    };
    let settings = PlanSettings::resolve(&args.plan, &layers)?;
    let (dir, temporary) = match &args.state {
        Some(dir) => (dir.clone(), false),
        None => (temp_state_dir(), true),
    };
    let result = (|| {
        let store = Store::open(&dir)?;
        let summary = plan::build(&store, &settings.source_spec(), &settings.options())?;
        anyhow::Ok(summary)
    })();
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let summary = result.with_context(|| format!("cannot plan {}", args.plan.source.display()))?;
    print!("{}", render(&summary));
    Ok(Exit::Ok)
}

fn temp_state_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("faceenroll-plan-{}-{nanos}", std::process::id()))
}

/// The dry-run text of a plan: what would be done, then every problem listed.
pub fn render(s: &PlanSummary) -> String {
    let mut out = String::new();
    let known = s.persons_with_work - s.new_persons;
    let _ = writeln!(out, "Plan for {} (plan #{})", s.source, s.generation);
    if let Some(o) = s.other_shards {
        let _ = writeln!(
            out,
            "  shard:      {} (the other shards take {} {} with {} {})",
            o.shard,
            o.persons,
            crate::report::plural(o.persons as u64, "person", "persons"),
            o.photos,
            crate::report::plural(o.photos as u64, "photo", "photos"),
        );
    }
    let _ = writeln!(
        out,
        "  persons:    {} ({} to create, {} to add photos to, {} with nothing to do)",
        s.persons,
        s.new_persons,
        known,
        s.persons - s.persons_with_work
    );
    if s.persons_to_update > 0 {
        let _ = writeln!(
            out,
            "              {} known on the service whose groups, name or tag changed: brought in line",
            s.persons_to_update
        );
    }
    let _ = writeln!(out, "  photos:     {} in the source", s.photos);
    let rows: [(&str, usize); 9] = [
        ("to send", s.pending),
        ("  of which re-encoded to fit", s.to_normalize),
        ("in doubt, to send again", s.in_doubt),
        ("already enrolled", s.enrolled),
        ("duplicate", s.duplicate),
        ("skipped", s.skipped),
        ("invalid", s.invalid),
        ("failed before, not retried", s.failed_before),
        ("listed twice", s.relisted),
    ];
    for (label, n) in rows {
        if n > 0 || label == "to send" {
            let _ = writeln!(out, "    {label:<27} {n}");
        }
    }
    if !s.not_taken.is_empty() {
        let total: usize = s.not_taken.values().sum();
        let _ = writeln!(
            out,
            "  not taken:  {total} {} ({})",
            crate::report::plural(total as u64, "entry", "entries"),
            plan::not_taken_words(&s.not_taken)
        );
    }
    let _ = writeln!(
        out,
        "  calls:      {} ({} newperson, {} addface)",
        s.calls.total(),
        s.calls.newperson,
        s.calls.addface
    );
    if s.problems_total > 0 {
        let _ = writeln!(out, "Problems ({}):", s.problems_total);
        for p in &s.problems {
            let _ = writeln!(out, "  {:<9} {}", p.status, p.message);
        }
        let unlisted = s.problems_total - s.problems.len();
        if unlisted > 0 {
            let _ = writeln!(
                out,
                "  ... and {unlisted} more, recorded in the job's progress store"
            );
        }
    }
    out
}
