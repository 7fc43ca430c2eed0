//! The pacer every worker shares: at most `qps` calls per second in all, slowing
//! down when the service answers "too frequent" (code 15) and recovering after.
//!
//! The mechanism ([`Pacer::acquire`]) hands out send slots; the policy ([`Aimd`])
//! decides the rate: multiplicative decrease on a rate-limit answer (at most once per
//! quarter second, so a burst of answers to calls that were already in flight counts
//! once), additive increase on each success, never above the configured cap. A run
//! thus settles just under the service's real cap instead of hammering it.
//!
//! # Slots
//!
//! The service counts calls in a one-second window. The pacer keeps the slots it
//! handed out over the last such window and gives each new slot room in it: any
//! `ceil(rate)` consecutive slots span one second plus [`SEND_JITTER_ALLOWANCE`].
//! While workers are waiting, that spaces slots evenly at a little under `rate`.
//! When no worker was ready at a slot's time (all were busy with their photos or
//! the store, or the job was reading the groups before its first person), the slot
//! is not lost: later slots come closer together, down to an eighth of the spacing
//! ([`MAKE_UP`]), as long as the window has room. (Calls then come in bursts of up
//! to eight times the rate, which the service's one-second window allows.)
//!
//! A call leaves a little after its slot (signing, reading the photo, the
//! scheduler). Up to half the allowance is absorbed by the window's margin, with the
//! other half for its way to the service; a call that leaves later than that is
//! recorded at its real time (less the tolerated half), so the slot a window after
//! it keeps its room too. Without the margin a single late call would draw a
//! rate-limit answer, and the decrease it causes costs far more than the 2% the
//! allowance gives up.
//!
//! # Under every reading of the rate window
//!
//! The contract does not say how the service counts its calls per second (any
//! window of one second, or calendar seconds), nor when a call counts as arrived (a
//! threaded service stamps it a few milliseconds late, not the same few for every
//! call). The pacer keeps to the strictest reading: no more than `ceil(rate)` of
//! its sends in any window of one second plus a margin, which keeps to calendar
//! seconds too. The margin starts at [`SEND_JITTER_ALLOWANCE`]. A code 15 to a call
//! sent under that rule tells that the service counts later or wider than the
//! margin allows: the pacer then pauses every worker at once, doubles the margin
//! (up to [`MAX_MARGIN`]) and lowers the rate a little ([`WIDENING_DECREASE`]);
//! the answers to calls sent before that move nothing more. The emulator plays
//! each reading (`--rate-window`, `--arrival-jitter-ms`, see
//! `crate::emulator::rate`).
//!
//! # Unpaced
//!
//! `qps == 0` means "start unpaced", not "ignore the service": slots are handed out
//! at once until the first rate-limit answer, which sets the rate to what the job
//! was sending over the last second, decreased as any rate-limit answer decreases
//! it. From then on the same policy holds, with no cap above it; so code 15 always
//! slows the job down.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How much wider than one second the pacer counts its window at the start: how
/// late after its slot a call may reach the service's count without crowding the
/// service's one-second window (half for leaving late, half for the way and the
/// service's late reading of it).
///
/// 20 ms (2% of the rate), not the 10 ms of earlier versions: against a sliding
/// window whose arrivals are stamped up to 25 ms late (`--arrival-jitter-ms 25`),
/// 10 ms drew a code 15 in every 300-call job (BENCHMARKS.md, "Under each reading
/// of the rate window"), and a refused call waits a window for its retry, which at
/// the end of a job at 1 s per call is a tenth of the job (86.6% of the best);
/// 20 ms drew none, at about 1% of the job (96.8% at 1 s, 98.4% at 300 ms).
pub const SEND_JITTER_ALLOWANCE: Duration = Duration::from_millis(20);

/// The widest the margin grows to after rate-limit answers (see
/// [`Pacer::on_rate_limited`]): 8% of the rate.
pub const MAX_MARGIN: Duration = Duration::from_millis(80);

/// On a rate-limit answer while the margin can still grow, the rate is multiplied
/// by this rather than by the policy's decrease.
///
/// Measured (BENCHMARKS.md, "Under each reading of the rate window"): against a
/// sliding window whose arrivals are stamped up to 25 ms late, one code 15 was
/// drawn per 300-call job, and the policy's 30% decrease it brought cost 0.6 s at
/// 300 ms and 1.0 s at 1 s per call, a tenth of the job, where twice the margin
/// was what kept the rest of the job from being refused. A service whose cap is
/// below the pacer's meets the policy's decrease after at most three such answers
/// (20 ms to 80 ms), a cooldown apart.
pub const WIDENING_DECREASE: f64 = 0.9;

/// How much closer than the spacing slots come while making up for slots nobody
/// took: at most this many times the rate, as long as the window has room.
///
/// A job's first person call waits for the group reads (one latency, see
/// `engine::groups`), so at 1 s per call its first window starts a second late. A
/// window's room is its 50 slots however they come: at twice the rate they took
/// half a second, which a 300-call job then lost at its end (92% of its best at
/// 1 s, BENCHMARKS.md "Short jobs"). At eight times, an eighth (97.5%). Spread
/// over 2.5 ms each at 50/s, the calls of a burst still reach the service one by
/// one; sent all at once, they drew rate-limit answers from the emulator.
pub const MAKE_UP: u32 = 8;

/// The time between two slots at `rate` calls per second, with `margin` added to
/// each window of one second.
fn spacing(rate: f64, margin: Duration) -> Duration {
    (Duration::from_secs(1) + margin).div_f64(rate)
}

/// How many slots one window holds at `rate`.
fn window_slots(rate: f64) -> usize {
    (rate.ceil() as usize).max(1)
}

/// How the rate reacts to the service's answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Aimd {
    /// The configured cap, calls per second.
    pub max_rate: f64,
    /// The rate never drops below this.
    pub min_rate: f64,
    /// On a rate-limit answer the rate is multiplied by this.
    pub decrease: f64,
    /// Each success adds this many calls per second.
    pub increase: f64,
    /// Two decreases are at least this far apart.
    pub cooldown: Duration,
}

impl Aimd {
    /// No cap: the rate is learned from the first rate-limit answer. It moves at
    /// least as fast as under the default cap, whatever the first answer teaches.
    pub fn unpaced() -> Aimd {
        Aimd {
            max_rate: f64::INFINITY,
            ..Aimd::for_cap(f64::from(crate::limits::DEFAULT_QPS))
        }
    }

    pub fn for_cap(max_rate: f64) -> Aimd {
        Aimd {
            max_rate,
            min_rate: (max_rate / 50.0).clamp(0.2, 1.0),
            decrease: 0.7,
            increase: (max_rate / 200.0).max(0.01),
            cooldown: Duration::from_millis(250),
        }
    }

    pub fn after_success(&self, rate: f64) -> f64 {
        (rate + self.increase).min(self.max_rate)
    }

    pub fn after_rate_limited(&self, rate: f64) -> f64 {
        (rate * self.decrease).max(self.min_rate)
    }
}

/// How many calls a window of one second holds at most, as the sending rate an
/// unpaced job measures (more than any service's limit).
const METER_CAP: usize = 10_000;

#[derive(Debug)]
struct State {
    rate: f64,
    /// The latest slots, oldest first: as many as a window holds at the cap. A call
    /// that left late is recorded at its time of leaving.
    recent: VecDeque<Instant>,
    /// No slot before this (a breath after a rate-limit answer).
    not_before: Instant,
    last_decrease: Option<Instant>,
    /// The policy in force (its increase is learned when unpaced).
    policy: Aimd,
    /// While unpaced: the calls handed out over the last second.
    meter: VecDeque<Instant>,
    /// A slot was handed out with nobody waiting for it.
    starved: bool,
    /// A caller is sleeping towards the next slot.
    head: bool,
    /// What the pacer adds to each window of one second, for calls that reach the
    /// service's count later than they left.
    margin: Duration,
}

impl State {
    fn new(policy: Aimd, now: Instant) -> State {
        let rate = policy.max_rate;
        // A window of slots just before now, evenly spaced, so the first ones come
        // evenly spaced too rather than in a burst. (None when unlimited.)
        let n = if rate.is_finite() {
            window_slots(rate)
        } else {
            0
        };
        let step = spacing(rate, SEND_JITTER_ALLOWANCE);
        State {
            rate,
            recent: (0..n)
                .map(|i| now.checked_sub(step * (n - i) as u32).unwrap_or(now))
                .collect(),
            not_before: now,
            last_decrease: None,
            policy,
            meter: VecDeque::new(),
            starved: false,
            head: false,
            margin: SEND_JITTER_ALLOWANCE,
        }
    }

    /// Hands out the next slot at `now`.
    /// The next slot a caller arriving at `now` may have.
    fn next_slot(&self, now: Instant) -> Instant {
        let mut slot = now.max(self.not_before);
        if !self.rate.is_finite() {
            return slot;
        }
        let step = spacing(self.rate, self.margin);
        let n = window_slots(self.rate).min(self.recent.len());
        if let Some(&last) = self.recent.back() {
            slot = slot.max(last + step / MAKE_UP);
        }
        if n > 0 {
            let window_start = self.recent[self.recent.len() - n];
            slot = slot.max(window_start + step * n as u32);
        }
        slot
    }

    /// Hands out `slot` to a caller at `now`.
    fn take(&mut self, slot: Instant, now: Instant) {
        if !self.rate.is_finite() {
            while self
                .meter
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= Duration::from_secs(1))
                || self.meter.len() >= METER_CAP
            {
                self.meter.pop_front();
            }
            self.meter.push_back(now);
            return;
        }
        // A learned rate that grows needs a longer memory.
        let capacity = self.recent.len().max(window_slots(self.rate));
        self.recent.push_back(slot);
        while self.recent.len() > capacity {
            self.recent.pop_front();
        }
    }

    /// Hands out the next slot at `now`.
    #[cfg(test)]
    fn reserve(&mut self, now: Instant) -> Instant {
        let slot = self.next_slot(now);
        self.take(slot, now);
        slot
    }

    /// A call that left at `sent` was answered "too frequent" at `now`.
    ///
    /// One answer per episode: the calls that left before the last decrease were
    /// paced by the rule that drew it, and their answers (a second of them at 1 s
    /// per call) tell nothing new, so they move nothing. A counted answer pauses
    /// every worker at once (no slot before a spacing after the last one), lowers
    /// the rate as the policy says, and widens the margin of every window (twice
    /// as wide, up to [`MAX_MARGIN`]): when the pacer kept to its own window and
    /// was refused all the same, the service counts its calls later than they left,
    /// or over a longer window, and a narrow margin would be refused again. While
    /// the margin grows the rate drops by [`WIDENING_DECREASE`] only; once it is at
    /// its widest, by the policy's decrease.
    fn rate_limited(&mut self, now: Instant, sent: Instant) -> bool {
        let policy = self.policy;
        if self
            .last_decrease
            .is_some_and(|at| sent < at || now.duration_since(at) < policy.cooldown)
        {
            return false;
        }
        if !self.rate.is_finite() {
            // The first rate-limit answer of an unpaced job: start from what it
            // was sending, and climb back at the pace a cap of that rate would.
            let sending = self.meter.len().max(1) as f64;
            self.meter = VecDeque::new();
            self.policy.increase = self.policy.increase.max(sending / 200.0);
            self.rate = sending;
            tracing::info!(
                "the service answered \"too frequent\" at about {sending} calls/s: pacing from now on"
            );
            self.rate = policy.after_rate_limited(self.rate);
        } else if policy.max_rate.is_finite() && self.margin < MAX_MARGIN {
            // Refused while keeping to its windows at the configured cap (a learned
            // rate is the policy's to lower): first take the windows wider, and the
            // rate down only a little.
            self.margin = (self.margin * 2).min(MAX_MARGIN);
            self.rate = (self.rate * WIDENING_DECREASE).max(policy.min_rate);
        } else {
            self.rate = policy.after_rate_limited(self.rate);
        }
        self.last_decrease = Some(now);
        // Leave the service a breath before the next slot.
        let last = self.recent.back().copied().unwrap_or(now);
        self.not_before = last.max(now) + spacing(self.rate, self.margin);
        tracing::debug!(
            "rate-limited: {:.1} calls/s, windows of 1 s + {:?}",
            self.rate,
            self.margin
        );
        true
    }

    /// The call of `slot` left at `at`.
    fn sent(&mut self, slot: Instant, at: Instant) {
        let tolerated = self.margin / 2;
        if at.saturating_duration_since(slot) <= tolerated {
            return;
        }
        if let Some(recorded) = self.recent.iter_mut().rev().find(|t| **t == slot) {
            *recorded = at - tolerated;
        }
    }
}

/// Spaces the calls of all workers. `qps == 0` means unpaced until the service
/// answers 15.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
    /// Wakes the next caller when the head took its slot.
    turn: Condvar,
}

impl Pacer {
    pub fn new(qps: u32) -> Pacer {
        let policy = if qps > 0 {
            Aimd::for_cap(f64::from(qps))
        } else {
            Aimd::unpaced()
        };
        Pacer {
            state: Mutex::new(State::new(policy, Instant::now())),
            turn: Condvar::new(),
        }
    }

    /// Waits for this caller's send slot.
    ///
    /// One caller at a time (the head) sleeps towards the next slot; the others wait
    /// for their turn. A slot is taken only when its time has come, so a decrease
    /// after a rate-limit answer moves every slot not yet taken, however many
    /// workers are waiting.
    /// Returns when the slot was taken: the call leaves now.
    pub fn acquire(&self) -> Instant {
        let mut s = self.state.lock().expect("pacer lock");
        let mut waited = false;
        while s.head {
            waited = true;
            s = self.turn.wait(s).expect("pacer lock");
        }
        loop {
            let now = Instant::now();
            let slot = s.next_slot(now);
            if slot <= now {
                if !waited && s.rate.is_finite() {
                    // Nobody was waiting for this slot.
                    s.starved = true;
                }
                s.take(slot, now);
                s.sent(slot, now);
                s.head = false;
                drop(s);
                self.turn.notify_one();
                return now;
            }
            s.head = true;
            waited = true;
            drop(s);
            std::thread::sleep(slot - now);
            s = self.state.lock().expect("pacer lock");
        }
    }

    /// The call was answered without a rate-limit code.
    pub fn on_success(&self) {
        let mut s = self.state.lock().expect("pacer lock");
        s.rate = s.policy.after_success(s.rate);
    }

    /// The call that left at `sent` (what [`Pacer::acquire`] returned) was
    /// answered "too frequent".
    pub fn on_rate_limited(&self, sent: Instant) {
        self.state
            .lock()
            .expect("pacer lock")
            .rate_limited(Instant::now(), sent);
    }

    /// The current rate, calls per second (infinite while unpaced).
    pub fn rate(&self) -> f64 {
        self.state.lock().expect("pacer lock").rate
    }
}

impl super::concurrency::PaceGauge for Pacer {
    fn paced_rate(&self) -> Option<f64> {
        Some(self.rate()).filter(|r| r.is_finite())
    }

    fn take_starved(&self) -> bool {
        std::mem::take(&mut self.state.lock().expect("pacer lock").starved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_drops_on_rate_limit_and_recovers_to_the_cap() {
        let p = Aimd::for_cap(50.0);
        let mut rate = 50.0;
        rate = p.after_rate_limited(rate);
        assert!((rate - 35.0).abs() < 1e-9);
        for _ in 0..10_000 {
            rate = p.after_success(rate);
        }
        assert_eq!(rate, 50.0, "never above the cap");
        for _ in 0..100 {
            rate = p.after_rate_limited(rate);
        }
        assert!(rate >= p.min_rate && rate > 0.0);
    }

    #[test]
    fn one_burst_of_rate_limit_answers_decreases_once() {
        let pacer = Pacer::new(50);
        let sent = Instant::now();
        for _ in 0..10 {
            pacer.on_rate_limited(sent);
        }
        assert!((pacer.rate() - 45.0).abs() < 1e-9);
    }

    #[test]
    fn slots_are_spaced_at_the_rate() {
        let pacer = Pacer::new(100);
        let start = Instant::now();
        for _ in 0..21 {
            pacer.acquire();
        }
        // 21 slots at 100/s: the last one is 200 ms after the first.
        assert!(start.elapsed() >= Duration::from_millis(195));
    }

    #[test]
    fn a_second_of_slots_leaves_room_for_late_sends() {
        // `rate` spacings span a second plus the allowance: a one-second window
        // never holds `rate + 1` calls, even when the first of them left late.
        for rate in [1.0, 5.0, 20.0, 50.0, 35.7, 1000.0] {
            let span = spacing(rate, SEND_JITTER_ALLOWANCE).mul_f64(rate);
            assert!(
                span + Duration::from_micros(1) >= Duration::from_secs(1) + SEND_JITTER_ALLOWANCE,
                "{rate}: {span:?}"
            );
            assert!(span < Duration::from_millis(1030), "{rate}: {span:?}");
        }
    }

    /// Asserts that any `n + 1` consecutive slots span a second plus the allowance,
    /// and no two come closer than the spacing divided by [`MAKE_UP`].
    fn assert_room_in_every_window(slots: &[Instant], rate: f64) {
        let n = window_slots(rate);
        for pair in slots.windows(2) {
            assert!(
                pair[1] - pair[0] + Duration::from_micros(1)
                    >= spacing(rate, SEND_JITTER_ALLOWANCE) / MAKE_UP
            );
        }
        for w in slots.windows(n + 1) {
            let span = w[n] - w[0] + Duration::from_micros(1);
            assert!(
                span >= Duration::from_secs(1) + SEND_JITTER_ALLOWANCE,
                "{span:?}"
            );
        }
    }

    #[test]
    fn slots_handed_out_together_are_evenly_spaced() {
        let now = Instant::now();
        let mut state = State::new(Aimd::for_cap(50.0), now);
        let slots: Vec<Instant> = (0..120).map(|_| state.reserve(now)).collect();
        assert_eq!(slots[0], now);
        for pair in slots.windows(2) {
            assert_eq!(pair[1] - pair[0], spacing(50.0, SEND_JITTER_ALLOWANCE));
        }
        assert_room_in_every_window(&slots, 50.0);
    }

    #[test]
    fn slots_nobody_took_are_made_up_within_the_window() {
        let start = Instant::now();
        let mut state = State::new(Aimd::for_cap(10.0), start);
        let mut slots: Vec<Instant> = (0..5).map(|_| state.reserve(start)).collect();
        // No worker for 700 ms: the next slots come closer, never crowding a window.
        let late = start + Duration::from_millis(1100);
        for _ in 0..30 {
            slots.push(state.reserve(late));
        }
        assert_eq!(slots[5], late);
        assert_eq!(
            slots[6] - slots[5],
            spacing(10.0, SEND_JITTER_ALLOWANCE) / MAKE_UP
        );
        assert_room_in_every_window(&slots, 10.0);
        // Made up: the 35th slot comes sooner than if the next 30 had been spaced
        // evenly after the gap, i.e. the slots nobody took were not all lost.
        assert!(slots[34] < late + spacing(10.0, SEND_JITTER_ALLOWANCE) * 29);
    }

    #[test]
    fn a_window_of_slots_after_an_idle_second_comes_in_an_eighth_of_it() {
        // The group reads before the first person took a second at 50/s: the next
        // window's 50 slots come 1/MAKE_UP of the spacing apart, not spread over
        // the second (or half of it), and the window after them keeps its room.
        let start = Instant::now();
        let mut state = State::new(Aimd::for_cap(50.0), start);
        let mut slots = vec![state.reserve(start)];
        let after = start + Duration::from_secs(1);
        for _ in 0..100 {
            slots.push(state.reserve(after));
        }
        let step = spacing(50.0, SEND_JITTER_ALLOWANCE);
        assert_eq!(slots[1], after);
        assert_eq!(slots[50] - slots[1], step / MAKE_UP * 49);
        assert!(slots[50] - slots[1] < Duration::from_millis(150));
        assert_room_in_every_window(&slots, 50.0);
        // The next window starts a window after the burst, not later.
        assert_eq!(slots[51], slots[1] + step * 50);
    }

    #[test]
    fn a_late_send_moves_back_the_slot_a_window_after_it() {
        let now = Instant::now();
        let mut state = State::new(Aimd::for_cap(2.0), now);
        let step = spacing(2.0, SEND_JITTER_ALLOWANCE);
        let a = state.reserve(now);
        let b = state.reserve(now);
        assert_eq!(b - a, step);
        // Late within half the allowance: nothing moves.
        state.sent(b, b + SEND_JITTER_ALLOWANCE / 2);
        // 30 ms late: the slot two after it (a window of 2) comes later by the excess.
        state.sent(a, a + Duration::from_millis(30));
        let c = state.reserve(now);
        assert_eq!(
            c - a,
            step * 2 + Duration::from_millis(30) - SEND_JITTER_ALLOWANCE / 2
        );
        let d = state.reserve(now);
        assert_eq!(d - b, step * 2);
    }

    #[test]
    fn zero_starts_unpaced_and_a_rate_limit_answer_paces_it() {
        let pacer = Pacer::new(0);
        let start = Instant::now();
        for _ in 0..200 {
            pacer.acquire();
        }
        assert!(pacer.rate().is_infinite());
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "no wait while unpaced"
        );
        pacer.on_rate_limited(Instant::now());
        // 200 calls in the last second, decreased as any rate-limit answer is.
        assert!((pacer.rate() - 140.0).abs() < 1e-9, "{}", pacer.rate());
        // From now on slots are spaced: 30 slots at 140/s take about 200 ms.
        let start = Instant::now();
        for _ in 0..30 {
            pacer.acquire();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(150),
            "{:?}",
            start.elapsed()
        );
        // And it keeps slowing down on more answers, a cooldown apart.
        std::thread::sleep(Duration::from_millis(260));
        pacer.on_rate_limited(Instant::now());
        assert!((pacer.rate() - 98.0).abs() < 1.0, "{}", pacer.rate());
        // Successes bring it back up, with no cap.
        for _ in 0..1000 {
            pacer.on_success();
        }
        assert!(pacer.rate() > 140.0 && pacer.rate().is_finite());
    }

    #[test]
    fn a_slot_nobody_waited_for_is_told() {
        use crate::engine::concurrency::PaceGauge as _;
        let pacer = Pacer::new(10);
        pacer.acquire();
        assert!(pacer.take_starved(), "the first slot found no one waiting");
        assert!(!pacer.take_starved(), "told once");
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| pacer.acquire());
            }
        });
        // At 10/s right after a slot, all three waited for theirs.
        assert!(!pacer.take_starved());
    }

    /// Many workers against one pacer on a simulated clock: each comes back for its
    /// next slot after a random time of its own (its call's latency and work) and
    /// leaves a little late. Returns the send times, sorted.
    fn simulate(state: &mut State, workers: usize, calls: usize, seed: u64) -> Vec<Instant> {
        let start = Instant::now();
        let mut rng = fastrand::Rng::with_seed(seed);
        // When each worker is next ready.
        let mut ready: Vec<Instant> = (0..workers)
            .map(|_| start + Duration::from_micros(rng.u64(0..50_000)))
            .collect();
        let mut sends = Vec::new();
        while sends.len() < calls {
            // The worker ready first asks first (the head); the pacer gives the slot
            // it would give at the time it asks, or later.
            let (w, &asks) = ready.iter().enumerate().min_by_key(|(_, t)| **t).unwrap();
            let slot = state.next_slot(asks);
            let now = slot.max(asks);
            state.take(slot, now);
            // It leaves up to 15 ms after its slot (signing, the scheduler).
            let left = now + Duration::from_micros(rng.u64(0..15_000));
            state.sent(slot, left);
            sends.push(left);
            ready[w] = left + Duration::from_micros(rng.u64(0..1_200_000));
        }
        sends.sort();
        sends
    }

    #[test]
    fn many_workers_never_crowd_a_window_of_a_second_and_the_margin() {
        // 100 workers at 50/s, calls leaving up to 15 ms late: any 51 sends in a
        // row span a second plus half the margin (the other half is left for the
        // way to the service), whatever the workers' timing.
        for seed in 0..20 {
            let mut state = State::new(Aimd::for_cap(50.0), Instant::now());
            let sends = simulate(&mut state, 100, 600, seed);
            for run in sends.windows(51) {
                let span = run[50] - run[0] + Duration::from_micros(1);
                assert!(
                    span >= Duration::from_secs(1) + SEND_JITTER_ALLOWANCE / 2,
                    "seed {seed}: 51 sends in {span:?}"
                );
            }
            // And the pacer is not idle: 600 calls in about 12 windows.
            let total = *sends.last().unwrap() - sends[0];
            assert!(
                total < Duration::from_millis(12_400),
                "seed {seed}: {total:?}"
            );
        }
    }

    #[test]
    fn a_rate_limit_answer_widens_every_window_once_per_episode() {
        let start = Instant::now();
        let mut state = State::new(Aimd::for_cap(50.0), start);
        let first: Vec<Instant> = (0..100).map(|_| state.reserve(start)).collect();
        // A second of answers to the calls already sent: one decrease, one pause.
        let at = first[99] + Duration::from_millis(300);
        assert!(state.rate_limited(at, first[60]));
        assert!(
            (state.rate - 45.0).abs() < 1e-9,
            "a mild decrease while widening"
        );
        assert_eq!(state.margin, SEND_JITTER_ALLOWANCE * 2);
        for (i, &sent) in first.iter().enumerate() {
            let later = at + Duration::from_millis(10 * i as u64 + 300);
            assert!(!state.rate_limited(later, sent), "call {i} left before");
        }
        assert!((state.rate - 45.0).abs() < 1e-9);
        // No slot for anyone before the pause, then wider windows for all.
        let slot = state.reserve(at);
        assert!(slot >= at + spacing(45.0, SEND_JITTER_ALLOWANCE * 2));
        let mut slots = vec![slot];
        for _ in 0..80 {
            slots.push(state.reserve(slot));
        }
        for run in slots.windows(46) {
            let span = run[45] - run[0] + Duration::from_micros(1);
            assert!(span >= Duration::from_secs(1) + SEND_JITTER_ALLOWANCE * 2);
        }
        // A call sent after the decrease and refused is a new episode.
        let again = slots[40] + Duration::from_millis(300);
        assert!(state.rate_limited(again, slots[40]));
        assert_eq!(state.margin, SEND_JITTER_ALLOWANCE * 4);
        assert!((state.rate - 40.5).abs() < 1e-9);
        // The margin stops growing at its cap; from then on the policy's decrease.
        let mut t = again;
        for _ in 0..2 {
            t += Duration::from_secs(1);
            state.rate_limited(t, t);
        }
        assert_eq!(state.margin, MAX_MARGIN);
        let before = state.rate;
        t += Duration::from_secs(1);
        assert!(state.rate_limited(t, t));
        assert!((state.rate - before * 0.7).abs() < 1e-9);
    }
}
