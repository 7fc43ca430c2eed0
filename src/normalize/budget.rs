//! The memory that photos being normalized may take at once, shared by the whole process.
//!
//! A photo's working set (its original bytes, its decoded pixels and the scaled copy)
//! is known from its header before any of it is read. Each photo takes that many bytes
//! from one budget before it starts and gives them back when its copy is made, so the
//! memory of normalization is bounded by the budget whatever the number of workers or
//! normalizing threads. A photo larger than the whole budget waits until it is alone and
//! then runs on its own.

use std::sync::{Condvar, Mutex};

/// Bytes of photos in flight, and the most there may be.
pub(super) struct Budget {
    limit: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

/// Bytes taken from a [`Budget`], given back when dropped.
pub(super) struct Permit<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    pub(super) const fn new(limit: u64) -> Budget {
        Budget {
            limit,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Waits until `bytes` fit beside what is in flight, then takes them. A request
    /// larger than the whole budget takes all of it.
    pub(super) fn take(&self, bytes: u64) -> Permit<'_> {
        let bytes = bytes.clamp(1, self.limit);
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used + bytes > self.limit {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += bytes;
        Permit {
            budget: self,
            bytes,
        }
    }

    #[cfg(test)]
    fn in_flight(&self) -> u64 {
        *self.used.lock().unwrap()
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.bytes;
        drop(used);
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn photos_in_flight_never_take_more_than_the_budget() {
        let budget = Budget::new(100);
        let peak = AtomicU64::new(0);
        std::thread::scope(|s| {
            for i in 0..8u64 {
                let (budget, peak) = (&budget, &peak);
                s.spawn(move || {
                    for round in 0..20u64 {
                        // Sizes from 10 to 250: some larger than the whole budget.
                        let want = 10 + (i * 37 + round * 11) % 241;
                        let _permit = budget.take(want);
                        peak.fetch_max(budget.in_flight(), Ordering::SeqCst);
                        std::thread::yield_now();
                    }
                });
            }
        });
        assert!(peak.load(Ordering::SeqCst) <= 100);
        assert!(peak.load(Ordering::SeqCst) > 0);
        assert_eq!(budget.in_flight(), 0);
    }

    #[test]
    fn a_photo_larger_than_the_budget_runs_alone() {
        let budget = Budget::new(100);
        let big = budget.take(1_000);
        assert_eq!(budget.in_flight(), 100);
        drop(big);
        let a = budget.take(60);
        let b = budget.take(40);
        assert_eq!(budget.in_flight(), 100);
        drop((a, b));
        assert_eq!(budget.in_flight(), 0);
    }
}
