//! How long the service has gone without answering any call, shared by all workers.
//!
//! A call's own retry policy bounds one call, not the job: against a service that
//! accepts connections and never answers, each call spends its attempts on read
//! timeouts and leaves its person for the next run, and the next person does the
//! same, for hours. The job as a whole watches the silence instead: any answer at
//! all (a success, any code, any HTTP status) ends it; a call with no answer (a
//! read timeout, a connection that could not be made or was lost, a tunnel the
//! proxy never opened, a refusal after the service had answered) adds to it. Once
//! the silence has lasted the limit (`--unanswered-limit`), the job stops as a
//! network stop (exit 3), every photo not done left for the next run.
//!
//! While the silence lasts less than the limit, calls that got no answer are sent
//! again with backoff past their attempts: a service restarting (refused
//! connections for a few seconds) is ridden through, not called fatal.
//!
//! The silence is counted from the last answer or from the start of the first
//! unanswered attempt after it, whichever is later, so time the job spent without
//! calling (planning, re-encoding a photo) does not count against the service.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The default limit of unanswered time: long enough for a service's restart or a
/// network's failover, short enough that a dead service costs minutes, not hours.
pub const DEFAULT_UNANSWERED_LIMIT: Duration = Duration::from_secs(300);

/// The silence of the service as the workers saw it.
#[derive(Debug)]
pub struct Silence {
    limit: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    /// When the last answer arrived (the start of the run before any).
    last_answer: Instant,
    /// When the silence began: unset while the last attempt to end was answered.
    since: Option<Instant>,
}

/// What an unanswered attempt means for the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Silent for this long, within the limit: wait and send again.
    Wait(Duration),
    /// Silent for this long, the limit reached: the job stops.
    Spent(Duration),
}

impl Silence {
    /// No silence yet; `now` counts as the last answer.
    pub fn new(limit: Duration, now: Instant) -> Silence {
        Silence {
            limit,
            state: Mutex::new(State {
                last_answer: now,
                since: None,
            }),
        }
    }

    /// The limit of unanswered time.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// An answer arrived at `now`: the silence is over.
    pub fn answered(&self, now: Instant) {
        let mut state = self.state.lock().expect("silence lock");
        state.last_answer = state.last_answer.max(now);
        state.since = None;
    }

    /// An attempt started at `started` ended at `now` with no answer.
    pub fn unanswered(&self, started: Instant, now: Instant) -> Verdict {
        let mut state = self.state.lock().expect("silence lock");
        let last_answer = state.last_answer;
        let since = *state.since.get_or_insert_with(|| started.max(last_answer));
        let silent = now.saturating_duration_since(since);
        if silent >= self.limit {
            Verdict::Spent(silent)
        } else {
            Verdict::Wait(silent)
        }
    }

    /// Whether the silence has lasted the limit at `now`, with no answer since.
    pub fn spent(&self, now: Instant) -> bool {
        let state = self.state.lock().expect("silence lock");
        state
            .since
            .is_some_and(|since| now.saturating_duration_since(since) >= self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn silence_adds_up_across_attempts_and_workers_until_an_answer() {
        let t0 = Instant::now();
        let silence = Silence::new(10 * S, t0);
        assert_eq!(silence.unanswered(t0, t0 + 4 * S), Verdict::Wait(4 * S));
        // Another worker's attempt, started earlier, counts from the same start.
        assert_eq!(silence.unanswered(t0 + S, t0 + 8 * S), Verdict::Wait(8 * S));
        assert!(!silence.spent(t0 + 9 * S));
        assert!(silence.spent(t0 + 10 * S));
        assert_eq!(
            silence.unanswered(t0 + 9 * S, t0 + 11 * S),
            Verdict::Spent(11 * S)
        );
        silence.answered(t0 + 12 * S);
        assert!(!silence.spent(t0 + 30 * S));
        assert_eq!(
            silence.unanswered(t0 + 13 * S, t0 + 15 * S),
            Verdict::Wait(2 * S)
        );
    }

    #[test]
    fn time_without_calls_is_not_silence() {
        let t0 = Instant::now();
        let silence = Silence::new(10 * S, t0);
        silence.answered(t0 + S);
        // An hour of local work, then one timeout: silent for the attempt only.
        let late = t0 + 3600 * S;
        assert_eq!(silence.unanswered(late, late + 3 * S), Verdict::Wait(3 * S));
    }

    #[test]
    fn an_attempt_begun_before_the_last_answer_counts_from_the_answer() {
        let t0 = Instant::now();
        let silence = Silence::new(10 * S, t0);
        silence.answered(t0 + 5 * S);
        assert_eq!(silence.unanswered(t0, t0 + 7 * S), Verdict::Wait(2 * S));
    }
}
