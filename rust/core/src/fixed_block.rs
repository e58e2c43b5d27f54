//! L's last diagonal block, for the fixed effects and the response: [R_X 0; cᵀ r] with
//! R_X R_Xᵀ = the Schur complement of the random effects in XᵀWX, c its response row and r² the
//! penalised residual sum of squares (Bates et al. 2015, JSS 67(1), eq. 18). Shared by the blocked
//! and the sparse factorisation.

use faer::dyn_stack::MemStack;
use faer::{MatRef, Par};

use crate::blocks::Dense;
use crate::dense::{
    back_substitute_transpose, dense_lower_cholesky, forward_substitute, subtract_lower_gram,
};
use crate::error::{CoreError, Result};

#[derive(Debug, Clone)]
pub(crate) struct FixedEffectsBlock {
    /// (p+1) × (p+1), lower triangle meaningful.
    values: Dense,
    /// Room for R_X's factorisation, so an evaluation allocates nothing.
    r_x_scratch: Dense,
}

impl FixedEffectsBlock {
    pub(crate) fn new(n_fixed: usize) -> Self {
        Self {
            values: Dense::zeros(n_fixed + 1, n_fixed + 1),
            r_x_scratch: Dense::zeros(n_fixed, n_fixed),
        }
    }

    pub(crate) fn n_fixed(&self) -> usize {
        self.values.nrows - 1
    }

    /// Entry of the block (lower triangle).
    pub(crate) fn get(&self, row: usize, col: usize) -> f64 {
        self.values.get(row, col)
    }

    /// Start from [X y]ᵀW[X y] and subtract `rows rowsᵀ` for every `rows` ((p+1) × m, the fixed
    /// rows of L beside the random effects); then factor.
    pub(crate) fn factor_schur_complement<'a>(
        &mut self,
        cross_products: &Dense,
        rows: impl IntoIterator<Item = MatRef<'a, f64>>,
        par: Par,
        stack: &mut MemStack,
    ) -> Result<()> {
        self.values.values.copy_from_slice(&cross_products.values);
        for block in rows {
            subtract_lower_gram(&mut self.values, block, par);
        }
        self.factor(par, stack)
    }

    /// Factor in place: R_X by a dense Cholesky, the response row by forward substitution, and
    /// r = √max(0, ·) so that a perfect fit (r = 0) is allowed.
    fn factor(&mut self, par: Par, stack: &mut MemStack) -> Result<()> {
        let p = self.n_fixed();
        let stride = p + 1;
        let values = &mut self.values.values;
        if p > 0 {
            let x_block = &mut self.r_x_scratch;
            for c in 0..p {
                for r in c..p {
                    x_block.values[r + c * p] = values[r + c * stride];
                }
            }
            dense_lower_cholesky(x_block, par, stack).map_err(|index| {
                CoreError::NotPositiveDefinite {
                    block: "fixed-effects (the model matrix may be rank deficient)".into(),
                    pivot: index,
                }
            })?;
            for c in 0..p {
                for r in c..p {
                    values[r + c * stride] = x_block.values[r + c * p];
                }
            }
            // Response row: solve R_X cᵀ = (Schur complement row).
            forward_substitute(&x_block.values, p, p, &mut values[p..], stride);
        }
        let mut last = values[p + p * stride];
        for m in 0..p {
            last -= values[p + m * stride].powi(2);
        }
        values[p + p * stride] = last.max(0.0).sqrt();
        Ok(())
    }

    /// β̂: solve R_Xᵀ β = c.
    pub(crate) fn fixed_effects(&self) -> Vec<f64> {
        let p = self.n_fixed();
        let mut beta: Vec<f64> = (0..p).map(|c| self.get(p, c)).collect();
        back_substitute_transpose(&self.values.values, p + 1, &mut beta);
        beta
    }

    /// R_X (lower triangular, p × p) and the response pivot r.
    pub(crate) fn fixed_effects_factor(&self) -> (Dense, f64) {
        let p = self.n_fixed();
        let mut r_x = Dense::zeros(p, p);
        for c in 0..p {
            for r in c..p {
                r_x.values[r + c * p] = self.get(r, c);
            }
        }
        (r_x, self.get(p, p))
    }

    /// r, whose square is the penalised weighted residual sum of squares.
    pub(crate) fn response_pivot(&self) -> f64 {
        let p = self.n_fixed();
        self.get(p, p)
    }

    /// log |R_X|².
    pub(crate) fn log_det_fixed(&self) -> f64 {
        (0..self.n_fixed())
            .map(|c| self.get(c, c).ln())
            .sum::<f64>()
            * 2.0
    }
}
