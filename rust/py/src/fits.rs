//! Fits as typed, immutable Python objects. Their attributes are built once, when the fit
//! arrives from the core: reading one returns the same numpy array every time.

use mixedmodels_core::KenwardRogerAdjustment as CoreAdjustment;
use mixedmodels_core::VarianceParameterDerivatives as CoreDerivatives;
use mixedmodels_core::{Derivatives, GlmmFit, LmmFit, OptSummary};
use numpy::{PyArray1, PyArray2, PyArray3};
use pyo3::prelude::*;

use crate::arrays::{ranef_arrays, shaped, symmetric_matrix, vector};

/// What the optimiser did: lme4's `optinfo`, MixedModels.jl's `OptSummary`.
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct Optimization {
    /// Where the optimiser started.
    #[pyo3(get)]
    theta_start: Py<PyArray1<f64>>,
    #[pyo3(get)]
    n_evaluations: usize,
    /// Why the optimiser stopped, in words.
    #[pyo3(get)]
    status: String,
    #[pyo3(get)]
    converged: bool,
    /// θ components moved onto their bound by the final boundary check.
    #[pyo3(get)]
    n_set_to_boundary: usize,
    /// Gradient and Hessian of the objective at the optimum (lme4's `optinfo$derivs`), if
    /// computed.
    #[pyo3(get)]
    derivatives: Option<Py<ObjectiveDerivatives>>,
}

impl Optimization {
    fn new(
        py: Python<'_>,
        summary: OptSummary,
        derivatives: Option<Derivatives>,
    ) -> PyResult<Py<Self>> {
        let optimization = Self {
            theta_start: vector(py, summary.theta_start),
            n_evaluations: summary.n_evaluations,
            status: summary.status,
            converged: summary.converged,
            n_set_to_boundary: summary.n_set_to_boundary,
            derivatives: derivatives
                .map(|d| Py::new(py, ObjectiveDerivatives::new(py, d)?))
                .transpose()?,
        };
        Py::new(py, optimization)
    }
}

/// Central-difference gradient and Hessian of an objective (lme4's `deriv12`).
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct ObjectiveDerivatives {
    #[pyo3(get)]
    gradient: Py<PyArray1<f64>>,
    /// m × m, symmetric.
    #[pyo3(get)]
    hessian: Py<PyArray2<f64>>,
}

impl ObjectiveDerivatives {
    pub(crate) fn new(py: Python<'_>, derivatives: Derivatives) -> PyResult<Self> {
        let m = derivatives.gradient.len();
        Ok(Self {
            gradient: vector(py, derivatives.gradient),
            hessian: symmetric_matrix(py, derivatives.hessian, m)?,
        })
    }
}

/// The estimates of a linear mixed model fit.
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct LinearFit {
    /// Covariance parameters θ at the optimum.
    #[pyo3(get)]
    theta: Py<PyArray1<f64>>,
    /// Fixed effects β̂.
    #[pyo3(get)]
    beta: Py<PyArray1<f64>>,
    /// Cov(β̂) = σ̂² (R_X R_Xᵀ)⁻¹, p × p.
    #[pyo3(get)]
    beta_covariance: Py<PyArray2<f64>>,
    /// Residual standard deviation σ̂.
    #[pyo3(get)]
    sigma: f64,
    /// Per term, the conditional modes of the random effects as an (n_levels, k) array.
    #[pyo3(get)]
    ranef: Vec<Py<PyArray2<f64>>>,
    /// The optimised criterion: the REML criterion or −2 log L.
    #[pyo3(get)]
    objective: f64,
    /// −2 log L at the estimates, whatever the criterion.
    #[pyo3(get)]
    deviance_ml: f64,
    /// The penalised weighted residual sum of squares r².
    #[pyo3(get)]
    pwrss: f64,
    /// log |L_Z|².
    #[pyo3(get)]
    log_det_random: f64,
    /// log |R_X|².
    #[pyo3(get)]
    log_det_fixed: f64,
    /// Xβ̂ + Zb̂ (without any offset).
    #[pyo3(get)]
    fitted: Py<PyArray1<f64>>,
    /// What the optimiser did.
    #[pyo3(get)]
    optimization: Py<Optimization>,
}

impl LinearFit {
    pub(crate) fn new(py: Python<'_>, fit: LmmFit, shapes: &[(usize, usize)]) -> PyResult<Self> {
        let p = fit.beta.len();
        Ok(Self {
            theta: vector(py, fit.theta),
            beta: vector(py, fit.beta),
            beta_covariance: symmetric_matrix(py, fit.beta_covariance, p)?,
            sigma: fit.sigma,
            ranef: ranef_arrays(py, fit.random_effects, shapes)?,
            objective: fit.objective,
            deviance_ml: fit.deviance_ml,
            pwrss: fit.pwrss,
            log_det_random: fit.log_det_random,
            log_det_fixed: fit.log_det_fixed,
            fitted: vector(py, fit.fitted),
            optimization: Optimization::new(py, fit.optimization, fit.derivatives)?,
        })
    }
}

/// The estimates of a generalized linear mixed model fit.
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct GeneralizedFit {
    /// Covariance parameters θ at the optimum.
    #[pyo3(get)]
    theta: Py<PyArray1<f64>>,
    /// Fixed effects β̂.
    #[pyo3(get)]
    beta: Py<PyArray1<f64>>,
    /// Cov(β̂) from the finite-difference Hessian of the objective in (θ, β) (lme4's default),
    /// p × p; None for nAGQ = 0 or when that Hessian is not positive definite.
    #[pyo3(get)]
    beta_covariance_hessian: Option<Py<PyArray2<f64>>>,
    /// dispersion · (R_X R_Xᵀ)⁻¹ (lme4's `vcov(use.hessian = FALSE)`), p × p.
    #[pyo3(get)]
    beta_covariance_factor: Py<PyArray2<f64>>,
    /// Per term, the conditional modes of the random effects as an (n_levels, k) array.
    #[pyo3(get)]
    ranef: Vec<Py<PyArray2<f64>>>,
    /// The optimised objective: the Laplace value, or lme4's adaptive Gauss–Hermite deviance.
    #[pyo3(get)]
    objective: f64,
    /// −2 log L with every data constant, comparable across nAGQ.
    #[pyo3(get)]
    minus_twice_log_likelihood: f64,
    /// Σ devresᵢ at the estimates (lme4's `deviance(m)`).
    #[pyo3(get)]
    sum_deviance_residuals: f64,
    /// ‖u‖² of the spherical random effects.
    #[pyo3(get)]
    sum_squared_u: f64,
    /// log |L_Z|².
    #[pyo3(get)]
    log_det_random: f64,
    /// The dispersion σ² for families that have one, else 1.
    #[pyo3(get)]
    dispersion: f64,
    /// The linear predictor at the estimates.
    #[pyo3(get)]
    eta: Py<PyArray1<f64>>,
    /// The fitted means g⁻¹(η).
    #[pyo3(get)]
    mu: Py<PyArray1<f64>>,
    /// Whether PIRLS converged at the estimates.
    #[pyo3(get)]
    pirls_converged: bool,
    /// What the optimiser did (its start is θ, then β for fits with a stage two; its evaluations
    /// count both stages).
    #[pyo3(get)]
    optimization: Py<Optimization>,
}

impl GeneralizedFit {
    pub(crate) fn new(py: Python<'_>, fit: GlmmFit, shapes: &[(usize, usize)]) -> PyResult<Self> {
        let p = fit.beta.len();
        Ok(Self {
            theta: vector(py, fit.theta),
            beta: vector(py, fit.beta),
            beta_covariance_hessian: fit
                .beta_covariance_hessian
                .map(|covariance| symmetric_matrix(py, covariance, p))
                .transpose()?,
            beta_covariance_factor: symmetric_matrix(py, fit.beta_covariance_factor, p)?,
            ranef: ranef_arrays(py, fit.random_effects, shapes)?,
            objective: fit.objective,
            minus_twice_log_likelihood: fit.minus_twice_log_likelihood,
            sum_deviance_residuals: fit.sum_deviance_residuals,
            sum_squared_u: fit.sum_squared_u,
            log_det_random: fit.log_det_random,
            dispersion: fit.dispersion,
            eta: vector(py, fit.eta),
            mu: vector(py, fit.mu),
            pirls_converged: fit.pirls_converged,
            optimization: Optimization::new(py, fit.optimization, fit.derivatives)?,
        })
    }
}

/// Derivatives in the variance parameters φ = (θ, σ) of a linear mixed model at its estimates
/// (lmerTest's `vcov_varpar` and `Jac_list`), for Satterthwaite's degrees of freedom.
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct VarianceParameterDerivatives {
    /// H, the Hessian of the deviance in φ (σ not profiled out), k × k with k = n_θ + 1.
    #[pyo3(get)]
    hessian: Py<PyArray2<f64>>,
    /// H's eigenvalues, ascending.
    #[pyo3(get)]
    hessian_eigenvalues: Py<PyArray1<f64>>,
    /// A = 2H⁺, the asymptotic covariance of φ̂, k × k.
    #[pyo3(get)]
    covariance: Py<PyArray2<f64>>,
    /// ∂Cov(β̂)/∂φᵢ, (k, p, p).
    #[pyo3(get)]
    beta_covariance_jacobian: Py<PyArray3<f64>>,
}

impl VarianceParameterDerivatives {
    pub(crate) fn new(
        py: Python<'_>,
        derivatives: CoreDerivatives,
        n_fixed: usize,
    ) -> PyResult<Self> {
        let k = derivatives.hessian_eigenvalues.len();
        // Every matrix is symmetric, so its column-major values read row-major are the same.
        Ok(Self {
            hessian: symmetric_matrix(py, derivatives.hessian, k)?,
            hessian_eigenvalues: vector(py, derivatives.hessian_eigenvalues),
            covariance: symmetric_matrix(py, derivatives.covariance, k)?,
            beta_covariance_jacobian: shaped(
                py,
                derivatives.beta_covariance_jacobian,
                [k, n_fixed, n_fixed],
            )?,
        })
    }
}

/// Kenward and Roger's ingredients at a REML fit's estimates (pbkrtest's `vcovAdj` and its
/// attributes `P` and `W`), over m covariance parameters: every term's covariance elements, then σ².
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct KenwardRogerAdjustment {
    /// Φ = (XᵀV⁻¹X)⁻¹, p × p.
    #[pyo3(get)]
    beta_covariance: Py<PyArray2<f64>>,
    /// Φ_A, the adjusted covariance of β̂, p × p.
    #[pyo3(get)]
    adjusted_beta_covariance: Py<PyArray2<f64>>,
    /// Pᵢ = ∂(XᵀV⁻¹X)/∂γᵢ, (m, p, p).
    #[pyo3(get)]
    information_derivatives: Py<PyArray3<f64>>,
    /// W = 2I⁻¹, the asymptotic covariance of the covariance parameters, m × m.
    #[pyo3(get)]
    parameter_covariance: Py<PyArray2<f64>>,
    /// The smallest |eigenvalue| of the information I.
    #[pyo3(get)]
    smallest_information_eigenvalue: f64,
}

impl KenwardRogerAdjustment {
    pub(crate) fn new(
        py: Python<'_>,
        adjustment: CoreAdjustment,
        n_fixed: usize,
    ) -> PyResult<Self> {
        let m = (adjustment.parameter_covariance.len() as f64)
            .sqrt()
            .round() as usize;
        // Every matrix is symmetric, so its column-major values read row-major are the same.
        Ok(Self {
            beta_covariance: symmetric_matrix(py, adjustment.beta_covariance, n_fixed)?,
            adjusted_beta_covariance: symmetric_matrix(
                py,
                adjustment.adjusted_beta_covariance,
                n_fixed,
            )?,
            information_derivatives: shaped(
                py,
                adjustment.information_derivatives,
                [m, n_fixed, n_fixed],
            )?,
            parameter_covariance: symmetric_matrix(py, adjustment.parameter_covariance, m)?,
            smallest_information_eigenvalue: adjustment.smallest_information_eigenvalue,
        })
    }
}
