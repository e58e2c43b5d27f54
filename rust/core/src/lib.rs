//! Numerical core of mixedmodels: linear mixed models on a blocked Cholesky factorisation of the
//! augmented penalised least-squares system. Pure Rust; the Python binding lives in `rust/py`.

pub mod blocks;
pub mod cholesky;
pub mod crossproducts;
pub mod dense;
pub mod error;
pub mod factorization;
pub mod families;
pub mod fixed_block;
pub mod glmm;
pub mod lmm;
pub mod optimize;
pub mod quadrature;
pub mod rank;
pub mod sparse_cholesky;
pub mod terms;
pub mod threads;

pub use error::{CoreError, Result};
pub use factorization::FactorizationChoice;
pub use lmm::{LinearMixedModel, LmmFit};
pub use optimize::{OptSummary, OptimizerSettings};
pub use terms::RandomEffectsTerm;
pub use threads::{construction_is_parallel, run_job};
