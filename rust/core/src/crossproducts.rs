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
    /// `observation_tiles[i][j][obs]`: the tile of `off_diagonal[i][j]` observation `obs` adds
    /// to, so the values can be recomputed for new weights without redoing the pattern.
    observation_tiles: Vec<Vec<Vec<u32>>>,
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
        let mut off_diagonal = Vec::with_capacity(terms.len());
        let mut observation_tiles = Vec::with_capacity(terms.len());
        for (i, row_term) in terms.iter().enumerate() {
            let (blocks, tiles): (Vec<_>, Vec<_>) = terms[..i]
                .iter()
                .map(|col_term| {
                    TileSparse::pattern_from_codes(
                        &row_term.codes,
                        row_term.n_levels,
                        row_term.k,
                        &col_term.codes,
                        col_term.n_levels,
                        col_term.k,
                    )
                })
                .unzip();
            off_diagonal.push(blocks);
            observation_tiles.push(tiles);
        }
        let mut cross = Self {
            diagonal: terms
                .iter()
                .map(|t| TileDiagonal::zeros(t.k, t.n_levels))
                .collect(),
            off_diagonal,
            observation_tiles,
            fixed_random: terms
                .iter()
                .map(|t| Dense::zeros(p + 1, t.n_columns()))
                .collect(),
            fixed_fixed: Dense::zeros(p + 1, p + 1),
            n_fixed: p,
            n_obs: n,
            sum_log_weights: weights.map_or(0.0, |w| w.iter().map(|v| v.ln()).sum()),
        };
        cross.accumulate_design(terms, x, weights);
        Ok(cross)
    }

    /// Recompute every block for new weights and a new response on the same pattern (PIRLS's
    /// working weights and working response).
    pub fn reweight(
        &mut self,
        terms: &[RandomEffectsTerm],
        x: MatRef<'_, f64>,
        weights: &[f64],
        response: &[f64],
    ) -> Result<()> {
        check_weights(Some(weights), self.n_obs)?;
        self.accumulate_design(terms, x, Some(weights));
        self.set_response(terms, x, response, Some(weights))
    }

    /// The response-free blocks: Zᵢᵀ W Zⱼ, Xᵀ W Zⱼ and Xᵀ W X.
    fn accumulate_design(
        &mut self,
        terms: &[RandomEffectsTerm],
        x: MatRef<'_, f64>,
        weights: Option<&[f64]>,
    ) {
        let n = self.n_obs;
        let p = self.n_fixed;
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        for (term, block) in terms.iter().zip(self.diagonal.iter_mut()) {
            let k = term.k;
            block.values.fill(0.0);
            if k == 1 {
                // Scalar terms (most terms): one multiply-add per observation.
                for (i, (&level, &z)) in term.codes.iter().zip(&term.z).enumerate() {
                    block.values[level as usize] += weight(i) * z * z;
                }
                continue;
            }
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
        }
        for (i, row_term) in terms.iter().enumerate() {
            for (j, col_term) in terms[..i].iter().enumerate() {
                let block = &mut self.off_diagonal[i][j];
                block.values.fill(0.0);
                let (k_row, k_col) = (row_term.k, col_term.k);
                if k_row == 1 && k_col == 1 {
                    for (obs, &tile) in self.observation_tiles[i][j].iter().enumerate() {
                        block.values[tile as usize] +=
                            weight(obs) * row_term.z[obs] * col_term.z[obs];
                    }
                    continue;
                }
                let size = k_row * k_col;
                for (obs, &tile) in self.observation_tiles[i][j].iter().enumerate() {
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
            }
        }
        for (term, block) in terms.iter().zip(self.fixed_random.iter_mut()) {
            let k = term.k;
            for c in 0..term.n_columns() {
                block.values[c * (p + 1)..c * (p + 1) + p].fill(0.0);
            }
            for col in 0..p {
                let x_col = x.col(col);
                if k == 1 {
                    for (i, (&level, &z)) in term.codes.iter().zip(&term.z).enumerate() {
                        block.values[col + level as usize * (p + 1)] += weight(i) * x_col[i] * z;
                    }
                    continue;
                }
                for (i, &level) in term.codes.iter().enumerate() {
                    let wx = weight(i) * x_col[i];
                    let first = level as usize * k;
                    for c in 0..k {
                        block.values[col + (first + c) * (p + 1)] += wx * term.z[i * k + c];
                    }
                }
            }
        }
        for a in 0..p {
            let x_a = x.col(a);
            for b in 0..=a {
                let x_b = x.col(b);
                let value: f64 = (0..n).map(|i| weight(i) * x_a[i] * x_b[i]).sum();
                self.fixed_fixed.values[a + b * (p + 1)] = value;
                self.fixed_fixed.values[b + a * (p + 1)] = value;
            }
        }
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
