//! One count model (Poisson or negative binomial) fitted to many responses (genes): the core's
//! batch fit as columnar arrays with one row per gene.

use mixedmodels_core::{
    fit_count_batch as core_fit_count_batch, CountBatchFit as CoreCountBatchFit,
    CountBatchSettings, CountFamily, OptimizerSettings,
};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::arrays::{column_major_view, core_terms, row_major_matrix, shaped, vector, TermArrays};
use crate::batch::batch_design;
use crate::generalized::laplace_objective;
use crate::job::run;
use crate::settings::optimizer_settings;

/// Every gene's estimates, one row per gene (NaN where `errors` says why there are none).
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct CountBatchFit {
    /// θ of every gene, (G, n_theta).
    #[pyo3(get)]
    theta: Py<PyArray2<f64>>,
    /// β of every gene, (G, p).
    #[pyo3(get)]
    beta: Py<PyArray2<f64>>,
    /// Cov(β̂) of every gene, (G, p, p): from the Hessian where `hessian_covariance`.
    #[pyo3(get)]
    beta_covariance: Py<PyArray3<f64>>,
    #[pyo3(get)]
    hessian_covariance: Py<PyArray1<bool>>,
    /// The optimised objective (the Laplace deviance).
    #[pyo3(get)]
    objective: Py<PyArray1<f64>>,
    /// −2 log L with every data constant.
    #[pyo3(get)]
    minus_twice_log_likelihood: Py<PyArray1<f64>>,
    /// The negative binomial's size (NaN for the Poisson).
    #[pyo3(get)]
    size: Py<PyArray1<f64>>,
    #[pyo3(get)]
    converged: Py<PyArray1<bool>>,
    #[pyo3(get)]
    pirls_converged: Py<PyArray1<bool>>,
    /// Observations each gene was fitted to.
    #[pyo3(get)]
    n_obs: Py<PyArray1<usize>>,
    /// Per gene, why it has no estimates, or None.
    #[pyo3(get)]
    errors: Py<PyList>,
}

impl CountBatchFit {
    fn new(py: Python<'_>, fit: CoreCountBatchFit) -> PyResult<Self> {
        let g = fit.n_obs.len();
        let p = fit.n_fixed;
        Ok(Self {
            theta: row_major_matrix(py, fit.theta, g, fit.n_theta)?,
            beta: row_major_matrix(py, fit.beta, g, p)?,
            beta_covariance: shaped(py, fit.beta_covariance, [g, p, p])?,
            hessian_covariance: fit.hessian_covariance.into_pyarray(py).unbind(),
            objective: vector(py, fit.objective),
            minus_twice_log_likelihood: vector(py, fit.minus_twice_log_likelihood),
            size: vector(py, fit.size),
            converged: fit.converged.into_pyarray(py).unbind(),
            pirls_converged: fit.pirls_converged.into_pyarray(py).unbind(),
            n_obs: fit.n_obs.into_pyarray(py).unbind(),
            errors: PyList::new(py, fit.errors)?.unbind(),
        })
    }
}

/// Fit the structure (x: n × p Fortran-ordered, `terms` in lme4's order) with log link and the
/// common `offset` to every column of `y` (n × G, Fortran-ordered counts, NaN = missing):
/// `family` "poisson" or "negative_binomial" (size estimated per gene as glmer.nb), `n_agq` 0 or
/// 1, `laplace` "exact" or "lme4"; each gene from lme4's start, on `threads` threads (0: all);
/// stops early on Ctrl-C.
#[pyfunction]
#[pyo3(signature = (x, terms, y, offset, family, n_agq=1, laplace="exact", factorization="auto", max_evaluations=10_000, threads=0))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_count_batch(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f64>,
    terms: Vec<TermArrays<'_>>,
    y: PyReadonlyArray2<'_, f64>,
    offset: PyReadonlyArray1<'_, f64>,
    family: &str,
    n_agq: usize,
    laplace: &str,
    factorization: &str,
    max_evaluations: i64,
    threads: usize,
) -> PyResult<CountBatchFit> {
    let family = match family {
        "poisson" => CountFamily::Poisson,
        "negative_binomial" => CountFamily::NegativeBinomial,
        other => {
            return Err(PyValueError::new_err(format!(
                "the count family must be 'poisson' or 'negative_binomial', not {other:?}"
            )))
        }
    };
    let laplace = laplace_objective(laplace)?;
    let terms = core_terms(py, &terms)?;
    let design = batch_design(&terms, &x, factorization)?;
    let y = column_major_view(&y, "y")?;
    let offset = offset.as_slice()?;
    // On the pool, so that this thread stays free to watch for Ctrl-C.
    let fit = run(py, true, |interrupt| {
        let settings = CountBatchSettings {
            family,
            n_agq,
            laplace,
            optimizer: optimizer_settings(OptimizerSettings::generalized, max_evaluations)?,
        };
        core_fit_count_batch(design, y, offset, settings, threads, interrupt)
    })?;
    CountBatchFit::new(py, fit)
}
