//! The enrollment engine: turns the plan in the store into persons and faces on the
//! service.
//!
//! # Shape
//!
//! One dispatcher thread reads the persons with work left from the store (in id
//! order, person by person, so memory stays flat however large the job) and hands
//! them through a bounded crossbeam channel to worker threads. Persons run in
//! parallel; one person's calls run in order on one worker (see `engine/person/`). All
//! workers share one [`Pacer`], so the job as a whole stays under the service's rate,
//! and one [`Flow`], which sizes the calls in flight from the measured latency (see
//! `engine/concurrency.rs`). Worker threads are started as the flow asks for them, up
//! to the ceiling.
//!
//! # Stopping
//!
//! A fatal service error or an operator's signal raises the [`StopSignal`]: the
//! dispatcher stops handing out persons at once, workers finish the call they have in
//! flight, record its answer and leave the rest of their person pending, and the store
//! is flushed. What was in flight is known as in doubt and is settled on the next run.
//! A service that answers no call for the job's limit of unanswered time stops the
//! job too, as a network stop ([`silence`]).
//!
//! # Before the first call
//!
//! New persons that would pass a group's or the AppID's limit, counting what the
//! service holds already, are failed with the reason before any is created
//! ([`groups`]).

mod caller;
pub mod concurrency;
mod crop;
mod doubt;
pub mod groups;
pub mod pacer;
mod person;
pub mod queue;
pub mod retry;
pub mod shrink;
pub mod silence;

use crate::faces::FaceOptions;
use crate::limits::{RequestBudget, RequestLimit};
use crate::normalize::NormalizeOptions;
use crate::report::Tally;
use crate::service::client::{CallError, Client};
use crate::store::{Store, StoreError};
use concurrency::Flow;
use pacer::Pacer;
use retry::RetryPolicy;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How many workers run, each working on one person at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workers {
    /// Exactly this many, each with one call in flight at most.
    Fixed(usize),
    /// As many calls in flight as the measured latency and the rate need, and a few
    /// more workers, up to `max`.
    Adaptive { max: usize },
}

impl Default for Workers {
    fn default() -> Self {
        Workers::Adaptive {
            max: DEFAULT_MAX_WORKERS,
        }
    }
}

impl Workers {
    /// The most worker threads this runs.
    pub fn ceiling(self) -> usize {
        match self {
            Workers::Fixed(n) | Workers::Adaptive { max: n } => n,
        }
    }
}

/// How the engine runs. Every field comes from the resolved configuration.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub workers: Workers,
    /// Calls per second in all (0: no limit).
    pub qps: u32,
    pub retry: RetryPolicy,
    pub normalize: NormalizeOptions,
    /// The request budget to start from (the configured limit); the limit the
    /// service shows by its refusals (23, HTTP 413) is learned and kept in the store.
    pub budget: RequestBudget,
    /// Seed of the backoff jitter (random when `None`).
    pub seed: Option<u64>,
    /// The group and AppID limits new persons are checked against before any is
    /// created.
    pub group_limits: groups::GroupLimits,
    /// Whether photos are looked at for faces (`--crop-faces`, `--skip-faceless`).
    pub faces: FaceOptions,
    /// How long the service may go without answering any call before the job stops
    /// (see [`silence`]).
    pub unanswered_limit: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            workers: Workers::default(),
            qps: crate::limits::DEFAULT_QPS,
            retry: RetryPolicy::default(),
            normalize: NormalizeOptions::default(),
            budget: RequestBudget::configured(crate::limits::MAX_REQUEST_BYTES),
            seed: None,
            group_limits: groups::GroupLimits::default(),
            faces: FaceOptions::default(),
            unanswered_limit: silence::DEFAULT_UNANSWERED_LIMIT,
        }
    }
}

/// The default ceiling of workers. A worker spends nearly all its time waiting for
/// the service, so the count needed is set by latency × rate, not by cores: 128
/// keep 50 calls per second flowing up to 2 s per call (50/s × 2 s × 1.25 + 2). An
/// idle worker is a blocked thread and its stack; the calls in flight hold their
/// request bodies (at most [`crate::limits::MAX_REQUEST_BYTES`] each).
pub const DEFAULT_MAX_WORKERS: usize = 128;

/// The most workers a job may ask for, fixed or as a ceiling: each is a thread.
pub const MAX_WORKERS: usize = 1024;

/// Asks a running job to stop. Shared between the signal handler and the engine.
#[derive(Debug, Default)]
pub struct StopSignal(AtomicU8);

impl StopSignal {
    const RUNNING: u8 = 0;
    const INTERRUPTED: u8 = 1;
    const FATAL: u8 = 2;

    /// The operator asked to stop (Ctrl-C, SIGTERM).
    pub fn interrupt(&self) {
        let _ = self.0.compare_exchange(
            Self::RUNNING,
            Self::INTERRUPTED,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
    }

    fn fatal(&self) {
        self.0.store(Self::FATAL, Ordering::SeqCst);
    }

    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst) != Self::RUNNING
    }

    pub fn interrupted(&self) -> bool {
        self.0.load(Ordering::SeqCst) == Self::INTERRUPTED
    }
}

/// How a run of the engine ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// Every person with work was worked on.
    Finished,
    /// The service answered an error that every later call would get too.
    Fatal(CallError),
    /// The operator asked to stop.
    Interrupted,
}

/// Why the engine could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    // Not transparent: the store error stays in the chain, where its exit class
    // is read (`exit::of_error`).
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The system refused to start even one worker thread.
    #[error(
        "cannot start a worker thread ({0}): the process limit (ulimit -u) or the memory \
         left is too low; raise it or lower --workers"
    )]
    NoWorker(std::io::Error),
}

/// The workers started so far, and the most the system would start.
#[derive(Debug)]
struct Crew {
    started: AtomicUsize,
    /// Lowered to the count started when the system refuses a thread.
    most: AtomicUsize,
}

impl Crew {
    fn new() -> Crew {
        Crew {
            started: AtomicUsize::new(0),
            most: AtomicUsize::new(usize::MAX),
        }
    }

    fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// Starts workers with `spawn` (given each worker's index) until `wanted` run. A
    /// thread the system refuses (a process limit) is not a panic: the job goes on
    /// with the workers it has, said once, and asks for no more; refused the first
    /// one, it cannot go on at all.
    fn grow(
        &self,
        wanted: usize,
        mut spawn: impl FnMut(usize) -> std::io::Result<()>,
    ) -> Result<(), EngineError> {
        let wanted = wanted.min(self.most.load(Ordering::Relaxed));
        while self.started() < wanted {
            let index = self.started();
            match spawn(index) {
                Ok(()) => {
                    self.started.fetch_add(1, Ordering::Relaxed);
                }
                Err(err) if index == 0 => return Err(EngineError::NoWorker(err)),
                Err(err) => {
                    tracing::warn!(
                        "cannot start worker {} ({err}): going on with {index}; the process \
                         limit (ulimit -u) is lower than --workers asks",
                        index + 1
                    );
                    self.most.store(index, Ordering::Relaxed);
                    break;
                }
            }
        }
        Ok(())
    }
}

/// What every worker shares.
struct Shared<'a> {
    store: &'a Store,
    client: &'a Client,
    options: &'a EngineOptions,
    pacer: Pacer,
    flow: Flow,
    stop: &'a StopSignal,
    tally: &'a Tally,
    /// How long the service has not answered, across all workers.
    silence: silence::Silence,
    /// Re-encodes photos that do not fit, apart from the worker threads, so a burst
    /// of camera originals cannot hold up the calls of other persons.
    normalize_pool: rayon::ThreadPool,
    fatal: Mutex<Option<CallError>>,
    store_error: Mutex<Option<StoreError>>,
    /// The request body limit as learned so far, this run and earlier ones.
    limit: Mutex<RequestLimit>,
}

impl Shared<'_> {
    fn record_fatal(&self, err: CallError) {
        tracing::error!("stopping the job: {err}");
        let mut slot = self.fatal.lock().expect("fatal lock");
        if slot.is_none() {
            *slot = Some(err);
        }
        self.stop.fatal();
    }

    /// The request budget with what the job has learned of the limit so far.
    fn request_budget(&self) -> RequestBudget {
        let limit = self.limit.lock().expect("limit lock");
        self.options.budget.with_learned(&limit)
    }

    /// Records what an answer taught of the request limit, in the store too.
    fn learn_limit(&self, learn: impl FnOnce(&mut RequestLimit) -> bool) -> Result<(), StoreError> {
        let mut limit = self.limit.lock().expect("limit lock");
        if learn(&mut limit) {
            self.store.put_request_limit(&limit)?;
        }
        Ok(())
    }

    fn record_store_error(&self, err: StoreError) {
        let mut slot = self.store_error.lock().expect("store error lock");
        // Said once: every worker meets the same full disk.
        if slot.is_none() {
            tracing::error!("stopping the job: {err}");
            *slot = Some(err);
        }
        self.stop.fatal();
    }
}

/// Persons read ahead of the workers.
const PERSONS_QUEUED: usize = 16;

/// How often the dispatcher, waiting to hand out a person, checks whether the flow
/// asks for more workers.
const GROWTH_CHECK: Duration = Duration::from_millis(50);

/// Runs the pending work of the store's plan to the end, or until stopped.
pub fn run(
    store: &Store,
    client: &Client,
    options: &EngineOptions,
    stop: &StopSignal,
    tally: &Tally,
) -> Result<RunOutcome, EngineError> {
    let shared = Shared {
        store,
        client,
        options,
        pacer: Pacer::new(options.qps),
        flow: match options.workers {
            Workers::Fixed(n) => Flow::fixed(n.clamp(1, MAX_WORKERS)),
            Workers::Adaptive { max } => Flow::adaptive(max.clamp(1, MAX_WORKERS)),
        },
        stop,
        tally,
        silence: silence::Silence::new(options.unanswered_limit, std::time::Instant::now()),
        normalize_pool: crate::normalize::thread_pool(
            std::thread::available_parallelism().map_or(2, |n| n.get()),
        )
        .expect("start the normalizing threads"),
        fatal: Mutex::new(None),
        store_error: Mutex::new(None),
        limit: Mutex::new(store.request_limit()?),
    };
    // A job stopped before it began makes no call, not even the group reads.
    if stop.interrupted() {
        return Ok(RunOutcome::Interrupted);
    }
    if let groups::Fit::Fatal(err) = groups::fit(&shared, &options.group_limits)? {
        tracing::error!("stopping the job: {err}");
        return Ok(RunOutcome::Fatal(err));
    }
    let (tx, rx) = crossbeam_channel::bounded::<queue::PersonWork>(PERSONS_QUEUED);
    let dispatched: Result<(), EngineError> = std::thread::scope(|scope| {
        let crew = Crew::new();
        // Starts workers until there are as many as the flow asks for. Called by the
        // dispatcher while it waits to hand out a person.
        let start_wanted = || -> Result<(), EngineError> {
            shared.flow.tick(&shared.pacer, tally);
            let grown = crew.grow(shared.flow.workers_wanted(), |index| {
                let rx = rx.clone();
                let shared = &shared;
                let seed = options
                    .seed
                    .map_or_else(|| fastrand::u64(..), |s| s ^ index as u64);
                std::thread::Builder::new()
                    .name(format!("worker-{index}"))
                    .spawn_scoped(scope, move || {
                        let mut worker =
                            person::Worker::new(shared, fastrand::Rng::with_seed(seed));
                        for work in rx {
                            if shared.stop.requested() {
                                continue;
                            }
                            worker.enroll(work);
                        }
                    })
                    .map(drop)
            });
            tally.workers_started(crew.started() as u64);
            grown
        };
        for work in queue::pending_persons(store) {
            if stop.requested() {
                break;
            }
            let mut work = work?;
            loop {
                start_wanted()?;
                match tx.send_timeout(work, GROWTH_CHECK) {
                    Ok(()) => break,
                    Err(crossbeam_channel::SendTimeoutError::Timeout(back)) => work = back,
                    Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => break,
                }
            }
        }
        drop(tx);
        // The last persons queued may still need more workers.
        while !rx.is_empty() && !stop.requested() {
            start_wanted()?;
            std::thread::sleep(GROWTH_CHECK);
        }
        drop(rx);
        Ok(())
    });
    dispatched?;
    shared.flow.report(tally);
    let learned = *shared.limit.lock().expect("limit lock");
    if let Some(refused) = learned.refused {
        tally.limit_learned(refused, learned.accepted);
    }
    store.flush()?;
    if let Some(err) = shared.store_error.into_inner().expect("store error lock") {
        return Err(err.into());
    }
    if let Some(err) = shared.fatal.into_inner().expect("fatal lock") {
        return Ok(RunOutcome::Fatal(err));
    }
    if stop.interrupted() {
        return Ok(RunOutcome::Interrupted);
    }
    Ok(RunOutcome::Finished)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::EAGAIN)
    }

    #[test]
    fn a_thread_refused_leaves_the_job_with_the_workers_it_has() {
        let crew = Crew::new();
        let mut spawned = Vec::new();
        // The system lets 3 threads start of the 1,024 asked for.
        let spawn = |index: usize, spawned: &mut Vec<usize>| {
            if index < 3 {
                spawned.push(index);
                Ok(())
            } else {
                Err(refused())
            }
        };
        crew.grow(1024, |i| spawn(i, &mut spawned)).unwrap();
        assert_eq!(crew.started(), 3);
        // Asked again (the flow wants more), it does not try again.
        crew.grow(1024, |_| panic!("no more threads asked for"))
            .unwrap();
        assert_eq!(spawned, [0, 1, 2]);
    }

    #[test]
    fn no_thread_at_all_is_a_stop_that_names_the_limit() {
        let crew = Crew::new();
        let err = crew.grow(8, |_| Err(refused())).unwrap_err();
        assert!(matches!(err, EngineError::NoWorker(_)), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("ulimit -u") && text.contains("--workers"),
            "{text}"
        );
    }
}
