//! Where the core's work runs. A job with parallel loops is handed whole to a thread of rayon's
//! pool while the caller (the Python thread) waits, so the loops inside it are shared by the pool's
//! threads alone. Otherwise the caller sleeps and wakes once per parallel loop, hundreds of times
//! per objective evaluation on a large model: on two cores an InstEval evaluation took 11–15 ms
//! this way against 15–16 ms from the Python thread (same build, alternating runs on a noisy
//! machine). A job without parallel loops (a small model) runs on the calling thread: the hand-over
//! costs two context switches, which took a sleepstudy fit's core time from about 230 µs to 330 µs.

/// Below this many observations the cross-products are computed on the calling thread: handing
/// them to other threads costs more than it saves (cbpp's 56 observations fitted 4% slower).
pub(crate) const PARALLEL_MIN_OBSERVATIONS: usize = 10_000;

/// Run `job`, on a thread of rayon's pool when it has parallel loops (`parallel`), else here.
pub fn run_job<R: Send>(parallel: bool, job: impl FnOnce() -> R + Send) -> R {
    if parallel {
        rayon::scope(|_| job())
    } else {
        job()
    }
}

/// Whether the cross-products of `n_obs` observations are computed in parallel, and so whether
/// building a model from them has parallel loops.
pub fn construction_is_parallel(n_obs: usize) -> bool {
    n_obs >= PARALLEL_MIN_OBSERVATIONS
}
