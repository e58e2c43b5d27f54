//! Case deletion for influence diagnostics: the core's refits without each deletion unit, as
//! columnar arrays with one row per unit.

use mixedmodels_core::{
    generalized_case_deletion as core_generalized, linear_case_deletion as core_linear,
    DeletionFits as CoreDeletionFits, DeletionMethod, DeletionUnits, FullEstimates,
    GeneralizedData, OptimizerSettings,
};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::arrays::{core_terms, row_major_matrix, shaped, vector, TermArrays};
use crate::batch::batch_design;
use crate::family::family_from;
use crate::generalized::laplace_objective;
use crate::job::run;
use crate::settings::optimizer_settings;

/// Every deletion unit's estimates, one row per unit (NaN where `errors` says why there are none).
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct DeletionFits {
    /// θ without each unit, (U, n_theta).
    #[pyo3(get)]
    theta: Py<PyArray2<f64>>,
    /// β without each unit, (U, p).
    #[pyo3(get)]
    beta: Py<PyArray2<f64>>,
    /// Cov(β̂) without each unit, (U, p, p).
    #[pyo3(get)]
    beta_covariance: Py<PyArray3<f64>>,
    /// σ (or √dispersion) without each unit.
    #[pyo3(get)]
    sigma: Py<PyArray1<f64>>,
    #[pyo3(get)]
    converged: Py<PyArray1<bool>>,
    #[pyo3(get)]
    n_evaluations: Py<PyArray1<usize>>,
    /// Rows each unit removes.
    #[pyo3(get)]
    n_rows_deleted: Py<PyArray1<usize>>,
    #[pyo3(get)]
    errors: Py<PyList>,
}

impl DeletionFits {
    fn new(py: Python<'_>, fits: CoreDeletionFits) -> PyResult<Self> {
        let (u, p) = (fits.errors.len(), fits.n_fixed);
        Ok(Self {
            theta: row_major_matrix(py, fits.theta, u, fits.n_theta)?,
            beta: row_major_matrix(py, fits.beta, u, p)?,
            beta_covariance: shaped(py, fits.beta_covariance, [u, p, p])?,
            sigma: vector(py, fits.sigma),
            converged: fits.converged.into_pyarray(py).unbind(),
            n_evaluations: fits.n_evaluations.into_pyarray(py).unbind(),
            n_rows_deleted: fits.n_rows_deleted.into_pyarray(py).unbind(),
            errors: PyList::new(py, fits.errors)?.unbind(),
        })
    }
}

fn deletion_method(name: &str) -> PyResult<DeletionMethod> {
    match name {
        "exact" => Ok(DeletionMethod::Exact),
        "one-step" => Ok(DeletionMethod::OneStep),
        other => Err(PyValueError::new_err(format!(
            "method must be 'exact' or 'one-step', not {other:?}"
        ))),
    }
}

/// Refit a linear mixed model (x: n × p Fortran-ordered, `terms` in lme4's order) without each
/// deletion unit (`units[i]`: row i's unit in 0..n_units) from the full fit's (θ, β, σ), by
/// `method` ("exact" or "one-step"), on `threads` threads (0: all); stops early on Ctrl-C.
#[pyfunction]
#[pyo3(signature = (x, terms, y, units, n_units, reml, theta, beta, sigma, method, weights=None, factorization="auto", max_evaluations=10_000, threads=0))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear_case_deletion(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f64>,
    terms: Vec<TermArrays<'_>>,
    y: PyReadonlyArray1<'_, f64>,
    units: PyReadonlyArray1<'_, u32>,
    n_units: usize,
    reml: bool,
    theta: Vec<f64>,
    beta: Vec<f64>,
    sigma: f64,
    method: &str,
    weights: Option<PyReadonlyArray1<'_, f64>>,
    factorization: &str,
    max_evaluations: i64,
    threads: usize,
) -> PyResult<DeletionFits> {
    let method = deletion_method(method)?;
    let terms = core_terms(py, &terms)?;
    let design = batch_design(&terms, &x, factorization)?;
    let (y, units) = (y.as_slice()?, units.as_slice()?);
    let weights = weights.as_ref().map(|w| w.as_slice()).transpose()?;
    let deletion = DeletionUnits {
        design,
        units,
        n_units,
    };
    let full = FullEstimates {
        theta: &theta,
        beta: &beta,
        sigma,
    };
    // On the pool, so that this thread stays free to watch for Ctrl-C.
    let fits = run(py, true, |interrupt| {
        let settings = optimizer_settings(OptimizerSettings::linear, max_evaluations)?;
        core_linear(
            deletion, y, weights, reml, full, method, settings, threads, interrupt,
        )
    })?;
    DeletionFits::new(py, fits)
}

/// Refit a generalized linear mixed model without each deletion unit, exactly (stage two from
/// the full fit's θ and β); arguments as `GeneralizedLinearMixedModel`'s and
/// `linear_case_deletion`'s.
#[pyfunction]
#[pyo3(signature = (x, terms, y, weights, offset, family, link, units, n_units, theta, beta, negative_binomial_theta=1.0, n_agq=1, factorization="auto", laplace="exact", max_evaluations=10_000, threads=0))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn generalized_case_deletion(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f64>,
    terms: Vec<TermArrays<'_>>,
    y: PyReadonlyArray1<'_, f64>,
    weights: PyReadonlyArray1<'_, f64>,
    offset: PyReadonlyArray1<'_, f64>,
    family: &str,
    link: &str,
    units: PyReadonlyArray1<'_, u32>,
    n_units: usize,
    theta: Vec<f64>,
    beta: Vec<f64>,
    negative_binomial_theta: f64,
    n_agq: usize,
    factorization: &str,
    laplace: &str,
    max_evaluations: i64,
    threads: usize,
) -> PyResult<DeletionFits> {
    let laplace = laplace_objective(laplace)?;
    let family = family_from(py, family, link, negative_binomial_theta)?;
    let terms = core_terms(py, &terms)?;
    let design = batch_design(&terms, &x, factorization)?;
    let deletion = DeletionUnits {
        design,
        units: units.as_slice()?,
        n_units,
    };
    let data = GeneralizedData {
        y: y.as_slice()?,
        prior_weights: weights.as_slice()?,
        offset: offset.as_slice()?,
        family,
        laplace,
        n_agq,
    };
    let full = FullEstimates {
        theta: &theta,
        beta: &beta,
        sigma: 1.0,
    };
    let fits = run(py, true, |interrupt| {
        let settings = optimizer_settings(OptimizerSettings::generalized, max_evaluations)?;
        core_generalized(deletion, data, full, settings, threads, interrupt)
    })?;
    DeletionFits::new(py, fits)
}
