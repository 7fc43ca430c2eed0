//! The emulator's rate limit, under either reading of "50 calls per second".
//!
//! The contract says the service answers 15 past its rate (50 calls per second by
//! default); it does not say how the calls of a second are counted
//! ([`RateReading`], an open point, see [`super::contract`]):
//!
//! - **sliding** (the default): at most `qps` calls whose arrivals fall in any
//!   window of one second, wherever it starts. A call is refused when it and `qps`
//!   calls already admitted would fit in one window of less than a second.
//! - **fixed**: at most `qps` calls in each calendar second (counted from the
//!   emulator's start). Twice `qps` calls may then pass within a few milliseconds
//!   across a second's boundary; a client that keeps to the sliding reading keeps
//!   to this one too.
//!
//! Refused calls do not count, so a client that keeps to the rate after being
//! refused is served again one second after the burst it sent. `None` (or 0 from the
//! command line) means unlimited.
//!
//! # Arrival jitter
//!
//! A threaded service stamps a call when one of its threads reads it, which is a
//! few milliseconds after the call reached it, and not the same few for every call.
//! [`RateWindow::admit`] takes the instant the service stamps (the server draws a
//! shift of up to [`Contract::arrival_jitter_ms`](super::Contract::arrival_jitter_ms)
//! for each call), so arrivals may be counted out of the order they came in: two
//! calls sent 10 ms apart may be counted 2 ms apart. The window is checked around
//! each stamp in both directions for that reason.

use super::contract::RateReading;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

/// How far behind the latest stamp a stamp may come (the largest jitter the
/// emulator draws, see [`super::contract::MAX_ARRIVAL_JITTER_MS`]); admitted stamps
/// older than a window and this are forgotten.
const REORDER: Duration = Duration::from_millis(super::contract::MAX_ARRIVAL_JITTER_MS);

/// The stamps of the calls admitted lately.
#[derive(Debug, Clone)]
pub struct RateWindow {
    qps: Option<u32>,
    reading: RateReading,
    /// Sliding: the stamps admitted, sorted.
    admitted: VecDeque<Instant>,
    /// Fixed: the calendar seconds counted from here.
    epoch: Instant,
    /// Fixed: calls admitted per calendar second, the latest seconds only.
    buckets: VecDeque<(u64, u32)>,
}

impl RateWindow {
    /// A sliding window (the default reading).
    pub fn new(qps: Option<u32>) -> Self {
        RateWindow::with_reading(qps, RateReading::Sliding, Instant::now())
    }

    /// A window of `reading`; fixed seconds are counted from `epoch`.
    pub fn with_reading(qps: Option<u32>, reading: RateReading, epoch: Instant) -> Self {
        RateWindow {
            qps: qps.filter(|&q| q > 0),
            reading,
            admitted: VecDeque::new(),
            epoch,
            buckets: VecDeque::new(),
        }
    }

    /// Changes the cap; the calls already in the window still count.
    pub fn set_qps(&mut self, qps: Option<u32>) {
        self.qps = qps.filter(|&q| q > 0);
    }

    pub fn qps(&self) -> Option<u32> {
        self.qps
    }

    pub fn reading(&self) -> RateReading {
        self.reading
    }

    /// Whether a call stamped at `stamp` is admitted; admitted calls are recorded.
    pub fn admit(&mut self, stamp: Instant) -> bool {
        let Some(qps) = self.qps else {
            return true;
        };
        match self.reading {
            RateReading::Sliding => self.admit_sliding(stamp, qps as usize),
            RateReading::Fixed => self.admit_fixed(stamp, qps),
        }
    }

    fn admit_sliding(&mut self, stamp: Instant, qps: usize) -> bool {
        // Later stamps come at most REORDER before the latest one: what lies a window
        // before that can share a window with none of them.
        let latest = self.admitted.back().map_or(stamp, |&t| t.max(stamp));
        if let Some(horizon) = latest.checked_sub(WINDOW + REORDER) {
            while self.admitted.front().is_some_and(|&t| t < horizon) {
                self.admitted.pop_front();
            }
        }
        // The stamps with this one put in its place; refused when any `qps + 1` of
        // them in a row, this one among them, span less than a window.
        let at = self.admitted.partition_point(|&t| t <= stamp);
        let with = |j: usize| match j.cmp(&at) {
            std::cmp::Ordering::Less => self.admitted[j],
            std::cmp::Ordering::Equal => stamp,
            std::cmp::Ordering::Greater => self.admitted[j - 1],
        };
        let len = self.admitted.len() + 1;
        let crowded = (at.saturating_sub(qps)..=at)
            .take_while(|&i| i + qps < len)
            .any(|i| with(i + qps).saturating_duration_since(with(i)) < WINDOW);
        if crowded {
            return false;
        }
        self.admitted.insert(at, stamp);
        true
    }

    fn admit_fixed(&mut self, stamp: Instant, qps: u32) -> bool {
        let second = stamp.saturating_duration_since(self.epoch).as_secs();
        let count = match self.buckets.iter_mut().find(|(s, _)| *s == second) {
            Some((_, count)) => count,
            None => {
                let at = self.buckets.partition_point(|(s, _)| *s < second);
                self.buckets.insert(at, (second, 0));
                // A stamp comes at most REORDER behind the latest: two seconds kept
                // are enough, a few more cost nothing.
                while self.buckets.len() > 4 {
                    self.buckets.pop_front();
                }
                match self.buckets.iter_mut().find(|(s, _)| *s == second) {
                    Some((_, count)) => count,
                    None => return false,
                }
            }
        };
        if *count < qps {
            *count += 1;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sliding(qps: u32) -> RateWindow {
        RateWindow::new(Some(qps))
    }

    #[test]
    fn admits_qps_calls_per_sliding_second() {
        let t0 = Instant::now();
        let mut w = sliding(3);
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
    fn sliding_refuses_the_extra_call_of_any_window_not_only_a_calendar_second() {
        // Three calls late in one calendar second and one early in the next: four
        // within 300 ms. Fixed seconds admit all four; the sliding reading refuses
        // the fourth, and admits it again a second after the first.
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut fixed = RateWindow::with_reading(Some(3), RateReading::Fixed, t0);
        let mut slide = RateWindow::with_reading(Some(3), RateReading::Sliding, t0);
        for ms in [800, 900, 950] {
            assert!(fixed.admit(at(ms)) && slide.admit(at(ms)));
        }
        assert!(fixed.admit(at(1100)), "a new calendar second");
        assert!(!slide.admit(at(1100)), "the fourth call within 300 ms");
        assert!(!slide.admit(at(1799)));
        assert!(slide.admit(at(1800)), "the call at 800 left the window");
        // The fixed reading counts its second: three more in 1 s..2 s are refused.
        assert!(fixed.admit(at(1200)) && fixed.admit(at(1300)));
        assert!(!fixed.admit(at(1999)));
        assert!(fixed.admit(at(2000)));
    }

    #[test]
    fn sliding_holds_for_stamps_out_of_order() {
        // Jitter stamps a call before one already counted: the windows after it
        // count too, not only the second that ends at its stamp.
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut w = sliding(2);
        assert!(w.admit(at(0)));
        assert!(w.admit(at(1000)));
        assert!(w.admit(at(1050)), "1050 ms from the first of three");
        // Only the call at 0 lies in the second before 980, but 980, 1000 and 1050
        // fall within 70 ms.
        assert!(
            !w.admit(at(980)),
            "stamped after 1000 and 1050, counted with them"
        );
        assert!(w.admit(at(2000)), "1000, 1050 and 2000 span a second");
        assert!(!w.admit(at(1990)), "1050, 1990 and 2000 within a second");
    }

    #[test]
    fn no_window_of_a_second_ever_holds_more_than_qps_admitted_calls() {
        // Random stamps, some out of order: check every window of the admitted ones.
        let t0 = Instant::now();
        let mut rng = fastrand::Rng::with_seed(7);
        for reading in [RateReading::Sliding, RateReading::Fixed] {
            let mut w = RateWindow::with_reading(Some(10), reading, t0);
            let mut admitted = Vec::new();
            let mut arrival = Duration::ZERO;
            for _ in 0..2_000 {
                arrival += Duration::from_micros(rng.u64(0..120_000));
                let stamp = t0 + arrival + Duration::from_micros(rng.u64(0..30_000));
                if w.admit(stamp) {
                    admitted.push(stamp);
                }
            }
            admitted.sort();
            assert!(admitted.len() > 500, "{reading:?}: {}", admitted.len());
            match reading {
                RateReading::Sliding => {
                    for run in admitted.windows(11) {
                        assert!(run[10] - run[0] >= WINDOW, "{:?}", run[10] - run[0]);
                    }
                }
                RateReading::Fixed => {
                    let mut per_second = std::collections::BTreeMap::new();
                    for t in &admitted {
                        *per_second.entry((*t - t0).as_secs()).or_insert(0) += 1;
                    }
                    assert!(per_second.values().all(|&n| n <= 10));
                    assert!(
                        admitted.windows(11).any(|run| run[10] - run[0] < WINDOW),
                        "fixed seconds let more than qps through some sliding window"
                    );
                }
            }
        }
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
