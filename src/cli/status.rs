//! `faceenroll status` and `faceenroll report`: what a job has done, read from its
//! state directory without touching the service.

use super::progress::ProgressFile;
use super::Exit;
use crate::report::{self, Format, Only, StoreCounts};
use crate::shard::Shard;
use crate::store::{self, DEFAULT_STATE_DIR};
use anyhow::Context as _;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help())]
pub struct StatusArgs {
    /// The job's state directory. Repeat it, or give a pattern with `*` in its last
    /// part (quoted, e.g. 'state/shard-*'), for one view of the shards of a job
    /// (`enroll --shard I/N`): totals and each shard's progress. The states must be
    /// shards of one job (one N, no shard twice); shards not given are named, and a
    /// directory named twice is counted once.
    #[arg(long, default_value = DEFAULT_STATE_DIR, env = "FACEENROLL_STATE", hide_env_values = true)]
    state: Vec<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Status {
    state: PathBuf,
    /// The state's shard (`I/N`) when the job is split.
    #[serde(skip_serializing_if = "Option::is_none")]
    shard: Option<String>,
    #[serde(skip)]
    recorded_shard: Option<Shard>,
    /// The sources planned into the job (none known while it runs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sources: Vec<String>,
    /// Sources that left the job: a `--mirror` run of another source took them out.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gone_sources: Vec<String>,
    running: Option<u32>,
    source: Option<String>,
    last_outcome: Option<String>,
    /// When a rollback undid the job, or that one started and did not finish.
    #[serde(skip_serializing_if = "Option::is_none")]
    rolled_back: Option<String>,
    counts: Option<StoreCounts>,
    /// What mirror runs deleted, left and held, when the job ever ran with `--mirror`
    /// or `verify --repair` queued a deletion.
    #[serde(skip_serializing_if = "Option::is_none")]
    mirror: Option<MirrorStatus>,
    progress: Option<ProgressFile>,
}

/// The deletions of a job's mirror runs, by kind, from the store's records.
#[derive(Debug, Serialize)]
struct MirrorStatus {
    /// Persons deleted by mirror runs (and not created again since).
    persons_deleted: u64,
    /// Faces deleted: each of a photo that left the source or was replaced in
    /// place, or of a person deleted.
    faces_deleted: u64,
    /// Groups taken from persons the source still lists.
    groups_deleted: u64,
    /// Deletions recorded before their call and not after (a run was stopped):
    /// the next `--mirror` run settles them.
    under_way: u64,
    /// Deletions `verify --repair` queued for the next `enroll --mirror`.
    queued: u64,
    /// The last mirror run: when, what it left and why, or the guard that held it.
    last_run: Option<LastMirrorRun>,
}

#[derive(Debug, Serialize)]
struct LastMirrorRun {
    at: String,
    persons_deleted: u64,
    faces_deleted: u64,
    groups_deleted: u64,
    left: Vec<LeftPerson>,
    held: Option<String>,
}

#[derive(Debug, Serialize)]
struct LeftPerson {
    person_id: String,
    reason: String,
}

impl MirrorStatus {
    fn read(store: &store::Store) -> anyhow::Result<Option<MirrorStatus>> {
        let marks = store.mirror_marks()?;
        let queued = store.queued_mirror_deletions()?.len() as u64;
        let last_run = store.last_mirror_run()?.map(|run| LastMirrorRun {
            at: crate::report::utc_time(run.at),
            persons_deleted: run.persons_deleted,
            faces_deleted: run.faces_deleted,
            groups_deleted: run.groups_deleted,
            left: run
                .left
                .into_iter()
                .map(|(person_id, reason)| LeftPerson { person_id, reason })
                .collect(),
            held: run.held,
        });
        let nothing = marks == store::MirrorMarks::default() && queued == 0;
        Ok((!nothing || last_run.is_some()).then_some(MirrorStatus {
            persons_deleted: marks.persons_deleted,
            faces_deleted: marks.faces_deleted,
            groups_deleted: marks.groups_deleted,
            under_way: marks.under_way,
            queued,
            last_run,
        }))
    }

    fn print(&self) {
        println!(
            "mirror:  {} deleted by mirror runs",
            deleted(
                self.persons_deleted,
                self.faces_deleted,
                self.groups_deleted
            )
        );
        if self.under_way > 0 {
            println!(
                "  {} {} under way when a run stopped: the next run with --mirror settles {}",
                self.under_way,
                report::plural(self.under_way, "deletion", "deletions"),
                if self.under_way == 1 { "it" } else { "them" }
            );
        }
        if self.queued > 0 {
            println!(
                "  {} {} queued by verify --repair for the next run with --mirror",
                self.queued,
                report::plural(self.queued, "deletion", "deletions")
            );
        }
        if let Some(run) = &self.last_run {
            match &run.held {
                Some(why) => println!(
                    "  last mirror run, {}: held, nothing deleted: {why}",
                    run.at
                ),
                None => println!(
                    "  last mirror run, {}: {} deleted, {} left",
                    run.at,
                    deleted(run.persons_deleted, run.faces_deleted, run.groups_deleted),
                    run.left.len()
                ),
            }
            for left in &run.left {
                println!("    {}: {}", left.person_id, left.reason);
            }
        }
    }
}

/// "1 person, 3 faces and 0 groups": a mirror's deletions by kind.
fn deleted(persons: u64, faces: u64, groups: u64) -> String {
    format!(
        "{persons} {}, {faces} {} and {groups} {}",
        report::plural(persons, "person", "persons"),
        report::plural(faces, "face", "faces"),
        report::plural(groups, "group", "groups"),
    )
}

/// Refuses a directory that holds no job, rather than creating one there.
fn ensure_job(state: &std::path::Path) -> anyhow::Result<()> {
    anyhow::ensure!(
        crate::state_dir::StateDir::new(state).db().exists(),
        "{} holds no faceenroll job (no progress database); pass the --state DIR of the job",
        state.display()
    );
    Ok(())
}

/// Opens a job's store to read it. A state directory this process cannot write
/// (another account's job, a read-only mount) is read from a copy of its database,
/// with a note on stderr.
fn open_to_read(state: &Path) -> Result<store::Reading, store::StoreError> {
    let reading = store::open_for_reading(state)?;
    if reading.is_copy() {
        eprintln!(
            "note: {} cannot be written here; reading a copy of its progress database",
            state.display()
        );
    }
    Ok(reading)
}

/// What one state directory says of its job.
fn status_of(state: &Path) -> anyhow::Result<Status> {
    ensure_job(state)?;
    Ok(match store::running_job(state) {
        Some(pid) => {
            let progress = ProgressFile::read(state);
            let recorded_shard = progress
                .as_ref()
                .and_then(|p| p.shard.as_deref())
                .and_then(|s| s.parse().ok());
            Status {
                state: state.to_owned(),
                shard: shard_label(recorded_shard),
                recorded_shard,
                sources: Vec::new(),
                gone_sources: Vec::new(),
                running: Some(pid),
                source: None,
                last_outcome: None,
                rolled_back: None,
                counts: None,
                mirror: None,
                progress,
            }
        }
        None => {
            let reading = open_to_read(state)?;
            let store = reading.store();
            let meta = store.meta()?;
            let recorded_shard = store.shard()?;
            Status {
                state: state.to_owned(),
                shard: shard_label(recorded_shard),
                recorded_shard,
                sources: meta.sources.keys().cloned().collect(),
                gone_sources: store.gone_sources()?,
                running: None,
                source: meta.source,
                last_outcome: meta.last_outcome,
                rolled_back: match store.rollback_status()? {
                    store::RollbackStatus::None => None,
                    store::RollbackStatus::Started => {
                        Some("started, not finished (run rollback again)".to_owned())
                    }
                    store::RollbackStatus::Finished { at } => Some(format!(
                        "at {}: the service no longer holds what it enrolled",
                        crate::report::utc_time(at)
                    )),
                },
                counts: Some(StoreCounts::read(store)?),
                mirror: MirrorStatus::read(store)?,
                progress: None,
            }
        }
    })
}

/// `I/N` for a shard of a split job.
fn shard_label(shard: Option<Shard>) -> Option<String> {
    shard.filter(|s| s.is_split()).map(|s| s.to_string())
}

/// Checks that the states are shards of one job (see [`store::check_shard_set`]) and
/// answers the shards no state was given for.
fn check_shards(
    states: &[PathBuf],
    shards: impl Iterator<Item = Option<Shard>>,
) -> anyhow::Result<Vec<Shard>> {
    let named: Vec<(String, Option<Shard>)> = states
        .iter()
        .map(|s| s.display().to_string())
        .zip(shards)
        .collect();
    let set = store::check_shard_set(&named).map_err(|e| {
        anyhow::anyhow!("{e}; give the state directories of one job's shards (enroll --shard I/N)")
    })?;
    Ok(set.missing)
}

/// A note when the states, given as one job's shards, were planned from different
/// sources (each shard reads the whole source): which state read which. States whose
/// sources are not known (running) are left out.
fn sources_note(states: &[(String, Vec<String>)]) -> Option<String> {
    let known: Vec<&(String, Vec<String>)> = states.iter().filter(|(_, s)| !s.is_empty()).collect();
    let first = known.first()?;
    if known.iter().all(|(_, s)| *s == first.1) {
        return None;
    }
    let each: Vec<String> = known
        .iter()
        .map(|(state, sources)| format!("{state}: {}", sources.join(", ")))
        .collect();
    Some(format!(
        "note: these shards were planned from different sources (each shard of a job \
         reads the whole source): {}",
        each.join("; ")
    ))
}

/// The shards missing, for a line of text: `1/3, 2/3`.
fn missing_words(missing: &[Shard]) -> String {
    missing
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The state directories named, each once: a directory named twice (by a path and a
/// pattern, or by two spellings of its path) is counted once, with a note.
fn distinct(states: Vec<PathBuf>) -> Vec<PathBuf> {
    let mut seen: Vec<(PathBuf, PathBuf)> = Vec::new();
    for state in states {
        let real = std::fs::canonicalize(&state).unwrap_or_else(|_| state.clone());
        match seen.iter().find(|(_, r)| *r == real) {
            Some((first, _)) => eprintln!(
                "note: {} is {} given again; counted once",
                state.display(),
                first.display()
            ),
            None => seen.push((state, real)),
        }
    }
    seen.into_iter().map(|(state, _)| state).collect()
}

/// The state directories named: each `--state`, a pattern with `*` or `?` in its last
/// part expanded to the directories it matches, in name order; each directory once.
fn expand(states: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    Ok(distinct(expand_patterns(states)?))
}

fn expand_patterns(states: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for state in states {
        let name = state.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(pattern) = name.filter(|n| n.contains(['*', '?'])) else {
            out.push(state.clone());
            continue;
        };
        let parent = match state.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut found: Vec<PathBuf> = std::fs::read_dir(&parent)
            .with_context(|| {
                format!(
                    "--state {}: cannot list {}",
                    state.display(),
                    parent.display()
                )
            })?
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir() && wildcard(&pattern, &e.file_name().to_string_lossy()))
            .map(|e| e.path())
            .collect();
        anyhow::ensure!(
            !found.is_empty(),
            "--state {}: matches no directory",
            state.display()
        );
        found.sort();
        out.extend(found);
    }
    Ok(out)
}

/// Whether `name` matches `pattern`, where `*` stands for any run of characters and
/// `?` for one.
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

pub fn status(args: StatusArgs) -> anyhow::Result<Exit> {
    let states = expand(&args.state)?;
    if let [state] = states.as_slice() {
        return show_status(&status_of(state)?, args.json);
    }
    let all: Vec<Status> = states
        .iter()
        .map(|s| status_of(s))
        .collect::<anyhow::Result<_>>()?;
    let missing = check_shards(&states, all.iter().map(|s| s.recorded_shard))?;
    let sources: Vec<(String, Vec<String>)> = all
        .iter()
        .map(|s| (s.state.display().to_string(), s.sources.clone()))
        .collect();
    if let Some(note) = sources_note(&sources) {
        eprintln!("{note}");
    }
    let mut total = StoreCounts::default();
    for c in all.iter().filter_map(|s| s.counts.as_ref()) {
        total.photos += c.photos;
        total.enrolled += c.enrolled;
        total.duplicate += c.duplicate;
        total.skipped += c.skipped;
        total.failed += c.failed;
        total.pending += c.pending;
        total.persons += c.persons;
        total.persons_failed += c.persons_failed;
    }
    let running = all.iter().filter(|s| s.running.is_some()).count();
    if args.json {
        #[derive(Serialize)]
        struct Merged<'a> {
            running: usize,
            totals: &'a StoreCounts,
            /// Shards of the job no state directory was given for (`I/N`).
            missing_shards: Vec<String>,
            shards: &'a [Status],
        }
        let merged = Merged {
            running,
            totals: &total,
            missing_shards: missing.iter().map(|s| s.to_string()).collect(),
            shards: &all,
        };
        println!("{}", serde_json::to_string_pretty(&merged)?);
        return Ok(Exit::Ok);
    }
    println!("states:  {} ({running} running)", all.len());
    if !missing.is_empty() {
        println!(
            "missing: {} {} of the job: no state directory given, not in the figures below",
            report::plural(missing.len() as u64, "shard", "shards"),
            missing_words(&missing)
        );
    }
    println!(
        "photos:  {} in the plans: {} enrolled, {} duplicate, {} skipped, {} failed, {} left to do{}",
        total.photos, total.enrolled, total.duplicate, total.skipped, total.failed, total.pending,
        if running > 0 { " (running shards not counted)" } else { "" }
    );
    println!(
        "persons: {} ({} failed)",
        total.persons, total.persons_failed
    );
    for s in &all {
        let line = match (&s.counts, &s.progress) {
            (Some(c), _) => format!(
                "{}/{} done, {} failed, {} left",
                c.photos - c.pending,
                c.photos,
                c.failed,
                c.pending
            ),
            (None, Some(p)) => format!(
                "running: {}/{} done, {} failed",
                p.photos_done, p.photos_total, p.failed
            ),
            (None, None) => "running".to_owned(),
        };
        let shard = s
            .shard
            .as_ref()
            .map(|s| format!(" (shard {s})"))
            .unwrap_or_default();
        println!("  {}{shard}: {line}", s.state.display());
    }
    Ok(Exit::Ok)
}

fn show_status(status: &Status, json: bool) -> anyhow::Result<Exit> {
    if json {
        println!("{}", serde_json::to_string_pretty(status)?);
        return Ok(Exit::Ok);
    }
    println!("state:   {}", status.state.display());
    if let Some(shard) = &status.shard {
        println!("shard:   {shard}");
    }
    match status.running {
        Some(pid) => {
            println!("running: yes (pid {pid})");
            if let Some(p) = &status.progress {
                if !p.source.is_empty() {
                    println!("source:  {}", p.source);
                }
                println!(
                    "photos:  {}/{} done: {} enrolled, {} duplicate, {} skipped, {} failed; {} \
                     left",
                    p.photos_done,
                    p.photos_total,
                    p.enrolled,
                    p.duplicate,
                    p.skipped,
                    p.failed,
                    p.photos_total.saturating_sub(p.photos_done)
                );
                println!("persons: {}/{} done", p.persons_done, p.persons_total);
                println!(
                    "calls:   {} ({}, {} rate-limited) in {} s",
                    p.calls,
                    crate::report::count(p.retries, "retry", "retries"),
                    p.rate_limited,
                    p.elapsed_secs
                );
                println!("flow:    {}", p.flow());
            }
        }
        None => {
            println!("running: no");
            if let Some(source) = &status.source {
                println!("source:  {source}");
            }
            // Every source whose photos are in the job, when it is more than the last.
            if status.sources.len() > 1 {
                println!("sources: {}", status.sources.join(", "));
            }
            for gone in &status.gone_sources {
                println!("source gone: {gone} (no longer a source of the job)");
            }
            if let Some(outcome) = &status.last_outcome {
                println!("last run: {outcome}");
            }
            if let Some(rolled_back) = &status.rolled_back {
                println!("rolled back: {rolled_back}");
            }
            if let Some(c) = &status.counts {
                println!(
                    "photos:  {} in the plan: {} enrolled, {} duplicate, {} skipped, {} failed, {} left to do",
                    c.photos, c.enrolled, c.duplicate, c.skipped, c.failed, c.pending
                );
                println!("persons: {} ({} failed)", c.persons, c.persons_failed);
            }
            if let Some(mirror) = &status.mirror {
                mirror.print();
            }
        }
    }
    Ok(Exit::Ok)
}

#[derive(Debug, clap::Args)]
#[command(after_help = crate::exit::help())]
pub struct ReportArgs {
    /// The job's state directory. Repeat it, or give a pattern with `*` in its last
    /// part, for one report of the shards of a job, with a last `shard` column. The
    /// states must be shards of one job, as for status.
    #[arg(long, default_value = DEFAULT_STATE_DIR, env = "FACEENROLL_STATE", hide_env_values = true)]
    state: Vec<PathBuf>,
    /// Only the photos with this status.
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// csv (default; its first columns are a manifest's) or jsonl.
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn report(args: ReportArgs) -> anyhow::Result<Exit> {
    let states = expand(&args.state)?;
    // Declared before the stores, so the copies outlive them.
    let mut copies = Vec::new();
    let mut stores = Vec::new();
    for state in &states {
        ensure_job(state)?;
        let reading = open_to_read(state).map_err(|err| match err {
            store::StoreError::Busy { .. } => anyhow::anyhow!(
                "{err}. The report is written when the job ends; `faceenroll status --state {}` \
                 shows its progress now",
                state.display()
            ),
            other => other.into(),
        })?;
        let (store, copy) = reading.into_parts();
        copies.push(copy);
        stores.push((state.display().to_string(), store));
    }
    if stores.len() > 1 {
        let shards = stores
            .iter()
            .map(|(_, store)| store.shard())
            .collect::<Result<Vec<_>, _>>()?;
        let missing = check_shards(&states, shards.into_iter())?;
        let sources = stores
            .iter()
            .map(|(name, store)| Ok((name.clone(), store.meta()?.sources.into_keys().collect())))
            .collect::<Result<Vec<_>, store::StoreError>>()?;
        if let Some(note) = sources_note(&sources) {
            eprintln!("{note}");
        }
        if !missing.is_empty() {
            eprintln!(
                "note: {} {} of the job not given (no state directory): {} not in this report",
                report::plural(missing.len() as u64, "shard", "shards"),
                missing_words(&missing),
                if missing.len() == 1 {
                    "its photos are"
                } else {
                    "their photos are"
                }
            );
        }
    }
    let write = |out: &mut dyn std::io::Write| match stores.as_slice() {
        [(_, store)] => report::write_report(store, args.only, args.format, out),
        _ => report::write_merged_report(&stores, args.only, args.format, out),
    };
    let rows = match &args.output {
        Some(path) => crate::output_file::replace_with(path, write)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => match write(&mut std::io::stdout().lock()) {
            Ok(rows) => rows,
            // The reader had enough (`| head`): not an error of the report.
            Err(err) if is_broken_pipe(&err) => return Ok(Exit::Ok),
            Err(err) => return Err(err),
        },
    };
    tracing::debug!("{rows} rows written");
    Ok(Exit::Ok)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            || cause.downcast_ref::<csv::Error>().is_some_and(
                |e| matches!(e.kind(), csv::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::BrokenPipe),
            )
    })
}

#[cfg(test)]
mod tests {
    use super::{sources_note, wildcard};

    #[test]
    fn shards_planned_from_different_sources_are_named() {
        let state = |name: &str, sources: &[&str]| {
            (
                name.to_owned(),
                sources.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
        };
        let same = [state("a", &["/srv/photos"]), state("b", &["/srv/photos"])];
        assert_eq!(sources_note(&same), None);
        let running = [state("a", &["/srv/photos"]), state("b", &[])];
        assert_eq!(sources_note(&running), None);
        let other = [state("a", &["/srv/photos"]), state("b", &["/srv/other"])];
        let note = sources_note(&other).unwrap();
        assert!(
            note.contains("a: /srv/photos") && note.contains("b: /srv/other"),
            "{note}"
        );
    }

    #[test]
    fn patterns_match_state_directory_names() {
        assert!(wildcard("shard-*", "shard-0"));
        assert!(wildcard("shard-*", "shard-"));
        assert!(wildcard("*-?", "shard-7"));
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(!wildcard("shard-*", "state"));
        assert!(!wildcard("shard-?", "shard-10"));
        assert!(!wildcard("a*b", "ab-c"));
    }
}
