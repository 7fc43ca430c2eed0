//! `faceenroll plan`: a dry run. Reads the source, checks every photo, and prints
//! what a job would do — persons, photos planned, calls, and every photo that is
//! skipped, duplicate or invalid with its reason — without making a call.
//!
//! [`PlanArgs`] are the planning flags `enroll` shares (`#[command(flatten)]`), declared
//! with every other setting in [`super::settings`]; [`render`] is the text both
//! commands print for a plan.

use super::settings;
pub use super::settings::{PlanArgs, PlanSettings};
use super::Exit;
use crate::faces::FaceOptions;
use crate::normalize::NormalizeOptions;
use crate::ops::faces::{self, FaceSurvey};
use crate::plan::{self, CallCount, PlanOptions, PlanSummary};
use crate::source::SourceSpec;
use crate::store;
use anyhow::Context as _;
use std::fmt::Write as _;
use std::path::PathBuf;

impl PlanSettings {
    /// How photos too large for a request are re-encoded; `enabled` is false with
    /// `--no-resize`.
    pub fn normalize(&self) -> NormalizeOptions {
        NormalizeOptions {
            enabled: !self.no_resize,
            max_bytes: self.max_photo_bytes,
            max_edge: self.max_edge,
            jpeg_quality: self.jpeg_quality,
            max_file_bytes: self.max_file_bytes,
        }
    }

    /// Whether photos are looked at for faces, and what is done with what is found.
    pub fn faces(&self) -> FaceOptions {
        FaceOptions {
            crop: self.crop_faces,
            skip_faceless: self.skip_faceless,
        }
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
            normalize: self.normalize(),
            check_content: !self.no_content_check,
            retry_failed: self.retry_failed,
            recheck_full: self.recheck_full,
            budget: crate::limits::RequestBudget::configured(self.max_request_bytes),
            allow_empty: self.allow_empty,
            new_source: self.new_source,
            sole_source: self.mirror,
            shard: self.shard,
        }
    }
}

#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help())]
pub struct PlanCommand {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Plan against this job's state directory, as a later `enroll --state DIR` would
    /// see it. The plan is made in a copy of the state, removed afterwards: a dry run
    /// never writes to a job's state. Without it the plan starts from an empty state.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    #[arg(
        long,
        value_name = "PATH",
        help = "A TOML config file whose [enroll] table holds planning settings, read as \
                enroll reads it [env: FACEENROLL_CONFIG]"
    )]
    pub config: Option<PathBuf>,
}

pub fn run(args: PlanCommand) -> anyhow::Result<Exit> {
    let env = |name: &str| std::env::var(name).ok();
    let (_, section) = settings::load(args.config.as_deref(), &env)?;
    let settings = PlanSettings::resolve_checked(&args.plan, &env, &section)?;
    let result = (|| {
        // A copy of the job's state, or an empty one: removed when dropped.
        let scratch = store::open_scratch_copy(args.state.as_deref())?;
        let store = scratch.store();
        let mut summary = plan::build(store, &settings.source_spec(), &settings.options())?;
        let faces = if settings.faces().detects() {
            let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
            let survey = faces::survey(store, &settings.normalize(), threads)?;
            // With crops, the photos with a face travel twenty to a call.
            let whole = summary.calls;
            if settings.faces().crop && !settings.no_resize {
                summary.calls = plan::calls_with_crops(store, &settings.options())?;
            }
            Some((survey, whole))
        } else {
            None
        };
        let mirror = match settings.mirror {
            true => Some(crate::ops::mirror::plan(
                store,
                summary.source_health(),
                settings.max_delete,
                crate::ops::mirror::Planned::AheadOfAdds,
            )?),
            false => None,
        };
        anyhow::Ok((summary, faces, mirror))
    })();
    let (summary, faces, mirror) =
        result.with_context(|| format!("cannot plan {}", args.plan.source.display()))?;
    let mut text = render(&summary);
    if let Some((faces, whole)) = faces {
        let calls = (settings.crop_faces && !settings.no_resize).then_some((summary.calls, whole));
        text.push_str(&render_faces(&faces, settings.no_resize, calls));
    }
    if let Some(mirror) = mirror {
        text.push_str(&mirror.render());
    }
    super::print_out(&text)?;
    Ok(Exit::Ok)
}

/// The row of the photos with faces but none cropped to (the largest not sure, or two
/// of like size): shown when there are some.
const UNCLEAR: &str = "unclear faces: sent whole";

/// The faces `plan --crop-faces` found in the photos to send; `calls`, with
/// `--crop-faces`, the calls counted with the crops and with whole copies.
pub fn render_faces(
    f: &FaceSurvey,
    no_resize: bool,
    calls: Option<(CallCount, CallCount)>,
) -> String {
    let mut out = String::new();
    if no_resize {
        let _ = writeln!(
            out,
            "Faces: not looked for: --crop-faces and --skip-faceless need re-encoding (drop --no-resize)"
        );
        return out;
    }
    let looked = f.none + f.one + f.several + f.unclear;
    let _ = writeln!(
        out,
        "Faces found on this machine, in the {looked} photos to send ({} looked at now, {} known from earlier runs):",
        f.detected_now,
        looked - f.detected_now
    );
    let rows = [
        ("no face: sent whole", f.none),
        ("one face: sent as a crop", f.one),
        ("several faces: the largest", f.several),
        (UNCLEAR, f.unclear),
        ("could not be read", f.unreadable),
    ];
    for (label, n) in rows {
        if n > 0 || (label != "could not be read" && label != UNCLEAR) {
            let _ = writeln!(out, "    {label:<27} {n}");
        }
    }
    if let Some((cropped, whole)) = calls {
        let _ = writeln!(
            out,
            "  calls:      {} with the crops, 20 to a call (sending every photo whole: {})",
            cropped.total(),
            whole.total()
        );
    }
    out
}

/// The dry-run text of a plan: what would be done, then every problem listed.
pub fn render(s: &PlanSummary) -> String {
    let mut out = String::new();
    let known = s.persons_with_work - s.new_persons;
    let _ = writeln!(out, "Plan for {} (plan #{})", s.source, s.generation);
    if let Some(from) = &s.moved_from {
        let _ = writeln!(
            out,
            "  source:     the same photos as the job's source {from} (by content): taken \
             as that source moved here; its photos keep their state"
        );
    }
    for gone in &s.gone_sources {
        let _ = writeln!(
            out,
            "  source:     {gone} is no longer a source of the job: with --mirror this \
             source is the job's whole source, and what only {gone} listed leaves"
        );
    }
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
    if s.shared > 0 {
        let _ = writeln!(
            out,
            "  warnings:   {} {} listed for more than one person (enrolled for each as \
             listed; named below)",
            s.shared,
            crate::report::plural(s.shared as u64, "photo", "photos"),
        );
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
    let warnings = s.group_warnings(&crate::limits::GroupLimits::default());
    if !warnings.is_empty() {
        let _ = writeln!(out, "Group limits:");
        for w in warnings {
            let _ = writeln!(out, "  {w}");
        }
    }
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
