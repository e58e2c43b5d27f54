//! One linear mixed model structure fitted to many responses (genes): the core's batch fit and
//! its Satterthwaite ingredients, as columnar arrays with one row per gene.

use mixedmodels_core::{
    fit_linear_batch as core_fit_linear_batch, linear_batch_kenward_roger as core_kenward_roger,
    linear_batch_variance_parameter_derivatives as core_derivatives, BatchDesign,
    BatchKenwardRoger as CoreKenwardRoger, BatchResponses,
    BatchVarianceParameterDerivatives as CoreDerivatives, LinearBatchFit as CoreBatchFit,
    OptimizerSettings, RandomEffectsTerm,
};
use numpy::{
    IntoPyArray, PyArray1, PyArray2, PyArray3, PyArray4, PyReadonlyArray1, PyReadonlyArray2,
};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::arrays::{column_major_view, core_terms, row_major_matrix, shaped, vector, TermArrays};
use crate::job::run;
use crate::linear::factorization_choice;
use crate::settings::optimizer_settings;

/// Every gene's estimates, one row per gene (NaN where `errors` says why there are none).
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct LinearBatchFit {
    /// θ of every gene, (G, n_theta).
    #[pyo3(get)]
    theta: Py<PyArray2<f64>>,
    /// β of every gene, (G, p).
    #[pyo3(get)]
    beta: Py<PyArray2<f64>>,
    /// Cov(β̂) of every gene, (G, p, p).
    #[pyo3(get)]
    beta_covariance: Py<PyArray3<f64>>,
    #[pyo3(get)]
    sigma: Py<PyArray1<f64>>,
    /// The optimised criterion (REML criterion or −2 log L).
    #[pyo3(get)]
    objective: Py<PyArray1<f64>>,
    /// −2 log L at the estimates.
    #[pyo3(get)]
    deviance_ml: Py<PyArray1<f64>>,
    #[pyo3(get)]
    converged: Py<PyArray1<bool>>,
    #[pyo3(get)]
    n_evaluations: Py<PyArray1<usize>>,
    /// Observations each gene was fitted to.
    #[pyo3(get)]
    n_obs: Py<PyArray1<usize>>,
    /// Per gene, why it has no estimates, or None.
    #[pyo3(get)]
    errors: Py<PyList>,
}

impl LinearBatchFit {
    fn new(py: Python<'_>, fit: CoreBatchFit) -> PyResult<Self> {
        let g = fit.sigma.len();
        let p = fit.n_fixed;
        Ok(Self {
            theta: row_major_matrix(py, fit.theta, g, fit.n_theta)?,
            beta: row_major_matrix(py, fit.beta, g, p)?,
            beta_covariance: shaped(py, fit.beta_covariance, [g, p, p])?,
            sigma: vector(py, fit.sigma),
            objective: vector(py, fit.objective),
            deviance_ml: vector(py, fit.deviance_ml),
            converged: fit.converged.into_pyarray(py).unbind(),
            n_evaluations: fit.n_evaluations.into_pyarray(py).unbind(),
            n_obs: fit.n_obs.into_pyarray(py).unbind(),
            errors: PyList::new(py, fit.errors)?.unbind(),
        })
    }
}

/// Every gene's Satterthwaite ingredients over k = n_θ + 1 variance parameters (NaN where
/// `errors` says why there are none).
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct BatchVarianceParameterDerivatives {
    /// A = 2H⁺ of every gene, (G, k, k).
    #[pyo3(get)]
    covariance: Py<PyArray3<f64>>,
    /// H's eigenvalues of every gene, ascending, (G, k).
    #[pyo3(get)]
    hessian_eigenvalues: Py<PyArray2<f64>>,
    /// ∂Cov(β̂)/∂φᵢ of every gene, (G, k, p, p).
    #[pyo3(get)]
    beta_covariance_jacobian: Py<PyArray4<f64>>,
    #[pyo3(get)]
    errors: Py<PyList>,
}

impl BatchVarianceParameterDerivatives {
    fn new(py: Python<'_>, derivatives: CoreDerivatives, k: usize, p: usize) -> PyResult<Self> {
        let g = derivatives.errors.len();
        Ok(Self {
            covariance: shaped(py, derivatives.covariance, [g, k, k])?,
            hessian_eigenvalues: row_major_matrix(py, derivatives.hessian_eigenvalues, g, k)?,
            beta_covariance_jacobian: shaped(
                py,
                derivatives.beta_covariance_jacobian,
                [g, k, p, p],
            )?,
            errors: PyList::new(py, derivatives.errors)?.unbind(),
        })
    }
}

/// Every gene's Kenward–Roger ingredients over m = n_θ + 1 covariance parameters (NaN where
/// `errors` says why there are none).
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct BatchKenwardRoger {
    /// Φ_A of every gene, (G, p, p).
    #[pyo3(get)]
    adjusted_beta_covariance: Py<PyArray3<f64>>,
    /// The Pᵢ of every gene, (G, m, p, p).
    #[pyo3(get)]
    information_derivatives: Py<PyArray4<f64>>,
    /// W of every gene, (G, m, m).
    #[pyo3(get)]
    parameter_covariance: Py<PyArray3<f64>>,
    #[pyo3(get)]
    errors: Py<PyList>,
}

impl BatchKenwardRoger {
    fn new(py: Python<'_>, adjustments: CoreKenwardRoger, m: usize, p: usize) -> PyResult<Self> {
        let g = adjustments.errors.len();
        Ok(Self {
            adjusted_beta_covariance: shaped(py, adjustments.adjusted_beta_covariance, [g, p, p])?,
            information_derivatives: shaped(py, adjustments.information_derivatives, [g, m, p, p])?,
            parameter_covariance: shaped(py, adjustments.parameter_covariance, [g, m, m])?,
            errors: PyList::new(py, adjustments.errors)?.unbind(),
        })
    }
}

/// The structure every gene (or deletion unit) shares: `terms` (converted by the caller, which
/// owns them), a view of `x` (n × p, Fortran-ordered) and the factorisation.
pub(crate) fn batch_design<'a>(
    terms: &'a [RandomEffectsTerm],
    x: &'a PyReadonlyArray2<'_, f64>,
    factorization: &str,
) -> PyResult<BatchDesign<'a>> {
    Ok(BatchDesign {
        terms,
        x: column_major_view(x, "x")?,
        choice: factorization_choice(factorization)?,
    })
}

/// Views of the responses (n × G, Fortran-ordered) and of the per-gene weights, if given.
fn batch_responses<'a>(
    y: &'a PyReadonlyArray2<'_, f64>,
    weights: &'a Option<PyReadonlyArray2<'_, f64>>,
) -> PyResult<BatchResponses<'a>> {
    Ok(BatchResponses {
        y: column_major_view(y, "y")?,
        weights: weights
            .as_ref()
            .map(|w| column_major_view(w, "weights"))
            .transpose()?,
    })
}

/// Fit the structure (x: n × p Fortran-ordered, `terms` in lme4's order) to every column of `y`
/// (n × G, Fortran-ordered, NaN = missing) with its column of `weights` if given, each gene from
/// lme4's start, on `threads` threads (0: all); stops early on Ctrl-C.
#[pyfunction]
#[pyo3(signature = (x, terms, y, reml, weights=None, factorization="auto", max_evaluations=10_000, threads=0))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_linear_batch(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f64>,
    terms: Vec<TermArrays<'_>>,
    y: PyReadonlyArray2<'_, f64>,
    reml: bool,
    weights: Option<PyReadonlyArray2<'_, f64>>,
    factorization: &str,
    max_evaluations: i64,
    threads: usize,
) -> PyResult<LinearBatchFit> {
    let terms = core_terms(py, &terms)?;
    let design = batch_design(&terms, &x, factorization)?;
    let responses = batch_responses(&y, &weights)?;
    // On the pool, so that this thread stays free to watch for Ctrl-C.
    let fit = run(py, true, |interrupt| {
        let settings = optimizer_settings(OptimizerSettings::linear, max_evaluations)?;
        core_fit_linear_batch(design, responses, reml, settings, threads, interrupt)
    })?;
    LinearBatchFit::new(py, fit)
}

/// Every gene's Satterthwaite ingredients at its (θ, σ) (`theta`: G × n_θ, C-ordered), each
/// gene on its rows and weights as `fit_linear_batch` fits it; stops early on Ctrl-C.
#[pyfunction]
#[pyo3(signature = (x, terms, y, theta, sigma, reml, weights=None, factorization="auto", threads=0))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear_batch_variance_parameter_derivatives(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f64>,
    terms: Vec<TermArrays<'_>>,
    y: PyReadonlyArray2<'_, f64>,
    theta: PyReadonlyArray2<'_, f64>,
    sigma: PyReadonlyArray1<'_, f64>,
    reml: bool,
    weights: Option<PyReadonlyArray2<'_, f64>>,
    factorization: &str,
    threads: usize,
) -> PyResult<BatchVarianceParameterDerivatives> {
    let terms = core_terms(py, &terms)?;
    let design = batch_design(&terms, &x, factorization)?;
    let responses = batch_responses(&y, &weights)?;
    let theta = theta.as_slice()?;
    let sigma = sigma.as_slice()?;
    let k = terms.iter().map(|t| t.k * (t.k + 1) / 2).sum::<usize>() + 1;
    let p = design.x.ncols();
    let derivatives = run(py, true, |interrupt| {
        core_derivatives(design, responses, theta, sigma, reml, threads, interrupt)
    })?;
    BatchVarianceParameterDerivatives::new(py, derivatives, k, p)
}

/// Every gene's Kenward–Roger ingredients at its REML (θ, σ), arguments as
/// `linear_batch_variance_parameter_derivatives`'s; stops early on Ctrl-C.
#[pyfunction]
#[pyo3(signature = (x, terms, y, theta, sigma, weights=None, factorization="auto", threads=0))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear_batch_kenward_roger(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f64>,
    terms: Vec<TermArrays<'_>>,
    y: PyReadonlyArray2<'_, f64>,
    theta: PyReadonlyArray2<'_, f64>,
    sigma: PyReadonlyArray1<'_, f64>,
    weights: Option<PyReadonlyArray2<'_, f64>>,
    factorization: &str,
    threads: usize,
) -> PyResult<BatchKenwardRoger> {
    let terms = core_terms(py, &terms)?;
    let design = batch_design(&terms, &x, factorization)?;
    let responses = batch_responses(&y, &weights)?;
    let theta = theta.as_slice()?;
    let sigma = sigma.as_slice()?;
    let m = terms.iter().map(|t| t.k * (t.k + 1) / 2).sum::<usize>() + 1;
    let p = design.x.ncols();
    let adjustments = run(py, true, |interrupt| {
        core_kenward_roger(design, responses, theta, sigma, threads, interrupt)
    })?;
    BatchKenwardRoger::new(py, adjustments, m, p)
}
