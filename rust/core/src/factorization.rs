//! The choice of factorisation for a model structure: the blocked Cholesky (MixedModels.jl's),
//! fastest wherever its dense fill-in blocks stay moderate, else the general sparse Cholesky
//! with a fill-reducing ordering (e.g. two crossed factors with many thousands of levels each).

use crate::blocks::TileDiagonal;
use crate::cholesky::BlockedCholesky;
use crate::crossproducts::CrossProducts;
use crate::dense::clear_upper_vector_state;
use crate::error::{CoreError, Result};
use crate::fixed_block::FixedEffectsBlock;
use crate::sparse_cholesky::SparseCholesky;

/// Which factorisation a model uses: the default chooses (blocked unless its dense blocks
/// would be too large); the others force one, for structures the heuristic misjudges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorizationChoice {
    Automatic,
    Blocked,
    Sparse,
}

// One per model and never moved in a loop, so the size of the larger variant costs nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Factorization {
    Blocked(BlockedCholesky),
    Sparse(SparseCholesky),
}

impl Factorization {
    /// Analyse the structure once; automatically the blocked path unless it refuses the structure.
    pub(crate) fn new(cross: &CrossProducts, choice: FactorizationChoice) -> Result<Self> {
        match choice {
            FactorizationChoice::Blocked => Ok(Self::Blocked(BlockedCholesky::new(cross)?)),
            FactorizationChoice::Sparse => Ok(Self::Sparse(SparseCholesky::new(cross)?)),
            FactorizationChoice::Automatic => match BlockedCholesky::new(cross) {
                Ok(blocked) => Ok(Self::Blocked(blocked)),
                Err(CoreError::Specification(_)) => Ok(Self::Sparse(SparseCholesky::new(cross)?)),
                Err(err) => Err(err),
            },
        }
    }

    /// Refactor at `lambdas`; afterwards the vector registers are clean for the scalar maths
    /// that follows (log-determinants, PIRLS's link functions; see [`clear_upper_vector_state`]).
    pub(crate) fn factorize(&mut self, cross: &CrossProducts, lambdas: &[Vec<f64>]) -> Result<()> {
        let factorized = match self {
            Self::Blocked(factor) => factor.factorize(cross, lambdas),
            Self::Sparse(factor) => factor.factorize(cross, lambdas),
        };
        clear_upper_vector_state(self.is_parallel());
        factorized
    }

    /// log |L_Z|².
    pub(crate) fn log_det_random(&self) -> f64 {
        match self {
            Self::Blocked(factor) => factor.log_det_random(),
            Self::Sparse(factor) => factor.log_det_random(),
        }
    }

    /// L's last block: R_X, the response row and r.
    pub(crate) fn fixed(&self) -> &FixedEffectsBlock {
        match self {
            Self::Blocked(factor) => &factor.fixed,
            Self::Sparse(factor) => &factor.fixed,
        }
    }

    /// Spherical random effects u per term at the last factorisation, given β̂.
    pub(crate) fn solve_random_effects(&self, beta: &[f64]) -> Vec<Vec<f64>> {
        match self {
            Self::Blocked(factor) => factor.solve_random_effects(beta),
            Self::Sparse(factor) => factor.solve_random_effects(beta),
        }
    }

    /// Diagonal tiles of (L_Z L_Zᵀ)⁻¹ per term.
    pub(crate) fn inverse_diagonal_tiles(&self) -> Vec<TileDiagonal> {
        match self {
            Self::Blocked(factor) => factor.inverse_diagonal_tiles(),
            Self::Sparse(factor) => factor.inverse_diagonal_tiles(),
        }
    }

    /// Whether factorising uses more than one thread.
    pub(crate) fn is_parallel(&self) -> bool {
        match self {
            Self::Blocked(factor) => factor.is_parallel(),
            Self::Sparse(factor) => factor.is_parallel(),
        }
    }

    /// Whether the general sparse path was chosen.
    pub(crate) fn is_sparse(&self) -> bool {
        matches!(self, Self::Sparse(_))
    }
}
