//! Likelihood profiles as typed, immutable Python objects.

use mixedmodels_core::{LikelihoodProfile as CoreProfile, ParameterProfile as CoreParameter};
use numpy::{PyArray1, PyArray2, PyArrayMethods};
use pyo3::prelude::*;

use crate::arrays::vector;

/// One parameter's profile.
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct ParameterProfile {
    /// The profiled parameter's values, ascending.
    #[pyo3(get)]
    values: Py<PyArray1<f64>>,
    /// ζ at each value.
    #[pyo3(get)]
    zeta: Py<PyArray1<f64>>,
    /// Every parameter at each point: (points, variance parameters + fixed effects).
    #[pyo3(get)]
    parameters: Py<PyArray2<f64>>,
    /// Per cutoff, the lower bound (NaN where the profile did not get there).
    #[pyo3(get)]
    lower: Py<PyArray1<f64>>,
    /// Per cutoff, the upper bound.
    #[pyo3(get)]
    upper: Py<PyArray1<f64>>,
}

impl ParameterProfile {
    fn new(py: Python<'_>, profile: CoreParameter, n_parameters: usize) -> PyResult<Py<Self>> {
        let points = profile.values.len();
        let parameters = PyArray1::from_vec(py, profile.parameters)
            .reshape([points, n_parameters])?
            .unbind();
        Py::new(
            py,
            Self {
                values: vector(py, profile.values),
                zeta: vector(py, profile.zeta),
                parameters,
                lower: vector(py, profile.lower),
                upper: vector(py, profile.upper),
            },
        )
    }
}

/// The profiles of every parameter of a fit: variance parameters, then fixed effects.
#[pyclass(frozen, module = "mixedmodels._core")]
pub(crate) struct LikelihoodProfile {
    /// The estimates (an LMM's ML ones).
    #[pyo3(get)]
    estimates: Py<PyArray1<f64>>,
    /// The deviance at the estimates (an LMM's ML deviance less the −Σ log wᵢ constant).
    #[pyo3(get)]
    deviance: f64,
    /// One profile per parameter.
    #[pyo3(get)]
    parameters: Vec<Py<ParameterProfile>>,
}

impl LikelihoodProfile {
    pub(crate) fn new(py: Python<'_>, profile: CoreProfile) -> PyResult<Self> {
        let n_parameters = profile.estimates.len();
        let parameters = profile
            .parameters
            .into_iter()
            .map(|parameter| ParameterProfile::new(py, parameter, n_parameters))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Self {
            estimates: vector(py, profile.estimates),
            deviance: profile.deviance,
            parameters,
        })
    }
}
