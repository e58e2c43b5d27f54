//! The θ-free blocks of the augmented system: Zᵢᵀ W Zⱼ, [X y]ᵀ W Zⱼ and [X y]ᵀ W [X y]. They are
//! computed once per (design, weights); a new response recomputes only the y row. After this, an
//! objective evaluation never touches the n observations (DESIGN.md, "where the speed comes from").

use std::borrow::Cow;

use faer::MatRef;
use rayon::prelude::*;

use crate::blocks::{Dense, TileDiagonal, TileSparse};
use crate::error::{CoreError, Result};
use crate::terms::RandomEffectsTerm;
use crate::threads::construction_is_parallel;

#[derive(Debug, Clone)]
pub(crate) struct CrossProducts {
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
    /// Observations of positive weight: the n of the likelihood. A row of weight 0 has infinite
    /// variance σ²/0 and carries no information, so the fit is that of the other rows (lme4's
    /// lmer instead adds log 0 to its criterion and cannot move from its start).
    pub n_informative: usize,
    /// Σ log wᵢ over the informative rows (0 without weights), a constant of the log-likelihood.
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
        if w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(CoreError::InvalidInput(
                "weights must be non-negative and finite".into(),
            ));
        }
        if w.iter().all(|&v| v == 0.0) {
            return Err(CoreError::InvalidInput("all weights are 0".into()));
        }
    }
    Ok(())
}

impl CrossProducts {
    /// Whether computing the blocks runs in parallel.
    pub(crate) fn is_parallel(&self) -> bool {
        construction_is_parallel(self.n_obs)
    }

    /// Blocks for terms `terms` (in their final order), fixed-effects matrix `x` (n × p) and
    /// prior weights; the response row is zero until [`CrossProducts::set_response`].
    pub(crate) fn new(
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
            n_informative: weights.map_or(n, |w| w.iter().filter(|&&v| v > 0.0).count()),
            sum_log_weights: weights.map_or(0.0, |w| {
                w.iter().filter(|&&v| v > 0.0).map(|v| v.ln()).sum()
            }),
        };
        cross.accumulate_design(terms, x, weights);
        Ok(cross)
    }

    /// Recompute every block for new weights and a new response on the same pattern (PIRLS's
    /// working weights and working response).
    pub(crate) fn reweight(
        &mut self,
        terms: &[RandomEffectsTerm],
        x: MatRef<'_, f64>,
        weights: &[f64],
        response: &[f64],
    ) -> Result<()> {
        check_weights(Some(weights), self.n_obs)?;
        self.check_response(response)?;
        let mut blocks = self.design_blocks(terms.len());
        blocks.extend(self.response_blocks(terms.len()));
        self.compute(terms, x, Some(weights), Some(response), &blocks);
        Ok(())
    }

    /// The response-free blocks: Zᵢᵀ W Zⱼ, Xᵀ W Zⱼ and Xᵀ W X.
    fn accumulate_design(
        &mut self,
        terms: &[RandomEffectsTerm],
        x: MatRef<'_, f64>,
        weights: Option<&[f64]>,
    ) {
        let blocks = self.design_blocks(terms.len());
        self.compute(terms, x, weights, None, &blocks);
    }

    /// Recompute the response row: Zⱼᵀ W y, Xᵀ W y and yᵀ W y.
    pub(crate) fn set_response(
        &mut self,
        terms: &[RandomEffectsTerm],
        x: MatRef<'_, f64>,
        y: &[f64],
        weights: Option<&[f64]>,
    ) -> Result<()> {
        self.check_response(y)?;
        let blocks = self.response_blocks(terms.len());
        self.compute(terms, x, weights, Some(y), &blocks);
        Ok(())
    }

    fn check_response(&self, y: &[f64]) -> Result<()> {
        if y.len() != self.n_obs {
            return Err(CoreError::InvalidInput(format!(
                "response has {} values for {} observations",
                y.len(),
                self.n_obs
            )));
        }
        if y.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::InvalidInput(
                "the response has non-finite values".into(),
            ));
        }
        Ok(())
    }

    fn design_blocks(&self, n_terms: usize) -> Vec<Block> {
        let p = self.n_fixed;
        let mut blocks: Vec<Block> = (0..n_terms).map(Block::Diagonal).collect();
        blocks.extend((0..n_terms).flat_map(|i| (0..i).map(move |j| Block::OffDiagonal(i, j))));
        blocks.extend((0..n_terms).flat_map(|j| (0..p).map(move |row| Block::FixedRandom(j, row))));
        blocks.push(Block::FixedFixed);
        blocks
    }

    fn response_blocks(&self, n_terms: usize) -> Vec<Block> {
        let p = self.n_fixed;
        let mut blocks: Vec<Block> = (0..n_terms).map(|j| Block::FixedRandom(j, p)).collect();
        blocks.push(Block::ResponseFixed);
        blocks
    }

    /// Compute `blocks` from the observations, one parallel task per block. Each task sums its
    /// observations in order, so the values do not depend on the number of threads.
    fn compute(
        &mut self,
        terms: &[RandomEffectsTerm],
        x: MatRef<'_, f64>,
        weights: Option<&[f64]>,
        response: Option<&[f64]>,
        blocks: &[Block],
    ) {
        let p = self.n_fixed;
        let columns: Vec<Cow<'_, [f64]>> = (0..p).map(|c| column(x, c)).collect();
        // Row `row` of [X y]ᵀ: a column of X, or the response.
        let row_values = |row: usize| -> &[f64] {
            if row < p {
                &columns[row]
            } else {
                response.expect("response blocks need a response")
            }
        };
        let observation_tiles = &self.observation_tiles;
        let off_diagonal = &self.off_diagonal;
        let block_values = |block: &Block| -> Vec<f64> {
            match *block {
                Block::Diagonal(j) => diagonal_tiles(&terms[j], weights),
                Block::OffDiagonal(i, j) => off_diagonal_tiles(
                    &terms[i],
                    &terms[j],
                    &observation_tiles[i][j],
                    off_diagonal[i][j].values.len(),
                    weights,
                ),
                Block::FixedRandom(j, row) => row_by_term(&terms[j], row_values(row), weights),
                Block::FixedFixed => {
                    let mut gram = Vec::with_capacity(p * (p + 1) / 2);
                    for a in 0..p {
                        for b in 0..=a {
                            gram.push(weighted_dot(&columns[a], &columns[b], weights));
                        }
                    }
                    gram
                }
                Block::ResponseFixed => {
                    let y = response.expect("response blocks need a response");
                    (0..=p)
                        .map(|a| weighted_dot(row_values(a), y, weights))
                        .collect()
                }
            }
        };
        let values: Vec<Vec<f64>> = if !self.is_parallel() {
            blocks.iter().map(block_values).collect()
        } else {
            blocks.par_iter().map(block_values).collect()
        };
        for (block, values) in blocks.iter().zip(values) {
            match *block {
                Block::Diagonal(j) => self.diagonal[j].values = values,
                Block::OffDiagonal(i, j) => self.off_diagonal[i][j].values = values,
                Block::FixedRandom(j, row) => {
                    let target = &mut self.fixed_random[j].values;
                    for (column, value) in values.into_iter().enumerate() {
                        target[row + column * (p + 1)] = value;
                    }
                }
                Block::FixedFixed => {
                    let mut entries = values.into_iter();
                    for a in 0..p {
                        for b in 0..=a {
                            let value = entries.next().expect("one entry per pair");
                            self.fixed_fixed.values[a + b * (p + 1)] = value;
                            self.fixed_fixed.values[b + a * (p + 1)] = value;
                        }
                    }
                }
                Block::ResponseFixed => {
                    for (a, value) in values.into_iter().enumerate() {
                        self.fixed_fixed.values[p + a * (p + 1)] = value;
                        self.fixed_fixed.values[a + p * (p + 1)] = value;
                    }
                }
            }
        }
    }

    pub(crate) fn n_terms(&self) -> usize {
        self.diagonal.len()
    }

    /// Take every block's values from `other`, built for the same terms and fixed-effects
    /// columns (the pattern is not copied).
    pub(crate) fn copy_values_from(&mut self, other: &Self) {
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
    pub(crate) fn set_from_fixed_offset(&mut self, with_fixed: &Self, beta: &[f64]) {
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

    /// The blocks without the observations `rows` (distinct): every block computed from `terms`,
    /// `x`, response `y` and `weights` (those of these blocks) minus those rows' contributions,
    /// with each product formed as in the accumulation ((w·a)·b), in O(rows · (p + Σk)²) with no
    /// pass over the other observations. A level left without rows (`rows_left[t][level]` = 0)
    /// gets exact zeros (its tiles and its columns of [X y]ᵀ W Z) rather than what the
    /// subtraction leaves of them, rounding included: it is then exactly the structure the other
    /// rows alone would build. A row of weight 0 contributed nothing and is skipped.
    pub(crate) fn remove_rows(
        &mut self,
        terms: &[RandomEffectsTerm],
        x: MatRef<'_, f64>,
        y: &[f64],
        weights: Option<&[f64]>,
        rows: &[usize],
        rows_left: &[Vec<u32>],
    ) {
        let p = self.n_fixed;
        let mut values = vec![0.0; p + 1];
        for &obs in rows {
            let w = weights.map_or(1.0, |w| w[obs]);
            if w == 0.0 {
                continue;
            }
            self.n_informative -= 1;
            if weights.is_some() {
                self.sum_log_weights -= w.ln();
            }
            for (c, value) in values[..p].iter_mut().enumerate() {
                *value = x[(obs, c)];
            }
            values[p] = y[obs];
            let gone = |t: usize| rows_left[t][terms[t].codes[obs] as usize] == 0;
            for (t, term) in terms.iter().enumerate() {
                let (k, level) = (term.k, term.codes[obs] as usize);
                let z = &term.z[obs * k..(obs + 1) * k];
                let tile = self.diagonal[t].tile_mut(level);
                let columns = &mut self.fixed_random[t].values
                    [level * k * (p + 1)..(level + 1) * k * (p + 1)];
                if gone(t) {
                    tile.fill(0.0);
                    columns.fill(0.0);
                    continue;
                }
                for c in 0..k {
                    for r in 0..k {
                        tile[r + c * k] -= w * z[r] * z[c];
                    }
                    for (a, &v) in values.iter().enumerate() {
                        columns[a + c * (p + 1)] -= w * v * z[c];
                    }
                }
            }
            for i in 0..terms.len() {
                for j in 0..i {
                    let (k_row, k_col) = (terms[i].k, terms[j].k);
                    let size = k_row * k_col;
                    let index = self.observation_tiles[i][j][obs] as usize;
                    let tile =
                        &mut self.off_diagonal[i][j].values[index * size..(index + 1) * size];
                    if gone(i) || gone(j) {
                        tile.fill(0.0);
                        continue;
                    }
                    let z_row = &terms[i].z[obs * k_row..(obs + 1) * k_row];
                    let z_col = &terms[j].z[obs * k_col..(obs + 1) * k_col];
                    for c in 0..k_col {
                        for r in 0..k_row {
                            tile[r + c * k_row] -= w * z_row[r] * z_col[c];
                        }
                    }
                }
            }
            // Xᵀ W X pairs as `weighted_dot(column a, column b)` (a ≥ b); [X y]ᵀ W y as
            // `weighted_dot(row a, y)`.
            let gram = &mut self.fixed_fixed.values;
            for a in 0..=p {
                for b in 0..=a {
                    let product = if a == p {
                        w * values[b] * values[p]
                    } else {
                        w * values[a] * values[b]
                    };
                    gram[a + b * (p + 1)] -= product;
                    if a != b {
                        gram[b + a * (p + 1)] -= product;
                    }
                }
            }
        }
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

/// One block of the cross-products, computed by one task of [`CrossProducts::compute`].
#[derive(Debug, Clone, Copy)]
enum Block {
    /// Zⱼᵀ W Zⱼ.
    Diagonal(usize),
    /// Zᵢᵀ W Zⱼ, j < i.
    OffDiagonal(usize, usize),
    /// Row `row` of [X y]ᵀ W Zⱼ (row p is the response's).
    FixedRandom(usize, usize),
    /// Xᵀ W X.
    FixedFixed,
    /// [X y]ᵀ W y.
    ResponseFixed,
}

/// Column `c` of `x` as a slice, copied only when `x` is not column-major.
fn column(x: MatRef<'_, f64>, c: usize) -> Cow<'_, [f64]> {
    match x.col(c).try_as_col_major() {
        Some(contiguous) => Cow::Borrowed(contiguous.as_slice()),
        None => Cow::Owned(x.col(c).iter().copied().collect()),
    }
}

/// Σᵢ wᵢ aᵢ bᵢ, in order.
fn weighted_dot(a: &[f64], b: &[f64], weights: Option<&[f64]>) -> f64 {
    match weights {
        Some(w) => a.iter().zip(b).zip(w).map(|((a, b), w)| w * a * b).sum(),
        None => a.iter().zip(b).map(|(a, b)| a * b).sum(),
    }
}

/// The tiles of Zⱼᵀ W Zⱼ, level by level.
fn diagonal_tiles(term: &RandomEffectsTerm, weights: Option<&[f64]>) -> Vec<f64> {
    let k = term.k;
    let mut values = vec![0.0; term.n_levels * k * k];
    if k == 1 {
        // Scalar terms (most terms): one multiply-add per observation.
        match weights {
            Some(w) => {
                for ((&level, &z), &w) in term.codes.iter().zip(&term.z).zip(w) {
                    values[level as usize] += w * z * z;
                }
            }
            None => {
                for (&level, &z) in term.codes.iter().zip(&term.z) {
                    values[level as usize] += z * z;
                }
            }
        }
        return values;
    }
    for (i, (&level, z)) in term.codes.iter().zip(term.z.chunks_exact(k)).enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        let tile = &mut values[level as usize * k * k..(level as usize + 1) * k * k];
        for c in 0..k {
            for r in 0..k {
                tile[r + c * k] += w * z[r] * z[c];
            }
        }
    }
    values
}

/// The tiles of Zᵢᵀ W Zⱼ, `tiles[obs]` being the tile observation `obs` adds to.
fn off_diagonal_tiles(
    row_term: &RandomEffectsTerm,
    col_term: &RandomEffectsTerm,
    tiles: &[u32],
    n_values: usize,
    weights: Option<&[f64]>,
) -> Vec<f64> {
    let mut values = vec![0.0; n_values];
    let (k_row, k_col) = (row_term.k, col_term.k);
    let weight = |obs: usize| weights.map_or(1.0, |w| w[obs]);
    if k_row == 1 && k_col == 1 {
        for (obs, &tile) in tiles.iter().enumerate() {
            values[tile as usize] += weight(obs) * row_term.z[obs] * col_term.z[obs];
        }
        return values;
    }
    let size = k_row * k_col;
    for (obs, &tile) in tiles.iter().enumerate() {
        let z_row = &row_term.z[obs * k_row..(obs + 1) * k_row];
        let z_col = &col_term.z[obs * k_col..(obs + 1) * k_col];
        let w = weight(obs);
        let tile = &mut values[tile as usize * size..(tile as usize + 1) * size];
        for c in 0..k_col {
            for r in 0..k_row {
                tile[r + c * k_row] += w * z_row[r] * z_col[c];
            }
        }
    }
    values
}

/// vᵀ W Zⱼ for one row v of [X y]ᵀ: one value per column of Zⱼ.
fn row_by_term(term: &RandomEffectsTerm, v: &[f64], weights: Option<&[f64]>) -> Vec<f64> {
    let k = term.k;
    let mut values = vec![0.0; term.n_columns()];
    if k == 1 {
        match weights {
            Some(w) => {
                for (((&level, &z), &v), &w) in term.codes.iter().zip(&term.z).zip(v).zip(w) {
                    values[level as usize] += w * v * z;
                }
            }
            None => {
                for ((&level, &z), &v) in term.codes.iter().zip(&term.z).zip(v) {
                    values[level as usize] += v * z;
                }
            }
        }
        return values;
    }
    for (i, ((&level, z), &v)) in term
        .codes
        .iter()
        .zip(term.z.chunks_exact(k))
        .zip(v)
        .enumerate()
    {
        let wv = weights.map_or(1.0, |w| w[i]) * v;
        let first = level as usize * k;
        for (value, z) in values[first..first + k].iter_mut().zip(z) {
            *value += wv * z;
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::threads::PARALLEL_MIN_OBSERVATIONS;
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
    fn parallel_blocks_do_not_depend_on_the_number_of_threads() {
        let n = 3 * PARALLEL_MIN_OBSERVATIONS;
        let wave = |i: usize, a: f64| ((i as f64) * a).sin();
        let terms = vec![
            RandomEffectsTerm::new(
                (0..n).map(|i| (i * 31 % 997) as u32).collect(),
                997,
                2,
                (0..n).flat_map(|i| [1.0, wave(i, 0.7)]).collect(),
            )
            .unwrap(),
            RandomEffectsTerm::new(
                (0..n).map(|i| (i % 89) as u32).collect(),
                89,
                1,
                vec![1.0; n],
            )
            .unwrap(),
        ];
        let x = Mat::from_fn(n, 3, |i, c| wave(i, 0.1 + 0.2 * c as f64));
        let weights: Vec<f64> = (0..n).map(|i| 0.5 + wave(i, 2.1).abs()).collect();
        let response: Vec<f64> = (0..n).map(|i| wave(i, 0.9)).collect();
        let blocks = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut cross = CrossProducts::new(&terms, x.as_ref(), None).unwrap();
                cross
                    .reweight(&terms, x.as_ref(), &weights, &response)
                    .unwrap();
                cross
            })
        };
        let (one, three) = (blocks(1), blocks(3));
        for (a, b) in one.diagonal.iter().zip(&three.diagonal) {
            assert_eq!(a.values, b.values);
        }
        assert_eq!(
            one.off_diagonal[1][0].values,
            three.off_diagonal[1][0].values
        );
        for (a, b) in one.fixed_random.iter().zip(&three.fixed_random) {
            assert_eq!(a.values, b.values);
        }
        assert_eq!(one.fixed_fixed.values, three.fixed_fixed.values);
    }

    /// Zᵢᵀ W Zⱼ as a dense matrix, whatever its pattern.
    fn dense_tiles(block: &TileSparse) -> Vec<f64> {
        let (k_row, k_col) = (block.k_row, block.k_col);
        let rows = block.n_row_levels * k_row;
        let mut dense = vec![0.0; rows * block.n_col_levels * k_col];
        for b in 0..block.n_col_levels {
            for index in block.col_ptr[b]..block.col_ptr[b + 1] {
                let a = block.row_level[index];
                let tile = &block.values[index * k_row * k_col..(index + 1) * k_row * k_col];
                for c in 0..k_col {
                    for r in 0..k_row {
                        dense[a * k_row + r + (b * k_col + c) * rows] = tile[r + c * k_row];
                    }
                }
            }
        }
        dense
    }

    #[test]
    fn removing_rows_leaves_the_blocks_of_the_other_rows() {
        let (terms, x, mut weights, response) = design();
        weights[7] = 0.0;
        let n = x.nrows();
        // Every row of the first term's level 0, and rows 7 (weight 0) and 12.
        let removed: Vec<usize> = (0..n)
            .filter(|i| i % 5 == 0 || [7, 12].contains(i))
            .collect();
        let kept: Vec<usize> = (0..n).filter(|i| !removed.contains(i)).collect();
        let rows_left: Vec<Vec<u32>> = terms
            .iter()
            .map(|t| {
                let mut counts = vec![0u32; t.n_levels];
                for &i in &kept {
                    counts[t.codes[i] as usize] += 1;
                }
                counts
            })
            .collect();
        assert_eq!(rows_left[0][0], 0);
        let mut downdated = CrossProducts::new(&terms, x.as_ref(), Some(&weights)).unwrap();
        downdated
            .set_response(&terms, x.as_ref(), &response, Some(&weights))
            .unwrap();
        downdated.remove_rows(
            &terms,
            x.as_ref(),
            &response,
            Some(&weights),
            &removed,
            &rows_left,
        );

        let pick = |values: &[f64], k: usize| -> Vec<f64> {
            kept.iter()
                .flat_map(|&i| values[i * k..(i + 1) * k].to_vec())
                .collect()
        };
        let own_terms: Vec<RandomEffectsTerm> = terms
            .iter()
            .map(|t| {
                let codes = kept.iter().map(|&i| t.codes[i]).collect();
                RandomEffectsTerm::new(codes, t.n_levels, t.k, pick(&t.z, t.k)).unwrap()
            })
            .collect();
        let own_x = Mat::from_fn(kept.len(), x.ncols(), |r, c| x[(kept[r], c)]);
        let (own_weights, own_response) = (pick(&weights, 1), pick(&response, 1));
        let mut own = CrossProducts::new(&own_terms, own_x.as_ref(), Some(&own_weights)).unwrap();
        own.set_response(
            &own_terms,
            own_x.as_ref(),
            &own_response,
            Some(&own_weights),
        )
        .unwrap();

        let close = |a: &[f64], b: &[f64]| {
            assert_eq!(a.len(), b.len());
            for (a, b) in a.iter().zip(b) {
                assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
            }
        };
        for (a, b) in downdated.diagonal.iter().zip(&own.diagonal) {
            close(&a.values, &b.values);
        }
        // The emptied level is exactly zero, not what the subtraction leaves.
        assert!(downdated.diagonal[0].tile(0).iter().all(|&v| v == 0.0));
        assert!(downdated.fixed_random[0].values[..2 * 4]
            .iter()
            .all(|&v| v == 0.0));
        close(
            &dense_tiles(&downdated.off_diagonal[1][0]),
            &dense_tiles(&own.off_diagonal[1][0]),
        );
        for (a, b) in downdated.fixed_random.iter().zip(&own.fixed_random) {
            close(&a.values, &b.values);
        }
        close(&downdated.fixed_fixed.values, &own.fixed_fixed.values);
        assert_eq!(downdated.n_informative, own.n_informative);
        close(&[downdated.sum_log_weights], &[own.sum_log_weights]);
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
