//! The optimiser's settings from Python's arguments.

use mixedmodels_core::{CoreError, OptimizerSettings};

/// The settings of `kind` (e.g. [`OptimizerSettings::linear`]) with Python's evaluation budget,
/// which can be negative: a budget below one is the core's specification error.
pub(crate) fn optimizer_settings(
    kind: fn(usize) -> Result<OptimizerSettings, CoreError>,
    max_evaluations: i64,
) -> Result<OptimizerSettings, CoreError> {
    kind(usize::try_from(max_evaluations).unwrap_or(0))
}
