//! Numerical core of mixedmodels: linear and generalized linear mixed models on a blocked (or
//! general sparse) Cholesky factorisation of the augmented penalised least-squares system. Pure
//! Rust; the Python binding lives in `rust/py` and uses only what is exported here.

mod batch;
mod batch_generalized;
mod blocks;
mod bootstrap;
mod case_deletion;
mod cholesky;
mod crossproducts;
mod dense;
mod derivatives;
mod error;
mod factorization;
mod families;
mod fixed_block;
mod glmm;
mod interrupt;
mod kenward_roger;
mod levels;
mod leverage;
mod lmm;
mod negative_binomial;
mod optimize;
mod profile;
mod quadrature;
mod rank;
mod reparameterisation;
mod simulate;
mod sparse_cholesky;
mod start_values;
mod terms;
mod threads;
mod unit_columns;
mod variance_parameters;

#[cfg(test)]
mod tests;

pub use batch::{
    fit_linear_batch, linear_batch_kenward_roger, linear_batch_variance_parameter_derivatives,
    BatchDesign, BatchKenwardRoger, BatchResponses, BatchVarianceParameterDerivatives,
    LinearBatchFit,
};
pub use batch_generalized::{fit_count_batch, CountBatchFit, CountBatchSettings, CountFamily};
pub use bootstrap::{
    bootstrap_generalized, bootstrap_linear, GeneralizedBootstrap, LinearBootstrap,
};
pub use case_deletion::{
    generalized_case_deletion, linear_case_deletion, DeletionFits, DeletionMethod, DeletionUnits,
    FullEstimates, GeneralizedData,
};
pub use derivatives::Derivatives;
pub use error::{CoreError, Result};
pub use factorization::FactorizationChoice;
pub use families::{Distribution, Family, Link};
pub use glmm::{GeneralizedLinearMixedModel, GlmmControl, GlmmFit, LaplaceObjective};
pub use interrupt::{Interrupt, Poll};
pub use kenward_roger::KenwardRogerAdjustment;
pub use levels::{encode_strings, EncodedLevels};
pub use lmm::{LinearMixedModel, LmmFit};
pub use optimize::{OptSummary, OptimizerSettings};
pub use profile::{LikelihoodProfile, ParameterProfile};
pub use rank::dependent_columns;
pub use reparameterisation::{column_transform, map_theta, ColumnTransform};
pub use simulate::{
    simulate_generalized, simulate_linear, GeneralizedParameters, LinearParameters,
};
pub use terms::RandomEffectsTerm;
pub use threads::{construction_is_parallel, run_job};
pub use variance_parameters::VarianceParameterDerivatives;
