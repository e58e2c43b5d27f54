//! Python binding of mixedmodels-core: converts numpy arrays, releases the GIL around every long
//! call and maps core errors onto the classes of `mixedmodels.errors`. No mathematics here.

use faer::MatRef;
use mixedmodels_core::{
    CoreError, FactorizationChoice, LinearMixedModel, LmmFit, OptimizerSettings, RandomEffectsTerm,
};
use numpy::{
    IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2,
    PyUntypedArrayMethods,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn python_error(py: Python<'_>, err: CoreError) -> PyErr {
    let class = match err {
        CoreError::InvalidInput(_) => "DataError",
        CoreError::NotPositiveDefinite { .. } | CoreError::Optimization(_) => "ConvergenceError",
        CoreError::Specification(_) => "SpecificationError",
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
        terms: Vec<(PyReadonlyArray1<'_, u32>, usize, PyReadonlyArray2<'_, f64>)>,
        weights: Option<PyReadonlyArray1<'_, f64>>,
        factorization: &str,
    ) -> PyResult<Self> {
        let choice = match factorization {
            "auto" => FactorizationChoice::Automatic,
            "blocked" => FactorizationChoice::Blocked,
            "sparse" => FactorizationChoice::Sparse,
            other => {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "factorization must be 'auto', 'blocked' or 'sparse', not {other:?}"
                )))
            }
        };
        let mut core_terms = Vec::with_capacity(terms.len());
        for (codes, n_levels, z) in &terms {
            let k = z.shape()[1];
            let z_values: Vec<f64> = z.as_array().iter().copied().collect();
            let term = RandomEffectsTerm::new(codes.as_array().to_vec(), *n_levels, k, z_values)
                .map_err(|err| python_error(py, err))?;
            core_terms.push(term);
        }
        let weights = weights.map(|w| w.as_array().to_vec());
        let x_readonly = x.readonly();
        let x_view = column_major_view(&x_readonly, "x")?;
        let model = py
            .detach(|| LinearMixedModel::new(core_terms, x_view, weights, choice))
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
        py.detach(|| {
            model.set_response(x_view, y)?;
            model.objective(&theta, reml)
        })
        .map_err(|err| python_error(py, err))
    }

    /// Fit response y: optimise θ, then return the estimates as a dict of numpy arrays and numbers.
    #[pyo3(signature = (y, reml, rho_begin=0.2, rho_end=1e-6, max_evaluations=10_000))]
    fn fit<'py>(
        &mut self,
        py: Python<'py>,
        y: PyReadonlyArray1<'_, f64>,
        reml: bool,
        rho_begin: f64,
        rho_end: f64,
        max_evaluations: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let settings = OptimizerSettings {
            rho_begin,
            rho_end,
            max_evaluations,
        };
        let x = self.x.bind(py).readonly();
        let x_view = column_major_view(&x, "x")?;
        let y = y.as_slice()?;
        let model = &mut self.model;
        let fit = py
            .detach(|| {
                model.set_response(x_view, y)?;
                model.fit(x_view, reml, settings)
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
        let tiles = py
            .detach(|| model.conditional_covariances(&theta, sigma))
            .map_err(|err| python_error(py, err))?;
        let ks: Vec<usize> = self.model.terms().iter().map(|t| t.k).collect();
        tiles
            .into_iter()
            .zip(ks)
            .map(|(values, k)| {
                let n_levels = values.len() / (k * k);
                // Tiles are column-major; as (level, col, row) then swapped to (level, row, col).
                let array = values.into_pyarray(py).reshape([n_levels, k, k])?;
                Ok(array
                    .call_method1("transpose", (0, 2, 1))?
                    .cast_into::<numpy::PyArray3<f64>>()?)
            })
            .collect()
    }
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
    let ranef: Vec<_> = fit
        .random_effects
        .into_iter()
        .zip(model.terms())
        .map(|(b, term)| b.into_pyarray(py).reshape([term.n_levels, term.k]))
        .collect::<PyResult<_>>()?;
    out.set_item("ranef", ranef)?;
    out.set_item("objective", fit.objective)?;
    out.set_item("deviance_ml", fit.deviance_ml)?;
    out.set_item("pwrss", fit.pwrss)?;
    out.set_item("log_det_random", fit.log_det_random)?;
    out.set_item("log_det_fixed", fit.log_det_fixed)?;
    out.set_item("fitted", fit.fitted.into_pyarray(py))?;
    let summary = &fit.optimization;
    out.set_item("theta_start", summary.theta_start.clone().into_pyarray(py))?;
    out.set_item("n_evaluations", summary.n_evaluations)?;
    out.set_item("status", summary.status.clone())?;
    out.set_item("converged", summary.converged)?;
    out.set_item("n_set_to_boundary", summary.n_set_to_boundary)?;
    Ok(out)
}

#[pymodule]
fn _core(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<PyLinearMixedModel>()?;
    Ok(())
}
