//! Hat values of the penalised least-squares fit (lme4's `hatvalues.merMod`): the diagonal of H
//! with fitted = H y, computed through the factor L of the augmented system, never forming H.
//!
//! With vᵢ = √wᵢ [Λᵀzᵢ; xᵢ] (row i of the weighted, scaled [ZΛ X], transposed), H = V (LLᵀ)⁻¹ Vᵀ
//! for the random-effects-and-fixed-effects part of L, so hᵢ = ‖L⁻¹vᵢ‖². Split as L is split:
//!
//!   aᵢ = L_Z⁻¹ √wᵢ Λᵀzᵢ,   cᵢ = R_X⁻¹ (√wᵢ xᵢ − L_XZ aᵢ),   hᵢ = ‖aᵢ‖² + ‖cᵢ‖²
//!
//! (lme4 computes the same two parts as `rePart` and `fePart`). In the blocked factor aᵢ's part
//! for the first term is one level's k entries, found by one tile solve; later terms' parts are
//! dense vectors of their random effects. Observations are independent: they run in parallel
//! chunks and the values do not depend on the number of threads.

use faer::dyn_stack::MemStack;
use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
use faer::{MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::blocks::TileSparse;
use crate::cholesky::{BlockedCholesky, DiagonalFactor, LowerBlock};
use crate::factorization::Factorization;
use crate::fixed_block::FixedEffectsBlock;
use crate::terms::RandomEffectsTerm;

/// Observations per parallel work item.
const CHUNK: usize = 4096;

/// The hat value of every observation for a factor `factor` of the system of `terms` (with
/// relative covariance factors `lambdas`), fixed-effects matrix `x` and prior `weights`.
pub(crate) fn hat_values(
    terms: &[RandomEffectsTerm],
    lambdas: &[Vec<f64>],
    x: MatRef<'_, f64>,
    weights: Option<&[f64]>,
    factor: &Factorization,
) -> Vec<f64> {
    let n = x.nrows();
    let p = x.ncols();
    let mut values = vec![0.0; n];
    values
        .par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(chunk, out)| {
            let mut solver = RandomPart::new(factor, terms);
            let mut fixed = vec![0.0; p];
            for (offset, h) in out.iter_mut().enumerate() {
                let i = chunk * CHUNK + offset;
                let root_weight = weights.map_or(1.0, |w| w[i].sqrt());
                if root_weight == 0.0 {
                    continue;
                }
                let random = solver.solve(terms, lambdas, i, root_weight, &mut fixed);
                *h = random + fixed_part(factor.fixed(), x, i, root_weight, &mut fixed);
            }
        });
    values
}

/// ‖R_X⁻¹ (√w xᵢ − L_XZ aᵢ)‖², with `fixed` holding L_XZ aᵢ on entry (overwritten).
fn fixed_part(
    block: &FixedEffectsBlock,
    x: MatRef<'_, f64>,
    i: usize,
    root_weight: f64,
    fixed: &mut [f64],
) -> f64 {
    let p = fixed.len();
    for r in 0..p {
        let solved: f64 = fixed[..r]
            .iter()
            .enumerate()
            .map(|(m, c)| block.get(r, m) * c)
            .sum();
        fixed[r] = (root_weight * x[(i, r)] - fixed[r] - solved) / block.get(r, r);
    }
    fixed.iter().map(|c| c * c).sum()
}

/// (λᵀ z)_c for one observation's row z of a term: its entries of Λᵀzᵢ.
fn scaled_row(lambda: &[f64], z: &[f64], k: usize, c: usize) -> f64 {
    (c..k).map(|r| lambda[r + c * k] * z[r]).sum()
}

/// Per-thread scratch for aᵢ = L_Z⁻¹ √wᵢ Λᵀzᵢ.
enum RandomPart<'a> {
    Blocked {
        factor: &'a BlockedCholesky,
        /// The first term's entries of aᵢ (one level's k).
        first: Vec<f64>,
        /// Later terms' parts of aᵢ, dense.
        rest: Vec<Vec<f64>>,
    },
    Sparse {
        factor: &'a crate::sparse_cholesky::SparseCholesky,
        entries: Vec<(usize, f64)>,
        offsets: Vec<usize>,
        work: Vec<f64>,
        stack: faer::dyn_stack::MemBuffer,
    },
}

impl<'a> RandomPart<'a> {
    fn new(factor: &'a Factorization, terms: &[RandomEffectsTerm]) -> Self {
        match factor {
            Factorization::Blocked(factor) => Self::Blocked {
                factor,
                first: vec![0.0; terms[0].k],
                rest: terms[1..]
                    .iter()
                    .map(|t| vec![0.0; t.n_columns()])
                    .collect(),
            },
            Factorization::Sparse(factor) => Self::Sparse {
                factor,
                entries: Vec::with_capacity(terms.iter().map(|t| t.k).sum()),
                offsets: terms
                    .iter()
                    .scan(0, |start, t| {
                        let first = *start;
                        *start += t.n_columns();
                        Some(first)
                    })
                    .collect(),
                work: vec![0.0; factor.n_random()],
                stack: factor.leverage_scratch(),
            },
        }
    }

    /// ‖aᵢ‖², and L_XZ aᵢ into `fixed`.
    fn solve(
        &mut self,
        terms: &[RandomEffectsTerm],
        lambdas: &[Vec<f64>],
        i: usize,
        root_weight: f64,
        fixed: &mut [f64],
    ) -> f64 {
        match self {
            Self::Blocked {
                factor,
                first,
                rest,
            } => blocked_random_part(factor, terms, lambdas, i, root_weight, first, rest, fixed),
            Self::Sparse {
                factor,
                entries,
                offsets,
                work,
                stack,
            } => {
                entries.clear();
                for ((term, lambda), &start) in terms.iter().zip(lambdas).zip(offsets.iter()) {
                    let k = term.k;
                    let z = &term.z[i * k..(i + 1) * k];
                    let level = term.codes[i] as usize;
                    for c in 0..k {
                        let value = root_weight * scaled_row(lambda, z, k, c);
                        entries.push((start + level * k + c, value));
                    }
                }
                factor.leverage_parts(entries, work, fixed, MemStack::new(stack))
            }
        }
    }
}

/// Forward substitution with one k×k lower tile (column-major), in place.
fn tile_forward_solve(tile: &[f64], k: usize, x: &mut [f64]) {
    for r in 0..k {
        let mut value = x[r];
        for c in 0..r {
            value -= tile[r + c * k] * x[c];
        }
        x[r] = value / tile[r + r * k];
    }
}

/// `target -= block · source` for a block below the diagonal (source: all of its columns).
fn subtract_block_product(block: &LowerBlock, source: &[f64], target: &mut [f64]) {
    match block {
        LowerBlock::Tiles(tiles) => {
            for b in 0..tiles.n_col_levels {
                subtract_tile_column(
                    tiles,
                    b,
                    &source[b * tiles.k_col..(b + 1) * tiles.k_col],
                    target,
                );
            }
        }
        LowerBlock::Dense(m) => {
            for (column, &s) in m.values.chunks_exact(m.nrows).zip(source) {
                if s != 0.0 {
                    for (t, l) in target.iter_mut().zip(column) {
                        *t -= l * s;
                    }
                }
            }
        }
    }
}

/// `target -= (column b of tiles) · source_b`.
fn subtract_tile_column(tiles: &TileSparse, b: usize, source: &[f64], target: &mut [f64]) {
    let (k_row, k_col) = (tiles.k_row, tiles.k_col);
    for (t, a) in tiles.column(b) {
        let tile = tiles.tile(t);
        for r in 0..k_row {
            target[a * k_row + r] -= (0..k_col)
                .map(|c| tile[r + c * k_row] * source[c])
                .sum::<f64>();
        }
    }
}

/// aᵢ through the blocked factor: the first term's tile of observation i's level, then every
/// later term's dense part after subtracting the blocks to its left.
#[allow(clippy::too_many_arguments)]
fn blocked_random_part(
    factor: &BlockedCholesky,
    terms: &[RandomEffectsTerm],
    lambdas: &[Vec<f64>],
    i: usize,
    root_weight: f64,
    first: &mut [f64],
    rest: &mut [Vec<f64>],
    fixed: &mut [f64],
) -> f64 {
    let p = fixed.len();
    let k0 = terms[0].k;
    let b = terms[0].codes[i] as usize;
    let z0 = &terms[0].z[i * k0..(i + 1) * k0];
    for (c, value) in first.iter_mut().enumerate() {
        *value = root_weight * scaled_row(&lambdas[0], z0, k0, c);
    }
    let DiagonalFactor::Tiles(tiles) = &factor.diagonal[0] else {
        unreachable!("the first term's block is tile-diagonal")
    };
    tile_forward_solve(tiles.tile(b), k0, first);
    let mut norm: f64 = first.iter().map(|a| a * a).sum();
    let first_rows = &factor.fixed_random[0];
    for (m, value) in fixed.iter_mut().enumerate() {
        *value = (0..k0)
            .map(|c| first_rows.get(m, b * k0 + c) * first[c])
            .sum();
    }
    for j in 1..terms.len() {
        let (done, current) = rest.split_at_mut(j - 1);
        let v = &mut current[0];
        v.fill(0.0);
        let (term, k) = (&terms[j], terms[j].k);
        let level = term.codes[i] as usize;
        let z = &term.z[i * k..(i + 1) * k];
        for c in 0..k {
            v[level * k + c] = root_weight * scaled_row(&lambdas[j], z, k, c);
        }
        match &factor.lower[j][0] {
            LowerBlock::Tiles(tiles) => subtract_tile_column(tiles, b, first, v),
            LowerBlock::Dense(m) => {
                for (c, a) in first.iter().enumerate() {
                    let column = &m.values[(b * k0 + c) * m.nrows..(b * k0 + c + 1) * m.nrows];
                    for (t, l) in v.iter_mut().zip(column) {
                        *t -= l * a;
                    }
                }
            }
        }
        for (l, source) in done.iter().enumerate() {
            subtract_block_product(&factor.lower[j][l + 1], source, v);
        }
        match &factor.diagonal[j] {
            DiagonalFactor::Tiles(tiles) => {
                for (level, x) in v.chunks_exact_mut(k).enumerate() {
                    tile_forward_solve(tiles.tile(level), k, x);
                }
            }
            DiagonalFactor::Dense(m) => {
                let len = v.len();
                solve_lower_triangular_in_place(
                    m.as_ref(),
                    MatMut::from_column_major_slice_mut(v.as_mut_slice(), len, 1),
                    Par::Seq,
                );
            }
        }
        norm += v.iter().map(|a| a * a).sum::<f64>();
        let rows = &factor.fixed_random[j];
        for (m, value) in fixed.iter_mut().enumerate().take(p) {
            *value += v
                .iter()
                .enumerate()
                .map(|(s, a)| rows.get(m, s) * a)
                .sum::<f64>();
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use crate::factorization::FactorizationChoice;
    use crate::lmm::LinearMixedModel;
    use crate::terms::RandomEffectsTerm;
    use crate::tests::common::{random_intercept_data, Lcg, PER_GROUP};
    use faer::Mat;

    const GROUPS: usize = 8;
    const N: usize = GROUPS * PER_GROUP;

    fn data() -> (Vec<RandomEffectsTerm>, Mat<f64>, Vec<f64>) {
        random_intercept_data(GROUPS)
    }

    #[test]
    fn hat_values_are_the_diagonal_of_the_dense_hat_matrix() {
        let (terms, x, y) = data();
        let mut rng = Lcg(9);
        let weights: Vec<f64> = (0..N).map(|_| 0.5 + rng.uniform()).collect();
        let mut model = LinearMixedModel::new(
            terms.clone(),
            x.as_ref(),
            Some(weights.clone()),
            FactorizationChoice::Automatic,
        )
        .unwrap();
        model.set_response(x.as_ref(), &y).unwrap();
        let theta = [0.7];
        let hat = model.hat_values(x.as_ref(), &theta).unwrap();
        // H = W½ M (MᵀWM + diag(I_q, 0))⁻¹ Mᵀ W½ with M = [ZΛ X].
        let q = GROUPS;
        let m = Mat::from_fn(N, q + 2, |i, c| {
            if c < q {
                if terms[0].codes[i] as usize == c {
                    theta[0]
                } else {
                    0.0
                }
            } else {
                x[(i, c - q)]
            }
        });
        let a = Mat::from_fn(q + 2, q + 2, |r, c| {
            (0..N)
                .map(|i| m[(i, r)] * weights[i] * m[(i, c)])
                .sum::<f64>()
                + if r == c && r < q { 1.0 } else { 0.0 }
        });
        let inverse = crate::dense::invert_symmetric(
            &(0..(q + 2) * (q + 2))
                .map(|e| a[(e % (q + 2), e / (q + 2))])
                .collect::<Vec<_>>(),
            q + 2,
        )
        .unwrap();
        for i in 0..N {
            let mut h = 0.0;
            for r in 0..q + 2 {
                for c in 0..q + 2 {
                    h += m[(i, r)] * inverse[r + c * (q + 2)] * m[(i, c)];
                }
            }
            h *= weights[i];
            assert!((hat[i] - h).abs() < 1e-12, "{i}: {} vs {h}", hat[i]);
        }
    }
}
