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

    /// Take every block's values from `other`, built for the same terms and fixed-effects
    /// columns (the pattern is not copied).
    pub fn copy_values_from(&mut self, other: &Self) {
        debug_assert_eq!(self.n_fixed, other.n_fixed);
        self.copy_random_blocks_from(other);
        for (block, source) in self.fixed_random.iter_mut().zip(&other.fixed_random) {
            block.values.copy_from_slice(&source.values);
        }
        self.fixed_fixed
            .values
            .copy_from_slice(&other.fixed_fixed.values);
    }

    /// The blocks of a design without fixed-effects columns (`self`, p = 0) for the response
    /// r − Xβ, from those of the design with them for the response r (`with_fixed`, same terms
    /// and weights): Zᵀ W (r − Xβ) = ZᵀWr − (ZᵀWX)β and (r − Xβ)ᵀW(r − Xβ) expanded the same
    /// way, in O(q·p) with no pass over the observations.
    pub fn set_from_fixed_offset(&mut self, with_fixed: &Self, beta: &[f64]) {
        let p = with_fixed.n_fixed;
        debug_assert_eq!(self.n_fixed, 0);
        debug_assert_eq!(beta.len(), p);
        self.copy_random_blocks_from(with_fixed);
        for (block, source) in self.fixed_random.iter_mut().zip(&with_fixed.fixed_random) {
            for (value, column) in block
                .values
                .iter_mut()
                .zip(source.values.chunks_exact(p + 1))
            {
                let fixed: f64 = beta.iter().zip(column).map(|(b, x)| b * x).sum();
                *value = column[p] - fixed;
            }
        }
        let gram = &with_fixed.fixed_fixed.values;
        let mut quadratic = gram[p + p * (p + 1)];
        for (a, &beta_a) in beta.iter().enumerate() {
            quadratic -= 2.0 * beta_a * gram[a + p * (p + 1)];
            for (b, &beta_b) in beta.iter().enumerate() {
                quadratic += beta_a * gram[a + b * (p + 1)] * beta_b;
            }
        }
        self.fixed_fixed.values[0] = quadratic;
    }

    /// Zᵢᵀ W Zⱼ from `other` (same terms, same weights).
    fn copy_random_blocks_from(&mut self, other: &Self) {
        for (block, source) in self.diagonal.iter_mut().zip(&other.diagonal) {
            block.values.copy_from_slice(&source.values);
        }
        for (row, source_row) in self.off_diagonal.iter_mut().zip(&other.off_diagonal) {
            for (block, source) in row.iter_mut().zip(source_row) {
                block.values.copy_from_slice(&source.values);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    /// Two crossed terms (one of them a vector term), three fixed-effects columns, uneven weights.
    fn design() -> (Vec<RandomEffectsTerm>, Mat<f64>, Vec<f64>, Vec<f64>) {
        let n = 40;
        let wave = |i: usize, a: f64| ((i as f64) * a).sin();
        let first = RandomEffectsTerm::new(
            (0..n).map(|i| (i % 5) as u32).collect(),
            5,
            2,
            (0..n).flat_map(|i| [1.0, wave(i, 0.7)]).collect(),
        )
        .unwrap();
        let second = RandomEffectsTerm::new(
            (0..n).map(|i| (i * 7 % 3) as u32).collect(),
            3,
            1,
            (0..n).map(|i| 1.0 + 0.1 * wave(i, 1.3)).collect(),
        )
        .unwrap();
        let x = Mat::from_fn(
            n,
            3,
            |i, c| if c == 0 { 1.0 } else { wave(i, 0.3 * c as f64) },
        );
        let weights = (0..n).map(|i| 0.5 + wave(i, 2.1).abs()).collect();
        let response = (0..n).map(|i| 2.0 + wave(i, 0.9)).collect();
        (vec![first, second], x, weights, response)
    }

    #[test]
    fn blocks_for_an_offset_response_match_a_direct_reweight() {
        let (terms, x, weights, response) = design();
        let beta = [0.4, -1.2, 0.7];
        let mut with_fixed = CrossProducts::new(&terms, x.as_ref(), None).unwrap();
        with_fixed
            .reweight(&terms, x.as_ref(), &weights, &response)
            .unwrap();
        let shifted: Vec<f64> = (0..x.nrows())
            .map(|i| response[i] - (0..3).map(|c| beta[c] * x[(i, c)]).sum::<f64>())
            .collect();
        let no_columns = Mat::<f64>::zeros(x.nrows(), 0);
        let mut direct = CrossProducts::new(&terms, no_columns.as_ref(), None).unwrap();
        direct
            .reweight(&terms, no_columns.as_ref(), &weights, &shifted)
            .unwrap();
        let mut derived = CrossProducts::new(&terms, no_columns.as_ref(), None).unwrap();
        derived.set_from_fixed_offset(&with_fixed, &beta);

        let close = |a: &[f64], b: &[f64]| {
            assert_eq!(a.len(), b.len());
            for (a, b) in a.iter().zip(b) {
                assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
            }
        };
        for (a, b) in derived.diagonal.iter().zip(&direct.diagonal) {
            close(&a.values, &b.values);
        }
        close(
            &derived.off_diagonal[1][0].values,
            &direct.off_diagonal[1][0].values,
        );
        for (a, b) in derived.fixed_random.iter().zip(&direct.fixed_random) {
            close(&a.values, &b.values);
        }
        close(&derived.fixed_fixed.values, &direct.fixed_fixed.values);

        let mut copy = CrossProducts::new(&terms, x.as_ref(), None).unwrap();
        copy.copy_values_from(&with_fixed);
        close(&copy.fixed_fixed.values, &with_fixed.fixed_fixed.values);
        close(
            &copy.fixed_random[0].values,
            &with_fixed.fixed_random[0].values,
        );
        close(&copy.diagonal[0].values, &with_fixed.diagonal[0].values);
    }
}
