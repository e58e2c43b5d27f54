//! A parametric bootstrap's estimates as a typed, immutable Python object of columnar arrays.

use mixedmodels_core::{
    GeneralizedBootstrap as CoreGeneralizedBootstrap, LinearBootstrap as CoreBootstrap,
};
use numpy::{IntoPyArray, PyArray1, PyArray2};
use pyo3::prelude::*;

use crate::arrays::{row_major_matrix, vector};

/// The estimates of every replicate of a linear mixed model's parametric bootstrap, one row per
/// replicate (NaN where a refit failed).
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct LinearBootstrap {
    /// θ of every refit, (n, n_theta).
    #[pyo3(get)]
    theta: Py<PyArray2<f64>>,
    /// β of every refit, (n, p).
    #[pyo3(get)]
    beta: Py<PyArray2<f64>>,
    /// σ of every refit.
    #[pyo3(get)]
    sigma: Py<PyArray1<f64>>,
    /// The optimised criterion (REML criterion or −2 log L) of every refit.
    #[pyo3(get)]
    objective: Py<PyArray1<f64>>,
    /// Whether every refit's optimiser converged.
    #[pyo3(get)]
    converged: Py<PyArray1<bool>>,
}

impl LinearBootstrap {
    pub(crate) fn new(
        py: Python<'_>,
        bootstrap: CoreBootstrap,
        n_theta: usize,
        n_fixed: usize,
    ) -> PyResult<Self> {
        let n = bootstrap.sigma.len();
        Ok(Self {
            theta: row_major_matrix(py, bootstrap.theta, n, n_theta)?,
            beta: row_major_matrix(py, bootstrap.beta, n, n_fixed)?,
            sigma: vector(py, bootstrap.sigma),
            objective: vector(py, bootstrap.objective),
            converged: bootstrap.converged.into_pyarray(py).unbind(),
        })
    }
}

/// The estimates of every replicate of a generalized linear mixed model's parametric bootstrap,
/// one row per replicate (NaN where a refit failed).
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct GeneralizedBootstrap {
    /// θ of every refit, (n, n_theta).
    #[pyo3(get)]
    theta: Py<PyArray2<f64>>,
    /// β of every refit, (n, p).
    #[pyo3(get)]
    beta: Py<PyArray2<f64>>,
    /// σ = √dispersion of every refit (1 for the families without a dispersion).
    #[pyo3(get)]
    sigma: Py<PyArray1<f64>>,
    /// −2 log L of every refit.
    #[pyo3(get)]
    deviance: Py<PyArray1<f64>>,
    /// Whether every refit's optimiser converged.
    #[pyo3(get)]
    converged: Py<PyArray1<bool>>,
}

impl GeneralizedBootstrap {
    pub(crate) fn new(
        py: Python<'_>,
        bootstrap: CoreGeneralizedBootstrap,
        n_theta: usize,
        n_fixed: usize,
    ) -> PyResult<Self> {
        let n = bootstrap.deviance.len();
        Ok(Self {
            theta: row_major_matrix(py, bootstrap.theta, n, n_theta)?,
            beta: row_major_matrix(py, bootstrap.beta, n, n_fixed)?,
            sigma: vector(py, bootstrap.sigma),
            deviance: vector(py, bootstrap.deviance),
            converged: bootstrap.converged.into_pyarray(py).unbind(),
        })
    }
}
