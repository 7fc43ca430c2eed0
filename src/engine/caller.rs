//! One call to the service as the engine makes it: room in flight, a pacer slot,
//! the call, and what its answer means for the next attempt.
//!
//! Every call of a job goes through [`call`], so the pacer hears every rate-limit
//! answer, the flow sees every latency, and transient errors are retried with the
//! same backoff, whichever step (a person's calls, the group reads before them)
//! makes the call.
//!
//! Every attempt also tells the job's [`Silence`](super::silence::Silence) whether
//! the service answered: a call with no answer is sent again past its attempts
//! while the silence is within the limit, and ends the job (a network stop) once it
//! is not.

use super::concurrency::Ending;
use super::retry::Backoff;
use super::silence::Verdict;
use super::Shared;
use crate::service::api::Call;
use crate::service::client::{CallError, Client, Heard, TransportKind, Unreachable};
use crate::service::codes::{self, Class, Outcome};
use std::time::{Duration, Instant};

/// What a call left behind besides its result.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Sent {
    /// An attempt's answer was lost: the service may have done the work.
    pub in_doubt: bool,
}

/// Sends `call` through the pacer (not at all once the job is asked to stop:
/// [`CallError::Stopped`]), retrying transient errors with backoff and
/// rate-limit answers at the pacer's slower rate, within the retry policy's total
/// wait. Returns the last attempt's result.
pub(super) fn call<T>(
    shared: &Shared<'_>,
    rng: &mut fastrand::Rng,
    sent: &mut Sent,
    call: Call,
    mut f: impl FnMut(&Client) -> Result<T, CallError>,
) -> Result<T, CallError> {
    let mut backoff = Backoff::new(&shared.options.retry, rng.fork());
    let started = Instant::now();
    *sent = Sent::default();
    loop {
        // Room in flight first, then a slot: the workers waiting at the pacer
        // hold their room, so one is ready at every slot.
        let permit = shared.flow.begin();
        let sent_at = shared.pacer.acquire();
        // A stop asked while this call waited for its slot: not sent, so no new
        // person is created and no face added after it.
        if shared.stop.requested() {
            drop(permit);
            return Err(CallError::Stopped { call });
        }
        shared.tally.call_sent();
        let at = Instant::now();
        let result = f(shared.client);
        let ending = Ending::of(&result);
        shared
            .flow
            .end(permit, at.elapsed(), ending, &shared.pacer, shared.tally);
        let err = match &result {
            Ok(_) => {
                shared.silence.answered(Instant::now());
                shared.pacer.on_success();
                return result;
            }
            Err(err) => err,
        };
        sent.in_doubt |= err.outcome_unknown();
        // Whether the service's silence lets this call be sent again past its own
        // attempts, or has lasted so long that the job stops.
        let mut ride_through = false;
        match err.heard() {
            Heard::Answer => shared.silence.answered(Instant::now()),
            Heard::NotSent => {}
            Heard::Nothing => match shared.silence.unanswered(at, Instant::now()) {
                Verdict::Wait(_) => ride_through = true,
                Verdict::Spent(silent) => {
                    return Err(no_answer(err, silent, shared.silence.limit()))
                }
            },
        }
        match action(Step::Attempt, err.class(), err.code()) {
            Action::Slow => {
                // The total wait still bounds the attempts at the slower rate.
                shared.tally.rate_limited();
                shared.pacer.on_rate_limited(sent_at);
                if started.elapsed() < shared.options.retry.max_total_wait
                    && !shared.stop.requested()
                {
                    shared.tally.retried();
                    continue;
                }
                return result;
            }
            Action::Retry => shared.pacer.on_success(),
            _ => {
                shared.pacer.on_success();
                return result;
            }
        }
        if shared.stop.requested() {
            return result;
        }
        let delay = match backoff.next_delay() {
            Some(delay) => delay,
            // Past its attempts, a call with no answer waits for the service as long
            // as the job's limit of unanswered time allows.
            None if ride_through => {
                let cap = shared.options.retry.max_delay.as_millis() as u64;
                Duration::from_millis(rng.u64(cap / 2..=cap))
            }
            None => return result,
        };
        if let Err(err) = &result {
            tracing::debug!("retrying in {delay:?}: {err}");
        }
        shared.tally.retried();
        if !sleep_unless_stopped(shared, delay) {
            return result;
        }
    }
}

/// How often a backoff's wait looks whether the job was asked to stop.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Sleeps `delay`, or less if the job is asked to stop meanwhile (by a signal, or
/// by another worker's fatal answer or spent limit of unanswered time); whether the
/// whole wait was slept.
fn sleep_unless_stopped(shared: &Shared<'_>, delay: Duration) -> bool {
    let until = Instant::now() + delay;
    loop {
        if shared.stop.requested() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(STOP_CHECK));
    }
}

/// The error a call ends with when the service has not answered for the job's
/// limit: a network stop, naming the last failure.
fn no_answer(last: &CallError, silent: Duration, limit: Duration) -> CallError {
    CallError::Transport {
        call: last.call(),
        kind: TransportKind::Unreachable(Unreachable::NoAnswer),
        detail: format!(
            "{} s without an answer (limit {} s); the last failure: {last}",
            silent.as_secs(),
            limit.as_secs()
        ),
    }
}

/// Where in a person's flow an answer arrives: the same class of error means a
/// different thing for the seed of a new person than for one image of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// One attempt of any call, inside [`call`]: whether to send it again.
    Attempt,
    /// `newperson` with a seed photo, after its retries.
    Seed,
    /// `addface` for a chunk, the whole call refused after its retries.
    AddFaces,
    /// One image's code in an `addface` answer.
    Image,
    /// A call the person cannot go on without: the group reads, `getinfo`,
    /// `getfaceids`, `addgroupids`, `setinfo`.
    Read,
}

/// What the engine does with an answer at a [`Step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Send the same call again after the backoff.
    Retry,
    /// Lower the shared rate, then send the same call again.
    Slow,
    /// The attempt's answer stands; the step reads it.
    Answer,
    /// The image is on the service as a new face.
    Enroll,
    /// The service already holds the face for the person.
    Duplicate,
    /// The person exists already: read it and bring it in line.
    Reconcile,
    /// The person is not on the service any more: create it again.
    PersonGone,
    /// The person holds all the faces it can: read the count again.
    PersonFull,
    /// The request was over the service's size limit: learn it, cut smaller.
    TooLarge,
    /// The seed photo is refused for now: the next photo seeds the person.
    DeferSeed,
    /// The image is refused for now: it goes to the back of the person's queue.
    Requeue,
    /// The call failed for now: its photos are left for the next run.
    LeavePending,
    /// The photo (or each photo of the call) is refused for good.
    FailPhoto,
    /// One photo of the call, named by the error, cannot be read here: it alone
    /// fails, as unusable input, and the others of its call are sent without it.
    FailUnreadable,
    /// Every photo of the person would be refused so: the person fails.
    FailPerson,
    /// This person cannot go on in this run; its photos stay pending.
    HaltPerson,
    /// Every later call would fail the same way: the job stops.
    StopJob,
}

/// The one table from an answer's class (and its code, where the class alone does
/// not tell whether the image or the person was refused) at a step to the action.
pub(super) fn action(step: Step, class: Class, code: Option<i64>) -> Action {
    use Action::*;
    let about_the_image = code.is_some_and(codes::about_the_image);
    match (step, class) {
        // A rate-limit answer asks for a lower rate, not a failure of the call; the
        // pacer, not the backoff, spaces the next attempt.
        (Step::Attempt, Class::RateLimited) => Slow,
        (Step::Attempt, Class::Transient) => Retry,
        (Step::Attempt, _) => Answer,

        (_, Class::Fatal) => StopJob,

        (Step::Seed, Class::Outcome(Outcome::PersonExists)) => Reconcile,
        (Step::Seed, Class::Outcome(Outcome::TooLarge)) => TooLarge,
        (Step::Seed, Class::Outcome(Outcome::Unreadable)) => FailUnreadable,
        // Refused for now for the image (a download that failed): another photo
        // may seed; for the call: the person waits for the next run.
        (Step::Seed, Class::Transient | Class::RateLimited) if about_the_image => DeferSeed,
        (Step::Seed, Class::Transient | Class::RateLimited) => HaltPerson,
        // A code that names the image, or no code at all, refuses the photo; any
        // other (a group full, a bad parameter) would refuse every photo.
        (Step::Seed, Class::Permanent | Class::Unknown)
            if code.is_none_or(codes::about_the_image) =>
        {
            FailPhoto
        }
        (Step::Seed, _) => FailPerson,

        (Step::AddFaces, Class::Outcome(Outcome::PersonMissing)) => PersonGone,
        (Step::AddFaces, Class::Outcome(Outcome::PersonFull)) => PersonFull,
        (Step::AddFaces, Class::Outcome(Outcome::TooLarge)) => TooLarge,
        // Nothing was sent: the photo that cannot be read fails, not its call.
        (Step::AddFaces, Class::Outcome(Outcome::Unreadable)) => FailUnreadable,
        (Step::AddFaces, Class::Transient | Class::RateLimited) => LeavePending,
        (Step::AddFaces, _) => FailPhoto,

        (Step::Image, Class::Ok) => Enroll,
        (Step::Image, Class::Outcome(Outcome::DuplicateFace)) => Duplicate,
        (Step::Image, Class::Outcome(Outcome::PersonFull)) => PersonFull,
        (Step::Image, Class::Transient | Class::RateLimited) => Requeue,
        (Step::Image, _) => FailPhoto,

        (Step::Read, Class::Outcome(Outcome::PersonMissing)) => PersonGone,
        (Step::Read, _) => HaltPerson,
    }
}

#[cfg(test)]
mod tests {
    use super::{action, Action, Step};
    use crate::service::codes::{self, Class, Outcome};

    #[test]
    fn attempts_are_retried_only_for_transient_and_rate_limited_answers() {
        assert_eq!(action(Step::Attempt, Class::Transient, None), Action::Retry);
        assert_eq!(
            action(Step::Attempt, Class::RateLimited, Some(-1)),
            Action::Slow
        );
        for class in [Class::Ok, Class::Fatal, Class::Permanent, Class::Unknown] {
            assert_eq!(action(Step::Attempt, class, None), Action::Answer);
        }
        let exists = Class::Outcome(Outcome::PersonExists);
        assert_eq!(action(Step::Attempt, exists, Some(-1302)), Action::Answer);
    }

    #[test]
    fn a_fatal_answer_stops_the_job_at_every_step() {
        for step in [Step::Seed, Step::AddFaces, Step::Image, Step::Read] {
            assert_eq!(action(step, Class::Fatal, Some(-3)), Action::StopJob);
        }
    }

    #[test]
    fn the_seed_tells_the_image_from_the_person() {
        let image = -1101;
        assert!(codes::about_the_image(image));
        let person = -1;
        assert!(!codes::about_the_image(person));
        let seed = |class, code| action(Step::Seed, class, code);
        assert_eq!(seed(Class::Transient, Some(image)), Action::DeferSeed);
        assert_eq!(seed(Class::RateLimited, Some(image)), Action::DeferSeed);
        assert_eq!(seed(Class::Transient, None), Action::HaltPerson);
        assert_eq!(seed(Class::Transient, Some(person)), Action::HaltPerson);
        assert_eq!(seed(Class::Permanent, Some(image)), Action::FailPhoto);
        assert_eq!(seed(Class::Unknown, None), Action::FailPhoto);
        assert_eq!(seed(Class::Permanent, Some(person)), Action::FailPerson);
        assert_eq!(seed(Class::Request, Some(image)), Action::FailPerson);
        let exists = Class::Outcome(Outcome::PersonExists);
        assert_eq!(seed(exists, Some(-1302)), Action::Reconcile);
        let big = Class::Outcome(Outcome::TooLarge);
        assert_eq!(seed(big, Some(23)), Action::TooLarge);
        let duplicate = Class::Outcome(Outcome::DuplicateFace);
        assert_eq!(seed(duplicate, Some(-1312)), Action::FailPerson);
    }

    #[test]
    fn a_refused_addface_call_keeps_its_photos_for_now_or_fails_them() {
        let add = |class| action(Step::AddFaces, class, None);
        assert_eq!(
            add(Class::Outcome(Outcome::PersonMissing)),
            Action::PersonGone
        );
        assert_eq!(add(Class::Outcome(Outcome::PersonFull)), Action::PersonFull);
        assert_eq!(add(Class::Outcome(Outcome::TooLarge)), Action::TooLarge);
        assert_eq!(add(Class::Transient), Action::LeavePending);
        assert_eq!(add(Class::RateLimited), Action::LeavePending);
        assert_eq!(add(Class::Permanent), Action::FailPhoto);
        assert_eq!(add(Class::Request), Action::FailPhoto);
        // A photo that cannot be read when the call is built fails alone.
        let unreadable = Class::Outcome(Outcome::Unreadable);
        assert_eq!(add(unreadable), Action::FailUnreadable);
        assert_eq!(action(Step::Seed, unreadable, None), Action::FailUnreadable);
    }

    #[test]
    fn each_image_of_an_addface_answer_is_read_by_its_code() {
        let image = |code: i64| action(Step::Image, codes::class(code), Some(code));
        assert_eq!(image(0), Action::Enroll);
        assert_eq!(image(-1312), Action::Duplicate);
        assert_eq!(image(-1309), Action::PersonFull);
        assert_eq!(image(-1101), Action::FailPhoto);
        let transient = action(Step::Image, Class::Transient, Some(-1400));
        assert_eq!(transient, Action::Requeue);
    }

    #[test]
    fn a_read_the_person_needs_halts_it_unless_it_is_gone() {
        let read = |class| action(Step::Read, class, None);
        assert_eq!(
            read(Class::Outcome(Outcome::PersonMissing)),
            Action::PersonGone
        );
        assert_eq!(read(Class::Transient), Action::HaltPerson);
        assert_eq!(read(Class::Permanent), Action::HaltPerson);
    }
}
