//! Tests across modules: the factorisations against a dense reference on random problems of every
//! block kind, and GLMM fits (thread invariance, interruptions).

mod blocked_vs_dense;
pub(crate) mod common;
mod glmm_fits;
mod kenward_roger_vs_dense;
mod sparse_vs_dense;
