//! Cancellation of long core work (Ctrl-C in Python). The optimiser checks an [`Interrupt`] before
//! every objective evaluation, PIRLS before every iteration and the adaptive quadrature between
//! chunks of observations; once a stop is requested they end with [`CoreError::Interrupted`],
//! leaving the model usable for the next call. A stop is requested from another thread
//! ([`Interrupt::request`]) or by a poll hook that the token itself calls from the checks, at most
//! once per [`POLL_INTERVAL`], so a small fit never calls it at all.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{CoreError, Result};

/// How often a stop is looked for: well within the 0.2 s in which Ctrl-C feels immediate.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Whether a poll hook wants the work to stop (e.g. whether a signal handler raised).
pub type Poll<'a> = &'a (dyn Fn() -> bool + Sync);

/// A cancellation token shared by a job and whoever may stop it.
pub struct Interrupt<'a> {
    requested: AtomicBool,
    poll: Option<Poll<'a>>,
    /// Nanoseconds from one poll to the next.
    interval: u64,
    started: Instant,
    /// Nanoseconds after `started` from which the next poll is due.
    next_poll: AtomicU64,
}

impl<'a> Interrupt<'a> {
    /// A token that only [`Self::request`] sets.
    pub(crate) fn new() -> Self {
        Self::with_poll(None, POLL_INTERVAL)
    }

    /// A token whose checks also ask `poll`, at most once per [`POLL_INTERVAL`], whether to stop.
    pub(crate) fn polling(poll: Poll<'a>) -> Self {
        Self::with_poll(Some(poll), POLL_INTERVAL)
    }

    /// A token whose checks ask `poll` at most once per `interval` (from zero: at every check).
    pub(crate) fn with_poll(poll: Option<Poll<'a>>, interval: Duration) -> Self {
        let interval = interval.as_nanos() as u64;
        Self {
            requested: AtomicBool::new(false),
            poll,
            interval,
            started: Instant::now(),
            next_poll: AtomicU64::new(interval),
        }
    }

    /// Ask the work to stop at its next check.
    pub(crate) fn request(&self) {
        self.requested.store(true, Ordering::Relaxed);
    }

    pub(crate) fn is_requested(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }

    /// `Err(CoreError::Interrupted)` once a stop is requested, after polling if a poll is due.
    pub(crate) fn check(&self) -> Result<()> {
        if let Some(poll) = self.poll {
            if !self.is_requested() && self.poll_is_due() && poll() {
                self.request();
            }
        }
        if self.is_requested() {
            Err(CoreError::Interrupted)
        } else {
            Ok(())
        }
    }

    /// Whether the interval has passed since the last poll; if so, the next one is scheduled.
    fn poll_is_due(&self) -> bool {
        let now = self.started.elapsed().as_nanos() as u64;
        let due = self.next_poll.load(Ordering::Relaxed);
        now >= due
            && self
                .next_poll
                .compare_exchange(
                    due,
                    now + self.interval,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_request_from_another_thread_stops_the_next_check() {
        let interrupt = Interrupt::new();
        assert_eq!(interrupt.check(), Ok(()));
        std::thread::scope(|scope| {
            scope.spawn(|| interrupt.request());
        });
        assert_eq!(interrupt.check(), Err(CoreError::Interrupted));
        assert_eq!(interrupt.check(), Err(CoreError::Interrupted));
    }

    #[test]
    fn the_poll_is_asked_at_most_once_per_interval() {
        let calls = AtomicUsize::new(0);
        let stop_on_third = || calls.fetch_add(1, Ordering::Relaxed) == 2;
        let interrupt = Interrupt::polling(&stop_on_third);
        // Checks within the first interval never poll: a small fit pays one clock read per check.
        for _ in 0..1000 {
            interrupt.check().unwrap();
        }
        assert_eq!(calls.load(Ordering::Relaxed), 0);
        let started = Instant::now();
        while interrupt.check().is_ok() {
            assert!(started.elapsed() < 20 * POLL_INTERVAL, "never stopped");
        }
        assert_eq!(calls.load(Ordering::Relaxed), 3);
        // The polls came one interval apart, the first after one interval.
        assert!(started.elapsed() >= 2 * POLL_INTERVAL);
    }
}
