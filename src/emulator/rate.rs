//! The emulator's rate limit: a sliding one-second window.
//!
//! A call is admitted when fewer than `qps` calls were admitted in the second that
//! ends at its arrival (the window `(now - 1s, now]`); otherwise it is answered 15
//! and does no work. Refused calls do not count against the window, so a client
//! that keeps to the rate after being refused is served again one second after the
//! burst it sent. `None` (or 0 from the command line) means unlimited.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

/// Arrival times of the calls admitted in the last second.
#[derive(Debug, Clone, Default)]
pub struct RateWindow {
    qps: Option<u32>,
    admitted: VecDeque<Instant>,
}

impl RateWindow {
    pub fn new(qps: Option<u32>) -> Self {
        RateWindow {
            qps: qps.filter(|&q| q > 0),
            admitted: VecDeque::new(),
        }
    }

    /// Changes the cap; the calls already in the window still count.
    pub fn set_qps(&mut self, qps: Option<u32>) {
        self.qps = qps.filter(|&q| q > 0);
    }

    pub fn qps(&self) -> Option<u32> {
        self.qps
    }

    /// Whether a call arriving at `now` is admitted; admitted calls are recorded.
    pub fn admit(&mut self, now: Instant) -> bool {
        let Some(qps) = self.qps else {
            return true;
        };
        while let Some(&oldest) = self.admitted.front() {
            if now.saturating_duration_since(oldest) >= WINDOW {
                self.admitted.pop_front();
            } else {
                break;
            }
        }
        if self.admitted.len() < qps as usize {
            self.admitted.push_back(now);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_qps_calls_per_sliding_second() {
        let t0 = Instant::now();
        let mut w = RateWindow::new(Some(3));
        let at = |ms| t0 + Duration::from_millis(ms);
        assert!(w.admit(at(0)));
        assert!(w.admit(at(100)));
        assert!(w.admit(at(200)));
        assert!(!w.admit(at(300)), "fourth call within the second");
        assert!(!w.admit(at(999)));
        assert!(w.admit(at(1000)), "the call at 0 left the window");
        assert!(!w.admit(at(1050)));
        assert!(w.admit(at(1100)));
        assert!(w.admit(at(1200)));
        assert!(!w.admit(at(1250)));
    }

    #[test]
    fn none_and_zero_are_unlimited() {
        let now = Instant::now();
        for qps in [None, Some(0)] {
            let mut w = RateWindow::new(qps);
            assert!((0..10_000).all(|_| w.admit(now)));
        }
    }

    #[test]
    fn changing_the_cap_applies_at_once() {
        let now = Instant::now();
        let mut w = RateWindow::new(None);
        w.set_qps(Some(1));
        assert!(w.admit(now));
        assert!(!w.admit(now));
        w.set_qps(None);
        assert!(w.admit(now));
    }
}
