//! Where the core's work runs. A job with parallel loops is handed whole to a thread of rayon's
//! pool while the caller (the Python thread) waits, so the loops inside it are shared by the pool's
//! threads alone. Otherwise the caller sleeps and wakes once per parallel loop, hundreds of times
//! per objective evaluation on a large model: on two cores an InstEval evaluation took 11–15 ms
//! this way against 15–16 ms from the Python thread (same build, alternating runs on a noisy
//! machine). A job without parallel loops (a small model) runs on the calling thread: the hand-over
//! costs two context switches, which took a sleepstudy fit's core time from about 230 µs to 330 µs.
//!
//! Either way the job gets a cancellation token that the caller's poll hook can set: a job on the
//! calling thread polls through the token as it checks it, while for a job on the pool the waiting
//! caller polls once per [`POLL_INTERVAL`] (Python handles signals on its main thread only).

use std::sync::mpsc::{sync_channel, RecvTimeoutError};

use crate::dense::clear_upper_vector_state;
use crate::interrupt::{Interrupt, Poll, POLL_INTERVAL};

/// Below this many observations the cross-products are computed on the calling thread: handing
/// them to other threads costs more than it saves (cbpp's 56 observations fitted 4% slower).
pub(crate) const PARALLEL_MIN_OBSERVATIONS: usize = 10_000;

/// Run `job` with a token that `poll` can set: on a thread of rayon's pool when it has parallel
/// loops (`parallel`), else here. A job started on a thread of the pool runs there: waiting for
/// it would hold that thread.
pub fn run_job<R: Send>(
    parallel: bool,
    poll: Poll<'_>,
    job: impl FnOnce(&Interrupt) -> R + Send,
) -> R {
    // Whatever the job ran last (faer's kernels among them), the caller gets back clean vector
    // registers: CPython's own floating-point code is legacy SSE (see clear_upper_vector_state).
    if !parallel || rayon::current_thread_index().is_some() {
        let result = job(&Interrupt::polling(poll));
        clear_upper_vector_state(false);
        return result;
    }
    let interrupt = Interrupt::new();
    let result = rayon::in_place_scope(|scope| {
        let (sender, receiver) = sync_channel(1);
        let interrupt = &interrupt;
        scope.spawn(move |_| {
            // The receiver outlives the job, so the result always arrives.
            let result = job(interrupt);
            clear_upper_vector_state(false);
            let _ = sender.send(result);
        });
        loop {
            match receiver.recv_timeout(POLL_INTERVAL) {
                Ok(result) => break Some(result),
                Err(RecvTimeoutError::Timeout) => {
                    if !interrupt.is_requested() && poll() {
                        interrupt.request();
                    }
                }
                // The job panicked; the scope raises its panic here.
                Err(RecvTimeoutError::Disconnected) => break None,
            }
        }
    });
    result.expect("a job that did not panic sends its result")
}

/// Whether the cross-products of `n_obs` observations are computed in parallel, and so whether
/// building a model from them has parallel loops.
pub fn construction_is_parallel(n_obs: usize) -> bool {
    n_obs >= PARALLEL_MIN_OBSERVATIONS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use crate::error::CoreError;

    /// Checks the token until it stops the job; the poll asks to stop on its second call.
    fn stops_on_the_second_poll(parallel: bool) {
        let calls = AtomicUsize::new(0);
        let second = || calls.fetch_add(1, Ordering::Relaxed) == 1;
        let started = Instant::now();
        let (stopped_by, on_pool) = run_job(parallel, &second, |interrupt| {
            while interrupt.check().is_ok() {
                assert!(started.elapsed() < 20 * POLL_INTERVAL, "never stopped");
            }
            (interrupt.check(), rayon::current_thread_index().is_some())
        });
        assert_eq!(stopped_by, Err(CoreError::Interrupted));
        assert_eq!(on_pool, parallel);
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_job_here_polls_through_its_token() {
        stops_on_the_second_poll(false);
    }

    #[test]
    fn a_job_on_the_pool_is_stopped_by_the_waiting_caller() {
        stops_on_the_second_poll(true);
    }

    #[test]
    fn a_short_job_never_polls() {
        let never = || panic!("polled");
        assert_eq!(
            run_job(false, &never, |interrupt| interrupt.check()),
            Ok(())
        );
    }
}
