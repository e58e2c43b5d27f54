//! Tests across modules: the factorisations against a dense reference on random problems of every
//! block kind, and a GLMM fit on one and on two threads.

mod blocked_vs_dense;
mod common;
mod glmm_threads;
mod sparse_vs_dense;
