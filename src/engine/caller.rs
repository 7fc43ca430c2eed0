//! One call to the service as the engine makes it: room in flight, a pacer slot,
//! the call, and what its answer means for the next attempt.
//!
//! Every call of a job goes through [`call`], so the pacer hears every rate-limit
//! answer, the flow sees every latency, and transient errors are retried with the
//! same backoff, whichever step (a person's calls, the group reads before them)
//! makes the call.

use super::concurrency::Ending;
use super::retry::Backoff;
use super::Shared;
use crate::service::client::{CallError, Client};
use crate::service::codes::Class;
use std::sync::atomic::Ordering::Relaxed;

/// What a call left behind besides its result.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Sent {
    /// An attempt's answer was lost: the service may have done the work.
    pub in_doubt: bool,
}

/// Sends a call through the pacer, retrying transient errors with backoff and
/// rate-limit answers at the pacer's slower rate, within the retry policy's total
/// wait. Returns the last attempt's result.
pub(super) fn call<T>(
    shared: &Shared<'_>,
    rng: &mut fastrand::Rng,
    sent: &mut Sent,
    mut f: impl FnMut(&Client) -> Result<T, CallError>,
) -> Result<T, CallError> {
    let mut backoff = Backoff::new(&shared.options.retry, rng.fork());
    let started = std::time::Instant::now();
    *sent = Sent::default();
    loop {
        // Room in flight first, then a slot: the workers waiting at the pacer
        // hold their room, so one is ready at every slot.
        let permit = shared.flow.begin();
        shared.pacer.acquire();
        shared.tally.calls.fetch_add(1, Relaxed);
        let at = std::time::Instant::now();
        let result = f(shared.client);
        let ending = Ending::of(&result);
        shared
            .flow
            .end(permit, at.elapsed(), ending, &shared.pacer, shared.tally);
        let class = match &result {
            Ok(_) => {
                shared.pacer.on_success();
                return result;
            }
            Err(err) => {
                sent.in_doubt |= err.outcome_unknown();
                err.class()
            }
        };
        match class {
            Class::RateLimited => {
                // The pacer, not the backoff, spaces the next attempt: a rate-limit
                // answer is the service asking for a lower rate, not a failure of
                // the call. The total wait still bounds it.
                shared.tally.rate_limited.fetch_add(1, Relaxed);
                shared.pacer.on_rate_limited();
                if started.elapsed() < shared.options.retry.max_total_wait
                    && !shared.stop.requested()
                {
                    shared.tally.retries.fetch_add(1, Relaxed);
                    continue;
                }
                return result;
            }
            Class::Transient => shared.pacer.on_success(),
            _ => {
                shared.pacer.on_success();
                return result;
            }
        }
        if shared.stop.requested() {
            return result;
        }
        match backoff.next_delay() {
            Some(delay) => {
                if let Err(err) = &result {
                    tracing::debug!("retrying in {delay:?}: {err}");
                }
                shared.tally.retries.fetch_add(1, Relaxed);
                std::thread::sleep(delay);
            }
            None => return result,
        }
    }
}
