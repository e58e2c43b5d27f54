//! The linear mixed model as a Python class.

use mixedmodels_core::{
    bootstrap_linear, construction_is_parallel, simulate_linear, FactorizationChoice,
    LinearMixedModel, LinearParameters, OptimizerSettings,
};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::arrays::{column_major_view, core_terms, covariance_arrays, TermArrays};
use crate::bootstrap::LinearBootstrap;
use crate::fits::{
    KenwardRogerAdjustment, LinearFit, ObjectiveDerivatives, VarianceParameterDerivatives,
};
use crate::job::{lock, run};
use crate::profile::LikelihoodProfile;
use crate::settings::optimizer_settings;
use crate::structure::SharedModel;

pub(crate) fn factorization_choice(name: &str) -> PyResult<FactorizationChoice> {
    match name {
        "auto" => Ok(FactorizationChoice::Automatic),
        "blocked" => Ok(FactorizationChoice::Blocked),
        "sparse" => Ok(FactorizationChoice::Sparse),
        other => Err(PyValueError::new_err(format!(
            "factorization must be 'auto', 'blocked' or 'sparse', not {other:?}"
        ))),
    }
}

/// A linear mixed model's structure: the θ-free cross-products of a design (X, random-effects
/// terms, weights), reusable for any number of responses, from any number of threads (calls on
/// one model take turns).
#[pyclass(frozen, module = "mixedmodels._core", name = "LinearMixedModel")]
pub(crate) struct PyLinearMixedModel {
    shared: SharedModel<LinearMixedModel>,
}

#[pymethods]
impl PyLinearMixedModel {
    /// `terms`: one `(codes, n_levels, z)` per random-effects term in lme4's order, `codes` a
    /// uint32 array of levels, `z` an (n, k) C-ordered float64 array.
    #[new]
    #[pyo3(signature = (x, terms, weights=None, factorization="auto"))]
    fn new(
        py: Python<'_>,
        x: Bound<'_, PyArray2<f64>>,
        terms: Vec<TermArrays<'_>>,
        weights: Option<PyReadonlyArray1<'_, f64>>,
        factorization: &str,
    ) -> PyResult<Self> {
        let choice = factorization_choice(factorization)?;
        let terms = core_terms(py, &terms)?;
        let weights = weights.map(|w| w.as_array().to_vec());
        let x_readonly = x.readonly();
        let x_view = column_major_view(&x_readonly, "x")?;
        let model = run(py, construction_is_parallel(x_view.nrows()), |_| {
            LinearMixedModel::new(terms, x_view, weights, choice)
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

    /// The profiled objective (REML criterion or −2 log L) at θ for response y.
    fn objective(
        &self,
        py: Python<'_>,
        y: PyReadonlyArray1<'_, f64>,
        theta: Vec<f64>,
        reml: bool,
    ) -> PyResult<f64> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let y = y.as_slice()?;
        run(py, self.shared.parallel, |_| {
            let mut model = lock(&self.shared.model);
            model.set_response(x_view, y)?;
            model.objective(&theta, reml)
        })
    }

    /// Fit response y: optimise θ with a budget of `max_evaluations` objective evaluations, from
    /// `theta_start` (else the default start), with the trust region's radii where given; with
    /// `derivatives`, also the gradient and Hessian of the objective in θ at θ̂ (lme4's
    /// `calc.derivs`).
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (y, reml, max_evaluations=10_000, theta_start=None, rho_begin=None, rho_end=None, derivatives=true))]
    fn fit(
        &self,
        py: Python<'_>,
        y: PyReadonlyArray1<'_, f64>,
        reml: bool,
        max_evaluations: i64,
        theta_start: Option<Vec<f64>>,
        rho_begin: Option<f64>,
        rho_end: Option<f64>,
        derivatives: bool,
    ) -> PyResult<LinearFit> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let y = y.as_slice()?;
        let fit = run(py, self.shared.parallel, |interrupt| {
            let settings = optimizer_settings(OptimizerSettings::linear, max_evaluations)?
                .with_radii(rho_begin, rho_end)?;
            let mut model = lock(&self.shared.model);
            model.set_response(x_view, y)?;
            let mut fit = match &theta_start {
                Some(start) => model.fit_from(x_view, reml, start, settings, interrupt),
                None => model.fit(x_view, reml, settings, interrupt),
            }?;
            if derivatives {
                fit.derivatives = Some(model.objective_derivatives(&fit.theta, reml, interrupt)?);
            }
            Ok(fit)
        })?;
        LinearFit::new(py, fit, &self.shared.shapes)
    }

    /// Central-difference gradient and Hessian of the profiled objective in θ at `theta` for
    /// response y (lme4's `deriv12` of its deviance function).
    fn objective_derivatives(
        &self,
        py: Python<'_>,
        y: PyReadonlyArray1<'_, f64>,
        theta: Vec<f64>,
        reml: bool,
    ) -> PyResult<ObjectiveDerivatives> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let y = y.as_slice()?;
        let derivatives = run(py, self.shared.parallel, |interrupt| {
            let mut model = lock(&self.shared.model);
            model.set_response(x_view, y)?;
            model.objective_derivatives(&theta, reml, interrupt)
        })?;
        ObjectiveDerivatives::new(py, derivatives)
    }

    /// Derivatives in the variance parameters (θ, σ) at (θ, σ) for response y: the Hessian of the
    /// deviance, A = 2H⁺ and the Jacobian of Cov(β̂) (lmerTest's Satterthwaite ingredients).
    fn variance_parameter_derivatives(
        &self,
        py: Python<'_>,
        y: PyReadonlyArray1<'_, f64>,
        theta: Vec<f64>,
        sigma: f64,
        reml: bool,
    ) -> PyResult<VarianceParameterDerivatives> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let n_fixed = x_view.ncols();
        let y = y.as_slice()?;
        let derivatives = run(py, self.shared.parallel, |interrupt| {
            let mut model = lock(&self.shared.model);
            model.set_response(x_view, y)?;
            model.variance_parameter_derivatives(&theta, sigma, reml, interrupt)
        })?;
        VarianceParameterDerivatives::new(py, derivatives, n_fixed)
    }

    /// Kenward and Roger's adjusted covariance of β̂ and its ingredients at (θ, σ).
    fn kenward_roger_adjustment(
        &self,
        py: Python<'_>,
        theta: Vec<f64>,
        sigma: f64,
    ) -> PyResult<KenwardRogerAdjustment> {
        let x = self.shared.x.bind(py).readonly();
        let n_fixed = column_major_view(&x, "x")?.ncols();
        let adjustment = run(py, self.shared.parallel, |interrupt| {
            lock(&self.shared.model).kenward_roger_adjustment(&theta, sigma, interrupt)
        })?;
        KenwardRogerAdjustment::new(py, adjustment, n_fixed)
    }

    /// Fit response y by ML and profile every parameter's likelihood out to the largest of
    /// `cutoffs` (values of |ζ|), with the interval bounds at each cutoff.
    #[pyo3(signature = (y, cutoffs, max_evaluations=10_000))]
    fn profile(
        &self,
        py: Python<'_>,
        y: PyReadonlyArray1<'_, f64>,
        cutoffs: Vec<f64>,
        max_evaluations: i64,
    ) -> PyResult<LikelihoodProfile> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let y = y.as_slice()?;
        let profile = run(py, self.shared.parallel, |interrupt| {
            let settings = optimizer_settings(OptimizerSettings::linear, max_evaluations)?;
            let mut model = lock(&self.shared.model);
            model.set_response(x_view, y)?;
            model.profile(x_view, &cutoffs, settings, interrupt)
        })?;
        LikelihoodProfile::new(py, profile)
    }

    /// lme4's `hatvalues(m)` at θ: the diagonal of the penalised least-squares hat matrix.
    fn hat_values<'py>(
        &self,
        py: Python<'py>,
        theta: Vec<f64>,
    ) -> PyResult<Bound<'py, PyArray1<f64>>> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        // Observations run in parallel chunks: on the pool.
        let values = run(py, true, |_| {
            lock(&self.shared.model).hat_values(x_view, &theta)
        })?;
        Ok(values.into_pyarray(py))
    }

    /// Conditional covariances of the random effects at (θ, σ): per term an (n_levels, k, k) array.
    fn conditional_covariances<'py>(
        &self,
        py: Python<'py>,
        theta: Vec<f64>,
        sigma: f64,
    ) -> PyResult<Vec<Bound<'py, PyArray3<f64>>>> {
        let tiles = run(py, self.shared.parallel, |_| {
            lock(&self.shared.model).conditional_covariances(&theta, sigma)
        })?;
        covariance_arrays(py, tiles, &self.shared.shapes)
    }

    /// `nsim` responses simulated at (θ, β, σ) with new random effects, plus `offset`: an
    /// (n, nsim) array whose column r is replicate r of `seed`.
    #[pyo3(signature = (theta, beta, sigma, nsim, seed, offset=None))]
    #[allow(clippy::too_many_arguments)]
    fn simulate<'py>(
        &self,
        py: Python<'py>,
        theta: Vec<f64>,
        beta: Vec<f64>,
        sigma: f64,
        nsim: usize,
        seed: u64,
        offset: Option<PyReadonlyArray1<'_, f64>>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let n = x_view.nrows();
        let offset = offset.as_ref().map(|o| o.as_slice()).transpose()?;
        let parameters = LinearParameters {
            theta: &theta,
            beta: &beta,
            sigma,
        };
        let values = run(py, self.shared.parallel, |_| {
            let model = lock(&self.shared.model);
            simulate_linear(&model, x_view, parameters, offset, seed, nsim)
        })?;
        // Column-major (n, nsim): read as (nsim, n) and transposed.
        let array = values.into_pyarray(py).reshape([nsim, n])?;
        Ok(array
            .call_method0("transpose")?
            .cast_into::<PyArray2<f64>>()?)
    }

    /// Parametric bootstrap: `n` responses simulated at (θ, β, σ) (replicates 0..n of `seed`),
    /// each refitted from θ with the same criterion, in parallel; stops early on Ctrl-C.
    #[pyo3(signature = (theta, beta, sigma, reml, n, seed, max_evaluations=10_000))]
    #[allow(clippy::too_many_arguments)]
    fn bootstrap(
        &self,
        py: Python<'_>,
        theta: Vec<f64>,
        beta: Vec<f64>,
        sigma: f64,
        reml: bool,
        n: usize,
        seed: u64,
        max_evaluations: i64,
    ) -> PyResult<LinearBootstrap> {
        let x = self.shared.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let estimates = LinearParameters {
            theta: &theta,
            beta: &beta,
            sigma,
        };
        // On the pool even for a small model, so that this thread stays free to watch for Ctrl-C
        // while the replicates run on the pool's threads.
        let bootstrap = run(py, true, |interrupt| {
            let settings = optimizer_settings(OptimizerSettings::linear, max_evaluations)?;
            let mut model = lock(&self.shared.model);
            bootstrap_linear(
                &mut model, x_view, estimates, reml, seed, n, settings, interrupt,
            )
        })?;
        LinearBootstrap::new(py, bootstrap, theta.len(), x_view.ncols())
    }
}
