//! The calls of `verify` and `rollback`: one at a time, through the engine's
//! [`Pacer`] and retry policy, so an audit or an undo of a large account keeps to the
//! service's rate like a job does.

use crate::engine::pacer::Pacer;
use crate::engine::retry::{Backoff, RetryPolicy};
use crate::service::client::{CallError, Client};
use crate::service::codes::Class;
use std::time::Instant;

/// How `verify` and `rollback` call the service.
#[derive(Debug, Clone)]
pub struct PaceOptions {
    /// Calls per second (0: no limit).
    pub qps: u32,
    pub retry: RetryPolicy,
}

impl Default for PaceOptions {
    fn default() -> Self {
        PaceOptions {
            qps: crate::limits::DEFAULT_QPS,
            retry: RetryPolicy::default(),
        }
    }
}

/// A client whose calls are paced and retried.
pub struct Paced<'a> {
    client: &'a Client,
    pacer: Pacer,
    retry: RetryPolicy,
    rng: fastrand::Rng,
    /// Calls sent, retries included.
    pub calls: u64,
}

impl<'a> Paced<'a> {
    pub fn new(client: &'a Client, options: &PaceOptions) -> Paced<'a> {
        Paced {
            client,
            pacer: Pacer::new(options.qps),
            retry: options.retry.clone(),
            rng: fastrand::Rng::new(),
            calls: 0,
        }
    }

    /// Sends a call, retrying transient errors with backoff and rate-limit answers
    /// at the pacer's lowered rate, within the retry policy's total wait.
    pub fn call<T>(
        &mut self,
        mut f: impl FnMut(&Client) -> Result<T, CallError>,
    ) -> Result<T, CallError> {
        let mut backoff = Backoff::new(&self.retry, self.rng.fork());
        let started = Instant::now();
        loop {
            let left = self.pacer.acquire();
            self.calls += 1;
            let result = f(self.client);
            let class = match &result {
                Ok(_) => Class::Ok,
                Err(err) => err.class(),
            };
            match class {
                Class::RateLimited => {
                    self.pacer.on_rate_limited(left);
                    if started.elapsed() < self.retry.max_total_wait {
                        continue;
                    }
                    return result;
                }
                Class::Transient => {
                    self.pacer.on_success();
                    match backoff.next_delay() {
                        Some(delay) => std::thread::sleep(delay),
                        None => return result,
                    }
                }
                _ => {
                    self.pacer.on_success();
                    return result;
                }
            }
        }
    }
}
