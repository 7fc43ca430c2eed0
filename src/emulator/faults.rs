//! Fault injection: the emulator can misbehave on purpose, the way the real
//! service and the network between sometimes do, so the client's retries, the
//! pacer and resume can be tested and rehearsed.
//!
//! Every fault is off by default. The decisions come from one seedable RNG, and
//! every call draws the same amount of randomness whatever is decided (one number
//! for the jitter, one per fault kind), so a run with a given seed and the same
//! sequence of calls misbehaves the same way again.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Which faults to inject and how often. Fractions are probabilities in `[0, 1]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Faults {
    /// Extra delay before every call is answered, in milliseconds.
    pub latency_ms: u64,
    /// A random extra delay of up to this many milliseconds, on top of `latency_ms`.
    pub jitter_ms: u64,
    /// Fraction of calls answered 213 (internal error) without doing any work.
    pub error_213: f64,
    /// Fraction of calls answered 15 (rate limited) without doing any work.
    pub rate_limit_15: f64,
    /// Fraction of connections closed after the request was read, without an
    /// answer and before doing the work.
    pub drop_connection: f64,
    /// Fraction of calls whose work is done (the state changes) but whose answer
    /// is lost: the connection is closed instead.
    pub lose_answer: f64,
    /// Fraction of `addface` images refused with the transient code -1200.
    pub transient_image: f64,
    /// Fraction of calls read and never answered, before any work: the connection
    /// is held open, silent, until the client gives up, the fault is turned off or
    /// the emulator stops. A service that accepts and hangs.
    pub hang: f64,
}

impl Faults {
    /// Checks that every fraction is a probability.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("error_213", self.error_213),
            ("rate_limit_15", self.rate_limit_15),
            ("drop_connection", self.drop_connection),
            ("lose_answer", self.lose_answer),
            ("transient_image", self.transient_image),
            ("hang", self.hang),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(format!(
                    "fault fraction {name} = {value} is not within 0..=1"
                ));
            }
        }
        Ok(())
    }
}

/// What happens to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Served normally.
    Serve,
    /// Connection closed after reading the request, before any work.
    Drop,
    /// Answered with this code (213 or 15) without any work.
    Answer(i64),
    /// Served, then the connection is closed instead of answering.
    LoseAnswer,
    /// Held without an answer and without any work.
    Hang,
}

/// The decision for one call: its extra delay and its fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub latency: Duration,
    pub fate: Fate,
}

/// Decides the faults of one call. A hang is checked first, then drop, then 213,
/// then 15, then the lost answer; the first that fires decides. The hang draws its
/// number only when it is asked for, so runs with a seed from before it was added
/// replay the same.
pub fn decide(faults: &Faults, rng: &mut fastrand::Rng) -> Decision {
    use crate::service::codes::code;
    let jitter = rng.u64(0..=faults.jitter_ms);
    let draws = [rng.f64(), rng.f64(), rng.f64(), rng.f64()];
    let hang = faults.hang > 0.0 && rng.f64() < faults.hang;
    let fate = if hang {
        Fate::Hang
    } else if draws[0] < faults.drop_connection {
        Fate::Drop
    } else if draws[1] < faults.error_213 {
        Fate::Answer(code::INTERNAL_ERROR)
    } else if draws[2] < faults.rate_limit_15 {
        Fate::Answer(code::RATE_LIMITED)
    } else if draws[3] < faults.lose_answer {
        Fate::LoseAnswer
    } else {
        Fate::Serve
    };
    Decision {
        latency: Duration::from_millis(faults.latency_ms + jitter),
        fate,
    }
}

/// Whether one `addface` image is refused with the transient code -1200.
pub fn transient_image(faults: &Faults, rng: &mut fastrand::Rng) -> bool {
    rng.f64() < faults.transient_image
}

/// How many faults of each kind were injected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounters {
    /// Calls delayed by `latency_ms`/`jitter_ms` (non-zero delay only).
    pub latency: u64,
    pub error_213: u64,
    pub rate_limit_15: u64,
    pub drop_connection: u64,
    pub lose_answer: u64,
    pub transient_image: u64,
    /// Calls held without an answer.
    pub hang: u64,
    /// Calls answered by [`inject_next`](super::Emulator::inject_next).
    pub injected: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_by_default() {
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..1000 {
            let d = decide(&Faults::default(), &mut rng);
            assert_eq!(d.fate, Fate::Serve);
            assert_eq!(d.latency, Duration::ZERO);
            assert!(!transient_image(&Faults::default(), &mut rng));
        }
    }

    #[test]
    fn certain_faults_always_fire_in_priority_order() {
        let mut rng = fastrand::Rng::with_seed(1);
        let mut f = Faults {
            drop_connection: 1.0,
            error_213: 1.0,
            rate_limit_15: 1.0,
            lose_answer: 1.0,
            ..Faults::default()
        };
        assert_eq!(decide(&f, &mut rng).fate, Fate::Drop);
        f.drop_connection = 0.0;
        assert_eq!(decide(&f, &mut rng).fate, Fate::Answer(213));
        f.error_213 = 0.0;
        assert_eq!(decide(&f, &mut rng).fate, Fate::Answer(15));
        f.rate_limit_15 = 0.0;
        assert_eq!(decide(&f, &mut rng).fate, Fate::LoseAnswer);
        f.hang = 1.0;
        f.drop_connection = 1.0;
        assert_eq!(decide(&f, &mut rng).fate, Fate::Hang);
    }

    #[test]
    fn same_seed_same_decisions_and_fractions_hold() {
        let f = Faults {
            latency_ms: 5,
            jitter_ms: 10,
            error_213: 0.3,
            ..Faults::default()
        };
        let run = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..2000).map(|_| decide(&f, &mut rng)).collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let errors = a.iter().filter(|d| d.fate == Fate::Answer(213)).count();
        assert!((500..700).contains(&errors), "{errors} of 2000 at 0.3");
        assert!(a
            .iter()
            .all(|d| (5..=15).contains(&(d.latency.as_millis() as u64))));
    }

    #[test]
    fn fractions_are_validated() {
        assert!(Faults::default().validate().is_ok());
        let bad = Faults {
            lose_answer: 1.5,
            ..Faults::default()
        };
        assert!(bad.validate().unwrap_err().contains("lose_answer"));
    }
}
