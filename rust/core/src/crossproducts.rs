//! The θ-free blocks of the augmented system: Zᵢᵀ W Zⱼ, [X y]ᵀ W Zⱼ and [X y]ᵀ W [X y]. They are
//! computed once per (design, weights); a new response recomputes only the y row. After this, an
//! objective evaluation never touches the n observations (DESIGN.md, "where the speed comes from").

use faer::MatRef;

use crate::blocks::{Dense, TileDiagonal, TileSparse};
use crate::error::{CoreError, Result};
use crate::terms::RandomEffectsTerm;

#[derive(Debug, Clone)]
pub struct CrossProducts {
    /// Zⱼᵀ W Zⱼ, tile-diagonal because each observation has one level of each factor.
    pub diagonal: Vec<TileDiagonal>,
    /// `off_diagonal[i][j]` = Zᵢᵀ W Zⱼ for j < i.
    pub off_diagonal: Vec<Vec<TileSparse>>,
    /// [X y]ᵀ W Zⱼ, (p+1) × qⱼ; the last row belongs to the response.
    pub fixed_random: Vec<Dense>,
    /// [X y]ᵀ W [X y], (p+1) × (p+1), both triangles filled.
    pub fixed_fixed: Dense,
    pub n_fixed: usize,
    pub n_obs: usize,
    /// Σ log wᵢ (0 without weights), a constant of the log-likelihood.
    pub sum_log_weights: f64,
}

fn check_weights(weights: Option<&[f64]>, n: usize) -> Result<()> {
    if let Some(w) = weights {
        if w.len() != n {
            return Err(CoreError::InvalidInput(format!(
                "{} weights for {n} observations",
                w.len()
            )));
        }
        if w.iter().any(|v| !(v.is_finite() && *v > 0.0)) {
            return Err(CoreError::InvalidInput(
                "weights must be positive and finite".into(),
            ));
        }
    }
    Ok(())
}

impl CrossProducts {
    /// Blocks for terms `terms` (in their final order), fixed-effects matrix `x` (n × p) and
    /// prior weights; the response row is zero until [`CrossProducts::set_response`].
    pub fn new(
        terms: &[RandomEffectsTerm],
        x: MatRef<'_, f64>,
        weights: Option<&[f64]>,
    ) -> Result<Self> {
        let n = x.nrows();
        let p = x.ncols();
        check_weights(weights, n)?;
        if let Some(term) = terms.iter().find(|t| t.n_obs() != n) {
            return Err(CoreError::InvalidInput(format!(
                "a random-effects term has {} observations, the fixed-effects matrix {n}",
                term.n_obs()
            )));
        }
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);

        let diagonal = terms
            .iter()
            .map(|term| {
                let k = term.k;
                let mut block = TileDiagonal::zeros(k, term.n_levels);
                for (i, &level) in term.codes.iter().enumerate() {
                    let z = &term.z[i * k..(i + 1) * k];
                    let w = weight(i);
                    let tile = block.tile_mut(level as usize);
                    for c in 0..k {
                        for r in 0..k {
                            tile[r + c * k] += w * z[r] * z[c];
                        }
                    }
                }
                block
            })
            .collect();

        let mut off_diagonal = Vec::with_capacity(terms.len());
        for (i, row_term) in terms.iter().enumerate() {
            let mut row_blocks = Vec::with_capacity(i);
            for col_term in &terms[..i] {
                let (mut block, obs_tile) = TileSparse::pattern_from_codes(
                    &row_term.codes,
                    row_term.n_levels,
                    row_term.k,
                    &col_term.codes,
                    col_term.n_levels,
                    col_term.k,
                );
                let (k_row, k_col) = (row_term.k, col_term.k);
                let size = k_row * k_col;
                for (obs, &tile) in obs_tile.iter().enumerate() {
                    let z_row = &row_term.z[obs * k_row..(obs + 1) * k_row];
                    let z_col = &col_term.z[obs * k_col..(obs + 1) * k_col];
                    let w = weight(obs);
                    let values =
                        &mut block.values[tile as usize * size..(tile as usize + 1) * size];
                    for c in 0..k_col {
                        for r in 0..k_row {
                            values[r + c * k_row] += w * z_row[r] * z_col[c];
                        }
                    }
                }
                row_blocks.push(block);
            }
            off_diagonal.push(row_blocks);
        }

        let fixed_random = terms
            .iter()
            .map(|term| {
                let k = term.k;
                let mut block = Dense::zeros(p + 1, term.n_columns());
                for col in 0..p {
                    let x_col = x.col(col);
                    for (i, &level) in term.codes.iter().enumerate() {
                        let wx = weight(i) * x_col[i];
                        let first = level as usize * k;
                        for c in 0..k {
                            block.values[col + (first + c) * (p + 1)] += wx * term.z[i * k + c];
                        }
                    }
                }
                block
            })
            .collect();

        let mut fixed_fixed = Dense::zeros(p + 1, p + 1);
        for a in 0..p {
            let x_a = x.col(a);
            for b in 0..=a {
                let x_b = x.col(b);
                let value: f64 = (0..n).map(|i| weight(i) * x_a[i] * x_b[i]).sum();
                fixed_fixed.values[a + b * (p + 1)] = value;
                fixed_fixed.values[b + a * (p + 1)] = value;
            }
        }
        let sum_log_weights = weights.map_or(0.0, |w| w.iter().map(|v| v.ln()).sum());
        Ok(Self {
            diagonal,
            off_diagonal,
            fixed_random,
            fixed_fixed,
            n_fixed: p,
            n_obs: n,
            sum_log_weights,
        })
    }

    /// Recompute the response row: Zⱼᵀ W y, Xᵀ W y and yᵀ W y.
    pub fn set_response(
        &mut self,
        terms: &[RandomEffectsTerm],
        x: MatRef<'_, f64>,
        y: &[f64],
        weights: Option<&[f64]>,
    ) -> Result<()> {
        let n = self.n_obs;
        let p = self.n_fixed;
        if y.len() != n {
            return Err(CoreError::InvalidInput(format!(
                "response has {} values for {n} observations",
                y.len()
            )));
        }
        if y.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::InvalidInput(
                "the response has non-finite values".into(),
            ));
        }
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        for (term, block) in terms.iter().zip(self.fixed_random.iter_mut()) {
            let k = term.k;
            for c in 0..term.n_columns() {
                block.values[p + c * (p + 1)] = 0.0;
            }
            for (i, &level) in term.codes.iter().enumerate() {
                let wy = weight(i) * y[i];
                let first = level as usize * k;
                for c in 0..k {
                    block.values[p + (first + c) * (p + 1)] += wy * term.z[i * k + c];
                }
            }
        }
        for a in 0..p {
            let x_a = x.col(a);
            let value: f64 = (0..n).map(|i| weight(i) * x_a[i] * y[i]).sum();
            self.fixed_fixed.values[p + a * (p + 1)] = value;
            self.fixed_fixed.values[a + p * (p + 1)] = value;
        }
        self.fixed_fixed.values[p + p * (p + 1)] = (0..n).map(|i| weight(i) * y[i] * y[i]).sum();
        Ok(())
    }

    pub fn n_terms(&self) -> usize {
        self.diagonal.len()
    }
}
