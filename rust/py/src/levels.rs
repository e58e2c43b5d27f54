//! Level codes of a string grouping column.

use mixedmodels_core::construction_is_parallel;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::job::run;

/// Each row's level among the sorted distinct strings `data[offsets[i]..offsets[i + 1]]` (Arrow's
/// string layout) and the first row of each level, in level order.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub(crate) fn encode_strings<'py>(
    py: Python<'py>,
    offsets: PyReadonlyArray1<'py, i64>,
    data: PyReadonlyArray1<'py, u8>,
) -> PyResult<(Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<usize>>)> {
    let (offsets, data) = (offsets.as_slice()?, data.as_slice()?);
    let n_rows = offsets.len().saturating_sub(1);
    let levels = run(py, construction_is_parallel(n_rows), |_| {
        mixedmodels_core::encode_strings(offsets, data)
    })?;
    Ok((
        levels.codes.into_pyarray(py),
        levels.first_rows.into_pyarray(py),
    ))
}
