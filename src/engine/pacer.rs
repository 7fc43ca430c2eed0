//! The pacer every worker shares: at most `qps` calls per second in all, slowing
//! down when the service answers "too frequent" (code 15) and recovering after.
//!
//! The mechanism ([`Pacer::acquire`]) hands out evenly spaced send slots; the policy
//! ([`Aimd`]) decides the rate: multiplicative decrease on a rate-limit answer (at
//! most once per quarter second, so a burst of answers to calls that were already in flight
//! counts once), additive increase on each success, never above the configured cap.
//! A run thus settles just under the service's real cap instead of hammering it.
//!
//! The service counts calls in a one-second window, and a call leaves a little
//! after its slot (signing, reading the photo, the scheduler). Slots are therefore
//! spaced so that any `rate` consecutive slots span one second plus
//! [`SEND_JITTER_ALLOWANCE`]: a call sent up to half that much later than its slot
//! still finds room in the window, with the other half for its way to the service.
//! A call that leaves later than that (the process stalled) moves the slots not yet
//! handed out back by the excess, so the call `rate` slots after it keeps its room
//! too. Spaced at exactly `1/rate`, a single late call would draw a rate-limit
//! answer, and the decrease it causes costs far more than the 1% the allowance
//! gives up.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How late after its slot a call may leave without crowding the service's
/// one-second window.
pub const SEND_JITTER_ALLOWANCE: Duration = Duration::from_millis(10);

/// The time between two slots at `rate` calls per second.
fn spacing(rate: f64) -> Duration {
    (Duration::from_secs(1) + SEND_JITTER_ALLOWANCE).div_f64(rate)
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

#[derive(Debug)]
struct State {
    rate: f64,
    next_slot: Instant,
    last_decrease: Option<Instant>,
    /// The slots handed out before this one were already moved back for a late
    /// send; a send late in the same stall does not move them again.
    shifted_through: Instant,
}

/// Spaces the calls of all workers. `qps == 0` means no limit.
#[derive(Debug)]
pub struct Pacer {
    policy: Option<Aimd>,
    state: Mutex<State>,
}

impl Pacer {
    pub fn new(qps: u32) -> Pacer {
        let policy = (qps > 0).then(|| Aimd::for_cap(f64::from(qps)));
        Pacer {
            state: Mutex::new(State {
                rate: policy.map_or(f64::INFINITY, |p| p.max_rate),
                next_slot: Instant::now(),
                last_decrease: None,
                shifted_through: Instant::now(),
            }),
            policy,
        }
    }

    /// Waits for this caller's send slot.
    pub fn acquire(&self) {
        let Some(_) = self.policy else { return };
        let slot = self.reserve();
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
        }
        self.sent(slot, Instant::now());
    }

    /// Hands out the next send slot.
    fn reserve(&self) -> Instant {
        let mut s = self.state.lock().expect("pacer lock");
        let slot = s.next_slot.max(Instant::now());
        s.next_slot = slot + spacing(s.rate);
        slot
    }

    /// The call of `slot` leaves at `at`. Left later than half the allowance (the
    /// other half covers the way to the service), it would crowd the window of the
    /// call `rate` slots after it: the slots not yet handed out move back by the
    /// excess, once per stall.
    fn sent(&self, slot: Instant, at: Instant) {
        let tolerated = SEND_JITTER_ALLOWANCE / 2;
        let late = at.saturating_duration_since(slot);
        if late <= tolerated {
            return;
        }
        let mut s = self.state.lock().expect("pacer lock");
        if slot >= s.shifted_through {
            s.next_slot += late - tolerated;
            s.shifted_through = s.next_slot;
        }
    }

    /// The call was answered without a rate-limit code.
    pub fn on_success(&self) {
        if let Some(policy) = self.policy {
            let mut s = self.state.lock().expect("pacer lock");
            s.rate = policy.after_success(s.rate);
        }
    }

    /// The call was answered "too frequent".
    pub fn on_rate_limited(&self) {
        if let Some(policy) = self.policy {
            let mut s = self.state.lock().expect("pacer lock");
            let now = Instant::now();
            if s.last_decrease
                .is_none_or(|at| now.duration_since(at) >= policy.cooldown)
            {
                s.rate = policy.after_rate_limited(s.rate);
                s.last_decrease = Some(now);
                // Leave the service a breath before the next slot.
                s.next_slot = s.next_slot.max(now) + spacing(s.rate);
            }
        }
    }

    /// The current rate, calls per second (infinite when unlimited).
    pub fn rate(&self) -> f64 {
        self.state.lock().expect("pacer lock").rate
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
        for _ in 0..10 {
            pacer.on_rate_limited();
        }
        assert!((pacer.rate() - 35.0).abs() < 1e-9);
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
            let span = spacing(rate).mul_f64(rate);
            assert!(
                span + Duration::from_micros(1) >= Duration::from_secs(1) + SEND_JITTER_ALLOWANCE,
                "{rate}: {span:?}"
            );
            assert!(span < Duration::from_millis(1020), "{rate}: {span:?}");
        }
    }

    #[test]
    fn a_late_send_moves_the_later_slots_back_once_per_stall() {
        let pacer = Pacer::new(50);
        let step = spacing(50.0);
        let a = pacer.reserve();
        let b = pacer.reserve();
        assert_eq!(b - a, step);
        // On time, or late within half the allowance: nothing moves.
        pacer.sent(a, a + SEND_JITTER_ALLOWANCE / 2);
        let c = pacer.reserve();
        assert_eq!(c - b, step);
        // 30 ms late: the slots not handed out yet move back by the excess.
        pacer.sent(a, a + Duration::from_millis(30));
        let d = pacer.reserve();
        assert_eq!(
            d - c,
            step + Duration::from_millis(30) - SEND_JITTER_ALLOWANCE / 2
        );
        // The calls of b and c were held up by the same stall: no second move.
        pacer.sent(b, a + Duration::from_millis(30));
        pacer.sent(c, a + Duration::from_millis(30));
        let e = pacer.reserve();
        assert_eq!(e - d, step);
    }

    #[test]
    fn zero_means_unlimited() {
        let pacer = Pacer::new(0);
        pacer.on_rate_limited();
        assert!(pacer.rate().is_infinite());
    }
}
