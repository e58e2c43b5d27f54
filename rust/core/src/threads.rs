//! Where the core's work runs: on rayon's thread pool. Called from outside the pool (the Python
//! thread), a job is handed whole to a pool thread while the caller waits, so the parallel loops
//! inside it are shared by the pool's threads alone. Otherwise the caller sleeps and wakes once per
//! parallel loop, hundreds of times per objective evaluation on a large model. On two cores an
//! InstEval evaluation took 11–15 ms this way against 15–16 ms from the Python thread (same
//! build, alternating runs on a noisy machine).

/// Run `job` on a thread of rayon's pool and return its result.
pub fn in_thread_pool<R: Send>(job: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| job())
}
