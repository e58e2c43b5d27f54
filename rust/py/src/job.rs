//! The one way the binding runs core work: with the GIL released, on the calling thread or on
//! the core's thread pool (see `mixedmodels_core::run_job`), watching for signals, and with core
//! errors turned into Python exceptions.

use std::sync::{Mutex, MutexGuard, PoisonError};

use mixedmodels_core::{run_job, CoreError, Interrupt};
use pyo3::prelude::*;

use crate::errors::python_error;

/// Run `job` with the GIL released. While it runs, Python's signal handlers run about every 50 ms
/// (on the main thread; elsewhere there is nothing to run); an exception one of them raises
/// (KeyboardInterrupt for Ctrl-C) stops the job at its next check and is the exception raised
/// here, even when the job finished first: the handler has consumed the signal.
pub(crate) fn run<R: Send>(
    py: Python<'_>,
    parallel: bool,
    job: impl FnOnce(&Interrupt) -> Result<R, CoreError> + Send,
) -> PyResult<R> {
    let raised: Mutex<Option<PyErr>> = Mutex::new(None);
    let poll = || match Python::attach(|py| py.check_signals()) {
        Ok(()) => false,
        Err(err) => {
            *lock(&raised) = Some(err);
            true
        }
    };
    let outcome = py.detach(|| run_job(parallel, &poll, job));
    if let Some(err) = lock(&raised).take() {
        return Err(err);
    }
    outcome.map_err(|err| python_error(py, err))
}

/// The value behind `mutex`, even if a thread panicked while holding it: every core call installs
/// what it reads (response, θ, starting points), so a model whose last call panicked is usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
