//! Blocked Cholesky factor L of the scaled augmented system (DESIGN.md; Bates et al. 2015, JSS
//! 67(1), §3; MixedModels.jl's `updateL!`):
//!
//!   [ΛᵀZᵀWZΛ + I   ΛᵀZᵀW[X y]    ]
//!   [[X y]ᵀWZΛ      [X y]ᵀW[X y]  ]  =  L Lᵀ
//!
//! Terms are ordered by decreasing number of levels. Block kinds, decided once from the pattern:
//! the first term's diagonal block is tile-diagonal; the second's stays tile-diagonal when its
//! factor is nested in the first (no fill-in), else dense; later diagonal blocks are dense. Blocks
//! below the first term's diagonal keep their tile-sparse pattern; other random-effects blocks and
//! the fixed-effects rows are dense. Per θ, only the numbers are recomputed: no allocation, no
//! O(n) work.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Accum, Mat, Par};
use rayon::prelude::*;

use crate::blocks::{Dense, RowIndex, TileDiagonal, TileSparse};
use crate::crossproducts::CrossProducts;
use crate::dense::{
    cholesky_scratch, congruence, dense_lower_cholesky, invert_lower_triangular,
    right_multiply_lower, right_solve_lower_transpose, scale_tile, subtract_lower_gram,
    subtract_product_transpose, tile_cholesky, with_tile_size,
};
use crate::error::{CoreError, Result};
use crate::fixed_block::FixedEffectsBlock;

/// Largest dense diagonal block the blocked path accepts; beyond it the general sparse path is
/// cheaper (a dense factorisation costs m³/3 per evaluation).
pub(crate) const MAX_DENSE_DIAGONAL: usize = 6000;

/// Dense blocks from this dimension on are worth spreading over threads.
const PARALLEL_DENSE_DIMENSION: usize = 256;
/// Rows below a dense block from which faer's own (parallel) triangular solve is used per block;
/// fewer are stacked and solved together.
const SMALL_RIGHT_HAND_SIDE: usize = 32;

#[derive(Debug, Clone)]
pub(crate) enum DiagonalFactor {
    Tiles(TileDiagonal),
    Dense(Dense),
}

#[derive(Debug, Clone)]
pub(crate) enum LowerBlock {
    Tiles(TileSparse),
    Dense(Dense),
}

pub(crate) struct BlockedCholesky {
    ks: Vec<usize>,
    pub diagonal: Vec<DiagonalFactor>,
    /// `lower[i][j]`, j < i: the random-effects blocks below the diagonal.
    pub lower: Vec<Vec<LowerBlock>>,
    /// `lower[i][0]` by tile row where it is scalar tile-sparse and term i's diagonal block dense:
    /// its gram fills that block one column at a time, in parallel.
    first_column_rows: Vec<Option<RowIndex>>,
    /// L's fixed-effects-and-response rows against term j: (p+1) × qⱼ.
    pub fixed_random: Vec<Dense>,
    /// L's last block, for the fixed effects and the response.
    pub fixed: FixedEffectsBlock,
    dense_scratch: MemBuffer,
    tile_scratch: Vec<f64>,
    /// The rows of L below a dense diagonal block, stacked ((Σ rows) × q) when they are few, so
    /// that one triangular solve reads the block's factor once for all of them.
    stacked_rows: Vec<f64>,
    /// Threads for dense kernels: all of rayon's for large dense blocks. faer splits dense work
    /// over output blocks, never over a reduction, so results do not depend on the thread count
    /// (tested in src/tests/blocked_vs_dense.rs).
    par: Par,
}

fn dense_cholesky(
    block: &mut Dense,
    par: Par,
    stack: &mut MemStack,
    name: impl Fn() -> String,
) -> Result<()> {
    dense_lower_cholesky(block, par, stack).map_err(|index| CoreError::NotPositiveDefinite {
        block: name(),
        pivot: index,
    })
}

impl BlockedCholesky {
    /// Analyse the structure of `cross` once: decide every block's kind and allocate it.
    pub(crate) fn new(cross: &CrossProducts) -> Result<Self> {
        let sizes: Vec<usize> = cross.diagonal.iter().map(|d| d.k * d.n_levels).collect();
        Self::with_dense_first_column(cross, dense_first_column_pays(cross, &sizes))
    }

    /// As [`BlockedCholesky::new`] with the kind of the blocks below the first term's diagonal
    /// chosen by the caller (dense or tile-sparse); they stay tile-sparse whenever the second
    /// term's diagonal block does (a nested second factor), where dense would only cost more.
    pub(crate) fn with_dense_first_column(
        cross: &CrossProducts,
        dense_first_column: bool,
    ) -> Result<Self> {
        let n_terms = cross.n_terms();
        let ks: Vec<usize> = cross.diagonal.iter().map(|d| d.k).collect();
        let sizes: Vec<usize> = cross.diagonal.iter().map(|d| d.k * d.n_levels).collect();
        let p1 = cross.n_fixed + 1;

        let mut diagonal = Vec::with_capacity(n_terms);
        for j in 0..n_terms {
            let stays_tiled =
                j == 0 || (j == 1 && cross.off_diagonal[1][0].at_most_one_tile_per_column());
            if stays_tiled {
                diagonal.push(DiagonalFactor::Tiles(TileDiagonal::zeros(
                    ks[j],
                    cross.diagonal[j].n_levels,
                )));
            } else {
                if sizes[j] > MAX_DENSE_DIAGONAL {
                    return Err(CoreError::Specification(format!(
                        "the blocked factorisation would need a dense {0}×{0} block",
                        sizes[j]
                    )));
                }
                diagonal.push(DiagonalFactor::Dense(Dense::zeros(sizes[j], sizes[j])));
            }
        }
        let first_column_dense =
            dense_first_column && n_terms > 1 && matches!(diagonal[1], DiagonalFactor::Dense(_));
        let lower: Vec<Vec<LowerBlock>> = (0..n_terms)
            .map(|i| {
                (0..i)
                    .map(|j| {
                        if j == 0 && !first_column_dense {
                            LowerBlock::Tiles(cross.off_diagonal[i][0].clone())
                        } else {
                            LowerBlock::Dense(Dense::zeros(sizes[i], sizes[j]))
                        }
                    })
                    .collect()
            })
            .collect();
        let first_column_rows = lower
            .iter()
            .zip(&diagonal)
            .map(
                |(row, diagonal): (&Vec<LowerBlock>, _)| match (row.first(), diagonal) {
                    (Some(LowerBlock::Tiles(tiles)), DiagonalFactor::Dense(_))
                        if tiles.tile_size() == 1 =>
                    {
                        Some(tiles.row_index())
                    }
                    _ => None,
                },
            )
            .collect();
        let fixed_random = sizes.iter().map(|&q| Dense::zeros(p1, q)).collect();
        let largest_dense = diagonal
            .iter()
            .map(|d| match d {
                DiagonalFactor::Dense(m) => m.nrows,
                DiagonalFactor::Tiles(_) => 0,
            })
            .max()
            .unwrap_or(0)
            .max(p1);
        let max_k = ks.iter().copied().max().unwrap_or(1);
        let stacked_size = (0..n_terms)
            .filter(|&j| matches!(diagonal[j], DiagonalFactor::Dense(_)))
            .map(|j| (sizes[j + 1..].iter().sum::<usize>() + p1, sizes[j]))
            .filter(|&(n_rows, _)| n_rows < SMALL_RIGHT_HAND_SIDE)
            .map(|(n_rows, q)| n_rows * q)
            .max()
            .unwrap_or(0);
        let par = if largest_dense >= PARALLEL_DENSE_DIMENSION {
            Par::rayon(0)
        } else {
            Par::Seq
        };
        Ok(Self {
            ks,
            diagonal,
            lower,
            first_column_rows,
            fixed_random,
            fixed: FixedEffectsBlock::new(p1 - 1),
            dense_scratch: cholesky_scratch(largest_dense, par),
            tile_scratch: vec![0.0; 2 * max_k * max_k],
            stacked_rows: vec![0.0; stacked_size],
            par,
        })
    }

    /// Whether factorising uses more than one thread (large dense blocks).
    pub(crate) fn is_parallel(&self) -> bool {
        !matches!(self.par, Par::Seq)
    }

    /// Refactor for relative covariance factors `lambdas` (one k×k column-major λ per term).
    pub(crate) fn factorize(&mut self, cross: &CrossProducts, lambdas: &[Vec<f64>]) -> Result<()> {
        let n_terms = self.ks.len();
        for j in 0..n_terms {
            self.factor_diagonal(cross, lambdas, j)?;
            for i in j + 1..n_terms {
                self.factor_lower(cross, lambdas, i, j);
            }
            self.factor_fixed_random(cross, lambdas, j);
            self.solve_rows_below(j);
        }
        self.factor_fixed_fixed(cross)
    }

    fn factor_diagonal(
        &mut self,
        cross: &CrossProducts,
        lambdas: &[Vec<f64>],
        j: usize,
    ) -> Result<()> {
        let par = self.par;
        let k = self.ks[j];
        let lambda = &lambdas[j];
        let source = &cross.diagonal[j];
        let (scratch, scaled) = self.tile_scratch.split_at_mut(k * k);
        let scaled = &mut scaled[..k * k];
        match &mut self.diagonal[j] {
            DiagonalFactor::Tiles(target) => {
                if k == 1 {
                    let scale = lambda[0] * lambda[0];
                    for (out, &value) in target.values.iter_mut().zip(&source.values) {
                        *out = value * scale + 1.0;
                    }
                } else {
                    with_tile_size!(k, |k| {
                        for level in 0..source.n_levels {
                            let tile = target.tile_mut(level);
                            scale_tile(source.tile(level), lambda, k, lambda, k, scratch, tile);
                            for c in 0..k {
                                tile[c + c * k] += 1.0;
                            }
                        }
                    })
                }
                // Only the nested second term arrives here with an update (one tile per column).
                if j == 1 {
                    if let LowerBlock::Tiles(left) = &self.lower[1][0] {
                        let k0 = left.k_col;
                        for index in 0..left.n_tiles() {
                            let row = left.row_level[index];
                            let t = left.tile(index);
                            let tile = target.tile_mut(row);
                            subtract_product_transpose(tile, k, t, k, t, k, k, k0);
                        }
                    }
                }
                with_tile_size!(k, |k| {
                    for level in 0..source.n_levels {
                        tile_cholesky(target.tile_mut(level), k).map_err(|pivot| {
                            CoreError::NotPositiveDefinite {
                                block: format!("random-effects term {j}, level {level}"),
                                pivot,
                            }
                        })?;
                    }
                });
                Ok(())
            }
            DiagonalFactor::Dense(target) => {
                // The lower triangle is built from zero (the upper one is never read): −Σ L_jk L_jkᵀ
                // over the blocks to the left, then + ΛᵀZᵀWZΛ + I on the diagonal tiles.
                let stride = target.nrows;
                let blocks = &self.lower[j];
                let scalar_gram = match (blocks.first(), &self.first_column_rows[j]) {
                    (Some(LowerBlock::Tiles(tiles)), Some(rows)) => Some((tiles, rows)),
                    _ => None,
                };
                match scalar_gram {
                    Some((tiles, rows)) => set_negative_scalar_tile_gram(target, tiles, rows),
                    None => {
                        for c in 0..stride {
                            target.values[c + c * stride..(c + 1) * stride].fill(0.0);
                        }
                    }
                }
                for block in &blocks[usize::from(scalar_gram.is_some())..] {
                    match block {
                        LowerBlock::Tiles(left) => subtract_tile_gram(target, left, left, true),
                        LowerBlock::Dense(m) => subtract_lower_gram(target, m.as_ref(), par),
                    }
                }
                for level in 0..source.n_levels {
                    let first = level * k;
                    let out = &mut target.values[first + first * stride..];
                    // Scale into the tile scratch, then add the tile's lower triangle.
                    scale_tile(source.tile(level), lambda, k, lambda, k, scratch, scaled);
                    for c in 0..k {
                        for r in c..k {
                            out[r + c * stride] += scaled[r + c * k];
                        }
                        out[c + c * stride] += 1.0;
                    }
                }
                let stack = MemStack::new(&mut self.dense_scratch);
                dense_cholesky(target, par, stack, || format!("random-effects term {j}"))
            }
        }
    }

    fn factor_lower(&mut self, cross: &CrossProducts, lambdas: &[Vec<f64>], i: usize, j: usize) {
        let par = self.par;
        let (k_row, k_col) = (self.ks[i], self.ks[j]);
        let source = &cross.off_diagonal[i][j];
        let (scratch, scaled) = self.tile_scratch.split_at_mut(k_row * k_col);
        let scaled = &mut scaled[..k_row * k_col];
        let (rows_above, rows_from_i) = self.lower.split_at_mut(i);
        let (row_blocks_before, row_blocks_from_j) = rows_from_i[0].split_at_mut(j);
        let target = &mut row_blocks_from_j[0];
        match target {
            LowerBlock::Tiles(tiles) => {
                if let (1, 1, DiagonalFactor::Tiles(factor)) = (k_row, k_col, &self.diagonal[j]) {
                    // Scalar terms: each entry is λᵢ a λⱼ / L_bb, one pass without tile calls.
                    let scale = lambdas[i][0] * lambdas[j][0];
                    for b in 0..tiles.n_col_levels {
                        let pivot = factor.values[b];
                        for t in tiles.col_ptr[b]..tiles.col_ptr[b + 1] {
                            tiles.values[t] = source.values[t] * scale / pivot;
                        }
                    }
                    return;
                }
                let size = k_row * k_col;
                for index in 0..source.n_tiles() {
                    scale_tile(
                        source.tile(index),
                        &lambdas[i],
                        k_row,
                        &lambdas[j],
                        k_col,
                        scratch,
                        &mut tiles.values[index * size..(index + 1) * size],
                    );
                }
                if let DiagonalFactor::Tiles(factor) = &self.diagonal[j] {
                    for b in 0..tiles.n_col_levels {
                        for t in tiles.col_ptr[b]..tiles.col_ptr[b + 1] {
                            let tile = &mut tiles.values[t * size..(t + 1) * size];
                            right_solve_lower_transpose(tile, k_row, k_row, factor.tile(b), k_col);
                        }
                    }
                }
            }
            LowerBlock::Dense(m) => {
                m.values.fill(0.0);
                let stride = m.nrows;
                if k_row == 1 && k_col == 1 {
                    // Scalar terms: scatter λᵢ a λⱼ without tile calls.
                    let scale = lambdas[i][0] * lambdas[j][0];
                    for b in 0..source.n_col_levels {
                        for (index, a) in source.column(b) {
                            m.values[a + b * stride] = source.values[index] * scale;
                        }
                    }
                } else {
                    for b in 0..source.n_col_levels {
                        for (index, a) in source.column(b) {
                            scale_tile(
                                source.tile(index),
                                &lambdas[i],
                                k_row,
                                &lambdas[j],
                                k_col,
                                scratch,
                                scaled,
                            );
                            let out = &mut m.values[a * k_row + b * k_col * stride..];
                            for c in 0..k_col {
                                for r in 0..k_row {
                                    out[r + c * stride] = scaled[r + c * k_row];
                                }
                            }
                        }
                    }
                }
                let row_j = &rows_above[j];
                for kk in 0..j {
                    match (&row_blocks_before[kk], &row_j[kk]) {
                        (LowerBlock::Tiles(left), LowerBlock::Tiles(right)) => {
                            subtract_tile_gram(m, left, right, false)
                        }
                        (LowerBlock::Dense(left), LowerBlock::Dense(right)) => matmul(
                            m.as_mut(),
                            Accum::Add,
                            left.as_ref(),
                            right.as_ref().transpose(),
                            -1.0,
                            par,
                        ),
                        _ => unreachable!("blocks of one column share their kind"),
                    }
                }
            }
        }
    }

    fn factor_fixed_random(&mut self, cross: &CrossProducts, lambdas: &[Vec<f64>], j: usize) {
        let par = self.par;
        let k = self.ks[j];
        let source = &cross.fixed_random[j];
        let (before, from_j) = self.fixed_random.split_at_mut(j);
        let target = &mut from_j[0];
        let rows = target.nrows;
        with_tile_size!(k, |k| {
            for b in 0..source.ncols / k {
                right_multiply_lower(
                    source.columns_from(b * k),
                    rows,
                    rows,
                    &lambdas[j],
                    k,
                    target.columns_from_mut(b * k),
                    rows,
                );
            }
        });
        for (kk, block) in self.lower[j].iter().enumerate() {
            let left = &before[kk];
            match block {
                LowerBlock::Tiles(right) if right.tile_size() == 1 => {
                    // Scalar tiles: each adds a multiple of a column of `left`, inline.
                    for b in 0..right.n_col_levels {
                        let left_column = &left.values[b * rows..(b + 1) * rows];
                        for (t, a) in right.column(b) {
                            let v_right = right.values[t];
                            let out = &mut target.values[a * rows..(a + 1) * rows];
                            for (out, &v_left) in out.iter_mut().zip(left_column) {
                                *out -= v_left * v_right;
                            }
                        }
                    }
                }
                LowerBlock::Tiles(right) => {
                    let k_left = right.k_col;
                    for b in 0..right.n_col_levels {
                        for (t, r) in right.column(b) {
                            subtract_product_transpose(
                                target.columns_from_mut(r * k),
                                rows,
                                left.columns_from(b * k_left),
                                rows,
                                right.tile(t),
                                rows,
                                k,
                                k_left,
                            );
                        }
                    }
                }
                LowerBlock::Dense(right) => matmul(
                    target.as_mut(),
                    Accum::Add,
                    left.as_ref(),
                    right.as_ref().transpose(),
                    -1.0,
                    par,
                ),
            }
        }
    }

    /// Finish the rows of L beside term j: the dense blocks below its diagonal block and the
    /// fixed-effects rows, each holding A − Σ L_ik L_jkᵀ, are right-multiplied by L_jj⁻ᵀ.
    fn solve_rows_below(&mut self, j: usize) {
        let k = self.ks[j];
        let (lower, fixed_random) = (&mut self.lower, &mut self.fixed_random[j]);
        match &self.diagonal[j] {
            DiagonalFactor::Tiles(tiles) => {
                for m in dense_blocks_in_column(&mut lower[j + 1..], j)
                    .chain(std::iter::once(fixed_random))
                {
                    let rows = m.nrows;
                    with_tile_size!(k, |k| {
                        for level in 0..tiles.n_levels {
                            right_solve_lower_transpose(
                                m.columns_from_mut(level * k),
                                rows,
                                rows,
                                tiles.tile(level),
                                k,
                            );
                        }
                    });
                }
            }
            DiagonalFactor::Dense(factor) => {
                let q = factor.nrows;
                let n_rows = dense_blocks_in_column(&mut lower[j + 1..], j)
                    .map(|m| m.nrows)
                    .sum::<usize>()
                    + fixed_random.nrows;
                if n_rows >= SMALL_RIGHT_HAND_SIDE {
                    for m in dense_blocks_in_column(&mut lower[j + 1..], j)
                        .chain(std::iter::once(fixed_random))
                    {
                        let par = if m.nrows < SMALL_RIGHT_HAND_SIDE {
                            Par::Seq
                        } else {
                            self.par
                        };
                        solve_lower_triangular_in_place(
                            factor.as_ref(),
                            m.as_mut().transpose_mut(),
                            par,
                        );
                    }
                    return;
                }
                // A few rows: gather them, solve once, scatter them back.
                let stacked = &mut self.stacked_rows[..n_rows * q];
                let mut first = 0;
                for m in dense_blocks_in_column(&mut lower[j + 1..], j)
                    .map(|m| &*m)
                    .chain(std::iter::once(&*fixed_random))
                {
                    for c in 0..q {
                        stacked[first + c * n_rows..][..m.nrows]
                            .copy_from_slice(&m.values[c * m.nrows..(c + 1) * m.nrows]);
                    }
                    first += m.nrows;
                }
                let rows =
                    faer::MatMut::from_column_major_slice_mut(stacked, n_rows, q).transpose_mut();
                if matches!(self.par, Par::Seq) {
                    solve_lower_triangular_in_place(factor.as_ref(), rows, Par::Seq);
                } else {
                    // faer's parallel solve gained nothing on a few rows (InstEval's 17); two
                    // halves solved side by side took InstEval 0.94–0.97× and crossed_200k 0.94×
                    // the time. The split depends on the structure, not the thread count.
                    let (first_half, second_half) = rows.split_at_col_mut(n_rows / 2);
                    rayon::join(
                        || solve_lower_triangular_in_place(factor.as_ref(), first_half, Par::Seq),
                        || solve_lower_triangular_in_place(factor.as_ref(), second_half, Par::Seq),
                    );
                }
                let mut first = 0;
                for m in dense_blocks_in_column(&mut lower[j + 1..], j)
                    .chain(std::iter::once(fixed_random))
                {
                    let rows = m.nrows;
                    for c in 0..q {
                        m.values[c * rows..(c + 1) * rows]
                            .copy_from_slice(&stacked[first + c * n_rows..][..rows]);
                    }
                    first += rows;
                }
            }
        }
    }

    fn factor_fixed_fixed(&mut self, cross: &CrossProducts) -> Result<()> {
        let stack = MemStack::new(&mut self.dense_scratch);
        self.fixed.factor_schur_complement(
            &cross.fixed_fixed,
            self.fixed_random.iter().map(|block| block.as_ref()),
            self.par,
            stack,
        )
    }

    /// log |L_Z|², the log-determinant of ΛᵀZᵀWZΛ + I.
    pub(crate) fn log_det_random(&self) -> f64 {
        self.diagonal
            .iter()
            .zip(&self.ks)
            .map(|(block, &k)| match block {
                DiagonalFactor::Tiles(tiles) => (0..tiles.n_levels)
                    .map(|level| {
                        let tile = tiles.tile(level);
                        (0..k).map(|c| tile[c + c * k].ln()).sum::<f64>()
                    })
                    .sum::<f64>(),
                DiagonalFactor::Dense(m) => (0..m.nrows).map(|c| m.get(c, c).ln()).sum::<f64>(),
            })
            .sum::<f64>()
            * 2.0
    }

    /// Solve L_Zᵀ u = (y row − Xβ rows) of L for the spherical random effects u, term by term.
    pub(crate) fn solve_random_effects(&self, beta: &[f64]) -> Vec<Vec<f64>> {
        let par = self.par;
        let n_terms = self.ks.len();
        let p = beta.len();
        let mut u: Vec<Vec<f64>> = self
            .fixed_random
            .iter()
            .map(|block| {
                (0..block.ncols)
                    .map(|c| {
                        let column = &block.values[c * block.nrows..(c + 1) * block.nrows];
                        column[p] - (0..p).map(|r| column[r] * beta[r]).sum::<f64>()
                    })
                    .collect()
            })
            .collect();
        for j in (0..n_terms).rev() {
            let (head, tail) = u.split_at_mut(j + 1);
            let rhs = &mut head[j];
            for (offset, u_i) in tail.iter().enumerate() {
                let i = j + 1 + offset;
                match &self.lower[i][j] {
                    LowerBlock::Tiles(tiles) => {
                        let (k_row, k_col) = (tiles.k_row, tiles.k_col);
                        for b in 0..tiles.n_col_levels {
                            for (t, a) in tiles.column(b) {
                                let tile = tiles.tile(t);
                                for c in 0..k_col {
                                    rhs[b * k_col + c] -= (0..k_row)
                                        .map(|r| tile[r + c * k_row] * u_i[a * k_row + r])
                                        .sum::<f64>();
                                }
                            }
                        }
                    }
                    LowerBlock::Dense(m) => {
                        for (rhs_c, column) in rhs.iter_mut().zip(m.values.chunks_exact(m.nrows)) {
                            *rhs_c -= column
                                .iter()
                                .zip(u_i.iter())
                                .map(|(a, b)| a * b)
                                .sum::<f64>();
                        }
                    }
                }
            }
            let k = self.ks[j];
            match &self.diagonal[j] {
                DiagonalFactor::Tiles(tiles) => {
                    for level in 0..tiles.n_levels {
                        let tile = tiles.tile(level);
                        let x = &mut rhs[level * k..(level + 1) * k];
                        for r in (0..k).rev() {
                            let mut value = x[r];
                            for c in r + 1..k {
                                value -= tile[c + r * k] * x[c];
                            }
                            x[r] = value / tile[r + r * k];
                        }
                    }
                }
                DiagonalFactor::Dense(m) => {
                    let len = rhs.len();
                    let column =
                        faer::MatMut::from_column_major_slice_mut(rhs.as_mut_slice(), len, 1);
                    solve_upper_triangular_in_place(m.as_ref().transpose(), column, par);
                }
            }
        }
        u
    }

    /// Diagonal tiles of (L_Z L_Zᵀ)⁻¹ for every term: σ² λ·tile·λᵀ is the conditional covariance
    /// of a level's random effects (lme4's `condVar`). With R = terms 1.. and G = (L_R L_Rᵀ)⁻¹,
    /// the first term's tile for level b is K_bᵀ (I + L_{R0,b}ᵀ G L_{R0,b}) K_b, K_b = L_b⁻¹;
    /// the other terms' tiles are G's diagonal tiles.
    pub(crate) fn inverse_diagonal_tiles(&self) -> Vec<TileDiagonal> {
        let par = self.par;
        let n_terms = self.ks.len();
        let sizes: Vec<usize> = self.fixed_random.iter().map(|b| b.ncols).collect();
        let offsets: Vec<usize> = sizes
            .iter()
            .scan(0, |acc, &s| {
                let start = *acc;
                *acc += s;
                Some(start)
            })
            .collect();
        let rest = sizes[1..].iter().sum::<usize>();
        // G for terms 1..: invert the dense lower-right part of L.
        let g = if rest > 0 {
            let first = sizes[0];
            let mut l_rest = Mat::<f64>::zeros(rest, rest);
            for j in 1..n_terms {
                let cj = offsets[j] - first;
                match &self.diagonal[j] {
                    DiagonalFactor::Tiles(tiles) => {
                        let k = tiles.k;
                        for level in 0..tiles.n_levels {
                            let tile = tiles.tile(level);
                            for c in 0..k {
                                for r in c..k {
                                    l_rest[(cj + level * k + r, cj + level * k + c)] =
                                        tile[r + c * k];
                                }
                            }
                        }
                    }
                    DiagonalFactor::Dense(m) => {
                        for c in 0..m.ncols {
                            for r in c..m.nrows {
                                l_rest[(cj + r, cj + c)] = m.get(r, c);
                            }
                        }
                    }
                }
                for (row, &offset) in self.lower.iter().zip(&offsets).skip(j + 1) {
                    let ri = offset - first;
                    if let LowerBlock::Dense(m) = &row[j] {
                        for c in 0..m.ncols {
                            for r in 0..m.nrows {
                                l_rest[(ri + r, cj + c)] = m.get(r, c);
                            }
                        }
                    }
                }
            }
            let mut inverse = Mat::<f64>::zeros(rest, rest);
            faer::linalg::triangular_inverse::invert_lower_triangular(
                inverse.as_mut(),
                l_rest.as_ref(),
                par,
            );
            let mut g = Mat::<f64>::zeros(rest, rest);
            matmul(
                g.as_mut(),
                Accum::Replace,
                inverse.as_ref().transpose(),
                inverse.as_ref(),
                1.0,
                par,
            );
            Some(g)
        } else {
            None
        };

        let mut result = Vec::with_capacity(n_terms);
        // First term.
        let k0 = self.ks[0];
        let first_diagonal = match &self.diagonal[0] {
            DiagonalFactor::Tiles(tiles) => tiles,
            DiagonalFactor::Dense(_) => unreachable!("the first term's block is tile-diagonal"),
        };
        let mut first = TileDiagonal::zeros(k0, first_diagonal.n_levels);
        // With dense blocks below the first term, stack them into L_{R0} and form G L_{R0} once.
        let dense_first_column = match (&g, self.lower.get(1).map(|row| &row[0])) {
            (Some(g), Some(LowerBlock::Dense(_))) => {
                let first_size = sizes[0];
                let mut first_column = Mat::<f64>::zeros(rest, first_size);
                for (row, &offset) in self.lower.iter().zip(&offsets).skip(1) {
                    let LowerBlock::Dense(m) = &row[0] else {
                        unreachable!("the first column's blocks share their kind")
                    };
                    let base = offset - first_size;
                    for c in 0..m.ncols {
                        for r in 0..m.nrows {
                            first_column[(base + r, c)] = m.get(r, c);
                        }
                    }
                }
                let mut product = Mat::<f64>::zeros(rest, first_size);
                matmul(
                    product.as_mut(),
                    Accum::Replace,
                    g.as_ref(),
                    first_column.as_ref(),
                    1.0,
                    par,
                );
                Some((first_column, product))
            }
            _ => None,
        };
        let mut middle = vec![0.0; k0 * k0];
        let mut inverse_tile = vec![0.0; k0 * k0];
        for b in 0..first_diagonal.n_levels {
            middle.fill(0.0);
            for c in 0..k0 {
                middle[c + c * k0] = 1.0;
            }
            if let Some((first_column, g_first_column)) = &dense_first_column {
                // V_bᵀ (G V_b) with V_b the dense column block b of L_{R0}.
                for c2 in 0..k0 {
                    for c1 in 0..k0 {
                        middle[c1 + c2 * k0] += (0..rest)
                            .map(|r| {
                                first_column[(r, b * k0 + c1)] * g_first_column[(r, b * k0 + c2)]
                            })
                            .sum::<f64>();
                    }
                }
            } else if let Some(g) = &g {
                // Σ over tile pairs (T₁ at rest-row r₁, T₂ at r₂) of T₁ᵀ G[r₁, r₂] T₂.
                let column_tiles: Vec<(usize, &[f64], usize)> = (1..n_terms)
                    .flat_map(|i| {
                        let LowerBlock::Tiles(tiles) = &self.lower[i][0] else {
                            unreachable!("the first column's blocks share their kind")
                        };
                        let base = offsets[i] - sizes[0];
                        tiles
                            .column(b)
                            .map(move |(t, a)| (base + a * tiles.k_row, tiles.tile(t), tiles.k_row))
                    })
                    .collect();
                for &(row1, tile1, k1) in &column_tiles {
                    for &(row2, tile2, k2) in &column_tiles {
                        for c2 in 0..k0 {
                            for c1 in 0..k0 {
                                let mut value = 0.0;
                                for s in 0..k1 {
                                    for t in 0..k2 {
                                        value += tile1[s + c1 * k1]
                                            * g[(row1 + s, row2 + t)]
                                            * tile2[t + c2 * k2];
                                    }
                                }
                                middle[c1 + c2 * k0] += value;
                            }
                        }
                    }
                }
            }
            invert_lower_triangular(first_diagonal.tile(b), k0, &mut inverse_tile);
            congruence(&inverse_tile, &middle, k0, first.tile_mut(b));
        }
        result.push(first);
        for j in 1..n_terms {
            let k = self.ks[j];
            let g = g
                .as_ref()
                .expect("terms beyond the first imply a rest block");
            let base = offsets[j] - sizes[0];
            let n_levels = sizes[j] / k;
            let mut tiles = TileDiagonal::zeros(k, n_levels);
            for level in 0..n_levels {
                let tile = tiles.tile_mut(level);
                for c in 0..k {
                    for r in 0..k {
                        tile[r + c * k] = g[(base + level * k + r, base + level * k + c)];
                    }
                }
            }
            result.push(tiles);
        }
        result
    }
}

/// Whether the blocks below the first term's diagonal are cheaper held dense. The tile-sparse
/// fill-in update costs one scattered multiply-add per pair of tiles sharing a column (about 1 ns);
/// the dense one q_i·q_j·q₀ vectorised multiply-adds plus passes over the dense blocks. Dense wins
/// when the first factor's levels each meet a large share of the others' levels, sparse when they
/// meet few (InstEval: 2% filled). Two crossed scalar terms, measured: dense 2.2× faster at 6.5
/// dense multiply-adds per scattered update (1,000 × 200 levels, 100,000 rows), sparse 1.2× faster
/// at 12.5 (500 × 300, 50,000 rows) and 1.1–1.5× at 30 (2,000 × 500, 200,000 rows).
fn dense_first_column_pays(cross: &CrossProducts, sizes: &[usize]) -> bool {
    const FLOPS_PER_SCATTERED_UPDATE: f64 = 10.0;
    const MAX_DENSE_ENTRIES: usize = 50_000_000;
    let n_terms = cross.n_terms();
    if n_terms < 2 {
        return false;
    }
    let first_size = sizes[0] as f64;
    let mut scattered_updates = 0.0;
    let mut dense_flops = 0.0;
    let mut dense_entries = 0;
    for i in 1..n_terms {
        dense_entries += sizes[i] * sizes[0];
        for j in 1..=i {
            let (left, right) = (&cross.off_diagonal[i][0], &cross.off_diagonal[j][0]);
            let tile_flops = (left.tile_size() * right.k_row) as f64;
            for b in 0..left.n_col_levels {
                let pairs = ((left.col_ptr[b + 1] - left.col_ptr[b])
                    * (right.col_ptr[b + 1] - right.col_ptr[b])) as f64;
                scattered_updates += if i == j { pairs / 2.0 } else { pairs } * tile_flops;
            }
            let flops = sizes[i] as f64 * sizes[j] as f64 * first_size;
            dense_flops += if i == j { flops / 2.0 } else { flops };
        }
    }
    dense_entries <= MAX_DENSE_ENTRIES
        && dense_flops < FLOPS_PER_SCATTERED_UPDATE * scattered_updates
}

/// `target`'s lower triangle ← −L Lᵀ for a scalar tile-sparse L, given by tile row in `rows`
/// (the rest of the diagonal block is added afterwards). Target column a gathers the columns b of L
/// holding row a: from that tile on, column b is one contiguous run of rows ≥ a. Columns are
/// independent work items, zeroed just before their sums, and each entry sums in increasing b, so
/// the threads do not change the result.
fn set_negative_scalar_tile_gram(target: &mut Dense, tiles: &TileSparse, rows: &RowIndex) {
    let stride = target.nrows;
    let fill_column = |(a, column): (usize, &mut [f64])| {
        column[a..].fill(0.0);
        let entries = rows.row_ptr[a]..rows.row_ptr[a + 1];
        for (&t, &b) in rows.tiles[entries.clone()].iter().zip(&rows.cols[entries]) {
            let v_right = tiles.values[t];
            let run = t..tiles.col_ptr[b + 1];
            for (&a_left, &v_left) in tiles.row_level[run.clone()].iter().zip(&tiles.values[run]) {
                column[a_left] -= v_left * v_right;
            }
        }
    };
    if stride >= PARALLEL_DENSE_DIMENSION {
        target
            .values
            .par_chunks_mut(stride)
            .enumerate()
            .for_each(fill_column);
    } else {
        target
            .values
            .chunks_mut(stride)
            .enumerate()
            .for_each(fill_column);
    }
}

/// `target ← target − L_i Lⱼᵀ` for tile-sparse L_i (row blocks of target) and Lⱼ (column blocks),
/// summing over their shared tile columns; `lower_only` keeps to target's lower triangle.
fn subtract_tile_gram(target: &mut Dense, left: &TileSparse, right: &TileSparse, lower_only: bool) {
    let stride = target.nrows;
    if !lower_only && left.tile_size() == 1 && right.tile_size() == 1 {
        // Scalar terms below the diagonal (their gram on it is set_negative_scalar_tile_gram's):
        // tight loops over each column's values. Large targets are split into column ranges worked
        // on in parallel; every entry still sums its terms in increasing b, so the result does not
        // depend on the threads.
        let parallel = stride >= PARALLEL_DENSE_DIMENSION;
        let columns_per_chunk = if parallel { 32 } else { target.ncols.max(1) };
        let subtract_chunk = |(chunk, values): (usize, &mut [f64])| {
            let first_column = chunk * columns_per_chunk;
            let end_column = first_column + values.len() / stride;
            for b in 0..left.n_col_levels {
                let (left_rows, left_values) = (
                    &left.row_level[left.col_ptr[b]..left.col_ptr[b + 1]],
                    &left.values[left.col_ptr[b]..left.col_ptr[b + 1]],
                );
                let right_rows = &right.row_level[right.col_ptr[b]..right.col_ptr[b + 1]];
                let right_values = &right.values[right.col_ptr[b]..right.col_ptr[b + 1]];
                // Rows are sorted: the right-hand rows falling in this chunk's columns.
                let start = right_rows.partition_point(|&a| a < first_column);
                let end = right_rows.partition_point(|&a| a < end_column);
                for (&a_right, &v_right) in
                    right_rows[start..end].iter().zip(&right_values[start..end])
                {
                    let column = &mut values
                        [(a_right - first_column) * stride..(a_right - first_column + 1) * stride];
                    for (&a_left, &v_left) in left_rows.iter().zip(left_values) {
                        column[a_left] -= v_left * v_right;
                    }
                }
            }
        };
        let chunk_len = stride * columns_per_chunk;
        if parallel {
            target
                .values
                .par_chunks_mut(chunk_len)
                .enumerate()
                .for_each(subtract_chunk);
        } else {
            target
                .values
                .chunks_mut(chunk_len)
                .enumerate()
                .for_each(subtract_chunk);
        }
        return;
    }
    let (k_left, k_right, k_inner) = (left.k_row, right.k_row, left.k_col);
    for b in 0..left.n_col_levels {
        for (t_left, a_left) in left.column(b) {
            for (t_right, a_right) in right.column(b) {
                if lower_only && a_right > a_left {
                    break;
                }
                let out = &mut target.values[a_left * k_left + a_right * k_right * stride..];
                subtract_product_transpose(
                    out,
                    stride,
                    left.tile(t_left),
                    k_left,
                    right.tile(t_right),
                    k_left,
                    k_right,
                    k_inner,
                );
            }
        }
    }
}

/// `m ← m L_jj⁻ᵀ` for a dense block below (or beside) diagonal block j.
/// The dense blocks of column j among the block rows `rows` of L.
fn dense_blocks_in_column(
    rows: &mut [Vec<LowerBlock>],
    j: usize,
) -> impl Iterator<Item = &mut Dense> {
    rows.iter_mut().filter_map(move |row| match &mut row[j] {
        LowerBlock::Dense(m) => Some(m),
        LowerBlock::Tiles(_) => None,
    })
}
