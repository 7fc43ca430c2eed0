//! The pacer every worker shares: at most `qps` calls per second in all, slowing
//! down when the service answers "too frequent" (code 15) and recovering after.
//!
//! The mechanism ([`Pacer::acquire`]) hands out evenly spaced send slots; the policy
//! ([`Aimd`]) decides the rate: multiplicative decrease on a rate-limit answer (at
//! most once per quarter second, so a burst of answers to calls that were already in flight
//! counts once), additive increase on each success, never above the configured cap.
//! A run thus settles just under the service's real cap instead of hammering it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

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
            }),
            policy,
        }
    }

    /// Waits for this caller's send slot.
    pub fn acquire(&self) {
        let Some(_) = self.policy else { return };
        let slot = {
            let mut s = self.state.lock().expect("pacer lock");
            let now = Instant::now();
            let slot = s.next_slot.max(now);
            s.next_slot = slot + Duration::from_secs_f64(1.0 / s.rate);
            slot
        };
        let now = Instant::now();
        if slot > now {
            std::thread::sleep(slot - now);
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
                s.next_slot = s.next_slot.max(now) + Duration::from_secs_f64(1.0 / s.rate);
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
    fn zero_means_unlimited() {
        let pacer = Pacer::new(0);
        pacer.on_rate_limited();
        assert!(pacer.rate().is_infinite());
    }
}
