//! The retry policy: how long to wait before sending a call again, and when to stop.
//!
//! Exponential backoff with full jitter, bounded both by the number of attempts and by
//! the total time spent waiting, so a photo can neither be retried forever nor hold a
//! worker for longer than the operator allowed. Whether an error is retried at all is
//! decided by its class (see [`crate::service::codes`]); this module decides only
//! when.

use std::time::Duration;

/// How calls are retried. Every field is configurable from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts of one call in all, the first included.
    pub max_attempts: u32,
    /// The first backoff's upper bound; it doubles at every attempt.
    pub base_delay: Duration,
    /// No single backoff waits longer than this.
    pub max_delay: Duration,
    /// The waits of one call add up to at most this.
    pub max_total_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_total_wait: Duration::from_secs(60),
        }
    }
}

/// The backoff of one call: ask it for the wait before each retry.
#[derive(Debug)]
pub struct Backoff {
    policy: RetryPolicy,
    attempts: u32,
    waited: Duration,
    rng: fastrand::Rng,
}

impl Backoff {
    pub fn new(policy: &RetryPolicy, rng: fastrand::Rng) -> Backoff {
        Backoff {
            policy: policy.clone(),
            attempts: 1,
            waited: Duration::ZERO,
            rng,
        }
    }

    /// The wait before the next attempt, or `None` when the budget is spent.
    pub fn next_delay(&mut self) -> Option<Duration> {
        if self.attempts >= self.policy.max_attempts {
            return None;
        }
        let left = self.policy.max_total_wait.checked_sub(self.waited)?;
        if left.is_zero() {
            return None;
        }
        let exp = self.attempts.saturating_sub(1).min(30);
        let cap = self
            .policy
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.policy.max_delay)
            .min(left);
        // Full jitter: anywhere in [cap/2, cap], so workers that failed together do
        // not come back together.
        let cap_ms = cap.as_millis() as u64;
        let delay = Duration::from_millis(self.rng.u64(cap_ms / 2..=cap_ms));
        self.attempts += 1;
        self.waited += delay;
        Some(delay)
    }

    /// Attempts made so far, the first included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn delays_grow_and_stop_at_max_attempts() {
        let policy = RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
            max_total_wait: Duration::from_secs(60),
        };
        let mut b = Backoff::new(&policy, fastrand::Rng::with_seed(1));
        let d: Vec<Duration> = std::iter::from_fn(|| b.next_delay()).collect();
        assert_eq!(d.len(), 3, "4 attempts = 3 retries");
        assert!(d[0] >= Duration::from_millis(50) && d[0] <= Duration::from_millis(100));
        assert!(d[1] >= Duration::from_millis(100) && d[1] <= Duration::from_millis(200));
        assert!(d[2] >= Duration::from_millis(200) && d[2] <= Duration::from_millis(400));
        assert_eq!(b.attempts(), 4);
    }

    proptest! {
        #[test]
        fn waits_never_exceed_their_bounds(
            max_attempts in 1u32..20,
            base_ms in 1u64..2000,
            max_ms in 1u64..20_000,
            total_ms in 0u64..60_000,
            seed: u64,
        ) {
            let policy = RetryPolicy {
                max_attempts,
                base_delay: Duration::from_millis(base_ms),
                max_delay: Duration::from_millis(max_ms),
                max_total_wait: Duration::from_millis(total_ms),
            };
            let mut b = Backoff::new(&policy, fastrand::Rng::with_seed(seed));
            let delays: Vec<Duration> = std::iter::from_fn(|| b.next_delay()).collect();
            prop_assert!(delays.len() < max_attempts as usize);
            prop_assert!(delays.iter().sum::<Duration>() <= policy.max_total_wait);
            prop_assert!(delays.iter().all(|d| *d <= policy.max_delay));
        }
    }
}
