//! Families by name, and their functions on numpy arrays.

use mixedmodels_core::{Distribution, Family, Link};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1, PyUntypedArrayMethods};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::errors::python_error;

pub(crate) fn family_from(
    py: Python<'_>,
    distribution: &str,
    link: &str,
    negative_binomial_theta: f64,
) -> PyResult<Family> {
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
    let link = Link::from_name(link).map_err(|err| python_error(py, err))?;
    Ok(Family::new(distribution, link))
}

/// Family functions on numpy arrays, element by element (the same code the fits use).
#[pyfunction]
#[pyo3(signature = (function, family, link, negative_binomial_theta, first, second=None, third=None))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn family_values<'py>(
    py: Python<'py>,
    function: &str,
    family: &str,
    link: &str,
    negative_binomial_theta: f64,
    first: PyReadonlyArray1<'py, f64>,
    second: Option<PyReadonlyArray1<'py, f64>>,
    third: Option<PyReadonlyArray1<'py, f64>>,
) -> PyResult<Bound<'py, PyArray1<f64>>> {
    let family = family_from(py, family, link, negative_binomial_theta)?;
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
