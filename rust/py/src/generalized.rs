//! The generalized linear mixed model as a Python class.

use mixedmodels_core::{
    bootstrap_generalized, construction_is_parallel, simulate_generalized,
    GeneralizedLinearMixedModel, GeneralizedParameters, GlmmControl, LaplaceObjective,
    OptimizerSettings,
};
use numpy::{IntoPyArray, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{column_major_view, core_terms, covariance_arrays, TermArrays};
use crate::bootstrap::GeneralizedBootstrap;
use crate::family::family_from;
use crate::fits::{GeneralizedFit, ObjectiveDerivatives};
use crate::job::{lock, run};
use crate::linear::factorization_choice;
use crate::profile::LikelihoodProfile;
use crate::settings::optimizer_settings;
use crate::structure::SharedModel;

/// Stage two's Laplace objective by name: "exact" or "lme4" (lme4 1.1's).
pub(crate) fn laplace_objective(name: &str) -> PyResult<LaplaceObjective> {
    match name {
        "exact" => Ok(LaplaceObjective::Exact),
        "lme4" => Ok(LaplaceObjective::Lme4),
        other => Err(PyValueError::new_err(format!(
            "the Laplace objective must be 'exact' or 'lme4', not {other:?}"
        ))),
    }
}

/// A generalized linear mixed model: design, response, prior weights, offset and family. Usable
/// from any number of threads (calls on one model take turns).
#[pyclass(
    frozen,
    module = "mixedmodels._core",
    name = "GeneralizedLinearMixedModel"
)]
pub(crate) struct PyGeneralizedLinearMixedModel {
    shared: SharedModel<GeneralizedLinearMixedModel>,
}

#[pymethods]
impl PyGeneralizedLinearMixedModel {
    #[new]
    #[pyo3(signature = (x, terms, y, weights, offset, family, link, negative_binomial_theta=1.0, factorization="auto", laplace="exact", theta_start=None, beta_start=None, initial_stage=true, pirls_tolerance=1e-7))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        x: Bound<'_, PyArray2<f64>>,
        terms: Vec<TermArrays<'_>>,
        y: PyReadonlyArray1<'_, f64>,
        weights: PyReadonlyArray1<'_, f64>,
        offset: PyReadonlyArray1<'_, f64>,
        family: &str,
        link: &str,
        negative_binomial_theta: f64,
        factorization: &str,
        laplace: &str,
        theta_start: Option<Vec<f64>>,
        beta_start: Option<Vec<f64>>,
        initial_stage: bool,
        pirls_tolerance: f64,
    ) -> PyResult<Self> {
        let choice = factorization_choice(factorization)?;
        let laplace = laplace_objective(laplace)?;
        let family = family_from(py, family, link, negative_binomial_theta)?;
        let terms = core_terms(py, &terms)?;
        let (y, weights, offset) = (
            y.as_array().to_vec(),
            weights.as_array().to_vec(),
            offset.as_array().to_vec(),
        );
        let x_readonly = x.readonly();
        let x_view = column_major_view(&x_readonly, "x")?;
        let model = run(py, construction_is_parallel(x_view.nrows()), |_| {
            GeneralizedLinearMixedModel::new(terms, x_view, y, weights, offset, family, choice)
                .and_then(|model| {
                    model.with_laplace(laplace).with_control(GlmmControl {
                        theta_start,
                        beta_start,
                        initial_stage,
                        pirls_tolerance,
                    })
                })
        })?;
        Ok(Self {
            shared: SharedModel::new(model, x),
        })
    }

    /// Whether the general sparse factorisation is in use (else the blocked one).
    #[getter]
    fn is_sparse(&self) -> bool {
        self.shared.is_sparse
    }

    /// Number of covariance parameters θ.
    #[getter]
    fn n_theta(&self) -> usize {
        self.shared.n_theta
    }

    /// Fit with `n_agq` quadrature nodes (0: lme4's nAGQ = 0; 1: Laplace; > 1: adaptive
    /// Gauss–Hermite) and a budget of `max_evaluations` objective evaluations per stage.
    #[pyo3(signature = (n_agq, max_evaluations=10_000, rho_begin=None, rho_end=None))]
    fn fit(
        &self,
        py: Python<'_>,
        n_agq: usize,
        max_evaluations: i64,
        rho_begin: Option<f64>,
        rho_end: Option<f64>,
    ) -> PyResult<GeneralizedFit> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let fit = run(py, self.shared.parallel, |interrupt| {
            let settings = optimizer_settings(OptimizerSettings::generalized, max_evaluations)?
                .with_radii(rho_begin, rho_end)?;
            lock(&self.shared.model).fit(x_view, n_agq, settings, interrupt)
        })?;
        GeneralizedFit::new(py, fit, &self.shared.shapes)
    }

    /// lme4's `glmer.nb`: estimate the negative binomial size of this model's data and fit at it;
    /// returns the size and the fit.
    #[pyo3(signature = (n_agq, max_evaluations=10_000))]
    fn fit_negative_binomial(
        &self,
        py: Python<'_>,
        n_agq: usize,
        max_evaluations: i64,
    ) -> PyResult<(f64, GeneralizedFit)> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let (size, fit) = run(py, self.shared.parallel, |interrupt| {
            let settings = optimizer_settings(OptimizerSettings::generalized, max_evaluations)?;
            lock(&self.shared.model).fit_negative_binomial(x_view, n_agq, settings, interrupt)
        })?;
        Ok((size, GeneralizedFit::new(py, fit, &self.shared.shapes)?))
    }

    /// Fit with `n_agq` ≥ 1 nodes and profile the objective along every parameter out to the
    /// largest of `cutoffs` (values of |ζ|), with the interval bounds at each cutoff.
    #[pyo3(signature = (n_agq, cutoffs, max_evaluations=10_000))]
    fn profile(
        &self,
        py: Python<'_>,
        n_agq: usize,
        cutoffs: Vec<f64>,
        max_evaluations: i64,
    ) -> PyResult<LikelihoodProfile> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let profile = run(py, self.shared.parallel, |interrupt| {
            let settings = optimizer_settings(OptimizerSettings::generalized, max_evaluations)?;
            lock(&self.shared.model).profile(x_view, n_agq, &cutoffs, settings, interrupt)
        })?;
        LikelihoodProfile::new(py, profile)
    }

    /// The objective at θ (lme4's `devFunOnly`): with `beta`, the one of stage two at (θ, β), as
    /// its optimiser minimises it (Laplace for `n_agq` = 1, the adaptive Gauss–Hermite deviance
    /// for more nodes); without, the one of stage one (nAGQ = 0), β from PIRLS. Before any fit,
    /// the stages' starting points are computed first as a fit computes them.
    #[pyo3(signature = (theta, beta=None, n_agq=1))]
    fn objective(
        &self,
        py: Python<'_>,
        theta: Vec<f64>,
        beta: Option<Vec<f64>>,
        n_agq: usize,
    ) -> PyResult<f64> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        run(py, self.shared.parallel, |interrupt| {
            lock(&self.shared.model).objective(x_view, &theta, beta.as_deref(), n_agq, interrupt)
        })
    }

    /// Central-difference gradient and Hessian in (θ, β) at (θ, β) of stage two's objective with
    /// `n_agq` ≥ 1 nodes (lme4's `deriv12`, as `glmer` computes them at its optimum).
    #[pyo3(signature = (theta, beta, n_agq=1))]
    fn objective_derivatives(
        &self,
        py: Python<'_>,
        theta: Vec<f64>,
        beta: Vec<f64>,
        n_agq: usize,
    ) -> PyResult<ObjectiveDerivatives> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let derivatives = run(py, self.shared.parallel, |interrupt| {
            lock(&self.shared.model).objective_derivatives(x_view, &theta, &beta, n_agq, interrupt)
        })?;
        ObjectiveDerivatives::new(py, derivatives)
    }

    /// Conditional covariances of the random effects at (θ, β): per term (n_levels, k, k).
    fn conditional_covariances<'py>(
        &self,
        py: Python<'py>,
        theta: Vec<f64>,
        beta: Vec<f64>,
        dispersion: f64,
    ) -> PyResult<Vec<Bound<'py, PyArray3<f64>>>> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let tiles = run(py, self.shared.parallel, |interrupt| {
            lock(&self.shared.model)
                .conditional_covariances(x_view, &theta, &beta, dispersion, interrupt)
        })?;
        covariance_arrays(py, tiles, &self.shared.shapes)
    }

    /// `nsim` responses simulated at (θ, β) and the dispersion with new random effects
    /// (binomial: proportions of the trials): an (n, nsim) array whose column r is replicate r
    /// of `seed`.
    fn simulate<'py>(
        &self,
        py: Python<'py>,
        theta: Vec<f64>,
        beta: Vec<f64>,
        dispersion: f64,
        nsim: usize,
        seed: u64,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let n = x_view.nrows();
        let values = run(py, self.shared.parallel, |_| {
            let model = lock(&self.shared.model);
            let parameters = GeneralizedParameters {
                theta: &theta,
                beta: &beta,
                dispersion,
            };
            simulate_generalized(&model, x_view, parameters, seed, nsim)
        })?;
        // Column-major (n, nsim): read as (nsim, n) and transposed.
        let array = values.into_pyarray(py).reshape([nsim, n])?;
        Ok(array
            .call_method0("transpose")?
            .cast_into::<PyArray2<f64>>()?)
    }

    /// Parametric bootstrap: `n` responses simulated at (θ, β) and the dispersion (replicates
    /// 0..n of `seed`), each fitted as a new model with `n_agq`, in parallel; stops early on
    /// Ctrl-C.
    #[pyo3(signature = (theta, beta, dispersion, n_agq, n, seed, max_evaluations=10_000))]
    #[allow(clippy::too_many_arguments)]
    fn bootstrap(
        &self,
        py: Python<'_>,
        theta: Vec<f64>,
        beta: Vec<f64>,
        dispersion: f64,
        n_agq: usize,
        n: usize,
        seed: u64,
        max_evaluations: i64,
    ) -> PyResult<GeneralizedBootstrap> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        // On the pool even for a small model, so that this thread stays free to watch for Ctrl-C.
        let bootstrap = run(py, true, |interrupt| {
            let settings = optimizer_settings(OptimizerSettings::generalized, max_evaluations)?;
            let model = lock(&self.shared.model);
            let estimates = GeneralizedParameters {
                theta: &theta,
                beta: &beta,
                dispersion,
            };
            bootstrap_generalized(
                &model, x_view, estimates, n_agq, seed, n, settings, interrupt,
            )
        })?;
        GeneralizedBootstrap::new(py, bootstrap, theta.len(), x_view.ncols())
    }
}
