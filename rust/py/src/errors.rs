//! The one conversion of core errors into Python exceptions.

use mixedmodels_core::CoreError;
use pyo3::exceptions::PyKeyboardInterrupt;
use pyo3::prelude::*;

/// The Python exception for `err`: the class of `mixedmodels.errors` that names its kind, or
/// `KeyboardInterrupt` for an interruption.
pub(crate) fn python_error(py: Python<'_>, err: CoreError) -> PyErr {
    let class = match err {
        CoreError::InvalidInput(_) => "DataError",
        CoreError::NotPositiveDefinite { .. } | CoreError::Optimization(_) => "ConvergenceError",
        CoreError::Specification(_) => "SpecificationError",
        CoreError::Interrupted => return PyKeyboardInterrupt::new_err(err.to_string()),
    };
    match py
        .import("mixedmodels.errors")
        .and_then(|module| module.getattr(class))
    {
        Ok(class) => PyErr::from_type(
            class.cast_into().expect("an exception class"),
            err.to_string(),
        ),
        Err(import_error) => import_error,
    }
}
