//! The live view of a running job: bars at a terminal, a log line at an interval
//! otherwise (cron mail wants a few lines, not a redraw per photo).
//!
//! The view only reads the shared [`Tally`]; it also writes the figures to
//! `progress.json` in the state directory, so `faceenroll status` can tell what a
//! running job has done without opening its locked database.
//!
//! Log lines and bars share stderr: while bars are shown, every log line goes through
//! [`LogWriter`], which clears the bars, writes the line and redraws them, so the two
//! never garble each other.
//!
//! While bars are drawn the terminal does not echo control keys. indicatif leaves the
//! cursor at the right edge of the last bar, so the `^C` a terminal echoes for
//! Ctrl-C would wrap onto a new line, and the next redraw, counting from the wrong
//! line, would leave a stale bar line on screen above the final lines. The echo
//! setting is put back as soon as the job is interrupted ([`interrupted`]), when the
//! bars end, and when the view is dropped.

use crate::report::Tally;
use crate::state_dir::StateDir;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::IsTerminal as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The running figures a job leaves in its state directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressFile {
    pub pid: u32,
    /// The source the job reads, as the operator named it.
    #[serde(default)]
    pub source: String,
    /// The job's shard (`I/N`) when it is split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    pub photos_total: u64,
    pub photos_done: u64,
    pub persons_total: u64,
    pub persons_done: u64,
    pub enrolled: u64,
    pub duplicate: u64,
    pub skipped: u64,
    pub failed: u64,
    pub retries: u64,
    pub rate_limited: u64,
    pub calls: u64,
    pub elapsed_secs: u64,
    /// Calls allowed in flight now.
    #[serde(default)]
    pub concurrency: u64,
    /// The service's latency so far, median and 95th percentile, in milliseconds.
    #[serde(default)]
    pub latency_p50_ms: Option<u64>,
    #[serde(default)]
    pub latency_p95_ms: Option<u64>,
}

impl ProgressFile {
    fn from_tally(
        tally: &Tally,
        options: &ViewOptions,
        photos: u64,
        persons: u64,
        elapsed: Duration,
    ) -> ProgressFile {
        ProgressFile {
            pid: std::process::id(),
            source: options.source.clone(),
            shard: options
                .shard
                .filter(|s| s.is_split())
                .map(|s| s.to_string()),
            photos_total: photos,
            photos_done: tally.photos_done(),
            persons_total: persons,
            persons_done: tally.snapshot().persons_done,
            enrolled: tally.snapshot().enrolled,
            duplicate: tally.snapshot().duplicate,
            skipped: tally.snapshot().skipped,
            failed: tally.snapshot().failed,
            retries: tally.snapshot().retries,
            rate_limited: tally.snapshot().rate_limited,
            calls: tally.snapshot().calls,
            elapsed_secs: elapsed.as_secs(),
            concurrency: tally.snapshot().concurrency,
            latency_p50_ms: tally
                .latency()
                .percentile(0.5)
                .map(|d| d.as_millis() as u64),
            latency_p95_ms: tally
                .latency()
                .percentile(0.95)
                .map(|d| d.as_millis() as u64),
        }
    }

    /// `in flight ≤ 65, latency p50 1002 ms p95 1010 ms`: why the job runs at the
    /// speed it does.
    pub fn flow(&self) -> String {
        let latency = match (self.latency_p50_ms, self.latency_p95_ms) {
            (Some(p50), Some(p95)) => format!("latency p50 {p50} ms p95 {p95} ms"),
            _ => "latency not measured yet".to_owned(),
        };
        format!("in flight ≤ {}, {latency}", self.concurrency)
    }

    pub fn read(state_dir: &Path) -> Option<ProgressFile> {
        let text = std::fs::read(StateDir::new(state_dir).progress()).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn write(&self, state_dir: &Path) {
        let dir = StateDir::new(state_dir);
        let tmp = dir.progress_draft();
        if std::fs::write(&tmp, serde_json::to_vec(self).expect("serializes")).is_ok() {
            let _ = std::fs::rename(tmp, dir.progress());
        } else {
            // A part written to a full disk is no draft to leave behind.
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// How the view shows itself.
#[derive(Debug, Clone)]
pub struct ViewOptions {
    /// Draw bars (when stderr is a terminal and the operator did not turn them off).
    pub bars: bool,
    /// Between two log lines when there are no bars.
    pub interval: Duration,
    pub state_dir: PathBuf,
    /// The source, as `faceenroll status` names it while the job runs.
    pub source: String,
    /// The job's shard, as `faceenroll status` names it while the job runs.
    pub shard: Option<crate::shard::Shard>,
}

impl ViewOptions {
    pub fn bars_if_terminal(no_progress: bool) -> bool {
        !no_progress && std::io::stderr().is_terminal()
    }
}

/// The bars on screen now, if any: log lines are written around them.
static BARS: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// The terminal's settings before control keys stopped echoing, while bars are drawn.
static ECHO: Mutex<Option<ControlEcho>> = Mutex::new(None);

/// The job was asked to stop: the terminal echoes control keys again, so a second
/// Ctrl-C, which ends the process at once, leaves the terminal as it was.
pub fn interrupted() {
    restore_control_echo();
}

fn restore_control_echo() {
    drop(ECHO.lock().unwrap_or_else(|e| e.into_inner()).take());
}

/// The settings of the terminal on stderr, saved when its echo of control keys was
/// turned off, put back when dropped.
struct ControlEcho(libc::termios);

impl ControlEcho {
    /// Turns off the echo of control keys on stderr's terminal, if it echoes them.
    fn quiet() -> Option<ControlEcho> {
        let fd = libc::STDERR_FILENO;
        if !in_foreground() {
            return None;
        }
        let mut saved = std::mem::MaybeUninit::<libc::termios>::zeroed();
        // SAFETY: tcgetattr writes a termios into the buffer it is given, which is
        // sized for one; it is read only when the call succeeded.
        let saved = unsafe {
            if libc::tcgetattr(fd, saved.as_mut_ptr()) != 0 {
                return None;
            }
            saved.assume_init()
        };
        if saved.c_lflag & libc::ECHOCTL == 0 {
            return None;
        }
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHOCTL;
        // SAFETY: a termios read from this descriptor, with one flag cleared.
        (unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) } == 0).then_some(ControlEcho(saved))
    }
}

impl Drop for ControlEcho {
    fn drop(&mut self) {
        if !in_foreground() {
            return;
        }
        // SAFETY: the termios read from this descriptor before it was changed.
        unsafe {
            libc::tcsetattr(libc::STDERR_FILENO, libc::TCSANOW, &self.0);
        }
    }
}

/// Whether this process is in the foreground of stderr's terminal: a job in the
/// background (`&`) that changed the terminal's settings would be stopped (SIGTTOU).
fn in_foreground() -> bool {
    // SAFETY: both calls only read the process's and the terminal's groups.
    unsafe { libc::tcgetpgrp(libc::STDERR_FILENO) == libc::getpgrp() }
}

fn set_bars(bars: Option<MultiProgress>) {
    *BARS.lock().unwrap_or_else(|e| e.into_inner()) = bars;
}

/// The writer of log lines: stderr, above the bars while they are shown.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::with_capacity(256))
    }
}

/// One log line, written to stderr in one piece when dropped.
#[derive(Debug)]
pub struct LogLine(Vec<u8>);

impl std::io::Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        // Clone out of the lock: drawing must not wait on it.
        let bars = BARS.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let write = || {
            let _ = std::io::stderr().lock().write_all(&self.0);
        };
        match bars {
            Some(multi) => multi.suspend(write),
            None => write(),
        }
    }
}

/// Shows the tally until `done` is dropped or sent to.
pub fn show(
    tally: &Tally,
    photos: u64,
    persons: u64,
    options: &ViewOptions,
    done: mpsc::Receiver<()>,
) {
    let start = Instant::now();
    let bars = options.bars.then(|| {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4));
        let style = ProgressStyle::with_template(
            "{prefix:>8} [{bar:30}] {pos}/{len} {rate} eta {eta} {msg}",
        )
        .expect("valid template")
        .with_key(
            "rate",
            |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1}/s", state.per_sec());
            },
        )
        .progress_chars("=> ");
        let photo_bar = multi.add(ProgressBar::new(photos).with_style(style.clone()));
        photo_bar.set_prefix("photos");
        let person_bar = multi.add(ProgressBar::new(persons).with_style(style));
        person_bar.set_prefix("persons");
        set_bars(Some(multi.clone()));
        *ECHO.lock().unwrap_or_else(|e| e.into_inner()) = ControlEcho::quiet();
        (multi, photo_bar, person_bar)
    });
    // The figures of `progress.json` are at most a second old, whatever the interval
    // between log lines.
    let tick = if bars.is_some() {
        Duration::from_millis(250)
    } else {
        options.interval.min(Duration::from_secs(1))
    };
    let mut last_line = Instant::now();
    // Figures from the start, so `faceenroll status` has them at once.
    ProgressFile::from_tally(tally, options, photos, persons, Duration::ZERO)
        .write(&options.state_dir);
    loop {
        let finished = match done.recv_timeout(tick) {
            Err(RecvTimeoutError::Timeout) => false,
            Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
        };
        let figures = ProgressFile::from_tally(tally, options, photos, persons, start.elapsed());
        figures.write(&options.state_dir);
        let counts = format!(
            "enrolled {} duplicate {} skipped {} failed {} retries {} | {}",
            figures.enrolled,
            figures.duplicate,
            figures.skipped,
            figures.failed,
            figures.retries,
            figures.flow(),
        );
        match &bars {
            Some((_, photo_bar, person_bar)) => {
                photo_bar.set_position(figures.photos_done);
                photo_bar.set_message(counts);
                person_bar.set_position(figures.persons_done);
                if finished {
                    // No time left to estimate once the run is over.
                    let done = ProgressStyle::with_template(
                        "{prefix:>8} [{bar:30}] {pos}/{len} in {elapsed} {msg}",
                    )
                    .expect("valid template")
                    .progress_chars("=> ");
                    photo_bar.set_style(done.clone());
                    person_bar.set_style(done);
                    // Left where they stand: `finish` would fill an interrupted bar.
                    photo_bar.abandon();
                    person_bar.abandon();
                    set_bars(None);
                    restore_control_echo();
                }
            }
            None => {
                if finished || last_line.elapsed() >= options.interval {
                    last_line = Instant::now();
                    tracing::info!(
                        "progress: photos {}/{} persons {}/{} {counts} ({}, {} \
                         rate-limited; {})",
                        figures.photos_done,
                        figures.photos_total,
                        figures.persons_done,
                        figures.persons_total,
                        crate::report::count(figures.calls, "call", "calls"),
                        figures.rate_limited,
                        pace(
                            tally.photos_this_run(),
                            figures.photos_total.saturating_sub(figures.photos_done),
                            start.elapsed()
                        ),
                    );
                }
            }
        }
        if finished {
            break;
        }
    }
}

/// The rate of this run so far (`done` photos) and, while photos are `left`, the
/// time to finish at that rate: `12.5 photos/s, eta 3m20s`.
fn pace(done: u64, left: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
    if left == 0 {
        return format!("{rate:.1} photos/s");
    }
    if rate <= 0.0 {
        return format!("{rate:.1} photos/s, eta unknown");
    }
    let eta = (left as f64 / rate).ceil() as u64;
    let (h, m, s) = (eta / 3600, eta / 60 % 60, eta % 60);
    let eta = match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m{s:02}s"),
        _ => format!("{h}h{m:02}m"),
    };
    format!("{rate:.1} photos/s, eta {eta}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_gives_the_rate_and_the_time_left_at_it() {
        let secs = Duration::from_secs;
        assert_eq!(pace(0, 100, secs(0)), "0.0 photos/s, eta unknown");
        assert_eq!(pace(50, 50, secs(10)), "5.0 photos/s, eta 10s");
        assert_eq!(pace(10, 1000, secs(10)), "1.0 photos/s, eta 16m40s");
        assert_eq!(pace(1, 10_000, secs(1)), "1.0 photos/s, eta 2h46m");
        assert_eq!(pace(28, 0, secs(2)), "14.0 photos/s");
    }
}
