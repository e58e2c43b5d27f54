//! Level codes of a string grouping column.

use mixedmodels_core::{construction_is_parallel, CoreError};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::errors::python_error;
use crate::job::run;

/// Each row's level among the sorted distinct strings `data[offsets[i]..offsets[i + 1]]` (Arrow's
/// string layout) and the levels themselves, in level order, as Python strings.
#[pyfunction]
pub(crate) fn encode_strings<'py>(
    py: Python<'py>,
    offsets: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, u8>,
) -> PyResult<(Bound<'py, PyArray1<u32>>, Bound<'py, PyList>)> {
    let (offsets, data) = (offsets.as_slice()?, data.as_slice()?);
    let n_rows = offsets.len().saturating_sub(1);
    let levels = run(py, construction_is_parallel(n_rows), |_| {
        mixedmodels_core::encode_strings(offsets, data)
    })?;
    // The core checked every row's offsets against the data.
    let names = levels
        .first_rows
        .iter()
        .map(|&row| {
            let bytes = &data[offsets[row] as usize..offsets[row + 1] as usize];
            std::str::from_utf8(bytes).map_err(|_| {
                let reason = format!("the string of row {row} is not valid UTF-8");
                python_error(py, CoreError::InvalidInput(reason))
            })
        })
        .collect::<PyResult<Vec<&str>>>()?;
    Ok((levels.codes.into_pyarray(py), PyList::new(py, names)?))
}
