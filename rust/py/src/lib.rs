//! Python binding of mixedmodels-core: converts numpy arrays, releases the GIL around every long
//! call (running it on the core's thread pool) and maps core errors onto the classes of `mixedmodels.errors`. No mathematics here.

use faer::MatRef;
use mixedmodels_core::{
    construction_is_parallel, run_job, CoreError, Distribution, FactorizationChoice, Family,
    GeneralizedLinearMixedModel, GlmmFit, LinearMixedModel, Link, LmmFit, OptimizerSettings,
    RandomEffectsTerm,
};
use numpy::{
    IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Signals are not looked at yet.
const NO_POLL: fn() -> bool = || false;

fn python_error(py: Python<'_>, err: CoreError) -> PyErr {
    let class = match err {
        CoreError::InvalidInput(_) => "DataError",
        CoreError::NotPositiveDefinite { .. } | CoreError::Optimization(_) => "ConvergenceError",
        CoreError::Specification(_) => "SpecificationError",
        CoreError::Interrupted => "MixedModelError",
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

/// Python's integers can be negative: a budget below one is the core's specification error.
fn evaluation_budget(max_evaluations: i64) -> usize {
    usize::try_from(max_evaluations).unwrap_or(0)
}

/// A column-major view of a Fortran-ordered float64 matrix.
fn column_major_view<'a>(
    array: &'a PyReadonlyArray2<'_, f64>,
    what: &str,
) -> PyResult<MatRef<'a, f64>> {
    if !array.is_fortran_contiguous() {
        return Err(PyTypeError::new_err(format!(
            "{what} must be a Fortran-ordered float64 array"
        )));
    }
    let shape = array.shape();
    let values = array
        .as_slice()
        .map_err(|_| PyTypeError::new_err(format!("{what} is not contiguous")))?;
    Ok(MatRef::from_column_major_slice(values, shape[0], shape[1]))
}

type TermArrays<'py> = (
    PyReadonlyArray1<'py, u32>,
    usize,
    PyReadonlyArray2<'py, f64>,
);

fn factorization_choice(name: &str) -> PyResult<FactorizationChoice> {
    match name {
        "auto" => Ok(FactorizationChoice::Automatic),
        "blocked" => Ok(FactorizationChoice::Blocked),
        "sparse" => Ok(FactorizationChoice::Sparse),
        other => Err(PyValueError::new_err(format!(
            "factorization must be 'auto', 'blocked' or 'sparse', not {other:?}"
        ))),
    }
}

fn core_terms(py: Python<'_>, terms: &[TermArrays<'_>]) -> PyResult<Vec<RandomEffectsTerm>> {
    terms
        .iter()
        .map(|(codes, n_levels, z)| {
            let k = z.shape()[1];
            let z_values: Vec<f64> = z.as_array().iter().copied().collect();
            RandomEffectsTerm::new(codes.as_array().to_vec(), *n_levels, k, z_values)
                .map_err(|err| python_error(py, err))
        })
        .collect()
}

/// Per term, the conditional covariance tiles as (n_levels, k, k) arrays (row, column order).
fn covariance_arrays<'py>(
    py: Python<'py>,
    tiles: Vec<Vec<f64>>,
    terms: &[RandomEffectsTerm],
) -> PyResult<Vec<Bound<'py, numpy::PyArray3<f64>>>> {
    tiles
        .into_iter()
        .zip(terms)
        .map(|(values, term)| {
            let k = term.k;
            let n_levels = values.len() / (k * k);
            // Tiles are column-major: read as (level, col, row), then swap to (level, row, col).
            let array = values.into_pyarray(py).reshape([n_levels, k, k])?;
            Ok(array
                .call_method1("transpose", (0, 2, 1))?
                .cast_into::<numpy::PyArray3<f64>>()?)
        })
        .collect()
}

/// A linear mixed model's structure: the θ-free cross-products of a design (X, random-effects
/// terms, weights), reusable for any number of responses.
#[pyclass(module = "mixedmodels._core", name = "LinearMixedModel")]
struct PyLinearMixedModel {
    model: LinearMixedModel,
    /// The fixed-effects matrix (n × p, Fortran order), kept rather than copied.
    x: Py<PyArray2<f64>>,
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
        let core_terms = core_terms(py, &terms)?;
        let weights = weights.map(|w| w.as_array().to_vec());
        let x_readonly = x.readonly();
        let x_view = column_major_view(&x_readonly, "x")?;
        let model = py
            .detach(|| {
                run_job(
                    construction_is_parallel(x_view.nrows()),
                    &NO_POLL,
                    |_interrupt| LinearMixedModel::new(core_terms, x_view, weights, choice),
                )
            })
            .map_err(|err| python_error(py, err))?;
        Ok(Self {
            model,
            x: x.clone().unbind(),
        })
    }

    /// Whether the general sparse factorisation is in use (else the blocked one).
    #[getter]
    fn is_sparse(&self) -> bool {
        self.model.is_sparse()
    }

    /// Number of covariance parameters θ.
    #[getter]
    fn n_theta(&self) -> usize {
        self.model.n_theta()
    }

    /// The profiled objective (REML criterion or −2 log L) at θ for response y.
    fn objective(
        &mut self,
        py: Python<'_>,
        y: PyReadonlyArray1<'_, f64>,
        theta: Vec<f64>,
        reml: bool,
    ) -> PyResult<f64> {
        let x = self.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let y = y.as_slice()?;
        let model = &mut self.model;
        let parallel = model.is_parallel();
        py.detach(|| {
            run_job(parallel, &NO_POLL, |_interrupt| {
                model.set_response(x_view, y)?;
                model.objective(&theta, reml)
            })
        })
        .map_err(|err| python_error(py, err))
    }

    /// Fit response y: optimise θ, then return the estimates as a dict of numpy arrays and numbers.
    #[pyo3(signature = (y, reml, max_evaluations=10_000))]
    fn fit<'py>(
        &mut self,
        py: Python<'py>,
        y: PyReadonlyArray1<'_, f64>,
        reml: bool,
        max_evaluations: i64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let settings = OptimizerSettings::linear(evaluation_budget(max_evaluations))
            .map_err(|err| python_error(py, err))?;
        let x = self.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let y = y.as_slice()?;
        let model = &mut self.model;
        let parallel = model.is_parallel();
        let fit = py
            .detach(|| {
                run_job(parallel, &NO_POLL, |_interrupt| {
                    model.set_response(x_view, y)?;
                    model.fit(x_view, reml, settings, _interrupt)
                })
            })
            .map_err(|err| python_error(py, err))?;
        fit_to_dict(py, fit, &self.model)
    }

    /// Conditional covariances of the random effects at (θ, σ): per term an (n_levels, k, k) array.
    fn conditional_covariances<'py>(
        &mut self,
        py: Python<'py>,
        theta: Vec<f64>,
        sigma: f64,
    ) -> PyResult<Vec<Bound<'py, numpy::PyArray3<f64>>>> {
        let model = &mut self.model;
        let parallel = model.is_parallel();
        let tiles = py
            .detach(|| {
                run_job(parallel, &NO_POLL, |_interrupt| {
                    model.conditional_covariances(&theta, sigma)
                })
            })
            .map_err(|err| python_error(py, err))?;
        covariance_arrays(py, tiles, self.model.terms())
    }
}

/// Per term, the random effects as an (n_levels, k) array.
fn ranef_arrays<'py>(
    py: Python<'py>,
    random_effects: Vec<Vec<f64>>,
    terms: &[RandomEffectsTerm],
) -> PyResult<Vec<Bound<'py, PyAny>>> {
    random_effects
        .into_iter()
        .zip(terms)
        .map(|(b, term)| {
            Ok(b.into_pyarray(py)
                .reshape([term.n_levels, term.k])?
                .into_any())
        })
        .collect()
}

/// The optimiser's record into a result dict.
fn set_optimization(
    out: &Bound<'_, PyDict>,
    summary: &mixedmodels_core::OptSummary,
) -> PyResult<()> {
    let py = out.py();
    out.set_item("theta_start", summary.theta_start.clone().into_pyarray(py))?;
    out.set_item("n_evaluations", summary.n_evaluations)?;
    out.set_item("status", summary.status.clone())?;
    out.set_item("converged", summary.converged)?;
    out.set_item("n_set_to_boundary", summary.n_set_to_boundary)
}

fn family_from(distribution: &str, link: &str, negative_binomial_theta: f64) -> PyResult<Family> {
    let distribution = match distribution {
        "binomial" => Distribution::Binomial,
        "poisson" => Distribution::Poisson,
        "gamma" => Distribution::Gamma,
        "inverse_gaussian" => Distribution::InverseGaussian,
        "gaussian" => Distribution::Gaussian,
        "negative_binomial" => Distribution::NegativeBinomial {
            theta: negative_binomial_theta,
        },
        other => return Err(PyValueError::new_err(format!("unknown family {other:?}"))),
    };
    let link = Link::from_name(link).map_err(|err| PyValueError::new_err(err.to_string()))?;
    Ok(Family::new(distribution, link))
}

/// A generalized linear mixed model: design, response, prior weights, offset and family.
#[pyclass(module = "mixedmodels._core", name = "GeneralizedLinearMixedModel")]
struct PyGeneralizedLinearMixedModel {
    model: GeneralizedLinearMixedModel,
    x: Py<PyArray2<f64>>,
}

#[pymethods]
impl PyGeneralizedLinearMixedModel {
    #[new]
    #[pyo3(signature = (x, terms, y, weights, offset, family, link, negative_binomial_theta=1.0, factorization="auto"))]
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
    ) -> PyResult<Self> {
        let choice = factorization_choice(factorization)?;
        let family = family_from(family, link, negative_binomial_theta)?;
        let core_terms = core_terms(py, &terms)?;
        let (y, weights, offset) = (
            y.as_array().to_vec(),
            weights.as_array().to_vec(),
            offset.as_array().to_vec(),
        );
        let x_readonly = x.readonly();
        let x_view = column_major_view(&x_readonly, "x")?;
        let model = py
            .detach(|| {
                run_job(
                    construction_is_parallel(x_view.nrows()),
                    &NO_POLL,
                    |_interrupt| {
                        GeneralizedLinearMixedModel::new(
                            core_terms, x_view, y, weights, offset, family, choice,
                        )
                    },
                )
            })
            .map_err(|err| python_error(py, err))?;
        Ok(Self {
            model,
            x: x.clone().unbind(),
        })
    }

    #[getter]
    fn is_sparse(&self) -> bool {
        self.model.is_sparse()
    }

    /// Fit with `n_agq` quadrature nodes (0: lme4's nAGQ = 0; 1: Laplace; > 1: adaptive
    /// Gauss–Hermite) and return the estimates as a dict.
    #[pyo3(signature = (n_agq, max_evaluations=10_000))]
    fn fit<'py>(
        &mut self,
        py: Python<'py>,
        n_agq: usize,
        max_evaluations: i64,
    ) -> PyResult<Bound<'py, PyDict>> {
        let settings = OptimizerSettings::generalized(evaluation_budget(max_evaluations))
            .map_err(|err| python_error(py, err))?;
        let x = self.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let model = &mut self.model;
        let parallel = model.is_parallel();
        let fit = py
            .detach(|| {
                run_job(parallel, &NO_POLL, |_interrupt| {
                    model.fit(x_view, n_agq, settings, _interrupt)
                })
            })
            .map_err(|err| python_error(py, err))?;
        glmm_fit_to_dict(py, fit, self.model.terms())
    }

    /// Conditional covariances of the random effects at (θ, β): per term (n_levels, k, k).
    fn conditional_covariances<'py>(
        &mut self,
        py: Python<'py>,
        theta: Vec<f64>,
        beta: Vec<f64>,
        dispersion: f64,
    ) -> PyResult<Vec<Bound<'py, numpy::PyArray3<f64>>>> {
        let x = self.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let model = &mut self.model;
        let parallel = model.is_parallel();
        let tiles = py
            .detach(|| {
                run_job(parallel, &NO_POLL, |_interrupt| {
                    model.conditional_covariances(x_view, &theta, &beta, dispersion, _interrupt)
                })
            })
            .map_err(|err| python_error(py, err))?;
        covariance_arrays(py, tiles, self.model.terms())
    }
}

fn glmm_fit_to_dict<'py>(
    py: Python<'py>,
    fit: GlmmFit,
    terms: &[RandomEffectsTerm],
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let p = fit.beta.len();
    out.set_item("theta", fit.theta.into_pyarray(py))?;
    out.set_item("beta", fit.beta.into_pyarray(py))?;
    match fit.beta_covariance_hessian {
        Some(covariance) => out.set_item(
            "beta_covariance_hessian",
            covariance.into_pyarray(py).reshape([p, p])?,
        )?,
        None => out.set_item("beta_covariance_hessian", py.None())?,
    }
    out.set_item(
        "beta_covariance_factor",
        fit.beta_covariance_factor
            .into_pyarray(py)
            .reshape([p, p])?,
    )?;
    out.set_item("ranef", ranef_arrays(py, fit.random_effects, terms)?)?;
    out.set_item("objective", fit.objective)?;
    out.set_item("minus_twice_log_likelihood", fit.minus_twice_log_likelihood)?;
    out.set_item("sum_deviance_residuals", fit.sum_deviance_residuals)?;
    out.set_item("sum_squared_u", fit.sum_squared_u)?;
    out.set_item("log_det_random", fit.log_det_random)?;
    out.set_item("dispersion", fit.dispersion)?;
    out.set_item("eta", fit.eta.into_pyarray(py))?;
    out.set_item("mu", fit.mu.into_pyarray(py))?;
    out.set_item("pirls_converged", fit.pirls_converged)?;
    set_optimization(&out, &fit.optimization)?;
    Ok(out)
}

fn fit_to_dict<'py>(
    py: Python<'py>,
    fit: LmmFit,
    model: &LinearMixedModel,
) -> PyResult<Bound<'py, PyDict>> {
    let out = PyDict::new(py);
    let p = fit.beta.len();
    out.set_item("theta", fit.theta.into_pyarray(py))?;
    out.set_item("beta", fit.beta.into_pyarray(py))?;
    // Column-major p×p; symmetric, so reading it row-major is the same matrix.
    out.set_item(
        "beta_covariance",
        fit.beta_covariance.into_pyarray(py).reshape([p, p])?,
    )?;
    out.set_item("sigma", fit.sigma)?;
    out.set_item(
        "ranef",
        ranef_arrays(py, fit.random_effects, model.terms())?,
    )?;
    out.set_item("objective", fit.objective)?;
    out.set_item("deviance_ml", fit.deviance_ml)?;
    out.set_item("pwrss", fit.pwrss)?;
    out.set_item("log_det_random", fit.log_det_random)?;
    out.set_item("log_det_fixed", fit.log_det_fixed)?;
    out.set_item("fitted", fit.fitted.into_pyarray(py))?;
    set_optimization(&out, &fit.optimization)?;
    Ok(out)
}

/// Family functions on numpy arrays, element by element (the same code the fits use).
#[pyfunction]
#[pyo3(signature = (function, family, link, negative_binomial_theta, first, second=None, third=None))]
#[allow(clippy::too_many_arguments)]
fn family_values<'py>(
    py: Python<'py>,
    function: &str,
    family: &str,
    link: &str,
    negative_binomial_theta: f64,
    first: PyReadonlyArray1<'py, f64>,
    second: Option<PyReadonlyArray1<'py, f64>>,
    third: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Bound<'py, numpy::PyArray1<f64>>> {
    let family = family_from(family, link, negative_binomial_theta)?;
    let first = first.as_array();
    let argument = |array: &Option<PyReadonlyArray1<'py, f64>>| -> PyResult<Vec<f64>> {
        match array {
            Some(values) if values.len() == first.len() => Ok(values.as_array().to_vec()),
            Some(_) => Err(PyValueError::new_err("arrays of different lengths")),
            None => Err(PyValueError::new_err(format!(
                "{function} needs more arguments"
            ))),
        }
    };
    let values: Vec<f64> = match function {
        "inverse_link" => first.iter().map(|&eta| family.link.inverse(eta)).collect(),
        "link" => first.iter().map(|&mu| family.link.link(mu)).collect(),
        "mu_eta" => first.iter().map(|&eta| family.link.mu_eta(eta)).collect(),
        "variance" => first.iter().map(|&mu| family.variance(mu)).collect(),
        "deviance_residuals" => {
            let (mu, weights) = (argument(&second)?, argument(&third)?);
            first
                .iter()
                .zip(mu)
                .zip(weights)
                .map(|((&y, mu), w)| family.deviance_residual(y, mu, w))
                .collect()
        }
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown family function {other:?}"
            )))
        }
    };
    Ok(values.into_pyarray(py))
}

/// Indices of the columns of the Fortran-ordered matrix `x` that are linear combinations of
/// earlier columns, by lme4's rank check with relative `tolerance`.
#[pyfunction]
fn dependent_columns(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f64>,
    tolerance: f64,
) -> PyResult<Vec<usize>> {
    let x_view = column_major_view(&x, "x")?;
    Ok(py.detach(|| {
        run_job(
            construction_is_parallel(x_view.nrows()),
            &NO_POLL,
            |_interrupt| mixedmodels_core::dependent_columns(x_view, tolerance),
        )
    }))
}

#[pymodule]
fn _core(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyLinearMixedModel>()?;
    module.add_class::<PyGeneralizedLinearMixedModel>()?;
    module.add_function(wrap_pyfunction!(family_values, module)?)?;
    module.add_function(wrap_pyfunction!(dependent_columns, module)?)?;
    Ok(())
}
