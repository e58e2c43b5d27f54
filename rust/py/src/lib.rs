//! Python binding of mixedmodels-core: converts numpy arrays into the core's inputs and its
//! results into typed Python objects, runs core work with the GIL released (`job`), and maps core
//! errors onto the classes of `mixedmodels.errors` (`errors`). No mathematics here.

mod arrays;
mod batch;
mod batch_generalized;
mod bootstrap;
mod case_deletion;
mod errors;
mod family;
mod fits;
mod generalized;
mod job;
mod levels;
mod linear;
mod profile;
mod rank;
mod reparameterisation;
mod settings;
mod structure;

use pyo3::prelude::*;

#[pymodule]
fn _core(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<linear::PyLinearMixedModel>()?;
    module.add_class::<generalized::PyGeneralizedLinearMixedModel>()?;
    module.add_class::<fits::LinearFit>()?;
    module.add_class::<fits::GeneralizedFit>()?;
    module.add_class::<fits::Optimization>()?;
    module.add_class::<fits::ObjectiveDerivatives>()?;
    module.add_class::<fits::VarianceParameterDerivatives>()?;
    module.add_class::<fits::KenwardRogerAdjustment>()?;
    module.add_class::<profile::LikelihoodProfile>()?;
    module.add_class::<profile::ParameterProfile>()?;
    module.add_class::<bootstrap::LinearBootstrap>()?;
    module.add_class::<bootstrap::GeneralizedBootstrap>()?;
    module.add_class::<batch::LinearBatchFit>()?;
    module.add_class::<batch::BatchVarianceParameterDerivatives>()?;
    module.add_class::<batch::BatchKenwardRoger>()?;
    module.add_class::<batch_generalized::CountBatchFit>()?;
    module.add_class::<case_deletion::DeletionFits>()?;
    module.add_function(wrap_pyfunction!(
        case_deletion::linear_case_deletion,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(
        case_deletion::generalized_case_deletion,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(
        batch_generalized::fit_count_batch,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(batch::fit_linear_batch, module)?)?;
    module.add_function(wrap_pyfunction!(
        batch::linear_batch_variance_parameter_derivatives,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(batch::linear_batch_kenward_roger, module)?)?;
    module.add_function(wrap_pyfunction!(family::family_values, module)?)?;
    module.add_function(wrap_pyfunction!(rank::dependent_columns, module)?)?;
    module.add_function(wrap_pyfunction!(levels::encode_strings, module)?)?;
    module.add_function(wrap_pyfunction!(
        reparameterisation::column_transform,
        module
    )?)?;
    module.add_function(wrap_pyfunction!(reparameterisation::map_theta, module)?)?;
    Ok(())
}
