//! What the two model classes share: the core model behind a lock, the fixed-effects matrix, and
//! the facts of the structure that Python reads without taking the lock.

use std::sync::Mutex;

use mixedmodels_core::{GeneralizedLinearMixedModel, LinearMixedModel, RandomEffectsTerm};
use numpy::PyArray2;
use pyo3::prelude::*;

use crate::arrays::term_shapes;

/// The facts of a core model that its Python class reports.
pub(crate) trait CoreStructure {
    fn is_parallel(&self) -> bool;
    fn is_sparse(&self) -> bool;
    fn n_theta(&self) -> usize;
    fn terms(&self) -> &[RandomEffectsTerm];
}

impl CoreStructure for LinearMixedModel {
    fn is_parallel(&self) -> bool {
        LinearMixedModel::is_parallel(self)
    }
    fn is_sparse(&self) -> bool {
        LinearMixedModel::is_sparse(self)
    }
    fn n_theta(&self) -> usize {
        LinearMixedModel::n_theta(self)
    }
    fn terms(&self) -> &[RandomEffectsTerm] {
        LinearMixedModel::terms(self)
    }
}

impl CoreStructure for GeneralizedLinearMixedModel {
    fn is_parallel(&self) -> bool {
        GeneralizedLinearMixedModel::is_parallel(self)
    }
    fn is_sparse(&self) -> bool {
        GeneralizedLinearMixedModel::is_sparse(self)
    }
    fn n_theta(&self) -> usize {
        GeneralizedLinearMixedModel::n_theta(self)
    }
    fn terms(&self) -> &[RandomEffectsTerm] {
        GeneralizedLinearMixedModel::terms(self)
    }
}

/// A core model shared by Python threads (calls take turns on the lock).
pub(crate) struct SharedModel<M> {
    /// Locked only with the GIL released, so that the thread holding it can take the GIL to look
    /// for signals.
    pub(crate) model: Mutex<M>,
    /// The fixed-effects matrix (n × p, Fortran order), kept rather than copied.
    pub(crate) x: Py<PyArray2<f64>>,
    pub(crate) parallel: bool,
    pub(crate) is_sparse: bool,
    pub(crate) n_theta: usize,
    /// Each term's (n_levels, k), for the arrays handed back.
    pub(crate) shapes: Vec<(usize, usize)>,
}

impl<M: CoreStructure> SharedModel<M> {
    pub(crate) fn new(model: M, x: Bound<'_, PyArray2<f64>>) -> Self {
        Self {
            parallel: model.is_parallel(),
            is_sparse: model.is_sparse(),
            n_theta: model.n_theta(),
            shapes: term_shapes(model.terms()),
            model: Mutex::new(model),
            x: x.unbind(),
        }
    }
}
