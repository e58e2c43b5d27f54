//! The rank check of the fixed-effects matrix.

use mixedmodels_core::construction_is_parallel;
use numpy::PyReadonlyArray2;
use pyo3::prelude::*;

use crate::arrays::column_major_view;
use crate::job::run;

/// Indices of the columns of the Fortran-ordered matrix `x` that are linear combinations of
/// earlier columns, by lme4's rank check with relative `tolerance`.
#[pyfunction]
pub(crate) fn dependent_columns(
    py: Python<'_>,
    x: PyReadonlyArray2<'_, f64>,
    tolerance: f64,
) -> PyResult<Vec<usize>> {
    let x_view = column_major_view(&x, "x")?;
    run(py, construction_is_parallel(x_view.nrows()), |_| {
        Ok(mixedmodels_core::dependent_columns(x_view, tolerance))
    })
}
