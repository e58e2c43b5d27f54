//! The centred and scaled parameterisation's column transforms and θ map.

use faer::MatRef;
use mixedmodels_core::construction_is_parallel;
use numpy::{IntoPyArray, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::arrays::row_major_matrix;
use crate::job::run;

/// T and T⁻¹ (k × k) of z' = z T for the columns of `columns` (n × k, C- or Fortran-ordered),
/// and whether T is the identity.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub(crate) fn column_transform(
    py: Python<'_>,
    columns: PyReadonlyArray2<'_, f64>,
) -> PyResult<(Py<PyArray2<f64>>, Py<PyArray2<f64>>, bool)> {
    let [n, k] = [columns.shape()[0], columns.shape()[1]];
    let values = columns
        .as_slice()
        .map_err(|_| PyTypeError::new_err("columns must be a contiguous float64 array"))?;
    let view = if columns.is_c_contiguous() {
        MatRef::from_row_major_slice(values, n, k)
    } else {
        MatRef::from_column_major_slice(values, n, k)
    };
    let transform = run(py, construction_is_parallel(n), |_| {
        Ok(mixedmodels_core::column_transform(view))
    })?;
    Ok((
        row_major_matrix(py, transform.forward, k, k)?,
        row_major_matrix(py, transform.inverse, k, k)?,
        transform.is_identity,
    ))
}

/// `theta` (rows of θ vectors) with each term's block mapped through its k × k transform
/// (None: left as it is); `sizes` are the terms' k.
#[pyfunction]
pub(crate) fn map_theta<'py>(
    py: Python<'py>,
    theta: PyReadonlyArray2<'py, f64>,
    sizes: Vec<usize>,
    transforms: Vec<Option<PyReadonlyArray2<'py, f64>>>,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let shape = [theta.shape()[0], theta.shape()[1]];
    let expected: usize = sizes.iter().map(|k| k * (k + 1) / 2).sum();
    if sizes.len() != transforms.len() || shape[1] != expected {
        return Err(PyValueError::new_err(format!(
            "theta has {} values per row and {} transforms, the terms {expected} values and {}",
            shape[1],
            transforms.len(),
            sizes.len()
        )));
    }
    let mut values = theta.as_array().iter().copied().collect::<Vec<f64>>();
    let matrices = transforms
        .iter()
        .zip(&sizes)
        .map(|(transform, &k)| match transform {
            None => Ok(None),
            Some(array) if array.shape() == [k, k] && array.is_c_contiguous() => {
                Ok(Some(array.as_slice()?))
            }
            Some(_) => Err(PyValueError::new_err(format!(
                "a transform must be a C-ordered {k} × {k} float64 array"
            ))),
        })
        .collect::<PyResult<Vec<Option<&[f64]>>>>()?;
    run(py, false, |_| {
        mixedmodels_core::map_theta(&mut values, &sizes, &matrices);
        Ok(())
    })?;
    values.into_pyarray(py).reshape(shape)
}
