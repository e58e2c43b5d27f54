//! numpy arrays into the core's inputs and the core's outputs into numpy arrays.

use faer::MatRef;
use mixedmodels_core::RandomEffectsTerm;
use numpy::ndarray::IntoDimension;
use numpy::{
    IntoPyArray, PyArray, PyArray1, PyArray2, PyArray3, PyArrayMethods, PyReadonlyArray1,
    PyReadonlyArray2, PyUntypedArrayMethods,
};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::errors::python_error;

/// One random-effects term as Python passes it: uint32 level codes, the number of levels, and the
/// (n, k) C-ordered float64 model matrix.
pub(crate) type TermArrays<'py> = (
    PyReadonlyArray1<'py, u32>,
    usize,
    PyReadonlyArray2<'py, f64>,
);

/// A column-major view of a Fortran-ordered float64 matrix.
pub(crate) fn column_major_view<'a>(
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

pub(crate) fn core_terms(
    py: Python<'_>,
    terms: &[TermArrays<'_>],
) -> PyResult<Vec<RandomEffectsTerm>> {
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

/// Each term's shape (levels, columns), which the arrays of random effects take.
pub(crate) fn term_shapes(terms: &[RandomEffectsTerm]) -> Vec<(usize, usize)> {
    terms.iter().map(|term| (term.n_levels, term.k)).collect()
}

pub(crate) fn vector(py: Python<'_>, values: Vec<f64>) -> Py<PyArray1<f64>> {
    values.into_pyarray(py).unbind()
}

/// A p×p array from the column-major values of a symmetric matrix (read row-major, the same
/// matrix).
pub(crate) fn symmetric_matrix(
    py: Python<'_>,
    values: Vec<f64>,
    p: usize,
) -> PyResult<Py<PyArray2<f64>>> {
    row_major_matrix(py, values, p, p)
}

/// Per term, the random effects (level-major) as an (n_levels, k) array.
pub(crate) fn ranef_arrays(
    py: Python<'_>,
    random_effects: Vec<Vec<f64>>,
    shapes: &[(usize, usize)],
) -> PyResult<Vec<Py<PyArray2<f64>>>> {
    random_effects
        .into_iter()
        .zip(shapes)
        .map(|(b, &shape)| Ok(b.into_pyarray(py).reshape(shape)?.unbind()))
        .collect()
}

/// Per term, the conditional covariance tiles as (n_levels, k, k) arrays (row, column order).
pub(crate) fn covariance_arrays<'py>(
    py: Python<'py>,
    tiles: Vec<Vec<f64>>,
    shapes: &[(usize, usize)],
) -> PyResult<Vec<Bound<'py, PyArray3<f64>>>> {
    tiles
        .into_iter()
        .zip(shapes)
        .map(|(values, &(n_levels, k))| {
            // Tiles are column-major: read as (level, col, row), then swap to (level, row, col).
            let array = values.into_pyarray(py).reshape([n_levels, k, k])?;
            Ok(array
                .call_method1("transpose", (0, 2, 1))?
                .cast_into::<PyArray3<f64>>()?)
        })
        .collect()
}

/// An (n_rows × n_columns) array from row-major values (one row per replicate, say).
pub(crate) fn row_major_matrix(
    py: Python<'_>,
    values: Vec<f64>,
    n_rows: usize,
    n_columns: usize,
) -> PyResult<Py<PyArray2<f64>>> {
    shaped(py, values, [n_rows, n_columns])
}

/// An array of `shape` from values in C order: the core's unit-major results, one block per
/// gene or unit. A stack of symmetric matrices can come straight from the core's column-major
/// blocks: read row-major, they are the same matrices.
pub(crate) fn shaped<S: IntoDimension>(
    py: Python<'_>,
    values: Vec<f64>,
    shape: S,
) -> PyResult<Py<PyArray<f64, S::Dim>>> {
    Ok(values.into_pyarray(py).reshape(shape)?.unbind())
}
