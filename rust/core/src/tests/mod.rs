//! Tests across modules: the factorisations against a dense reference on random problems of every
//! block kind, GLMM fits (thread invariance, interruptions) and rows of weight 0.

mod blocked_vs_dense;
pub(crate) mod common;
mod glmm_fits;
mod kenward_roger_vs_dense;
mod sparse_vs_dense;
mod zero_weights;
