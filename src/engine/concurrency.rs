//! How many calls are in flight at once: sized from the service's measured latency
//! and the pacer's rate, so the job fills its rate budget whatever the latency.
//!
//! # Why
//!
//! A worker spends nearly all its time waiting for an answer. To keep `rate` calls
//! per second going when each takes `latency`, `rate × latency` calls must be in
//! flight (Little's law): 8 calls cover 50/s only while a call takes under 160 ms,
//! and an `addface` of 20 photos takes hundreds of milliseconds to seconds. The
//! latency is not known in advance and changes with the photos and the hour, so it
//! is measured.
//!
//! # Shape
//!
//! - [`Controller`] is the policy, pure and free of time and threads: at each tick it
//!   reads an [`Observation`] (the pacer's rate, the median latency of the latest
//!   calls, whether the pacer had slots no worker was ready for, whether calls
//!   waited for room, timeouts) and answers how many calls may be in flight.
//! - [`Permits`] is the mechanism: a counting gate whose size the controller sets.
//!   A worker holds a permit from before its pacer slot until the answer.
//! - [`Flow`] joins them for the engine: it times each call, ticks the controller
//!   and tells the engine how many worker threads to have (a few more than permits,
//!   so a worker busy with the store or its photos between calls leaves no permit
//!   unused). Threads are started lazily up to the ceiling; an idle one blocks on a
//!   channel and costs a stack, nothing else.
//!
//! With `--workers N` the number is fixed: `N` threads and `N` permits.

use crate::report::Tally;
use crate::service::client::{CallError, TransportKind};
use crate::service::codes::Class;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Calls in flight beyond `rate × latency`, as a factor: the extra permits are held
/// by workers waiting at the pacer, so one is ready at every slot.
pub const HEADROOM: f64 = 1.25;
/// Calls in flight beyond the factor, for the jitter of small counts.
pub const SPARE: usize = 2;
/// Calls in flight before any latency is known (the fixed default of earlier
/// versions, enough for 50 calls/s up to 160 ms).
pub const INITIAL_LIMIT: usize = 8;
/// How often the controller looks at what happened.
pub const TICK: Duration = Duration::from_millis(500);
/// How often it looks before the first answer, while the age of the first call is
/// all it knows of the latency: the limit then keeps ahead of the calls the pacer
/// sends (`rate × age × HEADROOM`), so a short job runs at its full rate from its
/// first second rather than idle behind [`INITIAL_LIMIT`] until a tick.
pub const OPENING_TICK: Duration = Duration::from_millis(100);
/// Latencies of this many latest answered calls make the median.
const WINDOW: usize = 64;
/// After a raise that did not pay, no raise for this many ticks.
const HOLD_TICKS: u32 = 20;
/// The most the boost for missed slots multiplies the target by.
const MAX_BOOST: f64 = 2.0;

/// What the controller sees at a tick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observation {
    /// How long the tick lasted.
    pub elapsed: Duration,
    /// The pacer's rate, calls per second; `None` while unpaced.
    pub rate: Option<f64>,
    /// Calls answered per second over the tick.
    pub throughput: f64,
    /// Median latency of the latest answered calls; `None` before the first answer.
    pub latency: Option<Duration>,
    /// The pacer had slots no worker was ready for.
    pub starved: bool,
    /// A call waited for room in flight: the limit held the job back.
    pub saturated: bool,
    /// Calls that got no answer before the read timeout.
    pub timeouts: u64,
}

/// A raise being tried: what things were before it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Probe {
    limit: usize,
    throughput: f64,
    latency: Duration,
    waited: Duration,
}

/// The policy: how many calls may be in flight.
#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    min: usize,
    max: usize,
    limit: usize,
    /// Factor over Little's law, grown while the pacer has slots nobody took.
    boost: f64,
    probe: Option<Probe>,
    hold: u32,
}

impl Controller {
    /// A controller keeping the limit within `min..=max`.
    pub fn new(min: usize, max: usize) -> Controller {
        let max = max.max(1);
        let min = min.clamp(1, max);
        Controller {
            min,
            max,
            limit: INITIAL_LIMIT.clamp(min, max),
            boost: 1.0,
            probe: None,
            hold: 0,
        }
    }

    /// The calls allowed in flight now.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Reads a tick's observation and answers the new limit.
    pub fn step(&mut self, obs: &Observation) -> usize {
        self.hold = self.hold.saturating_sub(1);
        if obs.timeouts > 0 {
            // The service or the way to it is overwhelmed: back off, and do not come
            // back at once.
            self.boost = 1.0;
            self.probe = None;
            self.hold = HOLD_TICKS;
            return self.set(self.limit * 3 / 4);
        }
        let Some(latency) = obs.latency else {
            // Nothing answered yet: open up while calls queue for room, so the first
            // answers come from enough calls to tell the latency.
            let wanted = if obs.saturated {
                self.limit * 2
            } else {
                self.limit
            };
            return self.set(wanted);
        };
        if let Some(probe) = self.judge(obs, latency) {
            // More calls in flight brought longer answers and no more of them: the
            // service (or the uplink) is saturated. Go back and stay there a while.
            self.limit = probe.limit.clamp(self.min, self.max);
            self.boost = 1.0;
            self.hold = HOLD_TICKS;
            return self.limit;
        }
        let wanted = match obs.rate {
            Some(rate) => {
                if obs.starved && obs.throughput < 0.97 * rate {
                    self.boost = (self.boost + 0.1).min(MAX_BOOST);
                } else if !obs.starved {
                    self.boost = 1.0 + (self.boost - 1.0) * 0.9;
                }
                let little = rate * latency.as_secs_f64() * HEADROOM * self.boost;
                little.ceil() as usize + SPARE
            }
            // Unpaced: no rate to size from. Grow while calls wait for room, and keep
            // a raise only if it brings more answers (see `judge`).
            None if obs.saturated => self.limit + (self.limit / 4).max(1),
            None => self.limit,
        };
        let wanted = if self.hold > 0 {
            wanted.min(self.limit)
        } else {
            wanted
        };
        if wanted > self.limit && self.probe.is_none() {
            self.probe = Some(Probe {
                limit: self.limit,
                throughput: obs.throughput,
                latency,
                waited: Duration::ZERO,
            });
        }
        self.set(wanted)
    }

    /// Once a raise had time to show (two ticks and two latencies), answers the probe
    /// to go back to if the raise did not pay.
    fn judge(&mut self, obs: &Observation, latency: Duration) -> Option<Probe> {
        let probe = self.probe.as_mut()?;
        probe.waited += obs.elapsed;
        if probe.waited < (TICK * 2).max(probe.latency * 2) {
            return None;
        }
        let probe = self.probe.take()?;
        let gained = obs.throughput >= probe.throughput * 1.05;
        let slower = latency.as_secs_f64() >= probe.latency.as_secs_f64() * 1.5;
        let failed = match obs.rate {
            // Paced: more calls in flight are right when the answers got slower on
            // their own; wrong when they got slower for them and the rate is unmet.
            Some(rate) => slower && !gained && obs.throughput < 0.95 * rate,
            None => !gained,
        };
        (failed && probe.limit < self.limit).then_some(probe)
    }

    fn set(&mut self, wanted: usize) -> usize {
        self.limit = wanted.clamp(self.min, self.max);
        self.limit
    }
}

/// A counting gate of resizable size: at most `limit` holders at once.
#[derive(Debug)]
pub struct Permits {
    state: Mutex<PermitState>,
    freed: Condvar,
}

#[derive(Debug)]
struct PermitState {
    limit: usize,
    in_use: usize,
    /// Someone waited since the last [`Permits::take_saturated`].
    waited: bool,
}

/// Room for one call in flight, given back when dropped.
#[derive(Debug)]
pub struct Permit<'p>(&'p Permits);

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = self.0.state.lock().expect("permits lock");
        s.in_use -= 1;
        drop(s);
        self.0.freed.notify_one();
    }
}

impl Permits {
    pub fn new(limit: usize) -> Permits {
        Permits {
            state: Mutex::new(PermitState {
                limit: limit.max(1),
                in_use: 0,
                waited: false,
            }),
            freed: Condvar::new(),
        }
    }

    /// Waits for room and takes it.
    pub fn acquire(&self) -> Permit<'_> {
        let mut s = self.state.lock().expect("permits lock");
        if s.in_use >= s.limit {
            s.waited = true;
            while s.in_use >= s.limit {
                s = self.freed.wait(s).expect("permits lock");
            }
        }
        s.in_use += 1;
        Permit(self)
    }

    /// Changes the size; holders past a smaller size keep their room until they give
    /// it back.
    pub fn set_limit(&self, limit: usize) {
        let mut s = self.state.lock().expect("permits lock");
        let grew = limit > s.limit;
        s.limit = limit.max(1);
        drop(s);
        if grew {
            self.freed.notify_all();
        }
    }

    pub fn limit(&self) -> usize {
        self.state.lock().expect("permits lock").limit
    }

    pub fn in_use(&self) -> usize {
        self.state.lock().expect("permits lock").in_use
    }

    /// Whether anyone waited since the last time this was asked.
    fn take_saturated(&self) -> bool {
        std::mem::take(&mut self.state.lock().expect("permits lock").waited)
    }
}

/// How a call ended, as the controller counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The service answered (success or a refusal): the latency counts.
    Answered,
    /// Answered "too frequent": says nothing of the latency of work.
    RateLimited,
    /// No answer before the read timeout.
    TimedOut,
    /// Lost on the way, or never sent.
    Lost,
}

impl Ending {
    pub fn of<T>(result: &Result<T, CallError>) -> Ending {
        match result {
            Ok(_) => Ending::Answered,
            Err(err) if err.class() == Class::RateLimited => Ending::RateLimited,
            Err(CallError::Service { .. }) => Ending::Answered,
            Err(err) if err.transport_kind() == Some(TransportKind::Timeout) => Ending::TimedOut,
            Err(_) => Ending::Lost,
        }
    }
}

/// What the pacer tells the controller: its rate and whether slots went untaken.
pub trait PaceGauge {
    /// The current rate; `None` while unpaced.
    fn paced_rate(&self) -> Option<f64>;
    /// Whether, since the last time this was asked, a slot came with no worker
    /// waiting for it.
    fn take_starved(&self) -> bool;
}

/// Concurrency for the engine: the gate, the controller and the latency window.
#[derive(Debug)]
pub struct Flow {
    permits: Permits,
    /// `None` with a fixed number of workers.
    adaptive: Option<Mutex<Ticking>>,
    max: usize,
    /// The most permits given out at once in this run.
    peak: AtomicU64,
    /// When the first call was sent.
    first_call: OnceLock<Instant>,
}

#[derive(Debug)]
struct Ticking {
    controller: Controller,
    latest: VecDeque<Duration>,
    since: Instant,
    answered: u64,
    timeouts: u64,
    /// No call was answered yet in this run.
    opening: bool,
}

impl Flow {
    /// Exactly `n` calls in flight at most.
    pub fn fixed(n: usize) -> Flow {
        Flow {
            permits: Permits::new(n),
            adaptive: None,
            max: n.max(1),
            peak: AtomicU64::new(0),
            first_call: OnceLock::new(),
        }
    }

    /// As many calls in flight as the controller finds right, up to `max`.
    pub fn adaptive(max: usize) -> Flow {
        let controller = Controller::new(1, max);
        Flow {
            permits: Permits::new(controller.limit()),
            adaptive: Some(Mutex::new(Ticking {
                controller,
                latest: VecDeque::with_capacity(WINDOW),
                since: Instant::now(),
                answered: 0,
                timeouts: 0,
                opening: true,
            })),
            max: max.max(1),
            peak: AtomicU64::new(0),
            first_call: OnceLock::new(),
        }
    }

    /// Waits for room for one more call in flight.
    pub fn begin(&self) -> Permit<'_> {
        let permit = self.permits.acquire();
        self.first_call.get_or_init(Instant::now);
        self.peak.fetch_max(self.permits.in_use() as u64, Relaxed);
        permit
    }

    /// Records how a call ended and how long it took; ticks the controller when due.
    pub fn end(
        &self,
        permit: Permit<'_>,
        took: Duration,
        ending: Ending,
        pace: &dyn PaceGauge,
        tally: &Tally,
    ) {
        drop(permit);
        if ending == Ending::Answered {
            tally.call_answered(took);
        }
        if let Some(ticking) = &self.adaptive {
            let mut t = ticking.lock().expect("flow lock");
            match ending {
                Ending::Answered => {
                    t.answered += 1;
                    t.opening = false;
                    if t.latest.len() == WINDOW {
                        t.latest.pop_front();
                    }
                    t.latest.push_back(took);
                }
                Ending::TimedOut => t.timeouts += 1,
                Ending::RateLimited | Ending::Lost => {}
            }
        }
        self.tick(pace, tally);
    }

    /// Steps the controller if a tick has passed since the last step. Called after
    /// each call and by the dispatcher, so the limit moves even while no call ends
    /// (the first calls of a slow service).
    pub fn tick(&self, pace: &dyn PaceGauge, tally: &Tally) {
        let Some(ticking) = &self.adaptive else {
            self.report(tally);
            return;
        };
        let mut t = ticking.lock().expect("flow lock");
        let elapsed = t.since.elapsed();
        if elapsed < if t.opening { OPENING_TICK } else { TICK } {
            return;
        }
        // Before the first answer, the calls in flight have taken at least as long
        // as the first of them: a lower bound of the latency, enough to open up.
        let latency = median(&t.latest).or_else(|| self.first_call.get().map(Instant::elapsed));
        // Slots go untaken before the first answer only because the limit has not
        // caught up with the age of the calls yet: no reason to boost it.
        let starved = pace.take_starved() && !t.opening;
        let obs = Observation {
            elapsed,
            rate: pace.paced_rate(),
            throughput: t.answered as f64 / elapsed.as_secs_f64(),
            latency,
            starved,
            saturated: self.permits.take_saturated(),
            timeouts: t.timeouts,
        };
        let limit = t.controller.step(&obs);
        t.since = Instant::now();
        t.answered = 0;
        t.timeouts = 0;
        drop(t);
        if limit != self.permits.limit() {
            tracing::debug!(
                "calls in flight: {limit} (rate {:?}/s, latency {:?}, {:.1} answers/s)",
                obs.rate,
                obs.latency,
                obs.throughput
            );
        }
        self.permits.set_limit(limit);
        self.report(tally);
    }

    /// Gives the tally the calls allowed in flight and the most in flight so far
    /// (also at the end of a run shorter than a tick, which never stepped).
    pub fn report(&self, tally: &Tally) {
        tally.concurrency(self.permits.limit() as u64, self.peak.load(Relaxed));
    }

    /// How many worker threads the engine should have now: the permits and a few
    /// more for the workers busy between calls, within the ceiling.
    pub fn workers_wanted(&self) -> usize {
        if self.adaptive.is_none() {
            return self.max;
        }
        let limit = self.permits.limit();
        (limit + limit / 4 + SPARE).min(self.max)
    }
}

fn median(latest: &VecDeque<Duration>) -> Option<Duration> {
    if latest.is_empty() {
        return None;
    }
    let mut sorted: Vec<Duration> = latest.iter().copied().collect();
    sorted.sort_unstable();
    Some(sorted[sorted.len() / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(rate: Option<f64>, throughput: f64, latency_ms: u64) -> Observation {
        Observation {
            elapsed: TICK,
            rate,
            throughput,
            latency: Some(Duration::from_millis(latency_ms)),
            starved: false,
            saturated: true,
            timeouts: 0,
        }
    }

    /// Steps until the limit settles (or 200 ticks).
    fn settle(c: &mut Controller, o: &Observation) -> usize {
        let mut last = c.limit();
        for _ in 0..200 {
            let now = c.step(o);
            if now == last {
                return now;
            }
            last = now;
        }
        last
    }

    #[test]
    fn in_flight_follows_rate_times_latency() {
        for (latency_ms, expected) in [(50, 6), (300, 21), (1000, 65), (2000, 127)] {
            let mut c = Controller::new(1, 128);
            let got = settle(&mut c, &obs(Some(50.0), 50.0, latency_ms));
            // ceil(50/s × latency × 1.25) + 2
            assert_eq!(got, expected, "{latency_ms} ms");
        }
    }

    #[test]
    fn a_slow_limit_needs_few_calls_in_flight() {
        let mut c = Controller::new(1, 128);
        assert_eq!(settle(&mut c, &obs(Some(5.0), 5.0, 300)), 4);
    }

    #[test]
    fn the_ceiling_bounds_it() {
        let mut c = Controller::new(1, 32);
        assert_eq!(settle(&mut c, &obs(Some(50.0), 20.0, 2000)), 32);
    }

    #[test]
    fn before_any_answer_it_opens_while_calls_queue() {
        let mut c = Controller::new(1, 128);
        let mut o = obs(Some(50.0), 0.0, 0);
        o.latency = None;
        assert_eq!(c.step(&o), 16);
        assert_eq!(c.step(&o), 32);
        o.saturated = false;
        assert_eq!(c.step(&o), 32);
    }

    #[test]
    fn missed_slots_raise_it_past_littles_law() {
        let mut c = Controller::new(1, 128);
        let base = settle(&mut c, &obs(Some(50.0), 50.0, 300));
        let mut starved = obs(Some(50.0), 40.0, 300);
        starved.starved = true;
        for _ in 0..5 {
            c.step(&starved);
        }
        assert!(c.limit() > base, "{} > {base}", c.limit());
        // Once slots are taken again, it comes back down.
        for _ in 0..60 {
            c.step(&obs(Some(50.0), 50.0, 300));
        }
        assert_eq!(c.limit(), base);
    }

    #[test]
    fn timeouts_shrink_it() {
        let mut c = Controller::new(1, 128);
        let before = settle(&mut c, &obs(Some(50.0), 50.0, 1000));
        let mut o = obs(Some(50.0), 30.0, 1000);
        o.timeouts = 2;
        let after = c.step(&o);
        assert!(after < before, "{after} < {before}");
        // And it does not grow back at once.
        assert_eq!(c.step(&obs(Some(50.0), 30.0, 1000)), after);
    }

    #[test]
    fn a_raise_that_only_slows_the_answers_is_undone() {
        // Paced at 50/s, the service saturated at 20 answers/s: latency grows with
        // the calls in flight, the answers per second do not.
        let mut c = Controller::new(1, 128);
        c.step(&obs(Some(50.0), 20.0, 1000));
        let raised = c.limit();
        assert_eq!(raised, 65);
        // The raise doubled the latency for the same 20 answers/s.
        let slower = obs(Some(50.0), 20.0, 3000);
        let mut limits = Vec::new();
        for _ in 0..6 {
            limits.push(c.step(&slower));
        }
        assert_eq!(*limits.last().unwrap(), INITIAL_LIMIT, "{limits:?}");
    }

    #[test]
    fn a_raise_with_more_answers_stays() {
        let mut c = Controller::new(1, 128);
        c.step(&obs(Some(50.0), 8.0, 1000));
        assert_eq!(c.limit(), 65);
        for _ in 0..6 {
            c.step(&obs(Some(50.0), 49.0, 1000));
        }
        assert_eq!(c.limit(), 65);
    }

    #[test]
    fn unpaced_it_grows_while_growth_brings_answers() {
        let mut c = Controller::new(1, 128);
        // Every raise brings more answers: it keeps growing while calls queue.
        let mut throughput = 100.0;
        for _ in 0..10 {
            throughput *= 1.2;
            c.step(&obs(None, throughput, 10));
        }
        assert!(c.limit() > 30, "{}", c.limit());
        // Answers stop growing: the raise tried past that point is undone, and
        // growth holds there.
        let flat = obs(None, throughput, 10);
        let top = c.limit();
        let tried: Vec<usize> = (0..4).map(|_| c.step(&flat)).collect();
        assert!(tried.iter().any(|&l| l > top), "{tried:?}");
        assert_eq!(c.limit(), top, "{tried:?}");
        for _ in 0..10 {
            c.step(&flat);
        }
        assert_eq!(c.limit(), top);
    }

    #[test]
    fn unpaced_and_unsaturated_it_stays() {
        let mut c = Controller::new(1, 128);
        let mut o = obs(None, 100.0, 10);
        o.saturated = false;
        assert_eq!(settle(&mut c, &o), INITIAL_LIMIT);
    }

    #[test]
    fn permits_bound_the_holders_and_resize() {
        let permits = Permits::new(2);
        let a = permits.acquire();
        let _b = permits.acquire();
        assert_eq!(permits.in_use(), 2);
        assert!(!permits.take_saturated());
        std::thread::scope(|s| {
            let waiter = s.spawn(|| {
                let _c = permits.acquire();
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(!waiter.is_finished(), "a third holder waits");
            permits.set_limit(3);
            waiter.join().unwrap();
        });
        assert!(permits.take_saturated());
        permits.set_limit(1);
        drop(a);
        assert_eq!(permits.in_use(), 1);
    }

    #[test]
    fn endings_are_classed() {
        use crate::service::api::Call;
        let service = |code| -> Result<(), CallError> {
            Err(CallError::Service {
                call: Call::AddFace,
                code,
                message: String::new(),
            })
        };
        let transport = |kind| -> Result<(), CallError> {
            Err(CallError::Transport {
                call: Call::AddFace,
                kind,
                detail: String::new(),
            })
        };
        assert_eq!(Ending::of(&Ok::<(), CallError>(())), Ending::Answered);
        assert_eq!(Ending::of(&service(15)), Ending::RateLimited);
        assert_eq!(Ending::of(&service(-1312)), Ending::Answered);
        assert_eq!(
            Ending::of(&transport(TransportKind::Timeout)),
            Ending::TimedOut
        );
        assert_eq!(
            Ending::of(&transport(TransportKind::ConnectionLost)),
            Ending::Lost
        );
    }

    /// A pacer at 50 calls/s whose slots went untaken.
    struct Fifty;

    impl PaceGauge for Fifty {
        fn paced_rate(&self) -> Option<f64> {
            Some(50.0)
        }
        fn take_starved(&self) -> bool {
            true
        }
    }

    #[test]
    fn before_the_first_answer_the_limit_keeps_ahead_of_the_age_of_the_first_call() {
        let flow = Flow::adaptive(128);
        let tally = Tally::default();
        assert_eq!(flow.permits.limit(), INITIAL_LIMIT);
        let first = flow.begin();
        // A slow service: nothing answered yet. Well within the first regular tick,
        // the limit already covers what the pacer sends in the age of the first call.
        std::thread::sleep(OPENING_TICK * 2);
        flow.tick(&Fifty, &tally);
        let age = flow.first_call.get().unwrap().elapsed().as_secs_f64();
        let limit = flow.permits.limit();
        assert!(limit > INITIAL_LIMIT, "{limit}");
        assert!(limit as f64 >= 50.0 * (OPENING_TICK * 2).as_secs_f64() * HEADROOM);
        // Untaken slots before any answer are not the latency's doing: no boost.
        assert!(
            limit as f64 <= 50.0 * age * HEADROOM + SPARE as f64 + 1.0,
            "{limit}"
        );
        drop(first);
    }
}
